/* Three coroutines on malloc'd stacks, entered in turn every 20 ms by the
 * main thread: 1 (swapcontext) and 2 (sigsetjmp) call work() and print
 * its result, 3 (swapcontext) stays suspended in its own loop.
 * argv[1]: the coroutine SIGUSR1 parks inside work() (SIGUSR2 lets it
 * out); argv[2] "park": parked from the start.  HC_HEAP_MB: that many MiB
 * of random bytes on the heap in 1 KiB blocks, allocated first (the
 * search for the contexts reads all of it). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "co.h"

long work(int id);

volatile int park;
static int who;

static void body(void *arg)
{
	int id = (int)(long)arg;

	for (;;) {
		long r = work(id);

		printf("%d r=%ld\n", id, r);
		co_yield();
	}
}

static void idle(void *arg)
{
	(void)arg;
	for (;;)
		co_yield();
}

static void on_usr(int sig)
{
	park = sig == SIGUSR1 ? who : 0;
}

int main(int argc, char **argv)
{
	struct co *co[3];
	int i;

	setvbuf(stdout, NULL, _IOLBF, 0);
	who = argc > 1 ? atoi(argv[1]) : 1;
	park = argc > 2 && !strcmp(argv[2], "park") ? who : 0;
	signal(SIGUSR1, on_usr);
	signal(SIGUSR2, on_usr);
	if (getenv("HC_HEAP_MB")) {
		long n = atol(getenv("HC_HEAP_MB")) * 1024, j;
		unsigned long x = 0x9e3779b97f4a7c15ul;

		for (j = 0; j < n; j++) {
			unsigned long *b = malloc(1024);

			for (i = 0; i < 128; i++) {
				x ^= x << 13, x ^= x >> 7, x ^= x << 17;
				b[i] = x;
			}
		}
	}
	co[0] = co_new(CO_UCONTEXT, body, (void *)1L);
	co[1] = co_new(CO_SIGJMP, body, (void *)2L);
	co[2] = co_new(CO_UCONTEXT, idle, NULL);
	printf("ready\n");
	for (;;) {
		for (i = 0; i < 3; i++)
			co_enter(co[i]);
		usleep(20000);
	}
}
