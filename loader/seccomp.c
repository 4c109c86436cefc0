// SPDX-License-Identifier: MIT
/*
 * Seccomp: may the target run the system calls the loader injects?
 *
 * A process under a seccomp filter (QEMU's -sandbox, systemd's
 * SystemCallFilter=, a browser's renderer) is killed, sent SIGSYS, or sees
 * the call fail when it makes a system call its filter does not allow — and
 * to the kernel the calls the loader injects (memfd_create, ftruncate,
 * mmap, close, mprotect, munmap) are the target's own.  So, with the target
 * stopped and before the first injected call, the loader reads the seccomp
 * state of the thread that will run them (/proc/PID/task/TID/status), the
 * thread's filters (PTRACE_SECCOMP_GET_FILTER, newest first), runs each
 * filter itself on the struct seccomp_data each planned call will present
 * (its number, AUDIT_ARCH_X86_64, the address after the syscall
 * instruction used, its arguments), combines the results as the kernel
 * does, and refuses unless every call is allowed (ALLOW or LOG).
 *
 * The first half of this file is the filter interpreter (seccomp.h), the
 * second the loader's side (ld.h).  Everything read from the target is
 * bounded: the status file, the number of filters, the length of each.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/audit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "ld.h"
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

/* --- the loader's side ----------------------------------------------------- */

#define LD_SC_STATUS_MAX 16384 /* most bytes of /proc/PID/task/TID/status read */
#define LD_SC_FD_BITS (1u << 20) /* descriptors looked at for the next free one */

/* Strict mode (SECCOMP_SET_MODE_STRICT) allows these, and kills the thread
 * on anything else. */
static bool sc_strict_allows(long nr)
{
	return nr == SYS_read || nr == SYS_write || nr == SYS_exit || nr == SYS_rt_sigreturn;
}

void ld_seccomp_release(struct ld_seccomp *sc)
{
	size_t i;

	for (i = 0; i < sc->nprogs; i++)
		free(sc->progs[i].insns);
	free(sc->progs);
	sc->progs = NULL;
	sc->nprogs = 0;
	sc->stop = 0;
}

/* The value of the last line "KEY\t..." of a status text (the first line,
 * Name:, is the task's own choice; the kernel escapes newlines in it, and
 * the fields looked for come after it anyway); -1 when absent. */
static long long sc_status_field(const char *text, const char *key)
{
	const char *p = text, *hit = NULL;
	size_t klen = strlen(key);
	char *end;
	long long v;

	while ((p = strstr(p, key))) {
		if (p > text && p[-1] == '\n')
			hit = p;
		p += klen;
	}
	if (!hit)
		return -1;
	hit += klen;
	while (*hit == ' ' || *hit == '\t')
		hit++;
	errno = 0;
	v = strtoll(hit, &end, 10);
	if (errno || end == hit || v < 0 || (*end != '\n' && *end != '\0'))
		return -1;
	return v;
}

/* Seccomp: and Seccomp_filters: of thread @tid (-1 each when absent: a
 * kernel without seccomp, or before 5.9 for the count). */
static int sc_read_status(struct ld_ctx *c, pid_t tid, long long *mode, long long *count,
			  struct qp_error *err)
{
	char path[64], *buf;
	size_t n = 0;
	ssize_t r;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/status", (int)c->pid, (int)tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;

		return qp_seterr(err, -e, "cannot read '%s': %s", path, strerror(e));
	}
	buf = malloc(LD_SC_STATUS_MAX + 1);
	if (!buf) {
		close(fd);
		return qp_seterr(err, -ENOMEM, "out of memory");
	}
	while (n < LD_SC_STATUS_MAX && (r = read(fd, buf + n, LD_SC_STATUS_MAX - n)) > 0)
		n += (size_t)r;
	close(fd);
	buf[n] = '\0';
	*mode = sc_status_field(buf, "Seccomp:");
	*count = sc_status_field(buf, "Seccomp_filters:");
	free(buf);
	return 0;
}

/* Why PTRACE_SECCOMP_GET_FILTER failed with @e, for a person. */
static const char *sc_fetch_hint(int e)
{
	switch (e) {
	case EACCES:
	case EPERM:
		return " (it needs CAP_SYS_ADMIN, and a loader not itself under seccomp)";
	case EINVAL:
		return " (a kernel without CONFIG_SECCOMP_FILTER or CONFIG_CHECKPOINT_RESTORE)";
	case EMEDIUMTYPE:
		return " (an eBPF filter, not classic BPF)";
	default:
		return "";
	}
}

