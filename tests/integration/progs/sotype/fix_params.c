/* scale() takes (long, char *); this replacement takes (int). */
#include <qpatch/so.h>

QPATCH_TARGET("sotype");

static long new_scale(int n)
{
	return n * 3L;
}
QPATCH_REPLACE(scale, new_scale);
