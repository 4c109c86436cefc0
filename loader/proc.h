/* SPDX-License-Identifier: MIT */
/*
 * Control of a live process through ptrace: stopping every thread,
 * reading and writing its memory, running system calls inside it, and its
 * memory map.  The loader's only door into the target.
 */
#ifndef QPATCH_LOADER_PROC_H
#define QPATCH_LOADER_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/user.h>

#include "qpatch/error.h"

struct qp_map {
	uint64_t start, end;   /* [start, end) */
	uint64_t offset;       /* file offset of start */
	char perms[5];         /* "r-xp" */
	const char *path;      /* file, "[stack]", "" for anonymous (in the
				  qp_maps's text) */
};

struct qp_maps {
	struct qp_map *v;      /* mappings in address order */
	size_t n;              /* count of v */
	char *text;            /* the file as read, the paths cut out of it (owned) */
};

/* /proc/PID/maps, read in one go (a process with many threads has a
 * mapping or two per thread stack: hundreds of lines). */
int qp_maps__read(pid_t pid, struct qp_maps *maps, struct qp_error *err);
/* A copy of @from that owns its own memory. */
int qp_maps__copy(const struct qp_maps *from, struct qp_maps *to, struct qp_error *err);
/* The mapping holding @addr, or NULL (binary search: v is in address order). */
const struct qp_map *qp_maps__find(const struct qp_maps *maps, uint64_t addr);
void qp_maps__release(struct qp_maps *maps);

struct qp_thread {
	pid_t tid;             /* thread id */
	bool kept;             /* attached before this qp_proc (a held process,
				  qp_hold): stopped already, and left attached
				  and stopped by qp_proc__resume() */
	int pending_sig;       /* signal that arrived while stopping; re-sent on detach */
	bool gone;             /* it exited (we collected its exit) */
	bool has_status;       /* an event collected while waiting for another thread */
	int status;            /* that event (waitpid status), for its next wait */
	struct user_regs_struct regs; /* registers when stopped */
};

struct qp_proc {
	pid_t pid;                 /* process id */
	struct qp_thread *threads; /* stopped threads; [0] runs remote syscalls */
	size_t nthreads;           /* count of threads */
	int mem_fd;                /* /proc/PID/mem, read-write */
	uint64_t gadget;           /* address of a "syscall" instruction */
	bool regs_dirty;           /* threads[0]'s registers need restoring */
	bool held;                 /* every thread, or threads[0] alone, is stopped
				      (qp_proc__stop or __stop_one succeeded): one of
				      them ending means the process is dying */
	bool alone;                /* threads[0] alone is stopped, the others run
				      (qp_proc__stop_one, __release_others) */
	double interrupted_ms;     /* CLOCK_MONOTONIC (ms) of the last qp_proc__stop()'s
				      first interrupt: when its first thread was stopped */
	unsigned long stops;       /* successful qp_proc__stop() calls: tells one stop from
				      the next (what was read of a stopped thread holds for
				      that stop only) */
	int exit_status;           /* how the last thread that ended did (waitpid status) */
	bool died;                 /* a thread ended while held: the process is dying */
	pid_t keep_tid;            /* a thread this tracer holds stopped already
				  (qp_hold); 0 for none.  qp_proc__stop() takes it as
				  threads[0] without attaching, qp_proc__resume()
				  restores its registers but does not detach it */
	bool self;                 /* the process is the caller's own (the in-process
				      agent): threads are stopped by a signal, system
				      calls run directly (selfstop.h) */
	unsigned self_gen;         /* self: the stop in progress, 0 none */
	void *self_scratch;        /* self: threads[0]'s scratch stack (owned) */
	int self_nice;             /* self: the caller's nice value before a stop */
	bool self_boosted;         /* self: raised for the stop (selfstop.c) */
};

/* Open /proc/PID/mem and check the process exists and may be traced. */
int qp_proc__open(pid_t pid, struct qp_proc *p, struct qp_error *err);
/* Stop every thread (including threads created meanwhile). */
int qp_proc__stop(struct qp_proc *p, struct qp_error *err);
/* Stop one thread only, as threads[0] (the held thread of keep_tid when
 * set): the one that runs remote system calls while the others run. */
