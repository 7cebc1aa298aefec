// SPDX-License-Identifier: MIT
/* ioctl fuzzing: forked workers (root and nobody) throw random and boundary
 * arguments at every command, interleaved with mmap, munmap, mremap,
 * madvise, fork and vmsplice on region files; afterwards the books balance.
 * HPMEM_FUZZ_SEED and HPMEM_FUZZ_CALLS reproduce or lengthen a run. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <time.h>
#include <ucontext.h>
#include <sys/uio.h>
#include "hpmem_test.h"

#define NWORKERS	4	/* workers 0-1 stay root, 2-3 become nobody */
#define NFDS		6
#define NMAPS		16
#define NPIPES		2
#define MAX_NAMES	4096
#define NAME_MARK	0xa5
#define HIST_MAX	134	/* errno values counted one by one */
#define PLAY_SIZE	(32 * PG)	/* every mapping lives in here */
#define ARENA_PAGES	8
#define ARENA_SPAN	(1ull << 32)	/* the PROT_NONE block around the arena */
#define BUDGET_S	75	/* wall clock for the fuzzing phase */
#define DEFAULT_CALLS	30000

#define offsetofend(t, f)	(offsetof(t, f) + sizeof(((t *)0)->f))

/* Shared by the workers and the parent (MAP_SHARED | MAP_ANONYMOUS). */
struct shared {
	long calls;		/* ioctls made */
	long other;		/* mmap, munmap, mremap, madvise, fork, ... */
	long caught;		/* SIGBUS/SIGSEGV on touching a mapping */
	long hist[HIST_MAX + 1];	/* [0]: success, [e]: errno e */
	long violations;
	char first[256];	/* the first violation */
	int nnames;
	struct {
		char name[HPMEM_NAME_MAX];
		uint32_t flags;
		int16_t worker;		/* who made it: id, +100 for a forked copy */
		uint8_t kind;		/* enum ptr_kind of the argument */
		uint8_t logged;		/* NAME_MARK once log_name() wrote it */
	} names[MAX_NAMES];	/* every region a CREATE made */
};

enum ptr_kind {
	P_VALID,	/* private scratch memory, the whole struct readable */
	P_RDONLY,	/* a read-only page */
	P_STRADDLE,	/* the struct runs into a PROT_NONE page */
	P_MAPPING,	/* inside a region mapping */
	P_NULL, P_MINUS1, P_KERNEL, P_UNMAPPED, P_NOACCESS,
	P_KINDS
};

struct map { char *addr; size_t len; };

struct worker {
	int id, child, devnull;		/* child: a forked copy, which does not fork */
	uint64_t rng;
	struct shared *sh;
	uint64_t node_mask;
	unsigned int nr_node_ids;
	int fds[NFDS];
	struct map maps[NMAPS];
	int pipes[NPIPES][2];
	pid_t kids[4];
	char *arena, *play;
	long long deadline;	/* CLOCK_MONOTONIC ms */
	long target;
};

static const struct {
	unsigned long cmd;
	uint32_t size, min;
	bool out;
} cmds[] = {
	{ HPMEM_IOC_INFO, sizeof(struct hpmem_info),
	  offsetofend(struct hpmem_info, dma_model), true },
	{ HPMEM_IOC_NODE_INFO, sizeof(struct hpmem_node_info),
	  offsetofend(struct hpmem_node_info, mapped_pages), true },
	{ HPMEM_IOC_POOL_RESIZE, sizeof(struct hpmem_pool_resize),
	  offsetofend(struct hpmem_pool_resize, nr_pages), true },
	{ HPMEM_IOC_REGION_CREATE, sizeof(struct hpmem_region_create),
	  offsetofend(struct hpmem_region_create, name), false },
	{ HPMEM_IOC_REGION_ATTACH, sizeof(struct hpmem_region_attach),
	  offsetofend(struct hpmem_region_attach, nr_pages), true },
	{ HPMEM_IOC_REGION_GROW, sizeof(struct hpmem_region_grow),
	  offsetofend(struct hpmem_region_grow, offset), true },
	{ HPMEM_IOC_REGION_SEGS, sizeof(struct hpmem_region_segs),
	  offsetofend(struct hpmem_region_segs, segs), true },
	{ HPMEM_IOC_REGION_DESTROY, sizeof(struct hpmem_region_destroy),
	  offsetofend(struct hpmem_region_destroy, name), false },
	{ HPMEM_IOC_REGION_LIST, sizeof(struct hpmem_region_list),
	  offsetofend(struct hpmem_region_list, entries), true },
	{ HPMEM_IOC_REGION_RELEASE, sizeof(struct hpmem_region_release),
	  offsetofend(struct hpmem_region_release, nr_pages), false },
	{ HPMEM_IOC_REGION_EXPORT, sizeof(struct hpmem_region_export),
	  offsetofend(struct hpmem_region_export, length), true },
};
#define NCMDS (int)(sizeof(cmds) / sizeof(cmds[0]))

/* The errnos DOC: conventions lists; anything else is a violation. */
static const int documented[] = {
	ENOTTY, EINVAL, E2BIG, EFAULT, ENAMETOOLONG, ENODEV, ENOENT, EEXIST,
	EBADFD, EALREADY, EBUSY, EPERM, ENOMEM, ENOSPC, EDQUOT,
	EACCES, EMFILE,	/* export: read-write from a read-only file; no fd */
	EBADF,		/* release, grow at an offset: read-only file */
	EOPNOTSUPP,	/* attach of a sparse region with the old size */
	EINTR,		/* list killed mid-walk */
};

static sigjmp_buf touch_env;
static volatile sig_atomic_t touch_armed;

/* A fault while touching a mapping is expected; any other is a bug here. */
static void on_fault(int sig, siginfo_t *si, void *uc)
{
	char msg[160];

	if (touch_armed) {
		touch_armed = 0;
		siglongjmp(touch_env, sig);
	}
	snprintf(msg, sizeof(msg), "# worker %d: signal %d code %d at %p, ip %#llx sp %#llx\n",
		 getpid(), sig, si->si_code, si->si_addr,
		 (unsigned long long)((ucontext_t *)uc)->uc_mcontext.gregs[REG_RIP],
		 (unsigned long long)((ucontext_t *)uc)->uc_mcontext.gregs[REG_RSP]);
	write(2, msg, strlen(msg));
	_exit(128 + sig);
}

/* xorshift64*: small, seedable, good enough to pick cases. */
static uint64_t rnd(struct worker *w)
{
	w->rng ^= w->rng >> 12;
	w->rng ^= w->rng << 25;
	w->rng ^= w->rng >> 27;
	return w->rng * 0x2545f4914f6cdd1dull;
}

