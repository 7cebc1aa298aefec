# SPDX-License-Identifier: MIT
# hpmem: top-level build. Each directory has its own Makefile; this one only
# delegates and names the entry points the README documents.

TOP	:= $(CURDIR)
B	:= $(TOP)/build
VERSION	:= $(shell cat $(TOP)/VERSION)
export TOP B VERSION

.PHONY: all lib kmod tools selftests examples test test-host vmtest vmtest-debug dmatest demo \
	bench bench-smoke install uninstall dkms-install dkms-src deps clean

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

test-host: lib selftests examples
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

# make install [PREFIX=/usr/local] [DESTDIR=]: the libraries, headers (with
# <linux/hpmem.h>), hpmem.pc, hpmemctl, every man/*.N page, the udev rule
# that gives /dev/hpmem to group hpmem, and an example for modprobe.d.
# Each directory is a variable for packagers (debian/rules sets them).
# uninstall removes exactly those files, and the directories only hpmem uses.
PREFIX		?= /usr/local
MANDIR		?= $(PREFIX)/share/man
DOCDIR		?= $(PREFIX)/share/doc/hpmem
# udev reads /usr/local/lib/udev/rules.d as well as /usr/lib/udev/rules.d.
UDEVRULESDIR	?= $(PREFIX)/lib/udev/rules.d
export PREFIX
MANPAGES	:= $(wildcard man/*.[0-9])
MANFILES	:= $(foreach m,$(MANPAGES),\
		   $(MANDIR)/man$(subst .,,$(suffix $(m)))/$(notdir $(m)))

install:
	$(MAKE) -C lib install
	$(MAKE) -C tools install
	for m in $(MANPAGES); do \
		install -D -m 644 $$m $(DESTDIR)$(MANDIR)/man$${m##*.}/$${m##*/} || exit; \
	done
	install -D -m 644 packaging/60-hpmem.rules $(DESTDIR)$(UDEVRULESDIR)/60-hpmem.rules
	install -D -m 644 packaging/modprobe.d/hpmem.conf \
		$(DESTDIR)$(DOCDIR)/examples/modprobe.d/hpmem.conf

uninstall:
	$(MAKE) -C lib uninstall
	$(MAKE) -C tools uninstall
	rm -f $(addprefix $(DESTDIR),$(MANFILES)) $(DESTDIR)$(UDEVRULESDIR)/60-hpmem.rules
	rm -rf $(DESTDIR)$(DOCDIR)

dkms-install:
	scripts/dkms-install.sh

# The module's source as DKMS builds it: what Kbuild needs, and dkms.conf
# with this VERSION. scripts/dkms-install.sh and debian/rules both use it.
DKMS_SRC	?= /usr/src/hpmem-$(VERSION)
dkms-src:
	install -d $(DESTDIR)$(DKMS_SRC)/kmod $(DESTDIR)$(DKMS_SRC)/include/uapi/linux
	install -m 644 Kbuild VERSION $(DESTDIR)$(DKMS_SRC)/
	install -m 644 kmod/*.c kmod/*.h $(DESTDIR)$(DKMS_SRC)/kmod/
	install -m 644 include/uapi/linux/hpmem.h $(DESTDIR)$(DKMS_SRC)/include/uapi/linux/
	sed 's/#MODULE_VERSION#/$(VERSION)/' dkms.conf >$(DESTDIR)$(DKMS_SRC)/dkms.conf

deps:
	scripts/deps.sh all

clean:
	rm -rf $(B)
	$(MAKE) -C kmod clean
