/* SPDX-License-Identifier: MIT */
/* Helpers shared by the hpmem.ko selftests: thin ioctl wrappers that return
 * 0 or -errno, node and sysfs readers, privilege dropping in children. */
#ifndef HPMEM_TEST_H
#define HPMEM_TEST_H

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <sys/syscall.h>
#include <linux/capability.h>
#include <linux/hpmem.h>

#include "kselftest_harness.h"

#define PG		HPMEM_PAGE_SIZE
#define NOBODY		65534

/* Open the device or SKIP the test when the module is not loaded. */
#define OPEN_DEV(fd) do {						\
	(fd) = open(HPMEM_DEVICE_PATH, O_RDWR | O_CLOEXEC);		\
	if ((fd) < 0 && errno == ENOENT)				\
		SKIP(return, "%s absent", HPMEM_DEVICE_PATH);		\
	ASSERT_LE(0, (fd)) TH_LOG("open: %s", strerror(errno));		\
} while (0)

/* In forked helpers the harness' ASSERTs must not be used (they longjmp
 * into the test's frame): report and exit with the failing line instead. */
#define CHILD_CHECK(cond) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "# child %d %s:%d: %s (errno %d %s)\n",	\
			getpid(), __FILE__, __LINE__, #cond, errno,	\
			strerror(errno));				\
		_exit(1);						\
	}								\
} while (0)

static inline int xioctl(int fd, unsigned long cmd, void *arg)
{
	return ioctl(fd, cmd, arg) ? -errno : 0;
}

static inline int hp_info(int fd, struct hpmem_info *i)
{
	memset(i, 0, sizeof(*i));
	i->argsz = sizeof(*i);
	return xioctl(fd, HPMEM_IOC_INFO, i);
}

static inline int hp_node_info(int fd, unsigned int node,
			       struct hpmem_node_info *ni)
{
	memset(ni, 0, sizeof(*ni));
	ni->argsz = sizeof(*ni);
	ni->node = node;
	return xioctl(fd, HPMEM_IOC_NODE_INFO, ni);
}

static inline int hp_resize(int fd, unsigned int node, uint64_t nr)
{
	struct hpmem_pool_resize r = { .argsz = sizeof(r), .node = node,
				       .nr_pages = nr };

	return xioctl(fd, HPMEM_IOC_POOL_RESIZE, &r);
}

static inline int hp_create(int fd, const char *name, uint32_t flags)
{
	struct hpmem_region_create c = { .argsz = sizeof(c), .flags = flags };

	strncpy(c.name, name, sizeof(c.name));
	return xioctl(fd, HPMEM_IOC_REGION_CREATE, &c);
}

static inline int hp_attach(int fd, const char *name,
			    struct hpmem_region_attach *out)
{
	struct hpmem_region_attach a = { .argsz = sizeof(a) };
	int rc;

	strncpy(a.name, name, sizeof(a.name));
	rc = xioctl(fd, HPMEM_IOC_REGION_ATTACH, &a);
	if (out)
		*out = a;
	return rc;
}

/* Attach @name of @uid (HPMEM_NAME_UID). */
static inline int hp_attach_uid(int fd, const char *name, uint32_t uid,
				struct hpmem_region_attach *out)
{
	struct hpmem_region_attach a = { .argsz = sizeof(a),
					 .flags = HPMEM_NAME_UID, .uid = uid };
	int rc;

	strncpy(a.name, name, sizeof(a.name));
	rc = xioctl(fd, HPMEM_IOC_REGION_ATTACH, &a);
	if (out)
		*out = a;
	return rc;
}

static inline int hp_grow(int fd, unsigned int node, uint64_t nr,
			  uint64_t *offset)
{
	struct hpmem_region_grow g = { .argsz = sizeof(g), .node = node,
				       .nr_pages = nr };
	int rc = xioctl(fd, HPMEM_IOC_REGION_GROW, &g);

	if (offset)
		*offset = g.offset;
	return rc;
}

