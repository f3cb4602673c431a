/*
 * rumpnbd: the NBD gateway.  Serves rumpdisk's devices to any NBD client
 * (qemu, nbd-client, libnbd tools, fio) and hides rumpdisk restarts from
 * them.
 *
 *   rumpnbd [--unix PATH] [--tcp [HOST]:PORT] [--disk-service NAME]
 *           [--reconnect-timeout SECONDS] [--pidfile PATH]
 *           [--backend mem:SIZE]
 *
 * Listens on a Unix socket, a TCP address, and/or an inherited listening
 * socket (RUMPD_LISTEN_FD, as the supervisor passes it).  Started by rumpd
 * it follows the supervisor contract (rump/supervised.h): confined once
 * listening, READY, heartbeat.  SIGTERM or SIGINT stops it after the
 * replies in flight went out.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "rump/supervised.h"

#include "gateway.h"

#define MAX_LISTENERS 8
#define NBD_DEFAULT_PORT "10809"

struct options {
	const char *unix_path;
	const char *tcp;
	const char *disk_service;
	const char *backend;       /* test-only: "mem:SIZE" */
	const char *pidfile;
	int reconnect_timeout_s;
};

struct listener {
	int fd;
	bool is_unix;
};

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: rumpnbd [--unix PATH] [--tcp [HOST]:PORT]\n"
	    "               [--disk-service NAME] [--reconnect-timeout SEC]\n"
	    "               [--pidfile PATH] [--backend mem:SIZE]\n"
	    "Serves rumpdisk's devices over NBD (export names are device\n"
	    "names; the empty name is the first disk).  TCP port defaults\n"
	    "to " NBD_DEFAULT_PORT "; the disk service to \"disk\".  With\n"
	    "--backend mem:SIZE it serves one RAM export, wd0, instead\n"
	    "(for tests).  RUMPD_LISTEN_FD names an inherited listening "
	    "socket.\n");
}

static int
parse_options(int argc, char **argv, struct options *o, bool *help)
{
	static const struct option longopts[] = {
		{ "unix", required_argument, NULL, 'u' },
		{ "tcp", required_argument, NULL, 't' },
		{ "disk-service", required_argument, NULL, 'd' },
		{ "backend", required_argument, NULL, 'b' },
		{ "pidfile", required_argument, NULL, 'p' },
		{ "reconnect-timeout", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char *end;
	long v;
	int c;

	*help = false;
	while ((c = getopt_long(argc, argv, "u:t:d:b:p:r:h", longopts,
	                        NULL)) != -1) {
		switch (c) {
		case 'u':
			o->unix_path = optarg;
			break;
		case 't':
			o->tcp = optarg;
			break;
		case 'd':
			o->disk_service = optarg;
			break;
		case 'b':
			if (strncmp(optarg, "mem:", 4) != 0) {
				fprintf(stderr, "rumpnbd: unknown backend "
				        "'%s' (only mem:SIZE)\n", optarg);
				return 2;
			}
			o->backend = optarg;
			break;
		case 'p':
			o->pidfile = optarg;
			break;
		case 'r':
			errno = 0;
			v = strtol(optarg, &end, 10);
			if (errno != 0 || *end != '\0' || v < 1 ||
			    v > 24 * 3600) {
				fprintf(stderr, "rumpnbd: bad reconnect "
				        "timeout '%s'\n", optarg);
				return 2;
			}
			o->reconnect_timeout_s = (int)v;
			break;
		case 'h':
			*help = true;
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "rumpnbd: unexpected argument '%s'\n",
		        argv[optind]);
		usage(stderr);
		return 2;
	}
	return 0;
}

/* A listening stream socket at path; a stale socket file is replaced. */
static int
listen_unix(const char *path, int *fdp)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, probe, err;

	if (strlen(path) >= sizeof(sa.sun_path))
		return ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		err = errno;
		if (err != EADDRINUSE)
			goto fail;
		/* Someone answering there is alive: leave them be. */
		probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (probe < 0)
			goto fail;
		if (connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0 ||
		    errno != ECONNREFUSED) {
			close(probe);
			goto fail;
		}
		close(probe);
		if (unlink(path) != 0 ||
		    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
			err = errno;
			goto fail;
		}
	}
	if (chmod(path, 0660) != 0 || listen(fd, SOMAXCONN) != 0) {
		err = errno;
		unlink(path);
		goto fail;
	}
	*fdp = fd;
	return 0;
fail:
	close(fd);
	return err;
}

/*
 * Every address of "[HOST]:PORT", "HOST" or "[V6ADDR]:PORT"; no host means
 * all interfaces.  Adds to ls; the count goes to *n.
 */
