// SPDX-License-Identifier: MIT
/*
 * Thread stacks of a stopped process, unwound from call frame information:
 * the CFI of every mapped object (found by libdwfl) and the CFI that
 * patches carry for their own code (qp_unwind__add_cfi()).  libdwfl has no
 * way to take CFI for code that no object file describes, so the walk is
 * done here, with libdw interpreting the CFI (dwarf_cfi_addrframe, then
 * dwarf_frame_cfa / dwarf_frame_register give the rules of a frame) and a
 * small DWARF expression evaluator applying them to the registers and to
 * the process's memory (read through /proc/PID/mem; the caller holds every
 * thread stopped).
 *
 * libdw is loaded with dlopen() by the first qp_unwind__new(), not linked:
 * with its compression libraries it is a good part of the loader's
 * start-up, and most applies unwind no stack (docs/loader.md, "Wall
 * time").  Without it, qp_unwind__new() fails and stacks are judged
 * conservatively, as for any unwinder that cannot be made.
 */
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qpatch/cfi.h"
#include "dwlib.h"
#include "unwind.h"

#define UNWIND_MAX_DEPTH 512
#define UNWIND_NREGS 17       /* DWARF registers 0..16: the GPRs and the RA (rip) */
#define UNWIND_REG_SP 7       /* %rsp */
#define UNWIND_REG_RA 16      /* return address column of x86-64 CFI */
#define UNWIND_STACK 64       /* depth of the expression evaluator's stack */
#define UNWIND_MAX_CFI 4096   /* patches whose CFI is added */

/* CFI carried by a patch, wrapped in an ELF image libdw can read. */
struct unwind_cfi {
	uint64_t lo, hi;      /* code it describes */
	uint8_t *image;       /* the ELF image (owned) */
	Elf *elf;             /* elf_memory() over it */
	Dwarf_CFI *cfi;       /* dwarf_getcfi_elf() of it */
};

struct qp_unwind {
	Dwfl *dwfl;                /* the process's modules */
	pid_t pid;                 /* process */
	int mem_fd;                /* /proc/PID/mem, read-only */
	struct unwind_cfi *extra;  /* patch CFI */
	size_t nextra;             /* count of extra */
};

/* A module's userdata: its CFI failed the check, never used. */
#define UNWIND_BAD_CFI ((void *)1)

/*
 * Whether the .eh_frame of a module's file passes qp_cfi_check(): the
 * file is whatever the target mapped, possibly made by a hostile process,
 * and libdw does not bound what it allocates for it (a rule per register
 * up to the highest one named).  An object without section headers or
 * without .eh_frame is not trusted either: no CFI is used for it.
 */
bool qp_unwind__elf_cfi_ok(Elf *elf)
{
	Elf_Scn *scn = NULL;
	size_t shstrndx;

	if (elf_getshdrstrndx(elf, &shstrndx))
		return false;
	while ((scn = elf_nextscn(elf, scn))) {
		GElf_Shdr sh;
		const char *name;
		Elf_Data *d;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_PROGBITS)
			continue;
		name = elf_strptr(elf, shstrndx, sh.sh_name);
		if (!name || strcmp(name, ".eh_frame"))
			continue;
		d = elf_getdata(scn, NULL);
		return d && d->d_buf && !qp_cfi_check(d->d_buf, d->d_size, NULL, 0);
	}
	return false;
}

/* Load every module's ELF and CFI now, while the target still runs, so
 * that unwinding with the target stopped only reads its stacks; a module
 * whose CFI fails the check is marked, and its frames end the walk. */
static int unwind_prewarm(Dwfl_Module *mod, void **userdata, const char *name,
			  Dwarf_Addr start, void *arg)
{
	Dwarf_Addr bias;
	Elf *elf;

	(void)name, (void)start, (void)arg;
	elf = dwfl_module_getelf(mod, &bias);
	if (elf && qp_unwind__elf_cfi_ok(elf))
		dwfl_module_eh_cfi(mod, &bias);
	else
		*userdata = UNWIND_BAD_CFI;
	return DWARF_CB_OK;
}

