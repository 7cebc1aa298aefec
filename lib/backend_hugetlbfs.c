// SPDX-License-Identifier: MIT
/*
 * hugetlbfs: a file <mount>/hpmem-<region> of 2 MiB or 1 GiB pages (the
 * mount's page size), each node's range allocated on that node; physical
 * addresses from /proc/self/pagemap when it shows PFNs (CAP_SYS_ADMIN).
 */
#include <errno.h>
#include <fcntl.h>
#include <mntent.h>
#include <stdio.h>
#include <string.h>
#include <sys/statfs.h>
#include <sys/mman.h>
#include <unistd.h>

#include "backend.h"

#define HUGETLBFS_MAGIC_	0x958458f6
#define MPOL_F_NODE_		(1 << 0)
#define MPOL_F_ADDR_		(1 << 1)
#define PM_PRESENT		(1ULL << 63)
#define PM_PFN_MASK		((1ULL << 55) - 1)

/* Page size of a hugetlbfs mount, 0 when @dir is not one. */
static uint64_t mount_page_size(const char *dir)
{
	struct statfs sfs;

	if (statfs(dir, &sfs) || (unsigned long)sfs.f_type != HUGETLBFS_MAGIC_)
		return 0;
	return (uint64_t)sfs.f_bsize;
}

/* A hugepage counter of sysfs, or -1 when there is none. */
static long read_count(const char *path)
{
	long n = -1;
	FILE *f = fopen(path, "re");

	if (!f)
		return -1;
	if (fscanf(f, "%ld", &n) != 1 || n < 0)
		n = -1;
	fclose(f);
	return n;
}

static long free_pages(uint64_t page_sz)
{
	char path[96];

	snprintf(path, sizeof(path), "/sys/kernel/mm/hugepages/hugepages-%llukB/free_hugepages",
		 (unsigned long long)(page_sz >> 10));
	return read_count(path);
}

static uint64_t huge_supply(struct hpm_be *be, int node)
{
	char path[128];
	long n;

	snprintf(path, sizeof(path),
		 "/sys/devices/system/node/node%d/hugepages/hugepages-%llukB/nr_hugepages",
		 node, (unsigned long long)(be->page_sz >> 10));
	n = read_count(path);
	/* A kernel without NUMA has no node directories: it is all node 0. */
	if (n < 0 && node == 0 && access("/sys/devices/system/node", F_OK)) {
		snprintf(path, sizeof(path), "/sys/kernel/mm/hugepages/hugepages-%llukB/nr_hugepages",
			 (unsigned long long)(be->page_sz >> 10));
		n = read_count(path);
	}
	return n < 0 ? 0 : (uint64_t)n * be->page_sz;
}

static uint64_t pages_needed(const uint64_t bytes[HPM_MAX_NODES], uint64_t page_sz)
{
	uint64_t n = 0;

	for (int i = 0; i < HPM_MAX_NODES; i++)
		n += HPM_ALIGN_UP(bytes[i], page_sz) / page_sz;
	return n;
}

/*
 * Which mount: --huge-dir, else for a primary the first hugetlbfs mount
 * with enough free pages, for a secondary the first that holds the file.
 * @bytes NULL: secondary.
 */
