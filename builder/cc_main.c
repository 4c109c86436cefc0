// SPDX-License-Identifier: MIT
/*
 * qpatch-cc: the compiler wrapper for builds that will be live-patched.
 *
 * Runs the real compiler ($QPATCH_REAL_CC, default "cc") with
 * -ffunction-sections -fdata-sections added, so that every function and
 * variable gets its own section and the builder can compare them one by
 * one.  When $QPATCH_CC_LOG names a file, every successful compilation with
 * -c appends one line "CWD<TAB>SOURCE<TAB>OBJECT" (absolute paths) to it;
 * qpatch-build reads that to know which objects a build produced.  Every
 * link goes to $QPATCH_CC_LOG.links (see cc_log_link()).
 *
 * $QPATCH_PREFIX_MAP="FROM=TO" adds -ffile-prefix-map=FROM=TO: qpatch-build
 * builds copies of the trees elsewhere, and this keeps __FILE__ and debug
 * paths (and so the build-id) what a build in the original tree gives.
 *
 * Every argument goes to the compiler, "--version" and "--help" included:
 * build systems run "$CC --version" to learn which compiler they have.
 * qpatch-cc's own version is "qpatch-cc --qpatch-version" (the only
 * argument), an option no compiler has.
 *
 * Built with QP_CXX defined, this is qpatch-c++, the same wrapper for the
 * C++ compiler driver ($QPATCH_REAL_CXX, default "c++"), for builds that
 * link their C objects with it (QEMU's meson build links with c++): its
 * links are logged, so qpatch-build learns which objects the program is
 * made of.  It logs and compiles C sources as qpatch-cc does; a command
 * with no C source (C++ code, which qpatch does not compare, and links)
 * runs with no flag added, so C++ objects are what the plain C++ compiler
 * makes and a program deployed with it builds the same.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "filekind.h"
#include "qpatch/version.h"

#ifdef QP_CXX
#define CC_NAME "qpatch-c++"
#define CC_REAL_ENV "QPATCH_REAL_CXX"
#define CC_REAL_DEFAULT "c++"
#define CC_ALWAYS_SECTIONS 0 /* the section flags only with a C source */
#else
#define CC_NAME "qpatch-cc"
#define CC_REAL_ENV "QPATCH_REAL_CC"
#define CC_REAL_DEFAULT "cc"
#define CC_ALWAYS_SECTIONS 1
#endif

static int is_c_source(const char *arg)
{
	size_t n = strlen(arg);

	return arg[0] != '-' && n > 2 && !strcmp(arg + n - 2, ".c");
}

/* A source file the compiler driver compiles that is not C (C++,
 * assembler): "c++ -o prog main.cpp util.c" compiles it in the link step. */
static int is_other_source(const char *arg)
{
	static const char *const ext[] = { ".cc", ".cpp", ".cxx", ".c++", ".C", ".s", ".S" };
	const char *dot = strrchr(arg, '.');
	size_t i;

	for (i = 0; arg[0] != '-' && dot && i < sizeof(ext) / sizeof(ext[0]); i++)
		if (!strcmp(dot, ext[i]))
			return 1;
	return 0;
}

/* Returns 0, or -1 when the result does not fit. */
static int abs_path(const char *cwd, const char *path, char *out, size_t size)
{
	int n;

	if (path[0] == '/')
		n = snprintf(out, size, "%s", path);
	else
		n = snprintf(out, size, "%s/%s", cwd, path);
	return n < 0 || (size_t)n >= size ? -1 : 0;
}

/* Append one line per compiled source; a single write() with O_APPEND keeps
 * lines whole under parallel make. */
