#include <stdio.h>

long compute(long x);

int main(void)
{
	printf("tool (fixed): %ld\n", compute(1));
	return 0;
}
