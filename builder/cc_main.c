// SPDX-License-Identifier: MIT
/*
 * qpatch-cc: the compiler wrapper for builds that will be live-patched.
 *
 * Runs the real compiler ($QPATCH_REAL_CC, default "cc") with
 * -ffunction-sections -fdata-sections added, so that every function and
 * variable gets its own section and the builder can compare them one by
 * one.  When $QPATCH_CC_LOG names a file, every successful compilation with
 * -c appends one line "CWD<TAB>SOURCE<TAB>OBJECT" (absolute paths) to it;
 * qpatch-build reads that to know which objects a build produced.
 *
 * $QPATCH_PREFIX_MAP="FROM=TO" adds -ffile-prefix-map=FROM=TO: qpatch-build
 * builds copies of the trees elsewhere, and this keeps __FILE__ and debug
 * paths (and so the build-id) what a build in the original tree gives.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int is_c_source(const char *arg)
{
	size_t n = strlen(arg);

	return arg[0] != '-' && n > 2 && !strcmp(arg + n - 2, ".c");
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
		fprintf(stderr, "qpatch-cc: unable to open '%s': %s\n", log, strerror(errno));
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
			fprintf(stderr, "qpatch-cc: unable to write '%s'\n", log);
	}
	close(fd);
}

int main(int argc, char **argv)
{
	const char *cc = getenv("QPATCH_REAL_CC");
	const char *map = getenv("QPATCH_PREFIX_MAP");
	char **args, *mapopt = NULL;
	int i, status;
	pid_t pid;

	if (!cc || !*cc)
		cc = "cc";
	args = calloc((size_t)argc + 4, sizeof(*args));
	if (!args)
		return 1;
	args[0] = (char *)cc;
	for (i = 1; i < argc; i++)
		args[i] = argv[i];
	args[argc] = "-ffunction-sections";
	args[argc + 1] = "-fdata-sections";
	if (map && *map && asprintf(&mapopt, "-ffile-prefix-map=%s", map) > 0)
		args[argc + 2] = mapopt;
	pid = fork();
	if (pid < 0) {
		perror("qpatch-cc: fork");
		return 1;
	}
	if (!pid) {
		execvp(cc, args);
		fprintf(stderr, "qpatch-cc: unable to run '%s': %s\n", cc, strerror(errno));
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return 1;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		cc_log(argc, argv);
	free(args);
	free(mapopt);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
