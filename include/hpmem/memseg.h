/* SPDX-License-Identifier: MIT */
/* The memseg table: one entry per page of the region, in VA order. */
#ifndef HPMEM_MEMSEG_H
#define HPMEM_MEMSEG_H

#include <stdint.h>
#include <stdio.h>

#include <hpmem/common.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HPM_BAD_IOVA (~(uint64_t)0)

/*
 * One page. Entries live in the shared configuration, so the pointers are
 * valid in the primary and every secondary. Consecutive entries have
 * consecutive addresses; physically contiguous pages (kmod) come in
 * ascending IOVA order, so IOVA-contiguous runs show up as runs of entries.
 */
struct hpm_memseg {
	void *addr;
	uint64_t iova;		/* HPM_BAD_IOVA when unknown */
	size_t len;		/* bytes: the page size */
	uint64_t page_sz;
	int socket;		/* NUMA node */
	uint32_t flags;		/* HPM_MEMSEG_F_* */
};

/* The page holds the shared configuration (from its start). */
#define HPM_MEMSEG_F_CONFIG	(1U << 0)
/*
 * Dynamic memory (--socket-limit): no page is there now; the entry keeps
 * its address, length and node, its IOVA is HPM_BAD_IOVA. Pages come and
 * go under the heaps; an entry's IOVA is written before the flag is
 * cleared (release), so a reader that loads the flags with acquire and
 * finds the page present reads its true IOVA. Walks skip holes.
 */
#define HPM_MEMSEG_F_HOLE	(1U << 1)

/* IOVA of @va, or HPM_BAD_IOVA when it is not in the region. O(1). */
uint64_t hpm_virt2iova(const void *va);
/* The page holding @va, or NULL (hpm_errno = EINVAL). O(1). */
const struct hpm_memseg *hpm_virt2memseg(const void *va);
/*
 * Calls @fn for each present page in VA order until it returns non-zero; returns
 * that value, 0 when every call returned 0, or -ENODEV before hpm_init().
 */
int hpm_memseg_walk(int (*fn)(const struct hpm_memseg *ms, void *arg), void *arg);
/*
 * Same, once per run of pages contiguous in VA and IOVA on one node: @first
 * is the run's first page, @len its length in bytes.
 */
int hpm_memseg_contig_walk(int (*fn)(const struct hpm_memseg *first, size_t len,
				     void *arg), void *arg);
/* One line per contiguous run, and a summary, to @f. */
void hpm_memseg_dump(FILE *f);

#ifdef __cplusplus
}
#endif

#endif /* HPMEM_MEMSEG_H */
