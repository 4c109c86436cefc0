// SPDX-License-Identifier: MIT
/*
 * The patch store: see qp_store in host.h.
 *
 *	DIR/.lock                      flock(2)ed by writers
 *	DIR/.generation                replaced on every change (the daemon
 *	                               watches it with inotify)
 *	DIR/BUILDID/0001-ID.qpatch     the binary's patches, in order
 *	DIR/BUILDID/0002-ID.so         a hand-written patch library
 *	                               (QPATCH_TARGET_BUILDID), loaded from here
 *	DIR/BUILDID/removed/...        removed patches, to be undone wherever
 *	                               they are still applied
 *	DIR/by-name/FILE/0001-ID.so     a library naming its target by file name
 *	                               (QPATCH_TARGET): every object of that name
 *
 * Files are written to a temporary name, flushed and renamed, so a reader
 * sees a whole patch or none.  The order is the number in the name, and
 * the patch id is the one inside the file (the name only helps people);
 * a library's id is its file name, so that is what follows the number.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "host.h"
#include "qpatch/elf.h"

#define STORE_MAX_SEQ 9999

struct qp_store {
	char dir[PATH_MAX];               /* the store directory */
	struct qp_store_entry *v;         /* entries: by build-id, then seq; removed last */
	size_t n;                         /* count of v */
	int lock_fd;                      /* .lock while locked, else -1 */
	struct qp_policy *policy;         /* STORE/policy as last read; NULL: none */
};

const char *qp_store_default_dir(void)
{
	const char *d = getenv("QPATCH_STORE");

	return d && *d ? d : QP_STORE_DEFAULT;
}

static void store_release_entries(struct qp_store *s)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		qp_patch__free(s->v[i].patch);
	free(s->v);
	s->v = NULL;
	s->n = 0;
}

void qp_store__free(struct qp_store *s)
{
	if (!s)
		return;
	store_release_entries(s);
	if (s->lock_fd >= 0)
		close(s->lock_fd);
	qp_policy__free(s->policy);
	free(s);
}

static bool store_is_hex(const char *s, size_t max)
{
	size_t n = 0;

	for (; s[n]; n++)
		if (n >= max || !isxdigit((unsigned char)s[n]) || isupper((unsigned char)s[n]))
			return false;
	return n >= 2 && n % 2 == 0;
}

static int store_mkdir(const char *path, struct qp_error *err)
{
	if (mkdir(path, 0755) && errno != EEXIST)
		return qp_seterr(err, -errno, "cannot create '%s': %s", path, strerror(errno));
	return 0;
}

