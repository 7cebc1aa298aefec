// SPDX-License-Identifier: MIT
/* Regions: create/attach/grow/segs/destroy semantics, sharing between
 * processes, lifetime (non-persistent and persistent), zeroing on reuse,
 * node placement, and concurrent use of the same names. */
#include <dirent.h>
#include "hpmem_test.h"

TEST(create_attach_errors)
{
	struct hpmem_region_attach a;
	char name[HPMEM_NAME_MAX], other[HPMEM_NAME_MAX];
	int fd, fd2, fd3;

	OPEN_DEV(fd);
	fd2 = open(HPMEM_DEVICE_PATH, O_RDWR);
	fd3 = open(HPMEM_DEVICE_PATH, O_RDWR);
	ASSERT_LE(0, fd2);
	ASSERT_LE(0, fd3);
	UNIQUE_NAME(name, "ca");
	UNIQUE_NAME(other, "ca");

	/* a fresh file has no region */
	EXPECT_EQ(-EBADFD, hp_grow(fd, 0, 1, NULL));
	EXPECT_EQ(-EBADFD, (int)hp_segs(fd, NULL, 0));
	EXPECT_EQ(-ENOENT, hp_attach(fd, name, NULL));
	EXPECT_EQ(-ENOENT, hp_destroy(fd, name));

	ASSERT_EQ(0, hp_create(fd, name, 0));
	EXPECT_EQ(-EALREADY, hp_create(fd, other, 0));
	EXPECT_EQ(-EALREADY, hp_attach(fd, name, NULL));
	EXPECT_EQ(-EEXIST, hp_create(fd2, name, 0));
	/* the failed create left fd2 without a region */
	EXPECT_EQ(-EBADFD, hp_grow(fd2, 0, 1, NULL));

	ASSERT_EQ(0, hp_grow(fd, 0, 2, NULL));
	ASSERT_EQ(0, hp_attach(fd2, name, &a));
	EXPECT_EQ(2, a.nr_pages);
	EXPECT_EQ(0, a.region_flags);
	EXPECT_EQ(0, a.__reserved);
	EXPECT_EQ(-EALREADY, hp_attach(fd2, name, NULL));
	EXPECT_EQ(-EALREADY, hp_create(fd2, other, 0));

	/* growing through the second file is seen by the first */
	ASSERT_EQ(0, hp_grow(fd2, 1, 1, NULL));
	EXPECT_EQ(3, hp_segs(fd, NULL, 0));

	/* create with flags reports them on attach */
	ASSERT_EQ(0, hp_create(fd3, other, HPMEM_REGION_PINNABLE));
	close(fd3);
	/* non-persistent and no file left: the name is gone */
	fd3 = open(HPMEM_DEVICE_PATH, O_RDWR);
	EXPECT_EQ(-ENOENT, hp_attach(fd3, other, NULL));
	ASSERT_EQ(0, hp_create(fd3, other,
			       HPMEM_REGION_PINNABLE | HPMEM_REGION_PERSISTENT));
	close(fd3);
	fd3 = open(HPMEM_DEVICE_PATH, O_RDWR);
	ASSERT_EQ(0, hp_attach(fd3, other, &a));
	EXPECT_EQ(HPMEM_REGION_PINNABLE | HPMEM_REGION_PERSISTENT, a.region_flags);
	EXPECT_EQ(0, hp_destroy(fd, other));
	close(fd3);
	close(fd2);
	close(fd);
}

