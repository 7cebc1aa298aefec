// SPDX-License-Identifier: GPL-2.0
/*
 * The ioctl dispatcher: one table entry per command with the struct size it
 * needs at least, copy_struct_from_user() for sizes that differ, and every
 * argument check before any side effect (see DOC: conventions in the UAPI).
 */
#include <linux/build_bug.h>
#include <linux/capability.h>
#include <linux/fs.h>
#include <linux/highmem.h>
#include <linux/mm.h>
#include <linux/nodemask.h>
#include <linux/nospec.h>
#include <linux/slab.h>
#include <linux/stddef.h>
#include <linux/string.h>
#include <linux/uaccess.h>

#include "hpmem.h"
#include "compat.h"

/* Pins the layout userspace compiled against. */
#define HPMEM_CHECK_FIELD(type, field, off) \
	BUILD_BUG_ON(offsetof(struct type, field) != (off))

static inline void hpmem_check_abi(void)
{
	BUILD_BUG_ON(sizeof(struct hpmem_info) != 64);
	HPMEM_CHECK_FIELD(hpmem_info, api_version, 8);
	HPMEM_CHECK_FIELD(hpmem_info, features, 16);
	HPMEM_CHECK_FIELD(hpmem_info, nr_node_ids, 24);
	HPMEM_CHECK_FIELD(hpmem_info, node_mask, 32);
	HPMEM_CHECK_FIELD(hpmem_info, max_pages, 40);
	HPMEM_CHECK_FIELD(hpmem_info, caller, 48);
	HPMEM_CHECK_FIELD(hpmem_info, dma_model, 52);
	HPMEM_CHECK_FIELD(hpmem_info, dma_translated_devs, 56);
	HPMEM_CHECK_FIELD(hpmem_info, dma_direct_devs, 60);

	BUILD_BUG_ON(sizeof(struct hpmem_node_info) != 64);
	HPMEM_CHECK_FIELD(hpmem_node_info, node, 8);
	HPMEM_CHECK_FIELD(hpmem_node_info, __reserved, 12);
	HPMEM_CHECK_FIELD(hpmem_node_info, total_pages, 16);
	HPMEM_CHECK_FIELD(hpmem_node_info, mapped_pages, 40);
	HPMEM_CHECK_FIELD(hpmem_node_info, busy_pages, 48);
	HPMEM_CHECK_FIELD(hpmem_node_info, dirty_pages, 56);

	BUILD_BUG_ON(sizeof(struct hpmem_pool_resize) != 24);
	HPMEM_CHECK_FIELD(hpmem_pool_resize, node, 8);
	HPMEM_CHECK_FIELD(hpmem_pool_resize, nr_pages, 16);

	BUILD_BUG_ON(sizeof(struct hpmem_region_create) != 48);
	HPMEM_CHECK_FIELD(hpmem_region_create, name, 8);
	HPMEM_CHECK_FIELD(hpmem_region_create, max_pages, 40);

	HPMEM_CHECK_FIELD(hpmem_region_attach, name, 8);
	HPMEM_CHECK_FIELD(hpmem_region_attach, region_flags, 40);
	HPMEM_CHECK_FIELD(hpmem_region_attach, nr_pages, 48);
	HPMEM_CHECK_FIELD(hpmem_region_attach, uid, 56);
	HPMEM_CHECK_FIELD(hpmem_region_attach, max_pages, 64);
	BUILD_BUG_ON(sizeof(struct hpmem_region_attach) != 72);

	BUILD_BUG_ON(sizeof(struct hpmem_region_grow) != 32);
	HPMEM_CHECK_FIELD(hpmem_region_grow, node, 8);
	HPMEM_CHECK_FIELD(hpmem_region_grow, nr_pages, 16);
	HPMEM_CHECK_FIELD(hpmem_region_grow, offset, 24);

	BUILD_BUG_ON(sizeof(struct hpmem_region_release) != 24);
	HPMEM_CHECK_FIELD(hpmem_region_release, offset, 8);
	HPMEM_CHECK_FIELD(hpmem_region_release, nr_pages, 16);

	BUILD_BUG_ON(sizeof(struct hpmem_seg) != 32);
	HPMEM_CHECK_FIELD(hpmem_seg, phys, 8);
	HPMEM_CHECK_FIELD(hpmem_seg, iova, 16);
	HPMEM_CHECK_FIELD(hpmem_seg, node, 24);

	BUILD_BUG_ON(sizeof(struct hpmem_region_segs) != 24);
	HPMEM_CHECK_FIELD(hpmem_region_segs, nr_segs, 8);
	HPMEM_CHECK_FIELD(hpmem_region_segs, segs, 16);

	BUILD_BUG_ON(sizeof(struct hpmem_region_destroy) != 48);
	HPMEM_CHECK_FIELD(hpmem_region_destroy, name, 8);
	HPMEM_CHECK_FIELD(hpmem_region_destroy, uid, 40);

	BUILD_BUG_ON(sizeof(struct hpmem_region_entry) != 72);
	HPMEM_CHECK_FIELD(hpmem_region_entry, flags, 32);
	HPMEM_CHECK_FIELD(hpmem_region_entry, uid, 36);
	HPMEM_CHECK_FIELD(hpmem_region_entry, id, 48);
	HPMEM_CHECK_FIELD(hpmem_region_entry, nr_pages, 56);
	HPMEM_CHECK_FIELD(hpmem_region_entry, dma_pinned, 64);
	HPMEM_CHECK_FIELD(hpmem_region_entry, node_pages, 72);

	BUILD_BUG_ON(sizeof(struct hpmem_region_list) != 32);
	HPMEM_CHECK_FIELD(hpmem_region_list, nr_entries, 8);
	HPMEM_CHECK_FIELD(hpmem_region_list, entry_size, 12);
	HPMEM_CHECK_FIELD(hpmem_region_list, cursor, 16);
	HPMEM_CHECK_FIELD(hpmem_region_list, entries, 24);

	BUILD_BUG_ON(sizeof(struct hpmem_region_export) != 32);
	HPMEM_CHECK_FIELD(hpmem_region_export, fd_flags, 8);
	HPMEM_CHECK_FIELD(hpmem_region_export, fd, 12);
	HPMEM_CHECK_FIELD(hpmem_region_export, offset, 16);
	HPMEM_CHECK_FIELD(hpmem_region_export, length, 24);
}

