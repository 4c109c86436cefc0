// SPDX-License-Identifier: MIT
/*
 * ptrace plumbing: see proc.h.
 *
 * Threads are attached with PTRACE_SEIZE + PTRACE_INTERRUPT, so the target
 * sees no SIGSTOP; /proc/PID/task is listed again until no new thread
 * appears (a stopped thread cannot create one).  A signal that arrives
 * while we stop a thread is remembered and delivered on detach.
 */
#include <dirent.h>
#include <pthread.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "proc.h"
#include "selfstop.h"

#define PROC_SYSCALL_TIMEOUT_MS 10000 /* a remote syscall of ours never blocks */

static char proc_task_state(pid_t pid, pid_t tid);

/* The whole of /proc file @fd into a buffer of its own; NULL when it
 * cannot be read (errno says why). */
static char *proc_slurp(int fd, size_t *len)
{
	size_t cap = 16384, n = 0;
	char *buf = malloc(cap), *v;
	ssize_t r;

	while (buf) {
		if (n + 1 == cap) {
			v = realloc(buf, cap *= 2);
			if (!v)
				break;
			buf = v;
		}
		r = read(fd, buf + n, cap - n - 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			break;
		if (!r) {
			buf[n] = '\0';
			*len = n;
			return buf;
		}
		n += (size_t)r;
	}
	free(buf);
	return NULL;
}

/* "HEX" at *@s, the pointer moved past it; false when there is none. */
static bool proc_hex(char **s, uint64_t *v)
{
	char *end;

	errno = 0;
	*v = strtoull(*s, &end, 16);
	if (end == *s || errno)
		return false;
	*s = end;
	return true;
}

/* One line of /proc/PID/maps ("start-end perms offset dev inode  path"),
 * NUL-terminated in place; its path is cut out of it.  False when it is
 * not one. */
static bool proc_map_line(char *l, struct qp_map *m)
{
	size_t i;

	memset(m, 0, sizeof(*m));
	if (!proc_hex(&l, &m->start) || *l++ != '-' || !proc_hex(&l, &m->end) || *l++ != ' ')
		return false;
	for (i = 0; i < 4 && l[i] && l[i] != ' '; i++)
		m->perms[i] = l[i];
	l += i;
	if (*l++ != ' ' || !proc_hex(&l, &m->offset))
		return false;
	for (i = 0; i < 2; i++) { /* device, inode */
		l += strspn(l, " ");
		if (!*l)
			return false;
		l += strcspn(l, " ");
	}
	m->path = l + strspn(l, " ");
	return true;
}

int qp_maps__read(pid_t pid, struct qp_maps *maps, struct qp_error *err)
{
	char path[64], *line, *next;
	size_t len = 0, cap, lines = 1, i;
	int fd;

	maps->v = NULL;
	maps->n = 0;
	maps->text = NULL;
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return qp_seterr(err, errno == ENOENT ? -ESRCH : -errno,
				 "process %d: %s", (int)pid, errno == ENOENT ? "no such process" : strerror(errno));
	maps->text = proc_slurp(fd, &len);
	close(fd);
	if (!maps->text && errno == ENOMEM)
		return qp_seterr(err, -ENOMEM, "out of memory");
	if (!maps->text) /* it ended meanwhile: no mapping */
		return 0;
	for (i = 0; i < len; i++)
		lines += maps->text[i] == '\n';
	cap = lines;
	maps->v = malloc(cap * sizeof(*maps->v));
	if (!maps->v) {
		qp_maps__release(maps);
		return qp_seterr(err, -ENOMEM, "out of memory");
	}
	for (line = maps->text; *line; line = next) {
		next = line + strcspn(line, "\n");
		if (*next)
			*next++ = '\0';
		if (maps->n < cap && proc_map_line(line, &maps->v[maps->n]))
			maps->n++;
	}
	return 0;
}

int qp_maps__copy(const struct qp_maps *from, struct qp_maps *to, struct qp_error *err)
{
	size_t len = 0, i;

	for (i = 0; i < from->n; i++)
		len += strlen(from->v[i].path) + 1;
	to->n = from->n;
	to->v = malloc((from->n ? from->n : 1) * sizeof(*to->v));
	to->text = malloc(len ? len : 1);
	if (!to->v || !to->text) {
		qp_maps__release(to);
		return qp_seterr(err, -ENOMEM, "out of memory");
	}
	for (i = 0, len = 0; i < from->n; i++) {
		size_t l = strlen(from->v[i].path) + 1;

		to->v[i] = from->v[i];
		to->v[i].path = memcpy(to->text + len, from->v[i].path, l);
		len += l;
	}
	return 0;
}

const struct qp_map *qp_maps__find(const struct qp_maps *maps, uint64_t addr)
{
	size_t lo = 0, hi = maps->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (addr < maps->v[mid].start)
			hi = mid;
		else if (addr >= maps->v[mid].end)
			lo = mid + 1;
		else
			return &maps->v[mid];
	}
	return NULL;
}

void qp_maps__release(struct qp_maps *maps)
{
	free(maps->v);
	free(maps->text);
	maps->v = NULL;
	maps->text = NULL;
	maps->n = 0;
}

