// SPDX-License-Identifier: MIT
/*
 * Dynamic memory: a region reserved for every node's limit, mapped whole
 * at one address in every process, whose pages come and go under the
 * heaps (docs/CORE.md, "Dynamic memory").
 */
#include <pthread.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>

#include <hpmem/mem_event.h>
#include <hpmem/memseg.h>

#include "backend.h"
#include "config.h"
#include "dynmem.h"
#include "internal.h"
#include "malloc_heap.h"
#include "memseg.h"
#include "robust_lock.h"

/* This process's handle on the region (init.c's), for grow and release. */
static struct hpm_be *dyn_be;

/*
 * No --socket-limit: each node may grow to what it can supply at start
 * (pages an administrator adds later need a restart, or a limit), but not
 * past DPDK's default reservation per socket and page size, and all nodes
 * together within what one region of the backend may span (be->max_size,
 * less room for the config pages), shared out in proportion.
 */
static void default_limits(struct hpm_be *be)
{
	uint64_t sum = 0, floors = 0, room;

	for (int n = 0; n < HPM_MAX_NODES; n++) {
		uint64_t s = be->ops->supply(be, n);

		be->limit[n] = s < HPM_DYN_DEFAULT_LIMIT ? s : HPM_DYN_DEFAULT_LIMIT;
		if (be->limit[n] < be->floor[n])
			be->limit[n] = be->floor[n];
		sum += be->limit[n];
		floors += be->floor[n];
	}
	room = be->max_size > 64 * be->page_sz ? be->max_size - 64 * be->page_sz : 0;
	for (int n = 0; be->max_size && sum > room && room > floors && n < HPM_MAX_NODES; n++) {
		unsigned __int128 g = (unsigned __int128)(be->limit[n] - be->floor[n]) *
				      (room - floors) / (sum - floors);

		be->limit[n] = be->floor[n] + ((uint64_t)g & ~(be->page_sz - 1));
	}
	for (int n = 0; n < HPM_MAX_NODES; n++)
		if (be->limit[n] > be->floor[n])
			hpm_log(HPM_LOG_INFO, "%s: dynamic memory: node %d may grow to %llu MiB "
				"(what it has; --socket-limit sets it, --legacy-mem keeps "
				"--socket-mem fixed)", be->ops->name, n,
				(unsigned long long)(be->limit[n] >> 20));
}

int hpm_dyn_plan(struct hpm_be *be)
{
	uint64_t psz = be->page_sz, pages = 0, cfg_pages = 1, off;
	int first = -1;

	if (be->limit_default)
		default_limits(be);
	for (int n = 0; n < HPM_MAX_NODES; n++) {
		uint64_t lim = be->limit[n] > be->floor[n] ? be->limit[n] : be->floor[n];

		be->floor[n] = HPM_ALIGN_UP(be->floor[n], psz);
		be->slice_len[n] = HPM_ALIGN_UP(lim, psz);
		pages += be->slice_len[n] / psz;
		if (be->slice_len[n] && first < 0)
			first = n;
	}
	if (first < 0)
		return -EINVAL;
	/* The config's size depends on the page count, which includes its own pages. */
	for (;;) {
		uint64_t need = HPM_ALIGN_UP((uint64_t)hpm_config_len((uint32_t)(cfg_pages + pages)),
					     psz) / psz;

		if (cfg_pages + pages > UINT32_MAX)
			return -EINVAL;
		if (need <= cfg_pages)
			break;
		cfg_pages = need;
	}
	/* The config's pages go with a reserve, where pages were asked for. */
	be->cfg_node = first;
	for (int n = HPM_MAX_NODES - 1; n >= 0; n--)
		if (be->floor[n])
			be->cfg_node = n;
	be->cfg_bytes = cfg_pages * psz;
	off = be->cfg_bytes;
	for (int n = 0; n < HPM_MAX_NODES; n++) {
		be->slice_off[n] = off;
		off += be->slice_len[n];
		be->node_bytes[n] = be->floor[n] + (n == be->cfg_node ? be->cfg_bytes : 0);
	}
	be->size = off;
	return 0;
}

/* Node whose slice holds region offset @off; -1 for the config pages. */
static int slice_of(const struct hpm_be *be, uint64_t off)
{
	for (int n = 0; n < HPM_MAX_NODES; n++)
		if (off >= be->slice_off[n] && off - be->slice_off[n] < be->slice_len[n])
			return n;
	return -1;
}

