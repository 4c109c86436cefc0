#include <stdio.h>
#include <unistd.h>

#include "calc.h"

int main(void)
{
	long i;

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (i = 0;; i++) {
		printf("compute(%ld)=%ld checked=%ld\n", i, compute(i), checked(i));
		usleep(20000);
	}
}