int qp_proc__open(pid_t pid, struct qp_proc *p, struct qp_error *err)
{
	char path[64];

	memset(p, 0, sizeof(*p));
	p->pid = pid;
	p->mem_fd = -1;
	p->self = pid == getpid(); /* no ptrace: selfstop.c */
	if (pid <= 0)
		return qp_seterr(err, -ESRCH, "invalid process id %d", (int)pid);
	if (kill(pid, 0) && errno == ESRCH)
		return qp_seterr(err, -ESRCH, "process %d: no such process", (int)pid);
	snprintf(path, sizeof(path), "/proc/%d/mem", (int)pid);
	p->mem_fd = open(path, O_RDWR | O_CLOEXEC);
	if (p->mem_fd < 0 && (errno == EACCES || errno == EPERM) && !p->self)
		return qp_seterr(err, -errno, "process %d: cannot open its memory: %s: this loader may "
				 "not trace it (it made itself non-dumpable, Yama's ptrace_scope, or no "
				 "CAP_SYS_PTRACE); the in-process agent (libqpatch-agent.so, "
				 "qpatch-agentctl) needs no ptrace", (int)pid, strerror(errno));
	if (p->mem_fd < 0 && (errno == EACCES || errno == EPERM) && p->self)
		return qp_seterr(err, -errno, "process %d: cannot open its own memory "
				 "(/proc/self/mem): %s: a non-dumpable process that does not run as "
				 "root may not", (int)pid, strerror(errno));
	if (p->mem_fd < 0)
		return qp_seterr(err, -errno, "process %d: cannot open its memory: %s", (int)pid,
				 errno == ENOENT ? "no such process" : strerror(errno));
	return 0;
}

static bool proc_has_thread(const struct qp_proc *p, pid_t tid)
{
	size_t i;

	for (i = 0; i < p->nthreads; i++)
		if (p->threads[i].tid == tid)
			return true;
	return false;
}

static double proc_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* @t ended with waitpid status @status; while every thread is held
 * stopped, that is the process dying (none can exit by itself). */
static void proc_note_exit(struct qp_proc *p, struct qp_thread *t, int status)
{
	t->gone = true;
	if (!p->exit_status || WIFSIGNALED(status))
		p->exit_status = status;
	if (p->held)
		p->died = true;
}

/* Collect exits of the threads but @skip, without blocking; any other
 * event is kept for that thread's next wait. */
static void proc_reap(struct qp_proc *p, const struct qp_thread *skip)
{
	size_t i;

	for (i = 0; i < p->nthreads; i++) {
		struct qp_thread *u = &p->threads[i];
		int status;

		if (u == skip || u->gone || u->has_status ||
		    waitpid(u->tid, &status, __WALL | WNOHANG) != u->tid)
			continue;
		if (WIFEXITED(status) || WIFSIGNALED(status)) {
			proc_note_exit(p, u, status);
		} else {
			u->status = status;
			u->has_status = true;
		}
	}
}

/*
 * Wait for the next event of thread @t, at most @timeout_ms (-1: no
 * bound).  The other threads' exits are collected meanwhile: we trace
 * them, so each stays a zombie until we wait for it, and the kernel
 * reports a thread-group leader's exit only once all others are gone — a
 * blocking waitpid() on the leader of a process killed meanwhile would
 * never return.  SIGCHLD, blocked in this thread while we wait, wakes us
 * as soon as any tracee changes state (the 2 ms timeout also catches a
 * SIGCHLD taken by another thread).  Returns 1 with *@status set, 0 on
 * timeout, or -errno (-ECHILD: @t is not ours any more).
 */
