// SPDX-License-Identifier: MIT
/*
 * The diff engine on the corpus in tests/fixtures/diff: each case has
 * orig/ and patched/ C files and an `expect` file.  The orig files are
 * compiled with qpatch-cc (the flags of a deployed build) and linked into
 * the target binary, the patched ones compiled, every object pair is
 * handed to qp_diff, and the verdict is checked:
 *
 *   replaced NAME        NAME is redirected to new code
 *   new-func NAME        NAME is a new function in the patch
 *   new-var NAME         NAME is a new variable in the patch
 *   copied NAME          NAME is copied into the patch (code or read-only data
 *                        the new code uses, not redirected)
 *   absent NAME          NAME is not in the patch at all
 *   line-only NAME       NAME changed only in __LINE__ values and is left out
 *   refused NAME WHY     the build is refused; NAME's reason contains WHY
 *   src NAME             the patch refers to NAME of the target (IN_TARGET)
 *   src-local NAME SIB   the patch refers to the target's static NAME, the
 *                        one whose FILE scope also holds SIB
 *   keep NAME            before emitting: qp_diff__keep_value(NAME)
 *   kept NAME            NAME's changed initial value is kept (not refused)
 *   why NAME TEXT        NAME's report entry gives a reason containing TEXT
 *   where NAME TEXT      NAME's report entry's source location contains TEXT
 *   error TEXT           the diff fails (not a refusal) with TEXT in the message
 *   live BEFORE AFTER    for tests/integration/t_corpus.sh: the running
 *                        program's lines (regexes); not checked here
 *   listed NAME [REGEX]  for t_corpus.sh: NAME's line of qpatch-load --list
 *                        while the patch is applied ends, after the
 *                        addresses, with " REGEX" (or with nothing)
 *   size-at-most BYTES   for t_corpus.sh: the patch file is at most BYTES
 *   stacked AFTER2       for t_corpus.sh: a second patch, orig to the case's
 *                        patched2/ tree, applied over the first, makes the
 *                        program print AFTER2 (patched2/ is not read here)
 *
 * Both trees are compiled with -O2 -g, or with the flags in the case's file
 * "cflags" (one line, e.g. "-O0 -g"); the program is linked with the flags
 * in its file "ldflags" (e.g. "-rdynamic"), if any; t_corpus.sh's Makefile
 * reads both too.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "builder.h"
#include "check.h"
#include "qpatch/elf.h"

static char tmpdir[PATH_MAX];
static char qpatch_cc[PATH_MAX]; /* $QP_BIN/qpatch-cc: fixtures compile as deployed builds do */

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	char cmd[8192];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return system(cmd);
}

/* Compile every .c under @src/@rel into @out/@rel (same layout), with
 * compiler flags @cflags. */
static int compile_tree(const char *src, const char *out, const char *rel, const char *cflags,
			char objs[][PATH_MAX], int *n)
{
	char dir[PATH_MAX];
	struct dirent *de;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/%s", src, rel);
	d = opendir(dir);
	if (!d)
		return -1;
	sh("mkdir -p '%s/%s'", out, rel);
	while ((de = readdir(d))) {
		char sub[PATH_MAX];
		size_t len = strlen(de->d_name);

		if (de->d_name[0] == '.')
			continue;
		snprintf(sub, sizeof(sub), "%s%s%s", rel, *rel ? "/" : "", de->d_name);
		if (de->d_type == DT_DIR) {
			compile_tree(src, out, sub, cflags, objs, n);
		} else if (len > 2 && !strcmp(de->d_name + len - 2, ".c")) {
			snprintf(objs[*n], PATH_MAX, "%.*s.o", (int)strlen(sub) - 2, sub);
			if (sh("cd '%s' && '%s' %s -c -o '%s/%s' '%s'", src, qpatch_cc, cflags, out,
			       objs[*n], sub))
				return -1;
			(*n)++;
		}
	}
	closedir(d);
	return 0;
}

/* The compiler flags of case @casedir: its "cflags" file, or -O2 -g. */
/* The first line of the case's file @name, or @def. */
static void case_file(const char *casedir, const char *name, const char *def, char *buf,
		      size_t size)
{
	char path[PATH_MAX];
	FILE *f;

	snprintf(buf, size, "%s", def);
	snprintf(path, sizeof(path), "%s/%s", casedir, name);
	f = fopen(path, "r");
	if (!f)
		return;
	if (!fgets(buf, (int)size, f))
		snprintf(buf, size, "%s", def);
	buf[strcspn(buf, "\n")] = '\0';
	fclose(f);
}

