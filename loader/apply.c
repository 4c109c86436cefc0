// SPDX-License-Identifier: MIT
/*
 * Applying a patch to a live process (listing: records.c; undoing: undo.c;
 * whether code may change now: safety.c).
 *
 * Apply, in order (everything before "stop" runs while the target runs):
 *   1. find the target object in /proc/PID/maps by build-id, its load bias;
 *   2. read the records of patches already applied (ids, order);
 *   3. resolve every src symbol: bias + link-time address for symbols of
 *      the target, the libraries' dynamic symbols for external ones;
 *   4. read each old function and check its patch site (whole
 *      instructions, no branch into the jump);
 *   5. hold one thread (the others run): map the patch near the target
 *      (memfd, so it shows as /memfd:qpatch:ID), relocate, write,
 *      protect; its record says "pending"; let the thread go;
 *   6. stop every thread; retry while a thread is in (or will return
 *      into) the code being replaced;
 *   7. rewrite the call sites (sites.c), write the jumps, mark the record
 *      applied, resume.
 * A failure after step 5 restores every byte written (every thread
 * stopped), then unmaps the mapping (one thread held): the target is as
 * it was, its registers too.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "ld.h"
#include "qpatch/decode.h"
#include "qpatch/elf.h"

/*
 * While the target is stopped and being changed, the signals that end a
 * process by default (Ctrl-C, kill, a closed pipe, a terminal hanging up)
 * wait: the loader finishes or rolls back, resumes the target, then they
 * take effect.  A loader that died with a thread running a remote syscall
 * would leave that thread with borrowed registers.  SIGKILL cannot wait.
 */
void ld_block_signals(sigset_t *old)
{
	sigset_t ignored;
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGQUIT);
	sigaddset(&set, SIGPIPE);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);
	pthread_sigmask(SIG_BLOCK, &set, old ? old : &ignored);
}

static const char *ld_step_name(enum qp_fault step)
{
	static const struct { enum qp_fault step; const char *name; } names[] = {
#define QP_FAULT_NAME(name, val, str) { name, str },
		QP_FAULTS(QP_FAULT_NAME)
#undef QP_FAULT_NAME
	};
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (names[i].step == step)
			return names[i].name;
	return "?";
}

/* Step @step is reached: noted for messages; tests may pause the loader
 * here (at_step) or make it fail on purpose (fault_at). */
int ld_fault(struct ld_ctx *c, enum qp_fault step, struct qp_error *err)
{
	c->step = step;
	if (c->opts && c->opts->at_step)
		c->opts->at_step(step, ld_step_name(step), c->opts->at_step_arg);
	if (!c->opts || c->opts->fault_at != step)
		return 0;
	return qp_seterr(err, -EIO, "injected failure after step %d (%s)", (int)step,
			 ld_step_name(step));
}

/*
 * @ret failed: if the reason is that the target died meanwhile (killed, or
 * exited while running between attempts), say so instead — the message of
 * whatever call noticed it first ("cannot write ... short write") would
 * hide the cause, and "left unchanged" would be false.
 */
int ld_check_death(struct ld_ctx *c, int ret, struct qp_error *err)
{
	char cause[QP_ERRMSG_MAX], how[64], step[96] = "";

	if (!ret || !qp_proc__dead(&c->proc))
		return ret;
	c->stats->target_gone = true;
	snprintf(cause, sizeof(cause), "%s", err && err->msg[0] ? err->msg : qp_strerror(ret));
	if (c->step)
		snprintf(step, sizeof(step), ", after step %d (%s)", (int)c->step, ld_step_name(c->step));
	return qp_seterr(err, QP_EPROC, "process %d %s while %s%s; it is gone (%s)", (int)c->pid,
			 qp_proc__death(&c->proc, how, sizeof(how)),
			 c->undo ? "its patch was being undone" : "being patched", step, cause);
}

/* --- finding the target and symbols ------------------------------------- */

/* A path libelf can open for mapping @m, even if the file was replaced. */
void ld_map_file(pid_t pid, const struct qp_map *m, char *out, size_t size)
{
	if (strstr(m->path, " (deleted)"))
		snprintf(out, size, "/proc/%d/map_files/%" PRIx64 "-%" PRIx64, (int)pid,
			 m->start, m->end);
	else
		snprintf(out, size, "%s", m->path);
}

void ld_object_range(const struct qp_maps *maps, const char *path, uint64_t *lo, uint64_t *hi)
{
	size_t i;

	*lo = UINT64_MAX;
	*hi = 0;
	for (i = 0; i < maps->n; i++) {
		if (strcmp(maps->v[i].path, path))
			continue;
		if (maps->v[i].start < *lo)
			*lo = maps->v[i].start;
		if (maps->v[i].end > *hi)
			*hi = maps->v[i].end;
	}
}

/*
 * The main program's TLS block sits right below the thread pointer (x86-64
 * TLS variant II): a variable at offset v of the PT_TLS template is at
 * %fs:(v - roundup(p_memsz, p_align)), the value the static linker gives
 * local-exec references and the dynamic linker honours for the program.
 */
static void ld_tls_layout(struct ld_ctx *c, struct qp_elf *e)
{
	size_t i, n;

	c->tls_main = e->ehdr.e_type == ET_EXEC;
	if (elf_getphdrnum(e->elf, &n))
		return;
	for (i = 0; i < n; i++) {
		GElf_Phdr ph;

		if (!gelf_getphdr(e->elf, (int)i, &ph))
			continue;
		if (ph.p_type == PT_INTERP)
			c->tls_main = true;
		if (ph.p_type == PT_TLS) {
			uint64_t a = ph.p_align ? ph.p_align : 1;

			c->tls_block = (ph.p_memsz + a - 1) / a * a;
		}
	}
}

static int ld_find_target(struct ld_ctx *c, struct qp_error *err)
{
	const struct qp_info *info = qp_patch__info(c->patch);
	char want[2 * QP_BUILD_ID_MAX + 1];
	size_t i;

	for (i = 0; i < c->maps.n; i++) {
		const struct qp_map *m = &c->maps.v[i];
		char path[600];
		uint8_t id[QP_BUILD_ID_MAX];
		size_t n = 0;
		struct qp_elf *e;

		if (m->offset || m->path[0] != '/' || !strncmp(m->path, "/memfd:", 7))
			continue;
		ld_map_file(c->pid, m, path, sizeof(path));
		if (qp_elf_read_build_id(path, id, sizeof(id), &n, NULL) ||
		    n != info->build_id_size || memcmp(id, info->build_id, n))
			continue;
		if (qp_elf__open(path, QP_ELF_NO_RELAS | QP_ELF_DYNSYM, &e, err))
			return err->code;
		c->bias = m->start - qp_elf__first_load_vaddr(e);
		if (e->ehdr.e_type == ET_EXEC)
			c->bias = 0;
		ld_tls_layout(c, e);
		qp_elf__free(e);
		c->target = m;
		ld_object_range(&c->maps, m->path, &c->obj_lo, &c->obj_hi);
		return 0;
	}
	qp_hex(info->build_id, info->build_id_size, want);
	return qp_seterr(err, QP_ETARGET,
			 "process %d has no object with build-id %s (the patch is for '%s')",
			 (int)c->pid, want, info->target_name);
}

/*
 * The first loaded object, in map order, whose .dynsym defines @name: a
 * thread-local variable when @tls, anything else otherwise.  -ENOENT when
 * none does.
 */
