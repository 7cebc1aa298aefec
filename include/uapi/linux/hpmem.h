/* SPDX-License-Identifier: (GPL-2.0 WITH Linux-syscall-note) OR MIT */
/*
 * hpmem: pinned 2 MiB pages per NUMA node, grouped into named regions and
 * exposed through /dev/hpmem. This header is the only kernel/user contract.
 */
#ifndef _UAPI_LINUX_HPMEM_H
#define _UAPI_LINUX_HPMEM_H

#include <linux/types.h>
#include <linux/ioctl.h>

#define HPMEM_API_VERSION	1
#define HPMEM_DEVICE_PATH	"/dev/hpmem"

#define HPMEM_PAGE_SHIFT	21
#define HPMEM_PAGE_SIZE		(1ULL << HPMEM_PAGE_SHIFT)

/* Region names: at most HPMEM_NAME_MAX bytes including the terminating NUL. */
#define HPMEM_NAME_MAX		32

/**
 * DOC: conventions
 *
 * Every argument struct starts with @argsz (the size userspace filled in,
 * normally sizeof(struct)) and @flags. The kernel accepts a larger @argsz as
 * long as the bytes it does not know are zero (copy_struct_from_user()), so a
 * struct may grow at its end without a new command number. New behaviour gets
 * a new flag bit and, where userspace must probe for it, a HPMEM_FEAT_* bit.
 *
 * Validation happens before any side effect; a failing command changes
 * nothing. The commands that change state and then report a result
 * (HPMEM_IOC_POOL_RESIZE, HPMEM_IOC_REGION_GROW) pin their argument for
 * writing before the change and write the result through the pin, so no
 * fault can follow the change; their argument must be memory that
 * get_user_pages() accepts (not a mapping of a default hpmem region),
 * else EFAULT.
 *
 * Errors, the same everywhere:
 *
 * - ENOTTY: unknown command.
 * - EINVAL: @argsz below the command's minimum size, unknown bits in @flags,
 *   a non-zero __reserved field, a name that is empty, or a mapping request
 *   that is not MAP_SHARED, not page-aligned or not within the region.
 * - E2BIG: @argsz larger than the kernel knows and the extra bytes not zero,
 *   or larger than 4096 (no command will ever need more).
 * - EFAULT: an argument or user pointer that cannot be read or written.
 * - ENAMETOOLONG: a name without a NUL in its HPMEM_NAME_MAX bytes.
 * - ENODEV: a node id that has no pool (offline, memoryless or out of range).
 * - ENOENT: no region of that name in the uid's name space (attach,
 *   destroy; see DOC: region names); a release naming an offset where no
 *   page is present.
 * - EEXIST: the caller's uid has a region of that name already (create);
 *   a grow at an offset (HPMEM_GROW_AT) where a page is already present.
 * - EBADFD: a region command on a file that has no region attached
 *   (grow, segs, release, export, mmap).
 * - EALREADY: create or attach on a file that already has a region.
 * - EBUSY: destroy of a region that is still mapped; a pool shrink that
 *   would need pages that are in use; a release of a page that holds a
 *   DMA pin or that an exported dma-buf holds.
 * - EPERM: pool resize without CAP_SYS_ADMIN; attach or destroy naming
 *   another uid (HPMEM_NAME_UID) without CAP_SYS_ADMIN.
 * - ENOMEM: the pool of the node has too few free pages, the kernel could not
 *   supply a page, the global cap would be exceeded, or RLIMIT_MEMLOCK would
 *   be exceeded (callers without CAP_IPC_LOCK).
 * - ENOSPC: a region would exceed HPMEM_REGION_MAX_PAGES, or a grow would
 *   reach past the region's @max_pages (create, grow).
 * - EDQUOT: the caller's uid holds max_regions_per_user regions already
 *   (create, callers without CAP_SYS_ADMIN).
 * - EACCES: an export (HPMEM_IOC_REGION_EXPORT) from a hpmem file that is
 *   not open for writing.
 * - EBADF: a release (HPMEM_IOC_REGION_RELEASE) or a grow at an offset
 *   (HPMEM_GROW_AT) through a hpmem file that is not open for writing, as
 *   fallocate() on a read-only file.
 * - EMFILE: an export when the process has no free file descriptor.
 * - EINTR: a region list (HPMEM_IOC_REGION_LIST) walking past other uids'
 *   regions when the caller got a fatal signal; nothing was listed.
 * - EOPNOTSUPP: an attach of a sparse region with an @argsz that does not
 *   reach @max_pages (a caller that predates sparse regions would take
 *   @nr_pages for the mapping's size).
 */

