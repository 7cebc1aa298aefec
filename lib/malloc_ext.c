// SPDX-License-Identifier: MIT
/*
 * External heaps, DPDK's rte_malloc_heap_*(): named TLSF heaps over memory
 * the application maps itself, with socket ids above the nodes'. Names,
 * chunks and per-page IOVA tables live in the shared config (struct
 * hpm_ext_tbl), so every process of the region sees them.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <hpmem/malloc.h>
#include <hpmem/memseg.h>

#include "config.h"
#include "internal.h"
#include "malloc_elem.h"
#include "malloc_ext.h"
#include "malloc_heap.h"

static struct hpm_ext_tbl *ext_tbl(void)
{
	struct hpm_config *c = hpm_config();

	return c ? &c->ext : NULL;
}

static struct hpm_heap *ext_heap(int i)
{
	return &hpm_config()->heaps[HPM_MAX_NODES + i];
}

/* 0, or -EINVAL for a NULL, empty or too long name (as DPDK). */
static int name_check(const char *name)
{
	size_t n;

	if (!name)
		return -EINVAL;
	n = strnlen(name, HPM_MALLOC_HEAP_NAME_SIZE);
	return n == 0 || n == HPM_MALLOC_HEAP_NAME_SIZE ? -EINVAL : 0;
}

/* Node of a node heap's name ("socket_N", as DPDK names them), or -1. */
static int node_of_name(const char *name)
{
	struct hpm_config *c = hpm_config();
	unsigned int n;
	int used = 0;

	if (sscanf(name, "socket_%u%n", &n, &used) != 1 || name[used] ||
	    n >= HPM_MAX_NODES || !(c->socket_mask & (1u << n)))
		return -1;
	return (int)n;
}

/* Index of external heap @name, or -1; the table lock or a stable table. */
static int find_heap(struct hpm_ext_tbl *t, const char *name)
{
	for (int i = 0; i < HPM_MAX_EXT_HEAPS; i++)
		if (t->heap[i].in_use &&
		    !strncmp(t->heap[i].name, name, HPM_MALLOC_HEAP_NAME_SIZE))
			return i;
	return -1;
}

static void ext_lock(struct hpm_ext_tbl *t)
{
	/* Every update below leaves the table consistent: nothing to repair. */
	(void)hpm_robust_lock(&t->lock);
}

static void ext_unlock(struct hpm_ext_tbl *t)
{
	hpm_robust_unlock(&t->lock);
}

/*
 * The common checks of the calls that name a heap: the table locked and
 * the heap's index in *@idx, or a negative errno (unlocked).
 */
static int lock_heap(const char *name, struct hpm_ext_tbl **tp, int *idx)
{
	struct hpm_ext_tbl *t = ext_tbl();
	int ret = name_check(name);

	if (ret)
		return ret;
	if (!t)
		return -ENODEV;
	if (node_of_name(name) >= 0)
		return -EPERM;
	ext_lock(t);
	*idx = find_heap(t, name);
	if (*idx < 0) {
		ext_unlock(t);
		return -ENOENT;
	}
	*tp = t;
	return 0;
}

__hpm_export int hpm_malloc_heap_create(const char *name)
{
	struct hpm_ext_tbl *t = ext_tbl();
	struct hpm_ext_heap *x;
	int ret = name_check(name), i;

	if (ret)
		return hpm_fail(-ret);
	if (!t)
		return hpm_fail(ENODEV);
	if (node_of_name(name) >= 0)
		return hpm_fail(EEXIST);
	ext_lock(t);
	if (find_heap(t, name) >= 0) {
		ext_unlock(t);
		return hpm_fail(EEXIST);
	}
	for (i = 0; i < HPM_MAX_EXT_HEAPS && t->heap[i].in_use; i++)
		;
	if (i == HPM_MAX_EXT_HEAPS) {
		ext_unlock(t);
		return hpm_fail(ENOSPC);
	}
	x = &t->heap[i];
	memset(x, 0, sizeof(*x));
	memcpy(x->name, name, strlen(name) + 1);
	hpm_heap_init(ext_heap(i), HPM_MAX_NODES + i);
	x->in_use = 1;
	/* Release: a lookup that sees the bit sees an initialised heap. */
	__atomic_fetch_or(&t->mask, 1u << i, __ATOMIC_RELEASE);
	ext_unlock(t);
	return 0;
}

