// SPDX-License-Identifier: GPL-2.0
/*
 * Named regions: sets of pool pages that processes attach to by name, with
 * their lifetime and permissions.
 */
#include <linux/capability.h>
#include <linux/cred.h>
#include <linux/err.h>
#include <linux/list_sort.h>
#include <linux/module.h>
#include <linux/pagemap.h>
#include <linux/random.h>
#include <linux/rhashtable.h>
#include <linux/sched/signal.h>
#include <linux/sizes.h>
#include <linux/slab.h>
#include <linux/sort.h>
#include <linux/string.h>
#include <linux/sysfs.h>
#include <linux/vmalloc.h>

#include "hpmem.h"
#include "compat.h"

static bool phys_unprivileged;
module_param(phys_unprivileged, bool, 0644);
MODULE_PARM_DESC(phys_unprivileged,
		 "Report physical addresses and IOVAs of their own regions to callers without CAP_SYS_ADMIN (default: N)");

static unsigned int max_regions_per_user = 1024;
module_param(max_regions_per_user, uint, 0644);
MODULE_PARM_DESC(max_regions_per_user,
		 "Regions one uid may hold, for callers without CAP_SYS_ADMIN (default: 1024)");

/*
 * The name table: (uid, name) -> region, for the regions that are linked.
 * Lookups and changes happen under hpmem_lock, so a region that left the
 * table is unreachable by name as soon as hpmem_lock is dropped.
 */
static struct rhashtable hpmem_names;

static const struct rhashtable_params hpmem_name_params = {
	.key_len	= sizeof(struct hpmem_region_key),
	.key_offset	= offsetof(struct hpmem_region, key),
	.head_offset	= offsetof(struct hpmem_region, node),
	.automatic_shrinking = true,
};

/*
 * Linked regions by id, the stable order HPMEM_IOC_REGION_LIST pages
 * through (and what unload walks). Ids are allocated cyclically from 1.
 */
static DEFINE_XARRAY_FLAGS(hpmem_ids, XA_FLAGS_ALLOC1 | XA_FLAGS_ACCOUNT);
static u32 hpmem_next_id;

/*
 * Pages that dma-bufs hold: pfn >> HPMEM_ORDER -> how many (xa_mk_value()).
 * A release refuses them (EBUSY): a dma-buf's mmap() and its importers'
 * sg_tables reach the page for as long as the dma-buf lives, so a page
 * taken out of the region meanwhile would no longer be the region's while
 * they still use it. Counted up under hpmem_lock, as a release checks,
 * down (a dma-buf going away) under the xarray's lock only.
 */
static DEFINE_XARRAY(hpmem_exported);

/* uid -> regions it holds (xa_mk_value()), for max_regions_per_user. */
static DEFINE_XARRAY_FLAGS(hpmem_user_regions, XA_FLAGS_ACCOUNT);

/*
 * xarray indices are unsigned long: a 32-bit kernel cannot hold uids
 * above LONG_MAX there, but hpmem needs 64-bit (its Kconfig, THP PMDs).
 */
static unsigned long hpmem_uid_index(kuid_t uid)
{
	return __kuid_val(uid);
}

/*
 * Whether the caller may learn physical addresses and IOVAs, of @region or,
 * when NULL, of its own regions. phys_unprivileged covers regions the
 * caller's euid created, not one whose file it was handed by another user.
 * A visibility decision, not a refusal: it is not audited.
 */
bool hpmem_caller_sees_addrs(struct hpmem_region *region)
{
	if (ns_capable_noaudit(&init_user_ns, CAP_SYS_ADMIN))
		return true;
	return READ_ONCE(phys_unprivileged) &&
	       (!region || uid_eq(current_euid(), region->key.uid));
}

int hpmem_region_init(void)
{
	return rhashtable_init(&hpmem_names, &hpmem_name_params);
}

/*
 * The key @name has for the caller: its own euid, or with HPMEM_NAME_UID
 * the uid it names, which needs CAP_SYS_ADMIN unless it is its own.
 */
static int hpmem_region_key(struct hpmem_region_key *key, const char *name,
			    u32 name_flags, u32 uid)
{
	memset(key, 0, sizeof(*key));
	key->uid = current_euid();
	if (name_flags & HPMEM_NAME_UID) {
		key->uid = make_kuid(current_user_ns(), uid);
		if (!uid_valid(key->uid))
			return -EINVAL;
		if (!uid_eq(key->uid, current_euid()) &&
		    !capable(CAP_SYS_ADMIN))
			return -EPERM;
	}
	strscpy(key->name, name, sizeof(key->name));
	return 0;
}

static struct hpmem_region *hpmem_region_find(struct hpmem_region_key *key)
{
	lockdep_assert_held(&hpmem_lock);
	return rhashtable_lookup_fast(&hpmem_names, key, hpmem_name_params);
}

