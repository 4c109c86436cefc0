/* SPDX-License-Identifier: MIT */
/*
 * Source locations of functions and variables of an object file, from its
 * DWARF (libdw; libdwfl applies the object's relocations to .debug_*).
 */
#ifndef QPATCH_BUILDER_SRCLINE_H
#define QPATCH_BUILDER_SRCLINE_H

#include <stddef.h>

struct qp_srcline;

/* Opens lazily: returns NULL only when out of memory. */
struct qp_srcline *qp_srcline__new(const char *obj_path);
/* "file.c:123" for the declaration of @name, or "" when unknown. */
void qp_srcline__find(struct qp_srcline *s, const char *name, char *out, size_t size);
/* Source file and line of the instruction at @offset in function @func;
 * 0, or -ENOENT when the object has no line for it. */
int qp_srcline__at(struct qp_srcline *s, const char *func, unsigned long offset,
		   char *file, size_t file_size, int *line);
void qp_srcline__free(struct qp_srcline *s);

#endif
