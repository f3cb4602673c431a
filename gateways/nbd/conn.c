/*
 * One NBD connection: the handshake, then a reader thread that parses
 * requests and submits them to the backend while completions send the
 * replies, out of order.
 *
 * With a backend that can be polled, the reader does not sleep in recv
 * while its requests are in flight, nor for a moment after the last
 * reply: it spins between the socket and the backend's completions, so a
 * request is taken and its reply sent without any thread being woken
 * (a wakeup costs more than a fast disk's request).  Once nothing came
 * for a while, or when the host has more runnable threads than CPUs (a
 * yield keeps it off the CPU long), it leaves polling to the backend and
 * sleeps.
 *
 * Replies go out from whichever thread completes them, with one
 * non-blocking sendmsg for a whole batch; when the socket is full the rest
 * is queued for the connection's writer thread, so a client that stops
 * reading stalls only itself, never the thread that reaps completions for
 * everyone.  Bytes of one reply never interleave with another's: only one
 * thread sends at a time (the writer, while it is busy).
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "gateway.h"

#define CONN_MAX_INFLIGHT 128          /* requests per connection */
#define CONN_BUF_BUDGET   (64u << 20)  /* buffer bytes per connection */
#define CONN_RBUF_SIZE    (128u << 10) /* receive buffer */
#define CONN_MAX_OPTIONS  1024         /* options in one handshake */
#define BS_BUF_LEN        4096         /* extents per BLOCK_STATUS: 256 */
#define SEND_BATCH        64           /* replies per sendmsg */
#define CONN_SEND_TIMEOUT_S 60         /* a client not reading replies */
/* Room for a few large read replies in the socket, so that the thread
 * completing them rarely finds it full and hands them to the writer (a
 * wakeup each); the host caps it (net.core.wmem_max). */
#define CONN_SNDBUF       (4 << 20)
/* Polling, see the top: how long the reader spins without progress with
 * requests in flight (longer than a fast disk's request) and without
 * (longer than a client takes to send its next one), and how many rounds
 * it spins between yields, for when it shares a CPU with the threads it
 * waits for. */
#define CONN_SPIN_BUSY_NS (500u * 1000)
#define CONN_SPIN_IDLE_NS (50u * 1000)
#define CONN_SPIN_ROUND   8
/* A yield that kept us off the CPU this long means more runnable threads
 * than CPUs (other work on the host): spinning then only delays the
 * threads we wait for, so the reader sleeps instead. */
#define CONN_SPIN_CROWDED_NS (100u * 1000)

struct conn {
	struct conn *next, **prevp;    /* in gateway.conns, under gw->lock */
	struct gateway *gw;
	int fd;
	char peer[64];
	pthread_t reader;
	pthread_t writer;
	bool writer_started;

	/* set by the handshake, read-only afterwards */
	struct nbd_neg neg;
	struct nbd_tx_params tx;
	struct nbd_export *export;
	const struct nbd_backend_ops *ops;

	pthread_mutex_t lock;          /* everything below */
	pthread_cond_t slot_cv;        /* an io was released */
	pthread_cond_t out_cv;         /* the writer has work, or must stop */
	struct nbd_io *free_ios;
	unsigned inflight;             /* ios taken from free_ios: changed
	                                * under lock, read without by the
	                                * polling reader (atomics) */
	size_t buf_bytes;              /* buffer bytes of those */
	struct nbd_io *outq, **outq_tail; /* replies not fully sent */
	size_t out_sent;               /* bytes of outq's head already sent */
	bool writer_busy;              /* the writer owns the socket's output */
	bool writer_stop;
	bool dead;                     /* output broken: replies are dropped */

	/* the reader's */
	bool can_poll;                 /* transmission, with a pollable backend */
	bool polling;                  /* between the backend's poll_enter and
	                                * poll_leave */
	uint8_t *rbuf;
	size_t rpos, rlen;
	unsigned char *io_mem;
	size_t io_size;
};

