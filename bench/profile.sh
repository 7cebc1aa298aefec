#!/bin/bash
# SPDX-License-Identifier: MIT
# Instructions per operation of one single-threaded scenario on each side,
# counted by callgrind over the measured loop only: deterministic where the
# timings of a shared machine are not. For the owner of a row that misses
# its target; the hottest hpmem functions are listed below the counts.
#
# Usage: bench/profile.sh SCENARIO [OPS]   e.g. bench/profile.sh malloc/fixed64
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
TOP=${TOP:-$(cd "$here/.." && pwd)}
B=${B:-$TOP/build}
BIN=$B/bench

id=${1:?usage: $0 SCENARIO [OPS]}
ops=${2:-20000}
per_call=0
case "$id" in
*/2thr|init/*)	echo "profile.sh: $id is not a single-threaded loop" >&2; exit 2 ;;
mempool/*)	hfn=mp_loop dfn=mp_loop gfn= ;;
ring/*)		hfn=ring_loop dfn=ring_loop gfn= ;;
malloc/*)	hfn=bench_malloc_hpm dfn=bench_malloc_rte gfn=bench_malloc_glibc ;;
mbuf/single)	hfn=mbuf_single dfn=mbuf_single gfn= ;;
mbuf/bulk32)	hfn=mbuf_bulk dfn=mbuf_bulk gfn= ;;
memzone/lookup)	hfn=mz_lookup dfn=mz_lookup gfn= ;;
memzone/reserve) hfn=mz_reserve dfn=mz_reserve gfn= per_call=1000 ;;
*)		echo "profile.sh: unknown scenario $id" >&2; exit 2 ;;
esac
command -v valgrind >/dev/null || { echo "profile.sh: needs valgrind" >&2; exit 2; }

out=$(mktemp -d /tmp/hpmem-profile.XXXXXX)
trap 'rm -rf "$out"' EXIT

# Ir of the toggled function per operation: 3 sub-runs of $ops each (the
# window fill of the malloc rows is included: under 2% at the default).
count() {
	local side=$1 fn=$2 tot n
	shift 2
	valgrind --tool=callgrind --toggle-collect="$fn" \
		--callgrind-out-file="$out/$side.cg" "$@" --only "$id" \
		--ops "$ops" --init-runs 1 >/dev/null 2>"$out/$side.err" ||
		{ echo "$side: failed (see below)"; tail -5 "$out/$side.err"; return; }
	tot=$(callgrind_annotate "$out/$side.cg" 2>/dev/null |
	      awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1 }')
	n=$((per_call ? 3 * per_call : 3 * ops))
	awk -v s="$side" -v t="$tot" -v n="$n" \
		'BEGIN { printf "%-6s %8.1f instructions/op\n", s, t / n }'
}

echo "$id: callgrind, $ops ops x 3 sub-runs per side"
HPMEM_OPTS="--backend anon" count hpmem "$hfn" "$BIN/hpm_bench"
[ -x "$BIN/dpdk_bench" ] &&
	BENCH_NO_HUGE=1 count dpdk "$dfn" "$BIN/dpdk_bench"
[ -n "$gfn" ] && HPMEM_OPTS="--backend anon" count glibc "$gfn" "$BIN/hpm_bench"
if [ -f "$out/hpmem.cg" ]; then
	echo
	echo "hottest hpmem functions (exclusive Ir):"
	callgrind_annotate "$out/hpmem.cg" 2>/dev/null |
		sed -n '/file:function/,/^$/p' | sed -n '3,12p'
fi
