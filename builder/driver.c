// SPDX-License-Identifier: MIT
/*
 * qpatch-build's driver: builds the original and the patched version with
 * qpatch-cc in a work directory (the user's trees are only read), finds the
 * recompiled objects and the target binary, and runs the differ.
 *
 * The builds run at the original tree's path: in a private mount namespace
 * the work tree is bind-mounted over the original tree (bindns.c), so a
 * build directory configured in the original tree, whose Makefiles name it
 * by absolute path (autotools' abs_srcdir, meson, CMake), builds the work
 * tree's files, and __FILE__, debug info and the build-id are those of the
 * deployed build.  The original tree is copied to WORK/tree and built
 * there; WORK/ptree starts as that build (later runs: made equal to it
 * again, mirror_tree()), the files of the patched tree whose content
 * differs are copied over it, and the build runs again there, recompiling
 * just what the change touches.  A kept work directory makes the next
 * patch one incremental build.
 *
 * Where namespaces are not available (or with --no-namespace) both
 * versions build in WORK/tree itself, one after the other (the original's
 * objects saved to WORK/orig-objs in between), mapped to the original path
 * with -ffile-prefix-map, and a build that still names the original tree
 * is refused (see qpatch-cc); the next run first copies the original
 * files back (only those that differ).
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

#include "bindns.h"
#include "ccprobe.h"
#include "filekind.h"
#include "builder.h"
#include "linkset.h"
#include "records.h"
#include "qpatch/elf.h"

/* Work directory paths are kept short enough for every file name below
 * them to fit in PATH_MAX. */
#define QP_WORK_MAX 3072

/* A sorted set of strings. */
struct drv_strs {
	char **v; /* sorted once filled (drv_strs_sort) */
	size_t n; /* count of v */
};

static int drv_strs_add(struct drv_strs *s, const char *str)
{
	char **v = realloc(s->v, (s->n + 1) * sizeof(*v));

	if (!v)
		return -ENOMEM;
	s->v = v;
	if (!(v[s->n] = strdup(str)))
		return -ENOMEM;
	s->n++;
	return 0;
}

static int drv_strs_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void drv_strs_sort(struct drv_strs *s)
{
	if (s->n)
		qsort(s->v, s->n, sizeof(*s->v), drv_strs_cmp);
}

static bool drv_strs_has(const struct drv_strs *s, const char *str)
{
	return s->n && bsearch(&str, s->v, s->n, sizeof(*s->v), drv_strs_cmp);
}

static void drv_strs_release(struct drv_strs *s)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	s->v = NULL;
	s->n = 0;
}

/* A file of the patched tree whose content differs from the original's. */
struct drv_changed {
	char *rel;  /* path relative to the tree */
	bool added; /* the original tree lacks it */
};

