// SPDX-License-Identifier: MIT
/*
 * Laying out and emitting the patch: output sections, references inside
 * the image resolved now, src and dst symbol tables, relocations (and the
 * patch's call frame information, cfi.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diff_internal.h"
#include "qpatch/decode.h"

static const char *const diff_out_names[OUT_NR] = {
	QP_SEC_TEXT, QP_SEC_RODATA, QP_SEC_DATA, QP_SEC_BSS,
};

/* Step 3: offsets of the included sections inside the output sections. */
static void diff_layout(struct qp_diff *d)
{
	size_t i;

	for (i = 0; i < OUT_NR; i++)
		d->out_align[i] = 16;
	for (i = 0; i < d->nincl; i++) {
		struct diff_incl *in = &d->incl[i];
		uint64_t a = in->sec->shdr.sh_addralign ? in->sec->shdr.sh_addralign : 1;

		if (a > d->out_align[in->out])
			d->out_align[in->out] = a;
		in->off = (d->out_size[in->out] + a - 1) & ~(a - 1);
		d->out_size[in->out] = in->off + in->sec->size;
	}
	/* after the code, room for a stub per reference through a GOT slot */
	d->nstubs = 0;
	for (i = 0; i < d->nincl; i++) {
		size_t j;

		for (j = 0; j < d->incl[i].sec->nrelas; j++)
			d->nstubs += d->incl[i].refs[j].via_got;
	}
	if (d->nstubs) {
		d->stubs_off = (d->out_size[OUT_TEXT] + 15) & ~(uint64_t)15;
		d->out_size[OUT_TEXT] = d->stubs_off + d->nstubs * QP_GOT_STUB_MAX;
	}
}

/* Image offsets of the output sections: text at 0, the others page aligned
 * so the loader can protect them separately. */
static void diff_out_bases(struct qp_diff *d, uint64_t *base)
{
	uint64_t at = 0;
	int i;

	for (i = 0; i < OUT_NR; i++) {
		if (i == OUT_BSS && d->out_size[OUT_DATA])
			at = base[OUT_DATA] + d->out_size[OUT_DATA];
		else
			at = (at + 4095) & ~(uint64_t)4095;
		at = (at + d->out_align[i] - 1) & ~(d->out_align[i] - 1);
		base[i] = at;
		at += d->out_size[i];
	}
}

/*
 * A load of an address from the GOT (R_X86_64_[REX_]GOTPCRELX, which the
 * psABI lets a linker relax) of something inside the patch: the address
 * is known, so the instruction uses it directly, as ld does for a symbol
 * it binds locally.  mov foo@GOTPCREL(%rip),%reg becomes lea foo(%rip),%reg;
 * call/jmp *foo@GOTPCREL(%rip) become addr32 call foo / jmp foo; nop.
 * @v is S + A - P for the field at @off.  -1 for any other instruction.
 */
static int emit_relax_got(uint8_t *buf, uint64_t off, const int64_t *v)
{
	int32_t rel = (int32_t)*v;

	if (off < 2)
		return -1;
	if (buf[off - 2] == 0x8b && (buf[off - 1] & 0xc7) == 0x05) { /* mov m, r */
		buf[off - 2] = 0x8d;                                 /* lea */
	} else if (buf[off - 2] == 0xff && buf[off - 1] == 0x15) {  /* call *m */
		buf[off - 2] = 0x67;
		buf[off - 1] = 0xe8;
	} else if (buf[off - 2] == 0xff && buf[off - 1] == 0x25) {  /* jmp *m */
		buf[off - 2] = 0xe9;
		rel += 1; /* the field moves one byte back */
		memcpy(buf + off - 1, &rel, 4);
		buf[off + 3] = 0x90;
		return 0;
	} else {
		return -1;
	}
	memcpy(buf + off, &rel, 4);
	return 0;
}

/*
 * A [rip + disp32] instruction of the patch's code that reads or writes
 * library data the program has no copy of (@ref->via_got): the
 * instruction becomes a jmp to a stub that does the same through a GOT
 * slot (qp_decode_got_stub), laid out after the code; the slot is an
 * R_X86_64_GOTPCREL for the loader.  @buf is the section's bytes in the
 * text output @text.
 */
