// SPDX-License-Identifier: MIT
/*
 * qpatch-agentctl: ask the agent in a process (libqpatch-agent.so) to
 * apply, list or undo patches; for processes the loader may not trace.
 *
 * qpatch-agentctl [options] PID FIX.qpatch   apply
 * qpatch-agentctl [options] --so PID FIX.so  apply a hand-written library
 * qpatch-agentctl --list PID                 list
 * qpatch-agentctl --undo PID [ID]            undo the last patch (or ID)
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "agent.h"
#include "host.h"
#include "qpatch/version.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: qpatch-agentctl [options] PID FIX.qpatch   apply a patch through the agent\n"
		"       qpatch-agentctl [options] --so PID FIX.so  apply a hand-written library\n"
		"       qpatch-agentctl --list PID                 list the patches applied\n"
		"       qpatch-agentctl --undo PID [ID]            undo the last patch (or ID)\n"
		"The process must run the agent (LD_PRELOAD=libqpatch-agent.so, or linked in).\n"
		"  -l, --list            list\n"
		"  -u, --undo            undo\n"
		"  -r, --retries N       attempts while a thread is in the code (default 200)\n"
		"  -d, --retry-delay MS  wait between attempts (default 5)\n"
		"  -a, --allow-active    apply while threads run the old code\n"
		"      --ignore-seccomp  go on when the seccomp filters cannot be read\n"
		"      --rewrite-calls   also rewrite the direct call sites of replaced functions\n"
		"      --verify KEY      refuse a patch not signed by the Ed25519 public key\n"
		"                        KEY (a PEM file, or a directory of *.pem; repeatable);\n"
		"                        without it the store's policy file applies, if any\n"
		"      --so              FIX.so is a hand-written library (qpatch/so.h), which\n"
		"                        the agent loads with dlopen\n"
		"      --no-type-check   --so: apply even when a replacement's prototype differs\n"
		"  -h, --help            this help\n"
		"  -V, --version         print the version and exit\n");
}

/* Connect to the agent of @pid: its socket file, else its abstract name;
 * the peer must be @pid itself. */
static int connect_agent(pid_t pid, char *why, size_t size)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct ucred cred;
	socklen_t len = sizeof(cred), salen;
	char path[108];
	int fd, k, file_errno = 0;

	snprintf(path, sizeof(path), "%s/agent-%d.sock", QP_AGENT_SOCK_DIR, (int)pid);
	for (k = 0; k < 2; k++) {
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			snprintf(why, size, "socket: %s", strerror(errno));
			return -1;
		}
		memset(sa.sun_path, 0, sizeof(sa.sun_path));
		if (!k) {
			snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
			salen = sizeof(sa);
		} else {
			salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 +
					    (size_t)snprintf(sa.sun_path + 1, sizeof(sa.sun_path) - 1,
							     "%s%d", QP_AGENT_ABSTRACT, (int)pid));
		}
		if (!connect(fd, (struct sockaddr *)&sa, salen))
			break;
		if (!k)
			file_errno = errno;
		close(fd);
		fd = -1;
	}
	if (fd < 0 && (file_errno == EACCES || file_errno == EPERM)) {
		snprintf(why, size, "cannot reach the agent of process %d at '%s': %s (it takes "
			 "requests from root only)", (int)pid, path, strerror(file_errno));
		return -1;
	}
	if (fd < 0) {
		snprintf(why, size, "process %d runs no agent (no socket '%s' nor '@%s%d'): start it with "
			 "LD_PRELOAD=libqpatch-agent.so", (int)pid, path, QP_AGENT_ABSTRACT, (int)pid);
		return -1;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) || cred.pid != pid) {
		snprintf(why, size, "the agent socket of process %d is served by process %d, not by it",
			 (int)pid, (int)cred.pid);
		close(fd);
		return -1;
	}
	return fd;
}

