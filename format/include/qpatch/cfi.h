/* SPDX-License-Identifier: MIT */
/*
 * Call frame information in .eh_frame form (the LSB's variant of DWARF
 * .debug_frame): parsing entries of objects (the builder copies the CFI of
 * the functions it puts into a patch) and checking the patch's own
 * `.qpatch.eh_frame` section (docs/format.md).  Every function works on a
 * byte buffer that may be hostile: offsets and lengths are checked before
 * use, and a malformed entry is an error with a reason, never a crash.
 */
#ifndef QPATCH_CFI_H
#define QPATCH_CFI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Registers CFI may name are below this (x86-64 numbers its DWARF
 * registers up to about 130). */
#define QP_CFI_MAX_REG 256

/* The one pointer encoding of .qpatch.eh_frame: DW_EH_PE_pcrel | sdata4. */
#define QP_CFI_FDE_ENC 0x1b

/* One CIE or FDE. */
struct qp_cfi_entry {
	uint64_t off;        /* offset of its length field in the section */
	uint64_t size;       /* bytes of the whole entry, length field included */
	uint64_t body;       /* offset just after its CIE id / CIE pointer field */
	bool cie;            /* a CIE; otherwise an FDE */
	uint64_t cie_off;    /* FDE: offset of the CIE it names */
};

/* What a CIE says. */
struct qp_cfi_cie {
	uint8_t version;       /* 1 or 3 */
	char aug[8];           /* augmentation string, e.g. "zR" */
	uint64_t code_align;   /* code alignment factor */
	int64_t data_align;    /* data alignment factor */
	uint64_t ra;           /* return address register */
	uint8_t fde_enc;       /* 'R': encoding of FDE addresses (absptr if none) */
	bool has_lsda;         /* 'L': FDEs carry an LSDA pointer */
	bool signal;           /* 'S': frames of a signal trampoline */
	const uint8_t *insns;  /* initial instructions */
	size_t ninsns;         /* their bytes */
};

/* What an FDE says. */
struct qp_cfi_fde {
	uint64_t pc_off;       /* section offset of its pc_begin field */
	unsigned pc_size;      /* bytes of that field */
	int64_t pc_value;      /* its value as stored (sign-extended if signed) */
	uint64_t pc_range;     /* bytes of code it covers */
	const uint8_t *insns;  /* its instructions */
	size_t ninsns;         /* their bytes */
};

/*
 * The entry at @off of an .eh_frame of @size bytes.  Returns 0, 1 when
 * @off is the end of the data or a zero terminator (*@e then spans the
 * terminator, if any), or -EINVAL with the reason in @why.  64-bit
 * (0xffffffff) lengths are refused.
 */
int qp_cfi_entry(const uint8_t *buf, size_t size, uint64_t off, struct qp_cfi_entry *e,
		 char *why, size_t why_size);
int qp_cfi_parse_cie(const uint8_t *buf, size_t size, const struct qp_cfi_entry *e,
		     struct qp_cfi_cie *cie, char *why, size_t why_size);
int qp_cfi_parse_fde(const uint8_t *buf, size_t size, const struct qp_cfi_entry *e,
		     const struct qp_cfi_cie *cie, struct qp_cfi_fde *fde, char *why,
		     size_t why_size);

/*
 * Check a sequence of CFA instructions: each opcode known, its operands
 * inside, registers below QP_CFI_MAX_REG, no DW_CFA_set_loc (an address that would need relocating), and
 * the advances, times the CIE's code alignment, adding up to at most
 * @range (0: no advance allowed, as in a CIE).  0 or -EINVAL with @why.
 */
int qp_cfi_check_insns(const uint8_t *p, size_t n, const struct qp_cfi_cie *cie, uint64_t range,
		       char *why, size_t why_size);

/*
 * Check a whole .eh_frame of @size bytes: every entry inside, every FDE
 * naming an earlier CIE, every CIE and FDE parsed and their instructions
 * checked (qp_cfi_check_insns); it ends at @size or at a zero terminator.
 * What a hostile process hands over as CFI is checked so before anything
 * else (libdw) interprets it.  0 or -EINVAL with @why.
 */
int qp_cfi_check(const uint8_t *buf, size_t size, char *why, size_t why_size);

/* Unsigned / signed LEB128 at *@p (< @end); advances *@p; false when it
 * runs past @end or beyond 64 bits. */
bool qp_cfi_uleb(const uint8_t **p, const uint8_t *end, uint64_t *v);
bool qp_cfi_sleb(const uint8_t **p, const uint8_t *end, int64_t *v);

#endif
