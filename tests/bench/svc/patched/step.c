static volatile int calls;

__attribute__((noinline)) int step(int x)
{
	calls++;
	return x + 2;
}
