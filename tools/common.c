// SPDX-License-Identifier: MIT
/* hpmemctl helpers every command uses: errors with hints, parsing, attach. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "hpmemctl.h"

/* What an operator can do about an errno the module returns. */
static const char *hint(int err)
{
	switch (err) {
	case EPERM:
	case EACCES:
		return "needs root (CAP_SYS_ADMIN)";
	case ENOMEM:
		return "the pool has too few free pages, or RLIMIT_MEMLOCK is too low: "
		       "see 'hpmemctl nodes', grow a pool with 'hpmemctl resize NODE PAGES'";
	case ENODEV:
		return "no pool on that node: see 'hpmemctl nodes'";
	case ENOENT:
		return "no region of that name for this user: see 'hpmemctl regions'";
	case EEXIST:
		return "destroy it first or choose another name";
	case EBUSY:
		return "still in use: see 'hpmemctl regions' (maps) and 'hpmemctl nodes'";
	case EDQUOT:
		return "this user holds max_regions_per_user regions: destroy some";
	case ENOSPC:
		return "a region holds at most 131072 pages";
	case ENOTTY:
	case EOPNOTSUPP:
		return "not an hpmem device, or an hpmem module too old for this: update it";
	default:
		return NULL;
	}
}

int ctl_fail(const char *what, int err)
{
	const char *h = hint(err);

	fprintf(stderr, "hpmemctl: %s: %s%s%s%s\n", what, strerror(err),
		h ? " (" : "", h ? h : "", h ? ")" : "");
	return 1;
}

int ctl_failf(const char *fmt, ...)
{
	va_list ap;

	fputs("hpmemctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}

int ctl_usage(const struct ctl_cmd *cmd)
{
	return ctl_usage_why(cmd, NULL);
}

int ctl_usage_why(const struct ctl_cmd *cmd, const char *why)
{
	fprintf(stderr, "hpmemctl: %s%susage: hpmemctl [--json] %s%s%s\n",
		why ? why : "", why ? "; " : "", cmd->name,
		*cmd->usage ? " " : "", cmd->usage);
	return 2;
}

int ctl_json_finish(struct ctl *c)
{
	int rc = json_finish(&c->jw);

	if (rc)
		return ctl_fail("writing JSON", -rc);
	return 0;
}

int parse_u32(const char *s, uint32_t *out)
{
	uint64_t v;

	if (parse_u64(s, &v) || v > UINT32_MAX)
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
}

int parse_u64(const char *s, uint64_t *out)
{
	unsigned long long v;
	char *end;

	if (*s < '0' || *s > '9')	/* no sign, no space */
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || *end)
		return -EINVAL;
	*out = v;
	return 0;
}

int parse_node_pages(const char *s, uint32_t *node, uint64_t *pages)
{
	const char *colon = strchr(s, ':');
	char buf[16];

	if (!colon || (size_t)(colon - s) >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, colon - s);
	buf[colon - s] = '\0';
	if (parse_u32(buf, node) || parse_u64(colon + 1, pages) || !*pages)
		return -EINVAL;
	return 0;
}

int copy_name(char dst[HPMEM_NAME_MAX], const char *src)
{
	size_t len = strlen(src);

	if (!len)
		return -EINVAL;
	if (len >= HPMEM_NAME_MAX)
		return -ENAMETOOLONG;
	memcpy(dst, src, len + 1);
	return 0;
}

int parse_uid_opt(int *argc, char ***argv, bool *by_uid, uint32_t *uid)
{
	*by_uid = false;
	if (*argc >= 2 && !strcmp((*argv)[0], "--uid")) {
		if (parse_u32((*argv)[1], uid))
			return -EINVAL;
		*by_uid = true;
		*argc -= 2;
		*argv += 2;
	}
	if (*argc < 1 || (*argv)[0][0] == '-')
		return -EINVAL;
	return 0;
}

int get_info(int fd, struct hpmem_info *info)
{
	memset(info, 0, sizeof(*info));
	info->argsz = sizeof(*info);
	return ioctl(fd, HPMEM_IOC_INFO, info) ? -errno : 0;
}

int region_attach(int fd, const char *name, bool by_uid, uint32_t uid,
		  struct hpmem_region_attach *out)
{
	struct hpmem_region_attach at = { .argsz = sizeof(at) };
	int rc = copy_name(at.name, name);

	if (rc)
		return rc;
	if (by_uid) {
		at.flags = HPMEM_NAME_UID;
		at.uid = uid;
	}
	if (ioctl(fd, HPMEM_IOC_REGION_ATTACH, &at))
		return -errno;
	if (out)
		*out = at;
	return 0;
}

void module_param_read(const char *param, char *buf, size_t len)
{
	char path[128];
	ssize_t n = -1;
	int fd;

	snprintf(path, sizeof(path), "/sys/module/hpmem/parameters/%s", param);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		n = read(fd, buf, len - 1);
		close(fd);
	}
	if (n <= 0) {
		snprintf(buf, len, "?");
		return;
	}
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
}

void text_name(const char *name)
{
	for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
		if (*p <= 0x20 || *p >= 0x7f || *p == '\\')
			printf("\\x%02x", *p);
		else
			putchar(*p);
	}
}

/*
 * Names through NSS (LDAP, sssd...) in the dynamic build; the static one,
 * for minimal systems such as the test guest, reads /etc/passwd and
 * /etc/group itself, as static glibc cannot load NSS modules.
 */
#ifdef HPMEMCTL_NSS
static const char *lookup_user(uint32_t uid)
{
	struct passwd *pw = getpwuid(uid);

	return pw ? pw->pw_name : NULL;
}

static const char *lookup_group(uint32_t gid)
{
	struct group *gr = getgrgid(gid);

	return gr ? gr->gr_name : NULL;
}
#else
static char found[64];

static const char *lookup_user(uint32_t uid)
{
	FILE *f = fopen("/etc/passwd", "re");
	struct passwd *pw;
	const char *name = NULL;

	while (f && (pw = fgetpwent(f)))
		if (pw->pw_uid == uid) {
			snprintf(found, sizeof(found), "%s", pw->pw_name);
			name = found;
			break;
		}
	if (f)
		fclose(f);
	return name;
}

static const char *lookup_group(uint32_t gid)
{
	FILE *f = fopen("/etc/group", "re");
	struct group *gr;
	const char *name = NULL;

	while (f && (gr = fgetgrent(f)))
		if (gr->gr_gid == gid) {
			snprintf(found, sizeof(found), "%s", gr->gr_name);
			name = found;
			break;
		}
	if (f)
		fclose(f);
	return name;
}
#endif

/* @buf holds the number when there is no name; the last answer is cached. */
const char *uid_name(uint32_t uid, char *buf, size_t len)
{
	static char cached[64];
	static uint32_t cached_uid;
	static bool have;
	const char *name;

	if (have && cached_uid == uid)
		return cached;
	name = lookup_user(uid);
	if (!name || !*name || strlen(name) >= sizeof(cached)) {
		snprintf(buf, len, "%u", uid);
		return buf;
	}
	snprintf(cached, sizeof(cached), "%s", name);
	cached_uid = uid;
	have = true;
	return cached;
}

const char *gid_name(uint32_t gid, char *buf, size_t len)
{
	const char *name = lookup_group(gid);

	if (!name || !*name) {
		snprintf(buf, len, "%u", gid);
		return buf;
	}
	return name;
}
