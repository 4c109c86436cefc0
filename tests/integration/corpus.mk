# Makefile for a tests/fixtures/diff case, copied into the tree by
# t_corpus.sh: every .c below the tree is one object of the program "prog",
# compiled as tests/unit/test_diff.c compiles it (-O2 -g, or the contents
# of the case's file "cflags", which t_corpus.sh copies next to this
# Makefile, as it does "ldflags", the link flags; qpatch-cc adds the
# section flags and -flive-patching).
CC ?= cc
CFLAGS ?= $(or $(shell cat cflags 2>/dev/null),-O2 -g)
LDFLAGS ?= $(shell cat ldflags 2>/dev/null)
SRCS := $(shell find . -name '*.c' -not -path './.qpatch-cc/*' | sort)
OBJS := $(SRCS:.c=.o)

prog: $(OBJS)
	$(CC) $(LDFLAGS) -o $@ $(OBJS)

%.o: %.c
	$(CC) $(CFLAGS) -c -o $@ $<