int qp_proc__stop_one(struct qp_proc *p, struct qp_error *err);
/* Let every stopped thread but threads[0] go (signals that arrived while
 * they were stopped are delivered); threads[0] stays stopped. */
void qp_proc__release_others(struct qp_proc *p);
/*
 * Did the process die while we held it?  Collects the exits of its
 * threads; a thread that ends while stopped means the process is being
 * killed (no stopped thread can exit by itself).  Waits a little (at most
 * 200 ms) for a process whose threads are neither stopped nor gone, as
 * happens while a SIGKILL tears it down.  For failure paths: describe the
 * death with qp_proc__death().
 */
bool qp_proc__dead(struct qp_proc *p);
/* The same without waiting: only exits already reported (cheap enough to
 * ask with the target stopped). */
bool qp_proc__died_now(struct qp_proc *p);
/* "was killed by signal 9 (Killed)", "exited with status 1" (or "exited
 * or was killed" when it ended unseen) into @buf. */
const char *qp_proc__death(const struct qp_proc *p, char *buf, size_t size);
/* Restore registers and let every thread run again. */
int qp_proc__resume(struct qp_proc *p, struct qp_error *err);
void qp_proc__close(struct qp_proc *p);

int qp_proc__read(struct qp_proc *p, uint64_t addr, void *buf, size_t len,
		  struct qp_error *err);
/*
 * Read @n spans of the process, remote[i] into local[i]: one
 * process_vm_readv for up to IOV_MAX of them.  When it cannot read them
 * all (a page it may not read without force, or one not mapped), they are
 * read one by one through /proc/PID/mem, which says which one failed.
 */
struct iovec;
int qp_proc__readv(struct qp_proc *p, const struct iovec *remote, const struct iovec *local,
		   size_t n, struct qp_error *err);
/* qp_proc__read() as a read callback (ld_read_fn of parse.h), @arg the
 * struct qp_proc: how the parsers of target memory read a live process. */
int qp_proc__read_cb(void *arg, uint64_t addr, void *buf, size_t len, struct qp_error *err);
/* Writes even into read-only mappings (as a debugger does). */
int qp_proc__write(struct qp_proc *p, uint64_t addr, const void *buf, size_t len,
		   struct qp_error *err);
/*
 * Call function @fn(args...) in threads[0] and wait (at most @timeout_ms)
 * for it to return; *@ret gets %rax.  The call returns to address 0, and
 * the fault that follows is the sign it is done (the signal is not
 * delivered).  For small functions that take no locks, like IFUNC
 * resolvers: every other thread stays stopped meanwhile.
 */
int qp_proc__call(struct qp_proc *p, uint64_t fn, const uint64_t *args, int nargs,
		  int timeout_ms, uint64_t *ret, struct qp_error *err);
/*
 * Let thread @i alone run until it reaches @addr (an instruction
 * boundary, typically a return address), at most @timeout_ms, every
 * other thread staying stopped: an int3 is written at @addr and put back
 * as soon as the thread stops, whatever happened.  0 when it is there
 * (its registers, in threads[@i].regs, say pc = @addr); -ETIMEDOUT when
 * it did not get there in time (stopped again, wherever it was); QP_EPROC
 * when it ended.  Signals it receives meanwhile are delivered.
 */
int qp_proc__run_to(struct qp_proc *p, size_t i, uint64_t addr, int timeout_ms,
		    struct qp_error *err);
/* Find a syscall instruction to run remote syscalls with; works while the
 * process runs, so callers do it before stopping it. */
int qp_proc__find_gadget(struct qp_proc *p, struct qp_error *err);
/* The same in the memory map @maps, read just before. */
int qp_proc__find_gadget_in(struct qp_proc *p, const struct qp_maps *maps, struct qp_error *err);
/* Run syscall @nr with up to 6 args in threads[0]; *@ret gets its result
 * (a negative errno on failure, as the kernel returns it). */
int qp_proc__syscall(struct qp_proc *p, long nr, const uint64_t *args, int nargs,
		     int64_t *ret, struct qp_error *err);

#endif
