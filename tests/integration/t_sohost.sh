#!/bin/bash
# Hand-written .so patches on a host: qpatch-load --all --so loads a
# library into every process that maps its target (by file name, or by
# build-id, which a copy under another name shares); --undo --all takes it
# out; the store holds libraries (qpatch add/list/status/remove) and
# qpatchd loads them into the running processes and into ones started
# later, and unloads removed ones; a store policy that requires signatures
# refuses a library, which carries none.
. "$(dirname "$0")/lib.sh"

P=$QP_SRC/tests/integration/progs/sopatch
INC=$QP_SRC/format/include
LOAD=$QP_BIN/qpatch-load
CC=${CC:-cc}

# --all, --undo --all and qpatchd reach every process of the host: the
# program's name, its build-id and the libraries' ids are this run's own,
# so that other tests running at the same time (t_sopatch's soapp and
# fix.so) are neither touched nor counted
APPN=soh$$
OTHN=oth$$
FIX=hfix$$.so
FIXB=hbid$$.so
BID=$(echo "$T" | sha1sum | cut -c1-40)
mkdir -p "$T/bin" "$T/lib"
$CC -O2 -g -pthread -rdynamic -Wl,--build-id=0x"$BID" -o "$T/bin/$APPN" "$P/main.c" "$P/a.c" "$P/b.c" ||
	{ fail "build the program"; finish; exit 1; }
cp "$T/bin/$APPN" "$T/bin/$OTHN" # the same build under another name
check "the program has its build-id" sh -c "readelf -n '$T/bin/$APPN' | grep -q 'Build ID: $BID'"
sed "s/QPATCH_TARGET(\"soapp\")/QPATCH_TARGET(\"$APPN\")/" "$P/fix.c" >"$T/fix.c"
$CC -shared -fPIC -O2 -g -I"$INC" -o "$T/lib/$FIX" "$T/fix.c" || fail "build $FIX"
sed "s/QPATCH_TARGET(\"soapp\")/QPATCH_TARGET_BUILDID(\"$BID\")/" "$P/fix.c" >"$T/fix_bid.c"
$CC -shared -fPIC -O2 -g -I"$INC" -o "$T/lib/$FIXB" "$T/fix_bid.c" || fail "build $FIXB"

