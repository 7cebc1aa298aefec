/* SPDX-License-Identifier: MIT */
/* Packet buffers (mbufs) on mempools: layout, fast paths, chains and clones. */
#ifndef HPMEM_MBUF_H
#define HPMEM_MBUF_H

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <hpmem/common.h>
#include <hpmem/mempool.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bytes reserved in front of the data of a freshly allocated mbuf. */
#define HPM_PKTMBUF_HEADROOM		128
/* Data room of a default pool: 2048 bytes of packet plus the headroom. */
#define HPM_MBUF_DEFAULT_DATAROOM	2048
#define HPM_MBUF_DEFAULT_BUF_SIZE \
	(HPM_MBUF_DEFAULT_DATAROOM + HPM_PKTMBUF_HEADROOM)
/* nb_segs is 16 bits wide: a chain has at most this many segments. */
#define HPM_MBUF_MAX_NB_SEGS		UINT16_MAX
#define HPM_MBUF_PORT_INVALID		UINT16_MAX
/* The private area between the header and the buffer keeps this alignment. */
#define HPM_MBUF_PRIV_ALIGN		8

/* ol_flags: receive offloads (bit numbers as in DPDK, for familiarity). */
#define HPM_MBUF_F_RX_VLAN		(1ULL << 0)
#define HPM_MBUF_F_RX_RSS_HASH		(1ULL << 1)
#define HPM_MBUF_F_RX_FDIR		(1ULL << 2)
#define HPM_MBUF_F_RX_L4_CKSUM_BAD	(1ULL << 3)
#define HPM_MBUF_F_RX_IP_CKSUM_BAD	(1ULL << 4)
#define HPM_MBUF_F_RX_VLAN_STRIPPED	(1ULL << 6)
/* ol_flags: transmit offloads. */
#define HPM_MBUF_F_TX_TCP_SEG		(1ULL << 50)
#define HPM_MBUF_F_TX_IP_CKSUM		(1ULL << 54)
#define HPM_MBUF_F_TX_IPV4		(1ULL << 55)
#define HPM_MBUF_F_TX_IPV6		(1ULL << 56)
#define HPM_MBUF_F_TX_VLAN		(1ULL << 57)
/* ol_flags: the buffer is not the mbuf's own (see attach/attach_extbuf). */
#define HPM_MBUF_F_EXTERNAL		(1ULL << 61)
#define HPM_MBUF_F_INDIRECT		(1ULL << 62)

/* Called once, when the last mbuf attached to an external buffer lets go. */
typedef void (*hpm_mbuf_extbuf_free_cb_t)(void *addr, void *opaque);

/*
 * Shared by every mbuf attached to one external buffer. refcnt counts the
 * attached mbufs; the creator starts it at 1 (init_helper does) and each
 * further attach_extbuf() of the same buffer needs hpm_mbuf_ext_refcnt_update.
 */
struct hpm_mbuf_ext_shared_info {
	hpm_mbuf_extbuf_free_cb_t free_cb;
	void *fcb_opaque;
	_Atomic uint16_t refcnt;
};

/*
 * One packet segment: two cache lines, then priv_size bytes of application
 * area, then buf_len bytes of buffer (headroom + data room). Line 0 holds
 * everything a receive path writes and a forwarding path reads; line 1 holds
 * chaining, transmit offloads and the rarely used fields. docs/MBUF.md
 * describes every field; the static assertions below pin the layout.
 */
struct hpm_mbuf {
	/* --- cache line 0: receive --- */
	void *buf_addr;			/* start of the buffer (headroom) */
	uint64_t buf_iova;		/* IOVA of buf_addr, for devices */
	union {
		/*
		 * The four 16-bit fields below as one word: alloc writes
		 * them with a single store, so the loads of free are served
		 * by store forwarding (a load spanning two merged stores
		 * stalls ~15 cycles).
		 */
		uint64_t rearm_data;
		struct {
			uint16_t data_off;	/* data at buf_addr + data_off */
			_Atomic uint16_t refcnt; /* 1 in the pool and owned once */
			uint16_t nb_segs;	/* segments in the chain (head) */
			uint16_t port;		/* input port, or PORT_INVALID */
		};
	};
	uint64_t ol_flags;		/* HPM_MBUF_F_* */
	uint32_t packet_type;		/* L2/L3/L4 classification */
	uint32_t pkt_len;		/* bytes in the whole chain (head only) */
	uint16_t data_len;		/* bytes in this segment */
	uint16_t vlan_tci;		/* stripped VLAN tag, HPM_MBUF_F_RX_VLAN */
	union {
		uint32_t rss;		/* HPM_MBUF_F_RX_RSS_HASH */
		struct {
			uint32_t lo;
			uint32_t hi;
		} fdir;			/* HPM_MBUF_F_RX_FDIR */
		uint32_t usr;		/* free for the application */
	} hash;
	uint16_t vlan_tci_outer;	/* outer tag of a QinQ frame */
	uint16_t buf_len;		/* bytes at buf_addr */
	struct hpm_mempool *pool;	/* pool the mbuf returns to */

