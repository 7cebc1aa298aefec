// SPDX-License-Identifier: MIT
/*
 * Memzones as dma-bufs (HPMEM_IOC_REGION_EXPORT): what RDMA
 * (ibv_reg_dmabuf_mr()), GPU and accelerator drivers import.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <linux/hpmem.h>

#include <hpmem/init.h>
#include <hpmem/memzone.h>

#include "config.h"
#include "internal.h"

/*
 * The region offset of [@addr, @addr + @len): the pages must be whole and
 * at consecutive region offsets, which a remapped region (pages placed by
 * physical address) need not give. 0 or -EINVAL.
 */
static int dmabuf_range(const struct hpm_config *c, uintptr_t addr, size_t len,
			uint64_t *off)
{
	const uint64_t *offs = hpm_config_offsets((struct hpm_config *)c);
	uint64_t first, n, i;

	if (!len || (addr | len) & (c->page_sz - 1) || addr < c->base ||
	    addr - c->base >= c->size || len > c->size - (addr - c->base))
		return -EINVAL;
	first = (addr - c->base) >> c->page_shift;
	n = len >> c->page_shift;
	if (first + n > c->nr_memsegs)
		return -EINVAL;
	for (i = 1; i < n; i++)
		if (offs[first + i] != offs[first] + i * c->page_sz)
			return -EINVAL;
	*off = offs[first];
	return 0;
}

/*
 * An hpmem file of our own, attached to the region by name, so that the
 * export needs nothing of init's: the dma-buf holds its pages, not the file.
 */
static int dmabuf_export(const struct hpm_config *c, uint64_t off, uint64_t len,
			 int fd_flags)
{
	struct hpmem_region_attach a = { .argsz = sizeof(a) };
	struct hpmem_region_export e = {
		.argsz = sizeof(e), .fd_flags = (uint32_t)fd_flags,
		.offset = off, .length = len,
	};
	int fd, rc = 0;

	fd = open(HPMEM_DEVICE_PATH, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	memcpy(a.name, c->region, sizeof(a.name));
	a.name[sizeof(a.name) - 1] = 0;
	if (ioctl(fd, HPMEM_IOC_REGION_ATTACH, &a) ||
	    ioctl(fd, HPMEM_IOC_REGION_EXPORT, &e))
		rc = -errno;
	close(fd);
	return rc ? rc : e.fd;
}

__hpm_export int hpm_memzone_export_dmabuf(const struct hpm_memzone *mz, int fd_flags)
{
	const struct hpm_config *c = hpm_config();
	uint64_t off;
	int rc;

	if (!c)
		return -ENODEV;
	if (!mz)
		return -EINVAL;
	if (c->backend != HPM_BACKEND_KMOD)
		return -EOPNOTSUPP;
	rc = dmabuf_range(c, (uintptr_t)mz->addr, mz->len, &off);
	if (rc)
		return rc;
	rc = dmabuf_export(c, off, mz->len, fd_flags);
	if (rc < 0) {
		hpm_log(HPM_LOG_DEBUG, "memzone %.*s: dma-buf export: %s",
			(int)sizeof(mz->name), mz->name, strerror(-rc));
	}
	return rc;
}

/*
 * The dma-buf core gives the dma-buf's file no get_unmapped_area(), so
 * mmap(NULL) lands on any 4 KiB boundary and hpmem.ko's fault handler can
 * map no 2 MiB PMD there: it needs a PMD-aligned address. Reserve the
 * length plus one page of address space, map over its first 2 MiB boundary
 * and give back the rest, so that the caller munmap()s only [addr, len).
 */
__hpm_export int hpm_dmabuf_mmap(int fd, size_t len, uint64_t off, int prot,
				 void **addr)
{
	const size_t pmd = (size_t)1 << HPMEM_PAGE_SHIFT;
	uintptr_t res, base;
	void *p;

	if (!addr || !len || len > SIZE_MAX - pmd || off > INT64_MAX)
		return -EINVAL;
	p = mmap(NULL, len + pmd, PROT_NONE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return -errno;
	res = (uintptr_t)p;
	base = (res + pmd - 1) & ~(uintptr_t)(pmd - 1);
	p = mmap((void *)base, len, prot, MAP_SHARED | MAP_FIXED, fd, (off_t)off);
	if (p == MAP_FAILED) {
		int rc = -errno;

		munmap((void *)res, len + pmd);
		return rc;
	}
	if (base > res)
		munmap((void *)res, base - res);
	if (res + pmd > base)
		munmap((void *)(base + len), res + pmd - base);
	*addr = p;
	return 0;
}
