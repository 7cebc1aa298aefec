// SPDX-License-Identifier: MIT
/* Mempool drivers: rings in four producer/consumer modes, and a stack. */
#include <string.h>

#include <hpmem/mempool.h>
#include <hpmem/ring.h>

#include "internal.h"
#include "malloc_heap.h"
#include "mempool.h"

static unsigned int heap_flags(const struct hpm_mempool *mp)
{
	/* Driver storage follows the pool: on its node when one was named. */
	return mp->socket == HPM_SOCKET_ANY ? 0 : HPM_HEAP_F_STRICT;
}

static int ring_alloc(struct hpm_mempool *mp, unsigned int rflags)
{
	struct hpm_ring *r;
	ssize_t sz;
	int rc;

	/* EXACT_SZ: room for exactly the pool's n objects. */
	rflags |= HPM_RING_F_EXACT_SZ;
	sz = hpm_ring_get_memsize_flags(mp->size, rflags);
	if (sz < 0)
		return (int)sz;
	r = hpm_heap_alloc(mp->socket, (size_t)sz, 2 * HPM_CACHE_LINE_SIZE, 0,
			   heap_flags(mp));
	if (!r)
		return hpm_fail(ENOMEM);
	rc = hpm_ring_init(r, mp->name, mp->size, rflags);
	if (rc) {
		hpm_heap_free(r);
		return rc;
	}
	mp->pool_data = r;
	return 0;
}

static int ring_mp_mc_alloc(struct hpm_mempool *mp)
{
	return ring_alloc(mp, 0);
}

static int ring_sp_sc_alloc(struct hpm_mempool *mp)
{
	return ring_alloc(mp, HPM_RING_F_SP_ENQ | HPM_RING_F_SC_DEQ);
}

static int ring_mp_sc_alloc(struct hpm_mempool *mp)
{
	return ring_alloc(mp, HPM_RING_F_SC_DEQ);
}

static int ring_sp_mc_alloc(struct hpm_mempool *mp)
{
	return ring_alloc(mp, HPM_RING_F_SP_ENQ);
}

static void storage_free(struct hpm_mempool *mp)
{
	hpm_heap_free(mp->pool_data);
	mp->pool_data = NULL;
}

/* The ring's own flags pick single or multi: one enqueue/dequeue for all four. */
static int ring_enqueue(struct hpm_mempool *mp, void *const *objs,
			unsigned int n)
{
	return hpm_ring_enqueue_bulk(mp->pool_data, objs, n, NULL) == n ? 0 :
		-ENOBUFS;
}

static int ring_dequeue(struct hpm_mempool *mp, void **objs, unsigned int n)
{
	return hpm_ring_dequeue_bulk(mp->pool_data, objs, n, NULL) == n ? 0 :
		-ENOENT;
}

static unsigned int ring_count(const struct hpm_mempool *mp)
{
	return hpm_ring_count(mp->pool_data);
}

/*
 * The stack: LIFO, so the objects handed out are the ones most recently
 * returned (warm in the CPU caches). A spinlock is enough: critical
 * sections are a copy of n pointers.
 */
struct mp_stack {
	hpm_spinlock_t lock;
	uint32_t len;
	uint32_t size;
	void *objs[];
};

static int stack_alloc(struct hpm_mempool *mp)
{
	struct mp_stack *s;

	s = hpm_heap_alloc(mp->socket,
			   sizeof(*s) + (size_t)mp->size * sizeof(void *),
			   HPM_CACHE_LINE_SIZE, 0, heap_flags(mp));
	if (!s)
		return hpm_fail(ENOMEM);
	hpm_spinlock_init(&s->lock);
	s->len = 0;
	s->size = mp->size;
	mp->pool_data = s;
	return 0;
}

static int stack_enqueue(struct hpm_mempool *mp, void *const *objs,
			 unsigned int n)
{
	struct mp_stack *s = mp->pool_data;
	unsigned int i;

	hpm_spinlock_lock(&s->lock);
	if (s->len + n > s->size) {
		hpm_spinlock_unlock(&s->lock);
		return -ENOBUFS;
	}
	for (i = 0; i < n; i++)
		s->objs[s->len + i] = objs[i];
	s->len += n;
	hpm_spinlock_unlock(&s->lock);
	return 0;
}

static int stack_dequeue(struct hpm_mempool *mp, void **objs, unsigned int n)
{
	struct mp_stack *s = mp->pool_data;
	unsigned int i;

	hpm_spinlock_lock(&s->lock);
	if (n > s->len) {
		hpm_spinlock_unlock(&s->lock);
		return -ENOENT;
	}
	for (i = 0; i < n; i++)
		objs[i] = s->objs[s->len - 1 - i];
	s->len -= n;
	hpm_spinlock_unlock(&s->lock);
	return 0;
}

static unsigned int stack_count(const struct hpm_mempool *mp)
{
	const struct mp_stack *s = mp->pool_data;

	return __atomic_load_n(&s->len, __ATOMIC_RELAXED);
}

static const struct hpm_mempool_ops ops_table[HPM_MEMPOOL_OPS_COUNT] = {
	[HPM_MEMPOOL_OPS_RING_MP_MC] = {
		"ring_mp_mc", ring_mp_mc_alloc, storage_free, ring_enqueue,
		ring_dequeue, ring_count,
	},
	[HPM_MEMPOOL_OPS_RING_SP_SC] = {
		"ring_sp_sc", ring_sp_sc_alloc, storage_free, ring_enqueue,
		ring_dequeue, ring_count,
	},
	[HPM_MEMPOOL_OPS_RING_MP_SC] = {
		"ring_mp_sc", ring_mp_sc_alloc, storage_free, ring_enqueue,
		ring_dequeue, ring_count,
	},
	[HPM_MEMPOOL_OPS_RING_SP_MC] = {
		"ring_sp_mc", ring_sp_mc_alloc, storage_free, ring_enqueue,
		ring_dequeue, ring_count,
	},
	[HPM_MEMPOOL_OPS_STACK] = {
		"stack", stack_alloc, storage_free, stack_enqueue,
		stack_dequeue, stack_count,
	},
};

const struct hpm_mempool_ops *hpm_mempool_ops_get(unsigned int id)
{
	return id < HPM_MEMPOOL_OPS_COUNT ? &ops_table[id] : NULL;
}

int hpm_mempool_ops_find(const char *name)
{
	unsigned int i;

	if (!name)
		return -EINVAL;
	for (i = 0; i < HPM_MEMPOOL_OPS_COUNT; i++)
		if (!strcmp(ops_table[i].name, name))
			return (int)i;
	return -EINVAL;
}