int hpm_dyn_segs(struct hpm_be *be, void *base, struct hpm_be_seg *segs, size_t n)
{
	if (n != be->size / be->page_sz)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		uint64_t off = (uint64_t)i * be->page_sz;
		int node = off < be->cfg_bytes ? be->cfg_node : slice_of(be, off);
		int ret;

		if (node < 0)
			return -EINVAL;
		if (off >= be->cfg_bytes && off - be->slice_off[node] >= be->floor[node]) {
			segs[i] = (struct hpm_be_seg){ off, HPM_BAD_IOVA, node, true };
			continue;
		}
		/* Offset 0 comes first: it decides be->addrs for the others. */
		ret = be->ops->page_info(be, (char *)base + off, off, node, &segs[i]);
		if (ret)
			return ret;
	}
	return 0;
}

void hpm_dyn_config_init(struct hpm_config *c, const struct hpm_be *be)
{
	struct hpm_dyn *d = &c->dyn;

	d->enabled = 1;
	for (int n = 0; n < HPM_MAX_NODES; n++) {
		struct hpm_dyn_node *dn = &d->node[n];

		hpm_robust_lock_init(&dn->lock);
		dn->slice_off = be->slice_off[n];
		dn->limit = be->slice_len[n];
		dn->floor = be->floor[n];
		atomic_init(&dn->present, be->floor[n]);
	}
}

/* ---- this process's view, for events (see mem_event.c) ---- */

static pthread_mutex_t view_lock = PTHREAD_MUTEX_INITIALIZER;
/* seen[i]: this process has reported page i present (or found it so at init). */
static uint8_t *seen;
static uint32_t seen_n;

static bool page_present(const struct hpm_memseg *ms)
{
	/* Pairs with the release stores in set_present()/set_hole(). */
	return !(__atomic_load_n(&ms->flags, __ATOMIC_ACQUIRE) & HPM_MEMSEG_F_HOLE);
}

int hpm_dyn_process_init(struct hpm_config *c, struct hpm_be *be)
{
	if (!(c->flags & HPM_CFG_F_DYNAMIC))
		return 0;
	pthread_mutex_lock(&view_lock);
	free(seen);
	seen = calloc(c->nr_memsegs, 1);
	if (!seen) {
		pthread_mutex_unlock(&view_lock);
		return -ENOMEM;
	}
	seen_n = c->nr_memsegs;
	for (uint32_t i = 0; i < c->nr_memsegs; i++)
		seen[i] = page_present(&c->memsegs[i]);
	pthread_mutex_unlock(&view_lock);
	dyn_be = be;
	hpm_heap_set_grow_hook(hpm_dyn_grow, NULL);
	hpm_heap_set_trim_hook(hpm_dyn_trim, (size_t)c->page_sz, NULL);
	return 0;
}

void hpm_dyn_process_fini(void)
{
	hpm_heap_set_grow_hook(NULL, NULL);
	hpm_heap_set_trim_hook(NULL, 0, NULL);
	pthread_mutex_lock(&view_lock);
	free(seen);
	seen = NULL;
	seen_n = 0;
	pthread_mutex_unlock(&view_lock);
	dyn_be = NULL;
}

/*
 * Report runs of pages whose presence differs from what this process
 * last saw. Caller holds view_lock. Returns the number of events.
 */
static int view_sync(struct hpm_config *c)
{
	uint32_t i = 0;
	int events = 0;

	while (i < seen_n) {
		bool now = page_present(&c->memsegs[i]);
		uint32_t j = i + 1;

		if (now == (bool)seen[i]) {
			i++;
			continue;
		}
		while (j < seen_n && page_present(&c->memsegs[j]) == now && seen[j] != now &&
		       c->memsegs[j].socket == c->memsegs[i].socket)
			j++;
		memset(seen + i, now, j - i);
		hpm_mem_event_notify(now ? HPM_MEM_EVENT_ALLOC : HPM_MEM_EVENT_FREE,
				     c->memsegs[i].addr, (size_t)(j - i) * c->page_sz);
		events++;
		i = j;
	}
	return events;
}

static uint64_t seen_seq;

