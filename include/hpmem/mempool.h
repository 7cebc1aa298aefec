/* SPDX-License-Identifier: MIT */
/* Fixed-size object pools with per-thread caches, shared between processes. */
#ifndef HPMEM_MEMPOOL_H
#define HPMEM_MEMPOOL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <hpmem/common.h>
#include <hpmem/ring.h>
#include <hpmem/thread.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Cache rules (per pool, per registered thread; see docs/MEMPOOL.md):
 *  - a cache holds at most cache_size objects;
 *  - a get that the cache cannot serve refills it from the driver with
 *    what the request lacks plus cache_size / 2;
 *  - a put that would overflow it flushes it down to cache_size / 2 first;
 *  - requests of more than cache_size / 2 objects bypass the cache;
 * so a thread that alternates get and put of the same amount touches the
 * shared driver at most once. Unregistered threads (hpm_thread_index() ==
 * HPM_THREAD_NONE) always go to the driver. cache_size is at most
 * HPM_MEMPOOL_CACHE_MAX_SIZE and at most n / 1.5, so caches cannot strand
 * the whole pool.
 */
#define HPM_MEMPOOL_CACHE_MAX_SIZE	512

/* Pool name length including NUL; memzones are "MP_<name>" and "MP_<name>.<k>". */
#define HPM_MEMPOOL_NAMESIZE		(HPM_NAME_SIZE - 8)

/* Creation flags. */
#define HPM_MEMPOOL_F_NO_CACHE_ALIGN	0x0001u	/* objects 8-byte aligned only */
#define HPM_MEMPOOL_F_SP_PUT		0x0004u	/* default driver: single producer */
#define HPM_MEMPOOL_F_SC_GET		0x0008u	/* default driver: single consumer */
#define HPM_MEMPOOL_F_NO_IOVA_CONTIG	0x0020u	/* objects may straddle IOVA gaps */
#define HPM_MEMPOOL_F_ALL		(HPM_MEMPOOL_F_NO_CACHE_ALIGN | \
					 HPM_MEMPOOL_F_SP_PUT | \
					 HPM_MEMPOOL_F_SC_GET | \
					 HPM_MEMPOOL_F_NO_IOVA_CONTIG)
/*
 * Set by the library, never by the caller (DPDK's RTE_MEMPOOL_F_NON_IO): no
 * object of the pool can be given to a device. A pool starts with it; the
 * first memory added with a valid IOVA clears it (memory without one never
 * sets it back), except in a HPM_MEMPOOL_F_NO_IOVA_CONTIG pool, whose
 * objects may straddle IOVA gaps and which keeps it for life.
 */
#define HPM_MEMPOOL_F_NON_IO		0x0040u
/* Internal state bits in mp->flags. */
#define HPM_MEMPOOL_F_POPULATED		0x10000u
#define HPM_MEMPOOL_F_DEBUG		0x20000u	/* cookies in headers */

/*
 * Drivers, recorded in the pool by this fixed id (and by name, for dumps):
 * the id means the same in every process and every build of the library.
 */
enum hpm_mempool_ops_id {
	HPM_MEMPOOL_OPS_RING_MP_MC = 0,	/* "ring_mp_mc" (default) */
	HPM_MEMPOOL_OPS_RING_SP_SC,	/* "ring_sp_sc" */
	HPM_MEMPOOL_OPS_RING_MP_SC,	/* "ring_mp_sc" */
	HPM_MEMPOOL_OPS_RING_SP_MC,	/* "ring_sp_mc" */
	HPM_MEMPOOL_OPS_STACK,		/* "stack": LIFO under a spinlock */
	HPM_MEMPOOL_OPS_COUNT,
};

#define HPM_MEMPOOL_MAGIC		0x4d504f4fu	/* "MPOO" */
#define HPM_MEMPOOL_COOKIE_FREE		0xbadbadbadadd2e55ull
#define HPM_MEMPOOL_COOKIE_ALLOC	0xf2eef2eedadd2e55ull
#define HPM_MEMPOOL_TRAILER_COOKIE	0xadd2e55badbadbadull

