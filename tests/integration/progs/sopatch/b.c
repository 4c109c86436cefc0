__attribute__((noipa)) static int helper(int x)
{
	return x + 200;
}

int call_b(int x)
{
	return helper(x);
}