/* Counts a new region of @uid; EDQUOT at max_regions_per_user. */
static int hpmem_user_regions_inc(kuid_t uid, bool limited)
{
	unsigned long idx = hpmem_uid_index(uid);
	unsigned long nr;

	lockdep_assert_held(&hpmem_lock);
	nr = xa_to_value(xa_load(&hpmem_user_regions, idx) ?: xa_mk_value(0));
	if (limited && nr >= READ_ONCE(max_regions_per_user))
		return -EDQUOT;
	return xa_err(xa_store(&hpmem_user_regions, idx, xa_mk_value(nr + 1),
			       GFP_KERNEL));
}

static void hpmem_user_regions_dec(kuid_t uid)
{
	unsigned long idx = hpmem_uid_index(uid);
	unsigned long nr;

	lockdep_assert_held(&hpmem_lock);
	nr = xa_to_value(xa_load(&hpmem_user_regions, idx));
	if (WARN_ON_ONCE(!nr))
		return;
	/* Storing a smaller value entry needs no allocation: cannot fail. */
	if (nr == 1)
		xa_erase(&hpmem_user_regions, idx);
	else
		xa_store(&hpmem_user_regions, idx, xa_mk_value(nr - 1),
			 GFP_KERNEL);
}

/* Enters a new region in both tables; caller holds hpmem_lock. */
static int hpmem_region_link(struct hpmem_region *region)
{
	int ret;

	lockdep_assert_held(&hpmem_lock);
	ret = xa_alloc_cyclic(&hpmem_ids, &region->id, region, xa_limit_32b,
			      &hpmem_next_id, GFP_KERNEL);
	if (ret < 0)
		return ret;
	ret = rhashtable_insert_fast(&hpmem_names, &region->node,
				     hpmem_name_params);
	if (ret) {
		xa_erase(&hpmem_ids, region->id);
		return ret;
	}
	region->linked = true;
	return 0;
}

/*
 * Takes the region out of the name table. Returns true when that dropped
 * the last reference (a persistent region nobody has attached).
 */
static bool hpmem_region_unlink(struct hpmem_region *region)
{
	lockdep_assert_held(&hpmem_lock);
	rhashtable_remove_fast(&hpmem_names, &region->node, hpmem_name_params);
	xa_erase(&hpmem_ids, region->id);
	region->linked = false;
	if (region->flags & HPMEM_REGION_PERSISTENT)
		return refcount_dec_and_test(&region->refs);
	return false;
}

static unsigned long hpmem_page_export_index(struct page *page)
{
	return page_to_pfn(page) >> HPMEM_ORDER;
}

/**
 * hpmem_page_export() - a dma-buf takes @page (a region's, head)
 * @page: takes a reference, dropped by hpmem_page_unexport()
 *
 * Caller holds hpmem_lock, under which @page is in a region.
 *
 * Return: 0 or -ENOMEM.
 */
int hpmem_page_export(struct page *page)
{
	unsigned long idx = hpmem_page_export_index(page);
	unsigned long n;
	int ret;

	lockdep_assert_held(&hpmem_lock);
	xa_lock(&hpmem_exported);
	n = xa_to_value(xa_load(&hpmem_exported, idx) ?: xa_mk_value(0));
	/*
	 * Only a new entry allocates, which may drop the xarray's lock: with
	 * a count of 0 no dma-buf can drop its count meanwhile.
	 */
	ret = xa_err(__xa_store(&hpmem_exported, idx, xa_mk_value(n + 1),
				GFP_KERNEL));
	xa_unlock(&hpmem_exported);
	if (!ret)
		get_page(page);
	return ret;
}

/* A dma-buf lets go of @page; any context that may take a spinlock. */
void hpmem_page_unexport(struct page *page)
{
	unsigned long idx = hpmem_page_export_index(page);
	unsigned long n;

	xa_lock(&hpmem_exported);
	n = xa_to_value(xa_load(&hpmem_exported, idx));
	WARN_ON_ONCE(!n);
	/* A smaller value in the same slot allocates nothing. */
	if (n > 1)
		__xa_store(&hpmem_exported, idx, xa_mk_value(n - 1), GFP_NOWAIT);
	else
		__xa_erase(&hpmem_exported, idx);
	xa_unlock(&hpmem_exported);
	put_page(page);
}

/* Whether a dma-buf holds @page; caller holds hpmem_lock. */
static bool hpmem_page_exported(struct page *page)
{
	return xa_load(&hpmem_exported, hpmem_page_export_index(page));
}

/* Whether a VMA maps it; caller holds hpmem_lock. */
static bool hpmem_region_mapped(struct hpmem_region *region)
{
	return refcount_read(&region->maps) > 1;
}

/* Files attached to it; caller holds hpmem_lock. */
static unsigned int hpmem_region_users(struct hpmem_region *region)
{
	unsigned int refs = refcount_read(&region->refs);

	if (region->linked && (region->flags & HPMEM_REGION_PERSISTENT))
		refs--;
	return refs;
}

/*
 * Gives a dead region's pages back. Called without hpmem_lock once the
 * region is unreachable: no name, no file, no VMA.
 */