static int proc_wait(struct qp_proc *p, struct qp_thread *t, int *status, int timeout_ms)
{
	const struct timespec tick = { 0, 2 * 1000 * 1000 };
	double t0 = proc_now_ms();
	sigset_t chld, old;
	int ret;

	if (t->has_status) {
		t->has_status = false;
		*status = t->status;
		return 1;
	}
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	pthread_sigmask(SIG_BLOCK, &chld, &old);
	for (;;) {
		pid_t r = waitpid(t->tid, status, __WALL | WNOHANG);

		if (r == t->tid) {
			ret = 1;
			break;
		}
		if (r < 0 && errno != EINTR) {
			ret = -errno;
			break;
		}
		proc_reap(p, t);
		if (timeout_ms >= 0 && proc_now_ms() - t0 >= timeout_ms) {
			ret = 0;
			break;
		}
		sigtimedwait(&chld, NULL, &tick);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (ret == 1 && (WIFEXITED(*status) || WIFSIGNALED(*status)))
		proc_note_exit(p, t, *status);
	return ret;
}

/* Wait for @t's interrupt stop; signals that come first are kept.
 * QP_EPROC when it ended instead. */
static int proc_wait_stop(struct qp_proc *p, struct qp_thread *t, struct qp_error *err)
{
	int status, r;

	for (;;) {
		r = proc_wait(p, t, &status, -1);
		if (r < 0 || t->gone)
			return qp_seterr(err, QP_EPROC, "thread %d ended while being stopped", (int)t->tid);
		if (!WIFSTOPPED(status))
			continue;
		if ((status >> 16) == PTRACE_EVENT_STOP)
			return 0;
		/* a signal-delivery stop: hold the signal, resume into the
		 * pending interrupt */
		t->pending_sig = WSTOPSIG(status);
		if (ptrace(PTRACE_CONT, t->tid, 0, 0) < 0)
			return qp_seterr(err, -errno, "thread %d: %s", (int)t->tid, strerror(errno));
	}
}

/* Attach @tid (PTRACE_SEIZE: it goes on running) as a new thread of @p;
 * 1 when it was added, 0 when it had ended already. */
static int proc_seize(struct qp_proc *p, pid_t tid, struct qp_error *err)
{
	struct qp_thread *t, *v;

	v = realloc(p->threads, (p->nthreads + 1) * sizeof(*v));
	if (!v)
		return qp_seterr(err, -ENOMEM, "out of memory");
	p->threads = v;
	if (ptrace(PTRACE_SEIZE, tid, 0, 0) < 0) {
		int e = errno;
		char st = proc_task_state(p->pid, tid);

		if (e == ESRCH || !st || st == 'Z' || st == 'X')
			return 0; /* exited meanwhile */
		return qp_seterr(err, -e, "thread %d: cannot attach: %s%s", (int)tid,
				 strerror(e), e == EPERM ? " (are you root? is it traced already?)" : "");
	}
	t = &p->threads[p->nthreads++];
	memset(t, 0, sizeof(*t));
	t->tid = tid;
	return 1;
}

/* Interrupt seized thread @t; its stop is collected by proc_collect(). */
static int proc_interrupt_seized(struct qp_proc *p, struct qp_thread *t, struct qp_error *err)
{
	(void)p;
	/* ESRCH: it is exiting; proc_collect() gathers its end */
	if (ptrace(PTRACE_INTERRUPT, t->tid, 0, 0) < 0 && errno != ESRCH)
		return qp_seterr(err, -errno, "thread %d: cannot interrupt: %s", (int)t->tid,
				 strerror(errno));
	return 0;
}

/* Seize and interrupt @tid; its stop is collected by proc_collect().
 * 1 when it was added, 0 when it had ended already. */
static int proc_interrupt(struct qp_proc *p, pid_t tid, struct qp_error *err)
{
	int ret = proc_seize(p, tid, err);

	if (ret == 1 && (ret = proc_interrupt_seized(p, &p->threads[p->nthreads - 1], err)) == 0)
		ret = 1;
	return ret;
}

/* Forget thread @i, which ended while we stopped it (a thread may exit
 * by itself until it is stopped). */
static void proc_drop(struct qp_proc *p, size_t i)
{
	memmove(&p->threads[i], &p->threads[i + 1], (p->nthreads - i - 1) * sizeof(*p->threads));
	p->nthreads--;
}

/*
 * One look at thread @t while its interrupt stop is awaited: 1 when it is
 * in it (registers read), 0 when not yet (a signal that came first is
 * kept, and it is let go on into the stop), -1 when it ended (t->gone),
 * or QP_EPROC / -errno with a message.
 */
static int proc_poll_stop(struct qp_proc *p, struct qp_thread *t, struct qp_error *err)
{
	int status;
	pid_t r;

	if (t->has_status) {
		t->has_status = false;
		status = t->status;
		r = t->tid;
	} else {
		r = waitpid(t->tid, &status, __WALL | WNOHANG);
	}
	if (r < 0 && errno == EINTR)
		return 0;
	if (r < 0)
		return qp_seterr(err, QP_EPROC, "thread %d ended while being stopped", (int)t->tid);
	if (r != t->tid)
		return 0;
	if (WIFEXITED(status) || WIFSIGNALED(status)) {
		proc_note_exit(p, t, status);
		return -1;
	}
	if (!WIFSTOPPED(status))
		return 0;
	if ((status >> 16) != PTRACE_EVENT_STOP) {
		/* a signal-delivery stop: hold the signal, resume into the
		 * pending interrupt */
		t->pending_sig = WSTOPSIG(status);
		if (ptrace(PTRACE_CONT, t->tid, 0, 0) < 0)
			return qp_seterr(err, -errno, "thread %d: %s", (int)t->tid, strerror(errno));
		return 0;
	}
	if (ptrace(PTRACE_GETREGS, t->tid, 0, &t->regs) < 0)
		return qp_seterr(err, -errno, "thread %d: cannot read registers: %s", (int)t->tid,
				 strerror(errno));
	return 1;
}

/*
 * Wait for the stops of threads [from, nthreads) and read their
 * registers; the ones that ended meanwhile are dropped.  Every thread not
 * stopped yet is looked at in turn (one waitpid each), then, when none
 * moved, SIGCHLD is awaited (blocked once for the whole wait; the 2 ms
 * bound also covers a SIGCHLD taken by another thread): the cost is a few
 * system calls per thread, however the stops arrive.
 */
static int proc_collect(struct qp_proc *p, size_t from, struct qp_error *err)
{
	const struct timespec tick = { 0, 2 * 1000 * 1000 };
	size_t i, n = p->nthreads - from, left = n;
	bool *done = calloc(n ? n : 1, sizeof(*done));
	sigset_t chld, old;
	int ret = 0;

	if (!done)
		return qp_seterr(err, -ENOMEM, "out of memory");
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	pthread_sigmask(SIG_BLOCK, &chld, &old);
	while (left && !ret) {
		bool moved = false;

		for (i = 0; i < n && !ret; i++) {
			struct qp_thread *t = &p->threads[from + i];
			int r;

			if (done[i])
				continue;
			r = t->gone ? -1 : proc_poll_stop(p, t, err);
			if (r == 0)
				continue;
			if (r > 0 || r == -1) {
				done[i] = true;
				left--;
				moved = true;
			} else {
				ret = r;
			}
		}
		if (left && !ret && !moved)
			sigtimedwait(&chld, NULL, &tick);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	free(done);
	for (i = from; i < p->nthreads;)
		if (p->threads[i].gone)
			proc_drop(p, i);
		else
			i++;
	return ret;
}

/* Take @tid, which this tracer already holds stopped, as threads[0]. */
static int proc_adopt(struct qp_proc *p, pid_t tid, struct qp_error *err)
{
	struct qp_thread *t, *v;

	v = realloc(p->threads, (p->nthreads + 1) * sizeof(*v));
	if (!v)
		return qp_seterr(err, -ENOMEM, "out of memory");
	p->threads = v;
	memmove(&v[1], &v[0], p->nthreads * sizeof(*v));
	t = &v[0];
	memset(t, 0, sizeof(*t));
	t->tid = tid;
	t->kept = true;
	p->nthreads++;
	if (ptrace(PTRACE_GETREGS, tid, 0, &t->regs) < 0) {
		int e = errno;

		p->nthreads--;
		memmove(&v[0], &v[1], p->nthreads * sizeof(*v));
		return qp_seterr(err, e == ESRCH ? QP_EPROC : -e,
				 "thread %d: not held stopped by this loader: %s", (int)tid, strerror(e));
	}
	return 0;
}

static int proc_tid_cmp(const void *a, const void *b)
{
	pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;

	return x < y ? -1 : x > y;
}

/* The tasks of the process listed now that are not in p->threads yet,
 * into *@out (*@n of them). */
static int proc_new_tasks(struct qp_proc *p, const char *path, pid_t **out, size_t *n,
			  struct qp_error *err)
{
	pid_t *have = malloc((p->nthreads ? p->nthreads : 1) * sizeof(*have)), *v = NULL, *w;
	size_t i, cap = 0;
	struct dirent *de;
	DIR *d;

	*out = NULL;
	*n = 0;
	if (!have)
		return qp_seterr(err, -ENOMEM, "out of memory");
	for (i = 0; i < p->nthreads; i++)
		have[i] = p->threads[i].tid;
	qsort(have, p->nthreads, sizeof(*have), proc_tid_cmp);
	d = opendir(path);
	if (!d) {
		free(have);
		return qp_seterr(err, errno == ENOENT ? QP_EPROC : -errno, "process %d: %s",
				 (int)p->pid, errno == ENOENT ? "went away" : strerror(errno));
	}
	while ((de = readdir(d))) {
		pid_t tid = (pid_t)atoi(de->d_name);

		if (tid <= 0 || bsearch(&tid, have, p->nthreads, sizeof(*have), proc_tid_cmp))
			continue;
		if (*n == cap) {
			w = realloc(v, (cap = cap ? 2 * cap : 64) * sizeof(*v));
			if (!w)
				break;
			v = w;
		}
		v[(*n)++] = tid;
	}
	closedir(d);
	free(have);
	if (de) {
		free(v);
		*n = 0;
		return qp_seterr(err, -ENOMEM, "out of memory");
	}
	*out = v;
	return 0;
}

/*
 * Every thread is interrupted before any stop is waited for, so threads
 * that need a CPU to reach their stop get it in parallel; then the task
 * list is read again until it shows no new thread.  The new tasks of a
 * pass are all attached first (PTRACE_SEIZE does not stop a thread), then
 * interrupted in a row: a thread's pause begins with its interrupt, and
 * no attach of another thread lengthens it.
 */
int qp_proc__stop(struct qp_proc *p, struct qp_error *err)
{
	char path[64];
	bool found_new = true;
	int ret = 0;

	if (p->self)
		return qp_self__stop(p, err);
	snprintf(path, sizeof(path), "/proc/%d/task", (int)p->pid);
	p->interrupted_ms = 0;
	if (p->keep_tid && !proc_has_thread(p, p->keep_tid))
		ret = proc_adopt(p, p->keep_tid, err);
	while (found_new && !ret) {
		size_t from = p->nthreads, n, i;
		pid_t *tids;

		ret = proc_new_tasks(p, path, &tids, &n, err);
		if (ret)
			return ret;
		found_new = false;
		for (i = 0; !ret && i < n; i++) {
			ret = proc_seize(p, tids[i], err);
			if (ret > 0) {
				found_new = true;
				ret = 0;
			}
		}
		free(tids);
		/* every thread attached is interrupted and collected, also
		 * after an error: a thread left attached but running could not
		 * be detached (PTRACE_DETACH wants it stopped) */
		if (!p->interrupted_ms)
			p->interrupted_ms = proc_now_ms();
		for (i = from; i < p->nthreads; i++) {
			int r = proc_interrupt_seized(p, &p->threads[i], ret ? NULL : err);

			ret = ret ? ret : r;
		}
		if (!ret)
			ret = proc_collect(p, from, err);
		else
			proc_collect(p, from, NULL);
	}
	if (!ret && !p->nthreads) {
		char how[64];

		ret = qp_seterr(err, QP_EPROC, "process %d ended while being stopped (%s)", (int)p->pid,
				qp_proc__death(p, how, sizeof(how)));
	}
	p->held = !ret;
	p->alone = false;
	p->stops += !ret;
	return ret;
}

/*
 * One thread only, for remote system calls: the thread held for the
 * entry hold, else the first task that stops (a zombie leader does not).
 * The others go on running.
 */
int qp_proc__stop_one(struct qp_proc *p, struct qp_error *err)
{
	char path[64];
	struct dirent *de;
	DIR *d;
	int ret = 0;

	if (p->self)
		return qp_self__stop_one(p, err);
	if (p->keep_tid) {
		ret = proc_has_thread(p, p->keep_tid) ? 0 : proc_adopt(p, p->keep_tid, err);
		goto out;
	}
	/* the leader first, the task list's first entry: one system call,
	 * not a listing of every thread */
	ret = proc_interrupt(p, p->pid, err);
	if (ret > 0)
		ret = proc_collect(p, 0, err); /* drops it if it ended */
	if (ret || p->nthreads)
		goto out;
	snprintf(path, sizeof(path), "/proc/%d/task", (int)p->pid);
	d = opendir(path);
	if (!d)
		return qp_seterr(err, errno == ENOENT ? QP_EPROC : -errno, "process %d: %s",
				 (int)p->pid, errno == ENOENT ? "went away" : strerror(errno));
	while (!ret && !p->nthreads && (de = readdir(d))) {
		pid_t tid = (pid_t)atoi(de->d_name);

		if (tid <= 0)
			continue;
		ret = proc_interrupt(p, tid, err);
		if (ret > 0)
			ret = proc_collect(p, 0, err); /* drops it if it ended */
	}
	closedir(d);
	if (!ret && !p->nthreads) {
		char how[64];

		ret = qp_seterr(err, QP_EPROC, "process %d ended while being stopped (%s)", (int)p->pid,
				qp_proc__death(p, how, sizeof(how)));
	}
out:
	/* the held thread cannot end by itself: if it does, the process is dying */
	p->held = !ret;
	p->alone = !ret;
	p->stops += !ret;
	return ret;
}

/*
 * Let stopped thread @t of @p go: detached with the signal it was stopped
 * by (a signal kept by proc_reap), or, when kept for its holder (the entry
 * hold), left stopped with that signal queued again, to be delivered when
 * the holder lets it go.
 */
static void proc_let_go(struct qp_proc *p, struct qp_thread *t)
{
	if (t->gone)
		return;
	if (t->has_status && WIFSTOPPED(t->status) && (t->status >> 16) == 0 &&
	    WSTOPSIG(t->status) != SIGTRAP)
		t->pending_sig = WSTOPSIG(t->status);
	if (t->kept) {
		if (t->pending_sig)
			syscall(SYS_tgkill, p->pid, t->tid, t->pending_sig);
		return;
	}
	ptrace(PTRACE_DETACH, t->tid, 0, (void *)(long)t->pending_sig);
}

void qp_proc__release_others(struct qp_proc *p)
{
	size_t i;

	if (p->self) { /* threads[0] is the caller: let every stopped thread go */
		qp_self__resume(p, NULL);
		qp_self__stop_one(p, NULL);
		return;
	}
	for (i = 1; i < p->nthreads; i++)
		proc_let_go(p, &p->threads[i]);
	if (p->nthreads > 1)
		p->nthreads = 1;
	p->alone = true;
}

const char *qp_proc__death(const struct qp_proc *p, char *buf, size_t size)
{
	int st = p->exit_status;

	if (WIFSIGNALED(st))
		snprintf(buf, size, "was killed by signal %d (%s)", WTERMSIG(st), strsignal(WTERMSIG(st)));
	else if (WIFEXITED(st) && p->died)
		snprintf(buf, size, "exited with status %d", WEXITSTATUS(st));
	else
		snprintf(buf, size, "exited or was killed");
	return buf;
}

int qp_proc_stat_field(pid_t pid, pid_t tid, int field, char *out, size_t size)
{
	char path[96], buf[1024], *p, *end;
	ssize_t n;
	int fd, f;

	if (tid)
		snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", (int)pid, (int)tid);
	else
		snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0 || field < 3)
		return -ENOENT;
	buf[n] = '\0';
	p = strrchr(buf, ')'); /* the name may hold spaces and parens */
	if (!p || p[1] != ' ')
		return -ENOENT;
	p += 2; /* field 3 */
	for (f = 3; f < field && p; f++) {
		p = strchr(p, ' ');
		if (p)
			p++;
	}
	if (!p)
		return -ENOENT;
	end = p + strcspn(p, " \n");
	snprintf(out, size, "%.*s", (int)(end - p), p);
	return 0;
}

/* The state letter of thread @tid of @pid ('R', 'S', 't', 'Z'...), or 0
 * when it is gone. */
static char proc_task_state(pid_t pid, pid_t tid)
{
	char st[8];

	return qp_proc_stat_field(pid, tid, 3, st, sizeof(st)) ? 0 : st[0];
}

/* Every task of @pid is gone or a zombie: the process has ended (what is
 * left waits for its parent). */
static bool proc_all_ended(pid_t pid)
{
	char path[64];
	struct dirent *de;
	bool ended = true;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	d = opendir(path);
	if (!d)
		return true;
	while (ended && (de = readdir(d))) {
		char st;

		if (de->d_name[0] == '.')
			continue;
		st = proc_task_state(pid, (pid_t)atoi(de->d_name));
		ended = !st || st == 'Z' || st == 'X';
	}
	closedir(d);
	return ended;
}

bool qp_proc__died_now(struct qp_proc *p)
{
	siginfo_t si = { 0 };

	if (p->self)
		return false;
	/* one look for any exit to collect (not consumed: WNOWAIT) before
	 * one waitpid per thread: with every thread held, none is due */
	if (!waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT | __WALL | __WNOTHREAD) &&
	    !si.si_pid && !p->died)
		return false;
	proc_reap(p, NULL);
	return p->died;
}

