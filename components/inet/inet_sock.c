/*
 * Sockets on lwIP's raw API.  Everything here runs with in->core held.
 *
 * A socket keeps what lwIP handed up (received segments, datagrams,
 * accepted connections) until its owner asks, and the operations that
 * could not finish at once (connect, accept, send, recv) in FIFO queues.
 * Whenever lwIP changes the socket's state (data, acknowledgement,
 * connection, error), sock_service() resumes the queued operations and
 * answers the polls waiting on it.
 *
 * Flow control is lwIP's own: received data is acknowledged to the
 * window (tcp_recved) only once the owner has taken it.
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>

#include "inet_int.h"

#include "lwip/ip.h"
#include "lwip/priv/tcp_priv.h"

/* The host's header names its own TCP_MSS; lwIP's is not used below. */
#undef TCP_MSS
#include <netinet/tcp.h>

#define DGRAM_QUEUE_MAX (4u * 1024u * 1024u) /* bytes of unread datagrams */
#define UDP_PAYLOAD_MAX 65507u

enum sock_state {
	SS_NEW,          /* TCP: not connected, not listening */
	SS_LISTEN,
	SS_CONNECTING,
	SS_CONNECTED,    /* UDP: always, once created */
	SS_CLOSED,       /* the connection is gone (reset, aborted) */
};

struct dgram {
	struct dgram *next;
	struct pbuf *p;
	ip_addr_t from;
	u16_t port;
};

struct inet_sock {
	struct inet *in;
	struct inet_sock *next, **prevp;    /* in->socks */
	int domain, type;
	enum sock_state state;
	union {
		struct tcp_pcb *tcp;
		struct udp_pcb *udp;
	} pcb;
	int error;                  /* pending, for SO_ERROR and the next op */
	bool rd_eof;                /* FIN received */
	bool rd_shut, wr_shut;
	bool v6only;
	bool bound;
	bool linger_on;
	int linger_secs;
	int sndbuf, rcvbuf;         /* as set; only reported */
	uint16_t link_mss;          /* lwIP's MSS raised for a NIC that
	                             * splits segments: the link's; else 0 */

	/* TCP receive queue: a ring of pbuf chains, oldest at rxq_head */
	struct pbuf **rxq;
	unsigned rxq_cap, rxq_head, rxq_n;
	size_t rx_len;              /* bytes queued */

	/* UDP receive queue */
	struct dgram *dq_head, **dq_tail;
	size_t dq_bytes;

	/* listening: connections lwIP accepted, not yet taken */
	struct inet_sock *acc_head, **acc_tail, *acc_next;
	struct inet_sock *listener; /* set while queued on a listener */
	unsigned acc_n, backlog;

	/* waiting operations */
	struct inet_op *conn_op;
	struct inet_op *acc_ops, **acc_ops_tail;
	struct inet_op *rx_ops, **rx_ops_tail;
	struct inet_op *tx_ops, **tx_ops_tail;
	struct inet_poll_ent *pollers;
};

static void sock_service(struct inet_sock *s);
static void tcp_attach(struct inet_sock *s, struct tcp_pcb *pcb);

/* ---- addresses ------------------------------------------------------------ */

static int
sa_to_ip(const struct inet_sock *s, const struct sockaddr *sa, socklen_t len,
         ip_addr_t *ip, u16_t *port)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const void *)sa;

		if (len < sizeof(*sin))
			return EINVAL;
		if (s->domain != AF_INET)
			return EAFNOSUPPORT;
		ip_addr_set_ip4_u32_val(*ip, sin->sin_addr.s_addr);
		*port = ntohs(sin->sin_port);
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const void *)sa;
		ip6_addr_t *a6;

		if (len < sizeof(*sin6))
			return EINVAL;
		if (s->domain != AF_INET6)
			return EAFNOSUPPORT;
		*port = ntohs(sin6->sin6_port);
		if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
			uint32_t v4;

			if (s->v6only)
				return ENETUNREACH;
			memcpy(&v4, &sin6->sin6_addr.s6_addr[12], 4);
			ip_addr_set_ip4_u32_val(*ip, v4);
			return 0;
		}
		IP_SET_TYPE_VAL(*ip, IPADDR_TYPE_V6);
		a6 = ip_2_ip6(ip);
		memcpy(a6->addr, &sin6->sin6_addr, 16);
		ip6_addr_clear_zone(a6);
		if (ip6_addr_islinklocal(a6) && sin6->sin6_scope_id != 0) {
			if (sin6->sin6_scope_id > 255)
				return EINVAL;
			ip6_addr_set_zone(a6, (u8_t)sin6->sin6_scope_id);
		}
		return 0;
	}
	return EAFNOSUPPORT;
}

/* Writes the address as the socket's family sees it (an IPv4 peer of an
 * IPv6 socket is ::ffff:a.b.c.d); returns its size. */
static socklen_t
ip_to_sa(const struct inet_sock *s, const ip_addr_t *ip, u16_t port,
         struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (s->domain == AF_INET) {
		struct sockaddr_in *sin = (void *)ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		if (IP_IS_V4(ip))
			sin->sin_addr.s_addr = ip4_addr_get_u32(ip_2_ip4(ip));
		return sizeof(*sin);
	}
	struct sockaddr_in6 *sin6 = (void *)ss;

	sin6->sin6_family = AF_INET6;
	sin6->sin6_port = htons(port);
	if (IP_IS_V4(ip)) {
		uint32_t v4 = ip4_addr_get_u32(ip_2_ip4(ip));

		if (v4 != 0) {
			sin6->sin6_addr.s6_addr[10] = 0xff;
			sin6->sin6_addr.s6_addr[11] = 0xff;
			memcpy(&sin6->sin6_addr.s6_addr[12], &v4, 4);
		}
	} else if (IP_IS_V6(ip)) {
		memcpy(&sin6->sin6_addr, ip_2_ip6(ip)->addr, 16);
		if (ip6_addr_has_zone(ip_2_ip6(ip)))
			sin6->sin6_scope_id = ip6_addr_zone(ip_2_ip6(ip));
	}
	return sizeof(*sin6);
}

static int
err_to_errno(err_t err)
{
	switch (err) {
	case ERR_OK: return 0;
	case ERR_MEM: return ENOBUFS;
	case ERR_BUF: return ENOBUFS;
	case ERR_TIMEOUT: return ETIMEDOUT;
	case ERR_RTE: return EHOSTUNREACH;
	case ERR_INPROGRESS: return EINPROGRESS;
	case ERR_VAL: return EINVAL;
	case ERR_WOULDBLOCK: return EAGAIN;
	case ERR_USE: return EADDRINUSE;
	case ERR_ALREADY: return EALREADY;
	case ERR_ISCONN: return EISCONN;
	case ERR_CONN: return ENOTCONN;
	case ERR_IF: return EIO;
	case ERR_ABRT: return ECONNABORTED;
	case ERR_RST: return ECONNRESET;
	case ERR_CLSD: return ENOTCONN;
	case ERR_ARG: return EINVAL;
	default: return EIO;
	}
}

