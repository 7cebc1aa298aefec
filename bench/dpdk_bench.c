// SPDX-License-Identifier: MIT
/* The DPDK 22.11 side of make bench: the scenarios of scenarios.h on EAL. */
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

/* The API shim of scenarios.h. */
#define SIDE_PROG		"dpdk_bench"
#define SIDE_MEMPOOL		struct rte_mempool
#define SIDE_RING		struct rte_ring
#define SIDE_MBUF		struct rte_mbuf
#define SIDE_MEMZONE		struct rte_memzone
#define SIDE_MZ_NAMESIZE	RTE_MEMZONE_NAMESIZE
#define SIDE_MP_CREATE(name, n, elt, cache)				\
	rte_mempool_create(name, n, elt, cache, 0, NULL, NULL, NULL,	\
			   NULL, SOCKET_ID_ANY, 0)
#define SIDE_MP_FREE(mp)		rte_mempool_free(mp)
#define SIDE_MP_GET(mp, o)		rte_mempool_get(mp, o)
#define SIDE_MP_PUT(mp, o)		rte_mempool_put(mp, o)
#define SIDE_MP_GET_BULK(mp, o, n)	rte_mempool_get_bulk(mp, o, n)
#define SIDE_MP_PUT_BULK(mp, o, n)	rte_mempool_put_bulk(mp, o, n)
/* the worker lcore keeps its cache, as a DPDK application's would */
#define SIDE_MP_WORKER_DONE(mp)		((void)(mp))
#define SIDE_RING_CREATE(name, spsc)					\
	rte_ring_create(name, BENCH_RING_SIZE, SOCKET_ID_ANY,		\
			(spsc) ? RING_F_SP_ENQ | RING_F_SC_DEQ : 0)
#define SIDE_RING_FREE(r)		rte_ring_free(r)
#define SIDE_RING_SP_ENQ(r, o, n)	rte_ring_sp_enqueue_bulk(r, o, n, NULL)
#define SIDE_RING_SC_DEQ(r, o, n)	rte_ring_sc_dequeue_bulk(r, o, n, NULL)
#define SIDE_RING_MP_ENQ(r, o, n)	rte_ring_mp_enqueue_bulk(r, o, n, NULL)
#define SIDE_RING_MC_DEQ(r, o, n)	rte_ring_mc_dequeue_bulk(r, o, n, NULL)
#define SIDE_MBUF_POOL_CREATE(name, n, cache)				\
	rte_pktmbuf_pool_create(name, n, cache, 0,			\
				RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY)
#define SIDE_MBUF_ALLOC(mp)		rte_pktmbuf_alloc(mp)
#define SIDE_MBUF_FREE(m)		rte_pktmbuf_free(m)
#define SIDE_MBUF_ALLOC_BULK(mp, m, n)	rte_pktmbuf_alloc_bulk(mp, m, n)
#define SIDE_MBUF_FREE_BULK(m, n)	rte_pktmbuf_free_bulk(m, n)
#define SIDE_MZ_RESERVE(name, len)					\
	rte_memzone_reserve(name, len, SOCKET_ID_ANY, 0)
#define SIDE_MZ_LOOKUP(name)		rte_memzone_lookup(name)
#define SIDE_MZ_FREE(mz)		rte_memzone_free(mz)
#define SIDE_CLEANUP()			rte_eal_cleanup()

#include "scenarios.h"

static const char *side_strerror(void)
{
	return rte_strerror(rte_errno);
}

static int side_init(const char *tag)
{
	static char mem[16];
	char *argv[32];
	int argc = 0;
	char *extra = getenv("BENCH_EAL_EXTRA");
	char *no_huge = getenv("BENCH_NO_HUGE");

	(void)tag;	/* --in-memory: nothing named to keep apart */
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

static int side_launch(int (*fn)(void *), void *arg)
{
	return rte_eal_remote_launch(fn, arg, WORKER_LCORE);
}

static int side_join(void)
{
	return rte_eal_wait_lcore(WORKER_LCORE);
}

#define RTE_ALLOC(sz)	rte_malloc(NULL, (sz), 0)
BENCH_DEFINE_MALLOC(rte, RTE_ALLOC, rte_free)

static void side_malloc_row(const char *id, const uint32_t *sizes,
			    size_t fixed, unsigned int win, uint64_t ops)
{
	bench_result(id, BENCH_BEST(bench_malloc_rte(sizes, fixed, win, ops)));
}

int main(int argc, char **argv)
{
	struct bench_args a;

	if (bench_parse(&a, argc, argv))
		return 2;
	if (a.init_once)
		return bench_init_once();
	if (side_init("run"))
		return 1;
	if (rte_lcore_count() < 2) {
		fprintf(stderr, "dpdk_bench: need lcores 0 and 1\n");
		return 1;
	}
	bench_scenarios(&a);
	return 0;
}
