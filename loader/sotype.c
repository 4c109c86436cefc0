// SPDX-License-Identifier: MIT
/*
 * The type check of a hand-written patch library: see sotype.h.
 *
 * Both sides are read with libdwfl, offline, so that the target's DWARF
 * may come from a separate debug file (the search the unwinder uses too).
 * A function is found by its address: the old one's in the target file,
 * the new one's from the library's dynamic relocation of its table entry
 * (the file's pointer is not relocated yet; the loader never trusts it
 * for anything but this lookup, which only decides what to compare).
 */
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qpatch/so.h"
#include "sotype.h"

#define SOTYPE_MAX_PARAMS 64 /* parameters compared at most */
#define SOTYPE_MAX_DEPTH 16  /* typedef/qualifier chains followed at most */

/* What is compared of one type. */
enum sotype_kind { K_VOID, K_BASE, K_POINTER, K_STRUCT, K_UNION, K_ENUM, K_OTHER };

struct sotype {
	enum sotype_kind kind;
	uint64_t size;       /* bytes (0: unknown) */
	int encoding;        /* K_BASE: DW_ATE_* */
	char tag_name[96];   /* K_STRUCT, K_UNION: its tag, else the typedef naming it */
	char spelled[128];   /* as C would spell it, for messages */
};

/* A prototype read from DWARF. */
struct sotype_proto {
	struct sotype ret;
	struct sotype params[SOTYPE_MAX_PARAMS];
	size_t nparams;
	bool variadic;
};

/* One side, opened with libdwfl. */
struct sotype_side {
	Dwfl *dwfl;
	Dwarf *dw;           /* NULL: no DWARF found */
};

static char *sotype_debuginfo_path; /* libdwfl's default search */

static const Dwfl_Callbacks sotype_callbacks = {
	.find_elf = dwfl_build_id_find_elf,
	.find_debuginfo = dwfl_standard_find_debuginfo,
	.section_address = dwfl_offline_section_address,
	.debuginfo_path = &sotype_debuginfo_path,
};

static void sotype_open(struct sotype_side *side, const char *file, const char *name)
{
	Dwfl_Module *mod;
	Dwarf_Addr bias;

	memset(side, 0, sizeof(*side));
	side->dwfl = dwfl_begin(&sotype_callbacks);
	if (!side->dwfl)
		return;
	/* libdwfl opens @file itself; a debug link is looked for next to it */
	mod = dwfl_report_offline(side->dwfl, name, file, -1);
	if (!mod)
		return;
	dwfl_report_end(side->dwfl, NULL, NULL);
	side->dw = dwfl_module_getdwarf(mod, &bias);
}

static void sotype_close(struct sotype_side *side)
{
	if (side->dwfl)
		dwfl_end(side->dwfl);
	memset(side, 0, sizeof(*side));
}

/* --- the new function's address in the library ------------------------- */

/* The value the dynamic linker will store at @vaddr of @lib: a RELATIVE
 * relocation's addend, or a symbol's value plus the addend.  0 if none. */
static uint64_t sotype_reloc_value(const struct qp_elf *lib, uint64_t vaddr)
{
	Elf_Scn *scn = NULL;

	while ((scn = elf_nextscn(lib->elf, scn))) {
		GElf_Shdr sh;
		Elf_Data *data;
		size_t i, n;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_RELA || !sh.sh_entsize)
			continue;
		data = elf_getdata(scn, NULL);
		n = data ? data->d_size / sh.sh_entsize : 0;
		for (i = 0; i < n; i++) {
			GElf_Rela r;
			GElf_Sym sym;
			Elf_Data *sd;

			if (!gelf_getrela(data, (int)i, &r) || r.r_offset != vaddr)
				continue;
			if (GELF_R_TYPE(r.r_info) == R_X86_64_RELATIVE)
				return (uint64_t)r.r_addend;
			if (GELF_R_TYPE(r.r_info) != R_X86_64_64)
				return 0;
			sd = elf_getdata(elf_getscn(lib->elf, sh.sh_link), NULL);
			if (!sd || !gelf_getsym(sd, (int)GELF_R_SYM(r.r_info), &sym) ||
			    sym.st_shndx == SHN_UNDEF)
				return 0;
			return sym.st_value + (uint64_t)r.r_addend;
		}
	}
	return 0;
}

/* --- DWARF ------------------------------------------------------------------ */

static bool sotype_starts_at(Dwarf_Die *die, uint64_t vaddr)
{
	Dwarf_Addr a;

	if (dwarf_lowpc(die, &a) == 0 && a == vaddr)
		return true;
	return dwarf_hasattr(die, DW_AT_ranges) && dwarf_entrypc(die, &a) == 0 && a == vaddr;
}