/* ---- completing operations and polls -------------------------------------- */

static void
op_complete(struct inet_op *op, int64_t result, uint64_t aux)
{
	op->done(op, result, aux);
}

static struct inet_op *
opq_pop(struct inet_op **head, struct inet_op ***tail)
{
	struct inet_op *op = *head;

	if (op != NULL) {
		*head = op->next_;
		if (*head == NULL)
			*tail = head;
	}
	return op;
}

static void
opq_push(struct inet_op **head, struct inet_op ***tail, struct inet_op *op)
{
	(void)head;
	op->next_ = NULL;
	**tail = op;
	*tail = &op->next_;
}

/* Puts op back at the front of the queue it was just popped from. */
static void
opq_unpop(struct inet_op **head, struct inet_op ***tail, struct inet_op *op)
{
	op->next_ = *head;
	*head = op;
	if (op->next_ == NULL)
		*tail = &op->next_;
}

static uint32_t
sock_events(const struct inet_sock *s)
{
	uint32_t ev = 0;

	if (s->error)
		ev |= POLLERR;
	if (s->type == SOCK_DGRAM) {
		if (s->dq_head != NULL || s->rd_shut)
			ev |= POLLIN;
		return ev | POLLOUT;
	}
	switch (s->state) {
	case SS_NEW:
		/* As Linux says of a socket that never connected. */
		ev |= POLLOUT | POLLHUP;
		break;
	case SS_LISTEN:
		if (s->acc_head != NULL)
			ev |= POLLIN;
		break;
	case SS_CONNECTING:
		break;
	case SS_CONNECTED:
		if (s->rx_len > 0 || s->rd_eof || s->rd_shut)
			ev |= POLLIN;
		if (s->rd_eof)
			ev |= POLLRDHUP;
		if (s->rd_eof && s->wr_shut)
			ev |= POLLHUP;
		if (!s->wr_shut && s->pcb.tcp != NULL &&
		    s->pcb.tcp->snd_buf >= TCP_SNDLOWAT &&
		    tcp_sndqueuelen(s->pcb.tcp) < TCP_SNDQUEUELOWAT * 3)
			ev |= POLLOUT;
		else if (s->wr_shut)
			ev |= POLLOUT; /* a write fails at once: EPIPE */
		break;
	case SS_CLOSED:
		ev |= POLLIN | POLLOUT | POLLHUP | POLLRDHUP;
		break;
	}
	return ev;
}

uint32_t
inet_poll_now(struct inet_sock *s)
{
	uint32_t ev;

	rumpuser_mutex_enter(s->in->core);
	ev = sock_events(s);
	rumpuser_mutex_exit(s->in->core);
	return ev;
}

static void
poll_unlink(struct inet_poll *p)
{
	struct inet_poll_ent **pp, *e;
	unsigned i;

	for (i = 0; i < p->n; i++) {
		e = &p->ents[i];
		if (e->sock == NULL)
			continue;
		for (pp = &e->sock->pollers; *pp != NULL; pp = &(*pp)->next_) {
			if (*pp == e) {
				*pp = e->next_;
				break;
			}
		}
		e->next_ = NULL;
	}
}

/* Fills revents of every entry; returns how many are ready. */
static unsigned
poll_scan(struct inet_poll *p)
{
	unsigned i, ready = 0;
	struct inet_poll_ent *e;

	for (i = 0; i < p->n; i++) {
		e = &p->ents[i];
		if (e->sock == NULL)
			e->revents = POLLNVAL;
		else
			e->revents = sock_events(e->sock) &
			    (e->events | POLLERR | POLLHUP);
		if (e->revents)
			ready++;
	}
	return ready;
}

static void
poll_finish(struct inet_poll *p, int64_t result)
{
	poll_unlink(p);
	p->pending_ = false;
	p->done(p, result);
}

void
inet_poll_start(struct inet *in, struct inet_poll *p)
{
	unsigned i, ready;
	struct inet_poll_ent *e;

	rumpuser_mutex_enter(in->core);
	ready = poll_scan(p);
	if (ready > 0 || p->n == 0) {
		p->pending_ = false;
		p->done(p, ready);
	} else {
		p->pending_ = true;
		for (i = 0; i < p->n; i++) {
			e = &p->ents[i];
			e->poll_ = p;
			e->next_ = e->sock->pollers;
			e->sock->pollers = e;
		}
	}
	rumpuser_mutex_exit(in->core);
}

bool
inet_poll_cancel(struct inet *in, struct inet_poll *p)
{
	bool ran = false;

	rumpuser_mutex_enter(in->core);
	if (p->pending_) {
		(void)poll_scan(p);
		poll_finish(p, 0);
		ran = true;
	}
	rumpuser_mutex_exit(in->core);
	return ran;
}

static void
sock_wake_pollers(struct inet_sock *s)
{
	struct inet_poll_ent *e, *next;
	struct inet_poll *p;
	unsigned ready;

	for (e = s->pollers; e != NULL; e = next) {
		next = e->next_;
		if ((sock_events(s) & (e->events | POLLERR | POLLHUP)) == 0)
			continue;
		p = e->poll_;
		ready = poll_scan(p);
		poll_finish(p, ready);
		/* poll_finish unlinked entries of this socket too; start
		 * again from what is left. */
		next = s->pollers;
	}
}

/* ---- receiving -------------------------------------------------------------- */

static int
rxq_push(struct inet_sock *s, struct pbuf *p)
{
	struct pbuf **nq;
	unsigned ncap, i;

	if (s->rxq_n == s->rxq_cap) {
		ncap = s->rxq_cap ? s->rxq_cap * 2 : 64;
		if (rumpuser_malloc(ncap * sizeof(*nq), 0, (void **)&nq) != 0)
			return ENOMEM;
		for (i = 0; i < s->rxq_n; i++)
			nq[i] = s->rxq[(s->rxq_head + i) % s->rxq_cap];
		rumpuser_free(s->rxq, s->rxq_cap * sizeof(*nq));
		s->rxq = nq;
		s->rxq_cap = ncap;
		s->rxq_head = 0;
	}
	s->rxq[(s->rxq_head + s->rxq_n) % s->rxq_cap] = p;
	s->rxq_n++;
	s->rx_len += p->tot_len;
	return 0;
}

