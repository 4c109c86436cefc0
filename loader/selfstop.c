// SPDX-License-Identifier: MIT
/*
 * The process's own threads, stopped from inside it (see selfstop.h): the
 * in-process agent (loader/agent/) patches the process it lives in, where
 * ptrace is not available, through the same loader code.
 *
 * A stop: every other thread of /proc/self/task is sent QP_SELF_SIGNAL
 * (rt_tgsigqueueinfo, the stop's generation in si_value); its handler
 * records the interrupted context (ucontext_t) and waits on a futex until
 * the stop is released.  The task list is read again until it shows no
 * new thread (a thread waiting in the handler creates none).  What the
 * handler touches is static: a late signal (a stop given up, a thread that
 * was slow) finds its generation over and returns at once.
 *
 * The signal handler and the slots are the process's, so this file keeps
 * the only mutable globals of the loader; one agent thread stops at a
 * time.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <linux/futex.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/ucontext.h>
#include <time.h>
#include <unistd.h>

#include "selfstop.h"

#define SELF_MAX 4096           /* threads one stop can hold */
#define SELF_ESCAPE_NS (30ll * 1000000000ll) /* a thread held this long leaves by itself */

struct self_slot {
	_Atomic int tid;             /* the thread (0: unused, or gone) */
	_Atomic unsigned gen;        /* the stop it belongs to */
	_Atomic unsigned arrived;    /* gen once its handler holds it */
	_Atomic unsigned left;       /* gen once its handler returned */
	ucontext_t *_Atomic uc;      /* its interrupted context */
	_Atomic uint64_t fs_base;    /* its thread pointer */
};

static struct self_slot self_slots[SELF_MAX];
static _Atomic unsigned self_nslots;    /* slots in use by the current stop */
static _Atomic unsigned self_gen;       /* the stop in progress; 0: none */
static _Atomic unsigned self_released;  /* futex word: the last stop released */
static _Atomic unsigned self_arrivals;  /* futex word: bumped by each arrival */
static unsigned self_counter;           /* generations handed out (agent thread only) */

int qp_self_signal(void)
{
	return SIGRTMAX - QP_SELF_SIGNAL_FROM_MAX;
}

static long self_futex(_Atomic unsigned *word, int op, unsigned val, const struct timespec *ts)
{
	return syscall(SYS_futex, (unsigned *)word, op, val, ts, NULL, 0);
}

static int64_t self_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

/* Async-signal-safe: atomics, gettid, futex, clock_gettime. */
static void self_handler(int sig, siginfo_t *si, void *uc)
{
	unsigned gen = (unsigned)si->si_value.sival_int, n, i;
	int saved = errno, tid;
	int64_t t0;
	uint64_t fs;

	(void)sig;
	if (si->si_code != SI_QUEUE || si->si_pid != getpid() || !gen ||
	    atomic_load(&self_gen) != gen)
		goto out;
	tid = (int)syscall(SYS_gettid);
	n = atomic_load(&self_nslots);
	for (i = 0; i < n; i++)
		if (atomic_load(&self_slots[i].tid) == tid && atomic_load(&self_slots[i].gen) == gen)
			break;
	if (i == n)
		goto out;
	__asm__ volatile("mov %%fs:0, %0" : "=r"(fs)); /* the TCB points to itself */
	atomic_store(&self_slots[i].fs_base, fs);
	atomic_store(&self_slots[i].uc, (ucontext_t *)uc);
	atomic_store(&self_slots[i].arrived, gen);
	atomic_fetch_add(&self_arrivals, 1);
	self_futex(&self_arrivals, FUTEX_WAKE_PRIVATE, 1, NULL);
	t0 = self_now_ns();
	for (;;) {
		unsigned cur = atomic_load(&self_released);
		struct timespec tick = { 0, 100 * 1000 * 1000 };

		if ((int)(cur - gen) >= 0)
			break;
		if (self_now_ns() - t0 > SELF_ESCAPE_NS) /* the agent is stuck: go on */
			break;
		self_futex(&self_released, FUTEX_WAIT_PRIVATE, cur, &tick);
	}
	atomic_store(&self_slots[i].left, gen);
out:
	errno = saved;
}

/* The handler goes in once and stays: a signal of a stop given up may
 * still be pending in some thread.  A program that took the signal for
 * itself is not overridden. */
