// SPDX-License-Identifier: MIT
/* Device addresses and busy pages (UAPI DOC: device addresses): the DMA
 * model INFO reports against what sysfs says about the IOMMU, SEGS IOVAs
 * under that model, and pages a pipe still references after their region
 * died, which must stay counted and never be handed out until released. */
#include <dirent.h>
#include <limits.h>
#include <time.h>
#include <sys/uio.h>
#include <linux/vfio.h>
#include "hpmem_test.h"

/* PCI devices behind an IOMMU, by the type sysfs gives their group. */
struct sys_dma {
	int iommus;		/* entries in /sys/class/iommu */
	uint32_t translated;	/* groups of type DMA, DMA-FQ, ... */
	uint32_t direct;	/* groups of type identity */
};

static int count_entries(const char *dir)
{
	struct dirent *e;
	DIR *d = opendir(dir);
	int n = 0;

	if (!d)
		return 0;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static int sys_dma_read(struct sys_dma *s)
{
	char path[PATH_MAX], link[256], type[64], *grp;
	struct dirent *e;
	DIR *d;
	ssize_t n;

	memset(s, 0, sizeof(*s));
	s->iommus = count_entries("/sys/class/iommu");
	d = opendir("/sys/bus/pci/devices");
	if (!d)
		return -errno;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/iommu_group",
			 e->d_name);
		n = readlink(path, link, sizeof(link) - 1);
		if (n < 0)
			continue;	/* no group: not counted */
		link[n] = 0;
		grp = strrchr(link, '/');
		snprintf(path, sizeof(path), "/sys/kernel/iommu_groups/%s/type",
			 grp ? grp + 1 : link);
		if (read_file(path, type, sizeof(type)) < 0) {
			closedir(d);
			return -EIO;
		}
		if (!strncmp(type, "identity", 8))
			s->direct++;
		else
			s->translated++;
	}
	closedir(d);
	return 0;
}

TEST(dma_model_matches_sysfs)
{
	struct hpmem_info i;
	struct sys_dma s;
	uint32_t want;
	int fd;

	OPEN_DEV(fd);
	ASSERT_EQ(0, hp_info(fd, &i));
	ASSERT_NE(0, i.features & HPMEM_FEAT_DMA_MODEL);
	ASSERT_EQ(0, sys_dma_read(&s));
	want = s.translated ? HPMEM_DMA_TRANSLATED :
	       s.direct ? HPMEM_DMA_PASSTHROUGH : HPMEM_DMA_NO_IOMMU;
	TH_LOG("iommus %d, sysfs translated %u direct %u, module model %u (%u/%u)",
	       s.iommus, s.translated, s.direct, i.dma_model,
	       i.dma_translated_devs, i.dma_direct_devs);
	/* the pc guest has no IOMMU; a q35 + intel-iommu guest does */
	if (!s.iommus) {
		EXPECT_EQ(HPMEM_DMA_NO_IOMMU, want);
	}
	EXPECT_EQ(want, i.dma_model);
	EXPECT_EQ(s.translated, i.dma_translated_devs);
	EXPECT_EQ(s.direct, i.dma_direct_devs);
	close(fd);
}

/* Without IOMMU translation the IOVA is the physical address; with it, 0. */
TEST(segs_iova_follows_model)
{
	char name[HPMEM_NAME_MAX];
	struct hpmem_seg seg[2];
	struct hpmem_info i;
	int fd;

	OPEN_DEV(fd);
	ASSERT_EQ(0, hp_info(fd, &i));
	if (!(i.caller & HPMEM_CALLER_ADDRS))
		SKIP(return, "addresses hidden from this caller (needs root)");
	ASSERT_EQ(0, hp_create(fd, UNIQUE_NAME(name, "iova"), 0));
	ASSERT_EQ(0, hp_grow(fd, 0, 1, NULL));
	ASSERT_EQ(0, hp_grow(fd, 1, 1, NULL));
	ASSERT_EQ(2, hp_segs(fd, seg, 2));
	for (int k = 0; k < 2; k++) {
		EXPECT_NE(0, seg[k].phys);
		if (i.dma_model == HPMEM_DMA_TRANSLATED) {
			EXPECT_EQ(0, seg[k].iova);
		} else {
			EXPECT_EQ(seg[k].phys, seg[k].iova);
		}
	}
	close(fd);
}