int qp_unwind__new(pid_t pid, struct qp_unwind **out, struct qp_error *err)
{
	struct qp_unwind *u = calloc(1, sizeof(*u));
	char path[64];

	*out = NULL;
	if (!u)
		return qp_seterr(err, -ENOMEM, "out of memory");
	int ret = qp_dw_load("unwinds stacks", err);

	if (ret) {
		free(u);
		return ret;
	}
	u->pid = pid;
	snprintf(path, sizeof(path), "/proc/%d/mem", (int)pid);
	u->mem_fd = open(path, O_RDONLY | O_CLOEXEC);
	u->dwfl = dwfl_begin(qp_dw_proc_callbacks());
	if (u->mem_fd < 0 || !u->dwfl || dwfl_linux_proc_report(u->dwfl, pid) ||
	    dwfl_report_end(u->dwfl, NULL, NULL)) {
		qp_seterr(err, -EINVAL, "process %d: cannot read its modules for unwinding: %s",
			  (int)pid, u->mem_fd < 0 ? strerror(errno) : dwfl_errmsg(-1));
		qp_unwind__free(u);
		return err ? err->code : -EINVAL;
	}
	dwfl_getmodules(u->dwfl, unwind_prewarm, NULL, 0);
	*out = u;
	return 0;
}

/*
 * A minimal ELF image holding only an .eh_frame section at its address in
 * the process: what dwarf_getcfi_elf() needs to read CFI (its pcrel
 * pointers are relative to the section's sh_addr).
 */
static uint8_t *unwind_cfi_image(const uint8_t *eh, size_t size, uint64_t addr, size_t *total)
{
	static const char names[] = "\0.eh_frame\0.shstrtab";
	size_t names_off = sizeof(Elf64_Ehdr) + size, shoff = (names_off + sizeof(names) + 7) & ~7ul;
	Elf64_Ehdr eh_hdr = {
		.e_ident = { ELFMAG0, ELFMAG1, ELFMAG2, ELFMAG3, ELFCLASS64, ELFDATA2LSB, EV_CURRENT },
		.e_type = ET_DYN, .e_machine = EM_X86_64, .e_version = EV_CURRENT,
		.e_shoff = shoff, .e_ehsize = sizeof(Elf64_Ehdr), .e_shentsize = sizeof(Elf64_Shdr),
		.e_shnum = 3, .e_shstrndx = 2,
	};
	Elf64_Shdr sh[3] = {
		{ 0 },
		{ .sh_name = 1, .sh_type = SHT_PROGBITS, .sh_flags = SHF_ALLOC, .sh_addr = addr,
		  .sh_offset = sizeof(Elf64_Ehdr), .sh_size = size, .sh_addralign = 8 },
		{ .sh_name = 11, .sh_type = SHT_STRTAB, .sh_offset = names_off,
		  .sh_size = sizeof(names), .sh_addralign = 1 },
	};
	uint8_t *img;

	*total = shoff + sizeof(sh);
	img = calloc(1, *total);
	if (!img)
		return NULL;
	memcpy(img, &eh_hdr, sizeof(eh_hdr));
	memcpy(img + sizeof(eh_hdr), eh, size);
	memcpy(img + names_off, names, sizeof(names));
	memcpy(img + shoff, sh, sizeof(sh));
	return img;
}

