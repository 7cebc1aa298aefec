// SPDX-License-Identifier: MIT
/* Sparse regions (UAPI DOC: sparse regions): a reservation mapped once,
 * holes that raise SIGBUS, GROW at an offset seen by every existing mapping,
 * RELEASE that unmaps everywhere and gives the page back at once. */
#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stddef.h>
#include "hpmem_test.h"
#include "pfnref_test.h"

static int have_sparse(int fd)
{
	struct hpmem_info i;

	return hp_info(fd, &i) == 0 && (i.features & HPMEM_FEAT_SPARSE);
}

#define OPEN_SPARSE(fd) do {						\
	OPEN_DEV(fd);							\
	if (!have_sparse(fd))						\
		SKIP(return, "module without HPMEM_FEAT_SPARSE");	\
} while (0)

static int sp_create(int fd, const char *name, uint32_t flags, uint64_t max)
{
	struct hpmem_region_create c = { .argsz = sizeof(c), .flags = flags,
					 .max_pages = max };

	snprintf(c.name, sizeof(c.name), "%s", name);
	return xioctl(fd, HPMEM_IOC_REGION_CREATE, &c);
}

static int grow_at(int fd, unsigned int node, uint64_t page, uint64_t nr)
{
	struct hpmem_region_grow g = { .argsz = sizeof(g), .node = node,
				       .flags = HPMEM_GROW_AT,
				       .nr_pages = nr, .offset = page * PG };

	return xioctl(fd, HPMEM_IOC_REGION_GROW, &g);
}

static int release(int fd, uint64_t page, uint64_t nr)
{
	struct hpmem_region_release r = { .argsz = sizeof(r),
					  .offset = page * PG,
					  .nr_pages = nr };

	return xioctl(fd, HPMEM_IOC_REGION_RELEASE, &r);
}

static _Thread_local sigjmp_buf *bus_env;

static void on_bus(int sig)
{
	(void)sig;
	siglongjmp(*bus_env, 1);
}

static void catch_bus(void)
{
	struct sigaction sa = { .sa_handler = on_bus, .sa_flags = SA_NODEFER };

	sigaction(SIGBUS, &sa, NULL);
}

/* Reads the word at @p: 0 and *@v, or 1 on SIGBUS. */
static int peek(volatile uint64_t *p, uint64_t *v)
{
	sigjmp_buf env;

	bus_env = &env;
	if (sigsetjmp(env, 1))
		return 1;
	*v = *p;
	return 0;
}

/* Writes @v at @p: 0, or 1 on SIGBUS. */
static int poke(volatile uint64_t *p, uint64_t v)
{
	sigjmp_buf env;

	bus_env = &env;
	if (sigsetjmp(env, 1))
		return 1;
	*p = v;
	return 0;
}

static int free_now(int fd)
{
	char path[96];

	snprintf(path, sizeof(path), "/sys/class/hpmem/hpmem/node0/free_pages");
	return (int)read_u64(path);
}

FIXTURE(sp) {
	int fd;
	char name[HPMEM_NAME_MAX];
	struct hpmem_node_info ni0;
};

FIXTURE_SETUP(sp)
{
	OPEN_SPARSE(self->fd);
	catch_bus();
	UNIQUE_NAME(self->name, "sp");
	ASSERT_EQ(0, hp_node_info(self->fd, 0, &self->ni0));
	if (self->ni0.free_pages < 6)
		SKIP(return, "node 0 has %llu free pages, need 6",
		     (unsigned long long)self->ni0.free_pages);
}

FIXTURE_TEARDOWN(sp)
{
	struct hpmem_node_info ni;

	if (self->fd < 0)
		return;
	close(self->fd);
	/* Every test gives back what it took. */
	self->fd = open(HPMEM_DEVICE_PATH, O_RDWR | O_CLOEXEC);
	if (self->fd >= 0 && hp_node_info(self->fd, 0, &ni) == 0) {
		EXPECT_EQ(self->ni0.inuse_pages, ni.inuse_pages);
		EXPECT_EQ(self->ni0.mapped_pages, ni.mapped_pages);
	}
	if (self->fd >= 0)
		close(self->fd);
}

/* The reservation maps whole; holes raise SIGBUS, pages work. */
TEST_F(sp, reserve_and_holes)
{
	struct hpmem_region_attach a;
	uint64_t off, v;
	char *p;
	int fd2;

	ASSERT_EQ(0, sp_create(self->fd, self->name, 0, 4));
	ASSERT_EQ(0, hp_grow(self->fd, 0, 1, &off));
	EXPECT_EQ(0, off);
	p = map_region(self->fd, 4 * PG, 0);
	ASSERT_NE(MAP_FAILED, p);
	EXPECT_EQ(0, poke((uint64_t *)p, 7));
	EXPECT_EQ(1, peek((uint64_t *)(p + PG), &v));
	EXPECT_EQ(1, poke((uint64_t *)(p + 3 * PG + 4096), 1));
	/* beyond the reservation: refused */
	EXPECT_EQ(MAP_FAILED, map_region(self->fd, 5 * PG, 0));
	EXPECT_EQ(MAP_FAILED, map_region(self->fd, PG, 4 * PG));

	fd2 = open(HPMEM_DEVICE_PATH, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, fd2);
	ASSERT_EQ(0, hp_attach(fd2, self->name, &a));
	EXPECT_EQ(4, a.max_pages);
	EXPECT_EQ(1, a.nr_pages);
	close(fd2);
	munmap(p, 4 * PG);
}

