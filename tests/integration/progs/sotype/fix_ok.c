/* Replacements with the old functions' prototypes (typedefs and const do
 * not count): applied. */
#include <qpatch/so.h>

QPATCH_TARGET("sotype");

typedef long count_t;
struct box {
	int w, h;
};

static count_t new_scale(count_t n, const char *tag)
{
	return n * 3 + (tag[0] == 'x');
}
QPATCH_REPLACE(scale, new_scale);

static int new_area(struct box b)
{
	return b.w * b.h * 10;
}
QPATCH_REPLACE(area, new_area);
