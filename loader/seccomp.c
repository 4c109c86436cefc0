// SPDX-License-Identifier: MIT
/*
 * Seccomp filters judged as the kernel runs them (seccomp.h).
 *
 * Every filter the kernel would take is run exactly; a program it would
 * not take is an error.  The loader's side of seccomp comes later.
 */
#include <errno.h>
#include <string.h>

#include "seccomp.h"

/* --- the classic BPF of seccomp filters ---------------------------------- */

/* The codes a seccomp filter may hold (seccomp_check_filter()), as the
 * program was given to the kernel (PTRACE_SECCOMP_GET_FILTER returns it so). */
static bool sc_code_allowed(uint16_t code)
{
	switch (code) {
	case BPF_LD | BPF_W | BPF_ABS:
	case BPF_LD | BPF_W | BPF_LEN:
	case BPF_LDX | BPF_W | BPF_LEN:
	case BPF_RET | BPF_K:
	case BPF_RET | BPF_A:
	case BPF_ALU | BPF_ADD | BPF_K:
	case BPF_ALU | BPF_ADD | BPF_X:
	case BPF_ALU | BPF_SUB | BPF_K:
	case BPF_ALU | BPF_SUB | BPF_X:
	case BPF_ALU | BPF_MUL | BPF_K:
	case BPF_ALU | BPF_MUL | BPF_X:
	case BPF_ALU | BPF_DIV | BPF_K:
	case BPF_ALU | BPF_DIV | BPF_X:
	case BPF_ALU | BPF_AND | BPF_K:
	case BPF_ALU | BPF_AND | BPF_X:
	case BPF_ALU | BPF_OR | BPF_K:
	case BPF_ALU | BPF_OR | BPF_X:
	case BPF_ALU | BPF_XOR | BPF_K:
	case BPF_ALU | BPF_XOR | BPF_X:
	case BPF_ALU | BPF_LSH | BPF_K:
	case BPF_ALU | BPF_LSH | BPF_X:
	case BPF_ALU | BPF_RSH | BPF_K:
	case BPF_ALU | BPF_RSH | BPF_X:
	case BPF_ALU | BPF_NEG:
	case BPF_LD | BPF_IMM:
	case BPF_LDX | BPF_IMM:
	case BPF_MISC | BPF_TAX:
	case BPF_MISC | BPF_TXA:
	case BPF_LD | BPF_MEM:
	case BPF_LDX | BPF_MEM:
	case BPF_ST:
	case BPF_STX:
	case BPF_JMP | BPF_JA:
	case BPF_JMP | BPF_JEQ | BPF_K:
	case BPF_JMP | BPF_JEQ | BPF_X:
	case BPF_JMP | BPF_JGE | BPF_K:
	case BPF_JMP | BPF_JGE | BPF_X:
	case BPF_JMP | BPF_JGT | BPF_K:
	case BPF_JMP | BPF_JGT | BPF_X:
	case BPF_JMP | BPF_JSET | BPF_K:
	case BPF_JMP | BPF_JSET | BPF_X:
		return true;
	default:
		return false;
	}
}

static bool sc_is_cond_jump(uint16_t code)
{
	return BPF_CLASS(code) == BPF_JMP && BPF_OP(code) != BPF_JA;
}

