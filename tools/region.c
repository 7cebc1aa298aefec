// SPDX-License-Identifier: MIT
/* hpmemctl create, grow, destroy: a region's life by name. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "hpmemctl.h"

struct grow_spec {
	uint32_t node;
	uint64_t pages;
	uint64_t offset;	/* out */
};

/*
 * NODE:PAGES arguments, all parsed before anything changes; returns 0, 1
 * or 2 (usage) as the command should exit.
 */
static int parse_specs(const char *cmd, int argc, char **argv, struct grow_spec **out)
{
	struct grow_spec *s = calloc(argc ? argc : 1, sizeof(*s));
	char why[64];

	if (!s)
		return ctl_fail(cmd, ENOMEM);
	for (int i = 0; i < argc; i++) {
		if (parse_node_pages(argv[i], &s[i].node, &s[i].pages)) {
			snprintf(why, sizeof(why), "bad NODE:PAGES '%.32s'", argv[i]);
			free(s);
			return ctl_usage_why(ctl_cmd_find(cmd), why);
		}
	}
	*out = s;
	return 0;
}

/* The region attached to @fd grows by each spec in turn; -errno at the first failure. */
static int grow_all(int fd, struct grow_spec *s, int n, int *done)
{
	for (*done = 0; *done < n; (*done)++) {
		struct hpmem_region_grow gr = {
			.argsz = sizeof(gr),
			.node = s[*done].node,
			.nr_pages = s[*done].pages,
		};

		if (ioctl(fd, HPMEM_IOC_REGION_GROW, &gr))
			return -errno;
		s[*done].offset = gr.offset;
	}
	return 0;
}

/* @done earlier grows stay: a region cannot shrink, so say so. */
static int grow_fail(const char *name, const struct grow_spec *s, int done, int err)
{
	char what[160];
	int n;

	n = snprintf(what, sizeof(what), "grow %s by %llu pages of node %u", name,
		     (unsigned long long)s->pages, s->node);
	if (done)
		snprintf(what + n, sizeof(what) - n, " (the %d grow%s before it stay%s)",
			 done, done > 1 ? "s" : "", done > 1 ? "" : "s");
	return ctl_fail(what, err);
}

/* {"name", "pages", "grown": [{"node", "pages", "offset"}...]} */
static void print_grown(struct ctl *c, const char *name, uint64_t total,
			const struct grow_spec *s, int n)
{
	struct json_writer *w = &c->jw;

	if (!c->json) {
		for (int i = 0; i < n; i++)
			printf("node %u: %llu page%s at offset 0x%llx\n", s[i].node,
			       (unsigned long long)s[i].pages, s[i].pages == 1 ? "" : "s",
			       (unsigned long long)s[i].offset);
		return;
	}
	json_obj_begin(w);
	json_kstr(w, "name", name);
	json_ku64(w, "pages", total);
	json_key(w, "grown");
	json_arr_begin(w);
	for (int i = 0; i < n; i++) {
		json_obj_begin(w);
		json_ku64(w, "node", s[i].node);
		json_ku64(w, "pages", s[i].pages);
		json_ku64(w, "offset", s[i].offset);
		json_obj_end(w);
	}
	json_arr_end(w);
	json_obj_end(w);
}

/* create NAME [--pinnable] [NODE:PAGES ...]: a persistent region, grown on each node. */
int cmd_create(struct ctl *c, int argc, char **argv)
{
	struct hpmem_region_create cr = {
		.argsz = sizeof(cr),
		.flags = HPMEM_REGION_PERSISTENT,
	};
	struct grow_spec *s;
	uint64_t total = 0;
	int rc, i, n, done;

	/* --pinnable may come anywhere; what remains is NAME [NODE:PAGES...] */
	for (i = 0, n = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--pinnable"))
			cr.flags |= HPMEM_REGION_PINNABLE;
		else
			argv[n++] = argv[i];
	}
	argc = n;
	if (argc < 1 || argv[0][0] == '-')
		return ctl_usage(ctl_cmd_find("create"));
	rc = copy_name(cr.name, argv[0]);
	if (rc)
		return ctl_fail(argv[0], -rc);
	i = 1;
	rc = parse_specs("create", argc - i, argv + i, &s);
	if (rc)
		return rc;
	if (ioctl(c->fd, HPMEM_IOC_REGION_CREATE, &cr)) {
		rc = ctl_fail(argv[0], errno);
		goto out;
	}
	rc = grow_all(c->fd, s, argc - i, &done);
	if (rc) {
		/* All or nothing: a half-grown persistent region would linger. */
		struct hpmem_region_destroy ds = { .argsz = sizeof(ds) };

		memcpy(ds.name, cr.name, sizeof(ds.name));
		ioctl(c->fd, HPMEM_IOC_REGION_DESTROY, &ds);
		rc = grow_fail(argv[0], &s[done], 0, -rc);
		goto out;
	}
	for (int k = 0; k < done; k++)
		total += s[k].pages;
	print_grown(c, argv[0], total, s, done);
	rc = c->json ? ctl_json_finish(c) : 0;
out:
	free(s);
	return rc;
}

/*
 * grow [--uid UID] NAME NODE:PAGES...: attach by name and grow. Each grow
 * is all or nothing, but pages cannot leave a region, so a later failure
 * leaves the earlier grows in place: say which happened.
 */
int cmd_grow(struct ctl *c, int argc, char **argv)
{
	struct hpmem_region_attach at;
	struct grow_spec *s;
	bool by_uid;
	uint32_t uid;
	int rc, done;

	if (parse_uid_opt(&argc, &argv, &by_uid, &uid) || argc < 2)
		return ctl_usage(ctl_cmd_find("grow"));
	rc = parse_specs("grow", argc - 1, argv + 1, &s);
	if (rc)
		return rc;
	rc = region_attach(c->fd, argv[0], by_uid, uid, &at);
	if (rc) {
		rc = ctl_fail(argv[0], -rc);
		goto out;
	}
	rc = grow_all(c->fd, s, argc - 1, &done);
	if (rc) {
		rc = grow_fail(argv[0], &s[done], done, -rc);
		goto out;
	}
	for (int k = 0; k < done; k++)
		at.nr_pages += s[k].pages;
	print_grown(c, argv[0], at.nr_pages, s, done);
	rc = c->json ? ctl_json_finish(c) : 0;
out:
	free(s);
	return rc;
}

/* destroy [--uid UID] NAME: by name, among UID's regions with --uid. */
int cmd_destroy(struct ctl *c, int argc, char **argv)
{
	struct hpmem_region_destroy ds = { .argsz = sizeof(ds) };
	bool by_uid;
	int rc;

	if (parse_uid_opt(&argc, &argv, &by_uid, &ds.uid) || argc != 1)
		return ctl_usage(ctl_cmd_find("destroy"));
	if (by_uid)
		ds.flags = HPMEM_NAME_UID;
	rc = copy_name(ds.name, argv[0]);
	if (rc)
		return ctl_fail(argv[0], -rc);
	if (ioctl(c->fd, HPMEM_IOC_REGION_DESTROY, &ds)) {
		if (errno == EBUSY)
			return ctl_failf("%s: %s (still mapped: stop its processes; 'hpmemctl regions' shows maps)",
					 argv[0], strerror(errno));
		return ctl_fail(argv[0], errno);
	}
	if (!c->json)
		return 0;
	json_obj_begin(&c->jw);
	json_kstr(&c->jw, "name", argv[0]);
	json_kbool(&c->jw, "destroyed", true);
	json_obj_end(&c->jw);
	return ctl_json_finish(c);
}
