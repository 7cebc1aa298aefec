// SPDX-License-Identifier: MIT
/*
 * Memzones: named heap blocks, in a table in the region that every process
 * reads at the same address. Names are found through an open-addressing
 * hash (linear probing, no tombstones) so lookups cost the same with 10 or
 * 10000 zones.
 */
#include <stdio.h>
#include <string.h>

#include <hpmem/memseg.h>
#include <hpmem/memzone.h>

#include "config.h"
#include "inspect.h"
#include "internal.h"
#include "malloc_heap.h"
#include "memzone.h"

#define MZ_TBL_MAGIC	0x4d5a5442u	/* "MZTB" */
#define MZ_TBL_VERSION	1
#define MZ_NONE		UINT32_MAX

#define MZ_PAGE_2M	(2ull << 20)
#define MZ_PAGE_1G	(1ull << 30)

struct mz_entry {
	struct hpm_memzone mz;	/* first: users get &entry->mz */
	uint32_t hash;
	/* release store on reserve, pairs with the acquire load in walk */
	atomic_uint in_use;
	uint32_t next_free;
};

/*
 * Writers (reserve, free) hold @lock and make @seq odd while they change
 * buckets or an entry's name; lookups take no lock and retry when @seq
 * changed under them (a seqlock), so readers never stall writers and a
 * lookup is a hash plus one or two probes.
 */
struct mz_table {
	uint32_t magic;
	uint32_t version;
	hpm_spinlock_t lock;
	atomic_uint seq;
	uint32_t max;		/* entries */
	uint32_t mask;		/* buckets - 1; buckets >= 2 * max */
	uint32_t count;		/* live zones */
	uint32_t free_head;	/* first free entry, MZ_NONE when full */
	struct mz_entry *entries;
	/* entry index + 1, 0 = empty. Atomic: read by lockless lookups. */
	_Atomic uint32_t *buckets;
};

static struct mz_table *mz_tbl(void)
{
	struct hpm_config *cfg = hpm_config();
	struct mz_table *t;

	if (!cfg)
		return NULL;
	t = cfg->memzone_tbl;
	if (!t || t->magic != MZ_TBL_MAGIC || t->version != MZ_TBL_VERSION)
		return NULL;
	return t;
}

/* FNV-1a: names are short, so this beats anything needing setup. */
static uint32_t mz_hash(const char *name, size_t *len)
{
	uint32_t h = 2166136261u;
	size_t i;

	for (i = 0; name[i]; i++) {
		h ^= (unsigned char)name[i];
		h *= 16777619u;
	}
	*len = i;
	return h;
}

static int check_name(const char *name, size_t *len)
{
	if (!name || !name[0])
		return -EINVAL;
	*len = strnlen(name, HPM_NAME_SIZE);
	if (*len >= HPM_NAME_SIZE)
		return -ENAMETOOLONG;
	return 0;
}

int hpm_memzone_setup(unsigned int max_zones)
{
	struct hpm_config *cfg = hpm_config();
	struct mz_table *t;
	uint64_t nb = 2, bytes;
	uint32_t i;

	if (!cfg)
		return hpm_fail(ENODEV);
	if (cfg->memzone_tbl)
		return hpm_fail(EBUSY);
	if (max_zones == 0)
		max_zones = HPM_MEMZONE_DEFAULT_MAX;
	if (max_zones > (1u << 28))
		return hpm_fail(EINVAL);
	/* Load factor <= 1/2 keeps probe sequences short. */
	while (nb < 2ull * max_zones)
		nb <<= 1;
	bytes = HPM_ALIGN_UP((uint64_t)sizeof(*t), 64) +
		(uint64_t)max_zones * sizeof(struct mz_entry) +
		nb * sizeof(uint32_t);
	t = hpm_heap_alloc(HPM_SOCKET_ANY, bytes, HPM_CACHE_LINE_SIZE, 0,
			   HPM_HEAP_F_ZERO);
	if (!t)
		return hpm_fail(ENOMEM);
	hpm_spinlock_init(&t->lock);
	atomic_init(&t->seq, 0);
	t->max = max_zones;
	t->mask = (uint32_t)(nb - 1);
	t->count = 0;
	t->entries = (struct mz_entry *)((char *)t +
					 HPM_ALIGN_UP(sizeof(*t), 64));
	t->buckets = (_Atomic uint32_t *)(t->entries + max_zones);
	for (i = 0; i < max_zones; i++) {
		atomic_init(&t->entries[i].in_use, 0);
		t->entries[i].next_free = i + 1 < max_zones ? i + 1 : MZ_NONE;
	}
	t->free_head = 0;
	t->version = MZ_TBL_VERSION;
	t->magic = MZ_TBL_MAGIC;
	cfg->memzone_tbl = t;
	return 0;
}

