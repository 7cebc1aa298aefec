// SPDX-License-Identifier: MIT
/* Per-node pools: counters, resizing through the ioctl (grow, shrink,
 * EBUSY, ENOMEM with rollback, EPERM) and pages going back to the kernel. */
#include "hpmem_test.h"

/*
 * Free memory of a node in KiB: MemFree plus the pages parked on the
 * per-CPU free lists, which MemFree does not count and which is where the
 * allocator puts freed order-9 pages first.
 */
static long node_memfree_kb(unsigned int node)
{
	static char buf[1 << 17];
	char path[96], *s, *line, *save = NULL;
	long kb, pcp = 0;
	int in_node = 0;

	snprintf(path, sizeof(path), "/sys/devices/system/node/node%u/meminfo", node);
	if (read_file(path, buf, sizeof(buf)) < 0)
		return -1;
	s = strstr(buf, "MemFree:");
	if (!s)
		return -1;
	kb = strtol(s + 8, NULL, 10);
	if (read_file("/proc/zoneinfo", buf, sizeof(buf)) < 0)
		return kb;
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		unsigned int n;

		if (sscanf(line, "Node %u,", &n) == 1)
			in_node = n == node;
		else if (in_node && (s = strstr(line, "count:")))
			pcp += strtol(s + 6, NULL, 10);
	}
	return kb + pcp * (sysconf(_SC_PAGESIZE) / 1024);
}

static long node_memtotal_kb(unsigned int node)
{
	char path[96], buf[4096], *s;

	snprintf(path, sizeof(path), "/sys/devices/system/node/node%u/meminfo", node);
	if (read_file(path, buf, sizeof(buf)) < 0)
		return -1;
	s = strstr(buf, "MemTotal:");
	return s ? strtol(s + 9, NULL, 10) : -1;
}

FIXTURE(pool) {
	int fd;
	struct hpmem_info info;
	struct hpmem_node_info n0;
};

FIXTURE_SETUP(pool)
{
	self->fd = open(HPMEM_DEVICE_PATH, O_RDWR | O_CLOEXEC);
	if (self->fd < 0)
		return;
	ASSERT_EQ(0, hp_info(self->fd, &self->info));
	ASSERT_EQ(0, hp_node_info(self->fd, 0, &self->n0));
}

FIXTURE_TEARDOWN(pool)
{
	/* leave node 0's pool as it was found */
	if (self->fd >= 0) {
		hp_resize(self->fd, 0, self->n0.total_pages);
		close(self->fd);
	}
}

#define NEED_FD() do {							\
	if (self->fd < 0)						\
		SKIP(return, "%s absent", HPMEM_DEVICE_PATH);		\
} while (0)

TEST_F(pool, counters)
{
	char name[HPMEM_NAME_MAX];
	struct hpmem_node_info a, b;
	char *p;
	int rfd;

	NEED_FD();
	for (unsigned int n = 0; n < 64; n++) {
		if (!(self->info.node_mask & (1ULL << n)))
			continue;
		ASSERT_EQ(0, hp_node_info(self->fd, n, &a));
		EXPECT_EQ(a.total_pages,
			  a.free_pages + a.inuse_pages + a.busy_pages);
		EXPECT_LE(a.mapped_pages, a.inuse_pages);
		EXPECT_LT(0, a.total_pages);
	}

	ASSERT_EQ(0, hp_node_info(self->fd, 0, &a));
	rfd = open(HPMEM_DEVICE_PATH, O_RDWR);
	ASSERT_LE(0, rfd);
	ASSERT_EQ(0, hp_create(rfd, UNIQUE_NAME(name, "cnt"), 0));
	ASSERT_EQ(0, hp_grow(rfd, 0, 3, NULL));
	ASSERT_EQ(0, hp_node_info(self->fd, 0, &b));
	EXPECT_EQ(a.total_pages, b.total_pages);
	EXPECT_EQ(a.free_pages - 3, b.free_pages);
	EXPECT_EQ(a.inuse_pages + 3, b.inuse_pages);
	EXPECT_EQ(a.mapped_pages, b.mapped_pages);

	p = map_region(rfd, 2 * PG, PG);
	ASSERT_NE(MAP_FAILED, p);
	p[0] = 1;
	p[PG] = 1;
	ASSERT_EQ(0, hp_node_info(self->fd, 0, &b));
	/* "pages of regions that are mapped": all three, not just the two
	 * this VMA covers */
	EXPECT_EQ(a.mapped_pages + 3, b.mapped_pages);
	munmap(p, 2 * PG);
	ASSERT_EQ(0, hp_node_info(self->fd, 0, &b));
	EXPECT_EQ(a.mapped_pages, b.mapped_pages);
	EXPECT_EQ(a.inuse_pages + 3, b.inuse_pages);
	close(rfd);
	ASSERT_EQ(0, hp_node_info(self->fd, 0, &b));
	EXPECT_EQ(a.free_pages, b.free_pages);
	EXPECT_EQ(a.inuse_pages, b.inuse_pages);
}

