/* SPDX-License-Identifier: MIT */
/*
 * The compilations qpatch-cc recorded in a tree.
 *
 * Every compilation of one C source leaves DIR/.qpatch-cc/OBJ.cmd next to
 * its object DIR/OBJ (the command, see cc_main.c) and OBJ.d (the files it
 * read, in make's syntax, from the compiler's -MD).  A build that does not
 * rebuild what changed (redis builds deps/ once, behind a stamp file)
 * leaves objects made from the original sources; with these records
 * qpatch-build finds them and compiles them again as the build did.
 * Records are kept by the tree itself, so a tree deployed before
 * qpatch-build ever ran has them too.
 */
#ifndef QPATCH_BUILDER_RECORDS_H
#define QPATCH_BUILDER_RECORDS_H

#include <stdbool.h>
#include <stddef.h>

#include "qpatch/error.h"

/* One compilation.  Paths "rel" are relative to the tree; NULL when the
 * path lies outside it. */
struct qp_record {
	char *cwd_rel;   /* directory it ran in ("" for the tree's top) */
	char *src_rel;   /* the C source */
	char *obj_rel;   /* the object */
	char **args;     /* qpatch-cc's arguments (no argv[0]), NULL-terminated */
	char **deps;     /* files inside the tree it read (the source too) */
	size_t ndeps;    /* count of deps */
	bool deps_known; /* false: no usable OBJ.d, what it read is unknown */
};

struct qp_records;

/*
 * Maps a path as a build saw it (absolute) to one relative to the tree,
 * into @out (PATH_MAX); returns 0, or -1 when it lies outside the tree.
 */
typedef int (*qp_records_rel_fn)(void *arg, const char *path, char *out);

/*
 * Every record under directory @root, paths made relative by @rel (with
 * @arg); with @deps, each one's OBJ.d is read too.  A record that cannot
 * be read is skipped (a build that is writing one renames it into place).
 */
int qp_records__load(const char *root, bool deps, qp_records_rel_fn rel, void *arg,
		     struct qp_records **out, struct qp_error *err);
size_t qp_records__count(const struct qp_records *r);
const struct qp_record *qp_records__get(const struct qp_records *r, size_t i);
void qp_records__free(struct qp_records *r);

#endif