static void cc_log(int argc, char **argv)
{
	const char *log = getenv("QPATCH_CC_LOG");
	const char *out = NULL;
	char cwd[PATH_MAX], src[PATH_MAX], obj[PATH_MAX], line[3 * PATH_MAX + 4];
	int i, compile = 0, nsrc = 0, fd;

	if (!log || !*log || !getcwd(cwd, sizeof(cwd)))
		return;
	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-c"))
			compile = 1;
		else if (!strcmp(argv[i], "-o") && i + 1 < argc)
			out = argv[++i];
		else if (is_c_source(argv[i]))
			nsrc++;
	}
	if (!compile || !nsrc || (out && nsrc > 1))
		return;
	fd = open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		fprintf(stderr, CC_NAME ": unable to open '%s': %s\n", log, strerror(errno));
		return;
	}
	for (i = 1; i < argc; i++) {
		const char *base;
		int n;

		if (!strcmp(argv[i], "-o")) {
			i++;
			continue;
		}
		if (!is_c_source(argv[i]))
			continue;
		if (abs_path(cwd, argv[i], src, sizeof(src)))
			continue;
		if (out) {
			n = abs_path(cwd, out, obj, sizeof(obj));
		} else {
			base = strrchr(argv[i], '/');
			base = base ? base + 1 : argv[i];
			n = snprintf(obj, sizeof(obj), "%s/%.*s.o", cwd,
				     (int)strlen(base) - 2, base);
			n = n < 0 || (size_t)n >= sizeof(obj) ? -1 : 0;
		}
		if (n)
			continue;
		n = snprintf(line, sizeof(line), "%s\t%s\t%s\n", cwd, src, obj);
		if (n > 0 && (size_t)n < sizeof(line) && write(fd, line, (size_t)n) != n)
			fprintf(stderr, CC_NAME ": unable to write '%s'\n", log);
	}
	close(fd);
}

static int link_add(char *line, size_t size, size_t *len, const char *cwd, const char *arg)
{
	char path[PATH_MAX];
	int n;

	if (abs_path(cwd, arg, path, sizeof(path)) || qp_file_kind(path) == QP_FILE_OTHER)
		return 0;
	n = snprintf(line + *len, size - *len, "\t%s", path);
	if (n < 0 || (size_t)n >= size - *len)
		return -1;
	*len += (size_t)n;
	return 0;
}

/*
 * A link (@args: the whole command, NULL-terminated): one line
 * "CWD<TAB>OUTPUT<TAB>INPUT..." in $QPATCH_CC_LOG.links, the inputs being
 * the objects and archives it names (also inside -Wl,), so that
 * qpatch-build knows which objects make up the binary it patches.
 */
static void cc_log_link(char **args)
{
	const char *log = getenv("QPATCH_CC_LOG"), *out = "a.out";
	char cwd[PATH_MAX], path[PATH_MAX + 8], outp[PATH_MAX], *line;
	size_t size = 1 << 20, len;
	int i, fd, bad = 0;

	if (!log || !*log || !getcwd(cwd, sizeof(cwd)))
		return;
	for (i = 1; args[i]; i++)
		if (!strcmp(args[i], "-o") && args[i + 1])
			out = args[++i];
	if (abs_path(cwd, out, outp, sizeof(outp)) || !(line = malloc(size)))
		return;
	len = (size_t)snprintf(line, size, "%s\t%s", cwd, outp);
	for (i = 1; args[i] && !bad; i++) {
		if (!strcmp(args[i], "-o")) {
			i++;
		} else if (!strncmp(args[i], "-Wl,", 4)) {
			char *copy = strdup(args[i] + 4), *tok, *save = NULL;

			for (tok = copy ? strtok_r(copy, ",", &save) : NULL; tok && !bad;
			     tok = strtok_r(NULL, ",", &save))
				bad = tok[0] != '-' && link_add(line, size, &len, cwd, tok);
			free(copy);
		} else if (args[i][0] != '-') {
			bad = link_add(line, size, &len, cwd, args[i]);
		}
	}
	snprintf(path, sizeof(path), "%s.links", log);
	if (!bad && len + 1 < size && (fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644)) >= 0) {
		line[len++] = '\n';
		if (write(fd, line, len) != (ssize_t)len)
			fprintf(stderr, CC_NAME ": unable to write '%s'\n", path);
		close(fd);
	}
	free(line);
}

