#!/bin/bash
# Targets under a seccomp filter (progs/seccomp: hand-written classic BPF,
# no libseccomp).  A system call the loader injects is, to the kernel, the
# target's own: a filter that forbids one must make the loader refuse,
# naming the call and the action, before anything changes — the target
# stays alive, with the same memory map and open files, and goes on
# behaving as before.  A filter that allows what the loader needs (and
# kills on execve, like QEMU's -sandbox spawn=deny) must not stop a patch
# or its undo.
. "$(dirname "$0")/lib.sh"

P=$QP_SRC/tests/integration/progs/seccomp
build_tree "$P/orig" "$T/app" || { fail "build the program"; finish; exit 1; }
"$QP_BIN/qpatch-build" -q "$T/app" "$P/patched" -o "$T/fix.qpatch" --target "$T/app/sandboxed" >"$T/build.out" 2>&1
check "patch built" grep -Eq "replaced +work" "$T/build.out"

N=0
# run_target MODE...: start the program under filter MODE; it prints value=1001
run_target() {
	N=$((N + 1))
	OUT=$T/target$N.out
	start "$OUT" "$T/app/sandboxed" "$@"
	PID=$TARGET_PID
	wait_match "$OUT" "^(mode|strict)" && wait_match "$OUT" "^value=1001$"
}
state() { cat "/proc/$PID/maps"; ls "/proc/$PID/fd"; }
# behaves VALUE: the next lines the program prints show VALUE
behaves() {
	local n
	n=$(wc -l <"$OUT")
	wait_lines "$OUT" $((n + 2)) && [ "$(tail -n 1 "$OUT")" = "value=$1" ]
}
seccomp_of() { awk '$1 == "Seccomp:" { m = $2 } $1 == "Seccomp_filters:" { f = $2 } END { print m "/" f }' "/proc/$PID/status"; }
load() { "$QP_BIN/qpatch-load" "$@" >"$T/load$N.out" 2>&1; }
stop_target() { kill -9 "$PID"; wait "$PID" 2>/dev/null; }

# refused WHAT MESSAGE MODE...: the loader refuses under filter MODE with
# MESSAGE (a regex); nothing changes; the target lives on as before.
refused() {
	local what=$1 msg=$2 before rc; shift 2
	check "$what: target runs" run_target "$@"
	check "$what: target under seccomp (mode/filters $(seccomp_of))" not grep -q '^0/' <<<"$(seccomp_of)"
	before=$(state)
	load "$PID" "$T/fix.qpatch"
	rc=$?
	check "$what: refused (exit $rc)" test "$rc" -eq 1
	check "$what: the message names the call and the action" \
		grep -Eq "^qpatch-load: process $PID $msg; nothing was changed$" "$T/load$N.out"
	check "$what: target alive" alive "$PID"
	check "$what: same memory map and open files" test "$before" = "$(state)"
	check "$what: old behaviour" behaves 1001
	check "$what: nothing listed" sh -c "'$QP_BIN/qpatch-load' --list $PID | grep -q 'no patches applied'"
	stop_target
}

# (a) kills on memfd_create, the first call the loader injects
refused "kill on memfd_create" \
	"runs under a seccomp filter that would kill it on 'memfd_create' \(SECCOMP_RET_KILL_PROCESS\)" kill-memfd
# (b) EPERM for mprotect, the last one; and a filter that judges arguments
# (MemoryDenyWriteExecute: no mprotect adding PROT_EXEC)
refused "errno on mprotect" \
	"runs under a seccomp filter that would make 'mprotect' fail with EPERM \(SECCOMP_RET_ERRNO\)" errno-mprotect
refused "mprotect with PROT_EXEC" \
	"runs under a seccomp filter that would make 'mprotect' fail with EPERM \(SECCOMP_RET_ERRNO\)" mdwe
# the fd memfd_create will return is predicted (the lowest free one)
refused "kill on ftruncate of the next fd" \
	"runs under a seccomp filter that would kill it on 'ftruncate' \(SECCOMP_RET_KILL_PROCESS\)" fd next
# (d) a filter installed by another thread for every thread (TSYNC)
refused "TSYNC filter of a worker" \
	"runs under a seccomp filter that would kill it on 'memfd_create' \(SECCOMP_RET_KILL_PROCESS\)" tsync
