/*
 * rumpd: starts the rump processes, confines them, tells how to reach
 * them, and restarts them when they die or hang.
 *
 *   rumpd [-c FILE] [--once] [--check]
 *
 * Signals are read from a signalfd and every driver is a few descriptors
 * (control socket, log pipe, a probe connection), so the whole supervisor
 * is one poll() loop with no handlers and no threads.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "rump/client.h"
#include "rump/ipc.h"
#include "probe.h"
#include "rumpd.h"

#define DEMO_PINGS 1000u
/* Room in the poll set: signals, the control socket, its sessions, and
 * three descriptors per driver. */
#define FIXED_POLLFDS (2 + RUMPD_MAX_SESSIONS)

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: rumpd [-c FILE] [--once] [--check]\n"
	    "Starts the drivers of the configuration FILE (see rumpd.conf(5);\n"
	    "without one: a built-in default with every driver that is\n"
	    "installed), one confined process each, shows how to reach them\n"
	    "and restarts them when they die, until SIGINT or SIGTERM.\n"
	    "  -c, --config FILE  the configuration\n"
	    "  --check            check the configuration and exit\n"
	    "  --once             stop after showing it works\n"
	    "Runtime directory: $RUMPD_DIR, else /run/rumpd (root),\n"
	    "$XDG_RUNTIME_DIR/rumpd, or /tmp/rumpd-$UID.  State (the\n"
	    "default disk image): $RUMPD_STATE_DIR, else /var/lib/rumpd\n"
	    "(root) or ~/.local/share/rumpd.\n");
}

static struct rumpd_driver *
driver_by_pid(struct supervisor *sv, pid_t pid)
{
	for (unsigned i = 0; i < sv->ndrivers; i++)
		if (sv->drivers[i].pid == pid)
			return &sv->drivers[i];
	return NULL;
}

void
sup_notify_status(struct supervisor *sv)
{
	unsigned running = 0, failed = 0;

	for (unsigned i = 0; i < sv->ndrivers; i++) {
		running += sv->drivers[i].state == RUMP_SUP_RUNNING;
		failed += sv->drivers[i].state == RUMP_SUP_FAILED;
	}
	/* Without NOTIFY_SOCKET this does nothing. */
	sd_notifyf(0, "STATUS=%u of %u drivers running%s%u failed", running,
	           sv->ndrivers, failed ? ", " : "", failed);
}

int
sup_start(struct supervisor *sv, struct rumpd_driver *d)
{
	int error = rumpd_driver_start(d, &sv->launch);

	if (error) {
		rumpd_error("cannot start %s: %s", d->conf->name,
		            strerror(error));
		snprintf(d->last_exit, sizeof(d->last_exit), "could not start: "
		         "%s", strerror(error));
		return error;
	}
	rumpd_log("started %s (pid %ld), waiting for it to be ready",
	          d->conf->name, (long)d->pid);
	return 0;
}

void
sup_stop(struct supervisor *sv, struct rumpd_driver *d)
{
	(void)sv;
	if (d->pid > 0)
		d->state = RUMP_SUP_STOPPING;
	rumpd_driver_stop(d);
	d->death_ms = 0;
	d->failures = 0;
	if (d->trigger_session >= 0) {
		ctl_trigger_reply(sv, d->trigger_session, d->trigger_reqid,
		                  ECHILD, NULL);
		d->trigger_session = -1;
	}
}

/* The restart policy: the first death after a healthy run restarts at
 * once; each quick death after that waits twice as long; tries quick
 * deaths in a row are a crash loop, which is stopped and shown. */
