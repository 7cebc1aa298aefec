// SPDX-License-Identifier: MIT
/*
 * The hpmem side of make bench: the scenarios of bench.h on libhpmem, and
 * the malloc rows on glibc too.
 */
#include "bench.h"

#include <hpmem/init.h>
#include <hpmem/malloc.h>
#include <hpmem/mbuf.h>
#include <hpmem/mempool.h>
#include <hpmem/memzone.h>
#include <hpmem/ring.h>
#include <hpmem/thread.h>

#define WORKER_CPU	1

static void die(const char *what)
{
	fprintf(stderr, "hpm_bench: %s: %s\n", what, hpm_strerror(hpm_errno));
	exit(1);
}

static int lib_init(const char *tag)
{
	struct hpm_init_opts o;
	char region[HPM_NAME_SIZE];
	int rc;

	hpm_init_opts_default(&o);
	snprintf(region, sizeof(region), "bench-%s-%d", tag, (int)getpid());
	o.region = region;
	o.proc_type = HPM_PROC_PRIMARY;
	o.socket_mem[0] = BENCH_MEM_MB;
	/* HPMEM_OPTS (set by the runner) picks the backend and mount */
	rc = hpm_init(&o);
	if (rc < 0) {
		fprintf(stderr, "hpm_bench: hpm_init: %s\n", hpm_strerror(rc));
		return rc;
	}
	return 0;
}

/* The second thread of the 2-thread rows: CPU 1, registered (main: CPU 0). */
struct thr {
	pthread_t tid;
	void *(*fn)(void *);
	void *arg;
};

static void *thr_trampoline(void *p)
{
	struct thr *t = p;

	if (bench_pin(WORKER_CPU) || hpm_thread_register() < 0)
		die("worker thread setup");
	return t->fn(t->arg);
}

static void thr_start(struct thr *t, void *(*fn)(void *), void *arg)
{
	t->fn = fn;
	t->arg = arg;
	if (pthread_create(&t->tid, NULL, thr_trampoline, t))
		die("pthread_create");
}

/* ---- mempool ---------------------------------------------------------- */

static BENCH_LOOP double mp_loop(struct hpm_mempool *mp, unsigned int bulk,
				 uint64_t ops)
{
	void *objs[BENCH_BULK];
	uint64_t n = ops / bulk, t0, t1;

	t0 = bench_cpu_ns();
	if (bulk == 1) {
		for (uint64_t i = 0; i < n; i++) {
			if (unlikely(hpm_mempool_get(mp, objs) < 0))
				return -1;
			hpm_mempool_put(mp, objs[0]);
		}
	} else {
		for (uint64_t i = 0; i < n; i++) {
			if (unlikely(hpm_mempool_get_bulk(mp, objs, bulk) < 0))
				return -1;
			hpm_mempool_put_bulk(mp, objs, bulk);
		}
	}
	t1 = bench_cpu_ns();
	return (double)(t1 - t0) / (double)(n * bulk);
}

struct mp2_arg {
	struct hpm_mempool *mp;
	uint64_t ops;
	struct bench_gate gate;
	double res;
	uint64_t end;
};

static void *mp2_worker(void *p)
{
	struct mp2_arg *a = p;

	bench_rt(1);
	bench_gate_wait(&a->gate);
	a->res = mp_loop(a->mp, BENCH_BULK, a->ops);
	a->end = bench_now_ns();
	bench_rt(0);
	/* hand the cached objects back before the thread's slot goes */
	hpm_mempool_cache_flush(a->mp);
	return NULL;
}

/* Both CPUs at once on one pool, each thread with its own cache. */
static double mp2_run(struct hpm_mempool *mp, uint64_t ops)
{
	struct mp2_arg arg = { .mp = mp, .ops = ops };
	uint64_t t0, t1;
	struct thr t;
	double r;

	thr_start(&t, mp2_worker, &arg);
	bench_rt(1);
	t0 = bench_gate_open(&arg.gate, 1);
	r = mp_loop(mp, BENCH_BULK, ops);
	t1 = bench_now_ns();
	bench_rt(0);
	/* thread exit (and its slot's release) is not part of the work */
	pthread_join(t.tid, NULL);
	if (arg.end > t1)
		t1 = arg.end;
	if (r < 0 || arg.res < 0)
		return -1;
	return (double)(t1 - t0) / (double)(2 * ops);
}

static void bench_mempool(const struct bench_args *a)
{
	static const unsigned int bulks[] = { 1, 4, 32 };
	struct hpm_mempool *mp, *mp0;
	char id[64];

	if (!bench_group(a, "mempool/"))
		return;
	mp = hpm_mempool_create("bench_mp512", BENCH_MP_N, BENCH_MP_ELT,
				BENCH_MP_CACHE, 0, NULL, NULL, HPM_SOCKET_ANY, 0);
	if (!mp)
		die("hpm_mempool_create cache 512");
	mp0 = hpm_mempool_create("bench_mp0", BENCH_MP_N, BENCH_MP_ELT, 0, 0,
				 NULL, NULL, HPM_SOCKET_ANY, 0);
	if (!mp0)
		die("hpm_mempool_create cache 0");
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
	hpm_mempool_free(mp);
	hpm_mempool_free(mp0);
}

