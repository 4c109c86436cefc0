#include <config.h>
#include "calc.h"

int compute(int x)
{
	return x * 7 + 1000;
}
