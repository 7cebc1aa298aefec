// SPDX-License-Identifier: MIT
/* Ring creation, lookup and dump; the enqueue/dequeue paths are in ring.h. */
#include <stdio.h>
#include <string.h>

#include <hpmem/memzone.h>
#include <hpmem/ring.h>

#include "internal.h"
#include "robust_lock.h"

#define RING_MZ_PREFIX	"RG_"

_Static_assert(offsetof(struct hpm_ring, cons) -
	       offsetof(struct hpm_ring, prod) >= 2 * HPM_CACHE_LINE_SIZE,
	       "producer and consumer indices must not share a line pair");
/* A side's indices and lock in one line: an operation touches one line. */
_Static_assert(sizeof(struct hpm_ring_headtail) == HPM_CACHE_LINE_SIZE,
	       "one side of a ring is one cache line");

/*
 * Slots and capacity for count as DPDK's rte_ring_init() computes them:
 * EXACT_SZ: the next power of two above count (capacity count, 0 allowed);
 * otherwise count itself, a power of two (capacity count - 1). Unlike
 * DPDK, count 0 without EXACT_SZ is refused (DPDK makes mask 0xffffffff).
 */
static int ring_slots(unsigned int count, unsigned int flags, uint32_t *size,
		      uint32_t *cap)
{
	uint64_t s;

	if (flags & HPM_RING_F_EXACT_SZ) {
		if (count >= HPM_RING_SZ_MAX)
			return -EINVAL;
		s = 1;
		while (s < (uint64_t)count + 1)
			s <<= 1;
		*size = (uint32_t)s;
		*cap = count;
		return 0;
	}
	if (!HPM_IS_POW2(count) || count > HPM_RING_SZ_MAX)
		return -EINVAL;
	*size = count;
	/* Power-of-two rings keep one slot free, as rte_ring does. */
	*cap = count - 1;
	return 0;
}

/* DPDK's rule: the element size is a multiple of 4 (and, here, not 0). */
static bool esize_ok(unsigned int esize)
{
	return esize && esize % 4 == 0;
}

static ssize_t ring_memsize(uint32_t esize, uint32_t size)
{
	return (ssize_t)HPM_ALIGN_UP(sizeof(struct hpm_ring) +
				     (size_t)size * esize,
				     (size_t)HPM_CACHE_LINE_SIZE);
}

/* One side's mode from its three flags (at most one set), or -EINVAL. */
static int side_sync(unsigned int flags, unsigned int st, unsigned int rts,
		     unsigned int hts)
{
	unsigned int f = flags & (st | rts | hts);

	if (!f)
		return HPM_RING_SYNC_MT;
	if (f == st)
		return HPM_RING_SYNC_ST;
	if (f == rts)
		return HPM_RING_SYNC_MT_RTS;
	if (f == hts)
		return HPM_RING_SYNC_MT_HTS;
	return -EINVAL;
}

static bool flags_ok(unsigned int flags)
{
	return !(flags & ~HPM_RING_F_ALL) &&
	       side_sync(flags, HPM_RING_F_SP_ENQ, HPM_RING_F_MP_RTS_ENQ,
			 HPM_RING_F_MP_HTS_ENQ) >= 0 &&
	       side_sync(flags, HPM_RING_F_SC_DEQ, HPM_RING_F_MC_RTS_DEQ,
			 HPM_RING_F_MC_HTS_DEQ) >= 0;
}

__hpm_export ssize_t hpm_ring_get_memsize_flags(unsigned int count,
						unsigned int flags)
{
	uint32_t size, cap;

	if (!flags_ok(flags) || ring_slots(count, flags, &size, &cap))
		return hpm_fail(EINVAL);
	return ring_memsize(sizeof(void *), size);
}

__hpm_export ssize_t hpm_ring_get_memsize_elem(unsigned int esize,
					       unsigned int count)
{
	uint32_t size, cap;

	if (!esize_ok(esize) || ring_slots(count, 0, &size, &cap))
		return hpm_fail(EINVAL);
	return ring_memsize(esize, size);
}

