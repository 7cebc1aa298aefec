// SPDX-License-Identifier: MIT
/*
 * Memory that comes and goes under a heap: the internal primitives (add at
 * runtime, remove a free range, the grow and trim hooks) over plain
 * buffers, then DPDK's external heaps (test_external_mem.c and
 * test_malloc.c's external-heap cases of DPDK 22.11, call for call) over
 * whatever backend HPMEM_OPTS selects, with a secondary process.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <hpmem/init.h>
#include <hpmem/malloc.h>
#include <hpmem/memseg.h>
#include <hpmem/memzone.h>

#include "kselftest_harness.h"

#include "malloc_heap.h"

#define MiB (1024UL * 1024)
#define KiB 1024UL
#define PG (2 * MiB)

/* ------------------------------------------------------------------ */
/* The primitives over plain buffers: no hpm_init(), IOVA = VA. */

FIXTURE(prim) {
	struct hpm_heap *tbl;
	struct hpm_heap *h;
	char *buf;
	size_t len;
};

FIXTURE_SETUP(prim)
{
	self->len = 8 * PG;
	self->tbl = aligned_alloc(HPM_CACHE_LINE_SIZE, sizeof(*self->tbl) * HPM_MAX_NODES);
	ASSERT_NE(NULL, self->tbl);
	memset(self->tbl, 0, sizeof(*self->tbl) * HPM_MAX_NODES);
	/* One spare page behind, for growth tests. */
	self->buf = aligned_alloc(PG, self->len + PG);
	ASSERT_NE(NULL, self->buf);
	hpm_heap_set_table(self->tbl);
	self->h = &self->tbl[0];
	ASSERT_EQ(0, hpm_heap_init(self->h, 0));
	ASSERT_EQ(0, hpm_heap_add_memory(self->h, self->buf, self->len));
	ASSERT_EQ(0, hpm_heap_validate(self->h));
}

FIXTURE_TEARDOWN(prim)
{
	hpm_heap_set_grow_hook(NULL, NULL);
	hpm_heap_set_trim_hook(NULL, 0, NULL);
	hpm_heap_set_table(NULL);
	free(self->buf);
	free(self->tbl);
}

static struct hpm_heap_stats stats(struct hpm_heap *h)
{
	struct hpm_heap_stats st;

	hpm_heap_stats(h, &st);
	return st;
}

/* Allocate everything left in 64 KiB blocks; none may touch [lo, hi). */
static int fill_avoiding(void **p, int max, uintptr_t lo, uintptr_t hi)
{
	int n = 0;

	while (n < max) {
		char *q = hpm_heap_alloc(0, 64 * KiB, 0, 0, HPM_HEAP_F_STRICT);

		if (!q)
			break;
		if ((uintptr_t)q < hi && (uintptr_t)q + 64 * KiB > lo)
			return -1;
		memset(q, 0xa5, 64 * KiB);
		p[n++] = q;
	}
	return n;
}

TEST_F(prim, remove_busy_then_free)
{
	char *page2 = self->buf + 2 * PG;
	void *p;

	/* A block in page 2 makes page 2 busy, not page 4. */
	p = hpm_heap_alloc(0, 5 * PG / 2, 0, 0, 0);
	ASSERT_NE(NULL, p);
	ASSERT_TRUE((char *)p < page2 + PG);
	ASSERT_EQ(-EBUSY, hpm_heap_remove_memory(self->h, page2, PG));
	ASSERT_EQ(EBUSY, hpm_errno);
	ASSERT_EQ(0, hpm_heap_validate(self->h));
	ASSERT_EQ(0, hpm_heap_free(p));
	ASSERT_EQ(0, hpm_heap_remove_memory(self->h, page2, PG));
	ASSERT_EQ(0, hpm_heap_validate(self->h));
	ASSERT_EQ(2u, stats(self->h).runs);
	/* Removed twice: nothing there any more. */
	ASSERT_EQ(-ENOENT, hpm_heap_remove_memory(self->h, page2, PG));
}

