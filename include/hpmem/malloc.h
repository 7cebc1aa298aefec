/* SPDX-License-Identifier: MIT */
/* NUMA-aware allocator over the region's memory, shaped like DPDK's rte_malloc. */
#ifndef HPMEM_MALLOC_H
#define HPMEM_MALLOC_H

#include <stddef.h>
#include <stdio.h>

#include <hpmem/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Common rules for every call below:
 * - @type is ignored (kept for DPDK source compatibility).
 * - @align is 0 or a power of two; anything else fails with EINVAL. Every
 *   block is at least cache-line (64-byte) aligned, as DPDK guarantees:
 *   0 and anything up to 64 give 64.
 * - hpm_malloc_usable_size() is the same in every build (HPM_DEBUG=1 or
 *   not): the debug cookie lives in bytes every build keeps back.
 * - A size of 0 fails with EINVAL, like rte_malloc(); sizes that cannot be
 *   satisfied fail with ENOMEM and leave the heap untouched.
 * - Calls without a socket start with the caller's NUMA node and fall back
 *   to the others. The _socket variants with an explicit node are strict
 *   (no fallback), as in DPDK; HPM_SOCKET_ANY behaves like the plain call.
 * - The returned memory is not guaranteed to be IOVA-contiguous beyond one
 *   page; memzones offer that.
 * - Memory from hpm_malloc() is not zeroed; hpm_zmalloc()/hpm_calloc() are.
 * - Failures return NULL with the reason in hpm_errno (ENODEV before
 *   hpm_init()).
 * - Any thread of the primary or of a secondary may free any block. Each
 *   thread keeps up to 1 MiB per node of freed blocks below 128 KiB for
 *   reuse without a lock; the heap counts them as allocated until they go
 *   back (cache full, thread exit, hpm_cleanup(), or the stats/validate
 *   calls below, which flush the calling thread's cache). The environment
 *   variable HPMEM_MALLOC_NOCACHE turns these caches off.
 */
void *hpm_malloc(const char *type, size_t size, unsigned int align);
void *hpm_zmalloc(const char *type, size_t size, unsigned int align);
/* num * size overflowing size_t fails with ENOMEM, like glibc. */
void *hpm_calloc(const char *type, size_t num, size_t size, unsigned int align);
/*
 * Resize in place when possible (shrinking always is; growing is when the
 * next block is free and large enough, including a block the calling
 * thread freed a moment ago that still sits in its cache), otherwise
 * allocate, copy and free.
 * A block that is moved stays on its node when it can. @ptr == NULL acts as
 * hpm_malloc(); @size == 0 frees @ptr and returns NULL with hpm_errno 0.
 * On failure the old block is left untouched.
 */
void *hpm_realloc(void *ptr, size_t size, unsigned int align);

void *hpm_malloc_socket(const char *type, size_t size, unsigned int align,
			int socket);
void *hpm_zmalloc_socket(const char *type, size_t size, unsigned int align,
			 int socket);
void *hpm_calloc_socket(const char *type, size_t num, size_t size,
			unsigned int align, int socket);
void *hpm_realloc_socket(void *ptr, size_t size, unsigned int align,
			 int socket);

/*
 * Free a block; NULL is ignored. A pointer that is not a live block of this
 * library (double free, foreign or interior pointer) is not touched: the
 * error is logged and hpm_errno is set to EINVAL. An overrun into the next
 * block's header is caught when the block leaves the thread cache (the
 * block is then logged and leaked, never merged); debug builds
 * (HPM_DEBUG=1) also catch overruns into the trailer at once.
 */
void hpm_free(void *ptr);

/*
 * hpm_free() for a block that held secrets (keys, passwords), like DPDK's
 * rte_free_sensitive(): its usable bytes are cleared (with a store the
 * compiler may not drop) before the block is freed, so neither the next
 * owner nor a dump of the region sees them. Invalid pointers are treated
 * as by hpm_free() and not written.
 */
void hpm_free_sensitive(void *ptr);

/* Usable bytes of a live block (at least what was asked), 0 if invalid. */
size_t hpm_malloc_usable_size(const void *ptr);

/* Per-node statistics, field names as in rte_malloc_socket_stats. */
struct hpm_malloc_socket_stats {
	size_t heap_totalsz_bytes;	/* memory given to this node's heap */
	size_t heap_freesz_bytes;	/* bytes in free blocks */
	size_t greatest_free_size;	/* largest hpm_malloc() that can succeed */
	unsigned int free_count;	/* free blocks */
	unsigned int alloc_count;	/* live allocations */
	size_t heap_allocsz_bytes;	/* bytes in live blocks, headers included */
};

/*
 * 0 on success (all zero for a node without memory), -EINVAL when @socket
 * is out of range or @stats NULL. An external heap's socket id works too. Blocks in other threads' caches count as
 * allocated.
 */
int hpm_malloc_get_socket_stats(int socket,
				struct hpm_malloc_socket_stats *stats);

/* Print the stats of @socket, or of every node when HPM_SOCKET_ANY. */
void hpm_malloc_dump_stats(FILE *f, int socket);

/*
 * Walk every heap checking each block header, boundary tags, debug
 * trailers, that no two free blocks are adjacent, that the free lists and
 * bitmaps agree with the blocks and that the sizes add up. Returns 0, or
 * -EFAULT after logging the first inconsistency found (0 before
 * hpm_init()). Takes each heap's lock in turn; meant for tests and
 * debugging, not the fast path.
 */
int hpm_malloc_validate(void);

/*
 * External heaps, as DPDK's rte_malloc_heap_*(): named heaps over memory
 * the application maps itself (anonymous, hugetlbfs, device memory), with
 * their own socket ids. The hpm_malloc*_socket() calls, memzones and
 * hpm_malloc_get_socket_stats() take such a socket id; HPM_SOCKET_ANY
 * never picks an external heap. Blocks are freed with hpm_free() as any
 * other. Unlike DPDK, every call returns 0 (or a socket id) on success
 * and a negative errno on failure, also left in hpm_errno.
 * The heaps live in the region's shared configuration: every process of
 * the region sees them. The memory itself must be mapped at the same
 * address in every process that touches blocks from it (the caller's
 * job, as in DPDK); a process other than the one that added it calls
 * hpm_malloc_heap_memory_attach() first, which checks that.
 */
#define HPM_MALLOC_HEAP_NAME_SIZE	32	/* name, NUL included */
#define HPM_MAX_EXT_HEAPS		8	/* socket ids HPM_MAX_NODES.. */
#define HPM_EXT_HEAP_MAX_CHUNKS		16	/* memory_add() calls per heap */

/*
 * An empty heap named @name, with the next free socket id. -EINVAL (NULL,
 * empty or too long a name), -EEXIST (a heap of that name exists: also
 * "socket_N", the names of the node heaps, as in DPDK), -ENOSPC (all
 * HPM_MAX_EXT_HEAPS in use), -ENODEV before hpm_init().
 */
int hpm_malloc_heap_create(const char *name);
/*
 * -EINVAL (bad name), -ENOENT (no such heap), -EPERM (a node heap),
 * -EBUSY (memory still added, or blocks still allocated).
 */
int hpm_malloc_heap_destroy(const char *name);
/*
 * Give @len bytes at @va, @n_pages pages of @page_sz bytes, to heap
 * @name. @va and @len must be multiples of @page_sz, a power of two;
 * @iova_addrs holds each page's IOVA (NULL: HPM_BAD_IOVA for all, and
 * @n_pages is ignored), kept in the region so that hpm_virt2iova() and
 * hpm_virt2memseg() answer for this memory in every process. The bytes
 * are overwritten by the heap's headers. -EINVAL (bad argument, overlap
 * with memory of any heap, @n_pages != @len / @page_sz), -ENOENT (no such
 * heap), -EPERM (a node heap), -ENOSPC (HPM_EXT_HEAP_MAX_CHUNKS added
 * already), -ENOMEM (no room in the node heaps for the page table).
 */
int hpm_malloc_heap_memory_add(const char *name, void *va, size_t len,
			       const uint64_t iova_addrs[], unsigned int n_pages,
			       size_t page_sz);
/*
 * Take back a chunk given by hpm_malloc_heap_memory_add(), exactly
 * (@va and @len as added). -EINVAL (bad argument, or a range that is not
 * one whole chunk), -ENOENT (no such heap or chunk), -EPERM (a node
 * heap), -EBUSY (a block in it is still allocated -- blocks in other
 * threads' caches do not exist here: external heaps have none -- or
 * another live process is still attached to it).
 */
int hpm_malloc_heap_memory_remove(const char *name, void *va, size_t len);
/*
 * In a process other than the one that added it: declare that the chunk
 * @va/@len of heap @name is mapped at @va here. Checked: the range must
 * be mapped and hold that heap's memory (its first block header), else
 * -EFAULT. Other errors as remove, plus -ENOSPC (too many processes
 * attached). Detach before the memory is unmapped; remove refuses
 * (-EBUSY) while another live process is attached.
 */
int hpm_malloc_heap_memory_attach(const char *name, void *va, size_t len);
int hpm_malloc_heap_memory_detach(const char *name, void *va, size_t len);
/*
 * Socket id of heap @name (external heaps, and "socket_N" for node N's
 * heap), or -EINVAL (NULL or bad name), -ENOENT.
 */
int hpm_malloc_heap_get_socket(const char *name);
/*
 * 1 when @socket is an existing external heap, 0 for a node or
 * HPM_SOCKET_ANY, -EINVAL otherwise (as DPDK's -1).
 */
int hpm_malloc_heap_socket_is_external(int socket);

#ifdef __cplusplus
}
#endif

#endif /* HPMEM_MALLOC_H */
