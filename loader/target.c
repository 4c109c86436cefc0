// SPDX-License-Identifier: MIT
/*
 * Before an apply or an undo touches a process: is it one the loader can
 * work on (not traced by another program, not a zombie, not stopped by a
 * signal, an x86-64 program), and is no other loader working on it (a
 * lock per process, see ld_lock()).
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ld.h"

/* What the checks need of /proc/PID/status, read in one go. */
struct tg_status {
	char state;          /* State: 'S', 'T', 'Z'... */
	int threads;         /* Threads: (1 when not shown) */
	long tracer;         /* TracerPid: */
};

/* The value of "KEY:" in the status text @text, or NULL. */
static const char *tg_field(const char *text, const char *key)
{
	size_t klen = strlen(key);
	const char *l;

	for (l = text; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL)
		if (!strncmp(l, key, klen) && l[klen] == ':')
			return l + klen + 1 + strspn(l + klen + 1, " \t");
	return NULL;
}

/* /proc/PID/status of @pid, one read; 0 or -errno. */
static int tg_status(pid_t pid, struct tg_status *st)
{
	char path[64], text[4096];
	const char *v;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, text, sizeof(text) - 1); /* the fields used are in the first lines */
	close(fd);
	if (n <= 0)
		return n ? -errno : -ENOENT;
	text[n] = '\0';
	v = tg_field(text, "State");
	if (!v)
		return -ENOENT;
	st->state = *v;
	v = tg_field(text, "Threads");
	st->threads = v ? atoi(v) : 1;
	v = tg_field(text, "TracerPid");
	st->tracer = v ? strtol(v, NULL, 10) : 0;
	return 0;
}

/* The name of process @pid ("?" when gone). */
static void tg_comm(pid_t pid, char *out, size_t size)
{
	char path[64];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	snprintf(out, size, "?");
	f = fopen(path, "re");
	if (!f)
		return;
	if (fgets(out, (int)size, f))
		out[strcspn(out, "\n")] = '\0';
	fclose(f);
}

int ld_tracer(pid_t pid, char *why, size_t size)
{
	struct tg_status st;
	char comm[64];
	long tracer;

	if (tg_status(pid, &st))
		return 0;
	tracer = st.tracer;
	if (tracer <= 0)
		return 0;
	tg_comm((pid_t)tracer, comm, sizeof(comm));
	snprintf(why, size, "process %d is traced by process %ld ('%s'): a process has one tracer "
		 "at a time; detach it first", (int)pid, tracer, comm);
	return (int)tracer;
}

/* The program the process runs must be an x86-64 ELF file. */
static int tg_arch(pid_t pid, struct qp_error *err)
{
	char path[64];
	unsigned char h[EI_NIDENT + 4];
	uint16_t machine;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return qp_seterr(err, QP_ETARGET, "process %d has no program file to read (%s): "
				 "a kernel thread, or a process ending", (int)pid, strerror(errno));
	n = pread(fd, h, sizeof(h), 0);
	close(fd);
	if (n != (ssize_t)sizeof(h) || memcmp(h, ELFMAG, SELFMAG))
		return qp_seterr(err, QP_ETARGET, "process %d runs a program that is not an ELF "
				 "file", (int)pid);
	memcpy(&machine, h + EI_NIDENT + 2, sizeof(machine));
	if (h[EI_CLASS] != ELFCLASS64 || h[EI_DATA] != ELFDATA2LSB || machine != EM_X86_64)
		return qp_seterr(err, QP_ETARGET, "process %d runs a %s program for machine %u%s, "
				 "not x86-64: qpatch patches x86-64 processes only", (int)pid, h[EI_CLASS] == ELFCLASS32 ? "32-bit" :
				 h[EI_CLASS] == ELFCLASS64 ? "64-bit" : "foreign",
				 (unsigned)machine, machine == EM_386 ? " (i386)" :
				 machine == EM_AARCH64 ? " (aarch64)" : "");
	return 0;
}

/* Is the process of status @st gone or a zombie? */
static int tg_ended(pid_t pid, const struct tg_status *st, struct qp_error *err)
{
	/* a leader that ended while other threads run shows Z too */
	if ((st->state == 'Z' || st->state == 'X') && st->threads <= 1)
		return qp_seterr(err, QP_EPROC, "process %d is a zombie (it has ended; its parent has "
				 "not collected its exit status): nothing to patch", (int)pid);
	return 0;
}

int ld_target_ended(pid_t pid, struct qp_error *err)
{
	struct tg_status st;

	if (tg_status(pid, &st))
		return qp_seterr(err, QP_EPROC, "process %d: no such process", (int)pid);
	return tg_ended(pid, &st, err);
}

int ld_target_check(pid_t pid, bool held, struct qp_error *err)
{
	struct tg_status st;
	char why[256];
	int ret;

	if (tg_status(pid, &st))
		return qp_seterr(err, QP_EPROC, "process %d: no such process", (int)pid);
	if (!held && st.tracer > 0 && ld_tracer(pid, why, sizeof(why)))
		return qp_seterr(err, QP_ETARGET, "%s", why);
	ret = tg_ended(pid, &st, err);
	if (ret)
		return ret;
	if (!held && st.state == 'T')
		return qp_seterr(err, QP_ETARGET, "process %d is stopped by a signal (SIGSTOP or "
				 "another stop signal; it stays stopped): resume it (kill -CONT %d) "
				 "and try again", (int)pid, (int)pid);
	return tg_arch(pid, err);
}

