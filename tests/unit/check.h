/* SPDX-License-Identifier: MIT */
/*
 * Minimal assertion macros for qpatch unit tests.  A failed check prints
 * file:line, the expression and actual vs expected values, and counts the
 * failure; the test's main() ends with `return check_report("name");`, which
 * prints "N passed, N failed" and returns non-zero if anything failed.
 */
#ifndef QP_TEST_CHECK_H
#define QP_TEST_CHECK_H

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static int check_passed, check_failed;

#define CHECK(cond)                                                         \
	do {                                                                \
		if (cond) {                                                 \
			check_passed++;                                     \
		} else {                                                    \
			check_failed++;                                     \
			fprintf(stderr, "%s:%d: CHECK(%s) failed\n",        \
				__FILE__, __LINE__, #cond);                 \
		}                                                           \
	} while (0)

#define CHECK_INT(actual, expected)                                         \
	do {                                                                \
		long long a_ = (long long)(actual);                         \
		long long e_ = (long long)(expected);                       \
		if (a_ == e_) {                                             \
			check_passed++;                                     \
		} else {                                                    \
			check_failed++;                                     \
			fprintf(stderr, "%s:%d: %s: got %lld (0x%llx), expected %lld (0x%llx)\n", \
				__FILE__, __LINE__, #actual, a_,            \
				(unsigned long long)a_, e_,                 \
				(unsigned long long)e_);                    \
		}                                                           \
	} while (0)

#define CHECK_STR(actual, expected)                                         \
	do {                                                                \
		const char *a_ = (actual);                                  \
		const char *e_ = (expected);                                \
		if (a_ && e_ && strcmp(a_, e_) == 0) {                      \
			check_passed++;                                     \
		} else {                                                    \
			check_failed++;                                     \
			fprintf(stderr, "%s:%d: %s: got \"%s\", expected \"%s\"\n", \
				__FILE__, __LINE__, #actual,                \
				a_ ? a_ : "(null)", e_ ? e_ : "(null)");    \
		}                                                           \
	} while (0)

/* The message must contain @needle. */
#define CHECK_CONTAINS(haystack, needle)                                    \
	do {                                                                \
		const char *h_ = (haystack);                                \
		const char *n_ = (needle);                                  \
		if (h_ && strstr(h_, n_)) {                                 \
			check_passed++;                                     \
		} else {                                                    \
			check_failed++;                                     \
			fprintf(stderr, "%s:%d: %s: \"%s\" does not contain \"%s\"\n", \
				__FILE__, __LINE__, #haystack,              \
				h_ ? h_ : "(null)", n_);                    \
		}                                                           \
	} while (0)

static inline int check_report(const char *name)
{
	printf("%s: %d passed, %d failed\n", name, check_passed, check_failed);
	return check_failed ? 1 : 0;
}

#endif