/**
 * DOC: region names
 *
 * A region name is looked up among the regions of the caller's effective
 * uid: two users may each have a region "pool", and neither can see,
 * attach, destroy or take the other's name (creating a name another uid
 * uses succeeds). A secondary process of the same user attaches by name
 * as before. A caller with CAP_SYS_ADMIN reaches another uid's regions by
 * setting HPMEM_NAME_UID in the @flags of attach or destroy and the uid
 * (in the caller's user namespace) in @uid; naming one's own uid needs no
 * capability. HPMEM_IOC_REGION_LIST lists every uid's regions to a caller
 * with CAP_SYS_ADMIN, and only the caller's own uid's to anyone else.
 *
 * Every region counts, until its pages are freed, against the
 * max_regions_per_user module parameter of its creator's uid (default
 * 1024, EDQUOT beyond); CAP_SYS_ADMIN callers are not limited. Region
 * memory is charged to the creator's memory cgroup.
 */

#define HPMEM_TYPE		'h'
#define HPMEM_CMD_BASE		0x80

enum {
	HPMEM_CMD_INFO = HPMEM_CMD_BASE,
	HPMEM_CMD_NODE_INFO,
	HPMEM_CMD_POOL_RESIZE,
	HPMEM_CMD_REGION_CREATE,
	HPMEM_CMD_REGION_ATTACH,
	HPMEM_CMD_REGION_GROW,
	HPMEM_CMD_REGION_SEGS,
	HPMEM_CMD_REGION_DESTROY,
	HPMEM_CMD_REGION_LIST,
	HPMEM_CMD_REGION_RELEASE,
	HPMEM_CMD_REGION_EXPORT,
};

/* Feature bits reported by HPMEM_IOC_INFO. */
#define HPMEM_FEAT_PERSISTENT	(1ULL << 0)	/* HPMEM_REGION_PERSISTENT */
#define HPMEM_FEAT_PINNABLE	(1ULL << 1)	/* HPMEM_REGION_PINNABLE */
#define HPMEM_FEAT_PMD_MAP	(1ULL << 2)	/* huge regions map with PMDs */
#define HPMEM_FEAT_DMA_MODEL	(1ULL << 3)	/* INFO reports @dma_model */
#define HPMEM_FEAT_BUSY_PAGES	(1ULL << 4)	/* NODE_INFO reports @busy_pages */
#define HPMEM_FEAT_UID_NAMES	(1ULL << 5)	/* names per uid, HPMEM_NAME_UID */
#define HPMEM_FEAT_REGION_LIST	(1ULL << 6)	/* HPMEM_IOC_REGION_LIST */
#define HPMEM_FEAT_DIRTY_PAGES	(1ULL << 7)	/* NODE_INFO reports @dirty_pages */
/* REGION_LIST entries carry @dma_pinned (and node_pages[] follows it) */
#define HPMEM_FEAT_LIST_DMA_PINNED (1ULL << 8)
/* REGION_LIST without CAP_SYS_ADMIN lists the caller's own regions */
#define HPMEM_FEAT_LIST_OWN	(1ULL << 9)
/* regions with a reserved size, holes, GROW at an offset, REGION_RELEASE */
#define HPMEM_FEAT_SPARSE	(1ULL << 10)
/* HPMEM_IOC_REGION_EXPORT: a region's pages as a dma-buf */
#define HPMEM_FEAT_DMABUF	(1ULL << 11)