int ld_for_each_object(struct ld_ctx *c,
		       int (*fn)(struct ld_ctx *c, const struct qp_map *m, const struct qp_elf *e,
				 uint64_t bias, void *arg),
		       void *arg)
{
	const char *last = "";
	size_t i;
	int ret = 0;

	for (i = 0; !ret && i < c->maps.n; i++) {
		const struct qp_map *m = &c->maps.v[i];
		struct qp_elf *e;
		char path[600];

		if (m->offset || m->path[0] != '/' || !strcmp(m->path, last) ||
		    !strncmp(m->path, "/memfd:", 7))
			continue;
		last = m->path;
		ld_map_file(c->pid, m, path, sizeof(path));
		if (qp_elf__open(path, QP_ELF_NO_RELAS | QP_ELF_DYNSYM, &e, NULL))
			continue;
		ret = fn(c, m, e, e->ehdr.e_type == ET_EXEC ? 0 : m->start - qp_elf__first_load_vaddr(e),
			 arg);
		qp_elf__free(e);
	}
	return ret;
}

struct ld_lookup {
	const char *name;
	bool tls;
	struct ld_dsym *out;
};

static int ld_lookup_one(struct ld_ctx *c, const struct qp_map *m, const struct qp_elf *e,
			 uint64_t bias, void *arg)
{
	const struct ld_lookup *q = arg;
	const struct qp_elf_sym *d = e->dynamic ? qp_elf__find_global(e, q->name) : NULL;

	(void)c;
	if (!d || (d->type == STT_TLS) != q->tls)
		return 0;
	*q->out = (struct ld_dsym){ .map = m, .bias = bias, .value = d->value, .type = d->type };
	return 1;
}

int ld_lookup_dynsym(struct ld_ctx *c, const char *name, bool tls, struct ld_dsym *out)
{
	struct ld_lookup q = { .name = name, .tls = tls, .out = out };

	return ld_for_each_object(c, ld_lookup_one, &q) == 1 ? 0 : -ENOENT;
}

/* An external symbol: the first library (in map order) that exports it. */
static int ld_resolve_external(struct ld_ctx *c, const struct qp_sym *s, uint64_t *addr,
			       bool *ifunc, struct qp_error *err)
{
	struct ld_dsym d;

	if (ld_lookup_dynsym(c, s->name, false, &d))
		return qp_seterr(err, QP_ERESOLVE, "symbol '%s' not found in any library of process %d",
				 s->name, (int)c->pid);
	*addr = d.bias + d.value;
	*ifunc = d.type == STT_GNU_IFUNC;
	return 0;
}

static int ld_resolve(struct ld_ctx *c, struct qp_error *err)
{
	size_t i, n = qp_patch__src_sym_count(c->patch);
	int ret;

	c->symaddr = calloc(n ? n : 1, sizeof(*c->symaddr));
	c->ifunc = calloc(n ? n : 1, sizeof(*c->ifunc));
	if (!c->symaddr || !c->ifunc)
		return qp_seterr(err, -ENOMEM, "out of memory");
	for (i = 1; i < n; i++) {
		const struct qp_sym *s = qp_patch__src_sym(c->patch, i);

		if (s->type == STT_FILE || s->type == STT_TLS) /* TLS: ld_tls_resolve() */
			continue;
		if (s->shndx == QP_SRC_IN_TARGET) {
			c->symaddr[i] = c->bias + s->value;
			continue;
		}
		ret = ld_resolve_external(c, s, &c->symaddr[i], &c->ifunc[i], err);
		if (ret)
			return ret;
	}
	return ld_tls_resolve(c, err);
}

/* --- patch sites ---------------------------------------------------------- */

/* Padding bytes after the old function src[@sym] the jump may use
 * (QP_R_ROOM), 0 when none. */
static uint64_t ld_room(const struct ld_ctx *c, uint32_t sym)
{
	size_t i;

	for (i = 0; i < qp_patch__rela_count(c->patch); i++) {
		const struct qp_rela *r = qp_patch__rela(c->patch, i);

		if (r->type == QP_R_ROOM && r->sym == sym)
			return (uint64_t)r->addend;
	}
	return 0;
}

/* Is the old function src[@sym] reached through its call sites only
 * (QP_R_CALLS)? */
static bool ld_calls(const struct ld_ctx *c, uint32_t sym)
{
	size_t i;

	for (i = 0; i < qp_patch__rela_count(c->patch); i++) {
		const struct qp_rela *r = qp_patch__rela(c->patch, i);

		if (r->type == QP_R_CALLS && r->sym == sym)
			return true;
	}
	return false;
}

/* The new function of an old one reached through its call sites only:
 * code of the patch that calls the old one calls it (no jump would lead
 * there); 0 for any other symbol. */
static uint64_t ld_calls_new(const struct ld_ctx *c, uint32_t sym)
{
	size_t i;

	for (i = 0; i < c->nfuncs; i++)
		if (c->funcs[i].calls && c->funcs[i].rela->sym == sym)
			return c->region + c->image_off + c->funcs[i].rela->offset;
	return 0;
}

static int ld_prepare_funcs(struct ld_ctx *c, struct qp_error *err)
{
	size_t i, n = qp_patch__rela_count(c->patch);

	c->funcs = calloc(n ? n : 1, sizeof(*c->funcs));
	if (!c->funcs)
		return qp_seterr(err, -ENOMEM, "out of memory");
	for (i = 0; i < n; i++) {
		const struct qp_rela *r = qp_patch__rela(c->patch, i);
		const struct qp_sym *old;
		struct ld_func *f;
		uint8_t *code;
		char why[256];
		size_t size, room;
		int ret;

		if (r->type != QP_R_REPLACE)
			continue;
		old = qp_patch__src_sym(c->patch, r->sym);
		f = &c->funcs[c->nfuncs++];
		f->rela = r;
		f->rec.old_addr = c->symaddr[r->sym];
		f->rec.old_size = old->size;
		f->rec.len = QP_JMP_REL32_SIZE;
		snprintf(f->rec.name, sizeof(f->rec.name), "%s", old->name);
		if (ld_calls(c, r->sym)) { /* no jump: its call sites (sites.c) */
			f->calls = true;
			f->rec.len = 0;
			f->rec.site = f->rec.old_addr;
			continue;
		}
		size = old->size < LD_MAX_FUNC ? old->size : LD_MAX_FUNC;
		room = size == old->size ? ld_room(c, r->sym) : 0;
		code = malloc(size + room ? size + room : 1);
		if (!code)
			return qp_seterr(err, -ENOMEM, "out of memory");
		ret = qp_proc__read(&c->proc, f->rec.old_addr, code, size + room, err);
		/* the padding after a short function: still padding in the process? */
		if (!ret && room &&
		    !qp_decode_is_padding(code + size, room, f->rec.old_addr + size))
			ret = qp_seterr(err, QP_ETARGET,
					"cannot redirect '%s': the %llu bytes after it are not alignment padding in process %d",
					old->name, (unsigned long long)room, (int)c->pid);
		if (!ret) {
			uint8_t *at;

			f->rec.site = qp_decode_patch_entry(code, size, f->rec.old_addr);
			at = code + (f->rec.site - f->rec.old_addr);
			/* what undo puts back: the bytes there now (an earlier
			 * patch's jump, when it redirects the function too) */
			memcpy(f->rec.saved, at, QP_JMP_REL32_SIZE);
			/* checked is the function as built, before any jump */
			ld_site_original(c->applied, c->napplied, f->rec.site, at,
					 size + room - (size_t)(f->rec.site - f->rec.old_addr));
			ret = qp_decode_check_patch_site(code, size + room, f->rec.old_addr,
							 f->rec.site, QP_JMP_REL32_SIZE, why,
							 sizeof(why));
			if (ret)
				ret = qp_seterr(err, QP_EUNSUPP, "cannot redirect '%s': %s",
						old->name, why);
		}
		free(code);
		if (ret)
			return ret;
	}
	if (!c->nfuncs)
		return qp_seterr(err, QP_EFORMAT, "the patch replaces no function");
	return 0;
}

