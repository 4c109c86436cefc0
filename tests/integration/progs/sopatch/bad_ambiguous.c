#include <qpatch/so.h>
QPATCH_TARGET("soapp");
static int f(int x) { return x; }
QPATCH_REPLACE(helper, f);