__hpm_export int hpm_malloc_heap_destroy(const char *name)
{
	struct hpm_ext_tbl *t;
	struct hpm_heap *h;
	int ret, i;

	ret = lock_heap(name, &t, &i);
	if (ret)
		return hpm_fail(-ret);
	h = ext_heap(i);
	for (uint32_t c = 0; c < t->heap[i].nr_chunks; c++)
		if (t->heap[i].chunks[c].len)
			ret = -EBUSY;
	/* No chunk means no memory, so no block either; but say so plainly. */
	if (h->alloc_count || h->total_bytes)
		ret = -EBUSY;
	if (!ret) {
		__atomic_fetch_and(&t->mask, ~(1u << i), __ATOMIC_RELEASE);
		h->magic = 0;
		memset(&t->heap[i], 0, sizeof(t->heap[i]));
	}
	ext_unlock(t);
	return ret ? hpm_fail(-ret) : 0;
}

/* Overlap of [va, va + len) with the region or with any heap's chunk. */
static bool ext_overlaps(struct hpm_ext_tbl *t, uintptr_t va, size_t len)
{
	struct hpm_config *c = hpm_config();

	if (va < c->base + c->size && va + len > c->base)
		return true;
	for (int i = 0; i < HPM_MAX_EXT_HEAPS; i++) {
		for (uint32_t j = 0; t->heap[i].in_use && j < t->heap[i].nr_chunks; j++) {
			const struct hpm_ext_chunk *k = &t->heap[i].chunks[j];

			if (k->len && va < k->va + k->len && va + len > k->va)
				return true;
		}
	}
	return false;
}

static void chunk_unpublish(struct hpm_ext_chunk *k)
{
	/* @len first: a lock-free reader then skips the slot. */
	__atomic_store_n(&k->len, 0, __ATOMIC_RELEASE);
	hpm_heap_free(k->ms);
	k->ms = NULL;
	k->va = 0;
	memset(k->attached, 0, sizeof(k->attached));
}

__hpm_export int hpm_malloc_heap_memory_add(const char *name, void *va, size_t len,
					    const uint64_t iova_addrs[],
					    unsigned int n_pages, size_t page_sz)
{
	uintptr_t a = (uintptr_t)va;
	struct hpm_ext_chunk *k = NULL;
	struct hpm_ext_heap *x;
	struct hpm_ext_tbl *t;
	struct hpm_memseg *ms;
	size_t n;
	int ret, i;

	if (!va || !page_sz || !HPM_IS_POW2(page_sz) || !len || len % page_sz ||
	    (a & (page_sz - 1)) || a + len < a ||
	    (iova_addrs && n_pages != len / page_sz))
		return hpm_fail(EINVAL);
	n = len / page_sz;
	if (n > UINT32_MAX)
		return hpm_fail(EINVAL);
	ret = lock_heap(name, &t, &i);
	if (ret)
		return hpm_fail(-ret);
	x = &t->heap[i];
	if (ext_overlaps(t, a, len)) {
		ret = -EINVAL;
		goto out;
	}
	for (uint32_t j = 0; j < HPM_EXT_HEAP_MAX_CHUNKS && !k; j++)
		if (j >= x->nr_chunks || !x->chunks[j].len)
			k = &x->chunks[j];
	if (!k) {
		ret = -ENOSPC;
		goto out;
	}
	/* The page table lives in the region, so every process reads it. */
	ms = hpm_heap_alloc(HPM_SOCKET_ANY, n * sizeof(*ms), 0, 0, 0);
	if (!ms) {
		ret = -ENOMEM;
		goto out;
	}
	for (size_t p = 0; p < n; p++) {
		ms[p].addr = (void *)(a + p * page_sz);
		ms[p].iova = iova_addrs ? iova_addrs[p] : HPM_BAD_IOVA;
		ms[p].len = page_sz;
		ms[p].page_sz = page_sz;
		ms[p].socket = HPM_MAX_NODES + i;
		ms[p].flags = 0;
	}
	k->va = a;
	k->page_sz = page_sz;
	k->n_pages = (uint32_t)n;
	k->ms = ms;
	memset(k->attached, 0, sizeof(k->attached));
	if (k == &x->chunks[x->nr_chunks])
		__atomic_store_n(&x->nr_chunks, x->nr_chunks + 1, __ATOMIC_RELEASE);
	/*
	 * The page table is visible before any block of this memory exists,
	 * so hpm_virt2iova() is right for the first block handed out.
	 */
	__atomic_store_n(&k->len, len, __ATOMIC_RELEASE);
	/* One run per chunk: removal is per chunk, as in DPDK. */
	ret = hpm_heap_add_memory_run(ext_heap(i), va, len);
	if (ret)
		chunk_unpublish(k);
out:
	ext_unlock(t);
	return ret ? hpm_fail(-ret) : 0;
}

/* The chunk of heap @x that is exactly [va, va + len): 0, -EINVAL (partial) or -ENOENT. */
static int find_chunk(struct hpm_ext_heap *x, uintptr_t va, size_t len,
		      struct hpm_ext_chunk **kp)
{
	int ret = -ENOENT;

