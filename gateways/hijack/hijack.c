/*
 * librumphijack: LD_PRELOAD it and an unmodified program's IPv4 and IPv6
 * sockets (TCP, UDP) live in rumpnet; every other descriptor stays the
 * host's.  RUMP_SERVER names the service (default "net": the socket
 * "net.sock" in the runtime directory, or a path).
 *
 * Each rump socket is shadowed by a host descriptor (an empty epoll
 * instance) so that its number is really taken: the host never hands the
 * same number out, and dup2/close/exec keep their meaning.  A program
 * that reaches the shadow itself (one exec'd with the socket as its
 * stdin) gets EINVAL from read and write at once, never a wait.  A table
 * indexed by descriptor says which ones are rump sockets; its lookups
 * take no lock, so the interposed calls cost host descriptors one load.
 *
 * A blocking call is a blocking request: rumpnet holds it until it can
 * complete, so the common path is one round trip through the rings.  Calls
 * with a timeout (SO_RCVTIMEO, poll, select, epoll) wait with the POLL
 * request.  poll() over rump sockets and host descriptors together takes
 * turns between the two in short slices.
 *
 * State is per process by nature (an LD_PRELOAD library interposes on the
 * process's libc); it all hangs off one struct hijack.
 *
 * fork(): rumpnet's sockets belong to the session of the process that
 * made them, and a session is one process's (its rings are in memory the
 * child would share with the parent).  The child gets a session of its
 * own for the sockets it makes; the ones it inherited are orphans there:
 * every call on them fails with EBADF and says why once on stderr, and
 * closing them (as a forking server's child closes the listening socket)
 * closes nothing of the parent's.  A program exec'd by the child sees an
 * inherited rump socket as the shadow descriptor it is.
 *
 * epoll: rump sockets are polled by us, so EPOLLET is ours to honour: an
 * event once reported is not reported again until the program has called
 * an I/O function on the socket of the matching direction (what an
 * edge-triggered program does until EAGAIN); EPOLLONESHOT disables the
 * entry until EPOLL_CTL_MOD.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <netinet/in.h>
#include <time.h>
#include <unistd.h>

#include "rump/client.h"
#include "rump/proto_net.h"

#define EXPORT __attribute__((visibility("default")))
#define FD_TABLE 65536
#define IO_CHUNK (1u << 20)       /* largest piece of one send or recv */
#define MIXED_SLICE_MS 2          /* poll: host and rump take turns */

/* A handle no session has: a socket inherited across fork(). */
#define ORPHAN_HANDLE 0

/* A rump socket; shared by the descriptors dup() made of it. */
struct hsock {
	uint64_t handle;              /* ORPHAN_HANDLE: the parent's */
	/* Calls that read (recv, accept) and write (send, connect): an
	 * edge-triggered epoll reports the direction again once they
	 * moved.  Atomic, bumped by any thread. */
	uint32_t rd_seq, wr_seq;
	int domain, type;
	bool nonblock;
	uint64_t rcvtimeo_ns, sndtimeo_ns; /* 0: none */
	unsigned refs;
};

struct epoll_reg {
	int fd;
	uint32_t events;              /* 0: fired with EPOLLONESHOT */
	epoll_data_t data;
	/* EPOLLET: the events reported and held back until the socket's
	 * rd_seq or wr_seq move past what they were then. */
	uint32_t fired, rd_seen, wr_seen;
	struct epoll_reg *next;
};

/* The rump descriptors registered in one (host) epoll instance. */
struct hepoll {
	struct epoll_reg *regs;
	struct hepoll *next;          /* H.hepolls */
};

struct real {
	int (*socket)(int, int, int);
	int (*close)(int);
	ssize_t (*read)(int, void *, size_t);
	ssize_t (*write)(int, const void *, size_t);
	ssize_t (*readv)(int, const struct iovec *, int);
	ssize_t (*writev)(int, const struct iovec *, int);
	int (*bind)(int, const struct sockaddr *, socklen_t);
	int (*listen)(int, int);
	int (*accept)(int, struct sockaddr *, socklen_t *);
	int (*accept4)(int, struct sockaddr *, socklen_t *, int);
	int (*connect)(int, const struct sockaddr *, socklen_t);
	ssize_t (*send)(int, const void *, size_t, int);
	ssize_t (*sendto)(int, const void *, size_t, int,
	                  const struct sockaddr *, socklen_t);
	ssize_t (*sendmsg)(int, const struct msghdr *, int);
	ssize_t (*recv)(int, void *, size_t, int);
	ssize_t (*recvfrom)(int, void *, size_t, int, struct sockaddr *,
	                    socklen_t *);
	ssize_t (*recvmsg)(int, struct msghdr *, int);
	int (*shutdown)(int, int);
	int (*getsockopt)(int, int, int, void *, socklen_t *);
	int (*setsockopt)(int, int, int, const void *, socklen_t);
	int (*getsockname)(int, struct sockaddr *, socklen_t *);
	int (*getpeername)(int, struct sockaddr *, socklen_t *);
	int (*fcntl)(int, int, ...);
	int (*ioctl)(int, unsigned long, ...);
	int (*dup)(int);
	int (*dup2)(int, int);
	int (*dup3)(int, int, int);
	int (*poll)(struct pollfd *, nfds_t, int);
	int (*ppoll)(struct pollfd *, nfds_t, const struct timespec *,
	             const sigset_t *);
	int (*select)(int, fd_set *, fd_set *, fd_set *, struct timeval *);
	int (*pselect)(int, fd_set *, fd_set *, fd_set *,
	               const struct timespec *, const sigset_t *);
	int (*epoll_ctl)(int, int, int, struct epoll_event *);
	int (*epoll_wait)(int, struct epoll_event *, int, int);
	int (*epoll_pwait2)(int, struct epoll_event *, int,
	                    const struct timespec *, const sigset_t *);
	int (*epoll_pwait)(int, struct epoll_event *, int, int,
	                   const sigset_t *);
};

struct hijack {
	struct real real;
	pthread_mutex_t lock;          /* connecting, refs, epoll lists */
	struct rump_client *client;    /* this process's session */
	int connect_error;
	bool orphan_said;              /* the fork message was printed */
	struct hsock *socks[FD_TABLE]; /* by descriptor; read locklessly */
	struct hepoll *epolls[FD_TABLE];
	struct hepoll *hepolls;        /* every one in epolls[] */
};

static struct hijack H = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void resolve_real(void);

/* The host's function; looked up at load, or at first use when another
 * library's constructor calls in before ours ran. */
#define REAL(name) \
	((H.real.name == NULL ? resolve_real() : (void)0), H.real.name)

