// SPDX-License-Identifier: MIT
/*
 * New processes: the kernel's process-event connector (netlink,
 * NETLINK_CONNECTOR / CN_IDX_PROC) reports each execve() as it completes,
 * with a CLOCK_MONOTONIC time stamp.  It needs CAP_NET_ADMIN and a kernel
 * with CONFIG_PROC_EVENTS; where either is missing, /proc is polled for
 * process ids not seen before (qp_watch__poll).
 *
 * Events are untrusted input only in the sense that they may be lost: a
 * full socket buffer (ENOBUFS) drops them, and the caller then rescans.
 */
#include <errno.h>
#include <linux/cn_proc.h>
#include <linux/connector.h>
#include <linux/netlink.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "host.h"

#define WATCH_RCVBUF (4 << 20) /* room for an exec storm */

struct watch_seen {
	pid_t pid;
	uint64_t start; /* qp_host_start_time(): tells a reused pid apart */
};

struct qp_watch {
	int fd;                  /* netlink socket, -1 when polling */
	struct watch_seen *seen; /* polling: the processes known, by pid */
	size_t nseen;            /* count of seen */
	bool primed;             /* polling: seen holds a first scan */
};

static int watch_listen(int fd, enum proc_cn_mcast_op op)
{
	struct {
		struct nlmsghdr nl;
		struct cn_msg cn;
		enum proc_cn_mcast_op op;
	} __attribute__((packed)) msg;

	memset(&msg, 0, sizeof(msg));
	msg.nl.nlmsg_len = sizeof(msg);
	msg.nl.nlmsg_type = NLMSG_DONE;
	msg.nl.nlmsg_pid = 0;
	msg.cn.id.idx = CN_IDX_PROC;
	msg.cn.id.val = CN_VAL_PROC;
	msg.cn.len = sizeof(op);
	msg.op = op;
	return send(fd, &msg, sizeof(msg), 0) == (ssize_t)sizeof(msg) ? 0 : -errno;
}

int qp_watch__new(bool poll_only, struct qp_watch **out, struct qp_error *err)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK, .nl_groups = CN_IDX_PROC };
	struct qp_watch *w = calloc(1, sizeof(*w));
	int size = WATCH_RCVBUF;

	*out = NULL;
	if (!w)
		return qp_seterr(err, -ENOMEM, "out of memory");
	w->fd = -1;
	if (!poll_only) {
		w->fd = socket(PF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
			       NETLINK_CONNECTOR);
		if (w->fd >= 0 &&
		    setsockopt(w->fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)))
			setsockopt(w->fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
		if (w->fd >= 0 && (bind(w->fd, (struct sockaddr *)&sa, sizeof(sa)) ||
				   watch_listen(w->fd, PROC_CN_MCAST_LISTEN))) {
			qp_seterr(err, -errno, "process events unavailable: %s", strerror(errno));
			close(w->fd);
			w->fd = -1;
		} else if (w->fd < 0) {
			qp_seterr(err, -errno, "process events unavailable: %s", strerror(errno));
		}
	}
	*out = w;
	return 0;
}

void qp_watch__free(struct qp_watch *w)
{
	if (!w)
		return;
	if (w->fd >= 0) {
		watch_listen(w->fd, PROC_CN_MCAST_IGNORE);
		close(w->fd);
	}
	free(w->seen);
	free(w);
}

int qp_watch__fd(const struct qp_watch *w)
{
	return w->fd;
}

int qp_watch__read(struct qp_watch *w, qp_exec_fn fn, void *arg)
{
	char buf[8192] __attribute__((aligned(NLMSG_ALIGNTO)));
	bool lost = false;

	for (;;) {
		struct sockaddr_nl from;
		socklen_t fromlen = sizeof(from);
		ssize_t n = recvfrom(w->fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fromlen);
		struct nlmsghdr *nl;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == ENOBUFS) {
			lost = true; /* events dropped: the caller rescans */
			continue;
		}
		if (n <= 0)
			break;
		/* only the kernel speaks for processes: a message another process
		 * sent to our socket is dropped */
		if (fromlen != sizeof(from) || from.nl_family != AF_NETLINK || from.nl_pid != 0)
			continue;
		for (nl = (struct nlmsghdr *)buf; NLMSG_OK(nl, (size_t)n); nl = NLMSG_NEXT(nl, n)) {
			struct cn_msg cn;
			struct proc_event ev;

			if (nl->nlmsg_type == NLMSG_ERROR || nl->nlmsg_type == NLMSG_NOOP)
				continue;
			if (nl->nlmsg_len < NLMSG_LENGTH(sizeof(cn) + sizeof(ev)))
				continue;
			/* the event follows a 20-byte header: copy it out aligned */
			memcpy(&cn, NLMSG_DATA(nl), sizeof(cn));
			memcpy(&ev, (const char *)NLMSG_DATA(nl) + sizeof(cn), sizeof(ev));
			if (cn.id.idx != CN_IDX_PROC || cn.id.val != CN_VAL_PROC || cn.len < sizeof(ev))
				continue;
			if (ev.what == PROC_EVENT_EXEC &&
			    ev.event_data.exec.process_pid == ev.event_data.exec.process_tgid)
				fn(ev.event_data.exec.process_tgid, (double)ev.timestamp_ns, arg);
		}
	}
	return lost ? -ENOBUFS : 0;
}

static int seen_cmp(const void *a, const void *b)
{
	const struct watch_seen *x = a, *y = b;

	return x->pid < y->pid ? -1 : x->pid > y->pid;
}

int qp_watch__poll(struct qp_watch *w, qp_exec_fn fn, void *arg, struct qp_error *err)
{
	struct watch_seen *now;
	pid_t *pids;
	size_t n, i;
	int ret;

	ret = qp_host_pids(&pids, &n, err);
	if (ret)
		return ret;
	now = calloc(n ? n : 1, sizeof(*now));
	if (!now) {
		free(pids);
		return qp_seterr(err, -ENOMEM, "out of memory");
	}
	for (i = 0; i < n; i++) {
		struct watch_seen key = { .pid = pids[i] }, *old;

		now[i].pid = pids[i];
		now[i].start = qp_host_start_time(pids[i]);
		old = w->primed ? bsearch(&key, w->seen, w->nseen, sizeof(key), seen_cmp) : NULL;
		if (w->primed && (!old || old->start != now[i].start) && now[i].start)
			fn(pids[i], 0, arg);
	}
	free(pids);
	free(w->seen);
	w->seen = now; /* pids come sorted */
	w->nseen = n;
	w->primed = true;
	return 0;
}
