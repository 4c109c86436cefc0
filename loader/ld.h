/* SPDX-License-Identifier: MIT */
/*
 * Internal to the loader: the context of one apply or undo, shared by
 * apply.c (applying), safety.c (may the code change now?), records.c (what
 * is applied) and undo.c.
 */
#ifndef QPATCH_LOADER_LD_H
#define QPATCH_LOADER_LD_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "loader.h"
#include "proc.h"
#include "qpatch/elf.h"
#include "seccomp.h"
#include "unwind.h"

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

#define LD_PAGE 4096ull
#define LD_STUB_SIZE 16     /* jmp *0(%rip); .quad addr; 2 bytes pad */
#define LD_MAX_FUNC (1u << 20) /* decode at most this much of an old function */
#define LD_RANGE (1ull << 31)
#define LD_IFUNC_TIMEOUT_MS 200
#define LD_HEAP_ROOM (256ull << 20) /* kept free above [heap] */
#define LD_MAX_CFI (64ull << 20)   /* most bytes of a patch's CFI read back */
#define LD_LEAVE_MS 1000           /* default qp_load_opts.leave_ms */
#define LD_LEAVE_AFTER 20          /* stop attempts before a busy thread is run out */
#define LD_LEAVE_RUNS 16           /* threads run out, at most, per apply */
#define LD_LOCK_DIR "/run/qpatch"  /* the locks of processes being worked on (target.c) */
#define LD_LOCK_PATH 128           /* room for a lock's path */
/* Most stack bytes read for one conservative scan of a stack; a stack used
 * deeper than that is unwound instead. */
#define LD_STACK_PREFILTER (8u << 20)
/* Coroutine contexts (coro.c): a mapping other than [heap] larger than
 * this is not scanned for them (guest RAM of a VM; a glibc malloc arena is
 * at most 64 MiB), nor more than LD_CORO_SCAN_TOTAL bytes in all (about
 * 0.5-1 ms per MiB; beyond it, undo keeps the mappings it undoes); at most
 * LD_CORO_MAX_CTX contexts are kept.  A coroutine stack larger than
 * LD_CORO_STACK_MAX (QEMU's are 1 MiB, a thread's 8 MiB by default) is
 * read before the stop, not in the window, when undo judges it without a
 * context. */
#define LD_CORO_SCAN_MAP (64ull << 20)
#define LD_CORO_STACK_MAX (8ull << 20)
#define LD_CORO_SCAN_TOTAL (1ull << 30)
#define LD_CORO_MAX_CTX 65536

static inline uint64_t page_up(uint64_t x)
{
	return (x + LD_PAGE - 1) & ~(LD_PAGE - 1);
}

static inline double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

/* One redirected function being prepared. */
struct ld_func {
	const struct qp_rela *rela;   /* its QP_R_REPLACE entry */
	struct qp_record_func rec;    /* what goes into the record */
	bool written;                 /* jump written (for rollback) */
	bool calls;                   /* QP_R_CALLS: no jump, its call sites only */
};

/* One call site being rewritten (sites.c). */
struct ld_site {
	struct qp_record_site rec;    /* what goes into the record */
	uint8_t rel_off;              /* offset of the rel32 field */
	bool written;                 /* rewritten (for rollback) */
};

/* A thread-local variable the patch refers to (tls.c). */
struct ld_tls {
	uint64_t value;      /* its offset in its module's TLS block */
	uint64_t modid;      /* the module's TLS id; 0 when not needed */
	int64_t offset;      /* static TLS: the block is at thread pointer - offset */
	bool is_static;      /* offset is known */
	char module[64];     /* file name of the module, for messages */
};

/* A dynamic symbol found in one of the loaded objects. */
struct ld_dsym {
	const struct qp_map *map; /* the object's first mapping */
	uint64_t bias;       /* its load bias */
	uint64_t value;      /* st_value */
	uint8_t type;        /* STT_* */
};

/* An address range threads must not be in or return into. */
struct ld_range {
	uint64_t lo, hi;     /* [lo, hi) */
	uint64_t entry;      /* a thread exactly here (or before, from lo) is fine; 0 = none */
	const char *name;    /* for messages */
	const char *in;      /* where that is, e.g. "patch 'fix-1'"; NULL: the target */
	bool check_stack;    /* also frames below the thread's own (v[0] decides) */
};