__hpm_export int hpm_mem_event_sync(void)
{
	struct hpm_config *c = hpm_cfg;
	uint64_t seq;
	int ret;

	if (!c)
		return hpm_fail(ENODEV);
	if (!c->dyn.enabled)
		return 0;
	/* Pairs with the release increment after each change of the table. */
	seq = atomic_load_explicit(&c->dyn.seq, memory_order_acquire);
	if (__atomic_load_n(&seen_seq, __ATOMIC_RELAXED) == seq)
		return 0;
	pthread_mutex_lock(&view_lock);
	ret = seen ? view_sync(c) : 0;
	__atomic_store_n(&seen_seq, seq, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&view_lock);
	return ret;
}

/* ---- growing and shrinking, under the node's grow lock ---- */

/*
 * Set while this thread is inside grow or trim. The heap calls we make
 * under the grow lock may run the trim hook again (heap_unlock() reports
 * a free that merged whole pages, e.g. when remove flushes our thread
 * cache): that nested call must not wait for the lock this thread holds.
 * It returns; those pages are looked at by the next free.
 */
static __thread bool in_dyn;

static void grow_lock(struct hpm_config *c, struct hpm_dyn_node *dn, int node)
{
	if (hpm_robust_lock(&dn->lock) == 0)
		return;
	/*
	 * The last holder died inside a grow or a release: pages it backed
	 * but never published in the memseg table would stay allocated
	 * until the region goes. Holes hold no pages by definition: punch
	 * every one of the slice again (a no-op where nothing is there).
	 */
	for (uint64_t off = 0; off < dn->limit; off += c->page_sz) {
		const struct hpm_memseg *ms = &c->memsegs[(dn->slice_off + off) >> c->page_shift];

		if (!page_present(ms))
			dyn_be->ops->release(dyn_be, dn->slice_off + off, c->page_sz);
	}
	hpm_log(HPM_LOG_WARN, "node %d: took over the grow lock of a dead process", node);
}

static void grow_unlock(struct hpm_dyn_node *dn)
{
	hpm_robust_unlock(&dn->lock);
}

static uint64_t iova_of(const struct hpm_config *c, uint64_t off, uint64_t pa)
{
	if (c->iova_mode == HPM_IOVA_PA)
		return pa;
	if (c->iova_mode == HPM_IOVA_COMPACT)
		return HPM_IOVA_COMPACT_BASE + off;
	return c->base + off;
}

/*
 * Publish pages [i, i + k) as present / absent. The IOVA is written
 * before the flag (release), so a lockless reader that sees the page
 * present sees its IOVA; a page is made a hole before its IOVA is
 * cleared, and only once no heap block lies on it.
 */
static void set_present(struct hpm_config *c, uint32_t i, uint32_t k, const uint64_t *pa)
{
	for (uint32_t p = 0; p < k; p++) {
		struct hpm_memseg *ms = &c->memsegs[i + p];

		__atomic_store_n(&ms->iova, iova_of(c, (uint64_t)(i + p) << c->page_shift, pa[p]),
				 __ATOMIC_RELAXED);
		__atomic_store_n(&ms->flags, 0, __ATOMIC_RELEASE);
	}
}

static void set_hole(struct hpm_config *c, uint32_t i, uint32_t k)
{
	for (uint32_t p = 0; p < k; p++) {
		struct hpm_memseg *ms = &c->memsegs[i + p];

		__atomic_store_n(&ms->flags, HPM_MEMSEG_F_HOLE, __ATOMIC_RELEASE);
		__atomic_store_n(&ms->iova, HPM_BAD_IOVA, __ATOMIC_RELAXED);
	}
}

/*
 * After a change of the table: tell this process's callbacks (of it and
 * of whatever other processes changed first, in table order), and the
 * other processes through seq, which they compare at their next sync.
 */
static void announce(struct hpm_config *c)
{
	atomic_fetch_add_explicit(&c->dyn.seq, 1, memory_order_release);
	pthread_mutex_lock(&view_lock);
	if (seen)
		view_sync(c);
	pthread_mutex_unlock(&view_lock);
}

/*
 * The free room a heap keeps, and grows by on top of a request: an eighth
 * of what is in use, at least half a page. Growth and release use the
 * same measure, so they never undo each other: a loop that allocates and
 * frees across a page boundary finds its page still there, and a heap
 * just big enough for its blocks does not spend its time searching for
 * fits (TLSF near exhaustion scans). An emptied heap keeps half a page of
 * room, i.e. gives every whole page above the floor back.
 */
