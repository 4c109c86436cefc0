#ifndef FOO_H
#define FOO_H

#define OFFSET 1

int scale(int v);
int offset(void);

#endif
