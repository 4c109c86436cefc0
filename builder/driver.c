// SPDX-License-Identifier: MIT
/*
 * qpatch-build's driver: builds the original and the patched tree with
 * qpatch-cc in a work directory (the user's trees are only read), finds the
 * recompiled objects and the target binary, and runs the differ.
 *
 * The patched tree is built incrementally: it starts as a copy of the
 * finished original build (mtimes kept), then only the source files whose
 * content differs are copied over it, so the build tool recompiles just
 * what the change touches.  Both builds map their work directory to the
 * original tree's path (-ffile-prefix-map), so __FILE__ strings and debug
 * paths are the same in both and in a build made in the original tree.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "builder.h"
#include "qpatch/elf.h"

/* Work directory paths are kept short enough for every file name below
 * them to fit in PATH_MAX. */
#define QP_WORK_MAX 3072

struct drv {
	const struct qp_build_opts *opts; /* what the user asked for */
	struct qp_report *rep;            /* report being filled */
	char work[QP_WORK_MAX];           /* work directory */
	char orig_src[PATH_MAX];          /* realpath of the original tree */
	char pat_src[PATH_MAX];           /* realpath of the patched tree */
	char orig[PATH_MAX];              /* work/orig: original build */
	char pat[PATH_MAX];               /* work/patched: patched build */
	bool made_work;                   /* we created work (and may delete it) */
	bool warm;                        /* work holds an earlier original build */
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void drv_progress(struct drv *d, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void drv_progress(struct drv *d, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (!d->opts->progress)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	d->opts->progress(d->opts->progress_arg, msg);
}

static int path_join(char *out, const char *a, const char *b, struct qp_error *err)
{
	int n = snprintf(out, PATH_MAX, "%s/%s", a, b);

	if (n < 0 || n >= PATH_MAX)
		return qp_seterr(err, -ENAMETOOLONG, "path too long: '%s/%s'", a, b);
	return 0;
}

/*
 * Run @argv in @cwd with @env ("NAME=VALUE" strings, NULL-terminated) added,
 * output to @logpath.  Returns 0 when it exits with status 0.
 */
static int run(char *const *argv, const char *cwd, char *const *env, const char *logpath,
	       struct qp_error *err)
{
	int status, fd;
	pid_t pid;

	fd = open(logpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0)
		return qp_seterr(err, -errno, "unable to open '%s': %s", logpath, strerror(errno));
	pid = fork();
	if (pid < 0) {
		close(fd);
		return qp_seterr(err, -errno, "fork: %s", strerror(errno));
	}
	if (!pid) {
		for (; env && *env; env++)
			putenv(*env);
		if (chdir(cwd) || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
			_exit(126);
		execvp(argv[0], argv);
		dprintf(2, "unable to run '%s': %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(fd);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return qp_seterr(err, -errno, "waitpid: %s", strerror(errno));
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		return qp_seterr(err, -ECHILD, "'%s' failed in '%s' (exit %d); its output is in '%s'",
				 argv[0], cwd, WIFEXITED(status) ? WEXITSTATUS(status) : -1, logpath);
	return 0;
}

static int copy_tree(const char *from, const char *to, const char *logpath,
		     struct qp_error *err)
{
	char src[PATH_MAX + 2];
	char *argv[] = { "cp", "-a", src, (char *)to, NULL };

	snprintf(src, sizeof(src), "%s/.", from);
	if (mkdir(to, 0755) && errno != EEXIST)
		return qp_seterr(err, -errno, "unable to create '%s': %s", to, strerror(errno));
	return run(argv, "/", NULL, logpath, err);
}

static bool same_content(const char *a, const char *b)
{
	char ba[65536], bb[65536];
	FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
	bool same = fa && fb;

	while (same) {
		size_t na = fread(ba, 1, sizeof(ba), fa), nb = fread(bb, 1, sizeof(bb), fb);

		if (na != nb || memcmp(ba, bb, na))
			same = false;
		if (na < sizeof(ba))
			break;
	}
	if (fa)
		fclose(fa);
	if (fb)
		fclose(fb);
	return same;
}

/* Copy @from over @to where the content differs; count files copied. */
static int sync_tree(struct drv *d, const char *from, const char *to, int *copied,
		     struct qp_error *err)
{
	DIR *dir = opendir(from);
	struct dirent *de;
	int ret = 0;

	if (!dir)
		return qp_seterr(err, -errno, "unable to read '%s': %s", from, strerror(errno));
	while (!ret && (de = readdir(dir))) {
		char a[PATH_MAX], b[PATH_MAX];
		struct stat st;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		ret = path_join(a, from, de->d_name, err);
		if (!ret)
			ret = path_join(b, to, de->d_name, err);
		if (ret || lstat(a, &st))
			continue;
		if (S_ISDIR(st.st_mode)) {
			if (mkdir(b, 0755) && errno != EEXIST)
				ret = qp_seterr(err, -errno, "unable to create '%s': %s", b, strerror(errno));
			else
				ret = sync_tree(d, a, b, copied, err);
		} else if (S_ISREG(st.st_mode) && !same_content(a, b)) {
			char *argv[] = { "cp", a, b, NULL };
			char log[PATH_MAX];

			ret = path_join(log, d->work, "copy.log", err);
			if (!ret)
				ret = run(argv, "/", NULL, log, err);
			(*copied)++;
		}
	}
	closedir(dir);
	return ret;
}

static int build_tree(struct drv *d, const char *dir, const char *tag, struct qp_error *err)
{
	char cc_env[PATH_MAX + 8], log_env[PATH_MAX + 16], map_env[2 * PATH_MAX + 24];
	char real_cc[PATH_MAX + 16], cc_arg[PATH_MAX + 8], logpath[PATH_MAX], out[PATH_MAX];
	const char *cc = getenv("CC");
	char *env[] = { cc_env, log_env, map_env, real_cc, NULL };
	char *make_argv[] = { "make", cc_arg, NULL };
	char *sh_argv[] = { "sh", "-c", (char *)d->opts->build_cmd, NULL };

	snprintf(logpath, sizeof(logpath), "%s/%s.objects", d->work, tag);
	snprintf(out, sizeof(out), "%s/%s.build.log", d->work, tag);
	unlink(logpath);
	snprintf(cc_env, sizeof(cc_env), "CC=%s", d->opts->cc_wrapper);
	snprintf(cc_arg, sizeof(cc_arg), "CC=%s", d->opts->cc_wrapper);
	snprintf(log_env, sizeof(log_env), "QPATCH_CC_LOG=%s", logpath);
	snprintf(map_env, sizeof(map_env), "QPATCH_PREFIX_MAP=%s=%s", dir, d->orig_src);
	snprintf(real_cc, sizeof(real_cc), "QPATCH_REAL_CC=%s",
		 cc && *cc && !strstr(cc, "qpatch-cc") ? cc : "cc");
	return run(d->opts->build_cmd ? sh_argv : make_argv, dir, env, out, err);
}

/* An executable (not an object, not a shared library) under @dir. */
static int find_executables(const char *dir, char (*found)[PATH_MAX], int max, int n)
{
	DIR *dd = opendir(dir);
	struct dirent *de;

	if (!dd)
		return n;
	while ((de = readdir(dd))) {
		char p[PATH_MAX];
		unsigned char hdr[64];
		struct stat st;
		FILE *f;

		if (de->d_name[0] == '.' ||
		    snprintf(p, sizeof(p), "%s/%s", dir, de->d_name) >= (int)sizeof(p) ||
		    lstat(p, &st))
			continue;
		if (S_ISDIR(st.st_mode)) {
			n = find_executables(p, found, max, n);
			continue;
		}
		if (!S_ISREG(st.st_mode) || !(st.st_mode & 0111) || !(f = fopen(p, "rb")))
			continue;
		if (fread(hdr, 1, sizeof(hdr), f) == sizeof(hdr) && !memcmp(hdr, ELFMAG, SELFMAG) &&
		    (hdr[16] == ET_EXEC || hdr[16] == ET_DYN) && !strstr(de->d_name, ".so")) {
			if (n < max)
				snprintf(found[n], PATH_MAX, "%s", p);
			n++;
		}
		fclose(f);
	}
	closedir(dd);
	return n;
}

static int drv_target(struct drv *d, char *target, struct qp_error *err)
{
	char found[8][PATH_MAX];
	int n, i;

	if (d->opts->binary)
		return path_join(target, d->orig, d->opts->binary, err);
	n = find_executables(d->orig, found, 8, 0);
	if (n == 1) {
		snprintf(target, PATH_MAX, "%s", found[0]);
		return 0;
	}
	if (!n)
		return qp_seterr(err, -ENOENT, "the original build produced no executable");
	qp_seterr(err, -EINVAL, "the original build produced %d executables; name one with --binary:", n);
	for (i = 0; i < n && i < 8; i++) {
		size_t len = strlen(err->msg);

		snprintf(err->msg + len, sizeof(err->msg) - len, " '%s'",
			 found[i] + strlen(d->orig) + 1);
	}
	return err->code;
}

/* The deployed binary must be the one the original tree builds. */
static int drv_check_target(const char *built, const char *deployed, struct qp_error *err)
{
	uint8_t a[64], b[64];
	size_t na, nb;
	char ha[129], hb[129];
	int ret;

	ret = qp_elf_read_build_id(built, a, sizeof(a), &na, err);
	if (!ret)
		ret = qp_elf_read_build_id(deployed, b, sizeof(b), &nb, err);
	if (ret)
		return ret;
	if (na == nb && na && !memcmp(a, b, na))
		return 0;
	qp_hex(a, na, ha);
	qp_hex(b, nb, hb);
	return qp_seterr(err, QP_ETARGET,
			 "'%s' has build-id %s but the original tree builds %s (build-id %s): not the same program, or not built with qpatch-cc",
			 deployed, nb ? hb : "(none)", built, na ? ha : "(none)");
}

/* Did the build @tag compile an object at @rel (relative to its tree)? */
static bool drv_logged(struct drv *d, const char *tag, const char *rel)
{
	char logpath[PATH_MAX], line[3 * PATH_MAX + 8];
	const char *tree = !strcmp(tag, "orig") ? d->orig : d->pat;
	size_t tlen = strlen(tree);
	bool found = false;
	FILE *f;

	snprintf(logpath, sizeof(logpath), "%s/%s.objects", d->work, tag);
	f = fopen(logpath, "r");
	while (f && !found && fgets(line, sizeof(line), f)) {
		char *obj = strrchr(line, '\t');

		if (!obj)
			continue;
		obj++;
		obj[strcspn(obj, "\n")] = '\0';
		found = !strncmp(obj, tree, tlen) && obj[tlen] == '/' && !strcmp(obj + tlen + 1, rel);
	}
	if (f)
		fclose(f);
	return found;
}

/* Pair each object the patched build recompiled with its original. */
static int drv_diff_objects(struct drv *d, struct qp_diff *diff, struct qp_error *err)
{
	char logpath[PATH_MAX], line[3 * PATH_MAX + 8];
	size_t plen = strlen(d->pat);
	FILE *f;
	int ret = 0;

	snprintf(logpath, sizeof(logpath), "%s/patched.objects", d->work);
	f = fopen(logpath, "r");
	if (!f)
		return qp_seterr(err, -ENODATA,
				 "the patched build recompiled nothing: do the trees differ in C sources?");
	while (!ret && fgets(line, sizeof(line), f)) {
		char *obj = strrchr(line, '\t'), orig_obj[PATH_MAX];

		if (!obj)
			continue;
		obj++;
		obj[strcspn(obj, "\n")] = '\0';
		if (strncmp(obj, d->pat, plen) || obj[plen] != '/')
			continue; /* not inside the tree */
		ret = path_join(orig_obj, d->orig, obj + plen + 1, err);
		if (ret)
			break;
		/* build-system probes compile objects and delete them again */
		if (access(obj, R_OK) || (access(orig_obj, R_OK) && drv_logged(d, "orig", obj + plen + 1)))
			continue;
		/* an object the original build lacks comes from a new source file */
		ret = qp_diff__add_object(diff, access(orig_obj, R_OK) ? NULL : orig_obj, obj,
					  obj + plen + 1, err);
		d->rep->objects_compared++;
	}
	fclose(f);
	if (!ret && !d->rep->objects_compared)
		ret = qp_seterr(err, -ENODATA, "the patched build recompiled no object");
	return ret;
}

static int remove_tree(struct drv *d, const char *dir, struct qp_error *err)
{
	char *argv[] = { "rm", "-rf", (char *)dir, NULL };
	char log[PATH_MAX];

	snprintf(log, sizeof(log), "%s/copy.log", d->work);
	return run(argv, "/", NULL, log, err);
}

static int drv_builds(struct drv *d, struct qp_error *err)
{
	char log[PATH_MAX];
	double t0;
	int copied = 0, ret;

	snprintf(log, sizeof(log), "%s/copy.log", d->work);
	drv_progress(d, "%s original tree '%s' in '%s'", d->warm ? "updating the build of" : "building",
		     d->opts->orig_dir, d->orig);
	t0 = now_s();
	if (d->warm) /* only what changed since is rebuilt */
		ret = sync_tree(d, d->orig_src, d->orig, &copied, err);
	else
		ret = copy_tree(d->orig_src, d->orig, log, err);
	if (!ret)
		ret = build_tree(d, d->orig, "orig", err);
	if (ret)
		return qp_preperr(err, ret, "original build");
	d->rep->orig_build_s = now_s() - t0;
	d->rep->orig_warm = d->warm;
	drv_progress(d, "original build done in %.2f s", d->rep->orig_build_s);
	t0 = now_s();
	copied = 0;
	ret = remove_tree(d, d->pat, err);
	if (!ret)
		ret = copy_tree(d->orig, d->pat, log, err);
	if (!ret)
		ret = sync_tree(d, d->pat_src, d->pat, &copied, err);
	drv_progress(d, "building patched tree incrementally (%d changed file%s)", copied,
		     copied == 1 ? "" : "s");
	if (!ret)
		ret = build_tree(d, d->pat, "patched", err);
	if (ret)
		return qp_preperr(err, ret, "patched build");
	d->rep->patched_build_s = now_s() - t0;
	drv_progress(d, "patched build done in %.2f s", d->rep->patched_build_s);
	return 0;
}

/*
 * A work directory remembers which original tree it builds (file
 * "source"): given again for the same tree, its original build is reused
 * and only updated, which makes the next patch cheap; another tree's is an
 * error rather than a silently wrong comparison.
 */
static int drv_check_stamp(struct drv *d, struct qp_error *err)
{
	char stamp[PATH_MAX], seen[PATH_MAX] = "";
	FILE *f;

	snprintf(stamp, sizeof(stamp), "%s/source", d->work);
	f = fopen(stamp, "r");
	if (f) {
		if (!fgets(seen, sizeof(seen), f))
			seen[0] = '\0';
		fclose(f);
		seen[strcspn(seen, "\n")] = '\0';
		if (strcmp(seen, d->orig_src))
			return qp_seterr(err, -EEXIST, "work directory '%s' holds a build of '%s', not of '%s'",
					 d->work, seen, d->orig_src);
		d->warm = !access(d->orig, F_OK);
		return 0;
	}
	if (!access(d->orig, F_OK) || !access(d->pat, F_OK))
		return qp_seterr(err, -EEXIST, "work directory '%s' is not empty", d->work);
	f = fopen(stamp, "w");
	if (!f || fprintf(f, "%s\n", d->orig_src) < 0) {
		if (f)
			fclose(f);
		return qp_seterr(err, -errno, "unable to write '%s': %s", stamp, strerror(errno));
	}
	fclose(f);
	return 0;
}

static int drv_make_work(struct drv *d, struct qp_error *err)
{
	if (d->opts->workdir) {
		if (mkdir(d->opts->workdir, 0755) && errno != EEXIST)
			return qp_seterr(err, -errno, "unable to create '%s': %s",
					 d->opts->workdir, strerror(errno));
		char real[PATH_MAX];

		if (!realpath(d->opts->workdir, real))
			return qp_seterr(err, -errno, "'%s': %s", d->opts->workdir, strerror(errno));
		if (strlen(real) >= sizeof(d->work))
			return qp_seterr(err, -ENAMETOOLONG, "'%s': path too long", real);
		memcpy(d->work, real, strlen(real) + 1);
	} else {
		const char *tmp = getenv("TMPDIR");

		if (!tmp || !*tmp || strlen(tmp) > 1024)
			tmp = "/tmp";
		snprintf(d->work, sizeof(d->work), "%s/qpatch-build.XXXXXX", tmp);
		if (!mkdtemp(d->work))
			return qp_seterr(err, -errno, "unable to create a work directory: %s",
					 strerror(errno));
		d->made_work = true;
	}
	if (!realpath(d->opts->orig_dir, d->orig_src))
		return qp_seterr(err, -errno, "'%s': %s", d->opts->orig_dir, strerror(errno));
	if (!realpath(d->opts->patched_dir, d->pat_src))
		return qp_seterr(err, -errno, "'%s': %s", d->opts->patched_dir, strerror(errno));
	snprintf(d->orig, sizeof(d->orig), "%s/orig", d->work);
	snprintf(d->pat, sizeof(d->pat), "%s/patched", d->work);
	return drv_check_stamp(d, err);
}

static void drv_remove_work(struct drv *d)
{
	char *argv[] = { "rm", "-rf", d->work, NULL };
	char log[] = "/dev/null";

	if (d->made_work && !d->opts->keep_workdir)
		run(argv, "/", NULL, log, NULL);
}

int qp_build_run(const struct qp_build_opts *opts, struct qp_report *rep, struct qp_error *err)
{
	struct drv d = { .opts = opts, .rep = rep };
	struct qp_diff *diff = NULL;
	struct qp_patch *patch = NULL;
	char target[PATH_MAX];
	struct stat st;
	double t0;
	int ret;

	ret = drv_make_work(&d, err);
	if (!ret)
		ret = drv_builds(&d, err);
	if (!ret)
		ret = drv_target(&d, target, err);
	if (!ret && opts->target)
		ret = drv_check_target(target, opts->target, err);
	if (ret)
		goto out;
	snprintf(rep->target, sizeof(rep->target), "%s", opts->target ? opts->target : target);
	t0 = now_s();
	ret = qp_diff__new(target, &diff, err);
	if (!ret)
		ret = qp_diff__set_sources(diff, d.orig_src, d.orig, d.pat);
	if (!ret)
		ret = drv_diff_objects(&d, diff, err);
	if (!ret)
		ret = qp_diff__emit(diff, opts->id, &patch, rep, err);
	if (!ret)
		ret = qp_patch__write(patch, opts->output, err);
	rep->diff_s = now_s() - t0;
	if (!ret && !stat(opts->output, &st))
		rep->patch_bytes = (size_t)st.st_size;
out:
	qp_patch__free(patch);
	qp_diff__free(diff);
	drv_remove_work(&d);
	return ret;
}

void qp_report__release(struct qp_report *r)
{
	free(r->changes);
	r->changes = NULL;
	r->nchanges = 0;
}

const char *qp_change_kind_name(enum qp_change_kind k)
{
	static const char *const names[] = {
		[QP_CHANGE_REPLACED] = "replaced",
		[QP_CHANGE_NEW_FUNC] = "new function",
		[QP_CHANGE_COPIED] = "copied",
		[QP_CHANGE_NEW_VAR] = "new variable",
		[QP_CHANGE_REFUSED] = "REFUSED",
		[QP_CHANGE_LINE_ONLY] = "line only",
	};

	return (unsigned)k < sizeof(names) / sizeof(names[0]) ? names[k] : "?";
}