int qp_store__open(const char *dir, bool create, struct qp_store **out, struct qp_error *err)
{
	struct qp_store *s;
	struct stat st;
	int ret;

	*out = NULL;
	if (create && stat(dir, &st) && errno == ENOENT) {
		ret = store_mkdir(dir, err);
		if (ret)
			return ret;
		chmod(dir, 0755); /* whatever the umask */
	}
	if (stat(dir, &st))
		return qp_seterr(err, -errno, "store '%s': %s", dir, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return qp_seterr(err, -ENOTDIR, "store '%s' is not a directory", dir);
	ret = qp_trust_path(dir, err);
	if (ret)
		return qp_preperr(err, ret, "store '%s' refused", dir);
	s = calloc(1, sizeof(*s));
	if (!s)
		return qp_seterr(err, -ENOMEM, "out of memory");
	if (!realpath(dir, s->dir))
		snprintf(s->dir, sizeof(s->dir), "%s", dir);
	s->lock_fd = -1;
	*out = s;
	return 0;
}

const char *qp_store__dir(const struct qp_store *s)
{
	return s->dir;
}

static bool store_has_suffix(const char *name, const char *suffix)
{
	size_t n = strlen(name), k = strlen(suffix);

	return n > k && !strcmp(name + n - k, suffix);
}

/* A new entry at the end of s->v, zeroed; NULL when out of memory. */
static struct qp_store_entry *store_new_entry(struct qp_store *s, struct qp_error *err)
{
	struct qp_store_entry *v = realloc(s->v, (s->n + 1) * sizeof(*v));

	if (!v) {
		qp_seterr(err, -ENOMEM, "out of memory");
		return NULL;
	}
	s->v = v;
	memset(&v[s->n], 0, sizeof(v[s->n]));
	return &v[s->n++];
}

/*
 * Is the library at @path a patch library for the store's @group (the
 * build-id in hex, or "by-name/FILE") with the id @id?  @info: what it
 * says.  Under the trust rules and the policy like any stored file.
 */
static int store_check_so(struct qp_store *s, const char *path, const char *group,
			  const char *id, struct qp_so_info *info, struct qp_error *err)
{
	char want[sizeof(((struct qp_store_entry *)0)->group)];
	uint8_t *buf = NULL;
	size_t len = 0;
	int ret = qp_trust_read(path, QP_TRUST_MAX_PATCH, &buf, &len, err);

	if (!ret)
		ret = qp_policy__check_so(s->policy, path, err);
	if (!ret && !qp_host_is_so(buf, len))
		ret = qp_seterr(err, QP_EFORMAT, "'%s' is not a shared library", path);
	free(buf);
	if (!ret)
		ret = qp_so_info__read(path, info, err);
	if (ret)
		return ret;
	if (info->by_build_id)
		snprintf(want, sizeof(want), "%s", info->target);
	else
		snprintf(want, sizeof(want), QP_STORE_BY_NAME "/%s", info->target);
	if (group && strcmp(want, group))
		return qp_seterr(err, -EINVAL, "store entry '%s' is for '%s', not '%s'", path, want,
				 group);
	if (id)
		snprintf(info->id, sizeof(info->id), "%s", id);
	return 0;
}

/* The fields of entry @e for the library @info stored at @path. */
static void store_fill_so(struct qp_store_entry *e, const struct qp_so_info *info,
			  const char *path)
{
	e->so = true;
	e->by_name = !info->by_build_id;
	snprintf(e->id, sizeof(e->id), "%s", info->id);
	snprintf(e->bid_hex, sizeof(e->bid_hex), "%s", info->by_build_id ? info->target : "");
	snprintf(e->target, sizeof(e->target), "%s", info->target);
	if (info->by_build_id)
		snprintf(e->group, sizeof(e->group), "%s", info->target);
	else
		snprintf(e->group, sizeof(e->group), QP_STORE_BY_NAME "/%s", info->target);
	snprintf(e->path, sizeof(e->path), "%s", path);
}

/* Read one patch file of the store into a new entry. */
static int store_read_entry(struct qp_store *s, const char *group, const char *dirpath,
			    const char *name, bool removed, struct qp_error *err)
{
	struct qp_store_entry *e;
	const struct qp_info *info;
	char path[PATH_MAX], hex[QP_BUILD_ID_HEX];
	struct qp_so_info so;
	struct qp_patch *p;
	struct stat st;
	unsigned seq;
	int ret;

	if (sscanf(name, "%4u-", &seq) != 1 || strlen(name) < 8)
		return 0; /* not ours (a temporary file, a note) */
	snprintf(path, sizeof(path), "%s/%s", dirpath, name);
	if (store_has_suffix(name, ".so")) {
		/* checked again at every load: a file in the store could be replaced */
		ret = store_check_so(s, path, group, strchr(name, '-') + 1, &so, err);
		if (ret)
			return qp_preperr(err, ret, "store entry refused");
		e = store_new_entry(s, err);
		if (!e)
			return err->code;
		store_fill_so(e, &so, path);
	} else if (store_has_suffix(name, ".qpatch")) {
		p = qp_trust_open_checked(path, s->policy, err);
		if (!p)
			return qp_preperr(err, err->code, "store entry refused");
		info = qp_patch__info(p);
		qp_hex(info->build_id, info->build_id_size, hex);
		if (strcmp(hex, group)) {
			qp_patch__free(p);
			return qp_seterr(err, -EINVAL, "store entry '%s' is for build-id %s, not %s", path,
					 hex, group);
		}
		e = store_new_entry(s, err);
		if (!e) {
			qp_patch__free(p);
			return err->code;
		}
		e->patch = p;
		snprintf(e->id, sizeof(e->id), "%s", info->id);
		snprintf(e->bid_hex, sizeof(e->bid_hex), "%s", hex);
		snprintf(e->group, sizeof(e->group), "%s", hex);
		snprintf(e->target, sizeof(e->target), "%s", info->target_name);
		snprintf(e->path, sizeof(e->path), "%s", path);
	} else {
		return 0;
	}
	e->seq = seq;
	e->removed = removed;
	if (!stat(path, &st)) {
		e->added = st.st_mtime;
		e->size = (size_t)st.st_size;
	}
	return 0;
}

static int store_read_dir(struct qp_store *s, const char *group, bool removed,
			  struct qp_error *err)
{
	char path[PATH_MAX];
	struct dirent *de;
	DIR *d;
	int ret = 0;

	snprintf(path, sizeof(path), "%s/%s%s", s->dir, group, removed ? "/removed" : "");
	d = opendir(path);
	if (!d)
		return errno == ENOENT && removed ? 0 :
		       qp_seterr(err, -errno, "cannot read '%s': %s", path, strerror(errno));
	while (!ret && (de = readdir(d)))
		if (de->d_name[0] != '.')
			ret = store_read_entry(s, group, path, de->d_name, removed, err);
	closedir(d);
	return ret;
}

static int entry_cmp(const void *a, const void *b)
{
	const struct qp_store_entry *x = a, *y = b;
	int c = x->removed - y->removed;

	if (!c)
		c = strcmp(x->group, y->group);
	if (!c)
		c = x->seq < y->seq ? -1 : x->seq > y->seq;
	return c;
}

/* (Re)read STORE/policy. */
static int store_policy(struct qp_store *s, struct qp_error *err)
{
	qp_policy__free(s->policy);
	s->policy = NULL;
	return qp_policy__load(s->dir, &s->policy, err);
}

/* STORE/by-name/FILE/: the libraries for each file name. */
static int store_read_by_name(struct qp_store *s, struct qp_error *err)
{
	char path[PATH_MAX], group[QP_NAME_MAX + 16];
	struct dirent *de;
	DIR *d;
	int ret = 0;

	snprintf(path, sizeof(path), "%s/" QP_STORE_BY_NAME, s->dir);
	d = opendir(path);
	if (!d)
		return errno == ENOENT ? 0 :
		       qp_seterr(err, -errno, "cannot read '%s': %s", path, strerror(errno));
	while (!ret && (de = readdir(d))) {
		if (de->d_name[0] == '.' || strlen(de->d_name) >= QP_NAME_MAX)
			continue;
		snprintf(group, sizeof(group), QP_STORE_BY_NAME "/%s", de->d_name);
		ret = store_read_dir(s, group, false, err);
		if (!ret)
			ret = store_read_dir(s, group, true, err);
	}
	closedir(d);
	return ret;
}

int qp_store__load(struct qp_store *s, struct qp_error *err)
{
	struct dirent *de;
	DIR *d;
	int ret;

	store_release_entries(s);
	ret = store_policy(s, err);
	if (ret)
		return ret;
	d = opendir(s->dir);
	if (!d)
		return qp_seterr(err, -errno, "cannot read store '%s': %s", s->dir, strerror(errno));
	while (!ret && (de = readdir(d))) {
		if (!store_is_hex(de->d_name, 2 * QP_BUILD_ID_MAX))
			continue;
		ret = store_read_dir(s, de->d_name, false, err);
		if (!ret)
			ret = store_read_dir(s, de->d_name, true, err);
	}
	closedir(d);
	if (!ret)
		ret = store_read_by_name(s, err);
	if (ret) {
		store_release_entries(s);
		return ret;
	}
	if (s->n > 1)
		qsort(s->v, s->n, sizeof(*s->v), entry_cmp);
	return 0;
}

size_t qp_store__count(const struct qp_store *s)
{
	return s->n;
}

const struct qp_store_entry *qp_store__entry(const struct qp_store *s, size_t i)
{
	return i < s->n ? &s->v[i] : NULL;
}

const struct qp_store_entry *qp_store__find(const struct qp_store *s, const char *id,
					    bool removed)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		if (s->v[i].removed == removed && !strcmp(s->v[i].id, id))
			return &s->v[i];
	return NULL;
}

