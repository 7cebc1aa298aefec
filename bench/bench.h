/* SPDX-License-Identifier: MIT */
/*
 * What hpm_bench and dpdk_bench share: the scenario parameters (identical on
 * both sides by construction), timing, CPU pinning and the output format.
 */
#ifndef HPM_BENCH_H
#define HPM_BENCH_H

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Measured loops stay functions of their own: profile.sh counts them. */
#define BENCH_LOOP	__attribute__((noinline))

#ifndef unlikely
#define unlikely(x)	__builtin_expect(!!(x), 0)
#endif

/* Memory each side initialises with (MiB, node 0), also the init scenario. */
#define BENCH_MEM_MB		256

/* mempool scenarios */
#define BENCH_MP_N		8191
#define BENCH_MP_ELT		2048
#define BENCH_MP_CACHE		512
/* ring scenarios: capacity (power of two) and burst */
#define BENCH_RING_SIZE		1024
#define BENCH_BULK		32
/* malloc scenarios */
#define BENCH_MALLOC_WIN	256
#define BENCH_MIXED_WIN		1024
#define BENCH_MIXED_MIN		16
#define BENCH_MIXED_MAX		65536
#define BENCH_MIXED_NSIZES	8192	/* power of two */
#define BENCH_SEED		0x9e3779b97f4a7c15ULL
/* mbuf scenarios */
#define BENCH_MBUF_N		8191
#define BENCH_MBUF_CACHE	256
/* memzone scenarios */
#define BENCH_MZ_COUNT		1000
#define BENCH_MZ_LEN		64

/*
 * Work per scenario and round at --scale 1, in objects (one object = a get
 * and a put, an enqueue and a dequeue, a malloc and a free, a lookup).
 * Chosen so that a round of each side takes a few seconds on a 2-core VM.
 */
#define BENCH_OPS_FAST		(8u << 20)
#define BENCH_OPS_2THR		(32u << 20)	/* mempool, per thread */
#define BENCH_OPS_MEDIUM	(2u << 20)
#define BENCH_OPS_SLOW		(256u << 10)
#define BENCH_OPS_LOOKUP	(64u << 10)
/* Processes spawned per round for the init scenario. */
#define BENCH_INIT_RUNS		3

struct bench_args {
	double scale;
	const char *only;	/* scenario id or "group/" to run, or NULL */
	int init_once;		/* internal: child of the init scenario */
	int init_runs;
	uint64_t ops;		/* objects per sub-run for every row (profile.sh) */
	const char *argv0;
};

static inline uint64_t bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/*
 * Each round measures every scenario in BENCH_SUBRUNS sub-runs and reports
 * the fastest: on a shared machine noise only ever adds time. The runner
 * then takes the median of the rounds.
 */
#define BENCH_SUBRUNS		3

#define BENCH_BEST_N(nruns, expr) ({					\
	double best_ = -1;						\
	for (int r_ = 0; r_ < (nruns); r_++) {				\
		double v_ = (expr);					\
									\
		if (v_ < 0) {						\
			best_ = -1;					\
			break;						\
		}							\
		if (best_ < 0 || v_ < best_)				\
			best_ = v_;					\
	}								\
	best_;								\
})
#define BENCH_BEST(expr)	BENCH_BEST_N(BENCH_SUBRUNS, expr)
/*
 * A producer and a consumer on one ring settle into one of a few regimes
 * (lockstep on shared lines, or batches) for a whole sub-run: more
 * sub-runs find the fast one more reliably, on both sides alike.
 */
#define BENCH_SUBRUNS_2THR	7

/*
 * Single-threaded loops are timed in the thread's CPU time (user + system,
 * page faults included): the same as wall time on an idle machine, but
 * without the time other tasks hold the CPU on a busy one. Two-thread
 * scenarios and init use wall time (bench_now_ns).
 */
static inline uint64_t bench_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Objects per sub-run for a scenario of @base objects per round. */
static inline uint64_t bench_ops(const struct bench_args *a, uint64_t base)
{
	uint64_t n = (uint64_t)((double)base * a->scale) / BENCH_SUBRUNS;

	if (a->ops)
		n = a->ops;
	/* every loop works in bursts of BENCH_BULK */
	n &= ~(uint64_t)(BENCH_BULK - 1);
	return n < 4 * BENCH_BULK ? 4 * BENCH_BULK : n;
}

