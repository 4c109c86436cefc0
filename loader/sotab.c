// SPDX-License-Identifier: MIT
/*
 * The replacement table of a hand-written patch library: see sotab.h.
 */
#include <errno.h>
#include <stdlib.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "sotab.h"

static int sotab_hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* A symbol name as C compilers make them (and the dots of .isra.0, .cold). */
static bool sotab_symbol_ok(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!(*s == '_' || *s == '.' || *s == '$' || (*s >= '0' && *s <= '9') ||
		      (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z')))
			return false;
	return true;
}

/* A printable string with its NUL inside @max bytes, not empty. */
static bool sotab_string_ok(const char *s, size_t max)
{
	const char *end = memchr(s, '\0', max);
	const char *c;

	if (!end || end == s)
		return false;
	for (c = s; c < end; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			return false;
	return true;
}

static int sotab_target(struct ld_so_table *t, const struct qpatch_so_entry *e, size_t i,
			struct qp_error *err)
{
	size_t len = strlen(e->name), k;

	if (t->target_kind)
		return qp_seterr(err, QP_EFORMAT, "entry %zu: a second QPATCH_TARGET", i);
	t->target_kind = e->kind;
	memcpy(t->target, e->name, len + 1);
	if (e->kind == QPATCH_SO_TARGET)
		return strchr(e->name, '/') ?
		       qp_seterr(err, QP_EFORMAT, "entry %zu: QPATCH_TARGET takes a file name, not a path ('%s')",
				 i, e->name) : 0;
	if (len % 2 || len / 2 > QP_BUILD_ID_MAX || len < 2)
		return qp_seterr(err, QP_EFORMAT, "entry %zu: '%s' is not a build-id in hex", i, e->name);
	for (k = 0; k < len; k += 2) {
		int hi = sotab_hexval(e->name[k]), lo = sotab_hexval(e->name[k + 1]);

		if (hi < 0 || lo < 0)
			return qp_seterr(err, QP_EFORMAT, "entry %zu: '%s' is not a build-id in hex", i,
					 e->name);
		t->build_id[k / 2] = (uint8_t)(hi << 4 | lo);
	}
	t->build_id_size = len / 2;
	return 0;
}

/* "file.c:name" or "name" (or ":name", what QPATCH_SYM makes of file ""). */
static int sotab_item(struct ld_so_table *t, const struct qpatch_so_entry *e, size_t i,
		      uint64_t off, struct qp_error *err)
{
	struct ld_so_item *it = &t->v[t->n];
	const char *colon = strrchr(e->name, ':');
	size_t k;

	memset(it, 0, sizeof(*it));
	it->kind = e->kind;
	it->off = off;
	if (colon) {
		memcpy(it->file, e->name, (size_t)(colon - e->name));
		snprintf(it->name, sizeof(it->name), "%s", colon + 1);
	} else {
		snprintf(it->name, sizeof(it->name), "%s", e->name);
	}
	if (!sotab_symbol_ok(it->name))
		return qp_seterr(err, QP_EFORMAT, "entry %zu: '%s' is not a symbol name", i, e->name);
	for (k = 0; k < t->n; k++)
		if (t->v[k].kind == it->kind && !strcmp(t->v[k].name, it->name) &&
		    !strcmp(t->v[k].file, it->file))
			return qp_seterr(err, QP_EFORMAT, "entry %zu: '%s' is named twice", i, e->name);
	t->n++;
	t->nreplace += e->kind == QPATCH_SO_REPLACE;
	return 0;
}

int ld_so_table_parse(const uint8_t *data, size_t size, struct ld_so_table *t,
		      struct qp_error *err)
{
	size_t i, n = size / sizeof(struct qpatch_so_entry);
	int ret = 0;

	memset(t, 0, sizeof(*t));
	if (!data || !size || size % sizeof(struct qpatch_so_entry))
		return qp_seterr(err, QP_EFORMAT,
				 "section " QPATCH_SO_SECTION " has %zu bytes, not a whole number of %zu-byte entries",
				 size, sizeof(struct qpatch_so_entry));
	if (n > LD_SO_MAX_ENTRIES)
		return qp_seterr(err, QP_EFORMAT, "section " QPATCH_SO_SECTION " has %zu entries (most %d)",
				 n, LD_SO_MAX_ENTRIES);
	t->v = calloc(n, sizeof(*t->v));
	if (!t->v)
		return qp_seterr(err, -ENOMEM, "out of memory");
	for (i = 0; !ret && i < n; i++) {
		struct qpatch_so_entry e;

		memcpy(&e, data + i * sizeof(e), sizeof(e));
		if (e.magic != QPATCH_SO_MAGIC)
			ret = qp_seterr(err, QP_EFORMAT, "entry %zu: bad magic 0x%08x", i, e.magic);
		else if (!sotab_string_ok(e.name, sizeof(e.name)))
			ret = qp_seterr(err, QP_EFORMAT, "entry %zu: its name is empty, unterminated or not text",
					i);
		else if (e.kind == QPATCH_SO_TARGET || e.kind == QPATCH_SO_TARGET_BUILDID)
			ret = sotab_target(t, &e, i, err);
		else if (e.kind == QPATCH_SO_REPLACE || e.kind == QPATCH_SO_SYM)
			ret = sotab_item(t, &e, i, i * sizeof(e), err);
		else
			ret = qp_seterr(err, QP_EFORMAT, "entry %zu: unknown kind %u", i, e.kind);
	}
	if (!ret && !t->target_kind)
		ret = qp_seterr(err, QP_EFORMAT, "no QPATCH_TARGET: the library does not say what it patches");
	if (!ret && !t->nreplace)
		ret = qp_seterr(err, QP_EFORMAT, "no QPATCH_REPLACE: the library replaces nothing");
	return ret;
}

void ld_so_table_release(struct ld_so_table *t)
{
	free(t->v);
	t->v = NULL;
	t->n = 0;
}

int ld_so_entry_same(const struct qpatch_so_entry *e, const struct qpatch_so_entry *file_e)
{
	return e->magic == file_e->magic && e->kind == file_e->kind &&
	       !memcmp(e->name, file_e->name, sizeof(e->name));
}