static int emit_got_stub(struct qp_diff *d, struct qp_patch *p, uint8_t *buf, uint8_t *text,
			 const struct diff_incl *in, const struct qp_elf_rela *r,
			 const struct diff_ref *ref, const uint64_t *base, size_t *stub,
			 struct qp_error *err)
{
	const uint8_t *code = in->sec->data;
	uint64_t sec_addr = base[OUT_TEXT] + in->off, off = 0, stub_addr, end;
	struct qp_rela slot = { .type = R_X86_64_GOTPCREL, .addend = -4,
				.sym = (uint32_t)d->srcs[ref->src].index };
	struct qp_insn insn = { 0 };
	size_t len, slot_field, jmp_field, j;
	char why[256];
	int32_t rel;
	int ret;

	/* the instruction whose displacement the relocation fills */
	while (off < in->sec->size &&
	       !qp_decode_insn(code + off, in->sec->size - off, sec_addr + off, &insn)) {
		if (off + insn.len > r->offset)
			break;
		off += insn.len;
	}
	if (off >= in->sec->size || !insn.rip_relative || off + insn.rel_off != r->offset ||
	    insn.rel_size != 4)
		return diff_refuse(d, in->o, d->srcs[ref->src].name, 0, err,
				   "library data the program has no copy of, referred to by an instruction that cannot be decoded");
	end = off + insn.len;
	for (j = 0; j < in->sec->nrelas; j++)
		if (&in->sec->relas[j] != r && in->sec->relas[j].offset >= off &&
		    in->sec->relas[j].offset < end)
			return diff_refuse(d, in->o, d->srcs[ref->src].name, 0, err,
					   "library data the program has no copy of, in an instruction with a second relocation");
	if (*stub >= d->nstubs)
		return qp_seterr(err, -EINVAL, "more GOT stubs than laid out");
	stub_addr = base[OUT_TEXT] + d->stubs_off + *stub * QP_GOT_STUB_MAX;
	ret = qp_decode_got_stub(code + off, insn.len, sec_addr + off,
				 r->addend + (int64_t)(end - r->offset),
				 text + d->stubs_off + *stub * QP_GOT_STUB_MAX, QP_GOT_STUB_MAX, &len,
				 &slot_field, &jmp_field, why, sizeof(why));
	if (ret) {
		char msg[400];

		snprintf(msg, sizeof(msg),
			 "library data the program has no copy of, and the instruction cannot reach it through a GOT slot: %s",
			 why);
		return diff_refuse(d, in->o, d->srcs[ref->src].name, 0, err, msg);
	}
	(*stub)++;
	/* the instruction: jmp stub, then NOPs (no branch lands inside it) */
	buf[off] = 0xe9;
	rel = (int32_t)(stub_addr - (sec_addr + off + 5));
	memcpy(buf + off + 1, &rel, 4);
	memset(buf + off + 5, 0x90, insn.len - 5);
	/* the stub's way back */
	rel = (int32_t)(sec_addr + end - (stub_addr + jmp_field + 4));
	memcpy(text + (stub_addr - base[OUT_TEXT]) + jmp_field, &rel, 4);
	slot.offset = stub_addr + slot_field;
	ret = qp_patch__add_rela(p, &slot);
	return ret < 0 ? qp_seterr(err, ret, "out of memory") : 0;
}

/* Apply an internal reference now, or emit a relocation. */
static int diff_emit_rela(struct qp_diff *d, struct qp_patch *p, uint8_t *buf, uint8_t *text,
			  const struct diff_incl *in, const struct qp_elf_rela *r,
			  const struct diff_ref *ref, const uint64_t *base, size_t *stub,
			  struct qp_error *err)
{
	uint64_t P = base[in->out] + in->off + r->offset;
	struct qp_rela out = { .offset = P, .type = r->type, .addend = r->addend };
	unsigned w = rela_width(r->type);
	int ret;

