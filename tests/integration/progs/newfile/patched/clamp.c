/* New in the fix: a new source file. */
long clamp(long x, long lo, long hi)
{
	return x < lo ? lo : x > hi ? hi : x;
}
