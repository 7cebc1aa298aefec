/* SPDX-License-Identifier: MIT */
/* Per-thread index, unique across a primary and its secondaries. */
#ifndef HPMEM_THREAD_H
#define HPMEM_THREAD_H

#include <stdint.h>

#include <hpmem/common.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HPM_MAX_THREADS 128
#define HPM_THREAD_NONE UINT32_MAX

/* Private: read it through hpm_thread_index(). */
extern __thread unsigned int hpm_thread_idx_;  /* HPM_THREAD_NONE until registered */

/* The calling thread's index, or HPM_THREAD_NONE. One TLS load. */
static inline unsigned int hpm_thread_index(void) { return hpm_thread_idx_; }

/*
 * Takes a slot in the shared configuration's thread table and returns its
 * index (0..HPM_MAX_THREADS-1); a registered thread gets its own index
 * again. Slots of exited threads and dead processes are reclaimed (whatever
 * per-thread state they had is the owner's loss). A thread is unregistered
 * automatically when it exits, and every thread of the process at
 * hpm_cleanup(); after a re-init, threads must register again.
 * Returns the index, -ENODEV before hpm_init(), -ENOSPC when all slots are
 * held by live threads. A forked child starts unregistered.
 */
int hpm_thread_register(void);
/* Frees the caller's slot. 0, or -ENOENT when it holds none. */
int hpm_thread_unregister(void);

#ifdef __cplusplus
}
#endif

#endif /* HPMEM_THREAD_H */
