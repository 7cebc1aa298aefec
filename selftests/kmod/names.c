// SPDX-License-Identifier: MIT
/* Region names per uid (no squatting), the per-user region cap, and
 * HPMEM_IOC_REGION_LIST paging through every region (root) or one's own. */
#include <stddef.h>
#include <sys/uio.h>
#include <linux/io_uring.h>
#include "hpmem_test.h"

#define PARAM_MAX "/sys/module/hpmem/parameters/max_regions_per_user"
#define NR_MANY 10000

/* /dev/hpmem opened up to nobody for the test, and put back after. */
static mode_t dev_open_up(void)
{
	struct stat st;

	if (stat(HPMEM_DEVICE_PATH, &st))
		return 0;
	chmod(HPMEM_DEVICE_PATH, 0666);
	return st.st_mode & 07777;
}

/* Squatting: another uid holding a name first takes nothing from anyone. */
TEST(names_are_per_uid)
{
	struct hpmem_region_destroy d = { .argsz = sizeof(d), .uid = NOBODY };
	char name[HPMEM_NAME_MAX];
	struct hpmem_region_attach a;
	int fd, rfd, pfd[2], go[2];
	pid_t pid;
	char c;

	OPEN_DEV(fd);
	UNIQUE_NAME(name, "squat");
	ASSERT_EQ(0, pipe(pfd));
	ASSERT_EQ(0, pipe(go));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct rlimit rl = { 4 * PG, 4 * PG };
		int f = open(HPMEM_DEVICE_PATH, O_RDWR);
		int f2 = open(HPMEM_DEVICE_PATH, O_RDWR);
		int f3 = open(HPMEM_DEVICE_PATH, O_RDWR);

		CHILD_CHECK(f >= 0 && f2 >= 0 && f3 >= 0);
		CHILD_CHECK(setrlimit(RLIMIT_MEMLOCK, &rl) == 0);
		CHILD_CHECK(drop_root() == 0);
		/* nobody takes the name first, persistent */
		CHILD_CHECK(hp_create(f, name, HPMEM_REGION_PERSISTENT) == 0);
		CHILD_CHECK(hp_grow(f, 0, 1, NULL) == 0);
		CHILD_CHECK(close(f) == 0);
		CHILD_CHECK(write(pfd[1], "x", 1) == 1);
		CHILD_CHECK(read(go[0], &c, 1) == 1);
		/* root's region of that name is not nobody's to see or destroy */
		f = f2;
		CHILD_CHECK(hp_attach(f, name, &a) == 0 && a.nr_pages == 1);
		CHILD_CHECK(close(f) == 0);
		f = f3;
		CHILD_CHECK(hp_destroy_uid(f, name, 0) == -EPERM);
		CHILD_CHECK(hp_attach_uid(f, name, NOBODY, &a) == 0 && a.nr_pages == 1);
		CHILD_CHECK(close(f) == 0);
		_exit(0);
	}
	ASSERT_EQ(1, read(pfd[0], &c, 1));
	/* root still gets the name, in its own name space */
	rfd = open(HPMEM_DEVICE_PATH, O_RDWR);
	ASSERT_LE(0, rfd);
	ASSERT_EQ(0, hp_create(rfd, name, 0));
	ASSERT_EQ(0, hp_grow(rfd, 1, 2, NULL));
	ASSERT_EQ(0, hp_attach(fd, name, &a));
	EXPECT_EQ(2, a.nr_pages);
	close(fd);
	ASSERT_EQ(1, write(go[1], "x", 1));
	EXPECT_EQ(0, wait_child(pid));
	OPEN_DEV(fd);
	/* an invalid uid, and a uid without the flag, are argument errors */
	EXPECT_EQ(-EINVAL, hp_attach_uid(fd, name, (uint32_t)-1, NULL));
	strcpy(d.name, name);
	EXPECT_EQ(-EINVAL, xioctl(fd, HPMEM_IOC_REGION_DESTROY, &d));
	EXPECT_EQ(0, hp_destroy_uid(fd, name, NOBODY));
	EXPECT_EQ(-ENOENT, hp_destroy_uid(fd, name, NOBODY));
	close(rfd);
	EXPECT_EQ(-ENOENT, hp_attach(fd, name, NULL));
	close(fd);
}

