/* SPDX-License-Identifier: MIT */
/* One TLSF heap per NUMA node, embedded by value in the shared config. */
#ifndef HPM_MALLOC_HEAP_H
#define HPM_MALLOC_HEAP_H

#include <stddef.h>
#include <stdint.h>

#include <hpmem/malloc.h>

#include "internal.h"
#include "robust_lock.h"

/* Node heaps, then external heaps (socket id HPM_MAX_NODES + i). */
#define HPM_HEAP_SLOTS		(HPM_MAX_NODES + HPM_MAX_EXT_HEAPS)

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

/*
 * A slot with start == end == 0 is empty (a run removed or joined into
 * another); lookups match nothing there and additions reuse it.
 */
struct hpm_heap_run {
	uintptr_t start;	/* first element header */
	uintptr_t end;		/* one past the end sentinel */
	uintptr_t base;		/* first byte given to the heap (<= start) */
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
	uint32_t nr_runs;	/* slots in use or once used (high-water mark) */
	/*
	 * Bumped before any store that takes live memory out of a slot whose
	 * replacement is already published (a split's shrink, a join's clear):
	 * a lock-free lookup that missed rescans when it changed.
	 */
	uint32_t runs_gen;
	/* Bounds of all runs, for a quick "is this ours" test (may be wider). */
	uintptr_t lo, hi;
	struct hpm_heap_run runs[HPM_HEAP_MAX_RUNS];

	uint32_t sl_bitmap[HPM_HEAP_FL_COUNT] __hpm_cache_aligned;
	struct hpm_elem *free_list[HPM_HEAP_FL_COUNT][HPM_HEAP_SL_COUNT];
} __hpm_cache_aligned;

/*
 * Make @h an empty heap for node @socket, or for external heap
 * @socket - HPM_MAX_NODES (< HPM_HEAP_SLOTS). 0 or -EINVAL.
 */
int hpm_heap_init(struct hpm_heap *h, int socket);

/*
 * Give a VA-contiguous range of memory to @h. @va and @len must be
 * 16-byte aligned (the core passes 2 MiB runs) and @len at least 64 bytes;
 * the memory must be mapped at @va in every process that uses the heap
 * before it is added. A range that starts where a run ends extends that
 * run, and its free space merges with the free block at the run's end; a
 * run that then ends where another begins is joined with it when the
 * other's first block is free. Element headers sit on a grid
 * (malloc_elem.h): up to 48 bytes at the front of a new run and 63 at the
 * end of any are not used, nor counted in the total. Safe at any time:
 * other threads and processes may allocate and free meanwhile (see
 * "Adding and removing memory" in malloc_heap.c). Returns 0, -EINVAL (bad
 * arguments, overlap with the heap's memory) or -ENOSPC when the heap
 * tracks HPM_HEAP_MAX_RUNS separate ranges already.
 */
int hpm_heap_add_memory(struct hpm_heap *h, void *va, size_t len);

/* hpm_heap_add_memory() that never extends nor joins runs (one run per call). */
int hpm_heap_add_memory_run(struct hpm_heap *h, void *va, size_t len);

/*
 * Take [@va, @va + @len) out of @h: it must lie in one run, start at the
 * run's first byte or on a 64-byte boundary, end at the run's end or on a
 * 64-byte boundary, and hold no allocated byte (blocks in thread caches
 * count as allocated). The run shrinks, or is split in two: a piece left
 * in front ends in a new sentinel, a piece behind starts with a free
 * block, so the heap stays walkable and every live block keeps its run.
 * Fewer than 128 bytes next to the range that could not form a piece on
 * their own are taken out with it. Safe while other threads and
 * processes allocate and free; the caller may unmap the range once this
 * returns (and once every other process is done with it).
 * 0; -EINVAL (bad arguments, range over several runs or outside the
 * run's bytes); -ENOENT (no run overlaps it); -EBUSY (some byte of it is
 * allocated, or a piece behind would begin with an allocated block);
 * -ENOSPC (a split needs a run slot and all HPM_HEAP_MAX_RUNS are used).
 * Nothing changes on failure.
 */
int hpm_heap_remove_memory(struct hpm_heap *h, void *va, size_t len);

/*
 * Growth on demand (issue #13). When hpm_heap_alloc() (and the malloc,
 * memzone and mempool calls over it) cannot serve a request from a node
 * heap -- the requested node for a strict request, the first node tried
 * otherwise, after every allowed node failed -- it calls @grow with that
 * heap and the request, WITHOUT the heap lock held (growing means system
 * calls and adding memory, which takes the lock; the hook serialises
 * growers itself). The hook returns 0 after it added memory to @h with
 * hpm_heap_add_memory() (the request is then retried once, on every
 * allowed node), or a negative errno (the request fails with ENOMEM).
 * Several threads may call it at once for the same shortage: it should
 * check whether another one grew the heap meanwhile. Process-local (a
 * function pointer is not shared); external heaps never grow. NULL
 * removes the hook.
 */
typedef int (*hpm_heap_grow_fn)(struct hpm_heap *h, size_t size, size_t align,
				size_t bound, unsigned int flags, void *arg);
void hpm_heap_set_grow_hook(hpm_heap_grow_fn grow, void *arg);

/*
 * Shrinking (issue #13). After a free in this process merged a free block
 * of a node heap that holds at least one whole page of @page_sz bytes,
 * @trim is called once the heap lock is dropped, on the freeing thread,
 * with the page-aligned range in that block that hpm_heap_remove_memory()
 * would accept (which may be several pages). The hook applies its policy
 * (floor, hysteresis) and, to release pages, calls
 * hpm_heap_remove_memory() on all or part of it: that call checks again
 * under the lock, so a block allocated in between gives -EBUSY, never a
 * corrupt heap. The hook must not free heap memory itself (no
 * recursion). Cost on the free path when no hook is set or the merged
 * block is smaller than a page: one compare. Process-local; external
 * heaps are never reported. NULL removes the hook.
 */
typedef void (*hpm_heap_trim_fn)(struct hpm_heap *h, void *va, size_t len,
				 void *arg);
void hpm_heap_set_trim_hook(hpm_heap_trim_fn trim, size_t page_sz, void *arg);

/*
 * The largest page-aligned range of @page_sz pages that
 * hpm_heap_remove_memory() would accept in @h right now, in *@va and
 * *@len: 0, or -ENOENT when no free block holds a whole page. A snapshot:
 * the range may be allocated before the caller removes it (-EBUSY then).
 * Takes the lock; flushes the caller's thread cache first.
 */
int hpm_heap_find_free_pages(struct hpm_heap *h, size_t page_sz, void **va,
			     size_t *len);

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

/*
 * Bytes allocated (thread caches included) and free in @h, read under its
 * lock without flushing the caller's thread cache: for dynamic memory's
 * growth and release policy, which runs on the free path (dynmem.c).
 */
void hpm_heap_bytes(struct hpm_heap *h, uint64_t *alloc, uint64_t *free_b);

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
