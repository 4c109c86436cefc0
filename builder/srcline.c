// SPDX-License-Identifier: MIT
/*
 * Declaration file:line of a function or variable, for the build report.
 */
#include <dwarf.h>
#include <errno.h>
#include <limits.h>
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
	Dwarf_Addr bias;  /* module address minus DWARF address */
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

	s->tried = true;
	s->dwfl = dwfl_begin(&srcline_callbacks);
	if (!s->dwfl)
		return;
	mod = dwfl_report_offline(s->dwfl, "", s->path, -1);
	dwfl_report_end(s->dwfl, NULL, NULL);
	s->mod = mod;
	if (mod)
		s->dw = dwfl_module_getdwarf(mod, &s->bias);
}

/* @s opened on first use; false when there is no @s at all. */
static bool srcline_ready(struct qp_srcline *s)
{
	if (!s)
		return false;
	if (!s->tried)
		srcline_open(s);
	return true;
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
	if (!srcline_ready(s) || !s->dw)
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

/* The module address of function @func; 0 or -ENOENT. */
static int srcline_func_addr(struct qp_srcline *s, const char *func, GElf_Addr *out)
{
	int i, n;

	if (!srcline_ready(s) || !s->dw || !s->mod)
		return -ENOENT;
	n = dwfl_module_getsymtab(s->mod);
	for (i = 1; i < n; i++) {
		GElf_Sym sym;
		GElf_Addr addr;
		const char *name = dwfl_module_getsym_info(s->mod, i, &sym, &addr, NULL, NULL, NULL);

		if (name && GELF_ST_TYPE(sym.st_info) == STT_FUNC && !strcmp(name, func)) {
			*out = addr;
			return 0;
		}
	}
	return -ENOENT;
}

/*
 * Append component @c (@n bytes) of a path to @out (@len bytes so far,
 * @abs: it starts at "/"): "." is nothing, ".." takes the last component
 * back where there is one to take.  -ENAMETOOLONG when it does not fit.
 */
static int srcline_push(char *out, size_t size, size_t *len, bool abs, const char *c, size_t n)
{
	size_t start = abs ? 1 : 0;

	if (!n || (n == 1 && c[0] == '.'))
		return 0;
	if (n == 2 && c[0] == '.' && c[1] == '.') {
		char *slash;

		if (*len > start) {
			out[*len] = '\0';
			slash = strrchr(out + start, '/');
			if (strcmp(slash ? slash + 1 : out + start, "..")) {
				*len = slash ? (size_t)(slash - out) : start;
				return 0;
			}
		} else if (abs) {
			return 0; /* "/.." is "/" */
		}
	}
	if (*len + 1 + n >= size)
		return -ENAMETOOLONG;
	if (*len > start)
		out[(*len)++] = '/';
	memcpy(out + *len, c, n);
	*len += n;
	return 0;
}

/* Fold the components of @path into @out (see srcline_push()). */
static int srcline_fold(const char *path, bool abs, char *out, size_t size, size_t *len)
{
	while (*path) {
		size_t n = strcspn(path, "/");
		int ret = srcline_push(out, size, len, abs, path, n);

		if (ret)
			return ret;
		path += n;
		path += strspn(path, "/");
	}
	return 0;
}

int qp_srcline_path(const char *comp_dir, const char *name, char *out, size_t size)
{
	bool join = name[0] != '/' && comp_dir && comp_dir[0];
	bool abs = join ? comp_dir[0] == '/' : name[0] == '/';
	size_t len = 0;
	int ret = 0;

	if (size < 2)
		return -ENAMETOOLONG;
	if (abs)
		out[len++] = '/';
	if (join)
		ret = srcline_fold(comp_dir, abs, out, size, &len);
	if (!ret)
		ret = srcline_fold(name, abs, out, size, &len);
	if (ret)
		return ret;
	if (!len)
		out[len++] = '.';
	out[len] = '\0';
	return 0;
}

/* Is @path inside directory @dir, by name ("./src/eval.c" in "./src")? */
static bool srcline_under(const char *path, const char *dir)
{
	size_t n = strlen(dir);

	return n && !strncmp(path, dir, n) && (path[n] == '/' || dir[n - 1] == '/');
}

int qp_srcline__at(struct qp_srcline *s, const char *func, unsigned long offset,
		   char *file, size_t file_size, int *line)
{
	GElf_Addr addr;
	const char *src, *dir = NULL;
	Dwarf_Attribute at;
	Dwfl_Line *l;
	Dwarf_Die *cu;

	if (srcline_func_addr(s, func, &addr))
		return -ENOENT;
	l = dwfl_module_getsrc(s->mod, addr + offset);
	src = l ? dwfl_lineinfo(l, NULL, line, NULL, NULL, NULL) : NULL;
	if (!src)
		return -ENOENT;
	/*
	 * libdw joins a name to its line-table directory.  Directory 0 is
	 * the compilation directory itself (DWARF 5; libdw puts
	 * DW_AT_comp_dir there for DWARF 4): a name under it is whole, also
	 * when it is relative ("./src/eval.c" of a build in src/ mapping the
	 * tree to ".").  Other directories are relative to it, and libdw
	 * leaves them so (gcc's "../hw" for "../hw/x.c" compiled in build/).
	 */
	cu = src[0] == '/' ? NULL : dwfl_linecu(l);
	if (cu)
		dir = dwarf_formstring(dwarf_attr(cu, DW_AT_comp_dir, &at));
	if (dir && srcline_under(src, dir))
		dir = NULL;
	return qp_srcline_path(dir, src, file, file_size) ? -ENOENT : 0;
}

/* The call site of inlined subroutine @die: file (joined as the line
 * table's names are in qp_srcline__at()) and line; 0 or -ENOENT. */
static int srcline_call_site(Dwarf_Die *cu, Dwarf_Die *die, char *file, size_t file_size, int *line)
{
	Dwarf_Attribute at;
	Dwarf_Word fidx, lno;
	Dwarf_Files *files;
	const char *src, *dir;
	size_t nfiles;

	if (dwarf_formudata(dwarf_attr(die, DW_AT_call_file, &at), &fidx) ||
	    dwarf_formudata(dwarf_attr(die, DW_AT_call_line, &at), &lno) || lno > INT_MAX ||
	    dwarf_getsrcfiles(cu, &files, &nfiles) || fidx >= nfiles ||
	    !(src = dwarf_filesrc(files, fidx, NULL, NULL)))
		return -ENOENT;
	dir = src[0] == '/' ? NULL : dwarf_formstring(dwarf_attr(cu, DW_AT_comp_dir, &at));
	if (dir && srcline_under(src, dir))
		dir = NULL;
	*line = (int)lno;
	return qp_srcline_path(dir, src, file, file_size) ? -ENOENT : 0;
}

int qp_srcline__call_at(struct qp_srcline *s, const char *func, unsigned long offset, int depth,
			char *file, size_t file_size, int *line)
{
	Dwarf_Die *cu, *scopes = NULL;
	Dwarf_Addr bias;
	GElf_Addr addr;
	int n, i, ret = -ENOENT;

	if (depth < 1 || srcline_func_addr(s, func, &addr) ||
	    !(cu = dwfl_module_addrdie(s->mod, addr + offset, &bias)))
		return -ENOENT;
	/* innermost scope first */
	n = dwarf_getscopes(cu, addr + offset - bias, &scopes);
	for (i = 0; i < n; i++)
		if (dwarf_tag(&scopes[i]) == DW_TAG_inlined_subroutine && !--depth) {
			ret = srcline_call_site(cu, &scopes[i], file, file_size, line);
			break;
		}
	free(scopes);
	return ret;
}

/* The concrete DW_TAG_subprogram of the CU @cu that starts at @lowpc. */
static bool srcline_subprogram_at(Dwarf_Die *cu, Dwarf_Addr lowpc, Dwarf_Die *out)
{
	Dwarf_Addr pc;

	if (dwarf_child(cu, out) != 0)
		return false;
	do {
		if (dwarf_tag(out) == DW_TAG_subprogram && dwarf_lowpc(out, &pc) == 0 && pc == lowpc)
			return true;
	} while (dwarf_siblingof(out, out) == 0);
	return false;
}

/* "name" (received), "name=" (folded to a constant) or "name?" (neither:
 * dropped, or received and unused) for one formal parameter. */
static int srcline_param(Dwarf_Die *p, char *out, size_t size)
{
	Dwarf_Attribute at;
	Dwarf_Die origin;
	const char *n = dwarf_diename(p);
	const char *how = "?";

	if (!n && dwarf_attr(p, DW_AT_abstract_origin, &at) && dwarf_formref_die(&at, &origin))
		n = dwarf_diename(&origin);
	if (dwarf_hasattr(p, DW_AT_const_value))
		how = "=";
	else if (dwarf_hasattr(p, DW_AT_location))
		how = "";
	return snprintf(out, size, "%s%s,", n ? n : "", how);
}

int qp_srcline__params(struct qp_srcline *s, const char *func, char *out, size_t size)
{
	GElf_Addr addr;
	Dwarf_Addr bias;
	Dwarf_Die *cu, fn, p;
	size_t len = 0;

	out[0] = '\0';
	if (srcline_func_addr(s, func, &addr))
		return -ENOENT;
	cu = dwfl_module_addrdie(s->mod, addr, &bias);
	if (!cu || !srcline_subprogram_at(cu, addr - bias, &fn))
		return -ENOENT;
	if (dwarf_child(&fn, &p) != 0)
		return 0; /* no parameters */
	do {
		if (dwarf_tag(&p) != DW_TAG_formal_parameter)
			continue;
		len += (size_t)srcline_param(&p, out + len, size - len);
		if (len >= size)
			return -ENAMETOOLONG;
	} while (dwarf_siblingof(&p, &p) == 0);
	if (len)
		out[len - 1] = '\0'; /* the last comma */
	return 0;
}

/* The name of compile unit @cu into @out; 0, or -ENOENT. */
static int srcline_unit_name(Dwarf_Die *cu, char *out, size_t size)
{
	const char *n = cu ? dwarf_diename(cu) : NULL;

	if (!n)
		return -ENOENT;
	snprintf(out, size, "%s", n);
	return 0;
}

/* The object as a libdwfl module, opened on first use; NULL without one. */
static Dwfl_Module *srcline_module(struct qp_srcline *s)
{
	return srcline_ready(s) ? s->mod : NULL;
}

int qp_srcline__cu_name(struct qp_srcline *s, unsigned long addr, char *out, size_t size)
{
	Dwfl_Module *mod = srcline_module(s);
	Dwarf_Addr bias;

	out[0] = '\0';
	return mod ? srcline_unit_name(dwfl_module_addrdie(mod, addr + s->bias, &bias), out, size) :
		     -ENOENT;
}

/* Does a DW_TAG_variable among @parent's children (and those of its
 * functions: function-scope statics) live at DWARF address @addr? */
static bool srcline_var_at(Dwarf_Die *parent, Dwarf_Addr addr)
{
	Dwarf_Die die;

	if (dwarf_child(parent, &die) != 0)
		return false;
	do {
		int tag = dwarf_tag(&die);
		Dwarf_Attribute at;
		Dwarf_Op *ops;
		size_t nops;

		if (tag == DW_TAG_variable && dwarf_attr(&die, DW_AT_location, &at) &&
		    dwarf_getlocation(&at, &ops, &nops) == 0 && nops == 1 &&
		    ops[0].atom == DW_OP_addr && ops[0].number == addr)
			return true;
		if ((tag == DW_TAG_subprogram || tag == DW_TAG_lexical_block) &&
		    srcline_var_at(&die, addr))
			return true;
	} while (dwarf_siblingof(&die, &die) == 0);
	return false;
}

int qp_srcline__var_cu_name(struct qp_srcline *s, unsigned long addr, char *out, size_t size)
{
	Dwarf_Off off = 0, next;
	size_t hsize;

	out[0] = '\0';
	if (!srcline_ready(s) || !s->dw)
		return -ENOENT;
	while (dwarf_nextcu(s->dw, off, &next, &hsize, NULL, NULL, NULL) == 0) {
		Dwarf_Die cu;

		if (dwarf_offdie(s->dw, off + hsize, &cu) && srcline_var_at(&cu, addr))
			return srcline_unit_name(&cu, out, size);
		off = next;
	}
	return -ENOENT;
}

int qp_srcline__unit_name(struct qp_srcline *s, char *out, size_t size)
{
	Dwfl_Module *mod = srcline_module(s);
	Dwarf_Addr bias;

	out[0] = '\0';
	return mod ? srcline_unit_name(dwfl_module_nextcu(mod, NULL, &bias), out, size) : -ENOENT;
}

/* "a@0:4,b@8:8," for the members of a struct or union, however many
 * (a server's state struct has hundreds): a new string, or NULL when out
 * of memory. */
static char *srcline_members(Dwarf_Die *type)
{
	Dwarf_Die m;
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);

	if (!f)
		return NULL;
	if (dwarf_child(type, &m) == 0) {
		do {
			Dwarf_Attribute at;
			Dwarf_Word off = 0;
			Dwarf_Die mt;
			int bits = -1;
			Dwarf_Word msize = 0;
			const char *n;

			if (dwarf_tag(&m) != DW_TAG_member)
				continue;
			n = dwarf_diename(&m);
			if (dwarf_attr(&m, DW_AT_data_member_location, &at))
				dwarf_formudata(&at, &off);
			if (dwarf_attr(&m, DW_AT_data_bit_offset, &at)) {
				Dwarf_Word b = 0;

				dwarf_formudata(&at, &b);
				bits = (int)b;
			}
			if (dwarf_attr(&m, DW_AT_type, &at) && dwarf_formref_die(&at, &mt)) {
				int sz = dwarf_bytesize(&mt);

				/* through typedefs and qualifiers to something with a size */
				while (sz < 0 && dwarf_attr(&mt, DW_AT_type, &at) &&
				       dwarf_formref_die(&at, &mt))
					sz = dwarf_bytesize(&mt);
				msize = sz < 0 ? 0 : (Dwarf_Word)sz;
			}
			fprintf(f, "%s@%llu:%llu", n ? n : "", (unsigned long long)off,
				(unsigned long long)msize);
			if (bits >= 0)
				fprintf(f, "/%d", bits);
			fputc(',', f);
		} while (dwarf_siblingof(&m, &m) == 0);
	}
	if (fclose(f)) {
		free(out);
		return NULL;
	}
	return out;
}