int qp_seccomp_validate(const struct sock_filter *insns, size_t len, struct qp_error *err)
{
	size_t pc;

	if (!len || len > QP_SECCOMP_MAX_INSNS)
		return qp_seterr(err, -EINVAL, "%zu instructions (a filter has 1 to %d)", len,
				 QP_SECCOMP_MAX_INSNS);
	for (pc = 0; pc < len; pc++) {
		const struct sock_filter *f = &insns[pc];
		uint16_t code = f->code;

		if (!sc_code_allowed(code))
			return qp_seterr(err, -EINVAL,
					 "instruction %zu: code 0x%04x is not one a seccomp filter may hold",
					 pc, code);
		if (code == (BPF_LD | BPF_W | BPF_ABS) &&
		    (f->k >= sizeof(struct seccomp_data) || (f->k & 3)))
			return qp_seterr(err, -EINVAL,
					 "instruction %zu: load at offset %u, outside struct seccomp_data "
					 "(%zu bytes) or not 4-byte aligned", pc, f->k,
					 sizeof(struct seccomp_data));
		if (code == (BPF_ALU | BPF_DIV | BPF_K) && f->k == 0)
			return qp_seterr(err, -EINVAL, "instruction %zu: division by 0", pc);
		if ((code == (BPF_ALU | BPF_LSH | BPF_K) || code == (BPF_ALU | BPF_RSH | BPF_K)) &&
		    f->k >= 32)
			return qp_seterr(err, -EINVAL, "instruction %zu: shift by %u", pc, f->k);
		if ((code == (BPF_LD | BPF_MEM) || code == (BPF_LDX | BPF_MEM) || code == BPF_ST ||
		     code == BPF_STX) && f->k >= QP_SECCOMP_MEMWORDS)
			return qp_seterr(err, -EINVAL, "instruction %zu: scratch word %u (there are %d)",
					 pc, f->k, QP_SECCOMP_MEMWORDS);
		/* jumps go forward only: no loop, every path ends */
		if (code == (BPF_JMP | BPF_JA) && f->k >= len - pc - 1)
			return qp_seterr(err, -EINVAL,
					 "instruction %zu: jump by %u, beyond the end (%zu instructions)",
					 pc, f->k, len);
		if (sc_is_cond_jump(code) && (pc + f->jt + 1 >= len || pc + f->jf + 1 >= len))
			return qp_seterr(err, -EINVAL,
					 "instruction %zu: jump by %u or %u, beyond the end (%zu instructions)",
					 pc, f->jt, f->jf, len);
	}
	if (BPF_CLASS(insns[len - 1].code) != BPF_RET)
		return qp_seterr(err, -EINVAL, "the last instruction (%zu) is not a return", len - 1);
	return 0;
}

/* A (after an ALU instruction) = A op v; false for a division by 0. */
static bool sc_alu(uint16_t op, uint32_t *A, uint32_t v)
{
	switch (op) {
	case BPF_ADD: *A += v; break;
	case BPF_SUB: *A -= v; break;
	case BPF_MUL: *A *= v; break;
	case BPF_DIV:
		if (!v)
			return false;
		*A /= v;
		break;
	case BPF_AND: *A &= v; break;
	case BPF_OR: *A |= v; break;
	case BPF_XOR: *A ^= v; break;
	case BPF_LSH: *A <<= v & 31; break;
	case BPF_RSH: *A >>= v & 31; break;
	case BPF_NEG: *A = -*A; break;
	}
	return true;
}

static bool sc_jump_taken(uint16_t op, uint32_t A, uint32_t v)
{
	switch (op) {
	case BPF_JEQ: return A == v;
	case BPF_JGT: return A > v;
	case BPF_JGE: return A >= v;
	case BPF_JSET: return (A & v) != 0;
	default: return false;
	}
}

/* Run a validated program: every jump is forward and in range, the last
 * instruction returns, so it ends within @len steps. */
