// SPDX-License-Identifier: MIT
/*
 * Read-only ELF model: see qpatch/elf.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qpatch/elf.h"

#define elf_err(err, code, e, what)                                         \
	qp_seterr(err, code, "'%s': %s: %s", (e)->path, what, elf_errmsg(-1))

static int elf_ensure_version(void)
{
	static int done; /* libelf wants this once; idempotent, race-harmless */

	if (!done) {
		if (elf_version(EV_CURRENT) == EV_NONE)
			return -ENOTSUP;
		done = 1;
	}
	return 0;
}

/* Names are hashed up to a '@' so "stderr@GLIBC_2.2.5" hashes like "stderr". */
static uint32_t elf_base_hash(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s && *s != '@'; s++)
		h = (h ^ (uint8_t)*s) * 16777619u;
	return h;
}

static int elf_build_hash(struct qp_elf *e)
{
	size_t i, n = 16;

	while (n < e->nsyms * 2)
		n <<= 1;
	e->hash = calloc(n, sizeof(*e->hash));
	if (!e->hash)
		return -ENOMEM;
	e->hash_size = n;
	for (i = 1; i < e->nsyms; i++) {
		size_t slot;

		if (!e->syms[i].name[0])
			continue;
		slot = elf_base_hash(e->syms[i].name) & (n - 1);
		while (e->hash[slot])
			slot = (slot + 1) & (n - 1);
		e->hash[slot] = (uint32_t)i + 1;
	}
	return 0;
}

static int elf_read_sections(struct qp_elf *e, struct qp_error *err)
{
	size_t shstrndx, i;
	Elf_Scn *scn = NULL;

	if (elf_getshdrnum(e->elf, &e->nsecs) || elf_getshdrstrndx(e->elf, &shstrndx))
		return elf_err(err, -EINVAL, e, "cannot read section headers");
	e->secs = calloc(e->nsecs ? e->nsecs : 1, sizeof(*e->secs));
	if (!e->secs)
		return -ENOMEM;
	for (i = 1; i < e->nsecs; i++) {
		struct qp_elf_sec *s = &e->secs[i];
		Elf_Data *d;

		scn = elf_getscn(e->elf, i);
		if (!scn || !gelf_getshdr(scn, &s->shdr))
			return elf_err(err, -EINVAL, e, "cannot read section header");
		s->index = i;
		s->name = elf_strptr(e->elf, shstrndx, s->shdr.sh_name);
		if (!s->name)
			s->name = "";
		s->size = s->shdr.sh_size;
		if (s->shdr.sh_type == SHT_NOBITS || !s->size)
			continue;
		d = elf_rawdata(scn, NULL);
		if (!d || d->d_size != s->size)
			return qp_seterr(err, -EINVAL, "'%s': section '%s': cannot read data: %s",
					 e->path, s->name, elf_errmsg(-1));
		s->data = d->d_buf;
	}
	return 0;
}

static int elf_read_build_id_notes(struct qp_elf *e)
{
	struct qp_elf_sec *s;

	qp_elf_for_each_sec(e, s) {
		size_t off = 0, name_off, desc_off;
		GElf_Nhdr nh;
		Elf_Data d = { .d_buf = (void *)s->data, .d_size = s->size,
			       .d_type = ELF_T_NHDR, .d_version = EV_CURRENT };

		if (s->shdr.sh_type != SHT_NOTE || !s->data)
			continue;
		while ((off = gelf_getnote(&d, off, &nh, &name_off, &desc_off)) > 0) {
			if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == 4 &&
			    !memcmp((const char *)s->data + name_off, "GNU", 4) &&
			    nh.n_descsz && nh.n_descsz <= sizeof(e->build_id)) {
				memcpy(e->build_id, s->data + desc_off, nh.n_descsz);
				e->build_id_size = nh.n_descsz;
				return 0;
			}
		}
	}
	return 0;
}

static struct qp_elf_sec *elf_symtab_sec(struct qp_elf *e, unsigned flags)
{
	struct qp_elf_sec *s, *dyn = NULL, *tab = NULL;

	qp_elf_for_each_sec(e, s) {
		if (s->shdr.sh_type == SHT_SYMTAB)
			tab = s;
		else if (s->shdr.sh_type == SHT_DYNSYM)
			dyn = s;
	}
	if ((flags & QP_ELF_DYNSYM) && dyn)
		return dyn;
	return tab ? tab : dyn;
}

