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

/* One reference of the index: a relative field into code. */
struct cs_ref {
	struct qp_ref r; /* the field, its instruction and its target */
	uint32_t sym;    /* index of the function symbol whose code holds it */
};

/* A function whose code does not decode to its end. */
struct cs_fail {
	uint32_t sym;  /* its symbol index */
	char why[200]; /* why (qp_decode_find_refs) */
};

struct qp_callsites {
	const struct qp_elf *e; /* the binary (not owned) */
	uint64_t lo, hi;        /* [lo, hi): the targets kept */
	uint64_t *want;         /* qp_callsites__new's functions, sorted (NULL: none) */
	size_t nwant;           /* count of want */
	bool full;              /* every function decoded (else only those that may
				   reach one of want by a rel32) */
	struct cs_ref *refs;    /* references into [lo, hi), by target, then symbol,
				   then address */
	size_t nrefs, cap;      /* count and capacity of refs */
	struct cs_fail *fails;  /* functions that do not decode, in symbol order */
	size_t nfails;          /* count of fails */
};

/* [lo, hi): what the executable sections span (targets worth keeping). */
static void cs_code_span(const struct qp_elf *e, uint64_t *lo, uint64_t *hi)
{
	const struct qp_elf_sec *sec;

	*lo = UINT64_MAX;
	*hi = 0;
	qp_elf_for_each_sec(e, sec)
		if ((sec->shdr.sh_flags & SHF_EXECINSTR) && (sec->shdr.sh_flags & SHF_ALLOC) &&
		    sec->shdr.sh_size) {
			if (sec->shdr.sh_addr < *lo)
				*lo = sec->shdr.sh_addr;
			if (sec->shdr.sh_addr + sec->shdr.sh_size > *hi)
				*hi = sec->shdr.sh_addr + sec->shdr.sh_size;
		}
	if (*lo >= *hi)
		*lo = *hi = 0;
}

/* Decode function @s once: its references into [lo, hi) go to @x (which
 * grows), a failure to decode to fails. */
static int cs_index_sym(struct qp_callsites *x, const struct qp_elf_sym *s, const uint8_t *code,
			struct qp_ref **scratch, size_t *cap)
{
	char why[sizeof(x->fails->why)];
	size_t count = 0, i;
	int ret;

