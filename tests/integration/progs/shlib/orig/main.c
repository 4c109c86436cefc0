/* A program whose logic lives in a shared library. */
#include <stdio.h>
#include <unistd.h>

const char *greet(long n);

int main(void)
{
	long n;

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (n = 1;; n++) {
		printf("%ld %s\n", n, greet(n));
		usleep(20000);
	}
}
