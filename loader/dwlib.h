/* SPDX-License-Identifier: MIT */
/*
 * libdw, loaded with dlopen() by the first part of the loader that needs
 * it (the stack unwinder, the type check of a .so patch), so that a run
 * that needs neither does not pay for loading it (start-up time of
 * qpatch-load).  A file that calls libdw includes this header after
 * <elfutils/libdw.h> and <elfutils/libdwfl.h>, calls qp_dw_load() first,
 * and then calls libdw's functions by their own names, which from here on
 * name the loaded ones.
 */
#ifndef QPATCH_LOADER_DWLIB_H
#define QPATCH_LOADER_DWLIB_H

#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#include <stdbool.h>

#include "qpatch/error.h"

/* Every libdw function the loader calls. */
#define QP_DW_FUNCS(X)                                                             \
	X(dwarf_addrdie) X(dwarf_aggregate_size) X(dwarf_attr) X(dwarf_attr_integrate) \
	X(dwarf_cfi_addrframe) X(dwarf_cfi_end) X(dwarf_child) X(dwarf_diename)       \
	X(dwarf_entrypc) X(dwarf_errmsg) X(dwarf_formref_die) X(dwarf_formudata)      \
	X(dwarf_frame_cfa) X(dwarf_frame_info) X(dwarf_frame_register)                 \
	X(dwarf_getcfi_elf) X(dwarf_hasattr) X(dwarf_lowpc) X(dwarf_nextcu)            \
	X(dwarf_offdie) X(dwarf_siblingof) X(dwarf_tag)                                \
	X(dwfl_addrmodule) X(dwfl_begin) X(dwfl_build_id_find_elf) X(dwfl_end)        \
	X(dwfl_errmsg) X(dwfl_getmodules) X(dwfl_linux_proc_find_elf)                  \
	X(dwfl_linux_proc_report) X(dwfl_module_dwarf_cfi) X(dwfl_module_eh_cfi)       \
	X(dwfl_module_getdwarf) X(dwfl_module_getelf) X(dwfl_module_info)              \
	X(dwfl_offline_section_address) X(dwfl_report_end) X(dwfl_report_offline)     \
	X(dwfl_standard_find_debuginfo)

/* libdw's functions once loaded: the process's one copy of their
 * addresses, written once by qp_dw_load(), never after. */
struct qp_dw_api {
#define QP_DW_PTR(f) __typeof__(&f) f;
	QP_DW_FUNCS(QP_DW_PTR)
#undef QP_DW_PTR
};
extern struct qp_dw_api qp_dw;

/* Load libdw (once per process, thread-safe).  0, or a message saying
 * that libdw.so.1, needed for @what ("unwinds stacks"), cannot be loaded,
 * and why. */
int qp_dw_load(const char *what, struct qp_error *err);

/* Once loaded: libdwfl's callbacks for a live process's modules (its maps)
 * and for files read offline (the debug file found by build-id or debug
 * link), each with libdw's standard search for debug files. */
const Dwfl_Callbacks *qp_dw_proc_callbacks(void);
const Dwfl_Callbacks *qp_dw_offline_callbacks(void);

#ifndef QP_DWLIB_IMPL
#define dwarf_addrdie qp_dw.dwarf_addrdie
#define dwarf_aggregate_size qp_dw.dwarf_aggregate_size
#define dwarf_attr qp_dw.dwarf_attr
#define dwarf_attr_integrate qp_dw.dwarf_attr_integrate
#define dwarf_cfi_addrframe qp_dw.dwarf_cfi_addrframe
#define dwarf_cfi_end qp_dw.dwarf_cfi_end
#define dwarf_child qp_dw.dwarf_child
#define dwarf_diename qp_dw.dwarf_diename
#define dwarf_entrypc qp_dw.dwarf_entrypc
#define dwarf_errmsg qp_dw.dwarf_errmsg
#define dwarf_formref_die qp_dw.dwarf_formref_die
#define dwarf_formudata qp_dw.dwarf_formudata
#define dwarf_frame_cfa qp_dw.dwarf_frame_cfa
#define dwarf_frame_info qp_dw.dwarf_frame_info
#define dwarf_frame_register qp_dw.dwarf_frame_register
#define dwarf_getcfi_elf qp_dw.dwarf_getcfi_elf
#define dwarf_hasattr qp_dw.dwarf_hasattr
#define dwarf_lowpc qp_dw.dwarf_lowpc
#define dwarf_nextcu qp_dw.dwarf_nextcu
#define dwarf_offdie qp_dw.dwarf_offdie
#define dwarf_siblingof qp_dw.dwarf_siblingof
#define dwarf_tag qp_dw.dwarf_tag
#define dwfl_addrmodule qp_dw.dwfl_addrmodule
#define dwfl_begin qp_dw.dwfl_begin
#define dwfl_build_id_find_elf qp_dw.dwfl_build_id_find_elf
#define dwfl_end qp_dw.dwfl_end
#define dwfl_errmsg qp_dw.dwfl_errmsg
#define dwfl_getmodules qp_dw.dwfl_getmodules
#define dwfl_linux_proc_find_elf qp_dw.dwfl_linux_proc_find_elf
#define dwfl_linux_proc_report qp_dw.dwfl_linux_proc_report
#define dwfl_module_dwarf_cfi qp_dw.dwfl_module_dwarf_cfi
#define dwfl_module_eh_cfi qp_dw.dwfl_module_eh_cfi
#define dwfl_module_getdwarf qp_dw.dwfl_module_getdwarf
#define dwfl_module_getelf qp_dw.dwfl_module_getelf
#define dwfl_module_info qp_dw.dwfl_module_info
#define dwfl_offline_section_address qp_dw.dwfl_offline_section_address
#define dwfl_report_end qp_dw.dwfl_report_end
#define dwfl_report_offline qp_dw.dwfl_report_offline
#define dwfl_standard_find_debuginfo qp_dw.dwfl_standard_find_debuginfo
#endif

#endif
