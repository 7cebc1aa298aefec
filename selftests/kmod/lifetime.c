// SPDX-License-Identifier: MIT
/* Module lifetime: rmmod is refused while a file is open or a region is
 * mapped and succeeds afterwards; the module is loaded again (from
 * $HPMEM_KO with $HPMEM_KO_PARAMS, as the guest's init does) at the end. */
#include <sys/syscall.h>
#include <sys/uio.h>
#include "hpmem_test.h"

TEST(rmmod_refused_while_open_or_mapped)
{
	char name[HPMEM_NAME_MAX];
	char *p;
	int fd;

	if (!getenv("HPMEM_KO"))
		SKIP(return, "HPMEM_KO not set (run by the guest's init)");
	OPEN_DEV(fd);

	/* an open file holds the module */
	EXPECT_TRUE(hp_rmmod_refused(hp_rmmod()));
	ASSERT_EQ(0, hp_create(fd, UNIQUE_NAME(name, "rmmod"), 0));
	ASSERT_EQ(0, hp_grow(fd, 0, 2, NULL));
	p = map_region(fd, 2 * PG, 0);
	ASSERT_NE(MAP_FAILED, p);
	p[0] = 1;
	close(fd);
	/* a mapping alone holds it too */
	EXPECT_TRUE(hp_rmmod_refused(hp_rmmod()));
	EXPECT_EQ(1, p[0]);
	munmap(p, 2 * PG);

	/* nothing open or mapped: it goes, and so does the device */
	ASSERT_EQ(0, hp_rmmod());
	EXPECT_NE(0, access(HPMEM_DEVICE_PATH, F_OK));
	EXPECT_NE(0, access("/sys/module/hpmem", F_OK));

	ASSERT_EQ(0, hp_insmod(NULL));
	fd = open(HPMEM_DEVICE_PATH, O_RDWR);
	ASSERT_LE(0, fd);
	/* a fresh module: the region is gone */
	EXPECT_EQ(-ENOENT, hp_attach(fd, name, NULL));
	close(fd);
}

TEST(rmmod_with_persistent_region)
{
	struct hpmem_node_info ni;
	char name[HPMEM_NAME_MAX];
	int fd;

	if (!getenv("HPMEM_KO"))
		SKIP(return, "HPMEM_KO not set (run by the guest's init)");
	OPEN_DEV(fd);
	/* a persistent region with no user does not pin the module; unload
	 * returns its pages to the kernel (no leak, no warning) */
	ASSERT_EQ(0, hp_create(fd, UNIQUE_NAME(name, "prm"), HPMEM_REGION_PERSISTENT));
	ASSERT_EQ(0, hp_grow(fd, 1, 2, NULL));
	close(fd);
	ASSERT_EQ(0, hp_rmmod());
	ASSERT_EQ(0, hp_insmod(NULL));
	fd = open(HPMEM_DEVICE_PATH, O_RDWR);
	ASSERT_LE(0, fd);
	EXPECT_EQ(-ENOENT, hp_attach(fd, name, NULL));
	ASSERT_EQ(0, hp_node_info(fd, 1, &ni));
	EXPECT_EQ(0, ni.inuse_pages);
	close(fd);
}

/*
 * A page a pipe still references when the module goes: unload does not
 * wait for it, the pipe keeps reading it, and the kernel frees it when the
 * pipe lets go (the init script's log check catches a bad page state).
 */
TEST(rmmod_with_busy_page)
{
	struct hpmem_node_info ni;
	char name[HPMEM_NAME_MAX], buf[4096];
	struct iovec iov;
	int fd, pfd[2];
	char *p;

	if (!getenv("HPMEM_KO"))
		SKIP(return, "HPMEM_KO not set (run by the guest's init)");
	OPEN_DEV(fd);
	ASSERT_EQ(0, hp_create(fd, UNIQUE_NAME(name, "rmbusy"), HPMEM_REGION_PINNABLE));
	ASSERT_EQ(0, hp_grow(fd, 0, 1, NULL));
	p = map_region(fd, PG, 0);
	ASSERT_NE(MAP_FAILED, p);
	memset(p, 0x33, 4096);
	ASSERT_EQ(0, pipe(pfd));
	iov.iov_base = p;
	iov.iov_len = 4096;
	ASSERT_EQ(4096, vmsplice(pfd[1], &iov, 1, 0));
	munmap(p, PG);
	close(fd);
	fd = open(HPMEM_DEVICE_PATH, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, hp_node_info(fd, 0, &ni));
	EXPECT_EQ(1, ni.busy_pages);
	close(fd);

	ASSERT_EQ(0, hp_rmmod());
	ASSERT_EQ(4096, read(pfd[0], buf, sizeof(buf)));
	EXPECT_EQ(0x33, buf[0]);
	EXPECT_EQ(0x33, buf[4095]);
	close(pfd[0]);
	close(pfd[1]);
	ASSERT_EQ(0, hp_insmod(NULL));
	fd = open(HPMEM_DEVICE_PATH, O_RDWR);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, hp_node_info(fd, 0, &ni));
	EXPECT_EQ(0, ni.busy_pages);
	EXPECT_EQ(0, ni.inuse_pages);
	close(fd);
}

TEST_HARNESS_MAIN
