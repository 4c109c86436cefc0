/*
 * The in-target probe of the benchmarks: a thread of the target that
 * sleeps 100 us at a time and reads CLOCK_MONOTONIC; a gap over 300 us
 * between two readings is a pause the target felt (every thread of the
 * process stopped, or a CPU not given to it).  Each gap is printed as
 *
 *	gap END_NS LEN_US
 *
 * END_NS on CLOCK_MONOTONIC, so a script can tell which gaps overlap a
 * tool's run (scripts/bench-host.sh, bench-stop.sh).  Started by
 * probe_start(); compiled into the benchmark programs.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#define PROBE_SLEEP_NS 100000
#define PROBE_GAP_NS 300000

static uint64_t probe_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void *probe_main(void *arg)
{
	const struct timespec nap = { 0, PROBE_SLEEP_NS };
	uint64_t last = probe_now();

	(void)arg;
	for (;;) {
		uint64_t now;

		nanosleep(&nap, NULL);
		now = probe_now();
		if (now - last > PROBE_GAP_NS + PROBE_SLEEP_NS)
			printf("gap %llu %llu\n", (unsigned long long)now,
			       (unsigned long long)(now - last - PROBE_SLEEP_NS) / 1000);
		last = now;
	}
	return NULL;
}

int probe_start(void)
{
	pthread_t t;

	return pthread_create(&t, NULL, probe_main, NULL);
}