static void case_cflags(const char *casedir, char *buf, size_t size)
{
	case_file(casedir, "cflags", "-O2 -g", buf, size);
}

static const struct qp_change *find_change(const struct qp_report *r, const char *name)
{
	size_t i;

	for (i = 0; i < r->nchanges; i++)
		if (!strcmp(r->changes[i].name, name))
			return &r->changes[i];
	return NULL;
}

/* Address of static @name in the target's FILE scope that also holds @sib. */
static uint64_t scoped_local(const char *target, const char *name, const char *sib)
{
	struct qp_elf *e;
	struct qp_elf_sym *s, *t;
	uint64_t found = 0;

	if (qp_elf__open(target, QP_ELF_NO_RELAS, &e, NULL))
		return 0;
	qp_elf_for_each_sym(e, s) {
		if (strcmp(s->name, sib) || s->bind != STB_LOCAL)
			continue;
		qp_elf_for_each_sym(e, t)
			if (!strcmp(t->name, name) && t->file_index == s->file_index)
				found = t->value;
	}
	qp_elf__free(e);
	return found;
}

static void check_src_local(const struct qp_patch *p, const char *target, const char *name,
			    const char *sib)
{
	uint64_t want = scoped_local(target, name, sib);
	size_t i;
	int seen = 0;

	CHECK(want != 0);
	for (i = 1; p && i < qp_patch__src_sym_count(p); i++) {
		const struct qp_sym *s = qp_patch__src_sym(p, i);

		if (!strcmp(s->name, name)) {
			CHECK_INT(s->value, want);
			seen = 1;
		}
	}
	CHECK(seen);
}

static void check_src(const struct qp_patch *p, const char *name)
{
	size_t i;
	int seen = 0;

	for (i = 1; p && i < qp_patch__src_sym_count(p); i++) {
		const struct qp_sym *s = qp_patch__src_sym(p, i);

		if (!strcmp(s->name, name) && s->shndx == QP_SRC_IN_TARGET && s->value)
			seen = 1;
	}
	CHECK(seen);
	if (!seen)
		fprintf(stderr, "  no IN_TARGET src symbol '%s'\n", name);
}

/* Lines of @casedir/expect with verb @verb: call @fn(NAME, REST). */
static int for_each_expect(const char *casedir, const char *verb,
			   int (*fn)(void *arg, const char *name, const char *rest), void *arg)
{
	char path[PATH_MAX], line[512];
	FILE *f;
	int ret = 0;

	snprintf(path, sizeof(path), "%s/expect", casedir);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (!ret && fgets(line, sizeof(line), f)) {
		char v[32] = "", name[128] = "", rest[256] = "";

		line[strcspn(line, "\n")] = '\0';
		if (sscanf(line, "%31s %127s %255[^\n]", v, name, rest) >= 2 && !strcmp(v, verb))
			ret = fn(arg, name, rest);
	}
	fclose(f);
	return ret;
}

static int keep_one(void *arg, const char *name, const char *rest)
{
	struct qp_error err = { 0 };

	(void)rest;
	return qp_diff__keep_value(arg, name, &err);
}

static int error_one(void *arg, const char *name, const char *rest)
{
	const struct qp_error *err = arg;
	char text[400];

	snprintf(text, sizeof(text), "%s%s%s", name, *rest ? " " : "", rest);
	CHECK_CONTAINS(err->msg, text);
	return 0;
}

