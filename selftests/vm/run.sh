#!/bin/bash
# SPDX-License-Identifier: MIT
# Boot Debian kernels in QEMU (TCG, 2 sockets, 2 NUMA nodes, QEMU's edu DMA
# device) with an initramfs holding busybox, hpmem.ko and the static
# selftests; judge the console output (TAP, kernel log markers). Exits
# non-zero on any failure, after the console lines that explain it.
# The console goes to $B/vm/console-KVER-CONFIG.log; the terminal shows the
# demo's own output (--demo), one line per test program and every failure
# (tests), or the whole console (--run, or HPMEM_VM_CONSOLE=1).
#
# Usage: selftests/vm/run.sh [--kernel 6.1|6.12|all|debug] [--iommu|--config C]
#            [--demo] [--run 'CMD'] [--extra DIR] [--timeout SEC]
#            [--modparams 'pages=64,64']
# Configurations (C): plain (pc machine, no IOMMU: the default for tests),
# iommu (q35 + intel-iommu, edu bound to vfio-pci: the default for --demo),
# all (both, one boot each per kernel; what make test runs).
# --kernel debug boots the KASAN/kmemleak/lockdep 6.1 that
# scripts/debug-kernel/build.sh built (make vmtest-debug), with its
# hpmem.ko from $B/kmod/debug; its drivers are built in.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
TOP=${TOP:-$(cd "$here/../.." && pwd)}
B=${B:-$TOP/build}

kernels=all
configs=
mode="test"
run_cmd=
extra=
timeout=${HPMEM_VM_TIMEOUT:-900}
prog_timeout=${HPMEM_VM_PROG_TIMEOUT:-300}
# Seconds a boot may take to reach /init before it counts as hung.
boot_wait=${HPMEM_VM_BOOT_WAIT:-300}
# 2 GiB per node: the library's dynamic-memory test takes 1 GiB on node 1,
# with room beside it for the kernel.
mem_per_node=${HPMEM_VM_NODE_MEM:-2G}
# A cap of the guest's RAM (in 2 MiB pages), so that pool growth can also
# fail in the page allocator (tested), not only at the cap.
modparams=${HPMEM_VM_MODPARAMS:-pages=64,64 max_pages=$(( ${mem_per_node%G} * 2 * 512 ))}
# Appended to the guest kernel's command line (e.g. swiotlb=force).
cmdline_extra=${HPMEM_VM_CMDLINE_EXTRA:-}
# QEMU wants the nodes to add up to the RAM size exactly.
ram=$(( ${mem_per_node%G} * 2 ))G

usage() {
	sed -n '11,16p' "$0" | sed 's/^# //' >&2
	exit 2
}

while [ $# -gt 0 ]; do
	case "$1" in
	--kernel)	kernels=$2; shift ;;
	--iommu)	configs=iommu ;;
	--config)	configs=$2; shift ;;
	--demo)		mode=demo ;;
	--run)		mode=run; run_cmd=$2; shift ;;
	--extra)	extra=$2; shift ;;
	--timeout)	timeout=$2; shift ;;
	--modparams)	modparams=$2; shift ;;
	-h|--help)	usage ;;
	*)		echo "unknown argument: $1" >&2; usage ;;
	esac
	shift
done

case "$kernels" in
all)		series="6.1 6.12" ;;
6.1|6.12|debug)	series=$kernels ;;
*)		usage ;;
esac

# The demo shows the realistic case, a device behind an IOMMU, by default.
if [ -z "$configs" ]; then
	[ "$mode" = demo ] && configs=iommu || configs=plain
fi
case "$configs" in
all)		configs="plain iommu" ;;
plain|iommu)	;;
*)		usage ;;
esac

if [ -n "$extra" ] && [ ! -d "$extra" ]; then
	echo "--extra $extra: not a directory" >&2
	exit 2
fi

# busybox-static installs /bin/busybox (the dynamic busybox package would not
# run in the initramfs, which has no libc).
busybox=/bin/busybox

# Newest installed kernel of a series that has headers (hpmem.ko is built
# against them), e.g. 6.1 -> 6.1.0-56-amd64, 6.12 -> 6.12.117+deb12-amd64.
find_kver() {
	local s=$1 k
	if [ "$s" = debug ]; then
		[ -f "$B/kmod/debug/hpmem.ko" ] && [ -n "${HPMEM_DEBUG_KERNEL:-}" ] &&
			[ -f "$HPMEM_DEBUG_KERNEL/bzImage" ] && echo debug
		return
	fi
	for k in $(find /boot -maxdepth 1 -name "vmlinuz-$s.*" |
		   sed 's|.*/vmlinuz-||' | sort -V -r); do
		if [ -d "/lib/modules/$k/build" ]; then
			echo "$k"
			return 0
		fi
	done
	return 1
}

