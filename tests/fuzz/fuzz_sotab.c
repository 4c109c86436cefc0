// SPDX-License-Identifier: MIT
/*
 * libFuzzer harness of the table of a hand-written patch library
 * (loader/sotab.c ld_so_table_parse): the bytes of a ".qpatch.so" section
 * of an untrusted file.  Whatever it accepts keeps the table's promises.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sotab.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct qp_error err = { 0 };
	struct ld_so_table t;
	size_t i, nrep = 0;

	if (ld_so_table_parse(data, size, &t, &err)) {
		if (err.code >= 0 || !err.msg[0])
			abort();
		ld_so_table_release(&t);
		return 0;
	}
	if (!t.target_kind || !t.nreplace || t.n > LD_SO_MAX_ENTRIES ||
	    strlen(t.target) >= QPATCH_SO_NAME_MAX || t.build_id_size > QP_BUILD_ID_MAX)
		abort();
	for (i = 0; i < t.n; i++) {
		if (!t.v[i].name[0] || strlen(t.v[i].name) >= QPATCH_SO_NAME_MAX ||
		    strlen(t.v[i].file) >= QPATCH_SO_NAME_MAX ||
		    t.v[i].off + sizeof(struct qpatch_so_entry) > size)
			abort();
		nrep += t.v[i].kind == QPATCH_SO_REPLACE;
	}
	if (nrep != t.nreplace)
		abort();
	ld_so_table_release(&t);
	return 0;
}
