// SPDX-License-Identifier: MIT
/* Who may do what: device node mode, physical addresses hidden from
 * unprivileged callers, other users' regions, RLIMIT_MEMLOCK charging,
 * which capability checks are audited. */
#include <sys/mount.h>
#include <sys/uio.h>
#include "hpmem_test.h"

#define PARAM_PHYS "/sys/module/hpmem/parameters/phys_unprivileged"

TEST(device_node_root_only)
{
	struct stat st;
	pid_t pid;

	if (stat(HPMEM_DEVICE_PATH, &st))
		SKIP(return, "%s absent", HPMEM_DEVICE_PATH);
	EXPECT_TRUE(S_ISCHR(st.st_mode));
	EXPECT_EQ(0600, st.st_mode & 07777);
	EXPECT_EQ(0, st.st_uid);
	EXPECT_EQ(0, st.st_gid);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		CHILD_CHECK(drop_root() == 0);
		CHILD_CHECK(open(HPMEM_DEVICE_PATH, O_RDWR) < 0 && errno == EACCES);
		_exit(0);
	}
	EXPECT_EQ(0, wait_child(pid));
}

/* In an unprivileged child that holds a root-opened file: create a region
 * and report whether its segment table shows addresses (exit 10) or not
 * (exit 0). */
static int child_addrs(void)
{
	struct rlimit rl = { 8 << 20, 8 << 20 };
	char name[HPMEM_NAME_MAX];
	struct hpmem_seg segs[2];
	struct hpmem_info info;
	int fd = open(HPMEM_DEVICE_PATH, O_RDWR);
	int shown;

	CHILD_CHECK(fd >= 0);
	CHILD_CHECK(setrlimit(RLIMIT_MEMLOCK, &rl) == 0);
	CHILD_CHECK(drop_root() == 0);
	CHILD_CHECK(hp_info(fd, &info) == 0);
	CHILD_CHECK(hp_create(fd, UNIQUE_NAME(name, "nobody"), 0) == 0);
	CHILD_CHECK(hp_grow(fd, 0, 1, NULL) == 0);
	CHILD_CHECK(hp_grow(fd, 1, 1, NULL) == 0);
	memset(segs, 0x5a, sizeof(segs));
	CHILD_CHECK(hp_segs(fd, segs, 2) == 2);
	shown = segs[0].phys != 0;
	for (int i = 0; i < 2; i++) {
		/* everything but the addresses is reported either way */
		CHILD_CHECK(segs[i].offset == 0 || segs[i].offset == PG);
		CHILD_CHECK(segs[i].node < 2);
		CHILD_CHECK((segs[i].phys != 0) == shown);
		CHILD_CHECK(segs[i].iova == (shown ?
				expected_iova(fd, segs[i].phys) : 0));
	}
	CHILD_CHECK(!!(info.caller & HPMEM_CALLER_ADDRS) == shown);
	return shown ? 10 : 0;
}

TEST(phys_hidden_from_unprivileged)
{
	struct hpmem_seg seg;
	char name[HPMEM_NAME_MAX];
	struct hpmem_info info;
	char param[8] = "";
	pid_t pid;
	int fd;

	OPEN_DEV(fd);
	read_file(PARAM_PHYS, param, sizeof(param));
	if (param[0] == 'Y' || param[0] == '1')
		SKIP(return, "module loaded with phys_unprivileged set");
	ASSERT_EQ(0, hp_info(fd, &info));
	EXPECT_NE(0, info.caller & HPMEM_CALLER_ADDRS);
	ASSERT_EQ(0, hp_create(fd, UNIQUE_NAME(name, "root"), 0));
	ASSERT_EQ(0, hp_grow(fd, 0, 1, NULL));
	ASSERT_EQ(1, hp_segs(fd, &seg, 1));
	EXPECT_NE(0, seg.phys);
	EXPECT_EQ(expected_iova(fd, seg.phys), seg.iova);

	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0)
		_exit(child_addrs());
	EXPECT_EQ(0, wait_child(pid));
	close(fd);
}

TEST(phys_unprivileged_opt_in)
{
	pid_t pid;
	int rc;

	if (access(HPMEM_DEVICE_PATH, F_OK))
		SKIP(return, "%s absent", HPMEM_DEVICE_PATH);
	if (write_file(PARAM_PHYS, "Y"))
		SKIP(return, "%s is not writable at runtime", PARAM_PHYS);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0)
		_exit(child_addrs());
	rc = wait_child(pid);
	write_file(PARAM_PHYS, "N");
	EXPECT_EQ(10, rc);
}

