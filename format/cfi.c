// SPDX-License-Identifier: MIT
/*
 * .eh_frame entries: see qpatch/cfi.h.  The layout is the LSB's: each entry
 * is a 32-bit length, then a 32-bit CIE id (0) or CIE pointer (distance
 * from this field back to the CIE), then the CIE's or FDE's fields.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "qpatch/cfi.h"

#define DW_EH_PE_absptr 0x00
#define DW_EH_PE_udata2 0x02
#define DW_EH_PE_udata4 0x03
#define DW_EH_PE_udata8 0x04
#define DW_EH_PE_sdata2 0x0a
#define DW_EH_PE_sdata4 0x0b
#define DW_EH_PE_sdata8 0x0c
#define DW_EH_PE_pcrel 0x10

static int cfi_why(char *why, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int cfi_why(char *why, size_t size, const char *fmt, ...)
{
	va_list ap;

	if (why && size) {
		va_start(ap, fmt);
		vsnprintf(why, size, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

bool qp_cfi_uleb(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	unsigned shift = 0;

	*v = 0;
	while (*p < end) {
		uint8_t b = *(*p)++;

		if (shift >= 64 || (shift == 63 && (b & 0x7e)))
			return false;
		*v |= (uint64_t)(b & 0x7f) << shift;
		shift += 7;
		if (!(b & 0x80))
			return true;
	}
	return false;
}

bool qp_cfi_sleb(const uint8_t **p, const uint8_t *end, int64_t *v)
{
	uint64_t u = 0;
	unsigned shift = 0;
	uint8_t b = 0;

	while (*p < end) {
		b = *(*p)++;
		if (shift >= 64)
			return false;
		u |= (uint64_t)(b & 0x7f) << shift;
		shift += 7;
		if (!(b & 0x80)) {
			if (shift < 64 && (b & 0x40))
				u |= ~0ull << shift;
			*v = (int64_t)u;
			return true;
		}
	}
	return false;
}

static uint32_t cfi_u32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

int qp_cfi_entry(const uint8_t *buf, size_t size, uint64_t off, struct qp_cfi_entry *e,
		 char *why, size_t why_size)
{
	uint32_t len, id;

	memset(e, 0, sizeof(*e));
	e->off = off;
	if (off == size)
		return 1;
	if (off > size || size - off < 4)
		return cfi_why(why, why_size, "entry at 0x%llx: truncated length", (unsigned long long)off);
	len = cfi_u32(buf + off);
	e->size = 4;
	if (!len)
		return 1;
	if (len == 0xffffffffu)
		return cfi_why(why, why_size, "entry at 0x%llx: 64-bit length", (unsigned long long)off);
	if (len < 4 || len > size - off - 4)
		return cfi_why(why, why_size, "entry at 0x%llx: length %u runs past the end",
			       (unsigned long long)off, len);
	e->size = 4ull + len;
	e->body = off + 8;
	id = cfi_u32(buf + off + 4);
	e->cie = id == 0;
	if (!e->cie) {
		if (id > off + 4)
			return cfi_why(why, why_size, "FDE at 0x%llx: CIE pointer %u points before the section",
				       (unsigned long long)off, id);
		e->cie_off = off + 4 - id;
	}
	return 0;
}

/* Bytes of a pointer in encoding @enc, 0 when not supported. */
static unsigned cfi_enc_size(uint8_t enc)
{
	switch (enc & 0x0f) {
	case DW_EH_PE_absptr: case DW_EH_PE_udata8: case DW_EH_PE_sdata8:
		return 8;
	case DW_EH_PE_udata4: case DW_EH_PE_sdata4:
		return 4;
	case DW_EH_PE_udata2: case DW_EH_PE_sdata2:
		return 2;
	default:
		return 0;
	}
}

/* Absolute or PC-relative, of a size we know, not indirect. */
static bool cfi_enc_ok(uint8_t enc)
{
	return cfi_enc_size(enc) && ((enc & 0x70) == 0 || (enc & 0x70) == DW_EH_PE_pcrel) &&
	       !(enc & 0x80);
}

static int64_t cfi_read_ptr(const uint8_t *p, uint8_t enc)
{
	uint64_t v = 0;
	unsigned n = cfi_enc_size(enc);

	memcpy(&v, p, n);
	if ((enc & 0x0f) == DW_EH_PE_sdata2)
		return (int16_t)v;
	if ((enc & 0x0f) == DW_EH_PE_sdata4)
		return (int32_t)v;
	return (int64_t)v;
}

/* The augmentation data of a CIE (after 'z'). */
static int cfi_cie_aug(const uint8_t *p, const uint8_t *end, struct qp_cfi_cie *cie, char *why,
		       size_t why_size)
{
	const char *a;

	for (a = cie->aug + 1; *a; a++) {
		uint8_t enc;

		if (*a == 'S') {
			cie->signal = true;
			continue;
		}
		if (p >= end)
			return cfi_why(why, why_size, "CIE augmentation data too short");
		enc = *p++;
		if (*a == 'R' || *a == 'L') {
			if (!cfi_enc_ok(enc))
				return cfi_why(why, why_size, "unsupported pointer encoding 0x%x", enc);
			if (*a == 'R')
				cie->fde_enc = enc;
			else
				cie->has_lsda = true;
		} else if (*a == 'P') {
			if (!cfi_enc_ok(enc & 0x7f) || (size_t)(end - p) < cfi_enc_size(enc))
				return cfi_why(why, why_size, "unsupported personality encoding 0x%x", enc);
			p += cfi_enc_size(enc);
		} else {
			return cfi_why(why, why_size, "unknown augmentation '%s'", cie->aug);
		}
	}
	return 0;
}

