// SPDX-License-Identifier: MIT
/*
 * Thread-local variables the patch refers to: for each, the module that
 * defines it and how every thread finds its own copy.
 *
 * x86-64 TLS (variant II): every object with a PT_TLS segment is a TLS
 * module with a module id.  A module loaded at startup (or one that needs
 * static TLS) also has an offset: in every thread, its block starts at the
 * thread pointer minus that offset, so a variable at offset v of the
 * module's TLS template is at %fs:(v - offset) — what local-exec and
 * initial-exec code uses.  A module loaded later with dlopen usually has
 * dynamic TLS only: a thread's copy is allocated on first use by
 * __tls_get_addr({module id, v}) — what general- and local-dynamic code
 * uses.
 *
 * The main program's offset is the one the static linker put into its
 * local-exec code: roundup(p_memsz, p_align).  For every other module the
 * numbers live only in the dynamic linker's private part of its struct
 * link_map (l_tls_offset, l_tls_modid).  They are read from the target's
 * memory, without hard-coding glibc's layout of that struct:
 *   - _r_debug (exported by ld.so) leads to the chain of link_maps, whose
 *     public head is fixed: l_addr, l_name, l_ld, l_next, l_prev;
 *   - the module's link_map is the one whose l_ld is its PT_DYNAMIC;
 *   - in it, l_tls_offset and l_tls_modid directly follow five fields that
 *     ld.so filled from the PT_TLS header, which we read from the file:
 *     l_tls_initimage (bias + p_vaddr), l_tls_initimage_size (p_filesz),
 *     l_tls_blocksize (p_memsz), l_tls_align (p_align) and
 *     l_tls_firstbyte_offset (p_vaddr mod p_align).
 * That five-word signature does not occur by chance; a glibc that ordered
 * these fields differently would make the search fail, and the patch is
 * then refused, never relocated with a wrong offset.  (Checked on glibc
 * 2.36; the fields have been in this order since l_tls_firstbyte_offset
 * was added.)
 *
 * Why not reuse GOT entries the dynamic linker already filled (a TPOFF64
 * or DTPMOD64 slot)?  Such a slot exists only for a variable that the
 * object holding it already reached with that access model; a patch may
 * use another model or another variable, and a library patched through
 * another object has no slot at all.  The link_map describes every module
 * whatever its code did.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ld.h"
#include "parse.h"
#include "qpatch/elf.h"

#define TLS_LINKMAP_SCAN 4096    /* bytes of a struct link_map searched */

/* What the patch does with one thread-local variable. */
enum { TLS_NEED_STATIC = 1, TLS_NEED_MODID = 2 };

/* The object defining a variable, as read from its file. */
struct tls_obj {
	const struct qp_map *map;  /* its first mapping in the target */
	uint64_t bias;             /* load bias */
	GElf_Phdr tls;             /* its PT_TLS header */
	uint64_t dyn_vaddr;        /* p_vaddr of PT_DYNAMIC, 0 when none */
};

static const char *tls_base(const char *path)
{
	const char *s = strrchr(path, '/');

	return s ? s + 1 : path;
}

static int tls_obj_read(struct ld_ctx *c, const struct qp_map *m, struct tls_obj *o,
			struct qp_error *err)
{
	char path[600];
	struct qp_elf *e;
	size_t i, n;
	int ret;

	memset(o, 0, sizeof(*o));
	o->map = m;
	ld_map_file(c->pid, m, path, sizeof(path));
	ret = qp_elf__open(path, QP_ELF_NO_RELAS | QP_ELF_DYNSYM, &e, err);
	if (ret)
		return ret;
	o->bias = e->ehdr.e_type == ET_EXEC ? 0 : m->start - qp_elf__first_load_vaddr(e);
	if (elf_getphdrnum(e->elf, &n))
		n = 0;
	for (i = 0; i < n; i++) {
		GElf_Phdr ph;

		if (!gelf_getphdr(e->elf, (int)i, &ph))
			continue;
		if (ph.p_type == PT_TLS)
			o->tls = ph;
		if (ph.p_type == PT_DYNAMIC)
			o->dyn_vaddr = ph.p_vaddr;
	}
	qp_elf__free(e);
	if (o->tls.p_type != PT_TLS || !o->tls.p_memsz)
		return qp_seterr(err, QP_ERESOLVE, "'%s' has no thread-local storage",
				 tls_base(m->path));
	return 0;
}

/* Where _r_debug is: the dynamic linker exports it. */
static int tls_r_debug(struct ld_ctx *c, struct qp_error *err)
{
	struct ld_dsym d;

	if (c->r_debug)
		return 0;
	if (ld_lookup_dynsym(c, "_r_debug", false, &d))
		return qp_seterr(err, QP_EUNSUPP,
				 "process %d has no dynamic linker data (_r_debug): thread-local variables of libraries cannot be found",
				 (int)c->pid);
	c->r_debug = d.bias + d.value;
	return 0;
}

/* The address of @o's struct link_map, from the chain at _r_debug.r_map. */
static int tls_find_linkmap(struct ld_ctx *c, const struct tls_obj *o, uint64_t *out,
			    struct qp_error *err)
{
	int ret;

