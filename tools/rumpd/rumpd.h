/*
 * The supervisor's state, shared by its event loop (main.c), its control
 * socket (control.c) and the built-in default configuration (defaults.c).
 * One struct supervisor per rumpd; nothing global.
 */
#ifndef RUMPD_RUMPD_H
#define RUMPD_RUMPD_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "child.h"
#include "config.h"

#define RUMPD_MAX_SESSIONS 16
#define RUMPD_TRIGGER_TIMEOUT_MS 5000

struct ctl_session {
	int fd;                    /* -1: free */
	bool hello;                /* HELLO done */
	bool may_change;           /* root or rumpd's user: start/stop */
};

struct supervisor {
	int sigfd;
	bool stopping;
	bool starting_up;          /* first start: a failure stops rumpd */
	char runtime_dir[PATH_MAX];
	struct rumpd_config cfg;
	struct rumpd_launch launch;
	struct rumpd_driver *drivers;   /* indexed like cfg.drivers */
	unsigned ndrivers;
	uint64_t started_ms;
	uint64_t boot_id;
	int ctl_fd;
	char ctl_path[PATH_MAX];
	struct ctl_session sessions[RUMPD_MAX_SESSIONS];
};

/* main.c: what rumpctl start/stop/restart do. */
int sup_start(struct supervisor *sv, struct rumpd_driver *d);
void sup_stop(struct supervisor *sv, struct rumpd_driver *d);
/* Tells systemd (if it is listening) how things stand. */
void sup_notify_status(struct supervisor *sv);

/* control.c: the control socket in the runtime directory. */
int ctl_open(struct supervisor *sv);
void ctl_close(struct supervisor *sv);
void ctl_accept(struct supervisor *sv);
void ctl_input(struct supervisor *sv, unsigned session);
/* Sends the driver's answer to a forwarded TRIGGER (status 0 with text,
 * or an errno). */
void ctl_trigger_reply(struct supervisor *sv, int session, uint64_t reqid,
                       int status, const char *text);

/* demo.c: reaching the gateways as a person would; 0 or an errno, after
 * saying what happened.  fuse: with write_test, a file is written, read
 * back and removed. */
int rumpd_demo_nbd(const struct rumpd_driver *d, const char *export);
int rumpd_demo_fuse(const struct rumpd_driver *d, bool write_test);
/* Says how to reach each of a net driver's NICs: a bus to join, a TAP's
 * host side to set up. */
void rumpd_demo_net_reach(const struct rumpd_driver *d);

/* defaults.c: the configuration when no file is given. */
int rumpd_default_config(struct supervisor *sv);

#endif /* RUMPD_RUMPD_H */
