/* SPDX-License-Identifier: MIT */
/* JSON output helpers for the command-line tools' --json modes. */
#ifndef QPATCH_JSON_H
#define QPATCH_JSON_H

#include <stdio.h>

/* Write @s as a JSON string literal, quotes included. */
void qp_json_str(FILE *f, const char *s);

#endif