static void
schedule_restart(struct supervisor *sv, struct rumpd_driver *d, uint64_t now)
{
	const struct rumpd_policy *pol = &d->conf->policy;
	uint64_t delay;

	if (d->failures >= pol->tries) {
		d->state = RUMP_SUP_FAILED;
		/* Not recovering: a later rumpctl start is a new story. */
		d->death_ms = 0;
		rumpd_error("%s: crash loop: it died %u times in a row, each "
		            "within %u ms of starting; not restarting it "
		            "(rumpctl start %s tries again)", d->conf->name,
		            d->failures, pol->healthy_ms, d->conf->name);
		rumpd_driver_log_note(d, "crash loop: given up after %u "
		                      "tries", d->failures);
		sup_notify_status(sv);
		return;
	}
	delay = d->failures <= 1 ? 0 : (uint64_t)pol->backoff_ms <<
	        (d->failures - 2 < 20 ? d->failures - 2 : 20);
	if (delay > pol->backoff_max_ms)
		delay = pol->backoff_max_ms;
	d->state = RUMP_SUP_BACKOFF;
	d->restart_at_ms = now + delay;
	if (delay > 0)
		rumpd_log("restarting %s in %" PRIu64 " ms (try %u of %u)",
		          d->conf->name, delay, d->failures + 1, pol->tries);
}

static void
restart_now(struct supervisor *sv, struct rumpd_driver *d, uint64_t now)
{
	d->restarts++;
	if (sup_start(sv, d) == 0)
		return;
	d->failures++;
	schedule_restart(sv, d, now);
}

/* The driver's process is gone (reaped), or must be treated so. */
static void
driver_died(struct supervisor *sv, struct rumpd_driver *d, int status)
{
	uint64_t now = rumpd_now_ms();
	bool healthy = d->ready_ms != 0 &&
	               now - d->ready_ms >= d->conf->policy.healthy_ms;

	if (!rumpd_driver_exited(d, status, now))
		return;
	if (d->trigger_session >= 0) {
		ctl_trigger_reply(sv, d->trigger_session, d->trigger_reqid, 0,
		                  "the driver died");
		d->trigger_session = -1;
	}
	if (sv->stopping)
		return;
	if (sv->starting_up) {
		d->state = RUMP_SUP_FAILED;
		return;
	}
	d->failures = healthy ? 1 : d->failures + 1;
	schedule_restart(sv, d, now);
	if (d->state == RUMP_SUP_BACKOFF && d->restart_at_ms <= now)
		restart_now(sv, d, now);
	sup_notify_status(sv);
}

static void
reap_children(struct supervisor *sv)
{
	struct rumpd_driver *d;
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
		if ((d = driver_by_pid(sv, pid)) != NULL)
			driver_died(sv, d, status);
}

static void
handle_signals(struct supervisor *sv)
{
	struct signalfd_siginfo si;

	while (read(sv->sigfd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGCHLD) {
			reap_children(sv);
		} else if (!sv->stopping) {
			rumpd_log("%s: stopping", strsignal((int)si.ssi_signo));
			sv->stopping = true;
		}
	}
}

/* A driver that is no good (silent, or talking nonsense): kill it; the
 * reaping counts the death. */
static void
kill_broken(struct rumpd_driver *d, const char *why)
{
	rumpd_error("%s (pid %ld) %s; killing it", d->conf->name, (long)d->pid,
	            why);
	rumpd_driver_log_note(d, "%s; killed", why);
	kill(d->pid, SIGKILL);
	/* No more from it until it is reaped. */
	if (d->control_fd >= 0)
		close(d->control_fd);
	d->control_fd = -1;
	rumpd_driver_probe_stop(d);
}

static void
driver_ready(struct supervisor *sv, struct rumpd_driver *d, uint64_t now)
{
	int error;

	rumpd_log("%s (pid %ld) is ready: boot id %016" PRIx64 "%s%s%s",
	          d->conf->name, (long)d->pid, d->boot_id,
	          d->endpoint[0] ? ", listening on " : "", d->endpoint,
	          d->heartbeat ? "" : " (no heartbeat)");
	if (d->confined)
		rumpd_log("%s is confined: %s", d->conf->name, d->confinement);
	d->next_ping_ms = now + sv->cfg.heartbeat_ms;
	if (d->death_ms == 0)
		goto out;
	if (!rumpd_kinds[d->conf->kind].serves_rump) {
		/* A gateway serves when it says it does. */
		rumpd_driver_recovered(d, rumpd_now_us());
		goto out;
	}
	/* Serving again is the answer to a client's first request. */
	error = rumpd_driver_probe_start(d);
	if (error != EAGAIN) {
		rumpd_error("%s: cannot time its recovery: %s", d->conf->name,
		            strerror(error));
		d->death_ms = 0;
	}
out:
	sup_notify_status(sv);
}

