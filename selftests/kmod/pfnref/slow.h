/* SPDX-License-Identifier: GPL-2.0 */
/* Test-only: PFNREF_IOC_SLOW_LOOKUP (slow.c). */
#ifndef HPMEM_PFNREF_SLOW_H
#define HPMEM_PFNREF_SLOW_H

#include <linux/types.h>

long pfnref_slow_lookup(const void *owner, u64 us);
void pfnref_slow_release(const void *owner);

#endif /* HPMEM_PFNREF_SLOW_H */
