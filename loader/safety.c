// SPDX-License-Identifier: MIT
/*
 * May the code change now?  No thread may be inside, or due to return
 * into, code being replaced (apply) or removed (undo): checked from each
 * thread's registers, one read of its used stack, and the libdw unwinder.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ld.h"

static const struct ld_range *ld_range_of(const struct ld_range *v, size_t n, uint64_t a)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (a >= v[i].lo && a < v[i].hi)
			return &v[i];
	return NULL;
}

/*
 * Conservative: any word on a thread's stack from @from up to the end of
 * its mapping (at most @limit bytes) that points into a range counts as a
 * return address into it.  A stale value can only delay, never let an
 * unsafe change through.  *@complete tells whether the scan reached the
 * end of the mapping.
 */
const struct ld_range *ld_stack_scan(struct ld_ctx *c, const struct qp_maps *maps, uint64_t from,
				     uint64_t limit, const struct ld_range *v, size_t n,
				     uint64_t *where, bool *complete)
{
	const struct qp_map *m = qp_maps__find(maps, from);
	const struct ld_range *hit = NULL;
	uint64_t sp = from & ~7ull, end, *buf;
	size_t cnt, i;

	*complete = false;
	*where = sp;
	if (!m)
		return v; /* not a stack we know: cannot tell */
	end = m->end - sp > limit ? sp + limit : m->end;
	cnt = (size_t)(end - sp) / 8;
	buf = malloc(cnt * 8 + 8);
	if (!buf || pread(c->proc.mem_fd, buf, cnt * 8, (off_t)sp) != (ssize_t)(cnt * 8)) {
		free(buf);
		return v;
	}
	for (i = 0; i < cnt && !hit; i++) {
		hit = ld_range_of(v, n, buf[i]);
		if (hit)
			*where = sp + i * 8;
	}
	free(buf);
	*complete = end == m->end;
	return hit;
}

struct ld_frames {
	const struct ld_range *v;   /* ranges looked for */
	size_t n;                   /* count of v */
	const struct ld_range *hit; /* range a frame returns into */
	int depth;                  /* that frame */
	uint64_t pc;                /* its pc */
};

static int ld_frame_cb(uint64_t pc, int depth, bool exact, void *arg)
{
	struct ld_frames *f = arg;

	(void)exact;
	if (!depth) /* the thread's own position: judged from its registers */
		return 0;
	f->hit = ld_range_of(f->v, f->n, pc);
	f->depth = depth;
	f->pc = pc;
	return f->hit ? 2 : 0;
}

/*
 * Is the code whose registers are @regs (a stopped thread, or a suspended
 * coroutine; @who names it, its stack is a mapping of @maps) inside one of
 * the ranges (past its entry), or due to return into one?  A stack that
 * holds no address in the ranges at all cannot return into them (one
 * read, cheap); otherwise the libdw unwinder tells real return addresses
 * from stale words, and where it cannot unwind further the rest of the
 * stack is judged conservatively.
 */
bool ld_context_in(struct ld_ctx *c, const struct qp_maps *maps,
		   const struct user_regs_struct *regs, const char *who,
		   const struct ld_range *v, size_t n, char *why, size_t why_size)
{
	struct ld_frames f = { .v = v, .n = n };
	const struct ld_range *r = ld_range_of(v, n, regs->rip);
	uint64_t sp = regs->rsp, where;
	int ret = QP_UNWIND_PARTIAL;
	bool complete;

	if (r && !(r->entry && regs->rip <= r->entry && regs->rip >= r->lo)) {
		snprintf(why, why_size, "%s is executing '%s'%s%s (pc 0x%llx)", who,
			 r->name, r->in ? " of " : "", r->in ? r->in : "",
			 (unsigned long long)regs->rip);
		return true;
	}
	if (!v[0].check_stack)
		return false;
	if (!ld_stack_scan(c, maps, sp, LD_STACK_PREFILTER, v, n, &where, &complete) && complete)
		return false;
	if (!c->uw && c->cfi_lazy) { /* not loaded yet: the caller loads it and asks again */
		c->cfi_wanted = true;
		snprintf(why, why_size, "%s: its stack must be unwound, and the call frame "
			 "information was not loaded", who);
		return true;
	}
	if (c->uw)
		ret = qp_unwind__thread(c->uw, regs, ld_frame_cb, &f, &sp);
	if (f.hit) {
		snprintf(why, why_size, "%s will return into '%s'%s%s (frame #%d, pc 0x%llx)",
			 who, f.hit->name, f.hit->in ? " of " : "", f.hit->in ? f.hit->in : "",
			 f.depth, (unsigned long long)f.pc);
		return true;
	}
	if (ret != QP_UNWIND_PARTIAL)
		return false;
	r = ld_stack_scan(c, maps, sp ? sp : regs->rsp, LD_STACK_PREFILTER, v, n, &where,
			  &complete);
	if (r)
		snprintf(why, why_size, "%s may return into '%s'%s%s (its stack holds an address in it at 0x%llx, beyond what could be unwound)",
			 who, r->name, r->in ? " of " : "", r->in ? r->in : "",
			 (unsigned long long)where);
	return r != NULL;
}

