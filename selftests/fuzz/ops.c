// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: each input is a program of heap, mempool, ring and mbuf
 * operations (one opcode byte, then its argument bytes) run against one
 * region (anon backend, initialised once). After every step the library's
 * own checkers must agree with a model kept here (fill patterns of heap
 * blocks, the ring's FIFO contents, the pools' in-use counts); at the end of
 * each input everything is freed and the heap and pools are back where they
 * started, so an input that leaks fails.
 *
 * make test runs it for 30 s from selftests/run.sh. Longer, e.g. an hour on
 * both cores, from the top of the tree (make lib fuzz && make -C selftests
 * fuzz first):
 *   build/selftests/fuzz/ops -max_total_time=3600 -jobs=2 -workers=2 \
 *       build/fuzz-corpus/ops selftests/fuzz/corpus/ops
 * A crash leaves crash-<sha1> in the working directory; rerun it with
 *   build/selftests/fuzz/ops crash-<sha1>
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hpmem/hpmem.h>

#include "log.h"

#define NPTR		32
#define NOBJ		256	/* mempool objects */
#define NMBUF		64	/* mbufs in their pool */
#define RING_SLOTS	128	/* capacity 127 */
#define MBUF_ROOM	(HPM_PKTMBUF_HEADROOM + 512)

static struct hpm_mempool *mp, *mbp;
static struct hpm_ring *ring;
static unsigned int heap_allocs0;

/* Heap blocks: every byte of block i is (i + seq) as of its last write. */
static struct blk {
	unsigned char *p;
	size_t len;
	unsigned char fill;
} blk[NPTR];
static void *objs[NOBJ];
static unsigned int nobj;
/* The ring's contents as a FIFO of tokens (1, 2, ...). */
static uintptr_t fifo[RING_SLOTS];
static unsigned int fifo_head, fifo_len;
static uintptr_t next_token;
static struct hpm_mbuf *mb[NMBUF];