static void
driver_control(struct supervisor *sv, struct rumpd_driver *d)
{
	enum rump_sup_state before = d->state;
	char reply[512];
	int session = -1, error;
	uint64_t reqid = 0;

	error = rumpd_driver_read_control(d, &session, &reqid, reply,
	                                  sizeof(reply));
	if (session >= 0)
		ctl_trigger_reply(sv, session, reqid, 0, reply);
	if (error == ECONNRESET) {
		/* Dying, most likely: the reaping tells how it ended. */
		close(d->control_fd);
		d->control_fd = -1;
		return;
	}
	if (error) {
		kill_broken(d, error == EPROTO ? "broke the supervisor "
		            "protocol" : strerror(error));
		return;
	}
	if (before == RUMP_SUP_STARTING && d->state == RUMP_SUP_RUNNING)
		driver_ready(sv, d, rumpd_now_ms());
}

static void
driver_probe(struct rumpd_driver *d)
{
	int error = rumpd_driver_probe_read(d);
	uint64_t us;

	if (error == EAGAIN)
		return;
	rumpd_driver_probe_stop(d);
	if (error) {
		rumpd_error("%s: its first client was refused: %s",
		            d->conf->name, strerror(error));
		d->death_ms = 0;
		return;
	}
	rumpd_driver_recovered(d, rumpd_now_us());
	us = d->recovery_us[(d->nrecoveries - 1) % RUMPD_RECOVERY_HISTORY];
	rumpd_log("%s serves again %.1f ms after its death (restart #%u)",
	          d->conf->name, (double)us / 1000.0, d->restarts);
}

/* Timers: READY deadlines, restarts due, heartbeats, trigger answers.
 * Returns how long poll() may sleep (-1: forever). */
static int
run_timers(struct supervisor *sv)
{
	uint64_t now = rumpd_now_ms(), next = UINT64_MAX;
	unsigned hb = sv->cfg.heartbeat_ms;

	for (unsigned i = 0; i < sv->ndrivers; i++) {
		struct rumpd_driver *d = &sv->drivers[i];

		if (d->trigger_session >= 0) {
			if (now >= d->trigger_deadline_ms) {
				ctl_trigger_reply(sv, d->trigger_session,
				                  d->trigger_reqid, ETIMEDOUT,
				                  NULL);
				d->trigger_session = -1;
			} else if (d->trigger_deadline_ms < next) {
				next = d->trigger_deadline_ms;
			}
		}
		switch (d->state) {
		case RUMP_SUP_STARTING:
			if (d->control_fd >= 0 && now >= d->deadline_ms) {
				kill_broken(d, "did not report READY in time");
			} else if (d->deadline_ms < next) {
				next = d->deadline_ms;
			}
			break;
		case RUMP_SUP_BACKOFF:
			if (sv->stopping)
				break;
			if (now >= d->restart_at_ms)
				restart_now(sv, d, now);
			else if (d->restart_at_ms < next)
				next = d->restart_at_ms;
			break;
		case RUMP_SUP_RUNNING:
			if (hb == 0 || !d->heartbeat || d->control_fd < 0)
				break;
			if (d->ping_seq != d->pong_seq) {
				uint64_t due = d->ping_sent_ms +
				               sv->cfg.heartbeat_timeout_ms;

				/* rumpd itself may have been slow (a loaded
				 * machine): an answer waiting unread is an
				 * answer. */
				if (now >= due)
					driver_control(sv, d);
				if (d->state != RUMP_SUP_RUNNING ||
				    d->control_fd < 0)
					break;
				if (d->ping_seq == d->pong_seq) {
					if (d->next_ping_ms < next)
						next = d->next_ping_ms;
				} else if (now >= due) {
					char why[64];

					snprintf(why, sizeof(why), "did not "
					         "answer the heartbeat for %"
					         PRIu64 " ms", now -
					         d->ping_sent_ms);
					d->hung = true;
					if (d->death_ms == 0)
						d->death_ms = now;
					kill_broken(d, why);
				} else if (due < next) {
					next = due;
				}
			} else if (now >= d->next_ping_ms) {
				if (rumpd_driver_ping(d, now) != 0)
					break;  /* its socket's end shows */
				d->next_ping_ms = now + hb;
				if (now + sv->cfg.heartbeat_timeout_ms < next)
					next = now +
					       sv->cfg.heartbeat_timeout_ms;
			} else if (d->next_ping_ms < next) {
				next = d->next_ping_ms;
			}
			break;
		default:
			break;
		}
	}
	if (next == UINT64_MAX)
		return -1;
	now = rumpd_now_ms();
	return next <= now ? 0 : (int)(next - now > 60000 ? 60000 :
	                               next - now);
}

