/* the fix is here: a static inline function of a header, as QEMU has many */
static inline int value(void)
{
	return 1;
}