bool qp_store__has_build_id(const struct qp_store *s, const uint8_t *id, size_t len)
{
	char hex[QP_BUILD_ID_HEX];
	size_t i;

	if (len > QP_BUILD_ID_MAX)
		return false;
	qp_hex(id, len, hex);
	for (i = 0; i < s->n; i++)
		if (!s->v[i].removed && !s->v[i].by_name && !strcmp(s->v[i].bid_hex, hex))
			return true;
	return false;
}

bool qp_store_entry__maps(const struct qp_store_entry *e, const struct qp_obj *objs, size_t n)
{
	char hex[QP_BUILD_ID_HEX];
	size_t i;

	for (i = 0; i < n; i++) {
		if (e->by_name) {
			if (qp_obj_named(&objs[i], e->target))
				return true;
			continue;
		}
		qp_hex(objs[i].build_id, objs[i].build_id_size, hex);
		if (!strcmp(hex, e->bid_hex))
			return true;
	}
	return false;
}

bool qp_host_is_so(const uint8_t *buf, size_t len)
{
	/* e_type, little-endian, at offset 16 of an ELF header */
	return len >= 64 && !memcmp(buf, ELFMAG, SELFMAG) && buf[16] == ET_DYN && buf[17] == 0;
}

/* --- changing the store ------------------------------------------------- */

