// SPDX-License-Identifier: MIT
/*
 * qp_callsites_find (libdecode/callsites.c) on real binaries compiled at
 * test time: the sites of a function called, tail-called and
 * conditionally tail-called, each checked against the file's bytes; and
 * every way into a function the sites do not cover, refused with its
 * reason under QP_CALLSITES_ALL and ignored without it.  The index of
 * many functions (qp_callsites__new), whole or limited to the functions
 * asked about, gives for every function the same answer as a search of
 * that function alone.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "qpatch/callsites.h"
#include "qpatch/decode.h"
#include "qpatch/elf.h"

static char tmpdir[PATH_MAX];

/* A program: f is called directly in every way gcc and clang do; each
 * other function below is reached in one way the sites do not cover. */
static const char prog_pie[] =
	"#define KEEP __attribute__((noipa, used))\n"
	"KEEP int f(int x) { return x + 1; }\n"
	"KEEP int two(int x) { return f(x) * 10 + f(x + 1); }\n"
	"KEEP int tail(int x) { return f(x * 3); }\n"
	/* a conditional tail call, as clang emits it */
	"__asm__(\".text\\n.globl cond\\n.type cond, @function\\ncond:\\n\"\n"
	"        \"\\tcmpl $100, %edi\\n\\tjg f\\n\\tleal -1(%rdi), %eax\\n\\tret\\n.size cond, .-cond\\n\");\n"
	/* its address taken by a lea */
	"KEEP int taken(int x) { return x + 2; }\n"
	"void *volatile sink;\n"
	"KEEP void take(void) { sink = (void *)taken; }\n"
	/* its address stored in data (a relocation in .rela.dyn) */
	"KEEP int stored(int x) { return x + 3; }\n"
	"int (*volatile ptr)(int) = stored;\n"
	/* a constructor: in .init_array */
	"__attribute__((constructor, used)) static void ctor(void) { sink = 0; }\n"
	/* a rel8 jump, a branch into the middle, a fall-through (assembly:
	 * compilers do not make these to a function of another section) */
	"__asm__(\".text\\n.type s8, @function\\ns8:\\n\\tret\\n.size s8, 1\\n\"\n"
	"        \".type j8, @function\\nj8:\\n\\tjmp s8\\n.size j8, .-j8\\n\"\n"
	"        \".type mid, @function\\nmid:\\n\\tnop\\n\\tret\\n.size mid, .-mid\\n\"\n"
	"        \".type cm, @function\\ncm:\\n\\tcall mid + 1\\n\\tret\\n.size cm, .-cm\\n\"\n"
	"        \".type ft0, @function\\nft0:\\n\\tmovl $1, %eax\\n.size ft0, .-ft0\\n\"\n"
	"        \".type ft1, @function\\nft1:\\n\\tret\\n.size ft1, .-ft1\\n\");\n"
	"int cond(int);\n"
	"int main(void) { return two(1) + tail(2) + cond(3) + ptr(1); }\n";

/* Position-dependent: the address as a 32-bit constant in code, and as
 * a plain word in data (no relocation left to say so). */
static const char prog_nopie[] =
	"#define KEEP __attribute__((noipa, used))\n"
	"KEEP int konst(int x) { return x + 1; }\n"
	"KEEP int word(int x) { return x + 2; }\n"
	"int (*volatile p)(int);\n"
	"int (*volatile q)(int) = word;\n"
	"KEEP void set(void) { p = konst; }\n"
	"int main(void) { set(); return p(1) + q(1); }\n";

/* Code that does not decode (0x06 is not an instruction in 64-bit mode),
 * after a call to f; and a second function calling f. */
static const char prog_bad[] =
	"#define KEEP __attribute__((noipa, used))\n"
	"KEEP int f(int x) { return x + 1; }\n"
	"__asm__(\".text\\n.type bad, @function\\nbad:\\n\\tcall f\\n\\t.byte 6\\n\\tcall f\\n\\tret\\n.size bad, .-bad\\n\");\n"
	"KEEP int g(int x) { return f(x) + 2; }\n"
	"int main(void) { return g(1); }\n";

