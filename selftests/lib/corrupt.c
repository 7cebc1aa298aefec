// SPDX-License-Identifier: MIT
/*
 * A secondary facing a corrupted shared configuration (a crashed or hostile
 * primary) refuses it cleanly: -EPROTO for every bad field, never a crash or
 * a hang, also when random bytes of the header are flipped.
 * Secondaries are grandchildren forked by a helper that was itself forked
 * before the primary initialised, so they start with nothing mapped.
 */
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hpmem/hpmem.h>

#include "config.h"
#include "kselftest_harness.h"

/* Random flips per run; HPMEM_CORRUPT_ITERS overrides, HPMEM_CORRUPT_SEED repeats one. */
#define FLIP_ITERS	150

struct attacher {
	pid_t pid;
	int to, from;
	char name[HPM_NAME_SIZE];
};

/* The helper: one secondary per request, answers with its wait status. */
static void attacher_loop(int in, int out, const char *name)
{
	char cmd;

	while (read(in, &cmd, 1) == 1) {
		int status = -1;
		pid_t pid = fork();

		if (pid == 0) {
			struct hpm_init_opts o;
			int ret;

			/* Longer than the attach timeout: a hang shows as SIGALRM. */
			alarm(30);
			hpm_init_opts_default(&o);
			o.region = name;
			o.proc_type = HPM_PROC_SECONDARY;
			/* Refusals log one line each; random flips would flood the log. */
			if (cmd == 'q' && !freopen("/dev/null", "w", stderr))
				_exit(251);
			ret = hpm_init(&o);
			if (ret == 0 && hpm_cleanup())
				_exit(250);
			_exit(ret < 0 ? -ret : ret);
		}
		if (pid > 0)
			waitpid(pid, &status, 0);
		if (write(out, &status, sizeof(status)) != sizeof(status))
			break;
	}
	_exit(0);
}

static int attacher_start(struct attacher *a, const char *tag)
{
	int to[2], from[2];

	snprintf(a->name, sizeof(a->name), "t-%s-%d", tag, (int)getpid());
	if (pipe(to) || pipe(from))
		return -1;
	a->pid = fork();
	if (a->pid < 0)
		return -1;
	if (a->pid == 0) {
		close(to[1]);
		close(from[0]);
		attacher_loop(to[0], from[1], a->name);
	}
	close(to[0]);
	close(from[1]);
	a->to = to[1];
	a->from = from[0];
	return 0;
}

/* One secondary's wait status; @quiet sends its log lines to /dev/null. */
static int attempt(struct attacher *a, bool quiet)
{
	char cmd = quiet ? 'q' : 'v';
	int status;

	if (write(a->to, &cmd, 1) != 1 || read(a->from, &status, sizeof(status)) != sizeof(status))
		return -1;
	return status;
}

static void attacher_stop(struct attacher *a)
{
	close(a->to);
	close(a->from);
	waitpid(a->pid, NULL, 0);
}

static int primary_init(struct attacher *a)
{
	struct hpm_init_opts o;

	hpm_init_opts_default(&o);
	o.region = a->name;
	o.proc_type = HPM_PROC_PRIMARY;
	o.socket_mem[0] = 8;
	return hpm_init(&o);
}

/* Up to two writes per case: new values for a field (or two). */
struct poke {
	void *addr;
	size_t len;
	uint64_t val;
};

struct corruption {
	const char *what;
	int expect;		/* errno the secondary exits with */
	struct poke p[2];
};

#define POKE(field, v)	{ &(field), sizeof(field), (uint64_t)(v) }

static void poke(const struct poke *p, void *save)
{
	if (!p->addr)
		return;
	memcpy(save, p->addr, p->len);
	memcpy(p->addr, &p->val, p->len);	/* little endian: the low bytes */
}

static void unpoke(const struct poke *p, const void *save)
{
	if (p->addr)
		memcpy(p->addr, save, p->len);
}

