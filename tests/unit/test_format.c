// SPDX-License-Identifier: MIT
/*
 * Unit tests of the .qpatch format library: model, writer, reader and every
 * validation rule of docs/format.md.  Rules are broken two ways: in the
 * model (a `struct spec` changed before it is built, so qp_patch__validate()
 * and the writer refuse it) and in the bytes of a written file (an `img`
 * corrupted in place, so the reader refuses it).
 */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zstd.h>

#include "check.h"
#include "qpatch/format.h"

/* ---- the sample patch ------------------------------------------------ */

/* Everything a patch holds, as plain arrays the tests can change. */
struct spec {
	struct qp_info info;         /* info block */
	struct qp_section secs[8];   /* content sections */
	size_t nsecs;                /* used entries of secs */
	struct qp_sym src[16];       /* src symbols, from index 1 */
	size_t nsrc;                 /* used entries of src, null included */
	struct qp_sym dst[16];       /* dst symbols, from index 1 */
	size_t ndst;                 /* used entries of dst, null included */
	struct qp_rela relas[20];    /* relocations */
	size_t nrelas;               /* used entries of relas */
};

static uint8_t text[64], rodata[24], data[16];

/* ELF section indexes of the sample's sections, in format version 1 ... */
enum { S_INFO = 1, S_TEXT, S_RODATA, S_DATA, S_BSS, S_SYMSRC, S_STRSRC,
       S_SYMDST, S_STRDST, S_DIFF, S_SHSTR, S_COUNT };
/* ... and in version 2 (one string table for names of all kinds). */
enum { S2_SYMSRC = S_BSS + 1, S2_SYMDST, S2_DIFF, S2_SHSTR, S2_COUNT };

/* Indexes of some sample relocations. */
enum { R_PC32 = 0, R_PLT32 = 1, R_GOTTPOFF = 3, R_TPOFF32 = 5, R_64_RODATA = 8,
       R_RELATIVE = 10, R_REPLACE_BUMP = 13, R_REPLACE_HELPER = 14, R_TLSGD = 15,
       R_TLSLD = 16, R_DTPOFF32 = 17 };

#define SYM(n, v, sz, t, b, sh) \
	{ .name = n, .value = v, .size = sz, .type = t, .bind = b, .shndx = sh }
#define RELA(o, t, s, a) { .offset = o, .type = t, .sym = s, .addend = a }

static void spec_init(struct spec *s)
{
	static const struct qp_section secs[] = {
		{ QP_SEC_TEXT, SHT_PROGBITS, SHF_ALLOC | SHF_EXECINSTR, 0, 64, 16, text },
		{ QP_SEC_RODATA, SHT_PROGBITS, SHF_ALLOC, 64, 24, 8, rodata },
		{ QP_SEC_DATA, SHT_PROGBITS, SHF_ALLOC | SHF_WRITE, 96, 16, 8, data },
		{ QP_SEC_BSS, SHT_NOBITS, SHF_ALLOC | SHF_WRITE, 112, 32, 16, NULL },
	};
	static const struct qp_sym src[] = {
		SYM("", 0, 0, 0, 0, 0),
		SYM("counter.c", 0, 0, STT_FILE, STB_LOCAL, SHN_ABS),
		SYM("count", 0x4010, 4, STT_OBJECT, STB_LOCAL, QP_SRC_IN_TARGET),
		SYM("bump", 0x1130, 30, STT_FUNC, STB_LOCAL, QP_SRC_IN_TARGET),
		SYM("util.c", 0, 0, STT_FILE, STB_LOCAL, SHN_ABS),
		SYM("helper", 0x1200, 10, STT_FUNC, STB_LOCAL, QP_SRC_IN_TARGET),
		SYM("main", 0x1150, 60, STT_FUNC, STB_GLOBAL, QP_SRC_IN_TARGET),
		SYM("printf", 0, 0, STT_FUNC, STB_GLOBAL, QP_SRC_EXTERNAL),
		SYM("tls_var", 0x10, 4, STT_TLS, STB_GLOBAL, QP_SRC_IN_TARGET),
	};
	static const struct qp_sym dst[] = {
		SYM("", 0, 0, 0, 0, 0),
		SYM("bump", 0, 32, STT_FUNC, STB_LOCAL, 0),
		SYM("helper", 32, 32, STT_FUNC, STB_LOCAL, 0),
		SYM("msg", 0, 24, STT_OBJECT, STB_LOCAL, 1),
		SYM("new_counter", 0, 8, STT_OBJECT, STB_GLOBAL, 2),
		SYM("buf", 0, 32, STT_OBJECT, STB_WEAK, 3),
	};
	static const struct qp_rela relas[] = {
		RELA(4, R_X86_64_PC32, 2, -4),
		RELA(9, R_X86_64_PLT32, 7, -4),
		RELA(14, R_X86_64_GOTPCRELX, 7, -4),
		RELA(20, R_X86_64_GOTTPOFF, 8, -4),
		RELA(40, R_X86_64_REX_GOTPCRELX, 6, -4),
		RELA(46, R_X86_64_TPOFF32, 8, 0),
		RELA(52, R_X86_64_32S, 2, 0),
		RELA(56, R_X86_64_32, 2, 8),
		RELA(64, R_X86_64_64, 6, 0),
		RELA(72, R_X86_64_PC64, 5, 0),
		RELA(96, R_X86_64_RELATIVE, 0, 64),
		RELA(104, R_X86_64_64, 7, 16),
		RELA(26, R_X86_64_GOTPCREL, 7, -4),
		RELA(0, QP_R_REPLACE, 3, 1),
		RELA(32, QP_R_REPLACE, 5, 2),
		RELA(30, R_X86_64_TLSGD, 8, -4),
		RELA(36, R_X86_64_TLSLD, 8, -4),
		RELA(60, R_X86_64_DTPOFF32, 8, 0),
	};
	size_t i;

	for (i = 0; i < sizeof(text); i++)
		text[i] = (uint8_t)(i % 7 == 0 ? 0xc3 : 0x90 + i % 5);
	memcpy(rodata, "hello, patched world\n\0\0", sizeof(rodata));
	for (i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)i;
	memset(s, 0, sizeof(*s));
	s->info.version = QP_FORMAT_VERSION;
	strcpy(s->info.id, "fix-1");
	for (i = 0; i < 20; i++)
		s->info.build_id[i] = (uint8_t)(0xa0 + i);
	s->info.build_id_size = 20;
	strcpy(s->info.target_name, "counter");
	strcpy(s->info.tool_version, "0.1.0");
	s->info.image_size = 144;
	memcpy(s->secs, secs, sizeof(secs));
	s->nsecs = sizeof(secs) / sizeof(secs[0]);
	memcpy(s->src, src, sizeof(src));
	s->nsrc = sizeof(src) / sizeof(src[0]);
	memcpy(s->dst, dst, sizeof(dst));
	s->ndst = sizeof(dst) / sizeof(dst[0]);
	memcpy(s->relas, relas, sizeof(relas));
	s->nrelas = sizeof(relas) / sizeof(relas[0]);
}

static struct qp_patch *spec_build(const struct spec *s)
{
	struct qp_patch *p = qp_patch__new();
	size_t i;
	int bad = 0;

	if (!p || qp_patch__set_info(p, &s->info))
		bad++;
	for (i = 0; p && i < s->nsecs; i++)
		bad += qp_patch__add_section(p, &s->secs[i]) != (int)i;
	for (i = 1; p && i < s->nsrc; i++)
		bad += qp_patch__add_src_sym(p, &s->src[i]) != (int)i;
	for (i = 1; p && i < s->ndst; i++)
		bad += qp_patch__add_dst_sym(p, &s->dst[i]) != (int)i;
	for (i = 0; p && i < s->nrelas; i++)
		bad += qp_patch__add_rela(p, &s->relas[i]) != (int)i;
	CHECK_INT(bad, 0);
	return p;
}

/* ---- comparing ------------------------------------------------------- */

static void check_sym_eq(const struct qp_sym *a, const struct qp_sym *b)
{
	CHECK_STR(a->name, b->name);
	CHECK_INT(a->value, b->value);
	CHECK_INT(a->size, b->size);
	CHECK_INT(a->type, b->type);
	CHECK_INT(a->bind, b->bind);
	CHECK_INT(a->shndx, b->shndx);
}

static void check_info_eq(const struct qp_info *a, const struct qp_info *b)
{
	CHECK_INT(a->version, b->version);
	CHECK_INT(a->flags, b->flags);
	CHECK_STR(a->id, b->id);
	CHECK_INT(a->build_id_size, b->build_id_size);
	CHECK(!memcmp(a->build_id, b->build_id, a->build_id_size));
	CHECK_STR(a->target_name, b->target_name);
	CHECK_STR(a->tool_version, b->tool_version);
	CHECK_INT(a->image_size, b->image_size);
}

static void check_section_eq(const struct qp_section *a,
			     const struct qp_section *b)
{
	CHECK_STR(a->name, b->name);
	CHECK_INT(a->type, b->type);
	CHECK_INT(a->flags, b->flags);
	CHECK_INT(a->addr, b->addr);
	CHECK_INT(a->size, b->size);
	CHECK_INT(a->align, b->align);
	if (a->type == SHT_NOBITS || !a->size)
		CHECK(!a->data == !b->data);
	else
		CHECK(a->data && b->data && !memcmp(a->data, b->data, a->size));
}

/* @p holds exactly what @s describes. */
static void check_patch_is(const struct qp_patch *p, const struct spec *s)
{
	size_t i;

	check_info_eq(qp_patch__info(p), &s->info);
	CHECK_INT(qp_patch__section_count(p), s->nsecs);
	for (i = 0; i < s->nsecs && i < qp_patch__section_count(p); i++)
		check_section_eq(qp_patch__section(p, i), &s->secs[i]);
	CHECK_INT(qp_patch__src_sym_count(p), s->nsrc);
	for (i = 0; i < s->nsrc && i < qp_patch__src_sym_count(p); i++)
		check_sym_eq(qp_patch__src_sym(p, i), &s->src[i]);
	CHECK_INT(qp_patch__dst_sym_count(p), s->ndst);
	for (i = 0; i < s->ndst && i < qp_patch__dst_sym_count(p); i++)
		check_sym_eq(qp_patch__dst_sym(p, i), &s->dst[i]);
	CHECK_INT(qp_patch__rela_count(p), s->nrelas);
	for (i = 0; i < s->nrelas && i < qp_patch__rela_count(p); i++) {
		const struct qp_rela *r = qp_patch__rela(p, i);

		CHECK_INT(r->offset, s->relas[i].offset);
		CHECK_INT(r->type, s->relas[i].type);
		CHECK_INT(r->sym, s->relas[i].sym);
		CHECK_INT(r->addend, s->relas[i].addend);
	}
}

/* ---- round trips ----------------------------------------------------- */

static void test_roundtrip_mem(void)
{
	struct qp_error err = { 0 };
	struct qp_patch *p, *q;
	struct spec s;
	void *buf = NULL;
	size_t size = 0;

	spec_init(&s);
	p = spec_build(&s);
	check_patch_is(p, &s);
	CHECK_INT(qp_patch__validate(p, &err), 0);
	CHECK_INT(qp_patch__write_mem(p, &buf, &size, &err), 0);
	CHECK(buf && size > sizeof(Elf64_Ehdr));
	q = qp_patch__open_mem(buf, size, &err);
	CHECK(q);
	if (q)
		check_patch_is(q, &s);
	else
		fprintf(stderr, "open_mem: %s\n", err.msg);
	qp_patch__free(q);
	qp_patch__free(p);
	free(buf);
}

/* A patch with nothing but its info block. */
static void test_roundtrip_empty(void)
{
	struct qp_error err = { 0 };
	struct qp_patch *p, *q;
	struct spec s;
	void *buf = NULL;
	size_t size = 0;

	spec_init(&s);
	s.nsecs = 0;
	s.nsrc = 1;
	s.ndst = 1;
	s.nrelas = 0;
	s.info.image_size = 0;
	p = spec_build(&s);
	CHECK_INT(qp_patch__write_mem(p, &buf, &size, &err), 0);
	q = qp_patch__open_mem(buf, size, &err);
	CHECK(q);
	if (q)
		check_patch_is(q, &s);
	qp_patch__free(q);
	qp_patch__free(p);
	free(buf);
}

/* Empty PROGBITS sections are stored uncompressed, with no data. */
static void test_roundtrip_empty_section(void)
{
	struct qp_error err = { 0 };
	struct qp_patch *p, *q;
	struct spec s;
	void *buf = NULL;
	size_t size = 0;

	spec_init(&s);
	s.secs[s.nsecs++] = (struct qp_section){ ".qpatch.empty", SHT_PROGBITS,
						 SHF_ALLOC, 144, 0, 1, NULL };
	p = spec_build(&s);
	CHECK_INT(qp_patch__write_mem(p, &buf, &size, &err), 0);
	q = qp_patch__open_mem(buf, size, &err);
	CHECK(q);
	if (q)
		check_patch_is(q, &s);
	else
		fprintf(stderr, "open_mem: %s\n", err.msg);
	qp_patch__free(q);
	qp_patch__free(p);
	free(buf);
}

static const char *tmp_dir(void)
{
	const char *d = getenv("QP_TMP");

	if (!d || !d[0])
		return "/tmp";
	if (mkdir(d, 0755) && errno != EEXIST)
		return "/tmp";
	return d;
}

