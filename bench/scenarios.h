/* SPDX-License-Identifier: MIT */
/*
 * The scenarios of make bench, written once for both sides. hpm_bench.c and
 * dpdk_bench.c each include this file after defining a small API shim, so
 * that each binary still calls its own library directly (macros, no
 * function pointers in the measured loops) and the loops cannot drift apart.
 *
 * Each side defines, before including this file:
 *   SIDE_PROG                          program name for error messages
 *   SIDE_MEMPOOL, SIDE_RING, SIDE_MBUF, SIDE_MEMZONE   type names
 *   SIDE_MZ_NAMESIZE                   memzone name buffer size
 *   SIDE_MP_CREATE(name, n, elt, cache), SIDE_MP_FREE(mp)
 *   SIDE_MP_GET(mp, obj_p), SIDE_MP_PUT(mp, obj)          0 / <0
 *   SIDE_MP_GET_BULK(mp, objs, n), SIDE_MP_PUT_BULK(mp, objs, n)
 *   SIDE_MP_WORKER_DONE(mp)            worker thread done with the pool
 *   SIDE_RING_CREATE(name, spsc), SIDE_RING_FREE(r)
 *   SIDE_RING_SP_ENQ(r, objs, n), SIDE_RING_SC_DEQ(...),
 *   SIDE_RING_MP_ENQ(...), SIDE_RING_MC_DEQ(...)        objects moved
 *   SIDE_MBUF_POOL_CREATE(name, n, cache)  (default buffer size)
 *   SIDE_MBUF_ALLOC(mp), SIDE_MBUF_FREE(m)
 *   SIDE_MBUF_ALLOC_BULK(mp, ms, n) (0 / <0), SIDE_MBUF_FREE_BULK(ms, n)
 *   SIDE_MZ_RESERVE(name, len), SIDE_MZ_LOOKUP(name), SIDE_MZ_FREE(mz)
 *   SIDE_CLEANUP()                     library cleanup
 * and, anywhere in the file, the functions declared below.
 */
#ifndef HPM_BENCH_SCENARIOS_H
#define HPM_BENCH_SCENARIOS_H

#include "bench.h"

/* The library's message for its last error. */
static const char *side_strerror(void);
/* Library init (memory: BENCH_MEM_MB on node 0); @tag names the run. */
static int side_init(const char *tag);
/* Run @fn on the worker CPU (CPU 1), one at a time; 0 or -errno. */
static int side_launch(int (*fn)(void *), void *arg);
/* Wait for the worker; @fn's return value. */
static int side_join(void);
/* Report the malloc row @id (the side's allocator, and any it compares). */
static void side_malloc_row(const char *id, const uint32_t *sizes,
			    size_t fixed, unsigned int win, uint64_t ops);

static void die(const char *what)
{
	fprintf(stderr, SIDE_PROG ": %s: %s\n", what, side_strerror());
	exit(1);
}

/* ---- mempool ---------------------------------------------------------- */

static BENCH_LOOP double mp_loop(SIDE_MEMPOOL *mp, unsigned int bulk,
				 uint64_t ops)
{
	void *objs[BENCH_BULK];
	uint64_t n = ops / bulk, t0, t1;

	t0 = bench_cpu_ns();
	if (bulk == 1) {
		for (uint64_t i = 0; i < n; i++) {
			if (unlikely(SIDE_MP_GET(mp, objs) < 0))
				return -1;
			SIDE_MP_PUT(mp, objs[0]);
		}
	} else {
		for (uint64_t i = 0; i < n; i++) {
			if (unlikely(SIDE_MP_GET_BULK(mp, objs, bulk) < 0))
				return -1;
			SIDE_MP_PUT_BULK(mp, objs, bulk);
		}
	}
	t1 = bench_cpu_ns();
	return (double)(t1 - t0) / (double)(n * bulk);
}

struct mp2_arg {
	SIDE_MEMPOOL *mp;
	uint64_t ops;
	struct bench_gate gate;
	uint64_t end;
};

static int mp2_worker(void *p)
{
	struct mp2_arg *a = p;
	int rc;

	bench_rt(1);
	bench_gate_wait(&a->gate);
	rc = mp_loop(a->mp, BENCH_BULK, a->ops) < 0;
	a->end = bench_now_ns();
	bench_rt(0);
	SIDE_MP_WORKER_DONE(a->mp);
	return rc;
}

