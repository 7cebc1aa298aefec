/* SPDX-License-Identifier: MIT */
/* Memzone table setup, called by the core during hpm_init(). */
#ifndef HPM_LIB_MEMZONE_H
#define HPM_LIB_MEMZONE_H

/*
 * Allocate the zone table (max_zones entries, 0 -> HPM_MEMZONE_DEFAULT_MAX)
 * from the heap and store it in the shared config's memzone_tbl. Primary
 * only, after the heaps exist. 0 or -errno.
 */
int hpm_memzone_setup(unsigned int max_zones);

struct hpm_config;
/*
 * Secondary: the table @c points at (mapped) has the layout
 * hpm_memzone_setup() gives it, inside the region. 0 or -EPROTO (logged).
 */
int hpm_memzone_table_check(const struct hpm_config *c);

#endif /* HPM_LIB_MEMZONE_H */
