/* SPDX-License-Identifier: MIT */
/*
 * libdecode: everything in qpatch that looks at x86-64 machine code.
 *
 * Built on Zydis; no Zydis type appears in this header, so callers never
 * depend on it.  All functions work on a caller-supplied byte buffer that
 * holds code as it sits at address @addr (an address in the target process,
 * or an offset in an object file: only differences matter).  Nothing here
 * allocates or keeps state between calls.
 */
#ifndef QPATCH_DECODE_H
#define QPATCH_DECODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define QP_JMP_REL32_SIZE 5 /* e9 rel32 */
#define QP_ENDBR64_SIZE 4   /* f3 0f 1e fa */

enum qp_insn_kind {
	QP_INSN_OTHER = 0, /* anything that falls through */
	QP_INSN_CALL,      /* call (direct or indirect) */
	QP_INSN_JMP,       /* unconditional jmp (direct or indirect) */
	QP_INSN_JCC,       /* conditional branch, incl. jrcxz and loop* */
	QP_INSN_RET,       /* ret, iret */
	QP_INSN_TRAP,      /* int3, ud2, hlt: execution does not continue */
};

struct qp_insn {
	uint64_t addr;          /* address of the first byte */
	uint8_t len;            /* length in bytes, 1..15 */
	enum qp_insn_kind kind; /* control-flow class */
	bool is_endbr64;        /* the instruction is endbr64 */
	bool indirect;          /* call/jmp through a register or memory */
	bool has_rel;           /* a relative branch immediate or RIP-relative disp */
	bool rip_relative;      /* the relative field is a RIP-relative memory disp */
	uint8_t rel_off;        /* offset of the relative field inside the insn */
	uint8_t rel_size;       /* 1, 2 or 4 bytes; 0 when !has_rel */
	uint64_t target;        /* branch target or RIP-relative address (has_rel) */
};

/*
 * Decode one instruction at @code (at most @size bytes available) that sits
 * at @addr.  Returns 0, or -EILSEQ for an invalid encoding, -ENODATA when
 * @size ends inside the instruction.
 */
int qp_decode_insn(const void *code, size_t size, uint64_t addr,
		   struct qp_insn *insn);

/*
 * Where a jump that replaces the function at @addr goes: @addr, or
 * @addr + 4 when the function starts with endbr64 (which is kept, so
 * indirect calls still land on an endbr64).
 */
uint64_t qp_decode_patch_entry(const void *code, size_t size, uint64_t addr);

/*
 * Check that @len bytes at @site can be overwritten inside the function
 * whose whole body is @code/@size at @addr: the range starts on an
 * instruction boundary and lies inside the function, the function decodes
 * completely, no branch or RIP-relative reference inside the function
 * targets an address in (site, site + len), and no call returns into it.
 * The range may end inside an instruction: its tail is never run, and a
 * branch or reference into that tail is refused like one into the range.
 * Returns 0, or a negative errno with a reason in @why (e.g. "branch at
 * 0x1240 targets 0x1232 inside the patched range 0x1230..0x1235",
 * "function is 3 bytes, too short for a 5-byte jump at offset 0").
 */
int qp_decode_check_patch_site(const void *code, size_t size, uint64_t addr,
			       uint64_t site, size_t len, char *why,
			       size_t why_size);

#endif
