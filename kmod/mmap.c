// SPDX-License-Identifier: GPL-2.0
/*
 * Mapping regions: 2 MiB PFN PMDs for default regions, refcounted 4 KiB
 * pages that get_user_pages() accepts for pinnable ones.
 */
#include <linux/fs.h>
#include <linux/fs_context.h>
#include <linux/huge_mm.h>
#include <linux/mman.h>
#include <linux/mm.h>
#include <linux/pagemap.h>
#include <linux/pseudo_fs.h>
#include <linux/slab.h>

#include "hpmem.h"
#include "compat.h"

#define HPMEM_FS_MAGIC	0x68706d65	/* "hpme" */

/*
 * Every open file gets an inode of its own on this mount, behind its
 * f_mapping: its S_DAX flag is what makes 6.1 offer our VM_PFNMAP VMAs to
 * ->huge_fault() (vma_is_dax()), as device-dax does, and its address_space
 * tracks the VMAs of that file only, so that releasing a region's pages
 * (unmap_mapping_range() on each attached file's mapping) zaps that
 * region's mappings and no other region's. One per file rather than one
 * per region because f_mapping is read by mmap() before ->mmap() runs (the
 * writable-mapping count): it must not change after open, when the file
 * has no region yet.
 */
static struct vfsmount *hpmem_mnt;

static int hpmem_fs_init_fs_context(struct fs_context *fc)
{
	return init_pseudo(fc, HPMEM_FS_MAGIC) ? 0 : -ENOMEM;
}

/* No .owner: the module's own mount must not pin the module. */
static struct file_system_type hpmem_fs_type = {
	.name		= "hpmem",
	.init_fs_context = hpmem_fs_init_fs_context,
	.kill_sb	= kill_anon_super,
};

int hpmem_mmap_init(void)
{
	BUILD_BUG_ON(PMD_SHIFT != HPMEM_PAGE_SHIFT);

	hpmem_mnt = kern_mount(&hpmem_fs_type);
	return PTR_ERR_OR_ZERO(hpmem_mnt);
}

void hpmem_mmap_exit(void)
{
	kern_unmount(hpmem_mnt);
}

int hpmem_mmap_open(struct file *file)
{
	struct inode *inode = alloc_anon_inode(hpmem_mnt->mnt_sb);

	if (IS_ERR(inode))
		return PTR_ERR(inode);
	inode->i_flags |= S_DAX;
	file->f_mapping = inode->i_mapping;
	file->f_wb_err = filemap_sample_wb_err(file->f_mapping);
	return 0;
}

/* The file is closing: no VMA maps it any more. */
void hpmem_mmap_close(struct file *file)
{
	iput(file->f_mapping->host);
}

/*
 * Why faults take the region's fault_lock (shared) around lookup and
 * insert: HPMEM_IOC_REGION_RELEASE takes it exclusive around removing
 * pages from the region, then zaps them from every mapping. A fault that
 * found the page before the removal has inserted it before the exclusive
 * lock is granted, so the zap that follows takes it out again; a fault
 * after the removal finds a hole. Without the lock, a fault could look the
 * page up, lose the CPU across the removal and the zap, and then map a
 * page that is back in the pool, for as long as the VMA lives.
 */
static void hpmem_fault_lock(struct vm_fault *vmf)
{
	struct hpmem_region *region = vmf->vma->vm_private_data;

	down_read(&region->fault_lock);
}

static void hpmem_fault_unlock(struct vm_fault *vmf)
{
	struct hpmem_region *region = vmf->vma->vm_private_data;

	up_read(&region->fault_lock);
}

/* The page behind @pgoff, or NULL for a hole; under hpmem_fault_lock(). */
static struct page *hpmem_fault_page(struct vm_fault *vmf, pgoff_t pgoff)
{
	struct hpmem_region *region = vmf->vma->vm_private_data;

	return hpmem_region_page(region, pgoff >> HPMEM_ORDER);
}

/*
 * The offset of the 2 MiB page a PMD fault at @vmf would map, or false when
 * the VMA cannot take a PMD there and 4 KiB faults must serve it.
 */
bool hpmem_pmd_fault_pgoff(struct vm_fault *vmf, pgoff_t *pgoff)
{
	struct vm_area_struct *vma = vmf->vma;
	unsigned long haddr = vmf->address & PMD_MASK;

	if (haddr < vma->vm_start || haddr + PMD_SIZE > vma->vm_end)
		return false;
	*pgoff = linear_page_index(vma, haddr);
	/* Moved by mremap() off a 2 MiB boundary: 4 KiB PTEs still work. */
	return !(*pgoff & (HPMEM_SUBPAGES - 1));
}

