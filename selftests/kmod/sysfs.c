// SPDX-License-Identifier: MIT
/* sysfs (docs/ABI/testing/sysfs-class-hpmem): per-node counters agree with
 * HPMEM_IOC_NODE_INFO and with what was done, the region list, and the
 * writable pool size. */
#include "hpmem_test.h"

#define SYSDIR "/sys/class/hpmem/hpmem"

static int64_t node_attr(unsigned int node, const char *attr)
{
	char path[128];

	snprintf(path, sizeof(path), SYSDIR "/node%u/%s", node, attr);
	return read_u64(path);
}

static int write_total(unsigned int node, uint64_t nr)
{
	char path[128], val[32];

	snprintf(path, sizeof(path), SYSDIR "/node%u/total_pages", node);
	snprintf(val, sizeof(val), "%llu\n", (unsigned long long)nr);
	return write_file(path, val);
}

/* Every counter of every pool equal in sysfs and NODE_INFO. */
static int counters_agree(struct __test_metadata *_metadata, int fd)
{
	uint64_t mask = node_mask(fd);
	struct hpmem_node_info ni;

	for (unsigned int n = 0; n < 64; n++) {
		if (!(mask & (1ULL << n)))
			continue;
		if (hp_node_info(fd, n, &ni))
			return 0;
		EXPECT_EQ(ni.total_pages, node_attr(n, "total_pages")) TH_LOG("node%u", n);
		EXPECT_EQ(ni.free_pages, node_attr(n, "free_pages")) TH_LOG("node%u", n);
		EXPECT_EQ(ni.inuse_pages, node_attr(n, "inuse_pages")) TH_LOG("node%u", n);
		EXPECT_EQ(ni.mapped_pages, node_attr(n, "mapped_pages")) TH_LOG("node%u", n);
		EXPECT_EQ(ni.busy_pages, node_attr(n, "busy_pages")) TH_LOG("node%u", n);
		/* dirty_pages moves while the pool zeroes: pool.c checks it */
	}
	return 1;
}

/* The line of region @name in the region list, or "" when absent. */
static void region_line(const char *name, char *out, size_t len)
{
	static char buf[65536];
	char key[HPMEM_NAME_MAX + 8], *line, *save = NULL;

	out[0] = 0;
	if (read_file(SYSDIR "/regions", buf, sizeof(buf)) < 0)
		return;
	snprintf(key, sizeof(key), "name=%s", name);
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *k = strstr(line, key);

		if (k && k[strlen(key)] == 0) {
			snprintf(out, len, "%s", line);
			return;
		}
	}
}

#define NEED_SYSFS() do {						\
	if (access(SYSDIR, F_OK))					\
		SKIP(return, "%s absent", SYSDIR);			\
} while (0)

TEST(layout)
{
	uint64_t mask;
	int fd;

	OPEN_DEV(fd);
	NEED_SYSFS();
	mask = node_mask(fd);
	EXPECT_EQ(3, mask & 3);
	for (unsigned int n = 0; n < 64; n++) {
		char path[64];

		snprintf(path, sizeof(path), SYSDIR "/node%u", n);
		EXPECT_EQ(!!(mask & (1ULL << n)), access(path, F_OK) == 0)
			TH_LOG("node%u", n);
		if (!(mask & (1ULL << n)))
			continue;
		EXPECT_EQ(PG, node_attr(n, "page_size"));
	}
	close(fd);
}

TEST(counters_follow_regions)
{
	char name[HPMEM_NAME_MAX];
	struct hpmem_node_info a;
	int fd, rfd;
	char *p;

	OPEN_DEV(fd);
	NEED_SYSFS();
	ASSERT_TRUE(counters_agree(_metadata, fd));
	ASSERT_EQ(0, hp_node_info(fd, 1, &a));
	rfd = open(HPMEM_DEVICE_PATH, O_RDWR);
	ASSERT_LE(0, rfd);
	ASSERT_EQ(0, hp_create(rfd, UNIQUE_NAME(name, "sysc"), 0));
	ASSERT_EQ(0, hp_grow(rfd, 1, 3, NULL));
	ASSERT_TRUE(counters_agree(_metadata, fd));
	EXPECT_EQ(a.inuse_pages + 3, node_attr(1, "inuse_pages"));
	EXPECT_EQ(a.free_pages - 3, node_attr(1, "free_pages"));
	p = map_region(rfd, 3 * PG, 0);
	ASSERT_NE(MAP_FAILED, p);
	p[0] = 1;
	ASSERT_TRUE(counters_agree(_metadata, fd));
	EXPECT_LT(a.mapped_pages, node_attr(1, "mapped_pages"));
	munmap(p, 3 * PG);
	ASSERT_TRUE(counters_agree(_metadata, fd));
	EXPECT_EQ(a.mapped_pages, node_attr(1, "mapped_pages"));
	close(rfd);
	ASSERT_TRUE(counters_agree(_metadata, fd));
	EXPECT_EQ(a.free_pages, node_attr(1, "free_pages"));
	EXPECT_EQ(a.inuse_pages, node_attr(1, "inuse_pages"));
	close(fd);
}

