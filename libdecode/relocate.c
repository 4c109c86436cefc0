/* SPDX-License-Identifier: MIT */
/*
 * libdecode: moving instructions to another address, and finding the
 * relative fields that point at an address.
 *
 * qp_decode_relocate() keeps what an instruction refers to while it moves.
 * Most moves only rewrite a rel32 or disp32 field in place; the one case
 * that changes the encoding, a jmp/jcc rel8 that no longer reaches, goes
 * through Zydis' encoder.  Either way the result is decoded again and must
 * give the same mnemonic, prefixes and target before it is handed out.
 *
 * qp_decode_find_refs() is the reverse question: which instructions of a
 * range of code point into a given range of addresses (callers of a
 * function, users of a GOT slot).
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include <Zydis/Zydis.h>

#include "decode_internal.h"

/* Prefixes whose loss would change what a branch or access does; they
 * must survive re-encoding (Zydis' list of those it can encode). */
#define RELOC_PREFIXES ZYDIS_ENCODABLE_PREFIXES

/* One instruction being moved. */
struct reloc {
	uint64_t from;      /* where it sits now */
	uint64_t to;        /* where it goes */
	uint64_t target;    /* what its relative field refers to */
	const char *mnem;   /* its mnemonic, for messages */
	char *why;          /* caller's reason buffer, may be NULL */
	size_t why_size;    /* its size in bytes */
};

static int reloc_decode_fail(char *why, size_t why_size, uint64_t at,
			     size_t size, int err)
{
	if (err == -ENODATA)
		return qp_decode__fail(why, why_size, err, "cannot decode"
				       " instruction at 0x%" PRIx64 ": cut off"
				       " after %zu byte%s", at, size,
				       size == 1 ? "" : "s");
	return qp_decode__fail(why, why_size, err, "cannot decode instruction"
			       " at 0x%" PRIx64 ": invalid encoding", at);
}

/*
 * Full decode of @code at @addr, and the target of its relative operand
 * (branch immediate or [rip/eip + disp32]) in *@target.  Returns the index
 * of that operand in @ops, or -EILSEQ/-ENODATA when the bytes do not decode
 * or have no relative operand (callers only ask about ones that have).
 */
static int reloc_decode_full(const ZydisDecoder *dec, const void *code,
			     size_t size, uint64_t addr,
			     ZydisDecodedInstruction *zi,
			     ZydisDecodedOperand *ops, uint64_t *target)
{
	ZyanStatus status;
	int i;

	status = ZydisDecoderDecodeFull(dec, code, size, zi, ops);
	if (!ZYAN_SUCCESS(status))
		return qp_decode__status_errno(status);
	for (i = 0; i < zi->operand_count_visible; i++) {
		bool rel = ops[i].type == ZYDIS_OPERAND_TYPE_IMMEDIATE &&
			   ops[i].imm.is_relative;
		bool rip = ops[i].type == ZYDIS_OPERAND_TYPE_MEMORY &&
			   (ops[i].mem.base == ZYDIS_REGISTER_RIP ||
			    ops[i].mem.base == ZYDIS_REGISTER_EIP);

		if (!rel && !rip)
			continue;
		if (!ZYAN_SUCCESS(ZydisCalcAbsoluteAddress(zi, &ops[i], addr,
							   target)))
			return -EILSEQ;
		return i;
	}
	return -EILSEQ; /* qp_decode__one() found a relative field */
}

static bool reloc_fits(int64_t v, unsigned size)
{
	switch (size) {
	case 1:
		return v >= INT8_MIN && v <= INT8_MAX;
	case 2:
		return v >= INT16_MIN && v <= INT16_MAX;
	default:
		return v >= INT32_MIN && v <= INT32_MAX;
	}
}