/* Entries of @dir whose name starts with @prefix. */
static int count_entries(const char *dir, const char *prefix)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	while (d && (e = readdir(d)))
		n += !strncmp(e->d_name, prefix, strlen(prefix));
	if (d)
		closedir(d);
	return n;
}

static void test_roundtrip_file(void)
{
	struct qp_error err = { 0 };
	struct qp_patch *p, *q, *bad;
	char path[4096], prefix[64];
	struct stat st;
	struct spec s;

	snprintf(prefix, sizeof(prefix), "test_format.%d.qpatch", (int)getpid());
	snprintf(path, sizeof(path), "%s/%s", tmp_dir(), prefix);
	spec_init(&s);
	p = spec_build(&s);
	CHECK_INT(qp_patch__write(p, path, &err), 0);
	CHECK_INT(stat(path, &st), 0);
	CHECK_INT(st.st_mode & 0777, 0644);
	q = qp_patch__open(path, &err);
	CHECK(q);
	if (q)
		check_patch_is(q, &s);
	else
		fprintf(stderr, "open: %s\n", err.msg);

	/* an invalid patch leaves the old file alone and no temporary */
	s.info.flags = 1;
	bad = spec_build(&s);
	CHECK_INT(qp_patch__write(bad, path, &err), QP_EFORMAT);
	CHECK_CONTAINS(err.msg, path);
	CHECK_CONTAINS(err.msg, "info: flags 0x1 are not 0");
	CHECK_INT(count_entries(tmp_dir(), prefix), 1);
	qp_patch__free(q);
	q = qp_patch__open(path, &err);
	CHECK(q);
	unlink(path);
	CHECK_INT(count_entries(tmp_dir(), prefix), 0);
	qp_patch__free(bad);
	qp_patch__free(q);
	qp_patch__free(p);
}

static void test_file_errors(void)
{
	struct qp_error err = { 0 };
	struct qp_patch *p;
	struct spec s;

	CHECK(!qp_patch__open("/nonexistent/fix.qpatch", &err));
	CHECK_INT(err.code, -ENOENT);
	CHECK_STR(err.msg, "unable to open '/nonexistent/fix.qpatch': No such file or directory");
	CHECK(!qp_patch__open("/", &err));
	CHECK_STR(err.msg, "'/': not a regular file");
	CHECK(!qp_patch__open("/dev/null", &err));
	CHECK_CONTAINS(err.msg, "'/dev/null': not a regular file");

	spec_init(&s);
	p = spec_build(&s);
	CHECK_INT(qp_patch__write(p, "/nonexistent/fix.qpatch", &err), -ENOENT);
	CHECK_CONTAINS(err.msg, "unable to create '/nonexistent/fix.qpatch.");
	qp_patch__free(p);
}

/* ---- model API ------------------------------------------------------- */

static void test_model_api(void)
{
	struct qp_section sec = { "x", SHT_PROGBITS, SHF_ALLOC, 0, 4, 1, NULL };
	struct qp_sym sym = { .name = NULL };
	struct qp_patch *p;
	struct spec s;
	int i, ok = 1;

	spec_init(&s);
	p = spec_build(&s);
	CHECK_INT(qp_patch__src_sym_count(p), 9);
	CHECK_INT(qp_patch__dst_sym_count(p), 6);
	CHECK(qp_patch__section(p, 4) == NULL);
	CHECK(qp_patch__src_sym(p, 9) == NULL);
	CHECK(qp_patch__dst_sym(p, 6) == NULL);
	CHECK(qp_patch__rela(p, 18) == NULL);
	CHECK_STR(qp_patch__src_sym(p, 0)->name, "");
	CHECK_INT(qp_patch__dst_sym_addr(p, 2), 32);
	CHECK_INT(qp_patch__dst_sym_addr(p, 3), 64);
	CHECK_INT(qp_patch__dst_sym_addr(p, 5), 112);
	CHECK_INT(qp_patch__dst_sym_addr(p, 99), 0);
	/* copies: changing the caller's data changes nothing */
	text[0] ^= 0xff;
	CHECK_INT(qp_patch__section(p, 0)->data[0], text[0] ^ 0xff);
	text[0] ^= 0xff;
	CHECK(qp_patch__section(p, 3)->data == NULL);
	/* bad arguments */
	CHECK_INT(qp_patch__add_section(p, &sec), -EINVAL); /* no data */
	CHECK_INT(qp_patch__add_src_sym(p, &sym), -EINVAL); /* no name */
	CHECK_INT(qp_patch__add_dst_sym(p, NULL), -EINVAL);
	CHECK_INT(qp_patch__add_rela(NULL, &s.relas[0]), -EINVAL);
	CHECK_INT(qp_patch__set_info(p, NULL), -EINVAL);
	qp_patch__free(p);
	qp_patch__free(NULL);

	/* indexes, across geometric growth */
	p = qp_patch__new();
	sym.name = "s";
	for (i = 1; i <= 1000; i++)
		ok &= qp_patch__add_src_sym(p, &sym) == i &&
		      qp_patch__add_dst_sym(p, &sym) == i &&
		      qp_patch__add_rela(p, &s.relas[0]) == i - 1;
	CHECK(ok);
	CHECK_INT(qp_patch__src_sym_count(p), 1001);
	CHECK_INT(qp_patch__rela_count(p), 1000);
	qp_patch__free(p);
}

static void test_rela_names(void)
{
	CHECK_STR(qp_rela_type_name(R_X86_64_PC32), "R_X86_64_PC32");
	CHECK_STR(qp_rela_type_name(R_X86_64_PLT32), "R_X86_64_PLT32");
	CHECK_STR(qp_rela_type_name(R_X86_64_64), "R_X86_64_64");
	CHECK_STR(qp_rela_type_name(R_X86_64_RELATIVE), "R_X86_64_RELATIVE");
	CHECK_STR(qp_rela_type_name(R_X86_64_REX_GOTPCRELX), "R_X86_64_REX_GOTPCRELX");
	CHECK_STR(qp_rela_type_name(QP_R_REPLACE), "QP_R_REPLACE");
	CHECK_STR(qp_rela_type_name(R_X86_64_TLSGD), "R_X86_64_TLSGD");
	CHECK_STR(qp_rela_type_name(R_X86_64_TLSLD), "R_X86_64_TLSLD");
	CHECK_STR(qp_rela_type_name(R_X86_64_DTPOFF32), "R_X86_64_DTPOFF32");
	CHECK(qp_rela_type_name(R_X86_64_DTPOFF64) == NULL);
	CHECK(qp_rela_type_name(R_X86_64_GOTPC32_TLSDESC) == NULL);
	CHECK(qp_rela_is_tls(R_X86_64_TLSGD) && qp_rela_is_tls(R_X86_64_GOTTPOFF));
	CHECK(!qp_rela_is_tls(R_X86_64_PC32) && !qp_rela_is_tls(QP_R_REPLACE));
	CHECK(qp_rela_type_name(R_X86_64_COPY) == NULL);
	CHECK(qp_rela_type_name(0x12345) == NULL);
}

/* ---- validation rules on the model ----------------------------------- */

/* @s breaks exactly one rule: validate and the writer refuse it with
 * @code and a message containing @needle. */
#define EXPECT_INVALID(s, code, needle) expect_invalid(s, code, needle, __LINE__)

static void expect_invalid(const struct spec *s, int code, const char *needle,
			   int line)
{
	struct qp_error err = { 0 };
	struct qp_patch *p = spec_build(s);
	void *buf = NULL;
	size_t size = 0;
	int ret = qp_patch__validate(p, &err);

	if (ret != code || !strstr(err.msg, needle))
		fprintf(stderr, "line %d: validate: %d '%s'\n", line, ret, err.msg);
	CHECK_INT(ret, code);
	CHECK_CONTAINS(err.msg, needle);
	CHECK_INT(qp_patch__write_mem(p, &buf, &size, &err), code);
	CHECK(buf == NULL);
	qp_patch__free(p);
}

static void test_rules_info(void)
{
	struct spec s;

	spec_init(&s);
	s.info.version = 3;
	EXPECT_INVALID(&s, QP_EVERSION, "info: unsupported format version 3 (expected 1 to 2)");
	spec_init(&s);
	s.info.version = 0;
	EXPECT_INVALID(&s, QP_EVERSION, "info: unsupported format version 0 (expected 1 to 2)");
	spec_init(&s);
	s.info.flags = 4;
	EXPECT_INVALID(&s, QP_EFORMAT, "info: flags 0x4 are not 0");
	spec_init(&s);
	s.info.id[0] = '\0';
	EXPECT_INVALID(&s, QP_EFORMAT, "info: id is empty");
	spec_init(&s);
	memset(s.info.id, 'x', sizeof(s.info.id));
	EXPECT_INVALID(&s, QP_EFORMAT, "info: id is not NUL-terminated within 64 bytes");
	spec_init(&s);
	s.info.target_name[0] = '\0';
	EXPECT_INVALID(&s, QP_EFORMAT, "info: target_name is empty");
	spec_init(&s);
	memset(s.info.target_name, 'x', sizeof(s.info.target_name));
	EXPECT_INVALID(&s, QP_EFORMAT, "info: target_name is not NUL-terminated");
	spec_init(&s);
	memset(s.info.tool_version, 'x', sizeof(s.info.tool_version));
	EXPECT_INVALID(&s, QP_EFORMAT, "info: tool_version is not NUL-terminated");
	spec_init(&s);
	s.info.build_id_size = 0;
	EXPECT_INVALID(&s, QP_EFORMAT, "info: build_id_size 0 is not in 1..64");
	spec_init(&s);
	s.info.build_id_size = 65;
	EXPECT_INVALID(&s, QP_EFORMAT, "info: build_id_size 65 is not in 1..64");
	spec_init(&s);
	s.info.image_size = 160;
	EXPECT_INVALID(&s, QP_EFORMAT, "info: image_size 0xa0 does not match the end of the last section 0x90");
	spec_init(&s);
	s.nsecs = 0;
	s.ndst = 1;
	s.nrelas = 0;
	EXPECT_INVALID(&s, QP_EFORMAT, "image_size 0x90 does not match the end of the last section 0x0");
}

static void test_rules_sections(void)
{
	struct spec s;

	spec_init(&s);
	s.secs[1].name = "";
	EXPECT_INVALID(&s, QP_EFORMAT, "section 1: empty name");
	spec_init(&s);
	s.secs[1].type = SHT_NOTE;
	EXPECT_INVALID(&s, QP_EFORMAT, "section '.qpatch.rodata': type 7 is neither SHT_PROGBITS nor SHT_NOBITS");
	spec_init(&s);
	s.secs[1].flags = 0;
	EXPECT_INVALID(&s, QP_EFORMAT, "section '.qpatch.rodata': flags 0x0 are not SHF_ALLOC");
	spec_init(&s);
	s.secs[1].flags |= SHF_TLS;
	EXPECT_INVALID(&s, QP_EFORMAT, "section '.qpatch.rodata': flags 0x402 are not");
	spec_init(&s);
	s.secs[1].align = 0;
	EXPECT_INVALID(&s, QP_EFORMAT, "section '.qpatch.rodata': alignment 0 is not a power of two");
	spec_init(&s);
	s.secs[1].align = 12;
	EXPECT_INVALID(&s, QP_EFORMAT, "alignment 12 is not a power of two");
	spec_init(&s);
	s.secs[1].align = 8192;
	s.secs[1].addr = 8192;
	EXPECT_INVALID(&s, QP_EFORMAT, "alignment 8192 is not a power of two up to 4096");
	spec_init(&s);
	s.secs[1].addr = 68;
	EXPECT_INVALID(&s, QP_EFORMAT, "section '.qpatch.rodata': addr 0x44 is not a multiple of its alignment 8");
	spec_init(&s);
	s.secs[2].addr = 80;
	EXPECT_INVALID(&s, QP_EFORMAT, "section '.qpatch.data' [0x50, 0x60) overlaps section '.qpatch.rodata' [0x40, 0x58)");
	spec_init(&s);
	s.secs[0].addr = 64; /* a NOBITS section overlaps too; text moves past bss */
	s.secs[3].addr = 96;
	EXPECT_INVALID(&s, QP_EFORMAT, "overlaps");
	spec_init(&s);
	s.secs[3].size = QP_MAX_SECTION_SIZE + 1ull;
	EXPECT_INVALID(&s, QP_EFORMAT, "section '.qpatch.bss': [0x70, +0x10000001) exceeds the image limit 0x10000000");
	spec_init(&s);
	s.secs[3].addr = QP_MAX_SECTION_SIZE; /* ends beyond the limit */
	EXPECT_INVALID(&s, QP_EFORMAT, "exceeds the image limit");
	spec_init(&s);
	s.secs[3].addr = ~0ull << 4; /* addr + size would wrap around */
	EXPECT_INVALID(&s, QP_EFORMAT, "exceeds the image limit");
}

