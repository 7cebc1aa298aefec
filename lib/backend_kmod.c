// SPDX-License-Identifier: MIT
/*
 * kmod: a region of the hpmem module (/dev/hpmem). Pages come from the
 * module's per-node pools, in physical order within each grow, so
 * physically contiguous pages get consecutive offsets and therefore
 * consecutive VAs. The region is not persistent: it goes away with the
 * last file or mapping that uses it, so a crashed primary leaves nothing.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/hpmem.h>

#include "backend.h"
#include "dynmem.h"
#include "iommu.h"

struct kmod_info {
	uint64_t node_mask;
	uint64_t features;
	bool addrs;
};

static int dev_open(struct hpm_be *be, struct kmod_info *ki)
{
	struct hpmem_info info = { .argsz = sizeof(info) };
	int fd = open(HPMEM_DEVICE_PATH, O_RDWR | O_CLOEXEC);

	if (fd < 0) {
		int err = errno;

		hpm_log(HPM_LOG_ERR, "kmod: cannot open %s: %s%s", HPMEM_DEVICE_PATH,
			strerror(err), err == ENOENT ? " (is hpmem.ko loaded?)" : "");
		return err == ENOENT || err == ENXIO ? -ENODEV : -err;
	}
	if (ioctl(fd, HPMEM_IOC_INFO, &info)) {
		int err = errno;

		hpm_log(HPM_LOG_ERR, "kmod: HPMEM_IOC_INFO failed: %s (not an hpmem device?)",
			strerror(err));
		close(fd);
		return -ENODEV;
	}
	if (info.api_version != HPMEM_API_VERSION) {
		hpm_log(HPM_LOG_ERR, "kmod: module speaks API version %u, this library %u: "
			"load a matching hpmem.ko", info.api_version, HPMEM_API_VERSION);
		close(fd);
		return -EPROTO;
	}
	if (info.page_shift != HPMEM_PAGE_SHIFT) {
		hpm_log(HPM_LOG_ERR, "kmod: module uses %u-bit pages, library expects %u",
			info.page_shift, HPMEM_PAGE_SHIFT);
		close(fd);
		return -EPROTO;
	}
	if (!(info.features & HPMEM_FEAT_PMD_MAP))
		hpm_log(HPM_LOG_INFO, "kmod: module maps with 4 KiB entries (no PMD mapping)");
	be->fd = fd;
	be->page_shift = HPMEM_PAGE_SHIFT;
	be->page_sz = HPMEM_PAGE_SIZE;
	ki->node_mask = info.node_mask;
	ki->features = info.features;
	ki->addrs = info.caller & HPMEM_CALLER_ADDRS;
	be->addrs = ki->addrs;
	/* Older modules do not say; init.c then asks sysfs. */
	be->dma_model = info.features & HPMEM_FEAT_DMA_MODEL ? (int)info.dma_model :
			HPM_DMA_UNKNOWN;
	return 0;
}

static void kmod_detach(struct hpm_be *be)
{
	if (be->fd >= 0)
		close(be->fd);
	be->fd = -1;
}

/* Are the requested nodes pools of the module, with enough free pages? */
static int check_nodes(struct hpm_be *be, const struct kmod_info *ki,
		       const uint64_t bytes[HPM_MAX_NODES], bool quiet_free)
{
	for (int n = 0; n < HPM_MAX_NODES; n++) {
		struct hpmem_node_info ni = { .argsz = sizeof(ni), .node = (uint32_t)n };
		uint64_t need = HPM_ALIGN_UP(bytes[n], HPMEM_PAGE_SIZE) >> HPMEM_PAGE_SHIFT;

		if (!need)
			continue;
		if (!(ki->node_mask & (1ULL << n))) {
			hpm_log(HPM_LOG_ERR, "kmod: node %d has no hpmem pool", n);
			return -ENODEV;
		}
		if (ioctl(be->fd, HPMEM_IOC_NODE_INFO, &ni))
			return -errno;
		if (ni.free_pages < need) {
			if (!quiet_free)
				hpm_log(HPM_LOG_ERR, "kmod: node %d: %llu pages needed, %llu free "
					"in its pool (grow it with hpmemctl or sysfs)", n,
					(unsigned long long)need,
					(unsigned long long)ni.free_pages);
			return -ENOMEM;
		}
	}
	return 0;
}

