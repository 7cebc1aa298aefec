// SPDX-License-Identifier: MIT
/*
 * Dynamic memory (--socket-limit): heaps grow by whole pages on the node
 * asked for and give them back once free, seen by every process without
 * messages. Runs on whatever backend HPMEM_OPTS names (selftests/run.sh:
 * anon, hugetlbfs; the guest: kmod), on the highest node with memory.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hpmem/hpmem.h>

#include "backend.h"
#include "config.h"
#include "dynmem.h"
#include "iommu.h"
#include "kselftest_harness.h"

#define MIB		(1ULL << 20)

/* The highest node with memory: node 1 in the guest, node 0 on most hosts. */
static int test_node(void)
{
	char path[64];
	int node = 0;

	for (int n = 1; n < HPM_MAX_NODES; n++) {
		snprintf(path, sizeof(path), "/sys/devices/system/node/node%d/meminfo", n);
		if (!access(path, F_OK))
			node = n;
	}
	return node;
}

static void opts_for(struct hpm_init_opts *o, char *name, const char *tag, int node,
		     uint64_t reserve_mib, uint64_t limit_mib)
{
	hpm_init_opts_default(o);
	snprintf(name, HPM_NAME_SIZE, "dm-%s-%d", tag, (int)getpid());
	o->region = name;
	o->socket_mem[node] = HPM_SOCKET_MEM(reserve_mib, limit_mib);
}

/*
 * The backend hpm_init() will take: what HPMEM_OPTS names, else the first
 * of auto's order, kmod when its device is there. Pool counters are read
 * only then: a host with hpmem.ko loaded may run the anon suite.
 */
static bool on_kmod(void)
{
	static int kmod = -1;
	const char *env = getenv("HPMEM_OPTS");
	struct hpm_init_opts o;

	if (kmod >= 0)
		return kmod;
	hpm_init_opts_default(&o);
	if (env && hpm_parse_string(&o, env))
		kmod = 0;
	else if (o.backend != HPM_BACKEND_AUTO)
		kmod = o.backend == HPM_BACKEND_KMOD;
	else
		kmod = !access("/dev/hpmem", R_OK | W_OK);
	return kmod;
}

/* kmod pool counter /sys/class/hpmem/hpmem/nodeN/@item; -1 elsewhere. */
static long pool_get(int node, const char *item)
{
	char path[96];
	long v = -1;
	FILE *f;

	if (!on_kmod())
		return -1;
	snprintf(path, sizeof(path), "/sys/class/hpmem/hpmem/node%d/%s", node, item);
	f = fopen(path, "re");
	if (!f)
		return -1;
	if (fscanf(f, "%ld", &v) != 1)
		v = -1;
	fclose(f);
	return v;
}

static long pool_free(int node)
{
	return pool_get(node, "free_pages");
}

/* Resize @node's kmod pool (root only): 0 or -errno. */
static int pool_resize(int node, long total)
{
	char path[96], buf[32];
	int fd, len, ret = 0;

	snprintf(path, sizeof(path), "/sys/class/hpmem/hpmem/node%d/total_pages", node);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	len = snprintf(buf, sizeof(buf), "%ld\n", total);
	if (write(fd, buf, (size_t)len) != len)
		ret = -errno;
	close(fd);
	return ret;
}

/* Waits up to a second for the pool's free count (a region dies async). */
static long pool_free_settled(int node, long want)
{
	long v = pool_free(node);

	for (int tries = 0; v != want && tries < 100; tries++) {
		usleep(10000);
		v = pool_free(node);
	}
	return v;
}

/* What @node can give a region: the kmod pool, or its 2 MiB hugepages. */
static uint64_t node_supply(int node)
{
	char path[128];
	long long v = 0;
	FILE *f;

	if (hpm_backend() == HPM_BACKEND_KMOD)
		snprintf(path, sizeof(path), "/sys/class/hpmem/hpmem/node%d/total_pages", node);
	else
		snprintf(path, sizeof(path),
			 "/sys/devices/system/node/node%d/hugepages/hugepages-2048kB/nr_hugepages",
			 node);
	f = fopen(path, "re");
	if (!f)
		return 0;
	if (fscanf(f, "%lld", &v) != 1)
		v = 0;
	fclose(f);
	return (uint64_t)v * 2 * MIB;
}

/* Free 2 MiB hugepages, in MiB, or -1. */
static long huge_free_mib(void)
{
	long v = -1;
	FILE *f = fopen("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages", "re");

	if (!f)
		return -1;
	if (fscanf(f, "%ld", &v) != 1)
		v = -1;
	fclose(f);
	return v < 0 ? -1 : v * 2;
}

/* What backs the region now: file blocks (hugetlbfs, anon) or -1 (kmod). */
static long long backed(void)
{
	uint64_t b;

	return hpm_dyn_backed_bytes(&b) ? -1 : (long long)b;
}