struct drv {
	const struct qp_build_opts *opts; /* what the user asked for */
	struct qp_report *rep;            /* report being filled */
	char work[QP_WORK_MAX];           /* work directory */
	char orig_src[PATH_MAX];          /* realpath of the original tree */
	char pat_src[PATH_MAX];           /* realpath of the patched tree */
	char tree[PATH_MAX];              /* work/tree: where the original builds */
	char ptree[PATH_MAX];             /* work/ptree: where the patched version builds
					     (at_orig_path), else = tree */
	char snap[PATH_MAX];              /* work/orig-objs: the original's objects */
	char target[PATH_MAX];            /* work/target/NAME: the original's binary */
	char built[PATH_MAX];             /* the binary in the tree */
	struct qp_linkset *links;         /* objects linked into it, NULL = unknown */
	size_t unlinked;                  /* recompiled objects not linked into it */
	bool made_work;                   /* we created work (and may delete it) */
	bool at_orig_path;                /* builds see their tree at orig_src (bindns),
					     each version in a tree of its own */
	bool warm;                        /* work holds an earlier original build */
	uint8_t target_id[64];            /* deployed build-id when it differs, else empty */
	size_t target_id_size;            /* bytes in target_id */
	struct drv_changed *changed;      /* files of the patched tree that differ */
	size_t nchanged;                  /* count of changed */
	struct drv_strs missed;           /* changed C sources no recorded compilation reads */
	int livepatching;                 /* drv_livepatching(): -1 not probed yet, 0 or 1
					     both compilers answered so, 2 neither or
					     the user decided */
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

static bool path_under(const char *path, const char *dir)
{
	size_t n = strlen(dir);

	return !strncmp(path, dir, n) && (path[n] == '/' || path[n] == '\0');
}

static const char *drv_base(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? slash + 1 : path;
}

/* Does @rel exist in the patched version's tree? */
static bool drv_exists(struct drv *d, const char *rel)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", d->ptree, rel);
	return !access(path, F_OK);
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
 * output appended to @logpath.  With @bind, in a mount namespace where the
 * directory @bind is mounted over @at (@cwd being at or below it).
 * Returns 0 when it exits with status 0.
 */
static int run_at(char *const *argv, const char *cwd, const char *bind, const char *at,
		  char *const *env, const char *logpath, struct qp_error *err)
{
	int status, fd, ret;
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
		if (dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
			_exit(126);
		if (bind && (ret = qp_bindns_enter(bind, at))) {
			dprintf(2, "unable to mount '%s' at '%s': %s\n", bind, at, strerror(-ret));
			_exit(126);
		}
		if (chdir(cwd))
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

static int run(char *const *argv, const char *cwd, char *const *env, const char *logpath,
	       struct qp_error *err)
{
	return run_at(argv, cwd, NULL, NULL, env, logpath, err);
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

static int copy_file(const char *from, const char *to, struct qp_error *err);

/*
 * Call @fn(A, B, @arg) for each entry of directory @dir but "." and "..",
 * A being its path and B the same name under @other; stops at the first
 * non-zero return.
 */
static int walk_pairs(const char *dir, const char *other,
		      int (*fn)(const char *a, const char *b, void *arg), void *arg,
		      struct qp_error *err)
{
	DIR *dd = opendir(dir);
	struct dirent *de;
	int ret = 0;

	if (!dd)
		return qp_seterr(err, -errno, "unable to read '%s': %s", dir, strerror(errno));
	while (!ret && (de = readdir(dd))) {
		char a[PATH_MAX], b[PATH_MAX];

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		ret = path_join(a, dir, de->d_name, err);
		if (!ret)
			ret = path_join(b, other, de->d_name, err);
		if (!ret)
			ret = fn(a, b, arg);
	}
	closedir(dd);
	return ret;
}

struct sync_arg {
	int *copied;           /* files copied so far */
	struct drv *d;         /* with the patched tree: gets the list of changed files */
	size_t skip;           /* length of the destination's path (for d's relative paths) */
	struct qp_error *err;  /* where errors go */
};

static int sync_note(struct sync_arg *sa, const char *b, bool added)
{
	struct drv *d = sa->d;
	struct drv_changed *v = realloc(d->changed, (d->nchanged + 1) * sizeof(*v));

	if (!v || !(v[d->nchanged].rel = strdup(b + sa->skip + 1))) {
		if (v)
			d->changed = v;
		return qp_seterr(sa->err, -ENOMEM, "out of memory");
	}
	v[d->nchanged++].added = added;
	d->changed = v;
	return 0;
}

static int sync_entry(const char *a, const char *b, void *arg)
{
	struct sync_arg *sa = arg;
	const char *name = strrchr(a, '/') + 1;
	struct stat st;
	bool added;

	if (lstat(a, &st))
		return 0;
	if (S_ISDIR(st.st_mode)) {
		/* qpatch-cc's records are the build's, never the patched tree's */
		if (sa->d && !strcmp(name, ".qpatch-cc"))
			return 0;
		if (mkdir(b, 0755) && errno != EEXIST)
			return qp_seterr(sa->err, -errno, "unable to create '%s': %s", b, strerror(errno));
		return walk_pairs(a, b, sync_entry, sa, sa->err);
	}
	if (!S_ISREG(st.st_mode) || same_content(a, b))
		return 0;
	(*sa->copied)++;
	added = access(b, F_OK) != 0;
	if (sa->d && sync_note(sa, b, added))
		return sa->err->code;
	return copy_file(a, b, sa->err);
}

/* Copy @from over @to where the content differs; count files copied.
 * With @d, the patched tree: note them in d->changed. */
static int sync_tree(const char *from, const char *to, int *copied, struct drv *d,
		     struct qp_error *err)
{
	struct sync_arg sa = { .copied = copied, .d = d, .skip = strlen(to), .err = err };

	return walk_pairs(from, to, sync_entry, &sa, err);
}

/* Remove @path, a file or a whole directory. */
static int remove_path(const char *path, struct qp_error *err)
{
	char *argv[] = { "rm", "-rf", (char *)path, NULL };

	return run(argv, "/", NULL, "/dev/null", err);
}

/* Make @to a copy of file @from with its mode and times (make compares them). */
static int mirror_file(const char *from, const char *to, const struct stat *st,
		       struct qp_error *err)
{
	struct timespec times[2] = { st->st_atim, st->st_mtim };

	unlink(to);
	if (copy_file(from, to, err))
		return err->code;
	if (utimensat(AT_FDCWD, to, times, 0))
		return qp_seterr(err, -errno, "unable to set the times of '%s': %s", to,
				 strerror(errno));
	return 0;
}

static bool same_stat(const struct stat *a, const struct stat *b)
{
	return (a->st_mode & S_IFMT) == (b->st_mode & S_IFMT) && a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
	       (a->st_mode & 07777) == (b->st_mode & 07777);
}

/* @b names a symbolic link to what @a's does. */
static int mirror_link(const char *a, const char *b, bool have_b, struct qp_error *err)
{
	char la[PATH_MAX], lb[PATH_MAX];
	ssize_t na = readlink(a, la, sizeof(la) - 1);
	ssize_t nb = have_b ? readlink(b, lb, sizeof(lb) - 1) : -1;

	if (na < 0 || (nb == na && !memcmp(la, lb, (size_t)na)))
		return 0;
	la[na] = '\0';
	unlink(b);
	if (symlink(la, b))
		return qp_seterr(err, -errno, "unable to create '%s': %s", b, strerror(errno));
	return 0;
}

static int mirror_entry(const char *a, const char *b, void *arg);

/* Remove an entry of @to (path @b) whose name @from lacks (path @a). */
static int prune_entry(const char *b, const char *a, void *arg)
{
	struct stat st;

	if (lstat(a, &st) && errno == ENOENT)
		return remove_path(b, arg);
	return 0;
}

/*
 * Make directory @to what @from is: a file whose type, size, mode or
 * modification time differs is copied with its times, a symbolic link
 * made again, anything @from lacks removed.  The patched version's tree
 * is put back to the original build this way before each patched build,
 * at the cost of what the last one changed: make's quick check, as
 * rsync's, trusts equal size and time.
 */
static int mirror_tree(const char *from, const char *to, struct qp_error *err)
{
	int ret = walk_pairs(from, to, mirror_entry, err, err);

	return ret ? ret : walk_pairs(to, from, prune_entry, err, err);
}

static int mirror_entry(const char *a, const char *b, void *arg)
{
	struct qp_error *err = arg;
	struct stat sa, sb;
	bool have_b;

	if (lstat(a, &sa))
		return 0;
	have_b = !lstat(b, &sb);
	if (have_b && (sa.st_mode & S_IFMT) != (sb.st_mode & S_IFMT)) {
		if (remove_path(b, err))
			return err->code;
		have_b = false;
	}
	if (S_ISDIR(sa.st_mode)) {
		if (!have_b && mkdir(b, sa.st_mode & 07777))
			return qp_seterr(err, -errno, "unable to create '%s': %s", b, strerror(errno));
		return mirror_tree(a, b, err);
	}
	if (S_ISLNK(sa.st_mode))
		return mirror_link(a, b, have_b, err);
	if (S_ISREG(sa.st_mode) && !(have_b && same_stat(&sa, &sb)))
		return mirror_file(a, b, &sa, err);
	return 0;
}

/* Did the build compile against the original tree (see qpatch-cc)? */
static int drv_check_leaks(struct drv *d, const char *tag, struct qp_error *err)
{
	char path[PATH_MAX], arg[PATH_MAX];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s.objects.leaks", d->work, tag);
	f = fopen(path, "r");
	if (!f)
		return 0;
	if (!fgets(arg, sizeof(arg), f))
		arg[0] = '\0';
	fclose(f);
	arg[strcspn(arg, "\n")] = '\0';
	return qp_seterr(err, -EINVAL,
			 "the build of the copy refers to the original tree ('%s'): a build directory configured in '%s' is being reused; give a tree without it and let --build-cmd configure one",
			 arg, d->orig_src);
}

/*
 * The links a build ran (qpatch-cc's log) are added to WORK/links, which
 * keeps them across runs: a warm or an up-to-date build links nothing, and
 * the last link of the target seen is still the one that made it.
 */
static int drv_keep_links(struct drv *d, const char *log, struct qp_error *err)
{
	char all[PATH_MAX], buf[65536];
	FILE *in = fopen(log, "r"), *out;
	size_t n;
	int ret = 0;

	if (!in)
		return 0;
	snprintf(all, sizeof(all), "%s/links", d->work);
	out = fopen(all, "a");
	if (!out) {
		fclose(in);
		return qp_seterr(err, -errno, "unable to write '%s': %s", all, strerror(errno));
	}
	while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
		if (fwrite(buf, 1, n, out) != n)
			ret = qp_seterr(err, -EIO, "unable to write '%s'", all);
	fclose(in);
	if (fclose(out) && !ret)
		ret = qp_seterr(err, -EIO, "unable to write '%s'", all);
	return ret;
}

/* "@env=COMPILER" into @out: the value of environment variable @var (the
 * compiler the user chose) unless it names our own @wrapper, else @dflt. */
static void real_compiler(char *out, size_t size, const char *env, const char *var,
			  const char *wrapper, const char *dflt)
{
	const char *v = getenv(var);

	snprintf(out, size, "%s=%s", env, v && *v && !strstr(v, wrapper) ? v : dflt);
}

/*
 * What a build of @dir (build @tag) runs with: qpatch-cc as CC and
 * qpatch-c++ as CXX, in the environment (for a --build-cmd that
 * configures) and as make's arguments (the default command), so the links
 * of a program linked by the C++ driver are logged too; logging to
 * WORK/TAG.objects.
 */
struct drv_env {
	char cc[PATH_MAX + 8];        /* "CC=qpatch-cc" */
	char cxx[PATH_MAX + 8];       /* "CXX=qpatch-c++" */
	char log[PATH_MAX + 16];      /* "QPATCH_CC_LOG=WORK/TAG.objects" */
	char map[2 * PATH_MAX + 24];  /* "QPATCH_PREFIX_MAP=..." */
	char real_cc[PATH_MAX + 16];  /* "QPATCH_REAL_CC=..." */
	char real_cxx[PATH_MAX + 24]; /* "QPATCH_REAL_CXX=..." */
	char lp[32];                  /* "QPATCH_CC_LIVEPATCHING=0|1", when probed */
	char *env[8];                 /* the above, NULL-terminated */
	char out[PATH_MAX];           /* WORK/TAG.build.log: the build's output */
};

/*
 * Whether both real compilers of @e take -flive-patching=inline-clone,
 * asked once per qpatch-build rather than by qpatch-cc at every
 * compilation (one compiler start each, about 8 ms with gcc 12): 1 or 0
 * when they agree, then passed on as $QPATCH_CC_LIVEPATCHING, which
 * qpatch-cc trusts; 2 when they do not, or when the user set that
 * variable, in which case qpatch-cc decides as it does on its own.
 */
static int drv_livepatching(struct drv *d, const struct drv_env *e)
{
	const char *real[] = { strchr(e->real_cc, '=') + 1, strchr(e->real_cxx, '=') + 1 };
	char log[QP_WORK_MAX + 16];
	int ok[2];

	if (d->livepatching >= 0)
		return d->livepatching;
	d->livepatching = 2;
	if (getenv("QPATCH_CC_LIVEPATCHING"))
		return d->livepatching;
	snprintf(log, sizeof(log), "%s/probe.log", d->work);
	for (int i = 0; i < 2; i++) {
		char *argv[] = QP_CC_LIVEPATCHING_PROBE(real[i]);
		struct qp_error ignored = { 0 };

		ok[i] = !run(argv, d->work, NULL, log, &ignored);
	}
	if (ok[0] == ok[1])
		d->livepatching = ok[0];
	return d->livepatching;
}

static void drv_env(struct drv *d, const char *dir, const char *tag, struct drv_env *e)
{
	snprintf(e->cc, sizeof(e->cc), "CC=%s", d->opts->cc_wrapper);
	snprintf(e->cxx, sizeof(e->cxx), "CXX=%s", d->opts->cxx_wrapper);
	snprintf(e->log, sizeof(e->log), "QPATCH_CC_LOG=%s/%s.objects", d->work, tag);
	/* at the original's path nothing needs mapping, and naming it is right */
	if (d->at_orig_path)
		snprintf(e->map, sizeof(e->map), "QPATCH_PREFIX_MAP=");
	else
		snprintf(e->map, sizeof(e->map), "QPATCH_PREFIX_MAP=%s=%s", dir, d->orig_src);
	real_compiler(e->real_cc, sizeof(e->real_cc), "QPATCH_REAL_CC", "CC", "qpatch-cc", "cc");
	real_compiler(e->real_cxx, sizeof(e->real_cxx), "QPATCH_REAL_CXX", "CXX", "qpatch-c++",
		      "c++");
	e->env[0] = e->cc;
	e->env[1] = e->cxx;
	e->env[2] = e->log;
	e->env[3] = e->map;
	e->env[4] = e->real_cc;
	e->env[5] = e->real_cxx;
	e->env[6] = NULL;
	e->env[7] = NULL;
	if (drv_livepatching(d, e) < 2) {
		snprintf(e->lp, sizeof(e->lp), "QPATCH_CC_LIVEPATCHING=%d", d->livepatching);
		e->env[6] = e->lp;
	}
	snprintf(e->out, sizeof(e->out), "%s/%s.build.log", d->work, tag);
}

static int build_tree(struct drv *d, const char *dir, const char *tag, struct qp_error *err)
{
	char logpath[PATH_MAX], leaks[PATH_MAX + 8], links[PATH_MAX + 8];
	struct drv_env e;
	char *make_argv[] = { "make", e.cc, e.cxx, NULL };
	char *sh_argv[] = { "sh", "-c", (char *)d->opts->build_cmd, NULL };

	drv_env(d, dir, tag, &e);
	snprintf(logpath, sizeof(logpath), "%s/%s.objects", d->work, tag);
	unlink(logpath);
	snprintf(leaks, sizeof(leaks), "%s.leaks", logpath);
	unlink(leaks);
	snprintf(links, sizeof(links), "%s.links", logpath);
	unlink(links);
	int ret = run_at(d->opts->build_cmd ? sh_argv : make_argv,
			 d->at_orig_path ? d->orig_src : dir, d->at_orig_path ? dir : NULL,
			 d->orig_src, e.env, e.out, err);

	if (!ret)
		ret = drv_keep_links(d, links, err);
	return ret ? ret : drv_check_leaks(d, tag, err);
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
		return path_join(target, d->tree, d->opts->binary, err);
	n = find_executables(d->tree, found, 8, 0);
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
			 found[i] + strlen(d->tree) + 1);
	}
	return err->code;
}

/* The first loaded section of @a that differs from @b's, or NULL when
 * all match: same names, addresses, sizes and bytes; notes (the build-id)
 * are not compared. */
static const char *drv_code_differs(const struct qp_elf *a, const struct qp_elf *b)
{
	size_t i, j;

	for (i = 1; i < a->nsecs; i++) {
		const struct qp_elf_sec *x = &a->secs[i], *y = NULL;

		if (!(x->shdr.sh_flags & SHF_ALLOC) || x->shdr.sh_type == SHT_NOTE)
			continue;
		for (j = 1; j < b->nsecs && !y; j++)
			if (!strcmp(b->secs[j].name, x->name))
				y = &b->secs[j];
		if (!y || y->shdr.sh_type != x->shdr.sh_type || y->shdr.sh_addr != x->shdr.sh_addr ||
		    y->size != x->size || (x->data && y->data && memcmp(x->data, y->data, x->size)))
			return x->name;
	}
	return NULL;
}

/*
 * The deployed binary must be the one the original tree builds: the same
 * build-id, or, when only non-loaded parts differ (debug info records the
 * build directory, so an out-of-tree CMake build elsewhere differs there),
 * the same loaded sections byte for byte.  Then the patch carries the
 * deployed binary's build-id, the one the loader looks for.
 */
static int drv_check_target(struct drv *d, const char *built, const char *deployed,
			    struct qp_error *err)
{
	struct qp_elf *a = NULL, *b = NULL;
	const char *differs;
	char ha[129], hb[129];
	int ret;

	ret = qp_elf__open(built, QP_ELF_NO_RELAS, &a, err);
	if (!ret)
		ret = qp_elf__open(deployed, QP_ELF_NO_RELAS, &b, err);
	if (ret)
		goto out;
	if (a->build_id_size && a->build_id_size == b->build_id_size &&
	    !memcmp(a->build_id, b->build_id, a->build_id_size))
		goto out;
	qp_hex(a->build_id, a->build_id_size, ha);
	qp_hex(b->build_id, b->build_id_size, hb);
	differs = b->build_id_size ? drv_code_differs(a, b) : "the build-id";
	if (differs) {
		ret = qp_seterr(err, QP_ETARGET,
				"'%s' (build-id %s) is not what the original tree builds: '%s' (build-id %s) differs in %s; not the same program, or not built with qpatch-cc and the same flags",
				deployed, b->build_id_size ? hb : "none", built, ha, differs);
		goto out;
	}
	memcpy(d->target_id, b->build_id, b->build_id_size);
	d->target_id_size = b->build_id_size;
	drv_progress(d, "'%s' has build-id %s, the original build %s: only debug info differs, the code is the same",
		     deployed, hb, ha);
out:
	qp_elf__free(a);
	qp_elf__free(b);
	return ret;
}

/*
 * Call @fn for each object the build @tag ("orig", "patched") compiled
 * inside its tree, with its absolute path and its path relative to the
 * tree; stops at the first non-zero return.  qpatch-cc logs the paths the
 * build saw: under the original tree's path when it ran there.
 */
static int drv_for_each_object(struct drv *d, const char *tag,
			       int (*fn)(struct drv *d, const char *obj, const char *rel, void *arg),
			       void *arg)
{
	char logpath[PATH_MAX], line[3 * PATH_MAX + 8], path[PATH_MAX];
	const char *root = strcmp(tag, "patched") ? d->tree : d->ptree;
	const char *seen = d->at_orig_path ? d->orig_src : root;
	size_t slen = strlen(seen);
	int ret = 0;
	FILE *f;

	snprintf(logpath, sizeof(logpath), "%s/%s.objects", d->work, tag);
	f = fopen(logpath, "r");
	while (f && !ret && fgets(line, sizeof(line), f)) {
		char *obj = strrchr(line, '\t');

		if (!obj)
			continue;
		obj++;
		obj[strcspn(obj, "\n")] = '\0';
		if (strncmp(obj, seen, slen) || obj[slen] != '/')
			continue;
		if (snprintf(path, sizeof(path), "%s/%s", root, obj + slen + 1) >= (int)sizeof(path))
			continue;
		ret = fn(d, path, path + strlen(root) + 1, arg);
	}
	if (f)
		fclose(f);
	return ret;
}

static int drv_is_rel(struct drv *d, const char *obj, const char *rel, void *arg)
{
	return !strcmp(rel, arg);
}

/* Copy a file, creating the directories on the way; keeps its mode. */
static int copy_file(const char *from, const char *to, struct qp_error *err)
{
	char dir[PATH_MAX], buf[65536], *p;
	int in, out, ret = 0;
	struct stat st;
	ssize_t n;

	snprintf(dir, sizeof(dir), "%s", to);
	for (p = strchr(dir + 1, '/'); p; p = strchr(p + 1, '/')) {
		*p = '\0';
		if (mkdir(dir, 0755) && errno != EEXIST)
			return qp_seterr(err, -errno, "unable to create '%s': %s", dir, strerror(errno));
		*p = '/';
	}
	in = open(from, O_RDONLY | O_CLOEXEC);
	if (in < 0 || fstat(in, &st)) {
		ret = qp_seterr(err, -errno, "unable to read '%s': %s", from, strerror(errno));
		if (in >= 0)
			close(in);
		return ret;
	}
	out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, st.st_mode & 0777);
	if (out < 0) {
		close(in);
		return qp_seterr(err, -errno, "unable to write '%s': %s", to, strerror(errno));
	}
	while (!ret && (n = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, (size_t)n) != n)
			ret = qp_seterr(err, -EIO, "unable to write '%s'", to);
	close(in);
	if (close(out) && !ret)
		ret = qp_seterr(err, -errno, "unable to write '%s': %s", to, strerror(errno));
	return ret;
}

/* Save an object of the original build (probes are gone already). */
static int drv_save_object(struct drv *d, const char *obj, const char *rel, void *arg)
{
	char to[PATH_MAX];
	struct qp_error *err = arg;

	if (access(obj, R_OK))
		return 0;
	return path_join(to, d->snap, rel, err) ? err->code : copy_file(obj, to, err);
}

struct drv_pairing {
	struct qp_diff *diff;     /* differ to feed */
	struct qp_error *err;     /* where errors go */
};

/* Pair an object the patched build recompiled with its saved original. */
static int drv_pair_object(struct drv *d, const char *obj, const char *rel, void *arg)
{
	struct drv_pairing *pr = arg;
	char orig_obj[PATH_MAX];
	bool have_orig;
	int ret;

	ret = path_join(orig_obj, d->snap, rel, pr->err);
	if (ret)
		return ret;
	have_orig = !access(orig_obj, R_OK);
	/* build-system probes compile objects and delete them again */
	if (access(obj, R_OK) || (!have_orig && drv_for_each_object(d, "orig", drv_is_rel, (void *)rel)))
		return 0;
	/*
	 * Another binary's object, or the same source compiled for another
	 * one.  Linked from an archive that was not made again (behind a stamp
	 * file; recompiled by drv_catch_up()), the archive member the target
	 * was linked from is the original object: compared with it.
	 */
	if (d->links && !qp_linkset__has(d->links, obj)) {
		if (!have_orig || !qp_linkset__has(d->links, orig_obj)) {
			d->unlinked++;
			return 0;
		}
		drv_progress(d, "'%s': the target's archive member is still the original object (the archive was not made again): compared with it",
			     rel);
	}
	/* an object the original build lacks comes from a new source file */
	ret = qp_diff__add_object(pr->diff, have_orig ? orig_obj : NULL, obj, rel, pr->err);
	d->rep->objects_compared++;
	return ret;
}

/*
 * Which objects the target binary is linked from, when it was linked
 * through qpatch-cc: the last link seen by qpatch-build's builds, else
 * the record qpatch-cc left beside the binary (a tree that came built,
 * whose builds here did not link it again; its paths are those of the
 * build at the original tree's path).
 */
static int drv_load_links(struct drv *d, struct qp_error *err)
{
	char log[PATH_MAX], built[PATH_MAX], *slash;
	int ret;

	snprintf(log, sizeof(log), "%s/links", d->work);
	snprintf(built, sizeof(built), "%s%s", d->ptree, d->built + strlen(d->tree));
	ret = qp_linkset__load(log, built, d->at_orig_path ? d->orig_src : NULL, d->ptree,
			       &d->links, err);
	slash = strrchr(built, '/');
	if (ret == -ENOENT &&
	    snprintf(log, sizeof(log), "%.*s/.qpatch-cc/%s.link", (int)(slash - built), built,
		     slash + 1) < (int)sizeof(log))
		ret = qp_linkset__load(log, built, d->orig_src, d->ptree, &d->links, err);
	if (ret == -ENOENT) {
		drv_progress(d, "no link of '%s' seen (not linked through qpatch-cc or qpatch-c++?): comparing every recompiled object",
			     d->built + strlen(d->tree) + 1);
		return 0;
	}
	return ret;
}

/*
 * A changed source that nothing could compile (d->missed) is left out of
 * the patch, unless the target is linked from an object of its name (or,
 * the link unknown, there is one beside it): then the target holds code
 * of it that the patch would leave old.
 */
static int drv_check_missed(struct drv *d, struct qp_error *err)
{
	static const char why[] = "but no compilation of it was recorded (built without qpatch-cc, or with one older than this): it cannot be compiled again";
	char obj[PATH_MAX], list[1024] = "";
	size_t i, len;

	for (i = 0; i < d->missed.n; i++) {
		const char *src = d->missed.v[i], *base = drv_base(src);

		snprintf(obj, sizeof(obj), "%.*s.o", (int)strlen(base) - 2, base);
		if (d->links && qp_linkset__has_name(d->links, obj))
			return qp_seterr(err, -ENOENT, "'%s' changed and '%s' is linked from an object '%s', %s",
					 src, d->built + strlen(d->tree) + 1, obj, why);
		snprintf(obj, sizeof(obj), "%.*s.o", (int)strlen(src) - 2, src);
		if (!d->links && drv_exists(d, obj))
			return qp_seterr(err, -ENOENT, "'%s' changed and was compiled into '%s', %s", src,
					 obj, why);
		len = strlen(list);
		snprintf(list + len, sizeof(list) - len, "%s'%s'", i ? ", " : "", d->missed.v[i]);
	}
	if (!d->rep->objects_compared)
		return qp_seterr(err, -ENODATA,
				 "nothing to compare: the change is in %s, which no compilation that qpatch-cc recorded reads (the build does not compile %s, or compiled %s without qpatch-cc or with one older than this)",
				 list, i == 1 ? "it" : "them", i == 1 ? "it" : "them");
	drv_progress(d, "left out of the patch (no recorded compilation reads them): %s", list);
	return 0;
}

static int drv_diff_objects(struct drv *d, struct qp_diff *diff, struct qp_error *err)
{
	struct drv_pairing pr = { .diff = diff, .err = err };
	int ret = drv_load_links(d, err);

	if (!ret)
		ret = drv_for_each_object(d, "patched", drv_pair_object, &pr);
	if (!ret && d->unlinked)
		drv_progress(d, "%zu recompiled object%s not linked into '%s': left out", d->unlinked,
			     d->unlinked == 1 ? "" : "s", d->built + strlen(d->tree) + 1);
	if (!ret && d->missed.n)
		ret = drv_check_missed(d, err);
	if (!ret && !d->rep->objects_compared && d->unlinked)
		ret = qp_seterr(err, -ENODATA,
				"the patched build recompiled %zu object%s, none of them linked into '%s': the change does not touch it",
				d->unlinked, d->unlinked == 1 ? "" : "s", d->built + strlen(d->tree) + 1);
	else if (!ret && !d->rep->objects_compared)
		ret = qp_seterr(err, -ENODATA,
				"the patched build recompiled nothing: do the trees differ in C sources? (a build directory configured inside '%s' and copied along would still compile against that tree's headers: give a tree without it)",
				d->orig_src);
	return ret;
}

/* Save every object file under @dir (relative path @rel) of a cold build:
 * also those the build did not compile because the tree came built. */
static int drv_save_all_objects(struct drv *d, const char *dir, const char *rel,
				struct qp_error *err)
{
	DIR *dd = opendir(dir);
	struct dirent *de;
	int ret = 0;

