#!/bin/bash
# examples/cloud-host/walkthrough.sh keeps working: 20 processes patched
# from the store by qpatchd, 5 new ones too, another build left alone, the
# fix removed everywhere.  The walkthrough checks each step itself.
. "$(dirname "$0")/lib.sh"

"$QP_SRC/examples/cloud-host/walkthrough.sh" "$QP_BIN" >"$T/walk.out" 2>&1
rc=$?
sed 's/^/    /' "$T/walk.out"
check "the walkthrough passes every step" test $rc -eq 0
check "it checked all its steps" test "$(grep -c '   ok: ' "$T/walk.out")" -eq 5
finish
