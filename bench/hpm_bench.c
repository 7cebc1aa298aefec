// SPDX-License-Identifier: MIT
/*
 * The hpmem side of make bench: the scenarios of scenarios.h on libhpmem,
 * and the malloc rows on glibc too.
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

/* The API shim of scenarios.h. */
#define SIDE_PROG		"hpm_bench"
#define SIDE_MEMPOOL		struct hpm_mempool
#define SIDE_RING		struct hpm_ring
#define SIDE_MBUF		struct hpm_mbuf
#define SIDE_MEMZONE		struct hpm_memzone
#define SIDE_MZ_NAMESIZE	HPM_NAME_SIZE
#define SIDE_MP_CREATE(name, n, elt, cache)				\
	hpm_mempool_create(name, n, elt, cache, 0, NULL, NULL,		\
			   HPM_SOCKET_ANY, 0)
#define SIDE_MP_FREE(mp)		hpm_mempool_free(mp)
#define SIDE_MP_GET(mp, o)		hpm_mempool_get(mp, o)
#define SIDE_MP_PUT(mp, o)		hpm_mempool_put(mp, o)
#define SIDE_MP_GET_BULK(mp, o, n)	hpm_mempool_get_bulk(mp, o, n)
#define SIDE_MP_PUT_BULK(mp, o, n)	hpm_mempool_put_bulk(mp, o, n)
/* hand the cached objects back before the thread's slot goes */
#define SIDE_MP_WORKER_DONE(mp)		hpm_mempool_cache_flush(mp)
#define SIDE_RING_CREATE(name, spsc)					\
	hpm_ring_create(name, BENCH_RING_SIZE, HPM_SOCKET_ANY,		\
			(spsc) ? HPM_RING_F_SP_ENQ | HPM_RING_F_SC_DEQ : 0)
#define SIDE_RING_FREE(r)		hpm_ring_free(r)
#define SIDE_RING_SP_ENQ(r, o, n)	hpm_ring_sp_enqueue_bulk(r, o, n, NULL)
#define SIDE_RING_SC_DEQ(r, o, n)	hpm_ring_sc_dequeue_bulk(r, o, n, NULL)
#define SIDE_RING_MP_ENQ(r, o, n)	hpm_ring_mp_enqueue_bulk(r, o, n, NULL)
#define SIDE_RING_MC_DEQ(r, o, n)	hpm_ring_mc_dequeue_bulk(r, o, n, NULL)
#define SIDE_MBUF_POOL_CREATE(name, n, cache)				\
	hpm_pktmbuf_pool_create(name, n, cache, 0,			\
				HPM_MBUF_DEFAULT_BUF_SIZE, HPM_SOCKET_ANY)
#define SIDE_MBUF_ALLOC(mp)		hpm_pktmbuf_alloc(mp)
#define SIDE_MBUF_FREE(m)		hpm_pktmbuf_free(m)
#define SIDE_MBUF_ALLOC_BULK(mp, m, n)	hpm_pktmbuf_alloc_bulk(mp, m, n)
#define SIDE_MBUF_FREE_BULK(m, n)	hpm_pktmbuf_free_bulk(m, n)
#define SIDE_MZ_RESERVE(name, len)					\
	hpm_memzone_reserve(name, len, HPM_SOCKET_ANY, 0)
#define SIDE_MZ_LOOKUP(name)		hpm_memzone_lookup(name)
#define SIDE_MZ_FREE(mz)		hpm_memzone_free(mz)
#define SIDE_CLEANUP()			hpm_cleanup()

#include "scenarios.h"

static const char *side_strerror(void)
{
	return hpm_strerror(hpm_errno);
}

static int side_init(const char *tag)
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
static struct {
	pthread_t tid;
	int (*fn)(void *);
	void *arg;
	int rc;
} worker;

static void *worker_trampoline(void *p)
{
	(void)p;
	if (bench_pin(WORKER_CPU) || hpm_thread_register() < 0)
		die("worker thread setup");
	worker.rc = worker.fn(worker.arg);
	return NULL;
}

static int side_launch(int (*fn)(void *), void *arg)
{
	worker.fn = fn;
	worker.arg = arg;
	return -pthread_create(&worker.tid, NULL, worker_trampoline, NULL);
}

/* The thread's exit releases its registration slot. */
static int side_join(void)
{
	int rc = pthread_join(worker.tid, NULL);

	return rc ? -rc : worker.rc;
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
static void side_malloc_row(const char *id, const uint32_t *sizes,
			    size_t fixed, unsigned int win, uint64_t ops)
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

int main(int argc, char **argv)
{
	struct bench_args a;

	if (bench_parse(&a, argc, argv))
		return 2;
	/* the same core as DPDK's main lcore */
	if (bench_pin(0))
		return 1;
	if (a.init_once)
		return bench_init_once();
	if (side_init("run"))
		return 1;
	if (hpm_thread_register() < 0)
		die("hpm_thread_register");
	bench_scenarios(&a);
	return 0;
}
