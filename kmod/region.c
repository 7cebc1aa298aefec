// SPDX-License-Identifier: GPL-2.0
/*
 * Named regions: sets of pool pages that processes attach to by name, with
 * their lifetime and permissions.
 */
#include <linux/capability.h>
#include <linux/cred.h>
#include <linux/err.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/sort.h>
#include <linux/string.h>
#include <linux/sysfs.h>
#include <linux/vmalloc.h>

#include "hpmem.h"

static bool phys_unprivileged;
module_param(phys_unprivileged, bool, 0644);
MODULE_PARM_DESC(phys_unprivileged,
		 "Report physical addresses and IOVAs of their own regions to callers without CAP_SYS_ADMIN (default: N)");

static LIST_HEAD(hpmem_regions);

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
	       (!region || uid_eq(current_euid(), region->uid));
}

static struct hpmem_region *hpmem_region_find(const char *name)
{
	struct hpmem_region *region;

	lockdep_assert_held(&hpmem_lock);
	list_for_each_entry(region, &hpmem_regions, link)
		if (!strcmp(region->name, name))
			return region;
	return NULL;
}

static bool hpmem_region_permitted(struct hpmem_region *region)
{
	return uid_eq(current_euid(), region->uid) || capable(CAP_SYS_ADMIN);
}

/*
 * Takes the region out of the name table. Returns true when that dropped
 * the last reference (a persistent region nobody has attached).
 */
static bool hpmem_region_unlink(struct hpmem_region *region)
{
	lockdep_assert_held(&hpmem_lock);
	list_del(&region->link);
	region->linked = false;
	if (region->flags & HPMEM_REGION_PERSISTENT)
		return refcount_dec_and_test(&region->refs);
	return false;
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
	 * busy. A page nobody else references cannot gain a reference now
	 * and is zeroed here, before it can reach another region.
	 */
	xa_for_each(&region->pages, index, page) {
		if (page_ref_count(page) == 1) {
			hpmem_page_zero(page);
			list_add_tail(&page->lru, &back);
		} else {
			list_add_tail(&page->lru, &busy);
		}
	}

	/* Busy pages stay charged until they return to the pool. */
	hpmem_charges_release(&region->charges, &busy);

	mutex_lock(&hpmem_lock);
	hpmem_pool_give(&back);
	hpmem_pool_give_busy(&busy);
	mutex_unlock(&hpmem_lock);

	xa_destroy(&region->pages);
	kfree(region->node_pages);
	kfree(region);
}

int hpmem_region_create(struct file *file, const char *name, u32 flags)
{
	struct hpmem_region *region;
	int ret = 0;

	region = kzalloc(sizeof(*region), GFP_KERNEL);
	if (!region)
		return -ENOMEM;
	region->node_pages = kcalloc(nr_node_ids, sizeof(*region->node_pages),
				     GFP_KERNEL);
	if (!region->node_pages) {
		kfree(region);
		return -ENOMEM;
	}
	strscpy(region->name, name, sizeof(region->name));
	region->flags = flags;
	region->uid = current_euid();
	/* The file, and the name table for a persistent region. */
	refcount_set(&region->refs,
		     flags & HPMEM_REGION_PERSISTENT ? 2 : 1);
	refcount_set(&region->maps, 1);
	xa_init(&region->pages);
	INIT_LIST_HEAD(&region->charges);

	mutex_lock(&hpmem_lock);
	if (file->private_data)
		ret = -EALREADY;
	else if (hpmem_region_find(name))
		ret = -EEXIST;
	if (!ret) {
		list_add_tail(&region->link, &hpmem_regions);
		region->linked = true;
		file->private_data = region;
	}
	mutex_unlock(&hpmem_lock);

	if (ret) {
		kfree(region->node_pages);
		kfree(region);
	}
	return ret;
}

int hpmem_region_attach(struct file *file, const char *name, u32 *flags,
			u64 *nr_pages)
{
	struct hpmem_region *region;
	int ret = 0;

	mutex_lock(&hpmem_lock);
	region = hpmem_region_find(name);
	if (file->private_data)
		ret = -EALREADY;
	else if (!region)
		ret = -ENOENT;
	else if (!hpmem_region_permitted(region))
		ret = -EPERM;
	if (!ret) {
		refcount_inc(&region->refs);
		file->private_data = region;
		*flags = region->flags;
		*nr_pages = region->nr_pages;
	}
	mutex_unlock(&hpmem_lock);
	return ret;
}

/* Adds @pages (ascending pfn, all of one node) at the region's end. */
static int hpmem_region_append(struct hpmem_region *region,
			       struct list_head *pages)
{
	unsigned long index = region->nr_pages;
	struct page *page;
	int ret;

	list_for_each_entry(page, pages, lru) {
		ret = xa_err(xa_store(&region->pages, index, page, GFP_KERNEL));
		if (ret) {
			while (index-- > region->nr_pages)
				xa_erase(&region->pages, index);
			return ret;
		}
		index++;
	}
	return 0;
}

