// SPDX-License-Identifier: MIT
/*
 * Guest rows of make bench (static, run in the QEMU guest with hpmem.ko
 * loaded): filling a node's pool against the kernel reserving as many
 * hugetlb pages there, and first-touching 512 MiB mapped from /dev/hpmem,
 * MAP_HUGETLB and ordinary 4 KiB pages. Under TCG only the ratios mean
 * anything. Prints "GBENCH id hpmem_ns baseline baseline_ns hpmem_faults
 * baseline_faults" lines for bench/run.sh.
 *
 * The random-access rows chase pointers through 1 GiB, one hop per 4 KiB
 * page in random order, so that nearly every load misses the TLB: they
 * price the 4 KiB PTEs of pinnable regions (what VFIO type1 can pin)
 * against PMD-mapped regions and MAP_HUGETLB. TCG's software TLB is not
 * a CPU's; the host rows of make bench give the hardware figure.
 *
 * Usage: guest_bench [node]   (default: the highest node with memory)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <linux/hpmem.h>

#define PAGES		256u
#define MAP_LEN		((size_t)PAGES * HPMEM_PAGE_SIZE)	/* 512 MiB */
#define REPS		5
#define TOUCH_STRIDE	4096u
#define MPOL_BIND_	2
#define RA_PAGES	512u
#define RA_LEN		((size_t)RA_PAGES * HPMEM_PAGE_SIZE)	/* 1 GiB */
#define RA_HOPS		(1u << 21)

struct sample {
	double ns;
	long faults;
};

static int node;
static int ctl = -1;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static long minflt(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_minflt;
}

static int cmp_sample(const void *a, const void *b)
{
	const struct sample *x = a, *y = b;

	return (x->ns > y->ns) - (x->ns < y->ns);
}

static struct sample median(struct sample *s)
{
	qsort(s, REPS, sizeof(*s), cmp_sample);
	return s[REPS / 2];
}

static int pool_resize(uint64_t nr)
{
	struct hpmem_pool_resize a = {
		.argsz = sizeof(a), .node = (uint32_t)node, .nr_pages = nr,
	};

	return ioctl(ctl, HPMEM_IOC_POOL_RESIZE, &a) ? -errno : 0;
}

static int pool_total(uint64_t *total, uint64_t *free_pages)
{
	struct hpmem_node_info a = { .argsz = sizeof(a), .node = (uint32_t)node };

	if (ioctl(ctl, HPMEM_IOC_NODE_INFO, &a))
		return -errno;
	*total = a.total_pages;
	*free_pages = a.free_pages;
	return 0;
}

static char hugetlb_path[128];

