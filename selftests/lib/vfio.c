// SPDX-License-Identifier: MIT
/*
 * VFIO API error paths that need no IOMMU or vfio-pci: each checks the
 * exact errno. The real container path runs in the guest (selftests/vm).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <hpmem/hpmem.h>

#include "kselftest_harness.h"

/* A BDF no machine has: domain ffff is never used by real PCI buses. */
#define NO_BDF	"ffff:ff:1f.7"

/* Runs @call with the library's expected error line sent to /dev/null. */
#define QUIET(call) ({						\
	int saved_ = dup(STDERR_FILENO), null_ = open("/dev/null", O_WRONLY); \
	int r_;							\
	fflush(stderr);						\
	dup2(null_, STDERR_FILENO);				\
	r_ = (call);						\
	fflush(stderr);						\
	dup2(saved_, STDERR_FILENO);				\
	close(saved_);						\
	close(null_);						\
	r_;							\
})

static int init_small(char *name, const char *tag)
{
	struct hpm_init_opts o;

	hpm_init_opts_default(&o);
	snprintf(name, HPM_NAME_SIZE, "t-%s-%d", tag, (int)getpid());
	o.region = name;
	o.socket_mem[0] = 8;
	return hpm_init(&o);
}

TEST(setup_device_missing_bdf)
{
	struct hpm_vfio_device_info info;
	char name[HPM_NAME_SIZE];
	int fd = -1;

	EXPECT_EQ(-ENODEV, QUIET(hpm_vfio_setup_device(NO_BDF, HPM_VFIO_DEFAULT_CONTAINER,
						       &fd, &info)));
	EXPECT_EQ(ENODEV, hpm_errno);
	EXPECT_EQ(-1, fd);
	/* Same after hpm_init(), and no default container was made for it. */
	ASSERT_EQ(0, init_small(name, "vfio-nodev"));
	EXPECT_EQ(-ENODEV, QUIET(hpm_vfio_setup_device(NO_BDF, HPM_VFIO_DEFAULT_CONTAINER,
						       &fd, NULL)));
	EXPECT_EQ(-1, hpm_vfio_default_container());
	EXPECT_EQ(0, hpm_cleanup());
}

TEST(setup_device_bad_args)
{
	int fd;

	EXPECT_EQ(-EINVAL, hpm_vfio_setup_device(NULL, HPM_VFIO_DEFAULT_CONTAINER, &fd, NULL));
	EXPECT_EQ(-EINVAL, hpm_vfio_setup_device("", HPM_VFIO_DEFAULT_CONTAINER, &fd, NULL));
	EXPECT_EQ(-EINVAL, hpm_vfio_setup_device("../../../dev", HPM_VFIO_DEFAULT_CONTAINER,
						 &fd, NULL));
	EXPECT_EQ(-EINVAL, hpm_vfio_setup_device("..", HPM_VFIO_DEFAULT_CONTAINER, &fd, NULL));
	EXPECT_EQ(-EINVAL, hpm_vfio_setup_device(NO_BDF, HPM_VFIO_DEFAULT_CONTAINER, NULL,
						 NULL));
	EXPECT_EQ(-EINVAL, hpm_vfio_release_device(NULL, HPM_VFIO_DEFAULT_CONTAINER, 0));
	EXPECT_EQ(-EINVAL, hpm_vfio_release_device(NO_BDF, HPM_VFIO_DEFAULT_CONTAINER, -1));
	EXPECT_EQ(-ENODEV, hpm_vfio_release_device(NO_BDF, HPM_VFIO_DEFAULT_CONTAINER, 99));
}

/*
 * A real PCI device of this machine: without an IOMMU it has no group
 * (-ENODEV); with one, its host driver makes it -EBUSY.
 */
