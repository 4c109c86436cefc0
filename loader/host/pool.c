// SPDX-License-Identifier: MIT
/*
 * Worker processes for many targets at once: see qp_pool in host.h.
 *
 * Why processes and not threads: ptrace is per thread and the loader waits
 * for its tracees by thread id with SIGCHLD blocked in the waiting thread,
 * so each job is self-contained in a process; a worker that crashes takes
 * only its own job with it (the kernel detaches and resumes the target of
 * a tracer that dies, as after a crash of qpatch-load itself).  Results
 * come back over a pipe as whole struct qp_result records, each written in
 * one write() below PIPE_BUF, so never interleaved or torn.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "host.h"

_Static_assert(sizeof(struct qp_result) <= 4096, "a result is written atomically (PIPE_BUF)");

struct pool_job {
	pid_t pid;              /* target */
	pid_t worker;           /* the worker process */
	int fd;                 /* read end of its pipe, -1 when closed */
	size_t got;             /* bytes of buf filled */
	size_t reports;         /* results it sent */
	struct qp_result buf;   /* the result being read */
};

struct qp_pool {
	struct pool_job *jobs;  /* running jobs */
	size_t n, max;          /* running, at most */
	qp_result_fn done;      /* callback */
	void *done_arg;
	void (*ended)(pid_t pid, void *arg); /* a job ended (after its results) */
};

const char *qp_outcome_name(enum qp_outcome o)
{
	switch (o) {
	case QP_OUT_APPLIED: return "applied";
	case QP_OUT_ALREADY: return "already applied";
	case QP_OUT_UNDONE: return "undone";
	case QP_OUT_NOT_APPLIED: return "not applied";
	case QP_OUT_REFUSED: return "refused";
	case QP_OUT_FAILED: return "failed";
	case QP_OUT_GONE: return "gone";
	case QP_OUT_NOT_YET: return "not mapped";
	}
	return "?";
}

enum qp_outcome qp_outcome_of(enum qp_op op, int ret, const struct qp_load_stats *st)
{
	if (!ret)
		return op == QP_OP_APPLY ? QP_OUT_APPLIED : QP_OUT_UNDONE;
	if ((st && st->target_gone) || ret == -ESRCH || ret == QP_EPROC)
		return QP_OUT_GONE;
	switch (ret) {
	case QP_EAPPLIED:
		return QP_OUT_ALREADY;
	case QP_ETARGET:
		return op == QP_OP_APPLY ? QP_OUT_NOT_YET : QP_OUT_REFUSED;
	case -ENOENT:
		return op == QP_OP_UNDO ? QP_OUT_NOT_APPLIED : QP_OUT_FAILED;
	case QP_EBUSY:
	case -EBUSY:
	case QP_EUNSUPP:
	case QP_ERESOLVE:
	case QP_EREFUSED:
	case QP_EFORMAT:
	case QP_EVERSION:
	case QP_ESECCOMP:
	case -EACCES:
	case -EPERM:
		return QP_OUT_REFUSED;
	}
	return QP_OUT_FAILED;
}

int qp_pool__new(int workers, qp_result_fn done, void *done_arg, struct qp_pool **out,
		 struct qp_error *err)
{
	struct qp_pool *p = calloc(1, sizeof(*p));

	*out = NULL;
	if (workers < 1)
		workers = 1;
	if (workers > QP_POOL_MAX)
		workers = QP_POOL_MAX;
	if (p)
		p->jobs = calloc((size_t)workers, sizeof(*p->jobs));
	if (!p || !p->jobs) {
		free(p);
		return qp_seterr(err, -ENOMEM, "out of memory");
	}
	p->max = (size_t)workers;
	p->done = done;
	p->done_arg = done_arg;
	*out = p;
	return 0;
}

void qp_pool_report(int fd, const struct qp_result *r)
{
	ssize_t n;

	do
		n = write(fd, r, sizeof(*r));
	while (n < 0 && errno == EINTR);
}

