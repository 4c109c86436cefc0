// SPDX-License-Identifier: MIT
/*
 * libqpatch-agent.so: the loader inside the process, for hosts where the
 * loader may not trace it (Yama ptrace_scope 3, a container without
 * CAP_SYS_PTRACE, a process that made itself non-dumpable).  Linked into
 * the program or given with LD_PRELOAD, it starts one thread that serves
 * root's requests on a Unix socket (agent.h) and applies, lists and undoes
 * patches with the loader library working on its own process: the same
 * checks, the same record, the same busy check; threads are stopped by a
 * signal instead of ptrace (selfstop.c).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "agent.h"
#include "dwlib.h"
#include "loader.h"

/* A reply being built: text for the user. */
struct agent_reply {
	char *text;      /* malloc'ed (open_memstream) */
	size_t size;
	FILE *f;
	bool ok;
};

/* The socket file, removed when the process exits (not by a child that
 * forked and exits: the file is its parent's). */
static char agent_path[108];
static pid_t agent_pid;

static void agent_unlink(void)
{
	if (agent_path[0] && getpid() == agent_pid)
		unlink(agent_path);
}

static int agent_listen(char *name, size_t size)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	socklen_t len;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	if (!geteuid()) { /* root: a socket file only root can reach */
		mkdir(QP_AGENT_SOCK_DIR, 0700);
		snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/agent-%d.sock", QP_AGENT_SOCK_DIR,
			 (int)getpid());
		unlink(sa.sun_path); /* an earlier process's with this pid */
		mode_t old = umask(0177);
		int r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));

		umask(old);
		if (!r && !chmod(sa.sun_path, 0600) && !listen(fd, 4)) {
			snprintf(name, size, "%s", sa.sun_path);
			snprintf(agent_path, sizeof(agent_path), "%s", sa.sun_path);
			agent_pid = getpid();
			atexit(agent_unlink);
			return fd;
		}
		close(fd);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -1;
		memset(sa.sun_path, 0, sizeof(sa.sun_path));
	}
	/* abstract: no file; every request's sender is checked (SO_PEERCRED) */
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 +
			  (size_t)snprintf(sa.sun_path + 1, sizeof(sa.sun_path) - 1, "%s%d",
					   QP_AGENT_ABSTRACT, (int)getpid()));
	if (bind(fd, (struct sockaddr *)&sa, len) || listen(fd, 4)) {
		close(fd);
		return -1;
	}
	snprintf(name, size, "@%s", sa.sun_path + 1);
	return fd;
}

static int agent_read_all(int fd, void *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = read(fd, (char *)buf + got, len - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		got += (size_t)n;
	}
	return 0;
}

static int agent_read_line(int fd, char *line, size_t size)
{
	size_t n = 0;

	while (n + 1 < size) {
		char ch;
		ssize_t r = read(fd, &ch, 1);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		if (ch == '\n') {
			line[n] = '\0';
			return 0;
		}
		line[n++] = ch;
	}
	return -1;
}

