/* SPDX-License-Identifier: MIT */
/* A process-shared spinlock that names its holder, so that waiters can take
 * it over from a holder that died inside the critical section. */
#ifndef HPM_ROBUST_LOCK_H
#define HPM_ROBUST_LOCK_H

#include <stdint.h>

#include <hpmem/robust_lock.h>

#include "internal.h"

/*
 * The lock word, its limits and the inline attempt are in
 * <hpmem/robust_lock.h> (the rings' inline paths take it too).
 *
 * Wait for @l as @me, pausing between looks and yielding the CPU every
 * @spins_per_yield of them; every so often (well under a millisecond)
 * check that the holder is alive. Returns 0 once taken, or the owner
 * value of the dead holder it was taken from.
 */
uint64_t hpm_robust_lock_slow(hpm_robust_lock_t *l, uint64_t me,
			      unsigned int spins_per_yield);

/*
 * Pauses between two looks at the holder: about 0.1-0.5 ms, far longer
 * than any heap or ring critical section, so a live holder is rarely
 * asked about, and a dead one costs its waiters well under a millisecond
 * (a few more when they yield to other runnable threads meanwhile).
 */
#define HPM_ROBUST_SPINS_PER_CHECK	4096u

static inline void hpm_robust_lock_init(hpm_robust_lock_t *l)
{
	atomic_init(&l->owner, 0);
}

/*
 * Take @l. Returns 0, or the owner value of a dead holder it was taken
 * from: the caller must repair the state @l guards before using it.
 * Uncontended cost: that of hpm_robust_trylock_(), the same price as the
 * exchange of hpm_spinlock_lock(). A live holder is waited for by
 * spinning: heap critical sections are short, and yielding early would
 * cost more than it saves.
 */
static inline uint64_t hpm_robust_lock(hpm_robust_lock_t *l)
{
	uint64_t me;

	if (likely(hpm_robust_trylock_(l)))
		return 0;
	me = hpm_robust_self_;
	if (unlikely(!me))
		me = hpm_robust_self_init_();
	return hpm_robust_lock_slow(l, me, HPM_ROBUST_SPINS_PER_CHECK);
}

#endif /* HPM_ROBUST_LOCK_H */