/* Copies up to len queued bytes to buf; consumes them unless peek. */
static size_t
rxq_take(struct inet_sock *s, uint8_t *buf, size_t len, bool peek)
{
	size_t done = 0, n;
	unsigned i = 0;
	struct pbuf *p;

	while (done < len && i < s->rxq_n) {
		p = s->rxq[(s->rxq_head + i) % s->rxq_cap];
		n = p->tot_len;
		if (n > len - done)
			n = len - done;
		pbuf_copy_partial(p, buf + done, (u16_t)n, 0);
		done += n;
		if (peek) {
			i++;
			continue;
		}
		if (n == p->tot_len) {
			pbuf_free(p);
			s->rxq_head = (s->rxq_head + 1) % s->rxq_cap;
			s->rxq_n--;
		} else {
			s->rxq[s->rxq_head] = pbuf_free_header(p, (u16_t)n);
		}
	}
	if (!peek) {
		s->rx_len -= done;
		/* Open the window by what the owner took. */
		for (n = done; n > 0 && s->pcb.tcp != NULL;) {
			u16_t chunk = n > 0xffff ? 0xffff : (u16_t)n;

			tcp_recved(s->pcb.tcp, chunk);
			n -= chunk;
		}
	}
	return done;
}

static void
rxq_flush(struct inet_sock *s)
{
	while (s->rxq_n > 0) {
		pbuf_free(s->rxq[s->rxq_head]);
		s->rxq_head = (s->rxq_head + 1) % s->rxq_cap;
		s->rxq_n--;
	}
	s->rx_len = 0;
}

/* Returns true when op completed. */
static bool
try_recv_stream(struct inet_sock *s, struct inet_op *op)
{
	int e;

	if (s->state == SS_NEW || s->state == SS_LISTEN ||
	    s->state == SS_CONNECTING) {
		if (s->state == SS_CONNECTING && !(op->flags & INET_F_NONBLOCK))
			return false;
		op_complete(op, s->state == SS_CONNECTING ? -EAGAIN :
		            -ENOTCONN, 0);
		return true;
	}
	if (s->rx_len > 0) {
		op->done_ += rxq_take(s, (uint8_t *)op->buf + op->done_,
		                      op->len - op->done_,
		                      op->flags & INET_F_PEEK);
		if (s->pcb.tcp != NULL && !(op->flags & INET_F_PEEK))
			tcp_output(s->pcb.tcp); /* send the window update */
		if (op->done_ == op->len || !(op->flags & INET_F_WAITALL)) {
			op_complete(op, (int64_t)op->done_, 0);
			return true;
		}
	}
	if (s->rd_eof || s->rd_shut) {
		op_complete(op, (int64_t)op->done_, 0);
		return true;
	}
	if (s->error || s->state == SS_CLOSED) {
		e = s->error ? s->error : ENOTCONN;
		s->error = 0;
		if (e == ENOTCONN && s->state == SS_CLOSED)
			e = 0; /* a gone connection reads as the end */
		op_complete(op, op->done_ ? (int64_t)op->done_ : -e, 0);
		return true;
	}
	if (op->flags & INET_F_NONBLOCK) {
		op_complete(op, op->done_ ? (int64_t)op->done_ : -EAGAIN, 0);
		return true;
	}
	return false;
}

static bool
try_recv_dgram(struct inet_sock *s, struct inet_op *op)
{
	struct dgram *d = s->dq_head;
	uint64_t aux = 0;
	size_t n;
	int e;

	if (d == NULL) {
		if (s->error) {
			e = s->error;
			s->error = 0;
			op_complete(op, -e, 0);
			return true;
		}
		if (s->rd_shut) {
			op_complete(op, 0, 0);
			return true;
		}
		if (op->flags & INET_F_NONBLOCK) {
			op_complete(op, -EAGAIN, 0);
			return true;
		}
		return false;
	}
	n = d->p->tot_len;
	if (n > op->len) {
		n = op->len;
		aux |= INET_AUX_TRUNC;
	}
	pbuf_copy_partial(d->p, op->buf, (u16_t)n, 0);
	op->addr_len = ip_to_sa(s, &d->from, d->port, &op->addr);
	if (!(op->flags & INET_F_PEEK)) {
		s->dq_head = d->next;
		if (s->dq_head == NULL)
			s->dq_tail = &s->dq_head;
		s->dq_bytes -= d->p->tot_len;
		pbuf_free(d->p);
		rumpuser_free(d, sizeof(*d));
	}
	op_complete(op, (int64_t)n, aux);
	return true;
}

/* ---- sending -------------------------------------------------------------------- */

static bool
try_send_stream(struct inet_sock *s, struct inet_op *op)
{
	struct tcp_pcb *pcb = s->pcb.tcp;
	size_t chunk;
	bool wrote = false;
	err_t err;
	int e;

	if (s->wr_shut) {
		op_complete(op, op->done_ ? (int64_t)op->done_ : -EPIPE, 0);
		return true;
	}
	if (s->error) {
		e = s->error;
		s->error = 0;
		op_complete(op, op->done_ ? (int64_t)op->done_ : -e, 0);
		return true;
	}
	if (s->state == SS_CONNECTING) {
		if (!(op->flags & INET_F_NONBLOCK))
			return false;
		op_complete(op, -EAGAIN, 0);
		return true;
	}
	if (s->state != SS_CONNECTED || pcb == NULL) {
		op_complete(op, op->done_ ? (int64_t)op->done_ :
		            (s->state == SS_CLOSED ? -EPIPE : -ENOTCONN), 0);
		return true;
	}
	while (op->done_ < op->len) {
		chunk = op->len - op->done_;
		if (chunk > pcb->snd_buf)
			chunk = pcb->snd_buf;
		if (chunk > 0xffff)
			chunk = 0xffff;
		if (chunk == 0 ||
		    tcp_sndqueuelen(pcb) >= TCP_SND_QUEUELEN - 8)
			break;
		err = tcp_write(pcb, (const uint8_t *)op->buf + op->done_,
		                (u16_t)chunk, TCP_WRITE_FLAG_COPY |
		                (op->done_ + chunk < op->len ||
		                 (op->flags & INET_F_MORE) ?
		                 TCP_WRITE_FLAG_MORE : 0));
		if (err == ERR_MEM)
			break;
		if (err != ERR_OK) {
			e = err_to_errno(err);
			op_complete(op, op->done_ ? (int64_t)op->done_ : -e,
			            0);
			return true;
		}
		op->done_ += chunk;
		wrote = true;
	}
	if (wrote && !(op->flags & INET_F_MORE)) {
		inet_tcp_fit(pcb, s->link_mss);
		tcp_output(pcb);
	}
	if (op->done_ == op->len) {
		op_complete(op, (int64_t)op->len, 0);
		return true;
	}
	if (op->flags & INET_F_NONBLOCK) {
		op_complete(op, op->done_ ? (int64_t)op->done_ : -EAGAIN, 0);
		return true;
	}
	if (wrote) {
		inet_tcp_fit(pcb, s->link_mss);
		tcp_output(pcb);
	}
	return false;
}

