/* SPDX-License-Identifier: MIT */
/* Library initialisation: options, process type, backend, IOVA mode. */
#ifndef HPMEM_INIT_H
#define HPMEM_INIT_H

#include <stdint.h>

#include <hpmem/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * A primary creates the region and its shared configuration; a secondary
 * attaches to the region of a live primary by name and maps it at the same
 * virtual address. AUTO becomes primary unless a live primary already owns
 * the name.
 */
enum hpm_proc_type { HPM_PROC_AUTO = 0, HPM_PROC_PRIMARY, HPM_PROC_SECONDARY };

/*
 * Where the memory comes from. AUTO picks kmod when /dev/hpmem answers,
 * else hugetlbfs when a mount has enough free hugepages, else anon (shared
 * memory in /dev/shm, IOVA = VA), and logs its choice at info level.
 */
enum hpm_backend {
	HPM_BACKEND_AUTO = 0,
	HPM_BACKEND_KMOD,
	HPM_BACKEND_HUGETLBFS,
	HPM_BACKEND_ANON,
};

/*
 * What hpm_virt2iova() and every memseg, memzone, mempool and mbuf report
 * as a device's DMA address (docs/IOVA.md):
 * PA: physical addresses (needs a backend that can see them: kmod with
 *     HPMEM_CALLER_ADDRS, hugetlbfs with readable PFNs in pagemap). True
 *     for devices without an IOMMU or in passthrough; with a translating
 *     IOMMU only inside VFIO containers the library maps (hpmem/vfio.h).
 * VA: the virtual addresses; true inside the library's VFIO containers
 *     when the IOMMU can translate addresses that high.
 * COMPACT: HPM_IOVA_COMPACT_BASE + (va - region base); true inside the
 *     library's VFIO containers, and low enough for a 39-bit IOMMU.
 * AUTO: PA when physical addresses are visible and devices DMA to them;
 *     with a translating IOMMU, VA when the region fits its address width,
 *     else COMPACT. A secondary always uses the primary's mode.
 */
enum hpm_iova_mode {
	HPM_IOVA_AUTO = 0,
	HPM_IOVA_PA,
	HPM_IOVA_VA,
	HPM_IOVA_COMPACT,
};

/*
 * Compact IOVAs start at 4 GiB: above the 32-bit window where IOMMUs keep
 * reserved ranges (x86's MSI window at 0xfee00000), far below any IOMMU's
 * address width.
 */
#define HPM_IOVA_COMPACT_BASE	(1ULL << 32)

/* hpm_init_opts.flags */
/*
 * The region will be DMA-mapped through VFIO (hpmem/vfio.h): kmod creates
 * it pinnable (4 KiB PTEs that VFIO type1 can pin). Without it, kmod does
 * so only when the IOMMU translates DMA; the other backends always can.
 */
#define HPM_INIT_F_VFIO		(1U << 0)
/*
 * Fixed memory even with socket limits or behind an IOMMU: all of
 * --socket-mem is taken at start and kept until exit (DPDK's --legacy-mem).
 */
#define HPM_INIT_F_LEGACY_MEM	(1U << 1)

/*
 * Dynamic memory (docs/CORE.md, "Dynamic memory"). A node's socket_mem
 * entry carries two numbers of MiB: the low 32 bits are what is taken at
 * start and never given back (--socket-mem), the high 32 bits the most the
 * node's heap may ever hold (--socket-limit, 0 = none). Any non-zero limit,
 * without HPM_INIT_F_LEGACY_MEM, makes the region dynamic: it reserves
 * address space and region offsets for every limit, the heaps grow by whole
 * pages when a request cannot be met and give whole free pages back. With
 * no limit at all the region is dynamic too behind a translating IOMMU
 * (kmod, hugetlbfs: each node up to what it has at start) and fixed
 * otherwise. The packing keeps struct hpm_init_opts (and the ABI) as it was.
 */
#define HPM_SOCKET_LIMIT_SHIFT	32
#define HPM_SOCKET_MEM(reserve_mib, limit_mib) \
	((uint64_t)(reserve_mib) | ((uint64_t)(limit_mib) << HPM_SOCKET_LIMIT_SHIFT))
#define HPM_SOCKET_MEM_RESERVE(v)	((v) & 0xffffffffULL)
#define HPM_SOCKET_MEM_LIMIT(v)		((v) >> HPM_SOCKET_LIMIT_SHIFT)

