// SPDX-License-Identifier: MIT
/*
 * Malloc heap tests: the TLSF heap itself over plain buffers (internal API),
 * then the public hpm_malloc() family over whatever backend HPMEM_OPTS
 * selects, then a randomised stress across threads and a secondary process.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <hpmem/init.h>
#include <hpmem/malloc.h>
#include <hpmem/mem_event.h>
#include <hpmem/memseg.h>

#include "kselftest_harness.h"

#include "malloc_heap.h"
#include "memseg.h"

#define MiB (1024UL * 1024)
#define KiB 1024UL

static int heap_ok(void)
{
	return hpm_malloc_validate();
}

/* ------------------------------------------------------------------ */
/* The heap over plain buffers: no hpm_init(), IOVA = VA. */

FIXTURE(heap) {
	struct hpm_heap *tbl;
	void *buf[2];
	size_t len;
	struct hpm_heap_stats empty;
};

FIXTURE_SETUP(heap)
{
	self->len = 8 * MiB;
	self->tbl = aligned_alloc(HPM_CACHE_LINE_SIZE, sizeof(*self->tbl) * HPM_MAX_NODES);
	ASSERT_NE(NULL, self->tbl);
	memset(self->tbl, 0, sizeof(*self->tbl) * HPM_MAX_NODES);
	self->buf[0] = aligned_alloc(2 * MiB, self->len);
	ASSERT_NE(NULL, self->buf[0]);
	hpm_heap_set_table(self->tbl);
	ASSERT_EQ(0, hpm_heap_init(&self->tbl[0], 0));
	ASSERT_EQ(0, hpm_heap_add_memory(&self->tbl[0], self->buf[0], self->len));
	ASSERT_EQ(0, hpm_heap_stats(&self->tbl[0], &self->empty));
	/* The first 48 bytes sit in front of the grid (malloc_elem.h). */
	ASSERT_EQ(self->len - 48, self->empty.total);
	ASSERT_EQ(1, self->empty.free_count);
	ASSERT_EQ(0, heap_ok());
}

FIXTURE_TEARDOWN(heap)
{
	hpm_heap_set_table(NULL);
	free(self->buf[0]);
	free(self->buf[1]);
	free(self->tbl);
}

static void stats0(struct hpm_heap_stats *st, struct hpm_heap *h)
{
	hpm_heap_stats(h, st);
}

TEST_F(heap, alloc_free_sizes)
{
	void *p[600];
	struct hpm_heap_stats st;

	for (int i = 0; i < 600; i++) {
		size_t size = 1 + (size_t)i * 37;

		p[i] = hpm_heap_alloc(0, size, 0, 0, 0);
		ASSERT_NE(NULL, p[i]);
		ASSERT_EQ(0, (uintptr_t)p[i] % 16);
		ASSERT_GE(hpm_heap_usable_size(p[i]), size);
		memset(p[i], 0xa5, size);
	}
	ASSERT_EQ(0, heap_ok());
	stats0(&st, &self->tbl[0]);
	ASSERT_EQ(600, st.alloc_count);
	ASSERT_EQ(st.total, st.free + st.alloc + 16);
	/* Free every other block, then the rest: merging must restore one block. */
	for (int i = 0; i < 600; i += 2)
		ASSERT_EQ(0, hpm_heap_free(p[i]));
	ASSERT_EQ(0, heap_ok());
	for (int i = 1; i < 600; i += 2)
		ASSERT_EQ(0, hpm_heap_free(p[i]));
	ASSERT_EQ(0, heap_ok());
	stats0(&st, &self->tbl[0]);
	ASSERT_EQ(0, st.alloc_count);
	ASSERT_EQ(1, st.free_count);
	ASSERT_EQ(self->empty.free, st.free);
	ASSERT_EQ(self->empty.greatest_free, st.greatest_free);
}

TEST_F(heap, small_overhead)
{
	/*
	 * 16-byte header, 8-byte trailer, cache-line grain: 1..40 bytes cost
	 * 64 in all, in every build.
	 */
	char *a = hpm_heap_alloc(0, 1, 0, 0, 0);
	char *b = hpm_heap_alloc(0, 40, 0, 0, 0);

	ASSERT_NE(NULL, a);
	ASSERT_NE(NULL, b);
	ASSERT_EQ(64, labs(b - a));
	hpm_heap_free(a);
	hpm_heap_free(b);
}

TEST_F(heap, merge_neighbours)
{
	void *a = hpm_heap_alloc(0, 1000, 0, 0, 0);
	void *b = hpm_heap_alloc(0, 1000, 0, 0, 0);
	void *c = hpm_heap_alloc(0, 1000, 0, 0, 0);
	void *d = hpm_heap_alloc(0, 1000, 0, 0, 0);
	struct hpm_heap_stats st;

	ASSERT_NE(NULL, d);
	hpm_heap_free(a);
	hpm_heap_free(c);
	stats0(&st, &self->tbl[0]);
	ASSERT_EQ(3, st.free_count);	/* a, c, and the rest after d */
	hpm_heap_free(b);		/* merges with a and c */
	stats0(&st, &self->tbl[0]);
	ASSERT_EQ(2, st.free_count);
	ASSERT_EQ(0, heap_ok());
	hpm_heap_free(d);
	stats0(&st, &self->tbl[0]);
	ASSERT_EQ(1, st.free_count);
	ASSERT_EQ(0, heap_ok());
}

TEST_F(heap, alignment)
{
	for (size_t align = 1; align <= 2 * MiB; align <<= 1) {
		void *p = hpm_heap_alloc(0, 100, align, 0, 0);
		void *q = hpm_heap_alloc(0, align + 3, align, 0, 0);

		ASSERT_NE(NULL, p);
		ASSERT_NE(NULL, q);
		ASSERT_EQ(0, (uintptr_t)p % (align < 16 ? 16 : align));
		ASSERT_EQ(0, (uintptr_t)q % (align < 16 ? 16 : align));
		memset(q, 1, align + 3);
		ASSERT_EQ(0, heap_ok());
		ASSERT_EQ(0, hpm_heap_free(p));
		ASSERT_EQ(0, hpm_heap_free(q));
	}
	ASSERT_EQ(0, heap_ok());
	ASSERT_EQ(NULL, hpm_heap_alloc(0, 100, 48, 0, 0));
	ASSERT_EQ(EINVAL, hpm_errno);
	ASSERT_EQ(NULL, hpm_heap_alloc(0, 100, 1UL << 62, 0, 0));
	ASSERT_EQ(ENOMEM, hpm_errno);
}

TEST_F(heap, bound)
{
	void *keep[64];

	/* Bounded blocks never straddle a multiple of the bound. */
	for (int i = 0; i < 64; i++) {
		size_t size = 600 + (size_t)i * 55;
		size_t bound = 4096;
		uintptr_t p;

		keep[i] = hpm_heap_alloc(0, size, 16, bound, 0);
		ASSERT_NE(NULL, keep[i]) TH_LOG("block %d: %s", i, strerror(hpm_errno));
		p = (uintptr_t)keep[i];
		ASSERT_EQ(p / bound, (p + size - 1) / bound);
	}
	ASSERT_EQ(0, heap_ok());
	for (int i = 0; i < 64; i++)
		ASSERT_EQ(0, hpm_heap_free(keep[i]));
	ASSERT_EQ(NULL, hpm_heap_alloc(0, 5000, 0, 4096, 0));
	ASSERT_EQ(EINVAL, hpm_errno);
	ASSERT_EQ(NULL, hpm_heap_alloc(0, 100, 0, 3000, 0));
	ASSERT_EQ(EINVAL, hpm_errno);
	/* Contiguity is trivial here (IOVA = VA) but takes the same path. */
	keep[0] = hpm_heap_alloc(0, 3 * MiB, 64, 0, HPM_HEAP_F_CONTIG);
	ASSERT_NE(NULL, keep[0]);
	ASSERT_EQ(0, (uintptr_t)keep[0] % 64);
	ASSERT_EQ(0, hpm_heap_free(keep[0]));
	ASSERT_EQ(0, heap_ok());
}

