// SPDX-License-Identifier: MIT
/*
 * The target binary: symbols by FILE scope, PLT entries, build-id.
 */
#include <bfd.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qpatch/callsites.h"
#include "qpatch/decode.h"
#include "srcline.h"
#include "target.h"

struct target_plt {
	char *name;        /* function name, without "@plt" or a version */
	uint64_t addr;     /* link-time address of its PLT entry */
};

struct qp_target {
	struct qp_elf *elf;        /* the binary, .symtab */
	struct target_plt *plt;    /* PLT entries */
	size_t nplt;               /* count of plt */
};

/* libbfd's synthetic symbols name each PLT entry "func@plt". */
static int target_read_plt(struct qp_target *t, const char *path, struct qp_error *err)
{
	asymbol **dyn = NULL, *synth = NULL;
	long ndyn, nsynth, i, size;
	bfd *abfd;
	int ret = 0;

	bfd_init();
	abfd = bfd_openr(path, NULL);
	if (!abfd)
		return qp_seterr(err, -EINVAL, "'%s': libbfd: %s", path, bfd_errmsg(bfd_get_error()));
	if (!bfd_check_format(abfd, bfd_object)) {
		ret = qp_seterr(err, -EINVAL, "'%s': libbfd: %s", path, bfd_errmsg(bfd_get_error()));
		goto out;
	}
	size = bfd_get_dynamic_symtab_upper_bound(abfd);
	if (size <= 0)
		goto out; /* static binary: no PLT to use */
	dyn = malloc((size_t)size);
	if (!dyn) {
		ret = qp_seterr(err, -ENOMEM, "out of memory");
		goto out;
	}
	ndyn = bfd_canonicalize_dynamic_symtab(abfd, dyn);
	nsynth = ndyn > 0 ? bfd_get_synthetic_symtab(abfd, 0, NULL, ndyn, dyn, &synth) : 0;
	if (nsynth <= 0)
		goto out;
	t->plt = calloc((size_t)nsynth, sizeof(*t->plt));
	if (!t->plt) {
		ret = qp_seterr(err, -ENOMEM, "out of memory");
		goto out;
	}
	for (i = 0; i < nsynth; i++) {
		const char *name = bfd_asymbol_name(&synth[i]);
		const char *at = strstr(name, "@plt");

		if (!at)
			continue;
		if (strchr(name, '@') < at)
			at = strchr(name, '@');
		t->plt[t->nplt].name = strndup(name, (size_t)(at - name));
		if (!t->plt[t->nplt].name) {
			ret = qp_seterr(err, -ENOMEM, "out of memory");
			goto out;
		}
		t->plt[t->nplt++].addr = bfd_asymbol_value(&synth[i]);
	}
out:
	free(synth);
	free(dyn);
	bfd_close(abfd);
	return ret;
}

int qp_target__open(const char *path, struct qp_target **out, struct qp_error *err)
{
	struct qp_target *t = calloc(1, sizeof(*t));
	int ret;

	*out = NULL;
	if (!t)
		return qp_seterr(err, -ENOMEM, "out of memory");
	ret = qp_elf__open(path, QP_ELF_NO_RELAS, &t->elf, err);
	if (!ret && (t->elf->dynamic || !t->elf->nsyms))
		ret = qp_seterr(err, -ENOENT,
				"'%s': no symbol table (stripped?); build the patch against the unstripped binary",
				path);
	if (!ret && !t->elf->build_id_size)
		ret = qp_seterr(err, -ENOENT, "'%s': no build-id (link with -Wl,--build-id)", path);
	if (!ret)
		ret = target_read_plt(t, path, err);
	if (ret) {
		qp_target__free(t);
		return ret;
	}
	*out = t;
	return 0;
}

void qp_target__free(struct qp_target *t)
{
	size_t i;

	if (!t)
		return;
	for (i = 0; i < t->nplt; i++)
		free(t->plt[i].name);
	free(t->plt);
	qp_elf__free(t->elf);
	free(t);
}

const char *qp_target__path(const struct qp_target *t)
{
	return t->elf->path;
}

const struct qp_elf *qp_target__elf(const struct qp_target *t)
{
	return t->elf;
}

const char *qp_target__file_name(const struct qp_target *t, size_t file)
{
	return file && file < t->elf->nsyms ? t->elf->syms[file].name : "";
}

