// SPDX-License-Identifier: MIT
/*
 * DPDK's mbuf autotest scenarios that needed missing API: dynamic fields and
 * flags (test_mbuf_dyn), pinned external buffer pools (test_pktmbuf_ext_pinned_buffer)
 * and the rte_mbuf_check() refusals (test_mbuf_validate_tx_offload/refcnt).
 */
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <hpmem/init.h>
#include <hpmem/mbuf.h>
#include <hpmem/mbuf_dyn.h>
#include <hpmem/mempool.h>
#include <hpmem/memseg.h>
#include <hpmem/memzone.h>
#include <hpmem/thread.h>

#include "kselftest_harness.h"

#define NB_MBUF		256
#define CACHE		16
#define ROOM		HPM_MBUF_DEFAULT_BUF_SIZE

static char region[HPM_NAME_SIZE];

static int lib_init(enum hpm_proc_type type)
{
	struct hpm_init_opts o;

	hpm_init_opts_default(&o);
	o.region = region;
	o.proc_type = type;
	return hpm_init(&o);
}

FIXTURE(dyn) {
	struct hpm_mempool *mp;
};

FIXTURE_SETUP(dyn)
{
	int rc;

	snprintf(region, sizeof(region), "t-mbdyn-%d", getpid());
	rc = lib_init(HPM_PROC_PRIMARY);
	if (rc < 0)
		SKIP(return, "hpm_init: %s", hpm_strerror(rc));
	ASSERT_LE(0, hpm_thread_register());
	self->mp = hpm_pktmbuf_pool_create("dyn", NB_MBUF, CACHE, 0, ROOM,
					   HPM_SOCKET_ANY);
	ASSERT_NE(NULL, self->mp) TH_LOG("pool: %s", hpm_strerror(hpm_errno));
}

FIXTURE_TEARDOWN(dyn)
{
	if (self->mp != NULL) {
		EXPECT_EQ(NB_MBUF, hpm_mempool_avail_count(self->mp));
		hpm_mempool_cache_flush(self->mp);
		hpm_mempool_free(self->mp);
	}
	hpm_thread_unregister();
	hpm_cleanup();
}

static const struct hpm_mbuf_dynfield field1 = {
	.name = "test-dynfield", .size = sizeof(uint8_t),
	.align = __alignof__(uint8_t),
};
static const struct hpm_mbuf_dynfield field2 = {
	.name = "test-dynfield2", .size = sizeof(uint16_t),
	.align = __alignof__(uint16_t),
};
static const struct hpm_mbuf_dynfield field3 = {
	.name = "test-dynfield3", .size = sizeof(uint64_t),
	.align = __alignof__(uint64_t),
};
static const struct hpm_mbuf_dynflag flag1 = { .name = "test-dynflag" };
static const struct hpm_mbuf_dynflag flag2 = { .name = "test-dynflag2" };
static const struct hpm_mbuf_dynflag flag3 = { .name = "test-dynflag3" };

