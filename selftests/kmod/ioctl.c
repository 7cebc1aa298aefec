// SPDX-License-Identifier: MIT
/* Argument validation of every hpmem ioctl, against the UAPI DOC errno
 * table: sizes, flags, reserved fields, bad pointers, unknown commands. */
#include <pthread.h>
#include <stddef.h>
#include "hpmem_test.h"

/* PREP_SPARSE: a sparse region (HPMEM_FEAT_SPARSE) with its one page */
enum prep { PREP_NONE, PREP_REGION, PREP_OTHER_REGION, PREP_SPARSE };

struct cmd_desc {
	const char *name;
	unsigned long cmd;
	uint32_t size;
	uint32_t min_size;	/* the first version's struct */
	enum prep prep;		/* what must exist before the call */
	int reserved_off;	/* offset of an input __reserved, or -1 */
};

#define END(s, f) (offsetof(struct s, f) + sizeof(((struct s *)0)->f))
#define DESC(n, c, s, p, r) { n, c, sizeof(struct s), sizeof(struct s), p, r }
/* A struct that grew: @f is the last field of its first version. */
#define DESC_GREW(n, c, s, f, p, r) { n, c, sizeof(struct s), END(s, f), p, r }
static const struct cmd_desc cmds[] = {
	DESC_GREW("info", HPMEM_IOC_INFO, hpmem_info, dma_model, PREP_NONE, -1),
	DESC_GREW("node_info", HPMEM_IOC_NODE_INFO, hpmem_node_info,
		  mapped_pages, PREP_NONE,
		  offsetof(struct hpmem_node_info, __reserved)),
	DESC("pool_resize", HPMEM_IOC_POOL_RESIZE, hpmem_pool_resize,
	     PREP_NONE, offsetof(struct hpmem_pool_resize, __reserved)),
	DESC_GREW("create", HPMEM_IOC_REGION_CREATE, hpmem_region_create,
		  name, PREP_NONE, -1),
	DESC_GREW("attach", HPMEM_IOC_REGION_ATTACH, hpmem_region_attach,
		  nr_pages, PREP_OTHER_REGION,
		  offsetof(struct hpmem_region_attach, __reserved2)),
	DESC("grow", HPMEM_IOC_REGION_GROW, hpmem_region_grow, PREP_REGION,
	     offsetof(struct hpmem_region_grow, __reserved)),
	DESC("segs", HPMEM_IOC_REGION_SEGS, hpmem_region_segs, PREP_REGION,
	     offsetof(struct hpmem_region_segs, __reserved)),
	DESC_GREW("destroy", HPMEM_IOC_REGION_DESTROY, hpmem_region_destroy,
		  name, PREP_OTHER_REGION,
		  offsetof(struct hpmem_region_destroy, __reserved)),
	DESC("list", HPMEM_IOC_REGION_LIST, hpmem_region_list, PREP_NONE, -1),
	DESC("release", HPMEM_IOC_REGION_RELEASE, hpmem_region_release,
	     PREP_SPARSE, -1),
};
#define NR_CMDS (sizeof(cmds) / sizeof(cmds[0]))

/* Write a valid argument for @d into @buf (zeroed, large enough). */
static void fill(const struct cmd_desc *d, void *buf, int fd, const char *name)
{
	struct hpmem_node_info ni;

	switch (d->cmd) {
	case HPMEM_IOC_NODE_INFO:
		((struct hpmem_node_info *)buf)->node = 0;
		break;
	case HPMEM_IOC_POOL_RESIZE:
		/* Resizing to the current size: valid and changes nothing. */
		hp_node_info(fd, 0, &ni);
		((struct hpmem_pool_resize *)buf)->nr_pages = ni.total_pages;
		break;
	case HPMEM_IOC_REGION_CREATE:
		strcpy(((struct hpmem_region_create *)buf)->name, name);
		break;
	case HPMEM_IOC_REGION_ATTACH:
		strcpy(((struct hpmem_region_attach *)buf)->name, name);
		break;
	case HPMEM_IOC_REGION_GROW:
		((struct hpmem_region_grow *)buf)->nr_pages = 1;
		break;
	case HPMEM_IOC_REGION_SEGS:
		break;
	case HPMEM_IOC_REGION_DESTROY:
		strcpy(((struct hpmem_region_destroy *)buf)->name, name);
		break;
	case HPMEM_IOC_REGION_LIST:
		((struct hpmem_region_list *)buf)->entry_size =
			sizeof(struct hpmem_region_entry);
		break;
	case HPMEM_IOC_REGION_RELEASE:
		((struct hpmem_region_release *)buf)->nr_pages = 1;
		break;
	}
}

