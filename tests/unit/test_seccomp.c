// SPDX-License-Identifier: MIT
/*
 * The seccomp filter interpreter (loader/seccomp.c): hand-built programs,
 * valid and malformed, the kernel's rule for a chain of filters, and a
 * comparison with the kernel itself: random programs are installed as the
 * filter of a child process (fork, PR_SET_NO_NEW_PRIVS, seccomp()), the
 * child makes a system call with random arguments from a known address,
 * and what the kernel did must be what the interpreter says.  The same for
 * the question whether a program is accepted at all.
 */
#include <errno.h>
#include <linux/audit.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "seccomp.h"

#define ST(code, k) ((struct sock_filter)BPF_STMT(code, k))
#define JMP(code, k, jt, jf) ((struct sock_filter)BPF_JUMP(code, k, jt, jf))
#define OFF(field) offsetof(struct seccomp_data, field)
#define N(v) (sizeof(v) / sizeof((v)[0]))

static struct seccomp_data data_for(int nr)
{
	struct seccomp_data d = { .nr = nr, .arch = AUDIT_ARCH_X86_64,
				  .instruction_pointer = 0x00007f1122334455ull };
	int i;

	for (i = 0; i < 6; i++)
		d.args[i] = 0x1111111100000000ull * (uint64_t)(i + 1) + (uint64_t)i;
	return d;
}

/* The action of @v on @d, or 0xdeadbeef with the message printed. */
static uint32_t run(const struct sock_filter *v, size_t n, const struct seccomp_data *d)
{
	struct qp_error err = { 0 };
	uint32_t a = 0xdeadbeef;

	if (qp_seccomp_run(v, n, d, &a, &err)) {
		fprintf(stderr, "  run: %s\n", err.msg);
		return 0xdeadbeef;
	}
	return a;
}

/* qp_seccomp_validate() refuses @v, with a message holding @needle. */
static void check_bad(const struct sock_filter *v, size_t n, const char *needle)
{
	struct qp_error err = { 0 };
	struct seccomp_data d = data_for(1);
	uint32_t a;

	CHECK_INT(qp_seccomp_validate(v, n, &err), -EINVAL);
	CHECK_CONTAINS(err.msg, needle);
	CHECK_INT(qp_seccomp_run(v, n, &d, &a, NULL), -EINVAL); /* never run */
}

