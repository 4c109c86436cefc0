#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char *names[] = { "zero", "one", "two" };
/* new: initialised with addresses, so the loader must relocate it */
static const char *loud_names[] = { "ZERO", "ONE", "TWO" };
long warnings;

void report(long n)
{
	if (n % 3 == 0) {
		warnings++;
		/* stderr is libc data the program already has a copy of;
		 * getpid has no PLT entry in the program */
		fprintf(stderr, "warning %ld from pid %d\n", warnings, (int)getpid());
	}
	/* strlen: a libc IFUNC the program never called (no PLT entry) */
	printf("report %ld %s %s len=%zu\n", n, names[n % 3], loud_names[n % 3],
	       strlen(names[n % 3]));
}
