/* SPDX-License-Identifier: MIT */
/* Thread slot helpers for init.c. */
#ifndef HPM_THREAD_PRIV_H
#define HPM_THREAD_PRIV_H

#include "config.h"

/* Key for the exit destructor and the fork handler; idempotent. */
void hpm_thread_setup(void);
/* hpm_cleanup(): free every slot this process holds. */
void hpm_thread_release_process(struct hpm_config *c);

#endif /* HPM_THREAD_PRIV_H */