/*
 * While qpatch-build builds its copy of the tree (QPATCH_PREFIX_MAP is
 * "COPY=ORIGINAL"), an argument naming the original tree (a build
 * directory configured there: "-iquote /src/include") would compile the
 * copy against the original's headers, and a fix in a header would be
 * missed.  Such arguments are written to QPATCH_CC_LOG.leaks, and
 * qpatch-build refuses the build.
 */
static void cc_check_leaks(int argc, char **argv)
{
	const char *map = getenv("QPATCH_PREFIX_MAP"), *log = getenv("QPATCH_CC_LOG");
	const char *orig = map ? strchr(map, '=') : NULL;
	char path[PATH_MAX + 8], line[2 * PATH_MAX];
	size_t n;
	int i, fd;

	if (!orig || !log || !*log || !*++orig)
		return;
	n = strlen(orig);
	for (i = 1; i < argc; i++) {
		const char *at = strstr(argv[i], orig);

		if (!at || (at[n] != '/' && at[n] != '\0'))
			continue;
		snprintf(path, sizeof(path), "%s.leaks", log);
		fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
		if (fd < 0)
			return;
		n = (size_t)snprintf(line, sizeof(line), "%s\n", argv[i]);
		if (write(fd, line, n < sizeof(line) ? n : sizeof(line) - 1) < 0)
			n = 0;
		close(fd);
		return;
	}
}

