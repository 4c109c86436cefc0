// SPDX-License-Identifier: MIT
/*
 * qpatch-load PID FIX.qpatch      apply a patch to a running process
 * qpatch-load --list PID           list what is applied
 * qpatch-load --undo PID [ID]      undo the last patch (or check it is ID)
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loader.h"
#include "qpatch/json.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: qpatch-load [options] PID FIX.qpatch   apply a patch\n"
		"       qpatch-load --list [--json] PID        list applied patches\n"
		"       qpatch-load --undo PID [ID]            undo the last applied patch\n"
		"\n"
		"  -l, --list            list the patches applied to PID\n"
		"  -u, --undo            undo the last patch (ID, if given, must be it)\n"
		"  -j, --json            list as JSON\n"
		"  -a, --allow-active    apply even while threads are inside the old functions\n"
		"                        (they finish the old code; the fix applies to new calls)\n"
		"  -r, --retries N       stop attempts while code is busy (default 200)\n"
		"  -d, --retry-delay MS  pause between attempts (default 5)\n"
		"      --ignore-seccomp  go on when the target's seccomp filters cannot be read\n"
		"                        (risky: a filter may kill the target; one read that\n"
		"                        forbids a call the loader needs is still refused)\n"
		"  -h, --help            this text\n");
}

static int parse_pid(const char *s, pid_t *pid)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v <= 0 || v > 0x3fffffff) {
		fprintf(stderr, "qpatch-load: '%s' is not a process id\n", s);
		return -1;
	}
	*pid = (pid_t)v;
	return 0;
}

static int do_list(pid_t pid, int json)
{
	struct qp_error err = { 0 };
	struct qp_applied *v;
	size_t n, i, j;

	if (qp_load_list(pid, &v, &n, &err)) {
		fprintf(stderr, "qpatch-load: %s\n", err.msg);
		return 1;
	}
	if (json)
		printf("[");
	else if (!n)
		printf("no patches applied to process %d\n", (int)pid);
	for (i = 0; i < n; i++) {
		const struct qp_applied *a = &v[i];

		if (json) {
			printf("%s{\"seq\":%llu,\"id\":", i ? "," : "", (unsigned long long)a->rec.seq);
			qp_json_str(stdout, a->rec.id);
			printf(",\"target\":");
			qp_json_str(stdout, a->rec.target);
			printf(",\"state\":\"%s\",\"region\":\"0x%llx\",\"size\":%llu,\"functions\":[",
			       a->rec.state == QP_REC_APPLIED ? "applied" : "undone",
			       (unsigned long long)a->region, (unsigned long long)a->rec.region_size);
			for (j = 0; j < a->rec.nfuncs; j++) {
				printf("%s{\"name\":", j ? "," : "");
				qp_json_str(stdout, a->funcs[j].name);
				printf(",\"old\":\"0x%llx\",\"new\":\"0x%llx\"}",
				       (unsigned long long)a->funcs[j].old_addr,
				       (unsigned long long)a->funcs[j].new_addr);
			}
			printf("]}");
			continue;
		}
		printf("%llu. patch '%s' on '%s'%s at 0x%llx (%llu bytes), %u function(s):\n",
		       (unsigned long long)a->rec.seq, a->rec.id, a->rec.target,
		       a->rec.state == QP_REC_APPLIED ? "" : " (undone, mapping still in use)",
		       (unsigned long long)a->region, (unsigned long long)a->rec.region_size,
		       a->rec.nfuncs);
		for (j = 0; j < a->rec.nfuncs; j++)
			printf("   %s 0x%llx -> 0x%llx\n", a->funcs[j].name,
			       (unsigned long long)a->funcs[j].old_addr,
			       (unsigned long long)a->funcs[j].new_addr);
	}
	if (json)
		printf("]\n");
	qp_applied__free(v, n);
	return 0;
}

/* The pause: the window in which every thread was stopped and the patch
 * went in, and the longest any thread may have waited (first interrupt to
 * last resume, which includes waiting for busy threads to reach their stop
 * and to be scheduled again). */
static void print_stop(const struct qp_load_stats *st)
{
	printf("target stopped for %.0f us (all %zu thread%s; first stop to last resume %.0f us; "
	       "%d attempt%s); total %.1f ms\n",
	       st->stopped_us, st->threads, st->threads == 1 ? "" : "s", st->stop_us,
	       st->attempts, st->attempts == 1 ? "" : "s", st->total_us / 1000.0);
}