static void check_expect(const char *casedir, const char *target, const struct qp_report *r,
			 const struct qp_patch *p, int ret, const struct qp_error *err)
{
	char path[PATH_MAX], line[512];
	int refused = 0, failed = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/expect", casedir);
	f = fopen(path, "r");
	CHECK(f != NULL);
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char verb[32] = "", name[128] = "", rest[256] = "";
		const struct qp_change *c;

		line[strcspn(line, "\n")] = '\0';
		if (sscanf(line, "%31s %127s %255[^\n]", verb, name, rest) < 2)
			continue;
		c = find_change(r, name);
		if (!strcmp(verb, "live") || !strcmp(verb, "keep") || !strcmp(verb, "listed") ||
		    !strcmp(verb, "size-at-most") || !strcmp(verb, "stacked")) {
			continue;
		} else if (!strcmp(verb, "error")) {
			failed = 1;
			continue;
		} else if (!strcmp(verb, "kept")) {
			CHECK(c && c->kind == QP_CHANGE_KEPT_VALUE);
		} else if (!strcmp(verb, "why")) {
			CHECK_CONTAINS(c ? c->why : NULL, rest);
		} else if (!strcmp(verb, "where")) {
			CHECK_CONTAINS(c ? c->where : NULL, rest);
		} else if (!strcmp(verb, "replaced")) {
			CHECK(c && c->kind == QP_CHANGE_REPLACED);
		} else if (!strcmp(verb, "new-func")) {
			CHECK(c && c->kind == QP_CHANGE_NEW_FUNC);
		} else if (!strcmp(verb, "copied")) {
			CHECK(c && c->kind == QP_CHANGE_COPIED);
		} else if (!strcmp(verb, "new-var")) {
			CHECK(c && c->kind == QP_CHANGE_NEW_VAR);
		} else if (!strcmp(verb, "line-only")) {
			CHECK(c && c->kind == QP_CHANGE_LINE_ONLY);
		} else if (!strcmp(verb, "absent")) {
			CHECK(c == NULL);
		} else if (!strcmp(verb, "refused")) {
			refused = 1;
			CHECK(c && c->kind == QP_CHANGE_REFUSED);
			CHECK_CONTAINS(c ? c->why : NULL, rest);
		} else if (!strcmp(verb, "src-local")) {
			check_src_local(p, target, name, rest);
		} else if (!strcmp(verb, "src")) {
			check_src(p, name);
		} else {
			fprintf(stderr, "%s: unknown verb '%s'\n", path, verb);
			CHECK(0);
		}
		if (!c && strcmp(verb, "absent") && strncmp(verb, "src", 3))
			fprintf(stderr, "  case %s: no report entry for '%s'\n", casedir, name);
	}
	fclose(f);
	if (failed) {
		CHECK(ret != 0 && ret != QP_EREFUSED);
		for_each_expect(casedir, "error", error_one, (void *)err);
	} else if (refused) {
		CHECK_INT(ret, QP_EREFUSED);
	} else {
		CHECK_INT(ret, 0);
		if (ret)
			fprintf(stderr, "  case %s: %s\n", casedir, err->msg);
	}
}

static void run_case(const char *fixtures, const char *name)
{
	static char orig_objs[64][PATH_MAX], pat_objs[64][PATH_MAX];
	char casedir[PATH_MAX], src[PATH_MAX], out[PATH_MAX], out2[PATH_MAX], target[PATH_MAX];
	char cflags[256], ldflags[256];
	struct qp_report rep = { 0 };
	struct qp_error err = { 0 };
	struct qp_patch *patch = NULL;
	struct qp_diff *d = NULL;
	int norig = 0, npat = 0, i, ret;

	printf("case %s\n", name);
	snprintf(casedir, sizeof(casedir), "%s/%s", fixtures, name);
	snprintf(out, sizeof(out), "%s/%s/orig", tmpdir, name);
	snprintf(out2, sizeof(out2), "%s/%s/patched", tmpdir, name);
	snprintf(src, sizeof(src), "%s/orig", casedir);
	case_cflags(casedir, cflags, sizeof(cflags));
	case_file(casedir, "ldflags", "", ldflags, sizeof(ldflags));
	CHECK_INT(compile_tree(src, out, "", cflags, orig_objs, &norig), 0);
	snprintf(src, sizeof(src), "%s/patched", casedir);
	CHECK_INT(compile_tree(src, out2, "", cflags, pat_objs, &npat), 0);
	snprintf(target, sizeof(target), "%s/%s/target", tmpdir, name);
	{
		char cmd[8192] = "";
		size_t len = 0;

		for (i = 0; i < norig; i++)
			len += (size_t)snprintf(cmd + len, sizeof(cmd) - len, " '%s/%s'", out, orig_objs[i]);
		CHECK_INT(sh("cc -Wl,--build-id %s -o '%s' %s", ldflags, target, cmd), 0);
	}
	ret = qp_diff__new(target, &d, &err);
	CHECK_INT(ret, 0);
	if (!ret)
		CHECK_INT(for_each_expect(casedir, "keep", keep_one, d), 0);
	for (i = 0; !ret && i < npat; i++) {
		char a[PATH_MAX], b[PATH_MAX];

		snprintf(a, sizeof(a), "%s/%s", out, pat_objs[i]);
		snprintf(b, sizeof(b), "%s/%s", out2, pat_objs[i]);
		/* a patched object without an original comes from a new file */
		ret = qp_diff__add_object(d, access(a, R_OK) ? NULL : a, b, pat_objs[i], &err);
		CHECK_INT(ret, 0);
	}
	if (!ret)
		ret = qp_diff__emit(d, NULL, &patch, &rep, &err);
	check_expect(casedir, target, &rep, patch, ret, &err);
	if (!ret) {
		/* the emitted patch survives the writer's and reader's validation */
		void *buf = NULL;
		size_t size = 0;
		struct qp_patch *back;

		CHECK_INT(qp_patch__write_mem(patch, &buf, &size, &err), 0);
		back = qp_patch__open_mem(buf, size, &err);
		CHECK(back != NULL);
		qp_patch__free(back);
		free(buf);
	}
	qp_patch__free(patch);
	qp_diff__free(d);
	qp_report__release(&rep);
}

