#include <stdio.h>
#include <unistd.h>

int value(void)
{
	return 2;
}

int main(void)
{
	for (;;) {
		printf("%d\n", value());
		fflush(stdout);
		usleep(100000);
	}
}
