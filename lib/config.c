// SPDX-License-Identifier: MIT
/* The shared configuration's header: written by the primary, checked by secondaries. */
#include <stddef.h>
#include <string.h>

#include "backend.h"
#include "config.h"
#include "inspect.h"
#include "internal.h"
#include "memzone.h"

struct hpm_config *hpm_cfg;

size_t hpm_config_len(uint32_t nr_memsegs)
{
	size_t len = offsetof(struct hpm_config, memsegs) +
		     (size_t)nr_memsegs * (sizeof(struct hpm_memseg) + sizeof(uint64_t));

	/* Heap memory starts on its own 4 KiB page after the config. */
	return HPM_ALIGN_UP(len, (size_t)4096);
}

void hpm_config_init_header(struct hpm_config *c)
{
	c->layout_version = HPM_CFG_LAYOUT_VERSION;
	c->cfg_size = sizeof(struct hpm_config);
	c->memseg_size = sizeof(struct hpm_memseg);
	c->heap_size = sizeof(struct hpm_heap);
	/*
	 * The magic goes last: a secondary that sees it can trust the fields
	 * above. Pairs with the acquire load in hpm_config_check().
	 */
	atomic_store_explicit(&c->magic, HPM_CFG_MAGIC,
			      memory_order_release);
}

int hpm_config_check(struct hpm_config *c)
{
	uint64_t magic = atomic_load_explicit(&c->magic,
					      memory_order_acquire);

	if (magic == 0)
		return -EAGAIN;	/* primary still setting up */
	if (magic != HPM_CFG_MAGIC) {
		hpm_log(HPM_LOG_ERR, "the region does not hold an hpmem configuration "
			"(magic 0x%llx)", (unsigned long long)magic);
		return -EPROTO;
	}
	if (c->layout_version != HPM_CFG_LAYOUT_VERSION ||
	    c->cfg_size != sizeof(struct hpm_config) ||
	    c->memseg_size != sizeof(struct hpm_memseg) ||
	    c->heap_size != sizeof(struct hpm_heap)) {
		hpm_log(HPM_LOG_ERR, "region's shared layout is v%u (config %u, memseg %u, "
			"heap %u bytes); this library uses v%u (%zu, %zu, %zu): "
			"rebuild primary and secondary against the same libhpmem",
			c->layout_version, c->cfg_size, c->memseg_size, c->heap_size,
			HPM_CFG_LAYOUT_VERSION, sizeof(struct hpm_config),
			sizeof(struct hpm_memseg), sizeof(struct hpm_heap));
		return -EPROTO;
	}
	return 0;
}

/*
 * Highest user address any x86-64 or arm64 process can have (5-level
 * paging / 52-bit VAs included); a base + size above it is garbage.
 */
#define HPM_VA_LIMIT	(1ULL << 57)

#define bad_field(name, fmt, ...) \
	hpm_log(HPM_LOG_ERR, "shared config: bad " name " (" fmt "), refusing the region", \
		__VA_ARGS__)