static struct qp_elf *build(const char *name, const char *src, const char *flags)
{
	char c[PATH_MAX], bin[PATH_MAX + 8], cmd[3 * PATH_MAX];
	struct qp_error err = { 0 };
	struct qp_elf *e = NULL;
	FILE *f;

	snprintf(c, sizeof(c), "%s/%s.c", tmpdir, name);
	snprintf(bin, sizeof(bin), "%s/%s", tmpdir, name);
	f = fopen(c, "w");
	CHECK(f != NULL);
	if (!f)
		return NULL;
	fputs(src, f);
	fclose(f);
	snprintf(cmd, sizeof(cmd), "cc -O2 -ffunction-sections %s -o '%s' '%s'", flags, bin, c);
	CHECK_INT(system(cmd), 0);
	CHECK_INT(qp_elf__open(bin, QP_ELF_NO_RELAS, &e, &err), 0);
	return e;
}

/* Find @name's sites with @flags: the return value, reason in @why. */
static int find(const struct qp_elf *e, const char *name, unsigned flags, struct qp_callsite **v,
		size_t *n, char *why, size_t size)
{
	const struct qp_elf_sym *s = qp_elf__find_sym(e, name);

	why[0] = '\0';
	*v = NULL;
	*n = 0;
	CHECK(s != NULL);
	if (!s)
		return -ENOENT;
	return qp_callsites_find(e, s->value, s->size, flags, v, n, why, size);
}

/* Each site, decoded from the file's bytes, is a direct branch to @func. */
static void check_sites(const struct qp_elf *e, uint64_t func, const struct qp_callsite *v, size_t n,
			int *calls, int *jmps, int *jccs)
{
	size_t i;

	for (i = 0; i < n; i++) {
		const struct qp_elf_sec *s;
		struct qp_insn in = { 0 };
		const uint8_t *b = NULL;

		qp_elf_for_each_sec(e, s)
			if (s->data && v[i].addr >= s->shdr.sh_addr && v[i].addr < s->shdr.sh_addr + s->size)
				b = s->data + (v[i].addr - s->shdr.sh_addr);
		CHECK(b != NULL);
		if (!b)
			continue;
		CHECK_INT(qp_decode_insn(b, v[i].len, v[i].addr, &in), 0);
		CHECK_INT(in.len, v[i].len);
		CHECK_INT(in.target, func);
		CHECK_INT(in.rel_size, 4);
		CHECK_INT(in.rel_off, v[i].rel_off);
		CHECK(!in.indirect && !in.rip_relative);
		*calls += in.kind == QP_INSN_CALL;
		*jmps += in.kind == QP_INSN_JMP;
		*jccs += in.kind == QP_INSN_JCC;
	}
}