/* nobody with RLIMIT_MEMLOCK 0 cannot pile up persistent regions. */
TEST(regions_per_user_capped)
{
	int64_t cap = read_u64(PARAM_MAX);
	int fd, rc = 0;
	mode_t mode;
	pid_t pid;

	OPEN_DEV(fd);
	if (cap < 0)
		cap = 1024;	/* what the fix defaults to: the old module has none */
	ASSERT_GE(4096, cap) TH_LOG("max_regions_per_user %lld: too many to test", (long long)cap);
	mode = dev_open_up();
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct rlimit rl = { 0, 0 };
		char name[HPMEM_NAME_MAX];
		int i, f, made = 0;

		CHILD_CHECK(setrlimit(RLIMIT_MEMLOCK, &rl) == 0);
		CHILD_CHECK(drop_root() == 0);
		for (i = 0; i < cap + 16; i++) {
			f = open(HPMEM_DEVICE_PATH, O_RDWR | O_CLOEXEC);
			CHILD_CHECK(f >= 0);
			snprintf(name, sizeof(name), "t-cap-%d-%d", getpid() % 100000, i % 100000);
			rc = hp_create(f, name, HPMEM_REGION_PERSISTENT);
			close(f);
			if (rc)
				break;
			made++;
		}
		fprintf(stderr, "# nobody made %d regions, then %d\n", made, rc);
		/* destroying makes room again, for exactly one */
		if (made) {
			f = open(HPMEM_DEVICE_PATH, O_RDWR | O_CLOEXEC);
			snprintf(name, sizeof(name), "t-cap-%d-%d", getpid() % 100000, 0);
			CHILD_CHECK(hp_destroy(f, name) == 0);
			CHILD_CHECK(hp_create(f, name, HPMEM_REGION_PERSISTENT) == 0);
			close(f);
			f = open(HPMEM_DEVICE_PATH, O_RDWR | O_CLOEXEC);
			snprintf(name, sizeof(name), "t-cap-%d-x", getpid() % 100000);
			CHILD_CHECK(hp_create(f, name, 0) == -EDQUOT);
			close(f);
		}
		for (i = 0; i < made; i++) {
			f = open(HPMEM_DEVICE_PATH, O_RDWR | O_CLOEXEC);
			snprintf(name, sizeof(name), "t-cap-%d-%d", getpid() % 100000, i % 100000);
			CHILD_CHECK(hp_destroy(f, name) == 0);
			close(f);
		}
		_exit(made == cap && rc == -EDQUOT ? 0 : 1);
	}
	rc = wait_child(pid);
	if (mode)
		chmod(HPMEM_DEVICE_PATH, mode);
	EXPECT_EQ(0, rc);
	close(fd);
}

/* CAP_SYS_ADMIN is not limited; the limit is read at each create. */
TEST(regions_cap_exempts_cap_sys_admin)
{
	char name[HPMEM_NAME_MAX], old[32] = "";
	int fds[3];

	OPEN_DEV(fds[0]);
	if (read_file(PARAM_MAX, old, sizeof(old)) < 0 || write_file(PARAM_MAX, "1"))
		SKIP(return, "%s not writable", PARAM_MAX);
	for (int i = 1; i < 3; i++)
		fds[i] = open(HPMEM_DEVICE_PATH, O_RDWR | O_CLOEXEC);
	for (int i = 0; i < 3; i++)
		EXPECT_EQ(0, hp_create(fds[i], UNIQUE_NAME(name, "adm"), 0));
	write_file(PARAM_MAX, old);
	for (int i = 0; i < 3; i++)
		close(fds[i]);
}

/*
 * 10,000 regions, all listed exactly once, whatever the page size. Creating
 * and destroying them one ioctl each takes minutes on the KASAN/lockdep
 * kernel under TCG, past the harness's default 30 s (the rig still caps
 * the whole program at 300 s).
 */
FIXTURE(many) {};
FIXTURE_SETUP(many) {}
FIXTURE_TEARDOWN(many) {}

