// SPDX-License-Identifier: MIT
/*
 * VFIO type1 containers: bind devices' IOMMU groups, DMA-map the library's
 * memory at the IOVAs it reports, and unmap it at hpm_cleanup().
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/capability.h>
#include <linux/vfio.h>

#include <hpmem/mem_event.h>
#include <hpmem/vfio.h>

#include "config.h"
#include "internal.h"
#include "iommu.h"
#include "options.h"

#define VFIO_CONTAINER_PATH	"/dev/vfio/vfio"
/* Groups per container, external mappings per container, usable ranges. */
#define VFIO_MAX_GROUPS		16
#define VFIO_MAX_EXT_MAPS	64
#define VFIO_MAX_RANGES		32
/* type1 maps at least the IOMMU's smallest page, 4 KiB on x86. */
#define VFIO_MAP_ALIGN		4096ULL

struct vgroup {
	int id;			/* /dev/vfio/<id> */
	int fd;
	unsigned int ndev;	/* devices opened through the library */
};

struct extmap {
	uint64_t vaddr, iova, len;
};

struct vcontainer {
	bool used;
	pid_t pid;		/* the process that tracks it (see vfio_enter()) */
	bool owned;		/* created by the library: it closes it */
	bool iommu_set;		/* a group is bound and the type is set */
	bool mem_mapped;	/* the library's memory is mapped in it */
	bool ranges_known;
	int fd;
	uint32_t type;		/* VFIO_TYPE1v2_IOMMU or VFIO_TYPE1_IOMMU */
	unsigned int nr_groups;
	unsigned int nr_ext;
	size_t nr_ranges;
	struct vgroup groups[VFIO_MAX_GROUPS];
	struct extmap ext[VFIO_MAX_EXT_MAPS];
	struct hpm_iova_range ranges[VFIO_MAX_RANGES];
};

/*
 * One lock for the table and every ioctl on tracked containers: setup is
 * rare, and the lock also orders mapping against hpm_cleanup()'s unmap.
 * @mem_valid says hpm_cfg may be read; it changes only under the lock, set
 * after hpm_init() filled hpm_cfg and cleared before hpm_cleanup() drops it.
 */
static pthread_mutex_t vfio_lock = PTHREAD_MUTEX_INITIALIZER;
static struct vcontainer conts[HPM_VFIO_MAX_CONTAINERS];
static int default_idx = -1;
static bool mem_valid;
/*
 * Dynamic regions: page i is mapped, in every container holding the
 * library's memory, at pg_iova[i] (HPM_BAD_IOVA: not mapped). It follows
 * this process's memory events, not the shared table: a page another
 * process released stays mapped (and pinned, so never reused) here until
 * this process hears of it, and its unmap then needs the old IOVA, which
 * the table no longer has. Pages are mapped one by one, so that type1v2,
 * which refuses to split a mapping, lets any single page be unmapped.
 */
static uint64_t *pg_iova;
static uint32_t pg_n;

static unsigned int cont_devices(const struct vcontainer *c)
{
	unsigned int n = 0;

	for (unsigned int i = 0; i < c->nr_groups; i++)
		n += c->groups[i].ndev;
	return n;
}

static struct vcontainer *cont_find(int fd)
{
	if (fd == HPM_VFIO_DEFAULT_CONTAINER)
		return default_idx >= 0 ? &conts[default_idx] : NULL;
	for (int i = 0; i < HPM_VFIO_MAX_CONTAINERS; i++)
		if (conts[i].used && conts[i].fd == fd)
			return &conts[i];
	return NULL;
}

static struct vcontainer *cont_track(int fd, bool owned, uint32_t type)
{
	for (int i = 0; i < HPM_VFIO_MAX_CONTAINERS; i++) {
		struct vcontainer *c = &conts[i];

		if (c->used)
			continue;
		memset(c, 0, sizeof(*c));
		c->used = true;
		c->pid = getpid();
		c->fd = fd;
		c->owned = owned;
		c->type = type;
		return c;
	}
	return NULL;
}

static void cont_forget(struct vcontainer *c)
{
	if (c->owned)
		close(c->fd);
	if (default_idx >= 0 && c == &conts[default_idx])
		default_idx = -1;
	memset(c, 0, sizeof(*c));
}

/*
 * Takes the lock, first forgetting containers a forked child inherited.
 * Their fds still reach the parent's containers, and type1 lets any holder
 * unmap: a child's hpm_cleanup() would pull the parent's memory out from
 * under its devices. The child neither unmaps nor closes them (it may
 * drive the parent's device through inherited fds); they are the parent's.
 */
