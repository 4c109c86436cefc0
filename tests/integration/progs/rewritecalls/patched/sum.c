/* Two more direct calls to work(), from another file. */
long work(long x);

long sum2(long x)
{
	return work(x) + work(x + 1);
}
