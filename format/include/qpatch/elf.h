/* SPDX-License-Identifier: MIT */
/*
 * A small read-only model of an ELF object or binary, shared by the builder
 * (objects of both builds, the target binary) and the loader (binaries and
 * libraries mapped in the target process).  libelf is read once, into
 * arrays of sections, symbols and relocations with name lookups; nothing is
 * written back.
 *
 * Lifetime: everything points into the struct qp_elf, valid until
 * qp_elf__free().  Section bytes point into libelf's data.
 */
#ifndef QPATCH_ELF_H
#define QPATCH_ELF_H

#include <gelf.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qpatch/error.h"

struct qp_elf_sym;

struct qp_elf_rela {
	uint64_t offset;           /* r_offset, inside the section it applies to */
	uint32_t type;             /* R_X86_64_* */
	struct qp_elf_sym *sym;    /* symbol, NULL for index 0 */
	int64_t addend;            /* r_addend */
};

struct qp_elf_sec {
	size_t index;              /* section header index */
	const char *name;          /* section name */
	GElf_Shdr shdr;            /* header */
	const uint8_t *data;       /* contents (NULL for SHT_NOBITS or empty) */
	size_t size;               /* sh_size */
	struct qp_elf_rela *relas; /* relocations applying to this section, by offset */
	size_t nrelas;             /* count of relas */
	struct qp_elf_sym *sym;    /* its STT_SECTION symbol, if any */
};

struct qp_elf_sym {
	size_t index;              /* index in the symbol table */
	const char *name;          /* name ("" when none) */
	uint64_t value;            /* st_value */
	uint64_t size;             /* st_size */
	uint8_t type;              /* STT_* */
	uint8_t bind;              /* STB_* */
	uint8_t other;             /* st_other */
	uint16_t shndx;            /* st_shndx (SHN_XINDEX resolved) */
	struct qp_elf_sec *sec;    /* defining section, NULL if undefined/abs/common */
	const char *file;          /* for STB_LOCAL: name of the preceding STT_FILE, or NULL */
	size_t file_index;         /* index of that STT_FILE symbol (0 if none) */
};

struct qp_elf {
	char *path;                /* file name, for messages */
	int fd;                    /* open descriptor, -1 for memory images */
	Elf *elf;                  /* libelf handle */
	GElf_Ehdr ehdr;            /* ELF header */
	struct qp_elf_sec *secs;   /* all sections, index == section index */
	size_t nsecs;              /* count of secs */
	struct qp_elf_sym *syms;   /* symbols of the chosen table */
	size_t nsyms;              /* count of syms */
	bool dynamic;              /* syms come from .dynsym */
	uint8_t build_id[64];      /* NT_GNU_BUILD_ID descriptor */
	size_t build_id_size;      /* 0 when there is none */
	uint32_t *hash;            /* open-addressing table of syms by name (indices + 1) */
	size_t hash_size;          /* power of two */
};

enum qp_elf_flags {
	QP_ELF_DYNSYM = 1 << 0,    /* read .dynsym instead of .symtab */
	QP_ELF_NO_RELAS = 1 << 1,  /* skip relocation sections */
};

/* Open and read @path.  Falls back to .dynsym when there is no .symtab. */
int qp_elf__open(const char *path, unsigned flags, struct qp_elf **out,
		 struct qp_error *err);
/* A model with no sections and no symbols (but the null entries), standing
 * for an object that does not exist, e.g. the original of a new file. */
int qp_elf__new_empty(const char *name, struct qp_elf **out, struct qp_error *err);
void qp_elf__free(struct qp_elf *e);

/* First defined symbol named @name, globals preferred over locals; NULL. */
struct qp_elf_sym *qp_elf__find_sym(const struct qp_elf *e, const char *name);
/* Defined global/weak symbol named @name, also matching "name@VERSION" and
 * "name@@VERSION" entries; NULL when none. */
struct qp_elf_sym *qp_elf__find_global(const struct qp_elf *e, const char *name);
struct qp_elf_sec *qp_elf__find_sec(const struct qp_elf *e, const char *name);

/* Call @fn for each symbol named exactly @name; stops early when it returns
 * non-zero and returns that value. */
int qp_elf__for_each_named(const struct qp_elf *e, const char *name,
			   int (*fn)(struct qp_elf_sym *sym, void *arg), void *arg);

/* Read just the build-id of an ELF file (the loader checks many files). */
int qp_elf_read_build_id(const char *path, uint8_t *buf, size_t bufsz,
			 size_t *len, struct qp_error *err);

/*
 * The build-id of a loaded object (executable or shared library) from its
 * PT_NOTE segments, without libelf: for scans of every mapped file.  The
 * file is untrusted; 0, -ENOENT (no build-id), -EINVAL (malformed or larger
 * than @bufsz) or -errno.  qp_buildid_from_notes() parses the note bytes of
 * one segment or section.
 */
int qp_buildid_from_fd(int fd, uint8_t *buf, size_t bufsz, size_t *len);
int qp_buildid_from_notes(const void *notes, size_t size, uint8_t *buf, size_t bufsz,
			  size_t *len);

/*
 * The DT_NEEDED names of a loaded object, read from its PT_DYNAMIC segment
 * and string table, into @out as "name\0name\0...\0" (an empty list is
 * one NUL; what does not fit in @size is left out).  Untrusted file; 0,
 * -ENOENT (no PT_DYNAMIC: a static program), -EINVAL or -errno.
 */
int qp_elf_fd_needed(int fd, char *out, size_t size);

/* Whether the dynamic string table of the loaded object open as @fd (read
 * as qp_elf_fd_needed() does) holds one of the @n @names as a whole string:
 * a name the object imports or exports.  Same return values. */
int qp_elf_fd_dynstr_has(int fd, const char *const *names, size_t n, bool *found);

/* Lowest p_vaddr of a PT_LOAD segment, rounded down to a page; the load
 * bias of a mapped object is (map start of offset-0 mapping - this). */
uint64_t qp_elf__first_load_vaddr(const struct qp_elf *e);

/* Lowercase hex of a build-id into @out (2*len+1 bytes). */
void qp_hex(const uint8_t *buf, size_t len, char *out);

static inline bool qp_sym_is_defined(const struct qp_elf_sym *s)
{
	return s->shndx != SHN_UNDEF && s->type != STT_FILE &&
	       s->type != STT_SECTION;
}

#define qp_elf_for_each_sec(e, s) \
	for ((s) = (e)->secs + 1; (s) < (e)->secs + (e)->nsecs; (s)++)
#define qp_elf_for_each_sym(e, s) \
	for ((s) = (e)->syms + 1; (s) < (e)->syms + (e)->nsyms; (s)++)

#endif