TEST(region_list)
{
	char name[HPMEM_NAME_MAX], line[512];
	int fd, fd2;
	char *p;

	OPEN_DEV(fd);
	NEED_SYSFS();
	ASSERT_EQ(0, hp_create(fd, UNIQUE_NAME(name, "list"), HPMEM_REGION_PERSISTENT));
	ASSERT_EQ(0, hp_grow(fd, 0, 2, NULL));
	ASSERT_EQ(0, hp_grow(fd, 1, 1, NULL));
	region_line(name, line, sizeof(line));
	ASSERT_NE(0, line[0]) TH_LOG("%s not listed", name);
	TH_LOG("%s", line);
	EXPECT_NE(NULL, strstr(line, "users=1 "));
	EXPECT_NE(NULL, strstr(line, "maps=0 "));
	EXPECT_NE(NULL, strstr(line, "persistent=1 "));
	EXPECT_NE(NULL, strstr(line, "pinnable=0 "));
	EXPECT_NE(NULL, strstr(line, "pages=3 "));
	EXPECT_NE(NULL, strstr(line, "node0=2 "));
	EXPECT_NE(NULL, strstr(line, "node1=1 "));

	fd2 = open(HPMEM_DEVICE_PATH, O_RDWR);
	ASSERT_LE(0, fd2);
	ASSERT_EQ(0, hp_attach(fd2, name, NULL));
	p = map_region(fd2, PG, 0);
	ASSERT_NE(MAP_FAILED, p);
	region_line(name, line, sizeof(line));
	EXPECT_NE(NULL, strstr(line, "users=2 ")) TH_LOG("%s", line);
	EXPECT_NE(NULL, strstr(line, "maps=1 ")) TH_LOG("%s", line);
	munmap(p, PG);
	close(fd2);
	close(fd);
	/* persistent: listed with no user */
	region_line(name, line, sizeof(line));
	EXPECT_NE(NULL, strstr(line, "users=0 ")) TH_LOG("%s", line);

	fd = open(HPMEM_DEVICE_PATH, O_RDWR);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, hp_destroy(fd, name));
	region_line(name, line, sizeof(line));
	EXPECT_EQ(0, line[0]) TH_LOG("still listed: %s", line);
	close(fd);
}

TEST(resize_through_sysfs)
{
	struct hpmem_node_info a, b;
	char name[HPMEM_NAME_MAX];
	int fd, rfd;
	pid_t pid;

	OPEN_DEV(fd);
	NEED_SYSFS();
	ASSERT_EQ(0, hp_node_info(fd, 1, &a));
	ASSERT_EQ(0, write_total(1, a.total_pages + 2));
	ASSERT_EQ(0, hp_node_info(fd, 1, &b));
	EXPECT_EQ(a.total_pages + 2, b.total_pages);
	EXPECT_EQ(a.free_pages + 2, b.free_pages);
	ASSERT_TRUE(counters_agree(_metadata, fd));
	ASSERT_EQ(0, write_total(1, a.total_pages));
	ASSERT_EQ(0, hp_node_info(fd, 1, &b));
	EXPECT_EQ(a.total_pages, b.total_pages);

	EXPECT_EQ(-EINVAL, write_file(SYSDIR "/node1/total_pages", "lots\n"));
	rfd = open(HPMEM_DEVICE_PATH, O_RDWR);
	ASSERT_LE(0, rfd);
	ASSERT_EQ(0, hp_create(rfd, UNIQUE_NAME(name, "sysb"), 0));
	ASSERT_EQ(0, hp_grow(rfd, 1, 2, NULL));
	EXPECT_EQ(-EBUSY, write_total(1, a.inuse_pages + 1));
	EXPECT_EQ(-ENOMEM, write_total(1, 1ULL << 40));
	ASSERT_EQ(0, hp_node_info(fd, 1, &b));
	EXPECT_EQ(a.total_pages, b.total_pages);
	close(rfd);

	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		int rc;

		CHILD_CHECK(drop_root() == 0);
		rc = write_total(1, a.total_pages + 1);
		CHILD_CHECK(rc == -EACCES || rc == -EPERM);
		_exit(0);
	}
	EXPECT_EQ(0, wait_child(pid));
	EXPECT_EQ(a.total_pages, node_attr(1, "total_pages"));
	close(fd);
}

/* uid 0 passes the file's mode; without CAP_SYS_ADMIN it may not resize,
 * exactly as HPMEM_IOC_POOL_RESIZE refuses it. */
TEST(resize_through_sysfs_needs_cap_sys_admin)
{
	int64_t total;
	pid_t pid;
	int fd;

	OPEN_DEV(fd);
	NEED_SYSFS();
	total = node_attr(1, "total_pages");
	ASSERT_LE(0, total);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		CHILD_CHECK(drop_cap(CAP_SYS_ADMIN) == 0);
		CHILD_CHECK(getuid() == 0 && geteuid() == 0);
		CHILD_CHECK(hp_resize(fd, 1, total + 1) == -EPERM);
		CHILD_CHECK(write_total(1, total + 1) == -EPERM);
		CHILD_CHECK(write_total(1, total ? total - 1 : 0) == -EPERM);
		_exit(0);
	}
	EXPECT_EQ(0, wait_child(pid));
	EXPECT_EQ(total, node_attr(1, "total_pages"));
	close(fd);
}

TEST_HARNESS_MAIN
