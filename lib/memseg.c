// SPDX-License-Identifier: MIT
/* The memseg table: per-page VA, IOVA, node; lookups and walks. */
#include <stdlib.h>

#include <hpmem/memseg.h>

#include "config.h"
#include "internal.h"
#include "malloc_ext.h"
#include "memseg.h"

static int cmp_offset(const void *a, const void *b)
{
	const struct hpm_be_seg *x = a, *y = b;

	return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static int cmp_node_iova(const void *a, const void *b)
{
	const struct hpm_be_seg *x = a, *y = b;

	if (x->node != y->node)
		return x->node < y->node ? -1 : 1;
	return x->iova < y->iova ? -1 : x->iova > y->iova;
}

void hpm_memseg_sort_by_offset(struct hpm_be_seg *segs, size_t n)
{
	qsort(segs, n, sizeof(*segs), cmp_offset);
}

bool hpm_memseg_sort_by_iova(struct hpm_be_seg *segs, size_t n, size_t keep)
{
	if (n <= keep)
		return false;
	qsort(segs + keep, n - keep, sizeof(*segs), cmp_node_iova);
	/* The input was in offset order: any descent means pages moved. */
	for (size_t i = keep > 0 ? keep : 1; i < n; i++)
		if (segs[i].offset < segs[i - 1].offset)
			return true;
	return false;
}

int hpm_memseg_table_fill(struct hpm_config *cfg, const struct hpm_be_seg *segs,
			  size_t n, enum hpm_iova_mode mode)
{
	uint64_t *offs = hpm_config_offsets(cfg);
	bool pa = mode == HPM_IOVA_PA;

	if (n != cfg->nr_memsegs)
		return -EINVAL;
	cfg->flags &= ~HPM_CFG_F_REMAPPED;
	for (size_t i = 0; i < n; i++) {
		struct hpm_memseg *ms = &cfg->memsegs[i];
		uint64_t va_off = (uint64_t)i * cfg->page_sz;

		if (segs[i].offset >= cfg->size || segs[i].offset & (cfg->page_sz - 1))
			return -EINVAL;
		/* The config is read before the offsets: it stays in place. */
		if (va_off < cfg->cfg_len && segs[i].offset != va_off)
			return -EINVAL;
		if (pa && !segs[i].hole && segs[i].iova == HPM_BAD_IOVA)
			return -EINVAL;
		if (segs[i].offset != va_off)
			cfg->flags |= HPM_CFG_F_REMAPPED;
		offs[i] = segs[i].offset;
		ms->addr = (void *)(uintptr_t)(cfg->base + va_off);
		/*
		 * The only place IOVAs are made: heap, memzones, mempools and
		 * mbufs all ask hpm_virt2iova(), which reads them from here.
		 */
		if (segs[i].hole)
			ms->iova = HPM_BAD_IOVA;
		else if (pa)
			ms->iova = segs[i].iova;
		else if (mode == HPM_IOVA_COMPACT)
			ms->iova = HPM_IOVA_COMPACT_BASE + va_off;
		else
			ms->iova = (uint64_t)(uintptr_t)ms->addr;
		ms->len = cfg->page_sz;
		ms->page_sz = cfg->page_sz;
		ms->socket = segs[i].node;
		ms->flags = va_off < cfg->cfg_len ? HPM_MEMSEG_F_CONFIG : 0;
		if (segs[i].hole)
			ms->flags = HPM_MEMSEG_F_HOLE;
	}
	return 0;
}

static inline const struct hpm_memseg *lookup(const struct hpm_config *c, const void *va)
{
	uintptr_t off = (uintptr_t)va - (uintptr_t)c->base;

	/* One unsigned compare also rejects va below base. */
	if (off >= c->size)
		return NULL;
	return &c->memsegs[off >> c->page_shift];
}

__hpm_export uint64_t hpm_virt2iova(const void *va)
{
	const struct hpm_config *c = hpm_cfg;
	const struct hpm_memseg *ms;

	if (unlikely(!c))
		return HPM_BAD_IOVA;
	ms = lookup(c, va);
	if (unlikely(!ms))
		ms = hpm_ext_virt2memseg(va);	/* external heaps' memory */
	if (unlikely(!ms) || ms->iova == HPM_BAD_IOVA)
		return HPM_BAD_IOVA;
	return ms->iova + ((uintptr_t)va - (uintptr_t)ms->addr);
}

__hpm_export const struct hpm_memseg *hpm_virt2memseg(const void *va)
{
	const struct hpm_config *c = hpm_cfg;
	const struct hpm_memseg *ms;

	if (!c)
		return hpm_fail_ptr(ENODEV);
	ms = lookup(c, va);
	if (!ms)
		ms = hpm_ext_virt2memseg(va);	/* external heaps' memory */
	if (!ms)
		return hpm_fail_ptr(EINVAL);
	return ms;
}

bool hpm_memseg_iova_contig(const void *va, size_t len)
{
	const struct hpm_config *c = hpm_cfg;
	const struct hpm_memseg *first, *last;
	uintptr_t end;

	if (!c)
		return false;
	first = lookup(c, va);
	if (!first)
		return hpm_ext_iova_contig(va, len);
	if (len == 0)
		return true;
	if (__builtin_add_overflow((uintptr_t)va, len - 1, &end))
		return false;
	last = lookup(c, (const void *)end);
	if (!last)
		return false;
	for (const struct hpm_memseg *ms = first; ms < last; ms++) {
		if (ms[1].iova != ms->iova + ms->len ||
		    ms->iova == HPM_BAD_IOVA || ms[1].iova == HPM_BAD_IOVA)
			return false;
	}
	return true;
}

__hpm_export int hpm_memseg_walk(int (*fn)(const struct hpm_memseg *ms, void *arg),
				 void *arg)
{
	const struct hpm_config *c = hpm_cfg;

	if (!c)
		return hpm_fail(ENODEV);
	if (!fn)
		return hpm_fail(EINVAL);
	for (uint32_t i = 0; i < c->nr_memsegs; i++) {
		int ret;

		/* Acquire: pairs with dynmem.c's release when a page appears. */
		if (__atomic_load_n(&c->memsegs[i].flags, __ATOMIC_ACQUIRE) & HPM_MEMSEG_F_HOLE)
			continue;
		ret = fn(&c->memsegs[i], arg);
		if (ret)
			return ret;
	}
	return 0;
}

__hpm_export int hpm_memseg_contig_walk(int (*fn)(const struct hpm_memseg *first,
						  size_t len, void *arg), void *arg)
{
	const struct hpm_config *c = hpm_cfg;
	uint32_t i = 0;

	if (!c)
		return hpm_fail(ENODEV);
	if (!fn)
		return hpm_fail(EINVAL);
	while (i < c->nr_memsegs) {
		const struct hpm_memseg *first = &c->memsegs[i];
		size_t len = first->len;
		int ret;

		if (__atomic_load_n(&first->flags, __ATOMIC_ACQUIRE) & HPM_MEMSEG_F_HOLE) {
			i++;
			continue;
		}
		for (i++; i < c->nr_memsegs &&
		     hpm_memseg_continues(&c->memsegs[i - 1], &c->memsegs[i]); i++)
			len += c->memsegs[i].len;
		ret = fn(first, len, arg);
		if (ret)
			return ret;
	}
	return 0;
}

static int dump_run(const struct hpm_memseg *first, size_t len, void *arg)
{
	FILE *f = arg;

	fprintf(f, "  va %p-%p iova 0x%llx len %zu MiB (%zu pages) socket %d%s\n",
		first->addr, (void *)((uintptr_t)first->addr + len),
		(unsigned long long)first->iova, len >> 20, len / first->len,
		first->socket, first->flags & HPM_MEMSEG_F_CONFIG ? " [config]" : "");
	return 0;
}

__hpm_export void hpm_memseg_dump(FILE *f)
{
	const struct hpm_config *c = hpm_cfg;

	if (!f)
		f = stdout;
	if (!c) {
		fprintf(f, "hpmem: not initialised\n");
		return;
	}
	fprintf(f, "region '%s': %u pages of %llu KiB at %p, %llu MiB%s, config %llu KiB\n",
		c->region, c->nr_memsegs, (unsigned long long)(c->page_sz >> 10),
		(void *)(uintptr_t)c->base, (unsigned long long)(c->size >> 20),
		c->flags & HPM_CFG_F_DYNAMIC ? " reserved (dynamic)" : "",
		(unsigned long long)(c->cfg_len >> 10));
	hpm_memseg_contig_walk(dump_run, f);
}
