// SPDX-License-Identifier: MIT
/*
 * Symbol correlation between the original and the patched object.
 */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "correlate.h"

static bool all_digits(const char *s, size_t n)
{
	size_t i;

	if (!n)
		return false;
	for (i = 0; i < n; i++)
		if (!isdigit((unsigned char)s[i]))
			return false;
	return true;
}

void qp_correlate_base_name(const char *name, char *out, size_t size)
{
	const char *p = name;
	size_t len = 0;
	bool first = true;

	if (!size)
		return;
	while (*p) {
		const char *dot = strchr(p, '.');
		size_t n = dot ? (size_t)(dot - p) : strlen(p);

		if (first || !all_digits(p, n)) {
			int w = snprintf(out + len, size - len, "%s%.*s", first ? "" : ".", (int)n, p);

			if (w < 0 || (size_t)w >= size - len)
				break;
			len += (size_t)w;
		}
		first = false;
		p += n + (dot ? 1 : 0);
		if (!dot)
			break;
	}
	out[len < size ? len : size - 1] = '\0';
}

bool qp_correlate_is_clone(const char *name)
{
	static const char *const kinds[] = { ".constprop.", ".isra.", ".part." };
	size_t i;

	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (strstr(name, kinds[i]))
			return true;
	return false;
}

bool qp_correlate_is_cold(const struct qp_elf_sym *s)
{
	const char *p = strstr(s->name, ".cold");

	if (s->type != STT_FUNC || !p || p == s->name)
		return false;
	p += 5;
	return !*p || (*p == '.' && all_digits(p + 1, strlen(p + 1)));
}

static bool is_named_def(const struct qp_elf_sym *s)
{
	return s->sec && s->name[0] &&
	       (s->type == STT_FUNC || s->type == STT_OBJECT || s->type == STT_TLS);
}

/* A function-scope static: a local variable whose name ends in ".N". */
static bool is_static_local(const struct qp_elf_sym *s)
{
	const char *dot = strrchr(s->name, '.');

	return is_named_def(s) && s->bind == STB_LOCAL && s->type != STT_FUNC && dot &&
	       dot != s->name && all_digits(dot + 1, strlen(dot + 1));
}

/* Does relocation @r (in object @e) point at variable @v? */
static bool rela_points_at(const struct qp_elf_rela *r, const struct qp_elf_sym *v)
{
	if (!r->sym)
		return false;
	if (r->sym == v)
		return true;
	/* section-relative: -fdata-sections puts the variable alone in its section */
	return r->sym->type == STT_SECTION && r->sym->sec == v->sec;
}

/*
 * The functions and variables (by name) referring to static local @v, as
 * one string "f,g," in symbol order; @twin maps patched functions to original names
 * when given, so both sides use the original's names.
 */
static void referrers(struct qp_elf *e, const struct qp_elf_sym *v, struct qp_elf_sym **twin,
		      char *out, size_t size)
{
	struct qp_elf_sym *f;
	size_t len = 0, i;

	out[0] = '\0';
	qp_elf_for_each_sym(e, f) {
		const char *name;

		/* functions, and data that points at it (a table of a compound
		 * literal, like QEMU's VMStateDescription fields) */
		if ((f->type != STT_FUNC && f->type != STT_OBJECT) || !f->sec || f == v)
			continue;
		for (i = 0; i < f->sec->nrelas && !rela_points_at(&f->sec->relas[i], v); i++)
			;
		if (i == f->sec->nrelas)
			continue;
		name = twin && twin[f->index] ? twin[f->index]->name : f->name;
		len += (size_t)snprintf(out + len, size - len, "%s,", name);
		if (len >= size)
			break;
	}
}

static bool taken(struct qp_elf_sym **twin, size_t n, const struct qp_elf_sym *os)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (twin[i] == os)
			return true;
	return false;
}

static bool same_kind(const struct qp_elf_sym *a, const struct qp_elf_sym *b)
{
	return a->type == b->type && (a->bind == STB_LOCAL) == (b->bind == STB_LOCAL);
}

/* Rule 3: unique twin by base name among untaken candidates. */
static struct qp_elf_sym *by_base_name(struct qp_elf *orig, const struct qp_elf_sym *s,
				       struct qp_elf_sym **twin, size_t n)
{
	struct qp_elf_sym *os, *found = NULL;
	char want[256], have[256];

