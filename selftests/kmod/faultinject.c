// SPDX-License-Identifier: MIT
/*
 * Allocation failures inside the module (debug kernel): fail_page_alloc
 * aimed at order-9 allocations (the pools' pages) and failslab at this
 * task while it is inside an hpmem call, so every kmalloc, xarray node and
 * page the module asks for may fail. Each command must then fail cleanly
 * (ENOMEM) or succeed, and afterwards every page is back in its pool and
 * no region is left. Kernels without fault injection SKIP.
 */
#include <sys/mount.h>

#include "hpmem_test.h"

#define DBG		"/sys/kernel/debug"
#define ROUNDS		300

static int fail_fd = -1;

/* Only this task fails, and only between fail_on() and fail_off(). */
static void fail_on(void)
{
	if (pwrite(fail_fd, "1", 1, 0) != 1)
		abort();
}

static void fail_off(void)
{
	if (pwrite(fail_fd, "0", 1, 0) != 1)
		abort();
}

static int attr_set(const char *dir, const char *attr, const char *val)
{
	char path[128];

	snprintf(path, sizeof(path), DBG "/%s/%s", dir, attr);
	return write_file(path, val);
}

/* @prob percent of this task's allocations of @dir's kind fail. */
static int inject(const char *dir, const char *prob)
{
	int rc = 0;

	rc |= attr_set(dir, "probability", prob);
	rc |= attr_set(dir, "interval", "1");
	rc |= attr_set(dir, "times", "-1");
	rc |= attr_set(dir, "task-filter", "Y");
	rc |= attr_set(dir, "verbose", "0");
	rc |= attr_set(dir, "ignore-gfp-wait", "N");
	return rc;
}

static uint32_t rnd_state = 2463534242u;

static uint32_t rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 17;
	rnd_state ^= rnd_state << 5;
	return rnd_state;
}

struct tally {
	unsigned int ok, enomem, other;
};

static void count(struct tally *t, int rc)
{
	if (!rc)
		t->ok++;
	else if (rc == -ENOMEM)
		t->enomem++;
	else
		t->other++;
}

/* Pages held away from the free list once busy pages have drained. */
static int settle(int fd, unsigned int node, struct hpmem_node_info *ni)
{
	for (int i = 0; i < 100; i++) {
		int rc = hp_node_info(fd, node, ni);

		if (rc || ni->free_pages == ni->total_pages)
			return rc;
		usleep(50 * 1000);
	}
	return 0;
}

TEST(allocation_failures_leave_nothing_behind)
{
	uint64_t orig[64] = { 0 }, mask;
	struct tally t = { 0 };
	char name[HPMEM_NAME_MAX];
	int fd;

	if (access(DBG "/fail_page_alloc", F_OK))
		mount("debugfs", DBG, "debugfs", 0, NULL);
	if (access(DBG "/fail_page_alloc", F_OK) || access(DBG "/failslab", F_OK))
		SKIP(return, "no fail_page_alloc/failslab (not the debug kernel)");
	OPEN_DEV(fd);
	mask = node_mask(fd);
	for (unsigned int n = 0; n < 64; n++) {
		struct hpmem_node_info ni;

		if (!(mask & (1ULL << n)))
			continue;
		ASSERT_EQ(0, hp_node_info(fd, n, &ni));
		ASSERT_EQ(ni.free_pages, ni.total_pages) TH_LOG("node %u in use", n);
		orig[n] = ni.total_pages;
	}
	fail_fd = open("/proc/self/make-it-fail", O_WRONLY | O_CLOEXEC);
	ASSERT_LE(0, fail_fd);
	ASSERT_EQ(0, inject("fail_page_alloc", "20"));
	ASSERT_EQ(0, attr_set("fail_page_alloc", "min-order", "9"));
	ASSERT_EQ(0, inject("failslab", "10"));

	for (int r = 0; r < ROUNDS; r++) {
		unsigned int node = rnd() % 2;
		int rfd, rc;

		if (!(mask & (1ULL << node)))
			node = 0;
		switch (rnd() % 3) {
		case 0:	/* grow or shrink a pool: alloc_pages(order 9) */
			fail_on();
			rc = hp_resize(fd, node, orig[node] + rnd() % 8);
			fail_off();
			count(&t, rc);
			EXPECT_TRUE(!rc || rc == -ENOMEM || rc == -EBUSY) TH_LOG("%d", rc);
			break;
		default: { /* a region's life: kmalloc, xarray, page tables */
			uint32_t flags = rnd() % 2 ? HPMEM_REGION_PINNABLE : 0;
			uint64_t off = 0;
			void *p = MAP_FAILED;

			rfd = open(HPMEM_DEVICE_PATH, O_RDWR | O_CLOEXEC);
			ASSERT_LE(0, rfd);
			fail_on();
			rc = hp_create(rfd, UNIQUE_NAME(name, "fi"), flags);
			if (!rc)
				rc = hp_grow(rfd, node, 1 + rnd() % 3, &off);
			if (!rc) {
				p = map_region(rfd, PG, (off_t)off);
				rc = p == MAP_FAILED ? -errno : 0;
			}
			if (!rc) {
				struct hpmem_seg segs[4];

				rc = (int)hp_segs(rfd, segs, 4);
				rc = rc < 0 ? rc : 0;
			}
			fail_off();
			count(&t, rc);
			EXPECT_TRUE(!rc || rc == -ENOMEM) TH_LOG("round %d: %d", r, rc);
			if (p != MAP_FAILED) {
				/* a new page is zero, whatever failed around it */
				EXPECT_EQ(0, ((volatile char *)p)[rnd() % PG]);
				munmap(p, PG);
			}
			close(rfd);
			break;
		}
		}
	}
	attr_set("fail_page_alloc", "probability", "0");
	attr_set("failslab", "probability", "0");
	close(fail_fd);
	ksft_print_msg("%d rounds: %u succeeded, %u failed with ENOMEM, %u otherwise\n",
		       ROUNDS, t.ok, t.enomem, t.other);
	EXPECT_LT(0, t.enomem) TH_LOG("no allocation failed: injection not working");

	for (unsigned int n = 0; n < 64; n++) {
		struct hpmem_node_info ni;

		if (!(mask & (1ULL << n)))
			continue;
		EXPECT_EQ(0, hp_resize(fd, n, orig[n]));
		ASSERT_EQ(0, settle(fd, n, &ni));
		EXPECT_EQ(orig[n], ni.total_pages) TH_LOG("node %u", n);
		EXPECT_EQ(ni.total_pages, ni.free_pages) TH_LOG("node %u", n);
		EXPECT_EQ(0, ni.inuse_pages) TH_LOG("node %u", n);
	}
	close(fd);
}

TEST_HARNESS_MAIN
