// SPDX-License-Identifier: MIT
/*
 * Prefix maps of a recorded compilation, undone on a debug-info path
 * (prefixmap.h).
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prefixmap.h"
#include "srcline.h"

#define PMAP_MAGIC "qpatch-cc 1"
#define PMAP_MAX_SIZE (1 << 20)

/* The record of the compilation of @obj, as qpatch-cc names it: beside the
 * object in .qpatch-cc/, or in that directory itself for an object that
 * lies there (a split "cc -o prog a.c"). */
static int pmap_record_path(const char *obj, char *out, size_t size)
{
	const char *slash = strrchr(obj, '/');
	size_t n = slash ? (size_t)(slash - obj) : 0;
	const char *base = slash ? slash + 1 : obj;
	int len;

	if (n >= 11 && !strncmp(slash - 11, "/.qpatch-cc", 11))
		len = snprintf(out, size, "%.*s/%s.cmd", (int)n, obj, base);
	else if (slash)
		len = snprintf(out, size, "%.*s/.qpatch-cc/%s.cmd", (int)n, obj, base);
	else
		len = snprintf(out, size, ".qpatch-cc/%s.cmd", base);
	return len < 0 || (size_t)len >= size ? -1 : 0;
}

/* The whole record, NUL-terminated fields; NULL when unreadable or not one. */
static char *pmap_slurp(const char *path, size_t *size)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;

	if (!f)
		return NULL;
	if (!fseek(f, 0, SEEK_END) && (n = ftell(f)) > 0 && n <= PMAP_MAX_SIZE &&
	    !fseek(f, 0, SEEK_SET) && (buf = malloc((size_t)n + 1)) &&
	    fread(buf, 1, (size_t)n, f) == (size_t)n && !buf[n - 1] && !strcmp(buf, PMAP_MAGIC)) {
		buf[n] = '\0';
		*size = (size_t)n;
		fclose(f);
		return buf;
	}
	free(buf);
	fclose(f);
	return NULL;
}

/* "OLD=NEW" of a prefix-map argument, or NULL. */
static const char *pmap_arg(const char *arg)
{
	static const char *const opts[] = { "-ffile-prefix-map=", "-fdebug-prefix-map=" };
	size_t i, n;

	for (i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
		n = strlen(opts[i]);
		if (!strncmp(arg, opts[i], n) && strchr(arg + n, '='))
			return arg + n;
	}
	return NULL;
}

/*
 * One map "OLD=NEW" (split at the first '=', as gcc does) undone on
 * @path: OLD (relative to @cwd when it is) joined with what follows NEW in
 * @path, into @out; false when the map did not make @path.
 */
static bool pmap_undo(const char *map, const char *cwd, const char *path, char *out, size_t size)
{
	const char *eq = strchr(map, '=');
	char old[PATH_MAX], new[PATH_MAX], oldabs[PATH_MAX];
	const char *rest;
	size_t n;

	if ((size_t)(eq - map) >= sizeof(old))
		return false;
	snprintf(old, sizeof(old), "%.*s", (int)(eq - map), map);
	if (!old[0] || qp_srcline_path(NULL, eq + 1, new, sizeof(new)))
		return false;
	n = strlen(new);
	if (!strcmp(new, ".") && path[0] != '/')
		rest = path;
	else if (!strncmp(path, new, n) && (path[n] == '/' || !path[n]) && strcmp(new, "."))
		rest = path + n + (path[n] == '/');
	else
		return false;
	if (qp_srcline_path(cwd, old, oldabs, sizeof(oldabs)) || oldabs[0] != '/')
		return false;
	return !qp_srcline_path(oldabs, rest[0] ? rest : ".", out, size);
}

bool qp_prefix_unmap(const char *obj, const char *path, qp_prefix_unmap_fn fn, void *arg)
{
	char rec[PATH_MAX], cand[PATH_MAX];
	const char **maps = NULL, *cwd, *p, *m;
	size_t size, nmaps = 0, i, field;
	bool found = false;
	char *text;

	if (pmap_record_path(obj, rec, sizeof(rec)) || !(text = pmap_slurp(rec, &size)))
		return false;
	/* "qpatch-cc 1", the directory it ran in, source, object, arguments */
	cwd = text + strlen(text) + 1;
	for (p = text, field = 0; p < text + size; p += strlen(p) + 1, field++)
		if (field >= 4 && (m = pmap_arg(p))) {
			const char **v = realloc(maps, (nmaps + 1) * sizeof(*v));

			if (!v)
				break;
			maps = v;
			maps[nmaps++] = m;
		}
	if (cwd < text + size && cwd[0] == '/')
		for (i = nmaps; i-- > 0 && !found;)
			found = pmap_undo(maps[i], cwd, path, cand, sizeof(cand)) && fn(cand, arg);
	free(maps);
	free(text);
	return found;
}
