# SPDX-License-Identifier: MIT
# hpmem: top-level build. Each directory has its own Makefile; this one only
# delegates and names the entry points the README documents.

TOP	:= $(CURDIR)
B	:= $(TOP)/build
VERSION	:= $(shell cat $(TOP)/VERSION)
export TOP B VERSION

.PHONY: all lib kmod tools selftests examples test test-host vmtest vmtest-debug dmatest demo \
	bench bench-smoke install dkms-install deps clean

all: lib tools kmod

lib:
	$(MAKE) -C lib

# Module for every Debian kernel whose headers are installed (6.1 and 6.12).
kmod:
	$(MAKE) -C kmod

tools: lib
	$(MAKE) -C tools

selftests: lib
	$(MAKE) -C selftests

examples: lib
	$(MAKE) -C examples

# Everything CI runs: host tests (plain and ASan/UBSan), the guest tests on
# both kernels, and a smoke run of the benchmark.
test:
	scripts/deps.sh test
	$(MAKE) all selftests examples
	selftests/run.sh

test-host: lib selftests
	selftests/run.sh --host-only

vmtest: kmod tools selftests
	selftests/vm/run.sh

# The DMA proof alone: QEMU's edu device on both kernels, without an IOMMU
# (sysfs, PA) and behind one (VFIO, auto and PA IOVAs).
dmatest: kmod selftests
	selftests/vm/run.sh --config all --run /tests/lib/dma

# The whole guest suite, behind the IOMMU (VFIO paths included), on the
# debug kernel: KASAN, kmemleak, lockdep, DEBUG_VM and allocation-failure
# injection. The kernel is built once per machine (about 12 minutes on 2
# cores) and cached outside the tree; hpmem.ko is rebuilt against it.
vmtest-debug: tools selftests
	scripts/deps.sh test
	+k=$$(scripts/debug-kernel/build.sh) && \
		$(MAKE) -C kmod debug DEBUG_KDIR=$$k && \
		HPMEM_DEBUG_KERNEL=$$k selftests/vm/run.sh --kernel debug --config iommu

# Main job: build everything, boot the guest, load the module, run the demo.
demo:
	scripts/deps.sh demo
	$(MAKE) all selftests examples
	selftests/vm/run.sh --demo

bench:
	scripts/deps.sh bench
	$(MAKE) lib
	$(MAKE) -C bench run

bench-smoke: lib
	$(MAKE) -C bench smoke

install: lib tools
	$(MAKE) -C lib install
	$(MAKE) -C tools install

dkms-install:
	scripts/dkms-install.sh

deps:
	scripts/deps.sh all

clean:
	rm -rf $(B)
	$(MAKE) -C kmod clean