/**
 * DOC: device addresses
 *
 * Whether a device's DMA address for a page equals the page's physical
 * address depends on the IOMMU, not on hpmem. HPMEM_IOC_INFO reports in
 * @dma_model what holds for the devices on the PCI bus now:
 *
 * - HPMEM_DMA_NO_IOMMU: no device is attached to an IOMMU; devices DMA to
 *   physical addresses.
 * - HPMEM_DMA_PASSTHROUGH: devices are attached to an IOMMU, all in
 *   identity (passthrough) domains; devices DMA to physical addresses.
 * - HPMEM_DMA_TRANSLATED: the IOMMU translates the DMA of at least one
 *   device (a DMA domain, or a VFIO container's domain; a device whose
 *   DMA is blocked, or that has no domain, counts too). A physical
 *   address means nothing to such a device: it reaches only what was
 *   mapped for it, at the IOVA it was mapped at. hpmem maps nothing for
 *   devices itself; userspace maps regions through VFIO.
 *
 * While the model is HPMEM_DMA_TRANSLATED, HPMEM_IOC_REGION_SEGS reports
 * @iova as 0 (unknown) for every page; @phys is still reported to callers
 * who may see addresses. @dma_translated_devs and @dma_direct_devs count
 * the PCI devices behind an IOMMU that do and do not translate.
 *
 * Which regions a device may reach through VFIO: type1 maps only memory that
 * get_user_pages() can pin, which is HPMEM_REGION_PINNABLE regions. Default
 * regions are mapped as PFNs of ordinary (not reserved) pages, which VFIO
 * type1 refuses to map. Either way, a page that anything outside hpmem still
 * references when its region dies (a VFIO or other GUP pin, a pipe buffer
 * after vmsplice(), a KVM mapping) is never handed to another region: it
 * stays counted in its pool (and against max_pages) as busy, and returns
 * to the free list, zeroed, once the last outside reference is dropped.
 */
#define HPMEM_DMA_NO_IOMMU	0
#define HPMEM_DMA_PASSTHROUGH	1
#define HPMEM_DMA_TRANSLATED	2

/* Per-caller facts reported by HPMEM_IOC_INFO in @caller. */
#define HPMEM_CALLER_ADDRS	(1U << 0)	/* phys/iova are not hidden */

/* Upper bound on the pages of one region (offsets stay below 2^38). */
#define HPMEM_REGION_MAX_PAGES	(1U << 17)

/**
 * struct hpmem_info - HPMEM_IOC_INFO: what this module offers
 * @argsz: sizeof(struct hpmem_info)
 * @flags: must be 0
 * @api_version: out, HPMEM_API_VERSION of the module
 * @page_shift: out, log2 of the page size (21)
 * @features: out, HPMEM_FEAT_* bits
 * @nr_node_ids: out, node ids are below this
 * @name_max: out, HPMEM_NAME_MAX
 * @node_mask: out, bit N set when node N has a pool (nodes 0..63)
 * @max_pages: out, global cap on pages held by all pools together
 * @caller: out, HPMEM_CALLER_* bits for the calling process
 * @dma_model: out, HPMEM_DMA_* (see DOC: device addresses)
 * @dma_translated_devs: out, PCI devices whose DMA an IOMMU translates
 * @dma_direct_devs: out, PCI devices behind an IOMMU in identity domains
 */
struct hpmem_info {
	__u32 argsz;
	__u32 flags;
	__u32 api_version;
	__u32 page_shift;
	__aligned_u64 features;
	__u32 nr_node_ids;
	__u32 name_max;
	__aligned_u64 node_mask;
	__aligned_u64 max_pages;
	__u32 caller;
	__u32 dma_model;
	__u32 dma_translated_devs;
	__u32 dma_direct_devs;
};

#define HPMEM_IOC_INFO		_IO(HPMEM_TYPE, HPMEM_CMD_INFO)

/**
 * struct hpmem_node_info - HPMEM_IOC_NODE_INFO: one node's pool counters
 * @argsz: sizeof(struct hpmem_node_info)
 * @flags: must be 0
 * @node: in, the node id
 * @__reserved: must be 0
 * @total_pages: out, pages held by the pool (free + in use + busy)
 * @free_pages: out, pages not in any region, that a grow can take (dirty
 *              ones included)
 * @inuse_pages: out, pages in regions
 * @mapped_pages: out, pages of regions that are mapped by at least one VMA
 * @busy_pages: out, pages of dead regions that something outside hpmem still
 *              references; they return to @free_pages, zeroed, when it lets go
 * @dirty_pages: out, of @free_pages, those not zeroed yet: a dead region's
 *               pages are zeroed in the background, not by the caller that
 *               closed or destroyed it; a grow short of zeroed pages zeroes
 *               dirty ones itself. No page reaches a region unzeroed.
 */