static uint64_t present(int node)
{
	struct hpm_mem_socket_info in;

	if (hpm_mem_socket_info(node, &in))
		return ~0ULL;
	return in.present;
}

static int count_node_pages(const struct hpm_memseg *ms, void *arg)
{
	uint64_t *per = arg;

	per[ms->socket]++;
	return 0;
}

static void fill(void *p, size_t len, unsigned int seed)
{
	uint32_t *w = p;

	for (size_t i = 0; i < len / 4; i++)
		w[i] = seed ^ (uint32_t)(i * 2654435761u);
}

static int check(const void *p, size_t len, unsigned int seed)
{
	const uint32_t *w = p;

	for (size_t i = 0; i < len / 4; i++)
		if (w[i] != (seed ^ (uint32_t)(i * 2654435761u)))
			return -1;
	return 0;
}

TEST(options)
{
	struct hpm_init_opts o;
	char *argv[] = { "prog", "--socket-mem", "4,8", "--socket-limit", "64,128",
			 "--legacy-mem", "--socket-mem", "2" };

	hpm_init_opts_default(&o);
	ASSERT_EQ(7, hpm_parse_args(&o, 8, argv));
	EXPECT_EQ(HPM_SOCKET_MEM(2, 64), o.socket_mem[0]);
	EXPECT_EQ(HPM_SOCKET_MEM(0, 128), o.socket_mem[1]);
	EXPECT_EQ(HPM_INIT_F_LEGACY_MEM, o.flags);
	EXPECT_EQ(-EINVAL, hpm_parse_string(&o, "--socket-limit 1,,2"));
	EXPECT_EQ(-EINVAL, hpm_parse_string(&o, "--legacy-mem=1"));
	/* A limit below what is taken at start makes no sense. */
	o.flags = 0;
	o.region = "dm-bad";
	o.socket_mem[0] = HPM_SOCKET_MEM(64, 32);
	EXPECT_EQ(-EINVAL, hpm_init(&o));
	o.socket_mem[0] = HPM_SOCKET_MEM(0, (1ULL << 30) + 1);
	EXPECT_EQ(-EINVAL, hpm_init(&o));
}

/*
 * The test node's kmod pool, grown for a test that needs more than it has
 * free, and put back to its size after the test, whatever the test did.
 */
FIXTURE(pool) {
	int node;
	long total0;	/* the pool's size before the test grew it, or -1 */
};

FIXTURE_SETUP(pool)
{
	self->node = test_node();
	self->total0 = -1;
}

FIXTURE_TEARDOWN(pool)
{
	int ret = -EBUSY;

	if (self->total0 < 0)
		return;
	/* A failed ASSERT left the region up: its pages go back with it. */
	if (hpm_cfg)
		hpm_cleanup();
	for (int tries = 0; ret == -EBUSY && tries < 100; tries++) {
		ret = pool_resize(self->node, self->total0);
		if (ret == -EBUSY)
			usleep(10000);
	}
	EXPECT_EQ(0, ret) TH_LOG("node %d's pool left at %ld pages, not %ld", self->node,
				 pool_get(self->node, "total_pages"), self->total0);
}

/*
 * kmod: grows the pool until @want pages are free (root only, within the
 * node's RAM and max_pages). 0, or -errno with the pool as it was.
 */
static int pool_make_free(FIXTURE_DATA(pool) *self, long want)
{
	long total = pool_get(self->node, "total_pages"), free = pool_free(self->node);

	if (total < 0 || free < 0)
		return -ENODEV;
	if (free >= want)
		return 0;
	self->total0 = total;
	return pool_resize(self->node, total + want - free);
}

static double secs_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0->tv_sec) + (t.tv_nsec - t0->tv_nsec) / 1e9;
}

/*
 * Start with nothing reserved, take 1 GiB in mixed sizes on one node, give
 * it all back. kmod: the node's pool grows for it first; where it cannot
 * (not root, too little RAM) and on hugetlbfs, the test scales down to
 * what there is.
 */