static void vfio_enter(void)
{
	pid_t self = getpid();

	pthread_mutex_lock(&vfio_lock);
	for (int i = 0; i < HPM_VFIO_MAX_CONTAINERS; i++) {
		struct vcontainer *c = &conts[i];

		if (!c->used || c->pid == self)
			continue;
		if (default_idx == i)
			default_idx = -1;
		memset(c, 0, sizeof(*c));
	}
}

/* The last group left: type1 released the IOMMU and every mapping with it. */
static void cont_emptied(struct vcontainer *c)
{
	c->iommu_set = false;
	c->mem_mapped = false;
	c->ranges_known = false;
	c->nr_ranges = 0;
	c->nr_ext = 0;
}

/* ---- the library's memory, as runs contiguous in VA and IOVA ---- */

typedef int (*run_fn)(struct vcontainer *c, uint64_t va, uint64_t iova, uint64_t len,
		      unsigned int *arg);

/*
 * VA and COMPACT make the whole region one run; PA makes one per
 * physically contiguous stretch. Stops at the first non-zero return.
 */
static int mem_runs(struct vcontainer *c, run_fn fn, unsigned int *arg)
{
	const struct hpm_config *cfg = hpm_cfg;
	uint32_t i = 0;

	if (pg_iova) {
		for (i = 0; i < pg_n; i++) {
			int ret;

			if (pg_iova[i] == HPM_BAD_IOVA)
				continue;
			ret = fn(c, cfg->base + ((uint64_t)i << cfg->page_shift), pg_iova[i],
				 cfg->page_sz, arg);
			if (ret)
				return ret;
		}
		return 0;
	}

	while (i < cfg->nr_memsegs) {
		const struct hpm_memseg *first = &cfg->memsegs[i];
		uint64_t len = first->len;
		int ret;

		if (first->iova == HPM_BAD_IOVA)
			return -EINVAL;
		for (i++; i < cfg->nr_memsegs &&
		     cfg->memsegs[i].iova == first->iova + len; i++)
			len += cfg->memsegs[i].len;
		ret = fn(c, (uintptr_t)first->addr, first->iova, len, arg);
		if (ret)
			return ret;
	}
	return 0;
}

static const char *mode_name(void)
{
	return hpm_iova_mode_name((enum hpm_iova_mode)hpm_cfg->iova_mode);
}

static void ranges_str(const struct vcontainer *c, char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < c->nr_ranges && i < 3 && off < len; i++)
		off += (size_t)snprintf(buf + off, len - off, "%s0x%llx-0x%llx", i ? ", " : "",
					(unsigned long long)c->ranges[i].start,
					(unsigned long long)c->ranges[i].end);
	if (c->nr_ranges > 3 && off < len)
		snprintf(buf + off, len - off, ", ...");
}

static int run_check(struct vcontainer *c, uint64_t va, uint64_t iova, uint64_t len,
		     unsigned int *unused)
{
	char usable[160];

	(void)va;
	(void)unused;
	if (!hpm_iova_range_check(c->ranges, c->nr_ranges, iova, len))
		return 0;
	ranges_str(c, usable, sizeof(usable));
	hpm_log(HPM_LOG_ERR, "vfio: IOVA range 0x%llx-0x%llx (iova-mode %s) is outside the "
		"IOMMU's usable ranges (%s): %s", (unsigned long long)iova,
		(unsigned long long)(iova + len - 1), mode_name(), usable,
		hpm_cfg->iova_mode == HPM_IOVA_COMPACT ?
		"the region is larger than the IOMMU can address, make it smaller" :
		"use --iova-mode compact");
	return -ERANGE;
}

static int dma_map(int fd, uint64_t va, uint64_t iova, uint64_t len)
{
	struct vfio_iommu_type1_dma_map m = {
		.argsz = sizeof(m),
		.flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
		.vaddr = va,
		.iova = iova,
		.size = len,
	};

	return ioctl(fd, VFIO_IOMMU_MAP_DMA, &m) ? -errno : 0;
}

static int dma_unmap(int fd, uint64_t iova, uint64_t len)
{
	struct vfio_iommu_type1_dma_unmap u = {
		.argsz = sizeof(u),
		.iova = iova,
		.size = len,
	};

	return ioctl(fd, VFIO_IOMMU_UNMAP_DMA, &u) ? -errno : 0;
}

static void memlock_log(uint64_t need)
{
	hpm_log(HPM_LOG_ERR, "vfio: pinning %llu MiB exceeds RLIMIT_MEMLOCK (memlock): raise "
		"it (ulimit -l, limits.conf) or grant CAP_IPC_LOCK",
		(unsigned long long)(need >> 20));
}

