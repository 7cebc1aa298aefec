// SPDX-License-Identifier: MIT
/*
 * Mempools: creation and its errors, the cache rules, drivers, user memory,
 * pools spanning several memzones, accounting, audit and debug cookies,
 * NUMA placement, and two threads plus a secondary process hammering one
 * pool with every object counted and checked for duplicates.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hpmem/init.h>
#include <hpmem/mem_event.h>
#include <hpmem/memseg.h>
#include <hpmem/memzone.h>
#include <hpmem/mempool.h>
#include <hpmem/ring.h>
#include <hpmem/thread.h>

#include "kselftest_harness.h"

FIXTURE(mp) {
	char name[HPM_NAME_SIZE];
	struct hpm_init_opts o;
};

FIXTURE_SETUP(mp)
{
	hpm_init_opts_default(&self->o);
	snprintf(self->name, sizeof(self->name), "t-mp-%d", (int)getpid());
	self->o.region = self->name;
	self->o.socket_mem[0] = 32;
	ASSERT_EQ(0, hpm_init(&self->o));
}

FIXTURE_TEARDOWN(mp)
{
	EXPECT_EQ(0, hpm_cleanup());
}

static unsigned int drv_count(const struct hpm_mempool *mp)
{
	/* Only for ring drivers: what the shared ring holds. */
	return hpm_ring_count(mp->pool_data);
}

static void init_cb(struct hpm_mempool *mp, void *opaque, void *obj,
		    unsigned int idx)
{
	unsigned int *calls = opaque;

	memset(obj, 0, mp->elt_size);
	*(unsigned int *)obj = idx;
	(*calls)++;
}

struct iter_state {
	unsigned int n;
	unsigned int bad_iova;
	unsigned int misaligned;
	unsigned int idx_mismatch;
	uintptr_t align;
};

static void check_cb(struct hpm_mempool *mp, void *opaque, void *obj,
		     unsigned int idx)
{
	struct iter_state *st = opaque;

	st->n++;
	if (hpm_mempool_virt2iova(obj) != hpm_virt2iova(obj))
		st->bad_iova++;
	if ((uintptr_t)obj % st->align)
		st->misaligned++;
	if (*(unsigned int *)obj != idx)
		st->idx_mismatch++;
	(void)mp;
}

TEST_F(mp, create_basic)
{
	unsigned int calls = 0;
	struct iter_state st = { .align = HPM_CACHE_LINE_SIZE };
	struct hpm_mempool *mp;
	void *obj, *objs[16];

	mp = hpm_mempool_create("basic", 1000, 100, 32, 48, init_cb, &calls,
				HPM_SOCKET_ANY, 0);
	ASSERT_NE(NULL, mp);
	EXPECT_EQ(1000, calls);
	EXPECT_STREQ("basic", mp->name);
	EXPECT_STREQ("ring_mp_mc", mp->ops_name);
	EXPECT_EQ(1000, mp->size);
	EXPECT_EQ(1000, mp->populated_size);
	EXPECT_EQ(1000, hpm_mempool_avail_count(mp));
	EXPECT_EQ(0, hpm_mempool_in_use_count(mp));
	EXPECT_TRUE(hpm_mempool_full(mp));
	EXPECT_NE(NULL, hpm_memzone_lookup("MP_basic"));
	EXPECT_EQ(mp, hpm_mempool_lookup("basic"));
	EXPECT_EQ(0, (uintptr_t)hpm_mempool_get_priv(mp) % HPM_CACHE_LINE_SIZE);
	memset(hpm_mempool_get_priv(mp), 0x5a, 48);

	EXPECT_EQ(1000, hpm_mempool_obj_iter(mp, check_cb, &st));
	EXPECT_EQ(1000, st.n);
	EXPECT_EQ(0, st.bad_iova);
	EXPECT_EQ(0, st.misaligned);
	EXPECT_EQ(0, st.idx_mismatch);

	/* Unregistered thread: straight to the ring. */
	ASSERT_EQ(HPM_THREAD_NONE, hpm_thread_index());
	ASSERT_EQ(0, hpm_mempool_get(mp, &obj));
	EXPECT_EQ(mp, hpm_mempool_from_obj(obj));
	EXPECT_EQ(999, drv_count(mp));
	EXPECT_EQ(1, hpm_mempool_in_use_count(mp));
	ASSERT_EQ(0, hpm_mempool_get_bulk(mp, objs, 16));
	EXPECT_EQ(17, hpm_mempool_in_use_count(mp));
	hpm_mempool_put_bulk(mp, objs, 16);
	hpm_mempool_put(mp, obj);
	EXPECT_EQ(1000, hpm_mempool_avail_count(mp));
	EXPECT_EQ(0, hpm_mempool_audit(mp));

	hpm_mempool_free(mp);
	EXPECT_EQ(NULL, hpm_mempool_lookup("basic"));
	EXPECT_EQ(ENOENT, hpm_errno);
	EXPECT_EQ(NULL, hpm_memzone_lookup("MP_basic"));
	EXPECT_EQ(NULL, hpm_memzone_lookup("MP_basic.0"));
	EXPECT_EQ(0, hpm_memzone_count());
	hpm_mempool_free(NULL);
}