static void test_rules_src(void)
{
	struct spec s;

	spec_init(&s);
	s.src[1].bind = STB_GLOBAL; /* FILE must be local (and is then after a global) */
	EXPECT_INVALID(&s, QP_EFORMAT, "src symbol 2 'count': local symbol after a non-local one");
	spec_init(&s);
	s.src[4].value = 8;
	EXPECT_INVALID(&s, QP_EFORMAT, "src symbol 4 'util.c': STT_FILE symbol must be named, STB_LOCAL, SHN_ABS, value 0");
	spec_init(&s);
	s.src[4].shndx = SHN_UNDEF;
	EXPECT_INVALID(&s, QP_EFORMAT, "STT_FILE symbol must be");
	spec_init(&s);
	s.src[4].name = "";
	EXPECT_INVALID(&s, QP_EFORMAT, "STT_FILE symbol must be named");
	spec_init(&s);
	s.src[1] = s.src[2]; /* a local before any FILE */
	EXPECT_INVALID(&s, QP_EFORMAT, "src symbol 1 'count': local symbol not preceded by an STT_FILE symbol");
	spec_init(&s);
	s.src[2].shndx = QP_SRC_EXTERNAL;
	EXPECT_INVALID(&s, QP_EFORMAT, "src symbol 2 'count': local symbol is not QP_SRC_IN_TARGET");
	spec_init(&s);
	s.src[6].shndx = 3;
	EXPECT_INVALID(&s, QP_EFORMAT, "src symbol 6 'main': shndx 0x3 is neither QP_SRC_IN_TARGET nor QP_SRC_EXTERNAL");
	spec_init(&s);
	s.src[7].name = "";
	EXPECT_INVALID(&s, QP_EFORMAT, "src symbol 7: external symbol without a name");
	spec_init(&s);
	s.src[6].type = STT_SECTION;
	EXPECT_INVALID(&s, QP_EFORMAT, "src symbol 6 'main': unsupported type 3");
	spec_init(&s);
	s.src[6].bind = 7;
	EXPECT_INVALID(&s, QP_EFORMAT, "src symbol 6 'main': unsupported binding 7");
	spec_init(&s);
	s.src[8].bind = STB_LOCAL; /* locals after globals */
	EXPECT_INVALID(&s, QP_EFORMAT, "src symbol 8 'tls_var': local symbol after a non-local one");
}

/* ---- call frame information (.qpatch.eh_frame) ------------------------ */

static uint8_t cfi_bytes[256];

/* One CIE as the builder writes it, then FDEs for code [pc, pc + range)
 * with @insns, then the terminator; @at is the section's image offset. */
static size_t cfi_build(uint64_t at, const int64_t *pc, const uint32_t *range, int nfde,
			const uint8_t *insns, size_t ninsns)
{
	static const uint8_t cie[24] = { 20, 0, 0, 0, 0, 0, 0, 0, 1, 'z', 'R', 0, 1, 0x78, 16, 1,
					 0x1b, 0x0c, 0x07, 0x08, 0x90, 0x01, 0, 0 };
	size_t len = sizeof(cie);
	int i;

	memset(cfi_bytes, 0, sizeof(cfi_bytes));
	memcpy(cfi_bytes, cie, sizeof(cie));
	for (i = 0; i < nfde; i++) {
		size_t start = len, body = 17 + ninsns;
		uint32_t w[4] = { 0, (uint32_t)(start + 4), 0, range[i] };

		body = (body + 7) / 8 * 8;
		w[0] = (uint32_t)(body - 4);
		w[2] = (uint32_t)(int32_t)(pc[i] - (int64_t)(at + start + 8));
		memcpy(cfi_bytes + start, w, sizeof(w));
		cfi_bytes[start + 16] = 0; /* no augmentation data */
		memcpy(cfi_bytes + start + 17, insns, ninsns);
		len += body;
	}
	return len + 4; /* terminator: zeros */
}

/* The sample with a .qpatch.eh_frame section of @size bytes at 144. */
static void spec_cfi(struct spec *s, size_t size)
{
	spec_init(s);
	s->secs[s->nsecs++] = (struct qp_section){ QP_SEC_EH_FRAME, SHT_PROGBITS, SHF_ALLOC, 144,
						   size, 8, cfi_bytes };
	s->info.image_size = 144 + size;
}

static void test_rules_cfi(void)
{
	static const uint8_t adv[] = { 0x41, 0x0e, 0x10 }; /* advance 1, def_cfa_offset 16 */
	static const uint8_t set_loc[] = { 0x01, 0, 0, 0, 0, 0, 0, 0, 0 };
	static const uint8_t far[] = { 0x02, 40 };         /* advance_loc1 40 */
	static const uint8_t bad_op[] = { 0x3f };
	int64_t pc[2] = { 0, 32 };
	uint32_t range[2] = { 32, 32 };
	struct qp_error err = { 0 };
	struct qp_patch *p, *q;
	struct spec s;
	void *buf = NULL;
	size_t n, size = 0;

	/* valid: two FDEs (bump, helper), round trip */
	n = cfi_build(144, pc, range, 2, adv, sizeof(adv));
	spec_cfi(&s, n);
	p = spec_build(&s);
	CHECK_INT(qp_patch__validate(p, &err), 0);
	CHECK_INT(qp_patch__write_mem(p, &buf, &size, &err), 0);
	q = buf ? qp_patch__open_mem(buf, size, &err) : NULL;
	CHECK(q != NULL);
	if (q)
		check_patch_is(q, &s);
	qp_patch__free(q);
	qp_patch__free(p);
	free(buf);

	spec_cfi(&s, n);
	s.secs[4].flags |= SHF_WRITE;
	EXPECT_INVALID(&s, QP_EFORMAT, "section '.qpatch.eh_frame': not SHT_PROGBITS, SHF_ALLOC only");
	spec_cfi(&s, n);
	s.secs[s.nsecs++] = (struct qp_section){ QP_SEC_EH_FRAME, SHT_PROGBITS, SHF_ALLOC,
						 144 + 4096, n, 8, cfi_bytes };
	s.info.image_size = 144 + 4096 + n;
	EXPECT_INVALID(&s, QP_EFORMAT, "two sections named '.qpatch.eh_frame'");
	spec_cfi(&s, n);
	s.relas[R_PC32].offset = 144 + 40;
	EXPECT_INVALID(&s, QP_EFORMAT, "relocation 0 (R_X86_64_PC32): offset 0xb8 is in section '.qpatch.eh_frame', which is resolved");
	/* the entries */
	spec_cfi(&s, n - 4);
	EXPECT_INVALID(&s, QP_EFORMAT, "does not end with exactly one zero terminator");
	cfi_build(144, pc, range, 2, adv, sizeof(adv));
	spec_cfi(&s, n + 4);
	EXPECT_INVALID(&s, QP_EFORMAT, "does not end with exactly one zero terminator");
	n = cfi_build(144, pc, range, 2, adv, sizeof(adv));
	cfi_bytes[24] = 200; /* FDE length */
	spec_cfi(&s, n);
	EXPECT_INVALID(&s, QP_EFORMAT, "entry at 0x18: length 200 runs past the end");
	n = cfi_build(144, pc, range, 2, adv, sizeof(adv));
	cfi_bytes[8] = 3; /* CIE version */
	spec_cfi(&s, n);
	EXPECT_INVALID(&s, QP_EFORMAT, "CIE at 0x0 is not version 1, \"zR\" with FDE encoding 0x1b");
	n = cfi_build(144, pc, range, 2, adv, sizeof(adv));
	cfi_bytes[16] = 0x03; /* FDE encoding udata4, absolute */
	spec_cfi(&s, n);
	EXPECT_INVALID(&s, QP_EFORMAT, "CIE at 0x0 is not version 1");
	n = cfi_build(144, pc, range, 2, adv, sizeof(adv));
	cfi_bytes[28] = 4; /* the first FDE's CIE pointer: into the CIE's middle */
	spec_cfi(&s, n);
	EXPECT_INVALID(&s, QP_EFORMAT, "FDE at 0x18 does not point at an earlier CIE");
	pc[0] = 64; /* rodata */
	n = cfi_build(144, pc, range, 1, adv, sizeof(adv));
	spec_cfi(&s, n);
	EXPECT_INVALID(&s, QP_EFORMAT, "FDE at 0x18: code [0x40, +0x20) is not inside an executable section");
	pc[0] = 40; /* runs past the end of .qpatch.text */
	n = cfi_build(144, pc, range, 1, adv, sizeof(adv));
	spec_cfi(&s, n);
	EXPECT_INVALID(&s, QP_EFORMAT, "code [0x28, +0x20) is not inside an executable section");
	pc[0] = 32;
	pc[1] = 0; /* out of order */
	n = cfi_build(144, pc, range, 2, adv, sizeof(adv));
	spec_cfi(&s, n);
	EXPECT_INVALID(&s, QP_EFORMAT, "FDE at 0x30: code at 0x0 is not after the previous FDE's");
	pc[0] = 0;
	pc[1] = 16; /* overlapping */
	n = cfi_build(144, pc, range, 2, adv, sizeof(adv));
	spec_cfi(&s, n);
	EXPECT_INVALID(&s, QP_EFORMAT, "code at 0x10 is not after the previous FDE's");
	pc[1] = 32;
	n = cfi_build(144, pc, range, 2, set_loc, sizeof(set_loc));
	spec_cfi(&s, n);
	EXPECT_INVALID(&s, QP_EFORMAT, "FDE at 0x18: DW_CFA_set_loc 0x01 at +0");
	n = cfi_build(144, pc, range, 2, far, sizeof(far));
	spec_cfi(&s, n);
	EXPECT_INVALID(&s, QP_EFORMAT, "FDE at 0x18: advance past the end of the code it describes");
	n = cfi_build(144, pc, range, 2, bad_op, sizeof(bad_op));
	spec_cfi(&s, n);
	EXPECT_INVALID(&s, QP_EFORMAT, "unsupported or truncated instruction 0x3f at +0");
	n = cfi_build(144, pc, range, 2, adv, sizeof(adv));
	cfi_bytes[24 + 16] = 1; /* augmentation data in an FDE */
	spec_cfi(&s, n);
	EXPECT_INVALID(&s, QP_EFORMAT, "FDE at 0x18 has augmentation data");

	/* every single-bit flip of the section: accepted or refused, never
	 * read out of bounds (the sanitizer build checks) */
	{
		size_t i, refused = 0;
		int b;

		n = cfi_build(144, pc, range, 2, adv, sizeof(adv));
		for (i = 0; i < n; i++) {
			for (b = 0; b < 8; b++) {
				cfi_bytes[i] ^= (uint8_t)(1u << b);
				spec_cfi(&s, n);
				p = spec_build(&s);
				refused += qp_patch__validate(p, &err) != 0;
				qp_patch__free(p);
				cfi_bytes[i] ^= (uint8_t)(1u << b);
			}
		}
		CHECK(refused > n * 4); /* most flips break a rule */
	}
}

static void test_rules_dst(void)
{
	struct spec s;

	spec_init(&s);
	s.dst[4].shndx = 4;
	EXPECT_INVALID(&s, QP_EFORMAT, "dst symbol 4 'new_counter': section index 4 out of range (4 sections)");
	spec_init(&s);
	s.dst[2].value = 40; /* 40 + 32 > 64 */
	EXPECT_INVALID(&s, QP_EFORMAT, "dst symbol 2 'helper': [0x28, +0x20) is outside section '.qpatch.text' (size 0x40)");
	spec_init(&s);
	s.dst[2].value = ~0ull - 8; /* value + size wraps around */
	EXPECT_INVALID(&s, QP_EFORMAT, "is outside section '.qpatch.text'");
	spec_init(&s);
	s.dst[3].type = STT_FUNC;
	EXPECT_INVALID(&s, QP_EFORMAT, "dst symbol 3 'msg': function in non-executable section '.qpatch.rodata'");
	spec_init(&s);
	s.dst[3].type = STT_TLS;
	EXPECT_INVALID(&s, QP_EFORMAT, "dst symbol 3 'msg': unsupported type 6");
	spec_init(&s);
	s.dst[5].bind = STB_LOCAL;
	EXPECT_INVALID(&s, QP_EFORMAT, "dst symbol 5 'buf': local symbol after a non-local one");
}