/* GROW_AT fills a hole; every earlier mapping sees it, in any process. */
TEST_F(sp, grow_at_seen_by_existing_mappings)
{
	volatile uint64_t *q;
	int go[2], done[2], fd2;
	char *p, *p2, c;
	uint64_t v;
	pid_t pid;

	ASSERT_EQ(0, sp_create(self->fd, self->name, 0, 4));
	p = map_region(self->fd, 4 * PG, 0);
	ASSERT_NE(MAP_FAILED, p);
	/* a second file, attached by name and mapped before the grow */
	fd2 = open(HPMEM_DEVICE_PATH, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, fd2);
	ASSERT_EQ(0, hp_attach(fd2, self->name, NULL));
	p2 = map_region(fd2, 4 * PG, 0);
	ASSERT_NE(MAP_FAILED, p2);
	EXPECT_EQ(1, peek((uint64_t *)(p + 2 * PG), &v));
	ASSERT_EQ(0, pipe(go));
	ASSERT_EQ(0, pipe(done));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		q = (uint64_t *)(p + 2 * PG + 8);
		CHILD_CHECK(peek(q, &v) == 1);
		CHILD_CHECK(write(done[1], "r", 1) == 1);
		CHILD_CHECK(read(go[0], &c, 1) == 1);
		CHILD_CHECK(peek(q, &v) == 0 && v == 0x5a5a);
		CHILD_CHECK(poke(q + 1, 0xa5a5) == 0);
		_exit(0);
	}
	ASSERT_EQ(1, read(done[0], &c, 1));
	ASSERT_EQ(0, grow_at(self->fd, 0, 2, 1));
	EXPECT_EQ(0, poke((uint64_t *)(p + 2 * PG + 8), 0x5a5a));
	ASSERT_EQ(1, write(go[1], "g", 1));
	EXPECT_EQ(0, wait_child(pid));
	EXPECT_EQ(0, peek((uint64_t *)(p2 + 2 * PG + 16), &v));
	EXPECT_EQ(0xa5a5, v);
	/* the other slots are still holes */
	EXPECT_EQ(1, peek((uint64_t *)(p2 + 3 * PG), &v));
	EXPECT_EQ(1, peek((uint64_t *)p2, &v));
	munmap(p, 4 * PG);
	munmap(p2, 4 * PG);
	close(fd2);
}

/* GROW_AT onto a taken slot: EEXIST, nothing changes. */
TEST_F(sp, grow_at_taken)
{
	struct hpmem_node_info ni;
	uint64_t off;

	ASSERT_EQ(0, sp_create(self->fd, self->name, 0, 8));
	ASSERT_EQ(0, grow_at(self->fd, 0, 3, 1));
	ASSERT_EQ(0, hp_node_info(self->fd, 0, &ni));
	EXPECT_EQ(-EEXIST, grow_at(self->fd, 0, 3, 1));
	EXPECT_EQ(-EEXIST, grow_at(self->fd, 0, 1, 3));
	EXPECT_EQ(1, hp_segs(self->fd, NULL, 0));
	EXPECT_EQ(ni.free_pages, node_free(self->fd, 0));
	/* without the flag: after the highest present page */
	ASSERT_EQ(0, hp_grow(self->fd, 0, 1, &off));
	EXPECT_EQ(4 * PG, off);
	EXPECT_EQ(0, grow_at(self->fd, 0, 0, 3));
	EXPECT_EQ(5, hp_segs(self->fd, NULL, 0));
	/* full to the reservation */
	EXPECT_EQ(-ENOSPC, hp_grow(self->fd, 0, 4, NULL));
	EXPECT_EQ(-ENOSPC, grow_at(self->fd, 0, 7, 2));
	EXPECT_EQ(-ENOSPC, grow_at(self->fd, 0, 8, 1));
}

/*
 * Two processes grow the same holes at once: each slot is won exactly once,
 * the loser gets EEXIST and nothing else changes.
 */
