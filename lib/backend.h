/* SPDX-License-Identifier: MIT */
/* Where a region's pages come from: kmod, hugetlbfs or anon (shm). */
#ifndef HPM_BACKEND_H
#define HPM_BACKEND_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hpmem/init.h>
#include <hpmem/memseg.h>

#include "internal.h"

/*
 * One page of the region as the backend knows it. @iova is the physical
 * address, HPM_BAD_IOVA when the backend cannot see it; it becomes the
 * page's IOVA in PA mode only.
 */
struct hpm_be_seg {
	uint64_t offset;
	uint64_t iova;
	int node;
	bool hole;		/* dynamic regions: no page there yet */
};

struct hpm_be;

enum hpm_map_how {
	HPM_MAP_HINT,		/* @addr is a hint (NULL: anywhere) */
	HPM_MAP_NOREPLACE,	/* exactly @addr; -EADDRINUSE when taken */
	HPM_MAP_REPLACE,	/* exactly @addr, over our own mapping there */
};

/*
 * A region is a file-like object whose pages have offsets; it is mapped
 * once, whole, at base + offset. All calls return 0 or -errno and log why.
 */
struct hpm_be_ops {
	enum hpm_backend type;
	const char *name;
	/* Could this backend serve @bytes per node? For backend auto. */
	int (*probe)(struct hpm_be *be, const uint64_t bytes[HPM_MAX_NODES]);
	/*
	 * Primary: create the region with @bytes[n] (rounded up to whole
	 * pages) on node n, in node order (offset 0 is on the first node that
	 * has pages). Sets page_sz, page_shift, size. -EEXIST when a live
	 * primary owns the name; stale leftovers are removed first.
	 */
	int (*create)(struct hpm_be *be, const uint64_t bytes[HPM_MAX_NODES]);
	/* Secondary: open the existing region; sets be->size (maybe 0 yet). */
	int (*attach)(struct hpm_be *be);
	/* Map [off, off + len) of the region at @addr, as @how says. */
	int (*map)(struct hpm_be *be, void *addr, size_t len, uint64_t off,
		   enum hpm_map_how how, void **out);
	/*
	 * Primary, after map at @base: fill @segs (room for @n, n = size/page)
	 * in offset order; may sort, may read /proc/self/pagemap.
	 */
	int (*segs)(struct hpm_be *be, void *base, struct hpm_be_seg *segs, size_t n);
	/*
	 * Dynamic regions (be->sparse) only; NULL when the backend cannot.
	 * grow: back [off, off + len) with pages on @node, which must be a
	 * hole (-ENOMEM when no page can be had there). release: take those
	 * pages out again, from every process's mapping (-EBUSY: a page is
	 * still pinned and nothing changed). page_info: fill @out for the
	 * present page at @va (region offset @off, expected on @node): its
	 * IOVA per be->addrs, and a check that it lies on @node.
	 */
	int (*grow)(struct hpm_be *be, uint64_t off, uint64_t len, int node);
	int (*release)(struct hpm_be *be, uint64_t off, uint64_t len);
	int (*page_info)(struct hpm_be *be, void *va, uint64_t off, int node,
			 struct hpm_be_seg *out);
	/*
	 * Bytes of pages @node could give a region now (kmod: its pool;
	 * hugetlbfs: the node's hugepages of be->page_sz), which sizes a
	 * dynamic region's default limit. NULL: no default (anon).
	 */
	uint64_t (*supply)(struct hpm_be *be, int node);
	/* Close what create/attach opened (the region may live on). */
	void (*detach)(struct hpm_be *be);
	/* Primary: remove the region's name; called before detach. */
	void (*destroy)(struct hpm_be *be);
};

