// SPDX-License-Identifier: MIT
/*
 * Bringing one process in line with the store, and saying how far it is
 * (qp_sync_job, qp_sync_status).  The process's own records say what is
 * applied, so running this twice, or after a restart of the daemon, never
 * applies a patch twice.
 *
 * Patches stack: a binary's stored patches go in in their order, and a
 * removed patch can come out only while it is the last one applied.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "host.h"
#include "qpatch/elf.h"

static double sync_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static const struct qp_applied *sync_applied(const struct qp_applied *v, size_t n, const char *id)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (v[i].rec.state == QP_REC_APPLIED && !strcmp(v[i].rec.id, id))
			return &v[i];
	return NULL;
}

static bool sync_maps(const struct qp_obj *objs, size_t nobjs, const struct qp_store_entry *e)
{
	return qp_store_entry__maps(e, objs, nobjs);
}

/* Apply stored patch @e: a .qpatch, or a library under its own id. */
static int sync_apply(pid_t pid, const struct qp_store_entry *e, const struct qp_load_opts *opts,
		      struct qp_load_stats *st, struct qp_error *err)
{
	struct qp_load_opts o = *opts;

	if (!e->so)
		return qp_load_apply(pid, e->patch, opts, st, err);
	o.so_id = e->id;
	return qp_load_so(pid, e->path, &o, st, NULL, err);
}

int qp_sync_status(struct qp_scan *scan, const struct qp_store *store, pid_t pid,
		   struct qp_status *st, struct qp_error *err)
{
	struct qp_obj *objs = NULL;
	struct qp_applied *applied = NULL;
	size_t nobjs = 0, napplied = 0, i;
	int ret;

	memset(st, 0, sizeof(*st));
	st->pid = pid;
	qp_host_comm(pid, st->comm, sizeof(st->comm));
	ret = qp_scan__objects(scan, pid, &objs, &nobjs, err);
	if (ret)
		return ret;
	for (i = 0; i < qp_store__count(store); i++) {
		const struct qp_store_entry *e = qp_store__entry(store, i);

		if (!e->removed && sync_maps(objs, nobjs, e))
			st->relevant = true;
	}
	/* a process with a qpatch mapping may hold a removed patch */
	for (i = 0; !st->relevant && i < qp_store__count(store); i++) {
		const struct qp_store_entry *e = qp_store__entry(store, i);

		if (e->removed && qp_host_has_patch_mapping(pid, e->id))
			st->relevant = true;
	}
	if (!st->relevant) {
		free(objs);
		return 0;
	}
	if (nobjs)
		snprintf(st->exe, sizeof(st->exe), "%s", objs[0].path);
	ret = qp_load_list(pid, &applied, &napplied, err);
	for (i = 0; !ret && i < qp_store__count(store); i++) {
		const struct qp_store_entry *e = qp_store__entry(store, i);
		bool on = sync_applied(applied, napplied, e->id) != NULL;

		if (e->removed && on)
			st->to_undo[st->nto_undo++] = e;
		else if (!e->removed && on)
			st->has[st->nhas++] = e;
		else if (!e->removed && sync_maps(objs, nobjs, e))
			st->lacks[st->nlacks++] = e;
		if (st->nhas == QP_STATUS_MAX || st->nlacks == QP_STATUS_MAX ||
		    st->nto_undo == QP_STATUS_MAX)
			break;
	}
	for (i = 0; !ret && i < napplied && st->nother < QP_STATUS_MAX; i++)
		if (applied[i].rec.state == QP_REC_APPLIED &&
		    !qp_store__find(store, applied[i].rec.id, false) &&
		    !qp_store__find(store, applied[i].rec.id, true))
			snprintf(st->other[st->nother++], QP_ID_MAX, "%s", applied[i].rec.id);
	qp_applied__free(applied, napplied);
	free(objs);
	return ret;
}

bool qp_sync_needs(struct qp_scan *scan, const struct qp_store *store, pid_t pid)
{
	struct qp_status st;

	if (qp_sync_status(scan, store, pid, &st, NULL))
		return false;
	return st.relevant && (st.nlacks || st.nto_undo);
}

