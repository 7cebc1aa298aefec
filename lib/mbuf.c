// SPDX-License-Identifier: MIT
/* mbufs: pool creation, clones and external buffers, chains, checks, dump. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hpmem/mbuf.h>
#include <hpmem/mbuf_dyn.h>
#include <hpmem/memseg.h>
#include <hpmem/mempool.h>

#include "internal.h"

#define PKTMBUF_POOL_MAGIC	0x4d425546u	/* "MBUF" */
/* Segments handed to one hpm_mempool_put_bulk() by free_bulk_mixed. */
#define FREE_BATCH		64

/* pktmbuf_pool_priv.flags: data buffers are pinned external memory. */
#define POOL_F_PINNED_EXT	0x1u

/* The mempool's private area of a pktmbuf pool. */
struct pktmbuf_pool_priv {
	uint32_t magic;
	uint16_t data_room_size;
	uint16_t priv_size;
	uint32_t flags;		/* POOL_F_* */
	uint32_t pad_;
};

/*
 * After the private area of each mbuf of a pinned pool: the buffer it was
 * given at creation, which detach gives back. Such an mbuf is direct (its
 * buffer is its own for life), so alloc and free take their fast paths.
 */
struct pinned_buf {
	void *addr;
	uint64_t iova;
	uint16_t len;
	uint16_t pad_[3];
};

/* Where the external memory is handed out during obj_init. */
struct extmem_ctx {
	struct pktmbuf_pool_priv cfg;
	const struct hpm_pktmbuf_extmem *ext;
	unsigned int ext_num;
	unsigned int ext_idx;
	size_t off;
};

static const struct pktmbuf_pool_priv *pool_priv(struct hpm_mempool *mp)
{
	const struct pktmbuf_pool_priv *p;

	if (mp == NULL)
		return NULL;
	p = hpm_mempool_get_priv(mp);
	if (p == NULL || p->magic != PKTMBUF_POOL_MAGIC)
		return NULL;
	return p;
}

__hpm_export uint16_t hpm_pktmbuf_data_room_size(struct hpm_mempool *mp)
{
	const struct pktmbuf_pool_priv *p = pool_priv(mp);

	return p ? p->data_room_size : 0;
}

__hpm_export uint16_t hpm_pktmbuf_priv_size(struct hpm_mempool *mp)
{
	const struct pktmbuf_pool_priv *p = pool_priv(mp);

	return p ? p->priv_size : 0;
}

static struct pinned_buf *pinned_buf(const struct hpm_mbuf *m)
{
	return (struct pinned_buf *)((char *)m + sizeof(*m) + m->priv_size);
}

static bool pool_pinned(struct hpm_mempool *mp)
{
	const struct pktmbuf_pool_priv *p = pool_priv(mp);

	return p && (p->flags & POOL_F_PINNED_EXT);
}

/* The buffer a direct m owns: after its header, or pinned external memory. */
static void *own_buf(const struct hpm_mbuf *m)
{
	if (pool_pinned(m->pool))
		return pinned_buf(m)->addr;
	return hpm_mbuf_own_buf(m);
}

/*
 * IOVA of the mbuf's own buffer. The pool keeps each object IOVA-contiguous,
 * so its per-object IOVA plus the offset is exact and O(1); a pool without
 * per-object IOVAs falls back to the memseg lookup.
 */
static uint64_t own_buf_iova(const struct hpm_mbuf *m)
{
	uint64_t iova;

	if (pool_pinned(m->pool))
		return pinned_buf(m)->iova;
	iova = hpm_mempool_virt2iova(m);
	if (iova != HPM_BAD_IOVA)
		return iova + sizeof(*m) + m->priv_size;
	return hpm_virt2iova(hpm_mbuf_own_buf(m));
}

