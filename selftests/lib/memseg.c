// SPDX-License-Identifier: MIT
/*
 * The memseg table: walks, contiguous runs, virt2iova/virt2memseg, dump,
 * and, over the kmod backend, agreement with the module's segment table.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/hpmem.h>
#include <hpmem/hpmem.h>

#include "config.h"
#include "memseg.h"
#include "kselftest_harness.h"

static bool node_online(int n)
{
	char path[64];

	snprintf(path, sizeof(path), "/sys/devices/system/node/node%d", n);
	return access(path, F_OK) == 0;
}

/* Two nodes where the backend can have them (anon fakes any node). */
static int nodes_for_test(void)
{
	struct hpm_init_opts env;
	const char *s = getenv(HPM_OPTS_ENV);

	hpm_init_opts_default(&env);
	if (s)
		hpm_parse_string(&env, s);
	return node_online(1) || env.backend == HPM_BACKEND_ANON ? 2 : 1;
}

FIXTURE(region) {
	char name[HPM_NAME_SIZE];
	int nodes;
	size_t total;
	const struct hpm_memseg *first;
	const struct hpm_memseg *last;
	size_t count;
};

FIXTURE_SETUP(region)
{
	struct hpm_init_opts o;
	int ret;

	hpm_init_opts_default(&o);
	snprintf(self->name, sizeof(self->name), "t-memseg-%d", (int)getpid());
	o.region = self->name;
	self->nodes = nodes_for_test();
	for (int n = 0; n < self->nodes; n++)
		o.socket_mem[n] = 12 + 4 * n;
	ret = hpm_init(&o);
	if (ret && self->nodes == 2) {
		/* Node 1 exists but has no hugepages: one node is still a test. */
		self->nodes = 1;
		o.socket_mem[1] = 0;
		ret = hpm_init(&o);
	}
	ASSERT_EQ(0, ret) TH_LOG("hpm_init: %s", hpm_strerror(ret));
}

FIXTURE_TEARDOWN(region)
{
	EXPECT_EQ(0, hpm_cleanup());
}

static int collect(const struct hpm_memseg *ms, void *arg)
{
	FIXTURE_DATA(region) *self = arg;

	if (!self->first)
		self->first = ms;
	self->last = ms;
	self->count++;
	self->total += ms->len;
	return 0;
}

TEST_F(region, walk_covers_region)
{
	const struct hpm_memseg *ms;
	int nodes_seen = 0, prev = -1;

	ASSERT_EQ(0, hpm_memseg_walk(collect, self));
	ASSERT_NE(NULL, self->first);
	EXPECT_LE((size_t)(12 << 20), self->total);
	EXPECT_NE(0, self->first->flags & HPM_MEMSEG_F_CONFIG);
	for (ms = self->first; ms <= self->last; ms++) {
		ASSERT_EQ(ms->len, ms->page_sz);
		ASSERT_TRUE(ms->page_sz == (2u << 20) || ms->page_sz == (1u << 30));
		ASSERT_EQ(0, (uintptr_t)ms->addr & (ms->page_sz - 1));
		if (ms > self->first)
			ASSERT_EQ((char *)ms[-1].addr + ms[-1].len, (char *)ms->addr);
		/*
		 * A dynamic region's table has an entry for every slot; a hole
		 * has no page yet, so no IOVA and no order to keep.
		 */
		if (ms->flags & HPM_MEMSEG_F_HOLE) {
			ASSERT_EQ(HPM_BAD_IOVA, ms->iova);
			continue;
		}
		ASSERT_NE(HPM_BAD_IOVA, ms->iova);
		if (hpm_iova_mode() == HPM_IOVA_VA)
			ASSERT_EQ((uintptr_t)ms->addr, ms->iova);
		/*
		 * With physical addresses, pages past the config of a fixed
		 * region are in physical order within their node (kmod: the
		 * module's order; hugetlbfs: remapped so), which is what makes
		 * IOVA-contiguous runs. A dynamic region's come as grown.
		 */
		if (hpm_iova_mode() == HPM_IOVA_PA && ms > self->first &&
		    !(hpm_cfg->flags & HPM_CFG_F_DYNAMIC) &&
		    !(ms[-1].flags & (HPM_MEMSEG_F_CONFIG | HPM_MEMSEG_F_HOLE)) &&
		    ms[-1].socket == ms->socket)
			ASSERT_LT(ms[-1].iova, ms->iova);
		/* Pages are grouped by node, in node order. */
		ASSERT_LE(prev, ms->socket);
		if (ms->socket != prev)
			nodes_seen++;
		prev = ms->socket;
	}
	EXPECT_EQ(self->nodes, nodes_seen);
	EXPECT_EQ(self->nodes, hpm_socket_count());
}

