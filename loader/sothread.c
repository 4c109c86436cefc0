// SPDX-License-Identifier: MIT
/*
 * Which thread of a target may run dlopen or dlclose for a hand-written
 * .so patch (so.c applies, undo.c unloads), and those calls.  dlopen is
 * not async-signal-safe: it takes the dynamic linker's lock and calls
 * malloc.  A thread inside the dynamic linker, the dl* functions or fork
 * holds (or waits for) that lock: then no thread may call it.  A thread
 * inside malloc and kin, whose stack cannot be unwound to its end, or
 * under seccomp may not be the one; of the others, one blocked in a
 * system call is preferred.  The picked thread runs the call while the
 * others run on, so that a lock another thread holds briefly is let go.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ld.h"
#include "qpatch/elf.h"

#define SO_PICK_TRIES 50   /* stops to find a thread that may run dlopen */
#define SO_LOCK "the dynamic linker's lock" /* ld_range.in of code that holds it */

/* Functions that take the locks dlopen and dlclose take (the dynamic
 * linker's, malloc's), wherever a mapped object defines them. */
static const char *const so_unsafe_names[] = {
	"malloc", "free", "calloc", "realloc", "reallocarray", "memalign", "posix_memalign",
	"aligned_alloc", "valloc", "pvalloc", "malloc_trim", "malloc_usable_size", "mallinfo",
	"mallinfo2", "malloc_stats", "malloc_info", "mallopt", "cfree",
	/* from here on (SO_FIRST_LOCKING): they take the dynamic linker's lock */
	"dlopen", "dlclose", "dlsym", "dlvsym", "dlerror", "dladdr", "dladdr1", "dlinfo",
	"dlmopen", "dl_iterate_phdr", "__libc_dlopen_mode", "fork", "_Fork", "vfork",
};

/* @lock: code that holds (or takes) the dynamic linker's lock: no thread
 * may be there when dlopen or dlclose runs, whichever thread runs it. */
#define SO_FIRST_LOCKING 18 /* so_unsafe_names[] from "dlopen" on */

static int so_add_unsafe(struct ld_ctx *c, uint64_t lo, uint64_t hi, const char *name, bool lock)
{
	struct ld_range *v = realloc(c->so_unsafe, (c->nso_unsafe + 1) * sizeof(*v));

	if (!v)
		return -ENOMEM;
	c->so_unsafe = v;
	v[c->nso_unsafe++] = (struct ld_range){ .lo = lo, .hi = hi, .name = name,
						.in = lock ? SO_LOCK : NULL, .check_stack = true };
	return 0;
}

/* dlopen, dlclose, dlerror: the first object (in map order) exporting each */
static const char *const so_dl_names[] = { "dlopen", "dlclose", "dlerror" };

struct so_scan {
	struct ld_dsym dl[3];      /* as so_dl_names[] */
	bool found[3];
};

/* One mapped object: the dl functions it exports (if none before it did),
 * and its ranges no thread may be in when dlopen or dlclose runs. */
static int so_scan_object(struct ld_ctx *c, const struct qp_map *m, const struct qp_elf *e,
			  uint64_t bias, void *arg)
{
	struct so_scan *sc = arg;
	uint64_t lo, hi;
	size_t k;
	int ret = 0;

	if (!e->dynamic)
		return 0;
	for (k = 0; k < sizeof(so_dl_names) / sizeof(*so_dl_names); k++) {
		const struct qp_elf_sym *y = sc->found[k] ? NULL : qp_elf__find_global(e, so_dl_names[k]);

		if (y && y->type != STT_TLS) {
			sc->dl[k] = (struct ld_dsym){ .map = m, .bias = bias, .value = y->value,
						      .type = y->type };
			sc->found[k] = true;
		}
	}
	if (qp_elf__find_global(e, "_r_debug")) { /* the dynamic linker */
		ld_object_range(&c->maps, m->path, &lo, &hi);
		ret = so_add_unsafe(c, lo, hi, "the dynamic linker", true);
	}
	for (k = 0; !ret && k < sizeof(so_unsafe_names) / sizeof(*so_unsafe_names); k++) {
		const struct qp_elf_sym *y = qp_elf__find_global(e, so_unsafe_names[k]);

		if (y && y->size && (y->type == STT_FUNC || y->type == STT_GNU_IFUNC))
			ret = so_add_unsafe(c, bias + y->value, bias + y->value + y->size,
					    so_unsafe_names[k], k >= SO_FIRST_LOCKING);
	}
	return ret;
}

