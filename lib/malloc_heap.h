/* SPDX-License-Identifier: MIT */
/* One TLSF heap per NUMA node, embedded by value in the shared config. */
#ifndef HPM_MALLOC_HEAP_H
#define HPM_MALLOC_HEAP_H

#include <stddef.h>
#include <stdint.h>

#include "internal.h"
#include "robust_lock.h"

/*
 * Two-level segregated fit (TLSF): the first level splits sizes by powers
 * of two, the second splits each power of two into HPM_HEAP_SL_COUNT equal
 * classes. Blocks below 512 bytes have one exact class per 16 bytes.
 * The largest block is just under 2^(HPM_HEAP_FL_COUNT + 8) bytes (1 TiB);
 * bigger runs are cut into several runs.
 */
#define HPM_HEAP_SL_LOG2	5
#define HPM_HEAP_SL_COUNT	(1u << HPM_HEAP_SL_LOG2)
#define HPM_HEAP_FL_COUNT	32
/* Distinct VA ranges per heap; VA-adjacent additions extend a run. */
#define HPM_HEAP_MAX_RUNS	64

/* Flags of hpm_heap_alloc(). */
#define HPM_HEAP_F_CONTIG	(1u << 0)	/* IOVA-contiguous block */
#define HPM_HEAP_F_STRICT	(1u << 1)	/* only the requested node */
#define HPM_HEAP_F_ZERO		(1u << 2)	/* zero the returned bytes */
#define HPM_HEAP_F_ALL		(HPM_HEAP_F_CONTIG | HPM_HEAP_F_STRICT | \
				 HPM_HEAP_F_ZERO)

#define HPM_HEAP_MAGIC		0x48504d48u	/* "HPMH" */

struct hpm_elem;

struct hpm_heap_run {
	uintptr_t start;	/* first element header */
	uintptr_t end;		/* one past the end sentinel */
};

/*
 * Shared between processes; every pointer is a VA inside the region, which
 * every process maps at the same address. The first cache line holds the
 * lock and what changes under it; the second what never changes once
 * processes use the heap (read lock-free by every free() and by the thread
 * caches), so lock traffic does not evict it.
 * A process killed while it holds @lock loses nothing but its own blocks:
 * the next locker takes the lock over and rebuilds the free lists and the
 * statistics from the element chain, which every update keeps walkable
 * (see "Surviving a dead lock holder" in malloc_heap.c).
 */
struct hpm_heap {
	hpm_robust_lock_t lock;
	/* Bit fl set iff sl_bitmap[fl] != 0; bit sl of sl_bitmap[fl] iff list non-empty. */
	uint32_t fl_bitmap;
	/* Statistics, updated under the lock. */
	uint64_t total_bytes;
	uint64_t free_bytes;
	uint64_t alloc_bytes;
	uint64_t alloc_count;
	uint64_t free_count;

	/* Read-mostly: set by hpm_heap_init()/hpm_heap_add_memory(). */
	uint32_t magic __hpm_cache_aligned;
	int32_t socket;
	/* Differs on every hpm_heap_init(): thread caches of an older heap are stale. */
	uint64_t instance;
	uint32_t nr_runs;
	/* Bounds of all runs, for a quick "is this ours" test. */
	uintptr_t lo, hi;
	struct hpm_heap_run runs[HPM_HEAP_MAX_RUNS];

	uint32_t sl_bitmap[HPM_HEAP_FL_COUNT] __hpm_cache_aligned;
	struct hpm_elem *free_list[HPM_HEAP_FL_COUNT][HPM_HEAP_SL_COUNT];
} __hpm_cache_aligned;

/* Make @h an empty heap for node @socket. 0 or -EINVAL. */
int hpm_heap_init(struct hpm_heap *h, int socket);

/*
 * Give a VA-contiguous run of node memory to @h. @va and @len must be
 * 16-byte aligned (the core passes 2 MiB runs) and @len at least 64 bytes;
 * a run that starts where an earlier one ends extends it. Element headers
 * sit on a grid (malloc_elem.h): up to 48 bytes at the front of a new run
 * and 63 at the end of any are not used, nor counted in the total. Call it before
 * other threads or processes use the heap. Returns 0, -EINVAL (bad
 * arguments, overlap with the heap's memory) or -ENOSPC when the heap
 * tracks HPM_HEAP_MAX_RUNS separate ranges already.
 */
