#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <netdb.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "rump/ipc.h"
#include "child.h"

/* rumpnet's worst: a name and two words for each of its NICs, addresses
 * and routes. */
#define MAX_ARGS (4 + 2 * (RUMPD_MAX_DEVICES + RUMPD_MAX_NET_ADDRS + \
                       RUMPD_MAX_NET_ROUTES))

extern char **environ;

uint64_t
rumpd_now_ms(void)
{
	return rumpd_now_us() / 1000;
}

uint64_t
rumpd_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static void
vsay(FILE *f, const char *fmt, va_list ap)
{
	fputs("rumpd: ", f);
	vfprintf(f, fmt, ap);
	fputc('\n', f);
	fflush(f);
}

void
rumpd_log(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsay(stdout, fmt, ap);
	va_end(ap);
}

void
rumpd_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsay(stderr, fmt, ap);
	va_end(ap);
}

static int
try_program(char *buf, size_t cap, const char *dir, const char *sub,
            const char *program)
{
	if (snprintf(buf, cap, "%s%s/%s", dir, sub, program) >= (int)cap)
		return ENAMETOOLONG;
	return access(buf, X_OK) == 0 ? 0 : errno;
}

int
rumpd_find_program(const char *program, const char *build_subdir,
                   char *buf, size_t cap)
{
	const char *env = getenv("RUMPD_LIBEXEC");
	char self[PATH_MAX], sub[PATH_MAX];
	ssize_t n;

	/* An explicit choice is not second-guessed: it must work. */
	if (env != NULL && *env != '\0')
		return try_program(buf, cap, env, "", program);
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		char *slash;

		self[n] = '\0';
		slash = strrchr(self, '/');
		if (slash != NULL) {
			*slash = '\0';
			/* build/tools/rumpd/rumpd -> build/<build_subdir>/ */
			snprintf(sub, sizeof(sub), "/../../%s", build_subdir);
			if (try_program(buf, cap, self, sub, program) == 0)
				return 0;
		}
	}
	return try_program(buf, cap, RUMPD_LIBEXECDIR, "", program);
}

const char *
rumpd_state_name(enum rump_sup_state s)
{
	switch (s) {
	case RUMP_SUP_STOPPED: return "stopped";
	case RUMP_SUP_STARTING: return "starting";
	case RUMP_SUP_RUNNING: return "running";
	case RUMP_SUP_BACKOFF: return "restarting";
	case RUMP_SUP_FAILED: return "failed";
	case RUMP_SUP_STOPPING: return "stopping";
	}
	return "?";
}

void
rumpd_driver_init(struct rumpd_driver *d, const struct rumpd_driver_conf *conf)
{
	memset(d, 0, sizeof(*d));
	d->conf = conf;
	d->state = RUMP_SUP_STOPPED;
	d->pid = -1;
	d->control_fd = d->log_fd = d->probe_fd = d->fuse_fd = -1;
	d->listen_fd = -1;
	for (unsigned i = 0; i < RUMPD_MAX_DEVICES; i++)
		d->device_fds[i] = -1;
	d->trigger_session = -1;
}

/* ---- what rumpd opens for a driver --------------------------------------- */

static int
listen_stream_unix(const char *path, int *fdp)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd, error;

	if (strlen(path) >= sizeof(sun.sun_path))
		return ENAMETOOLONG;
	strcpy(sun.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return errno;
	/* A stale socket file from a crashed rumpd; a live one answers. */
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
		close(fd);
		return EADDRINUSE;
	}
	unlink(path);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0 ||
	    chmod(path, 0660) != 0 || listen(fd, SOMAXCONN) != 0) {
		error = errno;
		close(fd);
		return error;
	}
	*fdp = fd;
	return 0;
}

static int
listen_tcp(const char *spec, int *fdp)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
	                          .ai_flags = AI_PASSIVE };
	char host[256];
	const char *colon = strrchr(spec, ':');
	struct addrinfo *ai;
	int fd, one = 1, rc, error;

	if (colon == NULL || (size_t)(colon - spec) >= sizeof(host))
		return EINVAL;
	memcpy(host, spec, (size_t)(colon - spec));
	host[colon - spec] = '\0';
	rc = getaddrinfo(host[0] ? host : NULL, colon + 1, &hints, &ai);
	if (rc != 0)
		return rc == EAI_SYSTEM ? errno : EADDRNOTAVAIL;
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		error = errno;
		freeaddrinfo(ai);
		return error;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 ||
	    listen(fd, SOMAXCONN) != 0) {
		error = errno;
		close(fd);
		freeaddrinfo(ai);
		return error;
	}
	freeaddrinfo(ai);
	*fdp = fd;
	return 0;
}

/*
 * ",mtu=N" for a TAP's or packet socket's --if: rumpnet, in a network
 * namespace of its own, cannot ask the host for its interface's MTU.
 * Empty if rumpd cannot either (rumpnet then assumes Ethernet's 1500).
 */
static const char *
net_mtu_arg(const char *ifname, char *buf, size_t cap)
{
	struct ifreq ifr = { 0 };
	int s;

	buf[0] = '\0';
	if (strlen(ifname) >= sizeof(ifr.ifr_name))
		return buf;
	strcpy(ifr.ifr_name, ifname);
	s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return buf;
	if (ioctl(s, SIOCGIFMTU, &ifr) == 0 && ifr.ifr_mtu > 0)
		snprintf(buf, cap, ",mtu=%d", ifr.ifr_mtu);
	close(s);
	return buf;
}

