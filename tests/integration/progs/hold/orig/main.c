/* The main thread sits in hold() for argv[1] microseconds first, then
 * calls it briefly every 20 ms; or, given argv[2], exits with that status. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

long hold(long us);

int main(int argc, char **argv)
{
	long r;

	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("ready\n");
	r = hold(argc > 1 ? atol(argv[1]) : 0);
	if (argc > 2)
		return atoi(argv[2]);
	for (;;) {
		printf("r=%ld\n", r);
		usleep(20000);
		r = hold(0);
	}
}
