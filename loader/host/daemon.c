// SPDX-License-Identifier: MIT
/*
 * qpatchd's loop (qp_daemon_run): keeps every process of a stored binary
 * patched, the running ones and those started later.
 *
 * Events: process execs (watch.c), changes of the store (inotify on its
 * .generation file), SIGHUP (reload), SIGTERM/SIGINT (stop), results of
 * the workers (pool.c), and timers: retries, early looks at new processes
 * for libraries, the periodic rescan that finds libraries loaded later
 * with dlopen() and anything an overflowing event queue lost.
 *
 * The work on a process is one qp_sync_job() in a worker; the daemon only
 * decides which process needs one and when.  A process is known by pid
 * and start time, so a reused pid is a new process.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "host.h"

static const int early_ms[] = { 2, 10, 50, 250, 1000, 3000 }; /* looks at a new process */
static const int retry_ms[] = { 1000, 2000, 5000, 10000, 30000, 60000, 300000 };

/* A process that needs (or may need) a sync. */
struct dproc {
	pid_t pid;
	uint64_t start;        /* start time: pid + start name one process */
	double due_ms;         /* when to act; 0: not scheduled */
	double exec_ns;        /* its exec (CLOCK_MONOTONIC), 0 when unknown */
	bool fresh;            /* just exec'd: hold it at its entry point */
	bool look;             /* only look whether it maps a stored object yet */
	int looks;             /* looks made */
	bool running;          /* its job runs */
	bool holding;          /* ... holding it at its entry point */
	bool again;            /* asked for again while running */
	bool failed;           /* its running job reported a failure */
	int tries;             /* failed jobs in a row */
	char last[256];        /* last failure logged, to log changes only */
};

struct daemon {
	const struct qp_daemon_opts *o;
	struct qp_store *store;
	struct qp_scan *scan;
	struct qp_watch *watch;
	struct qp_pool *pool;
	struct qp_sync sync;     /* what jobs do; exec_ns/hold_ms set per job */
	struct dproc *v;         /* tracked processes */
	size_t n;
	int sig_fd, ino_fd;
	bool stop;
	double next_rescan, next_poll;
	unsigned long applied, undone, refused, failed; /* counters, for the exit line */
};

