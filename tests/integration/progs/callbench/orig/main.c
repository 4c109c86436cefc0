/* Calls fn() in batches and prints the nanoseconds per call of each batch,
 * so that the cost of a call can be compared before and after a patch.
 * The time is the thread's CPU time: on a shared machine, the time it
 * waits for a CPU does not count. */
#include <stdio.h>
#include <time.h>

long fn(long x);

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

int main(void)
{
	volatile long sink = 0;
	long i;

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (;;) {
		double t0 = now_ns();

		for (i = 0; i < 20000000; i++)
			sink += fn(i);
		printf("ns_per_call=%.3f\n", (now_ns() - t0) / 20000000.0);
	}
}
