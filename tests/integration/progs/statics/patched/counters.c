/* The fix adds a function with its own static "count" before the others,
 * so the compiler numbers every "count" differently. */
static long tick_extra(void)
{
	static long count = 7;

	count *= 3;
	return count % 1000;
}

long tick_a(void)
{
	static long count;

	return ++count;
}

long tick_b(void)
{
	static long count = 1000;

	count += 2 + (tick_extra() > 2000);
	return count + 1000000;
}