static int64_t
send_dgram(struct inet_sock *s, struct inet_op *op)
{
	ip_addr_t ip;
	u16_t port = 0;
	struct pbuf *p;
	err_t err;
	int e;

	if (s->wr_shut)
		return -EPIPE;
	if (op->len > UDP_PAYLOAD_MAX)
		return -EMSGSIZE;
	if (op->addr_len > 0) {
		e = sa_to_ip(s, (const struct sockaddr *)&op->addr,
		             op->addr_len, &ip, &port);
		if (e)
			return -e;
	} else if (!(s->pcb.udp->flags & UDP_FLAGS_CONNECTED)) {
		return -EDESTADDRREQ;
	}
	p = pbuf_alloc(PBUF_TRANSPORT, (u16_t)op->len, PBUF_RAM);
	if (p == NULL)
		return -ENOBUFS;
	if (op->len > 0)
		(void)pbuf_take(p, op->buf, (u16_t)op->len);
	if (op->addr_len > 0)
		err = udp_sendto(s->pcb.udp, p, &ip, port);
	else
		err = udp_send(s->pcb.udp, p);
	pbuf_free(p);
	if (err != ERR_OK)
		return -err_to_errno(err);
	return (int64_t)op->len;
}

/* ---- lwIP's callbacks ------------------------------------------------------------- */

static err_t
on_tcp_recv(void *arg, struct tcp_pcb *pcb, struct pbuf *p, err_t err)
{
	struct inet_sock *s = arg;

	(void)err;
	if (s == NULL) {
		/* The socket is closed: swallow what still arrives. */
		if (p != NULL) {
			tcp_recved(pcb, p->tot_len);
			pbuf_free(p);
		}
		return ERR_OK;
	}
	if (p == NULL) {
		s->rd_eof = true;
	} else if (s->rd_shut) {
		tcp_recved(pcb, p->tot_len);
		pbuf_free(p);
		return ERR_OK;
	} else if (rxq_push(s, p) != 0) {
		/* lwIP keeps the segment and offers it again later. */
		return ERR_MEM;
	}
	sock_service(s);
	return ERR_OK;
}

static err_t
on_tcp_sent(void *arg, struct tcp_pcb *pcb, u16_t len)
{
	struct inet_sock *s = arg;

	(void)len;
	if (s == NULL)
		return ERR_OK;
	/* lwIP sends once this returns: from the window this ACK opened. */
	inet_tcp_fit(pcb, s->link_mss);
	sock_service(s);
	return ERR_OK;
}

static void
on_tcp_err(void *arg, err_t err)
{
	struct inet_sock *s = arg;

	if (s == NULL)
		return;
	/* lwIP has freed the pcb already. */
	s->pcb.tcp = NULL;
	if (s->state == SS_CONNECTING)
		s->error = err == ERR_RST ? ECONNREFUSED : ETIMEDOUT;
	else if (!(s->rd_eof && s->wr_shut))
		s->error = err == ERR_ABRT ? ECONNABORTED : ECONNRESET;
	s->state = SS_CLOSED;
	sock_service(s);
}

static err_t
on_tcp_connected(void *arg, struct tcp_pcb *pcb, err_t err)
{
	struct inet_sock *s = arg;

	(void)err;
	if (s == NULL)
		return ERR_OK;
	s->link_mss = inet_tcp_offload(pcb);
	s->state = SS_CONNECTED;
	sock_service(s);
	return ERR_OK;
}

static struct inet_sock *sock_alloc(struct inet *in, int domain, int type);

static err_t
on_tcp_accept(void *arg, struct tcp_pcb *newpcb, err_t err)
{
	struct inet_sock *l = arg, *s;

	if (l == NULL || err != ERR_OK || newpcb == NULL)
		return ERR_VAL;
	if (l->acc_n >= l->backlog)
		return ERR_MEM; /* lwIP resets it: our queue is full */
	s = sock_alloc(l->in, l->domain, SOCK_STREAM);
	if (s == NULL)
		return ERR_MEM;
	tcp_attach(s, newpcb);
	s->link_mss = inet_tcp_offload(newpcb);
	s->state = SS_CONNECTED;
	s->bound = true;
	s->listener = l;
	s->acc_next = NULL;
	*l->acc_tail = s;
	l->acc_tail = &s->acc_next;
	l->acc_n++;
	sock_service(l);
	return ERR_OK;
}

static void
on_udp_recv(void *arg, struct udp_pcb *pcb, struct pbuf *p,
            const ip_addr_t *addr, u16_t port)
{
	struct inet_sock *s = arg;
	struct dgram *d;

	(void)pcb;
	if (s == NULL || s->rd_shut ||
	    s->dq_bytes + p->tot_len > DGRAM_QUEUE_MAX ||
	    rumpuser_malloc(sizeof(*d), 0, (void **)&d) != 0) {
		pbuf_free(p);
		return;
	}
	d->next = NULL;
	d->p = p;
	ip_addr_copy(d->from, *addr);
	d->port = port;
	*s->dq_tail = d;
	s->dq_tail = &d->next;
	s->dq_bytes += p->tot_len;
	sock_service(s);
}

static void
tcp_attach(struct inet_sock *s, struct tcp_pcb *pcb)
{
	s->pcb.tcp = pcb;
	tcp_arg(pcb, s);
	tcp_recv(pcb, on_tcp_recv);
	tcp_sent(pcb, on_tcp_sent);
	tcp_err(pcb, on_tcp_err);
}

static void
tcp_detach(struct tcp_pcb *pcb)
{
	tcp_arg(pcb, NULL);
	if (pcb->state == LISTEN) {
		tcp_accept(pcb, NULL);
		return;
	}
	tcp_recv(pcb, NULL);
	tcp_sent(pcb, NULL);
	tcp_err(pcb, NULL);
}

/* ---- the queue runner ----------------------------------------------------------- */

