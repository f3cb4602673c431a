/*
 * rumpdisk: the disk driver process.
 *
 *   rumpdisk --disk wd0=PATH[,ro][,cache=none|writeback] [--disk wd1=...]
 *            [--mem md0=SIZE]
 *            [--socket PATH] [--pidfile PATH]
 *
 * Each --disk is an image file or a block device served through blk_file,
 * each --mem a RAM disk (blk_mem); part_mbr and part_gpt add the
 * partitions they find (wd0s1, wd0s2, ...).  Then the disk service runs.
 *
 * Started by rumpd it follows the supervisor contract (rump/supervised.h,
 * docs/rumpd.md): it confines itself once the images are open, reports
 * READY and answers the heartbeat; the listening socket may be the
 * supervisor's (RUMPD_LISTEN_FD).  SIGTERM or SIGINT stops it cleanly.
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
	    "usage: rumpdisk --disk NAME=PATH[,ro][,cache=none|,cache=writeback]"
	    " ...\n"
	    "                [--mem NAME=SIZE] ... [--socket PATH] "
	    "[--pidfile PATH]\n"
	    "Serves image files, block devices and RAM disks, with their MBR\n"
	    "and GPT partitions, as the disk service.  cache=none: O_DIRECT\n"
	    "only; cache=writeback: the host's page cache; neither: O_DIRECT\n"
	    "when the file allows it.  SIZE takes K, M, G, T suffixes.\n"
	    "Default socket: $RUMPD_DIR/disk.sock.\n");
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

/* What the heartbeat's counters need. */
struct counters_ctx {
	struct rk_runtime *rt;
	struct rump_server *server;
};

static int
add_disk_bytes(struct rk_device *dev, void *arg)
{
	struct rk_counters c;

	/* A partition's requests are its disk's too: count disks only. */
	if (rk_device_parent(dev) == NULL) {
		rk_device_counters(dev, &c);
		*(uint64_t *)arg += c.bytes_read + c.bytes_written;
	}
	return 0;
}

/* What rumpd shows as this driver's work (on the heartbeat thread). */
static void
count_requests(void *arg, struct rump_supervised_counters *out)
{
	struct counters_ctx *ctx = arg;
	struct rump_server_stats st;
	uint64_t bytes = 0;

	rump_server_stats(ctx->server, &st);
	rk_device_foreach(ctx->rt, add_disk_bytes, &bytes);
	out->requests = st.requests + st.control_msgs;
	out->bytes = bytes;
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
	struct rk_runtime *rt = NULL;
	struct disk_service *ds = NULL;
	struct rump_server *server = NULL;
	struct rump_supervised *sup = NULL;
	struct rump_driver_stopper *stopper = NULL;
	int sig;
	struct counters_ctx counters_ctx;
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
		fprintf(stderr, "rumpdisk: cannot block signals: %s\n",
		        strerror(error));
		return 1;
	}
	error = rk_runtime_create(&rtopts, &rt);
	if (error) {
		fprintf(stderr, "rumpdisk: cannot start the runtime: %s\n",
		        strerror(error));
		return 1;
	}
	if ((error = rump_supervised_open("rumpdisk", &sup)) != 0) {
		rk_err(rt, "bad RUMPD_CONTROL_FD: %s", strerror(error));
		goto out;
	}
	if (make_disks(rt, &opts) != 0)
		goto out;
	if ((error = disk_service_create(rt, &ds)) != 0) {
		rk_err(rt, "cannot create the disk service: %s",
		       strerror(error));
		goto out;
	}
	open_maps(rt, ds, &opts);

	error = rump_driver_listen("disk", opts.socket_path, path,
	                           sizeof(path), &listen_fd, &own_socket);
	if (error) {
		rk_err(rt, "cannot listen on %s: %s", opts.socket_path ?
		       opts.socket_path : "the runtime directory",
		       strerror(error));
		goto out;
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
		if ((error = rump_driver_pidfile(opts.pidfile)) != 0) {
			rk_err(rt, "cannot write %s: %s", opts.pidfile,
			       strerror(error));
			goto out;
		}
		own_pidfile = true;
	}
	counters_ctx = (struct counters_ctx){ rt, server };
	if ((error = rump_driver_stopper_start(rump_driver_stop_server, server,
	                                       &stopper)) != 0) {
		rk_err(rt, "cannot start the signal thread: %s",
		       strerror(error));
		goto out;
	}

	/* The images and their maps are open: from here on it needs no
	 * privilege. */
	if ((error = rump_supervised_confine(sup, RUMP_CONFINE_DISK)) != 0)
		goto out;
	rk_info(rt, "serving disks on %s, boot id %016" PRIx64, path,
	        sopts.boot_id);
	if ((error = rump_supervised_ready(sup, sopts.boot_id,
	                                   count_requests, &counters_ctx)) != 0)
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
