#include <stdio.h>
#include <unistd.h>

#include "foo.h"

int main(void)
{
	for (;;) {
		printf("scale(10)=%d offset()=%d\n", scale(10), offset());
		fflush(stdout);
		usleep(20000);
	}
}