static void hpmem_region_free(struct hpmem_region *region)
{
	unsigned long index;
	struct page *page;
	LIST_HEAD(back);
	LIST_HEAD(busy);

	/*
	 * With no VMA left, a page may still be referenced from outside: a
	 * GUP pin of a pinnable region (O_DIRECT in flight, an RDMA or VFIO
	 * registration), a pipe buffer that vmsplice() filled from it, or,
	 * for any region kind, a reference taken by kernel code we do not
	 * know of. Whoever holds it may still read or write the page, so it
	 * is not reused until the pool's reference is the last: it goes
	 * busy. A page nobody else references cannot gain a reference now;
	 * it goes dirty, and is zeroed before it can reach another region,
	 * by the pool's work rather than by this (closing) caller.
	 */
	xa_for_each(&region->pages, index, page) {
		if (page_ref_count(page) == 1)
			list_add_tail(&page->lru, &back);
		else
			list_add_tail(&page->lru, &busy);
	}

	/* Busy pages stay charged until they return to the pool. */
	hpmem_charges_release(&region->charges, &back, &busy);

	mutex_lock(&hpmem_lock);
	hpmem_pool_give_dirty(&back);
	hpmem_pool_give_busy(&busy);
	hpmem_user_regions_dec(region->key.uid);
	mutex_unlock(&hpmem_lock);

	xa_destroy(&region->pages);
	WARN_ON_ONCE(!xa_empty(&region->files));
	xa_destroy(&region->files);
	kfree(region->node_pages);
	kfree(region);
}

/*
 * @file's mapping joins those a release zaps; before the file can map the
 * region (its private_data is set after). Caller holds hpmem_lock.
 */
static int hpmem_region_add_file(struct hpmem_region *region,
				 struct file *file)
{
	struct inode *inode = file->f_mapping->host;
	u32 id;
	int ret;

	lockdep_assert_held(&hpmem_lock);
	ret = xa_alloc(&region->files, &id, inode, xa_limit_32b,
		       GFP_KERNEL_ACCOUNT);
	if (ret)
		return ret;
	inode->i_private = (void *)(unsigned long)id;
	return 0;
}

/* The file is closing: it has no VMA left. Caller holds hpmem_lock. */
static void hpmem_region_del_file(struct hpmem_region *region,
				  struct file *file)
{
	struct inode *inode = file->f_mapping->host;

	lockdep_assert_held(&hpmem_lock);
	xa_erase(&region->files, (unsigned long)inode->i_private);
}

/*
 * What users create is charged to their memory cgroup (__GFP_ACCOUNT): the
 * region, its per-node counts and its page xarray's nodes.
 */
int hpmem_region_create(struct file *file, const char *name, u32 flags,
			u64 max_pages)
{
	/* Selects whether the cap applies; refuses nothing: not audited. */
	bool limited = !ns_capable_noaudit(&init_user_ns, CAP_SYS_ADMIN);
	struct hpmem_region *region;
	int ret = 0;

	region = kzalloc(sizeof(*region), GFP_KERNEL_ACCOUNT);
	if (!region)
		return -ENOMEM;
	region->node_pages = kcalloc(nr_node_ids, sizeof(*region->node_pages),
				     GFP_KERNEL_ACCOUNT);
	if (!region->node_pages) {
		kfree(region);
		return -ENOMEM;
	}
	/* kzalloc() zero-padded the name: the key compares as bytes. */
	region->key.uid = current_euid();
	strscpy(region->key.name, name, sizeof(region->key.name));
	region->flags = flags;
	region->max_pages = max_pages;
	/* The file, and the name table for a persistent region. */
	refcount_set(&region->refs,
		     flags & HPMEM_REGION_PERSISTENT ? 2 : 1);
	refcount_set(&region->maps, 1);
	xa_init_flags(&region->pages, XA_FLAGS_ACCOUNT);
	init_rwsem(&region->fault_lock);
	xa_init_flags(&region->files, XA_FLAGS_ALLOC | XA_FLAGS_ACCOUNT);
	INIT_LIST_HEAD(&region->charges);

	mutex_lock(&hpmem_lock);
	if (file->private_data)
		ret = -EALREADY;
	else if (hpmem_region_find(&region->key))
		ret = -EEXIST;
	else
		ret = hpmem_user_regions_inc(region->key.uid, limited);
	if (!ret) {
		ret = hpmem_region_add_file(region, file);
		if (ret)
			hpmem_user_regions_dec(region->key.uid);
	}
	if (!ret) {
		ret = hpmem_region_link(region);
		if (ret) {
			hpmem_region_del_file(region, file);
			hpmem_user_regions_dec(region->key.uid);
		}
	}
	if (!ret)
		file->private_data = region;
	mutex_unlock(&hpmem_lock);

	if (ret) {
		xa_destroy(&region->files);
		kfree(region->node_pages);
		kfree(region);
	}
	return ret;
}

/*
 * @sparse_ok: the caller's struct has max_pages. An older caller takes
 * nr_pages for the size of the mapping; in a region with holes that would
 * map too little, or SIGBUS in a hole it does not expect: EOPNOTSUPP.
 */
