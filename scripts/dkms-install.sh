#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Install hpmem.ko's source for DKMS, then build (and install) the module.
#
# Usage: scripts/dkms-install.sh [--build-only|--check|--remove] [KVER...]
#   (default)     add, build and install for KVER (default: uname -r)
#   --build-only  add and build for KVER (default: every kernel with headers)
#   --check       like --build-only, then remove it all again (CI)
#   --remove      remove every build and the source under /usr/src
# Needs root, dkms and the kernels' headers (linux-headers-<version>).
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
version=$(cat "$top/VERSION")
src=/usr/src/hpmem-$version
action=install
case "${1:-}" in
--build-only)	action=build; shift ;;
--check)	action=check; shift ;;
--remove)	action=remove; shift ;;
-h|--help)	sed -n '5,10p' "$0" | sed 's/^# //'; exit 0 ;;
-*)		echo "unknown option $1" >&2; exit 2 ;;
esac

remove() {
	if dkms status -m hpmem -v "$version" | grep -q .; then
		dkms remove -m hpmem -v "$version" --all
	fi
	rm -rf "$src"
}

if [ "$action" = remove ]; then
	remove
	exit 0
fi

command -v dkms >/dev/null ||
	{ echo "dkms is not installed (apt-get install dkms)" >&2; exit 1; }

kvers="$*"
if [ -z "$kvers" ]; then
	if [ "$action" = install ]; then
		kvers=$(uname -r)
	else
		for d in /lib/modules/*/build; do
			[ -f "$d/Makefile" ] && kvers="$kvers ${d%/build}"
		done
		kvers=$(echo "$kvers" | sed 's|/lib/modules/||g')
	fi
fi
[ -n "$kvers" ] || { echo "no kernel headers installed" >&2; exit 1; }
for k in $kvers; do
	[ -f "/lib/modules/$k/build/Makefile" ] ||
		{ echo "no headers for $k (apt-get install linux-headers-$k)" >&2; exit 1; }
done

# A fresh copy of exactly what the module build needs.
remove
make -C "$top" --no-print-directory -s dkms-src DESTDIR= DKMS_SRC="$src"

dkms add -m hpmem -v "$version"
status=0
for k in $kvers; do
	dkms build -m hpmem -v "$version" -k "$k" || { status=1; continue; }
	if [ "$action" = install ]; then
		dkms install -m hpmem -v "$version" -k "$k" || status=1
	fi
done
if [ "$action" = check ]; then
	remove
elif [ "$action" = install ] && [ $status = 0 ]; then
	echo "installed: modprobe hpmem pages=64,64  (see hpmem(4))"
fi
exit $status
