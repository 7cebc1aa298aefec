// SPDX-License-Identifier: MIT
/*
 * Read-only walkers over another process's region (hpmemctl app): attach
 * like a secondary, but map PROT_READ anywhere, copy the config and check
 * the copy, and read everything else through a range-checked view.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <hpmem/inspect.h>
#include <hpmem/mempool.h>
#include <hpmem/ring.h>

#include "backend.h"
#include "config.h"
#include "inspect.h"
#include "internal.h"
#include "log.h"
#include "malloc_elem.h"
#include "malloc_heap.h"
#include "mempool.h"
#include "memseg.h"
#include "memzone.h"
#include "options.h"

struct hpm_inspect {
	struct hpm_be be;
	struct hpm_view v;
	void *map;		/* what to munmap: the view, maybe with slack */
	size_t map_len;
	/*
	 * A private copy of the config and memseg table, checked once: every
	 * bound the walkers use comes from here, never from the live config
	 * the primary could rewrite between a check and a use.
	 */
	struct hpm_config *cfg;
	/* The live config, for what changes: thread slots, heap counters. */
	const struct hpm_config *live;
};

/* Map [off, off + len) of the region read-only, at @addr when not NULL. */
static int map_ro(struct hpm_inspect *in, void *addr, size_t len, uint64_t off, void **out)
{
	/* NORESERVE: a dynamic hugetlbfs region's holes take no reservation. */
	int flags = MAP_SHARED | MAP_NORESERVE | (addr ? MAP_FIXED : 0);
	void *p = mmap(addr, len, PROT_READ, flags, in->be.fd, (off_t)off);

	if (p == MAP_FAILED)
		return -errno;
	*out = p;
	return 0;
}

static int attach(struct hpm_inspect *in, const char *name, enum hpm_backend backend)
{
	static const struct hpm_be_ops *const order[] = {
		&hpm_be_kmod_ops, &hpm_be_hugetlbfs_ops, &hpm_be_anon_ops,
	};
	int saved = hpm_log_level, ret = -ENOENT;

	for (size_t i = 0; i < HPM_ARRAY_SIZE(order); i++) {
		if (backend != HPM_BACKEND_AUTO && order[i]->type != backend)
			continue;
		hpm_be_reset(&in->be, order[i], NULL, name);
		/* Probing: a backend without the region is no news. */
		if (backend == HPM_BACKEND_AUTO)
			hpm_log_level = 0;
		ret = order[i]->attach(&in->be);
		hpm_log_level = saved;
		if (!ret)
			return 0;
		in->be.fd = -1;
	}
	if (backend == HPM_BACKEND_AUTO)
		hpm_log(HPM_LOG_ERR, "no region '%s' with a live primary on any backend "
			"(kmod, hugetlbfs, anon)", name);
	return ret;
}

/* Copy the header from the first page and check it like a secondary does. */
static int read_header(struct hpm_inspect *in, struct hpm_config *hdr)
{
	struct hpm_be *be = &in->be;
	void *p = NULL;
	int ret;

	if (be->size < be->page_sz) {
		hpm_log(HPM_LOG_ERR, "region '%s' is still being created", be->name);
		return -EAGAIN;
	}
	ret = map_ro(in, NULL, be->page_sz, 0, &p);
	if (ret) {
		hpm_log(HPM_LOG_ERR, "%s: cannot map region '%s': %s", be->ops->name, be->name,
			strerror(-ret));
		return ret;
	}
	/* The config fits in the first page: checked by hpm_config_check_header(). */
	memcpy(hdr, p, sizeof(*hdr));
	munmap(p, be->page_sz);
	return 0;
}

/* The checks a secondary makes, on a private copy; each logs its one line. */
static int check_copy(struct hpm_inspect *in, const struct hpm_config *c)
{
	int ret = hpm_config_check((struct hpm_config *)c);

	if (ret == -EAGAIN || (!ret && !atomic_load_explicit(&c->ready, memory_order_relaxed))) {
		hpm_log(HPM_LOG_ERR, "region '%s' holds no libhpmem configuration yet (its "
			"primary is still in hpm_init(), or none ever ran)", in->be.name);
		return -EAGAIN;
	}
	if (ret)
		return ret;
	return hpm_config_check_header(c, &in->be);
}

