/* SPDX-License-Identifier: MIT */
/* For tests that SIGKILL processes mid-operation (heap_robust, ring_robust,
 * killstorm): a clock, reaping, pointer order and a kill storm's round. */
#ifndef HPM_SELFTEST_KILL_H
#define HPM_SELFTEST_KILL_H

#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static inline long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* 0 when @pid was SIGKILLed, 1 when it exited normally, -1 otherwise. */
static inline int reap(pid_t pid)
{
	int st;

	if (waitpid(pid, &st, 0) != pid)
		return -1;
	if (WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL)
		return 0;
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return 1;
	return -1;
}

/* qsort() order of pointers, to find one seen twice. */
static inline int cmp_ptr(const void *a, const void *b)
{
	uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;

	return x < y ? -1 : x > y;
}

/* Seed rand() from HPMEM_STORM_SEED or the clock, and say which. */
static inline void storm_seed(void)
{
	const char *env = getenv("HPMEM_STORM_SEED");
	unsigned int seed = env ? strtoul(env, NULL, 0) :
			    (unsigned int)(time(NULL) ^ getpid());

	printf("# seed %u (HPMEM_STORM_SEED)\n", seed);
	srand(seed);
}

/*
 * One round of a storm: fork @n (at most 64) children that each run
 * @body(seed, @arg) until killed (it must not return), let them run 1-21
 * ms, SIGKILL them one by one at random moments and reap them. 0 when
 * every child died of that SIGKILL, -1 otherwise.
 */
static inline int kill_batch(int n, void (*body)(unsigned int seed, void *arg), void *arg)
{
	pid_t pids[64];
	int rc = 0;

	if (n > 64)
		return -1;
	fflush(stdout);
	fflush(stderr);
	for (int i = 0; i < n; i++) {
		unsigned int s = rand();

		pids[i] = fork();
		if (pids[i] < 0)
			return -1;
		if (pids[i] == 0) {
			alarm(30);	/* never outlive a stuck parent */
			body(s, arg);
			_exit(3);
		}
	}
	usleep(1000 + rand() % 20000);
	for (int i = 0; i < n; i++) {
		usleep(rand() % 2000);
		if (kill(pids[i], SIGKILL))
			rc = -1;
	}
	for (int i = 0; i < n; i++)
		if (reap(pids[i]) != 0)
			rc = -1;
	return rc;
}

#endif /* HPM_SELFTEST_KILL_H */
