long work(long x)
{
	return x + 5000;
}
