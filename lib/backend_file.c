// SPDX-License-Identifier: MIT
/*
 * What the hugetlbfs and anon backends share: a region is a file named
 * after it, the primary holds an exclusive flock on it for its lifetime,
 * and pages are placed on a node by fallocate() under a thread policy.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "backend.h"
#include "config.h"
#include "dynmem.h"

#define MPOL_DEFAULT_	0
#define MPOL_PREFERRED_	1
#define MPOL_BIND_	2
/* Bits in our node masks; the kernel wants maxnode >= nr_node_ids. */
#define HPM_MASK_BITS	1024

long hpm_sys_set_mempolicy(int mode, const unsigned long *mask, unsigned long maxnode)
{
	return syscall(SYS_set_mempolicy, mode, mask, maxnode);
}

long hpm_sys_get_mempolicy(int *mode, unsigned long *mask, unsigned long maxnode,
			   void *addr, unsigned long flags)
{
	return syscall(SYS_get_mempolicy, mode, mask, maxnode, addr, flags);
}

int hpm_mmap_how(void *addr, size_t len, int prot, int flags, int fd,
		 off_t off, enum hpm_map_how how, void **out)
{
	void *p;

	if (how == HPM_MAP_NOREPLACE)
		flags |= MAP_FIXED_NOREPLACE;
	else if (how == HPM_MAP_REPLACE)
		flags |= MAP_FIXED;
	p = mmap(addr, len, prot, flags, fd, off);
	if (p == MAP_FAILED)
		return errno == EEXIST && how == HPM_MAP_NOREPLACE ? -EADDRINUSE : -errno;
	/* Kernels before 4.17 ignore NOREPLACE and treat addr as a hint. */
	if (how != HPM_MAP_HINT && p != addr) {
		munmap(p, len);
		return -EADDRINUSE;
	}
	*out = p;
	return 0;
}

/* Unlink @path only if it still names the file open as @fd. */
static void unlink_if_same(int fd, const char *path)
{
	struct stat a, b;

	if (fstat(fd, &a) || stat(path, &b))
		return;
	if (a.st_dev == b.st_dev && a.st_ino == b.st_ino)
		unlink(path);
}

int hpm_be_file_create(struct hpm_be *be, const char *path)
{
	/*
	 * The primary locks right after creating. A contender that can lock
	 * a file shared therefore found it unowned: either its primary died,
	 * or one is between open and flock, in which case that primary's
	 * flock fails and it starts over. A few rounds settle any race.
	 */
	for (int tries = 0; tries < 16; tries++) {
		int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

		if (fd >= 0) {
			if (!flock(fd, LOCK_EX | LOCK_NB)) {
				be->fd = fd;
				/* Shared file pages: get_user_pages() and VFIO pin them. */
				be->pinnable = true;
				snprintf(be->path, sizeof(be->path), "%s", path);
				return 0;
			}
			close(fd);
			usleep(1000);
			continue;
		}
		if (errno != EEXIST) {
			int err = errno;

			hpm_log(HPM_LOG_ERR, "%s: cannot create %s: %s", be->ops->name,
				path, strerror(err));
			return -err;
		}
		fd = open(path, O_RDWR | O_CLOEXEC);
		if (fd < 0) {
			if (errno == ENOENT)
				continue;
			return -errno;
		}
		if (flock(fd, LOCK_SH | LOCK_NB)) {
			close(fd);
			if (errno == EWOULDBLOCK)
				return -EEXIST;
			return -errno;
		}
		hpm_log(HPM_LOG_WARN, "%s: removing %s left by a dead primary",
			be->ops->name, path);
		unlink_if_same(fd, path);
		close(fd);
	}
	hpm_log(HPM_LOG_ERR, "%s: %s keeps changing under us", be->ops->name, path);
	return -EBUSY;
}

