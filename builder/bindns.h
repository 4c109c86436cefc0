/* SPDX-License-Identifier: MIT */
/*
 * Running a build at the original tree's path: a private mount namespace in
 * which the work tree is bind-mounted over the original tree, so that a
 * build directory configured in the original tree (absolute paths in its
 * Makefiles, build.ninja, dependency files) builds the work tree's files,
 * and everything the compiler records (__FILE__, debug info, the build-id)
 * is what a build in the original tree gives.  The user's tree is not
 * touched: the mount exists only inside the build's namespace.
 */
#ifndef QPATCH_BINDNS_H
#define QPATCH_BINDNS_H

/*
 * In a child process about to exec: enter a new mount namespace (and, when
 * not root, a user namespace mapping only the caller's uid and gid), make
 * every mount private to it, and bind @tree over @at.  Returns 0 or a
 * negative errno; on failure the process may be half set up and should
 * only report and _exit.
 */
int qp_bindns_enter(const char *tree, const char *at);

/* Whether qp_bindns_enter() works here (tried in a short-lived child). */
int qp_bindns_probe(const char *tree, const char *at);

#endif