TEST_F(mp, create_errors)
{
	char n23[24], n24[25];
	struct hpm_mempool *mp;

	/* Cache rules: at most 512 and at most n / 1.5. */
	EXPECT_EQ(NULL, hpm_mempool_create("e", 10000, 64, 513, 0, NULL, NULL,
					   HPM_SOCKET_ANY, 0));
	EXPECT_EQ(EINVAL, hpm_errno);
	EXPECT_EQ(NULL, hpm_mempool_create("e", 10, 64, 7, 0, NULL, NULL,
					   HPM_SOCKET_ANY, 0));
	EXPECT_EQ(EINVAL, hpm_errno);
	/* n smaller than the cache */
	EXPECT_EQ(NULL, hpm_mempool_create("e", 8, 64, 16, 0, NULL, NULL,
					   HPM_SOCKET_ANY, 0));
	EXPECT_EQ(EINVAL, hpm_errno);
	mp = hpm_mempool_create("e", 9, 64, 6, 0, NULL, NULL, HPM_SOCKET_ANY, 0);
	ASSERT_NE(NULL, mp);
	hpm_mempool_free(mp);
	EXPECT_EQ(NULL, hpm_mempool_create("e", 0, 64, 0, 0, NULL, NULL,
					   HPM_SOCKET_ANY, 0));
	EXPECT_EQ(EINVAL, hpm_errno);
	EXPECT_EQ(NULL, hpm_mempool_create("e", 10, 0, 0, 0, NULL, NULL,
					   HPM_SOCKET_ANY, 0));
	EXPECT_EQ(EINVAL, hpm_errno);
	EXPECT_EQ(NULL, hpm_mempool_create("e", 10, 64, 0, 0, NULL, NULL,
					   HPM_SOCKET_ANY, 0x1000));
	EXPECT_EQ(EINVAL, hpm_errno);
	EXPECT_EQ(NULL, hpm_mempool_create("", 10, 64, 0, 0, NULL, NULL,
					   HPM_SOCKET_ANY, 0));
	EXPECT_EQ(EINVAL, hpm_errno);
	EXPECT_EQ(NULL, hpm_mempool_create("e", 10, 64, 0, 0, NULL, NULL,
					   HPM_MAX_NODES, 0));
	EXPECT_EQ(EINVAL, hpm_errno);

	/* Names: 23 characters fit ("MP_" + name + ".k" is a memzone name). */
	memset(n23, 'p', 23);
	n23[23] = '\0';
	memset(n24, 'q', 24);
	n24[24] = '\0';
	mp = hpm_mempool_create(n23, 64, 64, 0, 0, NULL, NULL, HPM_SOCKET_ANY, 0);
	ASSERT_NE(NULL, mp);
	EXPECT_EQ(mp, hpm_mempool_lookup(n23));
	EXPECT_EQ(NULL, hpm_mempool_create(n23, 64, 64, 0, 0, NULL, NULL,
					   HPM_SOCKET_ANY, 0));
	EXPECT_EQ(EEXIST, hpm_errno);
	EXPECT_EQ(NULL, hpm_mempool_create(n24, 64, 64, 0, 0, NULL, NULL,
					   HPM_SOCKET_ANY, 0));
	EXPECT_EQ(ENAMETOOLONG, hpm_errno);
	EXPECT_EQ(NULL, hpm_mempool_lookup(n24));
	EXPECT_EQ(ENAMETOOLONG, hpm_errno);
	hpm_mempool_free(mp);

	/* No memory: nothing half-created stays behind. */
	EXPECT_EQ(NULL, hpm_mempool_create("huge", 1u << 20, 4096, 0, 0, NULL,
					   NULL, HPM_SOCKET_ANY, 0));
	EXPECT_EQ(ENOMEM, hpm_errno);
	EXPECT_EQ(NULL, hpm_mempool_lookup("huge"));
	EXPECT_EQ(0, hpm_memzone_count());
}

