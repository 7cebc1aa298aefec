// SPDX-License-Identifier: MIT
/*
 * hpmemctl as operators and scripts meet it: every command's --json output
 * parsed strictly and held to the keys hpmemctl(8) documents, the text
 * forms, and each one-line error (exit 1) and usage error (exit 2).
 */
#include <stdarg.h>
#include <stdbool.h>
#include <dirent.h>
#include <linux/io_uring.h>
#include <linux/vfio.h>

#include "hpmem_test.h"
#include "json_check.h"

/* The keys hpmemctl(8) documents, per output. */
#define INFO_KEYS "api_version:u page_size:u features:u feature_names:a nr_node_ids:u " \
	"node_mask:u max_pages:u addresses_visible:b dma_model:s dma_translated_devs:u " \
	"dma_direct_devs:u"
#define NODE_KEYS "node:u total:u free:u in_use:u mapped:u busy:u dirty:u"
#define WATCH_KEYS "time_ms:u sample:u nodes:a"
#define RESIZE_KEYS "node:u total:u"
#define GROWN_KEYS "name:s pages:u grown:a"
#define GROW_KEYS "node:u pages:u offset:u"
#define DESTROY_KEYS "name:s destroyed:b"
#define REGION_KEYS "name:s id:u uid:u owner:s persistent:b pinnable:b users:u maps:u " \
	"pages:u node_pages:o dma_pinned:u? dma:b?"
#define SEGS_KEYS "name:s pages:u page_size:u addresses_visible:b phys_hidden:s? " \
	"iova_hidden:s? runs:a"
#define RUN_KEYS "offset:u pages:u node:u phys:s? iova:s?"

#define OUT_MAX (1 << 20)

struct run {
	int status;		/* exit status, or 128 + signal */
	char out[OUT_MAX];
	char err[4096];
	int err_lines;
};

static const char *ctl_path(void)
{
	const char *p = getenv("HPMEMCTL");

	return p && *p ? p : "/bin/hpmemctl";
}

static int slurp(int fd, char *buf, size_t len)
{
	ssize_t n = pread(fd, buf, len - 1, 0);

	buf[n > 0 ? n : 0] = '\0';
	close(fd);
	return n < 0 ? -errno : 0;
}

/*
 * Runs hpmemctl with @fmt's words as arguments, as root or as nobody;
 * 0 or -errno. Output and status land in @r.
 */
static int __attribute__((format(printf, 3, 4)))
ctl(struct run *r, bool nobody, const char *fmt, ...)
{
	char line[512], *argv[32], *save = NULL;
	int argc = 0, ofd, efd;
	va_list ap;
	pid_t pid;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	argv[argc++] = (char *)ctl_path();
	for (char *w = strtok_r(line, " ", &save); w && argc < 31;
	     w = strtok_r(NULL, " ", &save))
		argv[argc++] = w;
	argv[argc] = NULL;
	ofd = memfd_create("out", MFD_CLOEXEC);
	efd = memfd_create("err", MFD_CLOEXEC);
	if (ofd < 0 || efd < 0)
		return -errno;
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return -errno;
	if (!pid) {
		dup2(ofd, 1);
		dup2(efd, 2);
		if (nobody && drop_root())
			_exit(126);
		execv(argv[0], argv);
		_exit(127);
	}
	r->status = wait_child(pid);
	slurp(ofd, r->out, sizeof(r->out));
	slurp(efd, r->err, sizeof(r->err));
	r->err_lines = 0;
	for (char *p = r->err; (p = strchr(p, '\n')); p++)
		r->err_lines++;
	return 0;
}

/* Parse @text or fail the test with the parser's reason. */
#define PARSE(v, text) do {						\
	char why_[160];							\
	(v) = jparse((text), why_, sizeof(why_));			\
	ASSERT_NE(NULL, (v)) TH_LOG("bad JSON (%s): %.300s", why_, (text)); \
} while (0)

#define KEYS(v, spec) do {						\
	const char *why_ = jkeys((v), (spec));				\
	EXPECT_EQ(NULL, why_) TH_LOG("%s", why_);			\
} while (0)

/* Failed: exit 1, one line on stderr, saying @text. */
#define FAILS_WITH(r, text) do {					\
	EXPECT_EQ(1, (r)->status);					\
	EXPECT_EQ(1, (r)->err_lines);					\
	EXPECT_NE(NULL, strstr((r)->err, (text))) TH_LOG("%s", (r)->err); \
} while (0)