TEST_F(sp, grow_race_one_winner)
{
	enum { SLOTS = 16 };
	_Atomic int *won;
	int fd2, rc;
	pid_t pid;

	if (self->ni0.free_pages < SLOTS + 2)
		SKIP(return, "too few free pages");
	won = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
		   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, won);
	ASSERT_EQ(0, sp_create(self->fd, self->name, 0, SLOTS));
	fd2 = open(HPMEM_DEVICE_PATH, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, fd2);
	ASSERT_EQ(0, hp_attach(fd2, self->name, NULL));
	pid = fork();
	ASSERT_LE(0, pid);
	for (int i = 0; i < SLOTS; i++) {
		rc = grow_at(pid ? self->fd : fd2, 0, i, 1);
		if (!rc)
			atomic_fetch_add(&won[i], 1);
		else if (rc != -EEXIST)
			atomic_fetch_add(&won[SLOTS], 1);
	}
	if (pid == 0)
		_exit(0);
	ASSERT_EQ(0, wait_child(pid));
	for (int i = 0; i < SLOTS; i++) {
		EXPECT_EQ(1, won[i]) TH_LOG("slot %d", i);
	}
	EXPECT_EQ(0, won[SLOTS]);
	EXPECT_EQ(SLOTS, hp_segs(self->fd, NULL, 0));
	EXPECT_EQ(self->ni0.free_pages - SLOTS, node_free(self->fd, 0));
	close(fd2);
	munmap(won, 4096);
}

/* SEGS and LIST count present pages and report their offsets. */
TEST_F(sp, segs_with_holes)
{
	struct hpmem_seg segs[4];
	struct hpmem_region_attach a;
	struct hpmem_region_entry e;
	char buf[8192], *line;
	int fd2;

	ASSERT_EQ(0, sp_create(self->fd, self->name, 0, 6));
	ASSERT_EQ(0, grow_at(self->fd, 0, 5, 1));
	ASSERT_EQ(0, grow_at(self->fd, 0, 1, 1));
	ASSERT_EQ(2, hp_segs(self->fd, segs, 4));
	if (segs[0].offset > segs[1].offset) {
		struct hpmem_seg t = segs[0];

		segs[0] = segs[1];
		segs[1] = t;
	}
	EXPECT_EQ(1 * PG, segs[0].offset);
	EXPECT_EQ(5 * PG, segs[1].offset);
	ASSERT_EQ(0, release(self->fd, 5, 1));
	ASSERT_EQ(1, hp_segs(self->fd, segs, 4));
	EXPECT_EQ(1 * PG, segs[0].offset);
	/* LIST and sysfs count present pages too */
	ASSERT_LE(1, list_walk(self->fd, self->name, &e, 0, NULL));
	EXPECT_EQ(1, e.nr_pages);
	ASSERT_LT(0, read_file("/sys/class/hpmem/hpmem/regions", buf,
			       sizeof(buf)));
	line = strstr(buf, self->name);
	ASSERT_NE(NULL, line);
	while (line > buf && line[-1] != '\n')
		line--;
	EXPECT_EQ(0, strncmp(strstr(line, "pages="), "pages=1 ", 8));
	fd2 = open(HPMEM_DEVICE_PATH, O_RDWR | O_CLOEXEC);
	ASSERT_EQ(0, hp_attach(fd2, self->name, &a));
	EXPECT_EQ(1, a.nr_pages);
	close(fd2);
	/* append goes after the highest present page, now 1 */
	ASSERT_EQ(0, hp_grow(self->fd, 0, 1, NULL));
	ASSERT_EQ(2, hp_segs(self->fd, segs, 4));
	EXPECT_EQ(3 * PG, segs[0].offset + segs[1].offset);
}

/*
 * RELEASE unmaps the page from every process, the pool counts it free
 * before the call returns, and the slot grown again holds a zeroed page.
 */
TEST_F(sp, release_everywhere)
{
	struct hpmem_node_info ni, nj;
	int go[2], done[2];
	uint64_t v;
	char *p, c;
	pid_t pid;

	ASSERT_EQ(0, sp_create(self->fd, self->name, 0, 4));
	ASSERT_EQ(0, grow_at(self->fd, 0, 0, 2));
	p = map_region(self->fd, 4 * PG, 0);
	ASSERT_NE(MAP_FAILED, p);
	EXPECT_EQ(0, poke((uint64_t *)(p + PG), 0x1234));
	EXPECT_EQ(0, poke((uint64_t *)p, 0x99));
	ASSERT_EQ(0, pipe(go));
	ASSERT_EQ(0, pipe(done));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		CHILD_CHECK(peek((uint64_t *)(p + PG), &v) == 0 &&
			    v == 0x1234);
		CHILD_CHECK(write(done[1], "r", 1) == 1);
		CHILD_CHECK(read(go[0], &c, 1) == 1);
		CHILD_CHECK(peek((uint64_t *)(p + PG), &v) == 1);
		CHILD_CHECK(peek((uint64_t *)p, &v) == 0 && v == 0x99);
		_exit(0);
	}
	ASSERT_EQ(1, read(done[0], &c, 1));
	ASSERT_EQ(0, hp_node_info(self->fd, 0, &ni));
	ASSERT_EQ(0, release(self->fd, 1, 1));
	ASSERT_EQ(0, hp_node_info(self->fd, 0, &nj));
	EXPECT_EQ(ni.free_pages + 1, nj.free_pages);
	EXPECT_EQ(ni.inuse_pages - 1, nj.inuse_pages);
	EXPECT_EQ(ni.mapped_pages - 1, nj.mapped_pages);
	EXPECT_EQ((int)nj.free_pages, free_now(self->fd));
	EXPECT_EQ(1, peek((uint64_t *)(p + PG), &v));
	ASSERT_EQ(1, write(go[1], "g", 1));
	EXPECT_EQ(0, wait_child(pid));
	/* back, zeroed, through the same mapping */
	ASSERT_EQ(0, grow_at(self->fd, 0, 1, 1));
	ASSERT_EQ(0, hp_node_info(self->fd, 0, &nj));
	EXPECT_EQ(ni.mapped_pages, nj.mapped_pages);
	EXPECT_EQ(0, peek((uint64_t *)(p + PG), &v));
	EXPECT_EQ(0, v);
	munmap(p, 4 * PG);
}

