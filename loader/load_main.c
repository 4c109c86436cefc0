// SPDX-License-Identifier: MIT
/*
 * qpatch-load PID FIX.qpatch      apply a patch to a running process
 * qpatch-load --so FIX.so PID      apply a hand-written patch library
 * qpatch-load --list PID           list what is applied
 * qpatch-load --undo PID [ID]      undo the last patch (or check it is ID)
 * qpatch-load --all FIX.qpatch     apply to every process of the binary
 * qpatch-load --all --so FIX.so    load a patch library into every such process
 * qpatch-load --undo --all ID      undo ID wherever it is applied
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "host.h"
#include "loader.h"
#include "qpatch/elf.h"
#include "qpatch/json.h"
#include "qpatch/version.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: qpatch-load [options] PID FIX.qpatch   apply a patch\n"
		"       qpatch-load [options] --so FIX.so PID  apply a hand-written patch library\n"
		"       qpatch-load --list [--json] PID        list applied patches\n"
		"       qpatch-load --undo PID [ID]            undo the last applied patch\n"
		"       qpatch-load --all [-J N] [--json] FIX.qpatch\n"
		"                                              apply to every process that maps\n"
		"                                              the patch's object\n"
		"       qpatch-load --all [-J N] [--json] --so FIX.so\n"
		"                                              load a patch library into every\n"
		"                                              process that maps its target\n"
		"       qpatch-load --undo --all [-J N] [--json] ID\n"
		"                                              undo patch ID in every process\n"
		"       qpatch-load --exec FIX.qpatch [--exec FIX2.qpatch...] -- PROG [ARG...]\n"
		"                                              start PROG with the patches in\n"
		"                                              before its first instruction, and\n"
		"                                              exit as it does\n"
		"\n"
		"  -s, --so FIX.so       load FIX.so (built with qpatch/so.h) into PID with\n"
		"                        dlopen and redirect the functions it replaces\n"
		"  -l, --list            list the patches applied to PID\n"
		"  -u, --undo            undo the last patch (ID, if given, must be it)\n"
		"  -j, --json            list (or report --all) as JSON\n"
		"  -A, --all             every process that maps the object (apply), or\n"
		"                        where the patch is applied (undo)\n"
		"  -J, --jobs N          with --all: processes patched at once (default 8)\n"
		"  -a, --allow-active    apply even while threads are inside the old functions\n"
		"                        (they finish the old code; the fix applies to new calls)\n"
		"  -c, --rewrite-calls   also make the direct calls to each replaced function\n"
		"                        in the target object call the new code (the jump\n"
		"                        stays for other callers); undo puts them back\n"
		"  -r, --retries N       stop attempts while code is busy (default 200)\n"
		"  -d, --retry-delay MS  pause between attempts (default 5)\n"
		"  -L, --leave-wait MS   a thread still inside a function being replaced after\n"
		"                        20 attempts runs alone, every other thread stopped,\n"
		"                        until it leaves the function, at most MS (default\n"
		"                        1000; 0: never)\n"
		"      --exec FIX.qpatch start PROG (after --) with this patch in before its\n"
		"                        first instruction; wait for it, exit as it does\n"
		"      --verify KEY      refuse a patch not signed by the Ed25519 public key\n"
		"                        in the PEM file KEY (or by one of the *.pem keys of\n"
		"                        the directory KEY); repeatable.  Without it, the\n"
		"                        store's policy file applies, if there is one\n"
		"      --no-type-check   --so: apply even when a replacement's prototype\n"
		"                        differs from the old function's (both built with -g)\n"
		"  -v, --verbose         --so: also say which type checks were made or skipped\n"
		"      --lock-wait MS    another loader works on the process: wait up to MS\n"
		"                        for it (default 0: refuse at once, naming it)\n"
		"      --ignore-seccomp  go on when the target's seccomp filters cannot be read\n"
		"                        (risky: a filter may kill the target; one read that\n"
		"                        forbids a call the loader needs is still refused)\n"
		"      --timing          print where the time went, phase by phase, on stderr\n"
		"                        (also with QPATCH_TIMING=1 in the environment)\n"
		"  -h, --help            this text\n"
		"  -V, --version         print the version and exit\n");
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* --timing: where the time of this run went, printed on stderr at the end. */
static struct {
	bool on;                /* --timing or QPATCH_TIMING */
	double main_cpu_us;     /* CPU time used before main(): exec, dynamic linking */
	double main_us;         /* main() entered (CLOCK_MONOTONIC) */
	double patch_us;        /* reading and checking the patch file */
	const struct qp_load_stats *st; /* the operation's phases, if one ran */
} timing;

