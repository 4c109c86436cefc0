/* Thread-local state of a shared library loaded at startup. */
__thread long lib_count;          /* also read by the program */
static __thread long lib_calls;

long lib_step(long by)
{
	lib_calls++;
	lib_count += 10 * by;
	return lib_count;
}

long lib_calls_get(void)
{
	return lib_calls;
}

long lib_count_get(void)
{
	return lib_count;
}
