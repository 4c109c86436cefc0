/* SPDX-License-Identifier: MIT */
/*
 * What the files of libdecode share, and nothing outside libdecode sees:
 * the Zydis decoder set-up, the one-instruction decoder behind
 * qp_decode_insn(), and the helper that writes a reason to a caller's
 * buffer.  The qp_decode__ prefix (two underscores) marks them internal.
 */
#ifndef QPATCH_DECODE_INTERNAL_H
#define QPATCH_DECODE_INTERNAL_H

#include <Zydis/Zydis.h>

#include "qpatch/decode.h"

/* Zydis decoder for 64-bit code, with CET and MPX on (decode.c). */
void qp_decode__init(ZydisDecoder *dec);

/* qp_decode_insn() with a decoder made by qp_decode__init(): no argument
 * checks, @code may be NULL only when @size is 0. */
int qp_decode__one(const ZydisDecoder *dec, const void *code, size_t size,
		   uint64_t addr, struct qp_insn *insn);

/* -ENODATA for input that ends inside an instruction, else -EILSEQ. */
int qp_decode__status_errno(ZyanStatus status);

/* Format a reason into @why (when it is not NULL and @why_size > 0) and
 * return @code, so that failures read `return qp_decode__fail(...)`. */
__attribute__((format(printf, 4, 5)))
int qp_decode__fail(char *why, size_t why_size, int code, const char *fmt,
		    ...);

/* Empty @why, for the success path. */
static inline void qp_decode__why_clear(char *why, size_t why_size)
{
	if (why && why_size)
		why[0] = '\0';
}

#endif