/* ---- ring ------------------------------------------------------------- */

static BENCH_LOOP double ring_loop(struct hpm_ring *r, int sp, uint64_t ops)
{
	void *objs[BENCH_BULK] = { 0 };
	uint64_t n = ops / BENCH_BULK, t0, t1;

	t0 = bench_cpu_ns();
	if (sp) {
		for (uint64_t i = 0; i < n; i++) {
			hpm_ring_sp_enqueue_bulk(r, objs, BENCH_BULK, NULL);
			if (unlikely(!hpm_ring_sc_dequeue_bulk(r, objs, BENCH_BULK,
							       NULL)))
				return -1;
		}
	} else {
		for (uint64_t i = 0; i < n; i++) {
			hpm_ring_mp_enqueue_bulk(r, objs, BENCH_BULK, NULL);
			if (unlikely(!hpm_ring_mc_dequeue_bulk(r, objs, BENCH_BULK,
							       NULL)))
				return -1;
		}
	}
	t1 = bench_cpu_ns();
	return (double)(t1 - t0) / (double)(n * BENCH_BULK);
}

struct ring2_arg {
	struct hpm_ring *r;
	uint64_t ops;
	struct bench_gate gate;
	uint64_t end;
};

static void *ring2_consumer(void *p)
{
	struct ring2_arg *a = p;
	void *objs[BENCH_BULK];
	uint64_t got = 0;

	bench_rt(1);
	bench_gate_wait(&a->gate);
	while (got < a->ops) {
		if (hpm_ring_mc_dequeue_bulk(a->r, objs, BENCH_BULK, NULL))
			got += BENCH_BULK;
		else
			__builtin_ia32_pause();
	}
	a->end = bench_now_ns();
	bench_rt(0);
	return NULL;
}

/* One producer (main thread, CPU 0), one consumer (CPU 1). */
static double ring2_run(struct hpm_ring *r, uint64_t ops)
{
	struct ring2_arg arg = { .r = r, .ops = ops };
	void *objs[BENCH_BULK] = { 0 };
	uint64_t sent = 0, t0, t1;
	struct thr t;

	thr_start(&t, ring2_consumer, &arg);
	bench_rt(1);
	t0 = bench_gate_open(&arg.gate, 1);
	while (sent < ops) {
		if (hpm_ring_mp_enqueue_bulk(r, objs, BENCH_BULK, NULL))
			sent += BENCH_BULK;
		else
			__builtin_ia32_pause();
	}
	bench_rt(0);
	pthread_join(t.tid, NULL);
	/* the consumer's last dequeue ends the work */
	t1 = arg.end;
	return (double)(t1 - t0) / (double)ops;
}

static void bench_ring(const struct bench_args *a)
{
	struct hpm_ring *sp, *mp;

	if (!bench_group(a, "ring/"))
		return;
	sp = hpm_ring_create("bench_spsc", BENCH_RING_SIZE, HPM_SOCKET_ANY,
			     HPM_RING_F_SP_ENQ | HPM_RING_F_SC_DEQ);
	mp = hpm_ring_create("bench_mpmc", BENCH_RING_SIZE, HPM_SOCKET_ANY, 0);
	if (!sp || !mp)
		die("hpm_ring_create");
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
	hpm_ring_free(sp);
	hpm_ring_free(mp);
}

/* ---- malloc ----------------------------------------------------------- */

#define HPM_ALLOC(sz)	hpm_malloc(NULL, (sz), 0)
BENCH_DEFINE_MALLOC(hpm, HPM_ALLOC, hpm_free)
BENCH_DEFINE_MALLOC(glibc, malloc, free)

/*
 * glibc runs in this process, interleaved with hpmem sub-run by sub-run
 * (alternating which goes first): the machine's speed drifts between
 * processes, and this ratio needs no other process's library.
 */
static void malloc_row(const char *id, const uint32_t *sizes, size_t fixed,
		       unsigned int win, uint64_t ops)
{
	char gid[64];
	double h = -1, g = -1, v;

	for (int r = 0; r < BENCH_SUBRUNS; r++) {
		for (int k = 0; k < 2; k++) {
			if ((k ^ r) & 1) {
				v = bench_malloc_glibc(sizes, fixed, win, ops);
				g = (g < 0 || (v >= 0 && v < g)) ? v : g;
			} else {
				v = bench_malloc_hpm(sizes, fixed, win, ops);
				h = (h < 0 || (v >= 0 && v < h)) ? v : h;
			}
		}
	}
	bench_result(id, h);
	snprintf(gid, sizeof(gid), "glibc:%s", id);
	bench_result(gid, g);
}