int hpm_be_file_sweep(struct hpm_be *be, const char *dir)
{
	struct dirent *de;
	int removed = 0;
	DIR *d = opendir(dir);

	if (!d)
		return 0;
	while ((de = readdir(d))) {
		char path[PATH_MAX];
		int fd;

		if (strncmp(de->d_name, "hpmem-", 6))
			continue;
		if (snprintf(path, sizeof(path), "%s/%s", dir, de->d_name) >= (int)sizeof(path))
			continue;
		fd = open(path, O_RDWR | O_CLOEXEC);
		if (fd < 0)
			continue;
		/* Same rule as in create: lockable means no live primary. */
		if (!flock(fd, LOCK_SH | LOCK_NB)) {
			hpm_log(HPM_LOG_WARN, "%s: removing %s left by a dead primary",
				be->ops->name, path);
			unlink_if_same(fd, path);
			removed++;
		}
		close(fd);
	}
	closedir(d);
	return removed;
}

int hpm_be_file_attach(struct hpm_be *be, const char *path)
{
	struct stat st;
	int fd = open(path, O_RDWR | O_CLOEXEC);

	if (fd < 0) {
		int err = errno;

		if (err == ENOENT)
			hpm_log(HPM_LOG_ERR, "%s: no region '%s' (%s)", be->ops->name,
				be->name, path);
		else
			hpm_log(HPM_LOG_ERR, "%s: cannot open %s: %s", be->ops->name,
				path, strerror(err));
		return -err;
	}
	if (!flock(fd, LOCK_SH | LOCK_NB)) {
		/* Nobody holds it exclusively: its primary is gone. */
		close(fd);
		hpm_log(HPM_LOG_ERR, "%s: region '%s' has no live primary",
			be->ops->name, be->name);
		return -ENOENT;
	}
	if (fstat(fd, &st)) {
		int err = errno;

		close(fd);
		return -err;
	}
	be->fd = fd;
	be->size = (uint64_t)st.st_size;
	snprintf(be->path, sizeof(be->path), "%s", path);
	return 0;
}

int hpm_be_file_map(struct hpm_be *be, void *addr, size_t len, uint64_t off,
		    enum hpm_map_how how, void **out, int extra_flags)
{
	/*
	 * A dynamic region maps its holes too: without NORESERVE hugetlbfs
	 * would reserve a hugepage for every one of them at mmap time.
	 */
	if (be->sparse)
		extra_flags |= MAP_NORESERVE;
	return hpm_mmap_how(addr, len, PROT_READ | PROT_WRITE, MAP_SHARED | extra_flags,
			    be->fd, (off_t)off, how, out);
}

void hpm_be_file_detach(struct hpm_be *be)
{
	if (be->fd >= 0)
		close(be->fd);	/* drops the primary's flock too */
	be->fd = -1;
}

void hpm_be_file_destroy(struct hpm_be *be)
{
	if (be->fd >= 0)
		unlink_if_same(be->fd, be->path);
}

/*
 * Allocate [off, off + len) of be->fd on @node (fallocate under a
 * temporary thread memory policy; @strict: MPOL_BIND, else PREFERRED).
 */
