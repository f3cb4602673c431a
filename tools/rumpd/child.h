/*
 * The processes rumpd runs: one struct rumpd_child per driver process,
 * started with fork + exec, its control socket on fd 3 (RUMPD_CONTROL_FD)
 * and its listening socket on fd 4 (RUMPD_LISTEN_FD), ready when it says
 * "READY <boot id>" on fd 3.
 */
#ifndef RUMPD_CHILD_H
#define RUMPD_CHILD_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define RUMPD_READY_TIMEOUT_MS 5000
#define RUMPD_STOP_TIMEOUT_MS 5000
#define RUMPD_BACKOFF_MIN_MS 100
#define RUMPD_BACKOFF_MAX_MS 5000
/* A child that ran this long before dying was healthy: restart it quickly. */
#define RUMPD_HEALTHY_MS 10000

enum rumpd_child_state {
	CHILD_STOPPED,     /* not running; restart_at says when to start */
	CHILD_STARTING,    /* forked, waiting for READY */
	CHILD_RUNNING,     /* READY received */
};

struct rumpd_child {
	/* set up by the caller */
	const char *name;          /* "rumpnull" */
	char path[4096];           /* the program */
	char socket[4096];         /* where it listens */
	const char *runtime_dir;   /* passed down as RUMPD_DIR */
	/* The listening socket, made by the supervisor and passed down as
	 * RUMPD_LISTEN_FD: it outlives a crashed child, so clients that
	 * connect during a restart wait in its backlog instead of being
	 * refused.  -1: the child listens by itself. */
	int listen_fd;

	/* the supervisor's */
	enum rumpd_child_state state;
	pid_t pid;
	int control_fd;            /* our end of its fd 3, or -1 */
	uint64_t boot_id;
	uint64_t started_ms;       /* monotonic */
	uint64_t restart_at_ms;
	uint64_t announced_ms;     /* the restart_at_ms last told about */
	unsigned backoff_ms;
	unsigned restarts;
};

uint64_t rumpd_now_ms(void);

/* "rumpd: ..." lines for a person: news on stdout, trouble on stderr. */
void rumpd_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void rumpd_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * Finds program (e.g. "rumpnull") for rumpd to run: in $RUMPD_LIBEXEC, next
 * to rumpd in the build tree, or in the installed libexec directory.
 */
int rumpd_find_program(const char *program, const char *build_subdir,
                       char *buf, size_t cap);

void rumpd_child_init(struct rumpd_child *c, const char *name,
                      const char *runtime_dir);
/* Forks and execs the child; state becomes CHILD_STARTING. */
int rumpd_child_start(struct rumpd_child *c);
/*
 * Reads the child's READY line from its control socket once poll said it
 * is readable: 0 (state CHILD_RUNNING), EAGAIN (not yet), or an errno
 * (EPROTO: it said something else; ECONNRESET: it closed the socket).
 */
int rumpd_child_read_ready(struct rumpd_child *c);
/* Bookkeeping after waitpid() returned status for c's pid: logs why it
 * ended and schedules the restart with backoff. */
void rumpd_child_exited(struct rumpd_child *c, int status);
/* SIGTERM, wait up to RUMPD_STOP_TIMEOUT_MS, then SIGKILL; reaps it. */
void rumpd_child_stop(struct rumpd_child *c);

/* "exited with status 3", "was killed by SIGKILL". */
const char *rumpd_exit_reason(int status, char *buf, size_t cap);

#endif /* RUMPD_CHILD_H */
