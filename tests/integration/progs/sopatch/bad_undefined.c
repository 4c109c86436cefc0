/* needs a symbol nobody defines: dlopen (RTLD_NOW) refuses it */
#include <qpatch/so.h>
QPATCH_TARGET("soapp");
int no_such_symbol_anywhere(int);
static int f(int x) { return no_such_symbol_anywhere(x); }
QPATCH_REPLACE(compute, f);
