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
/*
 * Source file and line of the instruction at @offset in function @func,
 * the file as the debug info defines it (qp_srcline_path() of its compile
 * unit's DW_AT_comp_dir and the line table's directory and name):
 * "/src/hw/x.c" for "../hw/x.c" compiled in "/src/build", "src/eval.c"
 * for "eval.c" compiled in "./src" (a tree mapped to "."); 0, or -ENOENT
 * when the object has no line for it.
 */
int qp_srcline__at(struct qp_srcline *s, const char *func, unsigned long offset,
		   char *file, size_t file_size, int *line);
/*
 * The call site (file as qp_srcline__at() gives it, and line) of the
 * @depth-th inlined subroutine around the instruction at @offset in
 * @func, counted from the innermost (@depth 1): where the code that
 * instruction comes from was inlined.  A value a caller passes into an
 * inlined helper (its __LINE__) is set up by an instruction of the
 * helper's line; the caller's line is here.  0, or -ENOENT when it is
 * inlined fewer than @depth times.
 */
int qp_srcline__call_at(struct qp_srcline *s, const char *func, unsigned long offset, int depth,
			char *file, size_t file_size, int *line);
/*
 * How a compiler-made clone (foo.constprop.0, foo.isra.0, foo.part.0)
 * takes its parameters, from the DWARF of its concrete subprogram: one
 * entry per formal parameter in DWARF order, "a" when it is received,
 * "a=" when it is folded to a constant, "a?" when neither is said, joined
 * by commas ("x,b=,c=").  Two
 * clones whose strings differ are called differently.  0, or -ENOENT
 * when the object has no debug info for @func.
 */
int qp_srcline__params(struct qp_srcline *s, const char *func, char *out, size_t size);
/* DW_AT_name of the compile unit holding link-time address @addr (a
 * linked binary: "b/util.c"); 0, or -ENOENT. */
int qp_srcline__cu_name(struct qp_srcline *s, unsigned long addr, char *out, size_t size);
/* The same for the variable at link-time address @addr, from the
 * DW_AT_location of the variables (address ranges cover only code). */
int qp_srcline__var_cu_name(struct qp_srcline *s, unsigned long addr, char *out, size_t size);
/* DW_AT_name of the object's (first) compile unit: "a/util.c"; 0, or
 * -ENOENT. */
int qp_srcline__unit_name(struct qp_srcline *s, char *out, size_t size);
/*
 * Call @fn for each named struct or union type declared at file scope in
 * the object's debug info (an anonymous one named by its typedef) with its byte size and a
 * signature of its members ("name@offset:size,..."), and where it is
 * declared; stops at a non-zero return.
 */
int qp_srcline__for_each_struct(struct qp_srcline *s,
				int (*fn)(const char *name, unsigned long size, const char *members,
					  const char *where, void *arg),
				void *arg);
/*
 * Call @fn with the name of every function inlined into function @func
 * (at any depth, once per inlined copy), from the DWARF of @func's code;
 * stops at a non-zero return and returns it.  -ENOENT when the object has
 * no debug info for @func.
 */
int qp_srcline__for_each_inlined(struct qp_srcline *s, const char *func,
				 int (*fn)(const char *name, void *arg), void *arg);
void qp_srcline__free(struct qp_srcline *s);

/*
 * The file a path of the debug info names: @name, joined to the
 * compilation directory @comp_dir (DW_AT_comp_dir; NULL when there is
 * none) when relative, with "." and ".." folded away by name
 * ("/src/build" and "../hw/x.c": "/src/hw/x.c").  The line table's
 * relative directories (meson's "../hw") are relative to the compilation
 * directory in DWARF 4 and 5 alike.  A result that is still relative
 * (a build mapping its own directory to ".", as Debian's flags do) is
 * relative to the directory that was mapped.  0, or -ENAMETOOLONG.
 */
int qp_srcline_path(const char *comp_dir, const char *name, char *out, size_t size);

#endif
