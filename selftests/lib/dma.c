// SPDX-License-Identifier: MIT
/*
 * Every kind of address the library hands out, proved by a device that
 * really DMAs: QEMU's edu (guest only; SKIP elsewhere). Without an IOMMU
 * through sysfs in PA mode; behind an IOMMU through VFIO, in AUTO (VA or
 * compact) and PA mode, where DMA to what is not mapped must fault.
 * HPMEM_DMA_SEED=N repeats a run's random offsets, lengths and patterns.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hpmem/hpmem.h>

#include "edu.h"
#include "kselftest_harness.h"

/* Untouched bytes checked on both sides of every DMA destination. */
#define GUARD		32
/* Longer than EDU_DMA_MAX, so that some transfers go in pieces. */
#define MAX_LEN		3000
#define BLOCK		(64u << 10)
/* External memory: below a 39-bit IOMMU's limit, far above region IOVAs. */
#define EXT_IOVA	(1ULL << 38)
#define EXT_LEN		(64u << 10)
#define FAULT_WAIT_MS	3000
/* intel-iommu's fault log ratelimit interval (5 s), and a margin. */
#define DMAR_RATELIMIT_S 5.5

static unsigned int seed;

/*
 * Before the harness: without the device the whole program is one SKIP
 * (exit 4, KSFT_SKIP), not one per test and variant.
 */
static void __attribute__((constructor)) dma_init(void)
{
	const char *s = getenv("HPMEM_DMA_SEED");
	char bdf[32];

	if (edu_find(bdf, sizeof(bdf), NULL)) {
		printf("TAP version 13\n1..0 # SKIP no edu device "
		       "(QEMU -device edu; the guest rig has one)\n");
		exit(4);
	}

	seed = s ? (unsigned int)strtoul(s, NULL, 0) :
		   (unsigned int)time(NULL) ^ (unsigned int)getpid();
	printf("# seed %u (HPMEM_DMA_SEED=%u repeats this run)\n", seed, seed);
}

FIXTURE(dma) {
	char region[HPM_NAME_SIZE];
	char why[128];
	struct hpm_init_opts o;
	struct edu edu;
	uint64_t rng;
	bool up;		/* library initialised, device open */
	bool inited;
	int nodes;		/* bit per NUMA node with memory in the region */
	uint8_t *src;		/* pattern source, region memory */
};

FIXTURE_VARIANT(dma) {
	enum hpm_iova_mode mode;
	uintptr_t base;		/* 0: the library's default base */
};
/* AUTO: PA without an IOMMU; VA or compact behind one. */
FIXTURE_VARIANT_ADD(dma, iova_auto) { .mode = HPM_IOVA_AUTO };
FIXTURE_VARIANT_ADD(dma, iova_pa) { .mode = HPM_IOVA_PA };
/*
 * IOVA = VA behind the IOMMU: the default base (2^45) is beyond QEMU's
 * 39-bit IOMMU, which is why auto picks compact; 128 GiB is within it,
 * below the external memory at EXT_IOVA.
 */
FIXTURE_VARIANT_ADD(dma, iova_va) { .mode = HPM_IOVA_VA, .base = 1ULL << 37 };

static const char *mode_name(enum hpm_iova_mode m)
{
	switch (m) {
	case HPM_IOVA_PA:	return "PA";
	case HPM_IOVA_VA:	return "VA";
	case HPM_IOVA_COMPACT:	return "compact";
	default:		return "?";
	}
}

