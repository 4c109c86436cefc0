#include <assert.h>

#include "calc.h"

long compute(long x)
{
	return x * 3 + 1;
}

/* Its assert holds its line number: the fix above moves it. */
long checked(long x)
{
	assert(x >= 0);
	return x % 7;
}