/* The same with 4 KiB refcounted PTEs (pinnable). */
TEST_F(sp, release_pinnable)
{
	struct hpmem_node_info ni;
	uint64_t v;
	char *p;

	ASSERT_EQ(0, sp_create(self->fd, self->name, HPMEM_REGION_PINNABLE,
			       3));
	ASSERT_EQ(0, grow_at(self->fd, 0, 1, 1));
	p = map_region(self->fd, 3 * PG, 0);
	ASSERT_NE(MAP_FAILED, p);
	EXPECT_EQ(1, peek((uint64_t *)p, &v));
	for (int i = 0; i < 512; i++)
		EXPECT_EQ(0, poke((uint64_t *)(p + PG + i * 4096), i + 1));
	ASSERT_EQ(0, hp_node_info(self->fd, 0, &ni));
	ASSERT_EQ(0, release(self->fd, 1, 1));
	/* every 4 KiB PTE's reference went with the zap: free, not busy */
	EXPECT_EQ(ni.free_pages + 1, node_free(self->fd, 0));
	EXPECT_EQ(1, peek((uint64_t *)(p + PG + 4096 * 100), &v));
	ASSERT_EQ(0, grow_at(self->fd, 0, 1, 1));
	EXPECT_EQ(0, peek((uint64_t *)(p + PG + 4096 * 100), &v));
	EXPECT_EQ(0, v);
	munmap(p, 3 * PG);
}

static long minflt(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_minflt;
}

/*
 * A pinnable sparse region is not filled at mmap(), but its first fault
 * maps the whole 2 MiB page: a few faults, not 512 per page. A 4 KiB PTE
 * zapped inside a mapped page is refilled alone.
 */
TEST_F(sp, pinnable_fault_maps_whole_page)
{
	long before, faults;
	uint64_t v;
	char *p;

	ASSERT_EQ(0, sp_create(self->fd, self->name, HPMEM_REGION_PINNABLE,
			       2));
	ASSERT_EQ(0, grow_at(self->fd, 0, 0, 2));
	p = map_region(self->fd, 2 * PG, 0);
	ASSERT_NE(MAP_FAILED, p);
	before = minflt();
	for (size_t off = 0; off < 2 * PG; off += 4096)
		p[off] = (char)(off >> 12);
	faults = minflt() - before;
	TH_LOG("%ld faults for 1024 4 KiB pages", faults);
	EXPECT_GE(8, faults);
	ASSERT_EQ(0, madvise(p + PG + 5 * 4096, 4096, MADV_DONTNEED));
	EXPECT_EQ(0, peek((uint64_t *)(p + PG + 5 * 4096), &v));
	EXPECT_EQ((char)((PG + 5 * 4096) >> 12), (char)v);
	EXPECT_EQ((char)((PG + 6 * 4096) >> 12), p[PG + 6 * 4096]);
	munmap(p, 2 * PG);
}

/* A DMA-pinned page is not released: EBUSY, and nothing changes. */
TEST_F(sp, release_dma_pinned)
{
	struct pfnref_arg a = { 0 };
	uint64_t v;
	int rfd;
	char *p;

	OPEN_PFNREF(rfd);
	ASSERT_EQ(0, sp_create(self->fd, self->name, HPMEM_REGION_PINNABLE,
			       2));
	ASSERT_EQ(0, grow_at(self->fd, 0, 0, 2));
	p = map_region(self->fd, 2 * PG, 0);
	ASSERT_NE(MAP_FAILED, p);
	EXPECT_EQ(0, poke((uint64_t *)(p + PG + 8192), 42));
	a.addr = (uintptr_t)(p + PG + 8192);
	ASSERT_EQ(0, xioctl(rfd, PFNREF_IOC_PIN, &a));
	EXPECT_EQ(-EBUSY, release(self->fd, 0, 2));
	EXPECT_EQ(-EBUSY, release(self->fd, 1, 1));
	EXPECT_EQ(2, hp_segs(self->fd, NULL, 0));
	EXPECT_EQ(0, peek((uint64_t *)(p + PG + 8192), &v));
	EXPECT_EQ(42, v);
	/* the unpinned one goes */
	EXPECT_EQ(0, release(self->fd, 0, 1));
	close(rfd);	/* unpins */
	EXPECT_EQ(0, release(self->fd, 1, 1));
	EXPECT_EQ(0, hp_segs(self->fd, NULL, 0));
	munmap(p, 2 * PG);
}