/* splitmix64: one stream per test, from the run's seed and the test name. */
static uint64_t rnd(FIXTURE_DATA(dma) *self)
{
	uint64_t z = (self->rng += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static size_t rnd_in(FIXTURE_DATA(dma) *self, size_t lo, size_t hi)
{
	return lo + rnd(self) % (hi - lo + 1);
}

static void fill(FIXTURE_DATA(dma) *self, uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)rnd(self);
}

static bool node_exists(int n)
{
	char path[64];

	snprintf(path, sizeof(path), "/sys/devices/system/node/node%d", n);
	return access(path, F_OK) == 0;
}

/* True when the IOVA range [@iova, @iova + @len) is one run. */
static bool iova_contig(const void *va, size_t len)
{
	uint64_t a = hpm_virt2iova(va);

	return a != HPM_BAD_IOVA &&
	       hpm_virt2iova((const uint8_t *)va + len - 1) == a + len - 1;
}

/*
 * A random window of @len bytes in [@base, @base + @size) with GUARD bytes
 * either side, IOVA-contiguous (at most two pages: the ends decide).
 */
static uint8_t *pick(FIXTURE_DATA(dma) *self, uint8_t *base, size_t size,
		     size_t len)
{
	for (int i = 0; i < 64; i++) {
		uint8_t *p = base + rnd_in(self, GUARD, size - len - GUARD);

		if (iova_contig(p, len))
			return p;
	}
	return NULL;
}

/*
 * The device copies @len bytes of a fresh pattern from @src (IOVA @siova)
 * to @dst (IOVA @diova); the GUARD bytes around @dst must stay. NULL when
 * all holds, else what did not (in a static buffer).
 */
static const char *dma_copy_check(FIXTURE_DATA(dma) *self, uint8_t *src,
				  uint64_t siova, uint8_t *dst, uint64_t diova,
				  size_t len)
{
	static char msg[192];
	uint8_t fillb = (uint8_t)rnd(self);
	int ret;

	fill(self, src, len);
	memset(dst - GUARD, fillb, len + 2 * GUARD);
	if (src[0] == fillb)
		src[0] ^= 0xff;	/* the first byte must change visibly */
	ret = edu_copy(&self->edu, siova, diova, len);
	if (ret) {
		snprintf(msg, sizeof(msg), "edu_copy %#" PRIx64 " -> %#" PRIx64
			 " (%zu bytes): %s", siova, diova, len, strerror(-ret));
		return msg;
	}
	for (size_t i = 0; i < len; i++)
		if (dst[i] != src[i]) {
			snprintf(msg, sizeof(msg), "iova %#" PRIx64 " + %zu of "
				 "%zu bytes: %#x, want %#x", diova, i, len,
				 dst[i], src[i]);
			return msg;
		}
	for (size_t i = 0; i < GUARD; i++)
		if (dst[-1 - (long)i] != fillb || dst[len + i] != fillb) {
			snprintf(msg, sizeof(msg), "DMA to iova %#" PRIx64
				 " wrote outside its %zu bytes", diova, len);
			return msg;
		}
	return NULL;
}

/* Both ends' IOVAs as the library reports them for the VAs. */
#define PROVE(src, dst, len) do {					\
	const char *m_ = dma_copy_check(self, (src), hpm_virt2iova(src),\
					(dst), hpm_virt2iova(dst), (len)); \
	if (m_)								\
		TH_LOG("%s", m_);					\
	ASSERT_EQ(NULL, m_);						\
} while (0)

#define DEVICE_UP() do {						\
	if (!self->up)							\
		SKIP(return, "%s", self->why);				\
} while (0)

#define NEED_IOMMU() do {						\
	DEVICE_UP();							\
	if (!self->edu.vfio)						\
		SKIP(return, "no IOMMU: the device reaches every address"); \
} while (0)

FIXTURE_SETUP(dma)
{
	char bdf[32], path[96];
	bool vfio;
	int ret;

	self->rng = seed;
	for (const char *c = _metadata->name; *c; c++)
		self->rng = (self->rng ^ (uint8_t)*c) * 0x100000001b3ULL;

	ASSERT_EQ(0, edu_find(bdf, sizeof(bdf), &vfio));
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/iommu_group", bdf);
	if (!vfio && access(path, F_OK) == 0) {
		snprintf(self->why, sizeof(self->why), "edu %s is behind an "
			 "IOMMU but not bound to vfio-pci", bdf);
		return;
	}

	hpm_init_opts_default(&self->o);
	snprintf(self->region, sizeof(self->region), "t-dma-%d", (int)getpid());
	self->o.region = self->region;
	self->o.backend = HPM_BACKEND_KMOD;
	self->o.iova_mode = variant->mode;
	self->o.base_addr = variant->base;
	for (int n = 0; n < 2; n++)
		if (node_exists(n))
			self->o.socket_mem[n] = 16;
	if (vfio)
		self->o.flags |= HPM_INIT_F_VFIO;
	ret = hpm_init(&self->o);
	ASSERT_EQ(0, ret) TH_LOG("hpm_init: %s", hpm_strerror(ret));
	self->inited = true;
	if (!vfio && hpm_iova_mode() != HPM_IOVA_PA) {
		snprintf(self->why, sizeof(self->why), "IOVA mode %s without an "
			 "IOMMU: no device can use it", mode_name(hpm_iova_mode()));
		return;
	}
	ret = vfio ? edu_open_vfio(&self->edu, bdf, HPM_VFIO_DEFAULT_CONTAINER) :
		     edu_open_sysfs(&self->edu, bdf);
	ASSERT_EQ(0, ret) TH_LOG("edu %s via %s: %s", bdf,
				 vfio ? "VFIO" : "sysfs", strerror(-ret));
	for (int n = 0; n < HPM_MAX_NODES; n++) {
		void *p = hpm_malloc_socket("probe", 64, 64, n);

		if (p != NULL)
			self->nodes |= 1 << n;
		hpm_free(p);
	}
	self->src = hpm_malloc("dma-src", BLOCK, 4096);
	ASSERT_NE(NULL, self->src);
	TH_LOG("edu %s via %s, IOVA mode %s, node mask %#x", bdf,
	       vfio ? "VFIO" : "sysfs", mode_name(hpm_iova_mode()), self->nodes);
	self->up = true;
}

