// SPDX-License-Identifier: MIT
/*
 * A process SIGKILLed while a VFIO container holds its region pinned, in
 * every order the kernel can release things: the hpmem file before the
 * VFIO fds, after them, or the container outliving the process in another
 * one (its device fd passed over a socket). A page the device may still
 * reach is never handed out again: while the container lives, the device
 * writes to the old IOVAs, and no new region sees those bytes; once it is
 * gone, every page is back in its pool. Guest with an IOMMU only (edu
 * bound to vfio-pci); SKIP elsewhere.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/hpmem.h>
#include <hpmem/hpmem.h>

#include "edu.h"
#include "kselftest_harness.h"

#define REGION_MIB	8		/* 4 pages on node 0 */
#define BUF_LEN		4096
#define HIGH_FD		900
#define SETTLE_MS	8000

static char bdf[32];

static void __attribute__((constructor)) dma_kill_init(void)
{
	bool vfio = false;

	if (edu_find(bdf, sizeof(bdf), &vfio) || !vfio ||
	    access(HPMEM_DEVICE_PATH, F_OK)) {
		printf("TAP version 13\n1..0 # SKIP needs /dev/hpmem and an edu "
		       "device bound to vfio-pci (the guest's IOMMU boot)\n");
		exit(4);
	}
}

enum order {
	HPMEM_FIRST,		/* the hpmem file closes before the VFIO fds */
	VFIO_FIRST,		/* the VFIO fds close before the hpmem file */
	VFIO_OUTLIVES,		/* another process keeps the container */
};

struct report {
	int ret;
	uint64_t iova;		/* of the pattern the child wrote */
	uint8_t pattern[16];
};

struct pool_state {
	uint64_t total, free, busy;
};

static int pool_state(unsigned int node, struct pool_state *st)
{
	struct hpmem_node_info ni = { .argsz = sizeof(ni), .node = node };
	int fd = open(HPMEM_DEVICE_PATH, O_RDWR | O_CLOEXEC), ret;

	if (fd < 0)
		return -errno;
	ret = ioctl(fd, HPMEM_IOC_NODE_INFO, &ni) ? -errno : 0;
	close(fd);
	st->total = ni.total_pages;
	st->free = ni.free_pages;
	st->busy = ni.busy_pages;
	return ret;
}

/* Waits until node 0 is back to @want free pages with none busy. */
static int settle(const struct pool_state *want, struct pool_state *now)
{
	for (int ms = 0; ms < SETTLE_MS; ms += 50) {
		if (pool_state(0, now))
			return -EIO;
		if (!now->busy && now->free == want->free)
			return 0;
		usleep(50 * 1000);
	}
	return -ETIMEDOUT;
}

/* settle(), saying where node 0 ended up, @when. */
static int settle_said(const char *when, const struct pool_state *want,
		       struct pool_state *now)
{
	int ret = settle(want, now);

	ksft_print_msg("%s: node 0 free %llu (before %llu), busy %llu\n", when,
		       (unsigned long long)now->free, (unsigned long long)want->free,
		       (unsigned long long)now->busy);
	return ret;
}

/* Moves every fd whose target starts with one of @kinds above HIGH_FD. */
static void raise_fds(const char *const *kinds)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int fds[64], n = 0;

	if (!d)
		return;
	while ((e = readdir(d)) && n < 64) {
		char path[64], tgt[128];
		ssize_t len;
		int fd = atoi(e->d_name);

		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		len = readlink(path, tgt, sizeof(tgt) - 1);
		if (len <= 0 || fd == dirfd(d))
			continue;
		tgt[len] = 0;
		for (int k = 0; kinds[k]; k++)
			if (!strncmp(tgt, kinds[k], strlen(kinds[k])))
				fds[n++] = fd;
	}
	closedir(d);
	for (int i = 0; i < n; i++) {
		if (fcntl(fds[i], F_DUPFD, HIGH_FD) >= 0)
			close(fds[i]);
	}
}

static int send_fd(int sock, int fd, const void *data, size_t len)
{
	char cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
	struct iovec iov = { .iov_base = (void *)data, .iov_len = len };
	struct msghdr m = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = fd >= 0 ? cbuf : NULL,
		.msg_controllen = fd >= 0 ? sizeof(cbuf) : 0,
	};

	if (fd >= 0) {
		struct cmsghdr *c = CMSG_FIRSTHDR(&m);

		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	return sendmsg(sock, &m, 0) == (ssize_t)len ? 0 : -EIO;
}

static int recv_fd(int sock, int *fd, void *data, size_t len)
{
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { .iov_base = data, .iov_len = len };
	struct msghdr m = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = cbuf, .msg_controllen = sizeof(cbuf),
	};
	struct cmsghdr *c;

	*fd = -1;
	if (recvmsg(sock, &m, 0) != (ssize_t)len)
		return -EIO;
	c = CMSG_FIRSTHDR(&m);
	if (c && c->cmsg_type == SCM_RIGHTS)
		memcpy(fd, CMSG_DATA(c), sizeof(int));
	return 0;
}

/*
 * The victim: a primary with its memory mapped into a VFIO container (the
 * region pinnable, type1 pinning every page), a pattern in it, the fds
 * arranged for @o; it reports and waits for SIGKILL.
 */