/* A page a pipe still references leaves the region busy, then returns. */
TEST_F(sp, release_referenced_goes_busy)
{
	struct hpmem_node_info ni, nj;
	struct iovec iov;
	int pfd[2];
	char *p;

	ASSERT_EQ(0, sp_create(self->fd, self->name, HPMEM_REGION_PINNABLE,
			       1));
	ASSERT_EQ(0, grow_at(self->fd, 0, 0, 1));
	p = map_region(self->fd, PG, 0);
	ASSERT_NE(MAP_FAILED, p);
	memset(p, 0x6b, 4096);
	ASSERT_EQ(0, pipe(pfd));
	iov.iov_base = p;
	iov.iov_len = 4096;
	ASSERT_EQ(4096, vmsplice(pfd[1], &iov, 1, 0));
	ASSERT_EQ(0, hp_node_info(self->fd, 0, &ni));
	ASSERT_EQ(0, release(self->fd, 0, 1));
	ASSERT_EQ(0, hp_node_info(self->fd, 0, &nj));
	EXPECT_EQ(ni.busy_pages + 1, nj.busy_pages);
	EXPECT_EQ(ni.free_pages, nj.free_pages);
	EXPECT_EQ(ni.inuse_pages - 1, nj.inuse_pages);
	close(pfd[0]);
	close(pfd[1]);
	for (int i = 0; i < 100; i++) {
		ASSERT_EQ(0, hp_node_info(self->fd, 0, &nj));
		if (nj.busy_pages == ni.busy_pages)
			break;
		usleep(50000);
	}
	EXPECT_EQ(ni.busy_pages, nj.busy_pages);
	EXPECT_EQ(ni.free_pages + 1, nj.free_pages);
	munmap(p, PG);
}

/* Validation, one rule at a time, with the documented errno. */
TEST_F(sp, bad_input)
{
	struct hpmem_region_release r = { .argsz = sizeof(r), .nr_pages = 1 };
	struct hpmem_region_grow g = { .argsz = sizeof(g), .nr_pages = 1,
				       .flags = HPMEM_GROW_AT };
	char name[HPMEM_NAME_MAX], big[64] = { 0 };
	int fd2;

	ASSERT_EQ(-EBADFD, release(self->fd, 0, 1));
	EXPECT_EQ(-ENOSPC, sp_create(self->fd, self->name, 0,
				     HPMEM_REGION_MAX_PAGES + 1ULL));
	ASSERT_EQ(0, sp_create(self->fd, self->name, 0, 4));
	ASSERT_EQ(0, grow_at(self->fd, 0, 0, 1));
	g.offset = 4096;
	EXPECT_EQ(-EINVAL, xioctl(self->fd, HPMEM_IOC_REGION_GROW, &g));
	g.offset = 0;
	g.flags = 1U << 5;
	EXPECT_EQ(-EINVAL, xioctl(self->fd, HPMEM_IOC_REGION_GROW, &g));
	EXPECT_EQ(-ENOSPC, grow_at(self->fd, 0, 4, 1));
	EXPECT_EQ(-ENOSPC, grow_at(self->fd, 0, 1ULL << 40, 1));

	r.offset = 4096;
	EXPECT_EQ(-EINVAL, xioctl(self->fd, HPMEM_IOC_REGION_RELEASE, &r));
	r.offset = 0;
	r.flags = 1;
	EXPECT_EQ(-EINVAL, xioctl(self->fd, HPMEM_IOC_REGION_RELEASE, &r));
	r.flags = 0;
	r.nr_pages = 0;
	EXPECT_EQ(-EINVAL, xioctl(self->fd, HPMEM_IOC_REGION_RELEASE, &r));
	EXPECT_EQ(-EINVAL, release(self->fd, 4, 1));
	EXPECT_EQ(-EINVAL, release(self->fd, 3, 2));
	EXPECT_EQ(-EINVAL, release(self->fd, 0, UINT64_MAX));
	EXPECT_EQ(-ENOENT, release(self->fd, 1, 1));
	/* all or none: page 0 is present, 1 is a hole */
	EXPECT_EQ(-ENOENT, release(self->fd, 0, 2));
	EXPECT_EQ(1, hp_segs(self->fd, NULL, 0));
	/* sizes: too short, too long and dirty, too long and clean */
	r.nr_pages = 1;
	r.argsz = offsetof(struct hpmem_region_release, nr_pages);
	EXPECT_EQ(-EINVAL, xioctl(self->fd, HPMEM_IOC_REGION_RELEASE, &r));
	memcpy(big, &r, sizeof(r));
	((struct hpmem_region_release *)big)->argsz = sizeof(big);
	big[sizeof(big) - 1] = 1;
	EXPECT_EQ(-E2BIG, xioctl(self->fd, HPMEM_IOC_REGION_RELEASE, big));
	big[sizeof(big) - 1] = 0;
	EXPECT_EQ(0, xioctl(self->fd, HPMEM_IOC_REGION_RELEASE, big));

	/* a region without a reservation has no holes to fill or make */
	fd2 = open(HPMEM_DEVICE_PATH, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, fd2);
	ASSERT_EQ(0, hp_create(fd2, UNIQUE_NAME(name, "dense"), 0));
	ASSERT_EQ(0, hp_grow(fd2, 0, 1, NULL));
	EXPECT_EQ(-EINVAL, grow_at(fd2, 0, 1, 1));
	EXPECT_EQ(-EINVAL, release(fd2, 0, 1));
	close(fd2);
}