/* A system call the loader will inject into the target (ld_syscall). */
struct ld_call {
	long nr;             /* SYS_* (x86-64) */
	const char *name;    /* for messages: "memfd_create" */
	int nargs;           /* arguments used */
	uint64_t args[6];    /* as they will be passed (the rest 0) */
};

#define LD_MAX_DECLARED 16 /* distinct system calls one operation may declare */

/*
 * What seccomp lets threads[0], the thread that runs the injected system
 * calls, do (seccomp.c).  Its filters are read once per stop.
 */
struct ld_seccomp {
	unsigned long stop;            /* proc.stops when read; 0: not read */
	pid_t tid;                     /* the thread they were read from */
	int mode;                      /* its Seccomp: 0 none, 1 strict, 2 filter */
	bool unread;                   /* mode 2, the filters could not be read or
					  evaluated, and ignore_seccomp says go on */
	struct qp_seccomp_prog *progs; /* its filters, newest first (owned) */
	size_t nprogs;                 /* count of progs */
	long declared[LD_MAX_DECLARED]; /* system calls ld_seccomp_check() was told of */
	size_t ndeclared;              /* count of declared */
};

struct ld_ctx {
	pid_t pid;                    /* target process */
	const struct qp_patch *patch; /* the patch */
	const struct qp_load_opts *opts; /* retry policy */
	struct qp_load_stats *stats;  /* filled as we go */
	struct qp_proc proc;          /* ptrace state */
	struct qp_maps maps;          /* memory map before stopping */
	uint64_t bias;                /* load bias of the target object */
	uint64_t obj_lo, obj_hi;      /* address range of the target object */
	const struct qp_map *target;  /* its offset-0 mapping (in maps) */
	bool tls_main;                /* target is the main program (static TLS at a known offset) */
	uint64_t tls_block;           /* size of its TLS block: thread pointer - block start */
	uint64_t *symaddr;            /* resolved address per src symbol */
	bool *ifunc;                  /* per src symbol: symaddr is an IFUNC resolver */
	struct ld_tls *tls;           /* per src symbol: thread-local variables */
	uint64_t r_debug;             /* address of _r_debug, 0 until needed */
	struct ld_func *funcs;        /* redirected functions */
	size_t nfuncs;                /* count of funcs */
	struct ld_site *sites;        /* call sites rewritten (sites.c) */
	size_t nsites;                /* count of sites */
	uint64_t seq;                 /* sequence number for this patch */
	uint64_t region, region_size; /* the mapping, once created */
	uint64_t hole;                /* where the mapping goes, chosen before stopping */
	uint64_t rec_size, image_off, extra_off; /* layout inside it */
	uint8_t *buf;                 /* local copy of the whole mapping */
	struct qp_unwind *uw;         /* stack unwinder, NULL if unavailable */
	struct qp_applied *applied;   /* apply: the patches applied before (records) */
	size_t napplied;              /* count of applied */
	struct ld_range *busy;        /* apply: code threads must not be in */
	size_t nbusy;                 /* count of busy */
	char (*busy_in)[QP_ID_MAX + 16]; /* their "in" strings */
	size_t busy_thread;           /* the thread ld_apply_busy() found busy (index) */
	bool busy_coro;               /* it found a suspended coroutine busy instead */
	struct ld_coro *coro;         /* suspended coroutines found (coro.c), or NULL */
	bool need_low;                /* the patch has 32-bit absolute references to itself */
	bool undo;                    /* undoing (for messages) */
	enum qp_fault step;           /* last step of QP_FAULTS reached */
	double stop_t0;               /* when the last stop attempt began */
	double stopped_t0;            /* when its last thread stopped */
	sigset_t sigmask;             /* signal mask before ld_block_signals() */
	struct ld_seccomp sc;         /* seccomp of the syscall thread (seccomp.c) */
	struct ld_range *so_unsafe;   /* .so patches: code a thread that runs dlopen or
					 dlclose must not be in (ld_so_unsafe) */
	size_t nso_unsafe;            /* count of so_unsafe */
	uint64_t so_dlopen, so_dlclose, so_dlerror; /* those functions in the target */
	uint64_t exe_dev, exe_ino;    /* the program the process ran at the start (ld_execed) */
	double phase_t;               /* when the last phase ended (ld_phase), 0: not begun */
	bool cfi_lazy;                /* c->uw is made when a stack needs it (ld_cfi_lazy) */
	bool cfi_wanted;              /* a busy check needed it and said busy: the stop is
					 let go, it is loaded, the attempt made again */
	const struct qp_applied *cfi_applied; /* the patches whose CFI it gets */
	size_t cfi_napplied;          /* count of cfi_applied */
	int lock_fd;                  /* the process's lock (ld_lock), -1 when not held */
	char lock_path[LD_LOCK_PATH]; /* its file */
};

