/*
 * rumpfs: the file system process.  An ext2/ext3/ext4 file system, on a
 * rumpdisk device or an image file, served with the protocol of
 * rump/proto_fs.h.
 *
 *   rumpfs (--device NAME [--disk-service NAME] | --image PATH) [--ro]
 *          [--socket PATH] [--pidfile PATH] [--cache-mb N]
 *
 * Supervisor contract as every rump process (rump/supervised.h).  SIGTERM
 * or SIGINT stops it cleanly: everything is flushed and the file system
 * marked clean.  A file system it cannot mount safely is refused with one
 * line saying why, and exit status 1.
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
#include "rump/rumpuser.h"
#include "rump/server.h"
#include "rump/supervised.h"

#include "disk_backend.h"
#include "fs_ext2.h"
#include "fs_service.h"

struct options {
	const char *socket_path;   /* NULL: the runtime directory's */
	const char *pidfile;       /* NULL: none */
	const char *device;        /* a rumpdisk device, or */
	const char *image;         /* an image file */
	const char *disk_service;  /* default "disk" */
	bool read_only;
	unsigned cache_mb;         /* 0: the component's default */
};

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: rumpfs (--device NAME [--disk-service NAME] | --image PATH)\n"
	    "              [--ro] [--socket PATH] [--pidfile PATH] "
	    "[--cache-mb N]\n"
	    "Serves an ext2/ext3/ext4 file system from a rumpdisk device\n"
	    "(wd0, wd0s1) or an image file.  Default socket: "
	    "$RUMPD_DIR/fs.sock.\n");
}

/* 0, or 2 after printing why (the exit status for usage errors). */
static int
parse_options(int argc, char **argv, struct options *o, bool *help)
{
	static const struct option longopts[] = {
		{ "device", required_argument, NULL, 'd' },
		{ "disk-service", required_argument, NULL, 'D' },
		{ "image", required_argument, NULL, 'i' },
		{ "ro", no_argument, NULL, 'r' },
		{ "socket", required_argument, NULL, 's' },
		{ "pidfile", required_argument, NULL, 'p' },
		{ "cache-mb", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char *end;
	long v;
	int c;

	*help = false;
	o->disk_service = "disk";
	while ((c = getopt_long(argc, argv, "d:D:i:rs:p:c:h", longopts,
	                        NULL)) != -1) {
		switch (c) {
		case 'd': o->device = optarg; break;
		case 'D': o->disk_service = optarg; break;
		case 'i': o->image = optarg; break;
		case 'r': o->read_only = true; break;
		case 's': o->socket_path = optarg; break;
		case 'p': o->pidfile = optarg; break;
		case 'c':
			errno = 0;
			v = strtol(optarg, &end, 10);
			if (errno || *end || v < 1 || v > 65536) {
				fprintf(stderr, "rumpfs: bad --cache-mb '%s' "
				        "(1..65536)\n", optarg);
				return 2;
			}
			o->cache_mb = (unsigned)v;
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
		fprintf(stderr, "rumpfs: unexpected argument '%s'\n",
		        argv[optind]);
		usage(stderr);
		return 2;
	}
	if ((o->device == NULL) == (o->image == NULL)) {
		fprintf(stderr, "rumpfs: give one of --device or --image\n");
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
		error = rump_service_path("fs", path, cap);
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

static void
count_requests(void *ctx, struct rump_supervised_counters *out)
{
	struct rump_server_stats st;

	rump_server_stats(ctx, &st);
	out->requests = st.requests + st.control_msgs;
	out->bytes = 0;
}

/* The blocks: an image file, or a device of rumpdisk. */
static int
open_backend(const struct options *opts, struct fs_ext2_backend *be,
             struct disk_backend **dbp, char *why, size_t cap)
{
	int error;

	if (opts->device != NULL)
		return disk_backend_open(opts->disk_service, opts->device,
		                         opts->read_only, be, dbp, why, cap);
	error = fs_ext2_image_open(opts->image, opts->read_only, be);
	if (error)
		snprintf(why, cap, "cannot open %s: %s", opts->image,
		         strerror(error));
	return error;
}

int
main(int argc, char **argv)
{
	struct options opts = { 0 };
	struct rk_runtime_opts rtopts = { .name = "rumpfs" };
	struct rump_server_opts sopts = { 0 };
	struct signal_waiter waiter = { 0 };
	struct fs_ext2_backend be = { 0 };
	struct fs_ext2_mount_opts mopts = { 0 };
	struct rk_runtime *rt = NULL;
	struct disk_backend *db = NULL;
	struct fs_ext2 *fs = NULL;
	struct fs_service *svc = NULL;
	struct rump_server *server = NULL;
	struct rump_supervised *sup = NULL;
	char path[PATH_MAX], why[256];
	uint64_t verifier;
	int listen_fd, error, status;
	bool help, own_socket = false, own_pidfile = false, have_be = false;

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
		fprintf(stderr, "rumpfs: cannot start the runtime: %s\n",
		        strerror(error));
		return 1;
	}
	if ((error = rump_supervised_open("rumpfs", &sup)) != 0) {
		rk_err(rt, "bad RUMPD_CONTROL_FD: %s", strerror(error));
		goto out;
	}

	if ((error = open_backend(&opts, &be, &db, why, sizeof(why))) != 0) {
		rk_err(rt, "%s", why);
		goto out;
	}
	have_be = true;
	mopts.read_only = opts.read_only;
	mopts.name = opts.device ? opts.device : opts.image;
	mopts.cache_bytes = (size_t)opts.cache_mb << 20;
	error = fs_ext2_mount(&be, &mopts, &fs, why, sizeof(why));
	if (error) {
		rk_err(rt, "cannot mount %s: %s", mopts.name, why);
		goto out;
	}
	/* A new verifier at every start: clients re-send what they have
	 * not seen committed. */
	if ((error = rumpuser_getrandom(&verifier, sizeof(verifier))) != 0)
		goto out;
	if ((error = fs_service_create(fs, verifier, &svc)) != 0) {
		rk_err(rt, "cannot create the fs service: %s",
		       strerror(error));
		goto out;
	}

	error = open_listener(rt, &opts, path, sizeof(path), &listen_fd,
	                      &own_socket);
	if (error)
		goto out;
	sopts.listen_fd = listen_fd;
	sopts.path = NULL;
	sopts.boot_id = rk_runtime_boot_id(rt);
	error = rump_server_create(&sopts, fs_service_desc(svc), &server);
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
	if ((error = rump_supervised_confine(sup, RUMP_CONFINE_FS)) != 0)
		goto stop_waiter;
	rk_info(rt, "serving %s (%s%s) on %s, boot id %016" PRIx64,
	        mopts.name, opts.read_only ? "read-only " : "",
	        opts.device ? "device" : "image", path, sopts.boot_id);
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
	/* Sessions end first (their requests complete on the worker), then
	 * the worker stops, then the file system is flushed and closed. */
	if (server != NULL)
		rump_server_destroy(server);
	fs_service_destroy(svc);
	if (fs != NULL && (error = fs_ext2_unmount(fs)) != 0) {
		rk_err(rt, "unmounting %s: %s", mopts.name, strerror(error));
		status = 1;
	}
	if (db != NULL)
		disk_backend_close(db);
	else if (have_be)
		fs_ext2_image_close(&be);
	if (own_socket)
		unlink(path);
	if (own_pidfile)
		unlink(opts.pidfile);
	rk_runtime_destroy(rt);
	return status;
}