# Copy a module of the guest kernel into the initramfs, uncompressed
# (busybox insmod does not decompress).
copy_kmod() {
	local kver=$1 rel=$2 dst=$3 f
	for f in /lib/modules/"$kver"/kernel/"$rel".ko{,.xz,.zst}; do
		[ -f "$f" ] || continue
		case "$f" in
		*.xz)	xz -dc "$f" >"$dst" ;;
		*.zst)	zstd -qdc "$f" >"$dst" ;;
		*)	cp "$f" "$dst" ;;
		esac
		return 0
	done
	return 1
}

# VFIO for the iommu configuration, in load order (vfio_virqfd is a module
# on 6.1 only; the others' dependencies are the same on both kernels).
VFIO_KMODS="drivers/vfio/vfio drivers/vfio/vfio_iommu_type1
	drivers/vfio/vfio_virqfd virt/lib/irqbypass drivers/vfio/pci/vfio-pci-core
	drivers/vfio/pci/vfio-pci"

# vgem and what it needs, in load order, for the dma-buf test's imports
# (selftests/kmod/dmabuf.c loads them; drm_kms_helper is a dependency of
# drm_shmem_helper on 6.12 only). The debug kernel has no DRM: none found.
DRM_KMODS="drivers/gpu/drm/drm drivers/gpu/drm/drm_kms_helper
	drivers/gpu/drm/drm_shmem_helper drivers/gpu/drm/vgem/vgem"

