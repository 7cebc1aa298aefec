// SPDX-License-Identifier: MIT
/*
 * Mempools: creation, population, the cache slow paths, iteration, audit.
 * The cached get/put fast paths are inline in <hpmem/mempool.h>.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/*
 * The crash-step test hook runs inside the ring operations of the refills
 * and flushes made here too (a countdown test; one predicted branch).
 */
#include "crash_step.h"
#define HPM_RING_TEST_STEP()	HPM_CRASH_STEP()

#include <hpmem/malloc.h>
#include <hpmem/memseg.h>
#include <hpmem/memzone.h>
#include <hpmem/mempool.h>

#include "internal.h"
#include "mempool.h"

#define MP_MZ_PREFIX	"MP_"

#ifdef HPM_DEBUG
#define MP_DEBUG_DEFAULT	1
#else
#define MP_DEBUG_DEFAULT	0
#endif

_Static_assert(sizeof(struct hpm_mempool_objhdr) == 32,
	       "object header layout is part of the shared-memory ABI");
_Static_assert(offsetof(struct hpm_mempool, header_size) < HPM_CACHE_LINE_SIZE,
	       "fast-path fields must share the first cache line");

_Static_assert(sizeof(hpm_spinlock_t) == sizeof(atomic_uint),
	       "mp->lock holds an hpm_spinlock_t");

static hpm_spinlock_t *mp_lock(struct hpm_mempool *mp)
{
	return (hpm_spinlock_t *)&mp->lock;
}

static const struct hpm_mempool_ops *mp_ops(const struct hpm_mempool *mp)
{
	return hpm_mempool_ops_get(mp->ops_id);
}

/* ---- out-of-line parts of the fast paths ---- */

__hpm_export int hpm_mempool_ops_enqueue_(struct hpm_mempool *mp,
					  void *const *objs, unsigned int n)
{
	return mp_ops(mp)->enqueue(mp, objs, n);
}

__hpm_export int hpm_mempool_ops_dequeue_(struct hpm_mempool *mp,
					  void **objs, unsigned int n)
{
	return mp_ops(mp)->dequeue(mp, objs, n);
}

/* The cache cannot serve n objects: refill it, or bypass it. */
__hpm_export int hpm_mempool_get_refill_(struct hpm_mempool *mp,
					 struct hpm_mempool_cache *c,
					 void **objs, unsigned int n)
{
	unsigned int need, req;

	if (n == 0)
		return 0;
	if (n > c->half) {
		/* Too big for the cache (or no cache): straight to the driver. */
		if (hpm_mempool_drv_dequeue_(mp, objs, n)) {
			c->get_fails++;
			return -ENOENT;
		}
		c->get_objs += n;
		return 0;
	}
	/*
	 * n <= half and n > len. Take what the request lacks plus half a
	 * cache: afterwards len == half <= size. If the driver has fewer,
	 * take only what is lacking (all-or-nothing still holds).
	 */
	need = n - c->len;
	req = need + c->half;
	if (hpm_mempool_drv_dequeue_(mp, &c->objs[c->len], req)) {
		req = need;
		if (hpm_mempool_drv_dequeue_(mp, &c->objs[c->len], req)) {
			c->get_fails++;
			return -ENOENT;
		}
	}
	c->len += req - n;
	hpm_ring_copy_ptrs_(objs, &c->objs[c->len], n);
	c->get_objs += n;
	return 0;
}

/* The cache cannot take n objects: flush it to half, or bypass it. */
__hpm_export void hpm_mempool_put_flush_(struct hpm_mempool *mp,
					 struct hpm_mempool_cache *c,
					 void *const *objs, unsigned int n)
{
	unsigned int extra;

	c->put_objs += n;
	if (n > c->half) {
		hpm_mempool_drv_enqueue_(mp, objs, n);
		return;
	}
	/*
	 * len + n > size and n <= half, so len > half. Shrink the cache
	 * before the objects reach the driver: a thread killed in between
	 * loses them, where the other order would leave them both in the
	 * driver and in the cache that the next owner of this thread slot
	 * inherits. The driver's release of its tail keeps this store first.
	 */
	extra = c->len - c->half;
	c->len = c->half;
	hpm_mempool_drv_enqueue_(mp, &c->objs[c->half], extra);
	hpm_ring_copy_ptrs_(&c->objs[c->len], objs, n);
	c->len += n;
}

static void __hpm_cold mp_debug_fail(const struct hpm_mempool *mp,
				     const void *obj, const char *what)
{
	hpm_log(HPM_LOG_ERR, "mempool %s: object %p: %s",
		mp ? mp->name : "?", obj, what);
	abort();
}

static uint64_t *mp_trailer(const struct hpm_mempool *mp, const void *obj)
{
	return (uint64_t *)((uintptr_t)obj + mp->elt_size);
}

/*
 * Debug builds: every object's header cookie says whether it is in the
 * pool (FREE) or with a user (ALLOC). A put of a FREE object is a double
 * put; a header naming another pool is a foreign object. Both abort, as
 * carrying on would corrupt the pool.
 */
