// SPDX-License-Identifier: MIT
#include "qpatch/file.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int qp_read_regular(int fd, const char *name, size_t max, uint8_t **buf, size_t *len,
		    struct qp_error *err)
{
	struct stat st;
	size_t got = 0;
	uint8_t *b;

	*buf = NULL;
	*len = 0;
	if (fstat(fd, &st))
		return qp_seterr(err, -errno, "unable to stat '%s': %s", name, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return qp_seterr(err, QP_EFORMAT, "'%s': not a regular file", name);
	if ((uint64_t)st.st_size > max)
		return qp_seterr(err, QP_EFORMAT, "'%s': %lld bytes, more than %zu", name,
				 (long long)st.st_size, max);
	b = malloc(st.st_size ? (size_t)st.st_size : 1);
	if (!b)
		return qp_seterr(err, -ENOMEM, "'%s': out of memory", name);
	while (got < (size_t)st.st_size) {
		ssize_t n = pread(fd, b + got, (size_t)st.st_size - got, (off_t)got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;

			free(b);
			return qp_seterr(err, -e, "unable to read '%s': %s", name, strerror(e));
		}
		if (!n)
			break; /* shrank meanwhile: what is there is parsed */
		got += (size_t)n;
	}
	*buf = b;
	*len = got;
	return 0;
}
