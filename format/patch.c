// SPDX-License-Identifier: MIT
/*
 * The in-memory model of a .qpatch file and qp_patch__validate(), which
 * enforces every rule of docs/format.md "What the reader validates".  Both
 * the writer (before emitting) and the reader (after parsing) run it, so a
 * qp_patch that left either one is a valid patch.
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "qpatch/cfi.h"
#include "qpatch/format.h"
#include "qpatch/sign.h"

/* Content sections the model accepts: with the 8 fixed sections, e_shnum
 * stays below SHN_LORESERVE (no extended section numbering). */
#define QP_MAX_SECTIONS (SHN_LORESERVE - 1 - 8)

struct qp_patch {
	struct qp_info info;       /* info block, as set (zeroed by __new) */
	struct qp_section *secs;   /* content sections, model order */
	size_t sec_cnt;            /* used entries of secs */
	size_t sec_cap;            /* allocated entries of secs */
	struct qp_sym *src;        /* src symbols; [0] is the null symbol */
	size_t src_cnt;            /* used entries of src (null included) */
	size_t src_cap;            /* allocated entries of src */
	struct qp_sym *dst;        /* dst symbols; [0] is the null symbol */
	size_t dst_cnt;            /* used entries of dst (null included) */
	size_t dst_cap;            /* allocated entries of dst */
	struct qp_rela *relas;     /* .qpatch.diffdata entries */
	size_t rela_cnt;           /* used entries of relas */
	size_t rela_cap;           /* allocated entries of relas */
	bool has_sig;              /* the file read was signed */
	struct qp_sig_disk sig;    /* its signature block, when has_sig */
};

/* One accepted relocation type. */
struct patch_rtype {
	uint32_t type;    /* R_X86_64_* or QP_R_* */
	const char *name; /* its name, as printed */
	unsigned width;   /* bytes of the field it writes; 0 for QP_R_REPLACE, QP_R_BUSY, QP_R_ROOM, QP_R_CALLS */
};

#define RT(t, w) { t, #t, w }
static const struct patch_rtype patch_rtypes[] = {
	RT(R_X86_64_64, 8),
	RT(R_X86_64_PC32, 4),
	RT(R_X86_64_PLT32, 4),
	RT(R_X86_64_32, 4),
	RT(R_X86_64_32S, 4),
	RT(R_X86_64_PC64, 8),
	RT(R_X86_64_GOTPCREL, 4),
	RT(R_X86_64_GOTPCRELX, 4),
	RT(R_X86_64_REX_GOTPCRELX, 4),
	RT(R_X86_64_RELATIVE, 8),
	RT(R_X86_64_TPOFF32, 4),
	RT(R_X86_64_GOTTPOFF, 4),
	RT(R_X86_64_TLSGD, 4),
	RT(R_X86_64_TLSLD, 4),
	RT(R_X86_64_DTPOFF32, 4),
	RT(QP_R_REPLACE, 0),
	RT(QP_R_IMAGE32, 4),
	RT(QP_R_IMAGE32S, 4),
	RT(QP_R_BUSY, 0),
	RT(QP_R_ROOM, 0),
	RT(QP_R_CALLS, 0),
};
#undef RT

static const struct patch_rtype *patch_rtype(uint32_t type)
{
	size_t i;

	for (i = 0; i < sizeof(patch_rtypes) / sizeof(patch_rtypes[0]); i++)
		if (patch_rtypes[i].type == type)
			return &patch_rtypes[i];
	return NULL;
}

const char *qp_rela_type_name(uint32_t type)
{
	const struct patch_rtype *rt = patch_rtype(type);

	return rt ? rt->name : NULL;
}

bool qp_rela_is_tls(uint32_t type)
{
	switch (type) {
	case R_X86_64_TPOFF32: case R_X86_64_GOTTPOFF: case R_X86_64_TLSGD:
	case R_X86_64_TLSLD: case R_X86_64_DTPOFF32:
		return true;
	default:
		return false;
	}
}

/* ---- construction ---------------------------------------------------- */

/* Make room for one more element of @elem bytes in *@arr (geometric
 * growth); counts stay below INT_MAX so indexes fit the int returns. */
static int patch_grow(void **arr, size_t *cap, size_t cnt, size_t elem)
{
	size_t ncap;
	void *n;

	if (cnt < *cap)
		return 0;
	if (cnt >= INT_MAX)
		return -E2BIG;
	ncap = *cap ? *cap * 2 : 8;
	if (ncap > INT_MAX)
		ncap = INT_MAX;
	n = realloc(*arr, ncap * elem);
	if (!n)
		return -ENOMEM;
	*arr = n;
	*cap = ncap;
	return 0;
}

static int patch_push_sym(struct qp_sym **arr, size_t *cnt, size_t *cap,
			  const struct qp_sym *sym)
{
	char *name;
	int ret;

	if (!sym || !sym->name)
		return -EINVAL;
	ret = patch_grow((void **)arr, cap, *cnt, sizeof(**arr));
	if (ret)
		return ret;
	name = strdup(sym->name);
	if (!name)
		return -ENOMEM;
	(*arr)[*cnt] = *sym;
	(*arr)[*cnt].name = name;
	return (int)(*cnt)++;
}