/* obj_init of the mempool: runs once per mbuf, at pool creation. */
static void pktmbuf_obj_init(struct hpm_mempool *mp, void *opaque, void *obj,
			     unsigned int obj_idx)
{
	const struct pktmbuf_pool_priv *cfg = opaque;
	struct pktmbuf_pool_priv *priv = hpm_mempool_get_priv(mp);
	struct hpm_mbuf *m = obj;

	(void)obj_idx;
	/*
	 * The private area is written before the pool can be looked up by
	 * name (objects are initialised before the pool is published), so a
	 * secondary never sees a pool without its sizes.
	 */
	*priv = *cfg;

	memset(m, 0, sizeof(*m) + cfg->priv_size);
	m->priv_size = cfg->priv_size;
	m->buf_addr = hpm_mbuf_own_buf(m);
	m->buf_len = cfg->data_room_size;
	m->buf_iova = own_buf_iova(m);
	m->pool = mp;
	m->nb_segs = 1;
	m->port = HPM_MBUF_PORT_INVALID;
	atomic_init(&m->refcnt, 1);
	hpm_pktmbuf_reset_headroom(m);
}

/* obj_init of a pinned pool: the next elt_size slice of external memory. */
static void pktmbuf_extmem_init(struct hpm_mempool *mp, void *opaque,
				void *obj, unsigned int obj_idx)
{
	struct extmem_ctx *ctx = opaque;
	const struct hpm_pktmbuf_extmem *e;
	struct hpm_mbuf *m = obj;
	struct pinned_buf *pb;

	pktmbuf_obj_init(mp, &ctx->cfg, obj, obj_idx);
	/*
	 * The create call checked that the areas hold n slices, so this stops
	 * inside the array; it skips areas smaller than one slice too.
	 */
	e = &ctx->ext[ctx->ext_idx];
	while (ctx->off + e->elt_size > e->buf_len) {
		e = &ctx->ext[++ctx->ext_idx];
		ctx->off = 0;
	}
	pb = pinned_buf(m);
	pb->addr = (char *)e->buf_ptr + ctx->off;
	pb->iova = e->buf_iova == HPM_BAD_IOVA ? HPM_BAD_IOVA :
		   e->buf_iova + ctx->off;
	pb->len = e->elt_size;
	ctx->off += e->elt_size;
	m->buf_addr = pb->addr;
	m->buf_iova = pb->iova;
	m->buf_len = pb->len;
	hpm_pktmbuf_reset_headroom(m);
}

__hpm_export struct hpm_mempool *
hpm_pktmbuf_pool_create(const char *name, unsigned int n,
			unsigned int cache_size, uint16_t priv_size,
			uint16_t data_room_size, int socket)
{
	struct pktmbuf_pool_priv cfg = {
		.magic = PKTMBUF_POOL_MAGIC,
		.data_room_size = data_room_size,
		.priv_size = priv_size,
	};
	unsigned int elt_size;

	if (name == NULL || priv_size % HPM_MBUF_PRIV_ALIGN != 0)
		return hpm_fail_ptr(EINVAL);
	elt_size = (unsigned int)sizeof(struct hpm_mbuf) + priv_size +
		   data_room_size;
	return hpm_mempool_create(name, n, elt_size, cache_size, sizeof(cfg),
				  pktmbuf_obj_init, &cfg, socket, 0);
}

__hpm_export struct hpm_mempool *
hpm_pktmbuf_pool_create_extbuf(const char *name, unsigned int n,
			       unsigned int cache_size, uint16_t priv_size,
			       uint16_t data_room_size, int socket,
			       const struct hpm_pktmbuf_extmem *ext_mem,
			       unsigned int ext_num)
{
	struct extmem_ctx ctx = {
		.cfg = {
			.magic = PKTMBUF_POOL_MAGIC,
			.data_room_size = data_room_size,
			.priv_size = priv_size,
			.flags = POOL_F_PINNED_EXT,
		},
		.ext = ext_mem,
		.ext_num = ext_num,
	};
	unsigned int elt_size, i;
	uint64_t slices = 0;

	if (name == NULL || priv_size % HPM_MBUF_PRIV_ALIGN != 0 ||
	    ext_mem == NULL || ext_num == 0)
		return hpm_fail_ptr(EINVAL);
	for (i = 0; i < ext_num; i++) {
		const struct hpm_pktmbuf_extmem *e = &ext_mem[i];

		if (e->buf_ptr == NULL || e->buf_len == 0 || e->elt_size == 0 ||
		    data_room_size > e->elt_size)
			return hpm_fail_ptr(EINVAL);
		slices += e->buf_len / e->elt_size;
	}
	if (slices < n)
		return hpm_fail_ptr(EINVAL);	/* as DPDK: not enough memory */
	/* the mbufs carry no buffer, only where their pinned one is */
	elt_size = (unsigned int)(sizeof(struct hpm_mbuf) + priv_size +
				  sizeof(struct pinned_buf));
	return hpm_mempool_create(name, n, elt_size, cache_size,
				  sizeof(ctx.cfg), pktmbuf_extmem_init, &ctx,
				  socket, 0);
}

