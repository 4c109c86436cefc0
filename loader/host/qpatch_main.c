// SPDX-License-Identifier: MIT
/*
 * qpatch [--store DIR] add FIX.qpatch   store a patch for its binary
 * qpatch [--store DIR] add FIX.so       store a patch library (qpatch-load --so)
 * qpatch [--store DIR] remove ID        remove it (qpatchd undoes it)
 * qpatch [--store DIR] verify FIX.qpatch  check it against the store's policy
 * qpatch [--store DIR] list [--json]    what the store holds
 * qpatch [--store DIR] status [--json]  which processes have which patches
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "host.h"
#include "qpatch/json.h"
#include "qpatch/version.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: qpatch [--store DIR] add FIX.qpatch    store a patch for its binary\n"
		"       qpatch [--store DIR] add FIX.so        store a hand-written patch library\n"
		"                                              (qpatch-load --so) for its target\n"
		"       qpatch [--store DIR] remove ID         remove a stored patch\n"
		"       qpatch [--store DIR] verify FIX.qpatch would the store's policy\n"
		"                                              accept it (signature)?\n"
		"       qpatch [--store DIR] list [--json]     list the stored patches\n"
		"       qpatch [--store DIR] status [--json]   which processes have which patches\n"
		"\n"
		"  -s, --store DIR   the store (default $QPATCH_STORE or " QP_STORE_DEFAULT ")\n"
		"  -j, --json        output as JSON\n"
		"  -V, --version     print the version\n"
		"  -h, --help        this text\n"
		"\n"
		"qpatchd applies stored patches to every process of their binary, running or\n"
		"started later, and undoes removed ones.\n");
}

/* Is a qpatchd serving @store?  It holds .daemon.lock. */
static bool daemon_running(const struct qp_store *store)
{
	char path[4200];
	bool held = false;
	int fd;

	snprintf(path, sizeof(path), "%s/.daemon.lock", qp_store__dir(store));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	held = flock(fd, LOCK_SH | LOCK_NB) && errno == EWOULDBLOCK;
	close(fd);
	return held;
}

static int cmd_add(struct qp_store *store, const char *path)
{
	struct qp_error err = { 0 };
	struct qp_store_entry e;

	if (qp_store__add(store, path, &e, &err)) {
		fprintf(stderr, "qpatch: %s\n", err.msg);
		return 1;
	}
	if (e.by_name)
		printf("stored library patch '%s' for files named '%s' as number %u in '%s'\n", e.id,
		       e.target, e.seq, qp_store__dir(store));
	else if (e.so)
		printf("stored library patch '%s' for build-id %s as number %u in '%s'\n", e.id,
		       e.bid_hex, e.seq, qp_store__dir(store));
	else
		printf("stored patch '%s' for '%s' (build-id %s) as number %u in '%s'\n", e.id,
		       e.target, e.bid_hex, e.seq, qp_store__dir(store));
	if (daemon_running(store))
		printf("qpatchd applies it to the running and new processes of the binary\n");
	else
		printf("qpatchd is not running: start it, or apply now with 'qpatch-load --all %s%s'\n",
		       e.so ? "--so " : "", path);
	return 0;
}

static int cmd_verify(struct qp_store *store, const char *path)
{
	struct qp_error err = { 0 };
	struct qp_store_check c;

	if (qp_store__verify(store, path, &c, &err)) {
		fprintf(stderr, "qpatch: %s\n", err.msg);
		return 1;
	}
	if (c.so)
		printf("library patch '%s' in '%s' carries no signature", c.id, path);
	else if (c.signed_)
		printf("patch '%s' in '%s' is signed with key %s", c.id, path, c.key_id);
	else
		printf("patch '%s' in '%s' is not signed", c.id, path);
	if (c.policy)
		printf(", which the policy '%s/policy' accepts\n", qp_store__dir(store));
	else
		printf("; the store '%s' has no policy: any valid patch is accepted\n",
		       qp_store__dir(store));
	return 0;
}

static int cmd_remove(struct qp_store *store, const char *id)
{
	struct qp_error err = { 0 };

	if (qp_store__remove(store, id, &err)) {
		fprintf(stderr, "qpatch: %s\n", err.msg);
		return 1;
	}
	printf("removed patch '%s' from '%s'\n", id, qp_store__dir(store));
	if (daemon_running(store))
		printf("qpatchd undoes it in every process where it is applied\n");
	else
		printf("qpatchd is not running: start it, or undo now with 'qpatch-load --undo --all %s'\n",
		       id);
	return 0;
}