static int elf_read_symbols(struct qp_elf *e, unsigned flags, struct qp_error *err)
{
	struct qp_elf_sec *st = elf_symtab_sec(e, flags);
	Elf_Data *d, *xd = NULL;
	const char *file = NULL;
	size_t i, file_index = 0;
	Elf_Scn *scn;

	if (!st)
		return 0; /* stripped: no symbols, callers decide */
	e->dynamic = st->shdr.sh_type == SHT_DYNSYM;
	scn = elf_getscn(e->elf, st->index);
	d = scn ? elf_getdata(scn, NULL) : NULL;
	if (!d || !st->shdr.sh_entsize)
		return elf_err(err, -EINVAL, e, "cannot read symbol table");
	for (i = 1; i < e->nsecs; i++)
		if (e->secs[i].shdr.sh_type == SHT_SYMTAB_SHNDX &&
		    e->secs[i].shdr.sh_link == st->index)
			xd = elf_getdata(elf_getscn(e->elf, i), NULL);
	e->nsyms = st->size / st->shdr.sh_entsize;
	e->syms = calloc(e->nsyms ? e->nsyms : 1, sizeof(*e->syms));
	if (!e->syms)
		return -ENOMEM;
	for (i = 0; i < e->nsyms; i++) {
		struct qp_elf_sym *s = &e->syms[i];
		GElf_Word xndx = 0;
		GElf_Sym sym;

		if (!gelf_getsymshndx(d, xd, (int)i, &sym, &xndx))
			return elf_err(err, -EINVAL, e, "cannot read symbol");
		s->index = i;
		s->name = elf_strptr(e->elf, st->shdr.sh_link, sym.st_name);
		if (!s->name)
			s->name = "";
		s->value = sym.st_value;
		s->size = sym.st_size;
		s->type = GELF_ST_TYPE(sym.st_info);
		s->bind = GELF_ST_BIND(sym.st_info);
		s->other = sym.st_other;
		s->shndx = sym.st_shndx == SHN_XINDEX ? (uint16_t)xndx : sym.st_shndx;
		if (s->shndx != SHN_UNDEF && s->shndx < e->nsecs &&
		    sym.st_shndx < SHN_LORESERVE) {
			s->sec = &e->secs[s->shndx];
			if (s->type == STT_SECTION && !s->sec->sym)
				s->sec->sym = s;
		}
		if (s->type == STT_FILE) {
			file = s->name;
			file_index = i;
		} else if (s->bind == STB_LOCAL && i) {
			s->file = file;
			s->file_index = file_index;
		}
	}
	return elf_build_hash(e);
}

static int elf_read_relas(struct qp_elf *e, struct qp_error *err)
{
	struct qp_elf_sec *rs;

	qp_elf_for_each_sec(e, rs) {
		struct qp_elf_sec *target;
		Elf_Data *d;
		size_t i, n;

		if (rs->shdr.sh_type != SHT_RELA || !(rs->shdr.sh_flags & SHF_INFO_LINK) ||
		    rs->shdr.sh_info >= e->nsecs || !e->syms)
			continue;
		target = &e->secs[rs->shdr.sh_info];
		d = elf_getdata(elf_getscn(e->elf, rs->index), NULL);
		if (!d || !rs->shdr.sh_entsize)
			return elf_err(err, -EINVAL, e, "cannot read relocations");
		n = rs->size / rs->shdr.sh_entsize;
		target->relas = calloc(n ? n : 1, sizeof(*target->relas));
		if (!target->relas)
			return -ENOMEM;
		target->nrelas = n;
		for (i = 0; i < n; i++) {
			struct qp_elf_rela *r = &target->relas[i];
			size_t symi;
			GElf_Rela rela;

			if (!gelf_getrela(d, (int)i, &rela))
				return elf_err(err, -EINVAL, e, "cannot read relocation");
			symi = GELF_R_SYM(rela.r_info);
			if (symi >= e->nsyms)
				return qp_seterr(err, -EINVAL, "'%s': section '%s': relocation %zu names symbol %zu of %zu",
						 e->path, rs->name, i, symi, e->nsyms);
			r->offset = rela.r_offset;
			r->type = GELF_R_TYPE(rela.r_info);
			r->sym = symi ? &e->syms[symi] : NULL;
			r->addend = rela.r_addend;
		}
	}
	return 0;
}

int qp_elf__open(const char *path, unsigned flags, struct qp_elf **out,
		 struct qp_error *err)
{
	struct qp_elf *e;
	int ret;

	*out = NULL;
	if (elf_ensure_version())
		return qp_seterr(err, -ENOTSUP, "libelf: %s", elf_errmsg(-1));
	e = calloc(1, sizeof(*e));
	if (!e)
		return qp_seterr(err, -ENOMEM, "out of memory");
	e->fd = -1;
	e->path = strdup(path);
	if (!e->path) {
		ret = qp_seterr(err, -ENOMEM, "out of memory");
		goto fail;
	}
	e->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (e->fd < 0) {
		ret = qp_seterr(err, -errno, "unable to open '%s': %s", path, strerror(errno));
		goto fail;
	}
	e->elf = elf_begin(e->fd, ELF_C_READ_MMAP, NULL);
	if (!e->elf || elf_kind(e->elf) != ELF_K_ELF || !gelf_getehdr(e->elf, &e->ehdr)) {
		ret = qp_seterr(err, -ENOEXEC, "'%s': not an ELF file", path);
		goto fail;
	}
	if (e->ehdr.e_ident[EI_CLASS] != ELFCLASS64 || e->ehdr.e_machine != EM_X86_64) {
		ret = qp_seterr(err, -ENOEXEC, "'%s': not an x86-64 ELF64 file", path);
		goto fail;
	}
	ret = elf_read_sections(e, err);
	if (!ret)
		ret = elf_read_symbols(e, flags, err);
	if (!ret && !(flags & QP_ELF_NO_RELAS))
		ret = elf_read_relas(e, err);
	if (!ret)
		ret = elf_read_build_id_notes(e);
	if (ret)
		goto fail;
	*out = e;
	return 0;
fail:
	if (ret == -ENOMEM)
		qp_seterr(err, ret, "out of memory");
	qp_elf__free(e);
	return ret;
}

