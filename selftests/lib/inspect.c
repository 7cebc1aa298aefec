// SPDX-License-Identifier: MIT
/*
 * hpmemctl app: a primary with worker threads under load (heap, mempool,
 * ring) is looked into by the tool, every view, plain and --json, again and
 * again: outputs parse and add up, the application never waits and loses
 * nothing, no thread slot and no byte of the region is taken, a layout
 * mismatch is refused in one line, and hostile content neither crashes nor
 * hangs the tool. Backend from HPMEM_OPTS (anon, hugetlbfs, kmod in the guest).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hpmem/hpmem.h>

#include "config.h"
#include "malloc_elem.h"
#include "kselftest_harness.h"

/* ---- running the tool ---- */

/* A run that takes this long has hung (it normally takes milliseconds). */
#define CTL_TIMEOUT_MS	20000

static char ctl_path[PATH_MAX + 32];

/* hpmemctl: $HPMEMCTL, else beside our build tree, else the guest's. */
static const char *find_ctl(void)
{
	static const char *const rel[] = { "/../../tools/hpmemctl", "/../../../tools/hpmemctl" };
	char self[PATH_MAX];
	ssize_t n;

	if (getenv("HPMEMCTL") && !access(getenv("HPMEMCTL"), X_OK))
		return getenv("HPMEMCTL");
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = '\0';
		*strrchr(self, '/') = '\0';
		for (size_t i = 0; i < sizeof(rel) / sizeof(rel[0]); i++) {
			snprintf(ctl_path, sizeof(ctl_path), "%s%s", self, rel[i]);
			if (!access(ctl_path, X_OK))
				return ctl_path;
		}
	}
	return access("/bin/hpmemctl", X_OK) ? NULL : "/bin/hpmemctl";
}

struct run {
	char out[1 << 20];
	char err[4096];
	size_t nout, nerr;
	int status;		/* waitpid() status */
	bool hung;
	pid_t pid;
};

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* Run hpmemctl with @args (NULL-terminated) and collect what it says. */
static int run_ctl(struct run *r, const char *ctl, const char *const *args)
{
	const char *argv[16] = { ctl };
	int po[2], pe[2];
	long deadline;
	size_t n = 1;

	for (; args[n - 1] && n < 15; n++)
		argv[n] = args[n - 1];
	argv[n] = NULL;
	r->nout = r->nerr = 0;
	r->hung = false;
	if (pipe2(po, O_CLOEXEC) || pipe2(pe, O_CLOEXEC))
		return -errno;
	r->pid = fork();
	if (r->pid < 0)
		return -errno;
	if (!r->pid) {
		dup2(po[1], 1);
		dup2(pe[1], 2);
		execv(ctl, (char **)argv);
		_exit(127);
	}
	close(po[1]);
	close(pe[1]);
	deadline = now_ms() + CTL_TIMEOUT_MS;
	for (int open_fds = 2; open_fds;) {
		struct pollfd p[2] = { { po[0], POLLIN, 0 }, { pe[0], POLLIN, 0 } };
		long left = deadline - now_ms();

		if (left <= 0 || poll(p, 2, (int)left) <= 0) {
			r->hung = true;
			kill(r->pid, SIGKILL);
			break;
		}
		for (int i = 0; i < 2; i++) {
			char *buf = i ? r->err : r->out;
			size_t *len = i ? &r->nerr : &r->nout;
			size_t room = (i ? sizeof(r->err) : sizeof(r->out)) - 1 - *len;
			ssize_t got;

			if (!(p[i].revents & (POLLIN | POLLHUP)) || p[i].fd < 0)
				continue;
			got = read(p[i].fd, buf + *len, room ? room : 1);
			if (got <= 0) {
				close(i ? pe[0] : po[0]);
				(i ? pe : po)[0] = -1;
				open_fds--;
			} else if (room) {
				*len += (size_t)got;
			}
		}
	}
	if (po[0] >= 0)
		close(po[0]);
	if (pe[0] >= 0)
		close(pe[0]);
	r->out[r->nout] = r->err[r->nerr] = '\0';
	waitpid(r->pid, &r->status, 0);
	return 0;
}