/* Skip without the tool or the device; a new struct run on the heap. */
#define NEED_CTL(fd, r) do {						\
	if (access(ctl_path(), X_OK))					\
		SKIP(return, "%s absent", ctl_path());			\
	OPEN_DEV(fd);							\
	(r) = calloc(1, sizeof(*(r)));					\
	ASSERT_NE(NULL, (r));						\
} while (0)

static struct jval *find_region(struct jval *list, const char *name)
{
	for (size_t i = 0; list && i < list->n; i++) {
		struct jval *nm = jget(list->items[i], "name");

		if (nm && nm->type == J_STR && !strcmp(nm->s, name))
			return list->items[i];
	}
	return NULL;
}

static uint64_t ju(struct jval *obj, const char *key)
{
	struct jval *v = jget(obj, key);

	return v && v->type == J_NUM && v->is_uint ? v->u : UINT64_MAX;
}

/* An address key: a "0x..." string (hpmemctl(8)); UINT64_MAX otherwise. */
static uint64_t jaddr(struct jval *obj, const char *key)
{
	struct jval *v = jget(obj, key);
	char *end;
	uint64_t a;

	if (!v || v->type != J_STR || strncmp(v->s, "0x", 2))
		return UINT64_MAX;
	errno = 0;
	a = strtoull(v->s + 2, &end, 16);
	return errno || *end || end == v->s + 2 ? UINT64_MAX : a;
}

static bool has_feature(int fd, uint64_t bit)
{
	struct hpmem_info i;

	return !hp_info(fd, &i) && (i.features & bit);
}

/*
 * The guest has no /etc/passwd; owners are names only with one. Adds
 * root and nobody when the file is absent; true when it did (undo it).
 */
static bool passwd_add(void)
{
	static const char pw[] = "root:x:0:0:root:/root:/bin/sh\n"
				 "nobody:x:65534:65534:nobody:/:/bin/false\n";
	int fd = open("/etc/passwd", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);

	if (fd < 0)
		return false;
	if (write(fd, pw, sizeof(pw) - 1) != (ssize_t)sizeof(pw) - 1) {
		close(fd);
		unlink("/etc/passwd");
		return false;
	}
	close(fd);
	return true;
}

/* /dev/hpmem's mode for a test; returns the old one. */
static mode_t dev_chmod(mode_t mode)
{
	struct stat st;

	if (stat(HPMEM_DEVICE_PATH, &st))
		return 0600;
	chmod(HPMEM_DEVICE_PATH, mode);
	return st.st_mode & 07777;
}

TEST(json_checker_is_strict)
{
	static const char *const good[] = {
		"{}", "[]", "0", "-0.5e+3", "\"a\\u00e9\\ud83d\\ude00\"",
		" {\"a\": [1, true, false, null, {\"b\": \"\\\"\\\\\\/\\n\"}]}\n",
		"18446744073709551615",
	};
	static const char *const bad[] = {
		"", "{", "[1,]", "{\"a\":1,}", "{a:1}", "01", "1.", ".5", "+1",
		"\"\\x41\"", "\"\t\"", "\"\\ud800\"", "{\"a\":1,\"a\":2}", "{} {}",
		"tru", "nul", "[1 2]", "{\"a\" 1}", "\"abc", "\"\\u0000\"",
	};
	struct jval *v;
	char why[160];

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		v = jparse(good[i], why, sizeof(why));
		EXPECT_NE(NULL, v) TH_LOG("rejected %s: %s", good[i], why);
		jfree(v);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v = jparse(bad[i], why, sizeof(why));
		EXPECT_EQ(NULL, v) TH_LOG("accepted %s", bad[i]);
		jfree(v);
	}
	v = jparse("{\"a\": 1, \"b\": null, \"c\": \"x\"}", why, sizeof(why));
	ASSERT_NE(NULL, v);
	EXPECT_EQ(NULL, jkeys(v, "a:u b:u? c:s"));
	EXPECT_NE(NULL, jkeys(v, "a:u b:u c:s"));	/* null not allowed */
	EXPECT_NE(NULL, jkeys(v, "a:u b:n"));		/* c undocumented */
	EXPECT_NE(NULL, jkeys(v, "a:u b:n c:s d:u"));	/* d missing */
	EXPECT_NE(NULL, jkeys(v, "a:s b:n c:s"));	/* a is no string */
	jfree(v);
	v = jparse("-1", why, sizeof(why));
	ASSERT_NE(NULL, v);
	EXPECT_FALSE(v->is_uint);
	jfree(v);
}