__hpm_export void hpm_mempool_debug_check_(struct hpm_mempool *mp,
					   void *const *objs, unsigned int n,
					   bool put)
{
	struct hpm_mempool_objhdr *h;
	unsigned int i;

	if (mp->magic != HPM_MEMPOOL_MAGIC)
		mp_debug_fail(mp, n ? objs[0] : NULL, "pool is not live");
	for (i = 0; i < n; i++) {
		if (!objs[i])
			mp_debug_fail(mp, objs[i], "NULL object");
		h = hpm_mempool_get_header(objs[i]);
		if (h->mp != mp)
			mp_debug_fail(mp, objs[i], "foreign object");
		if (put) {
			if (h->cookie == HPM_MEMPOOL_COOKIE_FREE)
				mp_debug_fail(mp, objs[i], "double put");
			if (h->cookie != HPM_MEMPOOL_COOKIE_ALLOC)
				mp_debug_fail(mp, objs[i], "header corrupt");
			if ((mp->flags & HPM_MEMPOOL_F_DEBUG) &&
			    *mp_trailer(mp, objs[i]) !=
			    HPM_MEMPOOL_TRAILER_COOKIE)
				mp_debug_fail(mp, objs[i], "trailer overwritten");
			h->cookie = HPM_MEMPOOL_COOKIE_FREE;
		} else {
			if (h->cookie != HPM_MEMPOOL_COOKIE_FREE)
				mp_debug_fail(mp, objs[i],
					      "handed out twice / header corrupt");
			h->cookie = HPM_MEMPOOL_COOKIE_ALLOC;
		}
	}
}

/* ---- creation ---- */

static int check_name(const char *name)
{
	if (!name || !name[0])
		return -EINVAL;
	if (strnlen(name, HPM_MEMPOOL_NAMESIZE) >= HPM_MEMPOOL_NAMESIZE)
		return -ENAMETOOLONG;
	return 0;
}

static unsigned int default_ops(unsigned int flags)
{
	bool sp = flags & HPM_MEMPOOL_F_SP_PUT, sc = flags & HPM_MEMPOOL_F_SC_GET;

	if (sp && sc)
		return HPM_MEMPOOL_OPS_RING_SP_SC;
	if (sp)
		return HPM_MEMPOOL_OPS_RING_SP_MC;
	if (sc)
		return HPM_MEMPOOL_OPS_RING_MP_SC;
	return HPM_MEMPOOL_OPS_RING_MP_MC;
}

static void set_ops(struct hpm_mempool *mp, unsigned int id)
{
	mp->ops_id = id;
	snprintf(mp->ops_name, sizeof(mp->ops_name), "%s",
		 hpm_mempool_ops_get(id)->name);
}