/*
 * A file open read-only cannot map the region writable, so it may not
 * destroy contents either: RELEASE and GROW_AT give EBADF, as fallocate()
 * on a read-only file does, and change nothing.
 */
TEST_F(sp, read_only_file)
{
	uint64_t v;
	char *p;
	int ro;

	ASSERT_EQ(0, sp_create(self->fd, self->name, 0, 4));
	ASSERT_EQ(0, grow_at(self->fd, 0, 0, 1));
	p = map_region(self->fd, 4 * PG, 0);
	ASSERT_NE(MAP_FAILED, p);
	p[0] = 7;
	ro = open(HPMEM_DEVICE_PATH, O_RDONLY | O_CLOEXEC);
	ASSERT_LE(0, ro);
	ASSERT_EQ(0, hp_attach(ro, self->name, NULL));
	EXPECT_EQ(-EBADF, release(ro, 0, 1));
	EXPECT_EQ(-EBADF, grow_at(ro, 0, 1, 1));
	EXPECT_EQ(1, hp_segs(self->fd, NULL, 0));
	EXPECT_EQ(0, peek((volatile uint64_t *)p, &v));
	EXPECT_EQ(7, v & 0xff);
	EXPECT_EQ(0, release(self->fd, 0, 1));
	close(ro);
	munmap(p, 4 * PG);
}

/*
 * A release uncharges RLIMIT_MEMLOCK from whoever was charged for the
 * pages that leave: pages grown with CAP_IPC_LOCK were charged to nobody,
 * so releasing them leaves the charge of a user who grew others in the
 * same region as it was (that user stays at its limit), and releasing that
 * user's own page lowers it.
 */
TEST_F(sp, release_uncharges_the_grower)
{
	pid_t pid;

	ASSERT_EQ(0, sp_create(self->fd, self->name, 0, 8));
	/* root, CAP_IPC_LOCK: not charged */
	ASSERT_EQ(0, grow_at(self->fd, 0, 2, 4));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct rlimit rl = { 2 * PG, 2 * PG };
		char name[HPMEM_NAME_MAX];
		int f2 = open(HPMEM_DEVICE_PATH, O_RDWR | O_CLOEXEC);

		CHILD_CHECK(f2 >= 0);
		CHILD_CHECK(setrlimit(RLIMIT_MEMLOCK, &rl) == 0);
		CHILD_CHECK(drop_root() == 0);
		CHILD_CHECK(grow_at(self->fd, 0, 0, 2) == 0);
		CHILD_CHECK(hp_create(f2, UNIQUE_NAME(name, "chg"), 0) == 0);
		CHILD_CHECK(hp_grow(f2, 0, 1, NULL) == -ENOMEM);
		CHILD_CHECK(release(self->fd, 2, 4) == 0);
		/* still at the limit: the released pages were not its own */
		CHILD_CHECK(hp_grow(f2, 0, 1, NULL) == -ENOMEM);
		CHILD_CHECK(release(self->fd, 0, 1) == 0);
		CHILD_CHECK(hp_grow(f2, 0, 1, NULL) == 0);
		_exit(0);
	}
	EXPECT_EQ(0, wait_child(pid));
}

/*
 * Releasing the top page moves the region's end (where a GROW without
 * HPMEM_GROW_AT appends) down to the highest page left, below a short gap
 * and below one longer than the module steps back over.
 */
TEST_F(sp, end_after_release)
{
	uint64_t off = 0;

	ASSERT_EQ(0, sp_create(self->fd, self->name, 0, HPMEM_REGION_MAX_PAGES));
	ASSERT_EQ(0, grow_at(self->fd, 0, 0, 1));
	ASSERT_EQ(0, grow_at(self->fd, 0, 3, 1));
	ASSERT_EQ(0, release(self->fd, 3, 1));
	ASSERT_EQ(0, hp_grow(self->fd, 0, 1, &off));
	EXPECT_EQ(PG, off);
	ASSERT_EQ(0, grow_at(self->fd, 0, HPMEM_REGION_MAX_PAGES - 1, 1));
	ASSERT_EQ(0, release(self->fd, HPMEM_REGION_MAX_PAGES - 1, 1));
	ASSERT_EQ(0, hp_grow(self->fd, 0, 1, &off));
	EXPECT_EQ(2 * PG, off);
	/* all gone: appends start at 0 again */
	ASSERT_EQ(0, release(self->fd, 1, 2));
	ASSERT_EQ(0, release(self->fd, 0, 1));
	ASSERT_EQ(0, hp_grow(self->fd, 0, 1, &off));
	EXPECT_EQ(0, off);
}

