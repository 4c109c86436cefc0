// SPDX-License-Identifier: MIT
/*
 * qpatch-build ORIG_DIR PATCHED_DIR -o FIX.qpatch
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "builder.h"
#include "qpatch/json.h"
#include "qpatch/sign.h"
#include "qpatch/version.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: qpatch-build [options] ORIG_DIR PATCHED_DIR -o FIX.qpatch\n"
		"\n"
		"Builds both source trees with qpatch-cc (in a work directory; the trees\n"
		"are only read), compares the objects and writes the functions that\n"
		"changed into a live patch.\n"
		"\n"
		"  -o, --output FILE     patch file to write (required)\n"
		"  -t, --target FILE     deployed binary; must have the build-id of the\n"
		"                        binary the original tree builds\n"
		"  -b, --binary NAME     executable in the build tree (when there are several)\n"
		"  -c, --build-cmd CMD   build command run with sh -c (default: make\n"
		"                        CC=qpatch-cc CXX=qpatch-c++)\n"
		"  -w, --workdir DIR     build here instead of a new temporary directory; the\n"
		"                        next run with the same DIR reuses the original build\n"
		"  -k, --keep            keep the temporary work directory\n"
		"      --no-namespace    build in the work directory's own path (with\n"
		"                        -ffile-prefix-map), not at ORIG_DIR's path in a\n"
		"                        private mount namespace\n"
		"      --id ID           patch id (default: derived from the contents)\n"
		"      --keep-value VAR  accept that existing variable VAR has a new initial\n"
		"                        value: the process keeps the value it has (the new\n"
		"                        one applies from the next start); repeatable.  The\n"
		"                        only refusal that can be overridden\n"
		"  -s, --sign KEY        sign the patch with the Ed25519 private key in the\n"
		"                        PEM file KEY (openssl genpkey -algorithm ed25519)\n"
		"  -j, --json            print the report as JSON on stdout\n"
		"  -q, --quiet           no progress messages\n"
		"  -h, --help            this text\n"
		"  -V, --version         print the version and exit\n");
}

static void progress(void *arg, const char *msg)
{
	(void)arg;
	fprintf(stderr, "qpatch-build: %s\n", msg);
}

/* qpatch-cc and qpatch-c++ (@name) live next to qpatch-build. */
static int find_wrapper(const char *name, char *out, size_t size)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	char *slash;

	if (n <= 0)
		return -1;
	self[n] = '\0';
	slash = strrchr(self, '/');
	if (!slash)
		return -1;
	*slash = '\0';
	if (snprintf(out, size, "%s/%s", self, name) >= (int)size)
		return -1;
	return access(out, X_OK);
}

static void print_json(const struct qp_report *r, const char *output, int ret,
		       const struct qp_error *err)
{
	size_t i;

	printf("{\"ok\":%s,\"patch\":", ret ? "false" : "true");
	qp_json_str(stdout, ret ? "" : output);
	printf(",\"id\":");
	qp_json_str(stdout, r->id);
	printf(",\"bytes\":%zu,\"target\":", r->patch_bytes);
	qp_json_str(stdout, r->target);
	printf(",\"objects_compared\":%zu,\"objects_recompiled\":%zu,\"orig_build_s\":%.3f,\"orig_warm\":%s,\"patched_build_s\":%.3f,\"diff_s\":%.3f",
	       r->objects_compared, r->objects_recompiled, r->orig_build_s, r->orig_warm ? "true" : "false",
	       r->patched_build_s, r->diff_s);
	printf(",\"error\":");
	qp_json_str(stdout, ret ? (err->msg[0] ? err->msg : qp_strerror(ret)) : "");
	printf(",\"changes\":[");
	for (i = 0; i < r->nchanges; i++) {
		const struct qp_change *c = &r->changes[i];

		printf("%s{\"kind\":", i ? "," : "");
		qp_json_str(stdout, qp_change_kind_name(c->kind));
		printf(",\"name\":");
		qp_json_str(stdout, c->name);
		printf(",\"object\":");
		qp_json_str(stdout, c->object);
		printf(",\"where\":");
		qp_json_str(stdout, c->where);
		printf(",\"size\":%llu,\"why\":", (unsigned long long)c->size);
		qp_json_str(stdout, c->why);
		printf("}");
	}
	printf("]}\n");
}