struct target_local_find {
	size_t file;                   /* FILE scope wanted */
	const struct qp_elf_sym *found; /* result */
};

static int target_local_cb(struct qp_elf_sym *s, void *arg)
{
	struct target_local_find *f = arg;

	if (s->bind != STB_LOCAL || s->file_index != f->file || !qp_sym_is_defined(s))
		return 0;
	f->found = s;
	return 1;
}

const struct qp_elf_sym *qp_target__find_local(const struct qp_target *t, size_t file,
					       const char *name)
{
	struct target_local_find f = { .file = file };

	qp_elf__for_each_named(t->elf, name, target_local_cb, &f);
	return f.found;
}

struct target_at_find {
	uint64_t value;                 /* address wanted */
	const struct qp_elf_sym *found; /* result */
};

static int target_at_cb(struct qp_elf_sym *s, void *arg)
{
	struct target_at_find *f = arg;

	if (!qp_sym_is_defined(s) || s->value != f->value)
		return 0;
	f->found = s;
	return 1;
}

const struct qp_elf_sym *qp_target__sym_at(const struct qp_target *t, uint64_t value,
					   const char *name)
{
	struct target_at_find f = { .value = value };

	qp_elf__for_each_named(t->elf, name, target_at_cb, &f);
	return f.found;
}

struct target_hidden_find {
	const struct qp_elf_sym *found; /* the one hidden symbol */
	int count;                      /* how many */
};

static int target_hidden_cb(struct qp_elf_sym *s, void *arg)
{
	struct target_hidden_find *f = arg;

	if (s->bind == STB_LOCAL && qp_sym_is_defined(s) &&
	    (GELF_ST_VISIBILITY(s->other) != STV_DEFAULT || (s->file && !s->file[0]))) {
		f->found = s;
		f->count++;
	}
	return 0;
}

/*
 * A global of the program's objects.  Globals with hidden or internal
 * visibility (e.g. Lua's LUAI_FUNC) are global while linking, but the
 * linker turns them into locals of the binary, listed after an STT_FILE
 * symbol with an empty name (or keeping their visibility): they are found
 * there, by name, when exactly one matches.
 */
const struct qp_elf_sym *qp_target__find_global(const struct qp_target *t, const char *name)
{
	const struct qp_elf_sym *g = qp_elf__find_global(t->elf, name);
	struct target_hidden_find f = { 0 };

	if (g)
		return g;
	qp_elf__for_each_named(t->elf, name, target_hidden_cb, &f);
	return f.count == 1 ? f.found : NULL;
}

int qp_target__plt(const struct qp_target *t, const char *name, uint64_t *addr)
{
	size_t i;

	for (i = 0; i < t->nplt; i++) {
		if (!strcmp(t->plt[i].name, name)) {
			*addr = t->plt[i].addr;
			return 0;
		}
	}
	return -ENOENT;
}

static bool obj_local_named(const struct qp_elf_sym *s)
{
	return s->bind == STB_LOCAL && (s->type == STT_FUNC || s->type == STT_OBJECT) &&
	       s->sec && s->name[0];
}

/* Does FILE scope @file of the target hold every named local of @obj? */
static bool target_scope_holds(const struct qp_target *t, size_t file, struct qp_elf *obj)
{
	struct qp_elf_sym *s;

	qp_elf_for_each_sym(obj, s)
		if (obj_local_named(s) && !qp_target__find_local(t, file, s->name))
			return false;
	return true;
}

static bool target_local_named(const struct qp_elf_sym *s, size_t file)
{
	return s->file_index == file && s->bind == STB_LOCAL && s->name[0] &&
	       (s->type == STT_FUNC || s->type == STT_OBJECT) && qp_sym_is_defined(s);
}

/* Named local functions and variables: of FILE scope @file of the target
 * (@obj NULL), or of object @obj. */
static size_t target_count_locals(const struct qp_target *t, size_t file, struct qp_elf *obj)
{
	struct qp_elf_sym *s;
	size_t n = 0;

	if (obj) {
		qp_elf_for_each_sym(obj, s)
			n += obj_local_named(s);
		return n;
	}
	qp_elf_for_each_sym(t->elf, s)
		n += target_local_named(s, file);
	return n;
}

/* The compile unit (debug info) holding one of FILE scope @file's
 * locals: "a/util.c"; "" without debug info. */
