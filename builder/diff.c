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
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "builder.h"
#include "qpatch/decode.h"
#include "correlate.h"
#include "linemap.h"
#include "qpatch/elf.h"
#include "srcline.h"
#include "target.h"

enum diff_out { OUT_TEXT, OUT_RODATA, OUT_DATA, OUT_BSS, OUT_NR };

static const char *const diff_out_names[OUT_NR] = {
	QP_SEC_TEXT, QP_SEC_RODATA, QP_SEC_DATA, QP_SEC_BSS,
};

/* One object pair. */
struct diff_obj {
	struct qp_elf *orig;     /* object of the original build */
	struct qp_elf *pat;      /* object of the patched build */
	char *name;              /* for messages: path relative to the build tree */
	struct qp_srcline *src;  /* source lines of the patched object */
	struct qp_srcline *osrc; /* source lines of the original object */
	struct qp_correlation corr; /* patched symbols' twins in the original */
	int *incl;               /* per patched section: index in diff.incl, or -1 */
	size_t scope;            /* FILE symbol index in the target, 0 = unresolved */
	int scope_ret;           /* result of resolving the scope (cached) */
	bool scope_done;         /* scope resolved (successfully or not) */
};

/* Where one relocation of an included section points. */
struct diff_ref {
	bool internal;           /* target is inside the patch image */
	size_t incl;             /* internal: included section */
	uint64_t off;            /* internal: offset inside it */
	size_t src;              /* external: index in diff.srcs */
};

/* A section of a patched object that goes into the patch. */
struct diff_incl {
	struct diff_obj *o;      /* object it comes from */
	struct qp_elf_sec *sec;  /* the section in o->pat */
	enum diff_out out;       /* output section */
	uint64_t off;            /* offset inside the output section */
	struct diff_ref *refs;   /* one per relocation of sec */
	struct qp_elf_sym *replaces; /* the patched function that replaces an old one, or NULL */
	size_t replaces_src;     /* src index of the old function in the target */
};

/* A src symbol to emit. */
struct diff_src {
	char *name;              /* symbol name (e.g. "balance", "printf@plt") */
	uint64_t value;          /* link-time address in the target (IN_TARGET) */
	uint64_t size;           /* st_size */
	uint8_t type, bind;      /* STT_*, STB_* */
	uint16_t shndx;          /* QP_SRC_IN_TARGET or QP_SRC_EXTERNAL */
	size_t file;             /* target FILE symbol index for locals, else 0 */
	size_t index;            /* final index in the src table */
};

struct qp_diff {
	struct qp_target *tgt;   /* the target binary */
	struct diff_obj *objs;   /* object pairs */
	size_t nobjs;            /* count of objs */
	struct diff_incl *incl;  /* included sections, in inclusion order */
	size_t nincl, cap_incl;  /* count and capacity of incl */
	struct diff_src *srcs;   /* src symbols */
	size_t nsrcs, cap_srcs;  /* count and capacity of srcs */
	struct qp_report *rep;   /* report being filled */
	uint64_t out_size[OUT_NR]; /* bytes per output section */
	uint64_t out_align[OUT_NR]; /* alignment per output section */
	char *src_prefix;        /* see qp_diff__set_sources(), or NULL */
	char *src_orig;          /* directory for original sources */
	char *src_patched;       /* directory for patched sources */
	uint8_t build_id[QP_BUILD_ID_MAX]; /* overrides the target's, when set */
	size_t build_id_size;    /* bytes in build_id, 0 = the target's */
};

/* --- small helpers -------------------------------------------------------- */

