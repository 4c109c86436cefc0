// SPDX-License-Identifier: MIT
/*
 * Line mapping of a source change, from GNU diff (diffutils is part of
 * every Debian system): each group of unchanged lines is printed as
 * "OLDFIRST OLDLAST NEWFIRST NEWLAST".
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "linemap.h"

int qp_linemap__build(const char *old_path, const char *new_path, struct qp_linemap *m,
		      struct qp_error *err)
{
	char *argv[] = { "diff", "--unchanged-group-format=%df %dl %dF %dL\n",
			 "--old-group-format=", "--new-group-format=",
			 "--changed-group-format=", (char *)old_path, (char *)new_path, NULL };
	long of, ol, nf, nl;
	size_t cap = 0;
	int fds[2], status;
	FILE *f;
	pid_t pid;

	m->v = NULL;
	m->n = 0;
	if (pipe(fds))
		return qp_seterr(err, -errno, "pipe: %s", strerror(errno));
	pid = fork();
	if (pid < 0) {
		close(fds[0]);
		close(fds[1]);
		return qp_seterr(err, -errno, "fork: %s", strerror(errno));
	}
	if (!pid) {
		int null = open("/dev/null", O_WRONLY);

		if (null >= 0)
			dup2(null, 2); /* a missing file is an answer ("changed"), not noise */
		dup2(fds[1], 1);
		close(fds[0]);
		close(fds[1]);
		execvp("diff", argv);
		_exit(127);
	}
	close(fds[1]);
	f = fdopen(fds[0], "r");
	while (f && fscanf(f, "%ld %ld %ld %ld", &of, &ol, &nf, &nl) == 4) {
		if (m->n == cap) {
			struct qp_linemap_range *v;

			cap = cap ? 2 * cap : 64;
			v = realloc(m->v, cap * sizeof(*v));
			if (!v)
				break;
			m->v = v;
		}
		m->v[m->n++] = (struct qp_linemap_range){ of, ol, nf };
	}
	if (f)
		fclose(f);
	else
		close(fds[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	/* diff exits 0 (same) or 1 (different); 2 is trouble */
	if (!WIFEXITED(status) || WEXITSTATUS(status) > 1) {
		qp_linemap__release(m);
		return qp_seterr(err, -EIO, "cannot compare '%s' with '%s' (diff failed)",
				 old_path, new_path);
	}
	return 0;
}

long qp_linemap__map(const struct qp_linemap *m, long line)
{
	size_t i;

	for (i = 0; i < m->n; i++)
		if (line >= m->v[i].old_first && line <= m->v[i].old_last)
			return m->v[i].new_first + (line - m->v[i].old_first);
	return -1;
}

void qp_linemap__release(struct qp_linemap *m)
{
	free(m->v);
	m->v = NULL;
	m->n = 0;
}
