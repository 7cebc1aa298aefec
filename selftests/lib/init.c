// SPDX-License-Identifier: MIT
/*
 * Option parsing, hpm_init()/hpm_cleanup() and their errors. The backend
 * comes from HPMEM_OPTS (e.g. "--backend anon"), so one binary tests all.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <hpmem/hpmem.h>

#include "config.h"
#include "kselftest_harness.h"

#define HPM_ALIGN_UP_(x, a)	(((x) + (a) - 1) / (a) * (a))

static void opts_for(struct hpm_init_opts *o, char *name, const char *tag)
{
	hpm_init_opts_default(o);
	snprintf(name, HPM_NAME_SIZE, "t-%s-%d", tag, (int)getpid());
	o->region = name;
	o->socket_mem[0] = 16;
}

/* ---- options ---- */

TEST(parse_every_option)
{
	char *argv[] = {
		"prog", "--region", "abc", "--socket-mem", "64,32,0,8",
		"--proc-type", "secondary", "--backend=hugetlbfs", "--iova-mode", "va",
		"--huge-dir", "/mnt/huge", "--base-virtaddr", "0x300000000000",
		"--max-memzones", "4096", "--log-level", "debug", "rest", NULL,
	};
	struct hpm_init_opts o;

	hpm_init_opts_default(&o);
	ASSERT_EQ(17, hpm_parse_args(&o, 18, argv));
	EXPECT_STREQ("abc", o.region);
	EXPECT_EQ(64, o.socket_mem[0]);
	EXPECT_EQ(32, o.socket_mem[1]);
	EXPECT_EQ(0, o.socket_mem[2]);
	EXPECT_EQ(8, o.socket_mem[3]);
	EXPECT_EQ(0, o.socket_mem[4]);
	EXPECT_EQ(HPM_PROC_SECONDARY, o.proc_type);
	EXPECT_EQ(HPM_BACKEND_HUGETLBFS, o.backend);
	EXPECT_EQ(HPM_IOVA_VA, o.iova_mode);
	EXPECT_STREQ("/mnt/huge", o.huge_dir);
	EXPECT_EQ(0x300000000000ULL, o.base_addr);
	EXPECT_EQ(4096, o.max_memzones);
	EXPECT_EQ(4, o.log_level);
}

TEST(parse_enum_values)
{
	static const struct { const char *s; int v; } procs[] = {
		{ "auto", HPM_PROC_AUTO }, { "primary", HPM_PROC_PRIMARY },
		{ "secondary", HPM_PROC_SECONDARY },
	}, backends[] = {
		{ "auto", HPM_BACKEND_AUTO }, { "kmod", HPM_BACKEND_KMOD },
		{ "hugetlbfs", HPM_BACKEND_HUGETLBFS }, { "anon", HPM_BACKEND_ANON },
	}, iovas[] = {
		{ "auto", HPM_IOVA_AUTO }, { "pa", HPM_IOVA_PA }, { "va", HPM_IOVA_VA },
		{ "compact", HPM_IOVA_COMPACT },
	}, levels[] = {
		{ "err", 1 }, { "warn", 2 }, { "info", 3 }, { "debug", 4 },
		{ "1", 1 }, { "4", 4 },
	};
	struct hpm_init_opts o;
	char buf[64];

	for (size_t i = 0; i < 3; i++) {
		hpm_init_opts_default(&o);
		snprintf(buf, sizeof(buf), "--proc-type %s", procs[i].s);
		ASSERT_EQ(0, hpm_parse_string(&o, buf));
		EXPECT_EQ(procs[i].v, (int)o.proc_type);
	}
	for (size_t i = 0; i < 4; i++) {
		hpm_init_opts_default(&o);
		snprintf(buf, sizeof(buf), "--backend %s", backends[i].s);
		ASSERT_EQ(0, hpm_parse_string(&o, buf));
		EXPECT_EQ(backends[i].v, (int)o.backend);
		EXPECT_STREQ(backends[i].s, hpm_backend_name(o.backend));
	}
	for (size_t i = 0; i < 4; i++) {
		hpm_init_opts_default(&o);
		snprintf(buf, sizeof(buf), "--iova-mode=%s", iovas[i].s);
		ASSERT_EQ(0, hpm_parse_string(&o, buf));
		EXPECT_EQ(iovas[i].v, (int)o.iova_mode);
	}
	for (size_t i = 0; i < 6; i++) {
		hpm_init_opts_default(&o);
		snprintf(buf, sizeof(buf), "--log-level %s", levels[i].s);
		ASSERT_EQ(0, hpm_parse_string(&o, buf));
		EXPECT_EQ(levels[i].v, o.log_level);
	}
}