	if (!dd)
		return 0;
	while (!ret && (de = readdir(dd))) {
		char p[PATH_MAX], r[PATH_MAX];
		size_t n = strlen(de->d_name);
		struct stat st;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
		    snprintf(p, sizeof(p), "%s/%s", dir, de->d_name) >= (int)sizeof(p) ||
		    snprintf(r, sizeof(r), "%s%s%s", rel, *rel ? "/" : "", de->d_name) >= (int)sizeof(r) ||
		    lstat(p, &st))
			continue;
		if (S_ISDIR(st.st_mode))
			ret = drv_save_all_objects(d, p, r, err);
		else if (S_ISREG(st.st_mode) && n > 2 && !strcmp(de->d_name + n - 2, ".o"))
			ret = drv_save_object(d, p, r, err);
	}
	closedir(dd);
	return ret;
}

/* --- what the build did not recompile --------------------------------- */

/*
 * @path as a build saw it (under the original tree's path, or under a work
 * tree) relative to the tree, symbolic links inside the patched tree
 * resolved, into @out (PATH_MAX); -1 when it lies outside.  The work trees
 * go first: with a work directory inside the original tree, they are
 * under it.
 */
static int drv_rel(void *arg, const char *path, char *out)
{
	struct drv *d = arg;
	const char *roots[] = { d->ptree, d->tree, d->orig_src }, *rest = NULL;
	char full[PATH_MAX], real[PATH_MAX];
	size_t i, n = strlen(d->ptree);

	for (i = 0; i < 3 && !rest; i++)
		if (path_under(path, roots[i]))
			rest = path + strlen(roots[i]);
	if (!rest)
		return -1;
	rest += *rest == '/';
	if (snprintf(full, sizeof(full), "%s/%s", d->ptree, rest) < (int)sizeof(full) &&
	    realpath(full, real) && path_under(real, d->ptree))
		rest = real[n] ? real + n + 1 : "";
	snprintf(out, PATH_MAX, "%s", rest);
	return 0;
}

