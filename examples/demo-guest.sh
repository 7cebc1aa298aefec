#!/bin/sh
# SPDX-License-Identifier: MIT
# The demo as the QEMU guest runs it (selftests/vm/run.sh --demo makes this
# its command, busybox sh): examples/demo, then what hpmemctl sees while the
# demo still holds its memory (the pool per node, the regions, the demo's
# mempools), then that every page is free again once it has exited.
# The last line is "demo: ... OK" or "demo: FAILED ..." and the exit status
# agrees; each failure also has a "demo: FAILED: why" line of its own.

region=demo
out=/tmp/demo.out
fails=0
shown=0

fail() {
	echo "demo: FAILED: $*"
	fails=$((fails + 1))
}

# Print the lines of the demo's output not printed yet (whole lines only).
flush_out() {
	n=$(wc -l <"$out")
	if [ "$n" -gt "$shown" ]; then
		sed -n "$((shown + 1)),${n}p" "$out"
		shown=$n
	fi
}

# show CMD...: the command line, then its output indented; CMD's status.
show() {
	echo "\$ $*"
	"$@" >/tmp/show.out 2>&1
	rc=$?
	sed 's/^./    &/' /tmp/show.out
	return $rc
}

pages_in_use() {
	t=0
	for n in /sys/class/hpmem/hpmem/node*; do
		t=$((t + $(cat "$n/inuse_pages")))
	done
	echo $t
}

if [ ! -x /bin/demo ]; then
	fail "examples/demo is not in the guest (make examples)"
	echo "demo: FAILED"
	exit 1
fi
if [ ! -c /dev/hpmem ]; then
	fail "/dev/hpmem is missing: hpmem.ko did not load"
	echo "demo: FAILED"
	exit 1
fi

# The demo stays up after its tour ("serve") until SIGUSR1, so that its
# region, pools and DMA mappings can be looked at from outside.
: >"$out"
demo --region "$region" serve 600 >"$out" 2>&1 &
pid=$!
while kill -0 "$pid" 2>/dev/null && ! grep -q '^demo: serving' "$out"; do
	flush_out
	sleep 0.2
done
flush_out

if grep -q '^demo: serving' "$out"; then
	echo
	echo "demo: while it runs, hpmemctl shows the pools, the regions and its mempools:"
	show hpmemctl nodes || fail "hpmemctl nodes"
	show hpmemctl regions || fail "hpmemctl regions"
	grep -qw "$region" /tmp/show.out ||
		fail "hpmemctl regions does not list region '$region'"
	show hpmemctl app "$region" mempools
	case $? in
	0)	grep -q demo_mb0 /tmp/show.out ||
			fail "hpmemctl app $region mempools does not list demo_mb0" ;;
	2)	echo "    (this hpmemctl has no 'app' command yet)" ;;
	*)	fail "hpmemctl app $region mempools" ;;
	esac
	echo
	kill -USR1 "$pid"
fi
wait "$pid"
rc=$?
flush_out
[ "$rc" = 0 ] || fail "examples/demo exited with status $rc"

# The region goes with its last user; give deferred releases a moment.
i=0
while [ "$(pages_in_use)" != 0 ] && [ $i -lt 50 ]; do
	sleep 0.1
	i=$((i + 1))
done
echo
echo "demo: after it exited:"
show hpmemctl nodes || fail "hpmemctl nodes"
inuse=$(pages_in_use)
if [ "$inuse" = 0 ]; then
	echo "demo: all pages free again"
else
	fail "$inuse pages still in use after the demo exited"
fi

if [ "$fails" = 0 ]; then
	echo "demo: library tour, device DMA, hpmemctl views, pages returned: OK"
	exit 0
fi
echo "demo: FAILED ($fails failure(s) above)"
exit 1
