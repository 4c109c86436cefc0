// SPDX-License-Identifier: MIT
/*
 * loader/entry.c on real processes: a program caught while its libraries'
 * constructors run (tests/integration/progs/fleet: libstart.so sleeps
 * before the entry point) is held at its entry point, with nothing of the
 * program run; one that has started already is left alone; a fork on the
 * way leaves a child that runs normally; an exec on the way ends the hold.
 * Every case checks the process runs its program afterwards.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "loader.h"

static char dir[512], out[600];

static int build(void)
{
	char cmd[2048];
	const char *src = getenv("QP_SRC"), *tmp = getenv("QP_TMP");

	snprintf(dir, sizeof(dir), "%s/test_hold.%d", tmp ? tmp : "/tmp", (int)getpid());
	snprintf(cmd, sizeof(cmd), "rm -rf '%s' && mkdir -p '%s' && cp -a '%s/tests/integration/progs/fleet/orig' '%s/app' && make -s -C '%s/app' >/dev/null",
		 dir, dir, src ? src : ".", dir, dir);
	return system(cmd);
}

/* Start the service with the given environment (NAME=VALUE strings),
 * output to a file; wait @ms for it to be well inside its start-up. */
static pid_t spawn(const char *env1, const char *env2, int ms)
{
	static int n;
	char prog[700];
	pid_t pid;

	snprintf(out, sizeof(out), "%s/out.%d", dir, n++);
	snprintf(prog, sizeof(prog), "%s/app/svc", dir);
	pid = fork();
	if (pid == 0) {
		int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(fd, 1);
		dup2(fd, 2);
		if (env1)
			putenv((char *)env1);
		if (env2)
			putenv((char *)env2);
		execl(prog, prog, (char *)NULL);
		_exit(127);
	}
	usleep(ms * 1000);
	return pid;
}

static uint64_t entry_of(pid_t pid)
{
	Elf64_auxv_t av[64];
	char path[64];
	ssize_t n;
	size_t i;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/auxv", (int)pid);
	fd = open(path, O_RDONLY);
	n = fd < 0 ? -1 : read(fd, av, sizeof(av));
	if (fd >= 0)
		close(fd);
	for (i = 0; n > 0 && i < (size_t)n / sizeof(av[0]); i++)
		if (av[i].a_type == AT_ENTRY)
			return av[i].a_un.a_val;
	return 0;
}

/* Lines of the current output file starting with @prefix, after waiting. */
static int lines(const char *prefix, int wait_ms)
{
	char line[256];
	int n = 0;
	FILE *f;

	usleep(wait_ms * 1000);
	f = fopen(out, "r");
	while (f && fgets(line, sizeof(line), f))
		n += !strncmp(line, prefix, strlen(prefix));
	if (f)
		fclose(f);
	return n;
}

static void finish(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

static void test_held(void)
{
	struct qp_error err = { 0 };
	struct user_regs_struct regs;
	struct qp_hold *h;
	pid_t pid = spawn("SVC_START_DELAY_MS=400", NULL, 100);
	int ret = qp_hold__entry(pid, 5000, &h, &err);

	CHECK_INT(ret, 0);
	if (ret) {
		fprintf(stderr, "%s\n", err.msg);
		finish(pid);
		return;
	}
	CHECK_INT(qp_hold__tid(h), pid);
	CHECK(ptrace(PTRACE_GETREGS, pid, 0, &regs) == 0);
	CHECK_INT(regs.rip, entry_of(pid));
	CHECK(qp_hold__held_us(h) > 100000); /* it waited for the constructor */
	CHECK_INT(lines("first=", 100), 0); /* held: main has not run */
	qp_hold__release(h);
	CHECK_INT(lines("first=1 (start-up delay 400 ms)", 300), 1);
	CHECK(lines("level=1", 0) > 0);
	finish(pid);
}

static void test_started(void)
{
	struct qp_error err = { 0 };
	struct qp_hold *h = NULL;
	pid_t pid = spawn(NULL, NULL, 300);
	int before = lines("level=", 0);

	CHECK_INT(qp_hold__entry(pid, 5000, &h, &err), -EALREADY);
	CHECK(h == NULL);
	CHECK(strstr(err.msg, "has started its program already") != NULL);
	CHECK(lines("level=", 200) > before); /* left running */
	CHECK(kill(pid, 0) == 0);
	finish(pid);
}

static void test_fork(void)
{
	struct qp_error err = { 0 };
	struct qp_hold *h;
	pid_t pid = spawn("SVC_START_DELAY_MS=300", "SVC_START_FORK=1", 100);
	int ret = qp_hold__entry(pid, 5000, &h, &err);

	CHECK_INT(ret, 0);
	if (!ret)
		qp_hold__release(h);
	/* the parent and the child both ran their program */
	CHECK_INT(lines("first=1", 400), 2);
	finish(pid);
	system("pkill -9 -f test_hold.*/app/svc"); /* the child */
}

static void test_exec(void)
{
	struct qp_error err = { 0 };
	struct qp_hold *h = NULL;
	pid_t pid = spawn("SVC_START_DELAY_MS=300", "SVC_START_EXEC=/bin/true", 100);
	int status = 0;

	CHECK_INT(qp_hold__entry(pid, 5000, &h, &err), -EAGAIN);
	CHECK(h == NULL);
	CHECK(strstr(err.msg, "another program") != NULL);
	CHECK_INT(waitpid(pid, &status, 0), pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0); /* /bin/true ran */
}

static void test_timeout(void)
{
	struct qp_error err = { 0 };
	struct qp_hold *h = NULL;
	pid_t pid = spawn("SVC_START_DELAY_MS=1500", NULL, 100);

	CHECK_INT(qp_hold__entry(pid, 200, &h, &err), -ETIMEDOUT);
	CHECK(h == NULL);
	CHECK_INT(lines("first=1 (start-up delay 1500 ms)", 1700), 1); /* the byte was put back */
	finish(pid);
}

int main(void)
{
	char cmd[600];

	alarm(180); /* generous: a loaded machine is slow, a hang is not */
	if (build()) {
		fprintf(stderr, "cannot build the fleet program\n");
		return 1;
	}
	test_held();
	test_started();
	test_fork();
	test_exec();
	test_timeout();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (!check_failed)
		system(cmd);
	return check_report("test_hold");
}