static void test_rules_relas(void)
{
	struct spec s;

	spec_init(&s);
	s.relas[R_PC32].type = 0x99;
	EXPECT_INVALID(&s, QP_EFORMAT, "relocation 0: unsupported type 0x99");
	spec_init(&s);
	s.relas[R_PC32].type = R_X86_64_COPY;
	EXPECT_INVALID(&s, QP_EFORMAT, "relocation 0: unsupported type 0x5");
	spec_init(&s);
	s.relas[R_PC32].offset = 0x1000;
	EXPECT_INVALID(&s, QP_EFORMAT, "relocation 0 (R_X86_64_PC32): offset 0x1000 is not inside any content section");
	spec_init(&s);
	s.relas[R_PC32].offset = ~0ull - 1;
	EXPECT_INVALID(&s, QP_EFORMAT, "is not inside any content section");
	spec_init(&s);
	s.relas[R_PC32].offset = 88; /* the gap between rodata and data */
	EXPECT_INVALID(&s, QP_EFORMAT, "offset 0x58 is not inside any content section");
	spec_init(&s);
	s.relas[R_PC32].offset = 120;
	EXPECT_INVALID(&s, QP_EFORMAT, "relocation 0 (R_X86_64_PC32): offset 0x78 is in SHT_NOBITS section '.qpatch.bss'");
	spec_init(&s);
	s.relas[R_PC32].offset = 61;
	EXPECT_INVALID(&s, QP_EFORMAT, "relocation 0 (R_X86_64_PC32): 4-byte field at 0x3d crosses the end of section '.qpatch.text'");
	spec_init(&s);
	s.relas[R_64_RODATA].offset = 84; /* 8 bytes: 84 + 8 > 88 */
	EXPECT_INVALID(&s, QP_EFORMAT, "relocation 8 (R_X86_64_64): 8-byte field at 0x54 crosses the end");
	spec_init(&s);
	s.relas[R_PC32].sym = 9;
	EXPECT_INVALID(&s, QP_EFORMAT, "relocation 0 (R_X86_64_PC32): symbol index 9 out of range (9 src symbols)");
	spec_init(&s);
	s.relas[R_PC32].sym = 0;
	EXPECT_INVALID(&s, QP_EFORMAT, "relocation 0 (R_X86_64_PC32): symbol index 0 out of range");
	spec_init(&s);
	s.relas[R_PLT32].sym = 4;
	EXPECT_INVALID(&s, QP_EFORMAT, "relocation 1 (R_X86_64_PLT32): symbol 4 'util.c' is an STT_FILE symbol");
	spec_init(&s);
	s.relas[R_RELATIVE].sym = 6;
	EXPECT_INVALID(&s, QP_EFORMAT, "relocation 10 (R_X86_64_RELATIVE): symbol index 6 is not 0");
	/* thread-local accesses name thread-local variables, and only they */
	spec_init(&s);
	s.relas[R_PC32].sym = 8;
	EXPECT_INVALID(&s, QP_EFORMAT, "relocation 0 (R_X86_64_PC32): symbol 8 'tls_var' is a thread-local variable");
	spec_init(&s);
	s.relas[R_TPOFF32].sym = 2;
	EXPECT_INVALID(&s, QP_EFORMAT, "relocation 5 (R_X86_64_TPOFF32): symbol 2 'count' is not a thread-local variable");
	spec_init(&s);
	s.relas[R_GOTTPOFF].sym = 6;
	EXPECT_INVALID(&s, QP_EFORMAT, "relocation 3 (R_X86_64_GOTTPOFF): symbol 6 'main' is not a thread-local variable");
	spec_init(&s);
	s.relas[R_TLSGD].sym = 7;
	EXPECT_INVALID(&s, QP_EFORMAT, "relocation 15 (R_X86_64_TLSGD): symbol 7 'printf' is not a thread-local variable");
	spec_init(&s);
	s.relas[R_TLSLD].sym = 2;
	EXPECT_INVALID(&s, QP_EFORMAT, "relocation 16 (R_X86_64_TLSLD): symbol 2 'count' is not");
	spec_init(&s);
	s.relas[R_DTPOFF32].sym = 2;
	EXPECT_INVALID(&s, QP_EFORMAT, "relocation 17 (R_X86_64_DTPOFF32): symbol 2 'count' is not");
	spec_init(&s);
	s.relas[R_DTPOFF32].offset = 62;
	EXPECT_INVALID(&s, QP_EFORMAT, "relocation 17 (R_X86_64_DTPOFF32): 4-byte field at 0x3e crosses the end");
}

static void test_rules_replace(void)
{
	struct spec s;

	spec_init(&s);
	s.relas[R_REPLACE_BUMP].sym = 2;
	EXPECT_INVALID(&s, QP_EFORMAT, "relocation 13 (QP_R_REPLACE): src symbol 2 'count' is not a function");
	spec_init(&s);
	s.relas[R_REPLACE_BUMP].sym = 99;
	EXPECT_INVALID(&s, QP_EFORMAT, "relocation 13 (QP_R_REPLACE): symbol index 99 out of range");
	spec_init(&s);
	s.relas[R_REPLACE_BUMP].addend = 3;
	s.relas[R_REPLACE_BUMP].offset = 64;
	EXPECT_INVALID(&s, QP_EFORMAT, "relocation 13 (QP_R_REPLACE): dst symbol 3 'msg' is not a function");
	spec_init(&s);
	s.relas[R_REPLACE_BUMP].addend = 6;
	EXPECT_INVALID(&s, QP_EFORMAT, "relocation 13 (QP_R_REPLACE): dst symbol index 6 out of range (6 symbols)");
	spec_init(&s);
	s.relas[R_REPLACE_BUMP].addend = 0;
	EXPECT_INVALID(&s, QP_EFORMAT, "dst symbol index 0 out of range");
	spec_init(&s);
	s.relas[R_REPLACE_BUMP].addend = -1;
	EXPECT_INVALID(&s, QP_EFORMAT, "dst symbol index -1 out of range");
	spec_init(&s);
	s.relas[R_REPLACE_HELPER].offset = 33;
	EXPECT_INVALID(&s, QP_EFORMAT, "relocation 14 (QP_R_REPLACE): offset 0x21 is not the address 0x20 of dst symbol 'helper'");
	/* one old function, two replacements */
	spec_init(&s);
	s.relas[R_REPLACE_HELPER].sym = s.relas[R_REPLACE_BUMP].sym;
	EXPECT_INVALID(&s, QP_EFORMAT, "relocation 14 (QP_R_REPLACE): 'bump' is already replaced by relocation 13");
	/* an IFUNC may be replaced */
	spec_init(&s);
	s.src[5].type = STT_GNU_IFUNC;
	{
		struct qp_patch *p = spec_build(&s);
		struct qp_error err = { 0 };

		CHECK_INT(qp_patch__validate(p, &err), 0);
		qp_patch__free(p);
	}
}

/* Rule 53: QP_R_BUSY names a sized function of the target, offset 0, and
 * as addend an old function this patch replaces. */
static void test_rules_busy(void)
{
	const struct qp_rela busy = RELA(0, QP_R_BUSY, 5, 3); /* helper: part of bump */
	struct spec s;

	spec_init(&s);
	s.relas[s.nrelas++] = busy;
	{
		struct qp_patch *p = spec_build(&s), *q;
		struct qp_error err = { 0 };
		void *buf = NULL;
		size_t size = 0;

		CHECK_INT(qp_patch__validate(p, &err), 0);
		CHECK_INT(qp_patch__write_mem(p, &buf, &size, &err), 0);
		q = qp_patch__open_mem(buf, size, &err);
		CHECK(q && qp_patch__rela_count(q) == s.nrelas &&
		      qp_patch__rela(q, s.nrelas - 1)->type == QP_R_BUSY &&
		      qp_patch__rela(q, s.nrelas - 1)->addend == 3);
		CHECK_STR(qp_rela_type_name(QP_R_BUSY), "QP_R_BUSY");
		qp_patch__free(q);
		qp_patch__free(p);
		free(buf);
	}
	spec_init(&s);
	s.relas[s.nrelas++] = busy;
	s.relas[s.nrelas - 1].sym = 2;
	EXPECT_INVALID(&s, QP_EFORMAT, "relocation 18 (QP_R_BUSY): src symbol 2 'count' is not a function of the target with a size");
	spec_init(&s);
	s.relas[s.nrelas++] = busy;
	s.relas[s.nrelas - 1].sym = 7;
	EXPECT_INVALID(&s, QP_EFORMAT, "relocation 18 (QP_R_BUSY): src symbol 7 'printf' is not a function of the target");
	spec_init(&s);
	s.relas[s.nrelas++] = busy;
	s.src[5].size = 0;
	EXPECT_INVALID(&s, QP_EFORMAT, "relocation 18 (QP_R_BUSY): src symbol 5 'helper' is not a function of the target with a size");
	spec_init(&s);
	s.relas[s.nrelas++] = busy;
	s.relas[s.nrelas - 1].offset = 4;
	EXPECT_INVALID(&s, QP_EFORMAT, "relocation 18 (QP_R_BUSY): offset 0x4 is not 0");
	spec_init(&s);
	s.relas[s.nrelas++] = busy;
	s.relas[s.nrelas - 1].addend = 6; /* main: not replaced */
	EXPECT_INVALID(&s, QP_EFORMAT, "relocation 18 (QP_R_BUSY): addend 6 names no src symbol this patch replaces");
	spec_init(&s);
	s.relas[s.nrelas++] = busy;
	s.relas[s.nrelas - 1].sym = 8; /* a TLS symbol: not a function either */
	EXPECT_INVALID(&s, QP_EFORMAT, "relocation 18 (QP_R_BUSY): src symbol 8 'tls_var' is not a function");
}

/* Rule 54: QP_R_ROOM names a sized function of the target that this patch
 * replaces, once, offset 0, addend 1..QP_ROOM_MAX. */
static void test_rules_room(void)
{
	const struct qp_rela room = RELA(0, QP_R_ROOM, 5, 12); /* 12 bytes after helper */
	struct spec s;

	spec_init(&s);
	s.relas[s.nrelas++] = room;
	{
		struct qp_patch *p = spec_build(&s), *q;
		struct qp_error err = { 0 };
		void *buf = NULL;
		size_t size = 0;

		CHECK_INT(qp_patch__validate(p, &err), 0);
		CHECK_INT(qp_patch__write_mem(p, &buf, &size, &err), 0);
		q = qp_patch__open_mem(buf, size, &err);
		CHECK(q && qp_patch__rela_count(q) == s.nrelas &&
		      qp_patch__rela(q, s.nrelas - 1)->type == QP_R_ROOM &&
		      qp_patch__rela(q, s.nrelas - 1)->addend == 12);
		CHECK_STR(qp_rela_type_name(QP_R_ROOM), "QP_R_ROOM");
		qp_patch__free(q);
		qp_patch__free(p);
		free(buf);
	}
	spec_init(&s);
	s.relas[s.nrelas++] = room;
	s.relas[s.nrelas - 1].sym = 2;
	EXPECT_INVALID(&s, QP_EFORMAT, "relocation 18 (QP_R_ROOM): src symbol 2 'count' is not a function of the target with a size");
	spec_init(&s);
	s.relas[s.nrelas++] = room;
	s.relas[s.nrelas - 1].offset = 4;
	EXPECT_INVALID(&s, QP_EFORMAT, "relocation 18 (QP_R_ROOM): offset 0x4 is not 0");
	spec_init(&s);
	s.relas[s.nrelas++] = room;
	s.relas[s.nrelas - 1].addend = 0;
	EXPECT_INVALID(&s, QP_EFORMAT, "relocation 18 (QP_R_ROOM): addend 0 is not in 1..64");
	spec_init(&s);
	s.relas[s.nrelas++] = room;
	s.relas[s.nrelas - 1].addend = QP_ROOM_MAX + 1;
	EXPECT_INVALID(&s, QP_EFORMAT, "relocation 18 (QP_R_ROOM): addend 65 is not in 1..64");
	spec_init(&s);
	s.relas[s.nrelas++] = room;
	s.relas[s.nrelas - 1].sym = 6; /* main: not replaced */
	EXPECT_INVALID(&s, QP_EFORMAT, "relocation 18 (QP_R_ROOM): 'main' is not replaced by this patch");
	spec_init(&s);
	s.relas[s.nrelas++] = room;
	s.relas[s.nrelas++] = room;
	EXPECT_INVALID(&s, QP_EFORMAT, "relocation 19 (QP_R_ROOM): 'helper' has room given twice");
}

/* Rule 63: QP_R_CALLS names a sized function of the target that this
 * patch replaces, once and without room, offset and addend 0. */
static void test_rules_calls(void)
{
	const struct qp_rela calls = RELA(0, QP_R_CALLS, 5, 0);
	struct spec s;

	spec_init(&s);
	s.relas[s.nrelas++] = calls;
	{
		struct qp_patch *p = spec_build(&s), *q;
		struct qp_error err = { 0 };
		void *buf = NULL;
		size_t size = 0;

		CHECK_INT(qp_patch__validate(p, &err), 0);
		CHECK_INT(qp_patch__write_mem(p, &buf, &size, &err), 0);
		q = qp_patch__open_mem(buf, size, &err);
		CHECK(q && qp_patch__rela_count(q) == s.nrelas &&
		      qp_patch__rela(q, s.nrelas - 1)->type == QP_R_CALLS);
		CHECK_STR(qp_rela_type_name(QP_R_CALLS), "QP_R_CALLS");
		qp_patch__free(q);
		qp_patch__free(p);
		free(buf);
	}
	spec_init(&s);
	s.relas[s.nrelas++] = calls;
	s.relas[s.nrelas - 1].sym = 2;
	EXPECT_INVALID(&s, QP_EFORMAT, "relocation 18 (QP_R_CALLS): src symbol 2 'count' is not a function of the target with a size");
	spec_init(&s);
	s.relas[s.nrelas++] = calls;
	s.relas[s.nrelas - 1].addend = 1;
	EXPECT_INVALID(&s, QP_EFORMAT, "relocation 18 (QP_R_CALLS): offset 0x0 and addend 1 are not 0");
	spec_init(&s);
	s.relas[s.nrelas++] = calls;
	s.relas[s.nrelas - 1].sym = 6; /* main: not replaced */
	EXPECT_INVALID(&s, QP_EFORMAT, "relocation 18 (QP_R_CALLS): 'main' is not replaced by this patch");
	spec_init(&s);
	s.relas[s.nrelas++] = calls;
	s.relas[s.nrelas++] = calls;
	EXPECT_INVALID(&s, QP_EFORMAT, "relocation 18 (QP_R_CALLS): 'helper' is also named by relocation 19 (QP_R_CALLS)");
	spec_init(&s);
	s.relas[s.nrelas++] = calls;
	s.relas[s.nrelas++] = (struct qp_rela)RELA(0, QP_R_ROOM, 5, 12);
	EXPECT_INVALID(&s, QP_EFORMAT, "relocation 18 (QP_R_CALLS): 'helper' is also named by relocation 19 (QP_R_ROOM)");
}