/* Maps the whole 2 MiB page behind the fault with one PMD. */
vm_fault_t hpmem_pmd_fault(struct vm_fault *vmf)
{
	vm_fault_t ret = VM_FAULT_SIGBUS;
	struct page *page;
	pgoff_t pgoff;

	if (!hpmem_pmd_fault_pgoff(vmf, &pgoff))
		return VM_FAULT_FALLBACK;
	hpmem_fault_lock(vmf);
	page = hpmem_fault_page(vmf, pgoff);
	if (page)
		ret = vmf_insert_pfn_pmd(vmf,
					 hpmem_pmd_pfn_t(page_to_pfn(page)),
					 vmf->flags & FAULT_FLAG_WRITE);
	hpmem_fault_unlock(vmf);
	return ret;
}

/* 4 KiB faults of a huge region: a VMA too small or misaligned for PMDs. */
static vm_fault_t hpmem_pfn_fault(struct vm_fault *vmf)
{
	vm_fault_t ret = VM_FAULT_SIGBUS;
	struct page *page;

	hpmem_fault_lock(vmf);
	page = hpmem_fault_page(vmf, vmf->pgoff);
	if (page) {
		page = nth_page(page, vmf->pgoff & (HPMEM_SUBPAGES - 1));
		ret = vmf_insert_pfn(vmf->vma, vmf->address & PAGE_MASK,
				     page_to_pfn(page));
	}
	hpmem_fault_unlock(vmf);
	return ret;
}

/*
 * Maps every 4 KiB subpage of the faulting 2 MiB page @head that the VMA
 * covers, so that a sparse region's page costs one fault, not 512. Stops
 * at a subpage that is mapped already (-EBUSY), having mapped those before.
 */
static int hpmem_map_around(struct vm_fault *vmf, struct page *head)
{
	struct vm_area_struct *vma = vmf->vma;
	pgoff_t first = vmf->pgoff & ~(pgoff_t)(HPMEM_SUBPAGES - 1);
	pgoff_t lo = max_t(pgoff_t, first, vma->vm_pgoff);
	pgoff_t hi = min_t(pgoff_t, first + HPMEM_SUBPAGES,
			   vma->vm_pgoff + vma_pages(vma));
	unsigned long nr = hi - lo, i;
	struct page **subpages;
	int ret;

	subpages = kmalloc_array(nr, sizeof(*subpages), GFP_KERNEL);
	if (!subpages)
		return -ENOMEM;
	for (i = 0; i < nr; i++)
		subpages[i] = nth_page(head, lo - first + i);
	ret = vm_insert_pages(vma, vma->vm_start +
			      ((lo - vma->vm_pgoff) << PAGE_SHIFT),
			      subpages, &nr);
	kfree(subpages);
	return ret;
}

/*
 * A pinnable region's PTE was zapped (MADV_DONTNEED, a release), or never
 * filled (a sparse region's, see hpmem_mmap()): map the 2 MiB page around
 * it, or if part of it is mapped already, the 4 KiB page alone.
 */
static vm_fault_t hpmem_page_fault(struct vm_fault *vmf)
{
	struct page *page;
	int ret = -EFAULT;

	hpmem_fault_lock(vmf);
	page = hpmem_fault_page(vmf, vmf->pgoff);
	if (page && hpmem_map_around(vmf, page)) {
		page = nth_page(page, vmf->pgoff & (HPMEM_SUBPAGES - 1));
		ret = vm_insert_page(vmf->vma, vmf->address & PAGE_MASK, page);
	} else if (page) {
		ret = 0;
	}
	hpmem_fault_unlock(vmf);
	if (ret == -ENOMEM)
		return VM_FAULT_OOM;
	/* -EBUSY: another thread mapped it first */
	if (ret && ret != -EBUSY)
		return VM_FAULT_SIGBUS;
	return VM_FAULT_NOPAGE;
}

static void hpmem_vm_open(struct vm_area_struct *vma)
{
	hpmem_region_map_get(vma->vm_private_data);
}

static void hpmem_vm_close(struct vm_area_struct *vma)
{
	hpmem_region_map_put(vma->vm_private_data);
}

/* Splitting a PMD-mapped VMA inside a 2 MiB page would split the page. */
static int hpmem_vm_may_split(struct vm_area_struct *vma, unsigned long addr)
{
	if (!IS_ALIGNED(addr, HPMEM_PAGE_SIZE))
		return -EINVAL;
	return 0;
}

static const struct vm_operations_struct hpmem_huge_vm_ops = {
	.open		= hpmem_vm_open,
	.close		= hpmem_vm_close,
	.may_split	= hpmem_vm_may_split,
	.fault		= hpmem_pfn_fault,
	.huge_fault	= hpmem_huge_fault,
};

static const struct vm_operations_struct hpmem_pinnable_vm_ops = {
	.open		= hpmem_vm_open,
	.close		= hpmem_vm_close,
	.fault		= hpmem_page_fault,
};