__hpm_export struct hpm_mempool *
hpm_mempool_create_empty(const char *name, unsigned int n,
			 unsigned int elt_size, unsigned int cache_size,
			 unsigned int private_data_size, int socket,
			 unsigned int flags)
{
	char mzname[HPM_NAME_SIZE];
	const struct hpm_memzone *mz;
	struct hpm_mempool *mp;
	size_t stride, priv, total, hdr, trl, align;
	unsigned int i;
	int rc;

	rc = check_name(name);
	if (rc)
		return hpm_fail_ptr(-rc);
	if (n == 0 || elt_size == 0 || (flags & ~HPM_MEMPOOL_F_ALL))
		return hpm_fail_ptr(EINVAL);
	if (n >= HPM_RING_SZ_MAX || elt_size > (1u << 30) ||
	    private_data_size > (1u << 30))
		return hpm_fail_ptr(EINVAL);
	/* DPDK's rule: caches may hold at most 2/3 of the pool. */
	if (cache_size > HPM_MEMPOOL_CACHE_MAX_SIZE ||
	    (uint64_t)cache_size * 3 > (uint64_t)n * 2)
		return hpm_fail_ptr(EINVAL);
	/* A node, or an external heap (hpm_malloc_heap_get_socket()), as DPDK. */
	if (socket != HPM_SOCKET_ANY && (socket < 0 || socket >= HPM_MAX_NODES) &&
	    hpm_malloc_heap_socket_is_external(socket) != 1)
		return hpm_fail_ptr(EINVAL);

	align = (flags & HPM_MEMPOOL_F_NO_CACHE_ALIGN) ? 8 :
		HPM_CACHE_LINE_SIZE;
	hdr = HPM_ALIGN_UP(sizeof(struct hpm_mempool_objhdr), align);
	trl = MP_DEBUG_DEFAULT ? sizeof(uint64_t) : 0;
	/* The trailer also absorbs the padding to the next object. */
	total = HPM_ALIGN_UP(hdr + HPM_ALIGN_UP((size_t)elt_size, 8) + trl,
			     align);
	trl = total - hdr - elt_size;

	priv = HPM_ALIGN_UP((size_t)private_data_size, HPM_CACHE_LINE_SIZE);
	/* Two lines of granularity: no false sharing with the prefetcher. */
	stride = HPM_ALIGN_UP(sizeof(struct hpm_mempool_cache) +
			      (size_t)cache_size * sizeof(void *),
			      2 * HPM_CACHE_LINE_SIZE);

	snprintf(mzname, sizeof(mzname), MP_MZ_PREFIX "%s", name);
	mz = hpm_memzone_reserve_aligned(mzname,
					 sizeof(*mp) + priv +
					 2 * HPM_CACHE_LINE_SIZE +
					 stride * HPM_MAX_THREADS,
					 socket, 0, 2 * HPM_CACHE_LINE_SIZE);
	if (!mz)
		return NULL;
	mp = mz->addr;
	memset(mp, 0, sizeof(*mp) + priv);
	snprintf(mp->name, sizeof(mp->name), "%s", name);
	/* No memory yet, so no IOVA: NON_IO until memory with one comes. */
	mp->flags = flags | HPM_MEMPOOL_F_NON_IO |
		    (MP_DEBUG_DEFAULT ? HPM_MEMPOOL_F_DEBUG : 0);
	mp->cache_size = cache_size;
	mp->cache_stride = (uint32_t)stride;
	mp->header_size = (uint32_t)hdr;
	mp->trailer_size = (uint32_t)trl;
	mp->total_elt_size = (uint32_t)total;
	mp->size = n;
	mp->elt_size = elt_size;
	mp->private_data_size = private_data_size;
	mp->socket = socket;
	mp->mz = mz;
	hpm_spinlock_init(mp_lock(mp));
	atomic_init(&mp->uncached_get_fails, 0);
	set_ops(mp, default_ops(flags));
	mp->caches = (struct hpm_mempool_cache *)
		HPM_ALIGN_UP((uintptr_t)mp + sizeof(*mp) + priv,
			     (uintptr_t)2 * HPM_CACHE_LINE_SIZE);
	for (i = 0; i < HPM_MAX_THREADS; i++) {
		struct hpm_mempool_cache *c = hpm_mempool_cache_(mp, i);

		memset(c, 0, sizeof(*c));
		c->size = cache_size;
		c->half = cache_size / 2;
	}
	/*
	 * Last, a release store: another process that finds the zone by
	 * name and sees the magic sees an initialised pool.
	 */
	__atomic_store_n(&mp->magic, HPM_MEMPOOL_MAGIC, __ATOMIC_RELEASE);
	return mp;
}

__hpm_export int hpm_mempool_set_ops_byname(struct hpm_mempool *mp,
					    const char *name,
					    void *pool_config)
{
	int id;

	(void)pool_config;	/* no driver takes a configuration yet */
	if (!mp || mp->magic != HPM_MEMPOOL_MAGIC)
		return hpm_fail(EINVAL);
	id = hpm_mempool_ops_find(name);
	if (id < 0)
		return hpm_fail(EINVAL);
	if (mp->pool_data || mp->populated_size)
		return hpm_fail(EBUSY);
	set_ops(mp, (unsigned int)id);
	return 0;
}

/* The driver's storage, allocated at the first populate. */
static int mp_ops_alloc_once(struct hpm_mempool *mp)
{
	if (mp->pool_data)
		return 0;
	return mp_ops(mp)->alloc(mp);
}

/* Is [va, va + len) IOVA-contiguous? Checks page by page. */
static bool iova_contig(const char *va, size_t len, uint64_t *iova_out)
{
	uint64_t iova = hpm_virt2iova(va), next;
	const struct hpm_memseg *ms;
	const char *end = va + len, *p;

	*iova_out = iova;
	if (iova == HPM_BAD_IOVA)
		return true;	/* not our memory: nothing to keep together */
	ms = hpm_virt2memseg(va);
	if (!ms)
		return true;
	p = (const char *)ms->addr + ms->len;
	while (p < end) {
		next = hpm_virt2iova(p);
		if (next != iova + (uint64_t)(p - va))
			return false;
		ms = hpm_virt2memseg(p);
		if (!ms)
			return false;
		p = (const char *)ms->addr + ms->len;
	}
	return true;
}

static void mp_obj_init_one(struct hpm_mempool *mp, void *obj, uint64_t iova)
{
	struct hpm_mempool_objhdr *h = hpm_mempool_get_header(obj);

	h->mp = mp;
	h->iova = iova;
	h->cookie = HPM_MEMPOOL_COOKIE_FREE;
	h->pad_ = 0;
	if (mp->flags & HPM_MEMPOOL_F_DEBUG)
		*mp_trailer(mp, obj) = HPM_MEMPOOL_TRAILER_COOKIE;
}

/*
 * Walk the object slots of a chunk: the placement rule shared by populate
 * and obj_iter. Calls fn on each slot until it returns false; returns the
 * number of slots visited.
 */
