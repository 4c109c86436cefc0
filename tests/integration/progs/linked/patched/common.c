/* calls, so that scale() is long enough for the jump */
int scaled;

#ifdef CLI
__attribute__((noipa)) int scale(int x)
{
	scaled++;
	return x * 200;
}
#else
__attribute__((noipa)) int scale(int x)
{
	scaled++;
	return x * 4;
}
#endif
