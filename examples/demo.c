// SPDX-License-Identifier: MIT
/* Tour of libhpmem: memory per node, heap, memzone, ring, mbufs, a secondary. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <hpmem/hpmem.h>

#include "edu/edu.h"

#define NB_MBUF		1024
#define MBUF_CACHE	32
#define BURST		8

static int failures;

#define FAIL(...) do {						\
	fprintf(stderr, "demo: FAILED: " __VA_ARGS__);		\
	fputc('\n', stderr);					\
	failures++;						\
} while (0)

static const char *iova_mode_name(enum hpm_iova_mode m)
{
	switch (m) {
	case HPM_IOVA_PA:	return "PA";
	case HPM_IOVA_VA:	return "VA";
	case HPM_IOVA_COMPACT:	return "compact";
	default:		return "?";
	}
}

struct node_info {
	size_t bytes[HPM_MAX_NODES];
	unsigned int runs[HPM_MAX_NODES];
};

static int count_pages(const struct hpm_memseg *ms, void *arg)
{
	struct node_info *ni = arg;

	if (ms->socket >= 0 && ms->socket < HPM_MAX_NODES)
		ni->bytes[ms->socket] += ms->len;
	return 0;
}

static int print_run(const struct hpm_memseg *first, size_t len, void *arg)
{
	struct node_info *ni = arg;

	if (first->socket >= 0 && first->socket < HPM_MAX_NODES)
		ni->runs[first->socket]++;
	if (first->iova == HPM_BAD_IOVA)
		printf("  node %d: %p..%p (%zu KiB, %" PRIu64 " KiB pages), "
		       "no IOVA\n", first->socket, first->addr,
		       (char *)first->addr + len, len >> 10,
		       first->page_sz >> 10);
	else
		printf("  node %d: %p..%p (%zu KiB, %" PRIu64 " KiB pages) "
		       "iova %#" PRIx64 "..%#" PRIx64 "\n", first->socket,
		       first->addr, (char *)first->addr + len, len >> 10,
		       first->page_sz >> 10, first->iova, first->iova + len);
	return 0;
}

static int node_of(const void *va)
{
	const struct hpm_memseg *ms = hpm_virt2memseg(va);

	return ms ? ms->socket : -1;
}

static void show_memory(struct node_info *ni)
{
	int s;

	memset(ni, 0, sizeof(*ni));
	hpm_memseg_walk(count_pages, ni);
	printf("memory: IOVA-contiguous runs\n");
	hpm_memseg_contig_walk(print_run, ni);
	for (s = 0; s < HPM_MAX_NODES; s++)
		if (ni->bytes[s])
			printf("  node %d: %zu MiB in %u run(s)\n", s,
			       ni->bytes[s] >> 20, ni->runs[s]);
}

static void show_malloc(const struct node_info *ni)
{
	int s;

	for (s = 0; s < HPM_MAX_NODES; s++) {
		void *p;

		if (!ni->bytes[s])
			continue;
		p = hpm_malloc_socket("demo", 64 << 10, 64, s);
		if (p == NULL) {
			FAIL("hpm_malloc_socket(%d): %s", s,
			     hpm_strerror(hpm_errno));
			continue;
		}
		memset(p, 0xa5, 64 << 10);
		printf("malloc: 64 KiB on socket %d at %p, iova %#" PRIx64
		       ", node %d\n", s, p, hpm_virt2iova(p), node_of(p));
		if (node_of(p) != s)
			FAIL("malloc on socket %d landed on node %d", s,
			     node_of(p));
		hpm_free(p);
	}
}

static const struct hpm_memzone *show_memzone(void)
{
	const struct hpm_memzone *mz;

	mz = hpm_memzone_reserve("demo_mz", 1 << 20, HPM_SOCKET_ANY,
				 HPM_MEMZONE_IOVA_CONTIG);
	if (mz == NULL) {
		FAIL("memzone: %s", hpm_strerror(hpm_errno));
		return NULL;
	}
	printf("memzone: '%s' %zu KiB at %p, iova %#" PRIx64 ", node %d\n",
	       mz->name, mz->len >> 10, mz->addr, mz->iova, mz->socket);
	if (hpm_memzone_lookup("demo_mz") != mz)
		FAIL("memzone lookup");
	return mz;
}

static struct hpm_ring *show_ring(void)
{
	static char tokens[4];
	void *objs[4] = { &tokens[0], &tokens[1], &tokens[2], &tokens[3] };
	void *back[4];
	struct hpm_ring *r;

	r = hpm_ring_create("demo_ring", 1024, HPM_SOCKET_ANY, 0);
	if (r == NULL) {
		FAIL("ring: %s", hpm_strerror(hpm_errno));
		return NULL;
	}
	if (hpm_ring_enqueue_bulk(r, objs, 4, NULL) != 4 ||
	    hpm_ring_dequeue_bulk(r, back, 2, NULL) != 2 || back[0] != objs[0])
		FAIL("ring enqueue/dequeue");
	/* the secondary takes the other two */
	printf("ring: 'demo_ring' at %p, 4 enqueued, 2 dequeued\n", (void *)r);
	return r;
}

