#include <stdio.h>

/* A callback registered at start-up: the process holds step's address. */
int (*registered)(int);
/* calls, so that step() is long enough for the jump */
int steps;

__attribute__((noipa)) int step(int x)
{
	steps++;
	return x + 2;
}

__attribute__((noipa)) int apply(int (*f)(int), int x)
{
	return f(x);
}

/* new: its address is taken by the new code */
__attribute__((noipa)) int twice(int x)
{
	return 2 * x;
}

void setup(void)
{
	registered = step;
}

/* The fixed report compares the registered callback with step and passes
 * step and a new function by address. */
__attribute__((noipa)) void report(int x)
{
	printf("step(%d)=%d registered=%d direct=%d twice=%d\n", x, apply(registered, x),
	       registered == step, apply(step, x), apply(twice, x));
	fflush(stdout);
}
