// SPDX-License-Identifier: MIT
/* HPMEM_IOC_REGION_EXPORT: a region's pages as a dma-buf. Data through the
 * dma-buf's own mmap() against hpmem's mapping, DMA_BUF_IOCTL_SYNC, bad
 * input, and the pages' lifetime with a real importer, vgem (DRM PRIME
 * import attaches and maps the sg_table): never reused while the dma-buf
 * or an import lives, back zeroed afterwards. */
#include <dirent.h>
#include <stdbool.h>
#include <linux/dma-buf.h>
#include "hpmem_test.h"
#include "pfnref_test.h"

/*
 * The few DRM UAPI definitions used (include/uapi/drm/drm.h); the guest
 * build has no libdrm headers.
 */
struct t_drm_version {
	int version_major, version_minor, version_patchlevel;
	size_t name_len;
	char *name;
	size_t date_len;
	char *date;
	size_t desc_len;
	char *desc;
};

struct t_drm_prime_handle {
	uint32_t handle;
	uint32_t flags;
	int32_t fd;
};

struct t_drm_gem_close {
	uint32_t handle;
	uint32_t pad;
};

#define T_DRM_IOCTL_VERSION	_IOWR('d', 0x00, struct t_drm_version)
#define T_DRM_IOCTL_GEM_CLOSE	_IOW('d', 0x09, struct t_drm_gem_close)
#define T_DRM_IOCTL_PRIME_FD_TO_HANDLE _IOWR('d', 0x2e, struct t_drm_prime_handle)

/* vgem and what it needs, in load order, one name a line (selftests/vm). */
#define DRM_KMODS_DIR	"/lib/drm"

static int hp_export(int fd, uint64_t off, uint64_t len, uint32_t fd_flags)
{
	struct hpmem_region_export e = { .argsz = sizeof(e), .fd_flags = fd_flags,
					 .offset = off, .length = len, .fd = -1 };
	int rc = xioctl(fd, HPMEM_IOC_REGION_EXPORT, &e);

	return rc ? rc : e.fd;
}

/* Whether the guest kernel was booted with @word on its command line. */
static bool cmdline_has(const char *word)
{
	char buf[4096], *tok, *save;
	FILE *f = fopen("/proc/cmdline", "re");
	bool found = false;

	if (!f)
		return false;
	if (fgets(buf, sizeof(buf), f))
		for (tok = strtok_r(buf, " \n", &save); tok && !found;
		     tok = strtok_r(NULL, " \n", &save))
			found = !strcmp(tok, word);
	fclose(f);
	return found;
}

/*
 * Under swiotlb=force every import is refused (see
 * vgem_import_bounced_refused): the tests that need one skip.
 */
#define SKIP_IF_BOUNCED() do {						\
	if (cmdline_has("swiotlb=force"))				\
		SKIP(return, "swiotlb=force: imports are refused");	\
} while (0)

/* Loads /lib/drm/<name>.ko in the order /lib/drm/order lists them. */
static void load_drm_kmods(void)
{
	char name[64], path[128];
	FILE *f = fopen(DRM_KMODS_DIR "/order", "re");
	int ko;

	if (!f)
		return;
	while (fscanf(f, "%63s", name) == 1) {
		snprintf(path, sizeof(path), DRM_KMODS_DIR "/%s.ko", name);
		ko = open(path, O_RDONLY | O_CLOEXEC);
		if (ko < 0)
			continue;
		/* EEXIST: loaded by an earlier test */
		syscall(SYS_finit_module, ko, "", 0);
		close(ko);
	}
	fclose(f);
}

/* The fd of vgem's /dev/dri/card*, loading it if need be; -errno if none. */
static int vgem_open(void)
{
	char path[300], drv[16];
	struct dirent *de;
	DIR *d;
	int fd, tries;

	load_drm_kmods();
	for (tries = 0; tries < 20; tries++) {
		d = opendir("/dev/dri");
		while (d && (de = readdir(d))) {
			struct t_drm_version v = { .name = drv,
						   .name_len = sizeof(drv) - 1 };

			if (strncmp(de->d_name, "card", 4))
				continue;
			snprintf(path, sizeof(path), "/dev/dri/%s", de->d_name);
			fd = open(path, O_RDWR | O_CLOEXEC);
			if (fd < 0)
				continue;
			memset(drv, 0, sizeof(drv));
			if (!ioctl(fd, T_DRM_IOCTL_VERSION, &v) &&
			    !strcmp(drv, "vgem")) {
				closedir(d);
				return fd;
			}
			close(fd);
		}
		if (d)
			closedir(d);
		/* devtmpfs creates the node shortly after the load */
		usleep(100000);
	}
	return -ENODEV;
}