static void reloc_put_field(uint8_t *p, uint64_t v, unsigned size)
{
	unsigned i;

	for (i = 0; i < size; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static int reloc_out_of_reach(const struct reloc *r, bool rip)
{
	return qp_decode__fail(r->why, r->why_size, -ERANGE, "%s at 0x%" PRIx64
			       " %s 0x%" PRIx64 ", beyond the +/-2 GiB that %s"
			       " reaches from 0x%" PRIx64, r->mnem, r->from,
			       rip ? "refers to" : "targets", r->target,
			       rip ? "a rip-relative disp32" : "a rel32",
			       r->to);
}

/* jmp and jcc have a rel32 form; jrcxz, loop* and xbegin rel16 do not. */
static bool reloc_can_widen(const ZydisDecodedInstruction *zi)
{
	if (zi->meta.category == ZYDIS_CATEGORY_UNCOND_BR)
		return true;
	if (zi->meta.category != ZYDIS_CATEGORY_COND_BR)
		return false;
	switch (zi->mnemonic) {
	case ZYDIS_MNEMONIC_JCXZ:
	case ZYDIS_MNEMONIC_JECXZ:
	case ZYDIS_MNEMONIC_JRCXZ:
	case ZYDIS_MNEMONIC_LOOP:
	case ZYDIS_MNEMONIC_LOOPE:
	case ZYDIS_MNEMONIC_LOOPNE:
	case ZYDIS_MNEMONIC_XBEGIN:
		return false;
	default:
		return true;
	}
}

/*
 * Re-encode a jmp/jcc rel8 as rel32 through Zydis' encoder: once with a
 * zero displacement to learn the length, then with the real one.  The
 * request keeps the decoded prefixes (branch hints, bnd).
 */
static int reloc_widen(const struct reloc *r, const ZydisDecodedInstruction *zi,
		       const ZydisDecodedOperand *ops, int opi, uint8_t *buf,
		       size_t *len)
{
	ZydisEncoderRequest req;
	ZyanUSize n = ZYDIS_MAX_INSTRUCTION_LENGTH;
	int64_t disp;

	if (!reloc_can_widen(zi))
		return qp_decode__fail(r->why, r->why_size, -ERANGE, "%s at 0x%"
				       PRIx64 " targets 0x%" PRIx64 ", beyond"
				       " the reach of its rel%u from 0x%" PRIx64
				       ", and %s %s", r->mnem, r->from,
				       r->target, zi->raw.imm[0].size, r->to,
				       r->mnem,
				       zi->mnemonic == ZYDIS_MNEMONIC_XBEGIN ?
				       "rel16 is not widened" :
				       "has no rel32 form");
	if (!ZYAN_SUCCESS(ZydisEncoderDecodedInstructionToEncoderRequest(
		    zi, ops, zi->operand_count_visible, &req)))
		goto fail;
	req.branch_type = ZYDIS_BRANCH_TYPE_NEAR;
	req.branch_width = ZYDIS_BRANCH_WIDTH_32;
	req.operands[opi].imm.s = 0;
	if (!ZYAN_SUCCESS(ZydisEncoderEncodeInstruction(&req, buf, &n)))
		goto fail;
	disp = (int64_t)(r->target - (r->to + n));
	if (!reloc_fits(disp, 4))
		return reloc_out_of_reach(r, false);
	req.operands[opi].imm.s = disp;
	n = ZYDIS_MAX_INSTRUCTION_LENGTH;
	if (!ZYAN_SUCCESS(ZydisEncoderEncodeInstruction(&req, buf, &n)))
		goto fail;
	*len = n;
	return 0;
fail:
	return qp_decode__fail(r->why, r->why_size, -ENOTSUP, "zydis cannot"
			       " re-encode %s at 0x%" PRIx64 " with a rel32",
			       r->mnem, r->from);
}

/* The moved instruction must decode at its new place to the same
 * operation, prefixes and target.  Failing this is a bug here. */
static int reloc_verify(const struct reloc *r, const ZydisDecoder *dec,
			const ZydisDecodedInstruction *zi, const uint8_t *buf,
			size_t len)
{
	ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];
	ZydisDecodedInstruction nz;
	uint64_t target = 0;

	if (reloc_decode_full(dec, buf, len, r->to, &nz, ops, &target) < 0 ||
	    nz.length != len || nz.mnemonic != zi->mnemonic ||
	    (nz.attributes & RELOC_PREFIXES) !=
	    (zi->attributes & RELOC_PREFIXES) || target != r->target)
		return qp_decode__fail(r->why, r->why_size, -ENOTSUP, "%s at"
				       " 0x%" PRIx64 " re-encoded for 0x%"
				       PRIx64 " does not decode to the same"
				       " instruction", r->mnem, r->from,
				       r->to);
	return 0;
}

/*
 * An instruction with a relative field (@insn, from qp_decode__one()),
 * whose bytes are already in @buf: rewrite the field for r->to, or widen
 * the branch, then verify.
 */
static int reloc_rel(struct reloc *r, const ZydisDecoder *dec,
		     const void *code, const struct qp_insn *insn,
		     uint8_t *buf, size_t *len)
{
	ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];
	ZydisDecodedInstruction zi;
	uint64_t disp;
	bool eip;
	int opi, err;

	opi = reloc_decode_full(dec, code, insn->len, r->from, &zi, ops,
				&r->target);
	if (opi < 0)
		return reloc_decode_fail(r->why, r->why_size, r->from,
					 insn->len, opi);
	r->mnem = ZydisMnemonicGetString(zi.mnemonic);
	disp = r->target - (r->to + insn->len);
	/* [eip + disp32] wraps at 4 GiB, so every target is in reach: the
	 * field takes the low 32 bits of the difference. */
	eip = insn->rip_relative && zi.address_width == 32;
	if (eip || reloc_fits((int64_t)disp, insn->rel_size)) {
		reloc_put_field(buf + insn->rel_off, disp, insn->rel_size);
	} else if (insn->rip_relative || insn->rel_size == 4) {
		return reloc_out_of_reach(r, insn->rip_relative);
	} else {
		err = reloc_widen(r, &zi, ops, opi, buf, len);
		if (err)
			return err;
	}
	return reloc_verify(r, dec, &zi, buf, *len);
}