	/* --- cache line 1: chaining and transmit --- */
	struct hpm_mbuf *next;		/* next segment, NULL on the last */
	union {
		uint64_t tx_offload;
		struct {
			uint64_t l2_len:7;
			uint64_t l3_len:9;
			uint64_t l4_len:8;
			uint64_t tso_segsz:16;
			uint64_t outer_l3_len:9;
			uint64_t outer_l2_len:7;
		};
	};
	union {
		/* HPM_MBUF_F_EXTERNAL: the external buffer's shared info */
		struct hpm_mbuf_ext_shared_info *shinfo;
		/* HPM_MBUF_F_INDIRECT: the direct mbuf that owns buf_addr */
		struct hpm_mbuf *direct;
	};
	uint16_t priv_size;		/* bytes of private area after the mbuf */
	uint16_t timesync;		/* timestamp register index */
	uint32_t dynfield1[9];		/* free for the application/drivers */
} __hpm_cache_aligned;

_Static_assert(sizeof(struct hpm_mbuf) == 2 * HPM_CACHE_LINE_SIZE,
	       "struct hpm_mbuf must be exactly two cache lines");
_Static_assert(offsetof(struct hpm_mbuf, buf_addr) == 0, "layout");
_Static_assert(offsetof(struct hpm_mbuf, buf_iova) == 8, "layout");
_Static_assert(offsetof(struct hpm_mbuf, rearm_data) == 16, "layout");
_Static_assert(offsetof(struct hpm_mbuf, data_off) == 16, "layout");
_Static_assert(offsetof(struct hpm_mbuf, refcnt) == 18, "layout");
_Static_assert(offsetof(struct hpm_mbuf, nb_segs) == 20, "layout");
_Static_assert(offsetof(struct hpm_mbuf, port) == 22, "layout");
_Static_assert(offsetof(struct hpm_mbuf, ol_flags) == 24, "layout");
_Static_assert(offsetof(struct hpm_mbuf, packet_type) == 32, "layout");
_Static_assert(offsetof(struct hpm_mbuf, pkt_len) == 36, "layout");
_Static_assert(offsetof(struct hpm_mbuf, data_len) == 40, "layout");
_Static_assert(offsetof(struct hpm_mbuf, vlan_tci) == 42, "layout");
_Static_assert(offsetof(struct hpm_mbuf, hash) == 44, "layout");
_Static_assert(offsetof(struct hpm_mbuf, vlan_tci_outer) == 52, "layout");
_Static_assert(offsetof(struct hpm_mbuf, buf_len) == 54, "layout");
_Static_assert(offsetof(struct hpm_mbuf, pool) == 56, "layout");
_Static_assert(offsetof(struct hpm_mbuf, next) == 64, "layout");
_Static_assert(offsetof(struct hpm_mbuf, tx_offload) == 72, "layout");
_Static_assert(offsetof(struct hpm_mbuf, shinfo) == 80, "layout");
_Static_assert(offsetof(struct hpm_mbuf, direct) == 80, "layout");
_Static_assert(offsetof(struct hpm_mbuf, priv_size) == 88, "layout");
_Static_assert(offsetof(struct hpm_mbuf, timesync) == 90, "layout");
_Static_assert(offsetof(struct hpm_mbuf, dynfield1) == 92, "layout");
_Static_assert(sizeof(_Atomic uint16_t) == 2, "refcnt must be 16 bits");

/* ---------------------------------------------------------------------- */
/* Out of line (lib/mbuf.c).                                              */

