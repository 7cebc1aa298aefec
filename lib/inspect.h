/* SPDX-License-Identifier: MIT */
/* How the read-only walkers (inspect.c) read another process's region. */
#ifndef HPM_INSPECT_PRIV_H
#define HPM_INSPECT_PRIV_H

#include <stddef.h>
#include <stdint.h>

/*
 * The region mapped read-only at @local in this process, while its own
 * processes use it at @base. Nothing read through a view is trusted: the
 * application changes it meanwhile, and a crashed or hostile primary may
 * have written anything. Every address read from the region is turned into
 * a local pointer by hpm_view_at() only, which is the range check.
 */
struct hpm_view {
	const char *local;
	uintptr_t base;
	uint64_t size;
};

/*
 * Where [@addr, @addr + @len) of the region can be read here, or NULL when
 * any of it lies outside the region or @addr is not @align-aligned (a
 * power of two; atomics and 64-bit loads want natural alignment).
 */
static inline const void *hpm_view_at(const struct hpm_view *v, uintptr_t addr, size_t len,
				      size_t align)
{
	uint64_t off = (uint64_t)addr - v->base;

	if (addr < v->base || off > v->size || len > v->size - off || (addr & (align - 1)))
		return NULL;
	return v->local + off;
}

/*
 * The region address of @p, a pointer into the view (the inverse of
 * hpm_view_at()).
 */
static inline uintptr_t hpm_view_addr(const struct hpm_view *v, const void *p)
{
	return v->base + (uintptr_t)((const char *)p - v->local);
}

#endif /* HPM_INSPECT_PRIV_H */