int
rumpd_tap_open(const char *ifname, int *fdp)
{
	/* The flags rumpnet opens a TAP with itself (lib/rumpuser/net.c):
	 * with the virtio-net header it hands the host TCP segments larger
	 * than the MTU to split, which it cannot ask for once confined. */
	struct ifreq ifr = {
		.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR,
	};
	int fd, error;

	if (strlen(ifname) >= sizeof(ifr.ifr_name))
		return ENAMETOOLONG;
	strcpy(ifr.ifr_name, ifname);
	fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return errno;
	if (ioctl(fd, TUNSETIFF, &ifr) != 0) {
		error = errno;
		close(fd);
		return error;
	}
	*fdp = fd;
	return 0;
}

/*
 * A packet socket on a host interface, as rumpnet would open it itself:
 * it could not once in a network namespace of its own.
 */
static int
packet_open(const char *ifname, int *fdp)
{
	struct sockaddr_ll sll = {
		.sll_family = AF_PACKET,
		.sll_protocol = htons(ETH_P_ALL),
	};
	int fd, one = 1, error;

	if ((sll.sll_ifindex = (int)if_nametoindex(ifname)) == 0)
		return errno;
	fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
	if (fd < 0)
		return errno;
	/* Its own transmissions would otherwise come straight back. */
	if (setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one,
	               sizeof(one)) != 0 ||
	    bind(fd, (struct sockaddr *)&sll, sizeof(sll)) != 0) {
		error = errno;
		close(fd);
		return error;
	}
	*fdp = fd;
	return 0;
}

/* Whether the drivers' user may read and write a file of this mode. */
static bool
ids_may_rw(const struct stat *st, const struct rumpd_launch *l)
{
	if (st->st_uid == l->uid)
		return (st->st_mode & 0600) == 0600;
	if (st->st_gid == l->gid)
		return (st->st_mode & 0060) == 0060;
	return (st->st_mode & 0006) == 0006;
}

/*
 * A shared-memory bus file, made if missing.  rumpnet reopens it through
 * /dev/fd/N, which skips the path's directories (the state directory is
 * rumpd's alone) but not the file's own permissions: a bus rumpd makes is
 * its drivers' group's too.
 */
static int
bus_open(const char *path, const struct rumpd_launch *l, int *fdp)
{
	struct stat st;
	bool made = true;
	int fd, error;

	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0660);
	if (fd < 0 && errno == EEXIST) {
		made = false;
		fd = open(path, O_RDWR | O_CLOEXEC);
	}
	if (fd < 0)
		return errno;
	if (fstat(fd, &st) != 0) {
		error = errno;
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		error = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
		goto fail;
	}
	if (made && l->set_ids &&
	    (fchown(fd, (uid_t)-1, l->gid) != 0 || fchmod(fd, 0660) != 0)) {
		error = errno;
		goto fail;
	}
	if (!made && l->set_ids && !ids_may_rw(&st, l)) {
		error = EACCES;
		goto fail;
	}
	*fdp = fd;
	return 0;
fail:
	if (made)
		unlink(path);
	close(fd);
	return error;
}

static int
find_driver_program(struct rumpd_driver *d)
{
	const struct rumpd_driver_conf *c = d->conf;
	const struct rumpd_kind_info *k = &rumpd_kinds[c->kind];
	int error;

	if (c->program[0] == '\0') {
		error = rumpd_find_program(k->program, k->build_subdir,
		                           d->path, sizeof(d->path));
		if (error)
			rumpd_error("[%s]: cannot find %s (set RUMPD_LIBEXEC "
			            "to the folder that holds it): %s", c->name,
			            k->program, strerror(error));
		return error;
	}
	snprintf(d->path, sizeof(d->path), "%s", c->program);
	if (access(d->path, X_OK) != 0) {
		error = errno;
		rumpd_error("%s:%d: program %s: %s", "configuration",
		            c->program_line, d->path, strerror(error));
		return error;
	}
	return 0;
}

