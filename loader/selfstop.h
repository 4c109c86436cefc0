/* SPDX-License-Identifier: MIT */
/*
 * The in-process backend of struct qp_proc (selfstop.c): when the loader
 * works on its own process (qp_proc__open() of getpid(), as the agent
 * library does), threads are stopped by a signal whose handler waits
 * until released, system calls and IFUNC resolvers run directly in the
 * calling thread, and memory goes through /proc/self/mem as for any
 * target.  proc.c hands over to these when qp_proc.self is set.
 */
#ifndef QPATCH_LOADER_SELFSTOP_H
#define QPATCH_LOADER_SELFSTOP_H

#include <stdint.h>

#include "proc.h"

#define QP_SELF_SIGNAL_FROM_MAX 3 /* the stop signal is SIGRTMAX - 3 */
#define QP_SELF_ARRIVE_MS 2000    /* most a stop waits for a thread to reach its handler */
#define QP_SELF_SCRATCH 4096      /* bytes of the calling thread's scratch (ld_scratch) */

/* The signal the handler of stopped threads takes. */
int qp_self_signal(void);
/*
 * Stop every other thread of the process: each is signalled and waits in
 * the handler; threads[] get their interrupted registers.  Refused
 * (QP_EBUSY, naming it) when a thread blocks the signal or does not
 * arrive within QP_SELF_ARRIVE_MS; then every thread is let go again.
 * QP_EUNSUPP when the program has its own handler for the signal.
 */
int qp_self__stop(struct qp_proc *p, struct qp_error *err);
/* "Hold one thread": threads[0] stands for the calling thread. */
int qp_self__stop_one(struct qp_proc *p, struct qp_error *err);
/* Let every thread stopped by qp_self__stop() go. */
int qp_self__resume(struct qp_proc *p, struct qp_error *err);
/* System call @nr in the calling thread; *@ret as the kernel returns it. */
int qp_self__syscall(long nr, const uint64_t *args, int nargs, int64_t *ret);
/* Function @fn(args) in the calling thread (IFUNC resolvers). */
int qp_self__call(uint64_t fn, const uint64_t *args, int nargs, uint64_t *ret);

#endif