/* test_mbuf_dyn's sequence, call for call. */
TEST_F(dyn, dynfield_register_lookup)
{
	struct hpm_mbuf_dynfield fail = field1, got;
	struct hpm_mbuf *m;
	int off1, off2, off3;

	EXPECT_EQ(-ENOENT, hpm_mbuf_dynfield_lookup("test-dynfield", NULL));
	off1 = hpm_mbuf_dynfield_register(&field1);
	ASSERT_LE(0, off1);
	off2 = hpm_mbuf_dynfield_register(&field2);
	ASSERT_LE(0, off2);
	ASSERT_NE(off1, off2);
	EXPECT_EQ(0, off2 % 2);
	/* 64 bytes from the end of line 1, as DPDK's test asks */
	off3 = hpm_mbuf_dynfield_register_offset(&field3,
		offsetof(struct hpm_mbuf, dynfield1) + 4);
	ASSERT_EQ((int)offsetof(struct hpm_mbuf, dynfield1) + 4, off3);
	EXPECT_EQ(0, off3 % 8);

	/* identical again: the same offset, requested or not */
	EXPECT_EQ(off1, hpm_mbuf_dynfield_register(&field1));
	EXPECT_EQ(off3, hpm_mbuf_dynfield_register_offset(&field3, off3));
	EXPECT_EQ(off3, hpm_mbuf_dynfield_register(&field3));
	/* same name, other offset or parameters */
	EXPECT_EQ(-EEXIST, hpm_mbuf_dynfield_register_offset(&field3, off3 + 8));
	EXPECT_EQ(EEXIST, hpm_errno);
	fail.size = 2;
	EXPECT_EQ(-EEXIST, hpm_mbuf_dynfield_register(&fail));
	fail = field1;
	fail.align = 2;
	EXPECT_EQ(-EEXIST, hpm_mbuf_dynfield_register(&fail));

	EXPECT_EQ(off2, hpm_mbuf_dynfield_lookup("test-dynfield2", &got));
	EXPECT_STREQ("test-dynfield2", got.name);
	EXPECT_EQ(sizeof(uint16_t), got.size);
	EXPECT_EQ(off1, hpm_mbuf_dynfield_lookup("test-dynfield", NULL));

	/* the bytes are usable and do not touch the static fields */
	m = hpm_pktmbuf_alloc(self->mp);
	ASSERT_NE(NULL, m);
	*HPM_MBUF_DYNFIELD(m, off1, uint8_t *) = 0xaa;
	*HPM_MBUF_DYNFIELD(m, off2, uint16_t *) = 0xbbbb;
	*HPM_MBUF_DYNFIELD(m, off3, uint64_t *) = ~0ull;
	EXPECT_EQ(0, hpm_mbuf_check(m, 1, NULL));
	EXPECT_EQ(0xaa, *HPM_MBUF_DYNFIELD(m, off1, uint8_t *));
	EXPECT_EQ(0xbbbb, *HPM_MBUF_DYNFIELD(m, off2, uint16_t *));
	hpm_pktmbuf_free(m);
}

/* rte_pktmbuf_copy/clone carry registered dynamic fields over. */
TEST_F(dyn, dynfield_follows_clone_and_copy)
{
	struct hpm_mbuf *m, *c, *d;
	int off;

	off = hpm_mbuf_dynfield_register(&field3);
	ASSERT_LE(0, off);
	m = hpm_pktmbuf_alloc(self->mp);
	ASSERT_NE(NULL, m);
	ASSERT_NE(NULL, hpm_pktmbuf_append(m, 10));
	*HPM_MBUF_DYNFIELD(m, off, uint64_t *) = 0x1122334455667788ull;
	c = hpm_pktmbuf_clone(m, self->mp);
	ASSERT_NE(NULL, c);
	d = hpm_pktmbuf_copy(m, self->mp, 0, UINT32_MAX);
	ASSERT_NE(NULL, d);
	EXPECT_EQ(0x1122334455667788ull, *HPM_MBUF_DYNFIELD(c, off, uint64_t *));
	EXPECT_EQ(0x1122334455667788ull, *HPM_MBUF_DYNFIELD(d, off, uint64_t *));
	hpm_pktmbuf_free(d);
	hpm_pktmbuf_free(c);
	hpm_pktmbuf_free(m);
}

