// SPDX-License-Identifier: MIT
/*
 * What the differ refuses or leaves out: changes to the layout of existing
 * types, old functions that cannot take the jump, and functions whose only
 * change is a moved __LINE__.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "diff_internal.h"
#include "linemap.h"
#include "prefixmap.h"
#include "qpatch/decode.h"

/*
 * A source path from debug info (qp_srcline__at(): the compilation
 * directory joined in, ".." folded away), where it is on this side of the
 * build: under the original tree's path, or relative (a build that maps
 * its own directory to ".", as Debian's flags do), both taken from the
 * side's tree.
 */
static void diff_source_path(const struct qp_diff *d, const char *path, bool patched,
			     char *out, size_t size)
{
	size_t n = d->src_prefix ? strlen(d->src_prefix) : 0;
	const char *dir = patched ? d->src_patched : d->src_orig;

	if (n && !strncmp(path, d->src_prefix, n) && path[n] == '/')
		snprintf(out, size, "%s%s", dir, path + n);
	else if (n && path[0] != '/')
		snprintf(out, size, "%s/%s", dir, path);
	else
		snprintf(out, size, "%s", path);
}

struct diff_unmap {
	const struct qp_diff *d; /* for diff_source_path() */
	bool patched;            /* which side's tree */
	char *out;               /* the readable file found */
	size_t size;             /* of out */
};

static bool diff_unmapped_readable(const char *path, void *arg)
{
	struct diff_unmap *u = arg;

	diff_source_path(u->d, path, u->patched, u->out, u->size);
	return !access(u->out, R_OK);
}

/*
 * The file of source path @path (debug info of object @o's @patched side)
 * into @out.  When the path as the debug info has it cannot be read, it may
 * be under a directory a prefix map of the compilation renamed (a build
 * directory mapped to "."): the maps of the command qpatch-cc recorded for
 * that object, or for the other side's, are undone (prefixmap.h).
 */
static void diff_source_file(const struct qp_diff *d, const struct diff_obj *o, const char *path,
			     bool patched, char *out, size_t size)
{
	const struct qp_elf *own = patched ? o->pat : o->orig, *other = patched ? o->orig : o->pat;
	struct diff_unmap u = { d, patched, out, size };
	char first[PATH_MAX];

	diff_source_path(d, path, patched, out, size);
	if (!access(out, R_OK))
		return;
	snprintf(first, sizeof(first), "%s", out);
	if ((own && own->path && qp_prefix_unmap(own->path, path, diff_unmapped_readable, &u)) ||
	    (other && other->path && qp_prefix_unmap(other->path, path, diff_unmapped_readable, &u)))
		return;
	snprintf(out, size, "%s", first);
}

/* Line @depth of the instruction at @addr of @func: its own (0), or the
 * call site of the @depth-th inlined subroutine it lies in. */
static int diff_line_at(struct qp_srcline *sl, const char *func, uint64_t addr, int depth,
			char *file, size_t size, int *line)
{
	return depth ? qp_srcline__call_at(sl, func, addr, depth, file, size, line) :
		       qp_srcline__at(sl, func, addr, file, size, line);
}

/* How many inlined callers deep a moved __LINE__ is looked for. */
#define DIFF_LINE_DEPTH 8

/* Does line @line of file @path contain the token __LINE__? */
static bool diff_line_says_line(const char *path, int64_t line)
{
	char buf[4096];
	bool found = false, eol = true;
	int64_t n = 0;
	FILE *f = fopen(path, "r");

	if (!f)
		return false;
	while (n < line && fgets(buf, sizeof(buf), f)) {
		if (eol)
			n++;
		eol = strchr(buf, '\n') != NULL;
		if (n == line && strstr(buf, "__LINE__"))
			found = true;
	}
	fclose(f);
	return found;
}

/* How many lines below the start of a call its __LINE__ may be. */
#define DIFF_CALL_LINES 16

/* Could the immediates of @x be a __LINE__ written below the first line
 * of a call starting on line @la (@lb patched), in the same call?  Only
 * then is the source read for the token. */
