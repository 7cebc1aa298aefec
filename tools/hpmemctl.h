/* SPDX-License-Identifier: MIT */
/* hpmemctl's shared state and helpers: what every command file needs. */
#ifndef HPMEMCTL_H
#define HPMEMCTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/hpmem.h>

#include "json.h"

/* What main hands every command. */
struct ctl {
	const char *dev_path;	/* --device, $HPMEMCTL_DEVICE or /dev/hpmem */
	int fd;			/* dev_path, open O_RDWR */
	bool json;		/* --json: one JSON document on stdout */
	struct json_writer jw;	/* stdout; used only with --json */
};

/*
 * One command. @fn returns the exit status: 0, 1 (failed; one line on
 * stderr said why and what to do) or 2 (usage; @usage was printed).
 */
struct ctl_cmd {
	const char *name;
	int (*fn)(struct ctl *c, int argc, char **argv);
	const char *usage;	/* arguments, for the usage line */
	const char *help;	/* one line for --help */
	unsigned int flags;	/* CTL_* */
};

/* The command does not use /dev/hpmem: main does not open it (fd -1). */
#define CTL_NO_DEVICE	(1U << 0)

/* Commands, one family per file. */
int cmd_info(struct ctl *c, int argc, char **argv);		/* pool.c */
int cmd_nodes(struct ctl *c, int argc, char **argv);		/* pool.c */
int cmd_resize(struct ctl *c, int argc, char **argv);		/* pool.c */
int cmd_create(struct ctl *c, int argc, char **argv);		/* region.c */
int cmd_destroy(struct ctl *c, int argc, char **argv);		/* region.c */
int cmd_grow(struct ctl *c, int argc, char **argv);		/* region.c */
int cmd_regions(struct ctl *c, int argc, char **argv);		/* regions.c */
int cmd_segs(struct ctl *c, int argc, char **argv);		/* segs.c */
int cmd_app(struct ctl *c, int argc, char **argv);		/* hpmemctl_app.c */

/*
 * Failure: prints "hpmemctl: WHAT: strerror(err)" plus a hint on what to
 * do for the errnos that have one, as one line on stderr; returns 1.
 */
int ctl_fail(const char *what, int err);
/* Failure with a message of its own (printf format), one line; returns 1. */
int ctl_failf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Usage error: "hpmemctl: usage: hpmemctl CMD USAGE"; returns 2. */
int ctl_usage(const struct ctl_cmd *cmd);
/* The same, after what was wrong: "hpmemctl: WHY; usage: ..."; returns 2. */
int ctl_usage_why(const struct ctl_cmd *cmd, const char *why);
/* The table entry of @name, for ctl_usage(). */
const struct ctl_cmd *ctl_cmd_find(const char *name);

/* Ends the command's JSON document; 0, or 1 after a message. */
int ctl_json_finish(struct ctl *c);

int parse_u32(const char *s, uint32_t *out);
int parse_u64(const char *s, uint64_t *out);
/* "NODE:PAGES" -> node, pages (> 0); -EINVAL on anything else. */
int parse_node_pages(const char *s, uint32_t *node, uint64_t *pages);
/* "[--uid UID] NAME ...": consumes --uid UID; -EINVAL without a NAME. */
int parse_uid_opt(int *argc, char ***argv, bool *by_uid, uint32_t *uid);
/* A region name into a UAPI name field; -EINVAL or -ENAMETOOLONG. */
int copy_name(char dst[HPMEM_NAME_MAX], const char *src);

/* HPMEM_IOC_INFO; 0 or -errno. */
int get_info(int fd, struct hpmem_info *info);
/* Attaches @name (of @uid when @by_uid) to @fd; 0 or -errno; @out may be NULL. */
int region_attach(int fd, const char *name, bool by_uid, uint32_t uid,
		  struct hpmem_region_attach *out);
/* Reads /sys/module/hpmem/parameters/@param into @buf ("?" if unreadable). */
void module_param_read(const char *param, char *buf, size_t len);

/* User or group name, or the number in @buf when there is none. */
const char *uid_name(uint32_t uid, char *buf, size_t len);
const char *gid_name(uint32_t gid, char *buf, size_t len);

/* A region name as text: bytes outside printable ASCII as \xNN. */
void text_name(const char *name);

#endif /* HPMEMCTL_H */