static int diff_note(struct qp_diff *d, enum qp_change_kind kind, const char *name,
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

static bool sec_is_text(const struct qp_elf_sec *s)
{
	return (s->shdr.sh_flags & SHF_ALLOC) && (s->shdr.sh_flags & SHF_EXECINSTR);
}

static bool sec_is_rodata(const struct qp_elf_sec *s)
{
	return (s->shdr.sh_flags & SHF_ALLOC) &&
	       !(s->shdr.sh_flags & (SHF_WRITE | SHF_EXECINSTR | SHF_TLS));
}

static bool sec_is_data(const struct qp_elf_sec *s)
{
	return (s->shdr.sh_flags & SHF_ALLOC) && (s->shdr.sh_flags & SHF_WRITE) &&
	       !(s->shdr.sh_flags & SHF_TLS);
}

static bool rela_is_pcrel(uint32_t type)
{
	switch (type) {
	case R_X86_64_PC32: case R_X86_64_PLT32: case R_X86_64_PC64:
	case R_X86_64_GOTPCREL: case R_X86_64_GOTPCRELX: case R_X86_64_REX_GOTPCRELX:
		return true;
	default:
		return false;
	}
}

static unsigned rela_width(uint32_t type)
{
	return type == R_X86_64_64 || type == R_X86_64_PC64 ? 8 : 4;
}

/* The one function or variable a -ffunction-sections/-fdata-sections
 * section holds, or NULL when it holds none or several. */
static struct qp_elf_sym *sec_sole_symbol(struct qp_elf *e, const struct qp_elf_sec *sec)
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
static struct qp_elf_sym *obj_twin(const struct diff_obj *o, const struct qp_elf_sym *s)
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

static uint64_t fnv1a(uint64_t h, const void *buf, size_t len)
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
static bool relas_equal(const struct diff_obj *o, const struct qp_elf_sec *a,
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
static bool sec_equal(const struct diff_obj *o, const struct qp_elf_sec *a,
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
static int diff_refuse(struct qp_diff *d, struct diff_obj *o, const char *name,
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

/*
 * A source path from debug info, where it is on this side of the build:
 * under the original tree's path, or relative (a build that maps its own
 * directory to ".", as Debian's flags do), both taken from the side's
 * tree.
 */
static void diff_source_path(const struct qp_diff *d, const char *path, bool patched,
			     char *out, size_t size)
{
	size_t n = d->src_prefix ? strlen(d->src_prefix) : 0;
	const char *dir = patched ? d->src_patched : d->src_orig;

	if (n && !strncmp(path, d->src_prefix, n) && path[n] == '/')
		snprintf(out, size, "%s%s", dir, path + n);
	else if (n && path[0] != '/')
		snprintf(out, size, "%s/%s", dir, path[0] == '.' && path[1] == '/' ? path + 2 : path);
	else
		snprintf(out, size, "%s", path);
}

/*
 * Does one differing instruction only carry a moved __LINE__?  Its
 * immediate must be the source line the debug info gives for that very
 * instruction, on both sides, and the source diff must map the original
 * line to the patched one as an unchanged line.  Anything else (another
 * constant, a changed line) is a real change.
 */
static bool diff_line_moved(struct qp_diff *d, struct diff_obj *o, const struct qp_elf_sym *os,
			    const struct qp_elf_sym *s, const struct qp_insn_diff *x,
			    char *note, size_t note_size)
{
	char fa[1024], fb[1024], pa[2048], pb[2048];
	struct qp_linemap map;
	int la, lb;
	long mapped;

	if (qp_srcline__at(o->osrc, os->name, x->a_addr, fa, sizeof(fa), &la) ||
	    qp_srcline__at(o->src, s->name, x->b_addr, fb, sizeof(fb), &lb) ||
	    x->a_imm != la || x->b_imm != lb)
		return false;
	diff_source_path(d, fa, false, pa, sizeof(pa));
	diff_source_path(d, fb, true, pb, sizeof(pb));
	if (qp_linemap__build(pa, pb, &map, NULL))
		return false;
	mapped = qp_linemap__map(&map, la);
	qp_linemap__release(&map);
	if (mapped != lb)
		return false;
	snprintf(note + strlen(note), note_size - strlen(note), "%s%d->%d",
		 note[0] ? ", " : "only __LINE__ values moved: ", la, lb);
	return true;
}

/* A function whose only differences are __LINE__ values of unchanged
 * source lines that moved: nothing to patch. */
static bool diff_line_only(struct qp_diff *d, struct diff_obj *o, const struct qp_elf_sym *os,
			   const struct qp_elf_sym *s)
{
	struct qp_insn_diff x[64];
	struct qp_compare_result res;
	char why[256], note[256] = "";
	size_t i;

	if (!os->sec->data || !s->sec->data || os->sec->size != s->sec->size ||
	    !relas_equal(o, os->sec, s->sec) ||
	    qp_decode_compare(os->sec->data, os->sec->size, 0, s->sec->data, s->sec->size, 0,
			      x, 64, &res, why, sizeof(why)) ||
	    !qp_decode_imm_only(&res) || res.ndiffs > 64)
		return false;
	for (i = 0; i < res.ndiffs; i++)
		if ((x[i].what & QP_DIFF_IMM) && !diff_line_moved(d, o, os, s, &x[i], note, sizeof(note)))
			return false;
	diff_note(d, QP_CHANGE_LINE_ONLY, s->name, o, s->size, note);
	return true;
}

/* The old function must be able to take the loader's jump. */
static int diff_check_site(struct qp_diff *d, struct diff_obj *o, const struct qp_elf_sym *s,
			   size_t src, struct qp_error *err)
{
	const struct qp_elf_sym *t = qp_target__sym_at(d->tgt, d->srcs[src].value, s->name);
	char why[256], msg[300];

	if (!t || !qp_target__check_site(d->tgt, t, why, sizeof(why)))
		return 0;
	snprintf(msg, sizeof(msg), "cannot redirect the old function: %s", why);
	return diff_refuse(d, o, s->name, t->size, err, msg);
}

struct diff_layout {
	char *name;       /* struct, union or typedef name */
	unsigned long size; /* byte size */
	char *members;    /* member signature */
	bool twice;       /* two different types of that name: not compared */
};

struct diff_layouts {
	struct diff_layout *v; /* the original object's types */
	size_t n;              /* count of v */
	struct qp_diff *d;     /* for refusals */
	struct diff_obj *o;    /* the object pair */
	struct qp_error *err;  /* first refusal */
	int refused;           /* QP_EREFUSED once one is refused */
};

static int layout_collect(const char *name, unsigned long size, const char *members,
			  const char *where, void *arg)
{
	struct diff_layouts *l = arg;
	struct diff_layout *v;
	size_t i;

	for (i = 0; i < l->n; i++) {
		if (strcmp(l->v[i].name, name))
			continue;
		if (l->v[i].size != size || strcmp(l->v[i].members, members))
			l->v[i].twice = true;
		return 0;
	}
	v = realloc(l->v, (l->n + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	l->v = v;
	v[l->n] = (struct diff_layout){ strdup(name), size, strdup(members), false };
	if (!v[l->n].name || !v[l->n].members)
		return -ENOMEM;
	l->n++;
	return 0;
}

static int layout_compare(const char *name, unsigned long size, const char *members,
			  const char *where, void *arg)
{
	struct diff_layouts *l = arg;
	char why[256];
	size_t i;
	int ret;

	for (i = 0; i < l->n; i++) {
		if (strcmp(l->v[i].name, name) || l->v[i].twice)
			continue;
		if (l->v[i].size == size && !strcmp(l->v[i].members, members))
			return 0;
		snprintf(why, sizeof(why),
			 "layout of '%s' changed (%lu -> %lu bytes%s): data the running process already has uses the old one",
			 name, l->v[i].size, size, l->v[i].size == size ? ", members moved" : "");
		ret = diff_refuse(l->d, l->o, name, size, l->err, why);
		if (ret != QP_EREFUSED)
			return ret;
		l->refused = ret;
		return 0;
	}
	return 0;
}

/*
 * A type whose layout changed cannot be patched in: existing functions and
 * the process's data use the old one (QEMU's CVE-2025-11234 fix adds a
 * field to a device state struct, for instance).  Compared from the debug
 * info of both objects, for types declared at file scope.
 */
static int diff_layouts(struct qp_diff *d, struct diff_obj *o, struct qp_error *err)
{
	struct diff_layouts l = { .d = d, .o = o, .err = err };
	size_t i;
	int ret;

	if (!o->osrc)
		return 0; /* a new file: its types are new */
	ret = qp_srcline__for_each_struct(o->osrc, layout_collect, &l);
	if (!ret)
		ret = qp_srcline__for_each_struct(o->src, layout_compare, &l);
	for (i = 0; i < l.n; i++) {
		free(l.v[i].name);
		free(l.v[i].members);
	}
	free(l.v);
	if (ret)
		return ret == -ENOMEM ? qp_seterr(err, ret, "out of memory") : ret;
	return l.refused;
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

/* --- emission ------------------------------------------------------------- */

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

/* Apply an internal reference now, or emit a relocation. */
static int diff_emit_rela(struct qp_diff *d, struct qp_patch *p, uint8_t *buf,
			  const struct diff_incl *in, const struct qp_elf_rela *r,
			  const struct diff_ref *ref, const uint64_t *base, struct qp_error *err)
{
	uint64_t P = base[in->out] + in->off + r->offset;
	struct qp_rela out = { .offset = P, .type = r->type, .addend = r->addend };
	unsigned w = rela_width(r->type);
	int ret;

	if (r->offset + w > in->sec->size)
		return qp_seterr(err, -EINVAL, "%s: section '%s': relocation at 0x%llx out of bounds",
				 in->o->name, in->sec->name, (unsigned long long)r->offset);
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
 * locals first as ELF wants; a replacement's QP_R_REPLACE goes with it. */
static int diff_emit_dst(struct qp_diff *d, struct qp_patch *p, const struct diff_incl *in,
			 const struct qp_elf_sym *s, int sec_index, struct qp_error *err)
{
	struct qp_sym sym = { .name = s->name, .size = s->size, .type = s->type,
			      .bind = s->bind == STB_LOCAL ? STB_LOCAL : STB_GLOBAL,
			      .value = in->off + s->value, .shndx = (uint16_t)sec_index };
	struct qp_rela rep = { .type = QP_R_REPLACE };
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
static int diff_emit_sections(struct qp_diff *d, struct qp_patch *p, int *out_index,
			      struct qp_error *err)
{
	uint8_t *bufs[OUT_NR] = { 0 };
	uint64_t base[OUT_NR];
	size_t i, j;
	int ret = 0, k;

	diff_out_bases(d, base);
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
					     &d->incl[i], &d->incl[i].sec->relas[j],
					     &d->incl[i].refs[j], base, err);
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
	int out_index[OUT_NR];
	struct qp_patch *p = NULL;
	struct qp_info info = { .version = QP_FORMAT_VERSION };
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
	diff_layout(d);
	diff_report_incl(d);
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
		ret = diff_emit_sections(d, p, out_index, err);
	if (!ret)
		ret = diff_emit_dsts(d, p, out_index, err);
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
	snprintf(report->id, sizeof(report->id), "%s", info.id);
	*out = p;
	return 0;
fail:
	qp_patch__free(p);
	return ret;
}
