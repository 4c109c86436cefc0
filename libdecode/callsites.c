// SPDX-License-Identifier: MIT
/*
 * The direct callers of a function in a linked binary: see callsites.h.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qpatch/callsites.h"
#include "qpatch/decode.h"

#define CS_REFS 32 /* references of one function looked at without malloc */

struct cs_list {
	struct qp_callsite *v; /* sites found */
	size_t n, cap;         /* count and capacity of v */
};

static int cs_add(struct cs_list *l, const struct qp_ref *r)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 16;
		struct qp_callsite *v;

		if (l->n >= QP_CALLSITES_MAX)
			return -E2BIG;
		v = realloc(l->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = (struct qp_callsite){ .addr = r->addr, .len = r->len, .rel_off = r->rel_off,
					     .kind = (uint8_t)r->kind };
	return 0;
}

/* The bytes of @s, when its section holds them; NULL otherwise. */
static const uint8_t *cs_code(const struct qp_elf_sym *s)
{
	const struct qp_elf_sec *sec = s->sec;

	if (s->type != STT_FUNC || !s->size || !sec || !sec->data ||
	    sec->shdr.sh_type != SHT_PROGBITS || !(sec->shdr.sh_flags & SHF_EXECINSTR) ||
	    s->value < sec->shdr.sh_addr || s->size > sec->size ||
	    s->value - sec->shdr.sh_addr > sec->size - s->size)
		return NULL;
	return sec->data + (s->value - sec->shdr.sh_addr);
}

/* One reference @r from function @s into [func, func + size): a site, an
 * escape (1, with @why), or an error. */
static int cs_classify(const struct qp_elf_sym *s, const struct qp_ref *r, uint64_t func,
		       unsigned flags, struct cs_list *l, char *why, size_t why_size)
{
	bool all = flags & QP_CALLSITES_ALL;

	if (r->rip_relative || r->kind == QP_INSN_OTHER) {
		snprintf(why, why_size, "its address is taken by the instruction at 0x%" PRIx64
			 " in '%s' (not a direct call)", r->addr, s->name);
		return all;
	}
	if (r->target != func) {
		snprintf(why, why_size, "the branch at 0x%" PRIx64 " in '%s' enters it at 0x%" PRIx64
			 ", not at its start", r->addr, s->name, r->target);
		return all;
	}
	if (r->rel_size != 4 || r->len > QP_CALLSITE_MAX_LEN) {
		snprintf(why, why_size, "the %u-byte branch at 0x%" PRIx64 " in '%s' cannot be made to reach the new code",
			 (unsigned)r->len, r->addr, s->name);
		return all;
	}
	return cs_add(l, r);
}

/* Decode every function but the one asked about; collect its sites. */
static int cs_sweep(const struct qp_elf *e, uint64_t func, uint64_t size, unsigned flags,
		    struct cs_list *l, char *why, size_t why_size)
{
	struct qp_ref local[CS_REFS];
	const struct qp_elf_sym *s;
	char why2[200];
	int ret;

	qp_elf_for_each_sym(e, s) {
		const uint8_t *code = cs_code(s);
		struct qp_ref *refs = local;
		size_t count = 0, i;

		if (!code || (s->value < func + size && func < s->value + s->size))
			continue; /* no code, or the function itself (or an alias) */
		ret = qp_decode_find_refs(code, s->size, s->value, func, func + size, refs, CS_REFS,
					  &count, why2, sizeof(why2));
		if (ret && (flags & QP_CALLSITES_ALL)) {
			snprintf(why, why_size, "cannot decode '%s' to find its callers: %s", s->name, why2);
			return 1;
		}
		if (count > CS_REFS) {
			refs = calloc(count, sizeof(*refs));
			if (!refs)
				return -ENOMEM;
			qp_decode_find_refs(code, s->size, s->value, func, func + size, refs, count,
					    &count, why2, sizeof(why2));
		}
		for (i = 0, ret = 0; !ret && i < count; i++)
			ret = cs_classify(s, &refs[i], func, flags, l, why, why_size);
		if (refs != local)
			free(refs);
		if (ret)
			return ret;
	}
	return 0;
}