int
rumpd_driver_open(struct rumpd_driver *d, const struct rumpd_launch *l)
{
	const struct rumpd_driver_conf *c = d->conf;
	int error = 0;

	if ((error = find_driver_program(d)) != 0)
		return error;
	if (rumpd_kinds[c->kind].serves_rump) {
		if ((error = rump_service_path(c->name, d->endpoint,
		                               sizeof(d->endpoint))) != 0 ||
		    (error = rump_listen_unix(d->endpoint,
		                              &d->listen_fd)) != 0) {
			rumpd_error("[%s]: cannot listen on %s: %s", c->name,
			            d->endpoint, strerror(error));
			d->endpoint[0] = '\0';
			return error;
		}
	} else if (c->kind == KIND_NBD) {
		if (c->listen[0] == '\0' || strncmp(c->listen, "unix:", 5) == 0) {
			if (c->listen[0] != '\0')
				snprintf(d->endpoint, sizeof(d->endpoint),
				         "%s", c->listen + 5);
			else
				snprintf(d->endpoint, sizeof(d->endpoint),
				         "%s/%s.nbd", l->runtime_dir, c->name);
			error = listen_stream_unix(d->endpoint, &d->listen_fd);
		} else {
			snprintf(d->endpoint, sizeof(d->endpoint), "%s",
			         c->listen);
			error = listen_tcp(c->listen + 4, &d->listen_fd);
		}
		if (error) {
			rumpd_error("[%s]: cannot listen on %s: %s", c->name,
			            d->endpoint, strerror(error));
			if (strncmp(c->listen, "tcp:", 4) != 0)
				d->endpoint[0] = '\0';
			return error;
		}
	} else if (c->kind == KIND_FUSE) {
		snprintf(d->endpoint, sizeof(d->endpoint), "%s", c->mount);
	}
	/* The drivers' user must reach the sockets it is a client of. */
	if (l->set_ids && d->listen_fd >= 0 && d->endpoint[0] == '/' &&
	    chown(d->endpoint, (uid_t)-1, l->gid) != 0) {
		error = errno;
		rumpd_error("[%s]: chgrp %s: %s", c->name, d->endpoint,
		            strerror(error));
		return error;
	}
	for (unsigned i = 0; i < c->ndevices; i++) {
		const struct rumpd_device *dev = &c->devices[i];

		if (c->kind == KIND_DISK) {
			int flags = (dev->read_only ? O_RDONLY : O_RDWR) |
			            O_CLOEXEC;

			d->device_fds[i] = open(dev->source, flags);
			if (d->device_fds[i] < 0)
				error = errno;
		} else if (strncmp(dev->source, "tap:", 4) == 0) {
			error = rumpd_tap_open(dev->source + 4,
			                       &d->device_fds[i]);
		} else if (strncmp(dev->source, "packet:", 7) == 0) {
			error = packet_open(dev->source + 7,
			                    &d->device_fds[i]);
		} else if (strncmp(dev->source, "shm:", 4) == 0) {
			error = bus_open(dev->source + 4, l,
			                 &d->device_fds[i]);
			if (error == EACCES && l->set_ids)
				rumpd_error("%s:%d: bus %s: the drivers' "
				            "user (uid %u, gid %u) cannot read "
				            "and write it", "configuration",
				            dev->line, dev->source + 4,
				            (unsigned)l->uid, (unsigned)l->gid);
		}
		if (error) {
			rumpd_error("%s:%d: device %s: %s: %s", "configuration",
			            dev->line, dev->name, dev->source,
			            strerror(error));
			return error;
		}
	}
	return 0;
}

/*
 * Not root, the gateway mounted with fusermount3 and would unmount with it
 * too, but a confined gateway can run nothing: the mount is rumpd's to
 * undo (fusermount3 lets the user who mounted unmount).
 */
static void
fusermount_detach(const char *mount)
{
	char *const argv[] = { "fusermount3", "-u", "-z", "-q", (char *)mount,
	                       NULL };
	posix_spawn_file_actions_t fa;
	int status;
	pid_t pid;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	if (posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ) == 0)
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
	posix_spawn_file_actions_destroy(&fa);
}

void
rumpd_driver_close(struct rumpd_driver *d)
{
	if (d->listen_fd >= 0) {
		close(d->listen_fd);
		d->listen_fd = -1;
		if (d->endpoint[0] == '/')
			unlink(d->endpoint);
	}
	for (unsigned i = 0; i < RUMPD_MAX_DEVICES; i++)
		if (d->device_fds[i] >= 0) {
			close(d->device_fds[i]);
			d->device_fds[i] = -1;
		}
	if (d->fuse_fd >= 0) {
		close(d->fuse_fd);
		d->fuse_fd = -1;
	}
	if (d->conf->kind == KIND_FUSE && d->conf->mount[0] != '\0' &&
	    umount2(d->conf->mount, MNT_DETACH) != 0 && errno == EPERM)
		fusermount_detach(d->conf->mount);
}

/*
 * Root mounts the file system for the fuse gateway, which gets /dev/fuse
 * as a descriptor and needs no privilege; a stale mount of a dead gateway
 * goes first.  Not root, the gateway mounts by itself (fusermount3).
 */
static int
fuse_mount(struct rumpd_driver *d, const struct rumpd_launch *l)
{
	char opts[128];
	int error;

	if (!l->root) {
		/* A dead mount of a gateway that died: the new one could not
		 * mount on it. */
		fusermount_detach(d->conf->mount);
		return 0;
	}
	umount2(d->conf->mount, MNT_DETACH);
	if (d->fuse_fd >= 0)
		close(d->fuse_fd);
	d->fuse_fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
	if (d->fuse_fd < 0)
		return errno;
	snprintf(opts, sizeof(opts), "fd=%d,rootmode=40000,user_id=%u,"
	         "group_id=%u,allow_other,default_permissions", d->fuse_fd,
	         (unsigned)l->uid, (unsigned)l->gid);
	if (mount("rumpfs", d->conf->mount, "fuse.rumpfs",
	          MS_NOSUID | MS_NODEV, opts) != 0) {
		error = errno;
		close(d->fuse_fd);
		d->fuse_fd = -1;
		return error;
	}
	return 0;
}

/* ---- starting ----------------------------------------------------------- */