enum slot_what { SLOT_SIGNAL, SLOT_CTL, SLOT_SESSION, SLOT_CONTROL,
                 SLOT_LOG, SLOT_PROBE };

struct slot {
	enum slot_what what;
	unsigned index;
};

/* One round of the event loop. */
static void
loop_once(struct supervisor *sv)
{
	unsigned cap = FIXED_POLLFDS + 3 * sv->ndrivers, n = 0;
	struct pollfd *pfd = calloc(cap, sizeof(*pfd));
	struct slot *slot = calloc(cap, sizeof(*slot));
	int timeout, rc;

	if (pfd == NULL || slot == NULL) {
		/* Nothing better to do than wait for memory. */
		free(pfd);
		free(slot);
		poll(NULL, 0, 100);
		return;
	}
#define ADD(fd_, what_, index_) do { \
		pfd[n] = (struct pollfd){ .fd = (fd_), .events = POLLIN }; \
		slot[n++] = (struct slot){ (what_), (index_) }; \
	} while (0)
	ADD(sv->sigfd, SLOT_SIGNAL, 0);
	if (sv->ctl_fd >= 0)
		ADD(sv->ctl_fd, SLOT_CTL, 0);
	for (unsigned i = 0; i < RUMPD_MAX_SESSIONS; i++)
		if (sv->sessions[i].fd >= 0)
			ADD(sv->sessions[i].fd, SLOT_SESSION, i);
	for (unsigned i = 0; i < sv->ndrivers; i++) {
		struct rumpd_driver *d = &sv->drivers[i];

		if (d->control_fd >= 0)
			ADD(d->control_fd, SLOT_CONTROL, i);
		if (d->log_fd >= 0)
			ADD(d->log_fd, SLOT_LOG, i);
		if (d->probe_fd >= 0)
			ADD(d->probe_fd, SLOT_PROBE, i);
	}
#undef ADD
	timeout = run_timers(sv);
	rc = poll(pfd, n, timeout);
	for (unsigned i = 0; rc > 0 && i < n; i++) {
		struct rumpd_driver *d = &sv->drivers[slot[i].index];

		if (pfd[i].revents == 0)
			continue;
		switch (slot[i].what) {
		case SLOT_SIGNAL:
			handle_signals(sv);
			break;
		case SLOT_CTL:
			ctl_accept(sv);
			break;
		case SLOT_SESSION:
			ctl_input(sv, slot[i].index);
			break;
		/* A descriptor may have been closed by an earlier slot
		 * of this round (the driver died): look before reading. */
		case SLOT_CONTROL:
			if (d->control_fd == pfd[i].fd)
				driver_control(sv, d);
			break;
		case SLOT_LOG:
			if (d->log_fd == pfd[i].fd)
				rumpd_driver_read_log(d);
			break;
		case SLOT_PROBE:
			if (d->probe_fd == pfd[i].fd)
				driver_probe(d);
			break;
		}
	}
	free(pfd);
	free(slot);
}