/*
 * A mempool of n mbufs, each with priv_size bytes of private area (multiple
 * of HPM_MBUF_PRIV_ALIGN) and data_room_size bytes of buffer (headroom
 * included; HPM_MBUF_DEFAULT_BUF_SIZE is the usual value). Every mbuf is
 * initialised once here; alloc then only resets the packet fields.
 * NULL + hpm_errno on failure (EINVAL for bad sizes, others from the mempool).
 */
struct hpm_mempool *hpm_pktmbuf_pool_create(const char *name, unsigned int n,
					    unsigned int cache_size,
					    uint16_t priv_size,
					    uint16_t data_room_size,
					    int socket);
/*
 * One area of external memory for hpm_pktmbuf_pool_create_extbuf(): buf_len
 * bytes at buf_ptr (IOVA buf_iova, HPM_BAD_IOVA if none), cut into buffers
 * of elt_size bytes each. A memzone is the usual source.
 */
struct hpm_pktmbuf_extmem {
	void *buf_ptr;
	uint64_t buf_iova;
	size_t buf_len;
	uint16_t elt_size;
};

/*
 * A pktmbuf pool whose data buffers are pinned in external memory: mbuf k
 * gets the k-th elt_size slice of the areas, in order, for the pool's whole
 * life (buf_len = elt_size). The areas must outlive the pool; the library
 * neither frees nor reuses them. NULL + EINVAL on bad sizes, an empty area,
 * data_room_size > elt_size, or areas with fewer than n slices.
 *
 * Unlike DPDK (rte_pktmbuf_pool_create_extbuf), these mbufs count as direct:
 * the buffer is theirs, hpm_mbuf_has_extbuf() is false, a clone takes a
 * reference on the mbuf (HPM_MBUF_F_INDIRECT) rather than on a shared info,
 * and alloc/free stay on their fast paths. The owner returns to its pool
 * when the last clone lets go, as in DPDK. hpm_mbuf_own_buf() does not apply
 * to them; test a pool with hpm_pktmbuf_pool_is_pinned_extbuf().
 */
struct hpm_mempool *
hpm_pktmbuf_pool_create_extbuf(const char *name, unsigned int n,
			       unsigned int cache_size, uint16_t priv_size,
			       uint16_t data_room_size, int socket,
			       const struct hpm_pktmbuf_extmem *ext_mem,
			       unsigned int ext_num);
bool hpm_pktmbuf_pool_is_pinned_extbuf(struct hpm_mempool *mp);
/* Sizes a pktmbuf pool was created with; 0 if mp is not a pktmbuf pool. */
uint16_t hpm_pktmbuf_data_room_size(struct hpm_mempool *mp);
uint16_t hpm_pktmbuf_priv_size(struct hpm_mempool *mp);

/*
 * mi (direct, refcnt 1, one segment) takes a reference on m's buffer: on the
 * direct mbuf behind m (m itself, or m->direct when m is indirect), or on the
 * shared info when m's buffer is external. -EINVAL if mi is not eligible.
 */
int hpm_pktmbuf_attach(struct hpm_mbuf *mi, struct hpm_mbuf *m);
/* Drop the reference on the borrowed buffer and give m its own back. */
void hpm_pktmbuf_detach(struct hpm_mbuf *m);
/* An indirect copy of every segment of md, allocated from mp. */
struct hpm_mbuf *hpm_pktmbuf_clone(struct hpm_mbuf *md, struct hpm_mempool *mp);
/* A deep copy of len bytes from off (UINT32_MAX: to the end), from mp. */
struct hpm_mbuf *hpm_pktmbuf_copy(const struct hpm_mbuf *m,
				  struct hpm_mempool *mp,
				  uint32_t off, uint32_t len);

/*
 * Make m (direct, refcnt 1) use buf_addr..+buf_len as its buffer. The
 * shared info's refcnt is not changed: the caller accounts for every mbuf it
 * attaches. data_off and data_len become 0.
 */
int hpm_pktmbuf_attach_extbuf(struct hpm_mbuf *m, void *buf_addr,
			      uint64_t buf_iova, uint16_t buf_len,
			      struct hpm_mbuf_ext_shared_info *shinfo);
/*
 * Carve a shared info out of the end of an external buffer, shrinking
 * *buf_len to what is left; refcnt starts at 1. NULL + EINVAL when the
 * buffer is too small.
 */