/* A name must be non-empty and NUL-terminated within HPMEM_NAME_MAX. */
static int hpmem_name_check(const char *name)
{
	if (!name[0])
		return -EINVAL;
	if (strnlen(name, HPMEM_NAME_MAX) == HPMEM_NAME_MAX)
		return -ENAMETOOLONG;
	return 0;
}

static int hpmem_cmd_info(struct file *file, void *arg)
{
	struct hpmem_info *info = arg;

	if (info->flags)
		return -EINVAL;
	info->api_version = HPMEM_API_VERSION;
	info->page_shift = HPMEM_PAGE_SHIFT;
	info->features = HPMEM_FEAT_PERSISTENT | HPMEM_FEAT_PINNABLE |
			 HPMEM_FEAT_DMA_MODEL | HPMEM_FEAT_BUSY_PAGES |
			 HPMEM_FEAT_UID_NAMES | HPMEM_FEAT_REGION_LIST |
			 HPMEM_FEAT_DIRTY_PAGES | HPMEM_FEAT_LIST_DMA_PINNED |
			 HPMEM_FEAT_LIST_OWN | HPMEM_FEAT_SPARSE;
	if (HPMEM_HAVE_DMABUF)
		info->features |= HPMEM_FEAT_DMABUF;
	if (HPMEM_HAVE_PMD_MAP)
		info->features |= HPMEM_FEAT_PMD_MAP;
	info->nr_node_ids = nr_node_ids;
	info->name_max = HPMEM_NAME_MAX;
	info->node_mask = hpmem_pool_node_mask();
	info->max_pages = hpmem_pool_max_pages();
	info->caller = hpmem_caller_sees_addrs(NULL) ? HPMEM_CALLER_ADDRS : 0;
	/* A caller with the old 56-byte struct gets the model, not the counts. */
	info->dma_model = hpmem_dma_model(&info->dma_translated_devs,
					  &info->dma_direct_devs);
	return 0;
}