struct args {
	char *v[MAX_ARGS + 1];
	unsigned n;
	char store[16384];
	size_t used;
};

static void __attribute__((format(printf, 2, 3)))
add_arg(struct args *a, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (a->n == MAX_ARGS)
		return;
	va_start(ap, fmt);
	n = vsnprintf(a->store + a->used, sizeof(a->store) - a->used, fmt,
	              ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(a->store) - a->used)
		return;
	a->v[a->n++] = a->store + a->used;
	a->used += (size_t)n + 1;
}

/* The socket of the driver this one is a client of. */
static void
ref_socket(const struct rumpd_driver *d, char *buf, size_t cap)
{
	if (rump_service_path(d->conf->ref, buf, cap) != 0)
		snprintf(buf, cap, "%s", d->conf->ref);
}

/* The command line of each kind: docs/rumpd.md lists them. */
static void
build_args(const struct rumpd_driver *d, struct args *a)
{
	const struct rumpd_driver_conf *c = d->conf;
	char ref[PATH_MAX], mtu[24];

	a->n = 0;
	a->used = 0;
	add_arg(a, "%s", rumpd_kinds[c->kind].program);
	switch (c->kind) {
	case KIND_NULL:
		add_arg(a, "--socket");
		add_arg(a, "%s", d->endpoint);
		break;
	case KIND_DISK:
		add_arg(a, "--socket");
		add_arg(a, "%s", d->endpoint);
		for (unsigned i = 0; i < c->ndevices; i++) {
			add_arg(a, "--disk");
			add_arg(a, "%s=/dev/fd/%u%s%s", c->devices[i].name,
			        CHILD_FIRST_FD + i,
			        c->devices[i].read_only ? ",ro" : "",
			        c->devices[i].cache == RUMPD_CACHE_NONE ?
			        ",cache=none" :
			        c->devices[i].cache == RUMPD_CACHE_WRITEBACK ?
			        ",cache=writeback" : "");
		}
		break;
	case KIND_FS:
		ref_socket(d, ref, sizeof(ref));
		add_arg(a, "--socket");
		add_arg(a, "%s", d->endpoint);
		add_arg(a, "--disk-service");
		add_arg(a, "%s", ref);
		add_arg(a, "--device");
		add_arg(a, "%s", c->device);
		break;
	case KIND_NET:
		add_arg(a, "--socket");
		add_arg(a, "%s", d->endpoint);
		for (unsigned i = 0; i < c->ndevices; i++) {
			const char *src = c->devices[i].source;
			unsigned fd = CHILD_FIRST_FD + i;

			add_arg(a, "--if");
			/* Every NIC is a descriptor of rumpd's; nic_shm
			 * takes a path, which /dev/fd/N is. */
			if (strncmp(src, "shm:", 4) == 0)
				add_arg(a, "%s=shm:/dev/fd/%u",
				        c->devices[i].name, fd);
			else
				add_arg(a, "%s=%.*s:fd=%u%s",
				        c->devices[i].name,
				        (int)(strchr(src, ':') - src), src, fd,
				        net_mtu_arg(strchr(src, ':') + 1, mtu,
				                    sizeof(mtu)));
		}
		for (unsigned i = 0; i < c->naddrs; i++) {
			add_arg(a, "--addr");
			add_arg(a, "%s=%s", c->addrs[i].ifname,
			        c->addrs[i].addr);
		}
		for (unsigned i = 0; i < c->nroutes; i++) {
			add_arg(a, "--route");
			add_arg(a, "%s=%s", c->routes[i].dest,
			        c->routes[i].gw);
		}
		break;
	case KIND_NBD:
		ref_socket(d, ref, sizeof(ref));
		add_arg(a, "--disk-service");
		add_arg(a, "%s", ref);
		break;
	case KIND_FUSE:
		ref_socket(d, ref, sizeof(ref));
		add_arg(a, "--fs-service");
		add_arg(a, "%s", ref);
		add_arg(a, "-f");
		/* libfuse takes /dev/fd/N for a file system mounted already
		 * on that /dev/fuse descriptor. */
		if (d->fuse_fd >= 0)
			add_arg(a, "/dev/fd/%u", CHILD_FIRST_FD);
		else
			add_arg(a, "%s", c->mount);
		break;
	case KIND_COUNT:
		break;
	}
	a->v[a->n] = NULL;
}

struct fd_move {
	int from, to;
};

static void __attribute__((noreturn))
child_fail(const char *name, const char *what)
{
	/* stderr is the log pipe by now, or still rumpd's. */
	fprintf(stderr, "rumpd: %s: %s: %s\n", name, what, strerror(errno));
	_exit(127);
}