static int self_install(struct qp_error *err)
{
	struct sigaction sa, old;
	int sig = qp_self_signal();

	if (sigaction(sig, NULL, &old))
		return qp_seterr(err, -errno, "signal %d: %s", sig, strerror(errno));
	if ((old.sa_flags & SA_SIGINFO) && old.sa_sigaction == self_handler)
		return 0;
	if (old.sa_handler != SIG_DFL) /* a handler of the program's, or SIG_IGN */
		return qp_seterr(err, QP_EUNSUPP, "the program uses signal %d (SIGRTMAX-%d) itself, "
				 "which the agent stops threads with", sig, QP_SELF_SIGNAL_FROM_MAX);
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = self_handler;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	sigfillset(&sa.sa_mask); /* nothing else runs on top while it waits */
	if (sigaction(sig, &sa, NULL))
		return qp_seterr(err, -errno, "signal %d: %s", sig, strerror(errno));
	return 0;
}

/* A line "Key:\tvalue" of /proc/self/task/TID/status into @out. */
static int self_status(pid_t tid, const char *key, char *out, size_t size)
{
	char path[64], line[256];
	size_t klen = strlen(key);
	FILE *f;
	int ret = -ENOENT;

	snprintf(path, sizeof(path), "/proc/self/task/%d/status", (int)tid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, klen) && line[klen] == ':') {
			char *v = line + klen + 1;

			v += strspn(v, " \t");
			v[strcspn(v, "\n")] = '\0';
			snprintf(out, size, "%s", v);
			ret = 0;
			break;
		}
	fclose(f);
	return ret;
}

/* "thread 4243 ('worker')" */
static void self_who(pid_t tid, char *out, size_t size)
{
	char name[64] = "?";

	self_status(tid, "Name", name, sizeof(name));
	snprintf(out, size, "thread %d ('%s')", (int)tid, name);
}

/* Does thread @tid block the stop signal?  A thread being created does,
 * for a moment (pthread_create), so this only names the reason once the
 * wait for it is over. */
static bool self_blocks(pid_t tid)
{
	char blk[64];
	unsigned long long mask;

	if (self_status(tid, "SigBlk", blk, sizeof(blk)))
		return false;
	mask = strtoull(blk, NULL, 16);
	return mask & (1ull << (qp_self_signal() - 1));
}

static bool self_task_exists(pid_t tid)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/self/task/%d", (int)tid);
	return !access(path, F_OK);
}

/* Let every thread of stop @gen go.  Not waited for here (each needs a
 * CPU to return from its handler): self_drain() does, before the slots
 * are used again. */
static void self_release(unsigned gen)
{
	atomic_store(&self_gen, 0); /* late signals of this stop return at once */
	atomic_store(&self_released, gen);
	self_futex(&self_released, FUTEX_WAKE_PRIVATE, INT32_MAX, NULL);
}

/* Wait (at most 1 s) until every handler of the last stop returned. */
static void self_drain(void)
{
	unsigned gen = atomic_load(&self_released), i, n = atomic_load(&self_nslots);
	int64_t t0 = self_now_ns();

	for (i = 0; gen && i < n; i++)
		while (atomic_load(&self_slots[i].arrived) == gen &&
		       atomic_load(&self_slots[i].left) != gen && self_now_ns() - t0 < 1000000000ll) {
			struct timespec ts = { 0, 20 * 1000 };

			nanosleep(&ts, NULL);
		}
	atomic_store(&self_nslots, 0);
}

/* Send the stop signal to every thread of the task list not in a slot yet;
 * *@added says how many were new. */
