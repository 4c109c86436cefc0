/* SPDX-License-Identifier: MIT */
/*
 * Reading a whole file: patches, keys and signatures are read once into
 * memory, and every reader bounds, checks and reports it the same way.
 */
#ifndef QPATCH_FILE_H
#define QPATCH_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "qpatch/error.h"

/*
 * Read all of the regular file open as @fd, from offset 0, into a new
 * malloc'ed buffer (*@buf, *@len; the caller frees it).  @name names the
 * file in messages.  A file that is not regular, or of more than @max bytes,
 * is refused with QP_EFORMAT; a file that shrinks meanwhile gives what is
 * there.  On failure *@buf is NULL and *@len 0.
 */
int qp_read_regular(int fd, const char *name, size_t max, uint8_t **buf, size_t *len,
		    struct qp_error *err);

#endif