/* The sources and objects of the compilations build @tag logged, relative
 * to the tree, into @srcs and @objs (sorted). */
static int drv_read_compiled(struct drv *d, const char *tag, struct drv_strs *srcs,
			     struct drv_strs *objs, struct qp_error *err)
{
	char logpath[PATH_MAX], line[3 * PATH_MAX + 8], rel[PATH_MAX];
	FILE *f;
	int ret = 0;

	snprintf(logpath, sizeof(logpath), "%s/%s.objects", d->work, tag);
	f = fopen(logpath, "r");
	while (f && !ret && fgets(line, sizeof(line), f)) {
		char *src = strchr(line, '\t'), *obj = src ? strchr(src + 1, '\t') : NULL;

		if (!obj)
			continue;
		*src++ = '\0';
		*obj++ = '\0';
		obj[strcspn(obj, "\n")] = '\0';
		if (!drv_rel(d, src, rel))
			ret = drv_strs_add(srcs, rel);
		if (!ret && !drv_rel(d, obj, rel))
			ret = drv_strs_add(objs, rel);
	}
	if (f)
		fclose(f);
	drv_strs_sort(srcs);
	drv_strs_sort(objs);
	return ret ? qp_seterr(err, ret, "out of memory") : 0;
}

/* Could a compilation read changed file @c?  Not when it is an object,
 * an archive or a program (a patched tree that comes built). */