TEST_F(dyn, dynfield_refusals)
{
	struct hpm_mbuf_dynfield f = field3;
	char name[HPM_MBUF_DYN_NAMESIZE + 1];
	int off;

	memset(name, 'x', sizeof(name));
	memcpy(f.name, name, sizeof(f.name));	/* no NUL */
	EXPECT_EQ(-ENAMETOOLONG, hpm_mbuf_dynfield_register(&f));
	f = field3;
	f.name[0] = '\0';
	EXPECT_EQ(-EINVAL, hpm_mbuf_dynfield_register(&f));
	f = field3;
	f.size = sizeof(struct hpm_mbuf);
	EXPECT_EQ(-EINVAL, hpm_mbuf_dynfield_register(&f));
	f = field3;
	f.align = 3;
	EXPECT_EQ(-EINVAL, hpm_mbuf_dynfield_register(&f));
	f = field3;
	f.flags = 1;
	EXPECT_EQ(-EINVAL, hpm_mbuf_dynfield_register(&f));
	/* unaligned, past the end, beyond the mbuf */
	EXPECT_EQ(-EINVAL, hpm_mbuf_dynfield_register_offset(&field3, 97));
	EXPECT_EQ(-EINVAL, hpm_mbuf_dynfield_register_offset(&field3, 128));
	EXPECT_EQ(-EINVAL, hpm_mbuf_dynfield_register_offset(&field2, 127));
	/* a static field's bytes are never free */
	EXPECT_EQ(-EBUSY, hpm_mbuf_dynfield_register_offset(&field3,
		offsetof(struct hpm_mbuf, pool)));
	EXPECT_EQ(EBUSY, hpm_errno);
	/* taken by another name */
	off = hpm_mbuf_dynfield_register(&field3);
	ASSERT_LE(0, off);
	f = field3;
	strcpy(f.name, "test-dynfield-other");
	EXPECT_EQ(-EBUSY, hpm_mbuf_dynfield_register_offset(&f, off));
	EXPECT_EQ(-ENOENT, hpm_mbuf_dynfield_lookup("nope", NULL));
	EXPECT_EQ(-EINVAL, hpm_mbuf_dynfield_register(NULL));
}

TEST_F(dyn, dynfield_fill_until_enoent)
{
	struct hpm_mbuf_dynfield f = { .size = 1, .align = 1 };
	size_t room = sizeof(struct hpm_mbuf) - offsetof(struct hpm_mbuf,
							 dynfield1);
	bool used[sizeof(struct hpm_mbuf)] = { false };
	size_t i;
	int off;

	for (i = 0; i < room; i++) {
		snprintf(f.name, sizeof(f.name), "byte-%zu", i);
		off = hpm_mbuf_dynfield_register(&f);
		ASSERT_LE((int)offsetof(struct hpm_mbuf, dynfield1), off);
		ASSERT_FALSE(used[off]);
		used[off] = true;
	}
	strcpy(f.name, "one-too-many");
	EXPECT_EQ(-ENOENT, hpm_mbuf_dynfield_register(&f));
}

TEST_F(dyn, dynfield_keeps_aligned_room)
{
	struct hpm_mbuf_dynfield f = { .name = "small", .size = 1, .align = 1 };
	struct hpm_mbuf_dynfield big = { .name = "big", .size = 32, .align = 32 };

	/* a byte goes where it spoils no 32-byte aligned slot */
	ASSERT_LE(0, hpm_mbuf_dynfield_register(&f));
	EXPECT_EQ(96, hpm_mbuf_dynfield_register(&big));
}

TEST_F(dyn, dynflag_register_lookup)
{
	struct hpm_mbuf_dynflag got, fail = flag1;
	struct hpm_mbuf *m;
	int b1, b2, b3;

	EXPECT_EQ(-ENOENT, hpm_mbuf_dynflag_lookup("test-dynflag", NULL));
	b1 = hpm_mbuf_dynflag_register(&flag1);
	ASSERT_LE(HPM_MBUF_DYNFLAG_FIRST_BIT, b1);
	ASSERT_GE(HPM_MBUF_DYNFLAG_LAST_BIT, b1);
	b2 = hpm_mbuf_dynflag_register(&flag2);
	ASSERT_LE(0, b2);
	ASSERT_NE(b1, b2);
	b3 = hpm_mbuf_dynflag_register_bitnum(&flag3, 40);
	ASSERT_EQ(40, b3);

	EXPECT_EQ(b1, hpm_mbuf_dynflag_register(&flag1));
	EXPECT_EQ(b3, hpm_mbuf_dynflag_register_bitnum(&flag3, 40));
	EXPECT_EQ(-EEXIST, hpm_mbuf_dynflag_register_bitnum(&flag3, 41));
	fail.flags = 0;
	strcpy(fail.name, "test-dynflag-x");
	EXPECT_EQ(-EBUSY, hpm_mbuf_dynflag_register_bitnum(&fail, 40));
	/* static flags' bits are not free */
	EXPECT_EQ(-EBUSY, hpm_mbuf_dynflag_register_bitnum(&fail, 61));
	EXPECT_EQ(-EINVAL, hpm_mbuf_dynflag_register_bitnum(&fail, 64));
	fail.flags = 1;
	EXPECT_EQ(-EINVAL, hpm_mbuf_dynflag_register(&fail));

	EXPECT_EQ(b2, hpm_mbuf_dynflag_lookup("test-dynflag2", &got));
	EXPECT_STREQ("test-dynflag2", got.name);

	m = hpm_pktmbuf_alloc(self->mp);
	ASSERT_NE(NULL, m);
	m->ol_flags |= HPM_MBUF_DYNFLAG(b1) | HPM_MBUF_DYNFLAG(b3);
	EXPECT_EQ(0, hpm_mbuf_check(m, 1, NULL));
	/* a packet with dynamic flags is still direct and frees normally */
	EXPECT_TRUE(hpm_mbuf_is_direct(m));
	hpm_pktmbuf_free(m);
	m = hpm_pktmbuf_alloc(self->mp);
	ASSERT_NE(NULL, m);
	EXPECT_EQ(0, m->ol_flags);	/* alloc clears them */
	hpm_pktmbuf_free(m);
}

