// SPDX-License-Identifier: MIT
/* The DPDK 22.11 side of make bench: the scenarios of bench.h on EAL. */
#include "bench.h"

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_memzone.h>
#include <rte_mempool.h>
#include <rte_ring.h>

#define WORKER_LCORE	1

static int eal_init(void)
{
	static char mem[16];
	char *argv[32];
	int argc = 0;
	char *extra = getenv("BENCH_EAL_EXTRA");
	char *no_huge = getenv("BENCH_NO_HUGE");

	snprintf(mem, sizeof(mem), "%d", BENCH_MEM_MB);
	argv[argc++] = "dpdk_bench";
	argv[argc++] = "-l";
	argv[argc++] = "0-1";
	argv[argc++] = "--no-pci";
	if (no_huge && *no_huge) {
		/* runner could not reserve hugepages; --in-memory needs them */
		argv[argc++] = "--no-huge";
		argv[argc++] = "--no-shconf";
	} else {
		argv[argc++] = "--in-memory";
	}
	argv[argc++] = "--no-telemetry";
	argv[argc++] = "-m";
	argv[argc++] = mem;
	argv[argc++] = "--log-level=lib.eal:error";
	/* anything else the user wants, e.g. "--log-level=debug" */
	if (extra && *extra) {
		char *dup = strdup(extra), *save = NULL;

		for (char *t = strtok_r(dup, " ", &save); t && argc < 31;
		     t = strtok_r(NULL, " ", &save))
			argv[argc++] = t;
	}
	argv[argc] = NULL;
	if (rte_eal_init(argc, argv) < 0) {
		fprintf(stderr, "dpdk_bench: rte_eal_init: %s\n",
			rte_strerror(rte_errno));
		return -1;
	}
	return 0;
}

/* ---- mempool ---------------------------------------------------------- */

static BENCH_LOOP double mp_loop(struct rte_mempool *mp, unsigned int bulk,
				 uint64_t ops)
{
	void *objs[BENCH_BULK];
	uint64_t n = ops / bulk, t0, t1;

	t0 = bench_cpu_ns();
	if (bulk == 1) {
		for (uint64_t i = 0; i < n; i++) {
			if (unlikely(rte_mempool_get(mp, objs) < 0))
				return -1;
			rte_mempool_put(mp, objs[0]);
		}
	} else {
		for (uint64_t i = 0; i < n; i++) {
			if (unlikely(rte_mempool_get_bulk(mp, objs, bulk) < 0))
				return -1;
			rte_mempool_put_bulk(mp, objs, bulk);
		}
	}
	t1 = bench_cpu_ns();
	return (double)(t1 - t0) / (double)(n * bulk);
}

struct mp2_arg {
	struct rte_mempool *mp;
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
	return rc;
}

/* Both lcores at once on one pool, each with its own cache. */
static double mp2_run(struct rte_mempool *mp, uint64_t ops)
{
	struct mp2_arg arg = { .mp = mp, .ops = ops };
	uint64_t t0, t1;
	double r;

	rte_eal_remote_launch(mp2_worker, &arg, WORKER_LCORE);
	bench_rt(1);
	t0 = bench_gate_open(&arg.gate, 1);
	r = mp_loop(mp, BENCH_BULK, ops);
	t1 = bench_now_ns();
	bench_rt(0);
	if (rte_eal_wait_lcore(WORKER_LCORE) || r < 0)
		return -1;
	if (arg.end > t1)
		t1 = arg.end;
	return (double)(t1 - t0) / (double)(2 * ops);
}

static void bench_mempool(const struct bench_args *a)
{
	static const unsigned int bulks[] = { 1, 4, 32 };
	struct rte_mempool *mp, *mp0;
	char id[64];

	if (!bench_group(a, "mempool/"))
		return;
	mp = rte_mempool_create("bench_mp512", BENCH_MP_N, BENCH_MP_ELT,
				BENCH_MP_CACHE, 0, NULL, NULL, NULL, NULL,
				SOCKET_ID_ANY, 0);
	mp0 = rte_mempool_create("bench_mp0", BENCH_MP_N, BENCH_MP_ELT, 0, 0,
				 NULL, NULL, NULL, NULL, SOCKET_ID_ANY, 0);
	if (!mp || !mp0) {
		fprintf(stderr, "dpdk_bench: rte_mempool_create: %s\n",
			rte_strerror(rte_errno));
		exit(1);
	}
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
	rte_mempool_free(mp);
	rte_mempool_free(mp0);
}

