// SPDX-License-Identifier: MIT
/*
 * Writing a qp_patch as a .qpatch ELF file (docs/format.md): validate, lay
 * the sections out in their fixed order with libelf, compress content with
 * zstd, and write to a temporary file renamed over @path, or to a memfd read
 * back into a buffer.  The format version is the model's (info.version):
 * version 2 (what the builder makes) has a variable-length info block,
 * compresses a section only where that makes it smaller, and keeps the
 * names of the symbols of both tables in .shstrtab; version 1 is written
 * as it always was, so that tests can make version 1 files.
 */
#include <errno.h>
#include <fcntl.h>
#include <libelf.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include "qpatch/file.h"
#include "qpatch/format.h"

#define WRITER_ZSTD_LEVEL 9

/* A growing ELF string table; offset 0 holds the empty string.  With
 * @dedup, a string added twice is stored once (a hash of the offsets). */
struct strtab {
	char *buf;       /* contents */
	size_t len;      /* bytes used */
	size_t cap;      /* bytes allocated */
	bool dedup;      /* look strings up before adding them */
	uint32_t *slots; /* open addressing: offset of a string, 0 = free */
	size_t nslots;   /* power of two, or 0 */
	size_t used;     /* slots in use */
};

/* State of one write. */
struct writer {
	const struct qp_patch *p; /* the (validated) patch */
	Elf *elf;                 /* ELF_C_WRITE descriptor */
	struct qp_error *err;     /* where messages go */
	struct strtab shstr;      /* .shstrtab being built */
	void **bufs;              /* buffers libelf points at until elf_update */
	size_t nbufs;             /* used entries of bufs */
	size_t base;              /* ELF index of .qpatch.symtab.src */
	bool v1;                  /* write format version 1 */
};

/* Template of a section header; sh_name, sh_offset, sh_size are derived. */
struct sec_tmpl {
	const char *name;    /* section name */
	uint32_t type;       /* sh_type */
	uint64_t flags;      /* sh_flags */
	uint64_t addr;       /* sh_addr */
	uint32_t link;       /* sh_link */
	uint32_t info;       /* sh_info */
	uint64_t entsize;    /* sh_entsize */
	uint64_t addralign;  /* sh_addralign */
	Elf_Type dtype;      /* type of the one Elf_Data */
	void *buf;           /* its bytes, NULL for SHT_NOBITS */
	size_t size;         /* its size */
};

static uint64_t strtab_hash(const char *s)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */

	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 1099511628211ull;
	return h;
}

/* The slot of @s in t->slots: where it is, or the free one it goes to. */
static uint32_t *strtab_slot(struct strtab *t, const char *s)
{
	size_t i = (size_t)strtab_hash(s) & (t->nslots - 1);

	while (t->slots[i] && strcmp(t->buf + t->slots[i], s))
		i = (i + 1) & (t->nslots - 1);
	return &t->slots[i];
}

/* Keep the hash at most half full. */
static int strtab_grow(struct strtab *t)
{
	size_t i, old = t->nslots;
	uint32_t *prev = t->slots;

	if (2 * (t->used + 1) <= t->nslots)
		return 0;
	t->nslots = old ? 2 * old : 64;
	t->slots = calloc(t->nslots, sizeof(*t->slots));
	if (!t->slots) {
		t->slots = prev;
		t->nslots = old;
		return -ENOMEM;
	}
	for (i = 0; i < old; i++)
		if (prev[i])
			*strtab_slot(t, t->buf + prev[i]) = prev[i];
	free(prev);
	return 0;
}

static void strtab_release(struct strtab *t)
{
	free(t->buf);
	free(t->slots);
	memset(t, 0, sizeof(*t));
}

