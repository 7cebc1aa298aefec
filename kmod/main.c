// SPDX-License-Identifier: GPL-2.0
/*
 * hpmem: pinned 2 MiB pages per NUMA node, grouped into named regions and
 * exposed through /dev/hpmem. This file holds the character device, its
 * file_operations and module init/exit; docs/MODULE.md has the design.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/cdev.h>
#include <linux/compat.h>
#include <linux/device.h>
#include <linux/err.h>
#include <linux/fs.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/uidgid.h>

#include "hpmem.h"
#include "compat.h"

static ushort mode = 0600;
module_param(mode, ushort, 0444);
MODULE_PARM_DESC(mode, "Permissions of /dev/hpmem (default: 0600)");

static uint gid;
module_param(gid, uint, 0444);
MODULE_PARM_DESC(gid, "Group owning /dev/hpmem, to grant it access with mode=0660 (default: 0, root)");

static dev_t hpmem_devt;
static struct cdev hpmem_cdev;
static struct device *hpmem_dev;

static struct class hpmem_class = {
	.name = "hpmem",
};

char *hpmem_devnode(umode_t *devmode, kuid_t *uid, kgid_t *devgid)
{
	if (devmode)
		*devmode = mode & 0777;
	if (devgid)
		*devgid = make_kgid(&init_user_ns, gid);
	return NULL;
}

static const struct device_type hpmem_devtype = {
	.name = "hpmem",
	.devnode = hpmem_devnode_cb,
};

static int hpmem_open(struct inode *inode, struct file *file)
{
	/* private_data: the attached region, none yet */
	file->private_data = NULL;
	return hpmem_mmap_open(file);
}

static int hpmem_release(struct inode *inode, struct file *file)
{
	hpmem_region_release(file);
	hpmem_mmap_close(file);
	return 0;
}

static const struct file_operations hpmem_fops = {
	/* Open files and their mappings hold the module. */
	.owner			= THIS_MODULE,
	.open			= hpmem_open,
	.release		= hpmem_release,
	.unlocked_ioctl		= hpmem_ioctl,
	.compat_ioctl		= compat_ptr_ioctl,
	.mmap			= hpmem_mmap,
	.get_unmapped_area	= hpmem_get_unmapped_area,
	.llseek			= noop_llseek,
};

static void hpmem_dev_release(struct device *dev)
{
	kfree(dev);
}

/*
 * Register the character device with its sysfs @groups. Adding the device
 * is the last step: the files under /sys/class/hpmem/hpmem exist before the
 * KOBJ_ADD uevent, and /dev/hpmem appears only once nothing can fail.
 */
static int hpmem_chrdev_init(const struct attribute_group **groups)
{
	struct device *dev;
	int ret;

	ret = alloc_chrdev_region(&hpmem_devt, 0, 1, "hpmem");
	if (ret)
		return ret;
	ret = class_register(&hpmem_class);
	if (ret)
		goto err_unregister_chrdev_region;

	dev = kzalloc(sizeof(*dev), GFP_KERNEL);
	if (!dev) {
		ret = -ENOMEM;
		goto err_unregister_class;
	}
	device_initialize(dev);
	dev->devt = hpmem_devt;
	dev->class = &hpmem_class;
	dev->type = &hpmem_devtype;
	dev->groups = groups;
	dev->release = hpmem_dev_release;
	ret = dev_set_name(dev, "hpmem");
	if (ret)
		goto err_put_device;

	cdev_init(&hpmem_cdev, &hpmem_fops);
	hpmem_cdev.owner = THIS_MODULE;
	ret = cdev_device_add(&hpmem_cdev, dev);
	if (ret)
		goto err_put_device;
	hpmem_dev = dev;
	return 0;

err_put_device:
	put_device(dev);
err_unregister_class:
	class_unregister(&hpmem_class);
err_unregister_chrdev_region:
	unregister_chrdev_region(hpmem_devt, 1);
	return ret;
}

/* The reverse of hpmem_chrdev_init(): /dev/hpmem and its sysfs go first. */
static void hpmem_chrdev_exit(void)
{
	cdev_device_del(&hpmem_cdev, hpmem_dev);
	put_device(hpmem_dev);
	hpmem_dev = NULL;
	class_unregister(&hpmem_class);
	unregister_chrdev_region(hpmem_devt, 1);
}

static int __init hpmem_init(void)
{
	const struct attribute_group **groups;
	int ret;

	ret = hpmem_mmap_init();
	if (ret)
		return ret;
	ret = hpmem_pool_init();
	if (ret)
		goto err_mmap_exit;
	ret = hpmem_region_init();
	if (ret)
		goto err_pool_exit;
	groups = hpmem_sysfs_init();
	if (IS_ERR(groups)) {
		ret = PTR_ERR(groups);
		goto err_region_exit;
	}
	/* Last: userspace can open the device from here on. */
	ret = hpmem_chrdev_init(groups);
	if (ret)
		goto err_sysfs_exit;
	return 0;

err_sysfs_exit:
	hpmem_sysfs_exit();
err_region_exit:
	hpmem_region_exit();
err_pool_exit:
	hpmem_pool_exit();
err_mmap_exit:
	hpmem_mmap_exit();
	return ret;
}

static void __exit hpmem_exit(void)
{
	/* First: no new opener, and no sysfs file left that reads the pools. */
	hpmem_chrdev_exit();
	hpmem_sysfs_exit();
	/* No file is open (fops.owner): only persistent regions are left. */
	hpmem_region_exit();
	hpmem_pool_exit();
	hpmem_mmap_exit();
}

module_init(hpmem_init);
module_exit(hpmem_exit);

MODULE_DESCRIPTION("Pinned 2 MiB pages per NUMA node in named regions, for DPDK-style memory");
MODULE_AUTHOR("The hpmem authors");
MODULE_LICENSE("GPL");
MODULE_VERSION(HPMEM_VERSION);
