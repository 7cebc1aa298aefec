/* SPDX-License-Identifier: MIT */
/* The shared configuration: the first bytes of every region. */
#ifndef HPM_CONFIG_H
#define HPM_CONFIG_H

#include <stdatomic.h>
#include <stdint.h>

#include <hpmem/init.h>
#include <hpmem/memseg.h>
#include <hpmem/thread.h>

#include "dynmem.h"
#include "internal.h"
#include "malloc_ext.h"
#include "malloc_heap.h"

/* "HPMEMCFG": a region that does not start with it is not ours. */
#define HPM_CFG_MAGIC		0x4746434d454d5048ULL
/*
 * Bump on any change to struct hpm_config or to anything it embeds
 * (heaps, memsegs, thread slots), and on any change to the layout or
 * protocol of an object processes share through the region (rings,
 * mempools): a secondary must not run another protocol on them. The
 * struct sizes are checked as well, so a forgotten bump is still caught
 * when a size changes. 3: rings lock each MP/MC side. 4: heap elements
 * on a cache-line grid with an 8-byte trailer in every build. 5: dynamic
 * memory (struct hpm_dyn, memseg holes). 6: heap runs with their base,
 * removable at runtime; external heaps.
 */
#define HPM_CFG_LAYOUT_VERSION	6

/* A thread slot's owner: pid << 32 | tid, 0 when free. */
struct hpm_thread_slot {
	_Atomic uint64_t owner;
};

/*
 * Lives at offset 0 of the region, mapped at cfg->base in every process,
 * so pointers into the region (memsegs, heaps, memzone_tbl) are valid
 * everywhere. Fields up to @cfg_size never move: a secondary reads them
 * before it knows whether the rest matches its own layout.
 */
struct hpm_config {
	_Atomic uint64_t magic;		/* HPM_CFG_MAGIC, written last */
	uint32_t layout_version;	/* HPM_CFG_LAYOUT_VERSION */
	uint32_t cfg_size;		/* sizeof(struct hpm_config) */
	uint32_t memseg_size;		/* sizeof(struct hpm_memseg) */
	uint32_t heap_size;		/* sizeof(struct hpm_heap) */
	/*
	 * Set to 1 by the primary once everything below is in place; release
	 * store in init.c pairs with the secondary's acquire load.
	 */
	atomic_uint ready;
	int32_t primary_pid;
	uint64_t base;			/* VA of offset 0 in every process */
	uint64_t size;			/* bytes of the region, all mapped */
	uint64_t cfg_len;		/* bytes used by this struct + memsegs */

	uint32_t backend;		/* enum hpm_backend */
	uint32_t iova_mode;		/* enum hpm_iova_mode, resolved */
	uint64_t page_sz;
	uint32_t page_shift;
	uint32_t nr_memsegs;
	uint32_t socket_mask;		/* bit n: node n has pages here */
	uint32_t max_memzones;
	uint32_t flags;			/* HPM_CFG_F_* */
	uint32_t pad0;
	char region[HPM_NAME_SIZE];

	/* Owned by memzone.c: set by hpm_memzone_setup() in the primary. */
	void *memzone_tbl;

	struct hpm_thread_slot threads[HPM_MAX_THREADS] __hpm_cache_aligned;

	/* Node heaps, then external heaps (malloc_ext.c). */
	struct hpm_heap heaps[HPM_HEAP_SLOTS] __hpm_cache_aligned;
	struct hpm_ext_tbl ext __hpm_cache_aligned;

	/* Dynamic memory (dynmem.c): zero unless HPM_CFG_F_DYNAMIC. */
	struct hpm_dyn dyn __hpm_cache_aligned;

	/*
	 * nr_memsegs entries in VA order, then nr_memsegs region offsets
	 * (hpm_config_offsets()): page i is at base + i * page_sz and maps
	 * region offset offsets[i]. Offsets equal i * page_sz unless
	 * HPM_CFG_F_REMAPPED.
	 */
	struct hpm_memseg memsegs[] __hpm_cache_aligned;
};

/*
 * Pages are not mapped in region order: the primary put physically
 * contiguous hugetlbfs pages at contiguous VAs, and secondaries map page
 * by page from the offset table.
 */
#define HPM_CFG_F_REMAPPED	(1U << 0)
/*
 * VFIO type1 can pin every page (get_user_pages() works on the mapping):
 * file backends, and kmod regions created HPMEM_REGION_PINNABLE.
 */
#define HPM_CFG_F_PINNABLE	(1U << 1)
/*
 * Dynamic memory: the region is reserved for every node's limit and
 * mapped whole; memsegs flagged HPM_MEMSEG_F_HOLE have no page yet
 * (struct hpm_dyn says where each node's slice lies).
 */
#define HPM_CFG_F_DYNAMIC	(1U << 2)

static inline uint64_t *hpm_config_offsets(struct hpm_config *c)
{
	return (uint64_t *)&c->memsegs[c->nr_memsegs];
}

/* This process's view of the region; NULL until hpm_init() succeeds. */
extern struct hpm_config *hpm_cfg;

static inline struct hpm_config *hpm_config(void)
{
	return hpm_cfg;
}

/* Bytes of config + @nr_memsegs memsegs and offsets, rounded up to 4 KiB. */
size_t hpm_config_len(uint32_t nr_memsegs);
/* Primary: write layout fields, then the magic (release). */
void hpm_config_init_header(struct hpm_config *c);
/*
 * Secondary: 0 when @c matches this library's layout, -EAGAIN when the
 * primary has not written it yet, -EPROTO (logged) when it differs.
 */
int hpm_config_check(struct hpm_config *c);

struct hpm_be;
/*
 * Secondary, before it maps anything the config describes: the header of
 * a ready config (only its first page is mapped at @c) is consistent with
 * itself and with the region @be opened. A crashed or hostile primary may
 * have written anything: 0, or -EPROTO with one log line naming the field.
 */
int hpm_config_check_header(const struct hpm_config *c, const struct hpm_be *be);
/* Secondary, remapped regions: entry @i of header-checked @c's offset table. */
int hpm_config_check_offset(const struct hpm_config *c, uint32_t i, uint64_t off);
/*
 * Secondary, after mapping the whole region at c->base: the memseg table,
 * the heaps' read-mostly fields and the memzone table. 0 or -EPROTO.
 */
int hpm_config_check_tables(const struct hpm_config *c);
struct hpm_view;
/*
 * The same for @c, a private copy of a region's config, whose tables are
 * read through @v (inspect.c: the region mapped elsewhere, read-only).
 */
int hpm_config_check_tables_view(const struct hpm_config *c, const struct hpm_view *v);
/*
 * [@at, @at + @len) of memsegs-checked @c lies on pages that are there:
 * always in a fixed region; a dynamic region's holes raise SIGBUS (kmod)
 * or read as zero pages that a later grow replaces (files).
 */
bool hpm_config_range_present(const struct hpm_config *c, uintptr_t at, size_t len);

#endif /* HPM_CONFIG_H */
