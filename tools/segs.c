// SPDX-License-Identifier: MIT
/* hpmemctl segs: a region's pages by offset, node, phys and IOVA, in runs. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "hpmemctl.h"

/* Pages at consecutive offsets, one node, consecutive phys and IOVA. */
struct run {
	uint64_t offset, pages, phys, iova;
	uint32_t node;
};

static int by_offset(const void *a, const void *b)
{
	const struct hpmem_seg *x = a, *y = b;

	return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* The table, sized by a first call; retried if the region grew meanwhile. */
static int read_segs(int fd, struct hpmem_seg **out, uint32_t *nr)
{
	struct hpmem_region_segs rs = { .argsz = sizeof(rs) };
	struct hpmem_seg *segs = NULL;

	for (;;) {
		uint32_t room = rs.nr_segs;

		rs.segs = (uintptr_t)segs;
		if (ioctl(fd, HPMEM_IOC_REGION_SEGS, &rs)) {
			free(segs);
			return -errno;
		}
		if (rs.nr_segs <= room && (segs || !rs.nr_segs))
			break;
		free(segs);
		segs = calloc(rs.nr_segs, sizeof(*segs));
		if (!segs)
			return -ENOMEM;
	}
	*out = segs;
	*nr = rs.nr_segs;
	return 0;
}

/* Sorted by offset, then merged; @runs has room for @n. Returns the run count. */
static size_t merge_runs(struct hpmem_seg *s, uint32_t n, struct run *runs)
{
	size_t r = 0;

	qsort(s, n, sizeof(*s), by_offset);
	for (uint32_t i = 0; i < n; i++) {
		struct run *last = r ? &runs[r - 1] : NULL;
		uint64_t step = last ? last->pages * HPMEM_PAGE_SIZE : 0;

		if (last && s[i].node == last->node &&
		    s[i].offset == last->offset + step &&
		    (!last->phys) == (!s[i].phys) &&
		    (!last->phys || s[i].phys == last->phys + step) &&
		    (!last->iova) == (!s[i].iova) &&
		    (!last->iova || s[i].iova == last->iova + step)) {
			last->pages++;
			continue;
		}
		runs[r++] = (struct run){
			.offset = s[i].offset, .pages = 1, .phys = s[i].phys,
			.iova = s[i].iova, .node = s[i].node,
		};
	}
	return r;
}

static void put_addr(struct ctl *c, const char *key, uint64_t v, bool shown)
{
	if (c->json) {
		if (shown)
			json_kaddr(&c->jw, key, v);
		else
			json_knull(&c->jw, key);
	}
}

/*
 * segs [--uid UID] NAME. Addresses hidden from the caller are a fact to
 * report, not a failure: offsets and nodes still mean something, so the
 * table is printed and one line on stderr says how to see the rest.
 */
int cmd_segs(struct ctl *c, int argc, char **argv)
{
	const char *phys_why = NULL, *iova_why = NULL;
	struct hpmem_region_attach at;
	struct json_writer *w = &c->jw;
	struct hpmem_info info;
	struct hpmem_seg *segs = NULL;
	char knob[16], why[64];
	struct run *runs;
	bool by_uid;
	uint32_t uid, n = 0;
	size_t nr;
	int rc;

	if (parse_uid_opt(&argc, &argv, &by_uid, &uid) || argc != 1)
		return ctl_usage(ctl_cmd_find("segs"));
	rc = get_info(c->fd, &info);
	if (rc)
		return ctl_fail("info", -rc);
	rc = region_attach(c->fd, argv[0], by_uid, uid, &at);
	if (rc)
		return ctl_fail(argv[0], -rc);
	rc = read_segs(c->fd, &segs, &n);
	if (rc)
		return ctl_fail("segs", -rc);
	runs = calloc(n ? n : 1, sizeof(*runs));
	if (!runs) {
		free(segs);
		return ctl_fail("segs", ENOMEM);
	}
	nr = merge_runs(segs, n, runs);
	free(segs);

	if (!(info.caller & HPMEM_CALLER_ADDRS)) {
		module_param_read("phys_unprivileged", knob, sizeof(knob));
		snprintf(why, sizeof(why), "phys_unprivileged=%s", knob);
		phys_why = iova_why = why;
	} else if ((info.features & HPMEM_FEAT_DMA_MODEL) &&
		   info.dma_model == HPMEM_DMA_TRANSLATED) {
		iova_why = "iommu translates (dma_model translated)";
	}

	if (c->json) {
		json_obj_begin(w);
		json_kstr(w, "name", argv[0]);
		json_ku64(w, "pages", n);
		json_ku64(w, "page_size", HPMEM_PAGE_SIZE);
		json_kbool(w, "addresses_visible", !phys_why);
		if (phys_why)
			json_kstr(w, "phys_hidden", phys_why);
		else
			json_knull(w, "phys_hidden");
		if (iova_why)
			json_kstr(w, "iova_hidden", iova_why);
		else
			json_knull(w, "iova_hidden");
		json_key(w, "runs");
		json_arr_begin(w);
	} else {
		printf("%-14s %7s %4s %-18s %s\n", "OFFSET", "PAGES", "NODE",
		       "PHYS", "IOVA");
	}
	for (size_t i = 0; i < nr; i++) {
		char phys[24], iova[24];

		if (!c->json) {
			snprintf(phys, sizeof(phys), "%#llx", (unsigned long long)runs[i].phys);
			snprintf(iova, sizeof(iova), "%#llx", (unsigned long long)runs[i].iova);
			printf("0x%-12llx %7llu %4u %-18s %s\n",
			       (unsigned long long)runs[i].offset,
			       (unsigned long long)runs[i].pages, runs[i].node,
			       phys_why ? "hidden" : phys,
			       phys_why ? "hidden" : iova_why ? "translated" : iova);
			continue;
		}
		json_obj_begin(w);
		json_ku64(w, "offset", runs[i].offset);
		json_ku64(w, "pages", runs[i].pages);
		json_ku64(w, "node", runs[i].node);
		put_addr(c, "phys", runs[i].phys, !phys_why);
		put_addr(c, "iova", runs[i].iova, !iova_why);
		json_obj_end(w);
	}
	free(runs);
	if (c->json) {
		json_arr_end(w);
		json_obj_end(w);
		rc = ctl_json_finish(c);
	}
	if (phys_why)
		fprintf(stderr, "hpmemctl: addresses hidden: %s (run as root, or set /sys/module/hpmem/parameters/phys_unprivileged to Y)\n",
			phys_why);
	else if (iova_why && !c->json)
		printf("# IOVA: the IOMMU translates; a device reaches only what VFIO mapped, at the IOVA it chose\n");
	return rc;
}