/* --- mapping the patch ---------------------------------------------------- */

/* A free, page-aligned range of @size within reach of the target object. */
int ld_find_hole(struct ld_ctx *c, const struct qp_maps *maps, uint64_t size,
		 uint64_t *out, struct qp_error *err)
{
	uint64_t lo_limit = c->obj_hi > LD_RANGE ? c->obj_hi - LD_RANGE + LD_PAGE : LD_PAGE * 16;
	uint64_t hi_limit = c->obj_lo + LD_RANGE - LD_PAGE;
	uint64_t best = 0, best_dist = UINT64_MAX;
	size_t i;

	if (lo_limit < 0x10000)
		lo_limit = 0x10000;
	if (c->need_low && hi_limit > (1ull << 32)) /* 32-bit absolute references */
		hi_limit = 1ull << 32;
	for (i = 0; i <= maps->n; i++) {
		uint64_t gs = i ? maps->v[i - 1].end : lo_limit;

		/* leave the heap room to grow (brk) */
		if (i && !strcmp(maps->v[i - 1].path, "[heap]"))
			gs += LD_HEAP_ROOM;
		uint64_t ge = i < maps->n ? maps->v[i].start : 0x7ffffffff000ull;
		uint64_t cand, dist;


		if (gs < lo_limit)
			gs = lo_limit;
		if (ge > hi_limit)
			ge = hi_limit;
		if (ge <= gs || ge - gs < size + 2 * LD_PAGE)
			continue;
		/* hug the object: the top of a gap below it, the bottom above */
		cand = gs >= c->obj_hi ? gs + LD_PAGE : (ge - size - LD_PAGE) & ~(LD_PAGE - 1);
		dist = cand >= c->obj_hi ? cand - c->obj_hi : c->obj_lo - cand;
		if (cand + size > hi_limit || cand < lo_limit || dist >= best_dist)
			continue;
		best = cand;
		best_dist = dist;
	}
	if (!best)
		return qp_seterr(err, -ENOMEM, "no free address range of %" PRIu64
				 " bytes within 2 GiB of the target in process %d", size, (int)c->pid);
	*out = best;
	return 0;
}

/* Every call the target is made to run passes here: it must have been
 * declared to the seccomp check of this operation (ld_apply_seccomp(),
 * undo's), and is judged with its real arguments before it runs. */
int ld_syscall(struct ld_ctx *c, long nr, const char *what, int nargs, const uint64_t *args,
		      int64_t *ret, struct qp_error *err)
{
	struct ld_call call = { nr, what, nargs, { 0 } };
	int r;

	memcpy(call.args, args, (size_t)(nargs < 6 ? nargs : 6) * sizeof(*args));
	r = ld_seccomp_verify(c, &call, err);
	if (!r)
		r = qp_proc__syscall(&c->proc, nr, args, nargs, ret, err);
	if (r)
		return r;
	if (*ret < 0 && *ret > -4096)
		return qp_seterr(err, (int)*ret, "process %d: %s failed: %s", (int)c->pid, what,
				 strerror((int)-*ret));
	return 0;
}

/* Where memfd_create's name is put: below the red zone of threads[0]. */
uint64_t ld_scratch(const struct ld_ctx *c)
{
	return (c->proc.threads[0].regs.rsp - 128 - 512) & ~15ull;
}

/* memfd_create (named qpatch:@id) + ftruncate + mmap + close, run by the
 * target itself. */
static int ld_map_region(struct ld_ctx *c, uint64_t addr, const char *id, struct qp_error *err)
{
	uint64_t scratch = ld_scratch(c);
	uint8_t saved[512];
	char name[QP_ID_MAX + 16];
	int64_t fd, res;
	int ret, r2;

	snprintf(name, sizeof(name), QP_MEMFD_PREFIX "%s", id);
	ret = qp_proc__read(&c->proc, scratch, saved, sizeof(saved), err);
	if (!ret)
		ret = qp_proc__write(&c->proc, scratch, name, strlen(name) + 1, err);
	if (!ret)
		ret = ld_syscall(c, SYS_memfd_create, "memfd_create", 2,
				 (uint64_t[]){ scratch, MFD_CLOEXEC }, &fd, err);
	r2 = qp_proc__write(&c->proc, scratch, saved, sizeof(saved), ret ? NULL : err);
	if (ret || r2)
		return ret ? ret : r2;
	ret = ld_fault(c, QP_FAULT_MEMFD, err);
	if (!ret)
		ret = ld_syscall(c, SYS_ftruncate, "ftruncate", 2,
				 (uint64_t[]){ (uint64_t)fd, c->region_size }, &res, err);
	if (!ret) {
		/* private: a child forked later gets its own copy of the record,
		 * so undoing the parent leaves the child's record true */
		ret = ld_syscall(c, SYS_mmap, "mmap", 6,
				 (uint64_t[]){ addr, c->region_size, PROT_READ | PROT_WRITE,
					       MAP_PRIVATE | MAP_FIXED_NOREPLACE, (uint64_t)fd, 0 },
				 &res, err);
		if (!ret && (uint64_t)res != addr) {
			int64_t ignored;

			ld_syscall(c, SYS_munmap, "munmap", 2, (uint64_t[]){ (uint64_t)res, c->region_size },
				   &ignored, NULL);
			ret = qp_seterr(err, -ENOMEM, "process %d: mmap did not place the patch at 0x%" PRIx64,
					(int)c->pid, addr);
		} else if (!ret) {
			c->region = addr; /* from here on, rollback unmaps it */
			ret = ld_fault(c, QP_FAULT_MAPPED, err);
		}
	}
	ld_syscall(c, SYS_close, "close", 1, (uint64_t[]){ (uint64_t)fd }, &res, NULL);
	return ret;
}

/* --- relocation ------------------------------------------------------------ */

static uint64_t ld_stub(struct ld_ctx *c, uint32_t sym, uint64_t target)
{
	uint64_t off = c->extra_off + (uint64_t)sym * LD_STUB_SIZE;
	uint8_t *p = c->buf + off;

	p[0] = 0xff; /* jmp *0(%rip) */
	p[1] = 0x25;
	memset(p + 2, 0, 4);
	memcpy(p + 6, &target, 8);
	return c->region + off;
}

static uint64_t ld_got(struct ld_ctx *c, uint32_t sym, uint64_t target)
{
	size_t nsym = qp_patch__src_sym_count(c->patch);
	uint64_t off = c->extra_off + nsym * LD_STUB_SIZE + (uint64_t)sym * 8;

	memcpy(c->buf + off, &target, 8);
	return c->region + off;
}