struct srcline_walk_structs {
	int (*fn)(const char *name, unsigned long size, const char *members, const char *where,
		  void *arg);
	void *arg;
};

static int srcline_one_struct(struct srcline_walk_structs *w, Dwarf_Die *type, const char *name,
			      Dwarf_Die *decl)
{
	char *members, where[512] = "";
	const char *file = dwarf_decl_file(decl);
	int size = dwarf_bytesize(type), line = 0, ret;

	if (size < 0 || dwarf_hasattr(type, DW_AT_declaration))
		return 0; /* incomplete: declared, not defined here */
	members = srcline_members(type);
	if (!members)
		return -ENOMEM;
	if (file && dwarf_decl_line(decl, &line) == 0)
		snprintf(where, sizeof(where), "%s:%d", file, line);
	ret = w->fn(name, (unsigned long)size, members, where, w->arg);
	free(members);
	return ret;
}

/* Structs declared at file scope (one declared inside a function is local
 * to it: nothing outside sees its layout). */
static int srcline_walk_structs(struct srcline_walk_structs *w, Dwarf_Die *parent)
{
	Dwarf_Die die;
	int ret = 0;

	if (dwarf_child(parent, &die) != 0)
		return 0;
	do {
		int tag = dwarf_tag(&die);
		const char *n = dwarf_diename(&die);

		if ((tag == DW_TAG_structure_type || tag == DW_TAG_union_type) && n) {
			ret = srcline_one_struct(w, &die, n, &die);
		} else if (tag == DW_TAG_typedef && n) {
			Dwarf_Attribute at;
			Dwarf_Die t;

			if (dwarf_attr(&die, DW_AT_type, &at) && dwarf_formref_die(&at, &t) &&
			    (dwarf_tag(&t) == DW_TAG_structure_type || dwarf_tag(&t) == DW_TAG_union_type) &&
			    !dwarf_diename(&t))
				ret = srcline_one_struct(w, &t, n, &die);
		}
	} while (!ret && dwarf_siblingof(&die, &die) == 0);
	return ret;
}

