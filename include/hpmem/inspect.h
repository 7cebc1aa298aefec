/* SPDX-License-Identifier: MIT */
/* Looking into a running application's region from outside, read-only. */
#ifndef HPMEM_INSPECT_H
#define HPMEM_INSPECT_H

#include <stdbool.h>
#include <stdint.h>

#include <hpmem/common.h>
#include <hpmem/init.h>
#include <hpmem/memzone.h>
#include <hpmem/thread.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * What dpdk-proc-info does for DPDK, without becoming a secondary: the
 * region is mapped read-only (PROT_READ) wherever the kernel puts it, and
 * nothing of the application's is touched. An inspector takes no thread
 * slot, allocates nothing in the region, takes no lock, and never waits for
 * the application; it does not call hpm_init() and may run next to it in a
 * process that did.
 *
 * Everything is read while the application changes it, so figures are a
 * moment's snapshot: counters read one by one may disagree slightly (a
 * pool's cached and available counts, a heap's free and allocated bytes),
 * a zone created or freed meanwhile may be missed. Every address read from
 * the region is range-checked before it is followed and every walk is
 * bounded, so a crashed or hostile primary gets garbage figures or -EPROTO,
 * never a crash or a hang. One exception: a primary that truncates the
 * region's file (hugetlbfs, anon) makes reads of the lost part raise SIGBUS,
 * as for any reader of a mapped file; callers that must survive that catch
 * it (hpmemctl does).
 *
 * Addresses in the structures below are the application's (where it maps
 * the region); they are not valid pointers in the inspecting process.
 */
struct hpm_inspect;

/*
 * Attach to region @region (NULL: "hpmem") on @backend (HPM_BACKEND_AUTO:
 * whichever backend has a region of that name) and map it read-only.
 * 0 or -errno, with one line logged saying why:
 *   -ENOENT   no such region, or (file backends) no live primary owns it
 *   -EAGAIN   its primary has not finished hpm_init() yet
 *   -EPROTO   its shared layout version differs from this library's, or
 *             its configuration is inconsistent
 *   -EINVAL   bad name or backend; -ENOMEM; others from open() and mmap()
 */
int hpm_inspect_open(const char *region, enum hpm_backend backend,
		     struct hpm_inspect **out);
/* Unmap and detach; NULL is a no-op. */
void hpm_inspect_close(struct hpm_inspect *in);

struct hpm_inspect_region {
	char name[HPM_NAME_SIZE];
	enum hpm_backend backend;
	const char *backend_name;
	const char *iova_mode;	/* "pa", "va" or "compact" */
	uint32_t layout_version;
	int primary_pid;
	bool primary_alive;
	uint64_t base;		/* the application's address of the region */
	uint64_t size;
	uint64_t page_sz;
	uint32_t nr_memsegs;
	uint32_t socket_mask;	/* bit n: node n has pages */
	uint32_t max_memzones;
};

int hpm_inspect_region(const struct hpm_inspect *in,
		       struct hpm_inspect_region *out);

/*
 * One node's heap. Blocks in the application's per-thread heap caches are
 * process-private and count as allocated here (as in the heap's own stats).
 */
struct hpm_inspect_heap {
	int socket;
	uint64_t total;		/* bytes given to the heap */
	uint64_t free;		/* bytes in free blocks, headers included */
	uint64_t alloc;		/* bytes in live blocks, headers included */
	uint64_t free_count;
	uint64_t alloc_count;
	/* Largest free block's usable bytes (0 when none or unreadable). */
	uint64_t largest_free;
	uint32_t runs;		/* separate VA ranges */
	int lock_owner_pid;	/* 0 when the heap lock is free */
	/*
	 * The node's pages (hpm_mem_socket_info()): at most @limit, @reserved
	 * kept from start, @present backed now. All three equal for a region
	 * without dynamic memory (--socket-limit).
	 */
	uint64_t limit;
	uint64_t reserved;
	uint64_t present;
};

/*
 * The walkers below call @fn once per item with a structure valid for that
 * call; a non-zero return from @fn stops the walk and is returned. Otherwise
 * they return 0, or -EINVAL for a NULL argument.
 */
int hpm_inspect_heaps(const struct hpm_inspect *in,
		      int (*fn)(const struct hpm_inspect_heap *h, void *arg), void *arg);
/* A copy of each live zone (mz->addr: the application's address). */
int hpm_inspect_memzones(const struct hpm_inspect *in,
			 int (*fn)(const struct hpm_memzone *mz, void *arg), void *arg);

/*
 * One mempool. Its per-thread caches live in the region, one per thread
 * slot, so each slot's count is visible; avail is driver + caches, capped
 * at size.
 */
struct hpm_inspect_mempool {
	char name[HPM_NAME_SIZE];
	uint64_t addr;
	char ops[HPM_NAME_SIZE];	/* driver name, "?" for an unknown id */
	uint32_t size;			/* objects */
	uint32_t populated;
	uint32_t avail;
	uint32_t in_driver;
	uint32_t cached;		/* sum over cache[] */
	uint32_t cache_size;
	uint32_t elt_size;
	uint32_t total_elt_size;	/* header + element + trailer */
	int socket;
	uint32_t flags;
	uint32_t nb_chunks;
	uint64_t get_objs, put_objs;	/* sums of the caches' counters */
	uint32_t cache[HPM_MAX_THREADS];	/* objects cached per thread slot */
};

int hpm_inspect_mempools(const struct hpm_inspect *in,
			 int (*fn)(const struct hpm_inspect_mempool *mp, void *arg),
			 void *arg);

/*
 * One ring: the named rings (hpm_ring_create()) and the rings that serve
 * as mempool drivers (@pool names the pool, empty otherwise).
 */
struct hpm_inspect_ring {
	char name[HPM_NAME_SIZE];
	char pool[HPM_NAME_SIZE];
	uint64_t addr;
	uint32_t flags;		/* HPM_RING_F_* */
	uint32_t size;		/* slots */
	uint32_t capacity;
	uint32_t count;		/* entries, capped at capacity */
	uint32_t prod_head, prod_tail, cons_head, cons_tail;
};

int hpm_inspect_rings(const struct hpm_inspect *in,
		      int (*fn)(const struct hpm_inspect_ring *r, void *arg), void *arg);

/* A run of pages contiguous in VA and IOVA on one node (as hpm_memseg_contig_walk()). */
struct hpm_inspect_memseg_run {
	uint64_t addr;
	uint64_t iova;		/* HPM_BAD_IOVA when unknown */
	uint64_t len;
	uint64_t page_sz;
	uint32_t pages;
	uint32_t config_pages;	/* of them, holding the shared config (HPM_MEMSEG_F_CONFIG) */
	int socket;
};

int hpm_inspect_memsegs(const struct hpm_inspect *in,
			int (*fn)(const struct hpm_inspect_memseg_run *run, void *arg),
			void *arg);

/* A taken thread slot (hpm_thread_register()). */
struct hpm_inspect_thread {
	unsigned int slot;
	int pid;
	int tid;
	bool alive;		/* the thread still exists (slot not yet reclaimed) */
};

int hpm_inspect_threads(const struct hpm_inspect *in,
			int (*fn)(const struct hpm_inspect_thread *t, void *arg), void *arg);

#ifdef __cplusplus
}
#endif

#endif /* HPMEM_INSPECT_H */
