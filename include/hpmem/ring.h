/* SPDX-License-Identifier: MIT */
/* Fixed-size rings of pointers, shareable between processes, that survive
 * a process killed mid-operation. */
#ifndef HPMEM_RING_H
#define HPMEM_RING_H

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>

#include <hpmem/common.h>
#include <hpmem/robust_lock.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Indices are free-running 32-bit counters, one pair per side ("prod" and
 * "cons"); slot = index & mask. A side publishes with a store-release of
 * its tail; the other side reads that tail with a load-acquire and reads
 * nothing else of it, so it never sees a slot before its contents (or
 * overwrites one before it was read).
 *
 * Single producer / consumer (SP/SC): lock-free. The one thread of the
 * side moves its head, copies the slots, then stores tail = head.
 *
 * Multi-producer / consumer (MP/MC), which must survive a process killed
 * mid-operation (SIGKILL, a crash): one operation per side at a time, as
 * DPDK's HTS mode (RING_F_MP_HTS_ENQ / RING_F_MC_HTS_DEQ). The caller
 * takes its side's robust lock (<hpmem/robust_lock.h>), reads its own tail
 * and the other side's (acquire) for room or entries, copies the slots and
 * publishes with the store-release of its tail, then unlocks. The tail is
 * the only index the other side reads, so a holder that dies leaves
 * nothing half published: slots written beyond the tail are invisible and
 * rewritten by the next producer, and a consumer that had not stored its
 * tail moved nothing. An operation killed midway is all-or-nothing: it
 * happened iff its tail store did. The next locker of that side finds the
 * holder dead (tgkill() says ESRCH), takes the lock over and sets the
 * side's head back to its tail (hpm_ring_lock_slow_()). Limits: those of
 * the lock: one PID namespace for all users; a holder whose pid and tid
 * were recycled stalls the side until that new thread exits; a stopped
 * holder stalls it while stopped. Objects a dead consumer had dequeued (or
 * a dead producer had yet to enqueue) are lost with it; so are those a
 * dead process had taken from a mempool on the default ring, as with
 * DPDK's per-lcore caches (docs/RELIABILITY.md).
 * Compared with the lock-free MP/MC protocol (CAS on the head, wait for
 * earlier reservations, store the tail), the uncontended cost is the same:
 * one atomic read-modify-write per operation. Under contention a producer
 * waits for the whole copy of the one before it, not just its tail store.
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
 * Pauses a multi-producer/consumer spends waiting for its side's lock
 * before it yields the CPU (about 2-8 us, far above a normal wait).
 */
#define HPM_RING_SPINS_BEFORE_YIELD	64u
/* Largest ring size (slots). */
#define HPM_RING_SZ_MAX		0x40000000u
/* Name length including NUL; the memzone is named "RG_<name>". */
#define HPM_RING_NAMESIZE	(HPM_NAME_SIZE - 3)

/*
 * "RNG2": layout 2, with a lock per side (layout 1 was "RING"). A library
 * of layout 1 never meets one: the region's config layout version (3)
 * refuses it as a secondary.
 */
#define HPM_RING_MAGIC		0x524e4732u

struct hpm_memzone;

