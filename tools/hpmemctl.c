// SPDX-License-Identifier: MIT
/* hpmemctl: inspect and administer /dev/hpmem pools and regions. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/hpmem.h>

static const char *dev_path = HPMEM_DEVICE_PATH;
static bool json;

static int die(const char *what, int err)
{
	fprintf(stderr, "hpmemctl: %s: %s\n", what, strerror(err));
	return 1;
}

static int dev_open(void)
{
	int fd = open(dev_path, O_RDWR | O_CLOEXEC);

	if (fd < 0)
		fprintf(stderr, "hpmemctl: %s: %s%s\n", dev_path, strerror(errno),
			errno == ENOENT ? " (is the hpmem module loaded?)" : "");
	return fd;
}

static int usage_of(const char *cmd)
{
	fprintf(stderr, "hpmemctl: %s takes no arguments\n", cmd);
	return 2;
}

static int parse_u32(const char *s, uint32_t *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 0);
	if (errno || end == s || *end || v > UINT32_MAX)
		return -EINVAL;
	*out = v;
	return 0;
}

static int parse_u64(const char *s, __u64 *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s || *end || s[0] == '-')
		return -EINVAL;
	*out = v;
	return 0;
}

static int get_info(int fd, struct hpmem_info *info)
{
	memset(info, 0, sizeof(*info));
	info->argsz = sizeof(*info);
	return ioctl(fd, HPMEM_IOC_INFO, info) ? -errno : 0;
}

/* HPMEM_IOC_INFO's dma_model; "unknown" from a module without it. */
static const char *dma_model_name(const struct hpmem_info *info)
{
	if (!(info->features & HPMEM_FEAT_DMA_MODEL))
		return "unknown";
	switch (info->dma_model) {
	case HPMEM_DMA_NO_IOMMU:	return "no-iommu";
	case HPMEM_DMA_PASSTHROUGH:	return "passthrough";
	case HPMEM_DMA_TRANSLATED:	return "translated";
	default:			return "unknown";
	}
}

static int cmd_info(int fd, int argc, char **argv)
{
	struct hpmem_info info;
	int rc;

	(void)argv;
	if (argc)
		return usage_of("info");
	rc = get_info(fd, &info);
	if (rc)
		return die("info", -rc);
	if (json) {
		printf("{\"api_version\": %u, \"page_size\": %llu, \"features\": %llu, "
		       "\"nr_node_ids\": %u, \"node_mask\": %llu, \"max_pages\": %llu, "
		       "\"addresses_visible\": %s, \"dma_model\": \"%s\", "
		       "\"dma_translated_devs\": %u, \"dma_direct_devs\": %u}\n",
		       info.api_version, 1ULL << info.page_shift,
		       (unsigned long long)info.features, info.nr_node_ids,
		       (unsigned long long)info.node_mask,
		       (unsigned long long)info.max_pages,
		       info.caller & HPMEM_CALLER_ADDRS ? "true" : "false",
		       dma_model_name(&info), info.dma_translated_devs,
		       info.dma_direct_devs);
		return 0;
	}
	printf("api version:        %u\n", info.api_version);
	printf("page size:          %llu KiB\n", (1ULL << info.page_shift) >> 10);
	printf("features:          %s%s%s%s%s%s%s%s\n",
	       info.features & HPMEM_FEAT_PERSISTENT ? " persistent" : "",
	       info.features & HPMEM_FEAT_PINNABLE ? " pinnable" : "",
	       info.features & HPMEM_FEAT_PMD_MAP ? " pmd-map" : "",
	       info.features & HPMEM_FEAT_DMA_MODEL ? " dma-model" : "",
	       info.features & HPMEM_FEAT_BUSY_PAGES ? " busy-pages" : "",
	       info.features & HPMEM_FEAT_UID_NAMES ? " uid-names" : "",
	       info.features & HPMEM_FEAT_REGION_LIST ? " region-list" : "",
	       info.features & HPMEM_FEAT_DIRTY_PAGES ? " dirty-pages" : "");
	printf("node ids below:     %u\n", info.nr_node_ids);
	printf("max pool pages:     %llu\n", (unsigned long long)info.max_pages);
	printf("addresses visible:  %s\n",
	       info.caller & HPMEM_CALLER_ADDRS ? "yes" : "no");
	printf("dma model:          %s (%u translated, %u direct devices)\n",
	       dma_model_name(&info), info.dma_translated_devs,
	       info.dma_direct_devs);
	return 0;
}

