/*
 * rumpnet: the rump process for networks: NICs, the TCP/IP stack (lwIP)
 * and the network service (raw frames and sockets).
 *
 *   rumpnet --if eth0=tap:rump0 --addr eth0=10.0.0.2/24
 *           --addr eth0=fd00::2/64 --route default=10.0.0.1
 *           [--socket PATH] [--pidfile PATH]
 *
 * --if NAME=KIND:ARGS makes interface NAME with component nic_KIND (tap,
 * packet, shm) and puts it under the stack; --raw-if does the same without
 * the stack (raw frames only).
 *
 * Started by rumpd it follows the supervisor contract (rump/supervised.h,
 * docs/rumpd.md): it confines itself once its interfaces are open (a TAP
 * or packet socket opened before keeps working in the empty network
 * namespace rumpd gives it), reports READY and answers the heartbeat with
 * its requests and the bytes its interfaces moved.  SIGTERM or SIGINT
 * stops it cleanly.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rump/ipc.h"
#include "rump/nic.h"
#include "rump/rumpkern.h"
#include "rump/server.h"
#include "rump/supervised.h"

#include "inet.h"
#include "net_service.h"

#define MAX_ARGS 64

struct options {
	const char *socket_path;   /* NULL: the runtime directory's */
	const char *pidfile;       /* NULL: none */
	const char *ifs[MAX_ARGS];
	bool if_inet[MAX_ARGS];
	unsigned nifs;
	const char *addrs[MAX_ARGS];
	unsigned naddrs;
	const char *routes[MAX_ARGS];
	unsigned nroutes;
};

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: rumpnet [--if NAME=KIND:ARGS]... [--raw-if NAME=KIND:ARGS]...\n"
	    "               [--addr NAME=ADDR/PREFIX]... [--route DEST=GW]...\n"
	    "               [--socket PATH] [--pidfile PATH]\n"
	    "KIND is tap (ARGS: TAPNAME or fd=N), packet (HOSTIF or fd=N) or\n"
	    "shm (BUSFILE); then ,mtu=N and ,mac=xx:xx:xx:xx:xx:xx.\n"
	    "DEST is default, default4, default6 or a prefix (2001:db8::/32);\n"
	    "GW an address (fe80::1%%NAME: link-local, on interface NAME).\n"
	    "Example: rumpnet --if eth0=tap:rump0 --addr eth0=10.0.0.2/24 \\\n"
	    "           --addr eth0=fd00::2/64 --route default=10.0.0.1\n"
	    "Default socket: $RUMPD_DIR/net.sock.\n");
}

static int
add_arg(const char **list, unsigned *n, const char *v, const char *what)
{
	if (*n == MAX_ARGS) {
		fprintf(stderr, "rumpnet: too many %s options\n", what);
		return 2;
	}
	if (strchr(v, '=') == NULL) {
		fprintf(stderr, "rumpnet: --%s wants NAME=VALUE, not '%s'\n",
		        what, v);
		return 2;
	}
	list[(*n)++] = v;
	return 0;
}