bool qp_proc__dead(struct qp_proc *p)
{
	double t0 = proc_now_ms();
	size_t i;

	if (p->self)
		return false;
	for (;;) {
		bool settled = true;

		proc_reap(p, NULL);
		if (!p->died && proc_all_ended(p->pid)) {
			/* a leader's exit is reported once the others are reaped */
			proc_reap(p, NULL);
			proc_reap(p, NULL);
			return true;
		}
		if (p->died)
			return true;
		for (i = 0; i < p->nthreads && settled; i++) {
			char st = proc_task_state(p->pid, p->threads[i].tid);

			settled = p->threads[i].gone || st == 't' || st == 'T';
		}
		if (settled || proc_now_ms() - t0 > 200)
			return false;
		usleep(1000);
	}
}

int qp_proc__resume(struct qp_proc *p, struct qp_error *err)
{
	size_t i;
	int ret = 0;

	if (p->self)
		return qp_self__resume(p, err);
	if (p->regs_dirty && p->nthreads &&
	    ptrace(PTRACE_SETREGS, p->threads[0].tid, 0, &p->threads[0].regs) < 0) {
		int e = errno;

		ret = qp_seterr(err, e == ESRCH && qp_proc__dead(p) ? QP_EPROC : -e,
				"thread %d: cannot restore registers: %s", (int)p->threads[0].tid,
				strerror(e));
	}
	p->regs_dirty = false;
	p->held = false;
	for (i = 0; i < p->nthreads; i++)
		proc_let_go(p, &p->threads[i]);
	free(p->threads);
	p->threads = NULL;
	p->nthreads = 0;
	return ret;
}