/* apply.c */
void ld_map_file(pid_t pid, const struct qp_map *m, char *out, size_t size);
/* [*@lo, *@hi): from the lowest start to the highest end of the mappings of @path. */
void ld_object_range(const struct qp_maps *maps, const char *path, uint64_t *lo, uint64_t *hi);
int ld_lookup_dynsym(struct ld_ctx *c, const char *name, bool tls, struct ld_dsym *out);
/* Call @fn for each ELF file mapped in the process once, in map order (by
 * path, from its mapping at offset 0; memfds left out; a file that does
 * not open is skipped), opened with its dynamic symbols, with its load
 * bias; stops at the first non-zero return of @fn and returns it. */
int ld_for_each_object(struct ld_ctx *c,
		       int (*fn)(struct ld_ctx *c, const struct qp_map *m, const struct qp_elf *e,
				 uint64_t bias, void *arg),
		       void *arg);
void ld_block_signals(sigset_t *old);
int ld_fault(struct ld_ctx *c, enum qp_fault step, struct qp_error *err);
int ld_check_death(struct ld_ctx *c, int ret, struct qp_error *err);
int ld_syscall(struct ld_ctx *c, long nr, const char *what, int nargs, const uint64_t *args,
	       int64_t *ret, struct qp_error *err);
void ld_jmp_encode(uint8_t *out, uint64_t from, uint64_t to);
/* Before apply or undo touches the process: may it be traced, its lock
 * (c->lock_fd, released by ld_unlock()), a target that can be patched;
 * a process held at its entry point stays held. */
int ld_begin(struct ld_ctx *c, struct qp_error *err);
/* Where an injected call may put a string: below the red zone of
 * threads[0]'s stack (its 512 bytes saved and restored around the call). */
uint64_t ld_scratch(const struct ld_ctx *c);
/* Map c->region_size bytes of a memfd named qpatch:@id at c->hole, taking
 * another hole if something took that one meanwhile; sets c->region. */
int ld_map(struct ld_ctx *c, const char *id, struct qp_error *err);
/* A free, page-aligned range of @size within reach of the target object. */
int ld_find_hole(struct ld_ctx *c, const struct qp_maps *maps, uint64_t size,
		 uint64_t *out, struct qp_error *err);
/* Every thread stopped: each function's jump to its new_addr (the saved
 * bytes checked first), then the record at c->region says applied. */
int ld_write_jumps(struct ld_ctx *c, struct qp_error *err);
/* Every thread stopped: the jumps ld_write_jumps() wrote go again. */
void ld_unjump(struct ld_ctx *c);
int ld_tries(const struct ld_ctx *c);
int ld_pause(struct ld_ctx *c, struct qp_error *err);
int ld_while_stopped(struct ld_ctx *c, bool (*busy)(struct ld_ctx *, char *, size_t),
		     int (*work)(struct ld_ctx *, struct qp_error *), struct qp_error *err);
int ld_with_one(struct ld_ctx *c, int (*work)(struct ld_ctx *, struct qp_error *),
		struct qp_error *err);
void ld_ctx_release(struct ld_ctx *c);
/* Did the process call execve() since the operation began? */
bool ld_execed(struct ld_ctx *c);

/* timing.c */
/* Phase @name ends now: the time since the previous one ended (or since
 * c->phase_t was set) goes to c->stats->phases under @name (a static
 * string). */
void ld_phase(struct ld_ctx *c, const char *name);

/* target.c */
/*
 * May the loader work on @pid?  Refused (nothing changed) when another
 * program traces it, it is a zombie, it is stopped by a signal (unless
 * @held: the caller holds it, qp_hold), or it runs a program that is not
 * x86-64.
 */
int ld_target_check(pid_t pid, bool held, struct qp_error *err);
/* Only whether @pid is gone or a zombie (cheap, before anything else). */
int ld_target_ended(pid_t pid, struct qp_error *err);
/* The process tracing @pid, 0 when none; @why says which. */
int ld_tracer(pid_t pid, char *why, size_t size);
/*
 * Take the lock of process @pid (flock(2) on LD_LOCK_DIR/PID-START.lock,
 * START its start time, so a later process with the same pid has another
 * lock), waiting at most @wait_ms for another loader to let it go.  The
 * kernel drops a flock with its holder, so a loader that dies leaves no
 * stale lock.  *@fd and @path (LD_LOCK_PATH bytes) for ld_unlock().
 */