	ret = qp_decode_find_refs(code, s->size, s->value, x->lo, x->hi, *scratch, *cap, &count,
				  why, sizeof(why));
	if (count > *cap) { /* again, with room for all */
		struct qp_ref *v = realloc(*scratch, count * sizeof(*v));

		if (!v)
			return -ENOMEM;
		*scratch = v;
		*cap = count;
		ret = qp_decode_find_refs(code, s->size, s->value, x->lo, x->hi, *scratch, *cap,
					  &count, why, sizeof(why));
	}
	if (ret) {
		struct cs_fail *f = realloc(x->fails, (x->nfails + 1) * sizeof(*f));

		if (!f)
			return -ENOMEM;
		x->fails = f;
		f[x->nfails].sym = (uint32_t)(s - x->e->syms);
		snprintf(f[x->nfails].why, sizeof(f->why), "%s", why);
		x->nfails++;
	}
	if (x->nrefs + count > x->cap) {
		size_t ncap = x->cap ? x->cap : 4096;
		struct cs_ref *v;

		while (ncap < x->nrefs + count)
			ncap *= 2;
		v = realloc(x->refs, ncap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		x->refs = v;
		x->cap = ncap;
	}
	for (i = 0; i < count; i++)
		x->refs[x->nrefs++] = (struct cs_ref){ .r = (*scratch)[i],
						       .sym = (uint32_t)(s - x->e->syms) };
	return 0;
}

static int cs_ref_cmp(const void *a, const void *b)
{
	const struct cs_ref *x = a, *y = b;

	if (x->r.target != y->r.target)
		return x->r.target < y->r.target ? -1 : 1;
	if (x->sym != y->sym)
		return x->sym < y->sym ? -1 : 1;
	return x->r.addr < y->r.addr ? -1 : x->r.addr > y->r.addr;
}

static bool cs_wanted(const struct qp_callsites *x, uint64_t func)
{
	size_t lo = 0, hi = x->nwant;

	if (!hi || func < x->want[0] || func > x->want[hi - 1])
		return false;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (x->want[mid] == func)
			return true;
		if (x->want[mid] < func)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

/*
 * May function @s hold a rel32 branch to one of want?  The rel32 field
 * ends a call, jmp or jcc, so its destination is the field's end plus its
 * value: a function with no 4 bytes that add up so holds none, and need
 * not be decoded for want's sites.
 */
static bool cs_may_reach(const struct qp_callsites *x, const struct qp_elf_sym *s,
			 const uint8_t *code)
{
	uint64_t lo = x->want[0], hi = x->want[x->nwant - 1];
	size_t k;

	for (k = 0; k + 4 <= s->size; k++) {
		int32_t rel;
		uint64_t t;

		memcpy(&rel, code + k, 4);
		t = s->value + k + 4 + (uint64_t)(int64_t)rel;
		if (t >= lo && t <= hi && cs_wanted(x, t))
			return true;
	}
	return false;
}

/* Decode the functions of the binary (only those that may reach want,
 * unless @all) into refs and fails, which start empty. */
static int cs_decode(struct qp_callsites *x, bool all)
{
	const struct qp_elf_sym *s;
	struct qp_ref *scratch = NULL;
	size_t cap = 0;
	int ret = 0;

	x->nrefs = x->nfails = 0;
	x->full = all;
	if (x->e->nsyms > UINT32_MAX)
		return -E2BIG;
	qp_elf_for_each_sym(x->e, s) {
		const uint8_t *code = cs_code(s);

		if (ret || !code || x->lo >= x->hi || (!all && !cs_may_reach(x, s, code)))
			continue;
		if (!cap) {
			cap = 1024;
			scratch = malloc(cap * sizeof(*scratch));
			if (!scratch) {
				ret = -ENOMEM;
				continue;
			}
		}
		ret = cs_index_sym(x, s, code, &scratch, &cap);
	}
	free(scratch);
	if (!ret && x->nrefs > 1)
		qsort(x->refs, x->nrefs, sizeof(*x->refs), cs_ref_cmp);
	return ret;
}

static int cs_u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* An index of @e's references into [lo, hi): see qp_callsites__new. */
static int cs_index(const struct qp_elf *e, uint64_t lo, uint64_t hi, const uint64_t *want,
		    size_t nwant, struct qp_callsites **out)
{
	struct qp_callsites *x = calloc(1, sizeof(*x));
	int ret = 0;

	*out = NULL;
	if (!x)
		return -ENOMEM;
	x->e = e;
	x->lo = lo;
	x->hi = hi;
	if (nwant) {
		x->want = malloc(nwant * sizeof(*x->want));
		if (!x->want) {
			free(x);
			return -ENOMEM;
		}
		memcpy(x->want, want, nwant * sizeof(*want));
		x->nwant = nwant;
		qsort(x->want, nwant, sizeof(*want), cs_u64_cmp);
	}
	ret = cs_decode(x, !nwant);
	if (ret) {
		qp_callsites__free(x);
		return ret;
	}
	*out = x;
	return 0;
}

int qp_callsites__new(const struct qp_elf *e, const uint64_t *want, size_t nwant,
		      struct qp_callsites **out)
{
	uint64_t lo, hi;

	cs_code_span(e, &lo, &hi);
	if (e->dynamic) /* nothing to find: qp_callsites__find says why */
		lo = hi = 0;
	return cs_index(e, lo, hi, want, nwant, out);
}

void qp_callsites__free(struct qp_callsites *x)
{
	if (!x)
		return;
	free(x->want);
	free(x->refs);
	free(x->fails);
	free(x);
}

static int cs_sym_cmp(const void *a, const void *b)
{
	const struct cs_ref *x = a, *y = b;

	if (x->sym != y->sym)
		return x->sym < y->sym ? -1 : 1;
	return x->r.addr < y->r.addr ? -1 : x->r.addr > y->r.addr;
}

/*
 * The references into [func, func + size) from every function but the one
 * asked about (or an alias), in the order a sweep of the symbol table
 * meets them; each one classified until one escapes.  Under
 * QP_CALLSITES_ALL, a function met that does not decode stops it there.
 */
static int cs_sweep(const struct qp_callsites *x, uint64_t func, uint64_t size, unsigned flags,
		    struct cs_list *l, char *why, size_t why_size)
{
	const struct qp_elf_sym *syms = x->e->syms;
	size_t lo = 0, hi = x->nrefs, i, k, nv = 0;
	const struct cs_fail *fl = NULL;
	struct cs_ref *v = NULL;
	int ret = 0;

	while (lo < hi) { /* the first reference at or after func */
		size_t mid = lo + (hi - lo) / 2;

		if (x->refs[mid].r.target < func)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (i = lo; i < x->nrefs && x->refs[i].r.target < func + size; i++)
		nv++;
	if (nv) {
		v = malloc(nv * sizeof(*v));
		if (!v)
			return -ENOMEM;
		for (i = lo, k = 0; k < nv; i++) {
			const struct qp_elf_sym *s = &syms[x->refs[i].sym];

			if (s->value < func + size && func < s->value + s->size)
				nv--; /* the function itself, or an alias */
			else
				v[k++] = x->refs[i];
		}
		qsort(v, nv, sizeof(*v), cs_sym_cmp);
	}
	/* the first function met that does not decode ends the sweep there */
	for (i = 0; (flags & QP_CALLSITES_ALL) && !fl && i < x->nfails; i++) {
		const struct qp_elf_sym *s = &syms[x->fails[i].sym];

		if (!(s->value < func + size && func < s->value + s->size))
			fl = &x->fails[i];
	}
	for (i = 0; !ret && i < nv && (!fl || v[i].sym < fl->sym); i++)
		ret = cs_classify(&syms[v[i].sym], &v[i].r, func, flags, l, why, why_size);
	if (!ret && fl) {
		snprintf(why, why_size, "cannot decode '%s' to find its callers: %s", syms[fl->sym].name,
			 fl->why);
		ret = 1;
	}
	free(v);
	return ret;
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

int qp_callsites__find(struct qp_callsites *x, uint64_t func, uint64_t size, unsigned flags,
		       struct qp_callsite **out, size_t *n, char *why, size_t why_size)
{
	const struct qp_elf *e = x->e;
	struct cs_list l = { 0 };
	size_t i, k;
	int ret;

	*out = NULL;
	*n = 0;
	if (e->dynamic || !size) {
		snprintf(why, why_size, "the binary has no symbol table to find its callers in");
		return -ENOTSUP;
	}
	if (func < x->lo || func >= x->hi || size > x->hi - func) {
		snprintf(why, why_size, "0x%" PRIx64 " is not in the code indexed", func);
		return -EINVAL;
	}
	/* the functions decoded so far may not hold every reference asked about */
	if (!x->full && ((flags & QP_CALLSITES_ALL) || !cs_wanted(x, func)) &&
	    (ret = cs_decode(x, true)))
		return ret;
	ret = cs_sweep(x, func, size, flags, &l, why, why_size);
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

int qp_callsites_find(const struct qp_elf *e, uint64_t func, uint64_t size, unsigned flags,
		      struct qp_callsite **out, size_t *n, char *why, size_t why_size)
{
	struct qp_callsites *x;
	int ret;

	*out = NULL;
	*n = 0;
	if (e->dynamic || !size) {
		snprintf(why, why_size, "the binary has no symbol table to find its callers in");
		return -ENOTSUP;
	}
	if (func + size < func) {
		snprintf(why, why_size, "0x%" PRIx64 " + %" PRIu64 " is not a function", func, size);
		return -EINVAL;
	}
	ret = cs_index(e, func, func + size, NULL, 0, &x); /* this function's references only */
	if (ret)
		return ret;
	ret = qp_callsites__find(x, func, size, flags, out, n, why, why_size);
	qp_callsites__free(x);
	return ret;
}