/* A tls_index {module id, offset} for __tls_get_addr: one per symbol for
 * general-dynamic (its offset), one for local-dynamic (offset 0). */
static uint64_t ld_tls_index(struct ld_ctx *c, uint32_t sym, bool local)
{
	size_t nsym = qp_patch__src_sym_count(c->patch);
	uint64_t off = c->extra_off + nsym * (LD_STUB_SIZE + 8) + (uint64_t)sym * 32 + (local ? 16 : 0);
	uint64_t pair[2] = { c->tls[sym].modid, local ? 0 : c->tls[sym].value };

	memcpy(c->buf + off, pair, sizeof(pair));
	return c->region + off;
}

static int ld_put32(uint8_t *field, int64_t v, const char *what, const char *name,
		    struct qp_error *err)
{
	if (v != (int32_t)v)
		return qp_seterr(err, -ERANGE, "%s of '%s' does not fit 32 bits", what, name);
	memcpy(field, &(int32_t){ (int32_t)v }, 4);
	return 0;
}

/*
 * Thread-local accesses: local-exec (%fs:T), initial-exec (a GOT slot
 * holding T), where T = v - offset is the variable's place relative to the
 * thread pointer; general-dynamic (a tls_index for the variable) and
 * local-dynamic (one for its module, plus DTPOFF32: v within the block),
 * both passed to the __tls_get_addr call that follows in the code.
 */
static int ld_relocate_tls(struct ld_ctx *c, const struct qp_rela *r, uint8_t *field,
			   uint64_t P, struct qp_error *err)
{
	const struct qp_sym *s = qp_patch__src_sym(c->patch, r->sym);
	const struct ld_tls *t = &c->tls[r->sym];
	int64_t T = (int64_t)t->value - t->offset, A = r->addend;

	switch (r->type) {
	case R_X86_64_TPOFF32:
		return ld_put32(field, T + A, "TLS offset", s->name, err);
	case R_X86_64_GOTTPOFF:
		return ld_put32(field, (int64_t)(ld_got(c, r->sym, (uint64_t)T) - P) + A,
				"GOT slot", s->name, err);
	case R_X86_64_TLSGD:
	case R_X86_64_TLSLD:
		return ld_put32(field, (int64_t)(ld_tls_index(c, r->sym, r->type == R_X86_64_TLSLD) - P) + A,
				"TLS index", s->name, err);
	case R_X86_64_DTPOFF32:
		return ld_put32(field, (int64_t)t->value + A, "offset in its TLS block", s->name, err);
	default:
		return qp_seterr(err, QP_EUNSUPP, "relocation %s to '%s' is not supported yet",
				 qp_rela_type_name(r->type) ? qp_rela_type_name(r->type) : "?", s->name);
	}
}

static int ld_relocate_one(struct ld_ctx *c, const struct qp_rela *r, struct qp_error *err)
{
	uint64_t img = c->region + c->image_off, P = img + r->offset;
	uint64_t S = r->sym ? c->symaddr[r->sym] : 0, A = (uint64_t)r->addend;
	const struct qp_sym *s = qp_patch__src_sym(c->patch, r->sym);
	uint8_t *field = c->buf + c->image_off + r->offset;
	int64_t v;

	if (r->sym && ld_calls_new(c, r->sym))
		S = ld_calls_new(c, r->sym);

	if (qp_rela_is_tls(r->type))
		return ld_relocate_tls(c, r, field, P, err);
	switch (r->type) {
	case R_X86_64_64:
		v = (int64_t)(S + A);
		memcpy(field, &v, 8);
		return 0;
	case R_X86_64_RELATIVE:
		v = (int64_t)(img + A);
		memcpy(field, &v, 8);
		return 0;
	case QP_R_IMAGE32:
	case QP_R_IMAGE32S:
		v = (int64_t)(img + A);
		if ((r->type == QP_R_IMAGE32 && (uint64_t)v > UINT32_MAX) ||
		    (r->type == QP_R_IMAGE32S && v != (int32_t)v))
			return qp_seterr(err, -ERANGE,
					 "the patch at 0x%llx is above 4 GiB, out of reach of position-dependent code",
					 (unsigned long long)c->region);
		memcpy(field, &(int32_t){ (int32_t)v }, 4);
		return 0;
	case R_X86_64_PC64:
		v = (int64_t)(S + A - P);
		memcpy(field, &v, 8);
		return 0;
	case R_X86_64_GOTPCREL:
	case R_X86_64_GOTPCRELX:
	case R_X86_64_REX_GOTPCRELX:
		S = ld_got(c, r->sym, S);
		break;
	case R_X86_64_PC32:
	case R_X86_64_PLT32:
		v = (int64_t)(S + A - P);
		if (v != (int32_t)v && (s->type == STT_FUNC || r->type == R_X86_64_PLT32))
			S = ld_stub(c, r->sym, S);
		break;
	case R_X86_64_32:
	case R_X86_64_32S:
		v = (int64_t)(S + A);
		if ((r->type == R_X86_64_32 && (uint64_t)v > UINT32_MAX) ||
		    (r->type == R_X86_64_32S && v != (int32_t)v))
			return qp_seterr(err, -ERANGE, "'%s' does not fit a 32-bit absolute reference",
					 s->name);
		memcpy(field, &(int32_t){ (int32_t)v }, 4);
		return 0;
	default:
		return qp_seterr(err, QP_EUNSUPP, "relocation %s to '%s' is not supported yet",
				 qp_rela_type_name(r->type) ? qp_rela_type_name(r->type) : "?",
				 s->name);
	}
	v = (int64_t)(S + A - P);
	if (v != (int32_t)v)
		return qp_seterr(err, -ERANGE, "'%s' is out of 32-bit reach of the patch", s->name);
	memcpy(field, &(int32_t){ (int32_t)v }, 4);
	return 0;
}

/* The local copy of the mapping: record, image (relocated), stubs, GOT. */
static int ld_build_image(struct ld_ctx *c, struct qp_error *err)
{
	const struct qp_info *info = qp_patch__info(c->patch);
	struct qp_record *rec = (struct qp_record *)c->buf;
	struct timespec ts;
	size_t i;
	int ret;

	for (i = 0; i < qp_patch__section_count(c->patch); i++) {
		const struct qp_section *s = qp_patch__section(c->patch, i);

		if (s->data)
			memcpy(c->buf + c->image_off + s->addr, s->data, s->size);
	}
	for (i = 0; i < qp_patch__rela_count(c->patch); i++) {
		const struct qp_rela *r = qp_patch__rela(c->patch, i);

		if (r->type == QP_R_REPLACE || r->type == QP_R_BUSY || r->type == QP_R_ROOM ||
		    r->type == QP_R_CALLS)
			continue; /* nothing to write */
		ret = ld_relocate_one(c, r, err);
		if (ret)
			return ret;
	}
	memcpy(rec->magic, QP_RECORD_MAGIC, 8);
	rec->version = c->nsites ? QP_RECORD_VERSION_SITES : QP_RECORD_VERSION;
	rec->nfuncs = (uint32_t)c->nfuncs;
	rec->state = QP_REC_PENDING; /* APPLIED once the jumps are in */
	rec->seq = c->seq;
	rec->region_size = c->region_size;
	rec->image_start = c->region + c->image_off;
	rec->image_size = info->image_size;
	clock_gettime(CLOCK_REALTIME, &ts);
	rec->applied_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	memcpy(rec->id, info->id, sizeof(rec->id));
	memcpy(rec->target, info->target_name, sizeof(rec->target));
	for (i = 0; i < qp_patch__section_count(c->patch); i++) {
		const struct qp_section *s = qp_patch__section(c->patch, i);

		if (!strcmp(s->name, QP_SEC_EH_FRAME)) {
			rec->cfi_start = rec->image_start + s->addr;
			rec->cfi_size = s->size;
		}
	}
	for (i = 0; i < c->nfuncs; i++) {
		const struct qp_rela *r = c->funcs[i].rela;

		c->funcs[i].rec.new_addr = rec->image_start + r->offset;
		c->funcs[i].rec.new_size = (uint32_t)qp_patch__dst_sym(c->patch, (size_t)r->addend)->size;
		rec->funcs[i] = c->funcs[i].rec;
	}
	ret = ld_sites_encode(c, err);
	if (!ret && c->nsites) { /* version 3: the sites after the functions */
		struct qp_record_sites *h = (struct qp_record_sites *)&rec->funcs[c->nfuncs];
		struct qp_record_site *v = (struct qp_record_site *)(h + 1);

		memcpy(h->magic, QP_RECORD_SITES_MAGIC, 8);
		h->nsites = (uint32_t)c->nsites;
		for (i = 0; i < c->nsites; i++)
			v[i] = c->sites[i].rec;
	}
	return ret;
}

