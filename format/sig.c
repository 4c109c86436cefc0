// SPDX-License-Identifier: MIT
/*
 * The signature block at the end of a signed .qpatch file: finding it and
 * checking its fixed fields (docs/format.md, rules 61 and 62).  No
 * cryptography here: that is sign.c, in the qp_sign library.
 */
#include <elf.h>
#include <string.h>

#include "qpatch/sign.h"

int qp_sig_find(const void *buf, size_t size, struct qp_sig_disk *out, const char *name,
		struct qp_error *err)
{
	static const uint8_t zero[sizeof(out->reserved)];
	struct qp_sig_disk d;

	/* rule 61: the block is the last QP_SIG_SIZE bytes, after at least an
	 * ELF header; anything else is an unsigned file */
	if (!buf || size < QP_SIG_SIZE + sizeof(Elf64_Ehdr))
		return 0;
	memcpy(&d, (const uint8_t *)buf + size - QP_SIG_SIZE, sizeof(d));
	if (memcmp(d.magic, QP_SIG_MAGIC, sizeof(d.magic)))
		return 0;
	/* rule 62 */
	if (!d.algorithm)
		return qp_seterr(err, QP_EFORMAT, "'%s': signature block: algorithm 0", name);
	if (memcmp(d.reserved, zero, sizeof(zero)))
		return qp_seterr(err, QP_EFORMAT, "'%s': signature block: reserved bytes are not 0",
				 name);
	if (out)
		*out = d;
	return 1;
}

void qp_sig_key_id_hex(const uint8_t *id, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < QP_SIG_KEY_ID_SIZE; i++) {
		out[2 * i] = digits[id[i] >> 4];
		out[2 * i + 1] = digits[id[i] & 15];
	}
	out[2 * QP_SIG_KEY_ID_SIZE] = '\0';
}
