// SPDX-License-Identifier: MIT
/* hpmemctl info, nodes [--watch], resize: the module and its per-node pools. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>

#include "hpmemctl.h"

/* HPMEM_IOC_INFO's dma_model; "unknown" from a module without it. */
static const char *dma_model_name(const struct hpmem_info *info)
{
	if (!(info->features & HPMEM_FEAT_DMA_MODEL))
		return "unknown";
	switch (info->dma_model) {
	case HPMEM_DMA_NO_IOMMU:	return "no-iommu";
	case HPMEM_DMA_PASSTHROUGH:	return "passthrough";
	case HPMEM_DMA_TRANSLATED:	return "translated";
	default:			return "unknown";
	}
}

static const struct {
	uint64_t bit;
	const char *name;
} features[] = {
	{ HPMEM_FEAT_PERSISTENT, "persistent" },
	{ HPMEM_FEAT_PINNABLE, "pinnable" },
	{ HPMEM_FEAT_PMD_MAP, "pmd-map" },
	{ HPMEM_FEAT_DMA_MODEL, "dma-model" },
	{ HPMEM_FEAT_BUSY_PAGES, "busy-pages" },
	{ HPMEM_FEAT_UID_NAMES, "uid-names" },
	{ HPMEM_FEAT_REGION_LIST, "region-list" },
	{ HPMEM_FEAT_DIRTY_PAGES, "dirty-pages" },
	{ HPMEM_FEAT_LIST_DMA_PINNED, "list-dma-pinned" },
	{ HPMEM_FEAT_LIST_OWN, "list-own" },
};

/* A feature bit's name; "bitN" for one newer than this hpmemctl. */
static const char *feature_name(unsigned int bit, char *buf, size_t len)
{
	for (size_t i = 0; i < sizeof(features) / sizeof(features[0]); i++)
		if (features[i].bit == 1ULL << bit)
			return features[i].name;
	snprintf(buf, len, "bit%u", bit);
	return buf;
}

int cmd_info(struct ctl *c, int argc, char **argv)
{
	struct json_writer *w = &c->jw;
	struct hpmem_info info;
	char name[8];
	int rc;

	(void)argv;
	if (argc)
		return ctl_usage(ctl_cmd_find("info"));
	rc = get_info(c->fd, &info);
	if (rc)
		return ctl_fail("info", -rc);
	if (c->json) {
		json_obj_begin(w);
		json_ku64(w, "api_version", info.api_version);
		json_ku64(w, "page_size", 1ULL << info.page_shift);
		json_ku64(w, "features", info.features);
		json_key(w, "feature_names");
		json_arr_begin(w);
		for (unsigned int b = 0; b < 64; b++)
			if (info.features & (1ULL << b))
				json_str(w, feature_name(b, name, sizeof(name)));
		json_arr_end(w);
		json_ku64(w, "nr_node_ids", info.nr_node_ids);
		json_ku64(w, "node_mask", info.node_mask);
		json_ku64(w, "max_pages", info.max_pages);
		json_kbool(w, "addresses_visible", info.caller & HPMEM_CALLER_ADDRS);
		json_kstr(w, "dma_model", dma_model_name(&info));
		json_ku64(w, "dma_translated_devs", info.dma_translated_devs);
		json_ku64(w, "dma_direct_devs", info.dma_direct_devs);
		json_obj_end(w);
		return ctl_json_finish(c);
	}
	printf("api version:        %u\n", info.api_version);
	printf("page size:          %llu KiB\n", (1ULL << info.page_shift) >> 10);
	printf("features:          ");
	for (unsigned int b = 0; b < 64; b++)
		if (info.features & (1ULL << b))
			printf(" %s", feature_name(b, name, sizeof(name)));
	printf("\nnode ids below:     %u\n", info.nr_node_ids);
	printf("max pool pages:     %llu\n", (unsigned long long)info.max_pages);
	printf("addresses visible:  %s\n",
	       info.caller & HPMEM_CALLER_ADDRS ? "yes" : "no");
	printf("dma model:          %s (%u translated, %u direct devices)\n",
	       dma_model_name(&info), info.dma_translated_devs,
	       info.dma_direct_devs);
	return 0;
}

/* One sample of every pool: a JSON array, or a table. */
static int nodes_sample(struct ctl *c, const struct hpmem_info *info)
{
	struct json_writer *w = &c->jw;
	struct hpmem_node_info ni;

	if (c->json)
		json_arr_begin(w);
	else
		printf("%-5s %10s %10s %10s %10s %10s %10s\n", "NODE", "TOTAL",
		       "FREE", "IN_USE", "MAPPED", "BUSY", "DIRTY");
	for (unsigned int n = 0; n < 64 && n < info->nr_node_ids; n++) {
		if (!(info->node_mask & (1ULL << n)))
			continue;
		memset(&ni, 0, sizeof(ni));
		ni.argsz = sizeof(ni);
		ni.node = n;
		if (ioctl(c->fd, HPMEM_IOC_NODE_INFO, &ni))
			return -errno;
		if (!c->json) {
			printf("%-5u %10llu %10llu %10llu %10llu %10llu %10llu\n", n,
			       (unsigned long long)ni.total_pages,
			       (unsigned long long)ni.free_pages,
			       (unsigned long long)ni.inuse_pages,
			       (unsigned long long)ni.mapped_pages,
			       (unsigned long long)ni.busy_pages,
			       (unsigned long long)ni.dirty_pages);
			continue;
		}
		json_obj_begin(w);
		json_ku64(w, "node", n);
		json_ku64(w, "total", ni.total_pages);
		json_ku64(w, "free", ni.free_pages);
		json_ku64(w, "in_use", ni.inuse_pages);
		json_ku64(w, "mapped", ni.mapped_pages);
		json_ku64(w, "busy", ni.busy_pages);
		json_ku64(w, "dirty", ni.dirty_pages);
		json_obj_end(w);
	}
	if (c->json)
		json_arr_end(w);
	return 0;
}

