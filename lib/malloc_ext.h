/* SPDX-License-Identifier: MIT */
/* External heaps (malloc_ext.c): their names, chunks and page tables, in the shared config. */
#ifndef HPM_MALLOC_EXT_H
#define HPM_MALLOC_EXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hpmem/malloc.h>
#include <hpmem/memseg.h>

#include "robust_lock.h"

/* Processes other than the adder that may attach to one chunk. */
#define HPM_EXT_ATTACH_MAX	8

/*
 * One hpm_malloc_heap_memory_add() call. @va == 0: an empty slot. Lock-free
 * readers (hpm_ext_virt2memseg()) see a slot only once @ms is in place:
 * it is filled with @len last and emptied @len first.
 */
struct hpm_ext_chunk {
	uintptr_t va;
	uint64_t len;
	uint64_t page_sz;
	uint32_t n_pages;
	uint32_t pad;
	/* n_pages entries, in a block of the node heaps (shared, same VA everywhere). */
	struct hpm_memseg *ms;
	int32_t attached[HPM_EXT_ATTACH_MAX];	/* pids, 0 = free */
};

struct hpm_ext_heap {
	char name[HPM_MALLOC_HEAP_NAME_SIZE];
	uint32_t in_use;
	uint32_t nr_chunks;	/* slots used or once used */
	struct hpm_ext_chunk chunks[HPM_EXT_HEAP_MAX_CHUNKS];
};

/* In struct hpm_config; heap i's TLSF heap is cfg->heaps[HPM_MAX_NODES + i]. */
struct hpm_ext_tbl {
	/* Serialises create/destroy/add/remove/attach/detach. */
	hpm_robust_lock_t lock;
	/* Bit i: external heap i exists (read lock-free by pointer lookups). */
	uint32_t mask;
	struct hpm_ext_heap heap[HPM_MAX_EXT_HEAPS];
};

/*
 * The page of external memory holding @va, or NULL; lock-free, for
 * hpm_virt2memseg()/hpm_virt2iova() on addresses outside the region.
 */
const struct hpm_memseg *hpm_ext_virt2memseg(const void *va);
/* [va, va + len) IOVA-contiguous in external memory (false outside it). */
bool hpm_ext_iova_contig(const void *va, size_t len);

struct hpm_config;
/*
 * Secondary (and inspect): the external heap table of @c, whose chunk
 * tables every lookup trusts, is sane: 0, or -EPROTO (logged).
 */
int hpm_ext_check(const struct hpm_config *c);

#endif /* HPM_MALLOC_EXT_H */
