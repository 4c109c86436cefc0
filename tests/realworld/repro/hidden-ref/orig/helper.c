/* hidden, like Lua's luaC_step: STB_LOCAL in the linked executable */
__attribute__((visibility("hidden"))) int helper(void)
{
	return 7;
}
