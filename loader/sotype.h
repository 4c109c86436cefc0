/* SPDX-License-Identifier: MIT */
/*
 * The type check of a hand-written patch library (qpatch-load --so): each
 * replacement's prototype, from the library's DWARF, against the old
 * function's, from the target object's DWARF (in the file, or a separate
 * debug file that libdwfl's standard search finds: by build-id under
 * /usr/lib/debug/.build-id, or by .gnu_debuglink).  Compared: the number
 * of parameters, variadic or not, and the return and each parameter type
 * by kind and size (a base type also by encoding, a struct or union also
 * by name; every pointer is a pointer).  Typedefs and qualifiers do not
 * count.  Either side without DWARF is not an error: the check is skipped
 * and the note says why.
 */
#ifndef QPATCH_LOADER_SOTYPE_H
#define QPATCH_LOADER_SOTYPE_H

#include <stddef.h>
#include <stdint.h>

#include "qpatch/elf.h"
#include "qpatch/error.h"

/* One replaced function. */
struct ld_so_type_fn {
	const char *name;    /* the old function's name, for messages */
	uint64_t entry_off;  /* its QPATCH_REPLACE entry in the library's .qpatch.so */
	uint64_t old_vaddr;  /* the old function in the target file (address - bias) */
};

/*
 * Compare the @n functions @fns of the library @lib (its .qpatch.so is
 * @sec; the new functions are found through its dynamic relocations)
 * with the target object read from @obj_file (its path, where a debug
 * link is looked for too, or a map_files link of a deleted file) and
 * named @obj_name in messages.  0 when every function compared matches
 * (*@nchecked of them; the others and why in @note, "" when none was
 * skipped); QP_EREFUSED naming the function and the first difference.
 */
int ld_so_type_check(const struct qp_elf *lib, const struct qp_elf_sec *sec,
		     const char *obj_file, const char *obj_name, const struct ld_so_type_fn *fns,
		     size_t n, size_t *nchecked, char *note, size_t note_size,
		     struct qp_error *err);

#endif
