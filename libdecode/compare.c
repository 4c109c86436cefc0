/* SPDX-License-Identifier: MIT */
/*
 * libdecode: comparing two versions of a function instruction by
 * instruction.
 *
 * The builder asks whether a function changed, and if so how: a change
 * that only moves a __LINE__ constant shows up as immediate-only records.
 * The functions are decoded with Zydis in lockstep, the i-th instruction of
 * one against the i-th of the other, and each pair gets a QP_DIFF_* mask.
 *
 * Two passes: the first counts the instructions and learns whether both
 * functions have the same instruction lengths (the usual case; then an
 * internal branch target compares by offset); the second compares.  When
 * the lengths differ somewhere, an internal target is matched by index
 * with a lockstep walk that resumes where the previous one stopped, so
 * forward branches in order cost one walk over the function in all.
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include <Zydis/Zydis.h>

#include "decode_internal.h"

/* Prefixes that change what an instruction does.  Segment overrides are
 * compared with the memory operand; branch hints do not matter. */
#define CMP_PREFIXES (ZYDIS_ATTRIB_HAS_LOCK | ZYDIS_ATTRIB_HAS_REP | \
		      ZYDIS_ATTRIB_HAS_REPE | ZYDIS_ATTRIB_HAS_REPNE | \
		      ZYDIS_ATTRIB_HAS_BND | ZYDIS_ATTRIB_HAS_XACQUIRE | \
		      ZYDIS_ATTRIB_HAS_XRELEASE | ZYDIS_ATTRIB_HAS_NOTRACK)

/* One of the two functions. */
struct cmp_side {
	const uint8_t *code; /* its bytes */
	size_t size;         /* their number */
	uint64_t addr;       /* where they sit */
	size_t count;        /* instructions, after the first pass */
	const char *name;    /* "a" or "b", for messages */
};

/* One decoded instruction of a side, during the second pass. */
struct cmp_insn {
	ZydisDecodedInstruction zi;
	ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];
	uint64_t addr;
};

struct cmp {
	struct cmp_side a, b; /* the two functions */
	ZydisDecoder dec;     /* decoder for both */
	bool same_layout;     /* same instruction lengths all through */
	size_t walk_a;        /* where the last index walk stopped in a */
	size_t walk_b;        /* ... and in b, at the same index */
	char *why;            /* caller's reason buffer, may be NULL */
	size_t why_size;      /* its size in bytes */
};

static int cmp_decode_fail(const struct cmp *c, const struct cmp_side *s,
			   size_t off, int err)
{
	if (err == -ENODATA)
		return qp_decode__fail(c->why, c->why_size, err, "cannot decode"
				       " instruction at 0x%" PRIx64 " of"
				       " function %s: cut off by its end at 0x%"
				       PRIx64,
				       s->addr + off, s->name,
				       s->addr + s->size);
	return qp_decode__fail(c->why, c->why_size, err, "cannot decode"
			       " instruction at 0x%" PRIx64 " of function %s:"
			       " invalid encoding", s->addr + off, s->name);
}

/* Length of the instruction at @off of @s, or a negative errno. */
static int cmp_len(const struct cmp *c, const struct cmp_side *s, size_t off)
{
	struct qp_insn insn;
	int err;

	err = qp_decode__one(&c->dec, s->code + off, s->size - off,
			     s->addr + off, &insn);
	return err ? err : insn.len;
}

/* First pass: decode both sides in lockstep for their instruction counts
 * and whether every pair has the same length. */
static int cmp_scan(struct cmp *c)
{
	size_t ao = 0, bo = 0;
	int n;

	c->same_layout = c->a.size == c->b.size;
	while (ao < c->a.size || bo < c->b.size) {
		if (ao < c->a.size) {
			n = cmp_len(c, &c->a, ao);
			if (n < 0)
				return cmp_decode_fail(c, &c->a, ao, n);
			ao += (size_t)n;
			c->a.count++;
		}
		if (bo < c->b.size) {
			n = cmp_len(c, &c->b, bo);
			if (n < 0)
				return cmp_decode_fail(c, &c->b, bo, n);
			bo += (size_t)n;
			c->b.count++;
		}
		if (ao != bo)
			c->same_layout = false;
	}
	return 0;
}

/*
 * Whether offset @oa of a and offset @ob of b start the instruction of the
 * same index (either may be the function's end).  Walks both in lockstep
 * from the previous walk's stop when that lies before both offsets.
 */
static bool cmp_same_index(struct cmp *c, size_t oa, size_t ob)
{
	size_t ao = c->walk_a, bo = c->walk_b;
	int na, nb;

	if (ao > oa || bo > ob)
		ao = bo = 0;
	while (ao < oa && bo < ob) {
		na = cmp_len(c, &c->a, ao);
		nb = cmp_len(c, &c->b, bo);
		if (na < 0 || nb < 0) /* the first pass decoded them all */
			return false;
		ao += (size_t)na;
		bo += (size_t)nb;
	}
	c->walk_a = ao;
	c->walk_b = bo;
	return ao == oa && bo == ob;
}

