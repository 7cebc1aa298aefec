// SPDX-License-Identifier: MIT
/* QEMU edu device: find it, open it through sysfs or VFIO, DMA. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <linux/vfio.h>

#include <hpmem/vfio.h>

#include "edu.h"

#define SYSFS_PCI	"/sys/bus/pci/devices"

/* BAR0 registers. */
#define REG_ID		0x00
#define REG_DMA_SRC	0x80
#define REG_DMA_DST	0x88
#define REG_DMA_CNT	0x90
#define REG_DMA_CMD	0x98
#define CMD_START	(1u << 0)
#define CMD_TO_RAM	(1u << 1)	/* device buffer -> RAM */
/* Where the buffer sits in the device's own address space. */
#define EDU_BUF_ADDR	0x40000
#define EDU_BAR_SIZE	(1u << 20)

#define PCI_CMD_OFF	0x04
#define PCI_CMD_MASTER	0x0004

static int read_hex(const char *bdf, const char *attr, unsigned int *val)
{
	char path[256];
	FILE *f;
	int n;

	snprintf(path, sizeof(path), SYSFS_PCI "/%s/%s", bdf, attr);
	f = fopen(path, "r");
	if (f == NULL)
		return -errno;
	n = fscanf(f, "%x", val);
	fclose(f);
	return n == 1 ? 0 : -EINVAL;
}

static bool driven_by_vfio(const char *bdf)
{
	char path[256], link[256], *name;
	ssize_t n;

	snprintf(path, sizeof(path), SYSFS_PCI "/%s/driver", bdf);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0)
		return false;	/* no driver */
	link[n] = '\0';
	name = strrchr(link, '/');
	return strcmp(name ? name + 1 : link, "vfio-pci") == 0;
}

int edu_find(char *bdf, size_t size, bool *vfio_bound)
{
	struct dirent *d;
	unsigned int vendor, device;
	DIR *dir;
	int ret = -ENODEV;

	dir = opendir(SYSFS_PCI);
	if (dir == NULL)
		return -ENODEV;
	while ((d = readdir(dir)) != NULL) {
		if (d->d_name[0] == '.')
			continue;
		if (read_hex(d->d_name, "vendor", &vendor) ||
		    read_hex(d->d_name, "device", &device) ||
		    vendor != EDU_VENDOR || device != EDU_DEVICE)
			continue;
		snprintf(bdf, size, "%s", d->d_name);
		if (vfio_bound)
			*vfio_bound = driven_by_vfio(d->d_name);
		ret = 0;
		break;
	}
	closedir(dir);
	return ret;
}

static void init_edu(struct edu *e, const char *bdf)
{
	memset(e, 0, sizeof(*e));
	snprintf(e->bdf, sizeof(e->bdf), "%s", bdf ? bdf : "");
	e->bar_fd = -1;
	e->cfg_fd = -1;
	e->container = HPM_VFIO_DEFAULT_CONTAINER;
}

/* A device without bus mastering drops its DMA silently. */
static int enable_bus_master(struct edu *e)
{
	uint16_t cmd;

	if (pread(e->cfg_fd, &cmd, sizeof(cmd), e->cfg_off + PCI_CMD_OFF) !=
	    sizeof(cmd))
		return -EIO;
	if (cmd & PCI_CMD_MASTER)
		return 0;
	cmd |= PCI_CMD_MASTER;
	if (pwrite(e->cfg_fd, &cmd, sizeof(cmd), e->cfg_off + PCI_CMD_OFF) !=
	    sizeof(cmd))
		return -EIO;
	return 0;
}

static int map_bar(struct edu *e, int fd, uint64_t offset, size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
		       (off_t)offset);

	if (p == MAP_FAILED)
		return -errno;
	e->bar = p;
	e->bar_len = len;
	if (edu_id(e) != EDU_ID)
		return -ENODEV;
	return 0;
}

int edu_open_sysfs(struct edu *e, const char *bdf)
{
	char path[256];
	int ret;

	init_edu(e, bdf);
	e->own_fds = true;
	snprintf(path, sizeof(path), SYSFS_PCI "/%s/resource0", bdf);
	e->bar_fd = open(path, O_RDWR | O_SYNC | O_CLOEXEC);
	if (e->bar_fd < 0)
		goto fail_errno;
	snprintf(path, sizeof(path), SYSFS_PCI "/%s/config", bdf);
	e->cfg_fd = open(path, O_RDWR | O_CLOEXEC);
	if (e->cfg_fd < 0)
		goto fail_errno;
	ret = map_bar(e, e->bar_fd, 0, EDU_BAR_SIZE);
	if (ret == 0)
		ret = enable_bus_master(e);
	if (ret)
		goto fail;
	return 0;
fail_errno:
	ret = -errno;
fail:
	edu_close(e);
	return ret;
}