static int
listen_tcp(const char *spec, struct listener *ls, unsigned *n, unsigned cap)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
	                          .ai_flags = AI_PASSIVE };
	struct addrinfo *res, *ai;
	char host[256];
	const char *port = NBD_DEFAULT_PORT, *colon;
	int rc, err = 0, on = 1;

	if (spec[0] == '[') {
		const char *close_br = strchr(spec, ']');

		if (close_br == NULL ||
		    (size_t)(close_br - spec - 1) >= sizeof(host))
			return EINVAL;
		memcpy(host, spec + 1, (size_t)(close_br - spec - 1));
		host[close_br - spec - 1] = '\0';
		if (close_br[1] == ':')
			port = close_br + 2;
		else if (close_br[1] != '\0')
			return EINVAL;
	} else {
		colon = strrchr(spec, ':');
		if (colon != NULL) {
			if ((size_t)(colon - spec) >= sizeof(host))
				return EINVAL;
			memcpy(host, spec, (size_t)(colon - spec));
			host[colon - spec] = '\0';
			port = colon + 1;
		} else if (snprintf(host, sizeof(host), "%s", spec) >=
		           (int)sizeof(host)) {
			return EINVAL;
		}
	}
	rc = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
	if (rc != 0) {
		nbd_log("cannot resolve '%s': %s", spec, gai_strerror(rc));
		return EINVAL;
	}
	for (ai = res; ai != NULL && *n < cap; ai = ai->ai_next) {
		int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
		                ai->ai_protocol);

		if (fd < 0) {
			err = errno;
			continue;
		}
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
		if (ai->ai_family == AF_INET6)
			setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on,
			           sizeof(on));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 ||
		    listen(fd, SOMAXCONN) != 0) {
			err = errno;
			close(fd);
			continue;
		}
		ls[(*n)++] = (struct listener){ .fd = fd };
		err = 0;
	}
	freeaddrinfo(res);
	return err;
}

static void
peer_name(int fd, bool is_unix, char *buf, size_t cap)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char host[INET6_ADDRSTRLEN], serv[8];

	if (is_unix) {
		struct ucred cred;
		socklen_t clen = sizeof(cred);

		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred,
		               &clen) == 0)
			snprintf(buf, cap, "unix pid %ld", (long)cred.pid);
		else
			snprintf(buf, cap, "unix");
		return;
	}
	if (getpeername(fd, (struct sockaddr *)&ss, &len) != 0 ||
	    getnameinfo((struct sockaddr *)&ss, len, host, sizeof(host),
	                serv, sizeof(serv),
	                NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
		snprintf(buf, cap, "tcp");
		return;
	}
	snprintf(buf, cap, "%s:%s", host, serv);
}

static void
accept_one(struct gateway *gw, const struct listener *l)
{
	char peer[64];
	int fd, on = 1, err;

	fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0) {
		if (errno != EAGAIN && errno != EINTR &&
		    errno != ECONNABORTED) {
			nbd_log("accept: %s", strerror(errno));
			/* Out of descriptors: do not spin on it. */
			usleep(10000);
		}
		return;
	}
	if (!l->is_unix)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
	peer_name(fd, l->is_unix, peer, sizeof(peer));
	if ((err = conn_start(gw, fd, peer)) != 0)
		nbd_log("%s: refused: %s", peer, strerror(err));
}

