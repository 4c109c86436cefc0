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
 * process, by build-id), its code decoded once for every function (only
 * the functions that may reach one, unless a strict search needs all),
 * then read back from the process, all at once: each must hold the file's
 * instruction, reaching the old function or the new one of a patch
 * applied before.  The pages that hold them are made private before the
 * stop; with every thread stopped they are read again and written, a run
 * of sites whose pages touch at a time (site_batch), and recorded (saved
 * and written bytes) so that an undo puts them back.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

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

/*
 * The sites @v[@n] of function @fi, found in the file @e: each read from
 * the process (all at once) must hold the file's instruction, reaching the
 * old function or the new one of a patch applied before.  Those under a
 * jump are left out (the jump replaces their caller).
 */
static int site_add(struct ld_ctx *c, size_t fi, const struct qp_elf *e,
		    const struct qp_callsite *v, size_t n, struct qp_error *err)
{
	const struct ld_func *f = &c->funcs[fi];
	struct iovec *remote = NULL, *local = NULL;
	size_t first = c->nsites, i, k;
	struct ld_site *nv;
	int ret = 0;

	if (!n)
		return 0;
	nv = realloc(c->sites, (c->nsites + n) * sizeof(*c->sites));
	remote = calloc(n, sizeof(*remote));
	local = calloc(n, sizeof(*local));
	if (nv)
		c->sites = nv;
	if (!nv || !remote || !local) {
		free(remote);
		free(local);
		return qp_seterr(err, -ENOMEM, "out of memory");
	}
	for (i = 0, k = first; i < n; i++) {
		struct ld_site *s = &c->sites[k];

		if (site_under_jump(c, c->bias + v[i].addr, v[i].len))
			continue;
		memset(s, 0, sizeof(*s));
		s->rec.addr = c->bias + v[i].addr;
		s->rec.func = (uint32_t)fi;
		s->rec.len = v[i].len > sizeof(s->rec.saved) ? 0 : v[i].len;
		s->rel_off = v[i].rel_off;
		remote[k - first] = (struct iovec){ (void *)(uintptr_t)s->rec.addr, s->rec.len };
		local[k - first] = (struct iovec){ s->rec.saved, s->rec.len };
		k++;
	}
	for (i = first; i < k; i++) { /* the file's instruction, first */
		const struct ld_site *s = &c->sites[i];
		const uint8_t *file = site_file_bytes(e, s->rec.addr - c->bias, s->rec.len);

		if (!file || !s->rec.len || s->rel_off + 4 > s->rec.len) {
			ret = qp_seterr(err, QP_ETARGET, "call site at 0x%" PRIx64 " of '%s' is not in the file of the target",
					s->rec.addr, f->rec.name);
			break;
		}
	}
	if (!ret)
		ret = qp_proc__readv(&c->proc, remote, local, k - first, err);
	for (i = first; !ret && i < k; i++) {
		const struct ld_site *s = &c->sites[i];
		const uint8_t *file = site_file_bytes(e, s->rec.addr - c->bias, s->rec.len);
		const uint8_t *now = s->rec.saved;
		unsigned tail = s->rec.len - s->rel_off - 4u;

		if (memcmp(now, file, s->rel_off) || memcmp(now + s->rel_off + 4, file + s->rel_off + 4, tail) ||
		    !site_dest_ok(c, f->rec.old_addr, site_dest(now, s->rec.len, s->rel_off, s->rec.addr)))
			ret = qp_seterr(err, QP_ETARGET,
					"the call site at 0x%" PRIx64 " of '%s' does not hold the expected instruction in process %d",
					s->rec.addr, f->rec.name, (int)c->pid);
	}
	free(remote);
	free(local);
	if (!ret)
		c->nsites = k;
	return ret;
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

static int site_addr_cmp(const void *a, const void *b)
{
	const struct ld_site *x = a, *y = b;

	return x->rec.addr < y->rec.addr ? -1 : x->rec.addr > y->rec.addr;
}

/* The sites in address order (as the window writes them); two that
 * overlap (instructions decoded from two overlapping symbols) cannot both
 * be rewritten. */
static int site_sort(struct ld_ctx *c, struct qp_error *err)
{
	size_t i;

	if (c->nsites > 1)
		qsort(c->sites, c->nsites, sizeof(*c->sites), site_addr_cmp);
	for (i = 1; i < c->nsites; i++)
		if (c->sites[i].rec.addr < c->sites[i - 1].rec.addr + c->sites[i - 1].rec.len)
			return qp_seterr(err, QP_EUNSUPP,
					 "cannot redirect '%s' through its call sites: the call sites at 0x%" PRIx64
					 " and 0x%" PRIx64 " overlap",
					 c->funcs[c->sites[i].rec.func].rec.name, c->sites[i - 1].rec.addr,
					 c->sites[i].rec.addr);
	return 0;
}

int ld_sites_find(struct ld_ctx *c, struct qp_error *err)
{
	bool all = c->opts && c->opts->rewrite_calls;
	struct qp_callsites *x = NULL; /* the object's code, decoded once for every function */
	struct qp_elf *e = NULL;
	char path[600], why[300];
	uint64_t *want;
	size_t i, nwant = 0;
	int ret = 0;

	/* the functions asked about without QP_CALLSITES_ALL: the index need
	 * decode only the code that may reach them */
	want = malloc((c->nfuncs ? c->nfuncs : 1) * sizeof(*want));
	if (!want)
		return qp_seterr(err, -ENOMEM, "out of memory");
	for (i = 0; i < c->nfuncs; i++)
		if (!c->funcs[i].calls && (all || site_prior(c, c->funcs[i].rec.old_addr)))
			want[nwant++] = c->funcs[i].rec.old_addr - c->bias;

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
			if (!ret && qp_callsites__new(e, want, nwant, &x))
				ret = qp_seterr(err, -ENOMEM, "out of memory");
			if (ret)
				break;
		}
		ret = qp_callsites__find(x, f->rec.old_addr - c->bias, f->rec.old_size,
					 f->calls ? QP_CALLSITES_ALL : 0, &v, &n, why, sizeof(why));
		if ((ret == -ENOTSUP || ret == -E2BIG || ret == -EINVAL) && !f->calls && !prior) {
			ret = 0; /* the jump serves every caller */
			continue;
		}
		if (ret)
			ret = qp_seterr(err, ret == -ENOMEM ? -ENOMEM : QP_EUNSUPP,
					"cannot redirect '%s' through its call sites: %s", f->rec.name, why);
		if (!ret)
			ret = site_add(c, i, e, v, n, err);
		free(v);
	}
	if (!ret)
		ret = site_sort(c, err);
	qp_callsites__free(x);
	qp_elf__free(e);
	free(want);
	return ret;
}

