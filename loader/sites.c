// SPDX-License-Identifier: MIT
/*
 * Rewriting the direct call sites of replaced functions: the call, jmp and
 * jcc rel32 instructions of the target object whose destination is an old
 * function are made to reach the new one.  For a function shorter than the
 * jump with no room after it (QP_R_CALLS) they are the only way in, so
 * every other way must be known to be absent (the builder checked, and the
 * loader checks again on the mapped file: callsites.h); with
 * qp_load_opts.rewrite_calls they spare patched calls the detour through
 * the old function's jump, which stays for every other caller.
 *
 * The sites are found in the file of the object (the same bytes as the
 * process, by build-id), then each is read back from the process: it must
 * hold the file's instruction, reaching the old function or the new one of
 * a patch applied before.  They are written with every thread stopped,
 * each read again first, and recorded (saved and written bytes) so that an
 * undo puts them back.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ld.h"
#include "qpatch/callsites.h"
#include "qpatch/decode.h"

#define LD_MAX_SCAN (64ull << 20) /* most bytes of an applied patch scanned */

/* The destination of the rel32 branch @b (@len bytes at @addr). */
static uint64_t site_dest(const uint8_t *b, uint8_t len, uint8_t rel_off, uint64_t addr)
{
	int32_t rel;

	memcpy(&rel, b + rel_off, 4);
	return addr + len + (uint64_t)(int64_t)rel;
}

/* Did an applied patch rewrite the sites of the function at @old?  Then
 * this one must too (they reach that patch's code). */
static bool site_prior(const struct ld_ctx *c, uint64_t old)
{
	size_t i, k;

	for (i = 0; i < c->napplied; i++)
		for (k = 0; c->applied[i].rec.state == QP_REC_APPLIED && k < c->applied[i].nsites; k++)
			if (c->applied[i].funcs[c->applied[i].sites[k].func].old_addr == old)
				return true;
	return false;
}

/* May a site reaching @dest be taken over for the function at @old: it
 * reaches the old function or the new one of an applied patch of it. */
static bool site_dest_ok(const struct ld_ctx *c, uint64_t old, uint64_t dest)
{
	size_t i, k;

	if (dest == old)
		return true;
	for (i = 0; i < c->napplied; i++)
		for (k = 0; c->applied[i].rec.state == QP_REC_APPLIED && k < c->applied[i].rec.nfuncs; k++)
			if (c->applied[i].funcs[k].old_addr == old && c->applied[i].funcs[k].new_addr == dest)
				return true;
	return false;
}

/* Does [@a, @a + @len) overlap a jump of this patch or an applied one?
 * Those bytes change anyway: the caller there is replaced. */
static bool site_under_jump(const struct ld_ctx *c, uint64_t a, uint8_t len)
{
	size_t i, k;

	for (i = 0; i < c->nfuncs; i++)
		if (c->funcs[i].rec.len && a < c->funcs[i].rec.site + c->funcs[i].rec.len &&
		    c->funcs[i].rec.site < a + len)
			return true;
	for (i = 0; i < c->napplied; i++)
		for (k = 0; c->applied[i].rec.state == QP_REC_APPLIED && k < c->applied[i].rec.nfuncs; k++) {
			const struct qp_record_func *f = &c->applied[i].funcs[k];

			if (f->len && a < f->site + f->len && f->site < a + len)
				return true;
		}
	return false;
}

/* The file's bytes at link-time address @addr, NULL when not in a section. */
static const uint8_t *site_file_bytes(const struct qp_elf *e, uint64_t addr, size_t len)
{
	const struct qp_elf_sec *s;

	qp_elf_for_each_sec(e, s)
		if (s->data && (s->shdr.sh_flags & SHF_EXECINSTR) && addr >= s->shdr.sh_addr &&
		    len <= s->size && addr - s->shdr.sh_addr <= s->size - len)
			return s->data + (addr - s->shdr.sh_addr);
	return NULL;
}