/* Allocate a burst, check and print where a device would DMA. */
static void mbuf_burst(struct hpm_mempool *mp, const char *who)
{
	struct hpm_mbuf *m[BURST], *c;
	int i;

	if (hpm_pktmbuf_alloc_bulk(mp, m, BURST) < 0) {
		FAIL("%s: alloc_bulk: %s", who, hpm_strerror(hpm_errno));
		return;
	}
	for (i = 0; i < BURST; i++) {
		char *d = hpm_pktmbuf_append(m[i], 60);
		uint64_t iova = hpm_virt2iova(m[i]->buf_addr);

		if (d == NULL) {
			FAIL("%s: append", who);
			continue;
		}
		memset(d, i, 60);
		printf("  %s mbuf %d: buf %p iova %#" PRIx64 ", data iova %#"
		       PRIx64 ", node %d\n", who, i, m[i]->buf_addr,
		       m[i]->buf_iova, hpm_pktmbuf_iova(m[i]),
		       node_of(m[i]->buf_addr));
		if (m[i]->buf_iova != iova)
			FAIL("%s: mbuf %d buf_iova %#" PRIx64 " but memseg "
			     "says %#" PRIx64, who, i, m[i]->buf_iova, iova);
	}
	c = hpm_pktmbuf_clone(m[0], mp);
	if (c == NULL || hpm_pktmbuf_iova(c) != hpm_pktmbuf_iova(m[0]))
		FAIL("%s: clone", who);
	hpm_pktmbuf_free(c);
	hpm_pktmbuf_free_bulk(m, BURST);
}

static int secondary(struct hpm_init_opts *o)
{
	const struct hpm_memzone *mz;
	struct hpm_mempool *mp;
	struct hpm_ring *r;
	void *back[2];
	int rc;

	/* drop the mapping fork() copied, then attach like any process */
	hpm_cleanup();
	o->proc_type = HPM_PROC_SECONDARY;
	rc = hpm_init(o);
	if (rc < 0) {
		FAIL("secondary: hpm_init: %s", hpm_strerror(rc));
		return 1;
	}
	hpm_thread_register();
	printf("secondary: pid %d attached (%s)\n", getpid(),
	       hpm_proc_type() == HPM_PROC_SECONDARY ? "secondary" : "??");
	mp = hpm_mempool_lookup("demo_mb0");
	mz = hpm_memzone_lookup("demo_mz");
	r = hpm_ring_lookup("demo_ring");
	if (mp == NULL || mz == NULL || r == NULL) {
		FAIL("secondary: lookups: pool %p memzone %p ring %p",
		     (void *)mp, (const void *)mz, (void *)r);
	} else {
		printf("secondary: found pool 'demo_mb0' at %p, %u free\n",
		       (void *)mp, hpm_mempool_avail_count(mp));
		mbuf_burst(mp, "secondary");
		if (hpm_ring_dequeue_bulk(r, back, 2, NULL) != 2)
			FAIL("secondary: ring dequeue");
		hpm_mempool_cache_flush(mp);
	}
	hpm_thread_unregister();
	hpm_cleanup();
	return failures ? 1 : 0;
}

/*
 * The proof: a device (QEMU's edu, in the guest) DMAs a packet from one
 * buffer into an mbuf at the IOVA the mbuf carries. Through VFIO when the
 * device sits behind an IOMMU (the library maps its memory into the
 * container), else straight to physical addresses. Returns true with
 * @edu still open (and the region still mapped for it, which "serve" lets
 * hpmemctl show), false when there was no device to open.
 */