int hpmem_region_attach(struct file *file, const char *name, u32 name_flags,
			u32 uid, bool sparse_ok, u32 *flags, u64 *nr_pages,
			u64 *max_pages)
{
	struct hpmem_region_key key;
	struct hpmem_region *region;
	int ret;

	ret = hpmem_region_key(&key, name, name_flags, uid);
	if (ret)
		return ret;
	mutex_lock(&hpmem_lock);
	region = hpmem_region_find(&key);
	if (file->private_data)
		ret = -EALREADY;
	else if (!region)
		ret = -ENOENT;
	else if (region->max_pages && !sparse_ok)
		ret = -EOPNOTSUPP;
	else
		ret = hpmem_region_add_file(region, file);
	if (!ret) {
		refcount_inc(&region->refs);
		file->private_data = region;
		*flags = region->flags;
		*nr_pages = region->nr_pages;
		*max_pages = region->max_pages;
	}
	mutex_unlock(&hpmem_lock);
	return ret;
}

/*
 * The slots a grow fills: from @first with HPMEM_GROW_AT (all holes, else
 * EEXIST), else after the highest present page. Within @max_pages of a
 * sparse region, HPMEM_REGION_MAX_PAGES of any (ENOSPC). Caller holds
 * hpmem_lock; checked again whenever it was dropped.
 */
static int hpmem_region_fit(struct hpmem_region *region, bool at,
			    unsigned long first, unsigned long nr,
			    unsigned long *base)
{
	unsigned long limit = region->max_pages ?: HPMEM_REGION_MAX_PAGES;
	unsigned long index = first;

	lockdep_assert_held(&hpmem_lock);
	if (!at)
		first = region->end;
	if (first >= limit || nr > limit - first)
		return -ENOSPC;
	if (at && xa_find(&region->pages, &index, first + nr - 1, XA_PRESENT))
		return -EEXIST;
	*base = first;
	return 0;
}

/*
 * Puts @pages (@nr, ascending pfn, all of one node) at indices @base on:
 * in that order for a caller who may see addresses (the library finds
 * IOVA-contiguous runs by offset), shuffled for others, to whom the order
 * of offsets would otherwise disclose the physical order of the pages.
 * The slots are reserved first, so that no store can fail once the first
 * page is visible: a fault may map a page as soon as it is stored (a
 * sparse region's mapping covers holes), so a page must never be stored
 * and then taken back, nor moved by the shuffle. @vec has room for @nr.
 */
static int hpmem_region_place(struct hpmem_region *region,
			      struct list_head *pages, unsigned long nr,
			      unsigned long base, struct page **vec, bool addrs)
{
	unsigned long i = 0, j;
	struct page *page;
	int ret;

	lockdep_assert_held(&hpmem_lock);
	for (i = 0; i < nr; i++) {
		ret = xa_reserve(&region->pages, base + i, GFP_KERNEL);
		if (ret) {
			while (i--)
				xa_release(&region->pages, base + i);
			return ret;
		}
	}
	i = 0;
	list_for_each_entry(page, pages, lru)
		vec[i++] = page;
	/* Fisher-Yates */
	for (i = nr - 1; !addrs && i > 0; i--) {
		j = get_random_u32_below(i + 1);
		swap(vec[i], vec[j]);
	}
	for (i = 0; i < nr; i++)
		xa_store(&region->pages, base + i, vec[i], GFP_KERNEL);
	return 0;
}