static unsigned int mp_chunk_walk(struct hpm_mempool *mp,
				  const struct hpm_mempool_memhdr *mh,
				  unsigned int max,
				  bool (*fn)(struct hpm_mempool *mp, void *obj,
					     uint64_t iova, void *arg),
				  void *arg)
{
	size_t total = mp->total_elt_size, off, align;
	bool check = mh->per_obj_iova &&
		!(mp->flags & HPM_MEMPOOL_F_NO_IOVA_CONTIG);
	char *base = mh->addr;
	unsigned int cnt = 0;
	uint64_t iova;

	align = (mp->flags & HPM_MEMPOOL_F_NO_CACHE_ALIGN) ? 8 :
		HPM_CACHE_LINE_SIZE;
	off = HPM_ALIGN_UP((uintptr_t)base, align) - (uintptr_t)base;
	while (cnt < max && off + total <= mh->len) {
		char *elt = base + off;

		if (mh->per_obj_iova && check) {
			if (!iova_contig(elt, total, &iova)) {
				/* Straddles an IOVA gap: next aligned slot. */
				off += align;
				continue;
			}
			if (iova != HPM_BAD_IOVA)
				iova += mp->header_size;
		} else if (mh->per_obj_iova) {
			/* May straddle: the IOVA of the object's first byte. */
			iova = hpm_virt2iova(elt + mp->header_size);
		} else {
			iova = mh->iova == HPM_BAD_IOVA ? HPM_BAD_IOVA :
				mh->iova + off + mp->header_size;
		}
		if (!fn(mp, elt + mp->header_size, iova, arg))
			break;
		cnt++;
		off += total;
	}
	return cnt;
}

static bool carve_one(struct hpm_mempool *mp, void *obj, uint64_t iova,
		      void *arg)
{
	bool *any_iova = arg;

	if (iova != HPM_BAD_IOVA)
		*any_iova = true;
	mp_obj_init_one(mp, obj, iova);
	/* The driver holds n objects; this cannot fail. */
	mp_ops(mp)->enqueue(mp, &obj, 1);
	return true;
}

/* Add a chunk under mp->lock. Returns objects added or -errno. */
static int mp_add_chunk(struct hpm_mempool *mp, char *vaddr, uint64_t iova,
			size_t len, bool per_obj_iova, const void *mz,
			hpm_mempool_memchunk_free_cb_t *free_cb, void *opaque)
{
	struct hpm_mempool_memhdr *mh;
	bool any_iova = false;
	unsigned int cnt;
	int rc;

	if (mp->populated_size >= mp->size)
		return -ENOSPC;
	if (mp->nb_mem_chunks >= HPM_MEMPOOL_MAX_CHUNKS)
		return -ENOSPC;
	rc = mp_ops_alloc_once(mp);
	if (rc)
		return rc;
	mh = &mp->chunks[mp->nb_mem_chunks];
	memset(mh, 0, sizeof(*mh));
	mh->addr = vaddr;
	mh->iova = iova;
	mh->len = len;
	mh->mz = mz;
	mh->per_obj_iova = per_obj_iova;
	cnt = mp_chunk_walk(mp, mh, mp->size - mp->populated_size, carve_one,
			    &any_iova);
	if (cnt == 0)
		return -EINVAL;	/* too small for one object */
	mh->nb_objs = cnt;
	mh->free_cb = free_cb;
	mh->opaque = opaque;
	mp->nb_mem_chunks++;
	mp->populated_size += cnt;
	mp->flags |= HPM_MEMPOOL_F_POPULATED;
	/* DPDK's rule: some objects can now do IO, unless they may straddle */
	if (any_iova && !(mp->flags & HPM_MEMPOOL_F_NO_IOVA_CONTIG))
		mp->flags &= ~HPM_MEMPOOL_F_NON_IO;
	return (int)cnt;
}

/*
 * After a populate call: READY when it made the pool full (was_full says
 * whether it was before), outside the pool lock so that the callbacks may
 * use the pool. Returns rc.
 */
static int mp_populated(struct hpm_mempool *mp, bool was_full, int rc)
{
	if (rc > 0 && !was_full && mp->populated_size == mp->size)
		hpm_mempool_event_invoke_(HPM_MEMPOOL_EVENT_READY, mp);
	return rc;
}

__hpm_export int hpm_mempool_populate_iova(struct hpm_mempool *mp,
					   char *vaddr, uint64_t iova,
					   size_t len,
					   hpm_mempool_memchunk_free_cb_t *free_cb,
					   void *opaque)
{
	bool was_full;
	int rc;

	if (!mp || mp->magic != HPM_MEMPOOL_MAGIC || !vaddr || !len)
		return hpm_fail(EINVAL);
	hpm_spinlock_lock(mp_lock(mp));
	was_full = mp->populated_size == mp->size;
	rc = mp_add_chunk(mp, vaddr, iova, len, false, NULL, free_cb, opaque);
	hpm_spinlock_unlock(mp_lock(mp));
	return rc < 0 ? hpm_fail(-rc) : mp_populated(mp, was_full, rc);
}

