// SPDX-License-Identifier: MIT
/*
 * Parsers of bytes a hostile target controls, given hostile input: the
 * record of a patch mapping (loader/parse.c), the dynamic linker's chain
 * of link_maps and the TLS fields in one, CFA instructions (format/cfi.c)
 * and ELF notes (format/buildid.c).  Each case is a bound the parser must
 * keep; tests/fuzz/ throws random input at the same functions.
 */
#include <elf.h>
#include <gelf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "loader/parse.h"
#include "loader/unwind.h"
#include "qpatch/cfi.h"
#include "qpatch/elf.h"

/* A target's memory: @len bytes at @base; counts the reads. */
struct mem {
	uint64_t base;
	uint8_t *buf;
	size_t len;
	unsigned reads;
};

static int mem_read(void *arg, uint64_t addr, void *buf, size_t len, struct qp_error *err)
{
	struct mem *m = arg;

	m->reads++;
	if (addr < m->base || addr - m->base > m->len || len > m->len - (addr - m->base))
		return qp_seterr(err, -EIO, "cannot read %zu bytes at 0x%llx", len,
				 (unsigned long long)addr);
	memcpy(buf, m->buf + (addr - m->base), len);
	return 0;
}

#define BASE 0x7f0000000000ull

static void put_record(uint8_t *img, uint32_t version, uint32_t nfuncs, uint64_t region_size)
{
	struct qp_record r;

	memset(&r, 0, sizeof(r));
	memcpy(r.magic, QP_RECORD_MAGIC, 8);
	r.version = version;
	r.nfuncs = nfuncs;
	r.region_size = region_size;
	r.state = QP_REC_APPLIED;
	memset(r.id, 'i', sizeof(r.id));         /* no NUL anywhere */
	memset(r.target, 't', sizeof(r.target));
	memcpy(img, &r, sizeof(r));
}

/* Function @i of a record whose functions start at @head: a sound entry
 * (new code inside the mapping, a 5-byte jump), its name with no NUL. */
static void put_func(uint8_t *img, size_t head, int i, uint32_t new_size)
{
	struct qp_record_func *f = (struct qp_record_func *)(img + head) + i;

	memset(f, 'x', sizeof(*f));
	f->site = 0x1234;
	f->new_addr = BASE + 2048;
	f->new_size = new_size;
	f->old_addr = 0x1234;
	f->old_size = 100;
	f->len = 5;
}