static long hugetlb_get(void)
{
	FILE *f = fopen(hugetlb_path, "r");
	long v = -1;

	if (f) {
		if (fscanf(f, "%ld", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

static int hugetlb_set(long v)
{
	FILE *f = fopen(hugetlb_path, "w");
	int rc;

	if (!f)
		return -errno;
	rc = fprintf(f, "%ld\n", v) < 0 ? -EIO : 0;
	if (fclose(f))
		rc = -errno;
	return rc;
}

/* Keep a mapping's pages on the node under test (no libnuma: static). */
static void bind_node(void *p, size_t len)
{
	unsigned long mask = 1ul << node;

	if (syscall(SYS_mbind, p, len, MPOL_BIND_, &mask,
		    sizeof(mask) * 8, 0))
		perror("guest_bench: mbind");
}

/* Write one byte per 4 KiB, as a user filling the buffer would fault. */
static struct sample touch(char *p, size_t len)
{
	struct sample s;
	long f0 = minflt();
	uint64_t t0 = now_ns();

	for (size_t off = 0; off < len; off += TOUCH_STRIDE)
		((volatile char *)p)[off] = 1;
	s.ns = (double)(now_ns() - t0);
	s.faults = minflt() - f0;
	return s;
}

/*
 * A region of @pages pages of the node under test, created with @flags and
 * mapped whole; the pool is sized for it. hpmem_unmap() undoes all of it.
 */
static int hpmem_map(uint32_t flags, unsigned int pages, int *fdp, char **out)
{
	struct hpmem_region_create rc = { .argsz = sizeof(rc), .flags = flags };
	struct hpmem_region_grow g = {
		.argsz = sizeof(g), .node = (uint32_t)node, .nr_pages = pages,
	};
	size_t len = (size_t)pages * HPMEM_PAGE_SIZE;
	int fd, err;
	void *p;

	if (pool_resize(pages))
		return -ENOMEM;
	fd = open(HPMEM_DEVICE_PATH, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		err = -errno;
		goto out_pool;
	}
	snprintf(rc.name, sizeof(rc.name), "gbench-%d", (int)getpid());
	if (ioctl(fd, HPMEM_IOC_REGION_CREATE, &rc) ||
	    ioctl(fd, HPMEM_IOC_REGION_GROW, &g)) {
		err = -errno;
		goto out;
	}
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)g.offset);
	if (p == MAP_FAILED) {
		err = -errno;
		goto out;
	}
	*fdp = fd;
	*out = p;
	return 0;
out:
	/* a region that is not persistent goes away with its last file */
	close(fd);
out_pool:
	pool_resize(0);
	return err;
}

static void hpmem_unmap(int fd, char *p, unsigned int pages)
{
	munmap(p, (size_t)pages * HPMEM_PAGE_SIZE);
	close(fd);
	pool_resize(0);
}

static int touch_hpmem(struct sample *s)
{
	char *p;
	int fd, err = hpmem_map(0, PAGES, &fd, &p);

	if (err)
		return err;
	*s = touch(p, MAP_LEN);
	hpmem_unmap(fd, p, PAGES);
	return 0;
}

/*
 * @pages hugetlb pages more on the node under test (@base there already),
 * mapped MAP_HUGETLB and measured by @fn, then given back.
 */
static int with_hugetlb(long base, unsigned int pages,
			struct sample (*fn)(char *p, size_t len), struct sample *s)
{
	size_t len = (size_t)pages * HPMEM_PAGE_SIZE;
	int err = 0;
	void *p;

	if (hugetlb_set(base + pages) || hugetlb_get() != base + pages) {
		hugetlb_set(base);
		return -ENOMEM;
	}
	p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
	if (p == MAP_FAILED) {
		err = -errno;
	} else {
		bind_node(p, len);
		*s = fn(p, len);
		munmap(p, len);
	}
	hugetlb_set(base);
	return err;
}

static int touch_hugetlb(struct sample *s, long base)
{
	return with_hugetlb(base, PAGES, touch, s);
}

static int touch_4k(struct sample *s)
{
	void *p = mmap(NULL, MAP_LEN, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return -errno;
	/* ordinary pages: keep THP out of the comparison */
	madvise(p, MAP_LEN, MADV_NOHUGEPAGE);
	bind_node(p, MAP_LEN);
	*s = touch(p, MAP_LEN);
	munmap(p, MAP_LEN);
	return 0;
}

/*
 * One 8-byte slot per 4 KiB page, linked in a random cycle (Sattolo), so
 * the chase visits every page once per lap and prefetchers cannot help.
 */
static void chase_build(char *p, size_t len)
{
	size_t n = len / 4096, i, j;
	uint32_t *order = malloc(n * sizeof(*order));
	uint64_t x = 0x9e3779b97f4a7c15ull;

	if (!order)
		abort();
	for (i = 0; i < n; i++)
		order[i] = (uint32_t)i;
	for (i = n - 1; i > 0; i--) {
		uint32_t t;

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		j = x % i;
		t = order[i];
		order[i] = order[j];
		order[j] = t;
	}
	for (i = 0; i < n; i++) {
		size_t from = (size_t)order[i] * 4096 + (order[i] % 64) * 64;
		size_t to = (size_t)order[(i + 1) % n] * 4096 +
			    (order[(i + 1) % n] % 64) * 64;

		*(char **)(p + from) = p + to;
	}
	free(order);
}

/* ns per dependent load, best of REPS laps after a warm-up lap. */
static struct sample chase(char *p, size_t len)
{
	struct sample s = { .ns = 1e30, .faults = 0 };
	char **q = (char **)p;

	chase_build(p, len);
	for (int r = 0; r <= REPS; r++) {
		uint64_t t0 = now_ns();
		double ns;

		for (unsigned int i = 0; i < RA_HOPS; i++)
			q = (char **)*q;
		ns = (double)(now_ns() - t0) / RA_HOPS;
		if (r && ns < s.ns)
			s.ns = ns;
	}
	if (!q)
		abort();
	return s;
}

static int chase_hpmem(struct sample *s, uint32_t flags)
{
	char *p;
	int fd, err = hpmem_map(flags, RA_PAGES, &fd, &p);

	if (err)
		return err;
	*s = chase(p, RA_LEN);
	hpmem_unmap(fd, p, RA_PAGES);
	return 0;
}

static int chase_hugetlb(struct sample *s, long base)
{
	return with_hugetlb(base, RA_PAGES, chase, s);
}

/* The random-access rows; skipped (with a reason) when memory is short. */
static void random_access_rows(long orig_huge)
{
	struct sample pin, huge, htlb;
	int e1, e2, e3;

	e1 = chase_hpmem(&pin, HPMEM_REGION_PINNABLE);
	e2 = chase_hpmem(&huge, 0);
	e3 = chase_hugetlb(&htlb, orig_huge);
	if (e1 || e2 || e3) {
		printf("# random-access rows skipped: node %d cannot hold 1 GiB (%d %d %d)\n",
		       node, e1, e2, e3);
		return;
	}
	printf("# random access, ns per load: pinnable %.1f huge %.1f hugetlb %.1f\n",
	       pin.ns, huge.ns, htlb.ns);
	printf("GBENCH guest/random-1G-pinnable-vs-hugetlb %.2f MAP_HUGETLB %.2f - -\n",
	       pin.ns, htlb.ns);
	printf("GBENCH guest/random-1G-huge-vs-hugetlb %.2f MAP_HUGETLB %.2f - -\n",
	       huge.ns, htlb.ns);
	printf("GBENCH guest/random-1G-pinnable-vs-huge %.2f hpmem-huge-region %.2f - -\n",
	       pin.ns, huge.ns);
}

static int pick_node(void)
{
	char path[96];

	for (int n = 7; n > 0; n--) {
		snprintf(path, sizeof(path),
			 "/sys/devices/system/node/node%d/hugepages", n);
		if (access(path, F_OK) == 0)
			return n;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct sample fill[REPS], res[REPS], th[REPS], tt[REPS], t4[REPS];
	struct sample m_fill, m_res, m_th, m_tt, m_t4;
	uint64_t orig_pool = 0, free_pages = 0;
	long orig_huge;

	node = argc > 1 ? atoi(argv[1]) : pick_node();
	snprintf(hugetlb_path, sizeof(hugetlb_path),
		 "/sys/devices/system/node/node%d/hugepages/hugepages-2048kB/nr_hugepages",
		 node);
	ctl = open(HPMEM_DEVICE_PATH, O_RDWR | O_CLOEXEC);
	if (ctl < 0) {
		perror("guest_bench: " HPMEM_DEVICE_PATH);
		return 1;
	}
	if (pool_total(&orig_pool, &free_pages) || free_pages != orig_pool) {
		fprintf(stderr, "guest_bench: node %d pool unusable or in use\n",
			node);
		return 1;
	}
	orig_huge = hugetlb_get();
	if (orig_huge < 0) {
		fprintf(stderr, "guest_bench: cannot read %s\n", hugetlb_path);
		return 1;
	}
	printf("# guest_bench: node %d, %u pages, %d reps, pool %llu, hugetlb %ld\n",
	       node, PAGES, REPS, (unsigned long long)orig_pool, orig_huge);
	if (pool_resize(0)) {
		fprintf(stderr, "guest_bench: cannot empty the pool of node %d\n",
			node);
		return 1;
	}

	for (int r = 0; r < REPS; r++) {
		uint64_t t0 = now_ns();

		if (pool_resize(PAGES)) {
			fprintf(stderr, "guest_bench: pool resize to %u failed\n",
				PAGES);
			goto fail;
		}
		fill[r].ns = (double)(now_ns() - t0);
		pool_resize(0);

		t0 = now_ns();
		if (hugetlb_set(orig_huge + PAGES) ||
		    hugetlb_get() != orig_huge + PAGES) {
			fprintf(stderr, "guest_bench: node %d: %ld of %u hugetlb pages\n",
				node, hugetlb_get() - orig_huge, PAGES);
			hugetlb_set(orig_huge);
			goto fail;
		}
		res[r].ns = (double)(now_ns() - t0);
		hugetlb_set(orig_huge);
		fill[r].faults = res[r].faults = 0;

		if (touch_hpmem(&th[r]) || touch_hugetlb(&tt[r], orig_huge) ||
		    touch_4k(&t4[r])) {
			fprintf(stderr, "guest_bench: first-touch round %d failed\n",
				r);
			goto fail;
		}
		printf("# rep %d: fill %.0f reserve %.0f touch hpmem %.0f (%ld) hugetlb %.0f (%ld) 4k %.0f (%ld)\n",
		       r, fill[r].ns, res[r].ns, th[r].ns, th[r].faults,
		       tt[r].ns, tt[r].faults, t4[r].ns, t4[r].faults);
	}
	m_fill = median(fill);
	m_res = median(res);
	m_th = median(th);
	m_tt = median(tt);
	m_t4 = median(t4);
	printf("GBENCH guest/pool-fill-256-vs-hugetlb %.0f hugetlb-nr_hugepages %.0f - -\n",
	       m_fill.ns, m_res.ns);
	printf("GBENCH guest/first-touch-512M-vs-hugetlb %.0f MAP_HUGETLB %.0f %ld %ld\n",
	       m_th.ns, m_tt.ns, m_th.faults, m_tt.faults);
	printf("GBENCH guest/first-touch-512M-vs-4k %.0f 4KiB-pages %.0f %ld %ld\n",
	       m_th.ns, m_t4.ns, m_th.faults, m_t4.faults);
	/* hpmem zeroes when the pool grows, hugetlb when a page faults in */
	printf("GBENCH guest/fill+touch-512M-vs-hugetlb %.0f hugetlb-reserve+touch %.0f - -\n",
	       m_fill.ns + m_th.ns, m_res.ns + m_tt.ns);
	random_access_rows(orig_huge);
	pool_resize(orig_pool);
	return 0;
fail:
	pool_resize(orig_pool);
	hugetlb_set(orig_huge);
	return 1;
}
