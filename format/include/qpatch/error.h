/* SPDX-License-Identifier: MIT */
/*
 * qpatch error reporting.
 *
 * Every library function returns 0 on success or a negative errno (or a
 * negative QP_E* code below).  Functions that can fail for a reason a person
 * must read take a `struct qp_error *`; setting it returns the code, so the
 * usual shape is
 *
 *	return qp_seterr(err, -EINVAL, "section '%s': bad size %zu", name, sz);
 *
 * Messages are lowercase, quote their subject and carry no full stop.  The
 * caller owns the struct; libraries never print.
 */
#ifndef QPATCH_ERROR_H
#define QPATCH_ERROR_H

#include <stddef.h>

/* Project-specific error codes, all below -4096 so they never collide with
 * -errno values.  Rendered by qp_strerror(). */
#define QP_ERRORS(X)                                                     \
	X(QP_EFORMAT, -5001, "malformed patch file")                     \
	X(QP_EVERSION, -5002, "unsupported patch format version")       \
	X(QP_ETARGET, -5003, "patch does not match the target")         \
	X(QP_EBUSY, -5004, "code to be replaced is in use")             \
	X(QP_EUNSUPP, -5005, "unsupported construct")                   \
	X(QP_ERESOLVE, -5006, "unresolved symbol")                      \
	X(QP_EREFUSED, -5007, "change cannot be applied to a live process") \
	X(QP_EAPPLIED, -5008, "patch already applied")                  \
	X(QP_EPROC, -5009, "target process went away")                  \
	X(QP_ESECCOMP, -5010, "seccomp forbids a system call the loader needs") \
	X(QP_ESIGNATURE, -5011, "patch signature refused")

enum qp_errcode {
#define QP_ERR_ENUM(name, val, str) name = val,
	QP_ERRORS(QP_ERR_ENUM)
#undef QP_ERR_ENUM
};

#define QP_ERRMSG_MAX 1024

struct qp_error {
	int code;                  /* last code set, 0 when none */
	char msg[QP_ERRMSG_MAX];   /* human-readable message, NUL-terminated */
};

/* Text for a code: a QP_E* value or a negative errno. */
const char *qp_strerror(int code);

/* Record a message in @err (may be NULL) and return @code. */
int qp_seterr(struct qp_error *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Prepend context to an existing message ("while X: <old msg>"); returns
 * err->code (or @code when @err holds none). */
int qp_preperr(struct qp_error *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static inline void qp_error_clear(struct qp_error *err)
{
	if (err) {
		err->code = 0;
		err->msg[0] = '\0';
	}
}

#endif
