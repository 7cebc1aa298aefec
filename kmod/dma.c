// SPDX-License-Identifier: GPL-2.0
/*
 * The DMA address model: whether devices on the PCI bus reach a page at its
 * physical address or through an IOMMU translation (DOC: device addresses).
 */
#include <linux/device.h>
#include <linux/iommu.h>
#include <linux/pci.h>

#include "hpmem.h"

struct hpmem_dma_count {
	u32 translated;
	u32 direct;
};

/*
 * Called with the group's mutex held (iommu_group_for_each_dev()), which
 * every domain change takes: VFIO cannot detach and free the domain while
 * its type is read. A group has one domain, so the first device decides.
 */
static int hpmem_dma_group_identity(struct device *dev, void *data)
{
	struct iommu_domain *domain = iommu_get_domain_for_dev(dev);
	bool *identity = data;

	*identity = domain && domain->type == IOMMU_DOMAIN_IDENTITY;
	return 1;
}

static int hpmem_dma_count_dev(struct device *dev, void *data)
{
	struct hpmem_dma_count *count = data;
	struct iommu_group *group;
	bool identity = false;

	/* Without a group the IOMMU (if any) does not see the device. */
	if (!device_iommu_mapped(dev))
		return 0;
	/* Keeps the group alive should the device leave its IOMMU meanwhile. */
	group = iommu_group_get(dev);
	if (!group)
		return 0;
	iommu_group_for_each_dev(group, &identity, hpmem_dma_group_identity);
	iommu_group_put(group);
	/*
	 * Identity domains pass physical addresses through. DMA, DMA_FQ,
	 * VFIO's unmanaged and blocking domains, or no domain at all: a
	 * physical address is not what the device can use.
	 */
	if (identity)
		count->direct++;
	else
		count->translated++;
	return 0;
}

/**
 * hpmem_dma_model() - what devices on the PCI bus DMA to, now
 * @translated: out, devices whose DMA an IOMMU translates
 * @direct: out, devices behind an IOMMU in identity domains
 *
 * Walks the PCI bus on every call: devices are hot-plugged and bound to
 * VFIO at any time, so nothing is cached. May sleep; called without
 * hpmem_lock.
 *
 * Return: HPMEM_DMA_TRANSLATED if any device translates, else
 * HPMEM_DMA_PASSTHROUGH if any device is behind an IOMMU, else
 * HPMEM_DMA_NO_IOMMU.
 */
u32 hpmem_dma_model(u32 *translated, u32 *direct)
{
	struct hpmem_dma_count count = { 0 };

	bus_for_each_dev(&pci_bus_type, NULL, &count, hpmem_dma_count_dev);
	if (translated)
		*translated = count.translated;
	if (direct)
		*direct = count.direct;
	if (count.translated)
		return HPMEM_DMA_TRANSLATED;
	if (count.direct)
		return HPMEM_DMA_PASSTHROUGH;
	return HPMEM_DMA_NO_IOMMU;
}