void qp_proc__close(struct qp_proc *p)
{
	if (p->nthreads)
		qp_proc__resume(p, NULL);
	free(p->threads); /* a stop that found no thread left an empty array */
	p->threads = NULL;
	if (p->mem_fd >= 0)
		close(p->mem_fd);
	free(p->self_scratch);
	p->self_scratch = NULL;
	p->mem_fd = -1;
}

int qp_proc__read(struct qp_proc *p, uint64_t addr, void *buf, size_t len,
		  struct qp_error *err)
{
	ssize_t n = pread(p->mem_fd, buf, len, (off_t)addr);

	if (n != (ssize_t)len)
		return qp_seterr(err, n < 0 ? -errno : -EIO,
				 "process %d: cannot read %zu bytes at 0x%" PRIx64 ": %s", (int)p->pid,
				 len, addr, n < 0 ? strerror(errno) : "short read");
	return 0;
}

int qp_proc__readv(struct qp_proc *p, const struct iovec *remote, const struct iovec *local,
		   size_t n, struct qp_error *err)
{
	size_t i, j, k, want;
	int ret;

	for (i = 0; i < n; i += k) {
		k = n - i < IOV_MAX ? n - i : IOV_MAX;
		for (j = 0, want = 0; j < k; j++)
			want += local[i + j].iov_len;
		if (process_vm_readv(p->pid, local + i, k, remote + i, k, 0) == (ssize_t)want)
			continue;
		for (j = 0; j < k; j++) {
			ret = qp_proc__read(p, (uint64_t)(uintptr_t)remote[i + j].iov_base,
					    local[i + j].iov_base, local[i + j].iov_len, err);
			if (ret)
				return ret;
		}
	}
	return 0;
}

