/* SPDX-License-Identifier: MIT */
/*
 * --version of every qpatch program, one line on stdout:
 *
 *	qpatch-load (qpatch) 0.1.0
 *
 * The version is QP_VERSION, which CMakeLists.txt defines for every target
 * from project(VERSION).  For mains only (libraries never print): a program
 * adds "version" (and 'V' where the letter is free) to its options and
 * returns qp_version_print("PROGRAM") from main.
 */
#ifndef QPATCH_VERSION_H
#define QPATCH_VERSION_H

#include <stdio.h>

#ifndef QP_VERSION
#error "QP_VERSION is defined by CMakeLists.txt (project VERSION)"
#endif

/*
 * Print "@program (qpatch) QP_VERSION" to stdout and return the exit status
 * for main: 0, or 1 when the line could not be written (stdout closed or
 * full), which is then said on stderr.
 */
static inline int qp_version_print(const char *program)
{
	printf("%s (qpatch) %s\n", program, QP_VERSION);
	if (fflush(stdout) || ferror(stdout)) {
		fprintf(stderr, "%s: unable to write the version\n", program);
		return 1;
	}
	return 0;
}

#endif
