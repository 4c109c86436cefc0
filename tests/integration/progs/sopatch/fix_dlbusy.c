#include <qpatch/so.h>
QPATCH_TARGET("dlbusy");
static int f(int x) { return x; }
QPATCH_REPLACE(compute, f);
