// SPDX-License-Identifier: MIT
/*
 * DPDK's mempool autotest scenarios that needed missing API: user-owned
 * caches with the generic get/put (test_mempool_basic with a user cache),
 * populate_anon, walk and list_dump, the memory range and object alignment,
 * event callbacks (test_mempool_events, test_mempool_events_safety) and
 * the NON_IO flag rules (test_mempool_flag_non_io_*).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <hpmem/init.h>
#include <hpmem/memseg.h>
#include <hpmem/memzone.h>
#include <hpmem/mempool.h>
#include <hpmem/thread.h>

#include "kselftest_harness.h"

#define N	512
#define ELT	64

FIXTURE(mp) {
	char name[HPM_NAME_SIZE];
	struct hpm_init_opts o;
};

FIXTURE_SETUP(mp)
{
	int rc;

	hpm_init_opts_default(&self->o);
	snprintf(self->name, sizeof(self->name), "t-mpd-%d", (int)getpid());
	self->o.region = self->name;
	rc = hpm_init(&self->o);
	if (rc < 0)
		SKIP(return, "hpm_init: %s", hpm_strerror(rc));
}

FIXTURE_TEARDOWN(mp)
{
	EXPECT_EQ(0, hpm_cleanup());
}

/* test_mempool_basic's get/put sequence through a given cache. */
static int basic(struct hpm_mempool *mp, struct hpm_mempool_cache *cache)
{
	void *objs[N], *o1, *o2[2];
	unsigned int i;

	if (hpm_mempool_generic_get(mp, &o1, 1, cache))
		return -1;
	if (hpm_mempool_from_obj(o1) != mp)
		return -2;
	hpm_mempool_generic_put(mp, &o1, 1, cache);
	if (hpm_mempool_generic_get(mp, o2, 2, cache) || o2[0] == o2[1])
		return -3;
	hpm_mempool_generic_put(mp, o2, 2, cache);
	/* everything, through the cache, then back */
	for (i = 0; i < N; i++)
		if (hpm_mempool_generic_get(mp, &objs[i], 1, cache))
			return -4;
	if (hpm_mempool_generic_get(mp, &o1, 1, cache) != -ENOENT)
		return -5;
	for (i = 0; i < N; i++)
		hpm_mempool_generic_put(mp, &objs[i], 1, cache);
	return 0;
}

TEST_F(mp, user_cache_generic_get_put)
{
	struct hpm_mempool_cache *cache;
	struct hpm_mempool *mp;

	/* a pool without caches: the user cache is the only one */
	mp = hpm_mempool_create("uc", N, ELT, 0, 0, NULL, NULL,
				HPM_SOCKET_ANY, 0);
	ASSERT_NE(NULL, mp);
	EXPECT_EQ(NULL, hpm_mempool_default_cache(mp));
	EXPECT_EQ(NULL, hpm_mempool_cache_create(0, HPM_SOCKET_ANY));
	EXPECT_EQ(EINVAL, hpm_errno);
	EXPECT_EQ(NULL, hpm_mempool_cache_create(HPM_MEMPOOL_CACHE_MAX_SIZE + 1,
						 HPM_SOCKET_ANY));
	cache = hpm_mempool_cache_create(32, HPM_SOCKET_ANY);
	ASSERT_NE(NULL, cache);
	EXPECT_EQ(32, cache->size);
	EXPECT_EQ(0, basic(mp, cache));
	/* the cache holds some; the pool counts only what its driver has */
	EXPECT_LT(0, cache->len);
	EXPECT_EQ(N - cache->len, hpm_mempool_avail_count(mp));
	hpm_mempool_cache_flush_user(cache, mp);
	EXPECT_EQ(0, cache->len);
	EXPECT_EQ(N, hpm_mempool_avail_count(mp));
	/* and with no cache at all */
	EXPECT_EQ(0, basic(mp, NULL));
	EXPECT_EQ(N, hpm_mempool_avail_count(mp));
	EXPECT_EQ(0, hpm_mempool_audit(mp));
	hpm_mempool_cache_free(cache);
	hpm_mempool_cache_free(NULL);
	hpm_mempool_free(mp);
}

