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
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "proc.h"
#include "selfstop.h"

#define PROC_SYSCALL_TIMEOUT_MS 10000 /* a remote syscall of ours never blocks */

static char proc_task_state(pid_t pid, pid_t tid);

int qp_maps__read(pid_t pid, struct qp_maps *maps, struct qp_error *err)
{
	char path[64], line[1024];
	size_t cap = 0;
	FILE *f;

	maps->v = NULL;
	maps->n = 0;
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return qp_seterr(err, errno == ENOENT ? -ESRCH : -errno,
				 "process %d: %s", (int)pid, errno == ENOENT ? "no such process" : strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		struct qp_map m = { 0 };
		int pos = 0;

		if (sscanf(line, "%" SCNx64 "-%" SCNx64 " %4s %" SCNx64 " %*s %*s%n",
			   &m.start, &m.end, m.perms, &m.offset, &pos) < 4)
			continue;
		while (line[pos] == ' ')
			pos++;
		line[strcspn(line, "\n")] = '\0';
		snprintf(m.path, sizeof(m.path), "%s", line + pos);
		if (maps->n == cap) {
			struct qp_map *v;

			cap = cap ? 2 * cap : 64;
			v = realloc(maps->v, cap * sizeof(*v));
			if (!v) {
				fclose(f);
				qp_maps__release(maps);
				return qp_seterr(err, -ENOMEM, "out of memory");
			}
			maps->v = v;
		}
		maps->v[maps->n++] = m;
	}
	fclose(f);
	return 0;
}

void qp_maps__release(struct qp_maps *maps)
{
	free(maps->v);
	maps->v = NULL;
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

/* Seize and interrupt @tid; its stop is collected by proc_collect().
 * 1 when it was added, 0 when it had ended already. */
static int proc_interrupt(struct qp_proc *p, pid_t tid, struct qp_error *err)
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
	/* ESRCH: it is exiting; proc_collect() gathers its end */
	if (ptrace(PTRACE_INTERRUPT, tid, 0, 0) < 0 && errno != ESRCH)
		return qp_seterr(err, -errno, "thread %d: cannot interrupt: %s", (int)tid, strerror(errno));
	return 1;
}

/* Forget thread @i, which ended while we stopped it (a thread may exit
 * by itself until it is stopped). */
static void proc_drop(struct qp_proc *p, size_t i)
{
	memmove(&p->threads[i], &p->threads[i + 1], (p->nthreads - i - 1) * sizeof(*p->threads));
	p->nthreads--;
}

/* Wait for the stops of threads [from, nthreads) and read their registers. */
static int proc_collect(struct qp_proc *p, size_t from, struct qp_error *err)
{
	size_t i;

	for (i = from; i < p->nthreads;) {
		struct qp_thread *t = &p->threads[i];

		if (!t->gone && proc_wait_stop(p, t, err) && !t->gone)
			return err->code;
		if (t->gone) {
			proc_drop(p, i);
			continue;
		}
		if (ptrace(PTRACE_GETREGS, t->tid, 0, &t->regs) < 0)
			return qp_seterr(err, -errno, "thread %d: cannot read registers: %s",
					 (int)t->tid, strerror(errno));
		i++;
	}
	return 0;
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

/*
 * Every thread is interrupted before any stop is waited for, so threads
 * that need a CPU to reach their stop get it in parallel; then the task
 * list is read again until it shows no new thread.
 */
int qp_proc__stop(struct qp_proc *p, struct qp_error *err)
{
	char path[64];
	bool found_new = true;
	int ret = 0;

	if (p->self)
		return qp_self__stop(p, err);
	snprintf(path, sizeof(path), "/proc/%d/task", (int)p->pid);
	if (p->keep_tid && !proc_has_thread(p, p->keep_tid))
		ret = proc_adopt(p, p->keep_tid, err);
	while (found_new && !ret) {
		size_t from = p->nthreads;
		DIR *d = opendir(path);
		struct dirent *de;

		if (!d)
			return qp_seterr(err, errno == ENOENT ? QP_EPROC : -errno,
					 "process %d: %s", (int)p->pid,
					 errno == ENOENT ? "went away" : strerror(errno));
		found_new = false;
		while (!ret && (de = readdir(d))) {
			pid_t tid = (pid_t)atoi(de->d_name);

			if (tid <= 0 || proc_has_thread(p, tid))
				continue;
			ret = proc_interrupt(p, tid, err);
			if (ret > 0) {
				found_new = true;
				ret = 0;
			}
		}
		closedir(d);
		if (!ret)
			ret = proc_collect(p, from, err);
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
	if (p->self)
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
 * syscall instruction whatever the bytes meant to the compiler. */
int qp_proc__find_gadget(struct qp_proc *p, struct qp_error *err)
{
	struct qp_maps maps;
	uint8_t buf[65536];
	size_t i, j;
	int ret;

	ret = qp_maps__read(p->pid, &maps, err);
	if (ret)
		return ret;
	for (i = 0; i < maps.n && !p->gadget; i++) {
		struct qp_map *m = &maps.v[i];
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
	qp_maps__release(&maps);
	if (!p->gadget)
		return qp_seterr(err, -ENOEXEC, "process %d: no syscall instruction found", (int)p->pid);
	return 0;
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