static struct hpmem_node_info node0(int fd)
{
	struct hpmem_node_info ni;

	if (hp_node_info(fd, 0, &ni))
		memset(&ni, 0xff, sizeof(ni));
	return ni;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Wait up to @secs for node 0 to have no busy page; its counters. */
static struct hpmem_node_info wait_not_busy(int fd, double secs)
{
	double end = now() + secs;
	struct hpmem_node_info ni;

	for (;;) {
		ni = node0(fd);
		if (!ni.busy_pages || now() > end)
			return ni;
		usleep(20000);
	}
}

/*
 * A pinnable region of @n pages on node 0, each with @tag + page index in
 * its first 4 KiB, one such slice per page vmsplice()d into @pfd[1]; the
 * region is then unmapped and closed, so it dies with the pipe still
 * referencing its pages. Their physical addresses go to @phys (0 when the
 * caller may not see them).
 */
static void make_busy(struct __test_metadata *_metadata, int n, int tag,
		      int pfd[2], uint64_t *phys)
{
	char name[HPMEM_NAME_MAX];
	struct hpmem_seg seg[8];
	struct iovec iov[8];
	char *p;
	int fd;

	ASSERT_GE(8, n);
	fd = open(HPMEM_DEVICE_PATH, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, hp_create(fd, UNIQUE_NAME(name, "busy"),
			       HPMEM_REGION_PINNABLE));
	ASSERT_EQ(0, hp_grow(fd, 0, n, NULL));
	ASSERT_EQ(n, hp_segs(fd, seg, n));
	p = map_region(fd, n * PG, 0);
	ASSERT_NE(MAP_FAILED, p);
	for (int k = 0; k < n; k++)
		phys[seg[k].offset / PG] = seg[k].phys;
	for (int k = 0; k < n; k++) {
		memset(p + k * PG, tag + k, 4096);
		iov[k].iov_base = p + k * PG;
		iov[k].iov_len = 4096;
	}
	ASSERT_EQ(0, pipe(pfd));
	ASSERT_EQ(n * 4096, vmsplice(pfd[1], iov, n, 0));
	ASSERT_EQ(0, munmap(p, n * PG));
	close(fd);
}

/* Physical addresses of region @fd's pages: does any equal one of @busy? */
static int region_has(struct __test_metadata *_metadata, int fd,
		      const uint64_t *busy, int n)
{
	struct hpmem_seg *seg;
	long nr = hp_segs(fd, NULL, 0), k;
	int hit = 0;

	if (nr <= 0)
		return 0;
	seg = calloc(nr, sizeof(*seg));
	if (!seg || hp_segs(fd, seg, nr) != nr) {
		free(seg);
		return -1;
	}
	for (k = 0; k < nr; k++)
		for (int j = 0; j < n; j++)
			if (busy[j] && seg[k].phys == busy[j])
				hit = 1;
	free(seg);
	return hit;
}

/*
 * The vmsplice() escape: a pipe still reads pages of a dead pinnable
 * region. They must stay counted in the pool as busy, never reach another
 * region (which would then share memory with whoever holds the pipe), keep
 * their contents while referenced, and come back zeroed once released.
 */
TEST(vmsplice_pages_stay_busy)
{
	struct hpmem_node_info before, mid, after;
	char name[HPMEM_NAME_MAX], buf[4096];
	uint64_t busy[2];
	int fd, rfd, pfd[2];
	char *p;

	OPEN_DEV(fd);
	before = node0(fd);
	ASSERT_LE(3, before.free_pages);
	make_busy(_metadata, 2, 0x61, pfd, busy);

	mid = node0(fd);
	EXPECT_EQ(before.total_pages, mid.total_pages);
	EXPECT_EQ(before.busy_pages + 2, mid.busy_pages);
	EXPECT_EQ(before.free_pages - 2, mid.free_pages);
	EXPECT_EQ(before.inuse_pages, mid.inuse_pages);
	EXPECT_EQ(mid.total_pages,
		  mid.free_pages + mid.inuse_pages + mid.busy_pages);

	/* Every free page, but not one more: the busy ones are not free. */
	rfd = open(HPMEM_DEVICE_PATH, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, rfd);
	ASSERT_EQ(0, hp_create(rfd, UNIQUE_NAME(name, "after"), 0));
	EXPECT_EQ(-ENOMEM, hp_grow(rfd, 0, mid.free_pages + 1, NULL));
	ASSERT_EQ(0, hp_grow(rfd, 0, mid.free_pages, NULL));
	if (busy[0]) {
		EXPECT_EQ(0, region_has(_metadata, rfd, busy, 2));
	}
	p = map_region(rfd, mid.free_pages * PG, 0);
	ASSERT_NE(MAP_FAILED, p);
	for (uint64_t k = 0; k < mid.free_pages; k++)
		memset(p + k * PG, 0x7e, 4096);
	munmap(p, mid.free_pages * PG);
	close(rfd);

	/* The pipe reads what was written before close, not zeroes or 0x7e. */
	for (int k = 0; k < 2; k++) {
		ASSERT_EQ(4096, read(pfd[0], buf, sizeof(buf)));
		EXPECT_EQ(0x61 + k, buf[0]) TH_LOG("page %d", k);
		EXPECT_EQ(0x61 + k, buf[4095]) TH_LOG("page %d", k);
	}
	close(pfd[0]);
	close(pfd[1]);

	after = wait_not_busy(fd, 3.0);
	EXPECT_EQ(before.busy_pages, after.busy_pages);
	EXPECT_EQ(before.free_pages, after.free_pages);
	EXPECT_EQ(before.total_pages, after.total_pages);

	/* The released pages come back zeroed, to a region that asks. */
	rfd = open(HPMEM_DEVICE_PATH, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, rfd);
	ASSERT_EQ(0, hp_create(rfd, UNIQUE_NAME(name, "back"), 0));
	ASSERT_EQ(0, hp_grow(rfd, 0, after.free_pages, NULL));
	if (busy[0]) {
		EXPECT_EQ(1, region_has(_metadata, rfd, busy, 2));
	}
	p = map_region(rfd, after.free_pages * PG, 0);
	ASSERT_NE(MAP_FAILED, p);
	for (uint64_t k = 0; k < after.free_pages * PG; k += 64) {
		if (p[k]) {
			ASSERT_EQ(0, p[k]) TH_LOG("page %llu byte %llu",
				(unsigned long long)(k / PG),
				(unsigned long long)(k % PG));
		}
	}
	munmap(p, after.free_pages * PG);
	close(rfd);
	close(fd);
}

/*
 * Huge (PFN-mapped) regions cannot be referenced from userspace at all:
 * GUP refuses them, so vmsplice() cannot reach them either.
 */
TEST(vmsplice_huge_refused)
{
	char name[HPMEM_NAME_MAX];
	struct iovec iov;
	int fd, pfd[2];
	char *p;

	OPEN_DEV(fd);
	ASSERT_EQ(0, hp_create(fd, UNIQUE_NAME(name, "hsplice"), 0));
	ASSERT_EQ(0, hp_grow(fd, 0, 1, NULL));
	p = map_region(fd, PG, 0);
	ASSERT_NE(MAP_FAILED, p);
	p[0] = 1;
	ASSERT_EQ(0, pipe(pfd));
	iov.iov_base = p;
	iov.iov_len = 4096;
	EXPECT_EQ(-1, vmsplice(pfd[1], &iov, 1, 0));
	EXPECT_EQ(EFAULT, errno);
	close(pfd[0]);
	close(pfd[1]);
	munmap(p, PG);
	close(fd);
}

/* A pool shrink frees free pages only: busy ones stay until released. */
TEST(shrink_spares_busy_pages)
{
	struct hpmem_node_info before, mid, after;
	uint64_t busy[1], keep;
	int fd, pfd[2];

	OPEN_DEV(fd);
	if (geteuid())
		SKIP(return, "pool resize needs root");
	before = node0(fd);
	ASSERT_LE(2, before.free_pages);
	make_busy(_metadata, 1, 0x41, pfd, busy);
	mid = node0(fd);
	ASSERT_EQ(before.busy_pages + 1, mid.busy_pages);

	/* Everything but the free pages stays: one more would be busy. */
	keep = mid.total_pages - mid.free_pages;
	EXPECT_EQ(-EBUSY, hp_resize(fd, 0, keep - 1));
	EXPECT_EQ(mid.total_pages, node0(fd).total_pages);
	EXPECT_EQ(0, hp_resize(fd, 0, keep));
	mid = node0(fd);
	EXPECT_EQ(keep, mid.total_pages);
	EXPECT_EQ(0, mid.free_pages);
	EXPECT_EQ(before.busy_pages + 1, mid.busy_pages);

	/* Released, the page is free again and a shrink may take it. */
	close(pfd[0]);
	close(pfd[1]);
	after = wait_not_busy(fd, 3.0);
	EXPECT_EQ(before.busy_pages, after.busy_pages);
	EXPECT_EQ(1, after.free_pages);
	EXPECT_EQ(0, hp_resize(fd, 0, keep - 1));
	EXPECT_EQ(0, hp_resize(fd, 0, before.total_pages));
	after = node0(fd);
	EXPECT_EQ(before.total_pages, after.total_pages);
	EXPECT_EQ(before.free_pages, after.free_pages);
	close(fd);
}

/* The IOMMU group of the first PCI device bound to vfio-pci; -1 if none. */
static int vfio_pci_group(void)
{
	char path[PATH_MAX], link[256], *base;
	struct dirent *e;
	int group = -1;
	ssize_t n;
	DIR *d;

	d = opendir("/sys/bus/pci/drivers/vfio-pci");
	if (!d)
		return -1;
	while (group < 0 && (e = readdir(d))) {
		if (!strchr(e->d_name, ':'))
			continue;	/* not a device (bind, module, ...) */
		snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/iommu_group",
			 e->d_name);
		n = readlink(path, link, sizeof(link) - 1);
		if (n < 0)
			continue;
		link[n] = 0;
		base = strrchr(link, '/');
		group = atoi(base ? base + 1 : link);
	}
	closedir(d);
	return group;
}