static int cmd_nodes(int fd, int argc, char **argv)
{
	struct hpmem_info info;
	struct hpmem_node_info ni;
	bool first = true;
	int rc;

	(void)argv;
	if (argc)
		return usage_of("nodes");
	rc = get_info(fd, &info);
	if (rc)
		return die("info", -rc);
	if (json)
		printf("[");
	else
		printf("%-5s %10s %10s %10s %10s %10s %10s\n", "node", "total",
		       "free", "in_use", "mapped", "busy", "dirty");
	for (unsigned int n = 0; n < 64 && n < info.nr_node_ids; n++) {
		if (!(info.node_mask & (1ULL << n)))
			continue;
		memset(&ni, 0, sizeof(ni));
		ni.argsz = sizeof(ni);
		ni.node = n;
		if (ioctl(fd, HPMEM_IOC_NODE_INFO, &ni))
			return die("node info", errno);
		if (json)
			printf("%s{\"node\": %u, \"total\": %llu, \"free\": %llu, "
			       "\"in_use\": %llu, \"mapped\": %llu, \"busy\": %llu, "
			       "\"dirty\": %llu}",
			       first ? "" : ", ", n,
			       (unsigned long long)ni.total_pages,
			       (unsigned long long)ni.free_pages,
			       (unsigned long long)ni.inuse_pages,
			       (unsigned long long)ni.mapped_pages,
			       (unsigned long long)ni.busy_pages,
			       (unsigned long long)ni.dirty_pages);
		else
			printf("%-5u %10llu %10llu %10llu %10llu %10llu %10llu\n", n,
			       (unsigned long long)ni.total_pages,
			       (unsigned long long)ni.free_pages,
			       (unsigned long long)ni.inuse_pages,
			       (unsigned long long)ni.mapped_pages,
			       (unsigned long long)ni.busy_pages,
			       (unsigned long long)ni.dirty_pages);
		first = false;
	}
	if (json)
		printf("]\n");
	return 0;
}

static int cmd_resize(int fd, int argc, char **argv)
{
	struct hpmem_pool_resize rs = { .argsz = sizeof(rs) };

	if (argc != 2 || parse_u32(argv[0], &rs.node) ||
	    parse_u64(argv[1], &rs.nr_pages)) {
		fprintf(stderr, "hpmemctl: usage: resize NODE PAGES\n");
		return 2;
	}
	if (ioctl(fd, HPMEM_IOC_POOL_RESIZE, &rs))
		return die("resize", errno);
	if (json)
		printf("{\"node\": %u, \"total\": %llu}\n", rs.node,
		       (unsigned long long)rs.nr_pages);
	else
		printf("node %u: %llu pages\n", rs.node,
		       (unsigned long long)rs.nr_pages);
	return 0;
}

static int copy_name(char dst[HPMEM_NAME_MAX], const char *src)
{
	size_t len = strlen(src);

	if (!len)
		return -EINVAL;
	if (len >= HPMEM_NAME_MAX)
		return -ENAMETOOLONG;
	memcpy(dst, src, len + 1);
	return 0;
}

