// SPDX-License-Identifier: MIT
/*
 * hpm_init()/hpm_cleanup(): pick a backend, create or attach the region,
 * map it whole at one base address, and build or check the shared config.
 */
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <hpmem/init.h>

#include "backend.h"
#include "config.h"
#include "dynmem.h"
#include "internal.h"
#include "iommu.h"
#include "log.h"
#include "malloc_heap.h"
#include "memseg.h"
#include "memzone.h"
#include "options.h"
#include "thread.h"
#include "vfio_priv.h"

/*
 * Default base, like DPDK's base-virtaddr: high enough to stay clear of
 * the heap, libraries and stacks, and above ASan's shadow memory
 * (which ends at 0x10007fff7fff), 1 GiB aligned for 1 GiB pages.
 */
#if defined(__SANITIZE_THREAD__)
/*
 * TSan only lets applications map [4 KiB, 512 GiB) and a few high ranges
 * (its shadow lies above): 256 GiB, still 1 GiB aligned.
 */
#define HPM_BASE_DEFAULT	0x4000000000ULL
#else
#define HPM_BASE_DEFAULT	0x200000000000ULL
#endif
/* A secondary waits this long for the primary to finish hpm_init(). */
#define HPM_ATTACH_TIMEOUT_MS	10000

/*
 * flags went into what was tail padding after log_level, so binaries built
 * against 0.1 pass a struct of the same size with the field zeroed.
 */
_Static_assert(sizeof(void *) != 8 || sizeof(struct hpm_init_opts) == 120,
	       "struct hpm_init_opts changed size: that breaks the ABI");

static pthread_mutex_t init_lock = PTHREAD_MUTEX_INITIALIZER;

static struct {
	bool initialized;
	enum hpm_proc_type type;
	enum hpm_backend backend;
	enum hpm_iova_mode iova;
	struct hpm_be be;
	pid_t pid;		/* who initialised */
	void *base;
	size_t size;
} st;

static const struct hpm_be_ops *const backends[] = {
	[HPM_BACKEND_KMOD] = &hpm_be_kmod_ops,
	[HPM_BACKEND_HUGETLBFS] = &hpm_be_hugetlbfs_ops,
	[HPM_BACKEND_ANON] = &hpm_be_anon_ops,
};

