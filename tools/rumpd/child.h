/*
 * The processes rumpd runs: one struct rumpd_driver per configured driver,
 * started with clone + exec into fresh namespaces, its control socket on
 * fd 3 (RUMPD_CONTROL_FD), its listening socket on fd 4 (RUMPD_LISTEN_FD),
 * the descriptors rumpd opened for it from fd 5 on, and its stdout and
 * stderr into a pipe rumpd keeps the tail of.  docs/rumpd.md has the whole
 * contract.
 */
#ifndef RUMPD_CHILD_H
#define RUMPD_CHILD_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "rump/proto_sup.h"
#include "config.h"

#define RUMPD_READY_TIMEOUT_MS 5000
#define RUMPD_STOP_TIMEOUT_MS 5000
#define RUMPD_LOG_BYTES (64 * 1024)
#define RUMPD_RECOVERY_HISTORY 128

#define CHILD_CONTROL_FD 3
#define CHILD_LISTEN_FD 4
#define CHILD_FIRST_FD 5

/* The newest bytes a driver wrote to stdout and stderr. */
struct rumpd_log {
	char data[RUMPD_LOG_BYTES];
	size_t start, len;   /* ring: len bytes from start, wrapping */
};

/* How rumpd runs drivers: decided once, the same for every start. */
struct rumpd_launch {
	const char *runtime_dir;
	bool root;           /* namespaces and a user switch are possible */
	bool set_ids;
	uid_t uid;
	gid_t gid;
};

struct rumpd_driver {
	/* set up once by the supervisor */
	const struct rumpd_driver_conf *conf;
	char path[4096];           /* the program */
	char endpoint[4096];       /* where clients reach it ("" none) */
	/* Opened by rumpd, kept across restarts and passed down: the
	 * listening socket (clients that connect during a restart wait in
	 * its backlog instead of being refused) and the device images. */
	int listen_fd;
	int device_fds[RUMPD_MAX_DEVICES];
	char reach[4096];          /* for "how to reach it" */

	/* the supervisor's bookkeeping */
	enum rump_sup_state state;
	pid_t pid;
	int control_fd;            /* our end of its fd 3 */
	int log_fd;                /* read end of its stdout/stderr */
	int probe_fd;              /* a client connection timing recovery */
	int fuse_fd;               /* fuse: /dev/fuse of the current mount */
	uint64_t boot_id;
	uint64_t started_ms, ready_ms, deadline_ms, restart_at_ms;
	uint64_t death_ms;         /* last unplanned death, 0 when served */
	uint64_t ping_seq, ping_sent_ms, pong_seq, next_ping_ms;
	bool heartbeat;            /* it said so in READY */
	bool confined;
	bool counters;
	bool hung;                 /* we killed it for missing heartbeats */
	bool stop_wanted;          /* rumpctl stop: do not restart */
	uint64_t requests, bytes;
	unsigned restarts, failures;
	char last_exit[80];
	char confinement[160];     /* its CONFINED line */
	uint64_t recovery_us[RUMPD_RECOVERY_HISTORY];
	unsigned nrecoveries;      /* total; the history keeps the newest */
	/* A TRIGGER forwarded for rumpctl, answered when TRIGGERED comes. */
	int trigger_session;       /* -1: none */
	uint64_t trigger_reqid, trigger_deadline_ms;
	struct rumpd_log log;
	/* The start of a line it has not finished: echoed with its end, so
	 * that lines of drivers and rumpd's own do not interleave. */
	char echo[512];
	size_t echo_len;
};

uint64_t rumpd_now_ms(void);
uint64_t rumpd_now_us(void);

/* "rumpd: ..." lines for a person: news on stdout, trouble on stderr. */
void rumpd_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void rumpd_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * Opens (making it if needed) the TAP device ifname as rumpnet wants it:
 * Ethernet frames behind a virtio-net header.  0 or an errno.
 */
int rumpd_tap_open(const char *ifname, int *fdp);

/*
 * Finds program (e.g. "rumpnull") for rumpd to run: in $RUMPD_LIBEXEC, next
 * to rumpd in the build tree, or in the installed libexec directory.
 */
int rumpd_find_program(const char *program, const char *build_subdir,
                       char *buf, size_t cap);

void rumpd_driver_init(struct rumpd_driver *d,
                       const struct rumpd_driver_conf *conf);
/* Opens what the driver needs from rumpd: images, the listening socket
 * (chgrp'd to l->gid so that the drivers' user can connect). */
int rumpd_driver_open(struct rumpd_driver *d, const struct rumpd_launch *l);
/* Closes and removes what rumpd_driver_open() made. */
void rumpd_driver_close(struct rumpd_driver *d);

/* Clones and execs the driver; state becomes STARTING. */
int rumpd_driver_start(struct rumpd_driver *d, const struct rumpd_launch *l);

/*
 * Reads what the driver said on its control socket (READY, PONG, ...).
 * Returns 0, or ECONNRESET when it closed the socket, or EPROTO when it
 * said nonsense (both: treat it as broken).
 */
int rumpd_driver_read_control(struct rumpd_driver *d, int *trigger_session,
                              uint64_t *trigger_reqid, char *trigger_reply,
                              size_t cap);
/* Moves what the driver wrote to stdout/stderr into its log, echoing it on
 * rumpd's stderr.  Returns false once the pipe is closed. */
bool rumpd_driver_read_log(struct rumpd_driver *d);
/* Appends a note of rumpd's to the driver's log. */
void rumpd_driver_log_note(struct rumpd_driver *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Copies the newest up to cap bytes of the log; returns the count. */
size_t rumpd_driver_log_tail(const struct rumpd_driver *d, char *buf,
                             size_t cap);

/* Sends "PING n"; 0 or an errno. */
int rumpd_driver_ping(struct rumpd_driver *d, uint64_t now);

/* Starts / advances the connection that finds when it serves again:
 * 0 when done (served), EAGAIN while pending, else an errno. */
int rumpd_driver_probe_start(struct rumpd_driver *d);
int rumpd_driver_probe_read(struct rumpd_driver *d);
void rumpd_driver_probe_stop(struct rumpd_driver *d);

/* Records how long death-to-serving took. */
void rumpd_driver_recovered(struct rumpd_driver *d, uint64_t now_us);
/* Median and worst of the history. */
void rumpd_driver_recovery_stats(const struct rumpd_driver *d,
                                 uint64_t *p50, uint64_t *max);

/*
 * After waitpid() returned status for d's pid: records why it ended and
 * closes its per-run descriptors.  Returns true if the death counts as a
 * failure (unplanned).
 */
bool rumpd_driver_exited(struct rumpd_driver *d, int status, uint64_t now);
/* SIGTERM, wait up to RUMPD_STOP_TIMEOUT_MS (draining its log), then
 * SIGKILL; reaps it. */
void rumpd_driver_stop(struct rumpd_driver *d);

/* "exited with status 3", "was killed by SIGKILL". */
const char *rumpd_exit_reason(int status, char *buf, size_t cap);

const char *rumpd_state_name(enum rump_sup_state s);

#endif /* RUMPD_CHILD_H */
