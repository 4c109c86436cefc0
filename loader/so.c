// SPDX-License-Identifier: MIT
/*
 * Hand-written patches as shared libraries (qpatch-load --so).
 *
 * The library names what it replaces in its ".qpatch.so" section
 * (qpatch/so.h).  Apply, in order:
 *   1. while the target runs: read and check the library file and its
 *      table (sotab.c); find the object it patches (file name or
 *      build-id) and resolve each old symbol in that object's symbol
 *      table (statics by source file); check each patch site as for a
 *      .qpatch; find dlopen, dlclose, dlerror in the process;
 *   2. stop every thread, pick one that may run dlopen (sothread.c): not
 *      inside the dynamic linker, malloc and its kin, or the dl* functions (one
 *      blocked in a system call preferred); the others go on running;
 *   3. with that thread: map the record (a memfd near the target, as for
 *      a .qpatch), write the library's path into it, call dlopen there;
 *      find the library from the handle (its link_map), read its table
 *      back relocated, check each new function lies in the library, fill
 *      the QPATCH_SYM pointers, write a jump stub per function into the
 *      mapping (the library may be beyond the reach of a 5-byte jump);
 *   4. stop every thread, busy check, write the jumps (apply.c), record
 *      "applied".
 * A failure after dlopen dlcloses the library and removes the mapping.
 * Undo (undo.c) puts the bytes back as for any patch, and dlcloses the
 * library once no thread runs in it or in the mapping.
 */
#include <errno.h>
#include <dlfcn.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "ld.h"
#include "qpatch/decode.h"
#include "qpatch/elf.h"
#include "sotab.h"
#include "sotype.h"


/* One apply of a .so: the loader's context first (callbacks get it). */
struct so_ctx {
	struct ld_ctx c;
	char path[QP_SO_PATH_MAX];     /* the library, absolute */
	char id[QP_ID_MAX];            /* its file name: the patch id */
	struct qp_elf *lib;            /* its file */
	const struct qp_elf_sec *sec;  /* its .qpatch.so */
	struct ld_so_table tab;        /* the table parsed from the file */
	struct qp_elf *obj;            /* the target object's file */
	uint64_t *addr;                /* per tab item: the target symbol's address */
	size_t *item;                  /* per c.funcs[]: its tab item */
	uint64_t rec_so_off, stubs_off; /* layout of the mapping */
	uint64_t handle;               /* dlopen's answer, 0 until loaded */
	uint64_t lib_lo, lib_hi;       /* the library's mappings once loaded */
};

/* --- the library file ----------------------------------------------------- */