static int site_add(struct ld_ctx *c, size_t fi, const struct qp_elf *e,
		    const struct qp_callsite *cs, struct qp_error *err)
{
	const struct ld_func *f = &c->funcs[fi];
	const uint8_t *file = site_file_bytes(e, cs->addr, cs->len);
	uint64_t at = c->bias + cs->addr;
	struct ld_site *s, *nv;
	uint8_t now[QP_CALLSITE_MAX_LEN];
	int ret;

	if (site_under_jump(c, at, cs->len))
		return 0;
	if (!file || cs->len > sizeof(now) || cs->rel_off + 4 > cs->len)
		return qp_seterr(err, QP_ETARGET, "call site at 0x%" PRIx64 " of '%s' is not in the file of the target",
				 at, f->rec.name);
	ret = qp_proc__read(&c->proc, at, now, cs->len, err);
	if (ret)
		return ret;
	if (memcmp(now, file, cs->rel_off) || memcmp(now + cs->rel_off + 4, file + cs->rel_off + 4,
						      cs->len - cs->rel_off - 4u) ||
	    !site_dest_ok(c, f->rec.old_addr, site_dest(now, cs->len, cs->rel_off, at)))
		return qp_seterr(err, QP_ETARGET,
				 "the call site at 0x%" PRIx64 " of '%s' does not hold the expected instruction in process %d",
				 at, f->rec.name, (int)c->pid);
	nv = realloc(c->sites, (c->nsites + 1) * sizeof(*c->sites));
	if (!nv)
		return qp_seterr(err, -ENOMEM, "out of memory");
	c->sites = nv;
	s = &c->sites[c->nsites++];
	memset(s, 0, sizeof(*s));
	s->rec.addr = at;
	s->rec.func = (uint32_t)fi;
	s->rec.len = cs->len;
	s->rel_off = cs->rel_off;
	memcpy(s->rec.saved, now, cs->len);
	return 0;
}

/*
 * For a function reached through its call sites only: can an applied
 * patch reach it otherwise?  Its code was not decoded, so look at every
 * 4-byte window of its mapping for a rel32 to the function, and every
 * 8-byte one for its address (its stubs and GOT).
 */
static int site_scan_applied(struct ld_ctx *c, const struct ld_func *f, struct qp_error *err)
{
	size_t i, k;
	int ret = 0;

	for (i = 0; !ret && i < c->napplied; i++) {
		const struct qp_applied *a = &c->applied[i];
		/* after its record (which names the function): ld_record_read
		 * checked that the record lies inside region_size */
		uint64_t rec = sizeof(struct qp_record) + a->rec.nfuncs * sizeof(struct qp_record_func) +
			       (a->so ? sizeof(struct qp_record_so) : 0) +
			       (a->nsites ? sizeof(struct qp_record_sites) +
						    a->nsites * sizeof(struct qp_record_site) : 0);
		uint64_t start = a->region + rec, size;
		uint8_t *buf;

		if (a->rec.state != QP_REC_APPLIED || a->rec.region_size <= rec)
			continue;
		size = a->rec.region_size - rec;
		if (size > LD_MAX_SCAN)
			size = LD_MAX_SCAN;
		buf = malloc(size);
		if (!buf)
			return qp_seterr(err, -ENOMEM, "out of memory");
		ret = qp_proc__read(&c->proc, start, buf, size, err);
		for (k = 0; !ret && k + 4 <= size; k++) {
			int32_t rel;
			uint64_t v = 0;

			memcpy(&rel, buf + k, 4);
			if (k + 8 <= size)
				memcpy(&v, buf + k, 8);
			if (start + k + 4 + (uint64_t)(int64_t)rel == f->rec.old_addr || v == f->rec.old_addr)
				ret = qp_seterr(err, QP_EUNSUPP,
						"cannot redirect '%s' through its call sites: patch '%s' may reach it directly (at 0x%" PRIx64 ")",
						f->rec.name, a->rec.id, start + k);
		}
		free(buf);
	}
	return ret;
}

int ld_sites_find(struct ld_ctx *c, struct qp_error *err)
{
	bool all = c->opts && c->opts->rewrite_calls;
	struct qp_elf *e = NULL;
	char path[600], why[300];
	size_t i, k;
	int ret = 0;

	for (i = 0; !ret && i < c->nfuncs; i++) {
		struct ld_func *f = &c->funcs[i];
		struct qp_callsite *v = NULL;
		bool prior = site_prior(c, f->rec.old_addr);
		size_t n = 0;

		if (!f->calls && !all && !prior)
			continue;
		if (f->calls && (ret = site_scan_applied(c, f, err)))
			break;
		if (!e) {
			ld_map_file(c->pid, c->target, path, sizeof(path));
			ret = qp_elf__open(path, QP_ELF_NO_RELAS, &e, err);
			if (ret)
				break;
		}
		ret = qp_callsites_find(e, f->rec.old_addr - c->bias, f->rec.old_size,
					f->calls ? QP_CALLSITES_ALL : 0, &v, &n, why, sizeof(why));
		if ((ret == -ENOTSUP || ret == -E2BIG) && !f->calls && !prior) {
			ret = 0; /* the jump serves every caller */
			continue;
		}
		if (ret)
			ret = qp_seterr(err, ret == -ENOMEM ? -ENOMEM : QP_EUNSUPP,
					"cannot redirect '%s' through its call sites: %s", f->rec.name, why);
		for (k = 0; !ret && k < n; k++)
			ret = site_add(c, i, e, &v[k], err);
		free(v);
	}
	qp_elf__free(e);
	return ret;
}

