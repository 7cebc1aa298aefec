// SPDX-License-Identifier: MIT
/*
 * IOVA modes: how auto chooses (a pure function, fed fake facts), the
 * sysfs probes on a fake tree, usable-range checks, and the IOVAs that
 * compact and va mode give every layer (memsegs, heap, memzones, mbufs).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <hpmem/hpmem.h>

#include "iommu.h"

#include "kselftest_harness.h"

#define GiB		(1ULL << 30)
#define HPM_BASE	0x200000000000ULL

/* ---- the auto decision ---- */

struct choice {
	bool addrs;
	enum hpm_dma_model dma;
	unsigned int width;
	uint64_t base, size;
	enum hpm_iova_mode want;
};

TEST(auto_choice_table)
{
	static const struct choice t[] = {
		/* Devices DMA to physical addresses: PA when they are visible. */
		{ true, HPM_DMA_NO_IOMMU, 0, HPM_BASE, GiB, HPM_IOVA_PA },
		{ true, HPM_DMA_PASSTHROUGH, 48, HPM_BASE, GiB, HPM_IOVA_PA },
		/* ... and VA (no true mode) when they are not, as before. */
		{ false, HPM_DMA_NO_IOMMU, 0, HPM_BASE, GiB, HPM_IOVA_VA },
		{ false, HPM_DMA_PASSTHROUGH, 0, HPM_BASE, GiB, HPM_IOVA_VA },
		/* Translated: visible PAs do not matter; the width decides. */
		{ true, HPM_DMA_TRANSLATED, 48, HPM_BASE, GiB, HPM_IOVA_VA },
		{ false, HPM_DMA_TRANSLATED, 48, HPM_BASE, GiB, HPM_IOVA_VA },
		{ true, HPM_DMA_TRANSLATED, 39, HPM_BASE, GiB, HPM_IOVA_COMPACT },
		{ false, HPM_DMA_TRANSLATED, 39, HPM_BASE, GiB, HPM_IOVA_COMPACT },
		{ false, HPM_DMA_TRANSLATED, 0, HPM_BASE, GiB, HPM_IOVA_COMPACT },
		{ false, HPM_DMA_TRANSLATED, 0, 0x10000000ULL, GiB, HPM_IOVA_COMPACT },
		/* The end may touch 2^width (exclusive), not pass it. */
		{ false, HPM_DMA_TRANSLATED, 39, (1ULL << 39) - GiB, GiB, HPM_IOVA_VA },
		{ false, HPM_DMA_TRANSLATED, 39, (1ULL << 39) - GiB + 4096, GiB,
		  HPM_IOVA_COMPACT },
		{ false, HPM_DMA_TRANSLATED, 64, HPM_BASE, GiB, HPM_IOVA_VA },
		/* An old module that does not say: the 0.1 rule. */
		{ true, HPM_DMA_UNKNOWN, 0, HPM_BASE, GiB, HPM_IOVA_PA },
		{ false, HPM_DMA_UNKNOWN, 0, HPM_BASE, GiB, HPM_IOVA_VA },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct hpm_iova_facts f = {
			.addrs = t[i].addrs, .dma = t[i].dma, .width = t[i].width,
			.base = t[i].base, .size = t[i].size,
		};
		enum hpm_iova_mode got = HPM_IOVA_AUTO;
		char why[256] = "";
		bool warn = true;

		ASSERT_EQ(0, hpm_iova_choose(HPM_IOVA_AUTO, &f, &got, why, sizeof(why), &warn));
		EXPECT_EQ(t[i].want, got) TH_LOG("row %zu: %s", i, why);
		EXPECT_FALSE(warn) TH_LOG("row %zu: %s", i, why);
		EXPECT_EQ(0, strncmp(why, "auto: ", 6)) TH_LOG("row %zu: '%s'", i, why);
	}
}