struct hpm_mempool;

/* Before every object (debug builds check the cookie on get and put). */
struct hpm_mempool_objhdr {
	struct hpm_mempool *mp;
	uint64_t iova;		/* of the object; HPM_BAD_IOVA when unknown */
	uint64_t cookie;	/* HPM_MEMPOOL_COOKIE_FREE/ALLOC */
	uint64_t pad_;
};

/* A block of memory the pool carved objects from. */
struct hpm_mempool_memhdr {
	void *addr;
	uint64_t iova;		/* of addr; HPM_BAD_IOVA when not contiguous */
	size_t len;
	const void *mz;		/* memzone when the pool reserved it */
	/*
	 * Called at hpm_mempool_free(). A function pointer in shared memory:
	 * the process that frees the pool must map the same code (the
	 * primary, or a secondary running the same binary).
	 */
	void (*free_cb)(struct hpm_mempool_memhdr *mh, void *opaque);
	void *opaque;
	uint32_t nb_objs;	/* objects carved from this chunk */
	uint32_t per_obj_iova;	/* IOVAs looked up object by object */
};

#define HPM_MEMPOOL_MAX_CHUNKS		64

/* Per-thread cache; stats are written only by the owning thread. */
struct hpm_mempool_cache {
	uint32_t size;		/* cache_size of the pool */
	uint32_t half;		/* size / 2: refill/flush unit, bypass limit */
	uint32_t len;		/* objects in objs[] */
	uint32_t pad_;
	uint64_t get_objs;	/* objects handed out (cache or bypass) */
	uint64_t put_objs;
	uint64_t get_fails;
	void *objs[];		/* size entries; lives in the pool */
} __hpm_cache_aligned;

typedef void (hpm_mempool_obj_cb_t)(struct hpm_mempool *mp, void *opaque,
				    void *obj, unsigned int obj_idx);
typedef void (hpm_mempool_mem_cb_t)(struct hpm_mempool *mp, void *opaque,
				    struct hpm_mempool_memhdr *memhdr,
				    unsigned int mem_idx);
typedef void (hpm_mempool_memchunk_free_cb_t)(struct hpm_mempool_memhdr *mh,
					      void *opaque);

/* Lives in memzone "MP_<name>", followed by private data and the caches. */
struct hpm_mempool {
	/* Read by every fast path: keep on the first line. */
	uint32_t magic;
	uint32_t flags;
	uint32_t cache_size;
	uint32_t cache_stride;	/* bytes between caches */
	uint32_t ops_id;	/* enum hpm_mempool_ops_id */
	uint32_t total_elt_size; /* header + elt + trailer */
	void *pool_data;	/* the driver's (ring or stack) */
	struct hpm_mempool_cache *caches;	/* HPM_MAX_THREADS of them */
	uint32_t header_size;
	uint32_t trailer_size;

	/* Cold. */
	char name[HPM_MEMPOOL_NAMESIZE];
	char ops_name[HPM_NAME_SIZE];
	uint32_t size;		/* n */
	uint32_t elt_size;
	uint32_t private_data_size;
	uint32_t populated_size;
	int socket;
	uint32_t nb_mem_chunks;
	const void *mz;		/* of this struct */
	atomic_uint lock;	/* a private hpm_spinlock_t: populate, free */
	uint32_t mz_serial;	/* next ".k" suffix */
	_Atomic(uint64_t) uncached_get_fails;
	struct hpm_mempool_memhdr chunks[HPM_MEMPOOL_MAX_CHUNKS];
} __hpm_cache_aligned;

/*
 * Create a pool of n objects of elt_size bytes on socket, with per-thread
 * caches of cache_size (0: none) and private_data_size bytes after the
 * struct; obj_init (may be NULL) runs once per object. The driver follows
 * the flags (ring_{mp,sp}_{mc,sc}).
 * NULL + hpm_errno: EINVAL, ENAMETOOLONG, EEXIST, ENOMEM, ENOSPC.
 */
