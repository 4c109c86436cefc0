/* SPDX-License-Identifier: MIT */
/*
 * Signed patches (docs/format.md, "Signature").
 *
 * A signed .qpatch file is an unsigned one followed by a signature block
 * of QP_SIG_SIZE bytes (struct qp_sig_disk): the Ed25519 signature, its
 * last 64 bytes, covers every byte of the file before it, the ELF file and
 * the block's own header alike.
 *
 * Finding the block (qp_sig_find) is part of the format library: the
 * reader strips it and keeps it in the model.  Making and checking
 * signatures (struct qp_signer, struct qp_keyring) is in the qp_sign
 * library, on OpenSSL's libcrypto.  Keys are PEM files, as
 * `openssl genpkey -algorithm ed25519` writes them.
 */
#ifndef QPATCH_SIGN_H
#define QPATCH_SIGN_H

#include <stddef.h>
#include <stdint.h>

#include "qpatch/error.h"

#define QP_SIG_MAGIC "QPSIGN\0\1"  /* 8 bytes, first bytes of the block */
#define QP_SIG_ED25519 1           /* algorithm: Ed25519 (RFC 8032), pure */
#define QP_SIG_KEY_ID_SIZE 16      /* first bytes of SHA-256(raw public key) */
#define QP_SIG_KEY_ID_HEX (2 * QP_SIG_KEY_ID_SIZE + 1)
#define QP_SIG_BYTES 64            /* an Ed25519 signature */

/* The signature block, the last bytes of a signed file; little-endian,
 * no padding (see the static assert). */
struct qp_sig_disk {
	char magic[8];                       /* QP_SIG_MAGIC */
	uint8_t algorithm;                   /* QP_SIG_ED25519 */
	uint8_t reserved[7];                 /* 0 */
	uint8_t key_id[QP_SIG_KEY_ID_SIZE];  /* which key signed */
	uint8_t sig[QP_SIG_BYTES];           /* signature of every byte before it */
};
#define QP_SIG_SIZE 96
_Static_assert(sizeof(struct qp_sig_disk) == QP_SIG_SIZE, "qp_sig_disk layout");

/*
 * Does @buf (@size bytes of a file named @name) end with a signature
 * block?  1 and a copy in *@out when it does (the patch is then the first
 * @size - QP_SIG_SIZE bytes), 0 when not, QP_EFORMAT with a message when
 * the block is malformed (rule 62).
 */
int qp_sig_find(const void *buf, size_t size, struct qp_sig_disk *out, const char *name,
		struct qp_error *err);
/* The signature block of the file a patch was read from; NULL when that
 * was not signed, or the patch was not read from a file.  (The reader
 * sets it; the writer writes unsigned files.) */
struct qp_patch;
const struct qp_sig_disk *qp_patch__signature(const struct qp_patch *p);
void qp_patch__set_signature(struct qp_patch *p, const struct qp_sig_disk *sig);
/* @id as hex, 32 digits and a NUL. */
void qp_sig_key_id_hex(const uint8_t *id, char *out);

/* --- making signatures (qp_sign library) --------------------------------- */

/* An Ed25519 private key. */
struct qp_signer;

/* Load the PEM private key at @path; refused unless it is Ed25519. */
int qp_signer__open(const char *path, struct qp_signer **out, struct qp_error *err);
const uint8_t *qp_signer__key_id(const struct qp_signer *s);
/* The signature block for the unsigned file @buf. */
int qp_signer__sign(const struct qp_signer *s, const void *buf, size_t size,
		    struct qp_sig_disk *out, struct qp_error *err);
/* Append a signature block to the unsigned patch file @path. */
int qp_signer__sign_file(const struct qp_signer *s, const char *path, struct qp_error *err);
void qp_signer__free(struct qp_signer *s);

/* --- checking signatures (qp_sign library) -------------------------------- */

/* Reads a whole file, at most @max bytes, e.g. qp_trust_read(). */
typedef int (*qp_read_fn)(const char *path, size_t max, uint8_t **buf, size_t *len,
			  struct qp_error *err);

/* Trusted Ed25519 public keys. */
struct qp_keyring;

int qp_keyring__new(struct qp_keyring **out, struct qp_error *err);
/* Add the key in PEM text @pem (a public key, or a private key whose public
 * half is taken); @name is for messages.  Refused unless Ed25519. */
int qp_keyring__add_pem(struct qp_keyring *kr, const char *name, const void *pem, size_t len,
			struct qp_error *err);
/* Add the key file @path, or every *.pem file of the directory @path,
 * read with @read (NULL: a plain read). */
int qp_keyring__add_path(struct qp_keyring *kr, const char *path, qp_read_fn read,
			 struct qp_error *err);
size_t qp_keyring__count(const struct qp_keyring *kr);
/*
 * Check the signature of the patch file @buf (named @name in messages):
 * 0 when it is signed by one of the keys, else QP_ESIGNATURE and a
 * message saying which: "signature missing", "signed with another key"
 * (naming its key id), or "altered after signing".
 */
int qp_keyring__verify(const struct qp_keyring *kr, const void *buf, size_t size,
		       const char *name, struct qp_error *err);
void qp_keyring__free(struct qp_keyring *kr);

#endif