TEST_F(prim, remove_middle_allocate_around)
{
	char *lo = self->buf + 3 * PG, *hi = lo + 2 * PG;
	struct hpm_heap_stats st0 = stats(self->h), st;
	static void *p[256];
	int n;

	ASSERT_EQ(0, hpm_heap_remove_memory(self->h, lo, hi - lo));
	ASSERT_EQ(0, hpm_heap_validate(self->h));
	st = stats(self->h);
	ASSERT_EQ(2u, st.runs);
	/* Two pages, plus the new sentinel and the new run's 48-byte front. */
	ASSERT_EQ(st0.total - 2 * PG - 16 - 48 + 16, st.total);
	/* Poison the hole: any block there would be overwritten by the fill. */
	memset(lo, 0x5a, hi - lo);
	n = fill_avoiding(p, 256, (uintptr_t)lo, (uintptr_t)hi);
	ASSERT_LT(80, n);
	ASSERT_EQ(0, hpm_heap_validate(self->h));
	for (char *c = lo; c < hi; c += 4096)
		ASSERT_EQ(0x5a, *c);
	for (int i = 0; i < n; i++)
		ASSERT_EQ(0, hpm_heap_free(p[i]));
	hpm_heap_cache_flush();
	ASSERT_EQ(0, hpm_heap_validate(self->h));
	/* Giving the pages back joins the runs again. */
	ASSERT_EQ(0, hpm_heap_add_memory(self->h, lo, hi - lo));
	ASSERT_EQ(0, hpm_heap_validate(self->h));
	st = stats(self->h);
	ASSERT_EQ(1u, st.runs);
	ASSERT_EQ(st0.total, st.total);
	ASSERT_EQ(1u, st.free_count);
}

TEST_F(prim, remove_front_back_whole)
{
	struct hpm_heap_stats st;
	void *p;

	/* From the run's first byte (the 48 bytes in front go with it). */
	ASSERT_EQ(0, hpm_heap_remove_memory(self->h, self->buf, PG));
	ASSERT_EQ(0, hpm_heap_validate(self->h));
	/* To its end. */
	ASSERT_EQ(0, hpm_heap_remove_memory(self->h, self->buf + 7 * PG, PG));
	ASSERT_EQ(0, hpm_heap_validate(self->h));
	st = stats(self->h);
	ASSERT_EQ(1u, st.runs);
	ASSERT_EQ(6 * PG - 48, st.total);
	p = hpm_heap_alloc(0, 5 * PG, 0, 0, 0);
	ASSERT_NE(NULL, p);
	ASSERT_TRUE((char *)p > self->buf + PG && (char *)p + 5 * PG <= self->buf + 7 * PG);
	ASSERT_EQ(-EBUSY, hpm_heap_remove_memory(self->h, self->buf + PG, 6 * PG));
	ASSERT_EQ(0, hpm_heap_free(p));
	/* All of it: the run goes, its slot is empty, the heap is empty. */
	ASSERT_EQ(0, hpm_heap_remove_memory(self->h, self->buf + PG, 6 * PG));
	ASSERT_EQ(0, hpm_heap_validate(self->h));
	st = stats(self->h);
	ASSERT_EQ(0u, st.runs);
	ASSERT_EQ(0u, st.total);
	ASSERT_EQ(NULL, hpm_heap_alloc(0, 64, 0, 0, HPM_HEAP_F_STRICT));
	/* And back, in the empty slot. */
	ASSERT_EQ(0, hpm_heap_add_memory(self->h, self->buf, 2 * PG));
	ASSERT_EQ(0, hpm_heap_validate(self->h));
	ASSERT_EQ(1u, stats(self->h).runs);
}