int hpmem_region_grow(struct file *file, unsigned int node, u64 nr,
		      u64 *offset)
{
	struct hpmem_pool *pool = hpmem_pool_get(node);
	struct hpmem_charge *charge;
	struct hpmem_region *region;
	LIST_HEAD(pages);
	int ret;

	if (!pool)
		return -ENODEV;
	region = READ_ONCE(file->private_data);
	if (!region)
		return -EBADFD;
	if (nr > HPMEM_REGION_MAX_PAGES)
		return -ENOSPC;

	/* Charged before the pages are taken, so a refusal changes nothing. */
	charge = hpmem_charge_new(nr);
	if (IS_ERR(charge))
		return PTR_ERR(charge);

	mutex_lock(&hpmem_lock);
	if (region->nr_pages + nr > HPMEM_REGION_MAX_PAGES) {
		ret = -ENOSPC;
		goto out_unlock;
	}
	ret = hpmem_pool_take(pool, nr, &pages);
	if (ret)
		goto out_unlock;
	ret = hpmem_region_append(region, &pages);
	if (ret) {
		hpmem_pool_give(&pages);
		goto out_unlock;
	}
	*offset = (u64)region->nr_pages << HPMEM_PAGE_SHIFT;
	region->nr_pages += nr;
	region->node_pages[node] += nr;
	if (hpmem_region_mapped(region))
		pool->mapped += nr;
	hpmem_charge_add(&region->charges, charge);
out_unlock:
	mutex_unlock(&hpmem_lock);
	if (ret)
		hpmem_charge_cancel(charge);
	return ret;
}

static int hpmem_seg_cmp(const void *a, const void *b)
{
	const struct hpmem_seg *sa = a, *sb = b;

	return sa->phys < sb->phys ? -1 : sa->phys > sb->phys;
}

/*
 * Builds the segment table in a kernel buffer (the caller copies it out
 * without hpmem_lock). *@segs holds min(@want, pages) entries, ascending
 * physical address; *@nr_segs is the page count.
 */
int hpmem_region_segs(struct file *file, u32 want, struct hpmem_seg **segs,
		      u32 *nr_segs)
{
	struct hpmem_region *region;
	struct hpmem_seg *table = NULL;
	bool addrs = false;
	u32 dma_model;
	struct page *page;
	unsigned long index, n;
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

	/* All pages are sorted even when fewer are wanted: the lowest go. */
	table = kvcalloc(n, sizeof(*table), GFP_KERNEL);
	if (!table) {
		ret = -ENOMEM;
		goto out_unlock;
	}
	xa_for_each(&region->pages, index, page) {
		table[index].offset = (u64)index << HPMEM_PAGE_SHIFT;
		table[index].phys = page_to_phys(page);
		table[index].iova = hpmem_page_iova(page, dma_model);
		table[index].node = page_to_nid(page);
	}
out_unlock:
	mutex_unlock(&hpmem_lock);
	if (!table)
		return ret;

	sort(table, n, sizeof(*table), hpmem_seg_cmp, NULL);
	if (!addrs) {
		for (index = 0; index < n; index++) {
			table[index].phys = 0;
			table[index].iova = 0;
		}
	}
	*segs = table;
	return 0;
}

int hpmem_region_destroy(const char *name)
{
	struct hpmem_region *region;
	bool dead = false;
	int ret = 0;

	mutex_lock(&hpmem_lock);
	region = hpmem_region_find(name);
	if (!region)
		ret = -ENOENT;
	else if (!hpmem_region_permitted(region))
		ret = -EPERM;
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
 * because it may contain spaces. Truncated at PAGE_SIZE.
 */
ssize_t hpmem_regions_show(char *buf)
{
	struct hpmem_region *region;
	int len = 0, nid, start;

	mutex_lock(&hpmem_lock);
	list_for_each_entry(region, &hpmem_regions, link) {
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
		len += sysfs_emit_at(buf, len, " name=%*pE\n",
				     (int)strlen(region->name), region->name);
		/* sysfs_emit_at() stops at PAGE_SIZE: drop a partial line. */
		if (len >= PAGE_SIZE - 1 || buf[len - 1] != '\n') {
			len = start;
			break;
		}
	}
	mutex_unlock(&hpmem_lock);
	return len;
}

/* Module unload: no file is open, only persistent regions remain. */
void hpmem_region_exit(void)
{
	struct hpmem_region *region;

	for (;;) {
		mutex_lock(&hpmem_lock);
		region = list_first_entry_or_null(&hpmem_regions,
						  struct hpmem_region, link);
		/* Only the table holds what is left (no file is open). */
		if (region)
			WARN_ON(!hpmem_region_unlink(region));
		mutex_unlock(&hpmem_lock);
		if (!region)
			break;
		hpmem_region_free(region);
	}
}
