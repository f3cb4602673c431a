/*
 * rumpdisk: the disk driver process.
 *
 *   rumpdisk --disk wd0=PATH[,ro] [--disk wd1=...] [--mem md0=SIZE]
 *            [--socket PATH] [--pidfile PATH]
 *
 * Each --disk is an image file or a block device served through blk_file,
 * each --mem a RAM disk (blk_mem); part_mbr and part_gpt add the
 * partitions they find (wd0s1, wd0s2, ...).  Then the disk service runs.
 *
 * Started by rumpd it inherits, as the supervisor protocol says, a control
 * socket (RUMPD_CONTROL_FD) on which it reports "READY <boot id>" once it
 * listens, and possibly the listening socket itself (RUMPD_LISTEN_FD).
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

#include "blk_file.h"
#include "disk_service.h"

#define MAX_DISKS 64

struct disk_arg {
	const char *component;     /* "blk_file" or "blk_mem" */
	char name[RUMP_NAME_MAX];
	const char *spec;          /* what follows "NAME=" */
};

struct options {
	struct disk_arg disks[MAX_DISKS];
	unsigned ndisks;
	const char *socket_path;   /* NULL: the runtime directory's */
	const char *pidfile;       /* NULL: none */
};

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: rumpdisk --disk NAME=PATH[,ro][,direct|,buffered] ...\n"
	    "                [--mem NAME=SIZE] ... [--socket PATH] "
	    "[--pidfile PATH]\n"
	    "Serves image files, block devices and RAM disks, with their MBR\n"
	    "and GPT partitions, as the disk service.  SIZE takes K, M, G,\n"
	    "T suffixes.  Default socket: $RUMPD_DIR/disk.sock.\n");
}

static int
add_disk(struct options *o, const char *component, const char *arg)
{
	const char *eq = strchr(arg, '=');
	struct disk_arg *d;
	size_t len;

	if (o->ndisks == MAX_DISKS) {
		fprintf(stderr, "rumpdisk: at most %d disks\n", MAX_DISKS);
		return 2;
	}
	len = eq != NULL ? (size_t)(eq - arg) : 0;
	if (len == 0 || len >= RUMP_NAME_MAX || eq[1] == '\0') {
		fprintf(stderr, "rumpdisk: '%s': want NAME=%s (NAME of at "
		        "most %d characters)\n", arg,
		        strcmp(component, "blk_mem") == 0 ? "SIZE" : "PATH",
		        RUMP_NAME_MAX - 1);
		return 2;
	}
	d = &o->disks[o->ndisks++];
	d->component = component;
	memcpy(d->name, arg, len);
	d->name[len] = '\0';
	d->spec = eq + 1;
	return 0;
}

