// SPDX-License-Identifier: MIT
/* EAL-like option parsing: argv, one string, the HPMEM_OPTS variable. */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <hpmem/init.h>

#include "internal.h"
#include "options.h"

__hpm_export void hpm_init_opts_default(struct hpm_init_opts *o)
{
	memset(o, 0, sizeof(*o));
}

static int parse_u64(const char *s, int base, uint64_t *out)
{
	unsigned long long v;
	char *end;

	if (!s || !*s || *s == '-' || isspace((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, base);
	if (errno || *end)
		return -EINVAL;
	*out = v;
	return 0;
}

/*
 * --socket-mem sets the low 32 bits of each entry, --socket-limit the high
 * ones (HPM_SOCKET_MEM()); each keeps what the other set.
 */
static int parse_socket_mem(const char *s, uint64_t mem[HPM_MAX_NODES], bool limit)
{
	uint64_t tmp[HPM_MAX_NODES] = { 0 };
	unsigned int n = 0;
	const char *p = s;

	if (!*s)
		return -EINVAL;
	for (;;) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		char num[24];

		if (n >= HPM_MAX_NODES || len == 0 || len >= sizeof(num))
			return -EINVAL;
		memcpy(num, p, len);
		num[len] = '\0';
		/* MiB; the cap keeps MiB -> bytes from overflowing. */
		if (parse_u64(num, 10, &tmp[n]) || tmp[n] > (1ULL << 30))
			return -EINVAL;
		n++;
		if (!comma)
			break;
		p = comma + 1;
	}
	for (int i = 0; i < HPM_MAX_NODES; i++) {
		if (limit)
			mem[i] = HPM_SOCKET_MEM(HPM_SOCKET_MEM_RESERVE(mem[i]), tmp[i]);
		else
			mem[i] = HPM_SOCKET_MEM(tmp[i], HPM_SOCKET_MEM_LIMIT(mem[i]));
	}
	return 0;
}

static int parse_enum(const char *s, const char *const *names, size_t n, int *out)
{
	for (size_t i = 0; i < n; i++) {
		if (names[i] && !strcmp(s, names[i])) {
			*out = (int)i;
			return 0;
		}
	}
	return -EINVAL;
}

static const char *const proc_names[] = { "auto", "primary", "secondary" };
static const char *const backend_names[] = { "auto", "kmod", "hugetlbfs", "anon" };
static const char *const iova_names[] = { "auto", "pa", "va", "compact" };
static const char *const level_names[] = { NULL, "err", "warn", "info", "debug" };

/* A region name is also a file name and a module region name. */
int hpm_region_name_check(const char *name)
{
	size_t len = strlen(name);

	if (len == 0)
		return -EINVAL;
	if (len >= HPM_NAME_SIZE)
		return -ENAMETOOLONG;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];

		if (!isalnum(c) && c != '-' && c != '_' && c != '.')
			return -EINVAL;
	}
	if (!strcmp(name, ".") || !strcmp(name, ".."))
		return -EINVAL;
	return 0;
}

enum opt_id {
	OPT_REGION, OPT_SOCKET_MEM, OPT_PROC_TYPE, OPT_BACKEND, OPT_IOVA_MODE,
	OPT_HUGE_DIR, OPT_BASE, OPT_MAX_MZ, OPT_LOG_LEVEL, OPT_VFIO,
	OPT_SOCKET_LIMIT, OPT_LEGACY_MEM,
};

static const char *const opt_names[] = {
	[OPT_REGION] = "region",
	[OPT_SOCKET_MEM] = "socket-mem",
	[OPT_PROC_TYPE] = "proc-type",
	[OPT_BACKEND] = "backend",
	[OPT_IOVA_MODE] = "iova-mode",
	[OPT_HUGE_DIR] = "huge-dir",
	[OPT_BASE] = "base-virtaddr",
	[OPT_MAX_MZ] = "max-memzones",
	[OPT_LOG_LEVEL] = "log-level",
	[OPT_VFIO] = "vfio",
	[OPT_SOCKET_LIMIT] = "socket-limit",
	[OPT_LEGACY_MEM] = "legacy-mem",
};

