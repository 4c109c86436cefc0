// SPDX-License-Identifier: MIT
/*
 * libFuzzer harness for the record at the start of a patch mapping, as
 * the loader reads it from a target (loader/parse.c ld_record_read).  The
 * input is the mapping's bytes at a fixed address; reads outside it fail
 * as they would in the target.  An accepted record must keep the bounds
 * the rest of the loader relies on.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"

#define BASE 0x7f1234560000ull

struct mem {
	const uint8_t *buf;
	size_t len;
};

static int mem_read(void *arg, uint64_t addr, void *buf, size_t len, struct qp_error *err)
{
	const struct mem *m = arg;

	if (addr < BASE || addr - BASE > m->len || len > m->len - (addr - BASE))
		return qp_seterr(err, -EIO, "short read");
	memcpy(buf, m->buf + (addr - BASE), len);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mem m = { data, size };
	struct qp_error err = { 0 };
	struct qp_applied a;
	uint64_t map_size;
	size_t i;

	/* the mapping as /proc/PID/maps shows it: the bytes given, rounded up
	 * to pages, or (last byte odd) any size the first word says */
	map_size = (size + 4095) & ~4095ull;
	if (size >= 8 && (data[size - 1] & 1))
		memcpy(&map_size, data, 8);
	if (ld_record_read(mem_read, &m, BASE, map_size, &a, &err)) {
		if (err.code >= 0 || !err.msg[0])
			abort();
		free(a.funcs);
		free(a.so);
		free(a.sites);
		return 0;
	}
	if (a.rec.region_size > map_size || a.rec.nfuncs > LD_MAX_RECORD_FUNCS ||
	    strlen(a.rec.id) >= QP_ID_MAX || strlen(a.rec.target) >= QP_NAME_MAX)
		abort();
	if (a.rec.cfi_size && (a.rec.cfi_start < BASE ||
			       a.rec.cfi_start - BASE + a.rec.cfi_size > a.rec.region_size))
		abort();
	for (i = 0; i < a.rec.nfuncs; i++)
		if (strlen(a.funcs[i].name) >= QP_FUNC_NAME_MAX)
			abort();
	if (a.nsites > LD_MAX_RECORD_SITES || (a.nsites && !a.sites))
		abort();
	for (i = 0; i < a.nsites; i++)
		if (a.sites[i].func >= a.rec.nfuncs || a.sites[i].len < 5 || a.sites[i].len > 8)
			abort();
	if (a.so && (strlen(a.so->path) >= QP_SO_PATH_MAX || a.so->lib_lo > a.so->lib_hi))
		abort();
	free(a.funcs);
	free(a.sites);
	free(a.so);
	return 0;
}
