/* SPDX-License-Identifier: MIT */
/* Log level control (hpm_log() itself is declared in internal.h). */
#ifndef HPM_LOG_H
#define HPM_LOG_H

#include "internal.h"

extern int hpm_log_level;

/* 0 or below: warnings and errors; clamped to HPM_LOG_DEBUG. */
void hpm_log_set_level(int level);

#endif /* HPM_LOG_H */