static bool drv_readable(struct drv *d, const struct drv_changed *c)
{
	char path[PATH_MAX], magic[4];
	FILE *f;
	bool elf;

	snprintf(path, sizeof(path), "%s/%s", d->ptree, c->rel);
	f = fopen(path, "rb");
	if (!f)
		return false;
	elf = fread(magic, 1, 4, f) == 4 && !memcmp(magic, ELFMAG, SELFMAG);
	fclose(f);
	return !elf && qp_file_kind(path) == QP_FILE_OTHER;
}

/*
 * The first changed file (of @ch, @nch) that compilation @r reads: its
 * source, a file its dependency file names, or a new file whose name one
 * of those has (found first in an include directory, it shadows the old
 * one).  NULL when none; "" when what it reads is unknown (the caller
 * knows that a changed file is not a source the build compiled: a header,
 * or a .c file that another includes).  Each file found is marked in
 * @read.
 */
static const char *drv_reads(const struct qp_record *r, struct drv_changed **ch, size_t nch,
			     bool *read)
{
	const char *first = NULL;
	size_t i, j;

	for (i = 0; i < nch; i++) {
		bool hit = r->src_rel && !strcmp(r->src_rel, ch[i]->rel);

		for (j = 0; !hit && j < r->ndeps; j++)
			hit = !strcmp(r->deps[j], ch[i]->rel) ||
			      (ch[i]->added && !strcmp(drv_base(r->deps[j]), drv_base(ch[i]->rel)));
		if (hit) {
			read[i] = true;
			first = first ? first : ch[i]->rel;
		}
	}
	return first ? first : !r->deps_known ? "" : NULL;
}

