/* SPDX-License-Identifier: MIT */
/* Option helpers shared by init.c. */
#ifndef HPM_OPTIONS_H
#define HPM_OPTIONS_H

#include <hpmem/init.h>

/* 0, -EINVAL (empty, bad characters) or -ENAMETOOLONG. */
int hpm_region_name_check(const char *name);
/* Parses HPMEM_OPTS on top of @o; 0 or -EINVAL. */
int hpm_opts_apply_env(struct hpm_init_opts *o);
const char *hpm_proc_type_name(enum hpm_proc_type t);
const char *hpm_iova_mode_name(enum hpm_iova_mode m);

#endif /* HPM_OPTIONS_H */
