/* SPDX-License-Identifier: MIT */
/* Definitions every libhpmem header shares: errors, sockets, cache lines. */
#ifndef HPMEM_COMMON_H
#define HPMEM_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Any NUMA node: the caller's own first, then the others. */
#define HPM_SOCKET_ANY		(-1)
/* Highest number of NUMA nodes the library handles. */
#define HPM_MAX_NODES		8
#define HPM_CACHE_LINE_SIZE	64
/* Names of memzones, rings and mempools: bytes including the NUL. */
#define HPM_NAME_SIZE		32

#define __hpm_cache_aligned	__attribute__((aligned(HPM_CACHE_LINE_SIZE)))

/*
 * Calls that return a pointer return NULL on failure and leave the positive
 * errno in hpm_errno; calls that return int return -errno and also set it.
 */
extern __thread int hpm_errno;

/* A readable line for a positive or negative errno, including our own. */
const char *hpm_strerror(int err);

#ifdef __cplusplus
}
#endif

#endif /* HPMEM_COMMON_H */