static int so_open_lib(struct so_ctx *s, const char *path, struct qp_error *err)
{
	char real[PATH_MAX];
	const char *base;
	bool dyn = false, interp = false, truncated = false;
	struct stat st;
	size_t i, n;

	if (!realpath(path, real))
		return qp_seterr(err, -errno, "cannot open '%s': %s", path, strerror(errno));
	if (strlen(real) >= sizeof(s->path))
		return qp_seterr(err, -ENAMETOOLONG, "'%s': path longer than %d bytes", real,
				 QP_SO_PATH_MAX - 1);
	snprintf(s->path, sizeof(s->path), "%s", real);
	base = strrchr(real, '/') ? strrchr(real, '/') + 1 : real;
	snprintf(s->id, sizeof(s->id), "%s", s->c.opts && s->c.opts->so_id ? s->c.opts->so_id : base);
	if (qp_elf__open(real, QP_ELF_NO_RELAS, &s->lib, err))
		return qp_preperr(err, QP_EFORMAT, "'%s' is not a shared library", path);
	if (s->lib->ehdr.e_ident[EI_CLASS] != ELFCLASS64 || s->lib->ehdr.e_machine != EM_X86_64)
		return qp_seterr(err, QP_EFORMAT, "'%s' is not an x86-64 ELF object", path);
	if (stat(real, &st))
		return qp_seterr(err, -errno, "cannot stat '%s': %s", path, strerror(errno));
	if (s->lib->ehdr.e_shoff > (uint64_t)st.st_size ||
	    (uint64_t)s->lib->ehdr.e_shnum * s->lib->ehdr.e_shentsize >
	    (uint64_t)st.st_size - s->lib->ehdr.e_shoff)
		truncated = true;
	if (elf_getphdrnum(s->lib->elf, &n))
		n = 0;
	for (i = 0; i < n; i++) {
		GElf_Phdr ph;

		if (gelf_getphdr(s->lib->elf, (int)i, &ph)) {
			dyn |= ph.p_type == PT_DYNAMIC;
			interp |= ph.p_type == PT_INTERP;
			truncated |= ph.p_offset > (uint64_t)st.st_size ||
				     ph.p_filesz > (uint64_t)st.st_size - ph.p_offset;
		}
	}
	if (truncated)
		return qp_seterr(err, QP_EFORMAT, "'%s' is truncated (%lld bytes; its headers say more)",
				 path, (long long)st.st_size);
	if (s->lib->ehdr.e_type != ET_DYN || !dyn || interp)
		return qp_seterr(err, QP_EFORMAT,
				 "'%s' is not a shared library (build it with cc -shared -fPIC)", path);
	s->sec = qp_elf__find_sec(s->lib, QPATCH_SO_SECTION);
	if (!s->sec)
		return qp_seterr(err, QP_EFORMAT,
				 "'%s' has no " QPATCH_SO_SECTION " section: it names nothing to replace (QPATCH_REPLACE of qpatch/so.h)",
				 path);
	if (s->sec->shdr.sh_type != SHT_PROGBITS || !(s->sec->shdr.sh_flags & SHF_ALLOC) ||
	    !s->sec->data || s->sec->size != s->sec->shdr.sh_size)
		return qp_seterr(err, QP_EFORMAT, "'%s': section " QPATCH_SO_SECTION " is not loaded data",
				 path);
	if (ld_so_table_parse(s->sec->data, s->sec->size, &s->tab, err))
		return qp_preperr(err, QP_EFORMAT, "'%s'", path);
	return 0;
}

/* --- the target object and its symbols -------------------------------------- */

static const char *so_base(const char *path, char *buf, size_t size)
{
	const char *b = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	char *del;

	snprintf(buf, size, "%s", b);
	del = strstr(buf, " (deleted)");
	if (del)
		*del = '\0';
	return buf;
}

static int so_find_target(struct so_ctx *s, struct qp_error *err)
{
	struct ld_ctx *c = &s->c;
	size_t i;

	for (i = 0; i < c->maps.n; i++) {
		const struct qp_map *m = &c->maps.v[i];
		char path[600], base[512];
		uint8_t id[QP_BUILD_ID_MAX];
		size_t n = 0;

		if (m->offset || m->path[0] != '/' || !strncmp(m->path, "/memfd:", 7))
			continue;
		ld_map_file(c->pid, m, path, sizeof(path));
		if (s->tab.target_kind == QPATCH_SO_TARGET ?
		    strcmp(so_base(m->path, base, sizeof(base)), s->tab.target) :
		    (qp_elf_read_build_id(path, id, sizeof(id), &n, NULL) ||
		     n != s->tab.build_id_size || memcmp(id, s->tab.build_id, n)))
			continue;
		if (qp_elf__open(path, QP_ELF_NO_RELAS, &s->obj, err))
			return err->code;
		c->bias = s->obj->ehdr.e_type == ET_EXEC ? 0 : m->start - qp_elf__first_load_vaddr(s->obj);
		c->target = m;
		ld_object_range(&c->maps, m->path, &c->obj_lo, &c->obj_hi);
		return 0;
	}
	return qp_seterr(err, QP_ETARGET, "process %d maps no object %s '%s' (the library's QPATCH_TARGET%s)",
			 (int)c->pid,
			 s->tab.target_kind == QPATCH_SO_TARGET ? "named" : "with build-id",
			 s->tab.target, s->tab.target_kind == QPATCH_SO_TARGET ? "" : "_BUILDID");
}

