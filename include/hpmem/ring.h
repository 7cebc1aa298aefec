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
/*
 * DPDK's relaxed-tail-sync (RTS) and head/tail-sync (HTS) producer and
 * consumer modes, same values as RING_F_*. Both take the side's robust
 * lock, like the default MP/MC: HTS is what that lock already gives (one
 * operation in flight per side). RTS is mapped onto it too, on purpose:
 * DPDK's RTS lets several producers copy at once and publishes when the
 * last one finishes, so a producer killed after its head move leaves the
 * tail behind for ever and stalls every later operation of that side;
 * here a killed holder is taken over. The cost is that RTS producers do
 * not overlap their copies. hpm_ring_set_prod_htd_max() and friends are
 * kept for source compatibility; the limit is stored and always met
 * (at most one operation is ahead of the tail).
 * At most one of SP_ENQ, MP_RTS_ENQ, MP_HTS_ENQ (and of the DEQ trio).
 */
#define HPM_RING_F_MP_RTS_ENQ	0x8u
#define HPM_RING_F_MC_RTS_DEQ	0x10u
#define HPM_RING_F_MP_HTS_ENQ	0x20u
#define HPM_RING_F_MC_HTS_DEQ	0x40u
#define HPM_RING_F_ALL		(HPM_RING_F_SP_ENQ | HPM_RING_F_SC_DEQ | \
				 HPM_RING_F_EXACT_SZ | HPM_RING_F_MP_RTS_ENQ | \
				 HPM_RING_F_MC_RTS_DEQ | HPM_RING_F_MP_HTS_ENQ | \
				 HPM_RING_F_MC_HTS_DEQ)

/* A side's synchronisation mode (DPDK's enum rte_ring_sync_type). */
enum hpm_ring_sync_type {
	HPM_RING_SYNC_MT = 0,		/* multi-thread (robust lock) */
	HPM_RING_SYNC_ST = 1,		/* single thread, lock-free */
	HPM_RING_SYNC_MT_RTS = 2,	/* DPDK's RTS; here the robust lock */
	HPM_RING_SYNC_MT_HTS = 3,	/* DPDK's HTS; the robust lock */
};

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
	uint32_t single;	/* sync_type == HPM_RING_SYNC_ST */
	uint32_t sync_type;	/* enum hpm_ring_sync_type */
	uint32_t htd_max;	/* RTS only: stored, see HPM_RING_F_MP_RTS_ENQ */
	hpm_robust_lock_t lock;	/* MP/MC: one operation of this side at a time */
} __hpm_cache_aligned;

struct hpm_ring {
	char name[HPM_RING_NAMESIZE];
	uint32_t magic;
	uint32_t flags;
	uint32_t size;		/* slots, power of two */
	uint32_t mask;		/* size - 1 */
	uint32_t capacity;	/* usable slots */
	uint32_t esize;		/* bytes per slot, a multiple of 4 */
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
	/* size slots of esize bytes (pointers for the non-_elem calls) */
	unsigned char slots[] __hpm_cache_aligned;
};

/*
 * Bytes needed for a ring of count pointer slots, or -EINVAL: count must
 * be a power of two, 1 to HPM_RING_SZ_MAX (DPDK also takes 0, which makes
 * a ring of mask 0xffffffff; we refuse it).
 */
ssize_t hpm_ring_get_memsize(unsigned int count);
/* Same for slots of esize bytes (a multiple of 4, not 0), as DPDK's. */
ssize_t hpm_ring_get_memsize_elem(unsigned int esize, unsigned int count);
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
/*
 * hpm_ring_create() for slots of esize bytes (a multiple of 4, not 0),
 * used with the *_elem calls and that esize (DPDK's rte_ring_create_elem).
 * With HPM_RING_F_EXACT_SZ count may be 0 (a ring that is always full)
 * up to HPM_RING_SZ_MAX - 1; otherwise a power of two, capacity count - 1.
 */
