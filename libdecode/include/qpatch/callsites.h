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
 * The same for many functions of one binary, decoding it once.
 * qp_callsites__new() with @nwant 0 decodes every function of @e and
 * keeps each direct reference into its executable sections (about 30
 * bytes per reference); each qp_callsites__find() then looks the
 * function's up, and answers as qp_callsites_find() would, with the same
 * sites and reasons.  With @want[@nwant], the starts of the functions whose
 * sites will be asked without QP_CALLSITES_ALL, it decodes only the
 * functions that hold 4 bytes which, read as a rel32, reach one of them
 * (the others cannot hold a site of theirs): much less.  A question about
 * another function, or with QP_CALLSITES_ALL (which must see every
 * reference), first decodes the whole binary, once.  @e must outlive the index; one
 * thread at a time.  Returns 0, -ENOMEM, or (qp_callsites__find) the
 * answer, with -EINVAL for a function outside the executable sections.
 */
struct qp_callsites;

int qp_callsites__new(const struct qp_elf *e, const uint64_t *want, size_t nwant,
		      struct qp_callsites **out);
int qp_callsites__find(struct qp_callsites *x, uint64_t func, uint64_t size, unsigned flags,
		       struct qp_callsite **out, size_t *n, char *why, size_t why_size);
void qp_callsites__free(struct qp_callsites *x);

#endif
