// SPDX-License-Identifier: MIT
/*
 * Rings as DPDK 22.11's test_ring.c exercises them: element sizes (pointers,
 * 4, 8, 16, 20 bytes) x sync modes (MP/MC, SP/SC, RTS, HTS) x bulk/burst,
 * sizes and RING_F_EXACT_SZ, the bad-argument refusals, the peek and
 * zero-copy two-stage calls, misaligned object tables (run under UBSan by
 * the san build), and an HTS peek holder killed between start and finish.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <hpmem/init.h>
#include <hpmem/memzone.h>
#include <hpmem/ring.h>

#include "kselftest_harness.h"

#define RING_SIZE	4096u
#define ALIGN_CL(x)	(((x) + HPM_CACHE_LINE_SIZE - 1) & \
			 ~(size_t)(HPM_CACHE_LINE_SIZE - 1))
#define MAX_BULK	32u
/* -1: the pointer calls; else the _elem calls with that size */
static const int esizes[] = { -1, 4, 8, 16, 20 };

enum api { API_DEF, API_SPSC, API_MPMC, API_RTS, API_HTS };

/* A ring mode: its flags, and the explicit calls that go with it. */
static const struct mode {
	const char *name;
	unsigned int flags;
	enum api api;
	enum hpm_ring_sync_type sync;
} modes[] = {
	{ "mpmc", 0, API_MPMC, HPM_RING_SYNC_MT },
	{ "spsc", HPM_RING_F_SP_ENQ | HPM_RING_F_SC_DEQ, API_SPSC,
	  HPM_RING_SYNC_ST },
	{ "rts", HPM_RING_F_MP_RTS_ENQ | HPM_RING_F_MC_RTS_DEQ, API_RTS,
	  HPM_RING_SYNC_MT_RTS },
	{ "hts", HPM_RING_F_MP_HTS_ENQ | HPM_RING_F_MC_HTS_DEQ, API_HTS,
	  HPM_RING_SYNC_MT_HTS },
};

static unsigned int esz(int esize)
{
	return esize < 0 ? sizeof(void *) : (unsigned int)esize;
}

static unsigned int enq(struct hpm_ring *r, int esize, const void *o,
			unsigned int n, bool bulk, enum api api,
			unsigned int *fs)
{
	void *const *p = o;
	unsigned int e = (unsigned int)esize;

#define PICK(call) (esize < 0 ? hpm_ring_##call(r, p, n, fs) :		\
			       hpm_ring_##call##_elem(r, o, e, n, fs))
	switch (api) {
	case API_DEF:
		return bulk ? PICK(enqueue_bulk) : PICK(enqueue_burst);
	case API_SPSC:
		return bulk ? PICK(sp_enqueue_bulk) : PICK(sp_enqueue_burst);
	case API_MPMC:
		return bulk ? PICK(mp_enqueue_bulk) : PICK(mp_enqueue_burst);
	case API_RTS:
		return bulk ? PICK(mp_rts_enqueue_bulk) :
			      PICK(mp_rts_enqueue_burst);
	case API_HTS:
		return bulk ? PICK(mp_hts_enqueue_bulk) :
			      PICK(mp_hts_enqueue_burst);
	}
#undef PICK
	return 0;
}

static unsigned int deq(struct hpm_ring *r, int esize, void *o,
			unsigned int n, bool bulk, enum api api,
			unsigned int *av)
{
	void **p = o;
	unsigned int e = (unsigned int)esize;

#define PICK(call) (esize < 0 ? hpm_ring_##call(r, p, n, av) :		\
			       hpm_ring_##call##_elem(r, o, e, n, av))
	switch (api) {
	case API_DEF:
		return bulk ? PICK(dequeue_bulk) : PICK(dequeue_burst);
	case API_SPSC:
		return bulk ? PICK(sc_dequeue_bulk) : PICK(sc_dequeue_burst);
	case API_MPMC:
		return bulk ? PICK(mc_dequeue_bulk) : PICK(mc_dequeue_burst);
	case API_RTS:
		return bulk ? PICK(mc_rts_dequeue_bulk) :
			      PICK(mc_rts_dequeue_burst);
	case API_HTS:
		return bulk ? PICK(mc_hts_dequeue_bulk) :
			      PICK(mc_hts_dequeue_burst);
	}
#undef PICK
	return 0;
}