/* Another uid's names are invisible (ENOENT); naming the uid needs
 * CAP_SYS_ADMIN (EPERM). */
TEST(other_users_region_hidden)
{
	char name[HPMEM_NAME_MAX];
	pid_t pid;
	int fd;

	OPEN_DEV(fd);
	ASSERT_EQ(0, hp_create(fd, UNIQUE_NAME(name, "mine"), 0));
	ASSERT_EQ(0, hp_grow(fd, 0, 1, NULL));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		int f = open(HPMEM_DEVICE_PATH, O_RDWR);

		CHILD_CHECK(f >= 0);
		CHILD_CHECK(drop_root() == 0);
		CHILD_CHECK(hp_attach(f, name, NULL) == -ENOENT);
		CHILD_CHECK(hp_destroy(f, name) == -ENOENT);
		CHILD_CHECK(hp_attach_uid(f, name, 0, NULL) == -EPERM);
		CHILD_CHECK(hp_destroy_uid(f, name, 0) == -EPERM);
		/* and the region is untouched */
		_exit(0);
	}
	EXPECT_EQ(0, wait_child(pid));
	EXPECT_EQ(1, hp_segs(fd, NULL, 0));
	close(fd);
}

TEST(root_may_attach_other_users_region)
{
	char name[HPMEM_NAME_MAX];
	int fd, pfd[2], go[2];
	pid_t pid;
	char c;

	OPEN_DEV(fd);
	UNIQUE_NAME(name, "theirs");
	ASSERT_EQ(0, pipe(pfd));
	ASSERT_EQ(0, pipe(go));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct rlimit rl = { 8 << 20, 8 << 20 };
		int f = open(HPMEM_DEVICE_PATH, O_RDWR);

		CHILD_CHECK(f >= 0);
		CHILD_CHECK(setrlimit(RLIMIT_MEMLOCK, &rl) == 0);
		CHILD_CHECK(drop_root() == 0);
		CHILD_CHECK(hp_create(f, name, 0) == 0);
		CHILD_CHECK(hp_grow(f, 1, 1, NULL) == 0);
		CHILD_CHECK(write(pfd[1], "x", 1) == 1);
		CHILD_CHECK(read(go[0], &c, 1) == 1);
		_exit(0);
	}
	ASSERT_EQ(1, read(pfd[0], &c, 1));
	/* root's own name space has no such name */
	EXPECT_EQ(-ENOENT, hp_attach(fd, name, NULL));
	EXPECT_EQ(0, hp_attach_uid(fd, name, NOBODY, NULL));
	EXPECT_EQ(1, hp_segs(fd, NULL, 0));
	ASSERT_EQ(1, write(go[1], "x", 1));
	EXPECT_EQ(0, wait_child(pid));
	close(fd);
}

TEST(rlimit_memlock)
{
	uint64_t before;
	pid_t pid;
	int fd;

	OPEN_DEV(fd);
	before = node_free(fd, 0);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct rlimit rl = { 2 * PG, 2 * PG };
		char n1[HPMEM_NAME_MAX], n2[HPMEM_NAME_MAX];
		int f1 = open(HPMEM_DEVICE_PATH, O_RDWR);
		int f2 = open(HPMEM_DEVICE_PATH, O_RDWR);

		CHILD_CHECK(f1 >= 0 && f2 >= 0);
		CHILD_CHECK(setrlimit(RLIMIT_MEMLOCK, &rl) == 0);
		CHILD_CHECK(drop_root() == 0);
		CHILD_CHECK(hp_create(f1, UNIQUE_NAME(n1, "lim"), 0) == 0);
		CHILD_CHECK(hp_create(f2, UNIQUE_NAME(n2, "lim"), 0) == 0);
		CHILD_CHECK(hp_grow(f1, 0, 3, NULL) == -ENOMEM);
		CHILD_CHECK(node_free(f1, 0) == before);
		CHILD_CHECK(hp_grow(f1, 0, 2, NULL) == 0);
		CHILD_CHECK(hp_grow(f1, 0, 1, NULL) == -ENOMEM);
		/* the limit is per user, across regions and processes */
		CHILD_CHECK(hp_grow(f2, 1, 1, NULL) == -ENOMEM);
		CHILD_CHECK(node_free(f1, 0) == before - 2);
		/* freeing the region uncharges it */
		close(f1);
		CHILD_CHECK(hp_grow(f2, 1, 2, NULL) == 0);
		_exit(0);
	}
	EXPECT_EQ(0, wait_child(pid));
	EXPECT_EQ(before, node_free(fd, 0));
	close(fd);
}