static void test_record(void)
{
	static uint8_t img[8192];
	struct mem m = { BASE, img, sizeof(img), 0 };
	struct qp_error err = { 0 };
	struct qp_applied a;
	struct qp_record_func *f;

	/* a good record: strings and names come back NUL-terminated */
	memset(img, 'x', sizeof(img));
	put_record(img, QP_RECORD_VERSION, 2, 4096);
	put_func(img, sizeof(struct qp_record), 0, 16);
	put_func(img, sizeof(struct qp_record), 1, 2048);
	CHECK_INT(ld_record_read(mem_read, &m, BASE, sizeof(img), &a, &err), 0);
	CHECK_INT(a.rec.nfuncs, 2);
	CHECK_INT(strlen(a.rec.id), QP_ID_MAX - 1);
	CHECK_INT(strlen(a.rec.target), QP_NAME_MAX - 1);
	CHECK_INT(strlen(a.funcs[1].name), QP_FUNC_NAME_MAX - 1);
	CHECK_INT(a.funcs[1].new_size, 2048);
	free(a.funcs);
	/* forged functions: new code outside the mapping, or running past
	 * its end; a jump that is not 5 bytes; an unknown state */
	f = (struct qp_record_func *)(img + sizeof(struct qp_record)) + 1;
	f->new_size = 2049;
	CHECK_INT(ld_record_read(mem_read, &m, BASE, sizeof(img), &a, &err), -EINVAL);
	CHECK(strstr(err.msg, "corrupted patch record") && strstr(err.msg, "not inside"));
	free(a.funcs);
	f->new_size = 16;
	f->new_addr = BASE - 1;
	CHECK_INT(ld_record_read(mem_read, &m, BASE, sizeof(img), &a, &err), -EINVAL);
	free(a.funcs);
	f->new_addr = BASE + 2048;
	f->len = 4000;
	CHECK_INT(ld_record_read(mem_read, &m, BASE, sizeof(img), &a, &err), -EINVAL);
	CHECK(strstr(err.msg, "a jump of 4000 bytes") != NULL);
	free(a.funcs);
	f->len = 5;
	((struct qp_record *)img)->state = 9;
	CHECK_INT(ld_record_read(mem_read, &m, BASE, sizeof(img), &a, &err), -EINVAL);
	CHECK(strstr(err.msg, "state 9") != NULL);
	free(a.funcs);

	/* version 1: functions at 384, no new_size */
	put_record(img, 1, 1, 4096);
	put_func(img, QP_RECORD_V1_SIZE, 0, 0x78787878);
	f = (struct qp_record_func *)(img + QP_RECORD_V1_SIZE);
	f->site = 0x1234;
	CHECK_INT(ld_record_read(mem_read, &m, BASE, sizeof(img), &a, &err), 0);
	CHECK_INT(a.funcs[0].site, 0x1234);
	CHECK_INT(a.funcs[0].new_size, 0);
	CHECK_INT(a.rec.cfi_size, 0);
	free(a.funcs);

	/* functions beyond region_size */
	put_record(img, QP_RECORD_VERSION, 40, 4096);
	CHECK_INT(ld_record_read(mem_read, &m, BASE, sizeof(img), &a, &err), -EINVAL);
	free(a.funcs);
	/* region_size beyond the mapping (undo would unmap what is not the patch) */
	put_record(img, QP_RECORD_VERSION, 1, 1ull << 40);
	CHECK_INT(ld_record_read(mem_read, &m, BASE, sizeof(img), &a, &err), -EINVAL);
	free(a.funcs);
	/* a huge count is refused before anything is allocated or read */
	put_record(img, QP_RECORD_VERSION, 0xffffffffu, 1ull << 40);
	m.reads = 0;
	CHECK_INT(ld_record_read(mem_read, &m, BASE, UINT64_MAX, &a, &err), -EINVAL);
	CHECK_INT(m.reads, 1);
	CHECK(a.funcs == NULL);
	/* CFI outside the mapping is dropped */
	put_record(img, QP_RECORD_VERSION, 0, 4096);
	((struct qp_record *)img)->cfi_start = BASE + 4000;
	((struct qp_record *)img)->cfi_size = 200;
	CHECK_INT(ld_record_read(mem_read, &m, BASE, sizeof(img), &a, &err), 0);
	CHECK_INT(a.rec.cfi_start, 0);
	free(a.funcs);
	/* bad magic, bad version */
	img[0] = 'X';
	CHECK_INT(ld_record_read(mem_read, &m, BASE, sizeof(img), &a, &err), -EINVAL);
	free(a.funcs);
	put_record(img, QP_RECORD_VERSION_SITES + 1, 0, 4096);
	CHECK_INT(ld_record_read(mem_read, &m, BASE, sizeof(img), &a, &err), -EINVAL);
	free(a.funcs);
}