TEST_F_TIMEOUT(many, region_list_complete, 240)
{
	struct hpmem_info info;
	uint32_t esz, seen = 0, batch = 777;
	uint64_t cursor = 0, last = 0;
	char prefix[20], name[HPMEM_NAME_MAX];
	struct hpmem_region_entry *e;
	char *buf, *mark;
	int fd, f, n, i, rc;

	OPEN_DEV(fd);
	ASSERT_EQ(0, hp_info(fd, &info));
	esz = sizeof(*e) + 8 * info.nr_node_ids;
	esz = (esz + 7) & ~7u;
	buf = calloc(batch, esz);
	mark = calloc(NR_MANY, 1);
	ASSERT_TRUE(buf && mark);
	snprintf(prefix, sizeof(prefix), "t-many-%d-", getpid() % 100000);
	for (i = 0; i < NR_MANY; i++) {
		f = open(HPMEM_DEVICE_PATH, O_RDWR | O_CLOEXEC);
		ASSERT_LE(0, f);
		snprintf(name, sizeof(name), "%.19s%d", prefix, i % 100000);
		rc = hp_create(f, name, HPMEM_REGION_PERSISTENT);
		if (i == 0 && rc == 0)
			rc = hp_grow(f, 1, 1, NULL);
		close(f);
		ASSERT_EQ(0, rc) TH_LOG("region %d", i);
	}
	while ((n = list_page(fd, &cursor, buf, batch, esz)) > 0) {
		for (int j = 0; j < n; j++) {
			e = (void *)(buf + (size_t)j * esz);
			EXPECT_LT(last, e->id);
			last = e->id;
			if (strncmp(e->name, prefix, strlen(prefix)))
				continue;
			i = atoi(e->name + strlen(prefix));
			ASSERT_TRUE(i >= 0 && i < NR_MANY);
			EXPECT_EQ(0, mark[i]) TH_LOG("%s twice", e->name);
			mark[i] = 1;
			seen++;
			EXPECT_EQ(HPMEM_REGION_PERSISTENT, e->flags);
			EXPECT_EQ(0, e->uid);
			EXPECT_EQ(0, e->users);
			EXPECT_EQ(0, e->maps);
			EXPECT_EQ(i == 0, e->nr_pages);
			EXPECT_EQ(0, e->node_pages[0]);
			EXPECT_EQ(i == 0, e->node_pages[1]);
		}
	}
	EXPECT_EQ(0, n);
	EXPECT_EQ(NR_MANY, seen);

	/* hpmemctl pages through the same list */
	if (!access("/bin/hpmemctl", X_OK)) {
		char key[HPMEM_NAME_MAX + 2], line[4096];
		FILE *p = popen("/bin/hpmemctl --json regions", "r");

		ASSERT_NE(NULL, p);
		snprintf(key, sizeof(key), "\"%s", prefix);
		n = 0;
		/* one region per line, or all on one: count either way */
		while (fgets(line, sizeof(line), p))
			for (char *k = line; (k = strstr(k, key)); k++)
				n++;
		EXPECT_EQ(0, pclose(p));
		EXPECT_EQ(NR_MANY, n);
	}

	for (i = 0; i < NR_MANY; i++) {
		snprintf(name, sizeof(name), "%.19s%d", prefix, i % 100000);
		ASSERT_EQ(0, hp_destroy(fd, name)) TH_LOG("region %d", i);
	}
	free(buf);
	free(mark);
	close(fd);
}

/* Root's regions nobody's walk skips: this many drop the lock twice. */
#define NR_SKIPPED 2500

/*
 * nobody's walk skips root's regions, dropping the lock every 1024, while
 * root destroys them: it lists its own region, once, each time. A few
 * walks: each makes root's calls wait a batch or so.
 */