int hpm_memzone_table_check(const struct hpm_config *c, const struct hpm_view *v)
{
	uintptr_t at = (uintptr_t)c->memzone_tbl;
	uintptr_t lo = c->base + c->cfg_len, hi = c->base + c->size;
	const struct mz_table *t;
	uintptr_t ents, bkts, end;
	uint64_t nb = 2;

	/*
	 * The header fits before the region's end (the pointer is inside),
	 * on pages a dynamic region has: a hole would raise SIGBUS here.
	 */
	if (at + sizeof(struct mz_table) > hi ||
	    !hpm_config_range_present(c, at, sizeof(struct mz_table)) ||
	    !(t = hpm_view_at(v, at, sizeof(*t), 8))) {
		hpm_log(HPM_LOG_ERR, "shared config: bad memzone_tbl (%p), refusing the region",
			c->memzone_tbl);
		return -EPROTO;
	}
	while (nb < 2ull * c->max_memzones)
		nb <<= 1;
	/* Integers, not pointers: nothing here is trusted yet. */
	ents = at + HPM_ALIGN_UP(sizeof(*t), 64);
	bkts = ents + (uintptr_t)c->max_memzones * sizeof(struct mz_entry);
	end = bkts + nb * sizeof(uint32_t);
	/*
	 * Exactly what hpm_memzone_setup() lays out for max_memzones, so
	 * every entry and bucket index the lookups compute stays inside.
	 */
	if (t->magic != MZ_TBL_MAGIC || t->version != MZ_TBL_VERSION ||
	    t->max != c->max_memzones || t->mask != nb - 1 ||
	    (uintptr_t)t->entries != ents || (uintptr_t)t->buckets != bkts ||
	    at < lo || end > hi || !hpm_config_range_present(c, at, end - at)) {
		hpm_log(HPM_LOG_ERR, "shared config: bad memzone table at %p (magic 0x%x, "
			"version %u, %u zones, mask 0x%x), refusing the region", c->memzone_tbl,
			t->magic, t->version, t->max, t->mask);
		return -EPROTO;
	}
	return 0;
}

/*
 * A writer that died with @seq odd, or one busy on the same entry all the
 * while, costs a reader this many tries per entry; then it takes its copy
 * as it is (the name is cut to its buffer whatever it holds).
 */
#define MZ_PEEK_TRIES	64

int hpm_memzone_table_peek(const struct hpm_config *c, const struct hpm_view *v,
			   int (*fn)(const struct hpm_memzone *mz, uintptr_t at, void *arg),
			   void *arg)
{
	uintptr_t tbl = (uintptr_t)c->memzone_tbl;
	uintptr_t ents = tbl + HPM_ALIGN_UP(sizeof(struct mz_table), 64);
	const struct mz_table *t = hpm_view_at(v, tbl, sizeof(*t), 8);
	int rc;

	if (!t)
		return -EPROTO;
	/* c->max_memzones, not t->max: @c is what was checked, t moves on. */
	for (uint32_t i = 0; i < c->max_memzones; i++) {
		uintptr_t at = ents + (uintptr_t)i * sizeof(struct mz_entry);
		const struct mz_entry *e = hpm_view_at(v, at, sizeof(*e), 8);
		struct hpm_memzone mz;
		unsigned int live = 0;

		if (!e)
			return -EPROTO;
		for (int tries = 0; tries < MZ_PEEK_TRIES; tries++) {
			/* acquire pairs with mz_write_end()'s release store */
			unsigned int s1 = atomic_load_explicit(&t->seq, memory_order_acquire);

			/* acquire pairs with the release store in mz_reserve() */
			live = atomic_load_explicit(&e->in_use, memory_order_acquire);
			if (live)
				memcpy(&mz, &e->mz, sizeof(mz));
			/* as in mz_find(): the copy completes before seq is re-read */
			atomic_thread_fence(memory_order_acquire);
			if (!(s1 & 1) && s1 == atomic_load_explicit(&t->seq, memory_order_relaxed))
				break;
			__builtin_ia32_pause();
		}
		if (!live)
			continue;
		mz.name[sizeof(mz.name) - 1] = '\0';
		rc = fn(&mz, at, arg);
		if (rc)
			return rc;
	}
	return 0;
}