/* Page protections per section, stubs r-x: the mprotect calls for the
 * mapping at @region, into @v (room for a call per section and one more);
 * returns their count.  The record stays read-write, as data does: undo
 * updates its state. */
static size_t ld_protect_calls(const struct ld_ctx *c, uint64_t region, struct ld_call *v)
{
	uint64_t img = region + c->image_off;
	size_t i, n = 0;

	for (i = 0; i < qp_patch__section_count(c->patch); i++) {
		const struct qp_section *s = qp_patch__section(c->patch, i);
		uint64_t start = img + (s->addr & ~(LD_PAGE - 1)), end = page_up(img + s->addr + s->size);
		int prot = PROT_READ;

		if (s->flags & SHF_WRITE)
			continue; /* stays read-write */
		if (s->flags & SHF_EXECINSTR)
			prot |= PROT_EXEC;
		v[n++] = (struct ld_call){ SYS_mprotect, "mprotect", 3, { start, end - start, (uint64_t)prot } };
	}
	v[n++] = (struct ld_call){ SYS_mprotect, "mprotect", 3,
				   { region + c->extra_off, c->region_size - c->extra_off,
				     PROT_READ | PROT_EXEC } };
	return n;
}

static int ld_protect(struct ld_ctx *c, struct qp_error *err)
{
	struct ld_call *v = calloc(qp_patch__section_count(c->patch) + 1, sizeof(*v));
	size_t i, n;
	int64_t res;
	int ret = 0;

	if (!v)
		return qp_seterr(err, -ENOMEM, "out of memory");
	n = ld_protect_calls(c, c->region, v);
	for (i = 0; !ret && i < n; i++)
		ret = ld_syscall(c, v[i].nr, v[i].name, v[i].nargs, v[i].args, &res, err);
	free(v);
	return ret;
}

/*
 * The system calls an apply may make the target run, with the arguments
 * it will pass (ld_syscall() refuses any other): ld_map_region()'s (the
 * fd is the one memfd_create will return, the lowest free), ld_protect()'s
 * and the munmap of ld_rollback(); for the seccomp check before the first.
 */
static int ld_apply_seccomp(struct ld_ctx *c, struct qp_error *err)
{
	struct ld_call *v = calloc(qp_patch__section_count(c->patch) + 6, sizeof(*v));
	uint64_t fd = ld_seccomp_next_fd(c), at = c->hole, size = c->region_size;
	size_t n = 0;
	int ret;

	if (!v)
		return qp_seterr(err, -ENOMEM, "out of memory");
	v[n++] = (struct ld_call){ SYS_memfd_create, "memfd_create", 2, { ld_scratch(c), MFD_CLOEXEC } };
	v[n++] = (struct ld_call){ SYS_ftruncate, "ftruncate", 2, { fd, size } };
	v[n++] = (struct ld_call){ SYS_mmap, "mmap", 6, { at, size, PROT_READ | PROT_WRITE,
							  MAP_PRIVATE | MAP_FIXED_NOREPLACE, fd, 0 } };
	v[n++] = (struct ld_call){ SYS_close, "close", 1, { fd } };
	n += ld_protect_calls(c, at, v + n);
	v[n++] = (struct ld_call){ SYS_munmap, "munmap", 2, { at, size } };
	ret = ld_seccomp_check(c, v, n, err);
	free(v);
	return ret;
}

void ld_jmp_encode(uint8_t *out, uint64_t from, uint64_t to)
{
	int32_t rel = (int32_t)(to - (from + QP_JMP_REL32_SIZE));

	out[0] = 0xe9;
	memcpy(out + 1, &rel, 4);
}

int ld_write_jumps(struct ld_ctx *c, struct qp_error *err)
{
	size_t i, n = 0;
	int ret;

	for (i = 0; i < c->nfuncs; i++) {
		struct ld_func *f = &c->funcs[i];
		uint8_t now[QP_JMP_REL32_SIZE], jmp[QP_JMP_REL32_SIZE];
		int64_t d = (int64_t)(f->rec.new_addr - (f->rec.site + QP_JMP_REL32_SIZE));

		if (f->calls)
			continue; /* no jump: its call sites lead to it */
		if (d != (int32_t)d)
			return qp_seterr(err, -ERANGE, "'%s' is out of jump range of the patch",
					 f->rec.name);
		ret = qp_proc__read(&c->proc, f->rec.site, now, sizeof(now), err);
		if (ret)
			return ret;
		if (memcmp(now, f->rec.saved, sizeof(now)))
			return qp_seterr(err, QP_ETARGET, "'%s' changed in process %d while preparing",
					 f->rec.name, (int)c->pid);
		ld_jmp_encode(jmp, f->rec.site, f->rec.new_addr);
		ret = qp_proc__write(&c->proc, f->rec.site, jmp, sizeof(jmp), err);
		if (ret)
			return ret;
		f->written = true;
		if (!n++ && (ret = ld_fault(c, QP_FAULT_FIRST_JUMP, err)))
			return ret;
	}
	/* the jumps lead into the patch: so says its record */
	ret = qp_proc__write(&c->proc, c->region + offsetof(struct qp_record, state),
			     &(uint32_t){ QP_REC_APPLIED }, sizeof(uint32_t), err);
	return ret ? ret : ld_fault(c, QP_FAULT_JUMPS, err);
}

/* Every thread stopped: the jumps written so far go (the record's state
 * does not matter: the mapping goes next). */
void ld_unjump(struct ld_ctx *c)
{
	size_t i;

	for (i = c->nfuncs; i-- > 0;)
		if (c->funcs[i].written)
			qp_proc__write(&c->proc, c->funcs[i].rec.site, c->funcs[i].rec.saved,
				       c->funcs[i].rec.len, NULL);
}

