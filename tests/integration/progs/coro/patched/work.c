#include <stdio.h>

#include "coro.h"

extern volatile int parked;

/* Runs inside a coroutine: while parked is set, it stays suspended in
 * here, yielding each time it is entered. */
long work(long n)
{
	if (parked) {
		printf("parked\n");
		while (parked)
			coro_yield();
	}
	return n + 2;
}