int hpmem_region_grow(struct file *file, unsigned int node, u64 nr,
		      u32 flags, u64 *offset)
{
	struct hpmem_pool *pool = hpmem_pool_get(node);
	bool at = flags & HPMEM_GROW_AT;
	unsigned long first = 0, base;
	struct hpmem_charge *charge;
	struct hpmem_region *region;
	struct page **vec;
	LIST_HEAD(pages);
	LIST_HEAD(dirty);
	bool addrs;
	int ret;

	if (!pool)
		return -ENODEV;
	region = READ_ONCE(file->private_data);
	if (!region)
		return -EBADFD;
	if (nr > HPMEM_REGION_MAX_PAGES)
		return -ENOSPC;
	/* @max_pages never changes: no lock needed to read it. */
	if (at) {
		if (!region->max_pages)
			return -EINVAL;
		first = min_t(u64, *offset >> HPMEM_PAGE_SHIFT,
			      HPMEM_REGION_MAX_PAGES);
	}
	addrs = hpmem_caller_sees_addrs(region);

	vec = kvmalloc_array(nr, sizeof(*vec), GFP_KERNEL_ACCOUNT);
	if (!vec)
		return -ENOMEM;
	/* Charged before the pages are taken, so a refusal changes nothing. */
	charge = hpmem_charge_new(nr);
	if (IS_ERR(charge)) {
		kvfree(vec);
		return PTR_ERR(charge);
	}

retry:
	mutex_lock(&hpmem_lock);
	ret = hpmem_region_fit(region, at, first, nr, &base);
	if (ret)
		goto out_unlock;
	ret = hpmem_pool_take(pool, nr, &pages, &dirty, !addrs);
	if (ret == -EAGAIN) {
		hpmem_pool_wait_zeroing(pool);
		goto retry;
	}
	if (ret)
		goto out_unlock;
	if (!list_empty(&dirty)) {
		/*
		 * Too few zeroed pages: this caller zeroes the rest, which are
		 * its own now (counted in use, on no list anyone walks).
		 */
		mutex_unlock(&hpmem_lock);
		hpmem_pages_zero(&dirty);
		list_splice_tail_init(&dirty, &pages);
		list_sort(NULL, &pages, hpmem_page_pfn_cmp);
		mutex_lock(&hpmem_lock);
		/* Another grow of this region may have run meanwhile. */
		ret = hpmem_region_fit(region, at, first, nr, &base);
		if (ret) {
			hpmem_pool_give(&pages);
			goto out_unlock;
		}
	}
	ret = hpmem_region_place(region, &pages, nr, base, vec, addrs);
	if (ret) {
		hpmem_pool_give(&pages);
		goto out_unlock;
	}
	*offset = (u64)base << HPMEM_PAGE_SHIFT;
	region->nr_pages += nr;
	region->end = max(region->end, base + nr);
	region->node_pages[node] += nr;
	if (hpmem_region_mapped(region))
		pool->mapped += nr;
	hpmem_charge_pages(charge, vec, nr);
	hpmem_charge_add(&region->charges, charge);
out_unlock:
	mutex_unlock(&hpmem_lock);
	if (ret)
		hpmem_charge_cancel(charge);
	kvfree(vec);
	return ret;
}

/* Steps back over at most this many holes before walking forward instead. */
#define HPMEM_END_BACK_STEPS	64

/*
 * One past the highest index below @first that holds a page, 0 if none:
 * the region's end after its top pages were released. Under hpmem_lock,
 * which every hpmem caller holds, so this bounds what it costs: a short
 * gap is stepped back over (xas_prev(), no walk from the root per slot);
 * past that the present pages are walked forward, which costs the pages,
 * not the up to HPMEM_REGION_MAX_PAGES empty slots below @first.
 */
static unsigned long hpmem_region_end_below(struct hpmem_region *region,
					    unsigned long first)
{
	XA_STATE(xas, &region->pages, first);
	unsigned long end = 0, n;
	void *entry = NULL;

	lockdep_assert_held(&hpmem_lock);
	if (!first)
		return 0;
	rcu_read_lock();
	xas_set(&xas, first - 1);
	entry = xas_load(&xas);
	for (n = 0; !entry && n < HPMEM_END_BACK_STEPS && xas.xa_index; n++)
		entry = xas_prev(&xas);
	if (entry) {
		end = xas.xa_index + 1;
	} else if (xas.xa_index) {
		xas_set(&xas, 0);
		xas_for_each(&xas, entry, first - 1)
			end = xas.xa_index + 1;
	}
	rcu_read_unlock();
	return end;
}

/*
 * Takes the pages at @first .. @first + @nr - 1 out of @region, onto
 * @gone, with the counters; collects the mappings to zap in *@inodes
 * (referenced). Caller holds fault_lock for writing and hpmem_lock.
 */
static int hpmem_region_remove(struct hpmem_region *region,
			       unsigned long first, unsigned long nr,
			       struct list_head *gone, struct inode ***inodes,
			       unsigned long *nr_inodes)
{
	bool mapped = hpmem_region_mapped(region);
	unsigned long i, id, n = 0;
	struct inode *inode, **vec;
	struct page *page;

	lockdep_assert_held(&hpmem_lock);
	for (i = first; i < first + nr; i++) {
		page = xa_load(&region->pages, i);
		if (!page)
			return -ENOENT;
		/*
		 * A device may be writing it now and will be until it is
		 * unpinned (VFIO unmap): neither hand it to anyone else nor
		 * make it a busy page that may stay so for the pin's life.
		 */
		if (folio_maybe_dma_pinned(page_folio(page)))
			return -EBUSY;
		/* Likewise a dma-buf's importers, until it is released. */
		if (hpmem_page_exported(page))
			return -EBUSY;
	}
	xa_for_each(&region->files, id, inode)
		n++;
	vec = kmalloc_array(max(n, 1UL), sizeof(*vec), GFP_KERNEL);
	if (!vec)
		return -ENOMEM;
	n = 0;
	xa_for_each(&region->files, id, inode) {
		/* Its file holds a reference until it leaves @files. */
		ihold(inode);
		vec[n++] = inode;
	}
	for (i = first; i < first + nr; i++) {
		page = xa_erase(&region->pages, i);
		list_add_tail(&page->lru, gone);
		region->node_pages[page_to_nid(page)]--;
		if (mapped)
			hpmem_pool_get(page_to_nid(page))->mapped--;
	}
	region->nr_pages -= nr;
	if (first + nr == region->end)
		region->end = hpmem_region_end_below(region, first);
	*inodes = vec;
	*nr_inodes = n;
	return 0;
}

