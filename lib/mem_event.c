// SPDX-License-Identifier: MIT
/* Memory event callbacks (DPDK's rte_mem_event_callback_*), per process. */
#include <pthread.h>
#include <string.h>

#include <hpmem/mem_event.h>

#include "config.h"
#include "dynmem.h"
#include "internal.h"
#include "vfio_priv.h"

#define MEM_EV_MAX	32
#define MEM_EV_NAME	64

struct mem_ev_cb {
	char name[MEM_EV_NAME];
	hpm_mem_event_callback_t fn;
	void *arg;
};

/*
 * Function pointers are per process, so the list is too; the events
 * themselves come from the shared memseg table (dynmem.c). mem_ev_lock is
 * held while callbacks run, so that unregister returns only once no call
 * of that callback is in progress (a driver may free @arg then).
 */
static pthread_mutex_t mem_ev_lock = PTHREAD_MUTEX_INITIALIZER;
static struct mem_ev_cb mem_ev[MEM_EV_MAX];
static unsigned int mem_ev_nb;

static int find(const char *name, void *arg, bool any_arg)
{
	for (unsigned int i = 0; i < mem_ev_nb; i++)
		if (!strcmp(mem_ev[i].name, name) && (any_arg || mem_ev[i].arg == arg))
			return (int)i;
	return -1;
}

__hpm_export int hpm_mem_event_callback_register(const char *name,
						 hpm_mem_event_callback_t fn, void *arg)
{
	int ret = 0;

	if (!name || !fn || !*name || strnlen(name, MEM_EV_NAME) == MEM_EV_NAME)
		return hpm_fail(EINVAL);
	if (!hpm_cfg)
		return hpm_fail(ENODEV);
	/* Changes made before registering are not this callback's to hear. */
	hpm_mem_event_sync();
	pthread_mutex_lock(&mem_ev_lock);
	if (find(name, arg, true) >= 0) {
		ret = -EEXIST;
	} else if (mem_ev_nb == MEM_EV_MAX) {
		ret = -ENOSPC;
	} else {
		snprintf(mem_ev[mem_ev_nb].name, MEM_EV_NAME, "%s", name);
		mem_ev[mem_ev_nb].fn = fn;
		mem_ev[mem_ev_nb].arg = arg;
		mem_ev_nb++;
	}
	pthread_mutex_unlock(&mem_ev_lock);
	return ret ? hpm_fail(-ret) : 0;
}

__hpm_export int hpm_mem_event_callback_unregister(const char *name, void *arg)
{
	int i;

	if (!name)
		return hpm_fail(EINVAL);
	pthread_mutex_lock(&mem_ev_lock);
	i = find(name, arg, false);
	if (i >= 0) {
		memmove(&mem_ev[i], &mem_ev[i + 1], (mem_ev_nb - (unsigned int)i - 1) * sizeof(mem_ev[0]));
		mem_ev_nb--;
	}
	pthread_mutex_unlock(&mem_ev_lock);
	return i < 0 ? hpm_fail(ENOENT) : 0;
}

/*
 * The library's own VFIO containers map new pages before any callback
 * hears of them, and unmap leaving pages after every callback did: a
 * driver's callback sees the same order relative to the library's DMA
 * mappings as DPDK's (its VFIO callback is registered first).
 */
void hpm_mem_event_notify(int type, const void *addr, size_t len)
{
	if (type == HPM_MEM_EVENT_ALLOC)
		hpm_vfio_mem_event(type, addr, len);
	pthread_mutex_lock(&mem_ev_lock);
	for (unsigned int i = 0; i < mem_ev_nb; i++)
		mem_ev[i].fn((enum hpm_mem_event)type, addr, len, mem_ev[i].arg);
	pthread_mutex_unlock(&mem_ev_lock);
	if (type == HPM_MEM_EVENT_FREE)
		hpm_vfio_mem_event(type, addr, len);
}
