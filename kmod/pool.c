// SPDX-License-Identifier: GPL-2.0
/*
 * Per-node pools of pinned, zeroed 2 MiB pages, the global cap, the dirty
 * pages zeroed in the background, and the busy pages that wait for outside
 * references to go before their reuse.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/gfp.h>
#include <linux/highmem.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/nodemask.h>
#include <linux/nospec.h>
#include <linux/random.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/wait.h>
#include <linux/workqueue.h>

#include "hpmem.h"

/*
 * Not movable: these pages stay pinned for as long as the pool holds them,
 * and pinned pages in ZONE_MOVABLE or CMA would defeat hot-unplug and
 * compaction. __GFP_RETRY_MAYFAIL compacts hard but fails rather than
 * calling the OOM killer; __GFP_THISNODE never falls back to another node.
 * __GFP_COMP makes the page one refcounted folio, which pinnable regions
 * hand out 4 KiB at a time and GUP can reference.
 */
#define HPMEM_GFP	(GFP_KERNEL | __GFP_THISNODE | __GFP_COMP | \
			 __GFP_ZERO | __GFP_NOWARN | __GFP_RETRY_MAYFAIL)

#define HPMEM_DEFAULT_POOL_PAGES	64

static unsigned int pages[MAX_NUMNODES] = {
	[0 ... MAX_NUMNODES - 1] = HPMEM_DEFAULT_POOL_PAGES
};

static int nr_pages_param;
module_param_array(pages, uint, &nr_pages_param, 0444);
MODULE_PARM_DESC(pages,
		 "2 MiB pages allocated per node at load, by node id (default: 64 on every node with memory; nodes missing from a given list get 0)");

static unsigned long max_pages;
module_param(max_pages, ulong, 0444);
MODULE_PARM_DESC(max_pages,
		 "Cap on the 2 MiB pages all pools hold together (default: 0, meaning half of RAM)");

/* What it protects and how it nests: see hpmem.h. */
DEFINE_MUTEX(hpmem_lock);

/* Serialises resizes so that each one sees the total it changes. */
static DEFINE_MUTEX(hpmem_resize_lock);

static struct hpmem_pool **hpmem_pools;

/* In hpmem_pool.index: the page is on the pool's free list. */
#define HPMEM_FREE_MARK		XA_MARK_0

/*
 * Pages held by all pools (busy ones included), plus pages being allocated
 * for a growth.
 */
static unsigned long hpmem_held;

/*
 * Busy pages are polled: nothing tells us when a pipe or a GUP pin drops
 * its reference. Soon after a region dies (an O_DIRECT read in flight ends
 * within milliseconds), then less and less often for long-lived holders
 * (an RDMA registration, a pipe nobody reads).
 */
#define HPMEM_BUSY_POLL_MIN	msecs_to_jiffies(100)
#define HPMEM_BUSY_POLL_MAX	msecs_to_jiffies(1000)

static void hpmem_busy_work_fn(struct work_struct *work);
static DECLARE_DELAYED_WORK(hpmem_busy_work, hpmem_busy_work_fn);
/* The next poll's delay; protected by hpmem_lock. */
static unsigned long hpmem_busy_delay;

/*
 * Dirty pages are zeroed by a work item, not by whoever closed the last
 * file of a region (a 256 GiB region takes seconds to zero). It takes a
 * few pages at a time off a pool's dirty list, so that a grow that needs
 * exactly those waits for one batch at most (hpmem_zero_wq).
 */
#define HPMEM_ZERO_BATCH	8

static void hpmem_zero_work_fn(struct work_struct *work);
static DECLARE_WORK(hpmem_zero_work, hpmem_zero_work_fn);
static DECLARE_WAIT_QUEUE_HEAD(hpmem_zero_wq);

struct hpmem_pool *hpmem_pool_get(unsigned int node)
{
	if (node >= nr_node_ids)
		return NULL;
	/* @node comes from userspace: no speculative load out of bounds. */
	return hpmem_pools[array_index_nospec(node, nr_node_ids)];
}

u64 hpmem_pool_node_mask(void)
{
	u64 mask = 0;
	int nid;

	for (nid = 0; nid < nr_node_ids && nid < 64; nid++)
		if (hpmem_pools[nid])
			mask |= 1ULL << nid;
	return mask;
}

unsigned long hpmem_pool_max_pages(void)
{
	return max_pages;
}