static int strtab_add(struct strtab *t, const char *s, uint32_t *off)
{
	size_t n = strlen(s) + 1;
	uint32_t *slot = NULL;

	if (s[0] && t->dedup && t->len) {
		if (strtab_grow(t))
			return -ENOMEM;
		slot = strtab_slot(t, s);
		if (*slot) {
			*off = *slot;
			return 0;
		}
	}

	if (t->len + n > UINT32_MAX)
		return -E2BIG;
	if (t->len + n > t->cap) {
		size_t ncap = t->cap ? t->cap : 64;
		char *nb;

		while (ncap < t->len + n)
			ncap *= 2;
		nb = realloc(t->buf, ncap);
		if (!nb)
			return -ENOMEM;
		t->buf = nb;
		t->cap = ncap;
	}
	if (!t->len)
		t->buf[t->len++] = '\0';
	if (!s[0]) {
		*off = 0;
		return 0;
	}
	memcpy(t->buf + t->len, s, n);
	*off = (uint32_t)t->len;
	t->len += n;
	if (t->dedup && !slot) { /* the first string: the hash starts now */
		if (strtab_grow(t))
			return -ENOMEM;
		slot = strtab_slot(t, s);
	}
	if (slot) {
		*slot = *off;
		t->used++;
	}
	return 0;
}

/* Hand @buf to the writer, which frees it after elf_end(). */
static void *writer_keep(struct writer *w, void *buf)
{
	if (buf)
		w->bufs[w->nbufs++] = buf;
	return buf;
}

static int writer_elferr(struct writer *w, const char *sec, const char *call)
{
	return qp_seterr(w->err, -EIO, "section '%s': %s: %s", sec, call,
			 elf_errmsg(-1));
}

/* Add section @t whose name is at offset @name of .shstrtab. */
static int writer_add_at(struct writer *w, const struct sec_tmpl *t,
			 uint32_t name)
{
	Elf_Scn *scn;
	Elf64_Shdr *sh;
	Elf_Data *d;

	scn = elf_newscn(w->elf);
	if (!scn)
		return writer_elferr(w, t->name, "elf_newscn");
	sh = elf64_getshdr(scn);
	if (!sh)
		return writer_elferr(w, t->name, "elf64_getshdr");
	sh->sh_name = name;
	sh->sh_type = t->type;
	sh->sh_flags = t->flags;
	sh->sh_addr = t->addr;
	sh->sh_size = t->size;
	sh->sh_link = t->link;
	sh->sh_info = t->info;
	sh->sh_entsize = t->entsize;
	sh->sh_addralign = t->addralign;
	d = elf_newdata(scn);
	if (!d)
		return writer_elferr(w, t->name, "elf_newdata");
	d->d_buf = t->buf;
	d->d_size = t->size;
	d->d_type = t->dtype;
	d->d_align = t->dtype == ELF_T_BYTE ? 1 : 8;
	d->d_version = EV_CURRENT;
	return 0;
}

static int writer_add(struct writer *w, const struct sec_tmpl *t)
{
	uint32_t name;

	if (strtab_add(&w->shstr, t->name, &name))
		return qp_seterr(w->err, -ENOMEM, "out of memory");
	return writer_add_at(w, t, name);
}

/* ---- .qpatch.info ---------------------------------------------------- */

/* Version 2: the header, then the bytes of the strings, no padding. */
static int writer_info2(struct writer *w)
{
	const struct qp_info *in = qp_patch__info(w->p);
	size_t id = strlen(in->id), name = strlen(in->target_name);
	size_t tool = strlen(in->tool_version);
	struct qp_info2_disk h = {
		.version = in->version, .flags = in->flags,
		.build_id_size = (uint8_t)in->build_id_size,
		.id_len = (uint8_t)id, .target_name_len = (uint8_t)name,
		.tool_version_len = (uint8_t)tool,
	};
	size_t size = sizeof(h) + in->build_id_size + id + name + tool;
	uint8_t *d = writer_keep(w, malloc(size)), *at;
	struct sec_tmpl t = {
		.name = QP_SEC_INFO, .type = SHT_PROGBITS, .addralign = 1,
		.dtype = ELF_T_BYTE, .buf = d, .size = size,
	};

	if (!d)
		return qp_seterr(w->err, -ENOMEM, "out of memory");
	/* validated: the lengths fit their fields */
	memcpy(h.magic, QP_INFO_MAGIC, sizeof(h.magic));
	memcpy(d, &h, sizeof(h));
	at = d + sizeof(h);
	memcpy(at, in->build_id, in->build_id_size);
	at += in->build_id_size;
	memcpy(at, in->id, id);
	memcpy(at + id, in->target_name, name);
	memcpy(at + id + name, in->tool_version, tool);
	return writer_add(w, &t);
}

