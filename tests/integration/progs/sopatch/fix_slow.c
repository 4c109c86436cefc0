/* compute() made slow: threads are inside the library most of the time. */
#include <unistd.h>
#include <qpatch/so.h>

QPATCH_TARGET("soapp");

static int slow_compute(int x)
{
	usleep(50000);
	return x * 4;
}
QPATCH_REPLACE(compute, slow_compute);