static double cpu_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static void timing_print(void)
{
	const struct qp_load_stats *st = timing.st;
	double sum = 0;
	size_t i;

	if (!timing.on)
		return;
	fflush(stdout);
	fprintf(stderr, "qpatch-load: timing (us)\n");
	fprintf(stderr, "  %-22s %8.0f\n", "start to main (CPU)", timing.main_cpu_us);
	if (timing.patch_us > 0)
		fprintf(stderr, "  %-22s %8.0f\n", "read patch", timing.patch_us);
	for (i = 0; st && i < st->nphases; i++) {
		fprintf(stderr, "  %-22s %8.0f", st->phases[i].name, st->phases[i].us);
		if (st->phases[i].count > 1)
			fprintf(stderr, " (%u times)", st->phases[i].count);
		fprintf(stderr, "\n");
		sum += st->phases[i].us;
	}
	if (st)
		fprintf(stderr, "  %-22s %8.0f (phases above: %.0f)\n", "operation total",
			st->total_us, sum);
	fprintf(stderr, "  %-22s %8.0f\n", "main to now", (now_ms() * 1e3 - timing.main_us));
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

/* How a function was redirected: the bytes of the padding after a function
 * shorter than the jump that the jump took (0: the jump fits in it). */
static uint64_t list_padding(const struct qp_record_func *f)
{
	uint64_t end = f->old_addr + f->old_size, jend = f->site + f->len;

	if (!f->old_size || f->len > sizeof(f->saved) || f->site < f->old_addr || jend <= end)
		return 0;
	return jend - end;
}

/* Call sites of function @j that the patch rewrote. */
static size_t list_sites(const struct qp_applied *a, size_t j)
{
	size_t k, n = 0;

	for (k = 0; a->sites && k < a->nsites; k++)
		n += a->sites[k].func == j;
	return n;
}

/* How function @j reaches its new code: "jump", "jump+padding",
 * "call sites" (no jump), "jump+call sites". */
static const char *list_method(const struct qp_applied *a, size_t j)
{
	if (!a->funcs[j].len)
		return "call sites";
	if (list_sites(a, j))
		return "jump+call sites";
	return list_padding(&a->funcs[j]) ? "jump+padding" : "jump";
}

static int do_list(pid_t pid, int json)
{
	struct qp_error err = { 0 };
	struct qp_applied *v;
	size_t n, i, j;
	uint64_t pad;

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
			printf(",\"kind\":\"%s\"", a->so ? "so" : "qpatch");
			if (a->so) {
				printf(",\"library\":");
				qp_json_str(stdout, a->so->path);
			}
			printf(",\"state\":\"%s\",\"region\":\"0x%llx\",\"size\":%llu,\"functions\":[",
			       a->rec.state == QP_REC_APPLIED ? "applied" :
			       a->rec.state == QP_REC_PENDING ?
			       (a->abandoned ? "abandoned" : "pending") : "undone",
			       (unsigned long long)a->region, (unsigned long long)a->rec.region_size);
			for (j = 0; j < a->rec.nfuncs; j++) {
				printf("%s{\"name\":", j ? "," : "");
				qp_json_str(stdout, a->funcs[j].name);
				pad = list_padding(&a->funcs[j]);
				printf(",\"old\":\"0x%llx\",\"new\":\"0x%llx\",\"method\":\"%s\","
				       "\"padding\":%llu,\"call_sites\":%zu}",
				       (unsigned long long)a->funcs[j].old_addr,
				       (unsigned long long)a->funcs[j].new_addr,
				       list_method(a, j), (unsigned long long)pad, list_sites(a, j));
			}
			printf("]}");
			continue;
		}
		printf("%llu. patch '%s' on '%s'%s at 0x%llx (%llu bytes), %u function(s):\n",
		       (unsigned long long)a->rec.seq, a->rec.id, a->rec.target,
		       a->rec.state == QP_REC_APPLIED ? "" :
		       a->rec.state == QP_REC_PENDING && a->abandoned ?
		       " (abandoned, never applied: no loader is applying it; the next apply or "
		       "undo removes it)" :
		       a->rec.state == QP_REC_PENDING ? " (being applied, no jump yet)" :
		       " (undone, mapping still in use)",
		       (unsigned long long)a->region, (unsigned long long)a->rec.region_size,
		       a->rec.nfuncs);
		if (a->so)
			printf("   library %s (dlopen handle 0x%llx, mapped 0x%llx-0x%llx)\n", a->so->path,
			       (unsigned long long)a->so->handle, (unsigned long long)a->so->lib_lo,
			       (unsigned long long)a->so->lib_hi);
		for (j = 0; j < a->rec.nfuncs; j++) {
			pad = list_padding(&a->funcs[j]);
			printf("   %s 0x%llx -> 0x%llx", a->funcs[j].name,
			       (unsigned long long)a->funcs[j].old_addr,
			       (unsigned long long)a->funcs[j].new_addr);
			if (pad)
				printf(" (function of %llu bytes: the jump uses %llu byte%s of the padding after it)",
				       (unsigned long long)a->funcs[j].old_size, (unsigned long long)pad,
				       pad == 1 ? "" : "s");
			if (!a->funcs[j].len)
				printf(" (function of %llu bytes, no jump: call sites (%zu))",
				       (unsigned long long)a->funcs[j].old_size, list_sites(a, j));
			else if (list_sites(a, j))
				printf(" (jump + call sites (%zu))", list_sites(a, j));
			printf("\n");
		}
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
	char caught[64] = "";

	if (st->caught)
		snprintf(caught, sizeof(caught), ", %d thread%s caught leaving", st->caught,
			 st->caught == 1 ? "" : "s");
	printf("target stopped for %.0f us (all %zu thread%s; first stop to last resume %.0f us; "
	       "%d attempt%s%s); one thread held %.0f us; total %.1f ms\n",
	       st->stopped_us, st->threads, st->threads == 1 ? "" : "s", st->stop_us,
	       st->attempts, st->attempts == 1 ? "" : "s", caught, st->held_us,
	       st->total_us / 1000.0);
	if (st->coro_stacks || st->coro_contexts || st->coro_skipped || st->coro_cut)
		printf("coroutines: %zu stack(s) no thread runs on, %zu suspended context(s) found; "
		       "scanned %.1f MiB in %.1f ms before stopping (%zu mapping(s) too large to scan, or beyond the limit)\n",
		       st->coro_stacks, st->coro_contexts, (double)st->coro_scanned / (1 << 20),
		       st->coro_scan_us / 1000.0, st->coro_skipped);
	if (st->coro_cut)
		printf("coroutines: the search stopped at its limit of %.0f MiB: %.1f MiB of the heap and "
		       "other writable mappings not searched; a coroutine suspended there is not seen "
		       "(undo keeps its mappings)\n",
		       (double)st->coro_limit / (1 << 20), (double)st->coro_cut / (1 << 20));
}