bool ld_thread_in(struct ld_ctx *c, const struct qp_thread *t,
			 const struct ld_range *v, size_t n, char *why, size_t why_size)
{
	char who[32];

	snprintf(who, sizeof(who), "thread %d", (int)t->tid);
	return ld_context_in(c, &c->maps, &t->regs, who, v, n, why, why_size);
}

/*
 * Does any thread run in, or may it return into, the mapping of applied
 * patch @a?  Its new functions are named (from the record), the rest of
 * the mapping is "patch ID".
 */
bool ld_region_busy(struct ld_ctx *c, const struct qp_applied *a, char *why, size_t why_size)
{
	char name[QP_ID_MAX + 16], in[QP_ID_MAX + 16];
	struct ld_range *v = calloc(a->rec.nfuncs + 2, sizeof(*v));
	bool busy = false;
	size_t i, n = 0;

	if (!v) {
		snprintf(why, why_size, "out of memory");
		return true;
	}
	snprintf(name, sizeof(name), "patch %s", a->rec.id);
	snprintf(in, sizeof(in), "patch '%s'", a->rec.id);
	for (i = 0; i < a->rec.nfuncs; i++) {
		const struct qp_record_func *f = &a->funcs[i];

		if (f->new_size)
			v[n++] = (struct ld_range){ .lo = f->new_addr, .hi = f->new_addr + f->new_size,
						    .name = f->name, .in = in, .check_stack = true };
	}
	v[n++] = (struct ld_range){ .lo = a->region, .hi = a->region + a->rec.region_size,
				    .name = name, .check_stack = true };
	if (a->so) /* a .so patch: its library is removed with it */
		v[n++] = (struct ld_range){ .lo = a->so->lib_lo, .hi = a->so->lib_hi, .name = a->so->path,
					    .in = in, .check_stack = true };
	for (i = 0; i < c->proc.nthreads && !busy; i++)
		busy = ld_thread_in(c, &c->proc.threads[i], v, n, why, why_size);
	if (!busy) /* and no suspended coroutine, judged conservatively */
		busy = ld_coro_busy(c, v, n, true, why, why_size);
	free(v);
	return busy;
}

/*
 * The code apply must find no thread in: each function being replaced,
 * and (unless allow_active) the cold parts of the old functions
 * (QP_R_BUSY: a thread there jumps back into the old body) and each
 * function's current replacement in every patch applied before — a
 * thread running an earlier patch's copy would go on running that old
 * fix.  A thread at the very start of an original
 * function is fine: it runs the jump next.  With allow_active, only the
 * bytes the jump overwrites count (threads inside finish the old code).
 */
int ld_busy_ranges(struct ld_ctx *c, struct qp_error *err)
{
	bool active = c->opts && c->opts->allow_active;
	/* no patch: a hand-written .so (so.c), which has no cold parts */
	size_t i, j, k, n = c->nfuncs, nrelas = c->patch ? qp_patch__rela_count(c->patch) : 0;

	for (i = 0; !active && i < c->napplied; i++)
		n += 2 * (size_t)c->applied[i].rec.nfuncs;
	for (i = 0; !active && i < nrelas; i++)
		n += qp_patch__rela(c->patch, i)->type == QP_R_BUSY;
	c->busy = calloc(n ? n : 1, sizeof(*c->busy));
	c->busy_in = calloc(c->napplied ? c->napplied : 1, sizeof(*c->busy_in));
	if (!c->busy || !c->busy_in)
		return qp_seterr(err, -ENOMEM, "out of memory");
	for (j = 0; j < c->nfuncs; j++) {
		const struct qp_record_func *f = &c->funcs[j].rec;

		c->busy[c->nbusy++] = (struct ld_range){
			.lo = active ? f->site + 1 : f->old_addr,
			.hi = active ? f->site + f->len : f->old_addr + f->old_size,
			/* with no jump, a thread at its start would run the old code */
			.entry = active || !f->len ? 0 : f->site, .name = f->name,
			.check_stack = !active };
	}
	/* the old functions' cold parts: their jumps lead back into the old bodies */
	for (i = 0; !active && i < nrelas; i++) {
		const struct qp_rela *r = qp_patch__rela(c->patch, i);
		const struct qp_sym *part;

		if (r->type != QP_R_BUSY)
			continue;
		part = qp_patch__src_sym(c->patch, r->sym);
		c->busy[c->nbusy++] = (struct ld_range){
			.lo = c->symaddr[r->sym], .hi = c->symaddr[r->sym] + part->size,
			.name = part->name, .check_stack = true };
	}
	for (i = 0; !active && i < c->napplied; i++) {
		const struct qp_applied *a = &c->applied[i];

		snprintf(c->busy_in[i], sizeof(c->busy_in[i]), "patch '%s'", a->rec.id);
		for (k = 0; a->rec.state == QP_REC_APPLIED && k < a->rec.nfuncs; k++)
			for (j = 0; j < c->nfuncs; j++) {
				if (a->funcs[k].old_addr != c->funcs[j].rec.old_addr)
					continue;
				if (a->funcs[k].new_size)
					c->busy[c->nbusy++] = (struct ld_range){
						.lo = a->funcs[k].new_addr,
						.hi = a->funcs[k].new_addr + a->funcs[k].new_size,
						.name = c->funcs[j].rec.name, .in = c->busy_in[i],
						.check_stack = true };
				/* a .so patch's new code is its library, behind the stub */
				if (a->so)
					c->busy[c->nbusy++] = (struct ld_range){
						.lo = a->so->lib_lo, .hi = a->so->lib_hi,
						.name = c->funcs[j].rec.name, .in = c->busy_in[i],
						.check_stack = true };
			}
	}
	return 0;
}