TEST_F(pool, resize_grow_shrink)
{
	struct hpmem_pool_resize r = { .argsz = sizeof(r), .node = 1 };
	struct hpmem_node_info a, b;
	long mf0, mf1, mf2;

	NEED_FD();
	ASSERT_EQ(0, hp_node_info(self->fd, 1, &a));
	mf0 = node_memfree_kb(1);
	r.nr_pages = a.total_pages + 8;
	ASSERT_EQ(0, xioctl(self->fd, HPMEM_IOC_POOL_RESIZE, &r));
	EXPECT_EQ(a.total_pages + 8, r.nr_pages);
	ASSERT_EQ(0, hp_node_info(self->fd, 1, &b));
	EXPECT_EQ(a.total_pages + 8, b.total_pages);
	EXPECT_EQ(a.free_pages + 8, b.free_pages);
	mf1 = node_memfree_kb(1);
	/* 16 MiB left the node's free memory, on that node */
	EXPECT_LE(mf1, mf0 - 14 * 1024) TH_LOG("MemFree %ld -> %ld kB", mf0, mf1);

	r.nr_pages = a.total_pages;
	ASSERT_EQ(0, xioctl(self->fd, HPMEM_IOC_POOL_RESIZE, &r));
	EXPECT_EQ(a.total_pages, r.nr_pages);
	ASSERT_EQ(0, hp_node_info(self->fd, 1, &b));
	EXPECT_EQ(a.total_pages, b.total_pages);
	EXPECT_EQ(a.free_pages, b.free_pages);
	/*
	 * and came back to the kernel on shrink. MemFree counts a freed page
	 * only once it leaves the freeing CPU's per-CPU list for the buddy
	 * allocator, which vmstat does within seconds for another node's
	 * pages; the debug kernel missed the first read once.
	 */
	for (int i = 0; i < 50; i++) {
		mf2 = node_memfree_kb(1);
		if (mf2 >= mf1 + 14 * 1024)
			break;
		usleep(100 * 1000);
	}
	EXPECT_GE(mf2, mf1 + 14 * 1024) TH_LOG("MemFree %ld -> %ld kB", mf1, mf2);
}

TEST_F(pool, shrink_in_use_ebusy)
{
	char name[HPMEM_NAME_MAX];
	struct hpmem_node_info a, b;
	int rfd;

	NEED_FD();
	rfd = open(HPMEM_DEVICE_PATH, O_RDWR);
	ASSERT_LE(0, rfd);
	ASSERT_EQ(0, hp_create(rfd, UNIQUE_NAME(name, "ebusy"), 0));
	ASSERT_EQ(0, hp_grow(rfd, 0, 4, NULL));
	ASSERT_EQ(0, hp_node_info(self->fd, 0, &a));
	ASSERT_LE(4, a.inuse_pages);
	EXPECT_EQ(-EBUSY, hp_resize(self->fd, 0, a.inuse_pages - 1));
	EXPECT_EQ(-EBUSY, hp_resize(self->fd, 0, 0));
	ASSERT_EQ(0, hp_node_info(self->fd, 0, &b));
	EXPECT_EQ(a.total_pages, b.total_pages);
	EXPECT_EQ(a.free_pages, b.free_pages);
	/* down to exactly the pages in use is fine */
	EXPECT_EQ(0, hp_resize(self->fd, 0, a.inuse_pages));
	ASSERT_EQ(0, hp_node_info(self->fd, 0, &b));
	EXPECT_EQ(0, b.free_pages);
	EXPECT_EQ(-ENOMEM, hp_grow(rfd, 0, 1, NULL));
	EXPECT_EQ(0, hp_resize(self->fd, 0, a.total_pages));
	close(rfd);
}

