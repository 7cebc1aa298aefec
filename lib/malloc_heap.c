// SPDX-License-Identifier: MIT
/*
 * Per-node heap: two-level segregated fit (TLSF) over the region's memory,
 * with boundary tags so that a freed block merges with free neighbours at
 * once. All state lives in shared memory; one spinlock per heap.
 */
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <hpmem/init.h>
#include <hpmem/memseg.h>

#include "config.h"
#include "internal.h"
#include "malloc_heap.h"
#include "memseg.h"

#ifndef HPM_DEBUG
#define HPM_DEBUG 0
#endif

/* The fast paths of alloc and free must not call anything. */
#define __hpm_always_inline	inline __attribute__((always_inline))

/*
 * Every block ("element") starts with a 16-byte header:
 *   prev_size  bytes from the physically previous element's header to ours,
 *              0 for the first element of a run (a boundary tag: it lets a
 *              freed block find its previous neighbour in O(1));
 *   info       bits  0..3   flags (ELEM_F_*)
 *              bits  4..39  size of the whole element in bytes (multiple of 16)
 *              bits 40..43  node of the heap that owns it
 *              bits 44..63  ELEM_MAGIC
 *              and bits 40..63 XORed with bits 4..27 of the element's
 *              address (address << 36), so that stray pointers, and copies
 *              of headers at other addresses, are recognised; checking it
 *              is one shift, one xor and one compare
 * A free element keeps its free-list links in the first 16 payload bytes.
 * Debug builds (HPM_DEBUG=1) add an 8-byte trailer cookie at the end of
 * each live element, checked on free and by validation. Each run ends with
 * a 16-byte busy sentinel so that merging never walks off a run.
 * The payload starts right after the header and is therefore 16-aligned.
 */
struct hpm_elem {
	uint64_t prev_size;
	uint64_t info;
};

struct hpm_free_links {
	struct hpm_elem *next;
	struct hpm_elem *prev;
};

/*
 * Headers are read without the heap lock by free()'s checks and the thread
 * caches while a neighbour's operation under the lock may update flag bits
 * or prev_size; atomic accesses keep that well defined. Every writer holds
 * the lock or owns the element. Stores are release stores: each header
 * store is then ordered after every store before it (trailer, the other
 * headers), so a process killed between two of them leaves them in program
 * order, which the crash-safe update order below relies on. On x86-64 both
 * are still plain moves; only the compiler is held back.
 */
static inline uint64_t info_ld(const struct hpm_elem *e)
{
	return __atomic_load_n(&e->info, __ATOMIC_RELAXED);
}

static inline void info_st(struct hpm_elem *e, uint64_t v)
{
	__atomic_store_n(&e->info, v, __ATOMIC_RELEASE);
}

static inline uint64_t prev_ld(const struct hpm_elem *e)
{
	return __atomic_load_n(&e->prev_size, __ATOMIC_RELAXED);
}

static inline void prev_st(struct hpm_elem *e, uint64_t v)
{
	__atomic_store_n(&e->prev_size, v, __ATOMIC_RELEASE);
}

/*
 * Surviving a dead lock holder. The lock (robust_lock.h) is taken over
 * from a process that died holding it, and the taker rebuilds the heap
 * (heap_recover()) from the one thing every update keeps consistent: the
 * element chain of each run, walked from its first header by size alone.
 * Rules that keep it walkable after any single store:
 *  - a new header inside an element is written before the store that
 *    shrinks that element onto it (until then the walk jumps over it);
 *  - an element grows over a neighbour before the neighbour's header is
 *    cleared;
 *  - each such change of the chain is one 64-bit store of a header's
 *    info word (the "commit"), which also carries the free bit, so a block
 *    is either still in its old shape or in its new one.
 * Free lists, bitmaps, prev_size, PREV_FREE and the statistics may be
 * half updated; the rebuild recomputes them all. Two free neighbours that
 * a death leaves behind are merged then. A block the dead process was
 * allocating, and the blocks it held, stay allocated: lost, not corrupt.
 * HEAP_STEP() marks the points where the test hook can kill a holder.
 */
int hpm_heap_crash_countdown;

static __hpm_cold void heap_crash_step(void)
{
	if (!--hpm_heap_crash_countdown)
		raise(SIGKILL);
}

#define HEAP_STEP()							\
	do {								\
		if (unlikely(hpm_heap_crash_countdown))			\
			heap_crash_step();				\
	} while (0)

#define ELEM_HDR		16u
#define ELEM_ALIGN		16u
#define ELEM_MIN		32u	/* header + free-list links */
#define ELEM_F_FREE		(1ull << 0)
#define ELEM_F_PREV_FREE	(1ull << 1)	/* saves reading the previous header */
#define ELEM_F_SENTINEL		(1ull << 2)
#define ELEM_FLAGS		0xfull
#define ELEM_SIZE_MASK		(((1ull << 40) - 1) & ~ELEM_FLAGS)
#define ELEM_SOCK_SHIFT		40
#define ELEM_ADDR_SHIFT		36	/* address bits 4..27 onto bits 40..63 */
#define ELEM_MAGIC		0xa11c5ull	/* 20 bits, above the node */
#define ELEM_TAG_MASK		(~0ull << ELEM_SOCK_SHIFT)

#if HPM_DEBUG
#define ELEM_TRAILER		8u
#define TRAILER_COOKIE		0x7e11c0de5afeb10cull
#else
#define ELEM_TRAILER		0u
#endif

/* Runs are cut so that no element reaches the 40-bit size field's limit. */
#define RUN_MAX			(1ull << 39)
/* Largest request and alignment we even try: keeps all sums below 2^63. */
#define REQ_MAX			(1ull << 39)

#define SMALL_BLOCK		(1u << (HPM_HEAP_SL_LOG2 + 4))	/* 512 */
#define FL_SHIFT		(HPM_HEAP_SL_LOG2 + 4)

/*
 * Heaps used while the library is not initialised: unit tests run the heap
 * over plain buffers. Once hpm_init() has mapped a region, the shared
 * config's heaps and node mask are used instead.
 */
static struct hpm_heap *test_tbl;
static uint32_t test_mask;

static void heap_epoch_bump(void);

/* The heap array and the nodes that have memory; false when there is none. */
static inline bool heaps_get(struct hpm_heap **tbl, uint32_t *mask)
{
	struct hpm_config *cfg = hpm_cfg;

	if (likely(cfg)) {
		*tbl = cfg->heaps;
		*mask = cfg->socket_mask & ((1u << HPM_MAX_NODES) - 1);
		return true;
	}
	*tbl = test_tbl;
	*mask = test_mask;
	return test_tbl != NULL;
}

/* ---- element helpers (all O(1), inlined into the fast paths) ---- */

static inline size_t elem_size(const struct hpm_elem *e)
{
	return info_ld(e) & ELEM_SIZE_MASK;
}

/* Tag bits of element @e's header in heap @h. */
static inline uint64_t heap_tag(int socket)
{
	return (ELEM_MAGIC << 4) | (uint64_t)socket;
}

/* True iff @info carries tag @tag (heap_tag()) for an element at @e. */
static inline bool info_tag_is(uint64_t info, const struct hpm_elem *e,
			       uint64_t tag)
{
	return ((info ^ ((uint64_t)(uintptr_t)e << ELEM_ADDR_SHIFT)) >>
		ELEM_SOCK_SHIFT) == tag;
}

static inline uint64_t elem_tag(const struct hpm_heap *h, const struct hpm_elem *e)
{
	return (heap_tag(h->socket) << ELEM_SOCK_SHIFT) ^
	       ((uint64_t)(uintptr_t)e << ELEM_ADDR_SHIFT);
}

static inline bool elem_tag_ok(const struct hpm_heap *h, const struct hpm_elem *e)
{
	return (info_ld(e) & ELEM_TAG_MASK) == elem_tag(h, e);
}

static inline struct hpm_elem *elem_at(uintptr_t a)
{
	return (struct hpm_elem *)a;
}

static inline struct hpm_elem *elem_next(const struct hpm_elem *e)
{
	return elem_at((uintptr_t)e + elem_size(e));
}

static inline struct hpm_free_links *elem_links(struct hpm_elem *e)
{
	return (struct hpm_free_links *)(e + 1);
}

static inline void *elem_data(struct hpm_elem *e)
{
	return e + 1;
}

static inline size_t elem_usable(const struct hpm_elem *e)
{
	return elem_size(e) - ELEM_HDR - ELEM_TRAILER;
}

static inline void elem_set(const struct hpm_heap *h, struct hpm_elem *e,
			    size_t size, uint64_t flags)
{
	info_st(e, elem_tag(h, e) | size | flags);
}

