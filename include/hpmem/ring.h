/* SPDX-License-Identifier: MIT */
/* Lock-free fixed-size rings of pointers, shareable between processes. */
#ifndef HPMEM_RING_H
#define HPMEM_RING_H

#include <errno.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>

#include <hpmem/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Protocol (one per direction, "prod" and "cons"):
 *  1. A caller reserves n slots by moving its side's head forward (a CAS
 *     when several threads share the side, a plain store when the side is
 *     single), after checking the other side's tail for room/entries.
 *  2. It copies the pointers into (or out of) the reserved slots.
 *  3. It waits until its side's tail reaches its old head (so earlier
 *     reservations of the same side have finished), then publishes by
 *     storing tail = new head with release semantics.
 * The other side reads this side's tail with acquire semantics, which pairs
 * with the release in step 3: it never sees a slot before its contents.
 *
 * Indices are free-running 32-bit counters; slot = index & mask.
 */

/* Enqueue is single-producer by default. */
#define HPM_RING_F_SP_ENQ	0x1u
/* Dequeue is single-consumer by default. */
#define HPM_RING_F_SC_DEQ	0x2u
/* count is the usable capacity (rounded up internally), not a power of two. */
#define HPM_RING_F_EXACT_SZ	0x4u
#define HPM_RING_F_ALL		(HPM_RING_F_SP_ENQ | HPM_RING_F_SC_DEQ | \
				 HPM_RING_F_EXACT_SZ)

/*
 * Pauses a multi-producer/consumer spends waiting for an earlier one to
 * publish before it yields the CPU (about 2-8 us, far above a normal wait).
 */
#define HPM_RING_SPINS_BEFORE_YIELD	64u
/* Largest ring size (slots). */
#define HPM_RING_SZ_MAX		0x40000000u
/* Name length including NUL; the memzone is named "RG_<name>". */
#define HPM_RING_NAMESIZE	(HPM_NAME_SIZE - 3)

#define HPM_RING_MAGIC		0x52494e47u	/* "RING" */

struct hpm_memzone;

/* One side of the ring. */
struct hpm_ring_headtail {
	_Atomic(uint32_t) head;	/* next index to reserve */
	_Atomic(uint32_t) tail;	/* everything before it is published */
	uint32_t single;	/* this side's default is single-threaded */
} __hpm_cache_aligned;

struct hpm_ring {
	char name[HPM_RING_NAMESIZE];
	uint32_t magic;
	uint32_t flags;
	uint32_t size;		/* slots, power of two */
	uint32_t mask;		/* size - 1 */
	uint32_t capacity;	/* usable slots */
	const struct hpm_memzone *mz;	/* NULL when on caller memory */
	/*
	 * Each side is followed by an unused guard line: the adjacent-line
	 * prefetcher pulls lines in pairs, so sides one line apart would
	 * still be falsely shared. Only cache-line alignment is required.
	 */
	struct hpm_ring_headtail prod;
	char guard_prod_[HPM_CACHE_LINE_SIZE];
	struct hpm_ring_headtail cons;
	char guard_cons_[HPM_CACHE_LINE_SIZE];
	void *slots[] __hpm_cache_aligned;
};

/* Bytes needed for a ring of count slots (count a power of two), or -EINVAL. */
ssize_t hpm_ring_get_memsize(unsigned int count);
/* Same for a ring created with flags (HPM_RING_F_EXACT_SZ: any count). */
ssize_t hpm_ring_get_memsize_flags(unsigned int count, unsigned int flags);
/*
 * Initialise a ring in caller memory of hpm_ring_get_memsize_flags(count,
 * flags) bytes, aligned to a cache line.
 */
int hpm_ring_init(struct hpm_ring *r, const char *name, unsigned int count,
		  unsigned int flags);
/*
 * Create a ring in a memzone named "RG_<name>" on socket. count must be a
 * power of two (capacity count - 1) unless HPM_RING_F_EXACT_SZ (capacity
 * count). NULL + hpm_errno: EINVAL, ENAMETOOLONG, EEXIST, ENOMEM, ENOSPC.
 */
struct hpm_ring *hpm_ring_create(const char *name, unsigned int count,
				 int socket, unsigned int flags);