static void victim(int sock, enum order o)
{
	static const char *const hpmem_fds[] = { HPMEM_DEVICE_PATH, NULL };
	static const char *const vfio_fds[] = { "/dev/vfio/", "anon_inode:[vfio", NULL };
	struct report r = { 0 };
	struct hpm_init_opts opts;
	struct hpm_vfio_device_info info;
	char name[HPM_NAME_SIZE];
	int dev = -1;
	uint8_t *buf;

	hpm_init_opts_default(&opts);
	snprintf(name, sizeof(name), "kill-%d", getpid());
	opts.region = name;
	opts.backend = HPM_BACKEND_KMOD;
	opts.flags = HPM_INIT_F_VFIO;
	opts.socket_mem[0] = REGION_MIB;
	r.ret = hpm_init(&opts);
	if (!r.ret)
		r.ret = hpm_vfio_setup_device(bdf, HPM_VFIO_DEFAULT_CONTAINER, &dev, &info);
	buf = r.ret ? NULL : hpm_malloc_socket("victim", BUF_LEN, 4096, 0);
	if (!r.ret && !buf)
		r.ret = -ENOMEM;
	if (buf) {
		for (size_t i = 0; i < sizeof(r.pattern); i++)
			r.pattern[i] = (uint8_t)(0xa0 + i * 7 + getpid());
		for (size_t off = 0; off < BUF_LEN; off += sizeof(r.pattern))
			memcpy(buf + off, r.pattern, sizeof(r.pattern));
		r.iova = hpm_virt2iova(buf);
	}
	if (o == HPMEM_FIRST)
		raise_fds(vfio_fds);
	else if (o == VFIO_FIRST)
		raise_fds(hpmem_fds);
	send_fd(sock, o == VFIO_OUTLIVES && !r.ret ? dev : -1, &r, sizeof(r));
	for (;;)
		pause();
}

/* Counts occurrences of @pat (16 bytes) in every free page of node 0. */
static long pattern_in_free_pages(const uint8_t *pat)
{
	struct pool_state st;
	struct hpmem_region_create c = { .argsz = sizeof(c) };
	struct hpmem_region_grow g = { .argsz = sizeof(g), .node = 0 };
	long hits = 0;
	uint8_t *p;
	int fd;

	if (pool_state(0, &st) || !st.free)
		return -EIO;
	fd = open(HPMEM_DEVICE_PATH, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	snprintf(c.name, sizeof(c.name), "scan-%d", getpid());
	g.nr_pages = st.free;
	if (ioctl(fd, HPMEM_IOC_REGION_CREATE, &c) || ioctl(fd, HPMEM_IOC_REGION_GROW, &g)) {
		hits = -errno;
		close(fd);
		return hits;
	}
	p = mmap(NULL, st.free * HPMEM_PAGE_SIZE, PROT_READ, MAP_SHARED, fd, (off_t)g.offset);
	if (p == MAP_FAILED) {
		hits = -errno;
	} else {
		for (size_t off = 0; off < st.free * HPMEM_PAGE_SIZE; off += 16)
			hits += !memcmp(p + off, pat, 16);
		munmap(p, st.free * HPMEM_PAGE_SIZE);
	}
	close(fd);
	return hits;
}

FIXTURE(kill) {
	struct pool_state before;
};

FIXTURE_VARIANT(kill) {
	enum order order;
};
FIXTURE_VARIANT_ADD(kill, hpmem_file_first) { .order = HPMEM_FIRST };
FIXTURE_VARIANT_ADD(kill, vfio_fds_first) { .order = VFIO_FIRST };
FIXTURE_VARIANT_ADD(kill, container_outlives) { .order = VFIO_OUTLIVES };

FIXTURE_SETUP(kill)
{
	ASSERT_EQ(0, pool_state(0, &self->before));
	ASSERT_EQ(0, self->before.busy);
	ASSERT_LE(REGION_MIB / 2 + 1, self->before.free);
}

FIXTURE_TEARDOWN(kill)
{
}

TEST_F(kill, pinned_pages_never_reused)
{
	struct pool_state now;
	struct report r;
	int sv[2], dev = -1, ret;
	struct edu e;
	pid_t pid;

	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		close(sv[0]);
		victim(sv[1], variant->order);
	}
	close(sv[1]);
	ASSERT_EQ(0, recv_fd(sv[0], &dev, &r, sizeof(r)));
	close(sv[0]);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	if (r.ret)
		ksft_print_msg("victim setup: %s\n", strerror(-r.ret));
	ASSERT_EQ(0, r.ret);

	if (variant->order != VFIO_OUTLIVES) {
		/* Mapping, hpmem file, container: all gone with the process. */
		ret = settle_said("after the kill", &self->before, &now);
		EXPECT_EQ(0, ret);
		EXPECT_EQ(self->before.total, now.total);
		EXPECT_EQ(0, pattern_in_free_pages(r.pattern));
		return;
	}

	/* The container lives on in this process: its pages are pinned. */
	ASSERT_LE(0, dev);
	usleep(300 * 1000);
	ASSERT_EQ(0, pool_state(0, &now));
	EXPECT_EQ(self->before.total, now.total);
	EXPECT_LE(1, now.busy);
	EXPECT_EQ(self->before.free, now.free + now.busy);
	/* The device still reaches the dead region: copy through it. */
	ASSERT_EQ(0, edu_open_vfio_fd(&e, dev));
	EXPECT_EQ(0, edu_copy(&e, r.iova, r.iova + BUF_LEN / 2, BUF_LEN / 2));
	edu_close(&e);
	/* ...and no page anyone can get holds what it reaches. */
	EXPECT_EQ(0, pattern_in_free_pages(r.pattern));

	close(dev);
	ret = settle_said("after the container", &self->before, &now);
	EXPECT_EQ(0, ret);
	EXPECT_EQ(0, pattern_in_free_pages(r.pattern));
}

TEST_HARNESS_MAIN