int qp_srcline__for_each_struct(struct qp_srcline *s,
				int (*fn)(const char *name, unsigned long size, const char *members,
					  const char *where, void *arg),
				void *arg)
{
	struct srcline_walk_structs w = { .fn = fn, .arg = arg };
	Dwarf_Off off = 0, next;
	size_t hsize;
	int ret = 0;

	if (!srcline_ready(s) || !s->dw)
		return 0;
	while (!ret && dwarf_nextcu(s->dw, off, &next, &hsize, NULL, NULL, NULL) == 0) {
		Dwarf_Die cu;

		if (dwarf_offdie(s->dw, off + hsize, &cu))
			ret = srcline_walk_structs(&w, &cu);
		off = next;
	}
	return ret;
}

/* The name of @die, also through its abstract origin (inlined code, the
 * concrete copy of a function that is inlined elsewhere too). */
static const char *srcline_origin_name(Dwarf_Die *die)
{
	Dwarf_Attribute a;

	return dwarf_formstring(dwarf_attr_integrate(die, DW_AT_name, &a));
}

/* @fn for every function inlined below @parent, at any depth (inside
 * lexical blocks and inside other inlined code). */
static int srcline_inlined_below(Dwarf_Die *parent, int (*fn)(const char *name, void *arg),
				 void *arg)
{
	Dwarf_Die die;
	int ret;

	if (dwarf_child(parent, &die) != 0)
		return 0;
	do {
		int tag = dwarf_tag(&die);
		const char *n;

		if (tag == DW_TAG_inlined_subroutine && (n = srcline_origin_name(&die)) &&
		    (ret = fn(n, arg)))
			return ret;
		if (tag == DW_TAG_inlined_subroutine || tag == DW_TAG_lexical_block) {
			ret = srcline_inlined_below(&die, fn, arg);
			if (ret)
				return ret;
		}
	} while (dwarf_siblingof(&die, &die) == 0);
	return 0;
}

int qp_srcline__for_each_inlined(struct qp_srcline *s, const char *func,
				 int (*fn)(const char *name, void *arg), void *arg)
{
	Dwarf_Off off = 0, next;
	size_t hsize;

	if (!srcline_ready(s) || !s->dw)
		return -ENOENT;
	while (dwarf_nextcu(s->dw, off, &next, &hsize, NULL, NULL, NULL) == 0) {
		Dwarf_Off cu_off = off;
		Dwarf_Die cu, die;

		off = next;
		if (!dwarf_offdie(s->dw, cu_off + hsize, &cu) || dwarf_child(&cu, &die) != 0)
			continue;
		do {
			const char *n;

			/* the function's code: a subprogram with an address */
			if (dwarf_tag(&die) != DW_TAG_subprogram ||
			    !(dwarf_hasattr(&die, DW_AT_low_pc) || dwarf_hasattr(&die, DW_AT_ranges)))
				continue;
			n = srcline_origin_name(&die);
			if (n && !strcmp(n, func))
				return srcline_inlined_below(&die, fn, arg);
		} while (dwarf_siblingof(&die, &die) == 0);
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