/* The first start, in dependency order; each must be ready before the
 * next starts, and any failure stops them all: no half a system. */
static int
start_all(struct supervisor *sv)
{
	sv->starting_up = true;
	for (unsigned k = 0; k < sv->cfg.ndrivers; k++) {
		struct rumpd_driver *d = &sv->drivers[sv->cfg.order[k]];

		if (sup_start(sv, d) != 0)
			return EIO;
		while (d->state == RUMP_SUP_STARTING && !sv->stopping)
			loop_once(sv);
		if (sv->stopping)
			return EINTR;
		if (d->state != RUMP_SUP_RUNNING) {
			rumpd_error("%s did not start (%s); stopping", d->conf->
			            name, d->last_exit[0] ? d->last_exit :
			            "no reason given");
			return EIO;
		}
	}
	sv->starting_up = false;
	return 0;
}

static void
stop_all(struct supervisor *sv)
{
	sv->stopping = true;
	sd_notify(0, "STOPPING=1");
	if (sv->cfg.order == NULL || sv->drivers == NULL)
		return;
	for (unsigned k = sv->cfg.ndrivers; k-- > 0;) {
		struct rumpd_driver *d = &sv->drivers[sv->cfg.order[k]];

		if (d->pid > 0)
			sup_stop(sv, d);
	}
}

/* Shows a person what runs and how to reach it, by reaching it. */
static int
demo_null(const struct rumpd_driver *d)
{
	struct rump_client_opts opts = {
		.version = RUMP_CLIENT_OPTS_VERSION,
		.service_kind = RUMP_SERVICE_NULL,
		.client_name = "rumpd",
		.sq_entries = 16,
		.buf_size = 64 * 1024,
	};
	struct rump_client *client;
	struct probe_ping ping;
	int error;

	error = rump_client_connect(d->endpoint, &opts, &client);
	if (error) {
		rumpd_error("cannot connect to %s: %s", d->endpoint,
		            strerror(error));
		return error;
	}
	error = probe_null_ping(client, DEMO_PINGS, &ping);
	if (error == 0) {
		rumpd_log("connected to service \"%s\" (kind %s), boot id "
		          "%016" PRIx64, rump_client_service_name(client),
		          probe_kind_name(rump_client_service_kind(client)),
		          rump_client_boot_id(client));
		rumpd_log("%u round trips: control NULL p50 %.1f us, p99 "
		          "%.1f us; ring NULL p50 %.1f us, p99 %.1f us",
		          DEMO_PINGS, ping.control.p50_us, ping.control.p99_us,
		          ping.ring.p50_us, ping.ring.p99_us);
	} else {
		rumpd_error("ping %s: %s", d->endpoint, strerror(error));
	}
	rump_client_close(client);
	return error;
}

/*
 * Reaches every driver a person can reach: pings rumpnull, reads the start
 * of the first disk over NBD, looks at the fuse mount (with once, also
 * writes a file there and reads it back).  Returns the first error.
 */
static int
show_it_works(const struct supervisor *sv, bool once)
{
	int first = 0, error;

	for (unsigned k = 0; k < sv->cfg.ndrivers; k++) {
		const struct rumpd_driver *d = &sv->drivers[sv->cfg.order[k]];
		const struct rumpd_driver_conf *disk;

		switch (d->conf->kind) {
		case KIND_NULL:
			error = demo_null(d);
			break;
		case KIND_NBD:
			disk = rumpd_config_find(&sv->cfg, d->conf->ref);
			error = rumpd_demo_nbd(d, disk != NULL &&
			                       disk->ndevices > 0 ?
			                       disk->devices[0].name : "");
			break;
		case KIND_FUSE:
			error = rumpd_demo_fuse(d, once);
			break;
		default:
			error = 0;
			break;
		}
		if (first == 0)
			first = error;
	}
	return first;
}