#if HPM_DEBUG
static inline uint64_t *elem_trailer(struct hpm_elem *e)
{
	return (uint64_t *)((uintptr_t)e + elem_size(e) - ELEM_TRAILER);
}

static inline void elem_trailer_set(struct hpm_elem *e)
{
	*elem_trailer(e) = TRAILER_COOKIE ^ (uintptr_t)e;
}

/* The trailer for @e once it is @size bytes, written before it is. */
static inline void elem_trailer_set_n(struct hpm_elem *e, size_t size)
{
	*(uint64_t *)((uintptr_t)e + size - ELEM_TRAILER) = TRAILER_COOKIE ^ (uintptr_t)e;
}

static inline bool elem_trailer_ok(struct hpm_elem *e)
{
	return *elem_trailer(e) == (TRAILER_COOKIE ^ (uintptr_t)e);
}
#else
static inline void elem_trailer_set(struct hpm_elem *e) { (void)e; }
static inline void elem_trailer_set_n(struct hpm_elem *e, size_t size)
{
	(void)e;
	(void)size;
}
static inline bool elem_trailer_ok(struct hpm_elem *e) { (void)e; return true; }
#endif

/*
 * Smallest live element: its payload holds a thread cache's link and
 * cookie (16 bytes), which must not cover a debug trailer.
 */
#define ELEM_MIN_LIVE		(ELEM_MIN + (ELEM_TRAILER ? 16u : 0u))

/* Element size for a request of @size bytes; @size <= REQ_MAX. */
static inline size_t elem_need(size_t size)
{
	size_t n = HPM_ALIGN_UP(size + ELEM_HDR + ELEM_TRAILER, (size_t)ELEM_ALIGN);

	return n < ELEM_MIN_LIVE ? ELEM_MIN_LIVE : n;
}

/* ---- TLSF bin math: no division, one bit scan ---- */

static inline unsigned int fls64(uint64_t x)
{
	return 63 - (unsigned int)__builtin_clzll(x);
}

/* Bin that holds a free block of @s bytes. */
static inline void mapping_insert(size_t s, unsigned int *fl, unsigned int *sl)
{
	if (s < SMALL_BLOCK) {
		*fl = 0;
		*sl = (unsigned int)(s >> 4);
	} else {
		unsigned int f = fls64(s);

		*fl = f - (FL_SHIFT - 1);
		*sl = (unsigned int)(s >> (f - HPM_HEAP_SL_LOG2)) &
		      (HPM_HEAP_SL_COUNT - 1);
	}
}

/*
 * First bin whose every block holds @s bytes: round @s up to the next class
 * boundary ("good fit"), so the head of any non-empty bin from there on fits
 * and the search never walks a list. False when beyond the last bin.
 */
static inline bool mapping_search(size_t s, unsigned int *fl, unsigned int *sl)
{
	if (s >= SMALL_BLOCK)
		s += (1ull << (fls64(s) - HPM_HEAP_SL_LOG2)) - 1;
	mapping_insert(s, fl, sl);
	return *fl < HPM_HEAP_FL_COUNT;
}

/* Head of the first non-empty bin at or above (fl, sl), which it updates. */
static inline struct hpm_elem *find_suitable(struct hpm_heap *h,
					     unsigned int *fl, unsigned int *sl)
{
	uint32_t sl_map = h->sl_bitmap[*fl] & (~0u << *sl);

	if (!sl_map) {
		uint32_t fl_map = *fl + 1 < HPM_HEAP_FL_COUNT ?
				  h->fl_bitmap & (~0u << (*fl + 1)) : 0;

		if (!fl_map)
			return NULL;
		*fl = (unsigned int)__builtin_ctz(fl_map);
		sl_map = h->sl_bitmap[*fl];
	}
	*sl = (unsigned int)__builtin_ctz(sl_map);
	return h->free_list[*fl][*sl];
}

static inline void free_insert(struct hpm_heap *h, struct hpm_elem *e)
{
	struct hpm_free_links *l = elem_links(e);
	unsigned int fl, sl;
	struct hpm_elem *head;

	mapping_insert(elem_size(e), &fl, &sl);
	head = h->free_list[fl][sl];
	l->next = head;
	l->prev = NULL;
	if (head)
		elem_links(head)->prev = e;
	HEAP_STEP();
	h->free_list[fl][sl] = e;
	h->sl_bitmap[fl] |= 1u << sl;
	h->fl_bitmap |= 1u << fl;
	h->free_bytes += elem_size(e);
	h->free_count++;
}

static inline void free_remove(struct hpm_heap *h, struct hpm_elem *e)
{
	struct hpm_free_links *l = elem_links(e);
	unsigned int fl, sl;

	mapping_insert(elem_size(e), &fl, &sl);
	if (l->next)
		elem_links(l->next)->prev = l->prev;
	HEAP_STEP();
	if (l->prev) {
		elem_links(l->prev)->next = l->next;
	} else {
		h->free_list[fl][sl] = l->next;
		if (!l->next) {
			h->sl_bitmap[fl] &= ~(1u << sl);
			if (!h->sl_bitmap[fl])
				h->fl_bitmap &= ~(1u << fl);
		}
	}
	h->free_bytes -= elem_size(e);
	h->free_count--;
}

static __hpm_cold void heap_recover(struct hpm_heap *h, uint64_t dead);

/* The heap's lock; repairs the heap first when its holder died. */
static inline void heap_lock(struct hpm_heap *h)
{
	uint64_t dead = hpm_robust_lock(&h->lock);

	if (unlikely(dead))
		heap_recover(h, dead);
}

static inline void heap_unlock(struct hpm_heap *h)
{
	hpm_robust_unlock(&h->lock);
}

/*
 * Thread cache bookkeeping inside a cached block (see "per-thread caches"),
 * needed early because every pointer check looks for the cookie.
 */
#define TC_CLASSES	96
#define TC_MAX_NEED	(1u << 17)
#define TC_COOKIE	0x6870632d63616368ull

struct tc_link {
	struct hpm_elem *next;
	uint64_t cookie;
};

static inline struct tc_link *tc_link(struct hpm_elem *e)
{
	return (struct tc_link *)(e + 1);
}

/* ---- carving and merging (heap lock held) ---- */

/*
 * Turn the free element @e (already off its list) into a live element at
 * @at (== @e, or at least ELEM_MIN bytes into it) of @need bytes; the front
 * gap and a tail of at least ELEM_MIN bytes go back to the free lists.
 * Crash-safe order: each new header before the store that exposes it.
 */
static struct hpm_elem *carve(struct hpm_heap *h, struct hpm_elem *e,
			      uintptr_t at, size_t need)
{
	size_t size = elem_size(e);
	struct hpm_elem *next = elem_at((uintptr_t)e + size);

	if (at != (uintptr_t)e) {
		size_t gap = at - (uintptr_t)e;
		struct hpm_elem *n = elem_at(at);

		/* Free until it is committed below: a death leaves no leak. */
		prev_st(n, gap);
		elem_set(h, n, size - gap, ELEM_F_FREE | ELEM_F_PREV_FREE);
		HEAP_STEP();
		/* @e's own previous element is busy: no PREV_FREE. */
		elem_set(h, e, gap, ELEM_F_FREE);
		HEAP_STEP();
		prev_st(next, size - gap);
		free_insert(h, e);
		e = n;
		size -= gap;
	}

	if (size - need >= ELEM_MIN) {
		struct hpm_elem *r = elem_at((uintptr_t)e + need);

		prev_st(r, need);
		elem_set(h, r, size - need, ELEM_F_FREE);
		HEAP_STEP();
		prev_st(next, size - need);
		/* @next already has PREV_FREE: it followed a free block. */
		free_insert(h, r);
		size = need;
	} else {
		info_st(next, info_ld(next) & ~ELEM_F_PREV_FREE);
	}
	/* Stale bytes from an earlier life must not read as "cached". */
	tc_link(e)->cookie = 0;
	elem_trailer_set_n(e, size);
	HEAP_STEP();
	/* The commit: @e becomes live at its final size in one store. */
	info_st(e, (info_ld(e) & ELEM_F_PREV_FREE) | elem_tag(h, e) | size);
	HEAP_STEP();
	h->alloc_bytes += size;
	h->alloc_count++;
	return e;
}

/*
 * Release the tail of live element @e beyond @need bytes if it is worth a
 * block, merging it with a free next neighbour.
 */
