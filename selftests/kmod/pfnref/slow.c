// SPDX-License-Identifier: GPL-2.0
/*
 * Test-only: widen the window between a fault's page lookup in hpmem.ko and
 * its insert, so that a selftest can show what a release racing with that
 * window does. A kretprobe on hpmem_region_page() spins before the lookup's
 * result reaches the fault handler, in one chosen process only.
 */
#include <linux/atomic.h>
#include <linux/delay.h>
#include <linux/kprobes.h>
#include <linux/minmax.h>
#include <linux/mutex.h>
#include <linux/sched.h>

#include "pfnref.h"
#include "slow.h"

#define PFNREF_SLOW_MAX_US	10000

static DEFINE_MUTEX(pfnref_slow_lock);
/* The file that turned it on: its close turns it off. */
static const void *pfnref_slow_owner;
static atomic_t pfnref_slow_tgid = ATOMIC_INIT(0);
static atomic_t pfnref_slow_us = ATOMIC_INIT(0);

static int pfnref_slow_ret(struct kretprobe_instance *ri, struct pt_regs *regs)
{
	int us;

	if (task_tgid_nr(current) != atomic_read(&pfnref_slow_tgid))
		return 0;
	for (us = atomic_read(&pfnref_slow_us); us > 0; us -= 100)
		udelay(min(us, 100));
	return 0;
}

static struct kretprobe pfnref_slow_krp = {
	.kp.symbol_name	= "hpmem_region_page",
	.handler	= pfnref_slow_ret,
	.maxactive	= 64,
};

/* Turns it off if @owner turned it on; caller holds pfnref_slow_lock. */
static void pfnref_slow_off(const void *owner)
{
	if (pfnref_slow_owner != owner)
		return;
	atomic_set(&pfnref_slow_tgid, 0);
	unregister_kretprobe(&pfnref_slow_krp);
	pfnref_slow_owner = NULL;
}

/* PFNREF_IOC_SLOW_LOOKUP from @owner; 0, -EINVAL, -EBUSY or -ENOENT. */
long pfnref_slow_lookup(const void *owner, u64 us)
{
	long r = 0;

	if (us > PFNREF_SLOW_MAX_US)
		return -EINVAL;
	mutex_lock(&pfnref_slow_lock);
	if (pfnref_slow_owner && pfnref_slow_owner != owner) {
		r = -EBUSY;
	} else if (!us) {
		pfnref_slow_off(owner);
	} else if (!pfnref_slow_owner) {
		/* A kprobe registers again only with its address cleared. */
		pfnref_slow_krp.kp.addr = NULL;
		pfnref_slow_krp.kp.flags = 0;
		if (register_kretprobe(&pfnref_slow_krp))
			r = -ENOENT;
	}
	if (!r && us) {
		pfnref_slow_owner = owner;
		atomic_set(&pfnref_slow_us, us);
		atomic_set(&pfnref_slow_tgid, task_tgid_nr(current));
	}
	mutex_unlock(&pfnref_slow_lock);
	return r;
}

/* @owner is closing. */
void pfnref_slow_release(const void *owner)
{
	mutex_lock(&pfnref_slow_lock);
	pfnref_slow_off(owner);
	mutex_unlock(&pfnref_slow_lock);
}
