/* SPDX-License-Identifier: MIT */
/*
 * The option qpatch-cc adds to every compilation it can, and the command
 * that asks a compiler whether it takes it: qpatch-cc asks (cc_main.c),
 * or qpatch-build asks once per run and passes the answer on as
 * $QPATCH_CC_LIVEPATCHING (driver.c).  Header-only: qpatch-cc links
 * nothing of the builder.
 */
#ifndef QPATCH_BUILDER_CCPROBE_H
#define QPATCH_BUILDER_CCPROBE_H

#define QP_CC_LIVEPATCHING "-flive-patching=inline-clone"

/* An argv initializer: compiler @cc checks an empty C file with
 * QP_CC_LIVEPATCHING, warnings as errors; it exits 0 when it takes it. */
#define QP_CC_LIVEPATCHING_PROBE(cc) \
	{ (char *)(cc), "-Werror", QP_CC_LIVEPATCHING, "-fsyntax-only", "-x", "c", "/dev/null", NULL }

#endif
