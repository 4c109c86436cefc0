/*
 * A program under a seccomp filter (tests/integration/t_seccomp.sh): it
 * installs the filter named by argv[1], written here in classic BPF as a
 * sandbox would (no libseccomp), then a thread prints what work() returns,
 * 10 times a second.  The filters:
 *
 *   none            no filter
 *   kill-memfd      SECCOMP_RET_KILL_PROCESS on memfd_create, all threads
 *   errno-mprotect  SECCOMP_RET_ERRNO(EPERM) on mprotect, all threads
 *   mdwe            like systemd's MemoryDenyWriteExecute=: EPERM for an
 *                   mprotect that adds PROT_EXEC, for mmap with PROT_WRITE
 *                   and PROT_EXEC
 *   spawn           like QEMU's -sandbox spawn=deny, elevateprivileges=deny:
 *                   kills on execve, execveat, fork, vfork, setuid, setgid,
 *                   on an mprotect/mmap asking for PROT_WRITE|PROT_EXEC and
 *                   on any other architecture; SECCOMP_RET_LOG for
 *                   memfd_create; everything else allowed.  SIGUSR1 makes
 *                   the program execve("/bin/true"), which the filter
 *                   answers by killing it (the proof it is in force).
 *   fd N|next       kills on ftruncate(N, ...), or on ftruncate of the
 *                   lowest free fd, the one the next open gets (the
 *                   program holds fds up to 4 open)
 *   tsync           4 more threads; one of them installs kill-memfd for
 *                   every thread (SECCOMP_FILTER_FLAG_TSYNC)
 *   worker          4 more threads; one of them installs kill-memfd for
 *                   itself only
 *   strict          the main thread enters strict mode (read, write,
 *                   exit, sigreturn only) and spins without system calls
 *   late-munmap     no filter until SIGUSR2, then SECCOMP_RET_ERRNO(EPERM)
 *                   on munmap for every thread (prints "filtered")
 *   exec-allow CMD  installs an allow-all filter and runs CMD (a loader
 *                   under seccomp: it cannot read other filters)
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

long work(long x);

#define LOAD(field) BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, field))
#define LOAD_ARG_LO(i) BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[i]))
/* if nr == SYS: return RET; else go on (3 instructions) */
#define ON(sys, ret) LOAD(nr), BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (sys), 0, 1), BPF_STMT(BPF_RET | BPF_K, (ret))
#define ALLOW BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)

static struct sock_filter kill_memfd[] = {
	ON(SYS_memfd_create, SECCOMP_RET_KILL_PROCESS),
	ALLOW,
};

static struct sock_filter errno_mprotect[] = {
	ON(SYS_mprotect, SECCOMP_RET_ERRNO | EPERM),
	ALLOW,
};

static struct sock_filter mdwe[] = {
	LOAD(nr),
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_mprotect, 0, 3),
	LOAD_ARG_LO(2),
	BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, PROT_EXEC, 0, 5),
	BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_mmap, 0, 3),
	LOAD_ARG_LO(2),
	BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, PROT_WRITE, 0, 1),
	BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, PROT_EXEC, 1, 0),
	ALLOW,
	BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
};

/* W|X: kept in scratch memory, compared with X, to use more of cBPF */
static struct sock_filter spawn[] = {
	LOAD(arch),
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
	BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
	BPF_STMT(BPF_LD | BPF_IMM, PROT_WRITE | PROT_EXEC),
	BPF_STMT(BPF_ST, 3),
	ON(SYS_execve, SECCOMP_RET_KILL_PROCESS),
	ON(SYS_execveat, SECCOMP_RET_KILL_PROCESS),
	ON(SYS_fork, SECCOMP_RET_KILL_PROCESS),
	ON(SYS_vfork, SECCOMP_RET_KILL_PROCESS),
	ON(SYS_setuid, SECCOMP_RET_KILL_PROCESS),
	ON(SYS_setgid, SECCOMP_RET_KILL_PROCESS),
	ON(SYS_memfd_create, SECCOMP_RET_LOG),
	LOAD(nr),
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_mprotect, 1, 0),
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_mmap, 0, 5),
	LOAD_ARG_LO(2),
	BPF_STMT(BPF_LDX | BPF_MEM, 3),
	BPF_STMT(BPF_ALU | BPF_AND | BPF_X, 0),
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_X, 0, 0, 1),
	BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
	ALLOW,
};