	for (uint32_t j = 0; j < x->nr_chunks; j++) {
		struct hpm_ext_chunk *k = &x->chunks[j];

		if (!k->len || va >= k->va + k->len || va + len <= k->va)
			continue;
		if (k->va == va && k->len == len) {
			*kp = k;
			return 0;
		}
		ret = -EINVAL;
	}
	return ret;
}

static bool pid_alive(int32_t pid)
{
	return kill(pid, 0) == 0 || errno == EPERM;
}

/*
 * remove/attach/detach: find heap @name's chunk @va/@len with the table
 * locked, run @op on it (heap index @i, calling process @me), unlock.
 * 0, or the negative errno (also in hpm_errno).
 */
static int chunk_op(const char *name, void *va, size_t len,
		    int (*op)(int i, struct hpm_ext_chunk *k, int32_t me, const char *name))
{
	struct hpm_ext_chunk *k;
	struct hpm_ext_tbl *t;
	int ret, i;

	if (!va || !len || (uintptr_t)va + len < (uintptr_t)va)
		return hpm_fail(EINVAL);
	ret = lock_heap(name, &t, &i);
	if (ret)
		return hpm_fail(-ret);
	ret = find_chunk(&t->heap[i], (uintptr_t)va, len, &k);
	if (!ret)
		ret = op(i, k, getpid(), name);
	ext_unlock(t);
	return ret ? hpm_fail(-ret) : 0;
}

static int remove_op(int i, struct hpm_ext_chunk *k, int32_t me, const char *name)
{
	int ret;

	(void)name;
	for (int p = 0; p < HPM_EXT_ATTACH_MAX; p++) {
		if (!k->attached[p] || k->attached[p] == me)
			continue;
		if (pid_alive(k->attached[p]))
			return -EBUSY;
		k->attached[p] = 0;	/* died attached: forget it */
	}
	ret = hpm_heap_remove_memory(ext_heap(i), (void *)k->va, k->len);
	if (!ret)
		chunk_unpublish(k);
	return ret;
}

static int attach_op(int i, struct hpm_ext_chunk *k, int32_t me, const char *name)
{
	struct hpm_elem *first = elem_at(grid_first(k->va));
	int slot = -1;

	/*
	 * Mapped here (msync fails with ENOMEM on a hole), and the same
	 * memory: the chunk's first block header carries this heap's
	 * address-bound tag, which other memory at this address would not.
	 */
	if (msync((void *)k->va, k->len, MS_ASYNC) || !elem_tag_ok(ext_heap(i), first)) {
		hpm_log(HPM_LOG_ERR, "heap '%s': %p+%llu is not its memory in this process",
			name, (void *)k->va, (unsigned long long)k->len);
		return -EFAULT;
	}
	for (int p = 0; p < HPM_EXT_ATTACH_MAX; p++) {
		if (k->attached[p] == me)
			return 0;	/* attached already */
		if (k->attached[p] && !pid_alive(k->attached[p]))
			k->attached[p] = 0;
		if (!k->attached[p] && slot < 0)
			slot = p;
	}
	if (slot < 0)
		return -ENOSPC;
	k->attached[slot] = me;
	return 0;
}

static int detach_op(int i, struct hpm_ext_chunk *k, int32_t me, const char *name)
{
	(void)i;
	(void)name;
	for (int p = 0; p < HPM_EXT_ATTACH_MAX; p++)
		if (k->attached[p] == me)
			k->attached[p] = 0;
	return 0;
}

__hpm_export int hpm_malloc_heap_memory_remove(const char *name, void *va, size_t len)
{
	return chunk_op(name, va, len, remove_op);
}

__hpm_export int hpm_malloc_heap_memory_attach(const char *name, void *va, size_t len)
{
	return chunk_op(name, va, len, attach_op);
}

__hpm_export int hpm_malloc_heap_memory_detach(const char *name, void *va, size_t len)
{
	return chunk_op(name, va, len, detach_op);
}

__hpm_export int hpm_malloc_heap_get_socket(const char *name)
{
	struct hpm_ext_tbl *t = ext_tbl();
	int ret = name_check(name), node, i;

	if (ret)
		return hpm_fail(-ret);
	if (!t)
		return hpm_fail(ENODEV);
	node = node_of_name(name);
	if (node >= 0)
		return node;
	ext_lock(t);
	i = find_heap(t, name);
	ext_unlock(t);
	return i < 0 ? hpm_fail(ENOENT) : HPM_MAX_NODES + i;
}

__hpm_export int hpm_malloc_heap_socket_is_external(int socket)
{
	struct hpm_config *c = hpm_config();

	if (socket == HPM_SOCKET_ANY)
		return 0;
	if (!c)
		return hpm_fail(ENODEV);
	if (socket >= 0 && socket < HPM_MAX_NODES && (c->socket_mask & (1u << socket)))
		return 0;
	if (socket >= HPM_MAX_NODES && socket < HPM_HEAP_SLOTS &&
	    (__atomic_load_n(&c->ext.mask, __ATOMIC_ACQUIRE) & (1u << (socket - HPM_MAX_NODES))))
		return 1;
	return hpm_fail(EINVAL);
}