static void hpmem_page_zero(struct page *page)
{
	unsigned long i;

	for (i = 0; i < HPMEM_SUBPAGES; i++)
		clear_highpage(nth_page(page, i));
	cond_resched();
}

void hpmem_pages_zero(struct list_head *pages)
{
	struct page *page;

	list_for_each_entry(page, pages, lru)
		hpmem_page_zero(page);
}

/* list_sort() order of pages linked by ->lru: ascending pfn. */
int hpmem_page_pfn_cmp(void *priv, const struct list_head *a,
		       const struct list_head *b)
{
	unsigned long pa = page_to_pfn(list_entry(a, struct page, lru));
	unsigned long pb = page_to_pfn(list_entry(b, struct page, lru));

	return pa < pb ? -1 : pa > pb;
}

static unsigned long hpmem_page_index(struct page *page)
{
	return page_to_pfn(page) >> HPMEM_ORDER;
}

/*
 * Puts a zeroed page on @pool's free list at its place in pfn order, before
 * the next free page the index finds: O(log n), where re-sorting the list
 * after each batch was O(n log n) under the global lock. The caller counts
 * it in @nr_free. The page must be in the index (hpmem_pool_index()).
 */
static void hpmem_free_add(struct hpmem_pool *pool, struct page *page)
{
	unsigned long idx = hpmem_page_index(page);
	struct page *next;

	lockdep_assert_held(&hpmem_lock);
	next = xa_find_after(&pool->index, &idx, ULONG_MAX, HPMEM_FREE_MARK);
	list_add_tail(&page->lru, next ? &next->lru : &pool->free);
	xa_set_mark(&pool->index, hpmem_page_index(page), HPMEM_FREE_MARK);
}

/* Takes @page off @pool's free list onto @list; the caller counts it. */
static void hpmem_free_take(struct hpmem_pool *pool, struct page *page,
			    struct list_head *list)
{
	lockdep_assert_held(&hpmem_lock);
	xa_clear_mark(&pool->index, hpmem_page_index(page), HPMEM_FREE_MARK);
	list_move_tail(&page->lru, list);
}

/* Enters new pages in @pool's index, all or none. Called unlocked. */
static int hpmem_pool_index(struct hpmem_pool *pool, struct list_head *list)
{
	struct page *page;
	int ret;

	list_for_each_entry(page, list, lru) {
		ret = xa_err(xa_store(&pool->index, hpmem_page_index(page),
				      page, GFP_KERNEL));
		if (!ret)
			continue;
		list_for_each_entry_continue_reverse(page, list, lru)
			xa_erase(&pool->index, hpmem_page_index(page));
		return ret;
	}
	return 0;
}

static void hpmem_free_list(struct list_head *list)
{
	struct page *page, *tmp;

	list_for_each_entry_safe(page, tmp, list, lru) {
		list_del(&page->lru);
		__free_pages(page, HPMEM_ORDER);
		cond_resched();
	}
}

/* Allocates @nr pages on @node into @list, or none. Called unlocked. */
static int hpmem_pool_alloc(int node, unsigned long nr, struct list_head *list)
{
	struct page *page;
	unsigned long i;

	for (i = 0; i < nr; i++) {
		if (fatal_signal_pending(current))
			goto fail;
		page = alloc_pages_node(node, HPMEM_GFP, HPMEM_ORDER);
		/* __GFP_THISNODE makes a remote page a kernel bug, not ours */
		if (!page)
			goto fail;
		list_add_tail(&page->lru, list);
		cond_resched();
	}
	return 0;
fail:
	hpmem_free_list(list);
	return -ENOMEM;
}

