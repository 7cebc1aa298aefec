/* SPDX-License-Identifier: MIT */
/* Dynamic memory: heaps that grow by whole pages on demand and shrink back. */
#ifndef HPM_DYNMEM_H
#define HPM_DYNMEM_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <hpmem/common.h>

#include "robust_lock.h"

struct hpm_be;
struct hpm_be_seg;
struct hpm_config;
struct hpm_heap;

/* One node's share of a dynamic region, in the shared config. */
struct hpm_dyn_node {
	/*
	 * Serialises growth and release on the node across processes; held
	 * over fallocate()/ioctl, taken before the heap lock, never inside.
	 */
	hpm_robust_lock_t lock;
	uint64_t slice_off;	/* region offset (= VA - base) of its first page */
	uint64_t limit;		/* bytes of the slice: the most the heap may hold */
	uint64_t floor;		/* bytes backed at start and never given back */
	_Atomic uint64_t present;	/* bytes backed now (written under the heap lock) */
	_Atomic uint64_t grown;		/* pages grown since start */
	_Atomic uint64_t released;	/* pages given back since start */
};

struct hpm_dyn {
	uint32_t enabled;	/* 1: the region is dynamic (HPM_CFG_F_DYNAMIC) */
	uint32_t pad;
	/*
	 * Bumped (release) after every change of a memseg entry's presence:
	 * a process whose last seen value differs has events to deliver.
	 */
	_Atomic uint64_t seq;
	struct hpm_dyn_node node[HPM_MAX_NODES];
};

/* The most a node may grow to without --socket-limit (DPDK: 64 GiB per socket and page size). */
#define HPM_DYN_DEFAULT_LIMIT	(64ULL << 30)

/*
 * Primary, from be->page_sz, be->limit (or, with be->limit_default, each
 * node's supply) and be->floor: the region layout
 * (config pages first, then one slice per node with a limit, in node
 * order) in be->cfg_bytes, cfg_node, slice_off, slice_len, floor (rounded
 * to pages) and be->size. 0 or -EINVAL (too big, nothing asked).
 */
int hpm_dyn_plan(struct hpm_be *be);
/* Primary: the initial memseg list of a planned region mapped at @base. */
int hpm_dyn_segs(struct hpm_be *be, void *base, struct hpm_be_seg *segs, size_t n);
/* Primary, after the memseg table is filled: record the plan in @c. */
void hpm_dyn_config_init(struct hpm_config *c, const struct hpm_be *be);
/*
 * Every process, once hpm_cfg is set: start from the current table (no
 * events for what is present now). hpm_dyn_process_fini() at cleanup.
 */
int hpm_dyn_process_init(struct hpm_config *c, struct hpm_be *be);
void hpm_dyn_process_fini(void);

/*
 * Heap hooks (malloc_heap.c calls them for a dynamic region).
 * grow: make room on @h's node for a request that failed: back enough
 * whole pages, write their memsegs, tell callbacks, add them to @h.
 * 0 (retry the request), or -ENOMEM (limit reached, no page to be had).
 * trim: [@va, @va + @len) of @h is free and spans whole pages: give back
 * what the floor and the hysteresis allow.
 */
int hpm_dyn_grow(struct hpm_heap *h, size_t size, size_t align, size_t bound,
		 unsigned int flags, void *arg);
void hpm_dyn_trim(struct hpm_heap *h, void *va, size_t len, void *arg);

/*
 * Tests: bytes of the region's file that hold pages (hugetlbfs, anon),
 * config included; -ENOTSUP on kmod (its pool counters say it).
 */
int hpm_dyn_backed_bytes(uint64_t *bytes);

/* Deliver the events of changes made by other processes (mem_event.c). */
void hpm_mem_event_notify(int type, const void *addr, size_t len);

#endif /* HPM_DYNMEM_H */
