extern __thread long tls_counter;      /* defined in another file: initial-exec */

long peek(void)
{
	return tls_counter;
}