FIXTURE_TEARDOWN(dma)
{
	if (self->edu.bar)
		edu_close(&self->edu);
	if (self->inited)
		EXPECT_EQ(0, hpm_cleanup());
}

/* A random IOVA-contiguous window of @len bytes in a block of @size. */
#define WINDOW(p, base, size, len) do {					\
	(p) = pick(self, (base), (size), (len));			\
	ASSERT_NE(NULL, (p)) TH_LOG("no IOVA-contiguous %zu bytes", (size_t)(len)); \
} while (0)

/* Heap blocks on every node, each node's to every node's. */
TEST_F(dma, malloc_every_socket)
{
	uint8_t *in[HPM_MAX_NODES] = { NULL }, *out[HPM_MAX_NODES] = { NULL };

	DEVICE_UP();
	for (int n = 0; n < HPM_MAX_NODES; n++) {
		if (!(self->nodes & (1 << n)))
			continue;
		in[n] = hpm_malloc_socket("dma-in", BLOCK, 64, n);
		out[n] = hpm_malloc_socket("dma-out", BLOCK, 64, n);
		ASSERT_NE(NULL, in[n]);
		ASSERT_NE(NULL, out[n]);
		ASSERT_EQ(n, hpm_virt2memseg(out[n])->socket);
	}
	if (!(self->nodes & 2))
		TH_LOG("only node 0 has memory: one socket proved");
	for (int a = 0; a < HPM_MAX_NODES; a++)
		for (int b = 0; b < HPM_MAX_NODES; b++) {
			size_t len = rnd_in(self, 1, MAX_LEN);
			uint8_t *s, *d;

			if (!in[a] || !out[b])
				continue;
			WINDOW(s, in[a], BLOCK, len);
			WINDOW(d, out[b], BLOCK, len);
			PROVE(s, d, len);
		}
}

static int longest_run(const struct hpm_memseg *first, size_t len, void *arg)
{
	size_t *longest = arg;

	if (len > *longest)
		*longest = len;
	return 0;
}

/* An IOVA-contiguous zone, written and read across a 2 MiB boundary. */
TEST_F(dma, memzone_across_2m_boundary)
{
	const struct hpm_memzone *mz;
	size_t longest = 0, len, off;
	uint8_t *s, *edge;

	DEVICE_UP();
	mz = hpm_memzone_reserve_aligned("dma-mz", (2u << 20) + 8192,
					 HPM_SOCKET_ANY, HPM_MEMZONE_IOVA_CONTIG,
					 2u << 20);
	if (mz == NULL) {
		hpm_memseg_contig_walk(longest_run, &longest);
		ASSERT_GT((2u << 20) + 8192, longest)
			TH_LOG("refused with a %zu-byte run", longest);
		SKIP(return, "no IOVA-contiguous 2 MiB + 8 KiB (longest %zu)",
		     longest);
	}
	edge = (uint8_t *)mz->addr + (2u << 20);
	ASSERT_EQ(mz->iova + (2u << 20), hpm_virt2iova(edge));
	for (int dir = 0; dir < 2; dir++) {
		len = rnd_in(self, 2, MAX_LEN);
		off = rnd_in(self, 1, len - 1);	/* bytes before the edge */
		WINDOW(s, self->src, BLOCK, len);
		/* The zone's own IOVA, not a per-page lookup: it is one run. */
		const char *m = dir == 0 ?
			dma_copy_check(self, s, hpm_virt2iova(s), edge - off,
				       mz->iova + (2u << 20) - off, len) :
			dma_copy_check(self, edge - off,
				       mz->iova + (2u << 20) - off, s,
				       hpm_virt2iova(s), len);
		if (m)
			TH_LOG("%s", m);
		ASSERT_EQ(NULL, m);
	}
	EXPECT_EQ(0, hpm_memzone_free(mz));
}