struct hpm_mempool *hpm_mempool_create(const char *name, unsigned int n,
				       unsigned int elt_size,
				       unsigned int cache_size,
				       unsigned int private_data_size,
				       hpm_mempool_obj_cb_t *obj_init,
				       void *obj_init_arg, int socket,
				       unsigned int flags);
/* The split form: a pool with no memory yet. */
struct hpm_mempool *hpm_mempool_create_empty(const char *name, unsigned int n,
					     unsigned int elt_size,
					     unsigned int cache_size,
					     unsigned int private_data_size,
					     int socket, unsigned int flags);
/* Choose the driver by name before populating: 0, -EINVAL, -EBUSY. */
int hpm_mempool_set_ops_byname(struct hpm_mempool *mp, const char *name,
			       void *pool_config);
/*
 * Give the pool objects from memory; each returns the number of objects
 * added (> 0) or -errno. populate_default reserves memzones until the pool
 * is full, several smaller ones when one big one cannot be had.
 * populate_iova: [vaddr, vaddr + len) is IOVA-contiguous from iova
 * (HPM_BAD_IOVA: unknown). populate_virt: per page of pg_sz, IOVAs from
 * hpm_virt2iova(). free_cb (may be NULL) runs at hpm_mempool_free().
 */
int hpm_mempool_populate_default(struct hpm_mempool *mp);
int hpm_mempool_populate_iova(struct hpm_mempool *mp, char *vaddr,
			      uint64_t iova, size_t len,
			      hpm_mempool_memchunk_free_cb_t *free_cb,
			      void *opaque);
int hpm_mempool_populate_virt(struct hpm_mempool *mp, char *addr, size_t len,
			      size_t pg_sz,
			      hpm_mempool_memchunk_free_cb_t *free_cb,
			      void *opaque);
/*
 * DPDK's rte_mempool_populate_anon(): objects for the whole pool from a
 * locked anonymous shared mapping (shared with children forked later, not
 * with processes that attach). Such memory has no IOVA: the pool stays
 * HPM_MEMPOOL_F_NON_IO. Objects added, or -EEXIST if the pool already has
 * memory, -EINVAL, -ENOMEM/-EAGAIN from mmap/mlock.
 */
int hpm_mempool_populate_anon(struct hpm_mempool *mp);
/* NULL + ENOENT when no such pool (searched in the shared memzone table). */
struct hpm_mempool *hpm_mempool_lookup(const char *name);
/* Release the pool and the memory it reserved; objects must be back. */
void hpm_mempool_free(struct hpm_mempool *mp);

/* Objects in the driver plus every cache, and n minus that. */
unsigned int hpm_mempool_avail_count(const struct hpm_mempool *mp);
unsigned int hpm_mempool_in_use_count(const struct hpm_mempool *mp);
static inline bool hpm_mempool_full(const struct hpm_mempool *mp)
{
	return hpm_mempool_avail_count(mp) == mp->size;
}
static inline bool hpm_mempool_empty(const struct hpm_mempool *mp)
{
	return hpm_mempool_avail_count(mp) == 0;
}

/*
 * Call fn for every pool of the region (rte_mempool_walk). fn may create
 * or free pools; each pool is visited at most once.
 */
void hpm_mempool_walk(void (*fn)(struct hpm_mempool *mp, void *arg),
		      void *arg);
/* hpm_mempool_dump() of every pool of the region. */
void hpm_mempool_list_dump(FILE *f);

/* The address range a pool's memory chunks span. */
struct hpm_mempool_mem_range_info {
	void *start;		/* lowest chunk address */
	size_t length;		/* to the end of the highest chunk */
	bool is_contiguous;	/* the chunks leave no hole in the range */
};
/* 0, or -EINVAL when mp or mem_range is NULL or the pool has no memory. */
int hpm_mempool_get_mem_range(const struct hpm_mempool *mp,
			      struct hpm_mempool_mem_range_info *mem_range);
/* Alignment of every object: 8 with NO_CACHE_ALIGN, else a cache line; 0 for NULL. */
size_t hpm_mempool_get_obj_alignment(const struct hpm_mempool *mp);