/* Options that are switches: present or not, no value. */
static bool opt_is_switch(int id)
{
	return id == OPT_VFIO || id == OPT_LEGACY_MEM;
}

/* Applies one option to @o; @val must outlive @o (argv or interned). */
static int apply(struct hpm_init_opts *o, int id, const char *val)
{
	uint64_t v;
	int e;

	switch (id) {
	case OPT_REGION:
		if (hpm_region_name_check(val))
			return -EINVAL;
		o->region = val;
		return 0;
	case OPT_SOCKET_MEM:
		return parse_socket_mem(val, o->socket_mem, false);
	case OPT_SOCKET_LIMIT:
		return parse_socket_mem(val, o->socket_mem, true);
	case OPT_LEGACY_MEM:
		o->flags |= HPM_INIT_F_LEGACY_MEM;
		return 0;
	case OPT_PROC_TYPE:
		if (parse_enum(val, proc_names, HPM_ARRAY_SIZE(proc_names), &e))
			return -EINVAL;
		o->proc_type = e;
		return 0;
	case OPT_BACKEND:
		if (parse_enum(val, backend_names, HPM_ARRAY_SIZE(backend_names), &e))
			return -EINVAL;
		o->backend = e;
		return 0;
	case OPT_IOVA_MODE:
		if (parse_enum(val, iova_names, HPM_ARRAY_SIZE(iova_names), &e))
			return -EINVAL;
		o->iova_mode = e;
		return 0;
	case OPT_HUGE_DIR:
		if (*val != '/')
			return -EINVAL;
		o->huge_dir = val;
		return 0;
	case OPT_BASE:
		/* Base 0 accepts 0x... hex like DPDK's --base-virtaddr. */
		if (parse_u64(val, 0, &v) || v == 0 || (v & 0xfff) ||
		    v >= (1ULL << 47))
			return -EINVAL;
		o->base_addr = (uintptr_t)v;
		return 0;
	case OPT_MAX_MZ:
		if (parse_u64(val, 0, &v) || v == 0 || v > (1U << 24))
			return -EINVAL;
		o->max_memzones = (unsigned int)v;
		return 0;
	case OPT_LOG_LEVEL:
		if (!parse_enum(val, level_names, HPM_ARRAY_SIZE(level_names), &e)) {
			o->log_level = e;
			return 0;
		}
		if (parse_u64(val, 10, &v) || v < HPM_LOG_ERR || v > HPM_LOG_DEBUG)
			return -EINVAL;
		o->log_level = (int)v;
		return 0;
	case OPT_VFIO:
		o->flags |= HPM_INIT_F_VFIO;
		return 0;
	}
	return -EINVAL;
}

/*
 * Parses argv[0..argc) (no program name) into @o. Returns the number of
 * words consumed (stopping at the first non-option, "--" consumed) or
 * -EINVAL. @o is only written on success.
 */
static int parse_words(struct hpm_init_opts *o, int argc, char **argv, bool all)
{
	struct hpm_init_opts tmp = *o;
	int i = 0;

	while (i < argc) {
		const char *arg = argv[i], *val, *eq;
		size_t namelen;
		int id = -1;

		if (!strcmp(arg, "--")) {
			i++;
			break;
		}
		if (strncmp(arg, "--", 2)) {
			if (all) {
				hpm_log(HPM_LOG_ERR, "options: '%s' is not an option", arg);
				return -EINVAL;
			}
			break;
		}
		arg += 2;
		eq = strchr(arg, '=');
		namelen = eq ? (size_t)(eq - arg) : strlen(arg);
		for (size_t k = 0; k < HPM_ARRAY_SIZE(opt_names); k++) {
			if (strlen(opt_names[k]) == namelen &&
			    !strncmp(arg, opt_names[k], namelen)) {
				id = (int)k;
				break;
			}
		}
		if (id < 0) {
			hpm_log(HPM_LOG_ERR, "options: unknown option '%s'", argv[i]);
			return -EINVAL;
		}
		if (opt_is_switch(id)) {
			if (eq) {
				hpm_log(HPM_LOG_ERR, "options: --%s takes no value", opt_names[id]);
				return -EINVAL;
			}
			val = NULL;
			i++;
		} else if (eq) {
			val = eq + 1;
			i++;
		} else {
			if (i + 1 >= argc) {
				hpm_log(HPM_LOG_ERR, "options: --%s needs a value", opt_names[id]);
				return -EINVAL;
			}
			val = argv[i + 1];
			i += 2;
		}
		if (apply(&tmp, id, val)) {
			hpm_log(HPM_LOG_ERR, "options: bad value '%s' for --%s", val,
				opt_names[id]);
			return -EINVAL;
		}
	}
	*o = tmp;
	return i;
}