#define OPEN_VGEM(fd) do {						\
	(fd) = vgem_open();						\
	if ((fd) < 0)							\
		SKIP(return, "no vgem (%s/order lists none, or CONFIG_DRM_VGEM is off)", \
		     DRM_KMODS_DIR);					\
} while (0)

/* vgem imports (attach + map_dma_buf); the GEM handle, or -errno. */
static int vgem_import(int vfd, int dfd)
{
	struct t_drm_prime_handle h = { .fd = dfd };

	return ioctl(vfd, T_DRM_IOCTL_PRIME_FD_TO_HANDLE, &h) ? -errno :
	       (int)h.handle;
}

static int vgem_close(int vfd, uint32_t handle)
{
	struct t_drm_gem_close c = { .handle = handle };

	return ioctl(vfd, T_DRM_IOCTL_GEM_CLOSE, &c) ? -errno : 0;
}

/* @len bytes of @fd at @off on a 2 MiB boundary, so that PMDs can map it. */
static char *map_aligned(int fd, size_t len, off_t off, int prot)
{
	char *res = mmap(NULL, len + PG, PROT_NONE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uintptr_t base;

	if (res == MAP_FAILED)
		return res;
	base = ((uintptr_t)res + PG - 1) & ~(PG - 1);
	return mmap((void *)base, len, prot, MAP_SHARED | MAP_FIXED, fd, off);
}

static uint64_t pattern(uint64_t page, uint64_t word)
{
	return 0xd1ab0f0000000000ULL ^ (page << 32) ^ word;
}

/* @n pages of node 0 for the region attached to @fd, mapped at *@p. */
static int grow_and_map(int fd, unsigned int n, char **p)
{
	int rc = hp_grow(fd, 0, n, NULL);

	if (!rc && p) {
		*p = map_region(fd, n * PG, 0);
		if (*p == MAP_FAILED)
			rc = -errno;
	}
	return rc;
}

TEST(feature_bit)
{
	struct hpmem_info i;
	int fd;

	OPEN_DEV(fd);
	ASSERT_EQ(0, hp_info(fd, &i));
	EXPECT_TRUE(i.features & HPMEM_FEAT_DMABUF);
	close(fd);
}

TEST(bad_input)
{
	struct hpmem_region_export e = { .argsz = sizeof(e), .fd_flags = O_RDWR,
					 .length = PG };
	struct { struct hpmem_region_export e; uint64_t extra; } big;
	char name[HPMEM_NAME_MAX];
	int fd, rofd, dfd;

	OPEN_DEV(fd);
	/* no region attached */
	EXPECT_EQ(-EBADFD, hp_export(fd, 0, PG, O_RDWR));
	ASSERT_EQ(0, hp_create(fd, UNIQUE_NAME(name, "bad"), 0));
	ASSERT_EQ(0, grow_and_map(fd, 2, NULL));

	EXPECT_EQ(-EINVAL, hp_export(fd, 0, 0, O_RDWR));
	EXPECT_EQ(-EINVAL, hp_export(fd, 4096, PG, O_RDWR));
	EXPECT_EQ(-EINVAL, hp_export(fd, 0, PG + 4096, O_RDWR));
	EXPECT_EQ(-EINVAL, hp_export(fd, 0, PG / 2, O_RDWR));
	EXPECT_EQ(-EINVAL, hp_export(fd, 2 * PG, PG, O_RDWR));
	EXPECT_EQ(-EINVAL, hp_export(fd, PG, 2 * PG, O_RDWR));
	EXPECT_EQ(-EINVAL, hp_export(fd, 0, 3 * PG, O_RDWR));
	EXPECT_EQ(-EINVAL, hp_export(fd, -PG, 2 * PG, O_RDWR));
	EXPECT_EQ(-EINVAL, hp_export(fd, PG, -PG, O_RDWR));
	/* fd flags: an access mode and O_CLOEXEC, nothing else */
	EXPECT_EQ(-EINVAL, hp_export(fd, 0, PG, O_WRONLY));
	EXPECT_EQ(-EINVAL, hp_export(fd, 0, PG, O_RDWR | O_NONBLOCK));
	EXPECT_EQ(-EINVAL, hp_export(fd, 0, PG, O_RDWR | O_APPEND));
	EXPECT_EQ(-EINVAL, hp_export(fd, 0, PG, O_ACCMODE));
	EXPECT_EQ(-EINVAL, hp_export(fd, 0, PG, 0x80000000U));
	/* unknown flags, short and dirty-long argsz */
	e.flags = 1;
	EXPECT_EQ(-EINVAL, xioctl(fd, HPMEM_IOC_REGION_EXPORT, &e));
	e.flags = 0;
	e.argsz = sizeof(e) - 8;
	EXPECT_EQ(-EINVAL, xioctl(fd, HPMEM_IOC_REGION_EXPORT, &e));
	e.argsz = sizeof(e);
	big.e = e;
	big.e.argsz = sizeof(big);
	big.extra = 1;
	EXPECT_EQ(-E2BIG, xioctl(fd, HPMEM_IOC_REGION_EXPORT, &big));
	big.extra = 0;
	EXPECT_EQ(0, xioctl(fd, HPMEM_IOC_REGION_EXPORT, &big));
	EXPECT_LE(0, big.e.fd);
	close(big.e.fd);
	/*
	 * Any export needs a writable hpmem file: importers (RDMA) may let
	 * devices write an O_RDONLY dma-buf. A read-only one maps read-only.
	 */
	rofd = open(HPMEM_DEVICE_PATH, O_RDONLY | O_CLOEXEC);
	ASSERT_LE(0, rofd);
	ASSERT_EQ(0, hp_attach(rofd, name, NULL));
	EXPECT_EQ(-EACCES, hp_export(rofd, 0, PG, O_RDWR));
	EXPECT_EQ(-EACCES, hp_export(rofd, 0, PG, O_RDONLY));
	dfd = hp_export(fd, 0, PG, O_RDONLY);
	ASSERT_LE(0, dfd);
	EXPECT_EQ(MAP_FAILED, mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED,
				   dfd, 0));
	EXPECT_EQ(EACCES, errno);
	close(dfd);
	close(rofd);
	close(fd);
}

