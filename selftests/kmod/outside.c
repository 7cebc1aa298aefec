// SPDX-License-Identifier: MIT
/* Pages that kernel code outside hpmem still references when their region
 * dies (a KVM-style reference on a PFN-mapped page, a VFIO-style DMA pin),
 * and whose RLIMIT_MEMLOCK charge they keep. The test-only module
 * hpmem_pfnref.ko (selftests/kmod/pfnref) takes them. */
#include <stdbool.h>
#include "hpmem_test.h"
#include "pfnref_test.h"

/* What a guest writes through KVM's mapping: "kvmkvmkv". */
#define GUEST_STORE	0x766b6d766b6d766bULL

static int pfnref_take(int rfd, unsigned long cmd, const void *addr,
		       uint64_t *phys)
{
	struct pfnref_arg a = { .addr = (uintptr_t)addr };
	int rc = xioctl(rfd, cmd, &a);

	if (!rc && phys)
		*phys = a.phys;
	return rc;
}

/*
 * The first @n pages of a default region, mapped as QEMU maps guest RAM: on
 * a 2 MiB boundary (PMDs), or for @pte 4 KiB off it, where no PMD fits and
 * every fault maps a 4 KiB PFN PTE (a VMA moved by mremap() looks the same).
 */
static char *map_default(int fd, size_t n, bool pte)
{
	uintptr_t base;
	char *res;

	if (!pte)
		return map_region(fd, n * PG, 0);
	res = mmap(NULL, (n + 2) * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS,
		   -1, 0);
	if (res == MAP_FAILED)
		return res;
	base = (((uintptr_t)res + PG - 1) & ~(PG - 1)) + 4096;
	return mmap((void *)base, n * PG, PROT_READ | PROT_WRITE,
		    MAP_SHARED | MAP_FIXED, fd, 0);
}

FIXTURE(kvm) {
};

FIXTURE_VARIANT(kvm) {
	bool pte;
};

FIXTURE_VARIANT_ADD(kvm, pmd) {
	.pte = false,
};

FIXTURE_VARIANT_ADD(kvm, pte) {
	.pte = true,
};

FIXTURE_SETUP(kvm)
{
}

FIXTURE_TEARDOWN(kvm)
{
}

/*
 * Issue #10, finding 3: KVM's hva_to_pfn_remapped() takes a reference on
 * the head page of a PFN mapping and kvm_vcpu_map() keeps it across
 * munmap(). That page must not be zeroed and given to another region while
 * the guest can still write it: it stays busy until the reference goes,
 * then comes back zeroed.
 */