TEST_F(heap, bad_args)
{
	struct hpm_heap_stats st;

	ASSERT_EQ(NULL, hpm_heap_alloc(0, 0, 0, 0, 0));
	ASSERT_EQ(EINVAL, hpm_errno);
	ASSERT_EQ(NULL, hpm_heap_alloc(0, 16, 0, 0, 1u << 20));
	ASSERT_EQ(EINVAL, hpm_errno);
	ASSERT_EQ(NULL, hpm_heap_alloc(-2, 16, 0, 0, 0));
	ASSERT_EQ(EINVAL, hpm_errno);
	ASSERT_EQ(NULL, hpm_heap_alloc(HPM_MAX_NODES, 16, 0, 0, 0));
	ASSERT_EQ(EINVAL, hpm_errno);
	ASSERT_EQ(NULL, hpm_heap_alloc(0, SIZE_MAX, 0, 0, 0));
	ASSERT_EQ(ENOMEM, hpm_errno);
	ASSERT_EQ(NULL, hpm_heap_alloc(0, SIZE_MAX - 8, 4096, 0, 0));
	ASSERT_EQ(ENOMEM, hpm_errno);
	ASSERT_EQ(NULL, hpm_heap_alloc(0, 1UL << 38, 0, 0, 0));
	ASSERT_EQ(ENOMEM, hpm_errno);
	ASSERT_EQ(NULL, hpm_heap_alloc(0, self->len, 0, 0, 0));
	ASSERT_EQ(ENOMEM, hpm_errno);
	ASSERT_EQ(-EINVAL, hpm_heap_init(NULL, 0));
	ASSERT_EQ(-EINVAL, hpm_heap_init(&self->tbl[1], HPM_HEAP_SLOTS));
	/* Memory already in the heap, or misaligned. */
	ASSERT_EQ(-EINVAL, hpm_heap_add_memory(&self->tbl[0], self->buf[0], 4096));
	ASSERT_EQ(-EINVAL, hpm_heap_add_memory(&self->tbl[0], (char *)self->buf[0] + 8, 4096));
	stats0(&st, &self->tbl[0]);
	ASSERT_EQ(self->empty.free, st.free);
	ASSERT_EQ(0, heap_ok());
}

TEST_F(heap, exhaust_and_greatest)
{
	struct hpm_heap_stats st;
	void *p[2048];
	int n = 0;
	void *big;

	while (n < 2048 && (p[n] = hpm_heap_alloc(0, 64 * KiB - 100, 0, 0, 0)))
		n++;
	ASSERT_LT(n, 2048);
	ASSERT_EQ(ENOMEM, hpm_errno);
	ASSERT_GT(n, 100);
	ASSERT_EQ(0, heap_ok());
	for (int i = 0; i < n; i++)
		ASSERT_EQ(0, hpm_heap_free(p[i]));
	/* The largest free block can be had exactly, one byte more cannot. */
	stats0(&st, &self->tbl[0]);
	ASSERT_EQ(NULL, hpm_heap_alloc(0, st.greatest_free + 1, 0, 0, 0));
	big = hpm_heap_alloc(0, st.greatest_free, 0, 0, 0);
	ASSERT_NE(NULL, big);
	memset(big, 0x11, st.greatest_free);
	ASSERT_EQ(0, heap_ok());
	ASSERT_EQ(0, hpm_heap_free(big));
	ASSERT_EQ(0, heap_ok());
}

TEST_F(heap, double_and_foreign_free)
{
	char *a = hpm_heap_alloc(0, 200, 0, 0, 0);
	char *b = hpm_heap_alloc(0, 200, 0, 0, 0);
	char *c = hpm_heap_alloc(0, 200, 0, 0, 0);
	int on_stack;
	void *libc = malloc(64);
	struct hpm_heap_stats before, after;

	ASSERT_NE(NULL, c);
	ASSERT_EQ(0, hpm_heap_free(b));
	stats0(&before, &self->tbl[0]);
	ASSERT_EQ(-EINVAL, hpm_heap_free(b));		/* double free */
	ASSERT_EQ(EINVAL, hpm_errno);
	ASSERT_EQ(-EINVAL, hpm_heap_free(a + 16));	/* interior */
	ASSERT_EQ(-EINVAL, hpm_heap_free(a + 8));	/* misaligned */
	ASSERT_EQ(-EINVAL, hpm_heap_free(&on_stack));	/* foreign */
	ASSERT_EQ(-EINVAL, hpm_heap_free(libc));
	ASSERT_EQ(-EINVAL, hpm_heap_free((char *)self->buf[0] + self->len - 16)); /* sentinel */
	stats0(&after, &self->tbl[0]);
	ASSERT_EQ(0, memcmp(&before, &after, sizeof(before)));
	ASSERT_EQ(0, heap_ok());
	/* c merges with b's block; b's stale header must not pass as a block. */
	ASSERT_EQ(0, hpm_heap_free(a));
	ASSERT_EQ(-EINVAL, hpm_heap_free(b));
	ASSERT_EQ(0, hpm_heap_free(c));
	ASSERT_EQ(-EINVAL, hpm_heap_free(c));
	ASSERT_EQ(-EINVAL, hpm_heap_free(a));
	ASSERT_EQ(0, heap_ok());
	ASSERT_EQ(0, hpm_heap_free(NULL));
	ASSERT_EQ(NULL, hpm_heap_realloc(b, 100, 0, HPM_SOCKET_ANY, 0));
	ASSERT_EQ(EINVAL, hpm_errno);
	ASSERT_EQ(0, hpm_heap_usable_size(b));
	free(libc);
}

TEST_F(heap, validate_catches_overrun)
{
	char *a = hpm_heap_alloc(0, 64, 0, 0, 0);
	char *b = hpm_heap_alloc(0, 64, 0, 0, 0);
	uint64_t saved[2];
	char *hdr;

	ASSERT_NE(NULL, b);
	hdr = (char *)((uintptr_t)b - 16);
	/* Smash b's header the way an overrun of a would. */
	memcpy(saved, hdr, 16);
	memset(hdr, 0x41, 16);
	ASSERT_EQ(-EFAULT, heap_ok());
	ASSERT_EQ(-EINVAL, hpm_heap_free(b));
	memcpy(hdr, saved, 16);
	ASSERT_EQ(0, heap_ok());
	ASSERT_EQ(0, hpm_heap_free(a));
	ASSERT_EQ(0, hpm_heap_free(b));
}