TEST(fd_flags)
{
	char name[HPMEM_NAME_MAX], path[64], link[64];
	int fd, dfd;
	ssize_t n;

	OPEN_DEV(fd);
	ASSERT_EQ(0, hp_create(fd, UNIQUE_NAME(name, "fl"), 0));
	ASSERT_EQ(0, grow_and_map(fd, 1, NULL));
	dfd = hp_export(fd, 0, PG, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, dfd);
	EXPECT_EQ(FD_CLOEXEC, fcntl(dfd, F_GETFD) & FD_CLOEXEC);
	EXPECT_EQ(O_RDWR, fcntl(dfd, F_GETFL) & O_ACCMODE);
	EXPECT_EQ((off_t)PG, lseek(dfd, 0, SEEK_END));
	/* what the fuzzer (fuzz.c) tells an exported fd by */
	snprintf(path, sizeof(path), "/proc/self/fd/%d", dfd);
	n = readlink(path, link, sizeof(link) - 1);
	ASSERT_LT(0, n);
	link[n] = 0;
	EXPECT_EQ(0, strncmp(link, "/dmabuf:", 8)) TH_LOG("link %s", link);
	close(dfd);
	dfd = hp_export(fd, 0, PG, O_RDONLY);
	ASSERT_LE(0, dfd);
	EXPECT_EQ(0, fcntl(dfd, F_GETFD) & FD_CLOEXEC);
	EXPECT_EQ(O_RDONLY, fcntl(dfd, F_GETFL) & O_ACCMODE);
	close(dfd);
	close(fd);
}

FIXTURE(data) {
};

FIXTURE_VARIANT(data) {
	uint32_t region_flags;
	bool pte;	/* dma-buf mapped 4 KiB off a 2 MiB boundary */
};

FIXTURE_VARIANT_ADD(data, pmd) {
	.region_flags = 0,
};

FIXTURE_VARIANT_ADD(data, pte) {
	.region_flags = 0,
	.pte = true,
};