#define RESOLVE(name) \
	(H.real.name = (__typeof__(H.real.name))dlsym(RTLD_NEXT, #name))

__attribute__((constructor)) static void
resolve_real(void)
{
	RESOLVE(socket); RESOLVE(close); RESOLVE(read); RESOLVE(write);
	RESOLVE(readv); RESOLVE(writev); RESOLVE(bind); RESOLVE(listen);
	RESOLVE(accept); RESOLVE(accept4); RESOLVE(connect); RESOLVE(send);
	RESOLVE(sendto); RESOLVE(sendmsg); RESOLVE(recv); RESOLVE(recvfrom);
	RESOLVE(recvmsg); RESOLVE(shutdown); RESOLVE(getsockopt);
	RESOLVE(setsockopt); RESOLVE(getsockname); RESOLVE(getpeername);
	H.real.fcntl = (__typeof__(H.real.fcntl))dlsym(RTLD_NEXT, "fcntl64"); RESOLVE(ioctl); RESOLVE(dup); RESOLVE(dup2);
	RESOLVE(dup3); RESOLVE(poll); RESOLVE(select); RESOLVE(epoll_ctl);
	RESOLVE(epoll_wait); RESOLVE(epoll_pwait); RESOLVE(ppoll);
	RESOLVE(pselect); RESOLVE(epoll_pwait2);
}

/* ---- fork ---------------------------------------------------------------- */

static void
fork_prepare(void)
{
	pthread_mutex_lock(&H.lock);
}

static void
fork_parent(void)
{
	pthread_mutex_unlock(&H.lock);
}

/*
 * In the child, single-threaded: the parent's session stays the parent's
 * (its client is left alone, not freed: another thread of the parent may
 * have held its locks), and the inherited sockets become orphans.  Their
 * hsocks are the child's copies, shared by the child's dups only.
 */
static void
fork_child(void)
{
	unsigned i;

	H.client = NULL;
	H.connect_error = 0;
	H.orphan_said = false;
	for (i = 0; i < FD_TABLE; i++)
		if (H.socks[i] != NULL)
			H.socks[i]->handle = ORPHAN_HANDLE;
	pthread_mutex_unlock(&H.lock);
}

__attribute__((constructor)) static void
hijack_init(void)
{
	pthread_atfork(fork_prepare, fork_parent, fork_child);
}

/* The error of any call on an orphan, said once per process. */
static int64_t
orphan_error(void)
{
	if (!__atomic_exchange_n(&H.orphan_said, true, __ATOMIC_ACQ_REL))
		fprintf(stderr, "librumphijack: process %ld used a rumpnet "
		        "socket it inherited across fork(): rumpnet sockets "
		        "stay with the process that made them, so the call "
		        "fails with EBADF (make sockets in the child, or "
		        "use them in the parent)\n", (long)getpid());
	return -EBADF;
}

/* ---- the session ------------------------------------------------------------ */

static struct rump_client *
client_get(void)
{
	struct rump_client_opts o = {
		.version = RUMP_CLIENT_OPTS_VERSION,
		.service_kind = RUMP_SERVICE_NET,
		.client_name = "rumphijack",
		.sq_entries = 256,
		.buf_size = 64u << 20,
	};
	struct rump_client *c;
	const char *name;

	c = __atomic_load_n(&H.client, __ATOMIC_ACQUIRE);
	if (c != NULL)
		return c;
	pthread_mutex_lock(&H.lock);
	if (H.client == NULL) {
		name = getenv("RUMP_SERVER");
		if (name == NULL || *name == '\0')
			name = "net";
		H.connect_error = rump_client_connect(name, &o, &c);
		if (H.connect_error == 0)
			__atomic_store_n(&H.client, c, __ATOMIC_RELEASE);
	}
	c = H.client;
	pthread_mutex_unlock(&H.lock);
	return c;
}

static struct hsock *
hs_get(int fd)
{
	if (fd < 0 || fd >= FD_TABLE)
		return NULL;
	return __atomic_load_n(&H.socks[fd], __ATOMIC_ACQUIRE);
}

static int
fail(int e)
{
	errno = e;
	return -1;
}

/* Runs one request; returns its result (negative errno on failure). */
static int64_t
run(struct rump_sqe *sqe, uint64_t *aux)
{
	struct rump_client *c;

	/* Every request but these two names a socket. */
	if (sqe->handle == ORPHAN_HANDLE &&
	    sqe->opcode != RUMP_NET_OP_SOCKET &&
	    sqe->opcode != RUMP_NET_OP_POLL)
		return orphan_error();
	if ((c = client_get()) == NULL)
		return -ENETDOWN;
	return rump_client_exec(c, sqe, aux);
}

struct sbuf {
	void *p;
	uint64_t off;
};

static int
sbuf_get(struct sbuf *b, size_t len)
{
	struct rump_client *c = client_get();

	if (c == NULL)
		return ENETDOWN;
	b->p = rump_client_buf_alloc(c, len ? len : 1);
	if (b->p == NULL)
		return ENOBUFS;
	b->off = rump_client_buf_offset(c, b->p);
	return 0;
}

static void
sbuf_put(struct sbuf *b)
{
	if (b->p != NULL)
		rump_client_buf_free(H.client, b->p);
	b->p = NULL;
}

/* ---- waiting ------------------------------------------------------------------- */

/* Polls rump handles; timeout_ns UINT64_MAX: forever.  Returns the count
 * ready (revents filled) or a negative errno. */
static int64_t
rump_poll(struct rump_net_pollfd *pfds, unsigned n, uint64_t timeout_ns)
{
	struct rump_sqe sqe = { 0 };
	struct sbuf b;
	int64_t r;
	int e;

	if ((e = sbuf_get(&b, n * sizeof(*pfds))) != 0)
		return -e;
	memcpy(b.p, pfds, n * sizeof(*pfds));
	sqe.opcode = RUMP_NET_OP_POLL;
	sqe.buf = b.off;
	sqe.len = n * sizeof(*pfds);
	sqe.arg[0] = timeout_ns;
	r = run(&sqe, NULL);
	if (r >= 0)
		memcpy(pfds, b.p, n * sizeof(*pfds));
	sbuf_put(&b);
	return r;
}

/* Waits until hs is ready for events or its timeout passes (-EAGAIN). */
static int
wait_one(struct hsock *hs, uint32_t events, uint64_t timeout_ns)
{
	struct rump_net_pollfd p = { .handle = hs->handle, .events = events };
	int64_t r = rump_poll(&p, 1, timeout_ns ? timeout_ns : UINT64_MAX);

	if (r < 0)
		return (int)r;
	return r == 0 ? -EAGAIN : 0;
}

/* ---- socket calls ------------------------------------------------------------- */

static int
install(struct hsock *hs, int cloexec)
{
	int fd = epoll_create1(cloexec ? EPOLL_CLOEXEC : 0);

	if (fd < 0)
		return -1;
	if (fd >= FD_TABLE) {
		REAL(close)(fd);
		return fail(EMFILE);
	}
	hs->refs = 1;
	__atomic_store_n(&H.socks[fd], hs, __ATOMIC_RELEASE);
	return fd;
}

static void
rump_close_handle(uint64_t handle)
{
	struct rump_sqe sqe = { .opcode = RUMP_NET_OP_CLOSE,
	                        .handle = handle };

	(void)run(&sqe, NULL);
}

static void
hs_release(struct hsock *hs)
{
	bool last;

	pthread_mutex_lock(&H.lock);
	last = --hs->refs == 0;
	pthread_mutex_unlock(&H.lock);
	if (last) {
		/* An orphan's socket is the parent's to close. */
		if (hs->handle != ORPHAN_HANDLE)
			rump_close_handle(hs->handle);
		free(hs);
	}
}

EXPORT int
socket(int domain, int type, int protocol)
{
	int base = type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC);
	struct rump_sqe sqe = { 0 };
	struct hsock *hs;
	int64_t r;
	int fd;

	if ((domain != AF_INET && domain != AF_INET6) ||
	    (base != SOCK_STREAM && base != SOCK_DGRAM) ||
	    (protocol != 0 &&
	     protocol != (base == SOCK_STREAM ? IPPROTO_TCP : IPPROTO_UDP)))
		return REAL(socket)(domain, type, protocol);
	sqe.opcode = RUMP_NET_OP_SOCKET;
	sqe.arg[0] = (uint64_t)domain;
	sqe.arg[1] = (uint64_t)base;
	r = run(&sqe, NULL);
	if (r < 0)
		return fail((int)-r);
	hs = calloc(1, sizeof(*hs));
	if (hs == NULL) {
		rump_close_handle((uint64_t)r);
		return fail(ENOMEM);
	}
	hs->handle = (uint64_t)r;
	hs->domain = domain;
	hs->type = base;
	hs->nonblock = (type & SOCK_NONBLOCK) != 0;
	fd = install(hs, type & SOCK_CLOEXEC);
	if (fd < 0) {
		rump_close_handle(hs->handle);
		free(hs);
	}
	return fd;
}

/* A request carrying a small buffer both ways (addresses, options). */
static int64_t
small_call(struct hsock *hs, uint16_t op, uint16_t flags, void *data,
           size_t len, uint64_t a0, uint64_t a1, bool copy_in,
           uint64_t *aux)
{
	struct rump_sqe sqe = { 0 };
	struct sbuf b = { 0 };
	int64_t r;
	int e;

	if ((e = sbuf_get(&b, len)) != 0)
		return -e;
	if (copy_in && len > 0)
		memcpy(b.p, data, len);
	sqe.opcode = op;
	sqe.flags = flags;
	sqe.handle = hs->handle;
	sqe.buf = b.off;
	sqe.len = (uint32_t)len;
	sqe.arg[0] = a0;
	sqe.arg[1] = a1;
	r = run(&sqe, aux);
	if (r >= 0 && !copy_in && len > 0)
		memcpy(data, b.p, len);
	sbuf_put(&b);
	return r;
}

EXPORT int
bind(int fd, const struct sockaddr *sa, socklen_t len)
{
	struct hsock *hs = hs_get(fd);
	int64_t r;

	if (hs == NULL)
		return REAL(bind)(fd, sa, len);
	if (len > sizeof(struct sockaddr_storage))
		return fail(EINVAL);
	r = small_call(hs, RUMP_NET_OP_BIND, 0, (void *)sa, len, 0, 0, true,
	               NULL);
	return r < 0 ? fail((int)-r) : 0;
}

EXPORT int
listen(int fd, int backlog)
{
	struct hsock *hs = hs_get(fd);
	struct rump_sqe sqe = { 0 };
	int64_t r;

	if (hs == NULL)
		return REAL(listen)(fd, backlog);
	sqe.opcode = RUMP_NET_OP_LISTEN;
	sqe.handle = hs->handle;
	sqe.arg[0] = backlog < 0 ? 128 : (uint64_t)backlog;
	r = run(&sqe, NULL);
	return r < 0 ? fail((int)-r) : 0;
}

EXPORT int
connect(int fd, const struct sockaddr *sa, socklen_t len)
{
	struct hsock *hs = hs_get(fd);
	int64_t r;

	if (hs == NULL)
		return REAL(connect)(fd, sa, len);
	if (len > sizeof(struct sockaddr_storage))
		return fail(EINVAL);
	__atomic_fetch_add(&hs->wr_seq, 1, __ATOMIC_RELAXED);
	r = small_call(hs, RUMP_NET_OP_CONNECT,
	               hs->nonblock ? RUMP_NET_F_NONBLOCK : 0, (void *)sa, len,
	               0, 0, true, NULL);
	return r < 0 ? fail((int)-r) : 0;
}

EXPORT int
accept4(int fd, struct sockaddr *sa, socklen_t *lenp, int flags)
{
	struct hsock *hs = hs_get(fd), *nhs;
	struct sockaddr_storage ss;
	uint64_t aux = 0;
	int64_t r;
	int nfd;

	if (hs == NULL)
		return REAL(accept4)(fd, sa, lenp, flags);
	if (flags & ~(SOCK_NONBLOCK | SOCK_CLOEXEC))
		return fail(EINVAL);
	__atomic_fetch_add(&hs->rd_seq, 1, __ATOMIC_RELAXED);
	for (;;) {
		r = small_call(hs, RUMP_NET_OP_ACCEPT,
		               hs->nonblock || hs->rcvtimeo_ns ?
		               RUMP_NET_F_NONBLOCK : 0, &ss, sizeof(ss), 0, 0,
		               false, &aux);
		if (r != -EAGAIN || hs->nonblock)
			break;
		if ((r = wait_one(hs, POLLIN, hs->rcvtimeo_ns)) < 0)
			break;
	}
	if (r < 0)
		return fail((int)-r);
	nhs = calloc(1, sizeof(*nhs));
	if (nhs == NULL) {
		rump_close_handle((uint64_t)r);
		return fail(ENOMEM);
	}
	nhs->handle = (uint64_t)r;
	nhs->domain = hs->domain;
	nhs->type = hs->type;
	nhs->nonblock = (flags & SOCK_NONBLOCK) != 0;
	nfd = install(nhs, flags & SOCK_CLOEXEC);
	if (nfd < 0) {
		rump_close_handle(nhs->handle);
		free(nhs);
		return -1;
	}
	if (sa != NULL && lenp != NULL) {
		socklen_t n = (socklen_t)(aux & 0xffffffffu);

		memcpy(sa, &ss, n < *lenp ? n : *lenp);
		*lenp = n;
	}
	return nfd;
}

EXPORT int
accept(int fd, struct sockaddr *sa, socklen_t *lenp)
{
	if (hs_get(fd) == NULL)
		return REAL(accept)(fd, sa, lenp);
	return accept4(fd, sa, lenp, 0);
}

/*
 * The data path.  iov is gathered into (or scattered from) one shared
 * buffer per chunk; a blocking stream send loops until all is sent.
 */
static ssize_t
do_send(struct hsock *hs, const struct iovec *iov, int iovcnt, int flags,
        const struct sockaddr *to, socklen_t tolen)
{
	struct rump_sqe sqe = { 0 };
	struct sbuf b = { 0 }, ab = { 0 };
	size_t total = 0, sent = 0, chunk, off, c;
	bool nonblock = hs->nonblock || (flags & MSG_DONTWAIT);
	int i, e;
	int64_t r = 0;

	__atomic_fetch_add(&hs->wr_seq, 1, __ATOMIC_RELAXED);
	for (i = 0; i < iovcnt; i++)
		total += iov[i].iov_len;
	if (hs->type == SOCK_DGRAM && total > 65507)
		return fail(EMSGSIZE);
	if (to != NULL && tolen > 0) {
		if (tolen > sizeof(struct sockaddr_storage))
			return fail(EINVAL);
		if ((e = sbuf_get(&ab, tolen)) != 0)
			return fail(e);
		memcpy(ab.p, to, tolen);
	}
	chunk = hs->type == SOCK_DGRAM ? total :
	    total < IO_CHUNK ? total : IO_CHUNK;
	if ((e = sbuf_get(&b, chunk)) != 0) {
		sbuf_put(&ab);
		return fail(e);
	}
	/* i and off walk the iovec across chunks; each chunk is sent from
	 * the shared buffer until it is all gone (blocking) or the socket
	 * is full (non-blocking). */
	i = 0;
	off = 0;
	do {
		size_t n = total - sent < chunk ? total - sent : chunk, got = 0;
		size_t at = 0;

		while (got < n) {
			c = iov[i].iov_len - off;
			if (c > n - got)
				c = n - got;
			memcpy((uint8_t *)b.p + got,
			       (const uint8_t *)iov[i].iov_base + off, c);
			got += c;
			off += c;
			if (off == iov[i].iov_len) {
				i++;
				off = 0;
			}
		}
		while (at < n || (n == 0 && at == 0)) {
			memset(&sqe, 0, sizeof(sqe));
			sqe.opcode = RUMP_NET_OP_SEND;
			sqe.handle = hs->handle;
			sqe.buf = b.off + at;
			sqe.len = (uint32_t)(n - at);
			sqe.flags = (nonblock || hs->sndtimeo_ns ?
			             RUMP_NET_F_NONBLOCK : 0) |
			    (flags & MSG_MORE ? RUMP_NET_F_MORE : 0);
			if (ab.p != NULL) {
				sqe.arg[0] = ab.off;
				sqe.arg[1] = tolen;
			}
			r = run(&sqe, NULL);
			if (r == -EAGAIN && !nonblock) {
				r = wait_one(hs, POLLOUT, hs->sndtimeo_ns);
				if (r < 0)
					break;
				continue;
			}
			if (r < 0)
				break;
			at += (size_t)r;
			sent += (size_t)r;
			if (n == 0 || nonblock)
				break;
		}
		if (r < 0 || at < n)
			break;
	} while (sent < total && hs->type == SOCK_STREAM);
	sbuf_put(&b);
	sbuf_put(&ab);
	if (r < 0 && sent == 0) {
		if (r == -EPIPE && !(flags & MSG_NOSIGNAL))
			raise(SIGPIPE);
		return fail((int)-r);
	}
	return (ssize_t)sent;
}

static ssize_t
do_recv(struct hsock *hs, const struct iovec *iov, int iovcnt, int flags,
        struct sockaddr *from, socklen_t *fromlen, int *msg_flags)
{
	struct rump_sqe sqe = { 0 };
	struct sbuf b = { 0 }, ab = { 0 };
	size_t total = 0, done, c;
	bool nonblock = hs->nonblock || (flags & MSG_DONTWAIT);
	uint64_t aux = 0;
	int64_t r;
	int i, e;

	__atomic_fetch_add(&hs->rd_seq, 1, __ATOMIC_RELAXED);
	for (i = 0; i < iovcnt; i++)
		total += iov[i].iov_len;
	if (total > IO_CHUNK && hs->type == SOCK_STREAM)
		total = IO_CHUNK;
	if (total > RUMP_NET_IO_MAX)
		total = RUMP_NET_IO_MAX;
	if ((e = sbuf_get(&b, total)) != 0)
		return fail(e);
	if (from != NULL && fromlen != NULL &&
	    (e = sbuf_get(&ab, sizeof(struct sockaddr_storage))) != 0) {
		sbuf_put(&b);
		return fail(e);
	}
	for (;;) {
		memset(&sqe, 0, sizeof(sqe));
		sqe.opcode = RUMP_NET_OP_RECV;
		sqe.handle = hs->handle;
		sqe.buf = b.off;
		sqe.len = (uint32_t)total;
		sqe.flags = (nonblock || hs->rcvtimeo_ns ?
		             RUMP_NET_F_NONBLOCK : 0) |
		    (flags & MSG_PEEK ? RUMP_NET_F_PEEK : 0) |
		    (flags & MSG_WAITALL ? RUMP_NET_F_WAITALL : 0);
		if (ab.p != NULL) {
			sqe.arg[0] = ab.off;
			sqe.arg[1] = sizeof(struct sockaddr_storage);
		}
		r = run(&sqe, &aux);
		if (r != -EAGAIN || nonblock)
			break;
		if ((r = wait_one(hs, POLLIN, hs->rcvtimeo_ns)) < 0)
			break;
	}
	if (r >= 0) {
		for (i = 0, done = 0; i < iovcnt && done < (size_t)r; i++) {
			c = iov[i].iov_len < (size_t)r - done ?
			    iov[i].iov_len : (size_t)r - done;
			memcpy(iov[i].iov_base, (uint8_t *)b.p + done, c);
			done += c;
		}
		if (ab.p != NULL) {
			socklen_t n = (socklen_t)(aux & 0xffffffffu);

			memcpy(from, ab.p, n < *fromlen ? n : *fromlen);
			*fromlen = n;
		}
		if (msg_flags != NULL)
			*msg_flags = aux & RUMP_NET_AUX_TRUNC ? MSG_TRUNC : 0;
		if ((aux & RUMP_NET_AUX_TRUNC) && (flags & MSG_TRUNC))
			r = (int64_t)total; /* the real length is unknown */
	}
	sbuf_put(&b);
	sbuf_put(&ab);
	return r < 0 ? fail((int)-r) : (ssize_t)r;
}

EXPORT ssize_t
send(int fd, const void *buf, size_t len, int flags)
{
	struct hsock *hs = hs_get(fd);
	struct iovec v = { (void *)buf, len };

	if (hs == NULL)
		return REAL(send)(fd, buf, len, flags);
	return do_send(hs, &v, 1, flags, NULL, 0);
}

EXPORT ssize_t
sendto(int fd, const void *buf, size_t len, int flags,
       const struct sockaddr *to, socklen_t tolen)
{
	struct hsock *hs = hs_get(fd);
	struct iovec v = { (void *)buf, len };

	if (hs == NULL)
		return REAL(sendto)(fd, buf, len, flags, to, tolen);
	return do_send(hs, &v, 1, flags, to, tolen);
}

EXPORT ssize_t
sendmsg(int fd, const struct msghdr *msg, int flags)
{
	struct hsock *hs = hs_get(fd);

	if (hs == NULL)
		return REAL(sendmsg)(fd, msg, flags);
	if (msg->msg_iovlen > IOV_MAX)
		return fail(EMSGSIZE);
	return do_send(hs, msg->msg_iov, (int)msg->msg_iovlen, flags,
	               msg->msg_name, msg->msg_namelen);
}

EXPORT ssize_t
recv(int fd, void *buf, size_t len, int flags)
{
	struct hsock *hs = hs_get(fd);
	struct iovec v = { buf, len };

	if (hs == NULL)
		return REAL(recv)(fd, buf, len, flags);
	return do_recv(hs, &v, 1, flags, NULL, NULL, NULL);
}

EXPORT ssize_t
recvfrom(int fd, void *buf, size_t len, int flags, struct sockaddr *from,
         socklen_t *fromlen)
{
	struct hsock *hs = hs_get(fd);
	struct iovec v = { buf, len };

	if (hs == NULL)
		return REAL(recvfrom)(fd, buf, len, flags, from, fromlen);
	return do_recv(hs, &v, 1, flags, from, fromlen, NULL);
}

EXPORT ssize_t
recvmsg(int fd, struct msghdr *msg, int flags)
{
	struct hsock *hs = hs_get(fd);
	socklen_t nl = msg->msg_namelen;
	int mflags = 0;
	ssize_t r;

	if (hs == NULL)
		return REAL(recvmsg)(fd, msg, flags);
	if (msg->msg_iovlen > IOV_MAX)
		return fail(EMSGSIZE);
	r = do_recv(hs, msg->msg_iov, (int)msg->msg_iovlen, flags,
	            msg->msg_name, msg->msg_name ? &nl : NULL, &mflags);
	if (r >= 0) {
		msg->msg_namelen = msg->msg_name ? nl : 0;
		msg->msg_controllen = 0;
		msg->msg_flags = mflags;
	}
	return r;
}

/* _FORTIFY_SOURCE builds call the checking forms (glibc's own names,
 * declared here as glibc does not declare them). */
EXPORT ssize_t __recv_chk(int, void *, size_t, size_t, int);
EXPORT ssize_t __recvfrom_chk(int, void *, size_t, size_t, int,
                              struct sockaddr *, socklen_t *);
EXPORT ssize_t __read_chk(int, void *, size_t, size_t);
EXPORT int __poll_chk(struct pollfd *, nfds_t, int, size_t);
EXPORT int __ppoll_chk(struct pollfd *, nfds_t, const struct timespec *,
                       const sigset_t *, size_t);

EXPORT ssize_t
__recv_chk(int fd, void *buf, size_t len, size_t buflen, int flags)
{
	if (len > buflen)
		abort();
	return recv(fd, buf, len, flags);
}

EXPORT ssize_t
__recvfrom_chk(int fd, void *buf, size_t len, size_t buflen, int flags,
               struct sockaddr *from, socklen_t *fromlen)
{
	if (len > buflen)
		abort();
	return recvfrom(fd, buf, len, flags, from, fromlen);
}

EXPORT ssize_t
__read_chk(int fd, void *buf, size_t len, size_t buflen)
{
	if (len > buflen)
		abort();
	return read(fd, buf, len);
}

EXPORT ssize_t
read(int fd, void *buf, size_t len)
{
	struct hsock *hs = hs_get(fd);
	struct iovec v = { buf, len };

	if (hs == NULL)
		return REAL(read)(fd, buf, len);
	return do_recv(hs, &v, 1, 0, NULL, NULL, NULL);
}

EXPORT ssize_t
write(int fd, const void *buf, size_t len)
{
	struct hsock *hs = hs_get(fd);
	struct iovec v = { (void *)buf, len };

	if (hs == NULL)
		return REAL(write)(fd, buf, len);
	return do_send(hs, &v, 1, 0, NULL, 0);
}

EXPORT ssize_t
readv(int fd, const struct iovec *iov, int iovcnt)
{
	struct hsock *hs = hs_get(fd);

	if (hs == NULL)
		return REAL(readv)(fd, iov, iovcnt);
	if (iovcnt < 0 || iovcnt > IOV_MAX)
		return fail(EINVAL);
	return do_recv(hs, iov, iovcnt, 0, NULL, NULL, NULL);
}

EXPORT ssize_t
writev(int fd, const struct iovec *iov, int iovcnt)
{
	struct hsock *hs = hs_get(fd);

	if (hs == NULL)
		return REAL(writev)(fd, iov, iovcnt);
	if (iovcnt < 0 || iovcnt > IOV_MAX)
		return fail(EINVAL);
	return do_send(hs, iov, iovcnt, 0, NULL, 0);
}

static void
epoll_forget(int fd)
{
	struct hepoll *ep = fd >= 0 && fd < FD_TABLE ? H.epolls[fd] : NULL;
	struct epoll_reg *r;

	struct hepoll **pp;

	if (ep == NULL)
		return;
	H.epolls[fd] = NULL;
	for (pp = &H.hepolls; *pp != ep; pp = &(*pp)->next)
		;
	*pp = ep->next;
	while ((r = ep->regs) != NULL) {
		ep->regs = r->next;
		free(r);
	}
	free(ep);
}

/*
 * A closed rump descriptor leaves every epoll it was in, as the kernel's
 * epoll forgets a closed file: the number may come back from accept()
 * and be added again.  With H.lock.
 */
static void
epoll_drop_fd(int fd)
{
	struct epoll_reg **pp, *r;
	struct hepoll *ep;

	for (ep = H.hepolls; ep != NULL; ep = ep->next)
		for (pp = &ep->regs; (r = *pp) != NULL; ) {
			if (r->fd == fd) {
				*pp = r->next;
				free(r);
			} else {
				pp = &r->next;
			}
		}
}

EXPORT int
close(int fd)
{
	struct hsock *hs = hs_get(fd);

	if (fd >= 0 && fd < FD_TABLE && H.epolls[fd] != NULL) {
		pthread_mutex_lock(&H.lock);
		epoll_forget(fd);
		pthread_mutex_unlock(&H.lock);
	}
	if (hs == NULL)
		return REAL(close)(fd);
	if (H.hepolls != NULL) {
		pthread_mutex_lock(&H.lock);
		epoll_drop_fd(fd);
		pthread_mutex_unlock(&H.lock);
	}
	__atomic_store_n(&H.socks[fd], NULL, __ATOMIC_RELEASE);
	hs_release(hs);
	return REAL(close)(fd);
}

EXPORT int
shutdown(int fd, int how)
{
	struct hsock *hs = hs_get(fd);
	struct rump_sqe sqe = { 0 };
	int64_t r;

	if (hs == NULL)
		return REAL(shutdown)(fd, how);
	sqe.opcode = RUMP_NET_OP_SHUTDOWN;
	sqe.handle = hs->handle;
	sqe.arg[0] = (uint64_t)(unsigned)how;
	r = run(&sqe, NULL);
	return r < 0 ? fail((int)-r) : 0;
}

static uint64_t
tv_ns(const void *val, socklen_t len)
{
	struct timeval tv;

	if (len < (socklen_t)sizeof(tv))
		return 0;
	memcpy(&tv, val, sizeof(tv));
	if (tv.tv_sec < 0 || tv.tv_usec < 0)
		return 0;
	return (uint64_t)tv.tv_sec * 1000000000u +
	    (uint64_t)tv.tv_usec * 1000u;
}

EXPORT int
setsockopt(int fd, int level, int name, const void *val, socklen_t len)
{
	struct hsock *hs = hs_get(fd);
	int64_t r;

	if (hs == NULL)
		return REAL(setsockopt)(fd, level, name, val, len);
	/* Timeouts are the waiting side's business: kept here. */
	if (level == SOL_SOCKET && (name == SO_RCVTIMEO || name == SO_SNDTIMEO)) {
		if (len < (socklen_t)sizeof(struct timeval))
			return fail(EINVAL);
		if (name == SO_RCVTIMEO)
			hs->rcvtimeo_ns = tv_ns(val, len);
		else
			hs->sndtimeo_ns = tv_ns(val, len);
		return 0;
	}
	if (len > 256)
		return fail(EINVAL);
	r = small_call(hs, RUMP_NET_OP_SETSOCKOPT, 0, (void *)val, len,
	               (uint64_t)(unsigned)level, (uint64_t)(unsigned)name,
	               true, NULL);
	return r < 0 ? fail((int)-r) : 0;
}

EXPORT int
getsockopt(int fd, int level, int name, void *val, socklen_t *lenp)
{
	struct hsock *hs = hs_get(fd);
	uint8_t tmp[256];
	socklen_t room;
	int64_t r;

	if (hs == NULL)
		return REAL(getsockopt)(fd, level, name, val, lenp);
	if (level == SOL_SOCKET && (name == SO_RCVTIMEO || name == SO_SNDTIMEO)) {
		uint64_t ns = name == SO_RCVTIMEO ? hs->rcvtimeo_ns :
		    hs->sndtimeo_ns;
		struct timeval tv = { (time_t)(ns / 1000000000u),
		                      (suseconds_t)(ns % 1000000000u / 1000) };

		if (*lenp < (socklen_t)sizeof(tv))
			return fail(EINVAL);
		memcpy(val, &tv, sizeof(tv));
		*lenp = sizeof(tv);
		return 0;
	}
	room = *lenp > sizeof(tmp) ? sizeof(tmp) : *lenp;
	r = small_call(hs, RUMP_NET_OP_GETSOCKOPT, 0, tmp, room,
	               (uint64_t)(unsigned)level, (uint64_t)(unsigned)name,
	               false, NULL);
	if (r < 0)
		return fail((int)-r);
	memcpy(val, tmp, (size_t)r);
	*lenp = (socklen_t)r;
	return 0;
}

static int
get_name(int fd, struct sockaddr *sa, socklen_t *lenp, int peer)
{
	struct hsock *hs = hs_get(fd);
	struct sockaddr_storage ss;
	int64_t r;

	r = small_call(hs, RUMP_NET_OP_GETNAME, 0, &ss, sizeof(ss),
	               (uint64_t)peer, 0, false, NULL);
	if (r < 0)
		return fail((int)-r);
	memcpy(sa, &ss, (socklen_t)r < *lenp ? (size_t)r : *lenp);
	*lenp = (socklen_t)r;
	return 0;
}

EXPORT int
getsockname(int fd, struct sockaddr *sa, socklen_t *lenp)
{
	if (hs_get(fd) == NULL)
		return REAL(getsockname)(fd, sa, lenp);
	return get_name(fd, sa, lenp, 0);
}

EXPORT int
getpeername(int fd, struct sockaddr *sa, socklen_t *lenp)
{
	if (hs_get(fd) == NULL)
		return REAL(getpeername)(fd, sa, lenp);
	return get_name(fd, sa, lenp, 1);
}

/* Makes newfd another name of fd's rump socket (newfd is open already). */
static int
share(int fd, int newfd)
{
	struct hsock *hs = hs_get(fd), *old;

	if (newfd < 0 || newfd >= FD_TABLE) {
		REAL(close)(newfd);
		return fail(EMFILE);
	}
	pthread_mutex_lock(&H.lock);
	hs->refs++;
	pthread_mutex_unlock(&H.lock);
	old = __atomic_exchange_n(&H.socks[newfd], hs, __ATOMIC_ACQ_REL);
	if (old != NULL)
		hs_release(old);
	return newfd;
}

EXPORT int
dup(int fd)
{
	int nfd;

	if (hs_get(fd) == NULL)
		return REAL(dup)(fd);
	if ((nfd = REAL(dup)(fd)) < 0)
		return -1;
	return share(fd, nfd);
}

EXPORT int
dup3(int fd, int newfd, int flags)
{
	struct hsock *old;

	if (hs_get(fd) == NULL) {
		/* newfd may have been a rump socket: it is gone now. */
		int r = REAL(dup3)(fd, newfd, flags);

		if (r >= 0 && (old = hs_get(newfd)) != NULL) {
			__atomic_store_n(&H.socks[newfd], NULL,
			                 __ATOMIC_RELEASE);
			hs_release(old);
		}
		return r;
	}
	if (REAL(dup3)(fd, newfd, flags) < 0)
		return -1;
	return share(fd, newfd);
}

EXPORT int
dup2(int fd, int newfd)
{
	struct hsock *old;
	int r;

	if (fd == newfd)
		return REAL(dup2)(fd, newfd);
	if (hs_get(fd) == NULL) {
		r = REAL(dup2)(fd, newfd);
		if (r >= 0 && (old = hs_get(newfd)) != NULL) {
			__atomic_store_n(&H.socks[newfd], NULL,
			                 __ATOMIC_RELEASE);
			hs_release(old);
		}
		return r;
	}
	if (REAL(dup2)(fd, newfd) < 0)
		return -1;
	return share(fd, newfd);
}

/* Programs built with 64-bit file offsets call fcntl64; both names are
 * this one function. */
EXPORT int hijack_fcntl(int fd, int cmd, ...) __asm__("fcntl");
EXPORT int hijack_fcntl64(int fd, int cmd, ...) __asm__("fcntl64");

static int
do_fcntl(int fd, int cmd, long arg)
{
	struct hsock *hs = hs_get(fd);
	int r;

	if (hs == NULL)
		return REAL(fcntl)(fd, cmd, arg);
	switch (cmd) {
	case F_GETFL:
		r = REAL(fcntl)(fd, F_GETFL);
		if (r < 0)
			return r;
		return (r & ~O_NONBLOCK) | (hs->nonblock ? O_NONBLOCK : 0) |
		    O_RDWR;
	case F_SETFL:
		hs->nonblock = (arg & O_NONBLOCK) != 0;
		return 0;
	case F_DUPFD:
	case F_DUPFD_CLOEXEC:
		r = REAL(fcntl)(fd, cmd, arg);
		if (r < 0)
			return r;
		return share(fd, r);
	default:
		/* FD_CLOEXEC and friends belong to the descriptor. */
		return REAL(fcntl)(fd, cmd, arg);
	}
}

int
hijack_fcntl(int fd, int cmd, ...)
{
	va_list ap;
	long arg;

	va_start(ap, cmd);
	arg = va_arg(ap, long);
	va_end(ap);
	return do_fcntl(fd, cmd, arg);
}

int
hijack_fcntl64(int fd, int cmd, ...)
{
	va_list ap;
	long arg;

	va_start(ap, cmd);
	arg = va_arg(ap, long);
	va_end(ap);
	return do_fcntl(fd, cmd, arg);
}

EXPORT int
ioctl(int fd, unsigned long req, ...)
{
	struct hsock *hs = hs_get(fd);
	struct iovec v;
	uint8_t peek[65536];
	va_list ap;
	void *arg;
	ssize_t n;

	va_start(ap, req);
	arg = va_arg(ap, void *);
	va_end(ap);
	if (hs == NULL)
		return REAL(ioctl)(fd, req, arg);
	switch (req) {
	case FIONBIO:
		hs->nonblock = *(int *)arg != 0;
		return 0;
	case FIONREAD:
		/* What a non-blocking peek sees (at most 64 KiB). */
		v.iov_base = peek;
		v.iov_len = sizeof(peek);
		n = do_recv(&(struct hsock){ .handle = hs->handle,
		                             .type = hs->type,
		                             .nonblock = true },
		            &v, 1, MSG_PEEK, NULL, NULL, NULL);
		if (n < 0 && errno != EAGAIN)
			return -1;
		*(int *)arg = n < 0 ? 0 : (int)n;
		return 0;
	default:
		return fail(ENOTTY);
	}
}

/* ---- readiness ------------------------------------------------------------------- */

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/*
 * poll(2) over any mix.  Only rump sockets: one POLL request.  Only host
 * descriptors: the host's poll.  Both: each side in turn, the host's
 * with a short timeout, until one reports or the time is up.
 */
/* glibc declares fds write-only (access attribute), which poll's own
 * reading of fd and events would contradict (for GCC; clang has no such
 * warning). */
#pragma GCC diagnostic push
#ifndef __clang__
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
EXPORT int
poll(struct pollfd *fds, nfds_t n, int timeout)
{
	struct rump_net_pollfd *rp;
	struct pollfd *hp;
	unsigned *rmap, *hmap, nr = 0, nh = 0, i;
	uint64_t deadline, now, left;
	int ready = 0, r;
	int64_t rr;

	for (i = 0; i < n; i++)
		if (hs_get(fds[i].fd) != NULL)
			nr++;
	if (nr == 0)
		return REAL(poll)(fds, n, timeout);
	if (nr > RUMP_NET_POLL_MAX)
		return fail(EINVAL);
	rp = calloc(nr, sizeof(*rp));
	rmap = calloc(nr, sizeof(*rmap));
	hp = calloc(n - nr + 1, sizeof(*hp));
	hmap = calloc(n - nr + 1, sizeof(*hmap));
	if (rp == NULL || rmap == NULL || hp == NULL || hmap == NULL) {
		r = fail(ENOMEM);
		goto out;
	}
	nr = 0;
	for (i = 0; i < n; i++) {
		struct hsock *hs = hs_get(fds[i].fd);

		fds[i].revents = 0;
		if (hs != NULL) {
			/* An orphan is not any session's: POLLNVAL. */
			if (hs->handle == ORPHAN_HANDLE)
				(void)orphan_error();
			rp[nr].handle = hs->handle;
			rp[nr].events = (uint32_t)(uint16_t)fds[i].events;
			rmap[nr++] = i;
		} else {
			hp[nh] = fds[i];
			hmap[nh++] = i;
		}
	}
	deadline = timeout < 0 ? UINT64_MAX :
	    now_ns() + (uint64_t)timeout * 1000000u;
	for (;;) {
		now = now_ns();
		left = deadline == UINT64_MAX ? UINT64_MAX :
		    deadline > now ? deadline - now : 0;
		if (nh > 0 && left > MIXED_SLICE_MS * 1000000u)
			left = MIXED_SLICE_MS * 1000000u;
		rr = rump_poll(rp, nr, left);
		if (rr < 0) {
			r = fail((int)-rr);
			goto out;
		}
		ready = 0;
		for (i = 0; i < nr; i++) {
			fds[rmap[i]].revents = (short)rp[i].revents;
			if (rp[i].revents)
				ready++;
		}
		if (nh > 0) {
			r = REAL(poll)(hp, nh, ready > 0 ? 0 :
			               deadline == UINT64_MAX ||
			               deadline > now_ns() ? MIXED_SLICE_MS : 0);
			if (r < 0)
				goto out;
			for (i = 0; i < nh; i++) {
				fds[hmap[i]].revents = hp[i].revents;
				if (hp[i].revents)
					ready++;
			}
		}
		if (ready > 0 || (deadline != UINT64_MAX &&
		                  now_ns() >= deadline))
			break;
	}
	r = ready;
out:
	free(rp);
	free(rmap);
	free(hp);
	free(hmap);
	return r;
}
#pragma GCC diagnostic pop

EXPORT int
__poll_chk(struct pollfd *fds, nfds_t n, int timeout, size_t fdslen)
{
	if (fdslen / sizeof(*fds) < n)
		abort();
	return poll(fds, n, timeout);
}

/* The forms with a timespec and a signal mask: the mask holds while the
 * rump form waits (set around it: not atomic as in the kernel, which no
 * wait over rump sockets, several system calls long, can be). */

/* Milliseconds for poll(2), rounded up; -1 for none. */
static int
timespec_ms(const struct timespec *ts)
{
	uint64_t ms;

	if (ts == NULL)
		return -1;
	if (ts->tv_sec < 0 || ts->tv_nsec < 0 || ts->tv_nsec >= 1000000000)
		return -2;
	ms = (uint64_t)ts->tv_sec * 1000u +
	    ((uint64_t)ts->tv_nsec + 999999u) / 1000000u;
	return ms > INT_MAX ? INT_MAX : (int)ms;
}

static bool
any_rump(const struct pollfd *fds, nfds_t n)
{
	for (nfds_t i = 0; i < n; i++)
		if (hs_get(fds[i].fd) != NULL)
			return true;
	return false;
}

EXPORT int
ppoll(struct pollfd *fds, nfds_t n, const struct timespec *tmo,
      const sigset_t *sigmask)
{
	sigset_t old;
	int ms = timespec_ms(tmo), r, e;

	if (!any_rump(fds, n))
		return REAL(ppoll)(fds, n, tmo, sigmask);
	if (ms == -2)
		return fail(EINVAL);
	if (sigmask != NULL &&
	    (e = pthread_sigmask(SIG_SETMASK, sigmask, &old)) != 0)
		return fail(e);
	r = poll(fds, n, ms);
	e = errno;
	if (sigmask != NULL)
		pthread_sigmask(SIG_SETMASK, &old, NULL);
	errno = e;
	return r;
}

EXPORT int
__ppoll_chk(struct pollfd *fds, nfds_t n, const struct timespec *tmo,
            const sigset_t *sigmask, size_t fdslen)
{
	if (fdslen / sizeof(*fds) < n)
		abort();
	return ppoll(fds, n, tmo, sigmask);
}

EXPORT int
select(int nfds, fd_set *rd, fd_set *wr, fd_set *ex, struct timeval *tv)
{
	struct pollfd *p;
	int i, n = 0, r, timeout, any_rump = 0;

	if (nfds < 0 || nfds > FD_SETSIZE)
		return fail(EINVAL);
	for (i = 0; i < nfds; i++)
		if (hs_get(i) != NULL &&
		    ((rd && FD_ISSET(i, rd)) || (wr && FD_ISSET(i, wr)) ||
		     (ex && FD_ISSET(i, ex))))
			any_rump = 1;
	if (!any_rump)
		return REAL(select)(nfds, rd, wr, ex, tv);
	p = calloc((size_t)nfds, sizeof(*p));
	if (p == NULL)
		return fail(ENOMEM);
	for (i = 0; i < nfds; i++) {
		short ev = 0;

		if (rd && FD_ISSET(i, rd))
			ev |= POLLIN;
		if (wr && FD_ISSET(i, wr))
			ev |= POLLOUT;
		if (ex && FD_ISSET(i, ex))
			ev |= POLLPRI;
		if (ev) {
			p[n].fd = i;
			p[n].events = ev;
			n++;
		}
	}
	timeout = tv == NULL ? -1 :
	    (int)(tv->tv_sec * 1000 + (tv->tv_usec + 999) / 1000);
	r = poll(p, (nfds_t)n, timeout);
	if (r >= 0) {
		if (rd)
			FD_ZERO(rd);
		if (wr)
			FD_ZERO(wr);
		if (ex)
			FD_ZERO(ex);
		r = 0;
		for (i = 0; i < n; i++) {
			short re = p[i].revents;

			if (re & POLLNVAL) {
				free(p);
				return fail(EBADF);
			}
			if (rd && (re & (POLLIN | POLLHUP | POLLERR)) &&
			    (p[i].events & POLLIN)) {
				FD_SET(p[i].fd, rd);
				r++;
			}
			if (wr && (re & (POLLOUT | POLLERR | POLLHUP)) &&
			    (p[i].events & POLLOUT)) {
				FD_SET(p[i].fd, wr);
				r++;
			}
			if (ex && (re & POLLPRI)) {
				FD_SET(p[i].fd, ex);
				r++;
			}
		}
		if (tv != NULL)
			tv->tv_sec = tv->tv_usec = 0;
	}
	free(p);
	return r;
}

EXPORT int
pselect(int nfds, fd_set *rd, fd_set *wr, fd_set *ex,
        const struct timespec *tmo, const sigset_t *sigmask)
{
	struct timeval tv, *tvp = NULL;
	sigset_t old;
	bool rump = false;
	int i, r, e;

	for (i = 0; i < nfds && i < FD_SETSIZE && !rump; i++)
		rump = hs_get(i) != NULL &&
		    ((rd && FD_ISSET(i, rd)) || (wr && FD_ISSET(i, wr)) ||
		     (ex && FD_ISSET(i, ex)));
	if (!rump)
		return REAL(pselect)(nfds, rd, wr, ex, tmo, sigmask);
	if (tmo != NULL) {
		if (timespec_ms(tmo) == -2)
			return fail(EINVAL);
		tv.tv_sec = tmo->tv_sec;
		tv.tv_usec = (tmo->tv_nsec + 999) / 1000;
		tvp = &tv;
	}
	if (sigmask != NULL &&
	    (e = pthread_sigmask(SIG_SETMASK, sigmask, &old)) != 0)
		return fail(e);
	r = select(nfds, rd, wr, ex, tvp);
	e = errno;
	if (sigmask != NULL)
		pthread_sigmask(SIG_SETMASK, &old, NULL);
	errno = e;
	return r;
}

/* epoll: rump sockets are kept in our list for the epoll descriptor; the
 * host's epoll holds the rest and is polled as one host descriptor. */
EXPORT int
epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
	struct hepoll *ep;
	struct epoll_reg **pp, *r;
	int e = 0;

	if (hs_get(fd) == NULL)
		return REAL(epoll_ctl)(epfd, op, fd, ev);
	if (epfd < 0 || epfd >= FD_TABLE)
		return fail(EBADF);
	if (ev == NULL && op != EPOLL_CTL_DEL)
		return fail(EFAULT);
	pthread_mutex_lock(&H.lock);
	ep = H.epolls[epfd];
	if (ep == NULL && op == EPOLL_CTL_ADD) {
		ep = calloc(1, sizeof(*ep));
		if (ep == NULL) {
			e = ENOMEM;
			goto out;
		}
		H.epolls[epfd] = ep;
		ep->next = H.hepolls;
		H.hepolls = ep;
	}
	for (pp = ep ? &ep->regs : NULL; pp != NULL && *pp != NULL;
	     pp = &(*pp)->next)
		if ((*pp)->fd == fd)
			break;
	switch (op) {
	case EPOLL_CTL_ADD:
		if (*pp != NULL) {
			e = EEXIST;
			break;
		}
		if ((r = calloc(1, sizeof(*r))) == NULL) {
			e = ENOMEM;
			break;
		}
		r->fd = fd;
		r->events = ev->events;
		r->data = ev->data;
		*pp = r;
		break;
	case EPOLL_CTL_MOD:
		if (pp == NULL || *pp == NULL) {
			e = ENOENT;
			break;
		}
		/* A new registration: what it is ready for is news. */
		(*pp)->events = ev->events;
		(*pp)->data = ev->data;
		(*pp)->fired = 0;
		break;
	case EPOLL_CTL_DEL:
		if (pp == NULL || *pp == NULL) {
			e = ENOENT;
			break;
		}
		r = *pp;
		*pp = r->next;
		free(r);
		break;
	default:
		e = EINVAL;
	}
out:
	pthread_mutex_unlock(&H.lock);
	return e ? fail(e) : 0;
}

