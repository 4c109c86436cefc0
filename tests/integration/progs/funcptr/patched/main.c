#include <unistd.h>

void setup(void);
void report(int x);

int main(void)
{
	int i;

	setup();
	for (i = 0;; i++) {
		report(i % 10);
		usleep(50000);
	}
}