TEST_F(dyn, dynflag_fill_until_enoent)
{
	struct hpm_mbuf_dynflag f = { 0 };
	uint64_t seen = 0;
	int i, b;

	for (i = HPM_MBUF_DYNFLAG_FIRST_BIT; i <= HPM_MBUF_DYNFLAG_LAST_BIT;
	     i++) {
		snprintf(f.name, sizeof(f.name), "flag-%d", i);
		b = hpm_mbuf_dynflag_register(&f);
		ASSERT_LE(0, b);
		ASSERT_EQ(0, seen & HPM_MBUF_DYNFLAG(b));
		seen |= HPM_MBUF_DYNFLAG(b);
	}
	strcpy(f.name, "flag-too-many");
	EXPECT_EQ(-ENOENT, hpm_mbuf_dynflag_register(&f));
}

TEST_F(dyn, timestamp_register)
{
	uint64_t rx = 0, tx = 0;
	int off_rx = -1, off_tx = -1;

	ASSERT_EQ(0, hpm_mbuf_dyn_rx_timestamp_register(&off_rx, &rx));
	ASSERT_EQ(0, hpm_mbuf_dyn_tx_timestamp_register(&off_tx, &tx));
	/* one field, two flags, found under DPDK's names */
	EXPECT_EQ(off_rx, off_tx);
	EXPECT_EQ(0, off_rx % 8);
	EXPECT_NE(rx, tx);
	EXPECT_EQ(off_rx, hpm_mbuf_dynfield_lookup("rte_dynfield_timestamp",
						   NULL));
	EXPECT_EQ(rx, HPM_MBUF_DYNFLAG(hpm_mbuf_dynflag_lookup(
		HPM_MBUF_DYNFLAG_RX_TIMESTAMP_NAME, NULL)));
	/* again: the same answers */
	ASSERT_EQ(0, hpm_mbuf_dyn_rx_timestamp_register(&off_tx, &tx));
	EXPECT_EQ(off_rx, off_tx);
	EXPECT_EQ(rx, tx);
	EXPECT_EQ(-EINVAL, hpm_mbuf_dyn_rx_timestamp_register(NULL, &rx));
}

TEST_F(dyn, dump)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f;

	ASSERT_LE(0, hpm_mbuf_dynfield_register(&field2));
	ASSERT_LE(0, hpm_mbuf_dynflag_register(&flag2));
	f = open_memstream(&out, &len);
	ASSERT_NE(NULL, f);
	hpm_mbuf_dyn_dump(f);
	fclose(f);
	EXPECT_NE(NULL, strstr(out, "name=test-dynfield2"));
	EXPECT_NE(NULL, strstr(out, "name=test-dynflag2"));
	free(out);
}

