// SPDX-License-Identifier: MIT
/* Kill storm: 100 processes SIGKILLed at random points in kmod ioctls,
 * libhpmem initialisation and shared heap/mempool/ring use; afterwards no
 * page leaks, dead regions are gone and the primary's objects still work. */
#include <pthread.h>
#include <time.h>

#include <hpmem/hpmem.h>

#include "config.h"
#include "internal.h"
#include "robust_lock.h"
/* hp_create()/hp_attach() fill a name field with strncpy() on purpose
 * (the field need not end in NUL); GCC warns when it sees the array size. */
#pragma GCC diagnostic ignored "-Wstringop-truncation"
#include "../kmod/hpmem_test.h"
#include "kill.h"

#define NPROCS		100
#define WAVE		10	/* alive at once */
#define KILL_MAX_MS	300	/* a child dies 0..KILL_MAX_MS after its fork */
#define MP_N		1023
#define RING_N		1024
#define TOKENS		512	/* unique, in the ring or in a child's hands */
#define TOKEN(i)	((void *)(uintptr_t)(0x1000 + (i)))
#define BULK_MAX	8	/* most objects or tokens a child holds */

enum act {
	A_CREATE,	/* kmod: create, grow, mmap, touch, several files */
	A_ATTACH,	/* kmod: attach the primary's region, map, read */
	A_GROW,		/* kmod: one region grown a page at a time, faulted */
	A_PRIMARY,	/* libhpmem: init and clean up its own region */
	A_SECONDARY,	/* libhpmem: init and clean up as a secondary */
	A_HEAP,		/* secondary: malloc/free */
	A_MEMPOOL,	/* secondary: mempool get/put */
	A_RING,		/* secondary: ring enqueue/dequeue */
	A_COUNT
};

static const char *const act_name[A_COUNT] = {
	"create", "attach", "grow", "lib-primary", "lib-secondary",
	"heap", "mempool", "ring",
};

/* Shared with the children: how far each kind got. */
struct tally {
	long started[A_COUNT], looping[A_COUNT], iters[A_COUNT];
};

static struct tally *tally;
static char region[HPM_NAME_SIZE];
static struct hpm_mempool *mp;
static struct hpm_ring *ring;

static void bump(long *c)
{
	__atomic_fetch_add(c, 1, __ATOMIC_RELAXED);
}

static int lib_opts(struct hpm_init_opts *o, const char *name, enum hpm_proc_type t,
		    unsigned int mib)
{
	hpm_init_opts_default(o);
	o->region = name;
	o->proc_type = t;
	o->backend = HPM_BACKEND_KMOD;
	o->socket_mem[0] = mib;
	return 0;
}

/* A forked child of the primary drops the inherited mapping, attaches. */
static void become_secondary(enum act a)
{
	struct hpm_init_opts o;
	int rc;

	CHILD_CHECK(hpm_cleanup() == 0);
	lib_opts(&o, region, HPM_PROC_SECONDARY, 0);
	rc = hpm_init(&o);
	if (rc) {
		fprintf(stderr, "# %s child: hpm_init secondary %d\n", act_name[a], rc);
		_exit(2);
	}
	CHILD_CHECK(hpm_thread_register() >= 0);
}