/* In the cloned child: only what is needed before exec, then exec. */
static void __attribute__((noreturn))
exec_child(const struct rumpd_driver *d, const struct rumpd_launch *l,
           struct args *a, struct fd_move *moves, unsigned nmoves,
           bool new_ns, pid_t parent)
{
	const char *name = d->conf->name;
	struct rlimit nofile = { d->conf->max_files, d->conf->max_files };
	struct rlimit nocore = { 0, 0 };
	sigset_t none;
	char num[16];
	int top = 0;

	/* rumpd blocks the signals it reads from a signalfd; the mask
	 * survives exec and the driver must see SIGTERM. */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	/* A driver must not outlive its supervisor.  SIGKILL: the driver is
	 * init of its PID namespace, which drops other signals it does not
	 * handle. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	/* In a new PID namespace the parent is invisible (getppid() is 0);
	 * there the control socket's end tells the driver instead. */
	if (!new_ns && getppid() != parent)
		_exit(1);
	/* Mounts it could make stay its own (it cannot make any once
	 * confined; this is for the time before). */
	if (new_ns && mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
		child_fail(name, "making mounts private");
	/* A /proc of its own PID namespace: /proc/self and /dev/fd must
	 * mean the driver (it is PID 1 here), and the host's processes are
	 * none of its business. */
	if (new_ns && mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV |
	                    MS_NOEXEC, NULL) != 0)
		child_fail(name, "mounting /proc");
	if (setrlimit(RLIMIT_CORE, &nocore) != 0)
		child_fail(name, "RLIMIT_CORE");
	/* Lowering is always allowed; a higher wish than rumpd's own hard
	 * limit stays at that. */
	if (setrlimit(RLIMIT_NOFILE, &nofile) != 0) {
		struct rlimit cur;

		if (getrlimit(RLIMIT_NOFILE, &cur) == 0 &&
		    nofile.rlim_max > cur.rlim_max) {
			nofile.rlim_cur = nofile.rlim_max = cur.rlim_max;
			setrlimit(RLIMIT_NOFILE, &nofile);
		}
	}
	/* Out of the way first, so that none lands on another's number;
	 * dup2 then gives copies without FD_CLOEXEC. */
	for (unsigned i = 0; i < nmoves; i++) {
		moves[i].from = fcntl(moves[i].from, F_DUPFD_CLOEXEC, 100);
		if (moves[i].from < 0)
			child_fail(name, "passing descriptors");
	}
	for (unsigned i = 0; i < nmoves; i++) {
		if (dup2(moves[i].from, moves[i].to) < 0)
			child_fail(name, "passing descriptors");
		if (moves[i].to > top)
			top = moves[i].to;
	}
	/* Nothing else of rumpd's: other drivers' sockets, rumpctl's. */
	syscall(SYS_close_range, (unsigned)top + 1, ~0u, 0u);

	setenv("RUMPD_CONTROL_FD", "3", 1);
	if (d->listen_fd >= 0)
		setenv("RUMPD_LISTEN_FD", "4", 1);
	else
		unsetenv("RUMPD_LISTEN_FD");
	setenv("RUMPD_DIR", l->runtime_dir, 1);
	unsetenv("RUMPD_CONFINE_UID");
	unsetenv("RUMPD_CONFINE_GID");
	if (d->conf->confine) {
		setenv("RUMPD_CONFINE", "1", 1);
		if (l->set_ids) {
			snprintf(num, sizeof(num), "%u", (unsigned)l->uid);
			setenv("RUMPD_CONFINE_UID", num, 1);
			snprintf(num, sizeof(num), "%u", (unsigned)l->gid);
			setenv("RUMPD_CONFINE_GID", num, 1);
		}
	} else {
		unsetenv("RUMPD_CONFINE");
	}
	execv(d->path, a->v);
	child_fail(name, d->path);
}

int
rumpd_driver_start(struct rumpd_driver *d, const struct rumpd_launch *l)
{
	struct fd_move moves[RUMPD_MAX_DEVICES + 6];
	unsigned nmoves = 0;
	unsigned long flags = SIGCHLD;
	struct args *a;
	int ctl[2] = { -1, -1 }, logp[2] = { -1, -1 }, devnull = -1;
	pid_t parent = getpid(), pid;
	bool new_ns = l->root && d->conf->namespaces;
	int error;

	if (d->conf->kind == KIND_FUSE && (error = fuse_mount(d, l)) != 0) {
		rumpd_error("[%s]: cannot mount %s: %s", d->conf->name,
		            d->conf->mount, strerror(error));
		return error;
	}
	a = malloc(sizeof(*a));
	if (a == NULL)
		return ENOMEM;
	build_args(d, a);
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ctl) != 0 ||
	    pipe2(logp, O_CLOEXEC) != 0 ||
	    (devnull = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0) {
		error = errno;
		goto fail;
	}
	moves[nmoves++] = (struct fd_move){ devnull, 0 };
	moves[nmoves++] = (struct fd_move){ logp[1], 1 };
	moves[nmoves++] = (struct fd_move){ logp[1], 2 };
	moves[nmoves++] = (struct fd_move){ ctl[1], CHILD_CONTROL_FD };
	if (d->listen_fd >= 0)
		moves[nmoves++] = (struct fd_move){ d->listen_fd,
		                                    CHILD_LISTEN_FD };
	for (unsigned i = 0; i < d->conf->ndevices; i++)
		if (d->device_fds[i] >= 0)
			moves[nmoves++] = (struct fd_move){ d->device_fds[i],
			                   CHILD_FIRST_FD + (int)i };
	if (d->fuse_fd >= 0)
		moves[nmoves++] = (struct fd_move){ d->fuse_fd,
		                                    CHILD_FIRST_FD };
	/* Its own mounts, processes, IPC objects and network (none: it
	 * reaches the world only through the descriptors it was given). */
	if (new_ns)
		flags |= CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC |
		         CLONE_NEWNET | CLONE_NEWUTS;
	fflush(NULL);
	/* rumpd is single-threaded: the child may use what fork allows. */
	pid = (pid_t)syscall(SYS_clone, flags, NULL, NULL, NULL, NULL);
	if (pid < 0) {
		error = errno;
		goto fail;
	}
	if (pid == 0)
		exec_child(d, l, a, moves, nmoves, new_ns, parent);
	free(a);
	close(ctl[1]);
	close(logp[1]);
	close(devnull);
	fcntl(logp[0], F_SETFL, O_NONBLOCK);
	d->pid = pid;
	d->control_fd = ctl[0];
	d->log_fd = logp[0];
	d->state = RUMP_SUP_STARTING;
	d->started_ms = rumpd_now_ms();
	d->deadline_ms = d->started_ms + RUMPD_READY_TIMEOUT_MS;
	d->ready_ms = 0;
	d->boot_id = 0;
	d->heartbeat = d->confined = d->counters = d->hung = false;
	d->ping_seq = d->pong_seq = 0;
	d->confinement[0] = '\0';
	return 0;