/* Objects of a pool on every node, at the IOVA in their headers. */
TEST_F(dma, mempool_objects)
{
	const unsigned int elt = 4000;

	DEVICE_UP();
	for (int n = 0; n < HPM_MAX_NODES; n++) {
		struct hpm_mempool *mp;
		char name[HPM_MEMPOOL_NAMESIZE];
		void *objs[3];

		if (!(self->nodes & (1 << n)))
			continue;
		snprintf(name, sizeof(name), "dma-mp%d", n);
		mp = hpm_mempool_create(name, 31, elt, 0, 0, NULL, NULL, n, 0);
		ASSERT_NE(NULL, mp) TH_LOG("%s", hpm_strerror(hpm_errno));
		ASSERT_EQ(0, hpm_mempool_get_bulk(mp, objs, 3));
		for (int i = 0; i < 3; i++) {
			size_t len = rnd_in(self, 1, elt - 2 * GUARD);
			size_t off = rnd_in(self, GUARD, elt - len - GUARD);
			uint8_t *o = objs[i], *s;
			uint64_t iova = hpm_mempool_virt2iova(o);
			const char *m;

			ASSERT_EQ(hpm_virt2iova(o), iova);
			WINDOW(s, self->src, BLOCK, len);
			m = dma_copy_check(self, s, hpm_virt2iova(s), o + off,
					   iova + off, len);
			if (m)
				TH_LOG("%s", m);
			ASSERT_EQ(NULL, m);
		}
		hpm_mempool_put_bulk(mp, objs, 3);
		hpm_mempool_free(mp);
	}
}

/* A packet DMA'd into two chained mbufs at random data offsets. */
TEST_F(dma, mbuf_chain)
{
	struct hpm_mempool *mp;
	struct hpm_mbuf *m[2], *seg;
	uint8_t *pkt, back[2 * MAX_LEN];
	const char *msg;
	uint16_t len[2];
	const uint8_t *r;

	DEVICE_UP();
	mp = hpm_pktmbuf_pool_create("dma-mb", 63, 0, 0,
				     HPM_MBUF_DEFAULT_BUF_SIZE, HPM_SOCKET_ANY);
	ASSERT_NE(NULL, mp) TH_LOG("%s", hpm_strerror(hpm_errno));
	len[0] = rnd_in(self, 60, 1500);
	len[1] = rnd_in(self, 60, 1900);
	WINDOW(pkt, self->src, BLOCK, len[0] + len[1]);
	for (int i = 0; i < 2; i++) {
		uint16_t adj = rnd_in(self, 0, 64);
		uint8_t *d;

		m[i] = hpm_pktmbuf_alloc(mp);
		ASSERT_NE(NULL, m[i]);
		ASSERT_NE(NULL, hpm_pktmbuf_append(m[i], len[i] + adj));
		ASSERT_NE(NULL, hpm_pktmbuf_adj(m[i], adj));
		ASSERT_EQ(hpm_virt2iova(m[i]->buf_addr), m[i]->buf_iova);
		d = hpm_pktmbuf_mtod(m[i], uint8_t *);
		/* The packet's bytes go to where the mbuf says they are. */
		msg = dma_copy_check(self, pkt + (i ? len[0] : 0),
				     hpm_virt2iova(pkt + (i ? len[0] : 0)), d,
				     hpm_pktmbuf_iova(m[i]), len[i]);
		if (msg)
			TH_LOG("segment %d: %s", i, msg);
		ASSERT_EQ(NULL, msg);
	}
	/* dma_copy_check refilled the source per segment: rebuild the packet. */
	ASSERT_EQ(0, hpm_pktmbuf_chain(m[0], m[1]));
	ASSERT_EQ(2, m[0]->nb_segs);
	r = hpm_pktmbuf_read(m[0], len[0] - 8, 16, back);
	ASSERT_NE(NULL, r);
	EXPECT_EQ(0, memcmp(r, hpm_pktmbuf_mtod_offset(m[0], uint8_t *, len[0] - 8), 8));
	EXPECT_EQ(0, memcmp(r + 8, hpm_pktmbuf_mtod(m[1], uint8_t *), 8));
	/* The second segment once more, through the chain's link. */
	seg = m[0]->next;
	msg = dma_copy_check(self, pkt, hpm_virt2iova(pkt),
			     hpm_pktmbuf_mtod(seg, uint8_t *),
			     hpm_pktmbuf_iova(seg), seg->data_len);
	if (msg)
		TH_LOG("chained segment: %s", msg);
	ASSERT_EQ(NULL, msg);
	hpm_pktmbuf_free(m[0]);
	hpm_mempool_free(mp);
}

