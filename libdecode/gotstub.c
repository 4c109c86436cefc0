// SPDX-License-Identifier: MIT
/*
 * libdecode: an instruction that reads or writes a variable through a
 * [rip + disp32] operand, made to reach the variable through a GOT slot
 * instead (qp_decode_got_stub).
 *
 * Code built for an executable reads a shared library's data directly,
 * trusting the static linker to copy the variable into the program
 * (a copy relocation).  A fix that uses library data the program never
 * used (`fprintf(stderr, ...)` in a program that never touched stderr)
 * has no such copy to reach, and the library lies out of 32-bit reach.
 * The instruction is kept, with its memory operand rebased on a scratch
 * register that holds the variable's address, loaded from a GOT slot the
 * loader fills; around it the scratch register is saved below the red
 * zone, so every register and flag the code sees is as before.
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include <Zydis/Zydis.h>

#include "decode_internal.h"

/* Scratch candidates, in order: the registers code is least likely to use. */
static const ZydisRegister stub_scratch[] = {
	ZYDIS_REGISTER_R11, ZYDIS_REGISTER_R10, ZYDIS_REGISTER_R9, ZYDIS_REGISTER_R8,
	ZYDIS_REGISTER_RCX, ZYDIS_REGISTER_RDX, ZYDIS_REGISTER_RSI, ZYDIS_REGISTER_RDI,
	ZYDIS_REGISTER_RAX, ZYDIS_REGISTER_RBX,
};

static ZydisRegister stub_gpr64(ZydisRegister r)
{
	ZydisRegister big;

	if (r == ZYDIS_REGISTER_NONE)
		return r;
	big = ZydisRegisterGetLargestEnclosing(ZYDIS_MACHINE_MODE_LONG_64, r);
	return big == ZYDIS_REGISTER_NONE ? r : big;
}

/* Does the instruction use register @r (any width), or the stack pointer
 * when @r is RSP?  Hidden operands (push's rsp, mul's rdx) count. */
static bool stub_uses(const ZydisDecodedOperand *ops, size_t n, ZydisRegister r)
{
	size_t i;

	for (i = 0; i < n; i++) {
		const ZydisDecodedOperand *o = &ops[i];

		if (o->type == ZYDIS_OPERAND_TYPE_REGISTER && stub_gpr64(o->reg.value) == r)
			return true;
		if (o->type == ZYDIS_OPERAND_TYPE_MEMORY &&
		    (stub_gpr64(o->mem.base) == r || stub_gpr64(o->mem.index) == r ||
		     (r == ZYDIS_REGISTER_RSP && o->mem.type == ZYDIS_MEMOP_TYPE_MEM &&
		      o->visibility == ZYDIS_OPERAND_VISIBILITY_HIDDEN)))
			return true;
	}
	return false;
}

/* 0..15 in the ModRM/REX numbering of a 64-bit general register. */
static unsigned stub_regnum(ZydisRegister r)
{
	return (unsigned)(r - ZYDIS_REGISTER_RAX);
}

