# SPDX-License-Identifier: MIT
# shellcheck shell=bash disable=SC2154 # here and work come from the caller
# Shared by the install tests: a small TAP writer, and building and running
# app.c against an installed libhpmem the way users do, with pkg-config.
# Sourced; expects $here (this directory) and $work (a scratch directory).

tap_n=0
tap_fail=0
tap_skip=0
tap_plan() { echo "TAP version 13"; echo "1..$1"; }
# ok DESC COMMAND...: one result, the command's output kept as comments.
ok() {
	local desc=$1 out rc t0=$SECONDS
	shift
	out=$("$@" 2>&1)
	rc=$?
	tap_n=$((tap_n + 1))
	if [ $rc = 0 ]; then
		echo "ok $tap_n $desc"
		echo "# $((SECONDS - t0)) s"
	else
		echo "$out" | tail -n 20 | sed 's/^/# /'
		echo "not ok $tap_n $desc"
		tap_fail=$((tap_fail + 1))
	fi
	return $rc
}
skip_rest() {
	while [ "$tap_n" -lt "$1" ]; do
		tap_n=$((tap_n + 1))
		tap_skip=$((tap_skip + 1))
		echo "ok $tap_n # SKIP $2"
	done
}
tap_done() {
	echo "# Totals: pass:$((tap_n - tap_fail - tap_skip)) fail:$tap_fail xfail:0 xpass:0 skip:$tap_skip error:0"
	[ $tap_fail = 0 ]
}

# build_app NAME [-static]: app.c against whichever hpmem.pc pkg-config
# finds (the caller sets PKG_CONFIG_PATH/SYSROOT_DIR), into $work/NAME.
build_app() {
	local flags
	if [ "${2:-}" = -static ]; then
		flags=$(pkg-config --static --cflags --libs hpmem) || return 1
	else
		flags=$(pkg-config --cflags --libs hpmem) || return 1
	fi
	echo "cc ${2:-} app.c $flags"
	# shellcheck disable=SC2086
	cc -std=gnu11 -Wall -Wextra -Werror ${2:-} -o "$work/$1" "$here/app.c" $flags
}

# run_app NAME: on the anon backend (no module, no hugepages needed), in a
# region of its own so that concurrent runs cannot meet.
run_app() {
	HPMEM_OPTS="--backend anon --region install-$$-$1" "$work/$1"
}

# A static program must not need the shared library.
is_static() {
	! readelf -d "$work/$1" 2>/dev/null | grep 'NEEDED.*libhpmem' >/dev/null
}