/* @done counts the runs mapped, for the undo. */
static int run_map(struct vcontainer *c, uint64_t va, uint64_t iova, uint64_t len,
		   unsigned int *done)
{
	int ret = dma_map(c->fd, va, iova, len);

	if (!ret)
		(*done)++;
	else if (ret == -ENOMEM)
		memlock_log(hpm_cfg->size);
	else if (ret)
		hpm_log(HPM_LOG_ERR, "vfio: cannot map 0x%llx bytes at IOVA 0x%llx: %s",
			(unsigned long long)len, (unsigned long long)iova, strerror(-ret));
	return ret;
}

/* Unmaps the first *@left runs (all of them with UINT_MAX). */
static int run_unmap(struct vcontainer *c, uint64_t va, uint64_t iova, uint64_t len,
		     unsigned int *left)
{
	int ret;

	(void)va;
	if (!*left)
		return 1;
	(*left)--;
	ret = dma_unmap(c->fd, iova, len);
	if (ret)
		hpm_log(HPM_LOG_WARN, "vfio: cannot unmap IOVA 0x%llx+0x%llx: %s",
			(unsigned long long)iova, (unsigned long long)len, strerror(-ret));
	return 0;
}

static void unmap_runs(struct vcontainer *c, unsigned int n)
{
	mem_runs(c, run_unmap, &n);
}

/* Usable IOVA ranges from VFIO_IOMMU_GET_INFO's capability chain. */
static int get_ranges(struct vcontainer *c)
{
	size_t sz = sizeof(struct vfio_iommu_type1_info);
	struct vfio_iommu_type1_info *info = NULL;
	uint32_t off;

	for (int tries = 0; tries < 2; tries++) {
		free(info);
		info = calloc(1, sz);
		if (!info)
			return -ENOMEM;
		info->argsz = (uint32_t)sz;
		if (ioctl(c->fd, VFIO_IOMMU_GET_INFO, info)) {
			int err = errno;

			free(info);
			hpm_log(HPM_LOG_ERR, "vfio: VFIO_IOMMU_GET_INFO: %s (no group bound or "
				"no IOMMU type set?)", strerror(err));
			return -err;
		}
		/* The kernel says how much room the capabilities need. */
		if (info->argsz <= sz || info->argsz > 65536)
			break;
		sz = info->argsz;
	}
	c->nr_ranges = 0;
	off = info->flags & VFIO_IOMMU_INFO_CAPS ? info->cap_offset : 0;
	while (off && off + sizeof(struct vfio_info_cap_header) <= sz) {
		struct vfio_info_cap_header *h = (void *)((char *)info + off);

		if (h->id == VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE &&
		    off + sizeof(struct vfio_iommu_type1_info_cap_iova_range) <= sz) {
			struct vfio_iommu_type1_info_cap_iova_range *r = (void *)h;
			size_t n = r->nr_iovas;

			if (off + sizeof(*r) + n * sizeof(r->iova_ranges[0]) > sz)
				break;
			if (n > VFIO_MAX_RANGES) {
				hpm_log(HPM_LOG_WARN, "vfio: %zu usable IOVA ranges, using the "
					"first %d", n, VFIO_MAX_RANGES);
				n = VFIO_MAX_RANGES;
			}
			for (size_t i = 0; i < n; i++) {
				c->ranges[i].start = r->iova_ranges[i].start;
				c->ranges[i].end = r->iova_ranges[i].end;
			}
			c->nr_ranges = n;
		}
		/* Forward only: a malformed chain cannot loop. */
		if (h->next <= off)
			break;
		off = h->next;
	}
	free(info);
	c->ranges_known = true;
	return 0;
}

static bool has_cap_ipc_lock(void)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3];

	memset(d, 0, sizeof(d));
	if (syscall(SYS_capget, &h, d))
		return false;
	return d[CAP_IPC_LOCK / 32].effective & (1U << (CAP_IPC_LOCK % 32));
}

/*
 * type1 charges every pinned page to this process's locked_vm, once per
 * container: mapping into N containers pins the region N times.
 */
static int memlock_check(void)
{
	uint64_t size = hpm_cfg->size, need;
	struct rlimit rl;

	/* Dynamic: what is there now; growth may fail to pin later (logged). */
	if (pg_iova) {
		size = 0;
		for (uint32_t i = 0; i < pg_n; i++)
			size += pg_iova[i] != HPM_BAD_IOVA ? hpm_cfg->page_sz : 0;
	}
	need = size;
	for (int i = 0; i < HPM_VFIO_MAX_CONTAINERS; i++)
		if (conts[i].used && conts[i].mem_mapped)
			need += size;
	if (getrlimit(RLIMIT_MEMLOCK, &rl) || rl.rlim_cur == RLIM_INFINITY ||
	    rl.rlim_cur >= need || has_cap_ipc_lock())
		return 0;
	memlock_log(need);
	return -ENOMEM;
}

