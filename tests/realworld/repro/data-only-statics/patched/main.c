#include <stdio.h>
#include <unistd.h>

/* Like QEMU's VMStateDescription: a table whose fields are a compound
 * literal at file scope, which gcc emits as the local object
 * __compound_literal.0, referred to by the table (data), by no function. */
struct field {
	const char *name;
	int offset;
};

struct desc {
	const char *name;
	const struct field *fields;
};

const struct desc vmstate_state = {
	.name = "state",
	.fields = (const struct field[]){
		{ "a", 0 },
		{ "b", 4 },
		{ NULL, 0 },
	},
};

/* what the fix changes: nothing else */
__attribute__((noipa)) int value(void)
{
	return 2;
}

__attribute__((noipa)) const struct desc *table(void)
{
	return &vmstate_state;
}

int main(void)
{
	for (;;) {
		printf("%d %s\n", value(), table()->fields[1].name);
		fflush(stdout);
		usleep(100000);
	}
}