__hpm_export int hpm_parse_args(struct hpm_init_opts *o, int argc, char **argv)
{
	int ret;

	if (!o || argc < 0 || (argc > 0 && !argv))
		return hpm_fail(EINVAL);
	if (argc <= 1)
		return 0;
	ret = parse_words(o, argc - 1, argv + 1, false);
	return ret < 0 ? hpm_fail(-ret) : ret;
}

/*
 * Strings parsed from hpm_parse_string() must outlive any opts struct that
 * points at them; they are kept on a list reachable from here (so leak
 * checkers stay quiet) and never freed. Option strings are few and short.
 */
struct interned {
	struct interned *next;
	char s[];
};

static struct interned *interned_list;
static pthread_mutex_t interned_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *intern(const char *s, size_t len)
{
	struct interned *it;
	const char *ret = NULL;

	pthread_mutex_lock(&interned_lock);
	for (it = interned_list; it; it = it->next) {
		if (strlen(it->s) == len && !memcmp(it->s, s, len)) {
			ret = it->s;
			goto out;
		}
	}
	it = malloc(sizeof(*it) + len + 1);
	if (!it)
		goto out;
	memcpy(it->s, s, len);
	it->s[len] = '\0';
	it->next = interned_list;
	interned_list = it;
	ret = it->s;
out:
	pthread_mutex_unlock(&interned_lock);
	return ret;
}

#define MAX_WORDS 64

__hpm_export int hpm_parse_string(struct hpm_init_opts *o, const char *s)
{
	char *words[MAX_WORDS];
	int n = 0, ret;
	const char *p;

	if (!o || !s)
		return hpm_fail(EINVAL);
	for (p = s; *p;) {
		const char *start;

		while (*p && isspace((unsigned char)*p))
			p++;
		if (!*p)
			break;
		start = p;
		while (*p && !isspace((unsigned char)*p))
			p++;
		if (n == MAX_WORDS)
			return hpm_fail(EINVAL);
		words[n] = (char *)intern(start, (size_t)(p - start));
		if (!words[n])
			return hpm_fail(ENOMEM);
		n++;
	}
	ret = parse_words(o, n, words, true);
	return ret < 0 ? hpm_fail(-ret) : 0;
}

int hpm_opts_apply_env(struct hpm_init_opts *o)
{
	const char *env = getenv(HPM_OPTS_ENV);
	int ret;

	if (!env || !*env)
		return 0;
	ret = hpm_parse_string(o, env);
	if (ret)
		hpm_log(HPM_LOG_ERR, "bad %s='%s'", HPM_OPTS_ENV, env);
	return ret;
}

const char *hpm_proc_type_name(enum hpm_proc_type t)
{
	return (unsigned int)t < HPM_ARRAY_SIZE(proc_names) ? proc_names[t] : "?";
}

const char *hpm_iova_mode_name(enum hpm_iova_mode m)
{
	return (unsigned int)m < HPM_ARRAY_SIZE(iova_names) ? iova_names[m] : "?";
}

__hpm_export const char *hpm_backend_name(enum hpm_backend b)
{
	return (unsigned int)b < HPM_ARRAY_SIZE(backend_names) ? backend_names[b] : "?";
}