__hpm_export bool hpm_pktmbuf_pool_is_pinned_extbuf(struct hpm_mempool *mp)
{
	return pool_pinned(mp);
}

/* ---------------------------------------------------------------------- */
/* Indirect mbufs and external buffers.                                   */

static void copy_hdr(struct hpm_mbuf *mi, const struct hpm_mbuf *m)
{
	mi->port = m->port;
	mi->vlan_tci = m->vlan_tci;
	mi->vlan_tci_outer = m->vlan_tci_outer;
	mi->tx_offload = m->tx_offload;
	mi->hash = m->hash;
	mi->packet_type = m->packet_type;
	/* as DPDK: registered dynamic fields travel with the header */
	hpm_mbuf_dynfield_copy(mi, m);
}

__hpm_export int hpm_pktmbuf_attach(struct hpm_mbuf *mi, struct hpm_mbuf *m)
{
	if (mi == NULL || m == NULL || mi == m || !hpm_mbuf_is_direct(mi) ||
	    hpm_mbuf_refcnt_read(mi) != 1 || mi->next != NULL)
		return hpm_fail(EINVAL);
	hpm_mbuf_debug_check_(m, 0);

	if (hpm_mbuf_has_extbuf(m)) {
		hpm_mbuf_ext_refcnt_update(m->shinfo, 1);
		mi->ol_flags = m->ol_flags;
		mi->shinfo = m->shinfo;
	} else {
		/* a clone of a clone references the original direct mbuf */
		struct hpm_mbuf *md = hpm_mbuf_is_indirect(m) ? m->direct : m;

		hpm_mbuf_refcnt_update(md, 1);
		mi->ol_flags = m->ol_flags | HPM_MBUF_F_INDIRECT;
		mi->direct = md;
	}
	copy_hdr(mi, m);
	mi->buf_addr = m->buf_addr;
	mi->buf_iova = m->buf_iova;
	mi->buf_len = m->buf_len;
	mi->data_off = m->data_off;
	mi->data_len = m->data_len;
	mi->pkt_len = m->data_len;
	mi->nb_segs = 1;
	hpm_mbuf_debug_check_(mi, 1);
	return 0;
}

__hpm_export void hpm_pktmbuf_detach(struct hpm_mbuf *m)
{
	if (hpm_mbuf_has_extbuf(m)) {
		struct hpm_mbuf_ext_shared_info *shinfo = m->shinfo;

		/* the mbuf that drops the count to 0 calls back, exactly once */
		if (hpm_mbuf_ext_refcnt_update(shinfo, -1) == 0)
			shinfo->free_cb(m->buf_addr, shinfo->fcb_opaque);
	} else if (hpm_mbuf_is_indirect(m)) {
		struct hpm_mbuf *md = m->direct;

		/*
		 * The direct mbuf was freed by its owner while borrowed (its
		 * refcnt counted us): the last borrower returns it.
		 */
		if (hpm_mbuf_refcnt_update(md, -1) == 0) {
			md->next = NULL;
			md->nb_segs = 1;
			hpm_mbuf_refcnt_set(md, 1);
			hpm_mbuf_raw_free(md);
		}
	} else {
		return;
	}
	m->shinfo = NULL;
	m->buf_addr = own_buf(m);
	m->buf_iova = own_buf_iova(m);
	m->buf_len = pool_pinned(m->pool) ? pinned_buf(m)->len :
		     hpm_pktmbuf_data_room_size(m->pool);
	hpm_pktmbuf_reset_headroom(m);
	m->data_len = 0;
	m->ol_flags = 0;
}