int ld_so_unsafe(struct ld_ctx *c, struct qp_error *err)
{
	struct so_scan sc = { 0 };
	int ret = ld_for_each_object(c, so_scan_object, &sc);

	if (ret)
		return qp_seterr(err, ret, "out of memory");
	if (!sc.found[0] || sc.dl[0].type != STT_FUNC)
		return qp_seterr(err, QP_EUNSUPP,
				 "process %d has no dlopen (a static program, or a C library without it): "
				 "a hand-written .so cannot be loaded there; build a .qpatch patch instead (qpatch-build)",
				 (int)c->pid);
	c->so_dlopen = sc.dl[0].bias + sc.dl[0].value;
	if (!sc.found[1] || sc.dl[1].type != STT_FUNC)
		return qp_seterr(err, QP_EUNSUPP, "process %d has dlopen but no dlclose", (int)c->pid);
	c->so_dlclose = sc.dl[1].bias + sc.dl[1].value;
	c->so_dlerror = sc.found[2] ? sc.dl[2].bias + sc.dl[2].value : 0;
	return 0;
}

static int so_seccomp_mode(pid_t pid, pid_t tid)
{
	char path[96], line[256];
	int mode = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/status", (int)pid, (int)tid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "Seccomp:", 8))
			mode = atoi(line + 8);
	fclose(f);
	return mode;
}

struct so_frames {
	const struct ld_range *v;   /* unsafe code */
	size_t n;                   /* count of v */
	const struct ld_range *hit; /* where a frame is */
	uint64_t pc;                /* its pc */
};

static int so_frame_cb(uint64_t pc, int depth, bool exact, void *arg)
{
	struct so_frames *f = arg;
	size_t i;

	(void)depth;
	(void)exact;
	for (i = 0; i < f->n; i++)
		if (pc >= f->v[i].lo && pc < f->v[i].hi) {
			f->hit = &f->v[i];
			f->pc = pc;
			return 2;
		}
	return 0;
}

/*
 * May thread @t run dlopen or dlclose: every frame of its stack known, none
 * in the dynamic linker, malloc or the dl* functions, no seccomp filter?
 * *@lock is set when it is in code that holds the dynamic linker's lock:
 * then no thread may run them (they would wait for it).
 */
static bool so_thread_safe(struct ld_ctx *c, const struct qp_thread *t, bool *lock, char *why,
			   size_t size)
{
	struct so_frames f = { .v = c->so_unsafe, .n = c->nso_unsafe };
	uint64_t sp;
	int mode = so_seccomp_mode(c->pid, t->tid), ret;
	bool seccomp = mode != 0 && !(c->opts && c->opts->ignore_seccomp);

	*lock = false;
	/* also a thread that may not run dlopen itself: it may hold the
	 * dynamic linker's lock, which no other thread could then take */
	ret = c->uw ? qp_unwind__thread(c->uw, &t->regs, so_frame_cb, &f, &sp) : -1;
	if (f.hit) {
		*lock = f.hit->in != NULL;
		snprintf(why, size, "thread %d is inside %s (pc 0x%llx)%s%s", (int)t->tid, f.hit->name,
			 (unsigned long long)f.pc, *lock ? ", which holds " : "", *lock ? f.hit->in : "");
		return false;
	}
	if (seccomp) {
		snprintf(why, size, "thread %d runs under seccomp (mode %d): what dlopen calls cannot be checked",
			 (int)t->tid, mode);
		return false;
	}
	if (!c->uw) {
		snprintf(why, size, "the threads' stacks cannot be unwound");
		return false;
	}
	if (ret) {
		snprintf(why, size, "the stack of thread %d cannot be unwound to its end", (int)t->tid);
		return false;
	}
	return true;
}

