// SPDX-License-Identifier: MIT
/*
 * anon: a /dev/shm file per region (what shm_open() would open, by path so
 * the file helpers can lock and unlink it), 2 MiB logical pages, IOVA = VA.
 * Works on any machine; node placement is a preference, not a promise.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"

#define ANON_DIR	"/dev/shm"
#define ANON_SHIFT	21

static void anon_path(struct hpm_be *be, char *buf, size_t len)
{
	snprintf(buf, len, ANON_DIR "/hpmem-%s", be->name);
}

static void anon_geometry(struct hpm_be *be)
{
	be->page_shift = ANON_SHIFT;
	be->page_sz = 1ULL << ANON_SHIFT;
}

static int anon_probe(struct hpm_be *be, const uint64_t bytes[HPM_MAX_NODES])
{
	(void)be;
	(void)bytes;
	return access(ANON_DIR, W_OK) ? -errno : 0;
}

static int anon_create(struct hpm_be *be, const uint64_t bytes[HPM_MAX_NODES])
{
	char path[PATH_MAX];
	int ret;

	anon_geometry(be);
	anon_path(be, path, sizeof(path));
	/*
	 * Files of dead primaries hold RAM (they were fallocated) until
	 * someone removes them; a new primary does, whatever their names.
	 */
	hpm_be_file_sweep(be, ANON_DIR);
	ret = hpm_be_file_create(be, path);
	if (ret)
		return ret;
	/* Best effort: anon memory is for machines without hugepages. */
	return hpm_be_file_populate(be, bytes, false);
}

static int anon_attach(struct hpm_be *be)
{
	char path[PATH_MAX];

	anon_geometry(be);
	anon_path(be, path, sizeof(path));
	return hpm_be_file_attach(be, path);
}

static int anon_map(struct hpm_be *be, void *addr, size_t len, uint64_t off,
		    enum hpm_map_how how, void **out)
{
	return hpm_be_file_map(be, addr, len, off, how, out, 0);
}

static int anon_segs(struct hpm_be *be, void *base, struct hpm_be_seg *segs, size_t n)
{
	uint64_t off = 0;
	size_t i = 0;

	(void)base;
	for (int node = 0; node < HPM_MAX_NODES; node++) {
		for (uint64_t b = 0; b < be->node_bytes[node]; b += be->page_sz) {
			if (i == n)
				return -EINVAL;
			segs[i].offset = off;
			segs[i].iova = HPM_BAD_IOVA;
			segs[i].node = node;
			off += be->page_sz;
			i++;
		}
	}
	be->addrs = false;
	return i == n ? 0 : -EINVAL;
}

static int anon_grow(struct hpm_be *be, uint64_t off, uint64_t len, int node)
{
	return hpm_be_file_grow(be, off, len, node, false);
}

static int anon_page_info(struct hpm_be *be, void *va, uint64_t off, int node,
			  struct hpm_be_seg *out)
{
	(void)be;
	(void)va;
	out->offset = off;
	out->iova = HPM_BAD_IOVA;
	out->node = node;
	out->hole = false;
	return 0;
}

const struct hpm_be_ops hpm_be_anon_ops = {
	.type = HPM_BACKEND_ANON,
	.name = "anon",
	.probe = anon_probe,
	.create = anon_create,
	.attach = anon_attach,
	.map = anon_map,
	.segs = anon_segs,
	.grow = anon_grow,
	.release = hpm_be_file_release,
	.page_info = anon_page_info,
	.detach = hpm_be_file_detach,
	.destroy = hpm_be_file_destroy,
};