fail:
	free(a);
	for (int i = 0; i < 2; i++) {
		if (ctl[i] >= 0)
			close(ctl[i]);
		if (logp[i] >= 0)
			close(logp[i]);
	}
	if (devnull >= 0)
		close(devnull);
	return error;
}

/* ---- talking to it ------------------------------------------------------- */

static int
on_line(struct rumpd_driver *d, char *line, int *tsession, uint64_t *treqid,
        char *treply, size_t cap)
{
	char *end;

	if (strncmp(line, "READY ", 6) == 0) {
		if (d->state != RUMP_SUP_STARTING)
			return EPROTO;
		errno = 0;
		d->boot_id = strtoull(line + 6, &end, 16);
		if (errno != 0 || end == line + 6 ||
		    (*end != '\0' && *end != ' '))
			return EPROTO;
		d->heartbeat = strstr(end, " heartbeat") != NULL;
		d->state = RUMP_SUP_RUNNING;
		d->ready_ms = rumpd_now_ms();
	} else if (strncmp(line, "CONFINED ", 9) == 0) {
		d->confined = true;
		snprintf(d->confinement, sizeof(d->confinement), "%.*s",
		         (int)sizeof(d->confinement) - 1, line + 9);
	} else if (strncmp(line, "PONG ", 5) == 0) {
		unsigned long long seq, req, bytes;

		if (sscanf(line + 5, "%llu %llu %llu", &seq, &req, &bytes) !=
		    3)
			return EPROTO;
		/* A late answer to an older PING proves less. */
		if (seq == d->ping_seq) {
			d->pong_seq = seq;
			d->requests = req;
			d->bytes = bytes;
			d->counters = true;
		}
	} else if (strncmp(line, "TRIGGERED ", 10) == 0) {
		if (d->trigger_session >= 0) {
			*tsession = d->trigger_session;
			*treqid = d->trigger_reqid;
			snprintf(treply, cap, "%s", line + 10);
			d->trigger_session = -1;
		}
	} else {
		rumpd_error("[%s] (pid %ld) said something unknown: %.60s",
		            d->conf->name, (long)d->pid, line);
	}
	return 0;
}

int
rumpd_driver_read_control(struct rumpd_driver *d, int *tsession,
                          uint64_t *treqid, char *treply, size_t cap)
{
	char line[512];
	ssize_t n;
	int error;

	for (;;) {
		n = recv(d->control_fd, line, sizeof(line) - 1, MSG_DONTWAIT);
		if (n < 0)
			return errno == EAGAIN || errno == EINTR ? 0 : errno;
		if (n == 0)
			return ECONNRESET;
		line[n] = '\0';
		if (line[n - 1] != '\n' || memchr(line, '\0', (size_t)n))
			return EPROTO;
		line[n - 1] = '\0';
		if ((error = on_line(d, line, tsession, treqid, treply,
		                     cap)) != 0)
			return error;
	}
}

static void
log_append(struct rumpd_log *log, const char *p, size_t n)
{
	if (n >= sizeof(log->data)) {
		p += n - sizeof(log->data);
		n = sizeof(log->data);
	}
	for (size_t i = 0; i < n; i++) {
		size_t at = (log->start + log->len) % sizeof(log->data);

		log->data[at] = p[i];
		if (log->len < sizeof(log->data))
			log->len++;
		else
			log->start = (log->start + 1) % sizeof(log->data);
	}
}

static void
echo_out(const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(STDERR_FILENO, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		/* Nowhere to say it: the log keeps it. */
		if (w <= 0)
			return;
		p += w;
		n -= (size_t)w;
	}
}

/* Echoes whole lines on rumpd's stderr, where a person or journald looks;
 * a line longer than the buffer goes out in pieces. */
static void
echo_lines(struct rumpd_driver *d, const char *p, size_t n)
{
	while (n > 0) {
		const char *nl = memchr(p, '\n', n);
		size_t take = nl != NULL ? (size_t)(nl - p) + 1 : n;
		size_t room = sizeof(d->echo) - d->echo_len;

		if (take > room)
			take = room;
		memcpy(d->echo + d->echo_len, p, take);
		d->echo_len += take;
		p += take;
		n -= take;
		if (d->echo[d->echo_len - 1] == '\n' ||
		    d->echo_len == sizeof(d->echo)) {
			echo_out(d->echo, d->echo_len);
			d->echo_len = 0;
		}
	}
}