/**
 * hpmem_region_release_pages() - HPMEM_IOC_REGION_RELEASE
 * @file: attached to a sparse region
 * @first: page index of the first page
 * @nr: pages (> 0)
 *
 * Return: 0; -EBADFD, -EINVAL, -ENOENT, -EBUSY or -ENOMEM, changing
 * nothing (see the UAPI).
 */
int hpmem_region_release_pages(struct file *file, u64 first, u64 nr)
{
	unsigned long i, nr_inodes = 0;
	struct hpmem_region *region;
	struct inode **inodes;
	struct page *page, *tmp;
	LIST_HEAD(gone);
	LIST_HEAD(busy);
	int ret;

	region = READ_ONCE(file->private_data);
	if (!region)
		return -EBADFD;
	if (!region->max_pages || first >= region->max_pages ||
	    nr > region->max_pages - first)
		return -EINVAL;

	/* No fault maps a page of the range from here on: see mmap.c. */
	down_write(&region->fault_lock);
	mutex_lock(&hpmem_lock);
	ret = hpmem_region_remove(region, first, nr, &gone, &inodes,
				  &nr_inodes);
	mutex_unlock(&hpmem_lock);
	up_write(&region->fault_lock);
	if (ret)
		return ret;

	/*
	 * Every VMA that maps the region is in one of these mappings, linked
	 * there before its first fault (a fork's copy after its parent's, so
	 * that PTEs copied meanwhile are zapped too). Zapping the 4 KiB PTEs
	 * of a pinnable region drops their page references before it returns.
	 */
	for (i = 0; i < nr_inodes; i++) {
		unmap_mapping_range(inodes[i]->i_mapping,
				    (loff_t)first << HPMEM_PAGE_SHIFT,
				    (loff_t)nr << HPMEM_PAGE_SHIFT, 1);
		iput(inodes[i]);
	}
	kfree(inodes);
	/*
	 * A munmap() of a PFN mapping clears its PMDs and takes the VMA out
	 * of its file's mapping (so the zap above no longer sees it) before
	 * it flushes the TLB, and the page reference count does not cover a
	 * PFN mapping: a thread of that process on another CPU may still
	 * reach the page through a stale TLB entry after the page is back in
	 * the pool, in another user's region. Every PMD and PTE of the pages
	 * is clear by now, cleared either by the zap or by that munmap()
	 * before it left the mapping (ordered by i_mmap_rwsem), so after a
	 * flush of every CPU nothing can reach them. Not needed for pinnable
	 * regions: their PTEs hold page references that the munmap() drops
	 * only after its flush, so such a page goes busy below. One IPI per
	 * CPU per release, which is rare.
	 */
	if (!(region->flags & HPMEM_REGION_PINNABLE))
		hpmem_flush_tlb_all();

	/* As hpmem_region_free(): still referenced means busy. */
	list_for_each_entry_safe(page, tmp, &gone, lru)
		if (page_ref_count(page) != 1)
			list_move_tail(&page->lru, &busy);
	mutex_lock(&hpmem_lock);
	hpmem_charges_drop(&region->charges, &gone, &busy);
	/* Dirty pages count as free at once; the work zeroes them. */
	hpmem_pool_give_dirty(&gone);
	hpmem_pool_give_busy(&busy);
	mutex_unlock(&hpmem_lock);
	return 0;
}

static int hpmem_seg_cmp(const void *a, const void *b)
{
	const struct hpmem_seg *sa = a, *sb = b;

	return sa->phys < sb->phys ? -1 : sa->phys > sb->phys;
}

/*
 * Builds the segment table in a kernel buffer (the caller copies it out
 * without hpmem_lock). *@segs holds min(@want, pages) entries, ascending
 * physical address for a caller who may see addresses, else in offset
 * order (which GROW shuffled for it); *@nr_segs is the page count.
 */
int hpmem_region_segs(struct file *file, u32 want, struct hpmem_seg **segs,
		      u32 *nr_segs)
{
	struct hpmem_region *region;
	struct hpmem_seg *table = NULL;
	bool addrs = false;
	u32 dma_model;
	struct page *page;
	unsigned long index, n, i;
	int ret = 0;

	/* Walks the PCI bus, which may sleep: before hpmem_lock. */
	dma_model = hpmem_dma_model(NULL, NULL);

	mutex_lock(&hpmem_lock);
	region = file->private_data;
	if (!region) {
		ret = -EBADFD;
		goto out_unlock;
	}
	addrs = hpmem_caller_sees_addrs(region);
	n = region->nr_pages;
	*nr_segs = n;
	if (!want || !n)
		goto out_unlock;

	/*
	 * The whole table even when fewer are wanted: sorted, the lowest go.
	 * Up to 4 MiB, on any caller's demand: charged to its memory cgroup.
	 */
	table = kvcalloc(n, sizeof(*table), GFP_KERNEL_ACCOUNT);
	if (!table) {
		ret = -ENOMEM;
		goto out_unlock;
	}
	/* Present pages only: a sparse region's holes have no entry. */
	i = 0;
	xa_for_each(&region->pages, index, page) {
		if (WARN_ON_ONCE(i == n))
			break;
		table[i].offset = (u64)index << HPMEM_PAGE_SHIFT;
		table[i].phys = page_to_phys(page);
		table[i].iova = hpmem_page_iova(page, dma_model);
		table[i].node = page_to_nid(page);
		i++;
	}
out_unlock:
	mutex_unlock(&hpmem_lock);
	if (!table)
		return ret;

	if (addrs) {
		sort(table, n, sizeof(*table), hpmem_seg_cmp, NULL);
	} else {
		for (index = 0; index < n; index++) {
			table[index].phys = 0;
			table[index].iova = 0;
		}
	}
	*segs = table;
	return 0;
}

