// SPDX-License-Identifier: MIT
/*
 * qpatch-dump: print everything a .qpatch file holds, after the reader has
 * validated it.  Exit 0 on success, 1 on a bad file, 2 on a usage error.
 */
#include <fcntl.h>
#include <gelf.h>
#include <inttypes.h>
#include <libelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qpatch/cfi.h"
#include "qpatch/format.h"
#include "qpatch/sign.h"
#include "qpatch/version.h"

static const char usage[] =
	"usage: qpatch-dump FILE.qpatch\n"
	"       qpatch-dump --help | --version\n"
	"\n"
	"Print the info block, content sections, symbols, relocations and\n"
	"function replacements of a qpatch patch file.\n"
	"\n"
	"      --help            this text\n"
	"  -V, --version         print the version and exit\n";

static const char *dump_type(uint8_t t)
{
	switch (t) {
	case STT_NOTYPE: return "NOTYPE";
	case STT_OBJECT: return "OBJECT";
	case STT_FUNC: return "FUNC";
	case STT_FILE: return "FILE";
	case STT_TLS: return "TLS";
	case STT_GNU_IFUNC: return "IFUNC";
	default: return "?";
	}
}

static const char *dump_bind(uint8_t b)
{
	switch (b) {
	case STB_LOCAL: return "LOCAL";
	case STB_GLOBAL: return "GLOBAL";
	case STB_WEAK: return "WEAK";
	case STB_GNU_UNIQUE: return "UNIQUE";
	default: return "?";
	}
}

/* "0x..." of @v in @buf (20 bytes). */
static const char *dump_hex(char *buf, uint64_t v)
{
	snprintf(buf, 20, "0x%" PRIx64, v);
	return buf;
}

/* The signature block, if any; checking it is qpatch-load --verify's job. */
static void dump_signature(const struct qp_patch *p)
{
	const struct qp_sig_disk *sig = qp_patch__signature(p);
	char hex[QP_SIG_KEY_ID_HEX];

	if (!sig) {
		printf("  signature:      none\n");
		return;
	}
	qp_sig_key_id_hex(sig->key_id, hex);
	if (sig->algorithm == QP_SIG_ED25519)
		printf("  signature:      Ed25519, key id %s (not checked here)\n", hex);
	else
		printf("  signature:      unknown algorithm %u, key id %s\n", sig->algorithm, hex);
}

static void dump_info(const struct qp_patch *p)
{
	const struct qp_info *in = qp_patch__info(p);
	uint32_t i;

	printf("patch '%s'\n", in->id);
	printf("  format version: %" PRIu32 "\n", in->version);
	printf("  target:         '%s'\n", in->target_name);
	printf("  build-id:       ");
	for (i = 0; i < in->build_id_size; i++)
		printf("%02x", in->build_id[i]);
	printf("\n  tool version:   %s\n", in->tool_version);
	printf("  image size:     0x%" PRIx64 " (%" PRIu64 " bytes)\n",
	       in->image_size, in->image_size);
	dump_signature(p);
}

/* sh_size of each content section in the file (the reader keeps only the
 * uncompressed sizes), or NULL when they cannot be read. */
static uint64_t *dump_disk_sizes(const char *path, size_t n)
{
	uint64_t *sz = calloc(n ? n : 1, sizeof(*sz));
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	Elf *e = NULL;
	size_t i = 0;

	if (sz && fd >= 0 && elf_version(EV_CURRENT) != EV_NONE)
		e = elf_begin(fd, ELF_C_READ, NULL);
	for (; e && i < n; i++) {
		GElf_Shdr sh;

		if (!gelf_getshdr(elf_getscn(e, i + 2), &sh))
			break;
		sz[i] = sh.sh_size;
	}
	if (!e || i < n) {
		free(sz);
		sz = NULL;
	}
	elf_end(e);
	if (fd >= 0)
		close(fd);
	return sz;
}

