/* Like Lua's LUAI_FUNC: global to the program's objects, hidden from the
 * dynamic symbol table.  The linker makes it STB_LOCAL in the executable. */
__attribute__((visibility("hidden"))) int scale(int x)
{
	return x * 100;
}
