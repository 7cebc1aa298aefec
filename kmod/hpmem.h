/* SPDX-License-Identifier: GPL-2.0 */
/* hpmem.ko internals shared by its files: pools, regions, mmap, sysfs. */
#ifndef HPMEM_PRIV_H
#define HPMEM_PRIV_H

#include <linux/bits.h>
#include <linux/fs.h>
#include <linux/list.h>
#include <linux/mm.h>
#include <linux/mutex.h>
#include <linux/refcount.h>
#include <linux/rhashtable-types.h>
#include <linux/rwsem.h>
#include <linux/types.h>
#include <linux/uidgid.h>
#include <linux/xarray.h>
#include <linux/io.h>
#include <uapi/linux/hpmem.h>

/* One hpmem page is an order-9 compound page: 512 pages of 4 KiB. */
#define HPMEM_ORDER		(HPMEM_PAGE_SHIFT - PAGE_SHIFT)
#define HPMEM_SUBPAGES		BIT(HPMEM_ORDER)

/*
 * hpmem_lock protects the region table, every region's page set and
 * counters, and every pool's free list and counters. It nests inside
 * mmap_lock (VMA open/close take it), so nothing that holds it may fault on
 * user memory or take an mmap_lock: user copies and RLIMIT_MEMLOCK
 * accounting happen outside it. The fault path does not take it: it looks
 * pages up with xa_load() (RCU-safe) under the region's fault_lock, read
 * side, which HPMEM_IOC_REGION_RELEASE takes for writing around removing
 * pages (see hpmem_fault_lock()). Order: mmap_lock, fault_lock, hpmem_lock;
 * nothing is zapped (i_mmap_rwsem) under either of the last two.
 */
extern struct mutex hpmem_lock;

/**
 * struct hpmem_pool - the 2 MiB pages hpmem holds on one node
 * @node: the node id
 * @free: zeroed pages in no region, linked by page->lru, ascending pfn
 * @dirty: pages of dead regions that no one else references, not zeroed
 *         yet, linked by page->lru; the zeroing work moves them to @free,
 *         a grow short of zeroed pages takes and zeroes them itself
 * @busy: pages of dead regions that something outside hpmem still
 *        references (a GUP pin, a pipe buffer), linked by page->lru; never
 *        handed out until the pool's reference is the only one left
 * @total: pages held (free + dirty + in use + busy)
 * @nr_free: pages on @free
 * @nr_dirty: dirty pages, on @dirty or being zeroed by the work
 * @nr_zeroing: of @nr_dirty, those the work is zeroing now (off @dirty)
 * @zeroed: batches the work has finished, for hpmem_pool_wait_zeroing()
 * @inuse: pages in regions
 * @nr_busy: busy pages, on @busy
 * @mapped: pages of regions that at least one VMA maps
 * @index: every page the pool holds, by pfn >> HPMEM_ORDER; those on @free
 *         carry HPMEM_FREE_MARK, so that a page finds its place in @free
 *         (before the next free page by pfn) in O(log n) under hpmem_lock,
 *         not by re-sorting the list
 */
struct hpmem_pool {
	int node;
	struct list_head free;
	struct list_head dirty;
	struct list_head busy;
	unsigned long total;
	unsigned long nr_free;
	unsigned long nr_dirty;
	unsigned long nr_zeroing;
	unsigned long zeroed;
	unsigned long inuse;
	unsigned long nr_busy;
	unsigned long mapped;
	struct xarray index;
};

/**
 * struct hpmem_region_key - what a region is found by
 * @uid: effective uid of the creator: names are per uid
 * @name: NUL-terminated, zero-padded (the key is compared as bytes)
 */
struct hpmem_region_key {
	kuid_t uid;
	char name[HPMEM_NAME_MAX];
};

/**
 * struct hpmem_region - a named set of pages
 * @node: in the name table while @linked
 * @key: creator's uid and name; others reach it with CAP_SYS_ADMIN only
 * @id: in the id table (HPMEM_IOC_REGION_LIST) while @linked
 * @flags: HPMEM_REGION_*
 * @linked: findable by name (until destroyed, or until its last user goes
 *          if it is not persistent)
 * @refs: one per attached file (a mapping holds its file), plus one while
 *        a persistent region is @linked; the region dies at zero. Only
 *        taken on a region that is in the table or attached, so it never
 *        rises from zero
 * @maps: one plus the VMAs mapping it (biased so that the first mmap does
 *        not raise a refcount_t from zero); see hpmem_region_mapped()
 * @nr_pages: pages in it (present; a sparse region's holes do not count)
 * @end: one past the highest index that holds a page (0 when empty):
 *       where GROW without HPMEM_GROW_AT appends; @nr_pages unless sparse
 * @max_pages: slots reserved at creation, 0 for a region without holes
 *             (see DOC: sparse regions); never changes
 * @node_pages: pages in it per node, nr_node_ids entries
 * @pages: page index -> struct page * (head of the compound page)
 * @fault_lock: faults hold it shared from looking a page up to mapping it,
 *              a release exclusive while it removes pages
 * @files: the inodes behind the f_mapping of the attached files (the
 *         mappings a release zaps), by an id kept in their i_private
 * @charges: struct hpmem_charge, one per user whose RLIMIT_MEMLOCK the
 *           pages count against; each page names its user in
 *           page->private (see hpmem_charge_pages())
 */