TEST(grow_offsets_and_all_or_nothing)
{
	struct hpmem_node_info before, after;
	char name[HPMEM_NAME_MAX];
	uint64_t off;
	int fd;

	OPEN_DEV(fd);
	ASSERT_EQ(0, hp_create(fd, UNIQUE_NAME(name, "grow"), 0));
	ASSERT_EQ(0, hp_grow(fd, 0, 2, &off));
	EXPECT_EQ(0, off);
	ASSERT_EQ(0, hp_grow(fd, 1, 3, &off));
	EXPECT_EQ(2 * PG, off);
	ASSERT_EQ(0, hp_grow(fd, 0, 1, &off));
	EXPECT_EQ(5 * PG, off);

	/* more than the pool has free: nothing taken */
	ASSERT_EQ(0, hp_node_info(fd, 0, &before));
	EXPECT_EQ(-ENOMEM, hp_grow(fd, 0, before.free_pages + 1, NULL));
	ASSERT_EQ(0, hp_node_info(fd, 0, &after));
	EXPECT_EQ(before.free_pages, after.free_pages);
	EXPECT_EQ(before.inuse_pages, after.inuse_pages);
	EXPECT_EQ(6, hp_segs(fd, NULL, 0));

	/* beyond the per-region limit */
	EXPECT_EQ(-ENOSPC, hp_grow(fd, 0, HPMEM_REGION_MAX_PAGES, NULL));
	EXPECT_EQ(6, hp_segs(fd, NULL, 0));
	close(fd);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

TEST(segment_table)
{
	struct hpmem_seg segs[16], few[2];
	char name[HPMEM_NAME_MAX];
	uint64_t offs[16], g0, g1;
	int fd, n0 = 0;
	long n;

	OPEN_DEV(fd);
	ASSERT_EQ(0, hp_create(fd, UNIQUE_NAME(name, "segs"), 0));
	EXPECT_EQ(0, hp_segs(fd, NULL, 0));
	ASSERT_EQ(0, hp_grow(fd, 1, 3, &g1));
	ASSERT_EQ(0, hp_grow(fd, 0, 4, &g0));
	memset(segs, 0xa5, sizeof(segs));
	n = hp_segs(fd, segs, 16);
	ASSERT_EQ(7, n);
	for (int i = 0; i < n; i++) {
		EXPECT_EQ(0, segs[i].offset % PG);
		EXPECT_NE(0, segs[i].phys);
		EXPECT_EQ(0, segs[i].phys % PG);
		/* the physical address, unless an IOMMU translates */
		EXPECT_EQ(expected_iova(fd, segs[i].phys), segs[i].iova);
		EXPECT_EQ(0, segs[i].__reserved);
		EXPECT_GT(2, segs[i].node);
		if (i) {
			EXPECT_LT(segs[i - 1].phys, segs[i].phys)
				TH_LOG("not in ascending physical order at %d", i);
		}
		/* offsets of each grow are where that grow put them */
		if (segs[i].node == 0) {
			n0++;
			EXPECT_LE(g0, segs[i].offset);
			EXPECT_GT(g0 + 4 * PG, segs[i].offset);
		} else {
			EXPECT_GT(g0, segs[i].offset);
		}
		offs[i] = segs[i].offset;
	}
	EXPECT_EQ(4, n0);
	/* every offset exactly once */
	qsort(offs, n, sizeof(offs[0]), cmp_u64);
	for (int i = 0; i < n; i++)
		EXPECT_EQ(i * PG, offs[i]);
	/* in ascending phys order within a grow, offsets ascend too */
	for (int i = 1; i < n; i++) {
		if (segs[i].node == segs[i - 1].node) {
			EXPECT_LT(segs[i - 1].offset, segs[i].offset);
		}
	}

	/* a short array gets the first entries and the full count */
	memset(few, 0, sizeof(few));
	EXPECT_EQ(7, hp_segs(fd, few, 2));
	EXPECT_EQ(0, memcmp(few, segs, sizeof(few)));
	close(fd);
}

/* Memory blocks of node @node from sysfs; 1 when [phys, phys+len) lies in
 * one of them, 0 when not, -errno on error. */
static int phys_on_node(uint64_t phys, uint64_t len, unsigned int node)
{
	char path[128], buf[64];
	uint64_t bs, blk;
	struct dirent *de;
	DIR *d;
	int found = 0;

	if (read_file("/sys/devices/system/memory/block_size_bytes", buf, sizeof(buf)) < 0)
		return -ENOENT;
	bs = strtoull(buf, NULL, 16);
	snprintf(path, sizeof(path), "/sys/devices/system/node/node%u", node);
	d = opendir(path);
	if (!d || !bs)
		return -ENOENT;
	while ((de = readdir(d))) {
		if (strncmp(de->d_name, "memory", 6) ||
		    !(de->d_name[6] >= '0' && de->d_name[6] <= '9'))
			continue;
		blk = strtoull(de->d_name + 6, NULL, 10);
		/* a 2 MiB page never straddles blocks (>= 128 MiB) */
		if (phys >= blk * bs && phys + len <= (blk + 1) * bs)
			found = 1;
	}
	closedir(d);
	return found;
}

TEST(node_placement)
{
	struct hpmem_seg segs[8];
	char name[HPMEM_NAME_MAX];
	int fd;
	long n;

	OPEN_DEV(fd);
	ASSERT_EQ(0, hp_create(fd, UNIQUE_NAME(name, "numa"), 0));
	ASSERT_EQ(0, hp_grow(fd, 0, 4, NULL));
	ASSERT_EQ(0, hp_grow(fd, 1, 4, NULL));
	n = hp_segs(fd, segs, 8);
	ASSERT_EQ(8, n);
	for (int i = 0; i < n; i++) {
		int r = phys_on_node(segs[i].phys, PG, segs[i].node);

		ASSERT_LE(0, r) TH_LOG("no memory blocks in sysfs");
		EXPECT_EQ(1, r) TH_LOG("page %#llx not in node %u's memory",
				       (unsigned long long)segs[i].phys, segs[i].node);
		EXPECT_EQ(0, phys_on_node(segs[i].phys, PG, !segs[i].node));
	}
	close(fd);
}

TEST(shared_between_processes)
{
	char name[HPMEM_NAME_MAX];
	struct hpmem_seg s1[4], s2[4];
	uint64_t *p;
	pid_t pid;
	int fd;

	OPEN_DEV(fd);
	ASSERT_EQ(0, hp_create(fd, UNIQUE_NAME(name, "share"), 0));
	ASSERT_EQ(0, hp_grow(fd, 0, 2, NULL));
	ASSERT_EQ(0, hp_grow(fd, 1, 2, NULL));
	ASSERT_EQ(4, hp_segs(fd, s1, 4));
	p = map_region(fd, 4 * PG, 0);
	ASSERT_NE(MAP_FAILED, p);
	for (int i = 0; i < 4; i++)
		p[i * PG / 8] = 0x1234500 + i;

	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		/* a separate process that attaches by name (not inherited) */
		int f = open(HPMEM_DEVICE_PATH, O_RDWR);
		struct hpmem_region_attach a;
		uint64_t *q;

		CHILD_CHECK(f >= 0);
		CHILD_CHECK(hp_attach(f, name, &a) == 0);
		CHILD_CHECK(a.nr_pages == 4);
		CHILD_CHECK(hp_segs(f, s2, 4) == 4);
		CHILD_CHECK(memcmp(s1, s2, sizeof(s1)) == 0);
		q = map_region(f, 4 * PG, 0);
		CHILD_CHECK(q != MAP_FAILED);
		for (int i = 0; i < 4; i++) {
			CHILD_CHECK(q[i * PG / 8] == 0x1234500u + i);
			q[i * PG / 8 + 1] = 0xabc00 + i;
		}
		_exit(0);
	}
	ASSERT_EQ(0, wait_child(pid));
	for (int i = 0; i < 4; i++)
		EXPECT_EQ(0xabc00u + i, p[i * PG / 8 + 1]);
	munmap(p, 4 * PG);
	close(fd);
}