TEST_F(prim, remove_bad_args)
{
	ASSERT_EQ(-EINVAL, hpm_heap_remove_memory(NULL, self->buf, PG));
	ASSERT_EQ(-EINVAL, hpm_heap_remove_memory(self->h, NULL, PG));
	ASSERT_EQ(-EINVAL, hpm_heap_remove_memory(self->h, self->buf, 0));
	ASSERT_EQ(-EINVAL, hpm_heap_remove_memory(self->h, self->buf + PG + 16, PG));
	/* Beyond the run's end. */
	ASSERT_EQ(-EINVAL, hpm_heap_remove_memory(self->h, self->buf + 7 * PG, 2 * PG));
	ASSERT_EQ(-ENOENT, hpm_heap_remove_memory(self->h, self->buf + 9 * PG, PG));
	ASSERT_EQ(0, hpm_heap_validate(self->h));
	ASSERT_EQ(1u, stats(self->h).runs);
}

/* Adjacent growth merges with the free block at the run's end. */
TEST_F(prim, add_adjacent_merges)
{
	void *p, *q;

	p = hpm_heap_alloc(0, 7 * PG, 0, 0, 0);
	ASSERT_NE(NULL, p);
	ASSERT_EQ(NULL, hpm_heap_alloc(0, 3 * PG / 2, 0, 0, HPM_HEAP_F_STRICT));
	ASSERT_EQ(0, hpm_heap_add_memory(self->h, self->buf + self->len, PG));
	ASSERT_EQ(1u, stats(self->h).runs);
	ASSERT_EQ(2u, stats(self->h).free_count + stats(self->h).alloc_count);
	/* The old tail and the new page are one free block now. */
	q = hpm_heap_alloc(0, 3 * PG / 2, 0, 0, HPM_HEAP_F_STRICT);
	ASSERT_NE(NULL, q);
	ASSERT_EQ(0, hpm_heap_validate(self->h));
	hpm_heap_free(p);
	hpm_heap_free(q);
}

static int grow_calls;

static int grow_hook(struct hpm_heap *h, size_t size, size_t align, size_t bound,
		     unsigned int flags, void *arg)
{
	char *more = arg;

	grow_calls++;
	if (h->socket != 0 || size < PG || (flags & ~HPM_HEAP_F_STRICT))
		return -EINVAL;
	return hpm_heap_add_memory(h, more, PG);
}

TEST_F(prim, grow_hook_retries_once)
{
	void *p, *q;

	p = hpm_heap_alloc(0, 7 * PG, 0, 0, 0);
	ASSERT_NE(NULL, p);
	hpm_heap_set_grow_hook(grow_hook, self->buf + self->len);
	grow_calls = 0;
	q = hpm_heap_alloc(0, 3 * PG / 2, 0, 0, HPM_HEAP_F_STRICT);
	ASSERT_NE(NULL, q);
	ASSERT_EQ(1, grow_calls);
	/* Growth that does not help: called once, then ENOMEM. */
	ASSERT_EQ(NULL, hpm_heap_alloc(0, 4 * PG, 0, 0, HPM_HEAP_F_STRICT));
	ASSERT_EQ(ENOMEM, hpm_errno);
	ASSERT_EQ(2, grow_calls);
	ASSERT_EQ(0, hpm_heap_validate(self->h));
	hpm_heap_free(p);
	hpm_heap_free(q);
}

struct trim_log {
	int calls;
	int removed;
	uintptr_t va;
	size_t len;
};

static void trim_hook(struct hpm_heap *h, void *va, size_t len, void *arg)
{
	struct trim_log *t = arg;

	t->calls++;
	t->va = (uintptr_t)va;
	t->len = len;
	if (hpm_heap_remove_memory(h, va, len) == 0)
		t->removed++;
}