TEST_F(mp, empty_pool_and_all_or_nothing)
{
	struct hpm_mempool *mp;
	void *objs[64], *more[8];
	unsigned int i;

	mp = hpm_mempool_create("empty", 40, 32, 0, 0, NULL, NULL,
				HPM_SOCKET_ANY, 0);
	ASSERT_NE(NULL, mp);
	/* Zero objects always succeed, even from an empty cache or pool. */
	EXPECT_EQ(0, hpm_mempool_get_bulk(mp, objs, 0));
	ASSERT_EQ(0, hpm_mempool_get_bulk(mp, objs, 35));
	EXPECT_EQ(-ENOENT, hpm_mempool_get_bulk(mp, more, 8));
	EXPECT_EQ(5, hpm_mempool_avail_count(mp));
	ASSERT_EQ(0, hpm_mempool_get_bulk(mp, objs + 35, 5));
	EXPECT_EQ(-ENOENT, hpm_mempool_get(mp, more));
	EXPECT_TRUE(hpm_mempool_empty(mp));
	EXPECT_EQ(40, hpm_mempool_in_use_count(mp));
	EXPECT_EQ(0, hpm_mempool_get_bulk(mp, more, 0));
	/* Registered thread with an empty pool: same answers. */
	ASSERT_LE(0, hpm_thread_register());
	EXPECT_EQ(-ENOENT, hpm_mempool_get(mp, more));
	EXPECT_EQ(0, hpm_mempool_get_bulk(mp, more, 0));
	for (i = 0; i < 40; i++)
		hpm_mempool_put(mp, objs[i]);
	EXPECT_EQ(40, hpm_mempool_avail_count(mp));
	EXPECT_EQ(0, hpm_mempool_audit(mp));
	hpm_mempool_free(mp);
}

TEST_F(mp, cache_rules)
{
	struct hpm_mempool *mp;
	struct hpm_mempool_cache *c;
	struct hpm_mempool_stats st;
	void *objs[128], *one;
	int idx;
	unsigned int i, ring0;

	mp = hpm_mempool_create("cached", 1024, 64, 64, 0, NULL, NULL,
				HPM_SOCKET_ANY, 0);
	ASSERT_NE(NULL, mp);
	idx = hpm_thread_register();
	ASSERT_LE(0, idx);
	c = hpm_mempool_cache_(mp, (unsigned int)idx);
	EXPECT_EQ(0, (uintptr_t)c % (2 * HPM_CACHE_LINE_SIZE));
	EXPECT_EQ(0, mp->cache_stride % (2 * HPM_CACHE_LINE_SIZE));
	EXPECT_EQ(64, c->size);
	EXPECT_EQ(0, c->len);

	/* First get: what is missing (1) plus half a cache (32). */
	ASSERT_EQ(0, hpm_mempool_get(mp, &one));
	EXPECT_EQ(32, c->len);
	ring0 = drv_count(mp);
	EXPECT_EQ(1024 - 33, ring0);
	EXPECT_EQ(1024, hpm_mempool_avail_count(mp) + 1);

	/* Ping-pong never touches the ring. */
	for (i = 0; i < 10000; i++) {
		hpm_mempool_put(mp, one);
		ASSERT_EQ(0, hpm_mempool_get(mp, &one));
		hpm_mempool_put_bulk(mp, objs, 0);
	}
	for (i = 0; i < 1000; i++) {
		ASSERT_EQ(0, hpm_mempool_get_bulk(mp, objs, 32));
		hpm_mempool_put_bulk(mp, objs, 32);
	}
	EXPECT_EQ(ring0, drv_count(mp));

	/* Bigger than half a cache: bypass, the cache is not touched. */
	ASSERT_EQ(0, hpm_mempool_get_bulk(mp, objs, 33));
	EXPECT_EQ(32, c->len);
	EXPECT_EQ(ring0 - 33, drv_count(mp));
	hpm_mempool_put_bulk(mp, objs, 33);
	EXPECT_EQ(32, c->len);
	EXPECT_EQ(ring0, drv_count(mp));

	/* Fill to the size limit, then overflow: flush down to half. */
	ASSERT_EQ(0, hpm_mempool_get_bulk(mp, objs, 32));	/* from cache */
	ASSERT_EQ(0, hpm_mempool_get_bulk(mp, objs + 32, 32));	/* refill */
	EXPECT_EQ(32, c->len);
	hpm_mempool_put_bulk(mp, objs, 32);
	EXPECT_EQ(64, c->len);
	hpm_mempool_put_bulk(mp, objs + 32, 1);
	EXPECT_EQ(33, c->len);
	hpm_mempool_put_bulk(mp, objs + 33, 31);
	EXPECT_EQ(64, c->len);
	EXPECT_LE(c->len, c->size);
	hpm_mempool_put(mp, one);
	EXPECT_EQ(33, c->len);

	/* Cached objects count as available. */
	EXPECT_EQ(1024, hpm_mempool_avail_count(mp));
	EXPECT_EQ(0, hpm_mempool_in_use_count(mp));
	EXPECT_EQ(1024 - 33, drv_count(mp));
	hpm_mempool_cache_flush(mp);
	EXPECT_EQ(0, c->len);
	EXPECT_EQ(1024, drv_count(mp));

	ASSERT_EQ(0, hpm_mempool_stats_get(mp, &st));
	/* 1 + 10000 + 32000 + 33 + 64 gets, the same number of puts */
	EXPECT_EQ(42098, st.get_objs);
	EXPECT_EQ(42098, st.put_objs);
	EXPECT_EQ(0, st.get_fails);
	hpm_mempool_stats_reset(mp);
	ASSERT_EQ(0, hpm_mempool_stats_get(mp, &st));
	EXPECT_EQ(0, st.get_objs);
	EXPECT_EQ(0, hpm_mempool_audit(mp));
	hpm_mempool_free(mp);
}

