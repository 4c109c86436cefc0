// SPDX-License-Identifier: MIT
/*
 * loader/proc.c on real processes: a child with several threads is stopped,
 * resumed, then killed while held; the loader's process layer must see the
 * death, describe it, and never block (a killed thread-group leader is
 * reported only after its traced threads were collected: a plain blocking
 * waitpid() on it would hang).  Every step runs under an alarm.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "proc.h"

static void *child_thread(void *arg)
{
	(void)arg;
	for (;;)
		pause();
	return NULL;
}

/* A child with 1 + @extra threads, all started when it returns. */
static pid_t spawn(int extra)
{
	int fds[2];
	pid_t pid;
	char c;

	if (pipe(fds))
		return -1;
	pid = fork();
	if (pid == 0) {
		pthread_t t;
		int i;

		prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive a failed test */
		for (i = 0; i < extra; i++)
			pthread_create(&t, NULL, child_thread, NULL);
		if (write(fds[1], "x", 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	close(fds[1]);
	if (pid < 0 || read(fds[0], &c, 1) != 1)
		pid = -1;
	close(fds[0]);
	return pid;
}

static void test_stop_resume(void)
{
	struct qp_error err = { 0 };
	struct qp_proc p;
	pid_t pid = spawn(3);

	CHECK(pid > 0);
	alarm(10);
	CHECK_INT(qp_proc__open(pid, &p, &err), 0);
	CHECK_INT(qp_proc__stop(&p, &err), 0);
	CHECK_INT(p.nthreads, 4);
	CHECK(p.held);
	CHECK(!qp_proc__died_now(&p));
	CHECK(!qp_proc__dead(&p));
	CHECK_INT(qp_proc__resume(&p, &err), 0);
	CHECK(!p.held);
	/* twice: nothing left behind by the first round */
	CHECK_INT(qp_proc__stop(&p, &err), 0);
	CHECK_INT(p.nthreads, 4);
	CHECK_INT(qp_proc__resume(&p, &err), 0);
	qp_proc__close(&p);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	alarm(0);
}

static void test_killed_while_held(void)
{
	struct qp_error err = { 0 };
	char how[64];
	struct qp_proc p;
	int64_t ret;
	pid_t pid = spawn(3);

	CHECK(pid > 0);
	alarm(10);
	CHECK_INT(qp_proc__open(pid, &p, &err), 0);
	CHECK_INT(qp_proc__stop(&p, &err), 0);
	CHECK_INT(qp_proc__find_gadget(&p, &err), 0);
	kill(pid, SIGKILL);
	CHECK(qp_proc__dead(&p));
	CHECK(p.died);
	CHECK_STR(qp_proc__death(&p, how, sizeof(how)), "was killed by signal 9 (Killed)");
	/* a remote syscall fails at once (memory may stay readable for a
	 * moment while the last threads go) */
	CHECK(qp_proc__syscall(&p, 39 /* getpid */, NULL, 0, &ret, &err) != 0);
	qp_proc__resume(&p, NULL);
	CHECK(qp_proc__stop(&p, &err) != 0);
	qp_proc__close(&p);
	waitpid(pid, NULL, WNOHANG);
	alarm(0);
}

/*
 * The process dies while its leader runs a remote call (it calls kill() on
 * itself; the child shares our libc's addresses): the wait for the leader
 * must collect the other threads' ends, or the kernel never reports it.
 */
static void test_killed_in_call(void)
{
	struct qp_error err = { 0 };
	struct qp_proc p;
	uint64_t args[2], ret = 0;
	char how[64];
	pid_t pid = spawn(3);

	CHECK(pid > 0);
	alarm(10);
	CHECK_INT(qp_proc__open(pid, &p, &err), 0);
	CHECK_INT(qp_proc__stop(&p, &err), 0);
	CHECK_INT(p.threads[0].tid, pid);
	args[0] = (uint64_t)pid;
	args[1] = SIGKILL;
	CHECK_INT(qp_proc__call(&p, (uint64_t)(uintptr_t)kill, args, 2, 5000, &ret, &err), QP_EPROC);
	CHECK_CONTAINS(err.msg, "thread ended during a remote call");
	CHECK(qp_proc__dead(&p));
	CHECK_STR(qp_proc__death(&p, how, sizeof(how)), "was killed by signal 9 (Killed)");
	qp_proc__close(&p);
	waitpid(pid, NULL, WNOHANG);
	alarm(0);
}

/* Not stopped by us, ended by itself: stopping it says so. */
static void test_ended_before_stop(void)
{
	struct qp_error err = { 0 };
	struct qp_proc p;
	pid_t pid = spawn(2);

	CHECK(pid > 0);
	alarm(10);
	CHECK_INT(qp_proc__open(pid, &p, &err), 0);
	kill(pid, SIGKILL);
	usleep(100000); /* a zombie now, its parent (us) has not reaped it */
	CHECK_INT(qp_proc__stop(&p, &err), QP_EPROC);
	CHECK_CONTAINS(err.msg, "ended while being stopped");
	CHECK(qp_proc__dead(&p));
	qp_proc__close(&p);
	waitpid(pid, NULL, 0);
	alarm(0);
}

/* The memory map: every line of /proc/self/maps parsed as the kernel wrote
 * it, found by address, copied. */
static void test_maps(void)
{
	char name[] = "/tmp/qp maps  test XXXXXX"; /* spaces in a path */
	struct qp_error err = { 0 };
	struct qp_maps m = { 0 }, k = { 0 };
	const struct qp_map *f, *g;
	char line[1024], path[512];
	FILE *fp = fopen("/proc/self/maps", "re");
	size_t lines = 0, i;
	bool sorted = true;
	void *p, *q = MAP_FAILED;
	int fd = mkstemp(name);

	CHECK(fd >= 0 && !ftruncate(fd, 8192));
	if (fd >= 0)
		q = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 4096);
	CHECK(q != MAP_FAILED);
	p = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(p != MAP_FAILED);
	CHECK_INT(qp_maps__read(getpid(), &m, &err), 0);
	while (fp && fgets(line, sizeof(line), fp))
		lines++;
	if (fp)
		fclose(fp);
	/* every line an entry (the allocator, ASan's above all, may map or
	 * unmap between the two reads: not an exact count) */
	CHECK(m.n > 8 && m.n + 64 > lines && lines + 64 > m.n);
	for (i = 0; i < m.n; i++)
		sorted &= (!i || m.v[i - 1].end <= m.v[i].start) && m.v[i].start < m.v[i].end &&
			  strlen(m.v[i].perms) == 4 && strchr("r-", m.v[i].perms[0]) &&
			  strchr("ps", m.v[i].perms[3]);
	CHECK(sorted);
	f = qp_maps__find(&m, (uint64_t)(uintptr_t)&test_maps);
	CHECK(f != NULL);
	if (f) {
		CHECK_STR(f->perms, "r-xp");
		CHECK(readlink("/proc/self/exe", path, sizeof(path) - 1) > 0);
		path[sizeof(path) - 1] = '\0';
		path[strcspn(path, "\n")] = '\0';
		CHECK(strstr(f->path, "test_proc") != NULL);
	}
	f = qp_maps__find(&m, (uint64_t)(uintptr_t)p);
	CHECK(f && f->start == (uint64_t)(uintptr_t)p && !strcmp(f->path, "") &&
	      !strcmp(f->perms, "r--p") && f->offset == 0);
	f = qp_maps__find(&m, (uint64_t)(uintptr_t)q);
	CHECK(f && f->offset == 4096 && !strcmp(f->perms, "r--s"));
	if (f)
		CHECK_STR(f->path, name);
	CHECK(qp_maps__find(&m, 0) == NULL);
	CHECK_INT(qp_maps__copy(&m, &k, &err), 0);
	CHECK_INT(k.n, m.n);
	g = qp_maps__find(&k, (uint64_t)(uintptr_t)&test_maps);
	CHECK(g && g->path != f->path && !strcmp(g->path, qp_maps__find(&m, g->start)->path));
	qp_maps__release(&m);
	CHECK(k.n && k.v[k.n - 1].end > k.v[0].start); /* the copy outlives the original */
	qp_maps__release(&k);
	munmap(p, 4096);
	if (q != MAP_FAILED)
		munmap(q, 4096);
	if (fd >= 0) {
		close(fd);
		unlink(name);
	}
}

int main(void)
{
	test_maps();
	if (geteuid() != 0) {
		printf("test_proc: not root, skipped\n");
		return 0;
	}
	test_stop_resume();
	test_killed_while_held();
	test_killed_in_call();
	test_ended_before_stop();
	return check_report("test_proc");
}