/* The keys of --verify, else the store's policy file (if any). */
static const char **verify_keys;
static size_t verify_nkeys;

/* Read @path and check its signature as the policy says, before anything
 * is done to any process. */
static struct qp_patch *open_patch(const char *path, struct qp_error *err)
{
	struct qp_policy *pol = NULL;
	struct qp_patch *p = NULL;
	int ret;

	if (verify_nkeys)
		ret = qp_policy__from_keys(verify_keys, verify_nkeys, &pol, err);
	else
		ret = qp_policy__load(qp_store_default_dir(), &pol, err);
	if (!ret)
		p = qp_trust_open_checked(path, pol, err);
	qp_policy__free(pol);
	return p;
}

static int do_apply(pid_t pid, const char *path, const struct qp_load_opts *opts)
{
	struct qp_error err = { 0 };
	struct qp_load_stats st;
	struct qp_patch *p;
	double t0 = now_ms();
	int ret;

	p = open_patch(path, &err);
	timing.patch_us = (now_ms() - t0) * 1e3;
	timing.st = &st;
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
		if (st.nsites)
			printf("%zu call site(s) rewritten to call the new code\n", st.nsites);
		if (st.seccomp_note[0])
			printf("note: %s\n", st.seccomp_note);
		if (st.reaped)
			printf("note: removed %zu mapping(s) of patches never applied (abandoned)\n",
			       st.reaped);
		print_stop(&st);
	}
	qp_patch__free(p);
	timing_print();
	return ret ? 1 : 0;
}