int hpmem_region_destroy(const char *name, u32 name_flags, u32 uid)
{
	struct hpmem_region_key key;
	struct hpmem_region *region;
	bool dead = false;
	int ret;

	ret = hpmem_region_key(&key, name, name_flags, uid);
	if (ret)
		return ret;
	mutex_lock(&hpmem_lock);
	region = hpmem_region_find(&key);
	if (!region)
		ret = -ENOENT;
	else if (hpmem_region_mapped(region))
		ret = -EBUSY;
	if (!ret)
		dead = hpmem_region_unlink(region);
	mutex_unlock(&hpmem_lock);

	if (dead)
		hpmem_region_free(region);
	return ret;
}

/* The file is closing: it no longer uses its region. */
void hpmem_region_release(struct file *file)
{
	struct hpmem_region *region = file->private_data;
	bool dead = false;

	if (!region)
		return;
	mutex_lock(&hpmem_lock);
	hpmem_region_del_file(region, file);
	/* A persistent region in the table holds a reference of its own. */
	if (refcount_dec_and_test(&region->refs)) {
		if (region->linked)
			hpmem_region_unlink(region);
		dead = true;
	}
	mutex_unlock(&hpmem_lock);

	if (dead)
		hpmem_region_free(region);
}

static void hpmem_region_account_mapped(struct hpmem_region *region,
					bool mapped)
{
	struct hpmem_pool *pool;
	int nid;

	for (nid = 0; nid < nr_node_ids; nid++) {
		if (!region->node_pages[nid])
			continue;
		pool = hpmem_pool_get(nid);
		if (mapped)
			pool->mapped += region->node_pages[nid];
		else
			pool->mapped -= region->node_pages[nid];
	}
}

/* A VMA starts mapping @region (mmap, fork, split). */
void hpmem_region_map_get(struct hpmem_region *region)
{
	mutex_lock(&hpmem_lock);
	refcount_inc(&region->maps);
	if (refcount_read(&region->maps) == 2)
		hpmem_region_account_mapped(region, true);
	mutex_unlock(&hpmem_lock);
}

void hpmem_region_map_put(struct hpmem_region *region)
{
	mutex_lock(&hpmem_lock);
	refcount_dec(&region->maps);
	if (!hpmem_region_mapped(region))
		hpmem_region_account_mapped(region, false);
	mutex_unlock(&hpmem_lock);
}

struct page *hpmem_region_page(struct hpmem_region *region, pgoff_t index)
{
	return xa_load(&region->pages, index);
}

/*
 * One line per region. The name comes last, non-printable bytes escaped,
 * because it may contain spaces. Truncated at PAGE_SIZE: the complete list
 * is HPMEM_IOC_REGION_LIST's.
 */
ssize_t hpmem_regions_show(char *buf)
{
	struct hpmem_region *region;
	int len = 0, nid, start;
	unsigned long id;

	mutex_lock(&hpmem_lock);
	xa_for_each(&hpmem_ids, id, region) {
		start = len;
		len += sysfs_emit_at(buf, len,
				     "users=%u maps=%u persistent=%d pinnable=%d pages=%lu",
				     hpmem_region_users(region),
				     refcount_read(&region->maps) - 1,
				     !!(region->flags & HPMEM_REGION_PERSISTENT),
				     !!(region->flags & HPMEM_REGION_PINNABLE),
				     region->nr_pages);
		for (nid = 0; nid < nr_node_ids; nid++)
			if (hpmem_pool_get(nid))
				len += sysfs_emit_at(buf, len, " node%d=%lu", nid,
						     region->node_pages[nid]);
		len += sysfs_emit_at(buf, len, " uid=%u name=%*pE\n",
				     from_kuid_munged(current_user_ns(),
						      region->key.uid),
				     (int)strlen(region->key.name),
				     region->key.name);
		/* sysfs_emit_at() stops at PAGE_SIZE: drop a partial line. */
		if (len >= PAGE_SIZE - 1 || buf[len - 1] != '\n') {
			len = start;
			break;
		}
	}
	mutex_unlock(&hpmem_lock);
	return len;
}