/* --watch[=SEC]: seconds, a decimal fraction allowed, 1 ms .. 1 day. */
static int parse_interval(const char *s, struct timespec *ts)
{
	char *end;
	double v;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	v = strtod(s, &end);
	if (*end || v < 0.001 || v > 86400)
		return -EINVAL;
	ts->tv_sec = (time_t)v;
	ts->tv_nsec = (long)((v - (double)ts->tv_sec) * 1e9);
	return 0;
}

/*
 * nodes [--watch[=SEC]] [--count N]: with --watch (or --count), a sample
 * every SEC seconds (default 1), N of them or until killed. With --json
 * each sample is one line, {"time_ms", "sample", "nodes"} (JSON Lines),
 * so a reader can act on each as it arrives.
 */
int cmd_nodes(struct ctl *c, int argc, char **argv)
{
	struct timespec every = { .tv_sec = 1 };
	struct json_writer *w = &c->jw;
	struct hpmem_info info;
	bool watch = false;
	uint64_t count = 0;	/* 0: until killed */
	int rc;

	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--watch")) {
			watch = true;
		} else if (!strncmp(argv[i], "--watch=", 8)) {
			watch = true;
			if (parse_interval(argv[i] + 8, &every))
				return ctl_usage(ctl_cmd_find("nodes"));
		} else if (!strcmp(argv[i], "--count") && i + 1 < argc) {
			watch = true;
			if (parse_u64(argv[++i], &count) || !count)
				return ctl_usage(ctl_cmd_find("nodes"));
		} else {
			return ctl_usage(ctl_cmd_find("nodes"));
		}
	}
	rc = get_info(c->fd, &info);
	if (rc)
		return ctl_fail("info", -rc);
	if (!watch) {
		rc = nodes_sample(c, &info);
		if (rc)
			return ctl_fail("node info", -rc);
		return c->json ? ctl_json_finish(c) : 0;
	}
	for (uint64_t s = 1;; s++) {
		struct timespec now;

		clock_gettime(CLOCK_REALTIME, &now);
		if (c->json) {
			json_init(w, stdout);	/* a document per sample */
			json_obj_begin(w);
			json_ku64(w, "time_ms", (uint64_t)now.tv_sec * 1000 +
				  (uint64_t)now.tv_nsec / 1000000);
			json_ku64(w, "sample", s);
			json_key(w, "nodes");
		} else {
			char stamp[32];
			struct tm tm;

			strftime(stamp, sizeof(stamp), "%F %T",
				 localtime_r(&now.tv_sec, &tm));
			printf("%s# %s, sample %llu\n", s > 1 ? "\n" : "", stamp,
			       (unsigned long long)s);
		}
		rc = nodes_sample(c, &info);
		if (rc)
			return ctl_fail("node info", -rc);
		if (c->json) {
			json_obj_end(w);
			if (ctl_json_finish(c))
				return 1;
		} else if (fflush(stdout)) {
			return ctl_fail("stdout", errno);
		}
		if (count && s == count)
			return 0;
		nanosleep(&every, NULL);
	}
}

int cmd_resize(struct ctl *c, int argc, char **argv)
{
	struct hpmem_pool_resize rs = { .argsz = sizeof(rs) };
	uint64_t pages;
	char what[32];

	if (argc != 2 || parse_u32(argv[0], &rs.node) || parse_u64(argv[1], &pages))
		return ctl_usage(ctl_cmd_find("resize"));
	rs.nr_pages = pages;
	snprintf(what, sizeof(what), "resize node %u", rs.node);
	if (ioctl(c->fd, HPMEM_IOC_POOL_RESIZE, &rs)) {
		if (errno == EBUSY)
			return ctl_failf("%s: %s (only free pages can go: see 'hpmemctl nodes')",
					 what, strerror(errno));
		if (errno == ENOMEM)
			return ctl_failf("%s: %s (the kernel has too few free 2 MiB pages on node %u)",
					 what, strerror(errno), rs.node);
		return ctl_fail(what, errno);
	}
	if (!c->json) {
		printf("node %u: %llu pages\n", rs.node, (unsigned long long)rs.nr_pages);
		return 0;
	}
	json_obj_begin(&c->jw);
	json_ku64(&c->jw, "node", rs.node);
	json_ku64(&c->jw, "total", rs.nr_pages);
	json_obj_end(&c->jw);
	return ctl_json_finish(c);
}
