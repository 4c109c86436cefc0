// SPDX-License-Identifier: MIT
/*
 * The objects a binary was linked from, from qpatch-cc's link log and the
 * archives it names (see linkset.h).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "filekind.h"
#include "linkset.h"

/* A member of a regular archive: found again by name and content. */
struct ls_member {
	char *name;    /* member name (a basename) */
	char *archive; /* archive holding it */
	long off;      /* offset of its data in the archive */
	size_t size;   /* bytes */
};

struct qp_linkset {
	char **paths;          /* objects given to the link, or members of thin archives */
	size_t npaths;         /* count of paths */
	struct ls_member *mem; /* members of regular archives */
	size_t nmem;           /* count of mem */
};

#define LS_AR_HDR 60
#define LS_MAX_DEPTH 4

/* @path as the tree holds it: @seen replaced by @root, then resolved. */
static void ls_norm(const char *path, const char *seen, const char *root, char *out)
{
	char mapped[PATH_MAX];
	size_t n = seen ? strlen(seen) : 0;

	if (n && !strncmp(path, seen, n) && (path[n] == '/' || !path[n]))
		snprintf(mapped, sizeof(mapped), "%s%s", root, path + n);
	else
		snprintf(mapped, sizeof(mapped), "%s", path);
	if (!realpath(mapped, out))
		snprintf(out, PATH_MAX, "%s", mapped);
}

static int ls_add_path(struct qp_linkset *ls, const char *path)
{
	char **v = realloc(ls->paths, (ls->npaths + 1) * sizeof(*v));

	if (!v)
		return -ENOMEM;
	ls->paths = v;
	if (!(v[ls->npaths] = strdup(path)))
		return -ENOMEM;
	ls->npaths++;
	return 0;
}

static int ls_add_member(struct qp_linkset *ls, const char *name, const char *archive, long off,
			 size_t size)
{
	struct ls_member *v = realloc(ls->mem, (ls->nmem + 1) * sizeof(*v));

	if (!v)
		return -ENOMEM;
	ls->mem = v;
	v += ls->nmem;
	v->name = strdup(name);
	v->archive = strdup(archive);
	v->off = off;
	v->size = size;
	if (!v->name || !v->archive) {
		free(v->name);
		free(v->archive);
		return -ENOMEM;
	}
	ls->nmem++;
	return 0;
}

static int ls_add_input(struct qp_linkset *ls, const char *path, int depth);

/* The name of member header @h: "foo.o/" or "/N" into the long names. */
static void ls_member_name(const char *h, const char *names, size_t nnames, char *out)
{
	size_t i;

	if (h[0] == '/' && h[1] >= '0' && h[1] <= '9' && names) {
		size_t off = strtoul(h + 1, NULL, 10);

		for (i = 0; off + i < nnames && i < PATH_MAX - 1; i++) {
			if (names[off + i] == '\n' ||
			    (names[off + i] == '/' && (off + i + 1 >= nnames || names[off + i + 1] == '\n')))
				break;
			out[i] = names[off + i];
		}
		out[i] = '\0';
		return;
	}
	for (i = 0; i < 16 && h[i] != '/' && h[i] != ' '; i++)
		out[i] = h[i];
	out[i] = '\0';
}

static int ls_add_archive(struct qp_linkset *ls, const char *path, bool thin, int depth)
{
	char h[LS_AR_HDR + 1], name[PATH_MAX], dir[PATH_MAX], member[PATH_MAX], *slash;
	char *names = NULL;
	size_t nnames = 0;
	FILE *f = fopen(path, "rb");
	int ret = 0;

	if (!f)
		return 0;
	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash)
		*slash = '\0';
	fseek(f, 8, SEEK_SET);
	while (!ret && fread(h, 1, LS_AR_HDR, f) == LS_AR_HDR) {
		size_t size;
		long data = ftell(f);

		h[LS_AR_HDR] = '\0';
		if (memcmp(h + 58, "`\n", 2))
			break;
		size = strtoul(h + 48, NULL, 10);
		if (!strncmp(h, "// ", 3)) { /* long names: always stored */
			free(names);
			names = malloc(size + 1);
			if (!names || fread(names, 1, size, f) != size) {
				ret = names ? 0 : -ENOMEM;
				break;
			}
			nnames = size;
		} else if (h[0] == '/' && (h[1] == ' ' || !strncmp(h, "/SYM64/", 7))) {
			/* symbol table: stored in thin archives too */
		} else {
			ls_member_name(h, names, nnames, name);
			if (thin) {
				if (name[0] == '/')
					snprintf(member, sizeof(member), "%s", name);
				else
					snprintf(member, sizeof(member), "%s/%s", dir, name);
				ret = ls_add_input(ls, member, depth + 1);
				size = 0; /* the data is not in the archive */
			} else {
				ret = ls_add_member(ls, name, path, data, size);
			}
		}
		if (size && fseek(f, data + (long)((size + 1) & ~(size_t)1), SEEK_SET))
			break;
	}
	free(names);
	fclose(f);
	return ret;
}

