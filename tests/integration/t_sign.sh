#!/bin/bash
# Signed patches: qpatch-build --sign appends an Ed25519 signature over
# every byte before it; qpatch-load --verify applies a signed patch to a
# running program, and refuses, before touching it, a patch that is not
# signed ("missing"), signed with another key ("another key", naming its
# key id), or changed after signing ("altered"): one byte of the ELF
# header, of every section header and of every section with bytes in the
# file.  A store's policy file makes qpatch add, qpatchd and
# qpatch-load --all refuse the same, also for a file replaced in the store.
. "$(dirname "$0")/lib.sh"

command -v openssl >/dev/null || { echo "skipped: needs openssl"; exit 0; }
P=$QP_SRC/tests/integration/progs/hold
K=$T/keys
mkdir -p "$K" && chmod 755 "$K"
openssl genpkey -algorithm ed25519 -out "$K/release.key" 2>/dev/null
openssl pkey -in "$K/release.key" -pubout -out "$K/release.pem"
openssl genpkey -algorithm ed25519 -out "$K/other.key" 2>/dev/null
openssl pkey -in "$K/other.key" -pubout -out "$K/other.pem"
openssl genpkey -algorithm rsa -pkeyopt rsa_keygen_bits:1024 -out "$K/rsa.key" 2>/dev/null
chmod 600 "$K"/*.key
check "keys made" test -s "$K/release.pem" -a -s "$K/other.pem" -a -s "$K/rsa.key"

build_tree "$P/orig" "$T/app" || { fail "build the program"; finish; exit 1; }
build() { # build OUT [OPTIONS...]
	local out=$1; shift
	"$QP_BIN/qpatch-build" --id sign-fix "$@" "$T/app" "$P/patched" -o "$out" \
		--target "$T/app/hold" >"$out.log" 2>&1
}
build "$T/rsa.qpatch" --sign "$K/rsa.key"
check "an RSA key is refused: exit 1" test $? -eq 1
check "an RSA key is refused: says why" grep -q "rsa.key' is not an Ed25519 key but a key of type RSA" "$T/rsa.qpatch.log"
check "an RSA key is refused before building: no file" test ! -e "$T/rsa.qpatch"
build "$T/pub.qpatch" --sign "$K/release.pem"
check "a public key cannot sign" grep -q "release.pem' is not a PEM private key" "$T/pub.qpatch.log"
build "$T/fix.qpatch" --sign "$K/release.key"
check "signed patch built" test -s "$T/fix.qpatch"
keyid=$(sed -n "s/.*signed '.*' with Ed25519 key \([0-9a-f]*\)$/\1/p" "$T/fix.qpatch.log")
check "the build names the key id" test ${#keyid} -eq 32
build "$T/plain.qpatch"
check "unsigned patch built" test -s "$T/plain.qpatch"
check "signing adds 96 bytes" test $(($(stat -c %s "$T/fix.qpatch") - $(stat -c %s "$T/plain.qpatch"))) -eq 96
"$QP_BIN/qpatch-dump" "$T/fix.qpatch" >"$T/dump" 2>&1
check "qpatch-dump shows the signature" grep -q "signature:      Ed25519, key id $keyid" "$T/dump"
"$QP_BIN/qpatch-dump" "$T/plain.qpatch" >"$T/dump2" 2>&1
check "qpatch-dump: unsigned" grep -q "signature:      none" "$T/dump2"
check "readelf reads a signed patch" sh -c "readelf -SW '$T/fix.qpatch' | grep -q '\.qpatch\.diffdata'"

start "$T/out" "$T/app/hold" 0
check "target runs" wait_match "$T/out" "^r=1$"
before=$(maps_of "$TARGET_PID")
verify() { "$QP_BIN/qpatch-load" --verify "$K/release.pem" "$TARGET_PID" "$@"; }

refused_cmd "unsigned: missing" "'$T/plain.qpatch': signature missing" verify "$T/plain.qpatch"
refused_cmd "other key: names the key id" "signed with another key: key id $keyid, not the trusted key" \
	"$QP_BIN/qpatch-load" --verify "$K/other.pem" "$TARGET_PID" "$T/fix.qpatch"
"$QP_BIN/qpatch-load" --verify "$K/release.pem" --undo "$TARGET_PID" >"$T/u.out" 2>&1
check "--verify with --undo: usage error" test $? -eq 2
refused_cmd "--verify with an RSA key" "rsa.key' is not an Ed25519 key but a key of type RSA" \
	"$QP_BIN/qpatch-load" --verify "$K/rsa.key" "$TARGET_PID" "$T/fix.qpatch"
# libcrypto is loaded when a key is read, not linked: a run that checks no
# signature does without it, and one that must check refuses clearly
# when it cannot be loaded (hidden here by a file of 0 bytes mounted over it)
check "qpatch-load does not link libcrypto" sh -c "! readelf -d '$QP_BIN/qpatch-load' | grep -q 'NEEDED.*libcrypto'"
crypto=$(readlink -f "$(ldd "$(command -v openssl)" | awk '/libcrypto/ { print $3 }')")
if [ -f "$crypto" ] && unshare -m true 2>/dev/null; then
	nocrypto() { unshare -m sh -c 'mount --bind /dev/null "$0" && exec "$@"' "$crypto" "$@"; }
	refused_cmd "no libcrypto: --verify refused, saying why" "cannot load libcrypto\.so\.[0-9]+, which makes and checks Ed25519 signatures" \
		nocrypto "$QP_BIN/qpatch-load" --verify "$K/release.pem" "$TARGET_PID" "$T/fix.qpatch"
	nocrypto "$QP_BIN/qpatch-dump" "$T/fix.qpatch" >"$T/nc.out" 2>&1
	check "no libcrypto: a signed patch is still read when no key is asked for" \
		grep -q "signature:      Ed25519, key id $keyid" "$T/nc.out"
else
	ok "no libcrypto: skipped (no mount namespace)"
fi

# one byte of each part of the file: the ELF header, every section header,
# every section that has bytes in the file
flip() { # flip FILE OFFSET: a copy with the byte at OFFSET inverted
	cp "$T/fix.qpatch" "$1"
	local b
	b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
	printf "$(printf '\\%03o' $((b ^ 0xff)))" |
		dd of="$1" bs=1 seek="$2" count=1 conv=notrunc status=none
}
shoff=$(readelf -hW "$T/fix.qpatch" | sed -n 's/.*Start of section headers: *\([0-9]*\).*/\1/p')
shnum=$(readelf -hW "$T/fix.qpatch" | sed -n 's/.*Number of section headers: *\([0-9]*\).*/\1/p')
check "section header table found" test "$shnum" -ge 6 -a "$shoff" -gt 0
parts=0
altered() { # altered WHAT OFFSET
	flip "$T/bad.qpatch" "$2"
	refused_cmd "$1 (byte $2) changed: altered" "'$T/bad.qpatch': signature does not verify with key $keyid .*altered after signing" \
		verify "$T/bad.qpatch"
	parts=$((parts + 1))
}
altered "ELF header e_ident" 7
altered "ELF header e_shoff" 40
for i in $(seq 0 $((shnum - 1))); do
	altered "section header $i" $((shoff + 64 * i + 32))
