#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <ucontext.h>

#include "co.h"

struct co {
	enum co_method how;
	void (*fn)(void *);
	void *arg;
	char *stack;        /* malloc'd */
	int started;
	ucontext_t self;    /* CO_UCONTEXT: where it is suspended; CO_SIGJMP: its start */
	ucontext_t back;    /* whoever entered it with swapcontext */
	sigjmp_buf env;     /* CO_SIGJMP: where it is suspended */
	sigjmp_buf *caller; /* CO_SIGJMP: whoever entered it */
};

static struct co *running;

static char pool[3][64 << 10] __attribute__((aligned(16))); /* HC_STATIC stacks */
static int pooled;

static void co_start(unsigned lo, unsigned hi)
{
	struct co *co = (struct co *)(((uintptr_t)hi << 32) | lo);

	co->fn(co->arg); /* never returns */
	abort();
}

struct co *co_new(enum co_method how, void (*fn)(void *), void *arg)
{
	const char *kb = getenv("HC_STACK_KB");
	size_t size = (kb ? strtoul(kb, NULL, 10) : 64) << 10;
	struct co *co = calloc(1, sizeof(*co));

	if (getenv("HC_STATIC") && pooled < 3) { /* no malloc chunk around it */
		size = sizeof(pool[0]);
		co->stack = pool[pooled++];
	} else if (co) {
		co->stack = malloc(size);
	}
	if (!co || !co->stack)
		abort();
	co->how = how;
	co->fn = fn;
	co->arg = arg;
	getcontext(&co->self);
	co->self.uc_stack.ss_sp = co->stack;
	co->self.uc_stack.ss_size = size;
	co->self.uc_link = NULL;
	makecontext(&co->self, (void (*)(void))co_start, 2, (unsigned)(uintptr_t)co,
		    (unsigned)((uintptr_t)co >> 32));
	return co;
}

void co_enter(struct co *co)
{
	struct co *prev = running;
	sigjmp_buf here;

	running = co;
	if (co->how == CO_UCONTEXT) {
		swapcontext(&co->back, &co->self);
	} else if (!sigsetjmp(here, 0)) {
		co->caller = &here;
		if (co->started)
			siglongjmp(co->env, 1);
		co->started = 1;
		swapcontext(&co->back, &co->self);
	}
	running = prev;
}

void co_yield(void)
{
	struct co *co = running;

	if (co->how == CO_UCONTEXT)
		swapcontext(&co->self, &co->back);
	else if (!sigsetjmp(co->env, 0))
		siglongjmp(*co->caller, 1);
}