struct hpmem_node_info {
	__u32 argsz;
	__u32 flags;
	__u32 node;
	__u32 __reserved;
	__aligned_u64 total_pages;
	__aligned_u64 free_pages;
	__aligned_u64 inuse_pages;
	__aligned_u64 mapped_pages;
	__aligned_u64 busy_pages;
	__aligned_u64 dirty_pages;
};

#define HPMEM_IOC_NODE_INFO	_IO(HPMEM_TYPE, HPMEM_CMD_NODE_INFO)

/**
 * struct hpmem_pool_resize - HPMEM_IOC_POOL_RESIZE: set a node's pool size
 * @argsz: sizeof(struct hpmem_pool_resize)
 * @flags: must be 0
 * @node: in, the node id
 * @__reserved: must be 0
 * @nr_pages: in, the pool's new total; out, the pool's total afterwards
 *
 * Growing allocates zeroed pages on @node only and fails with ENOMEM,
 * freeing what it took, when the kernel cannot supply them all. Shrinking
 * frees only free pages and fails with EBUSY when too few are free. Needs
 * CAP_SYS_ADMIN; the same knob is writable in sysfs.
 */
struct hpmem_pool_resize {
	__u32 argsz;
	__u32 flags;
	__u32 node;
	__u32 __reserved;
	__aligned_u64 nr_pages;
};

#define HPMEM_IOC_POOL_RESIZE	_IO(HPMEM_TYPE, HPMEM_CMD_POOL_RESIZE)

/* Region flags, for HPMEM_IOC_REGION_CREATE, reported by ATTACH. */
#define HPMEM_REGION_PERSISTENT	(1U << 0)	/* outlives its users */
#define HPMEM_REGION_PINNABLE	(1U << 1)	/* 4 KiB refcounted PTEs, GUP works */

/**
 * DOC: sparse regions
 *
 * A region created with @max_pages (HPMEM_FEAT_SPARSE) reserves that many
 * page slots, at mmap offsets 0 .. @max_pages * HPMEM_PAGE_SIZE, fixed for
 * its life. It may be mapped anywhere inside the reservation, whatever
 * pages are present: a slot with no page (a hole) raises SIGBUS on access.
 * HPMEM_IOC_REGION_GROW with HPMEM_GROW_AT fills holes at the offset the
 * caller names; HPMEM_IOC_REGION_RELEASE turns pages back into holes and
 * returns them to their pool. Neither needs any process to remap or be told:
 *
 * - a page added to a slot is seen by every mapping of the region on its
 *   next access to that slot (it is inserted at fault time);
 * - a released page is unmapped from every mapping of the region, in every
 *   process, before HPMEM_IOC_REGION_RELEASE returns; from then on an
 *   access raises SIGBUS until the slot is grown again, and a page grown
 *   there later is a zeroed one. No access after the release returns can
 *   reach the old page.
 *
 * Growing is serialised in the module: two processes growing the same hole
 * at once get one success and one EEXIST, which changes nothing, so the
 * loser can look again (HPMEM_IOC_REGION_SEGS) and use the page the winner
 * added. A page that holds a DMA pin (pin_user_pages(): VFIO type1, io_uring
 * fixed buffers, RDMA; only pinnable regions can be pinned) is never
 * released: EBUSY; nor is a page that a dma-buf holds
 * (HPMEM_IOC_REGION_EXPORT: its mmap() and its importers reach the page
 * until its last reference goes), EBUSY too. The pin check comes before
 * the pages are unmapped, so a pin taken in between (from a mapping the
 * release has not zapped yet) is not refused: the page goes busy, and the
 * device still reaches it through that pin until it is unpinned. Userspace
 * must therefore unmap a range from its devices (VFIO_IOMMU_UNMAP_DMA,
 * deregister) before releasing it, never concurrently. A page that
 * something else outside hpmem references (a pipe buffer after
 * vmsplice(), a get_user_pages() reference) leaves the
 * region but not the pool's accounting: it is busy (see DOC: device
 * addresses) until the reference goes. Otherwise the page is counted free in
 * its pool, and zeroed, when the release returns. RLIMIT_MEMLOCK charges
 * follow the page: dropped on release from the user who grew it (nobody's
 * for a page grown with CAP_IPC_LOCK), kept by a busy page until it is free.
 *
 * A region created without @max_pages (@max_pages 0, or a caller that
 * predates it) behaves as before: no holes, mmap within @nr_pages, GROW
 * appends; HPMEM_GROW_AT and HPMEM_IOC_REGION_RELEASE fail with EINVAL.
 * A pinnable sparse region is populated at fault time rather than at
 * mmap(), so that a release racing with an mmap() cannot leave a page
 * mapped: the first access to a 2 MiB page maps all of its 4 KiB pages.
 */