TEST_F(heap, realloc)
{
	char *a = hpm_heap_alloc(0, 100, 0, 0, 0);
	char *b, *c, *d;
	struct hpm_heap_stats st;

	ASSERT_NE(NULL, a);
	for (int i = 0; i < 100; i++)
		a[i] = (char)i;
	/* Next block is free (the rest of the heap): grows in place. */
	b = hpm_heap_realloc(a, 5000, 0, HPM_SOCKET_ANY, 0);
	ASSERT_EQ(a, b);
	ASSERT_GE(hpm_heap_usable_size(b), 5000);
	for (int i = 0; i < 100; i++)
		ASSERT_EQ((char)i, b[i]);
	ASSERT_EQ(0, heap_ok());
	/* Pin the next block: growing must move and copy. */
	c = hpm_heap_alloc(0, 10, 0, 0, 0);
	ASSERT_NE(NULL, c);
	memset(b + 100, 0x5a, 4900);
	d = hpm_heap_realloc(b, 20000, 0, HPM_SOCKET_ANY, 0);
	ASSERT_NE(NULL, d);
	ASSERT_NE(b, d);
	for (int i = 0; i < 100; i++)
		ASSERT_EQ((char)i, d[i]);
	for (int i = 100; i < 5000; i++)
		ASSERT_EQ(0x5a, (unsigned char)d[i]);
	ASSERT_EQ(0, heap_ok());
	/* Shrinking stays in place and returns the tail. */
	stats0(&st, &self->tbl[0]);
	b = hpm_heap_realloc(d, 64, 0, HPM_SOCKET_ANY, 0);
	ASSERT_EQ(d, b);
	ASSERT_LT(hpm_heap_usable_size(b), 200);
	for (int i = 0; i < 64; i++)
		ASSERT_EQ((char)i, b[i]);
	ASSERT_EQ(0, heap_ok());
	/* A new alignment the block lacks forces a move. */
	d = hpm_heap_realloc(b, 64, 4096, HPM_SOCKET_ANY, 0);
	ASSERT_NE(NULL, d);
	ASSERT_EQ(0, (uintptr_t)d % 4096);
	for (int i = 0; i < 64; i++)
		ASSERT_EQ((char)i, d[i]);
	/* Too big: NULL, old block intact. */
	ASSERT_EQ(NULL, hpm_heap_realloc(d, 1UL << 36, 0, HPM_SOCKET_ANY, 0));
	ASSERT_EQ(ENOMEM, hpm_errno);
	ASSERT_EQ(63, d[63]);
	/* NULL acts as malloc, size 0 as free. */
	a = hpm_heap_realloc(NULL, 10, 0, HPM_SOCKET_ANY, 0);
	ASSERT_NE(NULL, a);
	ASSERT_EQ(NULL, hpm_heap_realloc(a, 0, 0, HPM_SOCKET_ANY, 0));
	ASSERT_EQ(0, hpm_errno);
	ASSERT_EQ(-EINVAL, hpm_heap_free(a));
	ASSERT_EQ(0, hpm_heap_free(c));
	ASSERT_EQ(0, hpm_heap_free(d));
	stats0(&st, &self->tbl[0]);
	ASSERT_EQ(0, st.alloc_count);
	ASSERT_EQ(1, st.free_count);
	ASSERT_EQ(0, heap_ok());
}

TEST_F(heap, runs_and_nodes)
{
	struct hpm_heap_stats st;
	char *ext;
	void *p, *q;

	/* A second heap over a separate buffer, and an adjacent extension. */
	self->buf[1] = aligned_alloc(2 * MiB, 6 * MiB);
	ASSERT_NE(NULL, self->buf[1]);
	ext = (char *)self->buf[1] + 2 * MiB;
	ASSERT_EQ(0, hpm_heap_init(&self->tbl[1], 1));
	ASSERT_EQ(0, hpm_heap_add_memory(&self->tbl[1], self->buf[1], 2 * MiB));
	ASSERT_EQ(0, hpm_heap_add_memory(&self->tbl[1], ext + 2 * MiB, 2 * MiB));
	p = hpm_heap_alloc(1, 1 * MiB, 0, 0, HPM_HEAP_F_STRICT);
	ASSERT_NE(NULL, p);
	ASSERT_EQ(1, hpm_heap_socket_of(p));
	ASSERT_EQ(0, hpm_heap_add_memory(&self->tbl[1], ext, 2 * MiB));
	stats0(&st, &self->tbl[1]);
	ASSERT_EQ(6 * MiB - 2 * 48, st.total);	/* 48 in front of each run */
	ASSERT_EQ(2, st.runs);		/* the middle piece joined the first run */
	ASSERT_EQ(0, heap_ok());
	/* Exhaust node 1: strict fails, non-strict falls back to node 0. */
	while (hpm_heap_alloc(1, 256 * KiB, 0, 0, HPM_HEAP_F_STRICT))
		;
	ASSERT_EQ(ENOMEM, hpm_errno);
	ASSERT_EQ(NULL, hpm_heap_alloc(1, 256 * KiB, 0, 0, HPM_HEAP_F_STRICT));
	q = hpm_heap_alloc(1, 256 * KiB, 0, 0, 0);
	ASSERT_NE(NULL, q);
	ASSERT_EQ(0, hpm_heap_socket_of(q));
	ASSERT_EQ(0, heap_ok());
	ASSERT_EQ(0, hpm_heap_free(q));
	ASSERT_EQ(0, hpm_heap_free(p));
	ASSERT_EQ(0, heap_ok());
	/* Overlapping memory is refused. */
	ASSERT_EQ(-EINVAL, hpm_heap_add_memory(&self->tbl[1], ext + MiB, 2 * MiB));
}

static bool cache_off(void)
{
	return getenv("HPMEM_MALLOC_NOCACHE") != NULL;
}

TEST_F(heap, thread_cache)
{
	struct hpm_heap_stats st;
	void *v[200];
	char *p, *q;

	if (cache_off())
		SKIP(return, "HPMEM_MALLOC_NOCACHE is set");
	p = hpm_heap_alloc(0, 100, 0, 0, 0);
	ASSERT_NE(NULL, p);
	ASSERT_EQ(0, hpm_heap_free(p));
	/* LIFO reuse without the lock; the second free is seen. */
	q = hpm_heap_alloc(0, 100, 0, 0, 0);
	ASSERT_EQ(p, q);
	ASSERT_EQ(0, hpm_heap_free(q));
	ASSERT_EQ(-EINVAL, hpm_heap_free(q));
	ASSERT_EQ(NULL, hpm_heap_realloc(q, 200, 0, HPM_SOCKET_ANY, 0));
	/* Aligned requests bypass the cache. */
	q = hpm_heap_alloc(0, 100, 4096, 0, 0);
	ASSERT_NE(NULL, q);
	ASSERT_NE(p, q);
	ASSERT_EQ(0, hpm_heap_free(q));
	/* A write after free is caught when the cache drains; the block leaks. */
	memset(p, 0x77, 16);
	hpm_heap_cache_flush();
	stats0(&st, &self->tbl[0]);
	ASSERT_EQ(1, st.alloc_count);
	ASSERT_EQ(0, heap_ok());
	/* Many frees of one size spill to the heap in batches. */
	for (int i = 0; i < 200; i++)
		ASSERT_NE(NULL, v[i] = hpm_heap_alloc(0, 64, 0, 0, 0));
	for (int i = 0; i < 200; i++)
		ASSERT_EQ(0, hpm_heap_free(v[i]));
	ASSERT_EQ(0, heap_ok());
	stats0(&st, &self->tbl[0]);
	ASSERT_EQ(1, st.alloc_count);
}

