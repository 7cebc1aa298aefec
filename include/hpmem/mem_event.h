/* SPDX-License-Identifier: MIT */
/* Memory events: pages a dynamic region gains or gives back (DPDK's rte_mem_event). */
#ifndef HPMEM_MEM_EVENT_H
#define HPMEM_MEM_EVENT_H

#include <stddef.h>

#include <hpmem/common.h>

#ifdef __cplusplus
extern "C" {
#endif

enum hpm_mem_event {
	HPM_MEM_EVENT_ALLOC = 0,	/* pages joined a heap; not yet used */
	HPM_MEM_EVENT_FREE,		/* pages left a heap; about to go back */
};

/*
 * @addr, @len: whole pages, VA-contiguous, on one node. Called with the
 * node heap's lock held: the callback must not allocate from or free to
 * the hpmem heaps, nor register or unregister callbacks.
 */
typedef void (*hpm_mem_event_callback_t)(enum hpm_mem_event type, const void *addr,
					  size_t len, void *arg);

/*
 * Call @fn for each change of a dynamic region (--socket-limit) seen by
 * this process. ALLOC comes before any block on the new pages is handed
 * out in this process; FREE after the pages left the heap and before they
 * go back to the system, in the process that gives them back. Other
 * processes learn of changes made elsewhere at their next heap growth,
 * shrink or hpm_mem_event_sync() (no messages between processes): they
 * get ALLOC before they can allocate from the new pages themselves, and
 * FREE once the pages are gone. Pages present at hpm_init() are not
 * reported (walk them with hpm_memseg_walk()).
 * @name: unique per process, up to 63 bytes. 0, -EINVAL, -EEXIST (name
 * taken), -ENOSPC (32 callbacks registered) or -ENODEV before hpm_init().
 */
int hpm_mem_event_callback_register(const char *name, hpm_mem_event_callback_t fn,
				    void *arg);
/* 0, or -ENOENT when no callback @name with @arg is registered. */
int hpm_mem_event_callback_unregister(const char *name, void *arg);

/*
 * Deliver the events of changes other processes made since this process
 * last looked. Cheap when nothing changed (one shared counter read).
 * Returns the number of events delivered, or -ENODEV before hpm_init().
 */
int hpm_mem_event_sync(void);

/*
 * A node's memory in the region: @limit is the most its heap may hold
 * (--socket-limit; for a region without one, what it has), @reserved the
 * part taken at start and kept (--socket-mem), @present what is backed by
 * pages now (reserved <= present <= limit), @grown and @released the pages
 * added and given back since start. Heap use within @present is in
 * hpm_malloc_get_socket_stats().
 */
struct hpm_mem_socket_info {
	uint64_t limit;
	uint64_t reserved;
	uint64_t present;
	uint64_t grown;
	uint64_t released;
};

/* 0, -EINVAL (bad @socket or @info) or -ENODEV before hpm_init(). */
int hpm_mem_socket_info(int socket, struct hpm_mem_socket_info *info);

#ifdef __cplusplus
}
#endif

#endif /* HPMEM_MEM_EVENT_H */
