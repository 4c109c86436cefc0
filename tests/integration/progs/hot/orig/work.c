long work(long x)
{
	return (x * 2654435761L) % 1000 + 1000;
}
