// SPDX-License-Identifier: MIT
/*
 * hpmemctl app REGION VIEW: a running application's heaps, memzones,
 * mempools, rings, memsegs and thread slots, read through libhpmem's
 * read-only inspector (hpmem/inspect.h). This file only formats.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <hpmem/inspect.h>
#include <hpmem/memseg.h>
#include <hpmem/ring.h>

#include "hpmemctl.h"

/* The command's state, handed to every walker callback. */
struct app {
	struct ctl *c;
	unsigned int n;		/* items printed */
};

/*
 * A primary that truncates its region's file under us makes our reads of
 * the lost part fault; say so in one line instead of dying of SIGBUS.
 */
static void on_sigbus(int sig)
{
	static const char msg[] = "hpmemctl: app: the region shrank while being read "
				  "(its file was truncated)\n";

	(void)sig;
	(void)!write(STDERR_FILENO, msg, sizeof(msg) - 1);
	_exit(1);
}

static void j_iova(struct json_writer *w, uint64_t iova)
{
	if (iova == HPM_BAD_IOVA)
		json_knull(w, "iova");
	else
		json_kaddr(w, "iova", iova);
}

/* ---- heaps ---- */

static int heap_one(const struct hpm_inspect_heap *h, void *arg)
{
	struct app *a = arg;
	struct json_writer *w = &a->c->jw;

	if (a->c->json) {
		json_obj_begin(w);
		json_ki64(w, "socket", h->socket);
		json_ku64(w, "total", h->total);
		json_ku64(w, "free", h->free);
		json_ku64(w, "alloc", h->alloc);
		json_ku64(w, "largest_free", h->largest_free);
		json_ku64(w, "alloc_count", h->alloc_count);
		json_ku64(w, "free_count", h->free_count);
		json_ku64(w, "runs", h->runs);
		json_ki64(w, "lock_owner_pid", h->lock_owner_pid);
		json_ku64(w, "limit", h->limit);
		json_ku64(w, "reserved", h->reserved);
		json_ku64(w, "present", h->present);
		json_obj_end(w);
	} else {
		if (!a->n)
			printf("%-6s %14s %14s %14s %10s %10s %10s %10s %10s %s\n", "socket",
			       "total", "free", "largest_free", "allocs", "free_blks",
			       "limit_MiB", "resv_MiB", "pres_MiB", "lock");
		printf("%-6d %14llu %14llu %14llu %10llu %10llu %10llu %10llu %10llu ",
		       h->socket, (unsigned long long)h->total, (unsigned long long)h->free,
		       (unsigned long long)h->largest_free,
		       (unsigned long long)h->alloc_count,
		       (unsigned long long)h->free_count,
		       (unsigned long long)(h->limit >> 20),
		       (unsigned long long)(h->reserved >> 20),
		       (unsigned long long)(h->present >> 20));
		if (h->lock_owner_pid)
			printf("held by %d\n", h->lock_owner_pid);
		else
			printf("free\n");
	}
	a->n++;
	return 0;
}

/* ---- memzones ---- */

static int zone_one(const struct hpm_memzone *mz, void *arg)
{
	struct app *a = arg;
	struct json_writer *w = &a->c->jw;

	if (a->c->json) {
		json_obj_begin(w);
		json_kstr(w, "name", mz->name);
		json_kaddr(w, "addr", (uintptr_t)mz->addr);
		json_ku64(w, "len", mz->len);
		json_ki64(w, "socket", mz->socket);
		j_iova(w, mz->iova);
		json_ku64(w, "page_size", mz->page_sz);
		json_ku64(w, "flags", mz->flags);
		json_obj_end(w);
	} else {
		if (!a->n)
			printf("%-31s %14s %12s %6s %18s %s\n", "name", "addr", "len",
			       "socket", "iova", "flags");
		text_name(mz->name);
		printf("%*s %#14llx %12zu %6d ", (int)(31 - strnlen(mz->name, 31)), "",
		       (unsigned long long)(uintptr_t)mz->addr, mz->len, mz->socket);
		if (mz->iova == HPM_BAD_IOVA)
			printf("%18s", "-");
		else
			printf("%#18llx", (unsigned long long)mz->iova);
		printf(" %#x\n", mz->flags);
	}
	a->n++;
	return 0;
}