static bool so_file_is(const char *symfile, const char *want)
{
	const char *b;

	if (!symfile)
		return false;
	if (!strcmp(symfile, want))
		return true;
	b = strrchr(symfile, '/');
	return b && !strcmp(b + 1, want);
}

/*
 * Item @it in the target object: a function (QPATCH_REPLACE) or a function
 * or variable (QPATCH_SYM).  With a file, the statics after that file's
 * FILE symbol; without, the one global of that name, else the one symbol.
 * Aliases (same address) count once.
 */
static int so_resolve_one(struct so_ctx *s, const struct ld_so_item *it, uint64_t *addr,
			  uint64_t *size, struct qp_error *err)
{
	const struct qp_elf *e = s->obj;
	const struct qp_elf_sym *hit = NULL, *glob = NULL;
	char files[512] = "";
	size_t i, nhit = 0, nglob = 0, len = 0;

	for (i = 0; i < e->nsyms; i++) {
		const struct qp_elf_sym *y = &e->syms[i];
		bool func = y->type == STT_FUNC;

		if (!qp_sym_is_defined(y) || strcmp(y->name, it->name) ||
		    !(func || (it->kind == QPATCH_SO_SYM && y->type == STT_OBJECT)))
			continue;
		if (it->file[0] && !(y->bind == STB_LOCAL && so_file_is(y->file, it->file)))
			continue;
		if (y->bind != STB_LOCAL && (!glob || glob->value != y->value)) {
			glob = y;
			nglob++;
		}
		if (hit && hit->value == y->value)
			continue;
		if (len < sizeof(files) - 1)
			len += (size_t)snprintf(files + len, sizeof(files) - len, "%s%s", len ? ", " : "",
						y->bind == STB_LOCAL ? (y->file ? y->file : "?") : "global");
		hit = y;
		nhit++;
	}
	if (nglob == 1 && !it->file[0])
		hit = glob, nhit = 1;
	if (!nhit)
		return qp_seterr(err, QP_ERESOLVE, "'%s%s%s' is not a %s of '%s' in process %d%s",
				 it->file, it->file[0] ? ":" : "", it->name,
				 it->kind == QPATCH_SO_REPLACE ? "function" : "function or variable",
				 s->c.target->path, (int)s->c.pid,
				 e->dynamic ? " (it has no .symtab, so only exported symbols can be named)" : "");
	if (nhit > 1)
		return qp_seterr(err, QP_ERESOLVE,
				 "'%s' is ambiguous in '%s': defined in %s; name one as 'file.c:%s' (QPATCH_REPLACE_IN, QPATCH_SYM)",
				 it->name, s->c.target->path, files, it->name);
	if (it->kind == QPATCH_SO_REPLACE && !hit->size)
		return qp_seterr(err, QP_EUNSUPP, "'%s' has no size in the symbol table of '%s'",
				 it->name, s->c.target->path);
	*addr = s->c.bias + hit->value;
	*size = hit->size;
	return 0;
}

/* Bytes after the function at @addr, @size bytes long, that a jump longer
 * than it may take: up to the next symbol of the object, at most 64
 * (whether they are padding is read from the process). */
static uint64_t so_room(const struct so_ctx *s, uint64_t addr, uint64_t size)
{
	uint64_t end = addr - s->c.bias + size, room = 64;
	size_t i;

	if (size >= QP_JMP_REL32_SIZE)
		return 0;
	for (i = 0; i < s->obj->nsyms; i++) {
		const struct qp_elf_sym *y = &s->obj->syms[i];

		if (qp_sym_is_defined(y) && y->value >= end && y->value - end < room)
			room = y->value - end;
	}
	return room + size >= QP_JMP_REL32_SIZE ? room : 0;
}

/* Each old function: its address, its patch site checked (whole
 * instructions, no branch into the jump), the bytes the jump will take. */
