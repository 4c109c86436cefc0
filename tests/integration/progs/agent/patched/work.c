/* The functions a patch replaces: work() computes what the target prints,
 * hold() keeps a thread inside it while *flag is set, calling wait_a_bit()
 * (not replaced) now and then. */
void wait_a_bit(volatile int *flag);

long work(long x)
{
	return x * 2 + 5000;
}

long hold(volatile int *flag, long x)
{
	unsigned long n = 0;

	while (*flag)
		if (!(++n & 0xfffff))
			wait_a_bit(flag);
	return x + 2;
}