/*
 * With one tree for both versions, an object compiled again stays the
 * patched version's after the run: no build makes it again when the
 * source is put back.  WORK/recompiled lists them for the next run
 * (drv_restore_recompiled()).
 */
static int drv_note_recompiled(struct drv *d, const char *rel, struct qp_error *err)
{
	char path[PATH_MAX];
	FILE *f;

	snprintf(path, sizeof(path), "%s/recompiled", d->work);
	f = fopen(path, "a");
	if (!f || fprintf(f, "%s\n", rel) < 0 || fclose(f)) {
		if (f)
			fclose(f);
		return qp_seterr(err, -EIO, "unable to write '%s'", path);
	}
	return 0;
}

/* Put the original objects listed in WORK/recompiled back into the tree. */
static int drv_restore_recompiled(struct drv *d, struct qp_error *err)
{
	char path[PATH_MAX], rel[PATH_MAX], from[PATH_MAX], to[PATH_MAX];
	FILE *f;
	int ret = 0;

	snprintf(path, sizeof(path), "%s/recompiled", d->work);
	f = fopen(path, "r");
	if (!f)
		return 0;
	while (!ret && fgets(rel, sizeof(rel), f)) {
		rel[strcspn(rel, "\n")] = '\0';
		if (path_join(from, d->snap, rel, err) || path_join(to, d->tree, rel, err))
			ret = err->code;
		else if (!access(from, R_OK))
			ret = copy_file(from, to, err);
	}
	fclose(f);
	return ret ? ret : unlink(path) ? qp_seterr(err, -errno, "unable to remove '%s'", path) : 0;
}

