/* SPDX-License-Identifier: MIT */
/*
 * The host layer: patches for a binary rather than for a process.  It finds
 * every process that maps an object (scan.c), runs the loader library on
 * many of them at once, each in a worker process of its own (pool.c),
 * keeps a store of patches keyed by build-id (store.c), checks that what
 * root reads cannot be changed by another user (trust.c), and is what the
 * daemon (daemon.c, watch.c) is made of.
 *
 * It calls the loader library's public functions (loader.h) per process
 * and never reaches into its internals: the loader library stays the one
 * place that touches a single process.
 */
#ifndef QPATCH_HOST_H
#define QPATCH_HOST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "loader.h"
#include "qpatch/error.h"
#include "qpatch/format.h"
#include "qpatch/sign.h"

#define QP_HOST_PATH_MAX 512
#define QP_BUILD_ID_HEX (2 * QP_BUILD_ID_MAX + 1)

/* ------------------------------------------------------------------------ */
/* Processes and the objects they map (scan.c)                               */
/* ------------------------------------------------------------------------ */

/* An ELF object mapped by a process. */
struct qp_obj {
	uint8_t build_id[QP_BUILD_ID_MAX]; /* NT_GNU_BUILD_ID */
	size_t build_id_size;              /* bytes used */
	char path[QP_HOST_PATH_MAX];       /* as /proc/PID/maps names it */
	bool is_exe;                       /* the process's executable */
};

/*
 * A cache of build-ids by file (device, inode, size, modification time), so
 * that scanning every process reads each file's notes once.  Not shared
 * between threads.
 */
struct qp_scan;

int qp_scan__new(struct qp_scan **out, struct qp_error *err);
void qp_scan__free(struct qp_scan *s);
/*
 * The ELF objects with a build-id that @pid maps (each file mapped at
 * offset 0, once), the executable first.  *@v is malloc'ed.  -ESRCH when
 * the process is gone.
 */
int qp_scan__objects(struct qp_scan *s, pid_t pid, struct qp_obj **v, size_t *n,
		     struct qp_error *err);
/* Is @o a file named @name ("redis-server", "libfoo.so.1"): the last part
 * of its path, a " (deleted)" of a replaced file left out? */
bool qp_obj_named(const struct qp_obj *o, const char *name);
/* Does @pid map an object with this build-id?  1, 0, or -errno. */
int qp_scan__maps_build_id(struct qp_scan *s, pid_t pid, const uint8_t *id, size_t idlen);
/* Does the object at @path name the library file @soname among its
 * DT_NEEDED libraries (directly)?  "libfoo.so.1" names the file
 * "libfoo.so.1" and "libfoo.so.1.2.3".  Cached like the build-id. */
bool qp_scan__file_needs(struct qp_scan *s, const char *path, const char *soname);
/* The build-id of the file at @path (the cache is used); 0 or -errno. */
int qp_scan__file_build_id(struct qp_scan *s, const char *path, uint8_t *id, size_t *idlen);

/* Every process of the system but the caller, in pid order; *@v malloc'ed. */
int qp_host_pids(pid_t **v, size_t *n, struct qp_error *err);
/* Its command name (/proc/PID/comm), made printable; "?" when gone. */
void qp_host_comm(pid_t pid, char *buf, size_t size);
/* When it started (field 22 of /proc/PID/stat, clock ticks since boot):
 * with the pid, it names one process even after the pid is reused.
 * 0 when gone. */
uint64_t qp_host_start_time(pid_t pid);
/* Does @pid have a mapping of the patch @id (/memfd:qpatch:ID)? */
bool qp_host_has_patch_mapping(pid_t pid, const char *id);

/* ------------------------------------------------------------------------ */
/* Outcomes of one operation on one process (pool.c)                         */
/* ------------------------------------------------------------------------ */

enum qp_outcome {
	QP_OUT_APPLIED = 1,   /* the patch went in */
	QP_OUT_ALREADY,       /* it was applied already */
	QP_OUT_UNDONE,        /* the patch was taken out */
	QP_OUT_NOT_APPLIED,   /* undo: it is not applied there */
	QP_OUT_REFUSED,       /* the loader said no for a reason (busy code, a
				 seccomp filter, a later patch on top...): the
				 process is unchanged */
	QP_OUT_FAILED,        /* an error (permissions, resources): unchanged */
	QP_OUT_GONE,          /* the process ended meanwhile */
	QP_OUT_NOT_YET,       /* the object is not mapped (yet): nothing done */
};