static void test_pie(void)
{
	struct qp_elf *e = build("pie", prog_pie, "-fPIE -pie");
	struct qp_callsite *v;
	int calls = 0, jmps = 0, jccs = 0;
	char why[300];
	size_t n;

	if (!e)
		return;
	/* f: two calls, a tail call, a conditional tail call, nothing else */
	CHECK_INT(find(e, "f", QP_CALLSITES_ALL, &v, &n, why, sizeof(why)), 0);
	CHECK_STR(why, "");
	CHECK_INT(n, 4);
	check_sites(e, qp_elf__find_sym(e, "f")->value, v, n, &calls, &jmps, &jccs);
	CHECK_INT(calls, 2);
	CHECK_INT(jmps, 1);
	CHECK_INT(jccs, 1);
	free(v);

	CHECK_INT(find(e, "taken", QP_CALLSITES_ALL, &v, &n, why, sizeof(why)), -ENOTSUP);
	CHECK_CONTAINS(why, "its address is taken by the instruction at");
	CHECK_CONTAINS(why, "in 'take'");
	CHECK(v == NULL);
	/* without QP_CALLSITES_ALL, the sites found (none here), no refusal */
	CHECK_INT(find(e, "taken", 0, &v, &n, why, sizeof(why)), 0);
	CHECK_INT(n, 0);
	free(v);

	CHECK_INT(find(e, "stored", QP_CALLSITES_ALL, &v, &n, why, sizeof(why)), -ENOTSUP);
	CHECK_CONTAINS(why, "its address is stored at");
	CHECK_CONTAINS(why, "relocation in .rela.dyn");

	CHECK_INT(find(e, "ctor", QP_CALLSITES_ALL, &v, &n, why, sizeof(why)), -ENOTSUP);
	CHECK_CONTAINS(why, "(.init_array; relocation in .rela.dyn)");

	CHECK_INT(find(e, "s8", QP_CALLSITES_ALL, &v, &n, why, sizeof(why)), -ENOTSUP);
	CHECK_CONTAINS(why, "the 2-byte branch at");
	CHECK_CONTAINS(why, "cannot be made to reach the new code");

	CHECK_INT(find(e, "mid", QP_CALLSITES_ALL, &v, &n, why, sizeof(why)), -ENOTSUP);
	CHECK_CONTAINS(why, "in 'cm' enters it at");

	CHECK_INT(find(e, "ft1", QP_CALLSITES_ALL, &v, &n, why, sizeof(why)), -ENOTSUP);
	CHECK_CONTAINS(why, "the code before it ('ft0'");
	CHECK_CONTAINS(why, "runs on into it");
	qp_elf__free(e);

	/* exported: in .dynsym */
	e = build("rdynamic", prog_pie, "-fPIE -pie -rdynamic");
	if (!e)
		return;
	CHECK_INT(find(e, "f", QP_CALLSITES_ALL, &v, &n, why, sizeof(why)), -ENOTSUP);
	CHECK_CONTAINS(why, "it is exported in .dynsym as 'f'");
	/* the sites are still found without QP_CALLSITES_ALL */
	CHECK_INT(find(e, "f", 0, &v, &n, why, sizeof(why)), 0);
	CHECK_INT(n, 4);
	free(v);
	qp_elf__free(e);
}

static void test_nopie(void)
{
	struct qp_elf *e = build("nopie", prog_nopie, "-fno-PIE -no-pie");
	struct qp_callsite *v;
	char why[300];
	size_t n;

	if (!e)
		return;
	CHECK_INT(find(e, "konst", QP_CALLSITES_ALL, &v, &n, why, sizeof(why)), -ENOTSUP);
	CHECK_CONTAINS(why, "its address may be the 32-bit constant at");
	CHECK_INT(find(e, "word", QP_CALLSITES_ALL, &v, &n, why, sizeof(why)), -ENOTSUP);
	CHECK_CONTAINS(why, "its address is stored at");
	CHECK_CONTAINS(why, "(.data)");
	qp_elf__free(e);
}

/* The same answer: return value, reason on refusal, and sites. */
static void check_same(const char *name, int r1, const char *why1, const struct qp_callsite *v1,
		       size_t n1, int r2, const char *why2, const struct qp_callsite *v2, size_t n2)
{
	size_t i;
	int same = r1 == r2 && n1 == n2 && (!r1 || !strcmp(why1, why2));

	for (i = 0; same && i < n1; i++)
		same = v1[i].addr == v2[i].addr && v1[i].len == v2[i].len &&
		       v1[i].rel_off == v2[i].rel_off && v1[i].kind == v2[i].kind;
	if (!same)
		fprintf(stderr, "'%s': %d (%s) %zu sites, against %d (%s) %zu sites\n", name, r1, why1,
			n1, r2, why2, n2);
	CHECK(same);
}

/*
 * For every function of @e (every @step-th): qp_callsites_find, one index
 * of the whole binary, and an index limited to that function (asked
 * without, then with QP_CALLSITES_ALL) say the same.  The number of
 * functions compared, and of sites found, in *@nf and *@ns.
 */
