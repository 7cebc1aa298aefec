// SPDX-License-Identifier: MIT
/*
 * Per-node heap: two-level segregated fit (TLSF) over the region's memory,
 * with boundary tags so that a freed block merges with free neighbours at
 * once. All state lives in shared memory; one robust lock per heap. The
 * per-thread caches in front of it, and the alloc and free entry points
 * whose fast paths they are, live in malloc_tcache.c.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <hpmem/init.h>
#include <hpmem/memseg.h>

#include "config.h"
#include "crash_step.h"
#include "internal.h"
#include "malloc_elem.h"
#include "malloc_heap.h"
#include "memseg.h"

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
#define HEAP_STEP()	HPM_CRASH_STEP()

/*
 * Heaps used while the library is not initialised: unit tests run the heap
 * over plain buffers (heaps_get()). Once hpm_init() has mapped a region,
 * the shared config's heaps and node mask are used instead.
 */
struct hpm_heap *hpm_heap_test_tbl;
uint32_t hpm_heap_test_mask;

/* ---- TLSF bin math: no division, one bit scan ---- */

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

static void trim_note(struct hpm_heap *h, struct hpm_elem *e);

/* Free live element @e, merging with free neighbours. */
void hpm_heap_release(struct hpm_heap *h, struct hpm_elem *e)
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
	if (unlikely(size >= __atomic_load_n(&hpm_heap_trim_min, __ATOMIC_RELAXED)))
		trim_note(h, start);
}

/* ---- the heap table and checking pointers ---- */

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
	hpm_heap_test_tbl = heaps;
	hpm_heap_test_mask = mask;
	hpm_heap_epoch_bump();
}

struct hpm_heap *hpm_heap_table(void)
{
	struct hpm_heap *tbl;
	uint32_t mask;

	return heaps_get(&tbl, &mask) ? tbl : NULL;
}

static struct hpm_heap_run *run_of_locked(struct hpm_heap *h, uintptr_t p);

/* The element of live block @p, or NULL after logging why not. */
static struct hpm_elem *elem_check(struct hpm_heap *h,
				   const struct hpm_heap_run *run, uintptr_t p,
				   const char *what)
{
	size_t size;
	const char *why;

	/* Under the lock the runs hold still: use the current one. */
	run = run_of_locked(h, p);
	why = run ? elem_why(h, run, p, true, &size) : "not in this heap any more";

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
	if (!h || socket < 0 || socket >= HPM_HEAP_SLOTS)
		return hpm_fail(EINVAL);
	memset(h, 0, sizeof(*h));
	hpm_robust_lock_init(&h->lock);
	h->socket = socket;
	h->instance = heap_instance();
	h->lo = UINTPTR_MAX;
	h->magic = HPM_HEAP_MAGIC;
	if (hpm_heap_test_tbl && h >= hpm_heap_test_tbl &&
	    h < hpm_heap_test_tbl + HPM_MAX_NODES)
		hpm_heap_test_mask &= ~(1u << (h - hpm_heap_test_tbl));
	hpm_heap_epoch_bump();
	return 0;
}

/*
 * Adding and removing memory while the heap is in use. Every change to
 * the runs happens under the heap lock, but free(), usable_size() and the
 * thread caches find a pointer's run without it (heap_of_ptr()), in this
 * and in other processes. That stays right for every live block because:
 *  - a run's bounds and the run count are single atomic stores, ordered
 *    so that a live block is inside some published run at every instant:
 *    a new run (or the piece behind a split) is published before the old
 *    run shrinks; a run grows before the run joined into it is cleared;
 *    a slot is emptied end first and filled start first, so a half
 *    written slot matches nothing. A lookup scans the slots one by one,
 *    though, and may pass the new slot before the old one shrinks: such
 *    shrinks come after a bump of runs_gen, and a lookup that misses
 *    scans again while runs_gen moved (a miss is an error path anyway);
 *  - memory added is reached only through a block allocated from it,
 *    under the lock after the addition: whoever frees that block got it
 *    through some synchronisation that also orders the addition before
 *    its lookup;
 *  - memory removed held no live block, so no valid pointer is in it;
 *  - the element a lookup's run starts with is never a live block whose
 *    boundary tag changes: a split leaves a free block first behind the
 *    cut, and runs are joined only when the second one starts free.
 *    So the lock-free checks (elem_why()) agree with any run a lookup
 *    may have seen; the locked ones look the run up again under the lock.
 * Thread caches bound to a run that has since grown or shrunk (the epoch
 * that unbinds them is per process) still check every block's own
 * address-bound header before taking it, and only live blocks reach them.
 * A stale pointer into removed memory that the caller has unmapped is a
 * use after free: its check may then fault rather than be logged.
 * lo/hi only ever widen: a quick reject, never a wrong accept.
 * A process killed in the middle of adding or removing leaves a chain the
 * next locker may fail to rebuild; it then empties the free lists (see
 * hpm_heap_recover()): memory is lost, never handed out twice.
 */

