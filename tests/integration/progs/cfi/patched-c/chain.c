/* step_a() is what the patches change; it calls depth_b(), which blocks.
 * unrelated() is another function a patch replaces. */
long depth_b(long x);

long step_a(long x)
{
	return depth_b(x + 1) + 1;
}

long unrelated(long x)
{
	return x * 3 + 2;
}