/*
 * A remapped region: page i is at base + i * page_sz in the application,
 * from region offset offsets[i]. Reserve a range and map the pages over it
 * in that order, so that the view is linear as the application's VAs are.
 */
static int map_remapped(struct hpm_inspect *in, const struct hpm_config *hdr)
{
	uint64_t psz = hdr->page_sz, n = hdr->nr_memsegs;
	size_t cfg_map = HPM_ALIGN_UP(hdr->cfg_len, psz);
	uint64_t *offs;
	char *resv, *at;
	void *p = NULL;
	int ret;

	offs = calloc(n, sizeof(*offs));
	if (!offs)
		return -ENOMEM;
	/* Config pages are never moved (hpm_config_check_offset() insists). */
	ret = map_ro(in, NULL, cfg_map, 0, &p);
	if (ret)
		goto out;
	/* Where the offsets are by @hdr's checked count, not by the live one. */
	memcpy(offs, (char *)p + offsetof(struct hpm_config, memsegs) +
	       n * sizeof(struct hpm_memseg), n * sizeof(*offs));
	munmap(p, cfg_map);
	for (uint64_t i = 0; i < n && !ret; i++)
		ret = hpm_config_check_offset(hdr, (uint32_t)i, offs[i]);
	if (ret)
		goto out;
	in->map_len = hdr->size + psz;
	resv = mmap(NULL, in->map_len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		    -1, 0);
	if (resv == MAP_FAILED) {
		ret = -errno;
		goto out;
	}
	in->map = resv;
	at = (char *)HPM_ALIGN_UP((uintptr_t)resv, psz);
	for (uint64_t i = 0, j; i < n && !ret; i = j) {
		for (j = i + 1; j < n && offs[j] == offs[i] + (j - i) * psz; j++)
			;
		ret = map_ro(in, at + i * psz, (j - i) * psz, offs[i], &p);
	}
	in->v.local = at;
out:
	free(offs);
	return ret;
}

static int map_region(struct hpm_inspect *in, const struct hpm_config *hdr)
{
	int ret;

	in->v.base = hdr->base;
	in->v.size = hdr->size;
	if (hdr->flags & HPM_CFG_F_REMAPPED) {
		ret = map_remapped(in, hdr);
	} else {
		void *p = NULL;

		ret = map_ro(in, NULL, hdr->size, 0, &p);
		in->map = p;
		in->map_len = hdr->size;
		in->v.local = p;
	}
	if (ret)
		hpm_log(HPM_LOG_ERR, "%s: cannot map region '%s' read-only: %s",
			in->be.ops->name, in->be.name, strerror(-ret));
	return ret;
}

static int snapshot(struct hpm_inspect *in, const struct hpm_config *hdr)
{
	const struct hpm_config *live = hpm_view_at(&in->v, hdr->base, hdr->cfg_len, 8);
	struct hpm_config *c;
	int ret;

	c = live ? malloc(hdr->cfg_len) : NULL;
	if (!c)
		return -ENOMEM;
	memcpy(c, live, hdr->cfg_len);
	in->cfg = c;
	in->live = live;
	ret = check_copy(in, c);
	if (ret)
		return ret;
	/* What the mapping was made from must still hold. */
	if (c->base != hdr->base || c->size != hdr->size || c->flags != hdr->flags ||
	    c->nr_memsegs != hdr->nr_memsegs) {
		hpm_log(HPM_LOG_ERR, "shared config: base, size or layout changed while "
			"attaching, refusing the region");
		return -EPROTO;
	}
	return hpm_config_check_tables_view(c, &in->v);
}

__hpm_export int hpm_inspect_open(const char *region, enum hpm_backend backend,
				  struct hpm_inspect **out)
{
	const char *name = region ? region : HPM_REGION_DEFAULT;
	struct hpm_inspect *in;
	struct hpm_config hdr;
	int ret;