TEST(each_field_refused)
{
	struct attacher a;
	struct hpm_config *c;
	uint64_t psz, last, *offs;
	uint32_t *mzt;
	int status;

	ASSERT_EQ(0, attacher_start(&a, "corrupt"));
	ASSERT_EQ(0, primary_init(&a));
	c = hpm_config();
	psz = c->page_sz;
	last = c->nr_memsegs - 1;
	offs = hpm_config_offsets(c);
	mzt = c->memzone_tbl;
	ASSERT_LE(2, c->nr_memsegs);

	const struct corruption cases[] = {
		{ "magic", EPROTO, { POKE(c->magic, c->magic ^ 1) } },
		{ "layout_version", EPROTO, { POKE(c->layout_version, 0xdead) } },
		{ "cfg_size", EPROTO, { POKE(c->cfg_size, c->cfg_size + 64) } },
		{ "memseg_size", EPROTO, { POKE(c->memseg_size, 8) } },
		{ "heap_size", EPROTO, { POKE(c->heap_size, 0) } },
		{ "backend", EPROTO, { POKE(c->backend, 77) } },
		{ "page_sz", EPROTO, { POKE(c->page_sz, psz * 2) } },
		{ "page_sz 0", EPROTO, { POKE(c->page_sz, 0) } },
		{ "page_shift", EPROTO, { POKE(c->page_shift, c->page_shift + 1) } },
		{ "page_shift 200", EPROTO, { POKE(c->page_shift, 200) } },
		{ "size larger than the region", EPROTO, { POKE(c->size, c->size + psz) } },
		{ "size one page less", EPROTO, { POKE(c->size, c->size - psz) } },
		{ "size unaligned", EPROTO, { POKE(c->size, c->size - 1) } },
		{ "size 0", EPROTO, { POKE(c->size, 0) } },
		{ "nr_memsegs", EPROTO, { POKE(c->nr_memsegs, c->nr_memsegs + 1) } },
		{ "nr_memsegs 0", EPROTO, { POKE(c->nr_memsegs, 0) } },
		{ "nr_memsegs huge", EPROTO, { POKE(c->nr_memsegs, 0xffffffffu) } },
		{ "cfg_len", EPROTO, { POKE(c->cfg_len, c->cfg_len + 4096) } },
		{ "cfg_len 0", EPROTO, { POKE(c->cfg_len, 0) } },
		{ "base unaligned", EPROTO, { POKE(c->base, c->base + 4096 / 2) } },
		{ "base 0", EPROTO, { POKE(c->base, 0) } },
		{ "base beyond user space", EPROTO, { POKE(c->base, 1ULL << 62) } },
		{ "base wraps", EPROTO, { POKE(c->base, -psz) } },
		/* Aligned and mappable elsewhere: the memseg table disagrees. */
		{ "base moved", EPROTO, { POKE(c->base, c->base + 1024 * psz) } },
		{ "iova_mode auto", EPROTO, { POKE(c->iova_mode, HPM_IOVA_AUTO) } },
		{ "iova_mode 9", EPROTO, { POKE(c->iova_mode, 9) } },
		{ "socket_mask 0", EPROTO, { POKE(c->socket_mask, 0) } },
		{ "socket_mask node 8", EPROTO, { POKE(c->socket_mask, c->socket_mask | 1U << HPM_MAX_NODES) } },
		{ "max_memzones 0", EPROTO, { POKE(c->max_memzones, 0) } },
		{ "max_memzones differs", EPROTO, { POKE(c->max_memzones, c->max_memzones + 1) } },
		{ "max_memzones huge", EPROTO, { POKE(c->max_memzones, 0xffffffffu) } },
		{ "flags", EPROTO, { POKE(c->flags, c->flags | 0x80) } },
		{ "region name", EPROTO, { POKE(c->region[0], c->region[0] ^ 1) } },
		{ "region name longer", EPROTO, { POKE(c->region[strlen(a.name)], 'x') } },
		{ "memzone_tbl NULL", EPROTO, { POKE(c->memzone_tbl, 0) } },
		{ "memzone_tbl in the config", EPROTO, { POKE(c->memzone_tbl, c->base) } },
		{ "memzone_tbl outside", EPROTO, { POKE(c->memzone_tbl, c->base + c->size) } },
		{ "memzone_tbl shifted", EPROTO, { POKE(c->memzone_tbl, (uintptr_t)mzt + 64) } },
		{ "memzone table magic", EPROTO, { POKE(mzt[0], mzt[0] ^ 1) } },
		{ "memzone table version", EPROTO, { POKE(mzt[1], 2) } },
		{ "memsegs[0].addr", EPROTO, { POKE(c->memsegs[0].addr, (char *)c->memsegs[0].addr + psz) } },
		{ "memsegs[last].len", EPROTO, { POKE(c->memsegs[last].len, psz / 2) } },
		{ "memsegs[last].page_sz", EPROTO, { POKE(c->memsegs[last].page_sz, psz * 2) } },
		{ "memsegs[1].socket", EPROTO, { POKE(c->memsegs[1].socket, HPM_MAX_NODES) } },
		{ "memsegs[1].socket -1", EPROTO, { POKE(c->memsegs[1].socket, -1) } },
		{ "memsegs[last].flags", EPROTO, { POKE(c->memsegs[last].flags, 0x40) } },
		{ "heaps[0].magic", EPROTO, { POKE(c->heaps[0].magic, 0) } },
		{ "heaps[1].socket", EPROTO, { POKE(c->heaps[1].socket, 0) } },
		{ "heaps[0].nr_runs", EPROTO, { POKE(c->heaps[0].nr_runs, HPM_HEAP_MAX_RUNS + 1) } },
		{ "heaps[0].hi", EPROTO, { POKE(c->heaps[0].hi, c->base + c->size + psz) } },
		{ "heaps[0].runs[0]", EPROTO, { POKE(c->heaps[0].runs[0].start, c->base) } },
		/* A remapped region: offsets are read from the table and checked. */
		{ "offsets out of range", EPROTO, { POKE(c->flags, c->flags | HPM_CFG_F_REMAPPED),
						    POKE(offs[last], c->size) } },
		{ "offsets unaligned", EPROTO, { POKE(c->flags, c->flags | HPM_CFG_F_REMAPPED),
						 POKE(offs[last], offs[last] + 8) } },
		{ "offsets config moved", EPROTO, { POKE(c->flags, c->flags | HPM_CFG_F_REMAPPED),
						    POKE(offs[0], last * psz) } },
		/* Not a layout problem: the primary is gone. */
		{ "primary_pid", ENOENT, { POKE(c->primary_pid, 0x7ffffff0) } },
	};
	uint64_t save[2][8];

	/* The untouched config works, so each refusal below is the poke's. */
	status = attempt(&a, false);
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(0, WEXITSTATUS(status));
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct corruption *k = &cases[i];

		poke(&k->p[0], save[0]);
		poke(&k->p[1], save[1]);
		status = attempt(&a, false);
		unpoke(&k->p[1], save[1]);
		unpoke(&k->p[0], save[0]);
		EXPECT_TRUE(WIFEXITED(status)) TH_LOG("%s: secondary died (status 0x%x)",
						      k->what, status);
		EXPECT_EQ(k->expect, WEXITSTATUS(status)) TH_LOG("%s", k->what);
	}
	/*
	 * Dynamic memory: a table pointer into a hole, inside the region and
	 * past the config, is refused before it is read (kmod: SIGBUS).
	 */
	for (uint64_t i = 0; (c->flags & HPM_CFG_F_DYNAMIC) && i <= last; i++) {
		struct poke hole = POKE(c->memzone_tbl, (char *)c->memsegs[i].addr + 64);

		if (!(c->memsegs[i].flags & HPM_MEMSEG_F_HOLE))
			continue;
		poke(&hole, save[0]);
		status = attempt(&a, false);
		unpoke(&hole, save[0]);
		EXPECT_TRUE(WIFEXITED(status)) TH_LOG("memzone_tbl in a hole: secondary died "
						      "(status 0x%x)", status);
		EXPECT_EQ(EPROTO, WEXITSTATUS(status));
		break;
	}
	/* Everything restored: attaching works again. */
	status = attempt(&a, false);
	EXPECT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
	EXPECT_EQ(0, hpm_cleanup());
	attacher_stop(&a);
}