const char *qp_outcome_name(enum qp_outcome o);

enum qp_op {
	QP_OP_APPLY = 1,
	QP_OP_UNDO,
};

/* What one worker reports about one patch and one process. */
struct qp_result {
	pid_t pid;                   /* the process */
	uint32_t op;                 /* enum qp_op */
	uint32_t outcome;            /* enum qp_outcome */
	int32_t code;                /* the loader's return value */
	bool at_entry;               /* applied while held at its entry point */
	double since_exec_us;        /* daemon: its exec event .. this result; 0 if unknown */
	char id[QP_ID_MAX];          /* the patch */
	char comm[16];               /* the process's name */
	char msg[QP_ERRMSG_MAX];     /* why, for REFUSED, FAILED, GONE, NOT_YET */
	struct qp_load_stats stats;  /* the loader's figures */
};

/* The outcome of qp_load_apply()/qp_load_undo() returning @ret. */
enum qp_outcome qp_outcome_of(enum qp_op op, int ret, const struct qp_load_stats *st);

/* ------------------------------------------------------------------------ */
/* Workers (pool.c)                                                          */
/* ------------------------------------------------------------------------ */

/*
 * A pool of at most N worker processes, each forked for one job on one
 * target process.  A worker crashing or hanging does not take the others
 * or the caller down; whatever it did to its target, the kernel detaches
 * a dead tracer's tracees.  A job reports any number of qp_result records
 * through qp_pool_report(); when its worker exits without reporting, a
 * FAILED result says why.
 */
struct qp_pool;

#define QP_POOL_MAX 64 /* workers at most */

/* Runs in the worker: do the work for @pid, report with qp_pool_report(@fd). */
typedef void (*qp_job_fn)(pid_t pid, void *arg, int fd);
/* Called in the caller for each result. */
typedef void (*qp_result_fn)(const struct qp_result *r, void *arg);

int qp_pool__new(int workers, qp_result_fn done, void *done_arg, struct qp_pool **out,
		 struct qp_error *err);
/* Start a job; waits for a free worker first when all are busy. */
int qp_pool__submit(struct qp_pool *p, pid_t pid, qp_job_fn fn, void *arg,
		    struct qp_error *err);
/* Is a job for @pid running? */
bool qp_pool__has(const struct qp_pool *p, pid_t pid);
/* Jobs running. */
size_t qp_pool__running(const struct qp_pool *p);
/* Collect results for at most @timeout_ms (-1: until one job ends; 0: only
 * what is there).  Returns the number of jobs that ended. */
int qp_pool__wait(struct qp_pool *p, int timeout_ms);
/* The descriptors to poll for results, for a caller's own event loop:
 * fills at most @cap, returns how many (then call qp_pool__wait(p, 0)). */
size_t qp_pool__fds(const struct qp_pool *p, int *fds, size_t cap);
/* Also call @fn (with the done callback's argument) when a job has ended,
 * after its results. */
void qp_pool__on_end(struct qp_pool *p, void (*fn)(pid_t pid, void *arg));
/* Wait for every job, then free. */
void qp_pool__free(struct qp_pool *p);

/* In a worker: send one result. */
void qp_pool_report(int fd, const struct qp_result *r);

/* ------------------------------------------------------------------------ */
/* The patch store (store.c)                                                 */
/* ------------------------------------------------------------------------ */

#define QP_STORE_DEFAULT "/var/lib/qpatch"

#define QP_STORE_BY_NAME "by-name"     /* STORE/by-name/FILE/: .so patches for a file name */

