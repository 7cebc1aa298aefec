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
 * is out of range or @stats NULL. Blocks in other threads' caches count as
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

#ifdef __cplusplus
}
#endif

#endif /* HPMEM_MALLOC_H */