static void shrink_live(struct hpm_heap *h, struct hpm_elem *e, size_t need)
{
	size_t size = elem_size(e);
	struct hpm_elem *next = elem_at((uintptr_t)e + size);
	struct hpm_elem *r, *absorbed = NULL;
	size_t rsize;

	if (size - need < ELEM_MIN)
		return;
	r = elem_at((uintptr_t)e + need);
	rsize = size - need;
	if (info_ld(next) & ELEM_F_FREE) {
		free_remove(h, next);
		rsize += elem_size(next);
		absorbed = next;
		next = elem_at((uintptr_t)r + rsize);
	}
	/* Inside @e (and over @absorbed) until @e shrinks onto it. */
	prev_st(r, need);
	elem_set(h, r, rsize, ELEM_F_FREE);
	elem_trailer_set_n(e, need);
	HEAP_STEP();
	info_st(e, (info_ld(e) & ~ELEM_SIZE_MASK) | need);
	HEAP_STEP();
	if (absorbed)
		info_st(absorbed, 0);
	prev_st(next, rsize);
	info_st(next, info_ld(next) | ELEM_F_PREV_FREE);
	free_insert(h, r);
	h->alloc_bytes -= size - need;
}

/* Free live element @e, merging with free neighbours. */
static void release(struct hpm_heap *h, struct hpm_elem *e)
{
	size_t size = elem_size(e);
	struct hpm_elem *next = elem_at((uintptr_t)e + size);
	struct hpm_elem *start = e, *absorbed = NULL;

	h->alloc_bytes -= size;
	h->alloc_count--;
	if (info_ld(next) & ELEM_F_FREE) {
		free_remove(h, next);
		size += elem_size(next);
		absorbed = next;
		next = elem_at((uintptr_t)e + size);
	}
	if (info_ld(e) & ELEM_F_PREV_FREE) {
		start = elem_at((uintptr_t)e - prev_ld(e));
		free_remove(h, start);
		size += elem_size(start);
	}
	HEAP_STEP();
	/*
	 * The commit: one header now spans @e and its free neighbours. Free
	 * blocks are never adjacent, so @start's previous one is busy.
	 */
	elem_set(h, start, size, ELEM_F_FREE);
	HEAP_STEP();
	/* A later free of an absorbed pointer must not look valid. */
	if (start != e)
		info_st(e, 0);
	if (absorbed)
		info_st(absorbed, 0);
	prev_st(next, size);
	info_st(next, info_ld(next) | ELEM_F_PREV_FREE);
	free_insert(h, start);
}

/* ---- finding a heap and checking pointers ---- */

void hpm_heap_set_table(struct hpm_heap *heaps)
{
	uint32_t mask = 0;

	/*
	 * hpm_cleanup() clears the table while the region is still mapped:
	 * the last chance to give this thread's cached blocks back (a
	 * secondary's main thread would otherwise keep them allocated).
	 */
	if (!heaps)
		hpm_heap_cache_flush();
	for (int i = 0; heaps && i < HPM_MAX_NODES; i++)
		if (heaps[i].magic == HPM_HEAP_MAGIC && heaps[i].nr_runs)
			mask |= 1u << i;
	test_tbl = heaps;
	test_mask = mask;
	heap_epoch_bump();
}

struct hpm_heap *hpm_heap_table(void)
{
	struct hpm_heap *tbl;
	uint32_t mask;

	return heaps_get(&tbl, &mask) ? tbl : NULL;
}

/*
 * The heap and run holding @p, or NULL. Runs never change once processes
 * use the heap, so this needs no lock; it guarantees that the header in
 * front of @p is mapped memory before anyone reads it.
 */
static __hpm_always_inline struct hpm_heap *
heap_of_ptr(uintptr_t p, const struct hpm_heap_run **run)
{
	struct hpm_heap *tbl;
	uint32_t mask;

	if (!heaps_get(&tbl, &mask))
		return NULL;
	while (mask) {
		struct hpm_heap *h = &tbl[__builtin_ctz(mask)];

		mask &= mask - 1;
		if (p < h->lo || p >= h->hi)
			continue;
		for (uint32_t i = 0; i < h->nr_runs; i++) {
			if (p >= h->runs[i].start && p < h->runs[i].end) {
				*run = &h->runs[i];
				return h;
			}
		}
	}
	return NULL;
}

/*
 * NULL when @p is the payload of a live block of @h, else why not. Needs
 * no lock (relaxed loads). The address-bound tag, flags and sizes in our
 * own header must be right; @thorough also checks the next header's
 * boundary tag, which catches overruns but costs a cache line for big
 * blocks, so the lock-free path of free() leaves it to the cache drain.
 */
static __hpm_always_inline const char *
elem_why(struct hpm_heap *h, const struct hpm_heap_run *run, uintptr_t p,
	 bool thorough, size_t *sizep)
{
	struct hpm_elem *e = elem_at(p - ELEM_HDR);
	uint64_t info, prev;
	size_t size;

	if (unlikely((p & (ELEM_ALIGN - 1)) || (uintptr_t)e < run->start))
		return "not a block";
	info = info_ld(e);
	if (unlikely((info & ELEM_TAG_MASK) != elem_tag(h, e) || (info & ELEM_F_SENTINEL)))
		return "not a block (bad header)";
	if (unlikely(info & ELEM_F_FREE))
		return "already free (double free)";
	size = info & ELEM_SIZE_MASK;
	if (unlikely(size < ELEM_MIN_LIVE || size > run->end - ELEM_HDR - (uintptr_t)e))
		return "not a block (bad size)";
	if (thorough) {
		prev = prev_ld(e);
		if ((prev == 0) != ((uintptr_t)e == run->start) ||
		    prev > (uintptr_t)e - run->start)
			return "not a block (bad boundary tag)";
		if (!elem_tag_ok(h, elem_next(e)) || prev_ld(elem_next(e)) != size)
			return "not a block or overrun (next header)";
	}
	if (unlikely(!elem_trailer_ok(e)))
		return "trailer cookie overwritten (overrun)";
	*sizep = size;
	return NULL;
}

/* In a thread cache: every live payload has room for the link and cookie. */
static inline bool elem_cached(struct hpm_elem *e)
{
	return tc_link(e)->cookie == (TC_COOKIE ^ (uintptr_t)e);
}

/* The element of live block @p, or NULL after logging why not. */
static struct hpm_elem *elem_check(struct hpm_heap *h,
				   const struct hpm_heap_run *run, uintptr_t p,
				   const char *what)
{
	size_t size;
	const char *why = elem_why(h, run, p, true, &size);

	if (!why && unlikely(elem_cached(elem_at(p - ELEM_HDR))))
		why = "already free (double free, cached)";

	if (likely(!why))
		return elem_at(p - ELEM_HDR);
	hpm_log(HPM_LOG_ERR, "%s(%p): %s", what, (void *)p, why);
	return NULL;
}

/* ---- setup ---- */

/* Unique enough across processes and re-inits at the same address; never 0. */
static uint64_t heap_instance(void)
{
	static _Atomic uint64_t seq;
	struct timespec ts;
	uint64_t v;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	v = ((uint64_t)getpid() << 40) ^ ((uint64_t)ts.tv_sec << 30) ^
	    (uint64_t)ts.tv_nsec ^ (atomic_fetch_add(&seq, 1) << 52);
	return v ? v : 1;
}

int hpm_heap_init(struct hpm_heap *h, int socket)
{
	if (!h || socket < 0 || socket >= HPM_MAX_NODES)
		return hpm_fail(EINVAL);
	memset(h, 0, sizeof(*h));
	hpm_robust_lock_init(&h->lock);
	h->socket = socket;
	h->instance = heap_instance();
	h->lo = UINTPTR_MAX;
	h->magic = HPM_HEAP_MAGIC;
	if (test_tbl && h >= test_tbl && h < test_tbl + HPM_MAX_NODES)
		test_mask &= ~(1u << (h - test_tbl));
	heap_epoch_bump();
	return 0;
}

static void run_format(struct hpm_heap *h, uintptr_t va, size_t len)
{
	struct hpm_elem *e = elem_at(va);
	struct hpm_elem *s = elem_at(va + len - ELEM_HDR);

	prev_st(e, 0);
	elem_set(h, e, len - ELEM_HDR, ELEM_F_FREE);
	prev_st(s, len - ELEM_HDR);
	elem_set(h, s, ELEM_HDR, ELEM_F_SENTINEL | ELEM_F_PREV_FREE);
	free_insert(h, e);
}

