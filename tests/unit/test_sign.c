// SPDX-License-Identifier: MIT
/*
 * Signed patches (format/sig.c, format/sign.c): a signature over a real
 * patch verifies; changing any one byte of the file makes it fail with
 * the reason of that byte's place (the patch or the signature: altered;
 * the key id: another key; the block's magic: missing; its algorithm or
 * reserved bytes: malformed); the reader strips the block and keeps it
 * (rules 61 and 62); keys that are not Ed25519 are refused.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "check.h"
#include "qpatch/format.h"
#include "qpatch/sign.h"

static char dir[4096];

/* Write a new key of @type (@param: its parameter or NULL) as PEM files
 * DIR/NAME.key (private) and DIR/NAME.pem (public). */
static int make_key(const char *name, const char *type, const char *param)
{
	EVP_PKEY *k = param ? EVP_PKEY_Q_keygen(NULL, NULL, type, param) :
			      EVP_PKEY_Q_keygen(NULL, NULL, type);
	char path[4200];
	FILE *f;
	int ok;

	if (!k)
		return -1;
	snprintf(path, sizeof(path), "%s/%s.key", dir, name);
	f = fopen(path, "w");
	ok = f && PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL) == 1;
	if (f)
		fclose(f);
	snprintf(path, sizeof(path), "%s/%s.pem", dir, name);
	f = fopen(path, "w");
	ok = ok && f && PEM_write_PUBKEY(f, k) == 1;
	if (f)
		fclose(f);
	EVP_PKEY_free(k);
	return ok ? 0 : -1;
}

static const char *key_path(const char *name, const char *ext)
{
	static char path[4][4200];
	static int next;
	char *p = path[next++ & 3];

	snprintf(p, 4200, "%s/%s.%s", dir, name, ext);
	return p;
}

/* The v1 fixture written as version 2: a real one-function patch. */
static uint8_t *real_patch(size_t *size)
{
	const char *src = getenv("QP_SRC");
	struct qp_error err = { 0 };
	struct qp_info in;
	struct qp_patch *p;
	char path[4096];
	void *buf = NULL;

	if (!src)
		return NULL;
	snprintf(path, sizeof(path), "%s/tests/fixtures/format/v1-body.qpatch", src);
	p = qp_patch__open(path, &err);
	if (!p)
		return NULL;
	in = *qp_patch__info(p);
	in.version = 2;
	if (qp_patch__set_info(p, &in) || qp_patch__write_mem(p, &buf, size, &err))
		buf = NULL;
	qp_patch__free(p);
	return buf;
}

/* @file with a signature block by @signer appended; *@size grows. */
static uint8_t *signed_copy(const struct qp_signer *signer, const uint8_t *file, size_t *size)
{
	struct qp_error err = { 0 };
	struct qp_sig_disk sig;
	uint8_t *out = malloc(*size + QP_SIG_SIZE);

	if (!out || qp_signer__sign(signer, file, *size, &sig, &err)) {
		fprintf(stderr, "sign: %s\n", err.msg);
		free(out);
		return NULL;
	}
	memcpy(out, file, *size);
	memcpy(out + *size, &sig, sizeof(sig));
	*size += QP_SIG_SIZE;
	return out;
}

static void test_keys(void)
{
	struct qp_error err = { 0 };
	struct qp_signer *s = NULL;
	struct qp_keyring *kr = NULL;

	CHECK_INT(qp_signer__open(key_path("ec", "key"), &s, &err), -EINVAL);
	CHECK_CONTAINS(err.msg, "ec.key' is not an Ed25519 key but a key of type EC");
	CHECK_INT(qp_signer__open(key_path("a", "pem"), &s, &err), -EINVAL);
	CHECK_CONTAINS(err.msg, "a.pem' is not a PEM private key");
	CHECK_INT(qp_signer__open(key_path("none", "key"), &s, &err), -ENOENT);
	CHECK_INT(qp_keyring__new(&kr, &err), 0);
	CHECK_INT(qp_keyring__add_path(kr, key_path("ec", "pem"), NULL, &err), -EINVAL);
	CHECK_CONTAINS(err.msg, "ec.pem' is not an Ed25519 key but a key of type EC");
	CHECK_INT(qp_keyring__add_pem(kr, "junk", "junk", 4, &err), -EINVAL);
	CHECK_CONTAINS(err.msg, "'junk' is not a PEM public key");
	/* a private key file names its public key too */
	CHECK_INT(qp_keyring__add_path(kr, key_path("a", "key"), NULL, &err), 0);
	CHECK_INT(qp_keyring__count(kr), 1);
	qp_keyring__free(kr);
}