TEST(different_names_disjoint)
{
	char a[HPMEM_NAME_MAX], b[HPMEM_NAME_MAX];
	struct hpmem_seg sa[4], sb[4];
	int fa, fb;

	OPEN_DEV(fa);
	fb = open(HPMEM_DEVICE_PATH, O_RDWR);
	ASSERT_LE(0, fb);
	ASSERT_EQ(0, hp_create(fa, UNIQUE_NAME(a, "dja"), 0));
	ASSERT_EQ(0, hp_create(fb, UNIQUE_NAME(b, "djb"), 0));
	ASSERT_EQ(0, hp_grow(fa, 0, 2, NULL));
	ASSERT_EQ(0, hp_grow(fb, 0, 2, NULL));
	ASSERT_EQ(0, hp_grow(fa, 1, 2, NULL));
	ASSERT_EQ(0, hp_grow(fb, 1, 2, NULL));
	ASSERT_EQ(4, hp_segs(fa, sa, 4));
	ASSERT_EQ(4, hp_segs(fb, sb, 4));
	for (int i = 0; i < 4; i++)
		for (int j = 0; j < 4; j++)
			EXPECT_NE(sa[i].phys, sb[j].phys);
	close(fa);
	close(fb);
}

/* Dirty every free page of node 0 through a region made with @dirty_flags,
 * free them, take them again with @flags: all zero. */