static bool dma_into_mbuf(struct hpm_mempool *mp, struct edu *e)
{
	struct edu edu;
	struct hpm_mbuf *m;
	char bdf[32];
	uint8_t *pkt;
	char *d;
	int rc, i;

	if (edu_find(bdf, sizeof(bdf), NULL)) {
		printf("demo: no edu DMA device (QEMU -device edu), no DMA proof\n");
		return false;
	}
	rc = edu_open(&edu, bdf);
	if (rc < 0) {
		FAIL("edu %s: %s", bdf, hpm_strerror(rc));
		return false;
	}
	printf("demo: edu %s opened through %s, IOVA mode %s\n", bdf,
	       edu.vfio ? "VFIO (the IOMMU translates)" : "sysfs (no IOMMU)",
	       iova_mode_name(hpm_iova_mode()));
	pkt = hpm_malloc("demo_pkt", 64, 64);
	m = hpm_pktmbuf_alloc(mp);
	d = m ? hpm_pktmbuf_append(m, 64) : NULL;
	if (pkt == NULL || d == NULL) {
		FAIL("DMA proof: no packet buffer or mbuf");
		goto out;
	}
	/* A broadcast frame from 02:00:00:00:00:01, then a pattern. */
	memset(pkt, 0xff, 6);
	memcpy(pkt + 6, "\x02\x00\x00\x00\x00\x01\x88\xb5", 8);
	for (i = 14; i < 64; i++)
		pkt[i] = (uint8_t)(i * 29 + getpid());
	memset(d, 0, 64);
	rc = edu_copy(&edu, hpm_virt2iova(pkt), hpm_pktmbuf_iova(m), 64);
	if (rc < 0)
		FAIL("edu DMA: %s", hpm_strerror(rc));
	else if (memcmp(d, pkt, 64))
		FAIL("edu DMA'd 64 bytes to iova %#" PRIx64 " but the mbuf "
		     "does not hold them", hpm_pktmbuf_iova(m));
	else
		printf("demo: edu DMA'd 64 bytes into mbuf at iova %#" PRIx64
		       ": OK\n", hpm_pktmbuf_iova(m));
out:
	hpm_pktmbuf_free(m);
	hpm_free(pkt);
	*e = edu;
	return true;
}

/*
 * Keep everything allocated for @secs seconds, or until SIGUSR1, SIGINT or
 * SIGTERM, so that other processes can look at it (examples/secondary,
 * hpmemctl app); then the demo tears down and checks as usual. The signals
 * are blocked before the "serving" line, so one sent as soon as it shows
 * is not lost.
 */
static void serve_for(int secs, const char *region)
{
	struct timespec ts = { .tv_sec = secs };
	sigset_t set;
	int sig;

	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigprocmask(SIG_BLOCK, &set, NULL);
	printf("demo: serving for %d s (SIGUSR1 ends it): examples/secondary "
	       "--region %s demo_mb0\n", secs, region);
	do
		sig = sigtimedwait(&set, NULL, &ts);
	while (sig < 0 && errno == EINTR);
	if (sig > 0)
		printf("demo: %s, tearing down\n", strsignal(sig));
	sigprocmask(SIG_UNBLOCK, &set, NULL);
}

static bool any_socket_mem(const struct hpm_init_opts *o)
{
	int s;

	for (s = 0; s < HPM_MAX_NODES; s++)
		if (o->socket_mem[s])
			return true;
	return false;
}

/*
 * Without --socket-mem: 64 MiB on every NUMA node, so that a 2-node guest
 * shows both (HPMEM_OPTS, applied by hpm_init, still has the last word).
 */
static void default_socket_mem(struct hpm_init_opts *o)
{
	char path[64];
	int s;

	for (s = 0; s < HPM_MAX_NODES; s++) {
		snprintf(path, sizeof(path), "/sys/devices/system/node/node%d", s);
		if (s == 0 || access(path, F_OK) == 0)
			o->socket_mem[s] = 64;
	}
}

