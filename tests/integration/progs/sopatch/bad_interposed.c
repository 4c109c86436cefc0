/* a global replacement named like the program's exported compute(): the
 * table's pointer is bound to the program's own function */
#include <qpatch/so.h>
QPATCH_TARGET("soapp");
int compute(int x) { return x * 5; }
QPATCH_REPLACE(compute, compute);
