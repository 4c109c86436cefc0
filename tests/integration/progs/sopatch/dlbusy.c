/* One thread stays inside dl_iterate_phdr (its callback sleeps), holding
 * the dynamic linker's lock; another sleeps in a system call. */
#define _GNU_SOURCE
#include <link.h>
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

__attribute__((noipa)) int compute(int x)
{
	return x * 2 + 1;
}

static int stay(struct dl_phdr_info *info, size_t size, void *arg)
{
	(void)info;
	(void)size;
	(void)arg;
	for (;;)
		sleep(100);
	return 1;
}

static void *idle(void *arg)
{
	(void)arg;
	for (;;)
		sleep(100);
	return NULL;
}

int main(void)
{
	pthread_t t;

	pthread_create(&t, NULL, idle, NULL);
	printf("ready %d\n", compute(1));
	fflush(stdout);
	dl_iterate_phdr(stay, NULL);
	return 0;
}