/* A caller that predates max_pages: 40-byte create, today's behaviour. */
TEST_F(sp, old_create_size)
{
	struct hpmem_region_create c = {
		.argsz = offsetof(struct hpmem_region_create, max_pages),
		/* past argsz: must not be read */
		.max_pages = 9,
	};
	struct hpmem_region_attach a;
	char *p;
	int fd2;

	snprintf(c.name, sizeof(c.name), "%s", self->name);
	ASSERT_EQ(0, xioctl(self->fd, HPMEM_IOC_REGION_CREATE, &c));
	ASSERT_EQ(0, hp_grow(self->fd, 0, 1, NULL));
	EXPECT_EQ(MAP_FAILED, map_region(self->fd, 2 * PG, 0));
	p = map_region(self->fd, PG, 0);
	ASSERT_NE(MAP_FAILED, p);
	fd2 = open(HPMEM_DEVICE_PATH, O_RDWR | O_CLOEXEC);
	ASSERT_EQ(0, hp_attach(fd2, self->name, &a));
	EXPECT_EQ(0, a.max_pages);
	EXPECT_EQ(1, a.nr_pages);
	close(fd2);
	munmap(p, PG);
}

/*
 * An attach that predates max_pages (56 bytes) would take nr_pages for the
 * mapping's size: of a sparse region it is refused (EOPNOTSUPP) and
 * attaches nothing; a region without holes still attaches that way.
 */
TEST_F(sp, old_attach_size)
{
	struct hpmem_region_attach a = {
		.argsz = offsetof(struct hpmem_region_attach, uid),
	};
	char name[HPMEM_NAME_MAX];
	int fd2, fd3;

	ASSERT_EQ(0, sp_create(self->fd, self->name, 0, 4));
	ASSERT_EQ(0, grow_at(self->fd, 0, 2, 1));
	fd2 = open(HPMEM_DEVICE_PATH, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, fd2);
	snprintf(a.name, sizeof(a.name), "%s", self->name);
	EXPECT_EQ(-EOPNOTSUPP, xioctl(fd2, HPMEM_IOC_REGION_ATTACH, &a));
	EXPECT_EQ(-EBADFD, hp_segs(fd2, NULL, 0));
	a.argsz = sizeof(a);
	EXPECT_EQ(0, xioctl(fd2, HPMEM_IOC_REGION_ATTACH, &a));
	EXPECT_EQ(4, a.max_pages);
	EXPECT_EQ(1, a.nr_pages);
	close(fd2);

	fd3 = open(HPMEM_DEVICE_PATH, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, fd3);
	ASSERT_EQ(0, hp_create(fd3, UNIQUE_NAME(name, "dense"), 0));
	fd2 = open(HPMEM_DEVICE_PATH, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, fd2);
	memset(&a, 0, sizeof(a));
	a.argsz = offsetof(struct hpmem_region_attach, uid);
	snprintf(a.name, sizeof(a.name), "%s", name);
	EXPECT_EQ(0, xioctl(fd2, HPMEM_IOC_REGION_ATTACH, &a));
	close(fd2);
	close(fd3);
}

#define RACE_ITERS	300

struct race {
	_Atomic uint64_t released;	/* last iteration whose release returned */
	_Atomic int stop;
	_Atomic uint64_t reads, bus, stale;
	_Atomic int slowed;	/* the reader's lookups were slowed down */
};

/* µs each page lookup of the reader's faults takes, where pfnref allows */
#define RACE_SLOW_US	1500

/*
 * One process reads a page over and over through its own mapping while
 * another grows it (writing the iteration number into it) and releases it.
 * Once the release of iteration k has returned, no read may see k or
 * anything older: only SIGBUS, a zeroed page, or a newer number.
 */
static void race_reader(struct race *r, volatile uint64_t *q)
{
	uint64_t g, v;

	while (!atomic_load(&r->stop)) {
		g = atomic_load(&r->released);
		if (peek(q, &v)) {
			atomic_fetch_add(&r->bus, 1);
			continue;
		}
		atomic_fetch_add(&r->reads, 1);
		if (v && v <= g)
			atomic_fetch_add(&r->stale, 1);
	}
}

