// SPDX-License-Identifier: GPL-2.0
/*
 * HPMEM_IOC_REGION_EXPORT: a region's pages, or a range of them, as a
 * dma-buf, so that other drivers (RDMA, GPUs) map them for their devices.
 */
#include <linux/dma-buf.h>
#include <linux/dma-map-ops.h>
#include <linux/dma-mapping.h>
#include <linux/fcntl.h>
#include <linux/iommu.h>
#include <linux/iosys-map.h>
#include <linux/mm.h>
#include <linux/pagemap.h>
#include <linux/module.h>
#include <linux/scatterlist.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>

#include "hpmem.h"
#include "compat.h"

MODULE_IMPORT_NS(DMA_BUF);

/**
 * struct hpmem_dmabuf - what an exported dma-buf holds
 * @nr_pages: 2 MiB pages in it
 * @pages: their heads, in the region's offset order; each holds one page
 *         reference of this dma-buf's own (get_page()), dropped at release
 *
 * The references, not the region, keep the pages: the region may die while
 * the dma-buf lives (destroyed, every hpmem file closed). Region teardown
 * then finds the pages referenced outside the pool and parks them busy:
 * counted in their pool, charged as before, never handed out, and back to
 * the free list, zeroed, once the last reference (ours) is gone. Importers
 * hold the dma-buf's file while attached, so release comes after them.
 */
struct hpmem_dmabuf {
	unsigned long nr_pages;
	struct page *pages[];
};

/*
 * Whether @dev reaches pages at their physical address (no IOMMU, or an
 * identity domain): dma-direct then bounces through swiotlb what is beyond
 * its DMA mask, which would turn shared memory into a copy synced only at
 * unmap. Behind a translating IOMMU every page is reachable.
 */
static bool hpmem_dmabuf_direct(struct device *dev)
{
	struct iommu_domain *domain = iommu_get_domain_for_dev(dev);

	return !domain || domain->type == IOMMU_DOMAIN_IDENTITY;
}

/*
 * An importer whose device cannot address every page directly is refused
 * at attach (the import fails cleanly) rather than given bounce buffers.
 */
static int hpmem_dmabuf_attach(struct dma_buf *dmabuf,
			       struct dma_buf_attachment *attach)
{
	struct hpmem_dmabuf *hd = dmabuf->priv;
	struct device *dev = attach->dev;
	u64 limit, end;
	unsigned long i;

	/*
	 * Segments are whole 4 KiB pages: a device that cannot take one page
	 * in a segment, or whose segments may not span one, cannot be served
	 * within its stated limits.
	 */
	if (dma_get_max_seg_size(dev) < PAGE_SIZE ||
	    dma_get_seg_boundary(dev) < PAGE_SIZE - 1)
		return -EINVAL;
	if (!hpmem_dmabuf_direct(dev))
		return 0;
	limit = min_not_zero(dma_get_mask(dev), dev->bus_dma_limit);
	for (i = 0; i < hd->nr_pages; i++) {
		end = page_to_phys(hd->pages[i]) + HPMEM_PAGE_SIZE - 1;
		if (end > limit)
			return -EINVAL;
	}
	return 0;
}

/*
 * The length of the DMA segment that starts at @addr with @len bytes of
 * physically contiguous memory left: at most the device's maximum segment
 * size, never across its segment boundary, whole 4 KiB pages.
 */
static unsigned int hpmem_dmabuf_seg_len(struct device *dev, u64 addr,
					 u64 len)
{
	u64 max = min_t(u64, dma_get_max_seg_size(dev), SZ_1G);
	u64 boundary = dma_get_seg_boundary(dev);

	len = min(len, boundary - (addr & boundary) + 1);
	len = min(len, max);
	/* attach refused limits below a page: this is at least PAGE_SIZE. */
	return len & PAGE_MASK;
}

/*
 * Walks the dma-buf as segments: physically contiguous pages merged, each
 * cut to the device's limits. Fills @sgt when given, else only counts.
 */
static unsigned int hpmem_dmabuf_segs(struct hpmem_dmabuf *hd,
				      struct device *dev, struct sg_table *sgt)
{
	struct scatterlist *sg = sgt ? sgt->sgl : NULL;
	unsigned long i = 0, j;
	unsigned int n = 0, len;
	u64 addr, run;