/* Find a ring created by any process; NULL + ENOENT when absent. */
struct hpm_ring *hpm_ring_lookup(const char *name);
/* Free a ring made by hpm_ring_create (no-op for NULL or caller memory). */
void hpm_ring_free(struct hpm_ring *r);
void hpm_ring_dump(FILE *f, const struct hpm_ring *r);

/* ---- fast paths ---- */

/*
 * Forced inline: with n and the single/fixed choice constant at the call
 * site the helpers fold into a few instructions; GCC's heuristics otherwise
 * keep them out of line and the call costs more than the ring operation.
 */
#define HPM_RING_INLINE_	static inline __attribute__((always_inline))

HPM_RING_INLINE_ void hpm_ring_pause_(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ volatile("yield");
#endif
}

/*
 * Reserve up to n slots on side `me` against the other side's tail. fixed:
 * all n or nothing. Returns the number reserved and their first index.
 * room(other_tail, head) = free slots for producers, entries for consumers.
 */
HPM_RING_INLINE_ unsigned int
hpm_ring_move_head_(struct hpm_ring_headtail *me,
		    const struct hpm_ring_headtail *other, uint32_t cap_add,
		    unsigned int n, bool fixed, bool single, uint32_t *old_head,
		    uint32_t *entries_out)
{
	uint32_t head, other_tail, room;
	unsigned int want;

	/*
	 * acquire: orders the load of other->tail below after this head load
	 * (and after the head reloaded by a failed CAS). Without it a stale
	 * other->tail read with a newer head would make room underflow.
	 */
	head = atomic_load_explicit(&me->head, memory_order_acquire);
	for (;;) {
		/*
		 * acquire pairs with the release store of other->tail in
		 * hpm_ring_update_tail_(): for producers, consumers finished
		 * reading the slots we will overwrite; for consumers, the
		 * producers' slot writes are visible.
		 */
		other_tail = atomic_load_explicit(&other->tail,
						  memory_order_acquire);
		/* cap_add = capacity for producers, 0 for consumers. */
		room = cap_add + other_tail - head;
		want = n;
		if (__builtin_expect(want > room, 0))
			want = fixed ? 0 : room;
		if (want == 0) {
			*entries_out = room;
			return 0;
		}
		if (single) {
			/* Only we move this head: relaxed suffices. */
			atomic_store_explicit(&me->head, head + want,
					      memory_order_relaxed);
			break;
		}
		/*
		 * acquire on failure for the same reason as the initial load
		 * (the reloaded head must precede the next other->tail read);
		 * C11 wants success at least as strong. Nothing is published
		 * through the head: slots are published by the tail.
		 */
		if (atomic_compare_exchange_weak_explicit(&me->head, &head,
							  head + want,
							  memory_order_acquire,
							  memory_order_acquire))
			break;
	}
	*old_head = head;
	*entries_out = room - want;
	return want;
}

HPM_RING_INLINE_ void hpm_ring_update_tail_(struct hpm_ring_headtail *ht,
					 uint32_t old, uint32_t new_val,
					 bool single)
{
	/*
	 * Earlier reservations on this side publish first: wait until the
	 * tail reaches our old head. acquire pairs with the release store
	 * of that earlier thread below: our plain store of the tail ends
	 * its release sequence, so without it the other side's acquire of
	 * our tail would not order the earlier thread's slot accesses
	 * before its own (a C11 data race, which TSan reports; free on x86).
	 */
	if (!single) {
		unsigned int spins = 0;

		while (atomic_load_explicit(&ht->tail, memory_order_acquire) !=
		       old) {
			/*
			 * The thread we wait for may have been preempted
			 * between its head and tail updates (more threads
			 * than cores): after a few microseconds give it our
			 * CPU instead of spinning for a whole time slice.
			 */
			if (++spins % HPM_RING_SPINS_BEFORE_YIELD)
				hpm_ring_pause_();
			else
				sched_yield();
		}
	}
	/*
	 * release pairs with the acquire load of this tail in the other
	 * side's hpm_ring_move_head_(): producers' slot writes (or
	 * consumers' slot reads) happen before the other side reuses them.
	 */
	atomic_store_explicit(&ht->tail, new_val, memory_order_release);
}

/*
 * Copy n pointers. With n constant at the call site (bulk 1/4/32) memcpy
 * becomes a few vector moves; otherwise a loop unrolled by four, as a
 * libc call costs more than copying the few pointers of a typical burst.
 */