/* n elements of size e with contents unique to (seed, index). */
static void *pattern(unsigned int e, unsigned int n, unsigned int seed)
{
	unsigned char *b = malloc((size_t)e * n + 1);
	size_t i;

	for (i = 0; b && i < (size_t)e * n; i++)
		b[i] = (unsigned char)(i * 7 + seed + i / e);
	return b;
}

FIXTURE(rd) {
	char name[HPM_NAME_SIZE];
	struct hpm_init_opts o;
};

FIXTURE_SETUP(rd)
{
	hpm_init_opts_default(&self->o);
	snprintf(self->name, sizeof(self->name), "t-rdpdk-%d", (int)getpid());
	self->o.region = self->name;
	self->o.socket_mem[0] = 16;
	ASSERT_EQ(0, hpm_init(&self->o));
}

FIXTURE_TEARDOWN(rd)
{
	EXPECT_EQ(0, hpm_cleanup());
}

static struct hpm_ring *mk(int esize, unsigned int count, unsigned int flags)
{
	return esize < 0 ? hpm_ring_create("rd", count, HPM_SOCKET_ANY, flags) :
			   hpm_ring_create_elem("rd", (unsigned int)esize,
						count, HPM_SOCKET_ANY, flags);
}

/*
 * test_ring_burst_bulk_tests1..4: 1, 2 and MAX_BULK at a time, then fill,
 * check full/empty and counts, empty it, compare every byte; for every
 * element size, mode, bulk/burst, with the mode's calls and the default.
 */
