// SPDX-License-Identifier: MIT
/*
 * Holding a new process at its entry point (qp_hold, loader.h), so that a
 * patch goes in before the program's first instruction.
 *
 * A process reported right after execve() is still in the dynamic linker.
 * We attach to its only thread, put an int3 on the program's entry point
 * (AT_ENTRY of its auxiliary vector), let it run until it traps there,
 * put the byte back and keep it stopped.  Hardware breakpoints would
 * avoid touching the code, but not every hypervisor passes debug
 * registers to its guests, so the byte is written like the jumps are.
 *
 * Has it passed its entry point already?  The entry code (_start) calls
 * the C library's start routine, which never returns, so the return
 * address of that call stays on the stack, a few words below the initial
 * stack pointer (/proc/PID/stat's startstack), for the life of the
 * process.  Before _start runs, nothing computes that address.  The first
 * call instruction of the entry code is decoded to know it.
 *
 * While it runs to the trap, the process may fork (its child inherits the
 * int3, which is taken out of the child's copy before it runs on), exec
 * (the trap is gone with the old image: we let go) or receive signals
 * (delivered as usual).
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ld.h"
#include "qpatch/decode.h"

#define HOLD_STACK_WORDS 16 /* words below startstack searched for the return address */
#define HOLD_ENTRY_CODE 64  /* bytes of entry code searched for its first call */

struct qp_hold {
	pid_t pid;          /* the process */
	pid_t tid;          /* its thread we hold (the leader) */
	double t0;          /* when we attached */
};

pid_t qp_hold__tid(const struct qp_hold *h)
{
	return h->tid;
}

double qp_hold__held_us(const struct qp_hold *h)
{
	return now_us() - h->t0;
}

/* AT_ENTRY of @pid, 0 when unknown. */
static uint64_t hold_entry_point(pid_t pid)
{
	Elf64_auxv_t av[128];
	char path[64];
	ssize_t n;
	size_t i;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/auxv", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, av, sizeof(av));
	close(fd);
	for (i = 0; n > 0 && i < (size_t)n / sizeof(av[0]); i++)
		if (av[i].a_type == AT_ENTRY)
			return av[i].a_un.a_val;
	return 0;
}

/* Field 28 of /proc/PID/stat: the initial stack pointer; 0 when unknown. */
static uint64_t hold_start_stack(pid_t pid)
{
	char v[32];

	return qp_proc_stat_field(pid, 0, 28, v, sizeof(v)) ? 0 : strtoull(v, NULL, 10);
}

/*
 * 1 when the program has run its entry code, 0 when not, -ENOTSUP when we
 * cannot tell (no call in the entry code: an unusual start routine).
 */
static int hold_passed_entry(int mem_fd, uint64_t entry, uint64_t stack)
{
	uint8_t code[HOLD_ENTRY_CODE];
	uint64_t words[HOLD_STACK_WORDS], ret_addr = 0;
	size_t off = 0, i;
	struct qp_insn in;

	if (pread(mem_fd, code, sizeof(code), (off_t)entry) != (ssize_t)sizeof(code) ||
	    stack < sizeof(words) ||
	    pread(mem_fd, words, sizeof(words), (off_t)(stack - sizeof(words))) !=
		    (ssize_t)sizeof(words))
		return -ENOTSUP;
	while (off < sizeof(code) && !qp_decode_insn(code + off, sizeof(code) - off, entry + off, &in)) {
		off += in.len;
		if (in.kind == QP_INSN_CALL) {
			ret_addr = entry + off;
			break;
		}
		if (in.kind != QP_INSN_OTHER)
			break;
	}
	if (!ret_addr)
		return -ENOTSUP;
	for (i = 0; i < HOLD_STACK_WORDS; i++)
		if (words[i] == ret_addr)
			return 1;
	return 0;
}