static uint64_t dyn_spare(const struct hpm_config *c, uint64_t alloc)
{
	uint64_t in_use = alloc / 8;

	return in_use > c->page_sz / 2 ? in_use : c->page_sz / 2;
}

/* First run of @k holes in @dn's slice: its memseg index, or -1. */
static int64_t find_holes(struct hpm_config *c, struct hpm_dyn_node *dn, uint32_t k)
{
	uint32_t first = (uint32_t)(dn->slice_off >> c->page_shift);
	uint32_t end = first + (uint32_t)(dn->limit >> c->page_shift), run = 0;

	for (uint32_t i = first; i < end; i++) {
		run = page_present(&c->memsegs[i]) ? 0 : run + 1;
		if (run == k)
			return (int64_t)i + 1 - k;
	}
	return -1;
}

/* Back and check pages [i, i + k); on failure nothing stays backed. */
static int back_pages(struct hpm_config *c, int node, uint32_t i, uint32_t k,
		      uint64_t *pa, bool contig)
{
	uint64_t off = (uint64_t)i << c->page_shift, len = (uint64_t)k << c->page_shift;
	int ret;

	ret = dyn_be->ops->grow(dyn_be, off, len, node);
	for (uint32_t p = 0; p < k && !ret; p++) {
		struct hpm_be_seg seg;
		uint64_t o = off + ((uint64_t)p << c->page_shift);

		ret = dyn_be->ops->page_info(dyn_be, (char *)(uintptr_t)(c->base + o), o, node,
					     &seg);
		pa[p] = seg.iova;
		if (!ret && c->iova_mode == HPM_IOVA_PA && seg.iova == HPM_BAD_IOVA)
			ret = -EIO;
		/* PA mode: the pages must be physically in a row for one block. */
		if (!ret && contig && p && c->iova_mode == HPM_IOVA_PA &&
		    pa[p] != pa[p - 1] + c->page_sz)
			ret = -ENOMEM;
	}
	if (ret)
		dyn_be->ops->release(dyn_be, off, len);
	return ret;
}

int hpm_dyn_grow(struct hpm_heap *h, size_t size, size_t align, size_t bound,
		 unsigned int flags, void *arg)
{
	struct hpm_config *c = hpm_cfg;
	struct hpm_dyn_node *dn;
	uint64_t need, spare, alloc, free_b, *pa;
	uint32_t k, want;
	int64_t i;
	int node, ret;

	(void)arg;
	if (!c || !c->dyn.enabled || !dyn_be || !h)
		return -ENOMEM;
	node = h->socket;
	if (node < 0 || node >= HPM_MAX_NODES)
		return -ENOMEM;
	dn = &c->dyn.node[node];
	if (!dn->limit)
		return -ENOMEM;
	/*
	 * Room for the block in fresh pages of their own: the alignment's
	 * front gap, element headers and a run's sentinel. @bound only
	 * narrows where the block goes, never beyond one more alignment.
	 */
	need = (uint64_t)size + (align > 64 ? align : 64) + 256 + (bound ? bound : 0);
	if (need < size || need > dn->limit)
		return -ENOMEM;
	k = (uint32_t)(HPM_ALIGN_UP(need, c->page_sz) >> c->page_shift);
	/* And the spare room, when the slice has it (counters read under the lock). */
	hpm_heap_bytes(h, &alloc, &free_b);
	spare = dyn_spare(c, alloc);
	want = (uint32_t)(HPM_ALIGN_UP(need + (spare > c->page_sz / 2 ? spare : 0),
				       c->page_sz) >> c->page_shift);
	if (in_dyn)
		return -ENOMEM;
	pa = calloc(want > k ? want : k, sizeof(*pa));
	if (!pa)
		return -ENOMEM;
	in_dyn = true;
	grow_lock(c, dn, node);
	hpm_mem_event_sync();
	i = want > k ? find_holes(c, dn, want) : -1;
	ret = -ENOMEM;
	/* The spare is a wish: with fewer pages left, the request alone still gets them. */
	if (i >= 0)
		ret = back_pages(c, node, (uint32_t)i, want, pa, flags & HPM_HEAP_F_CONTIG);
	if (ret == 0) {
		k = want;
	} else {
		i = find_holes(c, dn, k);
		if (i < 0)
			goto out;
		ret = back_pages(c, node, (uint32_t)i, k, pa, flags & HPM_HEAP_F_CONTIG);
		if (ret) {
			ret = -ENOMEM;
			goto out;
		}
	}
	set_present(c, (uint32_t)i, k, pa);
	atomic_fetch_add_explicit(&dn->present, (uint64_t)k << c->page_shift,
				  memory_order_relaxed);
	atomic_fetch_add_explicit(&dn->grown, k, memory_order_relaxed);
	/* ALLOC callbacks run here, before the heap can hand out a byte of it. */
	announce(c);
	ret = hpm_heap_add_memory(h, c->memsegs[i].addr, (size_t)k << c->page_shift);
	if (ret) {
		set_hole(c, (uint32_t)i, k);
		atomic_fetch_sub_explicit(&dn->present, (uint64_t)k << c->page_shift,
					  memory_order_relaxed);
		announce(c);
		dyn_be->ops->release(dyn_be, (uint64_t)i << c->page_shift,
				     (uint64_t)k << c->page_shift);
		ret = -ENOMEM;
	}
out:
	grow_unlock(dn);
	in_dyn = false;
	free(pa);
	return ret;
}

