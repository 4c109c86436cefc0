/* The main thread calls unrelated() every 20 ms and prints what it
 * returns.  On SIGUSR1 the worker calls step_a(), which blocks in
 * depth_b(); the worker's own frame holds a word that points into
 * unrelated() (a callback kept in a local), as stacks often do. */
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

long step_a(long x);
long unrelated(long x);

static volatile int go;

static void on_usr1(int sig)
{
	(void)sig;
	go = 1;
}

static void *worker(void *arg)
{
	volatile uintptr_t keep = (uintptr_t)unrelated + 4;

	(void)arg;
	while (!go)
		usleep(1000);
	printf("worker: calling step_a\n");
	printf("worker: step_a returned %ld\n", step_a((long)(keep & 1)));
	return NULL;
}

int main(void)
{
	pthread_t t;
	long i;

	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGUSR1, on_usr1);
	pthread_create(&t, NULL, worker, NULL);
	for (i = 0;; i++) {
		printf("main: unrelated(%ld)=%ld\n", i, unrelated(i));
		usleep(20000);
	}
}