/* The compiler's first "error:" line (else the last line) that @log has
 * past @from, into @out. */
static void drv_first_error(const char *log, off_t from, char *out, size_t size)
{
	char line[512];
	FILE *f = fopen(log, "r");

	out[0] = '\0';
	if (!f || fseeko(f, from, SEEK_SET)) {
		if (f)
			fclose(f);
		return;
	}
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		if (!line[0])
			continue;
		snprintf(out, size, "%s", line);
		if (strstr(line, "error:"))
			break;
	}
	fclose(f);
}

/* Compile @r again in the patched tree, as the build did: qpatch-cc with
 * its recorded arguments, in its directory, with the build's environment
 * (it is logged like the build's own compilations). */
static int drv_recompile(struct drv *d, const struct qp_record *r, const char *why,
			 struct qp_error *err)
{
	char cwd[PATH_MAX], first[512], **argv;
	struct drv_env e;
	struct stat st;
	size_t n = 0, len;
	int ret;

	while (r->args[n])
		n++;
	argv = calloc(n + 2, sizeof(*argv));
	if (!argv)
		return qp_seterr(err, -ENOMEM, "out of memory");
	argv[0] = (char *)d->opts->cc_wrapper;
	memcpy(argv + 1, r->args, n * sizeof(*argv));
	drv_env(d, d->ptree, "patched", &e);
	snprintf(cwd, sizeof(cwd), "%s%s%s", d->at_orig_path ? d->orig_src : d->ptree,
		 *r->cwd_rel ? "/" : "", r->cwd_rel);
	drv_progress(d, "recompiling '%s' (it reads '%s', which changed): the build did not",
		     r->obj_rel, why);
	if (stat(e.out, &st))
		st.st_size = 0;
	ret = run_at(argv, cwd, d->at_orig_path ? d->ptree : NULL, d->orig_src, e.env, e.out, err);
	free(argv);
	if (ret) {
		drv_first_error(e.out, st.st_size, first, sizeof(first));
		qp_preperr(err, ret, "recompiling '%s' with the command recorded for it", r->obj_rel);
		len = strlen(err->msg);
		if (first[0])
			snprintf(err->msg + len, sizeof(err->msg) - len, ": %s", first);
		return ret;
	}
	d->rep->objects_recompiled++;
	return d->at_orig_path ? 0 : drv_note_recompiled(d, r->obj_rel, err);
}

/* Note @rel as a changed C source that nothing can compile. */
static int drv_missed(struct drv *d, const char *rel, struct qp_error *err)
{
	drv_progress(d, "'%s' changed, but no compilation that qpatch-cc recorded reads it", rel);
	if (drv_strs_add(&d->missed, rel))
		return qp_seterr(err, -ENOMEM, "out of memory");
	return 0;
}

/*
 * After the patched build: every compilation that reads a changed file
 * (its source, or a header: the files its dependency file names) and that
 * the build did not redo (a subdirectory built once behind a stamp file,
 * as redis builds deps/) is redone with its recorded command, and so
 * compared like any other.  A changed C source that no recorded
 * compilation reads goes to d->missed.  The records are read only when a
 * changed file is not a source the build compiled.
 */
static int drv_catch_up(struct drv *d, struct qp_error *err)
{
	struct drv_strs srcs = { 0 }, objs = { 0 };
	struct qp_records *recs = NULL;
	struct drv_changed **ch = calloc(d->nchanged + 1, sizeof(*ch));
	bool *read = calloc(d->nchanged + 1, sizeof(*read)), all_compiled = true;
	size_t i, nch = 0;
	int ret;

	if (!ch || !read) {
		ret = qp_seterr(err, -ENOMEM, "out of memory");
		goto out;
	}
	ret = drv_read_compiled(d, "patched", &srcs, &objs, err);
	for (i = 0; !ret && i < d->nchanged; i++) {
		if (!drv_readable(d, &d->changed[i]))
			continue;
		all_compiled = all_compiled && drv_strs_has(&srcs, d->changed[i].rel);
		ch[nch++] = &d->changed[i];
	}
	if (ret || all_compiled) /* the build did what was needed */
		goto out;
	ret = qp_records__load(d->ptree, true, drv_rel, d, &recs, err);
	for (i = 0; !ret && i < qp_records__count(recs); i++) {
		const struct qp_record *r = qp_records__get(recs, i);
		const char *why;

		/* a probe's, or a stale one: its object or source is gone */
		if (!r->src_rel || !drv_exists(d, r->obj_rel) || !drv_exists(d, r->src_rel))
			continue;
		why = drv_reads(r, ch, nch, read);
		if (why && !drv_strs_has(&objs, r->obj_rel))
			ret = drv_recompile(d, r, *why ? why : "what it reads is unknown: a header", err);
	}
	for (i = 0; !ret && i < nch; i++) {
		size_t n = strlen(ch[i]->rel);

		if (!read[i] && !drv_strs_has(&srcs, ch[i]->rel) && n > 2 &&
		    !strcmp(ch[i]->rel + n - 2, ".c"))
			ret = drv_missed(d, ch[i]->rel, err);
	}
	if (!ret && !qp_records__count(recs))
		drv_progress(d, "the tree holds no compilation records of qpatch-cc (built by an older one?): objects that the build did not recompile cannot be found");
	if (!ret)
		ret = drv_check_leaks(d, "patched", err);
out:
	qp_records__free(recs);
	drv_strs_release(&srcs);
	drv_strs_release(&objs);
	free(ch);
	free(read);
	return ret;
}