TEST_F(rd, burst_bulk_all_modes)
{
	unsigned int m, k, b, d, i, fs, av;

	for (m = 0; m < ARRAY_SIZE(modes); m++)
	for (k = 0; k < ARRAY_SIZE(esizes); k++)
	for (b = 0; b < 2; b++)
	for (d = 0; d < 2; d++) {
		int es = esizes[k];
		unsigned int e = esz(es);
		bool bulk = b;
		enum api api = d ? modes[m].api : API_DEF;
		unsigned char *src = pattern(e, RING_SIZE, m * 16 + k);
		unsigned char *dst = calloc(RING_SIZE, e);
		unsigned char *s = src, *t = dst;
		struct hpm_ring *r = mk(es, RING_SIZE, modes[m].flags);

		ASSERT_NE(NULL, r) TH_LOG("%s esize %d", modes[m].name, es);
		ASSERT_NE(NULL, src);
		ASSERT_NE(NULL, dst);
		EXPECT_EQ(modes[m].sync, hpm_ring_get_prod_sync_type(r));
		EXPECT_EQ(modes[m].sync, hpm_ring_get_cons_sync_type(r));
		EXPECT_EQ(e, hpm_ring_get_esize(r));

		EXPECT_EQ(1, enq(r, es, s, 1, bulk, api, &fs));
		EXPECT_EQ(RING_SIZE - 2, fs);
		s += e;
		EXPECT_EQ(2, enq(r, es, s, 2, bulk, api, NULL));
		s += 2 * e;
		EXPECT_EQ(MAX_BULK, enq(r, es, s, MAX_BULK, bulk, api, NULL));
		s += MAX_BULK * e;
		EXPECT_EQ(1, deq(r, es, t, 1, bulk, api, &av));
		EXPECT_EQ(2 + MAX_BULK, av);
		t += e;
		EXPECT_EQ(2, deq(r, es, t, 2, bulk, api, NULL));
		t += 2 * e;
		EXPECT_EQ(MAX_BULK, deq(r, es, t, MAX_BULK, bulk, api, NULL));
		t += MAX_BULK * e;
		EXPECT_TRUE(hpm_ring_empty(r));
		EXPECT_EQ(0, memcmp(src, dst, (size_t)(3 + MAX_BULK) * e))
			TH_LOG("%s esize %d bulk %d api %d", modes[m].name, es,
			       bulk, api);

		/* Fill: the last MAX_BULK do not fit for bulk, part for burst. */
		s = src;
		t = dst;
		for (i = 0; i + MAX_BULK <= RING_SIZE - 1; i += MAX_BULK)
			EXPECT_EQ(MAX_BULK, enq(r, es, s + (size_t)i * e,
						 MAX_BULK, bulk, api, NULL));
		EXPECT_EQ(bulk ? 0 : RING_SIZE - 1 - i,
			  enq(r, es, s + (size_t)i * e, MAX_BULK, bulk, api,
			      &fs));
		if (bulk)
			EXPECT_EQ(RING_SIZE - 1 - i,
				  enq(r, es, s + (size_t)i * e, RING_SIZE - 1 - i,
				      bulk, api, &fs));
		EXPECT_EQ(0, fs);
		EXPECT_TRUE(hpm_ring_full(r));
		EXPECT_EQ(RING_SIZE - 1, hpm_ring_count(r));
		EXPECT_EQ(0, hpm_ring_free_count(r));
		for (i = 0; i + MAX_BULK <= RING_SIZE - 1; i += MAX_BULK)
			EXPECT_EQ(MAX_BULK, deq(r, es, t + (size_t)i * e,
						 MAX_BULK, bulk, api, NULL));
		EXPECT_EQ(bulk ? 0 : RING_SIZE - 1 - i,
			  deq(r, es, t + (size_t)i * e, MAX_BULK, bulk, api,
			      &av));
		if (bulk)
			EXPECT_EQ(RING_SIZE - 1 - i,
				  deq(r, es, t + (size_t)i * e, RING_SIZE - 1 - i,
				      bulk, api, &av));
		EXPECT_EQ(0, av);
		EXPECT_TRUE(hpm_ring_empty(r));
		EXPECT_EQ(0, memcmp(src, dst, (size_t)(RING_SIZE - 1) * e))
			TH_LOG("fill %s esize %d bulk %d api %d",
			       modes[m].name, es, bulk, api);
		/* Single-object calls. */
		if (es < 0) {
			void *one = (void *)0x1234, *back = NULL;

			EXPECT_EQ(0, hpm_ring_enqueue(r, one));
			EXPECT_EQ(0, hpm_ring_dequeue(r, &back));
			EXPECT_EQ(one, back);
			EXPECT_EQ(-ENOENT, hpm_ring_dequeue(r, &back));
		} else {
			EXPECT_EQ(0, hpm_ring_enqueue_elem(r, src, e));
			EXPECT_EQ(0, hpm_ring_dequeue_elem(r, dst, e));
			EXPECT_EQ(0, memcmp(src, dst, e));
			EXPECT_EQ(-ENOENT, hpm_ring_dequeue_elem(r, dst, e));
		}
		hpm_ring_free(r);
		free(src);
		free(dst);
	}
}

