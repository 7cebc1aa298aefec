// SPDX-License-Identifier: GPL-2.0
/*
 * RLIMIT_MEMLOCK accounting: region pages are charged to the user who grew
 * the region, as io_uring and SHM_LOCK do, for as long as hpmem cannot
 * hand them to anyone else (in a region, then busy).
 */
#include <linux/atomic.h>
#include <linux/capability.h>
#include <linux/cred.h>
#include <linux/err.h>
#include <linux/sched/signal.h>
#include <linux/sched/user.h>
#include <linux/slab.h>

#include "hpmem.h"
#include "compat.h"

/**
 * struct hpmem_charge - pages charged to one user's locked_vm
 * @link: in hpmem_region.charges
 * @user: referenced; whose RLIMIT_MEMLOCK the pages count against
 * @pages: in 4 KiB pages, as locked_vm counts; a multiple of
 *         HPMEM_SUBPAGES
 */
struct hpmem_charge {
	struct list_head link;
	struct user_struct *user;
	unsigned long pages;
};

/*
 * A per-user count, not the calling mm's locked_vm: a process could
 * otherwise fork children that each start from zero, and a region would
 * stay charged to an mm that has exited.
 */
static int hpmem_user_charge(struct user_struct *user, unsigned long pages)
{
	unsigned long limit = rlimit(RLIMIT_MEMLOCK) >> PAGE_SHIFT;
	long cur = atomic_long_read(&user->locked_vm);

	do {
		if (pages > limit || cur > limit - pages)
			return -ENOMEM;
	} while (!atomic_long_try_cmpxchg(&user->locked_vm, &cur,
					  cur + pages));
	return 0;
}

static void hpmem_user_uncharge(struct user_struct *user, unsigned long pages)
{
	atomic_long_sub(pages, &user->locked_vm);
}

/**
 * hpmem_charge_new() - charge @nr hpmem pages to the calling user
 * @nr: 2 MiB pages
 *
 * Callers with CAP_IPC_LOCK are not limited and not counted, as for
 * io_uring's registered buffers. That check picks the accounting, it
 * refuses nothing (a refusal is ENOMEM at the limit): not audited, so an
 * unprivileged grow leaves no capability record. Called without
 * hpmem_lock.
 *
 * Return: the charge, to record with hpmem_charge_add() or undo with
 * hpmem_charge_cancel(); NULL when nothing was charged; ERR_PTR(-ENOMEM)
 * when the limit would be exceeded or no memory is left.
 */
struct hpmem_charge *hpmem_charge_new(unsigned long nr)
{
	struct hpmem_charge *charge;

	if (ns_capable_noaudit(&init_user_ns, CAP_IPC_LOCK))
		return NULL;
	charge = kzalloc(sizeof(*charge), GFP_KERNEL_ACCOUNT);
	if (!charge)
		return ERR_PTR(-ENOMEM);
	charge->pages = nr << HPMEM_ORDER;
	charge->user = get_uid(current_user());
	if (hpmem_user_charge(charge->user, charge->pages)) {
		free_uid(charge->user);
		kfree(charge);
		return ERR_PTR(-ENOMEM);
	}
	return charge;
}

/* Frees @charge, which no longer accounts for anything. */
static void hpmem_charge_free(struct hpmem_charge *charge)
{
	free_uid(charge->user);
	kfree(charge);
}

/* Undoes hpmem_charge_new() (a grow that failed); NULL is fine. */
void hpmem_charge_cancel(struct hpmem_charge *charge)
{
	if (!charge)
		return;
	hpmem_user_uncharge(charge->user, charge->pages);
	hpmem_charge_free(charge);
}

/*
 * Records @charge in @charges, folded into an earlier charge of the same
 * user so that a region grown page by page keeps one entry per user.
 * Caller holds hpmem_lock.
 */
void hpmem_charge_add(struct list_head *charges, struct hpmem_charge *charge)
{
	struct hpmem_charge *old;

	lockdep_assert_held(&hpmem_lock);
	if (!charge)
		return;
	list_for_each_entry(old, charges, link) {
		if (old->user == charge->user) {
			old->pages += charge->pages;
			hpmem_charge_free(charge);
			return;
		}
	}
	list_add_tail(&charge->link, charges);
}

/*
 * Every busy page keeps one page's worth of a charge, and a reference to
 * that charge's user in page->private (the pool owns these pages and no
 * one else uses the field), until hpmem_page_uncharge(). Pages grown with
 * CAP_IPC_LOCK were never charged, so a busy page may be left with no
 * user. Returns the number of busy pages.
 */
static unsigned long hpmem_charges_to_busy(struct list_head *charges,
					   struct list_head *busy)
{
	struct hpmem_charge *charge;
	unsigned long n = 0;
	struct page *page;

	page = list_first_entry_or_null(busy, struct page, lru);
	list_for_each_entry(charge, charges, link) {
		for (; page && charge->pages;
		     page = list_is_last(&page->lru, busy) ? NULL :
			    list_next_entry(page, lru)) {
			charge->pages -= HPMEM_SUBPAGES;
			set_page_private(page,
					 (unsigned long)get_uid(charge->user));
		}
	}
	list_for_each_entry(page, busy, lru)
		n++;
	return n;
}

/**
 * hpmem_charges_drop() - pages left a live region (a release)
 * @charges: the region's struct hpmem_charge list
 * @nr: hpmem pages that left, busy ones included
 * @busy: of those, the ones still referenced outside hpmem (on ->lru)
 *
 * The busy pages take their charges with them (see hpmem_charges_to_busy()),
 * the others' are uncharged now, from whichever users the region's pages
 * are charged to: which page a user grew is not recorded, only how many.
 * Caller holds hpmem_lock (a grow may add to @charges).
 */
void hpmem_charges_drop(struct list_head *charges, unsigned long nr,
			struct list_head *busy)
{
	struct hpmem_charge *charge, *tmp;
	unsigned long left, n;

	lockdep_assert_held(&hpmem_lock);
	n = hpmem_charges_to_busy(charges, busy);
	left = (nr - min(nr, n)) << HPMEM_ORDER;
	list_for_each_entry_safe(charge, tmp, charges, link) {
		n = min(left, charge->pages);
		hpmem_user_uncharge(charge->user, n);
		charge->pages -= n;
		left -= n;
		if (!charge->pages) {
			list_del(&charge->link);
			hpmem_charge_free(charge);
		}
	}
}

/**
 * hpmem_charges_release() - a region died: settle its charges
 * @charges: the region's struct hpmem_charge list, emptied
 * @busy: its pages that are still referenced outside hpmem (on ->lru)
 *
 * Busy pages keep a charge each (see hpmem_charges_to_busy()); the rest is
 * uncharged now.
 */
void hpmem_charges_release(struct list_head *charges, struct list_head *busy)
{
	struct hpmem_charge *charge, *tmp;

	hpmem_charges_to_busy(charges, busy);
	list_for_each_entry_safe(charge, tmp, charges, link) {
		list_del(&charge->link);
		hpmem_charge_cancel(charge);
	}
}

/* A busy page leaves the user's count: back in the pool, or unloaded. */
void hpmem_page_uncharge(struct page *page)
{
	struct user_struct *user = (struct user_struct *)page_private(page);

	if (!user)
		return;
	set_page_private(page, 0);
	hpmem_user_uncharge(user, HPMEM_SUBPAGES);
	free_uid(user);
}