/*
 * The limit is per user, not per process: forked children each starting
 * from zero would otherwise pin as much as they like between them. Ten
 * children of one user, each growing its own region by one page, get two
 * pages in total; the charge goes when the regions do.
 */
TEST(rlimit_memlock_per_user)
{
	int fds[11], ok = 0, rc;
	pid_t pid;

	OPEN_DEV(fds[0]);
	for (int i = 1; i < 11; i++) {
		fds[i] = open(HPMEM_DEVICE_PATH, O_RDWR | O_CLOEXEC);
		ASSERT_LE(0, fds[i]);
	}
	for (int i = 0; i < 11; i++) {
		pid = fork();
		ASSERT_LE(0, pid);
		if (pid == 0) {
			struct rlimit rl = { 2 * PG, 2 * PG };
			char name[HPMEM_NAME_MAX];

			CHILD_CHECK(setrlimit(RLIMIT_MEMLOCK, &rl) == 0);
			CHILD_CHECK(drop_root() == 0);
			CHILD_CHECK(hp_create(fds[i], UNIQUE_NAME(name, "user"), 0) == 0);
			rc = hp_grow(fds[i], i & 1, 1, NULL);
			_exit(rc == 0 ? 0 : rc == -ENOMEM ? 10 : 1);
		}
		rc = wait_child(pid);
		ASSERT_TRUE(rc == 0 || rc == 10) TH_LOG("child %d: %d", i, rc);
		if (i < 10) {
			/* the child is gone, its region (held by our fd) is not */
			EXPECT_EQ(i < 2 ? 0 : 10, rc) TH_LOG("child %d", i);
			ok += rc == 0;
		} else {
			/* closing the regions gave the user its allowance back */
			EXPECT_EQ(0, rc);
		}
		if (i == 9) {
			EXPECT_EQ(2, ok);
			for (int j = 0; j < 10; j++)
				close(fds[j]);
		}
	}
	close(fds[10]);
}

/* Busy pages (a pipe still reads them) stay charged until they are free. */
TEST(rlimit_memlock_kept_while_busy)
{
	int fd;
	pid_t pid;

	OPEN_DEV(fd);
	close(fd);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct rlimit rl = { 2 * PG, 2 * PG };
		struct hpmem_node_info ni;
		char name[HPMEM_NAME_MAX];
		struct iovec iov[2];
		int fds[2], pfd[2], i;
		char *p;

		/*
		 * Opened here, as root still: a copy in the parent would
		 * keep the region alive until the parent got round to
		 * closing it, which a loaded host can delay past the check.
		 */
		for (i = 0; i < 2; i++) {
			fds[i] = open(HPMEM_DEVICE_PATH, O_RDWR | O_CLOEXEC);
			CHILD_CHECK(fds[i] >= 0);
		}
		CHILD_CHECK(setrlimit(RLIMIT_MEMLOCK, &rl) == 0);
		CHILD_CHECK(drop_root() == 0);
		CHILD_CHECK(hp_create(fds[0], UNIQUE_NAME(name, "bsy"),
				      HPMEM_REGION_PINNABLE) == 0);
		CHILD_CHECK(hp_grow(fds[0], 0, 2, NULL) == 0);
		p = map_region(fds[0], 2 * PG, 0);
		CHILD_CHECK(p != MAP_FAILED);
		for (i = 0; i < 2; i++) {
			p[i * PG] = 1;
			iov[i].iov_base = p + i * PG;
			iov[i].iov_len = 4096;
		}
		CHILD_CHECK(pipe(pfd) == 0);
		CHILD_CHECK(vmsplice(pfd[1], iov, 2, 0) == 8192);
		CHILD_CHECK(munmap(p, 2 * PG) == 0);
		CHILD_CHECK(close(fds[0]) == 0);
		/* the region is gone, its pages are busy and still charged */
		CHILD_CHECK(hp_node_info(fds[1], 0, &ni) == 0);
		if (ni.busy_pages != 2)
			fprintf(stderr, "# busy_pages %llu\n",
				(unsigned long long)ni.busy_pages);
		CHILD_CHECK(ni.busy_pages == 2);
		CHILD_CHECK(hp_create(fds[1], UNIQUE_NAME(name, "bsy"), 0) == 0);
		CHILD_CHECK(hp_grow(fds[1], 0, 1, NULL) == -ENOMEM);
		close(pfd[0]);
		close(pfd[1]);
		for (i = 0; i < 150; i++) {
			CHILD_CHECK(hp_node_info(fds[1], 0, &ni) == 0);
			if (!ni.busy_pages)
				break;
			usleep(20000);
		}
		CHILD_CHECK(ni.busy_pages == 0);
		CHILD_CHECK(hp_grow(fds[1], 0, 2, NULL) == 0);
		_exit(0);
	}
	EXPECT_EQ(0, wait_child(pid));
}