/* test_ring_negative_tests and test_ring_creation_with_wrong_size */
TEST_F(rd, bad_arguments)
{
	struct hpm_ring *r;

	EXPECT_EQ(-EINVAL, hpm_ring_get_memsize_elem(17, RING_SIZE));
	EXPECT_EQ(-EINVAL, hpm_ring_get_memsize_elem(0, RING_SIZE));
	EXPECT_EQ(-EINVAL, hpm_ring_get_memsize_elem(8, RING_SIZE + 1));
	EXPECT_EQ(-EINVAL, hpm_ring_get_memsize_elem(8, 0x80000000u));
	EXPECT_EQ(NULL, hpm_ring_create_elem("rd", 17, RING_SIZE,
					     HPM_SOCKET_ANY, 0));
	EXPECT_EQ(EINVAL, hpm_errno);
	EXPECT_EQ(NULL, hpm_ring_create_elem("rd", 8, RING_SIZE + 1,
					     HPM_SOCKET_ANY, 0));
	EXPECT_EQ(EINVAL, hpm_errno);
	/* RTE_RING_SZ_MASK + 1 */
	EXPECT_EQ(NULL, hpm_ring_create("rd", 0x80000000u, HPM_SOCKET_ANY, 0));
	EXPECT_EQ(EINVAL, hpm_errno);
	EXPECT_EQ(NULL, hpm_ring_create("rd", HPM_RING_SZ_MAX,
					HPM_SOCKET_ANY, HPM_RING_F_EXACT_SZ));
	EXPECT_EQ(EINVAL, hpm_errno);
	/* One mode per side (DPDK's get_sync_type() says -EINVAL). */
	EXPECT_EQ(NULL, hpm_ring_create("rd", 64, HPM_SOCKET_ANY,
					HPM_RING_F_SP_ENQ |
					HPM_RING_F_MP_RTS_ENQ));
	EXPECT_EQ(EINVAL, hpm_errno);
	EXPECT_EQ(NULL, hpm_ring_create("rd", 64, HPM_SOCKET_ANY,
					HPM_RING_F_MC_RTS_DEQ |
					HPM_RING_F_MC_HTS_DEQ));
	EXPECT_EQ(EINVAL, hpm_errno);
	EXPECT_EQ(NULL, hpm_ring_create("rd", 64, HPM_SOCKET_ANY, 0x80));
	EXPECT_EQ(EINVAL, hpm_errno);
	/* Mixed modes across sides are fine. */
	r = hpm_ring_create("rd", 64, HPM_SOCKET_ANY,
			    HPM_RING_F_SP_ENQ | HPM_RING_F_MC_HTS_DEQ);
	ASSERT_NE(NULL, r);
	EXPECT_TRUE(hpm_ring_is_prod_single(r));
	EXPECT_FALSE(hpm_ring_is_cons_single(r));
	EXPECT_EQ(HPM_RING_SYNC_MT_HTS, hpm_ring_get_cons_sync_type(r));
	/* htd_max: RTS sides only. */
	EXPECT_EQ(UINT32_MAX, hpm_ring_get_prod_htd_max(r));
	EXPECT_EQ(-ENOTSUP, hpm_ring_set_prod_htd_max(r, 4));
	EXPECT_EQ(-ENOTSUP, hpm_ring_set_cons_htd_max(r, 4));
	hpm_ring_free(r);
	r = hpm_ring_create("rd", 64, HPM_SOCKET_ANY,
			    HPM_RING_F_MP_RTS_ENQ | HPM_RING_F_MC_RTS_DEQ);
	ASSERT_NE(NULL, r);
	EXPECT_EQ(63 / 8, hpm_ring_get_prod_htd_max(r));
	EXPECT_EQ(0, hpm_ring_set_prod_htd_max(r, 4));
	EXPECT_EQ(4, hpm_ring_get_prod_htd_max(r));
	EXPECT_EQ(0, hpm_ring_set_cons_htd_max(r, 5));
	EXPECT_EQ(5, hpm_ring_get_cons_htd_max(r));
	hpm_ring_free(r);
}

