#include "foo.h"

static long calls;

int offset(void)
{
	calls++;
	return OFFSET;
}
