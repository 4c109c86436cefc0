/*
 * A constructor the dynamic linker runs before the program's entry point:
 * it sleeps $SVC_START_DELAY_MS milliseconds (the time a large program
 * spends there); then, for tests of holding a process at its entry point,
 * with $SVC_START_FORK it forks (both go on to run the program), with
 * $SVC_START_EXEC it runs that program instead.
 */
#include <stdlib.h>
#include <unistd.h>

static int delay_ms;

__attribute__((constructor)) static void start_delay(void)
{
	const char *ms = getenv("SVC_START_DELAY_MS");
	const char *exec = getenv("SVC_START_EXEC");

	delay_ms = ms ? atoi(ms) : 0;
	if (delay_ms > 0)
		usleep((useconds_t)delay_ms * 1000);
	if (getenv("SVC_START_FORK"))
		fork();
	if (exec)
		execl(exec, exec, (char *)NULL);
}

int start_delay_ms(void)
{
	return delay_ms;
}