static int hpmem_cmd_node_info(struct file *file, void *arg)
{
	struct hpmem_node_info *ni = arg;
	struct hpmem_pool *pool;

	if (ni->flags || ni->__reserved)
		return -EINVAL;
	pool = hpmem_pool_get(ni->node);
	if (!pool)
		return -ENODEV;
	mutex_lock(&hpmem_lock);
	ni->total_pages = pool->total;
	/* A grow takes dirty pages too (zeroing them): they are free. */
	ni->free_pages = pool->nr_free + pool->nr_dirty;
	ni->inuse_pages = pool->inuse;
	ni->mapped_pages = pool->mapped;
	ni->busy_pages = pool->nr_busy;
	ni->dirty_pages = pool->nr_dirty;
	mutex_unlock(&hpmem_lock);
	return 0;
}

static int hpmem_cmd_pool_resize(struct file *file, void *arg)
{
	struct hpmem_pool_resize *pr = arg;

	if (pr->flags || pr->__reserved)
		return -EINVAL;
	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	return hpmem_pool_resize(pr->node, pr->nr_pages, &pr->nr_pages);
}

static int hpmem_cmd_region_create(struct file *file, void *arg)
{
	struct hpmem_region_create *rc = arg;
	int ret;

	if (rc->flags & ~(HPMEM_REGION_PERSISTENT | HPMEM_REGION_PINNABLE))
		return -EINVAL;
	ret = hpmem_name_check(rc->name);
	if (ret)
		return ret;
	if (rc->max_pages > HPMEM_REGION_MAX_PAGES)
		return -ENOSPC;
	return hpmem_region_create(file, rc->name, rc->flags, rc->max_pages);
}

static int hpmem_cmd_region_attach(struct file *file, void *arg)
{
	struct hpmem_region_attach *ra = arg;
	int ret;

	if (ra->flags & ~HPMEM_NAME_UID || ra->__reserved2 ||
	    (!(ra->flags & HPMEM_NAME_UID) && ra->uid))
		return -EINVAL;
	ret = hpmem_name_check(ra->name);
	if (ret)
		return ret;
	ra->__reserved = 0;
	/* A caller that cannot receive max_pages may not attach a sparse one. */
	return hpmem_region_attach(file, ra->name, ra->flags, ra->uid,
				   ra->argsz >= offsetofend(struct hpmem_region_attach,
							    max_pages),
				   &ra->region_flags, &ra->nr_pages,
				   &ra->max_pages);
}

static int hpmem_cmd_region_grow(struct file *file, void *arg)
{
	struct hpmem_region_grow *rg = arg;

	if (rg->flags & ~HPMEM_GROW_AT || rg->__reserved || !rg->nr_pages)
		return -EINVAL;
	if (rg->flags & HPMEM_GROW_AT && rg->offset & (HPMEM_PAGE_SIZE - 1))
		return -EINVAL;
	/* Filling a hole writes the region, as fallocate() does a file. */
	if (rg->flags & HPMEM_GROW_AT && !(file->f_mode & FMODE_WRITE))
		return -EBADF;
	return hpmem_region_grow(file, rg->node, rg->nr_pages, rg->flags,
				 &rg->offset);
}

static int hpmem_cmd_region_release(struct file *file, void *arg)
{
	struct hpmem_region_release *rr = arg;

	if (rr->flags || !rr->nr_pages || rr->offset & (HPMEM_PAGE_SIZE - 1))
		return -EINVAL;
	/*
	 * Punching holes destroys contents every mapping sees: a file that
	 * could not map the region writable may not, as for
	 * fallocate(FALLOC_FL_PUNCH_HOLE) (vfs_fallocate()).
	 */
	if (!(file->f_mode & FMODE_WRITE))
		return -EBADF;
	return hpmem_region_release_pages(file,
					  rr->offset >> HPMEM_PAGE_SHIFT,
					  rr->nr_pages);
}

