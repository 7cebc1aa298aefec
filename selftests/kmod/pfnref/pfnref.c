// SPDX-License-Identifier: GPL-2.0
/*
 * Test-only: takes the references that kernel code outside hpmem takes on
 * user memory (KVM's on guest memory, VFIO type1's DMA pins), so that
 * hpmem's selftests can check that a page so held is never handed out again.
 */
#include <linux/dma-buf.h>
#include <linux/fs.h>
#include <linux/highmem.h>
#include <linux/io.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/pci.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/version.h>

#include "pfnref.h"
#include "slow.h"

/* As kmod/compat.h tests versions: true on kernels from @major.@minor on. */
#define PFNREF_KERNEL_SINCE(major, minor) \
	(KERNEL_VERSION(LINUX_VERSION_MAJOR, LINUX_VERSION_PATCHLEVEL, 0) >= \
	 KERNEL_VERSION(major, minor, 0))

/**
 * struct pfnref_file - what one open file holds
 * @lock: serialises the ioctls of this file
 * @refs: pages referenced by PFNREF_IOC_GET, put at PUT or close
 * @nr_refs: entries in @refs
 * @pins: pages pinned by PFNREF_IOC_PIN, unpinned at UNPIN or close
 * @nr_pins: entries in @pins
 */
struct pfnref_file {
	struct mutex lock;	/* the arrays below */
	struct page *refs[PFNREF_MAX];
	unsigned int nr_refs;
	struct page *pins[PFNREF_MAX];
	unsigned int nr_pins;
};

/*
 * kvm_try_get_pfn(): a reference on a refcounted page whose count is not
 * zero. A compound page's tail pages count nothing, so KVM holds the head
 * page of a PFN-mapped 2 MiB page and fails (EFAULT) on the others; a pfn
 * with no refcounted page gets no reference at all (here: ENXIO).
 */
static int pfnref_try_get_pfn(unsigned long pfn, struct page **pagep)
{
	struct page *page;

	if (!pfn_valid(pfn))
		return -ENXIO;
	page = pfn_to_page(pfn);
	if (PageReserved(page))
		return -ENXIO;
	if (!get_page_unless_zero(page))
		return -EFAULT;
	*pagep = page;
	return 0;
}

/*
 * One walk of the page tables as hva_to_pfn_remapped() does it on each
 * kernel, the reference taken under the page table lock. -EINVAL: nothing
 * mapped there that the walk understands.
 */
#if PFNREF_KERNEL_SINCE(6, 12)
/* 6.12 walks with follow_pfnmap_start(), which reads PMD mappings too. */
static int pfnref_follow(struct vm_area_struct *vma, unsigned long addr,
			 struct page **pagep)
{
	struct follow_pfnmap_args args = { .vma = vma, .address = addr };
	int r;

	r = follow_pfnmap_start(&args);
	if (r)
		return r;
	r = pfnref_try_get_pfn(args.pfn, pagep);
	follow_pfnmap_end(&args);
	return r;
}
#elif !PFNREF_KERNEL_SINCE(6, 10)
/* 6.1 walks with follow_pte(), to PTEs only: a PMD mapping fails. */
static int pfnref_follow(struct vm_area_struct *vma, unsigned long addr,
			 struct page **pagep)
{
	spinlock_t *ptl;	/* the PTE's, held from follow_pte() on */
	pte_t *ptep;
	int r;

	r = follow_pte(vma->vm_mm, addr, &ptep, &ptl);
	if (r)
		return r;
	r = pfnref_try_get_pfn(pte_pfn(*ptep), pagep);
	pte_unmap_unlock(ptep, ptl);
	return r;
}
#else
#error "hpmem_pfnref follows KVM on Debian's 6.1 and 6.12 only"
#endif

/* hva_to_pfn_remapped(): walk, else fault the page in and walk again. */
static int pfnref_remapped(struct vm_area_struct *vma, unsigned long addr,
			   struct page **pagep)
{
	bool unlocked = false;
	int r;

	r = pfnref_follow(vma, addr, pagep);
	if (r != -EINVAL)
		return r;
	/* GUP does not call the fault handler of VM_PFNMAP VMAs: do it. */
	r = fixup_user_fault(vma->vm_mm, addr, FAULT_FLAG_WRITE, &unlocked);
	if (unlocked)
		return -EAGAIN;
	if (r)
		return r;
	return pfnref_follow(vma, addr, pagep);
}