/* Both CPUs at once on one pool, each thread with its own cache. */
static double mp2_run(SIDE_MEMPOOL *mp, uint64_t ops)
{
	struct mp2_arg arg = { .mp = mp, .ops = ops };
	uint64_t t0, t1;
	double r;

	if (side_launch(mp2_worker, &arg))
		die("launch worker");
	bench_rt(1);
	t0 = bench_gate_open(&arg.gate, 1);
	r = mp_loop(mp, BENCH_BULK, ops);
	t1 = bench_now_ns();
	bench_rt(0);
	/* the worker's exit is not part of the work */
	if (side_join() || r < 0)
		return -1;
	if (arg.end > t1)
		t1 = arg.end;
	return (double)(t1 - t0) / (double)(2 * ops);
}

static void bench_mempool(const struct bench_args *a)
{
	static const unsigned int bulks[] = { 1, 4, 32 };
	SIDE_MEMPOOL *mp, *mp0;
	char id[64];

	if (!bench_group(a, "mempool/"))
		return;
	mp = SIDE_MP_CREATE("bench_mp512", BENCH_MP_N, BENCH_MP_ELT,
			    BENCH_MP_CACHE);
	if (!mp)
		die("mempool create cache 512");
	mp0 = SIDE_MP_CREATE("bench_mp0", BENCH_MP_N, BENCH_MP_ELT, 0);
	if (!mp0)
		die("mempool create cache 0");
	for (unsigned int i = 0; i < 3; i++) {
		snprintf(id, sizeof(id), "mempool/cache512/bulk%u", bulks[i]);
		if (bench_want(a, id))
			bench_result(id, BENCH_BEST(mp_loop(mp, bulks[i],
					bench_ops(a, BENCH_OPS_FAST))));
	}
	for (unsigned int i = 0; i < 3; i += 2) {
		snprintf(id, sizeof(id), "mempool/cache0/bulk%u", bulks[i]);
		if (bench_want(a, id))
			bench_result(id, BENCH_BEST(mp_loop(mp0, bulks[i],
					bench_ops(a, BENCH_OPS_MEDIUM))));
	}
	if (bench_want(a, "mempool/cache512/bulk32/2thr"))
		bench_result("mempool/cache512/bulk32/2thr",
			     BENCH_BEST_N(BENCH_SUBRUNS_2THR,
				     mp2_run(mp, bench_ops(a, BENCH_OPS_2THR))));
	SIDE_MP_FREE(mp);
	SIDE_MP_FREE(mp0);
}

/* ---- ring ------------------------------------------------------------- */

static BENCH_LOOP double ring_loop(SIDE_RING *r, int sp, uint64_t ops)
{
	void *objs[BENCH_BULK] = { 0 };
	uint64_t n = ops / BENCH_BULK, t0, t1;

	t0 = bench_cpu_ns();
	if (sp) {
		for (uint64_t i = 0; i < n; i++) {
			SIDE_RING_SP_ENQ(r, objs, BENCH_BULK);
			if (unlikely(!SIDE_RING_SC_DEQ(r, objs, BENCH_BULK)))
				return -1;
		}
	} else {
		for (uint64_t i = 0; i < n; i++) {
			SIDE_RING_MP_ENQ(r, objs, BENCH_BULK);
			if (unlikely(!SIDE_RING_MC_DEQ(r, objs, BENCH_BULK)))
				return -1;
		}
	}
	t1 = bench_cpu_ns();
	return (double)(t1 - t0) / (double)(n * BENCH_BULK);
}

struct ring2_arg {
	SIDE_RING *r;
	uint64_t ops;
	struct bench_gate gate;
	uint64_t end;
};

/* rte_pause() is this same instruction on x86. */
static int ring2_consumer(void *p)
{
	struct ring2_arg *a = p;
	void *objs[BENCH_BULK];
	uint64_t got = 0;

	bench_rt(1);
	bench_gate_wait(&a->gate);
	while (got < a->ops) {
		if (SIDE_RING_MC_DEQ(a->r, objs, BENCH_BULK))
			got += BENCH_BULK;
		else
			__builtin_ia32_pause();
	}
	a->end = bench_now_ns();
	bench_rt(0);
	return 0;
}