struct qp_patch *qp_patch__new(void)
{
	static const struct qp_sym null_sym = { .name = "" };
	struct qp_patch *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	if (patch_push_sym(&p->src, &p->src_cnt, &p->src_cap, &null_sym) < 0 ||
	    patch_push_sym(&p->dst, &p->dst_cnt, &p->dst_cap, &null_sym) < 0) {
		qp_patch__free(p);
		return NULL;
	}
	return p;
}

void qp_patch__free(struct qp_patch *p)
{
	size_t i;

	if (!p)
		return;
	for (i = 0; i < p->sec_cnt; i++) {
		free((char *)p->secs[i].name);
		free((uint8_t *)p->secs[i].data);
	}
	for (i = 0; i < p->src_cnt; i++)
		free((char *)p->src[i].name);
	for (i = 0; i < p->dst_cnt; i++)
		free((char *)p->dst[i].name);
	free(p->secs);
	free(p->src);
	free(p->dst);
	free(p->relas);
	free(p);
}

int qp_patch__set_info(struct qp_patch *p, const struct qp_info *info)
{
	if (!p || !info)
		return -EINVAL;
	p->info = *info;
	return 0;
}

/* Copy @sec's data: SHT_PROGBITS only, and only when it has bytes. */
static int patch_copy_data(const struct qp_section *sec, uint8_t **out)
{
	*out = NULL;
	if (sec->type == SHT_NOBITS || sec->size == 0)
		return 0;
	if (!sec->data)
		return -EINVAL;
	if (sec->size > QP_MAX_SECTION_SIZE)
		return -E2BIG;
	*out = malloc(sec->size);
	if (!*out)
		return -ENOMEM;
	memcpy(*out, sec->data, sec->size);
	return 0;
}

int qp_patch__add_section(struct qp_patch *p, const struct qp_section *sec)
{
	struct qp_section *s;
	uint8_t *data;
	char *name;
	int ret;

	if (!p || !sec || !sec->name)
		return -EINVAL;
	ret = patch_grow((void **)&p->secs, &p->sec_cap, p->sec_cnt,
			 sizeof(*p->secs));
	if (ret)
		return ret;
	ret = patch_copy_data(sec, &data);
	if (ret)
		return ret;
	name = strdup(sec->name);
	if (!name) {
		free(data);
		return -ENOMEM;
	}
	s = &p->secs[p->sec_cnt];
	*s = *sec;
	s->name = name;
	s->data = data;
	return (int)p->sec_cnt++;
}

int qp_patch__add_src_sym(struct qp_patch *p, const struct qp_sym *sym)
{
	if (!p)
		return -EINVAL;
	return patch_push_sym(&p->src, &p->src_cnt, &p->src_cap, sym);
}

int qp_patch__add_dst_sym(struct qp_patch *p, const struct qp_sym *sym)
{
	if (!p)
		return -EINVAL;
	return patch_push_sym(&p->dst, &p->dst_cnt, &p->dst_cap, sym);
}

int qp_patch__add_rela(struct qp_patch *p, const struct qp_rela *rela)
{
	int ret;

	if (!p || !rela)
		return -EINVAL;
	ret = patch_grow((void **)&p->relas, &p->rela_cap, p->rela_cnt,
			 sizeof(*p->relas));
	if (ret)
		return ret;
	p->relas[p->rela_cnt] = *rela;
	return (int)p->rela_cnt++;
}

/* ---- accessors ------------------------------------------------------- */

void qp_patch__set_signature(struct qp_patch *p, const struct qp_sig_disk *sig)
{
	p->has_sig = sig != NULL;
	if (sig)
		p->sig = *sig;
}

const struct qp_sig_disk *qp_patch__signature(const struct qp_patch *p)
{
	return p->has_sig ? &p->sig : NULL;
}

const struct qp_info *qp_patch__info(const struct qp_patch *p)
{
	return &p->info;
}

size_t qp_patch__section_count(const struct qp_patch *p)
{
	return p->sec_cnt;
}

const struct qp_section *qp_patch__section(const struct qp_patch *p, size_t i)
{
	return i < p->sec_cnt ? &p->secs[i] : NULL;
}

size_t qp_patch__src_sym_count(const struct qp_patch *p)
{
	return p->src_cnt;
}

const struct qp_sym *qp_patch__src_sym(const struct qp_patch *p, size_t i)
{
	return i < p->src_cnt ? &p->src[i] : NULL;
}

size_t qp_patch__dst_sym_count(const struct qp_patch *p)
{
	return p->dst_cnt;
}

const struct qp_sym *qp_patch__dst_sym(const struct qp_patch *p, size_t i)
{
	return i < p->dst_cnt ? &p->dst[i] : NULL;
}

size_t qp_patch__rela_count(const struct qp_patch *p)
{
	return p->rela_cnt;
}