/* BAR0 and config space of a VFIO device fd. */
static int setup_vfio_fd(struct edu *e, int device_fd)
{
	struct hpm_vfio_region bar, cfg;
	int ret;

	e->vfio = true;
	e->bar_fd = device_fd;
	e->cfg_fd = device_fd;
	ret = hpm_vfio_get_region(device_fd, VFIO_PCI_BAR0_REGION_INDEX, &bar);
	if (ret)
		return ret;
	ret = hpm_vfio_get_region(device_fd, VFIO_PCI_CONFIG_REGION_INDEX, &cfg);
	if (ret)
		return ret;
	if (bar.size < 0x100 || !(bar.flags & VFIO_REGION_INFO_FLAG_MMAP) ||
	    cfg.size == 0)
		return -ENODEV;
	e->cfg_off = cfg.offset;
	ret = map_bar(e, device_fd, bar.offset, bar.size);
	if (ret)
		return ret;
	return enable_bus_master(e);
}

int edu_open_vfio(struct edu *e, const char *bdf, int container)
{
	struct hpm_vfio_device_info info;
	int ret, fd;

	init_edu(e, bdf);
	ret = hpm_vfio_setup_device(bdf, container, &fd, &info);
	if (ret)
		return ret;
	e->own_fds = true;
	e->container = container;
	ret = setup_vfio_fd(e, fd);
	if (ret)
		edu_close(e);
	return ret;
}

int edu_open_vfio_fd(struct edu *e, int device_fd)
{
	int ret;

	init_edu(e, NULL);
	ret = setup_vfio_fd(e, device_fd);
	if (ret)
		edu_close(e);
	return ret;
}

int edu_open(struct edu *e, const char *bdf)
{
	if (driven_by_vfio(bdf))
		return edu_open_vfio(e, bdf, HPM_VFIO_DEFAULT_CONTAINER);
	return edu_open_sysfs(e, bdf);
}

void edu_close(struct edu *e)
{
	if (e->bar)
		munmap((void *)e->bar, e->bar_len);
	if (e->own_fds && e->vfio && e->bar_fd >= 0)
		hpm_vfio_release_device(e->bdf, e->container, e->bar_fd);
	if (e->own_fds && !e->vfio) {
		if (e->bar_fd >= 0)
			close(e->bar_fd);
		if (e->cfg_fd >= 0)
			close(e->cfg_fd);
	}
	init_edu(e, NULL);
}

uint32_t edu_id(const struct edu *e)
{
	return *(volatile uint32_t *)(e->bar + REG_ID);
}

static void wr64(struct edu *e, unsigned int reg, uint64_t v)
{
	*(volatile uint64_t *)(e->bar + reg) = v;
}

static uint64_t rd64(struct edu *e, unsigned int reg)
{
	return *(volatile uint64_t *)(e->bar + reg);
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One transfer of at most EDU_DMA_MAX bytes. */
static int dma_one(struct edu *e, uint64_t iova, uint32_t len, bool to_ram)
{
	uint64_t deadline = now_ms() + EDU_DMA_TIMEOUT_MS;

	/*
	 * The CPU's stores to the source must be visible before the device
	 * reads it: BAR0 is an uncached mapping, and x86 does not reorder a
	 * UC store before earlier stores; the fence keeps the compiler from
	 * doing so.
	 */
	atomic_thread_fence(memory_order_release);
	wr64(e, REG_DMA_SRC, to_ram ? EDU_BUF_ADDR : iova);
	wr64(e, REG_DMA_DST, to_ram ? iova : EDU_BUF_ADDR);
	wr64(e, REG_DMA_CNT, len);
	wr64(e, REG_DMA_CMD, CMD_START | (to_ram ? CMD_TO_RAM : 0));
	while (rd64(e, REG_DMA_CMD) & CMD_START) {
		if (now_ms() > deadline)
			return -ETIMEDOUT;
		usleep(1000);
	}
	/* Pairs with the device's write: read RAM only after "done". */
	atomic_thread_fence(memory_order_acquire);
	return 0;
}

int edu_dma(struct edu *e, uint64_t iova, size_t len, bool to_ram)
{
	size_t off, n;
	int ret;

	for (off = 0; off < len; off += n) {
		n = len - off < EDU_DMA_MAX ? len - off : EDU_DMA_MAX;
		ret = dma_one(e, iova + off, (uint32_t)n, to_ram);
		if (ret)
			return ret;
	}
	return 0;
}

int edu_copy(struct edu *e, uint64_t src, uint64_t dst, size_t len)
{
	size_t off, n;
	int ret;

	for (off = 0; off < len; off += n) {
		n = len - off < EDU_DMA_MAX ? len - off : EDU_DMA_MAX;
		ret = dma_one(e, src + off, (uint32_t)n, false);
		if (ret == 0)
			ret = dma_one(e, dst + off, (uint32_t)n, true);
		if (ret)
			return ret;
	}
	return 0;
}
