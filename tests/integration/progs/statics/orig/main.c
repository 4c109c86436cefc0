/* Two functions of one file each keep a function-scope static "count". */
#include <stdio.h>
#include <unistd.h>

long tick_a(void);
long tick_b(void);

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (;;) {
		long a = tick_a(), b = tick_b();

		printf("a=%ld b=%ld\n", a, b);
		usleep(20000);
	}
}
