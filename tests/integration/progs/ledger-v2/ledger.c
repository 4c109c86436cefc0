#include <stdio.h>

#include "ledger.h"

static long balance;  /* cents */
static long deposits;

void ledger_deposit(long cents)
{
	balance += cents;
	deposits++;
}

/* The fee is meant to be 1.5% of the balance, rounded down. */
static long ledger_fee(long cents)
{
	return cents * 15 / 1000;
}

/* New in the fix: how many reports were printed since it was applied. */
static long reports_since_fix;

void ledger_report(long tick)
{
	long fee = ledger_fee(balance);

	reports_since_fix++;
	printf("tick %ld: deposits=%ld balance=%ld.%02ld fee=%ld.%02ld (fixed v2, report %ld)\n",
	       tick, deposits, balance / 100, balance % 100, fee / 100, fee % 100,
	       reports_since_fix);
}
