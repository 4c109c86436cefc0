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

/* The instruction of code section @sec holding the field of @r. */
static int rela_insn(const struct qp_elf_sec *sec, const struct qp_elf_rela *r,
		     struct qp_insn *insn)
{
	uint64_t off = 0;

	if (!sec_is_text(sec) || !sec->data)
		return -ENOENT;
	while (off < sec->size) {
		if (qp_decode_insn(sec->data + off, sec->size - off, off, insn))
			break;
		if (r->offset >= off && r->offset < off + insn->len)
			return 0;
		off += insn->len;
	}
	return -ENOENT;
}

/*
 * Bytes between a PC-relative field and the end of its instruction: the
 * addend of a section-relative reference is (target - that distance).
 * Decoding the function finds the instruction; 4 (the common case) when
 * the code cannot be decoded.
 */
int64_t rela_pc_adjust(const struct qp_elf_sec *sec, const struct qp_elf_rela *r)
{
	struct qp_insn insn;

	if (!rela_is_pcrel(r->type) || rela_insn(sec, r, &insn))
		return r->type == R_X86_64_PC64 ? 8 : (rela_is_pcrel(r->type) ? 4 : 0);
	return (int64_t)(insn.addr + insn.len - r->offset);
}

/* Is @r the target of a direct call or jump (not an address taken)? */
static bool rela_is_branch(const struct qp_elf_sec *sec, const struct qp_elf_rela *r)
{
	struct qp_insn insn;

	if (r->type == R_X86_64_PLT32)
		return true;
	return r->type == R_X86_64_PC32 && !rela_insn(sec, r, &insn) && insn.has_rel &&
	       !insn.rip_relative;
}

uint64_t fnv1a(uint64_t h, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len--)
		h = (h ^ *p++) * 0x100000001b3ull;
	return h;
}

/* The bytes [@from, @from + @len) of section @t and its relocations there
 * (by offset from @from, type, addend and target name). */
static uint64_t range_hash(const struct qp_elf_sec *t, uint64_t from, uint64_t len)
{
	uint64_t h = 0xcbf29ce484222325ull;
	size_t i;

	if (t->data && from <= t->size && len <= t->size - from)
		h = fnv1a(h, t->data + from, len);
	for (i = 0; i < t->nrelas; i++) {
		const struct qp_elf_rela *r = &t->relas[i];
		const char *n = !r->sym ? "" : r->sym->type == STT_SECTION && r->sym->sec ?
				r->sym->sec->name : r->sym->name;
		uint64_t at = r->offset - from;

		if (r->offset < from || at >= len)
			continue;
		h = fnv1a(h, &at, sizeof(at));
		h = fnv1a(h, &r->type, sizeof(r->type));
		h = fnv1a(h, &r->addend, sizeof(r->addend));
		h = fnv1a(h, n, strlen(n));
	}
	return h;
}

/*
 * A read-only variable (a const table) is part of the meaning of the code
 * that reads it: the patch copies the new one for the code it includes,
 * so every function reading a changed one must be included too.  Its
 * bytes and its relocations (by target name) are hashed into the key.
 */
static uint64_t rodata_hash(const struct qp_elf_sym *s)
{
	return range_hash(s->sec, s->value, s->size);
}