int hpmem_pool_resize(unsigned int node, u64 target, u64 *total)
{
	struct hpmem_pool *pool = hpmem_pool_get(node);
	struct page *page;
	LIST_HEAD(list);
	unsigned long nr, i;
	int ret = 0;

	if (!pool)
		return -ENODEV;

	mutex_lock(&hpmem_resize_lock);
relock:
	mutex_lock(&hpmem_lock);
	if (target > pool->total) {
		if (target - pool->total > max_pages - hpmem_held) {
			ret = -ENOMEM;
			goto out_unlock;
		}
		nr = target - pool->total;
		/* Count the pages against the cap while they are allocated. */
		hpmem_held += nr;
		mutex_unlock(&hpmem_lock);

		ret = hpmem_pool_alloc(node, nr, &list);
		if (!ret) {
			ret = hpmem_pool_index(pool, &list);
			if (ret)
				hpmem_free_list(&list);
		}

		mutex_lock(&hpmem_lock);
		if (ret) {
			hpmem_held -= nr;
			goto out_unlock;
		}
		while (!list_empty(&list)) {
			page = list_first_entry(&list, struct page, lru);
			list_del(&page->lru);
			hpmem_free_add(pool, page);
		}
		pool->total += nr;
		pool->nr_free += nr;
	} else if (target < pool->total) {
		nr = pool->total - target;
		/* Dirty pages go back unzeroed, as any freed page does. */
		if (nr > pool->nr_free + pool->nr_dirty) {
			ret = -EBUSY;
			goto out_unlock;
		}
		/* Some are in the zeroing work's hands: they will be free. */
		if (nr > pool->nr_free + pool->nr_dirty - pool->nr_zeroing) {
			hpmem_pool_wait_zeroing(pool);
			goto relock;
		}
		/* Dirty pages first, then the highest; grows take the lowest. */
		for (i = 0; i < nr; i++) {
			if (!list_empty(&pool->dirty)) {
				list_move(pool->dirty.next, &list);
				pool->nr_dirty--;
			} else {
				page = list_last_entry(&pool->free, struct page,
						       lru);
				hpmem_free_take(pool, page, &list);
				pool->nr_free--;
			}
		}
		/* Out of the pool: out of its index (erasing cannot fail). */
		list_for_each_entry(page, &list, lru)
			xa_erase(&pool->index, hpmem_page_index(page));
		pool->total -= nr;
		hpmem_held -= nr;
	}
out_unlock:
	if (!ret && total)
		*total = pool->total;
	mutex_unlock(&hpmem_lock);
	hpmem_free_list(&list);
	mutex_unlock(&hpmem_resize_lock);
	return ret;
}

/**
 * hpmem_pool_take() - take @nr pages of @pool for a region
 * @pool: the pool
 * @nr: pages wanted
 * @list: out, zeroed pages, lowest physical address first
 * @dirty: out, pages that still need zeroing, when too few were zeroed;
 *         the caller zeroes them (without hpmem_lock) before anyone can
 *         see them
 * @anywhere: take the zeroed pages from a random place in the free list,
 *            not from its start
 *
 * The free list is in pfn order, so pages taken from its start would tell
 * a caller who may not see addresses the physical order of its pages
 * across grows (a page per grow: ascending offsets, ascending addresses),
 * which shuffling within one grow cannot hide. Such a caller gets a run
 * from a random place: still one cut in the list, not one per page.
 *
 * Caller holds hpmem_lock.
 *
 * Return: 0; -ENOMEM when the pool has too few pages; -EAGAIN when enough
 * exist only counting a batch the zeroing work holds now: wait with
 * hpmem_pool_wait_zeroing() and retry.
 */
int hpmem_pool_take(struct hpmem_pool *pool, unsigned long nr,
		    struct list_head *list, struct list_head *dirty,
		    bool anywhere)
{
	unsigned long i, skip = 0, clean = min(nr, pool->nr_free);
	struct list_head *pos = &pool->free;
	struct page *page;

	lockdep_assert_held(&hpmem_lock);
	if (nr > pool->nr_free + pool->nr_dirty)
		return -ENOMEM;
	if (nr > pool->nr_free + pool->nr_dirty - pool->nr_zeroing)
		return -EAGAIN;
	if (anywhere && pool->nr_free > clean)
		skip = get_random_u32_below(min_t(unsigned long,
						  pool->nr_free - clean + 1,
						  U32_MAX));
	for (i = 0; i < skip; i++)
		pos = pos->next;
	for (i = 0; i < clean; i++) {
		page = list_entry(pos->next, struct page, lru);
		hpmem_free_take(pool, page, list);
	}
	for (; i < nr; i++)
		list_move_tail(pool->dirty.next, dirty);
	pool->nr_free -= clean;
	pool->nr_dirty -= nr - clean;
	pool->inuse += nr;
	return 0;
}

/*
 * Waits until the batch of @pool that the zeroing work holds now is back on
 * the free list. Not until the work holds no batch: it takes the next one
 * at once, before a waiter woken by the last runs, so that would wait for
 * the whole dirty list. Called with hpmem_lock, which it drops.
 */
void hpmem_pool_wait_zeroing(struct hpmem_pool *pool)
{
	unsigned long zeroed = pool->zeroed;

	lockdep_assert_held(&hpmem_lock);
	mutex_unlock(&hpmem_lock);
	wait_event(hpmem_zero_wq, READ_ONCE(pool->zeroed) != zeroed);
}