/* Version 3: call sites after the functions, each checked. */
static void test_record_sites(void)
{
	static uint8_t img[8192];
	struct mem m = { BASE, img, sizeof(img), 0 };
	struct qp_error err = { 0 };
	struct qp_record_sites *h = (struct qp_record_sites *)(img + sizeof(struct qp_record) +
								2 * sizeof(struct qp_record_func));
	struct qp_record_site *s = (struct qp_record_site *)(h + 1);
	struct qp_applied a;

	memset(img, 0, sizeof(img));
	put_record(img, QP_RECORD_VERSION_SITES, 2, 4096);
	put_func(img, sizeof(struct qp_record), 0, 16);
	put_func(img, sizeof(struct qp_record), 1, 16);
	/* function 1 has no jump: it is reached through its call sites only */
	((struct qp_record_func *)(img + sizeof(struct qp_record)))[1].len = 0;
	memcpy(h->magic, QP_RECORD_SITES_MAGIC, 8);
	h->nsites = 2;
	s[0] = (struct qp_record_site){ .addr = 0x1000, .func = 1, .len = 5 };
	s[1] = (struct qp_record_site){ .addr = 0x2000, .func = 0, .len = 6 };
	CHECK_INT(ld_record_read(mem_read, &m, BASE, sizeof(img), &a, &err), 0);
	CHECK_INT(a.nsites, 2);
	CHECK(a.sites != NULL);
	if (a.sites)
		CHECK_INT(a.sites[1].addr, 0x2000);
	free(a.funcs);
	free(a.sites);
	/* a site of a function the record does not have */
	s[1].func = 2;
	CHECK_INT(ld_record_read(mem_read, &m, BASE, sizeof(img), &a, &err), -EINVAL);
	CHECK(a.sites == NULL);
	free(a.funcs);
	/* a site too long, or too short for a rel32 branch */
	s[1].func = 0;
	s[1].len = 9;
	CHECK_INT(ld_record_read(mem_read, &m, BASE, sizeof(img), &a, &err), -EINVAL);
	free(a.funcs);
	s[1].len = 4;
	CHECK_INT(ld_record_read(mem_read, &m, BASE, sizeof(img), &a, &err), -EINVAL);
	free(a.funcs);
	/* not the sites' magic */
	s[1].len = 5;
	h->magic[0] = 'X';
	CHECK_INT(ld_record_read(mem_read, &m, BASE, sizeof(img), &a, &err), -EINVAL);
	free(a.funcs);
	memcpy(h->magic, QP_RECORD_SITES_MAGIC, 8);
	/* sites beyond region_size, and a huge count: refused before reading them */
	h->nsites = 200;
	m.reads = 0;
	CHECK_INT(ld_record_read(mem_read, &m, BASE, sizeof(img), &a, &err), -EINVAL);
	CHECK_INT(m.reads, 3); /* header, functions, sites header */
	free(a.funcs);
	h->nsites = 0xffffffffu;
	CHECK_INT(ld_record_read(mem_read, &m, BASE, sizeof(img), &a, &err), -EINVAL);
	free(a.funcs);
	/* no room for the sites' header (the new code is inside the region) */
	put_record(img, QP_RECORD_VERSION_SITES, 2, (uint32_t)((uint8_t *)h - img + 8));
	((struct qp_record_func *)(img + sizeof(struct qp_record)))[0].new_addr = BASE + 100;
	((struct qp_record_func *)(img + sizeof(struct qp_record)))[1].new_addr = BASE + 100;
	((struct qp_record_func *)(img + sizeof(struct qp_record)))[0].new_size = 1;
	((struct qp_record_func *)(img + sizeof(struct qp_record)))[1].new_size = 1;
	CHECK_INT(ld_record_read(mem_read, &m, BASE, sizeof(img), &a, &err), -EINVAL);
	CHECK(strstr(err.msg, "no room for its call sites") != NULL);
	free(a.funcs);
	/* version 2 has no sites, whatever follows its functions */
	put_record(img, QP_RECORD_VERSION, 2, 4096);
	put_func(img, sizeof(struct qp_record), 1, 16);
	h->nsites = 2;
	CHECK_INT(ld_record_read(mem_read, &m, BASE, sizeof(img), &a, &err), 0);
	CHECK_INT(a.nsites, 0);
	CHECK(a.sites == NULL);
	free(a.funcs);
}

/* link_map i at BASE + 64 + 40 * i; _r_debug at BASE. */
static void put_link(uint64_t *w, int i, uint64_t l_ld, uint64_t next)
{
	uint64_t *lm = w + 8 + 5 * i;

	lm[2] = l_ld;
	lm[3] = next;
}

#define LM(i) (BASE + 64 + 40 * (i))

static void test_linkmap(void)
{
	static uint64_t w[1024];
	struct mem m = { BASE, (uint8_t *)w, sizeof(w), 0 };
	struct qp_error err = { 0 };
	uint64_t out = 0;
	int i;

	memset(w, 0, sizeof(w));
	w[1] = LM(0);
	for (i = 0; i < 100; i++)
		put_link(w, i, 0x1000 + i, i < 99 ? LM(i + 1) : 0);
	CHECK_INT(ld_linkmap_find(mem_read, &m, BASE, 0x1000 + 57, &out, &err), 0);
	CHECK_INT(out, LM(57));
	CHECK_INT(ld_linkmap_find(mem_read, &m, BASE, 0x9999, &out, &err), 1);
	/* a cycle (99 -> 30) ends the walk within about twice its length */
	put_link(w, 99, 0x1000 + 99, LM(30));
	m.reads = 0;
	CHECK_INT(ld_linkmap_find(mem_read, &m, BASE, 0x9999, &out, &err), 1);
	CHECK(m.reads < 400);
	/* a link_map pointing at itself */
	put_link(w, 0, 0x1000, LM(0));
	m.reads = 0;
	CHECK_INT(ld_linkmap_find(mem_read, &m, BASE, 0x9999, &out, &err), 1);
	CHECK(m.reads < 5);
	/* a pointer out of the memory: the read error */
	put_link(w, 0, 0x1000, 0x10);
	CHECK_INT(ld_linkmap_find(mem_read, &m, BASE, 0x9999, &out, &err), -EIO);
	CHECK_INT(ld_linkmap_find(mem_read, &m, UINT64_MAX - 4, 0x9999, &out, &err), 1);
}