/* "sym:NAME+ADDEND", with a content hash for read-only variables. */
static void sym_key(const struct diff_obj *o, const struct qp_elf *e, const struct qp_elf_sym *s,
		    int64_t addend, char *buf, size_t size)
{
	char nb[300];
	int n = snprintf(buf, size, "sym:%s%+lld", key_name(o, e, s, nb, sizeof(nb)),
			 (long long)addend);

	if (s->type == STT_OBJECT && s->sec && sec_is_rodata(s->sec) && n > 0 && (size_t)n < size)
		snprintf(buf + n, size - (size_t)n, "/%016llx", (unsigned long long)rodata_hash(s));
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Append @off to @st's list (capacity *@cap). */
static int starts_push(struct diff_starts *st, size_t *cap, uint64_t off)
{
	uint64_t *v;

	if (st->n == *cap) {
		*cap = *cap ? 2 * *cap : 16;
		v = realloc(st->off, *cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		st->off = v;
	}
	st->off[st->n++] = off;
	return 0;
}

/* Where the objects of read-only section @t of @e (an object of @o) start:
 * every offset a relocation of an allocated section points at, and every
 * symbol's value.  Found once per section; NULL when out of memory. */
static const struct diff_starts *ro_starts(const struct diff_obj *o, const struct qp_elf *e,
					   const struct qp_elf_sec *t)
{
	struct diff_starts *st = &o->starts[e == o->pat][t->index];
	const struct qp_elf_sec *q;
	const struct qp_elf_sym *s;
	size_t i, n, cap = 0;

	if (st->done)
		return st->failed ? NULL : st;
	st->done = true;
	qp_elf_for_each_sec(e, q) {
		for (i = 0; q->shdr.sh_flags & SHF_ALLOC && i < q->nrelas; i++) {
			const struct qp_elf_rela *r = &q->relas[i];
			int64_t at;

			if (!r->sym || r->sym->sec != t)
				continue;
			at = (int64_t)r->sym->value + r->addend + rela_pc_adjust(q, r);
			if (at >= 0 && (uint64_t)at < t->size && starts_push(st, &cap, (uint64_t)at))
				goto oom;
		}
	}
	qp_elf_for_each_sym(e, s) {
		if (s->sec != t || s->type == STT_SECTION)
			continue;
		st->vars |= s->type == STT_OBJECT;
		if (starts_push(st, &cap, s->value))
			goto oom;
	}
	if (st->n)
		qsort(st->off, st->n, sizeof(*st->off), cmp_u64);
	for (i = 0, n = st->n, st->n = 0; i < n; i++)
		if (!st->n || st->off[st->n - 1] != st->off[i])
			st->off[st->n++] = st->off[i];
	return st;
oom:
	st->failed = true;
	return NULL;
}

/* The variable of @e that covers offset @off of section @t, or NULL. */
static const struct qp_elf_sym *sym_covering(const struct qp_elf *e, const struct qp_elf_sec *t,
					     uint64_t off)
{
	const struct qp_elf_sym *s;

	qp_elf_for_each_sym(e, s)
		if (s->sec == t && s->type == STT_OBJECT && off >= s->value &&
		    off - s->value < s->size)
			return s;
	return NULL;
}

/*
 * What a reference to offset @off of read-only section @t (not mergeable)
 * points at, by content: not by the offset, and not by the whole section.
 * gcc -O0 puts every string literal and floating-point constant of a file
 * into one .rodata, without symbols: a changed string moves all the others
 * and every reference to them has another addend.  A variable covering
 * @off is compared by name, offset in it and content; anything else is an
 * object without a name, reaching from @off to where the next object
 * starts (ro_starts), its trailing zero bytes not counted (a string's NUL,
 * the padding before a more aligned next object, which moves with the
 * strings before it).  A string that a pointer into its middle ("abc" + 1)
 * cuts short goes on to its NUL.  -ENOMEM when the starts are unknown.
 */
static int ro_object_key(const struct diff_obj *o, const struct qp_elf *e,
			 const struct qp_elf_sec *t, uint64_t off, char *buf, size_t size)
{
	const struct diff_starts *st = ro_starts(o, e, t);
	const struct qp_elf_sym *v;
	const uint8_t *nul;
	uint64_t end, min = 0;
	size_t i, lo, hi;

	if (!st)
		return -ENOMEM;
	v = st->vars ? sym_covering(e, t, off) : NULL;
	if (v) {
		char nb[300];

		snprintf(buf, size, "in:%s+%llu/%016llx", key_name(o, e, v, nb, sizeof(nb)),
			 (unsigned long long)(off - v->value), (unsigned long long)rodata_hash(v));
		return 0;
	}
	for (lo = 0, hi = st->n; lo < hi;) { /* the first start after @off */
		size_t mid = lo + (hi - lo) / 2;

		if (st->off[mid] <= off)
			lo = mid + 1;
		else
			hi = mid;
	}
	end = lo < st->n ? st->off[lo] : t->size;
	if (!memchr(t->data + off, 0, end - off)) {
		nul = memchr(t->data + end, 0, t->size - end);
		end = nul ? (uint64_t)(nul - t->data) + 1 : t->size;
	}
	/* relocated fields hold zeros: they are not padding */
	for (i = 0; i < t->nrelas; i++) {
		const struct qp_elf_rela *r = &t->relas[i];

		if (r->offset >= off && r->offset < end && r->offset + rela_width(r->type) - off > min)
			min = r->offset + rela_width(r->type) - off;
	}
	while (end - off > min && !t->data[end - 1])
		end--;
	snprintf(buf, size, "obj:%016llx/%llu", (unsigned long long)range_hash(t, off, end - off),
		 (unsigned long long)(end - off));
	return 0;
}

/*
 * Bytes of the string at @off of mergeable string section @t, its
 * terminating NUL included: characters are sh_entsize bytes wide (4 for
 * L"...", in .rodata.str4.4), so the string ends at a character of that
 * many zero bytes, not at the first zero byte.
 */
static uint64_t str_len(const struct qp_elf_sec *t, uint64_t off)
{
	uint64_t n = t->shdr.sh_entsize ? t->shdr.sh_entsize : 1, end, i;

	for (end = off; end + n <= t->size; end += n) {
		for (i = 0; i < n && !t->data[end + i]; i++)
			;
		if (i == n)
			return end + n - off;
	}
	return t->size - off;
}

/*
 * What a relocation points at, as a string that is equal for the original
 * and the patched object exactly when the reference means the same thing:
 * named symbols by name (read-only variables also by content), strings
 * and constants by content, also where they share a section that is not
 * mergeable (ro_object_key), other sections by name and content.
 */
static void rela_key(const struct diff_obj *o, struct qp_elf *e, const struct qp_elf_sec *sec,
		     const struct qp_elf_rela *r, char *buf, size_t size)
{
	const struct qp_elf_sym *s = r->sym;
	const struct qp_elf_sec *t;
	int64_t off;

	if (!s) {
		snprintf(buf, size, "none%+lld", (long long)r->addend);
		return;
	}
	t = s->sec;
	if (!t || (s->type != STT_SECTION && s->type != STT_NOTYPE) || s->bind != STB_LOCAL) {
		sym_key(o, e, s, r->addend, buf, size);
		return;
	}
	off = (int64_t)s->value + r->addend + rela_pc_adjust(sec, r);
	if ((t->shdr.sh_flags & SHF_MERGE) && t->data && off >= 0 && (uint64_t)off < t->size) {
		if (t->shdr.sh_flags & SHF_STRINGS) {
			uint64_t n = str_len(t, (uint64_t)off);

			snprintf(buf, size, "str:%016llx/%llu",
				 (unsigned long long)fnv1a(0xcbf29ce484222325ull, t->data + off, n),
				 (unsigned long long)n);
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
	if (sec_is_rodata(t) && t->data && off >= 0 && (uint64_t)off < t->size &&
	    !ro_object_key(o, e, t, (uint64_t)off, buf, size))
		return;
	s = sec_sole_symbol(e, t);
	if (s) {
		sym_key(o, e, s, r->addend, buf, size);
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
			  uint32_t rtype, bool code_reads, size_t *out, bool *via_got,
			  struct qp_error *err)
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
	 * never used it has no copy, and the library is out of reach.  An
	 * instruction of the patch's code reaches it through a GOT slot the
	 * loader fills (emit.c, qp_decode_got_stub); data, or position-
	 * dependent code (32-bit absolute), has no such way. */
	if (rtype == R_X86_64_PC32 && code_reads) {
		*via_got = true;
		return diff_add_src(d, s->name, 0, 0, STT_OBJECT,
				    s->bind == STB_WEAK ? STB_WEAK : STB_GLOBAL, QP_SRC_EXTERNAL, 0, out);
	}
	if (rtype == R_X86_64_PC32 || rtype == R_X86_64_32 || rtype == R_X86_64_32S)
		return diff_refuse(d, o, s->name, 0, err,
				   rtype == R_X86_64_PC32 ?
				   "data of a shared library that the original program does not use, referred to from data: the program has no copy of it to refer to" :
				   "data of a shared library that the original program does not use, in position-dependent code: the program has no copy of it to refer to");
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
 * The address of a function the target has (a function pointer taken, not
 * a call): the old function's, even when the patch replaces it.  Pointers
 * the running process already holds (tables, callbacks registered at
 * start-up) are old addresses, and new code comparing with them must see
 * the same value; calling through it reaches the new code by the jump.
 * -ENOENT when @s is not such a function.
 */
static int diff_old_address(struct qp_diff *d, struct diff_obj *o, struct qp_elf_sym *s,
			    struct diff_ref *ref, struct qp_error *err)
{
	struct qp_elf_sym *os;

	if (s->type != STT_FUNC || !s->sec || !sec_is_text(s->sec) || o->corr.ambiguous[s->index])
		return -ENOENT;
	os = obj_twin(o, s);
	if (!os)
		return -ENOENT;
	ref->internal = false;
	return diff_src_from_target(d, o, os, &ref->src, err);
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
		return diff_src_undef(d, o, s, r->type, sec_is_text(sec) && !rela_is_branch(sec, r),
				      &ref->src, &ref->via_got, err);
	}
	t = s->sec;
	if (t->shdr.sh_flags & SHF_TLS)
		return diff_resolve_tls(d, o, s, ref, err);
	if (s->type == STT_SECTION || (s->type == STT_NOTYPE && s->bind == STB_LOCAL)) {
		/* a section-relative reference: read-only data is copied, code and
		 * variables are the one symbol the section holds */
		struct qp_elf_sym *fn = sec_is_text(t) ? sec_sole_symbol(o->pat, t) : NULL;

		/* (the function at the start of its section: the addend holds) */
		if (fn && fn->type == STT_FUNC && !fn->value && !s->value && !rela_is_branch(sec, r) &&
		    r->addend + rela_pc_adjust(sec, r) == 0) {
			ret = diff_old_address(d, o, fn, ref, err);
			if (ret != -ENOENT)
				return ret;
		}
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
	if (!rela_is_branch(sec, r) && !qp_correlate_is_cold(s)) {
		ret = diff_old_address(d, o, s, ref, err);
		if (ret != -ENOENT)
			return ret;
	}
	/* a cold part goes with its function: the new code jumps into its own */
	if (o->incl[s->sec->index] >= 0 || sec_is_rodata(s->sec) || qp_correlate_is_cold(s)) {
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

/* The keep_value entry for variable @name, or -1. */
static int diff_keep_index(const struct qp_diff *d, const char *name)
{
	char base[256];
	size_t i;

	qp_correlate_base_name(name, base, sizeof(base));
	for (i = 0; i < d->nkeep; i++)
		if (!strcmp(d->keep[i], name) || !strcmp(d->keep[i], base))
			return (int)i;
	return -1;
}

/*
 * An existing variable @s (twin @os) must keep its size and initial value:
 * the process has the old one and the patch does not touch it.  Only a
 * changed initial value can be accepted (qp_diff__keep_value): the patch
 * then means "go on with the value the process has", exactly what a
 * restart-free fix of, say, a default setting wants.  A new size would
 * make new code read or write past the old variable; a thread-local one
 * is also copied into every thread the process starts later, from the old
 * initial image, so "only a restart sees it" would not hold.
 */
static int diff_check_var(struct qp_diff *d, struct diff_obj *o, const struct qp_elf_sym *os,
			  const struct qp_elf_sym *s, struct qp_error *err)
{
	int k = diff_keep_index(d, s->name);

	if (k >= 0)
		d->keep_used[k] = true;
	if (os->size != s->size)
		return diff_refuse(d, o, s->name, s->size, err, k < 0 ?
				   "size of an existing variable changed" :
				   "size of an existing variable changed (cannot be kept: new code would use memory past the old variable)");
	if (sec_equal(o, os->sec, s->sec))
		return 0;
	if (k < 0)
		return diff_refuse(d, o, s->name, s->size, err,
				   "initial value of an existing variable changed");
	if (s->type == STT_TLS)
		return diff_refuse(d, o, s->name, s->size, err,
				   "initial value of an existing thread-local variable changed (cannot be kept: threads started later would still get the old one)");
	return diff_note(d, QP_CHANGE_KEPT_VALUE, s->name, o, s->size,
			 "initial value changed; the running process keeps its value, the new one applies from the next start") ?
	       qp_seterr(err, -ENOMEM, "out of memory") : 0;
}

/*
 * Did a cold part that function @s jumps into ("compute.cold", the
 * unlikely branches gcc moves to .text.unlikely) change?  It is entered
 * and left by plain jumps at any offset, so it is never redirected on its
 * own: a change in it is a change of the function, and the new function
 * gets its own new cold part.
 */
static bool diff_cold_changed(struct diff_obj *o, const struct qp_elf_sym *s)
{
	size_t i;

	for (i = 0; i < s->sec->nrelas; i++) {
		const struct qp_elf_sym *c = s->sec->relas[i].sym, *oc;

		if (c && c->type == STT_SECTION && c->sec)
			c = sec_sole_symbol(o->pat, c->sec);
		if (!c || !c->sec || c == s || !qp_correlate_is_cold(c))
			continue;
		oc = obj_twin(o, c);
		if (!oc || !oc->sec || !sec_equal(o, oc->sec, c->sec))
			return true;
	}
	return false;
}

/*
 * The cold parts of old function @os ("compute.cold", found in the
 * original object and then in the target): a thread there goes back into
 * the old body by a plain jump, so the loader must treat them as part of
 * the function it replaces (QP_R_BUSY).  A cold part the target does not
 * have under that name is skipped (nothing to check there).
 */
static int diff_old_cold_parts(struct qp_diff *d, struct diff_obj *o, const struct qp_elf_sym *os,
			       struct diff_incl *in, struct qp_error *err)
{
	size_t n = strlen(os->name);
	struct qp_elf_sym *c;
	int ret;

	qp_elf_for_each_sym(o->orig, c) {
		if (in->ncold == sizeof(in->cold_src) / sizeof(in->cold_src[0]))
			break;
		if (!c->sec || !qp_correlate_is_cold(c) || strncmp(c->name, os->name, n) ||
		    strncmp(c->name + n, ".cold", 5))
			continue;
		ret = diff_src_from_target(d, o, c, &in->cold_src[in->ncold], err);
		if (ret == -ENOENT)
			continue;
		if (ret)
			return ret;
		if (d->srcs[in->cold_src[in->ncold]].size)
			in->ncold++;
	}
	return 0;
}

/* Is function @s of the patched object unchanged (its twin @os)? */
static bool diff_func_same(struct qp_diff *d, struct diff_obj *o, const struct qp_elf_sym *os,
			   const struct qp_elf_sym *s)
{
	if (!os || !os->sec || diff_cold_changed(o, s))
		return false;
	return sec_equal(o, os->sec, s->sec) || diff_line_only(d, o, os, s);
}

/* Step 1: changed and new functions of one object pair. */
static int diff_select(struct qp_diff *d, struct diff_obj *o, struct qp_error *err)
{
	struct qp_elf_sym *s, *os;
	int ret, refused = 0;
	size_t idx;

	qp_elf_for_each_sym(o->pat, s) {
		if (s->type != STT_FUNC || !s->sec || !sec_is_text(s->sec) ||
		    o->incl[s->sec->index] >= 0 || qp_correlate_is_cold(s))
			continue;
		os = obj_twin(o, s);
		if (diff_func_same(d, o, os, s))
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
		ret = diff_old_cold_parts(d, o, os, &d->incl[idx], err);
		if (!ret)
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
		ret = diff_check_var(d, o, os, s, err);
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

static void diff_obj_release(struct diff_obj *o);

void qp_diff__free(struct qp_diff *d)
{
	size_t i;

	if (!d)
		return;
	for (i = 0; i < d->nobjs; i++)
		diff_obj_release(&d->objs[i]);
	for (i = 0; i < d->nkeep; i++)
		free(d->keep[i]);
	free(d->keep);
	free(d->keep_used);
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

int qp_diff__keep_value(struct qp_diff *d, const char *name, struct qp_error *err)
{
	char **v;
	bool *u;

	if (!name || !*name)
		return qp_seterr(err, -EINVAL, "empty variable name to keep");
	v = realloc(d->keep, (d->nkeep + 1) * sizeof(*v));
	if (v)
		d->keep = v;
	u = v ? realloc(d->keep_used, (d->nkeep + 1) * sizeof(*u)) : NULL;
	if (u)
		d->keep_used = u;
	if (!v || !u || !(v[d->nkeep] = strdup(name)))
		return qp_seterr(err, -ENOMEM, "out of memory");
	u[d->nkeep++] = false;
	return 0;
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

/*
 * Two clones paired by name are the same function only if they take their
 * arguments the same way.  gcc reuses "mix.constprop.0" for a clone with
 * another argument folded in (fixture `constconv`: mix(x, 5, 9) became
 * mix(3, x, 9); both clones take one int in %edi, the callers' bytes do
 * not change, the clone's meaning of that int does).  Replacing the old
 * clone's body would hand the new meaning to every old caller, including
 * any the patched object no longer has.  Such a clone is made new: its
 * callers then compare as changed and are replaced by ones that call it,
 * and the old clone stays for code that still runs the old callers.  The
 * convention comes from the DWARF of both clones; without it, a clone
 * whose bytes changed is made new all the same.
 */
static bool diff_clone_veto(void *arg, const struct qp_elf_sym *os, const struct qp_elf_sym *s)
{
	struct diff_obj *o = arg;
	char a[512], b[512], why[256];

	if (!qp_srcline__params(o->osrc, os->name, a, sizeof(a)) &&
	    !qp_srcline__params(o->src, s->name, b, sizeof(b))) {
		if (!strcmp(a, b))
			return false;
		snprintf(why, sizeof(why),
			 "the clone's calling convention changed (parameters %s -> %s): a new function, its callers replaced",
			 a, b);
	} else {
		if (os->sec && s->sec && os->sec->size == s->sec->size &&
		    (!os->sec->data || !memcmp(os->sec->data, s->sec->data, s->sec->size)))
			return false;
		snprintf(why, sizeof(why),
			 "clone changed and no debug info tells its calling convention: a new function, its callers replaced");
	}
	free(o->why_new[s->index]);
	o->why_new[s->index] = strdup(why);
	return true;
}

static void diff_obj_release(struct diff_obj *o)
{
	size_t i;

	for (i = 0; o->why_new && o->pat && i < o->pat->nsyms; i++)
		free(o->why_new[i]);
	for (i = 0; o->starts[0] && o->orig && i < o->orig->nsecs; i++)
		free(o->starts[0][i].off);
	for (i = 0; o->starts[1] && o->pat && i < o->pat->nsecs; i++)
		free(o->starts[1][i].off);
	free(o->starts[0]);
	free(o->starts[1]);
	free(o->why_new);
	qp_correlation__release(&o->corr);
	qp_srcline__free(o->src);
	qp_srcline__free(o->osrc);
	free(o->incl);
	qp_elf__free(o->orig);
	qp_elf__free(o->pat);
	free(o->name);
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
	if (!ret && !(o->why_new = calloc(o->pat->nsyms ? o->pat->nsyms : 1, sizeof(*o->why_new))))
		ret = qp_seterr(err, -ENOMEM, "out of memory");
	if (!ret && (!(o->starts[0] = calloc(o->orig->nsecs + 1, sizeof(*o->starts[0]))) ||
		     !(o->starts[1] = calloc(o->pat->nsecs + 1, sizeof(*o->starts[1])))))
		ret = qp_seterr(err, -ENOMEM, "out of memory");
	if (!ret) {
		struct qp_correlate_veto veto = { diff_clone_veto, o };

		if (qp_correlate(o->orig, o->pat, &veto, &o->corr))
			ret = qp_seterr(err, -ENOMEM, "out of memory");
	}
	if (ret) {
		diff_obj_release(o);
		return ret;
	}
	for (i = 0; i < o->pat->nsecs; i++)
		o->incl[i] = -1;
	d->nobjs++;
	return 0;
}

/* What a replaced function inlines, for its report line. */
struct diff_inl {
	struct qp_diff *d;
	const struct diff_obj *o;
	char changed[160];     /* inlined functions the patch replaces or adds */
	char other[160];       /* inlined functions with no code of their own */
};

/* Appends "'@name'" to the list @buf (of @size), once; "..." when full. */
static void diff_inl_add(char *buf, size_t size, const char *name)
{
	char item[80];
	size_t len = strlen(buf);

	snprintf(item, sizeof(item), "'%s'", name);
	if (strstr(buf, item) || (len >= 3 && !strcmp(buf + len - 3, "...")))
		return;
	if (len + strlen(item) + 2 + 5 > size) {
		snprintf(buf + len, size - len, "%s...", len ? ", " : "");
		return;
	}
	snprintf(buf + len, size - len, "%s%s", len ? ", " : "", item);
}

static int diff_inl_one(const char *name, void *arg)
{
	struct diff_inl *x = arg;
	size_t i;

	for (i = 0; i < x->d->nincl; i++) {
		const struct diff_incl *in = &x->d->incl[i];
		const struct qp_elf_sym *s;

		if (in->o != x->o || in->out != OUT_TEXT)
			continue;
		s = sec_sole_symbol(in->o->pat, in->sec);
		if (s && !strcmp(s->name, name)) {
			diff_inl_add(x->changed, sizeof(x->changed), name);
			return 0;
		}
	}
	if (!qp_elf__find_sym(x->o->pat, name))
		diff_inl_add(x->other, sizeof(x->other), name);
	return 0;
}

/*
 * Why a replaced function is in the patch when its own source did not
 * change: it inlines a function that did.  A caller that never returns
 * (main's loop, a thread's) is then always busy, and the refusal names
 * it; the report says what it inlines.  Functions the patch replaces or
 * adds are named as changed; when there are none, the inlined functions
 * with no code of their own (whose change shows only in their callers).
 */
static void diff_inlines_why(struct qp_diff *d, const struct diff_obj *o, const char *func,
			     char *out, size_t size)
{
	struct diff_inl x = { .d = d, .o = o };

	out[0] = '\0';
	if (qp_srcline__for_each_inlined(o->src, func, diff_inl_one, &x))
		return;
	if (x.changed[0])
		snprintf(out, size, "inlines changed %s", x.changed);
	else if (x.other[0])
		snprintf(out, size, "inlines %s", x.other);
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
		if (k == QP_CHANGE_REPLACED && s && !in->o->why_new[s->index]) {
			char why[256];

			diff_inlines_why(d, in->o, name, why, sizeof(why));
			diff_note(d, k, name, in->o, in->sec->size, why[0] ? why : NULL);
			continue;
		}
		diff_note(d, k, name, in->o, in->sec->size, s ? in->o->why_new[s->index] : NULL);
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
	for (i = 0; i < d->nkeep; i++)
		if (!d->keep_used[i])
			return qp_seterr(err, -EINVAL,
					 "'%s' is to keep its value, but no existing variable of that name changed",
					 d->keep[i]);
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