	if (!out || (unsigned int)backend > HPM_BACKEND_ANON)
		return hpm_fail(EINVAL);
	if (hpm_region_name_check(name)) {
		hpm_log(HPM_LOG_ERR, "bad region name '%s'", name);
		return hpm_fail(EINVAL);
	}
	in = calloc(1, sizeof(*in));
	if (!in)
		return hpm_fail(ENOMEM);
	in->be.fd = -1;
	ret = attach(in, name, backend);
	if (!ret)
		ret = read_header(in, &hdr);
	if (!ret)
		ret = check_copy(in, &hdr);
	if (!ret)
		ret = map_region(in, &hdr);
	if (!ret)
		ret = snapshot(in, &hdr);
	if (ret) {
		hpm_inspect_close(in);
		return hpm_fail(-ret);
	}
	*out = in;
	return 0;
}

__hpm_export void hpm_inspect_close(struct hpm_inspect *in)
{
	if (!in)
		return;
	if (in->map)
		munmap(in->map, in->map_len);
	if (in->be.fd >= 0)
		in->be.ops->detach(&in->be);
	free(in->cfg);
	free(in);
}

static bool pid_alive(int pid, int tid)
{
	if (pid <= 0)
		return false;
	/* Signal 0: existence only; the application sees nothing. */
	if (tid > 0)
		return !(syscall(SYS_tgkill, pid, tid, 0) && errno == ESRCH);
	return !(kill(pid, 0) && errno == ESRCH);
}

__hpm_export int hpm_inspect_region(const struct hpm_inspect *in,
				    struct hpm_inspect_region *out)
{
	const struct hpm_config *c;

	if (!in || !out)
		return hpm_fail(EINVAL);
	c = in->cfg;
	memset(out, 0, sizeof(*out));
	memcpy(out->name, c->region, sizeof(out->name));
	out->name[sizeof(out->name) - 1] = '\0';
	out->backend = (enum hpm_backend)c->backend;
	out->backend_name = hpm_backend_name(out->backend);
	out->iova_mode = hpm_iova_mode_name((enum hpm_iova_mode)c->iova_mode);
	out->layout_version = c->layout_version;
	out->primary_pid = c->primary_pid;
	out->primary_alive = pid_alive(c->primary_pid, 0);
	out->base = c->base;
	out->size = c->size;
	out->page_sz = c->page_sz;
	out->nr_memsegs = c->nr_memsegs;
	out->socket_mask = c->socket_mask;
	out->max_memzones = c->max_memzones;
	return 0;
}

/* A field of the live config that the application changes: one relaxed load. */
#define LIVE(p)		__atomic_load_n(&(p), __ATOMIC_RELAXED)

/* Free blocks looked at per heap, at most: a cycle in a list ends here. */
#define HEAP_PEEK_MAX	65536

/*
 * The largest free block's usable bytes, as greatest_free() finds it under
 * the lock: every block of the highest non-empty bin is larger than all the
 * others, so walk that one list. Without the lock the list may change under
 * us, so each element must lie in the heap (@snap: its checked copy), carry
 * the heap's tag for its address and be free, or the walk ends there.
 */
static uint64_t heap_largest_free(const struct hpm_view *v, const struct hpm_heap *snap,
				  const struct hpm_heap *live)
{
	uint32_t flmap = LIVE(live->fl_bitmap), slmap;
	uint64_t tag = heap_tag(snap->socket), best = 0;
	unsigned int fl, sl;
	uintptr_t e;

	if (!flmap)
		return 0;
	fl = fls64(flmap);
	slmap = fl < HPM_HEAP_FL_COUNT ? LIVE(live->sl_bitmap[fl]) : 0;
	if (!slmap)
		return 0;	/* changed under us */
	sl = fls64(slmap);
	e = (uintptr_t)LIVE(live->free_list[fl][sl]);
	for (unsigned int n = 0; e && n < HEAP_PEEK_MAX; n++) {
		const struct hpm_elem *ev = hpm_view_at(v, e, ELEM_MIN, ELEM_HDR);
		const struct hpm_free_links *l;
		uint64_t info, size;

		if (!ev || e < snap->lo || e >= snap->hi)
			break;
		/* The links are in the payload, inside ELEM_MIN. */
		l = (const void *)(ev + 1);
		info = info_ld(ev);
		size = info & ELEM_SIZE_MASK;
		if (!info_tag_is(info, (const struct hpm_elem *)e, tag) || !(info & ELEM_F_FREE) ||
		    size > snap->hi - e)
			break;
		if (size > best)
			best = size;
		e = (uintptr_t)LIVE(l->next);
	}
	return best > ELEM_HDR + ELEM_TRAILER ? best - ELEM_HDR - ELEM_TRAILER : 0;
}

