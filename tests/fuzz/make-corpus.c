// SPDX-License-Identifier: MIT
/*
 * qp-fuzz-corpus DIR: write a few valid .qpatch files into DIR as the seed
 * corpus of fuzz_reader (a full patch, one with call frame information,
 * an empty one, one with only bss, one with an empty section, one whose
 * code is compressed; the first two also in format version 1).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "qpatch/format.h"
#include "qpatch/sign.h"

static const uint8_t code[] = {
	0x55, 0x48, 0x89, 0xe5, 0xe8, 0, 0, 0, 0, 0x8b, 0x05, 0, 0, 0, 0,
	0x5d, 0xc3, 0x90, 0x90, 0x90, 0x48, 0x8b, 0x05, 0, 0, 0, 0, 0xc3,
	0xe9, 0, 0, 0, 0, 0x90, 0x90, 0x90,
};
static const uint8_t rodata[] = "counter is %d\n";
static const uint8_t data[16] = { 1, 2, 3, 4 };

static uint32_t corpus_version = QP_FORMAT_VERSION;

static void corpus_info(struct qp_patch *p, uint64_t image_size)
{
	struct qp_info in = { .version = corpus_version, .build_id_size = 20 };

	strcpy(in.id, "seed");
	strcpy(in.target_name, "counter");
	strcpy(in.tool_version, "0.1.0");
	memset(in.build_id, 0xab, 20);
	in.image_size = image_size;
	qp_patch__set_info(p, &in);
}

static void corpus_sections(struct qp_patch *p)
{
	const struct qp_section secs[] = {
		{ QP_SEC_TEXT, SHT_PROGBITS, SHF_ALLOC | SHF_EXECINSTR, 0,
		  sizeof(code), 16, code },
		{ QP_SEC_RODATA, SHT_PROGBITS, SHF_ALLOC, 48, sizeof(rodata), 8, rodata },
		{ QP_SEC_DATA, SHT_PROGBITS, SHF_ALLOC | SHF_WRITE, 64,
		  sizeof(data), 8, data },
		{ QP_SEC_BSS, SHT_NOBITS, SHF_ALLOC | SHF_WRITE, 80, 48, 16, NULL },
	};
	size_t i;

	for (i = 0; i < sizeof(secs) / sizeof(secs[0]); i++)
		qp_patch__add_section(p, &secs[i]);
}

/* .qpatch.eh_frame at image offset 128 for bump [0, 20) and main [20, 36):
 * one CIE, two FDEs, the terminator (docs/format.md). */
static const uint8_t eh_frame[] = {
	20, 0, 0, 0, 0, 0, 0, 0, 1, 'z', 'R', 0, 1, 0x78, 16, 1, 0x1b,
	0x0c, 0x07, 0x08, 0x90, 0x01, 0, 0,
	/* FDE at 24: pc_begin = 0 - (128 + 32) */
	20, 0, 0, 0, 28, 0, 0, 0, 0x60, 0xff, 0xff, 0xff, 20, 0, 0, 0, 0,
	0x41, 0x0e, 0x10, 0x86, 0x02, 0, 0,
	/* FDE at 48: pc_begin = 20 - (128 + 56) */
	20, 0, 0, 0, 52, 0, 0, 0, 0x5c, 0xff, 0xff, 0xff, 16, 0, 0, 0, 0,
	0x41, 0x0e, 0x10, 0, 0, 0, 0,
	0, 0, 0, 0,
};

static void corpus_syms(struct qp_patch *p)
{
	const struct qp_sym src[] = {
		{ "counter.c", 0, 0, STT_FILE, STB_LOCAL, SHN_ABS },
		{ "count", 0x4010, 4, STT_OBJECT, STB_LOCAL, QP_SRC_IN_TARGET },
		{ "bump", 0x1130, 17, STT_FUNC, STB_LOCAL, QP_SRC_IN_TARGET },
		{ "main", 0x1150, 40, STT_FUNC, STB_GLOBAL, QP_SRC_IN_TARGET },
		{ "printf", 0, 0, STT_FUNC, STB_GLOBAL, QP_SRC_EXTERNAL },
		{ "tls", 0x8, 4, STT_TLS, STB_GLOBAL, QP_SRC_IN_TARGET },
	};
	const struct qp_sym dst[] = {
		{ "bump", 0, 20, STT_FUNC, STB_LOCAL, 0 },
		{ "fmt", 0, sizeof(rodata), STT_OBJECT, STB_LOCAL, 1 },
		{ "main", 20, 16, STT_FUNC, STB_GLOBAL, 0 },
		{ "table", 0, 16, STT_OBJECT, STB_GLOBAL, 2 },
		{ "scratch", 0, 48, STT_OBJECT, STB_WEAK, 3 },
	};
	size_t i;

	for (i = 0; i < sizeof(src) / sizeof(src[0]); i++)
		qp_patch__add_src_sym(p, &src[i]);
	for (i = 0; i < sizeof(dst) / sizeof(dst[0]); i++)
		qp_patch__add_dst_sym(p, &dst[i]);
}