static int pinnable_check(void)
{
	if (hpm_cfg->flags & HPM_CFG_F_PINNABLE)
		return 0;
	hpm_log(HPM_LOG_ERR, "vfio: region '%s' is not pinnable (kmod maps it with 2 MiB "
		"entries): start its primary with --vfio", hpm_cfg->region);
	return -ENOTSUP;
}

/* Map all of the library's memory into @c, all or nothing. */
static int mem_map(struct vcontainer *c)
{
	unsigned int done = 0;
	int ret;

	if (!mem_valid || c->mem_mapped)
		return 0;
	ret = pinnable_check();
	if (ret)
		return ret;
	if (!c->ranges_known) {
		ret = get_ranges(c);
		if (ret)
			return ret;
	}
	ret = mem_runs(c, run_check, NULL);
	if (ret)
		return ret;
	ret = memlock_check();
	if (ret)
		return ret;
	ret = mem_runs(c, run_map, &done);
	if (ret) {
		unmap_runs(c, done);
		return ret;
	}
	c->mem_mapped = true;
	hpm_log(HPM_LOG_INFO, "vfio: container %d: %llu MiB mapped at IOVA 0x%llx (iova-mode "
		"%s)", c->fd, (unsigned long long)(hpm_cfg->size >> 20),
		(unsigned long long)hpm_cfg->memsegs[0].iova, mode_name());
	return 0;
}

static void mem_unmap(struct vcontainer *c)
{
	if (!c->mem_mapped)
		return;
	unmap_runs(c, UINT_MAX);
	c->mem_mapped = false;
}

/* Dynamic regions: the pages present now are the ones to map. */
static void pg_track(void)
{
	const struct hpm_config *cfg = hpm_cfg;

	free(pg_iova);
	pg_iova = NULL;
	pg_n = 0;
	if (!(cfg->flags & HPM_CFG_F_DYNAMIC))
		return;
	pg_iova = malloc(cfg->nr_memsegs * sizeof(*pg_iova));
	if (!pg_iova) {
		hpm_log(HPM_LOG_ERR, "vfio: no memory to track the region's pages");
		return;
	}
	pg_n = cfg->nr_memsegs;
	for (uint32_t i = 0; i < pg_n; i++) {
		const struct hpm_memseg *ms = &cfg->memsegs[i];

		/* Acquire: pairs with dynmem.c's release store of the flags. */
		pg_iova[i] = __atomic_load_n(&ms->flags, __ATOMIC_ACQUIRE) & HPM_MEMSEG_F_HOLE ?
			     HPM_BAD_IOVA : ms->iova;
	}
}

void hpm_vfio_mem_event(int type, const void *addr, size_t len)
{
	const struct hpm_config *cfg;
	uint32_t first, n;

	vfio_enter();
	cfg = hpm_cfg;
	if (!mem_valid || !pg_iova || !cfg)
		goto out;
	first = (uint32_t)(((uintptr_t)addr - cfg->base) >> cfg->page_shift);
	n = (uint32_t)(len >> cfg->page_shift);
	for (uint32_t i = first; i < first + n && i < pg_n; i++) {
		uint64_t va = cfg->base + ((uint64_t)i << cfg->page_shift);
		uint64_t iova = type == HPM_MEM_EVENT_ALLOC ? cfg->memsegs[i].iova : pg_iova[i];

		if (iova == HPM_BAD_IOVA || (type == HPM_MEM_EVENT_ALLOC && pg_iova[i] == iova))
			continue;
		for (int k = 0; k < HPM_VFIO_MAX_CONTAINERS; k++) {
			struct vcontainer *c = &conts[k];
			int ret;

			if (!c->used || !c->mem_mapped)
				continue;
			ret = type == HPM_MEM_EVENT_ALLOC ? dma_map(c->fd, va, iova, cfg->page_sz) :
			      dma_unmap(c->fd, iova, cfg->page_sz);
			if (ret && ret != -EEXIST)
				hpm_log(HPM_LOG_ERR, "vfio: container %d: cannot %smap page at "
					"IOVA 0x%llx: %s", c->fd,
					type == HPM_MEM_EVENT_ALLOC ? "" : "un",
					(unsigned long long)iova, strerror(-ret));
		}
		pg_iova[i] = type == HPM_MEM_EVENT_ALLOC ? iova : HPM_BAD_IOVA;
	}
out:
	pthread_mutex_unlock(&vfio_lock);
}

void hpm_vfio_mem_attach(void)
{
	vfio_enter();
	pg_track();
	mem_valid = true;
	for (int i = 0; i < HPM_VFIO_MAX_CONTAINERS; i++)
		if (conts[i].used && conts[i].iommu_set)
			mem_map(&conts[i]);	/* logs why it failed */
	pthread_mutex_unlock(&vfio_lock);
}

