// SPDX-License-Identifier: MIT
/*
 * Rings: sizes and flags, bulk vs burst, counts, wrap-around, named rings
 * across processes, and concurrent producers/consumers (threads and a
 * secondary process) with every object counted and checksummed.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hpmem/init.h>
#include <hpmem/memzone.h>
#include <hpmem/ring.h>

#include "kselftest_harness.h"

FIXTURE(ring) {
	char name[HPM_NAME_SIZE];
	struct hpm_init_opts o;
};

FIXTURE_SETUP(ring)
{
	hpm_init_opts_default(&self->o);
	snprintf(self->name, sizeof(self->name), "t-ring-%d", (int)getpid());
	self->o.region = self->name;
	self->o.socket_mem[0] = 16;
	ASSERT_EQ(0, hpm_init(&self->o));
}

FIXTURE_TEARDOWN(ring)
{
	EXPECT_EQ(0, hpm_cleanup());
}

/* Caller memory: works without hpm_init() at all. */
TEST(init_on_malloc)
{
	struct hpm_ring *r;
	ssize_t sz;
	void *o[8] = { (void *)1, (void *)2, (void *)3, (void *)4 };
	void *out[8];
	unsigned int left;

	EXPECT_EQ(-EINVAL, hpm_ring_get_memsize(0));
	/* DPDK's sizes: 1 is a power of two (a ring of capacity 0) */
	EXPECT_GT(hpm_ring_get_memsize(1), 0);
	EXPECT_EQ(-EINVAL, hpm_ring_get_memsize(100));
	sz = hpm_ring_get_memsize(8);
	ASSERT_GT(sz, (ssize_t)sizeof(struct hpm_ring));
	r = aligned_alloc(HPM_CACHE_LINE_SIZE, sz);
	ASSERT_NE(NULL, r);
	EXPECT_EQ(-EINVAL, hpm_ring_init(r, "x", 100, 0));
	EXPECT_EQ(-EINVAL, hpm_ring_init(r, "x", 8, 0x100));
	EXPECT_EQ(-EINVAL, hpm_ring_init(r, "", 8, 0));
	ASSERT_EQ(0, hpm_ring_init(r, "malloc", 8, 0));
	EXPECT_EQ(8, hpm_ring_get_size(r));
	EXPECT_EQ(7, hpm_ring_get_capacity(r));
	EXPECT_TRUE(hpm_ring_empty(r));
	EXPECT_EQ(4, hpm_ring_enqueue_bulk(r, o, 4, &left));
	EXPECT_EQ(3, left);
	EXPECT_EQ(0, hpm_ring_enqueue_bulk(r, o, 4, &left));
	EXPECT_EQ(3, left);
	EXPECT_EQ(3, hpm_ring_enqueue_burst(r, o, 4, &left));
	EXPECT_EQ(0, left);
	EXPECT_TRUE(hpm_ring_full(r));
	EXPECT_EQ(-ENOBUFS, hpm_ring_enqueue(r, o[0]));
	EXPECT_EQ(7, hpm_ring_count(r));
	EXPECT_EQ(0, hpm_ring_free_count(r));
	EXPECT_EQ(0, hpm_ring_dequeue_bulk(r, out, 8, &left));
	EXPECT_EQ(7, left);
	EXPECT_EQ(5, hpm_ring_dequeue_bulk(r, out, 5, &left));
	EXPECT_EQ(2, left);
	EXPECT_EQ((void *)1, out[0]);
	EXPECT_EQ((void *)4, out[3]);
	EXPECT_EQ((void *)1, out[4]);
	EXPECT_EQ(2, hpm_ring_dequeue_burst(r, out, 8, &left));
	EXPECT_EQ(0, left);
	EXPECT_EQ(-ENOENT, hpm_ring_dequeue(r, out));
	hpm_ring_free(r);	/* not ours: logs, does nothing */
	free(r);
}

