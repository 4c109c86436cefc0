#!/bin/bash
# qpatchd and its store (qpatch add/remove/status): stored patches reach
# the running processes of their binary, every process started later
# (patched at its entry point, before main runs), and a library loaded
# later with dlopen(); a process of another build is left alone; a
# restarted daemon applies nothing twice; removing a patch undoes it
# everywhere, also under a patch of another object applied after it;
# a second daemon on the same store is refused; polling works without
# process events.
. "$(dirname "$0")/lib.sh"

P=$QP_SRC/tests/integration/progs/fleet
build_tree "$P/orig" "$T/app" || { fail "build the service"; finish; exit 1; }
cp -a "$P/orig" "$T/other" && make -s -C "$T/other" CC="$QP_BIN/qpatch-cc" CFLAGS="-O1 -g" \
	>/dev/null 2>&1 || { fail "build another build"; finish; exit 1; }
"$QP_BIN/qpatch-build" -q --id svc-fix -w "$T/w" "$T/app" "$P/patched" -o "$T/svc.qpatch" --binary svc \
	--target "$T/app/svc" >"$T/b1.out" 2>&1
"$QP_BIN/qpatch-build" -q --id plug-fix -w "$T/w" "$T/app" "$P/patched" -o "$T/plug.qpatch" \
	--binary libplug.so --target "$T/app/libplug.so" >"$T/b2.out" 2>&1
check "program patch built" grep -Eq "replaced +level" "$T/b1.out"
check "library patch built" grep -Eq "replaced +plug" "$T/b2.out"
S=$T/store
Q() { "$QP_BIN/qpatch" --store "$S" "$@"; }

D=$T/qpatchd.log
start_daemon() { # start_daemon LOG [OPTIONS...]
	local log=$1; shift
	# at the priority qpatchd.service gives it (Nice=-10): it reacts to new
	# processes before they reach their entry point even on a busy machine
	nice -n -10 "$QP_BIN/qpatchd" --store "$S" "$@" >"$log" 2>&1 &
	DAEMON=$!
	PIDS+=("$DAEMON")
	wait_match "$log" "start: "
}
stop_daemon() {
	kill -TERM "$DAEMON"
	wait "$DAEMON"
}
first_is() { # first_is FILE REGEX: once the "first" line is out, it matches
	wait_match "$1" "^first" && head -n 1 "$1" | grep -Eq "$2"
}
last_is() { # last_is FILE REGEX: within 10 s, the last line matches (after a new line)
	local n i
	n=$(wc -l <"$1")
	for i in $(seq 100); do
		[ "$(wc -l <"$1")" -gt "$n" ] && tail -n 1 "$1" | grep -Eq "$2" && return 0
		sleep 0.1
	done
	return 1
}

RUNNING=()
for i in 1 2 3; do
	start "$T/run$i" "$T/app/svc"
	RUNNING+=("$TARGET_PID")
done
start "$T/oth" "$T/other/svc"
OTHER=$TARGET_PID
check "daemon starts on an empty store" start_daemon "$D" -J 4 --rescan-ms 300
check "it listens to process events" grep -q "through process events" "$D"

# 1. a stored patch reaches the running processes
Q add "$T/svc.qpatch" >"$T/add.out" 2>&1
check "stored" grep -q "stored patch 'svc-fix' for 'svc'" "$T/add.out"
check "add says the daemon applies it" grep -q "qpatchd applies it" "$T/add.out"
for i in 1 2 3; do check "running process $i patched" wait_match "$T/run$i" "level=2"; done
check "one log line per process" test "$(grep -c "applied 'svc-fix' to process" "$D")" -eq 3
check "the other build is left alone" last_is "$T/oth" "level=1"
check "the other build has no patch" sh -c "! grep -q memfd:qpatch: /proc/$OTHER/maps"

# 2. new processes are patched before main runs (their libraries' start-up
# takes 500 ms, as a large program's may: the daemon reacts well within it,
# even on a loaded machine)
NEW=()
for i in 1 2 3 4 5; do
	SVC_START_DELAY_MS=500 start "$T/new$i" "$T/app/svc"
	NEW+=("$TARGET_PID")