static void agent_send(int fd, struct agent_reply *r)
{
	const char *head = r->ok ? "ok\n" : "refused\n";
	size_t off = 0;

	fclose(r->f);
	r->f = NULL;
	if (send(fd, head, strlen(head), MSG_NOSIGNAL) < 0)
		goto out;
	while (off < r->size) {
		ssize_t n = send(fd, r->text + off, r->size - off, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		off += (size_t)n;
	}
out:
	free(r->text);
}

static void agent_stop_line(FILE *f, const struct qp_load_stats *st)
{
	fprintf(f, "target stopped for %.0f us (all %zu other thread%s, stopped by the agent; "
		"first stop to last resume %.0f us; %d attempt%s); total %.1f ms\n",
		st->stopped_us, st->threads, st->threads == 1 ? "" : "s", st->stop_us,
		st->attempts, st->attempts == 1 ? "" : "s", st->total_us / 1000.0);
}

static void agent_opts(struct qp_load_opts *o, int retries, int delay, unsigned flags)
{
	memset(o, 0, sizeof(*o));
	o->retries = retries;
	o->retry_delay_ms = delay;
	o->allow_active = flags & QP_AGENT_F_ALLOW_ACTIVE;
	o->ignore_seccomp = flags & QP_AGENT_F_IGNORE_SECCOMP;
	o->rewrite_calls = flags & QP_AGENT_F_REWRITE_CALLS;
	o->no_type_check = flags & QP_AGENT_F_NO_TYPE_CHECK;
	o->leave_ms = -1; /* no thread can be run alone from inside */
	o->lock_wait_ms = 1000;
}

static void agent_apply(int fd, const char *args, struct agent_reply *r)
{
	struct qp_error err = { 0 };
	struct qp_load_opts opts;
	struct qp_load_stats st;
	struct qp_patch *p;
	char name[256];
	unsigned long size;
	int retries, delay;
	unsigned flags;
	uint8_t *buf;

	if (sscanf(args, "%lu %d %d %u %255s", &size, &retries, &delay, &flags, name) != 5 ||
	    size > QP_AGENT_MAX_PATCH) {
		fprintf(r->f, "bad apply request\n");
		return;
	}
	buf = malloc(size ? size : 1);
	if (!buf || agent_read_all(fd, buf, size)) {
		fprintf(r->f, "%s\n", buf ? "the patch did not arrive whole" : "out of memory");
		free(buf);
		return;
	}
	/* every rule of the format is checked before the process is touched */
	p = qp_patch__open_named(buf, size, name, &err);
	free(buf);
	if (!p) {
		fprintf(r->f, "%s; process %d left unchanged\n", err.msg, (int)getpid());
		return;
	}
	agent_opts(&opts, retries, delay, flags);
	if (qp_load_apply(getpid(), p, &opts, &st, &err)) {
		fprintf(r->f, "%s; process %d left unchanged\n", err.msg[0] ? err.msg : "failed",
			(int)getpid());
	} else {
		r->ok = true;
		fprintf(r->f, "applied patch '%s' to process %d: %zu function(s) redirected, patch at 0x%llx\n",
			qp_patch__info(p)->id, (int)getpid(), st.nfuncs, (unsigned long long)st.region);
		if (st.nsites)
			fprintf(r->f, "%zu call site(s) rewritten to call the new code\n", st.nsites);
		if (st.seccomp_note[0])
			fprintf(r->f, "note: %s\n", st.seccomp_note);
		agent_stop_line(r->f, &st);
	}
	qp_patch__free(p);
}

/* A hand-written library: dlopen()ed by this thread, with the others let
 * go (the loader's .so apply, its calls made here: see selfstop.c). */
static void agent_so(const char *args, struct agent_reply *r)
{
	struct qp_error err = { 0 };
	struct qp_load_opts opts;
	struct qp_load_stats st;
	char id[QP_ID_MAX] = "";
	int retries, delay, at = -1;
	unsigned flags;

	if (sscanf(args, "%d %d %u %n", &retries, &delay, &flags, &at) != 3 || at < 0 ||
	    args[at] != '/') {
		fprintf(r->f, "bad so request\n");
		return;
	}
	agent_opts(&opts, retries, delay, flags);
	if (qp_load_so(getpid(), args + at, &opts, &st, id, &err)) {
		fprintf(r->f, "%s; process %d left unchanged\n", err.msg[0] ? err.msg : "failed",
			(int)getpid());
		return;
	}
	r->ok = true;
	fprintf(r->f, "applied library patch '%s' to process %d: %zu function(s) redirected, record at 0x%llx\n",
		id, (int)getpid(), st.nfuncs, (unsigned long long)st.region);
	if (st.type_note[0])
		fprintf(r->f, "note: %s\n", st.type_note);
	agent_stop_line(r->f, &st);
}

static void agent_undo(const char *id, struct agent_reply *r)
{
	struct qp_error err = { 0 };
	struct qp_load_opts opts;
	struct qp_load_stats st;

	agent_opts(&opts, 0, 0, 0);
	if (qp_load_undo(getpid(), strcmp(id, "-") ? id : NULL, &opts, &st, &err)) {
		fprintf(r->f, "%s\n", err.msg[0] ? err.msg : "failed");
		return;
	}
	r->ok = true;
	fprintf(r->f, "undone: %zu function(s) restored in process %d\n", st.nfuncs, (int)getpid());
	if (st.kept)
		fprintf(r->f, "note: the mapping stays until no thread uses it: %s\n", st.kept_why);
	agent_stop_line(r->f, &st);
}

static void agent_list(struct agent_reply *r)
{
	struct qp_error err = { 0 };
	struct qp_applied *v;
	size_t n, i, j;

	if (qp_load_list(getpid(), &v, &n, &err)) {
		fprintf(r->f, "%s\n", err.msg);
		return;
	}
	r->ok = true;
	if (!n)
		fprintf(r->f, "no patches applied to process %d\n", (int)getpid());
	for (i = 0; i < n; i++) {
		const struct qp_applied *a = &v[i];

		fprintf(r->f, "%llu. patch '%s' on '%s'%s at 0x%llx (%llu bytes), %u function(s):\n",
			(unsigned long long)a->rec.seq, a->rec.id, a->rec.target,
			a->rec.state == QP_REC_APPLIED ? "" :
			a->rec.state == QP_REC_PENDING ? (a->abandoned ? " (abandoned, never applied)" :
							  " (being applied, no jump yet)") :
			" (undone, mapping still in use)",
			(unsigned long long)a->region, (unsigned long long)a->rec.region_size,
			a->rec.nfuncs);
		for (j = 0; j < a->rec.nfuncs; j++)
			fprintf(r->f, "   %s 0x%llx -> 0x%llx%s\n", a->funcs[j].name,
				(unsigned long long)a->funcs[j].old_addr,
				(unsigned long long)a->funcs[j].new_addr,
				a->funcs[j].len ? "" : " (no jump: call sites)");
	}
	qp_applied__free(v, n);
}

static void agent_serve(int fd)
{
	struct agent_reply r = { 0 };
	struct timeval tv = { QP_AGENT_TIMEOUT_S, 0 };
	struct ucred cred;
	socklen_t len = sizeof(cred);
	char line[QP_AGENT_LINE];

	r.f = open_memstream(&r.text, &r.size);
	if (!r.f)
		return;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) || len != sizeof(cred)) {
		fprintf(r.f, "the agent cannot tell who sent the request\n");
	} else if (cred.uid != 0) {
		fprintf(r.f, "the agent of process %d takes requests from root only (uid 0), not "
			"from uid %u (process %d)\n", (int)getpid(), (unsigned)cred.uid, (int)cred.pid);
	} else if (agent_read_line(fd, line, sizeof(line))) {
		fprintf(r.f, "no request arrived\n");
	} else if (!strncmp(line, "apply ", 6)) {
		agent_apply(fd, line + 6, &r);
	} else if (!strncmp(line, "so ", 3)) {
		agent_so(line + 3, &r);
	} else if (!strcmp(line, "list")) {
		agent_list(&r);
	} else if (!strncmp(line, "undo ", 5) && line[5]) {
		agent_undo(line + 5, &r);
	} else {
		fprintf(r.f, "unknown request\n");
	}
	agent_send(fd, &r);
}