static int store_lock(struct qp_store *s, struct qp_error *err)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/.lock", s->dir);
	s->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (s->lock_fd < 0)
		return qp_seterr(err, -errno, "cannot open '%s': %s", path, strerror(errno));
	if (flock(s->lock_fd, LOCK_EX)) {
		int e = errno;

		close(s->lock_fd);
		s->lock_fd = -1;
		return qp_seterr(err, -e, "cannot lock '%s': %s", path, strerror(e));
	}
	return 0;
}

static void store_unlock(struct qp_store *s)
{
	if (s->lock_fd >= 0)
		close(s->lock_fd);
	s->lock_fd = -1;
}

/* Checks the file written under a temporary name before it is renamed. */
typedef int (*store_check_fn)(const char *tmp, void *arg, struct qp_error *err);

/* Write @len bytes to a new file @path atomically (temporary + rename);
 * @check (NULL: none) may refuse the temporary file first. */
static int store_write_checked(const char *path, const void *buf, size_t len,
			       store_check_fn check, void *arg, struct qp_error *err)
{
	char tmp[PATH_MAX];
	size_t done = 0;
	int fd, ret = 0;

	snprintf(tmp, sizeof(tmp), "%s.tmp%d", path, (int)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0)
		return qp_seterr(err, -errno, "cannot create '%s': %s", tmp, strerror(errno));
	fchmod(fd, 0644);
	while (!ret && done < len) {
		ssize_t n = write(fd, (const char *)buf + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			ret = qp_seterr(err, n ? -errno : -EIO, "cannot write '%s': %s", tmp,
					n ? strerror(errno) : "short write");
		else
			done += (size_t)n;
	}
	if (!ret && fsync(fd))
		ret = qp_seterr(err, -errno, "cannot write '%s': %s", tmp, strerror(errno));
	close(fd);
	if (!ret && check)
		ret = check(tmp, arg, err);
	if (!ret && rename(tmp, path))
		ret = qp_seterr(err, -errno, "cannot rename '%s': %s", tmp, strerror(errno));
	if (ret)
		unlink(tmp);
	return ret;
}

static int store_write_file(const char *path, const void *buf, size_t len, struct qp_error *err)
{
	return store_write_checked(path, buf, len, NULL, NULL, err);
}

/* Tell watchers the store changed. */
static int store_bump(struct qp_store *s, struct qp_error *err)
{
	char path[PATH_MAX], buf[64];
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	snprintf(path, sizeof(path), "%s/.generation", s->dir);
	snprintf(buf, sizeof(buf), "%lld.%09ld\n", (long long)ts.tv_sec, ts.tv_nsec);
	return store_write_file(path, buf, strlen(buf), err);
}

/* A file name for patch @id: its characters that are safe in a name. */
static void store_file_name(unsigned seq, const char *id, char *out, size_t size)
{
	char safe[QP_ID_MAX];
	size_t i;

	for (i = 0; id[i] && i < sizeof(safe) - 1; i++)
		safe[i] = isalnum((unsigned char)id[i]) || strchr("._-", id[i]) ? id[i] : '_';
	safe[i] = '\0';
	snprintf(out, size, "%04u-%s.qpatch", seq, safe);
}

/* The number after the last (not removed) patch of @group. */
static int store_next_seq(const struct qp_store *s, const char *group, unsigned *seq,
			  struct qp_error *err)
{
	size_t i;

	*seq = 1;
	for (i = 0; i < s->n; i++)
		if (!s->v[i].removed && !strcmp(s->v[i].group, group) && s->v[i].seq >= *seq)
			*seq = s->v[i].seq + 1;
	if (*seq > STORE_MAX_SEQ)
		return qp_seterr(err, -ENOSPC, "'%s' has %u patches stored, the most there can be",
				 group, STORE_MAX_SEQ);
	return 0;
}

/* The library written under its temporary name must say what the one
 * given said (the bytes stored are the ones checked). */
static int store_so_same(const char *tmp, void *arg, struct qp_error *err)
{
	const struct qp_so_info *want = arg;
	struct qp_so_info got;
	int ret = qp_so_info__read(tmp, &got, err);

	if (!ret && (got.by_build_id != want->by_build_id || strcmp(got.target, want->target) ||
		     got.nreplace != want->nreplace))
		ret = qp_seterr(err, -EINVAL, "'%s' changed while it was stored", tmp);
	return ret;
}

/* A library's id is its file name, which the store keeps after the number. */
static int store_so_id_ok(const char *path, const char *id, struct qp_error *err)
{
	size_t i;

	for (i = 0; id[i]; i++)
		if (!isalnum((unsigned char)id[i]) && !strchr("._-+", id[i]))
			break;
	if (id[i] || !store_has_suffix(id, ".so") || strlen(id) >= QP_ID_MAX - 1)
		return qp_seterr(err, -EINVAL, "'%s': a library is stored under its file name, which "
				 "must end in .so and hold only letters, digits and . _ - + (at most %d bytes)",
				 path, QP_ID_MAX - 2);
	return 0;
}

/* qp_store__add() of a hand-written patch library read from @path as @buf. */
static int store_add_so(struct qp_store *s, const char *path, const uint8_t *buf, size_t len,
			struct qp_store_entry *out, struct qp_error *err)
{
	struct qp_store_entry e = { 0 };
	struct qp_so_info info;
	char dir[PATH_MAX], file[PATH_MAX + 96];
	unsigned seq = 1;
	size_t i;
	int ret = store_check_so(s, path, NULL, NULL, &info, err);

	if (!ret)
		ret = store_so_id_ok(path, info.id, err);
	if (!ret && !info.by_build_id && info.target[0] == '.')
		ret = qp_seterr(err, -EINVAL, "'%s': QPATCH_TARGET '%s' is not a file name", path,
				info.target);
	if (ret)
		return ret;
	store_fill_so(&e, &info, "");
	ret = store_lock(s, err);
	if (!ret)
		ret = qp_store__load(s, err);
	if (!ret && qp_store__find(s, info.id, false))
		ret = qp_seterr(err, QP_EAPPLIED, "patch '%s' is in the store already", info.id);
	if (!ret)
		ret = store_next_seq(s, e.group, &seq, err);
	if (!ret && e.by_name) {
		snprintf(dir, sizeof(dir), "%s/" QP_STORE_BY_NAME, s->dir);
		ret = store_mkdir(dir, err);
	}
	snprintf(dir, sizeof(dir), "%s/%s", s->dir, e.group);
	if (!ret)
		ret = store_mkdir(dir, err);
	snprintf(file, sizeof(file), "%s/%04u-%s", dir, seq, info.id);
	if (!ret)
		ret = store_write_checked(file, buf, len, store_so_same, &info, err);
	for (i = 0; !ret && i < s->n; i++)
		if (s->v[i].removed && !strcmp(s->v[i].id, info.id))
			unlink(s->v[i].path);
	if (!ret)
		ret = store_bump(s, err);
	if (!ret && out) {
		e.seq = seq;
		e.size = len;
		snprintf(e.path, sizeof(e.path), "%s", file);
		*out = e;
	}
	store_unlock(s);
	return ret;
}

int qp_store__add(struct qp_store *s, const char *patch_path, struct qp_store_entry *out,
		  struct qp_error *err)
{
	const struct qp_info *info;
	struct qp_patch *p;
	char hex[QP_BUILD_ID_HEX], dir[PATH_MAX], name[QP_ID_MAX + 16], path[PATH_MAX + 96];
	unsigned seq = 1;
	uint8_t *buf = NULL;
	size_t len = 0, i;
	int ret;

	/* the bytes stored are the ones validated */
	ret = qp_trust_read(patch_path, QP_TRUST_MAX_PATCH, &buf, &len, err);
	if (!ret)
		ret = store_policy(s, err);
	if (!ret && qp_host_is_so(buf, len)) {
		ret = store_add_so(s, patch_path, buf, len, out, err);
		free(buf);
		return ret;
	}
	if (!ret)
		ret = qp_policy__check(s->policy, buf, len, patch_path, err);
	if (ret) {
		free(buf);
		return ret;
	}
	p = qp_patch__open_named(buf, len, patch_path, err);
	if (!p) {
		free(buf);
		return err->code;
	}
	info = qp_patch__info(p);
	qp_hex(info->build_id, info->build_id_size, hex);
	ret = store_lock(s, err);
	if (!ret)
		ret = qp_store__load(s, err);
	if (!ret && qp_store__find(s, info->id, false))
		ret = qp_seterr(err, QP_EAPPLIED, "patch '%s' is in the store already", info->id);
	if (!ret)
		ret = store_next_seq(s, hex, &seq, err);
	snprintf(dir, sizeof(dir), "%s/%s", s->dir, hex);
	if (!ret)
		ret = store_mkdir(dir, err);
	store_file_name(seq, info->id, name, sizeof(name));
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (!ret)
		ret = store_write_file(path, buf, len, err);
	/* a patch added again is no longer one to undo */
	for (i = 0; !ret && i < s->n; i++)
		if (s->v[i].removed && !strcmp(s->v[i].id, info->id))
			unlink(s->v[i].path);
	if (!ret)
		ret = store_bump(s, err);
	if (!ret && out) {
		memset(out, 0, sizeof(*out));
		snprintf(out->id, sizeof(out->id), "%s", info->id);
		snprintf(out->bid_hex, sizeof(out->bid_hex), "%s", hex);
		snprintf(out->group, sizeof(out->group), "%s", hex);
		snprintf(out->target, sizeof(out->target), "%s", info->target_name);
		snprintf(out->path, sizeof(out->path), "%s", path);
		out->seq = seq;
		out->size = len;
	}
	store_unlock(s);
	free(buf);
	qp_patch__free(p);
	return ret;
}

/* Does the file at @path begin like a shared library? */
static bool store_is_so_file(const char *path)
{
	uint8_t head[64];
	ssize_t n = -1;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd >= 0) {
		n = read(fd, head, sizeof(head));
		close(fd);
	}
	return n == (ssize_t)sizeof(head) && qp_host_is_so(head, sizeof(head));
}