/* Lockless: hash probe under the seqlock. Returns the entry or NULL. */
static struct mz_entry *mz_find(struct mz_table *t, const char *name,
				size_t len, uint32_t h)
{
	struct mz_entry *found;
	unsigned int s1, s2;
	uint32_t i, b, n;

	for (;;) {
		/* acquire pairs with the writer's final release store */
		s1 = atomic_load_explicit(&t->seq, memory_order_acquire);
		if (s1 & 1) {
			__builtin_ia32_pause();
			continue;
		}
		found = NULL;
		/* Bounded: a torn view must not loop forever. */
		for (i = h & t->mask, n = 0; n <= t->mask;
		     i = (i + 1) & t->mask, n++) {
			b = atomic_load_explicit(&t->buckets[i],
						 memory_order_relaxed);
			if (!b)
				break;
			if (b > t->max)
				break;	/* torn: the seq check retries */
			if (t->entries[b - 1].hash == h &&
			    !memcmp(t->entries[b - 1].mz.name, name, len + 1)) {
				found = &t->entries[b - 1];
				break;
			}
		}
		/*
		 * acquire fence: our reads above complete before we re-read
		 * seq; pairs with the writer's release fence after making
		 * seq odd, so a concurrent change is always noticed.
		 */
		atomic_thread_fence(memory_order_acquire);
		s2 = atomic_load_explicit(&t->seq, memory_order_relaxed);
		if (s1 == s2)
			return found;
	}
}

static void mz_write_begin(struct mz_table *t)
{
	unsigned int s = atomic_load_explicit(&t->seq, memory_order_relaxed);

	atomic_store_explicit(&t->seq, s + 1, memory_order_relaxed);
	/* release fence: odd seq is visible before any change below */
	atomic_thread_fence(memory_order_release);
}

static void mz_write_end(struct mz_table *t)
{
	unsigned int s = atomic_load_explicit(&t->seq, memory_order_relaxed);

	/* release: changes are visible before the even seq readers check */
	atomic_store_explicit(&t->seq, s + 1, memory_order_release);
}

static void mz_hash_insert(struct mz_table *t, uint32_t idx, uint32_t h)
{
	uint32_t i = h & t->mask;

	while (atomic_load_explicit(&t->buckets[i], memory_order_relaxed))
		i = (i + 1) & t->mask;
	atomic_store_explicit(&t->buckets[i], idx + 1, memory_order_relaxed);
}

/*
 * Linear-probing delete without tombstones: move later members of the
 * probe run back into the hole when their home slot allows it.
 */
static void mz_hash_remove(struct mz_table *t, uint32_t idx, uint32_t h)
{
	uint32_t i = h & t->mask, j, home, b;

	while (atomic_load_explicit(&t->buckets[i], memory_order_relaxed) !=
	       idx + 1)
		i = (i + 1) & t->mask;
	j = i;
	for (;;) {
		j = (j + 1) & t->mask;
		b = atomic_load_explicit(&t->buckets[j], memory_order_relaxed);
		if (!b)
			break;
		home = t->entries[b - 1].hash & t->mask;
		/* Keep b at j when its home lies cyclically in (i, j]. */
		if (i <= j ? (home > i && home <= j) : (home > i || home <= j))
			continue;
		atomic_store_explicit(&t->buckets[i], b, memory_order_relaxed);
		i = j;
	}
	atomic_store_explicit(&t->buckets[i], 0, memory_order_relaxed);
}

