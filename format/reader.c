// SPDX-License-Identifier: MIT
/*
 * Reading a .qpatch file (docs/format.md) into a qp_patch.  The input is
 * untrusted: every header field is checked before it is used, every offset
 * and size against the bytes actually there, every allocation is bounded,
 * and libelf only ever sees a private copy of the input.  The layout is
 * fixed, so the reader walks it in order:
 *
 *	version 2: 0 null, 1 .qpatch.info, 2..n+1 content,
 *	n+2 .qpatch.symtab.src, n+3 .qpatch.symtab.dst, n+4 .qpatch.diffdata,
 *	n+5 .shstrtab (section names and symbol names)
 *	version 1: 0 null, 1 .qpatch.info, 2..n+1 content, n+2 .qpatch.symtab.src,
 *	n+3 .qpatch.strtab.src, n+4 .qpatch.symtab.dst, n+5 .qpatch.strtab.dst,
 *	n+6 .qpatch.diffdata, n+7 .shstrtab
 *
 * and hands the model to qp_patch__validate() for the semantic rules.
 */
#include <errno.h>
#include <fcntl.h>
#include <libelf.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include "qpatch/file.h"
#include "qpatch/format.h"
#include "qpatch/sign.h"

/* Largest input accepted: content, symbol and relocation tables are each
 * bounded by QP_MAX_SECTION_SIZE, so a valid patch is far below this. */
#define RD_MAX_FILE_SIZE (4ull * QP_MAX_SECTION_SIZE)
/* Sections besides the content ones: null, info, 2 symtabs, 2 strtabs
 * (version 1 only), diffdata, shstrtab. */
#define RD_FIXED_SECTIONS_V1 8
#define RD_FIXED_SECTIONS 6
/* Content_Checksum_flag of a zstd Frame_Header_Descriptor (RFC 8878). */
#define RD_ZSTD_CHECKSUM_FLAG 0x04
/* Bytes of qp_info_disk that every format version starts with. */
#define RD_INFO_PREFIX offsetof(struct qp_info_disk, flags)

/* State of one parse. */
struct reader {
	const char *name;      /* file name for messages, or "<memory>" */
	struct qp_error *err;  /* where messages go */
	const uint8_t *image;  /* private copy of the input */
	size_t size;           /* bytes of image */
	Elf *elf;              /* libelf view of image */
	size_t shnum;          /* sections in the file, null included */
	size_t nsec;           /* content sections */
	struct qp_patch *p;    /* the model being filled */
	uint64_t content;      /* decompressed content bytes so far */
	uint64_t names;        /* symbol name bytes copied so far */
	uint32_t version;      /* format version of the file */
	struct qp_info info;   /* as read; image_size is set at the end */
};

/* One section of the file as the reader sees it. */
struct rd_sec {
	size_t ndx;         /* ELF section index */
	const char *name;   /* its name, from .shstrtab */
	Elf64_Shdr sh;      /* copy of its header */
	Elf_Scn *scn;       /* libelf handle */
	const uint8_t *buf; /* sh_size raw bytes in image; NULL for SHT_NOBITS */
};