static uint64_t kmod_supply(struct hpm_be *be, int node)
{
	struct hpmem_node_info ni = { .argsz = sizeof(ni), .node = (uint32_t)node };

	if (ioctl(be->fd, HPMEM_IOC_NODE_INFO, &ni))
		return 0;	/* not a node with a pool */
	return ni.total_pages << HPMEM_PAGE_SHIFT;
}

static int kmod_probe(struct hpm_be *be, const uint64_t bytes[HPM_MAX_NODES])
{
	struct kmod_info ki;
	int ret = dev_open(be, &ki);

	if (ret)
		return ret;
	ret = check_nodes(be, &ki, bytes, true);
	kmod_detach(be);
	return ret;
}

/*
 * VFIO type1 pins with get_user_pages(), which only PINNABLE regions (4 KiB
 * refcounted PTEs) allow; default regions map 2 MiB PMDs, cheaper for the
 * TLB. Pinnable when asked (--vfio) or when the IOMMU translates, since
 * then VFIO is the only way a device reaches the memory.
 */
static int pick_pinnable(struct hpm_be *be, const struct kmod_info *ki, uint32_t *flags)
{
	bool asked = be->opts && (be->opts->flags & HPM_INIT_F_VFIO);
	enum hpm_dma_model dma = be->dma_model;

	if (!asked && dma == HPM_DMA_UNKNOWN)
		dma = hpm_iommu_dma_model(HPM_SYSFS_ROOT);
	if (!asked && dma != HPM_DMA_TRANSLATED)
		return 0;
	if (!(ki->features & HPMEM_FEAT_PINNABLE)) {
		if (asked) {
			hpm_log(HPM_LOG_ERR, "kmod: --vfio needs pinnable regions, which this "
				"hpmem.ko does not offer: load a newer module");
			return -ENOTSUP;
		}
		hpm_log(HPM_LOG_WARN, "kmod: the IOMMU translates DMA, but this hpmem.ko "
			"cannot make pinnable regions: VFIO will refuse the memory");
		return 0;
	}
	*flags |= HPMEM_REGION_PINNABLE;
	be->pinnable = true;
	/* The TLB cost is real (docs/IOVA.md): say where 2 MiB entries are. */
	hpm_log(HPM_LOG_INFO, "kmod: region '%s' pinnable (4 KiB PTEs) for VFIO: %s; "
		"the hugetlbfs backend keeps 2 MiB entries with VFIO", be->name,
		asked ? "--vfio asked" : "the IOMMU translates DMA");
	return 0;
}

/* Dynamic regions: pages of @node into the holes at [off, off + len). */
static int kmod_grow(struct hpm_be *be, uint64_t off, uint64_t len, int node)
{
	struct hpmem_region_grow g = {
		.argsz = sizeof(g),
		.flags = HPMEM_GROW_AT,
		.node = (uint32_t)node,
		.nr_pages = len >> HPMEM_PAGE_SHIFT,
		.offset = off,
	};

	if (ioctl(be->fd, HPMEM_IOC_REGION_GROW, &g)) {
		int err = errno;

		hpm_log(err == ENOMEM ? HPM_LOG_DEBUG : HPM_LOG_ERR,
			"kmod: cannot add %llu pages of node %d at offset 0x%llx: %s",
			(unsigned long long)g.nr_pages, node, (unsigned long long)off,
			strerror(err));
		return err == ENOSPC ? -ENOMEM : -err;
	}
	return 0;
}

/* Back to the pool, out of every process's mapping; -EBUSY while DMA-pinned. */
static int kmod_release(struct hpm_be *be, uint64_t off, uint64_t len)
{
	struct hpmem_region_release r = {
		.argsz = sizeof(r),
		.offset = off,
		.nr_pages = len >> HPMEM_PAGE_SHIFT,
	};

	return ioctl(be->fd, HPMEM_IOC_REGION_RELEASE, &r) ? -errno : 0;
}

/*
 * The page at offset @off from the module's table (present pages only, in
 * physical order for callers who see addresses: a full look each time;
 * growth is rare next to allocation).
 */
static int kmod_page_info(struct hpm_be *be, void *va, uint64_t off, int node,
			  struct hpm_be_seg *out)
{
	struct hpmem_region_segs rs = { .argsz = sizeof(rs) };
	struct hpmem_seg *ks = NULL;
	int ret = -ENOENT;

