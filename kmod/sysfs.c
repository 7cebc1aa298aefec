// SPDX-License-Identifier: GPL-2.0
/*
 * sysfs: /sys/class/hpmem/hpmem/regions and one nodeN/ directory per pool
 * with its counters and its writable size (docs/ABI/testing/sysfs-class-hpmem).
 */
#include <linux/capability.h>
#include <linux/device.h>
#include <linux/err.h>
#include <linux/kstrtox.h>
#include <linux/nodemask.h>
#include <linux/slab.h>
#include <linux/sysfs.h>

#include "hpmem.h"

/* Root only: the list names every user's regions and their sizes. */
static ssize_t regions_show(struct device *dev, struct device_attribute *attr,
			    char *buf)
{
	return hpmem_regions_show(buf);
}

static DEVICE_ATTR_ADMIN_RO(regions);

static struct attribute *hpmem_dev_attrs[] = {
	&dev_attr_regions.attr,
	NULL,
};

static const struct attribute_group hpmem_dev_group = {
	.attrs = hpmem_dev_attrs,
};

enum hpmem_node_item {
	HPMEM_TOTAL,
	HPMEM_FREE,
	HPMEM_INUSE,
	HPMEM_MAPPED,
	HPMEM_BUSY,
	HPMEM_DIRTY,
	HPMEM_PAGE_SZ,
	HPMEM_NR_NODE_ITEMS
};

/* The files of every nodeN/ directory; total_pages alone is writable. */
static const struct {
	const char *name;
	umode_t mode;
} hpmem_node_items[HPMEM_NR_NODE_ITEMS] = {
	[HPMEM_TOTAL]	= { "total_pages",	0644 },
	[HPMEM_FREE]	= { "free_pages",	0444 },
	[HPMEM_INUSE]	= { "inuse_pages",	0444 },
	[HPMEM_MAPPED]	= { "mapped_pages",	0444 },
	[HPMEM_BUSY]	= { "busy_pages",	0444 },
	[HPMEM_DIRTY]	= { "dirty_pages",	0444 },
	[HPMEM_PAGE_SZ]	= { "page_size",	0444 },
};

/* One file of a nodeN/ directory: which node, which value. */
struct hpmem_node_attr {
	struct device_attribute dattr;
	unsigned int node;
	enum hpmem_node_item item;
};

/*
 * A nodeN/ directory is a named attribute group of the device, so it is
 * created with the device, before its KOBJ_ADD uevent, and removed with it.
 * Its files all receive the device itself: each carries its node.
 */
struct hpmem_node_sysfs {
	struct hpmem_node_attr attrs[HPMEM_NR_NODE_ITEMS];
	struct attribute *ptrs[HPMEM_NR_NODE_ITEMS + 1];
	struct attribute_group group;
	char name[16];
};

static struct hpmem_node_sysfs *hpmem_node_sysfs;
static const struct attribute_group **hpmem_dev_groups;

static ssize_t hpmem_node_show(struct device *dev,
			       struct device_attribute *attr, char *buf)
{
	struct hpmem_node_attr *na = container_of(attr, struct hpmem_node_attr,
						  dattr);
	struct hpmem_pool *pool = hpmem_pool_get(na->node);
	unsigned long val = 0;

	if (!pool)
		return -ENODEV;
	if (na->item == HPMEM_PAGE_SZ)
		return sysfs_emit(buf, "%llu\n", HPMEM_PAGE_SIZE);
	mutex_lock(&hpmem_lock);
	switch (na->item) {
	case HPMEM_TOTAL:
		val = pool->total;
		break;
	case HPMEM_FREE:
		val = pool->nr_free + pool->nr_dirty;
		break;
	case HPMEM_INUSE:
		val = pool->inuse;
		break;
	case HPMEM_MAPPED:
		val = pool->mapped;
		break;
	case HPMEM_BUSY:
		val = pool->nr_busy;
		break;
	case HPMEM_DIRTY:
		val = pool->nr_dirty;
		break;
	default:
		break;
	}
	mutex_unlock(&hpmem_lock);
	return sysfs_emit(buf, "%lu\n", val);
}

/*
 * The same resize as HPMEM_IOC_POOL_RESIZE, with the same capability check:
 * the 0644 mode admits uid 0 alone, including a root that dropped
 * CAP_SYS_ADMIN (a container's init, a sandboxed daemon).
 */
static ssize_t hpmem_total_pages_store(struct device *dev,
				       struct device_attribute *attr,
				       const char *buf, size_t count)
{
	struct hpmem_node_attr *na = container_of(attr, struct hpmem_node_attr,
						  dattr);
	u64 target;
	int ret;

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	ret = kstrtou64(buf, 0, &target);
	if (ret)
		return ret;
	ret = hpmem_pool_resize(na->node, target, NULL);
	return ret ? ret : count;
}

static void hpmem_node_sysfs_fill(struct hpmem_node_sysfs *ns,
				  unsigned int node)
{
	struct hpmem_node_attr *na;
	int i;

	for (i = 0; i < HPMEM_NR_NODE_ITEMS; i++) {
		na = &ns->attrs[i];
		/* Allocated attributes need their own lockdep class. */
		sysfs_attr_init(&na->dattr.attr);
		na->dattr.attr.name = hpmem_node_items[i].name;
		na->dattr.attr.mode = hpmem_node_items[i].mode;
		na->dattr.show = hpmem_node_show;
		if (i == HPMEM_TOTAL)
			na->dattr.store = hpmem_total_pages_store;
		na->node = node;
		na->item = i;
		ns->ptrs[i] = &na->dattr.attr;
	}
	ns->ptrs[HPMEM_NR_NODE_ITEMS] = NULL;
	snprintf(ns->name, sizeof(ns->name), "node%u", node);
	ns->group.name = ns->name;
	ns->group.attrs = ns->ptrs;
}

/*
 * Build the device's attribute groups: the regions file and one named
 * group per pool. Called after the pools exist and before the device is
 * added, which creates the files; hpmem_sysfs_exit() frees them once the
 * device is deleted (device_del() waits for running show/store calls).
 */
const struct attribute_group **hpmem_sysfs_init(void)
{
	unsigned int nid, nr = 0;

	hpmem_node_sysfs = kcalloc(nr_node_ids, sizeof(*hpmem_node_sysfs),
				   GFP_KERNEL);
	/* The regions group, one per node at most, and the NULL. */
	hpmem_dev_groups = kcalloc(nr_node_ids + 2, sizeof(*hpmem_dev_groups),
				   GFP_KERNEL);
	if (!hpmem_node_sysfs || !hpmem_dev_groups) {
		hpmem_sysfs_exit();
		return ERR_PTR(-ENOMEM);
	}
	hpmem_dev_groups[nr++] = &hpmem_dev_group;
	for (nid = 0; nid < nr_node_ids; nid++) {
		if (!hpmem_pool_get(nid))
			continue;
		hpmem_node_sysfs_fill(&hpmem_node_sysfs[nid], nid);
		hpmem_dev_groups[nr++] = &hpmem_node_sysfs[nid].group;
	}
	return hpmem_dev_groups;
}

void hpmem_sysfs_exit(void)
{
	kfree(hpmem_dev_groups);
	hpmem_dev_groups = NULL;
	kfree(hpmem_node_sysfs);
	hpmem_node_sysfs = NULL;
}
