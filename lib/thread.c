// SPDX-License-Identifier: MIT
/*
 * Thread slots: an index per thread, unique across the primary and its
 * secondaries, for per-thread state in shared memory (mempool caches).
 */
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <hpmem/thread.h>

#include "config.h"
#include "internal.h"
#include "thread.h"

__hpm_export __thread unsigned int hpm_thread_idx_ = HPM_THREAD_NONE;

static pthread_key_t exit_key;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static uint64_t owner_of(pid_t pid, pid_t tid)
{
	return (uint64_t)(uint32_t)pid << 32 | (uint32_t)tid;
}

static uint64_t self_owner(void)
{
	return owner_of(getpid(), (pid_t)syscall(SYS_gettid));
}

/* Is the owner of a slot gone (thread exited or process dead)? */
static bool owner_dead(uint64_t owner)
{
	pid_t pid = (pid_t)(owner >> 32), tid = (pid_t)(uint32_t)owner;

	return syscall(SYS_tgkill, pid, tid, 0) && errno == ESRCH;
}

static void release_slot(struct hpm_config *c, unsigned int idx, uint64_t owner)
{
	uint64_t expected = owner;

	/* Only our own claim is released; a reclaimer may have taken it. */
	atomic_compare_exchange_strong_explicit(&c->threads[idx].owner, &expected, 0,
						memory_order_release,
						memory_order_relaxed);
}

static void thread_exit(void *arg)
{
	struct hpm_config *c = hpm_cfg;
	unsigned int idx = hpm_thread_idx_;

	(void)arg;
	if (c && idx < HPM_MAX_THREADS)
		release_slot(c, idx, self_owner());
	hpm_thread_idx_ = HPM_THREAD_NONE;
}

/* The child of fork() is another thread: it must not share our slot. */
static void atfork_child(void)
{
	hpm_thread_idx_ = HPM_THREAD_NONE;
}

static void setup_once(void)
{
	pthread_key_create(&exit_key, thread_exit);
	pthread_atfork(NULL, NULL, atfork_child);
}

void hpm_thread_setup(void)
{
	pthread_once(&once, setup_once);
}

static int claim(struct hpm_config *c, unsigned int idx, uint64_t old, uint64_t me)
{
	/*
	 * acq_rel: acquire pairs with the previous owner's release in
	 * release_slot(), so whatever per-thread state it left in shared
	 * memory is visible to us.
	 */
	if (!atomic_compare_exchange_strong_explicit(&c->threads[idx].owner, &old, me,
						     memory_order_acq_rel,
						     memory_order_relaxed))
		return -1;
	hpm_thread_idx_ = idx;
	pthread_setspecific(exit_key, (void *)1);
	return (int)idx;
}

__hpm_export int hpm_thread_register(void)
{
	struct hpm_config *c = hpm_cfg;
	uint64_t me;

	if (!c)
		return hpm_fail(ENODEV);
	if (hpm_thread_idx_ != HPM_THREAD_NONE)
		return (int)hpm_thread_idx_;
	hpm_thread_setup();
	me = self_owner();
	for (unsigned int i = 0; i < HPM_MAX_THREADS; i++) {
		if (!atomic_load_explicit(&c->threads[i].owner, memory_order_relaxed) &&
		    claim(c, i, 0, me) >= 0)
			return (int)i;
	}
	/* All taken: look for owners that died without unregistering. */
	for (unsigned int i = 0; i < HPM_MAX_THREADS; i++) {
		uint64_t old = atomic_load_explicit(&c->threads[i].owner,
						    memory_order_relaxed);

		if ((!old || owner_dead(old)) && claim(c, i, old, me) >= 0) {
			if (old)
				hpm_log(HPM_LOG_DEBUG, "thread slot %u reclaimed from dead %d/%d",
					i, (int)(old >> 32), (int)(uint32_t)old);
			return (int)i;
		}
	}
	return hpm_fail(ENOSPC);
}

__hpm_export int hpm_thread_unregister(void)
{
	struct hpm_config *c = hpm_cfg;
	unsigned int idx = hpm_thread_idx_;

	if (idx == HPM_THREAD_NONE)
		return hpm_fail(ENOENT);
	if (c && idx < HPM_MAX_THREADS)
		release_slot(c, idx, self_owner());
	hpm_thread_idx_ = HPM_THREAD_NONE;
	pthread_setspecific(exit_key, NULL);
	return 0;
}

void hpm_thread_release_process(struct hpm_config *c)
{
	uint32_t pid = (uint32_t)getpid();

	for (unsigned int i = 0; i < HPM_MAX_THREADS; i++) {
		uint64_t old = atomic_load_explicit(&c->threads[i].owner,
						    memory_order_relaxed);

		if (old && (uint32_t)(old >> 32) == pid)
			release_slot(c, i, old);
	}
	hpm_thread_idx_ = HPM_THREAD_NONE;
	pthread_setspecific(exit_key, NULL);
}