static void test_no_change(const char *fixtures)
{
	char src[PATH_MAX], out[PATH_MAX], target[PATH_MAX], obj[PATH_MAX];
	static char objs[8][PATH_MAX];
	struct qp_report rep = { 0 };
	struct qp_error err = { 0 };
	struct qp_patch *patch = NULL;
	struct qp_diff *d = NULL;
	int n = 0;

	printf("case no-change\n");
	snprintf(src, sizeof(src), "%s/body/orig", fixtures);
	snprintf(out, sizeof(out), "%s/nochange", tmpdir);
	CHECK_INT(compile_tree(src, out, "", "-O2 -g", objs, &n), 0);
	snprintf(target, sizeof(target), "%s/target", out);
	CHECK_INT(sh("cc -o '%s' '%s/main.o' '%s/calc.o'", target, out, out), 0);
	CHECK_INT(qp_diff__new(target, &d, &err), 0);
	snprintf(obj, sizeof(obj), "%s/calc.o", out);
	CHECK_INT(qp_diff__add_object(d, obj, obj, "calc.o", &err), 0);
	CHECK_INT(qp_diff__emit(d, NULL, &patch, &rep, &err), -ENODATA);
	CHECK_CONTAINS(err.msg, "nothing to patch");
	CHECK(patch == NULL);
	qp_diff__free(d);
	qp_report__release(&rep);
}

/* Diff lineonly's calc.o and main.o, built in @orig/@in and @pat/@in into
 * @orig/@in/prog: compute() is replaced, check() found to have only moved. */
static void check_lineonly_diff(const char *orig, const char *pat, const char *in)
{
	static const char *const objs[] = { "calc.o", "main.o" };
	char target[PATH_MAX], a[PATH_MAX], b[PATH_MAX];
	struct qp_report rep = { 0 };
	struct qp_error err = { 0 };
	struct qp_patch *patch = NULL;
	struct qp_diff *d = NULL;
	const struct qp_change *c;
	size_t i;
	int ret;

	snprintf(target, sizeof(target), "%s/%s/prog", orig, in);
	CHECK_INT(sh("cd '%s/%s' && cc -o prog calc.o main.o", orig, in), 0);
	ret = qp_diff__new(target, &d, &err);
	CHECK_INT(ret, 0);
	if (!ret)
		ret = qp_diff__set_sources(d, orig, orig, pat);
	CHECK_INT(ret, 0);
	for (i = 0; !ret && i < 2; i++) {
		snprintf(a, sizeof(a), "%s/%s/%s", orig, in, objs[i]);
		snprintf(b, sizeof(b), "%s/%s/%s", pat, in, objs[i]);
		ret = qp_diff__add_object(d, a, b, objs[i], &err);
		CHECK_INT(ret, 0);
	}
	if (!ret)
		ret = qp_diff__emit(d, NULL, &patch, &rep, &err);
	CHECK_INT(ret, 0);
	c = find_change(&rep, "compute");
	CHECK(c && c->kind == QP_CHANGE_REPLACED);
	c = find_change(&rep, "check");
	CHECK(c && c->kind == QP_CHANGE_LINE_ONLY);
	qp_patch__free(patch);
	qp_diff__free(d);
	qp_report__release(&rep);
}

/*
 * Case lineonly built elsewhere than at the top of its tree, the debug
 * info naming its sources relative to the compilation directory: as meson
 * and QEMU build, in build/ as "../src/calc.c" (@in "build", @map NULL),
 * or as redis builds with Debian's flags, in src/ as "calc.c" with the
 * tree mapped to "." (@in "src", @map "."; DW_AT_comp_dir "./src").  The
 * patched version is built at the original's path (as qpatch-build's
 * builds are; -ffile-prefix-map here).  check(), whose __LINE__ values
 * only moved, is found in the sources and left out.
 */
