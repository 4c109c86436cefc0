/* Threads that are practically always inside tick(): each calls it in a
 * loop, and tick() sleeps 200 ms before it returns.  argv[1] threads (1). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

int tick(int id);

static void *loop(void *arg)
{
	int id = (int)(long)arg;

	for (;;)
		tick(id);
	return NULL;
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 1, i;
	pthread_t t;

	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("ready\n");
	for (i = 1; i < n; i++)
		pthread_create(&t, NULL, loop, (void *)(long)i);
	loop(0);
}