/* Filter @i of thread @tid into c->sc.  The kernel copies the whole
 * program without knowing the buffer's size: @buf has room for the
 * longest a filter can be, and the length is asked for and checked
 * before. */
static int sc_fetch_one(struct ld_ctx *c, pid_t tid, size_t i, struct sock_filter *buf,
			size_t *total, struct qp_error *err)
{
	struct ld_seccomp *sc = &c->sc;
	struct qp_seccomp_prog *v;
	long n;

	errno = 0;
	n = ptrace(PTRACE_SECCOMP_GET_FILTER, tid, (void *)(uintptr_t)i, NULL);
	if (n < 0) {
		int e = errno;

		return qp_seterr(err, -e, "PTRACE_SECCOMP_GET_FILTER of filter %zu: %s%s", i,
				 strerror(e), sc_fetch_hint(e));
	}
	if (i >= QP_SECCOMP_MAX_FILTERS || n < 1 || n > QP_SECCOMP_MAX_INSNS ||
	    (*total += (size_t)n + 4) > QP_SECCOMP_MAX_PATH + 4)
		return qp_seterr(err, -E2BIG, "filter %zu: %ld instructions, more than the kernel "
				 "allows (%d per filter, %d in a chain)", i, n,
				 QP_SECCOMP_MAX_INSNS, QP_SECCOMP_MAX_PATH);
	errno = 0;
	if (ptrace(PTRACE_SECCOMP_GET_FILTER, tid, (void *)(uintptr_t)i, buf) != n)
		return qp_seterr(err, -EIO, "PTRACE_SECCOMP_GET_FILTER of filter %zu: %s", i,
				 errno ? strerror(errno) : "its length changed");
	v = realloc(sc->progs, (sc->nprogs + 1) * sizeof(*v));
	if (!v)
		return qp_seterr(err, -ENOMEM, "out of memory");
	sc->progs = v;
	v = &sc->progs[sc->nprogs];
	v->len = (size_t)n;
	v->insns = malloc(v->len * sizeof(*v->insns));
	if (!v->insns)
		return qp_seterr(err, -ENOMEM, "out of memory");
	memcpy(v->insns, buf, v->len * sizeof(*v->insns));
	sc->nprogs++;
	if (qp_seccomp_validate(v->insns, v->len, err))
		return qp_preperr(err, -EINVAL, "filter %zu", i);
	return 0;
}

/* Fetch every filter of thread @tid, newest first, into c->sc (index 0
 * up to the first that is not there); @expect: the count its status
 * gave, -1 if none. */
static int sc_fetch(struct ld_ctx *c, pid_t tid, long long expect, struct qp_error *err)
{
	struct sock_filter *buf = malloc(QP_SECCOMP_MAX_INSNS * sizeof(*buf));
	size_t total = 0, i;
	int ret = 0;

	if (!buf)
		return qp_seterr(err, -ENOMEM, "out of memory");
	for (i = 0; !ret; i++) {
		ret = sc_fetch_one(c, tid, i, buf, &total, err);
		if (ret == -ENOENT) { /* past the oldest */
			qp_error_clear(err);
			ret = 0;
			break;
		}
	}
	free(buf);
	if (!ret && expect >= 0 && (size_t)expect != c->sc.nprogs)
		ret = qp_seterr(err, -EIO, "its status counts %lld filters, ptrace gave %zu", expect,
				c->sc.nprogs);
	return ret;
}

/* Append @tail to the message in @err, and make @code its code. */
static int sc_append(struct qp_error *err, int code, const char *tail)
{
	char old[QP_ERRMSG_MAX];

	if (!err)
		return code;
	snprintf(old, sizeof(old), "%s", err->msg);
	return qp_seterr(err, code, "%.*s%s", (int)(sizeof(old) - strlen(tail) - 1), old, tail);
}

static const char sc_blind[] =
	"; --ignore-seccomp goes on without the check, at the risk of the process being killed";

/* ignore_seccomp: go on without judging; the reason (in @err) is kept
 * for the caller to show. */
static void sc_go_blind(struct ld_ctx *c, struct qp_error *err)
{
	if (c->stats && !c->stats->seccomp_note[0])
		snprintf(c->stats->seccomp_note, sizeof(c->stats->seccomp_note), "%s",
			 err && err->msg[0] ? err->msg : "the seccomp filters were not checked");
	qp_error_clear(err);
}