/* Append [va, va+len) to @run, whose end it touches: the old sentinel becomes free space. */
static void run_extend(struct hpm_heap *h, struct hpm_heap_run *run,
		       uintptr_t va, size_t len)
{
	struct hpm_elem *e = elem_at(run->end - ELEM_HDR);
	struct hpm_elem *s = elem_at(va + len - ELEM_HDR);
	uint64_t prev_free = info_ld(e) & ELEM_F_PREV_FREE;

	elem_set(h, e, len, ELEM_F_FREE | prev_free);
	prev_st(s, len);
	elem_set(h, s, ELEM_HDR, ELEM_F_SENTINEL | ELEM_F_PREV_FREE);
	run->end = va + len;
	if (prev_free) {
		struct hpm_elem *prev = elem_at((uintptr_t)e - prev_ld(e));
		size_t size = elem_size(prev) + len;

		free_remove(h, prev);
		info_st(e, 0);
		elem_set(h, prev, size, ELEM_F_FREE);
		prev_st(s, size);
		e = prev;
	}
	free_insert(h, e);
}

static int add_chunk(struct hpm_heap *h, uintptr_t va, size_t len)
{
	for (uint32_t i = 0; i < h->nr_runs; i++) {
		struct hpm_heap_run *r = &h->runs[i];

		if (va < r->end && va + len > r->start)
			return hpm_fail(EINVAL);
	}
	for (uint32_t i = 0; i < h->nr_runs; i++) {
		struct hpm_heap_run *r = &h->runs[i];

		if (r->end == va && r->end - r->start + len <= RUN_MAX) {
			run_extend(h, r, va, len);
			goto done;
		}
	}
	if (h->nr_runs == HPM_HEAP_MAX_RUNS)
		return hpm_fail(ENOSPC);
	h->runs[h->nr_runs].start = va;
	h->runs[h->nr_runs].end = va + len;
	h->nr_runs++;
	run_format(h, va, len);
done:
	h->total_bytes += len;
	if (va < h->lo)
		h->lo = va;
	if (va + len > h->hi)
		h->hi = va + len;
	return 0;
}

int hpm_heap_add_memory(struct hpm_heap *h, void *va, size_t len)
{
	uintptr_t a = (uintptr_t)va;
	int ret = 0;

	if (!h || h->magic != HPM_HEAP_MAGIC || !va ||
	    (a & (ELEM_ALIGN - 1)) || (len & (ELEM_ALIGN - 1)) ||
	    len < 64 || a + len < a)
		return hpm_fail(EINVAL);

	heap_lock(h);
	while (len && !ret) {
		/* Keep every piece a usable run: no sliver at the end. */
		size_t n = len > RUN_MAX + 64 ? RUN_MAX : len;

		ret = add_chunk(h, a, n);
		a += n;
		len -= n;
	}
	heap_unlock(h);
	if (!ret && test_tbl && h >= test_tbl && h < test_tbl + HPM_MAX_NODES)
		test_mask |= 1u << (h - test_tbl);
	heap_epoch_bump();
	return ret;
}

/* ---- allocation ---- */

/* IOVA of @va; memory outside the memseg table (unit tests) is IOVA = VA. */
static uint64_t heap_iova(uintptr_t va)
{
	uint64_t iova = hpm_virt2iova((const void *)va);

	return iova == HPM_BAD_IOVA ? va : iova;
}

static bool heap_contig(uintptr_t va, size_t len)
{
	if (hpm_virt2iova((const void *)va) == HPM_BAD_IOVA)
		return true;
	return hpm_memseg_iova_contig((const void *)va, len);
}

/*
 * Payload address inside free element @e for a block of @size user bytes
 * (@need element bytes) meeting @align, @bound and contiguity, or 0.
 * Each retry moves forward, so this ends.
 */
static uintptr_t place(struct hpm_elem *e, size_t size, size_t need,
		       size_t align, size_t bound, bool contig)
{
	uintptr_t start = (uintptr_t)e;
	uintptr_t end = start + elem_size(e);
	uintptr_t p = HPM_ALIGN_UP(start + ELEM_HDR, align);

	for (;;) {
		if (p - ELEM_HDR != start && p - ELEM_HDR - start < ELEM_MIN)
			p = HPM_ALIGN_UP(start + ELEM_HDR + ELEM_MIN, align);
		if (p - ELEM_HDR + need > end)
			return 0;
		if (bound) {
			uint64_t i0 = heap_iova(p), i1 = heap_iova(p + size - 1);

			if ((i0 ^ i1) & ~(uint64_t)(bound - 1)) {
				p = HPM_ALIGN_UP(p + (bound - (i0 & (bound - 1))), align);
				continue;
			}
		}
		if (contig && !heap_contig(p, size)) {
			const struct hpm_memseg *ms = hpm_virt2memseg((const void *)p);
			size_t pg = ms && ms->page_sz ? ms->page_sz : 4096;

			p = HPM_ALIGN_UP(HPM_ALIGN_UP(p + 1, pg), align);
			continue;
		}
		return p;
	}
}

/*
 * Slow path for bounded or IOVA-contiguous requests: every free block that
 * is large enough is a candidate, since a constraint can reject any of
 * them. Linear in the number of free blocks; memzones, not malloc, use it.
 */
static struct hpm_elem *take_constrained(struct hpm_heap *h, size_t size,
					 size_t need, size_t align,
					 size_t bound, bool contig)
{
	unsigned int fl0, sl0;

	mapping_insert(need, &fl0, &sl0);
	for (unsigned int fl = fl0; fl < HPM_HEAP_FL_COUNT; fl++) {
		uint32_t map = h->sl_bitmap[fl];

		if (fl == fl0)
			map &= ~0u << sl0;
		while (map) {
			unsigned int sl = (unsigned int)__builtin_ctz(map);

			map &= map - 1;
			for (struct hpm_elem *e = h->free_list[fl][sl]; e;
			     e = elem_links(e)->next) {
				uintptr_t p;

				if (elem_size(e) < need)
					continue;
				p = place(e, size, need, align, bound, contig);
				if (p) {
					free_remove(h, e);
					return carve(h, e, p - ELEM_HDR, need);
				}
			}
		}
	}
	return NULL;
}

/* A block of @search bytes from the bin that would hold it, scanning it. */
static __hpm_cold struct hpm_elem *take_exact(struct hpm_heap *h, size_t search)
{
	unsigned int fl, sl;

	mapping_insert(search, &fl, &sl);
	if (fl >= HPM_HEAP_FL_COUNT)
		return NULL;
	for (struct hpm_elem *e = h->free_list[fl][sl]; e; e = elem_links(e)->next)
		if (elem_size(e) >= search)
			return e;
	return NULL;
}

static struct hpm_elem *heap_take(struct hpm_heap *h, size_t size, size_t need,
				  size_t align, size_t bound, unsigned int flags)
{
	struct hpm_elem *e;
	unsigned int fl, sl;
	size_t search;
	uintptr_t at;

	if (unlikely(bound || (flags & HPM_HEAP_F_CONTIG)))
		return take_constrained(h, size, need, align, bound,
					flags & HPM_HEAP_F_CONTIG);

	/* Room for any front gap, so that the first block found fits. */
	search = align > ELEM_ALIGN ? need + align + ELEM_MIN : need;
	/*
	 * Exact reuse first: the head of the bin @search itself falls in
	 * often fits (a block of the same size was just freed). Only the head
	 * is looked at, so this stays O(1); good fit from the next class up
	 * otherwise, where any head fits.
	 */
	mapping_insert(search, &fl, &sl);
	e = fl < HPM_HEAP_FL_COUNT ? h->free_list[fl][sl] : NULL;
	if (e && elem_size(e) < search)
		e = NULL;
	if (!e && likely(mapping_search(search, &fl, &sl)))
		e = find_suitable(h, &fl, &sl);
	if (unlikely(!e)) {
		/* Near exhaustion: the rounded-up bin may be empty while ours fits. */
		e = take_exact(h, search);
		if (!e)
			return NULL;
	}
	free_remove(h, e);
	at = (uintptr_t)e;
	if (align > ELEM_ALIGN) {
		uintptr_t p = HPM_ALIGN_UP(at + ELEM_HDR, align);

		if (p - ELEM_HDR != at && p - ELEM_HDR - at < ELEM_MIN)
			p = HPM_ALIGN_UP(at + ELEM_HDR + ELEM_MIN, align);
		at = p - ELEM_HDR;
	}
	return carve(h, e, at, need);
}

/* ---- per-thread caches ---- */

/*
 * A cached block is a live element (the heap counts it as allocated) on a
 * LIFO list of this thread. Its first payload word links the list, the
 * second holds TC_COOKIE ^ its address, so that freeing it again is seen
 * as a double free; the cookie is cleared when the block leaves the cache.
 * Classes: exact 16-byte steps below 512 bytes, then 8 per power of two up
 * to TC_MAX_NEED.
 */
struct tc_bin {
	struct hpm_elem *head;
	uint32_t count;
	uint32_t max;		/* blocks kept: many small ones, few large ones */
};

