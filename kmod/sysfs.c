// SPDX-License-Identifier: GPL-2.0
/*
 * sysfs: /sys/class/hpmem/hpmem/regions and one nodeN/ directory per pool
 * with its counters and its writable size (docs/ABI/testing/sysfs-class-hpmem).
 */
#include <linux/device.h>
#include <linux/kobject.h>
#include <linux/kstrtox.h>
#include <linux/nodemask.h>
#include <linux/sysfs.h>

#include "hpmem.h"

static ssize_t regions_show(struct device *dev, struct device_attribute *attr,
			    char *buf)
{
	return hpmem_regions_show(buf);
}

static DEVICE_ATTR_RO(regions);

static struct attribute *hpmem_dev_attrs[] = {
	&dev_attr_regions.attr,
	NULL,
};

static const struct attribute_group hpmem_dev_group = {
	.attrs = hpmem_dev_attrs,
};

const struct attribute_group *hpmem_dev_groups[] = {
	&hpmem_dev_group,
	NULL,
};

/* The pool whose nodeN directory @kobj is. */
static struct hpmem_pool *hpmem_kobj_pool(struct kobject *kobj)
{
	struct hpmem_pool *pool;
	int nid;

	for (nid = 0; nid < nr_node_ids; nid++) {
		pool = hpmem_pool_get(nid);
		if (pool && pool->kobj == kobj)
			return pool;
	}
	return NULL;
}

enum hpmem_counter { HPMEM_TOTAL, HPMEM_FREE, HPMEM_INUSE, HPMEM_MAPPED };

static ssize_t hpmem_counter_show(struct kobject *kobj, char *buf,
				  enum hpmem_counter which)
{
	struct hpmem_pool *pool = hpmem_kobj_pool(kobj);
	unsigned long val = 0;

	if (!pool)
		return -ENODEV;
	mutex_lock(&hpmem_lock);
	switch (which) {
	case HPMEM_TOTAL:
		val = pool->total;
		break;
	case HPMEM_FREE:
		val = pool->nr_free;
		break;
	case HPMEM_INUSE:
		val = pool->inuse;
		break;
	case HPMEM_MAPPED:
		val = pool->mapped;
		break;
	}
	mutex_unlock(&hpmem_lock);
	return sysfs_emit(buf, "%lu\n", val);
}

static ssize_t total_pages_show(struct kobject *kobj,
				struct kobj_attribute *attr, char *buf)
{
	return hpmem_counter_show(kobj, buf, HPMEM_TOTAL);
}

/* The same resize as HPMEM_IOC_POOL_RESIZE; file mode 0644 limits it to root. */
static ssize_t total_pages_store(struct kobject *kobj,
				 struct kobj_attribute *attr,
				 const char *buf, size_t count)
{
	struct hpmem_pool *pool = hpmem_kobj_pool(kobj);
	u64 target;
	int ret;

	if (!pool)
		return -ENODEV;
	ret = kstrtou64(buf, 0, &target);
	if (ret)
		return ret;
	ret = hpmem_pool_resize(pool->node, target, NULL);
	return ret ? ret : count;
}

static struct kobj_attribute total_pages_attr = __ATTR_RW(total_pages);

static ssize_t free_pages_show(struct kobject *kobj,
			       struct kobj_attribute *attr, char *buf)
{
	return hpmem_counter_show(kobj, buf, HPMEM_FREE);
}

static struct kobj_attribute free_pages_attr = __ATTR_RO(free_pages);

static ssize_t inuse_pages_show(struct kobject *kobj,
				struct kobj_attribute *attr, char *buf)
{
	return hpmem_counter_show(kobj, buf, HPMEM_INUSE);
}

static struct kobj_attribute inuse_pages_attr = __ATTR_RO(inuse_pages);

static ssize_t mapped_pages_show(struct kobject *kobj,
				 struct kobj_attribute *attr, char *buf)
{
	return hpmem_counter_show(kobj, buf, HPMEM_MAPPED);
}

static struct kobj_attribute mapped_pages_attr = __ATTR_RO(mapped_pages);

static ssize_t page_size_show(struct kobject *kobj,
			      struct kobj_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%llu\n", HPMEM_PAGE_SIZE);
}

static struct kobj_attribute page_size_attr = __ATTR_RO(page_size);

static struct attribute *hpmem_node_attrs[] = {
	&total_pages_attr.attr,
	&free_pages_attr.attr,
	&inuse_pages_attr.attr,
	&mapped_pages_attr.attr,
	&page_size_attr.attr,
	NULL,
};

static const struct attribute_group hpmem_node_group = {
	.attrs = hpmem_node_attrs,
};

int hpmem_sysfs_init(struct device *dev)
{
	struct hpmem_pool *pool;
	char name[16];
	int nid, ret;

	for (nid = 0; nid < nr_node_ids; nid++) {
		pool = hpmem_pool_get(nid);
		if (!pool)
			continue;
		snprintf(name, sizeof(name), "node%d", nid);
		pool->kobj = kobject_create_and_add(name, &dev->kobj);
		if (!pool->kobj) {
			ret = -ENOMEM;
			goto fail;
		}
		ret = sysfs_create_group(pool->kobj, &hpmem_node_group);
		if (ret)
			goto fail;
	}
	return 0;
fail:
	hpmem_sysfs_exit();
	return ret;
}

void hpmem_sysfs_exit(void)
{
	struct hpmem_pool *pool;
	int nid;

	for (nid = 0; nid < nr_node_ids; nid++) {
		pool = hpmem_pool_get(nid);
		if (!pool || !pool->kobj)
			continue;
		/* Removing the directory waits for running show/store calls. */
		kobject_put(pool->kobj);
		pool->kobj = NULL;
	}
}