TEST(exact_size)
{
	struct hpm_ring *r;
	ssize_t sz;
	void *o[1000], *out[1000];
	unsigned int i;

	sz = hpm_ring_get_memsize_flags(1000, HPM_RING_F_EXACT_SZ);
	ASSERT_GT(sz, 0);
	r = aligned_alloc(HPM_CACHE_LINE_SIZE, sz);
	ASSERT_NE(NULL, r);
	ASSERT_EQ(0, hpm_ring_init(r, "exact", 1000, HPM_RING_F_EXACT_SZ));
	EXPECT_EQ(1000, hpm_ring_get_capacity(r));
	EXPECT_EQ(1024, hpm_ring_get_size(r));
	for (i = 0; i < 1000; i++)
		o[i] = (void *)(uintptr_t)(i + 1);
	EXPECT_EQ(1000, hpm_ring_sp_enqueue_bulk(r, o, 1000, NULL));
	EXPECT_TRUE(hpm_ring_full(r));
	EXPECT_EQ(1000, hpm_ring_sc_dequeue_bulk(r, out, 1000, NULL));
	EXPECT_EQ(0, memcmp(o, out, sizeof(o)));
	free(r);
}

/* Many small operations cross the end of the slot array many times. */
/*
 * An MP/MC ring used now and then through the SP/SC calls (one thread at a
 * time, as their contract says): both protocols keep one FIFO, and an
 * idle side has its head at its tail and its lock free.
 */
TEST(sp_and_mp_calls_mix)
{
	struct hpm_ring *r;
	void *o[5], *out[5];
	uintptr_t next_in = 1, next_out = 1;
	unsigned int i, k, got;

	r = aligned_alloc(HPM_CACHE_LINE_SIZE, hpm_ring_get_memsize(16));
	ASSERT_NE(NULL, r);
	ASSERT_EQ(0, hpm_ring_init(r, "mix", 16, 0));
	for (i = 0; i < 200; i++) {
		for (k = 0; k < 5; k++)
			o[k] = (void *)next_in++;
		got = i % 3 ? hpm_ring_mp_enqueue_bulk(r, o, 5, NULL) :
			      hpm_ring_sp_enqueue_bulk(r, o, 5, NULL);
		ASSERT_EQ(5, got);
		got = i % 2 ? hpm_ring_mc_dequeue_bulk(r, out, 5, NULL) :
			      hpm_ring_sc_dequeue_bulk(r, out, 5, NULL);
		ASSERT_EQ(5, got);
		for (k = 0; k < 5; k++)
			ASSERT_EQ((void *)next_out++, out[k]);
		ASSERT_EQ(atomic_load(&r->prod.head), atomic_load(&r->prod.tail));
		ASSERT_EQ(atomic_load(&r->cons.head), atomic_load(&r->cons.tail));
		ASSERT_EQ(0, hpm_robust_owner_pid(&r->prod.lock));
		ASSERT_EQ(0, hpm_robust_owner_pid(&r->cons.lock));
	}
	EXPECT_TRUE(hpm_ring_empty(r));
	free(r);
}

TEST(wraparound_fifo)
{
	struct hpm_ring *r;
	uintptr_t next_in = 1, next_out = 1;
	void *o[7], *out[7];
	unsigned int i, k, n;

	r = aligned_alloc(HPM_CACHE_LINE_SIZE, hpm_ring_get_memsize(16));
	ASSERT_NE(NULL, r);
	ASSERT_EQ(0, hpm_ring_init(r, "wrap", 16, 0));
	for (i = 0; i < 10000; i++) {
		n = 1 + i % 7;
		for (k = 0; k < n; k++)
			o[k] = (void *)(next_in + k);
		n = hpm_ring_mp_enqueue_burst(r, o, n, NULL);
		next_in += n;
		n = hpm_ring_mc_dequeue_burst(r, out, 1 + (i * 3) % 7, NULL);
		for (k = 0; k < n; k++)
			ASSERT_EQ((void *)next_out++, out[k]);
	}
	free(r);
}

static void dump_checks(struct __test_metadata *_metadata, struct hpm_ring *r)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	ASSERT_NE(NULL, f);
	hpm_ring_dump(f, r);
	fclose(f);
	EXPECT_NE(NULL, strstr(buf, "ring <r1>"));
	free(buf);
}

