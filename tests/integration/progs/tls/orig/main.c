/* Thread-local state: every thread keeps its own counters; the main thread
 * prints its own, 20 times a second. */
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

long step(void);
long calls(void);
long peek(void);

static void *worker(void *arg)
{
	(void)arg;
	for (;;) {
		step();
		usleep(1000);
	}
	return NULL;
}

int main(void)
{
	pthread_t t;
	int i;

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (i = 0; i < 4; i++)
		pthread_create(&t, NULL, worker, NULL);
	for (;;) {
		long c = step();

		printf("counter=%ld calls=%ld peek=%ld\n", c, calls(), peek());
		usleep(50000);
	}
}