static int so_prepare_funcs(struct so_ctx *s, struct qp_error *err)
{
	struct ld_ctx *c = &s->c;
	size_t i, j;
	int ret = 0;

	s->addr = calloc(s->tab.n, sizeof(*s->addr));
	s->item = calloc(s->tab.nreplace, sizeof(*s->item));
	c->funcs = calloc(s->tab.nreplace, sizeof(*c->funcs));
	if (!s->addr || !s->item || !c->funcs)
		return qp_seterr(err, -ENOMEM, "out of memory");
	for (i = 0; !ret && i < s->tab.n; i++) {
		const struct ld_so_item *it = &s->tab.v[i];
		struct ld_func *f;
		uint64_t size = 0, room;
		uint8_t *code;
		char why[256];

		ret = so_resolve_one(s, it, &s->addr[i], &size, err);
		if (ret || it->kind != QPATCH_SO_REPLACE)
			continue;
		for (j = 0; j < c->nfuncs; j++)
			if (c->funcs[j].rec.old_addr == s->addr[i])
				return qp_seterr(err, QP_EFORMAT, "'%s' and '%s' are the same function",
						 c->funcs[j].rec.name, it->name);
		s->item[c->nfuncs] = i;
		f = &c->funcs[c->nfuncs++];
		f->rec.old_addr = s->addr[i];
		f->rec.old_size = size;
		f->rec.len = QP_JMP_REL32_SIZE;
		snprintf(f->rec.name, sizeof(f->rec.name), "%s", it->name);
		size = size < LD_MAX_FUNC ? size : LD_MAX_FUNC;
		room = so_room(s, f->rec.old_addr, size);
		code = malloc(size + room);
		if (!code)
			return qp_seterr(err, -ENOMEM, "out of memory");
		ret = qp_proc__read(&c->proc, f->rec.old_addr, code, size + room, err);
		/* a function shorter than the jump: the alignment padding after it */
		if (!ret && room && !qp_decode_is_padding(code + size, room, f->rec.old_addr + size))
			room = 0;
		if (!ret) {
			f->rec.site = qp_decode_patch_entry(code, size, f->rec.old_addr);
			if (qp_decode_check_patch_site(code, size + room, f->rec.old_addr, f->rec.site,
						       QP_JMP_REL32_SIZE, why, sizeof(why)))
				ret = qp_seterr(err, QP_EUNSUPP, "cannot redirect '%s': %s", it->name, why);
			else
				memcpy(f->rec.saved, code + (f->rec.site - f->rec.old_addr),
				       QP_JMP_REL32_SIZE);
		}
		free(code);
	}
	return ret;
}

/* Each replacement's prototype against the old function's (sotype.c),
 * before anything is done to the process. */
static int so_check_types(struct so_ctx *s, struct qp_error *err)
{
	struct ld_ctx *c = &s->c;
	struct ld_so_type_fn *fns;
	const char *name = strstr(c->target->path, " (deleted)") ? s->obj->path : c->target->path;
	size_t k;
	int ret;

	if (c->opts->no_type_check) {
		snprintf(c->stats->type_note, sizeof(c->stats->type_note),
			 "type check not made (--no-type-check)");
		return 0;
	}
	fns = calloc(c->nfuncs ? c->nfuncs : 1, sizeof(*fns));
	if (!fns)
		return qp_seterr(err, -ENOMEM, "out of memory");
	for (k = 0; k < c->nfuncs; k++) {
		const struct ld_so_item *it = &s->tab.v[s->item[k]];

		fns[k].name = it->name;
		fns[k].entry_off = it->off;
		fns[k].old_vaddr = c->funcs[k].rec.old_addr - c->bias;
	}
	ret = ld_so_type_check(s->lib, s->sec, s->obj->path, name, fns, c->nfuncs,
			       &c->stats->types_checked, c->stats->type_note,
			       sizeof(c->stats->type_note), err);
	free(fns);
	return ret;
}

/* --- loading, with the picked thread (sothread.c) --------------------------- */