const struct qp_rela *qp_patch__rela(const struct qp_patch *p, size_t i)
{
	return i < p->rela_cnt ? &p->relas[i] : NULL;
}

/* 0 when @i or its section index is out of range (like the null symbol). */
uint64_t qp_patch__dst_sym_addr(const struct qp_patch *p, size_t i)
{
	const struct qp_sym *s = qp_patch__dst_sym(p, i);

	if (!s || s->shndx >= p->sec_cnt)
		return 0;
	return p->secs[s->shndx].addr + s->value;
}

/* ---- validation: info ------------------------------------------------ */

/* @what is a char array field of @size bytes: NUL-terminated, and
 * non-empty when @need. */
static int validate_str(const char *s, size_t size, const char *what,
			bool need, struct qp_error *err)
{
	if (!memchr(s, '\0', size))
		return qp_seterr(err, QP_EFORMAT,
				 "info: %s is not NUL-terminated within %zu bytes",
				 what, size);
	if (need && !s[0])
		return qp_seterr(err, QP_EFORMAT, "info: %s is empty", what);
	return 0;
}

static int validate_info(const struct qp_info *in, struct qp_error *err)
{
	int ret;

	if (in->version < QP_FORMAT_VERSION_MIN || in->version > QP_FORMAT_VERSION)
		return qp_seterr(err, QP_EVERSION,
				 "info: unsupported format version %u (expected %u to %u)",
				 in->version, QP_FORMAT_VERSION_MIN, QP_FORMAT_VERSION);
	if (in->flags)
		return qp_seterr(err, QP_EFORMAT,
				 "info: flags 0x%x are not 0", in->flags);
	ret = validate_str(in->id, sizeof(in->id), "id", true, err);
	if (!ret)
		ret = validate_str(in->target_name, sizeof(in->target_name),
				   "target_name", true, err);
	if (!ret)
		ret = validate_str(in->tool_version, sizeof(in->tool_version),
				   "tool_version", false, err);
	if (ret)
		return ret;
	if (in->build_id_size < 1 || in->build_id_size > QP_BUILD_ID_MAX)
		return qp_seterr(err, QP_EFORMAT,
				 "info: build_id_size %u is not in 1..%u",
				 in->build_id_size, QP_BUILD_ID_MAX);
	return 0;
}

/* ---- validation: content sections ------------------------------------ */

static bool is_pow2(uint64_t x)
{
	return x && !(x & (x - 1));
}

#define SEC_FLAGS_OK (SHF_ALLOC | SHF_EXECINSTR | SHF_WRITE)

static int validate_section(const struct qp_section *s, size_t i,
			    struct qp_error *err)
{
	const char *n = s->name;

	if (!n[0])
		return qp_seterr(err, QP_EFORMAT, "section %zu: empty name", i);
	if (s->type != SHT_PROGBITS && s->type != SHT_NOBITS)
		return qp_seterr(err, QP_EFORMAT,
				 "section '%s': type %u is neither SHT_PROGBITS nor SHT_NOBITS",
				 n, s->type);
	if (!(s->flags & SHF_ALLOC) || (s->flags & ~(uint64_t)SEC_FLAGS_OK))
		return qp_seterr(err, QP_EFORMAT,
				 "section '%s': flags 0x%llx are not SHF_ALLOC plus SHF_EXECINSTR/SHF_WRITE",
				 n, (unsigned long long)s->flags);
	if (!is_pow2(s->align) || s->align > QP_MAX_ALIGN)
		return qp_seterr(err, QP_EFORMAT,
				 "section '%s': alignment %llu is not a power of two up to %u",
				 n, (unsigned long long)s->align, QP_MAX_ALIGN);
	if (s->addr % s->align)
		return qp_seterr(err, QP_EFORMAT,
				 "section '%s': addr 0x%llx is not a multiple of its alignment %llu",
				 n, (unsigned long long)s->addr,
				 (unsigned long long)s->align);
	if (s->size > QP_MAX_SECTION_SIZE ||
	    s->addr > QP_MAX_SECTION_SIZE - s->size)
		return qp_seterr(err, QP_EFORMAT,
				 "section '%s': [0x%llx, +0x%llx) exceeds the image limit 0x%x",
				 n, (unsigned long long)s->addr,
				 (unsigned long long)s->size, QP_MAX_SECTION_SIZE);
	if (s->type == SHT_PROGBITS && s->size && !s->data)
		return qp_seterr(err, QP_EFORMAT,
				 "section '%s': no data", n);
	return 0;
}

/* Content sections that hold bytes, sorted by addr: the overlap check and
 * the relocation lookup both use it. */
struct sec_index {
	const struct qp_section **by_addr; /* non-empty sections, by addr */
	size_t cnt;                        /* entries of by_addr */
};