struct hpm_mbuf_ext_shared_info *
hpm_pktmbuf_ext_shinfo_init_helper(void *buf_addr, uint16_t *buf_len,
				   hpm_mbuf_extbuf_free_cb_t free_cb,
				   void *fcb_opaque);

/*
 * Append the chain tail to the chain head. -EOVERFLOW when the result
 * would exceed HPM_MBUF_MAX_NB_SEGS segments or 4 GiB, -EINVAL when
 * head == tail; nothing changes on failure.
 */
int hpm_pktmbuf_chain(struct hpm_mbuf *head, struct hpm_mbuf *tail);
/*
 * Copy every segment into the first one's tailroom and free the others.
 * -ENOSPC if it does not fit, -EINVAL if the first segment's buffer is
 * shared (indirect, external or refcnt > 1); nothing changes on failure.
 */
int hpm_pktmbuf_linearize(struct hpm_mbuf *m);

/* Slow half of hpm_pktmbuf_read(): the bytes span segments. */
const void *hpm_pktmbuf_read_slow(const struct hpm_mbuf *m, uint32_t off,
				  uint32_t len, void *buf);
/* Slow half of hpm_pktmbuf_free_bulk(): anything, from any pools. */
void hpm_pktmbuf_free_bulk_mixed(struct hpm_mbuf **mbufs, unsigned int n);

/*
 * Consistency of an mbuf (is_header: also its chain). 0, or -EINVAL with
 * *reason (if non-NULL) naming the first problem found. As DPDK's
 * rte_mbuf_check(): buf_iova 0 ("bad IO addr", unless the pool is
 * HPM_MEMPOOL_F_NON_IO) and a refcnt of 0 or UINT16_MAX are refused.
 */
int hpm_mbuf_check(const struct hpm_mbuf *m, int is_header,
		   const char **reason);
/* Same, but prints the reason and aborts: memory corruption is fatal. */
void hpm_mbuf_sanity_check(const struct hpm_mbuf *m, int is_header);
/* An mbuf as it sits in its pool: also refcnt 1, next NULL, direct. */
void hpm_mbuf_raw_sanity_check(const struct hpm_mbuf *m);
/* Header and segments of m, and up to dump_len bytes of data in hex. */
void hpm_pktmbuf_dump(FILE *f, const struct hpm_mbuf *m, unsigned int dump_len);

/*
 * HPM_DEBUG (whole library) or HPM_MBUF_DEBUG (mbufs only) check every mbuf
 * an operation touches and abort on corruption.
 */
#if defined(HPM_DEBUG) || defined(HPM_MBUF_DEBUG)
#define hpm_mbuf_debug_check_(m, is_h)	hpm_mbuf_sanity_check(m, is_h)
#define hpm_mbuf_debug_raw_check_(m)	hpm_mbuf_raw_sanity_check(m)
#else
#define hpm_mbuf_debug_check_(m, is_h)	((void)0)
#define hpm_mbuf_debug_raw_check_(m)	((void)0)
#endif

/* Fast paths: always inlined, whatever the caller's inlining budget. */
#define HPM_MBUF_INLINE_	static inline __attribute__((always_inline))

#define hpm_mbuf_likely_(x)	__builtin_expect(!!(x), 1)
#define hpm_mbuf_unlikely_(x)	__builtin_expect(!!(x), 0)

/* ---------------------------------------------------------------------- */
/* Data access.                                                           */

#define hpm_pktmbuf_mtod_offset(m, t, o) \
	((t)((char *)(m)->buf_addr + (m)->data_off + (o)))
#define hpm_pktmbuf_mtod(m, t)		hpm_pktmbuf_mtod_offset(m, t, 0)
/* IOVA of the byte at offset o of the segment's data, for a device. */
#define hpm_pktmbuf_iova_offset(m, o) \
	((uint64_t)((m)->buf_iova + (m)->data_off + (o)))
#define hpm_pktmbuf_iova(m)		hpm_pktmbuf_iova_offset(m, 0)
#define hpm_pktmbuf_pkt_len(m)		((m)->pkt_len)
#define hpm_pktmbuf_data_len(m)		((m)->data_len)