int qp_unwind__add_cfi(struct qp_unwind *u, uint64_t lo, uint64_t hi, const uint8_t *eh,
		       size_t size, uint64_t eh_addr, struct qp_error *err)
{
	struct unwind_cfi *v, *c;
	size_t total;

	char why[160];

	if (u->nextra >= UNWIND_MAX_CFI)
		return qp_seterr(err, -E2BIG, "too many patches with call frame information");
	/* read from the target: checked before libdw interprets it (libdw keeps
	 * a rule for every register up to the highest one named: a huge register
	 * number would make it allocate gigabytes) */
	if (qp_cfi_check(eh, size, why, sizeof(why)))
		return qp_seterr(err, -EINVAL, "call frame information at 0x%llx: %s",
				 (unsigned long long)eh_addr, why);
	v = realloc(u->extra, (u->nextra + 1) * sizeof(*v));
	if (!v)
		return qp_seterr(err, -ENOMEM, "out of memory");
	u->extra = v;
	c = &v[u->nextra];
	memset(c, 0, sizeof(*c));
	c->lo = lo;
	c->hi = hi;
	elf_version(EV_CURRENT);
	c->image = unwind_cfi_image(eh, size, eh_addr, &total);
	c->elf = c->image ? elf_memory((char *)c->image, total) : NULL;
	c->cfi = c->elf ? dwarf_getcfi_elf(c->elf) : NULL;
	if (!c->cfi) {
		if (c->elf)
			elf_end(c->elf);
		free(c->image);
		return qp_seterr(err, -EINVAL, "cannot read call frame information at 0x%llx: %s",
				 (unsigned long long)eh_addr, dwarf_errmsg(-1));
	}
	u->nextra++;
	return 0;
}

/* --- one frame ---------------------------------------------------------- */

/* Registers of one frame, DWARF numbering. */
struct unwind_regs {
	uint64_t v[UNWIND_NREGS];   /* values */
	bool known[UNWIND_NREGS];   /* which are */
};

static bool unwind_read(const struct qp_unwind *u, uint64_t addr, uint64_t *val)
{
	return pread(u->mem_fd, val, sizeof(*val), (off_t)addr) == (ssize_t)sizeof(*val);
}

/* The CFI describing @pc, and the bias to subtract from addresses. */
static Dwarf_CFI *unwind_cfi_for(struct qp_unwind *u, uint64_t pc, Dwarf_Addr *bias, bool eh)
{
	Dwfl_Module *mod;
	void **userdata = NULL;
	size_t i;

	for (i = 0; i < u->nextra; i++)
		if (pc >= u->extra[i].lo && pc < u->extra[i].hi) {
			*bias = 0;
			return eh ? u->extra[i].cfi : NULL;
		}
	mod = dwfl_addrmodule(u->dwfl, pc);
	if (!mod || !dwfl_module_info(mod, &userdata, NULL, NULL, NULL, NULL, NULL, NULL) ||
	    *userdata == UNWIND_BAD_CFI)
		return NULL;
	return eh ? dwfl_module_eh_cfi(mod, bias) : dwfl_module_dwarf_cfi(mod, bias);
}

static bool unwind_binop(uint8_t atom, uint64_t a, uint64_t b, uint64_t *r)
{
	switch (atom) {
	case DW_OP_plus: *r = a + b; return true;
	case DW_OP_minus: *r = a - b; return true;
	case DW_OP_mul: *r = a * b; return true;
	case DW_OP_and: *r = a & b; return true;
	case DW_OP_or: *r = a | b; return true;
	case DW_OP_xor: *r = a ^ b; return true;
	case DW_OP_shl: *r = b < 64 ? a << b : 0; return true;
	case DW_OP_shr: *r = b < 64 ? a >> b : 0; return true;
	case DW_OP_shra: *r = (uint64_t)((int64_t)a >> (b < 63 ? b : 63)); return true;
	case DW_OP_eq: *r = a == b; return true;
	case DW_OP_ne: *r = a != b; return true;
	case DW_OP_lt: *r = (int64_t)a < (int64_t)b; return true;
	case DW_OP_gt: *r = (int64_t)a > (int64_t)b; return true;
	case DW_OP_le: *r = (int64_t)a <= (int64_t)b; return true;
	case DW_OP_ge: *r = (int64_t)a >= (int64_t)b; return true;
	default: return false;
	}
}

/* Push onto the expression stack the value of one operation that only
 * produces (literals, registers, the CFA). */
