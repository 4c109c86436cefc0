/* Calls work() directly and through a function pointer and prints both
 * results every 20 ms: with the call sites rewritten, the direct call
 * reaches the new code without the old function's jump. */
#include <stdio.h>
#include <unistd.h>

long work(long x);
long sum2(long x);
long (*volatile via_pointer)(long) = work;

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (;;) {
		printf("direct=%ld pointer=%ld sum=%ld\n", work(10), via_pointer(10), sum2(1));
		usleep(20000);
	}
}