typedef void (*mutate_fn)(const struct cmd_desc *d, void *buf);

/*
 * Run @d once on fresh files with a valid argument in a buffer of @bufsz
 * bytes, @argsz claimed, after @mut; returns 0 or -errno.
 */
static int run_cmd(const struct cmd_desc *d, uint32_t bufsz, uint32_t argsz,
		   mutate_fn mut)
{
	char name[HPMEM_NAME_MAX];
	int fd, aux, rc;
	void *buf;

	fd = open(HPMEM_DEVICE_PATH, O_RDWR | O_CLOEXEC);
	aux = open(HPMEM_DEVICE_PATH, O_RDWR | O_CLOEXEC);
	if (fd < 0 || aux < 0)
		return -1000;
	UNIQUE_NAME(name, d->name);
	if (d->prep == PREP_REGION && hp_create(fd, name, 0))
		return -1001;
	if (d->prep == PREP_OTHER_REGION && hp_create(aux, name, 0))
		return -1002;
	if (d->prep == PREP_SPARSE) {
		struct hpmem_region_create c = { .argsz = sizeof(c),
						 .max_pages = 1 };

		snprintf(c.name, sizeof(c.name), "%s", name);
		if (xioctl(fd, HPMEM_IOC_REGION_CREATE, &c) ||
		    hp_grow(fd, 0, 1, NULL))
			return -1004;
	}
	buf = calloc(1, bufsz + 64);
	if (!buf)
		return -1003;
	fill(d, buf, fd, name);
	((uint32_t *)buf)[0] = argsz;
	if (mut)
		mut(d, buf);
	rc = xioctl(fd, d->cmd, buf);
	free(buf);
	close(aux);
	close(fd);
	return rc;
}

static int have_dev(void)
{
	return access(HPMEM_DEVICE_PATH, F_OK) == 0;
}
#define NEED_DEV() do {							\
	if (!have_dev())						\
		SKIP(return, "%s absent", HPMEM_DEVICE_PATH);		\
} while (0)

TEST(exact_size_ok)
{
	NEED_DEV();
	for (unsigned int i = 0; i < NR_CMDS; i++) {
		EXPECT_EQ(0, run_cmd(&cmds[i], cmds[i].size, cmds[i].size, NULL))
			TH_LOG("%s", cmds[i].name);
	}
}

TEST(too_short_einval)
{
	NEED_DEV();
	for (unsigned int i = 0; i < NR_CMDS; i++) {
		const struct cmd_desc *d = &cmds[i];
		uint32_t sizes[] = { 0, 4, 8, d->min_size - 4, d->min_size - 1 };

		for (unsigned int j = 0; j < 5; j++) {
			EXPECT_EQ(-EINVAL, run_cmd(d, d->size, sizes[j], NULL))
				TH_LOG("%s argsz %u", d->name, sizes[j]);
		}
	}
}

/*
 * Userspace built against the first version of a struct that grew: its
 * argsz is accepted and the kernel writes nothing past it.
 */
