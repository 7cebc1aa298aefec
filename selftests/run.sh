#!/bin/bash
# SPDX-License-Identifier: MIT
# Run every test: host library tests (plain, ASan/UBSan, then TSan) on the anon
# and, when hugepages can be reserved, hugetlbfs backends; make install into
# a DESTDIR; the guest suite on both kernels, each without and with an
# IOMMU; a DKMS build; the Debian packages; the benchmark smoke run. TAP
# throughout; the last line is "N passed, N failed, N skipped" and the exit
# status is non-zero on failure.
#
# Usage: selftests/run.sh [--host-only]
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
TOP=${TOP:-$(cd "$here/.." && pwd)}
B=${B:-$TOP/build}
export TOP B

host_only=0
case "${1:-}" in
--host-only)	host_only=1 ;;
"")		;;
*)		echo "usage: $0 [--host-only]" >&2; exit 2 ;;
esac

prog_timeout=${HPMEM_PROG_TIMEOUT:-600}
huge_pages=${HPMEM_HUGE_PAGES:-600}
logdir=$B/test-logs
mkdir -p "$logdir"
npass=0
nfail=0
nskip=0

# Kernel markers, matched case-sensitively as the kernel prints them.
# "traps:" lines are user processes faulting (the test reports those
# itself), not the kernel.
MARKS='BUG:|WARNING:|Oops|general protection fault'
kmsg_ok=0
dmesg >/dev/null 2>&1 && kmsg_ok=1
kmsg_lines() { dmesg | grep -E "$MARKS" | grep -v 'traps:'; }
kmsg_count() {
	if [ $kmsg_ok = 1 ]; then
		kmsg_lines | wc -l
	else
		echo 0
	fi
}
kmsg_seen=$(kmsg_count)

# Like the guest's init: frame a program's TAP and report kernel log
# markers that appeared while it ran.
run_prog() {
	local name=$1 rc n
	shift
	echo "### BEGIN $name"
	timeout -k 10 "$prog_timeout" "$@" 2>&1
	rc=$?
	echo "### END $name rc=$rc"
	n=$(kmsg_count)
	if [ "$n" -gt "$kmsg_seen" ]; then
		kmsg_lines | tail -n $((n - kmsg_seen)) |
			sed "s/^/### KMSG $name /"
	fi
	kmsg_seen=$n
}

# Judge a framed log with tap.awk and add its counts to the totals.
judge() {
	local log=$1 res p f s
	res=$(awk -f "$here/vm/tap.awk" "$log")
	echo "$res" | grep -v '^RESULT '
	read -r p f s < <(echo "$res" | sed -n 's/^RESULT //p')
	npass=$((npass + p)) nfail=$((nfail + f)) nskip=$((nskip + s))
	echo "# $2: $p passed, $f failed, $s skipped"
}

skip() {
	echo "ok - $1 # SKIP $2"
	nskip=$((nskip + 1))
}

# run_set KIND BACKEND_OPTS LABEL [BUILD [EXCEPT]]: every binary in
# BUILD/selftests/KIND (BUILD defaults to $B) but those named in EXCEPT.
run_set() {
	local kind=$1 opts=$2 label=$3 build=${4:-$B} except=" ${5:-} "
	local log=$logdir/$3.log t found=0
	: >"$log"
	for t in "$build/selftests/$kind"/*; do
		if [ ! -f "$t" ] || [ ! -x "$t" ] || [[ $except == *" ${t##*/} "* ]]; then
			continue
		fi
		found=1
		# Not in a pipeline: run_prog keeps kmsg_seen in this shell.
		HPMEM_OPTS="$opts" run_prog "$label-${t##*/}" "$t" >"$log.one"
		cat "$log.one"
		cat "$log.one" >>"$log"
	done
	if [ $found = 0 ]; then
		skip "$label" "no tests in $build/selftests/$kind"
		return
	fi
	rm -f "$log.one"
	judge "$log" "$label"
}

export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=0:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}

