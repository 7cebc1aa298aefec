// SPDX-License-Identifier: MIT
/*
 * A process SIGKILLed inside an MP enqueue or an MC dequeue, on a ring or
 * on a mempool's default ring: the next user of that side takes the lock
 * over and carries on. Every object is seen exactly once, except that a
 * dead operation is all or nothing; objects a dead process held are lost.
 * Children are forks of the primary (anon backend: the region is shared).
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Before the first ring.h: the ring's steps are the crash hook's steps. */
#include "crash_step.h"
#define HPM_RING_TEST_STEP()	HPM_CRASH_STEP()

#include <hpmem/init.h>
#include <hpmem/malloc.h>
#include <hpmem/mempool.h>
#include <hpmem/ring.h>
#include <hpmem/thread.h>

#include "kselftest_harness.h"

#include "kill.h"

/* Steps of one MP/MC operation of more than one object (ring.h). */
#define OP_STEPS	4
#define PRE		10	/* tokens in the ring before the child runs */
#define BULK		8
#define MORE		4	/* tokens the parent adds afterwards */
#define MP_N		127
#define MPC_N		1023	/* each death may lose 33 */
/* Generous: one takeover costs well under a millisecond. */
#define GUARD_S		20

static void *tok(unsigned int tag, unsigned int i)
{
	return (void *)(uintptr_t)(tag << 16 | i);
}

/* A side is idle: unlocked, head at the tail. */
static bool side_idle(const struct hpm_ring_headtail *ht)
{
	return !hpm_robust_owner_pid(&ht->lock) &&
	       atomic_load(&ht->head) == atomic_load(&ht->tail);
}

FIXTURE(rr) {
	char region[HPM_NAME_SIZE];
	char why[128];
	bool up;
};

FIXTURE_SETUP(rr)
{
	struct hpm_init_opts o;
	int ret;

	hpm_init_opts_default(&o);
	snprintf(self->region, sizeof(self->region), "t-rrob-%d", getpid());
	o.region = self->region;
	o.socket_mem[0] = 32;
	ret = hpm_init(&o);
	if (ret) {
		snprintf(self->why, sizeof(self->why), "hpm_init: %s", strerror(-ret));
		return;
	}
	self->up = true;
}

FIXTURE_TEARDOWN(rr)
{
	if (self->up)
		EXPECT_EQ(0, hpm_cleanup());
}

#define UP() do {						\
	if (!self->up)						\
		SKIP(return, "%s", self->why);			\
} while (0)