	if (r->offset + w > in->sec->size)
		return qp_seterr(err, -EINVAL, "%s: section '%s': relocation at 0x%llx out of bounds",
				 in->o->name, in->sec->name, (unsigned long long)r->offset);
	if (ref->via_got)
		return emit_got_stub(d, p, buf, text, in, r, ref, base, stub, err);
	if (!ref->internal) {
		out.sym = (uint32_t)d->srcs[ref->src].index;
		ret = qp_patch__add_rela(p, &out);
		return ret < 0 ? qp_seterr(err, ret, "out of memory") : 0;
	} else {
		const struct diff_incl *t = &d->incl[ref->incl];
		uint64_t S = base[t->out] + t->off + ref->off;
		int64_t v = (int64_t)(S + (uint64_t)r->addend - P);

		switch (r->type) {
		case R_X86_64_PC32:
		case R_X86_64_PLT32:
			if (v != (int32_t)v)
				return qp_seterr(err, -ERANGE, "%s: '%s' too far for a 32-bit reference",
						 in->o->name, in->sec->name);
			memcpy(buf + r->offset, &(int32_t){ (int32_t)v }, 4);
			return 0;
		case R_X86_64_PC64:
			memcpy(buf + r->offset, &v, 8);
			return 0;
		case R_X86_64_64:
		case R_X86_64_32:
		case R_X86_64_32S:
			/* absolute: the loader adds the image's address */
			out.type = r->type == R_X86_64_64 ? R_X86_64_RELATIVE :
				   r->type == R_X86_64_32 ? QP_R_IMAGE32 : QP_R_IMAGE32S;
			out.sym = 0;
			out.addend = (int64_t)(S + (uint64_t)r->addend);
			ret = qp_patch__add_rela(p, &out);
			return ret < 0 ? qp_seterr(err, ret, "out of memory") : 0;
		case R_X86_64_GOTPCRELX:
		case R_X86_64_REX_GOTPCRELX:
			if (v == (int32_t)v && !emit_relax_got(buf, r->offset, &v))
				return 0;
			/* fall through */
		default:
			return qp_seterr(err, QP_EUNSUPP,
					 "%s: section '%s': relocation type %u to patch-local data is not supported (build with -fPIC or -fPIE)",
					 in->o->name, in->sec->name, r->type);
		}
	}
}

static int src_cmp(const void *a, const void *b)
{
	const struct diff_src *x = *(const struct diff_src *const *)a;
	const struct diff_src *y = *(const struct diff_src *const *)b;
	int lx = x->bind == STB_LOCAL, ly = y->bind == STB_LOCAL;

	if (lx != ly)
		return ly - lx; /* locals first */
	if (x->file != y->file)
		return x->file < y->file ? -1 : 1;
	return strcmp(x->name, y->name);
}

/* src table: FILE symbol, its locals; ...; then globals. */
static int diff_emit_srcs(struct qp_diff *d, struct qp_patch *p, struct qp_error *err)
{
	struct diff_src **order = calloc(d->nsrcs ? d->nsrcs : 1, sizeof(*order));
	size_t i, file = (size_t)-1;
	int ret = 0;

	if (!order)
		return qp_seterr(err, -ENOMEM, "out of memory");
	for (i = 0; i < d->nsrcs; i++)
		order[i] = &d->srcs[i];
	qsort(order, d->nsrcs, sizeof(*order), src_cmp);
	for (i = 0; i < d->nsrcs && ret >= 0; i++) {
		struct diff_src *s = order[i];
		struct qp_sym sym = { .name = s->name, .value = s->value, .size = s->size,
				      .type = s->type, .bind = s->bind, .shndx = s->shndx };

		if (s->bind == STB_LOCAL && s->file != file) {
			struct qp_sym f = { .name = qp_target__file_name(d->tgt, s->file),
					    .type = STT_FILE, .bind = STB_LOCAL,
					    .shndx = SHN_ABS };

			file = s->file;
			ret = qp_patch__add_src_sym(p, &f);
			if (ret < 0)
				break;
		}
		ret = qp_patch__add_src_sym(p, &sym);
		s->index = (size_t)ret;
	}
	free(order);
	return ret < 0 ? qp_seterr(err, ret, "cannot add src symbols") : 0;
}