/* --only ID runs that scenario; --only GROUP/ (e.g. "mempool/") a group. */
static inline int bench_want(const struct bench_args *a, const char *id)
{
	size_t n;

	if (!a->only)
		return 1;
	n = strlen(a->only);
	return !strcmp(id, a->only) ||
	       (n && a->only[n - 1] == '/' && !strncmp(id, a->only, n));
}

/* Whether any scenario under @prefix (e.g. "mempool/") is wanted. */
static inline int bench_group(const struct bench_args *a, const char *prefix)
{
	return !a->only || !strncmp(a->only, prefix, strlen(prefix)) ||
	       !strncmp(prefix, a->only, strlen(a->only));
}

/* One result line; the runner parses nothing else on stdout. */
static inline void bench_result(const char *id, double ns)
{
	printf("RESULT %s %.3f\n", id, ns);
	fflush(stdout);
}

static inline int bench_pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return -pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

/* xorshift64*: same sequence in both processes, no libc state involved. */
static inline uint64_t bench_rand(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545f4914f6cdd1dULL;
}

/* Log-uniform sizes in [MIN, MAX]: as many 16-31 B blocks as 32-63 B ones. */
static inline void bench_mixed_sizes(uint32_t *sizes)
{
	uint64_t s = BENCH_SEED;
	double lo = log((double)BENCH_MIXED_MIN);
	double hi = log((double)BENCH_MIXED_MAX);

	for (unsigned int i = 0; i < BENCH_MIXED_NSIZES; i++) {
		double u = (double)(bench_rand(&s) >> 11) / (double)(1ull << 53);
		double v = exp(lo + u * (hi - lo));

		sizes[i] = v > BENCH_MIXED_MAX ? BENCH_MIXED_MAX : (uint32_t)v;
	}
}

/*
 * Malloc loops, instantiated once per allocator so that each side calls its
 * allocator directly (no function pointer in the measured loop). A window of
 * live blocks is filled first; each step frees the oldest block and
 * allocates a new one, writing its first byte as a user would. A failed
 * allocation returns -1 (the process then reports no valid figure).
 */
#define BENCH_DEFINE_MALLOC(tag, ALLOC, FREE)				\
static BENCH_LOOP double						\
bench_malloc_##tag(const uint32_t *sizes, size_t fixed, unsigned int win, \
		   uint64_t ops)					\
{									\
	void **w = calloc(win, sizeof(*w));				\
	uint64_t t0, t1;						\
									\
	if (!w)								\
		return -1;						\
	for (unsigned int i = 0; i < win; i++) {			\
		size_t sz = sizes ? sizes[i % BENCH_MIXED_NSIZES] : fixed; \
		w[i] = ALLOC(sz);					\
		if (!w[i])						\
			return -1;					\
		*(volatile char *)w[i] = 1;				\
	}								\
	t0 = bench_cpu_ns();						\
	for (uint64_t i = 0; i < ops; i++) {				\
		unsigned int k = (unsigned int)(i % win);		\
		size_t sz = sizes ?					\
			sizes[(i + win) & (BENCH_MIXED_NSIZES - 1)] : fixed; \
									\
		FREE(w[k]);						\
		w[k] = ALLOC(sz);					\
		if (unlikely(!w[k]))					\
			return -1;					\
		*(volatile char *)w[k] = 1;				\
	}								\
	t1 = bench_cpu_ns();						\
	for (unsigned int i = 0; i < win; i++)				\
		FREE(w[i]);						\
	free(w);							\
	return (double)(t1 - t0) / (double)ops;				\
}

/*
 * The 2-thread rows need both threads running at once, which a busy
 * machine does not grant to ordinary tasks. Each thread of those rows
 * (on both sides alike) takes SCHED_FIFO priority 1 for the measured loop
 * only, when permitted (root); RT throttling still leaves others 5%.
 */
static inline void bench_rt(int on)
{
	struct sched_param sp = { .sched_priority = on ? 1 : 0 };

	pthread_setschedparam(pthread_self(), on ? SCHED_FIFO : SCHED_OTHER,
			      &sp);
}

/* A start line for two threads, so neither measures the other's setup. */
struct bench_gate {
	atomic_uint ready;
	atomic_uint go;
};