static void test_sign_verify(const uint8_t *file, size_t size)
{
	struct qp_error err = { 0 };
	struct qp_signer *a = NULL;
	struct qp_keyring *ka = NULL, *kb = NULL, *kab = NULL;
	struct qp_sig_disk sig;
	char hex[QP_SIG_KEY_ID_HEX];
	size_t n = size, i, bad = 0;
	uint8_t *s;

	CHECK_INT(qp_signer__open(key_path("a", "key"), &a, &err), 0);
	if (!a)
		return;
	qp_sig_key_id_hex(qp_signer__key_id(a), hex);
	qp_keyring__new(&ka, &err);
	qp_keyring__new(&kb, &err);
	qp_keyring__new(&kab, &err);
	CHECK_INT(qp_keyring__add_path(ka, key_path("a", "pem"), NULL, &err), 0);
	CHECK_INT(qp_keyring__add_path(kb, key_path("b", "pem"), NULL, &err), 0);
	CHECK_INT(qp_keyring__add_path(kab, dir, NULL, &err), -EINVAL); /* ec.pem is there */
	CHECK_INT(qp_keyring__add_path(kab, key_path("b", "pem"), NULL, &err), 0);
	CHECK_INT(qp_keyring__add_path(kab, key_path("a", "pem"), NULL, &err), 0);

	s = signed_copy(a, file, &n);
	CHECK(s != NULL);
	if (!s)
		goto out;
	CHECK_INT(n, size + 96);
	CHECK_INT(qp_keyring__verify(ka, s, n, "f", &err), 0);
	CHECK_INT(qp_keyring__verify(kab, s, n, "f", &err), 0);
	CHECK_INT(qp_keyring__verify(ka, file, size, "f", &err), QP_ESIGNATURE);
	CHECK_CONTAINS(err.msg, "'f': signature missing");
	CHECK_INT(qp_keyring__verify(kb, s, n, "f", &err), QP_ESIGNATURE);
	CHECK_CONTAINS(err.msg, "'f': signed with another key: key id ");
	CHECK_CONTAINS(err.msg, hex);
	CHECK_INT(qp_signer__sign(a, s, n, &sig, &err), -EEXIST);

	/* every byte of the file */
	for (i = 0; i < n; i++) {
		const char *want;
		size_t at = i >= size ? i - size : SIZE_MAX;

		s[i] ^= 0x5a;
		if (at == SIZE_MAX || at >= offsetof(struct qp_sig_disk, sig))
			want = "altered after signing";
		else if (at < 8)
			want = "signature missing";
		else if (at == 8)
			want = "signature algorithm";
		else if (at < 16)
			want = "reserved bytes are not 0";
		else
			want = "signed with another key";
		if (qp_keyring__verify(ka, s, n, "f", &err) != QP_ESIGNATURE ||
		    !strstr(err.msg, want)) {
			if (!bad++)
				fprintf(stderr, "byte %zu changed: \"%s\", expected \"%s\"\n", i,
					err.msg, want);
		}
		s[i] ^= 0x5a;
	}
	CHECK_INT(bad, 0);
	CHECK_INT(qp_keyring__verify(ka, s, n, "f", &err), 0);
	free(s);
out:
	qp_signer__free(a);
	qp_keyring__free(ka);
	qp_keyring__free(kb);
	qp_keyring__free(kab);
}

/* Rules 61 and 62: the reader reads a signed file as the unsigned one,
 * with its block in the model. */
