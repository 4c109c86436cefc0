/* SPDX-License-Identifier: MIT */
/*
 * The .qpatch file, format version 2 (specified in docs/format.md); the
 * reader also reads version 1, and the writer writes the version of the
 * model's info (1 or 2).
 *
 * A patch is an ELF64 little-endian x86-64 ET_REL file.  In memory it is a
 * `struct qp_patch`: an info block, the content sections of the patch image,
 * two symbol tables and one relocation table.  The same object is filled by
 * the builder and written with qp_patch__write(), or produced by the reader
 * (qp_patch__open(), qp_patch__open_mem()) from untrusted bytes; both paths
 * run qp_patch__validate(), so a patch in memory is always a valid one.
 *
 * Index conventions (identical in memory and on disk):
 *  - symbol tables hold the null symbol at index 0, like ELF's; the
 *    qp_patch__add_*_sym() calls return the index of the added symbol.
 *  - in the src table, STT_FILE symbols open the group of STB_LOCAL symbols
 *    that belong to that source file; all locals precede all globals.
 *  - a dst symbol's shndx is the index of a content section in this patch
 *    (0-based, as returned by qp_patch__add_section()), its value the offset
 *    inside that section.
 *  - relocations name symbols of the src table by index.
 *
 * Ownership: a qp_patch owns copies of everything added to it; pointers
 * returned by the accessors stay valid until qp_patch__free().
 */
#ifndef QPATCH_FORMAT_H
#define QPATCH_FORMAT_H

#include <elf.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qpatch/error.h"

#ifndef ELFCOMPRESS_ZSTD
#define ELFCOMPRESS_ZSTD 2 /* gABI value; older <elf.h> lack it */
#endif

#define QP_FORMAT_VERSION 2 /* what the builder writes */
#define QP_FORMAT_VERSION_MIN 1 /* oldest version read and written */
#define QP_INFO_MAGIC "QPATCH\0\1" /* 8 bytes, first bytes of .qpatch.info */
#define QP_ID_MAX 64               /* patch id, NUL included */
#define QP_BUILD_ID_MAX 64         /* bytes of the target build-id */
#define QP_NAME_MAX 256            /* target object name, NUL included */
#define QP_TOOL_MAX 32             /* tool version string, NUL included */

/* Section names. */
#define QP_SEC_INFO ".qpatch.info"
#define QP_SEC_SYMTAB_SRC ".qpatch.symtab.src"
#define QP_SEC_STRTAB_SRC ".qpatch.strtab.src" /* version 1 only */
#define QP_SEC_SYMTAB_DST ".qpatch.symtab.dst"
#define QP_SEC_STRTAB_DST ".qpatch.strtab.dst" /* version 1 only */
#define QP_SEC_DIFFDATA ".qpatch.diffdata"
#define QP_SEC_TEXT ".qpatch.text"
#define QP_SEC_RODATA ".qpatch.rodata"
#define QP_SEC_DATA ".qpatch.data"
#define QP_SEC_BSS ".qpatch.bss"
/* Call frame information of the patch's functions: a read-only content
 * section in .eh_frame form, fully resolved (docs/format.md). */
#define QP_SEC_EH_FRAME ".qpatch.eh_frame"

/*
 * Relocation type beyond the x86-64 psABI ones, used in .qpatch.diffdata:
 * "the old function src[sym] is replaced by the new function dst[addend],
 * which starts at image offset r_offset".
 */
#define QP_R_REPLACE 0x5150u

/*
 * 32-bit absolute references to the patch image itself, from code built
 * without -fPIE (non-PIE programs live below 4 GiB, and so does a patch
 * near them): the field gets image + r_addend, zero-extended (IMAGE32) or
 * sign-extended (IMAGE32S); sym is 0.  The 32-bit counterparts of
 * R_X86_64_RELATIVE.
 */
#define QP_R_IMAGE32 0x5151u
#define QP_R_IMAGE32S 0x5152u

/*
 * "The old code src[sym] is part of the old function src[addend], which a
 * QP_R_REPLACE of this patch replaces": its cold part (foo.cold, where gcc
 * puts unlikely branches, entered and left by plain jumps).  The loader
 * checks that no thread is in it or due to return into it, as for the
 * function itself.  r_offset is 0; nothing is written.
 */
#define QP_R_BUSY 0x5153u