/* The section holding address @addr, for messages. */
static const char *cs_sec_at(const struct qp_elf *e, uint64_t addr)
{
	const struct qp_elf_sec *sec;

	qp_elf_for_each_sec(e, sec)
		if ((sec->shdr.sh_flags & SHF_ALLOC) && addr >= sec->shdr.sh_addr &&
		    addr - sec->shdr.sh_addr < sec->shdr.sh_size)
			return sec->name;
	return "?";
}

/* Exported, or named by a dynamic relocation (pointers the dynamic
 * linker fills, the entries of .init_array and .fini_array among them). */
static int cs_dynamic(const struct qp_elf *e, uint64_t func, uint64_t size, char *why,
		      size_t why_size)
{
	const struct qp_elf_sec *sec;

	qp_elf_for_each_sec(e, sec) {
		Elf_Scn *scn = elf_getscn(e->elf, sec->index);
		Elf_Data *d = scn ? elf_getdata(scn, NULL) : NULL;
		size_t i, n;

		if (!d || !sec->shdr.sh_entsize)
			continue;
		n = sec->shdr.sh_size / sec->shdr.sh_entsize;
		if (sec->shdr.sh_type == SHT_DYNSYM) {
			for (i = 1; i < n; i++) {
				GElf_Sym sym;

				if (gelf_getsym(d, (int)i, &sym) && sym.st_shndx != SHN_UNDEF &&
				    sym.st_value >= func && sym.st_value < func + size) {
					const char *name = elf_strptr(e->elf, sec->shdr.sh_link, sym.st_name);

					snprintf(why, why_size, "it is exported in .dynsym as '%s' (other objects may call it through their PLT)",
						 name ? name : "?");
					return 1;
				}
			}
		}
		if (sec->shdr.sh_type != SHT_RELA || !(sec->shdr.sh_flags & SHF_ALLOC))
			continue;
		for (i = 0; i < n; i++) {
			GElf_Rela r;
			GElf_Sym sym;
			uint64_t v;
			Elf_Data *sd;
			Elf_Scn *ss;

			if (!gelf_getrela(d, (int)i, &r))
				continue;
			v = (uint64_t)r.r_addend;
			if (GELF_R_TYPE(r.r_info) != R_X86_64_RELATIVE &&
			    GELF_R_TYPE(r.r_info) != R_X86_64_IRELATIVE) {
				ss = GELF_R_SYM(r.r_info) ? elf_getscn(e->elf, sec->shdr.sh_link) : NULL;
				sd = ss ? elf_getdata(ss, NULL) : NULL;
				if (!sd || !gelf_getsym(sd, (int)GELF_R_SYM(r.r_info), &sym) ||
				    sym.st_shndx == SHN_UNDEF)
					continue;
				v = sym.st_value + (uint64_t)r.r_addend;
			}
			if (v >= func && v < func + size) {
				snprintf(why, why_size, "its address is stored at 0x%" PRIx64 " (%s; relocation in %s)",
					 (uint64_t)r.r_offset, cs_sec_at(e, r.r_offset), sec->name);
				return 1;
			}
		}
	}
	return 0;
}

/* Held in data as a pointer (position-dependent programs, and packed
 * relative relocations, keep it in place), or in code as a 32-bit
 * constant (position-dependent code: mov $func, %edi). */