TEST_F_TIMEOUT(many, region_list_skips_under_destroy, 120)
{
	char prefix[20], name[HPMEM_NAME_MAX];
	int fd, f, i, rc, ready[2];
	pid_t pid;

	OPEN_DEV(fd);
	snprintf(prefix, sizeof(prefix), "t-skip-%d-", getpid() % 100000);
	for (i = 0; i < NR_SKIPPED; i++) {
		f = open(HPMEM_DEVICE_PATH, O_RDWR | O_CLOEXEC);
		ASSERT_LE(0, f);
		snprintf(name, sizeof(name), "%.19s%d", prefix, i);
		rc = hp_create(f, name, HPMEM_REGION_PERSISTENT);
		close(f);
		ASSERT_EQ(0, rc) TH_LOG("region %d", i);
	}
	ASSERT_EQ(0, pipe(ready));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct hpmem_region_entry own;
		char mine[HPMEM_NAME_MAX];
		int foreign;

		close(ready[0]);
		f = open(HPMEM_DEVICE_PATH, O_RDWR | O_CLOEXEC);
		CHILD_CHECK(f >= 0);
		CHILD_CHECK(drop_root() == 0);
		CHILD_CHECK(hp_create(f, UNIQUE_NAME(mine, "skip"), 0) == 0);
		for (int w = 0; w < 4; w++) {
			CHILD_CHECK(list_walk(f, mine, &own, NOBODY,
					      &foreign) == 1);
			CHILD_CHECK(own.id && !foreign);
			/* the first walk skipped them all: go */
			if (!w)
				CHILD_CHECK(write(ready[1], "x", 1) == 1);
		}
		_exit(0);
	}
	close(ready[1]);
	ASSERT_EQ(1, read(ready[0], name, 1));
	close(ready[0]);
	for (i = 0; i < NR_SKIPPED; i++) {
		snprintf(name, sizeof(name), "%.19s%d", prefix, i);
		ASSERT_EQ(0, hp_destroy(fd, name)) TH_LOG("region %d", i);
	}
	EXPECT_EQ(0, wait_child(pid));
	close(fd);
}

TEST(region_list_arguments)
{
	char name[HPMEM_NAME_MAX];
	struct hpmem_region_entry e[2];
	struct hpmem_region_list l;
	uint64_t cursor = 0;
	pid_t pid;
	int fd;

	OPEN_DEV(fd);
	/* at least one region to list */
	ASSERT_EQ(0, hp_create(fd, UNIQUE_NAME(name, "larg"), 0));
	memset(&l, 0, sizeof(l));
	l.argsz = offsetof(struct hpmem_region_list, entries);
	EXPECT_EQ(-EINVAL, xioctl(fd, HPMEM_IOC_REGION_LIST, &l));
	EXPECT_EQ(-EINVAL, list_page(fd, &cursor, e, 2, sizeof(e[0]) - 8));
	EXPECT_EQ(-EINVAL, list_page(fd, &cursor, e, 2, sizeof(e[0]) + 4));
	EXPECT_EQ(-EINVAL, list_page(fd, &cursor, e, 2, 8192));
	EXPECT_EQ(-EFAULT, list_page(fd, &cursor, (void *)8, 2, sizeof(e[0])));
	EXPECT_LE(0, list_page(fd, &cursor, e, 2, sizeof(e[0])));
	cursor = 1ULL << 40;
	EXPECT_EQ(0, list_page(fd, &cursor, e, 2, sizeof(e[0])));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		uint64_t c = 0;

		/* not EPERM: nobody lists its own regions, here none */
		CHILD_CHECK(drop_root() == 0);
		CHILD_CHECK(list_page(fd, &c, e, 2, sizeof(e[0])) == 0);
		/* and its cursor tells nothing of root's (larg's id) */
		CHILD_CHECK(c == 0);
		_exit(0);
	}
	EXPECT_EQ(0, wait_child(pid));
	close(fd);
}

