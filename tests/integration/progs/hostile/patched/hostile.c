/*
 * A target that misbehaves while it is patched, on request: the main
 * thread prints "result=R" (work()'s) 10 times a second; a control thread
 * looks every 10 ms in the directory DIR (argv[1]) for a file that tells
 * it what to do, and removes it:
 *   fork      fork(); the child (only the control thread in it) writes its
 *             pid to DIR/child.pid and prints "child result=R" to
 *             DIR/child.out 10 times a second
 *   exec      execve("/bin/sleep", 1000)
 *   inhold    the control thread calls hold() until DIR/release appears
 *   sighold   a SIGUSR1 handler (run in the control thread) calls hold()
 *             until DIR/release appears
 *   sigspin   the control thread calls hold() while the flag is set; a
 *             SIGUSR1 handler interrupts it there and spins (outside
 *             hold()) until DIR/release appears
 * Other arguments: "storm N": N threads create and join threads in a loop.
 * "forge KIND": before anything, the process plants a forged patch record
 * of its own (see forge()).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <sys/mman.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

long work(long x);
long hold(volatile int *flag, long x);

static const char *dir;
static volatile int holding, spinning;

void wait_a_bit(volatile int *flag)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/release", dir);
	if (!access(path, F_OK)) {
		*flag = 0;
		unlink(path);
	}
	usleep(1000);
}

static int take(const char *name)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (access(path, F_OK))
		return 0;
	unlink(path);
	return 1;
}

static void child_loop(void)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/child.pid", dir);
	f = fopen(path, "w");
	fprintf(f, "%d\n", (int)getpid());
	fclose(f);
	snprintf(path, sizeof(path), "%s/child.out", dir);
	f = fopen(path, "w");
	setvbuf(f, NULL, _IOLBF, 0);
	for (;;) {
		fprintf(f, "child result=%ld\n", work(7));
		usleep(100000);
	}
}

static void say(const char *s)
{
	(void)!write(1, s, strlen(s));
}

static void on_usr1(int sig)
{
	(void)sig;
	if (spinning) { /* interrupted inside hold(): spin here, outside it */
		say("handler spins\n");
		while (spinning)
			wait_a_bit(&spinning);
		say("handler returns\n");
		return;
	}
	say("handler in hold\n");
	holding = 1;
	hold(&holding, 1);
	say("handler out of hold\n");
}

static void *control(void *arg)
{
	(void)arg;
	for (;;) {
		if (take("fork") && fork() == 0)
			child_loop();
		if (take("exec"))
			execl("/bin/sleep", "sleep", "1000", (char *)NULL);
		if (take("inhold")) {
			holding = 1;
			printf("in hold\n");
			hold(&holding, 1);
			printf("out of hold\n");
		}
		if (take("sigspin")) {
			holding = spinning = 1;
			printf("in hold, handler will spin\n");
			hold(&holding, 1);
			printf("out of hold\n");
		}
		usleep(10000);
	}
	return NULL;
}

/*
 * A mapping named as the loader names a patch's (memfd "qpatch:..."),
 * holding a record (struct qp_record of loader/loader.h: magic at 0,
 * version 8, nfuncs 12, state 16, owner 20, seq 24, region_size 32,
 * image_start 40, image_size 48, applied_ns 56, id 64 (64 bytes), target
 * 128 (256), cfi_start 384, cfi_size 392; functions from 400, 120 bytes
 * each: site 0, new_addr 8, old_addr 16, old_size 24, saved 32 (16),
 * len 48, new_size 52, name 56 (64)) forged as KIND says:
 *   count    4 billion functions
 *   size     a region far larger than the mapping
 *   newaddr  a function whose new code is in the C library, not the mapping
 *   len      a function whose jump is 4000 bytes long
 *   site     an applied function whose jump site is unmapped memory
 *   strings  id, target and name without their terminating NUL
 *   magic    a good record but for its version
 */
static void forge(const char *kind)
{
	const size_t size = 2 * 4096;
	uint8_t *m, *f;
	uint32_t u32;
	uint64_t u64;
	int fd = memfd_create("qpatch:forged", 0);

	if (fd < 0 || ftruncate(fd, (off_t)size))
		exit(3);
	m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	if (m == MAP_FAILED)
		exit(3);
	close(fd);
#define PUT32(off, v) (u32 = (uint32_t)(v), memcpy(m + (off), &u32, 4))
#define PUT64(off, v) (u64 = (uint64_t)(v), memcpy(m + (off), &u64, 8))
	memcpy(m, "QPREC\0\0\1", 8);
	PUT32(8, 2);
	PUT32(12, 1);
	PUT32(16, 1); /* applied */
	PUT64(24, 1);
	PUT64(32, size);
	PUT64(40, (uintptr_t)m + 4096);
	PUT64(48, 64);
	strcpy((char *)m + 64, "forged");
	strcpy((char *)m + 128, "hostile");
	f = m + 400;
	u64 = (uintptr_t)&work;
	memcpy(f, &u64, 8);             /* site */
	u64 = (uintptr_t)m + 4096;
	memcpy(f + 8, &u64, 8);         /* new_addr */
	u64 = (uintptr_t)&work;
	memcpy(f + 16, &u64, 8);        /* old_addr */
	u32 = 5;
	memcpy(f + 48, &u32, 4);        /* len */
	strcpy((char *)f + 56, "work");
	if (!strcmp(kind, "count"))
		PUT32(12, 0xffffffffu);
	else if (!strcmp(kind, "size"))
		PUT64(32, 1ull << 40);
	else if (!strcmp(kind, "newaddr")) {
		u64 = (uintptr_t)&printf;
		memcpy(f + 8, &u64, 8);
	} else if (!strcmp(kind, "len")) {
		u32 = 4000;
		memcpy(f + 48, &u32, 4);
	} else if (!strcmp(kind, "site")) {
		u64 = 16;
		memcpy(f, &u64, 8);
	} else if (!strcmp(kind, "strings")) {
		memset(m + 64, 'i', 64);
		memset(m + 128, 't', 256);
		memset(f + 56, 'n', 64);
	} else if (!strcmp(kind, "magic"))
		PUT32(8, 77);
	mprotect(m, 4096, PROT_READ);
}

static void *nothing(void *arg)
{
	return arg;
}

static void *storm(void *arg)
{
	for (;;) {
		pthread_t t;

		if (!pthread_create(&t, NULL, nothing, arg))
			pthread_join(t, NULL);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	struct sigaction sa;
	sigset_t set;
	pthread_t t;
	int i;

	if (argc < 2)
		return 2;
	dir = argv[1];
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc > 3 && !strcmp(argv[2], "forge"))
		forge(argv[3]);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1;
	sigaction(SIGUSR1, &sa, NULL);
	/* SIGUSR1 goes to the control thread: the others block it */
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	if (argc > 3 && !strcmp(argv[2], "storm"))
		for (i = 0; i < atoi(argv[3]); i++)
			pthread_create(&t, NULL, storm, NULL);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	pthread_create(&t, NULL, control, NULL);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	for (;;) {
		printf("result=%ld\n", work(7));
		usleep(100000);
	}
}