__hpm_export int hpm_mempool_populate_virt(struct hpm_mempool *mp,
					   char *addr, size_t len,
					   size_t pg_sz,
					   hpm_mempool_memchunk_free_cb_t *free_cb,
					   void *opaque)
{
	bool was_full;
	int rc;

	if (!mp || mp->magic != HPM_MEMPOOL_MAGIC || !addr || !len)
		return hpm_fail(EINVAL);
	if (pg_sz && !HPM_IS_POW2(pg_sz))
		return hpm_fail(EINVAL);
	/*
	 * One chunk; each object's IOVA is looked up and, unless the pool
	 * allows it, objects are moved off IOVA discontinuities (the page
	 * boundaries of non-contiguous memory). pg_sz is accepted for
	 * DPDK compatibility: our page table knows the real page size.
	 */
	hpm_spinlock_lock(mp_lock(mp));
	was_full = mp->populated_size == mp->size;
	rc = mp_add_chunk(mp, addr, HPM_BAD_IOVA, len, true, NULL, free_cb,
			  opaque);
	hpm_spinlock_unlock(mp_lock(mp));
	return rc < 0 ? hpm_fail(-rc) : mp_populated(mp, was_full, rc);
}

static void mz_chunk_free(struct hpm_mempool_memhdr *mh, void *opaque)
{
	(void)opaque;
	hpm_memzone_free(mh->mz);
}

__hpm_export int hpm_mempool_populate_default(struct hpm_mempool *mp)
{
	bool want_contig;
	const struct hpm_memzone *mz;
	char mzname[HPM_NAME_SIZE];
	size_t want, min;
	unsigned int added = 0;
	bool was_full;
	int rc = 0;

	if (!mp || mp->magic != HPM_MEMPOOL_MAGIC)
		return hpm_fail(EINVAL);
	want_contig = !(mp->flags & HPM_MEMPOOL_F_NO_IOVA_CONTIG);
	hpm_spinlock_lock(mp_lock(mp));
	was_full = mp->populated_size == mp->size;
	min = (size_t)mp->total_elt_size + HPM_CACHE_LINE_SIZE;
	want = (size_t)(mp->size - mp->populated_size) * mp->total_elt_size +
		HPM_CACHE_LINE_SIZE;
	while (mp->populated_size < mp->size) {
		unsigned int zflags = want_contig ? HPM_MEMZONE_IOVA_CONTIG : 0;
		size_t left = (size_t)(mp->size - mp->populated_size) *
			mp->total_elt_size + HPM_CACHE_LINE_SIZE;

		if (want > left)
			want = left;
		snprintf(mzname, sizeof(mzname), MP_MZ_PREFIX "%s.%u",
			 mp->name, mp->mz_serial);
		mz = hpm_memzone_reserve_aligned(mzname, want, mp->socket,
						 zflags, HPM_CACHE_LINE_SIZE);
		if (!mz && hpm_errno == ENOMEM && want_contig) {
			/* Objects stay contiguous: the carver skips gaps. */
			mz = hpm_memzone_reserve_aligned(mzname, want,
							 mp->socket, 0,
							 HPM_CACHE_LINE_SIZE);
		}
		if (!mz) {
			if (hpm_errno != ENOMEM || want <= min) {
				rc = -hpm_errno;
				break;
			}
			/* Several smaller zones when one large one fails. */
			want = want / 2 > min ? want / 2 : min;
			continue;
		}
		mp->mz_serial++;
		rc = mp_add_chunk(mp, mz->addr, mz->iova, mz->len,
				  !(mz->flags & HPM_MEMZONE_IOVA_CONTIG) ||
				  mz->iova == HPM_BAD_IOVA,
				  mz, mz_chunk_free, NULL);
		if (rc < 0) {
			hpm_memzone_free(mz);
			break;
		}
		added += (unsigned int)rc;
		rc = 0;
	}
	hpm_spinlock_unlock(mp_lock(mp));
	if (rc < 0)
		return hpm_fail(-rc);
	return mp_populated(mp, was_full, (int)added);
}

static void anon_chunk_free(struct hpm_mempool_memhdr *mh, void *opaque)
{
	munmap(mh->addr, (size_t)(uintptr_t)opaque);
}

__hpm_export int hpm_mempool_populate_anon(struct hpm_mempool *mp)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE), len;
	void *addr;
	int rc;

	if (!mp || mp->magic != HPM_MEMPOOL_MAGIC)
		return hpm_fail(EINVAL);
	/* as DPDK: only for a pool that has no memory yet */
	if (mp->nb_mem_chunks || mp->populated_size)
		return hpm_fail(EEXIST);
	len = HPM_ALIGN_UP((size_t)mp->size * mp->total_elt_size +
			   HPM_CACHE_LINE_SIZE, pg);
	/* shared: the objects stay the same objects in a forked child */
	addr = mmap(NULL, len, PROT_READ | PROT_WRITE,
		    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (addr == MAP_FAILED)
		return hpm_fail(errno);
	/* locked, as DPDK's: a pool's objects are not paged out */
	if (mlock(addr, len)) {
		rc = errno;
		munmap(addr, len);
		return hpm_fail(rc);
	}
	rc = hpm_mempool_populate_virt(mp, addr, len, pg, anon_chunk_free,
				       (void *)(uintptr_t)len);
	if (rc < 0)
		munmap(addr, len);
	return rc;
}