static void corpus_relas(struct qp_patch *p)
{
	const struct qp_rela relas[] = {
		{ 5, R_X86_64_PLT32, 5, -4 },
		{ 11, R_X86_64_PC32, 2, -4 },
		{ 23, R_X86_64_GOTTPOFF, 6, -4 },
		{ 29, R_X86_64_PC32, 4, -4 },
		{ 64, R_X86_64_RELATIVE, 0, 48 },
		{ 72, R_X86_64_64, 4, 0 },
		{ 0, QP_R_REPLACE, 3, 1 },
		{ 20, QP_R_REPLACE, 4, 3 },
		{ 0, QP_R_BUSY, 3, 4 }, /* bump counts as part of main */
	};
	size_t i;

	for (i = 0; i < sizeof(relas) / sizeof(relas[0]); i++)
		qp_patch__add_rela(p, &relas[i]);
}

static int corpus_write(const char *dir, const char *name, struct qp_patch *p)
{
	struct qp_error err = { 0 };
	char path[4096];
	int ret;

	snprintf(path, sizeof(path), "%s/%s.qpatch", dir, name);
	ret = qp_patch__write(p, path, &err);
	if (ret)
		fprintf(stderr, "qp-fuzz-corpus: %s\n", err.msg);
	qp_patch__free(p);
	return ret ? 1 : 0;
}

/* A copy of DIR/full.qpatch with a signature block appended (rules 61
 * and 62; the reader does not check the signature itself). */
static int corpus_signed(const char *dir)
{
	struct qp_sig_disk sig = { .magic = QP_SIG_MAGIC, .algorithm = QP_SIG_ED25519 };
	char path[4096], buf[65536];
	size_t n;
	FILE *in, *out;
	int bad;

	snprintf(path, sizeof(path), "%s/full.qpatch", dir);
	in = fopen(path, "rb");
	snprintf(path, sizeof(path), "%s/signed.qpatch", dir);
	out = fopen(path, "wb");
	n = in ? fread(buf, 1, sizeof(buf), in) : 0;
	memset(sig.key_id, 0x5c, sizeof(sig.key_id));
	bad = !in || !out || !n || fwrite(buf, 1, n, out) != n ||
	      fwrite(&sig, 1, sizeof(sig), out) != sizeof(sig);
	if (in)
		fclose(in);
	if (out && fclose(out))
		bad = 1;
	if (bad)
		fprintf(stderr, "qp-fuzz-corpus: cannot write '%s'\n", path);
	return bad;
}

int main(int argc, char **argv)
{
	const struct qp_section empty = { ".qpatch.empty", SHT_PROGBITS,
					  SHF_ALLOC, 0, 0, 1, NULL };
	const struct qp_section bss = { QP_SEC_BSS, SHT_NOBITS,
					SHF_ALLOC | SHF_WRITE, 0, 4096, 4096, NULL };
	static uint8_t big[4096];
	struct qp_patch *p;
	int bad = 0, v;

	if (argc != 2) {
		fprintf(stderr, "usage: qp-fuzz-corpus DIR\n");
		return 2;
	}
	if (mkdir(argv[1], 0755) && errno != EEXIST) {
		perror(argv[1]);
		return 1;
	}
	for (v = 0; v < 2; v++) {
		corpus_version = v ? QP_FORMAT_VERSION_MIN : QP_FORMAT_VERSION;
		p = qp_patch__new();
		corpus_info(p, 128);
		corpus_sections(p);
		corpus_syms(p);
		corpus_relas(p);
		bad |= corpus_write(argv[1], v ? "full-v1" : "full", p);
		p = qp_patch__new();
		corpus_info(p, 128 + sizeof(eh_frame));
		corpus_sections(p);
		qp_patch__add_section(p, &(struct qp_section){ QP_SEC_EH_FRAME, SHT_PROGBITS,
							      SHF_ALLOC, 128, sizeof(eh_frame),
							      8, eh_frame });
		corpus_syms(p);
		corpus_relas(p);
		bad |= corpus_write(argv[1], v ? "cfi-v1" : "cfi", p);
	}
	bad |= corpus_signed(argv[1]);
	corpus_version = QP_FORMAT_VERSION;
	memset(big, 0x90, sizeof(big)); /* compressed in version 2 */
	p = qp_patch__new();
	corpus_info(p, sizeof(big));
	qp_patch__add_section(p, &(struct qp_section){ QP_SEC_TEXT, SHT_PROGBITS,
						      SHF_ALLOC | SHF_EXECINSTR, 0,
						      sizeof(big), 16, big });
	bad |= corpus_write(argv[1], "compressed", p);
	p = qp_patch__new();
	corpus_info(p, 0);
	bad |= corpus_write(argv[1], "empty", p);
	p = qp_patch__new();
	corpus_info(p, 4096);
	qp_patch__add_section(p, &bss);
	bad |= corpus_write(argv[1], "bss", p);
	p = qp_patch__new();
	corpus_info(p, 0);
	qp_patch__add_section(p, &empty);
	bad |= corpus_write(argv[1], "empty-section", p);
	return bad;
}
