/* SPDX-License-Identifier: MIT */
/*
 * Hand-written patches as shared libraries, for qpatch-load --so.
 *
 * A fix written by hand, compiled with a plain "cc -shared -fPIC", names
 * what it replaces with these macros:
 *
 *	#include <qpatch/so.h>
 *
 *	QPATCH_TARGET("redis-server");          // or QPATCH_TARGET_BUILDID("9f...")
 *
 *	static int fixed_parse(const char *s) { ... }
 *	QPATCH_REPLACE(parse, fixed_parse);     // parse() now runs fixed_parse()
 *	QPATCH_REPLACE_IN("util.c", helper, fixed_helper); // a static of util.c
 *
 *	static long *counter_p;                 // filled in by the loader with the
 *	QPATCH_SYM(counter_p, "main.c", "counter"); // address of main.c's static
 *
 * Each macro adds one fixed-size entry to the section ".qpatch.so" of the
 * library; qpatch-load reads that section from the file (as untrusted
 * input) before anything is loaded, and the same entries, relocated by the
 * dynamic linker, from the process after dlopen.  Replacement functions
 * are best static (or hidden): a global one with the same name as a
 * symbol the program exports would be interposed by it.
 *
 * Only for x86-64 Linux; see docs/loader.md ("Hand-written .so patches").
 */
#ifndef QPATCH_SO_H
#define QPATCH_SO_H

#include <stdint.h>

#define QPATCH_SO_SECTION ".qpatch.so"
#define QPATCH_SO_MAGIC 0x4f535051u  /* "QPSO" little-endian */
#define QPATCH_SO_NAME_MAX 240       /* bytes of name[], NUL included */

/* Kinds of entry. */
#define QPATCH_SO_TARGET 1           /* name: the target object's file name */
#define QPATCH_SO_TARGET_BUILDID 2   /* name: its build-id in lowercase hex */
#define QPATCH_SO_REPLACE 3          /* name: "old" or "file.c:old"; addr: new function */
#define QPATCH_SO_SYM 4              /* name: "name" or "file.c:name"; addr: the
					pointer variable the loader fills */

/* One entry; the layout is fixed (256 bytes, 8-aligned). */
struct qpatch_so_entry {
	uint32_t magic;                 /* QPATCH_SO_MAGIC */
	uint32_t kind;                  /* QPATCH_SO_* */
	union {
		void (*fn)(void);       /* QPATCH_SO_REPLACE: the new function */
		const void *var;        /* QPATCH_SO_SYM: the pointer variable; else NULL */
	} addr;
	char name[QPATCH_SO_NAME_MAX];  /* NUL-terminated */
};
_Static_assert(sizeof(void *) == 8, "qpatch/so.h is for 64-bit targets");
_Static_assert(sizeof(struct qpatch_so_entry) == 256, "qpatch_so_entry layout");

#define QPATCH_SO_CAT2_(a, b) a##b
#define QPATCH_SO_CAT_(a, b) QPATCH_SO_CAT2_(a, b)
#define QPATCH_SO_ENTRY_(kind_, addr_, name_)                                      \
	static struct qpatch_so_entry QPATCH_SO_CAT_(qpatch_so_entry_, __COUNTER__) \
		__attribute__((section(QPATCH_SO_SECTION), used, aligned(8))) =      \
		{ QPATCH_SO_MAGIC, (kind_), { addr_ }, name_ }

/* The object the library patches: its file name ("redis-server",
 * "libfoo.so.1") as the process maps it, or its build-id. */
#define QPATCH_TARGET(file_name) QPATCH_SO_ENTRY_(QPATCH_SO_TARGET, .var = 0, file_name)
#define QPATCH_TARGET_BUILDID(hex) QPATCH_SO_ENTRY_(QPATCH_SO_TARGET_BUILDID, .var = 0, hex)

/* Calls of @old_symbol in the target run @new_function from now on; the
 * type must be the same (the loader compares the prototypes when the
 * library and the target both have DWARF: build the library with -g). */
#define QPATCH_REPLACE(old_symbol, new_function) \
	QPATCH_SO_ENTRY_(QPATCH_SO_REPLACE, .fn = (void (*)(void))(new_function), #old_symbol)
/* The same for a static function of source file @file ("util.c"), for a
 * name more than one file of the target defines. */
#define QPATCH_REPLACE_IN(file, old_symbol, new_function) \
	QPATCH_SO_ENTRY_(QPATCH_SO_REPLACE, .fn = (void (*)(void))(new_function), \
			 file ":" #old_symbol)

/* Pointer variable @ptr_var (of the library, writable, e.g. "static long
 * *counter_p;") receives the address of symbol @name of the target
 * (function or variable, statics included), of source file @file ("" for
 * any), before any function is redirected. */
#define QPATCH_SYM(ptr_var, file, name) \
	QPATCH_SO_ENTRY_(QPATCH_SO_SYM, .var = &(ptr_var), file ":" name)

#endif