	while (i < hd->nr_pages) {
		addr = page_to_phys(hd->pages[i]);
		for (j = i + 1; j < hd->nr_pages; j++)
			if (page_to_phys(hd->pages[j]) !=
			    addr + (j - i) * HPMEM_PAGE_SIZE)
				break;
		run = (u64)(j - i) * HPMEM_PAGE_SIZE;
		i = j;
		while (run) {
			len = hpmem_dmabuf_seg_len(dev, addr, run);
			if (sg) {
				sg_set_page(sg, pfn_to_page(PHYS_PFN(addr)),
					    len, 0);
				sg = sg_next(sg);
			}
			addr += len;
			run -= len;
			n++;
		}
	}
	return n;
}

/*
 * Whether the device reaches the pages themselves through @sgt. dma-direct
 * may map a segment onto a swiotlb bounce buffer although attach found it
 * addressable: with swiotlb=force, in SEV/TDX guests (every page bounced),
 * or when the SME encryption bit puts the DMA address beyond the mask. A
 * bounced mapping is a copy taken at map time and written back at unmap:
 * the device and the CPU, through the region or the dma-buf's mmap, would
 * silently see different bytes, and begin/end_cpu_access() do not sync.
 * Such a mapping, or one of a non-coherent device, needs syncs that a
 * shared buffer never gets: refused, so the import fails cleanly.
 *
 * dma_need_sync() tells exactly for dma-direct. Behind a translating IOMMU
 * it says yes for every device on 6.1 (dma-iommu's ops have sync hooks)
 * and on 6.12 for one whose driver did not set the DMA API up (a device
 * vfio-pci owns); dma-iommu bounces only an untrusted device's pieces
 * smaller than an IOMMU granule, which whole pages never are, so there
 * coherence alone decides.
 */
static int hpmem_dmabuf_check_sync(struct device *dev, struct sg_table *sgt)
{
	struct scatterlist *sg;
	unsigned int i;

	if (!hpmem_dmabuf_direct(dev))
		return dev_is_dma_coherent(dev) ? 0 : -EOPNOTSUPP;
	for_each_sgtable_dma_sg(sgt, sg, i)
		if (dma_need_sync(dev, sg_dma_address(sg)))
			return -EOPNOTSUPP;
	return 0;
}

static struct sg_table *hpmem_dmabuf_map(struct dma_buf_attachment *attach,
					 enum dma_data_direction dir)
{
	struct hpmem_dmabuf *hd = attach->dmabuf->priv;
	struct sg_table *sgt;
	int ret;

	sgt = kzalloc(sizeof(*sgt), GFP_KERNEL);
	if (!sgt)
		return ERR_PTR(-ENOMEM);
	ret = sg_alloc_table(sgt, hpmem_dmabuf_segs(hd, attach->dev, NULL),
			     GFP_KERNEL);
	if (ret)
		goto out_free;
	hpmem_dmabuf_segs(hd, attach->dev, sgt);
	ret = dma_map_sgtable(attach->dev, sgt, dir, 0);
	if (ret)
		goto out_table;
	ret = hpmem_dmabuf_check_sync(attach->dev, sgt);
	if (ret)
		goto out_unmap;
	return sgt;

out_unmap:
	/*
	 * A refused mapping may be bounced: without SKIP_CPU_SYNC, swiotlb
	 * would copy its map-time snapshot back over the pages (FROM_DEVICE,
	 * BIDIRECTIONAL) and revert whatever the CPU wrote since.
	 */
	dma_unmap_sgtable(attach->dev, sgt, dir, DMA_ATTR_SKIP_CPU_SYNC);
out_table:
	sg_free_table(sgt);
out_free:
	kfree(sgt);
	return ERR_PTR(ret);
}

static void hpmem_dmabuf_unmap(struct dma_buf_attachment *attach,
			       struct sg_table *sgt,
			       enum dma_data_direction dir)
{
	dma_unmap_sgtable(attach->dev, sgt, dir, 0);
	sg_free_table(sgt);
	kfree(sgt);
}

/*
 * The pages are ordinary write-back RAM and x86 DMA is cache coherent, and
 * attach and map refuse devices that would need bounce buffers or syncs
 * (hpmem_dmabuf_check_sync()): there is nothing to flush or invalidate
 * around CPU access.
 */
static int hpmem_dmabuf_begin_cpu_access(struct dma_buf *dmabuf,
					 enum dma_data_direction dir)
{
	return 0;
}

static int hpmem_dmabuf_end_cpu_access(struct dma_buf *dmabuf,
				       enum dma_data_direction dir)
{
	return 0;
}

