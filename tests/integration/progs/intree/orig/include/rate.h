/* the bug is here: a static inline function of a header */
static inline int rate(void)
{
	return 15;
}