/* Fill up to @n entries; returns the region's page count or -errno. */
static inline long hp_segs(int fd, struct hpmem_seg *segs, uint32_t n)
{
	struct hpmem_region_segs s = { .argsz = sizeof(s), .nr_segs = n,
				       .segs = (uintptr_t)segs };
	int rc = xioctl(fd, HPMEM_IOC_REGION_SEGS, &s);

	return rc ? rc : (long)s.nr_segs;
}

static inline int hp_destroy(int fd, const char *name)
{
	struct hpmem_region_destroy d = { .argsz = sizeof(d) };

	strncpy(d.name, name, sizeof(d.name));
	return xioctl(fd, HPMEM_IOC_REGION_DESTROY, &d);
}

static inline int hp_destroy_uid(int fd, const char *name, uint32_t uid)
{
	struct hpmem_region_destroy d = { .argsz = sizeof(d),
					  .flags = HPMEM_NAME_UID, .uid = uid };

	strncpy(d.name, name, sizeof(d.name));
	return xioctl(fd, HPMEM_IOC_REGION_DESTROY, &d);
}

/* A name unique to this process and call site. */
static inline const char *uname_(char *buf, const char *tag)
{
	static int seq;

	snprintf(buf, HPMEM_NAME_MAX, "t-%s-%d-%d", tag, getpid(), seq++);
	return buf;
}
#define UNIQUE_NAME(buf, tag) uname_(buf, tag)

/* Busy pages of node 0, polled until @want (5 s at most); the last count. */
static inline uint64_t wait_busy(int fd, uint64_t want)
{
	struct hpmem_node_info ni = { 0 };

	for (int i = 0; i < 250; i++) {
		if (hp_node_info(fd, 0, &ni))
			return UINT64_MAX;
		if (ni.busy_pages == want)
			break;
		usleep(20000);
	}
	return ni.busy_pages;
}

static inline uint64_t node_free(int fd, unsigned int node)
{
	struct hpmem_node_info ni;

	if (hp_node_info(fd, node, &ni))
		return UINT64_MAX;
	return ni.free_pages;
}

/*
 * The IOVA SEGS reports for a page at @phys: the physical address unless an
 * IOMMU translates (UAPI DOC: device addresses), where it is unknown, 0.
 */
static inline uint64_t expected_iova(int fd, uint64_t phys)
{
	struct hpmem_info i;

	if (hp_info(fd, &i) == 0 && i.dma_model == HPMEM_DMA_TRANSLATED)
		return 0;
	return phys;
}

/* Nodes with a pool, from HPMEM_IOC_INFO; 0 on error. */
static inline uint64_t node_mask(int fd)
{
	struct hpmem_info i;

	return hp_info(fd, &i) ? 0 : i.node_mask;
}

/* Whole file (up to @len - 1 bytes), NUL-terminated: seq_file files such
 * as /proc/zoneinfo hand out a page or so per read(). */
static inline int read_file(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t got = 0;
	ssize_t n = 0;

	if (fd < 0)
		return -errno;
	while (got < len - 1 && (n = read(fd, buf + got, len - 1 - got)) > 0)
		got += n;
	if (n < 0) {
		n = -errno;
		close(fd);
		return n;
	}
	close(fd);
	buf[got] = 0;
	return (int)got;
}

static inline int write_file(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, s, strlen(s));
	close(fd);
	return n < 0 ? -errno : 0;
}

/* Unsigned number in a sysfs file; -errno on error. */
static inline int64_t read_u64(const char *path)
{
	char buf[64];
	int rc = read_file(path, buf, sizeof(buf));

	return rc < 0 ? rc : (int64_t)strtoull(buf, NULL, 0);
}

/* Drop to nobody, without capabilities; 0 or -errno. */
static inline int drop_root(void)
{
	if (setgroups(0, NULL) || setgid(NOBODY) || setuid(NOBODY))
		return -errno;
	return 0;
}