/*
 * hva_to_pfn() for a writable guest page: GUP (a FOLL_GET reference) where
 * GUP works, the page tables of VM_IO and VM_PFNMAP VMAs where it does not.
 */
static int pfnref_get(unsigned long addr, struct page **pagep)
{
	struct mm_struct *mm = current->mm;
	struct vm_area_struct *vma;
	int r;

	if (get_user_pages_fast(addr, 1, FOLL_WRITE, pagep) == 1)
		return 0;
	mmap_read_lock(mm);
	do {
		vma = vma_lookup(mm, addr);
		if (!vma || !(vma->vm_flags & (VM_IO | VM_PFNMAP)))
			r = -EFAULT;
		else
			r = pfnref_remapped(vma, addr, pagep);
	} while (r == -EAGAIN);
	mmap_read_unlock(mm);
	return r;
}

/* What VFIO type1 does to each page it maps for a device. */
static int pfnref_pin(unsigned long addr, struct page **pagep)
{
	int r = pin_user_pages_fast(addr, 1, FOLL_WRITE | FOLL_LONGTERM, pagep);

	if (r == 1)
		return 0;
	return r < 0 ? r : -EFAULT;
}

static void pfnref_put_all(struct pfnref_file *f)
{
	while (f->nr_refs)
		put_page(f->refs[--f->nr_refs]);
}

static void pfnref_unpin_all(struct pfnref_file *f)
{
	while (f->nr_pins)
		unpin_user_page(f->pins[--f->nr_pins]);
}

static long pfnref_take(struct pfnref_file *f, struct pfnref_arg *arg,
			bool pin)
{
	struct page *page;
	int r;

	if (pin ? f->nr_pins == PFNREF_MAX : f->nr_refs == PFNREF_MAX)
		return -ENOSPC;
	r = pin ? pfnref_pin(arg->addr, &page) : pfnref_get(arg->addr, &page);
	if (r)
		return r;
	if (pin)
		f->pins[f->nr_pins++] = page;
	else
		f->refs[f->nr_refs++] = page;
	arg->phys = page_to_phys(page);
	return 0;
}

/* A guest store through KVM's mapping: 8 bytes at @addr's page offset. */
static long pfnref_poke(struct pfnref_file *f, struct pfnref_arg *arg)
{
	size_t off = offset_in_page(arg->addr) & ~(sizeof(u64) - 1);

	if (!f->nr_refs)
		return -ENOENT;
	memcpy_to_page(f->refs[f->nr_refs - 1], off, (const char *)&arg->value,
		       sizeof(arg->value));
	return 0;
}

/* QEMU's edu device, the one DMA-capable PCI device every test guest has. */
#define EDU_VENDOR	0x1234
#define EDU_DEVICE	0x11e8

/* dma_buf_map_attachment() wants the reservation lock held since 6.2. */
static struct sg_table *pfnref_map(struct dma_buf_attachment *att)
{
#if PFNREF_KERNEL_SINCE(6, 2)
	return dma_buf_map_attachment_unlocked(att, DMA_BIDIRECTIONAL);
#else
	return dma_buf_map_attachment(att, DMA_BIDIRECTIONAL);
#endif
}

static void pfnref_unmap(struct dma_buf_attachment *att, struct sg_table *sgt)
{
#if PFNREF_KERNEL_SINCE(6, 2)
	dma_buf_unmap_attachment_unlocked(att, sgt, DMA_BIDIRECTIONAL);
#else
	dma_buf_unmap_attachment(att, sgt, DMA_BIDIRECTIONAL);
#endif
}

