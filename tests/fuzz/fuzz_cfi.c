// SPDX-License-Identifier: MIT
/*
 * libFuzzer harness for call frame information from untrusted bytes: the
 * input is an .eh_frame section.  First the library's own parser
 * (format/cfi.c) walks it as the .qpatch reader and the builder do: every
 * entry, the CIE each FDE names, the instructions of both.  Then the
 * loader's unwinder (loader/unwind.c, compiled in here) is given the same
 * bytes as a patch's CFI, the way it takes them from a target's memory,
 * and unwinds one frame at each address an FDE covers, with the input
 * standing in for the target's memory as well.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "qpatch/cfi.h"
#include "unwind.c" /* its static functions */

#define EH_ADDR 0x10000ull /* where the section "is" in the target */
#define MAX_PCS 16

static int mem_fd = -1; /* the input, as the target's memory from address 0 */

static void fuzz_unwind(const uint8_t *data, size_t size, const uint64_t *pcs, size_t npcs)
{
	struct qp_unwind *u = calloc(1, sizeof(*u));
	struct unwind_regs r, caller;
	size_t i;
	int reg;

	if (ftruncate(mem_fd, 0) || pwrite(mem_fd, data, size, 0) != (ssize_t)size)
		abort();
	if (!u || qp_dw_load("unwinds stacks", NULL))
		abort();
	u->pid = 1;
	u->mem_fd = mem_fd;
	u->dwfl = dwfl_begin(qp_dw_proc_callbacks());
	if (!u->dwfl)
		abort();
	if (qp_unwind__add_cfi(u, 0, UINT64_MAX, data, size, EH_ADDR, NULL))
		goto out;
	for (reg = 0; reg < UNWIND_NREGS; reg++) {
		r.v[reg] = size / 2 + 8 * (uint64_t)reg; /* into the "memory" */
		r.known[reg] = true;
	}
	for (i = 0; i < npcs; i++) {
		bool outer = false, signal = false;

		r.v[UNWIND_REG_RA] = pcs[i];
		unwind_step(u, pcs[i], &r, &caller, &outer, &signal);
	}
out:
	u->mem_fd = -1; /* kept for the next input */
	qp_unwind__free(u);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint64_t off = 0, pcs[MAX_PCS];
	size_t npcs = 0;
	char why[256];
	int n;

	if (mem_fd < 0 && (mem_fd = memfd_create("fuzz-mem", MFD_CLOEXEC)) < 0)
		abort();
	for (n = 0; n < 4096; n++) {
		struct qp_cfi_entry e, ce;
		struct qp_cfi_cie cie;
		struct qp_cfi_fde fde;
		int ret = qp_cfi_entry(data, size, off, &e, why, sizeof(why));

		if (ret)
			break;
		if (e.off + e.size > size || e.body > e.off + e.size)
			abort();
		off = e.off + e.size;
		if (e.cie) {
			if (!qp_cfi_parse_cie(data, size, &e, &cie, why, sizeof(why)))
				qp_cfi_check_insns(cie.insns, cie.ninsns, &cie, 0, why, sizeof(why));
			continue;
		}
		if (qp_cfi_entry(data, size, e.cie_off, &ce, why, sizeof(why)) || !ce.cie ||
		    qp_cfi_parse_cie(data, size, &ce, &cie, why, sizeof(why)) ||
		    qp_cfi_parse_fde(data, size, &e, &cie, &fde, why, sizeof(why)))
			continue;
		if (fde.insns < data || fde.insns + fde.ninsns > data + size)
			abort();
		qp_cfi_check_insns(fde.insns, fde.ninsns, &cie, fde.pc_range, why, sizeof(why));
		if (npcs < MAX_PCS) {
			uint64_t pc = (uint64_t)fde.pc_value +
				      ((cie.fde_enc & 0x70) == 0x10 ? EH_ADDR + fde.pc_off : 0);

			pcs[npcs++] = pc;
			if (npcs < MAX_PCS && fde.pc_range > 1)
				pcs[npcs++] = pc + fde.pc_range / 2;
		}
	}
	fuzz_unwind(data, size, pcs, npcs);
	return 0;
}
