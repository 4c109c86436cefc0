// SPDX-License-Identifier: MIT
/*
 * The build-id of a loaded object, read from its PT_NOTE segments only:
 * what a scan of every process's mapped files needs, without libelf's
 * section tables.  The files are untrusted (any process can map any file
 * it can read), so every count, offset and size is checked against the
 * bytes really read before use.
 */
#include <elf.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qpatch/elf.h"

#define BID_MAX_PHNUM 256          /* real objects have about 10-15 */
#define BID_MAX_NOTES (64u << 10)  /* bytes of one PT_NOTE segment read */
#define BID_MAX_SEGS 8             /* PT_NOTE segments looked at */

int qp_buildid_from_notes(const void *notes, size_t size, uint8_t *buf, size_t bufsz,
			  size_t *len)
{
	const uint8_t *p = notes;
	size_t off = 0;

	while (size - off >= sizeof(Elf64_Nhdr)) {
		Elf64_Nhdr nh;
		size_t name_sz, desc_sz;

		memcpy(&nh, p + off, sizeof(nh));
		off += sizeof(nh);
		name_sz = ((size_t)nh.n_namesz + 3) & ~(size_t)3;
		desc_sz = ((size_t)nh.n_descsz + 3) & ~(size_t)3;
		if (name_sz > size - off || desc_sz > size - off - name_sz)
			return -EINVAL;
		if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == 4 && !memcmp(p + off, "GNU", 4)) {
			if (!nh.n_descsz || nh.n_descsz > bufsz)
				return -EINVAL;
			memcpy(buf, p + off + name_sz, nh.n_descsz);
			*len = nh.n_descsz;
			return 0;
		}
		off += name_sz + desc_sz;
	}
	return -ENOENT;
}

static int bid_pread(int fd, void *buf, size_t len, uint64_t off)
{
	ssize_t n;

	if (off > INT64_MAX)
		return -EINVAL;
	n = pread(fd, buf, len, (off_t)off);
	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EINVAL;
}

int qp_buildid_from_fd(int fd, uint8_t *buf, size_t bufsz, size_t *len)
{
	Elf64_Ehdr eh;
	Elf64_Phdr ph[BID_MAX_PHNUM];
	size_t i, segs = 0;
	int ret;

	ret = bid_pread(fd, &eh, sizeof(eh), 0);
	if (ret)
		return ret;
	if (memcmp(eh.e_ident, ELFMAG, SELFMAG) || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh.e_ident[EI_DATA] != ELFDATA2LSB || eh.e_phentsize != sizeof(Elf64_Phdr) ||
	    !eh.e_phnum || eh.e_phnum > BID_MAX_PHNUM)
		return -EINVAL;
	ret = bid_pread(fd, ph, eh.e_phnum * sizeof(Elf64_Phdr), eh.e_phoff);
	if (ret)
		return ret;
	ret = -ENOENT;
	for (i = 0; i < eh.e_phnum && segs < BID_MAX_SEGS; i++) {
		void *notes;

		if (ph[i].p_type != PT_NOTE)
			continue;
		segs++;
		if (!ph[i].p_filesz || ph[i].p_filesz > BID_MAX_NOTES)
			continue;
		notes = malloc(ph[i].p_filesz);
		if (!notes)
			return -ENOMEM;
		ret = bid_pread(fd, notes, ph[i].p_filesz, ph[i].p_offset);
		if (!ret)
			ret = qp_buildid_from_notes(notes, ph[i].p_filesz, buf, bufsz, len);
		free(notes);
		if (!ret)
			return 0;
	}
	return ret == -EINVAL ? ret : -ENOENT;
}

/* The file offset of virtual address @vaddr, from the PT_LOAD segments. */
static int bid_vaddr_offset(const Elf64_Phdr *ph, size_t n, uint64_t vaddr, uint64_t *off)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (ph[i].p_type == PT_LOAD && vaddr >= ph[i].p_vaddr &&
		    vaddr - ph[i].p_vaddr < ph[i].p_filesz) {
			*off = ph[i].p_offset + (vaddr - ph[i].p_vaddr);
			return 0;
		}
	return -EINVAL;
}

#define NEEDED_MAX_DYN 1024      /* entries of PT_DYNAMIC read */
#define NEEDED_MAX_STRTAB (1u << 20)

