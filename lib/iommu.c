// SPDX-License-Identifier: MIT
/*
 * IOMMU facts from sysfs and the IOVA mode decision. The decision is a pure
 * function so that every combination can be tested on a host without one.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iommu.h"
#include "options.h"

/* Reads the first line of @path into @buf (newline dropped); 0 or -errno. */
static int read_line(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "re");
	int ret = 0;

	if (!f)
		return -errno;
	if (!fgets(buf, (int)len, f))
		ret = -EIO;
	else
		buf[strcspn(buf, "\n")] = '\0';
	fclose(f);
	return ret;
}

enum hpm_dma_model hpm_iommu_dma_model(const char *root)
{
	enum hpm_dma_model m = HPM_DMA_NO_IOMMU;
	char path[PATH_MAX], type[32];
	struct dirent *e;
	DIR *d;

	snprintf(path, sizeof(path), "%s/kernel/iommu_groups", root);
	d = opendir(path);
	if (!d)
		return HPM_DMA_NO_IOMMU;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/kernel/iommu_groups/%s/type", root, e->d_name);
		if (read_line(path, type, sizeof(type)))
			continue;
		/* "DMA-FQ" is DMA with a flush queue: translated all the same. */
		if (!strcmp(type, "DMA") || !strcmp(type, "DMA-FQ")) {
			m = HPM_DMA_TRANSLATED;
			break;
		}
		m = HPM_DMA_PASSTHROUGH;
	}
	closedir(d);
	return m;
}

/* VT-d capability register: MGAW in bits 21:16 holds the width minus one. */
#define VTD_CAP_MGAW_SHIFT	16
#define VTD_CAP_MGAW_MASK	0x3fULL

unsigned int hpm_iommu_width(const char *root)
{
	char path[PATH_MAX], buf[32];
	unsigned int width = 0;
	struct dirent *e;
	DIR *d;

	snprintf(path, sizeof(path), "%s/class/iommu", root);
	d = opendir(path);
	if (!d)
		return 0;
	while ((e = readdir(d))) {
		unsigned long long cap;
		unsigned int w;
		char *end;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/class/iommu/%s/intel-iommu/cap", root,
			 e->d_name);
		if (read_line(path, buf, sizeof(buf)))
			continue;
		/* The kernel prints it as "%llx", no 0x. */
		errno = 0;
		cap = strtoull(buf, &end, 16);
		if (errno || end == buf || *end)
			continue;
		w = (unsigned int)((cap >> VTD_CAP_MGAW_SHIFT) & VTD_CAP_MGAW_MASK) + 1;
		if (!width || w < width)
			width = w;
	}
	closedir(d);
	return width;
}

const char *hpm_dma_model_name(enum hpm_dma_model m)
{
	switch (m) {
	case HPM_DMA_NO_IOMMU:
		return "no IOMMU";
	case HPM_DMA_PASSTHROUGH:
		return "IOMMU in passthrough";
	case HPM_DMA_TRANSLATED:
		return "IOMMU translates DMA";
	default:
		return "DMA model unknown";
	}
}

static bool fits_width(uint64_t end, unsigned int width)
{
	return width && (width >= 64 || end <= (1ULL << width));
}

int hpm_iova_choose(enum hpm_iova_mode asked, const struct hpm_iova_facts *f,
		    enum hpm_iova_mode *out, char *why, size_t why_len, bool *warn)
{
	const char *dma = hpm_dma_model_name(f->dma);
	uint64_t end = f->base + f->size;

	*warn = false;
	switch (asked) {
	case HPM_IOVA_PA:
		if (!f->addrs) {
			snprintf(why, why_len, "pa asked, but physical addresses are hidden");
			return -EPERM;
		}
		*out = HPM_IOVA_PA;
		if (f->dma == HPM_DMA_TRANSLATED) {
			/* True only where the library maps iova = phys itself. */
			*warn = true;
			snprintf(why, why_len, "asked; %s, so devices reach these IOVAs only "
				 "through the library's VFIO containers", dma);
		} else {
			snprintf(why, why_len, "asked (%s)", dma);
		}
		return 0;
	case HPM_IOVA_VA:
		*out = HPM_IOVA_VA;
		if (f->dma == HPM_DMA_TRANSLATED && f->width && !fits_width(end, f->width)) {
			*warn = true;
			snprintf(why, why_len, "asked, but the region ends at 0x%llx, beyond the "
				 "IOMMU's %u-bit width: VFIO mapping will fail (use --iova-mode "
				 "compact)", (unsigned long long)end, f->width);
		} else {
			snprintf(why, why_len, "asked (%s)", dma);
		}
		return 0;
	case HPM_IOVA_COMPACT:
		*out = HPM_IOVA_COMPACT;
		snprintf(why, why_len, "asked (%s)", dma);
		return 0;
	case HPM_IOVA_AUTO:
		break;
	default:
		snprintf(why, why_len, "unknown iova mode %d", (int)asked);
		return -EINVAL;
	}

	if (f->dma == HPM_DMA_TRANSLATED) {
		if (fits_width(end, f->width)) {
			*out = HPM_IOVA_VA;
			snprintf(why, why_len, "auto: %s and the region ends below its %u-bit "
				 "width", dma, f->width);
		} else {
			*out = HPM_IOVA_COMPACT;
			if (f->width)
				snprintf(why, why_len, "auto: %s and the region ends at 0x%llx, "
					 "beyond its %u-bit width", dma,
					 (unsigned long long)end, f->width);
			else
				snprintf(why, why_len, "auto: %s, its address width is unknown",
					 dma);
		}
		return 0;
	}
	if (f->addrs) {
		*out = HPM_IOVA_PA;
		snprintf(why, why_len, "auto: %s, physical addresses visible", dma);
		return 0;
	}
	/*
	 * No true mode exists without an IOMMU when addresses are hidden; VA
	 * still serves software that only needs IOVAs to be unique, as before.
	 */
	*out = HPM_IOVA_VA;
	snprintf(why, why_len, "auto: %s, physical addresses hidden", dma);
	return 0;
}

int hpm_iova_range_check(const struct hpm_iova_range *usable, size_t n,
			 uint64_t iova, uint64_t len)
{
	uint64_t last;

	if (!len || __builtin_add_overflow(iova, len - 1, &last))
		return -ERANGE;
	if (!n)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (iova >= usable[i].start && last <= usable[i].end)
			return 0;
	return -ERANGE;
}