/* ---- ring ------------------------------------------------------------- */

static BENCH_LOOP double ring_loop(struct rte_ring *r, int sp, uint64_t ops)
{
	void *objs[BENCH_BULK] = { 0 };
	uint64_t n = ops / BENCH_BULK, t0, t1;

	t0 = bench_cpu_ns();
	if (sp) {
		for (uint64_t i = 0; i < n; i++) {
			rte_ring_sp_enqueue_bulk(r, objs, BENCH_BULK, NULL);
			if (unlikely(!rte_ring_sc_dequeue_bulk(r, objs, BENCH_BULK,
							       NULL)))
				return -1;
		}
	} else {
		for (uint64_t i = 0; i < n; i++) {
			rte_ring_mp_enqueue_bulk(r, objs, BENCH_BULK, NULL);
			if (unlikely(!rte_ring_mc_dequeue_bulk(r, objs, BENCH_BULK,
							       NULL)))
				return -1;
		}
	}
	t1 = bench_cpu_ns();
	return (double)(t1 - t0) / (double)(n * BENCH_BULK);
}

struct ring2_arg {
	struct rte_ring *r;
	uint64_t ops;
	struct bench_gate gate;
	uint64_t end;
};

static int ring2_consumer(void *p)
{
	struct ring2_arg *a = p;
	void *objs[BENCH_BULK];
	uint64_t got = 0;

	bench_rt(1);
	bench_gate_wait(&a->gate);
	while (got < a->ops) {
		if (rte_ring_mc_dequeue_bulk(a->r, objs, BENCH_BULK, NULL))
			got += BENCH_BULK;
		else
			rte_pause();
	}
	a->end = bench_now_ns();
	bench_rt(0);
	return 0;
}

/* One producer (main lcore), one consumer (worker lcore). */
static double ring2_run(struct rte_ring *r, uint64_t ops)
{
	struct ring2_arg arg = { .r = r, .ops = ops };
	void *objs[BENCH_BULK] = { 0 };
	uint64_t sent = 0, t0, t1;

	rte_eal_remote_launch(ring2_consumer, &arg, WORKER_LCORE);
	bench_rt(1);
	t0 = bench_gate_open(&arg.gate, 1);
	while (sent < ops) {
		if (rte_ring_mp_enqueue_bulk(r, objs, BENCH_BULK, NULL))
			sent += BENCH_BULK;
		else
			rte_pause();
	}
	bench_rt(0);
	rte_eal_wait_lcore(WORKER_LCORE);
	/* the consumer's last dequeue ends the work */
	t1 = arg.end;
	return (double)(t1 - t0) / (double)ops;
}

static void bench_ring(const struct bench_args *a)
{
	struct rte_ring *sp, *mp;

	if (!bench_group(a, "ring/"))
		return;
	sp = rte_ring_create("bench_spsc", BENCH_RING_SIZE, SOCKET_ID_ANY,
			     RING_F_SP_ENQ | RING_F_SC_DEQ);
	mp = rte_ring_create("bench_mpmc", BENCH_RING_SIZE, SOCKET_ID_ANY, 0);
	if (!sp || !mp) {
		fprintf(stderr, "dpdk_bench: rte_ring_create: %s\n",
			rte_strerror(rte_errno));
		exit(1);
	}
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
	rte_ring_free(sp);
	rte_ring_free(mp);
}

/* ---- malloc ----------------------------------------------------------- */

#define RTE_ALLOC(sz)	rte_malloc(NULL, (sz), 0)
BENCH_DEFINE_MALLOC(rte, RTE_ALLOC, rte_free)

static void bench_malloc(const struct bench_args *a)
{
	static uint32_t sizes[BENCH_MIXED_NSIZES];

	if (!bench_group(a, "malloc/"))
		return;
	bench_mixed_sizes(sizes);
	if (bench_want(a, "malloc/fixed64"))
		bench_result("malloc/fixed64",
			     BENCH_BEST(bench_malloc_rte(NULL, 64, BENCH_MALLOC_WIN,
					      bench_ops(a, BENCH_OPS_MEDIUM))));
	if (bench_want(a, "malloc/fixed1k"))
		bench_result("malloc/fixed1k",
			     BENCH_BEST(bench_malloc_rte(NULL, 1024, BENCH_MALLOC_WIN,
					      bench_ops(a, BENCH_OPS_MEDIUM))));
	if (bench_want(a, "malloc/fixed64k"))
		bench_result("malloc/fixed64k",
			     BENCH_BEST(bench_malloc_rte(NULL, 65536, BENCH_MALLOC_WIN,
					      bench_ops(a, BENCH_OPS_SLOW))));
	if (bench_want(a, "malloc/mixed16-64k"))
		bench_result("malloc/mixed16-64k",
			     BENCH_BEST(bench_malloc_rte(sizes, 0, BENCH_MIXED_WIN,
					      bench_ops(a, BENCH_OPS_SLOW))));
}

