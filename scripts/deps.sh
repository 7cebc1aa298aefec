#!/bin/bash
# SPDX-License-Identifier: MIT
# Install what a job needs on Debian 12; a fast no-op when all is present.
# Usage: scripts/deps.sh test|demo|bench|all
set -euo pipefail

job=${1:-all}

base=(build-essential pkg-config clang libnuma-dev cpio xz-utils kmod
      busybox-static qemu-system-x86 linux-headers-amd64 linux-image-amd64
      linux-source-6.1 dwarves dkms)
# The debug kernel (make vmtest-debug, part of make test) builds from source.
debug_kernel=(flex bison bc libelf-dev libssl-dev)
# libFuzzer's runtime (clang -fsanitize=fuzzer, make test's fuzz targets):
# clang-14 only recommends it.
fuzz=(libclang-rt-14-dev)
# make test builds the Debian packages (dpkg-buildpackage, debian/) and
# runs lintian on them.
packaging=(dpkg-dev debhelper dh-dkms fakeroot lintian)
case "$job" in
demo)		want=("${base[@]}") ;;
# make test ends with the benchmark smoke run, which compares against DPDK.
test|all)	want=("${base[@]}" "${debug_kernel[@]}" libdpdk-dev "${fuzz[@]}"
		      "${packaging[@]}") ;;
bench)		want=("${base[@]}" libdpdk-dev) ;;
*)		echo "usage: $0 test|demo|bench|all" >&2; exit 2 ;;
esac

installed() {
	[ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" = installed ]
}

missing=()
for p in "${want[@]}"; do
	installed "$p" || missing+=("$p")
done

# The 6.12 backport kernel: package names carry the version and several are
# published, so any installed image with matching headers will do; otherwise
# the newest one apt knows is chosen at install time.
have612=
for img in $(dpkg-query -W -f='${Package} ${db:Status-Status}\n' \
		'linux-image-6.12.*+deb12-amd64-unsigned' 2>/dev/null |
		awk '$2 == "installed" { print $1 }'); do
	ver=${img#linux-image-}
	ver=${ver%-unsigned}
	if installed "linux-headers-$ver"; then
		have612=$ver
	fi
done

if [ ${#missing[@]} -eq 0 ] && [ -n "$have612" ]; then
	exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
	echo "deps.sh: missing packages (${missing[*]:-} ${have612:-linux 6.12});" \
	     "run as root to install them" >&2
	exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -q

if [ -z "$have612" ]; then
	ver=$(apt-cache search --names-only \
		'^linux-image-6\.12\.[0-9]+\+deb12-amd64-unsigned$' |
	      sed -n 's/^linux-image-\(6\.12\.[0-9]*+deb12-amd64\)-unsigned .*/\1/p' |
	      sort -V | tail -n 1)
	if [ -z "$ver" ]; then
		echo "deps.sh: no linux-image-6.12.*+deb12-amd64-unsigned in apt" >&2
		exit 1
	fi
	missing+=("linux-image-$ver-unsigned" "linux-headers-$ver")
fi

echo "deps.sh: installing ${missing[*]}"
apt-get install -y -q --no-install-recommends "${missing[@]}"