struct hpm_ring *hpm_ring_create_elem(const char *name, unsigned int esize,
				      unsigned int count, int socket,
				      unsigned int flags);
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
 * Unaligned views for the copy loops (as DPDK's unaligned_uint64_t): the
 * caller's table may be misaligned, and a store through a misaligned
 * void * is undefined behaviour (UBSan says so). On x86-64 a move through
 * these is the same single instruction, so the aligned path pays nothing.
 */
typedef uint64_t hpm_ring_u64u_ __attribute__((aligned(1), may_alias));
typedef uint32_t hpm_ring_u32u_ __attribute__((aligned(1), may_alias));

/*
 * Copy n elements of esize bytes (a multiple of 4). With n and esize
 * constant at the call site (bulk 1/4/32) the whole copy becomes a few
 * vector moves; otherwise a loop (by 8-byte elements unrolled by four for
 * pointer rings, else by 32-bit words), as a libc call costs more than
 * copying the few elements of a typical burst.
 */
HPM_RING_INLINE_ void hpm_ring_copy_elems_(void *dst, const void *src,
					   unsigned int esize, unsigned int n)
{
	unsigned int i = 0;

	if (__builtin_constant_p(n) && __builtin_constant_p(esize)) {
		memcpy(dst, src, (size_t)n * esize);
		return;
	}
	if (__builtin_constant_p(esize) && esize == 8) {
		hpm_ring_u64u_ *d = dst;
		const hpm_ring_u64u_ *s = src;

		for (; i + 4 <= n; i += 4) {
			d[i] = s[i];
			d[i + 1] = s[i + 1];
			d[i + 2] = s[i + 2];
			d[i + 3] = s[i + 3];
		}
		for (; i < n; i++)
			d[i] = s[i];
	} else {
		hpm_ring_u32u_ *d = dst;
		const hpm_ring_u32u_ *s = src;
		size_t w = (size_t)n * (esize / 4), j;

		for (j = 0; j < w; j++)
			d[j] = s[j];
	}
}

/* n pointers (mempool caches use it too). */
HPM_RING_INLINE_ void hpm_ring_copy_ptrs_(void **dst, void *const *src,
					  unsigned int n)
{
	hpm_ring_copy_elems_(dst, src, sizeof(void *), n);
}

HPM_RING_INLINE_ void hpm_ring_copy_in_(struct hpm_ring *r, uint32_t head,
					const void *objs, unsigned int esize,
					unsigned int n)
{
	uint32_t idx = head & r->mask;
	const unsigned char *o = objs;

	if (__builtin_expect(idx + n <= r->size, 1)) {
		hpm_ring_copy_elems_(r->slots + (size_t)idx * esize, o, esize, n);
	} else {
		unsigned int first = r->size - idx;

		/* idx < size: lets GCC see that first < n (no false overflow) */
		if (first >= n)
			__builtin_unreachable();
		hpm_ring_copy_elems_(r->slots + (size_t)idx * esize, o, esize,
				     first);
		hpm_ring_copy_elems_(r->slots, o + (size_t)first * esize, esize,
				     n - first);
	}
}

HPM_RING_INLINE_ void hpm_ring_copy_out_(const struct hpm_ring *r,
					 uint32_t head, void *objs,
					 unsigned int esize, unsigned int n)
{
	uint32_t idx = head & r->mask;
	unsigned char *o = objs;

	if (__builtin_expect(idx + n <= r->size, 1)) {
		hpm_ring_copy_elems_(o, r->slots + (size_t)idx * esize, esize, n);
	} else {
		unsigned int first = r->size - idx;

		/* idx < size: lets GCC see that first < n (no false overflow) */
		if (first >= n)
			__builtin_unreachable();
		hpm_ring_copy_elems_(o, r->slots + (size_t)idx * esize, esize,
				     first);
		hpm_ring_copy_elems_(o + (size_t)first * esize, r->slots, esize,
				     n - first);
	}
}

/*
 * Cost of an MP/MC operation on top of the copy, uncontended: the lock's
 * compare-and-swap and a plain store to unlock, against the lock-free
 * protocol's compare-and-swap of the head; everything else (two index
 * loads, two stores) is in one cache line per side in both.
 */
HPM_RING_INLINE_ unsigned int
hpm_ring_do_enqueue_(struct hpm_ring *r, const void *objs, unsigned int esize,
		     unsigned int n, bool fixed, bool single,
		     unsigned int *free_space)
{
	const unsigned char *o = objs;
	uint32_t head = 0, left;
	unsigned int got;

	if (single) {
		got = hpm_ring_move_head_(&r->prod, &r->cons, r->capacity, n,
					  fixed, &head, &left);
		if (got) {
			hpm_ring_copy_in_(r, head, o, esize, got);
			hpm_ring_update_tail_(&r->prod, head + got);
		}
	} else {
		hpm_ring_mt_lock_(r, &r->prod);
		got = hpm_ring_mt_room_(&r->prod, &r->cons, r->capacity, n,
					fixed, &head, &left);
		if (HPM_RING_TEST_STEPS_ && got > 1) {
			hpm_ring_copy_in_(r, head, o, esize, got / 2);
			HPM_RING_TEST_STEP();
			hpm_ring_copy_in_(r, head + got / 2,
					  o + (size_t)(got / 2) * esize, esize,
					  got - got / 2);
		} else if (got) {
			hpm_ring_copy_in_(r, head, o, esize, got);
		}
		hpm_ring_mt_publish_(&r->prod, head, got);
	}
	if (free_space)
		*free_space = left;
	return got;
}

HPM_RING_INLINE_ unsigned int
hpm_ring_do_dequeue_(struct hpm_ring *r, void *objs, unsigned int esize,
		     unsigned int n, bool fixed, bool single,
		     unsigned int *available)
{
	unsigned char *o = objs;
	uint32_t head = 0, left;
	unsigned int got;

	if (single) {
		got = hpm_ring_move_head_(&r->cons, &r->prod, 0, n, fixed,
					  &head, &left);
		if (got) {
			hpm_ring_copy_out_(r, head, o, esize, got);
			hpm_ring_update_tail_(&r->cons, head + got);
		}
	} else {
		hpm_ring_mt_lock_(r, &r->cons);
		got = hpm_ring_mt_room_(&r->cons, &r->prod, 0, n, fixed,
					&head, &left);
		if (HPM_RING_TEST_STEPS_ && got > 1) {
			hpm_ring_copy_out_(r, head, o, esize, got / 2);
			HPM_RING_TEST_STEP();
			hpm_ring_copy_out_(r, head + got / 2,
					   o + (size_t)(got / 2) * esize, esize,
					   got - got / 2);
		} else if (got) {
			hpm_ring_copy_out_(r, head, o, esize, got);
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
 * (optional) receive what is left after the call. mp/mc: the robust lock
 * (whatever the ring's flags); sp/sc: lock-free, the caller being the only
 * thread of that side; neither: the side's mode from the ring's flags.
 * mp_rts/mp_hts (mc_rts/mc_hts) are mp (mc): see HPM_RING_F_MP_RTS_ENQ.
 * The _elem forms move elements of esize bytes (the ring's esize) from or
 * to a table that need not be aligned; the others move pointers (esize
 * sizeof(void *)).
 */
#define HPM_RING_DEF_ENQ_(name, fixed, single)				\
HPM_RING_INLINE_ unsigned int						\
hpm_ring_##name##_elem(struct hpm_ring *r, const void *objs,		\
		       unsigned int esize, unsigned int n,		\
		       unsigned int *free_space)			\
{									\
	return hpm_ring_do_enqueue_(r, objs, esize, n, fixed, single,	\
				    free_space);			\
}									\
HPM_RING_INLINE_ unsigned int						\
hpm_ring_##name(struct hpm_ring *r, void *const *objs, unsigned int n,	\
		unsigned int *free_space)				\
{									\
	return hpm_ring_do_enqueue_(r, objs, sizeof(void *), n, fixed,	\
				    single, free_space);		\
}
#define HPM_RING_DEF_DEQ_(name, fixed, single)				\
HPM_RING_INLINE_ unsigned int						\
hpm_ring_##name##_elem(struct hpm_ring *r, void *objs,			\
		       unsigned int esize, unsigned int n,		\
		       unsigned int *available)				\
{									\
	return hpm_ring_do_dequeue_(r, objs, esize, n, fixed, single,	\
				    available);				\
}									\
HPM_RING_INLINE_ unsigned int						\
hpm_ring_##name(struct hpm_ring *r, void **objs, unsigned int n,	\
		unsigned int *available)				\
{									\
	return hpm_ring_do_dequeue_(r, objs, sizeof(void *), n, fixed,	\
				    single, available);			\
}

/* hpm_ring_mp_enqueue_bulk() and hpm_ring_mp_enqueue_bulk_elem(), ... */
HPM_RING_DEF_ENQ_(mp_enqueue_bulk, true, false)
HPM_RING_DEF_ENQ_(sp_enqueue_bulk, true, true)
HPM_RING_DEF_ENQ_(enqueue_bulk, true, r->prod.single)
HPM_RING_DEF_ENQ_(mp_enqueue_burst, false, false)
HPM_RING_DEF_ENQ_(sp_enqueue_burst, false, true)
HPM_RING_DEF_ENQ_(enqueue_burst, false, r->prod.single)
HPM_RING_DEF_ENQ_(mp_rts_enqueue_bulk, true, false)
HPM_RING_DEF_ENQ_(mp_rts_enqueue_burst, false, false)
HPM_RING_DEF_ENQ_(mp_hts_enqueue_bulk, true, false)
HPM_RING_DEF_ENQ_(mp_hts_enqueue_burst, false, false)
HPM_RING_DEF_DEQ_(mc_dequeue_bulk, true, false)
HPM_RING_DEF_DEQ_(sc_dequeue_bulk, true, true)
HPM_RING_DEF_DEQ_(dequeue_bulk, true, r->cons.single)
HPM_RING_DEF_DEQ_(mc_dequeue_burst, false, false)
HPM_RING_DEF_DEQ_(sc_dequeue_burst, false, true)
HPM_RING_DEF_DEQ_(dequeue_burst, false, r->cons.single)
HPM_RING_DEF_DEQ_(mc_rts_dequeue_bulk, true, false)
HPM_RING_DEF_DEQ_(mc_rts_dequeue_burst, false, false)
HPM_RING_DEF_DEQ_(mc_hts_dequeue_bulk, true, false)
HPM_RING_DEF_DEQ_(mc_hts_dequeue_burst, false, false)

/* Single object: 0, or -ENOBUFS (full) / -ENOENT (empty). */
#define HPM_RING_DEF_ONE_(enq, deq, bulk_enq, bulk_deq)			\
HPM_RING_INLINE_ int hpm_ring_##enq(struct hpm_ring *r, void *obj)	\
{									\
	return hpm_ring_##bulk_enq(r, &obj, 1, NULL) ? 0 : -ENOBUFS;	\
}									\
HPM_RING_INLINE_ int hpm_ring_##enq##_elem(struct hpm_ring *r,		\
					   const void *obj,		\
					   unsigned int esize)		\
{									\
	return hpm_ring_##bulk_enq##_elem(r, obj, esize, 1, NULL) ?	\
	       0 : -ENOBUFS;						\
}									\
HPM_RING_INLINE_ int hpm_ring_##deq(struct hpm_ring *r, void **obj)	\
{									\
	return hpm_ring_##bulk_deq(r, obj, 1, NULL) ? 0 : -ENOENT;	\
}									\
HPM_RING_INLINE_ int hpm_ring_##deq##_elem(struct hpm_ring *r,		\
					   void *obj,			\
					   unsigned int esize)		\
{									\
	return hpm_ring_##bulk_deq##_elem(r, obj, esize, 1, NULL) ?	\
	       0 : -ENOENT;						\
}
HPM_RING_DEF_ONE_(enqueue, dequeue, enqueue_bulk, dequeue_bulk)
HPM_RING_DEF_ONE_(mp_enqueue, mc_dequeue, mp_enqueue_bulk, mc_dequeue_bulk)
HPM_RING_DEF_ONE_(sp_enqueue, sc_dequeue, sp_enqueue_bulk, sc_dequeue_bulk)