/* An importer's view of a dma-buf: its DMA segments for the edu device. */
static long pfnref_dmabuf_segs(void __user *argp)
{
	struct pfnref_seg __user *usegs;
	struct dma_buf_attachment *att;
	struct pfnref_dmabuf arg;
	struct scatterlist *sg;
	struct pfnref_seg seg;
	struct pci_dev *pdev;
	struct sg_table *sgt;
	struct dma_buf *dmabuf;
	unsigned int max_seg;
	u32 n = 0;
	long r = 0;
	int i;

	if (copy_from_user(&arg, argp, sizeof(arg)))
		return -EFAULT;
	usegs = u64_to_user_ptr(arg.segs);
	pdev = pci_get_device(EDU_VENDOR, EDU_DEVICE, NULL);
	if (!pdev)
		return -ENODEV;
	/* An importer with a small segment limit (PCI devices have dma_parms). */
	max_seg = dma_get_max_seg_size(&pdev->dev);
	if (arg.max_seg_size)
		dma_set_max_seg_size(&pdev->dev, arg.max_seg_size);
	dmabuf = dma_buf_get(arg.fd);
	if (IS_ERR(dmabuf)) {
		r = PTR_ERR(dmabuf);
		goto out_dev;
	}
	att = dma_buf_attach(dmabuf, &pdev->dev);
	if (IS_ERR(att)) {
		r = PTR_ERR(att);
		goto out_put;
	}
	sgt = pfnref_map(att);
	if (IS_ERR(sgt)) {
		r = PTR_ERR(sgt);
		goto out_detach;
	}
	for_each_sgtable_dma_sg(sgt, sg, i) {
		seg.addr = sg_dma_address(sg);
		seg.len = sg_dma_len(sg);
		if (n < arg.nr_segs &&
		    copy_to_user(&usegs[n], &seg, sizeof(seg))) {
			r = -EFAULT;
			break;
		}
		n++;
	}
	pfnref_unmap(att, sgt);
	arg.nr_segs = n;
	if (!r && copy_to_user(argp, &arg, sizeof(arg)))
		r = -EFAULT;
out_detach:
	dma_buf_detach(dmabuf, att);
out_put:
	dma_buf_put(dmabuf);
out_dev:
	dma_set_max_seg_size(&pdev->dev, max_seg);
	pci_dev_put(pdev);
	return r;
}

static long pfnref_ioctl(struct file *file, unsigned int cmd,
			 unsigned long uarg)
{
	struct pfnref_file *f = file->private_data;
	void __user *argp = (void __user *)uarg;
	struct pfnref_arg arg;
	long r;

	/* Takes nothing this file keeps: no lock, its own argument. */
	if (cmd == PFNREF_IOC_DMABUF_SEGS)
		return pfnref_dmabuf_segs(argp);
	if (_IOC_DIR(cmd) & _IOC_WRITE &&
	    copy_from_user(&arg, argp, sizeof(arg)))
		return -EFAULT;
	mutex_lock(&f->lock);
	switch (cmd) {
	case PFNREF_IOC_GET:
		r = pfnref_take(f, &arg, false);
		break;
	case PFNREF_IOC_PIN:
		r = pfnref_take(f, &arg, true);
		break;
	case PFNREF_IOC_PUT:
		pfnref_put_all(f);
		r = 0;
		break;
	case PFNREF_IOC_UNPIN:
		pfnref_unpin_all(f);
		r = 0;
		break;
	case PFNREF_IOC_POKE:
		r = pfnref_poke(f, &arg);
		break;
	case PFNREF_IOC_SLOW_LOOKUP:
		r = pfnref_slow_lookup(f, arg.value);
		break;
	default:
		r = -ENOTTY;
	}
	mutex_unlock(&f->lock);
	/* A reference taken stays held (PUT or close drop it) on EFAULT. */
	if (!r && _IOC_DIR(cmd) & _IOC_READ &&
	    copy_to_user(argp, &arg, sizeof(arg)))
		r = -EFAULT;
	return r;
}

static int pfnref_open(struct inode *inode, struct file *file)
{
	struct pfnref_file *f = kzalloc(sizeof(*f), GFP_KERNEL);

	if (!f)
		return -ENOMEM;
	mutex_init(&f->lock);
	file->private_data = f;
	return 0;
}

static int pfnref_release(struct inode *inode, struct file *file)
{
	struct pfnref_file *f = file->private_data;

	pfnref_slow_release(f);
	pfnref_put_all(f);
	pfnref_unpin_all(f);
	mutex_destroy(&f->lock);
	kfree(f);
	return 0;
}

static const struct file_operations pfnref_fops = {
	.owner		= THIS_MODULE,
	.open		= pfnref_open,
	.release	= pfnref_release,
	.unlocked_ioctl	= pfnref_ioctl,
	.compat_ioctl	= compat_ptr_ioctl,
};

/* Root only (misc devices default to 0600): it writes any page it holds. */
static struct miscdevice pfnref_dev = {
	.minor	= MISC_DYNAMIC_MINOR,
	.name	= "hpmem_pfnref",
	.fops	= &pfnref_fops,
};

module_misc_device(pfnref_dev);

MODULE_IMPORT_NS(DMA_BUF);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("hpmem selftests: page references held as KVM and VFIO hold them, dma-bufs imported as a driver does");