static int hpmem_cmd_region_segs(struct file *file, void *arg)
{
	struct hpmem_region_segs *rs = arg;
	struct hpmem_seg __user *useg = u64_to_user_ptr(rs->segs);
	struct hpmem_seg *segs = NULL;
	u32 nr, fill;
	int ret;

	if (rs->flags || rs->__reserved)
		return -EINVAL;
	ret = hpmem_region_segs(file, rs->nr_segs, &segs, &nr);
	if (ret)
		return ret;
	fill = min(rs->nr_segs, nr);
	if (fill && copy_to_user(useg, segs, array_size(fill, sizeof(*segs))))
		ret = -EFAULT;
	kvfree(segs);
	rs->nr_segs = nr;
	return ret;
}

static int hpmem_cmd_region_destroy(struct file *file, void *arg)
{
	struct hpmem_region_destroy *rd = arg;
	int ret;

	if (rd->flags & ~HPMEM_NAME_UID || rd->__reserved ||
	    (!(rd->flags & HPMEM_NAME_UID) && rd->uid))
		return -EINVAL;
	ret = hpmem_name_check(rd->name);
	if (ret)
		return ret;
	return hpmem_region_destroy(rd->name, rd->flags, rd->uid);
}

static int hpmem_cmd_region_list(struct file *file, void *arg)
{
	struct hpmem_region_list *rl = arg;
	void __user *uentries = u64_to_user_ptr(rl->entries);
	void *entries;
	u32 nr;
	int ret;

	if (rl->flags || rl->entry_size < sizeof(struct hpmem_region_entry) ||
	    rl->entry_size > PAGE_SIZE || rl->entry_size % sizeof(u64))
		return -EINVAL;
	if (!rl->nr_entries)
		return 0;
	ret = hpmem_region_list(rl->cursor, rl->entry_size, rl->nr_entries,
				&entries, &nr, &rl->cursor);
	if (ret)
		return ret;
	if (nr && copy_to_user(uentries, entries,
			       array_size(nr, rl->entry_size)))
		ret = -EFAULT;
	kvfree(entries);
	rl->nr_entries = nr;
	return ret;
}

union hpmem_ioctl_buf {
	struct hpmem_info info;
	struct hpmem_node_info node_info;
	struct hpmem_pool_resize pool_resize;
	struct hpmem_region_create region_create;
	struct hpmem_region_attach region_attach;
	struct hpmem_region_grow region_grow;
	struct hpmem_region_segs region_segs;
	struct hpmem_region_destroy region_destroy;
	struct hpmem_region_list region_list;
	struct hpmem_region_release region_release;
	struct hpmem_region_export region_export;
};

/**
 * struct hpmem_ioctl_op - one command
 * @size: the struct the kernel knows, copied back out when @out
 * @min_size: smallest @argsz accepted (the first version's struct)
 * @ioctl_num: the full command number
 * @out: the command has output fields
 * @commits: the command changes state before it reports: its results are
 *           written through pinned pages (see hpmem_arg_pin())
 * @execute: runs the command on the kernel copy of the argument
 */
struct hpmem_ioctl_op {
	unsigned int size;
	unsigned int min_size;
	unsigned int ioctl_num;
	bool out;
	bool commits;
	int (*execute)(struct file *file, void *arg);
};

/**
 * struct hpmem_arg_pin - the user pages an argument's results go to
 * @pages: the one or two pages the argument spans
 * @nr: how many
 * @uaddr: the argument's user address
 */
struct hpmem_arg_pin {
	struct page *pages[2];
	int nr;
	unsigned long uaddr;
};

/*
 * A grow or a resize that happened must not report EFAULT: a failing
 * command changes nothing. Writing the argument back before the command
 * proves it writable only until another thread mprotect()s or munmap()s
 * it, so the pages are pinned for writing first (EFAULT then, before any
 * change) and the results go through the pins, which nothing can revoke.
 * The argument must therefore be memory get_user_pages() accepts.
 */
