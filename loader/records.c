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

/* A record of version 1 (no CFI fields: its functions follow at 384) or 2. */
static int ld_read_record(struct qp_proc *p, uint64_t addr, struct qp_applied *a,
			  struct qp_error *err)
{
	size_t n, head;
	int ret;

	ret = qp_proc__read(p, addr, &a->rec, sizeof(a->rec), err);
	if (ret)
		return ret;
	if (memcmp(a->rec.magic, QP_RECORD_MAGIC, 8) ||
	    (a->rec.version != 1 && a->rec.version != QP_RECORD_VERSION) ||
	    a->rec.nfuncs > 65536)
		return qp_seterr(err, -EINVAL, "process %d: bad patch record at 0x%" PRIx64,
				 (int)p->pid, addr);
	head = a->rec.version == 1 ? QP_RECORD_V1_SIZE : sizeof(a->rec);
	if (a->rec.version == 1)
		a->rec.cfi_start = a->rec.cfi_size = 0;
	if (a->rec.cfi_start < addr || a->rec.cfi_size > a->rec.region_size ||
	    a->rec.cfi_start - addr > a->rec.region_size - a->rec.cfi_size)
		a->rec.cfi_start = a->rec.cfi_size = 0; /* not inside its own mapping: ignored */
	a->rec.id[QP_ID_MAX - 1] = '\0';
	a->rec.target[QP_NAME_MAX - 1] = '\0';
	a->region = addr;
	n = a->rec.nfuncs;
	a->funcs = calloc(n ? n : 1, sizeof(*a->funcs));
	if (!a->funcs)
		return qp_seterr(err, -ENOMEM, "out of memory");
	ret = qp_proc__read(p, addr + head, a->funcs, n * sizeof(*a->funcs), err);
	for (; !ret && a->rec.version == 1 && n-- > 0;)
		a->funcs[n].new_size = 0; /* was "reserved" */
	return ret;
}

static int applied_cmp(const void *a, const void *b)
{
	const struct qp_applied *x = a, *y = b;

	return x->rec.seq < y->rec.seq ? -1 : x->rec.seq > y->rec.seq;
}

int ld_list(struct qp_proc *p, const struct qp_maps *maps, struct qp_applied **out,
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
		memset(&v[n], 0, sizeof(v[n]));
		ret = ld_read_record(p, maps->v[i].start, &v[n], err);
		n++;
	}
	if (ret) {
		qp_applied__free(v, n);
		return ret;
	}
	if (n > 1)
		qsort(v, n, sizeof(*v), applied_cmp);
	*out = v;
	*count = n;
	return 0;
}

void qp_applied__free(struct qp_applied *v, size_t n)
{
	size_t i;

	for (i = 0; v && i < n; i++)
		free(v[i].funcs);
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
		ret = ld_list(&p, &maps, out, n, err);
	qp_maps__release(&maps);
	qp_proc__close(&p);
	return ret;
}