/* The subprogram starting at @vaddr among @parent's children (namespaces
 * and classes searched too); 0 when found. */
static int sotype_find_in(Dwarf_Die *parent, uint64_t vaddr, Dwarf_Die *out, int depth)
{
	Dwarf_Die child;

	if (depth > 8 || dwarf_child(parent, &child) != 0)
		return -1;
	do {
		int tag = dwarf_tag(&child);

		if (tag == DW_TAG_subprogram && sotype_starts_at(&child, vaddr)) {
			*out = child;
			return 0;
		}
		if ((tag == DW_TAG_namespace || tag == DW_TAG_class_type ||
		     tag == DW_TAG_structure_type) &&
		    !sotype_find_in(&child, vaddr, out, depth + 1))
			return 0;
	} while (dwarf_siblingof(&child, &child) == 0);
	return -1;
}

static int sotype_find_func(Dwarf *dw, uint64_t vaddr, Dwarf_Die *out)
{
	Dwarf_Die cu;
	Dwarf_Off off = 0, next;
	size_t hsize;

	if (dwarf_addrdie(dw, vaddr, &cu) && !sotype_find_in(&cu, vaddr, out, 0))
		return 0;
	/* no (or incomplete) address ranges: every unit */
	while (dwarf_nextcu(dw, off, &next, &hsize, NULL, NULL, NULL) == 0) {
		if (dwarf_offdie(dw, off + hsize, &cu) && !sotype_find_in(&cu, vaddr, out, 0))
			return 0;
		off = next;
	}
	return -1;
}

/* Follow DW_AT_abstract_origin and DW_AT_specification to the DIE that
 * declares the parameters. */
static void sotype_declaring(Dwarf_Die *die)
{
	int i;

	for (i = 0; i < SOTYPE_MAX_DEPTH; i++) {
		Dwarf_Attribute a;
		Dwarf_Die next;

		if ((!dwarf_attr(die, DW_AT_abstract_origin, &a) &&
		     !dwarf_attr(die, DW_AT_specification, &a)) || !dwarf_formref_die(&a, &next))
			return;
		*die = next;
	}
}

static void sotype_spell(Dwarf_Die *die, char *out, size_t size, int depth);

/* @out = @prefix + the spelling of @die's DW_AT_type ("void" without) + @suffix. */
static void sotype_spell_ref(Dwarf_Die *die, const char *prefix, const char *suffix, char *out,
			     size_t size, int depth)
{
	Dwarf_Attribute a;
	Dwarf_Die t;
	char inner[128] = "void";

	if (dwarf_attr(die, DW_AT_type, &a) && dwarf_formref_die(&a, &t))
		sotype_spell(&t, inner, sizeof(inner), depth + 1);
	snprintf(out, size, "%s%s%s", prefix, inner, suffix);
}

/* A C spelling of type @die, for messages. */
static void sotype_spell(Dwarf_Die *die, char *out, size_t size, int depth)
{
	const char *name = dwarf_diename(die);

	if (depth > SOTYPE_MAX_DEPTH) {
		snprintf(out, size, "...");
		return;
	}
	switch (dwarf_tag(die)) {
	case DW_TAG_pointer_type:
		sotype_spell_ref(die, "", " *", out, size, depth);
		return;
	case DW_TAG_reference_type:
		sotype_spell_ref(die, "", " &", out, size, depth);
		return;
	case DW_TAG_const_type:
		sotype_spell_ref(die, "const ", "", out, size, depth);
		return;
	case DW_TAG_volatile_type:
		sotype_spell_ref(die, "volatile ", "", out, size, depth);
		return;
	case DW_TAG_restrict_type:
	case DW_TAG_atomic_type:
		sotype_spell_ref(die, "", "", out, size, depth);
		return;
	case DW_TAG_structure_type:
	case DW_TAG_class_type:
		snprintf(out, size, "struct %s", name ? name : "<anonymous>");
		return;
	case DW_TAG_union_type:
		snprintf(out, size, "union %s", name ? name : "<anonymous>");
		return;
	case DW_TAG_enumeration_type:
		snprintf(out, size, "enum %s", name ? name : "<anonymous>");
		return;
	case DW_TAG_subroutine_type:
		snprintf(out, size, "function");
		return;
	case DW_TAG_array_type:
		sotype_spell_ref(die, "", "[]", out, size, depth);
		return;
	}
	snprintf(out, size, "%s", name ? name : "?");
}

/* What is compared of the type @ref_of's DW_AT_type refers to ("void"
 * when it has none). */