static int hpmem_arg_pin(struct hpmem_arg_pin *pin, void __user *uarg,
			 size_t len)
{
	unsigned long first = (unsigned long)uarg & PAGE_MASK;
	unsigned long last = ((unsigned long)uarg + len - 1) & PAGE_MASK;
	int nr, ret;

	if (!access_ok(uarg, len))
		return -EFAULT;
	nr = last == first ? 1 : 2;
	ret = pin_user_pages_fast(first, nr, FOLL_WRITE, pin->pages);
	if (ret == nr) {
		pin->nr = nr;
		pin->uaddr = (unsigned long)uarg;
		return 0;
	}
	if (ret > 0)
		unpin_user_pages(pin->pages, ret);
	return -EFAULT;
}

/* Writes @len bytes of results through the pins, and releases them. */
static void hpmem_arg_write(struct hpmem_arg_pin *pin, const void *buf,
			    size_t len)
{
	size_t off = offset_in_page(pin->uaddr);
	size_t head = min_t(size_t, len, PAGE_SIZE - off);

	memcpy_to_page(pin->pages[0], off, buf, head);
	if (head < len)
		memcpy_to_page(pin->pages[1], 0, buf + head, len - head);
	unpin_user_pages_dirty_lock(pin->pages, pin->nr, true);
}

/* Indexed by command number; each entry repeats the number to match it. */
static const struct hpmem_ioctl_op hpmem_ioctl_ops[] = {
	[HPMEM_CMD_INFO - HPMEM_CMD_BASE] = {
		.size = sizeof(struct hpmem_info),
		/* 56 bytes: the first struct ended with what is now dma_model. */
		.min_size = offsetofend(struct hpmem_info, dma_model),
		.ioctl_num = HPMEM_IOC_INFO,
		.out = true,
		.execute = hpmem_cmd_info,
	},
	[HPMEM_CMD_NODE_INFO - HPMEM_CMD_BASE] = {
		.size = sizeof(struct hpmem_node_info),
		.min_size = offsetofend(struct hpmem_node_info, mapped_pages),
		.ioctl_num = HPMEM_IOC_NODE_INFO,
		.out = true,
		.execute = hpmem_cmd_node_info,
	},
	[HPMEM_CMD_POOL_RESIZE - HPMEM_CMD_BASE] = {
		.size = sizeof(struct hpmem_pool_resize),
		.min_size = offsetofend(struct hpmem_pool_resize, nr_pages),
		.ioctl_num = HPMEM_IOC_POOL_RESIZE,
		.out = true,
		.commits = true,
		.execute = hpmem_cmd_pool_resize,
	},
	[HPMEM_CMD_REGION_CREATE - HPMEM_CMD_BASE] = {
		.size = sizeof(struct hpmem_region_create),
		/* 40 bytes: the first struct ended with name. */
		.min_size = offsetofend(struct hpmem_region_create, name),
		.ioctl_num = HPMEM_IOC_REGION_CREATE,
		.out = false,
		.execute = hpmem_cmd_region_create,
	},
	[HPMEM_CMD_REGION_ATTACH - HPMEM_CMD_BASE] = {
		.size = sizeof(struct hpmem_region_attach),
		/* 56 bytes: the first struct ended with nr_pages. */
		.min_size = offsetofend(struct hpmem_region_attach, nr_pages),
		.ioctl_num = HPMEM_IOC_REGION_ATTACH,
		.out = true,
		.execute = hpmem_cmd_region_attach,
	},
	[HPMEM_CMD_REGION_GROW - HPMEM_CMD_BASE] = {
		.size = sizeof(struct hpmem_region_grow),
		.min_size = offsetofend(struct hpmem_region_grow, offset),
		.ioctl_num = HPMEM_IOC_REGION_GROW,
		.out = true,
		.commits = true,
		.execute = hpmem_cmd_region_grow,
	},
	[HPMEM_CMD_REGION_SEGS - HPMEM_CMD_BASE] = {
		.size = sizeof(struct hpmem_region_segs),
		.min_size = offsetofend(struct hpmem_region_segs, segs),
		.ioctl_num = HPMEM_IOC_REGION_SEGS,
		.out = true,
		.execute = hpmem_cmd_region_segs,
	},
	[HPMEM_CMD_REGION_DESTROY - HPMEM_CMD_BASE] = {
		.size = sizeof(struct hpmem_region_destroy),
		/* 40 bytes: the first struct ended with name. */
		.min_size = offsetofend(struct hpmem_region_destroy, name),
		.ioctl_num = HPMEM_IOC_REGION_DESTROY,
		.out = false,
		.execute = hpmem_cmd_region_destroy,
	},
	[HPMEM_CMD_REGION_LIST - HPMEM_CMD_BASE] = {
		.size = sizeof(struct hpmem_region_list),
		.min_size = offsetofend(struct hpmem_region_list, entries),
		.ioctl_num = HPMEM_IOC_REGION_LIST,
		.out = true,
		.execute = hpmem_cmd_region_list,
	},
	[HPMEM_CMD_REGION_RELEASE - HPMEM_CMD_BASE] = {
		.size = sizeof(struct hpmem_region_release),
		.min_size = offsetofend(struct hpmem_region_release, nr_pages),
		.ioctl_num = HPMEM_IOC_REGION_RELEASE,
		.out = false,
		.execute = hpmem_cmd_region_release,
	},
	/* Commits: the new fd must reach userspace, so no EFAULT after it. */
	[HPMEM_CMD_REGION_EXPORT - HPMEM_CMD_BASE] = {
		.size = sizeof(struct hpmem_region_export),
		.min_size = offsetofend(struct hpmem_region_export, length),
		.ioctl_num = HPMEM_IOC_REGION_EXPORT,
		.out = true,
		.commits = true,
		.execute = hpmem_region_export,
	},
};

