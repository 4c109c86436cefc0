long tick_a(void)
{
	static long count;

	return ++count;
}

long tick_b(void)
{
	static long count = 1000;

	count += 2;
	return count;
}