/* create NAME [NODE:PAGES ...]: a persistent region, grown on each node. */
static int cmd_create(int fd, int argc, char **argv)
{
	struct hpmem_region_create cr = {
		.argsz = sizeof(cr),
		.flags = HPMEM_REGION_PERSISTENT,
	};
	int rc, i;

	if (argc < 1) {
		fprintf(stderr, "hpmemctl: usage: create NAME [--pinnable] [NODE:PAGES...]\n");
		return 2;
	}
	rc = copy_name(cr.name, argv[0]);
	if (rc)
		return die(argv[0], -rc);
	for (i = 1; i < argc && !strcmp(argv[i], "--pinnable"); i++)
		cr.flags |= HPMEM_REGION_PINNABLE;
	if (ioctl(fd, HPMEM_IOC_REGION_CREATE, &cr))
		return die("create", errno);
	for (; i < argc; i++) {
		struct hpmem_region_grow gr = { .argsz = sizeof(gr) };
		char *colon = strchr(argv[i], ':');

		if (!colon)
			goto bad_spec;
		*colon = '\0';
		if (parse_u32(argv[i], &gr.node) || parse_u64(colon + 1, &gr.nr_pages))
			goto bad_spec;
		if (ioctl(fd, HPMEM_IOC_REGION_GROW, &gr)) {
			rc = errno;
			goto undo;
		}
	}
	return 0;

bad_spec:
	rc = EINVAL;
	fprintf(stderr, "hpmemctl: bad NODE:PAGES '%s'\n", argv[i]);
undo:
	{
		struct hpmem_region_destroy ds = { .argsz = sizeof(ds) };

		memcpy(ds.name, cr.name, sizeof(ds.name));
		ioctl(fd, HPMEM_IOC_REGION_DESTROY, &ds);
	}
	return rc == EINVAL ? 2 : die("grow", rc);
}

/* destroy [--uid UID] NAME: by name, among UID's regions with --uid. */
static int cmd_destroy(int fd, int argc, char **argv)
{
	struct hpmem_region_destroy ds = { .argsz = sizeof(ds) };
	int rc;

	if (argc == 3 && !strcmp(argv[0], "--uid")) {
		if (parse_u32(argv[1], &ds.uid))
			argc = 0;
		ds.flags = HPMEM_NAME_UID;
		argc -= 2;
		argv += 2;
	}
	if (argc != 1) {
		fprintf(stderr, "hpmemctl: usage: destroy [--uid UID] NAME\n");
		return 2;
	}
	rc = copy_name(ds.name, argv[0]);
	if (rc)
		return die(argv[0], -rc);
	if (ioctl(fd, HPMEM_IOC_REGION_DESTROY, &ds))
		return die(argv[0], errno);
	return 0;
}

/* A region name as a JSON string: quotes, backslashes, control bytes. */
static void json_name(const char *name)
{
	putchar('"');
	for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
		if (*p == '"' || *p == '\\')
			printf("\\%c", *p);
		else if (*p < 0x20 || *p >= 0x7f)
			printf("\\u%04x", *p);
		else
			putchar(*p);
	}
	putchar('"');
}

/* A region name as text: bytes outside printable ASCII as \xNN. */
static void text_name(const char *name)
{
	for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
		if (*p <= 0x20 || *p >= 0x7f || *p == '\\')
			printf("\\x%02x", *p);
		else
			putchar(*p);
	}
}

static void print_region(const struct hpmem_region_entry *e,
			 const struct hpmem_info *info, unsigned int nodes,
			 bool first)
{
	unsigned int n;
	bool nfirst = true;

	if (json) {
		printf("%s\n {\"name\": ", first ? "" : ",");
		json_name(e->name);
		printf(", \"id\": %llu, \"uid\": %u, \"persistent\": %s, "
		       "\"pinnable\": %s, \"users\": %u, \"maps\": %u, "
		       "\"pages\": %llu, \"node_pages\": {",
		       (unsigned long long)e->id, e->uid,
		       e->flags & HPMEM_REGION_PERSISTENT ? "true" : "false",
		       e->flags & HPMEM_REGION_PINNABLE ? "true" : "false",
		       e->users, e->maps, (unsigned long long)e->nr_pages);
		for (n = 0; n < nodes; n++) {
			if (n < 64 && !(info->node_mask & (1ULL << n)))
				continue;
			printf("%s\"%u\": %llu", nfirst ? "" : ", ", n,
			       (unsigned long long)e->node_pages[n]);
			nfirst = false;
		}
		printf("}}");
		return;
	}
	printf("%8llu %6u %-4s %5u %5u %8llu ", (unsigned long long)e->id,
	       e->uid,
	       e->flags & HPMEM_REGION_PINNABLE ?
	       (e->flags & HPMEM_REGION_PERSISTENT ? "P,pn" : "pin") :
	       (e->flags & HPMEM_REGION_PERSISTENT ? "P" : "-"),
	       e->users, e->maps, (unsigned long long)e->nr_pages);
	for (n = 0; n < nodes; n++) {
		if (!e->node_pages[n])
			continue;
		printf("%sn%u=%llu", nfirst ? "" : ",", n,
		       (unsigned long long)e->node_pages[n]);
		nfirst = false;
	}
	printf("%s ", nfirst ? "-" : "");
	text_name(e->name);
	putchar('\n');
}