/*
 * Pool life-cycle events (rte_mempool_event_callback_register): READY when
 * a populate call makes the pool full, DESTROY at hpm_mempool_free(),
 * before the memory goes. Callbacks are per process, like the function
 * pointers they are, and run in the thread that caused the event, with no
 * library lock held: a callback may use the pool, and register or
 * unregister callbacks (itself included). One unregistered during an event
 * is not called after that; one registered during an event is called from
 * the next. register: 0, -EINVAL (NULL func), -EEXIST (same func and
 * user_data), -ENOMEM; unregister: 0 or -ENOENT.
 */
enum hpm_mempool_event {
	HPM_MEMPOOL_EVENT_READY = 0,
	HPM_MEMPOOL_EVENT_DESTROY = 1,
};
typedef void (hpm_mempool_event_callback)(enum hpm_mempool_event event,
					  struct hpm_mempool *mp,
					  void *user_data);
int hpm_mempool_event_callback_register(hpm_mempool_event_callback *func,
					void *user_data);
int hpm_mempool_event_callback_unregister(hpm_mempool_event_callback *func,
					  void *user_data);

/* Call fn for every object / memory chunk; returns how many. */
uint32_t hpm_mempool_obj_iter(struct hpm_mempool *mp,
			      hpm_mempool_obj_cb_t *fn, void *arg);
uint32_t hpm_mempool_mem_iter(struct hpm_mempool *mp,
			      hpm_mempool_mem_cb_t *fn, void *arg);

/*
 * Return the calling thread's cached objects to the driver. Also call it
 * before hpm_thread_unregister() if the objects should not wait for the
 * next owner of the thread index.
 */
void hpm_mempool_cache_flush(struct hpm_mempool *mp);

/*
 * User-owned caches (rte_mempool_cache_create and the generic get/put): a
 * cache of size objects (1..HPM_MEMPOOL_CACHE_MAX_SIZE) in process memory,
 * for a thread without a thread index or one that wants its own. The same
 * rules as the per-thread caches; one thread at a time may use it, with
 * any pool, but flush it before using it with another pool. NULL + EINVAL
 * or ENOMEM. socket is accepted for DPDK compatibility.
 */
struct hpm_mempool_cache *hpm_mempool_cache_create(uint32_t size, int socket);
/* Free a cache; flush it first, or its objects are lost to their pool. */
void hpm_mempool_cache_free(struct hpm_mempool_cache *cache);
/*
 * Return a cache's objects to mp (rte_mempool_cache_flush(cache, mp));
 * cache NULL: the calling thread's, as hpm_mempool_cache_flush().
 */
void hpm_mempool_cache_flush_user(struct hpm_mempool_cache *cache,
				  struct hpm_mempool *mp);
void hpm_mempool_dump(FILE *f, const struct hpm_mempool *mp);
/* Check the pool's invariants (and every cookie in debug pools): 0 or -EUCLEAN. */
int hpm_mempool_audit(struct hpm_mempool *mp);

struct hpm_mempool_stats {
	uint64_t get_objs, put_objs, get_fails;
};
/* Sum of every thread's counters (unregistered threads only count failures). */
int hpm_mempool_stats_get(const struct hpm_mempool *mp,
			  struct hpm_mempool_stats *st);
void hpm_mempool_stats_reset(struct hpm_mempool *mp);

static inline void *hpm_mempool_get_priv(struct hpm_mempool *mp)
{
	return (char *)mp + sizeof(*mp);
}

static inline struct hpm_mempool_objhdr *
hpm_mempool_get_header(const void *obj)
{
	return (struct hpm_mempool_objhdr *)((uintptr_t)obj -
					     sizeof(struct hpm_mempool_objhdr));
}

static inline struct hpm_mempool *hpm_mempool_from_obj(const void *obj)
{
	return hpm_mempool_get_header(obj)->mp;
}

static inline uint64_t hpm_mempool_virt2iova(const void *obj)
{
	return hpm_mempool_get_header(obj)->iova;
}