struct hpmem_region {
	struct rhash_head node;
	struct hpmem_region_key key;
	u32 id;
	u32 flags;
	bool linked;
	refcount_t refs;
	refcount_t maps;
	unsigned long nr_pages;
	unsigned long end;
	unsigned long max_pages;
	unsigned long *node_pages;
	struct xarray pages;
	struct rw_semaphore fault_lock;
	struct xarray files;
	struct list_head charges;
};

/* pool.c */
int hpmem_pool_init(void);
void hpmem_pool_exit(void);
struct hpmem_pool *hpmem_pool_get(unsigned int node);
u64 hpmem_pool_node_mask(void);
unsigned long hpmem_pool_max_pages(void);
int hpmem_pool_resize(unsigned int node, u64 target, u64 *total);
int hpmem_pool_take(struct hpmem_pool *pool, unsigned long nr,
		    struct list_head *pages, struct list_head *dirty,
		    bool anywhere);
void hpmem_pool_wait_zeroing(struct hpmem_pool *pool);
void hpmem_pool_give(struct list_head *pages);
void hpmem_pool_give_dirty(struct list_head *pages);
void hpmem_pool_give_busy(struct list_head *pages);
void hpmem_pages_zero(struct list_head *pages);
int hpmem_page_pfn_cmp(void *priv, const struct list_head *a,
		       const struct list_head *b);

/* memlock.c */
struct hpmem_charge;
struct hpmem_charge *hpmem_charge_new(unsigned long nr);
void hpmem_charge_cancel(struct hpmem_charge *charge);
void hpmem_charge_add(struct list_head *charges, struct hpmem_charge *charge);
void hpmem_charge_pages(struct hpmem_charge *charge, struct page **vec,
			unsigned long nr);
void hpmem_charges_release(struct list_head *charges, struct list_head *back,
			   struct list_head *busy);
void hpmem_charges_drop(struct list_head *charges, struct list_head *gone,
			struct list_head *busy);
void hpmem_page_uncharge(struct page *page);

/* region.c */
int hpmem_region_init(void);
int hpmem_region_create(struct file *file, const char *name, u32 flags,
			u64 max_pages);
int hpmem_region_attach(struct file *file, const char *name, u32 name_flags,
			u32 uid, bool sparse_ok, u32 *flags, u64 *nr_pages,
			u64 *max_pages);
int hpmem_region_grow(struct file *file, unsigned int node, u64 nr,
		      u32 flags, u64 *offset);
int hpmem_region_release_pages(struct file *file, u64 first, u64 nr);
int hpmem_region_segs(struct file *file, u32 want, struct hpmem_seg **segs,
		      u32 *nr_segs);
int hpmem_region_destroy(const char *name, u32 name_flags, u32 uid);
int hpmem_region_list(u64 cursor, u32 entry_size, u32 want, void **entries,
		      u32 *nr, u64 *next);
void hpmem_region_release(struct file *file);
void hpmem_region_map_get(struct hpmem_region *region);
void hpmem_region_map_put(struct hpmem_region *region);
struct page *hpmem_region_page(struct hpmem_region *region, pgoff_t index);
int hpmem_page_export(struct page *page);
void hpmem_page_unexport(struct page *page);
ssize_t hpmem_regions_show(char *buf);
void hpmem_region_exit(void);
bool hpmem_caller_sees_addrs(struct hpmem_region *region);

/* mmap.c */
int hpmem_mmap_init(void);
void hpmem_mmap_exit(void);
int hpmem_mmap_open(struct file *file);
void hpmem_mmap_close(struct file *file);
int hpmem_mmap(struct file *file, struct vm_area_struct *vma);
bool hpmem_pmd_fault_pgoff(struct vm_fault *vmf, pgoff_t *pgoff);
unsigned long hpmem_get_unmapped_area(struct file *file, unsigned long addr,
				      unsigned long len, unsigned long pgoff,
				      unsigned long flags);

/* ioctl.c */
long hpmem_ioctl(struct file *file, unsigned int cmd, unsigned long arg);

/* dmabuf.c (a stub in compat.h without CONFIG_DMA_SHARED_BUFFER) */
#if IS_ENABLED(CONFIG_DMA_SHARED_BUFFER)
int hpmem_region_export(struct file *file, void *arg);
#endif

/* dma.c */
u32 hpmem_dma_model(u32 *translated, u32 *direct);

/* sysfs.c */
const struct attribute_group **hpmem_sysfs_init(void);
void hpmem_sysfs_exit(void);

/*
 * The address a device uses to reach @page under @dma_model (from
 * hpmem_dma_model()). Without an IOMMU, or with every device in an identity
 * domain, that is the physical address. When an IOMMU translates, only
 * whoever mapped the page for a device (VFIO, in userspace) knows its IOVA:
 * 0 means unknown. This is the one place to change when per-device IOVAs
 * (dma_map_page() for a named device) arrive.
 */
static inline u64 hpmem_page_iova(struct page *page, u32 dma_model)
{
	if (dma_model == HPMEM_DMA_TRANSLATED)
		return 0;
	return page_to_phys(page);
}

#endif /* HPMEM_PRIV_H */
