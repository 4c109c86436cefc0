/* A target for the type check of hand-written .so patches: scale() takes
 * (long, char *), area() a struct box by value; main prints both. */
#include <stdio.h>
#include <unistd.h>

struct box {
	int w, h;
};

__attribute__((noipa)) long scale(long n, char *tag)
{
	return n * 2 + (tag[0] == 'x');
}

__attribute__((noipa)) int area(struct box b)
{
	return b.w * b.h;
}

int main(void)
{
	char tag[] = "y";
	struct box b = { 3, 4 };

	for (;;) {
		printf("scale=%ld area=%d\n", scale(21, tag), area(b));
		fflush(stdout);
		usleep(20000);
	}
}
