// SPDX-License-Identifier: MIT
/*
 * Ed25519 signatures of .qpatch files with OpenSSL's EVP API
 * (docs/format.md, "Signature").  Ed25519 is used pure (RFC 8032): the
 * message is the whole file before the signature, which is in memory
 * anyway.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "qpatch/file.h"
#include "qpatch/sign.h"

#define SIGN_MAX_KEY_FILE (64u << 10) /* a PEM key is a few hundred bytes */
#define SIGN_MAX_PATCH (1ull << 30)   /* the reader's limit */
#define SIGN_MAX_KEYS 1024            /* keys in one ring */
#define SIGN_RAW_KEY 32               /* bytes of a raw Ed25519 public key */

struct qp_signer {
	EVP_PKEY *key;                         /* the private key */
	uint8_t key_id[QP_SIG_KEY_ID_SIZE];    /* of its public half */
};

struct sign_key {
	EVP_PKEY *key;                         /* public key */
	uint8_t key_id[QP_SIG_KEY_ID_SIZE];
	char name[256];                        /* where it came from */
};

struct qp_keyring {
	struct sign_key *v;                    /* the keys */
	size_t n;                              /* count of v */
};

/* OpenSSL's last error as text, and its queue emptied. */
static const char *sign_ossl_err(char *buf, size_t size)
{
	unsigned long e = ERR_peek_last_error();

	if (!e)
		snprintf(buf, size, "no reason given");
	else
		ERR_error_string_n(e, buf, size);
	ERR_clear_error();
	return buf;
}

/* Key id of @key: the first bytes of SHA-256 of the raw public key. */
static int sign_key_id(EVP_PKEY *key, uint8_t *id, const char *name, struct qp_error *err)
{
	uint8_t raw[SIGN_RAW_KEY], md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	size_t len = sizeof(raw);
	char why[256];

	if (EVP_PKEY_get_raw_public_key(key, raw, &len) != 1 || len != sizeof(raw) ||
	    EVP_Digest(raw, len, md, &mdlen, EVP_sha256(), NULL) != 1 ||
	    mdlen < QP_SIG_KEY_ID_SIZE)
		return qp_seterr(err, -EINVAL, "'%s': cannot compute the key id: %s", name,
				 sign_ossl_err(why, sizeof(why)));
	memcpy(id, md, QP_SIG_KEY_ID_SIZE);
	return 0;
}

/* Refuse a key that is not Ed25519, naming what it is. */
static int sign_check_type(EVP_PKEY *key, const char *name, struct qp_error *err)
{
	const char *type;

	if (EVP_PKEY_get_base_id(key) == EVP_PKEY_ED25519)
		return 0;
	type = EVP_PKEY_get0_type_name(key);
	return qp_seterr(err, -EINVAL, "'%s' is not an Ed25519 key but a key of type %s (make "
			 "one with 'openssl genpkey -algorithm ed25519')", name, type ? type : "unknown");
}

/* Read a whole small file. */
static int sign_read_plain(const char *path, size_t max, uint8_t **buf, size_t *len,
			   struct qp_error *err)
{
	int fd, ret;

	*buf = NULL;
	*len = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return qp_seterr(err, -errno, "unable to open '%s': %s", path, strerror(errno));
	ret = qp_read_regular(fd, path, max, buf, len, err);
	close(fd);
	return ret;
}

/* --- signer --------------------------------------------------------------- */

int qp_signer__open(const char *path, struct qp_signer **out, struct qp_error *err)
{
	struct qp_signer *s;
	uint8_t *pem;
	size_t len;
	char why[256];
	BIO *bio;
	int ret;

	*out = NULL;
	ret = sign_read_plain(path, SIGN_MAX_KEY_FILE, &pem, &len, err);
	if (ret)
		return ret;
	s = calloc(1, sizeof(*s));
	bio = BIO_new_mem_buf(pem, (int)len);
	if (!s || !bio) {
		ret = qp_seterr(err, -ENOMEM, "out of memory");
	} else {
		s->key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
		if (!s->key)
			ret = qp_seterr(err, -EINVAL, "'%s' is not a PEM private key: %s", path,
					sign_ossl_err(why, sizeof(why)));
	}
	if (!ret)
		ret = sign_check_type(s->key, path, err);
	if (!ret)
		ret = sign_key_id(s->key, s->key_id, path, err);
	BIO_free(bio);
	OPENSSL_cleanse(pem, len);
	free(pem);
	if (ret) {
		qp_signer__free(s);
		return ret;
	}
	*out = s;
	return 0;
}

const uint8_t *qp_signer__key_id(const struct qp_signer *s)
{
	return s->key_id;
}

int qp_signer__sign(const struct qp_signer *s, const void *buf, size_t size,
		    struct qp_sig_disk *out, struct qp_error *err)
{
	size_t msglen = size + QP_SIG_SIZE - QP_SIG_BYTES, siglen = QP_SIG_BYTES;
	EVP_MD_CTX *ctx = NULL;
	uint8_t *msg;
	char why[256];
	int ret = 0;