static void test_reader(const uint8_t *file, size_t size)
{
	struct qp_error err = { 0 };
	struct qp_signer *a = NULL;
	struct qp_patch *p, *q;
	size_t n = size;
	uint8_t *s;
	void *again = NULL;
	size_t again_size = 0;

	CHECK_INT(qp_signer__open(key_path("a", "key"), &a, &err), 0);
	if (!a)
		return;
	s = signed_copy(a, file, &n);
	if (!s) {
		qp_signer__free(a);
		return;
	}
	p = qp_patch__open_mem(file, size, &err);
	q = qp_patch__open_mem(s, n, &err);
	CHECK(p && q);
	if (p && q) {
		CHECK(qp_patch__signature(p) == NULL);
		CHECK(qp_patch__signature(q) != NULL);
		CHECK(!memcmp(qp_patch__signature(q)->key_id, qp_signer__key_id(a),
			      QP_SIG_KEY_ID_SIZE));
		CHECK_INT(qp_patch__signature(q)->algorithm, QP_SIG_ED25519);
		/* written again: the unsigned file, byte for byte */
		CHECK_INT(qp_patch__write_mem(q, &again, &again_size, &err), 0);
		CHECK(again_size == size && !memcmp(again, file, size));
	}
	free(again);
	qp_patch__free(p);
	qp_patch__free(q);

	s[size + 8] = 0; /* algorithm */
	CHECK(!qp_patch__open_mem(s, n, &err));
	CHECK_INT(err.code, QP_EFORMAT);
	CHECK_CONTAINS(err.msg, "'<memory>': signature block: algorithm 0");
	s[size + 8] = 7; /* unknown: read, refused by verification only */
	p = qp_patch__open_mem(s, n, &err);
	CHECK(p && qp_patch__signature(p) && qp_patch__signature(p)->algorithm == 7);
	qp_patch__free(p);
	s[size + 8] = QP_SIG_ED25519;
	s[size + 15] = 1; /* reserved */
	CHECK(!qp_patch__open_mem(s, n, &err));
	CHECK_CONTAINS(err.msg, "signature block: reserved bytes are not 0");
	s[size + 15] = 0;
	s[size] = 'X'; /* no magic: not a signature block but trailing bytes */
	p = qp_patch__open_mem(s, n, &err);
	CHECK(p && !qp_patch__signature(p));
	qp_patch__free(p);
	/* a block alone, or after less than an ELF header, is none */
	s[size] = 'Q';
	CHECK_INT(qp_sig_find(s + size, QP_SIG_SIZE, NULL, "f", &err), 0);
	CHECK_INT(qp_sig_find(s + size - 64, QP_SIG_SIZE + 64, NULL, "f", &err), 1);
	CHECK_INT(qp_sig_find(s + size - 63, QP_SIG_SIZE + 63, NULL, "f", &err), 0);
	free(s);
	qp_signer__free(a);
}

/* Sign a file on disk, twice. */
static void test_sign_file(const uint8_t *file, size_t size)
{
	struct qp_error err = { 0 };
	struct qp_signer *a = NULL;
	struct qp_keyring *ka = NULL;
	const char *path = key_path("fix", "qpatch");
	struct stat st;
	uint8_t *buf;
	FILE *f;

	f = fopen(path, "wb");
	CHECK(f && fwrite(file, 1, size, f) == size);
	if (f)
		fclose(f);
	CHECK_INT(qp_signer__open(key_path("a", "key"), &a, &err), 0);
	qp_keyring__new(&ka, &err);
	qp_keyring__add_path(ka, key_path("a", "pem"), NULL, &err);
	CHECK_INT(qp_signer__sign_file(a, path, &err), 0);
	CHECK_INT(qp_signer__sign_file(a, path, &err), -EEXIST);
	CHECK_CONTAINS(err.msg, "signed already");
	CHECK(!stat(path, &st) && (size_t)st.st_size == size + QP_SIG_SIZE);
	buf = malloc(size + QP_SIG_SIZE);
	f = fopen(path, "rb");
	CHECK(f && buf && fread(buf, 1, size + QP_SIG_SIZE, f) == size + QP_SIG_SIZE);
	if (f)
		fclose(f);
	CHECK_INT(qp_keyring__verify(ka, buf, size + QP_SIG_SIZE, path, &err), 0);
	free(buf);
	qp_keyring__free(ka);
	qp_signer__free(a);
}

int main(void)
{
	const char *tmp = getenv("QP_TMP");
	uint8_t *file;
	size_t size = 0;

	if (tmp && mkdir(tmp, 0755) && errno != EEXIST) { /* a fresh build directory */
		fprintf(stderr, "cannot make '%s': %s\n", tmp, strerror(errno));
		return 1;
	}
	snprintf(dir, sizeof(dir), "%s/test_sign.%d", tmp ? tmp : "/tmp", (int)getpid());
	if (mkdir(dir, 0755) || make_key("a", "ED25519", NULL) || make_key("b", "ED25519", NULL) ||
	    make_key("ec", "EC", "P-256")) {
		fprintf(stderr, "cannot make keys in '%s'\n", dir);
		return 1;
	}
	file = real_patch(&size);
	if (!file) {
		fprintf(stderr, "test_sign: QP_SRC not set or its fixture unreadable\n");
		return 1;
	}
	test_keys();
	test_sign_verify(file, size);
	test_reader(file, size);
	test_sign_file(file, size);
	free(file);
	{
		char cmd[4200];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (!check_failed && system(cmd))
			fprintf(stderr, "cannot remove '%s'\n", dir);
	}
	return check_report("test_sign");
}