static void
sock_service(struct inet_sock *s)
{
	struct inet_op *op;
	struct inet_sock *c;
	int e;

	if (s->conn_op != NULL && s->state != SS_CONNECTING) {
		op = s->conn_op;
		s->conn_op = NULL;
		e = s->state == SS_CONNECTED ? 0 : s->error ? s->error :
		    ECONNREFUSED;
		if (e == s->error)
			s->error = 0;
		op_complete(op, -e, 0);
	}
	while (s->acc_ops != NULL && s->acc_head != NULL) {
		op = opq_pop(&s->acc_ops, &s->acc_ops_tail);
		c = s->acc_head;
		s->acc_head = c->acc_next;
		if (s->acc_head == NULL)
			s->acc_tail = &s->acc_head;
		s->acc_n--;
		c->listener = NULL;
		op->accepted = c;
		if (c->pcb.tcp != NULL)
			op->addr_len = ip_to_sa(s, &c->pcb.tcp->remote_ip,
			                        c->pcb.tcp->remote_port,
			                        &op->addr);
		else
			op->addr_len = 0;
		op_complete(op, 0, 0);
	}
	if (s->acc_ops != NULL && s->state != SS_LISTEN) {
		while ((op = opq_pop(&s->acc_ops, &s->acc_ops_tail)) != NULL)
			op_complete(op, -EINVAL, 0);
	}
	/* Each op leaves its queue before it is tried (completing it hands
	 * it back to its owner) and goes back to the front if it waits. */
	while ((op = opq_pop(&s->rx_ops, &s->rx_ops_tail)) != NULL) {
		if (!(s->type == SOCK_STREAM ? try_recv_stream(s, op) :
		      try_recv_dgram(s, op))) {
			opq_unpop(&s->rx_ops, &s->rx_ops_tail, op);
			break;
		}
	}
	while (s->type == SOCK_STREAM &&
	       (op = opq_pop(&s->tx_ops, &s->tx_ops_tail)) != NULL) {
		if (!try_send_stream(s, op)) {
			opq_unpop(&s->tx_ops, &s->tx_ops_tail, op);
			break;
		}
	}
	if (s->pollers != NULL)
		sock_wake_pollers(s);
}

/* ---- the socket calls ----------------------------------------------------------- */

static struct inet_sock *
sock_alloc(struct inet *in, int domain, int type)
{
	struct inet_sock *s;

	if (rumpuser_malloc(sizeof(*s), 0, (void **)&s) != 0)
		return NULL;
	memset(s, 0, sizeof(*s));
	s->in = in;
	s->domain = domain;
	s->type = type;
	s->linger_secs = -1;
	s->dq_tail = &s->dq_head;
	s->acc_tail = &s->acc_head;
	s->acc_ops_tail = &s->acc_ops;
	s->rx_ops_tail = &s->rx_ops;
	s->tx_ops_tail = &s->tx_ops;
	s->next = in->socks;
	if (s->next != NULL)
		s->next->prevp = &s->next;
	s->prevp = &in->socks;
	in->socks = s;
	return s;
}

int
inet_socket(struct inet *in, int domain, int type, struct inet_sock **sockp)
{
	struct inet_sock *s;
	u8_t iptype;
	int error = 0;

	if (domain != AF_INET && domain != AF_INET6)
		return EAFNOSUPPORT;
	if (type != SOCK_STREAM && type != SOCK_DGRAM)
		return EPROTONOSUPPORT;
	/* An IPv6 socket takes IPv4 peers too unless IPV6_V6ONLY. */
	iptype = domain == AF_INET ? IPADDR_TYPE_V4 : IPADDR_TYPE_ANY;
	rumpuser_mutex_enter(in->core);
	s = sock_alloc(in, domain, type);
	if (s == NULL) {
		error = ENOMEM;
		goto out;
	}
	if (type == SOCK_STREAM) {
		struct tcp_pcb *pcb = tcp_new_ip_type(iptype);

		if (pcb != NULL)
			tcp_attach(s, pcb);
		s->state = SS_NEW;
	} else {
		s->pcb.udp = udp_new_ip_type(iptype);
		if (s->pcb.udp != NULL)
			udp_recv(s->pcb.udp, on_udp_recv, s);
		s->state = SS_CONNECTED;
	}
	if (s->pcb.tcp == NULL && s->pcb.udp == NULL) {
		*s->prevp = s->next;
		if (s->next != NULL)
			s->next->prevp = s->prevp;
		rumpuser_free(s, sizeof(*s));
		error = ENOBUFS;
		goto out;
	}
	*sockp = s;
out:
	rumpuser_mutex_exit(in->core);
	return error;
}

static void
sock_close_locked(struct inet_sock *s)
{
	struct inet_op *op;
	struct inet_sock *c;
	struct inet_poll_ent *e;
	struct dgram *d;

	while ((op = opq_pop(&s->rx_ops, &s->rx_ops_tail)) != NULL)
		op_complete(op, -EBADF, 0);
	while ((op = opq_pop(&s->tx_ops, &s->tx_ops_tail)) != NULL)
		op_complete(op, -EBADF, 0);
	while ((op = opq_pop(&s->acc_ops, &s->acc_ops_tail)) != NULL)
		op_complete(op, -EBADF, 0);
	if ((op = s->conn_op) != NULL) {
		s->conn_op = NULL;
		op_complete(op, -EBADF, 0);
	}
	/* Polls naming this socket see POLLNVAL for it. */
	while ((e = s->pollers) != NULL) {
		s->pollers = e->next_;
		e->next_ = NULL;
		e->sock = NULL;
		if (e->poll_->pending_) {
			unsigned ready = poll_scan(e->poll_);

			poll_finish(e->poll_, ready);
		}
	}
	while ((c = s->acc_head) != NULL) {
		s->acc_head = c->acc_next;
		c->listener = NULL;
		if (c->pcb.tcp != NULL) {
			tcp_detach(c->pcb.tcp);
			tcp_abort(c->pcb.tcp);
			c->pcb.tcp = NULL;
		}
		sock_close_locked(c);
	}
	if (s->type == SOCK_STREAM && s->pcb.tcp != NULL) {
		struct tcp_pcb *pcb = s->pcb.tcp;

		tcp_detach(pcb);
		if ((s->linger_on && s->linger_secs == 0) || s->rx_len > 0) {
			/* Unread data or SO_LINGER 0: reset, as BSD does. */
			tcp_abort(pcb);
		} else if (tcp_close(pcb) != ERR_OK) {
			tcp_abort(pcb);
		}
	} else if (s->type == SOCK_DGRAM && s->pcb.udp != NULL) {
		udp_remove(s->pcb.udp);
	}
	s->pcb.tcp = NULL;
	rxq_flush(s);
	rumpuser_free(s->rxq, s->rxq_cap * sizeof(*s->rxq));
	while ((d = s->dq_head) != NULL) {
		s->dq_head = d->next;
		pbuf_free(d->p);
		rumpuser_free(d, sizeof(*d));
	}
	*s->prevp = s->next;
	if (s->next != NULL)
		s->next->prevp = s->prevp;
	rumpuser_free(s, sizeof(*s));
}

