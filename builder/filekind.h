/* SPDX-License-Identifier: MIT */
/*
 * What a link takes from a tree: relocatable objects and archives, told
 * apart by their first bytes.  Header-only, for qpatch-cc (which logs the
 * inputs of each link and links nothing of the builder) and linkset.c
 * (which reads them back).
 */
#ifndef QPATCH_BUILDER_FILEKIND_H
#define QPATCH_BUILDER_FILEKIND_H

#include <stdio.h>
#include <string.h>

enum qp_file_kind {
	QP_FILE_OTHER,   /* anything else, or unreadable */
	QP_FILE_ARCHIVE, /* "!<arch>\n": members stored */
	QP_FILE_THIN,    /* "!<thin>\n": members named by path */
	QP_FILE_OBJECT,  /* ELF ET_REL */
};

static inline enum qp_file_kind qp_file_kind(const char *path)
{
	unsigned char h[18];
	FILE *f = fopen(path, "rb");
	size_t n = f ? fread(h, 1, sizeof(h), f) : 0;

	if (f)
		fclose(f);
	if (n >= 8 && !memcmp(h, "!<arch>\n", 8))
		return QP_FILE_ARCHIVE;
	if (n >= 8 && !memcmp(h, "!<thin>\n", 8))
		return QP_FILE_THIN;
	if (n >= 18 && !memcmp(h, "\177ELF", 4) && h[16] == 1 /* ET_REL */ && h[17] == 0)
		return QP_FILE_OBJECT;
	return QP_FILE_OTHER;
}

#endif
