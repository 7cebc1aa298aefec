// SPDX-License-Identifier: MIT
/* Regressions from the maintainer review of hpmem.ko: the argsz bound,
 * mapped counters across fork, split and mremap, madvise on pinnable
 * mappings, and pool resizes racing region grows. (Pages still referenced
 * after their region died: dma.c.) */
#include "hpmem_test.h"

static int region_fd(const char *tag, uint32_t flags, int n0, char *out)
{
	int fd = open(HPMEM_DEVICE_PATH, O_RDWR | O_CLOEXEC);
	char name[HPMEM_NAME_MAX];

	if (fd < 0)
		return -errno;
	UNIQUE_NAME(name, tag);
	memcpy(out, name, sizeof(name));
	if (hp_create(fd, name, flags) ||
	    (n0 && hp_grow(fd, 0, n0, NULL))) {
		close(fd);
		return -EIO;
	}
	return fd;
}

#define REGION(fd, tag, flags, n0, name) do {				\
	if (access(HPMEM_DEVICE_PATH, F_OK))				\
		SKIP(return, "%s absent", HPMEM_DEVICE_PATH);		\
	(fd) = region_fd(tag, flags, n0, name);				\
	ASSERT_LE(0, (fd));						\
} while (0)

static struct hpmem_node_info node0(int fd)
{
	struct hpmem_node_info ni;

	if (hp_node_info(fd, 0, &ni))
		memset(&ni, 0xff, sizeof(ni));
	return ni;
}

/* copy_struct_from_user() scans the tail for zeros: it is bounded. */
TEST(argsz_above_page_e2big)
{
	size_t len = 64 << 20;
	long pg = sysconf(_SC_PAGESIZE);
	struct hpmem_info *i;
	int fd;

	OPEN_DEV(fd);
	i = mmap(NULL, len, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, i);
	i->argsz = pg;
	EXPECT_EQ(0, xioctl(fd, HPMEM_IOC_INFO, i));
	i->argsz = pg + 8;
	EXPECT_EQ(-E2BIG, xioctl(fd, HPMEM_IOC_INFO, i));
	i->argsz = len;
	EXPECT_EQ(-E2BIG, xioctl(fd, HPMEM_IOC_INFO, i));
	i->argsz = UINT32_MAX;
	EXPECT_EQ(-E2BIG, xioctl(fd, HPMEM_IOC_INFO, i));
	munmap(i, len);
	close(fd);
}

/* A forked child's VMAs and split halves count as mappings of the region. */
TEST(mapped_counter_fork_and_split)
{
	char name[HPMEM_NAME_MAX];
	int fd, sync[2];
	uint64_t base;
	char *p, c;
	pid_t pid;

	REGION(fd, "rvfork", 0, 2, name);
	base = node0(fd).mapped_pages;
	p = map_region(fd, 2 * PG, 0);
	ASSERT_NE(MAP_FAILED, p);
	p[0] = 1;
	EXPECT_EQ(base + 2, node0(fd).mapped_pages);
	ASSERT_EQ(0, pipe(sync));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		close(sync[1]);
		CHILD_CHECK(munmap(p + PG, PG) == 0);
		CHILD_CHECK(p[0] == 1);
		p[1] = 2;
		CHILD_CHECK(read(sync[0], &c, 1) == 0);
		_exit(0);
	}
	close(sync[0]);
	/* Only the child maps it now. */
	EXPECT_EQ(0, munmap(p, 2 * PG));
	EXPECT_EQ(base + 2, node0(fd).mapped_pages);
	EXPECT_EQ(-EBUSY, hp_destroy(fd, name));
	close(sync[1]);
	ASSERT_EQ(0, wait_child(pid));
	EXPECT_EQ(base, node0(fd).mapped_pages);
	EXPECT_EQ(0, hp_destroy(fd, name));
	close(fd);
}