static void kmod_loop(enum act a, unsigned int seed)
{
	int fds[4] = { -1, -1, -1, -1 }, k = 0, fd = -1, seq = 0;
	char *maps[4] = { NULL }, name[HPMEM_NAME_MAX];
	struct hpmem_region_attach at;
	uint64_t off;
	char *p;

	CHILD_CHECK(hpm_cleanup() == 0);	/* kmod only from here on */
	bump(&tally->looping[a]);
	for (;;) {
		switch (a) {
		case A_CREATE:
			/* four regions at a time, each open and mapped */
			if (maps[k])
				munmap(maps[k], PG);
			maps[k] = NULL;
			if (fds[k] >= 0)
				close(fds[k]);
			fds[k] = open(HPMEM_DEVICE_PATH, O_RDWR | O_CLOEXEC);
			CHILD_CHECK(fds[k] >= 0);
			snprintf(name, sizeof(name), "t-ks-%d-%d", getpid(), seq++);
			CHILD_CHECK(hp_create(fds[k], name, rand_r(&seed) & 1 ?
					      HPMEM_REGION_PINNABLE : 0) == 0);
			if (hp_grow(fds[k], rand_r(&seed) & 1, 1 + rand_r(&seed) % 2, &off) == 0) {
				p = map_region(fds[k], PG, off);
				CHILD_CHECK(p != MAP_FAILED);
				p[rand_r(&seed) % PG] = 1;
				maps[k] = p;
			}
			k = (k + 1) % 4;
			break;
		case A_ATTACH:
			fd = open(HPMEM_DEVICE_PATH, O_RDWR | O_CLOEXEC);
			CHILD_CHECK(fd >= 0);
			CHILD_CHECK(hp_attach(fd, region, &at) == 0);
			p = map_region(fd, PG, 0);
			CHILD_CHECK(p != MAP_FAILED);
			(void)*(volatile char *)p;
			/* keep at most one mapping besides the newest */
			if (maps[0])
				munmap(maps[0], PG);
			maps[0] = rand_r(&seed) & 1 ? p : NULL;
			if (!maps[0])
				munmap(p, PG);
			close(fd);
			break;
		case A_GROW:
			if (fd < 0) {
				fd = open(HPMEM_DEVICE_PATH, O_RDWR | O_CLOEXEC);
				CHILD_CHECK(fd >= 0);
				snprintf(name, sizeof(name), "t-ks-%d-g%d", getpid(), seq++);
				CHILD_CHECK(hp_create(fd, name, 0) == 0);
			}
			if (hp_grow(fd, rand_r(&seed) & 1, 1, &off)) {
				close(fd);	/* pool dry or memlock: start over */
				fd = -1;
				break;
			}
			p = map_region(fd, PG, off);
			CHILD_CHECK(p != MAP_FAILED);
			memset(p, 0x5a, 4096);
			munmap(p, PG);	/* a mapping would keep the pages past close */
			if (off >= 8 * PG) {
				close(fd);
				fd = -1;
			}
			break;
		default:
			_exit(3);
		}
		bump(&tally->iters[a]);
	}
}

static void lib_loop(enum act a, unsigned int seed)
{
	void *blocks[8] = { 0 }, *objs[BULK_MAX], *toks[BULK_MAX];
	struct hpm_init_opts o;
	char name[HPM_NAME_SIZE];
	unsigned int n, i;
	int rc, iter = 0;

	if (a == A_PRIMARY || a == A_SECONDARY) {
		CHILD_CHECK(hpm_cleanup() == 0);
		bump(&tally->looping[a]);
		for (;;) {
			snprintf(name, sizeof(name), "t-ksp-%d-%d", getpid(), iter++);
			lib_opts(&o, a == A_PRIMARY ? name : region,
				 a == A_PRIMARY ? HPM_PROC_PRIMARY : HPM_PROC_SECONDARY, 4);
			rc = hpm_init(&o);
			if (rc == -ENOMEM) {	/* the storm drained the pool: later */
				usleep(1000);
				continue;
			}
			if (rc) {
				fprintf(stderr, "# %s child: hpm_init %d\n", act_name[a], rc);
				_exit(2);
			}
			if (hpm_thread_register() < 0)
				_exit(4);
			if (a == A_PRIMARY) {
				void *b = hpm_malloc("ks", 1 + rand_r(&seed) % 4096, 0);

				CHILD_CHECK(b != NULL);
				hpm_free(b);
			}
			CHILD_CHECK(hpm_cleanup() == 0);
			bump(&tally->iters[a]);
		}
	}

	become_secondary(a);
	bump(&tally->looping[a]);
	for (;;) {
		switch (a) {
		case A_HEAP:
			i = rand_r(&seed) % 8;
			if (blocks[i]) {
				hpm_free(blocks[i]);
				blocks[i] = NULL;
			} else {
				/* NULL when the others filled the heap */
				blocks[i] = hpm_malloc("ks", 1 + rand_r(&seed) % (rand_r(&seed) & 1 ?
								256 : 65536), 0);
				if (blocks[i])
					memset(blocks[i], 0x77, 8);
			}
			break;
		case A_MEMPOOL:
			n = 1 + rand_r(&seed) % BULK_MAX;
			if (hpm_mempool_get_bulk(mp, objs, n) == 0) {
				memset(objs[0], 0x11, 8);
				hpm_mempool_put_bulk(mp, objs, n);
			}
			break;
		case A_RING:
			/* out and back: a token is in the ring or in our hands */
			n = hpm_ring_dequeue_burst(ring, toks, 1 + rand_r(&seed) % BULK_MAX,
						   NULL);
			CHILD_CHECK(hpm_ring_enqueue_bulk(ring, toks, n, NULL) == n);
			break;
		default:
			_exit(3);
		}
		bump(&tally->iters[a]);
	}
}

