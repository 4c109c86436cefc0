#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include "coro.h"

#define STACK_SIZE (256 * 1024)

struct coro {
	void (*entry)(void *);
	void *arg;
	void *stack;          /* guard page + stack */
	sigjmp_buf env;       /* where it is suspended */
	sigjmp_buf *caller;   /* who entered it */
	int done;
};

static __thread struct coro *current;

static char *first_stack; /* CORO_BIG=merged: the first coroutine's */

/* CORO_BIG set: the coroutines' contexts live inside one large (80 MiB)
 * anonymous mapping instead of the heap; "merged": that mapping lies
 * right above the first coroutine's stack, and the kernel shows the two
 * as one mapping. */
static void *coro_alloc(size_t size)
{
	static char *big, *next;
	long page = sysconf(_SC_PAGESIZE);
	int merged = getenv("CORO_BIG") && !strcmp(getenv("CORO_BIG"), "merged");

	if (!getenv("CORO_BIG"))
		return calloc(1, size);
	if (!big) {
		size_t below = merged ? page + STACK_SIZE : 0;

		big = mmap(NULL, below + (80u << 20), PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (big == MAP_FAILED)
			abort();
		if (merged) {
			first_stack = big;
			mprotect(big, page, PROT_NONE);
			big += below;
		}
		memset(big, 1, 80u << 20); /* touched: not merged away, not empty */
		next = big + (40u << 20);
	}
	next += (size + 63) & ~63ul;
	return memset(next - ((size + 63) & ~63ul), 0, size);
}

static void coro_trampoline(int lo, int hi)
{
	struct coro *co = (struct coro *)(((uintptr_t)(unsigned)hi << 32) | (unsigned)lo);
	sigjmp_buf *start = co->caller;

	/* first time: save our context and go back to coro_new */
	if (!sigsetjmp(co->env, 0))
		siglongjmp(*start, 1);
	co->entry(co->arg);
	co->done = 1;
	siglongjmp(*co->caller, 1);
}

struct coro *coro_new(void (*entry)(void *), void *arg)
{
	long page = sysconf(_SC_PAGESIZE);
	struct coro *co = coro_alloc(sizeof(*co));
	ucontext_t uc, old;
	sigjmp_buf start;

	co->entry = entry;
	co->arg = arg;
	co->stack = first_stack ? first_stack :
		    mmap(NULL, STACK_SIZE + page, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	first_stack = NULL;
	if (co->stack == MAP_FAILED)
		abort();
	mprotect(co->stack, page, PROT_NONE); /* the guard page */
	getcontext(&uc);
	uc.uc_link = &old;
	uc.uc_stack.ss_sp = (char *)co->stack + page;
	uc.uc_stack.ss_size = STACK_SIZE;
	makecontext(&uc, (void (*)(void))coro_trampoline, 2, (int)(uintptr_t)co,
		    (int)((uintptr_t)co >> 32));
	co->caller = &start;
	if (!sigsetjmp(start, 0))
		swapcontext(&old, &uc);
	return co;
}

int coro_enter(struct coro *co)
{
	sigjmp_buf here;
	struct coro *prev = current;

	if (co->done)
		return 0;
	co->caller = &here;
	current = co;
	if (!sigsetjmp(here, 0))
		siglongjmp(co->env, 1);
	current = prev;
	return !co->done;
}

void coro_yield(void)
{
	struct coro *co = current;

	if (!sigsetjmp(co->env, 0))
		siglongjmp(*co->caller, 1);
}