/*
 * "The old function src[sym], which a QP_R_REPLACE of this patch
 * replaces, is followed by r_addend bytes of alignment padding (NOP and
 * INT3 instructions, up to the next symbol) that nothing refers to": a
 * function shorter than the jump may take it there.  The loader checks
 * again that those bytes are padding.  r_offset is 0; nothing is written.
 */
#define QP_R_ROOM 0x5154u
#define QP_ROOM_MAX 64 /* most padding bytes a QP_R_ROOM names */

/*
 * "The old function src[sym], which a QP_R_REPLACE of this patch
 * replaces, is shorter than the jump and has no room after it: its direct
 * callers (call, jmp and jcc rel32 whose destination is its start) are
 * sent to the new function instead, and no jump is written."  The builder
 * found that nothing else leads into it (callsites.h); the loader finds
 * the sites again and checks each in the process.  r_offset and r_addend
 * are 0; nothing is written in the image.
 */
#define QP_R_CALLS 0x5155u

/* src symbol shndx values: where the loader finds the symbol. */
#define QP_SRC_IN_TARGET SHN_ABS  /* value is a link-time address in the target object */
#define QP_SRC_EXTERNAL SHN_UNDEF /* look the name up in the process's loaded libraries */

/* Upper bound on the decompressed size of one section and of the image;
 * the reader refuses more, so a hostile file cannot make it allocate much. */
#define QP_MAX_SECTION_SIZE (256u << 20)

/* Largest section alignment: the loader maps the image page aligned. */
#define QP_MAX_ALIGN 4096u

/* Info block, the .qpatch.info section; on-disk layout is this struct,
 * little-endian, packed naturally (no padding: see the static assert). */
struct qp_info_disk {
	char magic[8];                   /* QP_INFO_MAGIC */
	uint32_t version;                /* QP_FORMAT_VERSION */
	uint32_t flags;                  /* 0; reserved */
	char id[QP_ID_MAX];              /* patch id, NUL-terminated, NUL-padded */
	uint8_t build_id[QP_BUILD_ID_MAX]; /* target build-id, zero-padded */
	uint32_t build_id_size;          /* 1..QP_BUILD_ID_MAX */
	uint32_t reserved;               /* 0 */
	char target_name[QP_NAME_MAX];   /* target object file name, NUL-terminated */
	char tool_version[QP_TOOL_MAX];  /* qpatch version that built it */
	uint64_t image_size;             /* bytes the loaded image occupies */
};
_Static_assert(sizeof(struct qp_info_disk) == 448, "qp_info_disk layout");

/* Info block of format version 2: this header, then build_id_size bytes
 * of build-id, then id, target_name and tool_version, each of the given
 * length, without NUL bytes; nothing after them.  image_size is not
 * stored: it is the end of the last content section. */
struct qp_info2_disk {
	char magic[8];           /* QP_INFO_MAGIC */
	uint32_t version;        /* 2 */
	uint32_t flags;          /* 0; reserved */
	uint8_t build_id_size;   /* 1..QP_BUILD_ID_MAX */
	uint8_t id_len;          /* 1..QP_ID_MAX - 1 */
	uint8_t target_name_len; /* 1..QP_NAME_MAX - 1 */
	uint8_t tool_version_len; /* 0..QP_TOOL_MAX - 1 */
};
_Static_assert(sizeof(struct qp_info2_disk) == 20, "qp_info2_disk layout");
/* Every length fits its byte, and any target_name_len fits target_name. */
_Static_assert(QP_BUILD_ID_MAX <= UINT8_MAX && QP_ID_MAX - 1 <= UINT8_MAX &&
	       QP_TOOL_MAX - 1 <= UINT8_MAX && QP_NAME_MAX - 1 == UINT8_MAX,
	       "qp_info2_disk lengths");

/* Info in memory; same fields, strings guaranteed NUL-terminated. */
struct qp_info {
	uint32_t version;                  /* of the file read, or to write: 1 or 2 */
	uint32_t flags;                    /* 0 */
	char id[QP_ID_MAX];                /* patch id */
	uint8_t build_id[QP_BUILD_ID_MAX]; /* target build-id */
	uint32_t build_id_size;            /* bytes used in build_id */
	char target_name[QP_NAME_MAX];     /* e.g. "counter" or "libfoo.so.1" */
	char tool_version[QP_TOOL_MAX];    /* e.g. "0.1.0" */
	uint64_t image_size;               /* highest addr+size of any content section */
};