/* ---- out-of-line pieces of the fast paths (library internal) ---- */
int hpm_mempool_ops_enqueue_(struct hpm_mempool *mp, void *const *objs,
			     unsigned int n);
int hpm_mempool_ops_dequeue_(struct hpm_mempool *mp, void **objs,
			     unsigned int n);
int hpm_mempool_get_refill_(struct hpm_mempool *mp,
			    struct hpm_mempool_cache *c, void **objs,
			    unsigned int n);
void hpm_mempool_put_flush_(struct hpm_mempool *mp,
			    struct hpm_mempool_cache *c, void *const *objs,
			    unsigned int n);
void hpm_mempool_debug_check_(struct hpm_mempool *mp, void *const *objs,
			      unsigned int n, bool put);

#define HPM_MEMPOOL_INLINE_	static inline __attribute__((always_inline))

HPM_MEMPOOL_INLINE_ struct hpm_mempool_cache *
hpm_mempool_cache_(const struct hpm_mempool *mp, unsigned int idx)
{
	return (struct hpm_mempool_cache *)((char *)mp->caches +
					    (size_t)idx * mp->cache_stride);
}

/*
 * The default ring drivers are inlined here (about 20 instructions for a
 * bulk of 32); other drivers cost one call more.
 */
HPM_MEMPOOL_INLINE_ int hpm_mempool_drv_enqueue_(struct hpm_mempool *mp,
						 void *const *objs,
						 unsigned int n)
{
	if (__builtin_expect(mp->ops_id == HPM_MEMPOOL_OPS_RING_MP_MC, 1)) {
		/* The ring holds all n objects: this never fails. */
		hpm_ring_mp_enqueue_bulk((struct hpm_ring *)mp->pool_data,
					 objs, n, NULL);
		return 0;
	}
	return hpm_mempool_ops_enqueue_(mp, objs, n);
}

HPM_MEMPOOL_INLINE_ int hpm_mempool_drv_dequeue_(struct hpm_mempool *mp,
						 void **objs, unsigned int n)
{
	if (__builtin_expect(mp->ops_id == HPM_MEMPOOL_OPS_RING_MP_MC, 1))
		return hpm_ring_mc_dequeue_bulk((struct hpm_ring *)mp->pool_data,
						objs, n, NULL) == n ? 0 : -ENOENT;
	return hpm_mempool_ops_dequeue_(mp, objs, n);
}

/* Get through cache c (not NULL): the body of every cached get. */
HPM_MEMPOOL_INLINE_ int hpm_mempool_cache_get_(struct hpm_mempool *mp,
					       struct hpm_mempool_cache *c,
					       void **objs, unsigned int n)
{
	int rc;

	if (__builtin_expect(n <= c->len && n <= c->half, 1)) {
		/* The top of the stack: the most recently put. */
		c->len -= n;
		hpm_ring_copy_ptrs_(objs, &c->objs[c->len], n);
		c->get_objs += n;
#ifdef HPM_DEBUG
		hpm_mempool_debug_check_(mp, objs, n, false);
#endif
		return 0;
	}
	if (c->size)
		rc = hpm_mempool_get_refill_(mp, c, objs, n);
	else if ((rc = hpm_mempool_drv_dequeue_(mp, objs, n)) == 0)
		c->get_objs += n;	/* pool without caches */
	else
		c->get_fails++;
#ifdef HPM_DEBUG
	if (rc == 0)
		hpm_mempool_debug_check_(mp, objs, n, false);
#endif
	return rc;
}

/* Get with no cache at all: straight from the driver. */
HPM_MEMPOOL_INLINE_ int hpm_mempool_nocache_get_(struct hpm_mempool *mp,
						 void **objs, unsigned int n)
{
	int rc = hpm_mempool_drv_dequeue_(mp, objs, n);

	if (__builtin_expect(rc, 0))
		atomic_fetch_add_explicit(&mp->uncached_get_fails, 1,
					  memory_order_relaxed);
#ifdef HPM_DEBUG
	if (rc == 0)
		hpm_mempool_debug_check_(mp, objs, n, false);
#endif
	return rc;
}