static int sec_cmp(const void *a, const void *b)
{
	const struct qp_section *x = *(const struct qp_section *const *)a;
	const struct qp_section *y = *(const struct qp_section *const *)b;

	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

static int sec_index_build(const struct qp_patch *p, struct sec_index *ix)
{
	size_t i;

	ix->cnt = 0;
	ix->by_addr = malloc((p->sec_cnt ? p->sec_cnt : 1) * sizeof(*ix->by_addr));
	if (!ix->by_addr)
		return -ENOMEM;
	for (i = 0; i < p->sec_cnt; i++)
		if (p->secs[i].size)
			ix->by_addr[ix->cnt++] = &p->secs[i];
	qsort(ix->by_addr, ix->cnt, sizeof(*ix->by_addr), sec_cmp);
	return 0;
}

/* The non-empty section containing image offset @off, or NULL. */
static const struct qp_section *sec_index_find(const struct sec_index *ix,
					       uint64_t off)
{
	size_t lo = 0, hi = ix->cnt;
	const struct qp_section *s;

	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;

		if (ix->by_addr[mid]->addr <= off)
			lo = mid;
		else
			hi = mid;
	}
	if (!ix->cnt)
		return NULL;
	s = ix->by_addr[lo];
	return off >= s->addr && off - s->addr < s->size ? s : NULL;
}

static int validate_sections(const struct qp_patch *p,
			     const struct sec_index *ix, struct qp_error *err)
{
	uint64_t end = 0;
	size_t i;
	int ret;

	if (p->sec_cnt > QP_MAX_SECTIONS)
		return qp_seterr(err, QP_EFORMAT,
				 "%zu content sections, more than %d",
				 p->sec_cnt, QP_MAX_SECTIONS);
	for (i = 0; i < p->sec_cnt; i++) {
		ret = validate_section(&p->secs[i], i, err);
		if (ret)
			return ret;
		if (p->secs[i].addr + p->secs[i].size > end)
			end = p->secs[i].addr + p->secs[i].size;
	}
	for (i = 1; i < ix->cnt; i++) {
		const struct qp_section *a = ix->by_addr[i - 1], *b = ix->by_addr[i];

		if (a->addr + a->size > b->addr)
			return qp_seterr(err, QP_EFORMAT,
					 "section '%s' [0x%llx, 0x%llx) overlaps section '%s' [0x%llx, 0x%llx)",
					 b->name, (unsigned long long)b->addr,
					 (unsigned long long)(b->addr + b->size),
					 a->name, (unsigned long long)a->addr,
					 (unsigned long long)(a->addr + a->size));
	}
	if (p->info.image_size != end)
		return qp_seterr(err, QP_EFORMAT,
				 "info: image_size 0x%llx does not match the end of the last section 0x%llx",
				 (unsigned long long)p->info.image_size,
				 (unsigned long long)end);
	return 0;
}

/* ---- validation: call frame information ------------------------------ */

/* The CIE at @e: exactly the form the builder writes. */
static int validate_cie(const struct qp_section *s, const struct qp_cfi_entry *e,
			struct qp_cfi_cie *cie, struct qp_error *err)
{
	char why[160];

	if (qp_cfi_parse_cie(s->data, s->size, e, cie, why, sizeof(why)))
		return qp_seterr(err, QP_EFORMAT, "section '%s': %s", s->name, why);
	if (cie->version != 1 || strcmp(cie->aug, "zR") || cie->fde_enc != QP_CFI_FDE_ENC ||
	    cie->code_align != 1 || cie->ra != 16)
		return qp_seterr(err, QP_EFORMAT,
				 "section '%s': CIE at 0x%llx is not version 1, \"zR\" with FDE encoding 0x%x, code alignment 1, return address register 16",
				 s->name, (unsigned long long)e->off, QP_CFI_FDE_ENC);
	if (qp_cfi_check_insns(cie->insns, cie->ninsns, cie, 0, why, sizeof(why)))
		return qp_seterr(err, QP_EFORMAT, "section '%s': CIE at 0x%llx: %s", s->name,
				 (unsigned long long)e->off, why);
	return 0;
}

/* The FDE at @e: covers code of one executable section, after *@next. */
static int validate_fde(const struct qp_section *s, const struct sec_index *ix,
			const struct qp_cfi_entry *e, const struct qp_cfi_cie *cie,
			uint64_t *next, struct qp_error *err)
{
	const struct qp_section *code;
	struct qp_cfi_fde f;
	char why[160];
	int64_t pc;

	if (qp_cfi_parse_fde(s->data, s->size, e, cie, &f, why, sizeof(why)))
		return qp_seterr(err, QP_EFORMAT, "section '%s': %s", s->name, why);
	if (f.insns != s->data + f.pc_off + 9 || s->data[f.pc_off + 8])
		return qp_seterr(err, QP_EFORMAT, "section '%s': FDE at 0x%llx has augmentation data",
				 s->name, (unsigned long long)e->off);
	pc = (int64_t)(s->addr + f.pc_off) + f.pc_value;
	code = pc >= 0 ? sec_index_find(ix, (uint64_t)pc) : NULL;
	if (!code || !(code->flags & SHF_EXECINSTR) || !f.pc_range ||
	    f.pc_range > code->addr + code->size - (uint64_t)pc)
		return qp_seterr(err, QP_EFORMAT,
				 "section '%s': FDE at 0x%llx: code [0x%llx, +0x%llx) is not inside an executable section",
				 s->name, (unsigned long long)e->off, (long long)pc,
				 (unsigned long long)f.pc_range);
	if ((uint64_t)pc < *next)
		return qp_seterr(err, QP_EFORMAT,
				 "section '%s': FDE at 0x%llx: code at 0x%llx is not after the previous FDE's",
				 s->name, (unsigned long long)e->off, (long long)pc);
	*next = (uint64_t)pc + f.pc_range;
	if (qp_cfi_check_insns(f.insns, f.ninsns, cie, f.pc_range, why, sizeof(why)))
		return qp_seterr(err, QP_EFORMAT, "section '%s': FDE at 0x%llx: %s", s->name,
				 (unsigned long long)e->off, why);
	return 0;
}