TEST_F(kvm, held_page_never_reused)
{
	struct pfnref_arg poke = { .value = GUEST_STORE };
	char name[HPMEM_NAME_MAX], xname[HPMEM_NAME_MAX];
	struct hpmem_node_info ni0;
	struct hpmem_seg seg, *segs;
	uint64_t held, busy, *w;
	long n = 0, i, hits;
	int rfd, fd, xfd, rc;
	char *p, *q;

	OPEN_PFNREF(rfd);
	OPEN_DEV(fd);
	xfd = open(HPMEM_DEVICE_PATH, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, xfd);
	ASSERT_EQ(0, hp_node_info(xfd, 0, &ni0));
	ASSERT_EQ(0, hp_create(fd, UNIQUE_NAME(name, "kvm"),
			       HPMEM_REGION_PERSISTENT));
	ASSERT_EQ(0, hp_grow(fd, 0, 1, NULL));
	p = map_default(fd, 1, variant->pte);
	ASSERT_NE(MAP_FAILED, p);
	memset(p, 0xa5, PG);
	rc = pfnref_take(rfd, PFNREF_IOC_GET, p, &held);
	if (rc == -EINVAL && !variant->pte) {
		munmap(p, PG);
		hp_destroy(fd, name);
		SKIP(return, "follow_pte() walks no PMD mapping (6.1): KVM cannot map the region so; the pte variant can");
	}
	ASSERT_EQ(0, rc) TH_LOG("GET: %s", strerror(-rc));
	ASSERT_EQ(1, hp_segs(fd, &seg, 1));
	ASSERT_EQ(seg.phys, held);
	/* gone from userspace, still mapped for the vCPU */
	ASSERT_EQ(0, munmap(p, PG));
	ASSERT_EQ(0, hp_destroy(fd, name));
	close(fd);
	busy = wait_busy(xfd, ni0.busy_pages + 1);
	EXPECT_EQ(ni0.busy_pages + 1, busy);

	/* Node 0's pool to the last page: the held one is never among them. */
	ASSERT_EQ(0, hp_create(xfd, UNIQUE_NAME(xname, "kvmx"), 0));
	while ((rc = hp_grow(xfd, 0, 1, NULL)) == 0)
		n++;
	EXPECT_EQ(-ENOMEM, rc);
	ASSERT_LT(0, n);
	segs = calloc(n + 1, sizeof(*segs));
	ASSERT_NE(NULL, segs);
	ASSERT_EQ(n, hp_segs(xfd, segs, n));
	for (i = 0, hits = 0; i < n; i++)
		hits += segs[i].phys == held;
	EXPECT_EQ(0, hits) TH_LOG("the held page went to another region");

	/* the guest writes: no region's page sees it */
	poke.addr = 0;
	ASSERT_EQ(0, xioctl(rfd, PFNREF_IOC_POKE, &poke));
	q = map_region(xfd, n * PG, 0);
	ASSERT_NE(MAP_FAILED, q);
	for (i = 0, hits = 0; i < n; i++)
		hits += *(uint64_t *)(q + i * PG) == GUEST_STORE;
	EXPECT_EQ(0, hits) TH_LOG("a guest store landed in another region");

	/* Let go: the page returns to the pool, zeroed. */
	ASSERT_EQ(0, xioctl(rfd, PFNREF_IOC_PUT, NULL));
	EXPECT_EQ(ni0.busy_pages, wait_busy(xfd, ni0.busy_pages));
	ASSERT_EQ(0, hp_grow(xfd, 0, 1, NULL));
	ASSERT_EQ(n + 1, hp_segs(xfd, segs, n + 1));
	/* With no other busy page to come back, it is this one. */
	if (!ni0.busy_pages) {
		for (i = 0, hits = 0; i <= n; i++)
			hits += segs[i].phys == held;
		EXPECT_EQ(1, hits);
	}
	w = map_region(xfd, PG, n * PG);
	ASSERT_NE(MAP_FAILED, w);
	for (i = 0, hits = 0; i < (long)(PG / sizeof(*w)); i++)
		hits += w[i] != 0;
	EXPECT_EQ(0, hits) TH_LOG("a page came back not zeroed");
	munmap(w, PG);
	munmap(q, n * PG);
	free(segs);
	close(xfd);
	close(rfd);
}

/*
 * VFIO type1 pins each page it maps (FOLL_PIN | FOLL_LONGTERM): a pinned
 * page counts in REGION_LIST's dma_pinned, and keeps the page busy when the
 * region dies. Only pinnable regions can be pinned.
 */
TEST(dma_pin_counts_and_stays_busy)
{
	char name[HPMEM_NAME_MAX], dname[HPMEM_NAME_MAX];
	struct hpmem_node_info ni0;
	int rfd, fd, dfd, xfd;
	uint64_t phys;
	char *p, *d;

	OPEN_PFNREF(rfd);
	OPEN_DEV(fd);
	xfd = open(HPMEM_DEVICE_PATH, O_RDWR | O_CLOEXEC);
	dfd = open(HPMEM_DEVICE_PATH, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, xfd);
	ASSERT_LE(0, dfd);
	ASSERT_EQ(0, hp_node_info(xfd, 0, &ni0));
	ASSERT_EQ(0, hp_create(fd, UNIQUE_NAME(name, "pin"),
			       HPMEM_REGION_PINNABLE));
	ASSERT_EQ(0, hp_grow(fd, 0, 3, NULL));
	p = map_region(fd, 3 * PG, 0);
	ASSERT_NE(MAP_FAILED, p);
	EXPECT_EQ(0, list_dma_pinned(xfd, name));
	/* two 4 KiB pins in page 0, one in page 2: two pages */
	ASSERT_EQ(0, pfnref_take(rfd, PFNREF_IOC_PIN, p, &phys));
	ASSERT_EQ(0, pfnref_take(rfd, PFNREF_IOC_PIN, p + 8192, NULL));
	ASSERT_EQ(0, pfnref_take(rfd, PFNREF_IOC_PIN, p + 2 * PG + 4096, NULL));
	EXPECT_EQ(2, list_dma_pinned(xfd, name));
	ASSERT_EQ(0, xioctl(rfd, PFNREF_IOC_UNPIN, NULL));
	EXPECT_EQ(0, list_dma_pinned(xfd, name));

	/* a default region cannot be pinned at all */
	ASSERT_EQ(0, hp_create(dfd, UNIQUE_NAME(dname, "nopin"), 0));
	ASSERT_EQ(0, hp_grow(dfd, 0, 1, NULL));
	d = map_region(dfd, PG, 0);
	ASSERT_NE(MAP_FAILED, d);
	d[0] = 1;
	EXPECT_NE(0, pfnref_take(rfd, PFNREF_IOC_PIN, d, NULL));
	EXPECT_EQ(0, list_dma_pinned(xfd, dname));
	munmap(d, PG);
	close(dfd);

	/* pinned when the region dies: busy until unpinned */
	ASSERT_EQ(0, pfnref_take(rfd, PFNREF_IOC_PIN, p + PG, NULL));
	EXPECT_EQ(1, list_dma_pinned(xfd, name));
	ASSERT_EQ(0, munmap(p, 3 * PG));
	close(fd);
	EXPECT_EQ(ni0.busy_pages + 1, wait_busy(xfd, ni0.busy_pages + 1));
	ASSERT_EQ(0, xioctl(rfd, PFNREF_IOC_UNPIN, NULL));
	EXPECT_EQ(ni0.busy_pages, wait_busy(xfd, ni0.busy_pages));
	close(xfd);
	close(rfd);
}