/* ---- mempools ---- */

static int pool_one(const struct hpm_inspect_mempool *mp, void *arg)
{
	struct app *a = arg;
	struct json_writer *w = &a->c->jw;

	if (a->c->json) {
		json_obj_begin(w);
		json_kstr(w, "name", mp->name);
		json_kaddr(w, "addr", mp->addr);
		json_kstr(w, "ops", mp->ops);
		json_ku64(w, "size", mp->size);
		json_ku64(w, "populated", mp->populated);
		json_ku64(w, "avail", mp->avail);
		json_ku64(w, "in_use", mp->populated > mp->avail ? mp->populated - mp->avail : 0);
		json_ku64(w, "in_driver", mp->in_driver);
		json_ku64(w, "cached", mp->cached);
		json_ku64(w, "cache_size", mp->cache_size);
		json_ku64(w, "elt_size", mp->elt_size);
		json_ku64(w, "total_elt_size", mp->total_elt_size);
		json_ki64(w, "socket", mp->socket);
		json_ku64(w, "flags", mp->flags);
		json_ku64(w, "chunks", mp->nb_chunks);
		json_ku64(w, "get_objs", mp->get_objs);
		json_ku64(w, "put_objs", mp->put_objs);
		json_key(w, "caches");
		json_arr_begin(w);
		for (unsigned int i = 0; i < HPM_MAX_THREADS; i++) {
			if (!mp->cache[i])
				continue;
			json_obj_begin(w);
			json_ku64(w, "slot", i);
			json_ku64(w, "count", mp->cache[i]);
			json_obj_end(w);
		}
		json_arr_end(w);
		json_obj_end(w);
		a->n++;
		return 0;
	}
	printf("%smempool ", a->n ? "\n" : "");
	text_name(mp->name);
	printf(" at %#llx: %s, socket %d\n", (unsigned long long)mp->addr, mp->ops,
	       mp->socket);
	printf("  size %u (populated %u), avail %u = %u in the driver + %u cached, in use %u\n",
	       mp->size, mp->populated, mp->avail, mp->in_driver, mp->cached,
	       mp->populated > mp->avail ? mp->populated - mp->avail : 0);
	printf("  element %u bytes (%u with header and trailer), %u chunks, flags %#x\n",
	       mp->elt_size, mp->total_elt_size, mp->nb_chunks, mp->flags);
	printf("  got %llu, put %llu objects through the caches\n",
	       (unsigned long long)mp->get_objs, (unsigned long long)mp->put_objs);
	printf("  cache size %u; cached per thread slot:", mp->cache_size);
	for (unsigned int i = 0; i < HPM_MAX_THREADS; i++)
		if (mp->cache[i])
			printf(" %u:%u", i, mp->cache[i]);
	printf("%s\n", mp->cached ? "" : " none");
	a->n++;
	return 0;
}

/* ---- rings ---- */