/* A secondary sees the primary's registrations, may repeat them, adds none. */
TEST_F(dyn, secondary_sees_registrations)
{
	int off, bit, status;
	pid_t pid;

	off = hpm_mbuf_dynfield_register(&field3);
	ASSERT_LE(0, off);
	bit = hpm_mbuf_dynflag_register(&flag1);
	ASSERT_LE(0, bit);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		int ok;

		hpm_cleanup();
		if (lib_init(HPM_PROC_SECONDARY) < 0)
			_exit(2);
		ok = hpm_mbuf_dynfield_lookup("test-dynfield3", NULL) == off &&
		     hpm_mbuf_dynfield_register(&field3) == off &&
		     hpm_mbuf_dynflag_lookup("test-dynflag", NULL) == bit &&
		     hpm_mbuf_dynflag_register(&flag1) == bit &&
		     hpm_mbuf_dynfield_register(&field1) == -EPERM &&
		     hpm_mbuf_dynflag_register(&flag2) == -EPERM &&
		     hpm_mbuf_dynfield_register_offset(&field3, off + 8) ==
		     -EEXIST;
		hpm_cleanup();
		_exit(ok ? 0 : 1);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	if (WEXITSTATUS(status) == 2)
		SKIP(return, "secondary could not attach");
	ASSERT_EQ(0, WEXITSTATUS(status));
}

/* rte_mbuf_check(): IOVA 0 and a saturated refcnt are corruption. */
TEST_F(dyn, check_iova_and_refcnt)
{
	struct hpm_mbuf *m = hpm_pktmbuf_alloc(self->mp);
	const char *why = NULL;
	uint64_t iova;

	ASSERT_NE(NULL, m);
	ASSERT_EQ(0, hpm_mbuf_check(m, 1, &why));
	iova = m->buf_iova;
	m->buf_iova = 0;
	EXPECT_EQ(-EINVAL, hpm_mbuf_check(m, 0, &why));
	EXPECT_STREQ("bad IO addr", why);
	m->buf_iova = iova;

	hpm_mbuf_refcnt_set(m, UINT16_MAX);
	EXPECT_EQ(-EINVAL, hpm_mbuf_check(m, 0, &why));
	EXPECT_STREQ("bad refcnt", why);
	hpm_mbuf_refcnt_set(m, UINT16_MAX - 1);
	EXPECT_EQ(0, hpm_mbuf_check(m, 0, &why));
	hpm_mbuf_refcnt_set(m, 1);
	EXPECT_EQ(0, hpm_mbuf_check(m, 1, &why));
	hpm_pktmbuf_free(m);
}

/* ---- pinned external buffers (test_pktmbuf_ext_pinned_buffer) ---- */

#define EXT_ELT		2048
#define EXT_N		64

static void ext_pool(struct __test_metadata *_metadata,
		     const struct hpm_memzone **mzp, struct hpm_mempool **mpp)
{
	struct hpm_pktmbuf_extmem ext;
	const struct hpm_memzone *mz;

	mz = hpm_memzone_reserve("ext-mem", (size_t)EXT_N * EXT_ELT,
				 HPM_SOCKET_ANY, 0);
	ASSERT_NE(NULL, mz) TH_LOG("memzone: %s", hpm_strerror(hpm_errno));
	*mzp = mz;
	ext.buf_ptr = mz->addr;
	ext.buf_iova = mz->iova;
	ext.buf_len = mz->len;
	ext.elt_size = EXT_ELT;
	*mpp = hpm_pktmbuf_pool_create_extbuf("ext", EXT_N, 0, 8, EXT_ELT,
					      HPM_SOCKET_ANY, &ext, 1);
	ASSERT_NE(NULL, *mpp) TH_LOG("pool: %s", hpm_strerror(hpm_errno));
}

