/* SPDX-License-Identifier: MIT */
/* Loading and opening the test-only hpmem_pfnref.ko (selftests/kmod/pfnref),
 * which holds pages as KVM (a reference) and VFIO type1 (a DMA pin) do. */
#ifndef HPMEM_PFNREF_TEST_H
#define HPMEM_PFNREF_TEST_H

#include "hpmem_test.h"
#include "pfnref/pfnref.h"

#define PFNREF_KO	"/lib/test/hpmem_pfnref.ko"

/* Loads the test module if it is not loaded yet; its fd, or -errno. */
static inline int pfnref_open(void)
{
	int fd = open(PFNREF_DEVICE_PATH, O_RDWR | O_CLOEXEC);
	int ko, rc;

	if (fd >= 0)
		return fd;
	ko = open(PFNREF_KO, O_RDONLY | O_CLOEXEC);
	if (ko < 0)
		return -ENOENT;
	rc = syscall(SYS_finit_module, ko, "", 0) ? -errno : 0;
	close(ko);
	if (rc && rc != -EEXIST)
		return rc;
	for (int i = 0; i < 50 && access(PFNREF_DEVICE_PATH, F_OK); i++)
		usleep(100000);
	fd = open(PFNREF_DEVICE_PATH, O_RDWR | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

#define OPEN_PFNREF(fd) do {						\
	(fd) = pfnref_open();						\
	if ((fd) == -ENOENT)						\
		SKIP(return, "%s not built for this kernel (selftests/kmod/pfnref)", \
		     PFNREF_KO);					\
	ASSERT_LE(0, (fd)) TH_LOG("%s: %s", PFNREF_DEVICE_PATH, strerror(-(fd))); \
} while (0)

#endif /* HPMEM_PFNREF_TEST_H */