int qp_elf__new_empty(const char *name, struct qp_elf **out, struct qp_error *err)
{
	struct qp_elf *e = calloc(1, sizeof(*e));

	*out = NULL;
	if (e) {
		e->fd = -1;
		e->path = strdup(name);
		e->secs = calloc(1, sizeof(*e->secs));
		e->syms = calloc(1, sizeof(*e->syms));
		e->nsecs = e->nsyms = 1;
	}
	if (!e || !e->path || !e->secs || !e->syms) {
		qp_elf__free(e);
		return qp_seterr(err, -ENOMEM, "out of memory");
	}
	e->syms[0].name = "";
	e->secs[0].name = "";
	*out = e;
	return 0;
}

void qp_elf__free(struct qp_elf *e)
{
	size_t i;

	if (!e)
		return;
	for (i = 0; i < e->nsecs; i++)
		free(e->secs[i].relas);
	free(e->secs);
	free(e->syms);
	free(e->hash);
	if (e->elf)
		elf_end(e->elf);
	if (e->fd >= 0)
		close(e->fd);
	free(e->path);
	free(e);
}

static bool elf_name_matches(const char *symname, const char *name, bool versioned)
{
	size_t n = strlen(name);

	if (strncmp(symname, name, n))
		return false;
	return !symname[n] || (versioned && symname[n] == '@');
}

int qp_elf__for_each_named(const struct qp_elf *e, const char *name,
			   int (*fn)(struct qp_elf_sym *sym, void *arg), void *arg)
{
	size_t slot;
	int ret;

	if (!e->hash_size)
		return 0;
	slot = elf_base_hash(name) & (e->hash_size - 1);
	for (; e->hash[slot]; slot = (slot + 1) & (e->hash_size - 1)) {
		struct qp_elf_sym *s = &e->syms[e->hash[slot] - 1];

		if (strcmp(s->name, name))
			continue;
		ret = fn(s, arg);
		if (ret)
			return ret;
	}
	return 0;
}

static struct qp_elf_sym *elf_lookup(const struct qp_elf *e, const char *name,
				     bool globals_only, bool versioned)
{
	struct qp_elf_sym *local = NULL;
	size_t slot;

	if (!e->hash_size)
		return NULL;
	slot = elf_base_hash(name) & (e->hash_size - 1);
	for (; e->hash[slot]; slot = (slot + 1) & (e->hash_size - 1)) {
		struct qp_elf_sym *s = &e->syms[e->hash[slot] - 1];

		if (!qp_sym_is_defined(s) || !elf_name_matches(s->name, name, versioned))
			continue;
		if (s->bind != STB_LOCAL)
			return s;
		if (!local)
			local = s;
	}
	return globals_only ? NULL : local;
}

struct qp_elf_sym *qp_elf__find_sym(const struct qp_elf *e, const char *name)
{
	return elf_lookup(e, name, false, false);
}

struct qp_elf_sym *qp_elf__find_global(const struct qp_elf *e, const char *name)
{
	return elf_lookup(e, name, true, true);
}

struct qp_elf_sec *qp_elf__find_sec(const struct qp_elf *e, const char *name)
{
	size_t i;

	for (i = 1; i < e->nsecs; i++)
		if (!strcmp(e->secs[i].name, name))
			return &e->secs[i];
	return NULL;
}

int qp_elf_read_build_id(const char *path, uint8_t *buf, size_t bufsz,
			 size_t *len, struct qp_error *err)
{
	struct qp_elf *e;
	int ret;

	ret = qp_elf__open(path, QP_ELF_NO_RELAS | QP_ELF_DYNSYM, &e, err);
	if (ret)
		return ret;
	*len = e->build_id_size < bufsz ? e->build_id_size : bufsz;
	memcpy(buf, e->build_id, *len);
	qp_elf__free(e);
	return 0;
}

uint64_t qp_elf__first_load_vaddr(const struct qp_elf *e)
{
	uint64_t lowest = UINT64_MAX;
	size_t i, n;

	if (elf_getphdrnum(e->elf, &n))
		return 0;
	for (i = 0; i < n; i++) {
		GElf_Phdr ph;

		if (gelf_getphdr(e->elf, (int)i, &ph) && ph.p_type == PT_LOAD &&
		    ph.p_vaddr < lowest)
			lowest = ph.p_vaddr;
	}
	return lowest == UINT64_MAX ? 0 : lowest & ~(uint64_t)0xfff;
}

void qp_hex(const uint8_t *buf, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < len; i++) {
		out[2 * i] = digits[buf[i] >> 4];
		out[2 * i + 1] = digits[buf[i] & 15];
	}
	out[2 * len] = '\0';
}
