// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: hpm_parse_args() and hpm_parse_string() on any input.
 * The input is split at NUL and newline bytes into argv words (the first
 * one is argv[0]); the same bytes, NULs turned to spaces, feed the string
 * parser. Either the options come out in range, or the call fails with
 * -EINVAL and leaves the opts untouched.
 *
 * make test runs it for 30 s from selftests/run.sh. Longer, e.g. an hour on
 * both cores, from the top of the tree (make lib fuzz && make -C selftests
 * fuzz first):
 *   build/selftests/fuzz/options -max_total_time=3600 -jobs=2 -workers=2 \
 *       build/fuzz-corpus/options selftests/fuzz/corpus/options
 * A crash leaves crash-<sha1> in the working directory; rerun it with
 *   build/selftests/fuzz/options crash-<sha1>
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <hpmem/init.h>

#include "log.h"
#include "options.h"

#define MAX_ARGS	64

static void check_opts(const struct hpm_init_opts *o)
{
	if ((unsigned int)o->proc_type > HPM_PROC_SECONDARY ||
	    (unsigned int)o->backend > HPM_BACKEND_ANON ||
	    (unsigned int)o->iova_mode > HPM_IOVA_COMPACT ||
	    (o->flags & ~(HPM_INIT_F_VFIO | HPM_INIT_F_LEGACY_MEM)) ||
	    o->log_level < 0 || o->log_level > 4 ||
	    (o->base_addr & 0xfff) || o->max_memzones > (1U << 24) ||
	    (o->region && hpm_region_name_check(o->region)) ||
	    (o->huge_dir && o->huge_dir[0] != '/'))
		abort();
	/* Both halves of an entry are MiB counts with the parser's cap. */
	for (int n = 0; n < HPM_MAX_NODES; n++)
		if (HPM_SOCKET_MEM_RESERVE(o->socket_mem[n]) > (1ULL << 30) ||
		    HPM_SOCKET_MEM_LIMIT(o->socket_mem[n]) > (1ULL << 30))
			abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	/* Every rejected option logs a line; millions of them help nobody. */
	hpm_log_level = 0;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hpm_init_opts o, before;
	char *buf, *argv[MAX_ARGS + 1];
	int argc = 0, ret;

	buf = malloc(size + 1);
	if (!buf)
		return 0;
	memcpy(buf, data, size);
	buf[size] = '\0';

	/* argv: words at NUL or newline; an empty word is an argument too. */
	for (size_t i = 0, start = 0; i <= size && argc < MAX_ARGS; i++) {
		if (i == size || buf[i] == '\0' || buf[i] == '\n') {
			buf[i] = '\0';
			argv[argc++] = &buf[start];
			start = i + 1;
		}
	}
	argv[argc] = NULL;
	hpm_init_opts_default(&o);
	o.log_level = 2;	/* a non-default value that must survive failures */
	before = o;
	ret = hpm_parse_args(&o, argc, argv);
	if (ret >= 0) {
		if (ret > (argc > 1 ? argc - 1 : 0))
			abort();
		check_opts(&o);
	} else if (ret != -EINVAL || memcmp(&o, &before, sizeof(o))) {
		abort();
	}

	/* The string form: the same bytes as one line. */
	for (size_t i = 0; i < size; i++)
		if (buf[i] == '\0')
			buf[i] = ' ';
	o = before;
	ret = hpm_parse_string(&o, buf);
	if (ret == 0)
		check_opts(&o);
	else if (ret != -EINVAL || memcmp(&o, &before, sizeof(o)))
		abort();
	free(buf);
	return 0;
}