/* ---- a secondary's mbufs, through the device its primary opened ---- */

/*
 * The child of a primary that opened the device: drops the copy of the
 * primary fork() made, attaches as a secondary, and has the inherited
 * device DMA into an mbuf of its own; then leaves, with hpm_cleanup() when
 * @cleanup, else as a crash would.
 */
static int secondary_dma(FIXTURE_DATA(dma) *self, int to_parent, bool cleanup)
{
	struct hpm_mempool *mp;
	struct hpm_mbuf *m;
	uint64_t msg[2];
	uint8_t *s;
	size_t len;

	if (hpm_cleanup())
		return 10;
	self->o.proc_type = HPM_PROC_SECONDARY;
	if (hpm_init(&self->o))
		return 11;
	if (hpm_proc_type() != HPM_PROC_SECONDARY)
		return 12;
	mp = hpm_mempool_lookup("dma-sec");
	if (mp == NULL)
		return 13;
	m = hpm_pktmbuf_alloc(mp);
	if (m == NULL)
		return 14;
	len = rnd_in(self, 60, 1500);
	s = pick(self, self->src, BLOCK, len);
	if (s == NULL || hpm_pktmbuf_append(m, len) == NULL)
		return 15;
	if (dma_copy_check(self, s, hpm_virt2iova(s),
			   hpm_pktmbuf_mtod(m, uint8_t *), hpm_pktmbuf_iova(m),
			   len))
		return 16;
	/* The primary checks the same bytes: they are the packet, not a copy. */
	msg[0] = (uintptr_t)m;
	msg[1] = (uintptr_t)s;
	if (write(to_parent, msg, sizeof(msg)) != sizeof(msg))
		return 17;
	return cleanup && hpm_cleanup() ? 18 : 0;
}

/* Forks secondary_dma() and checks the packet it had DMA'd. */
static void run_secondary(struct __test_metadata *_metadata,
			  FIXTURE_DATA(dma) *self, bool cleanup)
{
	struct hpm_mbuf *m;
	uint64_t msg[2];
	int fds[2], status;
	uint8_t *s;
	pid_t pid;

	ASSERT_NE(NULL, hpm_pktmbuf_pool_create("dma-sec", 63, 0, 0,
						HPM_MBUF_DEFAULT_BUF_SIZE,
						HPM_SOCKET_ANY));
	ASSERT_EQ(0, pipe(fds));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		close(fds[0]);
		alarm(60);
		_exit(secondary_dma(self, fds[1], cleanup));
	}
	close(fds[1]);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(0, WEXITSTATUS(status)) TH_LOG("secondary failed at step %d",
						 WEXITSTATUS(status));
	ASSERT_EQ(sizeof(msg), read(fds[0], msg, sizeof(msg)));
	close(fds[0]);
	m = (struct hpm_mbuf *)(uintptr_t)msg[0];
	s = (uint8_t *)(uintptr_t)msg[1];
	EXPECT_EQ(0, memcmp(hpm_pktmbuf_mtod(m, uint8_t *), s, m->data_len));
}

TEST_F(dma, secondary_mbufs)
{
	DEVICE_UP();
	run_secondary(_metadata, self, false);
}

/*
 * A secondary's hpm_cleanup() is its own business: the primary's device
 * still reaches the primary's memory afterwards. (Through the container
 * the child inherited, an unmap would reach the primary's mappings.)
 */
