// SPDX-License-Identifier: MIT
/* mmap of regions: what is refused, 2 MiB alignment, one fault per 2 MiB
 * page for huge regions, and GUP (O_DIRECT) working on pinnable regions
 * only. */
#include <sys/time.h>
#include "hpmem_test.h"

static int region_fd(const char *tag, uint32_t flags, int n0, int n1)
{
	char name[HPMEM_NAME_MAX];
	int fd = open(HPMEM_DEVICE_PATH, O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (hp_create(fd, UNIQUE_NAME(name, tag), flags) ||
	    (n0 && hp_grow(fd, 0, n0, NULL)) || (n1 && hp_grow(fd, 1, n1, NULL))) {
		close(fd);
		return -EIO;
	}
	return fd;
}

#define REGION(fd, tag, flags, n0, n1) do {				\
	if (access(HPMEM_DEVICE_PATH, F_OK))				\
		SKIP(return, "%s absent", HPMEM_DEVICE_PATH);		\
	(fd) = region_fd(tag, flags, n0, n1);				\
	ASSERT_LE(0, (fd));						\
} while (0)

static int map_errno(int fd, size_t len, off_t off, int flags)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, flags, fd, off);

	if (p != MAP_FAILED) {
		munmap(p, len);
		return 0;
	}
	return -errno;
}

TEST(refused_mappings)
{
	int fd, bare;

	REGION(fd, "refuse", 0, 2, 2);
	EXPECT_EQ(0, map_errno(fd, 4 * PG, 0, MAP_SHARED));
	EXPECT_EQ(0, map_errno(fd, PG, 3 * PG, MAP_SHARED));
	EXPECT_EQ(-EINVAL, map_errno(fd, PG, 0, MAP_PRIVATE));
	/* offsets and lengths in whole 2 MiB pages */
	EXPECT_EQ(-EINVAL, map_errno(fd, PG, 4096, MAP_SHARED));
	EXPECT_EQ(-EINVAL, map_errno(fd, PG, PG / 2, MAP_SHARED));
	EXPECT_EQ(-EINVAL, map_errno(fd, 4096, 0, MAP_SHARED));
	EXPECT_EQ(-EINVAL, map_errno(fd, PG + 4096, 0, MAP_SHARED));
	/* nothing beyond the region */
	EXPECT_EQ(-EINVAL, map_errno(fd, 5 * PG, 0, MAP_SHARED));
	EXPECT_EQ(-EINVAL, map_errno(fd, PG, 4 * PG, MAP_SHARED));
	EXPECT_EQ(-EINVAL, map_errno(fd, 2 * PG, 3 * PG, MAP_SHARED));
	EXPECT_EQ(-EINVAL, map_errno(fd, PG, 1ULL << 40, MAP_SHARED));
	/* a file without a region */
	bare = open(HPMEM_DEVICE_PATH, O_RDWR);
	ASSERT_LE(0, bare);
	EXPECT_EQ(-EBADFD, map_errno(bare, PG, 0, MAP_SHARED));
	close(bare);
	close(fd);
}

TEST(empty_region_refused)
{
	int fd;

	REGION(fd, "empty", 0, 0, 0);
	EXPECT_EQ(-EINVAL, map_errno(fd, PG, 0, MAP_SHARED));
	close(fd);
}

TEST(aligned_address)
{
	void *p;
	int fd;

	REGION(fd, "align", 0, 3, 0);
	for (int i = 1; i <= 3; i++) {
		p = map_region(fd, i * PG, 0);
		ASSERT_NE(MAP_FAILED, p);
		EXPECT_EQ(0, (uintptr_t)p % PG) TH_LOG("%p", p);
		munmap(p, i * PG);
	}
	close(fd);
}

/* Minor faults taken while touching @n pages once each, twice. */
static long touch_faults(volatile char *p, int n)
{
	struct rusage a, b;

	getrusage(RUSAGE_SELF, &a);
	for (int rep = 0; rep < 2; rep++)
		for (long off = 0; off < (long)n * PG; off += 4096)
			p[off] = (char)off;
	getrusage(RUSAGE_SELF, &b);
	return b.ru_minflt - a.ru_minflt;
}

TEST(pmd_fault_per_page)
{
	long faults;
	char *p;
	int fd;

	REGION(fd, "pmd", 0, 4, 4);
	p = map_region(fd, 8 * PG, 0);
	ASSERT_NE(MAP_FAILED, p);
	faults = touch_faults(p, 8);
	TH_LOG("%ld minor faults for 8 x 2 MiB touched", faults);
	/* one per 2 MiB page; 4 KiB mappings would take 4096 */
	EXPECT_GE(8 + 4, faults);
	munmap(p, 8 * PG);
	close(fd);
}

