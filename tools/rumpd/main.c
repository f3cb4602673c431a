/*
 * rumpd: starts the rump processes, tells how to reach them, and restarts
 * them when they die.
 *
 *   rumpd [--once]
 *
 * For now it runs one driver, rumpnull; the service table becomes a config
 * file later.  Signals are read from a signalfd, so the whole supervisor is
 * one poll() loop with no handlers.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rump/client.h"
#include "rump/ipc.h"
#include "child.h"
#include "probe.h"

#define DEMO_PINGS 1000u

struct supervisor {
	int sigfd;
	bool stopping;
	char runtime_dir[PATH_MAX];
	struct rumpd_child children[1];
	unsigned nchildren;
};

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: rumpd [--once]\n"
	    "Starts the rump processes (for now: rumpnull, the null service),\n"
	    "shows how to reach them and restarts them when they die, until\n"
	    "SIGINT or SIGTERM.  --once: stop after showing it works.\n"
	    "Runtime directory: $RUMPD_DIR, else /run/rumpd (root),\n"
	    "$XDG_RUNTIME_DIR/rumpd, or /tmp/rumpd-$UID.\n");
}

static struct rumpd_child *
child_by_pid(struct supervisor *sv, pid_t pid)
{
	for (unsigned i = 0; i < sv->nchildren; i++)
		if (sv->children[i].pid == pid)
			return &sv->children[i];
	return NULL;
}

static void
reap_children(struct supervisor *sv)
{
	struct rumpd_child *c;
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
		if ((c = child_by_pid(sv, pid)) != NULL)
			rumpd_child_exited(c, status);
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

/* A child that started but is no good: stop it and try again later. */
static void
start_failed(struct rumpd_child *c, const char *why)
{
	rumpd_error("%s (pid %ld) %s", c->name, (long)c->pid, why);
	rumpd_child_stop(c);
	c->restart_at_ms = rumpd_now_ms() + c->backoff_ms;
	c->backoff_ms = c->backoff_ms * 2 > RUMPD_BACKOFF_MAX_MS ?
	                RUMPD_BACKOFF_MAX_MS : c->backoff_ms * 2;
}

/*
 * Starts c and waits for its READY, while still answering signals.
 * EINTR: asked to stop meanwhile.
 */
static int
start_child(struct supervisor *sv, struct rumpd_child *c)
{
	uint64_t deadline;
	int error;

	if ((error = rumpd_child_start(c)) != 0) {
		rumpd_error("cannot start %s: %s", c->name, strerror(error));
		c->restart_at_ms = rumpd_now_ms() + c->backoff_ms;
		return error;
	}
	rumpd_log("started %s (pid %ld), waiting for it to be ready",
	          c->name, (long)c->pid);
	deadline = rumpd_now_ms() + RUMPD_READY_TIMEOUT_MS;
	while (c->state == CHILD_STARTING) {
		struct pollfd pfd[2] = {
			{ .fd = sv->sigfd, .events = POLLIN },
			{ .fd = c->control_fd, .events = POLLIN },
		};
		uint64_t now = rumpd_now_ms();

		if (now >= deadline) {
			start_failed(c, "did not report READY in time");
			return ETIMEDOUT;
		}
		if (poll(pfd, 2, (int)(deadline - now)) < 0 && errno != EINTR)
			return errno;
		if (pfd[0].revents & POLLIN) {
			handle_signals(sv);
			if (sv->stopping)
				return EINTR;
			/* Reaped: it died before it was ready. */
			if (c->state != CHILD_STARTING)
				return ECHILD;
		}
		if (pfd[1].revents == 0)
			continue;
		error = rumpd_child_read_ready(c);
		if (error == ECONNRESET) {
			/* Dying, most likely: stopping it reaps it and
			 * tells how it ended. */
			start_failed(c, "closed its control socket before "
			             "READY");
			return ECONNRESET;
		} else if (error == EPROTO) {
			start_failed(c, "sent something other than READY");
			return EPROTO;
		} else if (error != 0 && error != EAGAIN) {
			start_failed(c, strerror(error));
			return error;
		}
	}
	rumpd_log("%s (pid %ld) is ready: boot id %016" PRIx64
	          ", listening on %s", c->name, (long)c->pid, c->boot_id,
	          c->socket);
	return 0;
}