TEST_F_TIMEOUT(pool, enomem_rolls_back, 180)
{
	struct hpmem_node_info a, b;
	long mf0, mf1, total_kb;

	NEED_FD();
	ASSERT_EQ(0, hp_node_info(self->fd, 0, &a));
	/* above the global cap */
	EXPECT_EQ(-ENOMEM, hp_resize(self->fd, 0, self->info.max_pages + 1));
	ASSERT_EQ(0, hp_node_info(self->fd, 0, &b));
	EXPECT_EQ(a.total_pages, b.total_pages);

	/* more than the node has: the kernel runs out part way */
	mf0 = node_memfree_kb(0);
	total_kb = node_memtotal_kb(0);
	ASSERT_LT(0, total_kb);
	EXPECT_EQ(-ENOMEM, hp_resize(self->fd, 0,
				     a.total_pages + total_kb / 2048 + 1));
	ASSERT_EQ(0, hp_node_info(self->fd, 0, &b));
	EXPECT_EQ(a.total_pages, b.total_pages);
	EXPECT_EQ(a.free_pages, b.free_pages);
	mf1 = node_memfree_kb(0);
	/* what was taken went back (allow 32 MiB of unrelated churn) */
	EXPECT_GE(mf1, mf0 - 32 * 1024) TH_LOG("MemFree %ld -> %ld kB", mf0, mf1);
}

TEST_F(pool, unprivileged_eperm)
{
	pid_t pid;

	NEED_FD();
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		CHILD_CHECK(drop_root() == 0);
		/* the file was opened by root: the capability is what counts */
		CHILD_CHECK(hp_resize(self->fd, 0, self->n0.total_pages + 1) == -EPERM);
		CHILD_CHECK(hp_resize(self->fd, 0, self->n0.total_pages) == -EPERM);
		_exit(0);
	}
	EXPECT_EQ(0, wait_child(pid));
	EXPECT_EQ(self->n0.total_pages, node_free(self->fd, 0) +
		  self->n0.inuse_pages);
}

/* Free pages of node 1 as NODE_INFO counts them (dirty ones included). */
static int64_t free1(int fd, uint64_t *dirty)
{
	struct hpmem_node_info ni;

	if (hp_node_info(fd, 1, &ni))
		return -1;
	if (dirty)
		*dirty = ni.dirty_pages;
	return ni.free_pages;
}

/* Fills every page of a @n-page region with 0xa5 at its start, middle
 * and end; 0 or -errno. */
static int scribble(int rfd, uint64_t n)
{
	char *p = map_region(rfd, n * PG, 0);

	if (p == MAP_FAILED)
		return -errno;
	for (uint64_t i = 0; i < n; i++) {
		memset(p + i * PG, 0xa5, 4096);
		memset(p + i * PG + PG / 2, 0xa5, 4096);
		memset(p + (i + 1) * PG - 4096, 0xa5, 4096);
	}
	return munmap(p, n * PG) ? -errno : 0;
}

/*
 * Closing a region does not zero its pages in the caller's path: right
 * after close() they are dirty (counted free, since a grow can take them),
 * and the pool's work zeroes them soon after.
 */
TEST(dead_region_zeroed_in_background)
{
	char name[HPMEM_NAME_MAX];
	struct hpmem_node_info ni;
	struct hpmem_info info;
	uint64_t n, dirty, before;
	int fd, rfd, i;

	OPEN_DEV(fd);
	ASSERT_EQ(0, hp_info(fd, &info));
	ASSERT_NE(0, info.features & HPMEM_FEAT_DIRTY_PAGES);
	before = free1(fd, NULL);
	n = before < 48 ? before : 48;
	if (n < 16)
		SKIP(return, "16 free pages needed on node 1");
	rfd = open(HPMEM_DEVICE_PATH, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, rfd);
	ASSERT_EQ(0, hp_create(rfd, UNIQUE_NAME(name, "dirty"), 0));
	ASSERT_EQ(0, hp_grow(rfd, 1, n, NULL));
	ASSERT_EQ(0, scribble(rfd, n));
	close(rfd);
	/* 96 MiB cannot have been zeroed between close() and this call */
	EXPECT_EQ(before, free1(fd, &dirty));
	EXPECT_LT(0, dirty);
	EXPECT_GE(n, dirty);
	ASSERT_EQ(0, hp_node_info(fd, 1, &ni));
	EXPECT_EQ(ni.total_pages, ni.free_pages + ni.inuse_pages + ni.busy_pages);
	/* read later, while the work zeroes: never more */
	EXPECT_GE(ni.dirty_pages, read_u64("/sys/class/hpmem/hpmem/node1/dirty_pages"));
	for (i = 0; i < 500 && dirty; i++) {
		usleep(20000);
		free1(fd, &dirty);
	}
	EXPECT_EQ(0, dirty) TH_LOG("still dirty after 10 s");
	close(fd);
}