static int sc_exec(const struct sock_filter *insns, size_t len, const struct seccomp_data *d,
		   uint32_t *action, struct qp_error *err)
{
	uint32_t A = 0, X = 0, M[QP_SECCOMP_MEMWORDS] = { 0 };
	unsigned int stored = 0; /* bit k: M[k] was stored on this path */
	size_t pc = 0, steps;

	for (steps = 0; steps < len && pc < len; steps++, pc++) {
		const struct sock_filter *f = &insns[pc];
		uint32_t src = BPF_SRC(f->code) == BPF_X ? X : f->k;

		switch (BPF_CLASS(f->code)) {
		case BPF_LD:
		case BPF_LDX: {
			uint32_t v;

			if (BPF_MODE(f->code) == BPF_ABS) {
				memcpy(&v, (const uint8_t *)d + f->k, sizeof(v));
			} else if (BPF_MODE(f->code) == BPF_LEN) {
				v = sizeof(*d);
			} else if (BPF_MODE(f->code) == BPF_MEM) {
				if (!(stored & (1u << f->k)))
					return qp_seterr(err, -EINVAL,
							 "instruction %zu reads scratch word %u before any store",
							 pc, f->k);
				v = M[f->k];
			} else {
				v = f->k;
			}
			if (BPF_CLASS(f->code) == BPF_LD)
				A = v;
			else
				X = v;
			break;
		}
		case BPF_ST:
		case BPF_STX:
			M[f->k] = BPF_CLASS(f->code) == BPF_ST ? A : X;
			stored |= 1u << f->k;
			break;
		case BPF_ALU:
			if (!sc_alu(BPF_OP(f->code), &A, src)) {
				*action = 0; /* the kernel's cBPF: return 0 */
				return 0;
			}
			break;
		case BPF_JMP:
			if (BPF_OP(f->code) == BPF_JA)
				pc += f->k;
			else
				pc += sc_jump_taken(BPF_OP(f->code), A, src) ? f->jt : f->jf;
			break;
		case BPF_RET:
			*action = BPF_RVAL(f->code) == BPF_A ? A : f->k;
			return 0;
		case BPF_MISC:
			if (BPF_MISCOP(f->code) == BPF_TAX)
				X = A;
			else
				A = X;
			break;
		}
	}
	return qp_seterr(err, -EINVAL, "the program ran past its end"); /* validated: cannot */
}

int qp_seccomp_run(const struct sock_filter *insns, size_t len, const struct seccomp_data *d,
		   uint32_t *action, struct qp_error *err)
{
	int ret = qp_seccomp_validate(insns, len, err);

	return ret ? ret : sc_exec(insns, len, d, action, err);
}

/* The kernel's ACTION_ONLY(): the action as a signed value, lower wins. */
static int32_t sc_rank(uint32_t action)
{
	return (int32_t)(action & SECCOMP_RET_ACTION_FULL);
}

int qp_seccomp_run_chain(const struct qp_seccomp_prog *v, size_t n, const struct seccomp_data *d,
			 uint32_t *action, size_t *which, struct qp_error *err)
{
	uint32_t best = SECCOMP_RET_ALLOW, cur;
	size_t i, best_i = 0;
	int ret;

	for (i = 0; i < n; i++) {
		ret = qp_seccomp_run(v[i].insns, v[i].len, d, &cur, err);
		if (ret)
			return qp_preperr(err, ret, "filter %zu", i);
		if (sc_rank(cur) < sc_rank(best)) {
			best = cur;
			best_i = i;
		}
	}
	*action = best;
	if (which)
		*which = best_i;
	return 0;
}

bool qp_seccomp_allows(uint32_t action)
{
	uint32_t a = action & SECCOMP_RET_ACTION_FULL;

	return a == SECCOMP_RET_ALLOW || a == SECCOMP_RET_LOG;
}

const char *qp_seccomp_action_name(uint32_t action)
{
	switch (action & SECCOMP_RET_ACTION_FULL) {
	case SECCOMP_RET_KILL_PROCESS: return "SECCOMP_RET_KILL_PROCESS";
	case SECCOMP_RET_KILL_THREAD: return "SECCOMP_RET_KILL_THREAD";
	case SECCOMP_RET_TRAP: return "SECCOMP_RET_TRAP";
	case SECCOMP_RET_ERRNO: return "SECCOMP_RET_ERRNO";
	case SECCOMP_RET_USER_NOTIF: return "SECCOMP_RET_USER_NOTIF";
	case SECCOMP_RET_TRACE: return "SECCOMP_RET_TRACE";
	case SECCOMP_RET_LOG: return "SECCOMP_RET_LOG";
	case SECCOMP_RET_ALLOW: return "SECCOMP_RET_ALLOW";
	default: return NULL;
	}
}