/*
 * A real VFIO type1 mapping of a pinnable region (the guest's iommu
 * configuration binds edu to vfio-pci): the mapped pages count in
 * REGION_LIST's dma_pinned while mapped, and stop counting when unmapped.
 */
TEST(vfio_map_counts_in_dma_pinned)
{
	struct vfio_group_status st = { .argsz = sizeof(st) };
	struct vfio_iommu_type1_dma_map map = { .argsz = sizeof(map) };
	struct vfio_iommu_type1_dma_unmap unmap = { .argsz = sizeof(unmap) };
	char name[HPMEM_NAME_MAX], path[64];
	int fd, container, group, g;
	char *p;

	OPEN_DEV(fd);
	g = vfio_pci_group();
	if (g < 0)
		SKIP(return, "no device bound to vfio-pci (the iommu configuration binds edu)");
	container = open("/dev/vfio/vfio", O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, container);
	snprintf(path, sizeof(path), "/dev/vfio/%d", g);
	group = open(path, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, group) TH_LOG("%s: %s", path, strerror(errno));
	ASSERT_EQ(0, ioctl(group, VFIO_GROUP_GET_STATUS, &st));
	ASSERT_TRUE(st.flags & VFIO_GROUP_FLAGS_VIABLE);
	ASSERT_EQ(0, ioctl(group, VFIO_GROUP_SET_CONTAINER, &container));
	ASSERT_EQ(0, ioctl(container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU));

	ASSERT_EQ(0, hp_create(fd, UNIQUE_NAME(name, "vfio"),
			       HPMEM_REGION_PINNABLE));
	ASSERT_EQ(0, hp_grow(fd, 0, 3, NULL));
	p = map_region(fd, 3 * PG, 0);
	ASSERT_NE(MAP_FAILED, p);
	EXPECT_EQ(0, list_dma_pinned(fd, name));
	/* pages 1 and 2 for the device, at an IOVA of its own */
	map.flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE;
	map.vaddr = (uintptr_t)(p + PG);
	map.iova = 1ULL << 32;
	map.size = 2 * PG;
	ASSERT_EQ(0, ioctl(container, VFIO_IOMMU_MAP_DMA, &map))
		TH_LOG("VFIO_IOMMU_MAP_DMA: %s", strerror(errno));
	EXPECT_EQ(2, list_dma_pinned(fd, name));
	unmap.iova = map.iova;
	unmap.size = map.size;
	ASSERT_EQ(0, ioctl(container, VFIO_IOMMU_UNMAP_DMA, &unmap));
	EXPECT_EQ(0, list_dma_pinned(fd, name));
	munmap(p, 3 * PG);
	close(group);
	close(container);
	close(fd);
}

TEST_HARNESS_MAIN
