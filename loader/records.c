// SPDX-License-Identifier: MIT
/*
 * The records of applied patches, read from the target: each patch mapping
 * starts with a struct qp_record (loader.h).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ld.h"
#include "parse.h"
#include "qpatch/decode.h"

/* Bytes of the patch mapping starting at maps->v[@i]: its entries (parts
 * with different protections) that follow on in address and offset. */
static uint64_t ld_map_extent(const struct qp_maps *maps, size_t i)
{
	const struct qp_map *m = &maps->v[i];
	size_t j;

	for (j = i + 1; j < maps->n && maps->v[j].start == maps->v[j - 1].end &&
			maps->v[j].offset == maps->v[j - 1].offset + (maps->v[j - 1].end - maps->v[j - 1].start) &&
			!strcmp(maps->v[j].path, m->path);
	     j++)
		;
	return maps->v[j - 1].end - m->start;
}

/* Every jump site of applied patch @a must be in the process's executable
 * memory (what an undo writes back goes there); a site elsewhere is a
 * forged record (or one of a library unloaded since, which cannot be
 * undone either). */
static bool rec_in_exec(const struct qp_maps *maps, uint64_t addr, uint64_t len)
{
	const struct qp_map *m = qp_maps__find(maps, addr);

	return m && len <= m->end - addr && m->perms[2] == 'x';
}

static int rec_sites(const struct qp_maps *maps, const struct qp_applied *a, struct qp_error *err)
{
	size_t i;

	for (i = 0; a->rec.state == QP_REC_APPLIED && i < a->rec.nfuncs; i++) {
		const struct qp_record_func *f = &a->funcs[i];

		if (!rec_in_exec(maps, f->site, f->len))
			return qp_seterr(err, -EINVAL, "corrupted patch record at 0x%" PRIx64 " (function "
					 "%zu ('%s'): jump site 0x%" PRIx64 " is not in executable "
					 "memory, or its object was unloaded): it was not written by this loader, or was "
					 "overwritten since; nothing that depends on it is done",
					 a->region, i, f->name, f->site);
	}
	/* so must every call site it rewrote */
	for (i = 0; a->rec.state == QP_REC_APPLIED && i < a->nsites; i++) {
		const struct qp_record_site *v = &a->sites[i];

		if (!rec_in_exec(maps, v->addr, v->len))
			return qp_seterr(err, -EINVAL, "corrupted patch record at 0x%" PRIx64 " (call "
					 "site %zu at 0x%" PRIx64 " is not in executable memory, or its "
					 "object was unloaded): it was not written by this loader, or was "
					 "overwritten since; nothing that depends on it is done",
					 a->region, i, v->addr);
	}
	return 0;
}

static int applied_cmp(const void *a, const void *b)
{
	const struct qp_applied *x = a, *y = b;

	return x->rec.seq < y->rec.seq ? -1 : x->rec.seq > y->rec.seq;
}

int ld_list(struct qp_proc *p, const struct qp_maps *maps, bool locked, struct qp_applied **out,
	    size_t *count, struct qp_error *err)
{
	static const char prefix[] = "/memfd:" QP_MEMFD_PREFIX;
	struct qp_applied *v = NULL;
	size_t i, n = 0;
	int ret = 0;

	for (i = 0; i < maps->n && !ret; i++) {
		struct qp_applied *nv;

		if (strncmp(maps->v[i].path, prefix, sizeof(prefix) - 1) || maps->v[i].offset)
			continue;
		nv = realloc(v, (n + 1) * sizeof(*v));
		if (!nv) {
			ret = qp_seterr(err, -ENOMEM, "out of memory");
			break;
		}
		v = nv;
		ret = ld_record_read(qp_proc__read_cb, p, maps->v[i].start, ld_map_extent(maps, i), &v[n],
				     err);
		if (!ret)
			ret = rec_sites(maps, &v[n], err);
		n++;
		if (ret)
			qp_preperr(err, ret, "process %d", (int)p->pid);
	}
	if (ret) {
		qp_applied__free(v, n);
		return ret;
	}
	for (i = 0; i < n; i++)
		if (v[i].rec.state == QP_REC_PENDING)
			v[i].abandoned = locked || !ld_locked(p->pid);
	if (n > 1)
		qsort(v, n, sizeof(*v), applied_cmp);
	*out = v;
	*count = n;
	return 0;
}

void qp_applied__free(struct qp_applied *v, size_t n)
{
	size_t i;

	for (i = 0; v && i < n; i++) {
		free(v[i].funcs);
		free(v[i].sites);
		free(v[i].so);
	}
	free(v);
}

int qp_load_list(pid_t pid, struct qp_applied **out, size_t *n, struct qp_error *err)
{
	struct qp_proc p;
	struct qp_maps maps = { 0 };
	int ret;

	*out = NULL;
	*n = 0;
	ret = qp_proc__open(pid, &p, err);
	if (!ret)
		ret = qp_maps__read(pid, &maps, err);
	if (!ret)
		ret = ld_list(&p, &maps, false, out, n, err);
	qp_maps__release(&maps);
	qp_proc__close(&p);
	return ret;
}

bool ld_site_original(const struct qp_applied *v, size_t n, uint64_t site, uint8_t *cur,
		      size_t len)
{
	const struct qp_record_func *first = NULL, *last = NULL;
	uint8_t jmp[QP_JMP_REL32_SIZE];
	size_t i, j;

	for (i = 0; i < n; i++) {
		if (v[i].rec.state != QP_REC_APPLIED)
			continue;
		for (j = 0; j < v[i].rec.nfuncs; j++) {
			const struct qp_record_func *f = &v[i].funcs[j];

			if (f->site != site || f->len != QP_JMP_REL32_SIZE)
				continue;
			if (!first)
				first = f;
			last = f;
		}
	}
	if (!first || len < QP_JMP_REL32_SIZE)
		return false;
	ld_jmp_encode(jmp, site, last->new_addr);
	if (memcmp(cur, jmp, sizeof(jmp)))
		return false;
	memcpy(cur, first->saved, QP_JMP_REL32_SIZE);
	return true;
}