static void test_tls_scan(void)
{
	const uint64_t sig[5] = { 0x7000, 16, 32, 8, 0 };
	uint64_t w[16] = { 0 };
	int64_t off;
	uint64_t modid;

	memcpy(&w[4], sig, sizeof(sig));
	w[9] = 64;
	w[10] = 2;
	CHECK_INT(ld_tls_scan(w, 16, sig, 32, &off, &modid), 0);
	CHECK_INT(off, 64);
	CHECK_INT(modid, 2);
	CHECK_INT(ld_tls_scan(w, 10, sig, 32, &off, &modid), -1); /* modid not inside */
	w[9] = 16; /* an offset smaller than the block */
	CHECK_INT(ld_tls_scan(w, 16, sig, 32, &off, &modid), -1);
	w[9] = (uint64_t)-5; /* negative */
	CHECK_INT(ld_tls_scan(w, 16, sig, 32, &off, &modid), -1);
	w[9] = (uint64_t)-1; /* forced dynamic */
	CHECK_INT(ld_tls_scan(w, 16, sig, 32, &off, &modid), 0);
	w[10] = 1u << 20; /* implausible module id */
	CHECK_INT(ld_tls_scan(w, 16, sig, 32, &off, &modid), -1);
	w[9] = 64;
	w[10] = 2;
	CHECK_INT(ld_tls_scan(w, 16, sig, UINT64_MAX, &off, &modid), -1);
}

static void test_cfi(void)
{
	struct qp_cfi_cie cie = { .version = 1, .code_align = 1 };
	/* advance_loc4 by 0xc0000000 twice: with a range near 2^64, the
	 * second must not pass by wrapping the running location around */
	const uint8_t two[] = { 0x04, 0, 0, 0, 0xc0, 0x04, 0, 0, 0, 0xc0 };
	char why[128];

	CHECK_INT(qp_cfi_check_insns(two, 5, &cie, 0xc0000000ull, why, sizeof(why)), 0);
	CHECK_INT(qp_cfi_check_insns(two, 10, &cie, 0xc0000000ull, why, sizeof(why)), -EINVAL);
	cie.code_align = 1ull << 32; /* each advance is 0xc000000000000000 */
	CHECK_INT(qp_cfi_check_insns(two, 5, &cie, 0xc0000000ull << 32, why, sizeof(why)), 0);
	CHECK_INT(qp_cfi_check_insns(two, 10, &cie, (0xc0000000ull << 32) + 1, why, sizeof(why)),
		  -EINVAL);
	CHECK(strstr(why, "advance past the end") != NULL);
}

/* A CIE ("zR", pcrel sdata4, CFA = rsp + 8, ra at CFA - 8), then an FDE of
 * 16 bytes whose instructions are @insns (5 bytes), then a terminator. */
static size_t put_eh_frame(uint8_t *b, const uint8_t insns[5])
{
	static const uint8_t cie[24] = { 20, 0, 0, 0, 0, 0, 0, 0, 1, 'z', 'R', 0, 1, 0x78, 16,
					 1, 0x1b, 0x0c, 0x07, 0x08, 0x90, 0x01, 0, 0 };
	static const uint8_t fde[] = { 20, 0, 0, 0, 28, 0, 0, 0, 0xf0, 0xff, 0xff, 0xff,
				       16, 0, 0, 0, 0 };

	memcpy(b, cie, sizeof(cie));
	memcpy(b + 24, fde, sizeof(fde));
	memcpy(b + 24 + sizeof(fde), insns, 5);
	memset(b + 24 + sizeof(fde) + 5, 0, 2 + 4);
	return 24 + 24 + 4;
}

/* qp_unwind__elf_cfi_ok() of this program, its .eh_frame starting with the
 * 52 bytes @eh (NULL: as it is); -1 when it cannot be read */