/* The most content sections that keep e_shnum below SHN_LORESERVE. */
static void test_many_sections(void)
{
	const struct qp_section empty = { "e", SHT_NOBITS, SHF_ALLOC, 0, 0, 1, NULL };
	struct qp_error err = { 0 };
	struct qp_patch *p, *q;
	struct spec s;
	void *buf = NULL;
	size_t size = 0, i, bad = 0;

	spec_init(&s);
	s.nsecs = 0;
	s.ndst = 1;
	s.nrelas = 0;
	s.info.image_size = 0;
	p = spec_build(&s);
	for (i = 0; i < SHN_LORESERVE - 9; i++)
		bad += qp_patch__add_section(p, &empty) != (int)i;
	CHECK_INT(bad, 0);
	CHECK_INT(qp_patch__write_mem(p, &buf, &size, &err), 0);
	q = qp_patch__open_mem(buf, size, &err);
	CHECK(q && qp_patch__section_count(q) == SHN_LORESERVE - 9);
	qp_patch__free(q);
	free(buf);
	CHECK_INT(qp_patch__add_section(p, &empty), SHN_LORESERVE - 9);
	CHECK_INT(qp_patch__validate(p, &err), QP_EFORMAT);
	CHECK_STR(err.msg, "65272 content sections, more than 65271");
	qp_patch__free(p);
}

/* ---- validation rules on the bytes ----------------------------------- */

static uint8_t *pristine;   /* the sample, written in format version 1 */
static size_t pristine_size;
static uint8_t *pristine2;  /* the sample, written in format version 2 */
static size_t pristine2_size;

/* A private copy of the written sample. */
struct img {
	uint8_t *b; /* bytes */
	size_t n;   /* size */
};

static struct img img_new(void)
{
	struct img im = { malloc(pristine_size), pristine_size };

	memcpy(im.b, pristine, pristine_size);
	return im;
}

/* The same, of the version 2 sample. */
static struct img img2_new(void)
{
	struct img im = { malloc(pristine2_size), pristine2_size };

	memcpy(im.b, pristine2, pristine2_size);
	return im;
}

static Elf64_Ehdr *eh(struct img im)
{
	return (Elf64_Ehdr *)im.b;
}

static Elf64_Shdr *sh(struct img im, size_t i)
{
	return (Elf64_Shdr *)(im.b + eh(im)->e_shoff) + i;
}

static void *sec(struct img im, size_t i)
{
	return im.b + sh(im, i)->sh_offset;
}

static struct qp_info_disk *info(struct img im)
{
	return sec(im, S_INFO);
}

static Elf64_Sym *sym(struct img im, size_t tab, size_t i)
{
	return (Elf64_Sym *)sec(im, tab) + i;
}

static Elf64_Rela *rela(struct img im, size_t i)
{
	return (Elf64_Rela *)sec(im, S_DIFF) + i;
}

static Elf64_Chdr *chdr(struct img im, size_t i)
{
	return sec(im, i);
}

/* Offset of @name in .shstrtab. */
static uint32_t shname(struct img im, const char *name)
{
	const char *t = sec(im, eh(im)->e_shstrndx);
	size_t i;

	for (i = 1; i < sh(im, eh(im)->e_shstrndx)->sh_size; i += strlen(t + i) + 1)
		if (!strcmp(t + i, name))
			return (uint32_t)i;
	return 0;
}

#define EXPECT_REJECT(im, code, needle) expect_reject(im, code, needle, __LINE__)

/* The reader refuses @im with @code and a message containing @needle. */
static void expect_reject(struct img im, int code, const char *needle, int line)
{
	struct qp_error err = { 0 };
	struct qp_patch *p = qp_patch__open_mem(im.b, im.n, &err);

	if (p || err.code != code || !strstr(err.msg, needle))
		fprintf(stderr, "line %d: open_mem: %d '%s'\n", line, err.code,
			err.msg);
	CHECK(p == NULL);
	CHECK_INT(err.code, code);
	CHECK_CONTAINS(err.msg, "'<memory>': ");
	CHECK_CONTAINS(err.msg, needle);
	qp_patch__free(p);
	free(im.b);
}

static void test_disk_pristine(void)
{
	struct qp_error err = { 0 };
	struct img im = img_new();
	struct qp_patch *p;
	size_t i;

	/* the layout docs/format.md describes */
	CHECK_INT(eh(im)->e_ident[EI_CLASS], ELFCLASS64);
	CHECK_INT(eh(im)->e_ident[EI_DATA], ELFDATA2LSB);
	CHECK_INT(eh(im)->e_type, ET_REL);
	CHECK_INT(eh(im)->e_machine, EM_X86_64);
	CHECK_INT(eh(im)->e_shnum, S_COUNT);
	CHECK_INT(eh(im)->e_shstrndx, S_SHSTR);
	CHECK_INT(sh(im, S_INFO)->sh_size, sizeof(struct qp_info_disk));
	CHECK(!memcmp(info(im)->magic, QP_INFO_MAGIC, 8));
	for (i = S_TEXT; i <= S_DATA; i++) {
		CHECK_INT(sh(im, i)->sh_flags & SHF_COMPRESSED, SHF_COMPRESSED);
		CHECK_INT(chdr(im, i)->ch_type, ELFCOMPRESS_ZSTD);
		CHECK_INT(sh(im, i)->sh_addralign, 8);
	}
	CHECK_INT(chdr(im, S_TEXT)->ch_addralign, 16);
	CHECK_INT(sh(im, S_BSS)->sh_addralign, 16);
	CHECK_INT(chdr(im, S_TEXT)->ch_size, 64);
	CHECK_INT(sh(im, S_RODATA)->sh_addr, 64);
	CHECK_INT(sh(im, S_BSS)->sh_type, SHT_NOBITS);
	CHECK_INT(sh(im, S_BSS)->sh_size, 32);
	CHECK_INT(sh(im, S_SYMSRC)->sh_link, S_STRSRC);
	CHECK_INT(sh(im, S_SYMSRC)->sh_info, 6);
	CHECK_INT(sh(im, S_SYMSRC)->sh_entsize, sizeof(Elf64_Sym));
	CHECK_INT(sh(im, S_SYMDST)->sh_link, S_STRDST);
	CHECK_INT(sh(im, S_SYMDST)->sh_info, 4);
	CHECK_INT(sym(im, S_SYMDST, 3)->st_shndx, S_RODATA);
	CHECK_INT(sym(im, S_SYMSRC, 7)->st_shndx, SHN_UNDEF);
	CHECK_INT(sh(im, S_DIFF)->sh_type, SHT_RELA);
	CHECK_INT(sh(im, S_DIFF)->sh_link, S_SYMSRC);
	CHECK_INT(sh(im, S_DIFF)->sh_entsize, sizeof(Elf64_Rela));
	CHECK_INT(ELF64_R_TYPE(rela(im, R_REPLACE_BUMP)->r_info), QP_R_REPLACE);
	p = qp_patch__open_mem(im.b, im.n, &err);
	CHECK(p);
	qp_patch__free(p);
	free(im.b);
}

static void test_disk_elf(void)
{
	struct img im;

	im = img_new();
	im.b[1] = 'X';
	EXPECT_REJECT(im, QP_EFORMAT, "'<memory>': not an ELF file");
	im = img_new();
	im.b[EI_CLASS] = ELFCLASS32;
	EXPECT_REJECT(im, QP_EFORMAT, "ELF class 1 is not ELFCLASS64");
	im = img_new();
	im.b[EI_DATA] = ELFDATA2MSB;
	EXPECT_REJECT(im, QP_EFORMAT, "ELF data encoding 2 is not ELFDATA2LSB");
	im = img_new();
	im.b[EI_VERSION] = 2;
	EXPECT_REJECT(im, QP_EFORMAT, "ELF ident version 2 is not EV_CURRENT");
	im = img_new();
	eh(im)->e_machine = EM_386;
	EXPECT_REJECT(im, QP_EFORMAT, "ELF machine 3 is not EM_X86_64");
	im = img_new();
	eh(im)->e_type = ET_EXEC;
	EXPECT_REJECT(im, QP_EFORMAT, "ELF type 2 is not ET_REL");
	im = img_new();
	eh(im)->e_type = ET_DYN;
	EXPECT_REJECT(im, QP_EFORMAT, "ELF type 3 is not ET_REL");
	im = img_new();
	eh(im)->e_version = 7;
	EXPECT_REJECT(im, QP_EFORMAT, "ELF version 7 is not EV_CURRENT");
	im = img_new();
	eh(im)->e_flags = 1;
	EXPECT_REJECT(im, QP_EFORMAT, "e_entry, e_phoff, e_phnum and e_flags must be 0");
	im = img_new();
	eh(im)->e_shentsize = 32;
	EXPECT_REJECT(im, QP_EFORMAT, "e_shentsize 32 is wrong");
	im = img_new();
	eh(im)->e_shstrndx = S_DIFF;
	EXPECT_REJECT(im, QP_EFORMAT, "e_shstrndx 10 is not the last section (11)");
	im = img_new();
	eh(im)->e_shoff = im.n - 64;
	EXPECT_REJECT(im, QP_EFORMAT, "'<memory>': ");
	im = img_new();
	sh(im, S_SHSTR)->sh_flags = SHF_COMPRESSED;
	EXPECT_REJECT(im, QP_EFORMAT, "section 11: not a valid section name table");
}

static void test_disk_sections(void)
{
	struct img im;

	im = img_new();
	sh(im, S_SYMDST)->sh_name = 0xfff0;
	EXPECT_REJECT(im, QP_EFORMAT, "section 8: bad name offset 65520");
	im = img_new();
	sh(im, S_SYMSRC)->sh_name = shname(im, QP_SEC_STRTAB_SRC);
	EXPECT_REJECT(im, QP_EFORMAT, "section 6 is '.qpatch.strtab.src', expected '.qpatch.symtab.src'");
	im = img_new();
	sh(im, S_INFO)->sh_name = shname(im, QP_SEC_TEXT);
	EXPECT_REJECT(im, QP_EFORMAT, "section 1 is '.qpatch.text', expected '.qpatch.info'");
	im = img_new();
	sh(im, S_STRDST)->sh_offset = im.n - 2;
	EXPECT_REJECT(im, QP_EFORMAT, "section '.qpatch.strtab.dst': [");
	im = img_new();
	sh(im, S_STRDST)->sh_offset = ~0ull - 2;
	EXPECT_REJECT(im, QP_EFORMAT, "extends beyond the end of the file");
	im = img_new();
	sh(im, S_SYMDST)->sh_flags = SHF_ALLOC;
	EXPECT_REJECT(im, QP_EFORMAT, "section '.qpatch.symtab.dst': sh_flags 0x2 and sh_addr 0x0 must be 0");
	im = img_new();
	sh(im, S_DIFF)->sh_type = SHT_REL;
	EXPECT_REJECT(im, QP_EFORMAT, "section '.qpatch.diffdata': sh_type 9, expected 4");
	im = img_new();
	sh(im, S_DIFF)->sh_link = S_SYMDST;
	EXPECT_REJECT(im, QP_EFORMAT, "section '.qpatch.diffdata': sh_link 8");
	im = img_new();
	sh(im, S_DIFF)->sh_size -= 1;
	EXPECT_REJECT(im, QP_EFORMAT, "section '.qpatch.diffdata': size 431 is not a multiple of 24");
	im = img_new();
	sh(im, S_SYMSRC)->sh_entsize = 16;
	EXPECT_REJECT(im, QP_EFORMAT, "section '.qpatch.symtab.src': sh_link 7, sh_info 6, sh_entsize 16");
	im = img_new();
	sh(im, S_SYMSRC)->sh_link = S_STRDST;
	EXPECT_REJECT(im, QP_EFORMAT, "section '.qpatch.symtab.src': sh_link 9");
	im = img_new();
	sh(im, S_INFO)->sh_info = 1;
	EXPECT_REJECT(im, QP_EFORMAT, "section '.qpatch.info': sh_link 0, sh_info 1");
	im = img_new();
	eh(im)->e_shnum = 5; /* shstrtab is in place, but too few sections */
	eh(im)->e_shstrndx = 4;
	memcpy(sh(im, 4), sh(im, S_SHSTR), sizeof(Elf64_Shdr));
	EXPECT_REJECT(im, QP_EFORMAT, "'<memory>': 5 sections, expected at least 8");
}

static void test_disk_info(void)
{
	struct img im;

	im = img_new();
	info(im)->magic[7] = 2;
	EXPECT_REJECT(im, QP_EFORMAT, "'<memory>': section '.qpatch.info': bad magic");
	im = img_new();
	info(im)->version = 3;
	EXPECT_REJECT(im, QP_EVERSION, "section '.qpatch.info': unsupported format version 3 (expected 1 to 2)");
	im = img_new();
	info(im)->version = 0;
	EXPECT_REJECT(im, QP_EVERSION, "unsupported format version 0");
	im = img_new();
	sh(im, S_INFO)->sh_size = 8;
	EXPECT_REJECT(im, QP_EFORMAT, "section '.qpatch.info': size 8 is too small");
	im = img_new();
	sh(im, S_INFO)->sh_size = 440;
	EXPECT_REJECT(im, QP_EFORMAT, "section '.qpatch.info': size 440, expected 448");
	im = img_new();
	info(im)->flags = 1;
	EXPECT_REJECT(im, QP_EFORMAT, "flags 0x1 and reserved 0x0 must be 0");
	im = img_new();
	info(im)->reserved = 1;
	EXPECT_REJECT(im, QP_EFORMAT, "flags 0x0 and reserved 0x1 must be 0");
	im = img_new();
	info(im)->build_id_size = 0;
	EXPECT_REJECT(im, QP_EFORMAT, "section '.qpatch.info': build_id_size 0 is not in 1..64");
	im = img_new();
	info(im)->build_id_size = 65;
	EXPECT_REJECT(im, QP_EFORMAT, "build_id_size 65 is not in 1..64");
	im = img_new();
	info(im)->build_id[63] = 1;
	EXPECT_REJECT(im, QP_EFORMAT, "build_id is not zero-padded");
	im = img_new();
	memset(info(im)->id, 'a', QP_ID_MAX);
	EXPECT_REJECT(im, QP_EFORMAT, "section '.qpatch.info': id is not NUL-terminated");
	im = img_new();
	info(im)->id[10] = 'a';
	EXPECT_REJECT(im, QP_EFORMAT, "section '.qpatch.info': id is not NUL-padded");
	im = img_new();
	memset(info(im)->id, 0, QP_ID_MAX);
	EXPECT_REJECT(im, QP_EFORMAT, "'<memory>': info: id is empty");
	im = img_new();
	memset(info(im)->target_name, 'a', QP_NAME_MAX);
	EXPECT_REJECT(im, QP_EFORMAT, "target_name is not NUL-terminated");
	im = img_new();
	info(im)->target_name[0] = '\0';
	EXPECT_REJECT(im, QP_EFORMAT, "target_name is not NUL-padded");
	im = img_new();
	memset(info(im)->tool_version, 'a', QP_TOOL_MAX);
	EXPECT_REJECT(im, QP_EFORMAT, "tool_version is not NUL-terminated");
	im = img_new();
	info(im)->image_size = 143;
	EXPECT_REJECT(im, QP_EFORMAT, "'<memory>': info: image_size 0x8f does not match the end of the last section 0x90");
}

