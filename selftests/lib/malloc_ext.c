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
#include <hpmem/mempool.h>
#include <hpmem/memseg.h>
#include <hpmem/memzone.h>

#include "kselftest_harness.h"

#include "config.h"
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
	/* a's block merges into all of page 0 in front of the cut: a whole run's page. */
	ASSERT_EQ(0, hpm_heap_free(a));
	hpm_heap_cache_flush();
	ASSERT_EQ(2, t.calls);
	ASSERT_EQ(2, t.removed);
	ASSERT_EQ((uintptr_t)self->buf, t.va);
	ASSERT_EQ(PG, t.len);
	ASSERT_EQ(1u, stats(self->h).runs);
	/* Small frees elsewhere: no call. */
	a = hpm_heap_alloc(0, 64 * KiB, 0, 0, 0);
	ASSERT_NE(NULL, a);
	ASSERT_EQ(0, hpm_heap_free(a));
	hpm_heap_cache_flush();
	ASSERT_EQ(2, t.calls);
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
			p[i] = hpm_heap_alloc(0, 64 + rand_r(&seed) % (32 * KiB), 0, 0,
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

/* ------------------------------------------------------------------ */
/*
 * External heaps after hpm_init() (backend from HPMEM_OPTS): DPDK 22.11's
 * test_external_mem.c (test_malloc_invalid_param, test_malloc_basic) call
 * for call, and what DPDK's remove/destroy/attach promise.
 */

#define EXT_PG		4096UL
#define EXT_LEN		(4 * MiB)
#define EXT_IOVA	0x7e0000000000ull

TEST(ext_before_init)
{
	ASSERT_EQ(-ENODEV, hpm_malloc_heap_create("early"));
	ASSERT_EQ(ENODEV, hpm_errno);
	ASSERT_EQ(0, hpm_malloc_heap_socket_is_external(HPM_SOCKET_ANY));
}

FIXTURE(ext) {
	int up;
	char region[HPM_NAME_SIZE];
	char why[128];
	char *mem;		/* EXT_LEN bytes of 4 KiB pages, ours */
	uint64_t iova[EXT_LEN / EXT_PG];
};

FIXTURE_SETUP(ext)
{
	struct hpm_init_opts o;
	int ret;

	self->mem = mmap(NULL, EXT_LEN, PROT_READ | PROT_WRITE,
			 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, self->mem);
	/* Contiguous IOVAs except for a hole after page 100. */
	for (size_t i = 0; i < EXT_LEN / EXT_PG; i++)
		self->iova[i] = EXT_IOVA + i * EXT_PG + (i > 100 ? 1ull << 30 : 0);
	hpm_init_opts_default(&o);
	snprintf(self->region, sizeof(self->region), "t-mext-%d", getpid());
	o.region = self->region;
	o.socket_mem[0] = 32;
	ret = hpm_init(&o);
	if (ret) {
		snprintf(self->why, sizeof(self->why), "hpm_init: %s", strerror(-ret));
		return;
	}
	self->up = 1;
}

FIXTURE_TEARDOWN(ext)
{
	if (self->up) {
		EXPECT_EQ(0, hpm_malloc_validate());
		EXPECT_EQ(0, hpm_cleanup());
	}
	munmap(self->mem, EXT_LEN);
}

#define EXT_UP() do {						\
	if (!self->up)						\
		SKIP(return, "%s", self->why);			\
} while (0)