/* A content section of the patch image (.qpatch.text/.rodata/.data/.bss). */
struct qp_section {
	const char *name;    /* section name */
	uint32_t type;       /* SHT_PROGBITS or SHT_NOBITS */
	uint64_t flags;      /* SHF_ALLOC, plus SHF_EXECINSTR / SHF_WRITE */
	uint64_t addr;       /* offset of the section inside the patch image */
	uint64_t size;       /* bytes (uncompressed) */
	uint64_t align;      /* power of two; addr is a multiple of it */
	const uint8_t *data; /* size bytes, uncompressed; NULL for SHT_NOBITS */
};

/* A symbol of either table; mirrors Elf64_Sym with the name as a string. */
struct qp_sym {
	const char *name;    /* "" for the null symbol */
	uint64_t value;      /* src: link-time address in the target; dst: offset in section */
	uint64_t size;       /* st_size */
	uint8_t type;        /* STT_NOTYPE/OBJECT/FUNC/FILE/TLS... */
	uint8_t bind;        /* STB_LOCAL/GLOBAL/WEAK */
	uint16_t shndx;      /* src: QP_SRC_IN_TARGET/QP_SRC_EXTERNAL; dst: content section index */
};

/* An entry of .qpatch.diffdata (Elf64_Rela). */
struct qp_rela {
	uint64_t offset;     /* image offset of the field (QP_R_REPLACE: of the new function) */
	uint32_t type;       /* R_X86_64_* or QP_R_REPLACE */
	uint32_t sym;        /* src symbol index; 0 for R_X86_64_RELATIVE */
	int64_t addend;      /* addend (QP_R_REPLACE: dst symbol index of the new function) */
};

struct qp_patch;

/* Writer side. */
struct qp_patch *qp_patch__new(void);
int qp_patch__set_info(struct qp_patch *p, const struct qp_info *info);
/* Returns the new section's index (>= 0) or a negative errno. */
int qp_patch__add_section(struct qp_patch *p, const struct qp_section *sec);
/* Return the new symbol's index (>= 1) or a negative errno. */
int qp_patch__add_src_sym(struct qp_patch *p, const struct qp_sym *sym);
int qp_patch__add_dst_sym(struct qp_patch *p, const struct qp_sym *sym);
int qp_patch__add_rela(struct qp_patch *p, const struct qp_rela *rela);
/* Validate, then write to @path / to a malloc'ed buffer the caller frees. */
int qp_patch__write(struct qp_patch *p, const char *path, struct qp_error *err);
int qp_patch__write_mem(struct qp_patch *p, void **buf, size_t *size,
			struct qp_error *err);

/* Reader side: parse and validate untrusted input; NULL and @err on error. */
struct qp_patch *qp_patch__open(const char *path, struct qp_error *err);
struct qp_patch *qp_patch__open_mem(const void *buf, size_t size,
				    struct qp_error *err);
/* The same, with @name (a file name) in messages instead of "<memory>". */
struct qp_patch *qp_patch__open_named(const void *buf, size_t size, const char *name,
				      struct qp_error *err);

/* Checks every rule of docs/format.md "What the reader validates". */
int qp_patch__validate(const struct qp_patch *p, struct qp_error *err);

/* Accessors. */
const struct qp_info *qp_patch__info(const struct qp_patch *p);
size_t qp_patch__section_count(const struct qp_patch *p);
const struct qp_section *qp_patch__section(const struct qp_patch *p, size_t i);
size_t qp_patch__src_sym_count(const struct qp_patch *p); /* includes null */
const struct qp_sym *qp_patch__src_sym(const struct qp_patch *p, size_t i);
size_t qp_patch__dst_sym_count(const struct qp_patch *p); /* includes null */
const struct qp_sym *qp_patch__dst_sym(const struct qp_patch *p, size_t i);
size_t qp_patch__rela_count(const struct qp_patch *p);
const struct qp_rela *qp_patch__rela(const struct qp_patch *p, size_t i);
/* Image offset of dst symbol @i (its section's addr + value). */
uint64_t qp_patch__dst_sym_addr(const struct qp_patch *p, size_t i);

void qp_patch__free(struct qp_patch *p);

/* Name of a relocation type, "R_X86_64_PC32", "QP_R_REPLACE", or NULL. */
const char *qp_rela_type_name(uint32_t type);
/* A thread-local access (TPOFF32, GOTTPOFF, TLSGD, TLSLD, DTPOFF32): its
 * symbol must be STT_TLS, and no other type may name an STT_TLS symbol. */
bool qp_rela_is_tls(uint32_t type);

#endif