/* Walk the entries of .qpatch.eh_frame; @cies holds the CIEs seen (at most
 * one per 4 bytes of the section). */
static int validate_cfi_entries(const struct qp_section *s, const struct sec_index *ix,
				uint64_t *cies, struct qp_cfi_cie *cie_of, struct qp_error *err)
{
	struct qp_cfi_entry e;
	uint64_t off = 0, next = 0;
	size_t ncie = 0, i;
	char why[160];
	int ret;

	for (;;) {
		ret = qp_cfi_entry(s->data, s->size, off, &e, why, sizeof(why));
		if (ret < 0)
			return qp_seterr(err, QP_EFORMAT, "section '%s': %s", s->name, why);
		if (ret > 0)
			break;
		if (e.cie) {
			ret = validate_cie(s, &e, &cie_of[ncie], err);
			cies[ncie++] = e.off;
		} else {
			for (i = 0; i < ncie && cies[i] != e.cie_off; i++)
				;
			ret = i < ncie ? validate_fde(s, ix, &e, &cie_of[i], &next, err) :
				qp_seterr(err, QP_EFORMAT, "section '%s': FDE at 0x%llx does not point at an earlier CIE",
					  s->name, (unsigned long long)e.off);
		}
		if (ret)
			return ret;
		off += e.size;
	}
	if (off == s->size || off + 4 != s->size)
		return qp_seterr(err, QP_EFORMAT, "section '%s': does not end with exactly one zero terminator",
				 s->name);
	return 0;
}

/* The .qpatch.eh_frame section, if any: at most one, read-only data in
 * .eh_frame form whose FDEs describe the patch's own code. */
static int validate_eh_frame(const struct qp_patch *p, const struct sec_index *ix,
			     struct qp_error *err)
{
	const struct qp_section *s = NULL;
	struct qp_cfi_cie *cie_of;
	uint64_t *cies;
	size_t i;
	int ret;

	for (i = 0; i < p->sec_cnt; i++) {
		if (strcmp(p->secs[i].name, QP_SEC_EH_FRAME))
			continue;
		if (s)
			return qp_seterr(err, QP_EFORMAT, "two sections named '%s'", QP_SEC_EH_FRAME);
		s = &p->secs[i];
	}
	if (!s)
		return 0;
	if (s->type != SHT_PROGBITS || s->flags != SHF_ALLOC || s->size < 4 || s->align < 4)
		return qp_seterr(err, QP_EFORMAT,
				 "section '%s': not SHT_PROGBITS, SHF_ALLOC only, aligned to 4, at least 4 bytes",
				 s->name);
	cies = malloc((s->size / 4) * sizeof(*cies));
	cie_of = malloc((s->size / 4) * sizeof(*cie_of));
	ret = cies && cie_of ? validate_cfi_entries(s, ix, cies, cie_of, err) :
		qp_seterr(err, -ENOMEM, "out of memory");
	free(cies);
	free(cie_of);
	return ret;
}

/* ---- validation: symbols --------------------------------------------- */

static bool is_null_sym(const struct qp_sym *s)
{
	return !s->name[0] && !s->value && !s->size && !s->type && !s->bind &&
	       !s->shndx;
}

static int validate_type_bind(const struct qp_sym *s, const char *tab,
			      size_t i, bool src, struct qp_error *err)
{
	bool type_ok, bind_ok;

	switch (s->type) {
	case STT_NOTYPE: case STT_OBJECT: case STT_FUNC:
		type_ok = true;
		break;
	case STT_FILE: case STT_TLS: case STT_GNU_IFUNC:
		type_ok = src;
		break;
	default:
		type_ok = false;
	}
	bind_ok = s->bind == STB_LOCAL || s->bind == STB_GLOBAL ||
		  s->bind == STB_WEAK || (src && s->bind == STB_GNU_UNIQUE);
	if (!type_ok)
		return qp_seterr(err, QP_EFORMAT,
				 "%s symbol %zu '%s': unsupported type %u",
				 tab, i, s->name, s->type);
	if (!bind_ok)
		return qp_seterr(err, QP_EFORMAT,
				 "%s symbol %zu '%s': unsupported binding %u",
				 tab, i, s->name, s->bind);
	return 0;
}

