/*
 * A small service for host-wide tests: prints what level() returns as the
 * very first thing main does (a process patched at its entry point prints
 * the fixed value there), then every 20 ms what level() and, once loaded,
 * the plug-in's plug() return.  With argv[1] = MS it dlopen()s
 * libplug.so (next to the executable) after MS milliseconds.  It is linked
 * with libstart.so, whose constructor, run by the dynamic linker before
 * the program's entry point, sleeps $SVC_START_DELAY_MS milliseconds: the
 * time a large program (QEMU: over a hundred libraries) spends there.
 */
#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile int level_calls; /* not a const function: each call is made */

__attribute__((noinline)) int level(void)
{
	level_calls++;
	return 1;
}

int start_delay_ms(void); /* libstart.so */

static int (*plug)(void);

static void load_plugin(void)
{
	char path[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 16);
	void *h;

	if (n <= 0)
		return;
	path[n] = '\0';
	strcpy(strrchr(path, '/') + 1, "libplug.so");
	h = dlopen(path, RTLD_NOW);
	plug = h ? (int (*)(void))dlsym(h, "plug") : NULL;
	printf("loaded %s\n", plug ? "plug" : dlerror());
}

int main(int argc, char **argv)
{
	long dl_after = argc > 1 ? atol(argv[1]) : -1;
	long ms;

	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("first=%d (start-up delay %d ms)\n", level(), start_delay_ms());
	for (ms = 0;; ms += 20) {
		if (dl_after >= 0 && !plug && ms >= dl_after)
			load_plugin();
		printf("level=%d plug=%d\n", level(), plug ? plug() : 0);
		usleep(20000);
	}
}
