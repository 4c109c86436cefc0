long compute(long x)
{
	return x * 5 + 1;
}