/*
 * Device fds and groups stay: they belong to the application, which may
 * still be stopping its device, and a DMA to the old IOVAs must fault, not
 * reach memory that is about to be reused. A container the library created
 * stays open while a device of it is open (hpm_vfio_release_device() closes
 * it after the last one); adopted containers are the caller's.
 */
void hpm_vfio_mem_detach(void)
{
	vfio_enter();
	for (int i = 0; i < HPM_VFIO_MAX_CONTAINERS; i++) {
		struct vcontainer *c = &conts[i];

		if (!c->used)
			continue;
		mem_unmap(c);
		if (!cont_devices(c))
			cont_forget(c);
	}
	mem_valid = false;
	free(pg_iova);
	pg_iova = NULL;
	pg_n = 0;
	pthread_mutex_unlock(&vfio_lock);
}

/* ---- containers ---- */

static int container_open(uint32_t *type)
{
	int fd = open(VFIO_CONTAINER_PATH, O_RDWR | O_CLOEXEC), ret;

	if (fd < 0) {
		int err = errno;

		hpm_log(HPM_LOG_ERR, "vfio: cannot open %s: %s%s", VFIO_CONTAINER_PATH,
			strerror(err), err == ENOENT ? " (modprobe vfio-pci)" : "");
		return err == ENOENT || err == ENXIO ? -ENODEV : -err;
	}
	ret = ioctl(fd, VFIO_GET_API_VERSION);
	if (ret != VFIO_API_VERSION) {
		hpm_log(HPM_LOG_ERR, "vfio: API version %d, expected %d", ret, VFIO_API_VERSION);
		close(fd);
		return -ENODEV;
	}
	/* v2 unmaps exactly what was mapped and pins by the IOMMU's pages. */
	if (ioctl(fd, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU) > 0) {
		*type = VFIO_TYPE1v2_IOMMU;
	} else if (ioctl(fd, VFIO_CHECK_EXTENSION, VFIO_TYPE1_IOMMU) > 0) {
		*type = VFIO_TYPE1_IOMMU;
	} else {
		hpm_log(HPM_LOG_ERR, "vfio: no type1 IOMMU support (is the IOMMU on? "
			"intel_iommu=on, modprobe vfio_iommu_type1)");
		close(fd);
		return -ENODEV;
	}
	return fd;
}

static int container_new(struct vcontainer **out)
{
	struct vcontainer *c;
	uint32_t type = 0;
	int fd = container_open(&type);

	if (fd < 0)
		return fd;
	c = cont_track(fd, true, type);
	if (!c) {
		close(fd);
		hpm_log(HPM_LOG_ERR, "vfio: %d containers tracked already",
			HPM_VFIO_MAX_CONTAINERS);
		return -ENOSPC;
	}
	*out = c;
	return fd;
}

__hpm_export int hpm_vfio_container_create(void)
{
	struct vcontainer *c;
	int ret;

	vfio_enter();
	ret = container_new(&c);
	pthread_mutex_unlock(&vfio_lock);
	return ret < 0 ? hpm_fail(-ret) : ret;
}

__hpm_export int hpm_vfio_default_container(void)
{
	int fd;

	vfio_enter();
	fd = default_idx >= 0 ? conts[default_idx].fd : -1;
	pthread_mutex_unlock(&vfio_lock);
	return fd;
}

__hpm_export int hpm_vfio_container_adopt(int container_fd)
{
	struct vcontainer *c;
	int ret;

	if (container_fd < 0)
		return hpm_fail(EINVAL);
	vfio_enter();
	if (!mem_valid) {
		hpm_log(HPM_LOG_ERR, "vfio: adopt: call hpm_init() first");
		ret = -EINVAL;
		goto out;
	}
	if (cont_find(container_fd)) {
		ret = -EEXIST;
		goto out;
	}
	if (ioctl(container_fd, VFIO_GET_API_VERSION) != VFIO_API_VERSION) {
		hpm_log(HPM_LOG_ERR, "vfio: adopt: fd %d is not a VFIO container", container_fd);
		ret = -EINVAL;
		goto out;
	}
	c = cont_track(container_fd, false, 0);
	if (!c) {
		ret = -ENOSPC;
		goto out;
	}
	/* The caller bound a group and set the type: GET_INFO works or says so. */
	c->iommu_set = true;
	ret = mem_map(c);
	if (ret)
		cont_forget(c);
out:
	pthread_mutex_unlock(&vfio_lock);
	return ret ? hpm_fail(-ret) : 0;
}

static void ext_unmap_all(struct vcontainer *c)
{
	for (unsigned int i = 0; i < c->nr_ext; i++)
		dma_unmap(c->fd, c->ext[i].iova, c->ext[i].len);
	c->nr_ext = 0;
}