/* The cache cannot hide objects from a get that the pool can serve. */
TEST_F(mp, cache_refill_falls_back)
{
	struct hpm_mempool *mp;
	void *objs[16];

	mp = hpm_mempool_create("small", 24, 64, 16, 0, NULL, NULL,
				HPM_SOCKET_ANY, 0);
	ASSERT_NE(NULL, mp);
	ASSERT_LE(0, hpm_thread_register());
	/* half = 8: the first get refills 8 + 8, leaving 8 in the ring. */
	ASSERT_EQ(0, hpm_mempool_get_bulk(mp, objs, 8));
	ASSERT_EQ(0, hpm_mempool_get_bulk(mp, objs + 8, 8));
	EXPECT_EQ(24 - 16, hpm_mempool_avail_count(mp));
	/* A refill of 8 + 8 cannot be had: 8 alone still works. */
	ASSERT_EQ(0, hpm_mempool_get_bulk(mp, objs, 8));
	EXPECT_EQ(0, hpm_mempool_avail_count(mp));
	EXPECT_EQ(-ENOENT, hpm_mempool_get(mp, objs));
	hpm_mempool_free(mp);
}

TEST_F(mp, drivers)
{
	static const char *const names[] = {
		"ring_mp_mc", "ring_sp_sc", "ring_mp_sc", "ring_sp_mc", "stack",
	};
	struct hpm_mempool *mp;
	void *objs[100];
	unsigned int i;
	int rc;

	for (i = 0; i < 5; i++) {
		mp = hpm_mempool_create_empty("drv", 100, 64, 8, 0,
					      HPM_SOCKET_ANY, 0);
		ASSERT_NE(NULL, mp);
		EXPECT_EQ(-EINVAL, hpm_mempool_set_ops_byname(mp, "nope", NULL));
		ASSERT_EQ(0, hpm_mempool_set_ops_byname(mp, names[i], NULL));
		EXPECT_STREQ(names[i], mp->ops_name);
		EXPECT_EQ(i, mp->ops_id);
		rc = hpm_mempool_populate_default(mp);
		EXPECT_EQ(100, rc);
		EXPECT_EQ(-EBUSY, hpm_mempool_set_ops_byname(mp, "stack", NULL));
		EXPECT_EQ(100, hpm_mempool_avail_count(mp));
		ASSERT_EQ(0, hpm_mempool_get_bulk(mp, objs, 100));
		EXPECT_EQ(-ENOENT, hpm_mempool_get(mp, objs));
		hpm_mempool_put_bulk(mp, objs, 100);
		EXPECT_EQ(100, hpm_mempool_avail_count(mp));
		EXPECT_EQ(0, hpm_mempool_audit(mp));
		hpm_mempool_free(mp);
	}
	mp = hpm_mempool_create("flags", 64, 64, 0, 0, NULL, NULL, HPM_SOCKET_ANY,
				HPM_MEMPOOL_F_SP_PUT | HPM_MEMPOOL_F_SC_GET);
	ASSERT_NE(NULL, mp);
	EXPECT_STREQ("ring_sp_sc", mp->ops_name);
	hpm_mempool_free(mp);
}

static unsigned int freed_chunks;

static void chunk_free(struct hpm_mempool_memhdr *mh, void *opaque)
{
	/* opaque is the chunk's own address in these tests */
	if (mh->opaque != opaque || mh->addr != opaque)
		abort();
	freed_chunks++;
}

static void count_mem(struct hpm_mempool *mp, void *opaque,
		      struct hpm_mempool_memhdr *mh, unsigned int idx)
{
	(void)mp;
	(void)mh;
	(void)idx;
	(*(unsigned int *)opaque)++;
}

static void count_obj(struct hpm_mempool *mp, void *opaque, void *obj,
		      unsigned int idx)
{
	(void)mp;
	(void)obj;
	(void)idx;
	(*(unsigned int *)opaque)++;
}