static volatile sig_atomic_t exec_child; /* --exec: the program, for forwarded signals */

static void exec_forward(int sig)
{
	if (exec_child > 0)
		kill((pid_t)exec_child, sig);
}

/* The exit status of a program that ended with wait status @status, as a
 * shell gives it. */
static int exec_status(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : 1;
}

/*
 * --exec: start the program @argv held at its entry point (traced from
 * before its execve(), no race), apply every patch of @fixes, let it run,
 * and wait for it: qpatch-load then exits as the program does.  A patch
 * that does not apply ends the program before its first instruction.
 * Messages go to stderr (stdout is the program's).
 */
static int do_exec(char **fixes, int nfixes, char *const argv[], const struct qp_load_opts *opts)
{
	struct qp_error err = { 0 };
	struct qp_load_opts o = *opts;
	struct qp_load_stats st;
	struct sigaction sa = { .sa_handler = exec_forward };
	struct qp_hold *h;
	int i, ret = 0, status;
	pid_t pid;

	if (qp_hold__spawn(argv, 5000, &pid, &h, &err)) {
		fprintf(stderr, "qpatch-load: %s\n", err.msg);
		return 127;
	}
	o.hold = h;
	for (i = 0; i < nfixes && !ret; i++) {
		struct qp_patch *p = open_patch(fixes[i], &err);

		ret = p ? qp_load_apply(pid, p, &o, &st, &err) : -EINVAL;
		if (ret)
			fprintf(stderr, "qpatch-load: %s; '%s' not started\n",
				err.msg[0] ? err.msg : qp_strerror(ret), argv[0]);
		else
			fprintf(stderr, "qpatch-load: applied patch '%s' to process %d at its entry point: %zu function(s) redirected\n",
				qp_patch__info(p)->id, (int)pid, st.nfuncs);
		qp_patch__free(p);
	}
	if (ret) {
		kill(pid, SIGKILL);
		qp_hold__release(h);
		waitpid(pid, &status, 0);
		return 1;
	}
	exec_child = pid;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGINT, SIG_IGN); /* the terminal's go to the program too */
	signal(SIGQUIT, SIG_IGN);
	qp_hold__release(h);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return 1;
	return exec_status(status);
}

static bool verbose; /* -v: say more */

/* --verbose: what the type check of a .so patch compared, or why not. */
static void print_type_note(const struct qp_load_stats *st, FILE *f)
{
	if (!verbose)
		return;
	if (st->types_checked)
		fprintf(f, "type check: %zu replacement(s) have the old function's prototype\n",
			st->types_checked);
	if (st->type_note[0])
		fprintf(f, "note: %s\n", st->type_note);
}