	if (qp_sig_find(buf, size, NULL, "<memory>", NULL))
		return qp_seterr(err, -EEXIST, "the patch is signed already");
	memset(out, 0, sizeof(*out));
	memcpy(out->magic, QP_SIG_MAGIC, sizeof(out->magic));
	out->algorithm = QP_SIG_ED25519;
	memcpy(out->key_id, s->key_id, sizeof(out->key_id));
	/* the message: the file, then the block up to the signature */
	msg = malloc(msglen);
	if (!msg)
		return qp_seterr(err, -ENOMEM, "out of memory");
	memcpy(msg, buf, size);
	memcpy(msg + size, out, QP_SIG_SIZE - QP_SIG_BYTES);
	ctx = EVP_MD_CTX_new();
	if (!ctx || EVP_DigestSignInit(ctx, NULL, NULL, NULL, s->key) != 1 ||
	    EVP_DigestSign(ctx, out->sig, &siglen, msg, msglen) != 1 || siglen != QP_SIG_BYTES)
		ret = qp_seterr(err, -EINVAL, "Ed25519 signing failed: %s",
				sign_ossl_err(why, sizeof(why)));
	EVP_MD_CTX_free(ctx);
	free(msg);
	return ret;
}

int qp_signer__sign_file(const struct qp_signer *s, const char *path, struct qp_error *err)
{
	struct qp_sig_disk sig;
	uint8_t *buf;
	size_t len, done = 0;
	int fd, ret;

	ret = sign_read_plain(path, SIGN_MAX_PATCH, &buf, &len, err);
	if (ret)
		return ret;
	ret = qp_signer__sign(s, buf, len, &sig, err);
	free(buf);
	if (ret)
		return qp_preperr(err, ret, "'%s'", path);
	fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
	if (fd < 0)
		return qp_seterr(err, -errno, "unable to open '%s': %s", path, strerror(errno));
	while (!ret && done < sizeof(sig)) {
		ssize_t n = write(fd, (const uint8_t *)&sig + done, sizeof(sig) - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			ret = qp_seterr(err, n ? -errno : -EIO, "cannot write '%s': %s", path,
					n ? strerror(errno) : "short write");
		else
			done += (size_t)n;
	}
	if (close(fd) && !ret)
		ret = qp_seterr(err, -errno, "cannot write '%s': %s", path, strerror(errno));
	return ret;
}

void qp_signer__free(struct qp_signer *s)
{
	if (!s)
		return;
	EVP_PKEY_free(s->key);
	free(s);
}

/* --- keyring -------------------------------------------------------------- */

int qp_keyring__new(struct qp_keyring **out, struct qp_error *err)
{
	*out = calloc(1, sizeof(**out));
	return *out ? 0 : qp_seterr(err, -ENOMEM, "out of memory");
}

/* A trusted key is read without asking anyone: an encrypted private key
 * file is not a public key. */
static int sign_no_passphrase(char *buf, int size, int rwflag, void *arg)
{
	(void)buf, (void)size, (void)rwflag, (void)arg;
	return -1;
}

int qp_keyring__add_pem(struct qp_keyring *kr, const char *name, const void *pem, size_t len,
			struct qp_error *err)
{
	struct sign_key k = { 0 }, *v;
	char why[256];
	BIO *bio;
	int ret = 0;

	if (kr->n >= SIGN_MAX_KEYS)
		return qp_seterr(err, -E2BIG, "'%s': more than %d trusted keys", name, SIGN_MAX_KEYS);
	if (len > SIGN_MAX_KEY_FILE)
		return qp_seterr(err, -EFBIG, "'%s': too big for a key", name);
	bio = BIO_new_mem_buf(pem, (int)len);
	if (!bio)
		return qp_seterr(err, -ENOMEM, "out of memory");
	k.key = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
	if (!k.key) {
		/* a private key file also names its public key */
		ERR_clear_error();
		BIO_free(bio);
		bio = BIO_new_mem_buf(pem, (int)len);
		k.key = bio ? PEM_read_bio_PrivateKey(bio, NULL, sign_no_passphrase, NULL) : NULL;
	}
	BIO_free(bio);
	if (!k.key)
		return qp_seterr(err, -EINVAL, "'%s' is not a PEM public key: %s", name,
				 sign_ossl_err(why, sizeof(why)));
	ret = sign_check_type(k.key, name, err);
	if (!ret)
		ret = sign_key_id(k.key, k.key_id, name, err);
	if (!ret && !(v = realloc(kr->v, (kr->n + 1) * sizeof(*v))))
		ret = qp_seterr(err, -ENOMEM, "out of memory");
	if (ret) {
		EVP_PKEY_free(k.key);
		return ret;
	}
	snprintf(k.name, sizeof(k.name), "%s", name);
	kr->v = v;
	kr->v[kr->n++] = k;
	return 0;
}

static int sign_add_file(struct qp_keyring *kr, const char *path, qp_read_fn rd,
			 struct qp_error *err)
{
	uint8_t *buf;
	size_t len;
	int ret = rd(path, SIGN_MAX_KEY_FILE, &buf, &len, err);

	if (ret)
		return ret;
	ret = qp_keyring__add_pem(kr, path, buf, len, err);
	free(buf);
	return ret;
}

static int sign_name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every *.pem file of directory @path, in name order. */
static int sign_add_dir(struct qp_keyring *kr, const char *path, qp_read_fn rd,
			struct qp_error *err)
{
	char file[PATH_MAX], **names = NULL, **v;
	size_t n = 0, i, before = kr->n;
	struct dirent *de;
	int ret = 0;
	DIR *d = opendir(path);

	if (!d)
		return qp_seterr(err, -errno, "cannot read '%s': %s", path, strerror(errno));
	while (!ret && (de = readdir(d))) {
		size_t l = strlen(de->d_name);

		if (de->d_name[0] == '.' || l < 5 || strcmp(de->d_name + l - 4, ".pem"))
			continue;
		if (n >= SIGN_MAX_KEYS) {
			ret = qp_seterr(err, -E2BIG, "'%s': more than %d keys", path, SIGN_MAX_KEYS);
			break;
		}
		v = realloc(names, (n + 1) * sizeof(*v));
		if (v)
			names = v;
		if (!v || !(names[n] = strdup(de->d_name)))
			ret = qp_seterr(err, -ENOMEM, "out of memory");
		else
			n++;
	}
	closedir(d);
	if (n > 1)
		qsort(names, n, sizeof(*names), sign_name_cmp);
	for (i = 0; !ret && i < n; i++) {
		snprintf(file, sizeof(file), "%s/%s", path, names[i]);
		ret = sign_add_file(kr, file, rd, err);
	}
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	if (!ret && kr->n == before)
		ret = qp_seterr(err, -ENOENT, "no key (*.pem file) in '%s'", path);
	return ret;
}

int qp_keyring__add_path(struct qp_keyring *kr, const char *path, qp_read_fn read,
			 struct qp_error *err)
{
	struct stat st;

	if (!read)
		read = sign_read_plain;
	if (stat(path, &st))
		return qp_seterr(err, -errno, "unable to open '%s': %s", path, strerror(errno));
	if (S_ISDIR(st.st_mode))
		return sign_add_dir(kr, path, read, err);
	return sign_add_file(kr, path, read, err);
}

size_t qp_keyring__count(const struct qp_keyring *kr)
{
	return kr ? kr->n : 0;
}

/* Does @sig over the first @msglen bytes of @buf verify with @key? */
static bool sign_verify_one(EVP_PKEY *key, const uint8_t *buf, size_t msglen, const uint8_t *sig)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	bool ok = ctx && EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, key) == 1 &&
		  EVP_DigestVerify(ctx, sig, QP_SIG_BYTES, buf, msglen) == 1;

	EVP_MD_CTX_free(ctx);
	ERR_clear_error();
	return ok;
}

