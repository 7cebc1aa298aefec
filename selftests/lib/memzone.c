// SPDX-License-Identifier: MIT
/*
 * Memzones: reserve/lookup/free/walk, every errno, the table limits, the
 * lookup cost, and a secondary process seeing the primary's zones.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hpmem/init.h>
#include <hpmem/malloc.h>
#include <hpmem/memseg.h>
#include <hpmem/memzone.h>

#include "kselftest_harness.h"

static void opts_for(struct hpm_init_opts *o, char *name, const char *tag)
{
	hpm_init_opts_default(o);
	snprintf(name, HPM_NAME_SIZE, "t-mz%s-%d", tag, (int)getpid());
	o->region = name;
	o->socket_mem[0] = 32;
}

FIXTURE(mz) {
	char name[HPM_NAME_SIZE];
	struct hpm_init_opts o;
};

FIXTURE_SETUP(mz)
{
	opts_for(&self->o, self->name, "");
	ASSERT_EQ(0, hpm_init(&self->o));
}

FIXTURE_TEARDOWN(mz)
{
	EXPECT_EQ(0, hpm_cleanup());
}

TEST_F(mz, reserve_lookup_free)
{
	const struct hpm_memzone *mz, *l;

	mz = hpm_memzone_reserve("zone-a", 1000, HPM_SOCKET_ANY, 0);
	ASSERT_NE(NULL, mz);
	EXPECT_STREQ("zone-a", mz->name);
	EXPECT_EQ(1024, mz->len);	/* whole cache lines, as DPDK */
	EXPECT_EQ(0, (uintptr_t)mz->addr % HPM_CACHE_LINE_SIZE);
	EXPECT_EQ(hpm_virt2iova(mz->addr), mz->iova);
	EXPECT_NE(HPM_BAD_IOVA, mz->iova);
	memset(mz->addr, 0xa5, mz->len);
	l = hpm_memzone_lookup("zone-a");
	EXPECT_EQ(mz, l);
	EXPECT_EQ(1, hpm_memzone_count());
	EXPECT_EQ(0, hpm_memzone_free(mz));
	EXPECT_EQ(NULL, hpm_memzone_lookup("zone-a"));
	EXPECT_EQ(ENOENT, hpm_errno);
	EXPECT_EQ(0, hpm_memzone_count());
	/* Freed: a second free is refused, the name can be reused. */
	EXPECT_EQ(-EINVAL, hpm_memzone_free(mz));
	EXPECT_EQ(-EINVAL, hpm_memzone_free(NULL));
	mz = hpm_memzone_reserve("zone-a", 64, 0, 0);
	ASSERT_NE(NULL, mz);
	EXPECT_EQ(0, mz->socket);
	EXPECT_EQ(0, hpm_memzone_free(mz));
}

