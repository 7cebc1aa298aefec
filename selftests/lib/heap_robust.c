// SPDX-License-Identifier: MIT
/*
 * A process SIGKILLed while it holds a heap's lock: the next locker takes
 * the lock over, rebuilds the heap and carries on; the heap check passes.
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

#include <hpmem/init.h>
#include <hpmem/malloc.h>

#include "kselftest_harness.h"

#include "crash_step.h"
#include "kill.h"
#include "malloc_heap.h"

#define KiB	1024UL
#define MiB	(1024 * KiB)
/* Above the thread caches' largest class: always the locked path. */
#define BIG	(160 * KiB)

FIXTURE(robust) {
	char region[HPM_NAME_SIZE];
	char why[128];
	struct hpm_heap *h;	/* the heap hpm_malloc() uses first */
	bool up;
};

FIXTURE_SETUP(robust)
{
	struct hpm_init_opts o;
	void *p;
	int ret;

	hpm_init_opts_default(&o);
	snprintf(self->region, sizeof(self->region), "t-hrob-%d", getpid());
	o.region = self->region;
	o.socket_mem[0] = 128;
	ret = hpm_init(&o);
	if (ret) {
		snprintf(self->why, sizeof(self->why), "hpm_init: %s", strerror(-ret));
		return;
	}
	self->up = true;
	p = hpm_malloc(NULL, BIG, 0);
	ASSERT_NE(NULL, p);
	self->h = &hpm_heap_table()[hpm_heap_socket_of(p)];
	hpm_free(p);
}

FIXTURE_TEARDOWN(robust)
{
	if (self->up) {
		EXPECT_EQ(0, hpm_malloc_validate());
		EXPECT_EQ(0, hpm_cleanup());
	}
}

#define UP() do {						\
	if (!self->up)						\
		SKIP(return, "%s", self->why);			\
} while (0)

/* Allocate and free in the parent; each block must be ours alone. */
static int heap_usable(void)
{
	void *b[16];

	for (int i = 0; i < 16; i++) {
		b[i] = hpm_malloc(NULL, i & 1 ? BIG : 1 + i * 700, i & 2 ? 4096 : 0);
		if (!b[i])
			return -1;
		memset(b[i], 0xc3, i & 1 ? BIG : 1 + i * 700);
	}
	for (int i = 0; i < 16; i++)
		hpm_free(b[i]);
	return hpm_malloc_validate();
}