static int find_dir(struct hpm_be *be, const uint64_t bytes[HPM_MAX_NODES],
		    char *dir, size_t len)
{
	const char *want = be->opts ? be->opts->huge_dir : NULL;
	struct mntent *m;
	int ret = -ENODEV;
	FILE *f;

	if (want) {
		be->page_sz = mount_page_size(want);
		if (!be->page_sz) {
			hpm_log(HPM_LOG_ERR, "hugetlbfs: %s is not a hugetlbfs mount", want);
			return -ENODEV;
		}
		snprintf(dir, len, "%s", want);
		return 0;
	}
	f = setmntent("/proc/mounts", "re");
	if (!f)
		return -errno;
	while ((m = getmntent(f))) {
		char path[PATH_MAX];
		uint64_t psz;

		if (strcmp(m->mnt_type, "hugetlbfs"))
			continue;
		psz = mount_page_size(m->mnt_dir);
		if (!psz)
			continue;
		if (bytes) {
			long nfree = free_pages(psz);

			if (nfree < 0 || (uint64_t)nfree < pages_needed(bytes, psz)) {
				ret = -ENOMEM;
				continue;
			}
		} else {
			snprintf(path, sizeof(path), "%s/hpmem-%s", m->mnt_dir, be->name);
			if (access(path, F_OK)) {
				ret = -ENOENT;
				continue;
			}
		}
		be->page_sz = psz;
		snprintf(dir, len, "%s", m->mnt_dir);
		ret = 0;
		break;
	}
	endmntent(f);
	if (ret == -ENODEV)
		hpm_log(HPM_LOG_ERR, "hugetlbfs: no hugetlbfs mount (mount one, or --huge-dir)");
	else if (ret == -ENOMEM)
		hpm_log(HPM_LOG_ERR, "hugetlbfs: no mount has enough free hugepages");
	else if (ret == -ENOENT)
		hpm_log(HPM_LOG_ERR, "hugetlbfs: no region '%s' in any hugetlbfs mount",
			be->name);
	return ret;
}

static void set_geometry(struct hpm_be *be)
{
	be->page_shift = (unsigned int)__builtin_ctzll(be->page_sz);
}

static int huge_probe(struct hpm_be *be, const uint64_t bytes[HPM_MAX_NODES])
{
	char dir[PATH_MAX];

	return find_dir(be, bytes, dir, sizeof(dir));
}

static int huge_create(struct hpm_be *be, const uint64_t bytes[HPM_MAX_NODES])
{
	char dir[PATH_MAX], path[PATH_MAX + HPM_NAME_SIZE + 8];
	long nfree;
	int ret;

	ret = find_dir(be, bytes, dir, sizeof(dir));
	if (ret)
		return ret;
	set_geometry(be);
	if (be->page_sz != (2ULL << 20) && be->page_sz != (1ULL << 30)) {
		hpm_log(HPM_LOG_ERR, "hugetlbfs: %s has %llu KiB pages; 2 MiB or 1 GiB needed",
			dir, (unsigned long long)(be->page_sz >> 10));
		return -EINVAL;
	}
	snprintf(path, sizeof(path), "%s/hpmem-%s", dir, be->name);
	/* First: it removes a dead primary's file, whose pages count as used. */
	ret = hpm_be_file_create(be, path);
	if (ret)
		return ret;
	nfree = free_pages(be->page_sz);
	/* Crashed primaries of other regions may hold the pages we need. */
	if (nfree >= 0 && (uint64_t)nfree < pages_needed(bytes, be->page_sz) &&
	    hpm_be_file_sweep(be, dir) > 0)
		nfree = free_pages(be->page_sz);
	if (nfree >= 0 && (uint64_t)nfree < pages_needed(bytes, be->page_sz)) {
		hpm_log(HPM_LOG_ERR, "hugetlbfs: %llu pages of %llu KiB needed, %ld free",
			(unsigned long long)pages_needed(bytes, be->page_sz),
			(unsigned long long)(be->page_sz >> 10), nfree);
		hpm_be_file_destroy(be);
		hpm_be_file_detach(be);
		return -ENOMEM;
	}
	/* Strict: a page on the wrong node would lie in the memseg table. */
	return hpm_be_file_populate(be, bytes, true);
}

static int huge_attach(struct hpm_be *be)
{
	char dir[PATH_MAX], path[PATH_MAX + HPM_NAME_SIZE + 8];
	int ret;

	ret = find_dir(be, NULL, dir, sizeof(dir));
	if (ret)
		return ret;
	set_geometry(be);
	snprintf(path, sizeof(path), "%s/hpmem-%s", dir, be->name);
	return hpm_be_file_attach(be, path);
}