static void test_disk_content(void)
{
	uint8_t *frame;
	struct img im;

	im = img_new();
	frame = (uint8_t *)(chdr(im, S_TEXT) + 1);
	memset(frame, 0xff, 4);
	EXPECT_REJECT(im, QP_EFORMAT, "'<memory>': section '.qpatch.text': zstd: Unknown frame descriptor");
	im = img_new();
	frame = (uint8_t *)(chdr(im, S_RODATA) + 1);
	frame[sh(im, S_RODATA)->sh_size - sizeof(Elf64_Chdr) - 1] ^= 0xff;
	EXPECT_REJECT(im, QP_EFORMAT, "section '.qpatch.rodata': zstd: ");
	im = img_new();
	chdr(im, S_TEXT)->ch_size = 65;
	EXPECT_REJECT(im, QP_EFORMAT, "section '.qpatch.text': ch_size 65 does not match the zstd frame's content size 64");
	im = img_new();
	chdr(im, S_TEXT)->ch_size = 0;
	EXPECT_REJECT(im, QP_EFORMAT, "ch_size 0 is 0 or exceeds the image limit");
	im = img_new();
	chdr(im, S_TEXT)->ch_size = 1ull << 40;
	EXPECT_REJECT(im, QP_EFORMAT, "ch_size 1099511627776 is 0 or exceeds the image limit");
	im = img_new();
	chdr(im, S_TEXT)->ch_type = ELFCOMPRESS_ZLIB;
	EXPECT_REJECT(im, QP_EFORMAT, "section '.qpatch.text': ch_type 1 is not ELFCOMPRESS_ZSTD");
	im = img_new();
	chdr(im, S_TEXT)->ch_reserved = 1;
	EXPECT_REJECT(im, QP_EFORMAT, "ch_reserved 0x1 is not 0");
	im = img_new();
	sh(im, S_TEXT)->sh_addralign = 16;
	EXPECT_REJECT(im, QP_EFORMAT, "section '.qpatch.text': sh_addralign 16 of a compressed section is not 8");
	im = img_new();
	sh(im, S_TEXT)->sh_size = 10;
	EXPECT_REJECT(im, QP_EFORMAT, "section '.qpatch.text': too small for a compression header");
	im = img_new();
	sh(im, S_TEXT)->sh_size += 1; /* the next byte is in the file */
	EXPECT_REJECT(im, QP_EFORMAT, "section '.qpatch.text': 1 bytes after the zstd frame");
	im = img_new();
	sh(im, S_TEXT)->sh_size -= 1;
	EXPECT_REJECT(im, QP_EFORMAT, "section '.qpatch.text': zstd: ");
	im = img_new();
	sh(im, S_TEXT)->sh_flags &= ~(uint64_t)SHF_COMPRESSED;
	EXPECT_REJECT(im, QP_EFORMAT, "section '.qpatch.text': content is not compressed");
	im = img_new();
	sh(im, S_BSS)->sh_flags |= SHF_COMPRESSED;
	EXPECT_REJECT(im, QP_EFORMAT, "section '.qpatch.bss': SHF_COMPRESSED on a section without content");
	im = img_new();
	sh(im, S_RODATA)->sh_type = SHT_NOTE;
	EXPECT_REJECT(im, QP_EFORMAT, "section '.qpatch.rodata': type 7 is neither SHT_PROGBITS nor SHT_NOBITS");
	im = img_new();
	sh(im, S_RODATA)->sh_link = 1;
	EXPECT_REJECT(im, QP_EFORMAT, "section '.qpatch.rodata': sh_link, sh_info and sh_entsize must be 0");
	im = img_new();
	sh(im, S_TEXT)->sh_flags &= ~(uint64_t)SHF_ALLOC;
	EXPECT_REJECT(im, QP_EFORMAT, "'<memory>': section '.qpatch.text': flags 0x4 are not SHF_ALLOC");
	im = img_new();
	sh(im, S_BSS)->sh_size = QP_MAX_SECTION_SIZE + 1ull;
	EXPECT_REJECT(im, QP_EFORMAT, "section '.qpatch.bss': [0x70, +0x10000001) exceeds the image limit");
}

/* Give content section @ndx of @im new compressed bytes, appended to the
 * file: a Chdr for @size bytes and the @n bytes of @frame. */
static struct img img_set_frame(struct img im, size_t ndx, uint64_t size,
				const void *frame, size_t n)
{
	Elf64_Chdr ch = *chdr(im, ndx);
	size_t off = (im.n + 7) & ~(size_t)7;

	ch.ch_size = size;
	im.b = realloc(im.b, off + sizeof(ch) + n);
	memset(im.b + im.n, 0, off - im.n);
	memcpy(im.b + off, &ch, sizeof(ch));
	memcpy(im.b + off + sizeof(ch), frame, n);
	im.n = off + sizeof(ch) + n;
	sh(im, ndx)->sh_offset = off;
	sh(im, ndx)->sh_size = sizeof(ch) + n;
	return im;
}

/* A zstd frame of text[], with or without checksum and content size. */
static size_t zstd_frame(void *out, size_t cap, int checksum, int size_flag)
{
	ZSTD_CCtx *cc = ZSTD_createCCtx();
	size_t n;

	ZSTD_CCtx_setParameter(cc, ZSTD_c_checksumFlag, checksum);
	ZSTD_CCtx_setParameter(cc, ZSTD_c_contentSizeFlag, size_flag);
	n = ZSTD_compress2(cc, out, cap, text, sizeof(text));
	ZSTD_freeCCtx(cc);
	CHECK(!ZSTD_isError(n));
	return ZSTD_isError(n) ? 0 : n;
}

static void test_disk_frames(void)
{
	static const uint8_t skippable[] = { 0x50, 0x2a, 0x4d, 0x18, 4, 0, 0, 0,
					     1, 2, 3, 4 };
	uint8_t frame[256], two[512];
	struct qp_error err = { 0 };
	struct qp_patch *p;
	struct img im;
	size_t n;

	/* the helper itself: a frame like the writer's is accepted */
	n = zstd_frame(frame, sizeof(frame), 1, 1);
	im = img_set_frame(img_new(), S_TEXT, 64, frame, n);
	p = qp_patch__open_mem(im.b, im.n, &err);
	CHECK(p);
	qp_patch__free(p);
	free(im.b);
	n = zstd_frame(frame, sizeof(frame), 0, 1);
	im = img_set_frame(img_new(), S_TEXT, 64, frame, n);
	EXPECT_REJECT(im, QP_EFORMAT, "section '.qpatch.text': zstd frame has no content checksum");
	n = zstd_frame(frame, sizeof(frame), 1, 0);
	im = img_set_frame(img_new(), S_TEXT, 64, frame, n);
	EXPECT_REJECT(im, QP_EFORMAT, "section '.qpatch.text': zstd frame does not declare its content size");
	im = img_set_frame(img_new(), S_TEXT, 64, skippable, sizeof(skippable));
	EXPECT_REJECT(im, QP_EFORMAT, "section '.qpatch.text': zstd: not a zstd data frame");
	n = zstd_frame(frame, sizeof(frame), 1, 1);
	memcpy(two, frame, n);
	memcpy(two + n, frame, n);
	im = img_set_frame(img_new(), S_TEXT, 64, two, 2 * n);
	EXPECT_REJECT(im, QP_EFORMAT, "bytes after the zstd frame");
	im = img_set_frame(img_new(), S_TEXT, 64, frame, 3);
	EXPECT_REJECT(im, QP_EFORMAT, "section '.qpatch.text': zstd: ");
}

static void test_disk_layout(void)
{
	struct img im;

	im = img_new();
	chdr(im, S_TEXT)->ch_addralign = 0;
	EXPECT_REJECT(im, QP_EFORMAT, "section '.qpatch.text': alignment 0 is not a power of two");
	im = img_new();
	sh(im, S_BSS)->sh_addralign = 64; /* 112 % 64 */
	EXPECT_REJECT(im, QP_EFORMAT, "section '.qpatch.bss': addr 0x70 is not a multiple of its alignment 64");
	im = img_new();
	chdr(im, S_TEXT)->ch_addralign = 256; /* still aligned: accepted */
	{
		struct qp_error err = { 0 };
		struct qp_patch *p = qp_patch__open_mem(im.b, im.n, &err);

		CHECK(p && qp_patch__section(p, 0)->align == 256);
		qp_patch__free(p);
		free(im.b);
	}
	im = img_new();
	sh(im, S_RODATA)->sh_addr = 68;
	EXPECT_REJECT(im, QP_EFORMAT, "section '.qpatch.rodata': addr 0x44 is not a multiple of its alignment 8");
	im = img_new();
	sh(im, S_DATA)->sh_addr = 64;
	EXPECT_REJECT(im, QP_EFORMAT, "section '.qpatch.data' [0x40, 0x50) overlaps section '.qpatch.rodata' [0x40, 0x58)");
	im = img_new();
	sh(im, S_BSS)->sh_addr = 48;
	EXPECT_REJECT(im, QP_EFORMAT, "section '.qpatch.bss' [0x30, 0x50) overlaps section '.qpatch.text' [0x0, 0x40)");
	im = img_new();
	chdr(im, S_TEXT)->ch_addralign = 24;
	EXPECT_REJECT(im, QP_EFORMAT, "section '.qpatch.text': alignment 24 is not a power of two");
}

static void test_disk_symbols(void)
{
	struct img im;

	im = img_new();
	sym(im, S_SYMSRC, 2)->st_name = 10000;
	EXPECT_REJECT(im, QP_EFORMAT, "section '.qpatch.symtab.src': symbol 2: name offset 10000 is outside '.qpatch.strtab.src' (");
	im = img_new();
	sym(im, S_SYMDST, 1)->st_name = (uint32_t)sh(im, S_STRDST)->sh_size;
	EXPECT_REJECT(im, QP_EFORMAT, "section '.qpatch.symtab.dst': symbol 1: name offset");
	im = img_new();
	((char *)sec(im, S_STRSRC))[sh(im, S_STRSRC)->sh_size - 1] = 'x';
	EXPECT_REJECT(im, QP_EFORMAT, "section '.qpatch.strtab.src': does not start and end with a NUL byte");
	im = img_new();
	sh(im, S_STRSRC)->sh_size = 0;
	EXPECT_REJECT(im, QP_EFORMAT, "does not start and end with a NUL byte");
	im = img_new();
	sym(im, S_SYMSRC, 0)->st_value = 1;
	EXPECT_REJECT(im, QP_EFORMAT, "section '.qpatch.symtab.src': symbol 0 is not the null symbol");
	im = img_new();
	sh(im, S_SYMDST)->sh_size = 0;
	EXPECT_REJECT(im, QP_EFORMAT, "section '.qpatch.symtab.dst': symbol 0 is not the null symbol");
	im = img_new();
	sym(im, S_SYMSRC, 3)->st_other = STV_HIDDEN;
	EXPECT_REJECT(im, QP_EFORMAT, "symbol 3 'bump': st_other 0x2 is not 0");
	im = img_new();
	sh(im, S_SYMSRC)->sh_info = 2;
	EXPECT_REJECT(im, QP_EFORMAT, "section '.qpatch.symtab.src': sh_info 2 is not the index of the first non-local symbol (6)");
	im = img_new();
	sym(im, S_SYMSRC, 8)->st_info = ELF64_ST_INFO(STB_LOCAL, STT_TLS);
	EXPECT_REJECT(im, QP_EFORMAT, "'<memory>': src symbol 8 'tls_var': local symbol after a non-local one");
	im = img_new();
	sym(im, S_SYMSRC, 2)->st_info = ELF64_ST_INFO(STB_LOCAL, STT_SECTION);
	EXPECT_REJECT(im, QP_EFORMAT, "src symbol 2 'count': unsupported type 3");
	im = img_new();
	sym(im, S_SYMSRC, 6)->st_shndx = 2;
	EXPECT_REJECT(im, QP_EFORMAT, "src symbol 6 'main': shndx 0x2 is neither");
	im = img_new();
	sym(im, S_SYMSRC, 1)->st_value = 4;
	EXPECT_REJECT(im, QP_EFORMAT, "src symbol 1 'counter.c': STT_FILE symbol must be");
	im = img_new();
	sym(im, S_SYMDST, 1)->st_shndx = S_INFO;
	EXPECT_REJECT(im, QP_EFORMAT, "section '.qpatch.symtab.dst': symbol 1 'bump': st_shndx 1 is not a content section");
	im = img_new();
	sym(im, S_SYMDST, 1)->st_shndx = S_SYMSRC;
	EXPECT_REJECT(im, QP_EFORMAT, "symbol 1 'bump': st_shndx 6 is not a content section");
	im = img_new();
	sym(im, S_SYMDST, 1)->st_shndx = SHN_ABS;
	EXPECT_REJECT(im, QP_EFORMAT, "st_shndx 65521 is not a content section");
	im = img_new();
	sym(im, S_SYMDST, 1)->st_shndx = S_RODATA;
	EXPECT_REJECT(im, QP_EFORMAT, "dst symbol 1 'bump': [0x0, +0x20) is outside section '.qpatch.rodata' (size 0x18)");
	im = img_new();
	sym(im, S_SYMDST, 3)->st_info = ELF64_ST_INFO(STB_LOCAL, STT_FUNC);
	EXPECT_REJECT(im, QP_EFORMAT, "dst symbol 3 'msg': function in non-executable section '.qpatch.rodata'");
	im = img_new();
	sym(im, S_SYMDST, 5)->st_value = 1;
	EXPECT_REJECT(im, QP_EFORMAT, "dst symbol 5 'buf': [0x1, +0x20) is outside section '.qpatch.bss'");
}