static void zeroed(struct __test_metadata *_metadata, uint32_t dirty_flags,
		   uint32_t flags)
{
	char name[HPMEM_NAME_MAX];
	uint64_t nfree, *p;
	int fd;

	fd = open(HPMEM_DEVICE_PATH, O_RDWR);
	ASSERT_LE(0, fd);
	nfree = node_free(fd, 0);
	ASSERT_LT(0, nfree);
	if (nfree > 64)
		nfree = 64;
	ASSERT_EQ(0, hp_create(fd, UNIQUE_NAME(name, "dirty"), dirty_flags));
	ASSERT_EQ(0, hp_grow(fd, 0, nfree, NULL));
	p = map_region(fd, nfree * PG, 0);
	ASSERT_NE(MAP_FAILED, p);
	for (uint64_t i = 0; i < nfree * PG / 8; i += 64)
		p[i] = 0xdeadbeefcafef00dULL;
	ASSERT_EQ(0, munmap(p, nfree * PG));
	close(fd);

	fd = open(HPMEM_DEVICE_PATH, O_RDWR);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, hp_create(fd, UNIQUE_NAME(name, "clean"), flags));
	ASSERT_EQ(0, hp_grow(fd, 0, nfree, NULL));
	p = map_region(fd, nfree * PG, 0);
	ASSERT_NE(MAP_FAILED, p);
	for (uint64_t i = 0; i < nfree * PG / 8; i++) {
		if (p[i]) {
			ASSERT_EQ(0, p[i]) TH_LOG("page %llu word %llu not zero",
				(unsigned long long)(i * 8 / PG),
				(unsigned long long)(i % (PG / 8)));
		}
	}
	munmap(p, nfree * PG);
	close(fd);
}

TEST(zeroed_on_reuse)
{
	int fd;

	OPEN_DEV(fd);
	close(fd);
	zeroed(_metadata, 0, 0);
}

TEST(zeroed_on_reuse_pinnable)
{
	int fd;

	OPEN_DEV(fd);
	close(fd);
	zeroed(_metadata, HPMEM_REGION_PINNABLE, 0);
	zeroed(_metadata, 0, HPMEM_REGION_PINNABLE);
}

/* Pages of the pools of both nodes that are free. */
static uint64_t free_total(int fd)
{
	return node_free(fd, 0) + node_free(fd, 1);
}