bool
rumpd_driver_read_log(struct rumpd_driver *d)
{
	char buf[4096];
	ssize_t n;

	while (d->log_fd >= 0) {
		n = read(d->log_fd, buf, sizeof(buf));
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return true;
		if (n <= 0) {
			close(d->log_fd);
			d->log_fd = -1;
			/* Its last words, even without a newline. */
			echo_out(d->echo, d->echo_len);
			d->echo_len = 0;
			return false;
		}
		log_append(&d->log, buf, (size_t)n);
		echo_lines(d, buf, (size_t)n);
	}
	return false;
}

void
rumpd_driver_log_note(struct rumpd_driver *d, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n;

	n = snprintf(buf, sizeof(buf), "rumpd: ");
	va_start(ap, fmt);
	n += vsnprintf(buf + n, sizeof(buf) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof(buf) - 2)
		n = (int)sizeof(buf) - 2;
	buf[n++] = '\n';
	log_append(&d->log, buf, (size_t)n);
}

size_t
rumpd_driver_log_tail(const struct rumpd_driver *d, char *buf, size_t cap)
{
	const struct rumpd_log *log = &d->log;
	size_t n = log->len < cap ? log->len : cap;
	size_t from = (log->start + log->len - n) % sizeof(log->data);

	for (size_t i = 0; i < n; i++)
		buf[i] = log->data[(from + i) % sizeof(log->data)];
	return n;
}

int
rumpd_driver_ping(struct rumpd_driver *d, uint64_t now)
{
	char line[48];
	int n;

	d->ping_seq++;
	d->ping_sent_ms = now;
	n = snprintf(line, sizeof(line), "PING %" PRIu64 "\n", d->ping_seq);
	if (send(d->control_fd, line, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT)
	    != n)
		return errno == EAGAIN ? 0 : errno;
	return 0;
}

/* ---- when does it serve again ------------------------------------------- */

int
rumpd_driver_probe_start(struct rumpd_driver *d)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct rump_msg_hdr hdr;
	struct rump_hello h;
	int fd, error;

	if (strlen(d->endpoint) >= sizeof(sun.sun_path))
		return ENAMETOOLONG;
	strcpy(sun.sun_path, d->endpoint);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK,
	            0);
	if (fd < 0)
		return errno;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		error = errno;
		close(fd);
		return error;
	}
	rump_hello_encode(&h, RUMP_SERVICE_ANY, "rumpd");
	rump_msg_init(&hdr, RUMP_MSG_HELLO, 0, 1, 0, sizeof(h));
	if ((error = rump_msg_send(fd, &hdr, &h, NULL, 0)) != 0) {
		close(fd);
		return error;
	}
	d->probe_fd = fd;
	return EAGAIN;
}

int
rumpd_driver_probe_read(struct rumpd_driver *d)
{
	static_assert(RUMP_MSG_MAX <= 65536, "buffer");
	unsigned char buf[RUMP_MSG_MAX];
	const struct rump_msg_hdr *hdr = (const void *)buf;
	size_t len;
	unsigned nfds;
	int error;

	error = rump_msg_recv(d->probe_fd, buf, sizeof(buf), &len, NULL, 0,
	                      &nfds, true);
	if (error)
		return error;
	if (hdr->type != RUMP_MSG_HELLO || !(hdr->flags & RUMP_MSGF_REPLY))
		return EPROTO;
	return hdr->status == 0 ? 0 : hdr->status;
}

void
rumpd_driver_probe_stop(struct rumpd_driver *d)
{
	if (d->probe_fd >= 0)
		close(d->probe_fd);
	d->probe_fd = -1;
}