int qp_decode_got_stub(const void *code, size_t size, uint64_t addr, int64_t var_off,
		       uint8_t *out, size_t out_size, size_t *out_len, size_t *slot_field,
		       size_t *jmp_field, char *why, size_t why_size)
{
	ZydisDecoder dec;
	ZydisDecodedInstruction zi, again;
	ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];
	ZydisEncoderRequest req;
	ZydisRegister scratch = ZYDIS_REGISTER_NONE;
	uint8_t insn[ZYDIS_MAX_INSTRUCTION_LENGTH];
	ZyanUSize ilen = sizeof(insn);
	size_t i, n = 0, mem = (size_t)-1;
	unsigned rn;

	qp_decode__why_clear(why, why_size);
	if (!code || !out || !out_len || !slot_field || !jmp_field)
		return -EINVAL;
	qp_decode__init(&dec);
	if (!ZYAN_SUCCESS(ZydisDecoderDecodeFull(&dec, code, size, &zi, ops)))
		return qp_decode__fail(why, why_size, -EILSEQ,
				       "cannot decode the instruction at 0x%" PRIx64, addr);
	if (zi.meta.category == ZYDIS_CATEGORY_CALL || zi.meta.category == ZYDIS_CATEGORY_UNCOND_BR ||
	    zi.meta.category == ZYDIS_CATEGORY_COND_BR || zi.meta.category == ZYDIS_CATEGORY_RET)
		return qp_decode__fail(why, why_size, -ENOTSUP,
				       "a branch through the variable at 0x%" PRIx64, addr);
	for (i = 0; i < zi.operand_count_visible; i++)
		if (ops[i].type == ZYDIS_OPERAND_TYPE_MEMORY &&
		    (ops[i].mem.base == ZYDIS_REGISTER_RIP || ops[i].mem.base == ZYDIS_REGISTER_EIP))
			mem = i;
	if (mem == (size_t)-1 || ops[mem].mem.index != ZYDIS_REGISTER_NONE)
		return qp_decode__fail(why, why_size, -ENOTSUP,
				       "the instruction at 0x%" PRIx64 " has no [rip + disp32] operand",
				       addr);
	if (stub_uses(ops, zi.operand_count, ZYDIS_REGISTER_RSP))
		return qp_decode__fail(why, why_size, -ENOTSUP,
				       "the instruction at 0x%" PRIx64 " uses the stack pointer", addr);
	if (var_off != (int32_t)var_off)
		return qp_decode__fail(why, why_size, -ERANGE, "offset %lld into the variable",
				       (long long)var_off);
	for (i = 0; i < sizeof(stub_scratch) / sizeof(stub_scratch[0]) && !scratch; i++)
		if (!stub_uses(ops, zi.operand_count, stub_scratch[i]))
			scratch = stub_scratch[i];
	if (!scratch)
		return qp_decode__fail(why, why_size, -ENOTSUP,
				       "no free register for the instruction at 0x%" PRIx64, addr);
	/* the instruction, its memory operand on [scratch + var_off] */
	if (!ZYAN_SUCCESS(ZydisEncoderDecodedInstructionToEncoderRequest(
		    &zi, ops, zi.operand_count_visible, &req)))
		return qp_decode__fail(why, why_size, -ENOTSUP,
				       "cannot re-encode the instruction at 0x%" PRIx64, addr);
	req.operands[mem].mem.base = scratch;
	req.operands[mem].mem.displacement = var_off;
	if (!ZYAN_SUCCESS(ZydisEncoderEncodeInstruction(&req, insn, &ilen)) ||
	    !ZYAN_SUCCESS(ZydisDecoderDecodeInstruction(&dec, NULL, insn, ilen, &again)) ||
	    again.mnemonic != zi.mnemonic || again.operand_count != zi.operand_count)
		return qp_decode__fail(why, why_size, -ENOTSUP,
				       "cannot re-encode the instruction at 0x%" PRIx64, addr);
	if (out_size < QP_GOT_STUB_MAX || ilen > QP_GOT_STUB_MAX - 29)
		return qp_decode__fail(why, why_size, -ENOBUFS, "stub buffer too small");
	rn = stub_regnum(scratch);
	/* lea -128(%rsp),%rsp: past the red zone a leaf function may use */
	memcpy(out + n, "\x48\x8d\x64\x24\x80", 5);
	n += 5;
	if (rn >= 8) /* push %scratch */
		out[n++] = 0x41;
	out[n++] = (uint8_t)(0x50 + (rn & 7));
	/* mov SLOT(%rip),%scratch */
	out[n++] = (uint8_t)(0x48 | (rn >= 8 ? 0x04 : 0));
	out[n++] = 0x8b;
	out[n++] = (uint8_t)(0x05 | ((rn & 7) << 3));
	*slot_field = n;
	memset(out + n, 0, 4);
	n += 4;
	memcpy(out + n, insn, ilen);
	n += ilen;
	if (rn >= 8) /* pop %scratch */
		out[n++] = 0x41;
	out[n++] = (uint8_t)(0x58 + (rn & 7));
	/* lea 128(%rsp),%rsp */
	memcpy(out + n, "\x48\x8d\xa4\x24\x80\x00\x00\x00", 8);
	n += 8;
	/* jmp back */
	out[n++] = 0xe9;
	*jmp_field = n;
	memset(out + n, 0, 4);
	n += 4;
	*out_len = n;
	return 0;
}
