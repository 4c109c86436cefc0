/* A multi-threaded target for hand-written .so patches: workers call
 * compute() all the time; main prints what compute(), the two static
 * helper()s (a.c, b.c) and status() give, and its own static counter. */
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

int call_a(int x);
int call_b(int x);

static long counter; /* main's loop count: a .so reads it through QPATCH_SYM */
volatile int sink;

__attribute__((noipa)) int compute(int x)
{
	return x * 2;
}

__attribute__((noipa)) static long status(void)
{
	return -1;
}

static void *worker(void *arg)
{
	(void)arg;
	for (;;) {
		sink = compute(21);
		usleep(200);
	}
	return NULL;
}

int main(void)
{
	pthread_t t[3];
	int i;

	for (i = 0; i < 3; i++)
		pthread_create(&t[i], NULL, worker, NULL);
	for (;;) {
		long s;

		counter++;
		s = status();
		printf("compute=%d a=%d b=%d counter=%ld status=%ld\n", compute(21), call_a(1),
		       call_b(1), counter, s);
		fflush(stdout);
		usleep(20000);
	}
}
