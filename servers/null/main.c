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
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
	struct rk_runtime *rt = NULL;
	struct null_service *ns = NULL;
	struct rump_server *server = NULL;
	struct rump_supervised *sup = NULL;
	struct rump_driver_stopper *stopper = NULL;
	int sig;
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
	if ((error = rump_driver_signals_block()) != 0) {
		fprintf(stderr, "rumpnull: cannot block signals: %s\n",
		        strerror(error));
		return 1;
	}
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
	error = rump_driver_listen("null", opts.socket_path, path,
	                           sizeof(path), &listen_fd, &own_socket);
	if (error) {
		rk_err(rt, "cannot listen on %s: %s", opts.socket_path ?
		       opts.socket_path : "the runtime directory",
		       strerror(error));
		goto out;
	}

	sopts.listen_fd = listen_fd;
	sopts.path = NULL;
	sopts.boot_id = rk_runtime_boot_id(rt);
	error = rump_server_create(&sopts, null_service_desc(ns), &server);
	if (error) {
		rk_err(rt, "cannot create the server: %s", strerror(error));
		close(listen_fd);
		goto out;
	}
	if (opts.pidfile != NULL) {
		if ((error = rump_driver_pidfile(opts.pidfile)) != 0) {
			rk_err(rt, "cannot write %s: %s", opts.pidfile,
			       strerror(error));
			goto out;
		}
		own_pidfile = true;
	}
	if ((error = rump_driver_stopper_start(rump_driver_stop_server, server,
	                                       &stopper)) != 0) {
		rk_err(rt, "cannot start the signal thread: %s",
		       strerror(error));
		goto out;
	}

	/* Everything is open: from here on it needs no privilege. */
	if ((error = rump_supervised_confine(sup, RUMP_CONFINE_NULL)) != 0)
		goto out;
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
out:
	if ((sig = rump_driver_stopper_end(stopper)) != 0)
		rk_info(rt, "%s: stopping", strsignal(sig));
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