/* Parse with the library's (expected) complaints sent to /dev/null. */
static int quiet_parse(struct hpm_init_opts *o, const char *s)
{
	int saved = dup(STDERR_FILENO), null = open("/dev/null", O_WRONLY);
	int ret;

	fflush(stderr);
	dup2(null, STDERR_FILENO);
	ret = hpm_parse_string(o, s);
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	close(null);
	return ret;
}

TEST(parse_bad_values)
{
	static const char *const bad[] = {
		"--region", "--region ''", "--region a/b", "--region ..",
		"--region 0123456789012345678901234567890123",
		"--socket-mem", "--socket-mem x", "--socket-mem 1,,2", "--socket-mem -1",
		"--socket-mem 1,2,3,4,5,6,7,8,9", "--socket-mem 64,",
		"--socket-mem 99999999999999999999",
		"--proc-type other", "--backend dpdk", "--iova-mode pv",
		"--huge-dir relative/dir", "--base-virtaddr 0", "--base-virtaddr 0x1001",
		"--base-virtaddr zzz", "--base-virtaddr 0x800000000000",
		"--max-memzones 0", "--max-memzones -5", "--max-memzones 12ab",
		"--log-level 0", "--log-level 5", "--log-level loud",
		"--unknown 1", "stray", "--region abc stray", "-region abc",
		"--vfio=1", "--vfio=", "--iova-mode Compact", "--vfio stray",
	};
	struct hpm_init_opts o, before;

	hpm_init_opts_default(&o);
	o.socket_mem[1] = 7;
	before = o;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int ret;

		hpm_errno = 0;
		ret = quiet_parse(&o, bad[i]);
		EXPECT_EQ(-EINVAL, ret) TH_LOG("accepted '%s'", bad[i]);
		EXPECT_EQ(EINVAL, hpm_errno);
		/* A failed parse leaves the options untouched. */
		EXPECT_EQ(0, memcmp(&o, &before, sizeof(o))) TH_LOG("'%s' changed opts", bad[i]);
	}
}

TEST(parse_args_stops)
{
	char *a1[] = { "prog", "--region", "x", "--", "--backend", "anon", NULL };
	char *a2[] = { "prog", "app-arg", "--region", "x", NULL };
	char *a3[] = { "prog", "--region", NULL };
	char *a4[] = { "prog", NULL };
	struct hpm_init_opts o;

	hpm_init_opts_default(&o);
	EXPECT_EQ(3, hpm_parse_args(&o, 6, a1));
	EXPECT_STREQ("x", o.region);
	EXPECT_EQ(HPM_BACKEND_AUTO, o.backend);
	hpm_init_opts_default(&o);
	EXPECT_EQ(0, hpm_parse_args(&o, 4, a2));
	EXPECT_EQ(NULL, o.region);
	EXPECT_EQ(-EINVAL, hpm_parse_args(&o, 2, a3));
	EXPECT_EQ(0, hpm_parse_args(&o, 1, a4));
	EXPECT_EQ(0, hpm_parse_args(&o, 0, NULL));
	EXPECT_EQ(-EINVAL, hpm_parse_args(NULL, 1, a4));
}

/* --vfio is a switch: it takes no value and consumes only itself. */
TEST(parse_vfio_switch)
{
	char *argv[] = { "prog", "--vfio", "--iova-mode", "compact", "app", NULL };
	char *argv2[] = { "prog", "--region", "r", "--vfio", NULL };
	struct hpm_init_opts o;

	hpm_init_opts_default(&o);
	EXPECT_EQ(0u, o.flags);
	ASSERT_EQ(3, hpm_parse_args(&o, 5, argv));
	EXPECT_EQ(HPM_INIT_F_VFIO, o.flags);
	EXPECT_EQ(HPM_IOVA_COMPACT, o.iova_mode);
	hpm_init_opts_default(&o);
	ASSERT_EQ(3, hpm_parse_args(&o, 4, argv2));
	EXPECT_EQ(HPM_INIT_F_VFIO, o.flags);
	EXPECT_STREQ("r", o.region);
	hpm_init_opts_default(&o);
	ASSERT_EQ(0, hpm_parse_string(&o, "--vfio --vfio"));
	EXPECT_EQ(HPM_INIT_F_VFIO, o.flags);
}