static int write_all(int fd, const void *buf, size_t len)
{
	size_t off = 0;

	while (off < len) {
		ssize_t n = send(fd, (const char *)buf + off, len - off, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		off += (size_t)n;
	}
	return 0;
}

/* Send @head (and @body), print the reply; the exit status. */
static int request(pid_t pid, const char *head, const void *body, size_t len)
{
	char why[512], buf[4096], *text = NULL;
	size_t tlen = 0;
	ssize_t n;
	int fd = connect_agent(pid, why, sizeof(why));
	bool ok;
	FILE *f;

	if (fd < 0) {
		fprintf(stderr, "qpatch-agentctl: %s\n", why);
		return 1;
	}
	if (write_all(fd, head, strlen(head)) || (len && write_all(fd, body, len))) {
		/* the agent may have refused before reading it all: its reply says why */
		shutdown(fd, SHUT_WR);
	}
	f = open_memstream(&text, &tlen);
	if (!f) {
		close(fd);
		return 1;
	}
	while ((n = read(fd, buf, sizeof(buf))) > 0 || (n < 0 && errno == EINTR))
		if (n > 0)
			fwrite(buf, 1, (size_t)n, f);
	fclose(f);
	close(fd);
	ok = !strncmp(text, "ok\n", 3);
	if (ok) {
		fputs(text + 3, stdout);
	} else if (!strncmp(text, "refused\n", 8)) {
		char *line, *save = NULL;

		for (line = strtok_r(text + 8, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
			fprintf(stderr, "qpatch-agentctl: %s\n", line);
	} else {
		fprintf(stderr, "qpatch-agentctl: the agent of process %d gave no answer\n", (int)pid);
	}
	free(text);
	return ok ? 0 : 1;
}

/* A file name for messages: no spaces or newlines. */
static void plain_name(const char *path, char *out, size_t size)
{
	size_t i;

	snprintf(out, size, "%s", path);
	for (i = 0; out[i]; i++)
		if (out[i] <= ' ' || out[i] == 0x7f)
			out[i] = '_';
}

static int do_apply(pid_t pid, const char *path, const char **keys, size_t nkeys, int retries,
		    int delay, unsigned flags)
{
	struct qp_error err = { 0 };
	struct qp_policy *pol = NULL;
	char head[QP_AGENT_LINE], name[256];
	uint8_t *buf = NULL;
	size_t len = 0;
	int ret;

	/* the signature is checked here, on the bytes sent; the agent checks
	 * the format and everything else */
	ret = nkeys ? qp_policy__from_keys(keys, nkeys, &pol, &err) :
		      qp_policy__load(qp_store_default_dir(), &pol, &err);
	if (!ret)
		ret = qp_trust_read(path, QP_AGENT_MAX_PATCH, &buf, &len, &err);
	if (!ret)
		ret = qp_policy__check(pol, buf, len, path, &err);
	qp_policy__free(pol);
	if (ret) {
		fprintf(stderr, "qpatch-agentctl: %s\n", err.msg);
		free(buf);
		return 1;
	}
	plain_name(path, name, sizeof(name));
	snprintf(head, sizeof(head), "apply %zu %d %d %u %s\n", len, retries, delay, flags, name);
	ret = request(pid, head, buf, len);
	free(buf);
	return ret;
}

/* A hand-written library: the trust rules and the store's policy (which
 * refuses libraries when it requires signatures: they carry none) are
 * checked here, as qpatch-load --so does; the agent loads it by path. */
static int do_so(pid_t pid, const char *path, int retries, int delay, unsigned flags)
{
	struct qp_error err = { 0 };
	char head[QP_AGENT_LINE], real[PATH_MAX];
	int ret = qp_so_acceptable(path, &err);

	if (!ret && !realpath(path, real))
		ret = qp_seterr(&err, -errno, "cannot resolve '%s': %s", path, strerror(errno));
	if (!ret && (strchr(real, '\n') ||
		     (size_t)snprintf(head, sizeof(head), "so %d %d %u %s\n", retries, delay, flags,
				      real) >= sizeof(head)))
		ret = qp_seterr(&err, -EINVAL, "'%s': a path the agent's request cannot carry", real);
	if (ret) {
		fprintf(stderr, "qpatch-agentctl: %s; process %d left unchanged\n", err.msg, (int)pid);
		return 1;
	}
	return request(pid, head, NULL, 0);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "list", no_argument, NULL, 'l' },
		{ "undo", no_argument, NULL, 'u' },
		{ "retries", required_argument, NULL, 'r' },
		{ "retry-delay", required_argument, NULL, 'd' },
		{ "allow-active", no_argument, NULL, 'a' },
		{ "ignore-seccomp", no_argument, NULL, 'S' },
		{ "rewrite-calls", no_argument, NULL, 'R' },
		{ "verify", required_argument, NULL, 'K' },
		{ "so", no_argument, NULL, 's' },
		{ "no-type-check", no_argument, NULL, 'T' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char **keys = calloc((size_t)argc, sizeof(char *));
	size_t nkeys = 0;
	int c, list = 0, undo = 0, so = 0, retries = 0, delay = 0, nargs, ret;
	unsigned flags = 0;
	char head[QP_AGENT_LINE], *end;
	long pid;

	if (!keys)
		return 1;
	while ((c = getopt_long(argc, argv, "lur:d:ahV", longopts, NULL)) != -1) {
		switch (c) {
		case 'l': list = 1; break;
		case 'u': undo = 1; break;
		case 'r': retries = atoi(optarg); break;
		case 'd': delay = atoi(optarg); break;
		case 'a': flags |= QP_AGENT_F_ALLOW_ACTIVE; break;
		case 'S': flags |= QP_AGENT_F_IGNORE_SECCOMP; break;
		case 'R': flags |= QP_AGENT_F_REWRITE_CALLS; break;
		case 'K': keys[nkeys++] = optarg; break;
		case 's': so = 1; break;
		case 'T': flags |= QP_AGENT_F_NO_TYPE_CHECK; break;
		case 'h': usage(stdout); free(keys); return 0;
		case 'V': free(keys); return qp_version_print("qpatch-agentctl");
		default: usage(stderr); free(keys); return 2;
		}
	}
	nargs = argc - optind;
	if (so && nkeys) {
		fprintf(stderr, "qpatch-agentctl: --verify does not apply to --so: a library carries no "
			"signature\n");
		free(keys);
		return 2;
	}
	if (list + undo + so > 1 || nargs < 1 || (list && nargs != 1) || (undo && nargs > 2) ||
	    (!list && !undo && nargs != 2) || ((nkeys || flags) && (list || undo))) {
		usage(stderr);
		free(keys);
		return 2;
	}
	pid = strtol(argv[optind], &end, 10);
	if (*end || pid <= 0) {
		fprintf(stderr, "qpatch-agentctl: '%s' is not a process id\n", argv[optind]);
		free(keys);
		return 2;
	}
	if (list) {
		ret = request((pid_t)pid, "list\n", NULL, 0);
	} else if (undo) {
		if (nargs == 2 && (strchr(argv[optind + 1], '\n') || !argv[optind + 1][0])) {
			fprintf(stderr, "qpatch-agentctl: bad patch id\n");
			free(keys);
			return 2;
		}
		snprintf(head, sizeof(head), "undo %s\n", nargs == 2 ? argv[optind + 1] : "-");
		ret = request((pid_t)pid, head, NULL, 0);
	} else if (so) {
		ret = do_so((pid_t)pid, argv[optind + 1], retries, delay, flags);
	} else {
		ret = do_apply((pid_t)pid, argv[optind + 1], keys, nkeys, retries, delay, flags);
	}
	free(keys);
	return ret;
}