static int do_so(pid_t pid, const char *path, const struct qp_load_opts *opts)
{
	struct qp_error err = { 0 };
	struct qp_load_stats st;
	char id[QP_ID_MAX] = "";
	int ret = qp_so_acceptable(path, &err);

	if (ret) {
		fprintf(stderr, "qpatch-load: %s; process %d left unchanged\n", err.msg, (int)pid);
		return 1;
	}
	timing.st = &st;
	ret = qp_load_so(pid, path, opts, &st, id, &err);

	if (ret && (st.target_gone || ret == QP_ESECCOMP)) {
		fprintf(stderr, "qpatch-load: %s\n", err.msg[0] ? err.msg : qp_strerror(ret));
	} else if (ret) {
		fprintf(stderr, "qpatch-load: %s; process %d left unchanged\n",
			err.msg[0] ? err.msg : qp_strerror(ret), (int)pid);
	} else {
		printf("applied library patch '%s' to process %d: %zu function(s) redirected, record at 0x%llx\n",
		       id, (int)pid, st.nfuncs, (unsigned long long)st.region);
		print_type_note(&st, stdout);
		print_stop(&st);
		printf("every thread stopped %.0f us to pick the one that ran dlopen\n", st.pick_us);
	}
	timing_print();
	return ret ? 1 : 0;
}

static int do_undo(pid_t pid, const char *id, const struct qp_load_opts *opts)
{
	struct qp_error err = { 0 };
	struct qp_load_stats st;

	timing.st = &st;
	if (qp_load_undo(pid, id, opts, &st, &err)) {
		fprintf(stderr, "qpatch-load: %s\n", err.msg);
		timing_print();
		return 1;
	}
	printf("undid the last patch of process %d: %zu function(s) restored\n", (int)pid, st.nfuncs);
	if (st.seccomp_note[0])
		printf("note: %s\n", st.seccomp_note);
	if (st.reaped)
		printf("note: removed %zu mapping(s) of patches never applied (abandoned)\n", st.reaped);
	if (st.kept)
		printf("note: %zu undone patch mapping(s) kept because %s; a later --undo removes them\n",
		       st.kept, st.kept_why);
	print_stop(&st);
	if (st.pick_us > 0)
		printf("every thread stopped %.0f us to pick the one that ran dlclose\n", st.pick_us);
	fflush(stdout);
	timing_print();
	return 0;
}

/* --- every process: --all ------------------------------------------------ */

struct all_report {
	bool json;                  /* print JSON at the end instead of lines */
	struct qp_result *v;        /* results so far */
	size_t n;                   /* count of v */
	size_t count[QP_OUT_NOT_YET + 1]; /* results by outcome */
};

static void all_line(const struct qp_result *r)
{
	const char *what = qp_outcome_name(r->outcome);

	printf("process %d (%s): ", (int)r->pid, r->comm);
	switch (r->outcome) {
	case QP_OUT_APPLIED:
		printf("applied '%s': %zu function(s), stopped %.0f us\n", r->id, r->stats.nfuncs,
		       r->stats.stopped_us);
		break;
	case QP_OUT_UNDONE:
		printf("undid '%s': %zu function(s) restored, stopped %.0f us\n", r->id,
		       r->stats.nfuncs, r->stats.stopped_us);
		break;
	case QP_OUT_ALREADY:
	case QP_OUT_NOT_APPLIED:
		printf("%s\n", what);
		break;
	default:
		printf("%s: %s\n", what, r->msg);
	}
	fflush(stdout);
}

static void all_done(const struct qp_result *r, void *arg)
{
	struct all_report *rep = arg;
	struct qp_result *v = realloc(rep->v, (rep->n + 1) * sizeof(*v));

	if (r->outcome <= QP_OUT_NOT_YET)
		rep->count[r->outcome]++;
	if (v) {
		rep->v = v;
		v[rep->n++] = *r;
	}
	if (!rep->json)
		all_line(r);
}

static int result_cmp(const void *a, const void *b)
{
	const struct qp_result *x = a, *y = b;

	return x->pid < y->pid ? -1 : x->pid > y->pid;
}