static void race_run(struct __test_metadata *_metadata, int fd,
		     const char *name, uint32_t flags)
{
	struct race *r;
	char *p;
	pid_t pid;

	ASSERT_EQ(0, sp_create(fd, name, flags, 2));
	p = map_region(fd, 2 * PG, 0);
	ASSERT_NE(MAP_FAILED, p);
	r = mmap(NULL, sizeof(*r), PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, r);
	memset(r, 0, sizeof(*r));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct pfnref_arg a = { .value = RACE_SLOW_US };
		int rfd = pfnref_open();

		/*
		 * Hold each of this process's faults between its lookup and
		 * its insert for a while (hpmem_pfnref.ko's kretprobe), so
		 * that releases land in that window: without the fault lock
		 * a fault would then map a page already released.
		 */
		if (rfd >= 0 && xioctl(rfd, PFNREF_IOC_SLOW_LOOKUP, &a) == 0)
			atomic_store(&r->slowed, 1);
		catch_bus();
		race_reader(r, (uint64_t *)(p + PG + 4096 * 7));
		_exit(0);
	}
	for (uint64_t k = 1; k <= RACE_ITERS; k++) {
		ASSERT_EQ(0, grow_at(fd, 0, 1, 1));
		ASSERT_EQ(0, poke((uint64_t *)(p + PG + 4096 * 7), k));
		if (k % 16 == 0)
			usleep(1000);
		ASSERT_EQ(0, release(fd, 1, 1));
		atomic_store(&r->released, k);
	}
	atomic_store(&r->stop, 1);
	EXPECT_EQ(0, wait_child(pid));
	TH_LOG("%llu reads, %llu SIGBUS, lookups %s",
	       (unsigned long long)r->reads, (unsigned long long)r->bus,
	       r->slowed ? "slowed" : "not slowed (no hpmem_pfnref.ko)");
	EXPECT_EQ(0, r->stale);
	munmap(p, 2 * PG);
	munmap(r, sizeof(*r));
}

struct unmapper {
	int fd;
	_Atomic int stop;
	_Atomic uint64_t maps, bus;
};

/* Maps the region, touches page 1 (a PMD), unmaps it, over and over. */
static void *unmapper_run(void *arg)
{
	struct unmapper *u = arg;
	uint64_t v;
	char *p;

	while (!atomic_load(&u->stop)) {
		p = map_region(u->fd, 2 * PG, 0);
		if (p == MAP_FAILED)
			break;
		if (peek((volatile uint64_t *)(p + PG), &v))
			atomic_fetch_add(&u->bus, 1);
		munmap(p, 2 * PG);
		atomic_fetch_add(&u->maps, 1);
	}
	return NULL;
}

/*
 * A release while another thread's munmap() of the page is in flight: the
 * release flushes every CPU's TLB after its zap, since that munmap() has
 * left the mapping the zap walks before its own flush. A stale TLB entry
 * cannot be observed from userspace, so this checks that the scheme
 * neither fails nor hangs while mappings come and go, and that every
 * release returns the page to the pool at once.
 */
TEST_F(sp, release_racing_munmap)
{
	struct unmapper u = { .fd = self->fd };
	pthread_t t;
	int i;

	ASSERT_EQ(0, sp_create(self->fd, self->name, 0, 2));
	ASSERT_EQ(0, pthread_create(&t, NULL, unmapper_run, &u));
	for (i = 0; i < 100; i++) {
		ASSERT_EQ(0, grow_at(self->fd, 0, 1, 1));
		if (i % 8 == 0)
			usleep(1000);
		ASSERT_EQ(0, release(self->fd, 1, 1));
	}
	atomic_store(&u.stop, 1);
	ASSERT_EQ(0, pthread_join(t, NULL));
	TH_LOG("%llu maps, %llu SIGBUS", (unsigned long long)u.maps,
	       (unsigned long long)u.bus);
	EXPECT_LT(0, u.maps);
}

TEST_F(sp, race_fault_release_pmd)
{
	race_run(_metadata, self->fd, self->name, 0);
}

TEST_F(sp, race_fault_release_pinnable)
{
	race_run(_metadata, self->fd, self->name, HPMEM_REGION_PINNABLE);
}

/* SIGKILL in the middle of grows and releases leaks no page. */
TEST_F(sp, sigkill_mid_grow)
{
	struct hpmem_node_info ni;
	pid_t pid;

	for (int round = 0; round < 4; round++) {
		pid = fork();
		ASSERT_LE(0, pid);
		if (pid == 0) {
			int f = open(HPMEM_DEVICE_PATH, O_RDWR | O_CLOEXEC);
			char n[HPMEM_NAME_MAX];
			char *p;

			CHILD_CHECK(f >= 0);
			CHILD_CHECK(sp_create(f, UNIQUE_NAME(n, "kill"), 0,
					      8) == 0);
			p = map_region(f, 8 * PG, 0);
			CHILD_CHECK(p != MAP_FAILED);
			for (uint64_t i = 0;; i++) {
				if (grow_at(f, 0, i % 8, 1) == 0)
					p[(i % 8) * PG] = 1;
				if (i % 3 == 0)
					release(f, (i + 5) % 8, 1);
			}
		}
		usleep(20000 + round * 30000);
		kill(pid, SIGKILL);
		EXPECT_EQ(128 + SIGKILL, wait_child(pid));
	}
	ASSERT_EQ(0, hp_node_info(self->fd, 0, &ni));
	EXPECT_EQ(self->ni0.inuse_pages, ni.inuse_pages);
	EXPECT_EQ(self->ni0.mapped_pages, ni.mapped_pages);
	EXPECT_EQ(self->ni0.total_pages, ni.total_pages);
	EXPECT_EQ(self->ni0.free_pages + self->ni0.busy_pages,
		  ni.free_pages + ni.busy_pages);
}

TEST_HARNESS_MAIN
