// SPDX-License-Identifier: MIT
/* hpmemctl: inspect and administer /dev/hpmem pools and regions (dispatch). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hpmemctl.h"

/* One entry per command; a command family in its own file adds one line. */
static const struct ctl_cmd cmds[] = {
	{ .name = "info", .fn = cmd_info, .usage = "",
	  .help = "module version, page size, features, limits" },
	{ .name = "nodes", .fn = cmd_nodes, .usage = "[--watch[=SEC]] [--count N]",
	  .help = "pool counters per NUMA node, once or every SEC seconds" },
	{ .name = "resize", .fn = cmd_resize, .usage = "NODE PAGES",
	  .help = "set a node's pool size (root)" },
	{ .name = "create", .fn = cmd_create, .usage = "NAME [--pinnable] [NODE:PAGES...]",
	  .help = "persistent region, grown on each node" },
	{ .name = "grow", .fn = cmd_grow, .usage = "[--uid UID] NAME NODE:PAGES...",
	  .help = "add pages of each node to a region" },
	{ .name = "destroy", .fn = cmd_destroy, .usage = "[--uid UID] NAME",
	  .help = "destroy a region (another user's with --uid: root)" },
	{ .name = "regions", .fn = cmd_regions, .usage = "",
	  .help = "regions: owner, flags, pages per node, users, maps, DMA" },
	{ .name = "segs", .fn = cmd_segs, .usage = "[--uid UID] NAME",
	  .help = "a region's pages: offset, node, phys, IOVA, in runs" },
	{ .name = "app", .fn = cmd_app, .usage = "REGION heaps|memzones|mempools|rings|memsegs|threads [--backend B]",
	  .help = "look into a running application's region, read-only",
	  .flags = CTL_NO_DEVICE },
};

#define NR_CMDS (sizeof(cmds) / sizeof(cmds[0]))

const struct ctl_cmd *ctl_cmd_find(const char *name)
{
	for (size_t i = 0; i < NR_CMDS; i++)
		if (!strcmp(cmds[i].name, name))
			return &cmds[i];
	return NULL;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: hpmemctl [--json] [--device PATH] COMMAND [ARGS]\n"
		   "options may also follow the command; see hpmemctl(8)\n"
		   "commands:\n");
	for (size_t i = 0; i < NR_CMDS; i++)
		fprintf(f, "  %s%s%s\n      %s\n", cmds[i].name,
			*cmds[i].usage ? " " : "", cmds[i].usage,
			cmds[i].help);
}

/* Opening the device fails for two reasons an operator can fix. */
static int dev_open(struct ctl *c)
{
	struct stat st;
	int err;

	c->fd = open(c->dev_path, O_RDWR | O_CLOEXEC);
	if (c->fd >= 0)
		return 0;
	err = errno;
	if ((err == ENOENT || err == ENXIO || err == ENODEV) &&
	    access("/sys/module/hpmem", F_OK))
		return ctl_failf("module not loaded: modprobe hpmem");
	if (err == EACCES || err == EPERM) {
		char gbuf[16];
		const char *group = "hpmem";

		/* Name the group the administrator chose (module param gid). */
		if (!stat(c->dev_path, &st) && st.st_gid)
			group = gid_name(st.st_gid, gbuf, sizeof(gbuf));
		return ctl_failf("permission denied on %s: ask for group %s (see hpmem(4))",
				 c->dev_path, group);
	}
	if (err == ENOENT)
		return ctl_failf("%s: %s (hpmem is loaded: is devtmpfs or udev creating the node?)",
				 c->dev_path, strerror(err));
	return ctl_fail(c->dev_path, err);
}

int main(int argc, char **argv)
{
	struct ctl c = { .dev_path = HPMEM_DEVICE_PATH, .fd = -1 };
	const struct ctl_cmd *cmd;
	char **args;
	int n = 0, rc;

	if (getenv("HPMEMCTL_DEVICE") && *getenv("HPMEMCTL_DEVICE"))
		c.dev_path = getenv("HPMEMCTL_DEVICE");
	/*
	 * Global options anywhere (until "--"); the rest, in order, is the
	 * command, compacted into argv itself (never ahead of the scan).
	 */
	args = argv;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--")) {
			while (++i < argc)
				args[n++] = argv[i];
			break;
		} else if (!strcmp(a, "--json")) {
			c.json = true;
		} else if (!strcmp(a, "--device")) {
			if (++i == argc) {
				fprintf(stderr, "hpmemctl: --device needs a PATH\n");
				return 2;
			}
			c.dev_path = argv[i];
		} else if (!strncmp(a, "--device=", 9)) {
			c.dev_path = a + 9;
		} else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			return 0;
		} else {
			args[n++] = argv[i];
		}
	}
	if (!n) {
		usage(stderr);
		return 2;
	}
	cmd = ctl_cmd_find(args[0]);
	if (!cmd) {
		fprintf(stderr, "hpmemctl: unknown command '%s' (see hpmemctl --help)\n",
			args[0]);
		return 2;
	}
	/* app reads regions of any backend (anon, hugetlbfs: no device). */
	rc = cmd->flags & CTL_NO_DEVICE ? 0 : dev_open(&c);
	if (rc)
		return rc;
	json_init(&c.jw, stdout);
	c.jw.pretty = true;
	rc = cmd->fn(&c, n - 1, args + 1);
	if (c.fd >= 0)
		close(c.fd);
	return rc;
}