static int writer_info(struct writer *w)
{
	const struct qp_info *in = qp_patch__info(w->p);
	struct qp_info_disk *d = writer_keep(w, calloc(1, sizeof(*d)));
	struct sec_tmpl t = {
		.name = QP_SEC_INFO, .type = SHT_PROGBITS, .addralign = 8,
		.dtype = ELF_T_BYTE, .buf = d, .size = sizeof(*d),
	};

	if (!w->v1)
		return writer_info2(w);
	if (!d)
		return qp_seterr(w->err, -ENOMEM, "out of memory");
	memcpy(d->magic, QP_INFO_MAGIC, sizeof(d->magic));
	d->version = in->version;
	d->flags = in->flags;
	/* validated: the strings are terminated; the rest stays zero */
	memcpy(d->id, in->id, strlen(in->id));
	memcpy(d->build_id, in->build_id, in->build_id_size);
	d->build_id_size = in->build_id_size;
	memcpy(d->target_name, in->target_name, strlen(in->target_name));
	memcpy(d->tool_version, in->tool_version, strlen(in->tool_version));
	d->image_size = in->image_size;
	return writer_add(w, &t);
}

/* ---- content sections ------------------------------------------------ */

/* Compress @s's data into one zstd frame with a content checksum. */
static int writer_zstd(struct writer *w, const struct qp_section *s,
		       void *dst, size_t cap, size_t *n)
{
	ZSTD_CCtx *cc = ZSTD_createCCtx();
	size_t ret;

	if (!cc)
		return qp_seterr(w->err, -ENOMEM, "section '%s': zstd: out of memory",
				 s->name);
	ret = ZSTD_CCtx_setParameter(cc, ZSTD_c_compressionLevel,
				     WRITER_ZSTD_LEVEL);
	if (!ZSTD_isError(ret))
		ret = ZSTD_CCtx_setParameter(cc, ZSTD_c_checksumFlag, 1);
	if (!ZSTD_isError(ret))
		ret = ZSTD_compress2(cc, dst, cap, s->data, s->size);
	ZSTD_freeCCtx(cc);
	if (ZSTD_isError(ret))
		return qp_seterr(w->err, -EIO, "section '%s': zstd: %s",
				 s->name, ZSTD_getErrorName(ret));
	*n = ret;
	return 0;
}

/* Elf64_Chdr followed by one zstd frame of @s's data. */
static int writer_compress(struct writer *w, const struct qp_section *s,
			   struct sec_tmpl *t)
{
	Elf64_Chdr ch = {
		.ch_type = ELFCOMPRESS_ZSTD,
		.ch_size = s->size,
		.ch_addralign = s->align,
	};
	size_t bound = ZSTD_compressBound(s->size), n = 0;
	uint8_t *buf;
	int ret;

	if (ZSTD_isError(bound))
		return qp_seterr(w->err, -EIO, "section '%s': zstd: %s",
				 s->name, ZSTD_getErrorName(bound));
	buf = writer_keep(w, malloc(sizeof(ch) + bound));
	if (!buf)
		return qp_seterr(w->err, -ENOMEM, "out of memory");
	ret = writer_zstd(w, s, buf + sizeof(ch), bound, &n);
	if (ret)
		return ret;
	if (!w->v1 && sizeof(ch) + n >= s->size)
		return 0; /* version 2: stored as it is, smaller */
	memcpy(buf, &ch, sizeof(ch));
	/* the alignment is ch_addralign's; libelf makes sh_addralign 8 */
	t->addralign = _Alignof(Elf64_Chdr);
	t->flags |= SHF_COMPRESSED;
	t->buf = buf;
	t->size = sizeof(ch) + n;
	return 0;
}