FIXTURE_VARIANT_ADD(data, pinnable) {
	.region_flags = HPMEM_REGION_PINNABLE,
};

FIXTURE_SETUP(data)
{
}

FIXTURE_TEARDOWN(data)
{
}

/* Minor faults taken while touching every 4 KiB of @len bytes, twice. */
static long touch_faults(volatile char *p, size_t len)
{
	struct rusage a, b;

	getrusage(RUSAGE_SELF, &a);
	for (int rep = 0; rep < 2; rep++)
		for (size_t off = 0; off < len; off += 4096)
			p[off] = (char)off;
	getrusage(RUSAGE_SELF, &b);
	return b.ru_minflt - a.ru_minflt;
}

/*
 * The dma-buf's mmap maps 2 MiB PMDs where address and offset allow: one
 * fault per page where 4 KiB PTEs would take 512 (on 6.1 only because the
 * dma-buf's inode is S_DAX, as hpmem's own).
 */
TEST(mmap_pmd_per_page)
{
	char name[HPMEM_NAME_MAX];
	struct hpmem_info i;
	long faults;
	int fd, dfd;
	char *q;

	OPEN_DEV(fd);
	ASSERT_EQ(0, hp_info(fd, &i));
	if (!(i.features & HPMEM_FEAT_PMD_MAP))
		SKIP(return, "no PMD mappings in this kernel (CONFIG_FS_DAX off)");
	ASSERT_EQ(0, hp_create(fd, UNIQUE_NAME(name, "pmd"), 0));
	ASSERT_EQ(0, grow_and_map(fd, 4, NULL));
	dfd = hp_export(fd, 0, 4 * PG, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, dfd);
	q = map_aligned(dfd, 4 * PG, 0, PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, q);
	faults = touch_faults(q, 4 * PG);
	TH_LOG("%ld minor faults for 4 x 2 MiB touched", faults);
	/* one per 2 MiB page; 4 KiB mappings would take 2048 */
	EXPECT_GE(4 + 4, faults);
	munmap(q, 4 * PG);
	close(dfd);
	close(fd);
}

/* Pages 1 and 2 of 3, exported: the same bytes both ways. */
TEST_F(data, both_ways)
{
	struct dma_buf_sync sync = { DMA_BUF_SYNC_START | DMA_BUF_SYNC_RW };
	char name[HPMEM_NAME_MAX];
	uint64_t *h, *d, i, bad;
	char *p, *q;
	int fd, dfd;

	OPEN_DEV(fd);
	ASSERT_EQ(0, hp_create(fd, UNIQUE_NAME(name, "data"), variant->region_flags));
	ASSERT_EQ(0, grow_and_map(fd, 3, &p));
	h = (uint64_t *)p;
	for (i = 0; i < 3 * PG / 8; i++)
		h[i] = pattern(i / (PG / 8), i);
	dfd = hp_export(fd, PG, 2 * PG, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, dfd);

	if (variant->pte) {
		q = map_aligned(dfd, 2 * PG - 8192, 4096, PROT_READ | PROT_WRITE);
		ASSERT_NE(MAP_FAILED, q) TH_LOG("mmap: %s", strerror(errno));
		q -= 4096;	/* so that q indexes the dma-buf from 0 */
	} else {
		q = map_aligned(dfd, 2 * PG, 0, PROT_READ | PROT_WRITE);
		ASSERT_NE(MAP_FAILED, q) TH_LOG("mmap: %s", strerror(errno));
	}
	d = (uint64_t *)q;
	EXPECT_EQ(0, ioctl(dfd, DMA_BUF_IOCTL_SYNC, &sync));
	for (i = variant->pte ? 512 : 0, bad = 0;
	     i < (variant->pte ? 2 * PG - 4096 : 2 * PG) / 8; i++)
		bad += d[i] != pattern(1 + i / (PG / 8), i + PG / 8);
	EXPECT_EQ(0, bad) TH_LOG("the dma-buf shows other bytes than the region");
	/* and the other way */
	for (i = variant->pte ? 512 : 0;
	     i < (variant->pte ? 2 * PG - 4096 : 2 * PG) / 8; i += 509)
		d[i] = ~i;
	sync.flags = DMA_BUF_SYNC_END | DMA_BUF_SYNC_RW;
	EXPECT_EQ(0, ioctl(dfd, DMA_BUF_IOCTL_SYNC, &sync));
	for (i = variant->pte ? 512 : 0, bad = 0;
	     i < (variant->pte ? 2 * PG - 4096 : 2 * PG) / 8; i += 509)
		bad += h[i + PG / 8] != ~i;
	EXPECT_EQ(0, bad) TH_LOG("the region misses stores through the dma-buf");
	EXPECT_EQ(pattern(0, 5), h[5]);

	/* bad syncs, private or out-of-range mappings */
	sync.flags = DMA_BUF_SYNC_RW | 0x100;
	EXPECT_EQ(-1, ioctl(dfd, DMA_BUF_IOCTL_SYNC, &sync));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(MAP_FAILED, mmap(NULL, PG, PROT_READ, MAP_PRIVATE, dfd, 0));
	EXPECT_EQ(MAP_FAILED, mmap(NULL, 2 * PG, PROT_READ, MAP_SHARED, dfd, PG));

	if (variant->pte)
		munmap(q + 4096, 2 * PG - 8192);
	else
		munmap(q, 2 * PG);
	close(dfd);
	munmap(p, 3 * PG);
	close(fd);
}