static void print_report(const struct qp_report *r, const char *output, bool ok)
{
	size_t i;

	for (i = 0; i < r->nchanges; i++) {
		const struct qp_change *c = &r->changes[i];

		printf("  %-13s %-32s %-24s %6llu bytes%s%s%s%s\n", qp_change_kind_name(c->kind),
		       c->name, c->where[0] ? c->where : c->object, (unsigned long long)c->size,
		       c->why[0] ? "  " : "", c->why, c->where[0] ? "  " : "",
		       c->where[0] ? c->object : "");
	}
	if (!ok)
		return;
	printf("patch '%s': id %s, %zu bytes, target '%s'\n", output, r->id, r->patch_bytes,
	       r->target);
	printf("objects compared: %zu", r->objects_compared);
	if (r->objects_recompiled)
		printf("; compiled again by qpatch-build (the build did not): %zu", r->objects_recompiled);
	printf("; original build %.2f s%s, patched build %.2f s, diff %.3f s\n",
	       r->orig_build_s, r->orig_warm ? " (warm)" : "",
	       r->patched_build_s, r->diff_s);
}

/* Append the signature to the patch just written; no unsigned file is
 * left behind when that fails. */
static int sign_output(const struct qp_signer *signer, const char *path, bool loud,
		       struct qp_error *err)
{
	char hex[QP_SIG_KEY_ID_HEX];
	int ret = qp_signer__sign_file(signer, path, err);

	if (ret) {
		unlink(path);
		return ret;
	}
	qp_sig_key_id_hex(qp_signer__key_id(signer), hex);
	if (loud)
		fprintf(stderr, "qpatch-build: signed '%s' with Ed25519 key %s\n", path, hex);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "target", required_argument, NULL, 't' },
		{ "binary", required_argument, NULL, 'b' },
		{ "build-cmd", required_argument, NULL, 'c' },
		{ "workdir", required_argument, NULL, 'w' },
		{ "keep", no_argument, NULL, 'k' },
		{ "no-namespace", no_argument, NULL, 'N' },
		{ "id", required_argument, NULL, 'I' },
		{ "keep-value", required_argument, NULL, 'K' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "json", no_argument, NULL, 'j' },
		{ "sign", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct qp_build_opts opts = { .progress = progress };
	struct qp_report rep = { 0 };
	struct qp_error err = { 0 };
	char wrapper[PATH_MAX], cxx_wrapper[PATH_MAX];
	struct qp_signer *signer = NULL;
	const char **keep, *key = NULL;
	int c, ret, json = 0, nkeep = 0;

	keep = calloc((size_t)argc + 1, sizeof(*keep));
	if (!keep) {
		fprintf(stderr, "qpatch-build: out of memory\n");
		return 1;
	}
	opts.keep_values = keep;

	while ((c = getopt_long(argc, argv, "o:t:b:c:w:s:kqjhV", longopts, NULL)) != -1) {
		switch (c) {
		case 'o': opts.output = optarg; break;
		case 't': opts.target = optarg; break;
		case 'b': opts.binary = optarg; break;
		case 'c': opts.build_cmd = optarg; break;
		case 'w': opts.workdir = optarg; break;
		case 'k': opts.keep_workdir = true; break;
		case 'N': opts.no_namespace = true; break;
		case 'I': opts.id = optarg; break;
		case 'K': keep[nkeep++] = optarg; break;
		case 'q': opts.progress = NULL; break;
		case 'j': json = 1; break;
		case 's': key = optarg; break;
		case 'h': usage(stdout); free(keep); return 0;
		case 'V': free(keep); return qp_version_print("qpatch-build");
		default: usage(stderr); free(keep); return 2;
		}
	}
	if (argc - optind != 2 || !opts.output) {
		usage(stderr);
		free(keep);
		return 2;
	}
	opts.orig_dir = argv[optind];
	opts.patched_dir = argv[optind + 1];
	if (find_wrapper("qpatch-cc", wrapper, sizeof(wrapper)) ||
	    find_wrapper("qpatch-c++", cxx_wrapper, sizeof(cxx_wrapper))) {
		fprintf(stderr, "qpatch-build: cannot find qpatch-cc and qpatch-c++ next to qpatch-build\n");
		free(keep);
		return 1;
	}
	opts.cc_wrapper = wrapper;
	opts.cxx_wrapper = cxx_wrapper;
	/* a key that cannot sign is refused before anything is built */
	if (key && qp_signer__open(key, &signer, &err)) {
		fprintf(stderr, "qpatch-build: %s\n", err.msg);
		free(keep);
		return 1;
	}
	ret = qp_build_run(&opts, &rep, &err);
	if (!ret && signer)
		ret = sign_output(signer, opts.output, opts.progress != NULL, &err);
	qp_signer__free(signer);
	if (json)
		print_json(&rep, opts.output, ret, &err);
	else
		print_report(&rep, opts.output, ret == 0);
	fflush(stdout); /* the report first, whole, when both go to one file */
	if (ret)
		fprintf(stderr, "qpatch-build: %s\n", err.msg[0] ? err.msg : qp_strerror(ret));
	qp_report__release(&rep);
	free(keep);
	return ret ? 1 : 0;
}
