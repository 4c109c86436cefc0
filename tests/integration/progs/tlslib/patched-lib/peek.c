extern __thread long lib_count;   /* a variable of libtlsv.so */

long peek(void)
{
	return lib_count;
}
