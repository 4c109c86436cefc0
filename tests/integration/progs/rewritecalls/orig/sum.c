/* Two more direct calls to work(), from another file (and two from
 * far_pair, whose result is 0). */
long work(long x);
long far_pair(long x);

long sum2(long x)
{
	return work(x) + work(x + 1) + far_pair(x);
}
