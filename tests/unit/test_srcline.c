// SPDX-License-Identifier: MIT
/*
 * Source paths from debug info (builder/srcline.c): qp_srcline_path() on
 * its own, and qp_srcline__at() on objects compiled at test time the way
 * meson and QEMU compile them, in a build directory inside the tree that
 * names the source "../src/calc.c" (DWARF 4 and 5, and with the tree
 * mapped to "." as Debian's flags do), and in the source's own directory
 * with the tree mapped to "." (redis: DW_AT_comp_dir "./src").
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "srcline.h"

static char tmpdir[PATH_MAX];

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

/* qp_srcline_path(@dir, @name) must be @want. */
static void path_is(const char *dir, const char *name, const char *want)
{
	char out[256];

	CHECK_INT(qp_srcline_path(dir, name, out, sizeof(out)), 0);
	CHECK_STR(out, want);
}

static void test_path(void)
{
	char small[8];

	/* meson, QEMU: the build directory inside the tree */
	path_is("/src/qemu/build", "../hw/net/virtio-net.c", "/src/qemu/hw/net/virtio-net.c");
	path_is("/src/qemu/build", "../../x.c", "/src/x.c");
	/* in-tree builds, absolute names (CMake) */
	path_is("/src/app", "calc.c", "/src/app/calc.c");
	path_is("/src/app/_build", "/src/app/calc.c", "/src/app/calc.c");
	path_is("/src/app", "./a/./b//c.c", "/src/app/a/b/c.c");
	path_is("/src/app/", "a/../b.c", "/src/app/b.c");
	/* Debian's -ffile-prefix-map=$(CURDIR)=.: relative to the tree */
	path_is(".", "./calc.c", "calc.c");
	path_is("./build", "../src/calc.c", "src/calc.c");
	path_is(".", "../other/x.c", "../other/x.c");
	path_is("a", "../../x.c", "../x.c");
	/* no compilation directory: the name alone, folded */
	path_is(NULL, "src/../calc.c", "calc.c");
	path_is("", "/a/b/../c.c", "/a/c.c");
	path_is("/", "../../x.c", "/x.c");
	path_is(".", ".", ".");
	CHECK_INT(qp_srcline_path("/src", "a-long-name.c", small, sizeof(small)), -ENAMETOOLONG);
}

/* qp_srcline__at() of "check" in @obj: the file, or "" with none. */
static void file_of_check(const char *obj, char *file, size_t size)
{
	struct qp_srcline *s = qp_srcline__new(obj);
	int line = 0;

	file[0] = '\0';
	CHECK(s != NULL);
	CHECK_INT(qp_srcline__at(s, "check", 0, file, size, &line), 0);
	CHECK(line > 0);
	qp_srcline__free(s);
}

static void test_at(const char *fixtures)
{
	char tree[PATH_MAX], obj[PATH_MAX], want[PATH_MAX], file[PATH_MAX];
	static const char *const dwarf[] = { "-gdwarf-4", "-gdwarf-5" };
	size_t i;

	snprintf(tree, sizeof(tree), "%s/tree", tmpdir);
	CHECK_INT(sh("mkdir -p '%s/src' '%s/build' && cp '%s/lineonly/orig/calc.c' '%s/src/'", tree,
		     tree, fixtures, tree),
		  0);
	snprintf(want, sizeof(want), "%s/src/calc.c", tree);
	for (i = 0; i < sizeof(dwarf) / sizeof(dwarf[0]); i++) {
		printf("%s, compiled in build/ as ../src/calc.c\n", dwarf[i]);
		snprintf(obj, sizeof(obj), "%s/build/calc%zu.o", tree, i);
		CHECK_INT(sh("cd '%s/build' && cc -O2 %s -c ../src/calc.c -o '%s'", tree, dwarf[i], obj), 0);
		file_of_check(obj, file, sizeof(file));
		CHECK_STR(file, want);

		printf("%s, the same with the tree mapped to '.'\n", dwarf[i]);
		snprintf(obj, sizeof(obj), "%s/build/calc%zu-map.o", tree, i);
		CHECK_INT(sh("cd '%s/build' && cc -O2 %s -ffile-prefix-map='%s'=. -c ../src/calc.c -o '%s'",
			     tree, dwarf[i], tree, obj),
			  0);
		file_of_check(obj, file, sizeof(file));
		CHECK_STR(file, "src/calc.c");

		printf("%s, compiled in src/ as calc.c, the tree mapped to '.'\n", dwarf[i]);
		snprintf(obj, sizeof(obj), "%s/build/calc%zu-src.o", tree, i);
		CHECK_INT(sh("cd '%s/src' && cc -O2 %s -ffile-prefix-map='%s'=. -c calc.c -o '%s'",
			     tree, dwarf[i], tree, obj),
			  0);
		file_of_check(obj, file, sizeof(file));
		CHECK_STR(file, "src/calc.c");

		printf("%s, compiled at the top as src/calc.c\n", dwarf[i]);
		snprintf(obj, sizeof(obj), "%s/build/calc%zu-top.o", tree, i);
		CHECK_INT(sh("cd '%s' && cc -O2 %s -c src/calc.c -o '%s'", tree, dwarf[i], obj), 0);
		file_of_check(obj, file, sizeof(file));
		CHECK_STR(file, want);
	}
}

int main(void)
{
	const char *src = getenv("QP_SRC"), *tmp = getenv("QP_TMP");
	char fixtures[PATH_MAX];

	snprintf(fixtures, sizeof(fixtures), "%s/tests/fixtures/diff", src ? src : ".");
	snprintf(tmpdir, sizeof(tmpdir), "%s/test_srcline", tmp ? tmp : "/tmp");
	sh("rm -rf '%s' && mkdir -p '%s'", tmpdir, tmpdir);
	test_path();
	test_at(fixtures);
	return check_report("test_srcline");
}
