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
	return cents * 15 / 100; /* BUG: that is 15% */
}

void ledger_report(long tick)
{
	long fee = ledger_fee(balance);

	printf("tick %ld: deposits=%ld balance=%ld.%02ld fee=%ld.%02ld\n",
	       tick, deposits, balance / 100, balance % 100, fee / 100, fee % 100);
}