TEST_F_TIMEOUT(pool, grow_on_node_and_give_back, 120)
{
	static const size_t sizes[] = { 64, 1000, 4096, 70000, 300000, MIB, 3 * MIB + 17 };
	int node = self->node, ret;
	uint64_t limit = 1024, per[HPM_MAX_NODES] = { 0 }, before[HPM_MAX_NODES] = { 0 };
	size_t cap = 1 << 16, n = 0, total = 0;
	long pool0 = pool_free(node);
	struct hpm_malloc_socket_stats ms;
	struct hpm_init_opts o;
	struct timespec t0;
	long long file0;
	char name[HPM_NAME_SIZE];
	unsigned int live0;
	long pool1, huge;
	uint64_t p0;
	void **ptrs;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	/* The config and memzone pages, and the heap's headers: 16 MiB. */
	if (pool0 >= 0 && (uint64_t)pool0 * 2 < limit + 16) {
		ret = pool_make_free(self, (long)(limit + 16) / 2);
		if (ret)
			TH_LOG("cannot grow node %d's pool to %llu free pages: %s",
			       node, (unsigned long long)(limit + 16) / 2, strerror(-ret));
		pool0 = pool_free(node);
	}
	if (pool0 >= 0 && (uint64_t)pool0 * 2 < limit + 16) {
		limit = ((uint64_t)pool0 * 2 - 16) & ~1ULL;
		TH_LOG("kmod pool of node %d has %ld pages: %llu MiB instead of 1 GiB", node,
		       pool0, (unsigned long long)limit);
	}
	opts_for(&o, name, "grow", node, 0, limit);
	ASSERT_EQ(0, hpm_init(&o));
	/* hugetlbfs: selftests/run.sh reserves 256 pages, not 1 GiB. */
	huge = huge_free_mib();
	if (hpm_backend() == HPM_BACKEND_HUGETLBFS && huge >= 0 && (uint64_t)huge < limit + 16) {
		limit = ((uint64_t)huge - 16) & ~1ULL;
		TH_LOG("hugetlbfs has %ld MiB free: %llu MiB instead of 1 GiB", huge,
		       (unsigned long long)limit);
		ASSERT_EQ(0, hpm_cleanup());
		opts_for(&o, name, "grow", node, 0, limit);
		ASSERT_EQ(0, hpm_init(&o));
	}
	/* The config and the memzone table took a page or two of the pool. */
	pool1 = pool_free(node);
	/* The memzone table took what it needed: that much stays. */
	p0 = present(node);
	EXPECT_LE(p0, 2 * MIB);
	ASSERT_EQ(0, hpm_malloc_get_socket_stats(node, &ms));
	live0 = ms.alloc_count;
	hpm_memseg_walk(count_node_pages, before);
	file0 = backed();
	ptrs = calloc(cap, sizeof(*ptrs));
	ASSERT_NE(NULL, ptrs);
	/* Fill to 90% of the limit: headers and page rounding take the rest. */
	while (total + 4 * MIB < limit * MIB * 9 / 10 && n < cap) {
		size_t sz = sizes[n % HPM_ARRAY_SIZE(sizes)];

		ptrs[n] = hpm_malloc_socket("dm", sz, 0, node);
		ASSERT_NE(NULL, ptrs[n]) TH_LOG("block %zu of %zu bytes", n, sz);
		ASSERT_EQ(node, hpm_virt2memseg(ptrs[n])->socket);
		ASSERT_NE(HPM_BAD_IOVA, hpm_virt2iova(ptrs[n]));
		memset(ptrs[n], (int)(n & 0xff), sz);
		total += sz;
		n++;
	}
	EXPECT_GE(present(node), total);
	EXPECT_LE(present(node), limit * MIB);
	hpm_memseg_walk(count_node_pages, per);
	/* Grown on @node only. */
	for (int k = 0; k < HPM_MAX_NODES; k++) {
		if (k != node)
			EXPECT_EQ(before[k], per[k]);
	}
	EXPECT_GT(per[node], before[node]);
	if (pool1 >= 0)
		EXPECT_LT(pool_free(node), pool1);
	EXPECT_EQ(0, hpm_malloc_validate());
	for (size_t i = 0; i < n; i++) {
		size_t sz = sizes[i % HPM_ARRAY_SIZE(sizes)];
		const unsigned char *b = ptrs[i];

		ASSERT_EQ((unsigned char)(i & 0xff), b[0]);
		ASSERT_EQ((unsigned char)(i & 0xff), b[sz - 1]);
		hpm_free(ptrs[i]);
	}
	/* Cached small blocks count as in use: flush them to the heap. */
	EXPECT_EQ(0, hpm_malloc_validate());
	ASSERT_EQ(0, hpm_malloc_get_socket_stats(node, &ms));
	EXPECT_EQ(live0, ms.alloc_count);
	EXPECT_EQ(p0, present(node)) TH_LOG("%llu KiB left", (unsigned long long)present(node) >> 10);
	if (file0 >= 0)
		EXPECT_EQ(file0, backed());
	if (pool1 >= 0)
		EXPECT_EQ(pool1, pool_free(node));
	free(ptrs);
	EXPECT_EQ(0, hpm_cleanup());
	/* The region went with its last user: the pool is whole again. */
	if (pool0 >= 0)
		EXPECT_EQ(pool0, pool_free_settled(node, pool0));
	TH_LOG("%llu MiB limit, %zu blocks on node %d: %.1f s", (unsigned long long)limit, n,
	       node, secs_since(&t0));
}

