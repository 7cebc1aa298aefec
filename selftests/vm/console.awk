# SPDX-License-Identifier: MIT
# What selftests/vm/run.sh shows on the terminal while a guest runs; the
# whole console goes to the log file in $B/vm/ regardless.
#   mode=demo: the demo's own output (between "### RUN BEGIN" and
#              "### RUN END").
#   mode=test: one line per TAP program with its counts; every "not ok"
#              with the diagnostics its test printed before it, every SKIP
#              (they say why), "Bail out!", kernel log markers and
#              "### KMSG" lines as they come.
# tap.awk judges the run from the log afterwards; this only chooses lines.

function marker() {
	return /BUG:|WARNING:|Oops|general protection fault/ && !/traps:/
}

function show(s) { print s; fflush() }

{ sub(/\r$/, "") }

/^### MODULE LOAD FAILED/ { show($0); next }

mode == "demo" {
	if (/^### RUN BEGIN/) { on = 1; next }
	if (/^### RUN END/) { on = 0; next }
	if (on)
		show($0)
	next
}

# ---- mode=test ----

/^# nodes: / && !inprog { show($0); next }

/^### BEGIN / {
	name = $3; inprog = 1; p = f = k = 0; nbuf = 0; test = ""
	next
}

/^### END / {
	rc = $0; sub(/.*rc=/, "", rc); rc += 0
	why = ""
	if (rc == 124 || rc == 143)
		why = " (timed out)"
	else if (rc != 0 && rc != 4)
		why = " (exit status " rc ")"
	show(sprintf("%s %s: %d passed, %d failed, %d skipped%s",
		     (f || why != "") ? "FAIL" : "  ok", name, p, f, k, why))
	inprog = 0
	next
}

/^### KMSG / || /^Bail out!/ || (/^\[ *[0-9]+\.[0-9]+\]/ && marker()) {
	show("    " $0)
	next
}

!inprog { next }

# The diagnostics of the test running now: shown only if it fails.
/^#  RUN / { nbuf = 0; test = $3; next }
/^#/ {
	if (nbuf == 40)
		for (i = 1; i < nbuf; i++)
			buf[i] = buf[i + 1]
	else
		nbuf++
	buf[nbuf] = $0
	next
}

/^not ok / {
	f++
	for (i = 1; i <= nbuf; i++)
		show("    " buf[i])
	show("    " $0)
	nbuf = 0
	next
}

/^ok / {
	if (/# *[Ss][Kk][Ii][Pp]/) {
		k++
		# kselftest leaves the name out of a skipped test's line
		show("    " $0 (test != "" && /^ok [0-9]+ #/ ? "  (" test ")" : ""))
	} else {
		p++
	}
	nbuf = 0
	next
}

/^1\.\.0.*# *[Ss][Kk][Ii][Pp]/ { k++; show("    " $0); next }
