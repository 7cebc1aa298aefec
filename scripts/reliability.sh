#!/bin/bash
# SPDX-License-Identifier: MIT
# The figures of docs/RELIABILITY.md, read from the logs of the last
# make test (guest console logs, host suite logs): prints a markdown block,
# or with --doc FILE replaces FILE's "reliability:begin/end" block with it.
#
# Usage: scripts/reliability.sh [--doc FILE]   (B: build dir)
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
TOP=${TOP:-$(cd "$here/.." && pwd)}
B=${B:-$TOP/build}
doc=
[ "${1:-}" = --doc ] && doc=${2:?--doc FILE}

# One program's TAP comments, from a console log.
prog() {
	awk -v p="### BEGIN $2" -v e="### END $2 " \
		'index($0, p) == 1 { on = 1; next } index($0, e) == 1 { on = 0 } on' "$1" |
		tr -d '\r'
}

# Lines that report a kernel problem in a console log's dmesg dump (the
# tests' own TAP lines name some of these words: not counted).
reports() {
	tr -d '\r' <"$1" |
		awk '/^### DMESG BEGIN/ { on = 1; next } /^### DMESG END/ { on = 0 } on' |
		grep -acE 'BUG:|WARNING:|possible (circular|recursive) locking|Oops|general protection fault|unreferenced object'
}

block() {
	local log name k tot=0
	echo "Figures of the last \`make test\` on $(date -u '+%Y-%m-%d'), from its logs"
	echo "(\`scripts/reliability.sh\`; regenerate with \`make test\` and"
	echo "\`scripts/reliability.sh --doc docs/RELIABILITY.md\`)."
	echo
	echo "| guest boot | ioctls fuzzed | other fuzzed calls | processes killed | pages leaked after the storm | load/unload cycles | MemFree change per node | allocation-failure rounds | kernel reports |"
	echo "|---|--:|--:|--:|--:|--:|---|---|--:|"
	for log in "$B"/vm/console-*-plain.log "$B"/vm/console-*-iommu.log; do
		[ -f "$log" ] || continue
		name=${log##*/console-}
		name=${name%.log}
		local fz ks leak cyc mf fi rep
		fz=$(prog "$log" kmod-fuzz | sed -n 's/^# \([0-9]*\) ioctls, \([0-9]*\) other calls.*/\1 \2/p' | head -1)
		ks=$(prog "$log" lib-killstorm | sed -n 's/^# \([0-9]*\) processes SIGKILLed.*/\1/p' | head -1)
		leak=$(prog "$log" lib-killstorm |
			sed -n 's/^# node [0-9]*: free \([0-9]*\) before, \([0-9]*\) after.*/\1 \2/p' |
			awk '{ d += $1 - $2 } END { if (NR) print d }')
		cyc=$(prog "$log" kmod-reload | sed -n 's/^# \([0-9]*\) load\/use\/unload cycles.*/\1/p' | head -1)
		mf=$(prog "$log" kmod-reload | sed -n 's/^# node \([0-9]*\) MemFree+pcp: .*(\(.*\))/node\1 \2/p' | paste -sd';' - | sed 's/;/; /g')
		fi=$(prog "$log" kmod-faultinject | sed -n 's/^# \([0-9]*\) rounds: \([0-9]*\) succeeded, \([0-9]*\) failed with ENOMEM.*/\1 (\3 ENOMEM)/p' | head -1)
		rep=$(reports "$log")
		tot=$((tot + rep))
		echo "| $name | ${fz%% *} | ${fz##* } | ${ks:--} | ${leak:--} | ${cyc:--} | ${mf:--} | ${fi:-skipped (stock kernel)} | $rep |"
	done
	echo
	for k in "$B"/test-logs/fuzz-*.log; do
		[ -f "$k" ] || continue
		case "$k" in *fuzz-build.log) continue ;; esac
		t=${k##*/fuzz-}
		echo "- libFuzzer target ${t%.log}: $(sed -n 's/^Done \([0-9]*\) runs in \([0-9]*\) second.*/\1 inputs in \2 s/p' "$k" | tail -1)."
	done
	for k in tsan-anon san-anon host-anon; do
		[ -f "$B/test-logs/$k.log" ] || continue
		echo "- host suite $k: $(grep -c '^ok ' "$B/test-logs/$k.log") ok," \
			"$(grep -c '^not ok ' "$B/test-logs/$k.log") not ok."
	done
	echo "- Kernel reports (KASAN, lockdep, kmemleak, BUG/WARNING/Oops) over all boots: $tot."
}

if [ -z "$doc" ]; then
	block
	exit 0
fi
out=$(block)
tmp=$(mktemp)
awk -v blk="$out" '
	/<!-- reliability:begin -->/ { print; print blk; skip = 1; next }
	/<!-- reliability:end -->/ { skip = 0 }
	!skip' "$doc" >"$tmp" && cat "$tmp" >"$doc"
rm -f "$tmp"
