#!/bin/bash
# The fleet roll-out playbook (examples/cloud-host/ansible) run against
# this host with ansible-playbook -c local: it copies the patch, adds it to
# the store, waits until qpatchd has applied it to every process of the
# binary, and reports success; run again it changes nothing.
. "$(dirname "$0")/lib.sh"

command -v ansible-playbook >/dev/null || { fail "ansible-playbook missing (scripts/install-deps.sh installs ansible-core)"; finish; exit 1; }
P=$QP_SRC/tests/integration/progs/hold
build_tree "$P/orig" "$T/app" || { fail "build the program"; finish; exit 1; }
"$QP_BIN/qpatch-build" -q --id fleet-fix "$T/app" "$P/patched" -o "$T/fix.qpatch" \
	--target "$T/app/hold" >/dev/null 2>&1
check "patch built" test -s "$T/fix.qpatch"
for i in 1 2 3; do start "$T/out$i" "$T/app/hold" 0; done
S=$T/store
"$QP_BIN/qpatchd" --store "$S" >"$T/qpatchd.log" 2>&1 &
PIDS+=($!)
check "qpatchd started" wait_match "$T/qpatchd.log" "start: "
play() {
	ANSIBLE_NOCOLOR=1 ANSIBLE_LOCALHOST_WARNING=0 ANSIBLE_INVENTORY_UNPARSED_WARNING=0 \
	ansible-playbook -c local -i localhost, \
		-e ansible_python_interpreter=/usr/bin/python3 \
		-e qpatch_patch="$T/fix.qpatch" -e qpatch_id=fleet-fix -e qpatch_store="$S" \
		-e qpatch_bin="$QP_BIN/qpatch" -e qpatch_incoming="$T/incoming" -e qpatch_wait=20 \
		"$QP_SRC/examples/cloud-host/ansible/qpatch-rollout.yml"
}
play >"$T/play1.out" 2>&1
check "the playbook succeeds" test $? -eq 0
check "it stored and applied the patch" grep -Eq "localhost +: ok=[0-9]+ +changed=[1-9]" "$T/play1.out"
check "it saw 3 processes up to date" grep -q "3 process(es) up to date" "$T/play1.out"
for i in 1 2 3; do check "process $i runs the fix" wait_match "$T/out$i" "^r=2$"; done
play >"$T/play2.out" 2>&1
check "run again: succeeds" test $? -eq 0
check "run again: changes nothing" grep -Eq "localhost +: ok=[0-9]+ +changed=0 " "$T/play2.out"
"$QP_BIN/qpatch" --store "$S" status --json >/dev/null
check "qpatch status agrees" test $? -eq 0
finish