static void
show_how_to_reach(const struct supervisor *sv)
{
	for (unsigned k = 0; k < sv->cfg.ndrivers; k++) {
		const struct rumpd_driver *d = &sv->drivers[sv->cfg.order[k]];
		const struct rumpd_driver_conf *c = d->conf;

		switch (c->kind) {
		case KIND_NULL:
			rumpd_log("reach %s with: rumpctl ping %s", c->name,
			          d->endpoint);
			break;
		case KIND_DISK:
			rumpd_log("reach %s with: rumpctl -s %s devices "
			          "(devices %s%s)", c->name, sv->ctl_path,
			          c->devices[0].name, c->ndevices > 1 ?
			          ", ..." : "");
			break;
		case KIND_NBD:
			if (strncmp(d->endpoint, "tcp:", 4) == 0)
				rumpd_log("reach %s with: qemu-img info "
				          "nbd://%s/wd0", c->name,
				          d->endpoint + 4);
			else
				rumpd_log("reach %s with: qemu-img info "
				          "'nbd+unix:///wd0?socket=%s'",
				          c->name, d->endpoint);
			break;
		case KIND_FUSE:
			rumpd_log("reach %s with: ls %s", c->name, c->mount);
			break;
		case KIND_FS:
			rumpd_log("reach %s at %s", c->name, d->endpoint);
			break;
		case KIND_NET:
			rumpd_demo_net_reach(d);
			break;
		case KIND_COUNT:
			break;
		}
	}
	rumpd_log("see them all with: rumpctl status");
}

static int
make_dir(const char *path)
{
	if (mkdir(path, 0700) != 0 && errno != EEXIST)
		return errno;
	return 0;
}

/* Who the drivers run as: root's drivers switch to the configured user,
 * "rumpd" if there is one, else nobody. */
static int
choose_user(struct supervisor *sv)
{
	const char *want = sv->cfg.user[0] ? sv->cfg.user : NULL;
	struct passwd *pw = NULL;

	sv->launch.runtime_dir = sv->runtime_dir;
	sv->launch.root = geteuid() == 0;
	if (!sv->launch.root) {
		if (want != NULL)
			rumpd_log("not root: drivers run as this user, not %s, "
			          "and without namespaces", want);
		return 0;
	}
	pw = getpwnam(want != NULL ? want : "rumpd");
	if (pw == NULL && want == NULL)
		pw = getpwnam("nobody");
	if (pw == NULL) {
		rumpd_error("%s: no user %s", sv->cfg.source,
		            want != NULL ? want : "nobody");
		return ENOENT;
	}
	if (pw->pw_uid == 0) {
		rumpd_error("%s: user %s is root; drivers need no privilege",
		            sv->cfg.source, pw->pw_name);
		return EINVAL;
	}
	sv->launch.set_ids = true;
	sv->launch.uid = pw->pw_uid;
	sv->launch.gid = pw->pw_gid;
	rumpd_log("drivers run as %s (uid %u, gid %u) in namespaces of their "
	          "own", pw->pw_name, (unsigned)pw->pw_uid,
	          (unsigned)pw->pw_gid);
	return 0;
}

