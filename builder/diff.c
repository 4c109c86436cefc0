// SPDX-License-Identifier: MIT
/*
 * The object differ: which functions changed between the original and the
 * patched objects, what else the patch needs, and how each reference of the
 * new code is resolved (inside the patch, or in the target binary).
 *
 * Pipeline (qp_diff__emit):
 *   1. select:   every patched function whose bytes or relocations differ
 *                from the original's, or that the original lacks;
 *   2. close:    walk the relocations of everything selected; a reference
 *                to read-only data (strings, constants, jump tables) copies
 *                it, a reference to code or data the target lacks pulls it
 *                in, anything else becomes a src symbol of the target;
 *   3. layout:   text, rodata, data, bss of the patch image;
 *   4. emit:     dst symbols, src symbols (FILE-scoped locals first), and
 *                relocations; references inside the image are resolved now.
 * Steps 3 and 4 are in emit.c; refusals beyond changed data (type layouts,
 * sites the jump cannot take) and __LINE__-only changes in checks.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "diff_internal.h"
#include "qpatch/decode.h"

/* --- small helpers -------------------------------------------------------- */

int diff_note(struct qp_diff *d, enum qp_change_kind kind, const char *name,
		     const struct diff_obj *o, uint64_t size, const char *why)
{
	struct qp_report *r = d->rep;
	struct qp_change *c, *v;

	v = realloc(r->changes, (r->nchanges + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	r->changes = v;
	c = &v[r->nchanges++];
	memset(c, 0, sizeof(*c));
	c->kind = kind;
	c->size = size;
	snprintf(c->name, sizeof(c->name), "%s", name);
	snprintf(c->object, sizeof(c->object), "%s", o ? o->name : "");
	snprintf(c->why, sizeof(c->why), "%s", why ? why : "");
	if (o && kind != QP_CHANGE_COPIED)
		qp_srcline__find(o->src, name, c->where, sizeof(c->where));
	return 0;
}

bool sec_is_text(const struct qp_elf_sec *s)
{
	return (s->shdr.sh_flags & SHF_ALLOC) && (s->shdr.sh_flags & SHF_EXECINSTR);
}

bool sec_is_rodata(const struct qp_elf_sec *s)
{
	return (s->shdr.sh_flags & SHF_ALLOC) &&
	       !(s->shdr.sh_flags & (SHF_WRITE | SHF_EXECINSTR | SHF_TLS));
}

bool sec_is_data(const struct qp_elf_sec *s)
{
	return (s->shdr.sh_flags & SHF_ALLOC) && (s->shdr.sh_flags & SHF_WRITE) &&
	       !(s->shdr.sh_flags & SHF_TLS);
}

bool rela_is_pcrel(uint32_t type)
{
	switch (type) {
	case R_X86_64_PC32: case R_X86_64_PLT32: case R_X86_64_PC64:
	case R_X86_64_GOTPCREL: case R_X86_64_GOTPCRELX: case R_X86_64_REX_GOTPCRELX:
		return true;
	default:
		return false;
	}
}

unsigned rela_width(uint32_t type)
{
	return type == R_X86_64_64 || type == R_X86_64_PC64 ? 8 : 4;
}

/* The one function or variable a -ffunction-sections/-fdata-sections
 * section holds, or NULL when it holds none or several. */
struct qp_elf_sym *sec_sole_symbol(struct qp_elf *e, const struct qp_elf_sec *sec)
{
	struct qp_elf_sym *s, *found = NULL;

	qp_elf_for_each_sym(e, s) {
		if (s->sec != sec || (s->type != STT_FUNC && s->type != STT_OBJECT &&
				      s->type != STT_TLS))
			continue;
		if (found && (found->value != s->value || found->size != s->size))
			return NULL;
		/* prefer the global of an alias pair */
		if (!found || found->bind == STB_LOCAL)
			found = s;
	}
	return found && found->value == 0 ? found : NULL;
}

/* The original object's twin of @s, a symbol of the patched object. */
struct qp_elf_sym *obj_twin(const struct diff_obj *o, const struct qp_elf_sym *s)
{
	return o->corr.twin[s->index];
}

/*
 * The name under which a symbol is compared: the original's name, also for
 * a patched symbol with a twin ("count.2" paired with "count.1" compares
 * as "count.1"); a patched symbol without one can equal nothing original.
 */
static const char *key_name(const struct diff_obj *o, const struct qp_elf *e,
			    const struct qp_elf_sym *s, char *buf, size_t size)
{
	if (e != o->pat || !s->sec || (s->type != STT_FUNC && s->type != STT_OBJECT &&
				       s->type != STT_TLS))
		return s->name;
	if (o->corr.twin[s->index])
		return o->corr.twin[s->index]->name;
	snprintf(buf, size, "new:%s", s->name);
	return buf;
}

/*
 * Bytes between a PC-relative field and the end of its instruction: the
 * addend of a section-relative reference is (target - that distance).
 * Decoding the function finds the instruction; 4 (the common case) when
 * the code cannot be decoded.
 */
static int64_t rela_pc_adjust(const struct qp_elf_sec *sec, const struct qp_elf_rela *r)
{
	uint64_t off = 0;

	if (!rela_is_pcrel(r->type) || !sec_is_text(sec) || !sec->data)
		return r->type == R_X86_64_PC64 ? 8 : (rela_is_pcrel(r->type) ? 4 : 0);
	while (off < sec->size) {
		struct qp_insn insn;

		if (qp_decode_insn(sec->data + off, sec->size - off, off, &insn))
			break;
		if (r->offset >= off && r->offset < off + insn.len)
			return (int64_t)(off + insn.len - r->offset);
		off += insn.len;
	}
	return 4;
}

uint64_t fnv1a(uint64_t h, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len--)
		h = (h ^ *p++) * 0x100000001b3ull;
	return h;
}

/*
 * What a relocation points at, as a string that is equal for the original
 * and the patched object exactly when the reference means the same thing:
 * named symbols by name, strings and constants by content, other sections
 * by name and content.
 */
static void rela_key(const struct diff_obj *o, struct qp_elf *e, const struct qp_elf_sec *sec,
		     const struct qp_elf_rela *r, char *buf, size_t size)
{
	const struct qp_elf_sym *s = r->sym;
	const struct qp_elf_sec *t;
	char nb[300];
	int64_t off;

	if (!s) {
		snprintf(buf, size, "none%+lld", (long long)r->addend);
		return;
	}
	t = s->sec;
	if (!t || (s->type != STT_SECTION && s->type != STT_NOTYPE) || s->bind != STB_LOCAL) {
		snprintf(buf, size, "sym:%s%+lld", key_name(o, e, s, nb, sizeof(nb)),
			 (long long)r->addend);
		return;
	}
	off = (int64_t)s->value + r->addend + rela_pc_adjust(sec, r);
	if ((t->shdr.sh_flags & SHF_MERGE) && t->data && off >= 0 && (uint64_t)off < t->size) {
		if (t->shdr.sh_flags & SHF_STRINGS) {
			snprintf(buf, size, "str:%.*s", (int)(t->size - (uint64_t)off),
				 (const char *)t->data + off);
		} else {
			uint64_t n = t->shdr.sh_entsize ? t->shdr.sh_entsize : 1;

			if (n > t->size - (uint64_t)off)
				n = t->size - (uint64_t)off;
			snprintf(buf, size, "cst:%016llx/%llu",
				 (unsigned long long)fnv1a(0xcbf29ce484222325ull, t->data + off, n),
				 (unsigned long long)n);
		}
		return;
	}
	s = sec_sole_symbol(e, t);
	if (s) {
		snprintf(buf, size, "sym:%s%+lld", key_name(o, e, s, nb, sizeof(nb)),
			 (long long)r->addend);
		return;
	}
	snprintf(buf, size, "sec:%s%+lld/%016llx", t->name, (long long)r->addend,
		 (unsigned long long)(t->data ? fnv1a(0xcbf29ce484222325ull, t->data, t->size) : t->size));
}

/* Same relocations at the same offsets with the same meanings; @a of the
 * original object, @b of the patched one. */
bool relas_equal(const struct diff_obj *o, const struct qp_elf_sec *a,
			const struct qp_elf_sec *b)
{
	char ka[512], kb[512];
	size_t i;

	if (a->nrelas != b->nrelas)
		return false;
	for (i = 0; i < a->nrelas; i++) {
		const struct qp_elf_rela *ra = &a->relas[i], *rb = &b->relas[i];

		if (ra->offset != rb->offset || ra->type != rb->type)
			return false;
		rela_key(o, o->orig, a, ra, ka, sizeof(ka));
		rela_key(o, o->pat, b, rb, kb, sizeof(kb));
		if (strcmp(ka, kb))
			return false;
	}
	return true;
}

/* Same size, bytes and relocation meanings. */
bool sec_equal(const struct diff_obj *o, const struct qp_elf_sec *a,
		      const struct qp_elf_sec *b)
{
	if (a->size != b->size || a->shdr.sh_type != b->shdr.sh_type)
		return false;
	if (a->data && b->data && memcmp(a->data, b->data, a->size))
		return false;
	return relas_equal(o, a, b);
}

/* --- inclusion ------------------------------------------------------------ */

static int diff_include(struct qp_diff *d, struct diff_obj *o, struct qp_elf_sec *sec,
			size_t *out_index)
{
	struct diff_incl *in;

	if (o->incl[sec->index] >= 0) {
		*out_index = (size_t)o->incl[sec->index];
		return 0;
	}
	if (d->nincl == d->cap_incl) {
		size_t cap = d->cap_incl ? 2 * d->cap_incl : 32;
		struct diff_incl *v = realloc(d->incl, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		d->incl = v;
		d->cap_incl = cap;
	}
	in = &d->incl[d->nincl];
	memset(in, 0, sizeof(*in));
	in->o = o;
	in->sec = sec;
	if (sec_is_text(sec))
		in->out = OUT_TEXT;
	else if (sec_is_rodata(sec))
		in->out = OUT_RODATA;
	else if (sec->shdr.sh_type == SHT_NOBITS)
		in->out = OUT_BSS;
	else
		in->out = OUT_DATA;
	in->refs = calloc(sec->nrelas ? sec->nrelas : 1, sizeof(*in->refs));
	if (!in->refs)
		return -ENOMEM;
	o->incl[sec->index] = (int)d->nincl;
	*out_index = d->nincl++;
	return 0;
}

static int diff_add_src(struct qp_diff *d, const char *name, uint64_t value, uint64_t size,
			uint8_t type, uint8_t bind, uint16_t shndx, size_t file, size_t *out)
{
	struct diff_src *s;
	size_t i;

	for (i = 0; i < d->nsrcs; i++) {
		s = &d->srcs[i];
		if (!strcmp(s->name, name) && s->value == value && s->shndx == shndx &&
		    s->file == file) {
			*out = i;
			return 0;
		}
	}
	if (d->nsrcs == d->cap_srcs) {
		size_t cap = d->cap_srcs ? 2 * d->cap_srcs : 32;
		struct diff_src *v = realloc(d->srcs, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		d->srcs = v;
		d->cap_srcs = cap;
	}
	s = &d->srcs[d->nsrcs];
	memset(s, 0, sizeof(*s));
	s->name = strdup(name);
	if (!s->name)
		return -ENOMEM;
	s->value = value;
	s->size = size;
	s->type = type;
	s->bind = bind;
	s->shndx = shndx;
	s->file = file;
	*out = d->nsrcs++;
	return 0;
}

/* The FILE block of the target that object @o was linked from. */
static int diff_scope(struct qp_diff *d, struct diff_obj *o, struct qp_error *err)
{
	if (!o->scope_done) {
		o->scope_ret = qp_target__scope(d->tgt, o->orig, o->name, &o->scope, err);
		o->scope_done = true;
	} else if (o->scope_ret) {
		qp_seterr(err, o->scope_ret, "%s: cannot tell which file of '%s' it is",
			  o->name, qp_target__path(d->tgt));
	}
	return o->scope_ret;
}

/* Find @s (a symbol of the original object of @o) in the target and make
 * it a src symbol.  -ENOENT when the target has no such symbol. */
static int diff_src_from_target(struct qp_diff *d, struct diff_obj *o,
				const struct qp_elf_sym *s, size_t *out, struct qp_error *err)
{
	const struct qp_elf_sym *t;
	size_t file = 0;
	int ret;

	if (s->bind == STB_LOCAL) {
		ret = diff_scope(d, o, err);
		if (ret)
			return ret;
		t = qp_target__find_local(d->tgt, o->scope, s->name);
		file = o->scope;
	} else {
		t = qp_target__find_global(d->tgt, s->name);
	}
	if (!t)
		return -ENOENT;
	/* the object's binding: a hidden global is local in the binary */
	return diff_add_src(d, s->name, t->value, t->size, t->type,
			    s->bind == STB_LOCAL ? STB_LOCAL : STB_GLOBAL,
			    QP_SRC_IN_TARGET, file, out);
}

/* An undefined symbol of the patched object: the target's definition, its
 * PLT entry, or (for the loader to find) a library's. */
int diff_refuse(struct qp_diff *d, struct diff_obj *o, const char *name,
		       uint64_t size, struct qp_error *err, const char *why)
{
	int ret = diff_note(d, QP_CHANGE_REFUSED, name, o, size, why);

	if (ret)
		return ret;
	if (!err || !err->code)
		qp_seterr(err, QP_EREFUSED, "%s: '%s': %s", o->name, name, why);
	return QP_EREFUSED;
}

/* An undefined symbol of the patched object: the target's definition, its
 * PLT entry, or (for the loader to find) a library's. */
static int diff_src_undef(struct qp_diff *d, struct diff_obj *o, const struct qp_elf_sym *s,
			  uint32_t rtype, size_t *out, struct qp_error *err)
{
	const struct qp_elf_sym *t = qp_target__find_global(d->tgt, s->name);
	char plt[300];
	uint64_t addr;

	if (t)
		return diff_add_src(d, s->name, t->value, t->size, t->type, STB_GLOBAL,
				    QP_SRC_IN_TARGET, 0, out);
	if ((rtype == R_X86_64_PLT32 || rtype == R_X86_64_PC32) &&
	    !qp_target__plt(d->tgt, s->name, &addr)) {
		snprintf(plt, sizeof(plt), "%s@plt", s->name);
		return diff_add_src(d, plt, addr, 16, STT_FUNC, STB_GLOBAL,
				    QP_SRC_IN_TARGET, 0, out);
	}
	/* Code built for an executable reads library data directly (PC32),
	 * trusting the linker to copy it into the program; a program that
	 * never used it has no copy, and the library is out of reach. */
	if (rtype == R_X86_64_PC32 || rtype == R_X86_64_32 || rtype == R_X86_64_32S)
		return diff_refuse(d, o, s->name, 0, err,
				   "data of a shared library that the original program does not use: the program has no copy of it to refer to");
	return diff_add_src(d, s->name, 0, 0, rtype == R_X86_64_PLT32 ? STT_FUNC : s->type,
			    s->bind == STB_WEAK ? STB_WEAK : STB_GLOBAL, QP_SRC_EXTERNAL, 0, out);
}

/*
 * A thread-local variable: every thread has its own copy, allocated when
 * the thread started, so only variables the target already has can be
 * used; they become STT_TLS src symbols (their offset in the TLS block).
 */
static int diff_resolve_tls(struct qp_diff *d, struct diff_obj *o, struct qp_elf_sym *s,
			    struct diff_ref *ref, struct qp_error *err)
{
	struct qp_elf_sym *os;
	int ret;

	if (s->type == STT_SECTION || s->type == STT_NOTYPE) {
		struct qp_elf_sec *t = s->sec;

		s = sec_sole_symbol(o->pat, t);
		if (!s)
			return diff_refuse(d, o, t->name, t->size, err,
					   "reference into a section holding several thread-local variables");
	}
	os = obj_twin(o, s);
	if (!os)
		return diff_refuse(d, o, s->name, s->size, err,
				   "new thread-local variables cannot be added to a running process");
	ret = diff_src_from_target(d, o, os, &ref->src, err);
	if (ret == -ENOENT)
		return diff_refuse(d, o, s->name, s->size, err,
				   "thread-local variable of the original object is missing from the target binary");
	return ret;
}

/* A global that some patched object defines and the original did not
 * (a new function or variable in another file of the change). */
static struct qp_elf_sym *diff_new_global(struct qp_diff *d, const char *name,
					  struct diff_obj **owner)
{
	size_t i;

	for (i = 0; i < d->nobjs; i++) {
		struct diff_obj *o = &d->objs[i];
		struct qp_elf_sym *s;

		qp_elf_for_each_sym(o->pat, s) {
			if (s->bind == STB_LOCAL || !s->sec || strcmp(s->name, name) ||
			    (s->type != STT_FUNC && s->type != STT_OBJECT) || obj_twin(o, s))
				continue;
			*owner = o;
			return s;
		}
	}
	return NULL;
}

/*
 * Resolve one relocation of an included section: internal (pull the target
 * section in) or a src symbol.
 */
static int diff_resolve(struct qp_diff *d, struct diff_obj *o, const struct qp_elf_sec *sec,
			const struct qp_elf_rela *r, struct diff_ref *ref, struct qp_error *err)
{
	struct qp_elf_sym *s = r->sym, *os;
	struct qp_elf_sec *t;
	int ret;

	if (!s)
		return qp_seterr(err, QP_EUNSUPP, "%s: section '%s': relocation at 0x%llx has no symbol",
				 o->name, sec->name, (unsigned long long)r->offset);
	if (!qp_rela_type_name(r->type) || r->type >= QP_R_REPLACE)
		return diff_refuse(d, o, s->name[0] ? s->name : sec->name, 0, err,
				   r->type == R_X86_64_GOTPC32_TLSDESC || r->type == R_X86_64_TLSDESC_CALL ?
				   "TLS descriptors (-mtls-dialect=gnu2) are not supported: build with the default TLS dialect" :
				   "relocation type not supported in a patch");
	if (!s->sec) {
		struct diff_obj *o2;
		struct qp_elf_sym *def;

		if (s->shndx != SHN_UNDEF)
			return qp_seterr(err, QP_EUNSUPP, "%s: '%s': unsupported symbol kind",
					 o->name, s->name);
		def = qp_target__find_global(d->tgt, s->name) ? NULL : diff_new_global(d, s->name, &o2);
		if (def) { /* defined by the change in another object */
			ref->internal = true;
			ref->off = def->value;
			return diff_include(d, o2, def->sec, &ref->incl);
		}
		return diff_src_undef(d, o, s, r->type, &ref->src, err);
	}
	t = s->sec;
	if (t->shdr.sh_flags & SHF_TLS)
		return diff_resolve_tls(d, o, s, ref, err);
	if (s->type == STT_SECTION || (s->type == STT_NOTYPE && s->bind == STB_LOCAL)) {
		/* a section-relative reference: read-only data is copied, code and
		 * variables are the one symbol the section holds */
		if (sec_is_rodata(t) || o->incl[t->index] >= 0) {
			ref->internal = true;
			ref->off = s->value;
			return diff_include(d, o, t, &ref->incl);
		}
		s = sec_sole_symbol(o->pat, t);
		if (!s)
			return diff_refuse(d, o, t->name, t->size, err,
					   "reference into a section holding several variables (build with -fdata-sections)");
	}
	if (o->incl[s->sec->index] >= 0 || sec_is_rodata(s->sec)) {
		ref->internal = true;
		ref->off = s->value;
		return diff_include(d, o, s->sec, &ref->incl);
	}
	if (o->corr.ambiguous[s->index])
		return diff_refuse(d, o, s->name, s->size, err,
				   "function-scope static that cannot be paired with one original static unambiguously");
	os = obj_twin(o, s);
	if (os) {
		ret = diff_src_from_target(d, o, os, &ref->src, err);
		if (ret != -ENOENT)
			return ret;
		if (sec_is_data(s->sec))
			return diff_refuse(d, o, s->name, s->size, err,
					   "variable of the original object is missing from the target binary");
	}
	/* new code or data, or code the target lacks (e.g. inlined everywhere in
	 * the original): it goes into the patch */
	ref->internal = true;
	ref->off = s->value;
	return diff_include(d, o, s->sec, &ref->incl);
}

/* Step 1: changed and new functions of one object pair. */
static int diff_select(struct qp_diff *d, struct diff_obj *o, struct qp_error *err)
{
	struct qp_elf_sym *s, *os;
	int ret, refused = 0;
	size_t idx;

	qp_elf_for_each_sym(o->pat, s) {
		if (s->type != STT_FUNC || !s->sec || !sec_is_text(s->sec) ||
		    o->incl[s->sec->index] >= 0)
			continue;
		os = obj_twin(o, s);
		if (os && os->sec && (sec_equal(o, os->sec, s->sec) || diff_line_only(d, o, os, s)))
			continue;
		ret = diff_include(d, o, s->sec, &idx);
		if (ret)
			return ret;
		if (!os)
			continue;
		ret = diff_src_from_target(d, o, os, &d->incl[idx].replaces_src, err);
		if (ret == -ENOENT)
			continue; /* not in the target (inlined): a new function */
		if (ret)
			return ret;
		d->incl[idx].replaces = s;
		ret = diff_check_site(d, o, s, d->incl[idx].replaces_src, err);
		if (ret == QP_EREFUSED)
			refused = ret;
		else if (ret)
			return ret;
	}
	/* Existing variables must keep their layout and initial value. */
	qp_elf_for_each_sym(o->pat, s) {
		if (!s->sec || !((s->type == STT_OBJECT && sec_is_data(s->sec)) ||
				 s->type == STT_TLS))
			continue;
		os = obj_twin(o, s);
		if (!os || !os->sec)
			continue;
		if (os->size != s->size)
			ret = diff_refuse(d, o, s->name, s->size, err,
					  "size of an existing variable changed");
		else if (!sec_equal(o, os->sec, s->sec))
			ret = diff_refuse(d, o, s->name, s->size, err,
					  "initial value of an existing variable changed");
		else
			ret = 0;
		if (ret == QP_EREFUSED)
			refused = ret;
		else if (ret)
			return ret;
	}
	return refused;
}

/* Step 2: resolve the relocations of everything included, which may
 * include more (the list grows while we walk it). */
static int diff_close(struct qp_diff *d, struct qp_error *err)
{
	size_t i, j;
	int ret, refused = 0;

	for (i = 0; i < d->nincl; i++) {
		for (j = 0; j < d->incl[i].sec->nrelas; j++) {
			struct diff_incl *in = &d->incl[i];
			struct diff_ref ref = { 0 };

			ret = diff_resolve(d, in->o, in->sec, &in->sec->relas[j], &ref, err);
			if (ret == QP_EREFUSED) {
				refused = ret;
				continue;
			}
			if (ret)
				return ret;
			d->incl[i].refs[j] = ref; /* d->incl may have moved */
		}
	}
	return refused;
}

void qp_diff__free(struct qp_diff *d)
{
	size_t i;

	if (!d)
		return;
	for (i = 0; i < d->nobjs; i++) {
		qp_elf__free(d->objs[i].orig);
		qp_elf__free(d->objs[i].pat);
		qp_srcline__free(d->objs[i].src);
		qp_srcline__free(d->objs[i].osrc);
		qp_correlation__release(&d->objs[i].corr);
		free(d->objs[i].name);
		free(d->objs[i].incl);
	}
	for (i = 0; i < d->nincl; i++)
		free(d->incl[i].refs);
	for (i = 0; i < d->nsrcs; i++)
		free(d->srcs[i].name);
	free(d->objs);
	free(d->incl);
	free(d->srcs);
	qp_target__free(d->tgt);
	free(d->src_prefix);
	free(d->src_orig);
	free(d->src_patched);
	free(d);
}

void qp_diff__set_build_id(struct qp_diff *d, const uint8_t *id, size_t size)
{
	d->build_id_size = size < sizeof(d->build_id) ? size : sizeof(d->build_id);
	memcpy(d->build_id, id, d->build_id_size);
}

int qp_diff__set_sources(struct qp_diff *d, const char *prefix, const char *orig_dir,
			 const char *patched_dir)
{
	d->src_prefix = strdup(prefix);
	d->src_orig = strdup(orig_dir);
	d->src_patched = strdup(patched_dir);
	if (!d->src_prefix || !d->src_orig || !d->src_patched)
		return -ENOMEM;
	return 0;
}

int qp_diff__new(const char *target_path, struct qp_diff **out, struct qp_error *err)
{
	struct qp_diff *d = calloc(1, sizeof(*d));
	int ret;

	*out = NULL;
	if (!d)
		return qp_seterr(err, -ENOMEM, "out of memory");
	ret = qp_target__open(target_path, &d->tgt, err);
	if (ret) {
		qp_diff__free(d);
		return ret;
	}
	*out = d;
	return 0;
}

int qp_diff__add_object(struct qp_diff *d, const char *orig_obj, const char *patched_obj,
			const char *name, struct qp_error *err)
{
	struct diff_obj *v, *o;
	size_t i;
	int ret;

	v = realloc(d->objs, (d->nobjs + 1) * sizeof(*v));
	if (!v)
		return qp_seterr(err, -ENOMEM, "out of memory");
	d->objs = v;
	o = &v[d->nobjs];
	memset(o, 0, sizeof(*o));
	o->name = strdup(name);
	if (!o->name)
		return qp_seterr(err, -ENOMEM, "out of memory");
	/* no original: a source file the change adds */
	ret = orig_obj ? qp_elf__open(orig_obj, 0, &o->orig, err) :
			 qp_elf__new_empty(name, &o->orig, err);
	if (!ret)
		ret = qp_elf__open(patched_obj, 0, &o->pat, err);
	if (!ret && ((orig_obj && o->orig->ehdr.e_type != ET_REL) || o->pat->ehdr.e_type != ET_REL))
		ret = qp_seterr(err, -EINVAL, "%s: not a relocatable object", name);
	if (!ret && !(o->incl = malloc(o->pat->nsecs * sizeof(*o->incl))))
		ret = qp_seterr(err, -ENOMEM, "out of memory");
	if (!ret && !(o->src = qp_srcline__new(patched_obj)))
		ret = qp_seterr(err, -ENOMEM, "out of memory");
	if (!ret && orig_obj && !(o->osrc = qp_srcline__new(orig_obj)))
		ret = qp_seterr(err, -ENOMEM, "out of memory");
	if (!ret && qp_correlate(o->orig, o->pat, &o->corr))
		ret = qp_seterr(err, -ENOMEM, "out of memory");
	if (ret) {
		qp_correlation__release(&o->corr);
		qp_srcline__free(o->src);
		qp_srcline__free(o->osrc);
		free(o->incl);
		qp_elf__free(o->orig);
		qp_elf__free(o->pat);
		free(o->name);
		return ret;
	}
	for (i = 0; i < o->pat->nsecs; i++)
		o->incl[i] = -1;
	d->nobjs++;
	return 0;
}

static void diff_report_incl(struct qp_diff *d)
{
	size_t i;

	for (i = 0; i < d->nincl; i++) {
		struct diff_incl *in = &d->incl[i];
		struct qp_elf_sym *s = sec_sole_symbol(in->o->pat, in->sec);
		const char *name = s ? s->name : in->sec->name;
		enum qp_change_kind k;

		if (in->replaces)
			k = QP_CHANGE_REPLACED;
		else if (in->out == OUT_TEXT)
			k = s && obj_twin(in->o, s) ? QP_CHANGE_COPIED : QP_CHANGE_NEW_FUNC;
		else if (in->out == OUT_RODATA)
			k = QP_CHANGE_COPIED;
		else
			k = QP_CHANGE_NEW_VAR;
		diff_note(d, k, name, in->o, in->sec->size, NULL);
	}
}

int qp_diff__emit(struct qp_diff *d, const char *id, struct qp_patch **out,
		  struct qp_report *report, struct qp_error *err)
{
	bool replaces = false;
	size_t i;
	int ret = 0, refused = 0;

	*out = NULL;
	d->rep = report;
	for (i = 0; i < d->nobjs; i++) {
		ret = diff_select(d, &d->objs[i], err);
		if (!ret || ret == QP_EREFUSED)
			ret = diff_layouts(d, &d->objs[i], err) ?: ret;
		if (ret == QP_EREFUSED)
			refused = ret;
		else if (ret)
			return ret;
	}
	ret = diff_close(d, err);
	if (ret && ret != QP_EREFUSED)
		return ret;
	if (ret || refused)
		return QP_EREFUSED;
	for (i = 0; i < d->nincl; i++)
		replaces |= d->incl[i].replaces != NULL;
	if (!replaces)
		return qp_seterr(err, -ENODATA,
				 "no function of the target changed: nothing to patch");
	diff_report_incl(d);
	ret = diff_emit_patch(d, id, out, err);
	if (!ret)
		snprintf(report->id, sizeof(report->id), "%s", qp_patch__info(*out)->id);
	return ret;
}