/* Index 0 is the null symbol; locals precede everything else. */
static int validate_order(const struct qp_sym *syms, size_t cnt,
			  const char *tab, struct qp_error *err)
{
	size_t i;
	bool global = false;

	if (!cnt || !is_null_sym(&syms[0]))
		return qp_seterr(err, QP_EFORMAT,
				 "%s symbol 0 is not the null symbol", tab);
	for (i = 1; i < cnt; i++) {
		if (syms[i].bind != STB_LOCAL)
			global = true;
		else if (global)
			return qp_seterr(err, QP_EFORMAT,
					 "%s symbol %zu '%s': local symbol after a non-local one",
					 tab, i, syms[i].name);
	}
	return 0;
}

static int validate_src_sym(const struct qp_sym *s, size_t i, bool seen_file,
			    struct qp_error *err)
{
	int ret = validate_type_bind(s, "src", i, true, err);

	if (ret)
		return ret;
	if (s->type == STT_FILE) {
		if (s->bind != STB_LOCAL || s->shndx != SHN_ABS || s->value ||
		    !s->name[0])
			return qp_seterr(err, QP_EFORMAT,
					 "src symbol %zu '%s': STT_FILE symbol must be named, STB_LOCAL, SHN_ABS, value 0",
					 i, s->name);
		return 0;
	}
	if (s->shndx != QP_SRC_IN_TARGET && s->shndx != QP_SRC_EXTERNAL)
		return qp_seterr(err, QP_EFORMAT,
				 "src symbol %zu '%s': shndx 0x%x is neither QP_SRC_IN_TARGET nor QP_SRC_EXTERNAL",
				 i, s->name, s->shndx);
	if (s->shndx == QP_SRC_EXTERNAL && !s->name[0])
		return qp_seterr(err, QP_EFORMAT,
				 "src symbol %zu: external symbol without a name", i);
	if (s->bind == STB_LOCAL && s->shndx != QP_SRC_IN_TARGET)
		return qp_seterr(err, QP_EFORMAT,
				 "src symbol %zu '%s': local symbol is not QP_SRC_IN_TARGET",
				 i, s->name);
	if (s->bind == STB_LOCAL && !seen_file)
		return qp_seterr(err, QP_EFORMAT,
				 "src symbol %zu '%s': local symbol not preceded by an STT_FILE symbol",
				 i, s->name);
	return 0;
}

static int validate_src_syms(const struct qp_patch *p, struct qp_error *err)
{
	bool seen_file = false;
	size_t i;
	int ret = validate_order(p->src, p->src_cnt, "src", err);

	for (i = 1; !ret && i < p->src_cnt; i++) {
		ret = validate_src_sym(&p->src[i], i, seen_file, err);
		seen_file |= p->src[i].type == STT_FILE;
	}
	return ret;
}

static int validate_dst_sym(const struct qp_patch *p, size_t i,
			    struct qp_error *err)
{
	const struct qp_sym *s = &p->dst[i];
	const struct qp_section *sec;
	int ret = validate_type_bind(s, "dst", i, false, err);

	if (ret)
		return ret;
	if (s->shndx >= p->sec_cnt)
		return qp_seterr(err, QP_EFORMAT,
				 "dst symbol %zu '%s': section index %u out of range (%zu sections)",
				 i, s->name, s->shndx, p->sec_cnt);
	sec = &p->secs[s->shndx];
	if (s->value > sec->size || s->size > sec->size - s->value)
		return qp_seterr(err, QP_EFORMAT,
				 "dst symbol %zu '%s': [0x%llx, +0x%llx) is outside section '%s' (size 0x%llx)",
				 i, s->name, (unsigned long long)s->value,
				 (unsigned long long)s->size, sec->name,
				 (unsigned long long)sec->size);
	if (s->type == STT_FUNC && !(sec->flags & SHF_EXECINSTR))
		return qp_seterr(err, QP_EFORMAT,
				 "dst symbol %zu '%s': function in non-executable section '%s'",
				 i, s->name, sec->name);
	return 0;
}

static int validate_dst_syms(const struct qp_patch *p, struct qp_error *err)
{
	size_t i;
	int ret = validate_order(p->dst, p->dst_cnt, "dst", err);

	for (i = 1; !ret && i < p->dst_cnt; i++)
		ret = validate_dst_sym(p, i, err);
	return ret;
}

/* ---- validation: relocations ----------------------------------------- */

