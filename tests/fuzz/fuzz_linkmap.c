// SPDX-License-Identifier: MIT
/*
 * libFuzzer harness for the walk along the dynamic linker's chain of
 * link_maps and the search of TLS fields in one (loader/parse.c), as the
 * loader does in a target (loader/tls.c).  The input is the target's
 * memory at a fixed address: _r_debug at its start, then anything.  The
 * walk must end (cycles included) within a bounded number of reads, and
 * what it finds must be a link_map inside the memory.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"

#define BASE 0x7f0000001000ull

struct mem {
	const uint8_t *buf;
	size_t len;
	unsigned long reads;
};

static int mem_read(void *arg, uint64_t addr, void *buf, size_t len, struct qp_error *err)
{
	struct mem *m = arg;

	m->reads++;
	if (addr < BASE || addr - BASE > m->len || len > m->len - (addr - BASE))
		return qp_seterr(err, -EIO, "short read");
	memcpy(buf, m->buf + (addr - BASE), len);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mem m = { data, size, 0 };
	struct qp_error err = { 0 };
	uint64_t want = 0, lm = 0, modid, sig[5] = { 0 }, w[512];
	int64_t off;
	size_t n;
	int ret;

	/* the l_ld searched for and the PT_TLS signature: from the input's
	 * first words, where the walk also begins (r_map is word 1) */
	if (size >= 16)
		memcpy(&want, data + size - 16, 8);
	if (size >= 56)
		memcpy(sig, data + 16, sizeof(sig));
	ret = ld_linkmap_find(mem_read, &m, BASE, want, &lm, &err);
	if (m.reads > 2 * (unsigned long)LD_MAX_MODULES + 2)
		abort();
	if (ret < 0 && (!err.msg[0] || err.code >= 0))
		abort();
	if (ret > 1)
		abort();
	if (ret)
		return 0;
	if (lm < BASE || lm - BASE + 40 > size)
		abort(); /* found where nothing was read */
	n = (size - (lm - BASE)) / 8;
	if (n > 512)
		n = 512;
	memcpy(w, data + (lm - BASE), n * 8);
	if (!ld_tls_scan(w, n, sig, sig[2], &off, &modid) &&
	    (!modid || modid >= (1u << 20) || (off != 0 && off != -1 && (off < 0 || off > INT32_MAX))))
		abort();
	return 0;
}