/*
 * Branch targets or RIP-relative addresses @ta (in a) and @tb (in b).
 * Inside the function (its end included) they are the same when they
 * point at the same instruction; outside, when they are at the same
 * offset from the function start.
 */
static bool cmp_same_target(struct cmp *c, uint64_t ta, uint64_t tb)
{
	uint64_t oa = ta - c->a.addr, ob = tb - c->b.addr;
	bool ina = oa <= c->a.size, inb = ob <= c->b.size;

	if (ina != inb)
		return false;
	if (!ina || c->same_layout)
		return oa == ob;
	return cmp_same_index(c, (size_t)oa, (size_t)ob);
}

static bool cmp_target(const struct cmp_insn *x, const ZydisDecodedOperand *op,
		       uint64_t *target)
{
	return ZYAN_SUCCESS(ZydisCalcAbsoluteAddress(&x->zi, op, x->addr,
						     target));
}

/* Relative operands @i of @x and @y: QP_DIFF_REL when the targets differ. */
static unsigned cmp_rel(struct cmp *c, const struct cmp_insn *x,
			const struct cmp_insn *y, int i)
{
	uint64_t ta, tb;

	if (!cmp_target(x, &x->ops[i], &ta) || !cmp_target(y, &y->ops[i], &tb))
		return QP_DIFF_REL;
	return cmp_same_target(c, ta, tb) ? 0 : QP_DIFF_REL;
}

static bool cmp_is_rip(const ZydisDecodedOperand *op)
{
	return op->mem.base == ZYDIS_REGISTER_RIP ||
	       op->mem.base == ZYDIS_REGISTER_EIP;
}

/* Memory operands @i: the address (a RIP-relative one as a target), the
 * segment and the access size. */
static unsigned cmp_mem(struct cmp *c, const struct cmp_insn *x,
			const struct cmp_insn *y, int i)
{
	const ZydisDecodedOperand *a = &x->ops[i], *b = &y->ops[i];
	unsigned what = 0;

	if (a->mem.type != b->mem.type || a->mem.segment != b->mem.segment ||
	    a->size != b->size || a->mem.base != b->mem.base ||
	    a->mem.index != b->mem.index || a->mem.scale != b->mem.scale)
		what |= QP_DIFF_MEM;
	if (cmp_is_rip(a) && cmp_is_rip(b))
		return what | cmp_rel(c, x, y, i);
	if (a->mem.disp.has_displacement != b->mem.disp.has_displacement ||
	    a->mem.disp.value != b->mem.disp.value)
		what |= QP_DIFF_MEM;
	return what;
}

/* Immediate operands @i; the first differing pair goes to @d. */
static unsigned cmp_imm(struct cmp *c, const struct cmp_insn *x,
			const struct cmp_insn *y, int i,
			struct qp_insn_diff *d)
{
	const ZydisDecodedOperand *a = &x->ops[i], *b = &y->ops[i];

	if (a->imm.is_relative != b->imm.is_relative)
		return QP_DIFF_MNEMONIC;
	if (a->imm.is_relative)
		return cmp_rel(c, x, y, i);
	if (a->imm.value.u == b->imm.value.u)
		return 0;
	if (!(d->what & QP_DIFF_IMM)) {
		d->a_imm = (int64_t)a->imm.value.u;
		d->b_imm = (int64_t)b->imm.value.u;
	}
	return QP_DIFF_IMM;
}

/* Visible operand @i of both instructions. */
static unsigned cmp_operand(struct cmp *c, const struct cmp_insn *x,
			    const struct cmp_insn *y, int i,
			    struct qp_insn_diff *d)
{
	const ZydisDecodedOperand *a = &x->ops[i], *b = &y->ops[i];

	if (a->type != b->type)
		return QP_DIFF_MNEMONIC;
	switch (a->type) {
	case ZYDIS_OPERAND_TYPE_REGISTER:
		return a->reg.value != b->reg.value ? QP_DIFF_REG : 0;
	case ZYDIS_OPERAND_TYPE_MEMORY:
		return cmp_mem(c, x, y, i);
	case ZYDIS_OPERAND_TYPE_IMMEDIATE:
		return cmp_imm(c, x, y, i, d);
	case ZYDIS_OPERAND_TYPE_POINTER: /* far jmp/call: invalid in 64-bit */
		return a->ptr.segment != b->ptr.segment ||
		       a->ptr.offset != b->ptr.offset ? QP_DIFF_MNEMONIC : 0;
	default:
		return 0;
	}
}

