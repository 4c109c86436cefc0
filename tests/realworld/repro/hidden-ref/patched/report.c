__attribute__((visibility("hidden"))) int helper(void);

int report(void)
{
	return helper() + 2;
}
