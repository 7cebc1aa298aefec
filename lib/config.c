// SPDX-License-Identifier: MIT
/* The shared configuration's header: written by the primary, checked by secondaries. */
#include <stddef.h>
#include <string.h>

#include "config.h"
#include "internal.h"

struct hpm_config *hpm_cfg;

size_t hpm_config_len(uint32_t nr_memsegs)
{
	size_t len = offsetof(struct hpm_config, memsegs) +
		     (size_t)nr_memsegs * (sizeof(struct hpm_memseg) + sizeof(uint64_t));

	/* Heap memory starts on its own 4 KiB page after the config. */
	return HPM_ALIGN_UP(len, (size_t)4096);
}

void hpm_config_init_header(struct hpm_config *c)
{
	c->layout_version = HPM_CFG_LAYOUT_VERSION;
	c->cfg_size = sizeof(struct hpm_config);
	c->memseg_size = sizeof(struct hpm_memseg);
	c->heap_size = sizeof(struct hpm_heap);
	/*
	 * The magic goes last: a secondary that sees it can trust the fields
	 * above. Pairs with the acquire load in hpm_config_check().
	 */
	atomic_store_explicit(&c->magic, HPM_CFG_MAGIC,
			      memory_order_release);
}

int hpm_config_check(struct hpm_config *c)
{
	uint64_t magic = atomic_load_explicit(&c->magic,
					      memory_order_acquire);

	if (magic == 0)
		return -EAGAIN;	/* primary still setting up */
	if (magic != HPM_CFG_MAGIC) {
		hpm_log(HPM_LOG_ERR, "the region does not hold an hpmem configuration "
			"(magic 0x%llx)", (unsigned long long)magic);
		return -EPROTO;
	}
	if (c->layout_version != HPM_CFG_LAYOUT_VERSION ||
	    c->cfg_size != sizeof(struct hpm_config) ||
	    c->memseg_size != sizeof(struct hpm_memseg) ||
	    c->heap_size != sizeof(struct hpm_heap)) {
		hpm_log(HPM_LOG_ERR, "region's shared layout is v%u (config %u, memseg %u, "
			"heap %u bytes); this library uses v%u (%zu, %zu, %zu): "
			"rebuild primary and secondary against the same libhpmem",
			c->layout_version, c->cfg_size, c->memseg_size, c->heap_size,
			HPM_CFG_LAYOUT_VERSION, sizeof(struct hpm_config),
			sizeof(struct hpm_memseg), sizeof(struct hpm_heap));
		return -EPROTO;
	}
	return 0;
}
