long clamp(long x, long lo, long hi);

long compute(long x)
{
	return clamp(x * 5 + 1, 0, 100);
}
