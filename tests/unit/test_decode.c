/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for libdecode, plus two tools over real ELF files:
 *
 *   test_decode                        run the unit tests
 *   test_decode --objdump-compare FILE decode every function symbol of FILE
 *                                      and the code between them, and print
 *                                      what tests/integration/
 *                                      t_decode_objdump.sh compares with
 *                                      objdump
 *   test_decode --bench FILE           decode, check, relocate, search
 *                                      and compare every function of FILE
 *                                      repeatedly and print insns/s
 *
 * The instruction table below was checked against
 * `objdump -D -b binary -m i386:x86-64 --adjust-vma=0x1000`.
 */
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "qpatch/decode.h"

#define BASE 0x1000

/* Parse "48 8b 05 10" into @buf; returns the number of bytes. */
static size_t hex_parse(const char *s, uint8_t *buf, size_t max)
{
	size_t n = 0;
	char *end;

	while (*s && n < max) {
		unsigned long v = strtoul(s, &end, 16);

		if (end == s)
			break;
		buf[n++] = (uint8_t)v;
		s = end;
	}
	return n;
}

/* ------------------------------------------------------------------------ */
/* qp_decode_insn: one table of hand-picked instructions                     */
/* ------------------------------------------------------------------------ */

enum {
	F_IND = 1 << 0,   /* indirect */
	F_REL = 1 << 1,   /* has_rel (relative immediate) */
	F_RIP = 1 << 2,   /* has_rel and rip_relative */
	F_ENDBR = 1 << 3, /* is_endbr64 */
};

struct insn_case {
	const char *what;      /* AT&T text as objdump prints it */
	const char *hex;       /* the bytes */
	uint8_t len;           /* expected length */
	enum qp_insn_kind kind;
	unsigned flags;        /* F_* */
	uint8_t rel_off;       /* expected when F_REL or F_RIP */
	uint8_t rel_size;
	uint64_t target;
};

#define OTHER QP_INSN_OTHER
#define CALL QP_INSN_CALL
#define JMP QP_INSN_JMP
#define JCC QP_INSN_JCC
#define RET QP_INSN_RET
#define TRAP QP_INSN_TRAP

