/* SPDX-License-Identifier: MIT */
/* Hooks hpm_init()/hpm_cleanup() call into vfio.c. */
#ifndef HPM_VFIO_PRIV_H
#define HPM_VFIO_PRIV_H

#include <stddef.h>

/*
 * After hpm_init() succeeded: the library's memory exists; map it into
 * every tracked container that has an IOMMU set (containers that kept
 * devices across hpm_cleanup()). Failures are logged, not returned.
 */
void hpm_vfio_mem_attach(void);

/*
 * In hpm_cleanup(), before the memory is unmapped: unmap it from every
 * tracked container, close library-created containers no device needs,
 * forget adopted ones no device of ours uses.
 */
void hpm_vfio_mem_detach(void);

/*
 * Dynamic regions, from mem_event.c: pages [@addr, @addr + @len) joined
 * (HPM_MEM_EVENT_ALLOC: map them into every container holding the
 * library's memory, before the heap hands them out) or left this
 * process's view (FREE: unmap them, before they go back).
 */
void hpm_vfio_mem_event(int type, const void *addr, size_t len);

#endif /* HPM_VFIO_PRIV_H */