/* A region as destroy leaves it: only what holds the pages remains. */
FIXTURE(lifetime) {
};

FIXTURE_VARIANT(lifetime) {
	bool keep_fd;		/* the dma-buf fd stays open */
	bool import;		/* vgem imports it and holds the import */
	bool keep_map;		/* the dma-buf stays mapped */
};

FIXTURE_VARIANT_ADD(lifetime, dmabuf_open) {
	.keep_fd = true,
};

FIXTURE_VARIANT_ADD(lifetime, import_held) {
	.import = true,
};

FIXTURE_VARIANT_ADD(lifetime, both) {
	.keep_fd = true,
	.import = true,
};

FIXTURE_VARIANT_ADD(lifetime, mapping_only) {
	.keep_map = true,
};

FIXTURE_SETUP(lifetime)
{
}

FIXTURE_TEARDOWN(lifetime)
{
}

#define NEXP	2

/*
 * Destroy the region and close every hpmem fd while the dma-buf lives: its
 * pages stay busy (counted, never handed to a new region, even one that
 * takes every free page of the node), keep their bytes for the dma-buf,
 * and come back zeroed once the last holder lets go.
 */
TEST_F(lifetime, pages_never_reused)
{
	char name[HPMEM_NAME_MAX], xname[HPMEM_NAME_MAX];
	struct hpmem_node_info ni0, ni;
	struct hpmem_seg segs0[3], *segs;
	uint64_t held[NEXP], *w, i, j;
	long n = 0, hits, bad;
	int fd, xfd, dfd, vfd = -1, handle = -1, rc;
	char *p, *q = NULL;

	if (geteuid())
		SKIP(return, "needs root: physical addresses tell the pages apart");
	if (variant->import)
		SKIP_IF_BOUNCED();
	OPEN_DEV(fd);
	if (variant->import)
		OPEN_VGEM(vfd);
	xfd = open(HPMEM_DEVICE_PATH, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, xfd);
	ASSERT_EQ(0, hp_node_info(xfd, 0, &ni0));
	ASSERT_EQ(0, hp_create(fd, UNIQUE_NAME(name, "life"), HPMEM_REGION_PERSISTENT));
	ASSERT_EQ(0, grow_and_map(fd, 3, &p));
	for (i = 0; i < 3 * PG / 8; i++)
		((uint64_t *)p)[i] = pattern(i / (PG / 8), i);
	/* pages 1 and 2, by offset */
	ASSERT_EQ(3, hp_segs(fd, segs0, 3));
	for (i = 0, j = 0; i < 3; i++)
		if (segs0[i].offset)
			held[j++] = segs0[i].phys;
	ASSERT_EQ(NEXP, j);

	dfd = hp_export(fd, PG, NEXP * PG, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, dfd);
	if (variant->import) {
		handle = vgem_import(vfd, dfd);
		ASSERT_LE(0, handle) TH_LOG("PRIME import: %s", strerror(-handle));
	}
	if (variant->keep_map) {
		q = map_aligned(dfd, NEXP * PG, 0, PROT_READ | PROT_WRITE);
		ASSERT_NE(MAP_FAILED, q);
	}
	if (!variant->keep_fd)
		close(dfd);

	/* export does not keep the region from being destroyed */
	ASSERT_EQ(0, munmap(p, 3 * PG));
	ASSERT_EQ(0, hp_destroy(fd, name));
	close(fd);
	EXPECT_EQ(ni0.busy_pages + NEXP, wait_busy(xfd, ni0.busy_pages + NEXP));
	ASSERT_EQ(0, hp_node_info(xfd, 0, &ni));
	EXPECT_EQ(ni0.total_pages, ni.total_pages);
	EXPECT_EQ(ni0.free_pages - NEXP, ni.free_pages);

	/* Node 0's pool to the last page: no held page among them. */
	ASSERT_EQ(0, hp_create(xfd, UNIQUE_NAME(xname, "lifex"), 0));
	while ((rc = hp_grow(xfd, 0, 1, NULL)) == 0)
		n++;
	EXPECT_EQ(-ENOMEM, rc);
	ASSERT_LT(0, n);
	segs = calloc(n + NEXP, sizeof(*segs));
	ASSERT_NE(NULL, segs);
	ASSERT_EQ(n, hp_segs(xfd, segs, n));
	for (i = 0, hits = 0; i < (uint64_t)n; i++)
		for (j = 0; j < NEXP; j++)
			hits += segs[i].phys == held[j];
	EXPECT_EQ(0, hits) TH_LOG("an exported page went to another region");

	/* the dma-buf still sees its bytes, and writes into no region */
	if (q) {
		for (i = 0, bad = 0; i < NEXP * PG / 8; i += 4099)
			bad += ((uint64_t *)q)[i] != pattern(1 + i / (PG / 8),
							    i + PG / 8);
		EXPECT_EQ(0, bad);
		memset(q, 0x5a, NEXP * PG);
		w = map_region(xfd, n * PG, 0);
		ASSERT_NE(MAP_FAILED, w);
		for (i = 0, hits = 0; i < (uint64_t)n; i++)
			hits += w[i * PG / 8] == 0x5a5a5a5a5a5a5a5aULL;
		EXPECT_EQ(0, hits) TH_LOG("a dma-buf store landed in a region");
		munmap(w, n * PG);
		munmap(q, NEXP * PG);
	}

	/* The last holder lets go: the pages come back, zeroed. */
	if (variant->keep_fd)
		close(dfd);
	if (variant->import) {
		if (variant->keep_fd)	/* still imported: still busy */
			EXPECT_EQ(ni0.busy_pages + NEXP,
				  wait_busy(xfd, ni0.busy_pages + NEXP));
		EXPECT_EQ(0, vgem_close(vfd, handle));
		close(vfd);
	}
	EXPECT_EQ(ni0.busy_pages, wait_busy(xfd, ni0.busy_pages));
	ASSERT_EQ(0, hp_grow(xfd, 0, NEXP, NULL));
	ASSERT_EQ(n + NEXP, hp_segs(xfd, segs, n + NEXP));
	/* With no other busy page to come back, they are these. */
	if (!ni0.busy_pages) {
		for (i = 0, hits = 0; i < (uint64_t)n + NEXP; i++)
			for (j = 0; j < NEXP; j++)
				hits += segs[i].phys == held[j];
		EXPECT_EQ(NEXP, hits);
	}
	w = map_region(xfd, NEXP * PG, n * PG);
	ASSERT_NE(MAP_FAILED, w);
	for (i = 0, bad = 0; i < NEXP * PG / 8; i++)
		bad += w[i] != 0;
	EXPECT_EQ(0, bad) TH_LOG("a page came back not zeroed");
	munmap(w, NEXP * PG);
	free(segs);
	close(xfd);
}

