/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the parts of libdecode that move and compare code:
 * qp_decode_relocate(), qp_decode_find_refs() and qp_decode_compare().
 *
 *   - relocation round trips: a table of instructions, each moved by small,
 *     medium and large distances and past the 2 GiB reach; the result is
 *     decoded again at its new address and must point where the original
 *     did;
 *   - random bytes, relocated: whatever decodes must round-trip or fail
 *     with a reason;
 *   - every instruction of libc's functions, relocated by four distances;
 *   - references: hand-made code, and the GOT and PLT of libc;
 *   - comparison: hand-made pairs for each QP_DIFF_* bit, and pairs of
 *     functions compiled here from C that differ in __LINE__ only, or in
 *     real code.
 *
 * The instruction bytes were checked with GNU as and objdump.
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "qpatch/decode.h"
#include "qpatch/elf.h"

#define BASE 0x1000
/* Where moved code sits: high enough that moving it down 2 GiB stays
 * above 0, as in a real process. */
#define FROM 0x7f0000100000ull
#define GiB (1ull << 30)
#define MiB (1ull << 20)

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

static bool fits(int64_t v, unsigned size)
{
	if (size == 1)
		return v >= INT8_MIN && v <= INT8_MAX;
	if (size == 2)
		return v >= INT16_MIN && v <= INT16_MAX;
	return v >= INT32_MIN && v <= INT32_MAX;
}

/* ------------------------------------------------------------------------ */
/* Relocation: one table, many distances                                     */
/* ------------------------------------------------------------------------ */

enum {
	R_NOREL = 1 << 0, /* no relative field: copied as is */
	R_EIP = 1 << 1,   /* [eip + disp32]: wraps at 4 GiB, always in reach */
};

struct reloc_case {
	const char *what; /* AT&T text as objdump prints it */
	const char *hex;  /* the bytes, at FROM */
	unsigned flags;   /* R_* */
	uint8_t wide;     /* length once widened to rel32; 0 when the
			   * instruction has no wider form */
};

static const struct reloc_case reloc_cases[] = {
	/* copied unchanged */
	{ "nop", "90", R_NOREL, 0 },
	{ "mov %rsp,%rbp", "48 89 e5", R_NOREL, 0 },
	{ "endbr64", "f3 0f 1e fa", R_NOREL, 0 },
	{ "ret", "c3", R_NOREL, 0 },
	{ "movabs $0x1122334455667788,%r11", "49 bb 88 77 66 55 44 33 22 11",
	  R_NOREL, 0 },
	{ "mov %fs:0x28,%rax", "64 48 8b 04 25 28 00 00 00", R_NOREL, 0 },
	{ "call *%rax", "ff d0", R_NOREL, 0 },
	{ "vaddps %zmm1,%zmm0,%zmm0{%k1}", "62 f1 7c 49 58 c1", R_NOREL, 0 },
	/* rel8 branches: widened when they no longer reach */
	{ "jmp .+0x12", "eb 10", 0, 5 },
	{ "jmp . (rel8 -2)", "eb fe", 0, 5 },
	{ "je .+7", "74 05", 0, 6 },
	{ "jne .-0xe", "75 f0", 0, 6 },
	{ "jg .+0x7f+2", "7f 7f", 0, 6 },
	{ "ds je (branch-taken hint)", "3e 74 05", 0, 7 },
	{ "cs jne (branch-not-taken hint)", "2e 75 05", 0, 7 },
	{ "bnd je", "f2 74 05", 0, 7 },
	{ "jrcxz", "e3 10", 0, 0 },
	{ "jecxz", "67 e3 10", 0, 0 },
	{ "loop", "e2 fe", 0, 0 },
	{ "loope", "e1 fe", 0, 0 },
	{ "loopne", "e0 40", 0, 0 },
	/* rel32 branches */
	{ "jmp .+0x105", "e9 00 01 00 00", 0, 0 },
	{ "jmp . (rel32 -5)", "e9 fb ff ff ff", 0, 0 },
	{ "bnd jmp", "f2 e9 00 00 00 00", 0, 0 },
	{ "jne .+0x206", "0f 85 00 02 00 00", 0, 0 },
	{ "call .+5", "e8 00 00 00 00", 0, 0 },
	{ "call .-0x1000", "e8 fb ef ff ff", 0, 0 },
	{ "bnd call", "f2 e8 00 00 00 00", 0, 0 },
	{ "xbegin .+0x16", "c7 f8 10 00 00 00", 0, 0 },
	{ "data16 xbegin .+0x15 (rel16)", "66 c7 f8 10 00", 0, 0 },
	/* RIP-relative */
	{ "mov 0x10(%rip),%rax", "48 8b 05 10 00 00 00", 0, 0 },
	{ "lea -0x7(%rip),%rdi", "48 8d 3d f9 ff ff ff", 0, 0 },
	{ "cmpl $0x5,0x100(%rip)", "83 3d 00 01 00 00 05", 0, 0 },
	{ "movl $0x12345678,0x10(%rip)", "c7 05 10 00 00 00 78 56 34 12", 0,
	  0 },
	{ "movw $0x1234,0x10(%rip)", "66 c7 05 10 00 00 00 34 12", 0, 0 },
	{ "lock cmpxchg %rcx,0x10(%rip)", "f0 48 0f b1 0d 10 00 00 00", 0, 0 },
	{ "mov %fs:0x10(%rip),%rax", "64 48 8b 05 10 00 00 00", 0, 0 },
	{ "push 0x10(%rip)", "ff 35 10 00 00 00", 0, 0 },
	{ "call *0x0(%rip) (GOT)", "ff 15 00 00 00 00", 0, 0 },
	{ "jmp *0x10(%rip)", "ff 25 10 00 00 00", 0, 0 },
	{ "roundsd $0x4,0x10(%rip),%xmm0", "66 0f 3a 0b 05 10 00 00 00 04", 0,
	  0 },
	{ "vaddps 0x10(%rip),%ymm0,%ymm0", "c5 fc 58 05 10 00 00 00", 0, 0 },
	{ "vcmpltps 0x10(%rip),%ymm0,%ymm1", "c5 fc c2 0d 10 00 00 00 01", 0,
	  0 },
	{ "vaddps 0x100(%rip),%zmm0,%zmm0", "62 f1 7c 48 58 05 00 01 00 00", 0,
	  0 },
	{ "vpternlogd $0x11,0x40(%rip),%zmm1,%zmm0",
	  "62 f3 75 48 25 05 40 00 00 00 11", 0, 0 },
	{ "vmovdqu64 0x80(%rip),%zmm5{%k1}", "62 f1 fe 49 6f 2d 80 00 00 00",
	  0, 0 },
	{ "vaddps 0x10(%rip){1to16},%zmm0,%zmm0",
	  "62 f1 7c 58 58 05 10 00 00 00", 0, 0 },
	{ "mov 0x10(%eip),%eax", "67 8b 05 10 00 00 00", R_EIP, 0 },
};