static int
setup(struct supervisor *sv, const char *config, bool check_only)
{
	sigset_t set;
	int error;

	if ((error = rump_runtime_dir(sv->runtime_dir,
	                              sizeof(sv->runtime_dir))) != 0 ||
	    (error = make_dir(sv->runtime_dir)) != 0) {
		rumpd_error("cannot set up the runtime directory %s: %s",
		            sv->runtime_dir, strerror(error));
		return error;
	}
	if (config != NULL) {
		error = rumpd_config_load(config, &sv->cfg);
		if (error == EINVAL)
			rumpd_error("%s: %u error%s; nothing started", config,
			            sv->cfg.errors, sv->cfg.errors == 1 ? "" :
			            "s");
		else if (error)
			rumpd_error("cannot read %s: %s", config,
			            strerror(error));
		if (error)
			return error;
	} else if ((error = rumpd_default_config(sv)) != 0) {
		return error;
	}
	if (check_only)
		return 0;
	if ((error = choose_user(sv)) != 0)
		return error;
	/* The drivers' group must reach the sockets of the drivers they
	 * are clients of; nobody else but rumpd's own. */
	if (sv->launch.set_ids &&
	    (chown(sv->runtime_dir, (uid_t)-1, sv->launch.gid) != 0 ||
	     chmod(sv->runtime_dir, 0750) != 0)) {
		error = errno;
		rumpd_error("cannot open %s to the drivers' group: %s",
		            sv->runtime_dir, strerror(error));
		return error;
	}

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	sv->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (sv->sigfd < 0) {
		error = errno;
		rumpd_error("signalfd: %s", strerror(error));
		return error;
	}
	if (getrandom(&sv->boot_id, sizeof(sv->boot_id), 0) !=
	    sizeof(sv->boot_id))
		sv->boot_id = (uint64_t)getpid() << 32 ^ rumpd_now_us();
	sv->started_ms = rumpd_now_ms();

	sv->drivers = calloc(sv->cfg.ndrivers, sizeof(*sv->drivers));
	if (sv->drivers == NULL)
		return ENOMEM;
	sv->ndrivers = sv->cfg.ndrivers;
	for (unsigned i = 0; i < sv->ndrivers; i++)
		rumpd_driver_init(&sv->drivers[i], &sv->cfg.drivers[i]);
	/* Everything opened before anything starts: a missing program or a
	 * busy socket stops rumpd with nothing running. */
	for (unsigned i = 0; i < sv->ndrivers; i++)
		if ((error = rumpd_driver_open(&sv->drivers[i],
		                               &sv->launch)) != 0)
			return error;
	if ((error = ctl_open(sv)) != 0)
		return error;
	rumpd_log("runtime directory %s, configuration %s", sv->runtime_dir,
	          sv->cfg.source);
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check", no_argument, NULL, 'k' },
		{ "once", no_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct supervisor sv = { .sigfd = -1, .ctl_fd = -1 };
	const char *config = NULL;
	bool once = false, check = false;
	int c, status = 1;

	for (unsigned i = 0; i < RUMPD_MAX_SESSIONS; i++)
		sv.sessions[i].fd = -1;
	while ((c = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			config = optarg;
			break;
		case 'k':
			check = true;
			break;
		case 'o':
			once = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "rumpd: unexpected argument '%s'\n",
		        argv[optind]);
		usage(stderr);
		return 2;
	}

	if (setup(&sv, config, check) != 0) {
		/* A bad configuration is a usage error. */
		status = sv.cfg.errors ? 2 : 1;
		goto out;
	}
	if (check) {
		rumpd_log("%s: %u drivers, no errors", sv.cfg.source,
		          sv.cfg.ndrivers);
		status = 0;
		goto out;
	}
	if (start_all(&sv) != 0)
		goto out;
	sd_notifyf(0, "READY=1\nMAINPID=%ld", (long)getpid());
	sup_notify_status(&sv);
	if (show_it_works(&sv, once) != 0 && once)
		goto out;
	show_how_to_reach(&sv);
	if (!once) {
		rumpd_log("supervising; stop with Ctrl-C or SIGTERM");
		while (!sv.stopping)
			loop_once(&sv);
	}
	status = 0;
out:
	stop_all(&sv);
	for (unsigned i = 0; i < sv.ndrivers; i++)
		rumpd_driver_close(&sv.drivers[i]);
	ctl_close(&sv);
	free(sv.drivers);
	rumpd_config_free(&sv.cfg);
	if (sv.sigfd >= 0)
		close(sv.sigfd);
	return status;
}
