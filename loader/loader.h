/* SPDX-License-Identifier: MIT */
/*
 * The loader library: puts a patch into a live process, lists and undoes
 * what is applied.  The record of each applied patch lives in the target
 * (first page of the patch's mapping), so any later run sees it.
 */
#ifndef QPATCH_LOADER_H
#define QPATCH_LOADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "qpatch/error.h"
#include "qpatch/format.h"

#define QP_RECORD_MAGIC "QPREC\0\0\1"
#define QP_MEMFD_PREFIX "qpatch:"  /* mapping name: /memfd:qpatch:ID (deleted) */
#define QP_FUNC_NAME_MAX 64

/* One redirected function, as recorded in the target. */
struct qp_record_func {
	uint64_t site;                 /* address where the jump is written */
	uint64_t new_addr;             /* the new function */
	uint64_t old_addr;             /* the old function's start */
	uint64_t old_size;             /* its size */
	uint8_t saved[16];             /* bytes the jump overwrote */
	uint32_t len;                  /* number of bytes overwritten (5) */
	uint32_t new_size;             /* bytes of the new function (record version 2;
					  0 in version 1: unknown) */
	char name[QP_FUNC_NAME_MAX];   /* old function's name, truncated */
};
_Static_assert(sizeof(struct qp_record_func) == 120, "qp_record_func layout");

/* Header of the record at the start of a patch mapping. */
struct qp_record {
	char magic[8];                 /* QP_RECORD_MAGIC */
	uint32_t version;              /* 1 */
	uint32_t nfuncs;               /* entries in funcs[] */
	uint32_t state;                /* QP_REC_APPLIED, QP_REC_RESTORED or QP_REC_PENDING */
	uint32_t reserved;             /* 0 */
	uint64_t seq;                  /* order of application, 1 = first */
	uint64_t region_size;          /* bytes of the whole mapping */
	uint64_t image_start;          /* address of the patch image */
	uint64_t image_size;           /* its size */
	uint64_t applied_ns;           /* CLOCK_REALTIME when applied */
	char id[QP_ID_MAX];            /* patch id */
	char target[QP_NAME_MAX];      /* target object name */
	uint64_t cfi_start;            /* version 2: the patch's call frame information
					  (.qpatch.eh_frame) in the process, 0 if none */
	uint64_t cfi_size;             /* its bytes */
	struct qp_record_func funcs[]; /* redirected functions */
};
_Static_assert(sizeof(struct qp_record) == 400, "qp_record layout");
#define QP_RECORD_VERSION 2
#define QP_RECORD_V1_SIZE 384          /* version 1 had no cfi_start, cfi_size */

/* Record states. */
#define QP_REC_APPLIED 1  /* the jumps lead into this patch */
#define QP_REC_RESTORED 2 /* undone, but a thread still used the mapping, so
			     it is kept until a later run can remove it */
