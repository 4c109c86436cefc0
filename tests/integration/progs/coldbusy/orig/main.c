/*
 * compute()'s unlikely branch is moved by gcc into compute.cold
 * (.text.unlikely), entered and left by plain jumps.  A worker takes that
 * branch once and blocks in slow_path() while the file argv[1] exists: it
 * will return into compute.cold, and from there jump back into the body of
 * the compute() it started in.  The main thread prints compute(3).
 */
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

static const char *flag;

__attribute__((cold, noinline)) void slow_path(int v)
{
	fprintf(stderr, "slow path %d\n", v);
	while (access(flag, F_OK) == 0)
		usleep(10000);
}

__attribute__((noinline)) int compute(int x)
{
	int s = 0;

	for (int i = 0; i < 4; i++) {
		if (__builtin_expect(x < 0, 0)) {
			slow_path(x);
			s -= 5;
			continue;
		}
		s += i * x;
	}
	return s;
}

static void *worker(void *arg)
{
	(void)arg;
	printf("worker %d\n", compute(-1));
	fflush(stdout);
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t t;

	flag = argc > 1 ? argv[1] : "/nonexistent";
	pthread_create(&t, NULL, worker, NULL);
	for (;;) {
		printf("compute=%d\n", compute(3));
		fflush(stdout);
		usleep(20000);
	}
}