TEST_F(mz, errors)
{
	char n31[32], n32[33];
	const struct hpm_memzone *mz;

	memset(n31, 'x', 31);
	n31[31] = '\0';
	memset(n32, 'y', 32);
	n32[32] = '\0';

	mz = hpm_memzone_reserve(n31, 64, HPM_SOCKET_ANY, 0);
	ASSERT_NE(NULL, mz);
	EXPECT_EQ(mz, hpm_memzone_lookup(n31));
	EXPECT_EQ(NULL, hpm_memzone_reserve(n32, 64, HPM_SOCKET_ANY, 0));
	EXPECT_EQ(ENAMETOOLONG, hpm_errno);
	EXPECT_EQ(NULL, hpm_memzone_lookup(n32));
	EXPECT_EQ(ENAMETOOLONG, hpm_errno);

	EXPECT_EQ(NULL, hpm_memzone_reserve(n31, 64, HPM_SOCKET_ANY, 0));
	EXPECT_EQ(EEXIST, hpm_errno);
	EXPECT_EQ(NULL, hpm_memzone_reserve("", 64, HPM_SOCKET_ANY, 0));
	EXPECT_EQ(EINVAL, hpm_errno);
	EXPECT_EQ(NULL, hpm_memzone_reserve(NULL, 64, HPM_SOCKET_ANY, 0));
	EXPECT_EQ(EINVAL, hpm_errno);
	EXPECT_EQ(NULL, hpm_memzone_reserve("z", 64, HPM_SOCKET_ANY, 0x80000000u));
	EXPECT_EQ(EINVAL, hpm_errno);
	EXPECT_EQ(NULL, hpm_memzone_reserve("z", 64, HPM_MAX_NODES, 0));
	EXPECT_EQ(EINVAL, hpm_errno);
	EXPECT_EQ(NULL, hpm_memzone_reserve_aligned("z", 64, HPM_SOCKET_ANY, 0, 96));
	EXPECT_EQ(EINVAL, hpm_errno);
	/* bound below len */
	EXPECT_EQ(NULL, hpm_memzone_reserve_bounded("z", 8192, HPM_SOCKET_ANY, 0, 64, 4096));
	EXPECT_EQ(EINVAL, hpm_errno);
	/* No memory: nothing is left behind. */
	EXPECT_EQ(NULL, hpm_memzone_reserve("z", 1ull << 40, HPM_SOCKET_ANY, 0));
	EXPECT_EQ(ENOMEM, hpm_errno);
	EXPECT_EQ(NULL, hpm_memzone_lookup("z"));
	EXPECT_EQ(1, hpm_memzone_count());
	/* 1 GiB pages do not exist here: a demand fails, a hint does not. */
	EXPECT_EQ(NULL, hpm_memzone_reserve("z", 64, HPM_SOCKET_ANY, HPM_MEMZONE_1GB));
	EXPECT_EQ(ENOMEM, hpm_errno);
	mz = hpm_memzone_reserve("z", 64, HPM_SOCKET_ANY,
				 HPM_MEMZONE_1GB | HPM_MEMZONE_SIZE_HINT_ONLY);
	ASSERT_NE(NULL, mz);
	EXPECT_EQ(0, hpm_memzone_free(mz));
}

static void dump_checks(struct __test_metadata *_metadata)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	ASSERT_NE(NULL, f);
	hpm_memzone_dump(f);
	fclose(f);
	EXPECT_NE(NULL, strstr(buf, "contig"));
	EXPECT_NE(NULL, strstr(buf, "memzones: 33 of 2560"));
	free(buf);
}

static int longest_run(const struct hpm_memseg *first, size_t len, void *arg)
{
	size_t *longest = arg;

	(void)first;
	if (len > *longest)
		*longest = len;
	return 0;
}

TEST_F(mz, aligned_bounded_contig)
{
	const struct hpm_memzone *mz;
	size_t longest;
	unsigned int i;
	char n[32];

	for (i = 0; i < 16; i++) {
		snprintf(n, sizeof(n), "al%u", i);
		mz = hpm_memzone_reserve_aligned(n, 100 + i * 1000, HPM_SOCKET_ANY,
						 0, 4096);
		ASSERT_NE(NULL, mz);
		EXPECT_EQ(0, (uintptr_t)mz->addr % 4096);
	}
	for (i = 0; i < 16; i++) {
		snprintf(n, sizeof(n), "bd%u", i);
		mz = hpm_memzone_reserve_bounded(n, 3000, HPM_SOCKET_ANY, 0,
						 64, 4096);
		ASSERT_NE(NULL, mz);
		EXPECT_EQ(mz->iova / 4096, (mz->iova + mz->len - 1) / 4096);
	}
	/*
	 * Hugepages from the kernel's pool are rarely physically adjacent: a
	 * region without a long IOVA-contiguous run may refuse the zone, but
	 * never hands out a discontiguous one. The zones above may have
	 * taken part of a short run, so only a run of 8 MiB must succeed.
	 */
	longest = 0;
	hpm_memseg_contig_walk(longest_run, &longest);
	mz = hpm_memzone_reserve("contig", 3u << 20, HPM_SOCKET_ANY,
				 HPM_MEMZONE_IOVA_CONTIG | HPM_MEMZONE_2MB);
	if (!mz) {
		ASSERT_GT(8u << 20, longest);
		ASSERT_EQ(ENOMEM, hpm_errno);
		TH_LOG("longest IOVA-contiguous run %zu bytes: refused as it may",
		       longest);
		return;
	}
	ASSERT_NE(NULL, mz);
	for (i = 0; i < mz->len; i += 4096)
		ASSERT_EQ(mz->iova + i, hpm_virt2iova((char *)mz->addr + i));
	EXPECT_EQ(2u << 20, mz->page_sz);
	dump_checks(_metadata);
}

