/* The hand-written fix: compute() triples, b.c's helper() goes through
 * the program's exported call_a(), status() reads main.c's static counter. */
#include <qpatch/so.h>

QPATCH_TARGET("soapp");

int call_a(int x); /* exported by the program (-rdynamic) */

static long *counter_p;
QPATCH_SYM(counter_p, "main.c", "counter");

static int new_compute(int x)
{
	return x * 3;
}
QPATCH_REPLACE(compute, new_compute);

static int new_helper(int x)
{
	return call_a(x) + 1000;
}
QPATCH_REPLACE_IN("b.c", helper, new_helper);

static long new_status(void)
{
	return *counter_p;
}
QPATCH_REPLACE(status, new_status);