/* One thread held: the mapping goes, if made. */
static void ld_unmap(struct ld_ctx *c)
{
	if (c->region) {
		int64_t res;

		ld_syscall(c, SYS_munmap, "munmap", 2, (uint64_t[]){ c->region, c->region_size },
			   &res, NULL);
		c->region = 0;
	}
}

/* Map the patch at the hole chosen beforehand; if something took it since
 * (MAP_FIXED_NOREPLACE says so), choose again from a fresh map. */
int ld_map(struct ld_ctx *c, const char *id, struct qp_error *err)
{
	struct qp_maps maps;
	int ret = ld_map_region(c, c->hole, id, err);

	if (ret != -EEXIST)
		return ret;
	ret = qp_maps__read(c->pid, &maps, err);
	if (!ret)
		ret = ld_find_hole(c, &maps, c->region_size, &c->hole, err);
	qp_maps__release(&maps);
	return ret ? ret : ld_map_region(c, c->hole, id, err);
}

/*
 * An IFUNC symbol's address is what its resolver returns, as the dynamic
 * linker does it: the resolver runs in the target (AT_HWCAP as argument,
 * as x86-64 ld.so passes it), with every other thread stopped.
 */
static int ld_resolve_ifuncs(struct ld_ctx *c, struct qp_error *err)
{
	size_t i, n = qp_patch__src_sym_count(c->patch);
	uint64_t hwcap = getauxval(AT_HWCAP); /* same machine, same value */
	int ret;

	for (i = 1; i < n; i++) {
		uint64_t addr;

		if (!c->ifunc[i])
			continue;
		ret = qp_proc__call(&c->proc, c->symaddr[i], &hwcap, 1, LD_IFUNC_TIMEOUT_MS, &addr, err);
		if (ret)
			return qp_preperr(err, ret, "resolving IFUNC '%s'",
					  qp_patch__src_sym(c->patch, i)->name);
		c->symaddr[i] = addr;
		c->ifunc[i] = false;
	}
	return 0;
}

/*
 * One thread held, the others running: the mapping is made, filled,
 * relocated and protected.  Nothing leads into it until the jumps are
 * written, so the running threads cannot tell.  On failure, it is gone
 * again.
 */
static int ld_apply_prepare(struct ld_ctx *c, struct qp_error *err)
{
	int ret;

	ret = ld_apply_seccomp(c, err); /* before anything changes */
	ld_phase(c, "seccomp check");
	if (!ret)
		ret = ld_fault(c, QP_FAULT_HELD, err);
	if (!ret)
		ret = ld_resolve_ifuncs(c, err);
	if (!ret)
		ret = ld_map(c, qp_patch__info(c->patch)->id, err);
	ld_phase(c, "map");
	if (!ret)
		ret = ld_build_image(c, err);
	ld_phase(c, "relocate");
	if (!ret)
		ret = qp_proc__write(&c->proc, c->region, c->buf, c->region_size, err);
	if (!ret)
		ret = ld_fault(c, QP_FAULT_WRITTEN, err);
	ld_phase(c, "write");
	if (!ret)
		ret = ld_protect(c, err);
	ld_phase(c, "protect");
	if (!ret)
		ret = ld_fault(c, QP_FAULT_PROTECTED, err);
	if (ret)
		ld_unmap(c);
	return ret;
}

/* The identity of the program process @pid runs; 0 when gone. */
static void ld_exe_id(pid_t pid, uint64_t *dev, uint64_t *ino)
{
	char path[64];
	struct stat st;

	snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
	*dev = *ino = 0;
	if (!stat(path, &st)) {
		*dev = st.st_dev;
		*ino = st.st_ino;
	}
}

/* Did the process exec another program since the start (or the same
 * one again: the patch mapping made for it is gone)? */
bool ld_execed(struct ld_ctx *c)
{
	static const char name[] = "/memfd:" QP_MEMFD_PREFIX;
	struct qp_maps now = { 0 };
	uint64_t dev, ino;
	bool gone = true;
	size_t i;

	ld_exe_id(c->pid, &dev, &ino);
	if (!dev && !ino)
		return false; /* the process ended: told otherwise */
	if (dev != c->exe_dev || ino != c->exe_ino)
		return true;
	if (!c->region || qp_maps__read(c->pid, &now, NULL))
		return false;
	for (i = 0; i < now.n && gone; i++)
		gone = now.v[i].start != c->region || strncmp(now.v[i].path, name, sizeof(name) - 1);
	qp_maps__release(&now);
	return gone;
}

/*
 * Between the two windows the threads ran: one of them may have called
 * execve(), and the process now runs another program, in which the
 * addresses of the patch mean nothing.  The private mapping made for the
 * patch does not survive an exec: its record must still be there, as
 * written.
 */
static int ld_same_image(struct ld_ctx *c, struct qp_error *err)
{
	struct qp_record now;

	if (!qp_proc__read(&c->proc, c->region, &now, sizeof(now), NULL) &&
	    !memcmp(&now, c->buf, sizeof(now)))
		return 0;
	return qp_seterr(err, QP_ETARGET, "process %d: the patch mapping at 0x%" PRIx64 " is gone "
			 "or was changed while the process ran", (int)c->pid, c->region);
}

/* Every thread stopped, none in the way: the jumps, then the record's
 * state.  On failure, the jumps written go again. */
static int ld_apply_commit(struct ld_ctx *c, struct qp_error *err)
{
	int ret = ld_fault(c, QP_FAULT_STOPPED, err);

	if (!ret)
		ret = ld_same_image(c, err);
	if (!ret)
		ret = ld_sites_write(c, err);
	if (!ret)
		ret = ld_write_jumps(c, err);
	if (ret) {
		ld_unjump(c);
		ld_sites_unwrite(c);
	}
	ld_phase(c, "jumps");
	return ret;
}

static int ld_unmap_work(struct ld_ctx *c, struct qp_error *err)
{
	(void)err;
	ld_unmap(c);
	return 0;
}

int ld_tries(const struct ld_ctx *c)
{
	return c->opts && c->opts->retries > 0 ? c->opts->retries : 200;
}

static int ld_delay_ms(const struct ld_ctx *c)
{
	return c->opts && c->opts->retry_delay_ms > 0 ? c->opts->retry_delay_ms : 5;
}

/*
 * Between two attempts the target runs: a pending Ctrl-C may end us here.
 * While an apply's mapping is made but not in use, it must go first: the
 * signal then makes the apply fail (rolled back), and takes effect when
 * the loader unblocks it at the end.
 */
int ld_pause(struct ld_ctx *c, struct qp_error *err)
{
	bool open = !c->region || c->undo; /* no mapping to remove first */
	sigset_t pending;
	int sig;

	if (open)
		pthread_sigmask(SIG_SETMASK, &c->sigmask, NULL);
	usleep((useconds_t)ld_delay_ms(c) * 1000);
	if (open) {
		ld_block_signals(NULL);
		return 0;
	}
	/* the signals stay blocked (since the apply began): a pending one ends it */
	sigpending(&pending);
	for (sig = 1; sig < NSIG; sig++)
		if (sigismember(&pending, sig) == 1 && sigismember(&c->sigmask, sig) != 1)
			return qp_seterr(err, -EINTR, "interrupted by signal %d (%s)", sig,
					 strsignal(sig));
	return 0;
}

static int ld_leave_ms(const struct ld_ctx *c)
{
	return !c->opts ? LD_LEAVE_MS : c->opts->leave_ms < 0 ? 0 :
	       c->opts->leave_ms ? c->opts->leave_ms : LD_LEAVE_MS;
}