/*
 * Returns zeroed pages from a region (or a failed grow) to their pools.
 * Caller holds hpmem_lock.
 */
void hpmem_pool_give(struct list_head *list)
{
	struct hpmem_pool *pool;
	struct page *page, *tmp;

	lockdep_assert_held(&hpmem_lock);
	list_for_each_entry_safe(page, tmp, list, lru) {
		pool = hpmem_pools[page_to_nid(page)];
		list_del(&page->lru);
		hpmem_free_add(pool, page);
		pool->nr_free++;
		pool->inuse--;
	}
}

/*
 * Takes a dead region's pages out of use, onto their pools' busy list
 * (still referenced outside hpmem) or dirty list (to be zeroed).
 */
static void hpmem_pool_park(struct list_head *list, bool busy)
{
	struct hpmem_pool *pool;
	struct page *page, *tmp;

	list_for_each_entry_safe(page, tmp, list, lru) {
		pool = hpmem_pools[page_to_nid(page)];
		list_move_tail(&page->lru, busy ? &pool->busy : &pool->dirty);
		if (busy)
			pool->nr_busy++;
		else
			pool->nr_dirty++;
		pool->inuse--;
	}
}

/*
 * Returns pages of a dead region that nothing else references, not zeroed
 * yet, to their pools' dirty lists: the zeroing work, or a grow that needs
 * them first, zeroes them before anyone sees them. They count as free for
 * userspace (a grow can take them) and as dirty. Caller holds hpmem_lock.
 */
void hpmem_pool_give_dirty(struct list_head *list)
{
	lockdep_assert_held(&hpmem_lock);
	if (list_empty(list))
		return;
	hpmem_pool_park(list, false);
	queue_work(system_unbound_wq, &hpmem_zero_work);
}

/*
 * Zeroes dirty pages, a batch at a time: off the dirty list under
 * hpmem_lock (counted in nr_zeroing, so a grow knows to wait rather than
 * fail), zeroed without it, then onto the free list in pfn order.
 */
static void hpmem_zero_work_fn(struct work_struct *work)
{
	struct hpmem_pool *pool = NULL;
	struct page *page, *tmp;
	LIST_HEAD(batch);
	unsigned long n;
	int nid;

	for (;;) {
		mutex_lock(&hpmem_lock);
		for (nid = 0; nid < nr_node_ids; nid++) {
			pool = hpmem_pools[nid];
			if (pool && !list_empty(&pool->dirty))
				break;
		}
		if (nid == nr_node_ids) {
			mutex_unlock(&hpmem_lock);
			return;
		}
		for (n = 0; n < HPMEM_ZERO_BATCH && !list_empty(&pool->dirty);
		     n++)
			list_move_tail(pool->dirty.next, &batch);
		pool->nr_zeroing = n;
		mutex_unlock(&hpmem_lock);

		hpmem_pages_zero(&batch);

		mutex_lock(&hpmem_lock);
		list_for_each_entry_safe(page, tmp, &batch, lru) {
			list_del(&page->lru);
			hpmem_free_add(pool, page);
		}
		pool->nr_free += n;
		pool->nr_dirty -= n;
		pool->nr_zeroing = 0;
		WRITE_ONCE(pool->zeroed, pool->zeroed + 1);
		mutex_unlock(&hpmem_lock);
		wake_up_all(&hpmem_zero_wq);
	}
}

/*
 * Parks pages of a dead region that something outside hpmem still
 * references (page_ref_count() above the pool's own 1): a vmsplice()d pipe
 * buffer, a GUP pin (O_DIRECT in flight, RDMA, VFIO). Such a holder may
 * still read or write the page, so it must not reach another region or
 * user. The page stays counted in its pool and against max_pages, and the
 * poll returns it to the free list, zeroed, once the reference is gone.
 * Caller holds hpmem_lock.
 */
void hpmem_pool_give_busy(struct list_head *list)
{
	lockdep_assert_held(&hpmem_lock);
	if (list_empty(list))
		return;
	hpmem_pool_park(list, true);
	/* New busy pages: poll soon again, even if backed off. */
	hpmem_busy_delay = HPMEM_BUSY_POLL_MIN;
	mod_delayed_work(system_unbound_wq, &hpmem_busy_work,
			 hpmem_busy_delay);
}