static int self_signal_new(unsigned gen, pid_t me, unsigned *added, struct qp_error *err)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *de;
	int ret = 0;

	*added = 0;
	if (!d)
		return qp_seterr(err, -errno, "cannot list the threads: %s", strerror(errno));
	while (!ret && (de = readdir(d))) {
		pid_t tid = (pid_t)atoi(de->d_name);
		unsigned i, n = atomic_load(&self_nslots);
		siginfo_t si;

		if (tid <= 0 || tid == me)
			continue;
		for (i = 0; i < n && atomic_load(&self_slots[i].tid) != tid; i++)
			;
		if (i < n)
			continue;
		if (n == SELF_MAX) {
			ret = qp_seterr(err, QP_EUNSUPP, "more than %d threads: the agent cannot stop them all",
					SELF_MAX);
			break;
		}
		atomic_store(&self_slots[n].gen, gen);
		atomic_store(&self_slots[n].arrived, 0);
		atomic_store(&self_slots[n].left, 0);
		atomic_store(&self_slots[n].uc, NULL);
		atomic_store(&self_slots[n].tid, tid);
		atomic_store(&self_nslots, n + 1);
		memset(&si, 0, sizeof(si));
		si.si_signo = qp_self_signal();
		si.si_code = SI_QUEUE;
		si.si_pid = getpid();
		si.si_uid = getuid();
		si.si_value.sival_int = (int)gen;
		if (syscall(SYS_rt_tgsigqueueinfo, getpid(), tid, si.si_signo, &si)) {
			if (errno != ESRCH)
				ret = qp_seterr(err, -errno, "thread %d: cannot signal it: %s", (int)tid,
						strerror(errno));
			atomic_store(&self_slots[n].tid, 0); /* it ended */
			continue;
		}
		(*added)++;
	}
	closedir(d);
	return ret;
}

/* Wait until every thread signalled arrived (or ended), at most @ms. */
static int self_wait(unsigned gen, int ms, struct qp_error *err)
{
	int64_t deadline = self_now_ns() + (int64_t)ms * 1000000;
	unsigned i, n = atomic_load(&self_nslots);

	for (i = 0; i < n; i++) {
		int tid;

		for (;;) {
			unsigned seen = atomic_load(&self_arrivals);
			struct timespec tick = { 0, 1000 * 1000 };

			tid = atomic_load(&self_slots[i].tid);
			if (!tid || atomic_load(&self_slots[i].arrived) == gen)
				break;
			if (!self_task_exists(tid)) {
				atomic_store(&self_slots[i].tid, 0);
				break;
			}
			if (self_now_ns() > deadline) {
				char who[96], state[64] = "?";

				self_who(tid, who, sizeof(who));
				if (self_blocks(tid))
					return qp_seterr(err, QP_EBUSY, "%s blocks signal %d (SIGRTMAX-%d), "
							 "which the agent stops threads with: it did not stop "
							 "within %d ms", who, qp_self_signal(),
							 QP_SELF_SIGNAL_FROM_MAX, ms);
				self_status(tid, "State", state, sizeof(state));
				return qp_seterr(err, QP_EBUSY, "%s did not stop within %d ms (state %s; "
						 "a thread that blocks signal %d, or one held in the kernel, cannot be "
						 "stopped by the agent)", who, ms, state, qp_self_signal());
			}
			self_futex(&self_arrivals, FUTEX_WAIT_PRIVATE, seen, &tick);
		}
	}
	return 0;
}

/* The registers of the context a stopped thread was interrupted in. */
static void self_regs(const ucontext_t *uc, uint64_t fs_base, struct user_regs_struct *r)
{
	const greg_t *g = uc->uc_mcontext.gregs;

	memset(r, 0, sizeof(*r));
	r->r8 = (uint64_t)g[REG_R8];
	r->r9 = (uint64_t)g[REG_R9];
	r->r10 = (uint64_t)g[REG_R10];
	r->r11 = (uint64_t)g[REG_R11];
	r->r12 = (uint64_t)g[REG_R12];
	r->r13 = (uint64_t)g[REG_R13];
	r->r14 = (uint64_t)g[REG_R14];
	r->r15 = (uint64_t)g[REG_R15];
	r->rdi = (uint64_t)g[REG_RDI];
	r->rsi = (uint64_t)g[REG_RSI];
	r->rbp = (uint64_t)g[REG_RBP];
	r->rbx = (uint64_t)g[REG_RBX];
	r->rdx = (uint64_t)g[REG_RDX];
	r->rax = (uint64_t)g[REG_RAX];
	r->rcx = (uint64_t)g[REG_RCX];
	r->rsp = (uint64_t)g[REG_RSP];
	r->rip = (uint64_t)g[REG_RIP];
	r->eflags = (uint64_t)g[REG_EFL];
	r->orig_rax = (uint64_t)-1;
	r->fs_base = fs_base;
}

/* While it stops the others, the calling thread runs at the highest
 * priority it may take: each thread it wakes with the signal would
 * otherwise take its CPU, and the threads still running compete with it
 * (without CAP_SYS_NICE, nothing changes). */
