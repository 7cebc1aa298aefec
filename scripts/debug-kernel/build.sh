#!/bin/bash
# SPDX-License-Identifier: MIT
# Build the debug kernel (KASAN, kmemleak, lockdep, DEBUG_VM, fault
# injection) from Debian's linux-source-6.1 once per machine, cached
# outside the tree under a key made of the config fragment, the source
# package's version and the compiler. Prints the cache directory, which
# holds bzImage and the configured tree that hpmem.ko builds against.
#
# Usage: scripts/debug-kernel/build.sh   (HPMEM_CACHE: cache root,
#        default /var/cache/hpmem)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
frag=$here/debug.config
tarball=/usr/src/linux-source-6.1.tar.xz
root=${HPMEM_CACHE:-/var/cache/hpmem}

[ -f "$tarball" ] || { echo "debug-kernel: $tarball missing (apt-get install linux-source-6.1)" >&2; exit 1; }
srcver=$(dpkg-query -W -f='${Version}' linux-source-6.1 2>/dev/null || echo unknown)
key=$( { cat "$frag"; echo "$srcver"; gcc --version | head -1; } | sha256sum | cut -c1-12)
dir=$root/debug-kernel-6.1-$key
mkdir -p "$root"

exec 9>"$dir.lock"
flock 9
if [ -f "$dir/.done" ]; then
	echo "$dir"
	exit 0
fi

rm -rf "$dir"
mkdir -p "$dir/src"
start=$(date +%s)
echo "debug-kernel: extracting $tarball ($srcver)" >&2
tar -xJf "$tarball" -C "$dir/src" --strip-components=1
cd "$dir/src"
make -s x86_64_defconfig >&2
scripts/kconfig/merge_config.sh -m -O . .config "$frag" >/dev/null
make -s olddefconfig >&2

# A fragment line that did not survive olddefconfig (a missing dependency)
# would silently change what the run tests: refuse instead.
bad=0
while read -r line; do
	case "$line" in
	CONFIG_*=n)	opt=${line%=n}
			grep -q "^$opt=" .config && { echo "debug-kernel: $opt still set" >&2; bad=1; } ;;
	CONFIG_*=*)	grep -qx "$line" .config || { echo "debug-kernel: $line did not take" >&2; bad=1; } ;;
	esac
done < <(grep -v '^#' "$frag" | grep .)
[ $bad = 0 ] || exit 1

echo "debug-kernel: building bzImage and modules_prepare (about 12 minutes on 2 cores)" >&2
make -s -j"$(nproc)" bzImage modules_prepare >"$dir/build.log" 2>&1 ||
	{ tail -30 "$dir/build.log" >&2; exit 1; }
# Every driver is built in, so vmlinux's symbols are all there is: the
# module's modpost needs them to resolve its imports.
cp vmlinux.symvers Module.symvers
cp arch/x86/boot/bzImage "$dir/bzImage"
touch "$dir/.done"
echo "debug-kernel: built in $(( $(date +%s) - start )) s" >&2
echo "$dir"
