// SPDX-License-Identifier: MIT
/*
 * The table of a hand-written patch library (loader/sotab.c), parsed from
 * an untrusted file, and the library part of a .so patch's record
 * (loader/parse.c): what is accepted, and every bound.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "loader/parse.h"
#include "loader/sotab.h"
#include "qpatch/elf.h"

/* Entries made the way the macros of qpatch/so.h make them. */
static int fn_a(int x) { return x; }
static long *ptr;
QPATCH_TARGET("prog");
QPATCH_REPLACE(compute, fn_a);
QPATCH_REPLACE_IN("b.c", helper, fn_a);
QPATCH_SYM(ptr, "main.c", "counter");
QPATCH_SYM(ptr, "", "global_var");

static void put(struct qpatch_so_entry *e, uint32_t kind, const char *name)
{
	memset(e, 0, sizeof(*e));
	e->magic = QPATCH_SO_MAGIC;
	e->kind = kind;
	snprintf(e->name, sizeof(e->name), "%s", name);
}

static int parse(const struct qpatch_so_entry *v, size_t n, struct ld_so_table *t,
		 struct qp_error *err)
{
	int ret = ld_so_table_parse((const uint8_t *)v, n * sizeof(*v), t, err);

	if (ret)
		ld_so_table_release(t);
	return ret;
}

/* The macros' entries, read back from this program's own file. */
static void test_macros(void)
{
	struct qp_error err = { 0 };
	const struct qp_elf_sec *sec;
	struct ld_so_table t;
	struct qp_elf *e;
	size_t i, seen = 0;

	CHECK_INT(qp_elf__open("/proc/self/exe", QP_ELF_NO_RELAS, &e, &err), 0);
	sec = qp_elf__find_sec(e, QPATCH_SO_SECTION);
	CHECK(sec != NULL);
	if (!sec) {
		qp_elf__free(e);
		return;
	}
	CHECK(sec->shdr.sh_flags & SHF_ALLOC);
	CHECK_INT(ld_so_table_parse(sec->data, sec->size, &t, &err), 0);
	CHECK_INT(t.n, 4);
	CHECK_INT(t.nreplace, 2);
	CHECK_INT(t.target_kind, QPATCH_SO_TARGET);
	CHECK(!strcmp(t.target, "prog"));
	for (i = 0; i < t.n; i++) {
		const struct ld_so_item *it = &t.v[i];
		const struct qpatch_so_entry *en = (const void *)(sec->data + it->off);

		if (it->kind == QPATCH_SO_REPLACE && !strcmp(it->name, "compute") && !it->file[0])
			seen |= 1;
		if (it->kind == QPATCH_SO_REPLACE && !strcmp(it->name, "helper") &&
		    !strcmp(it->file, "b.c"))
			seen |= 2;
		if (it->kind == QPATCH_SO_SYM && !strcmp(it->name, "counter") &&
		    !strcmp(it->file, "main.c"))
			seen |= 4;
		if (it->kind == QPATCH_SO_SYM && !strcmp(it->name, "global_var") && !it->file[0])
			seen |= 8;
		CHECK(ld_so_entry_same(en, en));
	}
	CHECK_INT(seen, 15);
	ld_so_table_release(&t);
	qp_elf__free(e);
	(void)fn_a(0);
	(void)ptr;
}

static void test_bounds(void)
{
	struct qpatch_so_entry v[3];
	struct ld_so_table t;
	struct qp_error err = { 0 };

	put(&v[0], QPATCH_SO_TARGET_BUILDID, "0a1B2c");
	put(&v[1], QPATCH_SO_REPLACE, "f");
	CHECK_INT(parse(v, 2, &t, &err), 0);
	CHECK_INT(t.build_id_size, 3);
	CHECK_INT(t.build_id[1], 0x1b);
	ld_so_table_release(&t);
	/* not whole entries, empty */
	CHECK_INT(ld_so_table_parse((const uint8_t *)v, sizeof(v[0]) + 8, &t, &err), QP_EFORMAT);
	ld_so_table_release(&t);
	CHECK_INT(ld_so_table_parse((const uint8_t *)v, 0, &t, &err), QP_EFORMAT);
	ld_so_table_release(&t);
	/* bad build-ids */
	put(&v[0], QPATCH_SO_TARGET_BUILDID, "abc");
	CHECK_INT(parse(v, 2, &t, &err), QP_EFORMAT);
	put(&v[0], QPATCH_SO_TARGET_BUILDID, "zz");
	CHECK_INT(parse(v, 2, &t, &err), QP_EFORMAT);
	/* a path as target name, two targets, none */
	put(&v[0], QPATCH_SO_TARGET, "/usr/bin/prog");
	CHECK_INT(parse(v, 2, &t, &err), QP_EFORMAT);
	put(&v[0], QPATCH_SO_TARGET, "prog");
	put(&v[2], QPATCH_SO_TARGET, "prog");
	CHECK_INT(parse(v, 3, &t, &err), QP_EFORMAT);
	CHECK(strstr(err.msg, "second QPATCH_TARGET") != NULL);
	CHECK_INT(parse(v + 1, 1, &t, &err), QP_EFORMAT);
	CHECK(strstr(err.msg, "no QPATCH_TARGET") != NULL);
	/* nothing replaced */
	put(&v[1], QPATCH_SO_SYM, "x");
	CHECK_INT(parse(v, 2, &t, &err), QP_EFORMAT);
	CHECK(strstr(err.msg, "replaces nothing") != NULL);
	/* bad magic, kind, names */
	put(&v[1], QPATCH_SO_REPLACE, "f");
	v[1].magic ^= 1;
	CHECK_INT(parse(v, 2, &t, &err), QP_EFORMAT);
	put(&v[1], 9, "f");
	CHECK_INT(parse(v, 2, &t, &err), QP_EFORMAT);
	put(&v[1], QPATCH_SO_REPLACE, "f");
	memset(v[1].name, 'a', sizeof(v[1].name)); /* no NUL */
	CHECK_INT(parse(v, 2, &t, &err), QP_EFORMAT);
	put(&v[1], QPATCH_SO_REPLACE, "");
	CHECK_INT(parse(v, 2, &t, &err), QP_EFORMAT);
	put(&v[1], QPATCH_SO_REPLACE, "a b");
	CHECK_INT(parse(v, 2, &t, &err), QP_EFORMAT);
	put(&v[1], QPATCH_SO_REPLACE, "f\n");
	CHECK_INT(parse(v, 2, &t, &err), QP_EFORMAT);
	put(&v[1], QPATCH_SO_REPLACE, "b.c:");
	CHECK_INT(parse(v, 2, &t, &err), QP_EFORMAT);
	/* the same symbol twice */
	put(&v[1], QPATCH_SO_REPLACE, "f");
	put(&v[2], QPATCH_SO_REPLACE, "f");
	CHECK_INT(parse(v, 3, &t, &err), QP_EFORMAT);
	CHECK(strstr(err.msg, "named twice") != NULL);
	/* too many entries: refused before any is read */
	CHECK_INT(ld_so_table_parse((const uint8_t *)v, (LD_SO_MAX_ENTRIES + 1) * sizeof(v[0]), &t, &err),
		  QP_EFORMAT);
	ld_so_table_release(&t);
}