static void self_boost(struct qp_proc *p)
{
	pid_t me = (pid_t)syscall(SYS_gettid);

	errno = 0;
	p->self_nice = getpriority(PRIO_PROCESS, (id_t)me);
	p->self_boosted = !errno && !setpriority(PRIO_PROCESS, (id_t)me, -20);
}

static void self_unboost(struct qp_proc *p)
{
	if (p->self_boosted)
		setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), p->self_nice);
	p->self_boosted = false;
}

int qp_self__stop(struct qp_proc *p, struct qp_error *err)
{
	pid_t me = (pid_t)syscall(SYS_gettid);
	unsigned gen, added, i, n;
	struct qp_thread *v;
	int ret;

	ret = self_install(err);
	if (ret)
		return ret;
	if (!++self_counter)
		++self_counter;
	gen = self_counter;
	self_drain();
	atomic_store(&self_gen, gen);
	self_boost(p);
	do {
		ret = self_signal_new(gen, me, &added, err);
		if (!ret)
			ret = self_wait(gen, QP_SELF_ARRIVE_MS, err);
	} while (!ret && added);
	n = atomic_load(&self_nslots);
	v = ret ? NULL : calloc(n ? n : 1, sizeof(*v));
	if (!ret && !v)
		ret = qp_seterr(err, -ENOMEM, "out of memory");
	if (ret) {
		self_release(gen);
		self_unboost(p);
		return ret;
	}
	p->self_gen = gen;
	p->nthreads = 0;
	for (i = 0; i < n; i++) {
		struct qp_thread *t = &v[p->nthreads];

		if (!atomic_load(&self_slots[i].tid) || atomic_load(&self_slots[i].arrived) != gen)
			continue;
		t->tid = atomic_load(&self_slots[i].tid);
		self_regs(atomic_load(&self_slots[i].uc), atomic_load(&self_slots[i].fs_base), &t->regs);
		p->nthreads++;
	}
	free(p->threads);
	p->threads = v;
	p->held = true;
	p->alone = false;
	p->stops++;
	return 0;
}

/* Nothing to stop: the system calls run in the calling thread.  Its
 * threads[0] stands for that thread; its stack pointer is a scratch area
 * of its own (ld_scratch() puts strings below it). */
int qp_self__stop_one(struct qp_proc *p, struct qp_error *err)
{
	struct qp_thread *t;

	if (!p->self_scratch && !(p->self_scratch = malloc(QP_SELF_SCRATCH)))
		return qp_seterr(err, -ENOMEM, "out of memory");
	t = calloc(1, sizeof(*t));
	if (!t)
		return qp_seterr(err, -ENOMEM, "out of memory");
	t->tid = (pid_t)syscall(SYS_gettid);
	t->regs.rsp = ((uint64_t)(uintptr_t)p->self_scratch + QP_SELF_SCRATCH) & ~15ull;
	__asm__ volatile("mov %%fs:0, %0" : "=r"(t->regs.fs_base));
	free(p->threads);
	p->threads = t;
	p->nthreads = 1;
	p->self_gen = 0;
	p->held = true;
	p->alone = true;
	p->stops++;
	return 0;
}

int qp_self__resume(struct qp_proc *p, struct qp_error *err)
{
	(void)err;
	if (p->self_gen)
		self_release(p->self_gen);
	self_unboost(p);
	p->self_gen = 0;
	p->held = false;
	p->alone = false;
	free(p->threads);
	p->threads = NULL;
	p->nthreads = 0;
	return 0;
}

int qp_self__syscall(long nr, const uint64_t *args, int nargs, int64_t *ret)
{
	uint64_t a[6] = { 0 };
	long r;

	memcpy(a, args, (size_t)(nargs < 6 ? nargs : 6) * sizeof(*a));
	r = syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
	*ret = r == -1 ? -errno : r;
	return 0;
}

int qp_self__call(uint64_t fn, const uint64_t *args, int nargs, uint64_t *ret)
{
	uint64_t a[6] = { 0 };
	uint64_t (*f)(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t, uint64_t);

	memcpy(a, args, (size_t)(nargs < 6 ? nargs : 6) * sizeof(*a));
	f = (uint64_t (*)(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t, uint64_t))(uintptr_t)fn;
	*ret = f(a[0], a[1], a[2], a[3], a[4], a[5]);
	return 0;
}
