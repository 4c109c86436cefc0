/* SPDX-License-Identifier: MIT */
/*
 * Stack unwinding of a stopped process's threads with libdw (CFI-based,
 * no frame pointers needed), for the loader's safety checks.
 */
#ifndef QPATCH_LOADER_UNWIND_H
#define QPATCH_LOADER_UNWIND_H

#include <stdint.h>
#include <sys/types.h>

#include "qpatch/error.h"

struct qp_unwind;

/* Report the process's modules; may run while the process runs. */
int qp_unwind__new(pid_t pid, struct qp_unwind **out, struct qp_error *err);

/*
 * Walk the frames of thread @tid, which the caller has stopped with ptrace.
 * @frame gets each frame's pc, already adjusted to lie inside the call
 * instruction for return addresses, and its depth (0 = where the thread
 * is); a non-zero return stops the walk and is returned.  Returns 0 when
 * the walk reached the outermost frame, or QP_UNWIND_PARTIAL with *@sp set
 * to the stack pointer of the last frame it could unwind: callers must
 * treat the stack above it conservatively.
 */
#define QP_UNWIND_PARTIAL 1
int qp_unwind__thread(struct qp_unwind *u, pid_t tid,
		      int (*frame)(uint64_t pc, int depth, void *arg), void *arg,
		      uint64_t *sp);

void qp_unwind__free(struct qp_unwind *u);

#endif
