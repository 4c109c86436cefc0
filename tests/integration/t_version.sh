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
finish
