/* Two more direct calls to work(), pages away from the others (the
 * loader writes the sites of neighbouring pages together: these are
 * written apart).  Their difference is 0. */
long work(long x);

__attribute__((aligned(16384))) long far_pair(long x)
{
	return work(x) - work(x);
}
