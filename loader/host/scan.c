// SPDX-License-Identifier: MIT
/*
 * Which processes map which objects: /proc/PID/maps, and the build-id of
 * each file mapped at offset 0, cached by (device, inode, size, mtime).
 *
 * A mapped file is opened through /proc/PID/map_files/START-END when we
 * may (root): that is the very file mapped, even when its path was
 * replaced or deleted since (a package upgrade installs a new binary under
 * the old name while the old processes keep the old one).
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host.h"
#include "qpatch/elf.h"

#define SCAN_BUCKETS 1024
#define SCAN_MAX_ENTRIES 65536 /* then the cache starts over */

struct scan_entry {
	struct scan_entry *next;     /* bucket chain */
	dev_t dev;                   /* the file ... */
	ino_t ino;
	off_t size;
	struct timespec mtime;
	int status;                  /* 0: build_id valid; else -ENOENT, -EINVAL... */
	uint8_t build_id[QP_BUILD_ID_MAX];
	size_t build_id_size;
	char *needed;                /* DT_NEEDED names, "a\0b\0\0"; NULL until asked */
};

struct qp_scan {
	struct scan_entry *bucket[SCAN_BUCKETS]; /* by inode */
	size_t nentries;                         /* entries cached */
};

int qp_scan__new(struct qp_scan **out, struct qp_error *err)
{
	*out = calloc(1, sizeof(**out));
	return *out ? 0 : qp_seterr(err, -ENOMEM, "out of memory");
}

static void scan_clear(struct qp_scan *s)
{
	size_t i;

	for (i = 0; i < SCAN_BUCKETS; i++) {
		while (s->bucket[i]) {
			struct scan_entry *e = s->bucket[i];

			s->bucket[i] = e->next;
			free(e->needed);
			free(e);
		}
	}
	s->nentries = 0;
}

void qp_scan__free(struct qp_scan *s)
{
	if (!s)
		return;
	scan_clear(s);
	free(s);
}

static bool scan_same(const struct scan_entry *e, const struct stat *st)
{
	return e->dev == st->st_dev && e->ino == st->st_ino && e->size == st->st_size &&
	       e->mtime.tv_sec == st->st_mtim.tv_sec && e->mtime.tv_nsec == st->st_mtim.tv_nsec;
}

/*
 * The cache entry for the file that @open_path (a path or a map_files
 * link) leads to.  NULL when the file cannot be reached or memory is out.
 */
static struct scan_entry *scan_lookup(struct qp_scan *s, const char *open_path)
{
	struct scan_entry *e;
	struct stat st;
	size_t b;
	int fd;

	if (stat(open_path, &st) || !S_ISREG(st.st_mode))
		return NULL;
	b = (size_t)st.st_ino % SCAN_BUCKETS;
	for (e = s->bucket[b]; e; e = e->next)
		if (scan_same(e, &st))
			return e;
	if (s->nentries >= SCAN_MAX_ENTRIES)
		scan_clear(s);
	e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	fd = open(open_path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		free(e);
		return NULL;
	}
	/* the file read is the one stat'ed: compare with the descriptor */
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
		e->status = qp_buildid_from_fd(fd, e->build_id, sizeof(e->build_id),
					       &e->build_id_size);
	} else {
		e->status = -EINVAL;
	}
	close(fd);
	e->dev = st.st_dev;
	e->ino = st.st_ino;
	e->size = st.st_size;
	e->mtime = st.st_mtim;
	b = (size_t)st.st_ino % SCAN_BUCKETS;
	e->next = s->bucket[b];
	s->bucket[b] = e;
	s->nentries++;
	return e;
}

