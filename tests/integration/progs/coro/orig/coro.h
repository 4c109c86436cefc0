/* A coroutine library built the way QEMU's util/coroutine-ucontext.c is:
 * each coroutine has an mmap'd stack with a PROT_NONE guard page below
 * it, is started with makecontext/swapcontext and switched with
 * sigsetjmp/siglongjmp; its context (a sigjmp_buf) lives on the heap. */
#ifndef CORO_H
#define CORO_H

struct coro;

struct coro *coro_new(void (*entry)(void *), void *arg);
/* Run @co until it yields or ends; 1 while it can be entered again. */
int coro_enter(struct coro *co);
/* From inside a coroutine: back to whoever entered it. */
void coro_yield(void);

#endif