long hpmem_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	void __user *uarg = (void __user *)arg;
	const struct hpmem_ioctl_op *op;
	struct hpmem_arg_pin pin;
	union hpmem_ioctl_buf buf;
	unsigned int nr = _IOC_NR(cmd);
	u32 argsz, outsz;
	int ret;

	hpmem_check_abi();	/* compile time only */

	if (nr < HPMEM_CMD_BASE || nr - HPMEM_CMD_BASE >= ARRAY_SIZE(hpmem_ioctl_ops))
		return -ENOTTY;
	/* The entry's ->execute() is called: no speculation past the table. */
	op = &hpmem_ioctl_ops[array_index_nospec(nr - HPMEM_CMD_BASE,
						 ARRAY_SIZE(hpmem_ioctl_ops))];
	if (op->ioctl_num != cmd)
		return -ENOTTY;

	if (get_user(argsz, (u32 __user *)uarg))
		return -EFAULT;
	if (argsz < op->min_size)
		return -EINVAL;
	/*
	 * copy_struct_from_user() reads every byte past the kernel's struct to
	 * check that it is zero, without rescheduling: bound that scan, as
	 * clone3() and openat2() do, so that one call cannot hold a CPU for
	 * seconds reading gigabytes of zero pages.
	 */
	if (argsz > PAGE_SIZE)
		return -E2BIG;
	/* Larger than we know: fine if the rest is zero (E2BIG if not). */
	ret = copy_struct_from_user(&buf, op->size, uarg, argsz);
	if (ret)
		return ret;

	outsz = min_t(u32, argsz, op->size);
	if (op->commits) {
		ret = hpmem_arg_pin(&pin, uarg, outsz);
		if (ret)
			return ret;
		ret = op->execute(file, &buf);
		if (ret) {
			unpin_user_pages(pin.pages, pin.nr);
			return ret;
		}
		hpmem_arg_write(&pin, &buf, outsz);
		return 0;
	}

	/*
	 * Commands that change nothing, or nothing they report on, may fail
	 * with EFAULT at the end: writing the argument back first only makes
	 * a read-only one fail early.
	 */
	if (op->out && copy_to_user(uarg, &buf, outsz))
		return -EFAULT;
	ret = op->execute(file, &buf);
	if (ret || !op->out)
		return ret;
	if (copy_to_user(uarg, &buf, outsz))
		return -EFAULT;
	return 0;
}