TEST(random_header_flips)
{
	size_t hdr = offsetof(struct hpm_config, threads);
	unsigned int seed, iters = FLIP_ITERS, refused = 0, attached = 0;
	const char *env;
	struct attacher a;
	unsigned char *b;
	int status;

	env = getenv("HPMEM_CORRUPT_SEED");
	seed = env ? (unsigned int)strtoul(env, NULL, 0) : (unsigned int)time(NULL);
	env = getenv("HPMEM_CORRUPT_ITERS");
	if (env)
		iters = (unsigned int)strtoul(env, NULL, 0);
	TH_LOG("seed %u, %u flips (HPMEM_CORRUPT_SEED=%u repeats them)", seed, iters, seed);
	ASSERT_EQ(0, attacher_start(&a, "flip"));
	ASSERT_EQ(0, primary_init(&a));
	b = (unsigned char *)hpm_config();
	for (unsigned int i = 0; i < iters; i++) {
		size_t off = (size_t)rand_r(&seed) % hdr;
		unsigned char x = (unsigned char)(1 + rand_r(&seed) % 255), old;

		/*
		 * ready = 0 is a primary still initialising: the secondary
		 * waits out the attach timeout, by design.
		 */
		if (off >= offsetof(struct hpm_config, ready) &&
		    off < offsetof(struct hpm_config, ready) + sizeof(atomic_uint))
			continue;
		old = b[off];
		b[off] ^= x;
		status = attempt(&a, true);
		b[off] = old;
		ASSERT_TRUE(WIFEXITED(status))
			TH_LOG("flip %u: byte %zu ^ 0x%02x: secondary died (status 0x%x)",
			       i, off, x, status);
		if (WEXITSTATUS(status) == 0)
			attached++;
		else
			refused++;
	}
	TH_LOG("%u refused, %u attached (harmless bytes)", refused, attached);
	status = attempt(&a, false);
	EXPECT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
	EXPECT_EQ(0, hpm_cleanup());
	attacher_stop(&a);
}

TEST_HARNESS_MAIN