int qp_keyring__verify(const struct qp_keyring *kr, const void *buf, size_t size,
		       const char *name, struct qp_error *err)
{
	char hex[QP_SIG_KEY_ID_HEX], mine[QP_SIG_KEY_ID_HEX];
	struct qp_sig_disk sig;
	size_t i;
	int ret;

	ret = qp_sig_find(buf, size, &sig, name, err);
	if (ret < 0) { /* a malformed block: the reader's message, this code */
		if (err)
			err->code = QP_ESIGNATURE;
		return QP_ESIGNATURE;
	}
	if (!ret)
		return qp_seterr(err, QP_ESIGNATURE, "'%s': signature missing: the patch is not "
				 "signed, and a signature by a trusted key is required", name);
	qp_sig_key_id_hex(sig.key_id, hex);
	if (sig.algorithm != QP_SIG_ED25519)
		return qp_seterr(err, QP_ESIGNATURE, "'%s': signature algorithm %u is not known "
				 "(%u is Ed25519)", name, sig.algorithm, QP_SIG_ED25519);
	for (i = 0; kr && i < kr->n; i++) {
		if (memcmp(kr->v[i].key_id, sig.key_id, QP_SIG_KEY_ID_SIZE))
			continue;
		if (sign_verify_one(kr->v[i].key, buf, size - QP_SIG_BYTES,
				    (const uint8_t *)buf + size - QP_SIG_BYTES))
			return 0;
		return qp_seterr(err, QP_ESIGNATURE, "'%s': signature does not verify with key %s "
				 "('%s'): the patch was altered after signing", name, hex,
				 kr->v[i].name);
	}
	if (kr && kr->n == 1) {
		qp_sig_key_id_hex(kr->v[0].key_id, mine);
		return qp_seterr(err, QP_ESIGNATURE, "'%s': signed with another key: key id %s, "
				 "not the trusted key %s ('%s')", name, hex, mine, kr->v[0].name);
	}
	return qp_seterr(err, QP_ESIGNATURE, "'%s': signed with another key: key id %s is not "
			 "one of the %zu trusted keys", name, hex, kr ? kr->n : 0);
}

void qp_keyring__free(struct qp_keyring *kr)
{
	size_t i;

	if (!kr)
		return;
	for (i = 0; i < kr->n; i++)
		EVP_PKEY_free(kr->v[i].key);
	free(kr->v);
	free(kr);
}
