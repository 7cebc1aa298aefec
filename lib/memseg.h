/* SPDX-License-Identifier: MIT */
/* Private memseg helpers: building the table, IOVA-contiguity checks. */
#ifndef HPM_MEMSEG_PRIV_H
#define HPM_MEMSEG_PRIV_H

#include <stdbool.h>
#include <stddef.h>

#include <hpmem/memseg.h>

#include "backend.h"
#include "config.h"

/* @b continues @a: same node, next VA, next IOVA (one contiguous run). */
static inline bool hpm_memseg_continues(const struct hpm_memseg *a, const struct hpm_memseg *b)
{
	return a->socket == b->socket && !((a->flags | b->flags) & HPM_MEMSEG_F_HOLE) &&
	       (uintptr_t)a->addr + a->len == (uintptr_t)b->addr &&
	       a->iova != HPM_BAD_IOVA && b->iova != HPM_BAD_IOVA &&
	       a->iova + a->len == b->iova;
}

/*
 * True when [va, va + len) lies in the region and its IOVAs are contiguous
 * (so one DMA descriptor can cover it). len 0 is contiguous when va is ours.
 */
bool hpm_memseg_iova_contig(const void *va, size_t len);

/* Region order: what a linear mapping at base gives. */
void hpm_memseg_sort_by_offset(struct hpm_be_seg *segs, size_t n);
/*
 * From region order (as sorted above) to physical order within each node,
 * leaving the first @keep pages (the config) in place, so physically
 * contiguous pages can be mapped at contiguous VAs. True when any page
 * moved.
 */
bool hpm_memseg_sort_by_iova(struct hpm_be_seg *segs, size_t n, size_t keep);

/*
 * Primary: fill cfg->memsegs and the offset table; @segs[i] is the page
 * mapped at base + i * page_sz. Sets HPM_CFG_F_REMAPPED when that is not
 * region order. IOVAs per @mode (resolved, not AUTO): PA takes them from
 * @segs, VA uses the address, COMPACT HPM_IOVA_COMPACT_BASE + (va - base).
 * 0 or -EINVAL (offset out of range, config pages moved, or PA asked with
 * unknown addresses).
 */
int hpm_memseg_table_fill(struct hpm_config *cfg, const struct hpm_be_seg *segs,
			  size_t n, enum hpm_iova_mode mode);

#endif /* HPM_MEMSEG_PRIV_H */
