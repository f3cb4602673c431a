/*
 * librumpclient.  One session: a control socket, and a shared area with a
 * submission ring, a completion ring and buffers.
 *
 * Locks, always taken in this order:
 *   call_lock   control calls, and reconnect (which swaps descriptors);
 *   reaper role one thread at a time consumes the completion ring
 *               (reap_lock + reap_cond elect it);
 *   sq_lock     the submission ring, the slot table, the descriptors the
 *               submit path uses.
 * A request's user_data is its slot index and the slot's generation, so a
 * completion naming a free or recycled slot (a server bug or a hostile
 * server) is caught instead of completing somebody else's request.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "rump/client.h"
#include "rump/ipc.h"

#include "bufalloc.h"

#define DEFAULT_SQ_ENTRIES 256u
#define DEFAULT_BUF_SIZE (8u << 20)
#define DEFAULT_SPIN_NS 50000u
#define SETUP_TIMEOUT_MS 5000
#define BYE_WAIT_MS 1000
#define CQ_BATCH 32u
/*
 * Spinning checks the ring SPIN_ROUND times between looks at the clock and
 * yields the CPU after each round: when the peer shares our CPU (more
 * runnable threads than CPUs), spinning on would only delay it.
 */
#define SPIN_ROUND 32
/* The most a reaper spins for requests in flight: longer than a fast
 * disk's request (measured: a 1 MiB read at depth 4 takes 1.5 ms here, and
 * completions come in bursts more than 1 ms apart; a 1 ms budget slept
 * once every four requests and lost 10-15% against fio).  Adaptive: a
 * slower disk halves it until the thread sleeps. */
#define INFLIGHT_SPIN_NS 4000000u
#define SLOT_NONE UINT32_MAX

struct slot {
	struct rump_request *req;    /* NULL when free */
	uint32_t gen;
	uint32_t next_free;
};

struct rump_client {
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char client_name[RUMP_NAME_MAX];
	uint32_t want_kind;
	uint64_t spin_ns;

	int sock, sq_bell, cq_bell;
	uint64_t boot_id;
	uint32_t kind;
	char service_name[RUMP_NAME_MAX];

	/* The shared area; kept across reconnects. */
	bool rings;
	int memfd;
	unsigned char *area;
	struct rump_ring_setup setup;
	struct rump_area_layout layout;
	struct rump_ring sq, cq;
	struct bufalloc bufs;

	pthread_mutex_t call_lock;
	uint64_t next_reqid;
	unsigned char *msgbuf;        /* RUMP_MSG_MAX, under call_lock */

	pthread_mutex_t reap_lock;
	pthread_cond_t reap_cond;
	bool reaping;
	_Atomic unsigned waiters;
	struct rump_request **failbuf; /* nslots, the reaper's */
	uint64_t inflight_spin_ns;     /* the reaper's, see spin_for_completion */