TEST_F(prim, trim_hook_reports_whole_pages)
{
	struct trim_log t = { 0 };
	void *a, *b, *c;
	void *va;
	size_t len;

	/* a | b (3 pages) | c | rest: freeing b leaves a free block with pages. */
	a = hpm_heap_alloc(0, 64 * KiB, 0, 0, 0);
	b = hpm_heap_alloc(0, 3 * PG, 0, 0, 0);
	c = hpm_heap_alloc(0, 64 * KiB, 0, 0, 0);
	ASSERT_TRUE(a && b && c);
	ASSERT_TRUE((char *)c > (char *)b);
	hpm_heap_set_trim_hook(trim_hook, PG, &t);
	ASSERT_EQ(0, hpm_heap_free(b));
	ASSERT_EQ(1, t.calls);
	ASSERT_EQ(1, t.removed);
	ASSERT_EQ(0u, t.va & (PG - 1));
	ASSERT_EQ(2 * PG, t.len);
	ASSERT_TRUE(t.va > (uintptr_t)a && t.va + t.len <= (uintptr_t)c);
	ASSERT_EQ(0, hpm_heap_validate(self->h));
	ASSERT_EQ(2u, stats(self->h).runs);
	/* Small frees: no call. */
	ASSERT_EQ(0, hpm_heap_free(a));
	hpm_heap_cache_flush();
	ASSERT_EQ(1, t.calls);
	hpm_heap_set_trim_hook(NULL, 0, NULL);
	/* The biggest removable range left: the pages behind c. */
	ASSERT_EQ(0, hpm_heap_find_free_pages(self->h, PG, &va, &len));
	ASSERT_TRUE((uintptr_t)va > (uintptr_t)c);
	ASSERT_EQ(0u, (uintptr_t)va & (PG - 1));
	ASSERT_EQ(0, hpm_heap_remove_memory(self->h, va, len));
	ASSERT_EQ(0, hpm_heap_validate(self->h));
	ASSERT_EQ(0, hpm_heap_free(c));
	ASSERT_EQ(0, hpm_heap_validate(self->h));
}

/* Threads allocate and free while one removes and re-adds pages. */
struct churn {
	struct hpm_heap *h;
	char *buf;
	int stop;
	int errors;
};

static void *churn_alloc(void *arg)
{
	struct churn *c = arg;
	void *p[64] = { 0 };
	unsigned int seed = (unsigned int)(uintptr_t)&p;

	while (!__atomic_load_n(&c->stop, __ATOMIC_RELAXED)) {
		int i = rand_r(&seed) % 64;

		if (p[i]) {
			if (*(uint32_t *)p[i] != (uint32_t)(uintptr_t)p[i])
				__atomic_fetch_add(&c->errors, 1, __ATOMIC_RELAXED);
			if (hpm_heap_free(p[i]))
				__atomic_fetch_add(&c->errors, 1, __ATOMIC_RELAXED);
			p[i] = NULL;
		} else {
			p[i] = hpm_heap_alloc(0, 64 + rand_r(&seed) % (256 * KiB), 0, 0,
					      HPM_HEAP_F_STRICT);
			if (p[i])
				*(uint32_t *)p[i] = (uint32_t)(uintptr_t)p[i];
		}
	}
	for (int i = 0; i < 64; i++)
		hpm_heap_free(p[i]);
	hpm_heap_cache_flush();
	return NULL;
}

TEST_F(prim, churn_while_removing)
{
	struct churn c = { .h = self->h, .buf = self->buf };
	pthread_t t[2];
	int removed = 0;

	for (int i = 0; i < 2; i++)
		ASSERT_EQ(0, pthread_create(&t[i], NULL, churn_alloc, &c));
	for (int round = 0; round < 3000; round++) {
		char *pg = self->buf + (1 + round % 6) * PG;

		if (hpm_heap_remove_memory(self->h, pg, PG) == 0) {
			removed++;
			ASSERT_EQ(0, hpm_heap_add_memory(self->h, pg, PG));
		}
	}
	__atomic_store_n(&c.stop, 1, __ATOMIC_RELAXED);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	TH_LOG("%d pages removed and re-added under load", removed);
	ASSERT_EQ(0, c.errors);
	ASSERT_EQ(0, hpm_heap_validate(self->h));
	ASSERT_EQ(0u, stats(self->h).alloc_count);
}

TEST_HARNESS_MAIN