int ld_lock(pid_t pid, int wait_ms, int *fd, char *path, size_t path_size, struct qp_error *err);
void ld_unlock(int fd, const char *path);
/* Does some loader hold the lock of @pid now? */
bool ld_locked(pid_t pid);

/* tls.c */
int ld_tls_resolve(struct ld_ctx *c, struct qp_error *err);

/* records.c */
/* With @locked (the caller holds the process's lock), every pending
 * record is abandoned; else one is when it names another process or no
 * loader holds the lock. */
int ld_list(struct qp_proc *p, const struct qp_maps *maps, bool locked, struct qp_applied **out,
	    size_t *count, struct qp_error *err);
/*
 * The bytes a function had at @site before the patches applied to it.
 * When applied patches (@v, @n, in order of application) redirect it, the
 * latest one's jump is what the process holds at @site, and the first one
 * saved the instructions the jumps cover: @cur (@len bytes read at @site)
 * is overwritten with those, so that the function can be decoded (a jump
 * that ends inside an instruction leaves that instruction's tail behind
 * it).  False, @cur untouched, when no applied patch has its jump at @site
 * or @cur does not hold that jump.
 */
bool ld_site_original(const struct qp_applied *v, size_t n, uint64_t site, uint8_t *cur,
		      size_t len);
/* undo.c: remove the mappings of @v that are undone or abandoned and
 * that no thread uses (every thread stopped to check) */
int ld_reap(struct ld_ctx *c, struct qp_applied *v, size_t n, struct qp_error *err);
/* Is record @a to be removed: undone, or pending and abandoned with no
 * jump of it in place (read with the target stopped)? */
bool ld_reapable(struct ld_ctx *c, const struct qp_applied *a);

/* seccomp.c */
/*
 * With the target stopped, before the first injected system call: would
 * every call of @v (the calls the operation may inject, with the arguments
 * it will pass) run in threads[0] under its seccomp filters?  Refused
 * (QP_ESECCOMP, "...; nothing was changed") when one would not; the calls
 * are declared for ld_seccomp_verify().
 */
int ld_seccomp_check(struct ld_ctx *c, const struct ld_call *v, size_t n, struct qp_error *err);
/* Right before one call is injected (ld_syscall): it must have been
 * declared, and is judged again with its real arguments. */
int ld_seccomp_verify(struct ld_ctx *c, const struct ld_call *call, struct qp_error *err);
/* The file descriptor the target's next open will get (the lowest free
 * one of threads[0]'s table), for the arguments of a plan; a guess when
 * it cannot be read (ld_seccomp_verify judges the real one), 0 when no
 * filter will judge it. */
uint64_t ld_seccomp_next_fd(struct ld_ctx *c);
void ld_seccomp_release(struct ld_seccomp *sc);

/* sites.c: the direct call sites of replaced functions */
/* Find and check in the process the sites of the functions that need
 * them (QP_R_CALLS, rewrite_calls, or sites an applied patch rewrote). */
int ld_sites_find(struct ld_ctx *c, struct qp_error *err);
/* Their new bytes, once the new functions' addresses are known; and the
 * pages that hold them made the process's own (before the stop, so that
 * the window does not pay for the copies). */
int ld_sites_encode(struct ld_ctx *c, struct qp_error *err);
/* Every thread stopped: rewrite them (each checked first); on failure
 * ld_sites_unwrite() puts back those written. */
int ld_sites_write(struct ld_ctx *c, struct qp_error *err);
void ld_sites_unwrite(struct ld_ctx *c);
/* A thread whose pc is strictly inside a site instruction. */
bool ld_sites_busy(struct ld_ctx *c, char *why, size_t size);
/* Undo (c->sites from the record): check that every site still holds what
 * was written, put back what was there; on failure they are all rewritten
 * as they were. */