/* Moved off a 2 MiB boundary, a huge mapping falls back to 4 KiB PTEs. */
TEST(mremap_unaligned_and_mprotect_round_trip)
{
	char name[HPMEM_NAME_MAX];
	uint64_t base;
	char *p, *area, *q;
	int fd;

	REGION(fd, "rvmove", 0, 2, name);
	base = node0(fd).mapped_pages;
	p = map_region(fd, 2 * PG, 0);
	ASSERT_NE(MAP_FAILED, p);
	p[0] = 0x11;
	p[PG + 4096] = 0x22;
	EXPECT_EQ(0, mprotect(p, 2 * PG, PROT_READ));
	EXPECT_EQ(0, mprotect(p, 2 * PG, PROT_READ | PROT_WRITE));
	p[1] = 0x33;
	area = mmap(NULL, 4 * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS,
		    -1, 0);
	ASSERT_NE(MAP_FAILED, area);
	q = (char *)(((uintptr_t)area + PG - 1) & ~(PG - 1)) + 4096;
	q = mremap(p, 2 * PG, 2 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, q);
	ASSERT_NE(MAP_FAILED, q);
	EXPECT_EQ(0x11, q[0]);
	EXPECT_EQ(0x33, q[1]);
	EXPECT_EQ(0x22, q[PG + 4096]);
	q[PG + 8192] = 0x44;
	EXPECT_EQ(0, mprotect(q, 2 * PG, PROT_READ));
	EXPECT_EQ(0, mprotect(q, 2 * PG, PROT_READ | PROT_WRITE));
	q[2] = 0x55;
	EXPECT_EQ(base + 2, node0(fd).mapped_pages);
	EXPECT_EQ(0, munmap(q, 2 * PG));
	EXPECT_EQ(base, node0(fd).mapped_pages);
	munmap(area, 4 * PG);
	p = map_region(fd, 2 * PG, 0);
	ASSERT_NE(MAP_FAILED, p);
	EXPECT_EQ(0x44, p[PG + 8192]);
	EXPECT_EQ(0x55, p[2]);
	munmap(p, 2 * PG);
	close(fd);
}

/* MADV_COLD/PAGEOUT on pinnable pages must neither split nor reclaim them. */
TEST(madvise_pageout_pinnable)
{
	char name[HPMEM_NAME_MAX];
	char *p;
	int fd;

	REGION(fd, "rvcold", HPMEM_REGION_PINNABLE, 1, name);
	p = map_region(fd, PG, 0);
	ASSERT_NE(MAP_FAILED, p);
	memset(p, 0x5a, PG);
	madvise(p, PG, 20 /* MADV_COLD */);
	madvise(p, PG, 21 /* MADV_PAGEOUT */);
	madvise(p + 8192, 3 * 4096, 21 /* MADV_PAGEOUT */);
	EXPECT_EQ(0x5a, p[0]);
	EXPECT_EQ(0x5a, p[PG - 1]);
	EXPECT_EQ(0x5a, p[8192]);
	munmap(p, PG);
	close(fd);
}

/* Pool resizes racing region grows, mmaps and closes keep the books. */
TEST(resize_races_grow)
{
	char name[HPMEM_NAME_MAX];
	struct hpmem_node_info ni, start;
	int fd, i, ctl;
	pid_t pid;

	if (access(HPMEM_DEVICE_PATH, F_OK))
		SKIP(return, "%s absent", HPMEM_DEVICE_PATH);
	if (geteuid())
		SKIP(return, "needs root");
	ctl = open(HPMEM_DEVICE_PATH, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, ctl);
	start = node0(ctl);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		for (i = 0; i < 200; i++) {
			int rc = hp_resize(ctl, 0, start.total_pages + (i & 1 ? 0 : 4));

			CHILD_CHECK(rc == 0 || rc == -EBUSY || rc == -ENOMEM);
		}
		CHILD_CHECK(hp_resize(ctl, 0, start.total_pages) == 0 ||
			    hp_resize(ctl, 0, start.total_pages) == 0);
		_exit(0);
	}
	for (i = 0; i < 100; i++) {
		char *p;
		int rc;

		fd = open(HPMEM_DEVICE_PATH, O_RDWR | O_CLOEXEC);
		ASSERT_LE(0, fd);
		ASSERT_EQ(0, hp_create(fd, UNIQUE_NAME(name, "rvrace"), 0));
		rc = hp_grow(fd, 0, 1 + i % 3, NULL);
		ASSERT_TRUE(rc == 0 || rc == -ENOMEM);
		if (!rc) {
			p = map_region(fd, PG, 0);
			ASSERT_NE(MAP_FAILED, p);
			p[i] = 1;
			munmap(p, PG);
		}
		close(fd);
	}
	ASSERT_EQ(0, wait_child(pid));
	/* the child's last resize may have met our last region: retry */
	hp_resize(ctl, 0, start.total_pages);
	ni = node0(ctl);
	EXPECT_EQ(start.total_pages, ni.total_pages);
	EXPECT_EQ(ni.total_pages,
		  ni.free_pages + ni.inuse_pages + ni.busy_pages);
	EXPECT_EQ(start.inuse_pages, ni.inuse_pages);
	EXPECT_EQ(start.mapped_pages, ni.mapped_pages);
	close(ctl);
}

TEST_HARNESS_MAIN
