/* SPDX-License-Identifier: MIT */
/*
 * The builder library: qpatch-build's engine.
 *
 *  - diff:   compare pairs of objects (original build, patched build) and the
 *            target binary, decide what goes into the patch, emit the
 *            struct qp_patch (qp_diff__*).
 *  - driver: build both source trees with qpatch-cc, find the objects and the
 *            target binary, run the diff, write the file (qp_build_run).
 *
 * Nothing here prints: what happened is returned as a struct qp_report,
 * progress goes through an optional callback.
 */
#ifndef QPATCH_BUILDER_H
#define QPATCH_BUILDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qpatch/error.h"
#include "qpatch/format.h"

enum qp_change_kind {
	QP_CHANGE_REPLACED,   /* existing function whose code changed */
	QP_CHANGE_NEW_FUNC,   /* function that the original did not have */
	QP_CHANGE_COPIED,     /* unchanged code/constant the patch needs a copy of */
	QP_CHANGE_NEW_VAR,    /* variable that the original did not have */
	QP_CHANGE_REFUSED,    /* a change that cannot be applied live */
	QP_CHANGE_LINE_ONLY,  /* only __LINE__ values moved: left out */
	QP_CHANGE_KEPT_VALUE, /* initial value changed; the process keeps its value (asked for) */
};

struct qp_change {
	enum qp_change_kind kind; /* what happened to it */
	char name[128];           /* symbol or section name */
	char object[256];         /* object file, relative to the build tree */
	uint64_t size;            /* bytes */
	char why[256];            /* reason (refusals), or "" */
	char where[256];          /* declaration "file.c:LINE" from DWARF, or "" */
};

struct qp_report {
	struct qp_change *changes; /* in discovery order */
	size_t nchanges;           /* count of changes */
	size_t objects_compared;   /* object pairs compared */
	size_t objects_recompiled; /* objects that read a changed file, which the build
				      did not recompile and qpatch-build did */
	double orig_build_s;       /* seconds for the original build (or its update) */
	bool orig_warm;            /* the original build was reused from the work dir */
	double patched_build_s;    /* seconds for the patched build */
	double diff_s;             /* seconds comparing and emitting */
	size_t patch_bytes;        /* size of the written file */
	char target[4096];         /* target binary path */
	char id[QP_ID_MAX];        /* patch id */
};

void qp_report__release(struct qp_report *r);
const char *qp_change_kind_name(enum qp_change_kind k);

/* --- diff engine --------------------------------------------------------- */

struct qp_diff;

/* @target_path: the binary the patch applies to (with .symtab). */
int qp_diff__new(const char *target_path, struct qp_diff **out, struct qp_error *err);
/* Add one object pair; @name is how messages and the report call it.
 * @orig_obj is NULL for an object of a source file the change adds. */
int qp_diff__add_object(struct qp_diff *d, const char *orig_obj, const char *patched_obj,
			const char *name, struct qp_error *err);
/*
 * Where the sources are, for recognising __LINE__-only changes: debug
 * info that names a file under @prefix means @orig_dir/... for original
 * objects and @patched_dir/... for patched ones.  Without it the paths in
 * the debug info are used as they are.
 */
int qp_diff__set_sources(struct qp_diff *d, const char *prefix, const char *orig_dir,
			 const char *patched_dir);
/*
 * Accept a changed initial value of existing variable @name (the symbol
 * name, or a function-scope static's name without its number): the patch
 * keeps using the running process's variable with the value it has; the
 * new initial value matters only to a restart.  A changed size, a
 * thread-local variable or a changed type layout stays refused.  A name
 * that matches no such variable makes qp_diff__emit() fail.
 */
int qp_diff__keep_value(struct qp_diff *d, const char *name, struct qp_error *err);
/* The build-id the patch is for, when the deployed binary's differs from
 * the target's only outside its loaded sections. */
void qp_diff__set_build_id(struct qp_diff *d, const uint8_t *id, size_t size);
/* Decide and build the patch.  On refusal returns QP_EREFUSED with every
 * refusal listed in the report and the first in @err. */
int qp_diff__emit(struct qp_diff *d, const char *id, struct qp_patch **out,
		  struct qp_report *report, struct qp_error *err);
void qp_diff__free(struct qp_diff *d);

/* --- driver -------------------------------------------------------------- */

struct qp_build_opts {
	const char *orig_dir;     /* original source tree (read only) */
	const char *patched_dir;  /* patched source tree (read only) */
	const char *output;       /* patch file to write */
	const char *target;       /* deployed binary to check, or NULL */
	const char *binary;       /* executable in the build tree, NULL = the only one */
	const char *build_cmd;    /* shell command, NULL = "make CC=... CXX=..." */
	const char *workdir;      /* where trees are built, kept: given again for the
				     same tree, its original build is reused;
				     NULL = a new temporary directory */
	const char *cc_wrapper;   /* absolute path of qpatch-cc */
	const char *cxx_wrapper;  /* absolute path of qpatch-c++ (the builds' CXX) */
	const char *id;           /* patch id; NULL = derived from contents */
	const char *const *keep_values; /* see qp_diff__keep_value(), NULL-terminated, or NULL */
	bool keep_workdir;        /* do not delete a temp workdir */
	bool no_namespace;        /* build in the work tree's own path, not at
				     orig_dir's path in a mount namespace */
	/* progress messages ("building original tree"), may be NULL */
	void (*progress)(void *arg, const char *msg);
	void *progress_arg;       /* passed to progress */
};

int qp_build_run(const struct qp_build_opts *opts, struct qp_report *report,
		 struct qp_error *err);

#endif
