/* SPDX-License-Identifier: MIT */
/*
 * Internal to the differ: the state shared by diff.c (correlating,
 * selecting, resolving), checks.c (what cannot be patched, what is only a
 * moved __LINE__) and emit.c (layout and emission).
 */
#ifndef QPATCH_BUILDER_DIFF_INTERNAL_H
#define QPATCH_BUILDER_DIFF_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "builder.h"
#include "correlate.h"
#include "qpatch/elf.h"
#include "srcline.h"
#include "target.h"

enum diff_out { OUT_TEXT, OUT_RODATA, OUT_DATA, OUT_BSS, OUT_NR };

/* Where the objects of a read-only section of one object file start: every
 * place a relocation of an allocated section points at, and every symbol. */
struct diff_starts {
	bool done;               /* computed (lazily, by the first comparison) */
	bool failed;             /* out of memory: compare the whole section */
	bool vars;               /* some variable (STT_OBJECT) is defined in the section */
	uint64_t *off;           /* sorted, without duplicates */
	size_t n;                /* count of off */
};

/* One object pair. */
struct diff_obj {
	struct qp_elf *orig;     /* object of the original build */
	struct qp_elf *pat;      /* object of the patched build */
	char *name;              /* for messages: path relative to the build tree */
	struct qp_srcline *src;  /* source lines of the patched object */
	struct qp_srcline *osrc; /* source lines of the original object */
	struct qp_correlation corr; /* patched symbols' twins in the original */
	struct diff_starts *starts[2]; /* per section of orig [0] and pat [1] */
	char **why_new;          /* per patched symbol: why a clone was not paired, or NULL */
	int *incl;               /* per patched section: index in diff.incl, or -1 */
	size_t scope;            /* FILE symbol index in the target, 0 = unresolved */
	int scope_ret;           /* result of resolving the scope (cached) */
	bool scope_done;         /* scope resolved (successfully or not) */
};

/* Where one relocation of an included section points. */
struct diff_ref {
	bool internal;           /* target is inside the patch image */
	size_t incl;             /* internal: included section */
	uint64_t off;            /* internal: offset inside it */
	size_t src;              /* external: index in diff.srcs */
	bool via_got;            /* external: library data the program has no copy of,
				    read by a [rip + disp32] instruction: emitted through a
				    GOT slot and a stub (qp_decode_got_stub) */
};

/* A section of a patched object that goes into the patch. */
struct diff_incl {
	struct diff_obj *o;      /* object it comes from */
	struct qp_elf_sec *sec;  /* the section in o->pat */
	enum diff_out out;       /* output section */
	uint64_t off;            /* offset inside the output section */
	struct diff_ref *refs;   /* one per relocation of sec */
	struct qp_elf_sym *replaces; /* the patched function that replaces an old one, or NULL */
	size_t replaces_src;     /* src index of the old function in the target */
	size_t cold_src[4];      /* src indexes of the old function's cold parts */
	unsigned ncold;          /* count of cold_src */
};

/* A src symbol to emit. */
struct diff_src {
	char *name;              /* symbol name (e.g. "balance", "printf@plt") */
	uint64_t value;          /* link-time address in the target (IN_TARGET) */
	uint64_t size;           /* st_size */
	uint8_t type, bind;      /* STT_*, STB_* */
	uint16_t shndx;          /* QP_SRC_IN_TARGET or QP_SRC_EXTERNAL */
	size_t file;             /* target FILE symbol index for locals, else 0 */
	size_t index;            /* final index in the src table */
	uint64_t room;           /* a replaced function shorter than the jump: padding
				    bytes after it the jump may use (QP_R_ROOM), else 0 */
	bool calls;              /* such a function with no room: its direct call
				    sites are rewritten instead (QP_R_CALLS) */
};

struct qp_diff {
	struct qp_target *tgt;   /* the target binary */
	struct diff_obj *objs;   /* object pairs */
	size_t nobjs;            /* count of objs */
	struct diff_incl *incl;  /* included sections, in inclusion order */
	size_t nincl, cap_incl;  /* count and capacity of incl */
	struct diff_src *srcs;   /* src symbols */
	size_t nsrcs, cap_srcs;  /* count and capacity of srcs */
	struct qp_report *rep;   /* report being filled */
	uint64_t out_size[OUT_NR]; /* bytes per output section */
	uint64_t out_align[OUT_NR]; /* alignment per output section */
	uint64_t stubs_off;      /* offset of the GOT stubs in the text output */
	size_t nstubs;           /* stubs laid out (via_got references) */
	char *src_prefix;        /* see qp_diff__set_sources(), or NULL */
	char *src_orig;          /* directory for original sources */
	char *src_patched;       /* directory for patched sources */
	char **keep;             /* variables whose running value is kept (qp_diff__keep_value) */
	bool *keep_used;         /* per keep entry: it matched a changed variable */
	size_t nkeep;            /* count of keep */
	uint8_t build_id[QP_BUILD_ID_MAX]; /* overrides the target's, when set */
	size_t build_id_size;    /* bytes in build_id, 0 = the target's */
};

/* diff.c */
int diff_note(struct qp_diff *d, enum qp_change_kind kind, const char *name,
	      const struct diff_obj *o, uint64_t size, const char *why);
bool sec_is_text(const struct qp_elf_sec *s);
bool sec_is_rodata(const struct qp_elf_sec *s);
bool sec_is_data(const struct qp_elf_sec *s);
unsigned rela_width(uint32_t type);
int64_t rela_pc_adjust(const struct qp_elf_sec *sec, const struct qp_elf_rela *r);
struct qp_elf_sym *sec_sole_symbol(struct qp_elf *e, const struct qp_elf_sec *sec);
struct qp_elf_sym *obj_twin(const struct diff_obj *o, const struct qp_elf_sym *s);
uint64_t fnv1a(uint64_t h, const void *buf, size_t len);
bool relas_equal(const struct diff_obj *o, const struct qp_elf_sec *a, const struct qp_elf_sec *b);
int diff_refuse(struct qp_diff *d, struct diff_obj *o, const char *name, uint64_t size,
		struct qp_error *err, const char *why);

/* checks.c */
bool diff_line_only(struct qp_diff *d, struct diff_obj *o, const struct qp_elf_sym *os,
		    const struct qp_elf_sym *s);
int diff_check_site(struct qp_diff *d, struct diff_obj *o, const struct qp_elf_sym *s,
		    size_t src, struct qp_error *err);
int diff_layouts(struct qp_diff *d, struct diff_obj *o, struct qp_error *err);

/* cfi.c: the .qpatch.eh_frame section for the included code, at image
 * offset @at (after every other section) */
int diff_emit_cfi(struct qp_diff *d, struct qp_patch *p, const uint64_t *base, uint64_t at,
		  struct qp_error *err);

/* emit.c */
int diff_emit_patch(struct qp_diff *d, const char *id, struct qp_patch **out,
		    struct qp_error *err);

#endif
