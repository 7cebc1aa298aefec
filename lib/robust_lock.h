/* SPDX-License-Identifier: MIT */
/* A process-shared spinlock that names its holder, so that waiters can take
 * it over from a holder that died inside the critical section. */
#ifndef HPM_ROBUST_LOCK_H
#define HPM_ROBUST_LOCK_H

#include <stdint.h>

#include "internal.h"

/*
 * @owner is 0 when free, else the holder's pid << 32 | tid. A waiter that
 * has spun for a while asks the kernel whether that thread still exists
 * (tgkill(pid, tid, 0)); when it does not, one waiter moves the lock to
 * itself with a compare-and-swap from that exact owner value, so however
 * many notice, exactly one takes over, and it learns that what the lock
 * guards may be half updated. Needs every user in one PID namespace (as
 * the thread slots do); a recycled pid+tid keeps the lock stuck until that
 * new thread is gone too.
 */
typedef struct {
	_Atomic uint64_t owner;
} hpm_robust_lock_t;

/* This thread's owner value, 0 until the first lock; reset in a fork child. */
extern __thread uint64_t hpm_robust_self_ __attribute__((tls_model("initial-exec")));

uint64_t hpm_robust_self_init(void);
uint64_t hpm_robust_lock_slow(hpm_robust_lock_t *l, uint64_t me);

static inline void hpm_robust_lock_init(hpm_robust_lock_t *l)
{
	atomic_init(&l->owner, 0);
}

/*
 * Take @l. Returns 0, or the owner value of a dead holder it was taken
 * from: the caller must repair the state @l guards before using it.
 * Uncontended cost: a TLS load and one compare-and-swap (lock cmpxchg on
 * x86-64, the same price as the exchange of hpm_spinlock_lock()).
 */
static inline uint64_t hpm_robust_lock(hpm_robust_lock_t *l)
{
	uint64_t me = hpm_robust_self_, free_ = 0;

	if (unlikely(!me))
		me = hpm_robust_self_init();
	/* acquire pairs with the release in hpm_robust_unlock() */
	if (likely(atomic_compare_exchange_strong_explicit(&l->owner, &free_, me,
							   memory_order_acquire,
							   memory_order_relaxed)))
		return 0;
	return hpm_robust_lock_slow(l, me);
}

static inline void hpm_robust_unlock(hpm_robust_lock_t *l)
{
	atomic_store_explicit(&l->owner, 0, memory_order_release);
}

/* The holder's pid, 0 when free (for logs and tests). */
static inline int hpm_robust_owner_pid(hpm_robust_lock_t *l)
{
	return (int)(atomic_load_explicit(&l->owner, memory_order_relaxed) >> 32);
}

#endif /* HPM_ROBUST_LOCK_H */