/* --socket-limit exactly: what the heap holds never passes it; then ENOMEM. */
TEST(limit_is_exact)
{
	int node = test_node();
	struct hpm_mem_socket_info in;
	struct hpm_init_opts o;
	char name[HPM_NAME_SIZE];
	long long file0;
	void *p[64];
	int n = 0;

	opts_for(&o, name, "limit", node, 2, 16);
	ASSERT_EQ(0, hpm_init(&o));
	file0 = backed();
	while (n < 64) {
		p[n] = hpm_malloc_socket("dm", MIB, 0, node);
		if (!p[n])
			break;
		n++;
	}
	ASSERT_LT(n, 64);
	EXPECT_EQ(ENOMEM, hpm_errno);
	EXPECT_GE(n, 12);	/* 16 MiB less headers, the config page is extra */
	ASSERT_EQ(0, hpm_mem_socket_info(node, &in));
	EXPECT_EQ(16 * MIB, in.limit);
	EXPECT_EQ(2 * MIB, in.reserved);
	EXPECT_EQ(16 * MIB, in.present);
	/* A block larger than the limit never grows anything. */
	EXPECT_EQ(NULL, hpm_malloc_socket("dm", 32 * MIB, 0, node));
	EXPECT_EQ(ENOMEM, hpm_errno);
	while (n--)
		hpm_free(p[n]);
	EXPECT_EQ(0, hpm_malloc_validate());
	/* Back to the floor: the --socket-mem part stays. */
	EXPECT_EQ(2 * MIB, present(node));
	if (file0 >= 0)
		EXPECT_EQ(file0, backed());
	EXPECT_EQ(0, hpm_cleanup());
}

/*
 * Pages run out before the limit (hugetlbfs: the free hugepages; kmod: the
 * node's pool): NULL and ENOMEM, the heap still sound and usable, and
 * nothing kept once the blocks are freed, nor after cleanup.
 */
TEST(pages_run_out)
{
	int node = test_node();
	struct hpm_init_opts o;
	char name[HPM_NAME_SIZE];
	long have0, have1, inuse0, inuse1;
	uint64_t p0, limit;
	void *p[2048], *small;
	int n = 0;

	/* What the node can supply, in MiB: the limit is 64 MiB above. */
	have0 = on_kmod() ? pool_free(node) : huge_free_mib();
	if (on_kmod() && have0 >= 0)
		have0 *= 2;
	inuse0 = pool_get(node, "inuse_pages");
	if (have0 < 0 || have0 > 1900)
		SKIP(return, "needs hugetlbfs or kmod with under 1900 MiB free (%ld)", have0);
	limit = (uint64_t)have0 + 64;
	opts_for(&o, name, "out", node, 0, limit);
	ASSERT_EQ(0, hpm_init(&o));
	if (hpm_backend() != HPM_BACKEND_HUGETLBFS && hpm_backend() != HPM_BACKEND_KMOD) {
		EXPECT_EQ(0, hpm_cleanup());
		SKIP(return, "hugetlbfs and kmod only: their free pages are what runs out");
	}
	p0 = present(node);
	/* After the config pages, in pages (kmod) or MiB (hugetlbfs). */
	have1 = hpm_backend() == HPM_BACKEND_KMOD ? pool_free(node) : huge_free_mib();
	inuse1 = pool_get(node, "inuse_pages");
	while (n < 2048) {
		p[n] = hpm_malloc_socket("dm", MIB, 0, node);
		if (!p[n])
			break;
		n++;
	}
	ASSERT_LT(n, 2048);
	EXPECT_EQ(ENOMEM, hpm_errno);
	EXPECT_LT(present(node), limit * MIB);
	/*
	 * The pool ran out, not the limit: to its last page, since a grow
	 * that cannot have its spare room still takes the block's own pages.
	 */
	if (hpm_backend() == HPM_BACKEND_KMOD) {
		EXPECT_EQ(0, pool_free(node));
		EXPECT_EQ(inuse1 + (long)((present(node) - p0) >> 21), pool_get(node, "inuse_pages"));
	}
	/* Out of pages, the heap is sound. */
	EXPECT_EQ(0, hpm_malloc_validate());
	while (n--)
		hpm_free(p[n]);
	EXPECT_EQ(0, hpm_malloc_validate());
	EXPECT_EQ(p0, present(node));
	if (hpm_backend() == HPM_BACKEND_KMOD) {
		EXPECT_EQ(have1, pool_free(node));
		EXPECT_EQ(inuse1, pool_get(node, "inuse_pages"));
	} else {
		EXPECT_EQ(have1, huge_free_mib());
	}
	/* And serves again, growing where it needs to. */
	small = hpm_malloc_socket("dm", 4096, 0, node);
	EXPECT_NE(NULL, small);
	p[0] = hpm_malloc_socket("dm", 8 * MIB, 0, node);
	EXPECT_NE(NULL, p[0]);
	hpm_free(p[0]);
	hpm_free(small);
	EXPECT_EQ(0, hpm_malloc_validate());
	EXPECT_EQ(0, hpm_cleanup());
	/* The region went with its last user: the node has what it had. */
	if (inuse0 >= 0) {
		EXPECT_EQ(have0 / 2, pool_free_settled(node, have0 / 2));
		EXPECT_EQ(inuse0, pool_get(node, "inuse_pages"));
	} else {
		EXPECT_EQ(have0, huge_free_mib());
	}
}

