static volatile int plug_calls;

__attribute__((noinline)) int plug(void)
{
	plug_calls++;
	return 20;
}