TEST_F(mp, default_cache_is_the_thread_cache)
{
	struct hpm_mempool_cache *c;
	struct hpm_mempool *mp;

	mp = hpm_mempool_create("dc", N, ELT, 32, 0, NULL, NULL,
				HPM_SOCKET_ANY, 0);
	ASSERT_NE(NULL, mp);
	EXPECT_EQ(NULL, hpm_mempool_default_cache(mp));	/* no thread index */
	ASSERT_LE(0, hpm_thread_register());
	c = hpm_mempool_default_cache(mp);
	ASSERT_NE(NULL, c);
	EXPECT_EQ(0, basic(mp, c));
	EXPECT_EQ(N, hpm_mempool_avail_count(mp));	/* counts the thread cache */
	EXPECT_LT(0, c->len);
	hpm_mempool_cache_flush_user(NULL, mp);	/* NULL: this thread's */
	EXPECT_EQ(0, c->len);
	EXPECT_EQ(N, hpm_mempool_avail_count(mp));
	hpm_thread_unregister();
	hpm_mempool_free(mp);
}

TEST_F(mp, populate_anon)
{
	struct hpm_mempool_mem_range_info r;
	struct hpm_mempool *mp;
	void *objs[N];
	unsigned int i;

	mp = hpm_mempool_create_empty("anon", N, ELT, 0, 0, HPM_SOCKET_ANY, 0);
	ASSERT_NE(NULL, mp);
	EXPECT_EQ(-EINVAL, hpm_mempool_get_mem_range(mp, &r));	/* no memory */
	ASSERT_EQ(N, hpm_mempool_populate_anon(mp));
	EXPECT_EQ(-EEXIST, hpm_mempool_populate_anon(mp));
	/* process memory has no IOVA */
	EXPECT_TRUE(mp->flags & HPM_MEMPOOL_F_NON_IO);
	ASSERT_EQ(0, hpm_mempool_get_mem_range(mp, &r));
	EXPECT_TRUE(r.is_contiguous);
	EXPECT_LE((size_t)N * mp->total_elt_size, r.length);
	ASSERT_EQ(0, hpm_mempool_get_bulk(mp, objs, N));
	for (i = 0; i < N; i++) {
		EXPECT_LE((char *)r.start, (char *)objs[i]);
		EXPECT_GE((char *)r.start + r.length, (char *)objs[i] + ELT);
		memset(objs[i], 0xa5, ELT);
	}
	hpm_mempool_put_bulk(mp, objs, N);
	EXPECT_EQ(0, hpm_mempool_audit(mp));
	hpm_mempool_free(mp);
	EXPECT_EQ(-EINVAL, hpm_mempool_populate_anon(NULL));
}

TEST_F(mp, mem_range_and_alignment)
{
	struct hpm_mempool_mem_range_info r;
	struct hpm_mempool *mp, *mp8;
	static char area[2][64 * 1024] __attribute__((aligned(64)));

	EXPECT_EQ(-EINVAL, hpm_mempool_get_mem_range(NULL, &r));
	EXPECT_EQ(0, hpm_mempool_get_obj_alignment(NULL));
	/* more objects than both chunks hold: neither fills the pool */
	mp = hpm_mempool_create_empty("rng", 4 * N, ELT, 0, 0, HPM_SOCKET_ANY,
				      0);
	ASSERT_NE(NULL, mp);
	EXPECT_EQ(HPM_CACHE_LINE_SIZE, hpm_mempool_get_obj_alignment(mp));
	EXPECT_EQ(-EINVAL, hpm_mempool_get_mem_range(mp, NULL));
	/* two separate chunks: the range spans the hole between them */
	ASSERT_LT(0, hpm_mempool_populate_iova(mp, area[1], HPM_BAD_IOVA,
					       sizeof(area[1]), NULL, NULL));
	ASSERT_EQ(0, hpm_mempool_get_mem_range(mp, &r));
	EXPECT_EQ((void *)area[1], r.start);
	EXPECT_EQ(sizeof(area[1]), r.length);
	EXPECT_TRUE(r.is_contiguous);
	ASSERT_LT(0, hpm_mempool_populate_iova(mp, area[0], HPM_BAD_IOVA,
					       sizeof(area[0]) / 2, NULL, NULL));
	ASSERT_EQ(0, hpm_mempool_get_mem_range(mp, &r));
	EXPECT_EQ((void *)area[0], r.start);
	EXPECT_EQ(sizeof(area), r.length);
	EXPECT_FALSE(r.is_contiguous);
	hpm_mempool_free(mp);

	mp8 = hpm_mempool_create("a8", 16, 24, 0, 0, NULL, NULL, HPM_SOCKET_ANY,
				 HPM_MEMPOOL_F_NO_CACHE_ALIGN);
	ASSERT_NE(NULL, mp8);
	EXPECT_EQ(8, hpm_mempool_get_obj_alignment(mp8));
	hpm_mempool_free(mp8);
}

