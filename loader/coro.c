// SPDX-License-Identifier: MIT
/*
 * Suspended coroutines: stacks no thread runs on, which the busy check of
 * apply and undo must unwind too.  Found for the pattern of QEMU's
 * util/coroutine-ucontext.c (and of most C coroutine libraries built on
 * glibc): each coroutine stack is an anonymous mapping right above a
 * PROT_NONE guard page; a suspended coroutine's registers are in a glibc
 * jmp_buf (sigsetjmp) somewhere in the heap.
 *
 * glibc's x86-64 jmp_buf is eight words: rbx, rbp, r12, r13, r14, r15,
 * rsp, pc, where rbp, rsp and pc are mangled (PTR_MANGLE: xor with the
 * pointer guard, then rotate left by 0x11).  The pointer guard is the
 * second word of the 16 AT_RANDOM bytes (what glibc copies to
 * %fs:0x30 of every thread); it is read from there while the target runs
 * and checked against %fs:0x30 of a stopped thread in the window.
 *
 * ld_coro_find() runs while the target runs: it lists the candidate
 * stacks and scans the heap and the other writable private mappings for
 * eight words whose demangled rsp lies in a candidate stack and whose
 * demangled pc lies in executable code; it keeps their addresses.
 * ld_coro_busy(), in the window, reads those 64 bytes again, demangles
 * them with the guard of the stopped thread and unwinds each context
 * that still points into a stack no thread runs on.  Every word read from
 * the target is untrusted: reads are bounded, values only compared.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ld.h"

#define CORO_JB_WORDS 8          /* rbx rbp r12 r13 r14 r15 rsp pc */
#define CORO_JB_RSP 6
#define CORO_JB_PC 7
#define CORO_CHUNK (1u << 20)    /* bytes read at a time while scanning */
#define CORO_TCB_READ 16384      /* bytes at the top of a stack looked at for a thread's TCB */
#define CORO_GUARD_TCB_OFF 0x30  /* offsetof(tcbhead_t, pointer_guard) */
#define CORO_AT_RANDOM 25
#define CORO_ARENA_ALIGN (64ull << 20) /* glibc's HEAP_MAX_SIZE on 64-bit */

/* A stack no thread may be running on: rw anonymous, above a guard page. */
struct coro_stack {
	uint64_t lo, hi;   /* [lo, hi) the writable part */
	bool other;        /* not a coroutine's: a glibc thread's TCB sits at its top
			      (a thread stack, live or cached for the next thread),
			      or it is a glibc malloc heap (coro_is_arena) */
	bool thread;       /* the former */
	bool running;      /* window: a stopped thread's rsp is in it */
	bool seen;         /* window: a context was found in it */
	bool hint;         /* larger than LD_CORO_STACK_MAX, and its first
			      LD_STACK_PREFILTER bytes held a word pointing into a
			      patch mapping when searched, the target running */
};

struct ld_coro {
	struct qp_maps maps;       /* the map at the scan (stacks are judged in it) */
	uint64_t guard;            /* pointer guard the scan demangled with */
	bool guard_ok;             /* it could be read */
	struct coro_stack *stacks; /* candidate stacks, by address */
	size_t nstacks;
	uint64_t stacks_lo, stacks_hi; /* all of them lie in [lo, hi) */
	uint64_t *exec;            /* [lo, hi) pairs of executable mappings, by address */
	size_t nexec;
	uint64_t *ctx;             /* addresses of the jmp_bufs found */
	size_t nctx;
	bool failed;               /* the search failed: nothing is known */
};

static uint64_t coro_demangle(uint64_t v, uint64_t guard)
{
	return ((v >> 0x11) | (v << (64 - 0x11))) ^ guard;
}

static bool coro_anon(const struct qp_map *m)
{
	return !m->path[0] || !strncmp(m->path, "[anon:", 6);
}

/* The candidate stack holding @a, or NULL (binary search). */
static struct coro_stack *coro_stack_of(const struct ld_coro *k, uint64_t a)
{
	size_t lo = 0, hi = k->nstacks;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (a < k->stacks[mid].lo)
			hi = mid;
		else if (a >= k->stacks[mid].hi)
			lo = mid + 1;
		else
			return &k->stacks[mid];
	}
	return NULL;
}

static bool coro_is_exec(const struct ld_coro *k, uint64_t a)
{
	size_t lo = 0, hi = k->nexec;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (a < k->exec[2 * mid])
			hi = mid;
		else if (a >= k->exec[2 * mid + 1])
			lo = mid + 1;
		else
			return true;
	}
	return false;
}

/* glibc puts a thread's struct pthread at the top of its stack: its first
 * word (tcbhead_t.tcb) and third (.self) hold its own address. */
