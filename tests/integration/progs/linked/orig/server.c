#include <stdio.h>
#include <unistd.h>

int scale(int x);

/* calls, so that handle() is long enough for the jump */
static int handled;

__attribute__((noipa)) int handle(int x)
{
	handled++;
	return scale(x) + 1;
}

int main(void)
{
	for (;;) {
		printf("server handle(10)=%d\n", handle(10));
		fflush(stdout);
		usleep(50000);
	}
}