/* waitpid(@tid) with a deadline (monotonic ms); 1 with *@status, 0 on timeout, -errno. */
static int hold_wait(pid_t tid, int *status, double deadline_us)
{
	const struct timespec tick = { 0, 1000 * 1000 };
	sigset_t chld, old;
	int ret;

	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	pthread_sigmask(SIG_BLOCK, &chld, &old);
	for (;;) {
		pid_t r = waitpid(tid, status, __WALL | WNOHANG);

		if (r == tid) {
			ret = 1;
			break;
		}
		if (r < 0 && errno != EINTR) {
			ret = -errno;
			break;
		}
		if (now_us() >= deadline_us) {
			ret = 0;
			break;
		}
		sigtimedwait(&chld, NULL, &tick);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return ret;
}

static int hold_poke(pid_t pid, uint64_t addr, uint8_t byte)
{
	char path[64];
	int fd, ok;

	snprintf(path, sizeof(path), "/proc/%d/mem", (int)pid);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ok = pwrite(fd, &byte, 1, (off_t)addr) == 1;
	close(fd);
	return ok ? 0 : -EIO;
}

/* A child forked while we ran to the trap: it shares nothing with its
 * parent but the int3 in its copy of the code; take that out, let it go. */
static void hold_release_child(pid_t child, bool vfork, uint64_t entry, uint8_t orig)
{
	int status;

	/* its first stop comes at once; waited for a full second even past
	 * the hold's time limit, since a child left with the int3 would die */
	if (hold_wait(child, &status, now_us() + 1e6) != 1)
		return;
	if (!vfork) /* a vfork child shares the parent's memory: leave it */
		hold_poke(child, entry, orig);
	ptrace(PTRACE_DETACH, child, 0, 0);
}

/* Wait for the stop of an interrupt of @tid; signals that come first are
 * kept in *@sig for delivery.  0, or -errno / QP_EPROC. */
static int hold_wait_stop(pid_t tid, int *sig)
{
	int status, r;

	for (;;) {
		r = hold_wait(tid, &status, now_us() + 2e6);
		if (r <= 0)
			return r ? r : -ETIMEDOUT;
		if (WIFEXITED(status) || WIFSIGNALED(status))
			return QP_EPROC;
		if ((status >> 16) == PTRACE_EVENT_STOP)
			return 0;
		if ((status >> 16) == PTRACE_EVENT_EXEC)
			return -EAGAIN; /* what we read of it was the old program */
		if ((status >> 16) == 0)
			*sig = WSTOPSIG(status);
		if (ptrace(PTRACE_CONT, tid, 0, 0) < 0)
			return -errno;
	}
}

/* Stop the seized @tid with an interrupt (see hold_wait_stop). */
static int hold_interrupt(pid_t tid, int *sig)
{
	if (ptrace(PTRACE_INTERRUPT, tid, 0, 0) < 0)
		return errno == ESRCH ? QP_EPROC : -errno;
	return hold_wait_stop(tid, sig);
}

/*
 * Run the held @h->tid until it traps at @entry.  0 when it is there,
 * stopped, with its pc at @entry; else a code as qp_hold__entry's, with
 * the thread stopped (or gone).
 */
static int hold_run_to(struct qp_hold *h, uint64_t entry, uint8_t orig, double deadline,
		       int *pending, bool *execd, struct qp_error *err)
{
	struct user_regs_struct regs;
	int status, r, sig = 0;

	for (;;) {
		if (ptrace(PTRACE_CONT, h->tid, 0, (void *)(long)sig) < 0)
			return qp_seterr(err, -errno, "process %d: cannot resume: %s", (int)h->pid,
					 strerror(errno));
		sig = 0;
		r = hold_wait(h->tid, &status, deadline);
		if (r == 0) {
			r = hold_interrupt(h->tid, pending);
			return r ? r : qp_seterr(err, -ETIMEDOUT,
						"process %d did not reach its entry point in time",
						(int)h->pid);
		}
		if (r < 0 || WIFEXITED(status) || WIFSIGNALED(status))
			return qp_seterr(err, QP_EPROC, "process %d ended before its entry point",
					 (int)h->pid);
		switch (status >> 16) {
		case PTRACE_EVENT_FORK:
		case PTRACE_EVENT_VFORK: {
			unsigned long child = 0;

			if (!ptrace(PTRACE_GETEVENTMSG, h->tid, 0, &child) && child)
				hold_release_child((pid_t)child,
						   (status >> 16) == PTRACE_EVENT_VFORK, entry, orig);
			continue;
		}
		case PTRACE_EVENT_EXEC:
			*execd = true; /* a new image: no trap of ours in it */
			return qp_seterr(err, -EAGAIN,
					 "process %d ran another program before its entry point",
					 (int)h->pid);
		case PTRACE_EVENT_STOP:
			return qp_seterr(err, -EAGAIN, "process %d was stopped by a signal",
					 (int)h->pid);
		case 0:
			break;
		default:
			continue;
		}
		if (WSTOPSIG(status) != SIGTRAP) {
			sig = WSTOPSIG(status); /* deliver it and go on */
			continue;
		}
		if (ptrace(PTRACE_GETREGS, h->tid, 0, &regs) < 0)
			return qp_seterr(err, -errno, "process %d: cannot read registers: %s",
					 (int)h->pid, strerror(errno));
		if (regs.rip != entry + 1) {
			sig = SIGTRAP; /* not ours */
			continue;
		}
		regs.rip = entry;
		if (ptrace(PTRACE_SETREGS, h->tid, 0, &regs) < 0)
			return qp_seterr(err, -errno, "process %d: cannot set registers: %s",
					 (int)h->pid, strerror(errno));
		return 0;
	}
}

/*
 * The hold of a seized @pid that is in a ptrace-stop right after its
 * execve() (attached at @t0; @pending: a signal to deliver once held):
 * run it to its entry point, as qp_hold__entry() says.
 */
static int hold_stopped(pid_t pid, double t0, int pending, int timeout_ms, struct qp_hold **out,
			struct qp_error *err)
{
	struct qp_hold *h;
	uint64_t entry = hold_entry_point(pid), stack = hold_start_stack(pid);
	uint8_t orig, trap = 0xcc;
	char path[64];
	int mem_fd, ret = 0;
	bool planted = false, gone = false, execd = false;

	h = calloc(1, sizeof(*h));
	snprintf(path, sizeof(path), "/proc/%d/mem", (int)pid);
	mem_fd = open(path, O_RDWR | O_CLOEXEC);
	if (!h)
		ret = qp_seterr(err, -ENOMEM, "out of memory");
	if (!ret && (mem_fd < 0 || !entry || !stack))
		ret = qp_seterr(err, -ESRCH, "process %d: no entry point, initial stack or memory found",
				(int)pid);
	if (!ret) {
		h->pid = h->tid = pid;
		h->t0 = t0;
		ret = hold_passed_entry(mem_fd, entry, stack);
		if (ret == 1)
			ret = qp_seterr(err, -EALREADY, "process %d has started its program already",
					(int)pid);
		else if (ret < 0)
			ret = qp_seterr(err, ret, "process %d: cannot tell whether its program has started",
					(int)pid);
	}
	if (!ret && pread(mem_fd, &orig, 1, (off_t)entry) != 1)
		ret = qp_seterr(err, -EIO, "process %d: cannot read its entry point", (int)pid);
	if (!ret && pwrite(mem_fd, &trap, 1, (off_t)entry) != 1)
		ret = qp_seterr(err, -EIO, "process %d: cannot write its entry point", (int)pid);
	planted = !ret;
	if (!ret) {
		ret = hold_run_to(h, entry, orig, h->t0 + timeout_ms * 1e3, &pending, &execd, err);
		gone = ret == QP_EPROC;
	}
	if (planted && !gone && !execd && pwrite(mem_fd, &orig, 1, (off_t)entry) != 1 && !ret)
		ret = qp_seterr(err, -EIO, "process %d: cannot restore its entry point", (int)pid);
	if (mem_fd >= 0)
		close(mem_fd);
	if (ret) {
		if (!gone)
			ptrace(PTRACE_DETACH, pid, 0, (void *)(long)pending);
		free(h);
		return ret;
	}
	if (pending) /* delivered once the hold ends */
		syscall(SYS_tgkill, pid, pid, pending);
	*out = h;
	return 0;
}

#define HOLD_OPTIONS (PTRACE_O_TRACEEXEC | PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK)

int qp_hold__entry(pid_t pid, int timeout_ms, struct qp_hold **out, struct qp_error *err)
{
	double t0 = now_us();
	int ret, pending = 0;

	*out = NULL;
	/* first stop it: every microsecond it runs brings it nearer its entry */
	if (ptrace(PTRACE_SEIZE, pid, 0, (void *)(long)HOLD_OPTIONS) < 0)
		return qp_seterr(err, errno == ESRCH ? QP_EPROC : -errno,
				 "process %d: cannot attach: %s%s", (int)pid, strerror(errno),
				 errno == EPERM ? " (is it traced already?)" : "");
	if (ptrace(PTRACE_INTERRUPT, pid, 0, 0) < 0) {
		ret = qp_seterr(err, errno == ESRCH ? QP_EPROC : -errno,
				"process %d: cannot stop it: %s", (int)pid, strerror(errno));
		ptrace(PTRACE_DETACH, pid, 0, 0);
		return ret;
	}
	ret = hold_wait_stop(pid, &pending);
	if (ret == -EAGAIN)
		qp_seterr(err, ret, "process %d ran another program while being held", (int)pid);
	else if (ret)
		qp_seterr(err, ret, "process %d: cannot stop it: %s", (int)pid, qp_strerror(ret));
	if (ret) {
		if (ret != QP_EPROC)
			ptrace(PTRACE_DETACH, pid, 0, (void *)(long)pending);
		return ret;
	}
	return hold_stopped(pid, t0, pending, timeout_ms, out, err);
}

int qp_hold__spawn(char *const argv[], int timeout_ms, pid_t *pid_out, struct qp_hold **out,
		   struct qp_error *err)
{
	double t0 = now_us();
	int status, r, sig;
	pid_t pid;

	*out = NULL;
	*pid_out = 0;
	pid = fork();
	if (pid < 0)
		return qp_seterr(err, -errno, "cannot fork: %s", strerror(errno));
	if (pid == 0) {
		/* stopped until the parent traces it, so that it sees the exec */
		raise(SIGSTOP);
		execvp(argv[0], argv);
		fprintf(stderr, "qpatch-load: cannot run '%s': %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	*pid_out = pid;
	if (waitpid(pid, &status, WUNTRACED) != pid || !WIFSTOPPED(status) ||
	    ptrace(PTRACE_SEIZE, pid, 0, (void *)(long)HOLD_OPTIONS) < 0) {
		r = -errno ? -errno : -ECHILD;
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		*pid_out = 0;
		return qp_seterr(err, r, "cannot trace the new process: %s", strerror(-r));
	}
	kill(pid, SIGCONT);
	for (;;) {
		r = hold_wait(pid, &status, t0 + timeout_ms * 1e3);
		if (r <= 0) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, __WALL);
			*pid_out = 0;
			return qp_seterr(err, r ? r : -ETIMEDOUT, "'%s' did not start in time", argv[0]);
		}
		if (WIFEXITED(status) || WIFSIGNALED(status)) {
			*pid_out = 0;
			return qp_seterr(err, QP_EPROC, "'%s' could not be run", argv[0]);
		}
		if ((status >> 16) == PTRACE_EVENT_EXEC)
			break;
		/* its own SIGSTOP and our SIGCONT are not passed on */
		sig = (status >> 16) == 0 && WSTOPSIG(status) != SIGSTOP &&
		      WSTOPSIG(status) != SIGCONT ? WSTOPSIG(status) : 0;
		if (ptrace(PTRACE_CONT, pid, 0, (void *)(long)sig) < 0) {
			r = -errno;
			kill(pid, SIGKILL);
			waitpid(pid, &status, __WALL);
			*pid_out = 0;
			return qp_seterr(err, r, "cannot resume the new process: %s", strerror(-r));
		}
	}
	r = hold_stopped(pid, t0, 0, timeout_ms, out, err);
	if (r) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, __WALL);
		*pid_out = 0;
	}
	return r;
}

void qp_hold__release(struct qp_hold *h)
{
	if (!h)
		return;
	ptrace(PTRACE_DETACH, h->tid, 0, 0);
	free(h);
}
