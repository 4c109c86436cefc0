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
 *
 * Coroutine stacks allocated with malloc (in [heap], or a chunk malloc
 * mapped on its own) have no guard page: their contexts are recognised
 * by the context alone.  A jmp_buf whose demangled rsp lies in a searched
 * mapping and whose demangled pc lies right after a call instruction, or
 * a ucontext_t as glibc's getcontext/swapcontext leave it (its fpregs
 * pointer points into itself, at __fpregs_mem), whose rsp lies in a
 * searched mapping or a coroutine stack and whose rip lies after a call.
 * The stack of such a context is the uc_stack a ucontext_t was made with,
 * or the malloc chunk that holds its rsp, found by walking glibc's chunk
 * headers along the same read.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "ld.h"
#include "qpatch/elf.h"

#define CORO_JB_WORDS 8          /* rbx rbp r12 r13 r14 r15 rsp pc */
#define CORO_JB_RSP 6
#define CORO_JB_PC 7
#define CORO_CHUNK (1u << 20)    /* bytes read at a time while scanning */
#define CORO_TCB_READ 16384      /* bytes at the top of a stack looked at for a thread's TCB */
#define CORO_GUARD_TCB_OFF 0x30  /* offsetof(tcbhead_t, pointer_guard) */
#define CORO_AT_RANDOM 25
#define CORO_ARENA_ALIGN (64ull << 20) /* glibc's HEAP_MAX_SIZE on 64-bit */
/* glibc's x86-64 ucontext_t: uc_mcontext.gregs at byte 40, REG_* indexes */
#define CORO_UC_WORDS 29         /* up to and with uc_mcontext.fpregs */
#define CORO_UC_GREG(i) (5 + (i))
#define CORO_UC_R12 4
#define CORO_UC_RBP 10
#define CORO_UC_RBX 11
#define CORO_UC_RSP 15
#define CORO_UC_RIP 16
#define CORO_UC_FPREGS 28        /* word of uc_mcontext.fpregs */
#define CORO_UC_FPMEM 424        /* offsetof(ucontext_t, __fpregs_mem) */
#define CORO_UC_SS_SP 2          /* word of uc_stack.ss_sp */
#define CORO_UC_SS_SIZE 4        /* word of uc_stack.ss_size */
#define CORO_TAIL (CORO_UC_WORDS - 1) /* words a chunk read overlaps the next */
#define CORO_MIN_CHUNK 2048      /* smaller malloc chunks are not taken for stacks */
#define CORO_MAX_CHUNKS (1u << 20) /* malloc chunks recorded at most */

enum coro_kind { CORO_JMPBUF, CORO_UCONTEXT };
enum coro_where { CORO_NONE, CORO_STACK, CORO_HEAP };

/* A context found: a jmp_buf or a ucontext_t. */
struct coro_ctx {
	uint64_t addr;     /* where it is */
	uint64_t sp;       /* its stack pointer when found */
	uint64_t ss_sp, ss_size; /* a ucontext_t's uc_stack (as makecontext had it) */
	enum coro_kind kind;
	long hs;           /* its stack in hstacks, or -1: a guard-page stack */
};

/* The stack of a context elsewhere than on a guard-page stack: its
 * uc_stack or a malloc chunk (exact), else from its rsp to at most
 * LD_CORO_STACK_MAX above. */
struct coro_hstack {
	uint64_t lo, hi;
	bool exact;        /* a uc_stack or a malloc chunk */
	bool running;      /* window: a stopped thread's rsp is in it (exact only) */
	char where[40];    /* for messages: "[heap]", "an anonymous mapping" */
};