HPM_RING_INLINE_ void hpm_ring_copy_ptrs_(void **dst, void *const *src,
					  unsigned int n)
{
	unsigned int i = 0;

	if (__builtin_constant_p(n)) {
		memcpy(dst, src, n * sizeof(void *));
		return;
	}
	for (; i + 4 <= n; i += 4) {
		dst[i] = src[i];
		dst[i + 1] = src[i + 1];
		dst[i + 2] = src[i + 2];
		dst[i + 3] = src[i + 3];
	}
	for (; i < n; i++)
		dst[i] = src[i];
}

HPM_RING_INLINE_ void hpm_ring_copy_in_(struct hpm_ring *r, uint32_t head,
				     void *const *objs, unsigned int n)
{
	uint32_t idx = head & r->mask;
	void **s = r->slots;
	unsigned int i;

	if (__builtin_expect(idx + n <= r->size, 1)) {
		hpm_ring_copy_ptrs_(&s[idx], objs, n);
	} else {
		unsigned int first = r->size - idx;

		for (i = 0; i < first; i++)
			s[idx + i] = objs[i];
		for (; i < n; i++)
			s[i - first] = objs[i];
	}
}

HPM_RING_INLINE_ void hpm_ring_copy_out_(const struct hpm_ring *r, uint32_t head,
				      void **objs, unsigned int n)
{
	uint32_t idx = head & r->mask;
	void *const *s = r->slots;
	unsigned int i;

	if (__builtin_expect(idx + n <= r->size, 1)) {
		hpm_ring_copy_ptrs_(objs, &s[idx], n);
	} else {
		unsigned int first = r->size - idx;

		for (i = 0; i < first; i++)
			objs[i] = s[idx + i];
		for (; i < n; i++)
			objs[i] = s[i - first];
	}
}

HPM_RING_INLINE_ unsigned int
hpm_ring_do_enqueue_(struct hpm_ring *r, void *const *objs, unsigned int n,
		     bool fixed, bool single, unsigned int *free_space)
{
	uint32_t head = 0, left;
	unsigned int got;

	got = hpm_ring_move_head_(&r->prod, &r->cons, r->capacity, n, fixed,
				  single, &head, &left);
	if (got) {
		hpm_ring_copy_in_(r, head, objs, got);
		hpm_ring_update_tail_(&r->prod, head, head + got, single);
	}
	if (free_space)
		*free_space = left;
	return got;
}

HPM_RING_INLINE_ unsigned int
hpm_ring_do_dequeue_(struct hpm_ring *r, void **objs, unsigned int n,
		     bool fixed, bool single, unsigned int *available)
{
	uint32_t head = 0, left;
	unsigned int got;

	got = hpm_ring_move_head_(&r->cons, &r->prod, 0, n, fixed, single,
				  &head, &left);
	if (got) {
		hpm_ring_copy_out_(r, head, objs, got);
		hpm_ring_update_tail_(&r->cons, head, head + got, single);
	}
	if (available)
		*available = left;
	return got;
}

/*
 * Bulk calls move all n objects or none and return n or 0; burst calls move
 * as many as possible and return that number. free_space / available
 * (optional) receive what is left after the call.
 */
HPM_RING_INLINE_ unsigned int
hpm_ring_mp_enqueue_bulk(struct hpm_ring *r, void *const *objs,
			unsigned int n, unsigned int *free_space)
{
	return hpm_ring_do_enqueue_(r, objs, n, true, false, free_space);
}

HPM_RING_INLINE_ unsigned int
hpm_ring_sp_enqueue_bulk(struct hpm_ring *r, void *const *objs,
			unsigned int n, unsigned int *free_space)
{
	return hpm_ring_do_enqueue_(r, objs, n, true, true, free_space);
}

HPM_RING_INLINE_ unsigned int
hpm_ring_enqueue_bulk(struct hpm_ring *r, void *const *objs,
			unsigned int n, unsigned int *free_space)
{
	return hpm_ring_do_enqueue_(r, objs, n, true, r->prod.single, free_space);
}