int qp_cfi_parse_cie(const uint8_t *buf, size_t size, const struct qp_cfi_entry *e,
		     struct qp_cfi_cie *cie, char *why, size_t why_size)
{
	const uint8_t *p = buf + e->body, *end = buf + e->off + e->size;
	uint64_t auglen = 0, ra;
	size_t n;
	int ret;

	(void)size;
	memset(cie, 0, sizeof(*cie));
	if (p >= end || (*p != 1 && *p != 3))
		return cfi_why(why, why_size, "CIE at 0x%llx: unsupported version", (unsigned long long)e->off);
	cie->version = *p++;
	n = strnlen((const char *)p, (size_t)(end - p));
	if (n == (size_t)(end - p) || n >= sizeof(cie->aug) || (n && p[0] != 'z'))
		return cfi_why(why, why_size, "CIE at 0x%llx: unsupported augmentation", (unsigned long long)e->off);
	memcpy(cie->aug, p, n);
	p += n + 1;
	if (!qp_cfi_uleb(&p, end, &cie->code_align) || !qp_cfi_sleb(&p, end, &cie->data_align))
		return cfi_why(why, why_size, "CIE at 0x%llx: truncated", (unsigned long long)e->off);
	if (cie->version == 1) {
		if (p >= end)
			return cfi_why(why, why_size, "CIE at 0x%llx: truncated", (unsigned long long)e->off);
		ra = *p++;
	} else if (!qp_cfi_uleb(&p, end, &ra)) {
		return cfi_why(why, why_size, "CIE at 0x%llx: truncated", (unsigned long long)e->off);
	}
	if (ra >= QP_CFI_MAX_REG)
		return cfi_why(why, why_size, "CIE at 0x%llx: return address register %llu",
			       (unsigned long long)e->off, (unsigned long long)ra);
	cie->ra = ra;
	cie->fde_enc = DW_EH_PE_absptr;
	if (n) {
		if (!qp_cfi_uleb(&p, end, &auglen) || auglen > (uint64_t)(end - p))
			return cfi_why(why, why_size, "CIE at 0x%llx: bad augmentation length",
				       (unsigned long long)e->off);
		ret = cfi_cie_aug(p, p + auglen, cie, why, why_size);
		if (ret)
			return ret;
		p += auglen;
	}
	cie->insns = p;
	cie->ninsns = (size_t)(end - p);
	return 0;
}

int qp_cfi_parse_fde(const uint8_t *buf, size_t size, const struct qp_cfi_entry *e,
		     const struct qp_cfi_cie *cie, struct qp_cfi_fde *fde, char *why,
		     size_t why_size)
{
	const uint8_t *p = buf + e->body, *end = buf + e->off + e->size;
	unsigned n = cfi_enc_size(cie->fde_enc);
	uint64_t auglen;

	(void)size;
	memset(fde, 0, sizeof(*fde));
	if ((size_t)(end - p) < 2 * n)
		return cfi_why(why, why_size, "FDE at 0x%llx: truncated", (unsigned long long)e->off);
	fde->pc_off = e->body;
	fde->pc_size = n;
	fde->pc_value = cfi_read_ptr(p, cie->fde_enc);
	fde->pc_range = (uint64_t)cfi_read_ptr(p + n, cie->fde_enc & 0x0f);
	if (n < 8)
		fde->pc_range &= (1ull << (8 * n)) - 1;
	p += 2 * n;
	if (cie->aug[0] == 'z') {
		if (!qp_cfi_uleb(&p, end, &auglen) || auglen > (uint64_t)(end - p))
			return cfi_why(why, why_size, "FDE at 0x%llx: bad augmentation length",
				       (unsigned long long)e->off);
		p += auglen;
	}
	fde->insns = p;
	fde->ninsns = (size_t)(end - p);
	return 0;
}

/* A register operand: a ULEB128 below QP_CFI_MAX_REG (an interpreter
 * keeps a rule per register up to the highest one named). */
static bool cfi_reg(const uint8_t **p, const uint8_t *end)
{
	uint64_t r;

	return qp_cfi_uleb(p, end, &r) && r < QP_CFI_MAX_REG;
}

/* Skip the operands of extended opcode @op; false when they run past @end,
 * a register is out of range or the opcode is not allowed. */