/* ---- peek and zero-copy (DPDK's rte_ring_peek.h, rte_ring_peek_zc.h) ---- */

/*
 * Two-stage operations, for SP/SC (HPM_RING_SYNC_ST) and HTS sides only,
 * as in DPDK: a *_start call reserves up to n slots (and, for a dequeue,
 * copies them out; for zero-copy, points at them), the matching *_finish
 * publishes the first n of them (n may be less than reserved; the rest
 * are given back). On any other side *_start returns 0 and *_finish does
 * nothing. On an HTS side *_start holds the side's robust lock until
 * *_finish, which the same thread must call; a process killed in between
 * published nothing, and the next user of the side takes the lock over.
 */

/* Reserve up to n on side me (see hpm_ring_move_head_()). */
HPM_RING_INLINE_ unsigned int
hpm_ring_start_(struct hpm_ring *r, struct hpm_ring_headtail *me,
		const struct hpm_ring_headtail *other, uint32_t cap_add,
		unsigned int n, bool fixed, uint32_t *pos, unsigned int *left)
{
	uint32_t l = 0;

	if (me->sync_type == HPM_RING_SYNC_ST) {
		n = hpm_ring_move_head_(me, other, cap_add, n, fixed, pos, &l);
	} else if (me->sync_type == HPM_RING_SYNC_MT_HTS) {
		hpm_ring_mt_lock_(r, me);
		n = hpm_ring_mt_room_(me, other, cap_add, n, fixed, pos, &l);
		if (n)	/* what the reservation is, for *_finish */
			atomic_store_explicit(&me->head, *pos + n,
					      memory_order_relaxed);
		else
			hpm_robust_unlock(&me->lock);
	} else {
		n = 0;
	}
	if (left)
		*left = l;
	return n;
}