static double mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void dlog(struct daemon *d, int prio, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void dlog(struct daemon *d, int prio, const char *fmt, ...)
{
	char msg[QP_ERRMSG_MAX + 512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (d->o->log)
		d->o->log(prio, msg, d->o->log_arg);
}

static struct dproc *dproc_find(struct daemon *d, pid_t pid)
{
	size_t i;

	for (i = 0; i < d->n; i++)
		if (d->v[i].pid == pid)
			return &d->v[i];
	return NULL;
}

static void dproc_drop(struct daemon *d, struct dproc *p)
{
	*p = d->v[--d->n];
}

/* The entry for @pid, made (or renewed, for a reused pid) as needed. */
static struct dproc *dproc_get(struct daemon *d, pid_t pid)
{
	uint64_t start = qp_host_start_time(pid);
	struct dproc *p = dproc_find(d, pid), *v;

	if (p && (p->start == start || p->running))
		return p;
	if (!p) {
		v = realloc(d->v, (d->n + 1) * sizeof(*v));
		if (!v)
			return NULL;
		d->v = v;
		p = &v[d->n++];
	}
	memset(p, 0, sizeof(*p));
	p->pid = pid;
	p->start = start;
	return p;
}

/*
 * Ask for a sync of @pid now.  @force: something changed (a new exec, the
 * store), so a retry waiting for its time goes now, as a first try; else
 * (a rescan) a process already waiting keeps its time.
 */
static void request(struct daemon *d, pid_t pid, bool force, bool fresh, double exec_ns)
{
	struct dproc *p = dproc_get(d, pid);

	if (!p)
		return;
	if (p->running) {
		p->again |= force;
		return;
	}
	if (p->due_ms && !p->look && !force)
		return;
	p->look = false;
	if (force) {
		p->tries = 0;
		p->last[0] = '\0';
	}
	if (fresh) {
		p->fresh = true;
		p->exec_ns = exec_ns;
	}
	p->due_ms = mono_ms();
}

static bool store_has_libraries(const struct daemon *d)
{
	size_t i;

	for (i = 0; i < qp_store__count(d->store); i++) {
		const struct qp_store_entry *e = qp_store__entry(d->store, i);

		/* a library by build-id names no file: it may be one */
		if (!e->removed && (strstr(e->target, ".so") || (e->so && !e->by_name)))
			return true;
	}
	return false;
}

/* Does the store hold a .so patch for files named like @pid's executable? */
static bool exe_name_stored(struct daemon *d, pid_t pid)
{
	char link[64];
	struct qp_obj o;
	ssize_t n;
	size_t i;

	memset(&o, 0, sizeof(o));
	snprintf(link, sizeof(link), "/proc/%d/exe", (int)pid);
	n = readlink(link, o.path, sizeof(o.path) - 1);
	if (n <= 0)
		return false;
	o.path[n] = '\0';
	for (i = 0; i < qp_store__count(d->store); i++) {
		const struct qp_store_entry *e = qp_store__entry(d->store, i);

		if (!e->removed && e->by_name && qp_obj_named(&o, e->target))
			return true;
	}
	return false;
}

/* Does the executable @exe load a stored library at start-up (names it
 * among its DT_NEEDED)?  Libraries it gets through others are found by
 * the early looks. */
static bool needs_stored_library(struct daemon *d, const char *exe)
{
	size_t i;

	for (i = 0; i < qp_store__count(d->store); i++) {
		const struct qp_store_entry *e = qp_store__entry(d->store, i);

		if (!e->removed && strstr(e->target, ".so") &&
		    qp_scan__file_needs(d->scan, exe, e->target))
			return true;
	}
	return false;
}

/* A process ran execve() (or was found new by polling). */
static void on_exec(pid_t pid, double exec_ns, void *arg)
{
	struct daemon *d = arg;
	uint8_t id[QP_BUILD_ID_MAX];
	char exe[64];
	size_t len;

	snprintf(exe, sizeof(exe), "/proc/%d/exe", (int)pid);
	if ((!qp_scan__file_build_id(d->scan, exe, id, &len) &&
	     qp_store__has_build_id(d->store, id, len)) || exe_name_stored(d, pid) ||
	    needs_stored_library(d, exe)) {
		request(d, pid, true, true, exec_ns); /* now: its libraries are being loaded */
		return;
	}
	if (store_has_libraries(d)) {
		/* it may map a stored library soon: look again shortly */
		struct dproc *p = dproc_get(d, pid);

		if (p && !p->running && !p->due_ms) {
			p->look = true;
			p->looks = 0;
			p->exec_ns = exec_ns;
			p->due_ms = mono_ms() + early_ms[0];
		}
	}
}

/* Every process that needs the store's attention; @why: something
 * changed (logged), NULL for a periodic rescan. */
static void sweep(struct daemon *d, const char *why)
{
	pid_t *pids = NULL;
	size_t n = 0, i, want = 0;
	struct qp_error err = { 0 };

	if (qp_host_pids(&pids, &n, &err)) {
		dlog(d, LOG_ERR, "%s", err.msg);
		return;
	}
	for (i = 0; i < n; i++) {
		if (!qp_sync_needs(d->scan, d->store, pids[i]))
			continue;
		want++;
		request(d, pids[i], why != NULL, false, 0);
	}
	if (why)
		dlog(d, LOG_INFO, "%s: %zu process(es) to bring up to date", why, want);
	free(pids);
}

static int load_store(struct daemon *d)
{
	struct qp_error err = { 0 };
	size_t i, n = 0, removed = 0;

	if (qp_store__load(d->store, &err)) {
		dlog(d, LOG_ERR, "%s; store ignored until it is fixed", err.msg);
		return err.code;
	}
	for (i = 0; i < qp_store__count(d->store); i++)
		qp_store__entry(d->store, i)->removed ? removed++ : n++;
	dlog(d, LOG_INFO, "store '%s': %zu patch(es), %zu removed", qp_store__dir(d->store), n,
	     removed);
	return 0;
}

/* --- results ---------------------------------------------------------- */

static void log_result(struct daemon *d, struct dproc *p, const struct qp_result *r)
{
	char when[96] = "";

	if (r->at_entry && r->since_exec_us > 0)
		snprintf(when, sizeof(when), ", at its entry point %.1f ms after exec",
			 r->since_exec_us / 1e3);
	else if (r->at_entry)
		snprintf(when, sizeof(when), ", at its entry point");
	else if (r->since_exec_us > 0)
		snprintf(when, sizeof(when), ", %.1f ms after exec", r->since_exec_us / 1e3);
	switch (r->outcome) {
	case QP_OUT_APPLIED:
		d->applied++;
		dlog(d, LOG_INFO, "applied '%s' to process %d (%s): %zu function(s), stopped %.0f us%s",
		     r->id, (int)r->pid, r->comm, r->stats.nfuncs, r->stats.stopped_us, when);
		break;
	case QP_OUT_UNDONE:
		d->undone++;
		dlog(d, LOG_INFO, "undid removed '%s' in process %d (%s): %zu function(s) restored",
		     r->id, (int)r->pid, r->comm, r->stats.nfuncs);
		break;
	case QP_OUT_ALREADY:
	case QP_OUT_NOT_APPLIED:
	case QP_OUT_GONE:
	case QP_OUT_NOT_YET:
		break;
	default:
		if (p)
			p->failed = true;
		if (p && !strncmp(p->last, r->msg, sizeof(p->last) - 1))
			break; /* said already */
		r->outcome == QP_OUT_REFUSED ? d->refused++ : d->failed++;
		dlog(d, LOG_WARNING, "process %d (%s): %s '%s': %s", (int)r->pid, r->comm,
		     r->op == QP_OP_UNDO ? "cannot undo" : "cannot apply", r->id, r->msg);
		if (p)
			snprintf(p->last, sizeof(p->last), "%s", r->msg);
	}
}

static void on_result(const struct qp_result *r, void *arg)
{
	struct daemon *d = arg;

	log_result(d, dproc_find(d, r->pid), r);
}

static void on_end(pid_t pid, void *arg)
{
	struct daemon *d = arg;
	struct dproc *p = dproc_find(d, pid);
	int k;

	if (!p)
		return;
	p->running = false;
	p->holding = false;
	p->fresh = false;
	if (qp_host_start_time(pid) != p->start) { /* gone (or a new process) */
		if (!p->again) {
			dproc_drop(d, p);
			return;
		}
		p->start = qp_host_start_time(pid);
	}
	if (p->again) {
		p->again = false;
		p->due_ms = mono_ms();
		return;
	}
	if (!p->failed) {
		dproc_drop(d, p);
		return;
	}
	p->failed = false;
	k = p->tries < (int)(sizeof(retry_ms) / sizeof(retry_ms[0])) ? p->tries :
		(int)(sizeof(retry_ms) / sizeof(retry_ms[0])) - 1;
	p->tries++;
	p->due_ms = mono_ms() + retry_ms[k];
}

/* --- timers ------------------------------------------------------------- */

/* Is P's job to hold it at its entry point (a new process, holds on)? */
static bool holds(const struct daemon *d, const struct dproc *p)
{
	return p->fresh && d->o->hold_ms > 0;
}

static void start_job(struct daemon *d, struct dproc *p)
{
	struct qp_error err = { 0 };

	d->sync.hold_ms = holds(d, p) ? d->o->hold_ms : 0;
	d->sync.exec_ns = p->exec_ns;
	p->due_ms = 0;
	p->running = true;
	p->holding = holds(d, p);
	if (qp_pool__submit(d->pool, p->pid, qp_sync_job, &d->sync, &err)) {
		p->running = false;
		p->due_ms = mono_ms() + retry_ms[0];
		dlog(d, LOG_ERR, "%s", err.msg);
	}
}

/*
 * May P's job start now?  A job that holds a new process at its entry point
 * spends its time waiting for the process to get there (a large program's
 * libraries take long to start), so such jobs do not count against -J: a
 * burst of new processes is held at once, up to QP_POOL_MAX workers.
 */
static bool may_start(const struct daemon *d, const struct dproc *p)
{
	size_t i, busy = 0;

	if (qp_pool__running(d->pool) >= QP_POOL_MAX)
		return false;
	if (holds(d, p))
		return true;
	for (i = 0; i < d->n; i++)
		busy += d->v[i].running && !d->v[i].holding;
	return busy < (size_t)d->o->jobs;
}

/* Act on what is due; returns ms until the next due thing (or -1). */
static int run_due(struct daemon *d)
{
	double now = mono_ms(), next = -1;
	size_t i;

	for (i = 0; i < d->n;) {
		struct dproc *p = &d->v[i];

		if (!p->due_ms || p->running) {
			i++;
			continue;
		}
		if (p->due_ms > now) {
			if (next < 0 || p->due_ms < next)
				next = p->due_ms;
			i++;
			continue;
		}
		if (p->look) {
			if (qp_sync_needs(d->scan, d->store, p->pid)) {
				p->look = false;
			} else if (++p->looks < (int)(sizeof(early_ms) / sizeof(early_ms[0])) &&
				   qp_host_start_time(p->pid) == p->start) {
				p->due_ms = now + early_ms[p->looks];
				continue;
			} else { /* the rescans take it from here */
				dproc_drop(d, p);
				continue;
			}
		}
		if (!may_start(d, p)) {
			i++; /* workers busy: a result wakes us */
			continue;
		}
		start_job(d, p);
		i++;
	}
	if (d->o->rescan_ms > 0) {
		if (now >= d->next_rescan) {
			sweep(d, NULL);
			d->next_rescan = now + d->o->rescan_ms;
		}
		if (next < 0 || d->next_rescan < next)
			next = d->next_rescan;
	}
	if (qp_watch__fd(d->watch) < 0 && !d->o->once) {
		if (now >= d->next_poll) {
			struct qp_error err = { 0 };

			if (qp_watch__poll(d->watch, on_exec, d, &err))
				dlog(d, LOG_ERR, "%s", err.msg);
			d->next_poll = now + d->o->poll_ms;
		}
		if (next < 0 || d->next_poll < next)
			next = d->next_poll;
	}
	if (next < 0)
		return -1;
	return next <= now ? 0 : (int)(next - now) + 1;
}

/* --- set-up --------------------------------------------------------------- */

static int open_signals(struct daemon *d, sigset_t *old, struct qp_error *err)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &set, old))
		return qp_seterr(err, -errno, "cannot block signals: %s", strerror(errno));
	d->sig_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (d->sig_fd < 0)
		return qp_seterr(err, -errno, "signalfd: %s", strerror(errno));
	return 0;
}

