#include <stdio.h>
#include <unistd.h>

int scale(int x);

/* calls, so that handle() is long enough for the jump */
static int handled;

__attribute__((noipa)) int handle(int x)
{
	handled++;
	return x + 5;
}

int main(void)
{
	for (;;) {
		printf("cli handle(10)=%d scale(10)=%d\n", handle(10), scale(10));
		fflush(stdout);
		usleep(50000);
	}
}