TEST(first_version_size_ok)
{
	NEED_DEV();
	for (unsigned int i = 0; i < NR_CMDS; i++) {
		const struct cmd_desc *d = &cmds[i];
		char name[HPMEM_NAME_MAX];
		unsigned char buf[4096];
		int fd;

		if (d->min_size == d->size)
			continue;
		EXPECT_EQ(0, run_cmd(d, d->min_size, d->min_size, NULL))
			TH_LOG("%s", d->name);
		if (d->prep != PREP_NONE)
			continue;
		fd = open(HPMEM_DEVICE_PATH, O_RDWR | O_CLOEXEC);
		ASSERT_LE(0, fd);
		memset(buf, 0xa5, sizeof(buf));
		memset(buf, 0, d->min_size);
		/* create needs a name, which its first version had */
		fill(d, buf, fd, UNIQUE_NAME(name, d->name));
		*(uint32_t *)buf = d->min_size;
		EXPECT_EQ(0, xioctl(fd, d->cmd, buf)) TH_LOG("%s", d->name);
		for (uint32_t b = d->min_size; b < d->size; b++) {
			EXPECT_EQ(0xa5, buf[b]) TH_LOG("%s byte %u", d->name, b);
		}
		close(fd);
	}
}

static void dirty_tail(const struct cmd_desc *d, void *buf)
{
	((char *)buf)[d->size + 5] = 0x5a;
}

TEST(too_long_dirty_e2big)
{
	NEED_DEV();
	for (unsigned int i = 0; i < NR_CMDS; i++) {
		EXPECT_EQ(-E2BIG, run_cmd(&cmds[i], cmds[i].size + 16,
					  cmds[i].size + 16, dirty_tail))
			TH_LOG("%s", cmds[i].name);
	}
}

TEST(too_long_clean_ok)
{
	NEED_DEV();
	for (unsigned int i = 0; i < NR_CMDS; i++) {
		EXPECT_EQ(0, run_cmd(&cmds[i], cmds[i].size + 16,
				     cmds[i].size + 16, NULL))
			TH_LOG("%s", cmds[i].name);
		/* Much larger than any future struct, still all zero. */
		EXPECT_EQ(0, run_cmd(&cmds[i], 4096, 4096, NULL))
			TH_LOG("%s 4096", cmds[i].name);
	}
}

static void high_flag(const struct cmd_desc *d, void *buf)
{
	((uint32_t *)buf)[1] |= 1U << 31;
}

static void next_flag(const struct cmd_desc *d, void *buf)
{
	/* The lowest bit no command defines (create knows bits 0 and 1). */
	((uint32_t *)buf)[1] |= 1U << 2;
}

TEST(unknown_flags_einval)
{
	NEED_DEV();
	for (unsigned int i = 0; i < NR_CMDS; i++) {
		EXPECT_EQ(-EINVAL, run_cmd(&cmds[i], cmds[i].size,
					   cmds[i].size, high_flag))
			TH_LOG("%s", cmds[i].name);
		EXPECT_EQ(-EINVAL, run_cmd(&cmds[i], cmds[i].size,
					   cmds[i].size, next_flag))
			TH_LOG("%s", cmds[i].name);
	}
}

static void set_reserved(const struct cmd_desc *d, void *buf)
{
	*(uint32_t *)((char *)buf + d->reserved_off) = 1;
}

TEST(reserved_einval)
{
	NEED_DEV();
	for (unsigned int i = 0; i < NR_CMDS; i++) {
		if (cmds[i].reserved_off < 0)
			continue;
		EXPECT_EQ(-EINVAL, run_cmd(&cmds[i], cmds[i].size,
					   cmds[i].size, set_reserved))
			TH_LOG("%s", cmds[i].name);
	}
}