/* One stored patch. */
struct qp_store_entry {
	char id[QP_ID_MAX];               /* the patch id (from the file; a .so's file name) */
	char bid_hex[QP_BUILD_ID_HEX];    /* the target's build-id, hex ("" when by_name) */
	char target[QP_NAME_MAX];         /* the target's name (a .so by build-id: the
					     build-id, as it names no file) */
	char group[QP_NAME_MAX + 16];     /* its directory in the store: bid_hex, or
					     "by-name/TARGET"; one group's patches stack */
	bool so;                          /* a hand-written patch library (qpatch-load --so):
					     patch is NULL, path is the library loaded */
	bool by_name;                     /* a library naming its target by file name
					     (QPATCH_TARGET): every object of that name */
	unsigned seq;                     /* order among its binary's patches, from 1 */
	bool removed;                     /* removed: to be undone where applied */
	char path[4096];                  /* its file */
	long long added;                  /* when stored (mtime), seconds since the epoch */
	size_t size;                      /* bytes */
	struct qp_patch *patch;           /* parsed (loaded .qpatch entries; owned) */
};

/* Does one of the objects @objs (qp_scan__objects) hold what @e patches? */
bool qp_store_entry__maps(const struct qp_store_entry *e, const struct qp_obj *objs, size_t n);
/* Is the file in @buf a hand-written patch library (an ELF ET_DYN), rather
 * than a .qpatch (ET_REL)? */
bool qp_host_is_so(const uint8_t *buf, size_t len);

/*
 * A directory of patches keyed by the build-id of the object they fix,
 * each binary's patches in the order they are applied.  As root, the
 * directory and every file in it must pass qp_trust_path()'s rule.
 */
struct qp_store;

/* $QPATCH_STORE, else QP_STORE_DEFAULT. */
const char *qp_store_default_dir(void);
/* Open the store at @dir (creating it, mode 0755, when @create). */
int qp_store__open(const char *dir, bool create, struct qp_store **out, struct qp_error *err);
void qp_store__free(struct qp_store *s);
const char *qp_store__dir(const struct qp_store *s);
/* (Re)read every entry and parse its patch; entries by build-id, then order,
 * removed ones last. */
int qp_store__load(struct qp_store *s, struct qp_error *err);
size_t qp_store__count(const struct qp_store *s);
const struct qp_store_entry *qp_store__entry(const struct qp_store *s, size_t i);
/* The loaded entry for @id (among the removed ones when @removed); NULL. */
const struct qp_store_entry *qp_store__find(const struct qp_store *s, const char *id,
					    bool removed);
/* Does the store hold a (not removed) patch for this build-id? */
bool qp_store__has_build_id(const struct qp_store *s, const uint8_t *id, size_t len);
/* Add the patch file at @path after the binary's others; *@out describes
 * the new entry (its patch is not kept).  Refused when the id is stored. */
int qp_store__add(struct qp_store *s, const char *path, struct qp_store_entry *out,
		  struct qp_error *err);
/* What qp_store__verify() found. */
struct qp_store_check {
	bool policy;                     /* the store has a policy file */
	bool signed_;                    /* the patch is signed */
	bool so;                         /* a hand-written patch library (never signed) */
	char key_id[QP_SIG_KEY_ID_HEX];  /* then by this key id (hex) */
	char id[QP_ID_MAX];              /* the patch id */
};
/* Would qp_store__add() accept the patch file at @path (its signature
 * under the store's policy, its contents)?  Nothing is stored. */
int qp_store__verify(struct qp_store *s, const char *path, struct qp_store_check *out,
		     struct qp_error *err);
/* Remove @id, which must be its binary's last patch: it moves to the
 * removed ones, which the daemon undoes wherever they are applied. */
int qp_store__remove(struct qp_store *s, const char *id, struct qp_error *err);

/* ------------------------------------------------------------------------ */
/* A process against the store (sync.c)                                      */
/* ------------------------------------------------------------------------ */

/* What a qp_sync_job() does. */
struct qp_sync {
	const struct qp_store *store;    /* loaded */
	const struct qp_load_opts *load; /* the loader's options (hold is set by the job) */
	int hold_ms;                     /* > 0: a process just exec'd: hold it at its entry
					    point (at most this long) and patch it there */
	double exec_ns;                  /* CLOCK_MONOTONIC of its exec, 0 when unknown */
};