__hpm_export int hpm_vfio_container_destroy(int container_fd)
{
	struct vcontainer *c;
	int ret = 0;

	vfio_enter();
	c = cont_find(container_fd);
	if (!c) {
		ret = -ENOENT;
	} else if (cont_devices(c)) {
		hpm_log(HPM_LOG_ERR, "vfio: container %d still has %u devices open "
			"(hpm_vfio_release_device() them first)", c->fd, cont_devices(c));
		ret = -EBUSY;
	} else {
		if (c->iommu_set) {
			mem_unmap(c);
			ext_unmap_all(c);
		}
		cont_forget(c);
	}
	pthread_mutex_unlock(&vfio_lock);
	return ret ? hpm_fail(-ret) : 0;
}

/* ---- devices and groups ---- */

static bool bdf_ok(const char *bdf)
{
	size_t len = bdf ? strlen(bdf) : 0;

	return len > 0 && len < 32 && !strchr(bdf, '/') && strcmp(bdf, ".") &&
	       strcmp(bdf, "..");
}

/* Basename of the symlink /sys/bus/pci/devices/@bdf/@what; 0 or -errno. */
static int dev_link(const char *bdf, const char *what, char *out, size_t len)
{
	char path[PATH_MAX], target[PATH_MAX];
	const char *base;
	ssize_t n;

	snprintf(path, sizeof(path), "%s/bus/pci/devices/%s/%s", HPM_SYSFS_ROOT, bdf, what);
	n = readlink(path, target, sizeof(target) - 1);
	if (n < 0)
		return -errno;
	target[n] = '\0';
	base = strrchr(target, '/');
	base = base ? base + 1 : target;
	if (strlen(base) >= len)
		return -ENAMETOOLONG;
	memcpy(out, base, strlen(base) + 1);
	return 0;
}

/* The device's IOMMU group id and a check that vfio-pci drives it. */
static int dev_group(const char *bdf, int *group_id)
{
	char path[PATH_MAX], name[64];
	char *end;
	long id;
	int ret;

	snprintf(path, sizeof(path), "%s/bus/pci/devices/%s", HPM_SYSFS_ROOT, bdf);
	if (access(path, F_OK)) {
		hpm_log(HPM_LOG_ERR, "vfio: no PCI device %s", bdf);
		return -ENODEV;
	}
	ret = dev_link(bdf, "iommu_group", name, sizeof(name));
	if (ret) {
		hpm_log(HPM_LOG_ERR, "vfio: %s has no IOMMU group (IOMMU off? boot with "
			"intel_iommu=on)", bdf);
		return -ENODEV;
	}
	errno = 0;
	id = strtol(name, &end, 10);
	if (errno || *end || id < 0 || id > INT_MAX) {
		hpm_log(HPM_LOG_ERR, "vfio: %s: IOMMU group '%s' is not a number", bdf, name);
		return -ENODEV;
	}
	ret = dev_link(bdf, "driver", name, sizeof(name));
	if (ret || strcmp(name, "vfio-pci")) {
		hpm_log(HPM_LOG_ERR, "vfio: %s is bound to %s, not vfio-pci (echo vfio-pci > "
			"/sys/bus/pci/devices/%s/driver_override; echo %s > "
			"/sys/bus/pci/drivers_probe)", bdf, ret ? "no driver" : name, bdf, bdf);
		return -EBUSY;
	}
	*group_id = (int)id;
	return 0;
}

static struct vgroup *group_find(struct vcontainer *c, int id)
{
	for (unsigned int i = 0; i < c->nr_groups; i++)
		if (c->groups[i].id == id)
			return &c->groups[i];
	return NULL;
}

/* Unbind and close a group; with the last one the container empties. */
static void group_drop(struct vcontainer *c, struct vgroup *g)
{
	ioctl(g->fd, VFIO_GROUP_UNSET_CONTAINER);
	close(g->fd);
	*g = c->groups[--c->nr_groups];
	if (!c->nr_groups)
		cont_emptied(c);
}

