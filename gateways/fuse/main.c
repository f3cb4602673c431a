/*
 * rumpfuse: mounts a rumpfs file system with FUSE, and hides rumpfs
 * restarts from the programs using it.
 *
 *   rumpfuse [--fs-service NAME|PATH] [--reconnect-timeout SECONDS]
 *            [--pidfile PATH] [-f] [-d] [-o OPTIONS] MOUNTPOINT
 *
 * Our -o options: attr_timeout=SEC, entry_timeout=SEC (default 1),
 * max_uncommitted=MIB (default 64); the rest go to FUSE (allow_other,
 * ro, max_threads=N, ...).  SIGTERM, SIGINT or SIGHUP unmount it: the
 * kernel writes its dirty pages back first, and everything written is
 * committed before it exits 0.
 *
 * MOUNTPOINT /dev/fd/N is /dev/fuse mounted already by the caller (rumpd,
 * as root, mounts and unmounts; the gateway needs no privilege).  Started
 * by rumpd it follows the supervisor contract (rump/supervised.h).
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/random.h>
#include <unistd.h>

#include "rump/supervised.h"

#include "rumpfuse.h"

struct cli {
	char *service;
	char *pidfile;
	unsigned reconnect_timeout_s;
	double attr_timeout, entry_timeout;
	unsigned max_uncommitted_mib;
	int help;
};

#define CLI_OPT(t, field, v) { t, offsetof(struct cli, field), v }

static const struct fuse_opt cli_opts[] = {
	CLI_OPT("--fs-service=%s", service, 0),
	CLI_OPT("--fs-service %s", service, 0),
	CLI_OPT("--pidfile=%s", pidfile, 0),
	CLI_OPT("--pidfile %s", pidfile, 0),
	CLI_OPT("--reconnect-timeout=%u", reconnect_timeout_s, 0),
	CLI_OPT("--reconnect-timeout %u", reconnect_timeout_s, 0),
	CLI_OPT("attr_timeout=%lf", attr_timeout, 0),
	CLI_OPT("entry_timeout=%lf", entry_timeout, 0),
	CLI_OPT("max_uncommitted=%u", max_uncommitted_mib, 0),
	CLI_OPT("-h", help, 1),
	CLI_OPT("--help", help, 1),
	FUSE_OPT_END
};

static void usage(FILE *f)
{
	fprintf(f,
	    "usage: rumpfuse [--fs-service NAME|PATH] [--reconnect-timeout "
	    "SEC]\n"
	    "                [--pidfile PATH] [-f] [-d] [-o OPTIONS] "
	    "MOUNTPOINT\n"
	    "Mounts the file system rumpfs serves (service \"fs\" by "
	    "default).\n"
	    "  -o attr_timeout=SEC     attribute cache (default 1)\n"
	    "  -o entry_timeout=SEC    name cache (default 1)\n"
	    "  -o max_uncommitted=MIB  unstable writes kept for replay "
	    "(default 64)\n"
	    "  -o max_threads=N        FUSE worker threads (default 10)\n"
	    "  --reconnect-timeout SEC how long to wait for a restarted "
	    "rumpfs (60)\n"
	    "FUSE options (allow_other, ro, ...) are passed on.\n");
}

/* The mount's options; commas in a service path are escaped. */
static void fsname_option(const char *service, char *buf, size_t cap)
{
	size_t n;

	n = (size_t)snprintf(buf, cap, "-odefault_permissions,subtype=rumpfs,"
	                     "fsname=rumpfs:");
	for (; *service != '\0' && n + 3 < cap; service++) {
		if (*service == ',' || *service == '\\')
			buf[n++] = '\\';
		buf[n++] = *service;
	}
	buf[n] = '\0';
}

/* ---- stopping --------------------------------------------------------- */

struct stopper {
	struct fuse_session *se;
	const char *mountpoint;
	bool own_mount;           /* false: mounted by rumpd, on /dev/fd/N */
	pthread_t main_thread;
};