/* nobody, with RLIMIT_MEMLOCK of two pages, grows @n; 0 or -errno. */
static int nobody_grows(unsigned int n)
{
	pid_t pid = fork();
	int rc;

	if (pid < 0)
		return -errno;
	if (pid == 0) {
		struct rlimit rl = { 2 * PG, 2 * PG };
		char name[HPMEM_NAME_MAX];
		int f = open(HPMEM_DEVICE_PATH, O_RDWR | O_CLOEXEC);

		CHILD_CHECK(f >= 0);
		CHILD_CHECK(setrlimit(RLIMIT_MEMLOCK, &rl) == 0);
		CHILD_CHECK(drop_root() == 0);
		CHILD_CHECK(hp_create(f, UNIQUE_NAME(name, "chg"), 0) == 0);
		_exit(-hp_grow(f, 0, n, NULL));
	}
	rc = wait_child(pid);
	return rc < 0 ? rc : -rc;
}

/*
 * A busy page stays charged to the user who grew it after every process of
 * that user is gone, and the charge goes back to that user, not to whoever
 * runs when the page returns: nobody's whole limit is free again after.
 */
TEST(busy_charge_outlives_its_user)
{
	struct hpmem_node_info ni0;
	int rfd, fd;
	pid_t pid;

	OPEN_PFNREF(rfd);
	OPEN_DEV(fd);
	ASSERT_EQ(0, hp_node_info(fd, 0, &ni0));
	ASSERT_EQ(0, nobody_grows(2));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct rlimit rl = { 2 * PG, 2 * PG };
		char name[HPMEM_NAME_MAX];
		int f = open(HPMEM_DEVICE_PATH, O_RDWR | O_CLOEXEC);
		char *p;

		CHILD_CHECK(f >= 0);
		CHILD_CHECK(setrlimit(RLIMIT_MEMLOCK, &rl) == 0);
		CHILD_CHECK(drop_root() == 0);
		CHILD_CHECK(hp_create(f, UNIQUE_NAME(name, "chg"), 0) == 0);
		CHILD_CHECK(hp_grow(f, 0, 2, NULL) == 0);
		/* PTE-mapped: KVM's walk on 6.1 reads no PMD */
		p = map_default(f, 2, true);
		CHILD_CHECK(p != MAP_FAILED);
		CHILD_CHECK(pfnref_take(rfd, PFNREF_IOC_GET, p, NULL) == 0);
		CHILD_CHECK(pfnref_take(rfd, PFNREF_IOC_GET, p + PG, NULL) == 0);
		/* the reference outlives nobody's last process, in @rfd */
		_exit(0);
	}
	ASSERT_EQ(0, wait_child(pid));
	EXPECT_EQ(ni0.busy_pages + 2, wait_busy(fd, ni0.busy_pages + 2));
	EXPECT_EQ(-ENOMEM, nobody_grows(1));
	ASSERT_EQ(0, xioctl(rfd, PFNREF_IOC_PUT, NULL));
	EXPECT_EQ(ni0.busy_pages, wait_busy(fd, ni0.busy_pages));
	EXPECT_EQ(0, nobody_grows(2));
	close(fd);
	close(rfd);
}

TEST_HARNESS_MAIN