static void test_out_of_tree(const char *fixtures, const char *in, const char *map)
{
	char orig[PATH_MAX], pat[PATH_MAX];
	const char *srcs = strcmp(in, "src") ? "../src/calc.c ../src/main.c" : "calc.c main.c";
	size_t i;

	printf("case lineonly, built in %s/%s%s\n", in, map ? ", the tree mapped to " : "",
	       map ? map : "");
	snprintf(orig, sizeof(orig), "%s/oot-%s/orig", tmpdir, in);
	snprintf(pat, sizeof(pat), "%s/oot-%s/patched", tmpdir, in);
	CHECK_INT(sh("mkdir -p '%s' '%s' && cp -r '%s/lineonly/orig' '%s/src' && "
		     "cp -r '%s/lineonly/patched' '%s/src' && mkdir -p '%s/%s' '%s/%s'",
		     orig, pat, fixtures, orig, fixtures, pat, orig, in, pat, in),
		  0);
	for (i = 0; i < 2; i++)
		CHECK_INT(sh("cd '%s/%s' && cc -O2 -g -ffunction-sections -fdata-sections "
			     "-ffile-prefix-map='%s'='%s' -c %s",
			     i ? pat : orig, in, i ? pat : orig, map ? map : orig, srcs),
			  0);
	check_lineonly_diff(orig, pat, in);
}

/*
 * Case lineonly configured out of tree with the flags taken in the build
 * directory (CFLAGS="$(dpkg-buildflags --get CFLAGS)" ../src/configure, run
 * in build/): build/ itself is mapped to ".", DW_AT_comp_dir is "." and the
 * sources "../src/calc.c", which is build/../src/calc.c, not a path under
 * the tree's root.  Only the command says which directory "." was: the
 * objects are compiled with qpatch-cc, whose record beside each object keeps
 * it.  check(), whose __LINE__ values only moved, must be found in the
 * sources and left out.
 */
static void test_mapped_build_dir(const char *fixtures)
{
	char orig[PATH_MAX], pat[PATH_MAX];
	static const char *const names[] = { "calc", "main" };
	size_t i, j;

	printf("case lineonly, built in build/ mapped to \".\" by the build's own flags\n");
	snprintf(orig, sizeof(orig), "%s/oot-mapped/orig", tmpdir);
	snprintf(pat, sizeof(pat), "%s/oot-mapped/patched", tmpdir);
	CHECK_INT(sh("mkdir -p '%s/build' '%s/build' && cp -r '%s/lineonly/orig' '%s/src' && "
		     "cp -r '%s/lineonly/patched' '%s/src'",
		     orig, pat, fixtures, orig, fixtures, pat),
		  0);
	for (i = 0; i < 2; i++)
		for (j = 0; j < 2; j++)
			CHECK_INT(sh("cd '%s/build' && '%s' -O2 -g -ffile-prefix-map='%s/build'=. "
				     "-c -o %s.o ../src/%s.c",
				     i ? pat : orig, qpatch_cc, i ? pat : orig, names[j], names[j]),
				  0);
	check_lineonly_diff(orig, pat, "build");
}

int main(void)
{
	const char *src = getenv("QP_SRC"), *tmp = getenv("QP_TMP"), *bin = getenv("QP_BIN");
	char fixtures[PATH_MAX];
	struct dirent **names;
	int n, i;

	/* the flags qpatch-cc adds (sections, -flive-patching) decide what changes */
	snprintf(qpatch_cc, sizeof(qpatch_cc), "%s/qpatch-cc", bin ? bin : ".");
	if (access(qpatch_cc, X_OK)) {
		fprintf(stderr, "test_diff: no '%s' (set QP_BIN)\n", qpatch_cc);
		return 1;
	}

	snprintf(fixtures, sizeof(fixtures), "%s/tests/fixtures/diff", src ? src : ".");
	snprintf(tmpdir, sizeof(tmpdir), "%s/test_diff", tmp ? tmp : "/tmp");
	sh("rm -rf '%s' && mkdir -p '%s'", tmpdir, tmpdir);
	n = scandir(fixtures, &names, NULL, alphasort);
	CHECK(n > 2);
	for (i = 0; i < n; i++) {
		if (names[i]->d_name[0] != '.')
			run_case(fixtures, names[i]->d_name);
		free(names[i]);
	}
	free(names);
	test_no_change(fixtures);
	test_out_of_tree(fixtures, "build", NULL);
	test_out_of_tree(fixtures, "src", ".");
	test_mapped_build_dir(fixtures);
	return check_report("test_diff");
}
