// SPDX-License-Identifier: MIT
/* Logging, hpm_errno and hpm_strerror(). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "log.h"

__hpm_export __thread int hpm_errno;

/* Warnings and errors until hpm_init() says otherwise. */
int hpm_log_level = HPM_LOG_WARN;

void hpm_log_set_level(int level)
{
	if (level <= 0)
		level = HPM_LOG_WARN;
	if (level > HPM_LOG_DEBUG)
		level = HPM_LOG_DEBUG;
	hpm_log_level = level;
}

void hpm_log(enum hpm_log_level level, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	size_t n;

	if ((int)level > hpm_log_level)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	n = strlen(buf);
	/* One write per line so lines of concurrent processes do not mix. */
	fprintf(stderr, "hpmem: %s%s", buf, n && buf[n - 1] == '\n' ? "" : "\n");
}

__hpm_export const char *hpm_strerror(int err)
{
	static __thread char buf[128];

	if (err < 0)
		err = -err;
	/* GNU strerror_r may return a static string instead of filling buf. */
	return strerror_r(err, buf, sizeof(buf));
}