/*
 * The lock-free free() path, once bound to a run by an earlier free, must
 * still refuse what the slow path refuses: a cached block freed again, an
 * interior or misaligned pointer, and a valid header copied to another
 * address. A re-initialised heap unbinds it (its cached blocks are dropped).
 */
TEST_F(heap, fast_path_checks)
{
	struct hpm_heap_stats st;
	char *a, *b, *c, *d;

	if (cache_off())
		SKIP(return, "HPMEM_MALLOC_NOCACHE is set");
	a = hpm_heap_alloc(0, 1000, 0, 0, 0);
	b = hpm_heap_alloc(0, 1000, 0, 0, 0);
	c = hpm_heap_alloc(0, 64, 0, 0, 0);
	d = hpm_heap_alloc(0, 64, 0, 0, 0);
	ASSERT_NE(NULL, a);
	ASSERT_NE(NULL, b);
	ASSERT_NE(NULL, c);
	ASSERT_NE(NULL, d);
	ASSERT_EQ(0, hpm_heap_free(c));		/* binds the fast path */
	ASSERT_EQ(0, hpm_heap_free(d));		/* fast path */
	/* (stats and validation would flush the cache: none until the end) */
	ASSERT_EQ(-EINVAL, hpm_heap_free(d));	/* cached: double free */
	ASSERT_EQ(-EINVAL, hpm_heap_free(c));
	ASSERT_EQ(-EINVAL, hpm_heap_free(a + 32));	/* interior */
	ASSERT_EQ(-EINVAL, hpm_heap_free(a + 4));	/* misaligned */
	ASSERT_EQ(-EINVAL, hpm_heap_free(a - 16));	/* a's header */
	/* A live header copied into a payload does not make a block there. */
	memcpy(b + 480, a - 16, 16);
	ASSERT_EQ(-EINVAL, hpm_heap_free(b + 496));
	memcpy(b + 480, d - 16, 16);
	ASSERT_EQ(-EINVAL, hpm_heap_free(b + 496));
	/* The cached blocks are intact and come back, each once (LIFO). */
	ASSERT_EQ(d, hpm_heap_alloc(0, 64, 0, 0, 0));
	ASSERT_EQ(c, hpm_heap_alloc(0, 64, 0, 0, 0));
	ASSERT_NE(c, hpm_heap_alloc(0, 64, 0, 0, 0));
	ASSERT_EQ(0, hpm_heap_free(a));
	ASSERT_EQ(0, hpm_heap_free(b));
	ASSERT_EQ(-EINVAL, hpm_heap_free(a));
	ASSERT_EQ(-EINVAL, hpm_heap_free(b));
	ASSERT_EQ(0, hpm_heap_free(c));
	ASSERT_EQ(0, hpm_heap_free(d));
	ASSERT_EQ(0, heap_ok());
	stats0(&st, &self->tbl[0]);
	ASSERT_EQ(1, st.alloc_count);	/* the third 64-byte block */
	/* Re-initialised heap: nothing of the old one is handed out. */
	d = hpm_heap_alloc(0, 64, 0, 0, 0);
	ASSERT_EQ(0, hpm_heap_free(d));
	ASSERT_EQ(0, hpm_heap_init(&self->tbl[0], 0));
	ASSERT_EQ(0, hpm_heap_add_memory(&self->tbl[0], self->buf[0], self->len));
	ASSERT_EQ(-EINVAL, hpm_heap_free(a));
	c = hpm_heap_alloc(0, 64, 0, 0, 0);
	ASSERT_NE(NULL, c);
	stats0(&st, &self->tbl[0]);
	ASSERT_EQ(1, st.alloc_count);
	ASSERT_EQ(0, hpm_heap_free(c));	/* binds to the new heap */
	ASSERT_EQ(0, heap_ok());
	stats0(&st, &self->tbl[0]);
	ASSERT_EQ(0, st.alloc_count);
}

TEST_F(heap, overrun_by_one)
{
	unsigned char *a = hpm_heap_alloc(0, 100, 0, 0, 0);
	void *b = hpm_heap_alloc(0, 100, 0, 0, 0);
	size_t n = hpm_heap_usable_size(a);
	struct hpm_heap_stats st;

	ASSERT_NE(NULL, b);
	ASSERT_GE(n, 100);
	/*
	 * The byte after the usable area is the debug trailer; other builds
	 * leave those 8 bytes unused, and the first byte after them is b's
	 * header. free() refuses a at once (debug trailer, or the locked path
	 * checks b's boundary tag) or caches it, and the cache drain refuses
	 * it: either way a never reaches the free lists and the heap stays sane.
	 */
	ASSERT_EQ((unsigned char *)b - 16, a + n + 8);
#ifndef HPM_DEBUG
	n += 8;
#endif
	a[n] ^= 0xff;
	if (hpm_heap_free(a) == 0)
		hpm_heap_cache_flush();
	stats0(&st, &self->tbl[0]);
	ASSERT_EQ(2, st.alloc_count);
	a[n] ^= 0xff;
	ASSERT_EQ(0, heap_ok());
	ASSERT_EQ(0, hpm_heap_free(b));
}

struct pat_slot {
	unsigned char *p;
	size_t size;
	unsigned char tag;
};

/* Pattern in the first 256 and last 64 bytes: enough to see overlaps. */
static void pat_fill(struct pat_slot *s)
{
	size_t head = s->size < 256 ? s->size : 256;
	size_t tail = s->size < 64 ? s->size : 64;

	for (size_t i = 0; i < head; i++)
		s->p[i] = (unsigned char)(s->tag + i);
	for (size_t i = s->size - tail; i < s->size; i++)
		s->p[i] = (unsigned char)(s->tag ^ i);
}

/* @len: how many bytes of the pattern are still meaningful. */
static int pat_check(const struct pat_slot *s, size_t len)
{
	size_t head = s->size < 256 ? s->size : 256;
	size_t tail = s->size < 64 ? s->size : 64;

	for (size_t i = 0; i < head && i < len; i++)
		if (s->p[i] != (unsigned char)(s->tag + i) &&
		    !(i >= s->size - tail && s->p[i] == (unsigned char)(s->tag ^ i)))
			return -1;
	for (size_t i = s->size - tail; i < s->size && i < len; i++)
		if (s->p[i] != (unsigned char)(s->tag ^ i))
			return -1;
	return 0;
}

static uint64_t xs(uint64_t *st)
{
	uint64_t x = *st;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *st = x;
}

/* Mostly small, some medium, a few up to 64 KiB. */
static size_t rand_size(uint64_t *st)
{
	uint64_t r = xs(st);

	switch (r % 20) {
	case 0:
		return 16 * KiB + (r >> 8) % (48 * KiB);
	case 1 ... 5:
		return 1 * KiB + (r >> 8) % (15 * KiB);
	default:
		return 1 + (r >> 8) % 1024;
	}
}

struct stress_arg {
	uint64_t seed;
	long ops;
	long validate_every;
	int window;
	int errors;
	long allocs, fails;
	char what[160];
};