/* Open group @id, check it is viable, bind it to @c; type1 on the first. */
static int group_add(struct vcontainer *c, int id, struct vgroup **out)
{
	struct vfio_group_status st = { .argsz = sizeof(st) };
	char path[64];
	struct vgroup *g;
	int fd, ret;

	for (int i = 0; i < HPM_VFIO_MAX_CONTAINERS; i++) {
		if (conts[i].used && &conts[i] != c && group_find(&conts[i], id)) {
			hpm_log(HPM_LOG_ERR, "vfio: group %d is in container %d already", id,
				conts[i].fd);
			return -EBUSY;
		}
	}
	if (c->nr_groups == VFIO_MAX_GROUPS)
		return -ENOSPC;
	snprintf(path, sizeof(path), "/dev/vfio/%d", id);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		hpm_log(HPM_LOG_ERR, "vfio: cannot open %s: %s%s", path, strerror(-ret),
			ret == -EBUSY ? " (another process has the group)" : "");
		return ret == -ENOENT ? -ENODEV : ret;
	}
	if (ioctl(fd, VFIO_GROUP_GET_STATUS, &st)) {
		ret = -errno;
		hpm_log(HPM_LOG_ERR, "vfio: group %d: VFIO_GROUP_GET_STATUS: %s", id,
			strerror(-ret));
		goto fail_close;
	}
	if (!(st.flags & VFIO_GROUP_FLAGS_VIABLE)) {
		hpm_log(HPM_LOG_ERR, "vfio: group %d is not viable: bind every device in "
			"/sys/kernel/iommu_groups/%d/devices to vfio-pci", id, id);
		ret = -EPERM;
		goto fail_close;
	}
	if (ioctl(fd, VFIO_GROUP_SET_CONTAINER, &c->fd)) {
		ret = -errno;
		hpm_log(HPM_LOG_ERR, "vfio: group %d: VFIO_GROUP_SET_CONTAINER: %s", id,
			strerror(-ret));
		goto fail_close;
	}
	g = &c->groups[c->nr_groups++];
	g->id = id;
	g->fd = fd;
	g->ndev = 0;
	if (!c->iommu_set) {
		if (ioctl(c->fd, VFIO_SET_IOMMU, c->type)) {
			ret = -errno;
			hpm_log(HPM_LOG_ERR, "vfio: VFIO_SET_IOMMU: %s", strerror(-ret));
			group_drop(c, g);
			return ret;
		}
		c->iommu_set = true;
	}
	*out = g;
	return 0;

fail_close:
	close(fd);
	return ret;
}

__hpm_export int hpm_vfio_setup_device(const char *bdf, int container_fd, int *device_fd,
				       struct hpm_vfio_device_info *info)
{
	struct vfio_device_info di = { .argsz = sizeof(di) };
	struct vcontainer *c;
	struct vgroup *g;
	bool new_group = false;
	int id, fd, ret;

	if (!bdf_ok(bdf) || !device_fd)
		return hpm_fail(EINVAL);
	ret = dev_group(bdf, &id);
	if (ret)
		return hpm_fail(-ret);

	vfio_enter();
	if (!mem_valid) {
		hpm_log(HPM_LOG_ERR, "vfio: %s: call hpm_init() first", bdf);
		ret = -EINVAL;
		goto out;
	}
	/* Before any container is made: nothing to undo. */
	ret = pinnable_check();
	if (ret)
		goto out;
	c = cont_find(container_fd);
	if (!c && container_fd == HPM_VFIO_DEFAULT_CONTAINER) {
		ret = container_new(&c);
		if (ret < 0)
			goto out;
		default_idx = (int)(c - conts);
	} else if (!c) {
		hpm_log(HPM_LOG_ERR, "vfio: fd %d is not a container of the library "
			"(hpm_vfio_container_create() or _adopt() it)", container_fd);
		ret = -EINVAL;
		goto out;
	}
	g = group_find(c, id);
	if (!g) {
		ret = group_add(c, id, &g);
		if (ret)
			goto fail_cont;
		new_group = true;
	}
	ret = mem_map(c);
	if (ret)
		goto fail_group;
	fd = ioctl(g->fd, VFIO_GROUP_GET_DEVICE_FD, bdf);
	if (fd < 0) {
		ret = -errno;
		hpm_log(HPM_LOG_ERR, "vfio: %s: VFIO_GROUP_GET_DEVICE_FD: %s", bdf,
			strerror(-ret));
		goto fail_group;
	}
	if (ioctl(fd, VFIO_DEVICE_GET_INFO, &di)) {
		ret = -errno;
		hpm_log(HPM_LOG_ERR, "vfio: %s: VFIO_DEVICE_GET_INFO: %s", bdf, strerror(-ret));
		close(fd);
		goto fail_group;
	}
	g->ndev++;
	*device_fd = fd;
	if (info) {
		info->group_id = id;
		info->num_regions = di.num_regions;
		info->num_irqs = di.num_irqs;
		info->flags = di.flags;
	}
	hpm_log(HPM_LOG_INFO, "vfio: %s (group %d) in container %d", bdf, id, c->fd);
	ret = 0;
	goto out;

fail_group:
	/* The container empties with its last group, mappings and all. */
	if (new_group)
		group_drop(c, g);
fail_cont:
	if (default_idx >= 0 && c == &conts[default_idx] && !c->nr_groups)
		cont_forget(c);
out:
	pthread_mutex_unlock(&vfio_lock);
	return ret ? hpm_fail(-ret) : 0;
}