/* A grow right after a close takes the dirty pages, zeroed. */
TEST(grow_never_gets_a_dirty_page)
{
	char name[HPMEM_NAME_MAX];
	uint64_t n, dirty;
	int fd, rfd;
	char *p;

	OPEN_DEV(fd);
	n = free1(fd, NULL);
	if (n < 16)
		SKIP(return, "16 free pages needed on node 1");
	for (int round = 0; round < 3; round++) {
		rfd = open(HPMEM_DEVICE_PATH, O_RDWR | O_CLOEXEC);
		ASSERT_LE(0, rfd);
		ASSERT_EQ(0, hp_create(rfd, UNIQUE_NAME(name, "dgrow"), 0));
		ASSERT_EQ(0, hp_grow(rfd, 1, n, NULL));
		ASSERT_EQ(0, scribble(rfd, n));
		close(rfd);
		free1(fd, &dirty);
		/* every free page, at once: the dirty ones among them too */
		rfd = open(HPMEM_DEVICE_PATH, O_RDWR | O_CLOEXEC);
		ASSERT_LE(0, rfd);
		ASSERT_EQ(0, hp_create(rfd, UNIQUE_NAME(name, "dgrow"), 0));
		ASSERT_EQ(0, hp_grow(rfd, 1, n, NULL)) TH_LOG("round %d, %llu dirty",
							      round, (unsigned long long)dirty);
		p = map_region(rfd, n * PG, 0);
		ASSERT_NE(MAP_FAILED, p);
		for (uint64_t i = 0; i < n; i++) {
			static const char zero[4096];

			ASSERT_EQ(0, memcmp(p + i * PG, zero, 4096)) TH_LOG("page %llu",
									   (unsigned long long)i);
			ASSERT_EQ(0, memcmp(p + i * PG + PG / 2, zero, 4096));
			ASSERT_EQ(0, memcmp(p + (i + 1) * PG - 4096, zero, 4096));
		}
		munmap(p, n * PG);
		close(rfd);
	}
	close(fd);
}

/*
 * The free list stays in pfn order as pages come back one zeroing batch at
 * a time, each put at its place (not the list re-sorted): after regions
 * holding interleaved pages die in a scrambled order, grows by a caller
 * who sees addresses still get the lowest free page first, in order.
 */
TEST(free_list_stays_sorted)
{
	static const int order[] = { 5, 2, 7, 0, 3, 6, 1, 4 };
	char name[HPMEM_NAME_MAX];
	struct hpmem_seg *segs;
	int fd, xfd, r[8], i;
	int64_t n, got = 0;
	uint64_t dirty = 1;

	OPEN_DEV(fd);
	for (i = 0; i < 500 && dirty; i++) {
		free1(fd, &dirty);
		usleep(20000);
	}
	n = free1(fd, NULL);
	ASSERT_LE(16, n);
	/* page k of the pool (lowest first) goes to region k % 8 */
	for (i = 0; i < 8; i++) {
		r[i] = open(HPMEM_DEVICE_PATH, O_RDWR | O_CLOEXEC);
		ASSERT_LE(0, r[i]);
		ASSERT_EQ(0, hp_create(r[i], UNIQUE_NAME(name, "sort"), 0));
	}
	for (i = 0; i < n; i++)
		ASSERT_EQ(0, hp_grow(r[i % 8], 1, 1, NULL));
	for (i = 0; i < 8; i++)
		close(r[order[i]]);
	/* all zeroed and back on the free list (grows take dirty ones last) */
	do {
		usleep(20000);
		free1(fd, &dirty);
	} while (dirty && ++i < 500);
	ASSERT_EQ(0, dirty);
	ASSERT_EQ(n, free1(fd, NULL));

	/* half a page at a time, the rest at once */
	xfd = open(HPMEM_DEVICE_PATH, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, xfd);
	ASSERT_EQ(0, hp_create(xfd, UNIQUE_NAME(name, "sorted"), 0));
	for (; got < n / 2; got++)
		ASSERT_EQ(0, hp_grow(xfd, 1, 1, NULL));
	ASSERT_EQ(0, hp_grow(xfd, 1, n - got, NULL));
	segs = calloc(n, sizeof(*segs));
	ASSERT_NE(NULL, segs);
	ASSERT_EQ(n, hp_segs(xfd, segs, n));
	/* SEGS lists by address: offsets must ascend with it */
	for (i = 0; i < n; i++)
		EXPECT_EQ((uint64_t)i * PG, segs[i].offset)
			TH_LOG("page %d by address is at offset %llu", i,
			       (unsigned long long)(segs[i].offset / PG));
	free(segs);
	close(xfd);
	close(fd);
}

TEST_HARNESS_MAIN
