// SPDX-License-Identifier: MIT
/*
 * What root may read: a patch file is code that root puts into processes,
 * so a file (or a store) that another user can change is a way for that
 * user to run code in every patched process.  The rule is sshd's
 * StrictModes: the file and every directory above it are owned by root
 * and writable by nobody else.  A group-writable entry of group root is
 * accepted (only root's group can write it), and so is a directory with
 * the sticky bit (/tmp): others cannot replace what they do not own.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host.h"
#include "qpatch/file.h"

/* Is one entry acceptable?  0 or -EPERM with the reason. */
static int trust_entry(const char *path, const struct stat *st, bool is_dir, struct qp_error *err)
{
	if (st->st_uid != 0)
		return qp_seterr(err, -EPERM, "'%s' is owned by uid %u, not root: another user could "
				 "change what root loads", path, (unsigned)st->st_uid);
	if ((st->st_mode & S_IWOTH) && !(is_dir && (st->st_mode & S_ISVTX)))
		return qp_seterr(err, -EPERM, "'%s' is writable by any user (mode %04o)", path,
				 (unsigned)(st->st_mode & 07777));
	if ((st->st_mode & S_IWGRP) && st->st_gid != 0 && !(is_dir && (st->st_mode & S_ISVTX)))
		return qp_seterr(err, -EPERM, "'%s' is writable by group %u (mode %04o)", path,
				 (unsigned)st->st_gid, (unsigned)(st->st_mode & 07777));
	return 0;
}

/* Every directory above @path (absolute, resolved), up to '/'. */
static int trust_dirs(const char *path, struct qp_error *err)
{
	char dir[PATH_MAX];
	struct stat st;
	char *slash;

	snprintf(dir, sizeof(dir), "%s", path);
	for (;;) {
		slash = strrchr(dir, '/');
		if (!slash)
			return 0;
		if (slash == dir)
			slash[1] = '\0';
		else
			*slash = '\0';
		if (stat(dir, &st))
			return qp_seterr(err, -errno, "cannot check '%s': %s", dir, strerror(errno));
		if (trust_entry(dir, &st, true, err))
			return err ? err->code : -EPERM;
		if (!strcmp(dir, "/"))
			return 0;
	}
}

int qp_trust_path(const char *path, struct qp_error *err)
{
	char real[PATH_MAX];
	struct stat st;

	if (geteuid() != 0)
		return 0;
	if (!realpath(path, real))
		return qp_seterr(err, -errno, "cannot resolve '%s': %s", path, strerror(errno));
	if (stat(real, &st))
		return qp_seterr(err, -errno, "cannot check '%s': %s", real, strerror(errno));
	if (trust_entry(real, &st, S_ISDIR(st.st_mode), err))
		return err ? err->code : -EPERM;
	return trust_dirs(real, err);
}

int qp_trust_read(const char *path, size_t max, uint8_t **buf, size_t *len,
		  struct qp_error *err)
{
	char real[PATH_MAX];
	struct stat st;
	int fd, ret = 0;

	*buf = NULL;
	*len = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return qp_seterr(err, -errno, "unable to open '%s': %s", path, strerror(errno));
	if (fstat(fd, &st))
		ret = qp_seterr(err, -errno, "unable to stat '%s': %s", path, strerror(errno));
	else if (!S_ISREG(st.st_mode))
		ret = qp_seterr(err, QP_EFORMAT, "'%s': not a regular file", path);
	if (!ret && geteuid() == 0) {
		/* the descriptor's file, and the directories it was found in */
		if (!realpath(path, real))
			ret = qp_seterr(err, -errno, "cannot resolve '%s': %s", path, strerror(errno));
		else if (trust_entry(real, &st, false, err) || trust_dirs(real, err))
			ret = err ? err->code : -EPERM;
	}
	if (!ret)
		ret = qp_read_regular(fd, path, max, buf, len, err);
	close(fd);
	return ret;
}

struct qp_patch *qp_trust_open_patch(const char *path, struct qp_error *err)
{
	struct qp_patch *p;
	uint8_t *buf;
	size_t len;

	if (qp_trust_read(path, QP_TRUST_MAX_PATCH, &buf, &len, err))
		return NULL;
	p = qp_patch__open_named(buf, len, path, err);
	free(buf);
	return p;
}