__hpm_export ssize_t hpm_ring_get_memsize(unsigned int count)
{
	return hpm_ring_get_memsize_flags(count, 0);
}

static int check_name(const char *name)
{
	size_t l;

	if (!name || !name[0])
		return -EINVAL;
	l = strnlen(name, HPM_RING_NAMESIZE);
	if (l >= HPM_RING_NAMESIZE)
		return -ENAMETOOLONG;
	return 0;
}

static void ring_setup(struct hpm_ring *r, const char *name, uint32_t esize,
		       uint32_t size, uint32_t cap, unsigned int flags)
{
	memset(r, 0, sizeof(*r));
	strncpy(r->name, name, sizeof(r->name) - 1);
	r->flags = flags;
	r->size = size;
	r->mask = size - 1;
	r->capacity = cap;
	r->esize = esize;
	r->prod.sync_type = side_sync(flags, HPM_RING_F_SP_ENQ,
				      HPM_RING_F_MP_RTS_ENQ,
				      HPM_RING_F_MP_HTS_ENQ);
	r->cons.sync_type = side_sync(flags, HPM_RING_F_SC_DEQ,
				      HPM_RING_F_MC_RTS_DEQ,
				      HPM_RING_F_MC_HTS_DEQ);
	r->prod.single = r->prod.sync_type == HPM_RING_SYNC_ST;
	r->cons.single = r->cons.sync_type == HPM_RING_SYNC_ST;
	/* DPDK's default head/tail distance for RTS: capacity / 8 */
	r->prod.htd_max = cap / 8;
	r->cons.htd_max = cap / 8;
	atomic_init(&r->prod.head, 0);
	atomic_init(&r->prod.tail, 0);
	atomic_init(&r->cons.head, 0);
	atomic_init(&r->cons.tail, 0);
	hpm_robust_lock_init(&r->prod.lock);
	hpm_robust_lock_init(&r->cons.lock);
	/*
	 * Last, a release store: a lookup that sees the magic (acquire or
	 * through the memzone table's lock) sees a whole ring.
	 */
	__atomic_store_n(&r->magic, HPM_RING_MAGIC, __ATOMIC_RELEASE);
}

__hpm_export int hpm_ring_init(struct hpm_ring *r, const char *name,
			       unsigned int count, unsigned int flags)
{
	uint32_t size, cap;
	int rc;

	if (!r || !flags_ok(flags))
		return hpm_fail(EINVAL);
	rc = check_name(name);
	if (rc)
		return hpm_fail(-rc);
	if (ring_slots(count, flags, &size, &cap))
		return hpm_fail(EINVAL);
	ring_setup(r, name, sizeof(void *), size, cap, flags);
	return 0;
}

__hpm_export struct hpm_ring *hpm_ring_create_elem(const char *name,
						   unsigned int esize,
						   unsigned int count,
						   int socket,
						   unsigned int flags)
{
	char mzname[HPM_NAME_SIZE];
	const struct hpm_memzone *mz;
	struct hpm_ring *r;
	uint32_t size, cap;
	int rc;

	if (!flags_ok(flags) || !esize_ok(esize))
		return hpm_fail_ptr(EINVAL);
	rc = check_name(name);
	if (rc)
		return hpm_fail_ptr(-rc);
	if (ring_slots(count, flags, &size, &cap))
		return hpm_fail_ptr(EINVAL);
	snprintf(mzname, sizeof(mzname), RING_MZ_PREFIX "%s", name);
	mz = hpm_memzone_reserve_aligned(mzname,
					 (size_t)ring_memsize(esize, size),
					 socket, 0, 2 * HPM_CACHE_LINE_SIZE);
	if (!mz)
		return NULL;	/* hpm_errno set by the memzone layer */
	r = mz->addr;
	ring_setup(r, name, esize, size, cap, flags);
	r->mz = mz;
	return r;
}