/* dst symbols: the functions and variables defined in included sections,
 * locals first as ELF wants; a replacement's QP_R_REPLACE goes with it,
 * a QP_R_BUSY for each of the old function's cold parts, and a QP_R_ROOM
 * when the jump takes padding after the old function (QP_R_CALLS when its
 * call sites are rewritten instead). */
static int diff_emit_dst(struct qp_diff *d, struct qp_patch *p, const struct diff_incl *in,
			 const struct qp_elf_sym *s, int sec_index, struct qp_error *err)
{
	struct qp_sym sym = { .name = s->name, .size = s->size, .type = s->type,
			      .bind = s->bind == STB_LOCAL ? STB_LOCAL : STB_GLOBAL,
			      .value = in->off + s->value, .shndx = (uint16_t)sec_index };
	struct qp_rela rep = { .type = QP_R_REPLACE };
	unsigned i;
	int ret;

	ret = qp_patch__add_dst_sym(p, &sym);
	if (ret < 0)
		return qp_seterr(err, ret, "cannot add dst symbol '%s'", s->name);
	if (in->replaces != s)
		return 0;
	rep.sym = (uint32_t)d->srcs[in->replaces_src].index;
	rep.addend = ret;
	rep.offset = qp_patch__dst_sym_addr(p, (size_t)ret);
	ret = qp_patch__add_rela(p, &rep);
	for (i = 0; ret >= 0 && i < in->ncold; i++) {
		struct qp_rela busy = { .type = QP_R_BUSY, .sym = (uint32_t)d->srcs[in->cold_src[i]].index,
					.addend = rep.sym };

		ret = qp_patch__add_rela(p, &busy);
	}
	if (ret >= 0 && d->srcs[in->replaces_src].room) {
		struct qp_rela room = { .type = QP_R_ROOM, .sym = rep.sym,
					.addend = (int64_t)d->srcs[in->replaces_src].room };

		ret = qp_patch__add_rela(p, &room);
	}
	if (ret >= 0 && d->srcs[in->replaces_src].calls) {
		struct qp_rela calls = { .type = QP_R_CALLS, .sym = rep.sym };

		ret = qp_patch__add_rela(p, &calls);
	}
	return ret < 0 ? qp_seterr(err, ret, "out of memory") : 0;
}

static int diff_emit_dsts(struct qp_diff *d, struct qp_patch *p, const int *out_index,
			  struct qp_error *err)
{
	size_t i;
	int pass, ret;

	for (pass = 0; pass < 2; pass++) {
		for (i = 0; i < d->nincl; i++) {
			struct diff_incl *in = &d->incl[i];
			struct qp_elf_sym *s;

			qp_elf_for_each_sym(in->o->pat, s) {
				if (s->sec != in->sec || (s->type != STT_FUNC && s->type != STT_OBJECT) ||
				    (s->bind == STB_LOCAL) != (pass == 0))
					continue;
				ret = diff_emit_dst(d, p, in, s, out_index[in->out], err);
				if (ret)
					return ret;
			}
		}
	}
	return 0;
}

/* Output sections with the included sections' bytes, internal references
 * applied, and the relocations for the rest. */
