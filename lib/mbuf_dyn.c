// SPDX-License-Identifier: MIT
/* Dynamic mbuf fields and flags: a registry in a shared memzone. */
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <hpmem/init.h>
#include <hpmem/mbuf_dyn.h>
#include <hpmem/memzone.h>

#include "internal.h"

/* The registry's memzone: one per region, found by every process. */
#define DYN_MZ_NAME	"mbuf_dyn"
#define DYN_MAGIC	0x4d44594eu	/* "MDYN" */
#define DYN_LAYOUT	1
#define MBUF_BYTES	sizeof(struct hpm_mbuf)
/* Each field takes at least one byte, each flag one bit. */
#define DYN_MAX_FIELDS	(MBUF_BYTES - offsetof(struct hpm_mbuf, dynfield1))
#define DYN_MAX_FLAGS	(HPM_MBUF_DYNFLAG_LAST_BIT - \
			 HPM_MBUF_DYNFLAG_FIRST_BIT + 1)

struct dyn_field {
	struct hpm_mbuf_dynfield params;
	uint32_t offset;
};

struct dyn_flag {
	struct hpm_mbuf_dynflag params;
	uint32_t bitnum;
};

struct dyn_shared {
	uint32_t magic;		/* stored last, with release */
	uint32_t layout;
	hpm_spinlock_t lock;	/* every field below */
	uint32_t nb_fields;
	uint32_t nb_flags;
	uint64_t free_flags;	/* 1 = the ol_flags bit is free */
	uint8_t free_bytes[MBUF_BYTES];	/* 1 = the mbuf byte is free */
	struct dyn_field fields[DYN_MAX_FIELDS];
	struct dyn_flag flags[DYN_MAX_FLAGS];
};

/* Serialises the primary's threads that race to create the registry. */
static pthread_mutex_t dyn_create_lock = PTHREAD_MUTEX_INITIALIZER;

static struct dyn_shared *dyn_find(void)
{
	const struct hpm_memzone *mz = hpm_memzone_lookup(DYN_MZ_NAME);
	struct dyn_shared *sh;

	if (!mz)
		return NULL;
	sh = mz->addr;
	/* acquire pairs with the release in dyn_create(): an initialised table */
	if (__atomic_load_n(&sh->magic, __ATOMIC_ACQUIRE) != DYN_MAGIC ||
	    sh->layout != DYN_LAYOUT)
		return NULL;
	return sh;
}

/*
 * Only the primary creates the registry (a secondary may register nothing
 * new), so the process-local mutex is enough to make creation single.
 */
static struct dyn_shared *dyn_create(void)
{
	const struct hpm_memzone *mz;
	struct dyn_shared *sh;
	size_t i;

	pthread_mutex_lock(&dyn_create_lock);
	sh = dyn_find();
	if (sh)
		goto out;
	mz = hpm_memzone_reserve(DYN_MZ_NAME, sizeof(*sh), HPM_SOCKET_ANY, 0);
	if (!mz)
		goto out;
	sh = mz->addr;
	memset(sh, 0, sizeof(*sh));
	hpm_spinlock_init(&sh->lock);
	sh->layout = DYN_LAYOUT;
	for (i = offsetof(struct hpm_mbuf, dynfield1); i < MBUF_BYTES; i++)
		sh->free_bytes[i] = 1;
	for (i = HPM_MBUF_DYNFLAG_FIRST_BIT; i <= HPM_MBUF_DYNFLAG_LAST_BIT; i++)
		sh->free_flags |= UINT64_C(1) << i;
	__atomic_store_n(&sh->magic, DYN_MAGIC, __ATOMIC_RELEASE);
out:
	pthread_mutex_unlock(&dyn_create_lock);
	return sh;
}

/*
 * The registry a registration works on: the primary creates it on first
 * use; elsewhere there is nothing to re-register (EPERM, as for a new name).
 */
static struct dyn_shared *dyn_for_register(void)
{
	struct dyn_shared *sh;

	if (hpm_proc_type() == HPM_PROC_PRIMARY)
		return dyn_create();
	sh = dyn_find();
	if (!sh)
		hpm_errno = EPERM;
	return sh;
}

static int check_name(const char *name)
{
	if (!name)
		return -EINVAL;
	if (strnlen(name, HPM_MBUF_DYN_NAMESIZE) == HPM_MBUF_DYN_NAMESIZE)
		return -ENAMETOOLONG;
	if (!name[0])
		return -EINVAL;
	return 0;
}

static struct dyn_field *field_find(struct dyn_shared *sh, const char *name)
{
	uint32_t i;

	for (i = 0; i < sh->nb_fields; i++)
		if (!strcmp(sh->fields[i].params.name, name))
			return &sh->fields[i];
	return NULL;
}

static struct dyn_flag *flag_find(struct dyn_shared *sh, const char *name)
{
	uint32_t i;

	for (i = 0; i < sh->nb_flags; i++)
		if (!strcmp(sh->flags[i].params.name, name))
			return &sh->flags[i];
	return NULL;
}