/*
 * Pages of @region that a pin_user_pages() pin holds now (VFIO type1,
 * io_uring fixed buffers, RDMA). Each page is one compound folio, whose
 * pin count is exact: a GUP pin of any of its 4 KiB subpages shows.
 * Caller holds hpmem_lock (the page set cannot change).
 */
static unsigned long hpmem_region_dma_pinned(struct hpmem_region *region)
{
	unsigned long index, n = 0;
	struct page *page;

	lockdep_assert_held(&hpmem_lock);
	xa_for_each(&region->pages, index, page)
		if (folio_maybe_dma_pinned(page_folio(page)))
			n++;
	return n;
}

/* Regions skipped (other uids') between two chances to reschedule. */
#define HPMEM_LIST_SKIP_BATCH	1024

/**
 * hpmem_region_list() - a batch of HPMEM_IOC_REGION_LIST entries
 * @cursor: the first id to list
 * @entry_size: bytes per entry, a multiple of 8, at least the fixed part
 * @want: entries wanted (> 0)
 * @entries: out, a kvmalloc()ed buffer of *@nr entries, for the caller to
 *           copy out without hpmem_lock and free
 * @nr: out, entries filled, at most @want (fewer to bound the buffer)
 * @next: out, the cursor of the next call
 *
 * A caller without CAP_SYS_ADMIN gets the regions of its euid only. That
 * selects what is shown, it refuses nothing: not audited.
 *
 * Return: 0, -ENOMEM, or -EINTR when the caller was killed while the walk
 * skipped other uids' regions.
 */
int hpmem_region_list(u64 cursor, u32 entry_size, u32 want, void **entries,
		      u32 *nr, u64 *next)
{
	unsigned int nodes = (entry_size - sizeof(struct hpmem_region_entry)) /
			     sizeof(u64);
	bool all = ns_capable_noaudit(&init_user_ns, CAP_SYS_ADMIN);
	kuid_t euid = current_euid();
	struct hpmem_region_entry *e;
	struct hpmem_region *region;
	unsigned int nid, skipped = 0;
	unsigned long id;
	u32 n = 0;
	void *buf;

	/* 256 KiB at most per call: userspace calls again. */
	want = min(want, max(1U, SZ_256K / entry_size));
	buf = kvcalloc(want, entry_size, GFP_KERNEL_ACCOUNT);
	if (!buf)
		return -ENOMEM;
	*next = cursor;
	if (cursor > U32_MAX)
		goto out;

	mutex_lock(&hpmem_lock);
	xa_for_each_start(&hpmem_ids, id, region, cursor) {
		if (n == want)
			break;
		if (!all && !uid_eq(region->key.uid, euid)) {
			/*
			 * @next moves past listed regions only: past skipped
			 * ones, the cursor of a walk that ends would tell the
			 * highest id of another uid's live regions. Those may
			 * be many (root's are not capped): let others at the
			 * lock now and then. The walk resumes after @id, so
			 * nothing is listed twice.
			 */
			if (++skipped % HPMEM_LIST_SKIP_BATCH == 0) {
				mutex_unlock(&hpmem_lock);
				/* Killed: no one will read the batch. */
				if (fatal_signal_pending(current)) {
					kvfree(buf);
					return -EINTR;
				}
				cond_resched();
				mutex_lock(&hpmem_lock);
			}
			continue;
		}
		e = buf + (size_t)n * entry_size;
		memcpy(e->name, region->key.name, sizeof(e->name));
		e->flags = region->flags;
		e->uid = from_kuid_munged(current_user_ns(), region->key.uid);
		e->users = hpmem_region_users(region);
		e->maps = refcount_read(&region->maps) - 1;
		e->id = id;
		e->nr_pages = region->nr_pages;
		e->dma_pinned = hpmem_region_dma_pinned(region);
		for (nid = 0; nid < nodes && nid < nr_node_ids; nid++)
			e->node_pages[nid] = region->node_pages[nid];
		*next = (u64)id + 1;
		n++;
	}
	mutex_unlock(&hpmem_lock);
out:
	*entries = buf;
	*nr = n;
	return 0;
}

/* Module unload: no file is open, only persistent regions remain. */
void hpmem_region_exit(void)
{
	struct hpmem_region *region;
	unsigned long id = 0;

	for (;;) {
		mutex_lock(&hpmem_lock);
		region = xa_find(&hpmem_ids, &id, ULONG_MAX, XA_PRESENT);
		/* Only the table holds what is left (no file is open). */
		if (region)
			WARN_ON(!hpmem_region_unlink(region));
		mutex_unlock(&hpmem_lock);
		if (!region)
			break;
		hpmem_region_free(region);
	}
	rhashtable_destroy(&hpmem_names);
	/* A dma-buf holds the module: none is left. */
	WARN_ON(!xa_empty(&hpmem_exported));
	xa_destroy(&hpmem_exported);
	WARN_ON(!xa_empty(&hpmem_user_regions));
	xa_destroy(&hpmem_user_regions);
}