bool qp_scan__file_needs(struct qp_scan *s, const char *path, const char *soname)
{
	struct scan_entry *e = scan_lookup(s, path);
	const char *n;

	if (!e)
		return false;
	if (!e->needed) {
		char buf[4096];
		int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);

		if (fd < 0 || qp_elf_fd_needed(fd, buf, sizeof(buf)))
			buf[0] = buf[1] = '\0';
		if (fd >= 0)
			close(fd);
		e->needed = malloc(sizeof(buf));
		if (!e->needed)
			return false;
		memcpy(e->needed, buf, sizeof(buf));
	}
	/* "libfoo.so.1" names the file "libfoo.so.1" and, as libtool builds
	 * it, "libfoo.so.1.2.3" */
	for (n = e->needed; *n; n += strlen(n) + 1)
		if (!strcmp(n, soname) ||
		    (!strncmp(soname, n, strlen(n)) && soname[strlen(n)] == '.'))
			return true;
	return false;
}

int qp_scan__file_build_id(struct qp_scan *s, const char *path, uint8_t *id, size_t *idlen)
{
	const struct scan_entry *e = scan_lookup(s, path);

	if (!e)
		return -ENOENT;
	if (e->status)
		return e->status;
	memcpy(id, e->build_id, e->build_id_size);
	*idlen = e->build_id_size;
	return 0;
}

/* One line of /proc/PID/maps: range, offset and path (NUL-terminated, without
 * its newline).  false for lines that are not a file mapped at offset 0. */
static bool scan_parse_line(char *line, uint64_t *start, uint64_t *end, char **path)
{
	uint64_t off;
	int pos = 0;

	if (sscanf(line, "%" SCNx64 "-%" SCNx64 " %*4s %" SCNx64 " %*s %*s%n", start, end, &off,
		   &pos) < 3 || !pos)
		return false;
	while (line[pos] == ' ')
		pos++;
	line[strcspn(line, "\n")] = '\0';
	*path = line + pos;
	return off == 0 && (*path)[0] == '/' && strncmp(*path, "/memfd:", 7) &&
	       strncmp(*path, "/dev/", 5) && strncmp(*path, "/SYSV", 5);
}

static FILE *scan_open_maps(pid_t pid)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	return fopen(path, "re");
}

/* The file behind one mapping: its map_files link when we may use it. */
static void scan_map_path(pid_t pid, uint64_t start, uint64_t end, const char *path, char *out,
			  size_t size)
{
	snprintf(out, size, "/proc/%d/map_files/%" PRIx64 "-%" PRIx64, (int)pid, start, end);
	if (access(out, F_OK) && !strstr(path, " (deleted)"))
		snprintf(out, size, "%s", path);
}

int qp_scan__objects(struct qp_scan *s, pid_t pid, struct qp_obj **out, size_t *count,
		     struct qp_error *err)
{
	struct qp_obj *v = NULL;
	struct stat exe;
	char line[QP_HOST_PATH_MAX + 128], link[64], open_path[QP_HOST_PATH_MAX + 64];
	size_t n = 0, cap = 0, i;
	bool have_exe;
	FILE *f;

	*out = NULL;
	*count = 0;
	snprintf(link, sizeof(link), "/proc/%d/exe", (int)pid);
	have_exe = stat(link, &exe) == 0;
	f = scan_open_maps(pid);
	if (!f)
		return qp_seterr(err, errno == ENOENT ? -ESRCH : -errno, "process %d: %s", (int)pid,
				 errno == ENOENT ? "no such process" : strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		const struct scan_entry *e;
		uint64_t start, end;
		char *path;
		bool dup = false;

		if (!strchr(line, '\n')) { /* a longer path than we keep: skip it */
			int c;

			while ((c = fgetc(f)) != EOF && c != '\n')
				;
			continue;
		}
		if (!scan_parse_line(line, &start, &end, &path))
			continue;
		scan_map_path(pid, start, end, path, open_path, sizeof(open_path));
		e = scan_lookup(s, open_path);
		if (!e || e->status)
			continue;
		for (i = 0; i < n && !dup; i++)
			dup = v[i].build_id_size == e->build_id_size &&
			      !memcmp(v[i].build_id, e->build_id, e->build_id_size) &&
			      !strcmp(v[i].path, path);
		if (dup)
			continue;
		if (n == cap) {
			struct qp_obj *nv;

			cap = cap ? 2 * cap : 16;
			nv = realloc(v, cap * sizeof(*v));
			if (!nv) {
				fclose(f);
				free(v);
				return qp_seterr(err, -ENOMEM, "out of memory");
			}
			v = nv;
		}
		memset(&v[n], 0, sizeof(v[n]));
		memcpy(v[n].build_id, e->build_id, e->build_id_size);
		v[n].build_id_size = e->build_id_size;
		snprintf(v[n].path, sizeof(v[n].path), "%s", path);
		v[n].is_exe = have_exe && e->dev == exe.st_dev && e->ino == exe.st_ino;
		if (v[n].is_exe && n) { /* the executable first */
			struct qp_obj t = v[n];

			memmove(&v[1], &v[0], n * sizeof(*v));
			v[0] = t;
		}
		n++;
	}
	fclose(f);
	*out = v;
	*count = n;
	return 0;
}

