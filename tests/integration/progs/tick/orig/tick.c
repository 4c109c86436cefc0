#include <stdio.h>
#include <unistd.h>

static int ticks;

__attribute__((noinline)) int tick(int id)
{
	printf("thread %d: tick %d v1\n", id, ++ticks);
	usleep(200000);
	return ticks;
}
