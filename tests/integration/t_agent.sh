#!/bin/bash
# The in-process agent (libqpatch-agent.so, qpatch-agentctl) on a
# multi-threaded program that made itself non-dumpable: a loader without
# CAP_SYS_PTRACE may not trace it and says so; through the agent the
# patch applies, lists and undoes, the record being the one the loader
# reads and writes (each undoes what the other applied); a thread inside
# the function, a thread that blocks the stop signal, a truncated patch
# and a client that is not root are refused, the program unchanged.
. "$(dirname "$0")/lib.sh"

P=$QP_SRC/tests/integration/progs/agent
SO=$(dirname "$QP_BIN")/lib/libqpatch-agent.so
CTL_BIN=$QP_BIN/qpatch-agentctl
check "agent library built" test -f "$SO"
# a sanitized build's agent needs its runtime first
PRE=$SO
asan=$(ldd "$SO" | awk '/libasan/ { print $3 }')
[ -n "$asan" ] && PRE="$asan $SO" && export ASAN_OPTIONS=verify_asan_link_order=0:detect_leaks=0
# no patch mapping left after an undo: not so in a sanitized build, where
# the sanitizer's allocator keeps the agent's freed memory (holding the
# patch's addresses) in mappings that look like coroutine stacks, so undo
# conservatively keeps the mapping (and says so)
gone() { [ -n "$asan" ] || no_qpatch_maps "$1"; }

mkdir -p "$T/ctl"
build_tree "$P/orig" "$T/app" || { fail "build the program"; finish; exit 1; }
"$QP_BIN/qpatch-build" -q "$T/app" "$P/patched" -o "$T/fix.qpatch" --target "$T/app/agentapp" \
	>"$T/build.out" 2>&1
check "patch built" grep -Eq "replaced +work" "$T/build.out"

