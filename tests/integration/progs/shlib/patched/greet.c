#include <stdio.h>

static char buf[64];
static long greeted;      /* state kept in the library */
int greet_style = 1;      /* a global of the library, reached through the GOT */

const char *greet(long n)
{
	greeted++;
	snprintf(buf, sizeof(buf), "HELLO #%ld (style %d, total %ld)", n, greet_style, greeted);
	return buf;
}
