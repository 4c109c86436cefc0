#include <stdio.h>
#include <unistd.h>

volatile int released; /* never set: depth_b() blocks for good */

long depth_b(long x)
{
	printf("worker: in depth_b\n");
	while (!released)
		pause();
	return x;
}
