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
 * Every compilation of one C source, with or without $QPATCH_CC_LOG (the
 * deployed build too), also leaves a record next to its object,
 * DIR/.qpatch-cc/OBJ.cmd (the command) and OBJ.d (the files it read), so
 * that qpatch-build can recompile an object that a build does not
 * rebuild (a subdirectory built once behind a stamp file); see
 * cc_record().
 *
 * $QPATCH_PREFIX_MAP="FROM=TO" adds -ffile-prefix-map=FROM=TO: qpatch-build
 * builds copies of the trees elsewhere, and this keeps __FILE__ and debug
 * paths (and so the build-id) what a build in the original tree gives.
 *
 * Every compilation also gets -flive-patching=inline-clone (see
 * cc_livepatching()); $QPATCH_CC_LIVEPATCHING=0 leaves it out.
 *
 * Every argument goes to the compiler, "--version" and "--help" included:
 * build systems run "$CC --version" to learn which compiler they have.
 * qpatch-cc's own version is "qpatch-cc --qpatch-version" (the only
 * argument), an option no compiler has.
 *
 * Built with QP_CXX defined, this is qpatch-c++, the same wrapper for the
 * C++ compiler driver ($QPATCH_REAL_CXX, default "c++"), for builds that
 * link their C objects with it (QEMU's meson build links with c++): its
 * links are logged and recorded, so qpatch-build learns which objects the
 * program is made of.  It compiles and logs C sources as qpatch-cc does,
 * but leaves no record of them (the C++ driver compiles them as C++, and
 * qpatch-build compiles a recorded object again with qpatch-cc); a command
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

#include "ccprobe.h"
#include "filekind.h"
#include "qpatch/version.h"

#ifdef QP_CXX
#define CC_NAME "qpatch-c++"
#define CC_REAL_ENV "QPATCH_REAL_CXX"
#define CC_REAL_DEFAULT "c++"
#define CC_ALWAYS_SECTIONS 0 /* the section flags only with a C source */
#define CC_RECORDS 0         /* no record of a compilation */
#else
#define CC_NAME "qpatch-cc"
#define CC_REAL_ENV "QPATCH_REAL_CC"
#define CC_REAL_DEFAULT "cc"
#define CC_ALWAYS_SECTIONS 1
#define CC_RECORDS 1
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

/* The object a -c compilation of @src writes: @out, or the source's name
 * with .o in @cwd; absolute, into @obj (PATH_MAX).  0, or -1 when it does
 * not fit. */
static int cc_obj_path(const char *cwd, const char *src, const char *out, char *obj)
{
	const char *base;
	int n;

	if (out)
		return abs_path(cwd, out, obj, PATH_MAX);
	base = strrchr(src, '/');
	base = base ? base + 1 : src;
	n = snprintf(obj, PATH_MAX, "%s/%.*s.o", cwd, (int)strlen(base) - 2, base);
	return n < 0 || n >= PATH_MAX ? -1 : 0;
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
		int n;

		if (!strcmp(argv[i], "-o")) {
			i++;
			continue;
		}
		if (!is_c_source(argv[i]) || abs_path(cwd, argv[i], src, sizeof(src)) ||
		    cc_obj_path(cwd, argv[i], out, obj))
			continue;
		n = snprintf(line, sizeof(line), "%s\t%s\t%s\n", cwd, src, obj);
		if (n > 0 && (size_t)n < sizeof(line) && write(fd, line, (size_t)n) != n)
			fprintf(stderr, CC_NAME ": unable to write '%s'\n", log);
	}
	close(fd);
}

/*
 * Where the records of file DIR/BASE go (BASE.cmd for an object, BASE.link
 * for a linked file): DIR/.qpatch-cc/, or DIR itself when it is a
 * .qpatch-cc directory (cc_split()'s objects).  @dir gets the directory,
 * created; returns -1 when it cannot be.
 */
