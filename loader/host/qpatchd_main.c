// SPDX-License-Identifier: MIT
/*
 * qpatchd: keeps every process of a stored binary patched (host.h,
 * daemon.c).  Logs one line per event to stderr; under systemd (the
 * journal's stream, $JOURNAL_STREAM) each line carries its priority.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>

#include "host.h"
#include "qpatch/version.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: qpatchd [options]\n"
		"\n"
		"Applies the patches of the store to every running process of their\n"
		"binaries and to each new one as it starts; undoes removed patches.\n"
		"\n"
		"  -s, --store DIR       the store (default $QPATCH_STORE or " QP_STORE_DEFAULT ")\n"
		"  -J, --jobs N          processes patched at once (default 4); new processes\n"
		"                        held at their entry point do not count\n"
		"      --hold-ms MS      hold a new process at its entry point at most this long\n"
		"                        (default 5000; 0: patch new processes as they run)\n"
		"      --rescan-ms MS    look at every process again this often, for libraries\n"
		"                        loaded later (default 2000; 0: never)\n"
		"      --poll-ms MS      without process events, poll for new processes this\n"
		"                        often (default 100)\n"
		"      --poll            do not use process events\n"
		"      --once            bring the running processes up to date and exit\n"
		"  -r, --retries N       stop attempts while code is busy (default 200)\n"
		"  -d, --retry-delay MS  pause between attempts (default 5)\n"
		"  -c, --rewrite-calls   also make the direct calls to each replaced function\n"
		"                        call the new code (qpatch-load --rewrite-calls)\n"
		"      --no-type-check   apply stored .so patches even when a replacement's\n"
		"                        prototype differs (qpatch-load --no-type-check)\n"
		"  -V, --version         print the version\n"
		"  -h, --help            this text\n");
}

static void log_line(int prio, const char *msg, void *arg)
{
	bool journal = arg != NULL;

	if (journal) {
		fprintf(stderr, "<%d>%s\n", prio, msg);
	} else {
		char when[32];
		time_t t = time(NULL);
		struct tm tm;

		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", localtime_r(&t, &tm));
		fprintf(stderr, "%s qpatchd: %s%s\n", when,
			prio <= LOG_ERR ? "error: " : prio == LOG_WARNING ? "warning: " : "", msg);
	}
	fflush(stderr);
}

static int number(const char *opt, const char *s, int lo, int hi)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (*end || v < lo || v > hi) {
		fprintf(stderr, "qpatchd: %s takes %d..%d\n", opt, lo, hi);
		exit(2);
	}
	return (int)v;
}

/* Is stderr the journal?  systemd says so in $JOURNAL_STREAM ("DEV:INODE"). */
static bool stderr_is_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	return js && sscanf(js, "%llu:%llu", &dev, &ino) == 2 && !fstat(2, &st) &&
	       (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

int main(int argc, char **argv)
{
	enum { O_HOLD = 256, O_RESCAN, O_POLLMS, O_POLL, O_ONCE, O_NOTYPE };
	static const struct option longopts[] = {
		{ "store", required_argument, NULL, 's' },
		{ "jobs", required_argument, NULL, 'J' },
		{ "hold-ms", required_argument, NULL, O_HOLD },
		{ "rescan-ms", required_argument, NULL, O_RESCAN },
		{ "poll-ms", required_argument, NULL, O_POLLMS },
		{ "poll", no_argument, NULL, O_POLL },
		{ "once", no_argument, NULL, O_ONCE },
		{ "retries", required_argument, NULL, 'r' },
		{ "retry-delay", required_argument, NULL, 'd' },
		{ "rewrite-calls", no_argument, NULL, 'c' },
		{ "no-type-check", no_argument, NULL, O_NOTYPE },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct qp_load_opts load = { 0 };
	struct qp_daemon_opts o = {
		.store_dir = qp_store_default_dir(), .jobs = 4, .hold_ms = 5000,
		.rescan_ms = 2000, .poll_ms = 100, .load = &load, .log = log_line,
	};
	struct qp_error err = { 0 };
	int c;

	while ((c = getopt_long(argc, argv, "s:J:r:d:cVh", longopts, NULL)) != -1) {
		switch (c) {
		case 's': o.store_dir = optarg; break;
		case 'J': o.jobs = number("--jobs", optarg, 1, QP_POOL_MAX); break;
		case O_HOLD: o.hold_ms = number("--hold-ms", optarg, 0, 600000); break;
		case O_RESCAN: o.rescan_ms = number("--rescan-ms", optarg, 0, 86400000); break;
		case O_POLLMS: o.poll_ms = number("--poll-ms", optarg, 1, 600000); break;
		case O_POLL: o.poll_only = true; break;
		case O_ONCE: o.once = true; break;
		case 'r': load.retries = number("--retries", optarg, 1, 1000000); break;
		case 'd': load.retry_delay_ms = number("--retry-delay", optarg, 0, 60000); break;
		case 'c': load.rewrite_calls = true; break;
		case O_NOTYPE: load.no_type_check = true; break;
		case 'V': return qp_version_print("qpatchd");
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	if (o.once)
		o.rescan_ms = 0;
	/* under systemd, stderr is the journal: priorities as "<N>" prefixes */
	o.log_arg = stderr_is_journal() ? (void *)1 : NULL;
	if (qp_daemon_run(&o, &err)) {
		log_line(LOG_ERR, err.msg, o.log_arg);
		return 1;
	}
	return 0;
}