/* ---- mbuf ------------------------------------------------------------- */

static BENCH_LOOP double mbuf_single(struct rte_mempool *mp, uint64_t n)
{
	uint64_t t0 = bench_cpu_ns();

	for (uint64_t i = 0; i < n; i++) {
		struct rte_mbuf *m = rte_pktmbuf_alloc(mp);

		if (unlikely(!m))
			return -1;
		rte_pktmbuf_free(m);
	}
	return (double)(bench_cpu_ns() - t0) / (double)n;
}

static BENCH_LOOP double mbuf_bulk(struct rte_mempool *mp, uint64_t ops)
{
	struct rte_mbuf *ms[BENCH_BULK];
	uint64_t n = ops / BENCH_BULK, t0 = bench_cpu_ns();

	for (uint64_t i = 0; i < n; i++) {
		if (unlikely(rte_pktmbuf_alloc_bulk(mp, ms, BENCH_BULK)))
			return -1;
		rte_pktmbuf_free_bulk(ms, BENCH_BULK);
	}
	return (double)(bench_cpu_ns() - t0) / (double)(n * BENCH_BULK);
}

static void bench_mbuf(const struct bench_args *a)
{
	struct rte_mempool *mp;

	if (!bench_group(a, "mbuf/"))
		return;
	mp = rte_pktmbuf_pool_create("bench_mbuf", BENCH_MBUF_N,
				     BENCH_MBUF_CACHE, 0,
				     RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
	if (!mp) {
		fprintf(stderr, "dpdk_bench: rte_pktmbuf_pool_create: %s\n",
			rte_strerror(rte_errno));
		exit(1);
	}
	if (bench_want(a, "mbuf/single"))
		bench_result("mbuf/single", BENCH_BEST(mbuf_single(mp,
				bench_ops(a, BENCH_OPS_FAST))));
	if (bench_want(a, "mbuf/bulk32"))
		bench_result("mbuf/bulk32", BENCH_BEST(mbuf_bulk(mp,
				bench_ops(a, BENCH_OPS_FAST))));
	rte_mempool_free(mp);
}

/* ---- memzone ---------------------------------------------------------- */

static char mz_names[BENCH_MZ_COUNT][RTE_MEMZONE_NAMESIZE];
static const struct rte_memzone *mz_tbl[BENCH_MZ_COUNT];

static void mz_free_all(void)
{
	for (unsigned int i = 0; i < BENCH_MZ_COUNT; i++) {
		if (mz_tbl[i])
			rte_memzone_free(mz_tbl[i]);
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
		mz_tbl[i] = rte_memzone_reserve(mz_names[i], BENCH_MZ_LEN,
						SOCKET_ID_ANY, 0);
		if (!mz_tbl[i]) {
			fprintf(stderr, "dpdk_bench: rte_memzone_reserve: %s\n",
				rte_strerror(rte_errno));
			return -1;
		}
	}
	return (double)(bench_cpu_ns() - t0) / BENCH_MZ_COUNT;
}

static BENCH_LOOP double mz_lookup(uint64_t n)
{
	uint64_t t0 = bench_cpu_ns();

	for (uint64_t i = 0; i < n; i++) {
		const struct rte_memzone *z =
			rte_memzone_lookup(mz_names[i % BENCH_MZ_COUNT]);

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
	if (a.init_once) {
		uint64_t t0 = bench_now_ns();

		if (eal_init())
			return 1;
		rte_eal_cleanup();
		printf("%.0f\n", (double)(bench_now_ns() - t0));
		return 0;
	}
	if (eal_init())
		return 1;
	if (rte_lcore_count() < 2) {
		fprintf(stderr, "dpdk_bench: need lcores 0 and 1\n");
		return 1;
	}
	bench_mempool(&a);
	bench_ring(&a);
	bench_malloc(&a);
	bench_mbuf(&a);
	bench_memzone(&a);
	rte_eal_cleanup();
	/* after cleanup, so that parent and child never hold memory at once */
	bench_init_scenario(&a);
	return 0;
}