TEST(cap_ipc_lock_ignores_rlimit)
{
	struct rlimit rl = { 0, 0 };
	char name[HPMEM_NAME_MAX];
	pid_t pid;
	int fd;

	OPEN_DEV(fd);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		CHILD_CHECK(setrlimit(RLIMIT_MEMLOCK, &rl) == 0);
		CHILD_CHECK(hp_create(fd, UNIQUE_NAME(name, "cap"), 0) == 0);
		CHILD_CHECK(hp_grow(fd, 0, 2, NULL) == 0);
		_exit(0);
	}
	EXPECT_EQ(0, wait_child(pid));
	close(fd);
}

/*
 * A caller who may not see addresses must not learn their order either.
 * nobody grows 16 pages, @per_grow at a time; root, who sees addresses,
 * checks that the offsets do not follow physical order (ascending by
 * chance: 1 in 16!). Within one grow the pages are shuffled; across grows
 * they must not come from the start of the (pfn-ordered) free list.
 */
static void order_hidden(struct __test_metadata *_metadata, const char *tag,
			 unsigned int per_grow)
{
	struct hpmem_seg segs[16], own[16];
	char name[HPMEM_NAME_MAX], param[8] = "";
	int fd, nfd, ascending = 1;
	pid_t pid;

	OPEN_DEV(fd);
	read_file(PARAM_PHYS, param, sizeof(param));
	if (param[0] == 'Y' || param[0] == '1')
		SKIP(return, "module loaded with phys_unprivileged set");
	if (node_free(fd, 0) < 16)
		SKIP(return, "16 free pages needed on node 0");
	nfd = open(HPMEM_DEVICE_PATH, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, nfd);
	UNIQUE_NAME(name, tag);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		/* Room for what earlier tests' busy pages may still hold. */
		struct rlimit rl = { 64 * PG, 64 * PG };

		CHILD_CHECK(setrlimit(RLIMIT_MEMLOCK, &rl) == 0);
		CHILD_CHECK(drop_root() == 0);
		CHILD_CHECK(hp_create(nfd, name, HPMEM_REGION_PERSISTENT) == 0);
		for (unsigned int i = 0; i < 16; i += per_grow)
			CHILD_CHECK(hp_grow(nfd, 0, per_grow, NULL) == 0);
		/* Its own table: offset order, no addresses. */
		CHILD_CHECK(hp_segs(nfd, own, 16) == 16);
		for (int i = 0; i < 16; i++)
			CHILD_CHECK(own[i].offset == i * PG && !own[i].phys);
		_exit(0);
	}
	EXPECT_EQ(0, wait_child(pid));
	close(nfd);
	ASSERT_EQ(0, hp_attach_uid(fd, name, NOBODY, NULL));
	ASSERT_EQ(16, hp_segs(fd, segs, 16));
	/* root's table is in physical order: are the offsets too? */
	for (int i = 1; i < 16; i++)
		if (segs[i].offset < segs[i - 1].offset)
			ascending = 0;
	EXPECT_EQ(0, ascending) TH_LOG("offsets follow physical order");
	close(fd);
	OPEN_DEV(fd);
	EXPECT_EQ(0, hp_destroy_uid(fd, name, NOBODY));
	close(fd);
}

TEST(page_order_hidden_from_unprivileged)
{
	order_hidden(_metadata, "order", 16);
}

TEST(page_order_hidden_across_grows)
{
	order_hidden(_metadata, "order1", 1);
}

/* Who sees addresses keeps physical order: IOVA-contiguous runs by offset. */
TEST(page_order_kept_for_privileged)
{
	struct hpmem_seg segs[16];
	char name[HPMEM_NAME_MAX];
	int fd;

	OPEN_DEV(fd);
	if (node_free(fd, 0) < 16)
		SKIP(return, "16 free pages needed on node 0");
	ASSERT_EQ(0, hp_create(fd, UNIQUE_NAME(name, "order"), 0));
	ASSERT_EQ(0, hp_grow(fd, 0, 16, NULL));
	ASSERT_EQ(16, hp_segs(fd, segs, 16));
	for (int i = 0; i < 16; i++)
		EXPECT_EQ(i * PG, segs[i].offset);
	close(fd);
}