static int huge_map(struct hpm_be *be, void *addr, size_t len, uint64_t off,
		    enum hpm_map_how how, void **out)
{
	/* The primary's pages exist already (fallocate); populate maps them. */
	return hpm_be_file_map(be, addr, len, off, how, out,
			       be->primary && !be->sparse ? MAP_POPULATE : 0);
}

/*
 * Touch the page at @va (it must be present for pagemap and getmempolicy),
 * check its node, and read its physical address into *@pa (0 when pagemap
 * hides PFNs, without CAP_SYS_ADMIN). @pm: /proc/self/pagemap or -1.
 */
static int page_facts(struct hpm_be *be, int pm, void *va, uint64_t off, int want,
		      uint64_t *pa)
{
	uint64_t ent = 0;
	int node = -1;

	(void)be;
	*(volatile char *)va;
	if (hpm_sys_get_mempolicy(&node, NULL, 0, va, MPOL_F_NODE_ | MPOL_F_ADDR_))
		node = want;
	if (node != want) {
		hpm_log(HPM_LOG_ERR, "hugetlbfs: page at offset %llu is on node %d, not %d",
			(unsigned long long)off, node, want);
		return -ENOMEM;
	}
	*pa = 0;
	if (pm >= 0 && pread(pm, &ent, sizeof(ent),
			     (off_t)((uintptr_t)va / 4096 * sizeof(ent))) == sizeof(ent) &&
	    (ent & PM_PRESENT))
		*pa = (ent & PM_PFN_MASK) * 4096;
	return 0;
}

static int huge_segs(struct hpm_be *be, void *base, struct hpm_be_seg *segs, size_t n)
{
	int pm = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	uint64_t off = 0;
	size_t i = 0;
	bool addrs = pm >= 0;
	int ret = -EINVAL;

	for (int want = 0; want < HPM_MAX_NODES; want++) {
		for (uint64_t b = 0; b < be->node_bytes[want]; b += be->page_sz, i++) {
			uint64_t pa;

			if (i == n)
				goto out;
			ret = page_facts(be, pm, (char *)base + off, off, want, &pa);
			if (ret)
				goto out;
			addrs &= pa != 0;	/* PFNs hidden without CAP_SYS_ADMIN */
			segs[i].offset = off;
			segs[i].iova = pa;
			segs[i].node = want;
			off += be->page_sz;
		}
	}
	ret = i == n ? 0 : -EINVAL;
	be->addrs = addrs;
	if (!addrs)
		for (i = 0; i < n; i++)
			segs[i].iova = HPM_BAD_IOVA;
out:
	if (pm >= 0)
		close(pm);
	return ret;
}

static int huge_grow(struct hpm_be *be, uint64_t off, uint64_t len, int node)
{
	/* Strict: a page on the wrong node would lie in the memseg table. */
	return hpm_be_file_grow(be, off, len, node, true);
}

/*
 * Dynamic regions. The first call (the config page, at the primary's
 * init) also decides be->addrs, and with it the IOVA mode.
 */
static int huge_page_info(struct hpm_be *be, void *va, uint64_t off, int node,
			  struct hpm_be_seg *out)
{
	int pm = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	uint64_t pa;
	int ret;

	ret = page_facts(be, pm, va, off, node, &pa);
	if (pm >= 0)
		close(pm);
	if (ret)
		return ret;
	if (off == 0)
		be->addrs = pa != 0;
	out->offset = off;
	/* A secondary never sees offset 0 here: the caller judges a missing one. */
	out->iova = pa ? pa : HPM_BAD_IOVA;
	out->node = node;
	out->hole = false;
	return 0;
}

const struct hpm_be_ops hpm_be_hugetlbfs_ops = {
	.type = HPM_BACKEND_HUGETLBFS,
	.name = "hugetlbfs",
	.probe = huge_probe,
	.create = huge_create,
	.attach = huge_attach,
	.map = huge_map,
	.segs = huge_segs,
	.grow = huge_grow,
	.release = hpm_be_file_release,
	.page_info = huge_page_info,
	.supply = huge_supply,
	.detach = hpm_be_file_detach,
	.destroy = hpm_be_file_destroy,
};
