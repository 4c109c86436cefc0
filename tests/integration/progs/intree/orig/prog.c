#include <stdio.h>
#include <unistd.h>

#include "rate.h"

__attribute__((noipa)) int fee(int amount)
{
	return amount * rate() / 100;
}

int main(void)
{
	for (;;) {
		printf("fee(1000)=%d\n", fee(1000));
		fflush(stdout);
		usleep(50000);
	}
}
