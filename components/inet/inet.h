/*
 * inet: the TCP/IP stack of rumpnet (lwIP, built from Debian's source with
 * our lwipopts.h), behind an interface free of lwIP's types.  This file is
 * the only door to the stack; only components/inet includes lwIP headers.
 *
 * Threads: every function may be called from any thread.  The stack has
 * one lock; the done callbacks of operations run with it held (on a NIC's
 * receive thread, the timer thread or the caller's) and must not block or
 * call back into inet.
 *
 * lwIP keeps its state in globals, so a process holds at most one stack:
 * inet_create() says EBUSY to a second.
 *
 * Functions return 0 or a positive errno value unless they say otherwise.
 * Addresses are struct sockaddr_in / sockaddr_in6 (ports in network
 * order).
 */
#ifndef RUMP_INET_H
#define RUMP_INET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "rump/nic.h"
#include "rump/rumpkern.h"

struct inet;
struct inet_if;
struct inet_sock;

int inet_create(struct rk_runtime *rt, struct inet **inetp);
/* Closes every socket left, detaches every interface, frees the stack. */
void inet_destroy(struct inet *in);

/* ---- interfaces and addresses ----------------------------------------- */

/* Puts nic under the stack; the caller routes its frames to
 * inet_if_input (rumpnet shares them with raw clients). */
int inet_if_attach(struct inet *in, struct rk_nic *nic, struct inet_if **ifp);
/* One received Ethernet frame; copied, so frame may go when this returns. */
void inet_if_input(struct inet_if *ifp, const void *frame, size_t len);
/* "10.0.0.2/24" or "fd00::2/64". */
int inet_if_add_addr(struct inet_if *ifp, const char *cidr);
/*
 * A static route: dest is "default" (the family of gw), "default4",
 * "default6" or a prefix ("10.1.0.0/16", "2001:db8::/32", host bits
 * zero); gw an address on one interface's subnet, or an IPv6 link-local
 * one ("fe80::1", with "%IFNAME" when there are several interfaces).
 * The longest matching prefix wins; the default IPv4 route makes gw's
 * interface lwIP's default one.  EINVAL: bad syntax; EAFNOSUPPORT: dest
 * and gw of different families; ENETUNREACH: gw is on no interface;
 * EEXIST: a route to dest already; ENOSPC: too many routes.
 */
int inet_add_route(struct inet *in, const char *dest, const char *gw);

struct inet_addr_info {
	int family;                 /* AF_INET, AF_INET6 */
	uint8_t addr[16];           /* 4 or 16 bytes used */
	uint8_t prefix_len;
};
/* Up to max addresses of ifp into out; returns how many (>= 0). */
unsigned inet_if_addrs(struct inet_if *ifp, struct inet_addr_info *out,
                       unsigned max);

/* ---- sockets ------------------------------------------------------------ */

/* domain AF_INET or AF_INET6; type SOCK_STREAM or SOCK_DGRAM. */
int inet_socket(struct inet *in, int domain, int type,
                struct inet_sock **sockp);
/* Completes the socket's pending operations with -EBADF (their done runs
 * before this returns), then frees it; a TCP connection is closed
 * gracefully (or reset with SO_LINGER 0). */
void inet_close(struct inet_sock *s);

int inet_bind(struct inet_sock *s, const struct sockaddr *sa, socklen_t len);
int inet_listen(struct inet_sock *s, int backlog);
int inet_shutdown(struct inet_sock *s, int how);  /* SHUT_RD, _WR, _RDWR */
/* *lenp: in, the room at sa; out, the address's size. */
int inet_sockname(struct inet_sock *s, bool peer, struct sockaddr *sa,
                  socklen_t *lenp);
/* Levels and names are Linux's (SOL_SOCKET, IPPROTO_TCP, ...). */
int inet_setsockopt(struct inet_sock *s, int level, int name,
                    const void *val, socklen_t len);
int inet_getsockopt(struct inet_sock *s, int level, int name, void *val,
                    socklen_t *lenp);
int inet_sock_domain(const struct inet_sock *s);
int inet_sock_type(const struct inet_sock *s);

/* ---- operations that may wait ----------------------------------------- */

enum inet_op_kind {
	INET_OP_CONNECT,   /* to addr; result 0 */
	INET_OP_ACCEPT,    /* result 0, op->accepted the new socket, addr the
	                    * peer's */
	INET_OP_SEND,      /* buf/len to addr (UDP, if addr_len) */
	INET_OP_RECV,      /* into buf/len; addr gets the sender */
};

#define INET_F_NONBLOCK 0x1   /* -EAGAIN (-EINPROGRESS for connect) rather
                               * than waiting */
#define INET_F_PEEK     0x2   /* RECV: leave the data queued */
#define INET_F_WAITALL  0x4   /* RECV: wait for all of len (stream) */
#define INET_F_MORE     0x8   /* SEND: more follows, do not push yet */

#define INET_AUX_TRUNC  0x1   /* RECV: the datagram was longer than len */

/*
 * Owned by the caller, borrowed by inet from inet_op_start() until done
 * has run (exactly once, possibly inside inet_op_start).  buf stays the
 * caller's; result is bytes (SEND, RECV), 0, or -errno.
 */
struct inet_op {
	enum inet_op_kind kind;
	unsigned flags;               /* INET_F_* */
	void *buf;
	size_t len;
	struct sockaddr_storage addr;
	socklen_t addr_len;           /* 0: none (SEND on a connected socket) */
	void (*done)(struct inet_op *op, int64_t result, uint64_t aux);
	void *arg;
	struct inet_sock *accepted;   /* ACCEPT's new socket */
	/* inet's */
	struct inet_op *next_;
	size_t done_;                 /* bytes moved so far */
};

void inet_op_start(struct inet_sock *s, struct inet_op *op);

/* ---- readiness ---------------------------------------------------------- */

/* Events are poll(2)'s: POLLIN, POLLOUT, POLLERR, POLLHUP, POLLRDHUP. */
uint32_t inet_poll_now(struct inet_sock *s);

struct inet_poll_ent {
	struct inet_sock *sock;
	uint32_t events;
	uint32_t revents;             /* set by inet */
	/* inet's */
	struct inet_poll_ent *next_;
	struct inet_poll *poll_;
};

/*
 * Waits until one of ents[0..n) is ready, or inet_poll_cancel.  done gets
 * the number of entries with revents (0 after a cancel).  Same ownership
 * as struct inet_op.
 */
struct inet_poll {
	struct inet_poll_ent *ents;
	unsigned n;
	void (*done)(struct inet_poll *p, int64_t result);
	void *arg;
	bool pending_;
};

void inet_poll_start(struct inet *in, struct inet_poll *p);
/* done runs (with 0) unless it has run already; true if it ran now. */
bool inet_poll_cancel(struct inet *in, struct inet_poll *p);

#endif /* RUMP_INET_H */
