// SPDX-License-Identifier: MIT
/*
 * Reading qpatch-cc's records of the compilations in a tree (see
 * records.h).
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "records.h"
#include "srcline.h"

#define REC_MAGIC "qpatch-cc 1"
#define REC_MAX_SIZE (1 << 20)

struct qp_records {
	struct qp_record *v; /* records, in the order found */
	size_t n;            /* count of v */
	bool deps;           /* read OBJ.d files too */
	qp_records_rel_fn rel; /* paths as seen -> relative to the tree */
	void *arg;           /* for rel */
};

/* The whole of @path, NUL-terminated, in *@out (@size bytes without the
 * terminator); -1 when unreadable or too large. */
static int rec_slurp(const char *path, char **out, size_t *size)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;

	if (!f)
		return -1;
	if (!fseek(f, 0, SEEK_END) && (n = ftell(f)) >= 0 && n <= REC_MAX_SIZE &&
	    !fseek(f, 0, SEEK_SET) && (buf = malloc((size_t)n + 1)) &&
	    fread(buf, 1, (size_t)n, f) == (size_t)n) {
		buf[n] = '\0';
		*out = buf;
		*size = (size_t)n;
		fclose(f);
		return 0;
	}
	free(buf);
	fclose(f);
	return -1;
}

/* @path (relative to @cwd when not absolute) relative to the tree, as a
 * malloc'ed string; NULL when outside it (or out of memory). */
static char *rec_rel(const struct qp_records *r, const char *cwd, const char *path)
{
	char abs[PATH_MAX], rel[PATH_MAX];

	if (qp_srcline_path(cwd, path, abs, sizeof(abs)) || abs[0] != '/')
		return NULL;
	if (r->rel(r->arg, abs, rel))
		return NULL;
	return strdup(rel);
}

static int rec_add_dep(struct qp_record *rec, char *dep)
{
	char **v = realloc(rec->deps, (rec->ndeps + 1) * sizeof(*v));

	if (!v) {
		free(dep);
		return -ENOMEM;
	}
	rec->deps = v;
	v[rec->ndeps++] = dep;
	return 0;
}

/*
 * The prerequisites of the first rule of the make-syntax dependency file
 * @text ("obj.o: a.c a.h \<newline> b.h"; "\ " is a space in a name, "$$"
 * a dollar), those inside the tree.  Returns 0 when the rule was found.
 */
static int rec_parse_deps(const struct qp_records *r, struct qp_record *rec, const char *cwd,
			  const char *text)
{
	char name[PATH_MAX];
	const char *p = text;
	bool target = true;

	while (*p) {
		size_t n = 0;

		if (*p == ' ' || *p == '\t') {
			p++;
			continue;
		}
		if (p[0] == '\\' && p[1] == '\n') {
			p += 2;
			continue;
		}
		if (*p == '\n') {
			if (!target)
				break; /* the end of the rule */
			p++;
			continue;
		}
		while (*p && !strchr(" \t\n", *p) && !(p[0] == '\\' && p[1] == '\n')) {
			if (target && p[0] == ':' && (!p[1] || strchr(" \t\n", p[1])))
				break;
			if ((p[0] == '\\' && (p[1] == ' ' || p[1] == '#')) || (p[0] == '$' && p[1] == '$'))
				p++;
			if (n < sizeof(name) - 1)
				name[n++] = *p;
			p++;
		}
		name[n] = '\0';
		if (target && *p == ':') { /* what came before is the target */
			target = false;
			p++;
		} else if (!target && n) {
			char *dep = rec_rel(r, cwd, name);

			if (dep && rec_add_dep(rec, dep))
				return -ENOMEM;
		}
	}
	return target ? -1 : 0;
}

/* Reads the OBJ.d beside record @cmd; rec->deps_known says whether it is
 * usable: it names the source, as every one the compiler writes does. */
static int rec_read_deps(const struct qp_records *r, struct qp_record *rec, const char *cwd,
			 const char *cmd)
{
	char path[PATH_MAX], *text;
	size_t size, i;
	int ret;

	snprintf(path, sizeof(path), "%.*s.d", (int)(strlen(cmd) - 4), cmd);
	if (rec_slurp(path, &text, &size))
		return 0;
	ret = rec_parse_deps(r, rec, cwd, text);
	free(text);
	if (ret == -ENOMEM)
		return ret;
	for (i = 0; !ret && rec->src_rel && i < rec->ndeps; i++)
		if (!strcmp(rec->deps[i], rec->src_rel))
			rec->deps_known = true;
	return 0;
}