TEST_F(region, walk_stops_on_nonzero)
{
	EXPECT_EQ(-EINVAL, hpm_memseg_walk(NULL, NULL));
	EXPECT_EQ(-EINVAL, hpm_memseg_contig_walk(NULL, NULL));
}

static int count_to_three(const struct hpm_memseg *ms, void *arg)
{
	(void)ms;
	return ++*(int *)arg == 3 ? 42 : 0;
}

TEST_F(region, walk_returns_callback_value)
{
	int n = 0;

	ASSERT_EQ(0, hpm_memseg_walk(collect, self));
	if (self->count < 3)
		SKIP(return, "fewer than 3 pages");
	EXPECT_EQ(42, hpm_memseg_walk(count_to_three, &n));
	EXPECT_EQ(3, n);
}

TEST_F(region, virt2iova_consistent)
{
	static const size_t offs[] = { 0, 1, 63, 4096, 65537 };
	char local;

	ASSERT_EQ(0, hpm_memseg_walk(collect, self));
	for (const struct hpm_memseg *ms = self->first; ms <= self->last; ms++) {
		if (ms->flags & HPM_MEMSEG_F_HOLE) {
			/* No page there: no IOVA for any byte of it. */
			EXPECT_EQ(HPM_BAD_IOVA, hpm_virt2iova((const char *)ms->addr + 4096));
			continue;
		}
		for (size_t i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
			const char *va = (const char *)ms->addr + offs[i];

			ASSERT_EQ(ms, hpm_virt2memseg(va));
			ASSERT_EQ(ms->iova + offs[i], hpm_virt2iova(va));
		}
		ASSERT_EQ(ms, hpm_virt2memseg((const char *)ms->addr + ms->len - 1));
	}
	/* Just outside, both ends; and memory that is not ours. */
	EXPECT_EQ(HPM_BAD_IOVA, hpm_virt2iova((const char *)self->first->addr - 1));
	EXPECT_EQ(HPM_BAD_IOVA,
		  hpm_virt2iova((const char *)self->last->addr + self->last->len));
	EXPECT_EQ(HPM_BAD_IOVA, hpm_virt2iova(&local));
	EXPECT_EQ(HPM_BAD_IOVA, hpm_virt2iova(NULL));
	hpm_errno = 0;
	EXPECT_EQ(NULL, hpm_virt2memseg(&local));
	EXPECT_EQ(EINVAL, hpm_errno);
}

struct runs {
	const struct hpm_memseg *expect_next;
	size_t total;
	int n;
};

static int check_run(const struct hpm_memseg *first, size_t len, void *arg)
{
	struct runs *r = arg;
	const struct hpm_memseg *ms, *end = first + len / first->len;

	/* Runs tile the table in order, around a dynamic region's holes... */
	if (r->expect_next) {
		const struct hpm_memseg *e = r->expect_next;

		while (e < first && (e->flags & HPM_MEMSEG_F_HOLE))
			e++;
		if (first != e)
			return -100;
	}
	if (len % first->len)
		return -101;
	/* ...each contiguous in VA and IOVA on one node... */
	for (ms = first + 1; ms < end; ms++) {
		if (ms->socket != first->socket ||
		    ms->iova != ms[-1].iova + ms[-1].len)
			return -102;
	}
	if (!hpm_memseg_iova_contig(first->addr, len))
		return -103;
	/* ...and maximal: the next page does not continue it. */
	if (r->expect_next && r->n > 0) {
		const struct hpm_memseg *prev = first - 1;

		if (prev->socket == first->socket && prev->iova + prev->len == first->iova)
			return -104;
	}
	r->expect_next = end;
	r->total += len;
	r->n++;
	return 0;
}

TEST_F(region, contig_walk_runs)
{
	struct runs r = { 0 };

	ASSERT_EQ(0, hpm_memseg_walk(collect, self));
	ASSERT_EQ(0, hpm_memseg_contig_walk(check_run, &r));
	EXPECT_EQ(self->total, r.total);
	EXPECT_LE(self->nodes, r.n);
	if (hpm_iova_mode() == HPM_IOVA_VA)
		EXPECT_EQ(self->nodes, r.n);
	TH_LOG("%d contiguous runs over %zu pages", r.n, self->count);
}