/* glibc's chunk headers followed along the read of one mapping. */
struct coro_walk {
	uint64_t next;     /* the next chunk */
	uint64_t end;      /* end of the mapping */
	bool on;           /* still followed */
	bool main;         /* [heap]: main arena chunks; else mmap'd chunks */
};

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
	uint64_t *regions;         /* [lo, hi) pairs of the other mappings searched, by address */
	size_t nregions;
	uint64_t lo_all, hi_all;   /* every stack and region lies in [lo, hi) */
	uint64_t *chunks;          /* [lo, hi) pairs of malloc chunks (CORO_MIN_CHUNK or more) */
	size_t nchunks, chunks_cap;
	struct coro_hstack *hstacks; /* stacks of the contexts not on a guard-page stack */
	size_t nhstacks;
	struct coro_ctx *ctx;      /* the contexts found */
	size_t nctx, ctx_cap;
	bool ucontext;             /* an object imports makecontext: malloc'd stacks are
				      looked for (coro_uses_ucontext) */
	uint64_t cut;              /* bytes not searched: the limit was reached */
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

/* The index of the [lo, hi) pair of @v holding @a, or -1 (binary search). */
static long coro_pair_of(const uint64_t *v, size_t n, uint64_t a)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (a < v[2 * mid])
			hi = mid;
		else if (a >= v[2 * mid + 1])
			lo = mid + 1;
		else
			return (long)mid;
	}
	return -1;
}