TEST(parse_string_copies)
{
	struct hpm_init_opts o;
	char buf[64];

	hpm_init_opts_default(&o);
	strcpy(buf, "  --region\tcopied   --huge-dir /x  ");
	ASSERT_EQ(0, hpm_parse_string(&o, buf));
	memset(buf, 'z', sizeof(buf) - 1);
	EXPECT_STREQ("copied", o.region);
	EXPECT_STREQ("/x", o.huge_dir);
	EXPECT_EQ(0, hpm_parse_string(&o, ""));
	EXPECT_EQ(-EINVAL, hpm_parse_string(&o, NULL));
}

TEST(strerror_both_signs)
{
	EXPECT_STREQ(hpm_strerror(ENOMEM), hpm_strerror(-ENOMEM));
	EXPECT_NE(NULL, strstr(hpm_strerror(ENOENT), "No such file"));
}

/* ---- init / cleanup ---- */

/* Heaps that grow (--socket-limit, or the default behind an IOMMU). */
static bool dynamic(void)
{
	return hpm_cfg && (hpm_cfg->flags & HPM_CFG_F_DYNAMIC);
}

/* Node 0's --socket-mem as the region holds it, config pages aside. */
static uint64_t node0_reserved(void)
{
	struct hpm_mem_socket_info in;

	return hpm_mem_socket_info(0, &in) ? 0 : in.reserved;
}

TEST(not_initialised)
{
	EXPECT_EQ(-ENODEV, hpm_cleanup());
	EXPECT_EQ(ENODEV, hpm_errno);
	EXPECT_EQ(HPM_PROC_AUTO, hpm_proc_type());
	EXPECT_EQ(HPM_BACKEND_AUTO, hpm_backend());
	EXPECT_EQ(0, hpm_socket_count());
	EXPECT_EQ(HPM_BAD_IOVA, hpm_virt2iova(&errno));
	EXPECT_EQ(-ENODEV, hpm_thread_register());
}

TEST(init_cleanup_reinit)
{
	char name[HPM_NAME_SIZE];
	struct hpm_init_opts o;

	opts_for(&o, name, "init");
	for (int i = 0; i < 3; i++) {
		ASSERT_EQ(0, hpm_init(&o)) TH_LOG("%s", hpm_strerror(hpm_errno));
		EXPECT_EQ(HPM_PROC_PRIMARY, hpm_proc_type());
		EXPECT_NE(HPM_BACKEND_AUTO, hpm_backend());
		EXPECT_NE(HPM_IOVA_AUTO, hpm_iova_mode());
		/* A dynamic region can grow on every node with pages. */
		if (dynamic()) {
			EXPECT_LE(1, hpm_socket_count());
		} else {
			EXPECT_EQ(1, hpm_socket_count());
		}
		EXPECT_LE(0, hpm_socket_id());
		EXPECT_EQ(-EALREADY, hpm_init(&o));
		EXPECT_EQ(EALREADY, hpm_errno);
		ASSERT_EQ(0, hpm_cleanup());
		EXPECT_EQ(-ENODEV, hpm_cleanup());
	}
}

static int sum_len(const struct hpm_memseg *ms, void *arg)
{
	*(size_t *)arg += ms->len;
	return 0;
}

static int first_seg(const struct hpm_memseg *ms, void *arg)
{
	*(const struct hpm_memseg **)arg = ms;
	return 1;
}

TEST(init_defaults_region_name)
{
	/* NULL opts: region "hpmem", 64 MiB on node 0, plus HPMEM_OPTS. */
	const struct hpm_memseg *ms = NULL;
	size_t total = 0;
	int ret = hpm_init(NULL);

	if (ret == -EEXIST || ret == -ENOENT || ret == -EPROTO)
		SKIP(return, "region 'hpmem' is in use on this machine");
	if (ret == -ENOMEM)
		SKIP(return, "no 64 MiB free on node 0 for the default region");
	ASSERT_EQ(0, ret);
	ASSERT_EQ(0, hpm_memseg_walk(sum_len, &total));
	ASSERT_EQ(1, hpm_memseg_walk(first_seg, &ms));
	/* A --socket-limit in HPMEM_OPTS asks for no reserve at all. */
	if (!dynamic()) {
		EXPECT_LE(64u << 20, total);
	} else if (!getenv(HPM_OPTS_ENV) || !strstr(getenv(HPM_OPTS_ENV), "--socket-limit")) {
		EXPECT_EQ(HPM_ALIGN_UP_(64u << 20, ms->page_sz), node0_reserved());
	} else {
		EXPECT_EQ(0, node0_reserved());
	}
	EXPECT_EQ(0, hpm_cleanup());
}