static bool coro_tcb_in(struct ld_ctx *c, uint64_t lo, uint64_t hi, uint64_t read)
{
	uint64_t from = hi - lo > read ? hi - read : lo;
	size_t n = (size_t)(hi - from) / 8, i;
	uint64_t *w = malloc(n * 8 + 8);
	bool found = false;

	if (!w || qp_proc__read(&c->proc, from, w, n * 8, NULL)) {
		free(w);
		return false;
	}
	for (i = 0; i + 2 < n && !found; i++)
		found = w[i] == from + i * 8 && w[i + 2] == w[i];
	free(w);
	return found;
}

/* The last page first, where glibc's struct pthread usually is: a
 * thread stack costs one page read, not four. */
static bool coro_has_tcb(struct ld_ctx *c, uint64_t lo, uint64_t hi)
{
	return coro_tcb_in(c, lo, hi, 4096) || coro_tcb_in(c, lo, hi, CORO_TCB_READ);
}

/*
 * A heap of a glibc malloc arena other than the main one also lies right
 * above a PROT_NONE range (the unused end of the heap below it): it starts
 * on a 64 MiB boundary (HEAP_MAX_SIZE) with its heap_info, whose third
 * and fourth words are its size (at most the writable part) and the size
 * made writable (all of it).
 */
static bool coro_is_arena(struct ld_ctx *c, uint64_t lo, uint64_t hi)
{
	uint64_t w[4];

	return !(lo & (CORO_ARENA_ALIGN - 1)) && !qp_proc__read(&c->proc, lo, w, sizeof(w), NULL) &&
	       w[2] <= hi - lo && w[3] == hi - lo;
}

/* The candidate stacks and executable ranges of the map. */
static int coro_layout(struct ld_ctx *c, struct ld_coro *k)
{
	const struct qp_maps *m = &k->maps;
	size_t i;

	k->stacks = calloc(m->n ? m->n : 1, sizeof(*k->stacks));
	k->exec = calloc(m->n ? 2 * m->n : 1, sizeof(*k->exec));
	if (!k->stacks || !k->exec)
		return -ENOMEM;
	for (i = 0; i < m->n; i++) {
		const struct qp_map *v = &m->v[i];

		if (v->perms[2] == 'x') {
			k->exec[2 * k->nexec] = v->start;
			k->exec[2 * k->nexec++ + 1] = v->end;
		}
		if (!i || strcmp(v->perms, "rw-p") || !coro_anon(v) ||
		    m->v[i - 1].end != v->start || strncmp(m->v[i - 1].perms, "---", 3))
			continue;
		k->stacks[k->nstacks++] = (struct coro_stack){
			.lo = v->start, .hi = v->end,
			.thread = coro_has_tcb(c, v->start, v->end) };
		k->stacks[k->nstacks - 1].other = k->stacks[k->nstacks - 1].thread ||
						  coro_is_arena(c, v->start, v->end);
	}
	if (k->nstacks) {
		k->stacks_lo = k->stacks[0].lo;
		k->stacks_hi = k->stacks[k->nstacks - 1].hi;
	}
	return 0;
}

/* The pointer guard: the second word of the AT_RANDOM bytes. */
static bool coro_guard(struct ld_ctx *c, uint64_t *guard)
{
	uint64_t auxv[2 * 64];
	char path[64];
	ssize_t n;
	size_t i;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/auxv", (int)c->pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, auxv, sizeof(auxv));
	close(fd);
	for (i = 0; n > 0 && i + 1 < (size_t)n / 8 && auxv[i]; i += 2)
		if (auxv[i] == CORO_AT_RANDOM)
			return !qp_proc__read(&c->proc, auxv[i + 1] + 8, guard, 8, NULL);
	return false;
}

static bool coro_match(const struct ld_coro *k, const uint64_t *w)
{
	uint64_t sp = coro_demangle(w[CORO_JB_RSP], k->guard);
	const struct coro_stack *s;

	if ((sp & 7) || sp < k->stacks_lo || sp >= k->stacks_hi) /* nearly every word */
		return false;
	s = coro_stack_of(k, sp);
	return s && !s->other && coro_is_exec(k, coro_demangle(w[CORO_JB_PC], k->guard));
}