int qp_proc__read_cb(void *arg, uint64_t addr, void *buf, size_t len, struct qp_error *err)
{
	return qp_proc__read(arg, addr, buf, len, err);
}

int qp_proc__write(struct qp_proc *p, uint64_t addr, const void *buf, size_t len,
		   struct qp_error *err)
{
	ssize_t n = pwrite(p->mem_fd, buf, len, (off_t)addr);

	if (n != (ssize_t)len)
		return qp_seterr(err, n < 0 ? -errno : -EIO,
				 "process %d: cannot write %zu bytes at 0x%" PRIx64 ": %s", (int)p->pid,
				 len, addr, n < 0 ? strerror(errno) : "short write");
	return 0;
}

int qp_proc__run_to(struct qp_proc *p, size_t i, uint64_t addr, int timeout_ms,
		    struct qp_error *err)
{
	struct qp_thread *t = &p->threads[i];
	struct user_regs_struct r;
	uint8_t orig, trap = 0xcc;
	double deadline = proc_now_ms() + timeout_ms;
	int status, w, sig = 0, ret = 0;

	if (p->self) /* a thread cannot be run alone from inside */
		return qp_seterr(err, -ETIMEDOUT, "thread %d: not run alone by the agent", (int)t->tid);
	if (qp_proc__read(p, addr, &orig, 1, err) || qp_proc__write(p, addr, &trap, 1, err))
		return err->code;
	for (;;) {
		if (ptrace(PTRACE_CONT, t->tid, 0, (void *)(long)sig) < 0) {
			ret = qp_seterr(err, -errno, "thread %d: cannot resume: %s", (int)t->tid,
					strerror(errno));
			break;
		}
		sig = 0;
		w = proc_wait(p, t, &status, (int)(deadline - proc_now_ms() > 0 ?
						   deadline - proc_now_ms() : 0));
		if (w == 0) { /* not there in time: stop it where it is */
			ptrace(PTRACE_INTERRUPT, t->tid, 0, 0);
			ret = proc_wait_stop(p, t, NULL) && t->gone ? QP_EPROC : -ETIMEDOUT;
			break;
		}
		if (w < 0 || t->gone) {
			ret = QP_EPROC;
			break;
		}
		if (!WIFSTOPPED(status))
			continue;
		if ((status >> 16) == PTRACE_EVENT_STOP)
			continue; /* a group stop or a late interrupt: go on */
		if ((status >> 16) || WSTOPSIG(status) != SIGTRAP) {
			sig = (status >> 16) ? 0 : WSTOPSIG(status); /* deliver it, go on */
			continue;
		}
		if (ptrace(PTRACE_GETREGS, t->tid, 0, &r) < 0) {
			ret = qp_seterr(err, -errno, "thread %d: cannot read registers: %s",
					(int)t->tid, strerror(errno));
			break;
		}
		if (r.rip != addr + 1) {
			sig = SIGTRAP; /* not our trap */
			continue;
		}
		r.rip = addr;
		if (ptrace(PTRACE_SETREGS, t->tid, 0, &r) < 0)
			ret = qp_seterr(err, -errno, "thread %d: cannot set registers: %s", (int)t->tid,
					strerror(errno));
		break;
	}
	/* the trap goes whatever happened (unless the process is gone) */
	if (ret != QP_EPROC && qp_proc__write(p, addr, &orig, 1, ret ? NULL : err) && !ret)
		ret = err->code;
	if (ret == QP_EPROC)
		return qp_seterr(err, QP_EPROC, "thread %d ended while it ran alone", (int)t->tid);
	if (ret == -ETIMEDOUT)
		qp_seterr(err, -ETIMEDOUT, "thread %d did not reach 0x%" PRIx64 " within %d ms",
			  (int)t->tid, addr, timeout_ms);
	/* it moved: its registers now are the ones to keep (and to restore
	 * after remote syscalls, for threads[0]) */
	if (ptrace(PTRACE_GETREGS, t->tid, 0, &t->regs) < 0 && !ret)
		ret = qp_seterr(err, -errno, "thread %d: cannot read registers: %s", (int)t->tid,
				strerror(errno));
	return ret;
}