/**
 * struct hpmem_region_create - HPMEM_IOC_REGION_CREATE: new named region
 * @argsz: sizeof(struct hpmem_region_create)
 * @flags: HPMEM_REGION_* bits
 * @name: NUL-terminated, non-empty
 * @max_pages: in, 0 for a region without holes whose size is the pages it
 *             holds (as before this field existed); else the page slots it
 *             reserves, at most HPMEM_REGION_MAX_PAGES (ENOSPC beyond): a
 *             sparse region (see DOC: sparse regions). Reserving costs no
 *             memory.
 *
 * Creates an empty region and attaches it to this file. A region without
 * HPMEM_REGION_PERSISTENT goes away, with its name, when the last file
 * attached to it is closed (a mapping holds its file open). A persistent
 * region lives until HPMEM_IOC_REGION_DESTROY.
 *
 * A HPMEM_REGION_PINNABLE region is mapped with 4 KiB pages that
 * get_user_pages() accepts (O_DIRECT, RDMA, VFIO); the default maps 2 MiB
 * PMDs, which costs one fault per page but cannot be pinned by GUP.
 */
struct hpmem_region_create {
	__u32 argsz;
	__u32 flags;
	char name[HPMEM_NAME_MAX];
	__aligned_u64 max_pages;
};

#define HPMEM_IOC_REGION_CREATE	_IO(HPMEM_TYPE, HPMEM_CMD_REGION_CREATE)

/* Attach and destroy flag: look @name up among @uid's regions. */
#define HPMEM_NAME_UID		(1U << 0)

/**
 * struct hpmem_region_attach - HPMEM_IOC_REGION_ATTACH: attach by name
 * @argsz: sizeof(struct hpmem_region_attach)
 * @flags: 0 or HPMEM_NAME_UID
 * @name: NUL-terminated, non-empty
 * @region_flags: out, the HPMEM_REGION_* flags it was created with
 * @__reserved: out, zero
 * @nr_pages: out, pages in the region now (present pages: holes of a
 *            sparse region do not count)
 * @uid: in, with HPMEM_NAME_UID: whose region (see DOC: region names);
 *       must be 0 otherwise
 * @__reserved2: must be 0
 * @max_pages: out, the slots reserved at creation (0: not sparse, mmap
 *             within @nr_pages); present with HPMEM_FEAT_SPARSE. A caller
 *             whose @argsz stops short of it cannot attach a sparse
 *             region: EOPNOTSUPP, attaching nothing
 */
struct hpmem_region_attach {
	__u32 argsz;
	__u32 flags;
	char name[HPMEM_NAME_MAX];
	__u32 region_flags;
	__u32 __reserved;
	__aligned_u64 nr_pages;
	__u32 uid;
	__u32 __reserved2;
	__aligned_u64 max_pages;
};

#define HPMEM_IOC_REGION_ATTACH	_IO(HPMEM_TYPE, HPMEM_CMD_REGION_ATTACH)

/* Grow flag: put the pages at @offset (sparse regions only). */
#define HPMEM_GROW_AT		(1U << 0)