/*
 * vgem attaches and maps at import: data written through hpmem's mapping is
 * what the dma-buf holds, and the import keeps working across the region's
 * lifetime. Importing twice gives the same handle (PRIME's cache).
 */
TEST(vgem_import_twice)
{
	char name[HPMEM_NAME_MAX];
	int fd, vfd, dfd, h1, h2;
	char *p;

	SKIP_IF_BOUNCED();
	OPEN_DEV(fd);
	OPEN_VGEM(vfd);
	ASSERT_EQ(0, hp_create(fd, UNIQUE_NAME(name, "vgem"), 0));
	ASSERT_EQ(0, grow_and_map(fd, 4, &p));
	dfd = hp_export(fd, 0, 4 * PG, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, dfd);
	h1 = vgem_import(vfd, dfd);
	ASSERT_LE(0, h1) TH_LOG("PRIME import: %s", strerror(-h1));
	h2 = vgem_import(vfd, dfd);
	EXPECT_EQ(h1, h2);
	EXPECT_EQ(0, vgem_close(vfd, h1));
	close(dfd);
	close(vfd);
	munmap(p, 4 * PG);
	close(fd);
}

/*
 * With swiotlb=force (every direct-mapped device bounced, as in SEV/TDX
 * guests) vgem's import would map swiotlb copies of the pages, synced only
 * at unmap: the device and the CPU would see different bytes. The import
 * must fail instead (map_dma_buf refuses a mapping that needs syncs).
 * Boot with HPMEM_VM_CMDLINE_EXTRA=swiotlb=force to run it.
 */
