/* scale() returns long; this replacement returns int. */
#include <qpatch/so.h>

QPATCH_TARGET("sotype");

static int new_scale(long n, char *tag)
{
	return (int)n * 3 + (tag[0] == 'x');
}
QPATCH_REPLACE(scale, new_scale);