echo "TAP version 13"
echo "# host tests, backend anon"
run_set host "--backend anon" host-anon
# The same with dynamic memory, the default behind an IOMMU: every suite
# must hold under both models (dynmem sets its own limits).
echo "# host tests, backend anon, dynamic memory"
run_set host "--backend anon --socket-limit 256,256" host-anon-dynamic "$B" dynmem
run_set san "--backend anon" san-anon
# The DPDK program ported in docs/MIGRATING-FROM-DPDK.md must do what the
# original does: every packet through the ring in order, every mbuf back.
if [ -x "$B/examples/host/pipeline" ]; then
	if HPMEM_OPTS="--backend anon" timeout -k 10 "$prog_timeout" \
		"$B/examples/host/pipeline" 200000 >"$logdir/example-pipeline.log" 2>&1; then
		echo "ok - examples/pipeline, the DPDK port: $(tail -n 1 "$logdir/example-pipeline.log")"
		npass=$((npass + 1))
	else
		tail -n 5 "$logdir/example-pipeline.log" | sed 's/^/# /'
		echo "not ok - examples/pipeline, the DPDK port (log $logdir/example-pipeline.log)"
		nfail=$((nfail + 1))
	fi
else
	skip "examples/pipeline" "not built (make examples)"
fi
# Threads against each other (malloc, mempool, ring, mbuf, thread slots)
# under TSan; any report fails the program (exitcode 66).
echo "# host tests, TSan, backend anon"
TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=0:exitcode=66} \
	run_set tsan "--backend anon" tsan-anon

# The library must build warning-free with clang as well as gcc.
if ! command -v clang >/dev/null; then
	skip "clang build" "clang not installed"
elif make -C "$TOP/lib" --no-print-directory CC=clang B="$B/clang" \
		>"$logdir/clang-build.log" 2>&1; then
	echo "ok - library builds with clang -Wall -Wextra -Werror"
	npass=$((npass + 1))
else
	tail -n 20 "$logdir/clang-build.log" | sed 's/^/# /'
	echo "not ok - clang build (log $logdir/clang-build.log)"
	nfail=$((nfail + 1))
fi

# libFuzzer targets (selftests/fuzz), a bounded run each with a fixed seed
# (HPMEM_FUZZ_SECONDS, HPMEM_FUZZ_SEED); the corpus grows in $B/fuzz/, a
# crash leaves its reproducer there. Longer runs: see each target's top.
fuzz_secs=${HPMEM_FUZZ_SECONDS:-30}
fuzz_seed=${HPMEM_FUZZ_SEED:-20240601}
if ! command -v clang >/dev/null; then
	skip "fuzz targets" "clang not installed"
elif ! { make -C "$TOP/lib" --no-print-directory B="$B" fuzz &&
	 make -C "$TOP/selftests" --no-print-directory B="$B" KS_DIR="$B/kselftest" fuzz; } \
		>"$logdir/fuzz-build.log" 2>&1; then
	tail -n 20 "$logdir/fuzz-build.log" | sed 's/^/# /'
	echo "not ok - fuzz build, clang -fsanitize=fuzzer (log $logdir/fuzz-build.log)"
	nfail=$((nfail + 1))
else
	for f in "$B/selftests/fuzz"/*; do
		[ -x "$f" ] || continue
		t=${f##*/}
		mkdir -p "$B/fuzz/$t/corpus"
		echo "# fuzz $t: ${fuzz_secs}s, -seed=$fuzz_seed"
		if (cd "$B/fuzz/$t" && timeout -k 10 $((fuzz_secs + 120)) "$f" \
			-max_total_time="$fuzz_secs" -seed="$fuzz_seed" \
			-artifact_prefix="$B/fuzz/$t/" corpus "$here/fuzz/corpus/$t") \
				>"$logdir/fuzz-$t.log" 2>&1; then
			grep -E '^Done [0-9]+ runs' "$logdir/fuzz-$t.log" | sed 's/^/# /'
			echo "ok - fuzz $t"
			npass=$((npass + 1))
		else
			grep -E 'ERROR|SUMMARY|fuzz/|Test unit written' "$logdir/fuzz-$t.log" |
				head -n 10 | sed 's/^/# /'
			echo "not ok - fuzz $t: reproducer in $B/fuzz/$t/, rerun with $f <file>" \
			     "(log $logdir/fuzz-$t.log)"
			nfail=$((nfail + 1))
		fi
	done