static int elf_cfi_ok_with(const uint8_t *eh)
{
	Elf_Scn *scn = NULL;
	size_t shstrndx, size;
	char *img;
	FILE *f;
	Elf *elf;
	int ok = -1;

	f = fopen("/proc/self/exe", "rb");
	if (!f)
		return -1;
	img = malloc(16 << 20);
	size = img ? fread(img, 1, 16 << 20, f) : 0;
	fclose(f);
	elf_version(EV_CURRENT);
	elf = size ? elf_memory(img, size) : NULL;
	if (elf && !elf_getshdrstrndx(elf, &shstrndx)) {
		while ((scn = elf_nextscn(elf, scn))) {
			GElf_Shdr sh;
			const char *name;

			if (!gelf_getshdr(scn, &sh))
				continue;
			name = elf_strptr(elf, shstrndx, sh.sh_name);
			if (name && !strcmp(name, ".eh_frame") && sh.sh_size >= 52 && eh)
				memcpy(img + sh.sh_offset, eh, 52);
		}
		elf_end(elf);
		elf = elf_memory(img, size); /* read again, with the new bytes */
		ok = elf ? qp_unwind__elf_cfi_ok(elf) : -1;
	}
	if (elf)
		elf_end(elf);
	free(img);
	return ok;
}

/* libdw keeps a rule per register up to the highest one named: CFI naming
 * register 2^31 (from a hostile target) must not reach it. */
static void test_cfi_registers(void)
{
	static const uint8_t ok[5] = { 0x05, 0x03, 0x02, 0, 0 };  /* offset_extended rbx */
	static const uint8_t huge[5] = { 0x05, 0x80, 0x80, 0x80, 0x08 }; /* register 2^31 */
	static const uint8_t reg2[5] = { 0x09, 0x03, 0x80, 0x02, 0 }; /* register rbx, 256 */
	struct qp_error err = { 0 };
	struct qp_unwind *u = NULL;
	uint8_t b[64];
	char why[160];
	size_t n;

	n = put_eh_frame(b, ok);
	CHECK_INT(qp_cfi_check(b, n, why, sizeof(why)), 0);
	CHECK_INT(qp_cfi_check(b, n - 4, why, sizeof(why)), 0); /* no terminator */
	CHECK_INT(qp_cfi_check(b, n - 5, why, sizeof(why)), -EINVAL);
	n = put_eh_frame(b, huge);
	CHECK_INT(qp_cfi_check(b, n, why, sizeof(why)), -EINVAL);
	n = put_eh_frame(b, reg2);
	CHECK_INT(qp_cfi_check(b, n, why, sizeof(why)), -EINVAL);
	put_eh_frame(b, ok);
	b[24 + 4] = 60; /* the FDE names no CIE */
	CHECK_INT(qp_cfi_check(b, n, why, sizeof(why)), -EINVAL);

	/* nor from an object's file: a copy of this program with such an FDE
	 * at the start of its .eh_frame */
	CHECK(elf_cfi_ok_with(NULL) == 1);
	n = put_eh_frame(b, ok);
	CHECK(elf_cfi_ok_with(b) == 1);
	n = put_eh_frame(b, huge);
	CHECK(elf_cfi_ok_with(b) == 0);

	/* the unwinder refuses it from a target */
	CHECK_INT(qp_unwind__new(getpid(), &u, &err), 0);
	if (u) {
		n = put_eh_frame(b, huge);
		CHECK_INT(qp_unwind__add_cfi(u, 0x1000, 0x2000, b, n, 0x10000, &err), -EINVAL);
		n = put_eh_frame(b, ok);
		CHECK_INT(qp_unwind__add_cfi(u, 0x1000, 0x2000, b, n, 0x10000, &err), 0);
		qp_unwind__free(u);
	}
}

static void test_notes(void)
{
	uint8_t n[64] = { 0 }, id[20];
	Elf64_Nhdr h = { 4, 20, NT_GNU_BUILD_ID };
	size_t len = 0;

	memcpy(n, &h, sizeof(h));
	memcpy(n + 12, "GNU", 4);
	memset(n + 16, 0xab, 20);
	CHECK_INT(qp_buildid_from_notes(n, 36, id, sizeof(id), &len), 0);
	CHECK_INT(len, 20);
	CHECK_INT(qp_buildid_from_notes(n, 35, id, sizeof(id), &len), -EINVAL); /* truncated */
	CHECK_INT(qp_buildid_from_notes(n, 36, id, 19, &len), -EINVAL);         /* too long */
	h.n_namesz = 0xfffffffdu; /* rounds up to 2^32 */
	memcpy(n, &h, sizeof(h));
	CHECK_INT(qp_buildid_from_notes(n, sizeof(n), id, sizeof(id), &len), -EINVAL);
}

int main(void)
{
	test_record();
	test_record_sites();
	test_linkmap();
	test_tls_scan();
	test_cfi();
	test_cfi_registers();
	test_notes();
	return check_report("test_untrusted");
}