void
rumpd_driver_recovered(struct rumpd_driver *d, uint64_t now_us)
{
	uint64_t us = now_us - d->death_ms * 1000;

	d->recovery_us[d->nrecoveries % RUMPD_RECOVERY_HISTORY] = us;
	d->nrecoveries++;
	d->death_ms = 0;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

void
rumpd_driver_recovery_stats(const struct rumpd_driver *d, uint64_t *p50,
                            uint64_t *max)
{
	uint64_t sorted[RUMPD_RECOVERY_HISTORY];
	unsigned n = d->nrecoveries < RUMPD_RECOVERY_HISTORY ?
	             d->nrecoveries : RUMPD_RECOVERY_HISTORY;

	*p50 = *max = 0;
	if (n == 0)
		return;
	memcpy(sorted, d->recovery_us, n * sizeof(sorted[0]));
	qsort(sorted, n, sizeof(sorted[0]), cmp_u64);
	*p50 = sorted[(n - 1) / 2];
	*max = sorted[n - 1];
}

/* ---- ending ----------------------------------------------------------- */

const char *
rumpd_exit_reason(int status, char *buf, size_t cap)
{
	if (WIFEXITED(status))
		snprintf(buf, cap, "exited with status %d",
		         WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, cap, "was killed by SIG%s%s",
		         sigabbrev_np(WTERMSIG(status)) ?
		         sigabbrev_np(WTERMSIG(status)) : "?",
		         WCOREDUMP(status) ? " (core dumped)" : "");
	else
		snprintf(buf, cap, "ended (wait status %#x)", status);
	return buf;
}

static void
end_run(struct rumpd_driver *d)
{
	/* What it said last is the most useful part of its log. */
	rumpd_driver_read_log(d);
	if (d->log_fd >= 0)
		close(d->log_fd);
	echo_out(d->echo, d->echo_len);
	d->echo_len = 0;
	if (d->control_fd >= 0)
		close(d->control_fd);
	rumpd_driver_probe_stop(d);
	d->log_fd = d->control_fd = -1;
	d->pid = -1;
}

bool
rumpd_driver_exited(struct rumpd_driver *d, int status, uint64_t now)
{
	char why[64];
	bool planned = d->state == RUMP_SUP_STOPPING;

	if (d->hung)
		snprintf(d->last_exit, sizeof(d->last_exit), "stopped "
		         "answering the heartbeat; killed");
	else
		rumpd_exit_reason(status, d->last_exit, sizeof(d->last_exit));
	rumpd_error("%s (pid %ld) %s after %.1f s", d->conf->name,
	            (long)d->pid, d->hung ? "hung" :
	            rumpd_exit_reason(status, why, sizeof(why)),
	            (double)(now - d->started_ms) / 1000.0);
	rumpd_driver_log_note(d, "pid %ld %s", (long)d->pid, d->last_exit);
	end_run(d);
	/* A hung driver died when it stopped answering, not now; and one
	 * that dies again before it served (at start, its disk being away
	 * too) is still down since its first death. */
	if (!planned && !d->hung && d->death_ms == 0)
		d->death_ms = now;
	return !planned;
}

/* Polls rather than sleeping on SIGCHLD: the caller's signalfd owns it. */
static int
wait_exit(struct rumpd_driver *d, int timeout_ms, int *status)
{
	uint64_t deadline = rumpd_now_ms() + (uint64_t)timeout_ms;
	struct timespec tick = { 0, 5 * 1000 * 1000 };
	pid_t r;

	for (;;) {
		r = waitpid(d->pid, status, WNOHANG);
		if (r == d->pid)
			return 0;
		if (r < 0 && errno != EINTR)
			return errno;
		/* A driver blocked on a full log pipe would never exit. */
		rumpd_driver_read_log(d);
		if (rumpd_now_ms() >= deadline)
			return ETIMEDOUT;
		nanosleep(&tick, NULL);
	}
}

/*
 * A gateway on a mount of rumpd's cannot unmount it (confined, and in a
 * mount namespace of its own): before it stops, the dirty pages the kernel
 * keeps for the mount (writeback cache) go to it while it still serves.  A
 * child does the syncfs(), which a hung gateway would block forever; a
 * FUSE request's wait ends with SIGKILL.
 */
static void
sync_fuse_mount(struct rumpd_driver *d)
{
	struct timespec tick = { 0, 5 * 1000 * 1000 };
	uint64_t deadline = rumpd_now_ms() + RUMPD_STOP_TIMEOUT_MS;
	int status;
	pid_t pid, r;

	pid = fork();
	if (pid < 0)
		return;
	if (pid == 0) {
		int fd = open(d->conf->mount, O_RDONLY | O_DIRECTORY |
		              O_CLOEXEC);

		_exit(fd >= 0 && syncfs(fd) == 0 ? 0 : 1);
	}
	while ((r = waitpid(pid, &status, WNOHANG)) == 0 &&
	       rumpd_now_ms() < deadline)
		nanosleep(&tick, NULL);
	if (r == 0) {
		rumpd_error("%s: syncing %s takes too long; stopping it "
		            "anyway", d->conf->name, d->conf->mount);
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
	} else if (r == pid && !(WIFEXITED(status) &&
	                         WEXITSTATUS(status) == 0)) {
		rumpd_error("%s: cannot sync %s before stopping it",
		            d->conf->name, d->conf->mount);
	}
}

void
rumpd_driver_stop(struct rumpd_driver *d)
{
	char why[64];
	int status = 0;

	if (d->pid > 0) {
		if (d->conf->kind == KIND_FUSE && d->ready_ms != 0)
			sync_fuse_mount(d);
		kill(d->pid, SIGTERM);
		if (wait_exit(d, RUMPD_STOP_TIMEOUT_MS, &status) == ETIMEDOUT) {
			rumpd_error("%s (pid %ld) did not stop in %d ms; "
			            "killing it", d->conf->name, (long)d->pid,
			            RUMPD_STOP_TIMEOUT_MS);
			kill(d->pid, SIGKILL);
			while (waitpid(d->pid, &status, 0) < 0 &&
			       errno == EINTR)
				;
		}
		rumpd_log("%s (pid %ld) stopped: %s", d->conf->name,
		          (long)d->pid, rumpd_exit_reason(status, why,
		                                          sizeof(why)));
		rumpd_exit_reason(status, d->last_exit, sizeof(d->last_exit));
		rumpd_driver_log_note(d, "pid %ld stopped: %s", (long)d->pid,
		                      d->last_exit);
	}
	end_run(d);
	d->state = RUMP_SUP_STOPPED;
}