/* test_ring_with_exact_size, and DPDK's memsize formula */
TEST_F(rd, exact_size_and_memsize)
{
	struct hpm_ring *std, *exact;
	unsigned int k, i, e;
	void *o[32] = { 0 };

	for (k = 1; k < ARRAY_SIZE(esizes); k++) {
		e = (unsigned int)esizes[k];
		EXPECT_EQ((ssize_t)ALIGN_CL(sizeof(struct hpm_ring) +
					 (size_t)RING_SIZE * e),
			  hpm_ring_get_memsize_elem(e, RING_SIZE));
	}
	EXPECT_EQ(hpm_ring_get_memsize_elem(sizeof(void *), 16),
		  hpm_ring_get_memsize(16));
	std = hpm_ring_create_elem("std", 16, 16, HPM_SOCKET_ANY,
				   HPM_RING_F_SP_ENQ | HPM_RING_F_SC_DEQ);
	ASSERT_NE(NULL, std);
	exact = hpm_ring_create_elem("exact", 16, 16, HPM_SOCKET_ANY,
				     HPM_RING_F_SP_ENQ | HPM_RING_F_SC_DEQ |
				     HPM_RING_F_EXACT_SZ);
	ASSERT_NE(NULL, exact);
	EXPECT_EQ(16, hpm_ring_get_size(std));
	EXPECT_EQ(15, hpm_ring_get_capacity(std));
	EXPECT_EQ(32, hpm_ring_get_size(exact));
	EXPECT_EQ(16, hpm_ring_get_capacity(exact));
	for (i = 0; i < 16; i++) {
		EXPECT_EQ(i < 15 ? 0 : -ENOBUFS,
			  hpm_ring_enqueue_elem(std, o, 16));
		EXPECT_EQ(0, hpm_ring_enqueue_elem(exact, o, 16));
	}
	EXPECT_EQ(-ENOBUFS, hpm_ring_enqueue_elem(exact, o, 16));
	EXPECT_EQ(16, hpm_ring_count(exact));
	EXPECT_EQ(15, hpm_ring_count(std));
	EXPECT_TRUE(hpm_ring_full(exact));
	hpm_ring_free(std);
	hpm_ring_free(exact);
	/* Degenerate sizes DPDK accepts: capacity 0. */
	std = hpm_ring_create("one", 1, HPM_SOCKET_ANY, 0);
	ASSERT_NE(NULL, std);
	EXPECT_EQ(0, hpm_ring_get_capacity(std));
	EXPECT_EQ(-ENOBUFS, hpm_ring_enqueue(std, o[0]));
	hpm_ring_free(std);
	exact = hpm_ring_create("zero", 0, HPM_SOCKET_ANY, HPM_RING_F_EXACT_SZ);
	ASSERT_NE(NULL, exact);
	EXPECT_EQ(1, hpm_ring_get_size(exact));
	EXPECT_EQ(0, hpm_ring_get_capacity(exact));
	EXPECT_TRUE(hpm_ring_full(exact));
	hpm_ring_free(exact);
}

/*
 * test_ring_peek: start/finish on SP/SC and HTS rings, with a finish
 * shorter than the start; other modes refuse (0, finish a no-op).
 */
TEST_F(rd, peek)
{
	unsigned int m, k, n, fs, av;

	for (m = 0; m < ARRAY_SIZE(modes); m++)
	for (k = 0; k < ARRAY_SIZE(esizes); k++) {
		int es = esizes[k];
		unsigned int e = esz(es);
		bool ok = modes[m].sync == HPM_RING_SYNC_ST ||
			  modes[m].sync == HPM_RING_SYNC_MT_HTS;
		unsigned char *src = pattern(e, MAX_BULK, k);
		unsigned char *dst = calloc(MAX_BULK, e);
		unsigned char *junk = calloc(50, e);
		struct hpm_ring *r = mk(es, 64, modes[m].flags);

		ASSERT_NE(NULL, r);
		/* Start on the wrapping part of the ring. */
		EXPECT_EQ(50, enq(r, es, junk, 50, true, API_DEF, NULL));
		EXPECT_EQ(50, deq(r, es, junk, 50, true, API_DEF, NULL));
		n = es < 0 ? hpm_ring_enqueue_bulk_start(r, MAX_BULK, &fs) :
			     hpm_ring_enqueue_bulk_elem_start(r, MAX_BULK, &fs);
		if (!ok) {
			EXPECT_EQ(0, n);
			EXPECT_EQ(0, hpm_ring_dequeue_burst_start(r, (void **)dst,
								  1, &av));
			hpm_ring_enqueue_finish(r, (void *const *)src, 1);
			hpm_ring_dequeue_finish(r, 1);
			EXPECT_TRUE(hpm_ring_empty(r));
			goto next;
		}
		EXPECT_EQ(MAX_BULK, n);
		EXPECT_EQ(63 - MAX_BULK, fs);
		if (modes[m].sync == HPM_RING_SYNC_MT_HTS)
			EXPECT_EQ(getpid(), hpm_robust_owner_pid(&r->prod.lock));
		/* Reserved is not published. */
		EXPECT_EQ(0, hpm_ring_count(r));
		/* Publish only 20 of the 32. */
		if (es < 0)
			hpm_ring_enqueue_finish(r, (void *const *)src, 20);
		else
			hpm_ring_enqueue_elem_finish(r, src, e, 20);
		EXPECT_EQ(0, hpm_robust_owner_pid(&r->prod.lock));
		EXPECT_EQ(20, hpm_ring_count(r));
		/* A finish with nothing started changes nothing. */
		hpm_ring_enqueue_elem_finish(r, src, e, 5);
		EXPECT_EQ(20, hpm_ring_count(r));
		/* Bulk start for more than there is: 0. */
		EXPECT_EQ(0, hpm_ring_dequeue_bulk_elem_start(r, dst, e, 21, &av));
		EXPECT_EQ(20, av);
		EXPECT_EQ(0, hpm_robust_owner_pid(&r->cons.lock));
		n = es < 0 ? hpm_ring_dequeue_burst_start(r, (void **)dst, 25, &av) :
			     hpm_ring_dequeue_burst_elem_start(r, dst, e, 25, &av);
		EXPECT_EQ(20, n);
		EXPECT_EQ(0, av);
		EXPECT_EQ(0, memcmp(src, dst, (size_t)20 * e));
		/* Consume 8; the other 12 stay, in order. */
		hpm_ring_dequeue_finish(r, 8);
		EXPECT_EQ(12, hpm_ring_count(r));
		memset(dst, 0, (size_t)MAX_BULK * e);
		EXPECT_EQ(12, deq(r, es, dst, 12, true, API_DEF, NULL));
		EXPECT_EQ(0, memcmp(src + (size_t)8 * e, dst, (size_t)12 * e));
		EXPECT_TRUE(hpm_ring_empty(r));
next:
		hpm_ring_free(r);
		free(src);
		free(dst);
		free(junk);
	}
}

