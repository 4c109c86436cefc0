#include <assert.h>

#include "calc.h"

long compute(long x)
{
	/* the fix: a bigger constant, and a comment that moves every line
	 * below it down by two */
	return x * 3 + 1000000;
}

/* Its assert holds its line number: the fix above moves it. */
long checked(long x)
{
	assert(x >= 0);
	return x % 7;
}