/* Shows a person what runs and how to reach it, by reaching it. */
static int
demo(struct rumpd_child *c)
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

	error = rump_client_connect(c->socket, &opts, &client);
	if (error) {
		rumpd_error("cannot connect to %s: %s", c->socket,
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
		rumpd_log("reach it with: rumpctl -s %s ping null", c->socket);
	} else {
		rumpd_error("ping %s: %s", c->socket, strerror(error));
	}
	rump_client_close(client);
	return error;
}

static void
supervise(struct supervisor *sv)
{
	while (!sv->stopping) {
		int timeout = -1;
		uint64_t now = rumpd_now_ms();
		struct pollfd pfd = { .fd = sv->sigfd, .events = POLLIN };

		for (unsigned i = 0; i < sv->nchildren; i++) {
			struct rumpd_child *c = &sv->children[i];
			int wait_ms;

			if (c->state != CHILD_STOPPED)
				continue;
			if (c->restart_at_ms > now &&
			    c->restart_at_ms != c->announced_ms) {
				rumpd_log("restarting %s in %u ms", c->name,
				          (unsigned)(c->restart_at_ms - now));
				c->announced_ms = c->restart_at_ms;
			}
			if (c->restart_at_ms <= now) {
				if (start_child(sv, c) == 0) {
					c->restarts++;
					rumpd_log("%s restarted (restart #%u)",
					          c->name, c->restarts);
				}
				timeout = 0;    /* look again at once */
				continue;
			}
			wait_ms = (int)(c->restart_at_ms - now);
			if (timeout < 0 || wait_ms < timeout)
				timeout = wait_ms;
		}
		if (sv->stopping)
			break;
		if (poll(&pfd, 1, timeout) > 0)
			handle_signals(sv);
	}
}

static int
make_dir(const char *path)
{
	if (mkdir(path, 0700) != 0 && errno != EEXIST)
		return errno;
	return 0;
}

static int
setup(struct supervisor *sv)
{
	struct rumpd_child *c = &sv->children[0];
	sigset_t set;
	int error;

	if ((error = rump_runtime_dir(sv->runtime_dir,
	                              sizeof(sv->runtime_dir))) != 0 ||
	    (error = make_dir(sv->runtime_dir)) != 0) {
		rumpd_error("cannot set up the runtime directory %s: %s",
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

	rumpd_child_init(c, "rumpnull", sv->runtime_dir);
	sv->nchildren = 1;
	error = rumpd_find_program(c->name, "servers/null", c->path,
	                           sizeof(c->path));
	if (error) {
		rumpd_error("cannot find %s (set RUMPD_LIBEXEC to the folder "
		            "that holds it): %s", c->name, strerror(error));
		return error;
	}
	if ((error = rump_service_path("null", c->socket,
	                               sizeof(c->socket))) != 0) {
		rumpd_error("socket path for null: %s", strerror(error));
		return error;
	}
	if ((error = rump_listen_unix(c->socket, &c->listen_fd)) != 0) {
		rumpd_error("cannot listen on %s: %s", c->socket,
		            strerror(error));
		return error;
	}
	rumpd_log("runtime directory %s", sv->runtime_dir);
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "once", no_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct supervisor sv = { .sigfd = -1 };
	bool once = false;
	int c, status = 1;

	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
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

	if (setup(&sv) != 0)
		goto out;
	/* The first start must work: a supervisor that cannot start its
	 * drivers at all is misconfigured, not unlucky. */
	if (start_child(&sv, &sv.children[0]) != 0) {
		if (!sv.stopping)
			rumpd_error("%s did not start", sv.children[0].name);
		goto out;
	}
	if (demo(&sv.children[0]) != 0 && once)
		goto out;
	if (!once) {
		rumpd_log("supervising; stop with Ctrl-C or SIGTERM");
		supervise(&sv);
	}
	status = 0;
out:
	for (unsigned i = 0; i < sv.nchildren; i++) {
		struct rumpd_child *ch = &sv.children[i];

		rumpd_child_stop(ch);
		if (ch->listen_fd >= 0) {
			close(ch->listen_fd);
			unlink(ch->socket);
		}
	}
	if (sv.sigfd >= 0)
		close(sv.sigfd);
	return status;
}