	(void)va;
	if (ioctl(be->fd, HPMEM_IOC_REGION_SEGS, &rs))
		return -errno;
	ks = calloc(rs.nr_segs ? rs.nr_segs : 1, sizeof(*ks));
	if (!ks)
		return -ENOMEM;
	rs.segs = (uintptr_t)ks;
	if (ioctl(be->fd, HPMEM_IOC_REGION_SEGS, &rs)) {
		ret = -errno;
		goto out;
	}
	for (uint32_t i = 0; i < rs.nr_segs; i++) {
		if (ks[i].offset != off)
			continue;
		if ((int)ks[i].node != node) {
			hpm_log(HPM_LOG_ERR, "kmod: page at offset 0x%llx is on node %u, not %d",
				(unsigned long long)off, ks[i].node, node);
			ret = -EPROTO;
			goto out;
		}
		out->offset = off;
		out->iova = be->addrs && ks[i].phys ? ks[i].phys : HPM_BAD_IOVA;
		out->node = node;
		out->hole = false;
		ret = 0;
		break;
	}
out:
	free(ks);
	return ret;
}

static int kmod_create(struct hpm_be *be, const uint64_t bytes[HPM_MAX_NODES])
{
	struct hpmem_region_create rc = { .argsz = sizeof(rc) };
	struct kmod_info ki;
	int ret = dev_open(be, &ki);

	if (ret)
		return ret;
	/* Checked up front for a clear message; GROW still decides. */
	ret = check_nodes(be, &ki, bytes, false);
	if (ret)
		goto fail;
	ret = pick_pinnable(be, &ki, &rc.flags);
	if (ret)
		goto fail;
	snprintf(rc.name, sizeof(rc.name), "%s", be->name);
	if (be->sparse && !(ki.features & HPMEM_FEAT_SPARSE)) {
		if (!be->limit_default) {
			hpm_log(HPM_LOG_ERR, "kmod: this hpmem.ko has no sparse regions: "
				"dynamic memory (--socket-limit) needs a newer module, or use "
				"--legacy-mem");
			ret = -ENOTSUP;
			goto fail;
		}
		/* Dynamic only by default: an older module keeps it fixed. */
		hpm_log(HPM_LOG_INFO, "kmod: this hpmem.ko has no sparse regions: "
			"--socket-mem stays fixed");
		be->sparse = false;
	}
	if (be->sparse) {
		be->max_size = (uint64_t)HPMEM_REGION_MAX_PAGES << HPMEM_PAGE_SHIFT;
		ret = hpm_dyn_plan(be);
		if (ret)
			goto fail;
		rc.max_pages = be->size >> HPMEM_PAGE_SHIFT;
	}
	if (ioctl(be->fd, HPMEM_IOC_REGION_CREATE, &rc)) {
		ret = -errno;
		if (ret != -EEXIST)
			hpm_log(HPM_LOG_ERR, "kmod: cannot create region '%s': %s", be->name,
				strerror(errno));
		goto fail;
	}
	if (be->sparse) {
		/* The config pages, then each node's floor at its slice. */
		ret = kmod_grow(be, 0, be->cfg_bytes, be->cfg_node);
		for (int n = 0; n < HPM_MAX_NODES && !ret; n++)
			if (be->floor[n])
				ret = kmod_grow(be, be->slice_off[n], be->floor[n], n);
		if (ret)
			goto fail;
		return 0;
	}
	be->size = 0;
	for (int n = 0; n < HPM_MAX_NODES; n++) {
		struct hpmem_region_grow g = { .argsz = sizeof(g), .node = (uint32_t)n };

		g.nr_pages = HPM_ALIGN_UP(bytes[n], HPMEM_PAGE_SIZE) >> HPMEM_PAGE_SHIFT;
		if (!g.nr_pages)
			continue;
		if (ioctl(be->fd, HPMEM_IOC_REGION_GROW, &g)) {
			ret = -errno;
			hpm_log(HPM_LOG_ERR, "kmod: cannot add %llu pages of node %d: %s",
				(unsigned long long)g.nr_pages, n, strerror(errno));
			goto fail;	/* closing the file frees the region */
		}
		if (g.offset != be->size) {
			hpm_log(HPM_LOG_ERR, "kmod: node %d pages at offset %llu, expected %llu",
				n, (unsigned long long)g.offset, (unsigned long long)be->size);
			ret = -EPROTO;
			goto fail;
		}
		be->node_bytes[n] = g.nr_pages << HPMEM_PAGE_SHIFT;
		be->size += be->node_bytes[n];
	}
	return 0;
fail:
	kmod_detach(be);
	return ret;
}

