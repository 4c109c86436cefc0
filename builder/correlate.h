/* SPDX-License-Identifier: MIT */
/*
 * Pairing the symbols of a patched object with those of the original
 * object ("twins"), by meaning rather than by the compiler's numbering.
 */
#ifndef QPATCH_BUILDER_CORRELATE_H
#define QPATCH_BUILDER_CORRELATE_H

#include "qpatch/elf.h"

#include <stdbool.h>

struct qp_correlation {
	/* per patched symbol index: its twin in the original object, or NULL */
	struct qp_elf_sym **twin;
	/* per patched symbol index: a static that could be the twin of more
	 * than one original static, so it must not be used */
	bool *ambiguous;
};

/*
 * Asked about every pair of compiler-made clones (a name with a
 * ".constprop", ".isra" or ".part" component) that rule 1 pairs: true
 * means "not the same function" (its calling convention changed), and the
 * patched clone stays without a twin, so it is new and everything that
 * calls it compares as changed.
 */
struct qp_correlate_veto {
	bool (*fn)(void *arg, const struct qp_elf_sym *os, const struct qp_elf_sym *s);
	void *arg; /* passed to fn */
};

/*
 * Pair each defined function, variable or TLS variable of @pat with its
 * twin in @orig.  Rules:
 *  1. everything but static locals by exact name, type and binding; what
 *     is left by name without numeric components ("foo.isra.0" and
 *     "foo.isra.1" are both "foo.isra") when that leaves one candidate;
 *  2. static locals ("count.1": a local variable with a numeric suffix),
 *     whose numbers follow the order the compiler met them in and shift
 *     with any edit, by base name and the set of functions and variables
 *     (paired by rule 1) that refer to them; ties (e.g. a new static of a function inlined
 *     into the same caller) are broken by equal size and initial bytes,
 *     else they are marked ambiguous.
 * Function pairs that are clones are put to @veto (may be NULL) before
 * rule 2 uses them.
 * Returns 0 or -ENOMEM; release with qp_correlation__release().
 */
int qp_correlate(struct qp_elf *orig, struct qp_elf *pat, const struct qp_correlate_veto *veto,
		 struct qp_correlation *c);
/* Has @name a compiler clone component (".constprop.N", ".isra.N", ".part.N")? */
bool qp_correlate_is_clone(const char *name);
/* Is @s the cold part of a function ("foo.cold", "foo.part.0.cold")? */
bool qp_correlate_is_cold(const struct qp_elf_sym *s);
void qp_correlation__release(struct qp_correlation *c);

/* "foo.part.0.isra.1" -> "foo.part.isra" into @out. */
void qp_correlate_base_name(const char *name, char *out, size_t size);

#endif