bool qp_obj_named(const struct qp_obj *o, const char *name)
{
	const char *base = strrchr(o->path, '/') ? strrchr(o->path, '/') + 1 : o->path;
	size_t n = strlen(name);

	return !strncmp(base, name, n) && (!base[n] || !strcmp(base + n, " (deleted)"));
}

int qp_scan__maps_build_id(struct qp_scan *s, pid_t pid, const uint8_t *id, size_t idlen)
{
	struct qp_obj *v;
	size_t n, i;
	int ret;

	ret = qp_scan__objects(s, pid, &v, &n, NULL);
	if (ret)
		return ret;
	for (i = 0; i < n; i++)
		if (v[i].build_id_size == idlen && !memcmp(v[i].build_id, id, idlen))
			break;
	free(v);
	return i < n;
}

static int pid_cmp(const void *a, const void *b)
{
	pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;

	return x < y ? -1 : x > y;
}

int qp_host_pids(pid_t **out, size_t *count, struct qp_error *err)
{
	pid_t *v = NULL, self = getpid();
	size_t n = 0, cap = 0;
	struct dirent *de;
	DIR *d;

	*out = NULL;
	*count = 0;
	d = opendir("/proc");
	if (!d)
		return qp_seterr(err, -errno, "cannot list '/proc': %s", strerror(errno));
	while ((de = readdir(d))) {
		char *end;
		long pid = strtol(de->d_name, &end, 10);

		if (*end || pid <= 0 || pid == self)
			continue;
		if (n == cap) {
			pid_t *nv;

			cap = cap ? 2 * cap : 256;
			nv = realloc(v, cap * sizeof(*v));
			if (!nv) {
				closedir(d);
				free(v);
				return qp_seterr(err, -ENOMEM, "out of memory");
			}
			v = nv;
		}
		v[n++] = (pid_t)pid;
	}
	closedir(d);
	if (n > 1)
		qsort(v, n, sizeof(*v), pid_cmp);
	*out = v;
	*count = n;
	return 0;
}

void qp_host_comm(pid_t pid, char *buf, size_t size)
{
	char path[64];
	ssize_t n = -1;
	size_t i;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		n = read(fd, buf, size - 1);
		close(fd);
	}
	if (n <= 0) {
		snprintf(buf, size, "?");
		return;
	}
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	for (i = 0; buf[i]; i++) /* the process chose its name: keep output clean */
		if (!isprint((unsigned char)buf[i]))
			buf[i] = '?';
}

uint64_t qp_host_start_time(pid_t pid)
{
	char v[32];

	return qp_proc_stat_field(pid, 0, 22, v, sizeof(v)) ? 0 : strtoull(v, NULL, 10);
}

bool qp_host_has_patch_mapping(pid_t pid, const char *id)
{
	static const char prefix[] = "/memfd:" QP_MEMFD_PREFIX;
	char line[QP_HOST_PATH_MAX + 128];
	bool found = false;
	size_t idlen = strlen(id);
	FILE *f = scan_open_maps(pid);

	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f)) {
		char *p = strstr(line, prefix);

		if (!p)
			continue;
		p += sizeof(prefix) - 1;
		found = !strncmp(p, id, idlen) && (p[idlen] == '\n' || p[idlen] == ' ');
	}
	fclose(f);
	return found;
}