/*
 * *_finish, first half: is there a reservation of ours on side me, and
 * where does it start (*pos)? n is cut to what was reserved.
 */
HPM_RING_INLINE_ bool hpm_ring_finish_pos_(struct hpm_ring_headtail *me,
					   uint32_t *pos, unsigned int *n)
{
	uint32_t reserved;

	if (me->sync_type == HPM_RING_SYNC_MT_HTS) {
		/* Not ours: the start reserved nothing and unlocked. */
		if (atomic_load_explicit(&me->lock.owner, memory_order_relaxed) !=
		    hpm_robust_self_ || !hpm_robust_self_)
			return false;
	} else if (me->sync_type != HPM_RING_SYNC_ST) {
		return false;
	}
	/* relaxed: only this thread writes this side now */
	*pos = atomic_load_explicit(&me->tail, memory_order_relaxed);
	reserved = atomic_load_explicit(&me->head, memory_order_relaxed) - *pos;
	if (*n > reserved)
		*n = reserved;
	return true;
}

/* *_finish, second half: publish n from pos; HTS: let the next one in. */
HPM_RING_INLINE_ void hpm_ring_finish_(struct hpm_ring_headtail *me,
				       uint32_t pos, unsigned int n)
{
	atomic_store_explicit(&me->head, pos + n, memory_order_relaxed);
	hpm_ring_update_tail_(me, pos + n);
	if (me->sync_type == HPM_RING_SYNC_MT_HTS)
		hpm_robust_unlock(&me->lock);
}