/* DPDK's test_memzone_reserve_flags/test_memzone: lengths are whole cache lines. */
TEST_F(mz, len_rounded_to_cache_line)
{
	const struct hpm_memzone *mz;

	mz = hpm_memzone_reserve("round100", 100, HPM_SOCKET_ANY, 0);
	ASSERT_NE(NULL, mz);
	EXPECT_EQ(128, mz->len);
	EXPECT_EQ(0, (uintptr_t)mz->addr % 64);
	/* All 128 bytes are the zone's. */
	memset(mz->addr, 0x5a, mz->len);
	EXPECT_EQ(0, hpm_memzone_free(mz));
	mz = hpm_memzone_reserve("round64", 64, HPM_SOCKET_ANY, 0);
	ASSERT_NE(NULL, mz);
	EXPECT_EQ(64, mz->len);
	EXPECT_EQ(0, hpm_memzone_free(mz));
	/* Rounded first, then checked against the bound (as DPDK). */
	EXPECT_EQ(NULL, hpm_memzone_reserve_bounded("rb", 100, HPM_SOCKET_ANY, 0, 64, 64));
	EXPECT_EQ(EINVAL, hpm_errno);
}

/* DPDK's test_memzone_bounded: an alignment above the bound is accepted. */
TEST_F(mz, align_above_bound)
{
	const struct hpm_memzone *mz;

	mz = hpm_memzone_reserve_bounded("ab", 100, HPM_SOCKET_ANY, 0, 256, 128);
	ASSERT_NE(NULL, mz) TH_LOG("len 100 align 256 bound 128: %s", strerror(hpm_errno));
	EXPECT_EQ(128, mz->len);
	EXPECT_EQ(0, (uintptr_t)mz->addr % 256);
	EXPECT_EQ(mz->iova / 128, (mz->iova + mz->len - 1) / 128);
	EXPECT_EQ(0, hpm_memzone_free(mz));
}

/*
 * DPDK's test_memzone_reserve_max / _max_aligned: length 0 takes the
 * largest free block minus the overhead, and nothing more is left of it.
 */
TEST_F(mz, len0_reserves_biggest)
{
	const struct hpm_memzone *mz, *mz2;
	unsigned int aligns[] = { 0, 64, 512, 4096, 1u << 20 };

	for (unsigned int i = 0; i < sizeof(aligns) / sizeof(aligns[0]); i++) {
		struct hpm_malloc_socket_stats st;
		char n[32];

		ASSERT_EQ(0, hpm_malloc_get_socket_stats(0, &st));
		snprintf(n, sizeof(n), "max-%u", aligns[i]);
		mz = hpm_memzone_reserve_aligned(n, 0, 0, 0, aligns[i]);
		ASSERT_NE(NULL, mz) TH_LOG("align %u: %s", aligns[i], strerror(hpm_errno));
		EXPECT_EQ(0, mz->len % 64);
		EXPECT_EQ(0, (uintptr_t)mz->addr % (aligns[i] ? aligns[i] : 64));
		/* At most the alignment gap (and a cache line of rounding) short. */
		EXPECT_GE(mz->len + (aligns[i] > 64 ? aligns[i] : 0) + 128,
			  st.greatest_free_size) TH_LOG("align %u: len %zu greatest %zu",
							aligns[i], mz->len, st.greatest_free_size);
		EXPECT_LE(mz->len, st.greatest_free_size);
		memset(mz->addr, 0xa5, mz->len);
		/* The rest of that block is gone: one more cannot be as large. */
		mz2 = hpm_memzone_reserve("max-again", 0, 0, 0);
		if (mz2) {
			EXPECT_LT(mz2->len, mz->len);
			EXPECT_EQ(0, hpm_memzone_free(mz2));
		}
		EXPECT_EQ(0, hpm_malloc_validate());
		EXPECT_EQ(0, hpm_memzone_free(mz));
	}
	/* With a bound, length 0 means the bound. */
	mz = hpm_memzone_reserve_bounded("max-bound", 0, HPM_SOCKET_ANY, 0, 64, 4096);
	ASSERT_NE(NULL, mz);
	EXPECT_EQ(4096, mz->len);
	EXPECT_EQ(mz->iova / 4096, (mz->iova + mz->len - 1) / 4096);
	EXPECT_EQ(0, hpm_memzone_free(mz));
	/* Any node: the largest block there is. */
	mz = hpm_memzone_reserve("max-any", 0, HPM_SOCKET_ANY, 0);
	ASSERT_NE(NULL, mz);
	EXPECT_LT(1u << 20, mz->len);
	EXPECT_EQ(0, hpm_memzone_free(mz));
	/* A node without memory has no largest block. */
	EXPECT_EQ(NULL, hpm_memzone_reserve("max-none", 0, HPM_MAX_NODES - 1, 0));
	EXPECT_EQ(ENOMEM, hpm_errno);
}