/* Everything but the operands: mnemonic, prefixes, widths, AVX state. */
static unsigned cmp_operation(const ZydisDecodedInstruction *a,
			      const ZydisDecodedInstruction *b)
{
	unsigned what = 0;

	if (a->mnemonic != b->mnemonic ||
	    (a->attributes & CMP_PREFIXES) != (b->attributes & CMP_PREFIXES) ||
	    a->operand_width != b->operand_width ||
	    a->address_width != b->address_width ||
	    a->operand_count_visible != b->operand_count_visible ||
	    a->avx.vector_length != b->avx.vector_length ||
	    a->avx.mask.mode != b->avx.mask.mode ||
	    a->avx.broadcast.mode != b->avx.broadcast.mode ||
	    a->avx.rounding.mode != b->avx.rounding.mode ||
	    a->avx.has_sae != b->avx.has_sae)
		what |= QP_DIFF_MNEMONIC;
	if (a->avx.mask.reg != b->avx.mask.reg)
		what |= QP_DIFF_REG;
	if (a->length != b->length)
		what |= QP_DIFF_LEN;
	return what;
}

/* The pair @x, @y: fills d->what, and d->a_imm/b_imm with QP_DIFF_IMM. */
static void cmp_pair(struct cmp *c, const struct cmp_insn *x,
		     const struct cmp_insn *y, struct qp_insn_diff *d)
{
	int i;

	d->what = cmp_operation(&x->zi, &y->zi);
	if (x->zi.operand_count_visible != y->zi.operand_count_visible)
		return;
	for (i = 0; i < x->zi.operand_count_visible; i++)
		d->what |= cmp_operand(c, x, y, i, d);
}

static void cmp_record(struct qp_compare_result *res,
		       const struct qp_insn_diff *d, struct qp_insn_diff *diffs,
		       size_t max)
{
	if (res->ndiffs < max)
		diffs[res->ndiffs] = *d;
	res->ndiffs++;
	res->what |= d->what;
}

static int cmp_decode(const struct cmp *c, const struct cmp_side *s,
		      size_t off, struct cmp_insn *x)
{
	ZyanStatus status;

	x->addr = s->addr + off;
	status = ZydisDecoderDecodeFull(&c->dec, s->code + off, s->size - off,
					&x->zi, x->ops);
	if (!ZYAN_SUCCESS(status))
		return cmp_decode_fail(c, s, off,
				       qp_decode__status_errno(status));
	return 0;
}

/* The record for a count mismatch: the first instruction only one side
 * has, at offsets @ao and @bo (one of them the end of its function). */
static void cmp_count_record(const struct cmp *c, size_t ao, size_t bo,
			     size_t index, struct qp_insn_diff *d)
{
	int n;

	memset(d, 0, sizeof(*d));
	d->index = index;
	d->what = QP_DIFF_COUNT;
	d->a_addr = c->a.addr + ao;
	d->b_addr = c->b.addr + bo;
	if (ao < c->a.size && (n = cmp_len(c, &c->a, ao)) > 0)
		d->a_len = (uint8_t)n;
	if (bo < c->b.size && (n = cmp_len(c, &c->b, bo)) > 0)
		d->b_len = (uint8_t)n;
}

/* Second pass: compare the pairs, then note a count mismatch. */
static int cmp_walk(struct cmp *c, struct qp_insn_diff *diffs, size_t max,
		    struct qp_compare_result *res)
{
	struct cmp_insn x, y;
	struct qp_insn_diff d;
	size_t ao = 0, bo = 0, index = 0;
	int err;

	for (; ao < c->a.size && bo < c->b.size; index++) {
		err = cmp_decode(c, &c->a, ao, &x);
		if (!err)
			err = cmp_decode(c, &c->b, bo, &y);
		if (err)
			return err;
		memset(&d, 0, sizeof(d));
		cmp_pair(c, &x, &y, &d);
		if (d.what) {
			d.index = index;
			d.a_addr = x.addr;
			d.b_addr = y.addr;
			d.a_len = x.zi.length;
			d.b_len = y.zi.length;
			cmp_record(res, &d, diffs, max);
		}
		ao += x.zi.length;
		bo += y.zi.length;
	}
	if (c->a.count != c->b.count) {
		cmp_count_record(c, ao, bo, index, &d);
		cmp_record(res, &d, diffs, max);
	}
	return 0;
}

int qp_decode_compare(const void *a, size_t asize, uint64_t aaddr,
		      const void *b, size_t bsize, uint64_t baddr,
		      struct qp_insn_diff *diffs, size_t max,
		      struct qp_compare_result *res, char *why,
		      size_t why_size)
{
	struct cmp c = {
		.a = { .code = a, .size = asize, .addr = aaddr, .name = "a" },
		.b = { .code = b, .size = bsize, .addr = baddr, .name = "b" },
		.why = why, .why_size = why_size,
	};
	int err;

	qp_decode__why_clear(why, why_size);
	if (res)
		memset(res, 0, sizeof(*res));
	if (!res || (!a && asize) || (!b && bsize) || (!diffs && max))
		return qp_decode__fail(why, why_size, -EINVAL, "invalid"
				       " arguments to compare the functions at"
				       " 0x%" PRIx64 " and 0x%" PRIx64, aaddr,
				       baddr);
	qp_decode__init(&c.dec);
	err = cmp_scan(&c);
	if (!err)
		err = cmp_walk(&c, diffs, max, res);
	res->a_count = c.a.count;
	res->b_count = c.b.count;
	return err;
}
