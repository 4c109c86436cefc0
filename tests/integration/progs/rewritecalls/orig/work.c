/* The function the patch replaces; main.c calls it directly and through a
 * pointer. */
long work(long x)
{
	return x * 2 + 1;
}
