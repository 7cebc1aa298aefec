/* SPDX-License-Identifier: MIT */
/* Memzone table setup, called by the core during hpm_init(). */
#ifndef HPM_LIB_MEMZONE_H
#define HPM_LIB_MEMZONE_H

#include <stdint.h>

#include <hpmem/memzone.h>

/*
 * Allocate the zone table (max_zones entries, 0 -> HPM_MEMZONE_DEFAULT_MAX)
 * from the heap and store it in the shared config's memzone_tbl. Primary
 * only, after the heaps exist. 0 or -errno.
 */
int hpm_memzone_setup(unsigned int max_zones);

struct hpm_config;
struct hpm_view;
/*
 * Secondary: the table @c points at, read through @v (the region as this
 * process sees it), has the layout hpm_memzone_setup() gives it, inside the
 * region. 0 or -EPROTO (logged).
 */
int hpm_memzone_table_check(const struct hpm_config *c, const struct hpm_view *v);
/*
 * Read-only, lock-free walk for inspect.c over the table of @c (a private
 * copy of a config whose table passed hpm_memzone_table_check()), read
 * through @v: @fn gets a copy of each live zone and the zone's address in
 * the region; its non-zero return stops the walk and is returned. Bounded
 * whatever the table holds; a zone reserved or freed meanwhile may be
 * missed or seen. -EPROTO when the table is not in @v.
 */
int hpm_memzone_table_peek(const struct hpm_config *c, const struct hpm_view *v,
			   int (*fn)(const struct hpm_memzone *mz, uintptr_t at, void *arg),
			   void *arg);

#endif /* HPM_LIB_MEMZONE_H */
