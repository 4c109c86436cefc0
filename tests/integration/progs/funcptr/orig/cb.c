#include <stdio.h>

/* A callback registered at start-up: the process holds step's address. */
int (*registered)(int);
/* calls, so that step() is long enough for the jump */
int steps;

__attribute__((noipa)) int step(int x)
{
	steps++;
	return x + 1;
}

__attribute__((noipa)) int apply(int (*f)(int), int x)
{
	return f(x);
}

void setup(void)
{
	registered = step;
}

__attribute__((noipa)) void report(int x)
{
	printf("step(%d)=%d registered=%d\n", x, apply(registered, x), registered == step);
	fflush(stdout);
}