TEST(init_bad_opts)
{
	char name[HPM_NAME_SIZE];
	struct hpm_init_opts o;

	opts_for(&o, name, "bad");
	o.region = "no/slash";
	EXPECT_EQ(-EINVAL, hpm_init(&o));
	o.region = "";
	EXPECT_EQ(-EINVAL, hpm_init(&o));
	o.region = "0123456789012345678901234567890123456789";
	EXPECT_EQ(-ENAMETOOLONG, hpm_init(&o));
	o.region = name;
	o.proc_type = 7;
	EXPECT_EQ(-EINVAL, hpm_init(&o));
	o.proc_type = HPM_PROC_AUTO;
	o.socket_mem[0] = (1ULL << 30) + 1;	/* MiB taken at start, above the cap */
	EXPECT_EQ(-EINVAL, hpm_init(&o));
	o.socket_mem[0] = 16;
	o.iova_mode = HPM_IOVA_COMPACT + 1;
	EXPECT_EQ(-EINVAL, hpm_init(&o));
	o.iova_mode = HPM_IOVA_AUTO;
	o.flags = ~HPM_INIT_F_VFIO;		/* unknown bits */
	EXPECT_EQ(-EINVAL, hpm_init(&o));
	o.flags = 0;
	o.base_addr = 0x200000001000ULL;	/* not page aligned */
	EXPECT_EQ(-EINVAL, hpm_init(&o));
	EXPECT_EQ(-ENODEV, hpm_cleanup());
}

TEST(init_env_applies)
{
	char name[HPM_NAME_SIZE], env[256], old[200] = "";
	const struct hpm_memseg *ms = NULL;
	bool had = getenv(HPM_OPTS_ENV) != NULL;
	struct hpm_init_opts o;
	size_t total = 0;

	if (had)
		snprintf(old, sizeof(old), "%s", getenv(HPM_OPTS_ENV));
	opts_for(&o, name, "env");
	snprintf(env, sizeof(env), "%s --socket-mem 6", old);
	setenv(HPM_OPTS_ENV, env, 1);
	ASSERT_EQ(0, hpm_init(&o));
	/* 6 MiB from the environment, not the 16 MiB of @o. */
	ASSERT_EQ(0, hpm_memseg_walk(sum_len, &total));
	ASSERT_EQ(1, hpm_memseg_walk(first_seg, &ms));
	/* A dynamic region's config pages come on top of the reserve. */
	if (dynamic()) {
		EXPECT_EQ(HPM_ALIGN_UP_(6u << 20, ms->page_sz), node0_reserved());
	} else {
		EXPECT_EQ(HPM_ALIGN_UP_(6u << 20, ms->page_sz), total);
	}
	EXPECT_EQ(0, hpm_cleanup());
	setenv(HPM_OPTS_ENV, "--bogus", 1);
	EXPECT_EQ(-EINVAL, hpm_init(&o));
	if (had)
		setenv(HPM_OPTS_ENV, old, 1);
	else
		unsetenv(HPM_OPTS_ENV);
}

TEST(iova_pa_without_addresses)
{
	char name[HPM_NAME_SIZE];
	struct hpm_init_opts o;
	int ret;

	/*
	 * Asked outright: auto says nothing about visibility (behind a
	 * translating IOMMU it picks va or compact even for root).
	 */
	opts_for(&o, name, "pa");
	o.iova_mode = HPM_IOVA_PA;
	ret = hpm_init(&o);
	if (ret == 0) {
		EXPECT_EQ(HPM_IOVA_PA, hpm_iova_mode());
		EXPECT_EQ(0, hpm_cleanup());
		SKIP(return, "this process sees physical addresses");
	}
	EXPECT_EQ(-EPERM, ret);
	/* Nothing half-made: the name is free again. */
	o.iova_mode = HPM_IOVA_AUTO;
	ASSERT_EQ(0, hpm_init(&o));
	EXPECT_EQ(HPM_PROC_PRIMARY, hpm_proc_type());
	EXPECT_EQ(0, hpm_cleanup());
}