static void print_time(long long t, char *buf, size_t size)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (localtime_r(&tt, &tm))
		strftime(buf, size, "%Y-%m-%d %H:%M:%S", &tm);
	else
		snprintf(buf, size, "?");
}

static void list_json(const struct qp_store *store)
{
	size_t i, n = qp_store__count(store);

	printf("{\"store\":");
	qp_json_str(stdout, qp_store__dir(store));
	printf(",\"patches\":[");
	for (i = 0; i < n; i++) {
		const struct qp_store_entry *e = qp_store__entry(store, i);

		printf("%s{\"id\":", i ? "," : "");
		qp_json_str(stdout, e->id);
		if (e->by_name)
			printf(",\"build_id\":null,\"target\":");
		else
			printf(",\"build_id\":\"%s\",\"target\":", e->bid_hex);
		qp_json_str(stdout, e->target);
		printf(",\"kind\":\"%s\"", e->so ? "so" : "qpatch");
		printf(",\"seq\":%u,\"state\":\"%s\",\"size\":%zu,\"added\":%lld,\"path\":", e->seq,
		       e->removed ? "removed" : "stored", e->size, e->added);
		qp_json_str(stdout, e->path);
		printf("}");
	}
	printf("]}\n");
}

static int cmd_list(struct qp_store *store, bool json)
{
	struct qp_error err = { 0 };
	const char *bid = "";
	size_t i, n;

	if (qp_store__load(store, &err)) {
		fprintf(stderr, "qpatch: %s\n", err.msg);
		return 1;
	}
	if (json) {
		list_json(store);
		return 0;
	}
	n = qp_store__count(store);
	if (!n)
		printf("no patches in '%s'\n", qp_store__dir(store));
	for (i = 0; i < n; i++) {
		const struct qp_store_entry *e = qp_store__entry(store, i);
		char when[32];

		if (e->removed && (i == 0 || !qp_store__entry(store, i - 1)->removed))
			printf("removed (undone wherever still applied):\n");
		if (!e->removed && strcmp(bid, e->group)) {
			if (e->by_name)
				printf("files named '%s':\n", e->target);
			else if (e->so)
				printf("build-id %s:\n", e->bid_hex);
			else
				printf("'%s' (build-id %s):\n", e->target, e->bid_hex);
			bid = e->group;
		}
		print_time(e->added, when, sizeof(when));
		if (e->removed && e->by_name)
			printf("   %s  for files named '%s'\n", e->id, e->target);
		else if (e->removed)
			printf("   %s  for '%s' (build-id %s)\n", e->id, e->target, e->bid_hex);
		else
			printf("%4u. %s  %zu bytes, stored %s%s\n", e->seq, e->id, e->size, when,
			       e->so ? " (hand-written library)" : "");
	}
	return 0;
}

static void json_ids(const char *key, const struct qp_store_entry *const *v, size_t n)
{
	size_t i;

	printf(",\"%s\":[", key);
	for (i = 0; i < n; i++) {
		printf("%s", i ? "," : "");
		qp_json_str(stdout, v[i]->id);
	}
	printf("]");
}

static void text_ids(const char *what, const struct qp_store_entry *const *v, size_t n)
{
	size_t i;

	if (!n)
		return;
	printf("; %s", what);
	for (i = 0; i < n; i++)
		printf(" '%s'", v[i]->id);
}

