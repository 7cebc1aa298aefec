/* SPDX-License-Identifier: MIT */
/* Named, reserved blocks of region memory, found by name from any process. */
#ifndef HPMEM_MEMZONE_H
#define HPMEM_MEMZONE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <hpmem/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The zone must be IOVA-contiguous (a DMA target). */
#define HPM_MEMZONE_IOVA_CONTIG		0x00100000u
/* Page-size requirements: the zone must sit on pages of this size... */
#define HPM_MEMZONE_2MB			0x00000004u
#define HPM_MEMZONE_1GB			0x00000008u
/* ...unless this flag makes them a preference only. */
#define HPM_MEMZONE_SIZE_HINT_ONLY	0x00000010u
#define HPM_MEMZONE_F_ALL		(HPM_MEMZONE_IOVA_CONTIG | \
					 HPM_MEMZONE_2MB | HPM_MEMZONE_1GB | \
					 HPM_MEMZONE_SIZE_HINT_ONLY)

/* Default number of zones (DPDK's); hpm_init_opts.max_memzones changes it. */
#define HPM_MEMZONE_DEFAULT_MAX		2560

/* Read-only for users; the same address in every process. */
struct hpm_memzone {
	char name[HPM_NAME_SIZE];
	void *addr;
	uint64_t iova;		/* of addr; HPM_BAD_IOVA when unknown */
	size_t len;
	uint64_t page_sz;	/* page size under addr */
	int socket;
	uint32_t flags;
};

/*
 * Reserve len bytes on socket (HPM_SOCKET_ANY: any node, the caller's
 * first; an external heap's socket id, hpm_malloc_heap_get_socket(): that
 * heap, where HPM_MEMZONE_2MB/_1GB are hints). A specific socket never
 * falls back to another node. As in DPDK,
 * len is rounded up to a whole cache line (100 -> 128; mz->len says so),
 * and len == 0 reserves the largest block there is (with bound: bound
 * bytes) on that node (HPM_SOCKET_ANY: on the node that has it), all of
 * it minus the heap's overhead and any alignment gap, as a cache-line
 * multiple; with HPM_MEMZONE_IOVA_CONTIG, its IOVA-contiguous start.
 * align: a power of two (minimum and default: a cache line). bound: 0 or a
 * power of two >= the rounded len that the zone must not cross; it may be
 * smaller than align (an aligned start is then a multiple of it).
 * NULL + hpm_errno: EINVAL (bad argument, empty name, unknown flag),
 * ENAMETOOLONG (name >= HPM_NAME_SIZE), EEXIST, ENOMEM, ENOSPC (table
 * full). A failed call leaves nothing behind.
 */
const struct hpm_memzone *hpm_memzone_reserve(const char *name, size_t len,
					      int socket, unsigned int flags);
const struct hpm_memzone *hpm_memzone_reserve_aligned(const char *name,
						      size_t len, int socket,
						      unsigned int flags,
						      unsigned int align);
const struct hpm_memzone *hpm_memzone_reserve_bounded(const char *name,
						      size_t len, int socket,
						      unsigned int flags,
						      unsigned int align,
						      unsigned int bound);
/* O(1) hash lookup; NULL + ENOENT when absent (EINVAL/ENAMETOOLONG on bad name). */
const struct hpm_memzone *hpm_memzone_lookup(const char *name);
/* Release a zone; -EINVAL when mz is not a live zone. */
int hpm_memzone_free(const struct hpm_memzone *mz);
/*
 * Call fn for every zone; a non-zero return from fn stops the walk and is
 * returned. fn may reserve or free zones (the table lock is not held).
 */
int hpm_memzone_walk(int (*fn)(const struct hpm_memzone *mz, void *arg),
		     void *arg);
void hpm_memzone_dump(FILE *f);
/*
 * A dma-buf of the zone's pages (kmod backend, HPMEM_IOC_REGION_EXPORT), for
 * ibv_reg_dmabuf_mr(), GPU and other drivers that import dma-bufs. The zone
 * must cover whole pages at consecutive region offsets (reserve it with
 * HPM_MEMZONE_2MB, a 2 MiB alignment and a length of whole pages).
 * @fd_flags: O_RDWR or O_RDONLY, optionally | O_CLOEXEC. Returns the fd, or
 * -EINVAL (not whole pages, or not consecutive in the region), -EOPNOTSUPP
 * (not the kmod backend), -ENODEV (before hpm_init()) or the kernel's
 * -errno (ENOTTY: a module without HPMEM_FEAT_DMABUF). The pages stay
 * valid for the dma-buf's holders after the zone is freed, but the zone's
 * memory may then be handed out again by the heap: free it only once they
 * are done. See hpm_memzone(3).
 */
int hpm_memzone_export_dmabuf(const struct hpm_memzone *mz, int fd_flags);
/*
 * mmap() of a dma-buf hpmem.ko exported (MAP_SHARED, @len bytes from @off,
 * @prot) at a 2 MiB-aligned address, so that its 2 MiB pages are mapped by
 * PMDs: mmap(NULL) of a dma-buf gets any 4 KiB boundary, where only 4 KiB
 * mappings fit. @off should be a multiple of 2 MiB too. Stores the address
 * in *@addr; unmap with munmap(*addr, len). 0 or -errno (mmap()'s).
 */
int hpm_dmabuf_mmap(int fd, size_t len, uint64_t off, int prot, void **addr);

/* Zones in use and the table's capacity. */
unsigned int hpm_memzone_count(void);
unsigned int hpm_memzone_max(void);

#ifdef __cplusplus
}
#endif

#endif /* HPMEM_MEMZONE_H */
