/* A program linked with libplug.so (and libstart.so, see svc.c): prints
 * what plug() returns as the first thing main does, then every 20 ms. */
#include <stdio.h>
#include <unistd.h>

int plug(void);
int start_delay_ms(void);

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("first plug=%d (start-up delay %d ms)\n", plug(), start_delay_ms());
	for (;;) {
		printf("plug=%d\n", plug());
		usleep(20000);
	}
}