static void status_one(const struct qp_status *st, bool json, bool first)
{
	bool ok = !st->nlacks && !st->nto_undo;
	size_t i;

	if (json) {
		printf("%s{\"pid\":%d,\"comm\":", first ? "" : ",", (int)st->pid);
		qp_json_str(stdout, st->comm);
		printf(",\"exe\":");
		qp_json_str(stdout, st->exe);
		printf(",\"up_to_date\":%s", ok ? "true" : "false");
		json_ids("has", st->has, st->nhas);
		json_ids("lacks", st->lacks, st->nlacks);
		json_ids("to_undo", st->to_undo, st->nto_undo);
		printf(",\"other\":[");
		for (i = 0; i < st->nother; i++) {
			printf("%s", i ? "," : "");
			qp_json_str(stdout, st->other[i]);
		}
		printf("]}");
		return;
	}
	printf("process %d (%s): %s", (int)st->pid, st->comm, ok ? "up to date" : "NOT up to date");
	text_ids("has", st->has, st->nhas);
	text_ids("lacks", st->lacks, st->nlacks);
	text_ids("still has removed", st->to_undo, st->nto_undo);
	if (st->nother) {
		printf("; also applied by hand");
		for (i = 0; i < st->nother; i++)
			printf(" '%s'", st->other[i]);
	}
	printf("\n");
}

static int cmd_status(struct qp_store *store, bool json)
{
	struct qp_error err = { 0 };
	struct qp_scan *scan = NULL;
	pid_t *pids = NULL;
	size_t n = 0, i, shown = 0, behind = 0, errors = 0;

	if (qp_store__load(store, &err) || qp_scan__new(&scan, &err) ||
	    qp_host_pids(&pids, &n, &err)) {
		fprintf(stderr, "qpatch: %s\n", err.msg);
		qp_scan__free(scan);
		return 1;
	}
	if (json) {
		printf("{\"store\":");
		qp_json_str(stdout, qp_store__dir(store));
		printf(",\"processes\":[");
	}
	for (i = 0; i < n; i++) {
		struct qp_status st;

		qp_error_clear(&err);
		if (qp_sync_status(scan, store, pids[i], &st, &err)) {
			if (err.code != -ESRCH && st.relevant) {
				fprintf(stderr, "qpatch: %s\n", err.msg);
				errors++;
			}
			continue;
		}
		if (!st.relevant)
			continue;
		behind += st.nlacks || st.nto_undo;
		status_one(&st, json, !shown);
		shown++;
	}
	if (json)
		printf("],\"summary\":{\"processes\":%zu,\"up_to_date\":%zu,\"not_up_to_date\":%zu,"
		       "\"errors\":%zu},\"up_to_date\":%s}\n", shown, shown - behind, behind, errors,
		       behind || errors ? "false" : "true");
	else
		printf("%zu process(es) of stored binaries: %zu up to date, %zu not%s\n", shown,
		       shown - behind, behind, errors ? " (some could not be read)" : "");
	free(pids);
	qp_scan__free(scan);
	return behind || errors ? 1 : 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "store", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *dir = qp_store_default_dir(), *cmd;
	struct qp_error err = { 0 };
	struct qp_store *store;
	bool json = false;
	int c, nargs, ret;

	while ((c = getopt_long(argc, argv, "+s:jVh", longopts, NULL)) != -1) {
		switch (c) {
		case 's': dir = optarg; break;
		case 'j': json = true; break;
		case 'V': return qp_version_print("qpatch");
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	cmd = argv[optind++];
	/* options may follow the subcommand too: qpatch status --json */
	while ((c = getopt_long(argc, argv, "s:jh", longopts, NULL)) != -1) {
		switch (c) {
		case 's': dir = optarg; break;
		case 'j': json = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	nargs = argc - optind;
	if (!((!strcmp(cmd, "add") && nargs == 1) || (!strcmp(cmd, "remove") && nargs == 1) ||
	      (!strcmp(cmd, "verify") && nargs == 1) ||
	      (!strcmp(cmd, "list") && !nargs) || (!strcmp(cmd, "status") && !nargs))) {
		fprintf(stderr, "qpatch: unknown command or wrong arguments: '%s'\n", cmd);
		usage(stderr);
		return 2;
	}
	if (qp_store__open(dir, !strcmp(cmd, "add"), &store, &err)) {
		fprintf(stderr, "qpatch: %s\n", err.msg);
		return 1;
	}
	if (!strcmp(cmd, "add"))
		ret = cmd_add(store, argv[optind]);
	else if (!strcmp(cmd, "remove"))
		ret = cmd_remove(store, argv[optind]);
	else if (!strcmp(cmd, "verify"))
		ret = cmd_verify(store, argv[optind]);
	else if (!strcmp(cmd, "list"))
		ret = cmd_list(store, json);
	else
		ret = cmd_status(store, json);
	qp_store__free(store);
	return ret;
}