static const struct insn_case insn_cases[] = {
	/* plain */
	{ "nop", "90", 1, OTHER, 0, 0, 0, 0 },
	{ "mov %rsp,%rbp", "48 89 e5", 3, OTHER, 0, 0, 0, 0 },
	{ "mov $0x1,%eax", "b8 01 00 00 00", 5, OTHER, 0, 0, 0, 0 },
	{ "nopl 0x0(%rax,%rax,1)", "0f 1f 44 00 00", 5, OTHER, 0, 0, 0, 0 },
	{ "syscall", "0f 05", 2, OTHER, 0, 0, 0, 0 },
	{ "int $0x80", "cd 80", 2, OTHER, 0, 0, 0, 0 },
	/* legacy prefixes */
	{ "mov %cx,%ax", "66 89 c8", 3, OTHER, 0, 0, 0, 0 },
	{ "movsd %xmm1,%xmm0", "f2 0f 10 c1", 4, OTHER, 0, 0, 0, 0 },
	{ "movss %xmm1,%xmm0", "f3 0f 10 c1", 4, OTHER, 0, 0, 0, 0 },
	{ "lock cmpxchg %rcx,(%rdx)", "f0 48 0f b1 0a", 5, OTHER, 0, 0, 0, 0 },
	{ "rep movsb", "f3 a4", 2, OTHER, 0, 0, 0, 0 },
	/* absolute [disp32] through a SIB byte: not RIP-relative */
	{ "mov %fs:0x28,%rax", "64 48 8b 04 25 28 00 00 00", 9, OTHER, 0,
	  0, 0, 0 },
	{ "nopw 0x0(%rax,%rax,1)", "66 0f 1f 84 00 00 00 00 00", 9, OTHER, 0,
	  0, 0, 0 },
	{ "data16 x5 cs nopw (15 bytes)",
	  "66 66 66 66 66 66 2e 0f 1f 84 00 00 00 00 00", 15, OTHER, 0,
	  0, 0, 0 },
	/* REX */
	{ "movabs $0x1122334455667788,%r11", "49 bb 88 77 66 55 44 33 22 11",
	  10, OTHER, 0, 0, 0, 0 },
	{ "movabs 0x1122334455667788,%rax", "48 a1 88 77 66 55 44 33 22 11",
	  10, OTHER, 0, 0, 0, 0 },
	/* VEX, EVEX */
	{ "vaddps %ymm1,%ymm0,%ymm0", "c5 fc 58 c1", 4, OTHER, 0, 0, 0, 0 },
	{ "vaddps %ymm10,%ymm0,%ymm8", "c4 41 7c 58 c2", 5, OTHER, 0, 0, 0, 0 },
	{ "vaddps 0x10(%rip),%ymm0,%ymm0", "c5 fc 58 05 10 00 00 00", 8, OTHER,
	  F_RIP, 4, 4, 0x1018 },
	{ "vaddps %zmm1,%zmm0,%zmm0", "62 f1 7c 48 58 c1", 6, OTHER, 0, 0, 0, 0 },
	{ "vaddps 0x40(%rax),%zmm0,%zmm0 (disp8*64)", "62 f1 7c 48 58 40 01", 7,
	  OTHER, 0, 0, 0, 0 },
	{ "vaddps 0x100(%rip),%zmm0,%zmm0", "62 f1 7c 48 58 05 00 01 00 00", 10,
	  OTHER, F_RIP, 6, 4, 0x110a },
	/* CET */
	{ "endbr64", "f3 0f 1e fa", 4, OTHER, F_ENDBR, 0, 0, 0 },
	{ "endbr32", "f3 0f 1e fb", 4, OTHER, 0, 0, 0, 0 },
	/* direct branches */
	{ "jmp 0x1012", "eb 10", 2, JMP, F_REL, 1, 1, 0x1012 },
	{ "jmp 0x1000 (rel8 -2)", "eb fe", 2, JMP, F_REL, 1, 1, 0x1000 },
	{ "jmp 0x1105", "e9 00 01 00 00", 5, JMP, F_REL, 1, 4, 0x1105 },
	{ "jmp 0x1000 (rel32 -5)", "e9 fb ff ff ff", 5, JMP, F_REL, 1, 4,
	  0x1000 },
	{ "bnd jmp 0x1006", "f2 e9 00 00 00 00", 6, JMP, F_REL, 2, 4, 0x1006 },
	/* Intel CPUs ignore 66 on near branches in 64-bit mode, and so does
	 * Zydis; objdump's default (AMD64) reads "jmpw rel16".  Compilers
	 * never emit it. */
	{ "data16 jmp 0x1006", "66 e9 00 00 00 00", 6, JMP, F_REL, 2, 4,
	  0x1006 },
	{ "je 0x1007", "74 05", 2, JCC, F_REL, 1, 1, 0x1007 },
	{ "jne 0x1206", "0f 85 00 02 00 00", 6, JCC, F_REL, 2, 4, 0x1206 },
	{ "jrcxz 0x1012", "e3 10", 2, JCC, F_REL, 1, 1, 0x1012 },
	{ "jecxz 0x1013", "67 e3 10", 3, JCC, F_REL, 2, 1, 0x1013 },
	{ "loop 0x1000", "e2 fe", 2, JCC, F_REL, 1, 1, 0x1000 },
	{ "loope 0x1000", "e1 fe", 2, JCC, F_REL, 1, 1, 0x1000 },
	{ "loopne 0x1000", "e0 fe", 2, JCC, F_REL, 1, 1, 0x1000 },
	{ "call 0x1005", "e8 00 00 00 00", 5, CALL, F_REL, 1, 4, 0x1005 },
	{ "call 0x0", "e8 fb ef ff ff", 5, CALL, F_REL, 1, 4, 0x0 },
	{ "bnd call 0x1006", "f2 e8 00 00 00 00", 6, CALL, F_REL, 2, 4,
	  0x1006 },
	/* Zydis files xbegin under COND_BR: on abort it goes to the target */
	{ "xbegin 0x1016", "c7 f8 10 00 00 00", 6, JCC, F_REL, 2, 4, 0x1016 },
	/* indirect branches */
	{ "call *%rax", "ff d0", 2, CALL, F_IND, 0, 0, 0 },
	{ "call *%r11", "41 ff d3", 3, CALL, F_IND, 0, 0, 0 },
	{ "jmp *%rax", "ff e0", 2, JMP, F_IND, 0, 0, 0 },
	{ "notrack jmp *%rax", "3e ff e0", 3, JMP, F_IND, 0, 0, 0 },
	{ "call *0x8(%rax)", "ff 50 08", 3, CALL, F_IND, 0, 0, 0 },
	{ "jmp *(%rax,%rcx,8)", "ff 24 c8", 3, JMP, F_IND, 0, 0, 0 },
	{ "call *0x0(%rip) (GOT)", "ff 15 00 00 00 00", 6, CALL, F_IND | F_RIP,
	  2, 4, 0x1006 },
	{ "jmp *0x10(%rip)", "ff 25 10 00 00 00", 6, JMP, F_IND | F_RIP, 2, 4,
	  0x1016 },
	{ "lcall *(%rax)", "ff 18", 2, CALL, F_IND, 0, 0, 0 },
	{ "ljmp *(%rax)", "ff 28", 2, JMP, F_IND, 0, 0, 0 },
	{ "ljmp *0x10(%rip)", "ff 2d 10 00 00 00", 6, JMP, F_IND | F_RIP, 2,
	  4, 0x1016 },
	/* returns and traps */
	{ "ret", "c3", 1, RET, 0, 0, 0, 0 },
	{ "ret $0x8", "c2 08 00", 3, RET, 0, 0, 0, 0 },
	{ "repz ret", "f3 c3", 2, RET, 0, 0, 0, 0 },
	{ "lret", "cb", 1, RET, 0, 0, 0, 0 },
	{ "iret", "cf", 1, RET, 0, 0, 0, 0 },
	{ "iretq", "48 cf", 2, RET, 0, 0, 0, 0 },
	{ "int3", "cc", 1, TRAP, 0, 0, 0, 0 },
	{ "int1", "f1", 1, TRAP, 0, 0, 0, 0 },
	{ "ud2", "0f 0b", 2, TRAP, 0, 0, 0, 0 },
	{ "ud1 %eax,%eax", "0f b9 c0", 3, TRAP, 0, 0, 0, 0 },
	{ "ud0 %eax,%eax", "0f ff c0", 3, TRAP, 0, 0, 0, 0 },
	{ "hlt", "f4", 1, TRAP, 0, 0, 0, 0 },
	/* RIP-relative data */
	{ "mov 0x10(%rip),%rax", "48 8b 05 10 00 00 00", 7, OTHER, F_RIP, 3, 4,
	  0x1017 },
	{ "lea -0x7(%rip),%rdi", "48 8d 3d f9 ff ff ff", 7, OTHER, F_RIP, 3, 4,
	  0x1000 },
	/* an immediate after the displacement: the target is still taken
	 * from the end of the instruction, not the end of the disp */
	{ "cmpl $0x5,0x100(%rip)", "83 3d 00 01 00 00 05", 7, OTHER, F_RIP, 2,
	  4, 0x1107 },
	{ "movl $0x12345678,0x10(%rip)", "c7 05 10 00 00 00 78 56 34 12", 10,
	  OTHER, F_RIP, 2, 4, 0x101a },
	{ "mov 0x10(%eip),%eax", "67 8b 05 10 00 00 00", 7, OTHER, F_RIP, 3, 4,
	  0x1017 },
};

static void check_insn_case(const struct insn_case *c)
{
	uint8_t buf[32];
	size_t n = hex_parse(c->hex, buf, sizeof(buf));
	struct qp_insn insn;
	size_t k;
	int err;

	/* Fill the rest with int3 so decoding must stop at c->len. */
	memset(buf + n, 0xcc, sizeof(buf) - n);
	err = qp_decode_insn(buf, sizeof(buf), BASE, &insn);
	if (err) {
		fprintf(stderr, "case '%s':\n", c->what);
		CHECK_INT(err, 0);
		return;
	}
	CHECK_INT(n, c->len);
	CHECK_INT(insn.addr, BASE);
	CHECK_INT(insn.len, c->len);
	CHECK_INT(insn.kind, c->kind);
	CHECK_INT(insn.indirect, !!(c->flags & F_IND));
	CHECK_INT(insn.is_endbr64, !!(c->flags & F_ENDBR));
	CHECK_INT(insn.has_rel, !!(c->flags & (F_REL | F_RIP)));
	CHECK_INT(insn.rip_relative, !!(c->flags & F_RIP));
	CHECK_INT(insn.rel_off, c->rel_off);
	CHECK_INT(insn.rel_size, c->rel_size);
	CHECK_INT(insn.target, c->target);

	/* Exactly the bytes: same result.  Any shorter: -ENODATA. */
	CHECK_INT(qp_decode_insn(buf, c->len, BASE, &insn), 0);
	CHECK_INT(insn.len, c->len);
	for (k = 0; k < c->len; k++)
		CHECK_INT(qp_decode_insn(buf, k, BASE, &insn), -ENODATA);
}

static void test_insn_table(void)
{
	size_t i;
	int failed = check_failed;

	for (i = 0; i < sizeof(insn_cases) / sizeof(insn_cases[0]); i++) {
		check_insn_case(&insn_cases[i]);
		if (check_failed != failed) {
			fprintf(stderr, "  ^ in case '%s'\n", insn_cases[i].what);
			failed = check_failed;
		}
	}
}