static int validate_replace(const struct qp_patch *p, const struct qp_rela *r,
			    size_t i, struct qp_error *err)
{
	const struct qp_sym *old = &p->src[r->sym], *new;
	uint64_t at;
	size_t j;

	if (old->type != STT_FUNC && old->type != STT_GNU_IFUNC)
		return qp_seterr(err, QP_EFORMAT,
				 "relocation %zu (QP_R_REPLACE): src symbol %u '%s' is not a function",
				 i, r->sym, old->name);
	if (r->addend < 1 || (uint64_t)r->addend >= p->dst_cnt)
		return qp_seterr(err, QP_EFORMAT,
				 "relocation %zu (QP_R_REPLACE): dst symbol index %lld out of range (%zu symbols)",
				 i, (long long)r->addend, p->dst_cnt);
	new = &p->dst[r->addend];
	if (new->type != STT_FUNC)
		return qp_seterr(err, QP_EFORMAT,
				 "relocation %zu (QP_R_REPLACE): dst symbol %lld '%s' is not a function",
				 i, (long long)r->addend, new->name);
	for (j = 0; j < i; j++)
		if (p->relas[j].type == QP_R_REPLACE && p->relas[j].sym == r->sym)
			return qp_seterr(err, QP_EFORMAT,
					 "relocation %zu (QP_R_REPLACE): '%s' is already replaced by relocation %zu",
					 i, old->name, j);
	at = qp_patch__dst_sym_addr(p, (size_t)r->addend);
	if (r->offset != at)
		return qp_seterr(err, QP_EFORMAT,
				 "relocation %zu (QP_R_REPLACE): offset 0x%llx is not the address 0x%llx of dst symbol '%s'",
				 i, (unsigned long long)r->offset,
				 (unsigned long long)at, new->name);
	return 0;
}

static int validate_busy(const struct qp_patch *p, const struct qp_rela *r, size_t i,
			 struct qp_error *err)
{
	const struct qp_sym *part = &p->src[r->sym];
	size_t j;

	if (part->type != STT_FUNC || part->shndx != QP_SRC_IN_TARGET || !part->size)
		return qp_seterr(err, QP_EFORMAT,
				 "relocation %zu (QP_R_BUSY): src symbol %u '%s' is not a function of the target with a size",
				 i, r->sym, part->name);
	if (r->offset)
		return qp_seterr(err, QP_EFORMAT, "relocation %zu (QP_R_BUSY): offset 0x%llx is not 0",
				 i, (unsigned long long)r->offset);
	for (j = 0; j < p->rela_cnt; j++)
		if (p->relas[j].type == QP_R_REPLACE && r->addend > 0 &&
		    (uint64_t)r->addend == p->relas[j].sym)
			return 0;
	return qp_seterr(err, QP_EFORMAT,
			 "relocation %zu (QP_R_BUSY): addend %lld names no src symbol this patch replaces",
			 i, (long long)r->addend);
}

/* QP_R_ROOM and QP_R_CALLS (@what) name a function of the target with
 * a size ... */
static int validate_target_func(const struct qp_patch *p, const struct qp_rela *r, size_t i,
				const char *what, struct qp_error *err)
{
	const struct qp_sym *f = &p->src[r->sym];

	if (f->type != STT_FUNC || f->shndx != QP_SRC_IN_TARGET || !f->size)
		return qp_seterr(err, QP_EFORMAT,
				 "relocation %zu (%s): src symbol %u '%s' is not a function of the target with a size",
				 i, what, r->sym, f->name);
	return 0;
}

/* ... which this patch replaces. */
static int validate_replaced(const struct qp_patch *p, const struct qp_rela *r, size_t i,
			     const char *what, struct qp_error *err)
{
	size_t j;

	for (j = 0; j < p->rela_cnt; j++)
		if (p->relas[j].type == QP_R_REPLACE && p->relas[j].sym == r->sym)
			return 0;
	return qp_seterr(err, QP_EFORMAT, "relocation %zu (%s): '%s' is not replaced by this patch",
			 i, what, p->src[r->sym].name);
}

static int validate_room(const struct qp_patch *p, const struct qp_rela *r, size_t i,
			 struct qp_error *err)
{
	const struct qp_sym *f = &p->src[r->sym];
	size_t j;
	int ret = validate_target_func(p, r, i, "QP_R_ROOM", err);

	if (ret)
		return ret;
	if (r->offset)
		return qp_seterr(err, QP_EFORMAT, "relocation %zu (QP_R_ROOM): offset 0x%llx is not 0",
				 i, (unsigned long long)r->offset);
	if (r->addend < 1 || r->addend > QP_ROOM_MAX)
		return qp_seterr(err, QP_EFORMAT, "relocation %zu (QP_R_ROOM): addend %lld is not in 1..%d",
				 i, (long long)r->addend, QP_ROOM_MAX);
	for (j = 0; j < i; j++)
		if (p->relas[j].type == QP_R_ROOM && p->relas[j].sym == r->sym)
			return qp_seterr(err, QP_EFORMAT,
					 "relocation %zu (QP_R_ROOM): '%s' has room given twice",
					 i, f->name);
	return validate_replaced(p, r, i, "QP_R_ROOM", err);
}

/* QP_R_CALLS: a replaced function of the target, once, without room. */
static int validate_calls(const struct qp_patch *p, const struct qp_rela *r, size_t i,
			  struct qp_error *err)
{
	const struct qp_sym *f = &p->src[r->sym];
	size_t j;
	int ret = validate_target_func(p, r, i, "QP_R_CALLS", err);