HPM_RING_INLINE_ unsigned int
hpm_ring_mp_enqueue_burst(struct hpm_ring *r, void *const *objs,
			unsigned int n, unsigned int *free_space)
{
	return hpm_ring_do_enqueue_(r, objs, n, false, false, free_space);
}

HPM_RING_INLINE_ unsigned int
hpm_ring_sp_enqueue_burst(struct hpm_ring *r, void *const *objs,
			unsigned int n, unsigned int *free_space)
{
	return hpm_ring_do_enqueue_(r, objs, n, false, true, free_space);
}

HPM_RING_INLINE_ unsigned int
hpm_ring_enqueue_burst(struct hpm_ring *r, void *const *objs,
			unsigned int n, unsigned int *free_space)
{
	return hpm_ring_do_enqueue_(r, objs, n, false, r->prod.single, free_space);
}

HPM_RING_INLINE_ unsigned int
hpm_ring_mc_dequeue_bulk(struct hpm_ring *r, void **objs,
			unsigned int n, unsigned int *available)
{
	return hpm_ring_do_dequeue_(r, objs, n, true, false, available);
}

HPM_RING_INLINE_ unsigned int
hpm_ring_sc_dequeue_bulk(struct hpm_ring *r, void **objs,
			unsigned int n, unsigned int *available)
{
	return hpm_ring_do_dequeue_(r, objs, n, true, true, available);
}

HPM_RING_INLINE_ unsigned int
hpm_ring_dequeue_bulk(struct hpm_ring *r, void **objs,
			unsigned int n, unsigned int *available)
{
	return hpm_ring_do_dequeue_(r, objs, n, true, r->cons.single, available);
}

HPM_RING_INLINE_ unsigned int
hpm_ring_mc_dequeue_burst(struct hpm_ring *r, void **objs,
			unsigned int n, unsigned int *available)
{
	return hpm_ring_do_dequeue_(r, objs, n, false, false, available);
}

HPM_RING_INLINE_ unsigned int
hpm_ring_sc_dequeue_burst(struct hpm_ring *r, void **objs,
			unsigned int n, unsigned int *available)
{
	return hpm_ring_do_dequeue_(r, objs, n, false, true, available);
}

HPM_RING_INLINE_ unsigned int
hpm_ring_dequeue_burst(struct hpm_ring *r, void **objs,
			unsigned int n, unsigned int *available)
{
	return hpm_ring_do_dequeue_(r, objs, n, false, r->cons.single, available);
}

/* Single object: 0, or -ENOBUFS (full) / -ENOENT (empty). */
HPM_RING_INLINE_ int hpm_ring_enqueue(struct hpm_ring *r, void *obj)
{
	return hpm_ring_enqueue_bulk(r, &obj, 1, NULL) ? 0 : -ENOBUFS;
}

HPM_RING_INLINE_ int hpm_ring_dequeue(struct hpm_ring *r, void **obj)
{
	return hpm_ring_dequeue_bulk(r, obj, 1, NULL) ? 0 : -ENOENT;
}

/* Snapshot counts; exact only when the ring is quiescent. */
HPM_RING_INLINE_ unsigned int hpm_ring_count(const struct hpm_ring *r)
{
	uint32_t pt = atomic_load_explicit(&r->prod.tail, memory_order_relaxed);
	uint32_t ct = atomic_load_explicit(&r->cons.tail, memory_order_relaxed);
	uint32_t c = pt - ct;

	/* Unordered snapshots of two counters can look inconsistent. */
	return c > r->capacity ? r->capacity : c;
}

HPM_RING_INLINE_ unsigned int hpm_ring_free_count(const struct hpm_ring *r)
{
	return r->capacity - hpm_ring_count(r);
}

HPM_RING_INLINE_ bool hpm_ring_full(const struct hpm_ring *r)
{
	return hpm_ring_free_count(r) == 0;
}

HPM_RING_INLINE_ bool hpm_ring_empty(const struct hpm_ring *r)
{
	return hpm_ring_count(r) == 0;
}

HPM_RING_INLINE_ unsigned int hpm_ring_get_size(const struct hpm_ring *r)
{
	return r->size;
}

HPM_RING_INLINE_ unsigned int hpm_ring_get_capacity(const struct hpm_ring *r)
{
	return r->capacity;
}

#ifdef __cplusplus
}
#endif

#endif /* HPMEM_RING_H */