bool ld_so_pick(struct ld_ctx *c, char *why, size_t size)
{
	size_t i, best = SIZE_MAX;
	char tmp_why[512];
	bool lock;

	for (i = 0; i < c->proc.nthreads; i++) {
		const struct qp_thread *t = &c->proc.threads[i];
		bool in_syscall = (int64_t)t->regs.orig_rax >= 0;

		if (t->gone)
			continue;
		if (!so_thread_safe(c, t, &lock, tmp_why, sizeof(tmp_why))) {
			snprintf(why, size, "%s", tmp_why);
			if (lock)
				return false;
			continue;
		}
		if (best == SIZE_MAX ||
		    (in_syscall && (int64_t)c->proc.threads[best].regs.orig_rax < 0))
			best = i;
	}
	if (best == SIZE_MAX)
		return false;
	if (best) {
		struct qp_thread tmp = c->proc.threads[0];

		c->proc.threads[0] = c->proc.threads[best];
		c->proc.threads[best] = tmp;
	}
	return true;
}

/*
 * Stop every thread, pick one that may run dlopen/dlclose, let the others
 * go, run @work with it (retrying the pick a while); the time goes into
 * stats->held_us.
 */
int ld_so_with_safe(struct ld_ctx *c, int (*work)(struct ld_ctx *, struct qp_error *),
		    struct qp_error *err)
{
	char why[512] = "";
	bool picked;
	double t0;
	int attempt, ret;

	for (attempt = 1;; attempt++) {
		t0 = now_us();
		ret = qp_proc__stop(&c->proc, err);
		if (ret)
			return ld_check_death(c, ret, err);
		picked = ld_so_pick(c, why, sizeof(why));
		if (now_us() - t0 > c->stats->pick_us)
			c->stats->pick_us = now_us() - t0;
		if (picked)
			break;
		qp_proc__resume(&c->proc, NULL);
		if (attempt >= SO_PICK_TRIES)
			return qp_seterr(err, QP_EBUSY,
					 "no thread of process %d may run dlopen now: %s (still after %d attempts)",
					 (int)c->pid, why, attempt);
		ret = ld_pause(c, err);
		if (ret)
			return ret;
	}
	qp_proc__release_others(&c->proc);
	ret = work(c, err);
	if (!ret && qp_proc__died_now(&c->proc))
		ret = qp_seterr(err, QP_EPROC, "process %d ended", (int)c->pid);
	ret = ld_check_death(c, ret, err);
	if (qp_proc__resume(&c->proc, ret ? NULL : err) && !ret)
		ret = ld_check_death(c, err->code, err);
	c->stats->held_us += now_us() - t0;
	return ret;
}

/* dlerror() of the target, into @out. */
void ld_so_dlerror(struct ld_ctx *c, char *out, size_t size)
{
	uint64_t msg = 0;
	size_t i;

	snprintf(out, size, "no reason given");
	if (!c->so_dlerror || qp_proc__call(&c->proc, c->so_dlerror, NULL, 0, LD_SO_CALL_MS, &msg, NULL) ||
	    !msg)
		return;
	for (i = 0; i + 1 < size && i < LD_SO_ERRMSG; i++) {
		char ch;

		if (qp_proc__read(&c->proc, msg + i, &ch, 1, NULL) || !ch)
			break;
		out[i] = ch >= 0x20 && ch != 0x7f ? ch : '?';
	}
	out[i] = '\0';
}

int ld_so_dlclose(struct ld_ctx *c, uint64_t handle, struct qp_error *err)
{
	uint64_t r = 0;
	int ret = qp_proc__call(&c->proc, c->so_dlclose, &handle, 1, LD_SO_CALL_MS, &r, err);

	if (!ret && (int)r != 0) {
		char why[LD_SO_ERRMSG + 1];

		ld_so_dlerror(c, why, sizeof(why));
		ret = qp_seterr(err, -EIO, "dlclose failed in process %d: %s", (int)c->pid, why);
	}
	return ret;
}

int ld_so_close(struct ld_ctx *c, const struct qp_applied *a, struct qp_error *err)
{
	if (!a->so || !a->so->handle)
		return 0;
	if (!c->so_dlclose)
		return qp_seterr(err, QP_EUNSUPP, "process %d has no dlclose", (int)c->pid);
	return ld_so_dlclose(c, a->so->handle, err);
}
