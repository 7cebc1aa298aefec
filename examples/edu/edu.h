/* SPDX-License-Identifier: MIT */
/*
 * A userspace driver for QEMU's "edu" PCI device, which DMAs between RAM
 * and a 4 KiB internal buffer: enough to prove that an IOVA reaches memory.
 */
#ifndef HPMEM_EXAMPLES_EDU_H
#define HPMEM_EXAMPLES_EDU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EDU_VENDOR	0x1234
#define EDU_DEVICE	0x11e8
/* Register 0x00: identification, 0x010000ed for version 1.0. */
#define EDU_ID		0x010000edu
/*
 * Bytes per transfer. The buffer holds 4 KiB, but QEMU 7.2 refuses (and
 * aborts on) a transfer that ends exactly at its end; half of it is safe.
 */
#define EDU_DMA_MAX	2048
/* Per transfer: QEMU runs it from a 100 ms timer; TCG guests are slow. */
#define EDU_DMA_TIMEOUT_MS 5000

struct edu {
	char bdf[32];		/* "0000:00:04.0" */
	volatile uint8_t *bar;	/* BAR0 registers */
	size_t bar_len;
	int bar_fd;		/* sysfs resource0, or the VFIO device fd */
	int cfg_fd;		/* sysfs config, or the VFIO device fd */
	uint64_t cfg_off;	/* offset of the config space in cfg_fd */
	int container;		/* VFIO: container the device was set up in */
	bool vfio;		/* opened through VFIO */
	bool own_fds;		/* edu_close() closes/releases the fds */
};

/*
 * Finds the first edu device: writes its address to @bdf and returns 0, or
 * -ENODEV. @vfio_bound (may be NULL) tells whether vfio-pci drives it.
 */
int edu_find(char *bdf, size_t size, bool *vfio_bound);

/*
 * Open @bdf through sysfs (root; no IOMMU between it and RAM, or its DMA
 * faults): map resource0 and enable bus mastering through the config file.
 */
int edu_open_sysfs(struct edu *e, const char *bdf);

/*
 * Open @bdf, bound to vfio-pci, through libhpmem's VFIO support in
 * @container (HPM_VFIO_DEFAULT_CONTAINER for the library's own), which maps
 * the library's memory at its IOVAs. Needs hpm_init() first.
 */
int edu_open_vfio(struct edu *e, const char *bdf, int container);

/*
 * Drive a device whose VFIO fd this process received from another one
 * (fork, SCM_RIGHTS); edu_close() leaves @device_fd open.
 */
int edu_open_vfio_fd(struct edu *e, int device_fd);

/* Whichever of the two the device's driver calls for (vfio-pci or none). */
int edu_open(struct edu *e, const char *bdf);

void edu_close(struct edu *e);

/*
 * DMA @len bytes between RAM at @iova and the start of the device's
 * buffer: to RAM when @to_ram, else from RAM. Longer than EDU_DMA_MAX goes
 * in EDU_DMA_MAX pieces, each to or from the buffer's start (so only the
 * last piece stays in the buffer). Returns 0 or -ETIMEDOUT.
 */
int edu_dma(struct edu *e, uint64_t iova, size_t len, bool to_ram);

/*
 * Device-driven copy, RAM at @src -> device -> RAM at @dst, piece by piece.
 * Returns 0 or -ETIMEDOUT.
 */
int edu_copy(struct edu *e, uint64_t src, uint64_t dst, size_t len);

/* The identification register: EDU_ID when BAR0 is really the device. */
uint32_t edu_id(const struct edu *e);

#endif /* HPMEM_EXAMPLES_EDU_H */