/* Stay uid 0 but drop capability @cap from the effective and permitted
 * sets (no libcap in the guest); 0 or -errno. */
static inline int drop_cap(int cap)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];

	if (syscall(SYS_capget, &h, d))
		return -errno;
	d[cap / 32].effective &= ~(1U << (cap % 32));
	d[cap / 32].permitted &= ~(1U << (cap % 32));
	d[cap / 32].inheritable &= ~(1U << (cap % 32));
	return syscall(SYS_capset, &h, d) ? -errno : 0;
}

/* Wait for a helper child; its exit status, or 128 + signal. */
static inline int wait_child(pid_t pid)
{
	int st;

	if (waitpid(pid, &st, 0) != pid)
		return -errno;
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return WEXITSTATUS(st);
}

static inline void *map_region(int fd, size_t len, off_t off)
{
	return mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, off);
}

/* Module unload, refused (-EAGAIN/-EBUSY) while anything uses it. */
static inline int hp_rmmod(void)
{
	return syscall(SYS_delete_module, "hpmem", O_NONBLOCK) ? -errno : 0;
}

/* -EWOULDBLOCK (== -EAGAIN) is what the kernel says for a module in use. */
static inline int hp_rmmod_refused(int rc)
{
	return rc == -EAGAIN || rc == -EBUSY;
}

/*
 * Loads $HPMEM_KO (as the guest's init does) with @params, NULL meaning
 * $HPMEM_KO_PARAMS, and waits for devtmpfs to create the device node.
 */
static inline int hp_insmod(const char *params)
{
	const char *ko = getenv("HPMEM_KO");
	int fd, rc;

	if (!params)
		params = getenv("HPMEM_KO_PARAMS") ?: "";
	fd = ko ? open(ko, O_RDONLY | O_CLOEXEC) : -1;
	if (fd < 0)
		return ko ? -errno : -ENOENT;
	rc = syscall(SYS_finit_module, fd, params, 0) ? -errno : 0;
	close(fd);
	for (int i = 0; !rc && i < 50 && access(HPMEM_DEVICE_PATH, F_OK); i++)
		usleep(100000);
	return rc;
}

/* One HPMEM_IOC_REGION_LIST call; entries filled or -errno. */
static inline int list_page(int fd, uint64_t *cursor, void *buf,
			    uint32_t n, uint32_t entry_size)
{
	struct hpmem_region_list l = { .argsz = sizeof(l), .nr_entries = n,
				       .entry_size = entry_size,
				       .cursor = *cursor,
				       .entries = (uintptr_t)buf };
	int rc = xioctl(fd, HPMEM_IOC_REGION_LIST, &l);

	if (rc)
		return rc;
	*cursor = l.cursor;
	return l.nr_entries;
}

/*
 * Walks the whole list as the caller sees it: the entry named @name in
 * *@found (when not NULL), how many entries there were, and how many of
 * them belonged to a uid other than @uid; -errno on error.
 */
static inline int list_walk(int fd, const char *name,
			    struct hpmem_region_entry *found, uint32_t uid,
			    int *foreign)
{
	struct hpmem_region_entry e[16];
	uint64_t cursor = 0;
	int n, total = 0;

	if (foreign)
		*foreign = 0;
	if (found)
		found->id = 0;
	while ((n = list_page(fd, &cursor, e, 16, sizeof(e[0]))) > 0) {
		for (int i = 0; i < n; i++) {
			if (foreign && e[i].uid != uid)
				(*foreign)++;
			if (found && !strcmp(e[i].name, name))
				*found = e[i];
		}
		total += n;
	}
	return n < 0 ? n : total;
}

/* The region's @name entry, seen by root; its dma_pinned or -errno. */
static inline long list_dma_pinned(int fd, const char *name)
{
	struct hpmem_region_entry e;
	int rc = list_walk(fd, name, &e, 0, NULL);

	if (rc < 0)
		return rc;
	return e.id ? (long)e.dma_pinned : -ENOENT;
}

#endif /* HPMEM_TEST_H */