void
inet_close(struct inet_sock *s)
{
	struct inet *in = s->in;

	rumpuser_mutex_enter(in->core);
	sock_close_locked(s);
	rumpuser_mutex_exit(in->core);
}

static int
bind_locked(struct inet_sock *s, const struct sockaddr *sa, socklen_t len)
{
	ip_addr_t ip;
	u16_t port;
	err_t err;
	int e;

	if (s->bound)
		return EINVAL;
	if ((e = sa_to_ip(s, sa, len, &ip, &port)) != 0)
		return e;
	if (s->domain == AF_INET6 && IP_IS_V6(&ip) &&
	    ip6_addr_isany(ip_2_ip6(&ip)) && !s->v6only)
		ip_addr_copy(ip, *IP_ANY_TYPE);
	if (s->type == SOCK_STREAM) {
		if (s->pcb.tcp == NULL || s->state != SS_NEW)
			return EINVAL;
		err = tcp_bind(s->pcb.tcp, &ip, port);
	} else {
		err = udp_bind(s->pcb.udp, &ip, port);
	}
	if (err == ERR_VAL)
		return EADDRNOTAVAIL;
	if (err != ERR_OK)
		return err_to_errno(err);
	s->bound = true;
	return 0;
}

int
inet_bind(struct inet_sock *s, const struct sockaddr *sa, socklen_t len)
{
	int e;

	rumpuser_mutex_enter(s->in->core);
	e = bind_locked(s, sa, len);
	rumpuser_mutex_exit(s->in->core);
	return e;
}

static int
bind_any(struct inet_sock *s)
{
	struct sockaddr_storage ss;
	ip_addr_t any;

	ip_addr_set_zero_ip4(&any);
	return bind_locked(s, (struct sockaddr *)&ss,
	                   ip_to_sa(s, &any, 0, &ss));
}

int
inet_listen(struct inet_sock *s, int backlog)
{
	struct tcp_pcb *lpcb;
	err_t err;
	int e = 0;

	if (backlog < 1)
		backlog = 1;
	if (backlog > 255)
		backlog = 255;
	rumpuser_mutex_enter(s->in->core);
	if (s->type != SOCK_STREAM) {
		e = EOPNOTSUPP;
		goto out;
	}
	if (s->state == SS_LISTEN) {
		s->backlog = (unsigned)backlog;
		goto out;
	}
	if (s->state != SS_NEW || s->pcb.tcp == NULL) {
		e = EINVAL;
		goto out;
	}
	if (!s->bound && (e = bind_any(s)) != 0)
		goto out;
	lpcb = tcp_listen_with_backlog_and_err(s->pcb.tcp, (u8_t)backlog,
	                                       &err);
	if (lpcb == NULL) {
		e = err == ERR_USE ? EADDRINUSE : ENOBUFS;
		goto out;
	}
	/* The old pcb is gone; the listening one replaces it. */
	s->pcb.tcp = lpcb;
	tcp_arg(lpcb, s);
	tcp_accept(lpcb, on_tcp_accept);
	s->state = SS_LISTEN;
	s->backlog = (unsigned)backlog;
out:
	rumpuser_mutex_exit(s->in->core);
	return e;
}

int
inet_shutdown(struct inet_sock *s, int how)
{
	int e = 0;

	if (how != SHUT_RD && how != SHUT_WR && how != SHUT_RDWR)
		return EINVAL;
	rumpuser_mutex_enter(s->in->core);
	if (s->type == SOCK_STREAM && s->state != SS_CONNECTED) {
		e = ENOTCONN;
		goto out;
	}
	if (how != SHUT_WR) {
		s->rd_shut = true;
		if (s->type == SOCK_STREAM) {
			size_t n = s->rx_len;

			rxq_flush(s);
			while (n > 0 && s->pcb.tcp != NULL) {
				u16_t c = n > 0xffff ? 0xffff : (u16_t)n;

				tcp_recved(s->pcb.tcp, c);
				n -= c;
			}
		}
	}
	if (how != SHUT_RD && !s->wr_shut) {
		s->wr_shut = true;
		if (s->type == SOCK_STREAM && s->pcb.tcp != NULL) {
			/* Queued writes go first, then the FIN. */
			(void)tcp_shutdown(s->pcb.tcp, 0, 1);
			tcp_output(s->pcb.tcp);
		}
	}
	sock_service(s);
out:
	rumpuser_mutex_exit(s->in->core);
	return e;
}

int
inet_sockname(struct inet_sock *s, bool peer, struct sockaddr *sa,
              socklen_t *lenp)
{
	struct sockaddr_storage ss;
	const ip_addr_t *ip = NULL;
	ip_addr_t zero;
	u16_t port = 0;
	socklen_t n;
	int e = 0;

	ip_addr_set_zero_ip4(&zero);
	rumpuser_mutex_enter(s->in->core);
	if (s->type == SOCK_STREAM && s->pcb.tcp != NULL) {
		if (peer && s->state != SS_CONNECTED)
			e = ENOTCONN;
		ip = peer ? &s->pcb.tcp->remote_ip : &s->pcb.tcp->local_ip;
		port = peer ? s->pcb.tcp->remote_port : s->pcb.tcp->local_port;
	} else if (s->type == SOCK_DGRAM && s->pcb.udp != NULL) {
		if (peer && !(s->pcb.udp->flags & UDP_FLAGS_CONNECTED))
			e = ENOTCONN;
		ip = peer ? &s->pcb.udp->remote_ip : &s->pcb.udp->local_ip;
		port = peer ? s->pcb.udp->remote_port : s->pcb.udp->local_port;
	} else if (peer) {
		e = ENOTCONN;
	}
	if (e == 0) {
		n = ip_to_sa(s, ip != NULL && !IP_IS_ANY_TYPE_VAL(*ip) ? ip :
		             &zero, port, &ss);
		memcpy(sa, &ss, n < *lenp ? n : *lenp);
		*lenp = n;
	}
	rumpuser_mutex_exit(s->in->core);
	return e;
}