/*
 * Polls the busy pages. One whose count is back to the pool's 1 has no
 * holder left and none can appear (no region, file or VMA leads to it), so
 * it is uncharged and becomes dirty: the zeroing work takes it from there.
 */
static void hpmem_busy_work_fn(struct work_struct *work)
{
	struct hpmem_pool *pool;
	struct page *page, *tmp;
	bool busy = false, idle = false;
	int nid;

	mutex_lock(&hpmem_lock);
	for (nid = 0; nid < nr_node_ids; nid++) {
		pool = hpmem_pools[nid];
		if (!pool)
			continue;
		list_for_each_entry_safe(page, tmp, &pool->busy, lru) {
			if (page_ref_count(page) != 1)
				continue;
			hpmem_page_uncharge(page);
			list_move_tail(&page->lru, &pool->dirty);
			pool->nr_busy--;
			pool->nr_dirty++;
			idle = true;
		}
		if (!list_empty(&pool->busy))
			busy = true;
	}
	if (idle)
		queue_work(system_unbound_wq, &hpmem_zero_work);
	if (busy) {
		hpmem_busy_delay = min(hpmem_busy_delay * 2,
				       HPMEM_BUSY_POLL_MAX);
		/* Not mod_: a region's death may have queued it sooner. */
		queue_delayed_work(system_unbound_wq, &hpmem_busy_work,
				   hpmem_busy_delay);
	}
	mutex_unlock(&hpmem_lock);
}

int hpmem_pool_init(void)
{
	struct hpmem_pool *pool;
	u64 total;
	int nid, ret;

	if (!max_pages)
		max_pages = totalram_pages() / 2 >> HPMEM_ORDER;

	hpmem_pools = kcalloc(nr_node_ids, sizeof(*hpmem_pools), GFP_KERNEL);
	if (!hpmem_pools)
		return -ENOMEM;

	/* Memoryless nodes get no pool: __GFP_THISNODE could never fill it. */
	for_each_node_state(nid, N_MEMORY) {
		pool = kzalloc(sizeof(*pool), GFP_KERNEL);
		if (!pool) {
			hpmem_pool_exit();
			return -ENOMEM;
		}
		pool->node = nid;
		INIT_LIST_HEAD(&pool->free);
		INIT_LIST_HEAD(&pool->dirty);
		INIT_LIST_HEAD(&pool->busy);
		xa_init(&pool->index);
		hpmem_pools[nid] = pool;
	}

	/*
	 * A node that cannot supply its initial pages is not fatal: the module
	 * loads with what it got and the pool can be grown later.
	 */
	for_each_node_state(nid, N_MEMORY) {
		unsigned int want = 0;

		if (!nr_pages_param || nid < nr_pages_param)
			want = pages[nid];
		if (!want)
			continue;
		ret = hpmem_pool_resize(nid, want, &total);
		if (ret)
			pr_warn("node %d: cannot allocate %u pages of 2 MiB (%d), pool left empty\n",
				nid, want, ret);
	}
	return 0;
}

/*
 * Frees every pool. All regions are gone: nothing is in use. A page still
 * busy is handed to the kernel with the pool's reference dropped: the
 * outside holder's put_page() frees it, and hpmem never sees it again.
 */
void hpmem_pool_exit(void)
{
	struct hpmem_pool *pool;
	struct page *page, *tmp;
	int nid;

	if (!hpmem_pools)
		return;
	/* The poll re-queues itself: _sync stops that too. It feeds zeroing. */
	cancel_delayed_work_sync(&hpmem_busy_work);
	/* What is still dirty goes back to the kernel as it is. */
	cancel_work_sync(&hpmem_zero_work);
	for (nid = 0; nid < nr_node_ids; nid++) {
		pool = hpmem_pools[nid];
		if (!pool)
			continue;
		WARN_ON(pool->inuse);
		if (pool->nr_busy)
			pr_info("node %d: %lu pages still referenced outside hpmem, left to the kernel to free when released\n",
				nid, pool->nr_busy);
		list_for_each_entry_safe(page, tmp, &pool->busy, lru) {
			list_del(&page->lru);
			hpmem_page_uncharge(page);
			put_page(page);
		}
		hpmem_free_list(&pool->dirty);
		hpmem_free_list(&pool->free);
		xa_destroy(&pool->index);
		kfree(pool);
	}
	kfree(hpmem_pools);
	hpmem_pools = NULL;
}