int hpm_heap_add_memory(struct hpm_heap *h, void *va, size_t len);

/*
 * Allocate @size bytes aligned to @align (power of two, 0 = 16) that do not
 * cross a multiple of @bound in IOVA (0 = no bound; otherwise a power of two
 * >= size), from the heap of @socket (HPM_SOCKET_ANY = the caller's node)
 * and, unless HPM_HEAP_F_STRICT, then from the other nodes.
 * NULL with hpm_errno EINVAL (bad arguments) or ENOMEM.
 */
void *hpm_heap_alloc(int socket, size_t size, size_t align, size_t bound,
		     unsigned int flags);

/*
 * The largest block that can be had on @socket (HPM_SOCKET_ANY: on the
 * node with the largest free block) meeting @align and @flags (no
 * HPM_HEAP_F_STRICT needed): its usable length, a multiple of a cache
 * line, in *@lenp. NULL with hpm_errno ENOMEM when nothing is free, or
 * EINVAL. For memzones of length 0, as in DPDK.
 */
void *hpm_heap_alloc_biggest(int socket, size_t align, unsigned int flags,
			     size_t *lenp);

/* hpm_heap_alloc(HPM_SOCKET_ANY, @size, @align, 0, 0), a little faster. */
void *hpm_heap_alloc_any(size_t size, size_t align);

/*
 * Free a block: 0 (also for NULL), or -EINVAL without touching the heap
 * when @ptr is not a live block (double free, foreign or interior pointer).
 */
int hpm_heap_free(void *ptr);

/* Resize like hpm_realloc_socket(); the heap-side implementation. */
void *hpm_heap_realloc(void *ptr, size_t size, size_t align, int socket,
		       unsigned int flags);

/* Usable size of a live block, 0 when @ptr is not one. */
size_t hpm_heap_usable_size(const void *ptr);

/* Node of a live block, or -EINVAL. */
int hpm_heap_socket_of(const void *ptr);

/* Snapshot of one heap's counters (what hpm_malloc_get_socket_stats reports). */
struct hpm_heap_stats {
	uint64_t total;		/* bytes given by hpm_heap_add_memory() */
	uint64_t free;		/* bytes in free elements, headers included */
	uint64_t alloc;		/* bytes in live elements, headers included */
	uint64_t free_count;
	uint64_t alloc_count;
	uint64_t greatest_free;	/* largest request that can succeed */
	uint32_t runs;
};

/* Zeroes @st for a NULL or uninitialised heap. Returns 0. */
int hpm_heap_stats(struct hpm_heap *h, struct hpm_heap_stats *st);

/*
 * Per-thread caches: hpm_heap_free() keeps blocks below 128 KiB in a small
 * LIFO per size class and thread (process-local memory, no lock), and
 * hpm_heap_alloc() without alignment, bound or contiguity takes them back
 * from there first. At most HPM_HEAP_CACHE_BYTES per node and thread; the
 * heap counts cached blocks as allocated. Setting HPMEM_MALLOC_NOCACHE in
 * the environment disables them.
 * hpm_heap_cache_flush() returns the calling thread's cached blocks to the
 * heaps. It runs at thread exit, before hpm_malloc_validate() and stats,
 * and in hpm_heap_set_table(NULL), which hpm_cleanup() calls before it
 * unmaps the region. Other threads' caches are theirs to flush (at exit);
 * caches of a heap that was re-initialised are dropped, never flushed. A
 * forked child starts with an empty cache.
 */
#define HPM_HEAP_CACHE_BYTES	(1u << 20)
void hpm_heap_cache_flush(void);

/* Check one heap; 0 or -EFAULT (logged). Takes the heap's lock. */
int hpm_heap_validate(struct hpm_heap *h);

/*
 * The heaps in use: after hpm_init() those of the shared config (nodes in
 * its socket_mask), found through hpm_cfg in every process. Before
 * hpm_init() (unit tests running the heap over plain buffers) an array of
 * HPM_MAX_NODES heaps indexed by node set here; memory outside the memseg
 * table counts as IOVA = VA. NULL first flushes the caller's thread cache.
 */
void hpm_heap_set_table(struct hpm_heap *heaps);
struct hpm_heap *hpm_heap_table(void);

#endif /* HPM_MALLOC_HEAP_H */
