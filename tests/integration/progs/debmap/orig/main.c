#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

__attribute__((noipa)) void fail(const char *file, int line)
{
	fprintf(stderr, "%s:%d: assertion failed\n", file, line);
	abort();
}

__attribute__((noipa)) int value(void)
{
	return 1;
}

/* Like redis's serverAssert(): only its __LINE__ moves when value() grows
 * a line, so it is "line only" and stays out of the patch. */
__attribute__((noipa)) int check(int x)
{
	if (x > 1000)
		fail(__FILE__, __LINE__);
	return x;
}

int main(void)
{
	for (;;) {
		printf("%d\n", check(value()));
		fflush(stdout);
		usleep(100000);
	}
}