HPM_RING_INLINE_ unsigned int
hpm_ring_enqueue_bulk_elem_start(struct hpm_ring *r, unsigned int n,
				 unsigned int *free_space)
{
	uint32_t pos;

	return hpm_ring_start_(r, &r->prod, &r->cons, r->capacity, n, true,
			       &pos, free_space);
}

HPM_RING_INLINE_ unsigned int
hpm_ring_enqueue_burst_elem_start(struct hpm_ring *r, unsigned int n,
				  unsigned int *free_space)
{
	uint32_t pos;

	return hpm_ring_start_(r, &r->prod, &r->cons, r->capacity, n, false,
			       &pos, free_space);
}

HPM_RING_INLINE_ unsigned int
hpm_ring_enqueue_bulk_start(struct hpm_ring *r, unsigned int n,
			    unsigned int *free_space)
{
	return hpm_ring_enqueue_bulk_elem_start(r, n, free_space);
}

HPM_RING_INLINE_ unsigned int
hpm_ring_enqueue_burst_start(struct hpm_ring *r, unsigned int n,
			     unsigned int *free_space)
{
	return hpm_ring_enqueue_burst_elem_start(r, n, free_space);
}

/* Copy n objects into the slots reserved by *_start and publish them. */
HPM_RING_INLINE_ void hpm_ring_enqueue_elem_finish(struct hpm_ring *r,
						   const void *objs,
						   unsigned int esize,
						   unsigned int n)
{
	uint32_t pos;

	if (!hpm_ring_finish_pos_(&r->prod, &pos, &n))
		return;
	if (n)
		hpm_ring_copy_in_(r, pos, objs, esize, n);
	hpm_ring_finish_(&r->prod, pos, n);
}

HPM_RING_INLINE_ void hpm_ring_enqueue_finish(struct hpm_ring *r,
					      void *const *objs, unsigned int n)
{
	hpm_ring_enqueue_elem_finish(r, objs, sizeof(void *), n);
}