int hpm_config_check_header(const struct hpm_config *c, const struct hpm_be *be)
{
	uint64_t psz = c->page_sz, base = c->base, size = c->size;
	uintptr_t tbl = (uintptr_t)c->memzone_tbl;

	/* Ordered so that each check may rely on the ones before it. */
	if (c->backend != (uint32_t)be->ops->type) {
		bad_field("backend", "%u, the region is on %s", c->backend, be->ops->name);
		return -EPROTO;
	}
	if (psz != be->page_sz) {
		bad_field("page_sz", "%llu, the region has %llu-byte pages",
			  (unsigned long long)psz, (unsigned long long)be->page_sz);
		return -EPROTO;
	}
	if (c->page_shift >= 64 || (1ULL << c->page_shift) != psz) {
		bad_field("page_shift", "%u for %llu-byte pages", c->page_shift,
			  (unsigned long long)psz);
		return -EPROTO;
	}
	if (size == 0 || (size & (psz - 1)) || size > be->size) {
		bad_field("size", "%llu, the region has %llu bytes",
			  (unsigned long long)size, (unsigned long long)be->size);
		return -EPROTO;
	}
	if (c->nr_memsegs == 0 || c->nr_memsegs != size >> c->page_shift) {
		bad_field("nr_memsegs", "%u for %llu bytes", c->nr_memsegs,
			  (unsigned long long)size);
		return -EPROTO;
	}
	if (c->cfg_len != hpm_config_len(c->nr_memsegs) || c->cfg_len + 4096 > size) {
		bad_field("cfg_len", "%llu for %u memsegs", (unsigned long long)c->cfg_len,
			  c->nr_memsegs);
		return -EPROTO;
	}
	if (base == 0 || (base & (psz - 1)) || base + size < base ||
	    base + size > HPM_VA_LIMIT) {
		bad_field("base", "0x%llx for 0x%llx bytes", (unsigned long long)base,
			  (unsigned long long)size);
		return -EPROTO;
	}
	if (c->iova_mode < HPM_IOVA_PA || c->iova_mode > HPM_IOVA_COMPACT) {
		bad_field("iova_mode", "%u", c->iova_mode);
		return -EPROTO;
	}
	if (c->socket_mask == 0 || (c->socket_mask >> HPM_MAX_NODES)) {
		bad_field("socket_mask", "0x%x", c->socket_mask);
		return -EPROTO;
	}
	/* hpm_memzone_setup()'s own limit. */
	if (c->max_memzones == 0 || c->max_memzones > (1U << 28)) {
		bad_field("max_memzones", "%u", c->max_memzones);
		return -EPROTO;
	}
	if (c->flags & ~(HPM_CFG_F_REMAPPED | HPM_CFG_F_PINNABLE | HPM_CFG_F_DYNAMIC) ||
	    ((c->flags & HPM_CFG_F_DYNAMIC) && (c->flags & HPM_CFG_F_REMAPPED))) {
		bad_field("flags", "0x%x", c->flags);
		return -EPROTO;
	}
	if (!memchr(c->region, '\0', sizeof(c->region)) || strcmp(c->region, be->name)) {
		bad_field("region", "'%.*s', attached to '%s'", (int)sizeof(c->region),
			  c->region, be->name);
		return -EPROTO;
	}
	/* Its contents are checked once mapped, by hpm_config_check_tables(). */
	if (tbl < base + c->cfg_len || tbl >= base + size) {
		bad_field("memzone_tbl", "%p outside the heap memory", c->memzone_tbl);
		return -EPROTO;
	}
	return 0;
}

int hpm_config_check_offset(const struct hpm_config *c, uint32_t i, uint64_t off)
{
	uint64_t va_off = (uint64_t)i * c->page_sz;

	/*
	 * Page aligned, inside the region, and the config's own pages in
	 * place (as hpm_memseg_table_fill() makes them).
	 */
	if (off >= c->size || (off & (c->page_sz - 1)) || (va_off < c->cfg_len && off != va_off)) {
		bad_field("offsets", "[%u] = 0x%llx", i, (unsigned long long)off);
		return -EPROTO;
	}
	return 0;
}

/*
 * A heap's fields that are fixed after hpm_init() in the primary; free
 * lists change under the heap lock and are the heap's own business
 * (hpm_heap_validate()).
 */
