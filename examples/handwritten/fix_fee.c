/*
 * The ledger's fee bug (examples/ledger: 15% instead of 1.5%) fixed by
 * hand, as a shared library for "qpatch-load --so":
 *
 *	cc -shared -fPIC -O2 -I/usr/include -o fix_fee.so fix_fee.c
 *	qpatch-load --so ./fix_fee.so $(pidof ledger)
 *
 * ledger_fee() is inlined into ledger_report(), so the report is what must
 * be replaced; it reads the two statics of ledger.c, reached through
 * pointers the loader fills in (QPATCH_SYM).
 */
#include <stdio.h>

#include <qpatch/so.h>

QPATCH_TARGET("ledger");

static long *balance_p;
static long *deposits_p;
QPATCH_SYM(balance_p, "ledger.c", "balance");
QPATCH_SYM(deposits_p, "ledger.c", "deposits");

static long fixed_fee(long cents)
{
	return cents * 15 / 1000;
}

static void fixed_report(long tick)
{
	long balance = *balance_p, fee = fixed_fee(balance);

	printf("tick %ld: deposits=%ld balance=%ld.%02ld fee=%ld.%02ld (fixed by hand)\n", tick,
	       *deposits_p, balance / 100, balance % 100, fee / 100, fee % 100);
}
QPATCH_REPLACE(ledger_report, fixed_report);
