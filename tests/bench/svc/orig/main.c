/* A benchmark target: a main thread that calls step() every 10 ms,
 * printing its result once a second, and with BENCH_PROBE=1 in its
 * environment the probe thread (probe.c).  A hundred probes on two CPUs
 * would be the load they measure, so a benchmark probes a few targets. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int probe_start(void);
int step(int x);

int main(void)
{
	int i;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (getenv("BENCH_PROBE"))
		probe_start();
	printf("ready\n");
	for (i = 0;; i++) {
		int r = step(i);

		if (i % 100 == 0)
			printf("step=%d\n", r - i);
		usleep(10000);
	}
}