TEST_F(dyn, extbuf_pool_buffers)
{
	const struct hpm_memzone *mz;
	struct hpm_mempool *mp;
	struct hpm_mbuf *m[EXT_N];
	bool seen[EXT_N] = { false };
	int i;

	ext_pool(_metadata, &mz, &mp);
	EXPECT_TRUE(hpm_pktmbuf_pool_is_pinned_extbuf(mp));
	EXPECT_FALSE(hpm_pktmbuf_pool_is_pinned_extbuf(self->mp));
	EXPECT_EQ(EXT_ELT, hpm_pktmbuf_data_room_size(mp));
	EXPECT_EQ(8, hpm_pktmbuf_priv_size(mp));
	ASSERT_EQ(0, hpm_pktmbuf_alloc_bulk(mp, m, EXT_N));
	for (i = 0; i < EXT_N; i++) {
		size_t off = (char *)m[i]->buf_addr - (char *)mz->addr;

		ASSERT_EQ(0, off % EXT_ELT);
		ASSERT_GT(mz->len, off);
		ASSERT_FALSE(seen[off / EXT_ELT]);
		seen[off / EXT_ELT] = true;
		EXPECT_EQ(EXT_ELT, m[i]->buf_len);
		EXPECT_EQ(HPM_PKTMBUF_HEADROOM, m[i]->data_off);
		if (mz->iova != HPM_BAD_IOVA)
			EXPECT_EQ(mz->iova + off, m[i]->buf_iova);
		EXPECT_EQ(0, hpm_mbuf_check(m[i], 1, NULL));
		ASSERT_NE(NULL, hpm_pktmbuf_append(m[i], 100));
	}
	EXPECT_EQ(NULL, hpm_pktmbuf_alloc(mp));	/* all EXT_N are out */
	hpm_pktmbuf_free_bulk(m, EXT_N);
	EXPECT_EQ(EXT_N, hpm_mempool_avail_count(mp));
	/* buffers do not move: a second round gets the same slices */
	ASSERT_EQ(0, hpm_pktmbuf_alloc_bulk(mp, m, EXT_N));
	for (i = 0; i < EXT_N; i++) {
		EXPECT_EQ(0, ((char *)m[i]->buf_addr - (char *)mz->addr) %
			  EXT_ELT);
		hpm_mbuf_raw_sanity_check(m[i]);
	}
	hpm_pktmbuf_free_bulk(m, EXT_N);
	hpm_mempool_free(mp);
	hpm_memzone_free(mz);
}

/* The owner comes back to its pool only when the last clone lets go. */
TEST_F(dyn, extbuf_pool_clone_outlives_owner)
{
	const struct hpm_memzone *mz;
	struct hpm_mempool *mp;
	struct hpm_mbuf *m, *c1, *c2;
	void *buf;
	char *p;

	ext_pool(_metadata, &mz, &mp);
	m = hpm_pktmbuf_alloc(mp);
	ASSERT_NE(NULL, m);
	buf = m->buf_addr;
	p = hpm_pktmbuf_append(m, 64);
	ASSERT_NE(NULL, p);
	memset(p, 0x5a, 64);
	c1 = hpm_pktmbuf_clone(m, self->mp);
	ASSERT_NE(NULL, c1);
	c2 = hpm_pktmbuf_clone(c1, self->mp);
	ASSERT_NE(NULL, c2);
	EXPECT_EQ(buf, c2->buf_addr);
	EXPECT_EQ(3, hpm_mbuf_refcnt_read(m));
	hpm_pktmbuf_free(m);
	EXPECT_EQ(EXT_N - 1, hpm_mempool_avail_count(mp));
	EXPECT_EQ(0x5a, *hpm_pktmbuf_mtod(c2, unsigned char *));
	hpm_pktmbuf_free(c1);
	EXPECT_EQ(EXT_N - 1, hpm_mempool_avail_count(mp));
	hpm_pktmbuf_free(c2);
	EXPECT_EQ(EXT_N, hpm_mempool_avail_count(mp));
	/* back in the pool with its pinned buffer */
	m = hpm_pktmbuf_alloc(mp);
	ASSERT_NE(NULL, m);
	hpm_mbuf_raw_sanity_check(m);
	hpm_pktmbuf_free(m);
	hpm_mempool_free(mp);
	hpm_memzone_free(mz);
}

static int ext_cb_calls;

static void ext_free_cb(void *addr, void *opaque)
{
	(void)addr;
	(void)opaque;
	ext_cb_calls++;
}

