/*
 * The driver's side of the supervisor contract (docs/rumpd.md): what a
 * rump process started by rumpd does with the control socket it inherits
 * as RUMPD_CONTROL_FD.
 *
 *	rump_supervised_open("rumpnull", &sup);
 *	... set up: runtime, components, the listening socket ...
 *	if (rump_supervised_confine(sup, RUMP_CONFINE_NULL) != 0)
 *		exit(1);                 // never serve unconfined when asked
 *	rump_supervised_ready(sup, boot_id, counters_fn, ctx);
 *	... serve ...
 *	rump_supervised_close(sup);
 *
 * Not started by rumpd (no RUMPD_CONTROL_FD), every call is a no-op that
 * succeeds, so a driver runs the same by hand.
 *
 * On the control socket (SOCK_SEQPACKET, one line per record):
 *   driver -> rumpd   "CONFINED <what>"            after confinement
 *                     "READY <boot id, hex> heartbeat"
 *                     "PONG <n> <requests> <bytes>" answering "PING <n>"
 *   rumpd -> driver   "PING <n>"
 *                     "TRIGGER <action>"           test builds only
 */
#ifndef RUMP_SUPERVISED_H
#define RUMP_SUPERVISED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What a driver is, which decides what its seccomp filter allows. */
enum rump_confine_kind {
	RUMP_CONFINE_NULL,
	RUMP_CONFINE_DISK,   /* + block device ioctls */
	RUMP_CONFINE_FS,     /* + connecting to Unix sockets (rumpdisk) */
	RUMP_CONFINE_NET,    /* nothing more: NICs are set up before */
	RUMP_CONFINE_NBD,    /* gateway: + connecting to Unix sockets */
	RUMP_CONFINE_FUSE,   /* gateway: + connecting to Unix sockets */
};

struct rump_supervised;

struct rump_supervised_counters {
	uint64_t requests;
	uint64_t bytes;
};

/*
 * Called from the heartbeat thread to fill the counters rumpd shows; must
 * be thread-safe and quick.  A driver stuck in a lock it takes here stops
 * answering the heartbeat, which is what should happen to a stuck driver.
 */
typedef void (*rump_supervised_counters_fn)(void *ctx,
                                            struct rump_supervised_counters *out);

/* name is for messages.  EINVAL: RUMPD_CONTROL_FD is set but not a
 * socket. */
int rump_supervised_open(const char *name, struct rump_supervised **supp);
/* True if started by a supervisor. */
bool rump_supervised_active(const struct rump_supervised *sup);

/*
 * Confines the process as rumpd asked in the environment (RUMPD_CONFINE,
 * RUMPD_CONFINE_UID, RUMPD_CONFINE_GID): other user and groups, no new
 * privileges, a seccomp allow-list for kind.  Call it after opening
 * everything and before reading any client input, while the process has
 * no thread but its own would be best but is not needed (the filter is
 * synchronized to all threads).  Returns 0 (also when not asked) or an
 * errno after which the driver must exit.
 */
int rump_supervised_confine(struct rump_supervised *sup,
                            enum rump_confine_kind kind);

/*
 * Reports READY with boot_id and starts the heartbeat thread that answers
 * rumpd's PINGs with the counters from counters (NULL: none).
 */
int rump_supervised_ready(struct rump_supervised *sup, uint64_t boot_id,
                          rump_supervised_counters_fn counters, void *ctx);

/* Stops the heartbeat thread and frees sup (NULL is fine). */
void rump_supervised_close(struct rump_supervised *sup);

/*
 * ---- The rest of a driver's main(): one implementation for all ----------
 *
 *	rump_driver_signals_block();          // first, before any thread
 *	... runtime ...
 *	rump_driver_listen("disk", opt_socket, name, sizeof(name), &fd, &own);
 *	rump_driver_pidfile(opt_pidfile);
 *	rump_driver_stopper_start(stop_fn, server, &stopper);
 *	... confine, ready, serve until stop_fn made the server return ...
 *	rump_driver_stopper_end(stopper);
 */

/*
 * Blocks SIGTERM, SIGINT and SIGHUP in the calling thread, and so in every
 * thread it creates afterwards, and ignores SIGPIPE.  Call it first in
 * main().  A driver is PID 1 of its PID namespace, where a signal it
 * neither handles nor blocks is dropped: blocked, rumpd's SIGTERM stays
 * pending for the stopper.  0 or an errno.
 */
int rump_driver_signals_block(void);

/* The thread that takes the blocked signals (from a signalfd). */
struct rump_driver_stopper;
/*
 * Called once, on the stopper's thread, when SIGTERM, SIGINT or SIGHUP
 * arrives; it must make the driver's main loop return (rump_server_stop,
 * an eventfd, fuse_session_exit, ...).
 */
typedef void (*rump_driver_stop_fn)(void *ctx, int sig);
int rump_driver_stopper_start(rump_driver_stop_fn stop, void *ctx,
                              struct rump_driver_stopper **sp);
/* The stop function of a driver whose main loop is rump_server_run():
 * ctx is its struct rump_server. */
void rump_driver_stop_server(void *server, int sig);
/* Ends the thread without calling stop if no signal came; frees s (NULL is
 * fine).  Returns the signal that came, or 0. */
int rump_driver_stopper_end(struct rump_driver_stopper *s);

/*
 * The listening socket the supervisor passed down (RUMPD_LISTEN_FD, after
 * checking it is a socket), or -1 in *fdp when there is none.  EINVAL or
 * ENOTSOCK for a bad one.
 */
int rump_driver_inherited_listener(int *fdp);

/*
 * A rump IPC listening socket: the supervisor's, else a new one at path,
 * else (path NULL) at "<runtime dir>/<service>.sock", making the runtime
 * directory if needed.  name gets where it listens, for the logs; *ownp
 * says whether the socket file is the caller's to unlink at exit.
 */
int rump_driver_listen(const char *service, const char *path, char *name,
                       size_t cap, int *fdp, bool *ownp);

/* Writes the process id to path, atomically (a temporary file renamed):
 * a reader never sees half a pid.  0 or an errno. */
int rump_driver_pidfile(const char *path);

#endif /* RUMP_SUPERVISED_H */
