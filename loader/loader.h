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
	uint32_t len;                  /* number of bytes overwritten (5); 0: no jump,
					  the function is reached through its rewritten
					  call sites only (too short for the jump) */
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
	uint32_t flags;                /* QP_REC_F_* (0 in records of loaders
					  before hand-written .so patches) */
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
#define QP_RECORD_VERSION_SITES 3      /* written when the record lists call sites */
#define QP_RECORD_V1_SIZE 384          /* version 1 had no cfi_start, cfi_size */

/* Record flags. */
#define QP_REC_F_SO 1u    /* a hand-written .so patch (qp_load_so): a struct
			     qp_record_so follows funcs[], the functions' new_addr
			     are jump stubs in the mapping that lead into the library */

#define QP_RECORD_SO_MAGIC "QPRECSO\1"
#define QP_SO_PATH_MAX 512

/* What a .so patch's record says of its library. */
struct qp_record_so {
	char magic[8];                 /* QP_RECORD_SO_MAGIC */
	uint64_t handle;               /* what dlopen returned in the target */
	uint64_t lib_lo, lib_hi;       /* [lo, hi): the library's mappings */
	char path[QP_SO_PATH_MAX];     /* its path, as passed to dlopen */
};
_Static_assert(sizeof(struct qp_record_so) == 544, "qp_record_so layout");

/*
 * Record version 3: the call sites rewritten to reach the new functions
 * (docs/loader.md, "Call sites").  After funcs[] (and the struct
 * qp_record_so of a .so patch) comes this header, then nsites struct
 * qp_record_site.  Only a record that lists call sites is version 3, so
 * loaders that do not know them refuse it rather than undo half of it.
 */
#define QP_RECORD_SITES_MAGIC "QPRECST\1"
struct qp_record_sites {
	char magic[8];                 /* QP_RECORD_SITES_MAGIC */
	uint32_t nsites;               /* entries that follow */
	uint32_t reserved;             /* 0 */
};
_Static_assert(sizeof(struct qp_record_sites) == 16, "qp_record_sites layout");

/* A direct call, jmp or jcc (rel32) rewritten to reach a new function. */
struct qp_record_site {
	uint64_t addr;                 /* the instruction */
	uint32_t func;                 /* index in funcs[] of the function it reaches */
	uint8_t len;                   /* its length, 5..QP_CALLSITE_MAX_LEN (8) */
	uint8_t reserved[3];           /* 0 */
	uint8_t saved[8];              /* its bytes before (len of them) */
	uint8_t written[8];            /* its bytes now: rel32 to the new function */
};
_Static_assert(sizeof(struct qp_record_site) == 32, "qp_record_site layout");

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
	X(QP_FAULT_FIRST_SITE, 9, "first call site written")    \
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
	uint64_t coro_limit;    /* tests only: bytes the search for coroutine contexts
				   reads at most (0: LD_CORO_SCAN_TOTAL, 1 GiB) */
	int leave_ms;           /* a thread still inside the code being replaced after
				   20 attempts is run alone (others stopped) to its way
				   out of it, at most this long (default 1000; < 0: never) */
	const struct qp_hold *hold; /* the process is held at its entry point by this
				   thread (qp_hold__entry): it stays held */
	bool rewrite_calls;     /* also rewrite the direct call sites of every replaced
				   function in the target object to call the new code
				   (the jump stays, for other callers) */
	int lock_wait_ms;       /* another loader works on the process: wait this long
				   for it to finish (0: refuse at once) */
	bool ignore_seccomp;    /* go on when the seccomp filters of the thread that runs
				   the injected system calls cannot be read or evaluated
				   (the target may then be killed by one of them); a filter
				   read that forbids a call is still refused */
	bool no_type_check;     /* .so patches: apply even when a replacement's prototype
				   differs from the old function's (DWARF of both) */
	const char *so_id;      /* .so patches: the patch id (NULL: the library's file
				   name), for a library stored under another name */
};

