#include <unistd.h>

long hold(long us)
{
	while (us > 0) { /* usleep takes at most a second's worth on some systems */
		usleep(us > 500000 ? 500000 : (useconds_t)us);
		us -= 500000;
	}
	return 1;
}