TEST(bad_pointer_efault)
{
	long pgsz = sysconf(_SC_PAGESIZE);
	char name[HPMEM_NAME_MAX];
	char *area;
	int fd;

	OPEN_DEV(fd);
	ASSERT_EQ(0, hp_create(fd, UNIQUE_NAME(name, "efault"), 0));
	area = mmap(NULL, 2 * pgsz, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, area);
	ASSERT_EQ(0, munmap(area + pgsz, pgsz));

	for (unsigned int i = 0; i < NR_CMDS; i++) {
		const struct cmd_desc *d = &cmds[i];
		char *arg;

		EXPECT_EQ(-EFAULT, xioctl(fd, d->cmd, NULL)) TH_LOG("%s", d->name);
		EXPECT_EQ(-EFAULT, xioctl(fd, d->cmd, area + pgsz))
			TH_LOG("%s", d->name);
		/* argsz readable, the rest of the struct is not */
		arg = area + pgsz - 4;
		*(uint32_t *)arg = d->size;
		EXPECT_EQ(-EFAULT, xioctl(fd, d->cmd, arg)) TH_LOG("%s", d->name);
		/* a clean-looking long struct running into the hole */
		arg = area + pgsz - d->size;
		memset(arg, 0, d->size);
		*(uint32_t *)arg = d->size + 64;
		EXPECT_EQ(-EFAULT, xioctl(fd, d->cmd, arg)) TH_LOG("%s", d->name);
	}
	munmap(area, pgsz);
	close(fd);
}

TEST(segs_bad_array_efault)
{
	struct hpmem_region_segs s = { .argsz = sizeof(s), .nr_segs = 4 };
	char name[HPMEM_NAME_MAX];
	int fd;

	OPEN_DEV(fd);
	ASSERT_EQ(0, hp_create(fd, UNIQUE_NAME(name, "segf"), 0));
	ASSERT_EQ(0, hp_grow(fd, 0, 1, NULL));
	s.segs = 8;
	EXPECT_EQ(-EFAULT, xioctl(fd, HPMEM_IOC_REGION_SEGS, &s));
	s.segs = (uint64_t)-4096;
	s.nr_segs = 4;
	EXPECT_EQ(-EFAULT, xioctl(fd, HPMEM_IOC_REGION_SEGS, &s));
	/* room for zero entries: the pointer is never touched */
	s.nr_segs = 0;
	EXPECT_EQ(0, xioctl(fd, HPMEM_IOC_REGION_SEGS, &s));
	EXPECT_EQ(1, s.nr_segs);
	close(fd);
}

TEST(unknown_cmd_enotty)
{
	struct hpmem_info i = { .argsz = sizeof(i) };
	unsigned long bad[] = {
		_IO(HPMEM_TYPE, HPMEM_CMD_BASE - 1),
		_IO(HPMEM_TYPE, HPMEM_CMD_REGION_EXPORT + 1),
		_IO(HPMEM_TYPE, 0xff),
		_IO('x', HPMEM_CMD_INFO),
		/* same number, but a size/direction the ABI does not use */
		_IOWR(HPMEM_TYPE, HPMEM_CMD_INFO, struct hpmem_info),
		0,
	};
	int fd;

	OPEN_DEV(fd);
	for (unsigned int j = 0; j < sizeof(bad) / sizeof(bad[0]); j++) {
		EXPECT_EQ(-ENOTTY, xioctl(fd, bad[j], &i))
			TH_LOG("cmd %#lx", bad[j]);
	}
	close(fd);
}

TEST(info_contents)
{
	struct hpmem_info i;
	int fd;

	OPEN_DEV(fd);
	ASSERT_EQ(0, hp_info(fd, &i));
	EXPECT_EQ(HPMEM_API_VERSION, i.api_version);
	EXPECT_EQ(HPMEM_PAGE_SHIFT, i.page_shift);
	EXPECT_EQ(HPMEM_NAME_MAX, i.name_max);
	EXPECT_LE(2, i.nr_node_ids);
	/* the guest has two nodes with memory */
	EXPECT_EQ(3, i.node_mask & 3);
	EXPECT_NE(0, i.features & HPMEM_FEAT_PERSISTENT);
	EXPECT_NE(0, i.features & HPMEM_FEAT_PINNABLE);
	EXPECT_NE(0, i.features & HPMEM_FEAT_PMD_MAP);
	EXPECT_NE(0, i.features & HPMEM_FEAT_DMA_MODEL);
	EXPECT_NE(0, i.features & HPMEM_FEAT_BUSY_PAGES);
	EXPECT_LT(0, i.max_pages);
	/* root sees addresses */
	EXPECT_NE(0, i.caller & HPMEM_CALLER_ADDRS);
	/* the model's details are tested in dma.c */
	EXPECT_GE(HPMEM_DMA_TRANSLATED, i.dma_model);
	close(fd);
}