/* A malloc/free loop across a page boundary does not grow and shrink each time. */
TEST(hysteresis)
{
	int node = test_node();
	struct hpm_mem_socket_info a, b;
	struct hpm_malloc_socket_stats ms;
	struct hpm_init_opts o;
	char name[HPM_NAME_SIZE];
	void *keep, *p;
	uint64_t p0;

	opts_for(&o, name, "hyst", node, 0, 32);
	ASSERT_EQ(0, hpm_init(&o));
	p0 = present(node);
	/* Fill what is there: the next block needs a new page. */
	ASSERT_EQ(0, hpm_malloc_get_socket_stats(node, &ms));
	keep = ms.greatest_free_size ? hpm_malloc_socket("dm", ms.greatest_free_size, 0, node) :
				       NULL;
	p = hpm_malloc_socket("dm", MIB, 0, node);
	ASSERT_NE(NULL, p);
	hpm_free(p);
	ASSERT_EQ(0, hpm_mem_socket_info(node, &a));
	for (int i = 0; i < 100; i++) {
		p = hpm_malloc_socket("dm", MIB, 0, node);
		ASSERT_NE(NULL, p);
		hpm_free(p);
	}
	ASSERT_EQ(0, hpm_mem_socket_info(node, &b));
	EXPECT_EQ(a.grown, b.grown);
	EXPECT_EQ(a.released, b.released);
	EXPECT_EQ(p0 + 2 * MIB, b.present);
	hpm_free(keep);
	EXPECT_EQ(0, hpm_malloc_validate());
	/* Room elsewhere again: the spare page goes. */
	EXPECT_EQ(p0, present(node));
	EXPECT_EQ(0, hpm_cleanup());
}

struct ev_log {
	int alloc, free;
	uintptr_t lo, hi;
};

static void ev_cb(enum hpm_mem_event type, const void *addr, size_t len, void *arg)
{
	struct ev_log *l = arg;

	if (type == HPM_MEM_EVENT_ALLOC)
		l->alloc++;
	else
		l->free++;
	if (!l->lo || (uintptr_t)addr < l->lo)
		l->lo = (uintptr_t)addr;
	if ((uintptr_t)addr + len > l->hi)
		l->hi = (uintptr_t)addr + len;
}

TEST(mem_events)
{
	int node = test_node();
	struct ev_log l = { 0 };
	struct hpm_init_opts o;
	char name[HPM_NAME_SIZE];
	uintptr_t p;

	EXPECT_EQ(-ENODEV, hpm_mem_event_callback_register("x", ev_cb, &l));
	opts_for(&o, name, "ev", node, 0, 32);
	ASSERT_EQ(0, hpm_init(&o));
	ASSERT_EQ(0, hpm_mem_event_callback_register("test", ev_cb, &l));
	EXPECT_EQ(-EEXIST, hpm_mem_event_callback_register("test", ev_cb, NULL));
	EXPECT_EQ(-EINVAL, hpm_mem_event_callback_register("", ev_cb, NULL));
	p = (uintptr_t)hpm_malloc_socket("dm", 3 * MIB, 0, node);
	ASSERT_NE(0, p);
	/* ALLOC came before the block was handed out, for the pages it needed. */
	EXPECT_EQ(1, l.alloc);
	EXPECT_GE(l.hi, p + 3 * MIB);
	hpm_free((void *)p);
	EXPECT_EQ(0, hpm_malloc_validate());
	EXPECT_EQ(1, l.free);
	EXPECT_EQ(0, hpm_mem_event_callback_unregister("test", &l));
	EXPECT_EQ(-ENOENT, hpm_mem_event_callback_unregister("test", &l));
	EXPECT_EQ(0, hpm_cleanup());
}

/*
 * A secondary attached before any growth reads what the primary put on
 * pages grown after it attached, and the primary what the secondary put
 * on pages the secondary grew; the secondary hears of the primary's
 * growth at its next sync.
 */
