// SPDX-License-Identifier: MIT
/*
 * Parsers of target memory: see parse.h.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"

#define TLS_MAX_MODID (1u << 20) /* a plausible module id is below this */

/* A record that breaks a rule: the process forged or overwrote it. */
static int rec_bad(struct qp_error *err, uint64_t addr, const char *fmt, ...)
{
	char why[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	return qp_seterr(err, -EINVAL, "corrupted patch record at 0x%" PRIx64 " (%s): it was not "
			 "written by this loader, or was overwritten since; nothing that depends on "
			 "it is done", addr, why);
}

/* A .so patch's struct qp_record_so, at @off of the record at @addr: it
 * must lie inside region_size, its library range be sane, its path be
 * NUL-terminated. */
static int ld_record_so_read(ld_read_fn rd, void *arg, uint64_t addr, uint64_t off,
			     struct qp_applied *a, struct qp_error *err)
{
	struct qp_record_so *so;
	int ret;

	if (off + sizeof(*so) > a->rec.region_size)
		return rec_bad(err, addr, "no room for its library after %" PRIu64 " bytes", off);
	so = calloc(1, sizeof(*so));
	if (!so)
		return qp_seterr(err, -ENOMEM, "out of memory");
	ret = rd(arg, addr + off, so, sizeof(*so), err);
	if (!ret && (memcmp(so->magic, QP_RECORD_SO_MAGIC, 8) || so->lib_lo > so->lib_hi))
		ret = rec_bad(err, addr, "bad library record at 0x%" PRIx64, addr + off);
	if (ret) {
		free(so);
		return ret;
	}
	so->path[QP_SO_PATH_MAX - 1] = '\0';
	a->so = so;
	return 0;
}

/* A version 3 record's call sites, at @off of the record at @addr: the
 * header and every site inside region_size (checked before anything is
 * allocated), each naming one of the record's functions, 5 to 8 bytes
 * long.  On failure a->sites is NULL. */
static int ld_record_sites_read(ld_read_fn rd, void *arg, uint64_t addr, uint64_t off,
				struct qp_applied *a, struct qp_error *err)
{
	struct qp_record_sites h;
	size_t i;
	int ret;

	if (off > a->rec.region_size || a->rec.region_size - off < sizeof(h))
		return rec_bad(err, addr, "no room for its call sites after %" PRIu64 " bytes", off);
	ret = rd(arg, addr + off, &h, sizeof(h), err);
	if (ret)
		return ret;
	if (memcmp(h.magic, QP_RECORD_SITES_MAGIC, 8) || h.nsites > LD_MAX_RECORD_SITES ||
	    (uint64_t)h.nsites * sizeof(*a->sites) > a->rec.region_size - off - sizeof(h))
		return rec_bad(err, addr, "bad call sites record at 0x%" PRIx64, addr + off);
	if (!h.nsites)
		return 0;
	a->sites = calloc(h.nsites, sizeof(*a->sites));
	if (!a->sites)
		return qp_seterr(err, -ENOMEM, "out of memory");
	ret = rd(arg, addr + off + sizeof(h), a->sites, h.nsites * sizeof(*a->sites), err);
	for (i = 0; !ret && i < h.nsites; i++)
		if (a->sites[i].func >= a->rec.nfuncs || a->sites[i].len < 5 ||
		    a->sites[i].len > sizeof(a->sites[i].saved) || a->sites[i].addr > UINT64_MAX - 16)
			ret = rec_bad(err, addr, "bad call site %zu", i);
	if (ret) {
		free(a->sites);
		a->sites = NULL;
		return ret;
	}
	a->nsites = h.nsites;
	return 0;
}

int ld_record_read(ld_read_fn rd, void *arg, uint64_t addr, uint64_t map_size,
		   struct qp_applied *a, struct qp_error *err)
{
	struct qp_record *r = &a->rec;
	uint64_t head, need;
	size_t i, n;
	int ret;

	memset(a, 0, sizeof(*a));
	ret = rd(arg, addr, r, sizeof(*r), err);
	if (ret)
		return ret;
	head = r->version == 1 ? QP_RECORD_V1_SIZE : sizeof(*r);
	need = head + (uint64_t)r->nfuncs * sizeof(struct qp_record_func);
	if (memcmp(r->magic, QP_RECORD_MAGIC, 8))
		return rec_bad(err, addr, "no record magic");
	if (r->version != 1 && r->version != QP_RECORD_VERSION && r->version != QP_RECORD_VERSION_SITES)
		return rec_bad(err, addr, "version %" PRIu32 " (1, 2 or 3 known)", r->version);
	if (r->state != QP_REC_APPLIED && r->state != QP_REC_RESTORED && r->state != QP_REC_PENDING)
		return rec_bad(err, addr, "state %" PRIu32, r->state);
	if (r->nfuncs > LD_MAX_RECORD_FUNCS)
		return rec_bad(err, addr, "%" PRIu32 " functions (at most %u)", r->nfuncs,
			       LD_MAX_RECORD_FUNCS);
	if (r->region_size > map_size)
		return rec_bad(err, addr, "region of %" PRIu64 " bytes in a mapping of %" PRIu64,
			       r->region_size, map_size);
	if (need > r->region_size)
		return rec_bad(err, addr, "%" PRIu32 " functions need %" PRIu64 " bytes, the region "
			       "has %" PRIu64, r->nfuncs, need, r->region_size);
	if (r->version == 1)
		r->cfi_start = r->cfi_size = 0;
	if (r->cfi_start < addr || r->cfi_size > r->region_size ||
	    r->cfi_start - addr > r->region_size - r->cfi_size)
		r->cfi_start = r->cfi_size = 0; /* not inside its own mapping: ignored */
	r->id[QP_ID_MAX - 1] = '\0';
	r->target[QP_NAME_MAX - 1] = '\0';
	a->region = addr;
	n = r->nfuncs;
	a->funcs = calloc(n ? n : 1, sizeof(*a->funcs));
	if (!a->funcs)
		return qp_seterr(err, -ENOMEM, "out of memory");
	ret = n ? rd(arg, addr + head, a->funcs, n * sizeof(*a->funcs), err) : 0;
	for (i = 0; !ret && i < n; i++) {
		struct qp_record_func *f = &a->funcs[i];

		if (r->version == 1)
			f->new_size = 0; /* was "reserved" */
		f->name[QP_FUNC_NAME_MAX - 1] = '\0';
		/* the new code lies in the mapping; the jump is one e9 rel32 */
		if (f->new_addr < addr || f->new_addr - addr >= r->region_size ||
		    f->new_size > r->region_size - (f->new_addr - addr))
			ret = rec_bad(err, addr, "function %zu ('%s'): new code at 0x%" PRIx64
				      " (%" PRIu32 " bytes) is not inside the patch mapping",
				      i, f->name, f->new_addr, f->new_size);
		else if (f->len != LD_JMP_SIZE && f->len) /* 0: call sites only */
			ret = rec_bad(err, addr, "function %zu ('%s'): a jump of %" PRIu32 " bytes",
				      i, f->name, f->len);
		else if (f->site > UINT64_MAX - LD_JMP_SIZE || f->old_size > LD_MAX_OLD_SIZE)
			ret = rec_bad(err, addr, "function %zu ('%s'): site 0x%" PRIx64 ", size %"
				      PRIu64, i, f->name, f->site, f->old_size);
	}
	if (r->version == 1)
		r->flags = 0; /* was "reserved" */
	if (!ret && (r->flags & QP_REC_F_SO))
		ret = ld_record_so_read(rd, arg, addr, need, a, err);
	if (!ret && r->version == QP_RECORD_VERSION_SITES)
		ret = ld_record_sites_read(rd, arg, addr,
					   need + (a->so ? sizeof(struct qp_record_so) : 0), a, err);
	return ret;
}

int ld_linkmap_find(ld_read_fn rd, void *arg, uint64_t r_debug, uint64_t l_ld, uint64_t *out,
		    struct qp_error *err)
{
	uint64_t lm = 0, tortoise, head[5]; /* l_addr, l_name, l_ld, l_next, l_prev */
	unsigned long power = 1, lam = 0;
	int i, ret;

	if (r_debug > UINT64_MAX - 8)
		return 1;
	ret = rd(arg, r_debug + 8, &lm, sizeof(lm), err); /* r_map */
	tortoise = lm;
	/* Brent's cycle detection: a chain looping back on itself ends the walk
	 * within about twice its length */
	for (i = 0; !ret && lm && i < LD_MAX_MODULES; i++) {
		ret = rd(arg, lm, head, sizeof(head), err);
		if (ret)
			break;
		if (head[2] == l_ld) {
			*out = lm;
			return 0;
		}
		lm = head[3];
		if (lm == tortoise)
			return 1;
		if (++lam == power) {
			tortoise = lm;
			power *= 2;
			lam = 0;
		}
	}
	return ret ? ret : 1;
}

int ld_tls_scan(const uint64_t *w, size_t n, const uint64_t sig[5], uint64_t memsz,
		int64_t *offset, uint64_t *modid)
{
	size_t i;

	for (i = 0; i + 7 <= n; i++) {
		if (memcmp(&w[i], sig, 5 * sizeof(*sig)))
			continue;
		*offset = (int64_t)w[i + 5];
		*modid = w[i + 6];
		if (*modid < 1 || *modid >= TLS_MAX_MODID ||
		    (*offset != TLS_NO_OFFSET && *offset != TLS_FORCED_DYNAMIC &&
		     (*offset < 0 || (uint64_t)*offset < memsz || *offset > INT32_MAX)))
			return -1;
		return 0;
	}
	return -1;
}