/* Read the seccomp state of threads[0] for this stop (once). */
static int sc_load(struct ld_ctx *c, struct qp_error *err)
{
	struct ld_seccomp *sc = &c->sc;
	pid_t tid = c->proc.threads[0].tid;
	long long mode = -1, count = -1;
	int ret;

	if (sc->stop == c->proc.stops && sc->tid == tid)
		return 0;
	ld_seccomp_release(sc);
	sc->tid = tid;
	sc->unread = false;
	ret = sc_read_status(c, tid, &mode, &count, err);
	if (ret)
		return ret;
	sc->mode = mode < 0 ? 0 : (int)mode;
	if (sc->mode == SECCOMP_MODE_FILTER)
		ret = sc_fetch(c, tid, count, err);
	else if (sc->mode != SECCOMP_MODE_DISABLED && sc->mode != SECCOMP_MODE_STRICT)
		ret = qp_seterr(err, -EINVAL, "unknown seccomp mode %d", sc->mode);
	if (ret) {
		ld_seccomp_release(sc);
		if (!(c->opts && c->opts->ignore_seccomp)) {
			qp_preperr(err, ret, "cannot read the seccomp filters of process %d (thread %d)",
				   (int)c->pid, (int)tid);
			return sc_append(err, QP_ESECCOMP, sc_blind);
		}
		qp_preperr(err, ret, "the seccomp filters of process %d (thread %d) were not "
			   "checked", (int)c->pid, (int)tid);
		sc_go_blind(c, err);
		sc->unread = true;
	}
	sc->stop = c->proc.stops;
	return 0;
}

/* What the thread would suffer, for a message: "kill it on 'mmap'". */
static void sc_describe(const struct ld_ctx *c, const struct ld_call *call, uint32_t action,
			char *buf, size_t size)
{
	const char *name = qp_seccomp_action_name(action);
	uint32_t data = action & SECCOMP_RET_DATA;
	char what[96], how[96];

	switch (action & SECCOMP_RET_ACTION_FULL) {
	case SECCOMP_RET_KILL_THREAD:
		snprintf(what, sizeof(what), "kill its thread %d on '%s'", (int)c->sc.tid, call->name);
		break;
	case SECCOMP_RET_TRAP:
		snprintf(what, sizeof(what), "send it SIGSYS on '%s'", call->name);
		break;
	case SECCOMP_RET_ERRNO: {
		/* the kernel caps the errno at MAX_ERRNO (4095) */
		const char *e = strerrorname_np(data > 4095 ? 4095 : (int)data);

		if (e)
			snprintf(what, sizeof(what), "make '%s' fail with %s", call->name, e);
		else
			snprintf(what, sizeof(what), "make '%s' fail with errno %u", call->name,
				 data > 4095 ? 4095 : data);
		break;
	}
	case SECCOMP_RET_USER_NOTIF:
		snprintf(what, sizeof(what), "hand '%s' to its seccomp supervisor", call->name);
		break;
	case SECCOMP_RET_TRACE:
		/* its tracer is the loader, which does not take seccomp events */
		snprintf(what, sizeof(what), "make '%s' fail with ENOSYS", call->name);
		break;
	default: /* KILL_PROCESS, and what the kernel does with unknown actions */
		snprintf(what, sizeof(what), "kill it on '%s'", call->name);
		break;
	}
	if (name)
		snprintf(how, sizeof(how), "%s", name);
	else
		snprintf(how, sizeof(how), "unknown action 0x%08x, taken as SECCOMP_RET_KILL_PROCESS",
			 action);
	snprintf(buf, size, "would %s (%s)", what, how);
}

/* Judge @call under the state sc_load() read: 0 when it would run, else
 * QP_ESECCOMP with what would happen in @err, followed by @tail. */
static int sc_judge(struct ld_ctx *c, const struct ld_call *call, const char *tail,
		    struct qp_error *err)
{
	struct seccomp_data d = { .nr = (int)call->nr, .arch = AUDIT_ARCH_X86_64 };
	struct ld_seccomp *sc = &c->sc;
	char what[256];
	uint32_t action;
	int i, ret;