static void sotype_of(Dwarf_Die *ref_of, struct sotype *t)
{
	Dwarf_Attribute a;
	Dwarf_Die die;
	Dwarf_Word w;
	int i, tag;

	memset(t, 0, sizeof(*t));
	t->kind = K_VOID;
	snprintf(t->spelled, sizeof(t->spelled), "void");
	if (!dwarf_attr_integrate(ref_of, DW_AT_type, &a) || !dwarf_formref_die(&a, &die))
		return;
	sotype_spell(&die, t->spelled, sizeof(t->spelled), 0);
	for (i = 0; i < SOTYPE_MAX_DEPTH; i++) {
		tag = dwarf_tag(&die);
		if (tag == DW_TAG_typedef && dwarf_diename(&die) && !t->tag_name[0])
			snprintf(t->tag_name, sizeof(t->tag_name), "%s", dwarf_diename(&die));
		if (tag != DW_TAG_typedef && tag != DW_TAG_const_type && tag != DW_TAG_volatile_type &&
		    tag != DW_TAG_restrict_type && tag != DW_TAG_atomic_type)
			break;
		if (!dwarf_attr(&die, DW_AT_type, &a) || !dwarf_formref_die(&a, &die))
			return; /* const void */
	}
	t->size = dwarf_aggregate_size(&die, &w) == 0 ? w : 0;
	switch (tag) {
	case DW_TAG_base_type:
		t->kind = K_BASE;
		if (dwarf_attr(&die, DW_AT_encoding, &a) && dwarf_formudata(&a, &w) == 0)
			t->encoding = (int)w;
		break;
	case DW_TAG_pointer_type:
	case DW_TAG_reference_type:
	case DW_TAG_rvalue_reference_type:
	case DW_TAG_ptr_to_member_type:
		t->kind = K_POINTER;
		break;
	case DW_TAG_structure_type:
	case DW_TAG_class_type:
	case DW_TAG_union_type:
		t->kind = tag == DW_TAG_union_type ? K_UNION : K_STRUCT;
		if (dwarf_diename(&die))
			snprintf(t->tag_name, sizeof(t->tag_name), "%s", dwarf_diename(&die));
		break;
	case DW_TAG_enumeration_type:
		t->kind = K_ENUM;
		break;
	default:
		t->kind = K_OTHER;
	}
}

static void sotype_proto_of(Dwarf_Die *fn, struct sotype_proto *p)
{
	Dwarf_Die decl = *fn, child;

	memset(p, 0, sizeof(*p));
	sotype_declaring(&decl);
	sotype_of(&decl, &p->ret);
	if (dwarf_child(&decl, &child) != 0)
		return;
	do {
		int tag = dwarf_tag(&child);

		if (tag == DW_TAG_unspecified_parameters)
			p->variadic = true;
		else if (tag == DW_TAG_formal_parameter && p->nparams < SOTYPE_MAX_PARAMS)
			sotype_of(&child, &p->params[p->nparams++]);
	} while (dwarf_siblingof(&child, &child) == 0);
}

/* --- comparing ---------------------------------------------------------------- */

static const char *sotype_kind_name(const struct sotype *t)
{
	switch (t->kind) {
	case K_VOID: return "nothing";
	case K_POINTER: return "pointer";
	case K_STRUCT: return "struct";
	case K_UNION: return "union";
	case K_ENUM: return "enum";
	case K_OTHER: return "other type";
	case K_BASE: break;
	}
	switch (t->encoding) {
	case DW_ATE_float: return "floating-point";
	case DW_ATE_boolean: return "boolean";
	case DW_ATE_unsigned:
	case DW_ATE_unsigned_char: return "unsigned integer";
	case DW_ATE_signed:
	case DW_ATE_signed_char: return "signed integer";
	}
	return "base type";
}

/* Why @a and @b differ, into @why; false when they do not. */
static bool sotype_differ(const struct sotype *a, const struct sotype *b, char *why, size_t size)
{
	bool differ = a->kind != b->kind;

	if (!differ && a->kind == K_BASE)
		differ = a->encoding != b->encoding || a->size != b->size;
	else if (!differ && (a->kind == K_STRUCT || a->kind == K_UNION))
		differ = strcmp(a->tag_name, b->tag_name) || a->size != b->size;
	else if (!differ && a->kind != K_POINTER && a->kind != K_VOID)
		differ = a->size != b->size;
	if (differ)
		snprintf(why, size, "'%s' (%s, %" PRIu64 " bytes) in the target, '%s' (%s, %" PRIu64
			 " bytes) in the replacement", a->spelled, sotype_kind_name(a), a->size,
			 b->spelled, sotype_kind_name(b), b->size);
	return differ;
}

