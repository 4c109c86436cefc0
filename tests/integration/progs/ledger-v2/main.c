/* A tiny service with state in memory: every tick it books a deposit and
 * prints a report.  Restarting it would lose the balance. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "ledger.h"

static long ticks;

int main(int argc, char **argv)
{
	long period_ms = argc > 1 ? atol(argv[1]) : 200;

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (;;) {
		ticks++;
		ledger_deposit(1000 + ticks % 7);
		ledger_report(ticks);
		usleep(period_ms * 1000);
	}
}
