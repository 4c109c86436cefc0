/* SPDX-License-Identifier: MIT */
/*
 * Stack unwinding of a stopped process's threads from call frame
 * information (no frame pointers needed): the CFI of every mapped object,
 * found by libdwfl, and the CFI patches carry for their own code; libdw
 * interprets it.  For the loader's safety checks.
 */
#ifndef QPATCH_LOADER_UNWIND_H
#define QPATCH_LOADER_UNWIND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/user.h>

#include <libelf.h>

#include "qpatch/error.h"

struct qp_unwind;

/* Report the process's modules; may run while the process runs. */
int qp_unwind__new(pid_t pid, struct qp_unwind **out, struct qp_error *err);

/* Code in [@lo, @hi) (a patch in the process) is described by the
 * .eh_frame bytes @eh, @size bytes long, which sit at @eh_addr in the
 * process (its pc-relative pointers are relative to that); copied. */
int qp_unwind__add_cfi(struct qp_unwind *u, uint64_t lo, uint64_t hi, const uint8_t *eh,
		       size_t size, uint64_t eh_addr, struct qp_error *err);

/*
 * Walk the frames of a thread stopped with registers @regs (the caller
 * holds it stopped).
 * @frame gets each frame's pc, already adjusted to lie inside the call
 * instruction for return addresses (@exact false: the return address is
 * pc + 1; true for the thread's own position and a frame a signal
 * interrupted), and its depth (0 = where the thread is); a non-zero
 * return stops the walk and is returned.  Returns 0 when
 * the walk reached the outermost frame, or QP_UNWIND_PARTIAL with *@sp set
 * to the stack pointer of the last frame it could unwind: callers must
 * treat the stack above it conservatively.
 */
#define QP_UNWIND_PARTIAL 1
int qp_unwind__thread(struct qp_unwind *u, const struct user_regs_struct *regs,
		      int (*frame)(uint64_t pc, int depth, bool exact, void *arg), void *arg,
		      uint64_t *sp);

void qp_unwind__free(struct qp_unwind *u);

/* Whether the .eh_frame of an object the target mapped passes
 * qp_cfi_check() (false without section headers or .eh_frame): the CFI of
 * an object that does not is never used, its frames end the walk. */
bool qp_unwind__elf_cfi_ok(Elf *elf);

#endif