/* Scan one mapping for jmp_bufs, in chunks that overlap by a jmp_buf. */
static int coro_scan_map(struct ld_ctx *c, struct ld_coro *k, const struct qp_map *m,
			 uint64_t *buf)
{
	const size_t tail = (CORO_JB_WORDS - 1) * 8;
	uint64_t at;

	for (at = m->start; at < m->end; at += CORO_CHUNK) {
		size_t len = m->end - at > CORO_CHUNK + tail ? CORO_CHUNK + tail : m->end - at;
		size_t n = len / 8, i;

		if (qp_proc__read(&c->proc, at, buf, len, NULL))
			continue; /* changed meanwhile: skipped */
		c->stats->coro_scanned += len;
		for (i = 0; i + CORO_JB_WORDS <= n && i * 8 < CORO_CHUNK; i++) {
			uint64_t *v;

			if (!coro_match(k, buf + i))
				continue;
			if (k->nctx >= LD_CORO_MAX_CTX)
				return 0;
			v = realloc(k->ctx, (k->nctx + 1) * sizeof(*v));
			if (!v)
				return -ENOMEM;
			k->ctx = v;
			k->ctx[k->nctx++] = at + i * 8;
		}
	}
	return 0;
}

/* Where contexts are looked for: the heap, the writable data of objects,
 * private anonymous mappings, coroutine stacks among them (a coroutine
 * that entered another keeps its own context on its stack); not the
 * stacks of threads, live or cached (their contexts point into
 * themselves). */
static bool coro_scanned_map(const struct ld_coro *k, const struct qp_map *m)
{
	const struct coro_stack *s = coro_stack_of(k, m->start);

	if (strcmp(m->perms, "rw-p") || (s && s->thread))
		return false;
	return coro_anon(m) || !strcmp(m->path, "[heap]") || m->path[0] == '/';
}

/* The heap first (where coroutine libraries allocate their contexts),
 * then the other mappings in address order, within LD_CORO_SCAN_TOTAL
 * bytes: what does not fit is skipped (counted). */
static int coro_scan(struct ld_ctx *c, struct ld_coro *k)
{
	uint64_t *buf = malloc(CORO_CHUNK + 64), left = LD_CORO_SCAN_TOTAL;
	int pass, ret = 0;
	size_t i;

	if (!buf)
		return -ENOMEM;
	for (pass = 0; pass < 2; pass++)
		for (i = 0; !ret && i < k->maps.n; i++) {
			struct qp_map m = k->maps.v[i];
			bool heap = !strcmp(m.path, "[heap]");

			if (heap != !pass || !coro_scanned_map(k, &m))
				continue;
			if ((m.end - m.start > LD_CORO_SCAN_MAP && !heap) || !left) {
				c->stats->coro_skipped++;
				continue;
			}
			if (m.end - m.start > left) { /* the rest is not looked at */
				m.end = m.start + left;
				c->stats->coro_skipped++;
			}
			left -= m.end - m.start;
			ret = coro_scan_map(c, k, &m, buf);
		}
	free(buf);
	return ret;
}

/*
 * Undo reads a stack whose context was not found word by word in the
 * window.  A large candidate (guest RAM right above another block's
 * trailing guard page; a stack the kernel merged with the mapping above
 * it) is read now instead, its first LD_STACK_PREFILTER bytes, for words
 * pointing into any patch mapping; the window reads it again only when
 * some did.
 */
static int coro_hints(struct ld_ctx *c, struct ld_coro *k)
{
	const struct ld_range *hit;
	struct ld_range *v = calloc(k->maps.n ? k->maps.n : 1, sizeof(*v));
	size_t i, n = 0;

	if (!v)
		return -ENOMEM;
	for (i = 0; i < k->maps.n; i++)
		if (strstr(k->maps.v[i].path, "/memfd:" QP_MEMFD_PREFIX) == k->maps.v[i].path)
			v[n++] = (struct ld_range){ .lo = k->maps.v[i].start, .hi = k->maps.v[i].end,
						    .name = "patch" };
	for (i = 0; n && i < k->nstacks; i++) {
		struct coro_stack *s = &k->stacks[i];
		uint64_t where;
		bool complete;

		if (s->other || s->hi - s->lo <= LD_CORO_STACK_MAX)
			continue;
		hit = ld_stack_scan(c, &k->maps, s->lo, LD_STACK_PREFILTER, v, n, &where, &complete);
		s->hint = hit != NULL; /* or the read failed: cannot tell */
	}
	free(v);
	return 0;
}

void ld_coro_free(struct ld_coro *k)
{
	if (!k)
		return;
	qp_maps__release(&k->maps);
	free(k->stacks);
	free(k->exec);
	free(k->ctx);
	free(k);
}