static const int64_t distances[] = {
	100, -100, 1 * (int64_t)MiB, -1 * (int64_t)MiB,
	(int64_t)(19 * GiB / 10), -(int64_t)(19 * GiB / 10),
	(int64_t)(2 * GiB + 64 * 1024), -(int64_t)(2 * GiB + 64 * 1024),
	(int64_t)(64 * GiB),
};

/* What qp_decode_relocate() must do for @c moved from FROM to @to, worked
 * out here independently: the expected length, or 0 for -ERANGE. */
static size_t reloc_expect(const struct reloc_case *c,
			   const struct qp_insn *orig, uint64_t to)
{
	int64_t disp = (int64_t)(orig->target - (to + orig->len));

	if (c->flags & (R_NOREL | R_EIP))
		return orig->len;
	if (fits(disp, orig->rel_size))
		return orig->len;
	if (!c->wide)
		return 0;
	disp = (int64_t)(orig->target - (to + c->wide));
	return fits(disp, 4) ? c->wide : 0;
}

/* Decode @out at @to and compare with the original. */
static void reloc_check_result(const uint8_t *in, const struct qp_insn *orig,
			       const uint8_t *out, size_t len, uint64_t to)
{
	struct qp_insn moved;

	CHECK_INT(qp_decode_insn(out, len, to, &moved), 0);
	CHECK_INT(moved.len, len);
	CHECK_INT(moved.kind, orig->kind);
	CHECK_INT(moved.has_rel, orig->has_rel);
	CHECK_INT(moved.rip_relative, orig->rip_relative);
	CHECK_INT(moved.indirect, orig->indirect);
	CHECK_INT(moved.target, orig->target);
	/* Same length: only the field may differ. */
	if (len == orig->len && orig->has_rel) {
		CHECK(memcmp(out, in, orig->rel_off) == 0);
		CHECK(memcmp(out + orig->rel_off + orig->rel_size,
			     in + orig->rel_off + orig->rel_size,
			     len - orig->rel_off - orig->rel_size) == 0);
	} else if (!orig->has_rel) {
		CHECK(memcmp(out, in, len) == 0);
	}
}

static void reloc_check_move(const struct reloc_case *c, const uint8_t *in,
			     size_t n, int64_t d)
{
	uint64_t to = FROM + (uint64_t)d;
	uint8_t out[QP_RELOCATE_MAX];
	struct qp_insn orig;
	char why[256];
	size_t len = 99, want;
	int err, failed = check_failed;

	CHECK_INT(qp_decode_insn(in, n, FROM, &orig), 0);
	CHECK_INT(orig.len, n);
	CHECK_INT(orig.has_rel, !(c->flags & R_NOREL));
	want = reloc_expect(c, &orig, to);
	memset(why, 'x', sizeof(why));
	err = qp_decode_relocate(in, n, FROM, to, out, sizeof(out), &len, why,
				 sizeof(why));
	if (!want) {
		CHECK_INT(err, -ERANGE);
		CHECK_INT(len, 0);
		CHECK_CONTAINS(why, "beyond");
	} else {
		CHECK_INT(err, 0);
		CHECK_STR(why, "");
		CHECK_INT(len, want);
		if (!err)
			reloc_check_result(in, &orig, out, len, to);
	}
	if (check_failed != failed)
		fprintf(stderr, "  ^ in case '%s' moved by %lld\n", c->what,
			(long long)d);
}

static void test_reloc_table(void)
{
	uint8_t in[32];
	size_t i, k, n;

	for (i = 0; i < sizeof(reloc_cases) / sizeof(reloc_cases[0]); i++) {
		n = hex_parse(reloc_cases[i].hex, in, sizeof(in));
		for (k = 0; k < sizeof(distances) / sizeof(distances[0]); k++)
			reloc_check_move(&reloc_cases[i], in, n, distances[k]);
		/* Not moving at all is a no-op. */
		reloc_check_move(&reloc_cases[i], in, n, 0);
	}
}

