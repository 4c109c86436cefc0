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
#include <unistd.h>

#include "proc.h"

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
	if (pid <= 0)
		return qp_seterr(err, -ESRCH, "invalid process id %d", (int)pid);
	if (kill(pid, 0) && errno == ESRCH)
		return qp_seterr(err, -ESRCH, "process %d: no such process", (int)pid);
	snprintf(path, sizeof(path), "/proc/%d/mem", (int)pid);
	p->mem_fd = open(path, O_RDWR | O_CLOEXEC);
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

/* Wait for @t's interrupt stop; signals that come first are kept. */
static int proc_wait_stop(struct qp_thread *t, struct qp_error *err)
{
	int status;

	for (;;) {
		if (waitpid(t->tid, &status, __WALL) < 0) {
			if (errno == EINTR)
				continue;
			return qp_seterr(err, -errno, "thread %d: waitpid: %s", (int)t->tid,
					 strerror(errno));
		}
		if (WIFEXITED(status) || WIFSIGNALED(status))
			return qp_seterr(err, QP_EPROC, "thread %d exited while being stopped",
					 (int)t->tid);
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

/* Seize and interrupt @tid; its stop is collected by proc_collect(). */
static int proc_interrupt(struct qp_proc *p, pid_t tid, struct qp_error *err)
{
	struct qp_thread *t, *v;

	v = realloc(p->threads, (p->nthreads + 1) * sizeof(*v));
	if (!v)
		return qp_seterr(err, -ENOMEM, "out of memory");
	p->threads = v;
	if (ptrace(PTRACE_SEIZE, tid, 0, 0) < 0) {
		if (errno == ESRCH)
			return 0; /* exited meanwhile */
		return qp_seterr(err, -errno, "thread %d: cannot attach: %s%s", (int)tid,
				 strerror(errno), errno == EPERM ? " (are you root? is it traced already?)" : "");
	}
	t = &p->threads[p->nthreads++];
	memset(t, 0, sizeof(*t));
	t->tid = tid;
	if (ptrace(PTRACE_INTERRUPT, tid, 0, 0) < 0)
		return qp_seterr(err, -errno, "thread %d: cannot interrupt: %s", (int)tid, strerror(errno));
	return 0;
}

/* Wait for the stops of threads [from, nthreads) and read their registers. */
static int proc_collect(struct qp_proc *p, size_t from, struct qp_error *err)
{
	size_t i;

	for (i = from; i < p->nthreads; i++) {
		struct qp_thread *t = &p->threads[i];

		if (proc_wait_stop(t, err))
			return err->code;
		if (ptrace(PTRACE_GETREGS, t->tid, 0, &t->regs) < 0)
			return qp_seterr(err, -errno, "thread %d: cannot read registers: %s",
					 (int)t->tid, strerror(errno));
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

	snprintf(path, sizeof(path), "/proc/%d/task", (int)p->pid);
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
			found_new = true;
			ret = proc_interrupt(p, tid, err);
		}
		closedir(d);
		if (!ret)
			ret = proc_collect(p, from, err);
	}
	if (!ret && !p->nthreads)
		ret = qp_seterr(err, QP_EPROC, "process %d has no threads left", (int)p->pid);
	return ret;
}

int qp_proc__resume(struct qp_proc *p, struct qp_error *err)
{
	size_t i;
	int ret = 0;

	if (p->regs_dirty && p->nthreads &&
	    ptrace(PTRACE_SETREGS, p->threads[0].tid, 0, &p->threads[0].regs) < 0)
		ret = qp_seterr(err, -errno, "thread %d: cannot restore registers: %s",
				(int)p->threads[0].tid, strerror(errno));
	p->regs_dirty = false;
	for (i = 0; i < p->nthreads; i++)
		ptrace(PTRACE_DETACH, p->threads[i].tid, 0, (void *)(long)p->threads[i].pending_sig);
	free(p->threads);
	p->threads = NULL;
	p->nthreads = 0;
	return ret;
}

void qp_proc__close(struct qp_proc *p)
{
	if (p->nthreads)
		qp_proc__resume(p, NULL);
	if (p->mem_fd >= 0)
		close(p->mem_fd);
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
	struct qp_thread *t = &p->threads[0];
	struct user_regs_struct r = t->regs;
	int status, i;

	if (!p->gadget && qp_proc__find_gadget(p, err))
		return err->code;
	r.rax = (uint64_t)nr;
	/* no syscall-restart: the stopped thread may sit in an interrupted call */
	r.orig_rax = (uint64_t)-1;
	r.rip = p->gadget;
	for (i = 0; i < nargs; i++) {
		unsigned long long *slot[6] = { &r.rdi, &r.rsi, &r.rdx, &r.r10, &r.r8, &r.r9 };

		*slot[i] = args[i];
	}
	p->regs_dirty = true;
	if (ptrace(PTRACE_SETREGS, t->tid, 0, &r) < 0)
		return qp_seterr(err, -errno, "thread %d: cannot set registers: %s", (int)t->tid,
				 strerror(errno));
	for (;;) {
		if (ptrace(PTRACE_SINGLESTEP, t->tid, 0, 0) < 0)
			return qp_seterr(err, -errno, "thread %d: cannot step: %s", (int)t->tid,
					 strerror(errno));
		while (waitpid(t->tid, &status, __WALL) < 0)
			if (errno != EINTR)
				return qp_seterr(err, -errno, "thread %d: waitpid: %s",
						 (int)t->tid, strerror(errno));
		if (WIFEXITED(status) || WIFSIGNALED(status))
			return qp_seterr(err, QP_EPROC, "process %d exited during a remote syscall",
					 (int)p->pid);
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

/* Wait for @tid to stop, at most @timeout_ms; 1 if it did, 0 on timeout. */
static int proc_wait_timeout(pid_t tid, int *status, int timeout_ms)
{
	int waited_us = 0;

	for (;;) {
		pid_t r = waitpid(tid, status, __WALL | WNOHANG);

		if (r == tid)
			return 1;
		if (r < 0 && errno != EINTR)
			return -1;
		if (waited_us >= timeout_ms * 1000)
			return 0;
		usleep(50);
		waited_us += 50;
	}
}

int qp_proc__call(struct qp_proc *p, uint64_t fn, const uint64_t *args, int nargs,
		  int timeout_ms, uint64_t *ret, struct qp_error *err)
{
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
		w = proc_wait_timeout(t->tid, &status, timeout_ms);
		if (w == 0) {
			ptrace(PTRACE_INTERRUPT, t->tid, 0, 0);
			proc_wait_stop(t, NULL);
			return qp_seterr(err, -ETIMEDOUT,
					 "process %d: function at 0x%" PRIx64 " did not return within %d ms",
					 (int)p->pid, fn, timeout_ms);
		}
		if (w < 0 || WIFEXITED(status) || WIFSIGNALED(status))
			return qp_seterr(err, QP_EPROC, "process %d exited during a remote call",
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