/* Without CAP_SYS_ADMIN, the list is the caller's uid's regions only. */
TEST(region_list_own_uid)
{
	char mine[HPMEM_NAME_MAX], theirs[HPMEM_NAME_MAX];
	struct hpmem_region_entry e;
	struct hpmem_info info;
	int fd, rfd, foreign, pfd[2], go[2];
	pid_t pid;
	char c;

	OPEN_DEV(fd);
	ASSERT_EQ(0, hp_info(fd, &info));
	ASSERT_TRUE(info.features & HPMEM_FEAT_LIST_OWN);
	ASSERT_TRUE(info.features & HPMEM_FEAT_LIST_DMA_PINNED);
	UNIQUE_NAME(mine, "lown");
	UNIQUE_NAME(theirs, "lown");
	/* root's: persistent, so that it is listed with no file open */
	rfd = open(HPMEM_DEVICE_PATH, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, rfd);
	ASSERT_EQ(0, hp_create(rfd, theirs, HPMEM_REGION_PERSISTENT));
	close(rfd);
	ASSERT_EQ(0, pipe(pfd));
	ASSERT_EQ(0, pipe(go));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct rlimit rl = { 4 * PG, 4 * PG };
		int f = open(HPMEM_DEVICE_PATH, O_RDWR);
		int n;

		CHILD_CHECK(f >= 0);
		CHILD_CHECK(setrlimit(RLIMIT_MEMLOCK, &rl) == 0);
		CHILD_CHECK(drop_root() == 0);
		CHILD_CHECK(hp_create(f, mine, 0) == 0);
		CHILD_CHECK(hp_grow(f, 1, 1, NULL) == 0);
		n = list_walk(f, mine, &e, NOBODY, &foreign);
		CHILD_CHECK(n >= 1 && foreign == 0);
		CHILD_CHECK(e.id && e.uid == NOBODY && e.nr_pages == 1);
		CHILD_CHECK(e.users == 1 && e.dma_pinned == 0);
		/* root's region is there, but not for nobody */
		CHILD_CHECK(list_walk(f, theirs, &e, NOBODY, NULL) == n && !e.id);
		CHILD_CHECK(write(pfd[1], "x", 1) == 1);
		CHILD_CHECK(read(go[0], &c, 1) == 1);
		_exit(0);
	}
	ASSERT_EQ(1, read(pfd[0], &c, 1));
	/* root sees both, nobody's with its uid */
	EXPECT_LE(2, list_walk(fd, mine, &e, 0, &foreign));
	EXPECT_LE(1, foreign);
	EXPECT_NE(0, e.id);
	EXPECT_EQ(NOBODY, e.uid);
	EXPECT_EQ(1, e.nr_pages);
	EXPECT_EQ(0, e.dma_pinned);
	EXPECT_LE(1, list_walk(fd, theirs, &e, 0, NULL));
	EXPECT_NE(0, e.id);
	EXPECT_EQ(0, e.uid);
	ASSERT_EQ(1, write(go[1], "x", 1));
	EXPECT_EQ(0, wait_child(pid));
	EXPECT_EQ(0, hp_destroy(fd, theirs));
	close(fd);
}

/*
 * io_uring's fixed buffers pin with FOLL_PIN | FOLL_LONGTERM, as VFIO
 * type1 does: the pinned pages of a pinnable region count in dma_pinned
 * while registered, and stop counting once the ring lets go.
 */
TEST(region_list_dma_pinned)
{
	struct io_uring_params params;
	char name[HPMEM_NAME_MAX];
	struct iovec iov[2];
	int fd, ring, rc, err;
	long pinned = -1;
	char *p;

	OPEN_DEV(fd);
	ASSERT_EQ(0, hp_create(fd, UNIQUE_NAME(name, "lpin"),
			       HPMEM_REGION_PINNABLE));
	ASSERT_EQ(0, hp_grow(fd, 0, 3, NULL));
	p = map_region(fd, 3 * PG, 0);
	ASSERT_NE(MAP_FAILED, p);
	EXPECT_EQ(0, list_dma_pinned(fd, name));
	memset(&params, 0, sizeof(params));
	ring = syscall(__NR_io_uring_setup, 4, &params);
	err = errno;
	if (ring < 0) {
		munmap(p, 3 * PG);
		close(fd);
		SKIP(return, "io_uring_setup: %s", strerror(err));
	}
	/* 4 KiB of page 0 and all of page 2: two hpmem pages */
	iov[0].iov_base = p + 4096;
	iov[0].iov_len = 4096;
	iov[1].iov_base = p + 2 * PG;
	iov[1].iov_len = PG;
	rc = syscall(__NR_io_uring_register, ring, IORING_REGISTER_BUFFERS,
		     iov, 2);
	err = errno;
	if (rc && err == EOPNOTSUPP) {
		close(ring);
		munmap(p, 3 * PG);
		close(fd);
		SKIP(return, "io_uring refuses buffers in file mappings here (6.1: shmem and hugetlbfs only)");
	}
	ASSERT_EQ(0, rc) TH_LOG("IORING_REGISTER_BUFFERS: %s", strerror(err));
	EXPECT_EQ(2, list_dma_pinned(fd, name));
	EXPECT_EQ(0, syscall(__NR_io_uring_register, ring,
			     IORING_UNREGISTER_BUFFERS, NULL, 0));
	close(ring);
	/* the ring may be torn down by a worker: give it a few seconds */
	for (int i = 0; i < 100; i++) {
		pinned = list_dma_pinned(fd, name);
		if (pinned == 0)
			break;
		usleep(50000);
	}
	EXPECT_EQ(0, pinned);
	munmap(p, 3 * PG);
	close(fd);
}

TEST_HARNESS_MAIN