/* Without privileges the kmod backend hides physical addresses. */
TEST(iova_pa_unprivileged)
{
	char name[HPM_NAME_SIZE];
	struct hpm_init_opts o;
	int status, code;
	pid_t pid;

	if (geteuid() != 0)
		SKIP(return, "needs root to drop privileges");
	opts_for(&o, name, "pa-unpriv");
	o.iova_mode = HPM_IOVA_PA;
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		int ret;

		if (setgid(65534) || setuid(65534))
			_exit(100);
		ret = hpm_init(&o);
		if (ret == 0)
			hpm_cleanup();
		/* No device access or no pages for this user: nothing to test. */
		_exit(ret == -EPERM ? 0 : ret == -EACCES || ret == -ENODEV ||
		      ret == -ENOMEM ? 77 : 1);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	code = WEXITSTATUS(status);
	if (code == 77)
		SKIP(return, "backend not usable by an unprivileged user");
	EXPECT_EQ(0, code);
}

TEST(secondary_without_primary)
{
	char name[HPM_NAME_SIZE];
	struct hpm_init_opts o;

	opts_for(&o, name, "nopri");
	o.proc_type = HPM_PROC_SECONDARY;
	EXPECT_EQ(-ENOENT, hpm_init(&o));
	EXPECT_EQ(-ENODEV, hpm_cleanup());
}

TEST(base_address_explicit)
{
	char name[HPM_NAME_SIZE];
	struct hpm_init_opts o;
	const struct hpm_memseg *ms, *first = NULL;
	void *block, *base;
	uint64_t page;

	opts_for(&o, name, "base");
	o.base_addr = 0x340000000000ULL;
	ASSERT_EQ(0, hpm_init(&o));
	ms = hpm_virt2memseg((void *)o.base_addr);
	ASSERT_NE(NULL, ms);
	EXPECT_EQ((void *)o.base_addr, ms->addr);
	EXPECT_EQ(0, hpm_cleanup());

	/* Taken in this process: refused, not moved. */
	block = mmap((void *)o.base_addr, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS |
		     MAP_FIXED_NOREPLACE, -1, 0);
	ASSERT_EQ((void *)o.base_addr, block);
	EXPECT_EQ(-EADDRINUSE, hpm_init(&o));
	munmap(block, 4096);

	/* The default base is only a hint: taken, init finds another range. */
	o.base_addr = 0;
	ASSERT_EQ(0, hpm_init(&o));
	ASSERT_EQ(1, hpm_memseg_walk(first_seg, &first));
	base = first->addr;
	page = first->page_sz;
	EXPECT_EQ(0, hpm_cleanup());
	block = mmap(base, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS |
		     MAP_FIXED_NOREPLACE, -1, 0);
	ASSERT_EQ(base, block);
	ASSERT_EQ(0, hpm_init(&o));
	ASSERT_EQ(1, hpm_memseg_walk(first_seg, &first));
	EXPECT_NE(base, first->addr);
	EXPECT_EQ(0, (uintptr_t)first->addr & (page - 1));
	EXPECT_EQ(0, hpm_cleanup());
	munmap(block, 4096);
}

TEST(second_primary_refused)
{
	char name[HPM_NAME_SIZE];
	struct hpm_init_opts o;
	int status;
	pid_t pid;

	opts_for(&o, name, "twopri");
	ASSERT_EQ(0, hpm_init(&o));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		/* The child inherits the mapping; drop it like a fresh process. */
		struct hpm_init_opts c = o;

		c.proc_type = HPM_PROC_PRIMARY;
		hpm_cleanup();
		_exit(hpm_init(&c) == -EEXIST ? 0 : 1);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	EXPECT_EQ(0, hpm_cleanup());
}

TEST(stale_region_replaced)
{
	char name[HPM_NAME_SIZE];
	struct hpm_init_opts o;
	int status;
	pid_t pid;

	/* A primary that dies without cleanup leaves its name behind. */
	opts_for(&o, name, "stale");
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0)
		_exit(hpm_init(&o) ? 1 : 0);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	ASSERT_EQ(0, hpm_init(&o));
	EXPECT_EQ(HPM_PROC_PRIMARY, hpm_proc_type());
	EXPECT_EQ(0, hpm_cleanup());
}

TEST_HARNESS_MAIN