HPM_RING_INLINE_ unsigned int
hpm_ring_dequeue_start_(struct hpm_ring *r, void *objs, unsigned int esize,
			unsigned int n, bool fixed, unsigned int *available)
{
	uint32_t pos = 0;

	n = hpm_ring_start_(r, &r->cons, &r->prod, 0, n, fixed, &pos,
			    available);
	if (n)
		hpm_ring_copy_out_(r, pos, objs, esize, n);
	return n;
}

HPM_RING_INLINE_ unsigned int
hpm_ring_dequeue_bulk_elem_start(struct hpm_ring *r, void *objs,
				 unsigned int esize, unsigned int n,
				 unsigned int *available)
{
	return hpm_ring_dequeue_start_(r, objs, esize, n, true, available);
}

HPM_RING_INLINE_ unsigned int
hpm_ring_dequeue_burst_elem_start(struct hpm_ring *r, void *objs,
				  unsigned int esize, unsigned int n,
				  unsigned int *available)
{
	return hpm_ring_dequeue_start_(r, objs, esize, n, false, available);
}

HPM_RING_INLINE_ unsigned int
hpm_ring_dequeue_bulk_start(struct hpm_ring *r, void **objs, unsigned int n,
			    unsigned int *available)
{
	return hpm_ring_dequeue_start_(r, objs, sizeof(void *), n, true,
				       available);
}

HPM_RING_INLINE_ unsigned int
hpm_ring_dequeue_burst_start(struct hpm_ring *r, void **objs, unsigned int n,
			     unsigned int *available)
{
	return hpm_ring_dequeue_start_(r, objs, sizeof(void *), n, false,
				       available);
}

/* Consume the first n of the objects *_start returned. */
HPM_RING_INLINE_ void hpm_ring_dequeue_elem_finish(struct hpm_ring *r,
						   unsigned int n)
{
	uint32_t pos;

	if (hpm_ring_finish_pos_(&r->cons, &pos, &n))
		hpm_ring_finish_(&r->cons, pos, n);
}

HPM_RING_INLINE_ void hpm_ring_dequeue_finish(struct hpm_ring *r,
					      unsigned int n)
{
	hpm_ring_dequeue_elem_finish(r, n);
}

/*
 * Zero-copy: the reserved slots in place, n1 at ptr1 and, when they wrap
 * around the end of the ring, the rest at ptr2 (else NULL). Untouched
 * when *_start returns 0. (DPDK's struct rte_ring_zc_data.)
 */
struct hpm_ring_zc_data {
	void *ptr1;
	void *ptr2;
	unsigned int n1;
} __hpm_cache_aligned;

HPM_RING_INLINE_ void hpm_ring_zc_fill_(struct hpm_ring *r, uint32_t pos,
					unsigned int esize, unsigned int n,
					struct hpm_ring_zc_data *zcd)
{
	uint32_t idx = pos & r->mask;

	zcd->ptr1 = r->slots + (size_t)idx * esize;
	if (idx + n <= r->size) {
		zcd->n1 = n;
		zcd->ptr2 = NULL;
	} else {
		zcd->n1 = r->size - idx;
		zcd->ptr2 = r->slots;
	}
}

HPM_RING_INLINE_ unsigned int
hpm_ring_zc_start_(struct hpm_ring *r, bool enq, unsigned int esize,
		   unsigned int n, bool fixed, struct hpm_ring_zc_data *zcd,
		   unsigned int *left)
{
	uint32_t pos = 0;

	if (enq)
		n = hpm_ring_start_(r, &r->prod, &r->cons, r->capacity, n,
				    fixed, &pos, left);
	else
		n = hpm_ring_start_(r, &r->cons, &r->prod, 0, n, fixed, &pos,
				    left);
	if (n)
		hpm_ring_zc_fill_(r, pos, esize, n, zcd);
	return n;
}

