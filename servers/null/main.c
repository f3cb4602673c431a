/*
 * rumpnull: a rump process serving the null service.
 *
 *   rumpnull [--socket PATH] [--pidfile PATH]
 *
 * Started by rumpd it follows the supervisor contract (rump/supervised.h,
 * docs/rumpd.md): it confines itself once set up, reports READY on
 * RUMPD_CONTROL_FD and answers the heartbeat; the listening socket may be
 * the supervisor's (RUMPD_LISTEN_FD).
 * SIGTERM or SIGINT stops it cleanly.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rump/ipc.h"
#include "rump/rumpkern.h"
#include "rump/server.h"
#include "rump/supervised.h"

#include "null_service.h"

struct options {
	const char *socket_path;   /* NULL: the runtime directory's */
	const char *pidfile;       /* NULL: none */
};

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: rumpnull [--socket PATH] [--pidfile PATH]\n"
	    "Serves the null service (a rump process for IPC tests and\n"
	    "benchmarks).  Default socket: $RUMPD_DIR/null.sock.\n");
}

/* 0, or 2 after printing why (the exit status for usage errors). */
static int
parse_options(int argc, char **argv, struct options *o, bool *help)
{
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "pidfile", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	*help = false;
	while ((c = getopt_long(argc, argv, "s:p:h", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			o->socket_path = optarg;
			break;
		case 'p':
			o->pidfile = optarg;
			break;
		case 'h':
			*help = true;
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "rumpnull: unexpected argument '%s'\n",
		        argv[optind]);
		usage(stderr);
		return 2;
	}
	return 0;
}

/*
 * An inherited descriptor named by an environment variable: -1 if the
 * variable is not set, else the descriptor after checking it is a socket.
 */
static int
inherited_socket(const char *var, int *fdp)
{
	const char *s = getenv(var);
	struct stat st;
	char *end;
	long v;

	*fdp = -1;
	if (s == NULL || *s == '\0')
		return 0;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < 0 || v > INT_MAX)
		return EINVAL;
	if (fstat((int)v, &st) != 0)
		return errno;
	if (!S_ISSOCK(st.st_mode))
		return ENOTSOCK;
	*fdp = (int)v;
	return 0;
}

/* Written under a temporary name and renamed: a reader never sees a
 * half-written pid. */
static int
write_pidfile(const char *path)
{
	char tmp[PATH_MAX];
	FILE *f;
	int error = 0;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return ENAMETOOLONG;
	f = fopen(tmp, "we");
	if (f == NULL)
		return errno;
	if (fprintf(f, "%ld\n", (long)getpid()) < 0)
		error = errno;
	if (fclose(f) != 0 && error == 0)
		error = errno;
	if (error == 0 && rename(tmp, path) != 0)
		error = errno;
	if (error)
		unlink(tmp);
	return error;
}

static int
make_dir(const char *path)
{
	if (mkdir(path, 0700) != 0 && errno != EEXIST)
		return errno;
	return 0;
}

/*
 * The listening socket: the supervisor's (RUMPD_LISTEN_FD), else a new one
 * at --socket or in the runtime directory.  path gets its name for the
 * logs; *ownp says whether the socket file is ours to remove.
 */
static int
open_listener(struct rk_runtime *rt, const struct options *opts, char *path,
              size_t cap, int *fdp, bool *ownp)
{
	char dir[PATH_MAX];
	int error;

	*ownp = false;
	if ((error = inherited_socket("RUMPD_LISTEN_FD", fdp)) != 0) {
		rk_err(rt, "bad RUMPD_LISTEN_FD: %s", strerror(error));
		return error;
	}
	if (*fdp >= 0) {
		snprintf(path, cap, "%s (fd %d from the supervisor)",
		         opts->socket_path ? opts->socket_path : "a socket",
		         *fdp);
		return 0;
	}
	if (opts->socket_path != NULL) {
		if (snprintf(path, cap, "%s", opts->socket_path) >= (int)cap)
			error = ENAMETOOLONG;
	} else if ((error = rump_runtime_dir(dir, sizeof(dir))) == 0 &&
	           (error = make_dir(dir)) == 0) {
		error = rump_service_path("null", path, cap);
	}
	if (error == 0)
		error = rump_listen_unix(path, fdp);
	if (error) {
		rk_err(rt, "cannot listen on %s: %s", opts->socket_path ?
		       opts->socket_path : "the runtime directory",
		       strerror(error));
		return error;
	}
	*ownp = true;
	return 0;
}

struct signal_waiter {
	pthread_t thread;
	sigset_t set;
	struct rump_server *server;
	struct rk_runtime *rt;
};