__hpm_export struct hpm_mbuf *hpm_pktmbuf_clone(struct hpm_mbuf *md,
						struct hpm_mempool *mp)
{
	struct hpm_mbuf *mc, *mi, **prev;
	uint32_t pkt_len = 0;
	uint16_t nseg = 0;

	if (md == NULL || mp == NULL)
		return hpm_fail_ptr(EINVAL);
	hpm_mbuf_debug_check_(md, 1);
	mc = hpm_pktmbuf_alloc(mp);
	if (mc == NULL)
		return NULL;

	mi = mc;
	prev = &mc;
	for (;;) {
		/* mi is fresh: attach cannot refuse it */
		hpm_pktmbuf_attach(mi, md);
		*prev = mi;
		prev = &mi->next;
		nseg++;
		pkt_len += mi->data_len;
		md = md->next;
		if (md == NULL)
			break;
		mi = hpm_pktmbuf_alloc(mp);
		if (mi == NULL)
			break;
	}
	mc->nb_segs = nseg;
	mc->pkt_len = pkt_len;
	if (md != NULL) {
		/* out of mbufs midway: give back what was attached */
		hpm_pktmbuf_free(mc);
		return hpm_fail_ptr(ENOMEM);
	}
	hpm_mbuf_debug_check_(mc, 1);
	return mc;
}

__hpm_export struct hpm_mbuf *hpm_pktmbuf_copy(const struct hpm_mbuf *m,
					       struct hpm_mempool *mp,
					       uint32_t off, uint32_t len)
{
	struct hpm_mbuf *mc, *seg;
	const struct hpm_mbuf *src;
	uint32_t left;

	if (m == NULL || mp == NULL || off > m->pkt_len)
		return hpm_fail_ptr(EINVAL);
	hpm_mbuf_debug_check_(m, 1);
	if (len > m->pkt_len - off)
		len = m->pkt_len - off;

	mc = hpm_pktmbuf_alloc(mp);
	if (mc == NULL)
		return NULL;
	copy_hdr(mc, m);
	mc->ol_flags = m->ol_flags & ~(HPM_MBUF_F_INDIRECT | HPM_MBUF_F_EXTERNAL);

	/* find the segment holding off */
	for (src = m; off >= src->data_len && src->next != NULL;
	     src = src->next)
		off -= src->data_len;

	seg = mc;
	for (left = len; left > 0;) {
		uint32_t n;
		uint16_t room;

		if (off == src->data_len) {
			if (src->next == NULL)
				break;	/* pkt_len said more: cannot happen */
			src = src->next;
			off = 0;
			continue;
		}
		room = hpm_pktmbuf_tailroom(seg);
		if (room == 0) {
			struct hpm_mbuf *nseg = hpm_pktmbuf_alloc(mp);

			if (nseg == NULL || hpm_pktmbuf_chain(mc, nseg) < 0) {
				hpm_pktmbuf_free(nseg);
				hpm_pktmbuf_free(mc);
				return hpm_fail_ptr(ENOMEM);
			}
			seg = nseg;
			continue;
		}
		n = src->data_len - off;
		if (n > left)
			n = left;
		if (n > room)
			n = room;
		memcpy((char *)seg->buf_addr + seg->data_off + seg->data_len,
		       hpm_pktmbuf_mtod_offset(src, const char *, off), n);
		seg->data_len = (uint16_t)(seg->data_len + n);
		mc->pkt_len += n;
		left -= n;
		off += n;
	}
	hpm_mbuf_debug_check_(mc, 1);
	return mc;
}