fi

# HPM_DEBUG=1 builds add heap trailer cookies, mempool object cookies and
# mbuf checks in every operation; the tests of those SKIP in the others.
echo "# host tests, HPM_DEBUG=1 build, backend anon"
dbg=$B/debug
if make -C "$TOP/lib" --no-print-directory HPM_DEBUG=1 B="$dbg" \
		>"$logdir/debug-build.log" 2>&1 &&
   make -C "$TOP/selftests" --no-print-directory HPM_DEBUG=1 B="$dbg" \
		KS_DIR="$B/kselftest" host >>"$logdir/debug-build.log" 2>&1; then
	run_set host "--backend anon" debug-anon "$dbg"
else
	tail -n 20 "$logdir/debug-build.log" | sed 's/^/# /'
	echo "not ok - HPM_DEBUG=1 build (log $logdir/debug-build.log)"
	nfail=$((nfail + 1))
fi

# make install as users run it: into a DESTDIR, an application built
# against that tree with pkg-config (shared and -static), make uninstall.
echo "# install: make install DESTDIR=..."
run_prog install-destdir "$here/install/destdir.sh" >"$logdir/install.log"
cat "$logdir/install.log"
judge "$logdir/install.log" install-destdir

# hugetlbfs: reserve pages on top of what is there (other users of the
# machine keep theirs) and give back exactly what was added.
huge_dir=
huge_added=0
huge_cleanup() {
	if [ -n "$huge_dir" ]; then
		umount "$huge_dir" 2>/dev/null
		rmdir "$huge_dir" 2>/dev/null
		huge_dir=
	fi
	if [ "$huge_added" -gt 0 ]; then
		local cur
		cur=$(cat /proc/sys/vm/nr_hugepages)
		echo $((cur - huge_added)) >/proc/sys/vm/nr_hugepages 2>/dev/null
		huge_added=0
	fi
}
trap huge_cleanup EXIT
trap 'huge_cleanup; exit 130' INT TERM

huge_setup() {
	local before after
	[ "$(id -u)" = 0 ] || { echo "not root"; return 1; }
	grep -q hugetlbfs /proc/filesystems || { echo "no hugetlbfs"; return 1; }
	before=$(cat /proc/sys/vm/nr_hugepages) || { echo "no nr_hugepages"; return 1; }
	if ! echo $((before + huge_pages)) >/proc/sys/vm/nr_hugepages 2>/dev/null; then
		echo "cannot write /proc/sys/vm/nr_hugepages"
		return 1
	fi
	after=$(cat /proc/sys/vm/nr_hugepages)
	huge_added=$((after - before))
	if [ "$huge_added" -lt "$huge_pages" ]; then
		echo "only $huge_added of $huge_pages 2 MiB pages could be reserved"
		return 1
	fi
	huge_dir=$(mktemp -d /tmp/hpmem-huge.XXXXXX)
	if ! mount -t hugetlbfs -o pagesize=2M hpmem-test "$huge_dir" 2>/dev/null; then
		echo "cannot mount hugetlbfs"
		return 1
	fi
}

# Not in $(...): huge_setup sets huge_dir and huge_added for the cleanup.
if huge_setup >"$logdir/huge-skip.txt"; then
	echo "# host tests, backend hugetlbfs ($huge_added pages, $huge_dir)"
	run_set host "--backend hugetlbfs --huge-dir $huge_dir" host-hugetlbfs
	run_set san "--backend hugetlbfs --huge-dir $huge_dir" san-hugetlbfs
else
	skip "hugetlbfs backend" "$(cat "$logdir/huge-skip.txt")"
fi
huge_cleanup