TEST_F(ring, create_lookup_free)
{
	struct hpm_ring *r, *l;
	char n28[29], n29[30];
	/* static: the harness's longjmp would clobber a local written by memcpy */
	static void *obj;

	r = hpm_ring_create("r1", 1024, HPM_SOCKET_ANY,
			    HPM_RING_F_SP_ENQ | HPM_RING_F_SC_DEQ);
	ASSERT_NE(NULL, r);
	EXPECT_NE(NULL, hpm_memzone_lookup("RG_r1"));
	l = hpm_ring_lookup("r1");
	EXPECT_EQ(r, l);
	EXPECT_EQ(1, r->prod.single);
	EXPECT_EQ(1, r->cons.single);
	EXPECT_EQ(0, hpm_ring_enqueue(r, (void *)0x1234));
	EXPECT_EQ(0, hpm_ring_dequeue(r, &obj));
	EXPECT_EQ((void *)0x1234, obj);

	EXPECT_EQ(NULL, hpm_ring_create("r1", 1024, HPM_SOCKET_ANY, 0));
	EXPECT_EQ(EEXIST, hpm_errno);
	EXPECT_EQ(NULL, hpm_ring_create("r2", 1000, HPM_SOCKET_ANY, 0));
	EXPECT_EQ(EINVAL, hpm_errno);
	EXPECT_EQ(NULL, hpm_ring_create("r2", 1024, HPM_SOCKET_ANY, 0x80));
	EXPECT_EQ(EINVAL, hpm_errno);
	EXPECT_EQ(NULL, hpm_ring_create("", 1024, HPM_SOCKET_ANY, 0));
	EXPECT_EQ(EINVAL, hpm_errno);
	EXPECT_EQ(NULL, hpm_ring_create("huge", 1u << 30, HPM_SOCKET_ANY, 0));
	EXPECT_EQ(ENOMEM, hpm_errno);
	/* "RG_" + 28 characters fills a memzone name exactly. */
	memset(n28, 'a', 28);
	n28[28] = '\0';
	memset(n29, 'b', 29);
	n29[29] = '\0';
	l = hpm_ring_create(n28, 64, HPM_SOCKET_ANY, 0);
	ASSERT_NE(NULL, l);
	EXPECT_EQ(l, hpm_ring_lookup(n28));
	EXPECT_EQ(NULL, hpm_ring_create(n29, 64, HPM_SOCKET_ANY, 0));
	EXPECT_EQ(ENAMETOOLONG, hpm_errno);

	dump_checks(_metadata, r);
	hpm_ring_free(r);
	EXPECT_EQ(NULL, hpm_ring_lookup("r1"));
	EXPECT_EQ(ENOENT, hpm_errno);
	EXPECT_EQ(NULL, hpm_memzone_lookup("RG_r1"));
	hpm_ring_free(l);
	hpm_ring_free(NULL);
}

/* ---- concurrency ---- */

#define ITEMS_PER_PRODUCER	200000u

struct tally {
	uint64_t count;
	uint64_t sum;
	uint64_t xor;
};

struct hammer {
	struct hpm_ring *r;
	unsigned int id;	/* producer id: values id << 32 | seq */
	bool burst;
	struct tally got;
	_Atomic uint64_t *consumed;
	uint64_t total;
};

static void *producer(void *arg)
{
	struct hammer *h = arg;
	uint64_t base = (uint64_t)h->id << 32, i = 0;
	void *o[32];
	unsigned int k, n, sent;

	while (i < ITEMS_PER_PRODUCER) {
		n = 1 + (unsigned int)(i % 32);
		if (n > ITEMS_PER_PRODUCER - i)
			n = (unsigned int)(ITEMS_PER_PRODUCER - i);
		for (k = 0; k < n; k++)
			o[k] = (void *)(uintptr_t)(base | (i + k + 1));
		sent = h->burst ? hpm_ring_enqueue_burst(h->r, o, n, NULL) :
			hpm_ring_enqueue_bulk(h->r, o, n, NULL);
		if (!sent)
			sched_yield();	/* 2 cores, many threads: let them run */
		i += sent;
	}
	return NULL;
}

static void *consumer(void *arg)
{
	struct hammer *h = arg;
	void *o[32];
	unsigned int k, n;
	uint64_t v;

	time_t deadline = time(NULL) + 20;	/* a lost producer must not hang us */

	while (atomic_load(h->consumed) < h->total && time(NULL) < deadline) {
		uint64_t left = h->total - atomic_load(h->consumed);
		unsigned int want = 1 + (unsigned int)(h->got.count % 8);

		/* A bulk larger than what is still coming would never succeed. */
		if (want > left)
			want = (unsigned int)left;
		n = h->burst ? hpm_ring_dequeue_burst(h->r, o, 32, NULL) :
			hpm_ring_dequeue_bulk(h->r, o, want, NULL);
		if (!n) {
			sched_yield();
			continue;
		}
		for (k = 0; k < n; k++) {
			v = (uintptr_t)o[k];
			h->got.count++;
			h->got.sum += v;
			h->got.xor ^= v * 0x9e3779b97f4a7c15ull;
		}
		atomic_fetch_add(h->consumed, n);
	}
	return NULL;
}