/* attach_extbuf on a pinned mbuf, then detach: its pinned buffer returns. */
TEST_F(dyn, extbuf_pool_attach_detach)
{
	const struct hpm_memzone *mz;
	struct hpm_mbuf_ext_shared_info *sh;
	struct hpm_mempool *mp;
	struct hpm_mbuf *m;
	char other[512];
	uint16_t len = sizeof(other);
	void *buf;

	ext_pool(_metadata, &mz, &mp);
	m = hpm_pktmbuf_alloc(mp);
	ASSERT_NE(NULL, m);
	buf = m->buf_addr;
	sh = hpm_pktmbuf_ext_shinfo_init_helper(other, &len, ext_free_cb, NULL);
	ASSERT_NE(NULL, sh);
	ASSERT_EQ(0, hpm_pktmbuf_attach_extbuf(m, other, 0x1000, len, sh));
	hpm_pktmbuf_detach(m);
	EXPECT_EQ(1, ext_cb_calls);
	EXPECT_EQ(buf, m->buf_addr);
	EXPECT_EQ(EXT_ELT, m->buf_len);
	EXPECT_EQ(0, hpm_mbuf_check(m, 1, NULL));
	hpm_pktmbuf_free(m);
	hpm_mempool_free(mp);
	hpm_memzone_free(mz);
}

TEST_F(dyn, extbuf_pool_refusals)
{
	struct hpm_pktmbuf_extmem ext[2];
	static char area[4 * 1024];

	ext[0].buf_ptr = area;
	ext[0].buf_iova = HPM_BAD_IOVA;
	ext[0].buf_len = sizeof(area) / 2;
	ext[0].elt_size = 1024;
	ext[1] = ext[0];
	ext[1].buf_ptr = area + sizeof(area) / 2;
	/* 4 slices: 5 mbufs do not fit */
	EXPECT_EQ(NULL, hpm_pktmbuf_pool_create_extbuf("e", 5, 0, 0, 1024,
		HPM_SOCKET_ANY, ext, 2));
	EXPECT_EQ(EINVAL, hpm_errno);
	EXPECT_EQ(NULL, hpm_pktmbuf_pool_create_extbuf("e", 4, 0, 0, 1025,
		HPM_SOCKET_ANY, ext, 2));
	EXPECT_EQ(NULL, hpm_pktmbuf_pool_create_extbuf("e", 4, 0, 3, 1024,
		HPM_SOCKET_ANY, ext, 2));
	EXPECT_EQ(NULL, hpm_pktmbuf_pool_create_extbuf("e", 4, 0, 0, 1024,
		HPM_SOCKET_ANY, NULL, 2));
	EXPECT_EQ(NULL, hpm_pktmbuf_pool_create_extbuf("e", 4, 0, 0, 1024,
		HPM_SOCKET_ANY, ext, 0));
	ext[1].elt_size = 0;
	EXPECT_EQ(NULL, hpm_pktmbuf_pool_create_extbuf("e", 2, 0, 0, 1024,
		HPM_SOCKET_ANY, ext, 2));
	ext[1].elt_size = 1024;
	/*
	 * exactly four, spread over both areas, past an area too small for
	 * one buffer: memory the app owns, no IOVA
	 */
	{
		struct hpm_pktmbuf_extmem ext3[3] = { ext[0], ext[0], ext[1] };
		struct hpm_mempool *mp;
		struct hpm_mbuf *m[4];
		int i;

		ext3[1].buf_len = 1000;
		mp = hpm_pktmbuf_pool_create_extbuf("e", 4, 0, 0, 1024,
						    HPM_SOCKET_ANY, ext3, 3);
		ASSERT_NE(NULL, mp);
		ASSERT_EQ(0, hpm_pktmbuf_alloc_bulk(mp, m, 4));
		for (i = 0; i < 4; i++) {
			int j;

			for (j = 0; j < i; j++)
				EXPECT_NE(m[j]->buf_addr, m[i]->buf_addr);
			EXPECT_LE((char *)area, (char *)m[i]->buf_addr);
			EXPECT_GT(area + sizeof(area), (char *)m[i]->buf_addr);
			EXPECT_EQ(HPM_BAD_IOVA, m[i]->buf_iova);
		}
		hpm_pktmbuf_free_bulk(m, 4);
		hpm_mempool_free(mp);
	}
}

TEST_HARNESS_MAIN
