# SPDX-License-Identifier: MIT
# Judge a log of TAP programs framed by "### BEGIN name" / "### END name rc=N"
# (written by selftests/vm/init in the guest and by selftests/run.sh on the
# host). A program fails on "not ok", a missing plan or totals line, fewer
# results than planned, or an exit status other than 0 (pass) or 4 (skip).
# Kernel log lines carrying BUG:/WARNING:/Oops/general protection fault
# (case-sensitive, as the kernel prints them; "traps:" lines are user
# processes faulting, which their tests report) fail the run, as do
# "### KMSG name ..." lines (markers that appeared while "name" ran).
# Variables: need_done=1 requires "### VM DONE"; run_mode=1 judges
# "### RUN END rc=N" instead of TAP. Last output line: "RESULT pass fail skip".

function bad(msg) { fail++; print "# FAIL: " msg }

function end_prog(rc) {
	if (plan < 0)
		bad(cur ": no TAP plan")
	else if (n < plan && !planskip)
		bad(cur ": " n " of " plan " planned results")
	if (!totals && !planskip)
		bad(cur ": no totals line")
	if (rc == 124 || rc == 143)
		bad(cur ": timed out")
	else if (rc != 0 && rc != 4 && !progfail)
		bad(cur ": exit status " rc)
	inprog = 0
}

BEGIN { pass = fail = skip = 0; inprog = 0; done = 0; kern = 0 }

{ sub(/\r$/, "") }

/^\[ *[0-9]+\.[0-9]+\]/ && /BUG:|WARNING:|Oops|general protection fault/ && !/traps:/ {
	if (!(($0) in kseen)) {
		kseen[$0] = 1
		kern++
		print "# KERNEL: " $0
	}
	next
}

/^### BEGIN / {
	if (inprog)
		bad(cur ": no end marker")
	cur = $3; inprog = 1; plan = -1; n = 0; totals = 0; progfail = 0
	planskip = 0
	next
}

/^### END / {
	rc = $0; sub(/.*rc=/, "", rc)
	if (inprog)
		end_prog(rc + 0)
	next
}

/^### KMSG / {
	if (!($3 in kmsg)) {
		kmsg[$3] = 1
		bad($3 ": kernel log markers while it ran")
	}
	print "# " $0
	next
}

/^### RUN END rc=/ {
	rc = $0; sub(/.*rc=/, "", rc)
	ran = 1
	if (rc + 0 == 0) pass++
	else bad("command exited with status " rc)
	next
}

/^### VM DONE/ { done = 1; next }
/^### MODULE LOAD FAILED/ { bad("hpmem.ko did not load"); next }

inprog && /^1\.\.[0-9]+/ {
	plan = substr($1, 4) + 0
	if (plan == 0 && /# *SKIP/) { skip++; planskip = 1 }
	next
}
inprog && /^# Totals:/ { totals = 1; next }
inprog && /^Bail out!/ { progfail = 1; bad(cur ": " $0); next }
inprog && /^not ok / { n++; progfail = 1; bad(cur ": " $0); next }
inprog && /^ok / {
	n++
	if (/# *[Ss][Kk][Ii][Pp]/) skip++
	else pass++
	next
}

END {
	if (inprog)
		bad(cur ": did not finish")
	if (run_mode && !ran)
		bad("command did not finish")
	if (kern)
		bad("kernel log has " kern " BUG:/WARNING:/Oops/GPF lines")
	if (need_done && !done)
		bad("guest did not finish (timeout, panic or hang)")
	print "RESULT " pass " " fail " " skip
}
