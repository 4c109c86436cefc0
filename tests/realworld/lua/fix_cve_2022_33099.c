/*
 * CVE-2022-33099 of lua 5.4.4 fixed by hand, as a library for
 * "qpatch-load --so" (tests/realworld/lua-so.sh): luaG_runerror pops the
 * message it formatted before raising the error, as upstream's "Save
 * stack space while handling errors" does (its ldebug.c half; the lvm.c
 * half, in luaV_concat, is not written again here).
 *
 * Built against the lua tree's own headers:
 *	cc -shared -fPIC -O2 -DLUA_COMPAT_5_3 -DLUA_USE_LINUX -I SRC -o fix.so fix_cve_2022_33099.c
 * The functions the new code calls are internal to the interpreter
 * (LUAI_FUNC: hidden, not in its .dynsym), so it reaches them through
 * pointers the loader fills in (QPATCH_SYM).
 */
#include <stdarg.h>

#include "lua.h"
#include "ldebug.h"
#include "lobject.h"
#include "lstate.h"

#include <qpatch/so.h>

QPATCH_TARGET("lua");

static void (*step_p)(lua_State *L);
static const char *(*pushvfstring_p)(lua_State *L, const char *fmt, va_list argp);
static const char *(*addinfo_p)(lua_State *L, const char *msg, TString *src, int line);
static void (*errormsg_p)(lua_State *L);
static int (*getfuncline_p)(const Proto *f, int pc);
QPATCH_SYM(step_p, "", "luaC_step");
QPATCH_SYM(pushvfstring_p, "", "luaO_pushvfstring");
QPATCH_SYM(addinfo_p, "", "luaG_addinfo");
QPATCH_SYM(errormsg_p, "", "luaG_errormsg");
QPATCH_SYM(getfuncline_p, "", "luaG_getfuncline");

/* ldebug.c's static getcurrentline(), inlined there */
static int current_line(CallInfo *ci)
{
	const Proto *p = ci_func(ci)->p;

	return getfuncline_p(p, pcRel(ci->u.l.savedpc, p));
}

static void fixed_runerror(lua_State *L, const char *fmt, ...)
{
	CallInfo *ci = L->ci;
	const char *msg;
	va_list argp;

	if (G(L)->GCdebt > 0) /* luaC_checkGC(L) */
		step_p(L);
	va_start(argp, fmt);
	msg = pushvfstring_p(L, fmt, argp); /* format message */
	va_end(argp);
	if (isLua(ci)) { /* if Lua function, add source:line information */
		addinfo_p(L, msg, ci_func(ci)->p->source, current_line(ci));
		setobjs2s(L, L->top - 2, L->top - 1); /* remove 'msg' from the stack */
		L->top--;
	}
	errormsg_p(L);
	for (;;) /* errormsg_p does not return */
		;
}
QPATCH_REPLACE(luaG_runerror, fixed_runerror);