/* One node's bins; blocks of a heap instance other than @instance are stale. */
struct tc_node {
	uint64_t instance;	/* 0 = none */
	size_t bytes;
	struct tc_bin bin[TC_CLASSES];
};

struct tcache {
	/*
	 * The fast paths serve one heap and one of its runs, bound by the
	 * last slow-path free: valid while @epoch is heap_epoch, which every
	 * change of the heap table, of a heap's memory or a re-init bumps
	 * (so the region is still mapped and @cur matches the heap). The
	 * bound heap's instance was checked when it was bound.
	 */
	unsigned long epoch;	/* 0 = nothing bound */
	uintptr_t run_lo;	/* first header of the bound run */
	uintptr_t run_span16;	/* (run end - run_lo) / 16 */
	uint64_t tag;		/* heap_tag() of the bound heap */
	struct tc_node *cur;	/* its bins */
	int cur_socket;
	int node;		/* cached hpm_socket_id() */
	unsigned int node_ttl;
	struct tc_node nodes[HPM_MAX_NODES];
};

/*
 * A pointer, not the struct: initial-exec TLS must stay small for dlopen().
 * Without a cache it points to tc_none, never written and never bound
 * (epoch 0), so that the fast paths need no NULL test.
 */
static struct tcache tc_none;
static __thread struct tcache *tc_self __attribute__((tls_model("initial-exec"))) =
	&tc_none;

/* This thread's cache, or NULL. */
static inline struct tcache *tc_mine(void)
{
	struct tcache *tc = tc_self;

	return tc == &tc_none ? NULL : tc;
}
static pthread_once_t tc_once = PTHREAD_ONCE_INIT;
static pthread_key_t tc_key;
static bool tc_off;
/* Process-local; never 0, so a zeroed cache binds nothing. */
static unsigned long heap_epoch = 1;

static inline unsigned long heap_epoch_ld(void)
{
	return __atomic_load_n(&heap_epoch, __ATOMIC_RELAXED);
}

/* Unbinds every thread's fast paths (each rebinds on its next slow free). */
static void heap_epoch_bump(void)
{
	__atomic_fetch_add(&heap_epoch, 1, __ATOMIC_RELAXED);
}

/*
 * Class of element size @need < TC_MAX_NEED by table (a shift and a byte
 * load instead of a compare and a bit scan; 8 KiB of which a program
 * touches the lines of the sizes it uses); both tables are set up by
 * tc_global_init() before any cache exists.
 */
static uint8_t tc_cls_tab[TC_MAX_NEED >> 4];
static uint8_t tc_max_tab[TC_CLASSES];

static unsigned int tc_class_calc(size_t need)
{
	unsigned int f;

	if (need < SMALL_BLOCK)
		return (unsigned int)(need >> 4);
	f = fls64(need);
	return 32 + (f - FL_SHIFT) * 8 + ((unsigned int)(need >> (f - 3)) & 7);
}

static inline unsigned int tc_class(size_t need)
{
	return tc_cls_tab[need >> 4];
}

static void tc_tables_init(void)
{
	for (unsigned int i = 0; i < TC_MAX_NEED >> 4; i++)
		tc_cls_tab[i] = (uint8_t)tc_class_calc((size_t)i << 4);
	for (unsigned int c = 0; c < TC_CLASSES; c++) {
		/* Smallest element size of class @c. */
		size_t lo = c < 32 ? (size_t)c << 4 :
			    (size_t)(8 + (c - 32) % 8) << ((c - 32) / 8 + FL_SHIFT - 3);

		tc_max_tab[c] = lo < 1024 ? 32 : lo < 8192 ? 16 : lo < 32768 ? 8 : 4;
	}
}

/* A cached block of @h still as we left it (the list runs through user memory). */
static inline bool tc_intact(struct hpm_heap *h, struct hpm_elem *e)
{
	const struct hpm_heap_run *run = NULL;
	uintptr_t p = (uintptr_t)elem_data(e);

	size_t size;

	return heap_of_ptr(p, &run) == h && !elem_why(h, run, p, true, &size) &&
	       elem_cached(e);
}

/*
 * Written after free (or a corrupt heap): the list runs through the block,
 * so neither it nor what follows can be trusted. They are leaked rather
 * than handed out or merged.
 */
static __hpm_cold void tc_corrupt(struct hpm_heap *h, struct hpm_elem *e)
{
	hpm_log(HPM_LOG_ERR, "heap %d: cached block %p was written after free; "
		"leaking it and the blocks cached behind it", h->socket,
		(void *)elem_data(e));
}

/* Return the blocks of @b beyond the first @keep to heap @h, in one lock hold. */
static void tc_drain(struct tcache *tc, struct hpm_heap *h, struct tc_bin *b,
		     uint32_t keep)
{
	struct hpm_elem **pp = &b->head;
	struct hpm_elem *e;
	uint32_t i;

	for (i = 0; i < keep && *pp; i++) {
		if (unlikely(!tc_intact(h, *pp))) {
			tc_corrupt(h, *pp);
			break;
		}
		pp = &tc_link(*pp)->next;
	}
	e = i < keep ? NULL : *pp;
	*pp = NULL;
	b->count = i;
	if (!e)
		return;
	heap_lock(h);
	while (e) {
		struct hpm_elem *next;

		if (unlikely(!tc_intact(h, e))) {
			tc_corrupt(h, e);
			break;
		}
		/* Read before release() reuses the payload for free-list links. */
		next = tc_link(e)->next;
		tc->nodes[h->socket].bytes -= elem_size(e);
		tc_link(e)->cookie = 0;
		release(h, e);
		e = next;
	}
	heap_unlock(h);
}

/* Forget (never flush) bins of a heap that was re-initialised. */
static void tc_rebind(struct tcache *tc, int s, uint64_t instance)
{
	memset(tc->nodes[s].bin, 0, sizeof(tc->nodes[s].bin));
	for (unsigned int c = 0; c < TC_CLASSES; c++)
		tc->nodes[s].bin[c].max = tc_max_tab[c];
	tc->nodes[s].bytes = 0;
	tc->nodes[s].instance = instance;
}

static void tc_flush(struct tcache *tc)
{
	struct hpm_heap *tbl;
	uint32_t mask;

	tc->epoch = 0;
	if (!heaps_get(&tbl, &mask))
		return;
	for (int s = 0; s < HPM_MAX_NODES; s++) {
		if (!tc->nodes[s].instance)
			continue;
		if (!(mask & (1u << s)) || tbl[s].instance != tc->nodes[s].instance) {
			tc_rebind(tc, s, 0);
			continue;
		}
		for (unsigned int c = 0; c < TC_CLASSES; c++)
			if (tc->nodes[s].bin[c].head)
				tc_drain(tc, &tbl[s], &tc->nodes[s].bin[c], 0);
	}
}

static void tc_destructor(void *arg)
{
	struct tcache *tc = arg;

	tc_flush(tc);
	tc_self = &tc_none;
	free(tc);
}

/* The forked child shares the heap but not our cache: forget it. */
static void tc_atfork_child(void)
{
	struct tcache *tc = tc_mine();

	if (tc) {
		memset(tc, 0, sizeof(*tc));
		tc->node = -1;
	}
}

static void tc_global_init(void)
{
	tc_tables_init();
	tc_off = getenv("HPMEM_MALLOC_NOCACHE") != NULL;
	if (pthread_key_create(&tc_key, tc_destructor) ||
	    pthread_atfork(NULL, NULL, tc_atfork_child))
		tc_off = true;
}

static __hpm_cold struct tcache *tc_create(void)
{
	struct tcache *tc;

	pthread_once(&tc_once, tc_global_init);
	if (tc_off)
		return NULL;
	tc = calloc(1, sizeof(*tc));
	if (!tc)
		return NULL;
	tc->node = -1;
	if (pthread_setspecific(tc_key, tc)) {
		free(tc);
		return NULL;
	}
	tc_self = tc;
	return tc;
}

void hpm_heap_cache_flush(void)
{
	struct tcache *tc = tc_mine();

	if (tc)
		tc_flush(tc);
}

/* Point the fast paths of @tc at heap @h (current instance) and its @run. */
static void tc_bind(struct tcache *tc, struct hpm_heap *h,
		    const struct hpm_heap_run *run)
{
	struct hpm_heap *tbl;
	uint32_t mask;

	tc->run_lo = run->start;
	tc->run_span16 = (run->end - run->start) >> 4;
	tc->tag = heap_tag(h->socket);
	tc->cur = &tc->nodes[h->socket];
	tc->cur_socket = h->socket;
	/* One node with memory: HPM_SOCKET_ANY always means it. */
	if (heaps_get(&tbl, &mask) && mask && !(mask & (mask - 1))) {
		tc->node = __builtin_ctz(mask);
		tc->node_ttl = UINT32_MAX;
	}
	tc->epoch = heap_epoch_ld();
}