/* A .so patch's record: the library part after the functions. */
struct mem {
	uint64_t base;
	uint8_t *buf;
	size_t len;
};

static int mem_read(void *arg, uint64_t addr, void *buf, size_t len, struct qp_error *err)
{
	struct mem *m = arg;

	if (addr < m->base || addr - m->base > m->len || len > m->len - (addr - m->base))
		return qp_seterr(err, -EIO, "cannot read %zu bytes at 0x%llx", len,
				 (unsigned long long)addr);
	memcpy(buf, m->buf + (addr - m->base), len);
	return 0;
}

#define BASE 0x7f0000000000ull

static void test_record(void)
{
	static uint8_t img[8192];
	struct mem m = { BASE, img, sizeof(img) };
	struct qp_record *r = (struct qp_record *)img;
	struct qp_record_func *f = (struct qp_record_func *)(img + sizeof(*r));
	struct qp_record_so *so = (struct qp_record_so *)(img + sizeof(*r) + sizeof(struct qp_record_func));
	struct qp_error err = { 0 };
	struct qp_applied a;

	memset(img, 0, sizeof(img));
	memcpy(r->magic, QP_RECORD_MAGIC, 8);
	r->version = QP_RECORD_VERSION;
	r->nfuncs = 1;
	r->state = QP_REC_APPLIED;
	r->region_size = 4096;
	r->flags = QP_REC_F_SO;
	/* a function as the record's other rules want it: its stub in the
	 * mapping, a 5-byte jump */
	f->new_addr = BASE + 2048;
	f->new_size = 16;
	f->len = 5;
	f->site = 0x401000;
	f->old_size = 32;
	memcpy(so->magic, QP_RECORD_SO_MAGIC, 8);
	so->handle = 0x1234;
	so->lib_lo = 0x1000;
	so->lib_hi = 0x2000;
	memset(so->path, 'p', sizeof(so->path)); /* no NUL */
	CHECK_INT(ld_record_read(mem_read, &m, BASE, sizeof(img), &a, &err), 0);
	CHECK(a.so != NULL);
	if (a.so) {
		CHECK_INT(a.so->handle, 0x1234);
		CHECK_INT(strlen(a.so->path), QP_SO_PATH_MAX - 1);
	}
	free(a.funcs);
	free(a.so);
	/* no room for the library part in region_size */
	r->region_size = sizeof(*r) + sizeof(struct qp_record_func) + 8;
	f->new_addr = BASE + sizeof(*r);
	f->new_size = 0;
	CHECK_INT(ld_record_read(mem_read, &m, BASE, sizeof(img), &a, &err), -EINVAL);
	CHECK(a.so == NULL);
	free(a.funcs);
	r->region_size = 4096;
	f->new_addr = BASE + 2048;
	f->new_size = 16;
	/* bad magic, a reversed range */
	so->magic[0] = 'X';
	CHECK_INT(ld_record_read(mem_read, &m, BASE, sizeof(img), &a, &err), -EINVAL);
	CHECK(a.so == NULL);
	free(a.funcs);
	memcpy(so->magic, QP_RECORD_SO_MAGIC, 8);
	so->lib_lo = 0x3000;
	CHECK_INT(ld_record_read(mem_read, &m, BASE, sizeof(img), &a, &err), -EINVAL);
	free(a.funcs);
	/* without the flag, no library is read */
	r->flags = 0;
	CHECK_INT(ld_record_read(mem_read, &m, BASE, sizeof(img), &a, &err), 0);
	CHECK(a.so == NULL);
	free(a.funcs);
}

int main(void)
{
	test_macros();
	test_bounds();
	test_record();
	return check_report("test_sotab");
}