TEST_F(region, iova_contig_edges)
{
	const struct hpm_memseg *ms;

	ASSERT_EQ(0, hpm_memseg_walk(collect, self));
	ms = self->first;
	EXPECT_TRUE(hpm_memseg_iova_contig(ms->addr, 0));
	EXPECT_TRUE(hpm_memseg_iova_contig(ms->addr, ms->len));
	EXPECT_FALSE(hpm_memseg_iova_contig((char *)ms->addr - 1, 2));
	EXPECT_FALSE(hpm_memseg_iova_contig(self->last->addr, self->last->len + 1));
	EXPECT_FALSE(hpm_memseg_iova_contig(ms->addr, SIZE_MAX));
	/* Across each page boundary: contiguous iff the IOVAs follow. */
	for (; ms < self->last; ms++) {
		bool follows = ms[1].iova == ms->iova + ms->len;

		ASSERT_EQ(follows, hpm_memseg_iova_contig((char *)ms->addr + ms->len - 8, 16));
	}
}

TEST_F(region, dump_lists_runs)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	ASSERT_NE(NULL, f);
	hpm_memseg_dump(f);
	fclose(f);
	EXPECT_NE(NULL, strstr(buf, self->name));
	EXPECT_NE(NULL, strstr(buf, "[config]"));
	EXPECT_NE(NULL, strstr(buf, "socket 0"));
	if (self->nodes == 2)
		EXPECT_NE(NULL, strstr(buf, "socket 1"));
	free(buf);
}

TEST_F(region, socket_allocations_land_on_node)
{
	for (int n = 0; n < self->nodes; n++) {
		void *p = hpm_malloc_socket("t", 1 << 20, 0, n);
		const struct hpm_memseg *ms;

		ASSERT_NE(NULL, p) TH_LOG("node %d: %s", n, hpm_strerror(hpm_errno));
		ms = hpm_virt2memseg(p);
		ASSERT_NE(NULL, ms);
		EXPECT_EQ(n, ms->socket);
		ms = hpm_virt2memseg((char *)p + (1 << 20) - 1);
		ASSERT_NE(NULL, ms);
		EXPECT_EQ(n, ms->socket);
		hpm_free(p);
	}
}

/* Over kmod: the memsegs are the module's REGION_SEGS, by offset. */
TEST_F(region, kmod_matches_module_segs)
{
	struct hpmem_region_attach at = { .argsz = sizeof(at) };
	struct hpmem_region_segs rs = { .argsz = sizeof(rs) };
	struct hpmem_seg *segs;
	int fd;

	if (hpm_backend() != HPM_BACKEND_KMOD)
		SKIP(return, "backend is %s, not kmod", hpm_backend_name(hpm_backend()));
	ASSERT_EQ(0, hpm_memseg_walk(collect, self));
	fd = open(HPMEM_DEVICE_PATH, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, fd);
	snprintf(at.name, sizeof(at.name), "%s", self->name);
	ASSERT_EQ(0, ioctl(fd, HPMEM_IOC_REGION_ATTACH, &at));
	ASSERT_EQ(self->count, at.nr_pages);
	segs = calloc(at.nr_pages, sizeof(*segs));
	ASSERT_NE(NULL, segs);
	rs.nr_segs = (uint32_t)at.nr_pages;
	rs.segs = (uintptr_t)segs;
	ASSERT_EQ(0, ioctl(fd, HPMEM_IOC_REGION_SEGS, &rs));
	ASSERT_EQ(at.nr_pages, rs.nr_segs);
	for (uint32_t i = 0; i < rs.nr_segs; i++) {
		const struct hpm_memseg *ms = self->first + segs[i].offset / self->first->page_sz;

		ASSERT_EQ((char *)self->first->addr + segs[i].offset, (char *)ms->addr);
		EXPECT_EQ((int)segs[i].node, ms->socket);
		if (hpm_iova_mode() == HPM_IOVA_PA)
			EXPECT_EQ(segs[i].iova, ms->iova);
		/* The module sorts by physical address. */
		if (i && segs[i].phys)
			EXPECT_LT(segs[i - 1].phys, segs[i].phys);
	}
	free(segs);
	close(fd);
}

TEST_HARNESS_MAIN