TEST(explicit_choice)
{
	struct hpm_iova_facts f = { .dma = HPM_DMA_TRANSLATED, .width = 39,
				    .base = HPM_BASE, .size = GiB };
	enum hpm_iova_mode got;
	char why[256];
	bool warn;

	/* PA with hidden addresses: no true mode, refused. */
	f.addrs = false;
	EXPECT_EQ(-EPERM, hpm_iova_choose(HPM_IOVA_PA, &f, &got, why, sizeof(why), &warn));
	/* PA under a translating IOMMU: only for VFIO, with a warning. */
	f.addrs = true;
	ASSERT_EQ(0, hpm_iova_choose(HPM_IOVA_PA, &f, &got, why, sizeof(why), &warn));
	EXPECT_EQ(HPM_IOVA_PA, got);
	EXPECT_TRUE(warn);
	EXPECT_NE(NULL, strstr(why, "VFIO"));
	f.dma = HPM_DMA_NO_IOMMU;
	ASSERT_EQ(0, hpm_iova_choose(HPM_IOVA_PA, &f, &got, why, sizeof(why), &warn));
	EXPECT_FALSE(warn);
	/* VA beyond a 39-bit IOMMU: allowed, but the fix is named. */
	f.dma = HPM_DMA_TRANSLATED;
	ASSERT_EQ(0, hpm_iova_choose(HPM_IOVA_VA, &f, &got, why, sizeof(why), &warn));
	EXPECT_EQ(HPM_IOVA_VA, got);
	EXPECT_TRUE(warn);
	EXPECT_NE(NULL, strstr(why, "--iova-mode compact"));
	f.width = 48;
	ASSERT_EQ(0, hpm_iova_choose(HPM_IOVA_VA, &f, &got, why, sizeof(why), &warn));
	EXPECT_FALSE(warn);
	ASSERT_EQ(0, hpm_iova_choose(HPM_IOVA_COMPACT, &f, &got, why, sizeof(why), &warn));
	EXPECT_EQ(HPM_IOVA_COMPACT, got);
	EXPECT_FALSE(warn);
	EXPECT_EQ(-EINVAL, hpm_iova_choose((enum hpm_iova_mode)9, &f, &got, why,
					   sizeof(why), &warn));
}

/* ---- usable IOVA ranges ---- */

TEST(range_check)
{
	/* A 39-bit IOMMU with x86's MSI window carved out, as VFIO reports it. */
	static const struct hpm_iova_range r[] = {
		{ 0, 0xfedfffffULL }, { 0xfef00000ULL, (1ULL << 39) - 1 },
	};

	EXPECT_EQ(0, hpm_iova_range_check(r, 2, HPM_IOVA_COMPACT_BASE, GiB));
	EXPECT_EQ(0, hpm_iova_range_check(r, 2, 0, 0xfee00000ULL));
	EXPECT_EQ(0, hpm_iova_range_check(r, 2, (1ULL << 39) - 4096, 4096));
	/* va mode at the default base: far beyond. */
	EXPECT_EQ(-ERANGE, hpm_iova_range_check(r, 2, HPM_BASE, GiB));
	/* One past the end, and a range across the MSI hole. */
	EXPECT_EQ(-ERANGE, hpm_iova_range_check(r, 2, (1ULL << 39) - 4096, 8192));
	EXPECT_EQ(-ERANGE, hpm_iova_range_check(r, 2, 0xfe000000ULL, 32ULL << 20));
	EXPECT_EQ(-ERANGE, hpm_iova_range_check(r, 2, 0xfee00000ULL, 4096));
	/* No ranges known (old kernel): the map ioctl decides. */
	EXPECT_EQ(0, hpm_iova_range_check(NULL, 0, HPM_BASE, GiB));
	/* Empty and wrapping ranges never fit. */
	EXPECT_EQ(-ERANGE, hpm_iova_range_check(r, 2, 4096, 0));
	EXPECT_EQ(-ERANGE, hpm_iova_range_check(NULL, 0, ~0ULL - 4095, 8192));
}

/* ---- sysfs probes on a fake tree ---- */

FIXTURE(fake_sysfs)
{
	char root[64];
};

FIXTURE_SETUP(fake_sysfs)
{
	snprintf(self->root, sizeof(self->root), "/tmp/hpmem-sysfs.XXXXXX");
	ASSERT_NE(NULL, mkdtemp(self->root));
}

FIXTURE_TEARDOWN(fake_sysfs)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", self->root);
	if (system(cmd))
		TH_LOG("cannot remove %s", self->root);
}

/* Creates @root/@rel (parents too) holding @text. */
static int put(const char *root, const char *rel, const char *text)
{
	char path[256], *p;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	for (p = path + strlen(root) + 1; (p = strchr(p, '/')); p++) {
		*p = '\0';
		if (mkdir(path, 0755) && errno != EEXIST)
			return -1;
		*p = '/';
	}
	f = fopen(path, "w");
	if (!f)
		return -1;
	fputs(text, f);
	return fclose(f);
}