static int diff_emit_sections(struct qp_diff *d, struct qp_patch *p, const uint64_t *base,
			      int *out_index, struct qp_error *err)
{
	uint8_t *bufs[OUT_NR] = { 0 };
	size_t i, j, stub = 0;
	int ret = 0, k;

	for (k = 0; k < OUT_NR; k++) {
		out_index[k] = -1;
		if (k != OUT_BSS && d->out_size[k] &&
		    !(bufs[k] = calloc(1, d->out_size[k]))) {
			ret = qp_seterr(err, -ENOMEM, "out of memory");
			goto out;
		}
	}
	for (i = 0; i < d->nincl; i++) {
		struct diff_incl *in = &d->incl[i];

		if (in->out != OUT_BSS && in->sec->data)
			memcpy(bufs[in->out] + in->off, in->sec->data, in->sec->size);
	}
	for (i = 0; i < d->nincl && !ret; i++)
		for (j = 0; j < d->incl[i].sec->nrelas && !ret; j++)
			ret = diff_emit_rela(d, p, bufs[d->incl[i].out] + d->incl[i].off,
					     bufs[OUT_TEXT], &d->incl[i], &d->incl[i].sec->relas[j],
					     &d->incl[i].refs[j], base, &stub, err);
	for (k = 0; k < OUT_NR && !ret; k++) {
		static const uint64_t flags[OUT_NR] = {
			SHF_ALLOC | SHF_EXECINSTR, SHF_ALLOC,
			SHF_ALLOC | SHF_WRITE, SHF_ALLOC | SHF_WRITE,
		};
		struct qp_section sec = {
			.name = diff_out_names[k],
			.type = k == OUT_BSS ? SHT_NOBITS : SHT_PROGBITS,
			.flags = flags[k], .addr = base[k], .size = d->out_size[k],
			.align = d->out_align[k], .data = bufs[k],
		};

		if (!d->out_size[k])
			continue;
		out_index[k] = qp_patch__add_section(p, &sec);
		if (out_index[k] < 0)
			ret = qp_seterr(err, out_index[k], "cannot add section '%s'", sec.name);
	}
out:
	for (k = 0; k < OUT_NR; k++)
		free(bufs[k]);
	return ret;
}

/* Lay out and emit the patch for what was selected (steps 3 and 4). */
int diff_emit_patch(struct qp_diff *d, const char *id, struct qp_patch **out,
		    struct qp_error *err)
{
	int out_index[OUT_NR];
	struct qp_patch *p = NULL;
	struct qp_info info = { .version = QP_FORMAT_VERSION };
	uint64_t base[OUT_NR], end = 0;
	size_t i;
	int ret;

	diff_layout(d);
	diff_out_bases(d, base);
	p = qp_patch__new();
	if (!p)
		return qp_seterr(err, -ENOMEM, "out of memory");
	qp_target__fill_info(d->tgt, &info);
	if (d->build_id_size) {
		memset(info.build_id, 0, sizeof(info.build_id));
		memcpy(info.build_id, d->build_id, d->build_id_size);
		info.build_id_size = (uint32_t)d->build_id_size;
	}
	ret = diff_emit_srcs(d, p, err);
	if (!ret)
		ret = diff_emit_sections(d, p, base, out_index, err);
	if (!ret)
		ret = diff_emit_dsts(d, p, out_index, err);
	for (i = 0; !ret && i < qp_patch__section_count(p); i++) {
		const struct qp_section *s = qp_patch__section(p, i);

		if (s->addr + s->size > end)
			end = s->addr + s->size;
	}
	/* the CFI last, on a page of its own: the loader protects it read-only */
	if (!ret)
		ret = diff_emit_cfi(d, p, base, (end + 4095) & ~(uint64_t)4095, err);
	if (ret)
		goto fail;
	for (i = 0; i < qp_patch__section_count(p); i++) {
		const struct qp_section *s = qp_patch__section(p, i);

		if (s->addr + s->size > info.image_size)
			info.image_size = s->addr + s->size;
	}
	if (id && *id) {
		snprintf(info.id, sizeof(info.id), "%s", id);
	} else {
		uint64_t h = fnv1a(0xcbf29ce484222325ull, info.build_id, info.build_id_size);

		for (i = 0; i < qp_patch__section_count(p); i++) {
			const struct qp_section *s = qp_patch__section(p, i);

			if (s->data)
				h = fnv1a(h, s->data, s->size);
		}
		for (i = 0; i < qp_patch__rela_count(p); i++)
			h = fnv1a(h, qp_patch__rela(p, i), sizeof(struct qp_rela));
		snprintf(info.id, sizeof(info.id), "%016llx", (unsigned long long)h);
	}
	ret = qp_patch__set_info(p, &info);
	if (ret) {
		qp_seterr(err, ret, "cannot set patch info");
		goto fail;
	}
	*out = p;
	return 0;
fail:
	qp_patch__free(p);
	return ret;
}
