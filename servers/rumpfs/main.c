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
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

#ifdef RUMP_TEST_TRIGGERS
/*
 * Test builds only: RUMPFS_TEST_STOP_AFTER_COMMIT=N stops the worker for
 * good once the Nth journal transaction is committed (its commit block
 * written and flushed), before its checkpoint, so that a test can kill
 * the process exactly there.  Seen from the backend: a write that starts
 * with a jbd2 commit block, then a flush.
 */
struct stop_trigger {
	struct fs_ext2_backend inner;
	struct rk_runtime *rt;
	unsigned long countdown;
	bool commit_written;
};

static int
trig_read(void *ctx, uint64_t off, void *buf, size_t len)
{
	struct stop_trigger *t = ctx;

	return t->inner.read(t->inner.ctx, off, buf, len);
}

static int
trig_write(void *ctx, uint64_t off, const void *buf, size_t len)
{
	static const unsigned char commit[8] = { 0xc0, 0x3b, 0x39, 0x98,
	                                         0, 0, 0, 2 };
	struct stop_trigger *t = ctx;

	if (len >= sizeof(commit) && memcmp(buf, commit, sizeof(commit)) == 0)
		t->commit_written = true;
	return t->inner.write(t->inner.ctx, off, buf, len);
}

static int
trig_flush(void *ctx)
{
	struct stop_trigger *t = ctx;
	int error = t->inner.flush(t->inner.ctx);

	if (error == 0 && t->commit_written && --t->countdown == 0) {
		rk_warn(t->rt, "test trigger: stopped after a journal commit, "
		        "before its checkpoint");
		for (;;)
			rumpuser_clock_sleep(1000000000ull);
	}
	t->commit_written = false;
	return error;
}

static int
trig_discard(void *ctx, uint64_t off, uint64_t len)
{
	struct stop_trigger *t = ctx;

	return t->inner.discard(t->inner.ctx, off, len);
}

static int
trig_zeroout(void *ctx, uint64_t off, uint64_t len)
{
	struct stop_trigger *t = ctx;

	return t->inner.zeroout(t->inner.ctx, off, len);
}

/* Puts t between the file system and be when the variable asks. */
static void
stop_trigger_wrap(struct stop_trigger *t, struct rk_runtime *rt,
                  struct fs_ext2_backend *be)
{
	const char *s = getenv("RUMPFS_TEST_STOP_AFTER_COMMIT");
	char *end;

	if (s == NULL || *s == '\0')
		return;
	t->countdown = strtoul(s, &end, 10);
	if (*end != '\0' || t->countdown == 0)
		return;
	t->inner = *be;
	t->rt = rt;
	be->ctx = t;
	be->read = trig_read;
	be->write = trig_write;
	be->flush = trig_flush;
	be->discard = t->inner.discard ? trig_discard : NULL;
	be->zeroout = t->inner.zeroout ? trig_zeroout : NULL;
}
#endif

int
main(int argc, char **argv)
{
	struct options opts = { 0 };
	struct rk_runtime_opts rtopts = { .name = "rumpfs" };
	struct rump_server_opts sopts = { 0 };
	struct rump_driver_stopper *stopper = NULL;
	int sig;
	struct fs_ext2_backend be = { 0 }, mount_be;
#ifdef RUMP_TEST_TRIGGERS
	struct stop_trigger trigger = { 0 };
#endif
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
	if ((error = rump_driver_signals_block()) != 0) {
		fprintf(stderr, "rumpfs: cannot block signals: %s\n",
		        strerror(error));
		return 1;
	}

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
	mount_be = be;
#ifdef RUMP_TEST_TRIGGERS
	stop_trigger_wrap(&trigger, rt, &mount_be);
#endif
	mopts.read_only = opts.read_only;
	mopts.name = opts.device ? opts.device : opts.image;
	mopts.cache_bytes = (size_t)opts.cache_mb << 20;
	error = fs_ext2_mount(&mount_be, &mopts, &fs, why, sizeof(why));
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

	error = rump_driver_listen("fs", opts.socket_path, path,
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
	error = rump_server_create(&sopts, fs_service_desc(svc), &server);
	if (error) {
		rk_err(rt, "cannot create the server: %s", strerror(error));
		if (listen_fd >= 0)
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
	if ((error = rump_supervised_confine(sup, RUMP_CONFINE_FS)) != 0)
		goto out;
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
out:
	if ((sig = rump_driver_stopper_end(stopper)) != 0)
		rk_info(rt, "%s: stopping", strsignal(sig));
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
