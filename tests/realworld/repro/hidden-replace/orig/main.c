#include <stdio.h>
#include <unistd.h>

__attribute__((visibility("hidden"))) int scale(int x);

int main(void)
{
	for (;;) {
		printf("%d\n", scale(2));
		fflush(stdout);
		usleep(100000);
	}
}
