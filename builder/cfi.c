// SPDX-License-Identifier: MIT
/*
 * The call frame information of the patch's own code: for every function
 * the patch carries, its FDE from the patched object's .eh_frame, written
 * into one resolved `.qpatch.eh_frame` section (docs/format.md) that the
 * loader maps with the image, so that its stack unwinder can walk through
 * frames of patch code (a thread blocked in a call made by new code).
 *
 * Every CIE is rewritten to the one form the format allows (version 1,
 * "zR", FDE addresses pcrel|sdata4): personality and LSDA pointers are
 * dropped (they serve exception handling, not unwinding); an FDE whose CIE
 * or instructions need more (a signal frame, DW_CFA_set_loc, another code
 * alignment) is left out, and its function is unwound conservatively.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "diff_internal.h"
#include "qpatch/cfi.h"

/* A CIE of the output, shared by the FDEs with the same rules. */
struct cfi_cie {
	int64_t data_align;      /* data alignment factor */
	const uint8_t *insns;    /* initial instructions (in the object) */
	size_t ninsns;           /* their bytes */
	uint64_t off;            /* offset in the output */
};

/* An FDE of the output. */
struct cfi_fde {
	uint64_t pc;             /* image offset of the code */
	uint64_t range;          /* its bytes */
	const uint8_t *insns;    /* instructions (in the object) */
	size_t ninsns;           /* their bytes */
	size_t cie;              /* index in cfi_out.cies */
};

struct cfi_out {
	struct cfi_cie *cies;    /* distinct CIEs */
	size_t ncies;            /* count of cies */
	struct cfi_fde *fdes;    /* FDEs, sorted by pc once collected */
	size_t nfdes, cap;       /* count and capacity of fdes */
	uint8_t *buf;            /* the section being written */
	size_t len, buf_cap;     /* bytes used and allocated */
};

static int cfi_put(struct cfi_out *o, const void *p, size_t n)
{
	if (o->len + n > o->buf_cap) {
		size_t cap = o->buf_cap ? 2 * o->buf_cap : 256;
		uint8_t *b;

		while (cap < o->len + n)
			cap *= 2;
		b = realloc(o->buf, cap);
		if (!b)
			return -ENOMEM;
		o->buf = b;
		o->buf_cap = cap;
	}
	memcpy(o->buf + o->len, p, n);
	o->len += n;
	return 0;
}

static int cfi_put_leb(struct cfi_out *o, int64_t v, bool is_signed)
{
	uint8_t b[10];
	size_t n = 0;
	bool more = true;

	while (more) {
		uint8_t byte = (uint8_t)(v & 0x7f);

		if (is_signed) {
			v >>= 7; /* arithmetic */
			more = !((v == 0 && !(byte & 0x40)) || (v == -1 && (byte & 0x40)));
		} else {
			v = (int64_t)((uint64_t)v >> 7);
			more = v != 0;
		}
		b[n++] = more ? byte | 0x80 : byte;
	}
	return cfi_put(o, b, n);
}

/* Pad the entry that started at @start with DW_CFA_nop to a multiple of 8
 * bytes and fill in its length. */
static int cfi_close(struct cfi_out *o, size_t start)
{
	static const uint8_t nops[8];
	uint32_t len;
	int ret = cfi_put(o, nops, (8 - (o->len - start) % 8) % 8);

	len = (uint32_t)(o->len - start - 4);
	if (!ret)
		memcpy(o->buf + start, &len, 4);
	return ret;
}

static size_t cfi_cie_index(struct cfi_out *o, const struct qp_cfi_cie *c)
{
	size_t i;

	for (i = 0; i < o->ncies; i++)
		if (o->cies[i].data_align == c->data_align && o->cies[i].ninsns == c->ninsns &&
		    !memcmp(o->cies[i].insns, c->insns, c->ninsns))
			return i;
	return i;
}