static void test_malformed(void)
{
	struct sock_filter ok[] = { ST(BPF_RET | BPF_K, SECCOMP_RET_ALLOW) };
	struct sock_filter ja[] = { ST(BPF_JMP | BPF_JA, 1), ST(BPF_RET | BPF_K, 0) };
	struct sock_filter jt[] = { JMP(BPF_JMP | BPF_JEQ | BPF_K, 1, 1, 0), ST(BPF_RET | BPF_K, 0) };
	struct sock_filter jf[] = { JMP(BPF_JMP | BPF_JGT | BPF_X, 1, 0, 200), ST(BPF_RET | BPF_K, 0) };
	struct sock_filter ja_huge[] = { ST(BPF_JMP | BPF_JA, 0xffffffffu), ST(BPF_RET | BPF_K, 0) };
	struct sock_filter beyond[] = { ST(BPF_LD | BPF_W | BPF_ABS, sizeof(struct seccomp_data)),
					ST(BPF_RET | BPF_A, 0) };
	struct sock_filter far[] = { ST(BPF_LD | BPF_W | BPF_ABS, 0xfffffffcu), ST(BPF_RET | BPF_A, 0) };
	struct sock_filter unaligned[] = { ST(BPF_LD | BPF_W | BPF_ABS, 2), ST(BPF_RET | BPF_A, 0) };
	struct sock_filter noret[] = { ST(BPF_LD | BPF_W | BPF_ABS, 0), ST(BPF_MISC | BPF_TAX, 0) };
	struct sock_filter half[] = { ST(BPF_LD | BPF_H | BPF_ABS, 0), ST(BPF_RET | BPF_A, 0) };
	struct sock_filter ind[] = { ST(BPF_LD | BPF_W | BPF_IND, 0), ST(BPF_RET | BPF_A, 0) };
	struct sock_filter mod[] = { ST(BPF_ALU | BPF_MOD | BPF_K, 3), ST(BPF_RET | BPF_A, 0) };
	struct sock_filter retx[] = { ST(BPF_RET | BPF_X, 0) };
	struct sock_filter div0[] = { ST(BPF_ALU | BPF_DIV | BPF_K, 0), ST(BPF_RET | BPF_A, 0) };
	struct sock_filter shift[] = { ST(BPF_ALU | BPF_LSH | BPF_K, 32), ST(BPF_RET | BPF_A, 0) };
	struct sock_filter mem[] = { ST(BPF_ST, 16), ST(BPF_RET | BPF_A, 0) };
	struct sock_filter *big = calloc(QP_SECCOMP_MAX_INSNS + 1, sizeof(*big));
	struct qp_error err = { 0 };
	size_t i;

	CHECK_INT(qp_seccomp_validate(ok, 1, &err), 0);
	check_bad(ja, N(ja), "jump by 1, beyond the end");
	check_bad(ja_huge, N(ja_huge), "beyond the end");
	check_bad(jt, N(jt), "beyond the end");
	check_bad(jf, N(jf), "jump by 0 or 200, beyond the end");
	check_bad(beyond, N(beyond), "outside struct seccomp_data");
	check_bad(far, N(far), "outside struct seccomp_data");
	check_bad(unaligned, N(unaligned), "not 4-byte aligned");
	check_bad(noret, N(noret), "the last instruction (1) is not a return");
	check_bad(half, N(half), "code 0x0028 is not one a seccomp filter may hold");
	check_bad(ind, N(ind), "is not one a seccomp filter may hold");
	check_bad(mod, N(mod), "is not one a seccomp filter may hold");
	check_bad(retx, N(retx), "is not one a seccomp filter may hold");
	check_bad(div0, N(div0), "division by 0");
	check_bad(shift, N(shift), "shift by 32");
	check_bad(mem, N(mem), "scratch word 16");
	check_bad(ok, 0, "0 instructions");
	CHECK(big != NULL);
	for (i = 0; big && i <= QP_SECCOMP_MAX_INSNS; i++)
		big[i] = ST(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
	if (big) {
		CHECK_INT(qp_seccomp_validate(big, QP_SECCOMP_MAX_INSNS, NULL), 0);
		check_bad(big, QP_SECCOMP_MAX_INSNS + 1, "4097 instructions");
	}
	free(big);
}

static void test_run(void)
{
	/* kill memfd_create, EPERM for mprotect with PROT_EXEC, allow the rest */
	struct sock_filter f[] = {
		ST(BPF_LD | BPF_W | BPF_ABS, OFF(arch)),
		JMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
		ST(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
		ST(BPF_LD | BPF_W | BPF_ABS, OFF(nr)),
		JMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_memfd_create, 0, 1),
		ST(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
		JMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_mprotect, 0, 3),
		ST(BPF_LD | BPF_W | BPF_ABS, OFF(args[2])),
		JMP(BPF_JMP | BPF_JSET | BPF_K, 4 /* PROT_EXEC */, 0, 1),
		ST(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
		ST(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	/* A = (ip_hi + args[1]_hi) ^ X, with X = len, through scratch memory */
	struct sock_filter g[] = {
		ST(BPF_LDX | BPF_W | BPF_LEN, 0),
		ST(BPF_LD | BPF_W | BPF_ABS, OFF(instruction_pointer) + 4),
		ST(BPF_ST, 7),
		ST(BPF_LD | BPF_W | BPF_ABS, OFF(args[1]) + 4),
		ST(BPF_STX, 2),
		ST(BPF_MISC | BPF_TAX, 0),
		ST(BPF_LD | BPF_MEM, 7),
		ST(BPF_ALU | BPF_ADD | BPF_X, 0),
		ST(BPF_LDX | BPF_MEM, 2),
		ST(BPF_ALU | BPF_XOR | BPF_X, 0),
		ST(BPF_RET | BPF_A, 0),
	};
	struct sock_filter div[] = {
		ST(BPF_LD | BPF_IMM, 100),
		ST(BPF_LDX | BPF_IMM, 0),
		ST(BPF_ALU | BPF_DIV | BPF_X, 0),
		ST(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_filter shifts[] = {
		ST(BPF_LD | BPF_IMM, 3),
		ST(BPF_LDX | BPF_IMM, 33), /* the low 5 bits: 1 */
		ST(BPF_ALU | BPF_LSH | BPF_X, 0),
		ST(BPF_ALU | BPF_NEG, 0),           /* -6 */
		ST(BPF_ALU | BPF_RSH | BPF_K, 28),  /* 0xf */
		ST(BPF_MISC | BPF_TXA, 0),          /* A = X = 33 */
		ST(BPF_ALU | BPF_SUB | BPF_K, 1),
		ST(BPF_ALU | BPF_MUL | BPF_K, 3),   /* 96 */
		ST(BPF_ALU | BPF_DIV | BPF_K, 5),   /* 19 */
		ST(BPF_ALU | BPF_OR | BPF_K, 0x100),
		ST(BPF_ALU | BPF_AND | BPF_K, 0x1f3), /* 0x113 */
		JMP(BPF_JMP | BPF_JGE | BPF_K, 0x113, 1, 0),
		ST(BPF_RET | BPF_K, 1),
		JMP(BPF_JMP | BPF_JGT | BPF_K, 0x113, 0, 1),
		ST(BPF_RET | BPF_K, 2),
		JMP(BPF_JMP | BPF_JGT | BPF_X, 0, 1, 0), /* 0x113 > 33 */
		ST(BPF_RET | BPF_K, 3),
		JMP(BPF_JMP | BPF_JSET | BPF_X, 0, 1, 0), /* 0x113 & 33 = 1 */
		ST(BPF_RET | BPF_K, 4),
		ST(BPF_JMP | BPF_JA, 1),
		ST(BPF_RET | BPF_K, 5),
		ST(BPF_ALU | BPF_OR | BPF_K, SECCOMP_RET_ERRNO),
		ST(BPF_RET | BPF_A, 0),
	};
	struct sock_filter unstored[] = {
		ST(BPF_LD | BPF_W | BPF_ABS, OFF(nr)),
		JMP(BPF_JMP | BPF_JEQ | BPF_K, 1, 0, 1),
		ST(BPF_ST, 4),
		ST(BPF_LDX | BPF_MEM, 4),
		ST(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct seccomp_data d = data_for(SYS_memfd_create);
	struct qp_error err = { 0 };
	uint32_t a;

	CHECK_INT(run(f, N(f), &d), SECCOMP_RET_KILL_PROCESS);
	d = data_for(SYS_mprotect);
	d.args[2] = 5; /* PROT_READ | PROT_EXEC */
	CHECK_INT(run(f, N(f), &d), SECCOMP_RET_ERRNO | EPERM);
	d.args[2] = 3 | (1ull << 34); /* the high word is not looked at */
	CHECK_INT(run(f, N(f), &d), SECCOMP_RET_ALLOW);
	d = data_for(SYS_munmap);
	CHECK_INT(run(f, N(f), &d), SECCOMP_RET_ALLOW);
	d.arch = AUDIT_ARCH_I386;
	CHECK_INT(run(f, N(f), &d), SECCOMP_RET_KILL_PROCESS);

	d = data_for(1);
	CHECK_INT(run(g, N(g), &d), ((0x7f11u + 0x22222222u) ^ 64u));
	CHECK_INT(run(div, N(div), &d), 0); /* the kernel returns 0: KILL_THREAD */
	CHECK_INT(run(shifts, N(shifts), &d), SECCOMP_RET_ERRNO | 0x113);
	d.nr = 2;
	CHECK_INT(qp_seccomp_run(unstored, N(unstored), &d, &a, &err), -EINVAL);
	CHECK_CONTAINS(err.msg, "instruction 3 reads scratch word 4 before any store");
	d.nr = 1;
	CHECK_INT(run(unstored, N(unstored), &d), SECCOMP_RET_ALLOW);
}

static void test_chain(void)
{
	struct sock_filter allow[] = { ST(BPF_RET | BPF_K, SECCOMP_RET_ALLOW) };
	struct sock_filter log[] = { ST(BPF_RET | BPF_K, SECCOMP_RET_LOG) };
	struct sock_filter trace[] = { ST(BPF_RET | BPF_K, SECCOMP_RET_TRACE | 7) };
	struct sock_filter notif[] = { ST(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF) };
	struct sock_filter e1[] = { ST(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | 1) };
	struct sock_filter e2[] = { ST(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | 2) };
	struct sock_filter trap[] = { ST(BPF_RET | BPF_K, SECCOMP_RET_TRAP) };
	struct sock_filter kt[] = { ST(BPF_RET | BPF_K, SECCOMP_RET_KILL_THREAD) };
	struct sock_filter kp[] = { ST(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS) };
	struct sock_filter odd[] = { ST(BPF_RET | BPF_K, 0x00010000) };
	struct sock_filter bad[] = { ST(BPF_LD | BPF_W | BPF_ABS, 64), ST(BPF_RET | BPF_A, 0) };
#define P(f) { f, N(f) }
	struct qp_seccomp_prog order[] = { P(allow), P(log), P(trace), P(notif), P(e1), P(trap),
					   P(kt), P(kp) };
	struct qp_seccomp_prog equal[] = { P(e2), P(allow), P(e1) };
	struct qp_seccomp_prog unknown[] = { P(trap), P(odd), P(e1) };
	struct qp_seccomp_prog broken[] = { P(allow), P(bad) };
#undef P
	struct seccomp_data d = data_for(0);
	struct qp_error err = { 0 };
	uint32_t a = 0;
	size_t which = 99, k;

	CHECK_INT(qp_seccomp_run_chain(NULL, 0, &d, &a, &which, &err), 0);
	CHECK_INT(a, SECCOMP_RET_ALLOW);
	/* every prefix of the list in precedence order: its last wins */
	for (k = 1; k <= N(order); k++) {
		CHECK_INT(qp_seccomp_run_chain(order, k, &d, &a, &which, &err), 0);
		CHECK_INT(a, order[k - 1].insns[0].k);
		CHECK_INT(which, k - 1);
	}
	/* the same, newest last: still the highest precedence */
	CHECK_INT(qp_seccomp_run_chain(order + 3, 2, &d, &a, &which, &err), 0);
	CHECK_INT(a, SECCOMP_RET_ERRNO | 1);
	/* among equal actions the newest filter (index 0) gives the data */
	CHECK_INT(qp_seccomp_run_chain(equal, N(equal), &d, &a, &which, &err), 0);
	CHECK_INT(a, SECCOMP_RET_ERRNO | 2);
	CHECK_INT(which, 0);
	/* an unknown action ranks by its value (here above TRAP) */
	CHECK_INT(qp_seccomp_run_chain(unknown, N(unknown), &d, &a, &which, &err), 0);
	CHECK_INT(a, 0x00010000);
	CHECK(qp_seccomp_action_name(a) == NULL);
	CHECK(!qp_seccomp_allows(a));
	CHECK_INT(qp_seccomp_run_chain(broken, N(broken), &d, &a, &which, &err), -EINVAL);
	CHECK_CONTAINS(err.msg, "filter 1: instruction 0: load at offset 64");

	CHECK(qp_seccomp_allows(SECCOMP_RET_ALLOW));
	CHECK(qp_seccomp_allows(SECCOMP_RET_LOG | 5));
	CHECK(!qp_seccomp_allows(SECCOMP_RET_TRACE));
	CHECK(!qp_seccomp_allows(SECCOMP_RET_USER_NOTIF));
	CHECK(!qp_seccomp_allows(SECCOMP_RET_ERRNO));
	CHECK(!qp_seccomp_allows(SECCOMP_RET_KILL_THREAD));
	CHECK_STR(qp_seccomp_action_name(SECCOMP_RET_KILL_PROCESS | 3), "SECCOMP_RET_KILL_PROCESS");
	CHECK_STR(qp_seccomp_action_name(SECCOMP_RET_ERRNO | 1), "SECCOMP_RET_ERRNO");
}

/* --- against the kernel ---------------------------------------------------- */

#define TEST_NR 1023 /* no such system call: the filter decides everything */

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint32_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng >> 11);
}

/* What a child saw: how it ended, and the system call's result. */
struct outcome {
	int installed;  /* 1 accepted by the kernel, 0 refused (EINVAL) */
	int signal;     /* killed by this signal, 0 if it exited */
	int64_t ret;    /* the result of the system call */
	uint64_t ip;    /* the address of the syscall instruction */
};

/* System call TEST_NR with @args; *@ip gets the address of its syscall
 * instruction.  No call between the register variables and the asm. */
static __attribute__((noinline)) int64_t raw_syscall(const uint64_t *args, uint64_t *ip)
{
	uint64_t a0 = args[0], a1 = args[1], a2 = args[2], a3 = args[3], a4 = args[4], a5 = args[5];
	register uint64_t r10 __asm__("r10") = a3;
	register uint64_t r8 __asm__("r8") = a4;
	register uint64_t r9 __asm__("r9") = a5;
	uint64_t rax = TEST_NR, at;

	__asm__ volatile("lea 0f(%%rip), %1\n0: syscall"
			 : "+a"(rax), "=&r"(at)
			 : "D"(a0), "S"(a1), "d"(a2), "r"(r10), "r"(r8), "r"(r9)
			 : "rcx", "r11", "memory");
	*ip = at;
	return (int64_t)rax;
}

/*
 * In a child: install @v as its filter (with PR_SET_NO_NEW_PRIVS), then
 * make system call TEST_NR with @args from a known address; the result
 * goes into shared memory.  Every other system call is allowed by the
 * program (it starts by checking nr), so the child can report and exit.
 */
static int kernel_run(const struct sock_filter *v, size_t n, const uint64_t *args,
		      struct outcome *out)
{
	struct outcome *sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
				  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	int status;
	pid_t pid;

	if (sh == MAP_FAILED)
		return -1;
	memset(sh, 0, sizeof(*sh));
	pid = fork();
	if (pid == 0) {
		struct sock_fprog prog = { (unsigned short)n, (struct sock_filter *)v };

		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
			_exit(2);
		if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog)) {
			sh->installed = 0;
			_exit(errno == EINVAL ? 0 : 3);
		}
		sh->installed = 1;
		sh->ret = raw_syscall(args, &sh->ip);
		_exit(0);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid) {
		munmap(sh, sizeof(*sh));
		return -1;
	}
	*out = *sh;
	out->signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
	munmap(sh, sizeof(*sh));
	return WIFEXITED(status) && WEXITSTATUS(status) ? -1 : 0;
}

/* A random value, often one the data holds (so comparisons are true
 * now and then). */
static uint32_t rnd_k(const uint32_t *words)
{
	switch (rnd() % 4) {
	case 0: return rnd() % 64;
	case 1: return words[rnd() % 16];
	default: return rnd();
	}
}

/*
 * A random valid program on system call TEST_NR: a prologue that lets
 * every other call through and stores all 16 scratch words (the kernel
 * refuses a program that could read one before storing it), a random body
 * (loads, ALU, jumps forward, scratch memory, no return), and a tail
 * "A &= 0xfff; A |= SECCOMP_RET_ERRNO; return A", so that the errno the
 * call fails with shows what A was.
 */
static size_t random_program(struct sock_filter *v, size_t body, const uint32_t *words)
{
	static const uint16_t alu[] = { BPF_ADD, BPF_SUB, BPF_MUL, BPF_DIV, BPF_AND, BPF_OR,
					BPF_XOR, BPF_LSH, BPF_RSH };
	static const uint16_t jmp[] = { BPF_JEQ, BPF_JGT, BPF_JGE, BPF_JSET };
	size_t n = 0, i, start, tail;

	v[n++] = ST(BPF_LD | BPF_W | BPF_ABS, OFF(nr));
	v[n++] = JMP(BPF_JMP | BPF_JEQ | BPF_K, TEST_NR, 1, 0);
	v[n++] = ST(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
	for (i = 0; i < QP_SECCOMP_MEMWORDS; i++) {
		v[n++] = ST(BPF_LD | BPF_IMM, rnd());
		v[n++] = ST(BPF_ST, (uint32_t)i);
	}
	start = n;
	tail = start + body;
	for (; n < tail; n++) {
		size_t room = tail - n - 1; /* a jump may land on the tail */
		uint16_t src = rnd() % 2 ? BPF_X : BPF_K;

		switch (rnd() % 12) {
		case 0:
		case 1:
			v[n] = ST(BPF_LD | BPF_W | BPF_ABS, (rnd() % 16) * 4);
			break;
		case 2:
			v[n] = ST((rnd() % 2 ? BPF_LD : BPF_LDX) | (rnd() % 2 ? BPF_IMM : BPF_MEM),
				  rnd() % 16);
			if (BPF_MODE(v[n].code) == BPF_IMM)
				v[n].k = rnd_k(words);
			break;
		case 3:
			v[n] = ST(rnd() % 2 ? BPF_ST : BPF_STX, rnd() % 16);
			break;
		case 4:
			v[n] = ST(BPF_MISC | (rnd() % 2 ? BPF_TAX : BPF_TXA), 0);
			break;
		case 5:
			v[n] = ST(rnd() % 2 ? BPF_LD | BPF_W | BPF_LEN : BPF_LDX | BPF_W | BPF_LEN, 0);
			break;
		case 6:
		case 7: {
			uint16_t op = alu[rnd() % N(alu)];
			uint32_t k = rnd_k(words);

			if (op == BPF_LSH || op == BPF_RSH)
				k %= 32;
			if (op == BPF_DIV && !k)
				k = 3;
			v[n] = ST(BPF_ALU | op | src, k);
			if (rnd() % 16 == 0)
				v[n] = ST(BPF_ALU | BPF_NEG, 0);
			break;
		}
		case 8:
			v[n] = ST(BPF_JMP | BPF_JA, room ? rnd() % (room + 1) : 0);
			break;
		default: {
			uint32_t lim = room > 255 ? 255 : (uint32_t)room;

			v[n] = JMP(BPF_JMP | jmp[rnd() % N(jmp)] | src, rnd_k(words),
				   (uint8_t)(rnd() % (lim + 1)), (uint8_t)(rnd() % (lim + 1)));
			break;
		}
		}
	}
	v[n++] = ST(BPF_ALU | BPF_AND | BPF_K, 0xfff);
	v[n++] = ST(BPF_ALU | BPF_OR | BPF_K, SECCOMP_RET_ERRNO);
	v[n++] = ST(BPF_RET | BPF_A, 0);
	return n;
}

/* What the interpreter predicts for @v, as a kernel outcome. */
static void predict(const struct sock_filter *v, size_t n, const struct seccomp_data *d,
		    struct outcome *want, int *err_ret)
{
	struct qp_error err = { 0 };
	uint32_t a = 0;

	memset(want, 0, sizeof(*want));
	*err_ret = qp_seccomp_run(v, n, d, &a, &err);
	want->installed = 1;
	if ((a & SECCOMP_RET_ACTION_FULL) == SECCOMP_RET_ERRNO)
		want->ret = -(int64_t)(a & SECCOMP_RET_DATA);
	else
		want->signal = SIGSYS; /* 0: a division by X = 0 kills */
}

static void test_kernel_random(void)
{
	enum { CASES = 300 };
	struct sock_filter v[128] = { ST(BPF_RET | BPF_K, SECCOMP_RET_ALLOW) };
	uint64_t none[6] = { 0 };
	struct outcome first;
	int c, mismatches = 0, runs = 0, kills = 0;

	/* where the child's syscall instruction is: the same in every child
	 * (fork keeps the address space) */
	CHECK_INT(kernel_run(v, 1, none, &first), 0);
	CHECK_INT(first.ret, -ENOSYS);
	for (c = 0; c < CASES; c++) {
		struct seccomp_data d = { .nr = TEST_NR, .arch = AUDIT_ARCH_X86_64 };
		struct outcome got, want;
		uint32_t words[16];
		uint64_t seed = rng;
		int i, err_ret;
		size_t n;

		for (i = 0; i < 6; i++)
			d.args[i] = ((uint64_t)rnd() << 32) | rnd();
		d.args[rnd() % 6] = rnd() % 8; /* small values too */
		/* the kernel's instruction_pointer: where the thread resumes,
		 * after the 2 bytes of the syscall instruction */
		d.instruction_pointer = first.ip + 2;
		memcpy(words, &d, sizeof(words));
		n = random_program(v, 8 + rnd() % 60, words);
		if (kernel_run(v, n, (const uint64_t *)d.args, &got)) {
			fprintf(stderr, "  case %d: the child failed\n", c);
			mismatches++;
			continue;
		}
		runs++;
		if (!got.signal) /* a program killed by its division by 0 wrote none */
			CHECK_INT(got.ip, first.ip);
		kills += got.signal != 0;
		predict(v, n, &d, &want, &err_ret);
		if (err_ret || got.installed != want.installed || got.signal != want.signal ||
		    (!got.signal && got.ret != want.ret)) {
			mismatches++;
			fprintf(stderr, "  case %d (seed 0x%llx, %zu instructions): kernel installed=%d "
				"signal=%d ret=%lld, interpreter signal=%d ret=%lld (%d)\n", c,
				(unsigned long long)seed, n, got.installed, got.signal,
				(long long)got.ret, want.signal, (long long)want.ret, err_ret);
		}
	}
	printf("kernel comparison: %d random programs run (%d killed), %d mismatches\n", runs, kills,
	       mismatches);
	CHECK_INT(mismatches, 0);
	CHECK(runs > CASES / 2);
}

/*
 * Random mutations of a valid program (a code, a jump, an offset
 * changed): the kernel and qp_seccomp_validate() must agree on whether it
 * is a filter at all (every scratch word is stored first, so the one rule
 * checked when running instead, read before store, never applies).
 */
static void test_kernel_validate(void)
{
	static const uint16_t codes[] = {
		BPF_LD | BPF_W | BPF_ABS, BPF_LD | BPF_H | BPF_ABS, BPF_LD | BPF_B | BPF_ABS,
		BPF_LD | BPF_W | BPF_IND, BPF_LD | BPF_W | BPF_LEN, BPF_LDX | BPF_W | BPF_LEN,
		BPF_LDX | BPF_B | BPF_MSH, BPF_LD | BPF_IMM, BPF_LDX | BPF_IMM, BPF_LD | BPF_MEM,
		BPF_LDX | BPF_MEM, BPF_ST, BPF_STX, BPF_ALU | BPF_MOD | BPF_K, BPF_ALU | BPF_DIV | BPF_K,
		BPF_ALU | BPF_LSH | BPF_K, BPF_ALU | BPF_NEG, BPF_JMP | BPF_JA,
		BPF_JMP | BPF_JEQ | BPF_K, BPF_JMP | BPF_JSET | BPF_X, BPF_RET | BPF_K, BPF_RET | BPF_A,
		BPF_RET | BPF_X, BPF_MISC | BPF_TAX, BPF_MISC | BPF_TXA, 0xffff,
	};
	enum { CASES = 150 };
	struct sock_filter v[128];
	int c, disagree = 0, refused = 0;

	for (c = 0; c < CASES; c++) {
		uint32_t words[16] = { 0 };
		struct outcome got;
		uint64_t args[6] = { 0 };
		size_t n = random_program(v, 8 + rnd() % 20, words), at;
		int ours;

		at = 3 + 2 * QP_SECCOMP_MEMWORDS + rnd() % (n - 3 - 2 * QP_SECCOMP_MEMWORDS);
		switch (rnd() % 4) {
		case 0: v[at].code = codes[rnd() % N(codes)]; break;
		case 1: v[at].jt = (uint8_t)rnd(); v[at].jf = (uint8_t)rnd(); break;
		case 2: v[at].k = rnd() % 80; break;
		default: v[at].k = rnd(); break;
		}
		if (rnd() % 8 == 0)
			n--; /* the return goes */
		ours = qp_seccomp_validate(v, n, NULL) == 0;
		if (kernel_run(v, n, args, &got)) {
			disagree++;
			continue;
		}
		refused += !got.installed;
		if (ours != got.installed) {
			disagree++;
			fprintf(stderr, "  mutation %d: instruction %zu {0x%04x, %u, %u, 0x%x}: kernel %s, "
				"validate %s\n", c, at, v[at].code, v[at].jt, v[at].jf, v[at].k,
				got.installed ? "accepts" : "refuses", ours ? "accepts" : "refuses");
		}
	}
	printf("kernel validation: %d mutated programs, %d refused by the kernel, %d disagreements\n",
	       CASES, refused, disagree);
	CHECK_INT(disagree, 0);
	CHECK(refused > 0 && refused < CASES);
}

int main(void)
{
	test_malformed();
	test_run();
	test_chain();
	test_kernel_random();
	test_kernel_validate();
	return check_report("test_seccomp");
}