TEST(bad_node_enodev)
{
	struct hpmem_node_info ni;
	char name[HPMEM_NAME_MAX];
	struct hpmem_info i;
	int fd;

	OPEN_DEV(fd);
	ASSERT_EQ(0, hp_info(fd, &i));
	EXPECT_EQ(-ENODEV, hp_node_info(fd, i.nr_node_ids, &ni));
	EXPECT_EQ(-ENODEV, hp_node_info(fd, 64, &ni));
	EXPECT_EQ(-ENODEV, hp_node_info(fd, UINT32_MAX, &ni));
	EXPECT_EQ(-ENODEV, hp_resize(fd, i.nr_node_ids, 1));
	EXPECT_EQ(-ENODEV, hp_resize(fd, UINT32_MAX, 1));
	ASSERT_EQ(0, hp_create(fd, UNIQUE_NAME(name, "enodev"), 0));
	EXPECT_EQ(-ENODEV, hp_grow(fd, i.nr_node_ids, 1, NULL));
	EXPECT_EQ(-ENODEV, hp_grow(fd, UINT32_MAX, 1, NULL));
	close(fd);
}

TEST(grow_zero_einval)
{
	char name[HPMEM_NAME_MAX];
	int fd;

	OPEN_DEV(fd);
	ASSERT_EQ(0, hp_create(fd, UNIQUE_NAME(name, "zero"), 0));
	EXPECT_EQ(-EINVAL, hp_grow(fd, 0, 0, NULL));
	close(fd);
}

