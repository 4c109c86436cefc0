/* area() takes a struct box; this replacement a struct rect of the same
 * size. */
#include <qpatch/so.h>

QPATCH_TARGET("sotype");

struct rect {
	int w, h;
};

static int new_area(struct rect r)
{
	return r.w * r.h * 10;
}
QPATCH_REPLACE(area, new_area);
