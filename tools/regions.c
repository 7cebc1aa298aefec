// SPDX-License-Identifier: MIT
/* hpmemctl regions: every region the caller may list, paged through REGION_LIST. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "hpmemctl.h"

/* An entry as this tool reads it, whichever layout the module has. */
struct region_view {
	const struct hpmem_region_entry *e;
	const __u64 *node_pages;
	bool has_dma;		/* module reports dma_pinned */
	uint64_t dma_pinned;
};

static void print_json(struct ctl *c, const struct region_view *v,
		       const struct hpmem_info *info)
{
	const struct hpmem_region_entry *e = v->e;
	struct json_writer *w = &c->jw;
	char ubuf[16];

	json_obj_begin(w);
	json_kstr(w, "name", e->name);
	json_ku64(w, "id", e->id);
	json_ku64(w, "uid", e->uid);
	json_kstr(w, "owner", uid_name(e->uid, ubuf, sizeof(ubuf)));
	json_kbool(w, "persistent", e->flags & HPMEM_REGION_PERSISTENT);
	json_kbool(w, "pinnable", e->flags & HPMEM_REGION_PINNABLE);
	json_ku64(w, "users", e->users);
	json_ku64(w, "maps", e->maps);
	json_ku64(w, "pages", e->nr_pages);
	json_key(w, "node_pages");
	json_obj_begin(w);
	for (unsigned int n = 0; n < info->nr_node_ids; n++) {
		char key[12];

		if (n < 64 && !(info->node_mask & (1ULL << n)))
			continue;
		snprintf(key, sizeof(key), "%u", n);
		json_ku64(w, key, v->node_pages[n]);
	}
	json_obj_end(w);
	if (v->has_dma) {
		json_ku64(w, "dma_pinned", v->dma_pinned);
		json_kbool(w, "dma", v->dma_pinned > 0);
	} else {
		json_knull(w, "dma_pinned");
		json_knull(w, "dma");
	}
	json_obj_end(w);
}

static void print_text(const struct region_view *v, unsigned int nodes)
{
	const struct hpmem_region_entry *e = v->e;
	char ubuf[16], dma[32], list[256];
	size_t len = 0;

	list[0] = '\0';
	for (unsigned int n = 0; n < nodes; n++) {
		if (!v->node_pages[n] || len >= sizeof(list) - 1)
			continue;
		len += snprintf(list + len, sizeof(list) - len, "%s%u:%llu",
				len ? "," : "", n,
				(unsigned long long)v->node_pages[n]);
	}
	if (!v->has_dma)
		snprintf(dma, sizeof(dma), "?");
	else if (v->dma_pinned)
		snprintf(dma, sizeof(dma), "yes(%llu)",
			 (unsigned long long)v->dma_pinned);
	else
		snprintf(dma, sizeof(dma), "no");
	printf("%-10s %-19s %7llu %-15s %5u %5u %-9s ",
	       uid_name(e->uid, ubuf, sizeof(ubuf)),
	       e->flags & HPMEM_REGION_PINNABLE ?
	       (e->flags & HPMEM_REGION_PERSISTENT ? "persistent,pinnable" : "pinnable") :
	       (e->flags & HPMEM_REGION_PERSISTENT ? "persistent" : "-"),
	       (unsigned long long)e->nr_pages, len ? list : "-", e->users,
	       e->maps, dma);
	text_name(e->name);
	putchar('\n');
}

/*
 * regions: root lists every uid's regions; others their own uid's
 * (HPMEM_FEAT_LIST_OWN; older modules refuse them with EPERM).
 */
int cmd_regions(struct ctl *c, int argc, char **argv)
{
	struct hpmem_region_list rl = { .argsz = sizeof(rl) };
	const unsigned int batch = 256;
	struct hpmem_info info;
	size_t head;
	bool has_dma;
	char *buf;
	int rc;

	(void)argv;
	if (argc)
		return ctl_usage(ctl_cmd_find("regions"));
	rc = get_info(c->fd, &info);
	if (rc)
		return ctl_fail("info", -rc);
	if (!(info.features & HPMEM_FEAT_REGION_LIST))
		return ctl_fail("regions", EOPNOTSUPP);
	/* Before HPMEM_FEAT_LIST_DMA_PINNED node_pages[] began where dma_pinned is. */
	has_dma = info.features & HPMEM_FEAT_LIST_DMA_PINNED;
	head = has_dma ? sizeof(struct hpmem_region_entry) :
	       offsetof(struct hpmem_region_entry, dma_pinned);
	rl.entry_size = head + 8 * info.nr_node_ids;
	buf = calloc(batch, rl.entry_size);
	if (!buf)
		return ctl_fail("regions", ENOMEM);
	rl.entries = (uintptr_t)buf;
	if (c->json)
		json_arr_begin(&c->jw);
	else
		printf("%-10s %-19s %7s %-15s %5s %5s %-9s %s\n", "OWNER", "FLAGS",
		       "PAGES", "NODE:PAGES", "USERS", "MAPS", "DMA", "NAME");
	for (;;) {
		rl.nr_entries = batch;
		if (ioctl(c->fd, HPMEM_IOC_REGION_LIST, &rl)) {
			rc = errno;
			free(buf);
			if (rc == EPERM && !(info.features & HPMEM_FEAT_LIST_OWN))
				return ctl_failf("regions: %s (this hpmem module lists regions to root only: run as root)",
						 strerror(rc));
			return ctl_fail("regions", rc);
		}
		if (!rl.nr_entries)
			break;
		for (unsigned int i = 0; i < rl.nr_entries; i++) {
			const char *p = buf + (size_t)i * rl.entry_size;
			const struct hpmem_region_entry *e = (const void *)p;
			struct region_view v = {
				.e = e,
				.node_pages = (const void *)(p + head),
				.has_dma = has_dma,
				.dma_pinned = has_dma ? e->dma_pinned : 0,
			};

			if (c->json)
				print_json(c, &v, &info);
			else
				print_text(&v, info.nr_node_ids);
		}
	}
	free(buf);
	if (c->json) {
		json_arr_end(&c->jw);
		return ctl_json_finish(c);
	}
	return 0;
}