/* Same mapping as a default region's: 2 MiB PFN PMDs, else 4 KiB PFNs. */
static vm_fault_t hpmem_dmabuf_pmd_fault(struct vm_fault *vmf)
{
	struct hpmem_dmabuf *hd = vmf->vma->vm_private_data;
	struct page *page;
	pgoff_t pgoff;

	if (!hpmem_pmd_fault_pgoff(vmf, &pgoff))
		return VM_FAULT_FALLBACK;
	if (pgoff >> HPMEM_ORDER >= hd->nr_pages)
		return VM_FAULT_SIGBUS;
	page = hd->pages[pgoff >> HPMEM_ORDER];
	return vmf_insert_pfn_pmd(vmf, hpmem_pmd_pfn_t(page_to_pfn(page)),
				  vmf->flags & FAULT_FLAG_WRITE);
}

static vm_fault_t hpmem_dmabuf_huge_fault(struct vm_fault *vmf,
					  hpmem_fault_size_t size)
{
	if (!HPMEM_FAULT_IS_PMD(size))
		return VM_FAULT_FALLBACK;
	return hpmem_dmabuf_pmd_fault(vmf);
}

static vm_fault_t hpmem_dmabuf_fault(struct vm_fault *vmf)
{
	struct hpmem_dmabuf *hd = vmf->vma->vm_private_data;
	pgoff_t index = vmf->pgoff >> HPMEM_ORDER;

	if (index >= hd->nr_pages)
		return VM_FAULT_SIGBUS;
	return vmf_insert_pfn(vmf->vma, vmf->address & PAGE_MASK,
			      page_to_pfn(hd->pages[index]) +
			      (vmf->pgoff & (HPMEM_SUBPAGES - 1)));
}

/* The VMA holds the dma-buf's file, which holds the pages: no refcount. */
static const struct vm_operations_struct hpmem_dmabuf_vm_ops = {
	.fault		= hpmem_dmabuf_fault,
	.huge_fault	= hpmem_dmabuf_huge_fault,
};

/* The dma-buf core checked that the VMA lies within the buffer. */
static int hpmem_dmabuf_mmap(struct dma_buf *dmabuf,
			     struct vm_area_struct *vma)
{
	/* Prevent private mappings: PFN maps cannot be copied on write. */
	if (!(vma->vm_flags & VM_MAYSHARE))
		return -EINVAL;
	hpmem_vm_flags_set(vma, VM_PFNMAP | VM_DONTEXPAND | VM_DONTDUMP |
			   VM_HUGEPAGE);
	vma->vm_ops = &hpmem_dmabuf_vm_ops;
	vma->vm_private_data = dmabuf->priv;
	return 0;
}

/* Kernel importers that want a CPU view: 4 KiB PTEs, in offset order. */
static int hpmem_dmabuf_vmap(struct dma_buf *dmabuf, struct iosys_map *map)
{
	struct hpmem_dmabuf *hd = dmabuf->priv;
	unsigned long i, n = hd->nr_pages * HPMEM_SUBPAGES;
	struct page **pages;
	void *vaddr;

	pages = kvmalloc_array(n, sizeof(*pages), GFP_KERNEL);
	if (!pages)
		return -ENOMEM;
	for (i = 0; i < n; i++)
		pages[i] = nth_page(hd->pages[i >> HPMEM_ORDER],
				    i & (HPMEM_SUBPAGES - 1));
	vaddr = vmap(pages, n, VM_MAP, PAGE_KERNEL);
	kvfree(pages);
	if (!vaddr)
		return -ENOMEM;
	iosys_map_set_vaddr(map, vaddr);
	return 0;
}

static void hpmem_dmabuf_vunmap(struct dma_buf *dmabuf, struct iosys_map *map)
{
	vunmap(map->vaddr);
}

/* The last file reference and every attachment are gone. */
static void hpmem_dmabuf_release(struct dma_buf *dmabuf)
{
	struct hpmem_dmabuf *hd = dmabuf->priv;
	unsigned long i;

	/* A dead region's pages wait busy for this; the pool polls them. */
	for (i = 0; i < hd->nr_pages; i++)
		hpmem_page_unexport(hd->pages[i]);
	kvfree(hd);
}