static void rec_release(struct qp_record *rec)
{
	size_t i;

	free(rec->cwd_rel);
	free(rec->src_rel);
	free(rec->obj_rel);
	free(rec->args);
	for (i = 0; i < rec->ndeps; i++)
		free(rec->deps[i]);
	free(rec->deps);
}

/* One OBJ.cmd: NUL-terminated fields "qpatch-cc 1", CWD, SOURCE, OBJECT,
 * then the arguments.  The args point into one block, kept after them. */
static int rec_read(struct qp_records *r, const char *cmd)
{
	struct qp_record rec = { 0 };
	const char *field[3];
	char *text, *p, *end, **args;
	size_t size, nargs = 0, i;
	int ret;

	if (rec_slurp(cmd, &text, &size))
		return 0;
	end = text + size;
	if (!size || end[-1] || strcmp(text, REC_MAGIC))
		goto skip;
	p = text + strlen(text) + 1;
	for (i = 0; i < 3; i++) {
		if (p >= end)
			goto skip;
		field[i] = p;
		p += strlen(p) + 1;
	}
	for (char *q = p; q < end; q += strlen(q) + 1)
		nargs++;
	/* the pointers, then a copy of the arguments: one free() */
	args = malloc((nargs + 1) * sizeof(*args) + (size_t)(end - p));
	if (!args) {
		free(text);
		return -ENOMEM;
	}
	memcpy(args + nargs + 1, p, (size_t)(end - p));
	p = (char *)(args + nargs + 1);
	for (i = 0; i < nargs; i++, p += strlen(p) + 1)
		args[i] = p;
	args[nargs] = NULL;
	rec.args = args;
	rec.cwd_rel = rec_rel(r, "/", field[0]);
	rec.src_rel = rec_rel(r, field[0], field[1]);
	rec.obj_rel = rec_rel(r, field[0], field[2]);
	ret = 0;
	if (rec.obj_rel && r->deps)
		ret = rec_read_deps(r, &rec, field[0], cmd);
	if (!ret && rec.obj_rel) {
		struct qp_record *v = realloc(r->v, (r->n + 1) * sizeof(*v));

		if (!v) {
			ret = -ENOMEM;
		} else {
			r->v = v;
			v[r->n++] = rec;
			rec = (struct qp_record){ 0 };
		}
	}
	rec_release(&rec);
	free(text);
	return ret;
skip:
	free(text);
	return 0;
}

static int rec_walk(struct qp_records *r, const char *dir, bool records)
{
	DIR *dd = opendir(dir);
	struct dirent *de;
	int ret = 0;

	if (!dd)
		return 0;
	while (!ret && (de = readdir(dd))) {
		char p[PATH_MAX];
		size_t n = strlen(de->d_name);
		struct stat st;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
		    snprintf(p, sizeof(p), "%s/%s", dir, de->d_name) >= (int)sizeof(p) || lstat(p, &st))
			continue;
		if (S_ISDIR(st.st_mode))
			ret = rec_walk(r, p, !strcmp(de->d_name, ".qpatch-cc"));
		else if (records && S_ISREG(st.st_mode) && n > 4 && !strcmp(de->d_name + n - 4, ".cmd"))
			ret = rec_read(r, p);
	}
	closedir(dd);
	return ret;
}

int qp_records__load(const char *root, bool deps, qp_records_rel_fn rel, void *arg,
		     struct qp_records **out, struct qp_error *err)
{
	struct qp_records *r = calloc(1, sizeof(*r));
	int ret;

	*out = NULL;
	if (!r)
		return qp_seterr(err, -ENOMEM, "out of memory");
	r->deps = deps;
	r->rel = rel;
	r->arg = arg;
	ret = rec_walk(r, root, false);
	if (ret) {
		qp_records__free(r);
		return qp_seterr(err, ret, "reading the compilations recorded in '%s'", root);
	}
	*out = r;
	return 0;
}

size_t qp_records__count(const struct qp_records *r)
{
	return r ? r->n : 0;
}

const struct qp_record *qp_records__get(const struct qp_records *r, size_t i)
{
	return i < r->n ? &r->v[i] : NULL;
}

void qp_records__free(struct qp_records *r)
{
	size_t i;

	if (!r)
		return;
	for (i = 0; i < r->n; i++)
		rec_release(&r->v[i]);
	free(r->v);
	free(r);
}