static void run_set(struct hpm_heap_run *r, uintptr_t start, uintptr_t end,
		    uintptr_t base)
{
	/* Filled start first: a half written slot is (start, 0) and matches nothing. */
	__atomic_store_n(&r->base, base, __ATOMIC_RELEASE);
	__atomic_store_n(&r->start, start, __ATOMIC_RELEASE);
	__atomic_store_n(&r->end, end, __ATOMIC_RELEASE);
}

static void run_clear(struct hpm_heap_run *r)
{
	__atomic_store_n(&r->end, 0, __ATOMIC_RELEASE);
	__atomic_store_n(&r->start, 0, __ATOMIC_RELEASE);
	__atomic_store_n(&r->base, 0, __ATOMIC_RELEASE);
}

static bool run_empty(const struct hpm_heap_run *r)
{
	return !r->end;
}

/* A slot for a new run (an empty one first), or NULL when all are used. */
static struct hpm_heap_run *run_slot(struct hpm_heap *h)
{
	for (uint32_t i = 0; i < h->nr_runs; i++)
		if (run_empty(&h->runs[i]))
			return &h->runs[i];
	return h->nr_runs < HPM_HEAP_MAX_RUNS ? &h->runs[h->nr_runs] : NULL;
}

/* Make slot @r (from run_slot()) the run [start, end): lookups see it from here on. */
static void run_publish(struct hpm_heap *h, struct hpm_heap_run *r,
			uintptr_t start, uintptr_t end, uintptr_t base)
{
	run_set(r, start, end, base);
	if (r == &h->runs[h->nr_runs])
		__atomic_store_n(&h->nr_runs, h->nr_runs + 1, __ATOMIC_RELEASE);
}

/*
 * Before a store that takes live memory out of a slot, once what replaces
 * it is published: lookups that missed look again (heap_of_ptr()).
 */
static void runs_gen_bump(struct hpm_heap *h)
{
	__atomic_store_n(&h->runs_gen, h->runs_gen + 1, __ATOMIC_RELEASE);
}

/* Widen lo/hi to cover [start, end) before a run there is published. */
static void heap_bounds_widen(struct hpm_heap *h, uintptr_t start, uintptr_t end)
{
	if (start < h->lo)
		__atomic_store_n(&h->lo, start, __ATOMIC_RELAXED);
	if (end > h->hi)
		__atomic_store_n(&h->hi, end, __ATOMIC_RELAXED);
}

/* Runs in use (not empty slots): each ends in one sentinel. */
static uint32_t runs_live(const struct hpm_heap *h)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < h->nr_runs; i++)
		n += !run_empty(&h->runs[i]);
	return n;
}