static void test_disk_relas(void)
{
	struct img im;

	im = img_new();
	rela(im, R_PC32)->r_offset = 0x90;
	EXPECT_REJECT(im, QP_EFORMAT, "'<memory>': relocation 0 (R_X86_64_PC32): offset 0x90 is not inside any content section");
	im = img_new();
	rela(im, R_PC32)->r_offset = 112;
	EXPECT_REJECT(im, QP_EFORMAT, "relocation 0 (R_X86_64_PC32): offset 0x70 is in SHT_NOBITS section '.qpatch.bss'");
	im = img_new();
	rela(im, R_64_RODATA)->r_offset = 82;
	EXPECT_REJECT(im, QP_EFORMAT, "relocation 8 (R_X86_64_64): 8-byte field at 0x52 crosses the end of section '.qpatch.rodata'");
	im = img_new();
	rela(im, R_PC32)->r_info = ELF64_R_INFO(2, 0x77);
	EXPECT_REJECT(im, QP_EFORMAT, "relocation 0: unsupported type 0x77");
	im = img_new();
	rela(im, R_PC32)->r_info = ELF64_R_INFO(2, R_X86_64_NONE);
	EXPECT_REJECT(im, QP_EFORMAT, "relocation 0: unsupported type 0x0");
	im = img_new();
	rela(im, R_PLT32)->r_info = ELF64_R_INFO(1000, R_X86_64_PLT32);
	EXPECT_REJECT(im, QP_EFORMAT, "relocation 1 (R_X86_64_PLT32): symbol index 1000 out of range (9 src symbols)");
	im = img_new();
	rela(im, R_PLT32)->r_info = ELF64_R_INFO(0xffffffffu, R_X86_64_PLT32);
	EXPECT_REJECT(im, QP_EFORMAT, "symbol index 4294967295 out of range");
	im = img_new();
	rela(im, R_PLT32)->r_info = ELF64_R_INFO(1, R_X86_64_PLT32);
	EXPECT_REJECT(im, QP_EFORMAT, "relocation 1 (R_X86_64_PLT32): symbol 1 'counter.c' is an STT_FILE symbol");
	im = img_new();
	rela(im, R_PC32)->r_info = ELF64_R_INFO(8, R_X86_64_PC32);
	EXPECT_REJECT(im, QP_EFORMAT, "relocation 0 (R_X86_64_PC32): symbol 8 'tls_var' is a thread-local variable");
	im = img_new();
	rela(im, R_TLSGD)->r_info = ELF64_R_INFO(2, R_X86_64_TLSGD);
	EXPECT_REJECT(im, QP_EFORMAT, "relocation 15 (R_X86_64_TLSGD): symbol 2 'count' is not a thread-local variable");
	im = img_new();
	rela(im, R_RELATIVE)->r_info = ELF64_R_INFO(6, R_X86_64_RELATIVE);
	EXPECT_REJECT(im, QP_EFORMAT, "relocation 10 (R_X86_64_RELATIVE): symbol index 6 is not 0");
	im = img_new();
	rela(im, R_REPLACE_BUMP)->r_info = ELF64_R_INFO(2, QP_R_REPLACE);
	EXPECT_REJECT(im, QP_EFORMAT, "relocation 13 (QP_R_REPLACE): src symbol 2 'count' is not a function");
	im = img_new();
	rela(im, R_REPLACE_BUMP)->r_addend = 4;
	EXPECT_REJECT(im, QP_EFORMAT, "relocation 13 (QP_R_REPLACE): dst symbol 4 'new_counter' is not a function");
	im = img_new();
	rela(im, R_REPLACE_BUMP)->r_addend = 1000;
	EXPECT_REJECT(im, QP_EFORMAT, "relocation 13 (QP_R_REPLACE): dst symbol index 1000 out of range (6 symbols)");
	im = img_new();
	rela(im, R_REPLACE_BUMP)->r_offset = 32;
	EXPECT_REJECT(im, QP_EFORMAT, "relocation 13 (QP_R_REPLACE): offset 0x20 is not the address 0x0 of dst symbol 'bump'");
}

/* ---- format version 2 on the bytes ----------------------------------- */

static struct qp_info2_disk *info2(struct img im)
{
	return sec(im, S_INFO);
}

static void test_disk2_pristine(void)
{
	struct qp_error err = { 0 };
	struct img im = img2_new();
	struct spec s;
	struct qp_patch *p;
	const char *tail;
	size_t i;

	/* the layout docs/format.md describes */
	CHECK_INT(eh(im)->e_shnum, S2_COUNT);
	CHECK_INT(eh(im)->e_shstrndx, S2_SHSTR);
	CHECK(!memcmp(info2(im)->magic, QP_INFO_MAGIC, 8));
	CHECK_INT(info2(im)->version, 2);
	CHECK_INT(info2(im)->build_id_size, 20);
	CHECK_INT(info2(im)->id_len, 5);
	CHECK_INT(info2(im)->target_name_len, 7);
	CHECK_INT(info2(im)->tool_version_len, 5);
	CHECK_INT(sh(im, S_INFO)->sh_size, sizeof(struct qp_info2_disk) + 20 + 5 + 7 + 5);
	tail = (const char *)sec(im, S_INFO) + sizeof(struct qp_info2_disk) + 20;
	CHECK(!memcmp(tail, "fix-1counter0.1.0", 17));
	/* small sections are stored as they are: compressing would not pay */
	for (i = S_TEXT; i <= S_DATA; i++) {
		CHECK_INT(sh(im, i)->sh_flags & SHF_COMPRESSED, 0);
		CHECK_INT(sh(im, i)->sh_type, SHT_PROGBITS);
	}
	CHECK_INT(sh(im, S_TEXT)->sh_size, 64);
	CHECK_INT(sh(im, S_TEXT)->sh_addralign, 16);
	CHECK(!memcmp(sec(im, S_TEXT), text, sizeof(text)));
	CHECK_INT(sh(im, S_BSS)->sh_type, SHT_NOBITS);
	/* both symbol tables name their symbols in .shstrtab, once each */
	CHECK_INT(sh(im, S2_SYMSRC)->sh_link, S2_SHSTR);
	CHECK_INT(sh(im, S2_SYMSRC)->sh_info, 6);
	CHECK_INT(sh(im, S2_SYMDST)->sh_link, S2_SHSTR);
	CHECK_INT(sh(im, S2_SYMDST)->sh_info, 4);
	CHECK_INT(sym(im, S2_SYMDST, 1)->st_name, sym(im, S2_SYMSRC, 3)->st_name);
	CHECK_STR((const char *)sec(im, S2_SHSTR) + sym(im, S2_SYMSRC, 3)->st_name, "bump");
	CHECK_INT(sym(im, S2_SYMDST, 3)->st_shndx, S_RODATA);
	/* the diff table applies to the image, which starts at section 2 */
	CHECK_INT(sh(im, S2_DIFF)->sh_type, SHT_RELA);
	CHECK_INT(sh(im, S2_DIFF)->sh_link, S2_SYMSRC);
	CHECK_INT(sh(im, S2_DIFF)->sh_info, S_TEXT);
	CHECK_INT(sh(im, S2_DIFF)->sh_flags, SHF_INFO_LINK);
	CHECK(pristine2_size + 400 < pristine_size);
	p = qp_patch__open_mem(im.b, im.n, &err);
	CHECK(p);
	spec_init(&s);
	if (p)
		check_patch_is(p, &s); /* image_size derived from the sections */
	qp_patch__free(p);
	free(im.b);
}

static void test_disk2_info(void)
{
	struct img im;

	im = img2_new();
	info2(im)->version = 3;
	EXPECT_REJECT(im, QP_EVERSION, "section '.qpatch.info': unsupported format version 3 (expected 1 to 2)");
	im = img2_new();
	sh(im, S_INFO)->sh_size = 19;
	EXPECT_REJECT(im, QP_EFORMAT, "section '.qpatch.info': size 19 is too small");
	im = img2_new();
	sh(im, S_INFO)->sh_size -= 1;
	EXPECT_REJECT(im, QP_EFORMAT, "section '.qpatch.info': size 56, expected 57");
	im = img2_new();
	info2(im)->flags = 2;
	EXPECT_REJECT(im, QP_EFORMAT, "section '.qpatch.info': flags 0x2 must be 0");
	im = img2_new();
	info2(im)->build_id_size = 0;
	EXPECT_REJECT(im, QP_EFORMAT, "section '.qpatch.info': build_id_size 0 is not in 1..64");
	im = img2_new();
	info2(im)->build_id_size = 65;
	EXPECT_REJECT(im, QP_EFORMAT, "build_id_size 65 is not in 1..64");
	im = img2_new();
	info2(im)->id_len = QP_ID_MAX;
	EXPECT_REJECT(im, QP_EFORMAT, "id_len 64 or tool_version_len 5 is too long");
	im = img2_new();
	info2(im)->tool_version_len = QP_TOOL_MAX;
	EXPECT_REJECT(im, QP_EFORMAT, "id_len 5 or tool_version_len 32 is too long");
	im = img2_new();
	info2(im)->id_len = 0; /* the 5 bytes go to the target name */
	info2(im)->target_name_len += 5;
	EXPECT_REJECT(im, QP_EFORMAT, "section '.qpatch.info': id is empty");
	im = img2_new();
	info2(im)->target_name_len = 0;
	info2(im)->tool_version_len += 7;
	EXPECT_REJECT(im, QP_EFORMAT, "section '.qpatch.info': target_name is empty");
	im = img2_new();
	((char *)sec(im, S_INFO))[sizeof(struct qp_info2_disk) + 20 + 5 + 2] = '\0';
	EXPECT_REJECT(im, QP_EFORMAT, "section '.qpatch.info': target_name holds a NUL byte");
	im = img2_new();
	{ /* no tool version: accepted */
		struct qp_error err = { 0 };
		struct qp_patch *p;

		info2(im)->tool_version_len = 0;
		sh(im, S_INFO)->sh_size -= 5;
		p = qp_patch__open_mem(im.b, im.n, &err);
		CHECK(p && !strcmp(qp_patch__info(p)->tool_version, ""));
		qp_patch__free(p);
		free(im.b);
	}
}

static void test_disk2_tables(void)
{
	struct img im;

	im = img2_new();
	sh(im, S2_DIFF)->sh_info = 0;
	EXPECT_REJECT(im, QP_EFORMAT, "section '.qpatch.diffdata': sh_link 6, sh_info 0, sh_entsize 24; expected 6, 2, 24");
	im = img2_new();
	sh(im, S2_DIFF)->sh_flags = 0;
	EXPECT_REJECT(im, QP_EFORMAT, "section '.qpatch.diffdata': sh_flags 0x0 and sh_addr 0x0 must be 0x40 and 0");
	im = img2_new();
	sh(im, S2_SYMDST)->sh_link = S2_DIFF;
	EXPECT_REJECT(im, QP_EFORMAT, "section '.qpatch.symtab.dst': sh_link 8");
	im = img2_new();
	sh(im, S2_SYMSRC)->sh_name = shname(im, QP_SEC_SYMTAB_DST);
	EXPECT_REJECT(im, QP_EFORMAT, "section 6 is '.qpatch.symtab.dst', expected '.qpatch.symtab.src'");
	im = img2_new();
	sym(im, S2_SYMSRC, 2)->st_name = (uint32_t)sh(im, S2_SHSTR)->sh_size;
	EXPECT_REJECT(im, QP_EFORMAT, "section '.qpatch.symtab.src': symbol 2: name offset");
	im = img2_new();
	sh(im, S_TEXT)->sh_size = 1ull << 40; /* stored: bytes in the file */
	EXPECT_REJECT(im, QP_EFORMAT, "section '.qpatch.text': [");
	im = img2_new();
	eh(im)->e_shnum = 5; /* shstrtab is in place, but too few sections */
	eh(im)->e_shstrndx = 4;
	memcpy(sh(im, 4), sh(im, S2_SHSTR), sizeof(Elf64_Shdr));
	EXPECT_REJECT(im, QP_EFORMAT, "'<memory>': 5 sections, expected at least 6");
	/* rule 59: stored bytes count in the 256 MiB of content */
	im = img2_new();
	im.b = realloc(im.b, im.n + QP_MAX_SECTION_SIZE + 1);
	memset(im.b + im.n, 0, QP_MAX_SECTION_SIZE + 1);
	sh(im, S_TEXT)->sh_offset = im.n;
	sh(im, S_TEXT)->sh_size = QP_MAX_SECTION_SIZE + 1ull;
	im.n += QP_MAX_SECTION_SIZE + 1;
	EXPECT_REJECT(im, QP_EFORMAT, "section '.qpatch.text': size 268435457 exceeds the image limit 268435456");
}