static int cc_record_dir(const char *obj, char *dir, size_t size, const char **base)
{
	const char *slash = strrchr(obj, '/');
	size_t n = (size_t)(slash - obj);

	*base = slash + 1;
	if (n >= 11 && !strncmp(slash - 11, "/.qpatch-cc", 11))
		snprintf(dir, size, "%.*s", (int)n, obj);
	else if ((size_t)snprintf(dir, size, "%.*s/.qpatch-cc", (int)n, obj) >= size)
		return -1;
	if (mkdir(dir, 0755) && errno != EEXIST) {
		fprintf(stderr, CC_NAME ": unable to create '%s': %s\n", dir, strerror(errno));
		return -1;
	}
	return 0;
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

/* Replace file @path by @len bytes of @data: written to a temporary name
 * and renamed, so that a reader never sees half of it. */
static void cc_write_record(const char *path, const char *data, size_t len)
{
	char tmp[PATH_MAX + 32];
	int fd;

	snprintf(tmp, sizeof(tmp), "%s.%ld", path, (long)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, data, len) != (ssize_t)len || close(fd) || rename(tmp, path)) {
		fprintf(stderr, CC_NAME ": unable to write '%s'\n", path);
		unlink(tmp);
	}
}

/*
 * A link (@args: the whole command, NULL-terminated): one line
 * "CWD<TAB>OUTPUT<TAB>INPUT..." in $QPATCH_CC_LOG.links, the inputs being
 * the objects and archives it names (also inside -Wl,), so that
 * qpatch-build knows which objects make up the binary it patches.  The
 * same line is the link's record, OUTDIR/.qpatch-cc/OUTPUT.link: a build
 * that does not link the binary again still says what it was made of.
 */
static void cc_log_link(char **args)
{
	const char *log = getenv("QPATCH_CC_LOG"), *out = "a.out", *base;
	char cwd[PATH_MAX], path[PATH_MAX + 8], outp[PATH_MAX], dir[PATH_MAX], *line;
	struct stat st;
	size_t size = 1 << 20, len;
	int i, fd, bad = 0;

	if (!getcwd(cwd, sizeof(cwd)))
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
	if (bad || len + 1 >= size) {
		free(line);
		return;
	}
	line[len++] = '\n';
	snprintf(path, sizeof(path), "%s.links", log ? log : "");
	if (log && *log && (fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644)) >= 0) {
		if (write(fd, line, len) != (ssize_t)len)
			fprintf(stderr, CC_NAME ": unable to write '%s'\n", path);
		close(fd);
	}
	/* the record: the same line, in a file of its own, replaced (not for
	 * "-o /dev/null") */
	if (!stat(outp, &st) && S_ISREG(st.st_mode) && !cc_record_dir(outp, dir, sizeof(dir), &base) &&
	    (size_t)snprintf(path, sizeof(path), "%s/%s.link", dir, base) < sizeof(path))
		cc_write_record(path, line, len);
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

/* Run the real compiler with @args (NULL-terminated); returns its status.
 * @quiet: its output (and a failure to start it) goes to /dev/null. */