static void bench_malloc(const struct bench_args *a)
{
	static uint32_t sizes[BENCH_MIXED_NSIZES];

	if (!bench_group(a, "malloc/"))
		return;
	bench_mixed_sizes(sizes);
	if (bench_want(a, "malloc/fixed64"))
		malloc_row("malloc/fixed64", NULL, 64, BENCH_MALLOC_WIN,
			   bench_ops(a, BENCH_OPS_MEDIUM));
	if (bench_want(a, "malloc/fixed1k"))
		malloc_row("malloc/fixed1k", NULL, 1024, BENCH_MALLOC_WIN,
			   bench_ops(a, BENCH_OPS_MEDIUM));
	if (bench_want(a, "malloc/fixed64k"))
		malloc_row("malloc/fixed64k", NULL, 65536, BENCH_MALLOC_WIN,
			   bench_ops(a, BENCH_OPS_SLOW));
	if (bench_want(a, "malloc/mixed16-64k"))
		malloc_row("malloc/mixed16-64k", sizes, 0, BENCH_MIXED_WIN,
			   bench_ops(a, BENCH_OPS_SLOW));
}

/* ---- mbuf ------------------------------------------------------------- */

static BENCH_LOOP double mbuf_single(struct hpm_mempool *mp, uint64_t n)
{
	uint64_t t0 = bench_cpu_ns();

	for (uint64_t i = 0; i < n; i++) {
		struct hpm_mbuf *m = hpm_pktmbuf_alloc(mp);

		if (unlikely(!m))
			return -1;
		hpm_pktmbuf_free(m);
	}
	return (double)(bench_cpu_ns() - t0) / (double)n;
}

static BENCH_LOOP double mbuf_bulk(struct hpm_mempool *mp, uint64_t ops)
{
	struct hpm_mbuf *ms[BENCH_BULK];
	uint64_t n = ops / BENCH_BULK, t0 = bench_cpu_ns();

	for (uint64_t i = 0; i < n; i++) {
		if (unlikely(hpm_pktmbuf_alloc_bulk(mp, ms, BENCH_BULK)))
			return -1;
		hpm_pktmbuf_free_bulk(ms, BENCH_BULK);
	}
	return (double)(bench_cpu_ns() - t0) / (double)(n * BENCH_BULK);
}

static void bench_mbuf(const struct bench_args *a)
{
	struct hpm_mempool *mp;

	if (!bench_group(a, "mbuf/"))
		return;
	mp = hpm_pktmbuf_pool_create("bench_mbuf", BENCH_MBUF_N,
				     BENCH_MBUF_CACHE, 0,
				     HPM_MBUF_DEFAULT_BUF_SIZE, HPM_SOCKET_ANY);
	if (!mp)
		die("hpm_pktmbuf_pool_create");
	if (bench_want(a, "mbuf/single"))
		bench_result("mbuf/single", BENCH_BEST(mbuf_single(mp,
				bench_ops(a, BENCH_OPS_FAST))));
	if (bench_want(a, "mbuf/bulk32"))
		bench_result("mbuf/bulk32", BENCH_BEST(mbuf_bulk(mp,
				bench_ops(a, BENCH_OPS_FAST))));
	hpm_mempool_free(mp);
}

/* ---- memzone ---------------------------------------------------------- */

static char mz_names[BENCH_MZ_COUNT][HPM_NAME_SIZE];
static const struct hpm_memzone *mz_tbl[BENCH_MZ_COUNT];

static void mz_free_all(void)
{
	for (unsigned int i = 0; i < BENCH_MZ_COUNT; i++) {
		if (mz_tbl[i])
			hpm_memzone_free(mz_tbl[i]);
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
		mz_tbl[i] = hpm_memzone_reserve(mz_names[i], BENCH_MZ_LEN,
						HPM_SOCKET_ANY, 0);
		if (!mz_tbl[i]) {
			fprintf(stderr, "hpm_bench: hpm_memzone_reserve: %s\n",
				hpm_strerror(hpm_errno));
			return -1;
		}
	}
	return (double)(bench_cpu_ns() - t0) / BENCH_MZ_COUNT;
}

static BENCH_LOOP double mz_lookup(uint64_t n)
{
	uint64_t t0 = bench_cpu_ns();

	for (uint64_t i = 0; i < n; i++) {
		const struct hpm_memzone *z =
			hpm_memzone_lookup(mz_names[i % BENCH_MZ_COUNT]);

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

int main(int argc, char **argv)
{
	struct bench_args a;

	if (bench_parse(&a, argc, argv))
		return 2;
	/* the same core as DPDK's main lcore */
	if (bench_pin(0))
		return 1;
	if (a.init_once) {
		uint64_t t0 = bench_now_ns();

		if (lib_init("init"))
			return 1;
		hpm_cleanup();
		printf("%.0f\n", (double)(bench_now_ns() - t0));
		return 0;
	}
	if (lib_init("run"))
		return 1;
	if (hpm_thread_register() < 0)
		die("hpm_thread_register");
	bench_mempool(&a);
	bench_ring(&a);
	bench_malloc(&a);
	bench_mbuf(&a);
	bench_memzone(&a);
	hpm_cleanup();
	/* after cleanup, so that parent and child never hold memory at once */
	bench_init_scenario(&a);
	return 0;
}
