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

#endif /* HPM_LIB_MEMZONE_H */