static int writer_content(struct writer *w, const struct qp_section *s)
{
	struct sec_tmpl t = {
		.name = s->name, .type = s->type, .flags = s->flags,
		.addr = s->addr, .addralign = s->align, .dtype = ELF_T_BYTE,
		.size = s->size,
	};
	int ret;

	if (s->type == SHT_PROGBITS && s->size) {
		t.buf = (void *)s->data; /* unless compressing pays */
		ret = writer_compress(w, s, &t);
		if (ret)
			return ret;
	}
	return writer_add(w, &t);
}

/* ---- symbol tables --------------------------------------------------- */

/* Writes symtab @name (ELF index @ndx) and, in version 1, its string
 * table @strname at @ndx + 1; in version 2 the names go to .shstrtab.
 * dst symbols name content sections, whose ELF index is theirs plus 2. */
static int writer_symtab(struct writer *w, const char *name,
			 const char *strname, size_t ndx, bool dst)
{
	size_t cnt = dst ? qp_patch__dst_sym_count(w->p) :
			   qp_patch__src_sym_count(w->p);
	Elf64_Sym *syms = writer_keep(w, calloc(cnt, sizeof(*syms)));
	struct strtab str = { 0 };
	struct strtab *names = w->v1 ? &str : &w->shstr;
	uint32_t link = (uint32_t)(w->v1 ? ndx + 1 : w->base + 3);
	uint32_t first_global = (uint32_t)cnt;
	size_t i;
	int ret;

	if (!syms)
		return qp_seterr(w->err, -ENOMEM, "out of memory");
	for (i = 0; i < cnt; i++) {
		const struct qp_sym *s = dst ? qp_patch__dst_sym(w->p, i) :
					       qp_patch__src_sym(w->p, i);

		if (strtab_add(names, s->name, &syms[i].st_name)) {
			strtab_release(&str);
			return qp_seterr(w->err, -ENOMEM, "out of memory");
		}
		syms[i].st_info = ELF64_ST_INFO(s->bind, s->type);
		syms[i].st_shndx = dst && i ? s->shndx + 2 : s->shndx;
		syms[i].st_value = s->value;
		syms[i].st_size = s->size;
		if (s->bind != STB_LOCAL && first_global == cnt)
			first_global = (uint32_t)i;
	}
	ret = writer_add(w, &(struct sec_tmpl){
		.name = name, .type = SHT_SYMTAB, .link = link,
		.info = first_global, .entsize = sizeof(Elf64_Sym),
		.addralign = 8, .dtype = ELF_T_SYM, .buf = syms,
		.size = cnt * sizeof(*syms) });
	if (ret || !w->v1) {
		strtab_release(&str);
		return ret;
	}
	free(str.slots);
	writer_keep(w, str.buf);
	return writer_add(w, &(struct sec_tmpl){
		.name = strname, .type = SHT_STRTAB, .addralign = 1,
		.dtype = ELF_T_BYTE, .buf = str.buf, .size = str.len });
}

/* Version 2: the entries apply to the image, whose offsets are the
 * sh_addr of the content sections, so sh_info names the first content
 * section (SHF_INFO_LINK), where the image starts; none without one. */
static int writer_diffdata(struct writer *w)
{
	bool info = !w->v1 && qp_patch__section_count(w->p);
	size_t cnt = qp_patch__rela_count(w->p), i;
	Elf64_Rela *r = writer_keep(w, calloc(cnt ? cnt : 1, sizeof(*r)));

	if (!r)
		return qp_seterr(w->err, -ENOMEM, "out of memory");
	for (i = 0; i < cnt; i++) {
		const struct qp_rela *q = qp_patch__rela(w->p, i);

		r[i].r_offset = q->offset;
		r[i].r_info = ELF64_R_INFO(q->sym, q->type);
		r[i].r_addend = q->addend;
	}
	return writer_add(w, &(struct sec_tmpl){
		.name = QP_SEC_DIFFDATA, .type = SHT_RELA,
		.flags = info ? SHF_INFO_LINK : 0, .info = info ? 2 : 0,
		.link = (uint32_t)w->base, .entsize = sizeof(Elf64_Rela),
		.addralign = 8, .dtype = ELF_T_RELA, .buf = r,
		.size = cnt * sizeof(*r) });
}