static int ring_one(const struct hpm_inspect_ring *r, void *arg)
{
	struct app *a = arg;
	struct json_writer *w = &a->c->jw;

	if (a->c->json) {
		json_obj_begin(w);
		json_kstr(w, "name", r->name);
		if (r->pool[0])
			json_kstr(w, "pool", r->pool);
		else
			json_knull(w, "pool");
		json_kaddr(w, "addr", r->addr);
		json_ku64(w, "flags", r->flags);
		json_ku64(w, "size", r->size);
		json_ku64(w, "capacity", r->capacity);
		json_ku64(w, "count", r->count);
		json_ku64(w, "free", r->capacity - r->count);
		json_ku64(w, "prod_head", r->prod_head);
		json_ku64(w, "prod_tail", r->prod_tail);
		json_ku64(w, "cons_head", r->cons_head);
		json_ku64(w, "cons_tail", r->cons_tail);
		json_obj_end(w);
	} else {
		if (!a->n)
			printf("%-24s %-10s %10s %10s %10s %s\n", "name", "kind", "size",
			       "capacity", "count", "flags");
		text_name(r->name);
		printf("%*s %-10s %10u %10u %10u %#x%s%s%s\n",
		       (int)(24 - strnlen(r->name, 24)), "", r->pool[0] ? "mempool" : "ring",
		       r->size, r->capacity, r->count, r->flags,
		       r->flags & HPM_RING_F_SP_ENQ ? " SP" : " MP",
		       r->flags & HPM_RING_F_SC_DEQ ? "/SC" : "/MC",
		       r->flags & HPM_RING_F_EXACT_SZ ? " exact" : "");
	}
	a->n++;
	return 0;
}

/* ---- memsegs ---- */

static int run_one(const struct hpm_inspect_memseg_run *r, void *arg)
{
	struct app *a = arg;
	struct json_writer *w = &a->c->jw;

	if (a->c->json) {
		json_obj_begin(w);
		json_kaddr(w, "addr", r->addr);
		j_iova(w, r->iova);
		json_ku64(w, "len", r->len);
		json_ku64(w, "pages", r->pages);
		json_ku64(w, "page_size", r->page_sz);
		json_ki64(w, "socket", r->socket);
		json_ku64(w, "config_pages", r->config_pages);
		json_obj_end(w);
	} else {
		if (!a->n)
			printf("%-18s %-18s %10s %6s %6s\n", "addr", "iova", "len", "pages",
			       "socket");
		printf("%#-18llx ", (unsigned long long)r->addr);
		if (r->iova == HPM_BAD_IOVA)
			printf("%-18s", "-");
		else
			printf("%#-18llx", (unsigned long long)r->iova);
		printf(" %8lluMi %6u %6d", (unsigned long long)(r->len >> 20), r->pages,
		       r->socket);
		if (r->config_pages)
			printf(" (%u with the config)", r->config_pages);
		printf("\n");
	}
	a->n++;
	return 0;
}

/* ---- threads ---- */

static int thread_one(const struct hpm_inspect_thread *t, void *arg)
{
	struct app *a = arg;
	struct json_writer *w = &a->c->jw;

	if (a->c->json) {
		json_obj_begin(w);
		json_ku64(w, "slot", t->slot);
		json_ki64(w, "pid", t->pid);
		json_ki64(w, "tid", t->tid);
		json_kbool(w, "alive", t->alive);
		json_obj_end(w);
	} else {
		if (!a->n)
			printf("%-5s %8s %8s %s\n", "slot", "pid", "tid", "state");
		printf("%-5u %8d %8d %s\n", t->slot, t->pid, t->tid,
		       t->alive ? "running" : "exited (slot not reclaimed yet)");
	}
	a->n++;
	return 0;
}

static const char *const views[] = {
	"heaps", "memzones", "mempools", "rings", "memsegs", "threads",
};

static int walk(const struct hpm_inspect *in, unsigned int view, struct app *a)
{
	switch (view) {
	case 0: return hpm_inspect_heaps(in, heap_one, a);
	case 1: return hpm_inspect_memzones(in, zone_one, a);
	case 2: return hpm_inspect_mempools(in, pool_one, a);
	case 3: return hpm_inspect_rings(in, ring_one, a);
	case 4: return hpm_inspect_memsegs(in, run_one, a);
	default: return hpm_inspect_threads(in, thread_one, a);
	}
}

