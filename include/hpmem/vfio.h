/* SPDX-License-Identifier: MIT */
/*
 * VFIO type1 containers for devices behind an IOMMU, in the spirit of
 * rte_vfio: the library DMA-maps all of its memory into every container it
 * knows, at the IOVAs it reports (hpm_virt2iova()), and unmaps it at
 * hpm_cleanup(). See docs/IOVA.md.
 */
#ifndef HPMEM_VFIO_H
#define HPMEM_VFIO_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The library's own container, created on first use. */
#define HPM_VFIO_DEFAULT_CONTAINER	(-1)
/* Containers the library tracks at once (the default one included). */
#define HPM_VFIO_MAX_CONTAINERS		16

/* One region of a device (a BAR, the config space, ...). */
struct hpm_vfio_region {
	uint64_t offset;	/* of the region in the device fd */
	uint64_t size;		/* 0: the region does not exist */
	uint32_t flags;		/* VFIO_REGION_INFO_FLAG_* */
};

/* What hpm_vfio_setup_device() found. */
struct hpm_vfio_device_info {
	int group_id;		/* /dev/vfio/N */
	uint32_t num_regions;
	uint32_t num_irqs;
	uint32_t flags;		/* VFIO_DEVICE_FLAGS_* */
};

/*
 * Every call returns 0 (create: the fd) or -errno and sets hpm_errno; every
 * failure logs one line naming its cause. All calls are thread-safe.
 *
 * hpm_cleanup() unmaps the library's memory from every tracked container
 * first, so a later DMA to its IOVAs faults. It leaves device fds and
 * groups open (they are the application's); it closes a container the
 * library created only when no device opened through it is still open
 * (else hpm_vfio_release_device() of the last one does), and forgets
 * adopted containers without closing them. A container that outlives
 * hpm_cleanup() gets the memory again at the next hpm_init().
 */

/*
 * New type1 container (v2 when offered), tracked by the library: once a
 * group is bound to it, it holds all of the library's memory. Returns its
 * fd or -errno (-ENODEV: no /dev/vfio/vfio or no type1 support, -ENOSPC:
 * HPM_VFIO_MAX_CONTAINERS tracked).
 */
int hpm_vfio_container_create(void);

/*
 * Hand a container the caller set up itself (groups bound, type1 set) to
 * the library, which maps all of its memory into it now and keeps it
 * mapped. Returns 0 or -errno (-EINVAL: before hpm_init() or not a VFIO
 * container, -EEXIST: tracked already, -ERANGE: an IOVA is outside the
 * container's usable ranges, -ENOMEM: RLIMIT_MEMLOCK too low, -ENOTSUP:
 * the memory cannot be pinned).
 */
int hpm_vfio_container_adopt(int container_fd);

/*
 * Unmaps everything the library mapped into the container (its memory and
 * external maps) and forgets it; closes it when the library created it.
 * Returns 0, -ENOENT (not tracked) or -EBUSY (devices opened through it
 * are still open).
 */
int hpm_vfio_container_destroy(int container_fd);

/*
 * Open PCI device @bdf ("0000:00:04.0"), bound to vfio-pci, through
 * @container_fd (HPM_VFIO_DEFAULT_CONTAINER for the library's own): find
 * its IOMMU group, bind the group to the container (type1 on the first),
 * map the library's memory if not yet done, get the device fd.
 * Returns 0 with *@device_fd set, or -errno, logging the cause:
 *   -EINVAL   bad arguments, hpm_init() not called, or @container_fd
 *             not tracked (create or adopt it first)
 *   -ENODEV   no such device, no IOMMU group (no IOMMU, or it is off),
 *             no /dev/vfio/vfio or /dev/vfio/N, or no type1 support
 *   -EBUSY    the device is bound to another driver than vfio-pci (or to
 *             none), or its group is in another container or process
 *   -EPERM    the group is not viable (another device of the group is
 *             bound to a host driver)
 *   -ENOMEM   RLIMIT_MEMLOCK below what the mapping pins
 *   -ERANGE   the library's IOVAs do not fit the IOMMU's usable ranges
 *   -ENOTSUP  the memory cannot be pinned (a non-pinnable kmod region)
 */
int hpm_vfio_setup_device(const char *bdf, int container_fd, int *device_fd,
			  struct hpm_vfio_device_info *info);

/*
 * Close the device fd and, with its last device, the group (type1 drops
 * the container's mappings with its last group). -ENOENT when the device's
 * group is not in @container_fd through the library.
 */
int hpm_vfio_release_device(const char *bdf, int container_fd, int device_fd);

/*
 * Region @index (VFIO_PCI_BAR0_REGION_INDEX, ..._CONFIG_REGION_INDEX);
 * -errno of VFIO_DEVICE_GET_REGION_INFO (-EINVAL: no such index).
 */
int hpm_vfio_get_region(int device_fd, unsigned int index, struct hpm_vfio_region *r);

/*
 * External memory: map [@vaddr, @vaddr + @len) at @iova into the container
 * (and unmap exactly such a mapping). 4 KiB-aligned, @len > 0 (-EINVAL);
 * the container needs a group bound (-EINVAL) and must be tracked
 * (-ENOENT); -ERANGE outside the usable ranges. The container keeps it
 * until unmapped or destroyed; hpm_cleanup() leaves it alone.
 */
int hpm_vfio_container_dma_map(int container_fd, uint64_t vaddr, uint64_t iova,
			       uint64_t len);
int hpm_vfio_container_dma_unmap(int container_fd, uint64_t vaddr, uint64_t iova,
				 uint64_t len);

/* The default container's fd, or -1 while it does not exist. */
int hpm_vfio_default_container(void);

#ifdef __cplusplus
}
#endif

#endif /* HPMEM_VFIO_H */