/* ---- the file -------------------------------------------------------- */

static int writer_ehdr(struct writer *w)
{
	Elf64_Ehdr *eh = elf64_newehdr(w->elf);

	if (!eh)
		return qp_seterr(w->err, -EIO, "elf64_newehdr: %s",
				 elf_errmsg(-1));
	eh->e_ident[EI_DATA] = ELFDATA2LSB;
	eh->e_ident[EI_OSABI] = ELFOSABI_NONE;
	eh->e_type = ET_REL;
	eh->e_machine = EM_X86_64;
	eh->e_version = EV_CURRENT;
	eh->e_shstrndx = (uint16_t)(w->base + (w->v1 ? 5 : 3));
	return 0;
}

/* .shstrtab holds its own name, so it is added before its size is known. */
static int writer_shstrtab(struct writer *w)
{
	uint32_t name;

	if (strtab_add(&w->shstr, ".shstrtab", &name))
		return qp_seterr(w->err, -ENOMEM, "out of memory");
	return writer_add_at(w, &(struct sec_tmpl){
		.name = ".shstrtab", .type = SHT_STRTAB, .addralign = 1,
		.dtype = ELF_T_BYTE, .buf = w->shstr.buf,
		.size = w->shstr.len }, name);
}

static int writer_sections(struct writer *w)
{
	size_t i, n = qp_patch__section_count(w->p);
	int ret = writer_info(w);

	for (i = 0; !ret && i < n; i++)
		ret = writer_content(w, qp_patch__section(w->p, i));
	if (!ret)
		ret = writer_symtab(w, QP_SEC_SYMTAB_SRC, QP_SEC_STRTAB_SRC,
				    w->base, false);
	if (!ret)
		ret = writer_symtab(w, QP_SEC_SYMTAB_DST, QP_SEC_STRTAB_DST,
				    w->base + (w->v1 ? 2 : 1), true);
	if (!ret)
		ret = writer_diffdata(w);
	if (!ret)
		ret = writer_shstrtab(w);
	return ret;
}

/* Version 2 lays the file out itself (ELF_F_LAYOUT): libelf would place
 * each section at a file offset aligned like its image offset, padding
 * the file up to 4 KiB for a page-aligned section.  The bytes are only
 * copied out, so stored content is packed; the tables and compression
 * headers stay 8-aligned, and SHT_NOBITS takes no room. */
static int writer_layout(struct writer *w)
{
	Elf64_Ehdr *eh = elf64_getehdr(w->elf);
	uint64_t off = sizeof(Elf64_Ehdr);
	Elf_Scn *scn = NULL;

	if (!eh)
		return qp_seterr(w->err, -EIO, "elf64_getehdr: %s", elf_errmsg(-1));
	while ((scn = elf_nextscn(w->elf, scn))) {
		Elf64_Shdr *sh = elf64_getshdr(scn);
		uint64_t align;

		if (!sh)
			return qp_seterr(w->err, -EIO, "elf64_getshdr: %s",
					 elf_errmsg(-1));
		align = sh->sh_type == SHT_SYMTAB || sh->sh_type == SHT_RELA ||
			(sh->sh_flags & SHF_COMPRESSED) ? 8 : 1;
		off = (off + align - 1) & ~(align - 1);
		sh->sh_offset = off;
		if (sh->sh_type != SHT_NOBITS)
			off += sh->sh_size;
	}
	eh->e_shoff = (off + 7) & ~(uint64_t)7;
	elf_flagelf(w->elf, ELF_C_SET, ELF_F_LAYOUT);
	return 0;
}