TEST(secondary_sees_growth)
{
	int node = test_node(), to[2], from[2], status;
	struct hpm_init_opts o;
	char name[HPM_NAME_SIZE];
	uintptr_t addr, theirs;
	uint64_t p0;
	pid_t pid;
	char ok;

	opts_for(&o, name, "sec", node, 0, 64);
	ASSERT_EQ(0, pipe(to));
	ASSERT_EQ(0, pipe(from));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct ev_log l = { 0 };
		uintptr_t mine;
		int ret = 1;

		alarm(60);
		if (read(to[0], &ok, 1) != 1)
			_exit(2);
		o.proc_type = HPM_PROC_SECONDARY;
		if (hpm_init(&o))
			_exit(3);
		hpm_mem_event_callback_register("sec", ev_cb, &l);
		if (write(from[1], "a", 1) != 1 || read(to[0], &addr, sizeof(addr)) != sizeof(addr))
			_exit(4);
		/* The primary grew; this process never allocated there. */
		if (check((void *)addr, 5 * MIB, 0xa11ce) || hpm_virt2iova((void *)addr) == HPM_BAD_IOVA)
			_exit(5);
		if (hpm_mem_event_sync() < 1 || l.alloc < 1)
			_exit(6);
		fill((void *)addr, 5 * MIB, 0xb0b);
		mine = (uintptr_t)hpm_malloc_socket("dm", 7 * MIB, 0, node);
		if (!mine)
			_exit(7);
		fill((void *)mine, 7 * MIB, 0xc0ffee);
		if (write(from[1], &mine, sizeof(mine)) == sizeof(mine) &&
		    read(to[0], &ok, 1) == 1) {
			hpm_free((void *)mine);
			ret = 0;
		}
		hpm_cleanup();
		_exit(ret);
	}
	ASSERT_EQ(0, hpm_init(&o));
	p0 = present(node);
	ASSERT_EQ(1, write(to[1], "g", 1));
	ASSERT_EQ(1, read(from[0], &ok, 1));
	addr = (uintptr_t)hpm_malloc_socket("dm", 5 * MIB, 0, node);
	ASSERT_NE(0, addr);
	fill((void *)addr, 5 * MIB, 0xa11ce);
	ASSERT_EQ(sizeof(addr), write(to[1], &addr, sizeof(addr)));
	ASSERT_EQ(sizeof(theirs), read(from[0], &theirs, sizeof(theirs)));
	EXPECT_EQ(0, check((void *)theirs, 7 * MIB, 0xc0ffee));
	EXPECT_EQ(node, hpm_virt2memseg((void *)theirs)->socket);
	EXPECT_EQ(0, check((void *)addr, 5 * MIB, 0xb0b));
	ASSERT_EQ(1, write(to[1], "d", 1));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_EQ(0, status) TH_LOG("secondary: status 0x%x", status);
	hpm_free((void *)addr);
	EXPECT_EQ(0, hpm_malloc_validate());
	EXPECT_EQ(p0, present(node));
	EXPECT_EQ(0, hpm_cleanup());
}

/* ---- four threads in two processes, through growth and shrink ---- */

struct stress_arg {
	int node;
	unsigned int seed;
	int secs;
	int fails;
	unsigned long ops;
};

static void *stress_thread(void *p)
{
	struct stress_arg *a = p;
	struct { void *p; size_t len; unsigned int seed; } slot[64] = { { 0 } };
	struct timespec t0, t;
	unsigned int r = a->seed;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		unsigned int i;
		size_t len;

		r = r * 1103515245u + 12345u;
		i = (r >> 8) % 64;
		if (slot[i].p) {
			if (check(slot[i].p, slot[i].len, slot[i].seed))
				a->fails++;
			hpm_free(slot[i].p);
			slot[i].p = NULL;
		} else {
			/* Mostly small, now and then a few pages: forces growth. */
			len = (r >> 16) % 16 ? 64 + (r >> 4) % 20000 : MIB + (r >> 4) % (5 * MIB);
			slot[i].p = hpm_malloc_socket("dm", len, 0, a->node);
			if (slot[i].p) {
				slot[i].len = len & ~3UL;
				slot[i].seed = r;
				fill(slot[i].p, slot[i].len, r);
			}
		}
		a->ops++;
		if ((a->ops & 1023) == 0) {
			clock_gettime(CLOCK_MONOTONIC, &t);
			if (t.tv_sec - t0.tv_sec >= a->secs)
				break;
		}
	}
	for (int i = 0; i < 64; i++) {
		if (slot[i].p && check(slot[i].p, slot[i].len, slot[i].seed))
			a->fails++;
		hpm_free(slot[i].p);
	}
	return NULL;
}

static int stress_two(int node, unsigned int seed, int secs, unsigned long *ops)
{
	struct stress_arg a[2] = { { node, seed, secs, 0, 0 }, { node, seed * 7 + 1, secs, 0, 0 } };
	pthread_t t[2];
	int fails = 0;

	for (int i = 0; i < 2; i++)
		if (pthread_create(&t[i], NULL, stress_thread, &a[i]))
			return -1;
	for (int i = 0; i < 2; i++) {
		pthread_join(t[i], NULL);
		fails += a[i].fails;
		*ops += a[i].ops;
	}
	hpm_heap_cache_flush();
	return fails;
}

FIXTURE(long_run) {
	int unused;
};

FIXTURE_SETUP(long_run)
{
	self->unused = 0;
}

FIXTURE_TEARDOWN(long_run)
{
}