/* Add the FDE of patch code at image offset @pc, described by @f under @c. */
static int cfi_add(struct cfi_out *o, const struct qp_cfi_cie *c, const struct qp_cfi_fde *f,
		   uint64_t pc)
{
	size_t ci = cfi_cie_index(o, c);

	if (ci == o->ncies) {
		struct cfi_cie *v = realloc(o->cies, (o->ncies + 1) * sizeof(*v));

		if (!v)
			return -ENOMEM;
		o->cies = v;
		v[o->ncies++] = (struct cfi_cie){ .data_align = c->data_align, .insns = c->insns,
						  .ninsns = c->ninsns };
	}
	if (o->nfdes == o->cap) {
		size_t cap = o->cap ? 2 * o->cap : 32;
		struct cfi_fde *v = realloc(o->fdes, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		o->fdes = v;
		o->cap = cap;
	}
	o->fdes[o->nfdes++] = (struct cfi_fde){ .pc = pc, .range = f->pc_range, .insns = f->insns,
						.ninsns = f->ninsns, .cie = ci };
	return 0;
}

/* The included text section an FDE at @pc_off of @eh describes, and the
 * offset inside it; NULL when it is not in the patch. */
static const struct diff_incl *cfi_target(struct qp_diff *d, struct diff_obj *o,
					  const struct qp_elf_sec *eh, uint64_t pc_off, uint64_t *at)
{
	size_t i;

	for (i = 0; i < eh->nrelas; i++) {
		const struct qp_elf_rela *r = &eh->relas[i];
		const struct diff_incl *in;

		if (r->offset != pc_off)
			continue;
		if (!r->sym || !r->sym->sec || o->incl[r->sym->sec->index] < 0)
			return NULL;
		in = &d->incl[o->incl[r->sym->sec->index]];
		*at = r->sym->value + (uint64_t)r->addend;
		return in->out == OUT_TEXT && *at < in->sec->size ? in : NULL;
	}
	return NULL;
}

/* Whether the output form can say what this CIE says. */
static bool cfi_cie_ok(const struct qp_cfi_cie *c)
{
	return !c->signal && c->code_align == 1 && c->ra == 16 &&
	       !qp_cfi_check_insns(c->insns, c->ninsns, c, 0, NULL, 0);
}

/* The FDEs of object @o that describe code in the patch. */
static int cfi_collect(struct qp_diff *d, struct diff_obj *o, const uint64_t *base,
		       struct cfi_out *out)
{
	const struct qp_elf_sec *eh = qp_elf__find_sec(o->pat, ".eh_frame");
	struct qp_cfi_entry e, ce;
	uint64_t off = 0, at;
	int ret = 0;

	if (!eh || !eh->data || eh->shdr.sh_type != SHT_PROGBITS)
		return 0;
	while (!ret && qp_cfi_entry(eh->data, eh->size, off, &e, NULL, 0) == 0) {
		const struct diff_incl *in;
		struct qp_cfi_cie c;
		struct qp_cfi_fde f;

		off += e.size;
		if (e.cie || qp_cfi_entry(eh->data, eh->size, e.cie_off, &ce, NULL, 0) || !ce.cie ||
		    qp_cfi_parse_cie(eh->data, eh->size, &ce, &c, NULL, 0) || !cfi_cie_ok(&c) ||
		    qp_cfi_parse_fde(eh->data, eh->size, &e, &c, &f, NULL, 0) || !f.pc_range ||
		    qp_cfi_check_insns(f.insns, f.ninsns, &c, f.pc_range, NULL, 0))
			continue;
		in = cfi_target(d, o, eh, f.pc_off, &at);
		if (in && f.pc_range <= in->sec->size - at)
			ret = cfi_add(out, &c, &f, base[OUT_TEXT] + in->off + at);
	}
	return ret;
}

static int cfi_fde_cmp(const void *a, const void *b)
{
	const struct cfi_fde *x = a, *y = b;

	return x->pc < y->pc ? -1 : x->pc > y->pc;
}

/* The section's bytes, for an image offset @at of the section. */
static int cfi_write(struct cfi_out *o, uint64_t at)
{
	static const uint8_t cie_head[] = { 0, 0, 0, 0, 0, 0, 0, 0, 1, 'z', 'R', 0, 1 };
	static const uint8_t cie_tail[] = { 16, 1, QP_CFI_FDE_ENC };
	uint64_t end = 0;
	size_t i, start;
	int ret = 0;

	for (i = 0; !ret && i < o->ncies; i++) {
		start = o->len;
		o->cies[i].off = start;
		ret = cfi_put(o, cie_head, sizeof(cie_head));
		if (!ret)
			ret = cfi_put_leb(o, o->cies[i].data_align, true);
		if (!ret)
			ret = cfi_put(o, cie_tail, sizeof(cie_tail));
		if (!ret)
			ret = cfi_put(o, o->cies[i].insns, o->cies[i].ninsns);
		if (!ret)
			ret = cfi_close(o, start);
	}
	for (i = 0; !ret && i < o->nfdes; i++) {
		const struct cfi_fde *f = &o->fdes[i];
		uint32_t w[4] = { 0, 0, 0, (uint32_t)f->range };

		if (f->pc < end)
			continue; /* overlaps the previous one: keep one */
		end = f->pc + f->range;
		start = o->len;
		w[1] = (uint32_t)(start + 4 - o->cies[f->cie].off);
		w[2] = (uint32_t)(int32_t)((int64_t)f->pc - (int64_t)(at + start + 8));
		ret = cfi_put(o, w, sizeof(w));
		if (!ret)
			ret = cfi_put(o, "", 1); /* no augmentation data */
		if (!ret)
			ret = cfi_put(o, f->insns, f->ninsns);
		if (!ret)
			ret = cfi_close(o, start);
	}
	return ret ? ret : cfi_put(o, "\0\0\0", 4); /* terminator */
}

int diff_emit_cfi(struct qp_diff *d, struct qp_patch *p, const uint64_t *base, uint64_t at,
		  struct qp_error *err)
{
	struct cfi_out o = { 0 };
	struct qp_section sec = { .name = QP_SEC_EH_FRAME, .type = SHT_PROGBITS,
				  .flags = SHF_ALLOC, .addr = at, .align = 8 };
	size_t i;
	int ret = 0;

	for (i = 0; !ret && i < d->nobjs; i++)
		ret = cfi_collect(d, &d->objs[i], base, &o);
	if (!ret && o.nfdes) {
		qsort(o.fdes, o.nfdes, sizeof(*o.fdes), cfi_fde_cmp);
		ret = cfi_write(&o, at);
		sec.size = o.len;
		sec.data = o.buf;
		if (!ret) {
			ret = qp_patch__add_section(p, &sec);
			ret = ret < 0 ? ret : 0;
		}
	}
	free(o.cies);
	free(o.fdes);
	free(o.buf);
	return ret ? qp_seterr(err, ret, "cannot add section '%s'", QP_SEC_EH_FRAME) : 0;
}