/* The original version: built (or updated), its objects and binary saved. */
static int drv_build_orig(struct drv *d, struct qp_error *err)
{
	char log[PATH_MAX], *built = d->built;
	const char *base;
	double t0 = now_s();
	int copied = 0, ret;

	snprintf(log, sizeof(log), "%s/copy.log", d->work);
	drv_progress(d, "%s original tree '%s' in '%s'", d->warm ? "updating the build of" : "building",
		     d->opts->orig_dir, d->tree);
	if (d->warm) { /* puts back what changed (with one tree: the last patched build) */
		ret = sync_tree(d->orig_src, d->tree, &copied, NULL, err);
		if (!ret && !d->at_orig_path)
			ret = drv_restore_recompiled(d, err);
	} else
		ret = copy_tree(d->orig_src, d->tree, log, err);
	if (!ret)
		ret = build_tree(d, d->tree, "orig", err);
	/* the patched version builds elsewhere: the tree keeps the objects */
	if (!ret && !d->at_orig_path)
		ret = d->warm ? drv_for_each_object(d, "orig", drv_save_object, err) :
				drv_save_all_objects(d, d->tree, "", err);
	if (!ret)
		ret = drv_target(d, built, err);
	if (!ret) {
		base = strrchr(built, '/');
		snprintf(d->target, sizeof(d->target), "%s/target/%s", d->work, base ? base + 1 : built);
		ret = copy_file(built, d->target, err);
	}
	if (ret)
		return qp_preperr(err, ret, "original build");
	d->rep->orig_build_s = now_s() - t0;
	d->rep->orig_warm = d->warm;
	drv_progress(d, "original build done in %.2f s", d->rep->orig_build_s);
	return 0;
}

static int drv_build_patched(struct drv *d, struct qp_error *err)
{
	char log[PATH_MAX];
	double t0 = now_s();
	int copied = 0, ret = 0;

	snprintf(log, sizeof(log), "%s/copy.log", d->work);
	/* its own tree starts as the original build, as the last run left it */
	if (d->at_orig_path)
		ret = access(d->ptree, F_OK) ? copy_tree(d->tree, d->ptree, log, err) :
					       mirror_tree(d->tree, d->ptree, err);
	if (!ret)
		ret = sync_tree(d->pat_src, d->ptree, &copied, d, err);
	drv_progress(d, "building the patched version incrementally (%d changed file%s)", copied,
		     copied == 1 ? "" : "s");
	if (!ret)
		ret = build_tree(d, d->ptree, "patched", err);
	if (!ret)
		ret = drv_catch_up(d, err);
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
		d->warm = !access(d->tree, F_OK);
		return 0;
	}
	if (!access(d->tree, F_OK))
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

/* Build at the original tree's path where a mount namespace allows it:
 * not when the work directory is inside the original tree (the mount
 * would hide it from the build). */
static void drv_choose_path(struct drv *d)
{
	const char *why = NULL;

	if (d->opts->no_namespace)
		why = "--no-namespace";
	else if (path_under(d->work, d->orig_src))
		why = "the work directory is inside the original tree";
	else if (qp_bindns_probe(d->work, d->orig_src))
		why = "no mount namespace can be made here";
	d->at_orig_path = !why;
	if (why)
		drv_progress(d, "building in '%s' itself, not at the original tree's path (%s)",
			     d->tree, why);
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
	snprintf(d->tree, sizeof(d->tree), "%s/tree", d->work);
	snprintf(d->snap, sizeof(d->snap), "%s/orig-objs", d->work);
	drv_choose_path(d);
	if (d->at_orig_path) { /* the original's objects stay in its tree */
		snprintf(d->ptree, sizeof(d->ptree), "%s/ptree", d->work);
		memcpy(d->snap, d->tree, sizeof(d->snap));
	} else {
		memcpy(d->ptree, d->tree, sizeof(d->ptree));
	}
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
	struct drv d = { .opts = opts, .rep = rep, .livepatching = -1 };
	struct qp_diff *diff = NULL;
	struct qp_patch *patch = NULL;
	const char *const *k;
	struct stat st;
	double t0;
	int ret;

	ret = drv_make_work(&d, err);
	if (!ret)
		ret = drv_build_orig(&d, err);
	if (!ret && opts->target)
		ret = drv_check_target(&d, d.target, opts->target, err);
	if (!ret)
		ret = drv_build_patched(&d, err);
	if (ret)
		goto out;
	snprintf(rep->target, sizeof(rep->target), "%s", opts->target ? opts->target : d.target);
	t0 = now_s();
	ret = qp_diff__new(d.target, &diff, err);
	if (!ret && d.target_id_size)
		qp_diff__set_build_id(diff, d.target_id, d.target_id_size);
	if (!ret) /* original sources are the user's; patched ones are in the tree */
		ret = qp_diff__set_sources(diff, d.orig_src, d.orig_src, d.ptree);
	for (k = opts->keep_values; !ret && k && *k; k++)
		ret = qp_diff__keep_value(diff, *k, err);
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
	qp_linkset__free(d.links);
	drv_strs_release(&d.missed);
	for (size_t i = 0; i < d.nchanged; i++)
		free(d.changed[i].rel);
	free(d.changed);
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
		[QP_CHANGE_KEPT_VALUE] = "kept value",
	};

	return (unsigned)k < sizeof(names) / sizeof(names[0]) ? names[k] : "?";
}