int qp_store__verify(struct qp_store *s, const char *path, struct qp_store_check *out,
		     struct qp_error *err)
{
	const struct qp_sig_disk *sig;
	struct qp_patch *p;
	int ret;

	memset(out, 0, sizeof(*out));
	ret = store_policy(s, err);
	if (ret)
		return ret;
	out->policy = s->policy != NULL;
	if (store_is_so_file(path)) {
		struct qp_so_info info;

		out->so = true;
		ret = store_check_so(s, path, NULL, NULL, &info, err);
		if (!ret)
			snprintf(out->id, sizeof(out->id), "%s", info.id);
		return ret;
	}
	p = qp_trust_open_checked(path, s->policy, err);
	if (!p)
		return err->code;
	sig = qp_patch__signature(p);
	out->signed_ = sig != NULL;
	if (sig)
		qp_sig_key_id_hex(sig->key_id, out->key_id);
	snprintf(out->id, sizeof(out->id), "%s", qp_patch__info(p)->id);
	qp_patch__free(p);
	return 0;
}

int qp_store__remove(struct qp_store *s, const char *id, struct qp_error *err)
{
	const struct qp_store_entry *e;
	char dir[PATH_MAX], path[PATH_MAX + 64];
	const char *base;
	size_t i;
	int ret;

	ret = store_lock(s, err);
	if (!ret)
		ret = qp_store__load(s, err);
	if (ret)
		goto out;
	e = qp_store__find(s, id, false);
	if (!e) {
		ret = qp_seterr(err, -ENOENT, "patch '%s' is not in the store '%s'", id, s->dir);
		goto out;
	}
	for (i = 0; i < s->n; i++) {
		const struct qp_store_entry *o = &s->v[i];

		if (!o->removed && !strcmp(o->group, e->group) && o->seq > e->seq) {
			ret = qp_seterr(err, -EBUSY, "patch '%s' was stored after '%s' for the same "
					"binary; patches come out in reverse order: remove '%s' first",
					o->id, id, o->id);
			goto out;
		}
	}
	snprintf(dir, sizeof(dir), "%s/%s/removed", s->dir, e->group);
	ret = store_mkdir(dir, err);
	base = strrchr(e->path, '/');
	snprintf(path, sizeof(path), "%s%s", dir, base ? base : "/x.qpatch");
	if (!ret && rename(e->path, path))
		ret = qp_seterr(err, -errno, "cannot move '%s': %s", e->path, strerror(errno));
	if (!ret)
		ret = store_bump(s, err);
out:
	store_unlock(s);
	return ret;
}