/* Targets are computed at the real address, with 64-bit wrap-around. */
static void test_insn_addresses(void)
{
	const uint8_t jmp_back[] = { 0xe9, 0x00, 0x00, 0x00, 0x80 };
	const uint8_t rip_load[] = { 0x48, 0x8b, 0x05, 0xf0, 0xff, 0xff, 0xff };
	struct qp_insn insn;

	CHECK_INT(qp_decode_insn(jmp_back, sizeof(jmp_back), 0x7f0000001000,
				 &insn), 0);
	CHECK_INT(insn.target, 0x7f0000001005 - 0x80000000ull);
	CHECK_INT(qp_decode_insn(rip_load, sizeof(rip_load),
				 0x7ffff7dd0000, &insn), 0);
	CHECK_INT(insn.target, 0x7ffff7dd0007 - 0x10);
	CHECK_INT(insn.addr, 0x7ffff7dd0000);
}

struct bad_case {
	const char *what;
	const char *hex;
	int err;
};

static const struct bad_case bad_cases[] = {
	{ "call cut after 3 bytes", "e8 00 00", -ENODATA },
	{ "lone rex.W", "48", -ENODATA },
	{ "lone 0f escape", "0f", -ENODATA },
	{ "evex prefix only", "62 f1 7c", -ENODATA },
	{ "rip-relative mov without disp", "48 8b 05 10", -ENODATA },
	{ "push %es (invalid in 64-bit mode)", "06", -EILSEQ },
	{ "daa (invalid in 64-bit mode)", "27", -EILSEQ },
	{ "lock nop", "f0 90", -EILSEQ },
	{ "16 bytes: longer than any instruction",
	  "66 66 66 66 66 66 66 2e 0f 1f 84 00 00 00 00 00", -EILSEQ },
};

static void test_insn_errors(void)
{
	struct qp_insn insn;
	uint8_t buf[32];
	size_t i, n;

	for (i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		int failed = check_failed;

		n = hex_parse(bad_cases[i].hex, buf, sizeof(buf));
		CHECK_INT(qp_decode_insn(buf, n, BASE, &insn),
			  bad_cases[i].err);
		if (check_failed != failed)
			fprintf(stderr, "  ^ in case '%s'\n", bad_cases[i].what);
	}
	CHECK_INT(qp_decode_insn(buf, 0, BASE, &insn), -ENODATA);
	CHECK_INT(qp_decode_insn(NULL, 0, BASE, &insn), -ENODATA);
	CHECK_INT(qp_decode_insn(NULL, 4, BASE, &insn), -EINVAL);
	CHECK_INT(qp_decode_insn(buf, n, BASE, NULL), -EINVAL);
}

/*
 * Random bytes: whatever they decode to, the result must be consistent.
 * The relative target is recomputed here from the raw field, so this also
 * checks rel_off/rel_size against Zydis' own address arithmetic.
 */
static uint64_t rnd_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return rnd_state;
}