static bool unwind_push(const Dwarf_Op *op, const struct unwind_regs *r, uint64_t cfa,
			uint64_t *st, int *n)
{
	unsigned reg;
	uint64_t v;

	if (op->atom >= DW_OP_lit0 && op->atom <= DW_OP_lit31) {
		v = op->atom - DW_OP_lit0;
	} else if (op->atom >= DW_OP_breg0 && op->atom <= DW_OP_breg31) {
		reg = op->atom - DW_OP_breg0;
		if (reg >= UNWIND_NREGS || !r->known[reg])
			return false;
		v = r->v[reg] + op->number;
	} else if (op->atom == DW_OP_bregx) {
		if (op->number >= UNWIND_NREGS || !r->known[op->number])
			return false;
		v = r->v[op->number] + op->number2;
	} else if (op->atom == DW_OP_call_frame_cfa) {
		v = cfa;
	} else {
		switch (op->atom) {
		case DW_OP_const1u: case DW_OP_const1s: case DW_OP_const2u: case DW_OP_const2s:
		case DW_OP_const4u: case DW_OP_const4s: case DW_OP_const8u: case DW_OP_const8s:
		case DW_OP_constu: case DW_OP_consts:
			v = op->number;
			break;
		default:
			return false;
		}
	}
	if (*n >= UNWIND_STACK)
		return false;
	st[(*n)++] = v;
	return true;
}

/*
 * Evaluate a DWARF expression of CFI: the operations compilers and the C
 * library use there (literals, registers, the CFA, memory reads,
 * arithmetic and comparisons; no branches).  *@is_value tells a value
 * (DW_OP_stack_value) from an address where the value is saved.
 */
static bool unwind_eval(const struct qp_unwind *u, const Dwarf_Op *ops, size_t nops,
			const struct unwind_regs *r, uint64_t cfa, uint64_t *out, bool *is_value)
{
	uint64_t st[UNWIND_STACK], a, b;
	int n = 0;
	size_t i;

	*is_value = false;
	for (i = 0; i < nops; i++) {
		const Dwarf_Op *op = &ops[i];

		if (unwind_push(op, r, cfa, st, &n))
			continue;
		switch (op->atom) {
		case DW_OP_stack_value:
			*is_value = true;
			continue;
		case DW_OP_nop:
			continue;
		case DW_OP_dup: case DW_OP_deref: case DW_OP_plus_uconst: case DW_OP_neg:
		case DW_OP_not: case DW_OP_drop:
			if (n < 1)
				return false;
			if (op->atom == DW_OP_dup && n < UNWIND_STACK)
				st[n] = st[n - 1], n++;
			else if (op->atom == DW_OP_dup)
				return false;
			else if (op->atom == DW_OP_deref && !unwind_read(u, st[n - 1], &st[n - 1]))
				return false;
			else if (op->atom == DW_OP_plus_uconst)
				st[n - 1] += op->number;
			else if (op->atom == DW_OP_neg)
				st[n - 1] = -st[n - 1];
			else if (op->atom == DW_OP_not)
				st[n - 1] = ~st[n - 1];
			else if (op->atom == DW_OP_drop)
				n--;
			continue;
		case DW_OP_swap: case DW_OP_over:
			if (n < 2 || (op->atom == DW_OP_over && n >= UNWIND_STACK))
				return false;
			if (op->atom == DW_OP_swap)
				a = st[n - 1], st[n - 1] = st[n - 2], st[n - 2] = a;
			else
				st[n] = st[n - 2], n++;
			continue;
		default:
			if (n < 2)
				return false;
			b = st[--n];
			a = st[n - 1];
			if (!unwind_binop(op->atom, a, b, &st[n - 1]))
				return false;
		}
	}
	if (n < 1)
		return false;
	*out = st[n - 1];
	return true;
}

/*
 * The caller's registers (*@caller) of the frame with registers @r at
 * @pc (already inside the call for a return address).  *@outer is set at
 * the outermost frame (return address undefined).  *@signal tells that
 * this is a signal trampoline's frame: the caller's pc is then exact.
 */
static bool unwind_step(struct qp_unwind *u, uint64_t pc, const struct unwind_regs *r,
			struct unwind_regs *caller, bool *outer, bool *signal)
{
	Dwarf_Frame *frame = NULL;
	Dwarf_CFI *cfi;
	Dwarf_Addr bias = 0, start, end;
	Dwarf_Op ops_mem[3], *ops;
	size_t nops;
	uint64_t cfa;
	bool is_value, ok = true;
	int reg, ra;