TEST(pinnable_maps_and_shares)
{
	uint64_t *p, *q;
	int fd;
	pid_t pid;

	REGION(fd, "pin", HPMEM_REGION_PINNABLE, 2, 1);
	p = map_region(fd, 3 * PG, 0);
	ASSERT_NE(MAP_FAILED, p);
	for (int i = 0; i < 3; i++)
		p[i * PG / 8 + 7] = 0x77 + i;
	/* a second mapping of the same pages */
	q = map_region(fd, 2 * PG, PG);
	ASSERT_NE(MAP_FAILED, q);
	EXPECT_EQ(0x78, q[7]);
	EXPECT_EQ(0x79, q[PG / 8 + 7]);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		CHILD_CHECK(p[7] == 0x77);
		p[8] = 0x88;
		_exit(0);
	}
	ASSERT_EQ(0, wait_child(pid));
	EXPECT_EQ(0x88, p[8]);
	EXPECT_EQ(-EINVAL, map_errno(fd, PG, 0, MAP_PRIVATE));
	munmap(q, 2 * PG);
	munmap(p, 3 * PG);
	close(fd);
}

TEST(huge_fork_shares)
{
	uint64_t *p;
	int fd;
	pid_t pid;

	REGION(fd, "hfork", 0, 1, 1);
	p = map_region(fd, 2 * PG, 0);
	ASSERT_NE(MAP_FAILED, p);
	p[0] = 1;
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		CHILD_CHECK(p[0] == 1);
		p[PG / 8] = 2;
		_exit(0);
	}
	ASSERT_EQ(0, wait_child(pid));
	EXPECT_EQ(2, p[PG / 8]);
	munmap(p, 2 * PG);
	close(fd);
}

#define DIO_DEV "/dev/ram0"
#define DIO_LEN (1 << 20)

/* Put a known pattern on the ram disk the O_DIRECT reads come from. */
static int prepare_disk(void)
{
	char *buf = malloc(DIO_LEN);
	int fd, rc = 0;

	if (!buf)
		return -ENOMEM;
	for (int i = 0; i < DIO_LEN; i++)
		buf[i] = (char)(i * 7 + 3);
	fd = open(DIO_DEV, O_RDWR);
	if (fd < 0) {
		rc = -errno;
	} else {
		if (pwrite(fd, buf, DIO_LEN, 0) != DIO_LEN || fsync(fd))
			rc = -EIO;
		close(fd);
	}
	free(buf);
	return rc;
}

TEST(odirect_into_pinnable)
{
	char *p;
	int fd, dfd;
	ssize_t n;

	if (access(DIO_DEV, F_OK))
		SKIP(return, "%s absent (brd not loaded)", DIO_DEV);
	REGION(fd, "dio", HPMEM_REGION_PINNABLE, 1, 0);
	ASSERT_EQ(0, prepare_disk());
	p = map_region(fd, PG, 0);
	ASSERT_NE(MAP_FAILED, p);
	dfd = open(DIO_DEV, O_RDONLY | O_DIRECT);
	ASSERT_LE(0, dfd);
	n = pread(dfd, p + 4096, DIO_LEN, 0);
	ASSERT_EQ(DIO_LEN, n) TH_LOG("pread: %s", strerror(errno));
	for (int i = 0; i < DIO_LEN; i++) {
		if (p[4096 + i] != (char)(i * 7 + 3)) {
			ASSERT_EQ((char)(i * 7 + 3), p[4096 + i])
				TH_LOG("byte %d", i);
		}
	}
	close(dfd);
	munmap(p, PG);
	close(fd);
}

TEST(odirect_into_huge_fails_cleanly)
{
	char *p;
	int fd, dfd;
	ssize_t n;

	if (access(DIO_DEV, F_OK))
		SKIP(return, "%s absent (brd not loaded)", DIO_DEV);
	REGION(fd, "diohuge", 0, 1, 0);
	ASSERT_EQ(0, prepare_disk());
	p = map_region(fd, PG, 0);
	ASSERT_NE(MAP_FAILED, p);
	p[0] = 1;	/* mapped already: GUP must still refuse */
	dfd = open(DIO_DEV, O_RDONLY | O_DIRECT);
	ASSERT_LE(0, dfd);
	n = pread(dfd, p, DIO_LEN, 0);
	EXPECT_EQ(-1, n);
	EXPECT_EQ(EFAULT, errno);
	/* the mapping still works afterwards */
	p[1] = 2;
	EXPECT_EQ(2, p[1]);
	close(dfd);
	munmap(p, PG);
	close(fd);
}

TEST(partial_munmap_and_mprotect)
{
	char *p;
	int fd;

	REGION(fd, "part", 0, 3, 0);
	p = map_region(fd, 3 * PG, 0);
	ASSERT_NE(MAP_FAILED, p);
	p[0] = 1;
	p[2 * PG] = 3;
	EXPECT_EQ(0, munmap(p + PG, PG));
	EXPECT_EQ(1, p[0]);
	EXPECT_EQ(3, p[2 * PG]);
	EXPECT_EQ(0, mprotect(p, PG, PROT_READ));
	EXPECT_EQ(1, p[0]);
	munmap(p, PG);
	munmap(p + 2 * PG, PG);
	close(fd);
}