static void child(enum act a, unsigned int seed)
{
	alarm(30);	/* never outlive a stuck parent */
	bump(&tally->started[a]);
	if (a <= A_GROW)
		kmod_loop(a, seed);
	lib_loop(a, seed);
}

/* Registers a thread and holds the slot until everyone has tried. */
struct reg {
	pthread_barrier_t *bar;
	int idx;
};

static void *reg_thread(void *arg)
{
	struct reg *r = arg;

	r->idx = hpm_thread_register();
	pthread_barrier_wait(r->bar);
	return NULL;
}

/* Child: every slot but the parent's can be had again. */
static int slots_reclaimed(void)
{
	static struct reg regs[HPM_MAX_THREADS - 1];
	pthread_t th[HPM_MAX_THREADS - 1];
	pthread_barrier_t bar;
	int ok = 0;

	become_secondary(A_SECONDARY);
	hpm_thread_unregister();	/* that one was for become_secondary() */
	pthread_barrier_init(&bar, NULL, HPM_MAX_THREADS);
	for (int i = 0; i < HPM_MAX_THREADS - 1; i++) {
		regs[i].bar = &bar;
		CHILD_CHECK(pthread_create(&th[i], NULL, reg_thread, &regs[i]) == 0);
	}
	pthread_barrier_wait(&bar);
	for (int i = 0; i < HPM_MAX_THREADS - 1; i++) {
		pthread_join(th[i], NULL);
		ok += regs[i].idx >= 0;
	}
	printf("# %d of %d thread slots registered after the storm\n", ok,
	       HPM_MAX_THREADS - 1);
	return ok == HPM_MAX_THREADS - 1 ? 0 : 1;
}

/* Sides of @r whose lock a dead process held. */
static int ring_locked(const struct hpm_ring *r)
{
	return !!hpm_robust_owner_pid(&r->prod.lock) + !!hpm_robust_owner_pid(&r->cons.lock);
}

/* Both sides unlocked, heads at their tails. */
static bool ring_idle(const struct hpm_ring *r)
{
	return !ring_locked(r) &&
	       atomic_load(&r->prod.head) == atomic_load(&r->prod.tail) &&
	       atomic_load(&r->cons.head) == atomic_load(&r->cons.tail);
}

FIXTURE(storm) {
	int fd;
	bool inited;
	const char *skip;	/* the harness runs the body after a SKIP here */
};

FIXTURE_SETUP(storm)
{
	self->fd = open(HPMEM_DEVICE_PATH, O_RDWR | O_CLOEXEC);
	if (self->fd < 0)
		self->skip = HPMEM_DEVICE_PATH " absent (kmod backend only)";
}

FIXTURE_TEARDOWN(storm)
{
	if (self->inited)
		hpm_cleanup();
	if (self->fd >= 0)
		close(self->fd);
}