__hpm_export struct hpm_ring *hpm_ring_create(const char *name,
					      unsigned int count, int socket,
					      unsigned int flags)
{
	return hpm_ring_create_elem(name, sizeof(void *), count, socket, flags);
}

__hpm_export struct hpm_ring *hpm_ring_lookup(const char *name)
{
	char mzname[HPM_NAME_SIZE];
	const struct hpm_memzone *mz;
	struct hpm_ring *r;
	int rc;

	rc = check_name(name);
	if (rc)
		return hpm_fail_ptr(-rc);
	snprintf(mzname, sizeof(mzname), RING_MZ_PREFIX "%s", name);
	mz = hpm_memzone_lookup(mzname);
	if (!mz)
		return NULL;
	r = mz->addr;
	if (r->magic != HPM_RING_MAGIC)
		return hpm_fail_ptr(ENOENT);
	return r;
}

__hpm_export void hpm_ring_free(struct hpm_ring *r)
{
	const struct hpm_memzone *mz;

	if (!r || r->magic != HPM_RING_MAGIC)
		return;
	if (!r->mz) {
		hpm_log(HPM_LOG_WARN, "ring %s: not created by hpm_ring_create",
			r->name);
		return;
	}
	mz = r->mz;
	r->magic = 0;
	hpm_memzone_free(mz);
}

__hpm_export void hpm_ring_dump(FILE *f, const struct hpm_ring *r)
{
	if (!f)
		f = stdout;
	if (!r) {
		fprintf(f, "ring <NULL>\n");
		return;
	}
	fprintf(f, "ring <%s>@%p\n", r->name, (const void *)r);
	fprintf(f, "  flags=%#x size=%u capacity=%u esize=%u\n", r->flags,
		r->size, r->capacity, r->esize);
	fprintf(f, "  cons.head=%u cons.tail=%u sync=%u locked_by=%d\n",
		atomic_load(&r->cons.head), atomic_load(&r->cons.tail),
		r->cons.sync_type, hpm_robust_owner_pid(&r->cons.lock));
	fprintf(f, "  prod.head=%u prod.tail=%u sync=%u locked_by=%d\n",
		atomic_load(&r->prod.head), atomic_load(&r->prod.tail),
		r->prod.sync_type, hpm_robust_owner_pid(&r->prod.lock));
	fprintf(f, "  used=%u avail=%u\n", hpm_ring_count(r),
		hpm_ring_free_count(r));
}

static const char *side_name(const struct hpm_ring *r,
			     const struct hpm_ring_headtail *ht)
{
	return ht == &r->prod ? "producer" : "consumer";
}

__hpm_export void hpm_ring_lock_slow_(struct hpm_ring *r,
				     struct hpm_ring_headtail *ht)
{
	uint64_t me = hpm_robust_self_, dead;

	if (!me)
		me = hpm_robust_self_init_();
	/*
	 * Yield early, unlike the heap's lock: ring operations are the
	 * fast path of every user, often more threads than CPUs, and the
	 * holder we wait for may be preempted in its short copy.
	 */
	dead = hpm_robust_lock_slow(&ht->lock, me, HPM_RING_SPINS_BEFORE_YIELD);
	if (likely(!dead))
		return;
	/*
	 * The dead holder's tail store, if it made it, published a whole
	 * operation; anything after it (slots copied, the head) is void.
	 * The head only matters to SP/SC calls on this ring and to dumps.
	 * relaxed: we hold the lock and the tail is ours to write.
	 */
	atomic_store_explicit(&ht->head,
			      atomic_load_explicit(&ht->tail, memory_order_relaxed),
			      memory_order_relaxed);
	hpm_log(HPM_LOG_WARN, "ring %s: %s pid %d died in an operation; lock taken over",
		r->name, side_name(r, ht), (int)(dead >> 32));
}