TEST(vgem_import_bounced_refused)
{
	char name[HPMEM_NAME_MAX];
	int fd, vfd, dfd, h;

	if (!cmdline_has("swiotlb=force"))
		SKIP(return, "guest not booted with swiotlb=force (HPMEM_VM_CMDLINE_EXTRA)");
	OPEN_DEV(fd);
	OPEN_VGEM(vfd);
	ASSERT_EQ(0, hp_create(fd, UNIQUE_NAME(name, "bounce"), 0));
	ASSERT_EQ(0, grow_and_map(fd, 1, NULL));
	dfd = hp_export(fd, 0, PG, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, dfd);
	h = vgem_import(vfd, dfd);
	EXPECT_EQ(-EOPNOTSUPP, h) TH_LOG("PRIME import gave %d", h);
	if (h >= 0)
		vgem_close(vfd, h);
	close(dfd);
	close(vfd);
	close(fd);
}

/*
 * Sparse regions (issue 13): a range over a hole is refused; a page that is
 * exported cannot be released from the region (EBUSY: the dma-buf and its
 * importers still reach it) until the dma-buf goes; then it can.
 */
TEST(sparse_release_while_exported)
{
	struct hpmem_region_create c = { .argsz = sizeof(c), .max_pages = 4 };
	struct hpmem_region_release r = { .argsz = sizeof(r), .offset = PG,
					  .nr_pages = 1 };
	struct hpmem_region_grow g = { .argsz = sizeof(g), .nr_pages = 1,
				       .flags = HPMEM_GROW_AT };
	struct hpmem_node_info ni0;
	struct hpmem_info i;
	uint64_t *q;
	int fd, dfd;

	OPEN_DEV(fd);
	ASSERT_EQ(0, hp_info(fd, &i));
	if (!(i.features & HPMEM_FEAT_SPARSE))
		SKIP(return, "hpmem.ko without sparse regions");
	ASSERT_EQ(0, hp_node_info(fd, 0, &ni0));
	UNIQUE_NAME(c.name, "sparse");
	ASSERT_EQ(0, xioctl(fd, HPMEM_IOC_REGION_CREATE, &c));
	/* pages at 0 and 1, a hole at 2, a page at 3 */
	ASSERT_EQ(0, xioctl(fd, HPMEM_IOC_REGION_GROW, &g));
	g.offset = PG;
	ASSERT_EQ(0, xioctl(fd, HPMEM_IOC_REGION_GROW, &g));
	g.offset = 3 * PG;
	ASSERT_EQ(0, xioctl(fd, HPMEM_IOC_REGION_GROW, &g));
	EXPECT_EQ(-EINVAL, hp_export(fd, PG, 2 * PG, O_RDWR));
	EXPECT_EQ(-EINVAL, hp_export(fd, 2 * PG, PG, O_RDWR));
	dfd = hp_export(fd, 3 * PG, PG, O_RDWR);
	ASSERT_LE(0, dfd);
	close(dfd);

	dfd = hp_export(fd, PG, PG, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, dfd);
	q = (uint64_t *)map_aligned(dfd, PG, 0, PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, q);
	q[7] = 0xfeedULL;
	EXPECT_EQ(-EBUSY, xioctl(fd, HPMEM_IOC_REGION_RELEASE, &r));
	EXPECT_EQ(3, hp_segs(fd, NULL, 0));	/* nothing released */
	EXPECT_EQ(0xfeedULL, q[7]);
	munmap(q, PG);
	close(dfd);
	EXPECT_EQ(0, xioctl(fd, HPMEM_IOC_REGION_RELEASE, &r));
	EXPECT_EQ(ni0.busy_pages, wait_busy(fd, ni0.busy_pages));
	close(fd);
}

