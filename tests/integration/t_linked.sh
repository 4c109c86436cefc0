#!/bin/bash
# A tree that builds two programs (server, cli), each defining handle(),
# with one source compiled twice (common.o into an archive for server,
# common-cli.o for cli), and a fix touching both programs.  The patch of
# each program holds only the code linked into it: cli's handle() must not
# replace server's, nor common-cli.o's scale() server's, and the reverse.
. "$(dirname "$0")/lib.sh"

P=$QP_SRC/tests/integration/progs/linked
build_tree "$P/orig" "$T/app" || { fail "build the programs"; finish; exit 1; }

start "$T/server.out" "$T/app/server"
SERVER=$TARGET_PID
start "$T/cli.out" "$T/app/cli"
CLI=$TARGET_PID
check "server runs" wait_match "$T/server.out" "^server handle\(10\)=31$"
check "cli runs" wait_match "$T/cli.out" "^cli handle\(10\)=12 scale\(10\)=1000$"

"$QP_BIN/qpatch-build" "$T/app" "$P/patched" -o "$T/server.qpatch" --binary server \
	--target "$T/app/server" -w "$T/work" >"$T/server-build.out" 2>&1
check "server patch built" test $? -eq 0
check "server: scale replaced, from the archive's common.o" \
	grep -Eq "^ +replaced +scale .* common\.o$" "$T/server-build.out"
check "server: cli's handle left out" not grep -Eq "handle" "$T/server-build.out"
check "server: the objects of cli left out" grep -q "2 recompiled objects not linked into 'server'" \
	"$T/server-build.out"

"$QP_BIN/qpatch-build" "$T/app" "$P/patched" -o "$T/cli.qpatch" --binary cli \
	--target "$T/app/cli" -w "$T/work" >"$T/cli-build.out" 2>&1
check "cli patch built (same work directory, warm)" test $? -eq 0
check "cli: handle replaced" grep -Eq "^ +replaced +handle .* cli\.o$" "$T/cli-build.out"
check "cli: scale replaced, from common-cli.o" grep -Eq "^ +replaced +scale .* common-cli\.o$" \
	"$T/cli-build.out"
check "cli: common.o (server's) left out" \
	grep -q "1 recompiled object not linked into 'cli'" "$T/cli-build.out"

"$QP_BIN/qpatch-load" "$SERVER" "$T/server.qpatch" >"$T/load-server.out" 2>&1
check "server patched" test $? -eq 0
check "server runs its own fixed code" wait_match "$T/server.out" "^server handle\(10\)=41$"
"$QP_BIN/qpatch-load" "$CLI" "$T/cli.qpatch" >"$T/load-cli.out" 2>&1
check "cli patched" test $? -eq 0
check "cli runs its own fixed code" wait_match "$T/cli.out" "^cli handle\(10\)=15 scale\(10\)=2000$"
sleep 0.2
check "server still right" test "$(tail -n1 "$T/server.out")" = "server handle(10)=41"
finish
