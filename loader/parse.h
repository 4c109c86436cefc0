/* SPDX-License-Identifier: MIT */
/*
 * Parsers of what the loader reads from a target's memory: the record at
 * the start of a patch mapping and the dynamic linker's list of modules.
 * The target may be hostile (the loader runs as root, the target need
 * not), so every count, size and pointer read is bounded before use.  The
 * parsers reach memory only through a read callback, so that tests and
 * fuzzers can back it with a buffer (tests/fuzz/).
 */
#ifndef QPATCH_LOADER_PARSE_H
#define QPATCH_LOADER_PARSE_H

#include <stddef.h>
#include <stdint.h>

#include "loader.h"
#include "qpatch/error.h"

/* Read @len bytes at @addr of the target into @buf: 0 or a negative errno
 * (with @err set). */
#define TLS_NO_OFFSET 0          /* glibc's NO_TLS_OFFSET on x86-64 */
#define TLS_FORCED_DYNAMIC (-1)  /* glibc's FORCED_DYNAMIC_TLS_OFFSET */

typedef int (*ld_read_fn)(void *arg, uint64_t addr, void *buf, size_t len,
			  struct qp_error *err);

#define LD_MAX_RECORD_FUNCS 65536u /* functions one record may list */
#define LD_MAX_RECORD_SITES (1u << 20) /* call sites one record may list */
#define LD_JMP_SIZE 5u             /* the jump a record's function has: e9 rel32 */
#define LD_MAX_OLD_SIZE (1ull << 30) /* a replaced function is smaller than this */
#define LD_MAX_MODULES 65536       /* steps along the link_map chain */

/*
 * The record of the patch mapping at @addr, @map_size bytes long (what
 * /proc/PID/maps shows), into *@a (a->funcs and a->sites allocated; free
 * with qp_applied__free; on failure a->sites is NULL).  Version 1, 2 or 3
 * (call sites after the functions); the record, its functions and sites
 * must lie inside region_size, region_size inside the mapping; each site
 * names one of its functions and is 5 to 8 bytes long; strings are
 * NUL-terminated; CFI outside the mapping is dropped.  -EINVAL when bad.
 */
int ld_record_read(ld_read_fn rd, void *arg, uint64_t addr, uint64_t map_size,
		   struct qp_applied *a, struct qp_error *err);

/*
 * The struct link_map whose l_ld is @l_ld, walking the chain from
 * _r_debug (at @r_debug).  0 with *@out set, 1 when not found (end of the
 * chain, a cycle, or LD_MAX_MODULES steps), or a read's negative errno.
 */
int ld_linkmap_find(ld_read_fn rd, void *arg, uint64_t r_debug, uint64_t l_ld, uint64_t *out,
		    struct qp_error *err);

/*
 * In the @n words @w of a struct link_map, the five words @sig (what
 * ld.so copied from the PT_TLS header) followed by l_tls_offset and
 * l_tls_modid.  0 with them set when found and plausible for a TLS block
 * of @memsz bytes, else -1.
 */
int ld_tls_scan(const uint64_t *w, size_t n, const uint64_t sig[5], uint64_t memsz,
		int64_t *offset, uint64_t *modid);

#endif