TEST_F_TIMEOUT(long_run, stress_two_processes, 180)
{
	int node = test_node(), status, secs = 30, to[2];
	const char *env = getenv("DYNMEM_STRESS_SECS");
	struct hpm_mem_socket_info in;
	struct hpm_init_opts o;
	char name[HPM_NAME_SIZE];
	struct hpm_ring *r;
	unsigned long ops = 0;
	pid_t pid;
	char ok;

	if (env && atoi(env) > 0)
		secs = atoi(env);
	opts_for(&o, name, "stress", node, 2, 48);
	ASSERT_EQ(0, pipe(to));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		unsigned long cops = 0;
		int f;

		alarm(secs + 60);
		if (read(to[0], &ok, 1) != 1)
			_exit(2);
		o.proc_type = HPM_PROC_SECONDARY;
		if (hpm_init(&o))
			_exit(3);
		f = stress_two(node, 99, secs, &cops);
		if (hpm_malloc_validate())
			f++;
		hpm_cleanup();
		_exit(f ? 4 : 0);
	}
	ASSERT_EQ(0, hpm_init(&o));
	/* A ring and a mempool living through it all. */
	r = hpm_ring_create("dm-ring", 1024, node, 0);
	ASSERT_NE(NULL, r);
	ASSERT_EQ(1, write(to[1], "g", 1));
	EXPECT_EQ(0, stress_two(node, 42, secs, &ops));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_EQ(0, status) TH_LOG("secondary: status 0x%x", status);
	EXPECT_EQ(0, hpm_malloc_validate());
	EXPECT_EQ(0, hpm_ring_count(r));
	ASSERT_EQ(0, hpm_mem_socket_info(node, &in));
	TH_LOG("%lu ops here, %llu pages grown, %llu released", ops,
	       (unsigned long long)in.grown, (unsigned long long)in.released);
	EXPECT_GT(in.grown, 0);
	EXPECT_GT(in.released, 0);
	hpm_ring_free(r);
	EXPECT_EQ(0, hpm_malloc_validate());
	EXPECT_EQ(0, hpm_cleanup());
}

/*
 * A process killed while it grows the heap leaves no page behind: the
 * pages it backed are in the table (what the dead allocated stays theirs
 * until cleanup) or back in the pool, and all of them after cleanup.
 */
TEST(sigkill_during_growth)
{
	int node = test_node(), status;
	struct hpm_mem_socket_info in;
	struct hpm_init_opts o;
	char name[HPM_NAME_SIZE];
	long long file0, p0, grown;
	long pool0, inuse0, start_free, start_inuse;
	pid_t pid;
	void *p;

	start_free = pool_free(node);
	start_inuse = pool_get(node, "inuse_pages");
	opts_for(&o, name, "kill", node, 0, 64);
	ASSERT_EQ(0, hpm_init(&o));
	p0 = (long long)present(node);
	file0 = backed();
	pool0 = pool_free(node);
	inuse0 = pool_get(node, "inuse_pages");
	for (int round = 0; round < 5; round++) {
		pid = fork();
		ASSERT_LE(0, pid);
		if (pid == 0) {
			/* A forked primary's heap hooks still grow the shared heap. */
			for (;;) {
				void *q = hpm_malloc_socket("dm", 9 * MIB, 0, node);

				hpm_free(q);
			}
		}
		usleep(20000 + round * 7000);
		kill(pid, SIGKILL);
		ASSERT_EQ(pid, waitpid(pid, &status, 0));
	}
	/* The children grew (and gave back): the kills came amid growth. */
	ASSERT_EQ(0, hpm_mem_socket_info(node, &in));
	grown = (long long)in.grown;
	EXPECT_GT(grown, 0);
	/* Growth by this process takes the dead one's lock over and repairs. */
	p = hpm_malloc_socket("dm", 40 * MIB, 0, node);
	ASSERT_NE(NULL, p);
	hpm_free(p);
	EXPECT_EQ(0, hpm_malloc_validate());
	/* What is backed is what the table says: nothing was leaked below it. */
	if (file0 >= 0)
		EXPECT_EQ(file0 + (long long)present(node) - p0, backed());
	if (pool0 >= 0) {
		long pages = (long)(((long long)present(node) - p0) >> 21);

		EXPECT_EQ(pool0 - pages, pool_free(node));
		EXPECT_EQ(inuse0 + pages, pool_get(node, "inuse_pages"));
	}
	TH_LOG("%lld pages grown, %lld KiB left by the dead", grown,
	       ((long long)present(node) - p0) >> 10);
	EXPECT_EQ(0, hpm_cleanup());
	/* The region went with its last user: the pool is whole again. */
	if (start_free >= 0) {
		EXPECT_EQ(start_free, pool_free_settled(node, start_free));
		EXPECT_EQ(start_inuse, pool_get(node, "inuse_pages"));
	}
}