/* Any "0f 05" bytes in executable memory serve: executing from there is a
 * syscall instruction whatever the bytes meant to the compiler.  Read a
 * page at a time: one is found within the first few of most objects. */
int qp_proc__find_gadget_in(struct qp_proc *p, const struct qp_maps *maps, struct qp_error *err)
{
	uint8_t buf[4096];
	size_t i, j;

	for (i = 0; i < maps->n && !p->gadget; i++) {
		const struct qp_map *m = &maps->v[i];
		uint64_t a;

		if (m->perms[2] != 'x' || !strcmp(m->path, "[vsyscall]"))
			continue;
		for (a = m->start; a < m->end && !p->gadget; a += sizeof(buf) - 1) {
			size_t n = m->end - a < sizeof(buf) ? m->end - a : sizeof(buf);

			if (pread(p->mem_fd, buf, n, (off_t)a) != (ssize_t)n)
				break;
			for (j = 0; j + 1 < n; j++) {
				if (buf[j] == 0x0f && buf[j + 1] == 0x05) {
					p->gadget = a + j;
					break;
				}
			}
		}
	}
	if (!p->gadget)
		return qp_seterr(err, -ENOEXEC, "process %d: no syscall instruction found", (int)p->pid);
	return 0;
}

int qp_proc__find_gadget(struct qp_proc *p, struct qp_error *err)
{
	struct qp_maps maps;
	int ret;

	ret = qp_maps__read(p->pid, &maps, err);
	if (!ret)
		ret = qp_proc__find_gadget_in(p, &maps, err);
	qp_maps__release(&maps);
	return ret;
}

