/* SPDX-License-Identifier: MIT */
/* Fast path of the library's process-shared lock that survives a holder's
 * death; the inline ring paths take it. Not API: the heap and rings only. */
#ifndef HPMEM_ROBUST_LOCK_H
#define HPMEM_ROBUST_LOCK_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * @owner is 0 when free, else the holder's pid << 32 | tid. A waiter that
 * has spun for a while asks the kernel whether that thread still exists
 * (tgkill(pid, tid, 0)); when it does not, one waiter moves the lock to
 * itself with a compare-and-swap from that exact owner value, so however
 * many notice, exactly one takes over, and it learns that what the lock
 * guards may be half updated (lib/robust_lock.c).
 * Limits: every user must be in one PID namespace (a pid from another
 * namespace names another thread, or none, and would be taken over from
 * while alive); a holder's pid+tid recycled by a new thread keeps the lock
 * stuck until that thread is gone too; a holder stopped (SIGSTOP, a
 * debugger) is alive, and its waiters wait.
 */
typedef struct {
	_Atomic uint64_t owner;
} hpm_robust_lock_t;

/* This thread's owner value, 0 until its first lock; reset in a fork child. */
extern __thread uint64_t hpm_robust_self_ __attribute__((tls_model("initial-exec")));

/* Compute and cache hpm_robust_self_ (the first lock of each thread). */
uint64_t hpm_robust_self_init_(void);

/*
 * One attempt to take @l, for inline fast paths: true when taken. False
 * when it is held, or on a thread's first lock; the caller's slow path
 * then waits (and takes it over from a dead holder). Uncontended cost: a
 * TLS load and one compare-and-swap (lock cmpxchg on x86-64).
 */
static inline bool hpm_robust_trylock_(hpm_robust_lock_t *l)
{
	uint64_t me = hpm_robust_self_, free_ = 0;

	/* acquire pairs with the release in hpm_robust_unlock() */
	return __builtin_expect(me != 0, 1) &&
	       atomic_compare_exchange_strong_explicit(&l->owner, &free_, me,
						       memory_order_acquire,
						       memory_order_relaxed);
}

static inline void hpm_robust_unlock(hpm_robust_lock_t *l)
{
	/* release pairs with the acquire of the next holder's CAS */
	atomic_store_explicit(&l->owner, 0, memory_order_release);
}

/* The holder's pid, 0 when free (for logs and tests). */
static inline int hpm_robust_owner_pid(const hpm_robust_lock_t *l)
{
	return (int)(atomic_load_explicit(&l->owner, memory_order_relaxed) >> 32);
}

#ifdef __cplusplus
}
#endif

#endif /* HPMEM_ROBUST_LOCK_H */