static int cc_run(char **args, int quiet)
{
	int status, fd;
	pid_t pid = fork();

	if (pid < 0) {
		perror(CC_NAME ": fork");
		return 1;
	}
	if (!pid) {
		if (quiet && (fd = open("/dev/null", O_RDWR)) >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
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

/* The value of the last "-fNAME" / "-fno-NAME" in @argv: 1, 0, or -1 when
 * neither is there. */
static int flag_state(int argc, char **argv, const char *name)
{
	size_t n = strlen(name);
	int i, on = -1;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strncmp(a, "-fno-", 5) && !strcmp(a + 5, name))
			on = 0;
		else if (!strncmp(a, "-f", 2) && !strncmp(a + 2, name, n) &&
			 (a[2 + n] == '\0' || a[2 + n] == '='))
			on = 1;
	}
	return on;
}


/*
 * Whether a compilation (@nsrc: its C sources) gets
 * -flive-patching=inline-clone.  Without it gcc's interprocedural passes
 * let a caller depend on its callee's body: -fipa-ra lets the caller
 * keep values in the registers the callee happens not to clobber,
 * pure-const, modref, VRP, bit-CP and stack alignment propagate what the
 * callee does, ICF folds identical bodies.
 * A fix to a function then changes the code of its callers, which must
 * be replaced too, and a caller that never returns (main's loop) blocks
 * the patch for good.  inline-clone turns exactly those passes off and
 * keeps inlining and cloning, which the builder follows.
 *
 * Left out when $QPATCH_CC_LIVEPATCHING is "0" ("1": the compiler takes
 * it, no need to ask; qpatch-build asks once and says so); when the command does not
 * compile (a link, -E, --version); when the command chooses a level
 * itself; where gcc would fail on it: with -flto ("live patching is not
 * supported with LTO"), -fwhole-program or one of the IPA passes it turns
 * off enabled explicitly; and when the compiler does not take it (clang,
 * gcc before 9), which a run on an empty file tells; with -Werror, so
 * that a compiler merely warning that it ignores the option counts as
 * not taking it.
 */
static int cc_livepatching(int argc, char **argv, int nsrc, const char *cc)
{
	static const char *const conflicts[] = {
		"lto", "whole-program", "ipa-pta", "ipa-reference", "ipa-reference-addressable",
		"ipa-ra", "ipa-icf", "ipa-icf-functions", "ipa-icf-variables", "ipa-bit-cp",
		"ipa-vrp", "ipa-pure-const", "ipa-modref", "ipa-stack-alignment",
	};
	const char *env = getenv("QPATCH_CC_LIVEPATCHING");
	char *probe[] = QP_CC_LIVEPATCHING_PROBE(cc);
	size_t i;
	int known;

	if (env && !strcmp(env, "0"))
		return 0;
	known = env && !strcmp(env, "1"); /* qpatch-build asked the compiler already */
	if ((!nsrc && !has_arg(argc, argv, "-c") && !has_arg(argc, argv, "-S")) ||
	    has_arg(argc, argv, "-E") || has_arg(argc, argv, "-M") || has_arg(argc, argv, "-MM"))
		return 0;
	for (i = 1; i < (size_t)argc; i++)
		if (!strncmp(argv[i], "-flive-patching", 15))
			return 0;
	for (i = 0; i < sizeof(conflicts) / sizeof(conflicts[0]); i++)
		if (flag_state(argc, argv, conflicts[i]) == 1)
			return 0;
	return known || cc_run(probe, 1) == 0;
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

/* What qpatch-cc runs: the real compiler, and the flags it adds. */
struct cc_opts {
	const char *cc;   /* the real compiler */
	char *mapopt;     /* "-ffile-prefix-map=FROM=TO", or NULL */
	int sections;     /* add the section flags (qpatch-c++: only with a C source) */
	int livepatching; /* add QP_CC_LIVEPATCHING (cc_livepatching()); only with sections */
};

/*
 * The real compiler's command for qpatch-cc's @argc/@argv: our path map
 * first (gcc uses the last map that matches, so a build that maps its own
 * directory, Debian's -ffile-prefix-map=$PWD=., keeps doing so, exactly as
 * in the deployed build), then the arguments, @more (NULL-terminated, may
 * be NULL), -flive-patching (it has no negative form) and the section
 * flags last, so that nothing turns them off.  NULL when out of memory.
 */
static char **cc_real_args(int argc, char **argv, const struct cc_opts *o, char **more)
{
	size_t nmore = 0;
	char **args;
	int i, k = 0;

	while (more && more[nmore])
		nmore++;
	args = calloc((size_t)argc + nmore + 5, sizeof(*args));
	if (!args)
		return NULL;
	args[k++] = (char *)o->cc;
	if (o->mapopt)
		args[k++] = o->mapopt;
	for (i = 1; i < argc; i++)
		args[k++] = argv[i];
	for (i = 0; (size_t)i < nmore; i++)
		args[k++] = more[i];
	if (o->sections) {
		if (o->livepatching)
			args[k++] = QP_CC_LIVEPATCHING;
		args[k++] = "-ffunction-sections";
		args[k++] = "-fdata-sections";
	}
	args[k] = NULL;
	return args;
}

/*
 * The dependency file the command itself asks the compiler for (-MD or
 * -MMD, with -MF FILE or next to the object; -Wp,-MD,FILE), into @out
 * (absolute); 0 when it asks for none.  Only one is written per
 * compilation, so qpatch-cc then copies that one rather than asking for
 * its own.
 */
static int cc_user_deps(int argc, char **argv, const char *cwd, const char *obj, char *out,
			size_t size)
{
	const char *mf = NULL;
	char path[PATH_MAX];
	int i, md = 0;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-MD") || !strcmp(argv[i], "-MMD"))
			md = 1;
		else if (!strcmp(argv[i], "-MF") && i + 1 < argc)
			mf = argv[++i];
		else if (!strncmp(argv[i], "-MF", 3) && argv[i][3])
			mf = argv[i] + 3;
		else if (!strncmp(argv[i], "-Wp,-MD,", 8) || !strncmp(argv[i], "-Wp,-MMD,", 9))
			md = 1, mf = strchr(argv[i] + 5, ',') + 1;
	}
	if (!md)
		return 0;
	if (mf) {
		snprintf(path, sizeof(path), "%s", mf);
	} else { /* gcc: the object's name with its suffix replaced by .d */
		const char *dot = strrchr(obj, '.');

		snprintf(path, sizeof(path), "%.*s.d", dot ? (int)(dot - obj) : (int)strlen(obj), obj);
	}
	return abs_path(cwd, path, out, size) ? 0 : 1;
}

/* Copy file @from to @to (the build's dependency file to the record). */
static void cc_copy(const char *from, const char *to)
{
	char buf[65536];
	int in = open(from, O_RDONLY | O_CLOEXEC), out;
	ssize_t n;

	if (in < 0) {
		unlink(to);
		return;
	}
	out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	while (out >= 0 && (n = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, (size_t)n) != n)
			break;
	if (out >= 0)
		close(out);
	close(in);
}

/*
 * The record of a compilation of one source (see the top of the file):
 * OBJ.cmd holds NUL-terminated fields, "qpatch-cc 1", the directory it ran
 * in, the source and the object (absolute), then qpatch-cc's arguments
 * (without argv[0]), so that running qpatch-cc with them there compiles it
 * again as the build did.
 */
static void cc_record(int argc, char **argv, const char *cwd, const char *src, const char *obj,
		      const char *cmd)
{
	size_t len, size = 16 + strlen(cwd) + strlen(src) + strlen(obj);
	char *buf, *p;
	int i;

	for (i = 1; i < argc; i++)
		size += strlen(argv[i]) + 1;
	buf = malloc(size);
	if (!buf)
		return;
	p = buf + sprintf(buf, "qpatch-cc 1%c%s%c%s%c%s%c", 0, cwd, 0, src, 0, obj, 0);
	for (i = 1; i < argc; i++) {
		len = strlen(argv[i]) + 1;
		memcpy(p, argv[i], len);
		p += len;
	}
	cc_write_record(cmd, buf, (size_t)(p - buf));
	free(buf);
}

/*
 * A compilation of exactly one C source to an object file (-c; not -E,
 * -S, -M, -MM): its directory, source and object, absolute.  Returns -1
 * for any other command.
 */
static int cc_one_object(int argc, char **argv, char *cwd, char *src, char *obj)
{
	const char *out = NULL, *in = NULL;
	struct stat st;
	int i, nsrc = 0;

	if (!has_arg(argc, argv, "-c") || has_arg(argc, argv, "-E") || has_arg(argc, argv, "-S") ||
	    has_arg(argc, argv, "-M") || has_arg(argc, argv, "-MM") || !getcwd(cwd, PATH_MAX))
		return -1;
	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-o") && i + 1 < argc)
			out = argv[++i];
		else if (is_c_source(argv[i]))
			in = argv[i], nsrc++;
	}
	if (nsrc != 1 || abs_path(cwd, in, src, PATH_MAX) || cc_obj_path(cwd, in, out, obj))
		return -1;
	/* "-o /dev/null" (a probe): no object, no record */
	return stat(obj, &st) || S_ISREG(st.st_mode) ? 0 : -1;
}