/* Which of a socket's calls re-arm an edge-triggered event. */
#define ET_READ  (EPOLLIN | EPOLLRDHUP | EPOLLPRI)
#define ET_WRITE EPOLLOUT
#define ET_BOTH  (EPOLLERR | EPOLLHUP)

/*
 * What r waits for now, with H.lock: 0 for nothing at all (disabled by
 * EPOLLONESHOT, or edge-triggered with every event reported already).
 * *rd and *wr get the socket's counters the answer is based on.
 */
static uint32_t
epoll_interest(struct epoll_reg *r, uint32_t *rd, uint32_t *wr)
{
	struct hsock *hs = hs_get(r->fd);
	uint32_t want = r->events & (ET_READ | ET_WRITE);

	*rd = *wr = 0;
	if (r->events == 0 || hs == NULL)
		return 0;
	if (!(r->events & EPOLLET))
		return want | ET_BOTH;
	*rd = __atomic_load_n(&hs->rd_seq, __ATOMIC_RELAXED);
	*wr = __atomic_load_n(&hs->wr_seq, __ATOMIC_RELAXED);
	if (*rd != r->rd_seen)
		r->fired &= ~(ET_READ | ET_BOTH);
	if (*wr != r->wr_seen)
		r->fired &= ~(ET_WRITE | ET_BOTH);
	/* poll() reports errors and hang-ups whatever it is asked: once
	 * reported, the socket waits for the program's next call. */
	if (r->fired & ET_BOTH)
		return 0;
	want &= ~r->fired;
	return want != 0 ? want | ET_BOTH : 0;
}