static void sotype_list(const struct sotype_proto *p, char *out, size_t size)
{
	size_t i, len = 0;

	out[0] = '\0';
	for (i = 0; i < p->nparams && len < size; i++)
		len += (size_t)snprintf(out + len, size - len, "%s%s", i ? ", " : "",
					p->params[i].spelled);
	if (p->variadic && len < size)
		snprintf(out + len, size - len, "%s...", p->nparams ? ", " : "");
	if (!p->nparams && !p->variadic)
		snprintf(out, size, "void");
}

static int sotype_compare(const char *name, const struct sotype_proto *old,
			  const struct sotype_proto *new, const char *lib, struct qp_error *err)
{
	char why[512], lo[256], ln[256];
	size_t i, n = old->nparams < new->nparams ? old->nparams : new->nparams;

	sotype_list(old, lo, sizeof(lo));
	sotype_list(new, ln, sizeof(ln));
	for (i = 0; i < n; i++)
		if (sotype_differ(&old->params[i], &new->params[i], why, sizeof(why)))
			return qp_seterr(err, QP_EREFUSED,
					 "type check: the replacement for '%s' in '%s' does not match it: parameter %zu is %s (target: %s(%s), replacement: (%s)); --no-type-check applies it anyway",
					 name, lib, i + 1, why, name, lo, ln);
	if (old->nparams != new->nparams || old->variadic != new->variadic)
		return qp_seterr(err, QP_EREFUSED,
				 "type check: the replacement for '%s' in '%s' does not match it: '%s' takes %zu parameter(s)%s, the replacement %zu%s (target: %s(%s), replacement: (%s)); --no-type-check applies it anyway",
				 name, lib, name, old->nparams, old->variadic ? " and more" : "",
				 new->nparams, new->variadic ? " and more" : "", name, lo, ln);
	if (sotype_differ(&old->ret, &new->ret, why, sizeof(why)))
		return qp_seterr(err, QP_EREFUSED,
				 "type check: the replacement for '%s' in '%s' does not match it: the return type is %s; --no-type-check applies it anyway",
				 name, lib, why);
	return 0;
}

static void sotype_note(char *note, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Append one reason to @note, "; " between. */
static void sotype_note(char *note, size_t size, const char *fmt, ...)
{
	size_t len = strlen(note);
	va_list ap;

	if (len && len + 2 < size)
		len += (size_t)snprintf(note + len, size - len, "; ");
	if (len + 1 >= size)
		return;
	va_start(ap, fmt);
	vsnprintf(note + len, size - len, fmt, ap);
	va_end(ap);
}

int ld_so_type_check(const struct qp_elf *lib, const struct qp_elf_sec *sec,
		     const char *obj_file, const char *obj_name, const struct ld_so_type_fn *fns,
		     size_t n, size_t *nchecked, char *note, size_t note_size,
		     struct qp_error *err)
{
	struct sotype_side l, o;
	size_t i;
	int ret = 0;

	*nchecked = 0;
	note[0] = '\0';
	sotype_open(&l, lib->path, lib->path);
	if (!l.dw) {
		sotype_note(note, note_size, "type check skipped: '%s' has no DWARF (build it with -g)",
			    lib->path);
		sotype_close(&l);
		return 0;
	}
	sotype_open(&o, obj_file, obj_name);
	if (!o.dw) {
		sotype_note(note, note_size,
			    "type check skipped: '%s' has no DWARF, in the file or a separate debug file",
			    obj_name);
		goto out;
	}
	for (i = 0; !ret && i < n; i++) {
		const struct ld_so_type_fn *f = &fns[i];
		struct sotype_proto po, pn;
		uint64_t new_vaddr = sotype_reloc_value(lib, sec->shdr.sh_addr + f->entry_off +
							offsetof(struct qpatch_so_entry, addr));
		Dwarf_Die dold, dnew;

		if (strchr(f->name, '.')) {
			sotype_note(note, note_size,
				    "'%s' not type-checked: a compiler-made copy, whose calling convention is not its declared one",
				    f->name);
			continue;
		}
		if (!new_vaddr || sotype_find_func(l.dw, new_vaddr, &dnew)) {
			sotype_note(note, note_size, "'%s' not type-checked: no DWARF for its replacement in '%s'",
				    f->name, lib->path);
			continue;
		}
		if (sotype_find_func(o.dw, f->old_vaddr, &dold)) {
			sotype_note(note, note_size, "'%s' not type-checked: no DWARF for it in '%s'", f->name,
				    obj_name);
			continue;
		}
		sotype_proto_of(&dold, &po);
		sotype_proto_of(&dnew, &pn);
		ret = sotype_compare(f->name, &po, &pn, lib->path, err);
		if (!ret)
			(*nchecked)++;
	}
out:
	sotype_close(&o);
	sotype_close(&l);
	return ret;
}