void
inet_op_start(struct inet_sock *s, struct inet_op *op)
{
	struct inet *in = s->in;
	ip_addr_t ip;
	u16_t port;
	err_t err;
	int e;

	op->done_ = 0;
	op->accepted = NULL;
	op->next_ = NULL;
	rumpuser_mutex_enter(in->core);
	switch (op->kind) {
	case INET_OP_CONNECT:
		e = sa_to_ip(s, (const struct sockaddr *)&op->addr,
		             op->addr_len, &ip, &port);
		if (e) {
			op_complete(op, -e, 0);
			break;
		}
		if (s->type == SOCK_DGRAM) {
			err = udp_connect(s->pcb.udp, &ip, port);
			op_complete(op, -err_to_errno(err), 0);
			break;
		}
		if (s->state == SS_CONNECTING) {
			op_complete(op, -EALREADY, 0);
			break;
		}
		if (s->state != SS_NEW || s->pcb.tcp == NULL) {
			op_complete(op, s->state == SS_CONNECTED ? -EISCONN :
			            -EINVAL, 0);
			break;
		}
		err = tcp_connect(s->pcb.tcp, &ip, port, on_tcp_connected);
		if (err != ERR_OK) {
			op_complete(op, -err_to_errno(err), 0);
			break;
		}
		s->bound = true;
		s->state = SS_CONNECTING;
		if (op->flags & INET_F_NONBLOCK)
			op_complete(op, -EINPROGRESS, 0);
		else
			s->conn_op = op;
		break;
	case INET_OP_ACCEPT:
		if (s->state != SS_LISTEN) {
			op_complete(op, -EINVAL, 0);
			break;
		}
		if (s->acc_head == NULL && (op->flags & INET_F_NONBLOCK)) {
			op_complete(op, -EAGAIN, 0);
			break;
		}
		opq_push(&s->acc_ops, &s->acc_ops_tail, op);
		sock_service(s);
		break;
	case INET_OP_RECV:
		if (s->rx_ops != NULL && (op->flags & INET_F_NONBLOCK)) {
			op_complete(op, -EAGAIN, 0);
			break;
		}
		opq_push(&s->rx_ops, &s->rx_ops_tail, op);
		sock_service(s);
		break;
	case INET_OP_SEND:
		if (s->type == SOCK_DGRAM) {
			op_complete(op, send_dgram(s, op), 0);
			break;
		}
		if (s->tx_ops != NULL && (op->flags & INET_F_NONBLOCK)) {
			op_complete(op, -EAGAIN, 0);
			break;
		}
		opq_push(&s->tx_ops, &s->tx_ops_tail, op);
		sock_service(s);
		break;
	default:
		op_complete(op, -EOPNOTSUPP, 0);
		break;
	}
	rumpuser_mutex_exit(in->core);
}

int
inet_sock_domain(const struct inet_sock *s)
{
	return s->domain;
}

int
inet_sock_type(const struct inet_sock *s)
{
	return s->type;
}

/* ---- options ---------------------------------------------------------------------- */

static int
opt_int(const void *val, socklen_t len, int *out)
{
	if (len < (socklen_t)sizeof(int))
		return EINVAL;
	memcpy(out, val, sizeof(int));
	return 0;
}

static u8_t *
so_options(struct inet_sock *s)
{
	if (s->type == SOCK_STREAM)
		return s->pcb.tcp != NULL ? &s->pcb.tcp->so_options : NULL;
	return s->pcb.udp != NULL ? &s->pcb.udp->so_options : NULL;
}

static void
set_flag(u8_t *opts, u8_t flag, int on)
{
	if (opts == NULL)
		return;
	if (on)
		*opts = (u8_t)(*opts | flag);
	else
		*opts = (u8_t)(*opts & ~flag);
}

static int
setopt_locked(struct inet_sock *s, int level, int name, const void *val,
              socklen_t len)
{
	struct tcp_pcb *tpcb = s->type == SOCK_STREAM ? s->pcb.tcp : NULL;
	int v, e;

	if (level == SOL_SOCKET && name == SO_LINGER) {
		struct linger l;

		if (len < (socklen_t)sizeof(l))
			return EINVAL;
		memcpy(&l, val, sizeof(l));
		s->linger_on = l.l_onoff != 0;
		s->linger_secs = l.l_linger;
		return 0;
	}
	if ((e = opt_int(val, len, &v)) != 0)
		return e;
	switch (level) {
	case SOL_SOCKET:
		switch (name) {
		case SO_REUSEADDR:
		case SO_REUSEPORT:
			set_flag(so_options(s), SOF_REUSEADDR, v);
			return 0;
		case SO_KEEPALIVE:
			set_flag(so_options(s), SOF_KEEPALIVE, v);
			return 0;
		case SO_BROADCAST:
			set_flag(so_options(s), SOF_BROADCAST, v);
			return 0;
		case SO_SNDBUF:
			s->sndbuf = v;
			return 0;
		case SO_RCVBUF:
			s->rcvbuf = v;
			return 0;
		}
		break;
	case IPPROTO_TCP:
		if (s->type != SOCK_STREAM)
			return ENOPROTOOPT;
		switch (name) {
		case TCP_NODELAY:
			if (tpcb == NULL)
				return 0;
			if (v)
				tcp_nagle_disable(tpcb);
			else
				tcp_nagle_enable(tpcb);
			return 0;
		case TCP_MAXSEG:
			return 0; /* the interface's MTU decides */
		case TCP_KEEPIDLE:
			if (v < 1)
				return EINVAL;
			if (tpcb != NULL)
				tpcb->keep_idle = (u32_t)v * 1000u;
			return 0;
		case TCP_KEEPINTVL:
			if (v < 1)
				return EINVAL;
			if (tpcb != NULL)
				tpcb->keep_intvl = (u32_t)v * 1000u;
			return 0;
		case TCP_KEEPCNT:
			if (v < 1)
				return EINVAL;
			if (tpcb != NULL)
				tpcb->keep_cnt = (u32_t)v;
			return 0;
		}
		break;
	case IPPROTO_IP:
		switch (name) {
		case IP_TOS:
			if (tpcb != NULL)
				tpcb->tos = (u8_t)v;
			else if (s->type == SOCK_DGRAM)
				s->pcb.udp->tos = (u8_t)v;
			return 0;
		case IP_TTL:
			if (v < 1 || v > 255)
				return EINVAL;
			if (tpcb != NULL)
				tpcb->ttl = (u8_t)v;
			else if (s->type == SOCK_DGRAM)
				s->pcb.udp->ttl = (u8_t)v;
			return 0;
		}
		break;
	case IPPROTO_IPV6:
		if (s->domain != AF_INET6)
			return ENOPROTOOPT;
		switch (name) {
		case IPV6_V6ONLY:
			if (s->bound)
				return EINVAL;
			s->v6only = v != 0;
			return 0;
		case IPV6_TCLASS:
			return 0;
		}
		break;
	}
	return ENOPROTOOPT;
}