static unsigned int below(struct worker *w, unsigned int n)
{
	return n ? rnd(w) % n : 0;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static void violation(struct worker *w, const char *fmt, ...)
{
	va_list ap;

	if (__atomic_fetch_add(&w->sh->violations, 1, __ATOMIC_RELAXED) == 0) {
		va_start(ap, fmt);
		vsnprintf(w->sh->first, sizeof(w->sh->first), fmt, ap);
		va_end(ap);
	}
}

/* Boundary values first, then anything. */
static uint64_t value(struct worker *w)
{
	static const uint64_t edge[] = {
		0, 1, 2, 3, 63, 64, 65, 4095, 4096, 0x7fffffff, 0x80000000,
		0xffffffff, 0x100000000ull, HPMEM_REGION_MAX_PAGES,
		HPMEM_REGION_MAX_PAGES + 1, INT64_MAX, (uint64_t)INT64_MIN,
		UINT64_MAX, UINT64_MAX - 1,
	};

	switch (below(w, 4)) {
	case 0:
		return edge[below(w, sizeof(edge) / sizeof(edge[0]))];
	case 1:
		return below(w, 8);
	case 2:
		return (uint32_t)rnd(w);
	default:
		return rnd(w);
	}
}

static unsigned int node_pick(struct worker *w)
{
	unsigned int n = below(w, 64);

	if (below(w, 8) == 0)
		return (uint32_t)value(w);
	while (!(w->node_mask >> (n % 64) & 1))
		n++;
	return n % 64;
}

/* Names: mostly "fuzz-N" (shared with the other workers, so creates
 * collide and attaches cross users), or empty, unterminated, odd bytes. */
static void name_pick(struct worker *w, char *name)
{
	unsigned int i, len;

	for (i = 0; i < HPMEM_NAME_MAX; i++)	/* bytes past the NUL: junk */
		name[i] = (char)rnd(w);
	switch (below(w, 10)) {
	case 0:
		name[0] = 0;
		break;
	case 1:		/* no NUL in HPMEM_NAME_MAX bytes */
		memcpy(name, "fuzz-", 5);
		for (i = 5; i < HPMEM_NAME_MAX; i++)
			name[i] = 'a' + below(w, 26);
		break;
	case 2:		/* any non-NUL bytes */
		len = 5 + below(w, HPMEM_NAME_MAX - 5);
		memcpy(name, "fuzz-", 5);
		for (i = 5; i < len; i++)
			name[i] = (char)(1 + below(w, 255));
		name[len] = 0;
		break;
	case 3:		/* the longest name */
		memset(name, 'z', HPMEM_NAME_MAX - 1);
		memcpy(name, "fuzz-", 5);
		name[HPMEM_NAME_MAX - 6] = '0' + below(w, 4);
		name[HPMEM_NAME_MAX - 1] = 0;
		break;
	default:
		snprintf(name, HPMEM_NAME_MAX, "fuzz-%u", below(w, 24));
		break;
	}
}

static int fd_pick(struct worker *w)
{
	int fd = w->fds[below(w, NFDS)];

	if (below(w, 16) == 0)
		return below(w, 2) ? -1 : w->devnull;	/* not hpmem */
	return fd;
}

static struct map *map_pick(struct worker *w)
{
	struct map *m = &w->maps[below(w, NMAPS)];

	return m->addr ? m : NULL;
}

/*
 * SEGS and LIST write through their pointer, so a wild one must not reach
 * the worker's own memory. The guest binaries are static and not PIE: text,
 * data (stdio's jump tables among it), bss (touch_env) and the brk heap
 * with the TCB lie in the low 4 GiB at addresses fixed at link time, where
 * a random 32-bit value, or a small one with a byte replaced, points. The
 * kernel rightly wrote REGION_LIST entries there, and a "fuzz-..." name
 * became a code pointer that snprintf() jumped through: a #GP, then a
 * second one in on_fault() (snprintf() again) with SIGSEGV blocked, which
 * killed the worker without a word. Such a pointer keeps its low
 * four bytes but moves into the arena's PROT_NONE block (EFAULT, or
 * scratch); below 64 KiB (mmap_min_addr: never mapped) it stays.
 */
static uint64_t confine(struct worker *w, uint64_t v)
{
	if (v >= 65536 && v < 1ull << 32)
		v |= (uintptr_t)w->arena & ~(ARENA_SPAN - 1);
	return v;
}

/* Fill the argument of command @c at @p with mostly sane, sometimes wild
 * fields; @sz bytes are writable at @p. */
static void fill(struct worker *w, int c, char *p, size_t sz)
{
	bool sane = below(w, 2);
	union {
		struct hpmem_info info;
		struct hpmem_node_info ni;
		struct hpmem_pool_resize rs;
		struct hpmem_region_create cr;
		struct hpmem_region_attach at;
		struct hpmem_region_grow gr;
		struct hpmem_region_segs sg;
		struct hpmem_region_destroy de;
		struct hpmem_region_list ls;
		struct hpmem_region_release rl;
		struct hpmem_region_export ex;
		char raw[64];
	} u;

	memset(&u, 0, sizeof(u));
	u.info.argsz = cmds[c].size;
	switch (cmds[c].cmd) {
	case HPMEM_IOC_NODE_INFO:
		u.ni.node = node_pick(w);
		break;
	case HPMEM_IOC_POOL_RESIZE: {
		struct hpmem_node_info ni;

		u.rs.node = node_pick(w);
		/* a few pages either way, or far out (ENOMEM at the cap) */
		if (!hp_node_info(w->fds[0], u.rs.node, &ni))
			u.rs.nr_pages = ni.total_pages + below(w, 5) - 2;
		if (!sane)
			u.rs.nr_pages = below(w, 2) ? value(w) | 1ull << 40 : 0;
		break;
	}
	case HPMEM_IOC_REGION_CREATE:
		u.cr.flags = below(w, 4);
		name_pick(w, u.cr.name);
		/* now and then sparse: holes, GROW_AT and RELEASE work */
		if (below(w, 3) == 0)
			u.cr.max_pages = below(w, 8);
		break;
	case HPMEM_IOC_REGION_ATTACH:
		name_pick(w, u.at.name);
		break;
	case HPMEM_IOC_REGION_GROW:
		u.gr.node = node_pick(w);
		u.gr.nr_pages = 1 + below(w, 3);
		if (below(w, 3) == 0) {
			u.gr.flags = HPMEM_GROW_AT;
			u.gr.offset = below(w, 8) * PG;
		}
		break;
	case HPMEM_IOC_REGION_EXPORT:
		u.ex.fd_flags = below(w, 4) ? O_RDWR | O_CLOEXEC :
				below(w, 2) ? O_RDONLY : (uint32_t)value(w);
		u.ex.offset = below(w, 8) * PG;
		u.ex.length = (1 + below(w, 2)) * PG;
		break;
	case HPMEM_IOC_REGION_RELEASE:
		u.rl.offset = below(w, 8) * PG;
		u.rl.nr_pages = 1 + below(w, 2);
		break;
	case HPMEM_IOC_REGION_SEGS: {
		/* the table ends where PROT_NONE begins: overruns fault */
		char *end = w->arena + 5 * 4096;

		u.sg.nr_segs = below(w, 160);
		u.sg.segs = (uintptr_t)(end - below(w, 129) * sizeof(struct hpmem_seg));
		if (!sane)
			u.sg.segs = below(w, 2) ? value(w) : (uintptr_t)w->arena;
		break;
	}
	case HPMEM_IOC_REGION_DESTROY:
		name_pick(w, u.de.name);
		break;
	case HPMEM_IOC_REGION_LIST: {
		/* as for segs: overruns of the arena fault */
		char *end = w->arena + 5 * 4096;

		u.ls.entry_size = sizeof(struct hpmem_region_entry) + 8 * below(w, 3);
		u.ls.nr_entries = below(w, 12);
		u.ls.cursor = below(w, 4) ? 0 : value(w);
		u.ls.entries = (uintptr_t)(end - below(w, 12) * u.ls.entry_size);
		if (!sane)
			u.ls.entries = below(w, 2) ? value(w) : (uintptr_t)w->arena;
		break;
	}
	}
	if (!sane) {
		/* break one or a few fields: flags, reserved, counts, argsz */
		for (int k = 1 + below(w, 3); k; k--) {
			switch (below(w, 5)) {
			case 0:
				u.info.flags = below(w, 2) ? 1u << below(w, 32) : (uint32_t)value(w);
				break;
			case 1:	/* node_info, resize, grow, segs: __reserved at 12 */
				if (cmds[c].cmd != HPMEM_IOC_REGION_CREATE &&
				    cmds[c].cmd != HPMEM_IOC_REGION_ATTACH &&
				    cmds[c].cmd != HPMEM_IOC_REGION_DESTROY &&
				    cmds[c].cmd != HPMEM_IOC_INFO)
					u.ni.__reserved = (uint32_t)value(w) | 1;
				break;
			case 2:
				if (cmds[c].cmd == HPMEM_IOC_REGION_GROW)
					u.gr.nr_pages = value(w);
				else if (cmds[c].cmd == HPMEM_IOC_REGION_SEGS)
					u.sg.nr_segs = (uint32_t)value(w);
				else
					u.raw[8 + below(w, 40)] = (char)rnd(w);
				break;
			default:
				u.info.argsz = (uint32_t)value(w);
				if (below(w, 2))
					u.info.argsz = cmds[c].size + below(w, 4200);
				break;
			}
		}
	}
	if (cmds[c].cmd == HPMEM_IOC_REGION_SEGS)
		u.sg.segs = confine(w, u.sg.segs);
	else if (cmds[c].cmd == HPMEM_IOC_REGION_LIST)
		u.ls.entries = confine(w, u.ls.entries);
	memcpy(p, &u, sz < sizeof(u) ? sz : sizeof(u));
	/* bytes past the struct: zero (accepted), or not (E2BIG) */
	if (sz > cmds[c].size && below(w, 4) == 0)
		p[cmds[c].size + below(w, sz - cmds[c].size)] = 1 + below(w, 255);
}

/* Into a region mapping, which may fault (SIGBUS past the region's end). */
static void fill_guarded(struct worker *w, int c, char *p)
{
	if (!sigsetjmp(touch_env, 1)) {
		touch_armed = 1;
		fill(w, c, p, 64);
	}
	touch_armed = 0;
}

static bool documented_rc(int rc)
{
	if (rc == 0)
		return true;
	for (unsigned int i = 0; i < sizeof(documented) / sizeof(documented[0]); i++)
		if (rc == -documented[i])
			return true;
	return false;
}

static void count(struct worker *w, int rc)
{
	int e = -rc;

	__atomic_fetch_add(&w->sh->calls, 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&w->sh->hist[e > HIST_MAX || e < 0 ? HIST_MAX : e],
			   1, __ATOMIC_RELAXED);
}

static void log_name(struct worker *w, const char *name, uint32_t flags, int kind)
{
	int i = __atomic_fetch_add(&w->sh->nnames, 1, __ATOMIC_RELAXED);

	if (i >= MAX_NAMES) {
		violation(w, "more than %d regions created", MAX_NAMES);
		return;
	}
	memcpy(w->sh->names[i].name, name, strnlen(name, HPMEM_NAME_MAX - 1));
	w->sh->names[i].flags = flags;
	w->sh->names[i].worker = w->id + (w->child ? 100 : 0);
	w->sh->names[i].kind = kind;
	w->sh->names[i].logged = NAME_MARK;
	if (!name[0])
		violation(w, "worker %d%s: CREATE succeeded, name empty, kind %d flags %#x",
			  w->id, w->child ? " (copy)" : "", kind, flags);
}

/*
 * A successful export's fd, read back from memory another worker may write
 * (a shared mapping): closed only if it really is a dma-buf, never one of
 * our own files.
 */
static void close_dmabuf(int fd)
{
	char path[64], link[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, link, sizeof(link) - 1);
	if (n > 0) {
		link[n] = 0;
		if (!strncmp(link, "/dmabuf:", 8))
			close(fd);
	}
}

/* One ioctl; then what the conventions promise about its result. */
static void do_ioctl(struct worker *w)
{
	char *page_ro = w->arena + 6 * 4096, *guard = w->arena + 5 * 4096;
	unsigned long cmd;
	enum ptr_kind pk;
	struct map *m;
	uint32_t argsz = 0;
	int c = below(w, NCMDS), fd = fd_pick(w), rc;
	bool known = below(w, 12) != 0, argsz_ok = false, have_sent = false;
	struct hpmem_region_create sent;
	char *p;

	cmd = cmds[c].cmd;
	if (!known) {
		switch (below(w, 4)) {
		case 0:	/* our type, a number off the table */
			cmd = _IO(HPMEM_TYPE, below(w, 2) ? HPMEM_CMD_BASE - 1 - below(w, 4) :
				  HPMEM_CMD_REGION_EXPORT + 1 + below(w, 120));
			break;
		case 1:	/* a known number with direction and size bits */
			cmd = _IOC(1 + below(w, 3), HPMEM_TYPE, _IOC_NR(cmd), below(w, 1 << 14));
			break;
		case 2:	/* someone else's type */
			cmd = _IOC(below(w, 4), "HjZ\xff"[below(w, 4)], HPMEM_CMD_BASE + below(w, 8),
				   below(w, 64));
			break;
		default:
			cmd = _IO(HPMEM_TYPE, below(w, 256));
			for (c = 0; c < NCMDS && cmds[c].cmd != cmd; c++)
				;
			known = c < NCMDS;
			if (!known)
				c = 0;
			break;
		}
	}

	pk = below(w, 3) ? P_VALID : below(w, P_KINDS);
	/* a name in shared memory may change under us: log what we sent */
	if (pk == P_MAPPING && !cmds[c].out)
		pk = P_VALID;
	switch (pk) {
	case P_VALID:
		p = w->arena + below(w, 2 * 4096 / 8) * 8;
		fill(w, c, p, 4 * 4096 - (p - w->arena));
		break;
	case P_RDONLY:	/* create "fuzz-ro-<id>", node_info and grow structs */
		p = page_ro + below(w, 3) * 1024 + (below(w, 4) ? 0 : 8);
		break;
	case P_STRADDLE:
		p = guard - 1 - below(w, cmds[c].size + 8);
		fill(w, c, p, guard - p);
		break;
	case P_MAPPING:
		m = map_pick(w);
		p = m ? m->addr + below(w, m->len / 8) * 8 : NULL;
		if (p)
			fill_guarded(w, c, p);
		break;
	case P_MINUS1:
		p = (char *)-1L;
		break;
	case P_KERNEL:
		p = (char *)(below(w, 2) ? 0xffffffff81000000ul : 0xffff888000000000ul);
		break;
	case P_UNMAPPED:	/* below mmap_min_addr: never mapped */
		p = (char *)(uintptr_t)(0x1000 + below(w, 4096));
		break;
	case P_NOACCESS:
		p = guard + below(w, 64);
		break;
	default:
		p = NULL;
		break;
	}
	/* What the kernel reads as argsz, if it can read it. */
	if (pk == P_VALID || pk == P_RDONLY || (pk == P_STRADDLE && guard - p >= 4)) {
		memcpy(&argsz, p, 4);
		argsz_ok = true;
	}
	if (cmd == HPMEM_IOC_REGION_CREATE && (pk == P_VALID || pk == P_RDONLY ||
	    (pk == P_STRADDLE && guard - p >= (long)sizeof(sent)))) {
		memcpy(&sent, p, sizeof(sent));
		have_sent = true;
	}

	rc = ioctl(fd, cmd, p) ? -errno : 0;
	count(w, rc);
	if (!rc && cmd == HPMEM_IOC_REGION_EXPORT)
		close_dmabuf(((struct hpmem_region_export *)p)->fd);

	if (fd < 0 || fd == w->devnull) {
		if (rc != -EBADF && rc != -ENOTTY)
			violation(w, "ioctl on fd %d: %d", fd, rc);
		return;
	}
	if (!documented_rc(rc))
		violation(w, "cmd %#lx ptr kind %d argsz %u: undocumented %d", cmd, pk, argsz, rc);
	if (!known) {
		if (rc != -ENOTTY)
			violation(w, "unknown cmd %#lx: %d, not ENOTTY", cmd, rc);
		return;
	}
	if (pk == P_NULL || pk == P_MINUS1 || pk == P_KERNEL || pk == P_UNMAPPED ||
	    pk == P_NOACCESS) {
		if (rc != -EFAULT)
			violation(w, "cmd %#lx unreadable arg %p: %d, not EFAULT", cmd, p, rc);
		return;
	}
	if (argsz_ok && argsz < cmds[c].min && rc != -EINVAL)
		violation(w, "cmd %#lx argsz %u below %u: %d", cmd, argsz, cmds[c].min, rc);
	if (argsz_ok && argsz > 4096 && rc != -E2BIG)
		violation(w, "cmd %#lx argsz %u: %d, not E2BIG", cmd, argsz, rc);
	if (pk == P_RDONLY && cmds[c].out && rc != -EFAULT && rc != -EINVAL && rc != -E2BIG)
		violation(w, "cmd %#lx read-only arg: %d", cmd, rc);
	if (rc || pk != P_VALID)
		goto created;

	/* Success on private memory: the fields we can judge. */
	switch (cmd) {
	case HPMEM_IOC_INFO: {
		struct hpmem_info *i = (void *)p;

		if (argsz >= cmds[c].min && (i->api_version != HPMEM_API_VERSION ||
		    i->page_shift != HPMEM_PAGE_SHIFT || i->name_max != HPMEM_NAME_MAX))
			violation(w, "INFO: api %u shift %u name_max %u", i->api_version,
				  i->page_shift, i->name_max);
		break;
	}
	case HPMEM_IOC_NODE_INFO: {
		struct hpmem_node_info *ni = (void *)p;

		if (argsz >= sizeof(*ni) && ni->total_pages !=
		    ni->free_pages + ni->inuse_pages + ni->busy_pages)
			violation(w, "NODE_INFO %u: total %llu != free %llu + inuse %llu + busy %llu",
				  ni->node, ni->total_pages, ni->free_pages, ni->inuse_pages,
				  ni->busy_pages);
		if (ni->flags || ni->__reserved)
			violation(w, "NODE_INFO succeeded with flags/reserved set");
		break;
	}
	case HPMEM_IOC_REGION_CREATE: {
		struct hpmem_region_create *cr = (void *)p;

		if (cr->flags & ~(HPMEM_REGION_PERSISTENT | HPMEM_REGION_PINNABLE))
			violation(w, "CREATE succeeded with flags %#x", cr->flags);
		break;
	}
	case HPMEM_IOC_REGION_GROW: {
		struct hpmem_region_grow *g = (void *)p;

		if (g->flags & ~HPMEM_GROW_AT || g->__reserved || !g->nr_pages ||
		    g->offset % PG)
			violation(w, "GROW succeeded: flags %#x nr %llu offset %#llx", g->flags,
				  g->nr_pages, g->offset);
		break;
	}
	}
created:
	/* Remember every region made, whatever memory the name came from. */
	if (!rc && cmd == HPMEM_IOC_REGION_CREATE) {
		struct hpmem_region_create *cr = (void *)p;

		if (!have_sent)
			violation(w, "CREATE succeeded from pointer kind %d", pk);
		else if (memcmp(&sent, p, sizeof(sent)))
			violation(w, "worker %d%s: CREATE arg at %p (kind %d) changed during the call: sent %.32s flags %#x, now %.32s flags %#x",
				  w->id, w->child ? " (copy)" : "", p, pk, sent.name, sent.flags,
				  cr->name, cr->flags);
		log_name(w, cr->name, cr->flags, pk);
	}
}

static void reserve(struct worker *w, char *addr, size_t len)
{
	/* keep the play area ours: no libc mapping may land in a hole */
	mmap(addr, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
}

static char *play_addr(struct worker *w, size_t len)
{
	size_t room = PLAY_SIZE - len;

	if (below(w, 2))
		return w->play + below(w, room / PG + 1) * PG;
	return w->play + below(w, room / 4096 + 1) * 4096;
}

static size_t len_pick(struct worker *w)
{
	switch (below(w, 4)) {
	case 0:
		return 4096 * (1 + below(w, 16));
	case 1:
		return PG + 4096 * below(w, 3);
	default:
		return PG * (1 + below(w, 3));
	}
}

static void do_mmap(struct worker *w)
{
	struct map *m = &w->maps[below(w, NMAPS)];
	size_t len = len_pick(w);
	char *at = play_addr(w, len), *p;
	int prot = PROT_READ | (below(w, 4) ? PROT_WRITE : 0);
	int flags = (below(w, 10) ? MAP_SHARED : MAP_PRIVATE) | MAP_FIXED;
	off_t off = below(w, 4) * PG + (below(w, 8) ? 0 : 4096 * below(w, 4));

	if (below(w, 12) == 0)
		off = (off_t)value(w) & ~4095ll;
	if (below(w, 10) == 0)
		flags |= MAP_POPULATE;
	p = mmap(at, len, prot, flags, fd_pick(w), off);
	if (p != MAP_FAILED) {
		m->addr = p;
		m->len = len;
	} else {
		reserve(w, at, len);	/* a failed MAP_FIXED may leave a hole */
	}
}

static void touch(struct worker *w, volatile char *p, bool write)
{
	if (sigsetjmp(touch_env, 1)) {
		__atomic_fetch_add(&w->sh->caught, 1, __ATOMIC_RELAXED);
		return;
	}
	touch_armed = 1;
	if (write)
		*p = (char)w->id;
	else
		(void)*p;
	touch_armed = 0;
}

static void do_touch(struct worker *w)
{
	struct map *m = map_pick(w);

	if (m)
		touch(w, m->addr + below(w, m->len), below(w, 2));
}

static void do_vm_op(struct worker *w)
{
	static const int advice[] = {
		MADV_NORMAL, MADV_RANDOM, MADV_SEQUENTIAL, MADV_WILLNEED,
		MADV_DONTNEED, 8 /* FREE */, 9 /* REMOVE */, 10 /* DONTFORK */,
		11 /* DOFORK */, 12 /* MERGEABLE */, 14 /* HUGEPAGE */,
		15 /* NOHUGEPAGE */, 16 /* DONTDUMP */, 18 /* WIPEONFORK */,
		19 /* KEEPONFORK */, 20 /* COLD */, 21 /* PAGEOUT */,
		22 /* POPULATE_READ */, 23 /* POPULATE_WRITE */,
		24 /* DONTNEED_LOCKED */, 25 /* COLLAPSE */, 77 /* none */,
	};	/* never HWPOISON or SOFT_OFFLINE: they act on the page */
	struct map *m = map_pick(w);
	size_t off, len;
	char *to, *p;

	if (!m)
		return;
	off = below(w, m->len / 4096) * 4096;
	len = 4096 * (1 + below(w, (m->len - off) / 4096));
	switch (below(w, 5)) {
	case 0:
		munmap(m->addr + off, len);
		reserve(w, m->addr + off, len);
		if (off == 0 && len == m->len)
			m->addr = NULL;
		break;
	case 1:	/* move, maybe grow or shrink, maybe off 2 MiB alignment */
		len = len_pick(w);
		to = play_addr(w, len);
		p = mremap(m->addr, m->len, len, MREMAP_MAYMOVE | MREMAP_FIXED, to);
		if (p != MAP_FAILED) {
			if (p != m->addr)
				reserve(w, m->addr, m->len);
			m->addr = p;
			m->len = len;
		}
		break;
	case 2:
		mprotect(m->addr + off, len, below(w, 3) ? PROT_READ | PROT_WRITE :
			 below(w, 2) ? PROT_READ : PROT_NONE);
		break;
	case 3:
		mlock(m->addr + off, len);
		munlock(m->addr + off, len);
		break;
	default:
		madvise(m->addr + off, len, advice[below(w, sizeof(advice) / sizeof(advice[0]))]);
		break;
	}
}

/* A pipe that references a page of a mapping (a busy page once its region dies). */
static void do_pipe(struct worker *w)
{
	int *pp = w->pipes[below(w, NPIPES)];
	struct map *m = map_pick(w);
	struct iovec iov;

	if (pp[0] >= 0 && below(w, 2)) {
		close(pp[0]);
		close(pp[1]);
		pp[0] = pp[1] = -1;
		return;
	}
	if (pp[0] < 0 && pipe2(pp, O_NONBLOCK | O_CLOEXEC)) {
		pp[0] = pp[1] = -1;
		return;
	}
	if (!m)
		return;
	iov.iov_base = m->addr + below(w, m->len / 4096) * 4096;
	iov.iov_len = 4096;
	vmsplice(pp[1], &iov, 1, SPLICE_F_NONBLOCK);
}

static void do_files(struct worker *w)
{
	int i = below(w, NFDS);

	if (i == 0 && below(w, 8))	/* keep a file for NODE_INFO in fill() */
		return;
	if (w->fds[i] >= 0)
		close(w->fds[i]);
	w->fds[i] = below(w, 6) ? open(HPMEM_DEVICE_PATH, O_RDWR | O_CLOEXEC) :
		    open(HPMEM_DEVICE_PATH, O_RDONLY | O_CLOEXEC);
}

static void step(struct worker *w);

static void do_fork(struct worker *w)
{
	int i = below(w, 4);
	pid_t pid;

	if (w->child || w->kids[i] > 0)
		return;
	pid = fork();
	if (pid == 0) {
		w->child = 1;
		w->rng ^= (uint64_t)getpid() << 32;
		for (int n = 0; n < 20; n++)
			step(w);
		_exit(0);
	}
	w->kids[i] = pid;
}

static void reap(struct worker *w, bool block)
{
	for (int i = 0; i < 4; i++) {
		int st;

		if (w->kids[i] <= 0 || waitpid(w->kids[i], &st, block ? 0 : WNOHANG) <= 0)
			continue;
		if (!WIFEXITED(st) || WEXITSTATUS(st))
			violation(w, "forked copy of worker %d: status %#x", w->id, st);
		w->kids[i] = 0;
	}
}

static void step(struct worker *w)
{
	unsigned int r = below(w, 100);

	if (r < 70) {
		do_ioctl(w);
		return;
	}
	__atomic_fetch_add(&w->sh->other, 1, __ATOMIC_RELAXED);
	if (r < 76)
		do_mmap(w);
	else if (r < 83)
		do_touch(w);
	else if (r < 91)
		do_vm_op(w);
	else if (r < 96)
		do_files(w);
	else if (r < 98)
		do_pipe(w);
	else
		do_fork(w);
}

/*
 * The arena, alone in a 4 GiB-aligned PROT_NONE block. REGION_LIST and
 * SEGS write wherever their pointer says, and the fuzzer derives those
 * pointers from the arena, then may replace any byte of them: a pointer
 * that differs in its low four bytes stays in the block (EFAULT, or
 * scratch). Next to the arena, as mmap() placed it, lay the shared books:
 * REGION_LIST entries landed in the name table.
 */
static char *arena_map(void)
{
	char *r = mmap(NULL, 2 * ARENA_SPAN, PROT_NONE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	uintptr_t a;

	if (r == MAP_FAILED)
		return r;
	a = ((uintptr_t)r + ARENA_SPAN - 1) & ~(ARENA_SPAN - 1);
	return mmap((char *)a + ARENA_SPAN / 2, ARENA_PAGES * 4096, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
}

static void worker_run(struct worker *w)
{
	struct sigaction sa = { .sa_sigaction = on_fault, .sa_flags = SA_SIGINFO | SA_ONSTACK };
	static char altstack[64 * 1024];
	stack_t ss = { .ss_sp = altstack, .ss_size = sizeof(altstack) };
	struct hpmem_region_create *ro;
	struct hpmem_node_info *ni;
	struct hpmem_region_grow *gr;
	struct rlimit rl = { 64 << 20, 64 << 20 };

	/* a fault with a bad stack pointer still reaches on_fault() */
	CHILD_CHECK(sigaltstack(&ss, NULL) == 0);
	sigaction(SIGBUS, &sa, NULL);
	sigaction(SIGSEGV, &sa, NULL);
	alarm(BUDGET_S + 30);	/* never outlive a stuck parent */
	if (w->id >= NWORKERS / 2) {
		/* a few pages' worth of RLIMIT_MEMLOCK, then nobody */
		CHILD_CHECK(setrlimit(RLIMIT_MEMLOCK, &rl) == 0);
		CHILD_CHECK(drop_root() == 0);
	}
	w->arena = arena_map();
	CHILD_CHECK(w->arena != MAP_FAILED);
	/* pages 0-4 scratch, 5 PROT_NONE, 6 read-only, 7 PROT_NONE */
	ro = (void *)(w->arena + 6 * 4096);
	ro->argsz = sizeof(*ro);
	snprintf(ro->name, sizeof(ro->name), "fuzz-ro-%d", w->id);
	ni = (void *)(w->arena + 6 * 4096 + 1024);
	ni->argsz = sizeof(*ni);
	gr = (void *)(w->arena + 6 * 4096 + 2048);
	gr->argsz = sizeof(*gr);
	gr->nr_pages = 1;
	CHILD_CHECK(mprotect(ro, 4096, PROT_READ) == 0);
	CHILD_CHECK(mprotect(w->arena + 5 * 4096, 4096, PROT_NONE) == 0);
	CHILD_CHECK(mprotect(w->arena + 7 * 4096, 4096, PROT_NONE) == 0);
	w->play = mmap(NULL, PLAY_SIZE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHILD_CHECK(w->play != MAP_FAILED);
	w->devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	CHILD_CHECK(w->devnull >= 0);
	for (int i = 0; i < NFDS; i++)
		w->fds[i] = open(HPMEM_DEVICE_PATH, O_RDWR | O_CLOEXEC);
	CHILD_CHECK(w->fds[0] >= 0);
	for (int i = 0; i < NPIPES; i++)
		w->pipes[i][0] = w->pipes[i][1] = -1;

	while (__atomic_load_n(&w->sh->calls, __ATOMIC_RELAXED) < w->target &&
	       now_ms() < w->deadline) {
		for (int i = 0; i < 32; i++)
			step(w);
		reap(w, false);
	}
	reap(w, true);
	_exit(0);
}

FIXTURE(fuzz) {
	int fd;
	mode_t mode;
	bool chmodded;
	const char *skip;	/* the harness runs the body after a SKIP here */
};

FIXTURE_SETUP(fuzz)
{
	struct stat st;

	self->chmodded = false;
	self->fd = open(HPMEM_DEVICE_PATH, O_RDWR | O_CLOEXEC);
	if (self->fd < 0 && errno == ENOENT) {
		self->skip = HPMEM_DEVICE_PATH " absent";
		return;
	}
	ASSERT_LE(0, self->fd);
	if (geteuid()) {
		self->skip = "needs root (chmod of the device, workers as nobody)";
		return;
	}
	ASSERT_EQ(0, stat(HPMEM_DEVICE_PATH, &st));
	self->mode = st.st_mode & 07777;
	ASSERT_EQ(0, chmod(HPMEM_DEVICE_PATH, 0666));
	self->chmodded = true;
}

FIXTURE_TEARDOWN(fuzz)
{
	if (self->chmodded)
		chmod(HPMEM_DEVICE_PATH, self->mode);
	if (self->fd >= 0)
		close(self->fd);
}

/* Marker lines in the kernel log from @fd (opened at its end) onwards. */
static int kmsg_marks(int fd)
{
	char rec[2048];
	ssize_t n;
	int marks = 0;

	while ((n = read(fd, rec, sizeof(rec) - 1)) > 0 || (n < 0 && errno == EPIPE)) {
		if (n <= 0)
			continue;
		rec[n] = 0;
		if ((strstr(rec, "BUG:") || strstr(rec, "WARNING:") || strstr(rec, "Oops") ||
		     strstr(rec, "general protection fault")) && !strstr(rec, "traps:")) {
			printf("# kmsg: %s", strchr(rec, ';') ? strchr(rec, ';') + 1 : rec);
			marks++;
		}
	}
	return marks;
}

/* ATTACH or DESTROY by a name of up to HPMEM_NAME_MAX - 1 bytes, in the
 * name space of @uid (names are per uid). */
static int by_name(int fd, unsigned long cmd, const char *name, uint32_t uid)
{
	struct hpmem_region_attach a = { .argsz = sizeof(a),
					 .flags = HPMEM_NAME_UID, .uid = uid };
	struct hpmem_region_destroy d = { .argsz = sizeof(d),
					  .flags = HPMEM_NAME_UID, .uid = uid };

	if (cmd == HPMEM_IOC_REGION_DESTROY) {
		memcpy(d.name, name, strnlen(name, HPMEM_NAME_MAX - 1));
		return xioctl(fd, cmd, &d);
	}
	memcpy(a.name, name, strnlen(name, HPMEM_NAME_MAX - 1));
	return xioctl(fd, cmd, &a);
}

/* The uids the workers run as: root and nobody. */
static const uint32_t worker_uids[] = { 0, NOBODY };

/* The page frame behind @addr, for a report (root reads /proc/self/pagemap). */
static unsigned long long pfn_of(const void *addr)
{
	uint64_t e = 0;
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return 0;
	if (pread(fd, &e, 8, (uintptr_t)addr / 4096 * 8) != 8)
		e = 0;
	close(fd);
	return e & ((1ull << 55) - 1);
}

static void hexdump(const void *addr, size_t len)
{
	const unsigned char *b = addr;

	for (size_t i = 0; i < len; i += 16) {
		printf("# %p:", b + i);
		for (size_t k = i; k < i + 16 && k < len; k++)
			printf(" %02x", b[k]);
		printf("\n");
	}
}

/*
 * Entries of the name table that are not as log_name() left them: only it
 * writes there, so one without its mark was overwritten, by the kernel
 * following a wild output pointer (see arena_map()) or by a write to a page
 * that was reused while someone could still write it (the page frame tells
 * a former pool page). Reports the first with its bytes.
 */
static int names_corrupt(struct shared *sh)
{
	int bad = 0;

	for (int i = 0; i < sh->nnames && i < MAX_NAMES; i++) {
		if (sh->names[i].logged == NAME_MARK && sh->names[i].name[0])
			continue;
		if (!bad++) {
			printf("# names[%d] of %d overwritten: mark %#x, at %p, pfn %#llx\n", i,
			       sh->nnames, sh->names[i].logged, &sh->names[i],
			       pfn_of(&sh->names[i]));
			hexdump(&sh->names[i], 4 * sizeof(sh->names[i]));
		}
	}
	return bad;
}

/* The highest region id now (0: none); ids only grow (cyclic, 32 bits). */
static uint64_t last_id(int fd)
{
	struct hpmem_region_entry e[16];
	uint64_t cursor = 0, id = 0;
	int n;

	while ((n = list_page(fd, &cursor, e, 16, sizeof(e[0]))) > 0)
		id = e[n - 1].id;
	return id;
}

/*
 * Prints every region the module still has. Returns how many are wrong
 * now: one the run created (after @before; the cleanup destroyed every
 * persistent one and no file is open), or any region nothing holds that is
 * not persistent (it should have died with its last file: a module bug).
 */
static int regions_left(int fd, uint64_t before)
{
	uint32_t esz = sizeof(struct hpmem_region_entry) + 8 * 8;
	char buf[8 * (sizeof(struct hpmem_region_entry) + 8 * 8)];
	struct hpmem_region_entry *e;
	uint64_t cursor = 0;
	int n, bad = 0;

	while ((n = list_page(fd, &cursor, buf, 8, esz)) > 0) {
		for (int k = 0; k < n; k++) {
			e = (void *)(buf + k * esz);
			printf("# region left: id %llu name '%.32s' uid %u flags %#x users %u maps %u pages %llu (node0 %llu node1 %llu)\n",
			       (unsigned long long)e->id, e->name, e->uid, e->flags, e->users,
			       e->maps, (unsigned long long)e->nr_pages,
			       (unsigned long long)e->node_pages[0],
			       (unsigned long long)e->node_pages[1]);
			if (e->id > before ||
			    (!(e->flags & HPMEM_REGION_PERSISTENT) && !e->users && !e->maps))
				bad++;
		}
	}
	if (n < 0) {
		printf("# REGION_LIST: %d\n", n);
		bad++;
	}
	return bad;
}

static const char *errname(int e)
{
	static char buf[16];

	switch (e) {
	case 0: return "ok";
	case ENOTTY: return "ENOTTY";
	case EINVAL: return "EINVAL";
	case E2BIG: return "E2BIG";
	case EFAULT: return "EFAULT";
	case ENAMETOOLONG: return "ENAMETOOLONG";
	case EACCES: return "EACCES";
	case EMFILE: return "EMFILE";
	case ENODEV: return "ENODEV";
	case ENOENT: return "ENOENT";
	case EEXIST: return "EEXIST";
	case EBADFD: return "EBADFD";
	case EBADF: return "EBADF";
	case EALREADY: return "EALREADY";
	case EBUSY: return "EBUSY";
	case EPERM: return "EPERM";
	case ENOMEM: return "ENOMEM";
	case ENOSPC: return "ENOSPC";
	case EOPNOTSUPP: return "EOPNOTSUPP";
	case EINTR: return "EINTR";
	}
	snprintf(buf, sizeof(buf), "errno %d", e);
	return buf;
}

TEST_F_TIMEOUT(fuzz, every_command_from_four_workers, BUDGET_S + 60)
{
	struct hpmem_node_info before[64], ni;
	const char *env;
	struct hpmem_info info;
	struct shared *sh;
	struct worker w;
	uint64_t seed, first_id;
	pid_t pids[NWORKERS];
	long target = DEFAULT_CALLS;
	long long t0 = now_ms();
	int kmsg, marks, leftover = 0;
	char *regions;

	if (self->skip)
		SKIP(return, "%s", self->skip);
	env = getenv("HPMEM_FUZZ_SEED");
	seed = env ? strtoull(env, NULL, 0) : (uint64_t)time(NULL) << 20 ^ getpid();
	env = getenv("HPMEM_FUZZ_CALLS");
	if (env)
		target = strtol(env, NULL, 0);
	printf("# seed %llu (HPMEM_FUZZ_SEED=%llu reproduces the choices), calls %ld\n",
	       (unsigned long long)seed, (unsigned long long)seed, target);
	fflush(stdout);

	ASSERT_EQ(0, hp_info(self->fd, &info));
	for (unsigned int n = 0; n < 64; n++)
		if (info.node_mask >> n & 1)
			ASSERT_EQ(0, hp_node_info(self->fd, n, &before[n]));
	first_id = last_id(self->fd);
	kmsg = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (kmsg >= 0)
		lseek(kmsg, 0, SEEK_END);

	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, sh);
	memset(&w, 0, sizeof(w));
	w.sh = sh;
	w.node_mask = info.node_mask;
	w.nr_node_ids = info.nr_node_ids;
	w.target = target;
	w.deadline = t0 + BUDGET_S * 1000LL;
	fflush(stdout);
	fflush(stderr);
	for (int i = 0; i < NWORKERS; i++) {
		pids[i] = fork();
		ASSERT_LE(0, pids[i]);
		if (pids[i] == 0) {
			w.id = i;
			w.rng = seed * 0x9e3779b97f4a7c15ull + i + 1;
			worker_run(&w);
		}
	}
	for (int i = 0; i < NWORKERS; i++) {
		EXPECT_EQ(0, wait_child(pids[i])) TH_LOG("worker %d", i);
	}
	/*
	 * An overwritten entry is reported as such, not as a region with a
	 * junk name that survives; the REGION_LIST pass below destroys what
	 * it named anyway.
	 */
	EXPECT_EQ(0, names_corrupt(sh)) TH_LOG("the shared name table was written from outside the test");

	/*
	 * Nobody holds a file now: persistent regions must go on request.
	 * REGION_LIST finds every one the run made, of either uid, whatever
	 * its name (a wild byte may replace its fuzz- prefix), without the
	 * name table, which holds MAX_NAMES at most.
	 */
	for (uint64_t cursor = 0;;) {
		struct hpmem_region_entry ents[32];
		struct hpmem_region_list l = {
			.argsz = sizeof(l), .nr_entries = 32,
			.entry_size = sizeof(ents[0]), .cursor = cursor,
			.entries = (uintptr_t)ents,
		};

		ASSERT_EQ(0, xioctl(self->fd, HPMEM_IOC_REGION_LIST, &l));
		if (!l.nr_entries)
			break;
		for (uint32_t e = 0; e < l.nr_entries; e++) {
			int rc;

			if (ents[e].id <= first_id || !(ents[e].flags & HPMEM_REGION_PERSISTENT))
				continue;
			rc = by_name(self->fd, HPMEM_IOC_REGION_DESTROY, ents[e].name,
				     ents[e].uid);
			EXPECT_TRUE(rc == 0 || rc == -ENOENT) TH_LOG("destroy '%.32s' uid %u: %d",
								     ents[e].name, ents[e].uid, rc);
		}
		cursor = l.cursor;
	}
	for (int i = 0; i < sh->nnames && i < MAX_NAMES; i++) {
		if (sh->names[i].logged != NAME_MARK ||
		    !(sh->names[i].flags & HPMEM_REGION_PERSISTENT))
			continue;
		for (int u = 0; u < 2; u++) {
			int rc = by_name(self->fd, HPMEM_IOC_REGION_DESTROY, sh->names[i].name,
					 worker_uids[u]);

			EXPECT_TRUE(rc == 0 || rc == -ENOENT) TH_LOG("destroy %s: %d",
								     sh->names[i].name, rc);
		}
	}
	for (int i = 0; i < sh->nnames && i < MAX_NAMES; i++) {
		if (sh->names[i].logged != NAME_MARK)
			continue;
		for (int u = 0; u < 2; u++) {
			int rc = by_name(self->fd, HPMEM_IOC_REGION_ATTACH, sh->names[i].name,
					 worker_uids[u]);

			if (rc != -ENOENT && rc != -EALREADY && leftover++ < 8)
				TH_LOG("region %d '%s' (flags %#x worker %d kind %d) survives: attach %d",
				       i, sh->names[i].name, sh->names[i].flags, sh->names[i].worker,
				       sh->names[i].kind, rc);
			if (rc == 0) {	/* the attach took our file: a new one */
				close(self->fd);
				self->fd = open(HPMEM_DEVICE_PATH, O_RDWR | O_CLOEXEC);
				ASSERT_LE(0, self->fd);
			}
		}
	}
	EXPECT_EQ(0, leftover);
	EXPECT_EQ(0, regions_left(self->fd, first_id));
	regions = malloc(1 << 16);
	ASSERT_NE(NULL, regions);
	if (read_file("/sys/class/hpmem/hpmem/regions", regions, 1 << 16) >= 0)
		EXPECT_EQ(NULL, strstr(regions, "name=fuzz-")) TH_LOG("%s", regions);
	free(regions);

	/* Pipes and forked copies are gone: busy pages drain, pools balance. */
	for (unsigned int n = 0; n < 64; n++) {
		long long until = now_ms() + 5000;

		if (!(info.node_mask >> n & 1))
			continue;
		while (!hp_node_info(self->fd, n, &ni) && ni.busy_pages && now_ms() < until)
			usleep(50000);
		if (!(info.features & HPMEM_FEAT_BUSY_PAGES))
			ni.busy_pages = 0;
		EXPECT_EQ(0, ni.busy_pages) TH_LOG("node %u", n);
		/* the root workers resized the pools: put them back */
		EXPECT_EQ(0, hp_resize(self->fd, n, before[n].total_pages)) TH_LOG("node %u", n);
		ASSERT_EQ(0, hp_node_info(self->fd, n, &ni));
		EXPECT_EQ(before[n].total_pages, ni.total_pages);
		EXPECT_EQ(before[n].inuse_pages, ni.inuse_pages) TH_LOG("node %u", n);
		EXPECT_EQ(ni.total_pages - before[n].inuse_pages, ni.free_pages) TH_LOG("node %u", n);
		EXPECT_EQ(before[n].mapped_pages, ni.mapped_pages) TH_LOG("node %u", n);
		printf("# node %u: total %llu free %llu inuse %llu busy %llu\n", n,
		       ni.total_pages, ni.free_pages, ni.inuse_pages, ni.busy_pages);
	}

	printf("# %ld ioctls, %ld other calls, %ld faults caught, %d regions created, %lld ms\n",
	       sh->calls, sh->other, sh->caught, sh->nnames, now_ms() - t0);
	for (int e = 0; e <= HIST_MAX; e++)
		if (sh->hist[e])
			printf("# %-13s %ld\n", e == HIST_MAX ? "other" : errname(e), sh->hist[e]);
	EXPECT_EQ(0, sh->violations) TH_LOG("first: %s", sh->first);
	if (!getenv("HPMEM_FUZZ_CALLS"))
		EXPECT_LE(10000, sh->calls);
	if (kmsg >= 0) {
		marks = kmsg_marks(kmsg);
		EXPECT_EQ(0, marks);
		close(kmsg);
	}
	munmap(sh, sizeof(*sh));
}

TEST_HARNESS_MAIN
