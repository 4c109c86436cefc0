/* Uses libc functions and libc data (stderr) from the program. */
#include <stdio.h>
#include <unistd.h>

void report(long n);

int main(void)
{
	long n;

	fprintf(stderr, "libcuser started\n");
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (n = 1;; n++) {
		report(n);
		usleep(20000);
	}
}