static int kmod_attach(struct hpm_be *be)
{
	struct hpmem_region_attach at = { .argsz = sizeof(at) };
	struct kmod_info ki;
	int ret = dev_open(be, &ki);

	if (ret)
		return ret;
	snprintf(at.name, sizeof(at.name), "%s", be->name);
	if (ioctl(be->fd, HPMEM_IOC_REGION_ATTACH, &at)) {
		ret = -errno;
		if (ret == -ENOENT)
			hpm_log(HPM_LOG_ERR, "kmod: no region '%s'", be->name);
		else
			hpm_log(HPM_LOG_ERR, "kmod: cannot attach region '%s': %s", be->name,
				strerror(errno));
		kmod_detach(be);
		return ret;
	}
	be->size = at.nr_pages << HPMEM_PAGE_SHIFT;
	/* A sparse region is mapped whole, holes included. */
	if (ki.features & HPMEM_FEAT_SPARSE && at.max_pages)
		be->size = at.max_pages << HPMEM_PAGE_SHIFT;
	return 0;
}

static int kmod_map(struct hpm_be *be, void *addr, size_t len, uint64_t off,
		    enum hpm_map_how how, void **out)
{
	int ret = hpm_mmap_how(addr, len, PROT_READ | PROT_WRITE, MAP_SHARED, be->fd,
			       (off_t)off, how, out);

	/* Holes of a dynamic region would SIGBUS: pages fault in on first use. */
	if (ret || !be->primary || be->sparse)
		return ret;
	/*
	 * MAP_POPULATE skips PFN mappings; fault every page in now (one PMD
	 * fault each) so the first allocations do not pay for it.
	 */
	for (size_t off = 0; off < len; off += HPMEM_PAGE_SIZE)
		(void)*(volatile char *)((char *)*out + off);
	return 0;
}

static int kmod_segs(struct hpm_be *be, void *base, struct hpm_be_seg *segs, size_t n)
{
	struct hpmem_region_segs rs = { .argsz = sizeof(rs) };
	struct hpmem_seg *ks;
	int ret = 0;

	(void)base;
	ks = calloc(n, sizeof(*ks));
	if (!ks)
		return -ENOMEM;
	rs.nr_segs = (uint32_t)n;
	rs.segs = (uintptr_t)ks;
	if (ioctl(be->fd, HPMEM_IOC_REGION_SEGS, &rs)) {
		ret = -errno;
		goto out;
	}
	if (rs.nr_segs != n) {
		hpm_log(HPM_LOG_ERR, "kmod: region has %u pages, expected %zu", rs.nr_segs, n);
		ret = -EPROTO;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		segs[i].offset = ks[i].offset;
		segs[i].node = (int)ks[i].node;
		/*
		 * @phys, not @iova: the module reports iova 0 while an IOMMU
		 * translates, yet PA mode still maps iova = phys into the
		 * library's VFIO containers. Both are 0 when hidden.
		 */
		segs[i].iova = be->addrs ? ks[i].phys : HPM_BAD_IOVA;
		if (segs[i].node < 0 || segs[i].node >= HPM_MAX_NODES) {
			ret = -EPROTO;
			goto out;
		}
	}
out:
	free(ks);
	return ret;
}

/*
 * Nothing to remove: the region is not persistent and goes away when the
 * last file or mapping (ours or a secondary's) is closed.
 */
static void kmod_destroy(struct hpm_be *be)
{
	(void)be;
}

const struct hpm_be_ops hpm_be_kmod_ops = {
	.type = HPM_BACKEND_KMOD,
	.name = "kmod",
	.probe = kmod_probe,
	.create = kmod_create,
	.attach = kmod_attach,
	.map = kmod_map,
	.segs = kmod_segs,
	.grow = kmod_grow,
	.release = kmod_release,
	.page_info = kmod_page_info,
	.supply = kmod_supply,
	.detach = kmod_detach,
	.destroy = kmod_destroy,
};
