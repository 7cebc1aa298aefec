// SPDX-License-Identifier: MIT
/* A separate secondary process: attach to a live primary's region, use its pool. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <hpmem/hpmem.h>

#define BURST	8

/*
 * Usage: secondary --region NAME [options] [POOL]
 * e.g. with "demo --serve 30" running: secondary --region demo-1234 demo_mb0
 */
int main(int argc, char **argv)
{
	struct hpm_mbuf *m[BURST];
	struct hpm_init_opts o;
	struct hpm_mempool *mp;
	const char *pool = "demo_mb0";
	int rc, i, bad = 0;

	hpm_init_opts_default(&o);
	rc = hpm_parse_args(&o, argc, argv);
	if (rc < 0 || 1 + rc < argc - 1) {
		fprintf(stderr, "usage: %s --region NAME [options] [POOL]\n",
			argv[0]);
		return 2;
	}
	if (1 + rc == argc - 1)
		pool = argv[argc - 1];
	o.proc_type = HPM_PROC_SECONDARY;
	rc = hpm_init(&o);
	if (rc < 0) {
		fprintf(stderr, "secondary: hpm_init: %s\n", hpm_strerror(rc));
		return 1;
	}
	hpm_thread_register();
	mp = hpm_mempool_lookup(pool);
	if (mp == NULL) {
		fprintf(stderr, "secondary: no pool '%s'\n", pool);
		bad = 1;
		goto out;
	}
	printf("secondary: pool '%s': %u of %u free, data room %u\n", pool,
	       hpm_mempool_avail_count(mp), mp->size,
	       hpm_pktmbuf_data_room_size(mp));
	if (hpm_pktmbuf_alloc_bulk(mp, m, BURST) < 0) {
		fprintf(stderr, "secondary: alloc: %s\n",
			hpm_strerror(hpm_errno));
		bad = 1;
		goto out;
	}
	for (i = 0; i < BURST; i++) {
		printf("  mbuf %d: buf %p iova %#" PRIx64 "\n", i,
		       m[i]->buf_addr, m[i]->buf_iova);
		if (m[i]->buf_iova != hpm_virt2iova(m[i]->buf_addr))
			bad = 1;
	}
	hpm_pktmbuf_free_bulk(m, BURST);
	hpm_mempool_cache_flush(mp);
out:
	hpm_thread_unregister();
	hpm_cleanup();
	printf("secondary: %s\n", bad ? "FAILED" : "OK");
	return bad;
}
