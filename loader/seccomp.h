/* SPDX-License-Identifier: MIT */
/*
 * Seccomp filters judged as the kernel runs them: a classic BPF
 * interpreter for exactly the instructions seccomp accepts, run on a
 * struct seccomp_data, and the kernel's rule for a chain of filters (every
 * filter runs; the action of highest precedence wins).
 *
 * Pure functions on memory.  The programs come from the target
 * (PTRACE_SECCOMP_GET_FILTER), so they are untrusted: each is checked as
 * the kernel checks a filter it is given (bpf_check_classic() and
 * seccomp_check_filter()) before it runs, and a program the kernel would
 * not have taken is an error, never a guess.
 */
#ifndef QPATCH_LOADER_SECCOMP_H
#define QPATCH_LOADER_SECCOMP_H

#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qpatch/error.h"

#define QP_SECCOMP_MAX_INSNS 4096    /* BPF_MAXINSNS: the longest program the kernel takes */
#define QP_SECCOMP_MAX_PATH 32768    /* MAX_INSNS_PER_PATH: instructions of one thread's
					 whole chain, each filter but the newest counting 4
					 more */
#define QP_SECCOMP_MAX_FILTERS ((QP_SECCOMP_MAX_PATH + 4) / 5) /* so at most this many */
#define QP_SECCOMP_MEMWORDS 16       /* BPF_MEMWORDS: scratch words M[0..15] */

/* One filter of a chain. */
struct qp_seccomp_prog {
	struct sock_filter *insns;   /* its instructions, as the kernel returned them */
	size_t len;                  /* count of insns */
};

/*
 * Is @insns a program the kernel accepts as a seccomp filter?  1 to 4096
 * instructions, each one of the seccomp set (LD/LDX W ABS within struct
 * seccomp_data and 4-byte aligned, LD/LDX W LEN, LD/LDX IMM and MEM, ST,
 * STX, ALU with K or X but no MOD, NEG, TAX, TXA, JA, JEQ/JGT/JGE/JSET with
 * K or X, RET K/A), every jump inside the program, no division by a
 * constant 0, no shift by a constant of 32 or more, scratch words 0..15,
 * and a RET last.  0, or -EINVAL with the instruction named in @err.
 */
int qp_seccomp_validate(const struct sock_filter *insns, size_t len, struct qp_error *err);

/*
 * Run one filter on @d; *@action gets the value it returns (action and
 * data).  The program is validated first.  As in the kernel: A and X start
 * at 0, a division by X = 0 ends the program returning 0
 * (SECCOMP_RET_KILL_THREAD), shifts by X use its low 5 bits (the x86-64
 * JIT's shl/shr).  Reading a scratch word no instruction stored before on
 * that path (which the kernel refuses to load) is an error.
 */
int qp_seccomp_run(const struct sock_filter *insns, size_t len, const struct seccomp_data *d,
		   uint32_t *action, struct qp_error *err);

/*
 * Run every filter of a chain (@v[0] the newest, as ptrace numbers them)
 * and combine as the kernel does: the action of highest precedence wins
 * (KILL_PROCESS > KILL_THREAD > TRAP > ERRNO > USER_NOTIF > TRACE > LOG >
 * ALLOW, compared as signed 32-bit action values, so an unknown action
 * ranks where its value puts it), the newest filter among equals.
 * *@action gets the result (SECCOMP_RET_ALLOW for an empty chain), *@which
 * (may be NULL) the index of the filter that decided it.
 */
int qp_seccomp_run_chain(const struct qp_seccomp_prog *v, size_t n, const struct seccomp_data *d,
			 uint32_t *action, size_t *which, struct qp_error *err);

/* ALLOW and LOG let the system call run; every other action does not. */
bool qp_seccomp_allows(uint32_t action);

/* "SECCOMP_RET_KILL_PROCESS", ..., or NULL for an unknown action (which
 * the kernel handles as SECCOMP_RET_KILL_PROCESS). */
const char *qp_seccomp_action_name(uint32_t action);

#endif
