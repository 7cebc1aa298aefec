// SPDX-License-Identifier: MIT
/*
 * A small DPDK program ported to libhpmem (docs/MIGRATING-FROM-DPDK.md
 * shows the diff to the original, examples/dpdk/pipeline.c): a producer
 * fills packets into mbufs and passes them through a ring to a worker,
 * which checks and frees them; the totals live in a memzone.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hpmem/hpmem.h>

#define NB_MBUF		4095
#define POOL_CACHE	64
#define RING_SIZE	1024
#define BURST		32
#define PKT_LEN		64

struct stats {
	uint64_t sent;
	uint64_t received;
	uint64_t bytes;
	uint64_t bad;
	int done;		/* the producer has sent everything */
};

static struct hpm_ring *ring;
static struct stats *st;

/* rte_exit() without the EAL: print and leave. */
static void die(const char *what, int err)
{
	fprintf(stderr, "pipeline: %s: %s\n", what, hpm_strerror(err));
	exit(EXIT_FAILURE);
}

/* The worker: every packet must carry its sequence number. */
static void *worker(void *arg)
{
	struct hpm_mbuf *m[BURST];
	uint64_t expect = 0;

	(void)arg;
	/* A thread slot gives this thread its own mempool cache (an lcore's). */
	if (hpm_thread_register() < 0)
		die("worker: thread slot", hpm_errno);
	/* acquire: pairs with the producer's release store of done */
	while (!__atomic_load_n(&st->done, __ATOMIC_ACQUIRE) ||
	       hpm_ring_count(ring) != 0) {
		unsigned int i, n;

		n = hpm_ring_sc_dequeue_burst(ring, (void **)m, BURST, NULL);
		for (i = 0; i < n; i++) {
			uint64_t seq = *hpm_pktmbuf_mtod(m[i], uint64_t *);

			if (seq != expect++ || hpm_pktmbuf_pkt_len(m[i]) != PKT_LEN)
				st->bad++;
			st->bytes += hpm_pktmbuf_pkt_len(m[i]);
		}
		hpm_pktmbuf_free_bulk(m, n);
		st->received += n;
	}
	return NULL;
}

int main(int argc, char **argv)
{
	const struct hpm_memzone *mz;
	struct hpm_init_opts opts;
	struct hpm_mempool *pool;
	struct hpm_mbuf **burst;
	pthread_t lcore;
	uint64_t total, seq = 0;
	int ret;

	/* EAL-like options (--socket-mem, --backend, ...); HPMEM_OPTS on top. */
	hpm_init_opts_default(&opts);
	ret = hpm_parse_args(&opts, argc, argv);
	if (ret < 0)
		die("options", -ret);
	argc -= ret;
	argv += ret;
	ret = hpm_init(&opts);
	if (ret < 0)
		die("init", -ret);
	if (hpm_thread_register() < 0)
		die("main: thread slot", hpm_errno);
	total = argc > 1 ? strtoull(argv[1], NULL, 0) : 100000;

	mz = hpm_memzone_reserve("pipeline_stats", sizeof(*st), hpm_socket_id(), 0);
	pool = hpm_pktmbuf_pool_create("pipeline_pool", NB_MBUF, POOL_CACHE, 0,
				       HPM_MBUF_DEFAULT_BUF_SIZE, hpm_socket_id());
	ring = hpm_ring_create("pipeline_ring", RING_SIZE, hpm_socket_id(),
			       HPM_RING_F_SP_ENQ | HPM_RING_F_SC_DEQ);
	burst = hpm_malloc("pipeline_burst", BURST * sizeof(*burst), 0);
	if (mz == NULL || pool == NULL || ring == NULL || burst == NULL)
		die("setup", hpm_errno);
	st = mz->addr;
	memset(st, 0, sizeof(*st));

	/* No lcores: the application makes its own threads. */
	ret = pthread_create(&lcore, NULL, worker, NULL);
	if (ret != 0)
		die("worker thread", ret);

	while (seq < total) {
		unsigned int i, n = total - seq < BURST ? total - seq : BURST;
		unsigned int sent;

		if (hpm_pktmbuf_alloc_bulk(pool, burst, n) != 0)
			continue;	/* all in flight: the worker frees them */
		for (i = 0; i < n; i++) {
			char *d = hpm_pktmbuf_append(burst[i], PKT_LEN);

			memset(d, 0, PKT_LEN);
			memcpy(d, &seq, sizeof(seq));
			seq++;
		}
		sent = hpm_ring_sp_enqueue_burst(ring, (void **)burst, n, NULL);
		if (sent < n) {
			/* ring full: take the unsent sequence numbers back */
			hpm_pktmbuf_free_bulk(burst + sent, n - sent);
			seq -= n - sent;
		}
		st->sent += sent;
	}
	__atomic_store_n(&st->done, 1, __ATOMIC_RELEASE);
	pthread_join(lcore, NULL);

	printf("pipeline: sent %" PRIu64 ", received %" PRIu64 ", %" PRIu64
	       " bytes, %" PRIu64 " bad, %u of %u mbufs back\n", st->sent,
	       st->received, st->bytes, st->bad, hpm_mempool_avail_count(pool),
	       NB_MBUF);
	ret = st->received == total && st->bad == 0 &&
	      hpm_mempool_avail_count(pool) == NB_MBUF ? 0 : 1;

	hpm_free(burst);
	hpm_ring_free(ring);
	hpm_mempool_free(pool);
	hpm_memzone_free(mz);
	hpm_cleanup();
	return ret;
}