TEST_F(dma, secondary_cleanup_leaves_primary_mapped)
{
	uint8_t *s, *d;

	NEED_IOMMU();
	run_secondary(_metadata, self, true);
	d = hpm_malloc("dma-after", 4096, 64);
	ASSERT_NE(NULL, d);
	WINDOW(s, self->src, BLOCK, 512);
	PROVE(s, d + 1024, 512);
}

/* ---- behind the IOMMU: what is not mapped must not be reached ---- */

/*
 * Kernel log lines of a DMAR fault at the page of @iova; @recent (may be
 * NULL) gets the printk times, in seconds, of the last three faults the
 * IOMMU driver handled, oldest first (-1e9 where there were fewer).
 */
static int dmar_faults(uint64_t iova, double recent[3])
{
	uint64_t page = iova & ~0xfffULL;
	char line[512];
	FILE *f = popen("dmesg", "r");
	int n = 0;

	if (f == NULL)
		return -1;
	if (recent)
		recent[0] = recent[1] = recent[2] = -1e9;
	while (fgets(line, sizeof(line), f)) {
		const char *a = strstr(line, "fault addr ");

		if (strstr(line, "DMAR") == NULL)
			continue;
		if (recent && line[0] == '[' && strstr(line, "handling fault")) {
			recent[0] = recent[1];
			recent[1] = recent[2];
			recent[2] = strtod(line + 1, NULL);
		}
		if (a && strtoull(a + strlen("fault addr "), NULL, 16) == page)
			n++;
	}
	pclose(f);
	return n;
}

/*
 * intel-iommu logs faults under a ratelimit of 10 calls per 5 s and spends
 * three per fault (the status line, the record, the empty slot that ends
 * the scan), so a fourth fault within one window goes unlogged. Before
 * provoking one, wait until at most two fell in the last 5 s. printk
 * times are local_clock(), which CLOCK_MONOTONIC follows closely enough
 * for the margin.
 */
static void dmar_ratelimit_wait(void)
{
	double recent[3], now;
	struct timespec ts;

	if (dmar_faults(0, recent) < 0)
		return;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = ts.tv_sec + ts.tv_nsec / 1e9;
	if (now - recent[0] < DMAR_RATELIMIT_S)
		usleep((useconds_t)((DMAR_RATELIMIT_S - (now - recent[0])) * 1e6));
}

/* Waits for a fault line beyond @before; the IOMMU reports by interrupt. */
static bool dmar_fault_seen(uint64_t iova, int before)
{
	for (int ms = 0; ms < FAULT_WAIT_MS; ms += 50) {
		if (dmar_faults(iova, NULL) > before)
			return true;
		usleep(50000);
	}
	return false;
}

static int in_region(const struct hpm_memseg *ms, void *arg)
{
	uint64_t iova = *(uint64_t *)arg;

	return ms->iova != HPM_BAD_IOVA && iova >= ms->iova &&
	       iova < ms->iova + ms->len;
}

/* Loads the device's buffer with @len bytes of a fresh pattern, kept in @pat. */
static int edu_load(FIXTURE_DATA(dma) *self, uint8_t *pat, size_t len)
{
	uint8_t *s = pick(self, self->src, BLOCK, len);

	if (s == NULL)
		return -ENOMEM;
	fill(self, s, len);
	memcpy(pat, s, len);
	return edu_dma(&self->edu, hpm_virt2iova(s), len, false);
}

/*
 * Has the device write @len bytes of its buffer to @iova, which must be
 * unreachable: @mem (what a device without an IOMMU would hit) keeps its
 * bytes and the IOMMU logs a fault at that address.
 */
static const char *dma_must_fault(FIXTURE_DATA(dma) *self, uint64_t iova,
				  const uint8_t *mem, size_t len)
{
	static char msg[160];
	uint8_t before[256];
	int faults;

	dmar_ratelimit_wait();
	faults = dmar_faults(iova, NULL);

	if (len > sizeof(before) || faults < 0)
		return "test setup";
	if (mem)
		memcpy(before, mem, len);
	if (edu_dma(&self->edu, iova, len, true))
		return "edu DMA timed out";
	if (mem && memcmp(before, mem, len)) {
		snprintf(msg, sizeof(msg), "DMA to unmapped iova %#" PRIx64
			 " landed", iova);
		return msg;
	}
	if (!dmar_fault_seen(iova, faults)) {
		snprintf(msg, sizeof(msg), "no DMAR fault logged for iova %#"
			 PRIx64, iova);
		return msg;
	}
	return NULL;
}