/*
 * Give back the whole pages of free range [@va, @va + @len) of @h that the
 * floor and the hysteresis allow. Grow lock held. Returns the number of
 * pages given back, or -errno from the heap (-EBUSY: allocated meanwhile;
 * -ENOSPC: a split needs a run slot the heap does not have).
 */
static int trim_range(struct hpm_config *c, struct hpm_heap *h, struct hpm_dyn_node *dn,
		      uintptr_t va, size_t len)
{
	uintptr_t a = HPM_ALIGN_UP(va, c->page_sz);
	uintptr_t b = (va + len) & ~(uintptr_t)(c->page_sz - 1);
	uintptr_t keep = c->base + dn->slice_off + dn->floor;
	uint64_t *pa;
	uint32_t i, k;
	int ret;

	/* The floor stays; so do pages outside the node's slice (config). */
	if (a < keep)
		a = keep;
	if (b > c->base + dn->slice_off + dn->limit)
		b = c->base + dn->slice_off + dn->limit;
	/*
	 * Hysteresis: free room the heap keeps (dyn_spare()). Pages that
	 * would leave less than that free elsewhere stay, lowest first
	 * (growth refills from the bottom of the slice).
	 */
	if (a < b) {
		uint64_t spare, other, alloc, free_b;

		hpm_heap_bytes(h, &alloc, &free_b);
		/* An emptied heap keeps nothing: its node's pages all go back. */
		spare = alloc ? dyn_spare(c, alloc) : 0;
		other = free_b > (uint64_t)(b - a) ? free_b - (b - a) : 0;

		if (other < spare)
			a += HPM_ALIGN_UP(spare - other, c->page_sz);
	}
	if (a >= b)
		return 0;
	i = (uint32_t)((a - c->base) >> c->page_shift);
	k = (uint32_t)((b - a) >> c->page_shift);
	pa = calloc(k, sizeof(*pa));
	if (!pa)
		return -ENOMEM;
	ret = hpm_heap_remove_memory(h, (void *)a, b - a);
	if (ret) {
		hpm_log(HPM_LOG_DEBUG, "node %d: pages %p+%zu KiB stay: %s", h->socket,
			(void *)a, (size_t)(b - a) >> 10, strerror(-ret));
		free(pa);
		return ret;
	}
	for (uint32_t p = 0; p < k; p++)
		pa[p] = c->memsegs[i + p].iova;
	set_hole(c, i, k);
	atomic_fetch_sub_explicit(&dn->present, (uint64_t)k << c->page_shift,
				  memory_order_relaxed);
	/* FREE callbacks (VFIO unmaps here) before the pages go back. */
	announce(c);
	ret = dyn_be->ops->release(dyn_be, (uint64_t)i << c->page_shift,
				   (uint64_t)k << c->page_shift);
	if (ret) {
		/* Still pinned (kmod: EBUSY): the pages stay, in the heap again. */
		hpm_log(HPM_LOG_INFO, "node %d: cannot give back %u pages: %s", h->socket, k,
			strerror(-ret));
		set_present(c, i, k, pa);
		atomic_fetch_add_explicit(&dn->present, (uint64_t)k << c->page_shift,
					  memory_order_relaxed);
		announce(c);
		hpm_heap_add_memory(h, (void *)a, b - a);
		free(pa);
		return 0;
	}
	free(pa);
	atomic_fetch_add_explicit(&dn->released, k, memory_order_relaxed);
	return (int)k;
}