/* In the new worker: the caller's signal handling is not ours. */
static void pool_worker_signals(void)
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE, SIGUSR1, SIGUSR2,
				    SIGCHLD };
	sigset_t none;
	size_t i;

	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		signal(sigs[i], SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

int qp_pool__submit(struct qp_pool *p, pid_t pid, qp_job_fn fn, void *arg, struct qp_error *err)
{
	struct pool_job *j;
	int fds[2];
	pid_t w;

	while (p->n == p->max)
		qp_pool__wait(p, -1);
	if (pipe2(fds, O_CLOEXEC))
		return qp_seterr(err, -errno, "cannot create a pipe: %s", strerror(errno));
	fflush(NULL); /* nothing buffered is written twice */
	w = fork();
	if (w < 0) {
		int e = errno;

		close(fds[0]);
		close(fds[1]);
		return qp_seterr(err, -e, "cannot start a worker: %s", strerror(e));
	}
	if (w == 0) {
		close(fds[0]);
		pool_worker_signals();
		fn(pid, arg, fds[1]);
		_exit(0);
	}
	close(fds[1]);
	j = &p->jobs[p->n++];
	memset(j, 0, sizeof(*j));
	j->pid = pid;
	j->worker = w;
	j->fd = fds[0];
	return 0;
}

bool qp_pool__has(const struct qp_pool *p, pid_t pid)
{
	size_t i;

	for (i = 0; i < p->n; i++)
		if (p->jobs[i].pid == pid)
			return true;
	return false;
}

size_t qp_pool__running(const struct qp_pool *p)
{
	return p->n;
}

size_t qp_pool__fds(const struct qp_pool *p, int *fds, size_t cap)
{
	size_t i;

	for (i = 0; i < p->n && i < cap; i++)
		fds[i] = p->jobs[i].fd;
	return i;
}

/* Read what job @j sent; true when its pipe is at its end. */
static bool pool_read(struct qp_pool *p, struct pool_job *j)
{
	for (;;) {
		ssize_t n = read(j->fd, (char *)&j->buf + j->got, sizeof(j->buf) - j->got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return false;
		if (n <= 0)
			return true;
		j->got += (size_t)n;
		if (j->got == sizeof(j->buf)) {
			j->buf.comm[sizeof(j->buf.comm) - 1] = '\0';
			j->buf.id[sizeof(j->buf.id) - 1] = '\0';
			j->buf.msg[sizeof(j->buf.msg) - 1] = '\0';
			j->reports++;
			j->got = 0;
			if (p->done)
				p->done(&j->buf, p->done_arg);
		}
	}
}

/* Job @i's pipe is at its end: collect its worker, report a crash. */
static void pool_finish(struct qp_pool *p, size_t i)
{
	struct pool_job *j = &p->jobs[i];
	int status = 0;
	pid_t pid;

	close(j->fd);
	while (waitpid(j->worker, &status, 0) < 0 && errno == EINTR)
		;
	/* a job with nothing to do reports nothing and exits 0 */
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		struct qp_result r = { .pid = j->pid, .outcome = QP_OUT_FAILED, .code = -EIO };

		qp_host_comm(j->pid, r.comm, sizeof(r.comm));
		if (WIFSIGNALED(status))
			snprintf(r.msg, sizeof(r.msg), "the worker for process %d was killed by signal %d (%s)",
				 (int)j->pid, WTERMSIG(status), strsignal(WTERMSIG(status)));
		else
			snprintf(r.msg, sizeof(r.msg), "the worker for process %d exited with status %d",
				 (int)j->pid, WEXITSTATUS(status));
		if (p->done)
			p->done(&r, p->done_arg);
	}
	pid = j->pid;
	p->jobs[i] = p->jobs[--p->n];
	if (p->ended)
		p->ended(pid, p->done_arg);
}

void qp_pool__on_end(struct qp_pool *p, void (*fn)(pid_t pid, void *arg))
{
	p->ended = fn;
}

int qp_pool__wait(struct qp_pool *p, int timeout_ms)
{
	struct pollfd pfd[QP_POOL_MAX];
	size_t i, n;
	int ended = 0, r;

	if (!p->n)
		return 0;
	n = p->n;
	for (i = 0; i < n; i++) {
		pfd[i].fd = p->jobs[i].fd;
		pfd[i].events = POLLIN;
		pfd[i].revents = 0;
	}
	r = poll(pfd, n, timeout_ms);
	if (r <= 0)
		return 0;
	/* back to front: pool_finish() moves the last job into the hole */
	for (i = n; i-- > 0;) {
		if (!pfd[i].revents)
			continue;
		fcntl(p->jobs[i].fd, F_SETFL, O_NONBLOCK);
		if (pool_read(p, &p->jobs[i])) {
			pool_finish(p, i);
			ended++;
		}
	}
	return ended;
}

void qp_pool__free(struct qp_pool *p)
{
	if (!p)
		return;
	while (p->n)
		qp_pool__wait(p, -1);
	free(p->jobs);
	free(p);
}
