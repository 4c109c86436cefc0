/* SPDX-License-Identifier: MIT */
#ifndef QP_BUILDER_PREFIXMAP_H
#define QP_BUILDER_PREFIXMAP_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Source paths that a compilation's -ffile-prefix-map / -fdebug-prefix-map
 * rewrote, turned back into the paths the build saw.
 *
 * The debug info of an object built with "-ffile-prefix-map=OLD=NEW" names
 * its sources under NEW.  When NEW is "." and OLD the tree's root (Debian's
 * flags run from the top of a package), a relative name is relative to the
 * root; but a build configured in a subdirectory with the flags taken there
 * (CFLAGS=$(dpkg-buildflags) ../src/configure, run in build/) maps build/
 * to ".", and "../src/lib/x.c" is build/../src/lib/x.c.  Which directory was
 * mapped is only in the compile command: qpatch-cc's record of it
 * (DIR/.qpatch-cc/OBJ.cmd, docs/builder.md) keeps the arguments and the
 * directory it ran in.
 */

/*
 * Called with each path @path could have been before a map of the
 * compilation rewrote it (absolute, "." and ".." folded away), the last map
 * of the command first (gcc lets the last matching one win); returns true
 * to stop there.
 */
typedef bool (*qp_prefix_unmap_fn)(const char *path, void *arg);

/*
 * Undo the prefix maps of the compilation that made object @obj (the one
 * whose record lies beside it) on @path, a source path as its debug info
 * gives it: for every map whose NEW is "." (and @path is relative) or a
 * leading part of @path, OLD joined with the rest of @path is offered to
 * @fn.  Returns true when @fn accepted one; false when none was accepted,
 * @obj has no record, or its command maps nothing.
 */
bool qp_prefix_unmap(const char *obj, const char *path, qp_prefix_unmap_fn fn, void *arg);

#endif