static void check_index(const struct qp_elf *e, size_t step, size_t *nf, size_t *ns)
{
	struct qp_callsites *whole = NULL;
	const struct qp_elf_sym *s;
	size_t k = 0;

	*nf = *ns = 0;
	CHECK_INT(qp_callsites__new(e, NULL, 0, &whole), 0);
	if (!whole)
		return;
	qp_elf_for_each_sym(e, s) {
		static const unsigned flags[2] = { 0, QP_CALLSITES_ALL };
		struct qp_callsites *one = NULL;
		uint64_t want = s->value;
		unsigned f;

		if (s->type != STT_FUNC || !s->size || !s->sec || !s->sec->data || k++ % step)
			continue;
		CHECK_INT(qp_callsites__new(e, &want, 1, &one), 0);
		if (!one)
			continue;
		(*nf)++;
		for (f = 0; f < 2; f++) {
			struct qp_callsite *v0, *v1, *v2;
			char w0[300] = "", w1[300] = "", w2[300] = "";
			size_t n0, n1, n2;
			int r0 = qp_callsites_find(e, s->value, s->size, flags[f], &v0, &n0, w0, sizeof(w0));
			int r1 = qp_callsites__find(whole, s->value, s->size, flags[f], &v1, &n1, w1,
						    sizeof(w1));
			int r2 = qp_callsites__find(one, s->value, s->size, flags[f], &v2, &n2, w2, sizeof(w2));

			check_same(s->name, r1, w1, v1, n1, r0, w0, v0, n0);
			check_same(s->name, r2, w2, v2, n2, r0, w0, v0, n0);
			*ns += n0;
			free(v0);
			free(v1);
			free(v2);
		}
		qp_callsites__free(one);
	}
	qp_callsites__free(whole);
}

static void test_index(void)
{
	struct qp_elf *e = build("pie2", prog_pie, "-fPIE -pie");
	struct qp_error err = { 0 };
	struct qp_callsites *x = NULL;
	struct qp_callsite *v;
	const struct qp_elf_sym *f;
	uint64_t want;
	char why[300];
	size_t n, nf, ns;

	if (!e)
		return;
	check_index(e, 1, &nf, &ns);
	CHECK(nf >= 10);
	CHECK(ns >= 4); /* f's at least */
	/* a function outside the code */
	CHECK_INT(qp_callsites__new(e, NULL, 0, &x), 0);
	if (x) {
		CHECK_INT(qp_callsites__find(x, 0x10, 4, 0, &v, &n, why, sizeof(why)), -EINVAL);
		CHECK_CONTAINS(why, "is not in the code indexed");
		qp_callsites__free(x);
	}
	qp_elf__free(e);

	/* code that does not decode: strictly, a refusal naming it; else the
	 * sites before it, and those elsewhere */
	e = build("bad", prog_bad, "-fPIE -pie");
	if (!e)
		return;
	f = qp_elf__find_sym(e, "f");
	CHECK(f != NULL);
	if (!f)
		return;
	want = f->value;
	CHECK_INT(qp_callsites__new(e, &want, 1, &x), 0);
	if (x) {
		CHECK_INT(qp_callsites__find(x, f->value, f->size, 0, &v, &n, why, sizeof(why)), 0);
		CHECK_INT(n, 2); /* bad's first call, g's */
		free(v);
		CHECK_INT(qp_callsites__find(x, f->value, f->size, QP_CALLSITES_ALL, &v, &n, why,
					     sizeof(why)), -ENOTSUP);
		CHECK_CONTAINS(why, "cannot decode 'bad' to find its callers");
		qp_callsites__free(x);
	}
	check_index(e, 1, &nf, &ns);
	qp_elf__free(e);

	/* a larger binary: this test itself, with libdecode */
	CHECK_INT(qp_elf__open("/proc/self/exe", QP_ELF_NO_RELAS, &e, &err), 0);
	if (!e)
		return;
	check_index(e, 1, &nf, &ns);
	printf("index: %zu functions of this test compared, %zu sites\n", nf, ns);
	CHECK(nf >= 20);
	qp_elf__free(e);
}

int main(void)
{
	const char *tmp = getenv("QP_TMP");
	char cmd[PATH_MAX + 16];

	snprintf(tmpdir, sizeof(tmpdir), "%s/test_callsites.XXXXXX", tmp ? tmp : "/tmp");
	if (tmp)
		snprintf(cmd, sizeof(cmd), "mkdir -p '%s'", tmp), (void)!system(cmd);
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	test_pie();
	test_nopie();
	test_index();
	if (!check_failed) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
		(void)!system(cmd);
	}
	return check_report("test_callsites");
}