int qp_proc__syscall(struct qp_proc *p, long nr, const uint64_t *args, int nargs,
		     int64_t *ret, struct qp_error *err)
{
	if (p->self)
		return qp_self__syscall(nr, args, nargs, ret);
	struct qp_thread *t = &p->threads[0];
	struct user_regs_struct r = t->regs;
	int status, i, w;

	if (!p->gadget && qp_proc__find_gadget(p, err))
		return err->code;
	r.rax = (uint64_t)nr;
	/* no syscall-restart: the stopped thread may sit in an interrupted call */
	r.orig_rax = (uint64_t)-1;
	r.rip = p->gadget;
	/* unused argument registers 0: what a seccomp filter sees is known */
	for (i = 0; i < 6; i++) {
		unsigned long long *slot[6] = { &r.rdi, &r.rsi, &r.rdx, &r.r10, &r.r8, &r.r9 };

		*slot[i] = i < nargs ? args[i] : 0;
	}
	p->regs_dirty = true;
	if (ptrace(PTRACE_SETREGS, t->tid, 0, &r) < 0)
		return qp_seterr(err, -errno, "thread %d: cannot set registers: %s", (int)t->tid,
				 strerror(errno));
	for (;;) {
		if (ptrace(PTRACE_SINGLESTEP, t->tid, 0, 0) < 0)
			return qp_seterr(err, -errno, "thread %d: cannot step: %s", (int)t->tid,
					 strerror(errno));
		w = proc_wait(p, t, &status, PROC_SYSCALL_TIMEOUT_MS);
		if (w <= 0 || t->gone)
			return qp_seterr(err, w ? QP_EPROC : -ETIMEDOUT,
					 "process %d: %s during a remote system call", (int)p->pid,
					 w ? "thread ended" : "no answer within 10 s");
		if (ptrace(PTRACE_GETREGS, t->tid, 0, &r) < 0)
			return qp_seterr(err, -errno, "thread %d: cannot read registers: %s",
					 (int)t->tid, strerror(errno));
		if (r.rip == p->gadget + 2)
			break;
		if (WIFSTOPPED(status) && WSTOPSIG(status) != SIGTRAP)
			t->pending_sig = WSTOPSIG(status);
	}
	*ret = (int64_t)r.rax;
	return 0;
}

int qp_proc__call(struct qp_proc *p, uint64_t fn, const uint64_t *args, int nargs,
		  int timeout_ms, uint64_t *ret, struct qp_error *err)
{
	if (p->self)
		return qp_self__call(fn, args, nargs, ret);
	struct qp_thread *t = &p->threads[0];
	struct user_regs_struct r = t->regs;
	unsigned long long *slot[6] = { &r.rdi, &r.rsi, &r.rdx, &r.rcx, &r.r8, &r.r9 };
	uint64_t zero = 0;
	int status, i, w;

	/* below the red zone, 16-byte aligned before the call's push */
	r.rsp = ((t->regs.rsp - 512) & ~15ull) - 8;
	if (qp_proc__write(p, r.rsp, &zero, sizeof(zero), err))
		return err->code;
	r.rip = fn;
	r.rax = 0;
	r.orig_rax = (uint64_t)-1;
	for (i = 0; i < nargs && i < 6; i++)
		*slot[i] = args[i];
	p->regs_dirty = true;
	if (ptrace(PTRACE_SETREGS, t->tid, 0, &r) < 0)
		return qp_seterr(err, -errno, "thread %d: cannot set registers: %s", (int)t->tid,
				 strerror(errno));
	for (;;) {
		if (ptrace(PTRACE_CONT, t->tid, 0, 0) < 0)
			return qp_seterr(err, -errno, "thread %d: cannot resume: %s", (int)t->tid,
					 strerror(errno));
		w = proc_wait(p, t, &status, timeout_ms);
		if (w == 0) {
			ptrace(PTRACE_INTERRUPT, t->tid, 0, 0);
			proc_wait_stop(p, t, NULL);
			return qp_seterr(err, -ETIMEDOUT,
					 "process %d: function at 0x%" PRIx64 " did not return within %d ms",
					 (int)p->pid, fn, timeout_ms);
		}
		if (w < 0 || t->gone)
			return qp_seterr(err, QP_EPROC, "process %d: thread ended during a remote call",
					 (int)p->pid);
		if (ptrace(PTRACE_GETREGS, t->tid, 0, &r) < 0)
			return qp_seterr(err, -errno, "thread %d: cannot read registers: %s",
					 (int)t->tid, strerror(errno));
		if (WSTOPSIG(status) == SIGSEGV && r.rip == 0)
			break; /* returned to 0: done */
		if (WSTOPSIG(status) == SIGSEGV || WSTOPSIG(status) == SIGBUS ||
		    WSTOPSIG(status) == SIGILL || WSTOPSIG(status) == SIGFPE)
			return qp_seterr(err, -EFAULT,
					 "process %d: function at 0x%" PRIx64 " faulted (signal %d at 0x%llx)",
					 (int)p->pid, fn, WSTOPSIG(status), (unsigned long long)r.rip);
		if ((status >> 16) == 0)
			t->pending_sig = WSTOPSIG(status); /* deliver on detach */
	}
	*ret = r.rax;
	return 0;
}
