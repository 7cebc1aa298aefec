// SPDX-License-Identifier: MIT
/*
 * Primary and secondary processes: same bytes at the same addresses,
 * layout mismatch and taken address ranges refused, lifetimes.
 * Children that attach are forked before the parent initialises: a forked
 * copy of an initialised process already has the region mapped there.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <hpmem/hpmem.h>

#include "config.h"
#include "kselftest_harness.h"

struct child {
	pid_t pid;
	int to[2];	/* parent -> child */
	int from[2];	/* child -> parent */
};

typedef int (*child_fn)(struct child *c, void *arg);

static void opts_for(struct hpm_init_opts *o, char *name, const char *tag)
{
	hpm_init_opts_default(o);
	snprintf(name, HPM_NAME_SIZE, "t-%s-%d", tag, (int)getpid());
	o->region = name;
	o->socket_mem[0] = 8;
}

static int put(int fd, const void *buf, size_t n)
{
	return write(fd, buf, n) == (ssize_t)n ? 0 : -1;
}

static int get(int fd, void *buf, size_t n)
{
	return read(fd, buf, n) == (ssize_t)n ? 0 : -1;
}

static int start(struct child *c, child_fn fn, void *arg)
{
	if (pipe(c->to) || pipe(c->from))
		return -1;
	c->pid = fork();
	if (c->pid < 0)
		return -1;
	if (c->pid == 0) {
		int ret;

		close(c->to[1]);
		close(c->from[0]);
		alarm(30);	/* never outlive a stuck parent */
		ret = fn(c, arg);
		_exit(ret);
	}
	close(c->to[0]);
	close(c->from[1]);
	return 0;
}