/* Random malloc/free/realloc on a window of live blocks. */
static void *stress_run(void *argp)
{
	struct stress_arg *a = argp;
	struct pat_slot *slot = calloc(a->window, sizeof(*slot));
	uint64_t st = a->seed;

	if (!slot) {
		a->errors++;
		return NULL;
	}
	for (long op = 0; op < a->ops && !a->errors; op++) {
		uint64_t r = xs(&st);
		struct pat_slot *s = &slot[r % a->window];

		if (!s->p) {
			unsigned int align = (r >> 32) % 16 == 0 ? 64u << ((r >> 40) % 7) : 0;

			s->size = rand_size(&st);
			s->tag = (unsigned char)(r >> 24);
			s->p = (r >> 36) % 8 == 0 ? hpm_zmalloc(NULL, s->size, align) :
						    hpm_malloc(NULL, s->size, align);
			if (!s->p) {
				a->fails++;
				continue;
			}
			a->allocs++;
			if (align && (uintptr_t)s->p % align) {
				snprintf(a->what, sizeof(a->what), "misaligned %p/%u", s->p, align);
				a->errors++;
			}
			pat_fill(s);
		} else if ((r >> 32) % 4 == 0) {
			size_t nsize = rand_size(&st);
			unsigned char *q;

			if (pat_check(s, s->size)) {
				snprintf(a->what, sizeof(a->what), "pattern of %p (%zu) broken", s->p, s->size);
				a->errors++;
				break;
			}
			q = hpm_realloc(s->p, nsize, 0);
			if (!q) {
				a->fails++;
				continue;
			}
			s->p = q;
			/* The head survives a realloc; refill for the new size. */
			for (size_t i = 0; i < 256 && i < s->size && i < nsize; i++)
				if (q[i] != (unsigned char)(s->tag + i) &&
				    !(i >= s->size - (s->size < 64 ? s->size : 64))) {
					snprintf(a->what, sizeof(a->what), "realloc lost byte %zu", i);
					a->errors++;
					break;
				}
			s->size = nsize;
			pat_fill(s);
		} else {
			if (pat_check(s, s->size)) {
				snprintf(a->what, sizeof(a->what), "pattern of %p (%zu) broken", s->p, s->size);
				a->errors++;
				break;
			}
			hpm_free(s->p);
			s->p = NULL;
		}
		if (a->validate_every && op % a->validate_every == 0 && hpm_malloc_validate()) {
			snprintf(a->what, sizeof(a->what), "validate failed at op %ld", op);
			a->errors++;
		}
	}
	for (int i = 0; i < a->window; i++) {
		if (slot[i].p && pat_check(&slot[i], slot[i].size)) {
			snprintf(a->what, sizeof(a->what), "final pattern broken");
			a->errors++;
		}
		hpm_free(slot[i].p);
	}
	free(slot);
	return NULL;
}

TEST_F(heap, random_single_thread)
{
	struct stress_arg a = { .seed = 0x1234567, .ops = 200000, .window = 300,
				.validate_every = 5000 };
	struct hpm_heap_stats st;

	stress_run(&a);
	ASSERT_EQ(0, a.errors) TH_LOG("%s", a.what);
	ASSERT_EQ(0, heap_ok());
	stats0(&st, &self->tbl[0]);
	ASSERT_EQ(0, st.alloc_count);
	ASSERT_EQ(1, st.free_count);
}

/* ------------------------------------------------------------------ */
/* Public API after hpm_init(); backend from HPMEM_OPTS. */

TEST(before_init)
{
	ASSERT_EQ(NULL, hpm_malloc(NULL, 64, 0));
	ASSERT_EQ(ENODEV, hpm_errno);
	ASSERT_EQ(0, hpm_malloc_validate());
	hpm_free(NULL);
}

FIXTURE(api) {
	int up;
	char region[HPM_NAME_SIZE];
	char why[128];
	uint32_t nodes;
	struct hpm_malloc_socket_stats base[HPM_MAX_NODES];
};

FIXTURE_VARIANT(api) {
	int nodes;
};

FIXTURE_VARIANT_ADD(api, one_node) { .nodes = 1 };
FIXTURE_VARIANT_ADD(api, two_nodes) { .nodes = 2 };

static uint32_t nodes_with_memory(void)
{
	uint32_t m = 0;

	for (int s = 0; s < HPM_MAX_NODES; s++) {
		struct hpm_malloc_socket_stats st;

		if (!hpm_malloc_get_socket_stats(s, &st) && st.heap_totalsz_bytes)
			m |= 1u << s;
	}
	return m;
}

FIXTURE_SETUP(api)
{
	struct hpm_init_opts o;
	int ret;

	hpm_init_opts_default(&o);
	snprintf(self->region, sizeof(self->region), "t-malloc-%d", getpid());
	o.region = self->region;
	for (int n = 0; n < variant->nodes; n++)
		o.socket_mem[n] = 64 / variant->nodes;
	ret = hpm_init(&o);
	if (ret) {
		snprintf(self->why, sizeof(self->why), "hpm_init with %d node(s): %s",
			 variant->nodes, strerror(-ret));
		return;
	}
	self->up = 1;
	self->nodes = nodes_with_memory();
	for (int s = 0; s < HPM_MAX_NODES; s++)
		ASSERT_EQ(0, hpm_malloc_get_socket_stats(s, &self->base[s]));
}

FIXTURE_TEARDOWN(api)
{
	if (self->up) {
		/* Everything a test allocated has been freed again. */
		for (int s = 0; s < HPM_MAX_NODES; s++) {
			struct hpm_malloc_socket_stats st;

			EXPECT_EQ(0, hpm_malloc_get_socket_stats(s, &st));
			EXPECT_EQ(self->base[s].alloc_count, st.alloc_count);
			EXPECT_EQ(self->base[s].heap_freesz_bytes, st.heap_freesz_bytes);
		}
		EXPECT_EQ(0, hpm_malloc_validate());
		EXPECT_EQ(0, hpm_cleanup());
	}
}

#define API_UP() do {						\
	if (!self->up)						\
		SKIP(return, "%s", self->why);			\
} while (0)

TEST_F(api, basic_calls)
{
	struct hpm_malloc_socket_stats st;
	unsigned char *a, *z, *c, *r;

	API_UP();
	TH_LOG("backend %s, iova mode %s, nodes %#x", hpm_backend_name(hpm_backend()),
	       hpm_iova_mode() == HPM_IOVA_PA ? "pa" : "va", self->nodes);
	a = hpm_malloc("x", 1000, 0);
	ASSERT_NE(NULL, a);
	memset(a, 0xff, 1000);
	z = hpm_zmalloc(NULL, 5000, 64);
	ASSERT_NE(NULL, z);
	ASSERT_EQ(0, (uintptr_t)z % 64);
	for (int i = 0; i < 5000; i++)
		ASSERT_EQ(0, z[i]);
	c = hpm_calloc(NULL, 100, 33, 0);
	ASSERT_NE(NULL, c);
	for (int i = 0; i < 3300; i++)
		ASSERT_EQ(0, c[i]);
	/*
	 * HPM_SOCKET_ANY follows the calling CPU's node, and the scheduler may
	 * move this thread between nodes: count over every node.
	 */
	{
		uint64_t n0 = 0, n1 = 0, sz0 = 0, sz1 = 0, tot0 = 0, tot1 = 0;

		for (int s = 0; s < HPM_MAX_NODES; s++) {
			if (!(self->nodes & (1u << s)))
				continue;
			ASSERT_EQ(0, hpm_malloc_get_socket_stats(s, &st));
			n0 += self->base[s].alloc_count;
			n1 += st.alloc_count;
			sz0 += self->base[s].heap_allocsz_bytes;
			sz1 += st.heap_allocsz_bytes;
			tot0 += self->base[s].heap_totalsz_bytes;
			tot1 += st.heap_totalsz_bytes;
		}
		ASSERT_EQ(n0 + 3, n1);
		ASSERT_GE(sz1, sz0 + 9300);
		ASSERT_EQ(tot0, tot1);
	}
	ASSERT_EQ(0, hpm_malloc_validate());
	r = hpm_realloc(a, 100000, 0);
	ASSERT_NE(NULL, r);
	for (int i = 0; i < 1000; i++)
		ASSERT_EQ(0xff, r[i]);
	ASSERT_GE(hpm_malloc_usable_size(r), 100000);
	hpm_free(r);
	hpm_free(z);
	hpm_free(c);
	hpm_free(NULL);
	ASSERT_EQ(0, hpm_malloc_validate());
	hpm_malloc_dump_stats(stdout, HPM_SOCKET_ANY);
}