orig='compute=42 a=101 b=201 counter=[0-9]+ status=-1'
fixed='compute=63 a=101 b=1101 counter=[0-9]+ status=[0-9]+'
run() { # run NAME: start $T/bin/NAME, output to $T/NAME.N
	local n=${#PIDS[@]}
	start "$T/$1.$n" "$T/bin/$1"
	LAST_OUT=$T/$1.$n
	wait_lines "$LAST_OUT" 1 || fail "$1 runs"
}
runs() { # runs OUT REGEX: a line after the current end matches
	wait_after "$1" "$(wc -l <"$1")" "$2"
}
run "$APPN"; A=$TARGET_PID; AO=$LAST_OUT
run "$APPN"; B=$TARGET_PID; BO=$LAST_OUT
run "$OTHN"; O=$TARGET_PID; OO=$LAST_OUT

# 1. --all --so, target by file name: both processes of the program, not
# the copy under another name
"$LOAD" --all -J 2 --so "$T/lib/$FIX" >"$T/all.out" 2>&1
check "--all --so: exit 0" test $? -eq 0
cat "$T/all.out"
check "--all --so: both processes of the program applied" \
	test "$(grep -c "^process [0-9]* ($APPN): applied '$FIX': 3 function(s)" "$T/all.out")" -eq 2
check "--all --so: summary" grep -q "^2 process(es): 2 applied, 0 already applied, 0 refused, 0 failed" "$T/all.out"
check "--all --so: the copy named other is not touched" sh -c "! grep -q '^process $O ' '$T/all.out'"
check "A runs the fix" runs "$AO" "$fixed"
check "B runs the fix" runs "$BO" "$fixed"
check "other runs the old code" runs "$OO" "$orig"
"$LOAD" --all --so "$T/lib/$FIX" >"$T/all2.out" 2>&1
check "--all --so again: already applied" grep -q "^2 process(es): 0 applied, 2 already applied" "$T/all2.out"
"$LOAD" --list --json "$A" >"$T/list.json"
check "--list shows the library" grep -q "\"id\":\"$FIX\".*\"kind\":\"so\",\"library\":\"$T/lib/$FIX\"" "$T/list.json"
"$LOAD" --undo --all "$FIX" >"$T/undo.out" 2>&1
check "--undo --all $FIX" grep -q "^2 process(es): 2 undone" "$T/undo.out"
check "A back to the old code" runs "$AO" "$orig"
check "the library is unloaded from A" sh -c "! grep -q $FIX /proc/$A/maps"

# 2. --all --so, target by build-id: the copy under another name too
"$LOAD" --all --json --so "$T/lib/$FIXB" >"$T/bid.json" 2>&1
check "--all --so by build-id: exit 0" test $? -eq 0
check "--all --so by build-id: 3 processes" python3 - "$T/bid.json" "$O" "$FIXB" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["op"] == "apply" and r["id"] == sys.argv[3], r
assert r["summary"]["applied"] == 3, r["summary"]
assert int(sys.argv[2]) in [p["pid"] for p in r["processes"]]
PY
check "other runs the fix" runs "$OO" "$fixed"
"$LOAD" --undo --all "$FIXB" >/dev/null 2>&1
check "by build-id: undone in other" runs "$OO" "$orig"
check "no patch mapping left" sh -c "! grep -q memfd:qpatch /proc/$A/maps /proc/$B/maps /proc/$O/maps"

# 3. bad input: refused before any process is touched
head -c 3000 "$T/lib/$FIX" >"$T/lib/trunc.so"
"$LOAD" --all --so "$T/lib/trunc.so" >"$T/trunc.out" 2>&1
check "truncated library: exit 1" test $? -eq 1
check "truncated library: says so, no process line" \
	sh -c "grep -q 'is truncated' '$T/trunc.out' && ! grep -q '^process ' '$T/trunc.out'"

"$LOAD" --all "$T/lib/$FIX" >"$T/nodash.out" 2>&1
check "a library given to --all without --so: exit 1" test $? -eq 1
check "... with what to do instead" grep -q "a hand-written patch library goes in with --all --so $T/lib/$FIX" "$T/nodash.out"

# 4. the store: a library by file name, and qpatchd
S=$T/store
Q() { "$QP_BIN/qpatch" --store "$S" "$@"; }
Q add "$T/lib/$FIX" >"$T/add.out" 2>&1
check "qpatch add $FIX" grep -q "stored library patch '$FIX' for files named '$APPN' as number 1" "$T/add.out"
check "stored under its name" test -f "$S/by-name/$APPN/0001-$FIX"
Q add "$T/lib/$FIX" >"$T/add2.out" 2>&1
check "added twice: refused" grep -q "patch '$FIX' is in the store already" "$T/add2.out"
cp "$T/lib/$FIX" "$T/lib/h fix$$.so"
Q add "$T/lib/h fix$$.so" >"$T/add3.out" 2>&1
check "a file name the store cannot keep: refused" grep -q "must end in .so and hold only" "$T/add3.out"
Q verify "$T/lib/$FIX" >"$T/verify.out" 2>&1
check "qpatch verify: a library carries no signature, no policy" \
	grep -q "library patch '$FIX' in '$T/lib/$FIX' carries no signature; the store '.*' has no policy" "$T/verify.out"
Q list >"$T/slist.out"
cat "$T/slist.out"
check "list: by file name" grep -q "^files named '$APPN':" "$T/slist.out"
check "list: the library" grep -Eq "^ +1\. $FIX .*\(hand-written library\)" "$T/slist.out"
Q list --json >"$T/slist.json"
check "list --json: kind so, no build-id" \
	grep -q "\"id\":\"$FIX\",\"build_id\":null,\"target\":\"$APPN\",\"kind\":\"so\"" "$T/slist.json"
# a library put by hand under another target's directory: the store is refused
mkdir -p "$S/by-name/x$APPN" && cp "$S/by-name/$APPN/0001-$FIX" "$S/by-name/x$APPN/0001-$FIX"
Q list >"$T/wrongdir.out" 2>&1
check "a library in another target's directory: refused" test $? -ne 0
check "... saying for what it is" grep -q "is for 'by-name/$APPN', not 'by-name/x$APPN'" "$T/wrongdir.out"
rm -rf "$S/by-name/x$APPN"
Q status >"$T/st1.out"
check "status before the daemon: 2 processes lack it" grep -q "^2 process(es) of stored binaries: 0 up to date, 2 not" "$T/st1.out"

nice -n -10 "$QP_BIN/qpatchd" --store "$S" -J 2 --rescan-ms 300 >"$T/d.log" 2>&1 &
D=$!
PIDS+=("$D")
check "qpatchd starts" wait_match "$T/d.log" "start: "
check "qpatchd: A patched" wait_match "$T/d.log" "applied '$FIX' to process $A "
check "qpatchd: B patched" wait_match "$T/d.log" "applied '$FIX' to process $B "
check "A runs the fix" runs "$AO" "$fixed"
run "$APPN"; C=$TARGET_PID; CO=$LAST_OUT
check "qpatchd: a process started later is patched" wait_match "$T/d.log" "applied '$FIX' to process $C "
check "C runs the fix" runs "$CO" "$fixed"
# a new process whose start-up takes 500 ms (a preloaded library's
# constructor) is held at its entry point: dlopen runs there, before main
printf '#include <unistd.h>\n__attribute__((constructor)) static void slow(void) { usleep(500000); }\n' >"$T/slow.c"
$CC -shared -fPIC -o "$T/lib/slow.so" "$T/slow.c" || fail "build slow.so"
LD_PRELOAD=$T/lib/slow.so start "$T/held.out" "$T/bin/$APPN"
H=$TARGET_PID
check "qpatchd: the slow starter is patched at its entry point" \
	wait_match "$T/d.log" "applied '$FIX' to process $H .*at its entry point [0-9.]+ ms after exec"
first_fixed() { wait_lines "$T/held.out" 1 && head -n 1 "$T/held.out" | grep -Eq "^($fixed)\$"; }
check "... and ran the fix from its first call" first_fixed
check "other is left alone" sh -c "! grep -q 'process $O ' '$T/d.log'"
Q status --json >"$T/st2.json"
check "status: up to date, each has $FIX" python3 - "$T/st2.json" "$FIX" "$A" "$B" "$C" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
pids = {p["pid"]: p for p in r["processes"]}
assert r["up_to_date"] is True, r
for p in sys.argv[3:]:
    assert pids[int(p)]["has"] == [sys.argv[2]], pids
PY
Q remove "$FIX" >/dev/null 2>&1
check "removed: qpatchd undoes it in A" wait_match "$T/d.log" "undid removed '$FIX' in process $A "
check "removed: ... and in C" wait_match "$T/d.log" "undid removed '$FIX' in process $C "
check "C runs the old code" runs "$CO" "$orig"
check "the library is unloaded from C" sh -c "! grep -q $FIX /proc/$C/maps"

# 5. a library by build-id in the store: the copy named other too
Q add "$T/lib/$FIXB" >"$T/addb.out" 2>&1
check "qpatch add $FIXB" grep -q "stored library patch '$FIXB' for build-id $BID as number 1" "$T/addb.out"
check "qpatchd: other patched by build-id" wait_match "$T/d.log" "applied '$FIXB' to process $O "
check "other runs the fix" runs "$OO" "$fixed"
run "$OTHN"; E=$TARGET_PID; EO=$LAST_OUT
check "qpatchd: a new process of the build is patched" wait_match "$T/d.log" "applied '$FIXB' to process $E "
check "it runs the fix" runs "$EO" "$fixed"
Q remove "$FIXB" >/dev/null 2>&1
check "removed: undone in the new process" wait_match "$T/d.log" "undid removed '$FIXB' in process $E "
for p in "$A" "$B" "$O"; do
	check "removed: undone in process $p" wait_match "$T/d.log" "undid removed '$FIXB' in process $p "
done
kill -TERM "$D"; wait "$D"

# 6. a store whose policy requires signatures refuses libraries
openssl genpkey -algorithm ed25519 -out "$S/k.pem" 2>/dev/null
openssl pkey -in "$S/k.pem" -pubout -out "$S/pub.pem" 2>/dev/null
printf 'require-signature\ntrusted-key pub.pem\n' >"$S/policy"
Q add "$T/lib/$FIX" >"$T/addp.out" 2>&1
check "policy: qpatch add refused" test $? -ne 0
check "policy: says why" grep -q "policy requires signed patches, and a hand-written .so carries no signature" "$T/addp.out"
check "policy: nothing stored" sh -c "! ls '$S/by-name/$APPN' | grep -q '^0'"
before=$(maps_of "$A")
Q verify "$T/lib/$FIX" >"$T/verifyp.out" 2>&1
check "policy: qpatch verify refuses a library" test $? -ne 0
check "policy: qpatch verify says why" grep -q "carries no signature" "$T/verifyp.out"
QPATCH_STORE=$S "$LOAD" --all --so "$T/lib/$FIX" >"$T/allp.out" 2>&1
check "policy: --all --so refused" test $? -ne 0
check "policy: --all --so says why" grep -q "carries no signature" "$T/allp.out"
check "policy: --all --so touches nothing" test "$before" = "$(maps_of "$A")"
finish
