// SPDX-License-Identifier: MIT
/*
 * One patch, every process: qp_host_apply_all() and qp_host_undo_all().
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host.h"

struct all_job {
	const struct qp_patch *patch;    /* apply: the patch */
	const char *so_path;             /* apply a library: its path */
	const struct qp_so_info *so;     /* ... and what it names */
	const char *id;                  /* undo: the patch id */
	const struct qp_load_opts *opts; /* the loader's options */
};

static void all_fill(struct qp_result *r, pid_t pid, enum qp_op op, const char *id)
{
	memset(r, 0, sizeof(*r));
	r->pid = pid;
	r->op = op;
	snprintf(r->id, sizeof(r->id), "%s", id);
	qp_host_comm(pid, r->comm, sizeof(r->comm));
}

/* In the worker for @pid. */
static void all_apply_job(pid_t pid, void *arg, int fd)
{
	const struct all_job *j = arg;
	struct qp_error err = { 0 };
	struct qp_result r;
	int ret;

	all_fill(&r, pid, QP_OP_APPLY, qp_patch__info(j->patch)->id);
	ret = qp_load_apply(pid, j->patch, j->opts, &r.stats, &err);
	r.code = ret;
	r.outcome = qp_outcome_of(QP_OP_APPLY, ret, &r.stats);
	if (ret)
		snprintf(r.msg, sizeof(r.msg), "%s", err.msg[0] ? err.msg : qp_strerror(ret));
	qp_pool_report(fd, &r);
}

static void all_apply_so_job(pid_t pid, void *arg, int fd)
{
	const struct all_job *j = arg;
	struct qp_error err = { 0 };
	struct qp_result r;
	int ret;

	all_fill(&r, pid, QP_OP_APPLY, j->so->id);
	ret = qp_load_so(pid, j->so_path, j->opts, &r.stats, NULL, &err);
	r.code = ret;
	r.outcome = qp_outcome_of(QP_OP_APPLY, ret, &r.stats);
	if (ret)
		snprintf(r.msg, sizeof(r.msg), "%s", err.msg[0] ? err.msg : qp_strerror(ret));
	qp_pool_report(fd, &r);
}

static void all_undo_job(pid_t pid, void *arg, int fd)
{
	const struct all_job *j = arg;
	struct qp_error err = { 0 };
	struct qp_result r;
	int ret;

	all_fill(&r, pid, QP_OP_UNDO, j->id);
	ret = qp_load_undo(pid, j->id, j->opts, &r.stats, &err);
	r.code = ret;
	r.outcome = qp_outcome_of(QP_OP_UNDO, ret, &r.stats);
	if (ret)
		snprintf(r.msg, sizeof(r.msg), "%s", err.msg[0] ? err.msg : qp_strerror(ret));
	qp_pool_report(fd, &r);
}

/* Run @fn on every process @want selects. */
static int all_run(const struct qp_all_opts *o, qp_job_fn fn, struct all_job *job,
		   bool (*want)(struct qp_scan *s, pid_t pid, const void *arg), const void *want_arg,
		   struct qp_error *err)
{
	struct qp_scan *scan = NULL;
	struct qp_pool *pool = NULL;
	pid_t *pids = NULL;
	size_t n = 0, i;
	int ret;

	ret = qp_scan__new(&scan, err);
	if (!ret)
		ret = qp_host_pids(&pids, &n, err);
	if (!ret)
		ret = qp_pool__new(o->jobs, o->done, o->done_arg, &pool, err);
	for (i = 0; !ret && i < n; i++) {
		if (!want(scan, pids[i], want_arg))
			continue;
		if (o->found)
			o->found(pids[i], o->done_arg);
		ret = qp_pool__submit(pool, pids[i], fn, job, err);
	}
	qp_pool__free(pool); /* waits for the jobs started */
	free(pids);
	qp_scan__free(scan);
	return ret;
}

static bool all_maps_object(struct qp_scan *s, pid_t pid, const void *arg)
{
	const struct qp_info *info = arg;

	return qp_scan__maps_build_id(s, pid, info->build_id, info->build_id_size) == 1;
}

/* Does @pid map the object the library names (build-id or file name)? */
static bool all_maps_so_target(struct qp_scan *s, pid_t pid, const void *arg)
{
	const struct qp_so_info *info = arg;
	struct qp_obj *objs = NULL;
	size_t n = 0, i;
	bool hit = false;

	if (info->by_build_id)
		return qp_scan__maps_build_id(s, pid, info->build_id, info->build_id_size) == 1;
	if (qp_scan__objects(s, pid, &objs, &n, NULL))
		return false;
	for (i = 0; i < n && !hit; i++)
		hit = qp_obj_named(&objs[i], info->target);
	free(objs);
	return hit;
}

static bool all_has_patch(struct qp_scan *s, pid_t pid, const void *arg)
{
	(void)s;
	return qp_host_has_patch_mapping(pid, arg);
}

int qp_host_apply_all(const struct qp_patch *patch, const struct qp_all_opts *o,
		      struct qp_error *err)
{
	struct all_job job = { .patch = patch, .opts = o->load };

	return all_run(o, all_apply_job, &job, all_maps_object, qp_patch__info(patch), err);
}

int qp_host_apply_so_all(const char *path, const struct qp_so_info *info,
			 const struct qp_all_opts *o, struct qp_error *err)
{
	struct all_job job = { .so_path = path, .so = info, .opts = o->load };

	return all_run(o, all_apply_so_job, &job, all_maps_so_target, info, err);
}

int qp_host_undo_all(const char *id, const struct qp_all_opts *o, struct qp_error *err)
{
	struct all_job job = { .id = id, .opts = o->load };

	return all_run(o, all_undo_job, &job, all_has_patch, id, err);
}
