__thread long tls_counter;             /* local-exec here, initial-exec elsewhere */
static __thread long tls_calls = 100;  /* local-exec */

long step(void)
{
	tls_calls++;
	tls_counter += 1;
	return tls_counter;
}

long calls(void)
{
	return tls_calls;
}
