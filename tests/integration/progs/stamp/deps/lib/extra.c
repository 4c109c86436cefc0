/* An example of using the library; the build does not compile it. */
#include <stdio.h>

#include "foo.h"

int main(void)
{
	printf("%d\n", scale(1));
	return 0;
}