static inline void bench_gate_wait(struct bench_gate *g)
{
	atomic_fetch_add(&g->ready, 1);
	while (!atomic_load_explicit(&g->go, memory_order_acquire))
		__builtin_ia32_pause();
}

/* Called by the timing thread: waits for @n threads, then starts them. */
static inline uint64_t bench_gate_open(struct bench_gate *g, unsigned int n)
{
	while (atomic_load(&g->ready) < n)
		__builtin_ia32_pause();
	uint64_t t = bench_now_ns();

	atomic_store_explicit(&g->go, 1, memory_order_release);
	return t;
}

/*
 * The init scenario: spawn this binary again with --init-once, which inits
 * and cleans up; measure the child's whole life (exec, dynamic linking,
 * init, cleanup, exit) in wall time and in CPU time (user + system). The
 * child reports the time of the init+cleanup calls alone on stdout.
 */
static inline int bench_init_child(const char *argv0, double *wall,
				   double *cpu, double *call)
{
	char *argv[] = { (char *)argv0, "--init-once", NULL };
	const char *self = "/proc/self/exe";
	extern char **environ;
	posix_spawn_file_actions_t fa;
	struct rusage ru;
	char buf[256];
	int pfd[2], st;
	ssize_t len;
	uint64_t t0, t1;
	pid_t pid;

	if (pipe(pfd))
		return -errno;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
	posix_spawn_file_actions_addclose(&fa, pfd[0]);
	t0 = bench_now_ns();
	st = posix_spawn(&pid, self, &fa, NULL, argv, environ);
	if (st) {
		posix_spawn_file_actions_destroy(&fa);
		close(pfd[0]);
		close(pfd[1]);
		return -st;
	}
	close(pfd[1]);
	len = read(pfd[0], buf, sizeof(buf) - 1);
	if (wait4(pid, &st, 0, &ru) < 0)
		return -errno;
	t1 = bench_now_ns();
	posix_spawn_file_actions_destroy(&fa);
	close(pfd[0]);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0 || len <= 0)
		return -EIO;
	buf[len] = 0;
	*call = strtod(buf, NULL);
	*wall = (double)(t1 - t0);
	*cpu = (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e9 +
	       (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e3;
	return 0;
}

/* Best of init_runs children, each figure on its own. */
static inline void bench_init_scenario(const struct bench_args *a)
{
	double wall = -1, cpu = -1, call = -1;

	if (!bench_group(a, "init/"))
		return;
	for (int i = 0; i < a->init_runs; i++) {
		double w = 0, c = 0, k = 0;

		if (bench_init_child(a->argv0, &w, &c, &k)) {
			fprintf(stderr, "bench: init child %d failed\n", i);
			return;
		}
		wall = (wall < 0 || w < wall) ? w : wall;
		cpu = (cpu < 0 || c < cpu) ? c : cpu;
		call = (call < 0 || k < call) ? k : call;
	}
	bench_result("init/process-wall", wall);
	bench_result("init/process-cpu", cpu);
	bench_result("init/call-wall", call);
}

static inline int bench_parse(struct bench_args *a, int argc, char **argv)
{
	a->scale = 1.0;
	a->only = NULL;
	a->init_once = 0;
	a->init_runs = BENCH_INIT_RUNS;
	a->ops = 0;
	a->argv0 = argv[0];
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--init-once")) {
			a->init_once = 1;
		} else if (!strcmp(argv[i], "--scale") && i + 1 < argc) {
			a->scale = strtod(argv[++i], NULL);
		} else if (!strcmp(argv[i], "--only") && i + 1 < argc) {
			a->only = argv[++i];
		} else if (!strcmp(argv[i], "--ops") && i + 1 < argc) {
			a->ops = strtoull(argv[++i], NULL, 0) &
				 ~(uint64_t)(BENCH_BULK - 1);
		} else if (!strcmp(argv[i], "--init-runs") && i + 1 < argc) {
			a->init_runs = atoi(argv[++i]);
		} else {
			fprintf(stderr,
				"usage: %s [--scale F] [--only ID|GROUP/] [--init-runs N] [--ops N]\n",
				argv[0]);
			return -EINVAL;
		}
	}
	if (a->scale <= 0 || a->init_runs < 1)
		return -EINVAL;
	return 0;
}

#endif /* HPM_BENCH_H */