static bool coro_is_exec(const struct ld_coro *k, uint64_t a)
{
	return coro_pair_of(k->exec, k->nexec, a) >= 0;
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

/* Where a saved stack pointer lies: on a coroutine stack above a guard
 * page, elsewhere in memory the search reads (a malloc'd stack), or
 * nowhere a suspended coroutine's stack can be (a thread's stack). */
static enum coro_where coro_sp_where(const struct ld_coro *k, uint64_t sp)
{
	const struct coro_stack *s;

	if ((sp & 7) || sp < k->lo_all || sp >= k->hi_all) /* nearly every word */
		return CORO_NONE;
	s = coro_stack_of(k, sp);
	if (s && !s->other)
		return CORO_STACK;
	if (s && s->thread)
		return CORO_NONE;
	return coro_pair_of(k->regions, k->nregions, sp) >= 0 ? CORO_HEAP : CORO_NONE;
}

/* Bytes of the ModRM operand at @m (with SIB and displacement), of which
 * @avail are known. */
static size_t coro_modrm_len(const uint8_t *m, size_t avail)
{
	unsigned mod = m[0] >> 6, rm = m[0] & 7;
	size_t n = 1;

	if (mod == 3)
		return 1;
	if (rm == 4) {
		if (avail < 2)
			return 0;
		n++;
		if (mod == 0 && (m[1] & 7) == 5)
			n += 4;
	} else if (mod == 0 && rm == 5) {
		n += 4;
	}
	return n + (mod == 1 ? 1 : mod == 2 ? 4 : 0);
}

/* Is @pc right after a call instruction (rel32, or indirect through a
 * register or memory), as the return address a context saves is? */
static bool coro_after_call(struct ld_ctx *c, uint64_t pc)
{
	uint8_t b[8];
	size_t len;

	if (pc < sizeof(b) || qp_proc__read(&c->proc, pc - sizeof(b), b, sizeof(b), NULL))
		return false;
	if (b[3] == 0xe8)
		return true;
	for (len = 2; len <= 7; len++) {
		const uint8_t *p = b + sizeof(b) - len;

		if (p[0] == 0xff && ((p[1] >> 3) & 7) == 2 && coro_modrm_len(p + 1, len - 1) == len - 1)
			return true;
	}
	return false;
}

/* The registers of a context of @kind whose words are @w (at @addr). */
static void coro_regs(const struct ld_coro *k, enum coro_kind kind, const uint64_t *w,
		      struct user_regs_struct *r)
{
	memset(r, 0, sizeof(*r));
	if (kind == CORO_UCONTEXT) {
		r->r12 = w[CORO_UC_GREG(CORO_UC_R12)];
		r->r13 = w[CORO_UC_GREG(CORO_UC_R12 + 1)];
		r->r14 = w[CORO_UC_GREG(CORO_UC_R12 + 2)];
		r->r15 = w[CORO_UC_GREG(CORO_UC_R12 + 3)];
		r->rbp = w[CORO_UC_GREG(CORO_UC_RBP)];
		r->rbx = w[CORO_UC_GREG(CORO_UC_RBX)];
		r->rsp = w[CORO_UC_GREG(CORO_UC_RSP)];
		r->rip = w[CORO_UC_GREG(CORO_UC_RIP)];
		return;
	}
	r->rbx = w[0];
	r->rbp = coro_demangle(w[1], k->guard);
	r->r12 = w[2];
	r->r13 = w[3];
	r->r14 = w[4];
	r->r15 = w[5];
	r->rsp = coro_demangle(w[CORO_JB_RSP], k->guard);
	r->rip = coro_demangle(w[CORO_JB_PC], k->guard);
}

/*
 * Is @w (at @addr) a saved context of @kind?  A jmp_buf on a guard-page
 * stack needs a pc in executable code (as before); one elsewhere, and any
 * ucontext_t, a pc right after a call (looked at when @call).
 */
static enum coro_where coro_check(struct ld_ctx *c, const struct ld_coro *k, enum coro_kind kind,
				  const uint64_t *w, uint64_t addr, bool call,
				  struct user_regs_struct *r)
{
	enum coro_where where;

	if (kind == CORO_UCONTEXT && w[CORO_UC_FPREGS] != addr + CORO_UC_FPMEM)
		return CORO_NONE;
	coro_regs(k, kind, w, r);
	where = coro_sp_where(k, r->rsp);
	if (where == CORO_NONE || !coro_is_exec(k, r->rip))
		return CORO_NONE;
	if (call && (kind == CORO_UCONTEXT || where == CORO_HEAP) && !coro_after_call(c, r->rip))
		return CORO_NONE;
	return where;
}

static int coro_add(struct ld_coro *k, uint64_t addr, const uint64_t *w, uint64_t sp,
		    enum coro_kind kind, enum coro_where where)
{
	struct coro_ctx *v;

	if (k->nctx >= LD_CORO_MAX_CTX)
		return 0;
	if (k->nctx == k->ctx_cap) {
		v = realloc(k->ctx, (k->ctx_cap ? 2 * k->ctx_cap : 8) * sizeof(*v));
		if (!v)
			return -ENOMEM;
		k->ctx = v;
		k->ctx_cap = k->ctx_cap ? 2 * k->ctx_cap : 8;
	}
	k->ctx[k->nctx++] = (struct coro_ctx){ .addr = addr, .sp = sp, .kind = kind,
					       .hs = where == CORO_HEAP ? 0 : -1 };
	if (kind == CORO_UCONTEXT) {
		k->ctx[k->nctx - 1].ss_sp = w[CORO_UC_SS_SP];
		k->ctx[k->nctx - 1].ss_size = w[CORO_UC_SS_SIZE];
	}
	return 0;
}

/* A chunk header of glibc malloc as the walk expects it there. */
static bool coro_chunk_ok(const struct coro_walk *wk, uint64_t head, uint64_t prev)
{
	uint64_t size = head & ~7ull;

	if (size < 32 || (size & 15) || size > wk->end - wk->next)
		return false;
	if (wk->main) /* neither IS_MMAPPED nor NON_MAIN_ARENA */
		return !(head & 6);
	return (head & 2) && !(size & 4095) && prev < 4096; /* mmap'd, its offset */
}

/* Follow the chunk headers that lie in @buf (read at @at, @n words);
 * record the large chunks. */
static int coro_walk(struct ld_coro *k, struct coro_walk *wk, const uint64_t *buf, uint64_t at,
		     size_t n)
{
	while (wk->on && wk->next + 16 <= wk->end && wk->next + 16 <= at + n * 8) {
		const uint64_t *h;
		uint64_t size;

		if (wk->next < at) { /* a read was skipped */
			wk->on = false;
			break;
		}
		h = buf + (wk->next - at) / 8;
		size = h[1] & ~7ull;
		if (!coro_chunk_ok(wk, h[1], h[0])) { /* not glibc's chunks */
			wk->on = false;
			break;
		}
		if (size >= CORO_MIN_CHUNK) {
			if (k->nchunks >= CORO_MAX_CHUNKS) {
				wk->on = false;
				break;
			}
			if (k->nchunks == k->chunks_cap) {
				size_t cap = k->chunks_cap ? 2 * k->chunks_cap : 64;
				uint64_t *v = realloc(k->chunks, 2 * cap * sizeof(*v));

				if (!v)
					return -ENOMEM;
				k->chunks = v;
				k->chunks_cap = cap;
			}
			k->chunks[2 * k->nchunks] = wk->next + 16;
			k->chunks[2 * k->nchunks++ + 1] = wk->next + size;
		}
		wk->next += size;
	}
	return 0;
}

/* Read target memory, in one system call when process_vm_readv can. */
static int coro_read(struct ld_ctx *c, uint64_t addr, void *buf, size_t len)
{
	struct iovec local = { .iov_base = buf, .iov_len = len };
	struct iovec remote = { .iov_base = (void *)(uintptr_t)addr, .iov_len = len };

	return qp_proc__readv(&c->proc, &remote, &local, 1, NULL);
}

/* Scan one mapping for contexts, in chunks that overlap by a context. */
static int coro_scan_map(struct ld_ctx *c, struct ld_coro *k, const struct qp_map *m,
			 uint64_t *buf)
{
	const size_t tail = CORO_TAIL * 8;
	struct coro_walk wk = { .next = m->start, .end = m->end, .main = !strcmp(m->path, "[heap]") };
	struct user_regs_struct r;
	uint64_t at;
	int ret = 0;

	wk.on = wk.main || coro_anon(m);
	for (at = m->start; !ret && at < m->end; at += CORO_CHUNK) {
		size_t len = m->end - at > CORO_CHUNK + tail ? CORO_CHUNK + tail : m->end - at;
		size_t n = len / 8, end = n < CORO_CHUNK / 8 ? n : CORO_CHUNK / 8, i;
		const uint64_t lo = k->lo_all, span = k->hi_all - k->lo_all, guard = k->guard;

		if (coro_read(c, at, buf, len))
			continue; /* changed meanwhile: skipped */
		memset(buf + n, 0, CORO_UC_WORDS * 8); /* words past the end read as 0 */
		c->stats->coro_scanned += len;
		ret = coro_walk(k, &wk, buf, at, n);
		/* the first pass: two compares per word, nearly every word fails both */
		for (i = 0; !ret && i < end; i++) {
			const uint64_t *w = buf + i;
			uint64_t a = at + i * 8, sp;
			enum coro_where where;

			if (w[CORO_UC_FPREGS] == a + CORO_UC_FPMEM) {
				where = i + CORO_UC_WORDS <= n ?
					coro_check(c, k, CORO_UCONTEXT, w, a, true, &r) : CORO_NONE;
				if (where != CORO_NONE)
					ret = coro_add(k, a, w, r.rsp, CORO_UCONTEXT, where);
				continue;
			}
			sp = coro_demangle(w[CORO_JB_RSP], guard);
			if (sp - lo >= span || (sp & 7) || !k->guard_ok || i + CORO_JB_WORDS > n)
				continue;
			where = coro_check(c, k, CORO_JMPBUF, w, a, true, &r);
			if (where != CORO_NONE)
				ret = coro_add(k, a, w, r.rsp, CORO_JMPBUF, where);
		}
	}
	return ret;
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

/*
 * Whether the process may make coroutines on stacks of its own (malloc'd,
 * static): some object other than libc imports makecontext (every glibc
 * ucontext coroutine is made with it, QEMU's sigsetjmp ones included), or
 * the program is static, or an object cannot be read (both: assumed so).
 * Without it, only the stacks above a guard page are looked for, and a
 * process that has none pays for no search: a large heap (a database) is
 * then not read at every apply, nor does its size make undo keep mappings.
 */
static bool coro_uses_ucontext(struct ld_ctx *c, const struct ld_coro *k)
{
	static const char *const names[] = { "makecontext" };
	const char *last = "";
	size_t i;

	for (i = 0; i < k->maps.n; i++) {
		const struct qp_map *m = &k->maps.v[i];
		const char *base = strrchr(m->path, '/');
		char path[600];
		bool found;
		int fd, ret;

		if (m->offset || m->path[0] != '/' || !strcmp(m->path, last) ||
		    !strncmp(m->path, "/memfd:", 7))
			continue;
		last = m->path;
		base = base ? base + 1 : m->path;
		if (!strncmp(base, "libc.so", 7) || !strncmp(base, "libc-", 5))
			continue; /* defines it */
		ld_map_file(c->pid, m, path, sizeof(path));
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return true;
		ret = qp_elf_fd_dynstr_has(fd, names, sizeof(names) / sizeof(names[0]), &found);
		close(fd);
		if (ret == -ENOENT && m->start == k->maps.v[0].start)
			return true; /* a static program */
		if (found || (ret && ret != -ENOENT))
			return true;
	}
	return false;
}

/* The mappings a malloc'd coroutine stack may be in: those searched that
 * are not coroutine stacks above a guard page (those are k->stacks). */
static int coro_regions(struct ld_coro *k)
{
	size_t i;

	k->regions = calloc(k->maps.n ? 2 * k->maps.n : 1, sizeof(*k->regions));
	if (!k->regions)
		return -ENOMEM;
	for (i = 0; i < k->maps.n; i++) {
		const struct qp_map *m = &k->maps.v[i];
		const struct coro_stack *s = coro_stack_of(k, m->start);

		if (!k->ucontext || !coro_scanned_map(k, m) || (s && !s->other))
			continue;
		k->regions[2 * k->nregions] = m->start;
		k->regions[2 * k->nregions++ + 1] = m->end;
	}
	k->lo_all = k->nregions ? k->regions[0] : UINT64_MAX;
	k->hi_all = k->nregions ? k->regions[2 * k->nregions - 1] : 0;
	if (k->nstacks && k->stacks_lo < k->lo_all)
		k->lo_all = k->stacks_lo;
	if (k->nstacks && k->stacks_hi > k->hi_all)
		k->hi_all = k->stacks_hi;
	if (k->hi_all < k->lo_all) /* nothing: no word passes */
		k->hi_all = k->lo_all;
	return 0;
}

/* The heap first (where coroutine libraries allocate their contexts),
 * then the other mappings in address order, within the limit: what does
 * not fit is skipped (counted). */
static int coro_scan(struct ld_ctx *c, struct ld_coro *k)
{
	uint64_t *buf = malloc(CORO_CHUNK + 16 * CORO_UC_WORDS), left = LD_CORO_SCAN_TOTAL;
	int pass, ret = 0;
	size_t i;

	if (c->opts && c->opts->coro_limit)
		left = c->opts->coro_limit;
	c->stats->coro_limit = left;
	if (!buf)
		return -ENOMEM;
	for (pass = 0; pass < 2; pass++)
		for (i = 0; !ret && i < k->maps.n; i++) {
			struct qp_map m = k->maps.v[i];
			bool heap = !strcmp(m.path, "[heap]");

			if (heap != !pass || !coro_scanned_map(k, &m))
				continue;
			if (m.end - m.start > LD_CORO_SCAN_MAP && !heap) {
				c->stats->coro_skipped++;
				continue;
			}
			if (m.end - m.start > left) { /* the rest is not looked at */
				k->cut += m.end - m.start - left;
				m.end = m.start + left;
				c->stats->coro_skipped++;
			}
			left -= m.end - m.start;
			if (m.end > m.start)
				ret = coro_scan_map(c, k, &m, buf);
		}
	free(buf);
	c->stats->coro_cut = k->cut;
	return ret;
}

static int coro_cmp_pair(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* The stacks of the contexts found elsewhere than on a guard-page stack:
 * a ucontext_t's uc_stack when it holds its rsp (what makecontext was
 * given), else the malloc chunk that holds their rsp, else from there up
 * to at most LD_CORO_STACK_MAX within its mapping. */
static int coro_heap_stacks(struct ld_coro *k)
{
	size_t i, j;

	if (k->nchunks)
		qsort(k->chunks, k->nchunks, 16, coro_cmp_pair);
	k->hstacks = calloc(k->nctx ? k->nctx : 1, sizeof(*k->hstacks));
	if (!k->hstacks)
		return -ENOMEM;
	for (i = 0; i < k->nctx; i++) {
		struct coro_ctx *x = &k->ctx[i];
		long ch = coro_pair_of(k->chunks, k->nchunks, x->sp);
		long rg = coro_pair_of(k->regions, k->nregions, x->sp);
		bool uc = x->ss_size && x->ss_size <= LD_CORO_SCAN_MAP && x->sp >= x->ss_sp &&
			  x->sp - x->ss_sp < x->ss_size;
		struct coro_hstack h = { .exact = uc || ch >= 0 };
		const struct qp_map *m = NULL;

		if (x->hs < 0)
			continue;
		for (j = 0; j < k->maps.n && !m; j++)
			if (k->maps.v[j].start == (rg >= 0 ? k->regions[2 * rg] : 0))
				m = &k->maps.v[j];
		if (!m) { /* cannot be: found in a region */
			x->hs = -1;
			continue;
		}
		if (uc) {
			h.lo = x->ss_sp;
			h.hi = x->ss_sp + x->ss_size;
		} else if (h.exact) {
			h.lo = k->chunks[2 * ch];
			h.hi = k->chunks[2 * ch + 1];
		} else {
			h.lo = x->sp;
			h.hi = m->end - x->sp > LD_CORO_STACK_MAX ? x->sp + LD_CORO_STACK_MAX : m->end;
		}
		snprintf(h.where, sizeof(h.where), "%s", m->path[0] == '[' ? m->path :
			 m->path[0] ? "the data of an object" : "an anonymous mapping");
		for (j = 0; j < k->nhstacks; j++)
			if (k->hstacks[j].exact && h.exact && k->hstacks[j].lo == h.lo &&
			    k->hstacks[j].hi == h.hi)
				break;
		if (j == k->nhstacks)
			k->hstacks[k->nhstacks++] = h;
		x->hs = (long)j;
	}
	return 0;
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
	free(k->regions);
	free(k->chunks);
	free(k->hstacks);
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
	c->stats->coro_cut = 0;
	/* apply: the map read moments ago; undo looks after its change */
	ret = c->undo || !c->maps.n ? qp_maps__read(c->pid, &k->maps, err) :
				      qp_maps__copy(&c->maps, &k->maps, err);
	if (!ret)
		ret = coro_layout(c, k);
	for (size_t i = 0; !ret && i < k->nstacks; i++) /* coroutines' */
		c->stats->coro_stacks += !k->stacks[i].other;
	if (!ret && c->undo)
		ret = coro_hints(c, k);
	k->ucontext = !ret && coro_uses_ucontext(c, k);
	if (!ret)
		ret = coro_regions(k);
	k->guard_ok = !ret && coro_guard(c, &k->guard);
	/* nothing to look for without a coroutine stack or makecontext; without
	 * the guard: ucontext_t only */
	if (!ret && (k->ucontext || c->stats->coro_stacks))
		ret = coro_scan(c, k);
	if (!ret)
		ret = coro_heap_stacks(k);
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
	size_t i, j;

	for (i = 0; i < k->nstacks; i++) {
		k->stacks[i].running = false;
		k->stacks[i].seen = false;
	}
	for (j = 0; j < k->nhstacks; j++)
		k->hstacks[j].running = false;
	for (i = 0; i < c->proc.nthreads; i++) {
		uint64_t sp = c->proc.threads[i].regs.rsp;
		struct coro_stack *s = coro_stack_of(k, sp);

		if (s)
			s->running = true;
		for (j = 0; j < k->nhstacks; j++) /* not judged by the extent guessed */
			if (k->hstacks[j].exact && sp >= k->hstacks[j].lo && sp < k->hstacks[j].hi)
				k->hstacks[j].running = true;
	}
	return k->guard_ok && t0->regs.fs_base &&
	       !qp_proc__read(&c->proc, t0->regs.fs_base + CORO_GUARD_TCB_OFF, &guard, 8, NULL) &&
	       guard == k->guard;
}

/*
 * Registers of context @x, if it still is one on a stack no thread runs
 * on; @who names it and @stack is set to a map of its stack alone when it
 * is not a guard-page stack (the conservative read ends at its end).
 */
static bool coro_context(struct ld_ctx *c, struct ld_coro *k, const struct coro_ctx *x,
			 bool guard, struct user_regs_struct *r, char *who, size_t size,
			 struct qp_map *stack)
{
	uint64_t w[CORO_UC_WORDS];
	size_t len = (x->kind == CORO_UCONTEXT ? CORO_UC_WORDS : CORO_JB_WORDS) * 8;
	const char *what = x->kind == CORO_UCONTEXT ? "ucontext" : "context";
	enum coro_where where;

	if ((x->kind == CORO_JMPBUF && !guard) || qp_proc__read(&c->proc, x->addr, w, len, NULL))
		return false;
	where = coro_check(c, k, x->kind, w, x->addr, false, r);
	if (x->hs < 0) {
		struct coro_stack *s = coro_stack_of(k, r->rsp);

		if (where != CORO_STACK || !s || s->running)
			return false;
		s->seen = true;
		snprintf(who, size, "a suspended coroutine (stack 0x%" PRIx64 "-0x%" PRIx64
			 ", %s at 0x%" PRIx64 ")", s->lo, s->hi, what, x->addr);
		stack->start = 0; /* its own mapping */
		return true;
	}
	const struct coro_hstack *h = &k->hstacks[x->hs];

	if (where != CORO_HEAP || h->running)
		return false;
	if (h->exact) {
		if (r->rsp < h->lo || r->rsp >= h->hi) /* not that chunk's any more */
			return false;
		snprintf(who, size, "a suspended coroutine (stack 0x%" PRIx64 "-0x%" PRIx64
			 " in %s, %s at 0x%" PRIx64 ")", h->lo, h->hi, h->where, what, x->addr);
		*stack = (struct qp_map){ .start = h->lo, .end = h->hi, .perms = "rw-p" };
		return true;
	}
	/* guessed: from where its rsp is now */
	long rg = coro_pair_of(k->regions, k->nregions, r->rsp);

	if (rg < 0)
		return false;
	snprintf(who, size, "a suspended coroutine (stack at 0x%" PRIx64 " in %s, %s at 0x%"
		 PRIx64 ")", (uint64_t)r->rsp, h->where, what, x->addr);
	*stack = (struct qp_map){ .start = r->rsp, .perms = "rw-p",
				  .end = k->regions[2 * rg + 1] - r->rsp > LD_CORO_STACK_MAX ?
					 r->rsp + LD_CORO_STACK_MAX : k->regions[2 * rg + 1] };
	return true;
}

bool ld_coro_busy(struct ld_ctx *c, const struct ld_range *v, size_t n, bool whole,
		  char *why, size_t size)
{
	struct ld_coro *k = c->coro;
	char who[160];
	bool guard;
	size_t i;

	if (k && k->failed && whole) {
		snprintf(why, size, "its coroutine stacks could not be searched");
		return true;
	}
	if (k && !k->failed && k->cut && whole && v[0].check_stack) {
		snprintf(why, size, "the search for suspended coroutines stopped at its limit of "
			 "%" PRIu64 " MiB (%.1f MiB of the heap and other mappings not searched)",
			 c->stats->coro_limit >> 20, (double)k->cut / (1 << 20));
		return true;
	}
	if (!k || k->failed || (!k->nctx && !k->nstacks)) /* nothing to judge: no read */
		return false;
	guard = coro_window(c, k);
	for (i = 0; i < k->nctx; i++) {
		struct user_regs_struct r;
		struct qp_map stack;
		struct qp_maps one = { .v = &stack, .n = 1 };

		if (!coro_context(c, k, &k->ctx[i], guard, &r, who, sizeof(who), &stack))
			continue;
		if (ld_context_in(c, stack.start ? &one : &k->maps, &r, who, v, n, why, size))
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