struct init_arg {
	hpm_mempool_obj_cb_t *fn;
	void *arg;
	unsigned int idx;
};

static bool iter_one(struct hpm_mempool *mp, void *obj, uint64_t iova,
		     void *arg)
{
	struct init_arg *a = arg;

	(void)iova;
	a->fn(mp, a->arg, obj, a->idx++);
	return true;
}

__hpm_export uint32_t hpm_mempool_obj_iter(struct hpm_mempool *mp,
					   hpm_mempool_obj_cb_t *fn, void *arg)
{
	struct init_arg a = { fn, arg, 0 };
	unsigned int i;

	if (!mp || !fn)
		return 0;
	for (i = 0; i < mp->nb_mem_chunks; i++)
		mp_chunk_walk(mp, &mp->chunks[i], mp->chunks[i].nb_objs,
			      iter_one, &a);
	return a.idx;
}

__hpm_export uint32_t hpm_mempool_mem_iter(struct hpm_mempool *mp,
					   hpm_mempool_mem_cb_t *fn, void *arg)
{
	unsigned int i;

	if (!mp || !fn)
		return 0;
	for (i = 0; i < mp->nb_mem_chunks; i++)
		fn(mp, arg, &mp->chunks[i], i);
	return mp->nb_mem_chunks;
}

__hpm_export struct hpm_mempool *
hpm_mempool_create(const char *name, unsigned int n, unsigned int elt_size,
		   unsigned int cache_size, unsigned int private_data_size,
		   hpm_mempool_obj_cb_t *obj_init, void *obj_init_arg,
		   int socket, unsigned int flags)
{
	struct hpm_mempool *mp;
	int rc;

	mp = hpm_mempool_create_empty(name, n, elt_size, cache_size,
				      private_data_size, socket, flags);
	if (!mp)
		return NULL;
	rc = hpm_mempool_populate_default(mp);
	if (rc < 0) {
		hpm_mempool_free(mp);
		return hpm_fail_ptr(-rc);
	}
	if (obj_init)
		hpm_mempool_obj_iter(mp, obj_init, obj_init_arg);
	return mp;
}

__hpm_export struct hpm_mempool *hpm_mempool_lookup(const char *name)
{
	char mzname[HPM_NAME_SIZE];
	const struct hpm_memzone *mz;
	struct hpm_mempool *mp;
	int rc;

	rc = check_name(name);
	if (rc)
		return hpm_fail_ptr(-rc);
	snprintf(mzname, sizeof(mzname), MP_MZ_PREFIX "%s", name);
	mz = hpm_memzone_lookup(mzname);
	if (!mz)
		return NULL;
	mp = mz->addr;
	if (mp->magic != HPM_MEMPOOL_MAGIC)
		return hpm_fail_ptr(ENOENT);
	return mp;
}

/* A live pool's own zone ("MP_<name>", not a chunk "MP_<name>.<k>")? */
static struct hpm_mempool *mp_of_zone(const struct hpm_memzone *mz)
{
	struct hpm_mempool *mp = mz->addr;

	if (strncmp(mz->name, MP_MZ_PREFIX, strlen(MP_MZ_PREFIX)) ||
	    mz->len < sizeof(*mp))
		return NULL;
	if (__atomic_load_n(&mp->magic, __ATOMIC_ACQUIRE) != HPM_MEMPOOL_MAGIC ||
	    mp->mz != mz)
		return NULL;
	return mp;
}

struct walk_arg {
	void (*fn)(struct hpm_mempool *mp, void *arg);
	void *arg;
};

static int walk_one(const struct hpm_memzone *mz, void *arg)
{
	struct hpm_mempool *mp = mp_of_zone(mz);
	struct walk_arg *w = arg;

	if (mp)
		w->fn(mp, w->arg);
	return 0;
}

__hpm_export void hpm_mempool_walk(void (*fn)(struct hpm_mempool *mp,
					      void *arg), void *arg)
{
	struct walk_arg w = { fn, arg };

	if (fn)
		hpm_memzone_walk(walk_one, &w);
}

static void dump_one(struct hpm_mempool *mp, void *arg)
{
	hpm_mempool_dump(arg, mp);
}

__hpm_export void hpm_mempool_list_dump(FILE *f)
{
	hpm_mempool_walk(dump_one, f ? f : stdout);
}

__hpm_export int
hpm_mempool_get_mem_range(const struct hpm_mempool *mp,
			  struct hpm_mempool_mem_range_info *mem_range)
{
	uintptr_t lo = UINTPTR_MAX, hi = 0;
	size_t total = 0;
	unsigned int i;

