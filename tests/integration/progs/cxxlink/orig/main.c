#include <stdio.h>
#include <unistd.h>

long compute(long x);

int main(void)
{
	long i;

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (i = 0;; i++) {
		printf("compute(%ld)=%ld\n", i, compute(i));
		usleep(20000);
	}
}