/* Application area right after the mbuf header. */
static inline void *hpm_mbuf_to_priv(struct hpm_mbuf *m)
{
	return (char *)m + sizeof(*m);
}

/*
 * The mbuf's own buffer (what buf_addr is when it is direct), except in a
 * pool made by hpm_pktmbuf_pool_create_extbuf().
 */
static inline void *hpm_mbuf_own_buf(const struct hpm_mbuf *m)
{
	return (char *)m + sizeof(*m) + m->priv_size;
}

HPM_MBUF_INLINE_ bool hpm_mbuf_is_direct(const struct hpm_mbuf *m)
{
	return !(m->ol_flags & (HPM_MBUF_F_INDIRECT | HPM_MBUF_F_EXTERNAL));
}

static inline bool hpm_mbuf_is_indirect(const struct hpm_mbuf *m)
{
	return m->ol_flags & HPM_MBUF_F_INDIRECT;
}

static inline bool hpm_mbuf_has_extbuf(const struct hpm_mbuf *m)
{
	return m->ol_flags & HPM_MBUF_F_EXTERNAL;
}

/* ---------------------------------------------------------------------- */
/* Reference counts.                                                      */

HPM_MBUF_INLINE_ uint16_t hpm_mbuf_refcnt_read(const struct hpm_mbuf *m)
{
	/*
	 * acquire pairs with the release half of the acq_rel decrement in
	 * hpm_mbuf_refcnt_update(): an owner that sees 1 after another owner
	 * let go also sees that owner's writes to the mbuf and its data.
	 * Free on x86 (a plain load).
	 */
	return atomic_load_explicit((_Atomic uint16_t *)&m->refcnt,
				    memory_order_acquire);
}

HPM_MBUF_INLINE_ void hpm_mbuf_refcnt_set(struct hpm_mbuf *m, uint16_t v)
{
	atomic_store_explicit(&m->refcnt, v, memory_order_relaxed);
}

/*
 * Add v to a reference count (an mbuf's or an external buffer's) and
 * return the new value. A count of 1 means the caller is the only owner:
 * nobody else can change it concurrently, so a plain store replaces the
 * locked RMW (~20 cycles) on the common path, as DPDK does. The acquire
 * load pairs as described at hpm_mbuf_refcnt_read().
 */
HPM_MBUF_INLINE_ uint16_t hpm_refcnt16_update_(_Atomic uint16_t *cnt, int16_t v)
{
	if (hpm_mbuf_likely_(atomic_load_explicit(cnt, memory_order_acquire) == 1)) {
		uint16_t n = (uint16_t)(1 + v);

		atomic_store_explicit(cnt, n, memory_order_relaxed);
		return n;
	}
	return (uint16_t)(atomic_fetch_add_explicit(cnt, (uint16_t)v,
						    memory_order_acq_rel) + v);
}

/* Add v to the reference count and return the new value. */
HPM_MBUF_INLINE_ uint16_t hpm_mbuf_refcnt_update(struct hpm_mbuf *m, int16_t v)
{
	return hpm_refcnt16_update_(&m->refcnt, v);
}

static inline uint16_t
hpm_mbuf_ext_refcnt_read(const struct hpm_mbuf_ext_shared_info *s)
{
	/* acquire: as in hpm_mbuf_refcnt_read() */
	return atomic_load_explicit((_Atomic uint16_t *)&s->refcnt,
				    memory_order_acquire);
}

static inline void hpm_mbuf_ext_refcnt_set(struct hpm_mbuf_ext_shared_info *s,
					   uint16_t v)
{
	atomic_store_explicit(&s->refcnt, v, memory_order_relaxed);
}

static inline uint16_t
hpm_mbuf_ext_refcnt_update(struct hpm_mbuf_ext_shared_info *s, int16_t v)
{
	return hpm_refcnt16_update_(&s->refcnt, v);
}

/* Whether the data may be written in place: only owner of its buffer. */
static inline bool hpm_mbuf_is_writable(const struct hpm_mbuf *m)
{
	return hpm_mbuf_is_direct(m) && hpm_mbuf_refcnt_read(m) == 1;
}

/* ---------------------------------------------------------------------- */
/* Allocation and free.                                                   */

/*
 * Invariant of an mbuf in its pool: refcnt 1, next NULL, direct, buffer
 * fields pointing at its own buffer. Every free path restores it, so alloc
 * only rewrites the packet fields and never needs a locked operation.
 */
