/* SPDX-License-Identifier: MIT */
/*
 * Which objects a binary of the build was linked from.
 *
 * A tree often builds several binaries (redis: redis-server, redis-cli,
 * redis-benchmark; libtool: the same sources compiled twice, for the shared
 * and for the static library).  Only objects linked into the target may be
 * compared with it: another binary's `main` changed is not the target's.
 * qpatch-cc logs every link it runs ("CWD<TAB>OUTPUT<TAB>INPUT..." in
 * $QPATCH_CC_LOG.links); the inputs are objects and archives, whose members
 * are found by content (regular archives) or by path (thin archives, as
 * meson makes them), archives inside thin archives included.
 */
#ifndef QPATCH_BUILDER_LINKSET_H
#define QPATCH_BUILDER_LINKSET_H

#include <stdbool.h>

#include "qpatch/error.h"

struct qp_linkset;

/*
 * The objects the last link of @binary in @log (paths as the build saw
 * them) was made from.  Paths in the log under @seen are read as under
 * @root (the build ran with the tree mounted at another path); both may be
 * NULL.  Returns -ENOENT when the log has no link of @binary.
 */
int qp_linkset__load(const char *log, const char *binary, const char *seen, const char *root,
		     struct qp_linkset **out, struct qp_error *err);
/* Was @obj (a path under @root) linked into the binary? */
bool qp_linkset__has(const struct qp_linkset *ls, const char *obj);
/* Was an object of base name @name ("x.o"), whatever its content, linked
 * into the binary? */
bool qp_linkset__has_name(const struct qp_linkset *ls, const char *name);
void qp_linkset__free(struct qp_linkset *ls);

#endif