__hpm_export int hpm_inspect_heaps(const struct hpm_inspect *in,
				   int (*fn)(const struct hpm_inspect_heap *h, void *arg),
				   void *arg)
{
	if (!in || !fn)
		return hpm_fail(EINVAL);
	for (int n = 0; n < HPM_MAX_NODES; n++) {
		const struct hpm_heap *h = &in->live->heaps[n];
		struct hpm_inspect_heap st = { .socket = n };
		int rc;

		if (!(in->cfg->socket_mask & (1U << n)))
			continue;
		st.total = LIVE(h->total_bytes);
		st.free = LIVE(h->free_bytes);
		st.alloc = LIVE(h->alloc_bytes);
		st.free_count = LIVE(h->free_count);
		st.alloc_count = LIVE(h->alloc_count);
		st.runs = in->cfg->heaps[n].nr_runs;
		st.largest_free = heap_largest_free(&in->v, &in->cfg->heaps[n], h);
		st.lock_owner_pid = (int)(atomic_load_explicit(&h->lock.owner,
							       memory_order_relaxed) >> 32);
		if (in->cfg->flags & HPM_CFG_F_DYNAMIC) {
			const struct hpm_dyn_node *dn = &in->cfg->dyn.node[n];

			st.limit = dn->limit;
			st.reserved = dn->floor;
			st.present = atomic_load_explicit(&in->live->dyn.node[n].present,
							  memory_order_relaxed);
		} else {
			for (uint32_t i = 0; i < in->cfg->nr_memsegs; i++)
				if (in->cfg->memsegs[i].socket == n)
					st.present += in->cfg->memsegs[i].len;
			st.limit = st.reserved = st.present;
		}
		rc = fn(&st, arg);
		if (rc)
			return rc;
	}
	return 0;
}

struct zone_walk {
	int (*fn)(const struct hpm_memzone *mz, void *arg);
	void *arg;
};

static int zone_one(const struct hpm_memzone *mz, uintptr_t at, void *arg)
{
	struct zone_walk *w = arg;

	(void)at;
	return w->fn(mz, w->arg);
}

__hpm_export int hpm_inspect_memzones(const struct hpm_inspect *in,
				      int (*fn)(const struct hpm_memzone *mz, void *arg),
				      void *arg)
{
	struct zone_walk w = { fn, arg };

	if (!in || !fn)
		return hpm_fail(EINVAL);
	return hpm_memzone_table_peek(in->cfg, &in->v, zone_one, &w);
}

