/* Four threads, each with its own copy of the library's thread-local
 * counters: thread K adds K per step, and prints its own values every 50
 * steps: the counter lib_step() returns, the calls, the counter as
 * lib_count_get() reads it, and as peek() reads it. */
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

long lib_step(long by);
long lib_calls_get(void);
long lib_count_get(void);
long peek(void);

static void *worker(void *arg)
{
	long k = (long)arg;

	for (;;) {
		long c = lib_step(k), n = lib_calls_get(), r = lib_count_get(), p = peek();

		if (n % 50 == 0)
			printf("t=%ld count=%ld calls=%ld real=%ld peek=%ld\n", k, c, n, r, p);
		usleep(1000);
	}
	return NULL;
}

int main(void)
{
	pthread_t t;
	long k;

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (k = 1; k <= 4; k++)
		pthread_create(&t, NULL, worker, (void *)k);
	for (;;)
		pause();
}
