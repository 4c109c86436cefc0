/* The fix changes the loop the program spends its life in: a running
 * process never leaves it, so the fix goes in only as the program starts
 * (qpatch-load --exec).  Exits with status 3 after N rounds. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static void loop(int n)
{
	for (int i = 0; i < n; i++) {
		printf("round %d\n", i);
		fflush(stdout);
		usleep(20000);
	}
}

int main(int argc, char **argv)
{
	loop(argc > 1 ? atoi(argv[1]) : 1000000);
	return 3;
}