int
inet_setsockopt(struct inet_sock *s, int level, int name, const void *val,
                socklen_t len)
{
	int e;

	rumpuser_mutex_enter(s->in->core);
	e = setopt_locked(s, level, name, val, len);
	rumpuser_mutex_exit(s->in->core);
	return e;
}

static int
put_int(void *val, socklen_t *lenp, int v)
{
	if (*lenp < (socklen_t)sizeof(int))
		return EINVAL;
	memcpy(val, &v, sizeof(v));
	*lenp = sizeof(int);
	return 0;
}

static int
tcp_info_fill(struct inet_sock *s, void *val, socklen_t *lenp)
{
	struct tcp_info ti;
	struct tcp_pcb *pcb = s->pcb.tcp;
	socklen_t n = *lenp < (socklen_t)sizeof(ti) ? *lenp : sizeof(ti);

	memset(&ti, 0, sizeof(ti));
	if (pcb != NULL) {
		ti.tcpi_state = s->state == SS_CONNECTED ? 1 /* ESTABLISHED */ :
		    s->state == SS_LISTEN ? 10 : 7;
		ti.tcpi_snd_mss = tcp_mss(pcb);
		ti.tcpi_rcv_mss = tcp_mss(pcb);
		ti.tcpi_snd_cwnd = tcp_mss(pcb) ? pcb->cwnd / tcp_mss(pcb) : 0;
		ti.tcpi_snd_ssthresh = tcp_mss(pcb) ?
		    pcb->ssthresh / tcp_mss(pcb) : 0;
		/* sa is 8 times the smoothed RTT in slow-timer ticks. */
		ti.tcpi_rtt = (uint32_t)((pcb->sa >> 3) * TCP_SLOW_INTERVAL *
		                         1000);
		ti.tcpi_rttvar = (uint32_t)((pcb->sv >> 2) *
		                            TCP_SLOW_INTERVAL * 1000);
		ti.tcpi_retransmits = pcb->nrtx;
		ti.tcpi_snd_wscale = pcb->snd_scale;
		ti.tcpi_rcv_wscale = pcb->rcv_scale;
	} else {
		ti.tcpi_state = 7; /* CLOSE */
	}
	memcpy(val, &ti, n);
	*lenp = n;
	return 0;
}

static int
getopt_locked(struct inet_sock *s, int level, int name, void *val,
              socklen_t *lenp)
{
	struct tcp_pcb *tpcb = s->type == SOCK_STREAM ? s->pcb.tcp : NULL;
	u8_t *opts = so_options(s);
	int v;

	switch (level) {
	case SOL_SOCKET:
		switch (name) {
		case SO_ERROR:
			v = s->error;
			s->error = 0;
			return put_int(val, lenp, v);
		case SO_TYPE:
			return put_int(val, lenp, s->type);
		case SO_DOMAIN:
			return put_int(val, lenp, s->domain);
		case SO_PROTOCOL:
			return put_int(val, lenp, s->type == SOCK_STREAM ?
			               IPPROTO_TCP : IPPROTO_UDP);
		case SO_ACCEPTCONN:
			return put_int(val, lenp, s->state == SS_LISTEN);
		case SO_REUSEADDR:
		case SO_REUSEPORT:
			return put_int(val, lenp, opts != NULL &&
			               (*opts & SOF_REUSEADDR));
		case SO_KEEPALIVE:
			return put_int(val, lenp, opts != NULL &&
			               (*opts & SOF_KEEPALIVE));
		case SO_BROADCAST:
			return put_int(val, lenp, opts != NULL &&
			               (*opts & SOF_BROADCAST));
		case SO_SNDBUF:
			return put_int(val, lenp, s->sndbuf ? s->sndbuf :
			               (int)TCP_SND_BUF);
		case SO_RCVBUF:
			return put_int(val, lenp, s->rcvbuf ? s->rcvbuf :
			               (int)TCP_WND);
		case SO_LINGER: {
			struct linger l = { s->linger_on, s->linger_secs < 0 ?
			                    0 : s->linger_secs };

			if (*lenp < (socklen_t)sizeof(l))
				return EINVAL;
			memcpy(val, &l, sizeof(l));
			*lenp = sizeof(l);
			return 0;
		}
		}
		break;
	case IPPROTO_TCP:
		if (s->type != SOCK_STREAM)
			return ENOPROTOOPT;
		switch (name) {
		case TCP_NODELAY:
			return put_int(val, lenp, tpcb != NULL &&
			               tcp_nagle_disabled(tpcb));
		case TCP_MAXSEG:
			return put_int(val, lenp, tpcb != NULL ?
			               tcp_mss(tpcb) : 536);
		case TCP_KEEPIDLE:
			return put_int(val, lenp, tpcb != NULL ?
			               (int)(tpcb->keep_idle / 1000) : 7200);
		case TCP_KEEPINTVL:
			return put_int(val, lenp, tpcb != NULL ?
			               (int)(tpcb->keep_intvl / 1000) : 75);
		case TCP_KEEPCNT:
			return put_int(val, lenp, tpcb != NULL ?
			               (int)tpcb->keep_cnt : 9);
		case TCP_INFO:
			return tcp_info_fill(s, val, lenp);
		case TCP_CONGESTION: {
			static const char algo[] = "reno";
			socklen_t n = *lenp < (socklen_t)sizeof(algo) ?
			    *lenp : (socklen_t)sizeof(algo);

			memcpy(val, algo, n);
			*lenp = n;
			return 0;
		}
		}
		break;
	case IPPROTO_IPV6:
		if (s->domain == AF_INET6 && name == IPV6_V6ONLY)
			return put_int(val, lenp, s->v6only);
		break;
	case IPPROTO_IP:
		if (name == IP_TOS)
			return put_int(val, lenp, tpcb != NULL ? tpcb->tos :
			               s->type == SOCK_DGRAM ? s->pcb.udp->tos :
			               0);
		if (name == IP_TTL)
			return put_int(val, lenp, tpcb != NULL ? tpcb->ttl :
			               s->type == SOCK_DGRAM ? s->pcb.udp->ttl :
			               TCP_TTL);
		break;
	}
	return ENOPROTOOPT;
}

int
inet_getsockopt(struct inet_sock *s, int level, int name, void *val,
                socklen_t *lenp)
{
	int e;

	rumpuser_mutex_enter(s->in->core);
	e = getopt_locked(s, level, name, val, lenp);
	rumpuser_mutex_exit(s->in->core);
	return e;
}