#define HPM_RING_DEF_ZC_(dir, enq, kind, fixed)				\
HPM_RING_INLINE_ unsigned int						\
hpm_ring_##dir##_zc_##kind##_elem_start(struct hpm_ring *r,		\
					unsigned int esize,		\
					unsigned int n,			\
					struct hpm_ring_zc_data *zcd,	\
					unsigned int *left)		\
{									\
	return hpm_ring_zc_start_(r, enq, esize, n, fixed, zcd, left);	\
}									\
HPM_RING_INLINE_ unsigned int						\
hpm_ring_##dir##_zc_##kind##_start(struct hpm_ring *r, unsigned int n,	\
				   struct hpm_ring_zc_data *zcd,	\
				   unsigned int *left)			\
{									\
	return hpm_ring_zc_start_(r, enq, sizeof(void *), n, fixed, zcd,	\
				  left);				\
}
/* hpm_ring_enqueue_zc_bulk_elem_start(), ..._zc_bulk_start(), ... */
HPM_RING_DEF_ZC_(enqueue, true, bulk, true)
HPM_RING_DEF_ZC_(enqueue, true, burst, false)
HPM_RING_DEF_ZC_(dequeue, false, bulk, true)
HPM_RING_DEF_ZC_(dequeue, false, burst, false)

/* Publish the first n of the slots the zero-copy *_start reserved. */
HPM_RING_INLINE_ void hpm_ring_enqueue_zc_elem_finish(struct hpm_ring *r,
						      unsigned int n)
{
	uint32_t pos;

	if (hpm_ring_finish_pos_(&r->prod, &pos, &n))
		hpm_ring_finish_(&r->prod, pos, n);
}

HPM_RING_INLINE_ void hpm_ring_enqueue_zc_finish(struct hpm_ring *r,
						 unsigned int n)
{
	hpm_ring_enqueue_zc_elem_finish(r, n);
}

HPM_RING_INLINE_ void hpm_ring_dequeue_zc_elem_finish(struct hpm_ring *r,
						      unsigned int n)
{
	hpm_ring_dequeue_elem_finish(r, n);
}

HPM_RING_INLINE_ void hpm_ring_dequeue_zc_finish(struct hpm_ring *r,
						 unsigned int n)
{
	hpm_ring_dequeue_elem_finish(r, n);
}

/* ---- state ---- */

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

HPM_RING_INLINE_ unsigned int hpm_ring_get_flags(const struct hpm_ring *r)
{
	return r->flags;
}

HPM_RING_INLINE_ unsigned int hpm_ring_get_esize(const struct hpm_ring *r)
{
	return r->esize;
}

HPM_RING_INLINE_ enum hpm_ring_sync_type
hpm_ring_get_prod_sync_type(const struct hpm_ring *r)
{
	return (enum hpm_ring_sync_type)r->prod.sync_type;
}

HPM_RING_INLINE_ enum hpm_ring_sync_type
hpm_ring_get_cons_sync_type(const struct hpm_ring *r)
{
	return (enum hpm_ring_sync_type)r->cons.sync_type;
}

HPM_RING_INLINE_ bool hpm_ring_is_prod_single(const struct hpm_ring *r)
{
	return r->prod.sync_type == HPM_RING_SYNC_ST;
}

HPM_RING_INLINE_ bool hpm_ring_is_cons_single(const struct hpm_ring *r)
{
	return r->cons.sync_type == HPM_RING_SYNC_ST;
}

/*
 * RTS head/tail distance limit: UINT32_MAX on a side that is not RTS;
 * set: 0 or -ENOTSUP (not RTS). Stored only: see HPM_RING_F_MP_RTS_ENQ.
 */
HPM_RING_INLINE_ uint32_t hpm_ring_get_prod_htd_max(const struct hpm_ring *r)
{
	return r->prod.sync_type == HPM_RING_SYNC_MT_RTS ? r->prod.htd_max :
							    UINT32_MAX;
}

HPM_RING_INLINE_ int hpm_ring_set_prod_htd_max(struct hpm_ring *r, uint32_t v)
{
	if (r->prod.sync_type != HPM_RING_SYNC_MT_RTS)
		return -ENOTSUP;
	r->prod.htd_max = v;
	return 0;
}

HPM_RING_INLINE_ uint32_t hpm_ring_get_cons_htd_max(const struct hpm_ring *r)
{
	return r->cons.sync_type == HPM_RING_SYNC_MT_RTS ? r->cons.htd_max :
							    UINT32_MAX;
}

HPM_RING_INLINE_ int hpm_ring_set_cons_htd_max(struct hpm_ring *r, uint32_t v)
{
	if (r->cons.sync_type != HPM_RING_SYNC_MT_RTS)
		return -ENOTSUP;
	r->cons.htd_max = v;
	return 0;
}

#ifdef __cplusplus
}
#endif

#endif /* HPMEM_RING_H */