int ld_sites_restore(struct ld_ctx *c, struct qp_error *err);
/* sothread.c: the thread that runs dlopen/dlclose for hand-written .so patches */
#define LD_SO_CALL_MS 10000 /* most a dlopen or dlclose in the target may take */
#define LD_SO_ERRMSG 400    /* bytes of dlerror()'s message read */
/* While the target runs: find dlopen, dlclose and dlerror in it, and the
 * code a thread running them must not be in (c->so_*).  QP_EUNSUPP when
 * the process has no dlopen. */
int ld_so_unsafe(struct ld_ctx *c, struct qp_error *err);
/* Every thread stopped: move a thread that may run dlopen/dlclose (not
 * inside the dynamic linker or malloc) to threads[0]; false, with the
 * reason, when none may. */
bool ld_so_pick(struct ld_ctx *c, char *why, size_t size);
/* threads[0] held (picked by ld_so_pick): dlclose the library of .so patch
 * @a.  0, or an error (the library is then still loaded). */
int ld_so_close(struct ld_ctx *c, const struct qp_applied *a, struct qp_error *err);
/* Stop every thread, pick one with ld_so_pick (retrying a while), let the
 * others go, run @work with it, resume; the time goes into held_us. */
int ld_so_with_safe(struct ld_ctx *c, int (*work)(struct ld_ctx *, struct qp_error *),
		    struct qp_error *err);
/* threads[0] held: dlclose(@handle) in the target, dlerror's message on failure. */
int ld_so_dlclose(struct ld_ctx *c, uint64_t handle, struct qp_error *err);
/* threads[0] held: the target's dlerror() message into @out. */
void ld_so_dlerror(struct ld_ctx *c, char *out, size_t size);
/* coro.c */
/* While the target runs: find its coroutine stacks and the contexts
 * (jmp_bufs, ucontext_ts) of coroutines suspended on them or on malloc'd
 * stacks, into c->coro (replaced); counts into c->stats. */
int ld_coro_find(struct ld_ctx *c, struct qp_error *err);
/*
 * Every thread stopped: is a suspended coroutine found by ld_coro_find()
 * inside one of the ranges, or due to return into one?  With @whole, a
 * coroutine stack with no context found counts as busy when any word of
 * it points into the ranges, and so does a search cut short by its limit
 * (undo: a mapping may stay, never go early).
 */
bool ld_coro_busy(struct ld_ctx *c, const struct ld_range *v, size_t n, bool whole,
		  char *why, size_t size);
void ld_coro_free(struct ld_coro *k);

/* safety.c */
const struct ld_range *ld_stack_scan(struct ld_ctx *c, const struct qp_maps *maps, uint64_t from,
				     uint64_t limit, const struct ld_range *v, size_t n,
				     uint64_t *where, bool *complete);
bool ld_context_in(struct ld_ctx *c, const struct qp_maps *maps,
		   const struct user_regs_struct *regs, const char *who,
		   const struct ld_range *v, size_t n, char *why, size_t why_size);
bool ld_thread_in(struct ld_ctx *c, const struct qp_thread *t, const struct ld_range *v,
		  size_t n, char *why, size_t why_size);
/* What apply must find no thread in: each old function (a thread at its
 * very start is fine, unless it has no jump), the old functions' cold
 * parts, and each function's replacement in patches applied before (for
 * a .so patch, its whole library).  With allow_active, only the bytes the
 * jump takes.  c->patch NULL: a hand-written .so. */
int ld_busy_ranges(struct ld_ctx *c, struct qp_error *err);
bool ld_apply_busy(struct ld_ctx *c, char *why, size_t size);
#define LD_EXIT_FRAMES 256
/* Where thread @t leaves the code being replaced for good: the return
 * address of its outermost frame in it; 0 when that cannot be told (its
 * stack is not unwound to the end) or it is in none. */
uint64_t ld_exit_point(struct ld_ctx *c, const struct qp_thread *t);
bool ld_region_busy(struct ld_ctx *c, const struct qp_applied *a, char *why, size_t why_size);
void ld_patch_cfi(struct ld_ctx *c, const struct qp_applied *v, size_t n);
/*
 * Call frame information on demand: the unwinder (c->uw) of every mapped
 * object, and the CFI of the patches @v applied before, are loaded only
 * when a stack needs unwinding (ld_cfi_load).  Most stops find no word of
 * any stack pointing into the code being replaced and need none of it.
 */
void ld_cfi_lazy(struct ld_ctx *c, const struct qp_applied *v, size_t n);
/* Load it now, if it was left for later (the target may be stopped or not). */
void ld_cfi_load(struct ld_ctx *c);

#endif
