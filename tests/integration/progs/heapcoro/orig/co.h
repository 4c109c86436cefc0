/* Coroutines whose stacks come from malloc (no mapping of their own, no
 * guard page).  CO_UCONTEXT ones are switched with swapcontext both ways;
 * CO_SIGJMP ones are started with makecontext/swapcontext and switched
 * with sigsetjmp/siglongjmp.  HC_STACK_KB sets the stack size (64 KiB:
 * inside [heap]; 512 KiB: malloc maps each on its own); HC_STATIC set:
 * 64 KiB stacks in a static array instead. */
#ifndef CO_H
#define CO_H

enum co_method { CO_UCONTEXT, CO_SIGJMP };

struct co;

struct co *co_new(enum co_method how, void (*fn)(void *), void *arg);
/* Run @co until it yields. */
void co_enter(struct co *co);
/* From inside a coroutine: back to whoever entered it. */
void co_yield(void);

#endif