/* Cache live block @e of @h when there is room: the slow path of free(). */
static __attribute__((noinline)) bool tc_put_slow(struct hpm_heap *h,
						 struct hpm_elem *e)
{
	struct tcache *tc = tc_mine();
	size_t size = elem_size(e);
	int s = h->socket;
	struct tc_node *n;
	struct tc_bin *b;

	if (size >= TC_MAX_NEED)
		return false;
	if (!tc) {
		tc = tc_create();
		if (!tc)
			return false;
	}
	n = &tc->nodes[s];
	if (n->instance != h->instance)
		tc_rebind(tc, s, h->instance);
	b = &n->bin[tc_class(size)];
	if (b->count >= b->max ||
	    n->bytes + size > HPM_HEAP_CACHE_BYTES)
		tc_drain(tc, h, b, b->count / 2);
	if (n->bytes + size > HPM_HEAP_CACHE_BYTES)
		return false;
	tc_link(e)->next = b->head;
	tc_link(e)->cookie = TC_COOKIE ^ (uintptr_t)e;
	b->head = e;
	b->count++;
	n->bytes += size;
	return true;
}

/* A cached block of node @s with at least @need bytes, or NULL. */
static inline void *tc_get(struct hpm_heap *h, int s, size_t need)
{
	struct tcache *tc = tc_mine();
	struct hpm_elem *e;
	struct tc_node *n;
	struct tc_bin *b;

	if (unlikely(!tc || tc->nodes[s].instance != h->instance))
		return NULL;
	n = &tc->nodes[s];
	b = &n->bin[tc_class(need)];
	e = b->head;
	if (!e || elem_size(e) < need)
		return NULL;
	if (unlikely(!elem_cached(e))) {
		tc_corrupt(h, e);
		b->head = NULL;
		b->count = 0;
		return NULL;
	}
	b->head = tc_link(e)->next;
	b->count--;
	n->bytes -= elem_size(e);
	tc_link(e)->cookie = 0;
	return elem_data(e);
}

/* The node to try first for HPM_SOCKET_ANY. */
static inline int local_socket(uint32_t mask)
{
	struct tcache *tc = tc_mine();

	/* One node with memory (the usual case): skip asking for the CPU's. */
	if (!(mask & (mask - 1)))
		return mask ? __builtin_ctz(mask) : 0;
	/* getcpu() per call is too slow; threads rarely change node. */
	if (!tc)
		return hpm_socket_id();
	if (!tc->node_ttl || tc->node_ttl > 1024) {
		tc->node = hpm_socket_id();
		tc->node_ttl = 1024;
	}
	tc->node_ttl--;
	return tc->node;
}

static void *alloc_on(struct hpm_heap *h, size_t size, size_t need,
		      size_t align, size_t bound, unsigned int flags)
{
	struct hpm_elem *e;

	heap_lock(h);
	e = heap_take(h, size, need, align, bound, flags);
	heap_unlock(h);
	return e ? elem_data(e) : NULL;
}

/* Everything but a thread-cache hit: checks, the heaps, fallback. */
static __attribute__((noinline)) void *heap_alloc_slow(int socket, size_t size,
						      size_t align, size_t bound,
						      unsigned int flags)
{
	struct hpm_heap *tbl;
	uint32_t mask;
	size_t need;
	void *p = NULL;
	int first;

	if (unlikely(!heaps_get(&tbl, &mask)))
		return hpm_fail_ptr(ENODEV);
	if (unlikely(!size || (flags & ~HPM_HEAP_F_ALL) ||
		     (align && !HPM_IS_POW2(align)) ||
		     (bound && (!HPM_IS_POW2(bound) || bound < size)) ||
		     socket < HPM_SOCKET_ANY || socket >= HPM_MAX_NODES))
		return hpm_fail_ptr(EINVAL);
	if (unlikely(size > REQ_MAX || align > REQ_MAX))
		return hpm_fail_ptr(ENOMEM);
	if (align < ELEM_ALIGN)
		align = ELEM_ALIGN;
	need = elem_need(size);

	first = socket == HPM_SOCKET_ANY ? local_socket(mask) : socket;
	if (first >= 0 && first < HPM_MAX_NODES && (mask & (1u << first))) {
		if (align == ELEM_ALIGN && !bound && !(flags & HPM_HEAP_F_CONTIG) &&
		    need < TC_MAX_NEED)
			p = tc_get(&tbl[first], first, need);
		if (!p)
			p = alloc_on(&tbl[first], size, need, align, bound, flags);
		mask &= ~(1u << first);
	}
	if (!p && socket != HPM_SOCKET_ANY && (flags & HPM_HEAP_F_STRICT))
		mask = 0;
	while (!p && mask) {
		int s = __builtin_ctz(mask);

		mask &= mask - 1;
		p = alloc_on(&tbl[s], size, need, align, bound, flags);
	}
	if (unlikely(!p))
		return hpm_fail_ptr(ENOMEM);
	if (flags & HPM_HEAP_F_ZERO)
		memset(p, 0, size);
	return p;
}

/* Alignments the fast path takes: 0 and powers of two up to 16. */
#define FAST_ALIGNS	((1u << 0) | (1u << 1) | (1u << 2) | (1u << 4) | \
			 (1u << 8) | (1u << 16))

/*
 * Fast path, no lock, no call, no stack frame: an ordinary request
 * (alignment <= 16, no bound, no contiguity, element below TC_MAX_NEED)
 * for the node this thread's cache is bound to, served from its bin.
 * Cost (x86-64, gcc -O2): about 47 instructions for a hit, half of them
 * the argument checks; the block's size and its cache cookie are checked
 * (the list runs through freed user memory). Anything else goes to
 * heap_alloc_slow().
 */
static __hpm_always_inline void *heap_alloc(int socket, size_t size,
					    size_t align, size_t bound,
					    unsigned int flags)
{
	struct tcache *tc = tc_self;

	if (likely(tc->epoch == heap_epoch_ld() &&
		   size - 1 < TC_MAX_NEED - ELEM_HDR - ELEM_MIN_LIVE &&
		   align <= ELEM_ALIGN && ((FAST_ALIGNS >> align) & 1) && !bound &&
		   !(flags & ~(HPM_HEAP_F_STRICT | HPM_HEAP_F_ZERO)))) {
		int s = socket;

		/* Several nodes: the cached node, refreshed by the slow path. */
		if (s == HPM_SOCKET_ANY && likely(tc->node_ttl))
			s = tc->node, tc->node_ttl--;
		if (likely(s == tc->cur_socket)) {
			size_t need = elem_need(size);
			struct tc_node *n = tc->cur;
			struct tc_bin *b = &n->bin[tc_class(need)];
			struct hpm_elem *e = b->head;
			size_t esize;

			if (likely(e) && likely((esize = elem_size(e)) >= need) &&
			    likely(elem_cached(e))) {
				b->head = tc_link(e)->next;
				b->count--;
				n->bytes -= esize;
				tc_link(e)->cookie = 0;
				/* A tail call: no registers to save here. */
				if (flags & HPM_HEAP_F_ZERO)
					return memset(elem_data(e), 0, size);
				return elem_data(e);
			}
			/* bound is 0 here: one register less to keep. */
			return heap_alloc_slow(socket, size, align, 0, flags);
		}
	}
	return heap_alloc_slow(socket, size, align, bound, flags);
}

void *hpm_heap_alloc(int socket, size_t size, size_t align, size_t bound,
		     unsigned int flags)
{
	return heap_alloc(socket, size, align, bound, flags);
}

/* hpm_malloc(): the fast path without the checks its constants make moot. */
void *hpm_heap_alloc_any(size_t size, size_t align)
{
	return heap_alloc(HPM_SOCKET_ANY, size, align, 0, 0);
}

/*
 * Everything but a push on the bound, current, non-full cache: NULL,
 * another heap or run, creating or draining the cache, and the full check
 * and release under the lock for blocks that are not cached or look wrong
 * (logged there).
 */
static __attribute__((noinline)) int heap_free_slow(void *ptr)
{
	const struct hpm_heap_run *run;
	struct hpm_heap *h;
	struct hpm_elem *e;
	size_t size;

	if (!ptr)
		return 0;
	h = heap_of_ptr((uintptr_t)ptr, &run);
	if (unlikely(!h)) {
		hpm_log(HPM_LOG_ERR, "free(%p): not in any heap", ptr);
		return hpm_fail(EINVAL);
	}
	e = elem_at((uintptr_t)ptr - ELEM_HDR);
	if (!elem_why(h, run, (uintptr_t)ptr, false, &size) && !elem_cached(e) &&
	    tc_put_slow(h, e)) {
		tc_bind(tc_mine(), h, run);
		return 0;
	}
	heap_lock(h);
	e = elem_check(h, run, (uintptr_t)ptr, "free");
	if (likely(e))
		release(h, e);
	heap_unlock(h);
	return e ? 0 : hpm_fail(EINVAL);
}

