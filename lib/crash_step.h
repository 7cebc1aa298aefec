/* SPDX-License-Identifier: MIT */
/* Test hook, not API: a process that kills itself at the N-th step of an
 * update, so a test can kill a lock holder between every pair of stores. */
#ifndef HPM_CRASH_STEP_H
#define HPM_CRASH_STEP_H

#include "internal.h"

/*
 * When non-zero in a process, that process SIGKILLs itself at the N-th
 * HPM_CRASH_STEP() it passes: the points of the heap's locked updates and
 * of the rings' MP/MC operations (through HPM_RING_TEST_STEP(), which a
 * test defines as HPM_CRASH_STEP() before including <hpmem/ring.h>) where
 * a death leaves the most to repair. One counter for all of them, so a
 * test can walk an operation that crosses several locks step by step.
 */
extern int hpm_crash_countdown;

void hpm_crash_step_(void);

#define HPM_CRASH_STEP()						\
	do {								\
		if (unlikely(hpm_crash_countdown))			\
			hpm_crash_step_();				\
	} while (0)

#endif /* HPM_CRASH_STEP_H */