static int parse_backend(const char *s, enum hpm_backend *out)
{
	for (int b = HPM_BACKEND_AUTO; b <= HPM_BACKEND_ANON; b++) {
		if (!strcmp(s, hpm_backend_name((enum hpm_backend)b))) {
			*out = (enum hpm_backend)b;
			return 0;
		}
	}
	return -EINVAL;
}

/* The region, in every view's document (JSON) or heading (text). */
static void region_head(struct app *a, const struct hpm_inspect_region *r)
{
	struct json_writer *w = &a->c->jw;

	if (!a->c->json) {
		printf("region ");
		text_name(r->name);
		printf(": %s, %llu MiB of %llu KiB pages at %#llx, iova %s, primary %d%s\n",
		       r->backend_name, (unsigned long long)(r->size >> 20),
		       (unsigned long long)(r->page_sz >> 10), (unsigned long long)r->base,
		       r->iova_mode, r->primary_pid, r->primary_alive ? "" : " (gone)");
		return;
	}
	json_key(w, "region");
	json_obj_begin(w);
	json_kstr(w, "name", r->name);
	json_kstr(w, "backend", r->backend_name);
	json_kstr(w, "iova_mode", r->iova_mode);
	json_ku64(w, "layout_version", r->layout_version);
	json_ki64(w, "primary_pid", r->primary_pid);
	json_kbool(w, "primary_alive", r->primary_alive);
	json_kaddr(w, "base", r->base);
	json_ku64(w, "size", r->size);
	json_ku64(w, "page_size", r->page_sz);
	json_ku64(w, "memsegs", r->nr_memsegs);
	json_ku64(w, "socket_mask", r->socket_mask);
	json_ku64(w, "max_memzones", r->max_memzones);
	json_obj_end(w);
}

int cmd_app(struct ctl *c, int argc, char **argv)
{
	enum hpm_backend backend = HPM_BACKEND_AUTO;
	const char *pos[2] = { NULL, NULL };
	struct hpm_inspect_region reg;
	struct app a = { .c = c };
	struct hpm_inspect *in;
	unsigned int view;
	int npos = 0, rc;

	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--backend") && i + 1 < argc) {
			if (parse_backend(argv[++i], &backend))
				return ctl_usage(ctl_cmd_find("app"));
		} else if (!strncmp(argv[i], "--backend=", 10)) {
			if (parse_backend(argv[i] + 10, &backend))
				return ctl_usage(ctl_cmd_find("app"));
		} else if (npos < 2 && argv[i][0] != '-') {
			pos[npos++] = argv[i];
		} else {
			return ctl_usage(ctl_cmd_find("app"));
		}
	}
	if (npos != 2)
		return ctl_usage(ctl_cmd_find("app"));
	for (view = 0; view < sizeof(views) / sizeof(views[0]); view++)
		if (!strcmp(pos[1], views[view]))
			break;
	if (view == sizeof(views) / sizeof(views[0]))
		return ctl_usage(ctl_cmd_find("app"));

	signal(SIGBUS, on_sigbus);
	/* On failure the library has said why, in one line. */
	if (hpm_inspect_open(pos[0], backend, &in))
		return 1;
	hpm_inspect_region(in, &reg);
	if (c->json) {
		json_obj_begin(&c->jw);
		region_head(&a, &reg);
		json_key(&c->jw, views[view]);
		json_arr_begin(&c->jw);
	} else {
		region_head(&a, &reg);
	}
	rc = walk(in, view, &a);
	hpm_inspect_close(in);
	if (rc < 0) {
		/* Nothing was printed for this view; end the document anyway. */
		if (c->json) {
			json_arr_end(&c->jw);
			json_obj_end(&c->jw);
			json_finish(&c->jw);
		}
		return ctl_failf("app: reading %s of region '%s': %s", views[view], pos[0],
				 strerror(-rc));
	}
	if (c->json) {
		json_arr_end(&c->jw);
		json_obj_end(&c->jw);
		return ctl_json_finish(c);
	}
	if (!a.n)
		printf("no %s\n", views[view]);
	return 0;
}