/* --legacy-mem: everything up front, nothing grows, even with a limit. */
TEST(legacy_mem)
{
	int node = test_node();
	struct hpm_init_opts o;
	char name[HPM_NAME_SIZE];

	opts_for(&o, name, "legacy", node, 8, 64);
	o.flags |= HPM_INIT_F_LEGACY_MEM;
	ASSERT_EQ(0, hpm_init(&o));
	EXPECT_FALSE(hpm_cfg->flags & HPM_CFG_F_DYNAMIC);
	EXPECT_EQ(NULL, hpm_malloc_socket("dm", 16 * MIB, 0, node));
	EXPECT_EQ(ENOMEM, hpm_errno);
	EXPECT_EQ(0, hpm_cleanup());
}

/*
 * No --socket-limit: dynamic behind a translating IOMMU, up to what the
 * node has at start; --socket-mem fixed with physical IOVAs and on anon.
 * The guest's iommu boot takes the first branch, its plain boot and the
 * host the second.
 */
TEST(default_follows_the_iommu)
{
	int node = test_node();
	bool translated = hpm_iommu_dma_model("/sys") == HPM_DMA_TRANSLATED;
	struct hpm_mem_socket_info in;
	struct hpm_init_opts o;
	char name[HPM_NAME_SIZE];
	uint64_t supply;
	void *p;

	opts_for(&o, name, "default", node, 4, 0);
	ASSERT_EQ(0, hpm_init(&o));
	supply = node_supply(node);
	if (!translated || hpm_backend() == HPM_BACKEND_ANON) {
		EXPECT_FALSE(hpm_cfg->flags & HPM_CFG_F_DYNAMIC);
		EXPECT_EQ(NULL, hpm_malloc_socket("dm", 8 * MIB, 0, node));
		EXPECT_EQ(ENOMEM, hpm_errno);
		EXPECT_EQ(0, hpm_cleanup());
		return;
	}
	EXPECT_TRUE(hpm_cfg->flags & HPM_CFG_F_DYNAMIC);
	ASSERT_EQ(0, hpm_mem_socket_info(node, &in));
	EXPECT_EQ(supply < HPM_DYN_DEFAULT_LIMIT ? supply : HPM_DYN_DEFAULT_LIMIT, in.limit);
	EXPECT_EQ(4 * MIB, in.reserved);
	if (supply >= 32 * MIB) {
		p = hpm_malloc_socket("dm", 8 * MIB, 0, node);
		ASSERT_NE(NULL, p);
		EXPECT_EQ(node, hpm_virt2memseg(p)->socket);
		EXPECT_GT(present(node), 4 * MIB);
		hpm_free(p);
		EXPECT_EQ(4 * MIB, present(node));
	}
	EXPECT_EQ(0, hpm_cleanup());
	/* --legacy-mem keeps today's model behind the IOMMU too. */
	opts_for(&o, name, "default", node, 4, 0);
	o.flags |= HPM_INIT_F_LEGACY_MEM;
	ASSERT_EQ(0, hpm_init(&o));
	EXPECT_FALSE(hpm_cfg->flags & HPM_CFG_F_DYNAMIC);
	EXPECT_EQ(0, hpm_cleanup());
}

/* A machine of HPM_MAX_NODES nodes with 100 GiB of pages each, for the plan alone. */
static uint64_t big_supply(struct hpm_be *be, int node)
{
	(void)be;
	return node < HPM_MAX_NODES ? 100ULL << 30 : 0;
}

static void plan_big(struct hpm_be *be, uint64_t max_size)
{
	static const struct hpm_be_ops ops = { .name = "fake", .supply = big_supply };

	memset(be, 0, sizeof(*be));
	be->ops = &ops;
	be->page_sz = 2 * MIB;
	be->page_shift = 21;
	be->limit_default = true;
	be->floor[1] = 64 * MIB;
	be->max_size = max_size;
}

/*
 * Default limits: each node at most 64 GiB, and all of them together
 * within what one region may span (kmod: HPMEM_REGION_MAX_PAGES), or
 * hpm_init() would fail on a big machine where fixed memory worked.
 */
TEST(default_limits_fit_a_region)
{
	struct hpm_be be;

	plan_big(&be, 0);
	ASSERT_EQ(0, hpm_dyn_plan(&be));
	/* No cap: 64 GiB a node, the config with the reserve on node 1. */
	EXPECT_EQ(64ULL << 30, be.slice_len[0]);
	EXPECT_EQ(64ULL << 30, be.slice_len[HPM_MAX_NODES - 1]);
	EXPECT_EQ(1, be.cfg_node);
	plan_big(&be, 256ULL << 30);
	ASSERT_EQ(0, hpm_dyn_plan(&be));
	EXPECT_LE(be.size, be.max_size);
	EXPECT_GT(be.size, 200ULL << 30);
	EXPECT_EQ(64 * MIB, be.floor[1]);
	EXPECT_LE(be.floor[1], be.slice_len[1]);
	for (int n = 0; n < HPM_MAX_NODES; n++)
		EXPECT_EQ(0, be.slice_len[n] % be.page_sz);
}

TEST_HARNESS_MAIN