TEST_F(api, errors)
{
	void *p;
	int on_stack;

	API_UP();
	ASSERT_EQ(NULL, hpm_malloc(NULL, 0, 0));
	ASSERT_EQ(EINVAL, hpm_errno);
	ASSERT_EQ(NULL, hpm_malloc(NULL, 10, 3));
	ASSERT_EQ(EINVAL, hpm_errno);
	ASSERT_EQ(NULL, hpm_malloc(NULL, SIZE_MAX, 0));
	ASSERT_EQ(ENOMEM, hpm_errno);
	ASSERT_EQ(NULL, hpm_malloc(NULL, 1UL << 36, 0));
	ASSERT_EQ(ENOMEM, hpm_errno);
	ASSERT_EQ(NULL, hpm_zmalloc(NULL, SIZE_MAX / 2, 0));
	ASSERT_EQ(ENOMEM, hpm_errno);
	ASSERT_EQ(NULL, hpm_calloc(NULL, SIZE_MAX / 2, 3, 0));
	ASSERT_EQ(ENOMEM, hpm_errno);
	ASSERT_EQ(NULL, hpm_calloc(NULL, 1UL << 33, 1UL << 33, 0));
	ASSERT_EQ(ENOMEM, hpm_errno);
	ASSERT_EQ(NULL, hpm_malloc_socket(NULL, 10, 0, HPM_MAX_NODES));
	ASSERT_EQ(EINVAL, hpm_errno);
	ASSERT_EQ(NULL, hpm_malloc_socket(NULL, 10, 0, -5));
	ASSERT_EQ(EINVAL, hpm_errno);
	ASSERT_EQ(0, hpm_malloc_validate());

	p = hpm_malloc(NULL, 64, 0);
	ASSERT_NE(NULL, p);
	hpm_free(p);
	hpm_errno = 0;
	hpm_free(p);
	ASSERT_EQ(EINVAL, hpm_errno);
	hpm_errno = 0;
	hpm_free(&on_stack);
	ASSERT_EQ(EINVAL, hpm_errno);
	ASSERT_EQ(NULL, hpm_realloc(&on_stack, 10, 0));
	ASSERT_EQ(EINVAL, hpm_errno);
	ASSERT_EQ(-EINVAL, hpm_malloc_get_socket_stats(HPM_MAX_NODES, &self->base[0]));
	ASSERT_EQ(-EINVAL, hpm_malloc_get_socket_stats(0, NULL));
	ASSERT_EQ(0, hpm_malloc_validate());
}

TEST_F(api, alignment)
{
	for (unsigned int align = 16; align <= 2 * MiB; align <<= 1) {
		void *p;

		API_UP();
		p = hpm_malloc(NULL, 48, align);
		ASSERT_NE(NULL, p);
		ASSERT_EQ(0, (uintptr_t)p % align);
		hpm_free(p);
		p = hpm_zmalloc(NULL, align, align);
		ASSERT_NE(NULL, p);
		ASSERT_EQ(0, (uintptr_t)p % align);
		hpm_free(p);
	}
	ASSERT_EQ(0, hpm_malloc_validate());
}

/*
 * DPDK's test_malloc.c (test_align_overlap_per_lcore, test_rte_malloc_type_limits):
 * an alignment of 0 gives a cache line, as rte_malloc() does, for every
 * call of the family and every size, including blocks recycled through
 * the thread cache.
 */