/* ---- lookups for memseg.c (lock-free) ---- */

/* The chunk holding @p, or NULL. */
static const struct hpm_ext_chunk *chunk_of(const struct hpm_config *c, uintptr_t p)
{
	/* No external heap (the usual case): one load. */
	uint32_t mask = __atomic_load_n(&c->ext.mask, __ATOMIC_ACQUIRE);

	while (mask) {
		const struct hpm_ext_heap *x = &c->ext.heap[__builtin_ctz(mask)];
		uint32_t n = __atomic_load_n(&x->nr_chunks, __ATOMIC_ACQUIRE);

		mask &= mask - 1;
		for (uint32_t j = 0; j < n; j++) {
			const struct hpm_ext_chunk *k = &x->chunks[j];
			/*
			 * Acquire on @len pairs with the release in memory_add():
			 * va, page_sz and ms were written before it.
			 */
			uint64_t len = __atomic_load_n(&k->len, __ATOMIC_ACQUIRE);

			if (len && p - k->va < len)
				return k;
		}
	}
	return NULL;
}

const struct hpm_memseg *hpm_ext_virt2memseg(const void *va)
{
	const struct hpm_config *c = hpm_config();
	const struct hpm_ext_chunk *k;
	uintptr_t p = (uintptr_t)va;

	k = c ? chunk_of(c, p) : NULL;
	return k ? &k->ms[(p - k->va) / k->page_sz] : NULL;
}

bool hpm_ext_iova_contig(const void *va, size_t len)
{
	const struct hpm_config *c = hpm_config();
	uintptr_t p = (uintptr_t)va;
	const struct hpm_ext_chunk *k;
	size_t i0, i1;

	k = c ? chunk_of(c, p) : NULL;
	if (!k || len > k->va + k->len - p)
		return false;
	if (!len)
		return true;
	i0 = (p - k->va) / k->page_sz;
	i1 = (p + len - 1 - k->va) / k->page_sz;
	for (size_t i = i0; i <= i1; i++)
		if (k->ms[i].iova == HPM_BAD_IOVA ||
		    (i < i1 && k->ms[i + 1].iova != k->ms[i].iova + k->page_sz))
			return false;
	return true;
}

/* ---- checking a primary's table (secondaries, inspect) ---- */

#define EXT_BAD(fmt, ...)						\
	do {								\
		hpm_log(HPM_LOG_ERR, "shared config: bad ext." fmt ", refusing the region", \
			##__VA_ARGS__);					\
		return -EPROTO;						\
	} while (0)

int hpm_ext_check(const struct hpm_config *c)
{
	const struct hpm_ext_tbl *t = &c->ext;
	uintptr_t lo = c->base, hi = c->base + c->size;

	if (t->mask >> HPM_MAX_EXT_HEAPS)
		EXT_BAD("mask 0x%x", t->mask);
	for (int i = 0; i < HPM_MAX_EXT_HEAPS; i++) {
		const struct hpm_ext_heap *x = &t->heap[i];
		const struct hpm_heap *h = &c->heaps[HPM_MAX_NODES + i];

		if (!(t->mask & (1u << i)))
			continue;
		if (!x->in_use || x->nr_chunks > HPM_EXT_HEAP_MAX_CHUNKS ||
		    strnlen(x->name, sizeof(x->name)) == sizeof(x->name) ||
		    h->magic != HPM_HEAP_MAGIC || h->socket != HPM_MAX_NODES + i ||
		    h->nr_runs > HPM_HEAP_MAX_RUNS)
			EXT_BAD("heap[%d]: in_use %u, %u chunks, %u runs", i, x->in_use,
				x->nr_chunks, h->nr_runs);
		for (uint32_t j = 0; j < x->nr_chunks; j++) {
			const struct hpm_ext_chunk *k = &x->chunks[j];
			uintptr_t ms = (uintptr_t)k->ms;

			/* Lookups index @ms by page: it must lie in the region. */
			if (k->len && (!k->page_sz || !HPM_IS_POW2(k->page_sz) ||
				       k->len % k->page_sz || k->n_pages != k->len / k->page_sz ||
				       k->va + k->len < k->va || ms < lo || ms >= hi ||
				       (hi - ms) / sizeof(*k->ms) < k->n_pages))
				EXT_BAD("heap[%d].chunks[%u]: %#lx+%#llx", i, j,
					(unsigned long)k->va, (unsigned long long)k->len);
		}
	}
	return 0;
}