#define CHECK(cond)							\
	do {								\
		if (!(cond)) {						\
			fprintf(stderr, "fuzz/ops: %s:%d: %s\n",	\
				__FILE__, __LINE__, #cond);		\
			abort();					\
		}							\
	} while (0)

static unsigned int heap_allocs(void)
{
	struct hpm_malloc_socket_stats st;

	CHECK(hpm_malloc_get_socket_stats(0, &st) == 0);
	return st.alloc_count;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct hpm_init_opts o;
	static char name[HPM_NAME_SIZE];

	(void)argc;
	(void)argv;
	hpm_init_opts_default(&o);
	snprintf(name, sizeof(name), "fuzz-%d", (int)getpid());
	o.region = name;
	o.backend = HPM_BACKEND_ANON;
	o.proc_type = HPM_PROC_PRIMARY;
	o.socket_mem[0] = 32;
	if (hpm_init(&o)) {
		fprintf(stderr, "fuzz/ops: hpm_init failed: %s\n", hpm_strerror(hpm_errno));
		exit(1);
	}
	/* Failures the inputs provoke (sizes, empty pools) are expected. */
	hpm_log_level = 0;
	mp = hpm_mempool_create("fz-mp", NOBJ, 64, 16, 0, NULL, NULL, HPM_SOCKET_ANY, 0);
	mbp = hpm_pktmbuf_pool_create("fz-mb", NMBUF, 8, 0, MBUF_ROOM, HPM_SOCKET_ANY);
	ring = hpm_ring_create("fz-ring", RING_SLOTS, HPM_SOCKET_ANY, 0);
	CHECK(mp && mbp && ring && ring->capacity < RING_SLOTS);
	/* Removed at exit, so the /dev/shm file does not outlive the run. */
	atexit((void (*)(void))hpm_cleanup);
	heap_allocs0 = heap_allocs();
	return 0;
}

/* The input as a stream of bytes; 0 once it is used up. */
struct in {
	const uint8_t *d;
	size_t n;
};

static unsigned int u8(struct in *in)
{
	if (!in->n)
		return 0;
	in->n--;
	return *in->d++;
}

static unsigned int u16(struct in *in)
{
	return u8(in) | u8(in) << 8;
}

static void blk_fill(unsigned int i, unsigned char v)
{
	blk[i].fill = v;
	memset(blk[i].p, v, blk[i].len);
}

static void blk_check(unsigned int i, size_t len)
{
	for (size_t k = 0; k < len; k++)
		CHECK(blk[i].p[k] == blk[i].fill);
}

static void heap_op(unsigned int op, struct in *in)
{
	unsigned int i = u8(in) % NPTR, align = 1U << (u8(in) % 13);
	size_t len = u16(in) * (u8(in) % 4 + 1);
	unsigned char *p;

	switch (op) {
	case 0:		/* malloc / zmalloc */
	case 1:
		if (blk[i].p)
			return;
		p = op ? hpm_zmalloc("fz", len, align) : hpm_malloc("fz", len, align);
		if (!p)
			return;
		CHECK(((uintptr_t)p & (align - 1)) == 0);
		CHECK(hpm_malloc_usable_size(p) >= len);
		blk[i].p = p;
		blk[i].len = len;
		if (op) {
			blk[i].fill = 0;
			blk_check(i, len);
		}
		blk_fill(i, (unsigned char)(i + len));
		return;
	case 2:		/* free */
		if (!blk[i].p)
			return;
		blk_check(i, blk[i].len);
		hpm_free(blk[i].p);
		blk[i].p = NULL;
		return;
	default:	/* realloc keeps the common prefix */
		if (!blk[i].p)
			return;
		p = hpm_realloc(blk[i].p, len, align);
		if (!p) {
			if (len)
				blk_check(i, blk[i].len);	/* failed: old block intact */
			else
				blk[i].p = NULL;		/* realloc(p, 0) frees */
			return;
		}
		blk[i].p = p;
		blk_check(i, len < blk[i].len ? len : blk[i].len);
		blk[i].len = len;
		blk_fill(i, (unsigned char)(i * 7 + len));
		return;
	}
}

static void pool_op(unsigned int op, struct in *in)
{
	unsigned int n = u8(in) % 40 + 1;

	if (op == 0) {
		if (nobj + n > NOBJ)
			return;
		if (hpm_mempool_get_bulk(mp, &objs[nobj], n) == 0)
			nobj += n;
	} else {
		if (n > nobj)
			n = nobj;
		nobj -= n;
		hpm_mempool_put_bulk(mp, &objs[nobj], n);
	}
}

static void ring_op(unsigned int op, struct in *in)
{
	unsigned int n = u8(in) % 48 + 1, got, k;
	void *buf[48];

	if (op < 2) {	/* enqueue bulk / burst */
		for (k = 0; k < n; k++)
			buf[k] = (void *)(next_token + k + 1);
		got = op ? hpm_ring_enqueue_burst(ring, buf, n, NULL) :
			   hpm_ring_enqueue_bulk(ring, buf, n, NULL);
		CHECK(op ? got == (n < ring->capacity - fifo_len ? n : ring->capacity - fifo_len) :
			   got == (fifo_len + n <= ring->capacity ? n : 0));
		for (k = 0; k < got; k++)
			fifo[(fifo_head + fifo_len++) % RING_SLOTS] = ++next_token;
	} else {	/* dequeue bulk / burst */
		got = op == 3 ? hpm_ring_dequeue_burst(ring, buf, n, NULL) :
				hpm_ring_dequeue_bulk(ring, buf, n, NULL);
		CHECK(op == 3 ? got == (n < fifo_len ? n : fifo_len) :
				got == (n <= fifo_len ? n : 0));
		for (k = 0; k < got; k++) {
			CHECK((uintptr_t)buf[k] == fifo[fifo_head]);
			fifo_head = (fifo_head + 1) % RING_SLOTS;
			fifo_len--;
		}
	}
	CHECK(hpm_ring_count(ring) == fifo_len);
}

static int mb_free_slot(void)
{
	for (int i = 0; i < NMBUF; i++)
		if (!mb[i])
			return i;
	return -1;
}

static void mbuf_op(unsigned int op, struct in *in)
{
	unsigned int i = u8(in) % NMBUF, j = u8(in) % NMBUF, len = u16(in) % 700;
	struct hpm_mbuf *m = mb[i];
	int slot = mb_free_slot();
	uint32_t pkt;
	char *p;

	switch (op) {
	case 0:		/* alloc */
		if (slot >= 0)
			mb[slot] = hpm_pktmbuf_alloc(mbp);
		return;
	case 1:		/* append: the last segment's tailroom, if direct */
		if (!m)
			return;
		pkt = m->pkt_len;
		p = hpm_pktmbuf_append(m, (uint16_t)len);
		CHECK(m->pkt_len == pkt + (p ? len : 0));
		if (p)
			memset(p, 0xa5, len);
		return;
	case 2:		/* prepend */
		if (!m)
			return;
		pkt = m->pkt_len;
		p = hpm_pktmbuf_prepend(m, (uint16_t)len);
		CHECK(m->pkt_len == pkt + (p ? len : 0));
		if (p)
			memset(p, 0x5a, len);
		return;
	case 3:		/* chain j behind i */
		if (!m || !mb[j] || i == j)
			return;
		if (hpm_pktmbuf_chain(m, mb[j]) == 0)
			mb[j] = NULL;
		return;
	case 4:		/* clone */
		if (!m || slot < 0)
			return;
		mb[slot] = hpm_pktmbuf_clone(m, mbp);
		if (mb[slot])
			CHECK(mb[slot]->pkt_len == m->pkt_len);
		return;
	case 5:		/* adj / trim */
		if (!m)
			return;
		pkt = m->pkt_len;
		if (len & 1) {
			if (hpm_pktmbuf_adj(m, (uint16_t)len))
				CHECK(m->pkt_len == pkt - len);
		} else if (hpm_pktmbuf_trim(m, (uint16_t)len) == 0) {
			CHECK(m->pkt_len == pkt - len);
		}
		return;
	default:	/* free */
		if (m)
			hpm_pktmbuf_free(m);
		mb[i] = NULL;
		return;
	}
}

/* Everything the model says is live, checked by the library's own checkers. */
static void check_all(bool heap)
{
	const char *why;

	for (int i = 0; i < NMBUF; i++) {
		if (mb[i] && hpm_mbuf_check(mb[i], 1, &why)) {
			fprintf(stderr, "fuzz/ops: mbuf %d: %s\n", i, why);
			abort();
		}
	}
	CHECK(hpm_mempool_in_use_count(mp) == nobj);
	if (heap)
		CHECK(hpm_malloc_validate() == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct in in = { data, size };
	unsigned int steps = 0;
	void *buf[48];
	unsigned int got;

	while (in.n && steps++ < 512) {
		unsigned int op = u8(&in) % 16;

		if (op < 4)
			heap_op(op, &in);
		else if (op < 6)
			pool_op(op - 4, &in);
		else if (op < 10)
			ring_op(op - 6, &in);
		else
			mbuf_op(op - 10, &in);
		/* The heap walk is the slow check: every 8th step and on heap ops. */
		check_all(op < 4 || steps % 8 == 0);
	}

	/* Free everything; the region must be as before the input. */
	for (int i = 0; i < NPTR; i++) {
		if (blk[i].p) {
			blk_check((unsigned int)i, blk[i].len);
			hpm_free(blk[i].p);
			blk[i].p = NULL;
		}
	}
	hpm_mempool_put_bulk(mp, objs, nobj);
	nobj = 0;
	while ((got = hpm_ring_dequeue_burst(ring, buf, 48, NULL)) != 0) {
		for (unsigned int k = 0; k < got; k++) {
			CHECK((uintptr_t)buf[k] == fifo[fifo_head]);
			fifo_head = (fifo_head + 1) % RING_SLOTS;
			fifo_len--;
		}
	}
	CHECK(fifo_len == 0);
	for (int i = 0; i < NMBUF; i++) {
		if (mb[i])
			hpm_pktmbuf_free(mb[i]);
		mb[i] = NULL;
	}
	hpm_mempool_cache_flush(mp);
	hpm_mempool_cache_flush(mbp);
	check_all(true);
	CHECK(hpm_mempool_audit(mp) == 0 && hpm_mempool_audit(mbp) == 0);
	CHECK(hpm_mempool_avail_count(mp) == NOBJ);
	CHECK(hpm_mempool_avail_count(mbp) == NMBUF);
	CHECK(heap_allocs() == heap_allocs0);
	return 0;
}