static int do_apply(pid_t pid, const char *path, const struct qp_load_opts *opts)
{
	struct qp_error err = { 0 };
	struct qp_load_stats st;
	struct qp_patch *p;
	int ret;

	p = qp_patch__open(path, &err);
	if (!p) {
		fprintf(stderr, "qpatch-load: %s\n", err.msg);
		return 1;
	}
	ret = qp_load_apply(pid, p, opts, &st, &err);
	if (ret && st.target_gone) {
		fprintf(stderr, "qpatch-load: %s\n", err.msg[0] ? err.msg : qp_strerror(ret));
	} else if (ret == QP_ESECCOMP) { /* says "nothing was changed" itself */
		fprintf(stderr, "qpatch-load: %s\n", err.msg[0] ? err.msg : qp_strerror(ret));
	} else if (ret) {
		fprintf(stderr, "qpatch-load: %s; process %d left unchanged\n",
			err.msg[0] ? err.msg : qp_strerror(ret), (int)pid);
	} else {
		printf("applied patch '%s' to process %d: %zu function(s) redirected, patch at 0x%llx\n",
		       qp_patch__info(p)->id, (int)pid, st.nfuncs, (unsigned long long)st.region);
		if (st.seccomp_note[0])
			printf("note: %s\n", st.seccomp_note);
		print_stop(&st);
	}
	qp_patch__free(p);
	return ret ? 1 : 0;
}

static int do_undo(pid_t pid, const char *id, const struct qp_load_opts *opts)
{
	struct qp_error err = { 0 };
	struct qp_load_stats st;

	if (qp_load_undo(pid, id, opts, &st, &err)) {
		fprintf(stderr, "qpatch-load: %s\n", err.msg);
		return 1;
	}
	printf("undid the last patch of process %d: %zu function(s) restored\n", (int)pid, st.nfuncs);
	if (st.seccomp_note[0])
		printf("note: %s\n", st.seccomp_note);
	if (st.kept)
		printf("note: %zu undone patch mapping(s) kept because %s; a later --undo removes them\n",
		       st.kept, st.kept_why);
	print_stop(&st);
	return 0;
}

/* For tests (QPATCH_PAUSE_AT=N): stop the loader itself after step N, so
 * that a test can kill the target right there, then continue it. */
static void pause_at(enum qp_fault step, const char *name, void *arg)
{
	if ((int)step != *(int *)arg)
		return;
	fprintf(stderr, "qpatch-load: paused after step %d (%s)\n", (int)step, name);
	fflush(stderr);
	raise(SIGSTOP);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "list", no_argument, NULL, 'l' },
		{ "undo", no_argument, NULL, 'u' },
		{ "json", no_argument, NULL, 'j' },
		{ "allow-active", no_argument, NULL, 'a' },
		{ "retries", required_argument, NULL, 'r' },
		{ "retry-delay", required_argument, NULL, 'd' },
		{ "ignore-seccomp", no_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct qp_load_opts opts = { 0 };
	int c, list = 0, undo = 0, json = 0, nargs, pause_step = 0;
	pid_t pid;

	while ((c = getopt_long(argc, argv, "lujar:d:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'l': list = 1; break;
		case 'u': undo = 1; break;
		case 'j': json = 1; break;
		case 'a': opts.allow_active = true; break;
		case 'r': opts.retries = atoi(optarg); break;
		case 'd': opts.retry_delay_ms = atoi(optarg); break;
		case 'S': opts.ignore_seccomp = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	nargs = argc - optind;
	if (list + undo > 1 || nargs < 1 || (list && nargs != 1) || nargs > 2 ||
	    (!list && !undo && nargs != 2)) {
		usage(stderr);
		return 2;
	}
	if (parse_pid(argv[optind], &pid))
		return 2;
	/* for tests: fail on purpose after a step (see QP_FAULTS in loader.h) */
	if (getenv("QPATCH_FAULT_AT"))
		opts.fault_at = (enum qp_fault)atoi(getenv("QPATCH_FAULT_AT"));
	/* for tests: unwind as if patches carried no CFI */
	opts.no_patch_cfi = getenv("QPATCH_NO_PATCH_CFI") != NULL;
	if (getenv("QPATCH_PAUSE_AT")) {
		pause_step = atoi(getenv("QPATCH_PAUSE_AT"));
		opts.at_step = pause_at;
		opts.at_step_arg = &pause_step;
	}
	if (list)
		return do_list(pid, json);
	if (undo)
		return do_undo(pid, nargs == 2 ? argv[optind + 1] : NULL, &opts);
	return do_apply(pid, argv[optind + 1], &opts);
}
