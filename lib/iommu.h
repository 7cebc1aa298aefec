/* SPDX-License-Identifier: MIT */
/* What the IOMMU does to device DMA, and the IOVA mode that follows. */
#ifndef HPM_IOMMU_H
#define HPM_IOMMU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hpmem/init.h>

/* As HPMEM_DMA_* of the UAPI, plus "nobody told us". */
enum hpm_dma_model {
	HPM_DMA_UNKNOWN = -1,
	HPM_DMA_NO_IOMMU = 0,
	HPM_DMA_PASSTHROUGH = 1,
	HPM_DMA_TRANSLATED = 2,
};

/* The sysfs root the probes below read; tests point them at a fake tree. */
#define HPM_SYSFS_ROOT	"/sys"

/*
 * From @root/kernel/iommu_groups/N/type: TRANSLATED when any group's
 * default domain is "DMA" or "DMA-FQ", PASSTHROUGH when groups exist but
 * none translates, NO_IOMMU when there are none.
 */
enum hpm_dma_model hpm_iommu_dma_model(const char *root);

/*
 * Input address bits every IOMMU can translate: the smallest MGAW (VT-d
 * capability register bits 21:16, plus 1) over @root/class/iommu/x/
 * intel-iommu/cap. 0 when unknown (no Intel IOMMU, unreadable).
 */
unsigned int hpm_iommu_width(const char *root);

const char *hpm_dma_model_name(enum hpm_dma_model m);

/* Everything the IOVA mode of a primary depends on. */
struct hpm_iova_facts {
	bool addrs;			/* physical addresses visible */
	enum hpm_dma_model dma;
	unsigned int width;		/* hpm_iommu_width(), 0 unknown */
	uint64_t base, size;		/* the region's VA range */
};

/*
 * Pure: the mode for @asked given @f, and in @why one line saying why
 * (for the log). 0, or -EPERM when PA is asked and addresses are hidden.
 * *@warn is set when the choice is allowed but only partly true (PA with
 * a translating IOMMU, VA beyond the IOMMU's width).
 */
int hpm_iova_choose(enum hpm_iova_mode asked, const struct hpm_iova_facts *f,
		    enum hpm_iova_mode *out, char *why, size_t why_len, bool *warn);

/* [start, end], both inclusive, as VFIO reports them. */
struct hpm_iova_range {
	uint64_t start, end;
};

/*
 * Pure: 0 when [iova, iova + len) lies inside one of @usable[0..n); n 0
 * means unknown and passes. -ERANGE otherwise (and for len 0 or overflow).
 */
int hpm_iova_range_check(const struct hpm_iova_range *usable, size_t n,
			 uint64_t iova, uint64_t len);

#endif /* HPM_IOMMU_H */
