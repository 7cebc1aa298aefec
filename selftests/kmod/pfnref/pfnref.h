/* SPDX-License-Identifier: (GPL-2.0 WITH Linux-syscall-note) OR MIT */
/*
 * Test-only: the ioctls of hpmem_pfnref.ko (/dev/hpmem_pfnref), shared by the
 * module and selftests/kmod/pfnref.c. Not part of hpmem's UAPI.
 */
#ifndef HPMEM_PFNREF_H
#define HPMEM_PFNREF_H

#include <linux/types.h>
#include <linux/ioctl.h>

#define PFNREF_DEVICE_PATH	"/dev/hpmem_pfnref"
#define PFNREF_MAX		64	/* references (and pins) per open file */

/**
 * struct pfnref_arg - one user address and what it resolved to
 * @addr: in, a user address in the calling process
 * @phys: out, physical address of the 4 KiB page now held
 * @value: in, for PFNREF_IOC_POKE: written at @addr's page offset
 */
struct pfnref_arg {
	__u64 addr;
	__u64 phys;
	__u64 value;
};

/*
 * GET: take a reference on the page behind @addr as KVM's hva_to_pfn() does
 * for guest memory: GUP (FOLL_GET) first, and for VM_IO/VM_PFNMAP VMAs the
 * PFN from the page tables (hva_to_pfn_remapped()) with
 * get_page_unless_zero(). Held until PUT or close.
 */
#define PFNREF_IOC_GET		_IOWR('P', 1, struct pfnref_arg)
/* PUT: drop every reference GET took through this file. */
#define PFNREF_IOC_PUT		_IO('P', 2)
/*
 * PIN: pin the page behind @addr for DMA as VFIO type1 does
 * (FOLL_PIN | FOLL_LONGTERM | FOLL_WRITE). Held until UNPIN or close.
 */
#define PFNREF_IOC_PIN		_IOWR('P', 3, struct pfnref_arg)
/* UNPIN: drop every pin PIN took through this file. */
#define PFNREF_IOC_UNPIN	_IO('P', 4)
/*
 * POKE: write @value through the last reference GET took, at @addr's
 * offset in its page, as a guest writes memory KVM mapped for it.
 */
#define PFNREF_IOC_POKE		_IOW('P', 5, struct pfnref_arg)

/**
 * struct pfnref_seg - one DMA segment of a mapped dma-buf
 * @addr: the device's DMA address (sg_dma_address())
 * @len: bytes (sg_dma_len())
 */
struct pfnref_seg {
	__u64 addr;
	__u64 len;
};

/**
 * struct pfnref_dmabuf - PFNREF_IOC_DMABUF_SEGS
 * @fd: in, a dma-buf file descriptor
 * @nr_segs: in, entries @segs has room for; out, segments of the mapping
 * @segs: in, user pointer to struct pfnref_seg entries
 * @max_seg_size: in, 0, or edu's maximum DMA segment size for this import
 *                (put back after it)
 * @pad: 0
 */
struct pfnref_dmabuf {
	__s32 fd;
	__u32 nr_segs;
	__u64 segs;
	__u32 max_seg_size;
	__u32 pad;
};

/*
 * DMABUF_SEGS: import @fd as a driver does for QEMU's edu PCI device
 * (dma_buf_attach(), then map the attachment), report the sg_table's DMA
 * segments as that device sees them, and let go (unmap, detach, put).
 * ENODEV without an edu device.
 */
#define PFNREF_IOC_DMABUF_SEGS	_IOWR('P', 6, struct pfnref_dmabuf)

/*
 * SLOW_LOOKUP: from now on, whenever hpmem.ko's hpmem_region_page() returns
 * in the calling process (a fault looking up a page, between the lookup and
 * the insert), spin @value microseconds first (at most 10000; 0 turns it
 * off, and so does closing the file). One file at a time (EBUSY); ENOENT
 * when the kprobe cannot be placed (hpmem.ko not loaded, no kprobes).
 */
#define PFNREF_IOC_SLOW_LOOKUP	_IOW('P', 7, struct pfnref_arg)

#endif /* HPMEM_PFNREF_H */