done
first_ok=0
for i in 1 2 3 4 5; do
	first_is "$T/new$i" "^first=2 \(start-up delay 500 ms\)$" && first_ok=$((first_ok + 1))
done
check "5 new processes ran the fix from their first call ($first_ok)" test "$first_ok" -eq 5
for p in "${NEW[@]}"; do
	check "process $p patched at its entry point" \
		wait_match "$D" "applied 'svc-fix' to process $p .*at its entry point [0-9.]+ ms after exec"
done

# 3. a library loaded later with dlopen()
Q add "$T/plug.qpatch" >/dev/null 2>&1
check "library patch stored" sh -c "'$QP_BIN/qpatch' --store '$S' list | grep -q plug-fix"
start "$T/dl" "$T/app/svc" 400
DL=$TARGET_PID
check "the library gets loaded" wait_match "$T/dl" "^loaded plug"
check "the dlopen()ed library is patched" wait_match "$T/dl" "level=2 plug=20"
check "logged" wait_match "$D" "applied 'plug-fix' to process $DL "

# a program that links the library is held at its entry point too
SVC_START_DELAY_MS=500 start "$T/linked" "$T/app/svcl"
LINKED=$TARGET_PID
check "a program linking the stored library ran the fix from its first call" \
	first_is "$T/linked" "^first plug=20 "
check "logged at its entry point" wait_match "$D" "applied 'plug-fix' to process $LINKED .*at its entry point"

# 4. status
Q status --json >"$T/status.json"
check "status: every process up to date (exit 0)" test $? -eq 0
check "status JSON" python3 - "$T/status.json" "$OTHER" "$DL" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
other, dl = int(sys.argv[2]), int(sys.argv[3])
pids = {p["pid"]: p for p in r["processes"]}
assert r["up_to_date"] is True, r
assert len(pids) == 10, pids.keys()
assert other not in pids
assert sorted(pids[dl]["has"]) == ["plug-fix", "svc-fix"], pids[dl]
assert all(("svc-fix" in p["has"] or "plug-fix" in p["has"]) and not p["lacks"]
           for p in pids.values())
EOF

# 5. a restarted daemon applies nothing twice
stop_daemon
check "daemon stops on SIGTERM" grep -q "stopping" "$D"
D2=$T/qpatchd2.log
check "daemon restarts" start_daemon "$D2" -J 4 --rescan-ms 300
check "nothing to do after the restart" grep -q "start: 0 process(es) to bring up to date" "$D2"
sleep 1
check "no second application" sh -c "! grep -q applied '$D2'"
"$QP_BIN/qpatchd" --store "$S" >"$T/second.out" 2>&1
check "a second daemon on the store is refused" test $? -eq 1
check "and says why" grep -q "another qpatchd serves the store" "$T/second.out"

# 6. removing the program's patch undoes it everywhere, also under the
# library's patch applied after it in the dlopen process
Q remove svc-fix >/dev/null 2>&1
for i in 1 2 3; do check "running process $i back to the old code" last_is "$T/run$i" "level=1"; done
for i in 1 2 3 4 5; do check "new process $i back to the old code" last_is "$T/new$i" "level=1"; done
check "the dlopen process: program patch out, library patch kept" last_is "$T/dl" "level=1 plug=20"
check "9 undo lines" test "$(grep -c "undid removed 'svc-fix'" "$D2")" -eq 9
Q remove plug-fix >/dev/null 2>&1
check "library patch out" last_is "$T/dl" "level=1 plug=10"
Q status >"$T/status2.out"
check "status after removal: nothing to show" grep -q "^0 process(es)" "$T/status2.out"
stop_daemon

# 7. without process events: polling
Q add "$T/svc.qpatch" >/dev/null 2>&1
D3=$T/qpatchd3.log
check "daemon starts polling" start_daemon "$D3" --poll --poll-ms 50
check "it says it polls" grep -q "polling /proc every 50 ms for new processes" "$D3"
for i in 1 2 3; do check "running process $i patched (polling)" last_is "$T/run$i" "level=2"; done
start "$T/late" "$T/app/svc"
check "a new process is found and patched by polling" wait_match "$T/late" "level=2"
stop_daemon
finish