# (e) strict mode in the thread that would run the calls
refused "strict mode" "runs in seccomp strict mode \(thread [0-9]+\), which would kill that thread on 'memfd_create'" strict

# applied PROGRAM-ARGS...: the patch goes in, works, and is undone
applied() {
	local what=$1 before; shift
	check "$what: target runs" run_target "$@"
	before=$(state)
	load "$PID" "$T/fix.qpatch"
	check "$what: applied" grep -q "^applied patch" "$T/load$N.out"
	check "$what: new behaviour" behaves 5001
	load --undo "$PID"
	check "$what: undone" grep -q "^undid the last patch" "$T/load$N.out"
	check "$what: old behaviour again" behaves 1001
	check "$what: back to the memory map and files before" test "$before" = "$(state)"
}

# (c) QEMU's spawn=deny and elevateprivileges=deny, W|X refused, LOG for
# memfd_create: allows all the loader needs
applied "spawn=deny filter" spawn
check "spawn: under a filter (mode/filters $(seccomp_of))" test "$(seccomp_of)" = 2/1
# rollback under the filter: munmap and the rest are allowed too
before=$(state)
for step in 2 3 5 7 8; do
	QPATCH_FAULT_AT=$step "$QP_BIN/qpatch-load" "$PID" "$T/fix.qpatch" >"$T/f$step.out" 2>&1
	check "spawn: fails at step $step" grep -q "injected failure after step $step" "$T/f$step.out"
	check "spawn: unchanged after step $step" test "$before" = "$(state)"
done
check "spawn: still old behaviour" behaves 1001
# the filter is in force: execve kills the program (SIGSYS, 128 + 31)
kill -USR1 "$PID"
wait "$PID" 2>/dev/null
rc=$?
check "spawn: the filter kills on execve (exit $rc)" test "$rc" -eq 159

applied "ftruncate of an fd in use killed" fd 4
stop_target
# (d) a filter of a worker thread alone: the thread that runs the calls has none
applied "filter of one worker, no TSYNC" worker
check "worker: that thread is filtered" sh -c "grep -l '^Seccomp:.*2' /proc/$PID/task/*/status | grep -q ."
stop_target

# undo: a filter that came after the patch forbids its munmap: refused
# before the code is restored; the patch stays in force
check "late filter: target runs" run_target late-munmap
load "$PID" "$T/fix.qpatch"
check "late filter: applied" behaves 5001
kill -USR2 "$PID"
check "late filter: installed" wait_match "$OUT" "^filtered$"
patched=$(state)
load --undo "$PID"
check "late filter: undo refused, naming munmap" grep -q \
	"^qpatch-load: process $PID runs under a seccomp filter that would make 'munmap' fail with EPERM (SECCOMP_RET_ERRNO); nothing was changed$" "$T/load$N.out"
check "late filter: patch still in force" behaves 5001
check "late filter: nothing changed" test "$patched" = "$(state)"
stop_target

# filters that cannot be read: a loader itself under seccomp gets EACCES
# from PTRACE_SECCOMP_GET_FILTER: refused, unless --ignore-seccomp
blind() { "$T/app/sandboxed" exec-allow "$QP_BIN/qpatch-load" "$@"; }
check "unreadable: target runs" run_target spawn
before=$(state)
blind "$PID" "$T/fix.qpatch" >"$T/blind1.out" 2>&1
check "unreadable: refused" grep -q "^qpatch-load: cannot read the seccomp filters of process $PID (thread $PID): PTRACE_SECCOMP_GET_FILTER of filter 0: Permission denied.*--ignore-seccomp.*; nothing was changed$" "$T/blind1.out"
check "unreadable: unchanged" test "$before" = "$(state)"
blind --ignore-seccomp "$PID" "$T/fix.qpatch" >"$T/blind2.out" 2>&1
check "unreadable, --ignore-seccomp: applied with a note" grep -q "^note: the seccomp filters of process $PID (thread $PID) were not checked" "$T/blind2.out"
check "unreadable, --ignore-seccomp: new behaviour" behaves 5001
blind --ignore-seccomp --undo "$PID" >"$T/blind3.out" 2>&1
check "unreadable, --ignore-seccomp: undone" behaves 1001
stop_target
# a target without a filter needs no reading
check "no filter: target runs" run_target none
blind "$PID" "$T/fix.qpatch" >"$T/blind4.out" 2>&1
check "no filter, loader under seccomp: applied" behaves 5001
stop_target
finish
