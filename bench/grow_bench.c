// SPDX-License-Identifier: MIT
/*
 * Dynamic memory rows of make bench (issue 13), one source for both
 * sides (-DSIDE_DPDK builds DPDK 22.11's, in its default dynamic mode:
 * EAL without -m or --legacy-mem, on the same hugepages). Rows, each the
 * median of --rounds (default 9) internal rounds, printed as RESULT lines
 * in ns like hpm_bench's:
 *   grow/page          a malloc that must take one more 2 MiB page, per page
 *   grow/release-page  the free that gives that page back, per page
 *   grow/malloc64      one 64 MiB malloc that must grow, start to return
 * hpmem runs with --socket-mem 0 --socket-limit 512 on node 0 (HPMEM_OPTS
 * picks the backend, as for hpm_bench); DPDK adds BENCH_EAL_EXTRA.
 */
#include "bench.h"

#ifdef SIDE_DPDK
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_malloc.h>
#define ALLOC(sz)	rte_malloc_socket(NULL, (sz), 0, 0)
#define FREE(p)		rte_free(p)
#define PROG		"grow_bench_dpdk"
#else
#include <hpmem/init.h>
#include <hpmem/malloc.h>
#define ALLOC(sz)	hpm_malloc_socket(NULL, (sz), 0, 0)
#define FREE(p)		hpm_free(p)
#define PROG		"grow_bench_hpm"
#endif

#define PAGE		(2u << 20)
#define NPAGES		32
#define MAX_ROUNDS	99

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_d);
	return (n % 2) ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static int init(void)
{
#ifdef SIDE_DPDK
	char *argv[32] = { PROG, "-l", "0", "--no-pci", "--in-memory", "--no-telemetry",
			   "--log-level=lib.eal:error" };
	int argc = 7;
	char *extra = getenv("BENCH_EAL_EXTRA");

	/* as dpdk_bench: anything else the runner or the user wants */
	if (extra && *extra) {
		char *dup = strdup(extra), *save = NULL;

		for (char *t = strtok_r(dup, " ", &save); t && argc < 31;
		     t = strtok_r(NULL, " ", &save))
			argv[argc++] = t;
	}
	argv[argc] = NULL;
	if (rte_eal_init(argc, argv) < 0) {
		fprintf(stderr, PROG ": rte_eal_init: %s\n", rte_strerror(rte_errno));
		return -1;
	}
	return 0;
#else
	struct hpm_init_opts o;
	char region[HPM_NAME_SIZE];
	int rc;

	hpm_init_opts_default(&o);
	snprintf(region, sizeof(region), "grow-bench-%d", (int)getpid());
	o.region = region;
	o.proc_type = HPM_PROC_PRIMARY;
	/* Nothing kept at start: every page the rows take is a growth. */
	o.socket_mem[0] = HPM_SOCKET_MEM(0, 512);
	rc = hpm_init(&o);
	if (rc)
		fprintf(stderr, PROG ": hpm_init: %s\n", hpm_strerror(rc));
	return rc;
#endif
}

int main(int argc, char **argv)
{
	double grow[MAX_ROUNDS], rel[MAX_ROUNDS], big[MAX_ROUNDS];
	void *p[NPAGES];
	int rounds = 9;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--rounds") && i + 1 < argc) {
			rounds = atoi(argv[++i]);
		} else {
			fprintf(stderr, "usage: %s [--rounds 1..%d]\n", argv[0], MAX_ROUNDS);
			return 2;
		}
	}
	if (rounds < 1 || rounds > MAX_ROUNDS) {
		fprintf(stderr, PROG ": --rounds must be 1..%d\n", MAX_ROUNDS);
		return 2;
	}
	/* the same core as DPDK's main lcore (-l 0) */
	if (bench_pin(0) || init())
		return 1;
	/* Warm up: the first growth also builds the process's tables. */
	FREE(ALLOC(PAGE));
	for (int r = 0; r < rounds; r++) {
		uint64_t t0 = now_ns(), t1, t2;

		/* Nearly a page each: every one needs a page of its own. */
		for (int i = 0; i < NPAGES; i++) {
			p[i] = ALLOC(PAGE - 8192);
			if (!p[i]) {
				fprintf(stderr, PROG ": alloc %d failed\n", i);
				return 1;
			}
		}
		t1 = now_ns();
		for (int i = NPAGES - 1; i >= 0; i--)
			FREE(p[i]);
		t2 = now_ns();
		grow[r] = (double)(t1 - t0) / NPAGES;
		rel[r] = (double)(t2 - t1) / NPAGES;
		t0 = now_ns();
		p[0] = ALLOC(64u << 20);
		t1 = now_ns();
		if (!p[0]) {
			fprintf(stderr, PROG ": 64 MiB failed\n");
			return 1;
		}
		FREE(p[0]);
		big[r] = (double)(t1 - t0);
	}
	bench_result("grow/page", median(grow, rounds));
	bench_result("grow/release-page", median(rel, rounds));
	bench_result("grow/malloc64", median(big, rounds));
#ifdef SIDE_DPDK
	rte_eal_cleanup();
#else
	hpm_cleanup();
#endif
	return 0;
}