__hpm_export int
hpm_pktmbuf_attach_extbuf(struct hpm_mbuf *m, void *buf_addr,
			  uint64_t buf_iova, uint16_t buf_len,
			  struct hpm_mbuf_ext_shared_info *shinfo)
{
	if (m == NULL || buf_addr == NULL || shinfo == NULL ||
	    shinfo->free_cb == NULL || !hpm_mbuf_is_direct(m) ||
	    hpm_mbuf_refcnt_read(m) != 1)
		return hpm_fail(EINVAL);

	m->buf_addr = buf_addr;
	m->buf_iova = buf_iova;
	m->buf_len = buf_len;
	m->data_off = 0;
	/* keep the head's pkt_len in step with the segment now emptied */
	m->pkt_len -= m->data_len;
	m->data_len = 0;
	m->ol_flags |= HPM_MBUF_F_EXTERNAL;
	m->shinfo = shinfo;
	return 0;
}

__hpm_export struct hpm_mbuf_ext_shared_info *
hpm_pktmbuf_ext_shinfo_init_helper(void *buf_addr, uint16_t *buf_len,
				   hpm_mbuf_extbuf_free_cb_t free_cb,
				   void *fcb_opaque)
{
	struct hpm_mbuf_ext_shared_info *shinfo;
	uintptr_t start = (uintptr_t)buf_addr, end, at;

	if (buf_addr == NULL || buf_len == NULL || free_cb == NULL)
		return hpm_fail_ptr(EINVAL);
	end = start + *buf_len;
	if (*buf_len < sizeof(*shinfo))
		return hpm_fail_ptr(EINVAL);
	at = (end - sizeof(*shinfo)) & ~(uintptr_t)(sizeof(void *) - 1);
	if (at <= start)
		return hpm_fail_ptr(EINVAL);

	shinfo = (struct hpm_mbuf_ext_shared_info *)at;
	shinfo->free_cb = free_cb;
	shinfo->fcb_opaque = fcb_opaque;
	atomic_init(&shinfo->refcnt, 1);
	*buf_len = (uint16_t)(at - start);
	return shinfo;
}

/* ---------------------------------------------------------------------- */
/* Chains.                                                                */

__hpm_export int hpm_pktmbuf_chain(struct hpm_mbuf *head, struct hpm_mbuf *tail)
{
	struct hpm_mbuf *last;

	if (head == NULL || tail == NULL || head == tail)
		return hpm_fail(EINVAL);
	hpm_mbuf_debug_check_(head, 1);
	hpm_mbuf_debug_check_(tail, 1);
	if ((unsigned int)head->nb_segs + tail->nb_segs > HPM_MBUF_MAX_NB_SEGS ||
	    (uint64_t)head->pkt_len + tail->pkt_len > UINT32_MAX)
		return hpm_fail(EOVERFLOW);

	last = hpm_pktmbuf_lastseg(head);
	last->next = tail;
	head->nb_segs = (uint16_t)(head->nb_segs + tail->nb_segs);
	head->pkt_len += tail->pkt_len;
	/* pkt_len is meaningful in the head only; keep segments tidy */
	tail->pkt_len = tail->data_len;
	return 0;
}

__hpm_export int hpm_pktmbuf_linearize(struct hpm_mbuf *m)
{
	struct hpm_mbuf *seg, *next;
	char *dst;

	if (m == NULL)
		return hpm_fail(EINVAL);
	hpm_mbuf_debug_check_(m, 1);
	if (m->nb_segs == 1)
		return 0;
	if (!hpm_mbuf_is_writable(m))
		return hpm_fail(EINVAL);
	if (hpm_pktmbuf_tailroom(m) < m->pkt_len - m->data_len)
		return hpm_fail(ENOSPC);

	dst = hpm_pktmbuf_mtod_offset(m, char *, m->data_len);
	for (seg = m->next; seg != NULL; seg = next) {
		next = seg->next;
		memcpy(dst, hpm_pktmbuf_mtod(seg, const char *), seg->data_len);
		dst += seg->data_len;
		hpm_pktmbuf_free_seg(seg);
	}
	m->data_len = (uint16_t)m->pkt_len;
	m->next = NULL;
	m->nb_segs = 1;
	return 0;
}