/* test_ring_zc: the reservation in place, in two pieces across the end. */
TEST_F(rd, zero_copy)
{
	unsigned int m, k, n, fs, av, i;

	for (m = 0; m < ARRAY_SIZE(modes); m++)
	for (k = 0; k < ARRAY_SIZE(esizes); k++) {
		int es = esizes[k];
		unsigned int e = esz(es);
		bool ok = modes[m].sync == HPM_RING_SYNC_ST ||
			  modes[m].sync == HPM_RING_SYNC_MT_HTS;
		unsigned char *src = pattern(e, MAX_BULK, k + 3);
		unsigned char *dst = calloc(MAX_BULK, e);
		unsigned char *junk = calloc(60, e);
		struct hpm_ring_zc_data z = { 0 };
		struct hpm_ring *r = mk(es, 64, modes[m].flags);

		ASSERT_NE(NULL, r);
		EXPECT_EQ(60, enq(r, es, junk, 60, true, API_DEF, NULL));
		EXPECT_EQ(60, deq(r, es, junk, 60, true, API_DEF, NULL));
		n = es < 0 ? hpm_ring_enqueue_zc_burst_start(r, 10, &z, &fs) :
			     hpm_ring_enqueue_zc_burst_elem_start(r, e, 10, &z, &fs);
		if (!ok) {
			EXPECT_EQ(0, n);
			EXPECT_EQ(NULL, z.ptr1);
			EXPECT_EQ(0, hpm_ring_dequeue_zc_bulk_start(r, 1, &z, &av));
			hpm_ring_enqueue_zc_finish(r, 1);
			EXPECT_TRUE(hpm_ring_empty(r));
			goto next;
		}
		EXPECT_EQ(10, n);
		EXPECT_EQ(53, fs);
		/* slots 60..63, then 0..5 */
		EXPECT_EQ(4, z.n1);
		EXPECT_EQ((void *)(r->slots + 60 * e), z.ptr1);
		EXPECT_EQ((void *)r->slots, z.ptr2);
		memcpy(z.ptr1, src, (size_t)z.n1 * e);
		memcpy(z.ptr2, src + (size_t)z.n1 * e, (size_t)(n - z.n1) * e);
		hpm_ring_enqueue_zc_elem_finish(r, n);
		EXPECT_EQ(10, hpm_ring_count(r));
		/* Dequeue zc: bulk too many is 0, burst takes what there is. */
		EXPECT_EQ(0, hpm_ring_dequeue_zc_bulk_elem_start(r, e, 11, &z, &av));
		n = es < 0 ? hpm_ring_dequeue_zc_burst_start(r, 11, &z, &av) :
			     hpm_ring_dequeue_zc_burst_elem_start(r, e, 11, &z, &av);
		EXPECT_EQ(10, n);
		EXPECT_EQ(0, av);
		EXPECT_EQ(4, z.n1);
		memcpy(dst, z.ptr1, (size_t)z.n1 * e);
		memcpy(dst + (size_t)z.n1 * e, z.ptr2, (size_t)(n - z.n1) * e);
		EXPECT_EQ(0, memcmp(src, dst, (size_t)10 * e));
		hpm_ring_dequeue_zc_finish(r, 10);
		EXPECT_TRUE(hpm_ring_empty(r));
		/* No wrap: ptr2 NULL. */
		EXPECT_EQ(3, hpm_ring_enqueue_zc_bulk_elem_start(r, e, 3, &z, NULL));
		EXPECT_EQ(3, z.n1);
		EXPECT_EQ(NULL, z.ptr2);
		for (i = 0; i < 3; i++)
			memcpy((unsigned char *)z.ptr1 + (size_t)i * e,
			       src + (size_t)i * e, e);
		hpm_ring_enqueue_zc_finish(r, 2);	/* one given back */
		EXPECT_EQ(2, hpm_ring_count(r));
		EXPECT_EQ(2, deq(r, es, dst, 2, true, API_DEF, NULL));
		EXPECT_EQ(0, memcmp(src, dst, (size_t)2 * e));
next:
		hpm_ring_free(r);
		free(src);
		free(dst);
		free(junk);
	}
}

