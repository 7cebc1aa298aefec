// SPDX-License-Identifier: MIT
/* Thread slots: register/unregister, exit, exhaustion, fork, cleanup. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <hpmem/hpmem.h>

#include "config.h"
#include "kselftest_harness.h"

FIXTURE(slots) {
	char name[HPM_NAME_SIZE];
};

FIXTURE_SETUP(slots)
{
	struct hpm_init_opts o;

	hpm_init_opts_default(&o);
	snprintf(self->name, sizeof(self->name), "t-thread-%d", (int)getpid());
	o.region = self->name;
	o.socket_mem[0] = 8;
	ASSERT_EQ(0, hpm_init(&o));
}

FIXTURE_TEARDOWN(slots)
{
	EXPECT_EQ(0, hpm_cleanup());
}

static int used_slots(void)
{
	struct hpm_config *c = hpm_config();
	int n = 0;

	for (int i = 0; i < HPM_MAX_THREADS; i++)
		n += atomic_load(&c->threads[i].owner) != 0;
	return n;
}

TEST_F(slots, register_unregister)
{
	int idx;

	EXPECT_EQ(HPM_THREAD_NONE, hpm_thread_index());
	EXPECT_EQ(-ENOENT, hpm_thread_unregister());
	idx = hpm_thread_register();
	ASSERT_LE(0, idx);
	ASSERT_GT(HPM_MAX_THREADS, idx);
	EXPECT_EQ((unsigned int)idx, hpm_thread_index());
	/* Registering again is harmless and keeps the slot. */
	EXPECT_EQ(idx, hpm_thread_register());
	EXPECT_EQ(1, used_slots());
	EXPECT_EQ(0, hpm_thread_unregister());
	EXPECT_EQ(HPM_THREAD_NONE, hpm_thread_index());
	EXPECT_EQ(0, used_slots());
	EXPECT_EQ(-ENOENT, hpm_thread_unregister());
}

static void *reg_and_exit(void *arg)
{
	int *idx = arg;

	*idx = hpm_thread_register();
	return NULL;
}

TEST_F(slots, thread_exit_unregisters)
{
	pthread_t th[8];
	int idx[8];

	for (int i = 0; i < 8; i++)
		ASSERT_EQ(0, pthread_create(&th[i], NULL, reg_and_exit, &idx[i]));
	for (int i = 0; i < 8; i++)
		ASSERT_EQ(0, pthread_join(th[i], NULL));
	for (int i = 0; i < 8; i++)
		ASSERT_LE(0, idx[i]);
	/* The key destructor ran in each thread: nothing is held. */
	EXPECT_EQ(0, used_slots());
}

struct barrier_arg {
	pthread_barrier_t *b;
	int idx;
};

static void *reg_and_wait(void *arg)
{
	struct barrier_arg *a = arg;

	a->idx = hpm_thread_register();
	pthread_barrier_wait(a->b);	/* all registered */
	pthread_barrier_wait(a->b);	/* main has looked */
	return NULL;
}

TEST_F(slots, concurrent_threads_distinct)
{
	enum { N = 16 };
	pthread_barrier_t b;
	struct barrier_arg a[N];
	pthread_t th[N];
	bool seen[HPM_MAX_THREADS] = { false };

	ASSERT_EQ(0, pthread_barrier_init(&b, NULL, N + 1));
	for (int i = 0; i < N; i++) {
		a[i].b = &b;
		ASSERT_EQ(0, pthread_create(&th[i], NULL, reg_and_wait, &a[i]));
	}
	pthread_barrier_wait(&b);
	for (int i = 0; i < N; i++) {
		ASSERT_LE(0, a[i].idx);
		ASSERT_FALSE(seen[a[i].idx]);
		seen[a[i].idx] = true;
	}
	EXPECT_EQ(N, used_slots());
	pthread_barrier_wait(&b);
	for (int i = 0; i < N; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&b);
	EXPECT_EQ(0, used_slots());
}

static void *reg_only(void *arg)
{
	*(int *)arg = hpm_thread_register();
	return NULL;
}

TEST_F(slots, exhaustion_and_exited_thread_reclaim)
{
	struct hpm_config *c = hpm_config();
	uint64_t fake = (uint64_t)getpid() << 32 | (uint32_t)getpid();
	pthread_t th;
	int idx = -1;

	/* Every slot owned by a live thread (the main thread, faked). */
	for (int i = 0; i < HPM_MAX_THREADS; i++)
		atomic_store(&c->threads[i].owner, fake);
	EXPECT_EQ(-ENOSPC, hpm_thread_register());
	EXPECT_EQ(ENOSPC, hpm_errno);
	/* One owned by a thread id that does not exist in this process. */
	atomic_store(&c->threads[77].owner, (uint64_t)getpid() << 32 | 0x7ffffff0u);
	ASSERT_EQ(0, pthread_create(&th, NULL, reg_only, &idx));
	ASSERT_EQ(0, pthread_join(th, NULL));
	EXPECT_EQ(77, idx);
	for (int i = 0; i < HPM_MAX_THREADS; i++)
		atomic_store(&c->threads[i].owner, 0);
}

TEST_F(slots, fork_child_unregistered)
{
	int status, idx = hpm_thread_register();
	pid_t pid;

	ASSERT_LE(0, idx);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0)
		_exit(hpm_thread_index() == HPM_THREAD_NONE ? 0 : 1);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	EXPECT_EQ((unsigned int)idx, hpm_thread_index());
}

static void *reg_and_block(void *arg)
{
	pthread_barrier_t *b = arg;

	hpm_thread_register();
	pthread_barrier_wait(b);
	pthread_barrier_wait(b);
	return NULL;
}

TEST(cleanup_releases_process_slots)
{
	char name[HPM_NAME_SIZE];
	struct hpm_init_opts o;
	pthread_barrier_t b;
	pthread_t th;

	hpm_init_opts_default(&o);
	snprintf(name, sizeof(name), "t-thread-cl-%d", (int)getpid());
	o.region = name;
	o.socket_mem[0] = 8;
	ASSERT_EQ(0, hpm_init(&o));
	ASSERT_EQ(0, pthread_barrier_init(&b, NULL, 2));
	ASSERT_EQ(0, pthread_create(&th, NULL, reg_and_block, &b));
	pthread_barrier_wait(&b);
	ASSERT_LE(0, hpm_thread_register());
	EXPECT_EQ(2, used_slots());
	ASSERT_EQ(0, hpm_cleanup());
	EXPECT_EQ(HPM_THREAD_NONE, hpm_thread_index());
	/* The other thread exits after cleanup: its destructor must not crash. */
	pthread_barrier_wait(&b);
	pthread_join(th, NULL);
	pthread_barrier_destroy(&b);
	/* Re-init: a fresh table. */
	ASSERT_EQ(0, hpm_init(&o));
	EXPECT_EQ(0, used_slots());
	EXPECT_EQ(0, hpm_cleanup());
}

TEST_HARNESS_MAIN
