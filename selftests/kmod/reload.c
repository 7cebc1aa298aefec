// SPDX-License-Identifier: MIT
/* Load/unload cycles: each cycle loads hpmem.ko ($HPMEM_KO with
 * $HPMEM_KO_PARAMS), uses every node's pool, unloads; rmmod is refused
 * while a file or a mapping exists, and no node loses memory over the run. */
#include <sys/syscall.h>
#include <time.h>
#include "hpmem_test.h"

#define CYCLES		20
#define MAX_NODES	64

/*
 * Pages of each node on the per-CPU free lists, from /proc/zoneinfo: they
 * are free but not in MemFree, and the 2 MiB pages rmmod frees may land
 * there (order-9 pages are cached per CPU since 5.13).
 */
static void pcp_pages(long long *pages)
{
	static char buf[1 << 18];
	char *p = buf, *line;
	int node = -1;

	for (int n = 0; n < MAX_NODES; n++)
		pages[n] = 0;
	if (read_file("/proc/zoneinfo", buf, sizeof(buf)) < 0)
		return;
	while ((line = strsep(&p, "\n"))) {
		if (sscanf(line, "Node %d,", &node) == 1)
			continue;
		line += strspn(line, " ");
		if (node >= 0 && node < MAX_NODES && !strncmp(line, "count:", 6))
			pages[node] += strtoll(line + 6, NULL, 10);
	}
}

/* Free memory of every online node in kB (MemFree plus the per-CPU
 * lists), after dropping the page cache; returns the nodes read. */
static int memfree(long long *kb)
{
	long long pcp[MAX_NODES];
	char path[80], buf[4096], *p;
	int n, nodes = 0;

	sync();
	write_file("/proc/sys/vm/drop_caches", "3");
	pcp_pages(pcp);
	for (n = 0; n < MAX_NODES; n++) {
		kb[n] = -1;
		snprintf(path, sizeof(path), "/sys/devices/system/node/node%d/meminfo", n);
		if (read_file(path, buf, sizeof(buf)) < 0)
			continue;
		p = strstr(buf, "MemFree:");
		if (!p)
			continue;
		kb[n] = strtoll(p + strlen("MemFree:"), NULL, 10) + pcp[n] * 4;
		nodes++;
	}
	return nodes;
}

/* One cycle's use of the loaded module; 0 or the failing step. */
static int use_once(struct __test_metadata *_metadata, int cycle)
{
	uint32_t flags = cycle % 3 == 1 ? HPMEM_REGION_PINNABLE :
			 cycle % 3 == 2 ? HPMEM_REGION_PERSISTENT : 0;
	char name[HPMEM_NAME_MAX];
	struct hpmem_info info;
	unsigned int nodes = 0;
	size_t len;
	char *p;
	int fd;

	fd = open(HPMEM_DEVICE_PATH, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, fd);
	/* an open file holds the module */
	EXPECT_TRUE(hp_rmmod_refused(hp_rmmod()));
	ASSERT_EQ(0, hp_info(fd, &info));
	ASSERT_EQ(0, hp_create(fd, UNIQUE_NAME(name, "reload"), flags));
	for (unsigned int n = 0; n < MAX_NODES; n++) {
		if (!(info.node_mask >> n & 1))
			continue;
		ASSERT_EQ(0, hp_grow(fd, n, 2, NULL)) TH_LOG("cycle %d node %u", cycle, n);
		nodes++;
	}
	ASSERT_LT(0, nodes);
	len = 2 * nodes * PG;
	p = map_region(fd, len, 0);
	ASSERT_NE(MAP_FAILED, p);
	for (size_t off = 0; off < len; off += PG / 2)
		p[off] = (char)(off / PG + 1);
	close(fd);
	/* a mapping alone holds it too */
	EXPECT_TRUE(hp_rmmod_refused(hp_rmmod()));
	for (size_t off = 0; off < len; off += PG / 2)
		EXPECT_EQ((char)(off / PG + 1), p[off]);
	EXPECT_EQ(0, munmap(p, len));
	return 0;
}

/* A fixture only for TEST_F_TIMEOUT: the default 30 s is too short under TCG. */
FIXTURE(reload) {
	int unused;
};

FIXTURE_SETUP(reload)
{
}

FIXTURE_TEARDOWN(reload)
{
}

TEST_F_TIMEOUT(reload, load_use_unload_cycles, 240)
{
	const char *params = getenv("HPMEM_KO_PARAMS");
	long long before[MAX_NODES], after[MAX_NODES];
	struct timespec t0, t1;
	int cycles = 0, rc;

	if (!getenv("HPMEM_KO"))
		SKIP(return, "HPMEM_KO not set (run by the guest's init)");
	if (access(HPMEM_DEVICE_PATH, F_OK))
		SKIP(return, "%s absent", HPMEM_DEVICE_PATH);
	if (!params)
		params = "";
	clock_gettime(CLOCK_MONOTONIC, &t0);

	/* The baseline is the kernel without the module and its pools. */
	rc = hp_rmmod();
	ASSERT_EQ(0, rc) TH_LOG("first rmmod: %s", strerror(-rc));
	ASSERT_LT(0, memfree(before));

	for (int i = 0; i < CYCLES; i++) {
		rc = hp_insmod(params);
		ASSERT_EQ(0, rc) TH_LOG("cycle %d insmod: %s", i, strerror(-rc));
		use_once(_metadata, i);
		if (!_metadata->passed)
			break;
		rc = hp_rmmod();
		ASSERT_EQ(0, rc) TH_LOG("cycle %d rmmod: %s", i, strerror(-rc));
		EXPECT_NE(0, access("/sys/module/hpmem", F_OK));
		cycles++;
	}
	/*
	 * A leak stays; the kernel's own allocations meanwhile (slab, page
	 * tables of other tasks, deferred work) come and go: give a low
	 * reading a few seconds to recover before it counts.
	 */
	for (int tries = 0; tries < 10; tries++) {
		bool low = false;

		memfree(after);
		for (int n = 0; n < MAX_NODES; n++)
			low |= before[n] >= 0 && after[n] * 100 < before[n] * 99;
		if (!low)
			break;
		sleep(1);
	}
	printf("# %d load/use/unload cycles\n", cycles);
	for (int n = 0; n < MAX_NODES; n++) {
		if (before[n] < 0)
			continue;
		printf("# node %d MemFree+pcp: %lld kB before, %lld kB after (%+lld kB)\n",
		       n, before[n], after[n], after[n] - before[n]);
		/* within 1% of where it started */
		EXPECT_GE(after[n] * 100, before[n] * 99) TH_LOG("node %d lost memory", n);
	}
	/* Leave the module as the guest's init loaded it. */
	if (access("/sys/module/hpmem", F_OK))
		ASSERT_EQ(0, hp_insmod(params));
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("# %ld s\n", (long)(t1.tv_sec - t0.tv_sec));
	EXPECT_EQ(CYCLES, cycles);
}

TEST_HARNESS_MAIN