/* Version 2 compresses a section exactly where that makes it smaller; a
 * patch without content has no diff table link. */
static void test_v2_compression(void)
{
	static uint8_t big[4096];
	struct qp_error err = { 0 };
	struct qp_patch *p, *q;
	struct spec s;
	struct img im;
	void *buf = NULL;
	size_t n = 0;

	memset(big, 0x90, sizeof(big));
	spec_init(&s);
	s.nsecs = 1;
	s.secs[0] = (struct qp_section){ .name = QP_SEC_TEXT, .type = SHT_PROGBITS,
		.flags = SHF_ALLOC | SHF_EXECINSTR, .addr = 0, .size = sizeof(big),
		.align = 16, .data = big };
	s.ndst = 2;
	s.dst[1].shndx = 0;
	s.nrelas = 1;
	s.relas[0] = s.relas[R_REPLACE_BUMP];
	s.info.image_size = sizeof(big);
	p = spec_build(&s);
	CHECK_INT(qp_patch__write_mem(p, &buf, &n, &err), 0);
	CHECK(n < 1200); /* 4096 bytes of code */
	im = (struct img){ buf, n };
	CHECK_INT(eh(im)->e_shnum, 7);
	CHECK_INT(sh(im, S_TEXT)->sh_flags & SHF_COMPRESSED, SHF_COMPRESSED);
	CHECK_INT(chdr(im, S_TEXT)->ch_addralign, 16);
	CHECK_INT(sh(im, S_TEXT)->sh_addralign, 8);
	q = qp_patch__open_mem(buf, n, &err);
	CHECK(q);
	if (q)
		check_patch_is(q, &s);
	qp_patch__free(q);
	qp_patch__free(p);
	free(buf);

	spec_init(&s);
	s.nsecs = 0;
	s.ndst = 1;
	s.nrelas = 0;
	s.info.image_size = 0;
	p = spec_build(&s);
	buf = NULL;
	CHECK_INT(qp_patch__write_mem(p, &buf, &n, &err), 0);
	im = (struct img){ buf, n };
	CHECK_INT(eh(im)->e_shnum, 6);
	CHECK_INT(sh(im, 4)->sh_type, SHT_RELA);
	CHECK_INT(sh(im, 4)->sh_info, 0);
	CHECK_INT(sh(im, 4)->sh_flags, 0);
	q = qp_patch__open_mem(buf, n, &err);
	CHECK(q);
	qp_patch__free(q);
	qp_patch__free(p);
	free(buf);
}

/* A version 1 file, written by the writer of the time: read, written
 * again as version 1 byte for byte, and as version 2. */
static void test_v1_fixture(void)
{
	const char *src = getenv("QP_SRC");
	struct qp_error err = { 0 };
	struct qp_patch *p, *q;
	struct qp_info in;
	char path[4096];
	void *buf = NULL, *buf2 = NULL;
	size_t n = 0, n2 = 0, size;
	FILE *f;
	uint8_t *file;

	if (!src) {
		printf("test_v1_fixture: QP_SRC not set, skipped\n");
		return;
	}
	snprintf(path, sizeof(path), "%s/tests/fixtures/format/v1-body.qpatch", src);
	p = qp_patch__open(path, &err);
	CHECK(p);
	if (!p) {
		fprintf(stderr, "%s\n", err.msg);
		return;
	}
	in = *qp_patch__info(p);
	CHECK_INT(in.version, 1);
	CHECK_STR(in.target_name, "prog");
	CHECK_INT(in.build_id_size, 20);
	CHECK_INT(in.image_size, 0x1034);
	CHECK_INT(qp_patch__section_count(p), 2);
	CHECK_STR(qp_patch__section(p, 1)->name, QP_SEC_EH_FRAME);
	CHECK_INT(qp_patch__dst_sym_count(p), 2);
	CHECK_STR(qp_patch__dst_sym(p, 1)->name, "compute");
	CHECK_INT(qp_patch__rela_count(p), 2);
	CHECK_INT(qp_patch__rela(p, 1)->type, QP_R_REPLACE);

	CHECK_INT(qp_patch__write_mem(p, &buf, &n, &err), 0);
	f = fopen(path, "rb");
	file = malloc(4096);
	size = f ? fread(file, 1, 4096, f) : 0;
	if (f)
		fclose(f);
	CHECK_INT(n, size);
	CHECK(buf && n == size && !memcmp(buf, file, n));

	in.version = 2;
	CHECK_INT(qp_patch__set_info(p, &in), 0);
	CHECK_INT(qp_patch__write_mem(p, &buf2, &n2, &err), 0);
	CHECK(n2 <= 1024);
	q = qp_patch__open_mem(buf2, n2, &err);
	CHECK(q);
	if (q) {
		CHECK_INT(qp_patch__info(q)->version, 2);
		CHECK_INT(qp_patch__info(q)->image_size, 0x1034);
		CHECK_INT(qp_patch__rela_count(q), 2);
		CHECK(!memcmp(qp_patch__section(q, 0)->data,
			      qp_patch__section(p, 0)->data, 11));
	}
	qp_patch__free(q);
	qp_patch__free(p);
	free(file);
	free(buf);
	free(buf2);
}

/* ---- hostile input at large ------------------------------------------ */

/* Every prefix of a valid patch is refused cleanly. */
static void test_truncated(const uint8_t *sample, size_t sample_size)
{
	struct qp_error err;
	size_t len, bad = 0;

	for (len = 0; len < sample_size; len++) {
		uint8_t *b = malloc(len ? len : 1);
		struct qp_patch *p;

		memcpy(b, sample, len);
		qp_error_clear(&err);
		p = qp_patch__open_mem(b, len, &err);
		if (p || err.code != QP_EFORMAT ||
		    strncmp(err.msg, "'<memory>': ", 12)) {
			fprintf(stderr, "truncated to %zu: %d '%s'\n", len,
				err.code, err.msg);
			bad++;
		}
		qp_patch__free(p);
		free(b);
	}
	CHECK_INT(bad, 0);
	CHECK(sample_size > 800);
	/* cut anywhere in the section table: the message says so */
	{
		const Elf64_Ehdr *eh = (const Elf64_Ehdr *)sample;
		char want[128];
		struct qp_patch *p;

		len = eh->e_shoff + 10;
		snprintf(want, sizeof(want), "'<memory>': truncated: %zu bytes, the ELF header says "
			 "the section table ends at %llu", len,
			 (unsigned long long)(eh->e_shoff + (uint64_t)eh->e_shnum * sizeof(Elf64_Shdr)));
		p = qp_patch__open_mem(sample, len, &err);
		CHECK(p == NULL);
		CHECK_STR(err.msg, want);
		p = qp_patch__open_mem(sample, 20, &err);
		CHECK(p == NULL);
		CHECK_STR(err.msg, "'<memory>': truncated: 20 bytes, less than an ELF header (64)");
	}
}

/* Flipping any one bit either is refused or yields a patch that
 * round-trips through the writer. */
static void test_bit_flips(const uint8_t *sample, size_t sample_size)
{
	size_t i, bad = 0, accepted = 0;
	uint8_t *b = malloc(sample_size);

	for (i = 0; i < sample_size * 8; i++) {
		struct qp_error err = { 0 };
		struct qp_patch *p, *q = NULL;
		void *out = NULL;
		size_t n;

		memcpy(b, sample, sample_size);
		b[i / 8] ^= (uint8_t)(1u << i % 8);
		p = qp_patch__open_mem(b, sample_size, &err);
		if (!p && (err.code >= 0 || !err.msg[0]))
			bad++;
		if (p) {
			accepted++;
			if (qp_patch__write_mem(p, &out, &n, &err))
				bad++;
			else if (!(q = qp_patch__open_mem(out, n, &err)))
				bad++;
		}
		if (bad == 1 && (p || err.code >= 0)) {
			fprintf(stderr, "flip %zu: %s\n", i, err.msg);
			bad++;
		}
		qp_patch__free(q);
		qp_patch__free(p);
		free(out);
	}
	free(b);
	CHECK_INT(bad, 0);
	CHECK(accepted > 0); /* e.g. flips in symbol values */
}

static void test_open_mem_args(void)
{
	struct qp_error err = { 0 };

	CHECK(!qp_patch__open_mem(NULL, 0, &err));
	CHECK_STR(err.msg, "'<memory>': not an ELF file");
	CHECK(!qp_patch__open_mem(NULL, 10, &err));
	CHECK_INT(err.code, -EINVAL);
	CHECK(!qp_patch__open_mem("\177ELF", 4, NULL));
}

/* ---- qpatch-dump ----------------------------------------------------- */

static void test_dump(void)
{
	const char *bin = getenv("QP_BIN");
	char cmd[8192], path[4096], out[16384];
	struct qp_error err = { 0 };
	struct qp_patch *p;
	struct spec s;
	size_t n;
	FILE *f;

	if (!bin) {
		printf("test_dump: QP_BIN not set, skipped\n");
		return;
	}
	snprintf(path, sizeof(path), "%s/test_dump.%d.qpatch", tmp_dir(), (int)getpid());
	spec_init(&s);
	p = spec_build(&s);
	CHECK_INT(qp_patch__write(p, path, &err), 0);
	qp_patch__free(p);
	snprintf(cmd, sizeof(cmd), "'%s/qpatch-dump' '%s' 2>&1", bin, path);
	f = popen(cmd, "r");
	CHECK(f);
	if (!f)
		return;
	n = fread(out, 1, sizeof(out) - 1, f);
	out[n] = '\0';
	CHECK_INT(pclose(f), 0);
	CHECK_CONTAINS(out, "patch 'fix-1'");
	CHECK_CONTAINS(out, "build-id:       a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3");
	CHECK_CONTAINS(out, "image size:     0x90 (144 bytes)");
	CHECK_CONTAINS(out, ".qpatch.text");
	CHECK_CONTAINS(out, "IN_TARGET helper [util.c]");
	CHECK_CONTAINS(out, "EXTERNAL  printf");
	CHECK_CONTAINS(out, ".qpatch.text+0x20");
	CHECK_CONTAINS(out, "R_X86_64_GOTPCRELX");
	CHECK_CONTAINS(out, "bump -> bump @ image+0x0\n");
	CHECK_CONTAINS(out, "helper -> helper @ image+0x20\n");
	unlink(path);

	snprintf(cmd, sizeof(cmd), "'%s/qpatch-dump' /nonexistent.qpatch 2>&1", bin);
	f = popen(cmd, "r");
	n = f ? fread(out, 1, sizeof(out) - 1, f) : 0;
	out[n] = '\0';
	CHECK_INT(f ? WEXITSTATUS(pclose(f)) : -1, 1);
	CHECK_CONTAINS(out, "qpatch-dump: unable to open '/nonexistent.qpatch'");
	snprintf(cmd, sizeof(cmd), "'%s/qpatch-dump' >/dev/null 2>&1", bin);
	CHECK_INT(WEXITSTATUS(system(cmd)), 2);
}

int main(void)
{
	struct qp_error err = { 0 };
	struct qp_patch *p;
	struct spec s;

	spec_init(&s);
	s.info.version = 1; /* the byte-level tests below are on version 1 */
	p = spec_build(&s);
	if (qp_patch__write_mem(p, (void **)&pristine, &pristine_size, &err)) {
		fprintf(stderr, "cannot write the sample: %s\n", err.msg);
		return 1;
	}
	qp_patch__free(p);
	spec_init(&s);
	p = spec_build(&s);
	if (qp_patch__write_mem(p, (void **)&pristine2, &pristine2_size, &err)) {
		fprintf(stderr, "cannot write the sample: %s\n", err.msg);
		return 1;
	}
	qp_patch__free(p);

	test_roundtrip_mem();
	test_roundtrip_empty();
	test_roundtrip_empty_section();
	test_roundtrip_file();
	test_file_errors();
	test_model_api();
	test_rela_names();
	test_rules_info();
	test_rules_sections();
	test_rules_src();
	test_rules_dst();
	test_rules_relas();
	test_rules_replace();
	test_rules_busy();
	test_rules_room();
	test_rules_calls();
	test_rules_cfi();
	test_many_sections();
	test_disk_pristine();
	test_disk_elf();
	test_disk_sections();
	test_disk_info();
	test_disk_content();
	test_disk_frames();
	test_disk_layout();
	test_disk_symbols();
	test_disk_relas();
	test_truncated(pristine, pristine_size);
	test_bit_flips(pristine, pristine_size);
	test_disk2_pristine();
	test_disk2_info();
	test_disk2_tables();
	test_v2_compression();
	test_v1_fixture();
	test_truncated(pristine2, pristine2_size);
	test_bit_flips(pristine2, pristine2_size);
	test_open_mem_args();
	test_dump();
	free(pristine);
	free(pristine2);
	return check_report("test_format");
}