TEST_F(api, align0_is_cache_line)
{
	static const size_t sizes[] = { 1, 8, 16, 40, 48, 63, 64, 100, 1000,
					1024, 4000, 65536, 200000 };
	void *p[sizeof(sizes) / sizeof(sizes[0])][5];

	API_UP();
	for (int round = 0; round < 3; round++) {
		for (unsigned int i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
			p[i][0] = hpm_malloc(NULL, sizes[i], 0);
			p[i][1] = hpm_zmalloc(NULL, sizes[i], 0);
			p[i][2] = hpm_calloc(NULL, 1, sizes[i], 16);
			p[i][3] = hpm_malloc_socket(NULL, sizes[i], 8, HPM_SOCKET_ANY);
			p[i][4] = hpm_realloc(hpm_malloc(NULL, 8, 0), sizes[i], 0);
			for (int k = 0; k < 5; k++) {
				ASSERT_NE(NULL, p[i][k]);
				ASSERT_EQ(0, (uintptr_t)p[i][k] % 64)
					TH_LOG("size %zu call %d: %p", sizes[i], k, p[i][k]);
				ASSERT_GE(hpm_malloc_usable_size(p[i][k]), sizes[i]);
			}
		}
		/* Free half: the next round gets them back from the cache. */
		for (unsigned int i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
			for (int k = 0; k < 5; k++)
				hpm_free(p[i][k]);
	}
	ASSERT_EQ(0, hpm_malloc_validate());
}

/*
 * hpm_malloc_usable_size() is the same in every build: this program runs
 * in the HPM_DEBUG=1 suite too, where the trailer cookie used to eat into
 * it (1024 reported 1032 there, 1024 here). The layout: a 16-byte header
 * and an 8-byte trailer in a cache-line multiple.
 */
TEST_F(api, usable_size_build_independent)
{
	static const size_t sizes[] = { 1, 40, 41, 1000, 1024, 1040, 65536 };

	API_UP();
	for (unsigned int i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t want = ((sizes[i] + 16 + 8 + 63) & ~(size_t)63) - 16 - 8;
		unsigned char *q = hpm_malloc(NULL, sizes[i], 0);
		size_t n;

		ASSERT_NE(NULL, q);
		n = hpm_malloc_usable_size(q);
		EXPECT_EQ(want, n) TH_LOG("size %zu", sizes[i]);
		/* All of it is the caller's: debug cookies stay intact. */
		memset(q, 0xee, n);
		EXPECT_EQ(0, hpm_malloc_validate());
		hpm_free(q);
	}
}

/* rte_free_sensitive(): the freed bytes are cleared on the way. */
TEST_F(api, free_sensitive)
{
	static const size_t sizes[] = { 48, 1000, 70000, 300000 };

	API_UP();
	for (unsigned int i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		unsigned char *q = hpm_malloc(NULL, sizes[i], 0);
		size_t n, dirty = 0;

		ASSERT_NE(NULL, q);
		n = hpm_malloc_usable_size(q);
		memset(q, 0xa5, n);
		hpm_free_sensitive(q);
		/*
		 * The region stays mapped: look at what is left. The first 16
		 * bytes now hold the thread cache's or free list's links.
		 */
		for (size_t k = 16; k < n; k++)
			dirty += q[k] == 0xa5;
		EXPECT_EQ(0, dirty) TH_LOG("size %zu: %zu secret bytes left", sizes[i], dirty);
	}
	hpm_free_sensitive(NULL);
	/* A double free is refused as by hpm_free(), nothing written. */
	{
		void *q = hpm_malloc(NULL, 64, 0);

		ASSERT_NE(NULL, q);
		hpm_free(q);
		hpm_errno = 0;
		hpm_free_sensitive(q);
		EXPECT_EQ(EINVAL, hpm_errno);
	}
	ASSERT_EQ(0, hpm_malloc_validate());
}

/*
 * DPDK's test_realloc_socket: "realloc where the next element is free"
 * grows in place, also when that element was freed a moment ago and sits
 * in this thread's cache (DPDK code counts on it for large buffers).
 */
TEST_F(api, realloc_grows_into_cached_neighbour)
{
	static const size_t sizes[] = { 1000, 16384, 60000 };

	API_UP();
	for (unsigned int i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		char *a, *b, *guard, *r;

		a = hpm_malloc_socket(NULL, sizes[i], 0, 0);
		b = hpm_malloc_socket(NULL, sizes[i], 0, 0);
		guard = hpm_malloc_socket(NULL, 64, 0, 0);
		ASSERT_NE(NULL, a);
		ASSERT_NE(NULL, b);
		ASSERT_NE(NULL, guard);
		if (b != a + hpm_malloc_usable_size(a) + 24) {
			/* Not neighbours (a busy heap): nothing to show. */
			hpm_free(a);
			hpm_free(b);
			hpm_free(guard);
			SKIP(return, "size %zu: blocks not adjacent", sizes[i]);
		}
		memset(a, 0x3c, sizes[i]);
		hpm_free(b);
		r = hpm_realloc(a, sizes[i] * 2, 0);
		ASSERT_NE(NULL, r);
		EXPECT_EQ(a, r) TH_LOG("size %zu: moved", sizes[i]);
		for (size_t k = 0; k < sizes[i]; k++)
			ASSERT_EQ(0x3c, r[k]);
		EXPECT_EQ(0, hpm_malloc_validate());
		hpm_free(r);
		hpm_free(guard);
	}
}

TEST_F(api, exhaust)
{
	struct hpm_malloc_socket_stats st;
	void **p = calloc(4096, sizeof(*p));
	int n = 0;

	API_UP();
	ASSERT_NE(NULL, p);
	while (n < 4096 && (p[n] = hpm_malloc(NULL, 1 * MiB, 0)))
		n++;
	ASSERT_EQ(ENOMEM, hpm_errno);
	ASSERT_GT(n, 16);
	ASSERT_EQ(0, hpm_malloc_validate());
	for (int i = 0; i < n; i++)
		hpm_free(p[i]);
	ASSERT_EQ(0, hpm_malloc_validate());
	for (int s = 0; s < HPM_MAX_NODES; s++) {
		ASSERT_EQ(0, hpm_malloc_get_socket_stats(s, &st));
		ASSERT_EQ(self->base[s].heap_freesz_bytes, st.heap_freesz_bytes);
	}
	free(p);
}

/* Every node's _socket(n) blocks sit on node n's pages, at both ends. */
TEST_F(api, node_placement)
{
	API_UP();
	for (int s = 0; s < HPM_MAX_NODES; s++) {
		struct hpm_mem_socket_info in;
		const struct hpm_memseg *ms;
		size_t size = 3 * MiB;
		char *p;

		/* A dynamic region also serves nodes it may grow on. */
		ASSERT_EQ(0, hpm_mem_socket_info(s, &in));
		if (!(self->nodes & (1u << s)) && in.limit < size + 2 * MiB) {
			ASSERT_EQ(NULL, hpm_malloc_socket(NULL, 64, 0, s));
			ASSERT_EQ(ENOMEM, hpm_errno);
			continue;
		}
		p = hpm_malloc_socket(NULL, size, 0, s);
		ASSERT_NE(NULL, p);
		ms = hpm_virt2memseg(p);
		ASSERT_NE(NULL, ms);
		ASSERT_EQ(s, ms->socket);
		ms = hpm_virt2memseg(p + size - 1);
		ASSERT_NE(NULL, ms);
		ASSERT_EQ(s, ms->socket);
		ASSERT_NE(HPM_BAD_IOVA, hpm_virt2iova(p));
		hpm_free(p);
	}
}

static int longest_run(const struct hpm_memseg *first, size_t len, void *arg)
{
	size_t *longest = arg;

	(void)first;
	if (len > *longest)
		*longest = len;
	return 0;
}

/* Bounded and IOVA-contiguous blocks, checked against the memseg table. */
TEST_F(api, bound_and_contig)
{
	size_t sizes[4] = { 4 * KiB, 1536 * KiB, 0, 2 * MiB - 64 };
	size_t longest = 0;
	void *keep[32];

	API_UP();
	for (int i = 0; i < 32; i++) {
		size_t size = 10000 + (size_t)i * 1000;
		size_t bound = 64 * KiB;
		uint64_t i0, i1;

		keep[i] = hpm_heap_alloc(HPM_SOCKET_ANY, size, 64, bound, 0);
		ASSERT_NE(NULL, keep[i]);
		i0 = hpm_virt2iova(keep[i]);
		i1 = hpm_virt2iova((char *)keep[i] + size - 1);
		ASSERT_NE(HPM_BAD_IOVA, i0);
		ASSERT_EQ(i0 / bound, i1 / bound);
	}
	for (int i = 0; i < 32; i++)
		ASSERT_EQ(0, hpm_heap_free(keep[i]));
	/*
	 * Blocks up to a page always fit inside one page; larger ones need
	 * physically contiguous pages, which PA mode may not have.
	 */
	ASSERT_EQ(0, hpm_memseg_contig_walk(longest_run, &longest));
	sizes[2] = longest >= 8 * MiB ? 3 * MiB : 1 * MiB;
	for (int i = 0; i < 4; i++) {
		keep[i] = hpm_heap_alloc(HPM_SOCKET_ANY, sizes[i], 0, 0, HPM_HEAP_F_CONTIG);
		ASSERT_NE(NULL, keep[i]) TH_LOG("%zu bytes (longest run %zu)", sizes[i], longest);
		ASSERT_TRUE(hpm_memseg_iova_contig(keep[i], sizes[i]));
	}
	for (int i = 0; i < 4; i++)
		ASSERT_EQ(0, hpm_heap_free(keep[i]));
	ASSERT_EQ(0, hpm_malloc_validate());
}

/* A child forked after init shares the heap but must not reuse our cache. */
TEST_F(api, fork_child)
{
	void *p, *q;
	int status;
	pid_t pid;

	API_UP();
	p = hpm_malloc(NULL, 200, 0);
	ASSERT_NE(NULL, p);
	hpm_free(p);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		void *c = hpm_malloc(NULL, 200, 0);

		if (!c || c == p)
			_exit(1);
		memset(c, 0x33, 200);
		hpm_free(c);
		if (hpm_malloc_validate())
			_exit(2);
		c = hpm_malloc(NULL, 300, 0);
		if (!c)
			_exit(3);
		hpm_free(c);
		/* Cleanup gives the cached block back (teardown counts it). */
		_exit(hpm_cleanup() ? 4 : 0);
	}
	q = hpm_malloc(NULL, 200, 0);
	ASSERT_NE(NULL, q);
	memset(q, 0x44, 200);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(0, WEXITSTATUS(status));
	for (int i = 0; i < 200; i++)
		ASSERT_EQ(0x44, ((unsigned char *)q)[i]);
	hpm_free(q);
}