/* Exact bytes and messages for a few moves. */
static void test_reloc_exact(void)
{
	const uint8_t je[] = { 0x74, 0x05 }, jmp[] = { 0xeb, 0x10 };
	const uint8_t hint[] = { 0x3e, 0x74, 0x05 };
	const uint8_t call[] = { 0xe8, 0x00, 0x00, 0x00, 0x00 };
	const uint8_t lea[] = { 0x48, 0x8d, 0x05, 0x10, 0x00, 0x00, 0x00 };
	const uint8_t jrcxz[] = { 0xe3, 0x10 }, bad[] = { 0x06 };
	const uint8_t xbegin16[] = { 0x66, 0xc7, 0xf8, 0x10, 0x00 };
	uint8_t out[QP_RELOCATE_MAX];
	char why[256];
	size_t len;

	/* je .+7 at FROM moved 1 MiB up: jcc rel32 back to FROM + 7 */
	CHECK_INT(qp_decode_relocate(je, 2, FROM, FROM + MiB, out, sizeof(out),
				     &len, why, sizeof(why)), 0);
	CHECK_INT(len, 6);
	CHECK(memcmp(out, "\x0f\x84\x01\x00\xf0\xff", 6) == 0);
	CHECK_INT(qp_decode_relocate(jmp, 2, FROM, FROM - MiB, out,
				     sizeof(out), &len, why, sizeof(why)), 0);
	CHECK_INT(len, 5);
	CHECK(memcmp(out, "\xe9\x0d\x00\x10\x00", 5) == 0);
	/* The branch hint survives the widening. */
	CHECK_INT(qp_decode_relocate(hint, 3, FROM, FROM + MiB, out,
				     sizeof(out), &len, why, sizeof(why)), 0);
	CHECK_INT(len, 7);
	CHECK(memcmp(out, "\x3e\x0f\x84", 3) == 0);
	/* A rel8 that still reaches stays rel8. */
	CHECK_INT(qp_decode_relocate(je, 2, FROM, FROM + 7 - 2 - 127, out,
				     sizeof(out), &len, why, sizeof(why)), 0);
	CHECK_INT(len, 2);
	CHECK_INT(out[1], 0x7f);
	CHECK_INT(qp_decode_relocate(je, 2, FROM, FROM + 7 - 2 - 128, out,
				     sizeof(out), &len, why, sizeof(why)), 0);
	CHECK_INT(len, 6);
	CHECK_INT(qp_decode_relocate(je, 2, FROM, FROM + 7 - 2 + 128, out,
				     sizeof(out), &len, why, sizeof(why)), 0);
	CHECK_INT(len, 2);
	CHECK_INT(out[1], 0x80);

	/* The edges of rel32: call .+5 (target FROM + 5) */
	CHECK_INT(qp_decode_relocate(call, 5, FROM, FROM - INT32_MAX, out,
				     sizeof(out), &len, why, sizeof(why)), 0);
	CHECK(memcmp(out, "\xe8\xff\xff\xff\x7f", 5) == 0);
	CHECK_INT(qp_decode_relocate(call, 5, FROM, FROM - INT32_MAX - 1ull,
				     out, sizeof(out), &len, why, sizeof(why)),
		  -ERANGE);
	CHECK_STR(why, "call at 0x7f0000100000 targets 0x7f0000100005, beyond"
		  " the +/-2 GiB that a rel32 reaches from 0x7eff80100000");
	CHECK_INT(qp_decode_relocate(call, 5, FROM, FROM + 0x80000000ull, out,
				     sizeof(out), &len, why, sizeof(why)), 0);
	CHECK(memcmp(out, "\xe8\x00\x00\x00\x80", 5) == 0);
	CHECK_INT(qp_decode_relocate(call, 5, FROM, FROM + 0x80000001ull, out,
				     sizeof(out), &len, why, sizeof(why)),
		  -ERANGE);
	CHECK_INT(qp_decode_relocate(lea, 7, FROM, FROM + 3 * GiB, out,
				     sizeof(out), &len, why, sizeof(why)),
		  -ERANGE);
	CHECK_STR(why, "lea at 0x7f0000100000 refers to 0x7f0000100017,"
		  " beyond the +/-2 GiB that a rip-relative disp32 reaches"
		  " from 0x7f00c0100000");
	CHECK_INT(qp_decode_relocate(jrcxz, 2, FROM, FROM + 4096, out,
				     sizeof(out), &len, why, sizeof(why)),
		  -ERANGE);
	CHECK_STR(why, "jrcxz at 0x7f0000100000 targets 0x7f0000100012, beyond"
		  " the reach of its rel8 from 0x7f0000101000, and jrcxz has"
		  " no rel32 form");

	CHECK_INT(qp_decode_relocate(xbegin16, 5, FROM, FROM + MiB, out,
				     sizeof(out), &len, why, sizeof(why)),
		  -ERANGE);
	CHECK_STR(why, "xbegin at 0x7f0000100000 targets 0x7f0000100015,"
		  " beyond the reach of its rel16 from 0x7f0000200000, and"
		  " xbegin rel16 is not widened");

	/* Buffers and arguments */
	CHECK_INT(qp_decode_relocate(je, 2, FROM, FROM + MiB, out, 5, &len,
				     why, sizeof(why)), -ENOBUFS);
	CHECK_STR(why, "instruction at 0x7f0000100000 needs 6 bytes at"
		  " 0x7f0000200000, the buffer holds 5");
	CHECK_INT(len, 0);
	CHECK_INT(qp_decode_relocate(bad, 1, BASE, BASE, out, sizeof(out),
				     &len, why, sizeof(why)), -EILSEQ);
	CHECK_STR(why, "cannot decode instruction at 0x1000: invalid encoding");
	CHECK_INT(qp_decode_relocate(call, 3, BASE, BASE, out, sizeof(out),
				     &len, why, sizeof(why)), -ENODATA);
	CHECK_STR(why, "cannot decode instruction at 0x1000: cut off after 3"
		  " bytes");
	CHECK_INT(qp_decode_relocate(call, 5, BASE, BASE, NULL, 0, &len, why,
				     sizeof(why)), -EINVAL);
	CHECK_INT(qp_decode_relocate(call, 5, BASE, BASE, out, sizeof(out),
				     NULL, NULL, 0), -EINVAL);
	CHECK_INT(qp_decode_relocate(NULL, 5, BASE, BASE, out, sizeof(out),
				     &len, NULL, 0), -EINVAL);
	/* @why is optional */
	CHECK_INT(qp_decode_relocate(jrcxz, 2, FROM, FROM + 4096, out,
				     sizeof(out), &len, NULL, 0), -ERANGE);
}

/* In place: @out may be @code. */
static void test_reloc_in_place(void)
{
	uint8_t buf[QP_RELOCATE_MAX] = { 0x48, 0x8b, 0x05, 0x10, 0x00, 0x00,
					 0x00 };
	struct qp_insn insn;
	size_t len;

	CHECK_INT(qp_decode_relocate(buf, 7, FROM, FROM + 0x1000, buf,
				     sizeof(buf), &len, NULL, 0), 0);
	CHECK_INT(qp_decode_insn(buf, len, FROM + 0x1000, &insn), 0);
	CHECK_INT(insn.target, FROM + 0x17);
	buf[0] = 0x74;
	buf[1] = 0x05;
	CHECK_INT(qp_decode_relocate(buf, 2, FROM, FROM + MiB, buf,
				     sizeof(buf), &len, NULL, 0), 0);
	CHECK_INT(qp_decode_insn(buf, len, FROM + MiB, &insn), 0);
	CHECK_INT(insn.target, FROM + 7);
	CHECK_INT(insn.len, 6);
}

/*
 * Random bytes, relocated by random distances: when the bytes decode, the
 * relocation either round-trips (same target at the new address) or fails
 * with -ERANGE and a reason.
 */
static uint64_t rnd_state = 0x2545f4914f6cdd1dull;

static uint64_t rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return rnd_state;
}

static void test_reloc_random(void)
{
	uint8_t in[16], out[QP_RELOCATE_MAX];
	unsigned ok = 0, range = 0, widened = 0, iter;
	struct qp_insn orig, moved;
	char why[256];
	size_t k, len;
	int err;

	for (iter = 0; iter < 20000; iter++) {
		uint64_t r = rnd(), to;

		for (k = 0; k < sizeof(in); k++)
			in[k] = (uint8_t)(rnd() >> 24);
		/* Bias towards branches (jcc rel8) and RIP-relative
		 * operands (ModRM 05). */
		if (r & 1)
			in[(r >> 1) % 4] = (r & 2) ? 0x05 :
					   (uint8_t)(0x70 + (r >> 8) % 16);
		/* within +/-2.5 GiB */
		to = FROM + rnd() % (5 * GiB) - 5 * GiB / 2;
		if (qp_decode_insn(in, sizeof(in), FROM, &orig))
			continue;
		err = qp_decode_relocate(in, sizeof(in), FROM, to, out,
					 sizeof(out), &len, why, sizeof(why));
		if (err == -ENOTSUP) {
			/* a jcc rel8 whose prefixes leave no room for rel32 */
			CHECK_CONTAINS(why, "cannot re-encode");
			continue;
		}
		if (err) {
			CHECK_INT(err, -ERANGE);
			CHECK(orig.has_rel && why[0]);
			range++;
			continue;
		}
		ok++;
		widened += len != orig.len;
		CHECK(len == orig.len || (orig.has_rel && orig.rel_size == 1));
		CHECK_INT(qp_decode_insn(out, len, to, &moved), 0);
		CHECK_INT(moved.len, len);
		CHECK_INT(moved.target, orig.target);
		CHECK_INT(moved.kind, orig.kind);
	}
	printf("relocate random: %u relocated (%u widened), %u out of reach\n",
	       ok, widened, range);
	CHECK(ok > 10000 && widened > 100 && range > 100);
}