/* The child's exit code, or -1 when it died of a signal. */
static int finish(struct child *c)
{
	int status;

	close(c->to[1]);
	close(c->from[0]);
	if (waitpid(c->pid, &status, 0) != c->pid || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

static int as_code(int err)
{
	return err < 0 ? -err : err;
}

/* ---- the same bytes at the same addresses ---- */

struct share_msg {
	char *buf;
	size_t len;
	unsigned int thread_idx;
};

static int secondary_reads(struct child *c, void *arg)
{
	struct hpm_init_opts *o = arg;
	struct share_msg m;
	int ret, idx;

	if (get(c->to[0], &m, sizeof(m)))
		return 100;
	o->proc_type = HPM_PROC_SECONDARY;
	ret = hpm_init(o);
	if (ret)
		return as_code(ret);
	if (hpm_proc_type() != HPM_PROC_SECONDARY)
		return 101;
	for (size_t i = 0; i < m.len; i++)
		if (m.buf[i] != (char)(i * 7))
			return 102;
	if (hpm_virt2memseg(m.buf) == NULL)
		return 103;
	/* Answer in the same memory. */
	memset(m.buf, 0x5a, m.len);
	idx = hpm_thread_register();
	if (idx < 0 || (unsigned int)idx == m.thread_idx)
		return 104;
	if (put(c->from[1], &idx, sizeof(idx)))
		return 105;
	/* Wait until the parent has looked, then leave. */
	if (get(c->to[0], &ret, sizeof(ret)))
		return 106;
	return hpm_cleanup() ? 107 : 0;
}

TEST(secondary_sees_same_bytes)
{
	char name[HPM_NAME_SIZE];
	struct hpm_init_opts o;
	struct share_msg m;
	struct child c;
	int idx, one = 1;

	opts_for(&o, name, "share");
	ASSERT_EQ(0, start(&c, secondary_reads, &o));
	ASSERT_EQ(0, hpm_init(&o));
	/* Several pages: a secondary mapping a page from the wrong offset shows. */
	m.len = 5u << 20;
	m.buf = hpm_malloc("test", m.len, 64);
	ASSERT_NE(NULL, m.buf);
	for (size_t i = 0; i < m.len; i++)
		m.buf[i] = (char)(i * 7);
	m.thread_idx = (unsigned int)hpm_thread_register();
	ASSERT_GT(HPM_MAX_THREADS, m.thread_idx);
	TH_LOG("pages %s region order", hpm_config()->flags & HPM_CFG_F_REMAPPED ?
	       "remapped out of" : "in");
	ASSERT_EQ(0, put(c.to[1], &m, sizeof(m)));
	ASSERT_EQ(0, get(c.from[0], &idx, sizeof(idx)));
	EXPECT_NE((int)m.thread_idx, idx);
	for (size_t i = 0; i < m.len; i++)
		ASSERT_EQ(0x5a, m.buf[i]);
	ASSERT_EQ(0, put(c.to[1], &one, sizeof(one)));
	EXPECT_EQ(0, finish(&c));
	hpm_free(m.buf);
	EXPECT_EQ(0, hpm_cleanup());
}

static int auto_attaches(struct child *c, void *arg)
{
	struct hpm_init_opts *o = arg;
	int go, ret;

	if (get(c->to[0], &go, sizeof(go)))
		return 100;
	o->proc_type = HPM_PROC_AUTO;
	ret = hpm_init(o);
	if (ret)
		return as_code(ret);
	if (hpm_proc_type() != HPM_PROC_SECONDARY)
		return 101;
	return hpm_cleanup() ? 102 : 0;
}

/*
 * Start a child running @fn, become the primary of a region tagged @tag,
 * let the child go and expect it to exit 0.
 */
static void primary_with_child(struct __test_metadata *_metadata,
			       const char *tag, child_fn fn)
{
	char name[HPM_NAME_SIZE];
	struct hpm_init_opts o;
	struct child c;
	int go = 1;

	opts_for(&o, name, tag);
	ASSERT_EQ(0, start(&c, fn, &o));
	ASSERT_EQ(0, hpm_init(&o));
	ASSERT_EQ(0, put(c.to[1], &go, sizeof(go)));
	EXPECT_EQ(0, finish(&c));
	EXPECT_EQ(0, hpm_cleanup());
}

TEST(auto_becomes_secondary)
{
	primary_with_child(_metadata, "auto", auto_attaches);
}

/* ---- refusals ---- */

/* Child: wait for go, optionally block an address, init as secondary. */
struct attempt {
	struct hpm_init_opts o;
	void *block;
};

static int secondary_attempt(struct child *c, void *arg)
{
	struct attempt *a = arg;
	void *p = NULL;
	int ret;

	if (get(c->to[0], &p, sizeof(p)))
		return 100;
	if (p && mmap(p, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS |
		      MAP_FIXED_NOREPLACE, -1, 0) != p)
		return 101;
	ret = hpm_init(&a->o);
	if (ret == 0)
		hpm_cleanup();
	return as_code(ret);
}

static void *region_base(void)
{
	const struct hpm_memseg *ms = hpm_virt2memseg((void *)hpm_config());

	return ms ? ms->addr : NULL;
}

TEST(layout_mismatch_refused)
{
	char name[HPM_NAME_SIZE];
	struct attempt a;
	struct child c;
	void *none = NULL;

	opts_for(&a.o, name, "layout");
	a.o.proc_type = HPM_PROC_SECONDARY;
	ASSERT_EQ(0, start(&c, secondary_attempt, &a));
	ASSERT_EQ(0, hpm_init(&(struct hpm_init_opts){ .region = name, .socket_mem = { 8 } }));
	/* Pretend a library with another layout created the region. */
	hpm_config()->layout_version++;
	ASSERT_EQ(0, put(c.to[1], &none, sizeof(none)));
	EXPECT_EQ(EPROTO, finish(&c));
	hpm_config()->layout_version--;
	EXPECT_EQ(0, hpm_cleanup());
}

TEST(bad_magic_refused)
{
	char name[HPM_NAME_SIZE];
	struct attempt a;
	struct child c;
	void *none = NULL;
	uint64_t magic;

	opts_for(&a.o, name, "magic");
	ASSERT_EQ(0, start(&c, secondary_attempt, &a));
	ASSERT_EQ(0, hpm_init(&(struct hpm_init_opts){ .region = name, .socket_mem = { 8 } }));
	a.o.proc_type = HPM_PROC_SECONDARY;	/* the child has its own copy */
	magic = hpm_config()->magic;
	hpm_config()->magic = 0x1234;
	ASSERT_EQ(0, put(c.to[1], &none, sizeof(none)));
	EXPECT_EQ(EPROTO, finish(&c));
	hpm_config()->magic = magic;
	EXPECT_EQ(0, hpm_cleanup());
}

TEST(address_range_taken_refused)
{
	char name[HPM_NAME_SIZE];
	struct attempt a;
	struct child c;
	void *inside;

	opts_for(&a.o, name, "taken");
	a.o.proc_type = HPM_PROC_SECONDARY;
	ASSERT_EQ(0, start(&c, secondary_attempt, &a));
	ASSERT_EQ(0, hpm_init(&(struct hpm_init_opts){ .region = name, .socket_mem = { 8 } }));
	/* One page in the middle of the range is enough to refuse. */
	inside = (char *)region_base() + (4u << 20);
	ASSERT_EQ(0, put(c.to[1], &inside, sizeof(inside)));
	EXPECT_EQ(EADDRINUSE, finish(&c));
	EXPECT_EQ(0, hpm_cleanup());
}

/* Asks for every explicit mode: exactly one is the primary's. */
static int secondary_iova_modes(struct child *c, void *arg)
{
	static const enum hpm_iova_mode modes[] = {
		HPM_IOVA_PA, HPM_IOVA_VA, HPM_IOVA_COMPACT,
	};
	struct hpm_init_opts *o = arg;
	int go, ok = 0;

	if (get(c->to[0], &go, sizeof(go)))
		return 100;
	o->proc_type = HPM_PROC_SECONDARY;
	for (size_t i = 0; i < HPM_ARRAY_SIZE(modes); i++) {
		int ret;

		o->iova_mode = modes[i];
		ret = hpm_init(o);
		if (!ret) {
			ok++;
			hpm_cleanup();
		} else if (ret != -EINVAL) {
			return 101;
		}
	}
	return ok == 1 ? 0 : 102;
}

TEST(iova_mode_mismatch_refused)
{
	primary_with_child(_metadata, "iova", secondary_iova_modes);
}

TEST(secondary_after_primary_gone)
{
	char name[HPM_NAME_SIZE];
	struct attempt a;
	struct child c;
	void *none = NULL;

	opts_for(&a.o, name, "gone");
	a.o.proc_type = HPM_PROC_SECONDARY;
	ASSERT_EQ(0, start(&c, secondary_attempt, &a));
	ASSERT_EQ(0, hpm_init(&(struct hpm_init_opts){ .region = name, .socket_mem = { 8 } }));
	ASSERT_EQ(0, hpm_cleanup());
	ASSERT_EQ(0, put(c.to[1], &none, sizeof(none)));
	EXPECT_EQ(ENOENT, finish(&c));
}

/* ---- lifetimes ---- */

static int secondary_outlives(struct child *c, void *arg)
{
	struct hpm_init_opts *o = arg;
	struct share_msg m;
	int ret, ok = 1;

	if (get(c->to[0], &m, sizeof(m)))
		return 100;
	o->proc_type = HPM_PROC_SECONDARY;
	ret = hpm_init(o);
	if (ret)
		return as_code(ret);
	if (put(c->from[1], &ok, sizeof(ok)))
		return 101;
	/* The parent cleans up (and exits its init) before this returns. */
	if (get(c->to[0], &ok, sizeof(ok)))
		return 102;
	for (size_t i = 0; i < m.len; i++)
		if (m.buf[i] != 0x3c)
			return 103;
	memset(m.buf, 0, m.len);
	return hpm_cleanup() ? 104 : 0;
}

TEST(secondary_outlives_primary_cleanup)
{
	char name[HPM_NAME_SIZE];
	struct hpm_init_opts o;
	struct share_msg m;
	struct child c;
	int ok;

	opts_for(&o, name, "outlive");
	ASSERT_EQ(0, start(&c, secondary_outlives, &o));
	ASSERT_EQ(0, hpm_init(&o));
	m.len = 1 << 20;
	m.buf = hpm_malloc("test", m.len, 0);
	ASSERT_NE(NULL, m.buf);
	memset(m.buf, 0x3c, m.len);
	ASSERT_EQ(0, put(c.to[1], &m, sizeof(m)));
	ASSERT_EQ(0, get(c.from[0], &ok, sizeof(ok)));
	ASSERT_EQ(0, hpm_cleanup());
	ASSERT_EQ(0, put(c.to[1], &ok, sizeof(ok)));
	EXPECT_EQ(0, finish(&c));
}

static int other_primary(struct child *c, void *arg)
{
	struct hpm_init_opts o;
	char name[HPM_NAME_SIZE];
	void *p;
	int ret;

	(void)arg;
	/* Forked from an initialised parent: drop its mapping first. */
	if (hpm_cleanup())
		return 99;
	opts_for(&o, name, "sidebyside-b");
	o.proc_type = HPM_PROC_PRIMARY;
	ret = hpm_init(&o);
	if (ret) {
		p = NULL;
		put(c->from[1], &p, sizeof(p));
		return as_code(ret);
	}
	p = hpm_malloc("b", 4096, 0);
	if (!p)
		return 100;
	memset(p, 0xbb, 4096);
	if (put(c->from[1], &p, sizeof(p)) || get(c->to[0], &ret, sizeof(ret)))
		return 101;
	for (int i = 0; i < 4096; i++)
		if (((unsigned char *)p)[i] != 0xbb)
			return 102;
	return hpm_cleanup() ? 103 : 0;
}

TEST(independent_regions_side_by_side)
{
	char name[HPM_NAME_SIZE];
	struct hpm_init_opts o;
	struct child c;
	unsigned char *p;
	void *theirs;
	int go = 1;

	opts_for(&o, name, "sidebyside-a");
	o.proc_type = HPM_PROC_PRIMARY;
	ASSERT_EQ(0, hpm_init(&o));
	p = hpm_malloc("a", 4096, 0);
	ASSERT_NE(NULL, p);
	ASSERT_EQ(0, start(&c, other_primary, NULL));
	ASSERT_EQ(0, get(c.from[0], &theirs, sizeof(theirs)));
	if (!theirs) {
		int code = finish(&c);

		hpm_free(p);
		hpm_cleanup();
		if (code == ENOMEM)
			SKIP(return, "not enough hugepages for two regions");
		ASSERT_EQ(0, code);
	}
	/* Both use the default base: the same VAs, different memory. */
	memset(p, 0xaa, 4096);
	ASSERT_EQ(0, put(c.to[1], &go, sizeof(go)));
	EXPECT_EQ(0, finish(&c));
	for (int i = 0; i < 4096; i++)
		ASSERT_EQ(0xaa, p[i]);
	hpm_free(p);
	EXPECT_EQ(0, hpm_cleanup());
}

/* ---- thread slots across processes ---- */

static int register_and_die(struct child *c, void *arg)
{
	struct hpm_init_opts *o = arg;
	int go, idx;

	if (get(c->to[0], &go, sizeof(go)))
		return 100;
	o->proc_type = HPM_PROC_SECONDARY;
	if (hpm_init(o))
		return 101;
	idx = hpm_thread_register();
	if (idx < 0)
		return 102;
	put(c->from[1], &idx, sizeof(idx));
	/* Exit without unregistering or cleanup: the slot must be reclaimable. */
	return 0;
}

TEST(dead_process_slots_reclaimed)
{
	char name[HPM_NAME_SIZE];
	struct hpm_init_opts o;
	struct hpm_config *cfg;
	struct child c;
	int go = 1, idx, held = 0;

	opts_for(&o, name, "reclaim");
	ASSERT_EQ(0, start(&c, register_and_die, &o));
	ASSERT_EQ(0, hpm_init(&o));
	ASSERT_EQ(0, put(c.to[1], &go, sizeof(go)));
	ASSERT_EQ(0, get(c.from[0], &idx, sizeof(idx)));
	ASSERT_EQ(0, finish(&c));
	cfg = hpm_config();
	ASSERT_NE(0, atomic_load(&cfg->threads[idx].owner));
	/* Fill every other slot with a fake live owner (ourselves). */
	for (int i = 0; i < HPM_MAX_THREADS; i++) {
		uint64_t z = 0;

		if (i != idx && atomic_compare_exchange_strong(&cfg->threads[i].owner, &z,
				(uint64_t)getpid() << 32 | (uint32_t)getpid()))
			held++;
	}
	EXPECT_EQ(HPM_MAX_THREADS - 1, held);
	EXPECT_EQ(idx, hpm_thread_register());
	EXPECT_EQ(idx, (int)hpm_thread_index());
	EXPECT_EQ(0, hpm_thread_unregister());
	EXPECT_EQ(0, hpm_cleanup());
}

TEST_HARNESS_MAIN