static void sleep_ms(unsigned int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static bool pid_alive(pid_t pid)
{
	return pid > 0 && !(kill(pid, 0) && errno == ESRCH);
}

void hpm_be_reset(struct hpm_be *be, const struct hpm_be_ops *ops,
		  const struct hpm_init_opts *o, const char *name)
{
	memset(be, 0, sizeof(*be));
	be->ops = ops;
	be->opts = o;
	be->fd = -1;
	be->dma_model = HPM_DMA_UNKNOWN;
	snprintf(be->name, sizeof(be->name), "%s", name);
}

/*
 * Primary: pick where to map. An explicit base must be free; the default
 * one is only a hint, and a free, page-aligned range is found otherwise.
 */
static int map_primary(struct hpm_be *be, uintptr_t want, void **out)
{
	uintptr_t hint = want ? want : HPM_BASE_DEFAULT, end;
	size_t len;
	void *resv;
	int ret;

	if (hint & (be->page_sz - 1)) {
		hpm_log(HPM_LOG_ERR, "base address 0x%lx is not aligned to the %llu KiB page size",
			(unsigned long)hint, (unsigned long long)(be->page_sz >> 10));
		return -EINVAL;
	}
	ret = be->ops->map(be, (void *)hint, be->size, 0, HPM_MAP_NOREPLACE, out);
	if (ret != -EADDRINUSE || want) {
		if (ret == -EADDRINUSE)
			hpm_log(HPM_LOG_ERR, "base address range 0x%lx+0x%llx is taken",
				(unsigned long)hint, (unsigned long long)be->size);
		else if (ret)
			hpm_log(HPM_LOG_ERR, "%s: cannot map %llu MiB at 0x%lx: %s",
				be->ops->name, (unsigned long long)(be->size >> 20),
				(unsigned long)hint, strerror(-ret));
		return ret;
	}
	/*
	 * Reserve a free range with room to align, map over the aligned part
	 * of the reservation (no other thread can take it meanwhile), and
	 * give back the slack at both ends.
	 */
	len = be->size + be->page_sz;
	resv = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (resv == MAP_FAILED)
		return -errno;
	hint = HPM_ALIGN_UP((uintptr_t)resv, be->page_sz);
	ret = be->ops->map(be, (void *)hint, be->size, 0, HPM_MAP_REPLACE, out);
	if (ret) {
		munmap(resv, len);
		hpm_log(HPM_LOG_ERR, "%s: cannot map %llu MiB: %s", be->ops->name,
			(unsigned long long)(be->size >> 20), strerror(-ret));
		return ret;
	}
	if (hint > (uintptr_t)resv)
		munmap(resv, hint - (uintptr_t)resv);
	end = (uintptr_t)resv + len;
	if (end > hint + be->size)
		munmap((void *)(hint + be->size), end - (hint + be->size));
	hpm_log(HPM_LOG_INFO, "default base 0x%llx taken, mapped at %p",
		(unsigned long long)HPM_BASE_DEFAULT, *out);
	return 0;
}

/* Give each node's VA-contiguous runs past the config to its heap. */
static int heaps_setup(struct hpm_config *c)
{
	uint32_t i = 0;
	int ret;

	for (int n = 0; n < HPM_MAX_NODES; n++) {
		ret = hpm_heap_init(&c->heaps[n], n);
		if (ret)
			return ret;
	}
	while (i < c->nr_memsegs) {
		const struct hpm_memseg *first = &c->memsegs[i];
		uintptr_t start = (uintptr_t)first->addr;
		uintptr_t end = start + first->len;

		/*
		 * Dynamic: holes are not memory, and the config pages stay
		 * out (each node's heap starts at its slice, so pages grown
		 * there extend the run).
		 */
		if ((first->flags & HPM_MEMSEG_F_HOLE) ||
		    ((c->flags & HPM_CFG_F_DYNAMIC) && (first->flags & HPM_MEMSEG_F_CONFIG))) {
			i++;
			continue;
		}
		for (i++; i < c->nr_memsegs && c->memsegs[i].socket == first->socket &&
		     !(c->memsegs[i].flags & (HPM_MEMSEG_F_HOLE | HPM_MEMSEG_F_CONFIG)); i++)
			end += c->memsegs[i].len;
		if (start < c->base + c->cfg_len)
			start = c->base + c->cfg_len;
		if (end <= start + 4096)
			continue;
		ret = hpm_heap_add_memory(&c->heaps[first->socket], (void *)start, end - start);
		if (ret) {
			hpm_log(HPM_LOG_ERR, "heap %d: cannot add %zu KiB at %p: %s",
				first->socket, (size_t)(end - start) >> 10, (void *)start,
				strerror(-ret));
			return ret;
		}
	}
	return 0;
}

/*
 * Map page i of [base, ...) from region offset segs[i].offset, over what
 * is there (the linear mapping or a reservation), a run of consecutive
 * offsets per mmap(). Pages already in place are left alone.
 */
static int map_runs(struct hpm_be *be, void *base, const struct hpm_be_seg *segs,
		    size_t n, bool all)
{
	uint64_t psz = be->page_sz;
	size_t i = 0;

	while (i < n) {
		size_t j = i + 1;
		void *p;
		int ret;

		if (!all && segs[i].offset == (uint64_t)i * psz) {
			i++;
			continue;
		}
		while (j < n && segs[j].offset == segs[i].offset + (j - i) * psz)
			j++;
		ret = be->ops->map(be, (char *)base + i * psz, (j - i) * psz, segs[i].offset,
				   HPM_MAP_REPLACE, &p);
		if (ret)
			return ret;
		i = j;
	}
	return 0;
}

/*
 * The primary's IOVA mode: what devices will really see (docs/IOVA.md).
 * Logs the choice and why in one line.
 */
static int pick_iova(const struct hpm_init_opts *o, struct hpm_be *be, void *base,
		     enum hpm_iova_mode *out)
{
	struct hpm_iova_facts f = {
		.addrs = be->addrs,
		.dma = be->dma_model,
		.base = (uintptr_t)base,
		.size = be->size,
	};
	char why[256];
	bool warn;
	int ret;

	if (f.dma == HPM_DMA_UNKNOWN)
		f.dma = hpm_iommu_dma_model(HPM_SYSFS_ROOT);
	if (f.dma == HPM_DMA_TRANSLATED)
		f.width = hpm_iommu_width(HPM_SYSFS_ROOT);
	ret = hpm_iova_choose(o->iova_mode, &f, out, why, sizeof(why), &warn);
	if (ret == -EPERM) {
		hpm_log(HPM_LOG_ERR, "%s: iova-mode pa asked, but physical addresses are "
			"hidden from this process (need CAP_SYS_ADMIN%s)", be->ops->name,
			be->ops->type == HPM_BACKEND_KMOD ?
			" or hpmem's phys_unprivileged=1" : "");
		return ret;
	}
	if (ret)
		return ret;
	hpm_log(warn ? HPM_LOG_WARN : HPM_LOG_INFO, "iova-mode %s: %s",
		hpm_iova_mode_name(*out), why);
	return 0;
}

static int init_primary(const struct hpm_init_opts *o, struct hpm_be *be)
{
	struct hpm_be_seg *segs = NULL;
	struct hpm_config *c;
	enum hpm_iova_mode iova;
	size_t n, cfg_len;
	void *base = NULL;
	int ret;

	n = be->size >> be->page_shift;
	cfg_len = hpm_config_len((uint32_t)n);
	if (n == 0 || n > UINT32_MAX || cfg_len + 4096 > be->size) {
		hpm_log(HPM_LOG_ERR, "region of %llu KiB cannot hold its %zu KiB config",
			(unsigned long long)(be->size >> 10), cfg_len >> 10);
		return -EINVAL;
	}
	ret = map_primary(be, o->base_addr, &base);
	if (ret)
		return ret;
	segs = calloc(n, sizeof(*segs));
	if (!segs) {
		ret = -ENOMEM;
		goto fail_unmap;
	}
	ret = be->sparse ? hpm_dyn_segs(be, base, segs, n) : be->ops->segs(be, base, segs, n);
	if (ret) {
		hpm_log(HPM_LOG_ERR, "%s: cannot list the region's pages: %s",
			be->ops->name, strerror(-ret));
		goto fail_unmap;
	}
	ret = pick_iova(o, be, base, &iova);
	if (ret)
		goto fail_unmap;
	hpm_memseg_sort_by_offset(segs, n);
	/*
	 * Like DPDK: physically contiguous pages at contiguous VAs, so that
	 * IOVA-contiguous runs exist. kmod regions already come in physical
	 * order (nothing moves); hugetlbfs files come in allocation order.
	 */
	if (iova == HPM_IOVA_PA && !be->sparse &&
	    hpm_memseg_sort_by_iova(segs, n, HPM_ALIGN_UP(cfg_len, be->page_sz) >> be->page_shift)) {
		ret = map_runs(be, base, segs, n, false);
		if (ret) {
			hpm_log(HPM_LOG_ERR, "%s: cannot remap pages in physical order: %s",
				be->ops->name, strerror(-ret));
			goto fail_unmap;
		}
	}

	c = base;
	/* Pages are zeroed by every backend; only non-zero fields are set. */
	c->primary_pid = getpid();
	c->base = (uintptr_t)base;
	c->size = be->size;
	c->cfg_len = cfg_len;
	c->backend = be->ops->type;
	c->iova_mode = iova;
	c->page_sz = be->page_sz;
	c->page_shift = be->page_shift;
	c->nr_memsegs = (uint32_t)n;
	c->max_memzones = o->max_memzones;
	snprintf(c->region, sizeof(c->region), "%s", be->name);
	hpm_config_init_header(c);
	if (be->pinnable)
		c->flags |= HPM_CFG_F_PINNABLE;
	ret = hpm_memseg_table_fill(c, segs, n, iova);
	if (ret) {
		hpm_log(HPM_LOG_ERR, "%s: page list has holes or unknown addresses",
			be->ops->name);
		goto fail_unmap;
	}
	for (size_t i = 0; i < n; i++)
		c->socket_mask |= 1U << c->memsegs[i].socket;
	free(segs);
	segs = NULL;
	if (be->sparse) {
		c->flags |= HPM_CFG_F_DYNAMIC;
		hpm_dyn_config_init(c, be);
	}

	hpm_cfg = c;
	hpm_heap_set_table(c->heaps);
	ret = heaps_setup(c);
	/* Before the memzone table: with nothing reserved, it grows the heap. */
	if (!ret)
		ret = hpm_dyn_process_init(c, be);
	if (ret)
		goto fail_table;
	ret = hpm_memzone_setup(o->max_memzones);
	if (ret) {
		hpm_log(HPM_LOG_ERR, "memzone table (%u zones): %s", o->max_memzones,
			strerror(-ret));
		goto fail_table;
	}
	/* Pairs with the acquire load in wait_ready(): all of the above is visible. */
	atomic_store_explicit(&c->ready, 1, memory_order_release);
	st.base = base;
	st.size = be->size;
	st.iova = iova;
	return 0;

fail_table:
	hpm_dyn_process_fini();
	hpm_heap_set_table(NULL);
	hpm_cfg = NULL;
fail_unmap:
	free(segs);
	munmap(base, be->size);
	return ret;
}

/* Secondary: wait until the primary marked the config ready. */
static int wait_ready(struct hpm_be *be, struct hpm_config *c, int *waited_ms)
{
	int ret;

	for (;;) {
		ret = hpm_config_check(c);
		if (ret == 0 && atomic_load_explicit(&c->ready, memory_order_acquire))
			return 0;
		if (ret && ret != -EAGAIN)
			return ret;
		if (ret == 0 && !pid_alive(c->primary_pid)) {
			hpm_log(HPM_LOG_ERR, "region '%s': primary %d died during its init",
				be->name, (int)c->primary_pid);
			return -ENOENT;
		}
		if (*waited_ms >= HPM_ATTACH_TIMEOUT_MS) {
			hpm_log(HPM_LOG_ERR, "region '%s': primary did not finish its init "
				"within %d ms", be->name, HPM_ATTACH_TIMEOUT_MS);
			return -ETIMEDOUT;
		}
		sleep_ms(1);
		(*waited_ms)++;
	}
}

/* Copy the offset table of a remapped region (it may span several pages). */
static int read_offsets(struct hpm_be *be, struct hpm_config *peek,
			struct hpm_be_seg **out)
{
	size_t n = peek->nr_memsegs;
	size_t len = HPM_ALIGN_UP(peek->cfg_len, be->page_sz);
	struct hpm_be_seg *segs;
	struct hpm_config *c;
	void *p;
	int ret;

	/* n and cfg_len passed hpm_config_check_header(). */
	segs = calloc(n, sizeof(*segs));
	if (!segs)
		return -ENOMEM;
	ret = be->ops->map(be, NULL, len, 0, HPM_MAP_HINT, &p);
	if (ret) {
		free(segs);
		return ret;
	}
	c = p;
	/* Checked once copied: the primary cannot change them afterwards. */
	for (size_t i = 0; i < n && !ret; i++) {
		segs[i].offset = hpm_config_offsets(c)[i];
		ret = hpm_config_check_offset(peek, (uint32_t)i, segs[i].offset);
	}
	munmap(p, len);
	if (ret) {
		free(segs);
		return ret;
	}
	*out = segs;
	return 0;
}

/*
 * Map the region at @base: whole, or, when remapped, page runs from the
 * offset table over a reservation that first claims the range.
 */
static int map_secondary(struct hpm_be *be, void *base, uint64_t size,
			 const struct hpm_be_seg *segs, void **out)
{
	int ret;

	if (!segs)
		return be->ops->map(be, base, size, 0, HPM_MAP_NOREPLACE, out);
	ret = hpm_mmap_how(base, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
			   -1, 0, HPM_MAP_NOREPLACE, out);
	if (ret)
		return ret;
	ret = map_runs(be, base, segs, size / be->page_sz, true);
	if (ret)
		munmap(base, size);
	return ret;
}

static int init_secondary(const struct hpm_init_opts *o, struct hpm_be *be)
{
	struct hpm_be_seg *segs = NULL;
	struct hpm_config *c;
	uint64_t base, size;
	int waited = 0, ret;
	void *p;

	/* The primary may still be sizing the region. */
	while (be->size < be->page_sz) {
		if (waited >= HPM_ATTACH_TIMEOUT_MS) {
			hpm_log(HPM_LOG_ERR, "region '%s' stays empty", be->name);
			return -ETIMEDOUT;
		}
		be->ops->detach(be);
		sleep_ms(1);
		waited++;
		ret = be->ops->attach(be);
		if (ret)
			return ret;
	}
	/* Peek at the first page anywhere, to learn where everything goes. */
	ret = be->ops->map(be, NULL, be->page_sz, 0, HPM_MAP_HINT, &p);
	if (ret) {
		hpm_log(HPM_LOG_ERR, "%s: cannot map the config page: %s", be->ops->name,
			strerror(-ret));
		return ret;
	}
	c = p;
	ret = wait_ready(be, c, &waited);
	if (!ret && !pid_alive(c->primary_pid)) {
		hpm_log(HPM_LOG_ERR, "region '%s': its primary %d is gone", be->name,
			(int)c->primary_pid);
		ret = -ENOENT;
	}
	/* A crashed or hostile primary may have written anything. */
	if (!ret)
		ret = hpm_config_check_header(c, be);
	if (!ret && o->iova_mode != HPM_IOVA_AUTO && (uint32_t)o->iova_mode != c->iova_mode) {
		hpm_log(HPM_LOG_ERR, "iova-mode %s asked, but the primary uses %s",
			hpm_iova_mode_name(o->iova_mode), hpm_iova_mode_name(c->iova_mode));
		ret = -EINVAL;
	}
	base = c->base;
	size = c->size;
	/* Holes are mapped too: no reservation for them (hugetlbfs). */
	be->sparse = !ret && (c->flags & HPM_CFG_F_DYNAMIC);
	if (!ret && (c->flags & HPM_CFG_F_REMAPPED))
		ret = read_offsets(be, c, &segs);
	munmap(p, be->page_sz);
	if (ret)
		return ret;
	ret = map_secondary(be, (void *)(uintptr_t)base, size, segs, &p);
	free(segs);
	if (ret == -EADDRINUSE) {
		hpm_log(HPM_LOG_ERR, "region '%s' must be mapped at 0x%llx-0x%llx like in its "
			"primary, but that range is taken in this process (move the primary "
			"with --base-virtaddr)", be->name, (unsigned long long)base,
			(unsigned long long)(base + size));
		return ret;
	}
	if (ret) {
		hpm_log(HPM_LOG_ERR, "%s: cannot map region '%s': %s", be->ops->name, be->name,
			strerror(-ret));
		return ret;
	}
	c = p;
	/*
	 * The header again (it is the same memory, but the peek was another
	 * mapping a moment ago), then the tables it describes.
	 */
	ret = hpm_config_check_header(c, be);
	if (!ret && (c->base != base || c->size != size)) {
		hpm_log(HPM_LOG_ERR, "shared config: base and size changed while "
			"attaching, refusing the region");
		ret = -EPROTO;
	}
	if (!ret)
		ret = hpm_config_check_tables(c);
	if (ret) {
		munmap(p, size);
		return ret;
	}
	hpm_cfg = c;
	hpm_heap_set_table(c->heaps);
	ret = hpm_dyn_process_init(c, be);
	if (ret) {
		hpm_heap_set_table(NULL);
		hpm_cfg = NULL;
		munmap(p, size);
		return ret;
	}
	st.base = p;
	st.size = size;
	st.iova = c->iova_mode;
	return 0;
}

/* Dynamic memory asked: any node limit, and not --legacy-mem. */
static bool dyn_wanted(const struct hpm_init_opts *o)
{
	if (o->flags & HPM_INIT_F_LEGACY_MEM)
		return false;
	for (int n = 0; n < HPM_MAX_NODES; n++)
		if (HPM_SOCKET_MEM_LIMIT(o->socket_mem[n]))
			return true;
	return false;
}

/*
 * Dynamic memory by default, with no --socket-limit: where devices see
 * IOVAs that the library chooses, that is behind a translating IOMMU, a
 * page grown later is as good as one taken at start. With physical
 * addresses as IOVAs it is not: pages taken one at a time are rarely
 * physically next to each other, so an IOVA-contiguous memzone that fits
 * today could fail; those regions (and --iova-mode pa) keep --socket-mem
 * fixed unless a limit is asked. The anon backend has no page supply to
 * size a limit by (and DPDK's --no-huge is fixed too).
 */
static bool dyn_by_default(const struct hpm_be *be, const struct hpm_init_opts *o)
{
	if (o->flags & HPM_INIT_F_LEGACY_MEM || !be->ops->grow || !be->ops->supply ||
	    o->iova_mode == HPM_IOVA_PA)
		return false;
	return hpm_iommu_dma_model(HPM_SYSFS_ROOT) == HPM_DMA_TRANSLATED;
}

/* Primary: make @be's region dynamic when asked or by default (before create). */
static int dyn_setup(struct hpm_be *be, const struct hpm_init_opts *o,
		     const uint64_t bytes[HPM_MAX_NODES])
{
	bool wanted = dyn_wanted(o);

	if (!wanted && !dyn_by_default(be, o))
		return 0;
	if (!be->ops->grow) {
		hpm_log(HPM_LOG_ERR, "%s: no dynamic memory on this backend yet "
			"(use --legacy-mem)", be->ops->name);
		return -ENOTSUP;
	}
	be->sparse = true;
	be->limit_default = !wanted;
	for (int n = 0; n < HPM_MAX_NODES; n++) {
		be->floor[n] = bytes[n];
		be->limit[n] = HPM_SOCKET_MEM_LIMIT(o->socket_mem[n]) << 20;
	}
	return 0;
}

/* Primary or secondary on one backend, as @type says (AUTO: try both). */
static int init_on(const struct hpm_init_opts *o, const struct hpm_be_ops *ops,
		   const char *name, const uint64_t bytes[HPM_MAX_NODES],
		   enum hpm_proc_type type)
{
	struct hpm_be *be = &st.be;
	int ret;

	hpm_be_reset(be, ops, o, name);
	if (type != HPM_PROC_SECONDARY) {
		ret = dyn_setup(be, o, bytes);
		if (ret)
			return ret;
		ret = ops->create(be, bytes);
		if (ret == 0) {
			be->primary = true;
			ret = init_primary(o, be);
			if (ret) {
				ops->destroy(be);
				ops->detach(be);
				return ret;
			}
			st.type = HPM_PROC_PRIMARY;
			return 0;
		}
		if (ret != -EEXIST || type == HPM_PROC_PRIMARY) {
			if (ret == -EEXIST)
				hpm_log(HPM_LOG_ERR, "region '%s' exists and is in use "
					"(a live primary%s)", name,
					ops->type == HPM_BACKEND_KMOD ? " or its secondaries" : "");
			return ret;
		}
		hpm_be_reset(be, ops, o, name);
	}
	ret = ops->attach(be);
	if (ret)
		return ret;
	ret = init_secondary(o, be);
	if (ret) {
		ops->detach(be);
		return ret;
	}
	st.type = HPM_PROC_SECONDARY;
	return 0;
}

/* Backend auto: attach to a live primary anywhere, else create on the best. */
static int init_auto(const struct hpm_init_opts *o, const char *name,
		     const uint64_t bytes[HPM_MAX_NODES])
{
	static const enum hpm_backend order[] = {
		HPM_BACKEND_KMOD, HPM_BACKEND_HUGETLBFS, HPM_BACKEND_ANON,
	};
	int saved = hpm_log_level, ret;

	if (o->proc_type != HPM_PROC_PRIMARY) {
		/*
		 * A region's backend is whatever its primary chose; probing now
		 * could pick another one (the primary took the free hugepages).
		 * Failed attempts are expected here and not worth a log line.
		 */
		for (size_t i = 0; i < HPM_ARRAY_SIZE(order); i++) {
			struct hpm_be probe;

			hpm_be_reset(&probe, backends[order[i]], o, name);
			hpm_log_level = 0;
			ret = probe.ops->attach(&probe);
			hpm_log_level = saved;
			if (ret)
				continue;
			probe.ops->detach(&probe);
			hpm_log(HPM_LOG_INFO, "backend auto: region '%s' exists on %s",
				name, probe.ops->name);
			return init_on(o, probe.ops, name, bytes, HPM_PROC_SECONDARY);
		}
		if (o->proc_type == HPM_PROC_SECONDARY) {
			hpm_log(HPM_LOG_ERR, "no live region '%s' on any backend", name);
			return -ENOENT;
		}
	}
	for (size_t i = 0; i < HPM_ARRAY_SIZE(order); i++) {
		struct hpm_be probe;

		hpm_be_reset(&probe, backends[order[i]], o, name);
		if (dyn_wanted(o) && !probe.ops->grow)
			continue;
		hpm_log_level = saved > HPM_LOG_INFO ? saved : 0;
		ret = probe.ops->probe(&probe, bytes);
		hpm_log_level = saved;
		if (ret)
			continue;
		/* Quiet when it found real hugepages; loud when it fell back. */
		if (probe.ops->type == HPM_BACKEND_ANON)
			hpm_log(HPM_LOG_WARN, "backend auto: no usable /dev/hpmem or hugepages, "
				"using anon (4 KiB pages, IOVA = VA)");
		else
			hpm_log(HPM_LOG_INFO, "backend auto: using %s", probe.ops->name);
		return init_on(o, probe.ops, name, bytes, HPM_PROC_PRIMARY);
	}
	hpm_log(HPM_LOG_ERR, "no usable backend");
	return -ENODEV;
}

__hpm_export int hpm_init(const struct hpm_init_opts *uo)
{
	uint64_t bytes[HPM_MAX_NODES] = { 0 };
	struct hpm_init_opts o;
	bool any = false;
	const char *name;
	int ret;

	pthread_mutex_lock(&init_lock);
	if (st.initialized) {
		ret = -EALREADY;
		goto out;
	}
	if (uo)
		o = *uo;
	else
		hpm_init_opts_default(&o);
	hpm_log_set_level(o.log_level);
	ret = hpm_opts_apply_env(&o);
	if (ret)
		goto out;
	hpm_log_set_level(o.log_level);

	name = o.region ? o.region : HPM_REGION_DEFAULT;
	ret = hpm_region_name_check(name);
	if (ret) {
		hpm_log(HPM_LOG_ERR, "bad region name '%s'", name);
		goto out;
	}
	if ((unsigned int)o.proc_type > HPM_PROC_SECONDARY ||
	    (unsigned int)o.backend > HPM_BACKEND_ANON ||
	    (unsigned int)o.iova_mode > HPM_IOVA_COMPACT ||
	    (o.flags & ~(HPM_INIT_F_VFIO | HPM_INIT_F_LEGACY_MEM))) {
		ret = -EINVAL;
		goto out;
	}
	for (int n = 0; n < HPM_MAX_NODES; n++) {
		uint64_t lim = HPM_SOCKET_MEM_LIMIT(o.socket_mem[n]);

		bytes[n] = HPM_SOCKET_MEM_RESERVE(o.socket_mem[n]);
		if (bytes[n] > (1ULL << 30) || lim > (1ULL << 30) || (lim && lim < bytes[n])) {
			ret = -EINVAL;
			goto out;
		}
		bytes[n] <<= 20;
		any |= bytes[n] != 0 || (lim && dyn_wanted(&o));
	}
	if (!any)
		bytes[0] = (uint64_t)HPM_SOCKET_MEM_DEFAULT << 20;
	if (!o.max_memzones)
		o.max_memzones = HPM_MEMZONES_DEFAULT;
	hpm_thread_setup();

	if (o.backend == HPM_BACKEND_AUTO)
		ret = init_auto(&o, name, bytes);
	else
		ret = init_on(&o, backends[o.backend], name, bytes, o.proc_type);
	if (ret)
		goto out;
	st.be.opts = NULL;
	st.backend = st.be.ops->type;
	st.pid = getpid();
	st.initialized = true;
	/* Containers that outlived an earlier hpm_cleanup() get the memory. */
	hpm_vfio_mem_attach();
	hpm_log(HPM_LOG_INFO, "region '%s': %s on %s, %zu MiB at %p, iova %s", name,
		hpm_proc_type_name(st.type), st.be.ops->name, st.size >> 20, st.base,
		hpm_iova_mode_name(st.iova));
out:
	pthread_mutex_unlock(&init_lock);
	return ret ? hpm_fail(-ret) : 0;
}

__hpm_export int hpm_cleanup(void)
{
	struct hpm_be *be = &st.be;

	pthread_mutex_lock(&init_lock);
	if (!st.initialized) {
		pthread_mutex_unlock(&init_lock);
		return hpm_fail(ENODEV);
	}
	/*
	 * Before the memory goes: devices lose access to it (a DMA to its
	 * IOVAs now faults) and VFIO drops its pins.
	 */
	hpm_vfio_mem_detach();
	hpm_thread_release_process(hpm_cfg);
	hpm_dyn_process_fini();
	hpm_heap_set_table(NULL);
	hpm_cfg = NULL;
	munmap(st.base, st.size);
	/* A forked child of the primary must not remove the parent's region. */
	if (st.type == HPM_PROC_PRIMARY && st.pid == getpid())
		be->ops->destroy(be);
	be->ops->detach(be);
	memset(&st, 0, sizeof(st));
	st.be.fd = -1;
	pthread_mutex_unlock(&init_lock);
	return 0;
}

__hpm_export enum hpm_proc_type hpm_proc_type(void)
{
	return st.initialized ? st.type : HPM_PROC_AUTO;
}

__hpm_export enum hpm_backend hpm_backend(void)
{
	return st.initialized ? st.backend : HPM_BACKEND_AUTO;
}

__hpm_export enum hpm_iova_mode hpm_iova_mode(void)
{
	return st.initialized ? st.iova : HPM_IOVA_AUTO;
}

__hpm_export int hpm_socket_count(void)
{
	const struct hpm_config *c = hpm_cfg;

	return c ? __builtin_popcount(c->socket_mask) : 0;
}

__hpm_export int hpm_socket_id(void)
{
	unsigned int cpu, node;

	/* getcpu() is a vDSO call on x86; node is 0 without NUMA. */
	if (syscall(SYS_getcpu, &cpu, &node, NULL))
		return 0;
	return (int)node;
}

