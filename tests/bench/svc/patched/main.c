/* A benchmark target: the probe thread (probe.c) and a main thread that
 * calls step() once a millisecond, printing its result once a second. */
#include <stdio.h>
#include <unistd.h>

int probe_start(void);
int step(int x);

int main(void)
{
	int i;

	setvbuf(stdout, NULL, _IOLBF, 0);
	probe_start();
	printf("ready\n");
	for (i = 0;; i++) {
		int r = step(i);

		if (i % 1000 == 0)
			printf("step=%d\n", r - i);
		usleep(1000);
	}
}