/* Signals are blocked in every thread; this one takes them synchronously,
 * so stopping needs no global state and no async-signal-safety tricks. */
static void *
signal_waiter_main(void *arg)
{
	struct signal_waiter *w = arg;
	int sig;

	if (sigwait(&w->set, &sig) == 0 && sig != SIGUSR1)
		rk_info(w->rt, "%s: stopping", strsignal(sig));
	rump_server_stop(w->server);
	return NULL;
}

/* What rumpd shows as this driver's work; the null service moves no data
 * that counts as bytes. */
static void
count_requests(void *ctx, struct rump_supervised_counters *out)
{
	struct rump_server_stats st;

	rump_server_stats(ctx, &st);
	out->requests = st.requests + st.control_msgs;
	out->bytes = 0;
}

int
main(int argc, char **argv)
{
	struct options opts = { 0 };
	struct rk_runtime_opts rtopts = { .name = "rumpnull" };
	struct rump_server_opts sopts = { 0 };
	struct signal_waiter waiter = { 0 };
	struct rk_runtime *rt = NULL;
	struct null_service *ns = NULL;
	struct rump_server *server = NULL;
	struct rump_supervised *sup = NULL;
	char path[PATH_MAX];
	int listen_fd, error, status;
	bool help, own_socket = false, own_pidfile = false;

	if ((status = parse_options(argc, argv, &opts, &help)) != 0)
		return status;
	if (help) {
		usage(stdout);
		return 0;
	}
	status = 1;

	/* Before any thread exists, so that they all inherit the mask. */
	sigemptyset(&waiter.set);
	sigaddset(&waiter.set, SIGTERM);
	sigaddset(&waiter.set, SIGINT);
	sigaddset(&waiter.set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &waiter.set, NULL);

	error = rk_runtime_create(&rtopts, &rt);
	if (error) {
		fprintf(stderr, "rumpnull: cannot start the runtime: %s\n",
		        strerror(error));
		return 1;
	}
	error = null_service_create(rt, &ns);
	if (error) {
		rk_err(rt, "cannot create the null service: %s",
		       strerror(error));
		goto out;
	}

	if ((error = rump_supervised_open("rumpnull", &sup)) != 0) {
		rk_err(rt, "bad RUMPD_CONTROL_FD: %s", strerror(error));
		goto out;
	}
	error = open_listener(rt, &opts, path, sizeof(path), &listen_fd,
	                      &own_socket);
	if (error)
		goto out;

	sopts.listen_fd = listen_fd;
	sopts.path = NULL;
	sopts.boot_id = rk_runtime_boot_id(rt);
	error = rump_server_create(&sopts, null_service_desc(ns), &server);
	if (error) {
		rk_err(rt, "cannot create the server: %s", strerror(error));
		if (listen_fd >= 0)
			close(listen_fd);
		goto out;
	}
	if (opts.pidfile != NULL) {
		if ((error = write_pidfile(opts.pidfile)) != 0) {
			rk_err(rt, "cannot write %s: %s", opts.pidfile,
			       strerror(error));
			goto out;
		}
		own_pidfile = true;
	}

	waiter.server = server;
	waiter.rt = rt;
	error = pthread_create(&waiter.thread, NULL, signal_waiter_main,
	                       &waiter);
	if (error) {
		rk_err(rt, "cannot start the signal thread: %s",
		       strerror(error));
		goto out;
	}

	/* Everything is open: from here on it needs no privilege. */
	if ((error = rump_supervised_confine(sup, RUMP_CONFINE_NULL)) != 0)
		goto stop_waiter;
	rk_info(rt, "serving null on %s, boot id %016" PRIx64, path,
	        sopts.boot_id);
	if ((error = rump_supervised_ready(sup, sopts.boot_id,
	                                   count_requests, server)) != 0)
		rk_warn(rt, "cannot report READY to the supervisor: %s",
		        strerror(error));

	error = rump_server_run(server);
	if (error)
		rk_err(rt, "server failed: %s", strerror(error));
	else
		status = 0;
stop_waiter:
	/* Wakes the waiter if the server stopped on its own. */
	pthread_kill(waiter.thread, SIGUSR1);
	pthread_join(waiter.thread, NULL);

out:
	rump_supervised_close(sup);
	if (ns != NULL)
		null_service_shutdown(ns);
	if (server != NULL)
		rump_server_destroy(server);
	null_service_destroy(ns);
	if (own_socket)
		unlink(path);
	if (own_pidfile)
		unlink(opts.pidfile);
	rk_runtime_destroy(rt);
	return status;
}