__hpm_export int hpm_vfio_release_device(const char *bdf, int container_fd, int device_fd)
{
	struct vcontainer *c;
	struct vgroup *g;
	int id, ret = 0;
	char name[64];
	char *end;

	if (!bdf_ok(bdf) || device_fd < 0)
		return hpm_fail(EINVAL);
	/* Only the group link: the driver may be gone, the device too. */
	if (dev_link(bdf, "iommu_group", name, sizeof(name)))
		return hpm_fail(ENODEV);
	id = (int)strtol(name, &end, 10);
	vfio_enter();
	c = cont_find(container_fd);
	g = c ? group_find(c, id) : NULL;
	if (!g || !g->ndev) {
		ret = -ENOENT;
		goto out;
	}
	close(device_fd);
	if (--g->ndev == 0)
		group_drop(c, g);
	/* After hpm_cleanup() this device was all that kept it open. */
	if (c->owned && !mem_valid && !cont_devices(c))
		cont_forget(c);
out:
	pthread_mutex_unlock(&vfio_lock);
	return ret ? hpm_fail(-ret) : 0;
}

__hpm_export int hpm_vfio_get_region(int device_fd, unsigned int index,
				     struct hpm_vfio_region *r)
{
	struct vfio_region_info ri = { .argsz = sizeof(ri), .index = index };

	if (device_fd < 0 || !r)
		return hpm_fail(EINVAL);
	if (ioctl(device_fd, VFIO_DEVICE_GET_REGION_INFO, &ri))
		return hpm_fail(errno);
	r->offset = ri.offset;
	r->size = ri.size;
	r->flags = ri.flags;
	return 0;
}

/* ---- external memory ---- */

static int ext_args_ok(uint64_t vaddr, uint64_t iova, uint64_t len)
{
	uint64_t end;

	return len && !((vaddr | iova | len) & (VFIO_MAP_ALIGN - 1)) &&
	       !__builtin_add_overflow(iova, len, &end) &&
	       !__builtin_add_overflow(vaddr, len, &end);
}

__hpm_export int hpm_vfio_container_dma_map(int container_fd, uint64_t vaddr, uint64_t iova,
					    uint64_t len)
{
	struct vcontainer *c;
	int ret;

	if (!ext_args_ok(vaddr, iova, len))
		return hpm_fail(EINVAL);
	vfio_enter();
	c = cont_find(container_fd);
	if (!c || !c->iommu_set) {
		hpm_log(HPM_LOG_ERR, "vfio: dma_map: container %d %s", container_fd,
			c ? "has no group bound yet" : "is not tracked");
		ret = c ? -EINVAL : -ENOENT;
		goto out;
	}
	if (c->nr_ext == VFIO_MAX_EXT_MAPS) {
		ret = -ENOSPC;
		goto out;
	}
	if (!c->ranges_known) {
		ret = get_ranges(c);
		if (ret)
			goto out;
	}
	if (hpm_iova_range_check(c->ranges, c->nr_ranges, iova, len)) {
		hpm_log(HPM_LOG_ERR, "vfio: dma_map: IOVA range 0x%llx-0x%llx is outside the "
			"IOMMU's usable ranges", (unsigned long long)iova,
			(unsigned long long)(iova + len - 1));
		ret = -ERANGE;
		goto out;
	}
	ret = dma_map(c->fd, vaddr, iova, len);
	if (ret == -ENOMEM) {
		memlock_log(len);
	} else if (ret) {
		hpm_log(HPM_LOG_ERR, "vfio: dma_map 0x%llx+0x%llx: %s", (unsigned long long)iova,
			(unsigned long long)len, strerror(-ret));
	} else {
		c->ext[c->nr_ext++] = (struct extmap){ vaddr, iova, len };
	}
out:
	pthread_mutex_unlock(&vfio_lock);
	return ret ? hpm_fail(-ret) : 0;
}

__hpm_export int hpm_vfio_container_dma_unmap(int container_fd, uint64_t vaddr,
					      uint64_t iova, uint64_t len)
{
	struct vcontainer *c;
	int ret = -ENOENT;

	if (!ext_args_ok(vaddr, iova, len))
		return hpm_fail(EINVAL);
	vfio_enter();
	c = cont_find(container_fd);
	for (unsigned int i = 0; c && i < c->nr_ext; i++) {
		struct extmap *e = &c->ext[i];

		if (e->vaddr != vaddr || e->iova != iova || e->len != len)
			continue;
		ret = dma_unmap(c->fd, iova, len);
		if (!ret)
			*e = c->ext[--c->nr_ext];
		break;
	}
	pthread_mutex_unlock(&vfio_lock);
	return ret ? hpm_fail(-ret) : 0;
}