/*
 * The importer's view: hpmem_pfnref.ko imports the dma-buf for QEMU's edu
 * PCI device (attach, map the attachment) and reports the sg_table. With no
 * IOMMU the DMA addresses are the physical ones SEGS reports, in offset
 * order, and no segment exceeds the 64 KiB the PCI core gives a device as
 * its maximum segment size.
 */
TEST(importer_view)
{
	struct pfnref_seg sg[3 * 32 + 8];
	struct pfnref_dmabuf a = { .nr_segs = 3 * 32 + 8,
				   .segs = (uintptr_t)sg };
	char name[HPMEM_NAME_MAX];
	struct hpmem_seg segs[3];
	uint64_t phys[3], o, at;
	struct hpmem_info info;
	int rfd, fd, dfd, rc;
	uint32_t k;
	char *p;

	if (geteuid())
		SKIP(return, "needs root: physical addresses");
	SKIP_IF_BOUNCED();
	OPEN_DEV(fd);
	ASSERT_EQ(0, hp_info(fd, &info));
	if (info.dma_model == HPMEM_DMA_TRANSLATED)
		SKIP(return, "an IOMMU translates: DMA addresses are IOVAs");
	OPEN_PFNREF(rfd);
	ASSERT_EQ(0, hp_create(fd, UNIQUE_NAME(name, "view"), 0));
	ASSERT_EQ(0, grow_and_map(fd, 3, &p));
	ASSERT_EQ(3, hp_segs(fd, segs, 3));
	for (k = 0; k < 3; k++)
		phys[segs[k].offset / PG] = segs[k].phys;
	dfd = hp_export(fd, 0, 3 * PG, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, dfd);
	a.fd = dfd;
	rc = xioctl(rfd, PFNREF_IOC_DMABUF_SEGS, &a);
	if (rc == -ENODEV)
		SKIP(return, "no edu device to import for");
	ASSERT_EQ(0, rc) TH_LOG("import for edu: %s", strerror(-rc));
	EXPECT_EQ(3 * 32, a.nr_segs);
	for (k = 0, o = 0; k < a.nr_segs && k < 3 * 32 + 8; k++) {
		at = phys[o / PG] + o % PG;
		EXPECT_EQ(at, sg[k].addr) TH_LOG("segment %u at byte %#llx", k,
						 (unsigned long long)o);
		EXPECT_GE(65536, sg[k].len);
		o += sg[k].len;
	}
	EXPECT_EQ(3 * PG, o);
	close(dfd);
	munmap(p, 3 * PG);
	close(fd);
	close(rfd);
}

/*
 * Segments are whole 4 KiB pages: an importer whose device takes less in
 * one segment is refused at attach (EINVAL) rather than handed segments
 * beyond its limit; one that takes exactly a page gets one per 4 KiB.
 */
TEST(importer_small_segments)
{
	struct pfnref_dmabuf a = { 0 };
	char name[HPMEM_NAME_MAX];
	int rfd, fd, dfd, rc;

	SKIP_IF_BOUNCED();
	OPEN_DEV(fd);
	OPEN_PFNREF(rfd);
	ASSERT_EQ(0, hp_create(fd, UNIQUE_NAME(name, "smallseg"), 0));
	ASSERT_EQ(0, grow_and_map(fd, 1, NULL));
	dfd = hp_export(fd, 0, PG, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, dfd);
	a.fd = dfd;
	a.max_seg_size = 2048;
	rc = xioctl(rfd, PFNREF_IOC_DMABUF_SEGS, &a);
	if (rc == -ENODEV)
		SKIP(return, "no edu device to import for");
	EXPECT_EQ(-EINVAL, rc) TH_LOG("2 KiB segments: %d, %u segments", rc, a.nr_segs);
	a.nr_segs = 0;
	a.max_seg_size = 4096;
	EXPECT_EQ(0, xioctl(rfd, PFNREF_IOC_DMABUF_SEGS, &a));
	EXPECT_EQ(PG / 4096, a.nr_segs);
	close(dfd);
	close(rfd);
	close(fd);
}

TEST_HARNESS_MAIN