if [ $host_only = 0 ]; then
	# Two kernels, each booted without and with an IOMMU (edu DMA
	# through sysfs, then through VFIO): four summaries.
	echo "# guest tests (QEMU, both kernels, with and without an IOMMU)"
	"$here/vm/run.sh" --kernel all --config all 2>&1 | tee "$logdir/vm.log"
	vm_rc=${PIPESTATUS[0]}
	got=0
	while read -r p f s; do
		npass=$((npass + p)) nfail=$((nfail + f)) nskip=$((nskip + s))
		got=$((got + 1))
	done < <(sed -n 's/^# vm [^ ]* ([^)]*): \([0-9]*\) passed, \([0-9]*\) failed, \([0-9]*\) skipped$/\1 \2 \3/p' \
		"$logdir/vm.log")
	if [ "$got" -lt 4 ] || { [ "$vm_rc" != 0 ] && [ "$nfail" = 0 ]; }; then
		echo "not ok - guest suite (exit $vm_rc, $got of 4 summaries)"
		nfail=$((nfail + 1))
	fi

	# The same suite behind the IOMMU on the debug kernel (KASAN, kmemleak,
	# lockdep, fault injection): one summary. HPMEM_NO_DEBUG_KERNEL=1 skips
	# it for a quick local run; CI never sets it.
	if [ "${HPMEM_NO_DEBUG_KERNEL:-0}" = 1 ]; then
		skip "guest suite on the debug kernel" "HPMEM_NO_DEBUG_KERNEL=1"
	else
		echo "# guest tests on the debug kernel"
		make -C "$TOP" --no-print-directory B="$B" vmtest-debug 2>&1 |
			tee "$logdir/vm-debug.log"
		vm_rc=${PIPESTATUS[0]}
		got=0 dfail=0
		while read -r p f s; do
			npass=$((npass + p)) nfail=$((nfail + f)) nskip=$((nskip + s))
			got=$((got + 1)) dfail=$f
		done < <(sed -n 's/^# vm debug[^ ]* ([^)]*): \([0-9]*\) passed, \([0-9]*\) failed, \([0-9]*\) skipped$/\1 \2 \3/p' \
			"$logdir/vm-debug.log")
		if [ "$got" != 1 ] || { [ "$vm_rc" != 0 ] && [ "$dfail" = 0 ]; }; then
			echo "not ok - guest suite on the debug kernel (exit $vm_rc, $got of 1 summary)"
			nfail=$((nfail + 1))
		fi
	fi

	# The module as users install it: dkms add/build for every kernel with
	# headers, then removed again (needs root, writes /usr/src, /var/lib/dkms).
	if [ "$(id -u)" != 0 ] || ! command -v dkms >/dev/null ||
	   [ ! -x "$TOP/scripts/dkms-install.sh" ]; then
		skip "dkms build" "needs root, dkms and scripts/dkms-install.sh"
	elif "$TOP/scripts/dkms-install.sh" --check >"$logdir/dkms.log" 2>&1; then
		echo "ok - dkms build (log $logdir/dkms.log)"
		npass=$((npass + 1))
	else
		tail -n 20 "$logdir/dkms.log" | sed 's/^/# /'
		echo "not ok - dkms build (log $logdir/dkms.log)"
		nfail=$((nfail + 1))
	fi

	# The Debian packages: built from HEAD, lintian, installed with apt,
	# an application built against them, purged. Root only (it SKIPs
	# otherwise); about a minute of CPU, mostly the build and lintian.
	echo "# Debian packages"
	run_prog install-deb "$here/install/deb.sh" >"$logdir/deb.log"
	cat "$logdir/deb.log"
	judge "$logdir/deb.log" install-deb

	if [ -f "$TOP/bench/Makefile" ]; then
		echo "# benchmark smoke run"
		if make -C "$TOP" --no-print-directory B="$B" bench-smoke 2>&1 |
				tee "$logdir/bench-smoke.log"; then
			echo "ok - bench-smoke"
			npass=$((npass + 1))
		else
			echo "not ok - bench-smoke"
			nfail=$((nfail + 1))
		fi
	else
		skip "bench-smoke" "no bench/Makefile"
	fi
fi

# docs/RELIABILITY.md's figures come from these logs: always in the log
# directory, and into the doc itself with HPMEM_RELIABILITY_DOC=FILE.
if [ $host_only = 0 ]; then
	"$TOP/scripts/reliability.sh" >"$logdir/reliability.md"
	[ -n "${HPMEM_RELIABILITY_DOC:-}" ] &&
		"$TOP/scripts/reliability.sh" --doc "$HPMEM_RELIABILITY_DOC"
fi

echo "$npass passed, $nfail failed, $nskip skipped"
[ "$nfail" = 0 ]
