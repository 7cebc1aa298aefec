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

/**
 * hpmem_charge_pages() - record whose charge each of @nr new pages is
 * @charge: from hpmem_charge_new(), before hpmem_charge_add(); NULL for
 *          pages grown with CAP_IPC_LOCK, which nobody is charged for
 * @vec: the pages, now in a region
 * @nr: how many
 *
 * While a page is in a region, page->private names the user its charge
 * belongs to (the pool owns these pages and no one else uses the field),
 * without a reference of its own: the region's charge of that user holds
 * one for as long as it counts the page. A release then uncharges exactly
 * the users who were charged for the pages that leave. Caller holds
 * hpmem_lock.
 */
void hpmem_charge_pages(struct hpmem_charge *charge, struct page **vec,
			unsigned long nr)
{
	unsigned long i;

	lockdep_assert_held(&hpmem_lock);
	for (i = 0; i < nr; i++)
		set_page_private(vec[i],
				 charge ? (unsigned long)charge->user : 0);
}

static struct hpmem_charge *hpmem_charge_find(struct list_head *charges,
					      struct user_struct *user)
{
	struct hpmem_charge *charge;

	list_for_each_entry(charge, charges, link)
		if (charge->user == user)
			return charge;
	return NULL;
}

/*
 * @page leaves its region: its page's worth of its user's charge is
 * dropped now, or, for a page still referenced outside hpmem (@busy), kept
 * with a reference to the user in page->private until
 * hpmem_page_uncharge(). A page grown with CAP_IPC_LOCK has no user.
 */
static void hpmem_page_leaves(struct list_head *charges, struct page *page,
			      bool busy)
{
	struct user_struct *user = (struct user_struct *)page_private(page);
	struct hpmem_charge *charge;

	set_page_private(page, 0);
	if (!user)
		return;
	charge = hpmem_charge_find(charges, user);
	if (WARN_ON_ONCE(!charge || charge->pages < HPMEM_SUBPAGES))
		return;
	charge->pages -= HPMEM_SUBPAGES;
	if (busy)
		set_page_private(page, (unsigned long)get_uid(user));
	else
		hpmem_user_uncharge(user, HPMEM_SUBPAGES);
	if (!charge->pages) {
		list_del(&charge->link);
		hpmem_charge_free(charge);
	}
}

static void hpmem_pages_leave(struct list_head *charges,
			      struct list_head *gone, struct list_head *busy)
{
	struct page *page;

	list_for_each_entry(page, gone, lru)
		hpmem_page_leaves(charges, page, false);
	list_for_each_entry(page, busy, lru)
		hpmem_page_leaves(charges, page, true);
}

/**
 * hpmem_charges_drop() - pages left a live region (a release)
 * @charges: the region's struct hpmem_charge list
 * @gone: pages that left and go back to the pool (on ->lru)
 * @busy: pages that left but are still referenced outside hpmem (on ->lru)
 *
 * Each page's charge is settled with the user it was charged to (see
 * hpmem_charge_pages()), so that releasing pages grown with CAP_IPC_LOCK
 * or by another user leaves a user's charge for its own pages alone.
 * Caller holds hpmem_lock (a grow may add to @charges).
 */
void hpmem_charges_drop(struct list_head *charges, struct list_head *gone,
			struct list_head *busy)
{
	lockdep_assert_held(&hpmem_lock);
	hpmem_pages_leave(charges, gone, busy);
}

/**
 * hpmem_charges_release() - a region died: settle its charges
 * @charges: the region's struct hpmem_charge list, emptied
 * @back: its pages that go back to the pool (on ->lru)
 * @busy: its pages that are still referenced outside hpmem (on ->lru)
 *
 * As hpmem_charges_drop(), for every page; nothing else can reach the
 * region any more.
 */
void hpmem_charges_release(struct list_head *charges, struct list_head *back,
			   struct list_head *busy)
{
	struct hpmem_charge *charge, *tmp;

	hpmem_pages_leave(charges, back, busy);
	/* Each charge counted pages of the region: all are settled. */
	list_for_each_entry_safe(charge, tmp, charges, link) {
		WARN_ON_ONCE(1);
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