/* Where the time of one operation went (qp_load_stats.phases): each
 * phase's time, summed over the times it ran (a retried stop runs "stop
 * all" again).  For --timing; the names are static strings. */
#define QP_PHASES_MAX 32
struct qp_phase {
	const char *name;       /* "read maps", "stop all", ... */
	double us;              /* time spent in it, in all */
	unsigned count;         /* times it ended */
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
	size_t nsites;          /* call sites rewritten / put back */
	bool target_gone;       /* the target died while we worked on it */
	size_t kept;            /* undo: undone mappings still in use, kept */
	size_t reaped;          /* abandoned (never applied) mappings removed */
	char kept_why[256];     /* why the last one was kept */
	char seccomp_note[512]; /* with ignore_seccomp: why the seccomp check was not made
				   ("" when it was) */
	double pick_us;         /* .so patches: every thread stopped while the thread to
				   run dlopen (dlclose) was picked, longest time */
	size_t coro_stacks;     /* candidate coroutine stacks (no thread's TCB at the top) */
	size_t coro_contexts;   /* suspended coroutine contexts found in memory */
	uint64_t coro_scanned;  /* bytes scanned for them */
	size_t coro_skipped;    /* mappings too large to scan */
	uint64_t coro_cut;      /* bytes of [heap] and smaller mappings not scanned:
				   the limit was reached */
	uint64_t coro_limit;    /* that limit */
	double coro_scan_us;    /* time the scan took (the target running) */
	size_t types_checked;   /* .so patches: replacements whose prototype was compared
				   with the old function's (DWARF of both) */
	char type_note[512];    /* .so patches: which type checks were skipped, and why
				   ("" when none) */
	struct qp_phase phases[QP_PHASES_MAX]; /* the operation's phases, in the order
				   they first ended (the last ones merged into the
				   last entry when there are more) */
	size_t nphases;         /* count of phases */
};

/* An applied patch, as listed. */
struct qp_applied {
	uint64_t region;        /* mapping address */
	struct qp_record rec;   /* its header */
	struct qp_record_func *funcs; /* rec.nfuncs entries (owned) */
	struct qp_record_so *so; /* rec.flags & QP_REC_F_SO: its library (owned);
				   else NULL */
	struct qp_record_site *sites; /* version 3: nsites entries (owned); else NULL */
	size_t nsites;          /* count of sites */
	bool abandoned;         /* pending, and no loader is applying it: left by a
				   loader that died, or inherited by a child forked
				   while its parent was being patched; never applied */
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
/*
 * Apply the hand-written patch library @path (qpatch/so.h): loaded into
 * the target with dlopen, its functions redirected like a .qpatch's
 * (docs/loader.md, "Hand-written .so patches").  Its id (the file name)
 * goes into @id (QP_ID_MAX bytes).  Undone by qp_load_undo(), which
 * dlcloses the library once no thread runs in it.
 */
int qp_load_so(pid_t pid, const char *path, const struct qp_load_opts *opts,
	       struct qp_load_stats *stats, char *id, struct qp_error *err);
/* What a hand-written patch library names, read and checked from its file
 * as qp_load_so() does before it touches a process. */
struct qp_so_info {
	char id[QP_ID_MAX];                 /* its file name: the patch id */
	bool by_build_id;                   /* QPATCH_TARGET_BUILDID, else QPATCH_TARGET */
	char target[QP_NAME_MAX];           /* the object's file name, or its build-id in hex */
	uint8_t build_id[QP_BUILD_ID_MAX];  /* by_build_id: the build-id */
	size_t build_id_size;               /* its bytes */
	size_t nreplace;                    /* functions it replaces */
};
int qp_so_info__read(const char *path, struct qp_so_info *out, struct qp_error *err);

/* Applied patches in order of application. */
int qp_load_list(pid_t pid, struct qp_applied **out, size_t *n, struct qp_error *err);
void qp_applied__free(struct qp_applied *v, size_t n);

#endif