struct walk_seen {
	unsigned int n;
	bool a, b;
};

static void walk_cb(struct hpm_mempool *mp, void *arg)
{
	struct walk_seen *w = arg;

	w->n++;
	if (!strcmp(mp->name, "walk-a"))
		w->a = true;
	if (!strcmp(mp->name, "walk-b"))
		w->b = true;
}

TEST_F(mp, walk_and_list_dump)
{
	struct hpm_mempool *a, *b;
	struct walk_seen w = { 0 };
	char *out = NULL;
	size_t len = 0;
	FILE *f;

	/* b has no memory yet: it is a pool all the same */
	a = hpm_mempool_create("walk-a", 64, ELT, 0, 0, NULL, NULL,
			       HPM_SOCKET_ANY, 0);
	ASSERT_NE(NULL, a);
	b = hpm_mempool_create_empty("walk-b", 64, ELT, 0, 0, HPM_SOCKET_ANY, 0);
	ASSERT_NE(NULL, b);
	hpm_mempool_walk(walk_cb, &w);
	EXPECT_EQ(2, w.n);
	EXPECT_TRUE(w.a);
	EXPECT_TRUE(w.b);
	f = open_memstream(&out, &len);
	ASSERT_NE(NULL, f);
	hpm_mempool_list_dump(f);
	fclose(f);
	EXPECT_NE(NULL, strstr(out, "mempool <walk-a>"));
	EXPECT_NE(NULL, strstr(out, "mempool <walk-b>"));
	free(out);
	hpm_mempool_free(a);
	memset(&w, 0, sizeof(w));
	hpm_mempool_walk(walk_cb, &w);
	EXPECT_EQ(1, w.n);
	EXPECT_TRUE(w.b);
	hpm_mempool_free(b);
	hpm_mempool_walk(NULL, NULL);
}

/* ---- event callbacks ---- */

struct ev_log {
	unsigned int ready, destroy;
	struct hpm_mempool *last;
	bool pool_was_full;
};

static void ev_cb(enum hpm_mempool_event ev, struct hpm_mempool *mp, void *ud)
{
	struct ev_log *l = ud;

	if (ev == HPM_MEMPOOL_EVENT_READY) {
		l->ready++;
		l->pool_was_full = mp->populated_size == mp->size &&
				   hpm_mempool_avail_count(mp) == mp->size;
	} else {
		l->destroy++;
	}
	l->last = mp;
}