	if (!mp || !mem_range)
		return hpm_fail(EINVAL);
	for (i = 0; i < mp->nb_mem_chunks; i++) {
		uintptr_t a = (uintptr_t)mp->chunks[i].addr;

		if (a < lo)
			lo = a;
		if (a + mp->chunks[i].len > hi)
			hi = a + mp->chunks[i].len;
		total += mp->chunks[i].len;
	}
	if (lo == UINTPTR_MAX)
		return hpm_fail(EINVAL);	/* not populated */
	mem_range->start = (void *)lo;
	mem_range->length = hi - lo;
	mem_range->is_contiguous = total == hi - lo;
	return 0;
}

__hpm_export size_t hpm_mempool_get_obj_alignment(const struct hpm_mempool *mp)
{
	if (!mp)
		return 0;
	return (mp->flags & HPM_MEMPOOL_F_NO_CACHE_ALIGN) ? sizeof(uint64_t) :
							     HPM_CACHE_LINE_SIZE;
}

__hpm_export void hpm_mempool_free(struct hpm_mempool *mp)
{
	unsigned int i;

	if (!mp || mp->magic != HPM_MEMPOOL_MAGIC)
		return;
	/* Before anything goes: the callbacks may still look at the pool. */
	hpm_mempool_event_invoke_(HPM_MEMPOOL_EVENT_DESTROY, mp);
	/* Then: lookups and debug checks see a dead pool from now on. */
	mp->magic = 0;
	for (i = mp->nb_mem_chunks; i-- > 0;) {
		struct hpm_mempool_memhdr *mh = &mp->chunks[i];

		if (mh->free_cb)
			mh->free_cb(mh, mh->opaque);
	}
	mp->nb_mem_chunks = 0;
	if (mp->pool_data)
		mp_ops(mp)->free(mp);
	hpm_memzone_free(mp->mz);
}

/* ---- accounting ---- */

static unsigned int mp_cached(const struct hpm_mempool *mp)
{
	unsigned int i, sum = 0;

	if (!mp->cache_size)
		return 0;
	for (i = 0; i < HPM_MAX_THREADS; i++)
		sum += __atomic_load_n(&hpm_mempool_cache_(mp, i)->len,
				       __ATOMIC_RELAXED);
	return sum;
}

__hpm_export unsigned int hpm_mempool_avail_count(const struct hpm_mempool *mp)
{
	unsigned int cnt;

	if (!mp || !mp->pool_data)
		return 0;
	cnt = mp_ops(mp)->count(mp) + mp_cached(mp);
	/* Snapshots of moving counters can overshoot. */
	return cnt > mp->size ? mp->size : cnt;
}

__hpm_export unsigned int
hpm_mempool_in_use_count(const struct hpm_mempool *mp)
{
	if (!mp)
		return 0;
	return mp->size - hpm_mempool_avail_count(mp);
}

__hpm_export void hpm_mempool_cache_flush_user(struct hpm_mempool_cache *c,
					       struct hpm_mempool *mp)
{
	unsigned int n;

	if (!mp)
		return;
	/* as DPDK's rte_mempool_cache_flush(): NULL is the thread's cache */
	if (!c)
		c = hpm_mempool_default_cache(mp);
	if (!c)
		return;
	n = c->len;
	/* Empty first, as in hpm_mempool_put_flush_(): lost, never twice. */
	c->len = 0;
	if (n)
		hpm_mempool_drv_enqueue_(mp, c->objs, n);
}

__hpm_export void hpm_mempool_cache_flush(struct hpm_mempool *mp)
{
	unsigned int idx = hpm_thread_index();

	if (!mp || idx >= HPM_MAX_THREADS)
		return;
	hpm_mempool_cache_flush_user(hpm_mempool_cache_(mp, idx), mp);
}

__hpm_export int hpm_mempool_stats_get(const struct hpm_mempool *mp,
				       struct hpm_mempool_stats *st)
{
	unsigned int i;

	if (!mp || !st)
		return hpm_fail(EINVAL);
	memset(st, 0, sizeof(*st));
	for (i = 0; i < HPM_MAX_THREADS; i++) {
		const struct hpm_mempool_cache *c = hpm_mempool_cache_(mp, i);

		st->get_objs += __atomic_load_n(&c->get_objs, __ATOMIC_RELAXED);
		st->put_objs += __atomic_load_n(&c->put_objs, __ATOMIC_RELAXED);
		st->get_fails += __atomic_load_n(&c->get_fails, __ATOMIC_RELAXED);
	}
	st->get_fails += atomic_load_explicit(&mp->uncached_get_fails,
					      memory_order_relaxed);
	return 0;
}

__hpm_export void hpm_mempool_stats_reset(struct hpm_mempool *mp)
{
	unsigned int i;

	if (!mp)
		return;
	for (i = 0; i < HPM_MAX_THREADS; i++) {
		struct hpm_mempool_cache *c = hpm_mempool_cache_(mp, i);

		c->get_objs = c->put_objs = c->get_fails = 0;
	}
	atomic_store(&mp->uncached_get_fails, 0);
}