static bool bytes_free(const struct dyn_shared *sh, size_t off, size_t size)
{
	size_t i;

	for (i = off; i < off + size; i++)
		if (!sh->free_bytes[i])
			return false;
	return true;
}

/* Natural alignment of an offset within the mbuf (0 counts as the whole). */
static size_t off_align(size_t off)
{
	return off ? off & -off : MBUF_BYTES;
}

/*
 * The free offset whose own alignment is smallest (then the lowest): a
 * field takes the place that spoils the fewest well-aligned ones, leaving
 * them to fields that need them. SIZE_MAX when nothing fits.
 */
static size_t field_place(const struct dyn_shared *sh, size_t size,
			  size_t align)
{
	size_t off, best = SIZE_MAX;

	for (off = 0; off + size <= MBUF_BYTES; off += align) {
		if (!bytes_free(sh, off, size))
			continue;
		if (best == SIZE_MAX || off_align(off) < off_align(best))
			best = off;
	}
	return best;
}

/* Same parameters as the registered ones (flags are 0 on both sides). */
static bool field_same(const struct hpm_mbuf_dynfield *a,
		       const struct hpm_mbuf_dynfield *b)
{
	return a->size == b->size && a->align == b->align &&
	       a->flags == b->flags;
}

__hpm_export int
hpm_mbuf_dynfield_register_offset(const struct hpm_mbuf_dynfield *params,
				  size_t req)
{
	struct dyn_shared *sh;
	struct dyn_field *f;
	size_t off;
	int rc;

	if (!params)
		return hpm_fail(EINVAL);
	rc = check_name(params->name);
	if (rc)
		return hpm_fail(-rc);
	if (params->size == 0 || params->size >= MBUF_BYTES ||
	    !HPM_IS_POW2(params->align) || params->align >= MBUF_BYTES ||
	    params->flags != 0)
		return hpm_fail(EINVAL);
	if (req != SIZE_MAX && (req >= MBUF_BYTES || req % params->align ||
				req + params->size > MBUF_BYTES))
		return hpm_fail(EINVAL);

	sh = dyn_for_register();
	if (!sh)
		return hpm_fail(hpm_errno);
	hpm_spinlock_lock(&sh->lock);
	f = field_find(sh, params->name);
	if (f) {
		/* Identical re-registration, from any process, is a lookup. */
		if ((req != SIZE_MAX && req != f->offset) ||
		    !field_same(&f->params, params))
			rc = -EEXIST;
		else
			rc = (int)f->offset;
		goto out;
	}
	if (hpm_proc_type() != HPM_PROC_PRIMARY) {
		rc = -EPERM;
		goto out;
	}
	if (sh->nb_fields >= DYN_MAX_FIELDS) {
		rc = -ENOENT;
		goto out;
	}
	if (req == SIZE_MAX) {
		off = field_place(sh, params->size, params->align);
		if (off == SIZE_MAX) {
			rc = -ENOENT;
			goto out;
		}
	} else {
		if (!bytes_free(sh, req, params->size)) {
			rc = -EBUSY;
			goto out;
		}
		off = req;
	}
	memset(&sh->free_bytes[off], 0, params->size);
	f = &sh->fields[sh->nb_fields];
	f->params = *params;
	f->offset = (uint32_t)off;
	sh->nb_fields++;
	rc = (int)off;
out:
	hpm_spinlock_unlock(&sh->lock);
	return rc < 0 ? hpm_fail(-rc) : rc;
}

__hpm_export int
hpm_mbuf_dynfield_register(const struct hpm_mbuf_dynfield *params)
{
	return hpm_mbuf_dynfield_register_offset(params, SIZE_MAX);
}

/* Offset or bit of a registered name, its parameters copied out. */
static int dyn_lookup(const char *name, struct hpm_mbuf_dynfield *field,
		      struct hpm_mbuf_dynflag *flag, bool is_field)
{
	struct dyn_shared *sh;
	struct dyn_field *fi;
	struct dyn_flag *fl;
	int rc;

	rc = check_name(name);
	if (rc)
		return hpm_fail(-rc);
	sh = dyn_find();
	if (!sh)
		return hpm_fail(ENOENT);
	rc = -ENOENT;
	hpm_spinlock_lock(&sh->lock);
	if (is_field && (fi = field_find(sh, name))) {
		if (field)
			*field = fi->params;
		rc = (int)fi->offset;
	} else if (!is_field && (fl = flag_find(sh, name))) {
		if (flag)
			*flag = fl->params;
		rc = (int)fl->bitnum;
	}
	hpm_spinlock_unlock(&sh->lock);
	return rc < 0 ? hpm_fail(-rc) : rc;
}

__hpm_export int hpm_mbuf_dynfield_lookup(const char *name,
					  struct hpm_mbuf_dynfield *params)
{
	return dyn_lookup(name, params, NULL, true);
}