/* Write the validated @p to @fd. */
static int writer_fd(const struct qp_patch *p, int fd, struct qp_error *err)
{
	struct writer w = { .p = p, .err = err,
			    .v1 = qp_patch__info(p)->version == 1 };
	size_t i;
	int ret = 0;

	if (elf_version(EV_CURRENT) == EV_NONE)
		return qp_seterr(err, -EIO, "libelf: %s", elf_errmsg(-1));
	w.base = qp_patch__section_count(p) + 2;
	w.shstr.dedup = !w.v1;
	/* info, each content section, 2 symtabs, 2 strtabs, diffdata */
	w.bufs = calloc(qp_patch__section_count(p) + 6, sizeof(*w.bufs));
	if (!w.bufs)
		return qp_seterr(err, -ENOMEM, "out of memory");
	w.elf = elf_begin(fd, ELF_C_WRITE, NULL);
	if (!w.elf)
		ret = qp_seterr(err, -EIO, "elf_begin: %s", elf_errmsg(-1));
	if (!ret)
		ret = writer_ehdr(&w);
	if (!ret)
		ret = writer_sections(&w);
	if (!ret && !w.v1)
		ret = writer_layout(&w);
	if (!ret && elf_update(w.elf, ELF_C_WRITE) < 0)
		ret = qp_seterr(err, -EIO, "elf_update: %s", elf_errmsg(-1));
	elf_end(w.elf);
	for (i = 0; i < w.nbufs; i++)
		free(w.bufs[i]);
	free(w.bufs);
	strtab_release(&w.shstr);
	return ret;
}

static int writer_tmpfile(const char *path, char **tmp, struct qp_error *err)
{
	int fd;

	if (asprintf(tmp, "%s.XXXXXX", path) < 0) {
		*tmp = NULL;
		return qp_seterr(err, -ENOMEM, "out of memory");
	}
	fd = mkostemp(*tmp, O_CLOEXEC);
	if (fd < 0) {
		fd = -errno;
		qp_seterr(err, fd, "unable to create '%s': %s", *tmp,
			  strerror(errno));
		free(*tmp);
		*tmp = NULL;
		return fd;
	}
	return fd;
}

/* Make the written temporary file @tmp (open as @fd, closed here) the
 * file @path. */
static int writer_commit(int fd, const char *tmp, const char *path,
			 struct qp_error *err)
{
	int ret = 0;

	if (fchmod(fd, 0644) || fsync(fd))
		ret = qp_seterr(err, -errno, "unable to write '%s': %s", tmp,
				strerror(errno));
	if (close(fd) && !ret)
		ret = qp_seterr(err, -errno, "unable to write '%s': %s", tmp,
				strerror(errno));
	if (!ret && rename(tmp, path))
		ret = qp_seterr(err, -errno, "unable to rename '%s' to '%s': %s",
				tmp, path, strerror(errno));
	return ret;
}

int qp_patch__write(struct qp_patch *p, const char *path, struct qp_error *err)
{
	char *tmp;
	int fd, ret;

	if (!path)
		return qp_seterr(err, -EINVAL, "no output path");
	ret = qp_patch__validate(p, err);
	if (ret)
		return qp_preperr(err, ret, "'%s'", path);
	fd = writer_tmpfile(path, &tmp, err);
	if (fd < 0)
		return fd;
	ret = writer_fd(p, fd, err);
	if (ret) {
		qp_preperr(err, ret, "'%s'", path);
		close(fd);
	} else {
		ret = writer_commit(fd, tmp, path, err);
	}
	if (ret)
		unlink(tmp);
	free(tmp);
	return ret;
}

int qp_patch__write_mem(struct qp_patch *p, void **buf, size_t *size,
			struct qp_error *err)
{
	int fd, ret;

	if (!buf || !size)
		return qp_seterr(err, -EINVAL, "no output buffer");
	*buf = NULL;
	*size = 0;
	fd = memfd_create("qpatch", MFD_CLOEXEC);
	if (fd < 0)
		return qp_seterr(err, -errno, "memfd_create: %s", strerror(errno));
	ret = qp_patch__validate(p, err);
	if (!ret)
		ret = writer_fd(p, fd, err);
	if (!ret)
		ret = qp_read_regular(fd, "<memory>", SIZE_MAX, (uint8_t **)buf, size, err);
	close(fd);
	return ret;
}