static bool cfi_skip_operands(uint8_t op, const uint8_t **p, const uint8_t *end)
{
	uint64_t u;
	int64_t s;

	switch (op) {
	case 0x00: case 0x0a: case 0x0b: /* nop, remember/restore_state */
		return true;
	case 0x0e: case 0x2e: /* def_cfa_offset, GNU_args_size */
		return qp_cfi_uleb(p, end, &u);
	case 0x06: case 0x07: case 0x08: case 0x0d:
		/* restore_extended, undefined, same_value, def_cfa_register */
		return cfi_reg(p, end);
	case 0x13: /* def_cfa_offset_sf */
		return qp_cfi_sleb(p, end, &s);
	case 0x05: case 0x0c: case 0x14: case 0x2f:
		/* offset_extended, def_cfa, val_offset, GNU_negative_offset_extended */
		return cfi_reg(p, end) && qp_cfi_uleb(p, end, &u);
	case 0x09: /* register */
		return cfi_reg(p, end) && cfi_reg(p, end);
	case 0x11: case 0x12: case 0x15: /* offset_extended_sf, def_cfa_sf, val_offset_sf */
		return cfi_reg(p, end) && qp_cfi_sleb(p, end, &s);
	case 0x0f: /* def_cfa_expression: a block */
		return qp_cfi_uleb(p, end, &u) && u <= (uint64_t)(end - *p) && (*p += u, true);
	case 0x10: case 0x16: /* expression, val_expression: register, block */
		return cfi_reg(p, end) && qp_cfi_uleb(p, end, &u) &&
		       u <= (uint64_t)(end - *p) && (*p += u, true);
	default: /* 0x01 set_loc (an address), unknown opcodes */
		return false;
	}
}

int qp_cfi_check_insns(const uint8_t *p, size_t n, const struct qp_cfi_cie *cie, uint64_t range,
		       char *why, size_t why_size)
{
	const uint8_t *start = p, *end = p + n;
	/* the location in units of the code alignment, and its bound */
	uint64_t loc = 0, u, lim = range / (cie->code_align ? cie->code_align : 1);

	while (p < end) {
		uint8_t op = *p++;
		uint64_t adv = 0;

		switch (op >> 6) {
		case 1: /* advance_loc */
			adv = op & 0x3f;
			break;
		case 2: /* offset: register in the opcode, then an offset */
			if (!qp_cfi_uleb(&p, end, &u))
				return cfi_why(why, why_size, "truncated instruction at +%td", p - start);
			continue;
		case 3: /* restore */
			continue;
		default:
			if (op >= 0x02 && op <= 0x04) { /* advance_loc1/2/4 */
				unsigned w = op == 0x02 ? 1 : op == 0x03 ? 2 : 4;

				if ((size_t)(end - p) < w)
					return cfi_why(why, why_size, "truncated advance at +%td", p - start);
				memcpy(&adv, p, w);
				p += w;
			} else if (!cfi_skip_operands(op, &p, end)) {
				return cfi_why(why, why_size, "%s 0x%02x at +%td",
					       op == 0x01 ? "DW_CFA_set_loc" : "unsupported or truncated instruction",
					       op, p - 1 - start);
			}
		}
		if (!adv)
			continue;
		/* loc * code_align <= range throughout; no sum may wrap around */
		if (adv > lim - loc)
			return cfi_why(why, why_size, "advance past the end of the code it describes at +%td",
				       p - 1 - start);
		loc += adv;
	}
	return 0;
}

int qp_cfi_check(const uint8_t *buf, size_t size, char *why, size_t why_size)
{
	struct qp_cfi_entry e, ce;
	struct qp_cfi_cie cie;
	struct qp_cfi_fde fde;
	uint64_t off = 0, cie_off = UINT64_MAX; /* the CIE in cie, checked already */
	int ret;

	for (;;) {
		ret = qp_cfi_entry(buf, size, off, &e, why, why_size);
		if (ret < 0)
			return ret;
		if (ret > 0)
			return 0;
		if (e.cie) {
			ret = qp_cfi_parse_cie(buf, size, &e, &cie, why, why_size);
			if (!ret)
				ret = qp_cfi_check_insns(cie.insns, cie.ninsns, &cie, 0, why, why_size);
			cie_off = ret ? UINT64_MAX : e.off;
		} else {
			if (e.cie_off >= e.off)
				return cfi_why(why, why_size, "FDE at 0x%llx does not point at an earlier CIE",
					       (unsigned long long)e.off);
			/* most FDEs name the CIE just parsed: parsed and checked once */
			ret = 0;
			if (e.cie_off != cie_off) {
				if (qp_cfi_entry(buf, size, e.cie_off, &ce, NULL, 0) || !ce.cie)
					return cfi_why(why, why_size,
						       "FDE at 0x%llx does not point at an earlier CIE",
						       (unsigned long long)e.off);
				ret = qp_cfi_parse_cie(buf, size, &ce, &cie, why, why_size);
				cie_off = ret ? UINT64_MAX : e.cie_off;
			}
			if (!ret)
				ret = qp_cfi_parse_fde(buf, size, &e, &cie, &fde, why, why_size);
			if (!ret)
				ret = qp_cfi_check_insns(fde.insns, fde.ninsns, &cie, fde.pc_range, why,
							 why_size);
		}
		if (ret)
			return ret;
		off += e.size;
	}
}