int main(int argc, char **argv)
{
	struct hpm_mempool *pools[HPM_MAX_NODES] = { NULL };
	const struct hpm_memzone *mz;
	struct hpm_init_opts o;
	struct node_info ni;
	struct hpm_ring *r;
	char region[HPM_NAME_SIZE], name[HPM_NAME_SIZE];
	int rc, s, status, serve = 0;
	bool have_edu = false;
	struct edu edu;
	pid_t pid;

	setvbuf(stdout, NULL, _IOLBF, 0);
	hpm_init_opts_default(&o);
	rc = hpm_parse_args(&o, argc, argv);
	if (rc >= 0 && 1 + rc + 2 == argc && !strcmp(argv[1 + rc], "serve"))
		serve = atoi(argv[2 + rc]);
	else if (rc >= 0 && 1 + rc != argc)
		rc = -EINVAL;
	if (rc < 0 || serve < 0) {
		fprintf(stderr, "usage: %s [--backend kmod|hugetlbfs|anon] "
			"[--socket-mem MiB,...] [--region NAME] ... "
			"[serve SECONDS]\n"
			"  (HPMEM_OPTS is applied on top; serve: stay up so that "
			"examples/secondary can attach)\n", argv[0]);
		return 2;
	}
	if (!any_socket_mem(&o))
		default_socket_mem(&o);
	if (o.region == NULL) {
		snprintf(region, sizeof(region), "demo-%d", getpid());
		o.region = region;
	}
	rc = hpm_init(&o);
	if (rc < 0) {
		fprintf(stderr, "demo: hpm_init: %s\n", hpm_strerror(rc));
		return 1;
	}
	hpm_thread_register();
	printf("demo: region '%s', backend %s, IOVA as %s, %d socket(s)\n",
	       o.region, hpm_backend_name(hpm_backend()),
	       iova_mode_name(hpm_iova_mode()), hpm_socket_count());

	show_memory(&ni);
	show_malloc(&ni);
	mz = show_memzone();
	r = show_ring();

	for (s = 0; s < HPM_MAX_NODES; s++) {
		struct hpm_mbuf *m;

		if (!ni.bytes[s])
			continue;
		snprintf(name, sizeof(name), "demo_mb%d", s);
		pools[s] = hpm_pktmbuf_pool_create(name, NB_MBUF, MBUF_CACHE, 0,
						   HPM_MBUF_DEFAULT_BUF_SIZE, s);
		if (pools[s] == NULL) {
			FAIL("pool on socket %d: %s", s,
			     hpm_strerror(hpm_errno));
			continue;
		}
		m = hpm_pktmbuf_alloc(pools[s]);
		printf("mbuf pool '%s': %u mbufs of %u bytes on socket %d, "
		       "first on node %d\n", name, NB_MBUF,
		       HPM_MBUF_DEFAULT_BUF_SIZE, s,
		       m ? node_of(m->buf_addr) : -1);
		if (m == NULL || node_of(m->buf_addr) != s)
			FAIL("pool '%s' not on node %d", name, s);
		hpm_pktmbuf_free(m);
		mbuf_burst(pools[s], "primary");
	}

	if (pools[0] != NULL && mz != NULL && r != NULL) {
		pid = fork();
		if (pid == 0)
			_exit(secondary(&o));
		if (pid < 0 || waitpid(pid, &status, 0) != pid ||
		    !WIFEXITED(status) || WEXITSTATUS(status) != 0)
			FAIL("secondary process");
		if (hpm_ring_count(r) != 0)
			FAIL("ring not drained by the secondary");
	} else {
		FAIL("no pool on socket 0: no secondary");
	}
	if (pools[0] != NULL)
		have_edu = dma_into_mbuf(pools[0], &edu);
	if (serve > 0)
		serve_for(serve, o.region);
	if (have_edu)
		edu_close(&edu);

	for (s = 0; s < HPM_MAX_NODES; s++) {
		if (pools[s] == NULL)
			continue;
		hpm_mempool_cache_flush(pools[s]);
		if (hpm_mempool_avail_count(pools[s]) != NB_MBUF)
			FAIL("pool %d: %u of %u mbufs back", s,
			     hpm_mempool_avail_count(pools[s]), NB_MBUF);
		hpm_mempool_free(pools[s]);
	}
	hpm_ring_free(r);
	if (mz != NULL)
		hpm_memzone_free(mz);
	hpm_thread_unregister();
	hpm_cleanup();
	if (failures) {
		printf("demo: %d failure(s)\n", failures);
		return 1;
	}
	printf("demo: OK\n");
	return 0;
}