static void read_signals(struct daemon *d)
{
	struct signalfd_siginfo si;

	while (read(d->sig_fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGHUP) {
			dlog(d, LOG_INFO, "SIGHUP: reloading the store");
			if (!load_store(d))
				sweep(d, "store reloaded");
		} else {
			dlog(d, LOG_INFO, "%s: stopping", strsignal((int)si.ssi_signo));
			d->stop = true;
		}
	}
}

static void read_inotify(struct daemon *d)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	bool changed = false;
	ssize_t n;

	while ((n = read(d->ino_fd, buf, sizeof(buf))) > 0) {
		char *p;

		for (p = buf; p < buf + n;) {
			const struct inotify_event *ev = (const struct inotify_event *)p;

			if (ev->len && !strcmp(ev->name, ".generation"))
				changed = true;
			p += sizeof(*ev) + ev->len;
		}
	}
	if (changed && !load_store(d))
		sweep(d, "store changed");
}

/* One daemon per store: .daemon.lock stays locked while we run. */
static int lock_store(struct daemon *d, int *fd, struct qp_error *err)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/.daemon.lock", qp_store__dir(d->store));
	*fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (*fd < 0)
		return qp_seterr(err, -errno, "cannot open '%s': %s", path, strerror(errno));
	if (flock(*fd, LOCK_EX | LOCK_NB))
		return qp_seterr(err, -EBUSY, "another qpatchd serves the store '%s'",
				 qp_store__dir(d->store));
	return 0;
}