static int check_heap(const struct hpm_config *c, int n)
{
	const struct hpm_heap *h = &c->heaps[n];
	uintptr_t lo = c->base + c->cfg_len, hi = c->base + c->size;

	if (h->magic != HPM_HEAP_MAGIC || h->socket != n || h->nr_runs > HPM_HEAP_MAX_RUNS) {
		bad_field("heaps", "[%d]: magic 0x%x, socket %d, %u runs", n, h->magic,
			  h->socket, h->nr_runs);
		return -EPROTO;
	}
	if (h->nr_runs && (h->lo < lo || h->hi > hi || h->lo >= h->hi)) {
		bad_field("heaps", "[%d]: range 0x%lx-0x%lx", n, (unsigned long)h->lo,
			  (unsigned long)h->hi);
		return -EPROTO;
	}
	for (uint32_t r = 0; r < h->nr_runs; r++) {
		/* An empty slot: a run removed at runtime (malloc_heap.c). */
		if (!h->runs[r].start && !h->runs[r].end && !h->runs[r].base)
			continue;
		if (h->runs[r].start < h->lo || h->runs[r].end > h->hi ||
		    h->runs[r].start >= h->runs[r].end || h->runs[r].base > h->runs[r].start) {
			bad_field("heaps", "[%d].runs[%u]: 0x%lx-0x%lx", n, r,
				  (unsigned long)h->runs[r].start,
				  (unsigned long)h->runs[r].end);
			return -EPROTO;
		}
	}
	return 0;
}

bool hpm_config_range_present(const struct hpm_config *c, uintptr_t at, size_t len)
{
	uintptr_t end = at + len;

	if (!(c->flags & HPM_CFG_F_DYNAMIC))
		return true;
	if (len == 0 || end < at || at < c->base || end > c->base + c->size)
		return false;
	for (uintptr_t i = (at - c->base) >> c->page_shift;
	     i <= (end - 1 - c->base) >> c->page_shift; i++)
		if (__atomic_load_n(&c->memsegs[i].flags, __ATOMIC_ACQUIRE) & HPM_MEMSEG_F_HOLE)
			return false;
	return true;
}

int hpm_config_check_tables(const struct hpm_config *c)
{
	/* Mapped at c->base in this process: the view is the identity. */
	struct hpm_view v = { (const char *)(uintptr_t)c->base, (uintptr_t)c->base, c->size };

	return hpm_config_check_tables_view(c, &v);
}

int hpm_config_check_tables_view(const struct hpm_config *c, const struct hpm_view *v)
{
	int ret;

	for (uint32_t i = 0; i < c->nr_memsegs; i++) {
		const struct hpm_memseg *ms = &c->memsegs[i];
		uint64_t va_off = (uint64_t)i * c->page_sz;
		uint64_t want_iova = c->iova_mode == HPM_IOVA_VA ? c->base + va_off :
				     HPM_IOVA_COMPACT_BASE + va_off;
		uint32_t flags = __atomic_load_n(&ms->flags, __ATOMIC_ACQUIRE);
		/* Dynamic: pages come and go meanwhile; a hole has no IOVA to check. */
		bool hole = (c->flags & HPM_CFG_F_DYNAMIC) && va_off >= c->cfg_len &&
			    (flags == HPM_MEMSEG_F_HOLE ||
			     (flags == 0 && __atomic_load_n(&ms->iova, __ATOMIC_RELAXED) ==
			      HPM_BAD_IOVA));

		/* hpm_virt2memseg() and hpm_virt2iova() trust all of these. */
		if ((uintptr_t)ms->addr != c->base + va_off || ms->len != c->page_sz ||
		    ms->page_sz != c->page_sz || ms->socket < 0 ||
		    ms->socket >= HPM_MAX_NODES || !(c->socket_mask & (1U << ms->socket)) ||
		    (!hole && flags != (va_off < c->cfg_len ? HPM_MEMSEG_F_CONFIG : 0U)) ||
		    (!hole && c->iova_mode != HPM_IOVA_PA && ms->iova != want_iova)) {
			bad_field("memsegs", "[%u]: addr %p, len %zu, socket %d, flags 0x%x",
				  i, ms->addr, ms->len, ms->socket, ms->flags);
			return -EPROTO;
		}
	}
	for (int n = 0; n < HPM_MAX_NODES; n++) {
		ret = check_heap(c, n);
		if (ret)
			return ret;
	}
	ret = hpm_ext_check(c);
	if (ret)
		return ret;
	return hpm_memzone_table_check(c, v);
}