/* The physical address of @va (root reads PFNs in pagemap). */
static uint64_t phys_of(const void *va)
{
	uint64_t ent = 0;
	int fd = open("/proc/self/pagemap", O_RDONLY);

	if (fd < 0)
		return 0;
	if (pread(fd, &ent, sizeof(ent), (uintptr_t)va / 4096 * 8) != sizeof(ent))
		ent = 0;
	close(fd);
	if (!(ent & (1ULL << 63)) || (ent & ((1ULL << 55) - 1)) == 0)
		return 0;
	return (ent & ((1ULL << 55) - 1)) * 4096 + (uintptr_t)va % 4096;
}

/*
 * An ordinary page's physical address: outside every mapping. Without an
 * IOMMU the same DMA lands, which shows the address is the right one.
 */
TEST_F(dma, never_mapped_iova_faults)
{
	uint8_t *page, pat[64];
	uint64_t pa;
	const char *m;

	DEVICE_UP();
	page = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_LOCKED, -1, 0);
	ASSERT_NE(MAP_FAILED, page);
	memset(page, 0xee, 4096);
	pa = phys_of(page + 256);
	ASSERT_NE(0, pa);
	ASSERT_EQ(0, hpm_memseg_walk(in_region, &pa))
		TH_LOG("%#" PRIx64 " is one of the region's IOVAs", pa);
	ASSERT_EQ(0, edu_load(self, pat, sizeof(pat)));
	if (!self->edu.vfio) {
		ASSERT_EQ(0, edu_dma(&self->edu, pa, sizeof(pat), true));
		EXPECT_EQ(0, memcmp(page + 256, pat, sizeof(pat)))
			TH_LOG("DMA to physical address %#" PRIx64 " missed", pa);
		munmap(page, 4096);
		SKIP(return, "no IOMMU: the device reaches every address "
		     "(it did reach %#" PRIx64 ")", pa);
	}
	m = dma_must_fault(self, pa, page + 256, sizeof(pat));
	if (m)
		TH_LOG("%s", m);
	EXPECT_EQ(NULL, m);
	munmap(page, 4096);
}

/*
 * A buffer's IOVA after hpm_cleanup(): unmapped from the container. A
 * forked child keeps the pages (its share of the mapping) and reports
 * what they hold afterwards.
 */
TEST_F(dma, iova_unmapped_at_cleanup_faults)
{
	uint8_t *buf, *s, pat[64], seen[64], want[64];
	int to[2], from[2], status;
	uint64_t iova;
	const char *m;
	pid_t pid;

	NEED_IOMMU();
	buf = hpm_malloc("dma-gone", 4096, 4096);
	ASSERT_NE(NULL, buf);
	iova = hpm_virt2iova(buf + 1024);
	/* Reachable while the library is up... */
	WINDOW(s, self->src, BLOCK, 64);
	PROVE(s, buf + 1024, 64);
	ASSERT_EQ(0, pipe(to));
	ASSERT_EQ(0, pipe(from));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		char go;

		alarm(60);
		if (read(to[0], &go, 1) != 1)
			_exit(1);
		_exit(write(from[1], buf + 1024, 64) == 64 ? 0 : 1);
	}
	/* After the fork, so that the child sees it only through sharing. */
	memset(buf, 0x3c, 4096);
	memset(want, 0x3c, sizeof(want));
	ASSERT_EQ(0, edu_load(self, pat, sizeof(pat)));
	/* ...and not after. */
	self->inited = false;
	ASSERT_EQ(0, hpm_cleanup());
	m = dma_must_fault(self, iova, NULL, sizeof(pat));
	ASSERT_EQ(1, write(to[1], "g", 1));
	ASSERT_EQ(sizeof(seen), read(from[0], seen, sizeof(seen)));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	if (m)
		TH_LOG("%s", m);
	EXPECT_EQ(NULL, m);
	ASSERT_NE(0, memcmp(seen, pat, sizeof(pat)))
		TH_LOG("DMA to iova %#" PRIx64 " after hpm_cleanup() reached "
		       "the buffer", iova);
	/* Else the check above proved nothing. */
	EXPECT_EQ(0, memcmp(seen, want, sizeof(want)))
		TH_LOG("the child does not share the buffer's pages");
}