build_initramfs() {
	local kver=$1 work=$2 config=$3 root=$2/root f
	rm -rf "$root"
	mkdir -p "$root"/{bin,sbin,etc,lib,proc,sys,dev,tmp,mnt,root,tests/kmod,tests/lib,tests/tools,lib/test}
	cp "$busybox" "$root/bin/busybox"
	ln -s busybox "$root/bin/sh"
	cp "$here/init" "$root/init"
	chmod 755 "$root/init"
	mknod -m 600 "$root/dev/console" c 5 1 2>/dev/null || true

	if [ -f "$B/kmod/$kver/hpmem.ko" ]; then
		cp "$B/kmod/$kver/hpmem.ko" "$root/lib/hpmem.ko"
	else
		echo "# vm: $B/kmod/$kver/hpmem.ko not built" >&2
	fi
	copy_kmod "$kver" drivers/block/brd "$root/lib/brd.ko" ||
		echo "# vm: brd.ko not found for $kver (O_DIRECT tests skip)" >&2
	mkdir -p "$root/lib/drm"
	for f in $DRM_KMODS; do
		copy_kmod "$kver" "$f" "$root/lib/drm/${f##*/}.ko" &&
			echo "${f##*/}" >>"$root/lib/drm/order"
	done
	if [ "$config" = iommu ]; then
		mkdir -p "$root/lib/vfio"
		for f in $VFIO_KMODS; do
			copy_kmod "$kver" "$f" "$root/lib/vfio/${f##*/}.ko" &&
				echo "${f##*/}" >>"$root/lib/vfio/order"
		done
	fi

	if [ -x "$B/tools/hpmemctl.static" ]; then
		cp "$B/tools/hpmemctl.static" "$root/bin/hpmemctl"
	fi
	for f in "$B"/selftests/guest/kmod/*; do
		[ -x "$f" ] && cp "$f" "$root/tests/kmod/"
	done
	for f in "$B"/selftests/guest/lib/*; do
		[ -x "$f" ] && cp "$f" "$root/tests/lib/"
	done
	for f in "$B"/selftests/guest/tools/*; do
		[ -x "$f" ] && cp "$f" "$root/tests/tools/"
	done
	# Test-only modules built for this kernel (selftests that need a
	# kernel-side actor, e.g. one that holds page references as KVM does).
	for f in "$B/selftests/guest/kmod-$kver"/*.ko; do
		[ -f "$f" ] && cp "$f" "$root/lib/test/"
	done
	if [ -n "$extra" ]; then
		mkdir -p "$root/extra"
		cp -a "$extra"/. "$root/extra/"
	fi

	{
		echo "MODE=$mode"
		echo "KVER='$kver'"
		echo "MODPARAMS='$modparams'"
		echo "PROG_TIMEOUT=$prog_timeout"
		echo "IOMMU=$([ "$config" = iommu ] && echo 1 || echo 0)"
	} >"$root/etc/vm.conf"
	case "$mode" in
	demo)
		# The guest half of the demo: examples/demo, hpmemctl's views
		# of it, and the pages coming back (it fails without the demo).
		[ -x "$B/examples/demo" ] && cp "$B/examples/demo" "$root/bin/demo"
		cp "$TOP/examples/demo-guest.sh" "$root/etc/vm-run.sh"
		;;
	run)	printf '%s\n' "$run_cmd" >"$root/etc/vm-run.sh" ;;
	*)	: >"$root/etc/vm-run.sh" ;;
	esac

	(cd "$root" && find . -print0 | cpio --null -o -H newc --quiet) \
		>"$work/initramfs.cpio"
}

# The console lines that explain a failed boot: each kernel-log marker
# (from the guest's dmesg dump when there is one) with the call trace after
# it, and the console's last lines when the guest did not get to the end.
explain_failure() {
	local log=$1 dumped=0
	grep -q '^### DMESG BEGIN' "$log" && dumped=1
	tr -d '\r' <"$log" | awk -v dumped=$dumped '
		/^### DMESG BEGIN/ { dump = 1 }
		(dump || !dumped) && /^\[ *[0-9]+\.[0-9]+\]/ &&
		    /BUG:|WARNING:|Oops|general protection fault/ && !/traps:/ &&
		    !seen[$0]++ && shown < 3 { from = NR; shown++ }
		/^### DMESG END/ { from = 0 }
		from && NR < from + 16 { print "#   " $0 }'
	if ! grep -q '^### VM DONE' "$log"; then
		echo "# the guest did not finish; its last console lines:"
		tr -d '\r' <"$log" | tail -n 20 | sed 's/^/#   /'
	fi
}

# What the terminal shows of the console (console.awk); all of it lands in
# the log. --run shows everything: its callers read the output.
console_filter() {
	if [ "$mode" = run ] || [ "${HPMEM_VM_CONSOLE:-0}" = 1 ]; then
		cat
	else
		awk -v mode="$mode" -f "$here/console.awk"
	fi
}

# One QEMU run of the guest; the console goes to $3 and, filtered, to the
# terminal. Returns QEMU's status (124: killed after $timeout s).
run_qemu() {
	local vmlinuz=$1 cmdline=$2 log=$3 work=$4
	timeout -k 10 "$timeout" qemu-system-x86_64 -accel tcg "${machine[@]}" \
		-m "$ram" -smp 2,sockets=2,cores=1,threads=1 \
		-object memory-backend-ram,id=m0,size="$mem_per_node" \
		-object memory-backend-ram,id=m1,size="$mem_per_node" \
		-numa node,nodeid=0,cpus=0,memdev=m0 \
		-numa node,nodeid=1,cpus=1,memdev=m1 \
		-kernel "$vmlinuz" -initrd "$work/initramfs.cpio" \
		-append "$cmdline" -pidfile "$work/qemu.pid" \
		-nographic -no-reboot </dev/null 2>&1 | tee "$log" | console_filter
	return "${PIPESTATUS[0]}"
}

# Boot one kernel in one configuration; the last line is
# "# vm SERIES/CONFIG (KVER): N passed, N failed, N skipped", or in demo
# mode "# demo on KVER (CONFIG): OK|FAILED, N s".
boot() {
	local s=$1 config=$2 kver work log res rc start name vmlinuz cmdline
	local attempt pid hung waited
	local -a machine
	if ! kver=$(find_kver "$s"); then
		if [ "$s" = debug ]; then
			echo "# vm debug: no debug kernel (HPMEM_DEBUG_KERNEL) or no $B/kmod/debug/hpmem.ko: run make vmtest-debug"
		else
			echo "# vm $s: no /boot/vmlinuz-$s.* with headers installed"
		fi
		echo "# vm $s/$config (none): 0 passed, 1 failed, 0 skipped"
		demo_fail="$demo_fail $s(not installed)"
		return 1
	fi
	# A private work directory: several people may run the rig at once.
	work=$(mktemp -d "$B/vm/run.XXXXXX")
	build_initramfs "$kver" "$work" "$config" || return 1
	rm -rf "$work/root"
	log=$work/console.log
	name=console-$kver-$config.log
	echo "# vm: booting $kver ($mode, $config), log $B/vm/$name"

	# edu: QEMU's DMA test device; its default mask is 28 bits. The IOMMU
	# must come before the devices it translates on the command line.
	if [ "$config" = iommu ]; then
		machine=(-machine q35 -device intel-iommu)
	else
		machine=(-machine pc)
	fi
	vmlinuz=/boot/vmlinuz-$kver
	# no_timer_check: under TCG on a busy host the IO-APIC timer test can
	# miss its window and 6.1 panics at boot ("timer doesn't work through
	# Interrupt-remapped IO-APIC"); virtual machines skip that test.
	cmdline="console=ttyS0 loglevel=4 panic=-1 mitigations=off no_timer_check rdinit=/init"
	if [ "$kver" = debug ]; then
		vmlinuz=$HPMEM_DEBUG_KERNEL/bzImage
		# defconfig has no x2APIC, hence no interrupt remapping, which
		# type1 wants before it attaches a group; edu's DMA uses no MSI.
		cmdline="$cmdline vfio_iommu_type1.allow_unsafe_interrupts=1"
	fi
	cmdline="$cmdline${cmdline_extra:+ $cmdline_extra}"
	machine+=(-device edu,dma_mask=0xffffffffffffffff)
	start=$(date +%s)
	# A stock kernel under TCG on a loaded host has, rarely, hung in
	# early boot before running /init (hung-task reports for PID 1, QEMU
	# idle): no test ran, and the run waited out the whole timeout. Init
	# prints "### VM INIT" first thing (not at the start of its line: the
	# console's escape codes come before it); without it after $boot_wait s
	# the boot is killed, kept as *.hung.log, and tried once more.
	# Async commands ignore SIGINT: stop QEMU by hand when we are stopped.
	trap 'kill "$(cat "$work/qemu.pid" 2>/dev/null)" 2>/dev/null; exit 130' INT TERM
	for attempt in 1 2; do
		: >"$log"
		rm -f "$work/qemu.pid"
		run_qemu "$vmlinuz" "$cmdline" "$log" "$work" &
		pid=$!
		hung=0
		waited=0
		while kill -0 "$pid" 2>/dev/null; do
			grep -aq '### VM INIT' "$log" && break
			if [ "$waited" -ge "$boot_wait" ]; then
				hung=1
				kill "$(cat "$work/qemu.pid" 2>/dev/null)" 2>/dev/null
				break
			fi
			sleep 2
			waited=$((waited + 2))
		done
		wait "$pid"
		rc=$?
		[ "$hung" = 0 ] && break
		cp "$log" "$B/vm/${name%.log}.hung.log"
		echo "# vm $s: no output from init after ${boot_wait}s: boot hung" \
		     "(console in $B/vm/${name%.log}.hung.log)$([ "$attempt" = 1 ] && echo '; booting again')"
	done
	trap - INT TERM
	[ "$rc" = 124 ] && echo "# vm $s: killed after ${timeout}s"

	if [ "$mode" = test ]; then
		res=$(awk -v need_done=1 -f "$here/tap.awk" "$log")
	else
		res=$(awk -v need_done=1 -v run_mode=1 -f "$here/tap.awk" "$log")
	fi
	echo "$res" | grep -v '^RESULT '
	read -r p f k < <(echo "$res" | sed -n 's/^RESULT //p')
	cp "$log" "$B/vm/$name"
	rm -rf "$work"
	logs="$logs $B/vm/$name"
	if [ "$f" != 0 ] && [ "$mode" != run ] && [ "${HPMEM_VM_CONSOLE:-0}" != 1 ]; then
		explain_failure "$B/vm/$name"
	fi
	if [ "$mode" = demo ]; then
		if [ "$f" = 0 ]; then
			echo "# demo on $kver ($config): OK, $(($(date +%s) - start)) s"
			demo_ok="$demo_ok $kver"
		else
			echo "# demo on $kver ($config): FAILED, $(($(date +%s) - start)) s"
			demo_fail="$demo_fail $kver"
		fi
	else
		echo "# vm $s/$config ($kver): $(($(date +%s) - start)) s, log $B/vm/$name"
		echo "# vm $s/$config ($kver): $p passed, $f failed, $k skipped"
	fi
	[ "$f" = 0 ]
}

mkdir -p "$B/vm"
status=0
logs=
demo_ok=
demo_fail=
for s in $series; do
	for c in $configs; do
		[ "$mode" = demo ] && echo
		boot "$s" "$c" || status=1
	done
done
# The last line names the console logs.
if [ "$mode" = demo ]; then
	echo
	list() { echo "$*" | sed 's/ /, /g'; }
	if [ "$status" = 0 ]; then
		echo "# demo: OK on $(list $demo_ok); console logs: $(list $logs)"
	else
		echo "# demo: FAILED on $(list $demo_fail)${demo_ok:+ (OK on $(list $demo_ok))};" \
		     "console logs: $(list $logs)"
	fi
else
	echo "# vm: console logs:${logs:- none}"
fi
exit $status