static struct sock_filter errno_munmap[] = {
	ON(SYS_munmap, SECCOMP_RET_ERRNO | EPERM),
	ALLOW,
};

static struct sock_filter allow_all[] = {
	ALLOW,
};

/* ftruncate(fd_arg, ...) kills; k of instruction 2 is set from argv */
static struct sock_filter fd_filter[] = {
	LOAD(nr),
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_ftruncate, 0, 3),
	LOAD_ARG_LO(0),
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0 /* set in main */, 0, 1),
	BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
	ALLOW,
};

#define INSTALL(f, flags) install(f, sizeof(f) / sizeof(f[0]), flags)

static void install(struct sock_filter *f, size_t n, unsigned int flags)
{
	struct sock_fprog prog = { (unsigned short)n, f };

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) ||
	    syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog)) {
		perror("seccomp");
		exit(2);
	}
}

static void *printer(void *arg)
{
	(void)arg;
	for (;;) {
		printf("value=%ld\n", work(1));
		usleep(100000);
	}
	return NULL;
}

static int worker_flags = -1;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t done = PTHREAD_COND_INITIALIZER;
static int installed;

static void *worker(void *arg)
{
	if ((long)arg == 0 && worker_flags >= 0) {
		INSTALL(kill_memfd, (unsigned int)worker_flags);
		pthread_mutex_lock(&lock);
		installed = 1;
		pthread_cond_signal(&done);
		pthread_mutex_unlock(&lock);
	}
	for (;;)
		pause();
	return NULL;
}

static void on_usr1(int sig)
{
	(void)sig;
	execl("/bin/true", "true", (char *)NULL);
}

static void on_usr2(int sig)
{
	(void)sig;
	INSTALL(errno_munmap, SECCOMP_FILTER_FLAG_TSYNC);
	if (write(1, "filtered\n", 9) != 9)
		_exit(3);
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "none";
	volatile unsigned long spin = 0;
	pthread_t t;
	long i;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!strcmp(mode, "exec-allow") && argc > 2) {
		INSTALL(allow_all, 0);
		execvp(argv[2], argv + 2);
		perror(argv[2]);
		return 127;
	}
	signal(SIGUSR1, on_usr1);
	signal(SIGUSR2, on_usr2);
	if (!strcmp(mode, "fd")) {
		int next;

		while (open("/dev/null", O_RDONLY) < 4) /* fds 3 and 4 at least */
			;
		next = open("/dev/null", O_RDONLY);
		close(next);
		fd_filter[3].k = (unsigned int)(argc > 2 && strcmp(argv[2], "next") ? atoi(argv[2]) : next);
		printf("ftruncate(%u) kills\n", fd_filter[3].k);
	}
	if (pthread_create(&t, NULL, printer, NULL))
		return 2;
	if (!strcmp(mode, "tsync") || !strcmp(mode, "worker")) {
		worker_flags = !strcmp(mode, "tsync") ? SECCOMP_FILTER_FLAG_TSYNC : 0;
		for (i = 0; i < 4; i++)
			pthread_create(&t, NULL, worker, (void *)i);
		pthread_mutex_lock(&lock);
		while (!installed)
			pthread_cond_wait(&done, &lock);
		pthread_mutex_unlock(&lock);
	} else if (!strcmp(mode, "kill-memfd")) {
		INSTALL(kill_memfd, SECCOMP_FILTER_FLAG_TSYNC);
	} else if (!strcmp(mode, "errno-mprotect")) {
		INSTALL(errno_mprotect, SECCOMP_FILTER_FLAG_TSYNC);
	} else if (!strcmp(mode, "mdwe")) {
		INSTALL(mdwe, SECCOMP_FILTER_FLAG_TSYNC);
	} else if (!strcmp(mode, "spawn")) {
		INSTALL(spawn, SECCOMP_FILTER_FLAG_TSYNC);
	} else if (!strcmp(mode, "fd")) {
		INSTALL(fd_filter, SECCOMP_FILTER_FLAG_TSYNC);
	} else if (!strcmp(mode, "strict")) {
		printf("strict\n");
		if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_STRICT, 0, 0, 0))
			return 2;
		for (;;) /* no system call from here on */
			spin++;
	} else if (strcmp(mode, "none") && strcmp(mode, "late-munmap")) {
		fprintf(stderr, "unknown mode '%s'\n", mode);
		return 2;
	}
	printf("mode %s\n", mode);
	for (;;)
		pause();
}
