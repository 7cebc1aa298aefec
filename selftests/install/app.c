// SPDX-License-Identifier: MIT
/*
 * What an application built against an installed libhpmem does first:
 * initialise, allocate, reserve a memzone, pass pointers through a ring.
 * Built by the install tests with pkg-config, dynamically and -static.
 */
#include <stdio.h>
#include <string.h>

#include <hpmem/hpmem.h>
/* Users of the ioctls include the UAPI header from the installed tree. */
#include <linux/hpmem.h>

_Static_assert(HPMEM_PAGE_SIZE == 2u << 20, "<linux/hpmem.h> is hpmem's");

int main(int argc, char **argv)
{
	const struct hpm_memzone *mz;
	struct hpm_init_opts o;
	struct hpm_ring *r;
	void *obj = NULL;
	char *buf;
	int rc;

	hpm_init_opts_default(&o);
	if (hpm_parse_args(&o, argc, argv) < 0)
		return 2;
	rc = hpm_init(&o);
	if (rc < 0) {
		fprintf(stderr, "hpm_init: %s\n", hpm_strerror(rc));
		return 1;
	}
	buf = hpm_zmalloc("app", 4096, 64);
	mz = hpm_memzone_reserve("app_mz", 1 << 16, HPM_SOCKET_ANY, 0);
	r = hpm_ring_create("app_ring", 64, HPM_SOCKET_ANY, 0);
	if (!buf || !mz || !r) {
		fprintf(stderr, "allocation: %s\n", hpm_strerror(hpm_errno));
		return 1;
	}
	strcpy(buf, "hello");
	if (hpm_ring_enqueue(r, buf) || hpm_ring_dequeue(r, &obj) || obj != buf) {
		fprintf(stderr, "ring round trip failed\n");
		return 1;
	}
	printf("%s from %s, iova %s\n", (char *)obj,
	       hpm_backend_name(hpm_backend()),
	       hpm_virt2iova(buf) == HPM_BAD_IOVA ? "unknown" : "known");
	hpm_ring_free(r);
	hpm_memzone_free(mz);
	hpm_free(buf);
	return hpm_cleanup() ? 1 : 0;
}