	cfi = unwind_cfi_for(u, pc, &bias, true);
	if (!cfi || dwarf_cfi_addrframe(cfi, pc - bias, &frame)) {
		cfi = unwind_cfi_for(u, pc, &bias, false); /* .debug_frame */
		if (!cfi || dwarf_cfi_addrframe(cfi, pc - bias, &frame))
			return false;
	}
	ra = dwarf_frame_info(frame, &start, &end, signal);
	if (ra != UNWIND_REG_RA || dwarf_frame_cfa(frame, &ops, &nops) || !nops ||
	    !unwind_eval(u, ops, nops, r, 0, &cfa, &is_value)) {
		free(frame);
		return false;
	}
	memset(caller, 0, sizeof(*caller));
	for (reg = 0; ok && reg < UNWIND_NREGS; reg++) {
		uint64_t v;

		if (dwarf_frame_register(frame, reg, ops_mem, &ops, &nops)) {
			ok = false;
		} else if (!nops && !ops) { /* same value */
			caller->v[reg] = r->v[reg];
			caller->known[reg] = r->known[reg];
		} else if (nops && unwind_eval(u, ops, nops, r, cfa, &v, &is_value) &&
			   (is_value || unwind_read(u, v, &v))) {
			caller->v[reg] = v;
			caller->known[reg] = true;
		} /* else undefined, or not computable here */
	}
	free(frame);
	if (!caller->known[UNWIND_REG_SP]) { /* x86-64: the CFA is the caller's %rsp */
		caller->v[UNWIND_REG_SP] = cfa;
		caller->known[UNWIND_REG_SP] = true;
	}
	*outer = ok && !caller->known[UNWIND_REG_RA];
	return ok;
}

/* --- the walk ------------------------------------------------------------ */

static void unwind_regs_from(const struct user_regs_struct *g, struct unwind_regs *r)
{
	const unsigned long long v[UNWIND_NREGS] = {
		g->rax, g->rdx, g->rcx, g->rbx, g->rsi, g->rdi, g->rbp, g->rsp,
		g->r8, g->r9, g->r10, g->r11, g->r12, g->r13, g->r14, g->r15, g->rip,
	};
	int i;

	for (i = 0; i < UNWIND_NREGS; i++) {
		r->v[i] = v[i];
		r->known[i] = true;
	}
}

int qp_unwind__thread(struct qp_unwind *u, const struct user_regs_struct *regs,
		      int (*frame)(uint64_t pc, int depth, bool exact, void *arg), void *arg,
		      uint64_t *sp)
{
	struct unwind_regs r, caller;
	bool exact = true; /* frame 0, or the frame a signal interrupted */
	int depth, ret;

	unwind_regs_from(regs, &r);
	for (depth = 0; depth < UNWIND_MAX_DEPTH; depth++) {
		uint64_t pc = r.v[UNWIND_REG_RA] - (exact ? 0 : 1);
		bool outer = false, signal = false;

		*sp = r.v[UNWIND_REG_SP];
		ret = frame(pc, depth, exact, arg);
		if (ret)
			return ret;
		if (!unwind_step(u, pc, &r, &caller, &outer, &signal))
			return QP_UNWIND_PARTIAL;
		if (outer || !caller.v[UNWIND_REG_RA])
			return 0;
		/* the stack grows down: a caller's frame lies above, except
		 * across a signal (sigaltstack) */
		if (!signal && caller.v[UNWIND_REG_SP] <= r.v[UNWIND_REG_SP])
			return QP_UNWIND_PARTIAL;
		exact = signal;
		r = caller;
	}
	return QP_UNWIND_PARTIAL;
}

void qp_unwind__free(struct qp_unwind *u)
{
	size_t i;

	if (!u)
		return;
	for (i = 0; i < u->nextra; i++) {
		dwarf_cfi_end(u->extra[i].cfi);
		elf_end(u->extra[i].elf);
		free(u->extra[i].image);
	}
	free(u->extra);
	if (u->dwfl)
		dwfl_end(u->dwfl);
	if (u->mem_fd >= 0)
		close(u->mem_fd);
	free(u);
}