#define TRACING		"/sys/kernel/tracing"
#define CAP_PROBE	TRACING "/events/kprobes/hpmem_cap/enable"
#define CAP_OPT_NOAUDIT	0x2	/* include/linux/security.h, 6.1 and 6.12 */

/*
 * A kprobe on security_capable() recording the capability and the options
 * of every check; 0 or -errno (no tracefs, no kprobes).
 */
static int cap_probe_start(void)
{
	int fd, rc;

	if (access(TRACING "/kprobe_events", W_OK))
		mount("nodev", TRACING, "tracefs", 0, NULL);
	rc = write_file(TRACING "/kprobe_events",
			"p:hpmem_cap security_capable cap=$arg3:s32 opts=$arg4:u32");
	if (rc)
		return rc;
	fd = open(TRACING "/trace", O_WRONLY | O_TRUNC | O_CLOEXEC);
	if (fd >= 0)
		close(fd);
	return write_file(CAP_PROBE, "1");
}

static void cap_probe_stop(void)
{
	write_file(CAP_PROBE, "0");
	write_file(TRACING "/kprobe_events", "-:hpmem_cap");
}

/*
 * Checks that only select behaviour (whether the region cap or the
 * RLIMIT_MEMLOCK charge applies, whether addresses show, whose regions
 * REGION_LIST shows) are not audited: an unprivileged user's create, grow,
 * SEGS and LIST leave no capability record. A refusal still is audited: a
 * pool resize by nobody, the control that the probe sees checks at all.
 */
TEST(unprivileged_checks_not_audited)
{
	int audited_admin = 0, quiet_admin = 0, audited_ipc = 0, quiet_ipc = 0;
	char *buf, *line, *next, *c, key[24];
	unsigned int opts;
	pid_t pid;
	int fd, rc, cap;

	OPEN_DEV(fd);
	rc = cap_probe_start();
	if (rc) {
		cap_probe_stop();
		SKIP(return, "no kprobe on security_capable() (%s)", strerror(-rc));
	}
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct rlimit rl = { 2 * PG, 2 * PG };
		char name[HPMEM_NAME_MAX];
		struct hpmem_info info;
		struct hpmem_seg seg;

		CHILD_CHECK(setrlimit(RLIMIT_MEMLOCK, &rl) == 0);
		CHILD_CHECK(drop_root() == 0);
		CHILD_CHECK(hp_info(fd, &info) == 0);
		CHILD_CHECK(hp_create(fd, UNIQUE_NAME(name, "aud"), 0) == 0);
		CHILD_CHECK(hp_grow(fd, 0, 1, NULL) == 0);
		CHILD_CHECK(hp_segs(fd, &seg, 1) == 1);
		CHILD_CHECK(list_walk(fd, name, NULL, NOBODY, NULL) == 1);
		CHILD_CHECK(hp_resize(fd, 0, 64) == -EPERM);
		_exit(0);
	}
	rc = wait_child(pid);
	write_file(CAP_PROBE, "0");
	buf = calloc(1, 1 << 20);
	if (buf)
		read_file(TRACING "/trace", buf, 1 << 20);
	cap_probe_stop();
	ASSERT_EQ(0, rc);
	ASSERT_NE(NULL, buf);
	/* "comm-PID [cpu]": by pid, as the comm shown may be a stale one */
	snprintf(key, sizeof(key), "-%d ", pid);
	for (line = buf; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = 0;
		if (!strstr(line, key))
			continue;
		c = strstr(line, " cap=");
		if (!c || sscanf(c, " cap=%d opts=%u", &cap, &opts) != 2)
			continue;
		/* The capabilities hpmem checks; setuid() checks others. */
		if (cap != CAP_SYS_ADMIN && cap != CAP_IPC_LOCK)
			continue;
		if (cap == CAP_SYS_ADMIN)
			opts & CAP_OPT_NOAUDIT ? quiet_admin++ : audited_admin++;
		else
			opts & CAP_OPT_NOAUDIT ? quiet_ipc++ : audited_ipc++;
		if (!(opts & CAP_OPT_NOAUDIT))
			TH_LOG("audited: %s", line);
	}
	free(buf);
	/* the resize, and nothing else */
	EXPECT_EQ(1, audited_admin);
	EXPECT_EQ(0, audited_ipc);
	/* create (cap), SEGS (addresses), LIST (whose); CAP_IPC_LOCK (grow) */
	EXPECT_LE(3, quiet_admin);
	EXPECT_LE(1, quiet_ipc);
	close(fd);
}

TEST_HARNESS_MAIN