/* --- one loader per process ----------------------------------------------- */

/* The lock of process @pid: its file, named by the pid and the process's
 * start time (a later process reusing the pid has another). */
/* The directory of the locks: LD_LOCK_DIR for root; a user's own
 * (/run/user/UID/qpatch, else /tmp/qpatch-UID) for a loader run by another
 * user on its own processes. */
static void lk_dirname(char *out, size_t size)
{
	char run[64];
	struct stat st;

	if (!geteuid()) {
		snprintf(out, size, "%s", LD_LOCK_DIR);
		return;
	}
	snprintf(run, sizeof(run), "/run/user/%u", (unsigned)geteuid());
	if (!stat(run, &st) && S_ISDIR(st.st_mode) && st.st_uid == geteuid())
		snprintf(out, size, "%s/qpatch", run);
	else
		snprintf(out, size, "/tmp/qpatch-%u", (unsigned)geteuid());
}

static int lk_path(pid_t pid, char *out, size_t size)
{
	char start[32], dir[64];
	int ret = qp_proc_stat_field(pid, 0, 22, start, sizeof(start));

	if (ret)
		return ret;
	lk_dirname(dir, sizeof(dir));
	snprintf(out, size, "%s/%d-%s.lock", dir, (int)pid, start);
	return 0;
}

/* The loader holding the lock of @fd's file, as it wrote it there. */
static long lk_holder(int fd)
{
	char buf[32];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);

	if (n <= 0)
		return 0;
	buf[n] = '\0';
	return strtol(buf, NULL, 10);
}

static int lk_dir(struct qp_error *err)
{
	char dir[64];
	struct stat st;

	lk_dirname(dir, sizeof(dir));
	if (mkdir(dir, 0700) && errno != EEXIST)
		return qp_seterr(err, -errno, "cannot make the lock directory '%s': %s", dir,
				 strerror(errno));
	if (lstat(dir, &st))
		return qp_seterr(err, -errno, "'%s': %s", dir, strerror(errno));
	if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 022))
		return qp_seterr(err, -EPERM, "the lock directory '%s' is not a directory of this user "
				 "that only it can write; not trusted", dir);
	return 0;
}

int ld_lock(pid_t pid, int wait_ms, int *out, char *path, size_t path_size, struct qp_error *err)
{
	char comm[64], buf[32];
	struct timespec pause = { 0, 10 * 1000 * 1000 };
	struct stat a, b;
	double t0 = now_us();
	long holder = 0;
	int fd, ret;

	*out = -1;
	ret = lk_dir(err);
	if (ret)
		return ret;
	if (lk_path(pid, path, path_size))
		return qp_seterr(err, QP_EPROC, "process %d: no such process", (int)pid);
	for (;;) {
		fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd < 0)
			return qp_seterr(err, -errno, "cannot open the lock '%s': %s", path,
					 strerror(errno));
		if (!flock(fd, LOCK_EX | LOCK_NB)) {
			/* the holder before may have removed the file meanwhile:
			 * the lock counts only on the file that is there */
			if (!fstat(fd, &a) && !stat(path, &b) && a.st_ino == b.st_ino &&
			    a.st_dev == b.st_dev)
				break;
			close(fd);
			continue;
		}
		if (errno != EWOULDBLOCK) {
			ret = qp_seterr(err, -errno, "cannot lock '%s': %s", path, strerror(errno));
			close(fd);
			return ret;
		}
		/* the holder writes its pid just after it took the lock */
		holder = lk_holder(fd);
		for (int k = 0; holder <= 0 && k < 50; k++) {
			nanosleep(&(struct timespec){ 0, 1000 * 1000 }, NULL);
			holder = lk_holder(fd);
		}
		close(fd);
		if (now_us() - t0 >= (double)wait_ms * 1000.0) {
			char who[128] = "";

			if (holder > 0) {
				tg_comm((pid_t)holder, comm, sizeof(comm));
				snprintf(who, sizeof(who), " (process %ld, '%s')", holder, comm);
			}
			return qp_seterr(err, -EBUSY, "process %d is being worked on by another loader%s%s",
					 (int)pid, who, wait_ms ? ", which did not finish in time" :
					 ": --lock-wait MS waits for it");
		}
		nanosleep(&pause, NULL);
	}
	snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
	/* who holds it, for the messages of others; nothing depends on it.
	 * Written, then cut to its length (a loader killed before may have
	 * left a longer pid): a file cut to 0 bytes and written again is
	 * flushed to disk on close by ext4 (auto_da_alloc), milliseconds */
	if (pwrite(fd, buf, strlen(buf), 0) == (ssize_t)strlen(buf))
		(void)!ftruncate(fd, (off_t)strlen(buf));
	*out = fd;
	return 0;
}

void ld_unlock(int fd, const char *path)
{
	if (fd < 0)
		return;
	/* removed while still held: a loader waiting on this file retries
	 * on the new one (ld_lock) */
	unlink(path);
	close(fd);
}

bool ld_locked(pid_t pid)
{
	char path[128];
	bool held;
	int fd;

	if (lk_path(pid, path, sizeof(path)))
		return false;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return false;
	held = flock(fd, LOCK_SH | LOCK_NB) && errno == EWOULDBLOCK;
	close(fd);
	return held;
}
