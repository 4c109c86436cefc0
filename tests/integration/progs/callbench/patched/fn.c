long fn(long x)
{
	return (x ^ 0x5bd1e995) * 3 + 2;
}
