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
 * Are the @size bytes at @code (at @addr) alignment padding: whole NOP
 * (any form, 1 to 15 bytes) and INT3 instructions, and nothing else?
 * What compilers and linkers put between functions.
 */
bool qp_decode_is_padding(const void *code, size_t size, uint64_t addr);

/* Bytes a qp_decode_got_stub() stub takes at most. */
#define QP_GOT_STUB_MAX 48

/*
 * A stub doing what the instruction at @code (at @addr) does to a
 * variable it reaches through a [rip + disp32] operand, @var_off bytes
 * into it, with the variable's address taken from a GOT slot instead
 * (gotstub.c): a scratch register the instruction does not use is saved
 * below the red zone, loaded from the slot, the instruction runs on
 * [scratch + @var_off], the register and stack are restored, and a jmp
 * goes back.  Into @out (at least QP_GOT_STUB_MAX bytes): *@out_len bytes;
 * the slot's disp32 (RIP-relative, from the end of its field) is at
 * *@slot_field and the jmp's rel32 at *@jmp_field, both left 0 for the
 * caller.  Flags and every register the code sees are unchanged.
 * -ENOTSUP (with @why) for a branch through the variable, an instruction
 * that uses the stack pointer or has no such operand; -EILSEQ.
 */
int qp_decode_got_stub(const void *code, size_t size, uint64_t addr, int64_t var_off,
		       uint8_t *out, size_t out_size, size_t *out_len, size_t *slot_field,
		       size_t *jmp_field, char *why, size_t why_size);

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

/* ------------------------------------------------------------------------ */
/* Moving code and finding references (relocate.c)                          */
/* ------------------------------------------------------------------------ */

/* Longest instruction qp_decode_relocate() writes: widening a jcc rel8
 * adds 4 bytes, and no x86 instruction exceeds 15 bytes. */
#define QP_RELOCATE_MAX 15

/*
 * Re-encode the instruction at @code (sitting at @from, at most @size bytes
 * available) so that it has the same effect when it sits at @to, and write
 * it to @out (@out_size bytes; @out may overlap @code); *@out_len receives
 * its length.
 *
 *   - a RIP-relative memory operand keeps its absolute address, including
 *     one that points back into the code being moved;
 *   - a relative branch keeps its absolute target.  Its field keeps its
 *     size while the new displacement fits; jmp rel8 and jcc rel8 that no
 *     longer reach become jmp rel32 (+3 bytes) and jcc rel32 (+4 bytes);
 *     a rel32 field is never shrunk.  call rel32 stays a call: it pushes
 *     @to + length, the next instruction at the new place;
 *   - anything else is copied unchanged.
 *
 * The result is decoded again and must give the same mnemonic, prefixes
 * and target.  Returns 0, or with a reason in @why:
 *   -ERANGE   the target is beyond the +/-2 GiB a rel32 or disp32 reaches
 *             from @to, or jrcxz/jecxz/loop/loope/loopne/xbegin rel16 no
 *             longer reaches it and has no wider form;
 *   -ENOBUFS  @out_size is too small (QP_RELOCATE_MAX always suffices);
 *   -EILSEQ, -ENODATA  as qp_decode_insn();
 *   -ENOTSUP  Zydis cannot re-encode the widened branch (a jcc rel8 with
 *             so many prefixes that the rel32 form exceeds 15 bytes);
 *   -EINVAL   NULL @out or @out_len, or NULL @code with a non-zero @size.
 */
int qp_decode_relocate(const void *code, size_t size, uint64_t from,
		       uint64_t to, uint8_t *out, size_t out_size,
		       size_t *out_len, char *why, size_t why_size);

/* One relative field that points into the range asked about. */
struct qp_ref {
	uint64_t addr;          /* address of the instruction */
	uint64_t target;        /* branch target, or RIP-relative address */
	enum qp_insn_kind kind; /* CALL, JMP or JCC for a branch (direct, or
				 * through a RIP-relative slot); OTHER for a
				 * data reference (mov, lea, cmp, ...) */
	bool rip_relative;      /* the field is a [rip + disp32] memory
				 * operand, not a branch displacement */
	uint8_t len;            /* length of the instruction */
	uint8_t rel_off;        /* offset of the field inside it */
	uint8_t rel_size;       /* 1, 2 or 4 bytes */
};

/*
 * Sweep @code/@size at @addr linearly and collect every relative field whose
 * target lies in [@target_lo, @target_hi): direct call/jmp/jcc (rel8 and
 * rel32, plus loop/jrcxz/xbegin) and RIP-relative operands, in address
 * order.  The first @max go to @refs (which may be NULL when @max is 0);
 * *@count receives the total, which may exceed @max.  A field can only be
 * rewritten in place when rel_size is 4.
 *
 * Returns 0, or -EILSEQ/-ENODATA with a reason in @why when the sweep meets
 * bytes that do not decode ("cannot decode instruction at 0x1234: invalid
 * encoding"); *@count then holds the references found before them.  Sweep
 * function by function: the sweep cannot tell data in the code from
 * instructions.  -EINVAL for NULL @count, or NULL @refs with @max > 0.
 */