/*
 * A pool job (@arg: struct qp_sync) that brings @pid in line with the
 * store: removed patches on top of its stack are undone, then each
 * binary's stored patches it lacks are applied in order (after a refusal,
 * that binary's later patches wait).  One result per operation; none when
 * there was nothing to do.
 */
void qp_sync_job(pid_t pid, void *arg, int fd);
/* Does @pid lack a stored patch for an object it maps, or hold a removed
 * one?  (Reads its map and records; does not stop it.) */
bool qp_sync_needs(struct qp_scan *scan, const struct qp_store *store, pid_t pid);

#define QP_STATUS_MAX 64

/* Where one process stands against the store. */
struct qp_status {
	pid_t pid;
	char comm[16];
	char exe[QP_HOST_PATH_MAX];                    /* its executable */
	bool relevant;                                 /* maps a stored binary or holds a
							  removed patch; nothing else is
							  filled in when false */
	const struct qp_store_entry *has[QP_STATUS_MAX];   /* stored and applied */
	const struct qp_store_entry *lacks[QP_STATUS_MAX]; /* stored, for an object it maps,
							      not applied */
	const struct qp_store_entry *to_undo[QP_STATUS_MAX]; /* removed, still applied */
	char other[QP_STATUS_MAX][QP_ID_MAX];          /* applied, never stored */
	size_t nhas, nlacks, nto_undo, nother;
};

int qp_sync_status(struct qp_scan *scan, const struct qp_store *store, pid_t pid,
		   struct qp_status *st, struct qp_error *err);

/* ------------------------------------------------------------------------ */
/* New processes (watch.c)                                                   */
/* ------------------------------------------------------------------------ */

/* A process that ran execve(); @exec_ns is when (CLOCK_MONOTONIC), 0 when
 * unknown (found by polling). */
typedef void (*qp_exec_fn)(pid_t pid, double exec_ns, void *arg);

struct qp_watch;

/*
 * Listen to the kernel's process events (needs CAP_NET_ADMIN); when that
 * is not possible (or @poll_only), the watch polls: qp_watch__fd() is -1
 * and err says why events are unavailable.  Fails only for lack of memory.
 */
int qp_watch__new(bool poll_only, struct qp_watch **out, struct qp_error *err);
void qp_watch__free(struct qp_watch *w);
/* The socket to poll for events, -1 when polling. */
int qp_watch__fd(const struct qp_watch *w);
/* Events waiting on the socket: @fn for each exec.  -ENOBUFS when some
 * were lost (the kernel's buffer overflowed): rescan. */
int qp_watch__read(struct qp_watch *w, qp_exec_fn fn, void *arg);
/* Polling: @fn for each process not seen by the previous call (none on
 * the first call). */
int qp_watch__poll(struct qp_watch *w, qp_exec_fn fn, void *arg, struct qp_error *err);

/* ------------------------------------------------------------------------ */
/* The daemon (daemon.c)                                                     */
/* ------------------------------------------------------------------------ */

struct qp_daemon_opts {
	const char *store_dir;           /* the store (created when missing) */
	int jobs;                        /* workers at once, 1..QP_POOL_MAX */
	int hold_ms;                     /* a new process of a stored executable is held at its
					    entry point, waiting for it at most this long; 0: never */
	int rescan_ms;                   /* every process is looked at again this often
					    (libraries loaded later, lost events); 0: never */
	int poll_ms;                     /* without process events: /proc polled this often */
	bool poll_only;                  /* do not use process events */
	bool once;                       /* bring the running processes up to date, then return */
	const struct qp_load_opts *load; /* the loader's options */
	/* one line per event, syslog priority (LOG_INFO...) */
	void (*log)(int prio, const char *msg, void *arg);
	void *log_arg;
};

/*
 * Keep every process of the store's binaries patched until SIGTERM or
 * SIGINT (SIGHUP reloads the store); with @once, return when the running
 * processes are up to date (QP_EREFUSED when some could not be).  Blocks
 * SIGTERM, SIGINT and SIGHUP in the calling thread while it runs.
 */
int qp_daemon_run(const struct qp_daemon_opts *o, struct qp_error *err);

/* ------------------------------------------------------------------------ */
/* One patch, every process (all.c)                                          */
/* ------------------------------------------------------------------------ */