TEST_F(mp, user_memory)
{
	struct hpm_mempool *mp;
	unsigned int chunks = 0, objs = 0;
	char *mem1, *mem2;
	void *obj;
	int rc;

	mem1 = aligned_alloc(4096, 64 * 1024);
	mem2 = aligned_alloc(4096, 64 * 1024);
	ASSERT_NE(NULL, mem1);
	ASSERT_NE(NULL, mem2);
	mp = hpm_mempool_create_empty("user", 500, 200, 0, 0, HPM_SOCKET_ANY,
				      HPM_MEMPOOL_F_NO_IOVA_CONTIG);
	ASSERT_NE(NULL, mp);
	EXPECT_EQ(-EINVAL, hpm_mempool_populate_iova(mp, mem1, 0x100000, 10,
						    NULL, NULL));
	rc = hpm_mempool_populate_iova(mp, mem1, 0x100000, 64 * 1024,
				       chunk_free, mem1);
	ASSERT_LT(0, rc);
	EXPECT_EQ(64 * 1024 / mp->total_elt_size, (unsigned int)rc);
	ASSERT_EQ(0, hpm_mempool_get(mp, &obj));
	EXPECT_EQ(0x100000 + ((char *)obj - mem1), hpm_mempool_virt2iova(obj));
	hpm_mempool_put(mp, obj);
	rc = hpm_mempool_populate_virt(mp, mem2, 64 * 1024, 4096, chunk_free,
				       mem2);
	ASSERT_LT(0, rc);
	EXPECT_EQ(2, mp->nb_mem_chunks);
	/* The rest from the region: a third chunk. */
	rc = hpm_mempool_populate_default(mp);
	ASSERT_LT(0, rc);
	EXPECT_EQ(500, mp->populated_size);
	EXPECT_EQ(500, hpm_mempool_avail_count(mp));
	EXPECT_EQ(3, hpm_mempool_mem_iter(mp, count_mem, &chunks));
	EXPECT_EQ(3, chunks);
	EXPECT_EQ(-ENOSPC, hpm_mempool_populate_iova(mp, mem1, 0, 4096, NULL,
						     NULL));
	EXPECT_EQ(500, hpm_mempool_obj_iter(mp, count_obj, &objs));
	EXPECT_EQ(500, objs);
	EXPECT_EQ(0, hpm_mempool_audit(mp));
	freed_chunks = 0;
	hpm_mempool_free(mp);
	EXPECT_EQ(2, freed_chunks);
	free(mem1);
	free(mem2);
}

/* Fragment the region so no single zone can hold the pool. */
TEST_F(mp, spans_memzones)
{
	const struct hpm_memzone *z[64];
	struct iter_state st = { .align = HPM_CACHE_LINE_SIZE };
	struct hpm_mempool *mp;
	unsigned int nz = 0, i, chunks = 0;
	struct hpm_mem_socket_info in;
	char n[32];

	for (int s = 0; s < HPM_MAX_NODES; s++) {
		ASSERT_EQ(0, hpm_mem_socket_info(s, &in));
		if (in.limit > in.reserved)
			SKIP(return, "dynamic memory: a freed zone's pages go back, no holes stay");
	}
	for (i = 0; i < 64; i++) {
		snprintf(n, sizeof(n), "frag%u", i);
		z[i] = hpm_memzone_reserve(n, 2u << 20, HPM_SOCKET_ANY, 0);
		if (!z[i])
			break;
		nz++;
	}
	ASSERT_LT(6, nz);
	for (i = 0; i < nz; i += 2)
		ASSERT_EQ(0, hpm_memzone_free(z[i]));
	/* Each hole is ~2 MiB; ask for ~5 MiB of objects. */
	mp = hpm_mempool_create("span", 5 * 1024, 960, 0, 0, NULL, NULL,
				HPM_SOCKET_ANY, 0);
	ASSERT_NE(NULL, mp) TH_LOG("%s", strerror(hpm_errno));
	EXPECT_LT(2, mp->nb_mem_chunks);
	EXPECT_EQ(mp->nb_mem_chunks, hpm_mempool_mem_iter(mp, count_mem, &chunks));
	EXPECT_EQ(mp->nb_mem_chunks, chunks);
	EXPECT_NE(NULL, hpm_memzone_lookup("MP_span.0"));
	EXPECT_NE(NULL, hpm_memzone_lookup("MP_span.1"));
	st.align = HPM_CACHE_LINE_SIZE;
	EXPECT_EQ(5 * 1024, hpm_mempool_obj_iter(mp, check_cb, &st));
	EXPECT_EQ(0, st.bad_iova);
	EXPECT_EQ(0, hpm_mempool_audit(mp));
	hpm_mempool_free(mp);
	EXPECT_EQ(NULL, hpm_memzone_lookup("MP_span.0"));
}