static void loop(struct daemon *d)
{
	while (!d->stop) {
		struct pollfd pfd[3 + QP_POOL_MAX];
		int fds[QP_POOL_MAX], timeout;
		size_t n = 0, i, nw;

		timeout = run_due(d);
		if (d->o->once && !qp_pool__running(d->pool) && timeout != 0) {
			bool pending = false;

			for (i = 0; i < d->n; i++)
				pending |= d->v[i].due_ms > 0 && !d->v[i].look;
			if (!pending)
				break;
		}
		pfd[n++] = (struct pollfd){ .fd = d->sig_fd, .events = POLLIN };
		pfd[n++] = (struct pollfd){ .fd = d->ino_fd, .events = POLLIN };
		pfd[n++] = (struct pollfd){ .fd = qp_watch__fd(d->watch), .events = POLLIN };
		nw = qp_pool__fds(d->pool, fds, QP_POOL_MAX);
		for (i = 0; i < nw; i++)
			pfd[n++] = (struct pollfd){ .fd = fds[i], .events = POLLIN };
		if (poll(pfd, n, timeout) < 0 && errno != EINTR)
			break;
		if (pfd[0].revents)
			read_signals(d);
		if (pfd[1].revents)
			read_inotify(d);
		if (pfd[2].revents && qp_watch__read(d->watch, on_exec, d) == -ENOBUFS)
			sweep(d, "process events were lost");
		qp_pool__wait(d->pool, 0);
	}
}