static bool diff_call_lines(const struct qp_insn_diff *x, int la, int lb)
{
	return x->a_imm > la && x->a_imm - la <= DIFF_CALL_LINES && x->b_imm - lb == x->a_imm - la;
}

/*
 * Does one differing instruction only carry a moved __LINE__?  The
 * immediate is A in the original and B in the patched object, and the
 * source diff must map line A to line B as an unchanged line of the same
 * file, which is one of:
 *
 * - the instruction's own (its line is A and B: an assert() or a
 *   logmsg(__LINE__, ...) below the edit);
 * - the call site of an inlined subroutine it lies in, the same number of
 *   levels up on both sides: an inlined helper handed its caller's
 *   __LINE__ (expat's accountingDiffTolerated(..., __LINE__, ...)) sets it
 *   up with an instruction of the helper's line.  The call site's line is
 *   A and B, or, for a call written over several lines, A and B are as
 *   far below it (at most DIFF_CALL_LINES) and line A holds the token
 *   __LINE__ itself.
 *
 * Anything else (another constant, a changed line) is a real change.
 */
static bool diff_line_moved(struct qp_diff *d, struct diff_obj *o, const struct qp_elf_sym *os,
			    const struct qp_elf_sym *s, const struct qp_insn_diff *x,
			    char *note, size_t note_size)
{
	char fa[1024], fb[1024], pa[2048], pb[2048];
	struct qp_linemap map;
	int la, lb, depth;
	bool moved = false;

	if (x->a_imm <= 0 || x->a_imm > INT_MAX || x->b_imm <= 0 || x->b_imm > INT_MAX)
		return false;
	for (depth = 0; depth <= DIFF_LINE_DEPTH && !moved; depth++) {
		if (diff_line_at(o->osrc, os->name, x->a_addr, depth, fa, sizeof(fa), &la) ||
		    diff_line_at(o->src, s->name, x->b_addr, depth, fb, sizeof(fb), &lb))
			return false;
		/* the sources are looked for only when the lines can say it */
		if ((x->a_imm != la || x->b_imm != lb) && (!depth || !diff_call_lines(x, la, lb)))
			continue;
		diff_source_file(d, o, fa, false, pa, sizeof(pa));
		if ((x->a_imm != la || x->b_imm != lb) && !diff_line_says_line(pa, x->a_imm))
			continue;
		diff_source_file(d, o, fb, true, pb, sizeof(pb));
		if (qp_linemap__build(pa, pb, &map, NULL))
			continue;
		moved = qp_linemap__map(&map, (int)x->a_imm) == x->b_imm;
		qp_linemap__release(&map);
	}
	if (!moved)
		return false;
	snprintf(note + strlen(note), note_size - strlen(note), "%s%lld->%lld",
		 note[0] ? ", " : "only __LINE__ values moved: ", (long long)x->a_imm,
		 (long long)x->b_imm);
	return true;
}

/* A function whose only differences are __LINE__ values of unchanged
 * source lines that moved: nothing to patch. */