HPM_MBUF_INLINE_ struct hpm_mbuf *hpm_mbuf_raw_alloc(struct hpm_mempool *mp)
{
	void *obj;

	if (hpm_mbuf_unlikely_(hpm_mempool_get(mp, &obj) < 0)) {
		hpm_errno = ENOMEM;
		return NULL;
	}
	hpm_mbuf_debug_raw_check_((struct hpm_mbuf *)obj);
	return (struct hpm_mbuf *)obj;
}

/* Return an mbuf that already satisfies the pool invariant. */
HPM_MBUF_INLINE_ void hpm_mbuf_raw_free(struct hpm_mbuf *m)
{
	hpm_mbuf_debug_raw_check_(m);
	hpm_mempool_put(m->pool, m);
}

static inline void hpm_pktmbuf_reset_headroom(struct hpm_mbuf *m)
{
	m->data_off = m->buf_len < HPM_PKTMBUF_HEADROOM ?
		      m->buf_len : HPM_PKTMBUF_HEADROOM;
}

/* The packet description both resets clear: offloads, type, lengths, VLANs. */
HPM_MBUF_INLINE_ void hpm_mbuf_clear_pkt_fields_(struct hpm_mbuf *m)
{
	m->ol_flags = 0;
	m->packet_type = 0;
	m->pkt_len = 0;
	m->data_len = 0;
	m->vlan_tci = 0;
	m->vlan_tci_outer = 0;
	m->tx_offload = 0;
}

/*
 * Packet fields back to those of a fresh one-segment mbuf, on an mbuf in
 * use: refcnt is not touched (clones may hold it); like DPDK, next is
 * cleared, so free any further segments first.
 */
static inline void hpm_pktmbuf_reset(struct hpm_mbuf *m)
{
	m->next = NULL;
	m->nb_segs = 1;
	m->port = HPM_MBUF_PORT_INVALID;
	hpm_mbuf_clear_pkt_fields_(m);
	hpm_pktmbuf_reset_headroom(m);
	hpm_mbuf_debug_check_(m, 1);
}

/* rearm_data of a fresh mbuf: data_off, refcnt 1, nb_segs 1, no port. */
HPM_MBUF_INLINE_ uint64_t hpm_mbuf_rearm_word_(uint16_t data_off)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	return (uint64_t)data_off | 1ULL << 16 | 1ULL << 32 |
	       (uint64_t)HPM_MBUF_PORT_INVALID << 48;
#else
	return (uint64_t)data_off << 48 | 1ULL << 32 | 1ULL << 16 |
	       (uint64_t)HPM_MBUF_PORT_INVALID;
#endif
}

/*
 * reset() for an mbuf straight from the pool, whose refcnt is 1 by the pool
 * invariant and can therefore be rewritten as part of the rearm word.
 */
HPM_MBUF_INLINE_ void hpm_mbuf_reset_fresh_(struct hpm_mbuf *m)
{
	uint16_t headroom = m->buf_len < HPM_PKTMBUF_HEADROOM ?
			    m->buf_len : HPM_PKTMBUF_HEADROOM;

	m->rearm_data = hpm_mbuf_rearm_word_(headroom);
	hpm_mbuf_clear_pkt_fields_(m);
	hpm_mbuf_debug_check_(m, 1);
}

/*
 * One empty packet from mp, or NULL + ENOMEM. Cost over the mempool get:
 * six stores to line 0 and one to line 1.
 */
HPM_MBUF_INLINE_ struct hpm_mbuf *hpm_pktmbuf_alloc(struct hpm_mempool *mp)
{
	struct hpm_mbuf *m = hpm_mbuf_raw_alloc(mp);

	if (hpm_mbuf_likely_(m != NULL))
		hpm_mbuf_reset_fresh_(m);
	return m;
}

/* n empty packets, or none: 0 or -errno from the mempool. */
HPM_MBUF_INLINE_ int hpm_pktmbuf_alloc_bulk(struct hpm_mempool *mp,
					 struct hpm_mbuf **mbufs,
					 unsigned int n)
{
	unsigned int i;
	int rc;

	rc = hpm_mempool_get_bulk(mp, (void **)mbufs, n);
	if (hpm_mbuf_unlikely_(rc < 0))
		return rc;
	for (i = 0; i < n; i++) {
		hpm_mbuf_debug_raw_check_(mbufs[i]);
		hpm_mbuf_reset_fresh_(mbufs[i]);
	}
	return 0;
}