static int count_cb(const struct hpm_memzone *mz, void *arg)
{
	(void)mz;
	(*(unsigned int *)arg)++;
	return 0;
}

static int stop_cb(const struct hpm_memzone *mz, void *arg)
{
	(void)mz;
	return ++(*(unsigned int *)arg) == 3 ? 42 : 0;
}

TEST_F(mz, walk)
{
	unsigned int i, cnt = 0;
	char n[32];

	for (i = 0; i < 10; i++) {
		snprintf(n, sizeof(n), "w%u", i);
		ASSERT_NE(NULL, hpm_memzone_reserve(n, 64, HPM_SOCKET_ANY, 0));
	}
	EXPECT_EQ(0, hpm_memzone_walk(count_cb, &cnt));
	EXPECT_EQ(10, cnt);
	cnt = 0;
	EXPECT_EQ(42, hpm_memzone_walk(stop_cb, &cnt));
	EXPECT_EQ(-EINVAL, hpm_memzone_walk(NULL, NULL));
}

/* Fill the table, check the limit, free half in a scattered order, refill. */
static void fill_table(struct __test_metadata *_metadata, unsigned int max)
{
	const struct hpm_memzone **zones;
	unsigned int i;
	char n[32];

	const struct hpm_memzone *mz;

	zones = calloc(max, sizeof(*zones));
	ASSERT_NE(NULL, zones);
	ASSERT_EQ(max, hpm_memzone_max());
	for (i = 0; i < max; i++) {
		snprintf(n, sizeof(n), "fill-%u", i);
		zones[i] = hpm_memzone_reserve(n, 64, HPM_SOCKET_ANY, 0);
		ASSERT_NE(NULL, zones[i]) TH_LOG("zone %u: %s", i, strerror(hpm_errno));
	}
	EXPECT_EQ(NULL, hpm_memzone_reserve("one-too-many", 64, HPM_SOCKET_ANY, 0));
	EXPECT_EQ(ENOSPC, hpm_errno);
	EXPECT_EQ(NULL, hpm_memzone_reserve("one-too-many", 0, HPM_SOCKET_ANY, 0));
	EXPECT_EQ(ENOSPC, hpm_errno);
	/* DPDK's test_memzone_free: a freed slot takes a zone of length 0. */
	ASSERT_EQ(0, hpm_memzone_free(zones[0]));
	mz = hpm_memzone_reserve("fill-biggest", 0, HPM_SOCKET_ANY, 0);
	ASSERT_NE(NULL, mz) TH_LOG("len 0 after a free: %s", strerror(hpm_errno));
	EXPECT_LT(0, mz->len);
	EXPECT_EQ(0, mz->len % 64);
	ASSERT_EQ(0, hpm_memzone_free(mz));
	zones[0] = hpm_memzone_reserve("fill-0", 64, HPM_SOCKET_ANY, 0);
	ASSERT_NE(NULL, zones[0]);
	/* Every name still resolves to its own zone (probe chains intact). */
	for (i = 0; i < max; i++) {
		snprintf(n, sizeof(n), "fill-%u", i);
		ASSERT_EQ(zones[i], hpm_memzone_lookup(n));
	}
	for (i = 0; i < max; i += 2)
		ASSERT_EQ(0, hpm_memzone_free(zones[i]));
	for (i = 0; i < max; i++) {
		snprintf(n, sizeof(n), "fill-%u", i);
		ASSERT_EQ(i % 2 ? zones[i] : NULL, hpm_memzone_lookup(n));
	}
	for (i = 0; i < max; i += 2) {
		snprintf(n, sizeof(n), "fill-%u", i);
		zones[i] = hpm_memzone_reserve(n, 64, HPM_SOCKET_ANY, 0);
		ASSERT_NE(NULL, zones[i]);
	}
	EXPECT_EQ(max, hpm_memzone_count());
	for (i = 0; i < max; i++)
		ASSERT_EQ(0, hpm_memzone_free(zones[i]));
	EXPECT_EQ(0, hpm_memzone_count());
	free(zones);
}