bool diff_line_only(struct qp_diff *d, struct diff_obj *o, const struct qp_elf_sym *os,
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

/*
 * Where in old function @os (original object) a jump of its cold part
 * lands before @end, the end of the bytes the loader overwrites; -1 when
 * none does.  The loader decodes the old function only, but its cold part
 * jumps back into it (fixture `coldentry`: to its first instruction); a
 * jump landing there would run the new function with the old one's stack
 * frame, or the middle of the jump instruction.
 */
static int64_t diff_cold_entry(struct diff_obj *o, const struct qp_elf_sym *os, uint64_t end)
{
	struct qp_elf_sym *c;
	size_t i;

	qp_elf_for_each_sym(o->orig, c) {
		if (!c->sec || !qp_correlate_is_cold(c))
			continue;
		for (i = 0; i < c->sec->nrelas; i++) {
			const struct qp_elf_rela *r = &c->sec->relas[i];
			int64_t at;

			if (!r->sym || r->sym->sec != os->sec ||
			    (r->sym != os && r->sym->type != STT_SECTION))
				continue;
			at = (int64_t)r->sym->value - (int64_t)os->value + r->addend +
			     rela_pc_adjust(c->sec, r);
			if (at >= 0 && (uint64_t)at < end)
				return at;
		}
	}
	return -1;
}

/* The old function must be able to take the loader's jump. */
int diff_check_site(struct qp_diff *d, struct diff_obj *o, const struct qp_elf_sym *s,
			   size_t src, struct qp_error *err)
{
	const struct qp_elf_sym *t = qp_target__sym_at(d->tgt, d->srcs[src].value, s->name);
	const struct qp_elf_sym *os = obj_twin(o, s);
	char why[256], msg[300];
	int64_t at;

	if (os && os->sec && os->sec->data && os->value < os->sec->size) {
		uint64_t end = qp_decode_patch_entry(os->sec->data + os->value,
						     os->sec->size - os->value, 0) + QP_JMP_REL32_SIZE;

		at = diff_cold_entry(o, os, end);
		if (at >= 0) {
			snprintf(msg, sizeof(msg),
				 "cannot redirect the old function: its cold part jumps back to offset %lld, inside the %llu bytes the jump replaces",
				 (long long)at, (unsigned long long)end);
			return diff_refuse(d, o, s->name, os->size, err, msg);
		}
	}
	if (!t || !qp_target__check_site(d->tgt, t, &d->srcs[src].room, &d->srcs[src].calls,
					  why, sizeof(why)))
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

/* The first member whose name, offset or size differs between two
 * signatures ("a@0:4,b@8:8,"), as ", member 'b' 8:8 -> 8:4 (offset:size)",
 * or "". */
static void layout_first_change(const char *a, const char *b, char *out, size_t size)
{
	while (*a || *b) {
		size_t na = strcspn(a, ","), nb = strcspn(b, ",");

		if (na != nb || strncmp(a, b, na)) {
			const char *at = memchr(a, '@', na), *bt = memchr(b, '@', nb);
			int an = at ? (int)(at - a) : (int)na, bn = bt ? (int)(bt - b) : (int)nb;

			if (!na)
				snprintf(out, size, ", member '%.*s' added", bn, b);
			else if (!nb || an != bn || strncmp(a, b, (size_t)an))
				snprintf(out, size, ", member '%.*s' %s", an, a, nb ? "replaced" : "removed");
			else
				snprintf(out, size, ", member '%.*s' %.*s -> %.*s (offset:size)", an, a,
					 (int)na - an - 1, at + 1, (int)nb - bn - 1, bt + 1);
			return;
		}
		a += na + (a[na] == ',');
		b += nb + (b[nb] == ',');
	}
	out[0] = '\0';
}

static int layout_compare(const char *name, unsigned long size, const char *members,
			  const char *where, void *arg)
{
	struct diff_layouts *l = arg;
	char why[256], what[160];
	size_t i;
	int ret;

	for (i = 0; i < l->n; i++) {
		if (strcmp(l->v[i].name, name) || l->v[i].twice)
			continue;
		if (l->v[i].size == size && !strcmp(l->v[i].members, members))
			return 0;
		layout_first_change(l->v[i].members, members, what, sizeof(what));
		snprintf(why, sizeof(why),
			 "layout of '%s' changed (%lu -> %lu bytes%s): data the running process already has uses the old one",
			 name, l->v[i].size, size, what);
		ret = diff_refuse(l->d, l->o, name, size, l->err, why);
		if (ret != QP_EREFUSED)
			return ret;
		/* the type's declaration, which the report cannot look up by name */
		snprintf(l->d->rep->changes[l->d->rep->nchanges - 1].where,
			 sizeof(l->d->rep->changes[0].where), "%s", where);
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
int diff_layouts(struct qp_diff *d, struct diff_obj *o, struct qp_error *err)
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
