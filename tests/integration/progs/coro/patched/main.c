/* A QEMU-like coroutine program: the main thread enters a coroutine every
 * 20 ms; the coroutine calls work() and prints its result.  argv[1]:
 * microseconds the coroutine first stays suspended inside work().  SIGUSR1
 * parks it in work() again (until SIGUSR2).  Two more threads run
 * elsewhere; a second coroutine is suspended in its own loop.  CORO_HEAP_MB
 * set: that many MiB of heap in small blocks of random bytes (a process
 * with a large heap, for the time the loader's search takes). */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "coro.h"

long work(long n);

volatile int parked;
static volatile long spins;

static void body(void *arg)
{
	(void)arg;
	for (;;) {
		long r = work(0);

		printf("r=%ld\n", r);
		coro_yield();
	}
}

static void idle(void *arg)
{
	(void)arg;
	for (;;)
		coro_yield();
}

static void *spin(void *arg)
{
	(void)arg;
	for (;;) {
		spins++;
		if (!(spins & 0xfffff))
			usleep(1000);
	}
	return NULL;
}

static void on_usr(int sig)
{
	parked = sig == SIGUSR1;
}

int main(int argc, char **argv)
{
	long park_us = argc > 1 ? atol(argv[1]) : 0;
	struct coro *co, *other;
	struct timespec t0, now;
	pthread_t th[2];

	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGUSR1, on_usr);
	signal(SIGUSR2, on_usr);
	parked = park_us > 0;
	if (getenv("CORO_HEAP_MB")) {
		long i, n = atol(getenv("CORO_HEAP_MB")) * 1024;
		unsigned long x = 88172645463325252ul;

		for (i = 0; i < n; i++) { /* 1 KiB blocks, kept */
			unsigned long *b = malloc(1024);
			int j;

			for (j = 0; j < 128; j++) {
				x ^= x << 13, x ^= x >> 7, x ^= x << 17;
				b[j] = x;
			}
		}
	}
	pthread_create(&th[0], NULL, spin, NULL);
	pthread_create(&th[1], NULL, spin, NULL);
	co = coro_new(body, NULL);
	other = coro_new(idle, NULL);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	printf("ready\n");
	for (;;) {
		coro_enter(co);
		coro_enter(other);
		usleep(20000);
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (park_us > 0 && (now.tv_sec - t0.tv_sec) * 1000000L +
				   (now.tv_nsec - t0.tv_nsec) / 1000 > park_us) {
			parked = 0;
			park_us = 0;
		}
	}
}