/*
 * Drop one reference to the segment m. Returns m, restored to the pool
 * invariant, when that was the last one (the caller puts it back), else
 * NULL. Borrowed buffers are released (detach) on the way.
 */
HPM_MBUF_INLINE_ struct hpm_mbuf *hpm_pktmbuf_prefree_seg(struct hpm_mbuf *m)
{
	hpm_mbuf_debug_check_(m, 0);

	if (hpm_mbuf_likely_(hpm_mbuf_refcnt_read(m) == 1)) {
		/* sole owner: no RMW, refcnt stays 1 as the pool wants */
		if (hpm_mbuf_unlikely_(!hpm_mbuf_is_direct(m)))
			hpm_pktmbuf_detach(m);
	} else {
		if (hpm_mbuf_refcnt_update(m, -1) != 0)
			return NULL;
		if (!hpm_mbuf_is_direct(m))
			hpm_pktmbuf_detach(m);
		hpm_mbuf_refcnt_set(m, 1);
	}
	/* tests first: avoid dirtying line 1 when it is already clean */
	if (m->next != NULL)
		m->next = NULL;
	if (m->nb_segs != 1)
		m->nb_segs = 1;
	return m;
}

/* Free one segment (its next is not followed). */
HPM_MBUF_INLINE_ void hpm_pktmbuf_free_seg(struct hpm_mbuf *m)
{
	m = hpm_pktmbuf_prefree_seg(m);
	if (hpm_mbuf_likely_(m != NULL))
		hpm_mbuf_raw_free(m);
}

/*
 * Free a packet: every segment, each to its own pool. NULL is a no-op.
 * A one-segment, direct, sole-owned packet already satisfies the pool
 * invariant and goes straight back: three loads, no store to the mbuf.
 */
HPM_MBUF_INLINE_ void hpm_pktmbuf_free(struct hpm_mbuf *m)
{
	struct hpm_mbuf *next;

	if (hpm_mbuf_unlikely_(m == NULL))
		return;
	hpm_mbuf_debug_check_(m, 1);
	if (hpm_mbuf_likely_(m->next == NULL && hpm_mbuf_is_direct(m) &&
			     hpm_mbuf_refcnt_read(m) == 1)) {
		hpm_mbuf_raw_free(m);
		return;
	}
	for (; m != NULL; m = next) {
		next = m->next;
		hpm_pktmbuf_free_seg(m);
	}
}

/*
 * Free n packets (NULL entries skipped). Fast path: all single-segment,
 * direct, sole-owned and from one pool -- one bulk put, no stores to the
 * mbufs. Anything else goes through hpm_pktmbuf_free_bulk_mixed(), which
 * batches consecutive segments of the same pool.
 */
HPM_MBUF_INLINE_ void hpm_pktmbuf_free_bulk(struct hpm_mbuf **mbufs,
					 unsigned int n)
{
	struct hpm_mempool *mp;
	uintptr_t bad = 0;
	unsigned int i;

	if (hpm_mbuf_unlikely_(n == 0))
		return;
	if (hpm_mbuf_unlikely_(mbufs[0] == NULL))
		goto mixed;
	mp = mbufs[0]->pool;
	for (i = 0; i < n; i++) {
		const struct hpm_mbuf *m = mbufs[i];

		if (hpm_mbuf_unlikely_(m == NULL))
			goto mixed;
		/* OR of everything that must be zero; one branch at the end */
		bad |= (uintptr_t)(m->ol_flags &
				   (HPM_MBUF_F_INDIRECT | HPM_MBUF_F_EXTERNAL)) |
		       (uintptr_t)m->next |
		       ((uintptr_t)m->pool ^ (uintptr_t)mp) |
		       (uintptr_t)(hpm_mbuf_refcnt_read(m) ^ 1);
	}
	if (hpm_mbuf_unlikely_(bad != 0))
		goto mixed;
#if defined(HPM_DEBUG) || defined(HPM_MBUF_DEBUG)
	for (i = 0; i < n; i++)
		hpm_mbuf_sanity_check(mbufs[i], 1);
#endif
	hpm_mempool_put_bulk(mp, (void * const *)mbufs, n);
	return;
mixed:
	hpm_pktmbuf_free_bulk_mixed(mbufs, n);
}

