/* SPDX-License-Identifier: MIT */
/*
 * The replacement table of a hand-written patch library (qpatch/so.h):
 * its ".qpatch.so" section, parsed from the file before anything is
 * loaded.  The file is untrusted: sizes, magic numbers, kinds and strings
 * are all checked; the parser works on a buffer, so that tests can feed
 * it anything.
 */
#ifndef QPATCH_LOADER_SOTAB_H
#define QPATCH_LOADER_SOTAB_H

#include <stddef.h>
#include <stdint.h>

#include "qpatch/error.h"
#include "qpatch/format.h"
#include "qpatch/so.h"

#define LD_SO_MAX_ENTRIES 4096 /* entries one table may hold */

/* One QPATCH_REPLACE or QPATCH_SYM entry. */
struct ld_so_item {
	uint32_t kind;                      /* QPATCH_SO_REPLACE or QPATCH_SO_SYM */
	uint64_t off;                       /* of its entry in the section */
	char file[QPATCH_SO_NAME_MAX];      /* source file scoping a static; "" for any */
	char name[QPATCH_SO_NAME_MAX];      /* symbol of the target */
};

struct ld_so_table {
	struct ld_so_item *v;               /* items in section order (owned) */
	size_t n;                           /* count of v */
	size_t nreplace;                    /* of which QPATCH_SO_REPLACE */
	uint32_t target_kind;               /* QPATCH_SO_TARGET or _TARGET_BUILDID */
	char target[QPATCH_SO_NAME_MAX];    /* its name, or the build-id in hex */
	uint8_t build_id[QP_BUILD_ID_MAX];  /* _TARGET_BUILDID: the build-id */
	size_t build_id_size;               /* its bytes */
};

/*
 * Parse the @size bytes @data of a ".qpatch.so" section into @t (release
 * with ld_so_table_release, also after a failure).  Exactly one target
 * entry, at least one replacement, no symbol replaced twice; names are
 * NUL-terminated symbol names ("file.c:name" for a static).  0 or
 * QP_EFORMAT with the reason.
 */
int ld_so_table_parse(const uint8_t *data, size_t size, struct ld_so_table *t,
		      struct qp_error *err);
void ld_so_table_release(struct ld_so_table *t);

/* Is the relocated entry @e (read back from the process) the one @it was
 * parsed from? */
int ld_so_entry_same(const struct qpatch_so_entry *e, const struct qpatch_so_entry *file_e);

#endif
