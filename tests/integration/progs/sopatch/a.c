/* helper(): static here and in b.c, so its name alone is ambiguous. */
__attribute__((noipa)) static int helper(int x)
{
	return x + 100;
}

int call_a(int x)
{
	return helper(x);
}
