#!/bin/bash
# SPDX-License-Identifier: MIT
# The Debian packages as an administrator gets them: dpkg-buildpackage -b
# from a clean export of HEAD (uncommitted changes are not in it), lintian
# at its default level, the packages' contents, then libhpmem-dev and
# hpmem-tools installed with apt, app.c built against them with pkg-config
# and run, and everything purged again. TAP.
#
# hpmem-dkms is not installed: its postinst would build and install the
# module for the running and the newest kernel, system-wide, under the same
# name and version as "scripts/dkms-install.sh --check" in make test. Its
# /usr/src tree is checked to be exactly what "make dkms-src" writes, which
# that check builds for both kernels; HPMEM_DEB_DKMS=1 also builds the
# packaged tree here with DKMS, in a private DKMS tree (about a minute).
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
TOP=${TOP:-$(cd "$here/../.." && pwd)}
work=$(mktemp -d "${TMPDIR:-/tmp}/hpmem-deb.XXXXXX")
# shellcheck source-path=SCRIPTDIR
. "$here/lib.sh"

plan=11
tap_plan $plan
why=
if [ "$(id -u)" != 0 ]; then
	why="needs root (apt-get install of the built packages)"
elif ! git -C "$TOP" rev-parse --verify -q HEAD >/dev/null; then
	why="$TOP is not a git checkout"
else
	for t in dpkg-buildpackage dh dh_dkms lintian fakeroot pkg-config; do
		command -v $t >/dev/null || { why="$t missing (scripts/deps.sh test)"; break; }
	done
fi
if [ -n "$why" ]; then
	skip_rest $plan "$why"
	tap_done
	exit 4
fi

