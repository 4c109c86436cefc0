// SPDX-License-Identifier: MIT
/*
 * libFuzzer harness for the .qpatch reader.  Every input must be either
 * refused with a message or accepted; an accepted patch must survive the
 * writer and be read back to the same counts (a reader/validator that
 * accepts what the writer cannot reproduce is a bug too).
 */
#include <stdint.h>
#include <stdlib.h>

#include "qpatch/format.h"

static void fuzz_roundtrip(struct qp_patch *p)
{
	struct qp_error err = { 0 };
	struct qp_patch *q;
	void *buf = NULL;
	size_t size = 0;

	if (qp_patch__write_mem(p, &buf, &size, &err))
		abort(); /* a patch the reader accepted is valid */
	q = qp_patch__open_mem(buf, size, &err);
	if (!q)
		abort();
	if (qp_patch__section_count(q) != qp_patch__section_count(p) ||
	    qp_patch__src_sym_count(q) != qp_patch__src_sym_count(p) ||
	    qp_patch__dst_sym_count(q) != qp_patch__dst_sym_count(p) ||
	    qp_patch__rela_count(q) != qp_patch__rela_count(p) ||
	    qp_patch__info(q)->image_size != qp_patch__info(p)->image_size)
		abort();
	qp_patch__free(q);
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct qp_error err = { 0 };
	struct qp_patch *p = qp_patch__open_mem(data, size, &err);

	if (!p) {
		if (err.code >= 0 || !err.msg[0])
			abort(); /* refused without saying why */
		return 0;
	}
	fuzz_roundtrip(p);
	qp_patch__free(p);
	return 0;
}