__hpm_export const void *hpm_pktmbuf_read_slow(const struct hpm_mbuf *m,
					       uint32_t off, uint32_t len,
					       void *buf)
{
	const struct hpm_mbuf *seg = m;
	char *dst = buf;

	if (off > m->pkt_len || len > m->pkt_len - off)
		return hpm_fail_ptr(EINVAL);
	while (seg != NULL && off >= seg->data_len && len > 0) {
		off -= seg->data_len;
		seg = seg->next;
	}
	if (len == 0)
		return buf;
	if (seg == NULL)
		return hpm_fail_ptr(EINVAL);	/* chain shorter than pkt_len */
	if (off + len <= seg->data_len)
		return hpm_pktmbuf_mtod_offset(seg, const char *, off);

	while (len > 0 && seg != NULL) {
		uint32_t n = seg->data_len - off;

		if (n > len)
			n = len;
		memcpy(dst, hpm_pktmbuf_mtod_offset(seg, const char *, off), n);
		dst += n;
		len -= n;
		off = 0;
		seg = seg->next;
	}
	/* a chain shorter than its pkt_len is corrupt */
	return len == 0 ? buf : hpm_fail_ptr(EINVAL);
}

__hpm_export void hpm_pktmbuf_free_bulk_mixed(struct hpm_mbuf **mbufs,
					      unsigned int n)
{
	void *pending[FREE_BATCH];
	struct hpm_mempool *mp = NULL;
	unsigned int i, np = 0;

	for (i = 0; i < n; i++) {
		struct hpm_mbuf *m = mbufs[i], *next;

		if (m == NULL)
			continue;
		hpm_mbuf_debug_check_(m, 1);
		for (; m != NULL; m = next) {
			next = m->next;
			m = hpm_pktmbuf_prefree_seg(m);
			if (m == NULL)
				continue;
			/* consecutive segments of one pool go in one put */
			if (m->pool != mp || np == FREE_BATCH) {
				if (np > 0)
					hpm_mempool_put_bulk(mp, pending, np);
				mp = m->pool;
				np = 0;
			}
			pending[np++] = m;
		}
	}
	if (np > 0)
		hpm_mempool_put_bulk(mp, pending, np);
}

/* ---------------------------------------------------------------------- */
/* Checks and dump.                                                       */

static int check_seg(const struct hpm_mbuf *m, const char **why)
{
	if (m->pool == NULL)
		*why = "bad mbuf pool";
	else if (m->buf_iova == 0 && !(m->pool->flags & HPM_MEMPOOL_F_NON_IO))
		/* DPDK's rule: 0 is no device address (IOVA-less pools: BAD) */
		*why = "bad IO addr";
	else if (m->buf_addr == NULL)
		*why = "bad buffer address";
	else if (hpm_mbuf_refcnt_read(m) == 0 ||
		 hpm_mbuf_refcnt_read(m) == UINT16_MAX)
		/* UINT16_MAX: a count that wrapped below 0 or is about to overflow */
		*why = "bad refcnt";
	else if ((m->ol_flags & HPM_MBUF_F_INDIRECT) &&
		 (m->ol_flags & HPM_MBUF_F_EXTERNAL))
		*why = "both indirect and external";
	else if (hpm_mbuf_is_indirect(m) && m->direct == NULL)
		*why = "indirect mbuf without a direct one";
	else if (hpm_mbuf_has_extbuf(m) && m->shinfo == NULL)
		*why = "external buffer without shared info";
	else if (hpm_mbuf_is_direct(m) && m->buf_addr != hpm_mbuf_own_buf(m) &&
		 m->buf_addr != own_buf(m))
		*why = "direct mbuf not pointing at its own buffer";
	else if (m->data_off > m->buf_len)
		*why = "data offset too big in mbuf segment";
	else if ((uint32_t)m->data_off + m->data_len > m->buf_len)
		*why = "data length too big in mbuf segment";
	else
		return 0;
	return -EINVAL;
}