static int lines(const char *s)
{
	int n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

/* ---- a strict little JSON reader: syntax, then lookups by key ---- */

enum jtype { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };

struct jv {
	enum jtype t;
	bool b;
	bool neg;
	uint64_t u;		/* J_NUM: the integer's magnitude */
	char *s;		/* J_STR, unescaped (\u00XX as one byte) */
	int n;			/* J_ARR / J_OBJ: items */
	struct jv *v;
	char **k;		/* J_OBJ: keys */
};

struct jp {
	const char *p;
	int depth;
};

static void jws(struct jp *j)
{
	while (*j->p == ' ' || *j->p == '\n' || *j->p == '\t' || *j->p == '\r')
		j->p++;
}

static int jparse(struct jp *j, struct jv *out);

static int jstring(struct jp *j, char **out)
{
	size_t cap = 64, len = 0;
	char *s = malloc(cap);

	if (!s || *j->p++ != '"')
		return free(s), -1;
	while (*j->p != '"') {
		unsigned int c = (unsigned char)*j->p++;

		if (c < 0x20)
			return free(s), -1;
		if (c == '\\') {
			char e = *j->p++;

			switch (e) {
			case '"': case '\\': case '/': c = (unsigned char)e; break;
			case 'b': c = '\b'; break;
			case 'f': c = '\f'; break;
			case 'n': c = '\n'; break;
			case 'r': c = '\r'; break;
			case 't': c = '\t'; break;
			case 'u':
				if (sscanf(j->p, "%4x", &c) != 1 || c > 0xff)
					return free(s), -1;
				j->p += 4;
				break;
			default:
				return free(s), -1;
			}
		}
		if (len + 2 > cap && !(s = realloc(s, cap *= 2)))
			return -1;
		s[len++] = (char)c;
	}
	j->p++;
	s[len] = '\0';
	*out = s;
	return 0;
}

static int jlist(struct jp *j, struct jv *out, bool obj)
{
	char close_ch = obj ? '}' : ']';

	j->p++;
	out->t = obj ? J_OBJ : J_ARR;
	jws(j);
	if (*j->p == close_ch) {
		j->p++;
		return 0;
	}
	for (;;) {
		out->v = realloc(out->v, (out->n + 1) * sizeof(*out->v));
		out->k = realloc(out->k, (out->n + 1) * sizeof(*out->k));
		if (!out->v || !out->k)
			return -1;
		memset(&out->v[out->n], 0, sizeof(out->v[0]));
		out->k[out->n] = NULL;
		jws(j);
		if (obj) {
			if (*j->p != '"' || jstring(j, &out->k[out->n]))
				return -1;
			jws(j);
			if (*j->p++ != ':')
				return -1;
		}
		if (jparse(j, &out->v[out->n++]))
			return -1;
		jws(j);
		if (*j->p == ',') {
			j->p++;
			continue;
		}
		if (*j->p++ != close_ch)
			return -1;
		return 0;
	}
}

static int jparse(struct jp *j, struct jv *out)
{
	memset(out, 0, sizeof(*out));
	jws(j);
	if (++j->depth > 32)
		return -1;
	switch (*j->p) {
	case '{': if (jlist(j, out, true)) return -1; break;
	case '[': if (jlist(j, out, false)) return -1; break;
	case '"': out->t = J_STR; if (jstring(j, &out->s)) return -1; break;
	case 't':
	case 'f':
	case 'n': {
		static const char *const words[] = { "true", "false", "null" };
		int w = *j->p == 't' ? 0 : *j->p == 'f' ? 1 : 2;

		if (strncmp(j->p, words[w], strlen(words[w])))
			return -1;
		j->p += strlen(words[w]);
		out->t = w == 2 ? J_NULL : J_BOOL;
		out->b = w == 0;
		break;
	}
	default: {
		char *end;

		out->t = J_NUM;
		out->neg = *j->p == '-';
		if (out->neg)
			j->p++;
		if (*j->p < '0' || *j->p > '9' ||
		    (*j->p == '0' && j->p[1] >= '0' && j->p[1] <= '9'))
			return -1;
		errno = 0;
		out->u = strtoull(j->p, &end, 10);
		if (errno || *end == '.' || *end == 'e' || *end == 'E')
			return -1;	/* hpmemctl prints integers only */
		j->p = end;
	}
	}
	j->depth--;
	return 0;
}

/* The whole document, or NULL when it is not exactly one JSON value. */
static struct jv *jdoc(const char *text)
{
	struct jp j = { text, 0 };
	struct jv *v = calloc(1, sizeof(*v));

	if (!v || jparse(&j, v))
		return NULL;	/* leaked: the test fails anyway */
	jws(&j);
	return *j.p ? NULL : v;
}

static const struct jv *jget(const struct jv *o, const char *key)
{
	if (!o || o->t != J_OBJ)
		return NULL;
	for (int i = 0; i < o->n; i++)
		if (!strcmp(o->k[i], key))
			return &o->v[i];
	return NULL;
}

/* A non-negative integer member, or UINT64_MAX (never a plausible value). */
static uint64_t jnum(const struct jv *o, const char *key)
{
	const struct jv *v = jget(o, key);

	return v && v->t == J_NUM && !v->neg ? v->u : UINT64_MAX;
}

static const char *jstr(const struct jv *o, const char *key)
{
	const struct jv *v = jget(o, key);

	return v && v->t == J_STR ? v->s : NULL;
}

/* The element of array @a whose "name" is @name. */
static const struct jv *jnamed(const struct jv *a, const char *name)
{
	for (int i = 0; a && a->t == J_ARR && i < a->n; i++)
		if (jstr(&a->v[i], "name") && !strcmp(jstr(&a->v[i], "name"), name))
			return &a->v[i];
	return NULL;
}

static void jfree(struct jv *v)
{
	if (!v)
		return;
	for (int i = 0; i < v->n; i++) {
		jfree(&v->v[i]);
		if (v->k)
			free(v->k[i]);
	}
	free(v->v);
	free(v->k);
	free(v->s);
}

/* ---- the application ---- */

static const char *const views[] = {
	"heaps", "memzones", "mempools", "rings", "memsegs", "threads",
};
#define NR_VIEWS	(sizeof(views) / sizeof(views[0]))

#define POOL_N		4095
#define POOL_ELT	64
#define POOL_CACHE	32
#define RING_SLOTS	1024
#define ZONE_LEN	12345
#define NR_WORKERS	2

struct app {
	char name[HPM_NAME_SIZE];
	struct hpm_mempool *mp;
	struct hpm_ring *ring;
	const struct hpm_memzone *mz;
	pthread_t workers[NR_WORKERS];
	pthread_t churn;
	atomic_bool stop;
	atomic_ulong ops;	/* operations done by all workers */
	atomic_ulong zone_ops;	/* zones reserved and freed by the churner */
	atomic_int failures;	/* what a worker found wrong */
	atomic_int ready;
};

static int app_init(struct app *a, const char *tag)
{
	struct hpm_init_opts o;

	hpm_init_opts_default(&o);
	snprintf(a->name, sizeof(a->name), "insp-%s-%d", tag, (int)getpid());
	o.region = a->name;
	o.socket_mem[0] = 32;
	if (hpm_init(&o))
		return -1;
	a->mp = hpm_mempool_create("insp-pool", POOL_N, POOL_ELT, POOL_CACHE, 0, NULL, NULL,
				   HPM_SOCKET_ANY, 0);
	a->ring = hpm_ring_create("insp-ring", RING_SLOTS, HPM_SOCKET_ANY, 0);
	a->mz = hpm_memzone_reserve("insp-zone", ZONE_LEN, HPM_SOCKET_ANY, 0);
	return a->mp && a->ring && a->mz ? 0 : -1;
}

/*
 * A worker: heap alloc/free of varied sizes, mempool get/put through its
 * cache, ring enqueue/dequeue of its own tokens. Every object it puts back
 * is the one it took, so integrity holds whatever the interleaving.
 */
static void *worker(void *arg)
{
	struct app *a = arg;
	unsigned int seed = (unsigned int)(uintptr_t)&seed;
	void *held[8] = { 0 };

	if (hpm_thread_register() < 0) {
		atomic_fetch_add(&a->failures, 1);
		return NULL;
	}
	atomic_fetch_add(&a->ready, 1);
	while (!atomic_load(&a->stop)) {
		void *objs[16], *tok[4], *got[4];
		unsigned int k = rand_r(&seed) % 8, n = 1 + rand_r(&seed) % 16;

		hpm_free(held[k]);
		held[k] = hpm_malloc(NULL, 16 + rand_r(&seed) % 8192, 0);
		if (hpm_mempool_get_bulk(a->mp, objs, n) == 0) {
			memset(objs[0], 0x5a, POOL_ELT);
			hpm_mempool_put_bulk(a->mp, objs, n);
		}
		for (int i = 0; i < 4; i++)
			tok[i] = (void *)(uintptr_t)(0x1000 + i);
		if (hpm_ring_enqueue_bulk(a->ring, tok, 4, NULL) == 4 &&
		    hpm_ring_dequeue_bulk(a->ring, got, 4, NULL) != 4)
			atomic_fetch_add(&a->failures, 1);
		atomic_fetch_add_explicit(&a->ops, 1, memory_order_relaxed);
	}
	for (int k = 0; k < 8; k++)
		hpm_free(held[k]);
	hpm_mempool_cache_flush(a->mp);
	return NULL;
}

/*
 * Zones come and go under the tool's lock-free walk of the zone table
 * (names rewritten, entries reused): the walk retries, never hangs.
 */
static void *churner(void *arg)
{
	struct app *a = arg;

	while (!atomic_load(&a->stop)) {
		const struct hpm_memzone *mz = hpm_memzone_reserve("insp-churn", 4096,
								   HPM_SOCKET_ANY, 0);

		if (!mz || hpm_memzone_free(mz))
			atomic_fetch_add(&a->failures, 1);
		atomic_fetch_add_explicit(&a->zone_ops, 1, memory_order_relaxed);
	}
	return NULL;
}

static unsigned int slots_taken(void)
{
	unsigned int n = 0;

	for (unsigned int i = 0; i < HPM_MAX_THREADS; i++)
		n += !!atomic_load(&hpm_config()->threads[i].owner);
	return n;
}

/* ---- checks of each view's JSON ---- */

struct expect {
	const struct app *a;
	unsigned int slots;	/* thread slots the application holds */
	uint64_t region_size;
	bool loaded;		/* workers may be anywhere in their loop */
};

/* Returns NULL when @doc is a plausible @view of the application, else why not. */
static const char *check_view(const char *view, const struct jv *doc, const struct expect *x)
{
	const struct jv *reg = jget(doc, "region"), *arr = jget(doc, view), *e;
	uint64_t sum = 0;

	if (!reg || !arr || arr->t != J_ARR)
		return "no region object or no array named after the view";
	if (!jstr(reg, "name") || strcmp(jstr(reg, "name"), x->a->name) ||
	    jnum(reg, "size") != x->region_size || jnum(reg, "primary_pid") != (uint64_t)getpid())
		return "region object: wrong name, size or primary";
	if (!strcmp(view, "heaps")) {
		if (arr->n < 1)
			return "no heap";
		for (int i = 0; i < arr->n; i++) {
			e = &arr->v[i];
			/* A dynamic region's heap may be empty yet able to grow. */
			if ((jnum(e, "total") == 0 && jnum(e, "limit") == 0) ||
			    jnum(e, "free") > jnum(e, "total") ||
			    jnum(e, "largest_free") > jnum(e, "free") ||
			    jnum(e, "alloc_count") == UINT64_MAX ||
			    jnum(e, "socket") >= HPM_MAX_NODES)
				return "heap figures out of bounds";
			sum += jnum(e, "total");
		}
		if (sum > x->region_size)
			return "heaps hold more than the region";
	} else if (!strcmp(view, "memzones")) {
		e = jnamed(arr, "insp-zone");
		if (!e || jnum(e, "len") != ((ZONE_LEN + 63) & ~63) || !jnamed(arr, "MP_insp-pool") ||
		    !jnamed(arr, "RG_insp-ring"))
			return "the application's zones are not all listed";
	} else if (!strcmp(view, "mempools")) {
		const struct jv *caches;

		e = jnamed(arr, "insp-pool");
		if (!e || jnum(e, "size") != POOL_N || jnum(e, "elt_size") != POOL_ELT ||
		    jnum(e, "cache_size") != POOL_CACHE || !jstr(e, "ops") ||
		    strcmp(jstr(e, "ops"), "ring_mp_mc"))
			return "pool insp-pool missing or its fixed figures wrong";
		if (jnum(e, "avail") > POOL_N || jnum(e, "in_driver") > POOL_N ||
		    jnum(e, "cached") > (uint64_t)POOL_CACHE * HPM_MAX_THREADS)
			return "pool counts out of bounds";
		if (!x->loaded && jnum(e, "avail") != POOL_N)
			return "idle pool: not every object available";
		caches = jget(e, "caches");
		if (!caches || caches->t != J_ARR)
			return "no caches array";
		for (int i = 0; i < caches->n; i++) {
			if (jnum(&caches->v[i], "count") > POOL_CACHE ||
			    jnum(&caches->v[i], "slot") >= HPM_MAX_THREADS)
				return "a thread's cache count out of bounds";
			sum += jnum(&caches->v[i], "count");
		}
		if (sum != jnum(e, "cached"))
			return "per-thread caches do not add up to cached";
	} else if (!strcmp(view, "rings")) {
		bool pool_ring = false;

		e = jnamed(arr, "insp-ring");
		if (!e || jnum(e, "size") != RING_SLOTS || jnum(e, "capacity") != RING_SLOTS - 1 ||
		    jnum(e, "count") > RING_SLOTS - 1 ||
		    jnum(e, "count") + jnum(e, "free") != RING_SLOTS - 1)
			return "ring insp-ring missing or its counts out of bounds";
		if (!x->loaded && jnum(e, "count") != 0)
			return "idle ring not empty";
		for (int i = 0; i < arr->n; i++)
			pool_ring |= jstr(&arr->v[i], "pool") &&
				     !strcmp(jstr(&arr->v[i], "pool"), "insp-pool");
		if (!pool_ring)
			return "the pool's driver ring is not listed";
	} else if (!strcmp(view, "memsegs")) {
		for (int i = 0; i < arr->n; i++)
			sum += jnum(&arr->v[i], "len");
		/* A dynamic region's holes are in no run. */
		if (arr->n < 1 || sum > x->region_size ||
		    (sum != x->region_size && !(hpm_cfg->flags & HPM_CFG_F_DYNAMIC)))
			return "memseg runs do not cover the region";
	} else if (!strcmp(view, "threads")) {
		if ((unsigned int)arr->n != x->slots)
			return "thread count differs from the application's slots";
		for (int i = 0; i < arr->n; i++) {
			const struct jv *alive = jget(&arr->v[i], "alive");

			if (jnum(&arr->v[i], "pid") != (uint64_t)getpid() || !alive || !alive->b)
				return "a slot not held by a live thread of the application";
		}
	}
	return NULL;
}

/*
 * Every view, plain then --json; returns how many runs went wrong and says
 * why for each. @ops: the application's op counter, to prove it advanced
 * while the tool ran (NULL when idle).
 */
static int look(struct __test_metadata *_metadata, const char *ctl, const struct expect *x,
		atomic_ulong *ops, int *stalls)
{
	static struct run r;
	int bad = 0;

	for (unsigned int v = 0; v < NR_VIEWS; v++) {
		for (int json = 0; json < 2; json++) {
			const char *args[] = { "app", x->a->name, views[v], json ? "--json" : NULL,
					       NULL };
			unsigned long before = ops ? atomic_load(ops) : 0;
			const char *why = NULL;
			struct jv *doc = NULL;

			if (run_ctl(&r, ctl, args)) {
				why = "cannot run hpmemctl";
			} else if (r.hung) {
				why = "hung";
			} else if (!WIFEXITED(r.status) || WEXITSTATUS(r.status)) {
				why = "did not exit 0";
			} else if (!r.nout || r.nerr) {
				why = "no output, or something on stderr";
			} else if (json && !(doc = jdoc(r.out))) {
				why = "output is not one JSON document";
			} else if (json) {
				why = check_view(views[v], doc, x);
			}
			/* The tool is gone: had the workers waited for it, no ops. */
			if (ops && atomic_load(ops) == before)
				(*stalls)++;
			if (why) {
				TH_LOG("app %s %s%s: %s (status %#x)\nstdout: %.400s\nstderr: %s",
				       x->a->name, views[v], json ? " --json" : "", why, r.status,
				       r.out, r.err);
				bad++;
			}
			jfree(doc);
			free(doc);
		}
	}
	return bad;
}

/*
 * Each run of the tool is a process start and a mapping of the region: in
 * a TCG guest, or with a sanitized tool, a few hundred milliseconds each.
 */
FIXTURE(inspect) {
};

FIXTURE_SETUP(inspect)
{
}

FIXTURE_TEARDOWN(inspect)
{
}

#define TOOL_TEST(name)	TEST_F_TIMEOUT(inspect, name, 600)

TOOL_TEST(views_under_load)
{
	const char *ctl = find_ctl();
	static struct app a;
	struct expect x = { .a = &a, .loaded = true };
	int bad = 0, stalls = 0, runs = 0;

	if (!ctl)
		SKIP(return, "hpmemctl not built (make tools, or set HPMEMCTL)");
	ASSERT_EQ(0, app_init(&a, "load"));
	x.region_size = hpm_config()->size;
	TH_LOG("backend %s, iova %d, pages %s", hpm_backend_name(hpm_backend()), hpm_iova_mode(),
	       hpm_config()->flags & HPM_CFG_F_REMAPPED ? "remapped into physical order" :
	       "in region order");
	for (int i = 0; i < NR_WORKERS; i++)
		ASSERT_EQ(0, pthread_create(&a.workers[i], NULL, worker, &a));
	ASSERT_EQ(0, pthread_create(&a.churn, NULL, churner, &a));
	while (atomic_load(&a.ready) + atomic_load(&a.failures) < NR_WORKERS)
		usleep(1000);
	x.slots = slots_taken();
	EXPECT_EQ(NR_WORKERS, x.slots);
	for (int round = 0; round < 2; round++) {
		bad += look(_metadata, ctl, &x, &a.ops, &stalls);
		runs += 2 * NR_VIEWS;
	}
	EXPECT_EQ(0, bad);
	/*
	 * The workers never wait for the tool; on a busy machine the
	 * scheduler alone may leave them unscheduled for one short run.
	 */
	EXPECT_LE(stalls, runs / 4);
	TH_LOG("%d runs, the workers' op counter stood still during %d; %lu ops, %lu zones",
	       runs, stalls, atomic_load(&a.ops), atomic_load(&a.zone_ops));
	/* Nobody took a slot meanwhile (the tool would have shown up). */
	EXPECT_EQ(x.slots, slots_taken());

	atomic_store(&a.stop, true);
	for (int i = 0; i < NR_WORKERS; i++)
		pthread_join(a.workers[i], NULL);
	pthread_join(a.churn, NULL);
	EXPECT_EQ(0, atomic_load(&a.failures));
	/* The application's own integrity checks. */
	EXPECT_EQ(0, hpm_malloc_validate());
	EXPECT_EQ(0, hpm_mempool_audit(a.mp));
	EXPECT_EQ(POOL_N, hpm_mempool_avail_count(a.mp));
	EXPECT_EQ(0, hpm_ring_count(a.ring));
	hpm_mempool_free(a.mp);
	hpm_ring_free(a.ring);
	hpm_memzone_free(a.mz);
	EXPECT_EQ(0, hpm_cleanup());
}

/* Idle application: every figure exact, and nothing of it changed by looking. */
TOOL_TEST(leaves_no_trace)
{
	const char *ctl = find_ctl();
	struct hpm_malloc_socket_stats before, after;
	static struct app a;
	struct expect x = { .a = &a };
	unsigned int zones;

	if (!ctl)
		SKIP(return, "hpmemctl not built (make tools, or set HPMEMCTL)");
	ASSERT_EQ(0, app_init(&a, "idle"));
	ASSERT_LE(0, hpm_thread_register());
	x.region_size = hpm_config()->size;
	x.slots = slots_taken();
	ASSERT_EQ(1, x.slots);
	zones = hpm_memzone_count();
	ASSERT_EQ(0, hpm_malloc_get_socket_stats(0, &before));
	EXPECT_EQ(0, look(_metadata, ctl, &x, NULL, NULL));
	ASSERT_EQ(0, hpm_malloc_get_socket_stats(0, &after));
	/* No allocation, no zone, no slot: the tool wrote nothing. */
	EXPECT_EQ(before.alloc_count, after.alloc_count);
	EXPECT_EQ(before.heap_freesz_bytes, after.heap_freesz_bytes);
	EXPECT_EQ(zones, hpm_memzone_count());
	EXPECT_EQ(x.slots, slots_taken());
	hpm_mempool_free(a.mp);
	hpm_ring_free(a.ring);
	hpm_memzone_free(a.mz);
	EXPECT_EQ(0, hpm_cleanup());
}

/* One readable line on stderr, nothing on stdout, exit 1. */
static void expect_refusal(struct __test_metadata *_metadata, const char *ctl,
			   const char *name, const char *word)
{
	static struct run r;

	for (int json = 0; json < 2; json++) {
		const char *args[] = { "app", name, "heaps", json ? "--json" : NULL, NULL };

		ASSERT_EQ(0, run_ctl(&r, ctl, args));
		EXPECT_FALSE(r.hung);
		EXPECT_TRUE(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 1);
		EXPECT_EQ(0, r.nout);
		EXPECT_EQ(1, lines(r.err));
		EXPECT_NE(NULL, strstr(r.err, word));
		r.err[strcspn(r.err, "\n")] = '\0';
		TH_LOG("refused: %s", r.err);
	}
}

TOOL_TEST(refusals)
{
	const char *ctl = find_ctl();
	static struct app a;

	if (!ctl)
		SKIP(return, "hpmemctl not built (make tools, or set HPMEMCTL)");
	ASSERT_EQ(0, app_init(&a, "layout"));
	/* Pretend a library with another layout created the region. */
	hpm_config()->layout_version++;
	expect_refusal(_metadata, ctl, a.name, "layout");
	hpm_config()->layout_version--;
	/* A primary still in hpm_init(). */
	atomic_store(&hpm_config()->ready, 0);
	expect_refusal(_metadata, ctl, a.name, "hpm_init()");
	atomic_store(&hpm_config()->ready, 1);
	/* And a region that is not there at all. */
	expect_refusal(_metadata, ctl, "insp-none", "insp-none");
	EXPECT_EQ(0, hpm_cleanup());
}

/*
 * What a crashed or hostile primary may leave: zones whose pool and ring
 * headers point anywhere, unterminated names, a free list that cycles with
 * valid-looking headers, garbage thread slots, an inconsistent config. The
 * tool must end (exit 0 or 1, no signal, no hang) whatever it reads.
 */
TOOL_TEST(hostile_content)
{
	const char *ctl = find_ctl();
	static struct app a;
	static struct run r;
	const struct hpm_memzone *pz, *rz, *ez;
	struct hpm_mempool *mp;
	struct hpm_ring *ring;
	struct hpm_heap *h, saved;
	struct hpm_elem *e1, *e2;
	uint64_t owner, magic;
	unsigned int fl = HPM_HEAP_FL_COUNT - 1, sl = HPM_HEAP_SL_COUNT - 1;

	if (!ctl)
		SKIP(return, "hpmemctl not built (make tools, or set HPMEMCTL)");
	ASSERT_EQ(0, app_init(&a, "hostile"));
	/* A "pool" whose every pointer is wild and whose names never end. */
	pz = hpm_memzone_reserve("MP_evil", sizeof(*mp) + 4096, HPM_SOCKET_ANY, 0);
	ASSERT_NE(NULL, pz);
	mp = pz->addr;
	memset(mp, 0xff, sizeof(*mp));
	mp->magic = HPM_MEMPOOL_MAGIC;
	mp->mz = pz;
	mp->ops_id = 99;
	mp->cache_size = 7;
	mp->cache_stride = UINT32_MAX;
	mp->caches = (void *)(uintptr_t)0xdeadbeef000ULL;
	mp->pool_data = (void *)((uintptr_t)hpm_config()->base + hpm_config()->size - 8);
	/* A "ring" of a bad size, and one whose counters are garbage. */
	rz = hpm_memzone_reserve("RG_evil", sizeof(*ring) + 64, HPM_SOCKET_ANY, 0);
	ASSERT_NE(NULL, rz);
	ring = rz->addr;
	memset(ring, 0xee, sizeof(*ring));
	ring->magic = HPM_RING_MAGIC;
	ring->size = 1u << 20;
	ring->capacity = 5;
	ez = hpm_memzone_reserve("RG_evil2", sizeof(*ring) + 64, HPM_SOCKET_ANY, 0);
	ASSERT_NE(NULL, ez);
	memset(ez->addr, 0xee, sizeof(*ring));
	((struct hpm_ring *)ez->addr)->magic = HPM_RING_MAGIC;
	/* Two free-looking elements linked into a cycle, as the top bin. */
	h = &hpm_config()->heaps[0];
	saved = *h;
	e1 = (struct hpm_elem *)((uintptr_t)(mp + 1) + 64);
	e2 = e1 + 64;
	e1->info = elem_tag(h, e1) | 1024 | ELEM_F_FREE;
	e2->info = elem_tag(h, e2) | 1024 | ELEM_F_FREE;
	elem_links(e1)->next = e2;
	elem_links(e2)->next = e1;
	h->fl_bitmap = 1u << fl;
	h->sl_bitmap[fl] = 1u << sl;
	h->free_list[fl][sl] = e1;
	/* A slot owned by nobody that exists. */
	owner = hpm_config()->threads[HPM_MAX_THREADS - 1].owner;
	hpm_config()->threads[HPM_MAX_THREADS - 1].owner = ~0ULL;

	for (unsigned int v = 0; v < NR_VIEWS; v++) {
		for (int json = 0; json < 2; json++) {
			const char *args[] = { "app", a.name, views[v], json ? "--json" : NULL,
					       NULL };

			ASSERT_EQ(0, run_ctl(&r, ctl, args));
			EXPECT_FALSE(r.hung);
			if (!WIFEXITED(r.status) || WEXITSTATUS(r.status) > 1)
				TH_LOG("%s%s: status %#x, stderr: %s", views[v],
				       json ? " --json" : "", r.status, r.err);
			EXPECT_TRUE(WIFEXITED(r.status) && WEXITSTATUS(r.status) <= 1);
			if (json && WIFEXITED(r.status) && !WEXITSTATUS(r.status)) {
				struct jv *doc = jdoc(r.out);

				EXPECT_NE(NULL, doc);
				jfree(doc);
				free(doc);
			}
		}
	}
	/* The config itself inconsistent: refused at open, in one line. */
	magic = h->magic;
	h->magic = 0;
	expect_refusal(_metadata, ctl, a.name, "heaps");
	h->magic = magic;

	hpm_config()->threads[HPM_MAX_THREADS - 1].owner = owner;
	h->fl_bitmap = saved.fl_bitmap;
	h->sl_bitmap[fl] = saved.sl_bitmap[fl];
	h->free_list[fl][sl] = saved.free_list[fl][sl];
	mp->magic = 0;
	ring->magic = 0;
	EXPECT_EQ(0, hpm_malloc_validate());
	EXPECT_EQ(0, hpm_cleanup());
}

/*
 * Random garbage where the tool looks: bytes of the zone table, the pool
 * and its caches, the ring, a heap, the thread slots are overwritten with
 * random words, addresses inside the region (so walks go somewhere) and
 * small numbers, one spot at a time; the tool runs a random view over it,
 * then the bytes are put back. Whatever it reads, it must end by itself
 * with status 0 or 1 (1: a refusal, in one line).
 */
#define GARBAGE_ROUNDS	48

TOOL_TEST(random_garbage)
{
	const char *ctl = find_ctl();
	static struct app a;
	static struct run r;
	static unsigned char saved[512];
	struct {
		char *at;
		size_t len;
	} spots[6];
	unsigned int seed = (unsigned int)getpid(), refused = 0;
	uintptr_t base;
	uint64_t size;

	if (!ctl)
		SKIP(return, "hpmemctl not built (make tools, or set HPMEMCTL)");
	ASSERT_EQ(0, app_init(&a, "garbage"));
	ASSERT_LE(0, hpm_thread_register());
	base = hpm_config()->base;
	size = hpm_config()->size;
	spots[0].at = hpm_config()->memzone_tbl;
	spots[0].len = hpm_malloc_usable_size(spots[0].at);
	spots[1].at = (char *)a.mp;
	spots[1].len = a.mp->mz ? ((const struct hpm_memzone *)a.mp->mz)->len : sizeof(*a.mp);
	spots[2].at = (char *)a.ring;
	spots[2].len = sizeof(*a.ring) + RING_SLOTS * sizeof(void *);
	spots[3].at = (char *)&hpm_config()->heaps[0];
	spots[3].len = sizeof(hpm_config()->heaps[0]);
	spots[4].at = (char *)hpm_config()->threads;
	spots[4].len = sizeof(hpm_config()->threads);
	spots[5].at = (char *)a.mp->pool_data;
	spots[5].len = sizeof(struct hpm_ring);
	for (int round = 0; round < GARBAGE_ROUNDS; round++) {
		unsigned int s = rand_r(&seed) % 6, v = rand_r(&seed) % NR_VIEWS;
		size_t len = 8 * (1 + rand_r(&seed) % (sizeof(saved) / 8));
		size_t off = 8 * (rand_r(&seed) % (spots[s].len / 8));
		const char *args[] = { "app", a.name, views[v], rand_r(&seed) % 2 ? "--json" : NULL,
				       NULL };
		uint64_t *w;

		if (len > spots[s].len - off)
			len = (spots[s].len - off) & ~(size_t)7;
		w = (uint64_t *)(spots[s].at + off);
		memcpy(saved, w, len);
		for (size_t i = 0; i < len / 8; i++) {
			switch (rand_r(&seed) % 3) {
			case 0:
				w[i] = (uint64_t)rand_r(&seed) << 33 ^
				       (uint64_t)rand_r(&seed) << 2 ^ (uint64_t)rand_r(&seed);
				break;
			case 1:
				w[i] = base + ((uint64_t)rand_r(&seed) * 16) % size;
				break;
			default:
				w[i] = rand_r(&seed) % 4096;
				break;
			}
		}
		ASSERT_EQ(0, run_ctl(&r, ctl, args));
		memcpy(w, saved, len);
		if (r.hung || !WIFEXITED(r.status) || WEXITSTATUS(r.status) > 1 ||
		    (WEXITSTATUS(r.status) == 1 && lines(r.err) != 1))
			TH_LOG("round %d: spot %u +%zu, %zu bytes, view %s: %s, status %#x, "
			       "stderr: %s", round, s, off, len, views[v],
			       r.hung ? "hung" : "ended", r.status, r.err);
		ASSERT_FALSE(r.hung);
		ASSERT_TRUE(WIFEXITED(r.status) && WEXITSTATUS(r.status) <= 1);
		if (WEXITSTATUS(r.status) == 1) {
			EXPECT_EQ(1, lines(r.err));
			refused++;
		}
	}
	TH_LOG("%d rounds, %u refused at open, the others read through", GARBAGE_ROUNDS, refused);
	/* Everything was put back: the application is whole. */
	EXPECT_EQ(0, hpm_malloc_validate());
	EXPECT_EQ(0, hpm_mempool_audit(a.mp));
	hpm_mempool_free(a.mp);
	hpm_ring_free(a.ring);
	hpm_memzone_free(a.mz);
	EXPECT_EQ(0, hpm_cleanup());
}

TEST_HARNESS_MAIN