/* One side of the ring. */
struct hpm_ring_headtail {
	_Atomic(uint32_t) head;	/* next index to reserve; = tail when idle */
	_Atomic(uint32_t) tail;	/* everything before it is published */
	uint32_t single;	/* this side's default is single-threaded */
	uint32_t pad_;
	hpm_robust_lock_t lock;	/* MP/MC: one operation of this side at a time */
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

/*
 * The slow path of the MP/MC lock (lib/ring.c): waits for the side's
 * lock, yielding now and then; takes it over from a dead holder and puts
 * the side's head back to its tail. Not API.
 */
void hpm_ring_lock_slow_(struct hpm_ring *r, struct hpm_ring_headtail *ht);

/*
 * Test hook: a program that defines HPM_RING_TEST_STEP() before including
 * this header has it run at the points of an MP/MC operation where a
 * death matters (lock held; part of the slots copied; all copied; tail
 * published, lock still held). The selftests kill themselves there.
 * Empty, hence free, otherwise.
 */
#ifdef HPM_RING_TEST_STEP
#define HPM_RING_TEST_STEPS_	1
#else
#define HPM_RING_TEST_STEP()	do { } while (0)
#define HPM_RING_TEST_STEPS_	0
#endif

/*
 * SP/SC: reserve up to n slots on side `me` against the other side's
 * tail. fixed: all n or nothing. Returns the number reserved and their
 * first index. room(other_tail, head) = free slots for producers, entries
 * for consumers.
 */
HPM_RING_INLINE_ unsigned int
hpm_ring_move_head_(struct hpm_ring_headtail *me,
		    const struct hpm_ring_headtail *other, uint32_t cap_add,
		    unsigned int n, bool fixed, uint32_t *old_head,
		    uint32_t *entries_out)
{
	uint32_t head, other_tail, room;
	unsigned int want;

	/* Only this thread moves this head. */
	head = atomic_load_explicit(&me->head, memory_order_relaxed);
	/*
	 * acquire pairs with the release store of other->tail by the other
	 * side: for producers, consumers finished reading the slots we will
	 * overwrite; for consumers, the producers' slot writes are visible.
	 */
	other_tail = atomic_load_explicit(&other->tail, memory_order_acquire);
	/* cap_add = capacity for producers, 0 for consumers. */
	room = cap_add + other_tail - head;
	want = n;
	if (__builtin_expect(want > room, 0))
		want = fixed ? 0 : room;
	*entries_out = room - want;
	if (want == 0)
		return 0;
	atomic_store_explicit(&me->head, head + want, memory_order_relaxed);
	*old_head = head;
	return want;
}

HPM_RING_INLINE_ void hpm_ring_update_tail_(struct hpm_ring_headtail *ht,
					    uint32_t new_val)
{
	/*
	 * release pairs with the acquire load of this tail on the other
	 * side (hpm_ring_move_head_(), hpm_ring_mt_room_()): producers' slot
	 * writes (or consumers' slot reads) happen before the other side
	 * reuses them.
	 */
	atomic_store_explicit(&ht->tail, new_val, memory_order_release);
}

/*
 * MP/MC: take the side's lock. Inline, the uncontended case: one
 * compare-and-swap. Held, dead holder, or the thread's first lock: out of
 * line.
 */
HPM_RING_INLINE_ void hpm_ring_mt_lock_(struct hpm_ring *r,
					struct hpm_ring_headtail *ht)
{
	if (__builtin_expect(!hpm_robust_trylock_(&ht->lock), 0))
		hpm_ring_lock_slow_(r, ht);
	HPM_RING_TEST_STEP();
}

/*
 * MP/MC, lock held: how many of n to move (fixed: n or 0), from index
 * *pos of side `me`; room as in hpm_ring_move_head_().
 */
HPM_RING_INLINE_ unsigned int
hpm_ring_mt_room_(const struct hpm_ring_headtail *me,
		  const struct hpm_ring_headtail *other, uint32_t cap_add,
		  unsigned int n, bool fixed, uint32_t *pos, uint32_t *left)
{
	uint32_t room;

	/*
	 * relaxed: only the lock holder stores this tail, and the lock's
	 * acquire ordered the previous holder's store before this load.
	 */
	*pos = atomic_load_explicit(&me->tail, memory_order_relaxed);
	/* acquire: as in hpm_ring_move_head_() */
	room = cap_add + atomic_load_explicit(&other->tail,
					      memory_order_acquire) - *pos;
	if (__builtin_expect(n > room, 0))
		n = fixed ? 0 : room;
	*left = room - n;
	return n;
}

/* MP/MC: publish [pos, pos + n) of side ht and let the next one in. */
HPM_RING_INLINE_ void hpm_ring_mt_publish_(struct hpm_ring_headtail *ht,
					   uint32_t pos, unsigned int n)
{
	if (n) {
		HPM_RING_TEST_STEP();
		/* Only for SP/SC calls on an MP/MC ring, and for dumps. */
		atomic_store_explicit(&ht->head, pos + n, memory_order_relaxed);
		hpm_ring_update_tail_(ht, pos + n);
		HPM_RING_TEST_STEP();
	}
	hpm_robust_unlock(&ht->lock);
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

/*
 * Cost of an MP/MC operation on top of the copy, uncontended: the lock's
 * compare-and-swap and a plain store to unlock, against the lock-free
 * protocol's compare-and-swap of the head; everything else (two index
 * loads, two stores) is in one cache line per side in both.
 */
HPM_RING_INLINE_ unsigned int
hpm_ring_do_enqueue_(struct hpm_ring *r, void *const *objs, unsigned int n,
		     bool fixed, bool single, unsigned int *free_space)
{
	uint32_t head = 0, left;
	unsigned int got;

	if (single) {
		got = hpm_ring_move_head_(&r->prod, &r->cons, r->capacity, n,
					  fixed, &head, &left);
		if (got) {
			hpm_ring_copy_in_(r, head, objs, got);
			hpm_ring_update_tail_(&r->prod, head + got);
		}
	} else {
		hpm_ring_mt_lock_(r, &r->prod);
		got = hpm_ring_mt_room_(&r->prod, &r->cons, r->capacity, n,
					fixed, &head, &left);
		if (HPM_RING_TEST_STEPS_ && got > 1) {
			hpm_ring_copy_in_(r, head, objs, got / 2);
			HPM_RING_TEST_STEP();
			hpm_ring_copy_in_(r, head + got / 2, objs + got / 2,
					  got - got / 2);
		} else if (got) {
			hpm_ring_copy_in_(r, head, objs, got);
		}
		hpm_ring_mt_publish_(&r->prod, head, got);
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

	if (single) {
		got = hpm_ring_move_head_(&r->cons, &r->prod, 0, n, fixed,
					  &head, &left);
		if (got) {
			hpm_ring_copy_out_(r, head, objs, got);
			hpm_ring_update_tail_(&r->cons, head + got);
		}
	} else {
		hpm_ring_mt_lock_(r, &r->cons);
		got = hpm_ring_mt_room_(&r->cons, &r->prod, 0, n, fixed,
					&head, &left);
		if (HPM_RING_TEST_STEPS_ && got > 1) {
			hpm_ring_copy_out_(r, head, objs, got / 2);
			HPM_RING_TEST_STEP();
			hpm_ring_copy_out_(r, head + got / 2, objs + got / 2,
					   got - got / 2);
		} else if (got) {
			hpm_ring_copy_out_(r, head, objs, got);
		}
		hpm_ring_mt_publish_(&r->cons, head, got);
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