static void killed(struct __test_metadata *_metadata, uint32_t flags)
{
	char name[HPMEM_NAME_MAX];
	int fd, af, pfd[2];
	uint64_t before;
	pid_t pid;
	char c;

	fd = open(HPMEM_DEVICE_PATH, O_RDWR);
	ASSERT_LE(0, fd);
	UNIQUE_NAME(name, "kill");
	before = free_total(fd);
	ASSERT_EQ(0, pipe(pfd));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		int f = open(HPMEM_DEVICE_PATH, O_RDWR);
		char *q;

		CHILD_CHECK(f >= 0);
		CHILD_CHECK(hp_create(f, name, flags) == 0);
		CHILD_CHECK(hp_grow(f, 0, 3, NULL) == 0);
		CHILD_CHECK(hp_grow(f, 1, 2, NULL) == 0);
		q = map_region(f, 5 * PG, 0);
		CHILD_CHECK(q != MAP_FAILED);
		for (int i = 0; i < 5; i++)
			q[i * PG] = 1;
		/* keep only the mapping: it alone must hold the region */
		close(f);
		CHILD_CHECK(write(pfd[1], "x", 1) == 1);
		for (;;)
			pause();
	}
	close(pfd[1]);
	ASSERT_EQ(1, read(pfd[0], &c, 1));
	EXPECT_EQ(before - 5, free_total(fd));
	af = open(HPMEM_DEVICE_PATH, O_RDWR | O_CLOEXEC);
	EXPECT_EQ(0, hp_attach(af, name, NULL));
	close(af);
	ASSERT_EQ(0, kill(pid, SIGKILL));
	EXPECT_EQ(128 + SIGKILL, wait_child(pid));
	EXPECT_EQ(before, free_total(fd));
	EXPECT_EQ(-ENOENT, hp_attach(fd, name, NULL));
	close(pfd[0]);
	close(fd);
}

TEST(killed_creator_frees_pages)
{
	if (access(HPMEM_DEVICE_PATH, F_OK))
		SKIP(return, "%s absent", HPMEM_DEVICE_PATH);
	killed(_metadata, 0);
}

TEST(killed_creator_frees_pages_pinnable)
{
	if (access(HPMEM_DEVICE_PATH, F_OK))
		SKIP(return, "%s absent", HPMEM_DEVICE_PATH);
	killed(_metadata, HPMEM_REGION_PINNABLE);
}

TEST(persistent_survives_creator)
{
	char name[HPMEM_NAME_MAX];
	struct hpmem_region_attach a;
	uint64_t before, *p;
	pid_t pid;
	int fd, fd2;

	OPEN_DEV(fd);
	UNIQUE_NAME(name, "pers");
	before = free_total(fd);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		int f = open(HPMEM_DEVICE_PATH, O_RDWR);
		uint64_t *q;

		CHILD_CHECK(f >= 0);
		CHILD_CHECK(hp_create(f, name, HPMEM_REGION_PERSISTENT) == 0);
		CHILD_CHECK(hp_grow(f, 1, 2, NULL) == 0);
		q = map_region(f, 2 * PG, 0);
		CHILD_CHECK(q != MAP_FAILED);
		q[0] = 0x5151;
		q[PG / 8] = 0x5252;
		_exit(0);
	}
	ASSERT_EQ(0, wait_child(pid));
	EXPECT_EQ(before - 2, free_total(fd));

	ASSERT_EQ(0, hp_attach(fd, name, &a));
	EXPECT_EQ(2, a.nr_pages);
	EXPECT_EQ(HPMEM_REGION_PERSISTENT, a.region_flags);
	p = map_region(fd, 2 * PG, 0);
	ASSERT_NE(MAP_FAILED, p);
	EXPECT_EQ(0x5151, p[0]);
	EXPECT_EQ(0x5252, p[PG / 8]);

	/* destroy while mapped: refused, nothing changes */
	fd2 = open(HPMEM_DEVICE_PATH, O_RDWR);
	ASSERT_LE(0, fd2);
	EXPECT_EQ(-EBUSY, hp_destroy(fd2, name));
	EXPECT_EQ(0, hp_attach(fd2, name, NULL));
	close(fd2);
	EXPECT_EQ(0x5151, p[0]);
	munmap(p, 2 * PG);

	/* unmapped but attached: the name goes at once, the pages on close */
	EXPECT_EQ(0, hp_destroy(fd, name));
	fd2 = open(HPMEM_DEVICE_PATH, O_RDWR);
	ASSERT_LE(0, fd2);
	EXPECT_EQ(-ENOENT, hp_attach(fd2, name, NULL));
	EXPECT_EQ(-ENOENT, hp_destroy(fd2, name));
	/* the name can be reused at once */
	EXPECT_EQ(0, hp_create(fd2, name, 0));
	close(fd2);
	close(fd);
	fd = open(HPMEM_DEVICE_PATH, O_RDWR);
	ASSERT_LE(0, fd);
	EXPECT_EQ(before, free_total(fd));
	close(fd);
}

