/* SPDX-License-Identifier: MIT */
/*
 * Which lines of an old source file are unchanged in the new one, and
 * where they went: the line mapping of a source diff (GNU diff's).
 */
#ifndef QPATCH_BUILDER_LINEMAP_H
#define QPATCH_BUILDER_LINEMAP_H

#include <stddef.h>

#include "qpatch/error.h"

struct qp_linemap_range {
	long old_first, old_last; /* unchanged lines in the old file */
	long new_first;           /* where the first of them is in the new file */
};

struct qp_linemap {
	struct qp_linemap_range *v; /* in order */
	size_t n;                   /* count of v */
};

int qp_linemap__build(const char *old_path, const char *new_path, struct qp_linemap *m,
		      struct qp_error *err);
/* The new line number of unchanged old line @line, or -1 if it changed. */
long qp_linemap__map(const struct qp_linemap *m, long line);
void qp_linemap__release(struct qp_linemap *m);

#endif