static const struct hpm_memzone *
mz_reserve(const char *name, size_t len, int socket, unsigned int flags,
	   unsigned int align, unsigned int bound)
{
	struct hpm_config *cfg = hpm_config();
	const struct hpm_memseg *ms;
	unsigned int hflags = 0;
	struct mz_table *t;
	struct mz_entry *e;
	size_t nlen;
	uint32_t h, idx;
	void *addr;
	int rc;

	rc = check_name(name, &nlen);
	if (rc)
		return hpm_fail_ptr(-rc);
	if (flags & ~HPM_MEMZONE_F_ALL)
		return hpm_fail_ptr(EINVAL);
	/* A node, or an external heap's socket id (HPM_SOCKET_ANY never picks one). */
	if (socket != HPM_SOCKET_ANY && (socket < 0 || socket >= HPM_MAX_NODES) &&
	    hpm_malloc_heap_socket_is_external(socket) != 1)
		return hpm_fail_ptr(EINVAL);
	if (align == 0)
		align = HPM_CACHE_LINE_SIZE;
	if (!HPM_IS_POW2(align))
		return hpm_fail_ptr(EINVAL);
	if (align < HPM_CACHE_LINE_SIZE)
		align = HPM_CACHE_LINE_SIZE;
	/* As rte_memzone: a bounded zone of length 0 is its bound long. */
	if (len == 0 && bound)
		len = bound;
	/* Lengths are whole cache lines, as in DPDK (100 -> 128). */
	if (len > SIZE_MAX - HPM_CACHE_LINE_SIZE)
		return hpm_fail_ptr(ENOMEM);
	len = HPM_ALIGN_UP(len, (size_t)HPM_CACHE_LINE_SIZE);
	/*
	 * An alignment above the bound is fine (DPDK accepts it): an
	 * aligned start is then a multiple of the bound too.
	 */
	if (bound && (!HPM_IS_POW2(bound) || bound < len))
		return hpm_fail_ptr(EINVAL);
	t = mz_tbl();
	if (!t)
		return hpm_fail_ptr(ENODEV);
	/*
	 * Every page of a region has the same size, so a page-size demand is
	 * met by all memory or by none.
	 */
	if ((flags & (HPM_MEMZONE_2MB | HPM_MEMZONE_1GB)) &&
	    !(flags & HPM_MEMZONE_SIZE_HINT_ONLY) && socket < HPM_MAX_NODES) {
		bool ok = ((flags & HPM_MEMZONE_2MB) &&
			   cfg->page_sz == MZ_PAGE_2M) ||
			  ((flags & HPM_MEMZONE_1GB) &&
			   cfg->page_sz == MZ_PAGE_1G);
		if (!ok)
			return hpm_fail_ptr(ENOMEM);
	}

	h = mz_hash(name, &nlen);
	/* Cheap early checks; both are repeated under the lock. */
	if (mz_find(t, name, nlen, h))
		return hpm_fail_ptr(EEXIST);
	if (t->count >= t->max)
		return hpm_fail_ptr(ENOSPC);

	if (flags & HPM_MEMZONE_IOVA_CONTIG)
		hflags |= HPM_HEAP_F_CONTIG;
	/* As rte_memzone: a named node is a requirement, not a wish. */
	if (socket != HPM_SOCKET_ANY)
		hflags |= HPM_HEAP_F_STRICT;
	/* Allocate outside the table lock: the heap may take a while. */
	if (len == 0)
		addr = hpm_heap_alloc_biggest(socket, align, hflags, &len);
	else
		addr = hpm_heap_alloc(socket, len, align, bound, hflags);
	if (!addr)
		return hpm_fail_ptr(ENOMEM);

	hpm_spinlock_lock(&t->lock);
	if (mz_find(t, name, nlen, h)) {
		rc = EEXIST;
		goto err_unlock;
	}
	if (t->free_head == MZ_NONE) {
		rc = ENOSPC;
		goto err_unlock;
	}
	idx = t->free_head;
	e = &t->entries[idx];
	t->free_head = e->next_free;

	mz_write_begin(t);
	memset(&e->mz, 0, sizeof(e->mz));
	memcpy(e->mz.name, name, nlen + 1);
	e->mz.addr = addr;
	e->mz.len = len;
	e->mz.iova = hpm_virt2iova(addr);
	ms = hpm_virt2memseg(addr);
	e->mz.page_sz = ms ? ms->page_sz : cfg->page_sz;
	e->mz.socket = ms ? ms->socket : (socket < 0 ? 0 : socket);
	e->mz.flags = flags;
	e->hash = h;
	mz_hash_insert(t, idx, h);
	t->count++;
	/* release pairs with the acquire load in hpm_memzone_walk() */
	atomic_store_explicit(&e->in_use, 1, memory_order_release);
	mz_write_end(t);
	hpm_spinlock_unlock(&t->lock);
	return &e->mz;

err_unlock:
	hpm_spinlock_unlock(&t->lock);
	hpm_heap_free(addr);
	return hpm_fail_ptr(rc);
}

__hpm_export const struct hpm_memzone *
hpm_memzone_reserve_bounded(const char *name, size_t len, int socket,
			    unsigned int flags, unsigned int align,
			    unsigned int bound)
{
	return mz_reserve(name, len, socket, flags, align, bound);
}