/**
 * struct hpmem_region_grow - HPMEM_IOC_REGION_GROW: add pages of one node
 * @argsz: sizeof(struct hpmem_region_grow)
 * @flags: 0 or HPMEM_GROW_AT
 * @node: in, the node the pages come from
 * @__reserved: must be 0
 * @nr_pages: in, pages to add (> 0)
 * @offset: with HPMEM_GROW_AT in, else out: mmap offset of the first page
 *
 * The pages are taken from @node's pool, all or none, and placed at
 * consecutive offsets: without HPMEM_GROW_AT after the highest present
 * page (after the last page: appended), with it from @offset, which must
 * be a multiple of HPMEM_PAGE_SIZE (EINVAL) in a sparse region (EINVAL
 * otherwise) where every one of the @nr_pages slots is a hole (EEXIST if
 * not, changing nothing). Either way, slots past the region's @max_pages
 * (of a sparse region) or past HPMEM_REGION_MAX_PAGES give ENOSPC. For a
 * caller who may see addresses
 * (HPMEM_CALLER_ADDRS for this region) they go in ascending physical
 * address order, so physically contiguous pages get consecutive offsets;
 * for other callers in random order, so that the offsets disclose nothing
 * about physical placement.
 */
struct hpmem_region_grow {
	__u32 argsz;
	__u32 flags;
	__u32 node;
	__u32 __reserved;
	__aligned_u64 nr_pages;
	__aligned_u64 offset;
};

#define HPMEM_IOC_REGION_GROW	_IO(HPMEM_TYPE, HPMEM_CMD_REGION_GROW)

/**
 * struct hpmem_region_release - HPMEM_IOC_REGION_RELEASE: give pages back
 * @argsz: sizeof(struct hpmem_region_release)
 * @flags: must be 0
 * @offset: in, mmap offset of the first page, a multiple of HPMEM_PAGE_SIZE
 * @nr_pages: in, pages to release (> 0)
 *
 * Turns @nr_pages consecutive slots of a sparse region back into holes,
 * all or none (see DOC: sparse regions): every page is unmapped from every
 * process, then returned to its pool, zeroed and counted free, before the
 * call returns. EBADF through a file not open for writing; EINVAL for a
 * region that is not sparse, a misaligned @offset, or slots past
 * @max_pages; ENOENT, changing nothing, if any slot
 * is a hole already; EBUSY, changing nothing, if any page holds a DMA pin
 * or is held by a dma-buf. Unmap a range from devices (VFIO) before
 * releasing it: a pin racing the release makes the page busy, not refused.
 * Needs HPMEM_FEAT_SPARSE.
 */
struct hpmem_region_release {
	__u32 argsz;
	__u32 flags;
	__aligned_u64 offset;
	__aligned_u64 nr_pages;
};

#define HPMEM_IOC_REGION_RELEASE _IO(HPMEM_TYPE, HPMEM_CMD_REGION_RELEASE)

/**
 * struct hpmem_seg - one page of a region
 * @offset: mmap offset of the page
 * @phys: physical address, 0 when hidden from the caller
 * @iova: address a device uses for DMA to the page: @phys unless an IOMMU
 *        translates (see DOC: device addresses), where it is 0; 0 too when
 *        hidden from the caller
 * @node: NUMA node of the page
 * @__reserved: zero
 */
struct hpmem_seg {
	__aligned_u64 offset;
	__aligned_u64 phys;
	__aligned_u64 iova;
	__u32 node;
	__u32 __reserved;
};

/**
 * struct hpmem_region_segs - HPMEM_IOC_REGION_SEGS: the segment table
 * @argsz: sizeof(struct hpmem_region_segs)
 * @flags: must be 0
 * @nr_segs: in, entries @segs has room for; out, pages in the region
 * @__reserved: must be 0 (a later flag will name a device here to get
 *              that device's IOVAs)
 * @segs: in, user pointer to an array of struct hpmem_seg
 *
 * Fills min(in @nr_segs, pages) entries. Call with @nr_segs = 0 to learn
 * the count. Only present pages have entries: a sparse region's holes
 * have none, and @offset tells where each page is. Physical addresses
 * and IOVAs are 0 unless the caller has CAP_SYS_ADMIN or the
 * administrator set the module parameter
 * phys_unprivileged (HPMEM_CALLER_ADDRS); a caller who sees them gets the
 * entries in ascending physical address order, others in offset order.
 */
struct hpmem_region_segs {
	__u32 argsz;
	__u32 flags;
	__u32 nr_segs;
	__u32 __reserved;
	__aligned_u64 segs;
};