TEST_F(mz, default_table_2560)
{
	fill_table(_metadata, HPM_MEMZONE_DEFAULT_MAX);
}

TEST(table_configured_larger)
{
	char name[HPM_NAME_SIZE];
	struct hpm_init_opts o;

	opts_for(&o, name, "big");
	o.max_memzones = 6000;
	ASSERT_EQ(0, hpm_init(&o));
	fill_table(_metadata, 6000);
	EXPECT_EQ(0, hpm_cleanup());
}

/*
 * Lookup among many zones finds every one, including after frees leave
 * tombstones in the hash. Its speed is measured by `make bench`, not here.
 */
TEST_F(mz, lookup_among_1000)
{
	static const struct hpm_memzone *zones[1000];
	static char names[1000][32];
	unsigned int i;

	for (i = 0; i < 1000; i++) {
		snprintf(names[i], sizeof(names[i]), "many-zone-%u", i);
		zones[i] = hpm_memzone_reserve(names[i], 64, HPM_SOCKET_ANY, 0);
		ASSERT_NE(NULL, zones[i]);
	}
	for (i = 0; i < 20000; i++)
		ASSERT_EQ(zones[(i * 7) % 1000],
			  hpm_memzone_lookup(names[(i * 7) % 1000]));
	for (i = 0; i < 1000; i += 2)
		ASSERT_EQ(0, hpm_memzone_free(zones[i]));
	for (i = 0; i < 1000; i++) {
		const struct hpm_memzone *want = i % 2 ? zones[i] : NULL;

		ASSERT_EQ(want, hpm_memzone_lookup(names[i]));
	}
}

TEST_F(mz, secondary_sees_zones)
{
	const struct hpm_memzone *mz;
	int status;
	pid_t pid;

	mz = hpm_memzone_reserve("shared-zone", 4096, HPM_SOCKET_ANY, 0);
	ASSERT_NE(NULL, mz);
	strcpy(mz->addr, "hello from the primary");
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct hpm_init_opts c = self->o;
		const struct hpm_memzone *m;
		int rc = 0;

		hpm_cleanup();
		c.proc_type = HPM_PROC_SECONDARY;
		if (hpm_init(&c))
			_exit(10);
		m = hpm_memzone_lookup("shared-zone");
		if (m != mz || strcmp(m->addr, "hello from the primary"))
			rc = 11;
		else if (!hpm_memzone_reserve("from-secondary", 128, HPM_SOCKET_ANY, 0))
			rc = 12;
		hpm_cleanup();
		_exit(rc);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
	mz = hpm_memzone_lookup("from-secondary");
	ASSERT_NE(NULL, mz);
	EXPECT_EQ(128, mz->len);
}

TEST_HARNESS_MAIN