__hpm_export void hpm_mempool_dump(FILE *f, const struct hpm_mempool *mp)
{
	struct hpm_mempool_stats st;
	unsigned int i;

	if (!f)
		f = stdout;
	if (!mp) {
		fprintf(f, "mempool <NULL>\n");
		return;
	}
	fprintf(f, "mempool <%s>@%p\n", mp->name, (const void *)mp);
	fprintf(f, "  flags=%#x socket=%d driver=%s (id %u)\n", mp->flags,
		mp->socket, mp->ops_name, mp->ops_id);
	fprintf(f, "  size=%u populated=%u elt=%u header=%u trailer=%u total=%u\n",
		mp->size, mp->populated_size, mp->elt_size, mp->header_size,
		mp->trailer_size, mp->total_elt_size);
	fprintf(f, "  private=%u cache_size=%u chunks=%u\n",
		mp->private_data_size, mp->cache_size, mp->nb_mem_chunks);
	for (i = 0; i < mp->nb_mem_chunks; i++)
		fprintf(f, "    chunk %u: addr=%p iova=%#llx len=%zu objs=%u\n",
			i, mp->chunks[i].addr,
			(unsigned long long)mp->chunks[i].iova,
			mp->chunks[i].len, mp->chunks[i].nb_objs);
	for (i = 0; mp->cache_size && i < HPM_MAX_THREADS; i++) {
		const struct hpm_mempool_cache *c = hpm_mempool_cache_(mp, i);

		if (c->len)
			fprintf(f, "    cache %u: len=%u\n", i, c->len);
	}
	fprintf(f, "  avail=%u in_use=%u\n", hpm_mempool_avail_count(mp),
		hpm_mempool_in_use_count(mp));
	if (!hpm_mempool_stats_get(mp, &st))
		fprintf(f, "  stats: get %llu, put %llu, get fails %llu (objects)\n",
			(unsigned long long)st.get_objs,
			(unsigned long long)st.put_objs,
			(unsigned long long)st.get_fails);
}

struct audit_arg {
	unsigned int bad, free_cookies;
};

static bool audit_one(struct hpm_mempool *mp, void *obj, uint64_t iova,
		      void *arg)
{
	struct hpm_mempool_objhdr *h = hpm_mempool_get_header(obj);
	struct audit_arg *a = arg;

	if (h->mp != mp || h->iova != iova) {
		hpm_log(HPM_LOG_ERR, "mempool %s: object %p: bad header",
			mp->name, obj);
		a->bad++;
	}
	if (mp->flags & HPM_MEMPOOL_F_DEBUG) {
		if (h->cookie == HPM_MEMPOOL_COOKIE_FREE) {
			a->free_cookies++;
		} else if (h->cookie != HPM_MEMPOOL_COOKIE_ALLOC) {
			hpm_log(HPM_LOG_ERR, "mempool %s: object %p: bad cookie",
				mp->name, obj);
			a->bad++;
		}
		if (*mp_trailer(mp, obj) != HPM_MEMPOOL_TRAILER_COOKIE) {
			hpm_log(HPM_LOG_ERR, "mempool %s: object %p: trailer overwritten",
				mp->name, obj);
			a->bad++;
		}
	}
	return true;
}

__hpm_export int hpm_mempool_audit(struct hpm_mempool *mp)
{
	struct audit_arg a = { 0, 0 };
	unsigned int i, objs = 0, avail;

	if (!mp || mp->magic != HPM_MEMPOOL_MAGIC)
		return hpm_fail(EINVAL);
	for (i = 0; i < HPM_MAX_THREADS; i++) {
		const struct hpm_mempool_cache *c = hpm_mempool_cache_(mp, i);

		if (c->len > c->size || c->size != mp->cache_size) {
			hpm_log(HPM_LOG_ERR, "mempool %s: cache %u: len %u size %u",
				mp->name, i, c->len, c->size);
			a.bad++;
		}
	}
	for (i = 0; i < mp->nb_mem_chunks; i++) {
		const struct hpm_mempool_memhdr *mh = &mp->chunks[i];

		objs += mp_chunk_walk(mp, mh, mh->nb_objs, audit_one, &a);
	}
	if (objs != mp->populated_size) {
		hpm_log(HPM_LOG_ERR, "mempool %s: %u objects, %u populated",
			mp->name, objs, mp->populated_size);
		a.bad++;
	}
	avail = hpm_mempool_avail_count(mp);
	if (avail > mp->populated_size)
		a.bad++;
	/* Exact only when no thread is using the pool meanwhile. */
	if ((mp->flags & HPM_MEMPOOL_F_DEBUG) && a.free_cookies != avail)
		hpm_log(HPM_LOG_WARN, "mempool %s: %u free cookies, %u available (pool busy?)",
			mp->name, a.free_cookies, avail);
	return a.bad ? hpm_fail(EUCLEAN) : 0;
}
