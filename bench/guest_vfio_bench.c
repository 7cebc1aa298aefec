// SPDX-License-Identifier: MIT
/*
 * Guest row of make bench in the IOMMU configuration: how long the library
 * takes to DMA-map 1 GiB of its memory into a VFIO type1 container, against
 * the naive way, one VFIO_IOMMU_MAP_DMA per 2 MiB page over the same
 * memory. The library merges IOVA-contiguous runs (the whole region, in VA
 * and compact modes) into one call; type1 then pins and maps in large runs.
 * Prints a "GBENCH" line for bench/run.sh, or "# ... skipped: why".
 *
 * Usage: guest_vfio_bench   (static; QEMU edu device bound to vfio-pci)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <linux/vfio.h>
#include <linux/hpmem.h>
#include <hpmem/init.h>
#include <hpmem/memseg.h>
#include <hpmem/vfio.h>

#include "edu.h"

#define REPS		5
#define MAP_MIB		1024

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
	const uint64_t *x = a, *y = b;

	return (*x > *y) - (*x < *y);
}

static int group_of(const char *bdf)
{
	char path[300], link[300];
	ssize_t n;
	const char *slash;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/iommu_group", bdf);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0)
		return -errno;
	link[n] = 0;
	slash = strrchr(link, '/');
	return slash ? atoi(slash + 1) : -EINVAL;
}

/* A type1 container with @bdf's group bound to it, set up by hand. */
static int raw_container(int group_id, int *group_fd)
{
	struct vfio_group_status st = { .argsz = sizeof(st) };
	char path[64];
	int cfd, gfd;

	cfd = open("/dev/vfio/vfio", O_RDWR | O_CLOEXEC);
	if (cfd < 0)
		return -errno;
	snprintf(path, sizeof(path), "/dev/vfio/%d", group_id);
	gfd = open(path, O_RDWR | O_CLOEXEC);
	if (gfd < 0 || ioctl(gfd, VFIO_GROUP_GET_STATUS, &st) ||
	    !(st.flags & VFIO_GROUP_FLAGS_VIABLE) ||
	    ioctl(gfd, VFIO_GROUP_SET_CONTAINER, &cfd) ||
	    ioctl(cfd, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU)) {
		int err = errno ? -errno : -EPERM;

		if (gfd >= 0)
			close(gfd);
		close(cfd);
		return err;
	}
	*group_fd = gfd;
	return cfd;
}

/* The library's memory as one range: base VA, its IOVA and length. */
struct span {
	uint64_t va, iova, len;
};

static int span_cb(const struct hpm_memseg *ms, void *arg)
{
	struct span *s = arg;

	if (!s->len) {
		s->va = (uintptr_t)ms->addr;
		s->iova = ms->iova;
	}
	s->len += ms->len;
	return 0;
}

static int unmap_all(int cfd, const struct span *s)
{
	struct vfio_iommu_type1_dma_unmap u = {
		.argsz = sizeof(u), .iova = s->iova, .size = s->len,
	};

	return ioctl(cfd, VFIO_IOMMU_UNMAP_DMA, &u) ? -errno : 0;
}

/* The baseline: one MAP_DMA per 2 MiB page, as a naive driver would. */
static int map_per_page(int cfd, const struct span *s)
{
	for (uint64_t off = 0; off < s->len; off += HPMEM_PAGE_SIZE) {
		struct vfio_iommu_type1_dma_map m = {
			.argsz = sizeof(m),
			.flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
			.vaddr = s->va + off, .iova = s->iova + off,
			.size = HPMEM_PAGE_SIZE,
		};

		if (ioctl(cfd, VFIO_IOMMU_MAP_DMA, &m))
			return -errno;
	}
	return 0;
}

/* The node with the most free pool pages gets the whole region. */
static int pick_node(void)
{
	int fd = open(HPMEM_DEVICE_PATH, O_RDWR | O_CLOEXEC), best = 0;
	uint64_t most = 0;

	if (fd < 0)
		return 0;
	for (int n = 0; n < 8; n++) {
		struct hpmem_pool_resize r = {
			.argsz = sizeof(r), .node = (uint32_t)n,
			.nr_pages = MAP_MIB / 2 + 8,
		};
		struct hpmem_node_info ni = { .argsz = sizeof(ni), .node = (uint32_t)n };

		if (ioctl(fd, HPMEM_IOC_POOL_RESIZE, &r) ||
		    ioctl(fd, HPMEM_IOC_NODE_INFO, &ni))
			continue;
		if (ni.free_pages > most) {
			most = ni.free_pages;
			best = n;
		}
	}
	close(fd);
	return best;
}

int main(void)
{
	uint64_t lib[REPS], raw[REPS];
	struct hpm_init_opts o;
	struct span s = { 0 };
	char bdf[64], opts[160];
	int gid, gfd = -1, cfd, node, ret;

	if (edu_find(bdf, sizeof(bdf), NULL) || (gid = group_of(bdf)) < 0 ||
	    access("/dev/vfio/vfio", F_OK)) {
		printf("# vfio-map row skipped: no edu device in an IOMMU group with VFIO\n");
		return 0;
	}
	node = pick_node();
	hpm_init_opts_default(&o);
	snprintf(opts, sizeof(opts),
		 "--backend kmod --vfio --iova-mode compact --socket-mem %s%d",
		 node ? "0," : "", MAP_MIB);
	if (node > 1 || hpm_parse_string(&o, opts) || hpm_init(&o)) {
		printf("# vfio-map row skipped: cannot init %d MiB on node %d\n", MAP_MIB, node);
		return 0;
	}
	hpm_memseg_walk(span_cb, &s);
	cfd = raw_container(gid, &gfd);
	if (cfd < 0) {
		fprintf(stderr, "guest_vfio_bench: container for group %d: %s\n", gid,
			strerror(-cfd));
		hpm_cleanup();
		return 1;
	}
	/* Alternate the two ways so that drift hits both alike. */
	for (int r = 0; r < REPS; r++) {
		uint64_t t0 = now_ns();

		ret = hpm_vfio_container_adopt(cfd);
		lib[r] = now_ns() - t0;
		if (!ret)
			ret = hpm_vfio_container_destroy(cfd);
		if (ret)
			goto fail;
		t0 = now_ns();
		ret = map_per_page(cfd, &s);
		raw[r] = now_ns() - t0;
		if (ret || (ret = unmap_all(cfd, &s)))
			goto fail;
		printf("# rep %d: library %.3f ms, per-page %.3f ms (%llu MiB)\n", r,
		       lib[r] / 1e6, raw[r] / 1e6, (unsigned long long)(s.len >> 20));
	}
	qsort(lib, REPS, sizeof(lib[0]), cmp_u64);
	qsort(raw, REPS, sizeof(raw[0]), cmp_u64);
	printf("GBENCH guest/vfio-map-1G-vs-per-page %llu VFIO_IOMMU_MAP_DMA-per-2MiB %llu - -\n",
	       (unsigned long long)lib[REPS / 2], (unsigned long long)raw[REPS / 2]);
	close(gfd);
	close(cfd);
	hpm_cleanup();
	return 0;
fail:
	fprintf(stderr, "guest_vfio_bench: %s\n", strerror(ret < 0 ? -ret : ret));
	close(gfd);
	close(cfd);
	hpm_cleanup();
	return 1;
}