int ld_sites_encode(struct ld_ctx *c, struct qp_error *err)
{
	size_t i;

	for (i = 0; i < c->nsites; i++) {
		struct ld_site *s = &c->sites[i];
		const struct qp_record_func *f = &c->funcs[s->rec.func].rec;
		int64_t d = (int64_t)(f->new_addr - (s->rec.addr + s->rec.len));

		if (d != (int32_t)d)
			return qp_seterr(err, -ERANGE,
					 "the call site at 0x%" PRIx64 " of '%s' cannot reach the patch at 0x%" PRIx64,
					 s->rec.addr, f->name, f->new_addr);
		memcpy(s->rec.written, s->rec.saved, sizeof(s->rec.written));
		memcpy(s->rec.written + s->rel_off, &(int32_t){ (int32_t)d }, 4);
	}
	return 0;
}

int ld_sites_write(struct ld_ctx *c, struct qp_error *err)
{
	size_t i;
	int ret;

	for (i = 0; i < c->nsites; i++) {
		struct ld_site *s = &c->sites[i];
		uint8_t now[QP_CALLSITE_MAX_LEN];

		ret = qp_proc__read(&c->proc, s->rec.addr, now, s->rec.len, err);
		if (ret)
			return ret;
		if (memcmp(now, s->rec.saved, s->rec.len))
			return qp_seterr(err, QP_ETARGET, "the call site at 0x%" PRIx64 " of '%s' changed in process %d while preparing",
					 s->rec.addr, c->funcs[s->rec.func].rec.name, (int)c->pid);
		s->written = true; /* a write that fails may have changed part of it */
		ret = qp_proc__write(&c->proc, s->rec.addr, s->rec.written, s->rec.len, err);
		if (ret)
			return ret;
		if (!i && (ret = ld_fault(c, QP_FAULT_FIRST_SITE, err)))
			return ret;
	}
	return 0;
}

void ld_sites_unwrite(struct ld_ctx *c)
{
	size_t i;

	for (i = c->nsites; i-- > 0;)
		if (c->sites[i].written) {
			qp_proc__write(&c->proc, c->sites[i].rec.addr, c->sites[i].rec.saved,
				       c->sites[i].rec.len, NULL);
			c->sites[i].written = false;
		}
}

bool ld_sites_busy(struct ld_ctx *c, char *why, size_t size)
{
	size_t i, k;

	for (i = 0; i < c->proc.nthreads; i++) {
		uint64_t pc = c->proc.threads[i].regs.rip;

		if (c->proc.threads[i].gone)
			continue;
		for (k = 0; k < c->nsites; k++)
			if (pc > c->sites[k].rec.addr && pc < c->sites[k].rec.addr + c->sites[k].rec.len) {
				snprintf(why, size, "thread %d is inside the call site at 0x%" PRIx64,
					 (int)c->proc.threads[i].tid, c->sites[k].rec.addr);
				c->busy_thread = i;
				return true;
			}
	}
	return false;
}

int ld_sites_restore(struct ld_ctx *c, struct qp_error *err)
{
	uint8_t now[QP_CALLSITE_MAX_LEN];
	size_t i;
	int ret = 0;

	for (i = 0; i < c->nsites; i++) {
		const struct qp_record_site *v = &c->sites[i].rec;

		if (v->len < 5 || v->len > sizeof(now))
			return qp_seterr(err, -EINVAL, "bad call site record at 0x%" PRIx64, v->addr);
		ret = qp_proc__read(&c->proc, v->addr, now, v->len, err);
		if (ret)
			return ret;
		if (memcmp(now, v->written, v->len))
			return qp_seterr(err, QP_ETARGET,
					 "the call site at 0x%" PRIx64 " no longer reaches this patch; not undoing",
					 v->addr);
	}
	for (i = c->nsites; i-- > 0;) {
		struct ld_site *s = &c->sites[i];

		s->written = true; /* a failed write may leave part of it: rewritten below */
		ret = qp_proc__write(&c->proc, s->rec.addr, s->rec.saved, s->rec.len, err);
		if (ret)
			break;
	}
	if (ret) /* as it was: every site reaches the patch */
		for (i = 0; i < c->nsites; i++)
			if (c->sites[i].written)
				qp_proc__write(&c->proc, c->sites[i].rec.addr, c->sites[i].rec.written,
					       c->sites[i].rec.len, NULL);
	return ret;
}