/*
 * Get n objects, all or none: 0, or -ENOENT when the pool (driver plus
 * the caller's cache) has fewer. Cost when the cache can serve it: a TLS
 * load, a compare and a copy of n pointers.
 */
HPM_MEMPOOL_INLINE_ int hpm_mempool_get_bulk(struct hpm_mempool *mp,
					     void **objs, unsigned int n)
{
	unsigned int idx = hpm_thread_index();

	if (__builtin_expect(idx < HPM_MAX_THREADS, 1))
		return hpm_mempool_cache_get_(mp, hpm_mempool_cache_(mp, idx),
					      objs, n);
	return hpm_mempool_nocache_get_(mp, objs, n);
}

/*
 * Put through cache c (not NULL): the body of every cached put. false when
 * the pool has no caches: the caller's one driver call takes the objects.
 */
HPM_MEMPOOL_INLINE_ bool hpm_mempool_cache_put_(struct hpm_mempool *mp,
						struct hpm_mempool_cache *c,
						void *const *objs,
						unsigned int n)
{
	if (__builtin_expect(c->len + n <= c->size && n <= c->half, 1)) {
		hpm_ring_copy_ptrs_(&c->objs[c->len], objs, n);
		c->len += n;
		c->put_objs += n;
		return true;
	}
	if (c->size) {
		hpm_mempool_put_flush_(mp, c, objs, n);
		return true;
	}
	c->put_objs += n;	/* pool without caches */
	return false;
}

/* Return n objects that came from this pool. */
HPM_MEMPOOL_INLINE_ void hpm_mempool_put_bulk(struct hpm_mempool *mp,
					      void *const *objs,
					      unsigned int n)
{
	unsigned int idx = hpm_thread_index();

#ifdef HPM_DEBUG
	hpm_mempool_debug_check_(mp, objs, n, true);
#endif
	if (__builtin_expect(idx < HPM_MAX_THREADS, 1) &&
	    hpm_mempool_cache_put_(mp, hpm_mempool_cache_(mp, idx), objs, n))
		return;
	hpm_mempool_drv_enqueue_(mp, objs, n);
}

/*
 * rte_mempool_generic_get/put: through the given cache (a user cache, or
 * hpm_mempool_default_cache()), or none when cache is NULL.
 */
HPM_MEMPOOL_INLINE_ int hpm_mempool_generic_get(struct hpm_mempool *mp,
						void **objs, unsigned int n,
						struct hpm_mempool_cache *cache)
{
	if (cache)
		return hpm_mempool_cache_get_(mp, cache, objs, n);
	return hpm_mempool_nocache_get_(mp, objs, n);
}

HPM_MEMPOOL_INLINE_ void hpm_mempool_generic_put(struct hpm_mempool *mp,
						 void *const *objs,
						 unsigned int n,
						 struct hpm_mempool_cache *cache)
{
#ifdef HPM_DEBUG
	hpm_mempool_debug_check_(mp, objs, n, true);
#endif
	if (cache && hpm_mempool_cache_put_(mp, cache, objs, n))
		return;
	hpm_mempool_drv_enqueue_(mp, objs, n);
}

/* The calling thread's cache of mp; NULL without a thread index or caches. */
static inline struct hpm_mempool_cache *
hpm_mempool_default_cache(struct hpm_mempool *mp)
{
	unsigned int idx = hpm_thread_index();

	/* as DPDK: a pool created without caches has no default one */
	if (idx >= HPM_MAX_THREADS || mp->cache_size == 0)
		return NULL;
	return hpm_mempool_cache_(mp, idx);
}

HPM_MEMPOOL_INLINE_ int hpm_mempool_get(struct hpm_mempool *mp, void **obj)
{
	return hpm_mempool_get_bulk(mp, obj, 1);
}

HPM_MEMPOOL_INLINE_ void hpm_mempool_put(struct hpm_mempool *mp, void *obj)
{
	hpm_mempool_put_bulk(mp, &obj, 1);
}

#ifdef __cplusplus
}
#endif

#endif /* HPMEM_MEMPOOL_H */
