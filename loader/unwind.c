// SPDX-License-Identifier: MIT
/*
 * Thread stacks of a live process, unwound by libdwfl from the CFI of every
 * mapped object.  The loader stops the threads itself, so libdwfl is told
 * they are already ptrace-stopped and never attaches or detaches.
 */
#include <errno.h>
#include <elfutils/libdwfl.h>
#include <stdbool.h>
#include <stdlib.h>

#include "unwind.h"

#define UNWIND_MAX_DEPTH 512
#define UNWIND_REG_SP 7 /* DWARF register number of %rsp on x86-64 */

struct qp_unwind {
	Dwfl *dwfl;     /* the session */
	pid_t pid;      /* process */
	bool attached;  /* dwfl_linux_proc_attach done */
};

static char *unwind_debuginfo_path; /* libdwfl wants a pointer; NULL = default */

static const Dwfl_Callbacks unwind_callbacks = {
	.find_elf = dwfl_linux_proc_find_elf,
	.find_debuginfo = dwfl_standard_find_debuginfo,
	.debuginfo_path = &unwind_debuginfo_path,
};

/* Load every module's ELF and CFI now, while the target still runs, so
 * that unwinding with the target stopped only reads its stacks. */
static int unwind_prewarm(Dwfl_Module *mod, void **userdata, const char *name,
			  Dwarf_Addr start, void *arg)
{
	Dwarf_Addr bias;

	if (dwfl_module_getelf(mod, &bias)) {
		dwfl_module_eh_cfi(mod, &bias);
	}
	return DWARF_CB_OK;
}

int qp_unwind__new(pid_t pid, struct qp_unwind **out, struct qp_error *err)
{
	struct qp_unwind *u = calloc(1, sizeof(*u));

	*out = NULL;
	if (!u)
		return qp_seterr(err, -ENOMEM, "out of memory");
	u->pid = pid;
	u->dwfl = dwfl_begin(&unwind_callbacks);
	if (!u->dwfl || dwfl_linux_proc_report(u->dwfl, pid) ||
	    dwfl_report_end(u->dwfl, NULL, NULL)) {
		qp_seterr(err, -EINVAL, "process %d: cannot read its modules for unwinding: %s",
			  (int)pid, dwfl_errmsg(-1));
		qp_unwind__free(u);
		return err ? err->code : -EINVAL;
	}
	dwfl_getmodules(u->dwfl, unwind_prewarm, NULL, 0);
	*out = u;
	return 0;
}

struct unwind_walk {
	int (*frame)(uint64_t pc, int depth, void *arg); /* caller's callback */
	void *arg;      /* its argument */
	int depth;      /* frames seen */
	int stop;       /* callback's non-zero result */
	uint64_t sp;    /* stack pointer of the last frame */
};

static int unwind_frame(Dwfl_Frame *state, void *arg)
{
	struct unwind_walk *w = arg;
	Dwarf_Addr pc;
	Dwarf_Word sp;
	bool activation;

	if (!dwfl_frame_pc(state, &pc, &activation))
		return DWARF_CB_ABORT;
	if (!activation)
		pc--; /* a return address: the call is the byte before */
	if (dwfl_frame_reg(state, UNWIND_REG_SP, &sp) == 0)
		w->sp = sp;
	w->stop = w->frame(pc, w->depth++, w->arg);
	if (w->stop || w->depth >= UNWIND_MAX_DEPTH)
		return DWARF_CB_ABORT;
	return DWARF_CB_OK;
}

int qp_unwind__thread(struct qp_unwind *u, pid_t tid,
		      int (*frame)(uint64_t pc, int depth, void *arg), void *arg,
		      uint64_t *sp)
{
	struct unwind_walk w = { .frame = frame, .arg = arg };
	int ret;

	if (!u->attached) {
		if (dwfl_linux_proc_attach(u->dwfl, u->pid, true)) {
			*sp = 0;
			return QP_UNWIND_PARTIAL;
		}
		u->attached = true;
	}
	ret = dwfl_getthread_frames(u->dwfl, tid, unwind_frame, &w);
	if (w.stop)
		return w.stop;
	*sp = w.sp;
	/* 0: the outermost frame (return address undefined in its CFI) was
	 * reached; -1: a frame could not be unwound (no CFI, bad memory) */
	if (ret || w.depth >= UNWIND_MAX_DEPTH)
		return QP_UNWIND_PARTIAL;
	return 0;
}

void qp_unwind__free(struct qp_unwind *u)
{
	if (!u)
		return;
	if (u->dwfl)
		dwfl_end(u->dwfl);
	free(u);
}