/* Copy a name that the region may not have terminated. */
static void name_copy(char *dst, size_t dlen, const char *src, size_t slen)
{
	size_t n = strnlen(src, slen);

	if (n >= dlen)
		n = dlen - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

/*
 * The ring at @addr as the rings view reports it, from a copy of its
 * header. false when it is not a live ring inside the region.
 */
static bool ring_peek(const struct hpm_inspect *in, uintptr_t addr, struct hpm_inspect_ring *out)
{
	const struct hpm_ring *view = hpm_view_at(&in->v, addr, sizeof(*view),
						  HPM_CACHE_LINE_SIZE);
	struct hpm_ring r;
	uint32_t cnt;

	if (!view)
		return false;
	memcpy(&r, view, sizeof(r));
	if (r.magic != HPM_RING_MAGIC || !HPM_IS_POW2(r.size) || r.capacity >= r.size)
		return false;
	memset(out, 0, sizeof(*out));
	name_copy(out->name, sizeof(out->name), r.name, sizeof(r.name));
	out->addr = addr;
	out->flags = r.flags;
	out->size = r.size;
	out->capacity = r.capacity;
	out->prod_head = atomic_load_explicit(&r.prod.head, memory_order_relaxed);
	out->prod_tail = atomic_load_explicit(&r.prod.tail, memory_order_relaxed);
	out->cons_head = atomic_load_explicit(&r.cons.head, memory_order_relaxed);
	out->cons_tail = atomic_load_explicit(&r.cons.tail, memory_order_relaxed);
	/* Unordered snapshots of two counters can look inconsistent. */
	cnt = out->prod_tail - out->cons_tail;
	out->count = cnt > r.capacity ? r.capacity : cnt;
	return true;
}

/*
 * The mempool whose memzone is @mz at @at, from a copy of its struct; its
 * caches are read through the view. false when it is not a live pool.
 */
static bool pool_peek(const struct hpm_inspect *in, const struct hpm_memzone *mz, uintptr_t at,
		      struct hpm_inspect_mempool *out, struct hpm_inspect_ring *ring)
{
	uintptr_t addr = (uintptr_t)mz->addr;
	const struct hpm_mempool *view = hpm_view_at(&in->v, addr, sizeof(*view),
						     HPM_CACHE_LINE_SIZE);
	const struct hpm_mempool_ops *ops;
	const char *caches;
	struct hpm_mempool mp;
	uint64_t avail;

	if (!view)
		return false;
	memcpy(&mp, view, sizeof(mp));
	/* The pool's own zone, not one of its chunks ("MP_<name>.<k>"). */
	if (mp.magic != HPM_MEMPOOL_MAGIC || (uintptr_t)mp.mz != at)
		return false;
	memset(out, 0, sizeof(*out));
	ring->name[0] = '\0';
	name_copy(out->name, sizeof(out->name), mp.name, sizeof(mp.name));
	ops = hpm_mempool_ops_get(mp.ops_id);
	snprintf(out->ops, sizeof(out->ops), "%s", ops ? ops->name : "?");
	out->addr = addr;
	out->size = mp.size;
	out->populated = mp.populated_size;
	out->cache_size = mp.cache_size;
	out->elt_size = mp.elt_size;
	out->total_elt_size = mp.total_elt_size;
	out->socket = mp.socket;
	out->flags = mp.flags;
	out->nb_chunks = mp.nb_mem_chunks;
	/* Ring drivers: their ring shows in both views. */
	if (ops && mp.ops_id != HPM_MEMPOOL_OPS_STACK && mp.pool_data &&
	    ring_peek(in, (uintptr_t)mp.pool_data, ring)) {
		out->in_driver = ring->count;
		name_copy(ring->pool, sizeof(ring->pool), mp.name, sizeof(mp.name));
	} else if (ops && mp.ops_id == HPM_MEMPOOL_OPS_STACK && mp.pool_data) {
		/* The stack driver's count() reads its header: len at 4. */
		const uint32_t *hdr = hpm_view_at(&in->v, (uintptr_t)mp.pool_data,
						  2 * sizeof(uint32_t), sizeof(uint32_t));

		if (hdr) {
			struct hpm_mempool local = mp;

			local.pool_data = (void *)hdr;
			out->in_driver = ops->count(&local);
		}
	}
	/*
	 * Caches are in the region, one per thread slot, cache_stride apart
	 * (hpm_mempool_cache_()); read only what that layout puts in range.
	 */
	caches = mp.cache_size && mp.cache_stride >= sizeof(struct hpm_mempool_cache) ?
		 hpm_view_at(&in->v, (uintptr_t)mp.caches,
			     (size_t)mp.cache_stride * HPM_MAX_THREADS,
			     HPM_CACHE_LINE_SIZE) : NULL;
	for (unsigned int i = 0; caches && i < HPM_MAX_THREADS; i++) {
		const struct hpm_mempool_cache *c =
			(const void *)(caches + (size_t)i * mp.cache_stride);
		uint32_t len = LIVE(c->len);

		out->cache[i] = len > mp.cache_size ? mp.cache_size : len;
		out->cached += out->cache[i];
		out->get_objs += LIVE(c->get_objs);
		out->put_objs += LIVE(c->put_objs);
	}
	avail = (uint64_t)out->in_driver + out->cached;
	out->avail = avail > mp.size ? mp.size : (uint32_t)avail;
	return true;
}

struct pool_walk {
	const struct hpm_inspect *in;
	int (*pool_fn)(const struct hpm_inspect_mempool *mp, void *arg);
	int (*ring_fn)(const struct hpm_inspect_ring *r, void *arg);
	void *arg;
	struct hpm_inspect_mempool mp;
};

static int pool_or_ring_one(const struct hpm_memzone *mz, uintptr_t at, void *arg)
{
	struct pool_walk *w = arg;
	struct hpm_inspect_ring r;

	if (w->pool_fn && !strncmp(mz->name, "MP_", 3)) {
		if (pool_peek(w->in, mz, at, &w->mp, &r))
			return w->pool_fn(&w->mp, w->arg);
	} else if (w->ring_fn && !strncmp(mz->name, "MP_", 3)) {
		if (pool_peek(w->in, mz, at, &w->mp, &r) && r.pool[0])
			return w->ring_fn(&r, w->arg);
	} else if (w->ring_fn && !strncmp(mz->name, "RG_", 3)) {
		if (ring_peek(w->in, (uintptr_t)mz->addr, &r))
			return w->ring_fn(&r, w->arg);
	}
	return 0;
}

__hpm_export int hpm_inspect_mempools(const struct hpm_inspect *in,
				      int (*fn)(const struct hpm_inspect_mempool *mp, void *arg),
				      void *arg)
{
	struct pool_walk w = { .in = in, .pool_fn = fn, .arg = arg };

	if (!in || !fn)
		return hpm_fail(EINVAL);
	return hpm_memzone_table_peek(in->cfg, &in->v, pool_or_ring_one, &w);
}

/* The same walk: pools' driver rings are found through their pools. */
__hpm_export int hpm_inspect_rings(const struct hpm_inspect *in,
				   int (*fn)(const struct hpm_inspect_ring *r, void *arg),
				   void *arg)
{
	struct pool_walk w = { .in = in, .ring_fn = fn, .arg = arg };

	if (!in || !fn)
		return hpm_fail(EINVAL);
	return hpm_memzone_table_peek(in->cfg, &in->v, pool_or_ring_one, &w);
}

/* The same runs as hpm_memseg_contig_walk(), from the checked copy. */
__hpm_export int hpm_inspect_memsegs(const struct hpm_inspect *in,
				     int (*fn)(const struct hpm_inspect_memseg_run *run, void *arg),
				     void *arg)
{
	const struct hpm_config *c;
	uint32_t i = 0;

	if (!in || !fn)
		return hpm_fail(EINVAL);
	c = in->cfg;
	while (i < c->nr_memsegs) {
		const struct hpm_memseg *first = &c->memsegs[i];
		struct hpm_inspect_memseg_run run = {
			.addr = (uintptr_t)first->addr,
			.iova = first->iova,
			.len = first->len,
			.page_sz = first->page_sz,
			.pages = 1,
			.config_pages = !!(first->flags & HPM_MEMSEG_F_CONFIG),
			.socket = first->socket,
		};
		int rc;

		/* Dynamic memory: holes are slots, not memory (as in the walks). */
		if (first->flags & HPM_MEMSEG_F_HOLE) {
			i++;
			continue;
		}
		for (i++; i < c->nr_memsegs &&
		     hpm_memseg_continues(&c->memsegs[i - 1], &c->memsegs[i]); i++) {
			run.len += c->memsegs[i].len;
			run.pages++;
			run.config_pages += !!(c->memsegs[i].flags & HPM_MEMSEG_F_CONFIG);
		}
		rc = fn(&run, arg);
		if (rc)
			return rc;
	}
	return 0;
}

__hpm_export int hpm_inspect_threads(const struct hpm_inspect *in,
				     int (*fn)(const struct hpm_inspect_thread *t, void *arg),
				     void *arg)
{
	if (!in || !fn)
		return hpm_fail(EINVAL);
	for (unsigned int i = 0; i < HPM_MAX_THREADS; i++) {
		uint64_t owner = atomic_load_explicit(&in->live->threads[i].owner,
						      memory_order_relaxed);
		struct hpm_inspect_thread t = {
			.slot = i,
			.pid = (int)(owner >> 32),
			.tid = (int)(uint32_t)owner,
		};
		int rc;

		if (!owner)
			continue;
		t.alive = pid_alive(t.pid, t.tid);
		rc = fn(&t, arg);
		if (rc)
			return rc;
	}
	return 0;
}