#define QP_REC_PENDING 3  /* mapped and written, no jump yet: a loader is about
			     to write them (or the process forked meanwhile,
			     and this is the child's copy, never used) */

/* Steps at which a test can make the loader fail on purpose
 * (qp_load_opts.fault_at), to prove that every failure is rolled back. */
#define QP_FAULTS(X)                                            \
	X(QP_FAULT_HELD, 1, "one thread held")                  \
	X(QP_FAULT_MEMFD, 2, "memfd created")                   \
	X(QP_FAULT_MAPPED, 3, "patch mapped")                   \
	X(QP_FAULT_WRITTEN, 4, "patch written")                 \
	X(QP_FAULT_PROTECTED, 5, "patch protected")             \
	X(QP_FAULT_STOPPED, 6, "all threads stopped")           \
	X(QP_FAULT_FIRST_JUMP, 7, "first jump written")         \
	X(QP_FAULT_JUMPS, 8, "all jumps written")               \
	X(QP_FAULT_UNDO_STOPPED, 11, "undo: all threads stopped") \
	X(QP_FAULT_UNDO_FIRST, 12, "undo: first function restored") \
	X(QP_FAULT_UNDO_RESTORED, 13, "undo: all functions restored")

enum qp_fault {
	QP_FAULT_NONE = 0,
#define QP_FAULT_ENUM(name, val, str) name = val,
	QP_FAULTS(QP_FAULT_ENUM)
#undef QP_FAULT_ENUM
};

/*
 * A process caught right after its execve(), held stopped at its entry
 * point (AT_ENTRY): the dynamic linker has mapped and relocated the
 * libraries it needs and run their constructors, but none of the
 * program's own code has run yet.  Patches applied with
 * qp_load_opts.hold are in place before the program's first instruction.
 * Only the thread that made the hold may use it (ptrace is per thread).
 */
struct qp_hold;

/*
 * Run a freshly exec'd @pid to its entry point and keep it stopped there,
 * waiting at most @timeout_ms.  -EALREADY when the program has passed its
 * entry point already (it is then left running, untouched: patch it the
 * usual way); -EAGAIN when it ran another execve() or was stopped by a
 * signal meanwhile; -ETIMEDOUT; QP_EPROC when it ended; another -errno
 * when it cannot be traced.  On any failure the process is left running
 * exactly as it was.
 */
int qp_hold__entry(pid_t pid, int timeout_ms, struct qp_hold **out, struct qp_error *err);
/*
 * Start a program, argv[0] looked up in PATH, and hold it at its entry
 * point as qp_hold__entry() does, without a race: it is traced from before
 * its execve().  The child's pid goes to *@pid_out (0 on failure, when it
 * is killed and reaped); it stays our child.  0, -ETIMEDOUT, QP_EPROC when
 * it could not be run (its error is on stderr), or another -errno.
 */
int qp_hold__spawn(char *const argv[], int timeout_ms, pid_t *pid_out, struct qp_hold **out,
		   struct qp_error *err);
/* The held thread (the process's only thread at its entry point). */
pid_t qp_hold__tid(const struct qp_hold *h);
/* How long the process was held so far, in microseconds. */
double qp_hold__held_us(const struct qp_hold *h);
/* Let the process run its program; NULL is fine. */
void qp_hold__release(struct qp_hold *h);

struct qp_load_opts {
	int retries;            /* attempts when code is busy (default 200) */
	int retry_delay_ms;     /* wait between attempts (default 5) */
	bool allow_active;      /* apply even while threads are inside (or will
				   return into) old functions: they finish the old
				   code; only the jump's own bytes must be free */
	enum qp_fault fault_at; /* tests only: fail on purpose after this step */
	/* tests only: called after each step of QP_FAULTS is reached (before
	 * fault_at is honoured), e.g. to pause there while a test kills the
	 * target; NULL for none */
	void (*at_step)(enum qp_fault step, const char *name, void *arg);
	void *at_step_arg;      /* its argument */
	bool no_patch_cfi;      /* tests only: unwind without the CFI patches carry */
	int leave_ms;           /* a thread still inside the code being replaced after
				   20 attempts is run alone (others stopped) to its way
				   out of it, at most this long (default 1000; < 0: never) */
	const struct qp_hold *hold; /* the process is held at its entry point by this
				   thread (qp_hold__entry): it stays held */
	bool ignore_seccomp;    /* go on when the seccomp filters of the thread that runs
				   the injected system calls cannot be read or evaluated
				   (the target may then be killed by one of them); a filter
				   read that forbids a call is still refused */
};

struct qp_load_stats {
	double stop_us;         /* first thread interrupted .. last resumed (last attempt):
				   no thread is paused longer than this */
	double stopped_us;      /* last thread stopped .. first resumed: the window in
				   which every thread is stopped and the patch goes in */
	double held_us;         /* apply: one thread held (the others running) while the
				   patch is mapped, written and protected; undo: while
				   the mapping is removed */
	double total_us;        /* whole operation */
	int attempts;           /* stop attempts made */
	int caught;             /* busy threads caught on their way out */
	size_t threads;         /* threads stopped */
	uint64_t region;        /* address of the patch mapping */
	size_t nfuncs;          /* functions redirected / restored */
	bool target_gone;       /* the target died while we worked on it */
	size_t kept;            /* undo: undone mappings still in use, kept */
	char kept_why[256];     /* why the last one was kept */
	char seccomp_note[512]; /* with ignore_seccomp: why the seccomp check was not made
				   ("" when it was) */
};

/* An applied patch, as listed. */
struct qp_applied {
	uint64_t region;        /* mapping address */
	struct qp_record rec;   /* its header */
	struct qp_record_func *funcs; /* rec.nfuncs entries (owned) */
};

/*
 * Field @field (>= 3, numbered as in proc(5)) of /proc/PID/stat, or of
 * /proc/PID/task/TID/stat when @tid is not 0, into @out; the process
 * chose its name, so the fields are counted from its last ')'.  0, or a
 * negative errno (the process is gone).
 */
int qp_proc_stat_field(pid_t pid, pid_t tid, int field, char *out, size_t size);

int qp_load_apply(pid_t pid, const struct qp_patch *patch, const struct qp_load_opts *opts,
		  struct qp_load_stats *stats, struct qp_error *err);
/* Undo the patch with @id, which must be the last applied; NULL = the last. */
int qp_load_undo(pid_t pid, const char *id, const struct qp_load_opts *opts,
		 struct qp_load_stats *stats, struct qp_error *err);
/* Applied patches in order of application. */
int qp_load_list(pid_t pid, struct qp_applied **out, size_t *n, struct qp_error *err);
void qp_applied__free(struct qp_applied *v, size_t n);

#endif