TEST(setup_device_real_pci)
{
	char path[300], link[300];
	struct dirent *e;
	bool has_group;
	ssize_t n;
	DIR *d;
	int fd, ret;

	d = opendir("/sys/bus/pci/devices");
	if (!d)
		SKIP(return, "no /sys/bus/pci/devices");
	while ((e = readdir(d)) && e->d_name[0] == '.')
		;
	if (!e) {
		closedir(d);
		SKIP(return, "no PCI devices");
	}
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/driver", e->d_name);
	n = readlink(path, link, sizeof(link) - 1);
	link[n > 0 ? n : 0] = '\0';
	if (n > 0 && strstr(link, "/vfio-pci")) {
		closedir(d);
		SKIP(return, "%s is bound to vfio-pci", e->d_name);
	}
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/iommu_group", e->d_name);
	has_group = access(path, F_OK) == 0;
	ret = QUIET(hpm_vfio_setup_device(e->d_name, HPM_VFIO_DEFAULT_CONTAINER, &fd, NULL));
	EXPECT_EQ(has_group ? -EBUSY : -ENODEV, ret) TH_LOG("device %s", e->d_name);
	closedir(d);
}

TEST(container_create_without_vfio)
{
	if (access("/dev/vfio/vfio", F_OK) == 0)
		SKIP(return, "/dev/vfio/vfio exists");
	EXPECT_EQ(-ENODEV, QUIET(hpm_vfio_container_create()));
	EXPECT_EQ(ENODEV, hpm_errno);
	EXPECT_EQ(-1, hpm_vfio_default_container());
}

TEST(untracked_containers)
{
	char name[HPM_NAME_SIZE];
	int null = open("/dev/null", O_RDWR);

	ASSERT_LE(0, null);
	EXPECT_EQ(-ENOENT, hpm_vfio_container_destroy(null));
	EXPECT_EQ(-ENOENT, hpm_vfio_container_destroy(HPM_VFIO_DEFAULT_CONTAINER));
	EXPECT_EQ(-ENOENT, QUIET(hpm_vfio_container_dma_map(null, 0x10000, 0x10000, 4096)));
	EXPECT_EQ(-ENOENT, hpm_vfio_container_dma_unmap(null, 0x10000, 0x10000, 4096));
	/* Adopt needs the library's memory, then a real container. */
	EXPECT_EQ(-EINVAL, QUIET(hpm_vfio_container_adopt(null)));
	EXPECT_EQ(-EINVAL, hpm_vfio_container_adopt(-1));
	ASSERT_EQ(0, init_small(name, "vfio-adopt"));
	EXPECT_EQ(-EINVAL, QUIET(hpm_vfio_container_adopt(null)));
	EXPECT_EQ(0, hpm_cleanup());
	close(null);
}

TEST(dma_map_args)
{
	/* Page alignment, length and wrap-around are checked before anything. */
	EXPECT_EQ(-EINVAL, hpm_vfio_container_dma_map(HPM_VFIO_DEFAULT_CONTAINER,
						      0x10001, 0x10000, 4096));
	EXPECT_EQ(-EINVAL, hpm_vfio_container_dma_map(HPM_VFIO_DEFAULT_CONTAINER,
						      0x10000, 0x10800, 4096));
	EXPECT_EQ(-EINVAL, hpm_vfio_container_dma_map(HPM_VFIO_DEFAULT_CONTAINER,
						      0x10000, 0x10000, 100));
	EXPECT_EQ(-EINVAL, hpm_vfio_container_dma_map(HPM_VFIO_DEFAULT_CONTAINER,
						      0x10000, 0x10000, 0));
	EXPECT_EQ(-EINVAL, hpm_vfio_container_dma_map(HPM_VFIO_DEFAULT_CONTAINER, 0x10000,
						      ~0ULL & ~4095ULL, 8192));
	EXPECT_EQ(-EINVAL, hpm_vfio_container_dma_unmap(HPM_VFIO_DEFAULT_CONTAINER,
							0, 0, 0));
}

TEST(get_region_not_a_device)
{
	struct hpm_vfio_region r;
	int null = open("/dev/null", O_RDWR);

	EXPECT_EQ(-EINVAL, hpm_vfio_get_region(-1, 0, &r));
	EXPECT_EQ(-EINVAL, hpm_vfio_get_region(null, 0, NULL));
	EXPECT_EQ(-ENOTTY, hpm_vfio_get_region(null, 0, &r));
	close(null);
}

TEST_HARNESS_MAIN