static int cs_values(const struct qp_elf *e, uint64_t func, uint64_t size, char *why,
		     size_t why_size)
{
	const struct qp_elf_sec *sec;
	size_t i;

	qp_elf_for_each_sec(e, sec) {
		uint32_t t = sec->shdr.sh_type;
		bool code = sec->shdr.sh_flags & SHF_EXECINSTR;

		if (!(sec->shdr.sh_flags & SHF_ALLOC) || !sec->data ||
		    (t != SHT_PROGBITS && t != SHT_INIT_ARRAY && t != SHT_FINI_ARRAY &&
		     t != SHT_PREINIT_ARRAY))
			continue;
		if (code) {
			if (func + size > UINT32_MAX || e->ehdr.e_type != ET_EXEC)
				continue;
			for (i = 0; i + 4 <= sec->size; i++) {
				uint32_t v;

				memcpy(&v, sec->data + i, 4);
				if (v >= func && v < func + size) {
					snprintf(why, why_size, "its address may be the 32-bit constant at 0x%" PRIx64 " (%s)",
						 sec->shdr.sh_addr + i, sec->name);
					return 1;
				}
			}
			continue;
		}
		for (i = (8 - sec->shdr.sh_addr % 8) % 8; i + 8 <= sec->size; i += 8) {
			uint64_t v;

			memcpy(&v, sec->data + i, 8);
			if (v >= func && v < func + size) {
				snprintf(why, why_size, "its address is stored at 0x%" PRIx64 " (%s)",
					 sec->shdr.sh_addr + i, sec->name);
				return 1;
			}
		}
	}
	return 0;
}

/* Does the code right before @func run on into it?  The function that
 * ends closest before it, then nothing but NOPs: its last instruction
 * decides. */
static int cs_fallthrough(const struct qp_elf *e, uint64_t func, char *why, size_t why_size)
{
	const struct qp_elf_sym *s, *prev = NULL;
	const uint8_t *code;
	struct qp_insn in = { 0 };
	uint64_t at;

	qp_elf_for_each_sym(e, s) {
		if (!cs_code(s) || s->value >= func || s->value + s->size > func)
			continue;
		if (!prev || s->value + s->size > prev->value + prev->size)
			prev = s;
	}
	if (!prev)
		return 0;
	code = cs_code(prev);
	for (at = prev->value; at < prev->value + prev->size; at += in.len)
		if (qp_decode_insn(code + (at - prev->value), prev->value + prev->size - at, at, &in))
			return 0; /* cannot tell: the sweep said so already */
	if (in.kind == QP_INSN_JMP || in.kind == QP_INSN_RET || in.kind == QP_INSN_TRAP)
		return 0;
	/* between them: only NOPs carry on */
	code = prev->sec->data + (prev->value + prev->size - prev->sec->shdr.sh_addr);
	for (at = prev->value + prev->size; at < func; at += in.len)
		if (qp_decode_insn(code + (at - prev->value - prev->size), func - at, at, &in) ||
		    in.kind != QP_INSN_OTHER || code[at - prev->value - prev->size] == 0xcc)
			return 0;
	snprintf(why, why_size, "the code before it ('%s', ending at 0x%" PRIx64 ") runs on into it",
		 prev->name, prev->value + prev->size);
	return 1;
}

static int cs_cmp(const void *a, const void *b)
{
	const struct qp_callsite *x = a, *y = b;

	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

int qp_callsites_find(const struct qp_elf *e, uint64_t func, uint64_t size, unsigned flags,
		      struct qp_callsite **out, size_t *n, char *why, size_t why_size)
{
	struct cs_list l = { 0 };
	size_t i, k;
	int ret;

	*out = NULL;
	*n = 0;
	if (e->dynamic || !size) {
		snprintf(why, why_size, "the binary has no symbol table to find its callers in");
		return -ENOTSUP;
	}
	ret = cs_sweep(e, func, size, flags, &l, why, why_size);
	if (!ret && (flags & QP_CALLSITES_ALL))
		ret = cs_dynamic(e, func, size, why, why_size);
	if (!ret && (flags & QP_CALLSITES_ALL))
		ret = cs_values(e, func, size, why, why_size);
	if (!ret && (flags & QP_CALLSITES_ALL))
		ret = cs_fallthrough(e, func, why, why_size);
	if (ret) {
		free(l.v);
		if (ret == -E2BIG)
			snprintf(why, why_size, "it has more than %d call sites", QP_CALLSITES_MAX);
		return ret == 1 ? -ENOTSUP : ret;
	}
	if (l.n > 1)
		qsort(l.v, l.n, sizeof(*l.v), cs_cmp);
	for (i = k = 0; i < l.n; i++) /* aliases of one caller give it twice */
		if (!k || l.v[k - 1].addr != l.v[i].addr)
			l.v[k++] = l.v[i];
	*out = l.v;
	*n = k;
	return 0;
}
