/* SPDX-License-Identifier: MIT */
/*
 * The direct callers of a function in a linked binary (callsites.c): every
 * call, jmp and jcc with a rel32 field whose destination is the function,
 * found by decoding each function of the binary's symbol table (once for
 * many functions: qp_callsites__new).  Rewriting
 * those fields sends the callers elsewhere without touching the function
 * itself (for a function shorter than the 5-byte jump, or to spare a
 * patched call the detour through the old function's jump).
 *
 * Addresses are link-time addresses of the binary (add the load bias for a
 * process).  The builder asks about the original binary, the loader about
 * the file of the object mapped in the process (the same bytes, by
 * build-id), and checks each site in the process again.
 */
#ifndef QPATCH_CALLSITES_H
#define QPATCH_CALLSITES_H

#include <stddef.h>
#include <stdint.h>

#include "qpatch/elf.h"

#define QP_CALLSITE_MAX_LEN 8  /* longest branch recorded (prefixes + 0f 8x rel32) */
#define QP_CALLSITES_MAX 4096  /* most sites of one function */

/* One direct branch to the function, with a rel32 field. */
struct qp_callsite {
	uint64_t addr;          /* address of the instruction */
	uint8_t len;            /* its length, <= QP_CALLSITE_MAX_LEN */
	uint8_t rel_off;        /* offset of the rel32 field in it */
	uint8_t kind;           /* QP_INSN_CALL, QP_INSN_JMP or QP_INSN_JCC */
};

enum qp_callsites_flags {
	/*
	 * Every way into the function must be one of the sites: refuse
	 * (-ENOTSUP, with the reason) when its address escapes in a way that
	 * cannot be rewritten: exported in .dynsym, taken by a RIP-relative
	 * lea/mov, a 32-bit constant in code, stored in data or named by a
	 * dynamic relocation (init/fini arrays included), reached by a rel8
	 * branch or a branch into its middle, or entered by falling through
	 * from the code before it.  Without it, the sites found are returned
	 * and the rest is ignored (the function keeps its jump for them).
	 */
	QP_CALLSITES_ALL = 1 << 0,
};

/*
 * The sites of the function at @func (@size bytes) in @e, which must have
 * been opened with its .symtab (not QP_ELF_DYNSYM), into *@out (malloc'd,
 * sorted by address, NULL when none) and *@n.  Returns 0; -ENOTSUP with
 * the reason in @why (see QP_CALLSITES_ALL; without it only for a binary
 * with no symbol table); -E2BIG beyond QP_CALLSITES_MAX sites; -ENOMEM.
 */
int qp_callsites_find(const struct qp_elf *e, uint64_t func, uint64_t size, unsigned flags,
		      struct qp_callsite **out, size_t *n, char *why, size_t why_size);

/*
 * The same for many functions of one binary: qp_callsites__new() decodes
 * every function of @e once and keeps each direct reference into its
 * executable sections (about 30 bytes per reference); each
 * qp_callsites__find() then looks the function's up instead of decoding
 * the binary again, and answers as qp_callsites_find() would, with the
 * same reasons.  @e must outlive the index, which is only read after it is
 * built (queries from several threads are safe).  qp_callsites__new
 * returns 0 or -ENOMEM; qp_callsites__find also -EINVAL for a function
 * outside the executable sections.
 */
struct qp_callsites;

int qp_callsites__new(const struct qp_elf *e, struct qp_callsites **out);
int qp_callsites__find(const struct qp_callsites *x, uint64_t func, uint64_t size,
		       unsigned flags, struct qp_callsite **out, size_t *n, char *why,
		       size_t why_size);
void qp_callsites__free(struct qp_callsites *x);

#endif