/* 0, or 2 after printing why (the exit status for usage errors). */
static int
parse_options(int argc, char **argv, struct options *o, bool *help)
{
	static const struct option longopts[] = {
		{ "disk", required_argument, NULL, 'd' },
		{ "mem", required_argument, NULL, 'm' },
		{ "socket", required_argument, NULL, 's' },
		{ "pidfile", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c, status;

	*help = false;
	while ((c = getopt_long(argc, argv, "d:m:s:p:h", longopts,
	                        NULL)) != -1) {
		switch (c) {
		case 'd':
			if ((status = add_disk(o, "blk_file", optarg)) != 0)
				return status;
			break;
		case 'm':
			if ((status = add_disk(o, "blk_mem", optarg)) != 0)
				return status;
			break;
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
		fprintf(stderr, "rumpdisk: unexpected argument '%s'\n",
		        argv[optind]);
		usage(stderr);
		return 2;
	}
	if (o->ndisks == 0) {
		fprintf(stderr, "rumpdisk: no disk to serve\n");
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
report_ready(struct rk_runtime *rt, int control_fd, uint64_t boot_id)
{
	char line[64];
	int n;

	n = snprintf(line, sizeof(line), "READY %016" PRIx64 "\n", boot_id);
	if (send(control_fd, line, (size_t)n, MSG_NOSIGNAL) != n)
		rk_warn(rt, "cannot report READY to the supervisor: %s",
		        strerror(errno));
}

/* The devices, then each image's allocation map for BLOCK_STATUS. */
static int
make_disks(struct rk_runtime *rt, const struct options *o)
{
	int error;

	for (unsigned i = 0; i < o->ndisks; i++) {
		const struct disk_arg *d = &o->disks[i];

		error = rk_component_create(rt, d->component, d->name,
		                            d->spec);
		if (error != 0) {
			rk_err(rt, "%s: cannot serve %s: %s", d->name,
			       d->spec, strerror(error));
			return error;
		}
	}
	return 0;
}

static void
open_maps(struct rk_runtime *rt, struct disk_service *ds,
          const struct options *o)
{
	char path[PATH_MAX];
	struct blk_file_opts fopts;
	int fd, error;

	for (unsigned i = 0; i < o->ndisks; i++) {
		const struct disk_arg *d = &o->disks[i];

		if (strcmp(d->component, "blk_file") != 0 ||
		    snprintf(path, sizeof(path), "%s", d->spec) >=
		    (int)sizeof(path) ||
		    blk_file_parse_args(path, &fopts) != 0)
			continue;
		if ((error = rumpuser_open(path, RUMPUSER_OPEN_RDONLY,
		                           &fd)) != 0 ||
		    (error = disk_service_set_map(ds, d->name, fd)) != 0)
			rk_warn(rt, "%s: no allocation map (%s): BLOCK_STATUS "
			        "reports data everywhere", d->name,
			        strerror(error));
	}
}

int
main(int argc, char **argv)
{
	struct options opts = { 0 };
	struct rk_runtime_opts rtopts = { .name = "rumpdisk" };
	struct rump_server_opts sopts = { 0 };
	struct signal_waiter waiter = { 0 };
	struct rk_runtime *rt = NULL;
	struct disk_service *ds = NULL;
	struct rump_server *server = NULL;
	char path[PATH_MAX], dir[PATH_MAX];
	int control_fd, listen_fd, error, status = 1;
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
		fprintf(stderr, "rumpdisk: cannot start the runtime: %s\n",
		        strerror(error));
		return 1;
	}
	if (make_disks(rt, &opts) != 0)
		goto out;
	if ((error = disk_service_create(rt, &ds)) != 0) {
		rk_err(rt, "cannot create the disk service: %s",
		       strerror(error));
		goto out;
	}
	open_maps(rt, ds, &opts);

	if ((error = inherited_socket("RUMPD_CONTROL_FD", &control_fd)) != 0)
		rk_warn(rt, "ignoring RUMPD_CONTROL_FD: %s", strerror(error));
	error = inherited_socket("RUMPD_LISTEN_FD", &listen_fd);
	if (error) {
		rk_err(rt, "bad RUMPD_LISTEN_FD: %s", strerror(error));
		goto out;
	}
	if (listen_fd >= 0) {
		snprintf(path, sizeof(path), "(inherited fd %d)", listen_fd);
	} else {
		if (opts.socket_path != NULL) {
			if (snprintf(path, sizeof(path), "%s",
			             opts.socket_path) >= (int)sizeof(path))
				error = ENAMETOOLONG;
		} else if ((error = rump_runtime_dir(dir, sizeof(dir))) == 0) {
			if (mkdir(dir, 0700) != 0 && errno != EEXIST)
				error = errno;
			else
				error = rump_service_path("disk", path,
				                          sizeof(path));
		}
		if (error == 0)
			error = rump_listen_unix(path, &listen_fd);
		if (error) {
			rk_err(rt, "cannot listen on %s: %s",
			       opts.socket_path ? opts.socket_path :
			       "the runtime directory", strerror(error));
			goto out;
		}
		own_socket = true;
	}

	sopts.listen_fd = listen_fd;
	sopts.boot_id = rk_runtime_boot_id(rt);
	error = rump_server_create(&sopts, disk_service_desc(ds), &server);
	if (error) {
		rk_err(rt, "cannot create the server: %s", strerror(error));
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

	rk_info(rt, "serving disks on %s, boot id %016" PRIx64, path,
	        sopts.boot_id);
	if (control_fd >= 0)
		report_ready(rt, control_fd, sopts.boot_id);

	error = rump_server_run(server);
	if (error)
		rk_err(rt, "server failed: %s", strerror(error));
	else
		status = 0;
	/* Wakes the waiter if the server stopped on its own. */
	pthread_kill(waiter.thread, SIGUSR1);
	pthread_join(waiter.thread, NULL);

out:
	if (server != NULL)
		rump_server_destroy(server);
	disk_service_destroy(ds);
	if (own_socket)
		unlink(path);
	if (own_pidfile)
		unlink(opts.pidfile);
	rk_runtime_destroy(rt);
	return status;
}