/* One producer (main thread, CPU 0), one consumer (worker, CPU 1). */
static double ring2_run(SIDE_RING *r, uint64_t ops)
{
	struct ring2_arg arg = { .r = r, .ops = ops };
	void *objs[BENCH_BULK] = { 0 };
	uint64_t sent = 0, t0;

	if (side_launch(ring2_consumer, &arg))
		die("launch worker");
	bench_rt(1);
	t0 = bench_gate_open(&arg.gate, 1);
	while (sent < ops) {
		if (SIDE_RING_MP_ENQ(r, objs, BENCH_BULK))
			sent += BENCH_BULK;
		else
			__builtin_ia32_pause();
	}
	bench_rt(0);
	if (side_join())
		return -1;
	/* the consumer's last dequeue ends the work */
	return (double)(arg.end - t0) / (double)ops;
}

static void bench_ring(const struct bench_args *a)
{
	SIDE_RING *sp, *mp;

	if (!bench_group(a, "ring/"))
		return;
	sp = SIDE_RING_CREATE("bench_spsc", 1);
	mp = SIDE_RING_CREATE("bench_mpmc", 0);
	if (!sp || !mp)
		die("ring create");
	if (bench_want(a, "ring/spsc/bulk32"))
		bench_result("ring/spsc/bulk32",
			     BENCH_BEST(ring_loop(sp, 1,
					bench_ops(a, BENCH_OPS_FAST))));
	if (bench_want(a, "ring/mpmc/bulk32"))
		bench_result("ring/mpmc/bulk32",
			     BENCH_BEST(ring_loop(mp, 0,
					bench_ops(a, BENCH_OPS_FAST))));
	if (bench_want(a, "ring/mpmc/bulk32/2thr"))
		bench_result("ring/mpmc/bulk32/2thr",
			     BENCH_BEST_N(BENCH_SUBRUNS_2THR,
				     ring2_run(mp, bench_ops(a, BENCH_OPS_MEDIUM))));
	SIDE_RING_FREE(sp);
	SIDE_RING_FREE(mp);
}

/* ---- malloc ----------------------------------------------------------- */

static void bench_malloc(const struct bench_args *a)
{
	static uint32_t sizes[BENCH_MIXED_NSIZES];

	if (!bench_group(a, "malloc/"))
		return;
	bench_mixed_sizes(sizes);
	if (bench_want(a, "malloc/fixed64"))
		side_malloc_row("malloc/fixed64", NULL, 64, BENCH_MALLOC_WIN,
				bench_ops(a, BENCH_OPS_MEDIUM));
	if (bench_want(a, "malloc/fixed1k"))
		side_malloc_row("malloc/fixed1k", NULL, 1024, BENCH_MALLOC_WIN,
				bench_ops(a, BENCH_OPS_MEDIUM));
	if (bench_want(a, "malloc/fixed64k"))
		side_malloc_row("malloc/fixed64k", NULL, 65536,
				BENCH_MALLOC_WIN, bench_ops(a, BENCH_OPS_SLOW));
	if (bench_want(a, "malloc/mixed16-64k"))
		side_malloc_row("malloc/mixed16-64k", sizes, 0, BENCH_MIXED_WIN,
				bench_ops(a, BENCH_OPS_SLOW));
}

/* ---- mbuf ------------------------------------------------------------- */

static BENCH_LOOP double mbuf_single(SIDE_MEMPOOL *mp, uint64_t n)
{
	uint64_t t0 = bench_cpu_ns();

	for (uint64_t i = 0; i < n; i++) {
		SIDE_MBUF *m = SIDE_MBUF_ALLOC(mp);

		if (unlikely(!m))
			return -1;
		SIDE_MBUF_FREE(m);
	}
	return (double)(bench_cpu_ns() - t0) / (double)n;
}

static BENCH_LOOP double mbuf_bulk(SIDE_MEMPOOL *mp, uint64_t ops)
{
	SIDE_MBUF *ms[BENCH_BULK];
	uint64_t n = ops / BENCH_BULK, t0 = bench_cpu_ns();

	for (uint64_t i = 0; i < n; i++) {
		if (unlikely(SIDE_MBUF_ALLOC_BULK(mp, ms, BENCH_BULK)))
			return -1;
		SIDE_MBUF_FREE_BULK(ms, BENCH_BULK);
	}
	return (double)(bench_cpu_ns() - t0) / (double)(n * BENCH_BULK);
}