	pthread_mutex_t sq_lock;
	struct slot *slots;
	uint32_t nslots, free_head;
	_Atomic unsigned in_flight;
	_Atomic bool broken;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void bell_ring(int fd)
{
	uint64_t one = 1;
	ssize_t n;

	/* EAGAIN: the counter is already nonzero, which is as good. */
	n = write(fd, &one, sizeof one);
	(void)n;
}

static void bell_drain(int fd)
{
	uint64_t v;
	ssize_t n;

	n = read(fd, &v, sizeof v);
	(void)n;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/*
 * The session is unusable: refuse new work, and get the server to end its
 * side (half-close: its EOF ends the session, and its shutdown then shows
 * us POLLHUP).  Wakes a sleeping reaper so it fails what is in flight.
 * Callers hold one of the locks that keep the descriptors in place.
 */
static void mark_broken(struct rump_client *c)
{
	atomic_store(&c->broken, true);
	if (c->sock >= 0)
		shutdown(c->sock, SHUT_WR);
	if (c->cq_bell >= 0)
		bell_ring(c->cq_bell);
}

/* ---- control calls ---------------------------------------------------- */

/*
 * Sends a request and reads its reply.  Returns 0 and the reply's status
 * in *status, or a transport error (and the session is then broken).
 */
static int call_locked(struct rump_client *c, uint16_t type, const void *req,
                       size_t req_len, const int *fds, unsigned nfds,
                       void *reply, size_t reply_cap, size_t *reply_len,
                       int timeout_ms, int *status)
{
	struct rump_msg_hdr h;
	size_t len, body_len;
	uint64_t reqid;
	int err;

	if (req_len > RUMP_MSG_MAX - sizeof h)
		return EMSGSIZE;
	reqid = ++c->next_reqid;
	rump_msg_init(&h, type, 0, reqid, 0, req_len);
	err = rump_msg_send(c->sock, &h, req, fds, nfds);
	if (err != 0)
		goto broken;
	if (timeout_ms >= 0) {
		struct pollfd pfd = { .fd = c->sock, .events = POLLIN };
		int n;

		do
			n = poll(&pfd, 1, timeout_ms);
		while (n < 0 && errno == EINTR);
		if (n <= 0) {
			err = n == 0 ? ETIMEDOUT : errno;
			goto broken;
		}
	}
	err = rump_msg_recv(c->sock, c->msgbuf, RUMP_MSG_MAX, &len, NULL, 0,
	                    NULL, false);
	if (err != 0)
		goto broken;
	memcpy(&h, c->msgbuf, sizeof h);
	/* One call at a time: the next record must be its reply. */
	if (!(h.flags & RUMP_MSGF_REPLY) || h.reqid != reqid ||
	    h.type != type) {
		err = EPROTO;
		goto broken;
	}
	body_len = len - sizeof h;
	if (body_len > reply_cap)
		body_len = reply_cap;
	if (body_len > 0)
		memcpy(reply, c->msgbuf + sizeof h, body_len);
	if (reply_len != NULL)
		*reply_len = body_len;
	*status = h.status;
	return 0;

broken:
	mark_broken(c);
	return err == EPIPE ? ECONNRESET : err;
}

int rump_client_call(struct rump_client *c, uint16_t type, const void *req,
                     size_t req_len, void *reply, size_t reply_cap,
                     size_t *reply_len)
{
	int err, status;

	if (type < RUMP_MSG_SERVICE || type > RUMP_MSG_TYPE_MAX)
		return EINVAL;
	if (reply_len != NULL)
		*reply_len = 0;
	pthread_mutex_lock(&c->call_lock);
	if (atomic_load(&c->broken))
		err = ECONNRESET;
	else
		err = call_locked(c, type, req, req_len, NULL, 0, reply,
		                  reply_cap, reply_len, -1, &status);
	pthread_mutex_unlock(&c->call_lock);
	return err != 0 ? err : status;
}

/* ---- session set-up --------------------------------------------------- */

static int hello(struct rump_client *c)
{
	struct rump_hello h;
	struct rump_hello_reply r;
	size_t len;
	int err, status;

	rump_hello_encode(&h, c->want_kind, c->client_name);
	err = call_locked(c, RUMP_MSG_HELLO, &h, sizeof h, NULL, 0, &r,
	                  sizeof r, &len, SETUP_TIMEOUT_MS, &status);
	if (err != 0)
		return err;
	/* A refusal still carries the server's version: say which. */
	err = rump_hello_reply_decode(&r, len, &r);
	if (status != 0)
		return err == EPROTONOSUPPORT ? err : status;
	if (err != 0)
		return err;
	if (c->want_kind != RUMP_SERVICE_ANY && r.service_kind != c->want_kind)
		return EPROTOTYPE;
	if (c->rings && (c->setup.sq_entries > r.max_ring_entries ||
	                 c->setup.cq_entries > r.max_ring_entries ||
	                 c->layout.total > r.max_area_size))
		return EINVAL;
	c->boot_id = r.boot_id;
	c->kind = r.service_kind;
	memcpy(c->service_name, r.service_name, RUMP_NAME_MAX);
	return 0;
}

static int rings_setup(struct rump_client *c)
{
	struct rump_area_hdr *hdr = (struct rump_area_hdr *)c->area;
	int fds[3];
	int err, status;

	c->sq_bell = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	c->cq_bell = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (c->sq_bell < 0 || c->cq_bell < 0)
		return errno;
	/* A fresh start on the same memory: no server reads it now. */
	memset(hdr, 0, sizeof *hdr);
	rump_ring_init_producer(&c->sq, &hdr->sq, c->area + c->layout.sq_off,
	                        c->layout.sq_entries, sizeof(struct rump_sqe));
	rump_ring_init_consumer(&c->cq, &hdr->cq, c->area + c->layout.cq_off,
	                        c->layout.cq_entries, sizeof(struct rump_cqe));
	fds[0] = c->memfd;
	fds[1] = c->sq_bell;
	fds[2] = c->cq_bell;
	err = call_locked(c, RUMP_MSG_RING_SETUP, &c->setup, sizeof c->setup,
	                  fds, 3, NULL, 0, NULL, SETUP_TIMEOUT_MS, &status);
	return err != 0 ? err : status;
}

/* Connects, says HELLO, sets up the rings.  Under call_lock (or alone). */
static int session_connect(struct rump_client *c)
{
	int err;

	err = rump_connect_unix(c->path, &c->sock);
	if (err != 0)
		return err;
	err = hello(c);
	if (err == 0 && c->rings)
		err = rings_setup(c);
	if (err != 0) {
		close_fd(&c->sock);
		close_fd(&c->sq_bell);
		close_fd(&c->cq_bell);
	}
	return err;
}

static int area_create(struct rump_client *c)
{
	const unsigned seals = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;
	void *area;

	c->memfd = memfd_create("rumpclient", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (c->memfd < 0)
		return errno;
	/* The server insists on F_SEAL_SHRINK: a shrunk file under its
	 * mapping would fault it. */
	if (ftruncate(c->memfd, (off_t)c->layout.total) != 0 ||
	    fcntl(c->memfd, F_ADD_SEALS, seals) != 0)
		return errno;
	area = mmap(NULL, c->layout.total, PROT_READ | PROT_WRITE, MAP_SHARED,
	            c->memfd, 0);
	if (area == MAP_FAILED)
		return errno;
	/*
	 * Huge pages where the host allows them for shared memory
	 * (transparent_hugepage/shmem_enabled "advise"): a 1 MiB direct
	 * transfer into 4 KiB pages needs 256 segments, more than a
	 * virtio disk takes in one request; measured, that halves large
	 * reads.  Advice only: refused, the area works the same.
	 */
	(void)madvise(area, c->layout.total, MADV_HUGEPAGE);
	c->area = area;
	return bufalloc_init(&c->bufs, c->layout.buf_size);
}

static int opts_apply(struct rump_client *c,
                      const struct rump_client_opts *opts)
{
	struct rump_client_opts o = { .version = RUMP_CLIENT_OPTS_VERSION };
	int err;

	if (opts != NULL) {
		if (opts->version != RUMP_CLIENT_OPTS_VERSION)
			return EINVAL;
		o = *opts;
	}
	c->want_kind = o.service_kind;
	c->spin_ns = o.spin_ns != 0 ? o.spin_ns : DEFAULT_SPIN_NS;
	c->inflight_spin_ns = INFLIGHT_SPIN_NS;
	memset(c->client_name, 0, sizeof c->client_name);
	if (o.client_name != NULL)
		strncpy(c->client_name, o.client_name,
		        sizeof c->client_name - 1);
	c->rings = !o.no_rings && o.sq_entries != 1;
	if (!c->rings)
		return 0;
	c->setup.sq_entries = o.sq_entries != 0 ? o.sq_entries
	                                        : DEFAULT_SQ_ENTRIES;
	c->setup.cq_entries = o.cq_entries;
	if (c->setup.cq_entries == 0) {
		c->setup.cq_entries = 2 * c->setup.sq_entries;
		if (c->setup.cq_entries > RUMP_RING_MAX_ENTRIES)
			c->setup.cq_entries = c->setup.sq_entries;
	}
	c->setup.buf_size = o.buf_size != 0 ? o.buf_size : DEFAULT_BUF_SIZE;
	err = rump_area_layout(&c->setup, &c->layout);
	if (err != 0)
		return err;
	c->nslots = c->layout.cq_entries;
	return 0;
}

static int slots_create(struct rump_client *c)
{
	c->slots = calloc(c->nslots, sizeof *c->slots);
	c->failbuf = calloc(c->nslots, sizeof *c->failbuf);
	if (c->slots == NULL || c->failbuf == NULL)
		return ENOMEM;
	for (uint32_t i = 0; i < c->nslots; i++)
		c->slots[i].next_free = i + 1 < c->nslots ? i + 1 : SLOT_NONE;
	c->free_head = 0;
	return 0;
}

static void client_free(struct rump_client *c)
{
	close_fd(&c->sock);
	close_fd(&c->sq_bell);
	close_fd(&c->cq_bell);
	if (c->area != NULL) {
		munmap(c->area, c->layout.total);
		bufalloc_fini(&c->bufs);
	}
	close_fd(&c->memfd);
	pthread_mutex_destroy(&c->call_lock);
	pthread_mutex_destroy(&c->reap_lock);
	pthread_cond_destroy(&c->reap_cond);
	pthread_mutex_destroy(&c->sq_lock);
	free(c->slots);
	free(c->failbuf);
	free(c->msgbuf);
	free(c);
}

int rump_client_connect(const char *name, const struct rump_client_opts *opts,
                        struct rump_client **clientp)
{
	struct rump_client *c;
	int err;

	if (name == NULL)
		return EINVAL;
	c = calloc(1, sizeof *c);
	if (c == NULL)
		return ENOMEM;
	c->sock = c->sq_bell = c->cq_bell = c->memfd = -1;
	pthread_mutex_init(&c->call_lock, NULL);
	pthread_mutex_init(&c->reap_lock, NULL);
	pthread_cond_init(&c->reap_cond, NULL);
	pthread_mutex_init(&c->sq_lock, NULL);

	if (strchr(name, '/') != NULL) {
		if (strlen(name) >= sizeof c->path) {
			err = ENAMETOOLONG;
			goto fail;
		}
		strcpy(c->path, name);
	} else {
		err = rump_service_path(name, c->path, sizeof c->path);
		if (err != 0)
			goto fail;
	}
	err = opts_apply(c, opts);
	if (err != 0)
		goto fail;
	c->msgbuf = malloc(RUMP_MSG_MAX);
	if (c->msgbuf == NULL) {
		err = ENOMEM;
		goto fail;
	}
	if (c->rings) {
		err = slots_create(c);
		if (err == 0)
			err = area_create(c);
		if (err != 0)
			goto fail;
	}
	err = session_connect(c);
	if (err != 0)
		goto fail;
	*clientp = c;
	return 0;

fail:
	client_free(c);
	return err;
}

uint64_t rump_client_boot_id(const struct rump_client *c)
{
	return c->boot_id;
}

uint32_t rump_client_service_kind(const struct rump_client *c)
{
	return c->kind;
}

const char *rump_client_service_name(const struct rump_client *c)
{
	return c->service_name;
}

/* ---- buffers ---------------------------------------------------------- */

void *rump_client_buf_alloc(struct rump_client *c, size_t len)
{
	uint64_t off;

	if (!c->rings || bufalloc_alloc(&c->bufs, len, &off) != 0)
		return NULL;
	return c->area + c->layout.buf_off + off;
}

void rump_client_buf_free(struct rump_client *c, void *buf)
{
	if (buf == NULL || !c->rings)
		return;
	bufalloc_free(&c->bufs, rump_client_buf_offset(c, buf));
}

uint64_t rump_client_buf_offset(const struct rump_client *c, const void *buf)
{
	return (uint64_t)((const unsigned char *)buf -
	                  (c->area + c->layout.buf_off));
}

/* ---- requests --------------------------------------------------------- */

int rump_client_submit(struct rump_client *c, struct rump_request *req)
{
	struct slot *sl;
	uint32_t i;
	int err = 0;

	if (!c->rings)
		return EINVAL;
	pthread_mutex_lock(&c->sq_lock);
	if (atomic_load_explicit(&c->broken, memory_order_relaxed)) {
		err = ECONNRESET;
		goto out;
	}
	i = c->free_head;
	if (i == SLOT_NONE) {
		err = EAGAIN;
		goto out;
	}
	sl = &c->slots[i];
	req->sqe.user_data = (uint64_t)i | (uint64_t)sl->gen << 32;
	err = rump_ring_push(&c->sq, &req->sqe);
	if (err != 0) {
		if (err == EPROTO) {
			mark_broken(c);
			err = ECONNRESET;
		}
		goto out;
	}
	c->free_head = sl->next_free;
	sl->req = req;
	req->slot_ = i;
	atomic_fetch_add_explicit(&c->in_flight, 1, memory_order_relaxed);
	if (rump_ring_publish(&c->sq))
		bell_ring(c->sq_bell);
out:
	pthread_mutex_unlock(&c->sq_lock);
	return err;
}

unsigned rump_client_in_flight(const struct rump_client *c)
{
	return atomic_load_explicit(&c->in_flight, memory_order_relaxed);
}

static void wake_waiters(struct rump_client *c)
{
	if (atomic_load(&c->waiters) == 0)
		return;
	pthread_mutex_lock(&c->reap_lock);
	pthread_cond_broadcast(&c->reap_cond);
	pthread_mutex_unlock(&c->reap_lock);
}

/* Completes everything in flight with -ECONNRESET and returns how many.
 * The reaper's. */
static unsigned fail_all(struct rump_client *c)
{
	unsigned n = 0;

	pthread_mutex_lock(&c->sq_lock);
	for (uint32_t i = 0; i < c->nslots; i++) {
		struct slot *sl = &c->slots[i];

		if (sl->req == NULL)
			continue;
		c->failbuf[n++] = sl->req;
		sl->req = NULL;
		sl->gen++;
		sl->next_free = c->free_head;
		c->free_head = i;
	}
	atomic_store(&c->in_flight, 0);
	pthread_mutex_unlock(&c->sq_lock);
	for (unsigned i = 0; i < n; i++)
		c->failbuf[i]->done(c->failbuf[i], -ECONNRESET, 0);
	wake_waiters(c);
	return n;
}

/*
 * Consumes one batch of completions and runs their callbacks.  Returns
 * the number run, or -EPROTO (after running the valid ones) when the
 * server broke the ring or named a request that is not in flight.
 */
static int reap_batch(struct rump_client *c)
{
	struct rump_cqe cqe[CQ_BATCH];
	struct rump_request *req[CQ_BATCH];
	unsigned n = 0, ok = 0;
	int err = 0;

	while (n < CQ_BATCH) {
		err = rump_ring_pop(&c->cq, &cqe[n]);
		if (err != 0)
			break;
		n++;
	}
	if (err == EAGAIN)
		err = 0;
	if (n == 0)
		return err != 0 ? -EPROTO : 0;
	/* Hand the slots back before the requests: a server must never
	 * see more requests than room for their completions. */
	rump_ring_release(&c->cq);

	pthread_mutex_lock(&c->sq_lock);
	for (; ok < n; ok++) {
		uint64_t ud = cqe[ok].user_data;
		uint32_t i = (uint32_t)ud;
		struct slot *sl;

		if (i >= c->nslots)
			break;
		sl = &c->slots[i];
		if (sl->req == NULL || sl->gen != (uint32_t)(ud >> 32))
			break;
		req[ok] = sl->req;
		sl->req = NULL;
		sl->gen++;
		sl->next_free = c->free_head;
		c->free_head = i;
	}
	atomic_fetch_sub_explicit(&c->in_flight, ok, memory_order_relaxed);
	pthread_mutex_unlock(&c->sq_lock);

	for (unsigned i = 0; i < ok; i++)
		req[i]->done(req[i], cqe[i].result, cqe[i].aux);
	if (ok > 0)
		wake_waiters(c);
	if (ok < n || err != 0)
		return -EPROTO;
	return (int)ok;
}

static bool cq_pending(struct rump_client *c)
{
	return rump_ring_ready(&c->cq) != 0 ||
	       atomic_load_explicit(&c->broken, memory_order_relaxed);
}

/*
 * Spins until a completion or the deadline; true if one came.  With
 * requests in flight a completion is coming, so the spin may last up to
 * inflight_spin_ns: doubled each time a completion came past the plain
 * budget, halved each time none came in time (a slow disk, or network
 * requests that wait for traffic), so that waiting long ends in sleep.
 */
static bool spin_for_completion(struct rump_client *c, uint64_t deadline)
{
	bool waiting = atomic_load_explicit(&c->in_flight,
	                                    memory_order_relaxed) > 0;
	uint64_t start = now_ns(), now, spin = c->spin_ns, end;

	if (waiting && c->inflight_spin_ns > spin)
		spin = c->inflight_spin_ns;
	end = start + spin < deadline ? start + spin : deadline;
	for (;;) {
		for (int i = 0; i < SPIN_ROUND; i++) {
			if (cq_pending(c))
				goto came;
			rump_cpu_relax();
		}
		now = now_ns();
		if (now >= end)
			break;
		sched_yield();
	}
	if (waiting && now < deadline && c->inflight_spin_ns > c->spin_ns)
		c->inflight_spin_ns /= 2;
	return false;
came:
	if (waiting && c->inflight_spin_ns < INFLIGHT_SPIN_NS &&
	    now_ns() - start > c->spin_ns)
		c->inflight_spin_ns *= 2;
	return true;
}

/* Sleeps on the completion doorbell, noticing a dead server. */
static void sleep_for_completion(struct rump_client *c, uint64_t deadline)
{
	/* POLLHUP comes whatever events say; the socket's data is the
	 * calling thread's, so ask for nothing else. */
	struct pollfd pfd[2] = {
		{ .fd = c->cq_bell, .events = POLLIN },
		{ .fd = c->sock, .events = 0 },
	};
	int timeout_ms = -1;
	uint64_t now;

	if (rump_ring_prepare_wait(&c->cq))
		return;
	if (deadline != UINT64_MAX) {
		now = now_ns();
		timeout_ms = now >= deadline ? 0
		             : (int)((deadline - now + 999999) / 1000000);
	}
	if (poll(pfd, 2, timeout_ms) > 0) {
		if (pfd[0].revents & POLLIN)
			bell_drain(c->cq_bell);
		if (pfd[1].revents & (POLLHUP | POLLERR | POLLNVAL))
			atomic_store(&c->broken, true);
	}
	rump_ring_end_wait(&c->cq);
}

/*
 * The reaper's loop: runs completions until until is set (exec) or, with
 * until NULL, until at least one ran or timeout_ns passed.
 */
static int reap_run(struct rump_client *c, uint64_t timeout_ns,
                    _Atomic bool *until)
{
	uint64_t deadline = timeout_ns == UINT64_MAX ? UINT64_MAX
	                    : now_ns() + timeout_ns;
	int total = 0;

	for (;;) {
		int n = reap_batch(c);

		if (n < 0) {
			mark_broken(c);
			fail_all(c);
			return n;
		}
		total += n;
		if (until != NULL ? atomic_load(until) : total > 0)
			return total;
		if (atomic_load(&c->broken)) {
			total += (int)fail_all(c);
			return total > 0 ? total : -ECONNRESET;
		}
		if (timeout_ns == 0 || now_ns() >= deadline)
			return total;
		if (spin_for_completion(c, deadline))
			continue;
		sleep_for_completion(c, deadline);
	}
}

/* Becomes the reaper, waiting until deadline; false if it did not. */
static bool reaper_enter(struct rump_client *c, uint64_t deadline,
                         _Atomic bool *until)
{
	bool got = false;

	pthread_mutex_lock(&c->reap_lock);
	atomic_fetch_add(&c->waiters, 1);
	while (c->reaping && !(until != NULL && atomic_load(until))) {
		if (deadline == UINT64_MAX) {
			pthread_cond_wait(&c->reap_cond, &c->reap_lock);
		} else {
			struct timespec ts;
			uint64_t now = now_ns();

			if (now >= deadline)
				break;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += (time_t)((deadline - now) / 1000000000u);
			ts.tv_nsec += (long)((deadline - now) % 1000000000u);
			if (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
			pthread_cond_timedwait(&c->reap_cond, &c->reap_lock,
			                       &ts);
		}
	}
	atomic_fetch_sub(&c->waiters, 1);
	if (!c->reaping && !(until != NULL && atomic_load(until))) {
		c->reaping = true;
		got = true;
	}
	pthread_mutex_unlock(&c->reap_lock);
	return got;
}

static void reaper_leave(struct rump_client *c)
{
	pthread_mutex_lock(&c->reap_lock);
	c->reaping = false;
	/* One of the waiters takes over. */
	pthread_cond_broadcast(&c->reap_cond);
	pthread_mutex_unlock(&c->reap_lock);
}

int rump_client_reap(struct rump_client *c, uint64_t timeout_ns)
{
	uint64_t deadline = timeout_ns == UINT64_MAX ? UINT64_MAX
	                    : now_ns() + timeout_ns;
	int n;

	if (!c->rings)
		return -EINVAL;
	if (!reaper_enter(c, deadline, NULL))
		return 0;
	if (deadline != UINT64_MAX) {
		uint64_t now = now_ns();

		timeout_ns = now >= deadline ? 0 : deadline - now;
	}
	n = reap_run(c, timeout_ns, NULL);
	reaper_leave(c);
	return n;
}

struct exec_call {
	struct rump_request req;
	_Atomic bool done;
	int64_t result;
	uint64_t aux;
};

static void exec_done(struct rump_request *req, int64_t result, uint64_t aux)
{
	struct exec_call *call = (struct exec_call *)req;

	call->result = result;
	call->aux = aux;
	atomic_store(&call->done, true);
}

int64_t rump_client_exec(struct rump_client *c, struct rump_sqe *sqe,
                         uint64_t *aux)
{
	struct exec_call call = { .req = { .sqe = *sqe, .done = exec_done } };
	int err;

	atomic_init(&call.done, false);
	while ((err = rump_client_submit(c, &call.req)) == EAGAIN) {
		int n = rump_client_reap(c, 1000000);

		if (n < 0)
			return n;
	}
	if (err != 0)
		return -err;
	while (!atomic_load(&call.done)) {
		if (!reaper_enter(c, UINT64_MAX, &call.done))
			continue;
		reap_run(c, UINT64_MAX, &call.done);
		reaper_leave(c);
	}
	if (aux != NULL)
		*aux = call.aux;
	return call.result;
}

/* ---- restart ---------------------------------------------------------- */

/* Connection failures worth retrying while a server restarts. */
static bool retryable(int err)
{
	return err == ENOENT || err == ECONNREFUSED || err == ECONNRESET ||
	       err == EPIPE || err == ETIMEDOUT || err == EAGAIN;
}

/*
 * Ends the old session and waits until the server has let go of the rings:
 * it marks a session dead before shutting its socket, so its shutdown (our
 * POLLHUP) means no more completions land in the area we are about to
 * reset.  A server that never answers is given BYE_WAIT_MS.
 */
static void session_drop(struct rump_client *c)
{
	struct pollfd pfd = { .fd = c->sock, .events = 0 };

	if (c->sock < 0)
		return;
	shutdown(c->sock, SHUT_WR);
	while (poll(&pfd, 1, BYE_WAIT_MS) < 0 && errno == EINTR)
		;
	pthread_mutex_lock(&c->sq_lock);
	close_fd(&c->sock);
	close_fd(&c->sq_bell);
	close_fd(&c->cq_bell);
	pthread_mutex_unlock(&c->sq_lock);
}

int rump_client_reconnect(struct rump_client *c, int timeout_ms)
{
	uint64_t wait_ms = timeout_ms > 0 ? (uint64_t)timeout_ms : 0;
	uint64_t deadline = now_ns() + wait_ms * 1000000u;
	unsigned backoff_ms = 1;
	int err;

	pthread_mutex_lock(&c->call_lock);
	/* Waiting forever with no flag to watch, this always succeeds. */
	reaper_enter(c, UINT64_MAX, NULL);
	atomic_store(&c->broken, true);
	session_drop(c);
	if (c->rings)
		fail_all(c);
	for (;;) {
		struct timespec ts;
		uint64_t now;

		err = session_connect(c);
		if (err == 0 || !retryable(err))
			break;
		now = now_ns();
		if (now >= deadline) {
			err = ETIMEDOUT;
			break;
		}
		if (now + backoff_ms * 1000000ull > deadline)
			backoff_ms = 1 + (unsigned)((deadline - now) /
			                            1000000u);
		ts.tv_sec = backoff_ms / 1000;
		ts.tv_nsec = (long)(backoff_ms % 1000) * 1000000;
		nanosleep(&ts, NULL);
		backoff_ms = backoff_ms * 2 > 100 ? 100 : backoff_ms * 2;
	}
	if (err == 0) {
		pthread_mutex_lock(&c->sq_lock);
		atomic_store(&c->broken, false);
		pthread_mutex_unlock(&c->sq_lock);
	}
	reaper_leave(c);
	pthread_mutex_unlock(&c->call_lock);
	return err;
}

void rump_client_close(struct rump_client *c)
{
	if (c == NULL)
		return;
	atomic_store(&c->broken, true);
	if (c->sock >= 0)
		shutdown(c->sock, SHUT_RDWR);
	if (c->rings)
		fail_all(c);
	client_free(c);
}