/* Run the real compiler with @args (NULL-terminated); returns its status. */
static int cc_run(char **args)
{
	int status;
	pid_t pid = fork();

	if (pid < 0) {
		perror(CC_NAME ": fork");
		return 1;
	}
	if (!pid) {
		execvp(args[0], args);
		fprintf(stderr, CC_NAME ": unable to run '%s': %s\n", args[0], strerror(errno));
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return 1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

static int has_arg(int argc, char **argv, const char *a)
{
	int i;

	for (i = 1; i < argc; i++)
		if (!strcmp(argv[i], a))
			return 1;
	return 0;
}

/* Arguments that only matter to the linker. */
static int is_link_only(const char *a)
{
	size_t n = strlen(a);

	return !strncmp(a, "-l", 2) || !strncmp(a, "-L", 2) || !strncmp(a, "-Wl,", 4) ||
	       !strcmp(a, "-shared") || !strcmp(a, "-static") || !strcmp(a, "-rdynamic") ||
	       !strcmp(a, "-pie") || !strcmp(a, "-no-pie") ||
	       (a[0] != '-' && ((n > 2 && (!strcmp(a + n - 2, ".o") || !strcmp(a + n - 2, ".a"))) ||
				strstr(a, ".so")));
}

/*
 * "cc -o prog a.c b.c -lm" compiles and links in one go, leaving no object
 * to compare.  Do what the compiler driver does, with objects that stay:
 * compile each C source to OUTDIR/.qpatch-cc/PROG-SRC.o (logged like any
 * -c compilation), then link those; other sources (C++, assembler) are
 * compiled by the link command, as before.  The binary is the same
 * either way.
 */
static int cc_split(int argc, char **argv, char **extra, int nextra, const char *cc)
{
	const char *out = "a.out";
	char **args = calloc((size_t)argc + (size_t)nextra + 4, sizeof(*args));
	char **objs = calloc((size_t)argc, sizeof(*objs));
	char dir[PATH_MAX], *slash;
	int i, j, k, ret = 0;

	if (!args || !objs)
		return 1;
	for (i = 1; i < argc - 1; i++)
		if (!strcmp(argv[i], "-o"))
			out = argv[i + 1];
	snprintf(dir, sizeof(dir), "%s", out);
	slash = strrchr(dir, '/');
	if (slash)
		snprintf(slash + 1, sizeof(dir) - (size_t)(slash + 1 - dir), ".qpatch-cc");
	else
		snprintf(dir, sizeof(dir), ".qpatch-cc");
	if (mkdir(dir, 0755) && errno != EEXIST) {
		fprintf(stderr, CC_NAME ": unable to create '%s': %s\n", dir, strerror(errno));
		return 1;
	}
	for (i = 1; !ret && i < argc; i++) {
		const char *base, *ob;

		if (!is_c_source(argv[i]))
			continue;
		base = strrchr(argv[i], '/');
		base = base ? base + 1 : argv[i];
		ob = strrchr(out, '/');
		ob = ob ? ob + 1 : out;
		if (asprintf(&objs[i], "%s/%s-%.*s.o", dir, ob, (int)strlen(base) - 2, base) < 0)
			return 1;
		k = 0;
		args[k++] = (char *)cc;
		for (j = 1; j < argc; j++) {
			if (!strcmp(argv[j], "-o")) {
				j++;
				continue;
			}
			if ((is_c_source(argv[j]) && j != i) || is_other_source(argv[j]) ||
			    is_link_only(argv[j]))
				continue;
			args[k++] = argv[j];
		}
		args[k++] = "-c";
		args[k++] = "-o";
		args[k++] = objs[i];
		for (j = 0; j < nextra; j++)
			args[k++] = extra[j];
		args[k] = NULL;
		ret = cc_run(args);
		if (!ret) {
			char *logargs[] = { argv[0], "-c", argv[i], "-o", objs[i], NULL };

			cc_log(5, logargs);
		}
	}
	if (!ret) { /* link: the same command with the objects for the sources */
		k = 0;
		args[k++] = (char *)cc;
		for (j = 1; j < argc; j++)
			args[k++] = objs[j] ? objs[j] : argv[j];
		args[k] = NULL;
		ret = cc_run(args);
		if (!ret)
			cc_log_link(args);
	}
	for (i = 0; i < argc; i++)
		free(objs[i]);
	free(objs);
	free(args);
	return ret;
}

int main(int argc, char **argv)
{
	const char *cc = getenv(CC_REAL_ENV);
	const char *map = getenv("QPATCH_PREFIX_MAP");
	char *extra[3] = { "-ffunction-sections", "-fdata-sections", NULL };
	char **args, *mapopt = NULL;
	int i, k = 0, nsrc = 0, nextra, ret;

	if (argc == 2 && !strcmp(argv[1], "--qpatch-version"))
		return qp_version_print(CC_NAME);
	if (!cc || !*cc)
		cc = CC_REAL_DEFAULT;
	for (i = 1; i < argc; i++)
		nsrc += is_c_source(argv[i]);
	nextra = CC_ALWAYS_SECTIONS || nsrc ? 2 : 0;
	cc_check_leaks(argc, argv);
	args = calloc((size_t)argc + 4, sizeof(*args));
	if (!args)
		return 1;
	/*
	 * Our path map goes first: gcc uses the last map that matches, so a
	 * build that maps its own directory (Debian's -ffile-prefix-map=$PWD=.)
	 * keeps doing so, exactly as in the deployed build.  The section flags
	 * go last, so that nothing turns them off.
	 */
	args[k++] = (char *)cc;
	if (map && *map && asprintf(&mapopt, "-ffile-prefix-map=%s", map) > 0)
		args[k++] = mapopt;
	for (i = 1; i < argc; i++)
		args[k++] = argv[i];
	for (i = 0; i < nextra; i++)
		args[k++] = extra[i];
	args[k] = NULL;
	if (nsrc && !has_arg(argc, argv, "-c") && !has_arg(argc, argv, "-S") &&
	    !has_arg(argc, argv, "-E") && !has_arg(argc, argv, "-M") && !has_arg(argc, argv, "-MM"))
		ret = cc_split(k, args, extra, 0, cc);
	else if (!(ret = cc_run(args)) && has_arg(argc, argv, "-c"))
		cc_log(argc, argv);
	else if (!ret && !has_arg(argc, argv, "-S") && !has_arg(argc, argv, "-E") &&
		 !has_arg(argc, argv, "-M") && !has_arg(argc, argv, "-MM"))
		cc_log_link(args);
	free(args);
	free(mapopt);
	return ret;
}