static const struct dma_buf_ops hpmem_dmabuf_ops = {
	.attach			= hpmem_dmabuf_attach,
	.map_dma_buf		= hpmem_dmabuf_map,
	.unmap_dma_buf		= hpmem_dmabuf_unmap,
	.begin_cpu_access	= hpmem_dmabuf_begin_cpu_access,
	.end_cpu_access		= hpmem_dmabuf_end_cpu_access,
	.mmap			= hpmem_dmabuf_mmap,
	.vmap			= hpmem_dmabuf_vmap,
	.vunmap			= hpmem_dmabuf_vunmap,
	.release		= hpmem_dmabuf_release,
};

/*
 * Takes a reference on each page of the range; caller holds hpmem_lock,
 * under which the region's page set cannot change. An index past the
 * region's last page, or in a hole of a sparse region, has no page: the
 * range is refused whole.
 */
static int hpmem_dmabuf_get_pages(struct hpmem_region *region,
				  struct hpmem_dmabuf *hd, pgoff_t first)
{
	unsigned long i;
	int ret = 0;

	lockdep_assert_held(&hpmem_lock);
	for (i = 0; i < hd->nr_pages; i++) {
		hd->pages[i] = hpmem_region_page(region, first + i);
		ret = hd->pages[i] ? hpmem_page_export(hd->pages[i]) : -EINVAL;
		if (ret) {
			while (i--)
				hpmem_page_unexport(hd->pages[i]);
			return ret;
		}
	}
	return 0;
}

/**
 * hpmem_region_export() - HPMEM_IOC_REGION_EXPORT
 * @file: the hpmem file with the region attached
 * @arg: struct hpmem_region_export, its @fd filled on success
 *
 * Only a process that has the region attached can export it, the same rule
 * as for mapping it; a read-write dma-buf needs a writable hpmem file, as
 * a writable mapping does. The fd is installed last: nothing fails after.
 *
 * Return: 0 or -errno (see the UAPI header).
 */
int hpmem_region_export(struct file *file, void *arg)
{
	struct hpmem_region_export *re = arg;
	DEFINE_DMA_BUF_EXPORT_INFO(exp);
	struct hpmem_region *region;
	struct hpmem_dmabuf *hd;
	struct dma_buf *dmabuf;
	u32 mode = re->fd_flags & O_ACCMODE;
	unsigned long nr;
	int fd, ret;

	if (re->flags || re->fd_flags & ~(O_ACCMODE | O_CLOEXEC) ||
	    (mode != O_RDONLY && mode != O_RDWR))
		return -EINVAL;
	if (!re->length || (re->offset | re->length) & (HPMEM_PAGE_SIZE - 1) ||
	    re->length > (u64)HPMEM_REGION_MAX_PAGES << HPMEM_PAGE_SHIFT ||
	    re->offset > (u64)HPMEM_REGION_MAX_PAGES << HPMEM_PAGE_SHIFT)
		return -EINVAL;
	if (!(file->f_mode & FMODE_WRITE))
		return -EACCES;
	nr = re->length >> HPMEM_PAGE_SHIFT;

	hd = kvzalloc(struct_size(hd, pages, nr), GFP_KERNEL_ACCOUNT);
	if (!hd)
		return -ENOMEM;
	hd->nr_pages = nr;

	mutex_lock(&hpmem_lock);
	region = file->private_data;
	ret = region ? hpmem_dmabuf_get_pages(region, hd,
					      re->offset >> HPMEM_PAGE_SHIFT) :
		       -EBADFD;
	mutex_unlock(&hpmem_lock);
	if (ret)
		goto out_free;

	exp.ops = &hpmem_dmabuf_ops;
	exp.size = re->length;
	exp.flags = mode;
	exp.priv = hd;
	dmabuf = dma_buf_export(&exp);
	if (IS_ERR(dmabuf)) {
		ret = PTR_ERR(dmabuf);
		goto out_put;
	}
	/* Its own inode: S_DAX offers our PFN VMA to ->huge_fault() on 6.1. */
	if (HPMEM_HAVE_PMD_MAP)
		file_inode(dmabuf->file)->i_flags |= S_DAX;

	fd = dma_buf_fd(dmabuf, re->fd_flags & O_CLOEXEC);
	if (fd < 0) {
		/* Release puts the pages and frees @hd. */
		dma_buf_put(dmabuf);
		return fd;
	}
	re->fd = fd;
	return 0;

out_put:
	for (nr = 0; nr < hd->nr_pages; nr++)
		hpmem_page_unexport(hd->pages[nr]);
out_free:
	kvfree(hd);
	return ret;
}