int qp_decode_relocate(const void *code, size_t size, uint64_t from,
		       uint64_t to, uint8_t *out, size_t out_size,
		       size_t *out_len, char *why, size_t why_size)
{
	struct reloc r = { .from = from, .to = to, .why = why,
			   .why_size = why_size };
	uint8_t buf[ZYDIS_MAX_INSTRUCTION_LENGTH];
	ZydisDecoder dec;
	struct qp_insn insn;
	size_t len;
	int err;

	qp_decode__why_clear(why, why_size);
	if (out_len)
		*out_len = 0;
	if (!out || !out_len || (!code && size))
		return qp_decode__fail(why, why_size, -EINVAL, "invalid"
				       " arguments to relocate the instruction"
				       " at 0x%" PRIx64, from);
	qp_decode__init(&dec);
	err = qp_decode__one(&dec, code, size, from, &insn);
	if (err)
		return reloc_decode_fail(why, why_size, from, size, err);
	len = insn.len;
	memcpy(buf, code, len);
	if (insn.has_rel) {
		err = reloc_rel(&r, &dec, code, &insn, buf, &len);
		if (err)
			return err;
	}
	if (len > out_size)
		return qp_decode__fail(why, why_size, -ENOBUFS, "instruction at"
				       " 0x%" PRIx64 " needs %zu bytes at 0x%"
				       PRIx64 ", the buffer holds %zu", from,
				       len, to, out_size);
	memcpy(out, buf, len);
	*out_len = len;
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Finding references                                                        */
/* ------------------------------------------------------------------------ */

static void refs_fill(struct qp_ref *ref, const struct qp_insn *insn)
{
	ref->addr = insn->addr;
	ref->target = insn->target;
	ref->kind = insn->kind;
	ref->rip_relative = insn->rip_relative;
	ref->len = insn->len;
	ref->rel_off = insn->rel_off;
	ref->rel_size = insn->rel_size;
}

int qp_decode_find_refs(const void *code, size_t size, uint64_t addr,
			uint64_t target_lo, uint64_t target_hi,
			struct qp_ref *refs, size_t max, size_t *count,
			char *why, size_t why_size)
{
	const uint8_t *bytes = code;
	ZydisDecoder dec;
	struct qp_insn insn;
	size_t off;
	int err;

	qp_decode__why_clear(why, why_size);
	if (count)
		*count = 0;
	if (!count || (!refs && max) || (!code && size))
		return qp_decode__fail(why, why_size, -EINVAL, "invalid"
				       " arguments to search the code at 0x%"
				       PRIx64, addr);
	qp_decode__init(&dec);
	for (off = 0; off < size; off += insn.len) {
		err = qp_decode__one(&dec, bytes + off, size - off, addr + off,
				     &insn);
		if (err)
			return reloc_decode_fail(why, why_size, addr + off,
						 size - off, err);
		if (!insn.has_rel || insn.target < target_lo ||
		    insn.target >= target_hi)
			continue;
		if (*count < max)
			refs_fill(&refs[*count], &insn);
		(*count)++;
	}
	return 0;
}