/* The deterministic case: a child takes the lock itself and dies holding it. */
TEST_F_TIMEOUT(robust, holder_killed, 60)
{
	int fds[2];
	long long t0;
	void *p;
	char c;
	pid_t pid;

	UP();
	ASSERT_EQ(0, pipe(fds));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		hpm_robust_lock(&self->h->lock);
		if (write(fds[1], "L", 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	ASSERT_EQ(1, read(fds[0], &c, 1));
	close(fds[0]);
	close(fds[1]);
	ASSERT_EQ(pid, hpm_robust_owner_pid(&self->h->lock));
	ASSERT_EQ(0, kill(pid, SIGKILL));
	ASSERT_EQ(0, reap(pid));

	t0 = now_ms();
	p = hpm_malloc(NULL, BIG, 0);
	ASSERT_NE(NULL, p);
	/* A few spin rounds and one liveness check, not a stuck heap. */
	EXPECT_GT(1000, now_ms() - t0);
	memset(p, 0x5a, BIG);
	hpm_free(p);
	EXPECT_EQ(0, hpm_robust_owner_pid(&self->h->lock));
	EXPECT_EQ(0, hpm_malloc_validate());
	EXPECT_EQ(0, heap_usable());
}

/*
 * One fixed sequence that makes every kind of locked update: split with a
 * front gap (alignment), split of a tail, frees merging with one and both
 * neighbours, realloc growing in place and shrinking, cache drains. Small
 * blocks, since each death leaks what the child holds; alignments above
 * 16 skip the thread cache. Returns only when nothing killed it.
 */
static void sequence(void)
{
	void *a[8];

	for (int i = 0; i < 8; i++) {
		a[i] = hpm_malloc(NULL, 3000 + i * 512, i & 1 ? 4096 : 64);
		if (!a[i])
			_exit(2);
	}
	hpm_free(a[2]);
	hpm_free(a[4]);
	hpm_free(a[3]);
	hpm_heap_cache_flush();		/* alone, then both neighbours free */
	a[1] = hpm_realloc(a[1], 9000, 0);	/* grows into a[2..4]'s space */
	if (!a[1])
		_exit(3);
	a[1] = hpm_realloc(a[1], 1000, 0);	/* shrinks */
	if (!a[1])
		_exit(4);
	for (int i = 0; i < 8; i++)
		hpm_free(hpm_malloc(NULL, 16 + i * 64, 256));
	hpm_free(hpm_malloc(NULL, BIG, 0));
	for (int i = 0; i < 8; i++)
		if (i < 2 || i > 4)
			hpm_free(a[i]);
	hpm_heap_cache_flush();
}

/* Kill a holder at each step of the sequence in turn, first to last. */
TEST_F_TIMEOUT(robust, killed_at_every_step, 300)
{
	struct hpm_heap_stats st0, st;
	int step, r;

	UP();
	ASSERT_EQ(0, hpm_heap_stats(self->h, &st0));
	for (step = 1;; step++) {
		pid_t pid;

		fflush(stdout);
		fflush(stderr);
		pid = fork();
		ASSERT_LE(0, pid);
		if (pid == 0) {
			hpm_crash_countdown = step;
			sequence();
			_exit(0);
		}
		r = reap(pid);
		ASSERT_LE(0, r) TH_LOG("step %d: child failed", step);
		if (r == 1)
			break;
		ASSERT_EQ(0, heap_usable()) TH_LOG("after a death at step %d", step);
		ASSERT_EQ(0, hpm_robust_owner_pid(&self->h->lock));
	}
	ASSERT_LT(20, step);	/* the sequence has that many locked steps */
	ASSERT_EQ(0, hpm_heap_stats(self->h, &st));
	printf("# %d steps, each killed once; %llu bytes lost to the dead\n", step - 1,
	       (unsigned long long)(st.alloc - st0.alloc));
	fflush(stdout);	/* the harness ends a test with _exit() */
}

/* Children in malloc/free loops, killed at random times. */
static void churn(unsigned int seed, void *arg)
{
	void *b[8] = { 0 };

	for (unsigned int n = 0;; n++) {
		unsigned int i = rand_r(&seed) % 8;

		if (b[i]) {
			hpm_free(b[i]);
			b[i] = NULL;
		} else {
			size_t sz = rand_r(&seed) & 1 ? 1 + rand_r(&seed) % 2048 :
				    1 + rand_r(&seed) % (256 * KiB);

			b[i] = hpm_malloc(NULL, sz, rand_r(&seed) % 4 ? 0 : 256);
			if (b[i])
				memset(b[i], 0x77, 8);
		}
		if (!(n % 32))
			hpm_heap_cache_flush();
	}
}

#define STORM_KILLS	200
#define STORM_BATCH	8

TEST_F_TIMEOUT(robust, kill_storm, 300)
{
	struct hpm_heap_stats st0, st;
	int kills = 0, held = 0;

	UP();
	storm_seed();
	ASSERT_EQ(0, hpm_heap_stats(self->h, &st0));
	while (kills < STORM_KILLS) {
		ASSERT_EQ(0, kill_batch(STORM_BATCH, churn, NULL));
		kills += STORM_BATCH;
		/* Every child is dead: a held lock here was held by the dead. */
		held += hpm_robust_owner_pid(&self->h->lock) != 0;
		ASSERT_EQ(0, heap_usable()) TH_LOG("after %d kills", kills);
		ASSERT_EQ(0, hpm_robust_owner_pid(&self->h->lock));
	}
	ASSERT_EQ(0, hpm_heap_stats(self->h, &st));
	printf("# %d kills, %d with the heap lock held; %llu bytes lost to the dead\n",
	       kills, held, (unsigned long long)(st.alloc - st0.alloc));
	fflush(stdout);
}

TEST_HARNESS_MAIN
