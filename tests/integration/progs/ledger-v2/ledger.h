#ifndef LEDGER_H
#define LEDGER_H
void ledger_deposit(long cents);
void ledger_report(long tick);
#endif