EXPORT int
epoll_pwait(int epfd, struct epoll_event *evs, int max, int timeout,
            const sigset_t *sigmask)
{
	struct pollfd *p = NULL;
	struct epoll_reg *r, **regs = NULL;
	uint32_t *seen = NULL, want;
	struct hepoll *ep;
	sigset_t old;
	unsigned n = 0, i;
	int got = 0, k;

	ep = epfd >= 0 && epfd < FD_TABLE ? H.epolls[epfd] : NULL;
	if (ep == NULL || ep->regs == NULL || max <= 0)
		return REAL(epoll_pwait)(epfd, evs, max, timeout, sigmask);
	pthread_mutex_lock(&H.lock);
	for (r = ep->regs; r != NULL; r = r->next)
		n++;
	p = calloc(n + 1, sizeof(*p));
	regs = calloc(n + 1, sizeof(*regs));
	seen = calloc(2 * (n + 1), sizeof(*seen));
	if (p == NULL || regs == NULL || seen == NULL) {
		pthread_mutex_unlock(&H.lock);
		k = fail(ENOMEM);
		goto out;
	}
	for (r = ep->regs, i = 0; r != NULL; r = r->next) {
		want = epoll_interest(r, &seen[2 * i], &seen[2 * i + 1]);
		if (want == 0)
			continue;
		p[i].fd = r->fd;
		p[i].events = (short)want;
		regs[i++] = r;
	}
	n = i;
	pthread_mutex_unlock(&H.lock);
	p[n].fd = epfd;   /* the host's epoll is readable when it has events */
	p[n].events = POLLIN;
	/* The signal mask of the wait, as epoll_pwait promises; our poll
	 * over rump sockets is not one system call, so this is close. */
	if (sigmask != NULL && pthread_sigmask(SIG_SETMASK, sigmask, &old) != 0)
		sigmask = NULL;
	k = poll(p, n + 1, timeout);
	if (sigmask != NULL)
		pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (k < 0)
		goto out;
	pthread_mutex_lock(&H.lock);
	for (i = 0; i < n && got < max; i++) {
		if (p[i].revents == 0)
			continue;
		/* regs[i] may be gone if another thread deleted it. */
		for (r = ep->regs; r != NULL && r != regs[i]; r = r->next)
			;
		if (r == NULL || r->events == 0)
			continue;
		evs[got].events = (uint32_t)(uint16_t)p[i].revents;
		evs[got].data = r->data;
		got++;
		if (r->events & EPOLLONESHOT) {
			r->events = 0;
		} else if (r->events & EPOLLET) {
			r->fired |= (uint32_t)(uint16_t)p[i].revents;
			r->rd_seen = seen[2 * i];
			r->wr_seen = seen[2 * i + 1];
		}
	}
	pthread_mutex_unlock(&H.lock);
	if ((p[n].revents & POLLIN) && got < max) {
		k = REAL(epoll_wait)(epfd, evs + got, max - got, 0);
		if (k > 0)
			got += k;
	}
	k = got;
out:
	free(p);
	free(regs);
	free(seen);
	return k;
}

EXPORT int
epoll_pwait2(int epfd, struct epoll_event *evs, int max,
             const struct timespec *tmo, const sigset_t *sigmask)
{
	struct hepoll *ep = epfd >= 0 && epfd < FD_TABLE ? H.epolls[epfd] :
	    NULL;
	int ms = timespec_ms(tmo);

	if (ep == NULL || ep->regs == NULL) {
		if (REAL(epoll_pwait2) == NULL)
			return fail(ENOSYS);
		return REAL(epoll_pwait2)(epfd, evs, max, tmo, sigmask);
	}
	if (ms == -2)
		return fail(EINVAL);
	return epoll_pwait(epfd, evs, max, ms, sigmask);
}

EXPORT int
epoll_wait(int epfd, struct epoll_event *evs, int max, int timeout)
{
	return epoll_pwait(epfd, evs, max, timeout, NULL);
}