/* The PT_DYNAMIC entries (*@dyn, *@ndyn, at most NEEDED_MAX_DYN) and the
 * dynamic string table (*@strtab, *@strsz bytes plus a NUL) of the object
 * open as @fd; both malloc'ed.  -ENOENT: no PT_DYNAMIC (a static program). */
static int bid_dynamic(int fd, Elf64_Dyn **dyn, size_t *ndyn, char **strtab, uint64_t *strsz)
{
	Elf64_Ehdr eh;
	Elf64_Phdr ph[BID_MAX_PHNUM];
	uint64_t strtab_addr = 0, off;
	size_t i;
	int ret;

	*dyn = NULL;
	*strtab = NULL;
	*ndyn = 0;
	*strsz = 0;
	ret = bid_pread(fd, &eh, sizeof(eh), 0);
	if (ret)
		return ret;
	if (memcmp(eh.e_ident, ELFMAG, SELFMAG) || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh.e_phentsize != sizeof(Elf64_Phdr) || !eh.e_phnum || eh.e_phnum > BID_MAX_PHNUM)
		return -EINVAL;
	ret = bid_pread(fd, ph, eh.e_phnum * sizeof(Elf64_Phdr), eh.e_phoff);
	for (i = 0; !ret && i < eh.e_phnum && !*dyn; i++) {
		if (ph[i].p_type != PT_DYNAMIC)
			continue;
		*ndyn = ph[i].p_filesz / sizeof(Elf64_Dyn);
		if (*ndyn > NEEDED_MAX_DYN)
			*ndyn = NEEDED_MAX_DYN;
		*dyn = calloc(*ndyn ? *ndyn : 1, sizeof(**dyn));
		if (!*dyn)
			return -ENOMEM;
		ret = bid_pread(fd, *dyn, *ndyn * sizeof(**dyn), ph[i].p_offset);
	}
	if (!ret && !*dyn)
		ret = -ENOENT;
	for (i = 0; !ret && i < *ndyn && (*dyn)[i].d_tag != DT_NULL; i++) {
		if ((*dyn)[i].d_tag == DT_STRTAB)
			strtab_addr = (*dyn)[i].d_un.d_ptr;
		else if ((*dyn)[i].d_tag == DT_STRSZ)
			*strsz = (*dyn)[i].d_un.d_val;
	}
	if (!ret && (!strtab_addr || !*strsz || *strsz > NEEDED_MAX_STRTAB ||
		     bid_vaddr_offset(ph, eh.e_phnum, strtab_addr, &off)))
		ret = -EINVAL;
	if (!ret) {
		*strtab = malloc(*strsz + 1);
		ret = *strtab ? bid_pread(fd, *strtab, *strsz, off) : -ENOMEM;
		if (!ret)
			(*strtab)[*strsz] = '\0';
	}
	if (ret) {
		free(*dyn);
		free(*strtab);
		*dyn = NULL;
		*strtab = NULL;
	}
	return ret;
}

int qp_elf_fd_needed(int fd, char *out, size_t size)
{
	Elf64_Dyn *dyn;
	char *strtab;
	uint64_t strsz;
	size_t i, ndyn, used = 0;
	int ret;

	if (!size)
		return -EINVAL;
	out[0] = '\0';
	ret = bid_dynamic(fd, &dyn, &ndyn, &strtab, &strsz);
	for (i = 0; !ret && i < ndyn && dyn[i].d_tag != DT_NULL; i++) {
		const char *name;
		size_t len;

		if (dyn[i].d_tag != DT_NEEDED || dyn[i].d_un.d_val >= strsz)
			continue;
		name = strtab + dyn[i].d_un.d_val;
		len = strlen(name);
		if (used + len + 2 > size)
			break; /* what fits */
		memcpy(out + used, name, len + 1);
		used += len + 1;
		out[used] = '\0';
	}
	free(strtab);
	free(dyn);
	return ret;
}

int qp_elf_fd_dynstr_has(int fd, const char *const *names, size_t n, bool *found)
{
	Elf64_Dyn *dyn;
	char *strtab;
	uint64_t strsz, at;
	size_t i;
	int ret;

	*found = false;
	ret = bid_dynamic(fd, &dyn, &i, &strtab, &strsz);
	for (at = 0; !ret && at < strsz && !*found; at += strlen(strtab + at) + 1)
		for (i = 0; i < n && !*found; i++)
			*found = !strcmp(strtab + at, names[i]);
	free(strtab);
	free(dyn);
	return ret;
}