int qp_decode_find_refs(const void *code, size_t size, uint64_t addr,
			uint64_t target_lo, uint64_t target_hi,
			struct qp_ref *refs, size_t max, size_t *count,
			char *why, size_t why_size);

/* ------------------------------------------------------------------------ */
/* Comparing two versions of a function (compare.c)                          */
/* ------------------------------------------------------------------------ */

/* What differs between two instructions at the same index: bits of
 * qp_insn_diff.what. */
enum qp_diff_what {
	QP_DIFF_MNEMONIC = 1 << 0, /* the operation: mnemonic, lock/rep/bnd/
				    * notrack/xacquire prefixes, operand and
				    * address width, operand kinds, AVX
				    * vector length, masking mode, broadcast,
				    * rounding */
	QP_DIFF_LEN = 1 << 1,      /* the lengths differ (also when only the
				    * encoding does: imm8 vs imm32 forms) */
	QP_DIFF_REG = 1 << 2,      /* a register operand (or AVX-512 mask) */
	QP_DIFF_MEM = 1 << 3,      /* a memory operand: segment, base, index,
				    * scale, displacement or access size */
	QP_DIFF_IMM = 1 << 4,      /* an immediate value (not a branch
				    * displacement): a_imm and b_imm */
	QP_DIFF_REL = 1 << 5,      /* a branch target or RIP-relative address */
	QP_DIFF_COUNT = 1 << 6,    /* the functions have different instruction
				    * counts: the record is for the first
				    * instruction that only one of them has */
};

/* One pair of instructions, at the same index in both functions, that
 * differ. */
struct qp_insn_diff {
	size_t index;   /* instruction number, from 0, in both functions */
	uint64_t a_addr; /* the instruction in a (with QP_DIFF_COUNT, where
			  * a's instruction @index is or a ends) */
	uint64_t b_addr; /* the same in b */
	uint8_t a_len;  /* its length; 0 when a has no instruction @index */
	uint8_t b_len;  /* the same in b */
	unsigned what;  /* QP_DIFF_* bits */
	int64_t a_imm;  /* with QP_DIFF_IMM: the first immediate that */
	int64_t b_imm;  /* differs, as the CPU extends it to 64 bits */
};

/* The whole comparison. */
struct qp_compare_result {
	size_t a_count; /* instructions in a */
	size_t b_count; /* instructions in b */
	size_t ndiffs;  /* differing pairs, plus one record when the counts
			 * differ; the total, even beyond @max */
	unsigned what;  /* OR of the what of all records; 0: same code */
};

/*
 * Compare function @a (@asize bytes at @aaddr) with function @b instruction
 * by instruction, in lockstep.  Two instructions are the same when their
 * operation and operands are; their bytes may differ (89 c8 and 8b c1 are
 * both mov %ecx,%eax).  A branch target or RIP-relative address is compared
 *   - inside the function (up to its end included): by the index of the
 *     instruction it points at, so code that grew or shrank before it still
 *     compares equal.  A target inside an instruction compares by offset
 *     when both functions have the same instruction lengths throughout,
 *     and as different otherwise;
 *   - outside: by its offset from the function start, so a function moved
 *     as a whole together with what it refers to compares equal.
 * In a relocatable object a field that a relocation fills holds 0 and so
 * points at the next instruction in both versions: compare says nothing
 * about those, the relocations do.
 *
 * The first @max differing pairs go to @diffs (NULL when @max is 0), and
 * @res receives the counts.  Returns 0, or -EILSEQ/-ENODATA with a reason
 * in @why ("cannot decode instruction at 0x1234 of function b: invalid
 * encoding"), or -EINVAL for NULL @res, NULL @diffs with @max > 0, or NULL
 * code with a non-zero size.
 */
int qp_decode_compare(const void *a, size_t asize, uint64_t aaddr,
		      const void *b, size_t bsize, uint64_t baddr,
		      struct qp_insn_diff *diffs, size_t max,
		      struct qp_compare_result *res, char *why,
		      size_t why_size);

/*
 * Whether the functions differ, and only in immediate values: every record
 * is QP_DIFF_IMM, possibly with QP_DIFF_LEN (an immediate that moved from
 * imm8 to imm32), or is QP_DIFF_LEN alone (a different encoding of the same
 * instruction).  This is what a change of __LINE__ looks like.
 */
static inline bool qp_decode_imm_only(const struct qp_compare_result *res)
{
	return (res->what & QP_DIFF_IMM) &&
	       !(res->what & ~(unsigned)(QP_DIFF_IMM | QP_DIFF_LEN));
}

#endif
