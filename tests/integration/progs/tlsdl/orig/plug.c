/* A plugin with thread-local state, loaded with dlopen. */
__thread long plug_count;          /* general-dynamic */
static __thread long plug_calls;   /* local-dynamic */
static __thread long plug_last;    /* local-dynamic */

long plug_step(long by)
{
	plug_calls++;
	plug_last = by;
	plug_count += by;
	return plug_count;
}

long plug_calls_get(void)
{
	return plug_calls;
}

long plug_count_get(void)
{
	return plug_count;
}

long plug_last_get(void)
{
	return plug_last;
}