int ld_coro_find(struct ld_ctx *c, struct qp_error *err)
{
	struct ld_coro *k = calloc(1, sizeof(*k));
	double t0 = now_us();
	int ret;

	ld_coro_free(c->coro);
	c->coro = k;
	if (!k)
		return qp_seterr(err, -ENOMEM, "out of memory");
	c->stats->coro_stacks = 0;
	c->stats->coro_scanned = 0;
	c->stats->coro_skipped = 0;
	/* apply: the map read moments ago; undo looks after its change */
	ret = c->undo || !c->maps.n ? qp_maps__read(c->pid, &k->maps, err) :
				      qp_maps__copy(&c->maps, &k->maps, err);
	if (!ret)
		ret = coro_layout(c, k);
	for (size_t i = 0; !ret && i < k->nstacks; i++) /* coroutines' */
		c->stats->coro_stacks += !k->stacks[i].other;
	if (!ret && c->undo)
		ret = coro_hints(c, k);
	k->guard_ok = !ret && coro_guard(c, &k->guard);
	if (!ret && k->guard_ok && c->stats->coro_stacks)
		ret = coro_scan(c, k);
	c->stats->coro_contexts = k->nctx;
	c->stats->coro_scan_us = now_us() - t0;
	k->failed = ret != 0;
	if (ret == -ENOMEM)
		return qp_seterr(err, ret, "out of memory");
	return ret;
}

/* Window: mark the stacks a stopped thread runs on; false when the
 * guard the scan used is not the target's. */
static bool coro_window(struct ld_ctx *c, struct ld_coro *k)
{
	const struct qp_thread *t0 = &c->proc.threads[0];
	uint64_t guard;
	size_t i;

	for (i = 0; i < k->nstacks; i++) {
		k->stacks[i].running = false;
		k->stacks[i].seen = false;
	}
	for (i = 0; i < c->proc.nthreads; i++) {
		struct coro_stack *s = coro_stack_of(k, c->proc.threads[i].regs.rsp);

		if (s)
			s->running = true;
	}
	return k->guard_ok && t0->regs.fs_base &&
	       !qp_proc__read(&c->proc, t0->regs.fs_base + CORO_GUARD_TCB_OFF, &guard, 8, NULL) &&
	       guard == k->guard;
}

/* Registers of the context at @addr, if it still is one on a stack no
 * thread runs on. */
static struct coro_stack *coro_context(struct ld_ctx *c, struct ld_coro *k, uint64_t addr,
				       struct user_regs_struct *r)
{
	uint64_t w[CORO_JB_WORDS];
	struct coro_stack *s;

	if (qp_proc__read(&c->proc, addr, w, sizeof(w), NULL) || !coro_match(k, w))
		return NULL;
	s = coro_stack_of(k, coro_demangle(w[CORO_JB_RSP], k->guard));
	if (!s || s->running)
		return NULL;
	memset(r, 0, sizeof(*r));
	r->rbx = w[0];
	r->rbp = coro_demangle(w[1], k->guard);
	r->r12 = w[2];
	r->r13 = w[3];
	r->r14 = w[4];
	r->r15 = w[5];
	r->rsp = coro_demangle(w[CORO_JB_RSP], k->guard);
	r->rip = coro_demangle(w[CORO_JB_PC], k->guard);
	return s;
}

bool ld_coro_busy(struct ld_ctx *c, const struct ld_range *v, size_t n, bool whole,
		  char *why, size_t size)
{
	struct ld_coro *k = c->coro;
	char who[128];
	bool guard;
	size_t i;

	if (k && k->failed && whole) {
		snprintf(why, size, "its coroutine stacks could not be searched");
		return true;
	}
	if (!k || k->failed || !k->nstacks)
		return false;
	guard = coro_window(c, k);
	for (i = 0; guard && i < k->nctx; i++) {
		struct user_regs_struct r;
		struct coro_stack *s = coro_context(c, k, k->ctx[i], &r);

		if (!s)
			continue;
		s->seen = true;
		snprintf(who, sizeof(who), "a suspended coroutine (stack 0x%" PRIx64 "-0x%" PRIx64
			 ", context at 0x%" PRIx64 ")", s->lo, s->hi, k->ctx[i]);
		if (ld_context_in(c, &k->maps, &r, who, v, n, why, size))
			return true;
	}
	/* undo: a stack whose context was not found may hold return
	 * addresses into the mapping: kept if any word points into it */
	for (i = 0; whole && v[0].check_stack && i < k->nstacks; i++) {
		const struct coro_stack *s = &k->stacks[i];
		uint64_t where;
		const struct ld_range *hit;
		bool complete;

		if (s->running || s->seen || s->other ||
		    (s->hi - s->lo > LD_CORO_STACK_MAX && !s->hint))
			continue;
		hit = ld_stack_scan(c, &k->maps, s->lo, LD_STACK_PREFILTER, v, n, &where, &complete);
		if (hit) {
			snprintf(why, size, "a stack with no known context (0x%" PRIx64 "-0x%" PRIx64
				 ", a coroutine's?) holds an address in '%s'%s%s at 0x%" PRIx64,
				 s->lo, s->hi, hit->name, hit->in ? " of " : "",
				 hit->in ? hit->in : "", where);
			return true;
		}
	}
	return false;
}
