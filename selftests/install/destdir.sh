#!/bin/bash
# SPDX-License-Identifier: MIT
# make install into a DESTDIR, then build app.c against that tree with
# pkg-config (dynamic and -static) and run it; make uninstall must leave
# no file behind. TAP.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
TOP=${TOP:-$(cd "$here/../.." && pwd)}
B=${B:-$TOP/build}
work=$(mktemp -d "${TMPDIR:-/tmp}/hpmem-destdir.XXXXXX")
trap 'rm -rf "$work"' EXIT
# shellcheck source-path=SCRIPTDIR
. "$here/lib.sh"

dest=$work/root
prefix=/usr/local
export PKG_CONFIG_PATH=$dest$prefix/lib/pkgconfig PKG_CONFIG_SYSROOT_DIR=$dest
export PKG_CONFIG_LIBDIR=$PKG_CONFIG_PATH

expected() {
	local f missing=0
	for f in lib/libhpmem.so lib/libhpmem.so.0 lib/libhpmem.a \
		 lib/pkgconfig/hpmem.pc include/hpmem/hpmem.h include/linux/hpmem.h \
		 sbin/hpmemctl share/man/man4/hpmem.4 share/man/man8/hpmemctl.8 \
		 share/man/man3/hpm_init.3 lib/udev/rules.d/60-hpmem.rules \
		 share/doc/hpmem/examples/modprobe.d/hpmem.conf; do
		[ -e "$dest$prefix/$f" ] || { echo "missing $prefix/$f"; missing=1; }
	done
	# The soname, as the linker records it in users.
	readelf -d "$dest$prefix/lib/libhpmem.so" | grep 'SONAME.*\[libhpmem\.so\.0\]' >/dev/null ||
		{ echo "soname is not libhpmem.so.0"; missing=1; }
	return $missing
}

leftovers() {
	local left
	left=$(find "$dest" \( -type f -o -type l \) -printf '%P\n')
	[ -z "$left" ] || { echo "left behind:"; echo "$left"; return 1; }
}

run_dynamic() {
	export LD_LIBRARY_PATH=$dest$prefix/lib
	ldd "$work/app-dyn" | grep "=> $dest$prefix/lib/libhpmem.so.0 " >/dev/null ||
		{ ldd "$work/app-dyn"; return 1; }
	run_app app-dyn
}
run_static() { is_static app-static && run_app app-static; }

tap_plan 7
if ! ok "make install DESTDIR PREFIX=$prefix" \
		make -C "$TOP" --no-print-directory -s install B="$B" DESTDIR="$dest" PREFIX=$prefix; then
	skip_rest 7 "nothing installed"
	tap_done
	exit
fi
ok "installed: libraries (soname libhpmem.so.0), headers, hpmem.pc, hpmemctl, man pages, udev rule, modprobe.d example" expected
ok "app.c built with pkg-config --cflags --libs hpmem" build_app app-dyn
ok "app.c runs against the installed shared library" run_dynamic
ok "app.c built -static with pkg-config --static" build_app app-static -static
ok "the static app needs no libhpmem.so and runs" run_static
make -C "$TOP" --no-print-directory -s uninstall B="$B" DESTDIR="$dest" PREFIX=$prefix >/dev/null 2>&1
ok "make uninstall leaves no file behind" leftovers
tap_done
