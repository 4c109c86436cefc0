#include <stdio.h>
#include <unistd.h>

int report(void);

int main(void)
{
	for (;;) {
		printf("%d\n", report());
		fflush(stdout);
		usleep(100000);
	}
}