TEST_F(mp, no_cache_align)
{
	struct iter_state st = { .align = 8 };
	struct hpm_mempool *mp;

	mp = hpm_mempool_create("nca", 100, 16, 0, 0, NULL, NULL,
				HPM_SOCKET_ANY, HPM_MEMPOOL_F_NO_CACHE_ALIGN);
	ASSERT_NE(NULL, mp);
	EXPECT_GT(HPM_CACHE_LINE_SIZE, (int)mp->total_elt_size);
	hpm_mempool_obj_iter(mp, check_cb, &st);
	EXPECT_EQ(0, st.misaligned);
	hpm_mempool_free(mp);
}

static void dump_checks(struct __test_metadata *_metadata,
			struct hpm_mempool *mp)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	ASSERT_NE(NULL, f);
	hpm_mempool_dump(f, mp);
	fclose(f);
	EXPECT_NE(NULL, strstr(buf, "mempool <dumped>"));
	EXPECT_NE(NULL, strstr(buf, "driver=ring_mp_mc"));
	free(buf);
}

TEST_F(mp, dump_and_audit)
{
	struct hpm_mempool *mp;
	struct hpm_mempool_objhdr *h;
	struct hpm_mempool *saved;
	void *obj;

	mp = hpm_mempool_create("dumped", 100, 64, 16, 0, NULL, NULL,
				HPM_SOCKET_ANY, 0);
	ASSERT_NE(NULL, mp);
	dump_checks(_metadata, mp);
	ASSERT_EQ(0, hpm_mempool_get(mp, &obj));
	h = hpm_mempool_get_header(obj);
	saved = h->mp;
	h->mp = NULL;
	EXPECT_EQ(-EUCLEAN, hpm_mempool_audit(mp));
	h->mp = saved;
	EXPECT_EQ(0, hpm_mempool_audit(mp));
	hpm_mempool_put(mp, obj);
	EXPECT_EQ(-EINVAL, hpm_mempool_audit(NULL));
	hpm_mempool_free(mp);
}