#define HPMEM_IOC_REGION_SEGS	_IO(HPMEM_TYPE, HPMEM_CMD_REGION_SEGS)

/**
 * struct hpmem_region_destroy - HPMEM_IOC_REGION_DESTROY: remove by name
 * @argsz: sizeof(struct hpmem_region_destroy)
 * @flags: 0 or HPMEM_NAME_UID
 * @name: NUL-terminated, non-empty
 * @uid: in, with HPMEM_NAME_UID: whose region; must be 0 otherwise
 * @__reserved: must be 0
 *
 * Fails with EBUSY, changing nothing, while any process has the region
 * mapped. Otherwise the name is gone at once (it can be created again) and
 * the pages return to their pools when the last attached file is closed.
 * Same name rule as attach.
 */
struct hpmem_region_destroy {
	__u32 argsz;
	__u32 flags;
	char name[HPMEM_NAME_MAX];
	__u32 uid;
	__u32 __reserved;
};

#define HPMEM_IOC_REGION_DESTROY _IO(HPMEM_TYPE, HPMEM_CMD_REGION_DESTROY)

/**
 * struct hpmem_region_entry - one region in HPMEM_IOC_REGION_LIST
 * @name: NUL-terminated
 * @flags: HPMEM_REGION_* it was created with
 * @uid: creator's effective uid, in the caller's user namespace
 * @users: files attached to it (a mapping holds its file)
 * @maps: VMAs mapping it
 * @id: the region's list id (see struct hpmem_region_list)
 * @nr_pages: pages in it
 * @dma_pinned: of @nr_pages, those that hold a DMA pin now (a
 *              pin_user_pages() pin: a VFIO type1 mapping, io_uring fixed
 *              buffers, RDMA; only HPMEM_REGION_PINNABLE regions can be
 *              pinned). A snapshot: pins come and go without hpmem. Present
 *              when HPMEM_IOC_INFO reports HPMEM_FEAT_LIST_DMA_PINNED;
 *              before that, node_pages[] began at this offset
 * @node_pages: pages in it on node 0, 1, ...: as many nodes as the
 *              caller's @entry_size has room for
 */
struct hpmem_region_entry {
	char name[HPMEM_NAME_MAX];
	__u32 flags;
	__u32 uid;
	__u32 users;
	__u32 maps;
	__aligned_u64 id;
	__aligned_u64 nr_pages;
	__aligned_u64 dma_pinned;
	__aligned_u64 node_pages[];
};

/**
 * struct hpmem_region_list - HPMEM_IOC_REGION_LIST: page through regions
 * @argsz: sizeof(struct hpmem_region_list)
 * @flags: must be 0
 * @nr_entries: in, entries @entries has room for; out, entries filled
 * @entry_size: in, bytes per entry: sizeof(struct hpmem_region_entry)
 *              plus 8 per node whose pages are wanted (nr_node_ids of
 *              HPMEM_IOC_INFO for all), a multiple of 8, at most 4096
 * @cursor: in, the first id to list (0 to start); out, the id to pass to
 *          the next call
 * @entries: in, user pointer to @nr_entries entries of @entry_size bytes
 *
 * Lists regions that have a name, in ascending id order: every uid's to a
 * caller with CAP_SYS_ADMIN, only those of the caller's effective uid to
 * anyone else (HPMEM_FEAT_LIST_OWN; before it, EPERM). Each region gets
 * an id at creation, unique among live regions; ids are handed out in
 * increasing order and wrap around at 2^32, so a destroyed region's id may
 * be given to a later one, and one created during a walk may get an id
 * behind the cursor. The kernel may fill fewer entries than there is room
 * for; call again with the returned @cursor until @nr_entries comes back
 * 0. A region that exists for the whole walk is listed exactly once,
 * however many regions there are; one created or destroyed meanwhile may
 * or may not be. Use the name and uid, not the id, to tell regions apart
 * across walks.
 */
struct hpmem_region_list {
	__u32 argsz;
	__u32 flags;
	__u32 nr_entries;
	__u32 entry_size;
	__aligned_u64 cursor;
	__aligned_u64 entries;
};

#define HPMEM_IOC_REGION_LIST	_IO(HPMEM_TYPE, HPMEM_CMD_REGION_LIST)