done
changed=""
while read -r name type off size; do
	[ "$type" = NOBITS ] && continue
	[ $((16#$size)) -gt 0 ] || continue
	altered "section $name" $((16#$off + 16#$size / 2))
	changed="$changed $name"
done < <(readelf -SW "$T/fix.qpatch" | sed -n 's/^ *\[ *[0-9]*\] \(\.[^ ]*\) *\([A-Z_]*\) *[0-9a-f]* \([0-9a-f]*\) \([0-9a-f]*\).*/\1 \2 \3 \4/p')
check "every section changed once:$changed" test "$changed" = \
	" .qpatch.info .qpatch.text .qpatch.eh_frame .qpatch.symtab.src .qpatch.symtab.dst .qpatch.diffdata .shstrtab"
check "ELF header, $shnum section headers, 7 sections: $parts changes" test "$parts" -eq $((2 + shnum + 7))
altered "signature" $(($(stat -c %s "$T/fix.qpatch") - 10))
flip "$T/bad.qpatch" $(($(stat -c %s "$T/fix.qpatch") - 96 + 20))
refused_cmd "key id changed: another key" "signed with another key" verify "$T/bad.qpatch"
head -c $(($(stat -c %s "$T/fix.qpatch") - 1)) "$T/fix.qpatch" >"$T/trunc.qpatch"
refused_cmd "last byte cut off: missing" "signature missing" verify "$T/trunc.qpatch"

verify "$T/fix.qpatch" >"$T/ok.out" 2>&1
check "signed patch verifies and is applied" test $? -eq 0
check "new code runs" wait_match "$T/out" "^r=2$"
"$QP_BIN/qpatch-load" --undo "$TARGET_PID" >/dev/null 2>&1
check "undone" test $? -eq 0
before=$(maps_of "$TARGET_PID")
"$QP_BIN/qpatch-load" --verify "$K/other.pem" --verify "$K" "$TARGET_PID" "$T/fix.qpatch" >"$T/ok2.out" 2>&1
check "--verify twice, one a directory of keys: applied" test $? -eq 0
"$QP_BIN/qpatch-load" --undo "$TARGET_PID" >/dev/null 2>&1
before=$(maps_of "$TARGET_PID")

# the store's policy
S=$T/store
mkdir "$S" && chmod 755 "$S"
export QPATCH_STORE=$S
"$QP_BIN/qpatch" verify "$T/plain.qpatch" >"$T/v0.out" 2>&1
check "no policy: qpatch verify accepts an unsigned patch" test $? -eq 0
check "no policy: and says so" grep -q "is not signed; the store '$S' has no policy" "$T/v0.out"
printf '# signed patches only\nrequire-signature\ntrusted-key %s\n' "$K/release.pem" >"$S/policy"
refused_cmd "policy: qpatch add of an unsigned patch" "signature missing" "$QP_BIN/qpatch" add "$T/plain.qpatch"
check "policy: nothing stored" test -z "$(ls "$S"/*/ 2>/dev/null)"
refused_cmd "policy: qpatch-load --all of an unsigned patch" "refused by the policy '$S/policy'.*signature missing" \
	"$QP_BIN/qpatch-load" --all "$T/plain.qpatch"
refused_cmd "policy: qpatch-load of an unsigned patch" "signature missing" \
	"$QP_BIN/qpatch-load" "$TARGET_PID" "$T/plain.qpatch"
"$QP_BIN/qpatch" verify "$T/fix.qpatch" >"$T/v.out" 2>&1
check "policy: qpatch verify accepts the signed patch" test $? -eq 0
check "policy: and names its key id" grep -q "is signed with key $keyid, which the policy '$S/policy' accepts" "$T/v.out"
refused_cmd "policy: qpatch verify refuses the unsigned patch" "signature missing" "$QP_BIN/qpatch" verify "$T/plain.qpatch"
"$QP_BIN/qpatch" add "$T/fix.qpatch" >"$T/add.out" 2>&1
check "policy: a signed patch is stored" test $? -eq 0
entry=$(ls "$S"/*/0001-*.qpatch)
cp "$T/plain.qpatch" "$entry"
"$QP_BIN/qpatchd" --once >"$T/d.out" 2>&1
check "policy: qpatchd --once, an entry replaced by an unsigned patch: exit 1" test $? -eq 1
check "policy: qpatchd says why" grep -q "store entry refused: refused by the policy '$S/policy': '$entry': signature missing.*store ignored" "$T/d.out"
check "policy: and patches nothing" test "$before" = "$(maps_of "$TARGET_PID")"
cp "$T/bad.qpatch" "$entry"
"$QP_BIN/qpatchd" --once >"$T/d2.out" 2>&1
check "policy: qpatchd refuses an entry signed by another key" grep -q "'$entry': signed with another key" "$T/d2.out"
cp "$T/fix.qpatch" "$entry"
"$QP_BIN/qpatchd" --once >"$T/d3.out" 2>&1
check "policy: qpatchd applies the signed entry" grep -q "applied 'sign-fix' to process $TARGET_PID " "$T/d3.out"
check "new code runs again" wait_match "$T/out" "^r=2$"
before=$(maps_of "$TARGET_PID")
printf 'require-signature\n' >"$S/policy"
refused_cmd "policy without a key is refused" "require-signature without a trusted-key" "$QP_BIN/qpatch" list
printf 'trusted-key\n' >"$S/policy"
refused_cmd "policy with a bad line" "policy' line 1: 'trusted-key' is not" "$QP_BIN/qpatch" list
if [ "$(id -u)" -eq 0 ]; then
	printf 'require-signature\ntrusted-key %s\n' "$K/release.pem" >"$S/policy"
	chmod 666 "$K/release.pem"
	refused_cmd "policy: a trusted key anyone may write is refused" "'$K/release.pem' is writable by any user" \
		"$QP_BIN/qpatch" list
	chmod 644 "$K/release.pem"
fi
finish