static int alloc_node(struct hpm_be *be, uint64_t off, uint64_t len, int node,
		      bool strict)
{
	unsigned long old_mask[HPM_MASK_BITS / (8 * sizeof(long))];
	unsigned long mask[HPM_MASK_BITS / (8 * sizeof(long))] = { 0 };
	int old_mode = MPOL_DEFAULT_, err = 0;
	bool restore = false;

	/*
	 * fallocate() allocates under the calling thread's policy when the
	 * file has no shared policy, and fails with ENOSPC/ENOMEM where
	 * mbind() + touching would SIGBUS on a node that runs out.
	 */
	mask[node / (8 * sizeof(long))] = 1UL << (node % (8 * sizeof(long)));
	if (!hpm_sys_get_mempolicy(&old_mode, old_mask, HPM_MASK_BITS, NULL, 0)) {
		if (!hpm_sys_set_mempolicy(strict ? MPOL_BIND_ : MPOL_PREFERRED_, mask,
					   HPM_MASK_BITS))
			restore = true;
		else
			err = -errno;
	} else {
		err = -errno;
	}
	if (err && strict) {
		hpm_log(HPM_LOG_ERR, "%s: cannot bind to node %d: %s", be->ops->name,
			node, strerror(-err));
		return err == -EINVAL ? -ENODEV : err;
	}
	if (err)
		hpm_log(HPM_LOG_DEBUG, "%s: node %d: policy not set (%s), pages go anywhere",
			be->ops->name, node, strerror(-err));
	err = 0;
	if (fallocate(be->fd, 0, (off_t)off, (off_t)len))
		err = -errno;
	if (restore)
		hpm_sys_set_mempolicy(old_mode, old_mode == MPOL_DEFAULT_ ? NULL : old_mask,
				      old_mode == MPOL_DEFAULT_ ? 0 : HPM_MASK_BITS);
	if (err) {
		/* At run time (dynamic growth) running out is an answer, not an error. */
		hpm_log(be->sparse && off >= be->cfg_bytes && hpm_cfg ? HPM_LOG_DEBUG : HPM_LOG_ERR,
			"%s: cannot get %llu MiB on node %d: %s",
			be->ops->name, (unsigned long long)(len >> 20), node,
			strerror(-err));
		return err == -ENOSPC ? -ENOMEM : err;
	}
	return 0;
}

int hpm_be_file_grow(struct hpm_be *be, uint64_t off, uint64_t len, int node,
		     bool strict)
{
	return alloc_node(be, off, len, node, strict);
}

int hpm_be_file_release(struct hpm_be *be, uint64_t off, uint64_t len)
{
	/*
	 * Punching frees the pages and zaps them from every process's
	 * mapping (the kernel walks the file's mappings); KEEP_SIZE keeps
	 * the reservation, so the offsets stay valid for a later grow.
	 */
	if (fallocate(be->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      (off_t)off, (off_t)len))
		return -errno;
	return 0;
}

/* Dynamic: size for the whole reservation, back the config and the floors. */
static int populate_sparse(struct hpm_be *be, bool strict)
{
	int ret;

	ret = hpm_dyn_plan(be);
	if (ret)
		goto err_remove;
	if (ftruncate(be->fd, (off_t)be->size)) {
		ret = -errno;
		hpm_log(HPM_LOG_ERR, "%s: cannot size %s: %s", be->ops->name,
			be->path, strerror(errno));
		goto err_remove;
	}
	ret = alloc_node(be, 0, be->cfg_bytes, be->cfg_node, strict);
	for (int n = 0; n < HPM_MAX_NODES && !ret; n++)
		if (be->floor[n])
			ret = alloc_node(be, be->slice_off[n], be->floor[n], n, strict);
	if (ret)
		goto err_remove;
	return 0;

err_remove:
	hpm_be_file_destroy(be);
	hpm_be_file_detach(be);
	return ret;
}

int hpm_be_file_populate(struct hpm_be *be, const uint64_t bytes[HPM_MAX_NODES],
			 bool strict)
{
	uint64_t off = 0;
	int ret;

	if (be->sparse)
		return populate_sparse(be, strict);

	for (int n = 0; n < HPM_MAX_NODES; n++) {
		be->node_bytes[n] = HPM_ALIGN_UP(bytes[n], be->page_sz);
		off += be->node_bytes[n];
	}
	be->size = off;
	if (ftruncate(be->fd, (off_t)be->size)) {
		ret = -errno;
		hpm_log(HPM_LOG_ERR, "%s: cannot size %s: %s", be->ops->name,
			be->path, strerror(errno));
		goto err_remove;
	}
	off = 0;
	for (int n = 0; n < HPM_MAX_NODES; n++) {
		if (!be->node_bytes[n])
			continue;
		ret = alloc_node(be, off, be->node_bytes[n], n, strict);
		if (ret)
			goto err_remove;
		off += be->node_bytes[n];
	}
	return 0;

err_remove:
	hpm_be_file_destroy(be);
	hpm_be_file_detach(be);
	return ret;
}
