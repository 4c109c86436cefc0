#!/bin/bash
# --version of every program in build/bin: "PROGRAM (qpatch) VERSION", VERSION being
# project(VERSION) of CMakeLists.txt; the compiler wrappers' (qpatch-cc,
# qpatch-c++) own is --qpatch-version, and their --version is the real
# compiler's (build systems run $CC --version).
. "$(dirname "$0")/lib.sh"

want=$(sed -nE 's/^project\(qpatch VERSION ([0-9.]+).*/\1/p' "$QP_SRC/CMakeLists.txt")
check "project version found in CMakeLists.txt ('$want')" test -n "$want"

# every program but the compiler wrappers, those of the future included
progs=$(cd "$QP_BIN" && ls qpatch* | grep -vx -e qpatch-cc -e 'qpatch-c++')
check "programs found ($(echo $progs))" test "$(echo "$progs" | wc -w)" -ge 3
for prog in $progs; do
	for opt in --version -V; do
		out=$("$QP_BIN/$prog" "$opt" 2>&1)
		rc=$?
		check "$prog $opt exits 0" test "$rc" -eq 0
		check "$prog $opt prints '$prog (qpatch) $want' (got '$out')" \
			test "$out" = "$prog (qpatch) $want"
	done
	check "$prog --help lists --version" sh -c "'$QP_BIN/$prog' --help | grep -q -- '-V, --version'"
	# a version nobody could read is an error, as for any output
	if [ -w /dev/full ]; then
		"$QP_BIN/$prog" --version >/dev/full 2>"$T/full.err"
		check "$prog --version to a full disk fails" test $? -eq 1
		check "$prog --version to a full disk says so" grep -q "unable to write" "$T/full.err"
	fi
done

# qpatch-load: --version wins over a missing PID (no usage error)
check "qpatch-load --version needs no PID" "$QP_BIN/qpatch-load" --version
check "qpatch-dump --version with a file is a usage error" \
	sh -c "'$QP_BIN/qpatch-dump' --version x.qpatch >/dev/null 2>&1; test \$? -eq 2"

for w in qpatch-cc qpatch-c++; do
	out=$("$QP_BIN/$w" --qpatch-version)
	check "$w --qpatch-version (got '$out')" test "$out" = "$w (qpatch) $want"
done

# --version and --help go to the compiler: a fake one shows its arguments
cat >"$T/fakecc" <<'EOF'
#!/bin/sh
echo "fakecc $*"
EOF
chmod +x "$T/fakecc"
out=$(QPATCH_REAL_CC="$T/fakecc" "$QP_BIN/qpatch-cc" --version)
check "qpatch-cc --version runs the compiler with --version (got '$out')" \
	sh -c "echo '$out' | grep -q '^fakecc --version'"
out=$(QPATCH_REAL_CC="$T/fakecc" "$QP_BIN/qpatch-cc" --qpatch-version -c x.c)
check "--qpatch-version with other arguments goes to the compiler" \
	sh -c "echo '$out' | grep -q '^fakecc --qpatch-version -c x.c'"
check "qpatch-cc --version is the real compiler's" \
	test "$("$QP_BIN/qpatch-cc" --version 2>&1)" = "$(cc --version 2>&1)"
check "qpatch-c++ --version is the real C++ compiler's" \
	test "$("$QP_BIN/qpatch-c++" --version 2>&1)" = "$(c++ --version 2>&1)"
# qpatch-c++ runs $QPATCH_REAL_CXX, adding the section flags only to a
# command that compiles a C source
out=$(QPATCH_REAL_CXX="$T/fakecc" "$QP_BIN/qpatch-c++" -c x.cpp)
check "qpatch-c++ -c x.cpp: no flag added (got '$out')" test "$out" = "fakecc -c x.cpp"
out=$(QPATCH_REAL_CXX="$T/fakecc" "$QP_BIN/qpatch-c++" -c x.c)
check "qpatch-c++ -c x.c: the flags qpatch-cc adds (got '$out')" \
	test "$out" = "fakecc -c x.c -flive-patching=inline-clone -ffunction-sections -fdata-sections"
out=$(QPATCH_CC_LIVEPATCHING=0 QPATCH_REAL_CXX="$T/fakecc" "$QP_BIN/qpatch-c++" -c x.c)
check "qpatch-c++ -c x.c, QPATCH_CC_LIVEPATCHING=0: the section flags (got '$out')" \
	test "$out" = "fakecc -c x.c -ffunction-sections -fdata-sections"
out=$(QPATCH_REAL_CXX="$T/fakecc" "$QP_BIN/qpatch-c++" -c x.cpp)
check "qpatch-c++ -c x.cpp: no -flive-patching either (got '$out')" test "$out" = "fakecc -c x.cpp"
# a compiler that refuses the probe (as clang does) gets no -flive-patching,
# unless QPATCH_CC_LIVEPATCHING=1 says qpatch-build asked it already
cat >"$T/oldcc" <<'EOF'
#!/bin/sh
case "$*" in *-fsyntax-only*) echo probed >>"${0%/*}/probes"; exit 1;; esac
echo "oldcc $*"
EOF
chmod +x "$T/oldcc"
out=$(QPATCH_REAL_CXX="$T/oldcc" "$QP_BIN/qpatch-c++" -c x.c)
check "a compiler refusing the probe: the section flags only (got '$out')" \
	test "$out" = "oldcc -c x.c -ffunction-sections -fdata-sections"
check "... after one probe" test "$(cat "$T/probes")" = probed
rm -f "$T/probes"
out=$(QPATCH_CC_LIVEPATCHING=1 QPATCH_REAL_CXX="$T/oldcc" "$QP_BIN/qpatch-c++" -c x.c)
check "QPATCH_CC_LIVEPATCHING=1: the flag, trusted (got '$out')" \
	test "$out" = "oldcc -c x.c -flive-patching=inline-clone -ffunction-sections -fdata-sections"
check "... and no probe" test ! -e "$T/probes"
# qpatch-build asks the compilers once, not at every compilation
mkdir -p "$T/b1" "$T/b2"
for d in b1 b2; do
	printf 'int f(void);\nint g(void);\nint main(void) { return f() + g(); }\n' >"$T/$d/main.c"
	printf 'prog: main.o f.o g.o\n\t$(CC) -o $@ $^\n' >"$T/$d/Makefile"
	echo 'int g(void) { return 1; }' >"$T/$d/g.c"
done
echo 'int f(void) { return 1; }' >"$T/b1/f.c"
echo 'int f(void) { return 2; }' >"$T/b2/f.c"
cat >"$T/countcc" <<'EOF'
#!/bin/sh
case "$*" in *-fsyntax-only*) echo probed >>"${0%/*}/probes";; esac
exec cc "$@"
EOF
chmod +x "$T/countcc"
CC="$T/countcc" "$QP_BIN/qpatch-build" "$T/b1" "$T/b2" -o "$T/b.qpatch" >"$T/build.log" 2>&1
check "qpatch-build of a 3-file program with a counting compiler" test -s "$T/b.qpatch"
check "... asked it about -flive-patching once (got $(wc -l <"$T/probes"))" \
	test "$(wc -l <"$T/probes")" -eq 1
finish
