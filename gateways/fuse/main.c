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
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

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

static int write_pidfile(const char *path)
{
	char line[32];
	int fd, n, err = 0;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return errno;
	n = snprintf(line, sizeof line, "%ld\n", (long)getpid());
	if (write(fd, line, (size_t)n) != n)
		err = errno != 0 ? errno : EIO;
	if (close(fd) != 0 && err == 0)
		err = errno;
	return err;
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
	pthread_t main_thread;
	sigset_t sigs;
};

/* Interrupts the main thread's wait in the session loop. */
static void on_wake(int sig)
{
	(void)sig;
}

/*
 * The signal thread.  A plain unmount first: the kernel then writes back
 * its dirty pages through the loop that still runs, and the loop ends by
 * itself.  If the mount is busy (or we may not unmount), the session just
 * stops and the mount is detached afterwards.
 */
static void *stopper_main(void *arg)
{
	struct stopper *s = arg;
	int sig;

	if (sigwait(&s->sigs, &sig) != 0)
		return NULL;
	gw_log("signal %d: unmounting %s", sig, s->mountpoint);
	if (umount2(s->mountpoint, UMOUNT_NOFOLLOW) == 0)
		return NULL;
	gw_log("cannot unmount %s (%s): detaching it", s->mountpoint,
	       strerror(errno));
	fuse_session_exit(s->se);
	pthread_kill(s->main_thread, SIGUSR1);
	return NULL;
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
	struct gw gw = { 0 };
	struct gw_opts go;
	char fsname[300];
	pthread_t stopper_thread;
	bool gw_up = false, mounted = false, own_pidfile = false;
	bool stopper_up = false;
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
	if (fuse_daemonize(fo.foreground) != 0)
		goto out;

	/* Before the loop makes its threads, so that they all inherit the
	 * mask and the signals reach only the stopper. */
	sigemptyset(&stopper.sigs);
	sigaddset(&stopper.sigs, SIGTERM);
	sigaddset(&stopper.sigs, SIGINT);
	sigaddset(&stopper.sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &stopper.sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	sigaction(SIGUSR1, &sa, NULL);
	stopper.se = gw.se;
	stopper.mountpoint = fo.mountpoint;
	stopper.main_thread = pthread_self();
	if ((err = pthread_create(&stopper_thread, NULL, stopper_main,
	                          &stopper)) != 0) {
		gw_log("cannot start the signal thread: %s", strerror(err));
		goto out;
	}
	stopper_up = true;

	if (cli.pidfile != NULL) {
		if ((err = write_pidfile(cli.pidfile)) != 0) {
			gw_log("cannot write %s: %s", cli.pidfile,
			       strerror(err));
			goto out;
		}
		own_pidfile = true;
	}

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
	if (stopper_up) {
		/* It may still wait for a signal: it has nothing to undo. */
		pthread_cancel(stopper_thread);
		pthread_join(stopper_thread, NULL);
	}
	if (mounted)
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