static void *agent_main(void *arg)
{
	int lfd = (int)(intptr_t)arg;

	/* libdw now, while the program runs: loaded by the first unwind, it
	 * would be dlopen()ed with the other threads held (one may hold the
	 * dynamic linker's lock), and its mappings would appear in the middle
	 * of a request.  Failing, the unwinder says why when it is needed. */
	qp_dw_load("unwinds stacks", NULL);
	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno != EINTR)
				usleep(100 * 1000);
			continue;
		}
		agent_serve(fd);
		close(fd);
	}
	return NULL;
}

/* At load: the socket, then the thread that serves it, with every signal
 * blocked (the program's signals go to its own threads). */
__attribute__((constructor)) static void agent_start(void)
{
	char name[128];
	sigset_t all, old;
	pthread_attr_t attr;
	pthread_t t;
	int fd = agent_listen(name, sizeof(name)), ret;

	if (fd < 0) {
		fprintf(stderr, "qpatch-agent: process %d: cannot listen for requests: %s\n",
			(int)getpid(), strerror(errno));
		return;
	}
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	ret = pthread_create(&t, &attr, agent_main, (void *)(intptr_t)fd);
	pthread_attr_destroy(&attr);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (ret) {
		fprintf(stderr, "qpatch-agent: process %d: cannot start its thread: %s\n",
			(int)getpid(), strerror(ret));
		close(fd);
		return;
	}
	pthread_setname_np(t, "qpatch-agent");
	if (getenv("QPATCH_AGENT_VERBOSE"))
		fprintf(stderr, "qpatch-agent: process %d listens on %s\n", (int)getpid(), name);
}
