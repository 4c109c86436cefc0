#include <stdio.h>

static const char *names[] = { "zero", "one", "two" };

void report(long n)
{
	printf("report %ld %s\n", n, names[n % 3]);
}