/*
 * The first write to a page of text makes the process a private copy of
 * it (copy on write), which costs a microsecond or more a page: done in
 * the window, it would double the time every thread stays stopped.  So
 * each page that holds a site gets its copy now, while the threads run:
 * one byte of a site is written as it is (read just before; the bytes
 * are the same before and after, only the page is now the process's
 * own).  An apply refused later leaves those pages private, with the
 * same bytes.
 */
static int site_unshare(struct ld_ctx *c, struct qp_error *err)
{
	uint64_t last = 0;
	size_t i;
	int ret;

	for (i = 0; i < c->nsites; i++) { /* in address order (ld_sites_find) */
		uint64_t a = c->sites[i].rec.addr;
		uint8_t b;

		if (i && a / LD_PAGE == last)
			continue;
		last = a / LD_PAGE;
		ret = qp_proc__read(&c->proc, a, &b, 1, err);
		if (!ret)
			ret = qp_proc__write(&c->proc, a, &b, 1, err);
		if (ret)
			return ret;
	}
	return 0;
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
	return site_unshare(c, err);
}

/*
 * The window's reads and writes, batched.  Sites whose pages touch make a
 * run: the bytes from the first one's start to the last one's end, read
 * (every run with one process_vm_readv) and written back (one pwrite of
 * /proc/PID/mem each: process_vm_writev cannot write read-only text) with
 * the sites changed in it.  Every thread is stopped from the read to the
 * write, so the bytes between the sites go back as they were; and the
 * pages written are only those that hold a site (writing a page of text
 * makes the process a private copy of it).
 */
struct site_run {
	uint64_t start, end;   /* [start, end) in the process */
	uint8_t *buf;          /* its bytes (in site_batch.buf) */
};

struct site_key {
	uint64_t addr;         /* a site's address */
	size_t i;              /* its index */
};

struct site_batch {
	struct site_key *order; /* the sites by address */
	size_t *run_of;        /* the run of each site (by index) */
	struct site_run *runs; /* in address order */
	size_t nruns;          /* count of runs */
	uint8_t *buf;          /* every run's bytes */
};

static void site_batch_free(struct site_batch *b)
{
	free(b->order);
	free(b->run_of);
	free(b->runs);
	free(b->buf);
}