/* The run of @h holding @p; lock held, so exact. */
static struct hpm_heap_run *run_of_locked(struct hpm_heap *h, uintptr_t p)
{
	for (uint32_t i = 0; i < h->nr_runs; i++) {
		struct hpm_heap_run *r = &h->runs[i];

		if (p >= r->start && p < r->end)
			return r;
	}
	return NULL;
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

/*
 * Turn the 16-byte element at @at (an old sentinel) into free space of
 * @len bytes that ends at @next (already carrying a valid header and
 * PREV_FREE), merging with a free previous block. Returns the free block.
 */
static struct hpm_elem *gap_free(struct hpm_heap *h, struct hpm_elem *e,
				 size_t len, struct hpm_elem *next)
{
	uint64_t prev_free = info_ld(e) & ELEM_F_PREV_FREE;
	size_t size = len;

	elem_set(h, e, len, ELEM_F_FREE | prev_free);
	if (prev_free) {
		struct hpm_elem *prev = elem_at((uintptr_t)e - prev_ld(e));

		size += elem_size(prev);
		free_remove(h, prev);
		elem_set(h, prev, size, ELEM_F_FREE);
		info_st(e, 0);
		e = prev;
	}
	prev_st(next, size);
	free_insert(h, e);
	return e;
}

/* Append [va, va+len) to @run, whose end it touches: the old sentinel becomes free space. */
static void run_extend(struct hpm_heap *h, struct hpm_heap_run *run,
		       uintptr_t va, size_t len)
{
	struct hpm_elem *e = elem_at(run->end - ELEM_HDR);
	struct hpm_elem *s = elem_at(va + len - ELEM_HDR);

	/* The new sentinel first: the chain ends there once @e grows over it. */
	elem_set(h, s, ELEM_HDR, ELEM_F_SENTINEL | ELEM_F_PREV_FREE);
	gap_free(h, e, len, s);
	__atomic_store_n(&run->end, va + len, __ATOMIC_RELEASE);
}

/*
 * @l ends 48 bytes before @q starts (VA-adjacent additions) and @q's
 * first block is free: make them one run. @l's sentinel and the 48 bytes
 * between become free space with @q's first block.
 */
static void run_join(struct hpm_heap *h, struct hpm_heap_run *l,
		     struct hpm_heap_run *q)
{
	struct hpm_elem *s = elem_at(l->end - ELEM_HDR);
	struct hpm_elem *f = elem_at(q->start);
	size_t fsize = elem_size(f);
	struct hpm_elem *next = elem_at(q->start + fsize);

	free_remove(h, f);
	gap_free(h, s, q->start + fsize - (uintptr_t)s, next);
	info_st(f, 0);
	h->total_bytes += q->start - l->end;
	/* Grow @l over @q before @q's slot goes: a live block is always in one. */
	__atomic_store_n(&l->end, q->end, __ATOMIC_RELEASE);
	runs_gen_bump(h);
	run_clear(q);
}

/* The run that starts right behind @r's end (48 bytes of grid slack), if any. */
static struct hpm_heap_run *run_behind(struct hpm_heap *h, const struct hpm_heap_run *r)
{
	for (uint32_t i = 0; i < h->nr_runs; i++) {
		struct hpm_heap_run *q = &h->runs[i];

		if (!run_empty(q) && q->start == grid_first(r->end) && q->base == r->end)
			return q;
	}
	return NULL;
}

/*
 * Headers sit on the grid (malloc_elem.h): a run starts at the first
 * grid header at or after @va and ends on a cache-line boundary, so up to
 * 48 bytes at the front and 63 at the back of [va, va + len) go unused
 * (none of a 2 MiB page but the first 48 bytes of a run).
 */
static int add_chunk(struct hpm_heap *h, uintptr_t va, size_t len, bool merge)
{
	uintptr_t end = (va + len) & ~(uintptr_t)(ELEM_GRAIN - 1);
	uintptr_t start = grid_first(va);
	struct hpm_heap_run *r = NULL, *q;

	for (uint32_t i = 0; i < h->nr_runs; i++) {
		struct hpm_heap_run *o = &h->runs[i];

		if (!run_empty(o) && va < o->end && va + len > o->base)
			return hpm_fail(EINVAL);
	}
	for (uint32_t i = 0; merge && i < h->nr_runs; i++) {
		struct hpm_heap_run *o = &h->runs[i];

		if (!run_empty(o) && o->end == va && end > va &&
		    o->end - o->start + len <= RUN_MAX) {
			heap_bounds_widen(h, va, end);
			run_extend(h, o, va, end - va);
			h->total_bytes += end - va;
			r = o;
			break;
		}
	}
	if (!r) {
		if (end < start + ELEM_MIN + ELEM_HDR)
			return hpm_fail(EINVAL);
		r = run_slot(h);
		if (!r)
			return hpm_fail(ENOSPC);
		/* Elements first, then the run that makes them reachable. */
		run_format(h, start, end - start);
		h->total_bytes += end - start;
		heap_bounds_widen(h, start, end);
		run_publish(h, r, start, end, va);
	}
	q = merge ? run_behind(h, r) : NULL;
	if (q && (info_ld(elem_at(q->start)) & ELEM_F_FREE) &&
	    q->end - r->start <= RUN_MAX)
		run_join(h, r, q);
	return 0;
}

static int add_memory(struct hpm_heap *h, void *va, size_t len, bool merge)
{
	uintptr_t a = (uintptr_t)va;
	int ret = 0;

	if (!h || h->magic != HPM_HEAP_MAGIC || !va ||
	    (a & (ELEM_HDR - 1)) || (len & (ELEM_HDR - 1)) ||
	    len < 64 || a + len < a)
		return hpm_fail(EINVAL);

	heap_lock(h);
	while (len && !ret) {
		/* Keep every piece a usable run: no sliver at the end. */
		size_t n = len > RUN_MAX + 64 ? RUN_MAX : len;

		ret = add_chunk(h, a, n, merge);
		a += n;
		len -= n;
	}
	heap_unlock(h);
	/* Written only when it changes: lock-free readers (unit tests' table). */
	if (!ret && hpm_heap_test_tbl && h >= hpm_heap_test_tbl &&
	    h < hpm_heap_test_tbl + HPM_MAX_NODES &&
	    !(hpm_heap_test_mask & (1u << (h - hpm_heap_test_tbl))))
		hpm_heap_test_mask |= 1u << (h - hpm_heap_test_tbl);
	hpm_heap_epoch_bump();
	return ret;
}

int hpm_heap_add_memory(struct hpm_heap *h, void *va, size_t len)
{
	return add_memory(h, va, len, true);
}

int hpm_heap_add_memory_run(struct hpm_heap *h, void *va, size_t len)
{
	return add_memory(h, va, len, false);
}

static struct hpm_elem *free_scan(struct hpm_heap *h, size_t min,
				  bool (*fit)(struct hpm_elem *e, void *arg), void *arg);

struct span {
	uintptr_t lo, hi;
};

static bool spans(struct hpm_elem *e, void *arg)
{
	const struct span *sp = arg;

	return (uintptr_t)e <= sp->lo && (uintptr_t)e + elem_size(e) >= sp->hi;
}

/* The free block of @h that spans [lo, hi), or NULL. O(free blocks). */
static struct hpm_elem *free_spanning(struct hpm_heap *h, uintptr_t lo, uintptr_t hi)
{
	struct span sp = { lo, hi };