	if (sc->mode == SECCOMP_MODE_STRICT && !sc_strict_allows(call->nr))
		return qp_seterr(err, QP_ESECCOMP,
				 "process %d runs in seccomp strict mode (thread %d), which would kill "
				 "that thread on '%s'%s", (int)c->pid, (int)sc->tid, call->name, tail);
	if (sc->mode != SECCOMP_MODE_FILTER || sc->unread)
		return 0;
	/* the kernel's instruction_pointer is where the thread resumes: after
	 * the two bytes of the syscall instruction */
	d.instruction_pointer = c->proc.gadget + 2;
	for (i = 0; i < call->nargs && i < 6; i++)
		d.args[i] = call->args[i];
	ret = qp_seccomp_run_chain(sc->progs, sc->nprogs, &d, &action, NULL, err);
	if (ret && c->opts && c->opts->ignore_seccomp) {
		qp_preperr(err, ret, "the seccomp filters of process %d (thread %d) were not "
			   "evaluated on '%s'", (int)c->pid, (int)sc->tid, call->name);
		sc_go_blind(c, err);
		return 0;
	}
	if (ret) {
		qp_preperr(err, ret, "cannot evaluate the seccomp filters of process %d (thread %d) "
			   "on '%s'", (int)c->pid, (int)sc->tid, call->name);
		sc_append(err, QP_ESECCOMP, sc_blind);
		return sc_append(err, QP_ESECCOMP, tail);
	}
	if (qp_seccomp_allows(action))
		return 0;
	sc_describe(c, call, action, what, sizeof(what));
	return qp_seterr(err, QP_ESECCOMP, "process %d runs under a seccomp filter that %s%s",
			 (int)c->pid, what, tail);
}

static void sc_declare(struct ld_seccomp *sc, long nr)
{
	size_t i;

	for (i = 0; i < sc->ndeclared; i++)
		if (sc->declared[i] == nr)
			return;
	if (sc->ndeclared < LD_MAX_DECLARED)
		sc->declared[sc->ndeclared++] = nr;
}

int ld_seccomp_check(struct ld_ctx *c, const struct ld_call *v, size_t n, struct qp_error *err)
{
	static const char tail[] = "; nothing was changed";
	size_t i;
	int ret;

	if (!c->proc.held || !c->proc.nthreads || !c->proc.gadget)
		return qp_seterr(err, -EINVAL, "process %d: the seccomp check needs it stopped",
				 (int)c->pid);
	for (i = 0; i < n; i++)
		sc_declare(&c->sc, v[i].nr);
	ret = sc_load(c, err);
	if (ret)
		return sc_append(err, ret, tail);
	for (i = 0; i < n; i++) {
		ret = sc_judge(c, &v[i], tail, err);
		if (ret)
			return ret;
	}
	return 0;
}

int ld_seccomp_verify(struct ld_ctx *c, const struct ld_call *call, struct qp_error *err)
{
	size_t i;
	int ret;

	for (i = 0; i < c->sc.ndeclared && c->sc.declared[i] != call->nr; i++)
		;
	if (i == c->sc.ndeclared) /* a bug of the loader, caught by its tests */
		return qp_seterr(err, -EINVAL, "process %d: system call '%s' was not declared to the "
				 "seccomp check; not made", (int)c->pid, call->name);
	/* the other threads run: one of them may have given this one a new
	 * filter (SECCOMP_FILTER_FLAG_TSYNC) since the check; read again */
	if (c->proc.alone)
		c->sc.stop = 0;
	ret = sc_load(c, err);
	if (!ret)
		ret = sc_judge(c, call, "; the call was not made", err);
	return ret;
}

uint64_t ld_seccomp_next_fd(struct ld_ctx *c)
{
	char path[64];
	uint8_t *used;
	struct dirent *de;
	uint64_t n = 0, fd;
	struct qp_error e = { 0 };
	DIR *d;

	/* no filter to judge it (the usual case): spare the pause the scan */
	if (!sc_load(c, &e) && (c->sc.mode != SECCOMP_MODE_FILTER || c->sc.unread))
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/task/%d/fd", (int)c->pid,
		 c->proc.nthreads ? (int)c->proc.threads[0].tid : (int)c->pid);
	used = calloc(LD_SC_FD_BITS / 8, 1);
	d = used ? opendir(path) : NULL;
	if (!d) {
		free(used);
		return 3; /* after stdin, stdout, stderr: the usual */
	}
	while ((de = readdir(d))) {
		char *end;
		unsigned long v;

		errno = 0;
		v = strtoul(de->d_name, &end, 10);
		if (errno || end == de->d_name || *end)
			continue; /* ".", ".." */
		n++;
		if (v < LD_SC_FD_BITS)
			used[v / 8] |= (uint8_t)(1u << (v % 8));
	}
	closedir(d);
	for (fd = 0; fd < LD_SC_FD_BITS && fd <= n && (used[fd / 8] & (1u << (fd % 8))); fd++)
		;
	free(used);
	return fd;
}
