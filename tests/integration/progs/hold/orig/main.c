/* The main thread sits in hold() for argv[1] microseconds first, then
 * calls it briefly every 20 ms.  Given argv[2], the process exits with
 * that status after 1.5 s, from a signal handler that runs while the
 * thread is inside hold(). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/time.h>
#include <unistd.h>

long hold(long us);

static int exit_status;

static void leave(int sig)
{
	(void)sig;
	_exit(exit_status);
}

int main(int argc, char **argv)
{
	long r;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc > 2) {
		struct itimerval t = { .it_value = { 1, 500000 } };

		exit_status = atoi(argv[2]);
		signal(SIGALRM, leave);
		setitimer(ITIMER_REAL, &t, NULL);
	}
	printf("ready\n");
	r = hold(argc > 1 ? atol(argv[1]) : 0);
	for (;;) {
		printf("r=%ld\n", r);
		usleep(20000);
		r = hold(0);
	}
}