/*
 * Compile (@argv has -c): run the real compiler, log the objects
 * ($QPATCH_CC_LOG) and leave the record of a one-source compilation.  The
 * files it read come from the compiler: -MD -MF OBJ.d is added, or, when
 * the command asks for a dependency file of its own (only one is written),
 * that one is copied.  Neither changes the object.
 */
static int cc_compile(int argc, char **argv, const struct cc_opts *o)
{
	char cwd[PATH_MAX], src[PATH_MAX], obj[PATH_MAX], dir[PATH_MAX];
	char cmd[PATH_MAX + 8], dep[PATH_MAX + 8], user[PATH_MAX];
	char *more[4] = { NULL };
	const char *base;
	char **args;
	int ret, rec, own = 0;

	rec = CC_RECORDS && !cc_one_object(argc, argv, cwd, src, obj) &&
	      !cc_record_dir(obj, dir, sizeof(dir), &base) &&
	      (size_t)snprintf(cmd, sizeof(cmd), "%s/%s.cmd", dir, base) < sizeof(cmd) &&
	      (size_t)snprintf(dep, sizeof(dep), "%s/%s.d", dir, base) < sizeof(dep);
	if (rec) {
		own = cc_user_deps(argc, argv, cwd, obj, user, sizeof(user));
		if (!own) {
			more[0] = "-MD";
			more[1] = "-MF";
			more[2] = dep;
		}
	}
	args = cc_real_args(argc, argv, o, more);
	if (!args)
		return 1;
	ret = cc_run(args, 0);
	free(args);
	if (ret)
		return ret;
	cc_log(argc, argv);
	if (rec) {
		if (own)
			cc_copy(user, dep);
		cc_record(argc, argv, cwd, src, obj, cmd);
	}
	return 0;
}