struct hpm_init_opts {
	const char *region;              /* region name; NULL -> "hpmem" */
	enum hpm_proc_type proc_type;
	enum hpm_backend backend;
	enum hpm_iova_mode iova_mode;
	/*
	 * MiB per node taken at start (all 0 and no limit -> 64 MiB on node
	 * 0); high 32 bits: the node's limit, see HPM_SOCKET_MEM().
	 */
	uint64_t socket_mem[HPM_MAX_NODES];
	unsigned int max_memzones;       /* 0 -> 2560 */
	const char *huge_dir;            /* hugetlbfs mount; NULL -> found in /proc/mounts */
	uintptr_t base_addr;             /* 0 -> library default */
	int log_level;                   /* 0 -> warnings and errors */
	/*
	 * HPM_INIT_F_* bits; unknown bits fail hpm_init() with -EINVAL.
	 * Added in 0.2 in what was tail padding: size and offsets unchanged,
	 * and 0 for callers that zeroed the struct with hpm_init_opts_default().
	 */
	uint32_t flags;
};

/* Region names: 1..HPM_NAME_SIZE-1 bytes of [A-Za-z0-9._-]. */
#define HPM_REGION_DEFAULT	"hpmem"
#define HPM_SOCKET_MEM_DEFAULT	64	/* MiB on node 0 when none is asked */
#define HPM_MEMZONES_DEFAULT	2560
/* Environment variable hpm_init() parses on top of the caller's options. */
#define HPM_OPTS_ENV		"HPMEM_OPTS"

/* Zeroes @o: every field then means "library default". */
void hpm_init_opts_default(struct hpm_init_opts *o);

/*
 * EAL-like options, each as "--opt value" or "--opt=value":
 *   --region NAME  --socket-mem MiB[,MiB...]  --proc-type auto|primary|secondary
 *   --backend auto|kmod|hugetlbfs|anon  --iova-mode auto|pa|va|compact  --huge-dir DIR
 *   --base-virtaddr ADDR  --max-memzones N  --log-level 1..4|err|warn|info|debug
 *   --vfio (no value: sets HPM_INIT_F_VFIO)
 *   --socket-limit MiB[,MiB...] (the high halves of socket_mem: dynamic memory)
 *   --legacy-mem (no value: sets HPM_INIT_F_LEGACY_MEM)
 * argv[0] is the program name and is skipped. Parsing stops at the first
 * argument that is not one of these options, or after "--" (consumed).
 * Returns the number of arguments consumed after argv[0] (the caller's own
 * arguments start at argv[1 + ret]) or -EINVAL on an unknown option or bad
 * value, with @o unchanged. String values point into argv.
 */
int hpm_parse_args(struct hpm_init_opts *o, int argc, char **argv);

/*
 * Same options in one whitespace-separated string (no program name); every
 * word must be an option or its value. Strings are copied and stay valid
 * for the life of the process. Returns 0 or -EINVAL (@o unchanged).
 */
int hpm_parse_string(struct hpm_init_opts *o, const char *s);

/*
 * Maps the region and sets up the shared configuration, the heaps and the
 * memzone table (primary) or attaches to them (secondary). @o NULL means
 * defaults; the environment variable HPMEM_OPTS is parsed on top.
 * Returns 0 or -errno:
 *   -EALREADY   already initialised in this process
 *   -EINVAL     bad option (region name, sizes, base address alignment,
 *               unknown flags, unknown IOVA mode)
 *   -EEXIST     explicit primary, but a live primary owns the region name
 *   -ENOENT     secondary, but no live primary owns the region name
 *   -EPROTO     secondary, but the region's layout version differs from ours,
 *               or a field of its shared configuration is out of range or
 *               inconsistent (a crashed or hostile primary; logged by name)
 *   -EADDRINUSE the base address range is taken in this process
 *   -EPERM      PA IOVA mode asked, but physical addresses are hidden
 *   -ENOTSUP    HPM_INIT_F_VFIO, but the kmod module cannot make the region
 *               pinnable
 *   -ENODEV     the backend is unusable (no device, no mount, no node)
 *   -ENOMEM     not enough pages
 *   -ETIMEDOUT  secondary: the primary did not finish its initialisation
 */
int hpm_init(const struct hpm_init_opts *o);

/*
 * Unmaps the region from every VFIO container the library tracks
 * (hpmem/vfio.h), then from the process. The primary also removes the
 * region's name (kmod: the region goes away with its last user;
 * hugetlbfs/anon: the file is unlinked); secondaries keep their mappings
 * until their own cleanup.
 * Releases every thread slot this process holds. Returns 0, or -ENODEV when
 * the library is not initialised. hpm_init() may be called again afterwards.
 */
int hpm_cleanup(void);

/* After hpm_init(): what this process became; AUTO / 0 before. */
enum hpm_proc_type hpm_proc_type(void);
enum hpm_backend hpm_backend(void);
const char *hpm_backend_name(enum hpm_backend b);
enum hpm_iova_mode hpm_iova_mode(void);
int hpm_socket_count(void);       /* nodes that have memory in this region */
int hpm_socket_id(void);          /* node of the calling CPU */

#ifdef __cplusplus
}
#endif

#endif /* HPMEM_INIT_H */
