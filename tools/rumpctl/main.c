/*
 * rumpctl [-s SOCKET] COMMAND [ARGS...]
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rump/ipc.h"
#include "probe.h"
#include "rumpctl.h"

static const struct rumpctl_cmd commands[] = {
	{ "ping", "SERVICE [-n COUNT]",
	  "round trips to a null service, with latencies", rumpctl_cmd_ping },
	{ "echo", "SERVICE TEXT",
	  "sends TEXT through a null service and prints it back",
	  rumpctl_cmd_echo },
	{ "info", "SERVICE", "what a service is and how to reach it",
	  rumpctl_cmd_info },
	{ "disk", "list|info|read|write",
	  "disks and partitions of the disk service", rumpctl_cmd_disk },
	{ "net", "list [SERVICE] | pcap [-c N] [-t SECS] [-S SERVICE] IF",
	  "interfaces of the network service; a pcap stream of one",
	  rumpctl_cmd_net },
	{ "status", "[-p]", "rumpd's drivers: one process each, as they are",
	  rumpctl_cmd_status },
	{ "start", "DRIVER", "starts a stopped or failed driver",
	  rumpctl_cmd_change },
	{ "stop", "DRIVER", "stops a driver (rumpd keeps it stopped)",
	  rumpctl_cmd_change },
	{ "restart", "DRIVER", "stops and starts a driver",
	  rumpctl_cmd_change },
	{ "devices", "", "the devices rumpd's drivers serve",
	  rumpctl_cmd_devices },
	{ "logs", "DRIVER", "the newest output of a driver",
	  rumpctl_cmd_logs },
	{ "test-trigger", "DRIVER ACTION",
	  "test builds: a confined driver tries ACTION", rumpctl_cmd_trigger },
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void
usage(FILE *f)
{
	fprintf(f, "usage: rumpctl [-s SOCKET] COMMAND [ARGS...]\n\n");
	for (size_t i = 0; i < NCOMMANDS; i++)
		fprintf(f, "  %s %-22s %s\n", commands[i].name,
		        commands[i].args, commands[i].help);
	fprintf(f, "\nSERVICE is a name in the runtime directory ($RUMPD_DIR)"
	        " or a socket path;\n-s SOCKET connects there instead.\n");
}

static const struct rumpctl_cmd *
find_command(const char *name)
{
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

int
rumpctl_fail(const char *fmt, ...)
{
	va_list ap;

	fputs("rumpctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return RUMPCTL_FAIL;
}

int
rumpctl_usage(const char *cmd, const char *fmt, ...)
{
	const struct rumpctl_cmd *c = find_command(cmd);
	va_list ap;

	fputs("rumpctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (c != NULL)
		fprintf(stderr, "usage: rumpctl [-s SOCKET] %s %s\n", c->name,
		        c->args);
	return RUMPCTL_USAGE;
}

const char *
rumpctl_target(const struct rumpctl *ctl, const char *service, char *buf,
               size_t cap)
{
	const char *t = ctl->socket ? ctl->socket : service;

	/* The client library takes a name without '/' for a service name. */
	if (strchr(t, '/') != NULL)
		snprintf(buf, cap, "%s", t);
	else if (ctl->socket != NULL)
		snprintf(buf, cap, "./%s", t);
	else if (rump_service_path(t, buf, cap) != 0)
		snprintf(buf, cap, "%s", t);
	return buf;
}

int
rumpctl_connect(const struct rumpctl *ctl, const char *service,
                uint32_t want_kind, bool rings, struct rump_client **clientp)
{
	struct rump_client_opts opts = {
		.version = RUMP_CLIENT_OPTS_VERSION,
		.service_kind = RUMP_SERVICE_ANY,
		.client_name = "rumpctl",
		.sq_entries = rings ? 16 : 0,
		.buf_size = rings ? 256 * 1024 : 0,
		.no_rings = !rings,
	};
	struct rump_client *c;
	char target[4096];
	uint32_t kind;
	int error;

	rumpctl_target(ctl, service, target, sizeof(target));
	error = rump_client_connect(ctl->socket ? target : service, &opts,
	                            &c);
	if (error)
		return rumpctl_fail("cannot reach service '%s' at %s: %s",
		                    service, target, strerror(error));
	kind = rump_client_service_kind(c);
	if (want_kind != RUMP_SERVICE_ANY && kind != want_kind) {
		rump_client_close(c);
		return rumpctl_fail("%s serves a %s service, not %s", target,
		                    probe_kind_name(kind),
		                    probe_kind_name(want_kind));
	}
	*clientp = c;
	return RUMPCTL_OK;
}

int
main(int argc, char **argv)
{
	struct rumpctl ctl = { 0 };
	const struct rumpctl_cmd *cmd;
	int c;

	/* '+': stop at the command, its options are its own. */
	while ((c = getopt(argc, argv, "+s:h")) != -1) {
		switch (c) {
		case 's':
			ctl.socket = optarg;
			break;
		case 'h':
			usage(stdout);
			return RUMPCTL_OK;
		default:
			usage(stderr);
			return RUMPCTL_USAGE;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "rumpctl: no command given\n");
		usage(stderr);
		return RUMPCTL_USAGE;
	}
	cmd = find_command(argv[optind]);
	if (cmd == NULL) {
		fprintf(stderr, "rumpctl: unknown command '%s'\n",
		        argv[optind]);
		usage(stderr);
		return RUMPCTL_USAGE;
	}
	argc -= optind;
	argv += optind;
	/* 0, not 1: makes GNU getopt start afresh, dropping our "+". */
	optind = 0;
	return cmd->run(&ctl, argc, argv);
}