TEST_F_TIMEOUT(storm, hundred_kills, 240)
{
	struct hpmem_node_info before[64], ni;
	struct hpm_init_opts o;
	struct hpmem_info info;
	long long t0 = now_ms(), until;
	unsigned int seed;
	int killed = 0, exited = 0, locked = 0, ring_sides = 0, leaked = 0, rc;
	const char *env = getenv("HPMEM_STORM_SEED");
	char *regions, *name;
	static void *toks[TOKENS];
	void *objs[32];
	unsigned int avail, n, got;
	pid_t pid;

	if (self->skip)
		SKIP(return, "%s", self->skip);
	seed = env ? strtoul(env, NULL, 0) : (unsigned int)(time(NULL) ^ getpid());
	printf("# seed %u (HPMEM_STORM_SEED)\n", seed);
	srand(seed);
	tally = mmap(NULL, sizeof(*tally), PROT_READ | PROT_WRITE,
		     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, tally);

	/* The long-lived primary and its shared objects. */
	snprintf(region, sizeof(region), "t-ks-%d", getpid());
	lib_opts(&o, region, HPM_PROC_PRIMARY, 16);
	ASSERT_EQ(0, hpm_init(&o));
	self->inited = true;
	ASSERT_LE(0, hpm_thread_register());
	mp = hpm_mempool_create("ks-mp", MP_N, 64, 32, 0, NULL, NULL, 0, 0);
	ASSERT_NE(NULL, mp);
	ring = hpm_ring_create("ks-ring", RING_N, 0, 0);
	ASSERT_NE(NULL, ring);
	for (n = 0; n < TOKENS; n++)
		toks[n] = TOKEN(n);
	ASSERT_EQ(TOKENS, hpm_ring_enqueue_bulk(ring, toks, TOKENS, NULL));
	ASSERT_EQ(0, hp_info(self->fd, &info));
	/* Pages the primary holds are the baseline: the storm must add none. */
	for (unsigned int n = 0; n < 64; n++)
		if (info.node_mask >> n & 1)
			ASSERT_EQ(0, hp_node_info(self->fd, n, &before[n]));

	for (int base = 0; base < NPROCS; base += WAVE) {
		pid_t pids[WAVE];
		long long die[WAVE];

		fflush(stdout);
		fflush(stderr);
		for (int i = 0; i < WAVE; i++) {
			unsigned int s = rand();

			pids[i] = fork();
			ASSERT_LE(0, pids[i]);
			if (pids[i] == 0)
				child((enum act)((base + i) % A_COUNT), s);
			die[i] = now_ms() + rand() % (KILL_MAX_MS + 1);
		}
		for (int left = WAVE; left; ) {
			left = 0;
			for (int i = 0; i < WAVE; i++) {
				if (!pids[i])
					continue;
				if (now_ms() >= die[i]) {
					kill(pids[i], SIGKILL);
					rc = wait_child(pids[i]);
					if (rc == 128 + SIGKILL)
						killed++;
					else
						exited++;
					EXPECT_EQ(128 + SIGKILL, rc) TH_LOG("child %d (%s)", base + i,
									  act_name[(base + i) % A_COUNT]);
					pids[i] = 0;
				} else {
					left++;
				}
			}
			usleep(1000);
		}
	}

	/* Dead processes' regions are gone, with their names. */
	regions = malloc(1 << 16);
	ASSERT_NE(NULL, regions);
	ASSERT_LE(0, read_file("/sys/class/hpmem/hpmem/regions", regions, 1 << 16));
	for (char *l = regions, *nl; l && *l; l = nl) {
		nl = strchr(l, '\n');
		if (nl)
			*nl++ = 0;
		/* only the primary's own region may remain */
		name = strstr(l, " name=");
		if (name && !strncmp(name + 6, "t-ks", 4) && strcmp(name + 6, region)) {
			leaked++;
			TH_LOG("left behind: %s", l);
		}
	}
	free(regions);
	EXPECT_EQ(0, leaked);

	/* Not one page more in use than the primary had before the storm. */
	for (unsigned int n = 0; n < 64; n++) {
		if (!(info.node_mask >> n & 1))
			continue;
		until = now_ms() + 5000;
		while (!hp_node_info(self->fd, n, &ni) && ni.busy_pages && now_ms() < until)
			usleep(50000);
		ASSERT_EQ(0, hp_node_info(self->fd, n, &ni));
		printf("# node %u: free %llu before, %llu after (busy %llu, total %llu)\n", n,
		       before[n].free_pages, ni.free_pages, ni.busy_pages, ni.total_pages);
		EXPECT_EQ(before[n].free_pages, ni.free_pages) TH_LOG("node %u", n);
		EXPECT_EQ(before[n].inuse_pages, ni.inuse_pages) TH_LOG("node %u", n);
		EXPECT_EQ(before[n].mapped_pages, ni.mapped_pages) TH_LOG("node %u", n);
		EXPECT_EQ(before[n].total_pages, ni.total_pages) TH_LOG("node %u", n);
	}

	/* Thread slots of the dead come back (the one promise about death). */
	fflush(stdout);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0)
		_exit(slots_reclaimed());
	EXPECT_EQ(0, wait_child(pid));

	/*
	 * Promised: a process killed inside a heap's lock leaves the heap
	 * usable; the next locker takes the lock over and rebuilds the heap.
	 * One killed inside an MP/MC ring operation (a ring, or a mempool's
	 * default ring) leaves the ring usable; the next one of that side
	 * takes its lock over. Only what the dead held is lost: objects or
	 * tokens in their hands (those in a dead thread's mempool cache stay
	 * counted), and heap blocks. The alarm turns a stall into a failure.
	 */
	alarm(60);
	for (int n = 0; n < HPM_MAX_NODES; n++)
		locked += hpm_robust_owner_pid(&hpm_config()->heaps[n].lock) != 0;
	ring_sides = ring_locked(ring) + ring_locked(mp->pool_data);
	EXPECT_EQ(0, hpm_malloc_validate());
	for (int i = 0; i < 64; i++) {
		void *b = hpm_malloc("ks", 1 + (i * 7919) % 150000, 0);

		ASSERT_NE(NULL, b);
		memset(b, 0xee, 1);
		hpm_free(b);
	}
	EXPECT_EQ(0, hpm_malloc_validate());
	for (int n = 0; n < HPM_MAX_NODES; n++)
		EXPECT_EQ(0, hpm_robust_owner_pid(&hpm_config()->heaps[n].lock));

	avail = hpm_mempool_avail_count(mp);
	EXPECT_EQ(0, hpm_mempool_audit(mp));
	EXPECT_LE(MP_N - tally->started[A_MEMPOOL] * BULK_MAX, avail);
	printf("# mempool: %u of %u objects available (%u held by the dead)\n", avail,
	       MP_N, MP_N - avail);
	/* Through the driver: this thread's cache may not hold that many. */
	for (int i = 0; i < 4; i++) {
		ASSERT_EQ(0, hpm_mempool_get_bulk(mp, objs, 32));
		hpm_mempool_put_bulk(mp, objs, 32);
	}
	hpm_mempool_cache_flush(mp);
	EXPECT_EQ(avail, hpm_mempool_avail_count(mp));
	EXPECT_EQ(0, hpm_mempool_audit(mp));
	EXPECT_TRUE(ring_idle(mp->pool_data));

	/* Each token at most once; the missing ones died in a child's hands. */
	n = 0;
	while (n < TOKENS && (got = hpm_ring_dequeue_burst(ring, toks + n, TOKENS - n, NULL)))
		n += got;
	EXPECT_TRUE(hpm_ring_empty(ring));
	EXPECT_LE(TOKENS - tally->started[A_RING] * BULK_MAX, n);
	qsort(toks, n, sizeof(toks[0]), cmp_ptr);
	for (unsigned int i = 0; i < n; i++) {
		EXPECT_LE((uintptr_t)TOKEN(0), (uintptr_t)toks[i]);
		EXPECT_GT((uintptr_t)TOKEN(TOKENS), (uintptr_t)toks[i]);
		if (i)
			EXPECT_NE(toks[i - 1], toks[i]) TH_LOG("token %p twice", toks[i]);
	}
	EXPECT_EQ(n, hpm_ring_enqueue_bulk(ring, toks, n, NULL));
	EXPECT_EQ(n, hpm_ring_count(ring));
	EXPECT_TRUE(ring_idle(ring));
	alarm(0);
	printf("# ring: %u of %u tokens left by the storm\n", n, TOKENS);
	printf("# %d processes SIGKILLed, %d exited on their own, %lld ms\n", killed, exited,
	       now_ms() - t0);
	for (int a = 0; a < A_COUNT; a++)
		printf("# %-13s started %ld, in loop %ld, iterations %ld\n", act_name[a],
		       tally->started[a], tally->looping[a], tally->iters[a]);
	printf("# %d heap lock(s) and %d ring side(s) held by the dead, taken over\n",
	       locked, ring_sides);
	EXPECT_EQ(NPROCS, killed);
	hpm_ring_free(ring);
	hpm_mempool_free(mp);
	munmap(tally, sizeof(*tally));
}

TEST_HARNESS_MAIN
