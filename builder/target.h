/* SPDX-License-Identifier: MIT */
/*
 * The target binary as the builder sees it: its symbol table with FILE
 * scopes, its PLT entries (libbfd synthetic "name@plt" symbols) and its
 * build-id.
 */
#ifndef QPATCH_BUILDER_TARGET_H
#define QPATCH_BUILDER_TARGET_H

#include <stddef.h>
#include <stdint.h>

#include "qpatch/elf.h"
#include "qpatch/format.h"

struct qp_target;

int qp_target__open(const char *path, struct qp_target **out, struct qp_error *err);
void qp_target__free(struct qp_target *t);
const char *qp_target__path(const struct qp_target *t);
const struct qp_elf *qp_target__elf(const struct qp_target *t);

/*
 * The FILE scope of the target that object @obj was linked from: a FILE
 * symbol with the object's source name whose local symbols include every
 * local function and variable of @obj.  Two candidates that cannot be told
 * apart are an error naming both.
 */
int qp_target__scope(struct qp_target *t, struct qp_elf *obj, const char *objname,
		     size_t *file, struct qp_error *err);
const struct qp_elf_sym *qp_target__find_local(const struct qp_target *t, size_t file,
					       const char *name);
const struct qp_elf_sym *qp_target__find_global(const struct qp_target *t, const char *name);
/* The symbol named @name at address @value, or NULL. */
const struct qp_elf_sym *qp_target__sym_at(const struct qp_target *t, uint64_t value,
					   const char *name);
/* Link-time address of the PLT entry for @name; -ENOENT when none. */
int qp_target__plt(const struct qp_target *t, const char *name, uint64_t *addr);
const char *qp_target__file_name(const struct qp_target *t, size_t file);
/*
 * Can the function @sym of the target take the loader's jump?  Runs the
 * loader's patch-site check on the binary's bytes, so a function that has
 * a branch into its first bytes is refused at build time.  A function
 * shorter than the jump may take it when the bytes after it, up to the
 * next symbol, are alignment padding: *@room is then their count (the
 * patch says so with a QP_R_ROOM), else 0.  When there is no such room,
 * its direct call sites may be rewritten instead: *@calls is then true
 * (QP_R_CALLS), provided nothing else leads into it (callsites.h).
 * Returns 0, or a negative code with the reason in @why.
 */
int qp_target__check_site(const struct qp_target *t, const struct qp_elf_sym *sym,
			  uint64_t *room, bool *calls, char *why, size_t why_size);
/* Build-id, target name and tool version for the patch info. */
void qp_target__fill_info(const struct qp_target *t, struct qp_info *info);

#endif