TEST(info)
{
	struct hpmem_info hi;
	struct jval *v;
	struct run *r;
	int fd;

	NEED_CTL(fd, r);
	ASSERT_EQ(0, hp_info(fd, &hi));
	ASSERT_EQ(0, ctl(r, false, "info --json"));
	ASSERT_EQ(0, r->status) TH_LOG("%s", r->err);
	PARSE(v, r->out);
	KEYS(v, INFO_KEYS);
	EXPECT_EQ(HPMEM_PAGE_SIZE, ju(v, "page_size"));
	EXPECT_EQ(hi.node_mask, ju(v, "node_mask"));
	EXPECT_EQ(hi.features, ju(v, "features"));
	/* a name for every bit the module reports */
	EXPECT_EQ((size_t)__builtin_popcountll(hi.features), jget(v, "feature_names")->n);
	jfree(v);
	/* --json before the command works the same */
	ASSERT_EQ(0, ctl(r, false, "--json info"));
	PARSE(v, r->out);
	KEYS(v, INFO_KEYS);
	jfree(v);
	ASSERT_EQ(0, ctl(r, false, "info"));
	EXPECT_EQ(0, r->status);
	EXPECT_NE(NULL, strstr(r->out, "api version"));
	free(r);
	close(fd);
}

TEST(nodes)
{
	struct hpmem_node_info ni;
	struct jval *v;
	struct run *r;
	uint64_t mask, seen = 0;
	int fd;

	NEED_CTL(fd, r);
	mask = node_mask(fd);
	ASSERT_EQ(0, ctl(r, false, "nodes --json"));
	ASSERT_EQ(0, r->status) TH_LOG("%s", r->err);
	PARSE(v, r->out);
	ASSERT_EQ(J_ARR, v->type);
	for (size_t i = 0; i < v->n; i++) {
		struct jval *n = v->items[i];
		uint64_t node = ju(n, "node");

		KEYS(n, NODE_KEYS);
		ASSERT_LT(node, 64);
		seen |= 1ULL << node;
		ASSERT_EQ(0, hp_node_info(fd, node, &ni));
		EXPECT_EQ(ni.total_pages, ju(n, "total"));
		EXPECT_EQ(ni.inuse_pages, ju(n, "in_use"));
	}
	EXPECT_EQ(mask, seen);
	jfree(v);
	ASSERT_EQ(0, ctl(r, false, "nodes"));
	EXPECT_EQ(0, r->status);
	EXPECT_EQ(0, strncmp(r->out, "NODE", 4));
	free(r);
	close(fd);
}