/* A node that runs dry: explicit socket is strict, ANY falls back. */
TEST_F(api, strict_and_fallback)
{
	void **p = calloc(4096, sizeof(*p));
	const struct hpm_memseg *ms;
	int n = 0, dry, other;
	void *q;

	API_UP();
	ASSERT_NE(NULL, p);
	if (__builtin_popcount(self->nodes) < 2) {
		free(p);
		SKIP(return, "needs memory on 2 nodes (have mask %#x)", self->nodes);
	}
	dry = 31 - __builtin_clz(self->nodes);
	other = __builtin_ctz(self->nodes);
	while (n < 4096 && (p[n] = hpm_malloc_socket(NULL, 512 * KiB, 0, dry)))
		n++;
	ASSERT_EQ(ENOMEM, hpm_errno);
	ASSERT_EQ(NULL, hpm_malloc_socket(NULL, 512 * KiB, 0, dry));
	ASSERT_EQ(NULL, hpm_zmalloc_socket(NULL, 512 * KiB, 0, dry));
	ASSERT_EQ(NULL, hpm_calloc_socket(NULL, 512, KiB, 0, dry));
	/* The internal call without STRICT falls back to another node. */
	q = hpm_heap_alloc(dry, 512 * KiB, 0, 0, 0);
	ASSERT_NE(NULL, q);
	ms = hpm_virt2memseg(q);
	ASSERT_NE(NULL, ms);
	ASSERT_EQ(other, ms->socket);
	hpm_free(q);
	q = hpm_malloc_socket(NULL, 512 * KiB, 0, HPM_SOCKET_ANY);
	ASSERT_NE(NULL, q);
	ASSERT_EQ(other, hpm_virt2memseg(q)->socket);
	/* realloc onto an explicit node moves the block there. */
	q = hpm_realloc_socket(q, 600 * KiB, 0, other);
	ASSERT_NE(NULL, q);
	ASSERT_EQ(other, hpm_virt2memseg(q)->socket);
	ASSERT_EQ(NULL, hpm_realloc_socket(q, 700 * KiB, 0, dry));
	ASSERT_EQ(ENOMEM, hpm_errno);
	hpm_free(q);
	ASSERT_EQ(0, hpm_malloc_validate());
	for (int i = 0; i < n; i++)
		hpm_free(p[i]);
	free(p);
	ASSERT_EQ(0, hpm_malloc_validate());
}

/* ------------------------------------------------------------------ */
/* Stress: 2 threads of this primary plus a secondary process. */

FIXTURE(stress) {
	int dummy;
};
FIXTURE_SETUP(stress) { }
FIXTURE_TEARDOWN(stress) { }

static long stress_ops(void)
{
	const char *e = getenv("HPM_STRESS_OPS");
	long n = e ? atol(e) : 0;

	return n > 0 ? n : 1200000;
}

TEST_F_TIMEOUT(stress, threads_and_secondary, 600)
{
	struct stress_arg arg[3] = {
		{ .seed = 0x9e3779b97f4a7c15ull, .window = 256 },
		{ .seed = 0xc2b2ae3d27d4eb4full, .window = 256 },
		{ .seed = 0x165667b19e3779f9ull, .window = 256 },
	};
	struct hpm_malloc_socket_stats base, st;
	long total = stress_ops();
	struct hpm_init_opts o;
	char region[HPM_NAME_SIZE];
	int go[2], res[2];
	pthread_t t[2];
	char msg[256] = "";
	int status, ret;
	pid_t child;
	ssize_t n;

	for (int i = 0; i < 3; i++) {
		arg[i].ops = total / 3;
		arg[i].validate_every = 20000;
	}
	snprintf(region, sizeof(region), "t-mstress-%d", getpid());
	ASSERT_EQ(0, pipe(go));
	ASSERT_EQ(0, pipe(res));
	/* The secondary forks before the region exists, so nothing is inherited. */
	child = fork();
	ASSERT_LE(0, child);
	if (child == 0) {
		char c;

		close(go[1]);
		close(res[0]);
		if (read(go[0], &c, 1) != 1 || c != 'g')
			_exit(3);
		hpm_init_opts_default(&o);
		o.region = region;
		o.proc_type = HPM_PROC_SECONDARY;
		ret = hpm_init(&o);
		if (ret) {
			dprintf(res[1], "secondary hpm_init: %s", strerror(-ret));
			_exit(2);
		}
		stress_run(&arg[2]);
		if (!arg[2].errors && hpm_malloc_validate())
			snprintf(arg[2].what, sizeof(arg[2].what), "final validate"), arg[2].errors++;
		dprintf(res[1], "secondary: %ld allocs %ld failed %s", arg[2].allocs,
			arg[2].fails, arg[2].what);
		hpm_cleanup();
		_exit(arg[2].errors ? 1 : 0);
	}
	close(go[0]);
	close(res[1]);
	hpm_init_opts_default(&o);
	o.region = region;
	o.proc_type = HPM_PROC_PRIMARY;
	ret = hpm_init(&o);
	if (ret) {
		close(go[1]);
		waitpid(child, &status, 0);
		SKIP(return, "hpm_init: %s", strerror(-ret));
	}
	ASSERT_EQ(0, hpm_malloc_get_socket_stats(0, &base));
	ASSERT_EQ(1, write(go[1], "g", 1));
	for (int i = 0; i < 2; i++)
		ASSERT_EQ(0, pthread_create(&t[i], NULL, stress_run, &arg[i]));
	for (int i = 0; i < 2; i++) {
		ASSERT_EQ(0, pthread_join(t[i], NULL));
		ASSERT_EQ(0, arg[i].errors) TH_LOG("thread %d: %s", i, arg[i].what);
		TH_LOG("thread %d: %ld allocs, %ld failed", i, arg[i].allocs, arg[i].fails);
	}
	ASSERT_EQ(child, waitpid(child, &status, 0));
	n = read(res[0], msg, sizeof(msg) - 1);
	msg[n > 0 ? n : 0] = 0;
	TH_LOG("%s", msg);
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(0, WEXITSTATUS(status)) TH_LOG("%s", msg);
	ASSERT_EQ(0, hpm_malloc_validate());
	ASSERT_EQ(0, hpm_malloc_get_socket_stats(0, &st));
	ASSERT_EQ(base.alloc_count, st.alloc_count);
	ASSERT_EQ(base.heap_freesz_bytes, st.heap_freesz_bytes);
	ASSERT_EQ(0, hpm_cleanup());
}

TEST_HARNESS_MAIN