static int64_t field_value(const uint8_t *p, unsigned size)
{
	switch (size) {
	case 1:
		return (int8_t)p[0];
	case 2:
		return (int16_t)(p[0] | p[1] << 8);
	default:
		return (int32_t)((uint32_t)p[0] | (uint32_t)p[1] << 8 |
				 (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
	}
}

static void check_random_insn(const uint8_t *buf, size_t size, uint64_t addr)
{
	struct qp_insn insn, again;
	uint64_t expect;
	int err = qp_decode_insn(buf, size, addr, &insn);

	CHECK(err == 0 || err == -EILSEQ || err == -ENODATA);
	if (err)
		return;
	CHECK(insn.len >= 1 && insn.len <= 15 && insn.len <= size);
	CHECK(!insn.rip_relative || insn.has_rel);
	CHECK(!insn.indirect || insn.kind == QP_INSN_CALL ||
	      insn.kind == QP_INSN_JMP);
	if (!insn.has_rel) {
		CHECK(insn.rel_off == 0 && insn.rel_size == 0 &&
		      insn.target == 0);
	} else {
		CHECK(insn.rel_size == 1 || insn.rel_size == 2 ||
		      insn.rel_size == 4);
		CHECK(insn.rel_off >= 1 &&
		      insn.rel_off + insn.rel_size <= insn.len);
		expect = addr + insn.len +
			 (uint64_t)field_value(buf + insn.rel_off, insn.rel_size);
		/* [eip + disp32] and 16-bit branches truncate the result */
		CHECK(insn.target == expect ||
		      insn.target == (expect & 0xffffffffu) ||
		      insn.target == (expect & 0xffffu));
	}
	CHECK_INT(qp_decode_insn(buf, insn.len, addr, &again), 0);
	CHECK(memcmp(&insn, &again, sizeof(insn)) == 0);
	CHECK_INT(qp_decode_insn(buf, insn.len - 1u, addr, &again), -ENODATA);
}

static void test_insn_random(void)
{
	uint8_t buf[64];
	char why[128];
	size_t i, k, n;
	int failed = check_failed, err;

	for (i = 0; i < 20000 && check_failed == failed; i++) {
		for (k = 0; k < sizeof(buf); k++)
			buf[k] = (uint8_t)rnd();
		n = 1 + rnd() % sizeof(buf);
		check_random_insn(buf, n, BASE + (rnd() & 0xffff));
		/* Any verdict, but a failure always comes with a reason. */
		err = qp_decode_check_patch_site(buf, n, BASE, BASE + rnd() % 8,
						 1 + rnd() % 8, why,
						 sizeof(why));
		CHECK(err == 0 ? why[0] == '\0' : why[0] != '\0');
	}
	if (check_failed != failed)
		fprintf(stderr, "  ^ random bytes, iteration %zu\n", i - 1);
}

/* ------------------------------------------------------------------------ */
/* qp_decode_patch_entry                                                     */
/* ------------------------------------------------------------------------ */

static void test_patch_entry(void)
{
	const uint8_t endbr[] = { 0xf3, 0x0f, 0x1e, 0xfa, 0x55, 0xc3 };
	const uint8_t endbr32[] = { 0xf3, 0x0f, 0x1e, 0xfb, 0x55, 0xc3 };
	const uint8_t plain[] = { 0x55, 0x48, 0x89, 0xe5, 0xc3 };

	CHECK_INT(qp_decode_patch_entry(endbr, sizeof(endbr), BASE), BASE + 4);
	CHECK_INT(qp_decode_patch_entry(endbr, 4, BASE), BASE + 4);
	CHECK_INT(qp_decode_patch_entry(endbr, 3, BASE), BASE);
	CHECK_INT(qp_decode_patch_entry(endbr32, sizeof(endbr32), BASE), BASE);
	CHECK_INT(qp_decode_patch_entry(plain, sizeof(plain), BASE), BASE);
	CHECK_INT(qp_decode_patch_entry(plain, 0, BASE), BASE);
	CHECK_INT(qp_decode_patch_entry(NULL, 0, BASE), BASE);
}

/* Padding: every NOP form gcc and binutils emit, and INT3; anything else,
 * or a NOP cut by the end, is not padding. */
static void test_padding(void)
{
	const uint8_t nops[] = {
		0x90,                                     /* nop */
		0x66, 0x90,                               /* xchg ax,ax */
		0x0f, 0x1f, 0x00,                         /* nopl (%rax) */
		0x0f, 0x1f, 0x40, 0x00,                   /* nopl 0(%rax) */
		0x0f, 0x1f, 0x44, 0x00, 0x00,             /* nopl 0(%rax,%rax,1) */
		0x66, 0x0f, 0x1f, 0x44, 0x00, 0x00,       /* nopw 0(%rax,%rax,1) */
		0x0f, 0x1f, 0x80, 0, 0, 0, 0,             /* nopl 0L(%rax) */
		0x0f, 0x1f, 0x84, 0x00, 0, 0, 0, 0,       /* nopl 0L(%rax,%rax,1) */
		0x66, 0x0f, 0x1f, 0x84, 0x00, 0, 0, 0, 0, /* nopw 0L(%rax,%rax,1) */
		0x66, 0x2e, 0x0f, 0x1f, 0x84, 0x00, 0, 0, 0, 0, /* cs nopw */
		0xcc, 0xcc,                               /* int3 */
	};
	const uint8_t code[] = { 0x90, 0x90, 0xc3 };       /* nop; nop; ret */
	const uint8_t zeros[] = { 0x00, 0x00 };            /* add %al,(%rax) */
	const uint8_t cut[] = { 0x0f, 0x1f, 0x44 };        /* a nopl missing its end */

	CHECK(qp_decode_is_padding(nops, sizeof(nops), BASE));
	CHECK(qp_decode_is_padding(nops, 1, BASE));
	CHECK(!qp_decode_is_padding(code, sizeof(code), BASE));
	CHECK(!qp_decode_is_padding(zeros, sizeof(zeros), BASE));
	CHECK(!qp_decode_is_padding(cut, sizeof(cut), BASE));
	CHECK(!qp_decode_is_padding(nops, 0, BASE));
	CHECK(!qp_decode_is_padding(NULL, 4, BASE));
}

/* A stub for a [rip + disp32] access through a GOT slot: its instructions
 * in order, the scratch register chosen around what the instruction uses,
 * and what it cannot do. */
static void test_got_stub(void)
{
	static const uint8_t load[] = { 0x48, 0x8b, 0x05, 0, 0, 0, 0 };     /* mov 0(%rip),%rax */
	static const uint8_t r11[] = { 0x4c, 0x8b, 0x1d, 0, 0, 0, 0 };      /* mov 0(%rip),%r11 */
	static const uint8_t store[] = { 0xc7, 0x05, 0, 0, 0, 0, 1, 0, 0, 0 }; /* movl $1,0(%rip) */
	static const uint8_t push[] = { 0xff, 0x35, 0, 0, 0, 0 };           /* push 0(%rip) */
	static const uint8_t call[] = { 0xff, 0x15, 0, 0, 0, 0 };           /* call *0(%rip) */
	static const uint8_t plain[] = { 0x48, 0x89, 0xc0 };                /* mov %rax,%rax */
	uint8_t out[QP_GOT_STUB_MAX];
	size_t len, slot, jmp, off;
	struct qp_insn in;
	char why[128];
	int n;

	CHECK_INT(qp_decode_got_stub(load, sizeof(load), BASE, 8, out, sizeof(out), &len, &slot,
				     &jmp, why, sizeof(why)), 0);
	/* lea -128(%rsp),%rsp; push %r11; mov slot(%rip),%r11; mov 8(%r11),%rax;
	 * pop %r11; lea 128(%rsp),%rsp; jmp */
	CHECK(!memcmp(out, "\x48\x8d\x64\x24\x80\x41\x53\x4c\x8b\x1d", 10));
	CHECK_INT(slot, 10);
	CHECK(!memcmp(out + 14, "\x49\x8b\x43\x08", 4));
	CHECK(!memcmp(out + 18, "\x41\x5b\x48\x8d\xa4\x24\x80\x00\x00\x00\xe9", 11));
	CHECK_INT(jmp, 29);
	CHECK_INT(len, 33);
	for (off = 0, n = 0; off < len && !qp_decode_insn(out + off, len - off, BASE + off, &in); n++)
		off += in.len;
	CHECK_INT(off, len);
	CHECK_INT(n, 7);
	/* an instruction using r11: r10 is the scratch */
	CHECK_INT(qp_decode_got_stub(r11, sizeof(r11), BASE, 0, out, sizeof(out), &len, &slot,
				     &jmp, why, sizeof(why)), 0);
	CHECK(!memcmp(out + 5, "\x41\x52\x4c\x8b\x15", 5)); /* push %r10; mov slot(%rip),%r10 */
	CHECK_INT(qp_decode_got_stub(store, sizeof(store), BASE, 0, out, sizeof(out), &len, &slot,
				     &jmp, why, sizeof(why)), 0);
	CHECK_INT(qp_decode_got_stub(push, sizeof(push), BASE, 0, out, sizeof(out), &len, &slot,
				     &jmp, why, sizeof(why)), -ENOTSUP);
	CHECK(strstr(why, "stack pointer") != NULL);
	CHECK_INT(qp_decode_got_stub(call, sizeof(call), BASE, 0, out, sizeof(out), &len, &slot,
				     &jmp, why, sizeof(why)), -ENOTSUP);
	CHECK(strstr(why, "branch") != NULL);
	CHECK_INT(qp_decode_got_stub(plain, sizeof(plain), BASE, 0, out, sizeof(out), &len, &slot,
				     &jmp, why, sizeof(why)), -ENOTSUP);
	CHECK_INT(qp_decode_got_stub(load, sizeof(load), BASE, 0, out, 16, &len, &slot, &jmp, why,
				     sizeof(why)), -ENOBUFS);
}

/* ------------------------------------------------------------------------ */
/* qp_decode_check_patch_site                                                */
/* ------------------------------------------------------------------------ */

struct site_case {
	const char *what;
	const char *hex;     /* the function body, at BASE */
	uint64_t site;       /* patched range [site, site + len) */
	size_t len;
	int err;             /* expected return */
	const char *why;     /* expected reason ("" on success) */
};

/*
 * The "loop" function, used several times below:
 *   1000: 31 c0          xor  %eax,%eax
 *   1002: ff c0          inc  %eax          <- loop head
 *   1004: 90             nop
 *   1005: 83 f8 0a       cmp  $0xa,%eax
 *   1008: 90 x8          nop padding up to 0x1010
 *   1010: 75 f0          jne  0x1002
 *   1012: c3             ret
 */
#define LOOP_HEAD "31 c0 ff c0 90 83 f8 0a 90 90 90 90 90 90 90 90"

static const struct site_case site_cases[] = {
	{ "push/mov/push: boundary at 5",
	  "55 48 89 e5 53 5b 5d c3", BASE, 5, 0, "" },
	{ "trailing int3 padding decodes",
	  "55 48 89 e5 53 5b 5d c3 cc cc cc cc", BASE, 5, 0, "" },
	{ "after endbr64",
	  "f3 0f 1e fa 55 48 89 e5 53 5b 5d c3", BASE + 4, 5, 0, "" },
	{ "whole function is exactly the jump",
	  "e9 00 00 00 00", BASE, 5, 0, "" },
	{ "too short",
	  "31 c0 90 c3", BASE, 5, -ERANGE,
	  "function is 4 bytes, too short for a 5-byte jump at offset 0" },
	{ "too short after endbr64",
	  "f3 0f 1e fa 31 c0 c3", BASE + 4, 5, -ERANGE,
	  "function is 7 bytes, too short for a 5-byte jump at offset 4" },
	{ "one-byte function",
	  "c3", BASE, 5, -ERANGE,
	  "function is 1 byte, too short for a 5-byte jump at offset 0" },
	{ "empty function",
	  "", BASE, 5, -ERANGE,
	  "function is 0 bytes, too short for a 5-byte jump at offset 0" },
	{ "site before the function",
	  "55 48 89 e5 53 5b 5d c3", BASE - 1, 5, -ERANGE,
	  "patch site 0xfff is outside the function 0x1000..0x1008" },
	{ "site after the function",
	  "55 48 89 e5 53 5b 5d c3", BASE + 9, 5, -ERANGE,
	  "patch site 0x1009 is outside the function 0x1000..0x1008" },
	{ "empty range",
	  "55 48 89 e5 53 5b 5d c3", BASE, 0, -EINVAL,
	  "patched range at 0x1000 is empty" },
	/* The jump may end inside an instruction (48 89 e5 at 0x1003): its
	 * tail at 0x1005 is never run unless something enters it. */
	{ "range ends inside an instruction",
	  "31 c0 90 48 89 e5 c3", BASE, 5, 0, "" },
	{ "branch into the tail of the cut instruction",
	  "31 c0 90 48 89 e5 eb fd c3", BASE, 5, -ENOTSUP,
	  "branch at 0x1006 targets 0x1005 inside the instruction at 0x1003"
	  " (len 3) that the patched range 0x1000..0x1005 cuts" },
	{ "branch to the start of the cut instruction",
	  "31 c0 90 48 89 e5 eb fb c3", BASE, 5, -ENOTSUP,
	  "branch at 0x1006 targets 0x1003 inside the patched range"
	  " 0x1000..0x1005" },
	{ "branch to the end of the cut instruction",
	  "31 c0 90 48 89 e5 eb fe c3", BASE, 5, 0, "" },
	{ "call inside the range returns into it",
	  "ff d0 90 90 90 c3", BASE, 5, -ENOTSUP,
	  "call at 0x1000 returns to 0x1002 inside the patched range"
	  " 0x1000..0x1005" },
	{ "call that fills the range returns to its end",
	  "e8 00 00 00 00 c3", BASE, 5, 0, "" },
	{ "function cut off inside the range",
	  "55 48 89 e5 0f", BASE, 5, -ENODATA,
	  "cannot decode instruction at 0x1004: cut off by the end of the"
	  " function at 0x1005" },
	{ "instruction crosses the start",
	  "55 48 89 e5 53 5b 5d c3", BASE + 2, 5, -ENOTSUP,
	  "instruction at 0x1001 (len 3) crosses the start of the patched"
	  " range 0x1002..0x1007" },
	{ "loop back into the range",
	  LOOP_HEAD " 75 f0 c3", BASE, 5, -ENOTSUP,
	  "branch at 0x1010 targets 0x1002 inside the patched range"
	  " 0x1000..0x1005" },
	{ "loop back to the site itself",
	  LOOP_HEAD " 75 ee c3", BASE, 5, 0, "" },
	{ "branch to the first byte after the range",
	  LOOP_HEAD " 75 f3 c3", BASE, 5, 0, "" },
	{ "loop to offset 2 is fine when patching at offset 2",
	  LOOP_HEAD " 75 f0 c3", BASE + 2, 3, 0, "" },
	{ "call rel32 into the range",
	  LOOP_HEAD " e8 ee ff ff ff c3", BASE, 5, -ENOTSUP,
	  "branch at 0x1010 targets 0x1003 inside the patched range"
	  " 0x1000..0x1005" },
	{ "branch before the range into it",
	  "eb 05 90 90 90 31 c0 ff c0 90 c3", BASE + 5, 5, -ENOTSUP,
	  "branch at 0x1000 targets 0x1007 inside the patched range"
	  " 0x1005..0x100a" },
	{ "rip-relative address of a byte inside the range",
	  LOOP_HEAD " 48 8d 05 ec ff ff ff c3", BASE, 5, -ENOTSUP,
	  "instruction at 0x1010 refers to 0x1003 inside the patched range"
	  " 0x1000..0x1005" },
	{ "rip-relative reference to the site itself",
	  LOOP_HEAD " 48 8d 05 e9 ff ff ff c3", BASE, 5, 0, "" },
	{ "function ends mid-instruction",
	  "55 48 89 e5 53 e8 00 00", BASE, 5, -ENODATA,
	  "cannot decode instruction at 0x1005: cut off by the end of the"
	  " function at 0x1008" },
	{ "invalid instruction after the range",
	  "55 48 89 e5 53 90 90 06 c3", BASE, 5, -EILSEQ,
	  "cannot decode instruction at 0x1007: invalid encoding" },
};

static void check_site_case(const struct site_case *c)
{
	uint8_t buf[64];
	char why[256];
	size_t n = hex_parse(c->hex, buf, sizeof(buf));
	int failed = check_failed;

	memset(why, 'x', sizeof(why));
	CHECK_INT(qp_decode_check_patch_site(buf, n, BASE, c->site, c->len,
					     why, sizeof(why)), c->err);
	CHECK_STR(why, c->why);
	if (check_failed != failed)
		fprintf(stderr, "  ^ in case '%s'\n", c->what);
}

static void test_patch_site(void)
{
	const uint8_t ok[] = { 0x55, 0x48, 0x89, 0xe5, 0x53, 0x5b, 0x5d, 0xc3 };
	const uint8_t bad[] = { 0x31, 0xc0, 0x90, 0xc3 };
	char why[16];
	size_t i;

	for (i = 0; i < sizeof(site_cases) / sizeof(site_cases[0]); i++)
		check_site_case(&site_cases[i]);

	/* @why is optional, and truncated to its size. */
	CHECK_INT(qp_decode_check_patch_site(ok, sizeof(ok), BASE, BASE, 5,
					     NULL, 0), 0);
	CHECK_INT(qp_decode_check_patch_site(bad, sizeof(bad), BASE, BASE, 5,
					     NULL, 0), -ERANGE);
	CHECK_INT(qp_decode_check_patch_site(bad, sizeof(bad), BASE, BASE, 5,
					     why, sizeof(why)), -ERANGE);
	CHECK_STR(why, "function is 4 b");
	CHECK_INT(qp_decode_check_patch_site(NULL, 8, BASE, BASE, 5, why,
					     sizeof(why)), -EINVAL);
	/* A function at the very top of the address space. */
	CHECK_INT(qp_decode_check_patch_site(ok, sizeof(ok), UINT64_MAX - 3,
					     UINT64_MAX - 3, 5, why,
					     sizeof(why)), -EINVAL);
}

/* ------------------------------------------------------------------------ */
/* Real ELF files: function symbols, for --objdump-compare and --bench       */
/* ------------------------------------------------------------------------ */

struct elf_func {
	uint64_t addr;       /* st_value */
	uint64_t size;       /* st_size */
	size_t shndx;        /* section holding the code */
	const uint8_t *code; /* the bytes, inside the ELF mapping */
	const char *name;    /* symbol name, inside the ELF mapping */
};

struct elf_image {
	int fd;               /* the file, -1 when closed */
	Elf *elf;             /* libelf handle on it */
	struct elf_func *funcs; /* functions, sorted by (section, address) */
	size_t nfuncs;        /* entries in funcs */
};

static int elf_func_cmp(const void *a, const void *b)
{
	const struct elf_func *x = a, *y = b;

	if (x->shndx != y->shndx)
		return x->shndx < y->shndx ? -1 : 1;
	if (x->addr != y->addr)
		return x->addr < y->addr ? -1 : 1;
	if (x->size != y->size)
		return x->size > y->size ? -1 : 1; /* larger first */
	return 0;
}

/* Keep one function per start address: aliases (memcpy, __memcpy, ...)
 * would only decode the same bytes again. */
static void elf_image_dedup(struct elf_image *img)
{
	size_t i, n = 0;

	qsort(img->funcs, img->nfuncs, sizeof(img->funcs[0]), elf_func_cmp);
	for (i = 0; i < img->nfuncs; i++) {
		if (n && img->funcs[n - 1].shndx == img->funcs[i].shndx &&
		    img->funcs[n - 1].addr == img->funcs[i].addr)
			continue;
		img->funcs[n++] = img->funcs[i];
	}
	img->nfuncs = n;
}

/* The code of symbol @sym, or NULL when it is not a function we can read. */
static const uint8_t *elf_sym_code(Elf *elf, const GElf_Ehdr *eh,
				   const GElf_Sym *sym)
{
	GElf_Shdr sh;
	Elf_Scn *scn;
	Elf_Data *data;
	uint64_t off;
	int type = GELF_ST_TYPE(sym->st_info);

	if ((type != STT_FUNC && type != STT_GNU_IFUNC) || !sym->st_size ||
	    sym->st_shndx == SHN_UNDEF || sym->st_shndx >= SHN_LORESERVE)
		return NULL;
	scn = elf_getscn(elf, sym->st_shndx);
	if (!scn || !gelf_getshdr(scn, &sh) || sh.sh_type != SHT_PROGBITS ||
	    !(sh.sh_flags & SHF_EXECINSTR))
		return NULL;
	data = elf_getdata(scn, NULL);
	off = eh->e_type == ET_REL ? sym->st_value : sym->st_value - sh.sh_addr;
	if (!data || !data->d_buf || off > data->d_size ||
	    sym->st_size > data->d_size - off)
		return NULL;
	return (const uint8_t *)data->d_buf + off;
}

/* Append the functions of symbol table @symscn (header @symsh) to @img. */
static int elf_image_read_syms(struct elf_image *img, Elf_Scn *symscn,
			       const GElf_Shdr *symsh)
{
	Elf_Data *data = elf_getdata(symscn, NULL);
	struct elf_func *funcs;
	GElf_Ehdr eh;
	GElf_Sym sym;
	size_t i, n;

	if (!data || !gelf_getehdr(img->elf, &eh) || !symsh->sh_entsize)
		return -EINVAL;
	n = symsh->sh_size / symsh->sh_entsize;
	funcs = realloc(img->funcs, (img->nfuncs + n + 1) * sizeof(*funcs));
	if (!funcs)
		return -ENOMEM;
	img->funcs = funcs;
	for (i = 0; i < n; i++) {
		struct elf_func *f = &img->funcs[img->nfuncs];

		if (!gelf_getsym(data, (int)i, &sym))
			return -EINVAL;
		f->code = elf_sym_code(img->elf, &eh, &sym);
		if (!f->code)
			continue;
		f->addr = sym.st_value;
		f->size = sym.st_size;
		f->shndx = sym.st_shndx;
		f->name = elf_strptr(img->elf, symsh->sh_link, sym.st_name);
		if (!f->name)
			f->name = "?";
		img->nfuncs++;
	}
	return 0;
}

static void elf_image_close(struct elf_image *img)
{
	free(img->funcs);
	img->funcs = NULL;
	if (img->elf)
		elf_end(img->elf);
	img->elf = NULL;
	if (img->fd >= 0)
		close(img->fd);
	img->fd = -1;
}

/*
 * Open @path and collect its function symbols from .symtab and .dynsym
 * both: a stripped library has only the latter, and an unstripped one has
 * local functions only in the former.
 */
static int elf_image_open(struct elf_image *img, const char *path)
{
	Elf_Scn *scn = NULL;
	GElf_Shdr sh;
	GElf_Ehdr eh;
	int err = 0;

	memset(img, 0, sizeof(*img));
	elf_version(EV_CURRENT);
	img->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (img->fd < 0) {
		err = -errno;
		fprintf(stderr, "cannot open '%s': %s\n", path, strerror(errno));
		return err;
	}
	img->elf = elf_begin(img->fd, ELF_C_READ_MMAP, NULL);
	if (!img->elf || !gelf_getehdr(img->elf, &eh) ||
	    eh.e_machine != EM_X86_64) {
		fprintf(stderr, "'%s': not an x86-64 ELF file: %s\n", path,
			elf_errmsg(-1));
		elf_image_close(img);
		return -EINVAL;
	}
	while (!err && (scn = elf_nextscn(img->elf, scn)) != NULL) {
		if (!gelf_getshdr(scn, &sh))
			err = -EINVAL;
		else if (sh.sh_type == SHT_SYMTAB || sh.sh_type == SHT_DYNSYM)
			err = elf_image_read_syms(img, scn, &sh);
	}
	if (err) {
		fprintf(stderr, "'%s': cannot read symbols: %s\n", path,
			elf_errmsg(-1));
		elf_image_close(img);
		return err;
	}
	elf_image_dedup(img);
	return 0;
}

/*
 * One line per instruction of every function, for the objdump comparison:
 *   F <start> <end> <name>       a function, [start, end)
 *   G <start> <end> <name>       code between functions (see compare_gaps)
 *   I <addr> <len> - -           an instruction
 *   I <addr> <len> B <target>    a relative branch (jmp/jcc/call/xbegin)
 *   I <addr> <len> R <target>    a RIP-relative memory operand
 *   E <addr> <errno>             decoding of the last F/G stopped here
 * Addresses in lowercase hex without 0x or leading zeros, as objdump.
 */
static void compare_chunk(char tag, const char *name, const uint8_t *code,
			  uint64_t addr, uint64_t size)
{
	struct qp_insn insn;
	uint64_t off;
	int err;

	printf("%c %" PRIx64 " %" PRIx64 " %s\n", tag, addr, addr + size, name);
	for (off = 0; off < size; off += insn.len) {
		err = qp_decode_insn(code + off, size - off, addr + off, &insn);
		if (err) {
			printf("E %" PRIx64 " %d\n", addr + off, err);
			return;
		}
		if (insn.has_rel)
			printf("I %" PRIx64 " %u %c %" PRIx64 "\n", insn.addr,
			       insn.len, insn.rip_relative ? 'R' : 'B',
			       insn.target);
		else
			printf("I %" PRIx64 " %u - -\n", insn.addr, insn.len);
	}
}

/*
 * The bytes of executable section @scn that no function symbol covers:
 * padding, the PLT, and in a stripped library every static function.
 * objdump sweeps them as the continuation of the symbol before, so a
 * sweep that starts where the previous function ends is in step with it.
 */
static void compare_gaps(const struct elf_image *img, Elf_Scn *scn,
			 const GElf_Shdr *sh, const char *secname)
{
	Elf_Data *data = elf_getdata(scn, NULL);
	size_t shndx = elf_ndxscn(scn), i;
	uint64_t pos = sh->sh_addr, end = sh->sh_addr + sh->sh_size;
	char name[256];

	if (!data || !data->d_buf || data->d_size != sh->sh_size)
		return;
	snprintf(name, sizeof(name), "start-of-%s", secname);
	for (i = 0; i < img->nfuncs; i++) {
		const struct elf_func *f = &img->funcs[i];

		if (f->shndx != shndx)
			continue;
		if (f->addr > pos)
			compare_chunk('G', name, (const uint8_t *)data->d_buf +
				      (pos - sh->sh_addr), pos, f->addr - pos);
		if (f->addr + f->size > pos) {
			pos = f->addr + f->size;
			snprintf(name, sizeof(name), "after-%s", f->name);
		}
	}
	if (end > pos)
		compare_chunk('G', name, (const uint8_t *)data->d_buf +
			      (pos - sh->sh_addr), pos, end - pos);
}

static int run_objdump_compare(const char *path)
{
	static char obuf[1 << 16];
	struct elf_image img;
	Elf_Scn *scn = NULL;
	GElf_Shdr sh;
	GElf_Ehdr eh;
	size_t i, shstrndx;
	const char *secname;

	if (elf_image_open(&img, path))
		return 2;
	setvbuf(stdout, obuf, _IOFBF, sizeof(obuf));
	for (i = 0; i < img.nfuncs; i++)
		compare_chunk('F', img.funcs[i].name, img.funcs[i].code,
			      img.funcs[i].addr, img.funcs[i].size);
	/* In a relocatable object every section starts at 0: no gaps. */
	if (gelf_getehdr(img.elf, &eh) && eh.e_type != ET_REL &&
	    elf_getshdrstrndx(img.elf, &shstrndx) == 0) {
		while ((scn = elf_nextscn(img.elf, scn)) != NULL) {
			if (!gelf_getshdr(scn, &sh) ||
			    sh.sh_type != SHT_PROGBITS ||
			    !(sh.sh_flags & SHF_EXECINSTR))
				continue;
			secname = elf_strptr(img.elf, shstrndx, sh.sh_name);
			compare_gaps(&img, scn, &sh, secname ? secname : "?");
		}
	}
	fprintf(stderr, "'%s': %zu functions\n", path, img.nfuncs);
	elf_image_close(&img);
	return fflush(stdout) ? 2 : 0;
}

static double now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One pass of qp_decode_insn over every function; returns instructions. */
static uint64_t bench_pass(const struct elf_image *img, uint64_t *bytes)
{
	struct qp_insn insn;
	uint64_t n = 0, off;
	size_t i;

	*bytes = 0;
	for (i = 0; i < img->nfuncs; i++) {
		const struct elf_func *f = &img->funcs[i];

		for (off = 0; off < f->size; off += insn.len, n++)
			if (qp_decode_insn(f->code + off, f->size - off,
					   f->addr + off, &insn))
				break;
		*bytes += off;
	}
	return n;
}

/* qp_decode_check_patch_site() at each function's patch entry.  Untimed,
 * it sets ok[i] for the functions it accepts; a refused one may stop the
 * sweep early, so timed passes run only the accepted ones. */
static void bench_site_pass(const struct elf_image *img, bool *ok,
			    bool timed)
{
	size_t i;

	for (i = 0; i < img->nfuncs; i++) {
		const struct elf_func *f = &img->funcs[i];
		uint64_t site;

		if (timed && !ok[i])
			continue;
		site = qp_decode_patch_entry(f->code, f->size, f->addr);
		ok[i] = qp_decode_check_patch_site(f->code, f->size, f->addr,
						   site, QP_JMP_REL32_SIZE,
						   NULL, 0) == 0;
	}
}

/* Instructions in the functions marked in @ok. */
static uint64_t bench_count(const struct elf_image *img, const bool *ok)
{
	struct qp_insn insn;
	uint64_t n = 0, off;
	size_t i;

	for (i = 0; i < img->nfuncs; i++) {
		const struct elf_func *f = &img->funcs[i];

		for (off = 0; ok[i] && off < f->size; off += insn.len, n++)
			if (qp_decode_insn(f->code + off, f->size - off,
					   f->addr + off, &insn))
				break;
	}
	return n;
}

/*
 * The passes over the code that moves and compares: one list of every
 * instruction start (so that the relocation pass times qp_decode_relocate()
 * alone), and which functions decode to their end (find_refs and compare
 * refuse the others).
 */
struct bench_insn {
	uint32_t func; /* index in img->funcs */
	uint32_t off;  /* offset of the instruction in the function */
};

struct bench {
	const struct elf_image *img; /* the file */
	struct bench_insn *insns;    /* every instruction start */
	size_t ninsns;               /* entries in insns */
	bool *whole;                 /* the function decodes to its end */
	uint64_t whole_insns;        /* instructions of those functions */
};

static int bench_init(struct bench *b, const struct elf_image *img)
{
	struct qp_insn insn;
	size_t i, cap = 0;
	uint64_t off;
	int err = 0;

	memset(b, 0, sizeof(*b));
	b->img = img;
	b->whole = calloc(img->nfuncs + 1, sizeof(*b->whole));
	if (!b->whole)
		return -ENOMEM;
	for (i = 0; i < img->nfuncs; i++) {
		const struct elf_func *f = &img->funcs[i];
		uint64_t n = 0;

		for (off = 0; off < f->size; off += insn.len, n++) {
			err = qp_decode_insn(f->code + off, f->size - off,
					     f->addr + off, &insn);
			if (err)
				break;
			if (b->ninsns == cap) {
				struct bench_insn *p;

				cap = cap ? 2 * cap : 4096;
				p = realloc(b->insns, cap * sizeof(*p));
				if (!p)
					return -ENOMEM;
				b->insns = p;
			}
			b->insns[b->ninsns].func = (uint32_t)i;
			b->insns[b->ninsns++].off = (uint32_t)off;
		}
		b->whole[i] = !err;
		if (!err)
			b->whole_insns += n;
	}
	return 0;
}

static void bench_release(struct bench *b)
{
	free(b->insns);
	free(b->whole);
	memset(b, 0, sizeof(*b));
}

/* Every instruction moved 1 MiB up, into a scratch buffer. */
static void bench_relocate_pass(const struct bench *b)
{
	uint8_t out[QP_RELOCATE_MAX];
	size_t k, len;

	for (k = 0; k < b->ninsns; k++) {
		const struct elf_func *f = &b->img->funcs[b->insns[k].func];
		uint64_t off = b->insns[k].off;

		qp_decode_relocate(f->code + off, f->size - off, f->addr + off,
				   f->addr + off + (1u << 20), out, sizeof(out),
				   &len, NULL, 0);
	}
}

/* Each function searched for references into itself. */
static void bench_refs_pass(const struct bench *b)
{
	struct qp_ref refs[16];
	size_t i, count;

	for (i = 0; i < b->img->nfuncs; i++) {
		const struct elf_func *f = &b->img->funcs[i];

		if (b->whole[i])
			qp_decode_find_refs(f->code, f->size, f->addr, f->addr,
					    f->addr + f->size, refs, 16, &count,
					    NULL, 0);
	}
}

/* Each function compared with itself. */
static void bench_compare_pass(const struct bench *b)
{
	struct qp_compare_result res;
	size_t i;

	for (i = 0; i < b->img->nfuncs; i++) {
		const struct elf_func *f = &b->img->funcs[i];

		if (b->whole[i])
			qp_decode_compare(f->code, f->size, f->addr, f->code,
					  f->size, f->addr, NULL, 0, &res,
					  NULL, 0);
	}
}

/* Run @pass for at least 2 s and print its rate over @per_pass insns. */
static void bench_time(const char *name, void (*pass)(const struct bench *),
		       const struct bench *b, uint64_t per_pass)
{
	double t0 = now_seconds(), t;
	int passes;

	for (passes = 0; passes < 3 || now_seconds() - t0 < 2.0; passes++)
		pass(b);
	t = now_seconds() - t0;
	printf("decode-bench: %s: %" PRIu64 " instructions, %d passes in"
	       " %.2f s, %.2f M insns/s\n", name, per_pass, passes, t,
	       (double)per_pass * passes / t / 1e6);
}

static int bench_moves(const struct elf_image *img)
{
	struct bench b;

	if (bench_init(&b, img)) {
		bench_release(&b);
		return 2;
	}
	bench_time("qp_decode_relocate (+1 MiB)", bench_relocate_pass, &b,
		   b.ninsns);
	bench_time("qp_decode_find_refs", bench_refs_pass, &b, b.whole_insns);
	bench_time("qp_decode_compare (pairs)", bench_compare_pass, &b,
		   b.whole_insns);
	bench_release(&b);
	return 0;
}

static int run_bench(const char *path)
{
	struct elf_image img;
	uint64_t insns = 0, per_pass = 0, bytes = 0;
	size_t nok = 0, i;
	double t0, t;
	bool *ok;
	int passes, ret;

	if (elf_image_open(&img, path))
		return 2;
	t0 = now_seconds();
	for (passes = 0; passes < 3 || now_seconds() - t0 < 2.0; passes++) {
		per_pass = bench_pass(&img, &bytes);
		insns += per_pass;
	}
	t = now_seconds() - t0;
	printf("decode-bench: '%s': %zu functions, %" PRIu64 " bytes, %" PRIu64
	       " instructions per pass\n", path, img.nfuncs, bytes, per_pass);
	printf("decode-bench: qp_decode_insn: %d passes in %.2f s, %.2f M insns/s\n",
	       passes, t, (double)insns / t / 1e6);

	ok = calloc(img.nfuncs + 1, sizeof(*ok));
	if (!ok) {
		elf_image_close(&img);
		return 2;
	}
	bench_site_pass(&img, ok, false);
	for (i = 0; i < img.nfuncs; i++)
		nok += ok[i];
	per_pass = bench_count(&img, ok);
	t0 = now_seconds();
	for (passes = 0; passes < 3 || now_seconds() - t0 < 2.0; passes++)
		bench_site_pass(&img, ok, true);
	t = now_seconds() - t0;
	printf("decode-bench: qp_decode_check_patch_site: %zu of %zu functions"
	       " accepted; on those, %d passes in %.2f s, %.2f M insns/s\n",
	       nok, img.nfuncs, passes, t,
	       (double)per_pass * passes / t / 1e6);
	free(ok);
	ret = bench_moves(&img);
	elf_image_close(&img);
	return ret;
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "--objdump-compare") == 0)
		return run_objdump_compare(argv[2]);
	if (argc == 3 && strcmp(argv[1], "--bench") == 0)
		return run_bench(argv[2]);
	if (argc != 1) {
		fprintf(stderr, "usage: %s [--objdump-compare FILE | --bench FILE]\n",
			argv[0]);
		return 2;
	}
	test_insn_table();
	test_insn_addresses();
	test_insn_errors();
	test_insn_random();
	test_patch_entry();
	test_padding();
	test_got_stub();
	test_patch_site();
	return check_report("test_decode");
}
