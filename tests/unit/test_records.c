// SPDX-License-Identifier: MIT
/*
 * qp_records: qpatch-cc's records of compilations read back, written here
 * by hand in the format qpatch-cc writes (cc_main.c): the fields of
 * OBJ.cmd, and dependency files as gcc writes them (continued lines,
 * escaped spaces, "$$", the phony rules of -MP), paths relative to the
 * compilation's directory, outside the tree, through "..".  Records that
 * are not whole (a build writing one) are skipped.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "records.h"

static char root[PATH_MAX];

/* Paths as a build saw them are under "/seen" (the original tree). */
static int rel_of(void *arg, const char *path, char *out)
{
	size_t n = strlen("/seen");

	(void)arg;
	if (strncmp(path, "/seen", n) || (path[n] != '/' && path[n]))
		return -1;
	snprintf(out, PATH_MAX, "%s", path[n] ? path + n + 1 : "");
	return 0;
}

static void put(const char *rel, const char *data, size_t len)
{
	char path[PATH_MAX], dir[PATH_MAX], *p;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	snprintf(dir, sizeof(dir), "%s", path);
	for (p = strchr(dir + strlen(root) + 1, '/'); p; p = strchr(p + 1, '/')) {
		*p = '\0';
		mkdir(dir, 0755);
		*p = '/';
	}
	f = fopen(path, "wb");
	CHECK(f != NULL);
	if (f) {
		CHECK(fwrite(data, 1, len, f) == len);
		fclose(f);
	}
}

#define PUT_CMD(rel, lit) put(rel, lit, sizeof(lit)) /* with the last NUL */
#define PUT_TEXT(rel, lit) put(rel, lit, sizeof(lit) - 1)

static const struct qp_record *find(const struct qp_records *r, const char *obj)
{
	size_t i;

	for (i = 0; i < qp_records__count(r); i++)
		if (!strcmp(qp_records__get(r, i)->obj_rel, obj))
			return qp_records__get(r, i);
	return NULL;
}

static int has_dep(const struct qp_record *r, const char *dep)
{
	size_t i;

	for (i = 0; i < r->ndeps; i++)
		if (!strcmp(r->deps[i], dep))
			return 1;
	return 0;
}

int main(void)
{
	const char *tmp = getenv("QP_TMP");
	struct qp_records *r = NULL;
	const struct qp_record *x, *y, *m;
	struct qp_error err = { 0 };
	char cmd[PATH_MAX];

	snprintf(root, sizeof(root), "%s/test_records.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	mkdir(tmp && *tmp ? tmp : "/tmp", 0755);
	if (!mkdtemp(root)) {
		CHECK(!"mkdtemp");
		return check_report("test_records");
	}

	/* deps/lib/x.o: the dependency file from gcc -MD, continued lines,
	 * a system header, a header through "..", a name with a space */
	PUT_CMD("deps/lib/.qpatch-cc/x.o.cmd",
		"qpatch-cc 1\0/seen/deps/lib\0/seen/deps/lib/x.c\0/seen/deps/lib/x.o\0"
		"-O2\0-I../inc\0-DNAME=\"a b\"\0-c\0-o\0x.o\0x.c");
	PUT_TEXT("deps/lib/.qpatch-cc/x.o.d",
		 "x.o: x.c /usr/include/stdio.h ../inc/foo.h \\\n"
		 " sub/../bar.h my\\ dir/h$$.h\n");
	/* y.o: the build's own -MMD -MP file (phony rules after the rule) */
	PUT_CMD("deps/lib/.qpatch-cc/y.o.cmd",
		"qpatch-cc 1\0/seen/deps/lib\0/seen/deps/lib/y.c\0/seen/deps/lib/y.o\0-c\0y.c");
	PUT_TEXT("deps/lib/.qpatch-cc/y.o.d", "y.o: y.c foo.h\n\nfoo.h:\n");
	/* main.o: a dependency file that does not name the source (-MF
	 * /dev/null copied as empty): what it reads is unknown */
	PUT_CMD(".qpatch-cc/main.o.cmd",
		"qpatch-cc 1\0/seen\0/seen/main.c\0/seen/main.o\0-c\0main.c");
	PUT_TEXT(".qpatch-cc/main.o.d", "");
	/* not records: cut short (no final NUL), another version, another
	 * suffix, a .cmd outside a .qpatch-cc directory */
	put(".qpatch-cc/cut.o.cmd", "qpatch-cc 1\0/seen\0/seen/cut.c\0/seen/cut.o\0-c",
	    sizeof("qpatch-cc 1\0/seen\0/seen/cut.c\0/seen/cut.o\0-c") - 1);
	PUT_CMD(".qpatch-cc/v2.o.cmd", "qpatch-cc 2\0/seen\0/seen/v2.c\0/seen/v2.o\0-c\0v2.c");
	PUT_CMD(".qpatch-cc/z.o.cmd.1234", "qpatch-cc 1\0/seen\0/seen/z.c\0/seen/z.o\0-c\0z.c");
	PUT_CMD("other/w.o.cmd", "qpatch-cc 1\0/seen\0/seen/w.c\0/seen/w.o\0-c\0w.c");
	/* an object outside the tree: no use */
	PUT_CMD(".qpatch-cc/out.o.cmd", "qpatch-cc 1\0/elsewhere\0/elsewhere/o.c\0/elsewhere/o.o\0-c\0o.c");

	CHECK_INT(qp_records__load(root, true, rel_of, NULL, &r, &err), 0);
	CHECK_INT(qp_records__count(r), 3);
	x = find(r, "deps/lib/x.o");
	y = find(r, "deps/lib/y.o");
	m = find(r, "main.o");
	CHECK(x && y && m);
	if (x) {
		CHECK_STR(x->cwd_rel, "deps/lib");
		CHECK_STR(x->src_rel, "deps/lib/x.c");
		CHECK_STR(x->args[0], "-O2");
		CHECK_STR(x->args[2], "-DNAME=\"a b\"");
		CHECK_STR(x->args[6], "x.c");
		CHECK(x->args[7] == NULL);
		CHECK(x->deps_known);
		CHECK_INT(x->ndeps, 4); /* stdio.h is outside the tree */
		CHECK(has_dep(x, "deps/lib/x.c"));
		CHECK(has_dep(x, "deps/inc/foo.h"));
		CHECK(has_dep(x, "deps/lib/bar.h"));
		CHECK(has_dep(x, "deps/lib/my dir/h$.h"));
	}
	if (y) {
		CHECK(y->deps_known);
		CHECK_INT(y->ndeps, 2); /* the phony rule "foo.h:" is not read */
		CHECK(has_dep(y, "deps/lib/foo.h"));
	}
	if (m) {
		CHECK_STR(m->cwd_rel, "");
		CHECK(!m->deps_known);
	}
	qp_records__free(r);

	/* without dependency files */
	CHECK_INT(qp_records__load(root, false, rel_of, NULL, &r, &err), 0);
	x = find(r, "deps/lib/x.o");
	CHECK(x && !x->deps_known && !x->ndeps);
	qp_records__free(r);

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	CHECK_INT(system(cmd), 0);
	return check_report("test_records");
}