/*
 * A thread that stays inside the code being replaced (a loop around a
 * call that sleeps, an event loop blocked in epoll_wait) is hardly ever
 * seen outside by stopping the process now and then, though it leaves
 * regularly.  So catch it on its way out: a breakpoint on the return
 * address of its outermost frame in that code, and only that thread runs
 * until it gets there (every other thread stays stopped, at most
 * leave_ms).  1: it is out, everything still stopped (busy must be asked
 * again); 0: it did not leave in time (or where it leaves is unknown),
 * and *@ran says how long it ran; < 0: an error.
 */
static int ld_run_out(struct ld_ctx *c, int budget_ms, int *ran_ms, struct qp_error *err)
{
	const struct qp_thread *t = &c->proc.threads[c->busy_thread];
	uint64_t exit;
	double t0 = now_us();
	int ret;

	*ran_ms = 0;
	if (c->busy_coro) /* no thread to run: a coroutine leaves when it is entered */
		return 0;
	exit = ld_exit_point(c, t);
	if (!exit || c->undo || budget_ms <= 0)
		return 0;
	ret = qp_proc__run_to(&c->proc, c->busy_thread, exit, budget_ms, err);
	*ran_ms = (int)((now_us() - t0) / 1000);
	if (ret == -ETIMEDOUT) {
		qp_error_clear(err);
		return 0;
	}
	return ret ? ret : 1;
}

/* Stop the target with no thread in the way of @busy; retry per policy.
 * On success the target is stopped. */
static int ld_stop_quiet(struct ld_ctx *c, bool (*busy)(struct ld_ctx *, char *, size_t),
			 struct qp_error *err)
{
	char why[512] = "", alone[128] = "";
	int ret, ran_ms, runs = 0, budget = ld_leave_ms(c);

	for (c->stats->attempts = 1;; c->stats->attempts++) {
		c->stop_t0 = now_us();
		ret = qp_proc__stop(&c->proc, err);
		ld_phase(c, "stop all");
		if (ret)
			return ret;
		if (c->proc.interrupted_ms > 0) /* the pause begins with the first interrupt */
			c->stop_t0 = c->proc.interrupted_ms * 1000.0;
		c->stopped_t0 = now_us();
		if (!busy(c, why, sizeof(why))) {
			ld_phase(c, "busy check");
			return 0;
		}
		ld_phase(c, "busy check");
		if (c->cfi_wanted) { /* a stack to unwind: load the CFI with the target running */
			c->cfi_wanted = false;
			qp_proc__resume(&c->proc, NULL);
			ld_phase(c, "resume all");
			ld_cfi_load(c);
			ld_phase(c, "CFI");
			c->stats->attempts--; /* this one does not count */
			continue;
		}
		/* still busy after a while: catch the thread on its way out,
		 * once per thread found busy */
		while (busy == ld_apply_busy && budget > 0 &&
		       c->stats->attempts >= LD_LEAVE_AFTER && runs < LD_LEAVE_RUNS) {
			runs++;
			ret = ld_run_out(c, budget, &ran_ms, err);
			budget -= ran_ms;
			if (ret < 0) {
				qp_proc__resume(&c->proc, NULL);
				return ret;
			}
			if (!ret) {
				if (ran_ms)
					snprintf(alone, sizeof(alone), "; run alone for %d ms, it did not leave",
						 ran_ms);
				budget = 0; /* no use trying again */
				break;
			}
			c->stats->caught++;
			if (!busy(c, why, sizeof(why)))
				return 0;
		}
		qp_proc__resume(&c->proc, NULL);
		ld_phase(c, "resume all");
		if (c->stats->attempts >= ld_tries(c))
			return qp_seterr(err, QP_EBUSY, "%s (still after %d attempts over %d ms%s)",
					 why, ld_tries(c), ld_tries(c) * ld_delay_ms(c), alone);
		ret = ld_pause(c, err);
		ld_phase(c, "retry wait");
		if (ret)
			return ret;
	}
}

/*
 * While the loader holds threads stopped, the target's other threads, and
 * the ones it lets go, compete with it for the CPUs (256 threads that each
 * wake once a millisecond keep two CPUs more than half busy): each time
 * one preempts the loader, every held thread waits longer.  So the loader
 * thread runs at nice LD_BOOST_NICE meanwhile, when it may (CAP_SYS_NICE),
 * and at its own priority again after; the target's priorities are not
 * touched.  Returns the priority to restore, or LD_NO_BOOST.
 */
#define LD_BOOST_NICE (-20)
#define LD_NO_BOOST 100
static int ld_boost(void)
{
	int prio;

	errno = 0;
	prio = getpriority(PRIO_PROCESS, 0); /* Linux: this thread */
	if ((prio == -1 && errno) || prio <= LD_BOOST_NICE ||
	    setpriority(PRIO_PROCESS, 0, LD_BOOST_NICE))
		return LD_NO_BOOST;
	return prio;
}

static void ld_unboost(int prio)
{
	if (prio != LD_NO_BOOST)
		setpriority(PRIO_PROCESS, 0, prio);
}

/* Run @work on the stopped target; a process that ended meanwhile is an error. */
static int ld_work(struct ld_ctx *c, int (*work)(struct ld_ctx *, struct qp_error *),
		   struct qp_error *err)
{
	int ret = work(c, err);

	if (!ret && qp_proc__died_now(&c->proc)) /* it worked, on a dying process */
		ret = qp_seterr(err, QP_EPROC, "process %d ended", (int)c->pid);
	return ld_check_death(c, ret, err);
}

/* Let the target go after work that returned @ret; the result. */
static int ld_resume(struct ld_ctx *c, int ret, struct qp_error *err)
{
	if (qp_proc__resume(&c->proc, ret ? NULL : err) && !ret)
		ret = ld_check_death(c, err->code, err);
	return ret;
}

/* Stop the target (retrying while @busy), run @work on it, resume it; the
 * stop times go into the stats. */
int ld_while_stopped(struct ld_ctx *c, bool (*busy)(struct ld_ctx *, char *, size_t),
			    int (*work)(struct ld_ctx *, struct qp_error *), struct qp_error *err)
{
	int prio = ld_boost();
	int ret = ld_stop_quiet(c, busy, err);

	if (ret) {
		ld_unboost(prio);
		return ld_check_death(c, ret, err);
	}
	c->stats->threads = c->proc.nthreads;
	ret = ld_work(c, work, err);
	c->stats->stopped_us = now_us() - c->stopped_t0;
	ld_phase(c, "work stopped");
	ret = ld_resume(c, ret, err);
	c->stats->stop_us = now_us() - c->stop_t0;
	ld_unboost(prio);
	ld_phase(c, "resume all");
	return ret;
}

/* Stop one thread of the target (threads[0]), run @work with it while
 * the others run, let it go; the time goes into stats->held_us. */
int ld_with_one(struct ld_ctx *c, int (*work)(struct ld_ctx *, struct qp_error *),
		struct qp_error *err)
{
	double t0 = now_us();
	int prio = ld_boost();
	int ret = qp_proc__stop_one(&c->proc, err);

	ld_phase(c, "stop one");
	if (ret) {
		ld_unboost(prio);
		return ld_check_death(c, ret, err);
	}
	ret = ld_work(c, work, err);
	ld_phase(c, "work held");
	ret = ld_resume(c, ret, err);
	ld_unboost(prio);
	c->stats->held_us += now_us() - t0;
	ld_phase(c, "resume one");
	return ret;
}