struct qp_all_opts {
	int jobs;                            /* workers at once */
	const struct qp_load_opts *load;     /* the loader's options, per process */
	qp_result_fn done;                   /* called with each result */
	void (*found)(pid_t pid, void *arg); /* called for each process chosen; may be NULL */
	void *done_arg;                      /* their argument */
};

/* Apply @patch to every process that maps its object (by build-id). */
int qp_host_apply_all(const struct qp_patch *patch, const struct qp_all_opts *o,
		      struct qp_error *err);
/* Apply the patch library @path (what @info says of it) to every process
 * that maps its target (by build-id or file name), with qp_load_so(). */
int qp_host_apply_so_all(const char *path, const struct qp_so_info *info,
			 const struct qp_all_opts *o, struct qp_error *err);
/* Undo the patch @id in every process where it is applied. */
int qp_host_undo_all(const char *id, const struct qp_all_opts *o, struct qp_error *err);

/* ------------------------------------------------------------------------ */
/* Trust (trust.c)                                                           */
/* ------------------------------------------------------------------------ */

/*
 * May root trust the file (or directory) at @path?  When the caller is
 * root: it and every directory above it must be owned by root and not
 * writable by group or others (group root, and a directory with the
 * sticky bit such as /tmp, are fine); when not root, nothing is required
 * (the kernel's checks of that user apply).  0, or -EPERM with the
 * offending path, owner and mode in @err.
 */
int qp_trust_path(const char *path, struct qp_error *err);
#define QP_TRUST_MAX_PATCH (256u << 20) /* bytes of a patch file read at most */

/*
 * Read the regular file @path whole (at most @max bytes) as root may: the
 * file is checked on the open descriptor (fstat), its directories by path,
 * and the bytes returned are the ones read from that descriptor.  *@buf
 * is malloc'ed.
 */
int qp_trust_read(const char *path, size_t max, uint8_t **buf, size_t *len,
		  struct qp_error *err);
/* The same, parsed and validated as a patch (qp_patch__open_mem). */
struct qp_patch *qp_trust_open_patch(const char *path, struct qp_error *err);

/* ------------------------------------------------------------------------ */
/* Signature policy (policy.c)                                               */
/* ------------------------------------------------------------------------ */

/*
 * Which patches are accepted, by signature (docs/host.md): unsigned ones
 * are refused when the policy requires a signature, and a signed one must
 * verify with one of its trusted keys (when it has any).
 */
struct qp_policy;

/* The store's policy file STORE/policy (read under the trust rules):
 * `require-signature` and `trusted-key PATH` lines (PATH: a PEM public key
 * or a directory of *.pem keys, relative to the store), `#` comments.
 * *@out is NULL when there is no such file: any valid patch is accepted. */
int qp_policy__load(const char *store_dir, struct qp_policy **out, struct qp_error *err);
/* A policy requiring a signature by one of the keys at @paths (files or
 * directories), as qpatch-load --verify gives them. */
int qp_policy__from_keys(const char *const *paths, size_t n, struct qp_policy **out,
			 struct qp_error *err);
/* 0 when the patch file @buf (named @name) is acceptable, else
 * QP_ESIGNATURE and why.  A NULL policy accepts everything. */
int qp_policy__check(const struct qp_policy *pol, const void *buf, size_t len,
		     const char *name, struct qp_error *err);
bool qp_policy__requires(const struct qp_policy *pol);
/* 0 when a hand-written patch library @name is acceptable: it carries no
 * signature, so a policy that requires one refuses it (QP_ESIGNATURE). */
int qp_policy__check_so(const struct qp_policy *pol, const char *name, struct qp_error *err);
/* May root load the library at @path: the trust rules on the file (as for
 * every patch file), and the store's policy (qp_policy__check_so)? */
int qp_so_acceptable(const char *path, struct qp_error *err);
void qp_policy__free(struct qp_policy *pol);
/* qp_trust_open_patch(), with @pol checked on the bytes read first. */
struct qp_patch *qp_trust_open_checked(const char *path, const struct qp_policy *pol,
				       struct qp_error *err);

#endif