static void all_json(const struct all_report *rep, const char *op, const char *id,
		     double wall_ms)
{
	static const struct { enum qp_outcome o; const char *key; } keys[] = {
		{ QP_OUT_APPLIED, "applied" }, { QP_OUT_ALREADY, "already_applied" },
		{ QP_OUT_UNDONE, "undone" }, { QP_OUT_NOT_APPLIED, "not_applied" },
		{ QP_OUT_REFUSED, "refused" }, { QP_OUT_FAILED, "failed" },
		{ QP_OUT_GONE, "gone" }, { QP_OUT_NOT_YET, "not_mapped" },
	};
	size_t i;

	printf("{\"op\":\"%s\",\"id\":", op);
	qp_json_str(stdout, id);
	printf(",\"processes\":[");
	for (i = 0; i < rep->n; i++) {
		const struct qp_result *r = &rep->v[i];

		printf("%s{\"pid\":%d,\"comm\":", i ? "," : "", (int)r->pid);
		qp_json_str(stdout, r->comm);
		printf(",\"result\":");
		qp_json_str(stdout, keys[r->outcome - 1].key);
		printf(",\"functions\":%zu,\"stopped_us\":%.0f,\"pause_us\":%.0f,\"held_us\":%.0f,"
		       "\"total_us\":%.0f,\"attempts\":%d,\"error\":",
		       r->stats.nfuncs, r->stats.stopped_us, r->stats.stop_us, r->stats.held_us,
		       r->stats.total_us, r->stats.attempts);
		if (r->msg[0])
			qp_json_str(stdout, r->msg);
		else
			printf("null");
		printf("}");
	}
	printf("],\"summary\":{\"processes\":%zu", rep->n);
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		printf(",\"%s\":%zu", keys[i].key, rep->count[keys[i].o]);
	printf("},\"wall_ms\":%.1f}\n", wall_ms);
}

/* 0 when every process ended applied/undone or had nothing to do. */
static int all_summary(struct all_report *rep, const char *op, const char *id, double t0)
{
	double wall_ms = (now_ms() - t0);
	size_t bad = rep->count[QP_OUT_REFUSED] + rep->count[QP_OUT_FAILED];

	if (rep->n > 1)
		qsort(rep->v, rep->n, sizeof(*rep->v), result_cmp);
	if (rep->json) {
		all_json(rep, op, id, wall_ms);
	} else if (!strcmp(op, "apply")) {
		printf("%zu process(es): %zu applied, %zu already applied, %zu refused, %zu failed, "
		       "%zu gone (%.0f ms)\n", rep->n, rep->count[QP_OUT_APPLIED],
		       rep->count[QP_OUT_ALREADY], rep->count[QP_OUT_REFUSED],
		       rep->count[QP_OUT_FAILED], rep->count[QP_OUT_GONE] + rep->count[QP_OUT_NOT_YET],
		       wall_ms);
	} else {
		printf("%zu process(es): %zu undone, %zu not applied, %zu refused, %zu failed, "
		       "%zu gone (%.0f ms)\n", rep->n, rep->count[QP_OUT_UNDONE],
		       rep->count[QP_OUT_NOT_APPLIED], rep->count[QP_OUT_REFUSED],
		       rep->count[QP_OUT_FAILED], rep->count[QP_OUT_GONE], wall_ms);
	}
	free(rep->v);
	return bad ? 1 : 0;
}

/* Does the file at @path begin like a shared library? */
static bool looks_like_so(const char *path)
{
	uint8_t head[64];
	FILE *f = fopen(path, "rb");
	size_t n = f ? fread(head, 1, sizeof(head), f) : 0;

	if (f)
		fclose(f);
	return qp_host_is_so(head, n);
}

