/* Four threads start, then the main thread loads the plugin with dlopen
 * (so its TLS is dynamic, allocated per thread on first use); thread K adds
 * K per step to its own counter and prints its own values every 50 steps:
 * the counter plug_step() returns, the calls, and the counter as
 * plug_count_get() reads it. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static long (*step)(long);
static long (*calls)(void);
static long (*count)(void);
static volatile int loaded;

static void *worker(void *arg)
{
	long k = (long)arg;

	while (!loaded)
		usleep(1000);
	for (;;) {
		long c = step(k), n = calls(), r = count();

		if (n % 50 == 0)
			printf("t=%ld count=%ld calls=%ld real=%ld\n", k, c, n, r);
		usleep(1000);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t t;
	void *h;
	long k;

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (k = 1; k <= 4; k++)
		pthread_create(&t, NULL, worker, (void *)k);
	h = dlopen(argc > 1 ? argv[1] : "./libplug.so", RTLD_NOW);
	if (!h) {
		printf("dlopen: %s\n", dlerror());
		return 1;
	}
	step = (long (*)(long))dlsym(h, "plug_step");
	calls = (long (*)(void))dlsym(h, "plug_calls_get");
	count = (long (*)(void))dlsym(h, "plug_count_get");
	loaded = 1;
	for (;;)
		pause();
}