/* The deterministic case: a child takes the producer lock and dies holding it. */
TEST_F_TIMEOUT(rr, holder_killed, 60)
{
	struct hpm_ring *r;
	void *o = tok(1, 1);
	long long t0;
	int fds[2];
	pid_t pid;
	char c;

	UP();
	r = hpm_ring_create("rr-hold", 64, 0, 0);
	ASSERT_NE(NULL, r);
	ASSERT_EQ(0, pipe(fds));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		hpm_robust_self_init_();
		if (!hpm_robust_trylock_(&r->prod.lock) || write(fds[1], "L", 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	ASSERT_EQ(1, read(fds[0], &c, 1));
	close(fds[0]);
	close(fds[1]);
	ASSERT_EQ(pid, hpm_robust_owner_pid(&r->prod.lock));
	ASSERT_EQ(0, kill(pid, SIGKILL));
	ASSERT_EQ(0, reap(pid));

	alarm(GUARD_S);
	t0 = now_ms();
	ASSERT_EQ(1, hpm_ring_mp_enqueue_bulk(r, &o, 1, NULL));
	/* A few spin rounds and one liveness check, not a stuck ring. */
	EXPECT_GT(1000, now_ms() - t0);
	o = NULL;
	ASSERT_EQ(1, hpm_ring_mc_dequeue_bulk(r, &o, 1, NULL));
	alarm(0);
	EXPECT_EQ(tok(1, 1), o);
	EXPECT_TRUE(side_idle(&r->prod));
	EXPECT_TRUE(side_idle(&r->cons));
	hpm_ring_free(r);
}

/*
 * Kill a child at each step of an MP enqueue of BULK tokens, then of an MC
 * dequeue of BULK, in turn. The parent then enqueues and drains: the ring
 * holds exactly the tokens the completed operations leave, in FIFO order.
 */
TEST_F_TIMEOUT(rr, ring_killed_at_every_step, 120)
{
	void *in[PRE + BULK + MORE], *out[2 * (PRE + BULK + MORE)];
	struct hpm_ring *r;
	unsigned int i, k, n, got;
	int step, rc;

	UP();
	r = hpm_ring_create("rr-steps", 64, 0, 0);
	ASSERT_NE(NULL, r);
	for (step = 1;; step++) {
		bool enq_done, deq_done;
		long long t0;
		pid_t pid;

		for (i = 0; i < PRE; i++)
			in[i] = tok(1, i);
		ASSERT_EQ(PRE, hpm_ring_mp_enqueue_bulk(r, in, PRE, NULL));
		fflush(stdout);
		fflush(stderr);
		pid = fork();
		ASSERT_LE(0, pid);
		if (pid == 0) {
			void *mine[BULK];

			for (i = 0; i < BULK; i++)
				mine[i] = tok(2, i);
			hpm_crash_countdown = step;
			if (hpm_ring_mp_enqueue_bulk(r, mine, BULK, NULL) != BULK)
				_exit(2);
			if (hpm_ring_mc_dequeue_bulk(r, mine, BULK, NULL) != BULK)
				_exit(3);
			_exit(0);
		}
		rc = reap(pid);
		ASSERT_LE(0, rc) TH_LOG("step %d: child failed", step);
		if (rc == 1)
			break;
		/* Step OP_STEPS of an operation comes after its tail store. */
		enq_done = step >= OP_STEPS;
		deq_done = step >= 2 * OP_STEPS;

		alarm(GUARD_S);
		t0 = now_ms();
		for (i = 0; i < MORE; i++)
			in[i] = tok(3, i);
		ASSERT_EQ(MORE, hpm_ring_mp_enqueue_bulk(r, in, MORE, NULL))
			TH_LOG("step %d", step);
		n = 0;
		while ((got = hpm_ring_mc_dequeue_burst(r, out + n, 5, NULL)))
			n += got;
		alarm(0);
		EXPECT_GT(1000, now_ms() - t0) TH_LOG("step %d", step);

		/* What must be left, in order. */
		i = 0;
		for (k = deq_done ? BULK : 0; k < PRE; k++)
			in[i++] = tok(1, k);
		for (k = 0; enq_done && k < BULK; k++)
			in[i++] = tok(2, k);
		for (k = 0; k < MORE; k++)
			in[i++] = tok(3, k);
		ASSERT_EQ(i, n) TH_LOG("step %d: %u tokens, expected %u", step, n, i);
		for (k = 0; k < n; k++)
			ASSERT_EQ(in[k], out[k]) TH_LOG("step %d, token %u", step, k);
		ASSERT_TRUE(side_idle(&r->prod)) TH_LOG("step %d", step);
		ASSERT_TRUE(side_idle(&r->cons)) TH_LOG("step %d", step);
		ASSERT_TRUE(hpm_ring_empty(r));
	}
	ASSERT_EQ(2 * OP_STEPS + 1, step);
	printf("# %d steps, each killed once\n", step - 1);
	fflush(stdout);	/* the harness ends a test with _exit() */
	hpm_ring_free(r);
}

/*
 * Get all @avail objects of @mp (no cache in this process's way), check
 * they are distinct and that no more are there, and put them back.
 */
static int drain_check(struct hpm_mempool *mp, unsigned int avail)
{
	void *objs[MP_N + 1];
	int bad = 0;

	if (avail > MP_N || hpm_mempool_get_bulk(mp, objs, avail))
		return -1;
	if (hpm_mempool_get_bulk(mp, &objs[avail], 1) == 0)
		bad = -2;	/* one more than counted */
	qsort(objs, avail, sizeof(objs[0]), cmp_ptr);
	for (unsigned int i = 1; i < avail; i++)
		if (objs[i] == objs[i - 1])
			bad = -3;
	hpm_mempool_put_bulk(mp, objs, avail + (bad == -2));
	return bad;
}

/*
 * The same for a mempool on the default ring (no cache: every get and put
 * is a ring operation): kill at each step of a get of BULK, then of the
 * put of those objects. A dead get that completed loses its objects.
 */
TEST_F_TIMEOUT(rr, mempool_killed_at_every_step, 120)
{
	struct hpm_mempool *mp;
	unsigned int lost = 0;
	int step, rc;

	UP();
	mp = hpm_mempool_create("rr-mp", MP_N, 64, 0, 0, NULL, NULL, 0, 0);
	ASSERT_NE(NULL, mp);
	ASSERT_EQ(HPM_MEMPOOL_OPS_RING_MP_MC, mp->ops_id);
	for (step = 1;; step++) {
		unsigned int avail;
		pid_t pid;

		fflush(stdout);
		fflush(stderr);
		pid = fork();
		ASSERT_LE(0, pid);
		if (pid == 0) {
			void *objs[BULK];

			hpm_crash_countdown = step;
			if (hpm_mempool_get_bulk(mp, objs, BULK))
				_exit(2);
			for (unsigned int i = 0; i < BULK; i++)
				memset(objs[i], 0x5c, 64);
			hpm_mempool_put_bulk(mp, objs, BULK);
			_exit(0);
		}
		rc = reap(pid);
		ASSERT_LE(0, rc) TH_LOG("step %d: child failed", step);
		if (rc == 1)
			break;
		/* Killed after the get's tail store, before the put's. */
		if (step >= OP_STEPS && step < 2 * OP_STEPS)
			lost += BULK;

		alarm(GUARD_S);
		avail = hpm_mempool_avail_count(mp);
		EXPECT_EQ(MP_N - lost, avail) TH_LOG("step %d", step);
		EXPECT_EQ(0, hpm_mempool_audit(mp));
		ASSERT_EQ(0, drain_check(mp, avail)) TH_LOG("step %d", step);
		alarm(0);
		EXPECT_EQ(avail, hpm_mempool_avail_count(mp));
		EXPECT_TRUE(side_idle(&((struct hpm_ring *)mp->pool_data)->prod));
		EXPECT_TRUE(side_idle(&((struct hpm_ring *)mp->pool_data)->cons));
	}
	ASSERT_EQ(2 * OP_STEPS + 1, step);
	printf("# %d steps, each killed once; %u objects lost with the dead\n", step - 1, lost);
	fflush(stdout);
	hpm_mempool_free(mp);
}

/*
 * A mempool with a cache: refills and flushes are ring operations made
 * inside the library. Kill the child at each step of them; whatever the
 * step, no object is both in the ring and in the dead thread's cache
 * (which the next owner of its thread slot inherits): lost, never twice.
 */
TEST_F_TIMEOUT(rr, mempool_cache_killed_at_every_step, 120)
{
	static void *seen[2 * MPC_N];
	struct hpm_mempool_cache *c;
	struct hpm_mempool *mp;
	struct hpm_ring *r;
	unsigned int n, k, lost_now, total = MPC_N;
	int step, rc, *idx;

	UP();
	mp = hpm_mempool_create("rr-mpc", MPC_N, 64, 32, 0, NULL, NULL, 0, 0);
	ASSERT_NE(NULL, mp);
	r = mp->pool_data;
	idx = hpm_zmalloc(NULL, sizeof(*idx), 0);
	ASSERT_NE(NULL, idx);
	for (step = 1;; step++) {
		pid_t pid;

		fflush(stdout);
		fflush(stderr);
		*idx = -1;
		pid = fork();
		ASSERT_LE(0, pid);
		if (pid == 0) {
			void *o[33];

			*idx = hpm_thread_register();
			if (*idx < 0)
				_exit(2);
			hpm_crash_countdown = step;
			/* refill (a ring dequeue of 32), then from the cache */
			if (hpm_mempool_get_bulk(mp, o, 16) || hpm_mempool_get_bulk(mp, o + 16, 16))
				_exit(3);
			/* the cache is empty: refill (17, 16 stay) */
			if (hpm_mempool_get_bulk(mp, o + 32, 1))
				_exit(4);
			hpm_mempool_put_bulk(mp, o, 16);	/* cache full: 32 */
			hpm_mempool_put_bulk(mp, o + 16, 16);	/* flush to 16, + 16 */
			hpm_mempool_put_bulk(mp, o + 32, 1);	/* flush to 16, + 1 */
			hpm_mempool_cache_flush(mp);		/* the last 17 */
			_exit(0);
		}
		rc = reap(pid);
		ASSERT_LE(0, rc) TH_LOG("step %d: child failed", step);
		ASSERT_LE(0, *idx);
		alarm(GUARD_S);
		/* Everything in the ring, then the dead thread's cache. */
		n = 0;
		while ((k = hpm_ring_mc_dequeue_burst(r, seen + n, MPC_N, NULL)))
			n += k;
		c = hpm_mempool_cache_(mp, (unsigned int)*idx);
		ASSERT_GE(mp->cache_size, c->len);
		memcpy(seen + n, c->objs, c->len * sizeof(void *));
		n += c->len;
		qsort(seen, n, sizeof(seen[0]), cmp_ptr);
		for (k = 1; k < n; k++)
			ASSERT_NE(seen[k - 1], seen[k]) TH_LOG("step %d: %p twice", step, seen[k]);
		/* As the slot's next owner would: back to the ring. */
		c->len = 0;
		ASSERT_EQ(n, hpm_ring_mp_enqueue_bulk(r, seen, n, NULL));
		alarm(0);
		ASSERT_TRUE(side_idle(&r->prod));
		ASSERT_TRUE(side_idle(&r->cons));
		ASSERT_GE(total, n);
		lost_now = total - n;
		total = n;
		if (rc == 1) {
			ASSERT_EQ(0, lost_now);
			break;
		}
	}
	/* two refills, two flushes to half and the final flush */
	ASSERT_EQ(5 * OP_STEPS + 1, step);
	printf("# %d steps, each killed once; %u objects lost with the dead\n", step - 1,
	       MPC_N - total);
	fflush(stdout);
	hpm_free(idx);
	hpm_mempool_free(mp);
}

#define STORM_KILLS	200
#define STORM_BATCH	8
#define STORM_TOKENS	2048	/* each kill may lose a child's BULK */
#define STORM_MP_N	4095

/*
 * Children registered as threads (so the mempool's caches are in play)
 * move tokens out of the ring and back, and objects out of the pool and
 * back, until killed.
 */
struct storm {
	struct hpm_ring *r;
	struct hpm_mempool *mp;
};

static void churn(unsigned int seed, void *arg)
{
	struct hpm_ring *r = ((struct storm *)arg)->r;
	struct hpm_mempool *mp = ((struct storm *)arg)->mp;
	void *t[BULK], *o[BULK];

	if (hpm_thread_register() < 0)
		_exit(4);
	for (;;) {
		unsigned int n = 1 + rand_r(&seed) % BULK, got;

		got = hpm_ring_mc_dequeue_burst(r, t, n, NULL);
		if (got && hpm_ring_mp_enqueue_bulk(r, t, got, NULL) != got)
			_exit(5);	/* the tokens fit where they came from */
		if (hpm_mempool_get_bulk(mp, o, n) == 0) {
			memset(o[0], 0x77, 8);
			hpm_mempool_put_bulk(mp, o, n);
		}
	}
}

/* Children in ring and mempool loops, killed at random times. */
TEST_F_TIMEOUT(rr, kill_storm, 300)
{
	static void *t[STORM_TOKENS];
	struct hpm_mempool *mp;
	struct hpm_ring *r;
	int kills = 0, held = 0;
	unsigned int n, got, avail;
	struct storm arg;
	/* static: the harness's longjmp would clobber a local written by memcpy */
	static void *x;

	UP();
	storm_seed();
	r = hpm_ring_create("rr-storm", 2 * STORM_TOKENS, 0, 0);
	ASSERT_NE(NULL, r);
	for (unsigned int i = 0; i < STORM_TOKENS; i++)
		t[i] = tok(1, i);
	ASSERT_EQ(STORM_TOKENS, hpm_ring_mp_enqueue_bulk(r, t, STORM_TOKENS, NULL));
	mp = hpm_mempool_create("rr-smp", STORM_MP_N, 64, 32, 0, NULL, NULL, 0, 0);
	ASSERT_NE(NULL, mp);
	arg.r = r;
	arg.mp = mp;
	while (kills < STORM_KILLS) {
		ASSERT_EQ(0, kill_batch(STORM_BATCH, churn, &arg));
		kills += STORM_BATCH;
		/* Every child is dead: a held lock here was held by the dead. */
		held += !!hpm_robust_owner_pid(&r->prod.lock) +
			!!hpm_robust_owner_pid(&r->cons.lock);
		alarm(GUARD_S);
		ASSERT_EQ(1, hpm_ring_mc_dequeue_bulk(r, &x, 1, NULL));
		ASSERT_EQ(1, hpm_ring_mp_enqueue_bulk(r, &x, 1, NULL));
		ASSERT_EQ(0, hpm_mempool_audit(mp)) TH_LOG("after %d kills", kills);
		alarm(0);
		ASSERT_TRUE(side_idle(&r->prod));
		ASSERT_TRUE(side_idle(&r->cons));
	}

	/* Each token at most once; the missing ones died with a child. */
	alarm(GUARD_S);
	n = 0;
	while (n < STORM_TOKENS &&
	       (got = hpm_ring_mc_dequeue_burst(r, t + n, STORM_TOKENS - n, NULL)))
		n += got;
	EXPECT_TRUE(hpm_ring_empty(r));
	alarm(0);
	ASSERT_LE(STORM_TOKENS - kills * BULK, (int)n);
	qsort(t, n, sizeof(t[0]), cmp_ptr);
	for (unsigned int i = 0; i < n; i++) {
		ASSERT_GE((uintptr_t)tok(1, STORM_TOKENS - 1), (uintptr_t)t[i]);
		ASSERT_LE((uintptr_t)tok(1, 0), (uintptr_t)t[i]);
		if (i)
			ASSERT_NE(t[i - 1], t[i]) TH_LOG("token %p seen twice", t[i]);
	}
	/* The dead's caches stay counted; what they had in hand is gone. */
	avail = hpm_mempool_avail_count(mp);
	EXPECT_LE(STORM_MP_N - kills * BULK, (int)avail);
	EXPECT_EQ(0, hpm_mempool_audit(mp));
	printf("# %d kills, %d ring sides left locked by the dead; %u of %u tokens and "
	       "%u of %u objects left\n", kills, held, n, STORM_TOKENS, avail, STORM_MP_N);
	fflush(stdout);
	hpm_mempool_free(mp);
	hpm_ring_free(r);
}

TEST_HARNESS_MAIN
