// SPDX-License-Identifier: MIT
/*
 * The DPDK original of examples/pipeline.c (docs/MIGRATING-FROM-DPDK.md
 * shows the diff): a producer fills packets into mbufs and passes them
 * through a ring to a worker, which checks and frees them; the totals live
 * in a memzone. Builds against DPDK 22.11: make -C examples dpdk-original
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_memzone.h>
#include <rte_mempool.h>
#include <rte_ring.h>

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

static struct rte_ring *ring;
static struct stats *st;

/* The worker: every packet must carry its sequence number. */
static int worker(void *arg)
{
	struct rte_mbuf *m[BURST];
	uint64_t expect = 0;

	(void)arg;
	/* acquire: pairs with the producer's release store of done */
	while (!__atomic_load_n(&st->done, __ATOMIC_ACQUIRE) ||
	       rte_ring_count(ring) != 0) {
		unsigned int i, n;

		n = rte_ring_sc_dequeue_burst(ring, (void **)m, BURST, NULL);
		for (i = 0; i < n; i++) {
			uint64_t seq = *rte_pktmbuf_mtod(m[i], uint64_t *);

			if (seq != expect++ || rte_pktmbuf_pkt_len(m[i]) != PKT_LEN)
				st->bad++;
			st->bytes += rte_pktmbuf_pkt_len(m[i]);
		}
		rte_pktmbuf_free_bulk(m, n);
		st->received += n;
	}
	return 0;
}

int main(int argc, char **argv)
{
	const struct rte_memzone *mz;
	struct rte_mempool *pool;
	struct rte_mbuf **burst;
	unsigned int lcore;
	uint64_t total, seq = 0;
	int ret;

	ret = rte_eal_init(argc, argv);
	if (ret < 0)
		rte_exit(EXIT_FAILURE, "EAL init: %s\n", rte_strerror(rte_errno));
	argc -= ret;
	argv += ret;
	total = argc > 1 ? strtoull(argv[1], NULL, 0) : 100000;

	mz = rte_memzone_reserve("pipeline_stats", sizeof(*st), rte_socket_id(), 0);
	pool = rte_pktmbuf_pool_create("pipeline_pool", NB_MBUF, POOL_CACHE, 0,
				       RTE_MBUF_DEFAULT_BUF_SIZE, rte_socket_id());
	ring = rte_ring_create("pipeline_ring", RING_SIZE, rte_socket_id(),
			       RING_F_SP_ENQ | RING_F_SC_DEQ);
	burst = rte_malloc("pipeline_burst", BURST * sizeof(*burst), 0);
	if (mz == NULL || pool == NULL || ring == NULL || burst == NULL)
		rte_exit(EXIT_FAILURE, "setup: %s\n", rte_strerror(rte_errno));
	st = mz->addr;
	memset(st, 0, sizeof(*st));

	lcore = rte_get_next_lcore(-1, 1, 0);
	if (lcore >= RTE_MAX_LCORE)
		rte_exit(EXIT_FAILURE, "needs a worker lcore (-l 0-1)\n");
	rte_eal_remote_launch(worker, NULL, lcore);

	while (seq < total) {
		unsigned int i, n = total - seq < BURST ? total - seq : BURST;
		unsigned int sent;

		if (rte_pktmbuf_alloc_bulk(pool, burst, n) != 0)
			continue;	/* all in flight: the worker frees them */
		for (i = 0; i < n; i++) {
			char *d = rte_pktmbuf_append(burst[i], PKT_LEN);

			memset(d, 0, PKT_LEN);
			memcpy(d, &seq, sizeof(seq));
			seq++;
		}
		sent = rte_ring_sp_enqueue_burst(ring, (void **)burst, n, NULL);
		if (sent < n) {
			/* ring full: take the unsent sequence numbers back */
			rte_pktmbuf_free_bulk(burst + sent, n - sent);
			seq -= n - sent;
		}
		st->sent += sent;
	}
	__atomic_store_n(&st->done, 1, __ATOMIC_RELEASE);
	rte_eal_wait_lcore(lcore);

	printf("pipeline: sent %" PRIu64 ", received %" PRIu64 ", %" PRIu64
	       " bytes, %" PRIu64 " bad, %u of %u mbufs back\n", st->sent,
	       st->received, st->bytes, st->bad, rte_mempool_avail_count(pool),
	       NB_MBUF);
	ret = st->received == total && st->bad == 0 &&
	      rte_mempool_avail_count(pool) == NB_MBUF ? 0 : 1;

	rte_free(burst);
	rte_ring_free(ring);
	rte_mempool_free(pool);
	rte_memzone_free(mz);
	rte_eal_cleanup();
	return ret;
}