void
nbd_log(const char *fmt, ...)
{
	char line[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	/* One write per line, so lines of many threads do not mix. */
	fprintf(stderr, "rumpnbd: %s\n", line);
}

/* ---- socket input ------------------------------------------------------ */

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void
conn_poll_start(struct conn *c)
{
	if (c->can_poll && !c->polling) {
		c->ops->poll_enter(c->gw->backend);
		c->polling = true;
	}
}

/* Before the reader may block on anything but the socket. */
static void
conn_poll_stop(struct conn *c)
{
	if (c->polling) {
		c->ops->poll_leave(c->gw->backend);
		c->polling = false;
	}
}

/*
 * Waits for input on the socket (or its end): spinning while polling
 * pays (see the top), then asleep.  0 or an errno.
 */
static int
conn_wait_input(struct conn *c)
{
	struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
	uint64_t last, now, budget;
	unsigned round = 0, busy, seen = UINT_MAX;
	int n;

	if (c->polling) {
		last = now_ns();
		for (;;) {
			/* Progress is ours or anyone's completing our
			 * requests: the backend's thread may be reaping
			 * still, until it sees that we poll. */
			n = (int)c->ops->poll(c->gw->backend);
			busy = __atomic_load_n(&c->inflight,
			                       __ATOMIC_RELAXED);
			if (n > 0 || busy != seen) {
				last = now_ns();
				seen = busy;
			}
			/* Ready, hung up or broken: recv tells which. */
			if (poll(&pfd, 1, 0) != 0)
				return 0;
			budget = busy > 0 ? CONN_SPIN_BUSY_NS :
			         CONN_SPIN_IDLE_NS;
			now = now_ns();
			if (now - last >= budget)
				break;
			if (++round % CONN_SPIN_ROUND == 0) {
				(void)sched_yield();
				if (now_ns() - now >= CONN_SPIN_CROWDED_NS)
					break;
			}
		}
		conn_poll_stop(c);
	}
	do
		n = poll(&pfd, 1, -1);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno;
	conn_poll_start(c);
	return 0;
}

/*
 * recv that retries on EINTR, waiting for input through conn_wait_input
 * in the transmission phase; 0 on EOF, -errno on error.
 */
static ssize_t
recv_some(struct conn *c, void *buf, size_t len, int flags)
{
	ssize_t n;
	int err;

	if (c->can_poll)
		flags |= MSG_DONTWAIT;
	for (;;) {
		/* A steady stream of requests must not hold back replies. */
		if (c->polling)
			(void)c->ops->poll(c->gw->backend);
		n = recv(c->fd, buf, len, flags);
		if (n >= 0)
			return n;
		if (errno == EINTR)
			continue;
		if (!c->can_poll || (errno != EAGAIN && errno != EWOULDBLOCK))
			return -errno;
		if ((err = conn_wait_input(c)) != 0)
			return -err;
	}
}

/*
 * Gets len bytes of the stream into dst (NULL: discards them), taking
 * what the receive buffer holds first and reading large remainders
 * straight into dst.  0, ECONNRESET on EOF, or an errno.
 */
static int
conn_read(struct conn *c, void *dst, size_t len)
{
	uint8_t *d = dst;

	while (len > 0) {
		size_t avail = c->rlen - c->rpos, n;
		ssize_t r;

		if (avail > 0) {
			n = avail < len ? avail : len;
			if (d != NULL) {
				memcpy(d, c->rbuf + c->rpos, n);
				d += n;
			}
			c->rpos += n;
			len -= n;
			continue;
		}
		if (d != NULL && len >= CONN_RBUF_SIZE / 2) {
			r = recv_some(c, d, len, MSG_WAITALL);
			if (r <= 0)
				return r == 0 ? ECONNRESET : (int)-r;
			d += r;
			len -= (size_t)r;
			continue;
		}
		c->rpos = c->rlen = 0;
		r = recv_some(c, c->rbuf, CONN_RBUF_SIZE, 0);
		if (r <= 0)
			return r == 0 ? ECONNRESET : (int)-r;
		c->rlen = (size_t)r;
	}
	return 0;
}

/* Blocking send of a whole buffer; 0 or an errno. */
static int
send_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* ---- handshake --------------------------------------------------------- */

static int
exp_list(void *ctx, int (*fn)(void *arg, const char *name), void *arg)
{
	struct conn *c = ctx;

	return c->ops->list(c->gw->backend, fn, arg);
}

static int
exp_lookup(void *ctx, const char *name, struct nbd_export_desc *d)
{
	struct conn *c = ctx;

	return c->ops->lookup(c->gw->backend, name, d);
}

static int
exp_open(void *ctx, const char *name, struct nbd_export_desc *d)
{
	struct conn *c = ctx;

	/* A GO that failed after opening (a device we cannot serve) may
	 * be followed by another. */
	if (c->export != NULL) {
		c->ops->close(c->export);
		c->export = NULL;
	}
	return c->ops->open(c->gw->backend, name, d, &c->export);
}

static const struct nbd_export_ops export_ops = {
	.list = exp_list,
	.lookup = exp_lookup,
	.open = exp_open,
};

/* 0 once in the transmission phase; else the connection ends. */
static int
conn_handshake(struct conn *c)
{
	uint8_t greet[NBD_GREETING_LEN], hdr[NBD_OPT_HDR_LEN], flags[4];
	uint8_t *data = NULL, *reply = NULL;
	struct nbd_obuf out;
	unsigned nopt;
	int err;

	nbd_greeting(greet);
	if ((err = send_all(c->fd, greet, sizeof(greet))) != 0)
		goto out;
	if ((err = conn_read(c, flags, sizeof(flags))) != 0)
		goto out;
	if (nbd_client_flags(&c->neg, flags) != 0) {
		nbd_log("%s: not a fixed newstyle client, hanging up",
		        c->peer);
		err = EPROTO;
		goto out;
	}
	data = malloc(NBD_OPT_DATA_MAX);
	reply = malloc(NBD_OPT_DATA_MAX);
	if (data == NULL || reply == NULL) {
		err = ENOMEM;
		goto out;
	}
	for (nopt = 0;; nopt++) {
		enum nbd_neg_action act;
		uint32_t opt, len;

		if (nopt == CONN_MAX_OPTIONS) {
			nbd_log("%s: too many options, hanging up", c->peer);
			err = EPROTO;
			goto out;
		}
		if ((err = conn_read(c, hdr, sizeof(hdr))) != 0)
			goto out;
		if (nbd_option_header(hdr, &opt, &len) != 0) {
			nbd_log("%s: bad option magic, hanging up", c->peer);
			err = EPROTO;
			goto out;
		}
		out = (struct nbd_obuf){ .p = reply, .cap = NBD_OPT_DATA_MAX };
		if (len > NBD_OPT_DATA_MAX) {
			if ((err = conn_read(c, NULL, len)) != 0)
				goto out;
			nbd_option_too_big(opt, &out);
			act = NBD_NEG_CONTINUE;
		} else {
			if ((err = conn_read(c, data, len)) != 0)
				goto out;
			act = nbd_option(&c->neg, &export_ops, c, opt, data,
			                 len, &out);
		}
		if (out.overflow) {
			nbd_log("%s: reply to option %u too large", c->peer,
			        opt);
			err = EPROTO;
			goto out;
		}
		if ((err = send_all(c->fd, out.p, out.len)) != 0)
			goto out;
		if (act == NBD_NEG_CLOSE) {
			err = ECONNABORTED;
			goto out;
		}
		if (act == NBD_NEG_TRANSMIT)
			break;
	}
	c->tx = (struct nbd_tx_params){
		.size = c->neg.export.size,
		.block_size = c->neg.export.block_size,
		.read_only = c->neg.export.read_only,
		.structured = c->neg.structured,
		.meta = c->neg.meta_base_allocation,
	};
	err = 0;
out:
	free(data);
	free(reply);
	return err;
}

/* ---- ios and replies --------------------------------------------------- */

static struct nbd_io *
io_at(struct conn *c, unsigned i)
{
	return (struct nbd_io *)(c->io_mem + (size_t)i * c->io_size);
}

/* Returns io and its buffer to the pool; under c->lock. */
static void
io_release(struct conn *c, struct nbd_io *io)
{
	if (io->buf != NULL) {
		c->ops->buf_free(c->export, io->buf);
		c->buf_bytes -= io->buf_len;
		io->buf = NULL;
	}
	io->next = c->free_ios;
	c->free_ios = io;
	__atomic_fetch_sub(&c->inflight, 1, __ATOMIC_RELAXED);
	pthread_cond_broadcast(&c->slot_cv);
}

/* Encodes the reply of a finished io into io->hdr. */
static void
io_build_reply(struct conn *c, struct nbd_io *io)
{
	uint32_t err = io->early_error;

	if (err == 0 && io->result < 0)
		err = nbd_errno((int)-io->result);
	__atomic_fetch_add(&c->gw->requests, 1, __ATOMIC_RELAXED);
	if (err == 0 && (io->nbd_type == NBD_CMD_READ ||
	                 io->nbd_type == NBD_CMD_WRITE))
		__atomic_fetch_add(&c->gw->bytes, io->len, __ATOMIC_RELAXED);
	io->reply_data = 0;
	if (err != 0) {
		if (c->tx.structured)
			io->reply_len = nbd_error_chunk(io->hdr, io->cookie,
			                                err);
		else
			io->reply_len = nbd_simple_reply(io->hdr, io->cookie,
			                                 err);
		return;
	}
	switch (io->nbd_type) {
	case NBD_CMD_READ:
		if (c->tx.structured)
			io->reply_len = nbd_read_chunk(io->hdr, io->cookie,
			                               io->offset, io->len);
		else
			io->reply_len = nbd_simple_reply(io->hdr, io->cookie,
			                                 0);
		io->reply_data = io->len;
		break;
	case NBD_CMD_BLOCK_STATUS: {
		uint32_t max = io->buf_len / sizeof(struct nbd_extent);
		uint32_t n = io->result > max ? max : (uint32_t)io->result;

		n = nbd_extents_encode(io->buf, n, io->len,
		                       io->nbd_flags & NBD_CMD_FLAG_REQ_ONE);
		io->reply_len = nbd_block_status_chunk(io->hdr, io->cookie, n);
		io->reply_data = 8 * n;
		break;
	}
	default:
		io->reply_len = nbd_simple_reply(io->hdr, io->cookie, 0);
		break;
	}
}

/*
 * iovecs for up to SEND_BATCH queued replies, the first skipping the
 * skip bytes already sent.  Returns the count of iovecs.
 */
static int
out_iov(struct nbd_io *io, size_t skip, struct iovec *iov)
{
	int niov = 0, n;

	for (n = 0; io != NULL && n < SEND_BATCH; io = io->next, n++) {
		size_t h = io->reply_len, d = io->reply_data;

		if (skip < h) {
			iov[niov++] = (struct iovec){ io->hdr + skip,
			                              h - skip };
			skip = 0;
		} else {
			skip -= h;
		}
		if (d > skip) {
			iov[niov++] = (struct iovec){
				(uint8_t *)io->buf + skip, d - skip };
		}
		skip = 0;
	}
	return niov;
}

/* Accounts sent bytes against the queue's head; under c->lock. */
static void
out_advance(struct conn *c, size_t sent)
{
	while (c->outq != NULL) {
		struct nbd_io *io = c->outq;
		size_t total = io->reply_len + io->reply_data;
		size_t left = total - c->out_sent;

		if (sent < left) {
			c->out_sent += sent;
			return;
		}
		sent -= left;
		c->out_sent = 0;
		c->outq = io->next;
		if (c->outq == NULL)
			c->outq_tail = &c->outq;
		io_release(c, io);
	}
}

/* The output broke: drop what is queued and make the reader stop. */
static void
out_fail(struct conn *c)
{
	c->dead = true;
	while (c->outq != NULL) {
		struct nbd_io *io = c->outq;

		c->outq = io->next;
		io_release(c, io);
	}
	c->outq_tail = &c->outq;
	c->out_sent = 0;
	shutdown(c->fd, SHUT_RDWR);
}

/* One sendmsg of the queue's head; bytes sent, or -errno. */
static ssize_t
out_send(struct conn *c, struct nbd_io *head, size_t skip, int flags)
{
	struct iovec iov[2 * SEND_BATCH];
	struct msghdr msg = { .msg_iov = iov };
	ssize_t n;

	msg.msg_iovlen = (size_t)out_iov(head, skip, iov);
	do
		n = sendmsg(c->fd, &msg, flags | MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : n;
}

/* Queues finished ios (all of c) and sends what the socket takes now. */
static void
conn_deliver(struct conn *c, struct nbd_io *first, struct nbd_io **last)
{
	pthread_mutex_lock(&c->lock);
	*c->outq_tail = first;
	c->outq_tail = &(*last)->next;
	*c->outq_tail = NULL;
	if (c->dead) {
		out_fail(c);
		goto out;
	}
	while (!c->writer_busy && c->outq != NULL) {
		ssize_t n = out_send(c, c->outq, c->out_sent, MSG_DONTWAIT);

		if (n == -EAGAIN || n == -EWOULDBLOCK) {
			/* Full socket: the writer waits for it instead. */
			c->writer_busy = true;
			pthread_cond_signal(&c->out_cv);
			break;
		}
		if (n < 0) {
			out_fail(c);
			break;
		}
		out_advance(c, (size_t)n);
	}
out:
	pthread_mutex_unlock(&c->lock);
}

void
conn_complete(void *ctx, struct nbd_io **ios, unsigned n)
{
	unsigned i = 0;

	(void)ctx;
	/* Consecutive ios of one connection go out in one batch. */
	while (i < n) {
		struct conn *c = ios[i]->owner;
		struct nbd_io *first = ios[i], **link = &first->next;
		struct nbd_io *last = first;

		io_build_reply(c, first);
		for (i++; i < n && ios[i]->owner == c; i++) {
			io_build_reply(c, ios[i]);
			*link = ios[i];
			last = ios[i];
			link = &last->next;
		}
		last->next = NULL;
		conn_deliver(c, first, &last);
	}
}

static void *
writer_main(void *arg)
{
	struct conn *c = arg;

	pthread_mutex_lock(&c->lock);
	for (;;) {
		struct nbd_io *head;
		size_t skip;
		ssize_t n;

		while (!c->writer_busy && !c->writer_stop)
			pthread_cond_wait(&c->out_cv, &c->lock);
		if (!c->writer_busy)
			break;
		if (c->outq == NULL || c->dead) {
			c->writer_busy = false;
			continue;
		}
		/*
		 * Others only append while we are busy, so the head we send
		 * stays put while the lock is dropped.
		 */
		head = c->outq;
		skip = c->out_sent;
		pthread_mutex_unlock(&c->lock);
		n = out_send(c, head, skip, 0);
		if (n == -EAGAIN)
			nbd_log("%s: not taking replies for %d s, hanging up",
			        c->peer, CONN_SEND_TIMEOUT_S);
		pthread_mutex_lock(&c->lock);
		if (n < 0)
			out_fail(c);
		else
			out_advance(c, (size_t)n);
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

/* ---- transmission ------------------------------------------------------ */

/* Takes a free io; NULL if the connection died meanwhile. */
static struct nbd_io *
io_get(struct conn *c)
{
	struct nbd_io *io;

	pthread_mutex_lock(&c->lock);
	if (c->free_ios == NULL && !c->dead && c->polling) {
		/* Our completions must not wait for us. */
		pthread_mutex_unlock(&c->lock);
		conn_poll_stop(c);
		pthread_mutex_lock(&c->lock);
	}
	while (c->free_ios == NULL && !c->dead)
		pthread_cond_wait(&c->slot_cv, &c->lock);
	io = c->dead ? NULL : c->free_ios;
	if (io != NULL) {
		c->free_ios = io->next;
		__atomic_fetch_add(&c->inflight, 1, __ATOMIC_RELAXED);
	}
	pthread_mutex_unlock(&c->lock);
	return io;
}

/* Frees an io the reader took but never submitted. */
static void
io_put(struct conn *c, struct nbd_io *io)
{
	pthread_mutex_lock(&c->lock);
	io_release(c, io);
	pthread_mutex_unlock(&c->lock);
}

/* A buffer of len bytes for io, waiting for room; ECONNRESET if dead. */
static int
io_buf(struct conn *c, struct nbd_io *io, uint32_t len)
{
	int err = 0;

	pthread_mutex_lock(&c->lock);
	for (;;) {
		if (c->dead) {
			err = ECONNRESET;
			break;
		}
		/* The reader's own io counts in inflight. */
		if (c->buf_bytes + len <= CONN_BUF_BUDGET || c->inflight == 1) {
			io->buf = c->ops->buf_alloc(c->export, len);
			if (io->buf != NULL)
				break;
		}
		if (c->polling) {
			/* Our completions must not wait for us. */
			pthread_mutex_unlock(&c->lock);
			conn_poll_stop(c);
			pthread_mutex_lock(&c->lock);
			continue;
		}
		if (c->inflight > 1) {
			pthread_cond_wait(&c->slot_cv, &c->lock);
		} else {
			/* Other connections hold the space: poll for it. */
			struct timespec ts;

			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 2 * 1000 * 1000;
			if (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
			pthread_cond_timedwait(&c->slot_cv, &c->lock, &ts);
		}
	}
	if (err == 0) {
		io->buf_len = len;
		c->buf_bytes += len;
	}
	pthread_mutex_unlock(&c->lock);
	return err;
}

static enum nbd_io_op
io_op(uint16_t type)
{
	switch (type) {
	case NBD_CMD_READ:
		return NBD_IO_READ;
	case NBD_CMD_WRITE:
		return NBD_IO_WRITE;
	case NBD_CMD_FLUSH:
		return NBD_IO_FLUSH;
	case NBD_CMD_TRIM:
		return NBD_IO_TRIM;
	case NBD_CMD_WRITE_ZEROES:
		return NBD_IO_ZERO;
	default:
		return NBD_IO_BLOCK_STATUS;
	}
}

/*
 * Reads and dispatches requests until the client leaves or breaks the
 * protocol.  Returns 0 on a clean NBD_CMD_DISC.
 */
static int
conn_transmit(struct conn *c)
{
	uint8_t raw[NBD_REQUEST_LEN];

	for (;;) {
		struct nbd_request rq;
		struct nbd_io *io;
		uint32_t payload;
		int verdict, err;

		if ((err = conn_read(c, raw, sizeof(raw))) != 0)
			return err;
		if (nbd_request_decode(raw, &rq) != 0) {
			nbd_log("%s: bad request magic, hanging up", c->peer);
			return EPROTO;
		}
		verdict = nbd_request_check(&c->tx, &rq, &payload);
		if (verdict == NBD_CHECK_FATAL) {
			nbd_log("%s: request type %u of %u bytes refused, "
			        "hanging up", c->peer, rq.type, rq.len);
			return EPROTO;
		}
		if (verdict == 0 && rq.type == NBD_CMD_DISC)
			return 0;

		if ((io = io_get(c)) == NULL)
			return ECONNRESET;
		io->owner = c;
		io->export = c->export;
		io->cookie = rq.cookie;
		io->nbd_type = rq.type;
		io->nbd_flags = rq.flags;
		io->offset = rq.offset;
		io->len = rq.len;
		io->op = io_op(rq.type);
		io->fua = rq.flags & NBD_CMD_FLAG_FUA;
		io->no_hole = rq.flags & NBD_CMD_FLAG_NO_HOLE;
		io->early_error = (uint32_t)verdict;
		io->result = 0;
		io->buf = NULL;
		io->buf_len = 0;
		io->next = NULL;

		if (verdict != 0) {
			if (payload > 0 &&
			    (err = conn_read(c, NULL, payload)) != 0) {
				io_put(c, io);
				return err;
			}
			conn_complete(c->gw, &io, 1);
			continue;
		}
		if (io->op == NBD_IO_READ || io->op == NBD_IO_WRITE ||
		    io->op == NBD_IO_BLOCK_STATUS) {
			uint32_t blen = io->op == NBD_IO_BLOCK_STATUS
			                ? BS_BUF_LEN : rq.len;

			if ((err = io_buf(c, io, blen)) != 0) {
				io_put(c, io);
				return err;
			}
		}
		if (payload > 0 && (err = conn_read(c, io->buf, payload)) != 0) {
			io_put(c, io);
			return err;
		}
		c->ops->submit(c->export, io);
	}
}

/* ---- life cycle -------------------------------------------------------- */

/* Lets go of the export: the last use of the backend. */
static void
conn_close_export(struct conn *c)
{
	if (c->export != NULL)
		c->ops->close(c->export);
	c->export = NULL;
}

static void
conn_free(struct conn *c)
{
	conn_close_export(c);
	if (c->fd >= 0)
		close(c->fd);
	pthread_cond_destroy(&c->out_cv);
	pthread_cond_destroy(&c->slot_cv);
	pthread_mutex_destroy(&c->lock);
	free(c->io_mem);
	free(c->rbuf);
	free(c);
}

static void
conn_unlink(struct conn *c)
{
	struct gateway *gw = c->gw;

	pthread_mutex_lock(&gw->lock);
	*c->prevp = c->next;
	if (c->next != NULL)
		c->next->prevp = c->prevp;
	gw->nconns--;
	pthread_cond_broadcast(&gw->idle);
	pthread_mutex_unlock(&gw->lock);
}

static void
set_sndbuf(int fd)
{
	int size = CONN_SNDBUF;

	/* Best effort: the default only costs wakeups. */
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
}

static void
set_timeouts(int fd, int recv_s, int send_s)
{
	struct timeval rtv = { .tv_sec = recv_s }, stv = { .tv_sec = send_s };

	/* Best effort: without them a stuck peer only costs its threads. */
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &rtv, sizeof(rtv));
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &stv, sizeof(stv));
}

static void *
reader_main(void *arg)
{
	struct conn *c = arg;
	int err;

	/* A silent client must not hold a thread for ever. */
	set_timeouts(c->fd, c->gw->handshake_timeout_s,
	             c->gw->handshake_timeout_s);
	err = conn_handshake(c);
	if (err != 0) {
		/* Clients that hang up early (nbdinfo --list does) are
		 * not news; protocol errors were logged where found. */
		if (err == EAGAIN)
			nbd_log("%s: handshake timed out", c->peer);
		else if (err != ECONNABORTED && err != EPROTO &&
		         err != ECONNRESET && err != EPIPE)
			nbd_log("%s: handshake ended: %s", c->peer,
			        strerror(err));
		goto out;
	}
	/*
	 * An idle client is fine; one that stops taking replies would pin
	 * its buffers in the shared area for good, so it is cut off.
	 */
	set_timeouts(c->fd, 0, CONN_SEND_TIMEOUT_S);
	set_sndbuf(c->fd);
	err = pthread_create(&c->writer, NULL, writer_main, c);
	if (err != 0) {
		nbd_log("%s: cannot start a writer: %s", c->peer,
		        strerror(err));
		goto out;
	}
	c->writer_started = true;

	c->can_poll = c->ops->poll != NULL;
	conn_poll_start(c);
	err = conn_transmit(c);
	conn_poll_stop(c);
	c->can_poll = false;
	if (err != 0 && err != ECONNRESET && err != EPROTO)
		nbd_log("%s: connection ended: %s", c->peer, strerror(err));

	/* Replies still due go out (or are dropped) before we go. */
	pthread_mutex_lock(&c->lock);
	while (c->inflight > 0)
		pthread_cond_wait(&c->slot_cv, &c->lock);
	c->writer_stop = true;
	pthread_cond_signal(&c->out_cv);
	pthread_mutex_unlock(&c->lock);
	pthread_join(c->writer, NULL);
out:
	/*
	 * The backend goes first: once unlinked, gateway_shutdown() may
	 * return and the backend be destroyed.  The socket stays open until
	 * then, as gateway_shutdown() may still shut it down.
	 */
	conn_close_export(c);
	conn_unlink(c);
	conn_free(c);
	return NULL;
}

int
conn_start(struct gateway *gw, int fd, const char *peer)
{
	struct conn *c;
	pthread_attr_t attr;
	unsigned i;
	int err;

	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		close(fd);
		return ENOMEM;
	}
	c->gw = gw;
	c->fd = fd;
	c->ops = gw->backend->ops;
	snprintf(c->peer, sizeof(c->peer), "%s", peer);
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->slot_cv, NULL);
	pthread_cond_init(&c->out_cv, NULL);
	c->outq_tail = &c->outq;
	c->io_size = (sizeof(struct nbd_io) + c->ops->io_priv +
	              _Alignof(max_align_t) - 1) &
	             ~(_Alignof(max_align_t) - 1);
	c->rbuf = malloc(CONN_RBUF_SIZE);
	c->io_mem = calloc(CONN_MAX_INFLIGHT, c->io_size);
	if (c->rbuf == NULL || c->io_mem == NULL) {
		conn_free(c);
		return ENOMEM;
	}
	for (i = CONN_MAX_INFLIGHT; i-- > 0;) {
		struct nbd_io *io = io_at(c, i);

		io->next = c->free_ios;
		c->free_ios = io;
	}

	pthread_mutex_lock(&gw->lock);
	if (gw->stopping || gw->nconns >= gw->max_conns) {
		err = gw->stopping ? ESHUTDOWN : EMFILE;
		pthread_mutex_unlock(&gw->lock);
		conn_free(c);
		return err;
	}
	c->next = gw->conns;
	if (c->next != NULL)
		c->next->prevp = &c->next;
	c->prevp = &gw->conns;
	gw->conns = c;
	gw->nconns++;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	err = pthread_create(&c->reader, &attr, reader_main, c);
	pthread_attr_destroy(&attr);
	if (err != 0) {
		*c->prevp = c->next;
		if (c->next != NULL)
			c->next->prevp = c->prevp;
		gw->nconns--;
		pthread_mutex_unlock(&gw->lock);
		conn_free(c);
		return err;
	}
	pthread_mutex_unlock(&gw->lock);
	return 0;
}

int
gateway_init(struct gateway *gw, struct nbd_backend *backend)
{
	memset(gw, 0, sizeof(*gw));
	gw->backend = backend;
	gw->max_conns = 256;
	gw->handshake_timeout_s = 30;
	pthread_mutex_init(&gw->lock, NULL);
	pthread_cond_init(&gw->idle, NULL);
	backend->complete = conn_complete;
	backend->complete_ctx = gw;
	return 0;
}

void
gateway_shutdown(struct gateway *gw)
{
	struct timespec deadline;
	struct conn *c;

	pthread_mutex_lock(&gw->lock);
	gw->stopping = true;
	/*
	 * Readers see EOF and wait for their replies to go out; clients
	 * that do not take them within the grace period are cut off.
	 */
	for (c = gw->conns; c != NULL; c = c->next)
		shutdown(c->fd, SHUT_RD);
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += 5;
	while (gw->nconns > 0) {
		if (pthread_cond_timedwait(&gw->idle, &gw->lock,
		                           &deadline) == ETIMEDOUT)
			break;
	}
	for (c = gw->conns; c != NULL; c = c->next)
		shutdown(c->fd, SHUT_RDWR);
	while (gw->nconns > 0)
		pthread_cond_wait(&gw->idle, &gw->lock);
	pthread_mutex_unlock(&gw->lock);
	pthread_cond_destroy(&gw->idle);
	pthread_mutex_destroy(&gw->lock);
}