/* Run fn in a child and report how it ended. */
static int child_signal(void (*fn)(void *), void *arg)
{
	int status;
	pid_t pid = fork();

	if (pid == 0) {
		fn(arg);
		_exit(0);
	}
	if (waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFSIGNALED(status) ? WTERMSIG(status) : 0;
}

static void double_put(void *arg)
{
	struct hpm_mempool *mp = arg;
	void *obj;

	if (hpm_mempool_get(mp, &obj))
		_exit(2);
	hpm_mempool_put(mp, obj);
	hpm_mempool_put(mp, obj);
}

static void foreign_put(void *arg)
{
	struct hpm_mempool *mp = arg;
	char buf[256] = { 0 };

	hpm_mempool_put(mp, buf + 128);
}

static void put_after_free(void *arg)
{
	struct hpm_mempool *mp = arg;
	void *obj;

	if (hpm_mempool_get(mp, &obj))
		_exit(2);
	hpm_mempool_free(mp);
	hpm_mempool_put(mp, obj);
}

TEST_F(mp, debug_cookies)
{
	struct hpm_mempool *mp;

#ifndef HPM_DEBUG
	SKIP(return, "debug cookies need an HPM_DEBUG=1 build");
#endif
	mp = hpm_mempool_create("dbg", 64, 64, 0, 0, NULL, NULL,
				HPM_SOCKET_ANY, 0);
	ASSERT_NE(NULL, mp);
	EXPECT_TRUE(mp->flags & HPM_MEMPOOL_F_DEBUG);
	EXPECT_EQ(SIGABRT, child_signal(double_put, mp));
	EXPECT_EQ(SIGABRT, child_signal(foreign_put, mp));
	/* Both were caught before the pool was touched. */
	EXPECT_EQ(0, hpm_mempool_audit(mp));
	EXPECT_EQ(64, hpm_mempool_avail_count(mp));
	hpm_mempool_free(mp);

	/* The child frees the (shared) pool, then puts into it. */
	mp = hpm_mempool_create("dbg2", 64, 64, 0, 0, NULL, NULL,
				HPM_SOCKET_ANY, 0);
	ASSERT_NE(NULL, mp);
	EXPECT_EQ(SIGABRT, child_signal(put_after_free, mp));
	EXPECT_EQ(NULL, hpm_mempool_lookup("dbg2"));
}

/* ---- concurrency: two threads and a secondary process ---- */

#define HAMMER_ITERS	20000u
#define HAMMER_SECONDS	6

struct obj_tag {
	_Atomic uint32_t owner;		/* 0 when in the pool */
	uint32_t uses;
};

struct worker {
	struct hpm_mempool *mp;
	uint32_t id;
	bool registered;
	unsigned int dup;
	unsigned int fails;
	unsigned int iters;
	uint64_t ops;
};

static void hammer(struct worker *w)
{
	void *objs[48];
	unsigned int it, k, n;
	uint32_t seed = w->id * 2654435761u;
	/* Bounded in time as well: the TCG guest is ~50x slower. */
	time_t deadline = time(NULL) + HAMMER_SECONDS;

	for (it = 0; it < HAMMER_ITERS; it++) {
		if ((it & 255) == 0 && time(NULL) >= deadline)
			break;
		seed = seed * 1103515245u + 12345u;
		n = 1 + (seed >> 16) % 40;
		if (hpm_mempool_get_bulk(w->mp, objs, n)) {
			w->fails++;
			continue;
		}
		for (k = 0; k < n; k++) {
			struct obj_tag *t = objs[k];
			uint32_t prev = atomic_exchange(&t->owner, w->id);

			if (prev != 0)
				w->dup++;	/* someone else holds it too */
			t->uses++;
		}
		for (k = 0; k < n; k++) {
			struct obj_tag *t = objs[k];

			atomic_store(&t->owner, 0);
		}
		hpm_mempool_put_bulk(w->mp, objs, n);
		w->ops++;
	}
	w->iters = it;
	hpm_mempool_cache_flush(w->mp);
}

static void *hammer_thread(void *arg)
{
	struct worker *w = arg;

	if (w->registered && hpm_thread_register() < 0)
		return NULL;
	hammer(w);
	if (w->registered)
		hpm_thread_unregister();
	return NULL;
}

static void tag_init(struct hpm_mempool *mp, void *opaque, void *obj,
		     unsigned int idx)
{
	struct obj_tag *t = obj;

	(void)mp;
	(void)opaque;
	(void)idx;
	atomic_init(&t->owner, 0);
	t->uses = 0;
}

static int cmp_ptr(const void *a, const void *b)
{
	uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;

	return x < y ? -1 : x > y;
}

struct collect {
	void **v;
	unsigned int n;
	uint64_t sum;
};

static void collect_cb(struct hpm_mempool *mp, void *opaque, void *obj,
		       unsigned int idx)
{
	struct collect *c = opaque;

	(void)mp;
	(void)idx;
	c->v[c->n++] = obj;
	c->sum += (uintptr_t)obj;
}

/* Every object is back, exactly once: same set as obj_iter's. */
static void check_all_back(struct __test_metadata *_metadata,
			   struct hpm_mempool *mp, unsigned int n)
{
	struct collect all = { calloc(n, sizeof(void *)), 0, 0 };
	void **got = calloc(n, sizeof(void *));
	uint64_t sum = 0;
	unsigned int i;

	ASSERT_NE(NULL, all.v);
	ASSERT_NE(NULL, got);
	EXPECT_EQ(n, hpm_mempool_avail_count(mp));
	EXPECT_EQ(0, hpm_mempool_audit(mp));
	EXPECT_EQ(n, hpm_mempool_obj_iter(mp, collect_cb, &all));
	/* Unregistered: everything comes from the driver. */
	ASSERT_EQ(0, hpm_mempool_get_bulk(mp, got, n));
	EXPECT_EQ(-ENOENT, hpm_mempool_get(mp, got));
	for (i = 0; i < n; i++)
		sum += (uintptr_t)got[i];
	EXPECT_EQ(all.sum, sum);
	qsort(got, n, sizeof(void *), cmp_ptr);
	qsort(all.v, n, sizeof(void *), cmp_ptr);
	EXPECT_EQ(0, memcmp(got, all.v, n * sizeof(void *)));
	for (i = 1; i < n; i++)
		ASSERT_NE(got[i - 1], got[i]);
	hpm_mempool_put_bulk(mp, got, n);
	free(got);
	free(all.v);
}

static void run_hammer(struct __test_metadata *_metadata,
		       struct hpm_init_opts *o, const char *ops,
		       unsigned int cache)
{
	struct worker w[3];
	pthread_t t[3];
	struct hpm_mempool *mp;
	unsigned int i, n = 512;
	uint64_t uses = 0;
	int status;
	pid_t pid;

	mp = hpm_mempool_create_empty("hammer", n, 64, cache, 0,
				      HPM_SOCKET_ANY, 0);
	ASSERT_NE(NULL, mp);
	ASSERT_EQ(0, hpm_mempool_set_ops_byname(mp, ops, NULL));
	ASSERT_EQ(n, hpm_mempool_populate_default(mp));
	hpm_mempool_obj_iter(mp, tag_init, NULL);

	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct hpm_init_opts c = *o;
		struct worker sw = { 0 };

		hpm_cleanup();
		c.proc_type = HPM_PROC_SECONDARY;
		if (hpm_init(&c))
			_exit(10);
		sw.mp = hpm_mempool_lookup("hammer");
		if (sw.mp != mp)
			_exit(11);
		/* The driver is found by its id in shared memory. */
		if (strcmp(sw.mp->ops_name, ops))
			_exit(12);
		sw.id = 3;
		sw.registered = true;
		hammer_thread(&sw);
		hpm_cleanup();
		_exit(sw.dup ? 13 : 0);
	}
	for (i = 0; i < 2; i++) {
		memset(&w[i], 0, sizeof(w[i]));
		w[i].mp = mp;
		w[i].id = i + 1;
		/* One registered (cached) and one not, when there are caches. */
		w[i].registered = i == 0 || cache == 0;
		ASSERT_EQ(0, pthread_create(&t[i], NULL, hammer_thread, &w[i]));
	}
	for (i = 0; i < 2; i++) {
		pthread_join(t[i], NULL);
		EXPECT_EQ(0, w[i].dup);
		EXPECT_EQ(w[i].iters, w[i].ops + w[i].fails);
		TH_LOG("thread %u: %u iterations, %u gets failed (pool empty)",
		       i, w[i].iters, w[i].fails);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
	check_all_back(_metadata, mp, n);
	/* Objects really moved between users. */
	for (i = 0; i < 2; i++)
		uses += w[i].ops;
	EXPECT_LT(1000, uses);
	hpm_mempool_free(mp);
}

TEST_F(mp, hammer_ring_cached)
{
	run_hammer(_metadata, &self->o, "ring_mp_mc", 64);
}

TEST_F(mp, hammer_ring_uncached)
{
	run_hammer(_metadata, &self->o, "ring_mp_mc", 0);
}

TEST_F(mp, hammer_stack)
{
	run_hammer(_metadata, &self->o, "stack", 32);
}

/* ---- placement ---- */

struct node_check {
	int socket;
	bool may_straddle;	/* HPM_MEMPOOL_F_NO_IOVA_CONTIG pool */
	unsigned int wrong_node;
	unsigned int wrong_iova;
};

static void node_cb(struct hpm_mempool *mp, void *opaque, void *obj,
		    unsigned int idx)
{
	struct node_check *nc = opaque;
	const struct hpm_memseg *ms = hpm_virt2memseg(obj);
	const struct hpm_memseg *me;

	(void)mp;
	(void)idx;
	me = hpm_virt2memseg((char *)obj + mp->elt_size - 1);
	if (!ms || ms->socket != nc->socket || !me || me->socket != nc->socket)
		nc->wrong_node++;
	if (hpm_mempool_virt2iova(obj) != hpm_virt2iova(obj))
		nc->wrong_iova++;
	else if (!nc->may_straddle &&
		 hpm_virt2iova((char *)obj + mp->elt_size - 1) !=
		 hpm_virt2iova(obj) + mp->elt_size - 1)
		nc->wrong_iova++;
}

TEST(numa_placement)
{
	char name[HPM_NAME_SIZE], pn[24];
	struct hpm_init_opts o;
	int s, nodes = 0;

	hpm_init_opts_default(&o);
	snprintf(name, sizeof(name), "t-mpn-%d", (int)getpid());
	o.region = name;
	/* 16 MiB on every node the machine has. */
	for (s = 0; s < HPM_MAX_NODES; s++) {
		char path[64];

		snprintf(path, sizeof(path), "/sys/devices/system/node/node%d", s);
		if (s == 0 || access(path, F_OK) == 0)
			o.socket_mem[s] = 16;
	}
	ASSERT_EQ(0, hpm_init(&o));
	for (s = 0; s < HPM_MAX_NODES; s++) {
		struct node_check nc = { .socket = s };
		struct hpm_mempool *mp;

		snprintf(pn, sizeof(pn), "node%d", s);
		/* Objects straddle 2 MiB pages unless kept apart. */
		mp = hpm_mempool_create(pn, 3000, 1500, 32, 0, NULL, NULL, s, 0);
		if (!mp)
			continue;
		nodes++;
		EXPECT_EQ(3000, hpm_mempool_obj_iter(mp, node_cb, &nc));
		EXPECT_EQ(0, nc.wrong_node);
		EXPECT_EQ(0, nc.wrong_iova);
		hpm_mempool_free(mp);

		snprintf(pn, sizeof(pn), "straddle%d", s);
		mp = hpm_mempool_create(pn, 3000, 1500, 32, 0, NULL, NULL, s,
					HPM_MEMPOOL_F_NO_IOVA_CONTIG);
		ASSERT_NE(NULL, mp);
		nc.may_straddle = true;
		EXPECT_EQ(3000, hpm_mempool_obj_iter(mp, node_cb, &nc));
		EXPECT_EQ(0, nc.wrong_node);
		EXPECT_EQ(0, nc.wrong_iova);
		hpm_mempool_free(mp);
	}
	EXPECT_LE(1, nodes);
	TH_LOG("pools placed on %d node(s), backend %s", nodes,
	       hpm_backend_name(hpm_backend()));
	EXPECT_EQ(0, hpm_cleanup());
	if (nodes < 2)
		SKIP(return, "only %d NUMA node with memory: cross-node placement untested",
		     nodes);
}

TEST_HARNESS_MAIN
