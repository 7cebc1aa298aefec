// SPDX-License-Identifier: MIT
/* Mempool life-cycle event callbacks (READY, DESTROY), per process. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <hpmem/mempool.h>

#include "internal.h"
#include "mempool.h"

struct ev_cb {
	hpm_mempool_event_callback *func;
	void *user_data;
};

/*
 * The list is per process: the callbacks are function pointers into this
 * process. ev_lock is never held while a callback runs, so callbacks may
 * register and unregister freely (DPDK held a lock there).
 */
static pthread_mutex_t ev_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ev_cb *ev_cbs;
static unsigned int ev_nb, ev_cap;

/* Index of (func, user_data), or -1; under ev_lock. */
static int ev_find(hpm_mempool_event_callback *func, void *user_data)
{
	unsigned int i;

	for (i = 0; i < ev_nb; i++)
		if (ev_cbs[i].func == func && ev_cbs[i].user_data == user_data)
			return (int)i;
	return -1;
}

__hpm_export int
hpm_mempool_event_callback_register(hpm_mempool_event_callback *func,
				    void *user_data)
{
	int rc = 0;

	if (!func)
		return hpm_fail(EINVAL);
	pthread_mutex_lock(&ev_lock);
	if (ev_find(func, user_data) >= 0) {
		rc = -EEXIST;
	} else {
		if (ev_nb == ev_cap) {
			unsigned int cap = ev_cap ? ev_cap * 2 : 8;
			struct ev_cb *n = realloc(ev_cbs, cap * sizeof(*n));

			if (!n) {
				rc = -ENOMEM;
				goto out;
			}
			ev_cbs = n;
			ev_cap = cap;
		}
		ev_cbs[ev_nb].func = func;
		ev_cbs[ev_nb].user_data = user_data;
		ev_nb++;
	}
out:
	pthread_mutex_unlock(&ev_lock);
	return rc < 0 ? hpm_fail(-rc) : 0;
}

__hpm_export int
hpm_mempool_event_callback_unregister(hpm_mempool_event_callback *func,
				      void *user_data)
{
	int i;

	pthread_mutex_lock(&ev_lock);
	i = ev_find(func, user_data);
	if (i >= 0) {
		/* keep the order: callbacks run in registration order */
		memmove(&ev_cbs[i], &ev_cbs[i + 1],
			(ev_nb - (unsigned int)i - 1) * sizeof(*ev_cbs));
		ev_nb--;
	}
	pthread_mutex_unlock(&ev_lock);
	return i < 0 ? hpm_fail(ENOENT) : 0;
}

/*
 * Call from a snapshot taken under the lock, and re-check each entry
 * before its call: one that an earlier callback unregistered is skipped,
 * one registered meanwhile waits for the next event.
 */
void hpm_mempool_event_invoke_(enum hpm_mempool_event event,
			       struct hpm_mempool *mp)
{
	struct ev_cb *snap;
	unsigned int i, n;
	bool live;

	pthread_mutex_lock(&ev_lock);
	n = ev_nb;
	snap = n ? malloc(n * sizeof(*snap)) : NULL;
	if (snap)
		memcpy(snap, ev_cbs, n * sizeof(*snap));
	pthread_mutex_unlock(&ev_lock);
	if (!snap) {
		if (n)
			hpm_log(HPM_LOG_ERR, "mempool %s: no memory to notify %u callbacks",
				mp->name, n);
		return;
	}
	for (i = 0; i < n; i++) {
		pthread_mutex_lock(&ev_lock);
		live = ev_find(snap[i].func, snap[i].user_data) >= 0;
		pthread_mutex_unlock(&ev_lock);
		if (live)
			snap[i].func(event, mp, snap[i].user_data);
	}
	free(snap);
}