static void dump_sections(const struct qp_patch *p, const uint64_t *disk)
{
	size_t i, n = qp_patch__section_count(p);

	printf("\ncontent sections (%zu):\n", n);
	printf("  %3s %-18s %10s %10s %6s %-5s %10s\n", "idx", "name", "addr",
	       "size", "align", "flags", "disk");
	for (i = 0; i < n; i++) {
		const struct qp_section *s = qp_patch__section(p, i);
		char fl[4], *f = fl, addr[20], size[20];

		*f++ = s->flags & SHF_ALLOC ? 'A' : '-';
		*f++ = s->flags & SHF_WRITE ? 'W' : '-';
		*f++ = s->flags & SHF_EXECINSTR ? 'X' : '-';
		*f = '\0';
		printf("  %3zu %-18s %10s %10s %6" PRIu64 " %-5s ", i, s->name,
		       dump_hex(addr, s->addr), dump_hex(size, s->size),
		       s->align, fl);
		if (s->type == SHT_NOBITS)
			printf("%10s\n", "(nobits)");
		else if (disk)
			printf("%10" PRIu64 "\n", disk[i]);
		else
			printf("%10s\n", "?");
	}
}

static void dump_src_syms(const struct qp_patch *p)
{
	size_t i, n = qp_patch__src_sym_count(p);
	const char *file = NULL;

	printf("\nsrc symbols (%zu):\n", n - 1);
	printf("  %4s %18s %8s %-6s %-6s %-9s %s\n", "idx", "value", "size",
	       "type", "bind", "where", "name");
	for (i = 1; i < n; i++) {
		const struct qp_sym *s = qp_patch__src_sym(p, i);
		const char *where = s->type == STT_FILE ? "-" :
				    s->shndx == QP_SRC_EXTERNAL ? "EXTERNAL" :
								  "IN_TARGET";

		if (s->type == STT_FILE)
			file = s->name;
		char value[20];

		printf("  %4zu %18s %8" PRIu64 " %-6s %-6s %-9s %s",
		       i, dump_hex(value, s->value), s->size, dump_type(s->type),
		       dump_bind(s->bind), where, s->name);
		if (s->bind == STB_LOCAL && s->type != STT_FILE && file)
			printf(" [%s]", file);
		printf("\n");
	}
}

static void dump_dst_syms(const struct qp_patch *p)
{
	size_t i, n = qp_patch__dst_sym_count(p);

	printf("\ndst symbols (%zu):\n", n - 1);
	printf("  %4s %-28s %-14s %8s %-6s %-6s %s\n", "idx", "section+offset",
	       "address", "size", "type", "bind", "name");
	for (i = 1; i < n; i++) {
		const struct qp_sym *s = qp_patch__dst_sym(p, i);
		char where[64], addr[32];

		snprintf(where, sizeof(where), "%s+0x%" PRIx64,
			 qp_patch__section(p, s->shndx)->name, s->value);
		snprintf(addr, sizeof(addr), "image+0x%" PRIx64,
			 qp_patch__dst_sym_addr(p, i));
		printf("  %4zu %-28s %-14s %8" PRIu64 " %-6s %-6s %s\n", i,
		       where, addr, s->size, dump_type(s->type),
		       dump_bind(s->bind), s->name);
	}
}

static void dump_relas(const struct qp_patch *p)
{
	size_t i, n = qp_patch__rela_count(p);

	printf("\nrelocations (%zu):\n", n);
	printf("  %-12s %-24s %-24s %s\n", "offset", "type", "symbol", "addend");
	for (i = 0; i < n; i++) {
		const struct qp_rela *r = qp_patch__rela(p, i);

		char off[20];

		printf("  %-12s %-24s %-24s %" PRId64 "\n", dump_hex(off, r->offset),
		       qp_rela_type_name(r->type),
		       r->sym ? qp_patch__src_sym(p, r->sym)->name : "-",
		       r->addend);
	}
}