/* Raw name buffers: names are not necessarily C strings here. */
static int name_cmd(unsigned long cmd, const char raw[HPMEM_NAME_MAX])
{
	union {
		struct hpmem_region_create c;
		struct hpmem_region_attach a;
		struct hpmem_region_destroy d;
	} u;
	int fd, rc;

	memset(&u, 0, sizeof(u));
	if (cmd == HPMEM_IOC_REGION_CREATE) {
		u.c.argsz = sizeof(u.c);
		memcpy(u.c.name, raw, HPMEM_NAME_MAX);
	} else if (cmd == HPMEM_IOC_REGION_ATTACH) {
		u.a.argsz = sizeof(u.a);
		memcpy(u.a.name, raw, HPMEM_NAME_MAX);
	} else {
		u.d.argsz = sizeof(u.d);
		memcpy(u.d.name, raw, HPMEM_NAME_MAX);
	}
	fd = open(HPMEM_DEVICE_PATH, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -1000;
	rc = xioctl(fd, cmd, &u);
	close(fd);
	return rc;
}

TEST(names)
{
	unsigned long c[] = { HPMEM_IOC_REGION_CREATE, HPMEM_IOC_REGION_ATTACH,
			      HPMEM_IOC_REGION_DESTROY };
	char raw[HPMEM_NAME_MAX];
	int fd;

	OPEN_DEV(fd);
	for (unsigned int j = 0; j < 3; j++) {
		memset(raw, 0, sizeof(raw));
		EXPECT_EQ(-EINVAL, name_cmd(c[j], raw)) TH_LOG("empty, cmd %u", j);
		memset(raw, 'x', sizeof(raw));
		EXPECT_EQ(-ENAMETOOLONG, name_cmd(c[j], raw)) TH_LOG("no NUL, cmd %u", j);
	}
	/* the longest legal name: 31 bytes and the NUL */
	memset(raw, 'n', sizeof(raw));
	snprintf(raw, 12, "%011d", getpid());
	raw[11] = 'n';
	raw[HPMEM_NAME_MAX - 1] = 0;
	EXPECT_EQ(0, hp_create(fd, raw, 0));
	close(fd);
}

TEST(failed_create_changes_nothing)
{
	struct hpmem_region_create c = { .argsz = sizeof(c), .flags = 1U << 30 };
	char name[HPMEM_NAME_MAX];
	int fd, fd2;

	OPEN_DEV(fd);
	fd2 = open(HPMEM_DEVICE_PATH, O_RDWR);
	ASSERT_LE(0, fd2);
	UNIQUE_NAME(name, "nofx");
	strcpy(c.name, name);
	EXPECT_EQ(-EINVAL, xioctl(fd, HPMEM_IOC_REGION_CREATE, &c));
	EXPECT_EQ(-ENOENT, hp_attach(fd2, name, NULL));
	/* the file did not get a region either */
	EXPECT_EQ(-EBADFD, hp_grow(fd, 0, 1, NULL));
	EXPECT_EQ(0, hp_create(fd, name, 0));
	close(fd2);
	close(fd);
}

/* Rejected commands take nothing: pools and regions are as they were. */
TEST(rejected_grow_takes_nothing)
{
	struct hpmem_region_grow g;
	char name[HPMEM_NAME_MAX];
	char big[sizeof(g) + 16];
	uint64_t before;
	int fd;

	OPEN_DEV(fd);
	ASSERT_EQ(0, hp_create(fd, UNIQUE_NAME(name, "nogrow"), 0));
	before = node_free(fd, 0);

	memset(&g, 0, sizeof(g));
	g.argsz = sizeof(g);
	g.nr_pages = 1;
	g.flags = 1;
	EXPECT_EQ(-EINVAL, xioctl(fd, HPMEM_IOC_REGION_GROW, &g));
	g.flags = 0;
	g.__reserved = 1;
	EXPECT_EQ(-EINVAL, xioctl(fd, HPMEM_IOC_REGION_GROW, &g));
	g.__reserved = 0;
	memset(big, 0, sizeof(big));
	memcpy(big, &g, sizeof(g));
	((struct hpmem_region_grow *)big)->argsz = sizeof(big);
	big[sizeof(big) - 1] = 1;
	EXPECT_EQ(-E2BIG, xioctl(fd, HPMEM_IOC_REGION_GROW, big));

	EXPECT_EQ(before, node_free(fd, 0));
	EXPECT_EQ(0, hp_segs(fd, NULL, 0));
	close(fd);
}

TEST(segs_writes_only_what_exists)
{
	struct hpmem_seg segs[8];
	char name[HPMEM_NAME_MAX];
	unsigned char *b;
	int fd;

	OPEN_DEV(fd);
	ASSERT_EQ(0, hp_create(fd, UNIQUE_NAME(name, "segw"), 0));
	ASSERT_EQ(0, hp_grow(fd, 0, 3, NULL));
	memset(segs, 0xa5, sizeof(segs));
	ASSERT_EQ(3, hp_segs(fd, segs, 8));
	b = (unsigned char *)&segs[3];
	for (size_t i = 0; i < 5 * sizeof(segs[0]); i++) {
		if (b[i] != 0xa5) {
			ASSERT_EQ(0xa5, b[i]) TH_LOG("entry %zu written", 3 + i / sizeof(segs[0]));
		}
	}
	close(fd);
}

/*
 * A second thread flips the argument's page between read-only and
 * writable while GROW and POOL_RESIZE run: each call either fails with
 * EFAULT having changed nothing, or succeeds and reports. The argument is
 * read and written through a second, always writable view of the page.
 */
struct flipper {
	char *page;
	volatile int stop;
	long flips;
};

static void *flip(void *arg)
{
	struct flipper *f = arg;

	while (!f->stop) {
		mprotect(f->page, 4096, PROT_READ);
		mprotect(f->page, 4096, PROT_READ | PROT_WRITE);
		f->flips++;
	}
	return NULL;
}

#define RACE_ROUNDS 400

static int race_setup(struct flipper *f, char **rw, pthread_t *th)
{
	int mfd = memfd_create("hpmem-arg", MFD_CLOEXEC);

	if (mfd < 0 || ftruncate(mfd, 4096))
		return -1;
	f->page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	*rw = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	close(mfd);
	if (f->page == MAP_FAILED || *rw == MAP_FAILED)
		return -1;
	f->stop = 0;
	return pthread_create(th, NULL, flip, f);
}

TEST(grow_result_copy_changes_nothing_on_efault)
{
	struct hpmem_region_grow *g, *arg;
	int fd, rfd, rc, ok = 0, fault = 0;
	char name[HPMEM_NAME_MAX], *rw;
	struct flipper f;
	uint64_t before;
	pthread_t th;

	OPEN_DEV(fd);
	before = node_free(fd, 0);
	ASSERT_EQ(0, race_setup(&f, &rw, &th));
	/* straddling the page end would pin two pages: one is the case here */
	g = (void *)(rw + 64);
	arg = (void *)(f.page + 64);
	for (int i = 0; i < RACE_ROUNDS; i++) {
		rfd = open(HPMEM_DEVICE_PATH, O_RDWR | O_CLOEXEC);
		ASSERT_LE(0, rfd);
		ASSERT_EQ(0, hp_create(rfd, UNIQUE_NAME(name, "rgrow"), 0));
		memset(g, 0, sizeof(*g));
		g->argsz = sizeof(*g);
		g->nr_pages = 1;
		g->offset = 12345;
		rc = xioctl(rfd, HPMEM_IOC_REGION_GROW, arg);
		if (rc == 0) {
			ok++;
			EXPECT_EQ(0, g->offset);
			EXPECT_EQ(1, hp_segs(rfd, NULL, 0));
		} else {
			fault++;
			ASSERT_EQ(-EFAULT, rc);
			/* the grow did not happen */
			ASSERT_EQ(0, hp_segs(rfd, NULL, 0)) TH_LOG("round %d", i);
		}
		close(rfd);
	}
	f.stop = 1;
	pthread_join(th, NULL);
	TH_LOG("%d grown, %d EFAULT, %ld flips", ok, fault, f.flips);
	EXPECT_LT(0, ok);
	EXPECT_EQ(before, node_free(fd, 0));
	close(fd);
}

TEST(resize_result_copy_changes_nothing_on_efault)
{
	struct hpmem_pool_resize *r, *arg;
	int fd, rc, ok = 0, fault = 0;
	struct hpmem_node_info ni;
	uint64_t total, want;
	struct flipper f;
	pthread_t th;
	char *rw;

	OPEN_DEV(fd);
	ASSERT_EQ(0, hp_node_info(fd, 1, &ni));
	total = ni.total_pages;
	ASSERT_LT(0, ni.free_pages);
	ASSERT_EQ(0, race_setup(&f, &rw, &th));
	r = (void *)(rw + 4096 - sizeof(*r));
	arg = (void *)(f.page + 4096 - sizeof(*r));
	for (int i = 0; i < RACE_ROUNDS; i++) {
		/* shrink by one, grow back: no allocation that could fail */
		want = i & 1 ? total : total - 1;
		ASSERT_EQ(0, hp_node_info(fd, 1, &ni));
		memset(r, 0, sizeof(*r));
		r->argsz = sizeof(*r);
		r->node = 1;
		r->nr_pages = want;
		rc = xioctl(fd, HPMEM_IOC_POOL_RESIZE, arg);
		if (rc == 0) {
			ok++;
			EXPECT_EQ(want, r->nr_pages);
			ASSERT_EQ(0, hp_node_info(fd, 1, &ni));
			EXPECT_EQ(want, ni.total_pages);
		} else {
			uint64_t was = ni.total_pages;

			fault++;
			ASSERT_EQ(-EFAULT, rc);
			ASSERT_EQ(0, hp_node_info(fd, 1, &ni));
			ASSERT_EQ(was, ni.total_pages) TH_LOG("round %d", i);
			i--;	/* same target again */
			if (fault > 10 * RACE_ROUNDS)
				break;
		}
	}
	f.stop = 1;
	pthread_join(th, NULL);
	TH_LOG("%d resized, %d EFAULT, %ld flips", ok, fault, f.flips);
	EXPECT_EQ(0, hp_resize(fd, 1, total));
	close(fd);
}

TEST_HARNESS_MAIN