LD_PRELOAD=$PRE start "$T/out" "$T/app/agentapp" "$T/ctl"
PID=$TARGET_PID
check "target runs, non-dumpable" wait_match "$T/out" "^dumpable=0$"
check "old code runs" wait_match "$T/out" "^result=1014$"
check "agent thread runs" sh -c "cat /proc/$PID/task/*/comm | grep -q '^qpatch-agent\$'"
for i in $(seq 50); do [ -S "/run/qpatch/agent-$PID.sock" ] && break; sleep 0.1; done
check "agent socket, root's only" test "$(stat -c %a:%u "/run/qpatch/agent-$PID.sock")" = 600:0
CTL=$(for t in /proc/$PID/task/*; do [ "$(cat "$t/comm")" = agentapp ] && basename "$t"; done |
	sort -n | tail -n 1) # the control thread, the last made

# The mappings of files and memfds (a patch's): the agent's own work in
# the process may add or drop anonymous memory (a malloc arena), so those
# are left out.
named_maps() { awk 'NF >= 6 && $6 != "[heap]"' "/proc/$1/maps"; }
# unchanged NAME: the named mappings are as before and the old code runs
unchanged() {
	named_maps "$PID" >"$T/maps.$1"
	check "$1: mappings unchanged" cmp -s "$T/maps.before" "$T/maps.$1"
	check "$1: old code still runs" result_is "$T/out" 1014
}

# --- the loader, without CAP_SYS_PTRACE, may not trace it
named_maps "$PID" >"$T/maps.before"
setpriv --inh-caps=-sys_ptrace --bounding-set=-sys_ptrace \
	"$QP_BIN/qpatch-load" "$PID" "$T/fix.qpatch" >"$T/noptrace.out" 2>&1
check "loader without CAP_SYS_PTRACE refused" test $? -eq 1
check "it says why and names the agent ($(cat "$T/noptrace.out"))" \
	grep -q "may not trace it (it made itself non-dumpable.*in-process agent" "$T/noptrace.out"
unchanged noptrace

# --- apply, list, undo through the agent
"$CTL_BIN" "$PID" "$T/fix.qpatch" >"$T/apply.out" 2>&1
check "applied through the agent ($(head -n 1 "$T/apply.out"))" test $? -eq 0
check "says what it did" grep -q "^applied patch '[0-9a-f]*' to process $PID: 2 function(s) redirected" "$T/apply.out"
check "every other thread stopped (5)" grep -q "all 5 other threads, stopped by the agent" "$T/apply.out"
check "new code runs" result_is "$T/out" 5014
"$CTL_BIN" --list "$PID" >"$T/list.out" 2>&1
check "--list through the agent" test $? -eq 0
check "it lists the patch and work()" sh -c "grep -q \"^1\\. patch '.*' on 'agentapp'\" '$T/list.out' &&
	grep -Eq '^   work 0x[0-9a-f]+ -> 0x[0-9a-f]+$' '$T/list.out'"
"$QP_BIN/qpatch-load" --list "$PID" >"$T/ldlist.out" 2>&1
check "the loader (root, ptrace allowed) lists the agent's patch" \
	grep -Eq "^   work 0x[0-9a-f]+ -> 0x[0-9a-f]+$" "$T/ldlist.out"
"$CTL_BIN" "$PID" "$T/fix.qpatch" >"$T/again.out" 2>&1
check "the same patch again: refused" sh -c "test $? -eq 1 && grep -q 'already applied' '$T/again.out'"
"$CTL_BIN" --undo "$PID" >"$T/undo.out" 2>&1
check "undone through the agent ($(head -n 1 "$T/undo.out"))" test $? -eq 0
check "old code again" result_is "$T/out" 1014
check "no patch mapping left" gone "$PID"
"$CTL_BIN" --undo "$PID" >"$T/undo2.out" 2>&1
check "nothing left to undo: refused" sh -c "test $? -eq 1 && grep -q 'has no patch applied' '$T/undo2.out'"

# --- the loader and the agent undo what the other applied
"$CTL_BIN" "$PID" "$T/fix.qpatch" >"$T/x1.out" 2>&1 &&
	"$QP_BIN/qpatch-load" --undo "$PID" >"$T/x2.out" 2>&1
check "applied by the agent, undone by the loader" test $? -eq 0
check "old code (loader's undo)" result_is "$T/out" 1014
"$QP_BIN/qpatch-load" "$PID" "$T/fix.qpatch" >"$T/x3.out" 2>&1
check "applied by the loader" test $? -eq 0
check "new code (loader's apply)" result_is "$T/out" 5014
"$CTL_BIN" --list "$PID" >"$T/x4.out" 2>&1
check "the agent lists the loader's patch" grep -Eq "^   hold 0x[0-9a-f]+ -> 0x[0-9a-f]+$" "$T/x4.out"
"$CTL_BIN" --undo "$PID" >"$T/x5.out" 2>&1
check "the agent undoes the loader's patch" test $? -eq 0
check "old code (agent's undo)" result_is "$T/out" 1014
check "no patch mapping left (interop)" gone "$PID"

# --- a thread inside hold(): refused naming it, unchanged
touch "$T/ctl/inhold"
check "busy: control thread in hold()" wait_match "$T/out" "^in hold$"
named_maps "$PID" >"$T/maps.before"
"$CTL_BIN" --retries 20 --retry-delay 5 "$PID" "$T/fix.qpatch" >"$T/busy.out" 2>&1
check "busy: refused" test $? -eq 1
check "busy: names the thread and hold() ($(cat "$T/busy.out"))" \
	grep -Eq "thread $CTL (is executing 'hold'|will return into 'hold' \(frame #).*after 20 attempts.*left unchanged" "$T/busy.out"
unchanged busy
touch "$T/ctl/release"
check "busy: hold() left" wait_match "$T/out" "^out of hold$"

# --- a thread that blocks every signal: refused naming it, unchanged
touch "$T/ctl/block"
check "blocked: thread blocks signals" wait_match "$T/out" "^blocking$"
named_maps "$PID" >"$T/maps.before"
"$CTL_BIN" "$PID" "$T/fix.qpatch" >"$T/blocked.out" 2>&1
check "blocked: refused" test $? -eq 1
check "blocked: names the thread ($(cat "$T/blocked.out"))" \
	grep -Eq "thread [0-9]+ \('agentapp'\) blocks signal [0-9]+ \(SIGRTMAX-3\), which the agent stops threads with: it did not stop within 2000 ms" "$T/blocked.out"
unchanged blocked
touch "$T/ctl/unblock"
check "blocked: thread done" wait_match "$T/out" "^unblocked$"

# --- a truncated patch: refused by the agent's format check, unchanged
head -c 700 "$T/fix.qpatch" >"$T/trunc.qpatch"
named_maps "$PID" >"$T/maps.before"
"$CTL_BIN" "$PID" "$T/trunc.qpatch" >"$T/trunc.out" 2>&1
check "truncated: refused" test $? -eq 1
check "truncated: says so ($(cat "$T/trunc.out"))" grep -q "trunc.qpatch': truncated: 700 bytes" "$T/trunc.out"
unchanged truncated

# --- a client that is not root
named_maps "$PID" >"$T/maps.before"
setpriv --reuid=nobody --regid=nogroup --clear-groups "$CTL_BIN" --list "$PID" >"$T/nobody.out" 2>&1
check "nobody: refused" test $? -eq 1
check "nobody: root only ($(cat "$T/nobody.out"))" grep -q "root only" "$T/nobody.out"
unchanged nobody

# --- a process of nobody's: an abstract socket, the sender checked
chmod 755 "$T" "$T/app"
cp "$SO" "$T/agent.so" && chmod 644 "$T/agent.so"
PRE2="$T/agent.so"
[ -n "$asan" ] && PRE2="$asan $T/agent.so"
setpriv --reuid=nobody --regid=nogroup --clear-groups env LD_PRELOAD="$PRE2" \
	"$T/app/agentapp" "$T/ctl2" >"$T/out2" 2>&1 &
PIDS+=($!)
PID2=$!
check "nobody's process runs" wait_match "$T/out2" "^result=1014$"
for i in $(seq 50); do grep -q "@qpatch-agent-$PID2" /proc/net/unix && break; sleep 0.1; done
check "its agent listens on an abstract socket" grep -q "@qpatch-agent-$PID2\$" /proc/net/unix
setpriv --reuid=nobody --regid=nogroup --clear-groups "$CTL_BIN" --list "$PID2" >"$T/peer.out" 2>&1
rc=$?
check "nobody's request: refused ($rc)" test $rc -eq 1
check "nobody's request: sender's uid named ($(cat "$T/peer.out"))" \
	grep -q "takes requests from root only (uid 0), not from uid $(id -u nobody)" "$T/peer.out"

"$CTL_BIN" --list "$PID2" >"$T/own.out" 2>&1
rc=$?
check "root's request to a non-dumpable process of nobody's: refused ($rc)" test $rc -eq 1
check "it cannot open its own memory ($(cat "$T/own.out"))" \
	grep -q "cannot open its own memory (/proc/self/mem): Permission denied: a non-dumpable process that does not run as root may not" "$T/own.out"

# --- call sites rewritten too
"$CTL_BIN" --rewrite-calls "$PID" "$T/fix.qpatch" >"$T/calls.out" 2>&1
check "--rewrite-calls through the agent ($(head -n 1 "$T/calls.out"))" test $? -eq 0
check "call sites rewritten" grep -Eq "^[1-9][0-9]* call site\(s\) rewritten" "$T/calls.out"
check "new code runs (call sites)" result_is "$T/out" 5014
"$CTL_BIN" --undo "$PID" >"$T/calls-undo.out" 2>&1
check "undone (call sites)" test $? -eq 0
check "old code (call sites put back)" result_is "$T/out" 1014

# --- apply/undo cycles while the workers call work()
for i in 1 2 3; do
	"$CTL_BIN" "$PID" "$T/fix.qpatch" >>"$T/cycle.out" 2>&1 &&
		"$CTL_BIN" --undo "$PID" >>"$T/cycle.out" 2>&1 || fail "cycle $i"
done
check "three more apply/undo cycles, target alive" alive "$PID"
check "old code after the cycles" result_is "$T/out" 1014
check "no patch mapping left at the end" gone "$PID"
# --- a hand-written library through the agent: dlopen()ed by the agent
# thread, work() redirected, listed, undone and the library unloaded
printf '%s\n' '#include <qpatch/so.h>' 'QPATCH_TARGET("agentapp");' \
	'static long fixed_work(long x) { return x * 2 + 7000; }' \
	'QPATCH_REPLACE(work, fixed_work);' >"$T/fix_work.c"
cc -shared -fPIC -O2 -I"$QP_SRC/format/include" -o "$T/fix_work.so" "$T/fix_work.c" ||
	fail "build fix_work.so"
"$CTL_BIN" --so "$PID" "$T/fix_work.so" >"$T/so.out" 2>&1
rc=$?
check "library applied through the agent ($(head -n 1 "$T/so.out"))" test $rc -eq 0
check "its new code runs" result_is "$T/out" 7014
check "the library is mapped" grep -q "fix_work.so" "/proc/$PID/maps"
"$CTL_BIN" --list "$PID" >"$T/so-list.out" 2>&1
check "listed through the agent" grep -q "patch 'fix_work.so'" "$T/so-list.out"
"$CTL_BIN" --undo "$PID" >"$T/so-undo.out" 2>&1
rc=$?
check "library undone through the agent ($(head -n 1 "$T/so-undo.out"))" test $rc -eq 0
check "old code (library undone)" result_is "$T/out" 1014
# unloaded: in the process itself the agent's own reading of the file is
# a mapping of it too, which is not the library (nor busy); not so in a
# sanitized build (see gone() above: the library is kept, and undo says so)
check "no note: nothing kept" sh -c "[ -n '$asan' ] || ! grep -q 'the mapping stays' '$T/so-undo.out'"
check "the library unloaded" sh -c "[ -n '$asan' ] || ! grep -q fix_work.so /proc/$PID/maps"
"$CTL_BIN" --so --verify "$T/none.pem" "$PID" "$T/fix_work.so" >"$T/so-verify.out" 2>&1
check "--so with --verify refused (a library carries no signature)" \
	sh -c "test $? -eq 2 && grep -q 'carries no signature' '$T/so-verify.out'"
chmod o+w "$T/fix_work.so"
"$CTL_BIN" --so "$PID" "$T/fix_work.so" >"$T/so-trust.out" 2>&1
rc=$?
check "a library others may write: refused ($(head -n 1 "$T/so-trust.out"))" test $rc -eq 1
check "old code (untrusted library refused)" result_is "$T/out" 1014

touch "$T/ctl/exit"
for i in $(seq 100); do alive "$PID" || break; sleep 0.1; done
check "the program exits" not alive "$PID"
check "its socket went with it" test ! -e "/run/qpatch/agent-$PID.sock"
finish