/* Report one operation of the job. */
static void sync_report(const struct qp_sync *sy, int fd, pid_t pid, enum qp_op op,
			const char *id, int ret, const struct qp_load_stats *st,
			const struct qp_error *err, bool at_entry)
{
	struct qp_result r;

	memset(&r, 0, sizeof(r));
	r.pid = pid;
	r.op = op;
	r.code = ret;
	r.outcome = qp_outcome_of(op, ret, st);
	r.at_entry = at_entry;
	if (st)
		r.stats = *st;
	if (sy->exec_ns > 0)
		r.since_exec_us = (sync_now_ns() - sy->exec_ns) / 1e3;
	snprintf(r.id, sizeof(r.id), "%s", id);
	qp_host_comm(pid, r.comm, sizeof(r.comm));
	if (ret && err)
		snprintf(r.msg, sizeof(r.msg), "%s", err->msg[0] ? err->msg : qp_strerror(ret));
	qp_pool_report(fd, &r);
}

/*
 * Undo the removed patches the process holds, the latest first.  The
 * loader refuses one that a later patch redirects again over (it names
 * that patch); patches of other functions or objects come out in any
 * order.
 */
static void sync_undo_removed(const struct qp_sync *sy, pid_t pid, struct qp_load_opts *opts,
			      struct qp_applied **applied, size_t *napplied, int fd)
{
	const struct qp_store *store = sy->store;
	char ids[QP_STATUS_MAX][QP_ID_MAX];
	size_t i, n = 0;
	bool changed = false;

	for (i = *napplied; i-- > 0 && n < QP_STATUS_MAX;) {
		const struct qp_applied *a = &(*applied)[i];

		if (a->rec.state == QP_REC_APPLIED && !qp_store__find(store, a->rec.id, false) &&
		    qp_store__find(store, a->rec.id, true))
			snprintf(ids[n++], QP_ID_MAX, "%s", a->rec.id);
	}
	for (i = 0; i < n; i++) {
		struct qp_error err = { 0 };
		struct qp_load_stats st;
		int ret = qp_load_undo(pid, ids[i], opts, &st, &err);

		sync_report(sy, fd, pid, QP_OP_UNDO, ids[i], ret, &st, &err, opts->hold != NULL);
		changed |= !ret;
		if (ret && qp_outcome_of(QP_OP_UNDO, ret, &st) == QP_OUT_GONE)
			return;
	}
	if (changed) {
		qp_applied__free(*applied, *napplied);
		*applied = NULL;
		*napplied = 0;
		qp_load_list(pid, applied, napplied, NULL);
	}
}

void qp_sync_job(pid_t pid, void *arg, int fd)
{
	const struct qp_sync *sy = arg;
	struct qp_load_opts opts = sy->load ? *sy->load : (struct qp_load_opts){ 0 };
	struct qp_hold *hold = NULL;
	struct qp_scan *scan = NULL;
	struct qp_obj *objs = NULL;
	struct qp_applied *applied = NULL;
	size_t nobjs = 0, napplied = 0, i;
	struct qp_error err = { 0 };
	int ret;

	if (sy->hold_ms > 0) {
		ret = qp_hold__entry(pid, sy->hold_ms, &hold, &err);
		if (ret == QP_EPROC || ret == -ESRCH) {
			sync_report(sy, fd, pid, QP_OP_APPLY, "", QP_EPROC, NULL, &err, false);
			return;
		}
		if (ret == -EAGAIN) /* it ran another program: its own exec event follows */
			return;
		/* else it runs already (-EALREADY), or cannot be held: the usual way */
		opts.hold = hold;
	}
	ret = qp_scan__new(&scan, &err);
	if (!ret)
		ret = qp_scan__objects(scan, pid, &objs, &nobjs, &err);
	if (!ret)
		ret = qp_load_list(pid, &applied, &napplied, &err);
	if (ret) {
		sync_report(sy, fd, pid, QP_OP_APPLY, "", ret, NULL, &err, false);
		goto out;
	}
	sync_undo_removed(sy, pid, &opts, &applied, &napplied, fd);
	for (i = 0; i < qp_store__count(sy->store); i++) {
		const struct qp_store_entry *e = qp_store__entry(sy->store, i);
		struct qp_load_stats st;

		if (e->removed || !sync_maps(objs, nobjs, e) ||
		    sync_applied(applied, napplied, e->id))
			continue;
		qp_error_clear(&err);
		ret = sync_apply(pid, e, &opts, &st, &err);
		sync_report(sy, fd, pid, QP_OP_APPLY, e->id, ret, &st, &err, hold != NULL);
		/* a binary's later patches wait for this one */
		while (ret && ret != QP_EAPPLIED && i + 1 < qp_store__count(sy->store) &&
		       !strcmp(qp_store__entry(sy->store, i + 1)->group, e->group))
			i++;
	}
out:
	qp_applied__free(applied, napplied);
	free(objs);
	qp_scan__free(scan);
	qp_hold__release(hold);
}