	ret = tls_r_debug(c, err);
	if (ret)
		return ret;
	ret = o->dyn_vaddr ? ld_linkmap_find(qp_proc__read_cb, &c->proc, c->r_debug,
					     o->bias + o->dyn_vaddr, out, err) : 1;
	if (ret < 0)
		return qp_preperr(err, ret, "reading the dynamic linker's list of modules");
	if (ret > 0)
		return qp_seterr(err, QP_ERESOLVE, "'%s' is not in the dynamic linker's list of modules of process %d",
				 tls_base(o->map->path), (int)c->pid);
	return 0;
}

/* l_tls_offset and l_tls_modid of @o, found after the PT_TLS signature. */
static int tls_linkmap_fields(struct ld_ctx *c, const struct tls_obj *o, int64_t *offset,
			      uint64_t *modid, struct qp_error *err)
{
	const GElf_Phdr *t = &o->tls;
	uint64_t sig[5] = { o->bias + t->p_vaddr, t->p_filesz, t->p_memsz, t->p_align,
			    t->p_align ? t->p_vaddr & (t->p_align - 1) : 0 };
	uint64_t w[TLS_LINKMAP_SCAN / 8], lm = 0;
	ssize_t got;
	int ret;

	ret = tls_find_linkmap(c, o, &lm, err);
	if (ret)
		return ret;
	got = lm <= INT64_MAX ? pread(c->proc.mem_fd, w, sizeof(w), (off_t)lm) : -1;
	if (!ld_tls_scan(w, got > 0 ? (size_t)got / 8 : 0, sig, t->p_memsz, offset, modid))
		return 0;
	return qp_seterr(err, QP_EUNSUPP,
			 "cannot find the TLS module data of '%s' in the dynamic linker's link_map at 0x%" PRIx64
			 " (unknown C library layout)", tls_base(o->map->path), lm);
}

/* The object that defines TLS src symbol @s, and the variable's offset. */
static int tls_definer(struct ld_ctx *c, const struct qp_sym *s, struct tls_obj *o,
		       uint64_t *value, struct qp_error *err)
{
	const struct qp_map *m = NULL;
	struct ld_dsym d;

	if (s->shndx == QP_SRC_IN_TARGET) {
		m = c->target;
		*value = s->value;
	} else if (!ld_lookup_dynsym(c, s->name, true, &d)) {
		m = d.map;
		*value = d.value;
	}
	if (!m)
		return qp_seterr(err, QP_ERESOLVE,
				 "thread-local '%s' not found in any object of process %d", s->name,
				 (int)c->pid);
	return tls_obj_read(c, m, o, err);
}

static int tls_resolve_one(struct ld_ctx *c, size_t i, unsigned need, struct qp_error *err)
{
	const struct qp_sym *s = qp_patch__src_sym(c->patch, i);
	struct ld_tls *t = &c->tls[i];
	struct tls_obj o;
	int64_t off = 0;
	uint64_t modid = 0;
	bool main_prog = s->shndx == QP_SRC_IN_TARGET && c->tls_main && c->tls_block;
	int ret;

	ret = tls_definer(c, s, &o, &t->value, err);
	if (ret)
		return qp_preperr(err, ret, "thread-local '%s'", s->name);
	snprintf(t->module, sizeof(t->module), "%s", tls_base(o.map->path));
	if (t->value >= o.tls.p_memsz)
		return qp_seterr(err, QP_ETARGET, "thread-local '%s' lies outside the TLS block of '%s'",
				 s->name, t->module);
	if (main_prog) { /* what the program's own local-exec code uses */
		t->offset = (int64_t)c->tls_block;
		t->is_static = true;
	}
	if ((need & TLS_NEED_MODID) || ((need & TLS_NEED_STATIC) && !main_prog)) {
		ret = tls_linkmap_fields(c, &o, &off, &modid, err);
		if (ret)
			return qp_preperr(err, ret, "thread-local '%s'", s->name);
		t->modid = modid;
		if (!main_prog && off != TLS_NO_OFFSET && off != TLS_FORCED_DYNAMIC) {
			t->offset = off;
			t->is_static = true;
		}
	}
	if ((need & TLS_NEED_STATIC) && !t->is_static)
		return qp_seterr(err, QP_EUNSUPP,
				 "thread-local '%s' of '%s' has no static TLS offset (the library was loaded with dlopen and uses dynamic TLS only): an initial-exec reference to it cannot be relocated",
				 s->name, t->module);
	return 0;
}

int ld_tls_resolve(struct ld_ctx *c, struct qp_error *err)
{
	size_t i, n = qp_patch__src_sym_count(c->patch);
	unsigned *need;
	int ret = 0;

	need = calloc(n ? n : 1, sizeof(*need));
	c->tls = calloc(n ? n : 1, sizeof(*c->tls));
	if (!need || !c->tls) {
		free(need);
		return qp_seterr(err, -ENOMEM, "out of memory");
	}
	for (i = 0; i < qp_patch__rela_count(c->patch); i++) {
		const struct qp_rela *r = qp_patch__rela(c->patch, i);

		if (r->type == R_X86_64_TPOFF32 || r->type == R_X86_64_GOTTPOFF)
			need[r->sym] |= TLS_NEED_STATIC;
		else if (r->type == R_X86_64_TLSGD || r->type == R_X86_64_TLSLD)
			need[r->sym] |= TLS_NEED_MODID;
	}
	for (i = 1; !ret && i < n; i++)
		if (qp_patch__src_sym(c->patch, i)->type == STT_TLS)
			ret = tls_resolve_one(c, i, need[i], err);
	free(need);
	return ret;
}