/*
 * Fast path, no lock, no call, no stack frame: a block of the bound run
 * whose own header (address-bound tag, not free, size in the cached range)
 * and cache cookie check out is pushed on this thread's cache: about 50
 * instructions (x86-64, gcc -O2). Its size against the run's end and the
 * neighbours' boundary tags are checked when the cache drains to the heap,
 * under the lock, before anything is merged; everything else goes to
 * heap_free_slow(), which checks it all.
 */
int hpm_heap_free(void *ptr)
{
	struct tcache *tc = tc_self;
	struct hpm_elem *e = elem_at((uintptr_t)ptr - ELEM_HDR);
	uintptr_t off;
	uint64_t info;
	size_t size;

	if (unlikely(tc->epoch != heap_epoch_ld()))
		return heap_free_slow(ptr);
	/* In the bound run and 16-aligned, in one compare (NULL fails it). */
	off = (uintptr_t)e - tc->run_lo;
	off = (off >> 4) | (off << 60);
	if (unlikely(off >= tc->run_span16))
		return heap_free_slow(ptr);
	info = info_ld(e);
	size = info & ELEM_SIZE_MASK;
	if (likely(info_tag_is(info, e, tc->tag)) &&
	    likely(!(info & (ELEM_F_FREE | ELEM_F_SENTINEL))) &&
	    likely(size - ELEM_MIN_LIVE < TC_MAX_NEED - ELEM_MIN_LIVE) &&
	    likely(!elem_cached(e)) && likely(elem_trailer_ok(e))) {
		struct tc_node *n = tc->cur;
		struct tc_bin *b = &n->bin[tc_class(size)];

		if (likely(b->count < b->max &&
			   n->bytes + size <= HPM_HEAP_CACHE_BYTES)) {
			tc_link(e)->next = b->head;
			tc_link(e)->cookie = TC_COOKIE ^ (uintptr_t)e;
			b->head = e;
			b->count++;
			n->bytes += size;
			return 0;
		}
	}
	return heap_free_slow(ptr);
}

size_t hpm_heap_usable_size(const void *ptr)
{
	const struct hpm_heap_run *run;
	struct hpm_heap *h;
	struct hpm_elem *e;
	size_t n = 0;

	if (!ptr)
		return 0;
	h = heap_of_ptr((uintptr_t)ptr, &run);
	if (!h)
		return 0;
	heap_lock(h);
	e = elem_check(h, run, (uintptr_t)ptr, "usable_size");
	if (e)
		n = elem_usable(e);
	heap_unlock(h);
	return n;
}

int hpm_heap_socket_of(const void *ptr)
{
	const struct hpm_heap_run *run;
	struct hpm_heap *h;

	h = ptr ? heap_of_ptr((uintptr_t)ptr, &run) : NULL;
	return h ? h->socket : hpm_fail(EINVAL);
}

void *hpm_heap_realloc(void *ptr, size_t size, size_t align, int socket,
		       unsigned int flags)
{
	const struct hpm_heap_run *run;
	struct hpm_heap *h;
	struct hpm_elem *e;
	size_t need, old;
	void *n;

	if (!ptr)
		return hpm_heap_alloc(socket, size, align, 0, flags);
	if ((align && !HPM_IS_POW2(align)) || socket < HPM_SOCKET_ANY ||
	    socket >= HPM_MAX_NODES || (flags & ~HPM_HEAP_F_ALL))
		return hpm_fail_ptr(EINVAL);
	if (align < ELEM_ALIGN)
		align = ELEM_ALIGN;
	h = heap_of_ptr((uintptr_t)ptr, &run);
	if (!h) {
		hpm_log(HPM_LOG_ERR, "realloc(%p): not in any heap", ptr);
		return hpm_fail_ptr(EINVAL);
	}
	if (!size) {
		if (hpm_heap_free(ptr))
			return NULL;
		hpm_errno = 0;
		return NULL;
	}
	if (size > REQ_MAX || align > REQ_MAX)
		return hpm_fail_ptr(ENOMEM);
	need = elem_need(size);

	heap_lock(h);
	e = elem_check(h, run, (uintptr_t)ptr, "realloc");
	if (!e) {
		heap_unlock(h);
		return hpm_fail_ptr(EINVAL);
	}
	old = elem_usable(e);
	if (!((uintptr_t)ptr & (align - 1)) &&
	    (socket == HPM_SOCKET_ANY || socket == h->socket)) {
		struct hpm_elem *next = elem_next(e);

		if (need > elem_size(e) && (info_ld(next) & ELEM_F_FREE) &&
		    elem_size(e) + elem_size(next) >= need) {
			/* Grow into the free neighbour. */
			struct hpm_elem *after;

			free_remove(h, next);
			h->alloc_bytes += elem_size(next);
			elem_trailer_set_n(e, elem_size(e) + elem_size(next));
			HEAP_STEP();
			/* Grow over @next before its header goes. */
			info_st(e, info_ld(e) + elem_size(next));
			HEAP_STEP();
			info_st(next, 0);
			after = elem_next(e);
			prev_st(after, elem_size(e));
			info_st(after, info_ld(after) & ~ELEM_F_PREV_FREE);
		}
		if (need <= elem_size(e)) {
			shrink_live(h, e, need);
			elem_trailer_set(e);
			heap_unlock(h);
			return ptr;
		}
	}
	heap_unlock(h);

	/* Move; a block of ANY stays on its node when there is room. */
	if (socket == HPM_SOCKET_ANY) {
		n = hpm_heap_alloc(h->socket, size, align, 0, flags);
	} else {
		n = hpm_heap_alloc(socket, size, align, 0, flags | HPM_HEAP_F_STRICT);
	}
	if (!n)
		return NULL;
	memcpy(n, ptr, old < size ? old : size);
	hpm_heap_free(ptr);
	return n;
}

/* ---- validation ---- */