static int do_all(const char *arg, bool undo, int jobs, bool json, const struct qp_load_opts *opts)
{
	struct all_report rep = { .json = json };
	struct qp_all_opts o = { .jobs = jobs, .load = opts, .done = all_done, .done_arg = &rep };
	struct qp_error err = { 0 };
	struct qp_patch *p = NULL;
	double t0 = now_ms();
	int ret;

	if (undo) {
		ret = qp_host_undo_all(arg, &o, &err);
	} else {
		p = open_patch(arg, &err);
		if (!p) {
			fprintf(stderr, "qpatch-load: %s%s%s\n", err.msg,
				looks_like_so(arg) ? "; a hand-written patch library goes in with --all --so " : "",
				looks_like_so(arg) ? arg : "");
			return 1;
		}
		ret = qp_host_apply_all(p, &o, &err);
	}
	if (ret) {
		fprintf(stderr, "qpatch-load: %s\n", err.msg);
		free(rep.v);
		qp_patch__free(p);
		return 1;
	}
	if (!rep.n && !json) {
		char hex[QP_BUILD_ID_HEX];

		if (undo) {
			printf("no process has patch '%s' applied\n", arg);
		} else {
			qp_hex(qp_patch__info(p)->build_id, qp_patch__info(p)->build_id_size, hex);
			printf("no process maps '%s' with build-id %s\n",
			       qp_patch__info(p)->target_name, hex);
		}
	}
	ret = all_summary(&rep, undo ? "undo" : "apply", undo ? arg : qp_patch__info(p)->id, t0);
	qp_patch__free(p);
	return ret;
}