/* The system calls of so_map() and the rollback, for the seccomp check. */
static int so_seccomp(struct so_ctx *s, uint64_t scratch, struct qp_error *err)
{
	struct ld_ctx *c = &s->c;
	uint64_t fd = ld_seccomp_next_fd(c), at = c->hole, size = c->region_size;
	struct ld_call v[] = {
		{ SYS_memfd_create, "memfd_create", 2, { scratch, MFD_CLOEXEC } },
		{ SYS_ftruncate, "ftruncate", 2, { fd, size } },
		{ SYS_mmap, "mmap", 6, { at, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED_NOREPLACE, fd, 0 } },
		{ SYS_close, "close", 1, { fd } },
		{ SYS_mprotect, "mprotect", 3, { at + s->stubs_off, size - s->stubs_off, PROT_READ | PROT_EXEC } },
		{ SYS_munmap, "munmap", 2, { at, size } },
	};

	return ld_seccomp_check(c, v, sizeof(v) / sizeof(*v), err);
}

/* The record's mapping: a memfd named qpatch:ID near the target, so that
 * the stubs reach the old functions with a 5-byte jump and --list, undo
 * and other loaders find it like any patch's. */
static int so_map(struct so_ctx *s, struct qp_error *err)
{
	struct ld_ctx *c = &s->c;
	int ret = so_seccomp(s, ld_scratch(c), err);

	if (!ret)
		ret = ld_fault(c, QP_FAULT_HELD, err);
	return ret ? ret : ld_map(c, s->id, err);
}

/* The local copy of the record: header, functions, library. */
static void so_fill_record(struct so_ctx *s)
{
	struct ld_ctx *c = &s->c;
	struct qp_record *rec = (struct qp_record *)c->buf;
	struct qp_record_so *so = (struct qp_record_so *)(c->buf + s->rec_so_off);
	struct timespec ts;
	size_t i;

	memcpy(rec->magic, QP_RECORD_MAGIC, 8);
	rec->version = QP_RECORD_VERSION;
	rec->nfuncs = (uint32_t)c->nfuncs;
	rec->state = QP_REC_PENDING;
	rec->flags = QP_REC_F_SO;
	rec->seq = c->seq;
	rec->region_size = c->region_size;
	rec->image_start = c->region + s->stubs_off;
	rec->image_size = c->nfuncs * LD_STUB_SIZE;
	clock_gettime(CLOCK_REALTIME, &ts);
	rec->applied_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	snprintf(rec->id, sizeof(rec->id), "%s", s->id);
	snprintf(rec->target, sizeof(rec->target), "%s", s->tab.target);
	for (i = 0; i < c->nfuncs; i++)
		rec->funcs[i] = c->funcs[i].rec;
	memcpy(so->magic, QP_RECORD_SO_MAGIC, 8);
	so->handle = s->handle;
	so->lib_lo = s->lib_lo;
	so->lib_hi = s->lib_hi;
	snprintf(so->path, sizeof(so->path), "%s", s->path);
}

/* Where dlopen put the library: its link_map's l_addr, checked against
 * the process's map; its mappings' range. */
static int so_locate(struct so_ctx *s, struct qp_maps *maps, struct qp_error *err)
{
	struct ld_ctx *c = &s->c;
	uint64_t l_addr = 0, first = UINT64_MAX, span_lo, span_hi;
	size_t i, nph = 0;
	int ret = qp_proc__read(&c->proc, s->handle, &l_addr, sizeof(l_addr), err);

	if (!ret)
		ret = qp_maps__read(c->pid, maps, err);
	if (ret)
		return ret;
	/* the mappings of the file inside the span its PT_LOAD segments take
	 * from l_addr: another mapping of the same file (the agent's own
	 * reading of it, in the process itself) is not the library */
	span_lo = l_addr + qp_elf__first_load_vaddr(s->lib);
	span_hi = span_lo;
	if (!elf_getphdrnum(s->lib->elf, &nph))
		for (i = 0; i < nph; i++) {
			GElf_Phdr ph;

			if (gelf_getphdr(s->lib->elf, (int)i, &ph) && ph.p_type == PT_LOAD &&
			    page_up(l_addr + ph.p_vaddr + ph.p_memsz) > span_hi)
				span_hi = page_up(l_addr + ph.p_vaddr + ph.p_memsz);
		}
	s->lib_lo = UINT64_MAX;
	for (i = 0; i < maps->n; i++) {
		if (strcmp(maps->v[i].path, s->path) || maps->v[i].start < span_lo ||
		    maps->v[i].end > span_hi)
			continue;
		if (!maps->v[i].offset && maps->v[i].start < first)
			first = maps->v[i].start;
		s->lib_lo = maps->v[i].start < s->lib_lo ? maps->v[i].start : s->lib_lo;
		s->lib_hi = maps->v[i].end > s->lib_hi ? maps->v[i].end : s->lib_hi;
	}
	if (first == UINT64_MAX || first != span_lo)
		return qp_seterr(err, QP_ETARGET,
				 "process %d: the library dlopen returned is not '%s' as mapped (was it replaced meanwhile?)",
				 (int)c->pid, s->path);
	return 0;
}