static void target_scope_cu(const struct qp_target *t, struct qp_srcline *dbg, size_t file,
			    char *out, size_t size)
{
	struct qp_elf_sym *s;

	out[0] = '\0';
	qp_elf_for_each_sym(t->elf, s)
		if (target_local_named(s, file) &&
		    (s->type == STT_OBJECT ? !qp_srcline__var_cu_name(dbg, s->value, out, size) :
					     !qp_srcline__cu_name(dbg, s->value, out, size)))
			break;
}

/* "'a/util.c' (FILE symbol N)", or "FILE symbol N" without debug info. */
static void target_scope_name(const struct qp_target *t, size_t file, char *out, size_t size)
{
	struct qp_srcline *dbg = qp_srcline__new(t->elf->path);
	char cu[1024];

	target_scope_cu(t, dbg, file, cu, sizeof(cu));
	qp_srcline__free(dbg);
	if (cu[0])
		snprintf(out, size, "'%s' (FILE symbol %zu)", cu, file);
	else
		snprintf(out, size, "FILE symbol %zu", file);
}

/*
 * Of the scopes @match[0..@n), the one whose compile unit has the name of
 * @obj's: the FILE symbol says only "util.c", the debug info of both the
 * object and the binary says "a/util.c" (fixture `ambiguous`).  0 when
 * that does not leave exactly one (no debug info, or the same name).
 */
static size_t target_cu_scope(const struct qp_target *t, struct qp_elf *obj, const size_t *match,
			      size_t n)
{
	struct qp_srcline *mine = qp_srcline__new(obj->path), *dbg = NULL;
	char want[1024], cu[1024];
	size_t found = 0, nfound = 0, i;

	if (!qp_srcline__unit_name(mine, want, sizeof(want)) &&
	    (dbg = qp_srcline__new(t->elf->path))) {
		for (i = 0; i < n; i++) {
			target_scope_cu(t, dbg, match[i], cu, sizeof(cu));
			if (!strcmp(cu, want)) {
				found = match[i];
				nfound++;
			}
		}
	}
	qp_srcline__free(dbg);
	qp_srcline__free(mine);
	return nfound == 1 ? found : 0;
}

/*
 * Of the scopes @match[0..@n) that hold all of @obj's locals, the one
 * holding no other: "calc.c" with {scale} is not "calc.c" with {scale,
 * calls}.  0 when that does not leave exactly one.
 */
static size_t target_exact_scope(const struct qp_target *t, struct qp_elf *obj,
				 const size_t *match, size_t n)
{
	size_t want = target_count_locals(t, 0, obj), found = 0, nfound = 0, i;

	for (i = 0; i < n; i++) {
		if (target_count_locals(t, match[i], NULL) == want) {
			found = match[i];
			nfound++;
		}
	}
	return nfound == 1 ? found : 0;
}

int qp_target__scope(struct qp_target *t, struct qp_elf *obj, const char *objname,
		     size_t *file, struct qp_error *err)
{
	const char *fname = NULL;
	struct qp_elf_sym *s;
	size_t match[64], nmatch = 0, ncand = 0;
	char a[1200], b[1200];

	qp_elf_for_each_sym(obj, s) {
		if (s->type == STT_FILE) {
			fname = s->name;
			break;
		}
	}
	if (!fname)
		return qp_seterr(err, QP_ERESOLVE, "%s: no FILE symbol, cannot scope its static symbols",
				 objname);
	qp_elf_for_each_sym(t->elf, s) {
		if (s->type != STT_FILE || strcmp(s->name, fname))
			continue;
		ncand++;
		if (!target_scope_holds(t, s->index, obj))
			continue;
		if (nmatch < sizeof(match) / sizeof(match[0]))
			match[nmatch++] = s->index;
	}
	if (nmatch == 1) {
		*file = match[0];
		return 0;
	}
	if (!nmatch)
		return qp_seterr(err, QP_ERESOLVE,
				 "%s: none of the %zu FILE symbol(s) '%s' of '%s' holds all its static symbols (is it linked into this binary?)",
				 objname, ncand, fname, t->elf->path);
	*file = target_exact_scope(t, obj, match, nmatch);
	if (!*file)
		*file = target_cu_scope(t, obj, match, nmatch);
	if (*file)
		return 0;
	target_scope_name(t, match[0], a, sizeof(a));
	target_scope_name(t, match[1], b, sizeof(b));
	return qp_seterr(err, QP_ERESOLVE,
			 "%s: ambiguous: %zu files '%s' of '%s' hold the same static symbols, among them %s and %s; cannot tell which one this object is (give one of them a static symbol the other lacks)",
			 objname, nmatch, fname, t->elf->path, a, b);
}