/* Log the first inconsistency of heap @h and fail the walk. */
#define CHECK(cond, fmt, ...)						\
	do {								\
		if (unlikely(!(cond))) {				\
			hpm_log(HPM_LOG_ERR, "heap %d: " fmt, h->socket,	\
				##__VA_ARGS__);				\
			return -EFAULT;					\
		}							\
	} while (0)

static int validate_run(struct hpm_heap *h, const struct hpm_heap_run *run,
			uint64_t *free_bytes, uint64_t *free_count,
			uint64_t *busy_bytes, uint64_t *busy_count)
{
	uintptr_t a = run->start;
	uint64_t expect_prev = 0;
	bool prev_free = false;

	for (;;) {
		struct hpm_elem *e = elem_at(a);
		size_t size;

		CHECK(a + ELEM_HDR <= run->end, "run %#lx: walked past its end",
		      (unsigned long)run->start);
		CHECK(elem_tag_ok(h, e), "element %p: bad header %#llx", (void *)e,
		      (unsigned long long)info_ld(e));
		CHECK(prev_ld(e) == expect_prev,
		      "element %p: prev_size %llu, previous element has %llu",
		      (void *)e, (unsigned long long)prev_ld(e),
		      (unsigned long long)expect_prev);
		CHECK(!!(info_ld(e) & ELEM_F_PREV_FREE) == prev_free,
		      "element %p: PREV_FREE flag wrong", (void *)e);
		size = elem_size(e);
		if (info_ld(e) & ELEM_F_SENTINEL) {
			CHECK(a + ELEM_HDR == run->end && size == ELEM_HDR &&
			      !(info_ld(e) & ELEM_F_FREE),
			      "element %p: misplaced or bad sentinel", (void *)e);
			return 0;
		}
		CHECK(size >= ELEM_MIN && size <= run->end - ELEM_HDR - a,
		      "element %p: bad size %zu", (void *)e, size);
		if (info_ld(e) & ELEM_F_FREE) {
			CHECK(!prev_free, "element %p: two free blocks adjacent",
			      (void *)e);
			*free_bytes += size;
			(*free_count)++;
		} else {
			CHECK(elem_trailer_ok(e),
			      "element %p: trailer cookie overwritten", (void *)e);
			*busy_bytes += size;
			(*busy_count)++;
		}
		prev_free = info_ld(e) & ELEM_F_FREE;
		expect_prev = size;
		a += size;
	}
}

static bool in_runs(const struct hpm_heap *h, uintptr_t p)
{
	for (uint32_t i = 0; i < h->nr_runs; i++)
		if (p >= h->runs[i].start && p + ELEM_MIN <= h->runs[i].end)
			return true;
	return false;
}

static int validate_lists(struct hpm_heap *h, uint64_t free_count)
{
	uint64_t seen = 0;

	for (unsigned int fl = 0; fl < HPM_HEAP_FL_COUNT; fl++) {
		CHECK(!!(h->fl_bitmap & (1u << fl)) == !!h->sl_bitmap[fl],
		      "fl bitmap bit %u disagrees with its sl bitmap", fl);
		for (unsigned int sl = 0; sl < HPM_HEAP_SL_COUNT; sl++) {
			struct hpm_elem *prev = NULL;

			CHECK(!!(h->sl_bitmap[fl] & (1u << sl)) ==
			      !!h->free_list[fl][sl],
			      "bitmap bit (%u,%u) disagrees with its list", fl, sl);
			for (struct hpm_elem *e = h->free_list[fl][sl]; e;
			     e = elem_links(e)->next) {
				unsigned int efl, esl;

				CHECK(++seen <= free_count,
				      "free lists hold more blocks than the heap (loop?)");
				CHECK(in_runs(h, (uintptr_t)e) && elem_tag_ok(h, e) &&
				      (info_ld(e) & ELEM_F_FREE),
				      "list (%u,%u): %p is not a free block", fl, sl,
				      (void *)e);
				mapping_insert(elem_size(e), &efl, &esl);
				CHECK(efl == fl && esl == sl,
				      "list (%u,%u): %p of size %zu belongs to (%u,%u)",
				      fl, sl, (void *)e, elem_size(e), efl, esl);
				CHECK(elem_links(e)->prev == prev,
				      "list (%u,%u): %p has a wrong prev link", fl, sl,
				      (void *)e);
				prev = e;
			}
		}
	}
	CHECK(seen == free_count, "free lists hold %llu blocks, heap has %llu",
	      (unsigned long long)seen, (unsigned long long)free_count);
	return 0;
}

static int validate_locked(struct hpm_heap *h)
{
	uint64_t fb = 0, fc = 0, bb = 0, bc = 0;
	int ret;

	CHECK(h->magic == HPM_HEAP_MAGIC, "bad heap magic %#x", h->magic);
	CHECK(h->nr_runs <= HPM_HEAP_MAX_RUNS, "bad run count %u", h->nr_runs);
	for (uint32_t i = 0; i < h->nr_runs; i++) {
		ret = validate_run(h, &h->runs[i], &fb, &fc, &bb, &bc);
		if (ret)
			return ret;
	}
	CHECK(fb == h->free_bytes && fc == h->free_count,
	      "free blocks %llu/%llu bytes, stats say %llu/%llu",
	      (unsigned long long)fc, (unsigned long long)fb,
	      (unsigned long long)h->free_count, (unsigned long long)h->free_bytes);
	CHECK(bb == h->alloc_bytes && bc == h->alloc_count,
	      "live blocks %llu/%llu bytes, stats say %llu/%llu",
	      (unsigned long long)bc, (unsigned long long)bb,
	      (unsigned long long)h->alloc_count, (unsigned long long)h->alloc_bytes);
	CHECK(fb + bb + (uint64_t)h->nr_runs * ELEM_HDR == h->total_bytes,
	      "free %llu + live %llu + sentinels != total %llu",
	      (unsigned long long)fb, (unsigned long long)bb,
	      (unsigned long long)h->total_bytes);
	return validate_lists(h, fc);
}

/*
 * Rebuild run @run's part of the lists and statistics from its element
 * chain, merging free neighbours; prev_size and PREV_FREE are rewritten.
 * Crash-safe itself (a merge grows the first block before the second's
 * header is cleared), so a taker that dies here is recovered from again.
 */
static int rebuild_run(struct hpm_heap *h, const struct hpm_heap_run *run)
{
	struct hpm_elem *span = NULL;	/* free block being extended */
	uintptr_t a = run->start;
	uint64_t prev_size = 0;

	for (;;) {
		struct hpm_elem *e = elem_at(a);
		uint64_t info;
		size_t size;

		CHECK(a + ELEM_HDR <= run->end && elem_tag_ok(h, e),
		      "rebuild: run %#lx: no header at %p", (unsigned long)run->start,
		      (void *)e);
		info = info_ld(e);
		size = info & ELEM_SIZE_MASK;
		if (!(info & ELEM_F_FREE) || (info & ELEM_F_SENTINEL)) {
			uint64_t pf = 0;

			if (span) {
				free_insert(h, span);
				prev_size = elem_size(span);
				span = NULL;
				pf = ELEM_F_PREV_FREE;
			}
			prev_st(e, prev_size);
			info_st(e, (info & ~ELEM_F_PREV_FREE) | pf);
			if (info & ELEM_F_SENTINEL) {
				CHECK(a + ELEM_HDR == run->end && size == ELEM_HDR,
				      "rebuild: element %p: misplaced sentinel", (void *)e);
				return 0;
			}
		}
		CHECK(size >= ELEM_MIN && size <= run->end - ELEM_HDR - a,
		      "rebuild: element %p: bad size %zu", (void *)e, size);
		if (!(info & ELEM_F_FREE)) {
			h->alloc_bytes += size;
			h->alloc_count++;
			prev_size = size;
		} else if (span) {
			elem_set(h, span, elem_size(span) + size, ELEM_F_FREE);
			info_st(e, 0);
		} else {
			span = e;
			prev_st(e, prev_size);
			elem_set(h, e, size, ELEM_F_FREE);
		}
		a += size;
	}
}

static __hpm_cold void heap_recover(struct hpm_heap *h, uint64_t dead)
{
	int ret = 0;

	h->fl_bitmap = 0;
	memset(h->sl_bitmap, 0, sizeof(h->sl_bitmap));
	memset(h->free_list, 0, sizeof(h->free_list));
	h->free_bytes = h->alloc_bytes = 0;
	h->free_count = h->alloc_count = 0;
	for (uint32_t i = 0; i < h->nr_runs && !ret; i++)
		ret = rebuild_run(h, &h->runs[i]);
	if (!ret)
		ret = validate_locked(h);
	if (ret) {
		/* Hand out nothing we cannot vouch for. */
		h->fl_bitmap = 0;
		memset(h->sl_bitmap, 0, sizeof(h->sl_bitmap));
		memset(h->free_list, 0, sizeof(h->free_list));
		h->free_bytes = h->free_count = 0;
		hpm_log(HPM_LOG_ERR, "heap %d: owner pid %d died holding the lock; "
			"rebuild failed, free lists emptied", h->socket,
			(int)(dead >> 32));
		return;
	}
	hpm_log(HPM_LOG_WARN, "heap %d: owner pid %d died holding the lock; "
		"rebuilt, %llu free blocks", h->socket, (int)(dead >> 32),
		(unsigned long long)h->free_count);
}

int hpm_heap_validate(struct hpm_heap *h)
{
	int ret;

	if (!h)
		return hpm_fail(EINVAL);
	/* Our cached blocks would show up as allocated. */
	hpm_heap_cache_flush();
	heap_lock(h);
	ret = validate_locked(h);
	heap_unlock(h);
	return ret ? hpm_fail(EFAULT) : 0;
}

/* ---- statistics ---- */

/* Largest free block's usable bytes; lock held. */
static size_t greatest_free(struct hpm_heap *h)
{
	size_t best = 0;

	if (!h->fl_bitmap)
		return 0;
	/* Every block of the highest non-empty bin is larger than the rest. */
	unsigned int fl = fls64(h->fl_bitmap);
	unsigned int sl = fls64(h->sl_bitmap[fl]);

	for (struct hpm_elem *e = h->free_list[fl][sl]; e; e = elem_links(e)->next)
		if (elem_size(e) > best)
			best = elem_size(e);
	return best - ELEM_HDR - ELEM_TRAILER;
}

int hpm_heap_stats(struct hpm_heap *h, struct hpm_heap_stats *st)
{
	memset(st, 0, sizeof(*st));
	if (!h || h->magic != HPM_HEAP_MAGIC)
		return 0;
	hpm_heap_cache_flush();
	heap_lock(h);
	st->total = h->total_bytes;
	st->free = h->free_bytes;
	st->alloc = h->alloc_bytes;
	st->free_count = h->free_count;
	st->alloc_count = h->alloc_count;
	st->greatest_free = greatest_free(h);
	st->runs = h->nr_runs;
	heap_unlock(h);
	return 0;
}
