// SPDX-License-Identifier: MIT
/*
 * Declaration file:line of a function or variable, for the build report.
 */
#include <dwarf.h>
#include <errno.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "srcline.h"

struct qp_srcline {
	char *path;       /* object file */
	Dwfl *dwfl;       /* libdwfl session, NULL until first use */
	Dwarf *dw;        /* its DWARF, NULL if none */
	Dwfl_Module *mod; /* the object as a libdwfl module */
	bool tried;       /* opening was attempted */
};

static const Dwfl_Callbacks srcline_callbacks = {
	.find_debuginfo = dwfl_standard_find_debuginfo,
	.section_address = dwfl_offline_section_address,
};

struct qp_srcline *qp_srcline__new(const char *obj_path)
{
	struct qp_srcline *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->path = strdup(obj_path);
	if (!s->path) {
		free(s);
		return NULL;
	}
	return s;
}

static void srcline_open(struct qp_srcline *s)
{
	Dwfl_Module *mod;
	Dwarf_Addr bias;

	s->tried = true;
	s->dwfl = dwfl_begin(&srcline_callbacks);
	if (!s->dwfl)
		return;
	mod = dwfl_report_offline(s->dwfl, "", s->path, -1);
	dwfl_report_end(s->dwfl, NULL, NULL);
	s->mod = mod;
	if (mod)
		s->dw = dwfl_module_getdwarf(mod, &bias);
}

/* Depth-first search of @die's children for a named declaration. */
static bool srcline_walk(Dwarf_Die *parent, const char *name, char *out, size_t size)
{
	Dwarf_Die die;

	if (dwarf_child(parent, &die) != 0)
		return false;
	do {
		int tag = dwarf_tag(&die);
		const char *n = dwarf_diename(&die);
		int line;

		if ((tag == DW_TAG_subprogram || tag == DW_TAG_variable) && n &&
		    !strcmp(n, name) && dwarf_decl_line(&die, &line) == 0) {
			const char *file = dwarf_decl_file(&die);

			snprintf(out, size, "%s:%d", file ? file : "?", line);
			return true;
		}
		if (tag == DW_TAG_subprogram && srcline_walk(&die, name, out, size))
			return true; /* static locals live inside their function */
	} while (dwarf_siblingof(&die, &die) == 0);
	return false;
}

void qp_srcline__find(struct qp_srcline *s, const char *name, char *out, size_t size)
{
	Dwarf_Off off = 0, next;
	size_t hsize;
	char base[256];
	const char *dot;

	out[0] = '\0';
	if (!s)
		return;
	if (!s->tried)
		srcline_open(s);
	if (!s->dw)
		return;
	/* numbered statics ("count.1") are declared as "count" */
	dot = strchr(name, '.');
	snprintf(base, sizeof(base), "%.*s", dot ? (int)(dot - name) : (int)strlen(name), name);
	while (dwarf_nextcu(s->dw, off, &next, &hsize, NULL, NULL, NULL) == 0) {
		Dwarf_Die cu;

		if (dwarf_offdie(s->dw, off + hsize, &cu) && srcline_walk(&cu, base, out, size))
			return;
		off = next;
	}
}

int qp_srcline__at(struct qp_srcline *s, const char *func, unsigned long offset,
		   char *file, size_t file_size, int *line)
{
	int i, n;

	if (!s)
		return -ENOENT;
	if (!s->tried)
		srcline_open(s);
	if (!s->dw || !s->mod)
		return -ENOENT;
	n = dwfl_module_getsymtab(s->mod);
	for (i = 1; i < n; i++) {
		GElf_Sym sym;
		GElf_Addr addr;
		const char *name = dwfl_module_getsym_info(s->mod, i, &sym, &addr, NULL, NULL, NULL);
		const char *src;
		Dwfl_Line *l;

		if (!name || GELF_ST_TYPE(sym.st_info) != STT_FUNC || strcmp(name, func))
			continue;
		l = dwfl_module_getsrc(s->mod, addr + offset);
		src = l ? dwfl_lineinfo(l, NULL, line, NULL, NULL, NULL) : NULL;
		if (!src)
			return -ENOENT;
		snprintf(file, file_size, "%s", src);
		return 0;
	}
	return -ENOENT;
}

void qp_srcline__free(struct qp_srcline *s)
{
	if (!s)
		return;
	if (s->dwfl)
		dwfl_end(s->dwfl);
	free(s->path);
	free(s);
}