/*
 * Object tables at odd addresses: the copy must not store through a
 * misaligned void ** (the san build aborts on UBSan's report). n comes
 * from a volatile so the run-time-length copy loop is the one exercised.
 */
TEST_F(rd, misaligned_tables)
{
	static volatile unsigned int nv = 13;
	unsigned int n = nv, k, m, i;

	for (m = 0; m < ARRAY_SIZE(modes); m++)
	for (k = 0; k < ARRAY_SIZE(esizes); k++) {
		int es = esizes[k];
		unsigned int e = esz(es);
		unsigned char *in = pattern(e, 2 * n, k), *out = calloc(2 * n + 1, e);
		unsigned char *ibuf = malloc((size_t)2 * n * e + 8);
		unsigned char *obuf = calloc(1, (size_t)2 * n * e + 8);
		struct hpm_ring *r = mk(es, 16, modes[m].flags);

		ASSERT_NE(NULL, r);
		for (i = 0; i < 2; i++) {
			/* odd address, and wrapping the 16-slot ring once */
			memcpy(ibuf + 1, in + (size_t)i * n * e, (size_t)n * e);
			EXPECT_EQ(n, enq(r, es, ibuf + 1, n, i, API_DEF, NULL));
			EXPECT_EQ(n, deq(r, es, obuf + 3, n, i, API_DEF, NULL));
			memcpy(out + (size_t)i * n * e, obuf + 3, (size_t)n * e);
		}
		EXPECT_EQ(0, memcmp(in, out, (size_t)2 * n * e))
			TH_LOG("%s esize %d", modes[m].name, es);
		hpm_ring_free(r);
		free(in);
		free(out);
		free(ibuf);
		free(obuf);
	}
}

/*
 * An HTS peek holds the side until its finish: a process killed in
 * between published nothing, and the next producer takes the side over.
 */