/* ---------------------------------------------------------------------- */
/* Room and data manipulation.                                            */

static inline uint16_t hpm_pktmbuf_headroom(const struct hpm_mbuf *m)
{
	return m->data_off;
}

static inline uint16_t hpm_pktmbuf_tailroom(const struct hpm_mbuf *m)
{
	return (uint16_t)(m->buf_len - m->data_off - m->data_len);
}

static inline struct hpm_mbuf *hpm_pktmbuf_lastseg(struct hpm_mbuf *m)
{
	while (m->next != NULL)
		m = m->next;
	return m;
}

static inline bool hpm_pktmbuf_is_contiguous(const struct hpm_mbuf *m)
{
	return m->nb_segs == 1;
}

/* Grow the packet by len bytes at the front; NULL + EINVAL if no room. */
static inline char *hpm_pktmbuf_prepend(struct hpm_mbuf *m, uint16_t len)
{
	hpm_mbuf_debug_check_(m, 1);
	if (hpm_mbuf_unlikely_(len > m->data_off)) {
		hpm_errno = EINVAL;
		return NULL;
	}
	/* data_off + data_len <= buf_len, so data_len + len cannot wrap */
	m->data_off = (uint16_t)(m->data_off - len);
	m->data_len = (uint16_t)(m->data_len + len);
	m->pkt_len += len;
	return (char *)m->buf_addr + m->data_off;
}

/* Grow the packet by len bytes at the end of its last segment. */
static inline char *hpm_pktmbuf_append(struct hpm_mbuf *m, uint16_t len)
{
	struct hpm_mbuf *last;
	char *tail;

	hpm_mbuf_debug_check_(m, 1);
	last = hpm_pktmbuf_lastseg(m);
	if (hpm_mbuf_unlikely_(len > hpm_pktmbuf_tailroom(last))) {
		hpm_errno = EINVAL;
		return NULL;
	}
	tail = (char *)last->buf_addr + last->data_off + last->data_len;
	last->data_len = (uint16_t)(last->data_len + len);
	m->pkt_len += len;
	return tail;
}

/* Drop len bytes from the front of the first segment; new start or NULL. */
static inline char *hpm_pktmbuf_adj(struct hpm_mbuf *m, uint16_t len)
{
	hpm_mbuf_debug_check_(m, 1);
	if (hpm_mbuf_unlikely_(len > m->data_len)) {
		hpm_errno = EINVAL;
		return NULL;
	}
	m->data_off = (uint16_t)(m->data_off + len);
	m->data_len = (uint16_t)(m->data_len - len);
	m->pkt_len -= len;
	return (char *)m->buf_addr + m->data_off;
}

/* Drop len bytes from the end of the last segment; 0 or -EINVAL. */
static inline int hpm_pktmbuf_trim(struct hpm_mbuf *m, uint16_t len)
{
	struct hpm_mbuf *last;

	hpm_mbuf_debug_check_(m, 1);
	last = hpm_pktmbuf_lastseg(m);
	if (hpm_mbuf_unlikely_(len > last->data_len)) {
		hpm_errno = EINVAL;
		return -EINVAL;
	}
	last->data_len = (uint16_t)(last->data_len - len);
	m->pkt_len -= len;
	return 0;
}

/*
 * len bytes of the packet from offset off: a pointer into the mbuf when
 * they sit in one segment, else copied into buf (len bytes) and buf
 * returned. NULL + EINVAL when off + len is past pkt_len.
 */
static inline const void *hpm_pktmbuf_read(const struct hpm_mbuf *m,
					   uint32_t off, uint32_t len,
					   void *buf)
{
	if (hpm_mbuf_unlikely_(off > m->pkt_len || len > m->pkt_len - off)) {
		hpm_errno = EINVAL;
		return NULL;
	}
	if (hpm_mbuf_likely_(off + len <= m->data_len))
		return hpm_pktmbuf_mtod_offset(m, const char *, off);
	return hpm_pktmbuf_read_slow(m, off, len, buf);
}

#ifdef __cplusplus
}
#endif

#endif /* HPMEM_MBUF_H */
