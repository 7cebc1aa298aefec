/* SPDX-License-Identifier: MIT */
/*
 * Inside the per-node heaps: the element layout and the lock-free pointer
 * checks, shared by the TLSF heap (malloc_heap.c) and the per-thread caches
 * (malloc_tcache.c), whose fast paths must inline them.
 */
#ifndef HPM_MALLOC_ELEM_H
#define HPM_MALLOC_ELEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "internal.h"
#include "malloc_heap.h"

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
 * The last 8 bytes of every element are its trailer: debug builds
 * (HPM_DEBUG=1) keep a cookie there, checked on free and by validation;
 * other builds leave it unused, so that a block's usable size is the same
 * in every build. Each run ends with a 16-byte busy sentinel so that
 * merging never walks off a run.
 * Every header sits 16 bytes before a cache-line boundary and every
 * element size is a multiple of ELEM_GRAIN (a cache line), so every
 * payload is cache-line aligned without any padding in front of it, as
 * DPDK guarantees for an alignment of 0: hpm_malloc(type, 64, 0) fills a
 * 128-byte element (DPDK's header alone is a cache line).
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
 * order, which malloc_heap.c's crash-safe update order relies on. On
 * x86-64 both are still plain moves; only the compiler is held back.
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

#define ELEM_HDR		16u
/* Element sizes are multiples of it; payloads are aligned to it. */
#define ELEM_GRAIN		64u
#define ELEM_ALIGN		ELEM_GRAIN
#define ELEM_MIN		ELEM_GRAIN	/* header + free-list links, rounded */
#define ELEM_F_FREE		(1ull << 0)
#define ELEM_F_PREV_FREE	(1ull << 1)	/* saves reading the previous header */
#define ELEM_F_SENTINEL		(1ull << 2)
#define ELEM_FLAGS		0xfull
#define ELEM_SIZE_MASK		(((1ull << 40) - 1) & ~ELEM_FLAGS)
#define ELEM_SOCK_SHIFT		40
#define ELEM_ADDR_SHIFT		36	/* address bits 4..27 onto bits 40..63 */
#define ELEM_MAGIC		0xa11c5ull	/* 20 bits, above the node */
#define ELEM_TAG_MASK		(~0ull << ELEM_SOCK_SHIFT)

/* Reserved in every build (the debug cookie's place): see above. */
#define ELEM_TRAILER		8u
#if HPM_DEBUG
#define TRAILER_COOKIE		0x7e11c0de5afeb10cull
#endif

/* First element header of a run that may start at @va (header on the grid). */
static inline uintptr_t grid_first(uintptr_t va)
{
	return HPM_ALIGN_UP(va + ELEM_HDR, (uintptr_t)ELEM_GRAIN) - ELEM_HDR;
}

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
extern struct hpm_heap *hpm_heap_test_tbl;
extern uint32_t hpm_heap_test_mask;

/* The heap array and the nodes that have memory; false when there is none. */
static inline bool heaps_get(struct hpm_heap **tbl, uint32_t *mask)
{
	struct hpm_config *cfg = hpm_cfg;

	if (likely(cfg)) {
		*tbl = cfg->heaps;
		*mask = cfg->socket_mask & ((1u << HPM_MAX_NODES) - 1);
		return true;
	}
	*tbl = hpm_heap_test_tbl;
	*mask = hpm_heap_test_mask;
	return hpm_heap_test_tbl != NULL;
}

/*
 * heaps_get(), with the external heaps in bits HPM_MAX_NODES.. of *@mask:
 * for finding a pointer's heap, never for choosing where to allocate.
 */
static inline bool heaps_get_all(struct hpm_heap **tbl, uint32_t *mask)
{
	struct hpm_config *cfg = hpm_cfg;

	if (likely(cfg)) {
		*tbl = cfg->heaps;
		*mask = (cfg->socket_mask & ((1u << HPM_MAX_NODES) - 1)) |
			__atomic_load_n(&cfg->ext.mask, __ATOMIC_ACQUIRE) << HPM_MAX_NODES;
		return true;
	}
	return heaps_get(tbl, mask);
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
 * cookie (16 bytes) clear of the trailer (64 - 16 - 8 = 40 bytes).
 */
#define ELEM_MIN_LIVE		ELEM_GRAIN

/* Element size for a request of @size bytes; @size <= REQ_MAX. */
static inline size_t elem_need(size_t size)
{
	return HPM_ALIGN_UP(size + ELEM_HDR + ELEM_TRAILER, (size_t)ELEM_GRAIN);
}

/* Index of the highest set bit of @x != 0 (TLSF and thread-cache classes). */
static inline unsigned int fls64(uint64_t x)
{
	return 63 - (unsigned int)__builtin_clzll(x);
}

/* Rebuild @h after its lock holder (@dead, robust_lock.h) died; lock held. */
__hpm_cold void hpm_heap_recover(struct hpm_heap *h, uint64_t dead);

/* The heap's lock; repairs the heap first when its holder died. */
static inline void heap_lock(struct hpm_heap *h)
{
	uint64_t dead = hpm_robust_lock(&h->lock);

	if (unlikely(dead))
		hpm_heap_recover(h, dead);
}

/*
 * A free under the lock left a free block holding whole pages and a trim
 * hook is set (hpm_heap_set_trim_hook()): the block, reported to the hook
 * once the lock is dropped. Thread-local, so the test is one TLS load.
 */
extern __thread struct hpm_heap *hpm_heap_trim_heap;
__hpm_cold void hpm_heap_trim_report(void);

static inline void heap_unlock(struct hpm_heap *h)
{
	hpm_robust_unlock(&h->lock);
	if (unlikely(hpm_heap_trim_heap != NULL))
		hpm_heap_trim_report();
}

/*
 * Runs change under the heap lock while other threads and processes look
 * them up without it (heap_of_ptr()): bounds are read and written
 * atomically; see "Adding and removing memory" in malloc_heap.c for why
 * a lookup without the lock is still right for every live block.
 */
static inline uintptr_t run_start(const struct hpm_heap_run *r)
{
	return __atomic_load_n(&r->start, __ATOMIC_ACQUIRE);
}

static inline uintptr_t run_end(const struct hpm_heap_run *r)
{
	return __atomic_load_n(&r->end, __ATOMIC_ACQUIRE);
}

/*
 * Thread cache bookkeeping inside a cached block (see malloc_tcache.c),
 * here because every pointer check looks for the cookie.
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

/* ---- finding a heap and checking pointers (no lock) ---- */

/*
 * The run of heap @h holding @p, or NULL; no lock. Runs change under the
 * heap lock while we look (malloc_heap.c, "Adding and removing memory"):
 * a miss while runs_gen moved is looked at again.
 */
static __hpm_always_inline const struct hpm_heap_run *
heap_find_run(struct hpm_heap *h, uintptr_t p)
{
	uint32_t gen, g2;

	if (p < __atomic_load_n(&h->lo, __ATOMIC_RELAXED) ||
	    p >= __atomic_load_n(&h->hi, __ATOMIC_RELAXED))
		return NULL;
	gen = __atomic_load_n(&h->runs_gen, __ATOMIC_ACQUIRE);
	for (;;) {
		uint32_t n = __atomic_load_n(&h->nr_runs, __ATOMIC_ACQUIRE);

		for (uint32_t i = 0; i < n; i++)
			if (p >= run_start(&h->runs[i]) && p < run_end(&h->runs[i]))
				return &h->runs[i];
		/*
		 * Missed: a run may have shrunk after we passed the slot of
		 * its replacement. The writer bumped runs_gen before
		 * shrinking, so having seen the shrink we see the bump.
		 */
		g2 = __atomic_load_n(&h->runs_gen, __ATOMIC_ACQUIRE);
		if (g2 == gen)
			return NULL;
		gen = g2;
	}
}

/*
 * The heap and run holding @p, or NULL. Needs no lock (heap_find_run());
 * it guarantees that the header in front of @p is mapped memory before
 * anyone reads it, for every live block.
 */
static __hpm_always_inline struct hpm_heap *
heap_of_ptr(uintptr_t p, const struct hpm_heap_run **run)
{
	struct hpm_heap *tbl;
	uint32_t mask;

	if (!heaps_get_all(&tbl, &mask))
		return NULL;
	while (mask) {
		struct hpm_heap *h = &tbl[__builtin_ctz(mask)];

		mask &= mask - 1;
		*run = heap_find_run(h, p);
		if (*run)
			return h;
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

	uintptr_t rstart = run_start(run), rend = run_end(run);

	if (unlikely((p & (ELEM_ALIGN - 1)) || (uintptr_t)e < rstart))
		return "not a block";
	info = info_ld(e);
	if (unlikely((info & ELEM_TAG_MASK) != elem_tag(h, e) || (info & ELEM_F_SENTINEL)))
		return "not a block (bad header)";
	if (unlikely(info & ELEM_F_FREE))
		return "already free (double free)";
	size = info & ELEM_SIZE_MASK;
	if (unlikely(size < ELEM_MIN_LIVE || size > rend - ELEM_HDR - (uintptr_t)e))
		return "not a block (bad size)";
	if (thorough) {
		prev = prev_ld(e);
		if ((prev == 0) != ((uintptr_t)e == rstart) ||
		    prev > (uintptr_t)e - rstart)
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

/* ---- what the heap does for the thread caches (malloc_heap.c) ---- */

/*
 * A block of @size bytes (element of @need, elem_need()) meeting @align,
 * @bound and HPM_HEAP_F_CONTIG from heap @h alone, under its lock; the
 * payload or NULL. Arguments already checked, @align >= ELEM_ALIGN.
 */
void *hpm_heap_take(struct hpm_heap *h, size_t size, size_t need,
		    size_t align, size_t bound, unsigned int flags);

/* Free live element @e of @h, merging with free neighbours; lock held. */
void hpm_heap_release(struct hpm_heap *h, struct hpm_elem *e);

/*
 * Free @ptr in @h (whose run @run holds it) after the full check under the
 * lock: 0, or -EINVAL (logged) when it is not a live, uncached block.
 */
int hpm_heap_free_checked(struct hpm_heap *h, const struct hpm_heap_run *run,
			  void *ptr);

/* ---- what the thread caches need to hear (malloc_tcache.c) ---- */

/*
 * Take live element @e of @h out of the calling thread's cache, where a
 * free() a moment ago may have put it: true when it was there (it is then
 * an ordinary live block again). realloc() uses it to grow in place into
 * a neighbour the heap would otherwise count as allocated. Other threads'
 * caches are theirs alone. Heap lock held (the cache itself needs none).
 */
bool hpm_heap_cache_take(struct hpm_heap *h, struct hpm_elem *e);

/* hpm_heap_set_trim_hook()'s threshold: SIZE_MAX while no hook is set. */
extern size_t hpm_heap_trim_min;

/*
 * Ask the grow hook (hpm_heap_set_grow_hook()) for memory in node heap
 * @h for a request that failed; lock not held. 0 when memory was added
 * (retry once), -ENOMEM without a hook or for an external heap.
 */
int hpm_heap_grow(struct hpm_heap *h, size_t size, size_t align, size_t bound,
		  unsigned int flags);

/*
 * The heap table, a heap's memory or a heap's instance changed: unbinds
 * every thread's fast paths (each rebinds on its next slow free).
 */
void hpm_heap_epoch_bump(void);

#endif /* HPM_MALLOC_ELEM_H */