/* Is [@a, @a + @len) inside one mapping of the library with @perm ('x', 'w')? */
static bool so_in_lib(const struct so_ctx *s, const struct qp_maps *maps, uint64_t a,
		      uint64_t len, char perm)
{
	size_t i;

	for (i = 0; i < maps->n; i++) {
		const struct qp_map *m = &maps->v[i];

		if (!strcmp(m->path, s->path) && a >= m->start && a < m->end && len <= m->end - a)
			return strchr(m->perms, perm) != NULL;
	}
	return false;
}

/*
 * The table as the dynamic linker relocated it: each entry must be the
 * one read from the file; new functions in the library's code, pointer
 * variables in its writable data (filled with the target's addresses
 * here); a stub per function.
 */
static int so_link(struct so_ctx *s, const struct qp_maps *maps, struct qp_error *err)
{
	struct ld_ctx *c = &s->c;
	uint64_t l_addr = 0, at;
	size_t i, k = 0;
	int ret = qp_proc__read(&c->proc, s->handle, &l_addr, sizeof(l_addr), err);

	for (i = 0; !ret && i < s->tab.n; i++) {
		const struct ld_so_item *it = &s->tab.v[i];
		struct qpatch_so_entry e;
		uint64_t a;

		at = l_addr + s->sec->shdr.sh_addr + it->off;
		ret = qp_proc__read(&c->proc, at, &e, sizeof(e), err);
		if (ret)
			break;
		if (!ld_so_entry_same(&e, (const struct qpatch_so_entry *)(s->sec->data + it->off)))
			return qp_seterr(err, QP_ETARGET, "process %d: the library's table at 0x%" PRIx64
					 " is not the file's", (int)c->pid, at);
		memcpy(&a, &e.addr, sizeof(a)); /* either member: an address */
		if (it->kind == QPATCH_SO_SYM) {
			if (!so_in_lib(s, maps, a, 8, 'w'))
				return qp_seterr(err, QP_EFORMAT,
						 "the pointer variable for '%s' (0x%" PRIx64 ") is not writable data of the library",
						 it->name, a);
			ret = qp_proc__write(&c->proc, a, &s->addr[i], 8, err);
			continue;
		}
		if (!so_in_lib(s, maps, a, 1, 'x'))
			return qp_seterr(err, QP_EFORMAT,
					 "the new function for '%s' is at 0x%" PRIx64 ", not in the library's code "
					 "(a global function named like one of the program is bound to the program's: make it static)",
					 it->name, a);
		for (k = 0; k < c->nfuncs && s->item[k] != i; k++)
			;
		if (k == c->nfuncs)
			continue;
		at = s->stubs_off + k * LD_STUB_SIZE;
		c->buf[at] = 0xff; /* jmp *0(%rip) */
		c->buf[at + 1] = 0x25;
		memcpy(c->buf + at + 6, &a, 8);
		c->funcs[k].rec.new_addr = c->region + at;
		c->funcs[k].rec.new_size = LD_STUB_SIZE;
	}
	return ret;
}

/* After a failed load or commit: the library, then the mapping, go. */
static int so_unload_work(struct ld_ctx *c, struct qp_error *err)
{
	struct so_ctx *s = (struct so_ctx *)c;
	int64_t r;
	int ret = 0;

	if (s->handle) {
		ret = ld_so_dlclose(c, s->handle, err);
		if (!ret)
			s->handle = 0;
	}
	if (c->region) {
		ld_syscall(c, SYS_munmap, "munmap", 2, (uint64_t[]){ c->region, c->region_size }, &r,
			   NULL);
		c->region = 0;
	}
	return ret;
}

