/* A constructor the dynamic linker runs before the program's entry point. */
#include <stdlib.h>
#include <unistd.h>

static int delay_ms;

__attribute__((constructor)) static void start_delay(void)
{
	const char *ms = getenv("SVC_START_DELAY_MS");

	delay_ms = ms ? atoi(ms) : 0;
	if (delay_ms > 0)
		usleep((useconds_t)delay_ms * 1000);
}

int start_delay_ms(void)
{
	return delay_ms;
}