/* ------------------------------------------------------------------------ */
/* libc: every instruction of every function, moved                          */
/* ------------------------------------------------------------------------ */

struct func {
	uint64_t addr;       /* st_value */
	uint64_t size;       /* st_size */
	const uint8_t *code; /* the bytes */
};

struct funcs {
	struct qp_elf *elf; /* the file, owning the bytes */
	struct func *f;     /* its functions, by address, one per address */
	size_t n;           /* entries in f */
};

static int func_cmp(const void *a, const void *b)
{
	const struct func *x = a, *y = b;

	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

static const char *libc_path(void)
{
	static const char *const paths[] = {
		"/lib/x86_64-linux-gnu/libc.so.6", "/usr/lib64/libc.so.6",
		"/lib64/libc.so.6",
	};
	size_t i;

	for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
		if (access(paths[i], R_OK) == 0)
			return paths[i];
	return NULL;
}

/* The function symbols of @path with their bytes, de-duplicated. */
static int funcs_open(struct funcs *fs, const char *path, unsigned flags)
{
	struct qp_error err = { 0 };
	struct qp_elf_sym *s;
	size_t i, n = 0;

	memset(fs, 0, sizeof(*fs));
	if (qp_elf__open(path, flags, &fs->elf, &err)) {
		fprintf(stderr, "%s\n", err.msg);
		return -1;
	}
	fs->f = calloc(fs->elf->nsyms + 1, sizeof(*fs->f));
	if (!fs->f)
		return -1;
	qp_elf_for_each_sym(fs->elf, s) {
		uint64_t off;

		if ((s->type != STT_FUNC && s->type != STT_GNU_IFUNC) ||
		    !s->size || !s->sec || !s->sec->data ||
		    !(s->sec->shdr.sh_flags & SHF_EXECINSTR))
			continue;
		off = fs->elf->ehdr.e_type == ET_REL ? s->value :
		      s->value - s->sec->shdr.sh_addr;
		if (off > s->sec->size || s->size > s->sec->size - off)
			continue;
		fs->f[fs->n].addr = s->value;
		fs->f[fs->n].size = s->size;
		fs->f[fs->n].code = s->sec->data + off;
		fs->n++;
	}
	qsort(fs->f, fs->n, sizeof(*fs->f), func_cmp);
	for (i = 0; i < fs->n; i++)
		if (!n || fs->f[n - 1].addr != fs->f[i].addr)
			fs->f[n++] = fs->f[i];
	fs->n = n;
	return 0;
}

static void funcs_close(struct funcs *fs)
{
	free(fs->f);
	qp_elf__free(fs->elf);
	memset(fs, 0, sizeof(*fs));
}

struct sweep_stats {
	uint64_t insns;    /* instructions decoded */
	uint64_t moves;    /* relocations done and checked */
	uint64_t rel;      /* of which with a relative field */
	uint64_t widened;  /* of which widened from rel8 */
	uint64_t refused;  /* -ERANGE: loop/jrcxz out of rel8 reach */
};

/* One instruction @orig of libc at @from moved to @to. */
static void sweep_move(const uint8_t *code, size_t size,
		       const struct qp_insn *orig, uint64_t to,
		       struct sweep_stats *st)
{
	uint8_t out[QP_RELOCATE_MAX];
	char why[256];
	size_t len;
	int err;

	err = qp_decode_relocate(code, size, orig->addr, to, out, sizeof(out),
				 &len, why, sizeof(why));
	if (err == -ERANGE && orig->has_rel && orig->rel_size == 1 &&
	    strstr(why, "has no rel32 form")) {
		st->refused++;
		return;
	}
	if (err) {
		CHECK_INT(err, 0);
		fprintf(stderr, "  ^ %s\n", why);
		return;
	}
	st->moves++;
	st->rel += orig->has_rel;
	st->widened += len != orig->len;
	reloc_check_result(code, orig, out, len, to);
}

static void test_reloc_libc(void)
{
	static const int64_t dist[] = {
		64, -(int64_t)MiB, (int64_t)(19 * GiB / 10),
		-(int64_t)(19 * GiB / 10),
	};
	const uint64_t base = 0x7f0000000000ull; /* a plausible load bias */
	struct sweep_stats st = { 0 };
	const char *path = libc_path();
	struct qp_insn insn;
	struct funcs fs;
	size_t i, k;
	uint64_t off;
	int failed = check_failed;

	if (!path || funcs_open(&fs, path, QP_ELF_DYNSYM | QP_ELF_NO_RELAS)) {
		CHECK(!"libc with function symbols");
		return;
	}
	for (i = 0; i < fs.n; i++) {
		const struct func *f = &fs.f[i];

		for (off = 0; off < f->size; off += insn.len) {
			uint64_t from = base + f->addr + off;

			if (qp_decode_insn(f->code + off, f->size - off, from,
					   &insn))
				break;
			st.insns++;
			for (k = 0; k < sizeof(dist) / sizeof(dist[0]); k++)
				sweep_move(f->code + off, f->size - off, &insn,
					   from + (uint64_t)dist[k], &st);
			if (check_failed - failed > 20)
				break;
		}
	}
	printf("relocate libc: '%s': %zu functions, %" PRIu64 " instructions"
	       " moved by %zu distances: %" PRIu64 " relocations checked (%"
	       PRIu64 " with a relative field, %" PRIu64 " widened), %" PRIu64
	       " refused (loop/jrcxz)\n", path, fs.n, st.insns,
	       sizeof(dist) / sizeof(dist[0]), st.moves, st.rel, st.widened,
	       st.refused);
	CHECK(st.insns > 50000);
	CHECK(st.rel > 10000);
	CHECK(st.widened > 1000);
	funcs_close(&fs);
}

/* ------------------------------------------------------------------------ */
/* qp_decode_find_refs                                                       */
/* ------------------------------------------------------------------------ */

/* Append @hex, then a rel32 to @target, then @tail to the code at BASE. */
static void emit_rel32(uint8_t *buf, size_t *off, const char *hex,
		       uint64_t target, const char *tail)
{
	uint8_t t[16];
	size_t n = hex_parse(hex, buf + *off, 16), nt = hex_parse(tail, t, 16);
	uint64_t end = BASE + *off + n + 4 + nt;
	uint32_t v = (uint32_t)(target - end);

	*off += n;
	memcpy(buf + *off, &v, 4);
	*off += 4;
	memcpy(buf + *off, t, nt);
	*off += nt;
}

static void emit(uint8_t *buf, size_t *off, const char *hex)
{
	*off += hex_parse(hex, buf + *off, 16);
}

#define FUNC 0x2000 /* the function whose callers are looked for */
#define GOT 0x3000  /* a GOT slot */

/* The code searched by the tests below, at BASE. */
static size_t refs_code(uint8_t *buf)
{
	size_t off = 0;

	emit_rel32(buf, &off, "e8", FUNC, "");              /* call FUNC */
	emit_rel32(buf, &off, "e9", FUNC + 0x10, "");       /* jmp */
	emit_rel32(buf, &off, "0f 84", FUNC + 4, "");       /* je */
	emit(buf, &off, "74 00");                           /* je .+2 */
	emit_rel32(buf, &off, "48 8d 05", FUNC, "");        /* lea FUNC */
	emit_rel32(buf, &off, "ff 15", GOT, "");            /* call *GOT */
	emit_rel32(buf, &off, "48 8b 05", GOT + 8, "");     /* mov GOT+8 */
	emit_rel32(buf, &off, "83 3d", FUNC + 0xff, "05");  /* cmpl $5 */
	emit_rel32(buf, &off, "e8", FUNC + 0x100, "");      /* call, beyond */
	emit_rel32(buf, &off, "e8", FUNC - 1, "");          /* call, before */
	emit(buf, &off, "c3");
	return off;
}

static void test_find_refs(void)
{
	struct qp_ref refs[8];
	uint8_t code[128];
	char why[128];
	size_t n = refs_code(code), count = 99;

	CHECK_INT(qp_decode_find_refs(code, n, BASE, FUNC, FUNC + 0x100, refs,
				      8, &count, why, sizeof(why)), 0);
	CHECK_STR(why, "");
	CHECK_INT(count, 5);
	CHECK_INT(refs[0].addr, BASE);
	CHECK_INT(refs[0].kind, QP_INSN_CALL);
	CHECK_INT(refs[0].target, FUNC);
	CHECK_INT(refs[0].len, 5);
	CHECK_INT(refs[0].rel_off, 1);
	CHECK_INT(refs[0].rel_size, 4);
	CHECK_INT(refs[0].rip_relative, false);
	CHECK_INT(refs[1].addr, BASE + 5);
	CHECK_INT(refs[1].kind, QP_INSN_JMP);
	CHECK_INT(refs[1].target, FUNC + 0x10);
	CHECK_INT(refs[2].addr, BASE + 10);
	CHECK_INT(refs[2].kind, QP_INSN_JCC);
	CHECK_INT(refs[2].rel_off, 2);
	CHECK_INT(refs[3].addr, BASE + 18);
	CHECK_INT(refs[3].kind, QP_INSN_OTHER);
	CHECK_INT(refs[3].rip_relative, true);
	CHECK_INT(refs[3].rel_off, 3);
	CHECK_INT(refs[3].len, 7);
	/* cmpl $5, FUNC+0xff(%rip): the immediate follows the field */
	CHECK_INT(refs[4].addr, BASE + 38);
	CHECK_INT(refs[4].target, FUNC + 0xff);
	CHECK_INT(refs[4].len, 7);
	CHECK_INT(refs[4].rel_off, 2);

	/* The GOT slots: a call through one, and a load of another. */
	CHECK_INT(qp_decode_find_refs(code, n, BASE, GOT, GOT + 16, refs, 8,
				      &count, why, sizeof(why)), 0);
	CHECK_INT(count, 2);
	CHECK_INT(refs[0].kind, QP_INSN_CALL);
	CHECK_INT(refs[0].rip_relative, true);
	CHECK_INT(refs[0].target, GOT);
	CHECK_INT(refs[1].kind, QP_INSN_OTHER);
	CHECK_INT(refs[1].target, GOT + 8);

	/* The local je .+2 is a reference too, rel8 and all. */
	CHECK_INT(qp_decode_find_refs(code, n, BASE, BASE, BASE + n, refs, 8,
				      &count, why, sizeof(why)), 0);
	CHECK_INT(count, 1);
	CHECK_INT(refs[0].rel_size, 1);

	/* More than @max: the total still comes back. */
	memset(refs, 0xee, sizeof(refs));
	CHECK_INT(qp_decode_find_refs(code, n, BASE, FUNC, FUNC + 0x100, refs,
				      2, &count, why, sizeof(why)), 0);
	CHECK_INT(count, 5);
	CHECK_INT(refs[1].addr, BASE + 5);
	CHECK_INT(refs[2].addr, 0xeeeeeeeeeeeeeeeeull);
	CHECK_INT(qp_decode_find_refs(code, n, BASE, FUNC - 1, UINT64_MAX,
				      NULL, 0, &count, NULL, 0), 0);
	CHECK_INT(count, 9);
	CHECK_INT(qp_decode_find_refs(code, n, BASE, FUNC, FUNC, NULL, 0,
				      &count, NULL, 0), 0);
	CHECK_INT(count, 0);

	/* Undecodable bytes stop the sweep, with the refs found so far. */
	code[n - 1] = 0x06; /* push %es: invalid in 64-bit mode */
	CHECK_INT(qp_decode_find_refs(code, n, BASE, FUNC, FUNC + 0x100, refs,
				      8, &count, why, sizeof(why)), -EILSEQ);
	CHECK_INT(count, 5);
	CHECK_STR(why, "cannot decode instruction at 0x1037: invalid encoding");
	CHECK_INT(qp_decode_find_refs(code, n - 3, BASE, FUNC, FUNC + 0x100,
				      refs, 8, &count, why, sizeof(why)),
		  -ENODATA);
	CHECK_STR(why, "cannot decode instruction at 0x1032: cut off after 3"
		  " bytes");
	CHECK_INT(qp_decode_find_refs(code, n, BASE, FUNC, FUNC + 0x100, NULL,
				      8, &count, why, sizeof(why)), -EINVAL);
	CHECK_INT(qp_decode_find_refs(code, n, BASE, FUNC, FUNC + 0x100, refs,
				      8, NULL, why, sizeof(why)), -EINVAL);
	CHECK_INT(qp_decode_find_refs(NULL, 0, BASE, FUNC, FUNC + 0x100, refs,
				      8, &count, why, sizeof(why)), 0);
	CHECK_INT(count, 0);
}

/* libc's own code against its GOT and PLT: every reference into the GOT is
 * a RIP-relative operand, every one into the PLT a direct branch. */
static void test_find_refs_libc(void)
{
	uint64_t got_refs = 0, plt_refs = 0;
	const char *path = libc_path();
	struct qp_elf_sec *got, *plt;
	struct qp_ref refs[64];
	struct funcs fs;
	size_t i, j, count;
	char why[128];

	if (!path || funcs_open(&fs, path, QP_ELF_DYNSYM | QP_ELF_NO_RELAS)) {
		CHECK(!"libc with function symbols");
		return;
	}
	got = qp_elf__find_sec(fs.elf, ".got");
	plt = qp_elf__find_sec(fs.elf, ".plt");
	CHECK(got && plt);
	for (i = 0; got && plt && i < fs.n; i++) {
		const struct func *f = &fs.f[i];
		uint64_t glo = got->shdr.sh_addr, plo = plt->shdr.sh_addr;

		if (qp_decode_find_refs(f->code, f->size, f->addr, glo,
					glo + got->shdr.sh_size, refs, 64,
					&count, why, sizeof(why)))
			continue; /* a function that does not decode */
		got_refs += count;
		for (j = 0; j < count && j < 64; j++) {
			CHECK(refs[j].rip_relative);
			CHECK(refs[j].target >= glo &&
			      refs[j].target < glo + got->shdr.sh_size);
		}
		CHECK_INT(qp_decode_find_refs(f->code, f->size, f->addr, plo,
					      plo + plt->shdr.sh_size, refs,
					      64, &count, why, sizeof(why)), 0);
		plt_refs += count;
		for (j = 0; j < count && j < 64; j++)
			CHECK(!refs[j].rip_relative && refs[j].rel_size == 4 &&
			      (refs[j].kind == QP_INSN_CALL ||
			       refs[j].kind == QP_INSN_JMP));
	}
	printf("find_refs libc: %" PRIu64 " references to .got, %" PRIu64
	       " to .plt\n", got_refs, plt_refs);
	CHECK(got_refs > 1000);
	CHECK(plt_refs > 10);
	funcs_close(&fs);
}

/* ------------------------------------------------------------------------ */
/* qp_decode_compare: hand-made pairs                                        */
/* ------------------------------------------------------------------------ */

struct cmp_case {
	const char *what;
	const char *a, *b;     /* the two functions; a at BASE */
	uint64_t baddr;        /* where b sits */
	size_t ndiffs;         /* expected records */
	unsigned what_all;     /* expected OR of their what */
	size_t index;          /* first record: its index ... */
	unsigned first;        /* ... and its what */
};

#define D_MN QP_DIFF_MNEMONIC
#define D_LEN QP_DIFF_LEN
#define D_REG QP_DIFF_REG
#define D_MEM QP_DIFF_MEM
#define D_IMM QP_DIFF_IMM
#define D_REL QP_DIFF_REL
#define D_CNT QP_DIFF_COUNT

/*
 * The "loop" function of the patch-site tests, and variants:
 *   0: 31 c0          xor  %eax,%eax
 *   2: ff c0          inc  %eax
 *   4: 83 f8 0a       cmp  $0xa,%eax
 *   7: 75 f9          jne  2
 *   9: e8 00 00 00 00 call (next)
 *   e: c3             ret
 */
#define LOOP "31 c0 ff c0 83 f8 0a 75 f9 e8 00 00 00 00 c3"

static const struct cmp_case cmp_cases[] = {
	{ "identical", LOOP, LOOP, BASE, 0, 0, 0, 0 },
	{ "moved as a whole", LOOP, LOOP, 0x7f0000000000, 0, 0, 0, 0 },
	{ "other encoding of the same instruction",
	  "89 c8 c3", "8b c1 c3", BASE, 0, 0, 0, 0 },
	{ "immediate",
	  "be 09 00 00 00 c3", "be 0c 00 00 00 c3", BASE, 1, D_IMM, 0, D_IMM },
	{ "immediate, imm8 to imm32, with a branch across it",
	  "eb 03 83 c0 05 c3", "eb 05 05 c8 00 00 00 c3", BASE, 1,
	  D_IMM | D_LEN, 1, D_IMM | D_LEN },
	{ "loop back over a grown immediate",
	  LOOP, "31 c0 ff c0 3d 00 01 00 00 75 f7 e8 00 00 00 00 c3", BASE, 1,
	  D_IMM | D_LEN, 2, D_IMM | D_LEN },
	{ "loop back to another instruction",
	  LOOP, "31 c0 ff c0 83 f8 0a 75 f7 e8 00 00 00 00 c3", BASE, 1, D_REL,
	  3, D_REL },
	{ "register",
	  "89 f8 c3", "89 f0 c3", BASE, 1, D_REG, 0, D_REG },
	{ "mnemonic, same operands",
	  "01 f8 c3", "29 f8 c3", BASE, 1, D_MN, 0, D_MN },
	{ "lock prefix",
	  "01 07 c3", "f0 01 07 c3", BASE, 1, D_MN | D_LEN, 0, D_MN | D_LEN },
	{ "memory displacement",
	  "8b 47 08 c3", "8b 47 10 c3", BASE, 1, D_MEM, 0, D_MEM },
	{ "memory scale",
	  "8d 44 7f 01 c3", "8d 44 bf 01 c3", BASE, 1, D_MEM, 0, D_MEM },
	{ "memory access size",
	  "c7 07 01 00 00 00 c3", "48 c7 07 01 00 00 00 c3", BASE, 1,
	  D_MN | D_MEM | D_LEN, 0, D_MN | D_MEM | D_LEN },
	{ "register against memory",
	  "8b c7 c3", "8b 07 c3", BASE, 1, D_MN, 0, D_MN },
	{ "AVX-512 mask register",
	  "62 f1 7c 49 58 c1 c3", "62 f1 7c 4a 58 c1 c3", BASE, 1, D_REG, 0,
	  D_REG },
	{ "AVX-512 zeroing",
	  "62 f1 7c 49 58 c1 c3", "62 f1 7c c9 58 c1 c3", BASE, 1, D_MN, 0,
	  D_MN },
	{ "rip-relative: same offset from the function start",
	  "48 8b 05 10 00 00 00 c3", "48 8b 05 10 00 00 00 c3", 0x5000, 0, 0,
	  0, 0 },
	{ "rip-relative: other address",
	  "48 8b 05 10 00 00 00 c3", "48 8b 05 18 00 00 00 c3", BASE, 1,
	  D_REL, 0, D_REL },
	{ "call: same bytes elsewhere (moved with its callee)",
	  "e8 fb 0f 00 00 c3", "e8 fb 0f 00 00 c3", 0x1100, 0, 0, 0, 0 },
	{ "call: same absolute target, function moved",
	  "e8 fb 0f 00 00 c3", "e8 fb 0e 00 00 c3", 0x1100, 1, D_REL, 0,
	  D_REL },
	{ "call: other target",
	  "e8 fb 0f 00 00 c3", "e8 fb 1f 00 00 c3", BASE, 1, D_REL, 0, D_REL },
	{ "branch to the function's end, over a grown immediate",
	  "74 03 83 c0 05", "74 05 05 c8 00 00 00", BASE, 1, D_IMM | D_LEN, 1,
	  D_IMM | D_LEN },
	{ "branch to the end against one to the last instruction",
	  "74 03 83 c0 05", "74 00 05 c8 00 00 00", BASE, 2, D_REL | D_IMM |
	  D_LEN, 0, D_REL },
	{ "one more instruction at the end",
	  "31 c0 c3", "31 c0 c3 cc", BASE, 1, D_CNT, 2, D_CNT },
	{ "one instruction fewer",
	  "31 c0 90 c3", "31 c0 c3", BASE, 2, D_MN | D_CNT, 1, D_MN },
	{ "empty against one instruction", "", "c3", BASE, 1, D_CNT, 0, D_CNT },
	{ "both empty", "", "", BASE, 0, 0, 0, 0 },
};

static void check_cmp_case(const struct cmp_case *c)
{
	uint8_t a[64], b[64];
	size_t na = hex_parse(c->a, a, sizeof(a)), nb = hex_parse(c->b, b,
								 sizeof(b));
	struct qp_insn_diff d[8];
	struct qp_compare_result res;
	char why[128];
	int failed = check_failed;

	memset(d, 0, sizeof(d));
	CHECK_INT(qp_decode_compare(a, na, BASE, b, nb, c->baddr, d, 8, &res,
				    why, sizeof(why)), 0);
	CHECK_STR(why, "");
	CHECK_INT(res.ndiffs, c->ndiffs);
	CHECK_INT(res.what, c->what_all);
	if (c->ndiffs) {
		CHECK_INT(d[0].index, c->index);
		CHECK_INT(d[0].what, c->first);
	}
	if (check_failed != failed)
		fprintf(stderr, "  ^ in case '%s'\n", c->what);
}

static void test_compare_cases(void)
{
	size_t i;

	for (i = 0; i < sizeof(cmp_cases) / sizeof(cmp_cases[0]); i++)
		check_cmp_case(&cmp_cases[i]);
}

/* The details of the records, and the edges of the API. */
static void test_compare_details(void)
{
	uint8_t a[32], b[32];
	size_t na, nb;
	struct qp_insn_diff d[4];
	struct qp_compare_result res;
	char why[128];

	/* two immediates, the second grown; then b has one more insn */
	na = hex_parse("be 09 00 00 00 83 c0 05 c3", a, sizeof(a));
	nb = hex_parse("be 0c 00 00 00 05 c8 00 00 00 c3 cc", b, sizeof(b));
	CHECK_INT(qp_decode_compare(a, na, BASE, b, nb, 0x9000, d, 4, &res,
				    why, sizeof(why)), 0);
	CHECK_INT(res.a_count, 3);
	CHECK_INT(res.b_count, 4);
	CHECK_INT(res.ndiffs, 3);
	CHECK_INT(res.what, D_IMM | D_LEN | D_CNT);
	CHECK(!qp_decode_imm_only(&res));
	CHECK_INT(d[0].index, 0);
	CHECK_INT(d[0].a_addr, BASE);
	CHECK_INT(d[0].b_addr, 0x9000);
	CHECK_INT(d[0].a_len, 5);
	CHECK_INT(d[0].a_imm, 9);
	CHECK_INT(d[0].b_imm, 12);
	CHECK_INT(d[1].index, 1);
	CHECK_INT(d[1].a_addr, BASE + 5);
	CHECK_INT(d[1].b_addr, 0x9005);
	CHECK_INT(d[1].a_len, 3);
	CHECK_INT(d[1].b_len, 5);
	CHECK_INT(d[1].a_imm, 5);
	CHECK_INT(d[1].b_imm, 200);
	CHECK_INT(d[2].index, 3);
	CHECK_INT(d[2].what, D_CNT);
	CHECK_INT(d[2].a_addr, BASE + 9);
	CHECK_INT(d[2].a_len, 0);
	CHECK_INT(d[2].b_addr, 0x900b);
	CHECK_INT(d[2].b_len, 1);
	/* Without the extra int3 it is immediate-only. */
	CHECK_INT(qp_decode_compare(a, na, BASE, b, nb - 1, 0x9000, d, 4, &res,
				    why, sizeof(why)), 0);
	CHECK(qp_decode_imm_only(&res));
	CHECK_INT(qp_decode_compare(a, na, BASE, a, na, 0x9000, d, 4, &res,
				    why, sizeof(why)), 0);
	CHECK(!qp_decode_imm_only(&res)); /* no difference at all */
	/* A negative immediate, as the CPU sign-extends it */
	na = hex_parse("83 c0 ff", a, sizeof(a));
	nb = hex_parse("83 c0 fe", b, sizeof(b));
	CHECK_INT(qp_decode_compare(a, na, BASE, b, nb, BASE, d, 4, &res, why,
				    sizeof(why)), 0);
	CHECK_INT(d[0].a_imm, -1);
	CHECK_INT(d[0].b_imm, -2);

	/* More records than @max, and none asked for */
	na = hex_parse("b0 01 b0 02 b0 03 b0 04 b0 05 b0 06", a, sizeof(a));
	nb = hex_parse("b0 11 b0 12 b0 13 b0 14 b0 15 b0 16", b, sizeof(b));
	memset(d, 0, sizeof(d));
	CHECK_INT(qp_decode_compare(a, na, BASE, b, nb, BASE, d, 2, &res, why,
				    sizeof(why)), 0);
	CHECK_INT(res.ndiffs, 6);
	CHECK_INT(d[1].b_imm, 0x12);
	CHECK_INT(d[2].what, 0);
	CHECK_INT(qp_decode_compare(a, na, BASE, b, nb, BASE, NULL, 0, &res,
				    NULL, 0), 0);
	CHECK_INT(res.ndiffs, 6);
	CHECK(qp_decode_imm_only(&res));

	/* Errors */
	b[nb - 2] = 0x06;
	CHECK_INT(qp_decode_compare(a, na, BASE, b, nb, 0x9000, d, 4, &res,
				    why, sizeof(why)), -EILSEQ);
	CHECK_STR(why, "cannot decode instruction at 0x900a of function b:"
		  " invalid encoding");
	CHECK_INT(qp_decode_compare(a, na - 1, BASE, a, na, 0x9000, d, 4, &res,
				    why, sizeof(why)), -ENODATA);
	CHECK_STR(why, "cannot decode instruction at 0x100a of function a:"
		  " cut off by its end at 0x100b");
	CHECK_INT(qp_decode_compare(a, na, BASE, a, na, BASE, d, 4, NULL, why,
				    sizeof(why)), -EINVAL);
	CHECK_INT(qp_decode_compare(NULL, 4, BASE, a, na, BASE, d, 4, &res,
				    why, sizeof(why)), -EINVAL);
	CHECK_INT(qp_decode_compare(a, na, BASE, a, na, BASE, NULL, 4, &res,
				    why, sizeof(why)), -EINVAL);
}

/* ------------------------------------------------------------------------ */
/* qp_decode_compare: functions compiled from C here                         */
/* ------------------------------------------------------------------------ */

static char tmpdir[PATH_MAX];

/* A function that logs its line number twice.  Variants below insert
 * lines before it or change its code. */
static const char work_src[] =
	"void qp_log(const char *file, int line, const char *msg);\n"
	"\n"
	"int qp_work(int x, int y, int z)\n"
	"{\n"
	"	if (x < 0) {\n"
	"		qp_log(__FILE__, __LINE__, \"negative\");\n" /* 6 + 2 */
	"		return -1;\n"
	"	}\n"
	"	qp_log(__FILE__, __LINE__, \"positive\");\n"     /* 9 + 2 */
	"	return (x OP ARG) * 3 + 1;\n"
	"}\n";

/* Write @dir/w.c with @pad empty lines first, OP as @op and ARG as @arg,
 * and compile it. */
static int compile_work(const char *dir, int pad, const char *op,
			const char *arg)
{
	char path[PATH_MAX + 16], cmd[2 * PATH_MAX + 256];
	FILE *f;
	int i;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, dir);
	if (mkdir(path, 0755) && errno != EEXIST)
		return -1;
	snprintf(path, sizeof(path), "%s/%s/w.c", tmpdir, dir);
	f = fopen(path, "w");
	if (!f)
		return -1;
	for (i = 0; i < pad; i++)
		fputc('\n', f);
	fprintf(f, "#define OP %s\n#define ARG %s\n", op, arg);
	fputs(work_src, f);
	if (fclose(f))
		return -1;
	/* Compiled from inside the directory, so __FILE__ is "w.c" in all. */
	snprintf(cmd, sizeof(cmd), "cd '%s/%s' && ${CC:-cc} -O2"
		 " -ffunction-sections -c w.c -o w.o", tmpdir, dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* Compare qp_work in @da/w.o with qp_work in @db/w.o. */
static int compare_work(const char *da, const char *db,
			struct qp_insn_diff *d, size_t max,
			struct qp_compare_result *res)
{
	struct qp_elf *e[2] = { NULL, NULL };
	const struct qp_elf_sym *s[2];
	struct qp_error err = { 0 };
	const char *dirs[2] = { da, db };
	char path[PATH_MAX + 16], why[128];
	int i, ret = -1;

	for (i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s/%s/w.o", tmpdir, dirs[i]);
		if (qp_elf__open(path, 0, &e[i], &err)) {
			fprintf(stderr, "%s\n", err.msg);
			goto out;
		}
		s[i] = qp_elf__find_sym(e[i], "qp_work");
		if (!s[i] || !s[i]->sec || !s[i]->sec->data ||
		    s[i]->value + s[i]->size > s[i]->sec->size)
			goto out;
	}
	ret = qp_decode_compare(s[0]->sec->data + s[0]->value, s[0]->size,
				s[0]->value, s[1]->sec->data + s[1]->value,
				s[1]->size, s[1]->value, d, max, res, why,
				sizeof(why));
	if (ret)
		fprintf(stderr, "compare: %s\n", why);
out:
	qp_elf__free(e[0]);
	qp_elf__free(e[1]);
	return ret;
}

static void test_compare_compiled(void)
{
	const char *tmp = getenv("QP_TMP");
	struct qp_insn_diff d[16];
	struct qp_compare_result res;
	size_t i;

	snprintf(tmpdir, sizeof(tmpdir), "%s/test_decode_move.XXXXXX",
		 tmp && tmp[0] ? tmp : "/tmp");
	if (tmp && tmp[0])
		mkdir(tmp, 0755);
	if (!mkdtemp(tmpdir)) {
		CHECK(!"mkdtemp");
		return;
	}
	if (compile_work("a", 0, "+", "y") ||
	    compile_work("lines", 3, "+", "y") ||
	    compile_work("sub", 0, "-", "y") ||
	    compile_work("and", 0, "&", "y") ||
	    compile_work("reg", 0, "+", "z")) {
		CHECK(!"cc");
		return;
	}

	/* Three lines inserted before: __LINE__ 8 -> 11 and 11 -> 14, and
	 * nothing else (the two #define lines come first). */
	CHECK_INT(compare_work("a", "lines", d, 16, &res), 0);
	CHECK_INT(res.what, QP_DIFF_IMM);
	CHECK(qp_decode_imm_only(&res));
	CHECK_INT(res.ndiffs, 2);
	CHECK_INT(res.a_count, res.b_count);
	for (i = 0; i < res.ndiffs && i < 16; i++) {
		CHECK_INT(d[i].what, QP_DIFF_IMM);
		CHECK_INT(d[i].b_imm - d[i].a_imm, 3);
		CHECK(d[i].a_imm == 8 || d[i].a_imm == 11);
	}
	/* Against itself: nothing. */
	CHECK_INT(compare_work("a", "a", d, 16, &res), 0);
	CHECK_INT(res.what, 0);
	CHECK_INT(res.ndiffs, 0);
	/* x + y -> x - y, x & y: real changes, never immediate-only. */
	CHECK_INT(compare_work("a", "sub", d, 16, &res), 0);
	CHECK(res.ndiffs > 0);
	CHECK(!qp_decode_imm_only(&res));
	CHECK(res.what & (QP_DIFF_MNEMONIC | QP_DIFF_COUNT));
	CHECK_INT(compare_work("a", "and", d, 16, &res), 0);
	CHECK(!qp_decode_imm_only(&res));
	CHECK(res.what & (QP_DIFF_MNEMONIC | QP_DIFF_COUNT));
	/* y -> z: another register. */
	CHECK_INT(compare_work("a", "reg", d, 16, &res), 0);
	CHECK(!qp_decode_imm_only(&res));
	CHECK(res.what & (QP_DIFF_REG | QP_DIFF_COUNT));
	/* __LINE__ moved and a real change: not immediate-only either. */
	CHECK_INT(compare_work("lines", "sub", d, 16, &res), 0);
	CHECK(res.what & QP_DIFF_IMM);
	CHECK(!qp_decode_imm_only(&res));
}

int main(void)
{
	char cmd[PATH_MAX + 32];

	test_reloc_table();
	test_reloc_exact();
	test_reloc_in_place();
	test_reloc_random();
	test_reloc_libc();
	test_find_refs();
	test_find_refs_libc();
	test_compare_cases();
	test_compare_details();
	test_compare_compiled();
	if (tmpdir[0] && !check_failed) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
		if (system(cmd))
			fprintf(stderr, "cannot remove '%s'\n", tmpdir);
	}
	return check_report("test_decode_move");
}