	return free_scan(h, hi - lo, spans, &sp);
}

int hpm_heap_remove_memory(struct hpm_heap *h, void *va, size_t len)
{
	uintptr_t a = (uintptr_t)va, b = a + len, lo, hi, rs = 0, es, ee;
	struct hpm_heap_run *r = NULL, *slot = NULL;
	bool left, right;
	struct hpm_elem *e;
	int ret = 0;

	if (!h || h->magic != HPM_HEAP_MAGIC || !va || !len || b < a ||
	    (len & (ELEM_HDR - 1)) || (a & (ELEM_HDR - 1)))
		return hpm_fail(EINVAL);
	/* Our own cached blocks would make the range look busy. */
	hpm_heap_cache_flush();
	heap_lock(h);
	for (uint32_t i = 0; i < h->nr_runs; i++) {
		struct hpm_heap_run *o = &h->runs[i];

		if (run_empty(o) || a >= o->end || b <= o->base)
			continue;
		if (r) {
			ret = -EINVAL;
			goto out;
		}
		r = o;
	}
	if (!r) {
		ret = -ENOENT;
		goto out;
	}
	if (a < r->base || b > r->end ||
	    (a != r->base && (a & (ELEM_GRAIN - 1))) ||
	    (b != r->end && (b & (ELEM_GRAIN - 1)))) {
		ret = -EINVAL;
		goto out;
	}
	/* A piece in front keeps [start, a) with a sentinel at a - 16. */
	left = a > r->base && a - ELEM_HDR > r->start;
	/* A piece behind starts with a free block at rs and ends at r->end. */
	if (b < r->end) {
		rs = grid_first(b);
		right = rs + ELEM_MIN + ELEM_HDR <= r->end;
	} else {
		right = false;
	}
	lo = left ? a - ELEM_HDR : r->start;
	hi = right ? rs + ELEM_MIN : r->end - ELEM_HDR;
	e = free_spanning(h, lo, hi);
	if (!e || (!left && (uintptr_t)e != r->start)) {
		ret = -EBUSY;
		goto out;
	}
	if (left && right) {
		slot = run_slot(h);
		if (!slot) {
			ret = -ENOSPC;
			goto out;
		}
	}
	es = (uintptr_t)e;
	ee = es + elem_size(e);
	free_remove(h, e);
	h->total_bytes -= r->end - r->start;
	if (right) {
		struct hpm_elem *f = elem_at(rs), *next = elem_at(ee);

		prev_st(f, 0);
		elem_set(h, f, ee - rs, ELEM_F_FREE);
		prev_st(next, ee - rs);
		free_insert(h, f);
		h->total_bytes += r->end - rs;
	} else {
		/* The old sentinel is in the range: no stale header left there. */
		info_st(elem_at(r->end - ELEM_HDR), 0);
	}
	if (left) {
		struct hpm_elem *s = elem_at(a - ELEM_HDR);

		if (es < a - ELEM_HDR) {
			prev_st(s, a - ELEM_HDR - es);
			elem_set(h, s, ELEM_HDR, ELEM_F_SENTINEL | ELEM_F_PREV_FREE);
			elem_set(h, e, a - ELEM_HDR - es, ELEM_F_FREE);
			free_insert(h, e);
		} else {
			/* @e was at a - 16: its busy neighbour's size stays in prev_size. */
			elem_set(h, s, ELEM_HDR, ELEM_F_SENTINEL);
		}
		h->total_bytes += a - r->start;
	} else if (es >= a) {
		info_st(e, 0);
	}
	/* Publish what stays before anything shrinks (see above). */
	if (left && right) {
		run_publish(h, slot, rs, r->end, b);
		runs_gen_bump(h);
		__atomic_store_n(&r->end, a, __ATOMIC_RELEASE);
	} else if (left) {
		__atomic_store_n(&r->end, a, __ATOMIC_RELEASE);
	} else if (right) {
		/* Only free bytes lay in front of rs: no live block moves out. */
		__atomic_store_n(&r->base, b, __ATOMIC_RELEASE);
		__atomic_store_n(&r->start, rs, __ATOMIC_RELEASE);
	} else {
		run_clear(r);
	}
out:
	heap_unlock(h);
	if (ret)
		return hpm_fail(-ret);
	hpm_heap_epoch_bump();
	return 0;
}

/* ---- growth and trim hooks (process-local) ---- */

static hpm_heap_grow_fn heap_grow_fn;
static void *heap_grow_arg;
static hpm_heap_trim_fn heap_trim_fn;
static void *heap_trim_arg;
static size_t heap_trim_page;
/* Smallest free block worth a look: SIZE_MAX while no trim hook is set. */
size_t hpm_heap_trim_min = SIZE_MAX;

__thread struct hpm_heap *hpm_heap_trim_heap;
static __thread uintptr_t trim_start, trim_end;

void hpm_heap_set_grow_hook(hpm_heap_grow_fn grow, void *arg)
{
	heap_grow_arg = arg;
	__atomic_store_n(&heap_grow_fn, grow, __ATOMIC_RELEASE);
}

int hpm_heap_grow(struct hpm_heap *h, size_t size, size_t align, size_t bound,
		  unsigned int flags)
{
	hpm_heap_grow_fn grow = __atomic_load_n(&heap_grow_fn, __ATOMIC_ACQUIRE);

	if (!grow || !h || h->socket >= HPM_MAX_NODES)
		return -ENOMEM;
	return grow(h, size, align, bound, flags, heap_grow_arg);
}

void hpm_heap_set_trim_hook(hpm_heap_trim_fn trim, size_t page_sz, void *arg)
{
	if (trim && (!page_sz || !HPM_IS_POW2(page_sz) || page_sz < 4096))
		trim = NULL;
	heap_trim_arg = arg;
	heap_trim_page = page_sz;
	__atomic_store_n(&heap_trim_fn, trim, __ATOMIC_RELEASE);
	/*
	 * The smallest free block that can hold a whole page: a run of
	 * exactly one page, one block of a page less its front gap and
	 * sentinel (48 + 16 bytes). Dynamic memory must hear of it, or a
	 * page kept by its hysteresis would never go back.
	 */
	__atomic_store_n(&hpm_heap_trim_min, trim ? page_sz - ELEM_GRAIN : SIZE_MAX,
			 __ATOMIC_RELAXED);
}

/*
 * The whole pages of @pg bytes inside free block @e of run @r that
 * hpm_heap_remove_memory() accepts, as [*a, *b); false when none.
 */
static bool free_block_pages(const struct hpm_heap_run *r, const struct hpm_elem *e,
			     size_t pg, uintptr_t *a, uintptr_t *b)
{
	uintptr_t es = (uintptr_t)e, ee = es + elem_size(e);

	/* From the run's first byte, or leaving room for a sentinel in front. */
	*a = es == r->start && !(r->base & (pg - 1)) ? r->base :
	     HPM_ALIGN_UP(es + ELEM_HDR, pg);
	/* To the run's end, or leaving a free block and grid slack behind. */
	if (ee + ELEM_HDR == r->end && !(r->end & (pg - 1)))
		*b = r->end;
	else if (ee > ELEM_HDR + 2 * ELEM_GRAIN)
		*b = (ee - (ELEM_GRAIN - ELEM_HDR) - ELEM_MIN) & ~(uintptr_t)(pg - 1);
	else
		*b = 0;
	return *b > *a;
}

/* hpm_heap_release() merged free block @e: note its pages for the hook. */
static __hpm_cold void trim_note(struct hpm_heap *h, struct hpm_elem *e)
{
	const struct hpm_heap_run *r;
	uintptr_t a, b;

	if (h->socket >= HPM_MAX_NODES || !heap_trim_page)
		return;
	r = run_of_locked(h, (uintptr_t)e);
	if (r && free_block_pages(r, e, heap_trim_page, &a, &b)) {
		hpm_heap_trim_heap = h;
		trim_start = a;
		trim_end = b;
	}
}

__hpm_cold void hpm_heap_trim_report(void)
{
	hpm_heap_trim_fn trim = __atomic_load_n(&heap_trim_fn, __ATOMIC_ACQUIRE);
	struct hpm_heap *h = hpm_heap_trim_heap;

	/* Cleared first: the hook's own heap calls must not report again. */
	hpm_heap_trim_heap = NULL;
	if (trim)
		trim(h, (void *)trim_start, trim_end - trim_start, heap_trim_arg);
}

struct best_pages {
	struct hpm_heap *h;
	size_t pg;
	uintptr_t a, b;
};

static bool note_pages(struct hpm_elem *e, void *arg)
{
	struct best_pages *bp = arg;
	const struct hpm_heap_run *r = run_of_locked(bp->h, (uintptr_t)e);
	uintptr_t a, b;

	if (r && free_block_pages(r, e, bp->pg, &a, &b) && b - a > bp->b - bp->a) {
		bp->a = a;
		bp->b = b;
	}
	return false;	/* look at every block */
}

int hpm_heap_find_free_pages(struct hpm_heap *h, size_t page_sz, void **va,
			     size_t *len)
{
	struct best_pages bp = { h, page_sz, 0, 0 };

	if (!h || h->magic != HPM_HEAP_MAGIC || !va || !len ||
	    !page_sz || !HPM_IS_POW2(page_sz))
		return hpm_fail(EINVAL);
	hpm_heap_cache_flush();
	heap_lock(h);
	/* A whole one-page run's block is a page less 64 bytes. */
	free_scan(h, page_sz - ELEM_GRAIN, note_pages, &bp);
	heap_unlock(h);
	if (bp.b <= bp.a)
		return hpm_fail(ENOENT);
	*va = (void *)bp.a;
	*len = bp.b - bp.a;
	return 0;
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
 * The first free block of @h, in bin order from the bin of @min bytes up,
 * for which @fit says yes; NULL when none does. Linear in the number of
 * free blocks: for constrained requests and memory removal, not malloc.
 */
static struct hpm_elem *free_scan(struct hpm_heap *h, size_t min,
				  bool (*fit)(struct hpm_elem *e, void *arg), void *arg)
{
	unsigned int fl0, sl0;

	mapping_insert(min, &fl0, &sl0);
	for (unsigned int fl = fl0; fl < HPM_HEAP_FL_COUNT; fl++) {
		uint32_t map = h->sl_bitmap[fl];

		if (fl == fl0)
			map &= ~0u << sl0;
		while (map) {
			unsigned int sl = (unsigned int)__builtin_ctz(map);

			map &= map - 1;
			for (struct hpm_elem *e = h->free_list[fl][sl]; e;
			     e = elem_links(e)->next)
				if (fit(e, arg))
					return e;
		}
	}
	return NULL;
}

struct constrained {
	size_t size, need, align, bound;
	bool contig;
	uintptr_t p;
};

static bool constrained_fits(struct hpm_elem *e, void *arg)
{
	struct constrained *c = arg;

	if (elem_size(e) < c->need)
		return false;
	c->p = place(e, c->size, c->need, c->align, c->bound, c->contig);
	return c->p != 0;
}

/*
 * Slow path for bounded or IOVA-contiguous requests: every free block that
 * is large enough is a candidate, since a constraint can reject any of
 * them. Memzones, not malloc, use it.
 */
static struct hpm_elem *take_constrained(struct hpm_heap *h, size_t size,
					 size_t need, size_t align,
					 size_t bound, bool contig)
{
	struct constrained c = { size, need, align, bound, contig, 0 };
	struct hpm_elem *e = free_scan(h, need, constrained_fits, &c);

	if (!e)
		return NULL;
	free_remove(h, e);
	return carve(h, e, c.p - ELEM_HDR, need);
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

/* The largest free block of @h, or NULL; lock held. */
static struct hpm_elem *biggest_free(struct hpm_heap *h)
{
	struct hpm_elem *best = NULL;
	unsigned int fl, sl;

	if (!h->fl_bitmap)
		return NULL;
	/* Every block of the highest non-empty bin is larger than the rest. */
	fl = fls64(h->fl_bitmap);
	sl = fls64(h->sl_bitmap[fl]);
	for (struct hpm_elem *e = h->free_list[fl][sl]; e; e = elem_links(e)->next)
		if (!best || elem_size(e) > elem_size(best))
			best = e;
	return best;
}

/*
 * Usable bytes (a multiple of a cache line) of the largest block meeting
 * @align and contiguity that @h's largest free block holds, and its
 * payload in *@pp; 0 when none. Lock held.
 */
static size_t biggest_fit(struct hpm_heap *h, size_t align, bool contig,
			  uintptr_t *pp)
{
	struct hpm_elem *e = biggest_free(h);
	uintptr_t p, end;
	size_t len, lo, hi;

	if (!e)
		return 0;
	end = (uintptr_t)e + elem_size(e);
	p = place(e, 1, ELEM_MIN, align, 0, contig);
	if (!p || end - p < ELEM_TRAILER + ELEM_GRAIN)
		return 0;
	len = (end - p - ELEM_TRAILER) & ~(size_t)(ELEM_GRAIN - 1);
	if (contig && !heap_contig(p, len)) {
		/* Contiguity only shrinks as the length grows: bisect. */
		for (lo = ELEM_GRAIN, hi = len; hi - lo > ELEM_GRAIN;) {
			size_t mid = (lo + (hi - lo) / 2) & ~(size_t)(ELEM_GRAIN - 1);

			if (heap_contig(p, mid))
				lo = mid;
			else
				hi = mid;
		}
		len = lo;
	}
	*pp = p;
	return len;
}

void *hpm_heap_alloc_biggest(int socket, size_t align, unsigned int flags,
			     size_t *lenp)
{
	bool contig = flags & HPM_HEAP_F_CONTIG;
	struct hpm_heap *tbl, *best = NULL;
	size_t best_len = 0;
	uint32_t mask;

	if (!heaps_get(&tbl, &mask))
		return hpm_fail_ptr(ENODEV);
	if ((align && !HPM_IS_POW2(align)) || align > REQ_MAX ||
	    socket < HPM_SOCKET_ANY || socket >= HPM_HEAP_SLOTS ||
	    (flags & ~HPM_HEAP_F_ALL))
		return hpm_fail_ptr(EINVAL);
	if (align < ELEM_ALIGN)
		align = ELEM_ALIGN;
	/* An external heap's socket id names that heap alone. */
	if (socket >= HPM_MAX_NODES && !heaps_get_all(&tbl, &mask))
		return hpm_fail_ptr(ENODEV);
	if (socket != HPM_SOCKET_ANY)
		mask &= 1u << socket;
	/* Our cached blocks would hide free space from the search. */
	hpm_heap_cache_flush();
	/*
	 * Pick the node with the largest block, then take it under that
	 * heap's lock; another thread may take part of it meanwhile, so
	 * look again (a few times) rather than fail at once.
	 */
	for (int tries = 0; tries < 4; tries++) {
		uintptr_t p = 0;

		best = NULL;
		best_len = 0;
		for (uint32_t m = mask; m; m &= m - 1) {
			struct hpm_heap *h = &tbl[__builtin_ctz(m)];
			size_t len;

			heap_lock(h);
			len = biggest_fit(h, align, contig, &p);
			heap_unlock(h);
			if (len > best_len) {
				best = h;
				best_len = len;
			}
		}
		if (!best)
			return hpm_fail_ptr(ENOMEM);
		heap_lock(best);
		if (biggest_fit(best, align, contig, &p) >= best_len) {
			struct hpm_elem *e = biggest_free(best);

			free_remove(best, e);
			e = carve(best, e, p - ELEM_HDR, elem_need(best_len));
			if (flags & HPM_HEAP_F_ZERO)
				memset(elem_data(e), 0, best_len);
			heap_unlock(best);
			*lenp = best_len;
			return elem_data(e);
		}
		heap_unlock(best);
	}
	return hpm_fail_ptr(ENOMEM);
}

void *hpm_heap_take(struct hpm_heap *h, size_t size, size_t need,
		    size_t align, size_t bound, unsigned int flags)
{
	struct hpm_elem *e;

	heap_lock(h);
	e = heap_take(h, size, need, align, bound, flags);
	heap_unlock(h);
	return e ? elem_data(e) : NULL;
}

int hpm_heap_free_checked(struct hpm_heap *h, const struct hpm_heap_run *run,
			  void *ptr)
{
	struct hpm_elem *e;

	heap_lock(h);
	e = elem_check(h, run, (uintptr_t)ptr, "free");
	if (likely(e))
		hpm_heap_release(h, e);
	heap_unlock(h);
	return e ? 0 : hpm_fail(EINVAL);
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
	    socket >= HPM_HEAP_SLOTS || (flags & ~HPM_HEAP_F_ALL))
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

		/*
		 * A neighbour this thread freed a moment ago sits in its cache
		 * and looks allocated: growing in place into it is what DPDK
		 * code that reallocs large buffers counts on.
		 */
		if (need > elem_size(e) &&
		    !(info_ld(next) & (ELEM_F_FREE | ELEM_F_SENTINEL)) &&
		    elem_size(e) + elem_size(next) +
		    ((info_ld(elem_next(next)) & ELEM_F_FREE) ?
		     elem_size(elem_next(next)) : 0) >= need &&
		    hpm_heap_cache_take(h, next))
			hpm_heap_release(h, next);
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
		if (run_empty(&h->runs[i]))
			continue;
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
	CHECK(fb + bb + (uint64_t)runs_live(h) * ELEM_HDR == h->total_bytes,
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

__hpm_cold void hpm_heap_recover(struct hpm_heap *h, uint64_t dead)
{
	int ret = 0;

	h->fl_bitmap = 0;
	memset(h->sl_bitmap, 0, sizeof(h->sl_bitmap));
	memset(h->free_list, 0, sizeof(h->free_list));
	h->free_bytes = h->alloc_bytes = 0;
	h->free_count = h->alloc_count = 0;
	for (uint32_t i = 0; i < h->nr_runs && !ret; i++)
		if (!run_empty(&h->runs[i]))
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
	struct hpm_elem *e = biggest_free(h);

	return e ? elem_usable(e) : 0;
}

void hpm_heap_bytes(struct hpm_heap *h, uint64_t *alloc, uint64_t *free_b)
{
	heap_lock(h);
	*alloc = h->alloc_bytes;
	*free_b = h->free_bytes;
	heap_unlock(h);
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
	st->runs = runs_live(h);
	heap_unlock(h);
	return 0;
}
