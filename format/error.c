// SPDX-License-Identifier: MIT
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "qpatch/error.h"

const char *qp_strerror(int code)
{
	switch (code) {
#define QP_ERR_CASE(name, val, str) case name: return str;
	QP_ERRORS(QP_ERR_CASE)
#undef QP_ERR_CASE
	default:
		break;
	}
	if (code < 0 && code > -4096)
		return strerror(-code);
	return code ? "unknown error" : "success";
}

int qp_seterr(struct qp_error *err, int code, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return code;
	err->code = code;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return code;
}

int qp_preperr(struct qp_error *err, int code, const char *fmt, ...)
{
	char prefix[QP_ERRMSG_MAX], old[QP_ERRMSG_MAX];
	va_list ap;

	if (!err)
		return code;
	if (!err->code)
		err->code = code;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	snprintf(old, sizeof(old), "%s", err->msg);
	snprintf(err->msg, sizeof(err->msg), "%s: %s", prefix,
		 old[0] ? old : qp_strerror(err->code));
	return err->code;
}