	qp_correlate_base_name(s->name, want, sizeof(want));
	qp_elf_for_each_sym(orig, os) {
		if (!is_named_def(os) || !same_kind(os, s) || taken(twin, n, os))
			continue;
		qp_correlate_base_name(os->name, have, sizeof(have));
		if (strcmp(want, have))
			continue;
		if (found)
			return NULL; /* ambiguous */
		found = os;
	}
	return found;
}

/* Same size and, for initialised data, same initial bytes. */
static bool same_content(const struct qp_elf_sym *a, const struct qp_elf_sym *b)
{
	const struct qp_elf_sec *x = a->sec, *y = b->sec;

	if (a->size != b->size || x->shdr.sh_type != y->shdr.sh_type)
		return false;
	if (!x->data || !y->data)
		return true;
	return a->value + a->size <= x->size && b->value + b->size <= y->size &&
	       !memcmp(x->data + a->value, y->data + b->value, a->size);
}

/* Is patched static @s a candidate for original static @os? */
static bool static_matches(struct qp_elf *orig, struct qp_elf *pat, const struct qp_elf_sym *os,
			   const struct qp_elf_sym *s, struct qp_elf_sym **twin)
{
	char a[256], b[256], ra[1024], rb[1024];

	if (!same_kind(os, s))
		return false;
	qp_correlate_base_name(os->name, a, sizeof(a));
	qp_correlate_base_name(s->name, b, sizeof(b));
	if (strcmp(a, b))
		return false;
	referrers(orig, os, NULL, ra, sizeof(ra));
	referrers(pat, s, twin, rb, sizeof(rb));
	return ra[0] && !strcmp(ra, rb);
}

/*
 * Rule 1, for one original static @os: the patched statics with the same
 * base name referred to by the same functions; several (a new static in an
 * inlined function) are narrowed to those with the same size and initial
 * bytes.  One left: its twin.  Several: all ambiguous.
 */
static void pair_static(struct qp_elf *orig, struct qp_elf *pat, const struct qp_elf_sym *os,
			struct qp_correlation *c)
{
	struct qp_elf_sym *s, *one = NULL, *same = NULL;
	size_t n = 0, nsame = 0;

	qp_elf_for_each_sym(pat, s) {
		if (!is_static_local(s) || c->twin[s->index] || !static_matches(orig, pat, os, s, c->twin))
			continue;
		n++;
		one = s;
		if (same_content(os, s)) {
			nsame++;
			same = s;
		}
	}
	if (n == 1) {
		c->twin[one->index] = (struct qp_elf_sym *)os;
		return;
	}
	if (nsame == 1) {
		c->twin[same->index] = (struct qp_elf_sym *)os;
		return;
	}
	qp_elf_for_each_sym(pat, s)
		if (is_static_local(s) && !c->twin[s->index] && static_matches(orig, pat, os, s, c->twin))
			c->ambiguous[s->index] = true;
}

int qp_correlate(struct qp_elf *orig, struct qp_elf *pat, const struct qp_correlate_veto *veto,
		 struct qp_correlation *c)
{
	size_t n = pat->nsyms ? pat->nsyms : 1;
	struct qp_elf_sym **twin, *s, *os;

	c->twin = twin = calloc(n, sizeof(*twin));
	c->ambiguous = calloc(n, sizeof(*c->ambiguous));
	if (!c->twin || !c->ambiguous) {
		qp_correlation__release(c);
		return -ENOMEM;
	}
	/* rule 2 first for functions, whose names rule 1 needs */
	qp_elf_for_each_sym(pat, s) {
		if (!is_named_def(s) || is_static_local(s))
			continue;
		qp_elf_for_each_sym(orig, os) {
			if (is_named_def(os) && !is_static_local(os) && same_kind(os, s) &&
			    !strcmp(os->name, s->name)) {
				twin[s->index] = os;
				break;
			}
		}
	}
	qp_elf_for_each_sym(pat, s)
		if (is_named_def(s) && !twin[s->index] && !is_static_local(s))
			twin[s->index] = by_base_name(orig, s, twin, pat->nsyms);
	qp_elf_for_each_sym(pat, s)
		if (veto && twin[s->index] && s->type == STT_FUNC && qp_correlate_is_clone(s->name) &&
		    !qp_correlate_is_cold(s) && veto->fn(veto->arg, twin[s->index], s))
			twin[s->index] = NULL;
	qp_elf_for_each_sym(orig, os)
		if (is_static_local(os))
			pair_static(orig, pat, os, c);
	return 0;
}

void qp_correlation__release(struct qp_correlation *c)
{
	free(c->twin);
	free(c->ambiguous);
	c->twin = NULL;
	c->ambiguous = NULL;
}