/* Memory the library does not own, mapped through its container. */
TEST_F(dma, external_memory)
{
	int cont = hpm_vfio_default_container();
	uint8_t *ext, *s, *d, pat[64];
	size_t len, off;
	const char *m;
	uint64_t iova = EXT_IOVA;

	NEED_IOMMU();
	ASSERT_LE(0, cont);
	ASSERT_EQ(0, hpm_memseg_walk(in_region, &iova));
	ext = mmap(NULL, EXT_LEN, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	ASSERT_NE(MAP_FAILED, ext);
	ASSERT_EQ(0, hpm_vfio_container_dma_map(cont, (uintptr_t)ext, EXT_IOVA,
						EXT_LEN));
	for (int dir = 0; dir < 2; dir++) {
		len = rnd_in(self, 1, MAX_LEN);
		off = rnd_in(self, GUARD, EXT_LEN - len - GUARD);
		WINDOW(s, self->src, BLOCK, len);
		d = ext + off;
		m = dir == 0 ?
			dma_copy_check(self, s, hpm_virt2iova(s), d,
				       EXT_IOVA + off, len) :
			dma_copy_check(self, d, EXT_IOVA + off, s,
				       hpm_virt2iova(s), len);
		if (m)
			TH_LOG("%s", m);
		ASSERT_EQ(NULL, m);
	}
	ASSERT_EQ(0, hpm_vfio_container_dma_unmap(cont, (uintptr_t)ext,
						  EXT_IOVA, EXT_LEN));
	off = rnd_in(self, 0, EXT_LEN - 64);
	ASSERT_EQ(0, edu_load(self, pat, sizeof(pat)));
	m = dma_must_fault(self, EXT_IOVA + off, ext + off, sizeof(pat));
	if (m)
		TH_LOG("after unmap: %s", m);
	EXPECT_EQ(NULL, m);
	munmap(ext, EXT_LEN);
}

/*
 * Dynamic memory (the default behind the IOMMU, or --socket-limit): a page
 * given back is unmapped from the container first, so DMA to its old IOVA
 * faults.
 */
TEST_F(dma, released_page_iova_faults)
{
	struct hpm_mem_socket_info a, b;
	struct hpm_malloc_socket_stats st;
	const struct hpm_memseg *ms;
	uint8_t *buf, *s, pat[64];
	size_t len = 8u << 20;
	uint64_t iova;
	const char *m;
	int node;

	NEED_IOMMU();
	node = hpm_virt2memseg(self->src)->socket;
	ASSERT_EQ(0, hpm_mem_socket_info(node, &a));
	if (a.limit == a.reserved)
		SKIP(return, "fixed memory: start with --socket-limit to test growth");
	/* More than the heap has free: the block's end lies on grown pages. */
	ASSERT_EQ(0, hpm_malloc_get_socket_stats(node, &st));
	len += st.heap_freesz_bytes;
	if (a.present + len > a.limit)
		SKIP(return, "node %d: no room to grow %zu bytes under its limit", node, len);
	buf = hpm_malloc_socket("dma-rel", len, 4096, node);
	ASSERT_NE(NULL, buf);
	/* The block's last whole page: given back when the block is freed. */
	ms = hpm_virt2memseg(buf + len - 1);
	ASSERT_NE(NULL, ms);
	ms = hpm_virt2memseg((uint8_t *)ms->addr - 1);
	iova = ms->iova + 1024;
	WINDOW(s, self->src, BLOCK, 64);
	PROVE(s, (uint8_t *)ms->addr + 1024, 64);
	hpm_free(buf);
	ASSERT_EQ(0, hpm_malloc_validate());
	ASSERT_EQ(0, hpm_mem_socket_info(node, &b));
	ASSERT_GT(b.released, a.released);
	ASSERT_NE(0, ms->flags & HPM_MEMSEG_F_HOLE)
		TH_LOG("page %p was not given back", ms->addr);
	ASSERT_EQ(0, edu_load(self, pat, sizeof(pat)));
	m = dma_must_fault(self, iova, NULL, sizeof(pat));
	if (m)
		TH_LOG("%s", m);
	EXPECT_EQ(NULL, m);
}

TEST_HARNESS_MAIN