bool ld_apply_busy(struct ld_ctx *c, char *why, size_t size)
{
	size_t i;

	for (i = 0; i < c->proc.nthreads; i++)
		if (ld_thread_in(c, &c->proc.threads[i], c->busy, c->nbusy, why, size)) {
			c->busy_thread = i;
			c->busy_coro = false;
			return true;
		}
	c->busy_coro = false;
	if (ld_sites_busy(c, why, size))
		return true;
	c->busy_coro = ld_coro_busy(c, c->busy, c->nbusy, false, why, size);
	return c->busy_coro;
}

struct ld_exit {
	const struct ld_range *v;   /* ranges to leave */
	size_t n;
	int last_in;                /* deepest frame found inside a range so far, -1 */
	int depth;                  /* frames seen */
	uint64_t ret[LD_EXIT_FRAMES]; /* each frame's return address (or exact pc) */
};

static int ld_exit_cb(uint64_t pc, int depth, bool exact, void *arg)
{
	struct ld_exit *x = arg;
	const struct ld_range *r;

	if (depth >= LD_EXIT_FRAMES)
		return 1;
	x->ret[depth] = exact ? pc : pc + 1;
	x->depth = depth + 1;
	r = ld_range_of(x->v, x->n, pc);
	/* a thread at the very start of a function is not inside it */
	if (r && !(depth == 0 && r->entry && pc <= r->entry && pc >= r->lo))
		x->last_in = depth;
	return 0;
}

uint64_t ld_exit_point(struct ld_ctx *c, const struct qp_thread *t)
{
	struct ld_exit x = { .v = c->busy, .n = c->nbusy, .last_in = -1 };
	uint64_t sp;

	ld_cfi_load(c); /* seldom: a thread found busy on its pc alone, 20 times */
	/* a walk that ends early still tells where the frames it saw leave;
	 * the busy check after the thread got there judges the rest */
	if (!c->uw || qp_unwind__thread(c->uw, &t->regs, ld_exit_cb, &x, &sp) < 0)
		return 0;
	if (x.last_in < 0 || x.last_in + 1 >= x.depth)
		return 0;
	return x.ret[x.last_in + 1];
}

/*
 * Give the unwinder the call frame information the applied patches carry
 * (a thread may be in a call made by patch code), read from each one's
 * mapping.  Without it, frames of patch code end the unwinding and the
 * rest of that stack is judged conservatively.
 */
void ld_cfi_lazy(struct ld_ctx *c, const struct qp_applied *v, size_t n)
{
	c->cfi_lazy = true;
	c->cfi_applied = v;
	c->cfi_napplied = n;
}

void ld_cfi_load(struct ld_ctx *c)
{
	if (c->uw || !c->cfi_lazy)
		return;
	c->cfi_lazy = false; /* once: without it, stacks are judged conservatively */
	if (!qp_unwind__new(c->pid, &c->uw, NULL))
		ld_patch_cfi(c, c->cfi_applied, c->cfi_napplied);
}

void ld_patch_cfi(struct ld_ctx *c, const struct qp_applied *v, size_t n)
{
	size_t i;

	for (i = 0; c->uw && !(c->opts && c->opts->no_patch_cfi) && i < n; i++) {
		uint8_t *buf;

		if (!v[i].rec.cfi_size || v[i].rec.cfi_size > LD_MAX_CFI)
			continue;
		buf = malloc(v[i].rec.cfi_size);
		if (buf && !qp_proc__read(&c->proc, v[i].rec.cfi_start, buf, v[i].rec.cfi_size, NULL))
			qp_unwind__add_cfi(c->uw, v[i].region, v[i].region + v[i].rec.region_size, buf,
					   v[i].rec.cfi_size, v[i].rec.cfi_start, NULL);
		free(buf);
	}
}