/* regions: every region of every user, paged through REGION_LIST. */
static int cmd_regions(int fd, int argc, char **argv)
{
	struct hpmem_region_list rl = { .argsz = sizeof(rl) };
	const unsigned int batch = 256;
	struct hpmem_info info;
	unsigned int nodes;
	bool first = true;
	char *buf;
	int rc;

	(void)argv;
	if (argc)
		return usage_of("regions");
	rc = get_info(fd, &info);
	if (rc)
		return die("info", -rc);
	if (!(info.features & HPMEM_FEAT_REGION_LIST))
		return die("regions", EOPNOTSUPP);
	nodes = info.nr_node_ids;
	rl.entry_size = sizeof(struct hpmem_region_entry) + 8 * nodes;
	buf = calloc(batch, rl.entry_size);
	if (!buf)
		return die("regions", ENOMEM);
	rl.entries = (uintptr_t)buf;
	if (json)
		printf("[");
	else
		printf("%8s %6s %-4s %5s %5s %8s %s NAME\n", "ID", "UID",
		       "KIND", "USERS", "MAPS", "PAGES", "NODES");
	for (;;) {
		rl.nr_entries = batch;
		if (ioctl(fd, HPMEM_IOC_REGION_LIST, &rl)) {
			rc = errno;
			free(buf);
			if (json)
				printf("]\n");
			return die("regions", rc);
		}
		if (!rl.nr_entries)
			break;
		for (unsigned int i = 0; i < rl.nr_entries; i++) {
			print_region((void *)(buf + (size_t)i * rl.entry_size),
				     &info, nodes, first);
			first = false;
		}
	}
	if (json)
		printf("%s]\n", first ? "" : "\n");
	free(buf);
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: hpmemctl [--json] [--device PATH] COMMAND [ARGS]\n"
		"commands:\n"
		"  info                         module version, page size, limits\n"
		"  nodes                        pool counters per NUMA node\n"
		"  resize NODE PAGES            set a node's pool size (CAP_SYS_ADMIN)\n"
		"  create NAME [--pinnable] [NODE:PAGES...]\n"
		"                               persistent region, grown per node\n"
		"  destroy [--uid UID] NAME     destroy a region by name (another\n"
		"                               user's with --uid: CAP_SYS_ADMIN)\n"
		"  regions                      every region of every user\n"
		"                               (CAP_SYS_ADMIN)\n");
}

static const struct {
	const char *name;
	int (*fn)(int fd, int argc, char **argv);
} cmds[] = {
	{ "info", cmd_info },
	{ "nodes", cmd_nodes },
	{ "resize", cmd_resize },
	{ "create", cmd_create },
	{ "destroy", cmd_destroy },
	{ "regions", cmd_regions },
};

int main(int argc, char **argv)
{
	unsigned int c;
	int i, fd, rc;

	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "--json")) {
			json = true;
		} else if (!strcmp(argv[i], "--device") && i + 1 < argc) {
			dev_path = argv[++i];
		} else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage(stdout);
			return 0;
		} else {
			fprintf(stderr, "hpmemctl: unknown option '%s'\n", argv[i]);
			return 2;
		}
	}
	if (i >= argc) {
		usage(stderr);
		return 2;
	}
	for (c = 0; c < sizeof(cmds) / sizeof(cmds[0]); c++)
		if (!strcmp(argv[i], cmds[c].name))
			break;
	if (c == sizeof(cmds) / sizeof(cmds[0])) {
		fprintf(stderr, "hpmemctl: unknown command '%s'\n", argv[i]);
		return 2;
	}
	fd = dev_open();
	if (fd < 0)
		return 1;
	i++;
	rc = cmds[c].fn(fd, argc - i, argv + i);
	close(fd);
	return rc;
}