static void dump_replacements(const struct qp_patch *p)
{
	size_t i, cnt = 0, n = qp_patch__rela_count(p);

	for (i = 0; i < n; i++)
		cnt += qp_patch__rela(p, i)->type == QP_R_REPLACE;
	printf("\nreplacements (%zu):\n", cnt);
	for (i = 0; i < n; i++) {
		const struct qp_rela *r = qp_patch__rela(p, i);

		if (r->type != QP_R_REPLACE)
			continue;
		printf("  %s -> %s @ image+0x%" PRIx64 "\n",
		       qp_patch__src_sym(p, r->sym)->name,
		       qp_patch__dst_sym(p, (size_t)r->addend)->name, r->offset);
	}
	for (i = 0; i < n; i++) {
		const struct qp_rela *r = qp_patch__rela(p, i);

		if (r->type == QP_R_BUSY)
			printf("  (%s: also checked idle, part of %s)\n",
			       qp_patch__src_sym(p, r->sym)->name,
			       qp_patch__src_sym(p, (size_t)r->addend)->name);
		if (r->type == QP_R_ROOM)
			printf("  (%s: %lld bytes of padding after it may take the jump)\n",
			       qp_patch__src_sym(p, r->sym)->name, (long long)r->addend);
		if (r->type == QP_R_CALLS)
			printf("  (%s: too short for the jump; its direct call sites are rewritten)\n",
			       qp_patch__src_sym(p, r->sym)->name);
	}
}

/* The function (dst symbol) starting at image offset @at, or "?". */
static const char *dump_func_at(const struct qp_patch *p, uint64_t at)
{
	size_t i;

	for (i = 1; i < qp_patch__dst_sym_count(p); i++)
		if (qp_patch__dst_sym(p, i)->type == STT_FUNC && qp_patch__dst_sym_addr(p, i) == at)
			return qp_patch__dst_sym(p, i)->name;
	return "?";
}

/* The FDEs of .qpatch.eh_frame (validated by the reader). */
static void dump_cfi(const struct qp_patch *p)
{
	const struct qp_section *s = NULL;
	struct qp_cfi_entry e, ce;
	struct qp_cfi_cie c;
	struct qp_cfi_fde f;
	uint64_t off = 0, at;
	size_t i;

	for (i = 0; i < qp_patch__section_count(p); i++)
		if (!strcmp(qp_patch__section(p, i)->name, QP_SEC_EH_FRAME))
			s = qp_patch__section(p, i);
	printf("\ncall frame information:%s\n", s ? "" : " none");
	while (s && qp_cfi_entry(s->data, s->size, off, &e, NULL, 0) == 0) {
		off += e.size;
		if (e.cie || qp_cfi_entry(s->data, s->size, e.cie_off, &ce, NULL, 0) ||
		    qp_cfi_parse_cie(s->data, s->size, &ce, &c, NULL, 0) ||
		    qp_cfi_parse_fde(s->data, s->size, &e, &c, &f, NULL, 0))
			continue;
		at = (uint64_t)((int64_t)(s->addr + f.pc_off) + f.pc_value);
		printf("  FDE image+0x%" PRIx64 "..0x%" PRIx64 " %s\n", at, at + f.pc_range,
		       dump_func_at(p, at));
	}
}

int main(int argc, char **argv)
{
	struct qp_error err = { 0 };
	struct qp_patch *p;
	uint64_t *disk;

	if (argc == 2 && !strcmp(argv[1], "--help")) {
		fputs(usage, stdout);
		return 0;
	}
	if (argc == 2 && (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")))
		return qp_version_print("qpatch-dump");
	if (argc != 2 || argv[1][0] == '-') {
		fputs(usage, stderr);
		return 2;
	}
	p = qp_patch__open(argv[1], &err);
	if (!p) {
		fprintf(stderr, "qpatch-dump: %s\n", err.msg);
		return 1;
	}
	disk = dump_disk_sizes(argv[1], qp_patch__section_count(p));
	dump_info(p);
	dump_sections(p, disk);
	dump_src_syms(p);
	dump_dst_syms(p);
	dump_relas(p);
	dump_replacements(p);
	dump_cfi(p);
	free(disk);
	qp_patch__free(p);
	if (fflush(stdout) || ferror(stdout)) {
		fprintf(stderr, "qpatch-dump: unable to write the output\n");
		return 1;
	}
	return 0;
}
