// SPDX-License-Identifier: MIT
/*
 * Builds at the original tree's path, in a private mount namespace (see
 * bindns.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bindns.h"

static int bindns_write(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, text, strlen(text));
	if (n < 0) {
		n = -errno;
		close(fd);
		return (int)n;
	}
	close(fd);
	return 0;
}

/* A user namespace where the caller keeps its own uid and gid, and gains
 * the right to mount in the mount namespace created with it. */
static int bindns_userns(void)
{
	char map[64];
	uid_t uid = getuid();
	gid_t gid = getgid();
	int ret;

	if (unshare(CLONE_NEWUSER | CLONE_NEWNS))
		return -errno;
	ret = bindns_write("/proc/self/setgroups", "deny");
	if (ret && ret != -ENOENT)
		return ret;
	snprintf(map, sizeof(map), "%u %u 1\n", (unsigned)uid, (unsigned)uid);
	ret = bindns_write("/proc/self/uid_map", map);
	if (!ret) {
		snprintf(map, sizeof(map), "%u %u 1\n", (unsigned)gid, (unsigned)gid);
		ret = bindns_write("/proc/self/gid_map", map);
	}
	return ret;
}

int qp_bindns_enter(const char *tree, const char *at)
{
	int ret = 0;

	if (geteuid() == 0) {
		if (unshare(CLONE_NEWNS))
			return -errno;
	} else {
		ret = bindns_userns();
		if (ret)
			return ret;
	}
	/* nothing mounted here may reach the rest of the system */
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL))
		return -errno;
	if (mount(tree, at, NULL, MS_BIND | MS_REC, NULL))
		return -errno;
	return ret;
}

int qp_bindns_probe(const char *tree, const char *at)
{
	int status;
	pid_t pid = fork();

	if (pid < 0)
		return -errno;
	if (!pid)
		_exit(qp_bindns_enter(tree, at) ? 1 : 0);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	return WIFEXITED(status) && !WEXITSTATUS(status) ? 0 : -EPERM;
}