/**
 * struct hpmem_region_export - HPMEM_IOC_REGION_EXPORT: pages as a dma-buf
 * @argsz: sizeof(struct hpmem_region_export)
 * @flags: must be 0
 * @fd_flags: in, flags of the new file: O_RDONLY or O_RDWR, optionally
 *            with O_CLOEXEC; nothing else
 * @fd: out, the dma-buf's file descriptor
 * @offset: in, mmap offset of the first page to export, a multiple of
 *          HPMEM_PAGE_SIZE
 * @length: in, bytes to export, a non-zero multiple of HPMEM_PAGE_SIZE;
 *          @offset + @length within the region's pages
 *
 * Exports pages of the region attached to this file as a dma-buf, the
 * kernel's way to hand memory to other drivers (ibv_reg_dmabuf_mr(), GPU
 * and accelerator drivers, DRM PRIME). An importing driver maps the pages
 * for its own device through the DMA API, so each device gets the addresses
 * it needs, behind an IOMMU too. Physically contiguous pages come as one
 * scatterlist segment, cut to the device's segment limits. A device that
 * reaches memory at physical addresses (no IOMMU, or an identity domain)
 * and cannot address every page (its DMA mask), or whose segment limits
 * are below 4 KiB, is refused at attach with EINVAL; a mapping that the DMA
 * API made on bounce buffers or that needs syncs (swiotlb=force, SEV/TDX
 * guests, SME, non-coherent devices) is refused at map with EOPNOTSUPP:
 * the importer fails cleanly rather than work on a copy.
 *
 * The dma-buf's own mmap() maps the same pages (MAP_SHARED only, 2 MiB
 * PMDs where the address and offset allow: the dma-buf's file has no
 * get_unmapped_area(), so mmap(NULL) gets a 4 KiB-aligned address and 4 KiB
 * mappings; map at a 2 MiB-aligned address, as libhpmem's hpm_dmabuf_mmap()
 * does, reserving length + 2 MiB and mapping with MAP_FIXED over its first
 * 2 MiB boundary); DMA_BUF_IOCTL_SYNC is
 * accepted and costs nothing, x86 DMA being cache coherent. The file's
 * access mode limits mmap() of the dma-buf only: importers decide their
 * devices' access themselves (an RDMA registration may allow remote writes
 * whatever the dma-buf's mode), so any export gives write access through
 * DMA and needs a hpmem file open for writing.
 *
 * Lifetime: the dma-buf holds its pages, not the region. While the region
 * lives they are its pages as before. Export does not count as a mapping
 * for HPMEM_IOC_REGION_DESTROY: destroy succeeds while a dma-buf is open,
 * as it does while files are attached (an importer, an RDMA registration
 * say, may hold the dma-buf for as long as it likes, and cannot be made to
 * let go). When the region dies, its exported pages stay out of every pool
 * as busy pages (see DOC: device addresses; @busy_pages of
 * HPMEM_IOC_NODE_INFO), still counted and still charged to the user whose
 * RLIMIT_MEMLOCK they were charged to, until the dma-buf's last file
 * reference, mapping and attachment are gone; then they return to the
 * free list, zeroed.
 *
 * Only a process that has the region attached (the same rule as for
 * mmap()) can export it. Errors besides those of DOC: conventions: EBADFD
 * without a region attached; EINVAL for a range that is not page-aligned,
 * empty, outside the region or over a hole, or for @fd_flags other than
 * the above; EACCES on a hpmem file not open for writing, whatever
 * @fd_flags (its mappings could not be writable either); EMFILE when the
 * process has no free file descriptor. Present when HPMEM_IOC_INFO reports
 * HPMEM_FEAT_DMABUF; a module built for a kernel without dma-buf support
 * (CONFIG_DMA_SHARED_BUFFER) does not, and fails it with EOPNOTSUPP.
 */
struct hpmem_region_export {
	__u32 argsz;
	__u32 flags;
	__u32 fd_flags;
	__s32 fd;
	__aligned_u64 offset;
	__aligned_u64 length;
};

#define HPMEM_IOC_REGION_EXPORT	_IO(HPMEM_TYPE, HPMEM_CMD_REGION_EXPORT)

#endif /* _UAPI_LINUX_HPMEM_H */