TEST(destroy_mapped_ebusy)
{
	char name[HPMEM_NAME_MAX];
	void *p;
	int fd, fd2;

	OPEN_DEV(fd);
	fd2 = open(HPMEM_DEVICE_PATH, O_RDWR);
	ASSERT_LE(0, fd2);
	ASSERT_EQ(0, hp_create(fd, UNIQUE_NAME(name, "busy"), 0));
	ASSERT_EQ(0, hp_grow(fd, 0, 1, NULL));
	p = map_region(fd, PG, 0);
	ASSERT_NE(MAP_FAILED, p);
	close(fd);
	/* only the mapping holds it now */
	EXPECT_EQ(-EBUSY, hp_destroy(fd2, name));
	EXPECT_EQ(0, hp_attach(fd2, name, NULL));
	EXPECT_EQ(0, munmap(p, PG));
	EXPECT_EQ(0, hp_destroy(fd2, name));
	close(fd2);
}

/* Two processes hammer the same few names with create/attach/grow/map/
 * destroy; only the documented errnos may come back, and everything is
 * free afterwards. */
static int hammer(int seed, const char *prefix)
{
	unsigned int r = seed;

	for (int it = 0; it < 150; it++) {
		char name[HPMEM_NAME_MAX];
		int f = open(HPMEM_DEVICE_PATH, O_RDWR), rc;
		void *p;

		CHILD_CHECK(f >= 0);
		r = r * 1103515245 + 12345;
		snprintf(name, sizeof(name), "%s-%u", prefix, (r >> 16) % 3);
		switch ((r >> 8) % 4) {
		case 0:
			rc = hp_create(f, name, (r >> 20) & 1 ? HPMEM_REGION_PERSISTENT : 0);
			CHILD_CHECK(rc == 0 || rc == -EEXIST);
			break;
		case 1:
			rc = hp_attach(f, name, NULL);
			CHILD_CHECK(rc == 0 || rc == -ENOENT);
			break;
		default:
			rc = hp_destroy(f, name);
			CHILD_CHECK(rc == 0 || rc == -ENOENT || rc == -EBUSY);
			rc = -1;
			break;
		}
		if (rc == 0) {
			rc = hp_grow(f, r & 1, 1, NULL);
			CHILD_CHECK(rc == 0 || rc == -ENOMEM || rc == -ENOSPC);
			p = map_region(f, PG, 0);
			if (p != MAP_FAILED) {
				*(volatile char *)p = 1;
				munmap(p, PG);
			}
		}
		close(f);
	}
	return 0;
}

FIXTURE(slow) {};
FIXTURE_SETUP(slow) {}
FIXTURE_TEARDOWN(slow) {}

TEST_F_TIMEOUT(slow, concurrent_same_names, 240)
{
	char prefix[24];
	uint64_t before;
	pid_t pid[2];
	int fd;

	OPEN_DEV(fd);
	snprintf(prefix, sizeof(prefix), "t-conc-%d", getpid());
	before = free_total(fd);
	for (int i = 0; i < 2; i++) {
		pid[i] = fork();
		ASSERT_LE(0, pid[i]);
		if (pid[i] == 0)
			_exit(hammer(i + 1, prefix));
	}
	EXPECT_EQ(0, wait_child(pid[0]));
	EXPECT_EQ(0, wait_child(pid[1]));
	/* persistent leftovers: destroy them, then all pages are back */
	for (int i = 0; i < 3; i++) {
		char name[HPMEM_NAME_MAX];
		int rc;

		snprintf(name, sizeof(name), "%s-%d", prefix, i);
		rc = hp_destroy(fd, name);
		EXPECT_TRUE(rc == 0 || rc == -ENOENT) TH_LOG("destroy: %d", rc);
	}
	EXPECT_EQ(before, free_total(fd));
	close(fd);
}

TEST_HARNESS_MAIN