/* With the picked thread, the others running: record mapped, library
 * loaded and linked, stubs protected.  On failure, all gone again. */
static int so_load_work(struct ld_ctx *c, struct qp_error *err)
{
	struct so_ctx *s = (struct so_ctx *)c;
	struct qp_maps maps = { 0 };
	uint64_t path, res = 0;
	int64_t r;
	int ret = so_map(s, err);

	if (!ret) {
		so_fill_record(s);
		ret = qp_proc__write(&c->proc, c->region, c->buf, c->region_size, err);
	}
	path = c->region + s->rec_so_off + offsetof(struct qp_record_so, path);
	if (!ret)
		ret = qp_proc__call(&c->proc, c->so_dlopen, (uint64_t[]){ path, RTLD_NOW | RTLD_LOCAL },
				    2, LD_SO_CALL_MS, &res, err);
	if (!ret && !res) {
		char why[LD_SO_ERRMSG + 1];

		ld_so_dlerror(c, why, sizeof(why));
		ret = qp_seterr(err, QP_ETARGET, "dlopen of '%s' failed in process %d: %s", s->path,
				(int)c->pid, why);
	}
	s->handle = ret ? 0 : res;
	if (!ret)
		ret = so_locate(s, &maps, err);
	if (!ret)
		ret = so_link(s, &maps, err);
	if (!ret) {
		so_fill_record(s);
		ret = qp_proc__write(&c->proc, c->region, c->buf, c->region_size, err);
	}
	if (!ret)
		ret = ld_fault(c, QP_FAULT_WRITTEN, err);
	if (!ret)
		ret = ld_syscall(c, SYS_mprotect, "mprotect", 3,
				 (uint64_t[]){ c->region + s->stubs_off, c->region_size - s->stubs_off,
					       PROT_READ | PROT_EXEC }, &r, err);
	if (!ret)
		ret = ld_fault(c, QP_FAULT_PROTECTED, err);
	qp_maps__release(&maps);
	if (ret && !qp_proc__died_now(&c->proc))
		so_unload_work(c, NULL); /* the library, then the mapping */
	return ret;
}

/* Every thread stopped, none in the way: the jumps; on failure they go. */
static int so_commit(struct ld_ctx *c, struct qp_error *err)
{
	int ret = ld_fault(c, QP_FAULT_STOPPED, err);

	if (!ret)
		ret = ld_write_jumps(c, err);
	if (ret)
		ld_unjump(c);
	return ret;
}

/* --- the whole apply ---------------------------------------------------------- */

static int so_prepare(struct so_ctx *s, const char *path, struct qp_error *err)
{
	struct ld_ctx *c = &s->c;
	size_t i, nrec;
	int ret;

	ret = so_open_lib(s, path, err);
	if (!ret)
		ret = qp_maps__read(c->pid, &c->maps, err);
	if (!ret)
		ret = so_find_target(s, err);
	if (!ret)
		ret = ld_list(&c->proc, &c->maps, true, &c->applied, &c->napplied, err);
	if (ret)
		return ret;
	for (i = 0; i < c->napplied; i++)
		if (c->applied[i].rec.state == QP_REC_APPLIED && !strcmp(c->applied[i].rec.id, s->id))
			return qp_seterr(err, QP_EAPPLIED, "patch '%s' is already applied to process %d",
					 s->id, (int)c->pid);
	c->seq = c->napplied ? c->applied[c->napplied - 1].rec.seq + 1 : 1;
	ret = so_prepare_funcs(s, err);
	if (!ret)
		ret = so_check_types(s, err);
	if (!ret)
		ret = ld_busy_ranges(c, err);
	if (!ret)
		ret = ld_so_unsafe(c, err);
	if (ret)
		return ret;
	nrec = sizeof(struct qp_record) + c->nfuncs * sizeof(struct qp_record_func);
	s->rec_so_off = (nrec + 7) & ~7ull;
	s->stubs_off = page_up(s->rec_so_off + sizeof(struct qp_record_so));
	c->region_size = s->stubs_off + page_up(c->nfuncs * LD_STUB_SIZE);
	c->buf = calloc(1, c->region_size);
	if (!c->buf)
		return qp_seterr(err, -ENOMEM, "out of memory");
	ret = ld_find_hole(c, &c->maps, c->region_size, &c->hole, err);
	if (!ret)
		ret = qp_proc__find_gadget_in(&c->proc, &c->maps, err);
	if (!ret) { /* the pick of the thread that runs dlopen unwinds every stack */
		ld_cfi_lazy(c, c->applied, c->napplied);
		ld_cfi_load(c);
	}
	if (!ret) /* suspended coroutines, as for a .qpatch (coro.c) */
		ret = ld_coro_find(c, err);
	return ret;
}

