/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Every difference between the kernels hpmem builds for (Debian's 6.1 and
 * 6.12), so that the logic elsewhere is written once.
 */
#ifndef HPMEM_COMPAT_H
#define HPMEM_COMPAT_H

#include <linux/device.h>
#include <linux/mm.h>
#include <linux/pfn_t.h>
#include <linux/sched/mm.h>
#include <linux/smp.h>
#include <linux/version.h>
#include <asm/tlbflush.h>

/*
 * True on kernels from @major.@minor on. Version tests are kept to this
 * header; each names the change it follows.
 */
#define HPMEM_KERNEL_SINCE(major, minor) \
	(KERNEL_VERSION(LINUX_VERSION_MAJOR, LINUX_VERSION_PATCHLEVEL, 0) >= \
	 KERNEL_VERSION(major, minor, 0))

#ifndef CONFIG_TRANSPARENT_HUGEPAGE
#error "hpmem maps its 2 MiB pages with PMDs: it needs CONFIG_TRANSPARENT_HUGEPAGE"
#endif

/* RLIMIT_MEMLOCK is charged to user_struct.locked_vm, which exists only with: */
#if !(defined(CONFIG_NET) || defined(CONFIG_IO_URING))
#error "hpmem charges user_struct.locked_vm: it needs CONFIG_NET or CONFIG_IO_URING"
#endif

/*
 * PMD mappings: the fault path offers ->huge_fault() a VM_PFNMAP VMA only
 * when the VMA counts as DAX (S_DAX on the inode behind f_mapping) on 6.1;
 * 6.12 offers it to special VMAs regardless, but hpmem marks its inode
 * S_DAX on both, which also keeps 6.12 independent of the THP sysfs mode.
 */
#define HPMEM_HAVE_PMD_MAP	IS_ENABLED(CONFIG_FS_DAX)

vm_fault_t hpmem_pmd_fault(struct vm_fault *vmf);

/*
 * ->huge_fault() took an enum page_entry_size (PMD is 1) until 6.6 and an
 * order (PMD is 9) since. A handler written for one compiles on the other
 * and then never maps a PMD, so the level is decoded here only.
 */
#if HPMEM_KERNEL_SINCE(6, 6)
#define hpmem_fault_size_t	unsigned int
#define HPMEM_FAULT_IS_PMD(order)	((order) == PMD_SHIFT - PAGE_SHIFT)
#else
#define hpmem_fault_size_t	enum page_entry_size
#define HPMEM_FAULT_IS_PMD(pe_size)	((pe_size) == PE_SIZE_PMD)
#endif

static inline vm_fault_t hpmem_huge_fault(struct vm_fault *vmf,
					  hpmem_fault_size_t size)
{
	if (!HPMEM_FAULT_IS_PMD(size))
		return VM_FAULT_FALLBACK;
	return hpmem_pmd_fault(vmf);
}

/*
 * gup-fast walks page tables without looking at the VMA, so it must be told
 * that a PMD of ours has no page it may take a reference on (the page goes
 * back to the pool when the region dies, whatever references remain).
 * Since 6.12 (ARCH_SUPPORTS_PMD_PFNMAP) PFN PMDs are marked special and
 * gup-fast skips them. 6.1 has no pmd_special: mark the PMD devmap, whose
 * gup-fast path looks for a dev_pagemap, finds none and gives up; slow GUP
 * then refuses the VM_PFNMAP VMA, on both kernels.
 */
static inline pfn_t hpmem_pmd_pfn_t(unsigned long pfn)
{
#ifdef CONFIG_ARCH_SUPPORTS_PMD_PFNMAP
	return __pfn_to_pfn_t(pfn, 0);
#else
	return __pfn_to_pfn_t(pfn, PFN_DEV | PFN_MAP);
#endif
}

/* vm_flags became read-only behind vm_flags_set() in 6.3. */
static inline void hpmem_vm_flags_set(struct vm_area_struct *vma,
				      unsigned long flags)
{
#if HPMEM_KERNEL_SINCE(6, 3)
	vm_flags_set(vma, flags);
#else
	vma->vm_flags |= flags;
#endif
}

/* mm->get_unmapped_area() became mm_get_unmapped_area() in 6.10. */
static inline unsigned long
hpmem_default_get_unmapped_area(struct file *file, unsigned long addr,
				unsigned long len, unsigned long pgoff,
				unsigned long flags)
{
#if HPMEM_KERNEL_SINCE(6, 10)
	return mm_get_unmapped_area(current->mm, file, addr, len, pgoff, flags);
#else
	return current->mm->get_unmapped_area(file, addr, len, pgoff, flags);
#endif
}

/*
 * Flushes every CPU's TLB, all address spaces (see
 * hpmem_region_release_pages()). x86 exports only the flush of the local
 * CPU, which its flush_tlb_all() runs on each CPU, as this does; other
 * architectures define flush_tlb_all() inline.
 */
#ifdef CONFIG_X86
static inline void hpmem_flush_tlb_cpu(void *unused)
{
	__flush_tlb_all();
}

static inline void hpmem_flush_tlb_all(void)
{
	on_each_cpu(hpmem_flush_tlb_cpu, NULL, 1);
}
#else
static inline void hpmem_flush_tlb_all(void)
{
	flush_tlb_all();
}
#endif

/*
 * dma-buf export needs the dma-buf core (CONFIG_DMA_SHARED_BUFFER): without
 * it the rest of hpmem still builds and loads, dmabuf.c is left out (Kbuild)
 * and HPMEM_IOC_REGION_EXPORT fails with EOPNOTSUPP; HPMEM_FEAT_DMABUF is
 * then not offered.
 */
#define HPMEM_HAVE_DMABUF	IS_ENABLED(CONFIG_DMA_SHARED_BUFFER)

#if !HPMEM_HAVE_DMABUF
static inline int hpmem_region_export(struct file *file, void *arg)
{
	return -EOPNOTSUPP;
}
#endif

char *hpmem_devnode(umode_t *mode, kuid_t *uid, kgid_t *gid);

/* device_type.devnode() takes a const struct device * since 6.2. */
#if HPMEM_KERNEL_SINCE(6, 2)
static inline char *hpmem_devnode_cb(const struct device *dev, umode_t *mode,
				     kuid_t *uid, kgid_t *gid)
#else
static inline char *hpmem_devnode_cb(struct device *dev, umode_t *mode,
				     kuid_t *uid, kgid_t *gid)
#endif
{
	return hpmem_devnode(mode, uid, gid);
}

/*
 * class_create() lost its owner argument in 6.4; hpmem registers a static
 * struct class with class_register() instead, which both kernels accept.
 */

#endif /* HPMEM_COMPAT_H */