/* A trim report arrived while this thread was inside grow or trim. */
static __thread bool trim_missed;

void hpm_dyn_trim(struct hpm_heap *h, void *va, size_t len, void *arg)
{
	struct hpm_config *c = hpm_cfg;
	struct hpm_dyn_node *dn;
	int ret;

	(void)arg;
	if (!c || !c->dyn.enabled || !dyn_be || !h || h->socket < 0 ||
	    h->socket >= HPM_MAX_NODES)
		return;
	if (in_dyn) {
		trim_missed = true;
		return;
	}
	dn = &c->dyn.node[h->socket];
	/*
	 * Wholly below the floor's end (the config pages, or --socket-mem that
	 * stays): nothing to give back, so no lock to take. A heap working
	 * inside its reserve frees next to its free tail all the time.
	 */
	if (!trim_missed && (((uintptr_t)va + len) & ~(uintptr_t)(c->page_sz - 1)) <=
			    c->base + dn->slice_off + dn->floor)
		return;
	in_dyn = true;
	trim_missed = false;
	grow_lock(c, dn, h->socket);
	hpm_mem_event_sync();
	ret = trim_range(c, h, dn, (uintptr_t)va, len);
	/*
	 * The report covers the block one free merged. Pages kept earlier
	 * by the hysteresis, pages it could not give back (no run slot for a
	 * split), and reports our own heap calls made meanwhile leave whole
	 * free pages elsewhere: sweep, largest range first, while that gives
	 * pages back. Not when this report gave nothing back: the
	 * hysteresis kept its page because the rest of the heap has less than
	 * half a page free, so no whole free page lies elsewhere either, and
	 * the steady state of a loop at a page boundary stays cheap (the sweep
	 * flushes this thread's cache).
	 */
	for (uint32_t n = 0; n < c->nr_memsegs && (ret > 0 || trim_missed); n++) {
		void *v;
		size_t l;

		trim_missed = false;
		if (hpm_heap_find_free_pages(h, (size_t)c->page_sz, &v, &l))
			break;
		ret = trim_range(c, h, dn, (uintptr_t)v, l);
		if (ret < 0)
			break;
	}
	grow_unlock(dn);
	in_dyn = false;
}

__hpm_export int hpm_mem_socket_info(int socket, struct hpm_mem_socket_info *info)
{
	const struct hpm_config *c = hpm_cfg;
	uint64_t bytes = 0;

	if (!c)
		return hpm_fail(ENODEV);
	if (!info || socket < 0 || socket >= HPM_MAX_NODES)
		return hpm_fail(EINVAL);
	memset(info, 0, sizeof(*info));
	if (c->dyn.enabled) {
		const struct hpm_dyn_node *dn = &c->dyn.node[socket];

		info->limit = dn->limit;
		info->reserved = dn->floor;
		info->present = atomic_load_explicit(&dn->present, memory_order_relaxed);
		info->grown = atomic_load_explicit(&dn->grown, memory_order_relaxed);
		info->released = atomic_load_explicit(&dn->released, memory_order_relaxed);
		return 0;
	}
	for (uint32_t i = 0; i < c->nr_memsegs; i++)
		if (c->memsegs[i].socket == socket)
			bytes += c->memsegs[i].len;
	info->limit = info->reserved = info->present = bytes;
	return 0;
}

int hpm_dyn_backed_bytes(uint64_t *bytes)
{
	struct stat st;

	if (!dyn_be || dyn_be->fd < 0)
		return -ENODEV;
	if (dyn_be->ops->type == HPM_BACKEND_KMOD)
		return -ENOTSUP;
	if (fstat(dyn_be->fd, &st))
		return -errno;
	*bytes = (uint64_t)st.st_blocks * 512;
	return 0;
}
