// SPDX-License-Identifier: MIT
/* User-owned mempool caches (rte_mempool_cache_create/free); flush is in mempool.c. */
#include <stdlib.h>
#include <string.h>

#include <hpmem/mempool.h>

#include "internal.h"

__hpm_export struct hpm_mempool_cache *hpm_mempool_cache_create(uint32_t size,
								int socket)
{
	struct hpm_mempool_cache *c;
	size_t bytes;

	(void)socket;	/* process memory: the caller's thread touches it first */
	if (size == 0 || size > HPM_MEMPOOL_CACHE_MAX_SIZE)
		return hpm_fail_ptr(EINVAL);
	/*
	 * size slots are enough: a refill leaves at most n + size / 2 with
	 * n <= size / 2, a flush at most size / 2 + n (see mempool.c).
	 */
	bytes = HPM_ALIGN_UP(sizeof(*c) + (size_t)size * sizeof(void *),
			     (size_t)HPM_CACHE_LINE_SIZE);
	c = aligned_alloc(HPM_CACHE_LINE_SIZE, bytes);
	if (!c)
		return hpm_fail_ptr(ENOMEM);
	memset(c, 0, sizeof(*c));
	c->size = size;
	c->half = size / 2;
	return c;
}

__hpm_export void hpm_mempool_cache_free(struct hpm_mempool_cache *cache)
{
	free(cache);
}