static int so_run(struct so_ctx *s, struct qp_error *err)
{
	struct ld_ctx *c = &s->c;
	struct qp_error e2 = { 0 };
	int ret = ld_so_with_safe(c, so_load_work, err);

	if (ret)
		return ret;
	ret = ld_while_stopped(c, ld_apply_busy, so_commit, err);
	if (ret && !c->stats->target_gone && !qp_proc__dead(&c->proc) &&
	    ld_so_with_safe(c, so_unload_work, &e2))
		qp_preperr(err, ret, "the library stays loaded in process %d (%s)", (int)c->pid, e2.msg);
	return ret;
}

int qp_load_so(pid_t pid, const char *path, const struct qp_load_opts *opts,
	       struct qp_load_stats *stats, char *id, struct qp_error *err)
{
	struct so_ctx *s = calloc(1, sizeof(*s));
	double t0 = now_us();
	int ret;

	memset(stats, 0, sizeof(*stats));
	if (!s)
		return qp_seterr(err, -ENOMEM, "out of memory");
	s->c = (struct ld_ctx){ .pid = pid, .opts = opts, .stats = stats };
	ret = ld_begin(&s->c, err);
	if (!ret)
		ret = so_prepare(s, path, err);
	if (!ret) {
		ld_block_signals(&s->c.sigmask);
		ret = so_run(s, err);
		pthread_sigmask(SIG_SETMASK, &s->c.sigmask, NULL);
	}
	ld_unlock(s->c.lock_fd, s->c.lock_path);
	if (id)
		snprintf(id, QP_ID_MAX, "%s", s->id);
	stats->region = ret ? 0 : s->c.region;
	stats->nfuncs = s->c.nfuncs;
	stats->total_us = now_us() - t0;
	ld_ctx_release(&s->c);
	ld_so_table_release(&s->tab);
	qp_elf__free(s->lib);
	qp_elf__free(s->obj);
	free(s->addr);
	free(s->item);
	free(s);
	return ret;
}

int qp_so_info__read(const char *path, struct qp_so_info *out, struct qp_error *err)
{
	struct so_ctx *s = calloc(1, sizeof(*s));
	int ret;

	memset(out, 0, sizeof(*out));
	if (!s)
		return qp_seterr(err, -ENOMEM, "out of memory");
	ret = so_open_lib(s, path, err);
	if (!ret && strlen(s->tab.target) >= sizeof(out->target))
		ret = qp_seterr(err, QP_EFORMAT, "'%s': its QPATCH_TARGET is longer than %zu bytes", path,
				sizeof(out->target) - 1);
	if (!ret) {
		snprintf(out->id, sizeof(out->id), "%s", s->id);
		out->by_build_id = s->tab.target_kind == QPATCH_SO_TARGET_BUILDID;
		snprintf(out->target, sizeof(out->target), "%s", s->tab.target);
		memcpy(out->build_id, s->tab.build_id, s->tab.build_id_size);
		out->build_id_size = s->tab.build_id_size;
		out->nreplace = s->tab.nreplace;
	}
	ld_so_table_release(&s->tab);
	qp_elf__free(s->lib);
	free(s);
	return ret;
}