struct hpm_be {
	const struct hpm_be_ops *ops;
	const struct hpm_init_opts *opts;	/* during init only */
	char name[HPM_NAME_SIZE];
	int fd;
	uint64_t page_sz;
	unsigned int page_shift;
	uint64_t size;			/* bytes in the region */
	bool primary;
	/*
	 * Physical addresses visible (kmod: HPMEM_CALLER_ADDRS; hugetlbfs:
	 * pagemap has PFNs). Known after create (kmod) or segs (hugetlbfs).
	 */
	bool addrs;
	/*
	 * VFIO type1 can pin the pages (file backends always; kmod when it
	 * created the region HPMEM_REGION_PINNABLE). Known after create.
	 */
	bool pinnable;
	int dma_model;			/* enum hpm_dma_model; kmod may report it */
	uint64_t node_bytes[HPM_MAX_NODES];	/* primary: as created */
	char path[PATH_MAX];
	/*
	 * Dynamic memory (dynmem.c): the region is sized to its reservation
	 * and mapped whole with holes (MAP_NORESERVE, nothing populated).
	 * Primary: node n's slice of region offsets is [slice_off[n],
	 * slice_off[n] + slice_len[n]), of which the first floor[n] bytes
	 * are backed at create; cfg_bytes at offset 0 hold the config, on
	 * node cfg_node. Set by hpm_dyn_plan() from the page size.
	 */
	bool sparse;
	bool limit_default;		/* no --socket-limit: the supply decides */
	uint64_t max_size;		/* the most one region may span; 0: no cap */
	int cfg_node;
	uint64_t cfg_bytes;
	uint64_t limit[HPM_MAX_NODES];		/* asked, before rounding */
	uint64_t floor[HPM_MAX_NODES];
	uint64_t slice_off[HPM_MAX_NODES];
	uint64_t slice_len[HPM_MAX_NODES];
};

/* A fresh @be for @ops and region @name (init.c; @o may be NULL). */
void hpm_be_reset(struct hpm_be *be, const struct hpm_be_ops *ops,
		  const struct hpm_init_opts *o, const char *name);

extern const struct hpm_be_ops hpm_be_kmod_ops;
extern const struct hpm_be_ops hpm_be_hugetlbfs_ops;
extern const struct hpm_be_ops hpm_be_anon_ops;

/*
 * Shared by the file backends (backend_file.c): a file whose flock the
 * primary holds for its lifetime, so a file left by a dead primary is told
 * apart from a live one and replaced.
 */
int hpm_be_file_create(struct hpm_be *be, const char *path);
int hpm_be_file_attach(struct hpm_be *be, const char *path);
/* Remove every hpmem-* file in @dir whose primary is dead; returns how many. */
int hpm_be_file_sweep(struct hpm_be *be, const char *dir);
int hpm_be_file_map(struct hpm_be *be, void *addr, size_t len, uint64_t off,
		    enum hpm_map_how how, void **out, int extra_flags);
void hpm_be_file_detach(struct hpm_be *be);
void hpm_be_file_destroy(struct hpm_be *be);
/*
 * Size be->fd for @bytes per node (rounded up to pages) and allocate each
 * node's range on that node, in node order. @strict: a page that cannot be
 * had on its node fails the call instead of landing elsewhere. On failure
 * the file is removed and closed.
 */
int hpm_be_file_populate(struct hpm_be *be, const uint64_t bytes[HPM_MAX_NODES],
			 bool strict);
/* Dynamic regions: fallocate on @node (@strict as above) / punch a hole. */
int hpm_be_file_grow(struct hpm_be *be, uint64_t off, uint64_t len, int node,
		     bool strict);
int hpm_be_file_release(struct hpm_be *be, uint64_t off, uint64_t len);
/* mmap() as @how says; 0 or -errno (-EADDRINUSE: NOREPLACE and taken). */
int hpm_mmap_how(void *addr, size_t len, int prot, int flags, int fd,
		 off_t off, enum hpm_map_how how, void **out);

/* NUMA syscalls without libnuma (the guest tests link statically). */
long hpm_sys_set_mempolicy(int mode, const unsigned long *mask, unsigned long maxnode);
long hpm_sys_get_mempolicy(int *mode, unsigned long *mask, unsigned long maxnode,
			   void *addr, unsigned long flags);

#endif /* HPM_BACKEND_H */