static void bench_mbuf(const struct bench_args *a)
{
	SIDE_MEMPOOL *mp;

	if (!bench_group(a, "mbuf/"))
		return;
	mp = SIDE_MBUF_POOL_CREATE("bench_mbuf", BENCH_MBUF_N,
				   BENCH_MBUF_CACHE);
	if (!mp)
		die("mbuf pool create");
	if (bench_want(a, "mbuf/single"))
		bench_result("mbuf/single", BENCH_BEST(mbuf_single(mp,
				bench_ops(a, BENCH_OPS_FAST))));
	if (bench_want(a, "mbuf/bulk32"))
		bench_result("mbuf/bulk32", BENCH_BEST(mbuf_bulk(mp,
				bench_ops(a, BENCH_OPS_FAST))));
	SIDE_MP_FREE(mp);
}

/* ---- memzone ---------------------------------------------------------- */

static char mz_names[BENCH_MZ_COUNT][SIDE_MZ_NAMESIZE];
static const SIDE_MEMZONE *mz_tbl[BENCH_MZ_COUNT];

static void mz_free_all(void)
{
	for (unsigned int i = 0; i < BENCH_MZ_COUNT; i++) {
		if (mz_tbl[i])
			SIDE_MZ_FREE(mz_tbl[i]);
		mz_tbl[i] = NULL;
	}
}

/* Reserve the 1000 zones; they stay reserved for the lookups. */
static BENCH_LOOP double mz_reserve(void)
{
	uint64_t t0;

	mz_free_all();
	t0 = bench_cpu_ns();
	for (unsigned int i = 0; i < BENCH_MZ_COUNT; i++) {
		mz_tbl[i] = SIDE_MZ_RESERVE(mz_names[i], BENCH_MZ_LEN);
		if (!mz_tbl[i]) {
			fprintf(stderr, SIDE_PROG ": memzone reserve: %s\n",
				side_strerror());
			return -1;
		}
	}
	return (double)(bench_cpu_ns() - t0) / BENCH_MZ_COUNT;
}

static BENCH_LOOP double mz_lookup(uint64_t n)
{
	uint64_t t0 = bench_cpu_ns();

	for (uint64_t i = 0; i < n; i++) {
		const SIDE_MEMZONE *z =
			SIDE_MZ_LOOKUP(mz_names[i % BENCH_MZ_COUNT]);

		if (unlikely(z != mz_tbl[i % BENCH_MZ_COUNT]))
			return -1;
	}
	return (double)(bench_cpu_ns() - t0) / (double)n;
}

static void bench_memzone(const struct bench_args *a)
{
	double r;

	if (!bench_group(a, "memzone/"))
		return;
	for (unsigned int i = 0; i < BENCH_MZ_COUNT; i++)
		snprintf(mz_names[i], sizeof(mz_names[i]), "bench_mz_%u", i);
	r = BENCH_BEST(mz_reserve());
	if (bench_want(a, "memzone/reserve"))
		bench_result("memzone/reserve", r);
	if (r > 0 && bench_want(a, "memzone/lookup"))
		bench_result("memzone/lookup", BENCH_BEST(mz_lookup(
				bench_ops(a, BENCH_OPS_LOOKUP))));
	mz_free_all();
}

/* ---- driver ----------------------------------------------------------- */

/* The child of the init scenario: init+cleanup alone, in ns, on stdout. */
static int bench_init_once(void)
{
	uint64_t t0 = bench_now_ns();

	if (side_init("init"))
		return 1;
	SIDE_CLEANUP();
	printf("%.0f\n", (double)(bench_now_ns() - t0));
	return 0;
}

/* Every scenario, then cleanup, then init (in children of its own). */
static void bench_scenarios(const struct bench_args *a)
{
	bench_mempool(a);
	bench_ring(a);
	bench_malloc(a);
	bench_mbuf(a);
	bench_memzone(a);
	SIDE_CLEANUP();
	/* after cleanup, so that parent and child never hold memory at once */
	bench_init_scenario(a);
}

#endif /* HPM_BENCH_SCENARIOS_H */
