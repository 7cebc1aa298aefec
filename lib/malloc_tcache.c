// SPDX-License-Identifier: MIT
/*
 * Per-thread caches in front of the per-node heaps (malloc_heap.c), and the
 * alloc and free entry points, whose lock-free fast paths they are.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <hpmem/init.h>

#include "internal.h"
#include "malloc_elem.h"
#include "malloc_heap.h"

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

void hpm_heap_epoch_bump(void)
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
	uintptr_t p = (uintptr_t)elem_data(e);
	const struct hpm_heap_run *run = heap_find_run(h, p);
	size_t size;

	/* Heaps' memory never overlaps: in a run of @h is in @h. */
	return run && !elem_why(h, run, p, true, &size) && elem_cached(e);
}

/*
 * tc_intact() under the heap lock: a lock-free check may have looked at a
 * run that memory being added or removed just changed (malloc_heap.c,
 * "Adding and removing memory"); under the lock the runs hold still.
 */
static __hpm_cold bool tc_intact_locked(struct hpm_heap *h, struct hpm_elem *e)
{
	bool ok;

	heap_lock(h);
	ok = tc_intact(h, e);
	heap_unlock(h);
	return ok;
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
		if (unlikely(!tc_intact(h, *pp)) && !tc_intact_locked(h, *pp)) {
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
		/* Read before hpm_heap_release() reuses the payload for free-list links. */
		next = tc_link(e)->next;
		tc->nodes[h->socket].bytes -= elem_size(e);
		tc_link(e)->cookie = 0;
		hpm_heap_release(h, e);
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
	uintptr_t start = run_start(run), end = run_end(run);
	struct hpm_heap *tbl;
	uint32_t mask;

	/* A run emptied meanwhile (start/end 0) binds an empty span. */
	tc->run_lo = start;
	tc->run_span16 = end > start ? (end - start) >> 4 : 0;
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

	/* External heaps have no caches: their memory may be removed any time. */
	if (size >= TC_MAX_NEED || s >= HPM_MAX_NODES)
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

bool hpm_heap_cache_take(struct hpm_heap *h, struct hpm_elem *e)
{
	struct tcache *tc = tc_mine();
	size_t size = elem_size(e);
	struct hpm_elem **pp;
	struct tc_node *n;
	struct tc_bin *b;

	if (!tc || size >= TC_MAX_NEED || h->socket >= HPM_MAX_NODES ||
	    tc->nodes[h->socket].instance != h->instance)
		return false;
	n = &tc->nodes[h->socket];
	b = &n->bin[tc_class(size)];
	/*
	 * Look for @e in our own bin, never at @e's payload: while it is not
	 * ours, another thread may be writing it. The links run through
	 * freed memory: trust each block only once checked.
	 */
	for (pp = &b->head; *pp && tc_intact(h, *pp); pp = &tc_link(*pp)->next) {
		if (*pp != e)
			continue;
		*pp = tc_link(e)->next;
		b->count--;
		n->bytes -= size;
		tc_link(e)->cookie = 0;
		return true;
	}
	return false;
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

/* The node heaps allowed, @first first (and its thread cache), then the others. */
static __hpm_always_inline void *heap_try(struct hpm_heap *tbl, uint32_t mask, int first,
			     int socket, size_t size, size_t need, size_t align,
			     size_t bound, unsigned int flags)
{
	void *p = NULL;

	if (first >= 0 && first < HPM_MAX_NODES && (mask & (1u << first))) {
		if (align == ELEM_ALIGN && !bound && !(flags & HPM_HEAP_F_CONTIG) &&
		    need < TC_MAX_NEED)
			p = tc_get(&tbl[first], first, need);
		if (!p)
			p = hpm_heap_take(&tbl[first], size, need, align, bound,
					  flags);
		mask &= ~(1u << first);
	}
	if (!p && socket != HPM_SOCKET_ANY && (flags & HPM_HEAP_F_STRICT))
		mask = 0;
	while (!p && mask) {
		int s = __builtin_ctz(mask);

		mask &= mask - 1;
		p = hpm_heap_take(&tbl[s], size, need, align, bound, flags);
	}
	return p;
}

/*
 * Nothing anywhere allowed: grow the first node's heap, then retry. The
 * grow lock is dropped before the heap is searched again, so another
 * thread or process may take the new room first, or its free of the
 * heap's last block may give the fresh pages straight back: grow again,
 * a few times, before calling it ENOMEM (a full slice stops the loop).
 */
static __hpm_cold __attribute__((noinline)) void *
heap_alloc_grow(struct hpm_heap *tbl, uint32_t mask, int first, int socket,
		size_t size, size_t need, size_t align, size_t bound,
		unsigned int flags)
{
	void *p = NULL;

	if (first < 0 || first >= HPM_MAX_NODES)
		return NULL;
	for (int tries = 0; !p && tries < 4; tries++) {
		if (hpm_heap_grow(&tbl[first], size, align, bound, flags))
			return NULL;
		p = heap_try(tbl, mask, first, socket, size, need, align, bound, flags);
	}
	return p;
}

/* External heap @socket: that heap alone, no cache, no growth. */
static __hpm_cold __attribute__((noinline)) void *
heap_alloc_ext(int socket, size_t size, size_t need, size_t align,
	       size_t bound, unsigned int flags)
{
	struct hpm_heap *tbl;
	uint32_t mask;
	void *p;

	if (!heaps_get_all(&tbl, &mask) || !(mask & (1u << socket)))
		return hpm_fail_ptr(EINVAL);
	p = hpm_heap_take(&tbl[socket], size, need, align, bound, flags);
	if (!p)
		return hpm_fail_ptr(ENOMEM);
	if (flags & HPM_HEAP_F_ZERO)
		memset(p, 0, size);
	return p;
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
		     socket < HPM_SOCKET_ANY || socket >= HPM_HEAP_SLOTS))
		return hpm_fail_ptr(EINVAL);
	if (unlikely(size > REQ_MAX || align > REQ_MAX))
		return hpm_fail_ptr(ENOMEM);
	if (align < ELEM_ALIGN)
		align = ELEM_ALIGN;
	need = elem_need(size);
	if (unlikely(socket >= HPM_MAX_NODES))
		p = heap_alloc_ext(socket, size, need, align, bound, flags);
	if (unlikely(socket >= HPM_MAX_NODES))
		return p;

	first = socket == HPM_SOCKET_ANY ? local_socket(mask) : socket;
	p = heap_try(tbl, mask, first, socket, size, need, align, bound, flags);
	if (unlikely(!p))
		p = heap_alloc_grow(tbl, mask, first, socket, size, need, align, bound,
				    flags);
	if (unlikely(!p))
		return hpm_fail_ptr(ENOMEM);
	if (flags & HPM_HEAP_F_ZERO)
		memset(p, 0, size);
	return p;
}

/*
 * Largest request whose element (elem_need()) stays below TC_MAX_NEED,
 * so that tc_class() stays inside its table.
 */
#define FAST_MAX_SIZE	(TC_MAX_NEED - ELEM_GRAIN - ELEM_HDR - ELEM_TRAILER)

/*
 * Fast path, no lock, no call, no stack frame: an ordinary request
 * (alignment 0 or a power of two up to a cache line, which every payload
 * has, no bound, no contiguity, element below TC_MAX_NEED)
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
		   size - 1 < FAST_MAX_SIZE &&
		   align <= ELEM_ALIGN && !(align & (align - 1)) && !bound &&
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
	return hpm_heap_free_checked(h, run, ptr);
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
