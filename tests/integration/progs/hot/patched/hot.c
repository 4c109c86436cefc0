/* N threads call work() as fast as they can (or, with "idle" as second
 * argument, once a millisecond); the main thread prints what they compute
 * and how many calls they made, 10 times a second. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

long work(long x);

#define MAX_THREADS 512
static volatile long result[MAX_THREADS];
static volatile unsigned long calls[MAX_THREADS];

static int idle;
static volatile long spin;

static void *worker(void *arg)
{
	long id = (long)arg, k;

	for (;;) {
		result[id] = work(id);
		calls[id]++;
		/* other work between calls, so that a stop finds every thread
		 * outside work() now and then, as in a real server */
		for (k = 0; k < 100; k++)
			spin += k ^ id;
		if (idle)
			usleep(1000);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 4, i;
	pthread_t t;

	if (n < 1 || n > MAX_THREADS)
		return 2;
	idle = argc > 2 && !strcmp(argv[2], "idle");
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (i = 0; i < n; i++)
		pthread_create(&t, NULL, worker, (void *)i);
	for (;;) {
		unsigned long total = 0;

		usleep(100000);
		for (i = 0; i < n; i++)
			total += calls[i];
		printf("result=%ld last=%ld calls=%lu\n", result[0], result[n - 1], total);
	}
}
