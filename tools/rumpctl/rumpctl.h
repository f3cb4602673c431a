/*
 * rumpctl: the command line of rumpd.  main.c parses the global options and
 * dispatches; each group of commands lives in a cmd_<group>.c of its own
 * and adds its entries to the table in main.c.
 */
#ifndef RUMPCTL_H
#define RUMPCTL_H

#include <stdbool.h>

#include "rump/client.h"

/* Exit statuses. */
#define RUMPCTL_OK 0
#define RUMPCTL_FAIL 1
#define RUMPCTL_USAGE 2

struct rumpctl {
	const char *socket;          /* -s: overrides the service's socket */
};

struct rumpctl_cmd {
	const char *name;
	const char *args;            /* for usage: "SERVICE [-n COUNT]" */
	const char *help;            /* one line */
	/* argv[0] is the command's name; returns an exit status. */
	int (*run)(struct rumpctl *ctl, int argc, char **argv);
};

/* Prints "rumpctl: <message>" on stderr; returns RUMPCTL_FAIL. */
int rumpctl_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints the message and the command's usage; returns RUMPCTL_USAGE. */
int rumpctl_usage(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * Connects to service (or to ctl->socket).  want_kind is checked after the
 * handshake (RUMP_SERVICE_ANY: anything).  On failure prints why and
 * returns RUMPCTL_FAIL.
 */
int rumpctl_connect(const struct rumpctl *ctl, const char *service,
                    uint32_t want_kind, bool rings,
                    struct rump_client **clientp);
/* Where rumpctl_connect() goes for service, for messages. */
const char *rumpctl_target(const struct rumpctl *ctl, const char *service,
                           char *buf, size_t cap);

/* cmd_null.c */
int rumpctl_cmd_ping(struct rumpctl *ctl, int argc, char **argv);
int rumpctl_cmd_echo(struct rumpctl *ctl, int argc, char **argv);
int rumpctl_cmd_info(struct rumpctl *ctl, int argc, char **argv);

/* cmd_disk.c */
int rumpctl_cmd_disk(struct rumpctl *ctl, int argc, char **argv);

/* cmd_net.c */
int rumpctl_cmd_net(struct rumpctl *ctl, int argc, char **argv);

/* cmd_sup.c: rumpd's control socket */
int rumpctl_cmd_status(struct rumpctl *ctl, int argc, char **argv);
int rumpctl_cmd_change(struct rumpctl *ctl, int argc, char **argv);
int rumpctl_cmd_devices(struct rumpctl *ctl, int argc, char **argv);
int rumpctl_cmd_logs(struct rumpctl *ctl, int argc, char **argv);
int rumpctl_cmd_trigger(struct rumpctl *ctl, int argc, char **argv);

#endif /* RUMPCTL_H */