/*
 * Apply, with the target stopped only where it must be: the mapping
 * prepared with one thread held; every thread stopped for the busy check
 * and the jumps; if those fail, the mapping removed with one thread held.
 */
static int ld_apply_run(struct ld_ctx *c, struct qp_error *err)
{
	struct qp_error e2 = { 0 };
	int ret = ld_with_one(c, ld_apply_prepare, err);

	if (!ret) {
		ret = ld_while_stopped(c, ld_apply_busy, ld_apply_commit, err);
		if (ret && c->region && !c->stats->target_gone && !qp_proc__dead(&c->proc) &&
		    !ld_execed(c))
			ld_with_one(c, ld_unmap_work, &e2);
	}
	if (ret && !c->stats->target_gone && ld_execed(c)) { /* its memory is another program's */
		char cause[QP_ERRMSG_MAX];

		snprintf(cause, sizeof(cause), "%s", err && err->msg[0] ? err->msg : qp_strerror(ret));
		ret = qp_seterr(err, QP_ETARGET, "process %d called execve() during the apply: it "
				"runs another program now, untouched; nothing was applied (%s)",
				(int)c->pid, cause);
	}
	return ret;
}

void ld_ctx_release(struct ld_ctx *c)
{
	qp_proc__close(&c->proc);
	qp_maps__release(&c->maps);
	free(c->symaddr);
	free(c->ifunc);
	free(c->tls);
	free(c->funcs);
	free(c->sites);
	free(c->buf);
	free(c->busy);
	free(c->busy_in);
	qp_applied__free(c->applied, c->napplied);
	qp_unwind__free(c->uw);
	ld_coro_free(c->coro);
	ld_seccomp_release(&c->sc);
	free(c->so_unsafe);
}

static int ld_prepare(struct ld_ctx *c, struct qp_error *err)
{
	const struct qp_info *info = qp_patch__info(c->patch);
	const struct qp_applied *applied;
	size_t n, i;
	int ret;

	ret = qp_maps__read(c->pid, &c->maps, err);
	ld_phase(c, "read maps");
	if (!ret)
		ret = ld_find_target(c, err);
	ld_phase(c, "find target");
	if (!ret)
		ret = ld_list(&c->proc, &c->maps, true, &c->applied, &c->napplied, err);
	ld_phase(c, "records");
	if (ret)
		return ret;
	applied = c->applied;
	n = c->napplied;
	for (i = 0; i < n; i++)
		if (applied[i].rec.state == QP_REC_APPLIED && !strcmp(applied[i].rec.id, info->id))
			ret = qp_seterr(err, QP_EAPPLIED, "patch '%s' is already applied to process %d",
					info->id, (int)c->pid);
	c->seq = n ? applied[n - 1].rec.seq + 1 : 1;
	if (!ret)
		ret = ld_resolve(c, err);
	ld_phase(c, "resolve symbols");
	if (!ret)
		ret = ld_prepare_funcs(c, err);
	ld_phase(c, "decode functions");
	if (!ret)
		ret = ld_sites_find(c, err);
	if (!ret)
		ret = ld_busy_ranges(c, err);
	ld_phase(c, "sites, busy ranges");
	if (ret)
		return ret;
	for (i = 0; i < qp_patch__rela_count(c->patch); i++) {
		uint32_t t = qp_patch__rela(c->patch, i)->type;

		c->need_low |= t == QP_R_IMAGE32 || t == QP_R_IMAGE32S;
	}
	c->rec_size = page_up(sizeof(struct qp_record) + c->nfuncs * sizeof(struct qp_record_func) +
			      (c->nsites ? sizeof(struct qp_record_sites) +
						   c->nsites * sizeof(struct qp_record_site) : 0));
	c->image_off = c->rec_size;
	c->extra_off = c->image_off + page_up(info->image_size);
	c->region_size = c->extra_off +
			 page_up(qp_patch__src_sym_count(c->patch) * (LD_STUB_SIZE + 8 + 32));
	c->buf = calloc(1, c->region_size);
	if (!c->buf)
		return qp_seterr(err, -ENOMEM, "out of memory");
	ret = ld_find_hole(c, &c->maps, c->region_size, &c->hole, err);
	ld_phase(c, "find hole");
	if (!ret)
		ret = qp_proc__find_gadget_in(&c->proc, &c->maps, err);
	ld_phase(c, "find syscall");
	/* the call frame information only when a stack needs unwinding */
	if (!ret && !(c->opts && c->opts->allow_active))
		ld_cfi_lazy(c, c->applied, c->napplied);
	/* suspended coroutines are looked for now, while the target runs; the
	 * window only reads their contexts again */
	if (!ret && !(c->opts && c->opts->allow_active))
		ret = ld_coro_find(c, err);
	ld_phase(c, "coroutines");
	return ret;
}

static bool ld_any_abandoned(const struct qp_applied *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (v[i].rec.state == QP_REC_PENDING && v[i].abandoned)
			return true;
	return false;
}

int ld_begin(struct ld_ctx *c, struct qp_error *err)
{
	int ret;

	c->lock_fd = -1;
	c->proc.mem_fd = -1;
	ld_phase(c, "begin");
	/* may the loader trace it at all; then the lock, so that a tracer
	 * found after it is not another loader */
	ret = ld_target_ended(c->pid, err);
	if (!ret)
		ret = qp_proc__open(c->pid, &c->proc, err);
	if (!ret)
		ret = ld_lock(c->pid, c->opts ? c->opts->lock_wait_ms : 0, &c->lock_fd, c->lock_path,
			      sizeof(c->lock_path), err);
	ld_phase(c, "lock");
	if (!ret)
		ret = ld_target_check(c->pid, c->opts && c->opts->hold, err);
	ld_phase(c, "target checks");
	if (!ret && c->opts && c->opts->hold)
		c->proc.keep_tid = qp_hold__tid(c->opts->hold);
	return ret;
}

int qp_load_apply(pid_t pid, const struct qp_patch *patch, const struct qp_load_opts *opts,
		  struct qp_load_stats *stats, struct qp_error *err)
{
	struct ld_ctx c = { .pid = pid, .patch = patch, .opts = opts, .stats = stats };
	double t0 = now_us();
	int ret;

	memset(stats, 0, sizeof(*stats));
	ret = ld_begin(&c, err);
	ld_exe_id(pid, &c.exe_dev, &c.exe_ino);
	ld_phase(&c, "target checks");
	if (!ret)
		ret = ld_prepare(&c, err);
	if (!ret) {
		ld_block_signals(&c.sigmask);
		ret = ld_apply_run(&c, err);
		if (!ret && ld_any_abandoned(c.applied, c.napplied))
			ld_reap(&c, c.applied, c.napplied, NULL); /* best effort: the patch is in */
		pthread_sigmask(SIG_SETMASK, &c.sigmask, NULL);
	}
	ld_unlock(c.lock_fd, c.lock_path);
	stats->region = ret ? 0 : c.region;
	stats->nfuncs = c.nfuncs;
	stats->nsites = c.nsites;
	ld_ctx_release(&c);
	ld_phase(&c, "unlock, release");
	stats->total_us = now_us() - t0;
	return ret;
}
