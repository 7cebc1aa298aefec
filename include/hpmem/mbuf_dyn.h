/* SPDX-License-Identifier: MIT */
/* Dynamic mbuf fields and flags: named bytes of the mbuf and bits of ol_flags. */
#ifndef HPMEM_MBUF_DYN_H
#define HPMEM_MBUF_DYN_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <hpmem/mbuf.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * A library or driver that wants per-packet room registers a field by name
 * and keeps the offset it is given; every user of the same name gets the same
 * offset. Fields are carved from the free bytes of struct hpm_mbuf
 * (dynfield1, 36 bytes), flags from the free bits of ol_flags (16 to 47:
 * bits 0-15 and 48-63 belong to the static HPM_MBUF_F_* flags).
 *
 * The registry lives in a shared memzone, so what the primary registered is
 * seen by every secondary. As in DPDK:
 *  - registering a name again with the same parameters returns the same
 *    offset / bit (also in a secondary); with other parameters, or asking for
 *    another offset / bit, fails with -EEXIST;
 *  - a new name can only be registered by the primary (-EPERM elsewhere);
 *  - an explicitly requested offset / bit that is taken: -EBUSY;
 *  - no room left: -ENOENT;
 *  - a name not NUL-terminated within HPM_MBUF_DYN_NAMESIZE: -ENAMETOOLONG;
 *  - bad size / alignment / offset / bit, or non-zero flags: -EINVAL.
 * Every call returns the offset / bit number (>= 0) or -errno, and sets
 * hpm_errno on failure. Registrations last as long as the region.
 */
#define HPM_MBUF_DYN_NAMESIZE		64
/* The free ol_flags bits, first and last. */
#define HPM_MBUF_DYNFLAG_FIRST_BIT	16
#define HPM_MBUF_DYNFLAG_LAST_BIT	47

struct hpm_mbuf_dynfield {
	char name[HPM_MBUF_DYN_NAMESIZE];
	size_t size;		/* bytes, > 0 */
	size_t align;		/* a power of two */
	unsigned int flags;	/* none defined: must be 0 */
};

struct hpm_mbuf_dynflag {
	char name[HPM_MBUF_DYN_NAMESIZE];
	unsigned int flags;	/* none defined: must be 0 */
};

/* Anywhere it fits (rte_mbuf_dynfield_register). */
int hpm_mbuf_dynfield_register(const struct hpm_mbuf_dynfield *params);
/* At offset req, or anywhere when req is SIZE_MAX. */
int hpm_mbuf_dynfield_register_offset(const struct hpm_mbuf_dynfield *params,
				      size_t req);
/* Offset of a registered field, copying its parameters to params if non-NULL;
 * -ENOENT when not registered. */
int hpm_mbuf_dynfield_lookup(const char *name,
			     struct hpm_mbuf_dynfield *params);

int hpm_mbuf_dynflag_register(const struct hpm_mbuf_dynflag *params);
/* At bit req, or any free bit when req is UINT_MAX. */
int hpm_mbuf_dynflag_register_bitnum(const struct hpm_mbuf_dynflag *params,
				     unsigned int req);
int hpm_mbuf_dynflag_lookup(const char *name, struct hpm_mbuf_dynflag *params);

/* Every registered field and flag, and the free bytes and bits. */
void hpm_mbuf_dyn_dump(FILE *f);

/* DPDK's well-known timestamp field and flags, under DPDK's names. */
#define HPM_MBUF_DYNFIELD_TIMESTAMP_NAME	"rte_dynfield_timestamp"
#define HPM_MBUF_DYNFLAG_RX_TIMESTAMP_NAME	"rte_dynflag_rx_timestamp"
#define HPM_MBUF_DYNFLAG_TX_TIMESTAMP_NAME	"rte_dynflag_tx_timestamp"
typedef uint64_t hpm_mbuf_timestamp_t;

/*
 * Register the timestamp field and the receive (or transmit) timestamp
 * flag: *field_offset and *rx_flag (the ol_flags mask) on success; 0 or
 * -errno as the register calls above.
 */
int hpm_mbuf_dyn_rx_timestamp_register(int *field_offset, uint64_t *rx_flag);
int hpm_mbuf_dyn_tx_timestamp_register(int *field_offset, uint64_t *tx_flag);

/* The field at offset in m, as a pointer of type t. */
#define HPM_MBUF_DYNFIELD(m, offset, t)	((t)((uintptr_t)(m) + (offset)))
/* ol_flags mask of a registered bit. */
#define HPM_MBUF_DYNFLAG(bitnum)	(UINT64_C(1) << (bitnum))

/*
 * Copy the dynamic field area (dynfield1) from msrc to mdst; clone, attach
 * and copy do it for their header copy, as DPDK's do.
 */
static inline void hpm_mbuf_dynfield_copy(struct hpm_mbuf *mdst,
					  const struct hpm_mbuf *msrc)
{
	memcpy(mdst->dynfield1, msrc->dynfield1, sizeof(mdst->dynfield1));
}

#ifdef __cplusplus
}
#endif

#endif /* HPMEM_MBUF_DYN_H */