TEST_F(mp, events_ready_destroy)
{
	static char area[64 * 1024] __attribute__((aligned(64)));
	struct ev_log l = { 0 }, l2 = { 0 };
	struct hpm_mempool *mp;
	int added;

	EXPECT_EQ(-EINVAL, hpm_mempool_event_callback_register(NULL, &l));
	ASSERT_EQ(0, hpm_mempool_event_callback_register(ev_cb, &l));
	EXPECT_EQ(-EEXIST, hpm_mempool_event_callback_register(ev_cb, &l));
	ASSERT_EQ(0, hpm_mempool_event_callback_register(ev_cb, &l2));

	/* create = create_empty + populate_default: one READY */
	mp = hpm_mempool_create("ev", N, ELT, 0, 0, NULL, NULL,
				HPM_SOCKET_ANY, 0);
	ASSERT_NE(NULL, mp);
	EXPECT_EQ(1, l.ready);
	EXPECT_EQ(1, l2.ready);
	EXPECT_EQ(mp, l.last);
	EXPECT_TRUE(l.pool_was_full);
	hpm_mempool_free(mp);
	EXPECT_EQ(1, l.destroy);
	EXPECT_EQ(1, l2.destroy);

	/* a pool filled in two steps is READY once, after the last one */
	ASSERT_EQ(0, hpm_mempool_event_callback_unregister(ev_cb, &l2));
	EXPECT_EQ(-ENOENT, hpm_mempool_event_callback_unregister(ev_cb, &l2));
	mp = hpm_mempool_create_empty("ev2", 8, ELT, 0, 0, HPM_SOCKET_ANY, 0);
	ASSERT_NE(NULL, mp);
	added = hpm_mempool_populate_iova(mp, area, HPM_BAD_IOVA,
					  4 * mp->total_elt_size, NULL, NULL);
	ASSERT_LT(0, added);
	ASSERT_GT(8, added);
	EXPECT_EQ(1, l.ready);
	ASSERT_LT(0, hpm_mempool_populate_iova(mp, area + sizeof(area) / 2,
					       HPM_BAD_IOVA, sizeof(area) / 2,
					       NULL, NULL));
	EXPECT_EQ(2, l.ready);
	EXPECT_EQ(1, l2.ready);
	hpm_mempool_free(mp);
	EXPECT_EQ(2, l.destroy);
	ASSERT_EQ(0, hpm_mempool_event_callback_unregister(ev_cb, &l));
}

/* test_mempool_events_safety: (un)register from inside a callback. */
static unsigned int safe_calls[3];

static void safe_cb2(enum hpm_mempool_event ev, struct hpm_mempool *mp,
		     void *ud)
{
	(void)ev;
	(void)mp;
	(void)ud;
	safe_calls[2]++;
}

static void safe_cb1(enum hpm_mempool_event ev, struct hpm_mempool *mp,
		     void *ud)
{
	(void)ev;
	(void)mp;
	(void)ud;
	safe_calls[1]++;
	/* take ourselves out and add another: neither deadlocks */
	hpm_mempool_event_callback_unregister(safe_cb1, NULL);
	hpm_mempool_event_callback_register(safe_cb2, NULL);
}

static void safe_cb0(enum hpm_mempool_event ev, struct hpm_mempool *mp,
		     void *ud)
{
	(void)ev;
	(void)ud;
	safe_calls[0]++;
	/* a later callback unregistered here is not called for this event */
	hpm_mempool_event_callback_unregister(safe_cb1, NULL);
	/* and the pool is usable from a callback */
	(void)hpm_mempool_avail_count(mp);
}

TEST_F(mp, events_safety)
{
	struct hpm_mempool *mp;

	ASSERT_EQ(0, hpm_mempool_event_callback_register(safe_cb1, NULL));
	mp = hpm_mempool_create("evs", 64, ELT, 0, 0, NULL, NULL,
				HPM_SOCKET_ANY, 0);
	ASSERT_NE(NULL, mp);
	/* cb1 ran, unregistered itself, registered cb2 for the next event */
	EXPECT_EQ(1, safe_calls[1]);
	EXPECT_EQ(0, safe_calls[2]);
	EXPECT_EQ(-ENOENT, hpm_mempool_event_callback_unregister(safe_cb1,
								 NULL));
	ASSERT_EQ(0, hpm_mempool_event_callback_register(safe_cb0, NULL));
	ASSERT_EQ(0, hpm_mempool_event_callback_register(safe_cb1, NULL));
	hpm_mempool_free(mp);
	/* DESTROY: cb2, then cb0, which unregisters cb1 before its turn */
	EXPECT_EQ(1, safe_calls[2]);
	EXPECT_EQ(1, safe_calls[0]);
	EXPECT_EQ(1, safe_calls[1]);
	EXPECT_EQ(0, hpm_mempool_event_callback_unregister(safe_cb0, NULL));
	EXPECT_EQ(-ENOENT, hpm_mempool_event_callback_unregister(safe_cb1,
								 NULL));
	EXPECT_EQ(0, hpm_mempool_event_callback_unregister(safe_cb2, NULL));
}