int qp_daemon_run(const struct qp_daemon_opts *o, struct qp_error *err)
{
	struct daemon d = { .o = o, .sig_fd = -1, .ino_fd = -1 };
	struct qp_error werr = { 0 };
	sigset_t old;
	int ret, lock_fd = -1;

	ret = qp_store__open(o->store_dir, true, &d.store, err);
	if (!ret)
		ret = lock_store(&d, &lock_fd, err);
	if (!ret)
		ret = qp_scan__new(&d.scan, err);
	if (!ret)
		ret = qp_watch__new(o->poll_only || o->once, &d.watch, &werr);
	if (!ret)
		ret = qp_pool__new(QP_POOL_MAX, on_result, &d, &d.pool, err);
	if (!ret)
		ret = open_signals(&d, &old, err);
	if (ret)
		goto out;
	qp_pool__on_end(d.pool, on_end);
	d.sync.store = d.store;
	d.sync.load = o->load;
	d.ino_fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	if (d.ino_fd < 0 || inotify_add_watch(d.ino_fd, qp_store__dir(d.store),
					      IN_MOVED_TO | IN_CLOSE_WRITE) < 0)
		dlog(&d, LOG_WARNING, "cannot watch the store (%s): send SIGHUP after changes",
		     strerror(errno));
	if (o->once)
		dlog(&d, LOG_INFO, "applying the store once");
	else if (qp_watch__fd(d.watch) >= 0)
		dlog(&d, LOG_INFO, "watching new processes through process events");
	else if (o->poll_only)
		dlog(&d, LOG_INFO, "polling /proc every %d ms for new processes", o->poll_ms);
	else
		dlog(&d, LOG_INFO, "%s; polling /proc every %d ms instead", werr.msg, o->poll_ms);
	if (load_store(&d) && o->once) {
		ret = qp_seterr(err, -EINVAL, "the store cannot be used");
		goto out;
	}
	if (qp_watch__fd(d.watch) < 0 && !o->once)
		qp_watch__poll(d.watch, on_exec, &d, NULL); /* what runs now is swept below */
	sweep(&d, "start");
	d.next_rescan = mono_ms() + o->rescan_ms;
	loop(&d);
	dlog(&d, LOG_INFO, "%lu applied, %lu undone, %lu refusal(s), %lu failure(s)", d.applied,
	     d.undone, d.refused, d.failed);
	if (o->once && (d.refused || d.failed))
		ret = qp_seterr(err, QP_EREFUSED, "%lu process(es) could not be brought up to date",
				d.refused + d.failed);
out:
	qp_pool__free(d.pool); /* waits for running jobs */
	if (d.sig_fd >= 0) {
		close(d.sig_fd);
		sigprocmask(SIG_SETMASK, &old, NULL);
	}
	if (d.ino_fd >= 0)
		close(d.ino_fd);
	if (lock_fd >= 0)
		close(lock_fd);
	qp_watch__free(d.watch);
	qp_scan__free(d.scan);
	qp_store__free(d.store);
	free(d.v);
	return ret;
}
