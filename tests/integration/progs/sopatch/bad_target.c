#include <qpatch/so.h>
QPATCH_TARGET("not-soapp");
static int f(int x) { return x; }
QPATCH_REPLACE(compute, f);