/* A mapping cannot be stretched past what mmap checked. */
static void no_expand(struct __test_metadata *_metadata, uint32_t flags)
{
	void *p, *q;
	int fd;

	fd = region_fd("mremap", flags, 1, 0);
	ASSERT_LE(0, fd);
	p = map_region(fd, PG, 0);
	ASSERT_NE(MAP_FAILED, p);
	q = mremap(p, PG, 2 * PG, MREMAP_MAYMOVE);
	EXPECT_EQ(MAP_FAILED, q) TH_LOG("mremap grew a mapping beyond the region");
	if (q != MAP_FAILED)
		p = q;
	munmap(p, q != MAP_FAILED ? 2 * PG : PG);
	close(fd);
}

TEST(mremap_expand_refused_huge)
{
	if (access(HPMEM_DEVICE_PATH, F_OK))
		SKIP(return, "%s absent", HPMEM_DEVICE_PATH);
	no_expand(_metadata, 0);
}

TEST(mremap_expand_refused_pinnable)
{
	if (access(HPMEM_DEVICE_PATH, F_OK))
		SKIP(return, "%s absent", HPMEM_DEVICE_PATH);
	no_expand(_metadata, HPMEM_REGION_PINNABLE);
}

/* Zapping the page tables loses nothing: the next touch maps the same
 * page again. */
static void refault(struct __test_metadata *_metadata, uint32_t flags)
{
	uint64_t *p;
	int fd;

	fd = region_fd("zap", flags, 2, 0);
	ASSERT_LE(0, fd);
	p = map_region(fd, 2 * PG, 0);
	ASSERT_NE(MAP_FAILED, p);
	p[0] = 0x1111;
	p[PG / 8 + 100] = 0x2222;
	/* the kernel refuses MADV_DONTNEED on VM_PFNMAP: map afresh instead */
	if (madvise(p, 2 * PG, MADV_DONTNEED)) {
		ASSERT_EQ(EINVAL, errno);
		ASSERT_EQ(0, munmap(p, 2 * PG));
		p = map_region(fd, 2 * PG, 0);
		ASSERT_NE(MAP_FAILED, p);
	}
	EXPECT_EQ(0x1111, p[0]);
	EXPECT_EQ(0x2222, p[PG / 8 + 100]);
	munmap(p, 2 * PG);
	close(fd);
}

TEST(refault_after_zap_huge)
{
	if (access(HPMEM_DEVICE_PATH, F_OK))
		SKIP(return, "%s absent", HPMEM_DEVICE_PATH);
	refault(_metadata, 0);
}

TEST(refault_after_zap_pinnable)
{
	if (access(HPMEM_DEVICE_PATH, F_OK))
		SKIP(return, "%s absent", HPMEM_DEVICE_PATH);
	refault(_metadata, HPMEM_REGION_PINNABLE);
}

TEST(grow_while_mapped)
{
	uint64_t off, *p, *q;
	int fd;

	REGION(fd, "gmap", 0, 1, 0);
	p = map_region(fd, PG, 0);
	ASSERT_NE(MAP_FAILED, p);
	p[0] = 7;
	ASSERT_EQ(0, hp_grow(fd, 1, 1, &off));
	EXPECT_EQ(PG, off);
	q = map_region(fd, 2 * PG, 0);
	ASSERT_NE(MAP_FAILED, q);
	EXPECT_EQ(7, q[0]);
	q[PG / 8] = 8;
	EXPECT_EQ(-EINVAL, map_errno(fd, PG, 2 * PG, MAP_SHARED));
	munmap(q, 2 * PG);
	munmap(p, PG);
	close(fd);
}

/* The VFS rule for shared writable mappings holds for the device too. */
TEST(readonly_file_cannot_map_writable)
{
	char name[HPMEM_NAME_MAX];
	void *p;
	int ro;

	if (access(HPMEM_DEVICE_PATH, F_OK))
		SKIP(return, "%s absent", HPMEM_DEVICE_PATH);
	ro = open(HPMEM_DEVICE_PATH, O_RDONLY);
	ASSERT_LE(0, ro);
	if (hp_create(ro, UNIQUE_NAME(name, "ro"), 0) || hp_grow(ro, 0, 1, NULL))
		SKIP(return, "regions need a writable file");
	EXPECT_EQ(-EACCES, map_errno(ro, PG, 0, MAP_SHARED));
	p = mmap(NULL, PG, PROT_READ, MAP_SHARED, ro, 0);
	EXPECT_NE(MAP_FAILED, p);
	if (p != MAP_FAILED)
		munmap(p, PG);
	close(ro);
}

TEST_HARNESS_MAIN
