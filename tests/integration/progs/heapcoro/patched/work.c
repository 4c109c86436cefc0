#include <stdio.h>

#include "co.h"

extern volatile int park;

/* Runs inside coroutine @id: while park is @id it stays suspended in
 * here, yielding each time it is entered. */
long work(int id)
{
	if (park == id) {
		printf("parked %d\n", id);
		while (park == id)
			co_yield();
	}
	return 2;
}