	if (ret)
		return ret;
	if (r->offset || r->addend)
		return qp_seterr(err, QP_EFORMAT,
				 "relocation %zu (QP_R_CALLS): offset 0x%llx and addend %lld are not 0",
				 i, (unsigned long long)r->offset, (long long)r->addend);
	for (j = 0; j < p->rela_cnt; j++)
		if (j != i && (p->relas[j].type == QP_R_CALLS || p->relas[j].type == QP_R_ROOM) &&
		    p->relas[j].sym == r->sym)
			return qp_seterr(err, QP_EFORMAT,
					 "relocation %zu (QP_R_CALLS): '%s' is also named by relocation %zu (%s)",
					 i, f->name, j, qp_rela_type_name(p->relas[j].type));
	return validate_replaced(p, r, i, "QP_R_CALLS", err);
}

static int validate_field(const struct sec_index *ix, const struct qp_rela *r,
			  const struct patch_rtype *rt, size_t i,
			  struct qp_error *err)
{
	const struct qp_section *s = sec_index_find(ix, r->offset);

	if (!s)
		return qp_seterr(err, QP_EFORMAT,
				 "relocation %zu (%s): offset 0x%llx is not inside any content section",
				 i, rt->name, (unsigned long long)r->offset);
	if (s->type != SHT_PROGBITS)
		return qp_seterr(err, QP_EFORMAT,
				 "relocation %zu (%s): offset 0x%llx is in SHT_NOBITS section '%s'",
				 i, rt->name, (unsigned long long)r->offset, s->name);
	if (!strcmp(s->name, QP_SEC_EH_FRAME))
		return qp_seterr(err, QP_EFORMAT,
				 "relocation %zu (%s): offset 0x%llx is in section '%s', which is resolved",
				 i, rt->name, (unsigned long long)r->offset, s->name);
	if (rt->width > s->addr + s->size - r->offset)
		return qp_seterr(err, QP_EFORMAT,
				 "relocation %zu (%s): %u-byte field at 0x%llx crosses the end of section '%s'",
				 i, rt->name, rt->width,
				 (unsigned long long)r->offset, s->name);
	return 0;
}

static int validate_rela(const struct qp_patch *p, const struct sec_index *ix,
			 size_t i, struct qp_error *err)
{
	const struct qp_rela *r = &p->relas[i];
	const struct patch_rtype *rt = patch_rtype(r->type);

	if (!rt)
		return qp_seterr(err, QP_EFORMAT,
				 "relocation %zu: unsupported type 0x%x", i, r->type);
	if (r->type == R_X86_64_RELATIVE || r->type == QP_R_IMAGE32 || r->type == QP_R_IMAGE32S) {
		if (r->sym)
			return qp_seterr(err, QP_EFORMAT,
					 "relocation %zu (%s): symbol index %u is not 0",
					 i, rt->name, r->sym);
	} else if (r->sym < 1 || r->sym >= p->src_cnt) {
		return qp_seterr(err, QP_EFORMAT,
				 "relocation %zu (%s): symbol index %u out of range (%zu src symbols)",
				 i, rt->name, r->sym, p->src_cnt);
	} else if (p->src[r->sym].type == STT_FILE) {
		return qp_seterr(err, QP_EFORMAT,
				 "relocation %zu (%s): symbol %u '%s' is an STT_FILE symbol",
				 i, rt->name, r->sym, p->src[r->sym].name);
	} else if (r->type != QP_R_REPLACE && r->type != QP_R_BUSY && r->type != QP_R_ROOM &&
		   r->type != QP_R_CALLS && qp_rela_is_tls(r->type) != (p->src[r->sym].type == STT_TLS)) {
		/* a thread-local access names a thread-local variable, and only
		 * such an access does: its value is an offset, not an address */
		return qp_seterr(err, QP_EFORMAT,
				 "relocation %zu (%s): symbol %u '%s' is %sa thread-local variable",
				 i, rt->name, r->sym, p->src[r->sym].name,
				 qp_rela_is_tls(r->type) ? "not " : "");
	}
	if (r->type == QP_R_REPLACE)
		return validate_replace(p, r, i, err);
	if (r->type == QP_R_BUSY)
		return validate_busy(p, r, i, err);
	if (r->type == QP_R_ROOM)
		return validate_room(p, r, i, err);
	if (r->type == QP_R_CALLS)
		return validate_calls(p, r, i, err);
	return validate_field(ix, r, rt, i, err);
}

int qp_patch__validate(const struct qp_patch *p, struct qp_error *err)
{
	struct sec_index ix;
	size_t i;
	int ret;

	if (!p)
		return qp_seterr(err, -EINVAL, "no patch");
	ret = validate_info(&p->info, err);
	if (ret)
		return ret;
	if (sec_index_build(p, &ix))
		return qp_seterr(err, -ENOMEM, "out of memory");
	ret = validate_sections(p, &ix, err);
	if (!ret)
		ret = validate_eh_frame(p, &ix, err);
	if (!ret)
		ret = validate_src_syms(p, err);
	if (!ret)
		ret = validate_dst_syms(p, err);
	for (i = 0; !ret && i < p->rela_cnt; i++)
		ret = validate_rela(p, &ix, i, err);
	free(ix.by_addr);
	return ret;
}