/*
 * Bytes from the end of @sym to the next symbol of its section (or the
 * section's end), at most QP_ROOM_MAX: where padding may be.
 */
static uint64_t target_gap_after(const struct qp_target *t, const struct qp_elf_sym *sym)
{
	const struct qp_elf_sec *sec = sym->sec;
	uint64_t end = sym->value + sym->size, next = sec->shdr.sh_addr + sec->size;
	const struct qp_elf_sym *o;

	qp_elf_for_each_sym(t->elf, o)
		if (o->sec == sec && o->type != STT_SECTION && o->type != STT_FILE &&
		    o->value >= end && o->value < next && (o->value > sym->value || o->size))
			next = o->value;
	return next - end < QP_ROOM_MAX ? next - end : QP_ROOM_MAX;
}

/* No room for the jump: may its direct callers be rewritten instead?
 * 0, or -ENOTSUP with both reasons in @why. */
static int target_calls(const struct qp_target *t, const struct qp_elf_sym *sym, int ret,
			char *why, size_t why_size)
{
	struct qp_callsite *v;
	char why2[256];
	size_t n;

	if (!qp_callsites_find(t->elf, sym->value, sym->size, QP_CALLSITES_ALL, &v, &n, why2,
			       sizeof(why2))) {
		free(v);
		return 0;
	}
	snprintf(why + strlen(why), why_size - strlen(why),
		 "; its call sites cannot be rewritten instead: %s", why2);
	return ret;
}

int qp_target__check_site(const struct qp_target *t, const struct qp_elf_sym *sym,
			  uint64_t *room, bool *calls, char *why, size_t why_size)
{
	const struct qp_elf_sec *s = sym->sec;
	const uint8_t *code;
	uint64_t site, gap;
	char why2[256];
	int ret;

	*room = 0;
	*calls = false;
	if (!s || !s->data || s->shdr.sh_type != SHT_PROGBITS ||
	    sym->value < s->shdr.sh_addr || sym->size > s->size ||
	    sym->value - s->shdr.sh_addr > s->size - sym->size) {
		snprintf(why, why_size, "its code is not in the binary");
		return -ENOENT;
	}
	code = s->data + (sym->value - s->shdr.sh_addr);
	site = qp_decode_patch_entry(code, sym->size, sym->value);
	ret = qp_decode_check_patch_site(code, sym->size, sym->value, site, QP_JMP_REL32_SIZE,
					 why, why_size);
	if (!ret || site + QP_JMP_REL32_SIZE <= sym->value + sym->size)
		return ret;
	/* shorter than the jump: alignment padding after it may take the rest */
	gap = target_gap_after(t, sym);
	if (site + QP_JMP_REL32_SIZE > sym->value + sym->size + gap ||
	    !qp_decode_is_padding(code + sym->size, gap, sym->value + sym->size)) {
		snprintf(why + strlen(why), why_size - strlen(why),
			 ", and the %llu byte%s after it before the next symbol %s",
			 (unsigned long long)gap, gap == 1 ? "" : "s",
			 gap ? "are not all alignment padding" : "leave no room");
		ret = target_calls(t, sym, ret, why, why_size);
		*calls = !ret;
		return ret;
	}
	if (qp_decode_check_patch_site(code, sym->size + gap, sym->value, site, QP_JMP_REL32_SIZE,
				       why2, sizeof(why2))) {
		snprintf(why, why_size, "%s", why2);
		return ret;
	}
	*room = gap;
	return 0;
}

void qp_target__fill_info(const struct qp_target *t, struct qp_info *info)
{
	const char *base = strrchr(t->elf->path, '/');

	memcpy(info->build_id, t->elf->build_id, t->elf->build_id_size);
	info->build_id_size = (uint32_t)t->elf->build_id_size;
	snprintf(info->target_name, sizeof(info->target_name), "%s", base ? base + 1 : t->elf->path);
	snprintf(info->tool_version, sizeof(info->tool_version), "%s", QP_VERSION);
}