TEST_F(fake_sysfs, dma_model)
{
	EXPECT_EQ(HPM_DMA_NO_IOMMU, hpm_iommu_dma_model(self->root));
	ASSERT_EQ(0, put(self->root, "kernel/iommu_groups/0/type", "identity\n"));
	ASSERT_EQ(0, put(self->root, "kernel/iommu_groups/1/type", "identity\n"));
	EXPECT_EQ(HPM_DMA_PASSTHROUGH, hpm_iommu_dma_model(self->root));
	ASSERT_EQ(0, put(self->root, "kernel/iommu_groups/7/type", "DMA-FQ\n"));
	EXPECT_EQ(HPM_DMA_TRANSLATED, hpm_iommu_dma_model(self->root));
	ASSERT_EQ(0, put(self->root, "kernel/iommu_groups/7/type", "DMA\n"));
	EXPECT_EQ(HPM_DMA_TRANSLATED, hpm_iommu_dma_model(self->root));
	ASSERT_EQ(0, put(self->root, "kernel/iommu_groups/7/type", "DMA-FQX\n"));
	EXPECT_EQ(HPM_DMA_PASSTHROUGH, hpm_iommu_dma_model(self->root));
}

TEST_F(fake_sysfs, intel_width)
{
	char cap[32];

	EXPECT_EQ(0u, hpm_iommu_width(self->root));
	/* An AMD IOMMU has no intel-iommu/cap: width unknown. */
	ASSERT_EQ(0, put(self->root, "class/iommu/ivhd0/amd-iommu/cap", "0\n"));
	EXPECT_EQ(0u, hpm_iommu_width(self->root));
	/* MGAW holds width - 1 in bits 21:16; the rest must not leak in. */
	snprintf(cap, sizeof(cap), "%llx\n", 0xd2008c2200000286ULL | (47ULL << 16));
	ASSERT_EQ(0, put(self->root, "class/iommu/dmar0/intel-iommu/cap", cap));
	EXPECT_EQ(48u, hpm_iommu_width(self->root));
	/* The smallest unit wins: QEMU's intel-iommu default is 39 bits. */
	snprintf(cap, sizeof(cap), "%llx\n", (0xffc00000003fffffULL & ~(0x3fULL << 16)) |
		 (38ULL << 16));
	ASSERT_EQ(0, put(self->root, "class/iommu/dmar1/intel-iommu/cap", cap));
	EXPECT_EQ(39u, hpm_iommu_width(self->root));
	ASSERT_EQ(0, put(self->root, "class/iommu/dmar2/intel-iommu/cap", "zz\n"));
	EXPECT_EQ(39u, hpm_iommu_width(self->root));
}

/* ---- what each mode gives every layer ---- */

static void opts_for(struct hpm_init_opts *o, char *name, const char *tag,
		     enum hpm_iova_mode mode)
{
	hpm_init_opts_default(o);
	snprintf(name, HPM_NAME_SIZE, "t-%s-%d", tag, (int)getpid());
	o->region = name;
	o->socket_mem[0] = 16;
	o->iova_mode = mode;
}

static int first_seg(const struct hpm_memseg *ms, void *arg)
{
	*(const struct hpm_memseg **)arg = ms;
	return 1;
}

static int count_runs(const struct hpm_memseg *first, size_t len, void *arg)
{
	(void)first;
	(void)len;
	(*(int *)arg)++;
	return 0;
}

/* IOVA of @p as @mode makes it, from the region base @base. */
static uint64_t want_iova(enum hpm_iova_mode mode, uintptr_t base, const void *p)
{
	uintptr_t off = (uintptr_t)p - base;

	return mode == HPM_IOVA_COMPACT ? HPM_IOVA_COMPACT_BASE + off : base + off;
}

