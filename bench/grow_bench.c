// SPDX-License-Identifier: MIT
/*
 * Dynamic memory rows of make bench (issue 13), one source for both
 * sides (-DSIDE_DPDK builds DPDK 22.11's, in its default dynamic mode:
 * EAL without -m, on the same hugepages). Rows, each a median of rounds:
 *   grow_page_us   a malloc that must take one more 2 MiB page, per page
 *   release_page_us  the free that gives that page back, per page
 *   malloc64_grow_ms  one 64 MiB malloc that must grow, start to return
 * hpmem runs with --socket-mem 0 --socket-limit 512 on node 0 (HPMEM_OPTS
 * picks the backend, as for hpm_bench).
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifdef SIDE_DPDK
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_malloc.h>
#define ALLOC(sz)	rte_malloc_socket(NULL, (sz), 0, 0)
#define FREE(p)		rte_free(p)
#define SIDE		"dpdk"
#else
#include <hpmem/init.h>
#include <hpmem/malloc.h>
#define ALLOC(sz)	hpm_malloc_socket(NULL, (sz), 0, 0)
#define FREE(p)		hpm_free(p)
#define SIDE		"hpmem"
#endif

#define PAGE		(2u << 20)
#define NPAGES		32
#define ROUNDS		9

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
	return v[n / 2];
}

static int init(void)
{
#ifdef SIDE_DPDK
	char *argv[] = { "grow_bench", "-l", "0", "--no-pci", "--in-memory", "--no-telemetry",
			 "--log-level=lib.eal:error", NULL };

	if (rte_eal_init(7, argv) < 0) {
		fprintf(stderr, "grow_bench: rte_eal_init: %s\n", rte_strerror(rte_errno));
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
	o.socket_mem[0] = HPM_SOCKET_MEM(0, 512);
	rc = hpm_init(&o);
	if (rc)
		fprintf(stderr, "grow_bench: hpm_init: %s\n", hpm_strerror(rc));
	return rc;
#endif
}

int main(void)
{
	double grow[ROUNDS], rel[ROUNDS], big[ROUNDS];
	void *p[NPAGES];

	if (init())
		return 1;
	/* Warm up: the first growth also builds the process's tables. */
	FREE(ALLOC(PAGE));
	for (int r = 0; r < ROUNDS; r++) {
		uint64_t t0 = now_ns(), t1, t2;

		/* Nearly a page each: every one needs a page of its own. */
		for (int i = 0; i < NPAGES; i++) {
			p[i] = ALLOC(PAGE - 8192);
			if (!p[i]) {
				fprintf(stderr, "grow_bench: alloc %d failed\n", i);
				return 1;
			}
		}
		t1 = now_ns();
		for (int i = NPAGES - 1; i >= 0; i--)
			FREE(p[i]);
		t2 = now_ns();
		grow[r] = (double)(t1 - t0) / NPAGES / 1e3;
		rel[r] = (double)(t2 - t1) / NPAGES / 1e3;
		t0 = now_ns();
		p[0] = ALLOC(64u << 20);
		t1 = now_ns();
		if (!p[0]) {
			fprintf(stderr, "grow_bench: 64 MiB failed\n");
			return 1;
		}
		FREE(p[0]);
		big[r] = (double)(t1 - t0) / 1e6;
	}
	printf("%s grow_page_us %.1f\n", SIDE, median(grow, ROUNDS));
	printf("%s release_page_us %.1f\n", SIDE, median(rel, ROUNDS));
	printf("%s malloc64_grow_ms %.2f\n", SIDE, median(big, ROUNDS));
#ifdef SIDE_DPDK
	rte_eal_cleanup();
#else
	hpm_cleanup();
#endif
	return 0;
}
