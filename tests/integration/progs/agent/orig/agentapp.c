/*
 * A target for the in-process agent: it makes itself non-dumpable
 * (prctl(PR_SET_DUMPABLE, 0)), so a loader without CAP_SYS_PTRACE may not
 * trace it.  The main thread prints "result=R" (work(7)) 10 times a
 * second; three workers call work() in a loop; a control thread looks
 * every 10 ms in the directory argv[1] for a file that tells it what to
 * do, and removes it:
 *   inhold    the control thread calls hold() until DIR/release appears
 *   block     a new thread blocks every signal and sleeps until DIR/unblock
 *             appears
 *   exit      exit(0)
 * With "dumpable" as argv[2], it stays dumpable.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

long work(long x);
long hold(volatile int *flag, long x);

static const char *dir;
static volatile long sink;

static int exists(const char *name, int take)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (access(path, F_OK))
		return 0;
	if (take)
		unlink(path);
	return 1;
}

void wait_a_bit(volatile int *flag)
{
	if (exists("release", 1))
		*flag = 0;
	usleep(1000);
}

/* A sleep that a signal handler's EINTR does not cut short. */
static void pause_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static void *worker(void *arg)
{
	(void)arg;
	for (;;) {
		sink += work(7);
		pause_ms(1);
	}
	return NULL;
}

static void *blocker(void *arg)
{
	sigset_t all;

	(void)arg;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, NULL);
	printf("blocking\n");
	while (!exists("unblock", 1))
		pause_ms(10);
	printf("unblocked\n");
	return NULL;
}

static void *control(void *arg)
{
	static volatile int flag;
	pthread_t t;

	(void)arg;
	for (;;) {
		if (exists("inhold", 1)) {
			flag = 1;
			printf("in hold\n");
			hold(&flag, 1);
			printf("out of hold\n");
		}
		if (exists("block", 1))
			pthread_create(&t, NULL, blocker, NULL);
		if (exists("exit", 1))
			exit(0);
		pause_ms(10);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t t;
	int i;

	setvbuf(stdout, NULL, _IOLBF, 0);
	dir = argc > 1 ? argv[1] : ".";
	if (argc < 3 || strcmp(argv[2], "dumpable"))
		prctl(PR_SET_DUMPABLE, 0);
	printf("dumpable=%d\n", prctl(PR_GET_DUMPABLE));
	for (i = 0; i < 3; i++)
		pthread_create(&t, NULL, worker, NULL);
	pthread_create(&t, NULL, control, NULL);
	for (;;) {
		printf("result=%ld\n", work(7));
		pause_ms(100);
	}
}