static int site_key_cmp(const void *a, const void *b)
{
	const struct site_key *x = a, *y = b;

	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

/* The sites' runs, read from the process. */
static int site_batch_read(struct ld_ctx *c, struct site_batch *b, struct qp_error *err)
{
	struct iovec *remote = NULL, *local = NULL;
	size_t i, r, total = 0;
	int ret;

	memset(b, 0, sizeof(*b));
	b->order = malloc(c->nsites * sizeof(*b->order));
	b->run_of = malloc(c->nsites * sizeof(*b->run_of));
	b->runs = malloc(c->nsites * sizeof(*b->runs));
	if (!b->order || !b->run_of || !b->runs)
		return qp_seterr(err, -ENOMEM, "out of memory");
	for (i = 0; i < c->nsites; i++)
		b->order[i] = (struct site_key){ c->sites[i].rec.addr, i };
	for (i = 1; i < c->nsites && b->order[i - 1].addr <= b->order[i].addr; i++)
		;
	if (i < c->nsites) /* a record not written in address order */
		qsort(b->order, c->nsites, sizeof(*b->order), site_key_cmp);
	for (i = 0; i < c->nsites; i++) {
		const struct qp_record_site *v = &c->sites[b->order[i].i].rec;
		struct site_run *last = b->nruns ? &b->runs[b->nruns - 1] : NULL;

		if (!last || v->addr / LD_PAGE > (last->end - 1) / LD_PAGE + 1) {
			last = &b->runs[b->nruns++];
			last->start = v->addr;
			last->end = v->addr;
		}
		if (v->addr + v->len > last->end)
			last->end = v->addr + v->len;
		b->run_of[b->order[i].i] = b->nruns - 1;
	}
	for (r = 0; r < b->nruns; r++)
		total += b->runs[r].end - b->runs[r].start;
	b->buf = malloc(total ? total : 1);
	remote = calloc(b->nruns ? b->nruns : 1, sizeof(*remote));
	local = calloc(b->nruns ? b->nruns : 1, sizeof(*local));
	if (!b->buf || !remote || !local) {
		free(remote);
		free(local);
		return qp_seterr(err, -ENOMEM, "out of memory");
	}
	for (r = 0, total = 0; r < b->nruns; r++) {
		struct site_run *u = &b->runs[r];

		u->buf = b->buf + total;
		total += u->end - u->start;
		remote[r] = (struct iovec){ (void *)(uintptr_t)u->start, u->end - u->start };
		local[r] = (struct iovec){ u->buf, u->end - u->start };
	}
	ret = qp_proc__readv(&c->proc, remote, local, b->nruns, err);
	free(remote);
	free(local);
	return ret;
}

/* Where site @i's bytes are in the batch. */
static uint8_t *site_batch_at(const struct site_batch *b, const struct ld_ctx *c, size_t i)
{
	const struct site_run *u = &b->runs[b->run_of[i]];

	return u->buf + (c->sites[i].rec.addr - u->start);
}

/* Write every run, its sites marked written first (a write that fails may
 * have changed part of it); after the first, fault step @step (if any). */
static int site_batch_write(struct ld_ctx *c, const struct site_batch *b, enum qp_fault step,
			    struct qp_error *err)
{
	size_t i = 0, r;
	int ret = 0;

	for (r = 0; !ret && r < b->nruns; r++) {
		const struct site_run *u = &b->runs[r];

		for (; i < c->nsites && b->run_of[b->order[i].i] == r; i++)
			c->sites[b->order[i].i].written = true;
		ret = qp_proc__write(&c->proc, u->start, u->buf, u->end - u->start, err);
		if (!ret && !r && step != QP_FAULT_NONE)
			ret = ld_fault(c, step, err);
	}
	return ret;
}

int ld_sites_write(struct ld_ctx *c, struct qp_error *err)
{
	struct site_batch b;
	size_t i;
	int ret;

	if (!c->nsites)
		return 0;
	ret = site_batch_read(c, &b, err);
	for (i = 0; !ret && i < c->nsites; i++)
		if (memcmp(site_batch_at(&b, c, i), c->sites[i].rec.saved, c->sites[i].rec.len))
			ret = qp_seterr(err, QP_ETARGET, "the call site at 0x%" PRIx64 " of '%s' changed in process %d while preparing",
					c->sites[i].rec.addr, c->funcs[c->sites[i].rec.func].rec.name, (int)c->pid);
	for (i = 0; !ret && i < c->nsites; i++)
		memcpy(site_batch_at(&b, c, i), c->sites[i].rec.written, c->sites[i].rec.len);
	if (!ret)
		ret = site_batch_write(c, &b, QP_FAULT_FIRST_SITE, err);
	site_batch_free(&b);
	return ret;
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
	struct site_batch b;
	size_t i;
	int ret = 0;

	for (i = 0; i < c->nsites; i++) {
		const struct qp_record_site *v = &c->sites[i].rec;

		if (v->len < 5 || v->len > sizeof(v->saved))
			return qp_seterr(err, -EINVAL, "bad call site record at 0x%" PRIx64, v->addr);
	}
	if (!c->nsites)
		return 0;
	ret = site_batch_read(c, &b, err);
	for (i = 0; !ret && i < c->nsites; i++)
		if (memcmp(site_batch_at(&b, c, i), c->sites[i].rec.written, c->sites[i].rec.len))
			ret = qp_seterr(err, QP_ETARGET,
					"the call site at 0x%" PRIx64 " no longer reaches this patch; not undoing",
					c->sites[i].rec.addr);
	for (i = c->nsites; !ret && i-- > 0;)
		memcpy(site_batch_at(&b, c, i), c->sites[i].rec.saved, c->sites[i].rec.len);
	if (!ret && (ret = site_batch_write(c, &b, QP_FAULT_NONE, err)))
		for (i = 0; i < c->nsites; i++) /* as it was: every site reaches the patch */
			if (c->sites[i].written)
				qp_proc__write(&c->proc, c->sites[i].rec.addr, c->sites[i].rec.written,
					       c->sites[i].rec.len, NULL);
	site_batch_free(&b);
	return ret;
}