/* 0, or 2 after printing why (the exit status for usage errors). */
static int
parse_options(int argc, char **argv, struct options *o, bool *help)
{
	static const struct option longopts[] = {
		{ "if", required_argument, NULL, 'i' },
		{ "raw-if", required_argument, NULL, 'R' },
		{ "addr", required_argument, NULL, 'a' },
		{ "route", required_argument, NULL, 'r' },
		{ "socket", required_argument, NULL, 's' },
		{ "pidfile", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c, st = 0;

	*help = false;
	while ((c = getopt_long(argc, argv, "i:R:a:r:s:p:h", longopts,
	                        NULL)) != -1) {
		switch (c) {
		case 'i':
		case 'R':
			o->if_inet[o->nifs] = c == 'i';
			st = add_arg(o->ifs, &o->nifs, optarg, "if");
			break;
		case 'a':
			st = add_arg(o->addrs, &o->naddrs, optarg, "addr");
			break;
		case 'r':
			st = add_arg(o->routes, &o->nroutes, optarg, "route");
			break;
		case 's':
			o->socket_path = optarg;
			break;
		case 'p':
			o->pidfile = optarg;
			break;
		case 'h':
			*help = true;
			return 0;
		default:
			usage(stderr);
			return 2;
		}
		if (st)
			return st;
	}
	if (optind != argc) {
		fprintf(stderr, "rumpnet: unexpected argument '%s'\n",
		        argv[optind]);
		usage(stderr);
		return 2;
	}
	return 0;
}

/* Splits "NAME=REST" into name (at most cap bytes) and rest. */
static int
split_eq(const char *s, char *name, size_t cap, const char **rest)
{
	const char *eq = strchr(s, '=');

	if (eq == NULL || eq == s || (size_t)(eq - s) >= cap)
		return EINVAL;
	memcpy(name, s, (size_t)(eq - s));
	name[eq - s] = '\0';
	*rest = eq + 1;
	return 0;
}

/* Creates the interfaces, addresses and routes of the command line. */
static int
configure(struct rk_runtime *rt, struct inet *stack, struct net_service *ns,
          const struct options *o)
{
	/* An IPv6 prefix is longer than an interface name. */
	char name[RUMP_NAME_MAX], comp[32], dest[INET6_ADDRSTRLEN + 4];
	const char *rest, *colon;
	unsigned i;
	int error;

	for (i = 0; i < o->nifs; i++) {
		if (split_eq(o->ifs[i], name, sizeof(name), &rest) != 0 ||
		    (colon = strchr(rest, ':')) == NULL ||
		    colon == rest || (size_t)(colon - rest) > 16) {
			rk_err(rt, "bad --if '%s' (want NAME=KIND:ARGS)",
			       o->ifs[i]);
			return EINVAL;
		}
		snprintf(comp, sizeof(comp), "nic_%.*s", (int)(colon - rest),
		         rest);
		if (rk_component_find(comp) == NULL) {
			rk_err(rt, "--if %s: no NIC kind '%.*s' (tap, packet, "
			       "shm)", name, (int)(colon - rest), rest);
			return EINVAL;
		}
		error = rk_component_create(rt, comp, name, colon + 1);
		if (error) {
			rk_err(rt, "--if %s: %s", o->ifs[i], strerror(error));
			return error;
		}
		error = net_service_add_if(ns, name, o->if_inet[i]);
		if (error) {
			rk_err(rt, "--if %s: cannot start: %s", name,
			       strerror(error));
			return error;
		}
	}
	for (i = 0; i < o->naddrs; i++) {
		error = split_eq(o->addrs[i], name, sizeof(name), &rest);
		if (error == 0)
			error = net_service_add_addr(ns, name, rest);
		if (error) {
			rk_err(rt, "--addr %s: %s", o->addrs[i],
			       error == ENOENT ? "no such interface" :
			       error == EINVAL ? "bad address (want "
			       "ADDR/PREFIX)" : strerror(error));
			return error;
		}
	}
	for (i = 0; i < o->nroutes; i++) {
		error = split_eq(o->routes[i], dest, sizeof(dest), &rest);
		if (error == 0)
			error = inet_add_route(stack, dest, rest);
		if (error) {
			rk_err(rt, "--route %s: %s", o->routes[i],
			       error == EINVAL ? "want DEST=GW: DEST default, "
			       "default4, default6 or a prefix without host "
			       "bits, GW an address (fe80::1%IF for a "
			       "link-local one on interface IF)" :
			       error == EAFNOSUPPORT ? "the destination and "
			       "the gateway are of different families" :
			       error == ENETUNREACH ? "the gateway is on no "
			       "interface's subnet" : error == EEXIST ?
			       "a route to that destination is given already"
			       : strerror(error));
			return error;
		}
	}
	return 0;
}

/* What the heartbeat's counters need. */
struct counters_ctx {
	struct rk_runtime *rt;
	struct rump_server *server;
};

static int
add_nic_bytes(struct rk_device *dev, void *arg)
{
	struct rk_nic *nic = rk_nic_of(dev);
	struct rk_nic_stats st;

	if (nic != NULL) {
		rk_nic_stats(nic, &st);
		*(uint64_t *)arg += st.rx_bytes + st.tx_bytes;
	}
	return 0;
}

/* What rumpd shows as this driver's work (on the heartbeat thread):
 * requests served, and the bytes its interfaces moved both ways. */
static void
count_requests(void *arg, struct rump_supervised_counters *out)
{
	struct counters_ctx *ctx = arg;
	struct rump_server_stats st;
	uint64_t bytes = 0;

	rump_server_stats(ctx->server, &st);
	rk_device_foreach(ctx->rt, add_nic_bytes, &bytes);
	out->requests = st.requests + st.control_msgs;
	out->bytes = bytes;
}

int
main(int argc, char **argv)
{
	struct options opts = { 0 };
	struct rk_runtime_opts rtopts = { .name = "rumpnet" };
	struct rump_server_opts sopts = { 0 };
	struct rk_runtime *rt = NULL;
	struct net_service *ns = NULL;
	struct inet *stack = NULL;
	struct rump_server *server = NULL;
	struct rump_supervised *sup = NULL;
	struct rump_driver_stopper *stopper = NULL;
	int sig;
	struct counters_ctx counters_ctx;
	char path[PATH_MAX];
	int listen_fd, error, status;
	bool help, own_socket = false, own_pidfile = false;

	if ((status = parse_options(argc, argv, &opts, &help)) != 0)
		return status;
	if (help) {
		usage(stdout);
		return 0;
	}
	status = 1;

	/* Before any thread exists, so that they all inherit the mask. */
	if ((error = rump_driver_signals_block()) != 0) {
		fprintf(stderr, "rumpnet: cannot block signals: %s\n",
		        strerror(error));
		return 1;
	}
	error = rk_runtime_create(&rtopts, &rt);
	if (error) {
		fprintf(stderr, "rumpnet: cannot start the runtime: %s\n",
		        strerror(error));
		return 1;
	}
	if ((error = rump_supervised_open("rumpnet", &sup)) != 0) {
		rk_err(rt, "bad RUMPD_CONTROL_FD: %s", strerror(error));
		goto out;
	}
	if ((error = inet_create(rt, &stack)) != 0) {
		rk_err(rt, "cannot start the TCP/IP stack: %s",
		       strerror(error));
		goto out;
	}
	error = net_service_create(rt, stack, &ns);
	if (error) {
		rk_err(rt, "cannot create the network service: %s",
		       strerror(error));
		goto out;
	}
	/* The TAP devices, packet sockets and bus files are opened here,
	 * while the process may still open things. */
	if ((error = configure(rt, stack, ns, &opts)) != 0)
		goto out;

	error = rump_driver_listen("net", opts.socket_path, path,
	                           sizeof(path), &listen_fd, &own_socket);
	if (error) {
		rk_err(rt, "cannot listen on %s: %s", opts.socket_path ?
		       opts.socket_path : "the runtime directory",
		       strerror(error));
		goto out;
	}
	sopts.listen_fd = listen_fd;
	sopts.boot_id = rk_runtime_boot_id(rt);
	error = rump_server_create(&sopts, net_service_desc(ns), &server);
	if (error) {
		rk_err(rt, "cannot create the server: %s", strerror(error));
		close(listen_fd);
		goto out;
	}
	if (opts.pidfile != NULL) {
		if ((error = rump_driver_pidfile(opts.pidfile)) != 0) {
			rk_err(rt, "cannot write %s: %s", opts.pidfile,
			       strerror(error));
			goto out;
		}
		own_pidfile = true;
	}
	counters_ctx = (struct counters_ctx){ rt, server };
	if ((error = rump_driver_stopper_start(rump_driver_stop_server, server,
	                                       &stopper)) != 0) {
		rk_err(rt, "cannot start the signal thread: %s",
		       strerror(error));
		goto out;
	}

	/* Everything is open: from here on it needs no privilege. */
	if ((error = rump_supervised_confine(sup, RUMP_CONFINE_NET)) != 0)
		goto out;
	rk_info(rt, "serving net on %s, boot id %016" PRIx64, path,
	        sopts.boot_id);
	if ((error = rump_supervised_ready(sup, sopts.boot_id,
	                                   count_requests, &counters_ctx)) != 0)
		rk_warn(rt, "cannot report READY to the supervisor: %s",
		        strerror(error));

	error = rump_server_run(server);
	if (error)
		rk_err(rt, "server failed: %s", strerror(error));
	else
		status = 0;
out:
	if ((sig = rump_driver_stopper_end(stopper)) != 0)
		rk_info(rt, "%s: stopping", strsignal(sig));
	rump_supervised_close(sup);
	/* Sessions first (they close their sockets), then the interfaces'
	 * receive threads, then the stack. */
	if (server != NULL)
		rump_server_destroy(server);
	net_service_destroy(ns);
	inet_destroy(stack);
	if (own_socket)
		unlink(path);
	if (own_pidfile)
		unlink(opts.pidfile);
	rk_runtime_destroy(rt);
	return status;
}
