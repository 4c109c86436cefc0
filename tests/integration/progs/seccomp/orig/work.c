long work(long x)
{
	return x + 1000;
}