/* --all --so: the library @path into every process that maps its target. */
static int do_all_so(const char *path, int jobs, bool json, const struct qp_load_opts *opts)
{
	struct all_report rep = { .json = json };
	struct qp_all_opts o = { .jobs = jobs, .load = opts, .done = all_done, .done_arg = &rep };
	struct qp_error err = { 0 };
	struct qp_so_info info;
	double t0 = now_ms();
	int ret = qp_so_acceptable(path, &err);

	if (!ret)
		ret = qp_so_info__read(path, &info, &err);
	if (!ret)
		ret = qp_host_apply_so_all(path, &info, &o, &err);
	if (ret) {
		fprintf(stderr, "qpatch-load: %s\n", err.msg);
		free(rep.v);
		return 1;
	}
	if (!rep.n && !json)
		printf("no process maps %s '%s' (the library's QPATCH_TARGET%s)\n",
		       info.by_build_id ? "an object with build-id" : "a file named", info.target,
		       info.by_build_id ? "_BUILDID" : "");
	return all_summary(&rep, "apply", info.id, t0);
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
		{ "so", required_argument, NULL, 's' },
		{ "undo", no_argument, NULL, 'u' },
		{ "json", no_argument, NULL, 'j' },
		{ "allow-active", no_argument, NULL, 'a' },
		{ "retries", required_argument, NULL, 'r' },
		{ "retry-delay", required_argument, NULL, 'd' },
		{ "leave-wait", required_argument, NULL, 'L' },
		{ "all", no_argument, NULL, 'A' },
		{ "jobs", required_argument, NULL, 'J' },
		{ "ignore-seccomp", no_argument, NULL, 'S' },
		{ "exec", required_argument, NULL, 'E' },
		{ "rewrite-calls", no_argument, NULL, 'c' },
		{ "verify", required_argument, NULL, 'K' },
		{ "lock-wait", required_argument, NULL, 'W' },
		{ "no-type-check", no_argument, NULL, 'T' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "timing", no_argument, NULL, 'G' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct qp_load_opts opts = { 0 };
	const char *so = NULL;
	int c, list = 0, undo = 0, json = 0, all = 0, jobs = 8, nargs, pause_step = 0, nexec = 0;
	char *exec_fixes[64];
	pid_t pid;

	timing.main_cpu_us = cpu_us();
	timing.main_us = now_ms() * 1e3;
	timing.on = getenv("QPATCH_TIMING") && *getenv("QPATCH_TIMING") &&
		    strcmp(getenv("QPATCH_TIMING"), "0");
	while ((c = getopt_long(argc, argv, "s:lujacAJ:r:d:L:vhV", longopts, NULL)) != -1) {
		switch (c) {
		case 's': so = optarg; break;
		case 'l': list = 1; break;
		case 'u': undo = 1; break;
		case 'j': json = 1; break;
		case 'A': all = 1; break;
		case 'J':
			jobs = atoi(optarg);
			if (jobs < 1 || jobs > QP_POOL_MAX) {
				fprintf(stderr, "qpatch-load: --jobs takes 1..%d\n", QP_POOL_MAX);
				return 2;
			}
			break;
		case 'a': opts.allow_active = true; break;
		case 'r': opts.retries = atoi(optarg); break;
		case 'd': opts.retry_delay_ms = atoi(optarg); break;
		case 'L': opts.leave_ms = atoi(optarg) > 0 ? atoi(optarg) : -1; break;
		case 'S': opts.ignore_seccomp = true; break;
		case 'E':
			if (nexec == (int)(sizeof(exec_fixes) / sizeof(exec_fixes[0]))) {
				fprintf(stderr, "qpatch-load: at most %d --exec patches\n", nexec);
				return 2;
			}
			exec_fixes[nexec++] = optarg;
			break;
		case 'c': opts.rewrite_calls = true; break;
		case 'K':
			if (!verify_keys && !(verify_keys = calloc((size_t)argc, sizeof(char *)))) {
				fprintf(stderr, "qpatch-load: out of memory\n");
				return 1;
			}
			verify_keys[verify_nkeys++] = optarg;
			break;
		case 'T': opts.no_type_check = true; break;
		case 'v': verbose = true; break;
		case 'W': opts.lock_wait_ms = atoi(optarg) > 0 ? atoi(optarg) : 0; break;
		case 'G': timing.on = true; break;
		case 'h': usage(stdout); return 0;
		case 'V': return qp_version_print("qpatch-load");
		default: usage(stderr); return 2;
		}
	}
	nargs = argc - optind;
	if (nexec) {
		if (list || undo || all || so || nargs < 1 || strcmp(argv[optind - 1], "--")) {
			usage(stderr);
			return 2;
		}
		return do_exec(exec_fixes, nexec, argv + optind, &opts);
	}
	if (so && all && !list && !undo && !nargs)
		return do_all_so(so, jobs, json, &opts);
	if (so && (all || list || undo || nargs != 1)) {
		usage(stderr);
		return 2;
	}
	if (verify_nkeys && (list || undo || so)) {
		fprintf(stderr, "qpatch-load: --verify checks a .qpatch patch to apply; not with %s\n",
			so ? "--so (a hand-written library carries no signature)" : "--list or --undo");
		return 2;
	}
	if (all && (list || nargs != 1)) {
		usage(stderr);
		return 2;
	}
	if (all)
		return do_all(argv[optind], undo, jobs, json, &opts);
	if (so) {
		if (parse_pid(argv[optind], &pid))
			return 2;
	} else if (list + undo > 1 || nargs < 1 || (list && nargs != 1) || nargs > 2 ||
	    (!list && !undo && nargs != 2)) {
		usage(stderr);
		return 2;
	}
	if (!so && parse_pid(argv[optind], &pid))
		return 2;
	/* for tests: fail on purpose after a step (see QP_FAULTS in loader.h) */
	if (getenv("QPATCH_FAULT_AT"))
		opts.fault_at = (enum qp_fault)atoi(getenv("QPATCH_FAULT_AT"));
	/* for tests: unwind as if patches carried no CFI */
	opts.no_patch_cfi = getenv("QPATCH_NO_PATCH_CFI") != NULL;
	/* for tests: a lower limit on the search for coroutine contexts */
	if (getenv("QPATCH_CORO_LIMIT_MB"))
		opts.coro_limit = (uint64_t)atoi(getenv("QPATCH_CORO_LIMIT_MB")) << 20;
	if (getenv("QPATCH_PAUSE_AT")) {
		pause_step = atoi(getenv("QPATCH_PAUSE_AT"));
		opts.at_step = pause_at;
		opts.at_step_arg = &pause_step;
	}
	if (so)
		return do_so(pid, so, &opts);
	if (list)
		return do_list(pid, json);
	if (undo)
		return do_undo(pid, nargs == 2 ? argv[optind + 1] : NULL, &opts);
	return do_apply(pid, argv[optind + 1], &opts);
}
