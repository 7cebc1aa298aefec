/* SPDX-License-Identifier: MIT */
/* Mempool drivers: a fixed table indexed by enum hpm_mempool_ops_id. */
#ifndef HPM_LIB_MEMPOOL_H
#define HPM_LIB_MEMPOOL_H

#include <hpmem/mempool.h>

/*
 * The table is compiled into the library, so an id read from a pool in
 * shared memory selects the same driver in every process, whatever order
 * the processes initialised in (unlike DPDK's per-process registration).
 */
struct hpm_mempool_ops {
	const char *name;
	/* Make room for mp->size objects in mp->pool_data: 0 or -errno. */
	int (*alloc)(struct hpm_mempool *mp);
	void (*free)(struct hpm_mempool *mp);
	/* All n or nothing: 0, -ENOBUFS / -ENOENT. */
	int (*enqueue)(struct hpm_mempool *mp, void *const *objs,
		       unsigned int n);
	int (*dequeue)(struct hpm_mempool *mp, void **objs, unsigned int n);
	unsigned int (*count)(const struct hpm_mempool *mp);
};

/* NULL for an unknown id. */
const struct hpm_mempool_ops *hpm_mempool_ops_get(unsigned int id);
/* The id of a driver name, or -EINVAL. */
int hpm_mempool_ops_find(const char *name);

/* Call the process's event callbacks (lib/mempool_event.c); no lock held. */
void hpm_mempool_event_invoke_(enum hpm_mempool_event event,
			       struct hpm_mempool *mp);

#endif /* HPM_LIB_MEMPOOL_H */
