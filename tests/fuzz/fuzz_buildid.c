// SPDX-License-Identifier: MIT
/*
 * libFuzzer harness for the reader of loaded objects' files
 * (format/buildid.c): the build-id from the PT_NOTE segments and the
 * DT_NEEDED names from PT_DYNAMIC, of an input that is the whole file
 * (any process can map any file it can read, so the loader's scans see
 * hostile files), and the notes parser on the raw input.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "qpatch/elf.h"

static int fd = -1;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t id[64];
	char needed[256];
	size_t len = 0;

	if (fd < 0 && (fd = memfd_create("fuzz-elf", MFD_CLOEXEC)) < 0)
		abort();
	if (ftruncate(fd, 0) || pwrite(fd, data, size, 0) != (ssize_t)size)
		abort();
	if (!qp_buildid_from_fd(fd, id, sizeof(id), &len) && (!len || len > sizeof(id)))
		abort();
	len = 0;
	if (!qp_buildid_from_notes(data, size, id, 20, &len) && (!len || len > 20))
		abort();
	memset(needed, 'x', sizeof(needed));
	if (!qp_elf_fd_needed(fd, needed, sizeof(needed))) {
		/* names, each NUL-terminated, then an empty one, all inside */
		size_t used = 0;

		while (used < sizeof(needed) && needed[used])
			used += strnlen(needed + used, sizeof(needed) - used) + 1;
		if (used >= sizeof(needed))
			abort();
	}
	return 0;
}