static int ls_add_input(struct qp_linkset *ls, const char *path, int depth)
{
	char real[PATH_MAX];
	enum qp_file_kind kind;

	if (depth > LS_MAX_DEPTH)
		return 0;
	if (!realpath(path, real))
		return 0;
	kind = qp_file_kind(real);
	if (kind == QP_FILE_OBJECT)
		return ls_add_path(ls, real);
	if (kind == QP_FILE_ARCHIVE || kind == QP_FILE_THIN)
		return ls_add_archive(ls, real, kind == QP_FILE_THIN, depth);
	return 0;
}

void qp_linkset__free(struct qp_linkset *ls)
{
	size_t i;

	if (!ls)
		return;
	for (i = 0; i < ls->npaths; i++)
		free(ls->paths[i]);
	for (i = 0; i < ls->nmem; i++) {
		free(ls->mem[i].name);
		free(ls->mem[i].archive);
	}
	free(ls->paths);
	free(ls->mem);
	free(ls);
}

/* The last line of @log that links @binary, as a malloc'ed string. */
static char *ls_find_link(FILE *f, const char *binary, const char *seen, const char *root)
{
	char *line = NULL, *found = NULL, out[PATH_MAX];
	size_t cap = 0;

	while (getline(&line, &cap, f) > 0) {
		char *a = strchr(line, '\t'), *b = a ? strchr(a + 1, '\t') : NULL;

		if (!b)
			continue;
		*b = '\0';
		ls_norm(a + 1, seen, root, out);
		*b = '\t';
		if (strcmp(out, binary))
			continue;
		free(found);
		found = strdup(b + 1);
	}
	free(line);
	return found;
}

int qp_linkset__load(const char *log, const char *binary, const char *seen, const char *root,
		     struct qp_linkset **out, struct qp_error *err)
{
	char bin[PATH_MAX], in[PATH_MAX], *inputs, *tok, *save = NULL;
	struct qp_linkset *ls;
	FILE *f = fopen(log, "r");
	int ret = 0;

	*out = NULL;
	if (!f)
		return -ENOENT;
	ls_norm(binary, NULL, NULL, bin);
	inputs = ls_find_link(f, bin, seen, root);
	fclose(f);
	if (!inputs)
		return -ENOENT;
	ls = calloc(1, sizeof(*ls));
	if (!ls) {
		free(inputs);
		return qp_seterr(err, -ENOMEM, "out of memory");
	}
	inputs[strcspn(inputs, "\n")] = '\0';
	for (tok = strtok_r(inputs, "\t", &save); tok && !ret; tok = strtok_r(NULL, "\t", &save)) {
		ls_norm(tok, seen, root, in);
		ret = ls_add_input(ls, in, 0);
	}
	free(inputs);
	if (ret) {
		qp_linkset__free(ls);
		return qp_seterr(err, ret, "reading the inputs of the link of '%s'", binary);
	}
	*out = ls;
	return 0;
}

/* Does member @m of a regular archive hold exactly the bytes of @path? */
static bool ls_member_is(const struct ls_member *m, const char *path, size_t size)
{
	char a[65536], b[65536];
	FILE *fa, *fb;
	bool same;
	size_t left = size;

	if (m->size != size)
		return false;
	fa = fopen(m->archive, "rb");
	fb = fopen(path, "rb");
	same = fa && fb && !fseek(fa, m->off, SEEK_SET);
	while (same && left) {
		size_t n = left < sizeof(a) ? left : sizeof(a);

		same = fread(a, 1, n, fa) == n && fread(b, 1, n, fb) == n && !memcmp(a, b, n);
		left -= n;
	}
	if (fa)
		fclose(fa);
	if (fb)
		fclose(fb);
	return same;
}

bool qp_linkset__has(const struct qp_linkset *ls, const char *obj)
{
	char real[PATH_MAX];
	const char *base;
	struct stat st;
	size_t i;

	if (!realpath(obj, real) || stat(real, &st))
		return false;
	for (i = 0; i < ls->npaths; i++)
		if (!strcmp(ls->paths[i], real))
			return true;
	base = strrchr(real, '/');
	base = base ? base + 1 : real;
	for (i = 0; i < ls->nmem; i++)
		if (!strcmp(ls->mem[i].name, base) && ls_member_is(&ls->mem[i], real, (size_t)st.st_size))
			return true;
	return false;
}

bool qp_linkset__has_name(const struct qp_linkset *ls, const char *name)
{
	size_t i;

	for (i = 0; i < ls->npaths; i++) {
		const char *slash = strrchr(ls->paths[i], '/');

		if (!strcmp(slash ? slash + 1 : ls->paths[i], name))
			return true;
	}
	for (i = 0; i < ls->nmem; i++)
		if (!strcmp(ls->mem[i].name, name))
			return true;
	return false;
}