/* Interrupts the main thread's wait in the session loop. */
static void on_wake(int sig)
{
	(void)sig;
}

/*
 * On the stopper's thread.  Our own mount: a plain unmount first, so that
 * the kernel writes back its dirty pages through the loop that still runs,
 * and the loop ends by itself.  If the mount is busy, or is rumpd's (it
 * syncs and unmounts it), the session just stops.
 */
static void stop_session(void *ctx, int sig)
{
	struct stopper *s = ctx;

	gw_log("%s: stopping", strsignal(sig));
	if (s->own_mount) {
		if (umount2(s->mountpoint, UMOUNT_NOFOLLOW) == 0)
			return;
		gw_log("cannot unmount %s (%s): detaching it", s->mountpoint,
		       strerror(errno));
	}
	fuse_session_exit(s->se);
	pthread_kill(s->main_thread, SIGUSR1);
}

/* libfuse takes "/dev/fd/N" as /dev/fuse mounted already by the caller. */
static bool mounted_by_caller(const char *mountpoint)
{
	return strncmp(mountpoint, "/dev/fd/", 8) == 0;
}

int main(int argc, char **argv)
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct cli cli = { .reconnect_timeout_s = 60, .attr_timeout = 1.0,
	                   .entry_timeout = 1.0, .max_uncommitted_mib = 64 };
	struct fuse_cmdline_opts fo = { 0 };
	struct fuse_loop_config *lc = NULL;
	struct stopper stopper = { 0 };
	struct sigaction sa = { .sa_handler = on_wake };
	struct rump_supervised *sup = NULL;
	struct rump_driver_stopper *sigs = NULL;
	struct gw gw = { 0 };
	struct gw_opts go;
	char fsname[300];
	uint64_t boot_id;
	bool gw_up = false, mounted = false, own_pidfile = false;
	int err, status = 1;

	if (fuse_opt_parse(&args, &cli, cli_opts, NULL) != 0) {
		usage(stderr);
		return 2;
	}
	if (cli.help) {
		usage(stdout);
		fuse_opt_free_args(&args);
		return 0;
	}
	if (fuse_parse_cmdline(&args, &fo) != 0 || fo.mountpoint == NULL) {
		if (fo.mountpoint == NULL)
			fprintf(stderr, "rumpfuse: no mount point given\n");
		usage(stderr);
		status = 2;
		goto out;
	}
	if (cli.attr_timeout < 0 || cli.entry_timeout < 0 ||
	    cli.max_uncommitted_mib < 1 || cli.max_uncommitted_mib > 512 ||
	    cli.reconnect_timeout_s < 1 || cli.reconnect_timeout_s > 86400) {
		fprintf(stderr, "rumpfuse: bad option value (timeouts >= 0, "
		        "max_uncommitted 1..512 MiB, reconnect timeout "
		        "1..86400 s)\n");
		status = 2;
		goto out;
	}
	/* Before any thread exists (the client's, the loop's), so that they
	 * all inherit the mask and the signals reach only the stopper. */
	if ((err = rump_driver_signals_block()) != 0) {
		fprintf(stderr, "rumpfuse: cannot block signals: %s\n",
		        strerror(err));
		goto out;
	}
	if ((err = rump_supervised_open("rumpfuse", &sup)) != 0) {
		fprintf(stderr, "rumpfuse: bad RUMPD_CONTROL_FD: %s\n",
		        strerror(err));
		goto out;
	}

	go = (struct gw_opts){
		.service = cli.service != NULL ? cli.service : "fs",
		.reconnect_timeout_ms = (int)cli.reconnect_timeout_s * 1000,
		.attr_timeout = cli.attr_timeout,
		.entry_timeout = cli.entry_timeout,
		.max_uncommitted = (uint64_t)cli.max_uncommitted_mib << 20,
	};
	if ((err = gw_open(&gw, &go)) != 0) {
		fprintf(stderr, "rumpfuse: cannot use the file system service "
		        "'%s': %s\n", go.service, strerror(err));
		goto out;
	}
	gw_up = true;

	/* The kernel checks permissions against the modes rumpfs keeps. */
	fsname_option(go.service, fsname, sizeof fsname);
	if (fuse_opt_add_arg(&args, fsname) != 0 ||
	    ((gw.info.flags & RUMP_FS_MOUNT_READ_ONLY) &&
	     fuse_opt_add_arg(&args, "-oro") != 0)) {
		fprintf(stderr, "rumpfuse: out of memory\n");
		goto out;
	}
	gw.se = fuse_session_new(&args, &rumpfuse_ops, sizeof rumpfuse_ops,
	                         &gw);
	if (gw.se == NULL)
		goto out;     /* libfuse said why */
	if (fuse_session_mount(gw.se, fo.mountpoint) != 0)
		goto out;
	mounted = true;
	gw_tune_readahead(fo.mountpoint);
	if (fuse_daemonize(fo.foreground) != 0)
		goto out;

	sigaction(SIGUSR1, &sa, NULL);
	stopper.se = gw.se;
	stopper.mountpoint = fo.mountpoint;
	stopper.own_mount = !mounted_by_caller(fo.mountpoint);
	stopper.main_thread = pthread_self();
	if ((err = rump_driver_stopper_start(stop_session, &stopper,
	                                     &sigs)) != 0) {
		gw_log("cannot start the signal thread: %s", strerror(err));
		goto out;
	}
	if (cli.pidfile != NULL) {
		if ((err = rump_driver_pidfile(cli.pidfile)) != 0) {
			gw_log("cannot write %s: %s", cli.pidfile,
			       strerror(err));
			goto out;
		}
		own_pidfile = true;
	}
	/* Mounted and connected: from here on it needs no privilege, and
	 * reaches rumpfs again by its socket's path. */
	if ((err = rump_supervised_confine(sup, RUMP_CONFINE_FUSE)) != 0)
		goto out;
	if (getrandom(&boot_id, sizeof boot_id, 0) != sizeof boot_id)
		boot_id = (uint64_t)getpid();
	if ((err = rump_supervised_ready(sup, boot_id, NULL, NULL)) != 0)
		gw_log("cannot report READY to the supervisor: %s",
		       strerror(err));

	if (fo.singlethread) {
		err = fuse_session_loop(gw.se);
	} else {
		lc = fuse_loop_cfg_create();
		if (lc == NULL)
			goto out;
		fuse_loop_cfg_set_clone_fd(lc, fo.clone_fd);
		fuse_loop_cfg_set_max_threads(lc, fo.max_threads);
		/* UINT_MAX: not given, libfuse's default stands. */
		if (fo.max_idle_threads != UINT_MAX)
			fuse_loop_cfg_set_idle_threads(lc,
			                               fo.max_idle_threads);
		err = fuse_session_loop_mt(gw.se, lc);
	}
	if (err < 0)
		gw_log("session ended: %s", strerror(-err));
	else
		status = 0;

out:
	/* Not waiting for a signal any more: it has nothing to undo. */
	rump_driver_stopper_end(sigs);
	rump_supervised_close(sup);
	/* A mount of the caller's is the caller's to undo. */
	if (mounted && !mounted_by_caller(fo.mountpoint))
		fuse_session_unmount(gw.se);
	if (gw.se != NULL)
		fuse_session_destroy(gw.se);  /* runs op_destroy: COMMIT */
	if (gw_up)
		gw_close(&gw);
	if (own_pidfile)
		unlink(cli.pidfile);
	if (lc != NULL)
		fuse_loop_cfg_destroy(lc);
	free(fo.mountpoint);
	free(cli.service);
	free(cli.pidfile);
	fuse_opt_free_args(&args);
	return status;
}