/*
 * Maps every 4 KiB page of a pinnable VMA now, while mmap_lock is held for
 * writing, so that it costs no faults later.
 */
static int hpmem_insert_pages(struct vm_area_struct *vma,
			      struct hpmem_region *region)
{
	unsigned long addr = vma->vm_start, nr, i;
	pgoff_t index = vma->vm_pgoff >> HPMEM_ORDER;
	struct page **subpages;
	struct page *page;
	int ret = 0;

	subpages = kmalloc_array(HPMEM_SUBPAGES, sizeof(*subpages),
				 GFP_KERNEL_ACCOUNT);
	if (!subpages)
		return -ENOMEM;
	for (; addr < vma->vm_end; addr += HPMEM_PAGE_SIZE, index++) {
		page = hpmem_region_page(region, index);
		if (WARN_ON_ONCE(!page)) {
			ret = -EFAULT;
			break;
		}
		for (i = 0; i < HPMEM_SUBPAGES; i++)
			subpages[i] = nth_page(page, i);
		nr = HPMEM_SUBPAGES;
		ret = vm_insert_pages(vma, addr, subpages, &nr);
		if (ret)
			break;
		cond_resched();
	}
	kfree(subpages);
	return ret;
}

int hpmem_mmap(struct file *file, struct vm_area_struct *vma)
{
	unsigned long len = vma->vm_end - vma->vm_start;
	struct hpmem_region *region;
	u64 first, count, limit;
	int ret = 0;

	mutex_lock(&hpmem_lock);
	region = file->private_data;
	if (!region) {
		ret = -EBADFD;
		goto out_unlock;
	}
	/*
	 * Prevent private mappings: copy-on-write of a pinned page makes no
	 * sense, and PFN maps cannot be COWed. MAP_SHARED of a read-only file
	 * clears VM_SHARED but keeps VM_MAYSHARE.
	 */
	if (!(vma->vm_flags & VM_MAYSHARE) ||
	    vma->vm_pgoff & (HPMEM_SUBPAGES - 1) ||
	    len & (HPMEM_PAGE_SIZE - 1)) {
		ret = -EINVAL;
		goto out_unlock;
	}
	/* A sparse region maps its reservation, holes included. */
	limit = region->max_pages ?: region->nr_pages;
	first = vma->vm_pgoff >> HPMEM_ORDER;
	count = len >> HPMEM_PAGE_SHIFT;
	if (first > limit || count > limit - first) {
		ret = -EINVAL;
		goto out_unlock;
	}
	vma->vm_private_data = region;
out_unlock:
	mutex_unlock(&hpmem_lock);
	if (ret)
		return ret;

	/* The pages stay put and are not worth dumping or growing into. */
	if (region->flags & HPMEM_REGION_PINNABLE) {
		hpmem_vm_flags_set(vma, VM_MIXEDMAP | VM_DONTEXPAND |
				   VM_DONTDUMP);
		vma->vm_ops = &hpmem_pinnable_vm_ops;
		/*
		 * Not for a sparse region: the VMA joins the file's mapping
		 * only after ->mmap(), so a release meanwhile could not zap
		 * what was inserted here. Its pages fault in instead, 2 MiB
		 * at a time (hpmem_map_around()).
		 */
		if (!region->max_pages) {
			ret = hpmem_insert_pages(vma, region);
			if (ret)
				return ret;
		}
	} else {
		hpmem_vm_flags_set(vma, VM_PFNMAP | VM_DONTEXPAND |
				   VM_DONTDUMP | VM_HUGEPAGE);
		vma->vm_ops = &hpmem_huge_vm_ops;
	}
	/* Last: a failed mmap() does not call ->close(). */
	hpmem_region_map_get(region);
	return 0;
}

/*
 * mmap(NULL, ...) gets an address whose 2 MiB alignment matches the
 * offset's, so that every page can be mapped with one PMD.
 */
unsigned long hpmem_get_unmapped_area(struct file *file, unsigned long addr,
				      unsigned long len, unsigned long pgoff,
				      unsigned long flags)
{
	unsigned long off = pgoff << PAGE_SHIFT, len_align, addr_align;

	if (addr || (flags & MAP_FIXED) || len < HPMEM_PAGE_SIZE)
		goto fallback;
	len_align = len + HPMEM_PAGE_SIZE;
	if (len_align < len)
		goto fallback;
	addr_align = hpmem_default_get_unmapped_area(file, 0, len_align,
						     pgoff, flags);
	if (IS_ERR_VALUE(addr_align))
		goto fallback;
	return addr_align + ((off - addr_align) & (HPMEM_PAGE_SIZE - 1));
fallback:
	return hpmem_default_get_unmapped_area(file, addr, len, pgoff, flags);
}
