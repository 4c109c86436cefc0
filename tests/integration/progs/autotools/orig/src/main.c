/* A program built by autoconf/automake: prints compute(3) every TICK_US. */
#include <config.h>
#include <stdio.h>
#ifdef HAVE_UNISTD_H
#include <unistd.h>
#endif
#include "calc.h"

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (;;) {
		printf("compute(3)=%d\n", compute(3));
		usleep(TICK_US);
	}
}
