// SPDX-License-Identifier: MIT
/* libdw loaded on demand: see dwlib.h. */
#define QP_DWLIB_IMPL
#include "dwlib.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>

struct qp_dw_api qp_dw;

static char *dw_debuginfo_path; /* libdwfl wants a pointer; NULL = its default search */
static Dwfl_Callbacks dw_proc_callbacks = { .debuginfo_path = &dw_debuginfo_path };
static Dwfl_Callbacks dw_offline_callbacks = { .debuginfo_path = &dw_debuginfo_path };

static struct {
	bool ok;             /* every function was found */
	char why[256];       /* else why not */
} dw_state;
static pthread_once_t dw_once = PTHREAD_ONCE_INIT;

static void dw_open(void)
{
	void *h = dlopen("libdw.so.1", RTLD_NOW | RTLD_LOCAL);
	const char *missing = NULL;

	if (!h) {
		const char *e = dlerror();

		snprintf(dw_state.why, sizeof(dw_state.why), "%s", e ? e : "dlopen failed");
		return;
	}
#define QP_DW_SYM(f)                                       \
	if (!missing && !(*(void **)&qp_dw.f = dlsym(h, #f))) \
		missing = #f;
	QP_DW_FUNCS(QP_DW_SYM)
#undef QP_DW_SYM
	if (missing) {
		snprintf(dw_state.why, sizeof(dw_state.why), "it has no '%s'", missing);
		return;
	}
	dw_proc_callbacks.find_elf = qp_dw.dwfl_linux_proc_find_elf;
	dw_proc_callbacks.find_debuginfo = qp_dw.dwfl_standard_find_debuginfo;
	dw_offline_callbacks.find_elf = qp_dw.dwfl_build_id_find_elf;
	dw_offline_callbacks.find_debuginfo = qp_dw.dwfl_standard_find_debuginfo;
	dw_offline_callbacks.section_address = qp_dw.dwfl_offline_section_address;
	dw_state.ok = true;
}

int qp_dw_load(const char *what, struct qp_error *err)
{
	pthread_once(&dw_once, dw_open);
	if (dw_state.ok)
		return 0;
	return qp_seterr(err, -ELIBACC, "cannot load libdw.so.1, which %s: %s", what, dw_state.why);
}

const Dwfl_Callbacks *qp_dw_proc_callbacks(void)
{
	return &dw_proc_callbacks;
}

const Dwfl_Callbacks *qp_dw_offline_callbacks(void)
{
	return &dw_offline_callbacks;
}