/* test_malloc_invalid_param() of DPDK's test_external_mem.c. */
TEST_F(ext, invalid_param)
{
	char long_name[HPM_MALLOC_HEAP_NAME_SIZE + 1];
	const struct hpm_memseg *ms;
	void *va = self->mem;
	size_t len = EXT_LEN, pg = EXT_PG;
	unsigned int n = EXT_LEN / EXT_PG;

	EXT_UP();
	memset(long_name, 'a', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = 0;

	/* create: NULL, empty, too long */
	ASSERT_EQ(-EINVAL, hpm_malloc_heap_create(NULL));
	ASSERT_EQ(EINVAL, hpm_errno);
	ASSERT_EQ(-EINVAL, hpm_malloc_heap_create(""));
	ASSERT_EQ(-EINVAL, hpm_malloc_heap_create(long_name));
	/* destroy: the same, then a heap that does not exist, then a node's */
	ASSERT_EQ(-EINVAL, hpm_malloc_heap_destroy(NULL));
	ASSERT_EQ(-EINVAL, hpm_malloc_heap_destroy(""));
	ASSERT_EQ(-EINVAL, hpm_malloc_heap_destroy(long_name));
	ASSERT_EQ(-ENOENT, hpm_malloc_heap_destroy("nope"));
	ASSERT_EQ(ENOENT, hpm_errno);
	ASSERT_EQ(-EPERM, hpm_malloc_heap_destroy("socket_0"));
	/* get_socket */
	ASSERT_EQ(-EINVAL, hpm_malloc_heap_get_socket(NULL));
	ASSERT_EQ(-ENOENT, hpm_malloc_heap_get_socket("nope"));
	ASSERT_EQ(0, hpm_malloc_heap_get_socket("socket_0"));

	/* memory_add: every argument wrong in turn, against a real heap */
	ASSERT_EQ(0, hpm_malloc_heap_create("ext"));
	ASSERT_EQ(-EINVAL, hpm_malloc_heap_memory_add(NULL, va, len, self->iova, n, pg));
	ASSERT_EQ(-EINVAL, hpm_malloc_heap_memory_add("", va, len, self->iova, n, pg));
	ASSERT_EQ(-EINVAL, hpm_malloc_heap_memory_add(long_name, va, len, self->iova, n, pg));
	ASSERT_EQ(-EINVAL, hpm_malloc_heap_memory_add("ext", NULL, len, self->iova, n, pg));
	ASSERT_EQ(-EINVAL, hpm_malloc_heap_memory_add("ext", va, 0, self->iova, n, pg));
	ASSERT_EQ(-EINVAL, hpm_malloc_heap_memory_add("ext", va, len + 1, self->iova, n, pg));
	ASSERT_EQ(-EINVAL, hpm_malloc_heap_memory_add("ext", (char *)va + 1, len, self->iova, n, pg));
	ASSERT_EQ(-EINVAL, hpm_malloc_heap_memory_add("ext", va, len, self->iova, n, 0));
	ASSERT_EQ(-EINVAL, hpm_malloc_heap_memory_add("ext", va, len, self->iova, n, pg + 1));
	ASSERT_EQ(-EINVAL, hpm_malloc_heap_memory_add("ext", va, len, self->iova, n - 1, pg));
	ASSERT_EQ(-ENOENT, hpm_malloc_heap_memory_add("nope", va, len, self->iova, n, pg));
	ASSERT_EQ(-EPERM, hpm_malloc_heap_memory_add("socket_0", va, len, self->iova, n, pg));
	/* the region's own memory is never external */
	ms = hpm_virt2memseg(hpm_malloc(NULL, 64, 0));
	ASSERT_NE(NULL, ms);
	ASSERT_EQ(-EINVAL, hpm_malloc_heap_memory_add("ext", ms->addr, ms->len,
						      NULL, 0, ms->page_sz));

	/* memory_remove: bad arguments, then memory that was never added */
	ASSERT_EQ(-EINVAL, hpm_malloc_heap_memory_remove(NULL, va, len));
	ASSERT_EQ(-EINVAL, hpm_malloc_heap_memory_remove("", va, len));
	ASSERT_EQ(-EINVAL, hpm_malloc_heap_memory_remove(long_name, va, len));
	ASSERT_EQ(-EINVAL, hpm_malloc_heap_memory_remove("ext", NULL, len));
	ASSERT_EQ(-EINVAL, hpm_malloc_heap_memory_remove("ext", va, 0));
	ASSERT_EQ(-ENOENT, hpm_malloc_heap_memory_remove("nope", va, len));
	ASSERT_EQ(-EPERM, hpm_malloc_heap_memory_remove("socket_0", va, len));
	ASSERT_EQ(-ENOENT, hpm_malloc_heap_memory_remove("ext", va, len));
	/* and part of a chunk is not a chunk */
	ASSERT_EQ(0, hpm_malloc_heap_memory_add("ext", va, len, self->iova, n, pg));
	ASSERT_EQ(-EINVAL, hpm_malloc_heap_memory_add("ext", va, len, self->iova, n, pg));
	ASSERT_EQ(-EINVAL, hpm_malloc_heap_memory_remove("ext", va, len / 2));
	ASSERT_EQ(-EINVAL, hpm_malloc_heap_memory_attach("ext", va, len / 2));
	ASSERT_EQ(-EPERM, hpm_malloc_heap_memory_attach("socket_0", va, len));
	ASSERT_EQ(0, hpm_malloc_heap_memory_remove("ext", va, len));
	ASSERT_EQ(0, hpm_malloc_heap_destroy("ext"));
	ASSERT_EQ(-ENOENT, hpm_malloc_heap_get_socket("ext"));
	hpm_free(hpm_malloc(NULL, 64, 0));
}

/* test_malloc_basic() of DPDK's test_external_mem.c, and a bit more. */
TEST_F(ext, basic)
{
	struct hpm_malloc_socket_stats st;
	const struct hpm_memzone *mz;
	int socket;
	char *p;

	EXT_UP();
	ASSERT_EQ(0, hpm_malloc_heap_create("ext"));
	ASSERT_EQ(-EEXIST, hpm_malloc_heap_create("ext"));
	ASSERT_EQ(-EEXIST, hpm_malloc_heap_create("socket_0"));
	socket = hpm_malloc_heap_get_socket("ext");
	ASSERT_LE(HPM_MAX_NODES, socket);
	ASSERT_EQ(1, hpm_malloc_heap_socket_is_external(socket));
	ASSERT_EQ(0, hpm_malloc_heap_socket_is_external(0));
	ASSERT_EQ(0, hpm_malloc_heap_socket_is_external(HPM_SOCKET_ANY));
	ASSERT_EQ(-EINVAL, hpm_malloc_heap_socket_is_external(socket + 1));
	ASSERT_EQ(-EINVAL, hpm_malloc_heap_socket_is_external(1000));

	/* An empty heap: nothing to allocate. */
	ASSERT_EQ(NULL, hpm_malloc_socket(NULL, 64, 0, socket));
	ASSERT_EQ(ENOMEM, hpm_errno);
	ASSERT_EQ(0, hpm_malloc_heap_memory_add("ext", self->mem, EXT_LEN, NULL, 0, EXT_PG));
	ASSERT_EQ(0, hpm_malloc_get_socket_stats(socket, &st));
	ASSERT_LT(EXT_LEN - 128, st.heap_totalsz_bytes);
	/* A memory chunk in use: destroy must fail. */
	ASSERT_EQ(-EBUSY, hpm_malloc_heap_destroy("ext"));

	p = hpm_malloc_socket("ext", 1000, 0, socket);
	ASSERT_NE(NULL, p);
	ASSERT_TRUE(p >= self->mem && p + 1000 <= self->mem + EXT_LEN);
	ASSERT_EQ(socket, hpm_heap_socket_of(p));
	memset(p, 0xab, 1000);
	/* No IOVA table: unknown IOVAs, as DPDK's RTE_BAD_IOVA. */
	ASSERT_EQ(HPM_BAD_IOVA, hpm_virt2iova(p));
	ASSERT_EQ(socket, hpm_virt2memseg(p)->socket);
	ASSERT_EQ(EXT_PG, hpm_virt2memseg(p)->page_sz);

	mz = hpm_memzone_reserve("ext_mz", 1000, socket, 0);
	ASSERT_NE(NULL, mz);
	ASSERT_EQ(socket, mz->socket);
	ASSERT_TRUE((char *)mz->addr >= self->mem &&
		    (char *)mz->addr + mz->len <= self->mem + EXT_LEN);
	/* Neither allocations nor memzones of "any" node land there. */
	for (int i = 0; i < 64; i++) {
		char *q = hpm_malloc(NULL, 64 * KiB, 0);

		ASSERT_NE(NULL, q);
		ASSERT_TRUE(q + 64 * KiB <= self->mem || q >= self->mem + EXT_LEN);
		hpm_free(q);
	}
	ASSERT_EQ(-EBUSY, hpm_malloc_heap_memory_remove("ext", self->mem, EXT_LEN));
	ASSERT_EQ(EBUSY, hpm_errno);
	hpm_free(p);
	ASSERT_EQ(-EBUSY, hpm_malloc_heap_memory_remove("ext", self->mem, EXT_LEN));
	ASSERT_EQ(0, hpm_memzone_free(mz));
	ASSERT_EQ(0, hpm_malloc_validate());
	/* Freed blocks are not cached: the chunk is free at once. */
	ASSERT_EQ(0, hpm_malloc_heap_memory_remove("ext", self->mem, EXT_LEN));
	ASSERT_EQ(0, hpm_malloc_get_socket_stats(socket, &st));
	ASSERT_EQ(0u, st.heap_totalsz_bytes);
	ASSERT_EQ(NULL, hpm_virt2memseg(self->mem));
	ASSERT_EQ(NULL, hpm_malloc_socket(NULL, 64, 0, socket));
	ASSERT_EQ(0, hpm_malloc_heap_destroy("ext"));
	/* The socket id names nothing any more. */
	ASSERT_EQ(NULL, hpm_malloc_socket(NULL, 64, 0, socket));
	ASSERT_EQ(EINVAL, hpm_errno);
	ASSERT_EQ(NULL, hpm_memzone_reserve("ext_mz", 64, socket, 0));
	ASSERT_EQ(EINVAL, hpm_errno);
}

/* The caller's IOVA table answers hpm_virt2iova(), memzones and contiguity. */
TEST_F(ext, iova_table)
{
	const struct hpm_memzone *mz;
	int socket;
	char *p;

	EXT_UP();
	ASSERT_EQ(0, hpm_malloc_heap_create("ext"));
	socket = hpm_malloc_heap_get_socket("ext");
	ASSERT_EQ(0, hpm_malloc_heap_memory_add("ext", self->mem, EXT_LEN, self->iova,
						EXT_LEN / EXT_PG, EXT_PG));
	p = hpm_malloc_socket(NULL, 3 * EXT_PG, 0, socket);
	ASSERT_NE(NULL, p);
	for (size_t off = 0; off < 3 * EXT_PG; off += 1000) {
		size_t pg = (size_t)(p + off - self->mem) / EXT_PG;

		ASSERT_EQ(self->iova[pg] + (uintptr_t)(p + off - self->mem) % EXT_PG,
			  hpm_virt2iova(p + off));
	}
	/* Across the hole after page 100 nothing is contiguous: the zone goes behind it. */
	mz = hpm_memzone_reserve_aligned("ext_contig", 120 * EXT_PG, socket,
					 HPM_MEMZONE_IOVA_CONTIG, EXT_PG);
	ASSERT_NE(NULL, mz);
	ASSERT_LE(self->mem + 101 * EXT_PG, (char *)mz->addr);
	ASSERT_EQ(hpm_virt2iova(mz->addr), mz->iova);
	ASSERT_EQ(self->iova[((char *)mz->addr - self->mem) / EXT_PG], mz->iova);
	ASSERT_EQ(EXT_PG, mz->page_sz);
	/* The biggest block there is, as memzones of length 0 take it. */
	ASSERT_EQ(0, hpm_memzone_free(mz));
	mz = hpm_memzone_reserve("ext_all", 0, socket, 0);
	ASSERT_NE(NULL, mz);
	ASSERT_LT(EXT_LEN - 4 * EXT_PG, mz->len);
	ASSERT_EQ(0, hpm_memzone_free(mz));
	/* realloc stays in the heap. */
	p = hpm_realloc(p, 200 * KiB, 0);
	ASSERT_NE(NULL, p);
	ASSERT_EQ(socket, hpm_heap_socket_of(p));
	hpm_free(p);
	ASSERT_EQ(0, hpm_malloc_heap_memory_remove("ext", self->mem, EXT_LEN));
	ASSERT_EQ(HPM_BAD_IOVA, hpm_virt2iova(self->mem + EXT_PG));
	ASSERT_EQ(0, hpm_malloc_heap_destroy("ext"));
}

/* A mempool on an external heap's socket id, as rte_mempool_create() allows. */
TEST_F(ext, mempool)
{
	struct hpm_mempool *mp;
	void *obj[64];
	int socket;

	EXT_UP();
	ASSERT_EQ(0, hpm_malloc_heap_create("ext"));
	socket = hpm_malloc_heap_get_socket("ext");
	ASSERT_EQ(0, hpm_malloc_heap_memory_add("ext", self->mem, EXT_LEN, self->iova,
						EXT_LEN / EXT_PG, EXT_PG));
	mp = hpm_mempool_create("ext_mp", 1023, 256, 32, 0, NULL, NULL, socket, 0);
	ASSERT_NE(NULL, mp) TH_LOG("hpm_errno %d", hpm_errno);
	ASSERT_EQ(0, hpm_mempool_get_bulk(mp, obj, 64));
	for (int i = 0; i < 64; i++) {
		ASSERT_TRUE((char *)obj[i] >= self->mem &&
			    (char *)obj[i] + 256 <= self->mem + EXT_LEN);
		memset(obj[i], i, 256);
	}
	hpm_mempool_put_bulk(mp, obj, 64);
	/* The pool's memory is in the chunk: it cannot go yet. */
	ASSERT_EQ(-EBUSY, hpm_malloc_heap_memory_remove("ext", self->mem, EXT_LEN));
	hpm_mempool_free(mp);
	ASSERT_EQ(0, hpm_malloc_heap_memory_remove("ext", self->mem, EXT_LEN));
	ASSERT_EQ(0, hpm_malloc_heap_destroy("ext"));
	/* And a socket id that names no heap is refused. */
	ASSERT_EQ(NULL, hpm_mempool_create("ext_mp", 1023, 256, 32, 0, NULL, NULL, socket, 0));
	ASSERT_EQ(EINVAL, hpm_errno);
}

/* Limits: HPM_MAX_EXT_HEAPS heaps, HPM_EXT_HEAP_MAX_CHUNKS chunks. */
TEST_F(ext, limits)
{
	char name[HPM_MALLOC_HEAP_NAME_SIZE];
	size_t chunk = EXT_LEN / 32;

	EXT_UP();
	for (int i = 0; i < HPM_MAX_EXT_HEAPS; i++) {
		snprintf(name, sizeof(name), "ext%d", i);
		ASSERT_EQ(0, hpm_malloc_heap_create(name));
		ASSERT_EQ(HPM_MAX_NODES + i, hpm_malloc_heap_get_socket(name));
	}
	ASSERT_EQ(-ENOSPC, hpm_malloc_heap_create("one_more"));
	for (int i = 0; i < HPM_EXT_HEAP_MAX_CHUNKS; i++)
		ASSERT_EQ(0, hpm_malloc_heap_memory_add("ext3", self->mem + i * chunk, chunk,
							NULL, 0, EXT_PG));
	ASSERT_EQ(-ENOSPC, hpm_malloc_heap_memory_add("ext3", self->mem + 20 * chunk, chunk,
						      NULL, 0, EXT_PG));
	/* VA-adjacent chunks stay separate runs: each can go on its own. */
	ASSERT_EQ(NULL, hpm_malloc_socket(NULL, chunk, 0, HPM_MAX_NODES + 3));
	ASSERT_EQ(0, hpm_malloc_heap_memory_remove("ext3", self->mem + 5 * chunk, chunk));
	ASSERT_EQ(0, hpm_malloc_heap_memory_add("ext3", self->mem + 20 * chunk, chunk,
						NULL, 0, EXT_PG));
	for (int i = 0; i < HPM_EXT_HEAP_MAX_CHUNKS + 5; i++) {
		int want = i == 5 || (i >= HPM_EXT_HEAP_MAX_CHUNKS && i != 20) ? -ENOENT : 0;

		ASSERT_EQ(want, hpm_malloc_heap_memory_remove("ext3", self->mem + i * chunk, chunk));
	}
	for (int i = 0; i < HPM_MAX_EXT_HEAPS; i++) {
		snprintf(name, sizeof(name), "ext%d", i);
		ASSERT_EQ(0, hpm_malloc_heap_destroy(name));
	}
}

/*
 * A secondary process maps the same memory (a shared mapping inherited
 * across fork, at the same VA), attaches, reads what the primary wrote
 * and allocates itself; remove is EBUSY until it detaches. Memory the
 * secondary sees differently (a private mapping) fails to attach.
 */
TEST(ext_secondary)
{
	char region[HPM_NAME_SIZE];
	struct hpm_init_opts o;
	int go[2], res[2], status, socket, ret;
	char *mem, *priv, *p;
	uintptr_t q = 0;
	pid_t child;

	mem = mmap(NULL, EXT_LEN, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	priv = mmap(NULL, EXT_LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, mem);
	ASSERT_NE(MAP_FAILED, priv);
	snprintf(region, sizeof(region), "t-mext2-%d", getpid());
	ASSERT_EQ(0, pipe(go));
	ASSERT_EQ(0, pipe(res));
	child = fork();
	ASSERT_LE(0, child);
	if (child == 0) {
		uintptr_t a;

		/* Our copies of the other ends would keep a dead primary's pipes open. */
		close(go[1]);
		close(res[0]);
		if (read(go[0], &a, sizeof(a)) != sizeof(a))
			_exit(2);
		hpm_init_opts_default(&o);
		o.region = region;
		o.proc_type = HPM_PROC_SECONDARY;
		if (hpm_init(&o))
			_exit(3);
		/* Private copy taken before the primary wrote its headers. */
		if (hpm_malloc_heap_memory_attach("ext2", priv, EXT_LEN) != -EFAULT)
			_exit(4);
		if (hpm_malloc_heap_memory_attach("ext", mem, EXT_LEN))
			_exit(5);
		if (strcmp((char *)a, "from the primary"))
			_exit(6);
		p = hpm_malloc_socket(NULL, 100, 0, hpm_malloc_heap_get_socket("ext"));
		if (!p)
			_exit(7);
		strcpy(p, "from the secondary");
		a = (uintptr_t)p;
		if (write(res[1], &a, sizeof(a)) != sizeof(a))
			_exit(8);
		/* Wait for the primary to try removing, then detach. */
		if (read(go[0], &a, sizeof(a)) != sizeof(a))
			_exit(9);
		if (hpm_malloc_heap_memory_detach("ext", mem, EXT_LEN))
			_exit(10);
		a = 0;
		if (write(res[1], &a, sizeof(a)) != sizeof(a))
			_exit(11);
		hpm_cleanup();
		_exit(0);
	}
	close(go[0]);
	close(res[1]);
	hpm_init_opts_default(&o);
	o.region = region;
	o.proc_type = HPM_PROC_PRIMARY;
	o.socket_mem[0] = 32;
	ret = hpm_init(&o);
	if (ret) {
		close(go[1]);
		waitpid(child, &status, 0);
		SKIP(return, "hpm_init: %s", strerror(-ret));
	}
	ASSERT_EQ(0, hpm_malloc_heap_create("ext"));
	socket = hpm_malloc_heap_get_socket("ext");
	ASSERT_EQ(0, hpm_malloc_heap_memory_add("ext", mem, EXT_LEN, NULL, 0, EXT_PG));
	p = hpm_malloc_socket(NULL, 100, 0, socket);
	ASSERT_TRUE(p >= mem && p < mem + EXT_LEN);
	/* In a heap of its own: the secondary allocates only where it attached. */
	ASSERT_EQ(0, hpm_malloc_heap_create("ext2"));
	ASSERT_EQ(0, hpm_malloc_heap_memory_add("ext2", priv, EXT_LEN, NULL, 0, EXT_PG));
	strcpy(p, "from the primary");
	q = (uintptr_t)p;
	ASSERT_EQ((ssize_t)sizeof(q), write(go[1], &q, sizeof(q)));
	ASSERT_EQ((ssize_t)sizeof(q), read(res[0], &q, sizeof(q)));
	ASSERT_STREQ("from the secondary", (char *)q);
	ASSERT_EQ(socket, hpm_heap_socket_of((void *)q));
	hpm_free((void *)q);
	hpm_free(p);
	/* Nothing allocated, but the secondary is still attached. */
	ASSERT_EQ(-EBUSY, hpm_malloc_heap_memory_remove("ext", mem, EXT_LEN));
	ASSERT_EQ((ssize_t)sizeof(q), write(go[1], &q, sizeof(q)));
	ASSERT_EQ((ssize_t)sizeof(q), read(res[0], &q, sizeof(q)));
	ASSERT_EQ(0, hpm_malloc_heap_memory_remove("ext", mem, EXT_LEN));
	ASSERT_EQ(0, hpm_malloc_heap_memory_remove("ext2", priv, EXT_LEN));
	ASSERT_EQ(0, hpm_malloc_heap_destroy("ext"));
	ASSERT_EQ(0, hpm_malloc_heap_destroy("ext2"));
	ASSERT_EQ(child, waitpid(child, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(0, WEXITSTATUS(status));
	ASSERT_EQ(0, hpm_malloc_validate());
	ASSERT_EQ(0, hpm_cleanup());
	munmap(mem, EXT_LEN);
	munmap(priv, EXT_LEN);
}

/*
 * What a secondary checks before it trusts the external heap table
 * (hpm_config_check_tables(); ext_secondary passes it for real): a chunk's
 * page table must lie in the region, its sizes must agree.
 */
TEST_F(ext, secondary_checks_table)
{
	struct hpm_ext_chunk *k = &hpm_cfg->ext.heap[0].chunks[0];
	struct hpm_memseg *ms;

	EXT_UP();
	ASSERT_EQ(0, hpm_malloc_heap_create("ext"));
	ASSERT_EQ(0, hpm_malloc_heap_memory_add("ext", self->mem, EXT_LEN, NULL, 0, EXT_PG));
	ASSERT_EQ(0, hpm_ext_check(hpm_cfg));
	ms = k->ms;
	k->ms = (struct hpm_memseg *)8;
	ASSERT_EQ(-EPROTO, hpm_ext_check(hpm_cfg));
	k->ms = ms;
	k->n_pages++;
	ASSERT_EQ(-EPROTO, hpm_ext_check(hpm_cfg));
	k->n_pages--;
	hpm_cfg->ext.mask |= 1u << HPM_MAX_EXT_HEAPS;
	ASSERT_EQ(-EPROTO, hpm_ext_check(hpm_cfg));
	hpm_cfg->ext.mask &= ~(1u << HPM_MAX_EXT_HEAPS);
	ASSERT_EQ(0, hpm_ext_check(hpm_cfg));
	ASSERT_EQ(0, hpm_malloc_heap_memory_remove("ext", self->mem, EXT_LEN));
	ASSERT_EQ(0, hpm_malloc_heap_destroy("ext"));
}

TEST_HARNESS_MAIN