__hpm_export int hpm_mbuf_check(const struct hpm_mbuf *m, int is_header,
				const char **reason)
{
	const char *why = NULL;
	const struct hpm_mbuf *seg;
	uint32_t nseg = 0;
	uint64_t len = 0;

	if (m == NULL) {
		why = "mbuf is NULL";
		goto bad;
	}
	if (check_seg(m, &why) < 0)
		goto bad;
	if (!is_header)
		return 0;

	if (m->nb_segs == 0) {
		why = "bad nb_segs";
		goto bad;
	}
	/* bounded by nb_segs, so a looping chain is caught, not followed */
	for (seg = m; seg != NULL; seg = seg->next) {
		if (++nseg > m->nb_segs) {
			why = "bad nb_segs";
			goto bad;
		}
		if (seg != m && check_seg(seg, &why) < 0)
			goto bad;
		len += seg->data_len;
	}
	if (nseg != m->nb_segs)
		why = "bad nb_segs";
	else if (len != m->pkt_len)
		why = "bad pkt_len";
	else
		return 0;
bad:
	if (reason != NULL)
		*reason = why;
	return hpm_fail(EINVAL);
}

__hpm_export void hpm_mbuf_sanity_check(const struct hpm_mbuf *m, int is_header)
{
	const char *why;

	if (likely(hpm_mbuf_check(m, is_header, &why) == 0))
		return;
	fprintf(stderr, "hpmem: mbuf %p: %s\n", (const void *)m, why);
	abort();
}

__hpm_export void hpm_mbuf_raw_sanity_check(const struct hpm_mbuf *m)
{
	const char *why = NULL;

	if (hpm_mbuf_check(m, 0, &why) < 0)
		;
	else if (hpm_mbuf_refcnt_read(m) != 1)
		why = "free mbuf with refcnt != 1";
	else if (m->next != NULL)
		why = "free mbuf with a next segment";
	else if (!hpm_mbuf_is_direct(m))
		why = "free mbuf not direct";
	else
		return;
	fprintf(stderr, "hpmem: mbuf %p: %s\n", (const void *)m, why);
	abort();
}

static void hexdump(FILE *f, const void *p, unsigned int len)
{
	const unsigned char *b = p;
	unsigned int i;

	for (i = 0; i < len; i++) {
		if (i % 16 == 0)
			fprintf(f, "%s    %08x:", i ? "\n" : "", i);
		fprintf(f, " %02x", b[i]);
	}
	if (len)
		fputc('\n', f);
}

__hpm_export void hpm_pktmbuf_dump(FILE *f, const struct hpm_mbuf *m,
				   unsigned int dump_len)
{
	const struct hpm_mbuf *seg;
	const char *why = NULL;
	unsigned int nseg;

	if (f == NULL || m == NULL)
		return;
	fprintf(f, "mbuf at %p, iova=%#" PRIx64 ", buf_len=%u\n",
		(const void *)m, m->buf_iova, m->buf_len);
	fprintf(f, "  pkt_len=%u, ol_flags=%#" PRIx64 ", nb_segs=%u, port=%u, "
		"ptype=%#x\n", m->pkt_len, m->ol_flags, m->nb_segs, m->port,
		m->packet_type);
	if (hpm_mbuf_check(m, 1, &why) < 0) {
		fprintf(f, "  invalid: %s\n", why);
		return;
	}
	for (seg = m, nseg = 0; seg != NULL && nseg < m->nb_segs;
	     seg = seg->next, nseg++) {
		unsigned int n = seg->data_len < dump_len ? seg->data_len
							  : dump_len;

		fprintf(f, "  segment at %p, data=%p, iova=%#" PRIx64
			", off=%u, len=%u, refcnt=%u%s%s\n", (const void *)seg,
			hpm_pktmbuf_mtod(seg, void *),
			hpm_pktmbuf_iova(seg), seg->data_off, seg->data_len,
			hpm_mbuf_refcnt_read(seg),
			hpm_mbuf_is_indirect(seg) ? ", indirect" : "",
			hpm_mbuf_has_extbuf(seg) ? ", external" : "");
		hexdump(f, hpm_pktmbuf_mtod(seg, const void *), n);
		dump_len -= n;
	}
}
