// SPDX-License-Identifier: MIT
/*
 * Public hpm_malloc() family: DPDK's rte_malloc() semantics (type ignored,
 * explicit socket is strict) over the per-node heaps of malloc_heap.c.
 */
#include <stdio.h>
#include <string.h>

#include <hpmem/malloc.h>

#include "config.h"
#include "internal.h"
#include "malloc_heap.h"

/* Heap slots in use: external heaps exist only over an initialised region. */
static int heap_slots(void)
{
	return hpm_config() ? HPM_HEAP_SLOTS : HPM_MAX_NODES;
}

/* Explicit node: that node only, as rte_malloc_socket() does. */
static inline unsigned int socket_flags(int socket)
{
	return socket == HPM_SOCKET_ANY ? 0 : HPM_HEAP_F_STRICT;
}

__hpm_export void *hpm_malloc_socket(const char *type, size_t size,
				     unsigned int align, int socket)
{
	(void)type;
	return hpm_heap_alloc(socket, size, align, 0, socket_flags(socket));
}

__hpm_export void *hpm_malloc(const char *type, size_t size, unsigned int align)
{
	(void)type;
	return hpm_heap_alloc_any(size, align);
}

__hpm_export void *hpm_zmalloc_socket(const char *type, size_t size,
				      unsigned int align, int socket)
{
	(void)type;
	return hpm_heap_alloc(socket, size, align, 0,
			      socket_flags(socket) | HPM_HEAP_F_ZERO);
}

__hpm_export void *hpm_zmalloc(const char *type, size_t size, unsigned int align)
{
	return hpm_zmalloc_socket(type, size, align, HPM_SOCKET_ANY);
}

__hpm_export void *hpm_calloc_socket(const char *type, size_t num, size_t size,
				     unsigned int align, int socket)
{
	size_t total;

	if (__builtin_mul_overflow(num, size, &total))
		return hpm_fail_ptr(ENOMEM);
	return hpm_zmalloc_socket(type, total, align, socket);
}

__hpm_export void *hpm_calloc(const char *type, size_t num, size_t size,
			      unsigned int align)
{
	return hpm_calloc_socket(type, num, size, align, HPM_SOCKET_ANY);
}

__hpm_export void *hpm_realloc_socket(void *ptr, size_t size, unsigned int align,
				      int socket)
{
	return hpm_heap_realloc(ptr, size, align, socket, 0);
}

__hpm_export void *hpm_realloc(void *ptr, size_t size, unsigned int align)
{
	return hpm_heap_realloc(ptr, size, align, HPM_SOCKET_ANY, 0);
}

__hpm_export void hpm_free(void *ptr)
{
	/* hpm_heap_free() logs the reason and sets hpm_errno. */
	(void)hpm_heap_free(ptr);
}

__hpm_export void hpm_free_sensitive(void *ptr)
{
	/* 0 for NULL and for anything that is not a live block: no write. */
	size_t n = hpm_heap_usable_size(ptr);

	if (n)
		explicit_bzero(ptr, n);
	(void)hpm_heap_free(ptr);
}

__hpm_export size_t hpm_malloc_usable_size(const void *ptr)
{
	return hpm_heap_usable_size(ptr);
}

__hpm_export int hpm_malloc_get_socket_stats(int socket,
					     struct hpm_malloc_socket_stats *stats)
{
	struct hpm_heap *tbl = hpm_heap_table();
	struct hpm_heap_stats st;

	/* An external heap's socket id counts only while the heap exists (as DPDK). */
	if (!stats || socket < 0 || socket >= heap_slots() ||
	    (socket >= HPM_MAX_NODES && hpm_malloc_heap_socket_is_external(socket) != 1))
		return hpm_fail(EINVAL);
	hpm_heap_stats(tbl ? &tbl[socket] : NULL, &st);
	stats->heap_totalsz_bytes = st.total;
	stats->heap_freesz_bytes = st.free;
	stats->heap_allocsz_bytes = st.alloc;
	stats->greatest_free_size = st.greatest_free;
	stats->free_count = (unsigned int)st.free_count;
	stats->alloc_count = (unsigned int)st.alloc_count;
	return 0;
}

__hpm_export void hpm_malloc_dump_stats(FILE *f, int socket)
{
	struct hpm_heap *tbl = hpm_heap_table();

	for (int s = 0; s < heap_slots(); s++) {
		struct hpm_heap_stats st;

		if (socket != HPM_SOCKET_ANY && socket != s)
			continue;
		hpm_heap_stats(tbl ? &tbl[s] : NULL, &st);
		if (!st.total && socket == HPM_SOCKET_ANY)
			continue;
		fprintf(f, "heap %d: total %llu free %llu (%llu blocks, largest %llu) "
			"allocated %llu (%llu blocks) runs %u\n", s,
			(unsigned long long)st.total, (unsigned long long)st.free,
			(unsigned long long)st.free_count,
			(unsigned long long)st.greatest_free,
			(unsigned long long)st.alloc,
			(unsigned long long)st.alloc_count, st.runs);
	}
}

__hpm_export int hpm_malloc_validate(void)
{
	struct hpm_heap *tbl = hpm_heap_table();

	if (!tbl)
		return 0;
	for (int s = 0; s < heap_slots(); s++) {
		int ret;

		if (tbl[s].magic != HPM_HEAP_MAGIC)
			continue;
		ret = hpm_heap_validate(&tbl[s]);
		if (ret)
			return ret;
	}
	return 0;
}