__hpm_export const struct hpm_memzone *
hpm_memzone_reserve_aligned(const char *name, size_t len, int socket,
			    unsigned int flags, unsigned int align)
{
	return mz_reserve(name, len, socket, flags, align, 0);
}

__hpm_export const struct hpm_memzone *
hpm_memzone_reserve(const char *name, size_t len, int socket,
		    unsigned int flags)
{
	return mz_reserve(name, len, socket, flags, 0, 0);
}

__hpm_export const struct hpm_memzone *hpm_memzone_lookup(const char *name)
{
	struct mz_table *t;
	struct mz_entry *e;
	size_t len;
	uint32_t h;
	int rc;

	rc = check_name(name, &len);
	if (rc)
		return hpm_fail_ptr(-rc);
	t = mz_tbl();
	if (!t)
		return hpm_fail_ptr(ENODEV);
	h = mz_hash(name, &len);
	e = mz_find(t, name, len, h);
	if (!e)
		return hpm_fail_ptr(ENOENT);
	return &e->mz;
}

/* The entry behind a zone pointer, or NULL when it is not one of ours. */
static struct mz_entry *mz_entry_of(struct mz_table *t,
				    const struct hpm_memzone *mz)
{
	uintptr_t p = (uintptr_t)mz, base = (uintptr_t)t->entries;

	if (p < base || p >= base + (uintptr_t)t->max * sizeof(struct mz_entry))
		return NULL;
	if ((p - base) % sizeof(struct mz_entry))
		return NULL;
	return (struct mz_entry *)p;
}

__hpm_export int hpm_memzone_free(const struct hpm_memzone *mz)
{
	struct mz_table *t = mz_tbl();
	struct mz_entry *e;
	uint32_t idx;
	void *addr;

	if (!t)
		return hpm_fail(ENODEV);
	e = mz ? mz_entry_of(t, mz) : NULL;
	if (!e)
		return hpm_fail(EINVAL);
	hpm_spinlock_lock(&t->lock);
	if (!atomic_load_explicit(&e->in_use, memory_order_relaxed)) {
		hpm_spinlock_unlock(&t->lock);
		return hpm_fail(EINVAL);
	}
	idx = (uint32_t)(e - t->entries);
	addr = e->mz.addr;
	mz_write_begin(t);
	mz_hash_remove(t, idx, e->hash);
	atomic_store_explicit(&e->in_use, 0, memory_order_relaxed);
	e->mz.name[0] = '\0';
	mz_write_end(t);
	e->next_free = t->free_head;
	t->free_head = idx;
	t->count--;
	hpm_spinlock_unlock(&t->lock);
	hpm_heap_free(addr);
	return 0;
}

__hpm_export int hpm_memzone_walk(int (*fn)(const struct hpm_memzone *mz,
					    void *arg), void *arg)
{
	struct mz_table *t = mz_tbl();
	uint32_t i;
	int rc;

	if (!fn)
		return hpm_fail(EINVAL);
	if (!t)
		return hpm_fail(ENODEV);
	for (i = 0; i < t->max; i++) {
		/* acquire pairs with the release store in mz_reserve() */
		if (!atomic_load_explicit(&t->entries[i].in_use,
					  memory_order_acquire))
			continue;
		rc = fn(&t->entries[i].mz, arg);
		if (rc)
			return rc;
	}
	return 0;
}

static int mz_dump_one(const struct hpm_memzone *mz, void *arg)
{
	FILE *f = arg;

	fprintf(f, "  %-31s addr=%p iova=%#llx len=%zu socket=%d page=%lluk flags=%#x\n",
		mz->name, mz->addr, (unsigned long long)mz->iova, mz->len,
		mz->socket, (unsigned long long)(mz->page_sz >> 10),
		mz->flags);
	return 0;
}

__hpm_export void hpm_memzone_dump(FILE *f)
{
	struct mz_table *t = mz_tbl();

	if (!f)
		f = stdout;
	if (!t) {
		fprintf(f, "memzones: not initialised\n");
		return;
	}
	fprintf(f, "memzones: %u of %u, %u buckets\n", t->count, t->max,
		t->mask + 1);
	hpm_memzone_walk(mz_dump_one, f);
}

__hpm_export unsigned int hpm_memzone_count(void)
{
	struct mz_table *t = mz_tbl();

	return t ? t->count : 0;
}

__hpm_export unsigned int hpm_memzone_max(void)
{
	struct mz_table *t = mz_tbl();

	return t ? t->max : 0;
}
