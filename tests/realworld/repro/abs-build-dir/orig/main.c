#include <stdio.h>
#include <unistd.h>

#include "value.h"

__attribute__((noipa)) int current(void)
{
	return value();
}

int main(void)
{
	for (;;) {
		printf("%d\n", current());
		fflush(stdout);
		usleep(100000);
	}
}