TEST(nodes_watch_count)
{
	uint64_t last_ms = 0;
	char *line, *save = NULL;
	struct run *r;
	int fd, n = 0;

	NEED_CTL(fd, r);
	ASSERT_EQ(0, ctl(r, false, "nodes --watch=0.2 --count 3 --json"));
	ASSERT_EQ(0, r->status) TH_LOG("%s", r->err);
	/* JSON Lines: one sample per line */
	for (line = strtok_r(r->out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		struct jval *v;

		PARSE(v, line);
		KEYS(v, WATCH_KEYS);
		EXPECT_EQ((uint64_t)++n, ju(v, "sample"));
		EXPECT_LE(last_ms, ju(v, "time_ms"));
		last_ms = ju(v, "time_ms");
		for (size_t i = 0; i < jget(v, "nodes")->n; i++)
			KEYS(jget(v, "nodes")->items[i], NODE_KEYS);
		jfree(v);
	}
	EXPECT_EQ(3, n);
	ASSERT_EQ(0, ctl(r, false, "nodes --count 2 --watch=0.1"));
	EXPECT_EQ(0, r->status);
	n = 0;
	for (char *p = r->out; (p = strstr(p, "# ")); p++)
		n++;
	EXPECT_EQ(2, n) TH_LOG("%s", r->out);
	free(r);
	close(fd);
}

/* create, grow, regions, destroy by name; --json anywhere on the line. */
TEST(region_lifecycle)
{
	char name[HPMEM_NAME_MAX];
	bool made_passwd = passwd_add();
	struct hpmem_node_info before, after;
	struct jval *v, *e, *np;
	struct run *r;
	uint64_t mask;
	int fd;

	NEED_CTL(fd, r);
	mask = node_mask(fd);
	if ((mask & 3) != 3)
		SKIP(goto out, "needs pools on nodes 0 and 1");
	UNIQUE_NAME(name, "ctl");
	ASSERT_EQ(0, hp_node_info(fd, 1, &before));
	ASSERT_EQ(0, ctl(r, false, "create %s 0:2 1:1 --json", name));
	ASSERT_EQ(0, r->status) TH_LOG("%s", r->err);
	ASSERT_EQ(0, hp_node_info(fd, 1, &after));
	EXPECT_EQ(before.inuse_pages + 1, after.inuse_pages);
	PARSE(v, r->out);
	KEYS(v, GROWN_KEYS);
	EXPECT_EQ(3, ju(v, "pages"));
	ASSERT_EQ(2, jget(v, "grown")->n);
	KEYS(jget(v, "grown")->items[1], GROW_KEYS);
	EXPECT_EQ(2 * HPMEM_PAGE_SIZE, ju(jget(v, "grown")->items[1], "offset"));
	jfree(v);

	ASSERT_EQ(0, ctl(r, false, "--json grow %s 0:1", name));
	ASSERT_EQ(0, r->status) TH_LOG("%s", r->err);
	PARSE(v, r->out);
	KEYS(v, GROWN_KEYS);
	EXPECT_EQ(4, ju(v, "pages"));
	EXPECT_EQ(3 * HPMEM_PAGE_SIZE, ju(jget(v, "grown")->items[0], "offset"));
	jfree(v);

	ASSERT_EQ(0, ctl(r, false, "regions --json"));
	ASSERT_EQ(0, r->status) TH_LOG("%s", r->err);
	PARSE(v, r->out);
	ASSERT_EQ(J_ARR, v->type);
	for (size_t i = 0; i < v->n; i++)
		KEYS(v->items[i], REGION_KEYS);
	e = find_region(v, name);
	ASSERT_NE(NULL, e) TH_LOG("%s not listed", name);
	EXPECT_EQ(4, ju(e, "pages"));
	EXPECT_EQ(0, ju(e, "uid"));
	EXPECT_EQ(0, ju(e, "users"));
	EXPECT_EQ(0, ju(e, "maps"));
	EXPECT_TRUE(jget(e, "persistent")->b);
	EXPECT_FALSE(jget(e, "pinnable")->b);
	EXPECT_STREQ("root", jget(e, "owner")->s);
	np = jget(e, "node_pages");
	EXPECT_EQ(3, ju(np, "0"));
	EXPECT_EQ(1, ju(np, "1"));
	EXPECT_EQ((size_t)__builtin_popcountll(mask), np->n);
	if (has_feature(fd, HPMEM_FEAT_LIST_DMA_PINNED)) {
		EXPECT_EQ(0, ju(e, "dma_pinned"));
		EXPECT_EQ(J_BOOL, jget(e, "dma")->type);
		EXPECT_FALSE(jget(e, "dma")->b);
	}
	jfree(v);

	ASSERT_EQ(0, ctl(r, false, "regions"));
	EXPECT_EQ(0, r->status);
	EXPECT_NE(NULL, strstr(r->out, name));
	EXPECT_NE(NULL, strstr(r->out, "0:3,1:1"));

	ASSERT_EQ(0, ctl(r, false, "destroy %s --json", name));
	ASSERT_EQ(0, r->status) TH_LOG("%s", r->err);
	PARSE(v, r->out);
	KEYS(v, DESTROY_KEYS);
	jfree(v);
	ASSERT_EQ(0, ctl(r, false, "regions --json"));
	PARSE(v, r->out);
	EXPECT_EQ(NULL, find_region(v, name));
	jfree(v);
out:
	if (made_passwd)
		unlink("/etc/passwd");
	free(r);
	close(fd);
}

static int seg_cmp(const void *a, const void *b)
{
	const struct hpmem_seg *x = a, *y = b;

	return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/*
 * segs merges pages into runs: the runs it prints are checked against the
 * SEGS table read here, page by page.
 */
TEST(segs_runs)
{
	struct hpmem_seg segs[8];
	char name[HPMEM_NAME_MAX];
	struct hpmem_info hi;
	struct jval *v, *runs;
	struct run *r;
	size_t page = 0;
	bool iova_hidden;
	int fd, fd2, multi = 0;

	NEED_CTL(fd, r);
	ASSERT_EQ(0, hp_info(fd, &hi));
	if ((hi.node_mask & 3) != 3)
		SKIP(goto out, "needs pools on nodes 0 and 1");
	UNIQUE_NAME(name, "segs");
	ASSERT_EQ(0, ctl(r, false, "create %s 0:4 1:2 0:2", name));
	ASSERT_EQ(0, r->status) TH_LOG("%s", r->err);
	OPEN_DEV(fd2);
	ASSERT_EQ(0, hp_attach(fd2, name, NULL));
	ASSERT_EQ(8, hp_segs(fd2, segs, 8));
	close(fd2);
	qsort(segs, 8, sizeof(segs[0]), seg_cmp);

	ASSERT_EQ(0, ctl(r, false, "segs %s --json", name));
	ASSERT_EQ(0, r->status) TH_LOG("%s", r->err);
	EXPECT_EQ(0, r->err_lines) TH_LOG("%s", r->err);
	PARSE(v, r->out);
	KEYS(v, SEGS_KEYS);
	EXPECT_EQ(8, ju(v, "pages"));
	EXPECT_TRUE(jget(v, "addresses_visible")->b);
	EXPECT_EQ(J_NULL, jget(v, "phys_hidden")->type);
	iova_hidden = hi.dma_model == HPMEM_DMA_TRANSLATED;
	EXPECT_EQ(iova_hidden ? J_STR : J_NULL, jget(v, "iova_hidden")->type);
	runs = jget(v, "runs");
	for (size_t i = 0; i < runs->n; i++) {
		struct jval *run = runs->items[i];
		uint64_t pages = ju(run, "pages");

		KEYS(run, RUN_KEYS);
		ASSERT_LE(page + pages, 8);
		ASSERT_LT(0, pages);
		/* the run's first page */
		EXPECT_EQ(segs[page].offset, ju(run, "offset"));
		EXPECT_EQ(segs[page].node, ju(run, "node"));
		EXPECT_EQ(segs[page].phys, jaddr(run, "phys"));
		if (iova_hidden) {
			EXPECT_EQ(J_NULL, jget(run, "iova")->type);
		} else {
			EXPECT_EQ(segs[page].iova, jaddr(run, "iova"));
		}
		/* each page inside continues it... */
		for (uint64_t k = 1; k < pages; k++) {
			EXPECT_EQ(segs[page].node, segs[page + k].node);
			EXPECT_EQ(segs[page].offset + k * PG, segs[page + k].offset);
			EXPECT_EQ(segs[page].phys + k * PG, segs[page + k].phys);
		}
		page += pages;
		/* ...and the next page does not, or it would be merged */
		if (page < 8)
			EXPECT_FALSE(segs[page].node == segs[page - 1].node &&
				     segs[page].phys == segs[page - 1].phys + PG &&
				     (!segs[page].iova ||
				      segs[page].iova == segs[page - 1].iova + PG));
		multi += pages > 1;
	}
	EXPECT_EQ(8, page);
	/* node 1's pages split node 0's: at least three runs */
	EXPECT_LE(3, runs->n);
	TH_LOG("8 pages in %zu runs, %d of them longer than a page", runs->n, multi);
	jfree(v);

	ASSERT_EQ(0, ctl(r, false, "segs %s", name));
	EXPECT_EQ(0, r->status);
	EXPECT_EQ(0, strncmp(r->out, "OFFSET", 6));
	ASSERT_EQ(0, ctl(r, false, "destroy %s", name));
	EXPECT_EQ(0, r->status);
out:
	free(r);
	close(fd);
}

/*
 * A user lists their own regions only, sees no addresses (one line says
 * why) and may not resize pools; root sees everyone's.
 */
TEST(nobody)
{
	char mine[HPMEM_NAME_MAX], theirs[HPMEM_NAME_MAX], knob[8] = "N";
	bool made_passwd = passwd_add();
	struct jval *v, *e;
	struct run *r;
	mode_t mode;
	int fd;

	NEED_CTL(fd, r);
	mode = dev_chmod(0666);
	UNIQUE_NAME(mine, "root");
	UNIQUE_NAME(theirs, "nobody");
	ASSERT_EQ(0, ctl(r, false, "create %s 0:1", mine));
	ASSERT_EQ(0, r->status) TH_LOG("%s", r->err);
	ASSERT_EQ(0, ctl(r, true, "create %s 0:1", theirs));
	ASSERT_EQ(0, r->status) TH_LOG("%s", r->err);

	ASSERT_EQ(0, ctl(r, true, "regions --json"));
	if (has_feature(fd, HPMEM_FEAT_LIST_OWN)) {
		ASSERT_EQ(0, r->status) TH_LOG("%s", r->err);
		PARSE(v, r->out);
		for (size_t i = 0; i < v->n; i++) {
			KEYS(v->items[i], REGION_KEYS);
			EXPECT_EQ(NOBODY, ju(v->items[i], "uid"));
		}
		e = find_region(v, theirs);
		ASSERT_NE(NULL, e);
		EXPECT_STREQ("nobody", jget(e, "owner")->s);
		EXPECT_EQ(NULL, find_region(v, mine));
		jfree(v);
	} else {
		EXPECT_EQ(1, r->status);
		EXPECT_EQ(1, r->err_lines);
		EXPECT_NE(NULL, strstr(r->err, "run as root")) TH_LOG("%s", r->err);
	}
	ASSERT_EQ(0, ctl(r, false, "regions --json"));
	PARSE(v, r->out);
	EXPECT_NE(NULL, find_region(v, mine));
	e = find_region(v, theirs);
	ASSERT_NE(NULL, e);
	EXPECT_EQ(NOBODY, ju(e, "uid"));
	jfree(v);

	read_file("/sys/module/hpmem/parameters/phys_unprivileged", knob, sizeof(knob));
	knob[strcspn(knob, "\n")] = '\0';
	ASSERT_EQ(0, ctl(r, true, "segs %s --json", theirs));
	EXPECT_EQ(0, r->status) TH_LOG("%s", r->err);
	PARSE(v, r->out);
	KEYS(v, SEGS_KEYS);
	if (!strcmp(knob, "N")) {
		EXPECT_FALSE(jget(v, "addresses_visible")->b);
		EXPECT_STREQ("phys_unprivileged=N", jget(v, "phys_hidden")->s);
		EXPECT_EQ(J_NULL, jget(jget(v, "runs")->items[0], "phys")->type);
		EXPECT_EQ(J_NULL, jget(jget(v, "runs")->items[0], "iova")->type);
		EXPECT_EQ(1, r->err_lines);
		EXPECT_EQ(0, strncmp(r->err, "hpmemctl: addresses hidden: phys_unprivileged=N",
				     strlen("hpmemctl: addresses hidden: phys_unprivileged=N")))
			TH_LOG("%s", r->err);
	}
	jfree(v);

	ASSERT_EQ(0, ctl(r, true, "resize 0 1"));
	FAILS_WITH(r, "needs root");

	ASSERT_EQ(0, ctl(r, false, "destroy --uid %d %s", NOBODY, theirs));
	EXPECT_EQ(0, r->status) TH_LOG("%s", r->err);
	ASSERT_EQ(0, ctl(r, false, "destroy %s", mine));
	EXPECT_EQ(0, r->status) TH_LOG("%s", r->err);
	dev_chmod(mode);
	if (made_passwd)
		unlink("/etc/passwd");
	free(r);
	close(fd);
}

TEST(permission_denied)
{
	struct run *r;
	mode_t mode;
	int fd;

	NEED_CTL(fd, r);
	mode = dev_chmod(0600);
	ASSERT_EQ(0, ctl(r, true, "info"));
	dev_chmod(mode);
	EXPECT_EQ(1, r->status);
	EXPECT_STREQ("hpmemctl: permission denied on /dev/hpmem: ask for group hpmem (see hpmem(4))\n",
		     r->err);
	free(r);
	close(fd);
}

/* Failures: one line on stderr that says what to do, exit 1, nothing left. */
TEST(errors)
{
	char name[HPMEM_NAME_MAX];
	struct jval *v;
	struct run *r;
	void *map;
	int fd, fd2;

	NEED_CTL(fd, r);
	UNIQUE_NAME(name, "err");
	ASSERT_EQ(0, ctl(r, false, "create %s 0:1", name));
	ASSERT_EQ(0, r->status) TH_LOG("%s", r->err);

	ASSERT_EQ(0, ctl(r, false, "create %s", name));
	FAILS_WITH(r, "File exists (destroy it first");

	/* a grow that fails after one that worked says the first stays */
	ASSERT_EQ(0, ctl(r, false, "grow %s 0:1 0:100000", name));
	FAILS_WITH(r, "the 1 grow before it stays");

	/* destroy of a mapped region */
	OPEN_DEV(fd2);
	ASSERT_EQ(0, hp_attach(fd2, name, NULL));
	map = map_region(fd2, PG, 0);
	ASSERT_NE(MAP_FAILED, map);
	ASSERT_EQ(0, ctl(r, false, "destroy %s", name));
	FAILS_WITH(r, "still mapped");
	munmap(map, PG);
	close(fd2);

	ASSERT_EQ(0, ctl(r, false, "destroy %s", name));
	EXPECT_EQ(0, r->status) TH_LOG("%s", r->err);
	ASSERT_EQ(0, ctl(r, false, "destroy %s", name));
	FAILS_WITH(r, "No such file");
	ASSERT_EQ(0, ctl(r, false, "segs %s", name));
	EXPECT_EQ(1, r->status);
	EXPECT_NE(NULL, strstr(r->err, "hpmemctl regions")) TH_LOG("%s", r->err);

	/* a create whose grow fails leaves no region */
	ASSERT_EQ(0, ctl(r, false, "create %s 0:100000", name));
	FAILS_WITH(r, "hpmemctl resize");
	ASSERT_EQ(0, ctl(r, false, "regions --json"));
	PARSE(v, r->out);
	EXPECT_EQ(NULL, find_region(v, name));
	jfree(v);

	/* usage errors: exit 2, one line, nothing done */
	static const char *const usage[] = {
		"bogus", "", "info extra", "resize", "resize 0 -1", "nodes --watch=x",
		"nodes --count 0", "create", "create bad-spec 0:x", "create bad-spec 1",
		"grow", "grow only-name", "segs", "destroy", "destroy --uid x y",
		"--device",
	};
	for (size_t i = 0; i < sizeof(usage) / sizeof(usage[0]); i++) {
		ASSERT_EQ(0, ctl(r, false, "%s", usage[i]));
		EXPECT_EQ(2, r->status) TH_LOG("'%s'", usage[i]);
		if (*usage[i])	/* no command at all prints the full usage */
			EXPECT_EQ(1, r->err_lines) TH_LOG("'%s': %s", usage[i], r->err);
	}
	ASSERT_EQ(0, ctl(r, false, "regions --json"));
	PARSE(v, r->out);
	EXPECT_EQ(NULL, find_region(v, "bad-spec"));
	jfree(v);
	free(r);
	close(fd);
}

/* io_uring fixed buffers: a FOLL_LONGTERM pin without a device. */
static int pin_io_uring(void *addr, size_t len, int fds[2])
{
	struct io_uring_params p = { 0 };
	struct iovec iov = { .iov_base = addr, .iov_len = len };
	int ring = syscall(__NR_io_uring_setup, 4, &p);

	if (ring < 0)
		return -errno;
	if (syscall(__NR_io_uring_register, ring, IORING_REGISTER_BUFFERS, &iov, 1)) {
		int err = -errno;

		close(ring);
		return err;
	}
	fds[0] = ring;
	fds[1] = -1;
	return 0;
}

/*
 * A VFIO type1 mapping for the first device bound to vfio-pci (the edu
 * device in the rig's iommu configuration): 6.1's io_uring refuses
 * file-backed memory other than shmem and hugetlbfs.
 */
static int pin_vfio(void *addr, size_t len, int fds[2])
{
	struct vfio_iommu_type1_dma_map map = {
		.argsz = sizeof(map),
		.flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
		.vaddr = (uintptr_t)addr, .iova = 1ULL << 32, .size = len,
	};
	char link[512], path[600];
	struct dirent *d;
	int cont, group, err;
	DIR *dir = opendir("/sys/bus/pci/drivers/vfio-pci");
	ssize_t n = -1;

	while (dir && (d = readdir(dir))) {
		if (!strchr(d->d_name, ':'))
			continue;
		snprintf(path, sizeof(path), "/sys/bus/pci/drivers/vfio-pci/%s/iommu_group",
			 d->d_name);
		n = readlink(path, link, sizeof(link) - 1);
		if (n > 0)
			break;
	}
	if (dir)
		closedir(dir);
	if (n <= 0)
		return -ENODEV;
	link[n] = '\0';
	snprintf(path, sizeof(path), "/dev/vfio/%s", strrchr(link, '/') + 1);
	cont = open("/dev/vfio/vfio", O_RDWR | O_CLOEXEC);
	if (cont < 0)
		return -errno;
	group = open(path, O_RDWR | O_CLOEXEC);
	if (group < 0 || ioctl(group, VFIO_GROUP_SET_CONTAINER, &cont) ||
	    ioctl(cont, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU) ||
	    ioctl(cont, VFIO_IOMMU_MAP_DMA, &map)) {
		err = -errno;
		if (group >= 0)
			close(group);
		close(cont);
		return err;
	}
	fds[0] = group;
	fds[1] = cont;
	return 0;
}

/*
 * A page with a DMA pin shows as DMA-mapped, and stops when the pin goes.
 */
TEST(dma_pinned)
{
	char name[HPMEM_NAME_MAX];
	int fd, rc_uring, rc_vfio, pin[2] = { -1, -1 };
	struct jval *v, *e;
	struct run *r;
	void *map;

	NEED_CTL(fd, r);
	if (!has_feature(fd, HPMEM_FEAT_LIST_DMA_PINNED))
		SKIP(goto out, "module does not report dma_pinned");
	ASSERT_EQ(0, hp_create(fd, UNIQUE_NAME(name, "dma"), HPMEM_REGION_PINNABLE));
	ASSERT_EQ(0, hp_grow(fd, 0, 1, NULL));
	map = map_region(fd, PG, 0);
	ASSERT_NE(MAP_FAILED, map);
	rc_uring = pin_io_uring(map, PG, pin);
	rc_vfio = rc_uring ? pin_vfio(map, PG, pin) : 0;
	if (rc_uring && rc_vfio)
		SKIP(goto out_unmap, "no way to pin: io_uring %s, VFIO %s",
		     strerror(-rc_uring), strerror(-rc_vfio));
	TH_LOG("pinned with %s", rc_uring ? "VFIO" : "io_uring");
	ASSERT_EQ(0, ctl(r, false, "regions --json"));
	ASSERT_EQ(0, r->status) TH_LOG("%s", r->err);
	PARSE(v, r->out);
	e = find_region(v, name);
	ASSERT_NE(NULL, e);
	EXPECT_EQ(1, ju(e, "dma_pinned"));
	EXPECT_TRUE(jget(e, "dma")->b);
	EXPECT_EQ(1, ju(e, "users"));
	EXPECT_EQ(1, ju(e, "maps"));
	jfree(v);
	ASSERT_EQ(0, ctl(r, false, "regions"));
	EXPECT_NE(NULL, strstr(r->out, "yes(1)")) TH_LOG("%s", r->out);

	/* unpins (an io_uring ring goes away asynchronously) */
	close(pin[0]);
	if (pin[1] >= 0)
		close(pin[1]);
	for (int i = 0; i < 50; i++) {
		ASSERT_EQ(0, ctl(r, false, "regions --json"));
		PARSE(v, r->out);
		e = find_region(v, name);
		ASSERT_NE(NULL, e);
		if (!jget(e, "dma")->b) {
			jfree(v);
			break;
		}
		jfree(v);
		usleep(100000);
	}
	ASSERT_EQ(0, ctl(r, false, "regions"));
	EXPECT_EQ(NULL, strstr(r->out, "yes(1)")) TH_LOG("unpinned, still: %s", r->out);
out_unmap:
	munmap(map, PG);
out:
	free(r);
	close(fd);
}

/* Without the module, the one thing to do: load it. Reloads it after. */
TEST(module_not_loaded)
{
	struct run *r;
	int fd, rc;

	NEED_CTL(fd, r);
	close(fd);
	if (!getenv("HPMEM_KO"))
		SKIP(goto out, "HPMEM_KO unset: cannot load the module again");
	rc = hp_rmmod();
	if (hp_rmmod_refused(rc))
		SKIP(goto out, "module in use (regions left by other tests)");
	ASSERT_EQ(0, rc) TH_LOG("rmmod: %s", strerror(-rc));
	ASSERT_EQ(0, ctl(r, false, "info"));
	rc = hp_insmod(NULL);
	ASSERT_EQ(0, rc) TH_LOG("insmod: %s", strerror(-rc));
	EXPECT_EQ(1, r->status);
	EXPECT_STREQ("hpmemctl: module not loaded: modprobe hpmem\n", r->err);
out:
	free(r);
}

TEST_HARNESS_MAIN