static struct tally expected(unsigned int producers)
{
	struct tally t = { 0, 0, 0 };
	uint64_t p, i, v;

	for (p = 0; p < producers; p++)
		for (i = 1; i <= ITEMS_PER_PRODUCER; i++) {
			v = p << 32 | i;
			t.count++;
			t.sum += v;
			t.xor ^= v * 0x9e3779b97f4a7c15ull;
		}
	return t;
}

static void run_threads(struct __test_metadata *_metadata, unsigned int flags,
			unsigned int np, unsigned int nc, bool burst)
{
	_Atomic uint64_t consumed = 0;
	struct hammer h[4];
	pthread_t t[4];
	struct tally sum = { 0, 0, 0 }, want = expected(np);
	struct hpm_ring *r;
	unsigned int i;

	r = hpm_ring_create("hammer", 256, HPM_SOCKET_ANY, flags);
	ASSERT_NE(NULL, r);
	for (i = 0; i < np + nc; i++) {
		memset(&h[i], 0, sizeof(h[i]));
		h[i].r = r;
		h[i].id = i;
		h[i].burst = burst;
		h[i].consumed = &consumed;
		h[i].total = (uint64_t)np * ITEMS_PER_PRODUCER;
		ASSERT_EQ(0, pthread_create(&t[i], NULL,
					    i < np ? producer : consumer,
					    &h[i]));
	}
	for (i = 0; i < np + nc; i++) {
		pthread_join(t[i], NULL);
		sum.count += h[i].got.count;
		sum.sum += h[i].got.sum;
		sum.xor ^= h[i].got.xor;
	}
	EXPECT_EQ(want.count, sum.count);
	EXPECT_EQ(want.sum, sum.sum);
	EXPECT_EQ(want.xor, sum.xor);
	EXPECT_TRUE(hpm_ring_empty(r));
	hpm_ring_free(r);
}

TEST_F(ring, spsc_threads)
{
	run_threads(_metadata, HPM_RING_F_SP_ENQ | HPM_RING_F_SC_DEQ, 1, 1, false);
}

TEST_F(ring, mpmc_threads_bulk)
{
	run_threads(_metadata, 0, 2, 2, false);
}

TEST_F(ring, mpmc_threads_burst)
{
	run_threads(_metadata, 0, 2, 2, true);
}

/*
 * A secondary process produces into a ring the primary created while a
 * primary thread produces too; the primary consumes everything.
 */
TEST_F(ring, secondary_process)
{
	_Atomic uint64_t consumed = 0;
	struct tally want = expected(2);
	struct hammer prod, cons;
	struct hpm_ring *r;
	pthread_t tp;
	int status;
	pid_t pid;

	r = hpm_ring_create("xproc", 512, HPM_SOCKET_ANY, 0);
	ASSERT_NE(NULL, r);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct hpm_init_opts c = self->o;
		struct hammer hp = { 0 };

		hpm_cleanup();
		c.proc_type = HPM_PROC_SECONDARY;
		if (hpm_init(&c))
			_exit(10);
		hp.r = hpm_ring_lookup("xproc");
		if (hp.r != r)
			_exit(11);
		hp.id = 1;
		producer(&hp);
		hpm_cleanup();
		_exit(0);
	}
	memset(&prod, 0, sizeof(prod));
	memset(&cons, 0, sizeof(cons));
	prod.r = cons.r = r;
	prod.id = 0;
	cons.consumed = &consumed;
	cons.total = 2ull * ITEMS_PER_PRODUCER;
	ASSERT_EQ(0, pthread_create(&tp, NULL, producer, &prod));
	consumer(&cons);
	pthread_join(tp, NULL);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
	EXPECT_EQ(want.count, cons.got.count);
	EXPECT_EQ(want.sum, cons.got.sum);
	EXPECT_EQ(want.xor, cons.got.xor);
	hpm_ring_free(r);
}

TEST_HARNESS_MAIN
