#include "foo.h"

static long calls;

int scale(int v)
{
	calls++;
	return v * 2;
}
