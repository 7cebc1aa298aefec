// SPDX-License-Identifier: MIT
/*
 * hpm_memzone_export_dmabuf(): a zone of whole pages as a dma-buf whose
 * own mapping shows the zone's bytes both ways; zones it cannot export.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <linux/hpmem.h>

#include <hpmem/init.h>
#include <hpmem/memzone.h>

#include "kselftest_harness.h"

#define PG	(2u << 20)

FIXTURE(ex) {
	char name[HPM_NAME_SIZE];
	struct hpm_init_opts o;
};

FIXTURE_SETUP(ex)
{
	hpm_init_opts_default(&self->o);
	snprintf(self->name, sizeof(self->name), "t-dmabuf-%d", (int)getpid());
	self->o.region = self->name;
	self->o.socket_mem[0] = 32;
	ASSERT_EQ(0, hpm_init(&self->o));
}

FIXTURE_TEARDOWN(ex)
{
	EXPECT_EQ(0, hpm_cleanup());
}

TEST_F(ex, zone_both_ways)
{
	const struct hpm_memzone *mz;
	uint64_t *z, *d, i, bad;
	int fd;

	mz = hpm_memzone_reserve_aligned("dmabuf", 2 * PG, 0, HPM_MEMZONE_2MB, PG);
	ASSERT_NE(NULL, mz);
	fd = hpm_memzone_export_dmabuf(mz, O_RDWR | O_CLOEXEC);
	if (hpm_backend() != HPM_BACKEND_KMOD) {
		EXPECT_EQ(-EOPNOTSUPP, fd);
		EXPECT_EQ(0, hpm_memzone_free(mz));
		SKIP(return, "%s backend: only kmod regions export dma-bufs",
		     hpm_backend_name(hpm_backend()));
	}
	if (fd == -ENOTTY) {
		EXPECT_EQ(0, hpm_memzone_free(mz));
		SKIP(return, "hpmem.ko without HPMEM_FEAT_DMABUF");
	}
	ASSERT_LE(0, fd) TH_LOG("export: %s", strerror(-fd));
	EXPECT_EQ(FD_CLOEXEC, fcntl(fd, F_GETFD) & FD_CLOEXEC);
	d = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ASSERT_NE(MAP_FAILED, d);
	z = mz->addr;
	for (i = 0; i < 2 * PG / 8; i++)
		z[i] = i * 0x9e3779b97f4a7c15ULL;
	for (i = 0, bad = 0; i < 2 * PG / 8; i++)
		bad += d[i] != i * 0x9e3779b97f4a7c15ULL;
	EXPECT_EQ(0, bad);
	for (i = 0; i < 2 * PG / 8; i += 4097)
		d[i] = ~i;
	for (i = 0, bad = 0; i < 2 * PG / 8; i += 4097)
		bad += z[i] != ~i;
	EXPECT_EQ(0, bad);
	munmap(d, 2 * PG);
	close(fd);
	EXPECT_EQ(0, hpm_memzone_free(mz));
}

/* Whether hpmem.ko maps 2 MiB PMDs (HPMEM_FEAT_PMD_MAP); false if unknown. */
static int pmd_map(void)
{
	struct hpmem_info i = { .argsz = sizeof(i) };
	int fd = open(HPMEM_DEVICE_PATH, O_RDONLY | O_CLOEXEC), ok;

	if (fd < 0)
		return 0;
	ok = !ioctl(fd, HPMEM_IOC_INFO, &i) && (i.features & HPMEM_FEAT_PMD_MAP);
	close(fd);
	return ok;
}

/*
 * hpm_dmabuf_mmap() maps at a 2 MiB boundary, so the dma-buf's pages are
 * PMD-mapped: touching every 4 KiB of 2 pages, twice, takes one minor fault
 * per 2 MiB page, where 4 KiB mappings (mmap(NULL)'s) would take 1024.
 */
TEST_F(ex, mmap_pmd)
{
	const struct hpm_memzone *mz;
	struct rusage a, b;
	volatile char *d;
	void *p;
	long faults;
	size_t off;
	int fd;

	mz = hpm_memzone_reserve_aligned("dmabuf-pmd", 2 * PG, 0, HPM_MEMZONE_2MB, PG);
	ASSERT_NE(NULL, mz);
	fd = hpm_memzone_export_dmabuf(mz, O_RDWR | O_CLOEXEC);
	if (fd < 0 || !pmd_map()) {
		if (fd >= 0)
			close(fd);
		EXPECT_EQ(0, hpm_memzone_free(mz));
		SKIP(return, "no dma-buf export (%d) or no PMD mappings", fd);
	}
	ASSERT_EQ(0, hpm_dmabuf_mmap(fd, 2 * PG, 0, PROT_READ | PROT_WRITE, &p));
	EXPECT_EQ(0, (uintptr_t)p & (PG - 1));
	d = p;
	getrusage(RUSAGE_SELF, &a);
	for (int rep = 0; rep < 2; rep++)
		for (off = 0; off < 2 * PG; off += 4096)
			d[off] = (char)off;
	getrusage(RUSAGE_SELF, &b);
	faults = b.ru_minflt - a.ru_minflt;
	TH_LOG("%ld minor faults for 2 x 2 MiB touched", faults);
	EXPECT_GE(2 + 4, faults);
	EXPECT_EQ(0, memcmp((char *)mz->addr, p, 2 * PG));
	EXPECT_EQ(0, munmap(p, 2 * PG));
	EXPECT_EQ(-EINVAL, hpm_dmabuf_mmap(fd, 0, 0, PROT_READ, &p));
	close(fd);
	EXPECT_EQ(0, hpm_memzone_free(mz));
}

TEST_F(ex, not_whole_pages)
{
	const struct hpm_memzone *mz;

	EXPECT_EQ(-EINVAL, hpm_memzone_export_dmabuf(NULL, O_RDWR));
	mz = hpm_memzone_reserve("small", 4096, 0, 0);
	ASSERT_NE(NULL, mz);
	EXPECT_EQ(hpm_backend() == HPM_BACKEND_KMOD ? -EINVAL : -EOPNOTSUPP,
		  hpm_memzone_export_dmabuf(mz, O_RDWR));
	EXPECT_EQ(0, hpm_memzone_free(mz));
}

TEST_HARNESS_MAIN