/* Accepts until stop_fd (an eventfd the stopper writes) is readable. */
static void
serve(struct gateway *gw, const struct listener *ls, unsigned n, int stop_fd)
{
	struct pollfd pfd[MAX_LISTENERS + 1];
	unsigned i;

	for (i = 0; i < n; i++)
		pfd[i] = (struct pollfd){ .fd = ls[i].fd, .events = POLLIN };
	pfd[n] = (struct pollfd){ .fd = stop_fd, .events = POLLIN };
	for (;;) {
		if (poll(pfd, n + 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			nbd_log("poll: %s", strerror(errno));
			return;
		}
		if (pfd[n].revents != 0)
			return;
		for (i = 0; i < n; i++)
			if (pfd[i].revents & POLLIN)
				accept_one(gw, &ls[i]);
	}
}

/* On the stopper's thread, at SIGTERM, SIGINT or SIGHUP. */
static void
stop_serving(void *ctx, int sig)
{
	uint64_t one = 1;

	nbd_log("%s: stopping", strsignal(sig));
	if (write(*(int *)ctx, &one, sizeof(one)) != sizeof(one))
		nbd_log("cannot stop: %s", strerror(errno));
}

/* What rumpd shows as this gateway's work (on the heartbeat thread). */
static void
count_requests(void *arg, struct rump_supervised_counters *out)
{
	struct gateway *gw = arg;

	out->requests = __atomic_load_n(&gw->requests, __ATOMIC_RELAXED);
	out->bytes = __atomic_load_n(&gw->bytes, __ATOMIC_RELAXED);
}

int
main(int argc, char **argv)
{
	struct options opts = { .disk_service = "disk",
	                        .reconnect_timeout_s = 60 };
	struct listener ls[MAX_LISTENERS];
	struct nbd_backend *backend = NULL;
	struct rump_supervised *sup = NULL;
	struct rump_driver_stopper *stopper = NULL;
	struct gateway gw;
	uint64_t boot_id;
	unsigned nls = 0, i;
	int stop_fd = -1, fd, err, status;
	bool help, own_pidfile = false, own_unix = false, gw_up = false;

	if ((status = parse_options(argc, argv, &opts, &help)) != 0)
		return status;
	if (help) {
		usage(stdout);
		return 0;
	}
	status = 1;

	/* Before any thread exists, so that they all inherit the mask. */
	if ((err = rump_driver_signals_block()) != 0) {
		nbd_log("cannot block signals: %s", strerror(err));
		return 1;
	}
	if ((err = rump_supervised_open("rumpnbd", &sup)) != 0) {
		nbd_log("bad RUMPD_CONTROL_FD: %s", strerror(err));
		return 1;
	}
	stop_fd = eventfd(0, EFD_CLOEXEC);
	if (stop_fd < 0) {
		nbd_log("eventfd: %s", strerror(errno));
		goto out;
	}
	if ((err = rump_driver_inherited_listener(&fd)) != 0) {
		nbd_log("bad RUMPD_LISTEN_FD: %s", strerror(err));
		goto out;
	}
	if (fd >= 0) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);

		if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
			ss.ss_family = AF_UNSPEC;
		ls[nls++] = (struct listener){ .fd = fd,
		                               .is_unix = ss.ss_family ==
		                                          AF_UNIX };
	}
	if (opts.unix_path != NULL) {
		if ((err = listen_unix(opts.unix_path, &fd)) != 0) {
			nbd_log("cannot listen on %s: %s", opts.unix_path,
			        strerror(err));
			goto out;
		}
		ls[nls++] = (struct listener){ .fd = fd, .is_unix = true };
		own_unix = true;
	}
	if (opts.tcp != NULL) {
		if ((err = listen_tcp(opts.tcp, ls, &nls,
		                      MAX_LISTENERS)) != 0) {
			nbd_log("cannot listen on %s: %s", opts.tcp,
			        strerror(err));
			goto out;
		}
	}
	if (nls == 0) {
		nbd_log("nothing to listen on: give --unix, --tcp or "
		        "RUMPD_LISTEN_FD");
		usage(stderr);
		status = 2;
		goto out;
	}

	if (opts.backend != NULL) {
		err = nbd_backend_mem_create(opts.backend + 4, &backend);
		if (err != 0) {
			nbd_log("bad backend '%s': %s", opts.backend,
			        strerror(err));
			goto out;
		}
	} else {
		struct nbd_disk_opts dopts = {
			.service = opts.disk_service,
			.reconnect_timeout_ms = opts.reconnect_timeout_s * 1000,
		};

		err = nbd_backend_disk_create(&dopts, &backend);
		if (err != 0) {
			nbd_log("cannot use the disk service '%s': %s",
			        opts.disk_service, strerror(err));
			goto out;
		}
	}
	gateway_init(&gw, backend);
	gw_up = true;

	if (opts.pidfile != NULL) {
		if ((err = rump_driver_pidfile(opts.pidfile)) != 0) {
			nbd_log("cannot write %s: %s", opts.pidfile,
			        strerror(err));
			goto out;
		}
		own_pidfile = true;
	}
	if ((err = rump_driver_stopper_start(stop_serving, &stop_fd,
	                                     &stopper)) != 0) {
		nbd_log("cannot start the signal thread: %s", strerror(err));
		goto out;
	}
	/* Listening and connected to rumpdisk: from here on it needs no
	 * privilege, and it reaches rumpdisk again by its socket's path. */
	if ((err = rump_supervised_confine(sup, RUMP_CONFINE_NBD)) != 0)
		goto out;
	nbd_log("serving %s exports on %u socket%s", backend->ops->name,
	        nls, nls == 1 ? "" : "s");
	if (getrandom(&boot_id, sizeof(boot_id), 0) != sizeof(boot_id))
		boot_id = (uint64_t)getpid();
	if ((err = rump_supervised_ready(sup, boot_id, count_requests,
	                                 &gw)) != 0)
		nbd_log("cannot report READY to the supervisor: %s",
		        strerror(err));
	serve(&gw, ls, nls, stop_fd);
	status = 0;

out:
	rump_driver_stopper_end(stopper);
	rump_supervised_close(sup);
	for (i = 0; i < nls; i++)
		close(ls[i].fd);
	if (gw_up)
		gateway_shutdown(&gw);
	if (backend != NULL)
		backend->ops->destroy(backend);
	if (own_unix)
		unlink(opts.unix_path);
	if (own_pidfile)
		unlink(opts.pidfile);
	if (stop_fd >= 0)
		close(stop_fd);
	return status;
}