static void check_layers(struct __test_metadata *_metadata, enum hpm_iova_mode mode)
{
	const struct hpm_memseg *ms = NULL;
	const struct hpm_memzone *mz;
	struct hpm_mempool *mp;
	struct hpm_mbuf *m;
	uintptr_t base;
	size_t total;
	char name[32];
	void *p;
	int runs = 0;

	ASSERT_EQ(mode, hpm_iova_mode());
	ASSERT_EQ(1, hpm_memseg_walk(first_seg, &ms));
	base = (uintptr_t)ms->addr;
	total = 16u << 20;
	EXPECT_EQ(want_iova(mode, base, ms->addr), ms->iova);
	for (size_t x = 0; x < total; x += total / 8 - 1)
		EXPECT_EQ(want_iova(mode, base, (void *)(base + x)),
			  hpm_virt2iova((void *)(base + x)));
	EXPECT_EQ(want_iova(mode, base, (void *)(base + total - 1)),
		  hpm_virt2iova((void *)(base + total - 1)));
	/* One node, VA- and IOVA-contiguous: one run, one VFIO mapping. */
	ASSERT_EQ(0, hpm_memseg_contig_walk(count_runs, &runs));
	EXPECT_EQ(1, runs);

	p = hpm_malloc("iova", 100000, 64);
	ASSERT_NE(NULL, p);
	EXPECT_EQ(want_iova(mode, base, p), hpm_virt2iova(p));
	hpm_free(p);

	snprintf(name, sizeof(name), "mz-%d", (int)getpid());
	mz = hpm_memzone_reserve(name, 1 << 20, 0, 0);
	ASSERT_NE(NULL, mz);
	EXPECT_EQ(want_iova(mode, base, mz->addr), mz->iova);
	EXPECT_EQ(0, hpm_memzone_free(mz));

	snprintf(name, sizeof(name), "mb-%d", (int)getpid());
	mp = hpm_pktmbuf_pool_create(name, 63, 0, 0, HPM_MBUF_DEFAULT_BUF_SIZE, 0);
	ASSERT_NE(NULL, mp);
	m = hpm_pktmbuf_alloc(mp);
	ASSERT_NE(NULL, m);
	EXPECT_EQ(want_iova(mode, base, m->buf_addr), m->buf_iova);
	hpm_pktmbuf_free(m);
	hpm_mempool_free(mp);
}

TEST(compact_iovas)
{
	char name[HPM_NAME_SIZE];
	struct hpm_init_opts o;

	opts_for(&o, name, "compact", HPM_IOVA_COMPACT);
	ASSERT_EQ(0, hpm_init(&o)) TH_LOG("%s", hpm_strerror(hpm_errno));
	check_layers(_metadata, HPM_IOVA_COMPACT);
	EXPECT_EQ(0, hpm_cleanup());
}

TEST(va_iovas)
{
	char name[HPM_NAME_SIZE];
	struct hpm_init_opts o;

	opts_for(&o, name, "va", HPM_IOVA_VA);
	ASSERT_EQ(0, hpm_init(&o)) TH_LOG("%s", hpm_strerror(hpm_errno));
	check_layers(_metadata, HPM_IOVA_VA);
	EXPECT_EQ(0, hpm_cleanup());
}

/* --vfio needs nothing special from the file backends: they always pin. */
TEST(vfio_flag_init)
{
	char name[HPM_NAME_SIZE];
	struct hpm_init_opts o;
	int ret;

	opts_for(&o, name, "vfioflag", HPM_IOVA_AUTO);
	o.flags = HPM_INIT_F_VFIO;
	ret = hpm_init(&o);
	if (ret == -ENOTSUP)
		SKIP(return, "this hpmem.ko cannot make pinnable regions");
	ASSERT_EQ(0, ret);
	EXPECT_NE(HPM_IOVA_AUTO, hpm_iova_mode());
	EXPECT_EQ(0, hpm_cleanup());
}

/* Auto on this machine agrees with the pure function fed its facts. */
TEST(auto_matches_machine)
{
	char name[HPM_NAME_SIZE];
	struct hpm_init_opts o;
	enum hpm_dma_model dma = hpm_iommu_dma_model(HPM_SYSFS_ROOT);

	opts_for(&o, name, "auto", HPM_IOVA_AUTO);
	ASSERT_EQ(0, hpm_init(&o));
	if (dma == HPM_DMA_TRANSLATED) {
		EXPECT_NE(HPM_IOVA_PA, hpm_iova_mode());
	} else if (hpm_backend() == HPM_BACKEND_ANON) {
		EXPECT_EQ(HPM_IOVA_VA, hpm_iova_mode());
	}
	EXPECT_EQ(0, hpm_cleanup());
}

TEST_HARNESS_MAIN