/*
 * "cc -o prog a.c b.c -lm" compiles and links in one go, leaving no object
 * to compare.  Do what the compiler driver does, with objects that stay:
 * compile each C source to OUTDIR/.qpatch-cc/PROG-SRC.o (a -c compilation
 * like any other: logged, with its record), then link those; other
 * sources (C++, assembler) are compiled by the link command, as before.
 * The binary is the same either way.
 */
static int cc_split(int argc, char **argv, const struct cc_opts *o)
{
	const char *out = "a.out", *ob;
	char **args = calloc((size_t)argc + 4, sizeof(*args));
	char **objs = calloc((size_t)argc, sizeof(*objs));
	char dir[PATH_MAX], *slash;
	struct stat st;
	int i, j, k, ret = 0;

	if (!args || !objs)
		return 1;
	for (i = 1; i < argc - 1; i++)
		if (!strcmp(argv[i], "-o"))
			out = argv[i + 1];
	if (!stat(out, &st) && !S_ISREG(st.st_mode)) { /* "-o /dev/null": a probe, run as it is */
		char **real = cc_real_args(argc, argv, o, NULL);

		ret = real ? cc_run(real, 0) : 1;
		free(real);
		free(args);
		free(objs);
		return ret;
	}
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
	ob = strrchr(out, '/');
	ob = ob ? ob + 1 : out;
	for (i = 1; !ret && i < argc; i++) {
		const char *base;

		if (!is_c_source(argv[i]))
			continue;
		base = strrchr(argv[i], '/');
		base = base ? base + 1 : argv[i];
		if (asprintf(&objs[i], "%s/%s-%.*s.o", dir, ob, (int)strlen(base) - 2, base) < 0)
			return 1;
		k = 0;
		args[k++] = argv[0];
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
		args[k] = NULL;
		ret = cc_compile(k, args, o);
	}
	if (!ret) { /* link: the same command with the objects for the sources */
		char **link;

		for (j = 1; j < argc; j++)
			args[j] = objs[j] ? objs[j] : argv[j];
		args[0] = argv[0];
		args[argc] = NULL;
		link = cc_real_args(argc, args, o, NULL);
		ret = link ? cc_run(link, 0) : 1;
		if (!ret)
			cc_log_link(link);
		free(link);
	}
	for (i = 0; i < argc; i++)
		free(objs[i]);
	free(objs);
	free(args);
	return ret;
}

int main(int argc, char **argv)
{
	const char *map = getenv("QPATCH_PREFIX_MAP");
	struct cc_opts o = { .cc = getenv(CC_REAL_ENV) };
	char **args;
	int i, nsrc = 0, ret;

	if (argc == 2 && !strcmp(argv[1], "--qpatch-version"))
		return qp_version_print(CC_NAME);
	if (!o.cc || !*o.cc)
		o.cc = CC_REAL_DEFAULT;
	if (map && *map && asprintf(&o.mapopt, "-ffile-prefix-map=%s", map) < 0)
		return 1;
	for (i = 1; i < argc; i++)
		nsrc += is_c_source(argv[i]);
	o.sections = CC_ALWAYS_SECTIONS || nsrc;
	cc_check_leaks(argc, argv);
	o.livepatching = o.sections && cc_livepatching(argc, argv, nsrc, o.cc);
	if (nsrc && !has_arg(argc, argv, "-c") && !has_arg(argc, argv, "-S") &&
	    !has_arg(argc, argv, "-E") && !has_arg(argc, argv, "-M") && !has_arg(argc, argv, "-MM")) {
		ret = cc_split(argc, argv, &o);
	} else if (has_arg(argc, argv, "-c")) {
		ret = cc_compile(argc, argv, &o);
	} else {
		args = cc_real_args(argc, argv, &o, NULL);
		ret = args ? cc_run(args, 0) : 1;
		if (!ret && !has_arg(argc, argv, "-S") && !has_arg(argc, argv, "-E") &&
		    !has_arg(argc, argv, "-M") && !has_arg(argc, argv, "-MM"))
			cc_log_link(args);
		free(args);
	}
	free(o.mapopt);
	return ret;
}