/* ---- NON_IO (test_mempool_flag_non_io_*) ---- */

TEST_F(mp, non_io_by_default_follows_iova)
{
	struct hpm_mempool *mp;
	const struct hpm_memzone *mz;

	mp = hpm_mempool_create_empty("nio", 64, ELT, 0, 0, HPM_SOCKET_ANY, 0);
	ASSERT_NE(NULL, mp);
	EXPECT_TRUE(mp->flags & HPM_MEMPOOL_F_NON_IO);	/* no memory yet */
	ASSERT_LT(0, hpm_mempool_populate_default(mp));
	/* region memory: NON_IO exactly when the backend gives no IOVA */
	mz = hpm_memzone_lookup("MP_nio.0");
	ASSERT_NE(NULL, mz);
	EXPECT_EQ(mz->iova == HPM_BAD_IOVA &&
		  hpm_virt2iova(mz->addr) == HPM_BAD_IOVA,
		  !!(mp->flags & HPM_MEMPOOL_F_NON_IO));
	hpm_mempool_free(mp);
	/* the caller cannot ask for it */
	EXPECT_EQ(NULL, hpm_mempool_create_empty("nio", 64, ELT, 0, 0,
						 HPM_SOCKET_ANY,
						 HPM_MEMPOOL_F_NON_IO));
	EXPECT_EQ(EINVAL, hpm_errno);
}

TEST_F(mp, non_io_unset_when_populated_with_valid_iova)
{
	static char area[3][16 * 1024] __attribute__((aligned(64)));
	struct hpm_mempool *mp;

	mp = hpm_mempool_create_empty("nio2", 3 * 16 * 1024 / 128, ELT, 0, 0,
				      HPM_SOCKET_ANY, 0);
	ASSERT_NE(NULL, mp);
	ASSERT_LT(0, hpm_mempool_populate_iova(mp, area[1], HPM_BAD_IOVA,
					       sizeof(area[1]), NULL, NULL));
	EXPECT_TRUE(mp->flags & HPM_MEMPOOL_F_NON_IO);
	/* a made-up IOVA: the pool only records it */
	ASSERT_LT(0, hpm_mempool_populate_iova(mp, area[0], 0x100000,
					       sizeof(area[0]), NULL, NULL));
	EXPECT_FALSE(mp->flags & HPM_MEMPOOL_F_NON_IO);
	ASSERT_LT(0, hpm_mempool_populate_iova(mp, area[2], HPM_BAD_IOVA,
					       sizeof(area[2]), NULL, NULL));
	EXPECT_FALSE(mp->flags & HPM_MEMPOOL_F_NON_IO);
	hpm_mempool_free(mp);
}

TEST_F(mp, non_io_kept_when_no_iova_contig)
{
	static char area[16 * 1024] __attribute__((aligned(64)));
	struct hpm_mempool *mp;

	mp = hpm_mempool_create_empty("nio3", 16, ELT, 0, 0, HPM_SOCKET_ANY,
				      HPM_MEMPOOL_F_NO_IOVA_CONTIG);
	ASSERT_NE(NULL, mp);
	ASSERT_LT(0, hpm_mempool_populate_iova(mp, area, 0x100000,
					       sizeof(area), NULL, NULL));
	EXPECT_TRUE(mp->flags & HPM_MEMPOOL_F_NON_IO);
	hpm_mempool_free(mp);
}

TEST_HARNESS_MAIN