__hpm_export int
hpm_mbuf_dynflag_register_bitnum(const struct hpm_mbuf_dynflag *params,
				 unsigned int req)
{
	struct dyn_shared *sh;
	struct dyn_flag *f;
	unsigned int bit;
	int rc;

	if (!params)
		return hpm_fail(EINVAL);
	rc = check_name(params->name);
	if (rc)
		return hpm_fail(-rc);
	if (params->flags != 0 || (req != UINT_MAX && req >= 64))
		return hpm_fail(EINVAL);

	sh = dyn_for_register();
	if (!sh)
		return hpm_fail(hpm_errno);
	hpm_spinlock_lock(&sh->lock);
	f = flag_find(sh, params->name);
	if (f) {
		if ((req != UINT_MAX && req != f->bitnum) ||
		    f->params.flags != params->flags)
			rc = -EEXIST;
		else
			rc = (int)f->bitnum;
		goto out;
	}
	if (hpm_proc_type() != HPM_PROC_PRIMARY) {
		rc = -EPERM;
		goto out;
	}
	if (req == UINT_MAX) {
		if (!sh->free_flags) {
			rc = -ENOENT;
			goto out;
		}
		bit = (unsigned int)__builtin_ctzll(sh->free_flags);
	} else {
		if (!(sh->free_flags & (UINT64_C(1) << req))) {
			rc = -EBUSY;
			goto out;
		}
		bit = req;
	}
	sh->free_flags &= ~(UINT64_C(1) << bit);
	f = &sh->flags[sh->nb_flags];
	f->params = *params;
	f->bitnum = bit;
	sh->nb_flags++;
	rc = (int)bit;
out:
	hpm_spinlock_unlock(&sh->lock);
	return rc < 0 ? hpm_fail(-rc) : rc;
}

__hpm_export int hpm_mbuf_dynflag_register(const struct hpm_mbuf_dynflag *params)
{
	return hpm_mbuf_dynflag_register_bitnum(params, UINT_MAX);
}

__hpm_export int hpm_mbuf_dynflag_lookup(const char *name,
					 struct hpm_mbuf_dynflag *params)
{
	return dyn_lookup(name, NULL, params, false);
}

__hpm_export void hpm_mbuf_dyn_dump(FILE *f)
{
	struct dyn_shared *sh;
	uint32_t i, nfree = 0;

	if (!f)
		f = stdout;
	sh = dyn_find();
	if (!sh) {
		fprintf(f, "mbuf dynamic fields and flags: none registered\n");
		return;
	}
	hpm_spinlock_lock(&sh->lock);
	fprintf(f, "mbuf dynamic fields (%u):\n", sh->nb_fields);
	for (i = 0; i < sh->nb_fields; i++)
		fprintf(f, "  name=%s offset=%u size=%zu align=%zu flags=%#x\n",
			sh->fields[i].params.name, sh->fields[i].offset,
			sh->fields[i].params.size, sh->fields[i].params.align,
			sh->fields[i].params.flags);
	fprintf(f, "mbuf dynamic flags (%u):\n", sh->nb_flags);
	for (i = 0; i < sh->nb_flags; i++)
		fprintf(f, "  name=%s bitnum=%u flags=%#x\n",
			sh->flags[i].params.name, sh->flags[i].bitnum,
			sh->flags[i].params.flags);
	for (i = 0; i < MBUF_BYTES; i++)
		nfree += sh->free_bytes[i];
	fprintf(f, "free: %u bytes, ol_flags bits %#llx\n", nfree,
		(unsigned long long)sh->free_flags);
	hpm_spinlock_unlock(&sh->lock);
}

/* The flag first, then the field, as DPDK: both are needed to use either. */
static int timestamp_register(int *field_offset, uint64_t *flag,
			      const char *flag_name)
{
	static const struct hpm_mbuf_dynfield field = {
		.name = HPM_MBUF_DYNFIELD_TIMESTAMP_NAME,
		.size = sizeof(hpm_mbuf_timestamp_t),
		.align = __alignof__(hpm_mbuf_timestamp_t),
	};
	struct hpm_mbuf_dynflag fl = { .flags = 0 };
	int bit, off;

	if (!field_offset || !flag)
		return hpm_fail(EINVAL);
	snprintf(fl.name, sizeof(fl.name), "%s", flag_name);
	bit = hpm_mbuf_dynflag_register(&fl);
	if (bit < 0)
		return bit;
	off = hpm_mbuf_dynfield_register(&field);
	if (off < 0)
		return off;
	*flag = HPM_MBUF_DYNFLAG(bit);
	*field_offset = off;
	return 0;
}

__hpm_export int hpm_mbuf_dyn_rx_timestamp_register(int *field_offset,
						    uint64_t *rx_flag)
{
	return timestamp_register(field_offset, rx_flag,
				  HPM_MBUF_DYNFLAG_RX_TIMESTAMP_NAME);
}

__hpm_export int hpm_mbuf_dyn_tx_timestamp_register(int *field_offset,
						    uint64_t *tx_flag)
{
	return timestamp_register(field_offset, tx_flag,
				  HPM_MBUF_DYNFLAG_TX_TIMESTAMP_NAME);
}