/* "'file': section 'sec': <fmt>" (without the section part when NULL). */
__attribute__((format(printf, 4, 5)))
static int rd_err(struct reader *r, const char *sec, int code,
		  const char *fmt, ...)
{
	char msg[QP_ERRMSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (sec)
		return qp_seterr(r->err, code, "'%s': section '%s': %s",
				 r->name, sec, msg);
	return qp_seterr(r->err, code, "'%s': %s", r->name, msg);
}

#define rd_fmt(r, sec, ...) rd_err(r, sec, QP_EFORMAT, __VA_ARGS__)

/* ---- ELF header ------------------------------------------------------ */

static int rd_ident(struct reader *r)
{
	const uint8_t *id = r->image;

	if (r->size < SELFMAG || memcmp(id, ELFMAG, SELFMAG))
		return rd_fmt(r, NULL, "not an ELF file");
	if (r->size < sizeof(Elf64_Ehdr))
		return rd_fmt(r, NULL, "truncated: %zu bytes, less than an ELF header (%zu)", r->size,
			      sizeof(Elf64_Ehdr));
	if (id[EI_CLASS] != ELFCLASS64)
		return rd_fmt(r, NULL, "ELF class %u is not ELFCLASS64", id[EI_CLASS]);
	if (id[EI_DATA] != ELFDATA2LSB)
		return rd_fmt(r, NULL, "ELF data encoding %u is not ELFDATA2LSB",
			      id[EI_DATA]);
	if (id[EI_VERSION] != EV_CURRENT)
		return rd_fmt(r, NULL, "ELF ident version %u is not EV_CURRENT",
			      id[EI_VERSION]);
	return 0;
}

/*
 * The section table the ELF header points at must be inside the file;
 * otherwise libelf sees no sections at all, and the message must say
 * what is wrong: a file cut short, most often.
 */
static int rd_shtab(struct reader *r, const Elf64_Ehdr *eh)
{
	/* e_shnum 0 with a table: the count is in section 0, which must be there */
	uint64_t n = eh->e_shnum ? eh->e_shnum : 1, end;

	if (!eh->e_shoff)
		return rd_fmt(r, NULL, "no section table (e_shoff is 0)");
	if (eh->e_shoff > r->size)
		return rd_fmt(r, NULL, "truncated: %zu bytes, the ELF header says the section "
			      "table starts at %llu", r->size, (unsigned long long)eh->e_shoff);
	end = eh->e_shoff + n * sizeof(Elf64_Shdr); /* no overflow: e_shoff <= size */
	if (end > r->size)
		return rd_fmt(r, NULL, "truncated: %zu bytes, the ELF header says the section "
			      "table ends at %llu", r->size, (unsigned long long)end);
	return 0;
}

static int rd_ehdr(struct reader *r)
{
	Elf64_Ehdr *eh = elf64_getehdr(r->elf);

	if (!eh)
		return rd_fmt(r, NULL, "elf64_getehdr: %s", elf_errmsg(-1));
	if (eh->e_type != ET_REL)
		return rd_fmt(r, NULL, "ELF type %u is not ET_REL", eh->e_type);
	if (eh->e_machine != EM_X86_64)
		return rd_fmt(r, NULL, "ELF machine %u is not EM_X86_64",
			      eh->e_machine);
	if (eh->e_version != EV_CURRENT)
		return rd_fmt(r, NULL, "ELF version %u is not EV_CURRENT",
			      eh->e_version);
	if (eh->e_phnum || eh->e_phoff || eh->e_entry || eh->e_flags)
		return rd_fmt(r, NULL, "e_entry, e_phoff, e_phnum and e_flags must be 0");
	if (eh->e_ehsize != sizeof(Elf64_Ehdr) ||
	    eh->e_shentsize != sizeof(Elf64_Shdr))
		return rd_fmt(r, NULL, "e_ehsize %u or e_shentsize %u is wrong",
			      eh->e_ehsize, eh->e_shentsize);
	return rd_shtab(r, eh);
}

/* ---- sections -------------------------------------------------------- */

/* Fill @s with section @ndx, without its name. */
static int rd_sec_hdr(struct reader *r, size_t ndx, struct rd_sec *s)
{
	Elf64_Shdr *sh;

	memset(s, 0, sizeof(*s));
	s->ndx = ndx;
	s->scn = elf_getscn(r->elf, ndx);
	if (!s->scn)
		return rd_fmt(r, NULL, "section %zu: elf_getscn: %s", ndx,
			      elf_errmsg(-1));
	sh = elf64_getshdr(s->scn);
	if (!sh)
		return rd_fmt(r, NULL, "section %zu: elf64_getshdr: %s", ndx,
			      elf_errmsg(-1));
	s->sh = *sh;
	return 0;
}

/* Point s->buf at the section's bytes, checked to lie inside the file. */
static int rd_sec_bytes(struct reader *r, struct rd_sec *s)
{
	const char *n = s->name ? s->name : "?";
	Elf_Data *d;

	if (s->sh.sh_type == SHT_NOBITS)
		return 0;
	if (s->sh.sh_offset > r->size || s->sh.sh_size > r->size - s->sh.sh_offset)
		return rd_fmt(r, n, "[0x%llx, +0x%llx) extends beyond the end of the file (0x%zx bytes)",
			      (unsigned long long)s->sh.sh_offset,
			      (unsigned long long)s->sh.sh_size, r->size);
	d = elf_rawdata(s->scn, NULL);
	if (!d)
		return rd_fmt(r, n, "elf_rawdata: %s", elf_errmsg(-1));
	if (d->d_size != s->sh.sh_size || (d->d_size && !d->d_buf))
		return rd_fmt(r, n, "elf_rawdata returned %zu bytes, not %llu",
			      d->d_size, (unsigned long long)s->sh.sh_size);
	s->buf = d->d_buf;
	return 0;
}

/* Fill @s with section @ndx and its name; rd_sec_bytes() follows once the
 * header is checked (libelf refuses some bad headers less clearly). */
static int rd_sec(struct reader *r, size_t ndx, struct rd_sec *s)
{
	int ret = rd_sec_hdr(r, ndx, s);

	if (ret)
		return ret;
	s->name = elf_strptr(r->elf, r->shnum - 1, s->sh.sh_name);
	if (!s->name)
		return rd_fmt(r, NULL, "section %zu: bad name offset %u: %s", ndx,
			      s->sh.sh_name, elf_errmsg(-1));
	return 0;
}

/* Section @ndx must be the metadata section @name of @type, flags @flags,
 * addr 0, sh_link @link, sh_info @info, sh_entsize @entsize; sh_info is
 * checked by the caller for symbol tables. */
static int rd_fixed_at(struct reader *r, size_t ndx, struct rd_sec *s,
		       const char *name, uint32_t type, uint32_t link,
		       uint64_t entsize, uint64_t flags, uint32_t info)
{
	int ret = rd_sec(r, ndx, s);

	if (ret)
		return ret;
	if (strcmp(s->name, name))
		return rd_fmt(r, NULL, "section %zu is '%s', expected '%s'", ndx,
			      s->name, name);
	if (s->sh.sh_type != type)
		return rd_fmt(r, name, "sh_type %u, expected %u", s->sh.sh_type, type);
	if (s->sh.sh_flags != flags || s->sh.sh_addr)
		return rd_fmt(r, name, "sh_flags 0x%llx and sh_addr 0x%llx must be 0x%llx and 0",
			      (unsigned long long)s->sh.sh_flags,
			      (unsigned long long)s->sh.sh_addr,
			      (unsigned long long)flags);
	if (s->sh.sh_link != link || s->sh.sh_entsize != entsize ||
	    (type != SHT_SYMTAB && s->sh.sh_info != info)) {
		char want[16];

		snprintf(want, sizeof(want), "%u", info);
		return rd_fmt(r, name, "sh_link %u, sh_info %u, sh_entsize %llu; expected %u, %s, %llu",
			      s->sh.sh_link, s->sh.sh_info,
			      (unsigned long long)s->sh.sh_entsize, link,
			      type == SHT_SYMTAB ? "the first non-local" : want,
			      (unsigned long long)entsize);
	}
	if (entsize && s->sh.sh_size % entsize)
		return rd_fmt(r, name, "size %llu is not a multiple of %llu",
			      (unsigned long long)s->sh.sh_size,
			      (unsigned long long)entsize);
	return rd_sec_bytes(r, s);
}

static int rd_fixed(struct reader *r, size_t ndx, struct rd_sec *s,
		    const char *name, uint32_t type, uint32_t link,
		    uint64_t entsize)
{
	return rd_fixed_at(r, ndx, s, name, type, link, entsize, 0, 0);
}

/* The section count and the section name table, before any name is read. */
static int rd_layout(struct reader *r)
{
	struct rd_sec s;
	size_t strndx;
	int ret;

	if (elf_getshdrnum(r->elf, &r->shnum))
		return rd_fmt(r, NULL, "elf_getshdrnum: %s", elf_errmsg(-1));
	if (elf_getshdrstrndx(r->elf, &strndx))
		return rd_fmt(r, NULL, "elf_getshdrstrndx: %s", elf_errmsg(-1));
	if (r->shnum < 3 || r->shnum >= SHN_LORESERVE)
		return rd_fmt(r, NULL, "%zu sections in the section table (a patch has 3 to %u)",
			      r->shnum, SHN_LORESERVE - 1);
	if (strndx != r->shnum - 1)
		return rd_fmt(r, NULL, "e_shstrndx %zu is not the last section (%zu)",
			      strndx, r->shnum - 1);
	/* checked before elf_strptr() reads it: libelf would decompress it */
	ret = rd_sec_hdr(r, strndx, &s);
	if (!ret)
		ret = rd_sec_bytes(r, &s);
	if (ret)
		return ret;
	if (s.sh.sh_type != SHT_STRTAB || s.sh.sh_flags || !s.sh.sh_size ||
	    s.buf[0] || s.buf[s.sh.sh_size - 1])
		return rd_fmt(r, NULL, "section %zu: not a valid section name table",
			      strndx);
	return rd_fixed(r, strndx, &s, ".shstrtab", SHT_STRTAB, 0, 0);
}

/* ---- .qpatch.info ---------------------------------------------------- */

/* The char array @what of @size bytes: NUL-terminated and NUL-padded. */
static int rd_info_str(struct reader *r, const char *s, size_t size,
		       const char *what)
{
	const char *nul = memchr(s, '\0', size);
	size_t i;

	if (!nul)
		return rd_fmt(r, QP_SEC_INFO, "%s is not NUL-terminated", what);
	for (i = (size_t)(nul - s); i < size; i++)
		if (s[i])
			return rd_fmt(r, QP_SEC_INFO, "%s is not NUL-padded", what);
	return 0;
}

static int rd_info_check(struct reader *r, const struct qp_info_disk *d)
{
	int ret;
	size_t i;

	if (d->flags || d->reserved)
		return rd_fmt(r, QP_SEC_INFO, "flags 0x%x and reserved 0x%x must be 0",
			      d->flags, d->reserved);
	ret = rd_info_str(r, d->id, sizeof(d->id), "id");
	if (!ret)
		ret = rd_info_str(r, d->target_name, sizeof(d->target_name),
				  "target_name");
	if (!ret)
		ret = rd_info_str(r, d->tool_version, sizeof(d->tool_version),
				  "tool_version");
	if (ret)
		return ret;
	if (d->build_id_size < 1 || d->build_id_size > QP_BUILD_ID_MAX)
		return rd_fmt(r, QP_SEC_INFO, "build_id_size %u is not in 1..%u",
			      d->build_id_size, QP_BUILD_ID_MAX);
	for (i = d->build_id_size; i < QP_BUILD_ID_MAX; i++)
		if (d->build_id[i])
			return rd_fmt(r, QP_SEC_INFO, "build_id is not zero-padded");
	return 0;
}

/* @n bytes of @what at @src into @dst, which has room for them and a NUL:
 * no NUL byte among them, not empty unless @may_be_empty. */
static int rd_info2_str(struct reader *r, const uint8_t *src, size_t n,
			char *dst, const char *what, bool may_be_empty)
{
	if (!n && !may_be_empty)
		return rd_fmt(r, QP_SEC_INFO, "%s is empty", what);
	if (memchr(src, '\0', n))
		return rd_fmt(r, QP_SEC_INFO, "%s holds a NUL byte", what);
	memcpy(dst, src, n);
	dst[n] = '\0';
	return 0;
}

/* Version 2: the header, then the build-id and the strings. */
static int rd_info2(struct reader *r, const struct rd_sec *s)
{
	struct qp_info *in = &r->info;
	struct qp_info2_disk h;
	const uint8_t *at;
	int ret;

	if (s->sh.sh_size < sizeof(h))
		return rd_fmt(r, QP_SEC_INFO, "size %llu is too small",
			      (unsigned long long)s->sh.sh_size);
	memcpy(&h, s->buf, sizeof(h));
	if (h.flags)
		return rd_fmt(r, QP_SEC_INFO, "flags 0x%x must be 0", h.flags);
	if (h.build_id_size < 1 || h.build_id_size > QP_BUILD_ID_MAX)
		return rd_fmt(r, QP_SEC_INFO, "build_id_size %u is not in 1..%u",
			      h.build_id_size, QP_BUILD_ID_MAX);
	if (h.id_len >= QP_ID_MAX || h.tool_version_len >= QP_TOOL_MAX)
		return rd_fmt(r, QP_SEC_INFO, "id_len %u or tool_version_len %u is too long",
			      h.id_len, h.tool_version_len);
	if (s->sh.sh_size != sizeof(h) + h.build_id_size + h.id_len +
			     h.target_name_len + h.tool_version_len)
		return rd_fmt(r, QP_SEC_INFO, "size %llu, expected %zu",
			      (unsigned long long)s->sh.sh_size,
			      sizeof(h) + h.build_id_size + h.id_len +
			      h.target_name_len + h.tool_version_len);
	in->version = h.version;
	at = s->buf + sizeof(h);
	memcpy(in->build_id, at, h.build_id_size);
	in->build_id_size = h.build_id_size;
	at += h.build_id_size;
	ret = rd_info2_str(r, at, h.id_len, in->id, "id", false);
	at += h.id_len;
	if (!ret)
		ret = rd_info2_str(r, at, h.target_name_len, in->target_name,
				   "target_name", false);
	at += h.target_name_len;
	if (!ret)
		ret = rd_info2_str(r, at, h.tool_version_len, in->tool_version,
				   "tool_version", true);
	return ret;
}

/* Section 1; magic and version first, as every version starts so. */
static int rd_info(struct reader *r)
{
	struct qp_info_disk d;
	struct qp_info *in = &r->info;
	struct rd_sec s;
	int ret = rd_fixed(r, 1, &s, QP_SEC_INFO, SHT_PROGBITS, 0, 0);

	if (ret)
		return ret;
	if (s.sh.sh_size < RD_INFO_PREFIX)
		return rd_fmt(r, QP_SEC_INFO, "size %llu is too small",
			      (unsigned long long)s.sh.sh_size);
	memset(&d, 0, sizeof(d));
	memcpy(&d, s.buf, RD_INFO_PREFIX);
	if (memcmp(d.magic, QP_INFO_MAGIC, sizeof(d.magic)))
		return rd_fmt(r, QP_SEC_INFO, "bad magic");
	if (d.version < QP_FORMAT_VERSION_MIN || d.version > QP_FORMAT_VERSION)
		return rd_err(r, QP_SEC_INFO, QP_EVERSION,
			      "unsupported format version %u (expected %u to %u)",
			      d.version, QP_FORMAT_VERSION_MIN, QP_FORMAT_VERSION);
	r->version = d.version;
	if (d.version == 2)
		return rd_info2(r, &s);
	if (s.sh.sh_size != sizeof(d))
		return rd_fmt(r, QP_SEC_INFO, "size %llu, expected %zu",
			      (unsigned long long)s.sh.sh_size, sizeof(d));
	memcpy(&d, s.buf, sizeof(d));
	ret = rd_info_check(r, &d);
	if (ret)
		return ret;
	in->version = d.version;
	in->flags = d.flags;
	memcpy(in->id, d.id, sizeof(in->id));
	memcpy(in->build_id, d.build_id, sizeof(in->build_id));
	in->build_id_size = d.build_id_size;
	memcpy(in->target_name, d.target_name, sizeof(in->target_name));
	memcpy(in->tool_version, d.tool_version, sizeof(in->tool_version));
	in->image_size = d.image_size;
	return 0;
}

/* ---- content sections ------------------------------------------------ */

/* @src is one zstd frame of @n bytes, with a checksum, declaring @size. */
static int rd_zstd_frame(struct reader *r, const struct rd_sec *s,
			 const uint8_t *src, size_t n, uint64_t size)
{
	unsigned long long fcs;
	size_t got = ZSTD_findFrameCompressedSize(src, n);

	if (ZSTD_isError(got))
		return rd_fmt(r, s->name, "zstd: %s", ZSTD_getErrorName(got));
	if (got != n)
		return rd_fmt(r, s->name, "%zu bytes after the zstd frame", n - got);
	/* RFC 8878: magic, then the frame header descriptor */
	if (memcmp(src, "\x28\xb5\x2f\xfd", 4))
		return rd_fmt(r, s->name, "zstd: not a zstd data frame");
	if (!(src[4] & RD_ZSTD_CHECKSUM_FLAG))
		return rd_fmt(r, s->name, "zstd frame has no content checksum");
	fcs = ZSTD_getFrameContentSize(src, n);
	if (fcs == ZSTD_CONTENTSIZE_ERROR || fcs == ZSTD_CONTENTSIZE_UNKNOWN)
		return rd_fmt(r, s->name, "zstd frame does not declare its content size");
	if (fcs != size)
		return rd_fmt(r, s->name, "ch_size %llu does not match the zstd frame's content size %llu",
			      (unsigned long long)size, fcs);
	return 0;
}

static int rd_zstd(struct reader *r, const struct rd_sec *s, const uint8_t *src,
		   size_t n, uint8_t *dst, size_t size)
{
	size_t got = ZSTD_decompress(dst, size, src, n);

	if (ZSTD_isError(got))
		return rd_fmt(r, s->name, "zstd: %s", ZSTD_getErrorName(got));
	if (got != size)
		return rd_fmt(r, s->name, "ch_size %zu does not match the %zu decompressed bytes",
			      size, got);
	return 0;
}

/* Decompress @s into *@out (malloc'ed), setting its size and alignment:
 * as libelf and binutils do, sh_addralign of a compressed section is that
 * of the Elf64_Chdr, and ch_addralign that of the content. */
static int rd_decompress(struct reader *r, const struct rd_sec *s,
			 struct qp_section *sec, uint8_t **out)
{
	const uint8_t *src;
	Elf64_Chdr ch;
	size_t n;
	int ret;

	if (s->sh.sh_size < sizeof(ch))
		return rd_fmt(r, s->name, "too small for a compression header");
	memcpy(&ch, s->buf, sizeof(ch));
	if (ch.ch_type != ELFCOMPRESS_ZSTD)
		return rd_fmt(r, s->name, "ch_type %u is not ELFCOMPRESS_ZSTD",
			      ch.ch_type);
	if (ch.ch_reserved)
		return rd_fmt(r, s->name, "ch_reserved 0x%x is not 0", ch.ch_reserved);
	if (s->sh.sh_addralign != _Alignof(Elf64_Chdr))
		return rd_fmt(r, s->name, "sh_addralign %llu of a compressed section is not %zu",
			      (unsigned long long)s->sh.sh_addralign,
			      _Alignof(Elf64_Chdr));
	if (!ch.ch_size || ch.ch_size > QP_MAX_SECTION_SIZE ||
	    ch.ch_size > QP_MAX_SECTION_SIZE - r->content)
		return rd_fmt(r, s->name, "ch_size %llu is 0 or exceeds the image limit %u",
			      (unsigned long long)ch.ch_size, QP_MAX_SECTION_SIZE);
	src = s->buf + sizeof(ch);
	n = s->sh.sh_size - sizeof(ch);
	ret = rd_zstd_frame(r, s, src, n, ch.ch_size);
	if (ret)
		return ret;
	*out = malloc(ch.ch_size);
	if (!*out)
		return rd_err(r, s->name, -ENOMEM, "out of memory");
	r->content += ch.ch_size;
	sec->size = ch.ch_size;
	sec->align = ch.ch_addralign;
	ret = rd_zstd(r, s, src, n, *out, ch.ch_size);
	if (ret) {
		free(*out);
		*out = NULL;
	}
	return ret;
}

/* Check the header of content section @s and fill @sec but for its data. */
static int rd_content_hdr(struct reader *r, const struct rd_sec *s,
			  struct qp_section *sec)
{
	const Elf64_Shdr *sh = &s->sh;
	bool compressed = sh->sh_flags & SHF_COMPRESSED;

	if (sh->sh_type != SHT_PROGBITS && sh->sh_type != SHT_NOBITS)
		return rd_fmt(r, s->name, "type %u is neither SHT_PROGBITS nor SHT_NOBITS",
			      sh->sh_type);
	if (sh->sh_link || sh->sh_info || sh->sh_entsize)
		return rd_fmt(r, s->name, "sh_link, sh_info and sh_entsize must be 0");
	if (sh->sh_type == SHT_PROGBITS && sh->sh_size && !compressed &&
	    r->version == 1)
		return rd_fmt(r, s->name, "content is not compressed");
	if (compressed && (sh->sh_type == SHT_NOBITS || !sh->sh_size))
		return rd_fmt(r, s->name, "SHF_COMPRESSED on a section without content");
	sec->name = s->name;
	sec->type = sh->sh_type;
	sec->flags = sh->sh_flags & ~(uint64_t)SHF_COMPRESSED;
	sec->addr = sh->sh_addr;
	sec->size = compressed ? 0 : sh->sh_size;
	sec->align = sh->sh_addralign;
	return 0;
}

static int rd_content(struct reader *r, size_t ndx)
{
	struct qp_section sec = { 0 };
	uint8_t *data = NULL;
	struct rd_sec s;
	int ret = rd_sec(r, ndx, &s);

	if (!ret)
		ret = rd_content_hdr(r, &s, &sec);
	if (!ret)
		ret = rd_sec_bytes(r, &s);
	if (!ret && (s.sh.sh_flags & SHF_COMPRESSED))
		ret = rd_decompress(r, &s, &sec, &data);
	if (ret)
		return ret;
	sec.data = data;
	if (!data && sec.type == SHT_PROGBITS && sec.size) { /* version 2 */
		if (sec.size > QP_MAX_SECTION_SIZE - r->content)
			return rd_fmt(r, s.name, "size %llu exceeds the image limit %u",
				      (unsigned long long)sec.size,
				      QP_MAX_SECTION_SIZE);
		r->content += sec.size;
		sec.data = s.buf;
	}
	ret = qp_patch__add_section(r->p, &sec);
	free(data);
	if (ret < 0)
		return rd_err(r, s.name, ret, "cannot add section: %s",
			      qp_strerror(ret));
	return 0;
}

/* ---- symbol tables --------------------------------------------------- */

/* A symbol table and its string table, as read. */
struct rd_symtab {
	const char *name;     /* table's section name */
	struct rd_sec sym;    /* the SHT_SYMTAB section */
	struct rd_sec str;    /* its SHT_STRTAB */
	bool dst;             /* dst table: st_shndx names a content section */
};

static int rd_sym(struct reader *r, const struct rd_symtab *t, size_t i,
		  struct qp_sym *out)
{
	Elf64_Sym es;
	size_t len;

	memcpy(&es, t->sym.buf + i * sizeof(es), sizeof(es));
	if (es.st_name >= t->str.sh.sh_size)
		return rd_fmt(r, t->name, "symbol %zu: name offset %u is outside '%s' (%llu bytes)",
			      i, es.st_name, t->str.name,
			      (unsigned long long)t->str.sh.sh_size);
	out->name = (const char *)t->str.buf + es.st_name;
	len = strlen(out->name) + 1; /* the table ends with a NUL */
	if (len > QP_MAX_SECTION_SIZE - r->names)
		return rd_fmt(r, t->name, "symbol names exceed %u bytes in total",
			      QP_MAX_SECTION_SIZE);
	r->names += len;
	if (es.st_other)
		return rd_fmt(r, t->name, "symbol %zu '%s': st_other 0x%x is not 0",
			      i, out->name, es.st_other);
	out->value = es.st_value;
	out->size = es.st_size;
	out->type = ELF64_ST_TYPE(es.st_info);
	out->bind = ELF64_ST_BIND(es.st_info);
	out->shndx = es.st_shndx;
	if (!t->dst)
		return 0;
	if (es.st_shndx < 2 || es.st_shndx >= 2 + r->nsec)
		return rd_fmt(r, t->name, "symbol %zu '%s': st_shndx %u is not a content section",
			      i, out->name, es.st_shndx);
	out->shndx = (uint16_t)(es.st_shndx - 2);
	return 0;
}

static int rd_syms(struct reader *r, const struct rd_symtab *t)
{
	static const Elf64_Sym null_sym;
	size_t cnt = t->sym.sh.sh_size / sizeof(Elf64_Sym), i, first = cnt;
	struct qp_sym s;
	int ret;

	if (!cnt || memcmp(t->sym.buf, &null_sym, sizeof(null_sym)))
		return rd_fmt(r, t->name, "symbol 0 is not the null symbol");
	for (i = 1; i < cnt; i++) {
		ret = rd_sym(r, t, i, &s);
		if (ret)
			return ret;
		if (s.bind != STB_LOCAL && first == cnt)
			first = i;
		ret = t->dst ? qp_patch__add_dst_sym(r->p, &s) :
			       qp_patch__add_src_sym(r->p, &s);
		if (ret < 0)
			return rd_err(r, t->name, ret, "cannot add symbol: %s",
				      qp_strerror(ret));
	}
	if (t->sym.sh.sh_info != first)
		return rd_fmt(r, t->name, "sh_info %u is not the index of the first non-local symbol (%zu)",
			      t->sym.sh.sh_info, first);
	return 0;
}

/* The symbol table at ELF index @ndx and its string table @strname at
 * @strndx: version 1's own, or version 2's .shstrtab. */
static int rd_symtab(struct reader *r, size_t ndx, const char *name,
		     size_t strndx, const char *strname, bool dst)
{
	struct rd_symtab t = { .name = name, .dst = dst };
	const struct rd_sec *str = &t.str;
	int ret;

	ret = rd_fixed(r, ndx, &t.sym, name, SHT_SYMTAB, (uint32_t)strndx,
		       sizeof(Elf64_Sym));
	if (!ret)
		ret = rd_fixed(r, strndx, &t.str, strname, SHT_STRTAB, 0, 0);
	if (ret)
		return ret;
	if (!str->sh.sh_size || str->buf[0] || str->buf[str->sh.sh_size - 1])
		return rd_fmt(r, strname, "does not start and end with a NUL byte");
	return rd_syms(r, &t);
}

/* ---- .qpatch.diffdata ------------------------------------------------ */

/* Version 2 names the first content section in sh_info (SHF_INFO_LINK),
 * where the image the entries apply to starts; version 1 none. */
static int rd_diffdata(struct reader *r, size_t ndx, size_t symtab)
{
	bool link = r->version >= 2 && r->nsec;
	struct rd_sec s;
	size_t i, cnt;
	int ret = rd_fixed_at(r, ndx, &s, QP_SEC_DIFFDATA, SHT_RELA,
			      (uint32_t)symtab, sizeof(Elf64_Rela),
			      link ? SHF_INFO_LINK : 0, link ? 2 : 0);

	if (ret)
		return ret;
	cnt = s.sh.sh_size / sizeof(Elf64_Rela);
	for (i = 0; i < cnt; i++) {
		Elf64_Rela er;
		struct qp_rela q;

		memcpy(&er, s.buf + i * sizeof(er), sizeof(er));
		q.offset = er.r_offset;
		q.type = (uint32_t)ELF64_R_TYPE(er.r_info);
		q.sym = (uint32_t)ELF64_R_SYM(er.r_info);
		q.addend = er.r_addend;
		ret = qp_patch__add_rela(r->p, &q);
		if (ret < 0)
			return rd_err(r, QP_SEC_DIFFDATA, ret,
				      "cannot add relocation: %s", qp_strerror(ret));
	}
	return 0;
}

/* ---- the file -------------------------------------------------------- */

/* Version 2: image_size is the end of the last content section. */
static uint64_t rd_image_end(const struct qp_patch *p)
{
	uint64_t end = 0;
	size_t i;

	for (i = 0; i < qp_patch__section_count(p); i++) {
		const struct qp_section *s = qp_patch__section(p, i);

		if (s->addr > UINT64_MAX - s->size)
			return UINT64_MAX; /* refused by validation */
		if (s->addr + s->size > end)
			end = s->addr + s->size;
	}
	return end;
}

/* The tables after the content sections, by version. */
static int rd_tables(struct reader *r)
{
	size_t base = r->nsec + 2, str = r->shnum - 1;
	int ret;

	if (r->version == 1) {
		ret = rd_symtab(r, base, QP_SEC_SYMTAB_SRC, base + 1,
				QP_SEC_STRTAB_SRC, false);
		if (!ret)
			ret = rd_symtab(r, base + 2, QP_SEC_SYMTAB_DST, base + 3,
					QP_SEC_STRTAB_DST, true);
		return ret ? ret : rd_diffdata(r, base + 4, base);
	}
	ret = rd_symtab(r, base, QP_SEC_SYMTAB_SRC, str, ".shstrtab", false);
	if (!ret)
		ret = rd_symtab(r, base + 1, QP_SEC_SYMTAB_DST, str, ".shstrtab",
				true);
	return ret ? ret : rd_diffdata(r, base + 2, base);
}

/* Rules 61 and 62: a signed file is read without its signature block,
 * which the model keeps. */
static int rd_signature(struct reader *r)
{
	struct qp_sig_disk sig;
	int ret = qp_sig_find(r->image, r->size, &sig, r->name, r->err);

	if (ret <= 0)
		return ret;
	r->size -= QP_SIG_SIZE;
	qp_patch__set_signature(r->p, &sig);
	return 0;
}

static int rd_file(struct reader *r)
{
	size_t i, fixed;
	int ret = rd_signature(r);

	if (!ret)
		ret = rd_ident(r);
	if (!ret && elf_version(EV_CURRENT) == EV_NONE)
		ret = rd_fmt(r, NULL, "libelf: %s", elf_errmsg(-1));
	if (ret)
		return ret;
	r->elf = elf_memory((char *)r->image, r->size);
	if (!r->elf)
		return rd_fmt(r, NULL, "elf_memory: %s", elf_errmsg(-1));
	if (elf_kind(r->elf) != ELF_K_ELF)
		return rd_fmt(r, NULL, "not an ELF file");
	ret = rd_ehdr(r);
	if (!ret)
		ret = rd_layout(r);
	if (!ret)
		ret = rd_info(r);
	if (ret)
		return ret;
	fixed = r->version == 1 ? RD_FIXED_SECTIONS_V1 : RD_FIXED_SECTIONS;
	if (r->shnum < fixed)
		return rd_fmt(r, NULL, "%zu sections, expected at least %zu",
			      r->shnum, fixed);
	r->nsec = r->shnum - fixed;
	for (i = 0; !ret && i < r->nsec; i++)
		ret = rd_content(r, i + 2);
	if (!ret)
		ret = rd_tables(r);
	if (ret)
		return ret;
	if (r->version != 1)
		r->info.image_size = rd_image_end(r->p);
	if (qp_patch__set_info(r->p, &r->info))
		return rd_fmt(r, NULL, "bad info");
	if (qp_patch__validate(r->p, r->err))
		ret = qp_preperr(r->err, QP_EFORMAT, "'%s'", r->name);
	return ret;
}

/* Parse @image (malloc'ed, @size bytes; freed here). */
static struct qp_patch *rd_parse(uint8_t *image, size_t size, const char *name,
				 struct qp_error *err)
{
	struct reader r = { .name = name, .err = err, .image = image,
			    .size = size };
	int ret;

	r.p = qp_patch__new();
	if (!r.p)
		ret = rd_err(&r, NULL, -ENOMEM, "out of memory");
	else
		ret = rd_file(&r);
	if (r.elf)
		elf_end(r.elf);
	free(image);
	if (ret) {
		qp_patch__free(r.p);
		return NULL;
	}
	return r.p;
}

struct qp_patch *qp_patch__open_named(const void *buf, size_t size, const char *name,
				      struct qp_error *err)
{
	uint8_t *image;

	if (!buf && size)
		return qp_seterr(err, -EINVAL, "'%s': no buffer", name), NULL;
	if (size > RD_MAX_FILE_SIZE)
		return qp_seterr(err, QP_EFORMAT, "'%s': %zu bytes, more than %llu",
				 name, size, RD_MAX_FILE_SIZE), NULL;
	/* a private, aligned copy: libelf may point into it, never at @buf */
	image = malloc(size ? size : 1);
	if (!image)
		return qp_seterr(err, -ENOMEM, "'%s': out of memory", name), NULL;
	if (size)
		memcpy(image, buf, size);
	return rd_parse(image, size, name, err);
}

struct qp_patch *qp_patch__open_mem(const void *buf, size_t size,
				    struct qp_error *err)
{
	return qp_patch__open_named(buf, size, "<memory>", err);
}

struct qp_patch *qp_patch__open(const char *path, struct qp_error *err)
{
	uint8_t *image = NULL;
	size_t size = 0;
	int fd, ret;

	if (!path)
		return qp_seterr(err, -EINVAL, "no path"), NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return qp_seterr(err, -errno, "unable to open '%s': %s", path,
				 strerror(errno)), NULL;
	ret = qp_read_regular(fd, path, (size_t)RD_MAX_FILE_SIZE, &image, &size, err);
	close(fd);
	if (ret)
		return NULL;
	return rd_parse(image, size, path, err);
}