version=$(git -C "$TOP" show HEAD:VERSION)
user_pkgs="libhpmem0 libhpmem-dev hpmem-tools"
arch=$(dpkg --print-architecture)
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
installed() { [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" = installed ]; }

# Another run of this test (another checkout, same machine) installs and
# purges the same packages: one at a time.
exec 9>/run/lock/hpmem-deb-test.lock
flock -w 900 9 || { skip_rest $plan "another run holds /run/lock/hpmem-deb-test.lock"; tap_done; exit 4; }
for p in $user_pkgs hpmem-dkms; do
	if installed "$p"; then
		skip_rest $plan "$p is installed on this machine; not touching it"
		tap_done
		exit 4
	fi
done
cleanup() {
	local p del=
	for p in $user_pkgs; do
		installed "$p" && del="$del $p"
	done
	# shellcheck disable=SC2086 # a list of names
	[ -z "$del" ] || dpkg --purge $del >/dev/null 2>&1
	rm -rf "$work"
}
trap cleanup EXIT

src=$work/hpmem-$version
build() {
	mkdir -p "$src" && git -C "$TOP" archive HEAD | tar -x -C "$src" || return 1
	if ! (cd "$src" && DEB_BUILD_OPTIONS=${DEB_BUILD_OPTIONS:-"parallel=$(nproc) noddebs"} \
		dpkg-buildpackage -b -us -uc) >"$work/build.log" 2>&1; then
		tail -n 30 "$work/build.log"
		return 1
	fi
	ls "$work"/*.deb
}
if ! ok "dpkg-buildpackage -b -us -uc builds hpmem-dkms, libhpmem0, libhpmem-dev, hpmem-tools" build; then
	skip_rest $plan "no packages"
	tap_done
	exit
fi

deb() { echo "$work/${1}_${version}_$2.deb"; }
changelog_version() {
	local v
	v=$(cd "$src" && dpkg-parsechangelog -S Version)
	[ "$v" = "$version" ] || [ "${v%-*}" = "$version" ] ||
		{ echo "debian/changelog says $v, VERSION says $version"; return 1; }
}
ok "debian/changelog's version is VERSION ($version)" changelog_version

lint() {
	local out
	out=$(lintian --tag-display-limit 0 "$work"/hpmem_*_"$arch".changes 2>&1)
	echo "$out"
	! echo "$out" | grep -E '^[EW]: '
}
ok "lintian (default level): no E: or W: tags" lint

# Path lists of each package, for the content checks.
contents() { dpkg-deb -c "$1" | awk '{ print $6 }' | sed 's|^\./|/|'; }
has() {
	local pkg=$1 f rc=0 list
	shift
	list=$(contents "$pkg")
	for f in "$@"; do
		grep -qx -- "$f" <<<"$list" || { echo "${pkg##*/}: no $f"; rc=1; }
	done
	return $rc
}
user_contents() {
	local ml=/usr/lib/$multiarch rc=0
	has "$(deb libhpmem0 "$arch")" "$ml/libhpmem.so.0" "$ml/libhpmem.so.$version" || rc=1
	has "$(deb libhpmem-dev "$arch")" /usr/include/hpmem/hpmem.h /usr/include/linux/hpmem.h \
		"$ml/libhpmem.so" "$ml/libhpmem.a" "$ml/pkgconfig/hpmem.pc" \
		/usr/share/man/man3/hpm_init.3.gz || rc=1
	has "$(deb hpmem-tools "$arch")" /usr/sbin/hpmemctl /usr/share/man/man8/hpmemctl.8.gz || rc=1
	# Only hpmem-dkms carries DKMS (dh_dkms once put it in every package).
	for p in libhpmem0 libhpmem-dev hpmem-tools; do
		if contents "$(deb $p "$arch")" | grep '^/usr/src/' >/dev/null; then
			echo "$p ships /usr/src"; rc=1
		fi
		if dpkg-deb -f "$(deb $p "$arch")" Depends | grep dkms >/dev/null; then
			echo "$p depends on dkms"; rc=1
		fi
	done
	return $rc
}
ok "libhpmem0, libhpmem-dev, hpmem-tools: library, headers, hpmem.pc, hpmemctl, man pages" user_contents

dkms_contents() {
	local d x=$work/dkms-x ref=$work/dkms-ref

	d=$(deb hpmem-dkms all)
	has "$d" /lib/udev/rules.d/60-hpmem.rules /usr/share/man/man4/hpmem.4.gz \
		/usr/share/doc/hpmem-dkms/examples/modprobe.d/hpmem.conf || return 1
	dpkg-deb -f "$d" Depends | grep dkms >/dev/null || { echo "no dependency on dkms"; return 1; }
	dpkg-deb -x "$d" "$x" || return 1
	grep -qx "PACKAGE_VERSION=\"$version\"" "$x/usr/src/hpmem-$version/dkms.conf" ||
		{ echo "dkms.conf has no PACKAGE_VERSION=\"$version\""; return 1; }
	grep -q 'GROUP="hpmem", MODE="0660"' "$x/lib/udev/rules.d/60-hpmem.rules" || return 1
	make -C "$src" --no-print-directory -s dkms-src DESTDIR="$ref" || return 1
	diff -r "$ref/usr/src/hpmem-$version" "$x/usr/src/hpmem-$version"
}
ok "hpmem-dkms: /usr/src/hpmem-$version is make dkms-src's tree, udev rule, hpmem(4), modprobe.d example" dkms_contents

dkms_build() {
	local k x=$work/dkms-x
	for k in /lib/modules/*/build/Makefile; do
		k=${k#/lib/modules/}
		k=${k%%/*}
	done
	[ -n "${k:-}" ] || { echo "no kernel headers"; return 1; }
	mkdir -p "$work/dkms-tree" || return 1
	dkms build -m hpmem -v "$version" -k "$k" --sourcetree "$x/usr/src" \
		--dkmstree "$work/dkms-tree" || return 1
	ls "$work/dkms-tree/hpmem/$version/$k/"*/module/hpmem.ko*
}
if [ "${HPMEM_DEB_DKMS:-0}" = 1 ] && command -v dkms >/dev/null; then
	ok "hpmem-dkms's tree builds with DKMS (private tree)" dkms_build
else
	skip_rest $((tap_n + 1)) "DKMS build of the packaged tree: HPMEM_DEB_DKMS=1 (make test's dkms check builds the same tree)"
fi

apt_install() {
	apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=300 \
		"$(deb libhpmem0 "$arch")" "$(deb libhpmem-dev "$arch")" \
		"$(deb hpmem-tools "$arch")" || return 1
	for p in $user_pkgs; do
		installed "$p" || { echo "$p not installed"; return 1; }
	done
}
if ! ok "apt-get install libhpmem-dev hpmem-tools (and libhpmem0)" apt_install; then
	skip_rest $((plan - 1)) "not installed"
else
	unset PKG_CONFIG_PATH PKG_CONFIG_SYSROOT_DIR PKG_CONFIG_LIBDIR
	ok "app.c built against the package with pkg-config --cflags --libs hpmem" build_app app-dyn
	run_dynamic() {
		# /lib is /usr/lib on a merged-/usr system.
		ldd "$work/app-dyn" | grep -E "=> (/usr)?/lib/$multiarch/libhpmem.so.0 " >/dev/null ||
			{ ldd "$work/app-dyn"; return 1; }
		run_app app-dyn && command -v hpmemctl
	}
	ok "app.c runs with the packaged libhpmem.so.0; hpmemctl is on PATH" run_dynamic
	run_static() { build_app app-static -static && is_static app-static && run_app app-static; }
	ok "app.c built -static against libhpmem-dev runs" run_static
fi

purge() {
	local p f
	# shellcheck disable=SC2086 # a list of names
	dpkg --purge $user_pkgs || return 1
	for p in $user_pkgs; do
		installed "$p" && { echo "$p still installed"; return 1; }
	done
	for f in /usr/include/hpmem /usr/include/linux/hpmem.h /usr/sbin/hpmemctl \
		 /usr/lib/"$multiarch"/libhpmem.so.0 /usr/lib/"$multiarch"/pkgconfig/hpmem.pc; do
		[ ! -e "$f" ] || { echo "$f is still there"; return 1; }
	done
}
ok "dpkg --purge removes them and their files" purge
tap_done