TEST_F(rd, hts_peek_holder_killed)
{
	struct hpm_ring *r;
	void *o[4] = { (void *)1, (void *)2, (void *)3, (void *)4 }, *out[4];
	int st;
	pid_t pid;

	r = hpm_ring_create("rd", 64, HPM_SOCKET_ANY,
			    HPM_RING_F_MP_HTS_ENQ | HPM_RING_F_MC_HTS_DEQ);
	ASSERT_NE(NULL, r);
	EXPECT_EQ(1, hpm_ring_enqueue_bulk(r, o, 1, NULL));
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		if (hpm_ring_enqueue_bulk_start(r, 3, NULL) != 3 ||
		    hpm_ring_dequeue_bulk_start(r, out, 1, NULL) != 1)
			_exit(1);
		raise(SIGKILL);
		_exit(2);
	}
	ASSERT_EQ(pid, waitpid(pid, &st, 0));
	ASSERT_TRUE(WIFSIGNALED(st)) TH_LOG("child status %#x", st);
	EXPECT_NE(0, hpm_robust_owner_pid(&r->prod.lock));
	EXPECT_NE(0, hpm_robust_owner_pid(&r->cons.lock));
	EXPECT_EQ(1, hpm_ring_count(r));
	/* Both sides are taken over; the object is still there, once. */
	EXPECT_EQ(2, hpm_ring_enqueue_bulk(r, o + 1, 2, NULL));
	EXPECT_EQ(3, hpm_ring_dequeue_burst(r, out, 4, NULL));
	EXPECT_EQ((void *)1, out[0]);
	EXPECT_EQ((void *)3, out[2]);
	hpm_ring_free(r);
}

/* Two threads through an RTS and an HTS ring of 20-byte elements. */
struct mt_arg {
	struct hpm_ring *r;
	unsigned int total;
	uint64_t sum;
	_Atomic unsigned int *left;	/* consumers: objects not yet taken */
};

static void *mt_prod(void *p)
{
	struct mt_arg *a = p;
	uint32_t el[5 * 8];
	unsigned int i = 0, j, n;

	while (i < a->total) {
		n = a->total - i < 8 ? a->total - i : 8;
		for (j = 0; j < n; j++) {
			memset(&el[j * 5], 0, 20);
			el[j * 5] = i + j + 1;
			el[j * 5 + 4] = ~(i + j + 1);
		}
		i += hpm_ring_enqueue_burst_elem(a->r, el, 20, n, NULL);
	}
	return NULL;
}

static void *mt_cons(void *p)
{
	struct mt_arg *a = p;
	uint32_t el[5 * 8];
	unsigned int j, n;

	while (atomic_load(a->left)) {
		n = hpm_ring_dequeue_burst_elem(a->r, el, 20, 8, NULL);
		for (j = 0; j < n; j++) {
			if (el[j * 5 + 4] != ~el[j * 5])
				return (void *)1;
			a->sum += el[j * 5];
		}
		atomic_fetch_sub(a->left, n);
	}
	return NULL;
}

TEST_F(rd, rts_hts_threads)
{
	static const unsigned int fl[] = {
		HPM_RING_F_MP_RTS_ENQ | HPM_RING_F_MC_RTS_DEQ,
		HPM_RING_F_MP_HTS_ENQ | HPM_RING_F_MC_HTS_DEQ,
	};
	unsigned int f, t;

	for (f = 0; f < 2; f++) {
		struct mt_arg pa[2], ca[2];
		pthread_t pt[2], ct[2];
		void *rv;
		uint64_t sum = 0;
		_Atomic unsigned int left = 2 * 20000;
		struct hpm_ring *r = hpm_ring_create_elem("rd", 20, 256,
							  HPM_SOCKET_ANY, fl[f]);

		ASSERT_NE(NULL, r);
		for (t = 0; t < 2; t++) {
			pa[t] = (struct mt_arg){ r, 20000, 0, NULL };
			ca[t] = (struct mt_arg){ r, 0, 0, &left };
			ASSERT_EQ(0, pthread_create(&pt[t], NULL, mt_prod, &pa[t]));
			ASSERT_EQ(0, pthread_create(&ct[t], NULL, mt_cons, &ca[t]));
		}
		for (t = 0; t < 2; t++) {
			pthread_join(pt[t], NULL);
			pthread_join(ct[t], &rv);
			EXPECT_EQ(NULL, rv);
			sum += ca[t].sum;
		}
		/* each producer sent 1..20000 */
		EXPECT_EQ(2ull * 20000 * 20001 / 2, sum);
		EXPECT_TRUE(hpm_ring_empty(r));
		hpm_ring_free(r);
	}
}

TEST_HARNESS_MAIN
