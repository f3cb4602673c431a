/*
 * The server framework: an accept loop and one thread per session.
 *
 * A session thread reads control messages and serves the session's
 * submission ring.  It polls the ring for a while after the last request
 * (spin_ns, shortened while the client stays idle) and only then arms the
 * doorbell and sleeps, because a wakeup through the scheduler costs far
 * more than a request.  A service with a poll hook also completes its
 * requests from that loop, and the thread then keeps polling while the
 * session has requests in flight (for as long as completions keep coming
 * in time, see spin_for_requests): the completion and the client's next
 * request both find it awake.
 *
 * Lifetime: a session holds one reference for its thread and one per
 * request in flight.  When the thread ends it marks the session dead (under
 * the completion lock, so no completion writes the rings afterwards) and
 * shuts the socket down so the client notices; the last reference closes
 * the service's session and frees everything.
 *
 * Admission: a request is popped only while the requests in flight plus
 * the completions the client has not consumed yet are fewer than the
 * completion ring holds, so rump_session_complete() always finds room.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "rump/ipc.h"
#include "rump/server.h"

#define HELLO_TIMEOUT_MS 5000
#define DEFAULT_SPIN_NS 50000u
#define MIN_SPIN_NS 2000u
/* The most a session waits polling for a completion: longer than a fast
 * disk's request (measured: a 1 MiB read at depth 4 takes 1.5 ms here, and
 * completions come in bursts more than 1 ms apart; a 1 ms budget slept
 * once every four requests and lost 10-15% against fio).  Adaptive: a
 * slower disk halves it until the thread sleeps. */
#define INFLIGHT_SPIN_NS 4000000u
#define DEFAULT_MAX_SESSIONS 256u
/* Ring batches between looks at the control socket while busy. */
#define CONTROL_CHECK_EVERY 32u
/* How long to nap when the client's full completion ring holds us up. */
#define ADMISSION_NAP_MS 1
#define SQ_BATCH 32u
/*
 * Spinning checks the ring SPIN_ROUND times between looks at the clock and
 * yields the CPU after each round: when the peer shares our CPU (more
 * runnable threads than CPUs), spinning on would only delay it.
 */
#define SPIN_ROUND 32

struct rump_server {
	const struct rump_service *svc;
	int listen_fd;
	char *path;                   /* set if we made the socket file */
	int stop_fd;                  /* eventfd: rump_server_stop() */
	uint64_t boot_id;
	uint64_t spin_ns;
	unsigned max_sessions;

	pthread_mutex_t lock;         /* the session list */
	pthread_cond_t idle;          /* nsessions dropped */
	struct rump_session *sessions;
	unsigned nsessions;

	_Atomic uint64_t sessions_total, requests, control_msgs,
	        protocol_errors;
};

struct rump_session {
	struct rump_server *srv;
	struct rump_session *prev, *next;
	int sock;
	pid_t pid;
	uid_t uid;
	gid_t gid;
	char client_name[RUMP_NAME_MAX];
	void *ctx;
	bool opened;                  /* session_open succeeded */

	/* Rings, once RING_SETUP has arrived. */
	bool rings;
	int memfd, sq_bell, cq_bell;
	unsigned char *area;
	struct rump_area_layout layout;
	struct rump_ring sq;          /* consumed by the session thread only */
	struct rump_ring cq;          /* produced under cq_lock */
	pthread_mutex_t cq_lock;
	bool dead;                    /* under cq_lock */

	_Atomic uint32_t in_flight;
	_Atomic uint32_t refs;
	_Atomic bool broken;          /* a completion met a hostile CQ */

	uint64_t spin_ns;             /* current, adapted */
	uint64_t inflight_spin_ns;    /* current, adapted */
	unsigned idle_spins;
	bool polling;                 /* the service's poll hook is active */

	unsigned char in[RUMP_MSG_MAX];
	unsigned char out[RUMP_MSG_MAX];
};

static void slog(const struct rump_session *s, const char *what, int err)
{
	fprintf(stderr, "rump_server %s: session pid %d (%s): %s: %s\n",
	        s->srv->svc->name, (int)s->pid, s->client_name, what,
	        strerror(err));
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- session lifetime ------------------------------------------------- */

static void session_free(struct rump_session *s)
{
	struct rump_server *srv = s->srv;

	if (s->opened && srv->svc->session_close != NULL)
		srv->svc->session_close(s, s->ctx);
	if (s->area != NULL)
		munmap(s->area, s->layout.total);
	if (s->memfd >= 0)
		close(s->memfd);
	if (s->sq_bell >= 0)
		close(s->sq_bell);
	if (s->cq_bell >= 0)
		close(s->cq_bell);
	close(s->sock);
	pthread_mutex_destroy(&s->cq_lock);

	pthread_mutex_lock(&srv->lock);
	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		srv->sessions = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	srv->nsessions--;
	pthread_cond_broadcast(&srv->idle);
	pthread_mutex_unlock(&srv->lock);
	free(s);
}

static void session_unref(struct rump_session *s)
{
	if (atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) == 1)
		session_free(s);
}

/* No completion touches the rings after this; the client sees EOF. */
static void session_end(struct rump_session *s)
{
	pthread_mutex_lock(&s->cq_lock);
	s->dead = true;
	pthread_mutex_unlock(&s->cq_lock);
	shutdown(s->sock, SHUT_RDWR);
}

/* ---- the service's side ----------------------------------------------- */

void *rump_session_buf(struct rump_session *s, uint64_t off, uint64_t len)
{
	if (!s->rings || !rump_area_buf_ok(&s->layout, off, len))
		return NULL;
	return s->area + s->layout.buf_off + off;
}

static void bell_ring(int fd)
{
	uint64_t one = 1;
	ssize_t n;

	/* EAGAIN means the counter is already nonzero: rung anyway. */
	n = write(fd, &one, sizeof one);
	(void)n;
}

void rump_session_complete(struct rump_session *s, uint64_t user_data,
                           int64_t result, uint64_t aux)
{
	struct rump_cqe cqe = {
		.user_data = user_data, .result = result, .aux = aux,
	};
	bool ring = false;

	pthread_mutex_lock(&s->cq_lock);
	/* With the push, under the lock: serve_ring() must never count a
	 * request both in flight and in the completion ring. */
	atomic_fetch_sub_explicit(&s->in_flight, 1, memory_order_relaxed);
	if (!s->dead) {
		if (rump_ring_push(&s->cq, &cqe) == 0) {
			ring = rump_ring_publish(&s->cq);
		} else {
			/* Admission guarantees room, so the client moved its
			 * head where it cannot be. */
			atomic_store(&s->broken, true);
			shutdown(s->sock, SHUT_RDWR);
		}
	}
	pthread_mutex_unlock(&s->cq_lock);
	if (ring)
		bell_ring(s->cq_bell);
	session_unref(s);
}

void *rump_session_ctx(struct rump_session *s)
{
	return s->ctx;
}

void *rump_session_service_ctx(struct rump_session *s)
{
	return s->srv->svc->ctx;
}

void rump_session_peer(struct rump_session *s, int *pid, unsigned *uid,
                       unsigned *gid)
{
	if (pid != NULL)
		*pid = s->pid;
	if (uid != NULL)
		*uid = s->uid;
	if (gid != NULL)
		*gid = s->gid;
}

/* ---- control messages ------------------------------------------------- */

static int send_reply(struct rump_session *s, const struct rump_msg_hdr *req,
                      int status, const void *body, size_t len)
{
	struct rump_msg_hdr h;

	rump_msg_init(&h, req->type, RUMP_MSGF_REPLY, req->reqid, status, len);
	return rump_msg_send(s->sock, &h, body, NULL, 0);
}

/* Waits for and answers the HELLO; 0 means the session is open. */
static int session_hello(struct rump_session *s)
{
	const struct rump_service *svc = s->srv->svc;
	struct rump_msg_hdr h;
	struct rump_hello hello;
	struct rump_hello_reply reply;
	struct pollfd pfd = { .fd = s->sock, .events = POLLIN };
	size_t len;
	int err, status, n;

	do
		n = poll(&pfd, 1, HELLO_TIMEOUT_MS);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno;
	if (n == 0)
		return ETIMEDOUT;
	err = rump_msg_recv(s->sock, s->in, sizeof s->in, &len, NULL, 0, NULL,
	                    false);
	if (err != 0)
		return err;
	memcpy(&h, s->in, sizeof h);
	if (h.type != RUMP_MSG_HELLO || (h.flags & RUMP_MSGF_REPLY))
		return EPROTO;
	status = rump_hello_decode(s->in + sizeof h, len - sizeof h, &hello);
	if (status == EPROTO)
		return EPROTO;
	if (status == 0) {
		memcpy(s->client_name, hello.client_name, RUMP_NAME_MAX);
		if (hello.service_kind != RUMP_SERVICE_ANY &&
		    hello.service_kind != svc->kind)
			status = EPROTOTYPE;
	}
	if (status == 0 && svc->session_open != NULL) {
		status = svc->session_open(s, &s->ctx);
		if (status < 0 || status == EPROTO)
			status = EPERM;
	}
	/* session_close pairs with a successful open only. */
	if (status == 0)
		s->opened = true;
	/* The reply goes even on refusal: it carries our version. */
	rump_hello_reply_encode(&reply, svc->kind, s->srv->boot_id, svc->name);
	err = send_reply(s, &h, status, &reply, sizeof reply);
	if (err != 0)
		return err;
	return status;
}

static int ring_setup(struct rump_session *s, const void *body, size_t len,
                      int *fds, unsigned nfds)
{
	struct rump_ring_setup setup;
	struct rump_area_layout l;
	struct rump_area_hdr *hdr;
	struct stat st;
	void *area;
	int seals;

	if (nfds != 3 || len != sizeof setup)
		return EPROTO;
	if (s->rings)
		return EALREADY;
	memcpy(&setup, body, sizeof setup);
	if (rump_area_layout(&setup, &l) != 0)
		return EINVAL;
	/* A client shrinking the memfd under our mapping would make us
	 * fault, so it must be sealed against that. */
	seals = fcntl(fds[0], F_GET_SEALS);
	if (seals < 0 || !(seals & F_SEAL_SHRINK))
		return EPERM;
	if (fstat(fds[0], &st) != 0)
		return errno;
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size < l.total)
		return EINVAL;
	/* Doorbells must never block us, whatever the client passed. */
	for (unsigned i = 1; i < 3; i++) {
		int fl = fcntl(fds[i], F_GETFL);

		if (fl < 0 || fcntl(fds[i], F_SETFL, fl | O_NONBLOCK) != 0)
			return EINVAL;
	}
	area = mmap(NULL, l.total, PROT_READ | PROT_WRITE, MAP_SHARED, fds[0],
	            0);
	if (area == MAP_FAILED)
		return errno;
	/* Pages are faulted in by whichever side touches them first: the
	 * same advice as the client's (lib/client), for the same reason. */
	(void)madvise(area, l.total, MADV_HUGEPAGE);

	s->area = area;
	s->layout = l;
	s->memfd = fds[0];
	s->sq_bell = fds[1];
	s->cq_bell = fds[2];
	fds[0] = fds[1] = fds[2] = -1;
	hdr = area;
	rump_ring_init_consumer(&s->sq, &hdr->sq, s->area + l.sq_off,
	                        l.sq_entries, sizeof(struct rump_sqe));
	rump_ring_init_producer(&s->cq, &hdr->cq, s->area + l.cq_off,
	                        l.cq_entries, sizeof(struct rump_cqe));
	s->rings = true;
	return 0;
}

/*
 * Reads and answers one control message.  Returns 0, EAGAIN (nonblock and
 * nothing there), or an error that ends the session.
 */
static int session_control(struct rump_session *s, bool nonblock)
{
	const struct rump_service *svc = s->srv->svc;
	struct rump_msg_hdr h;
	const unsigned char *body;
	int fds[3];
	unsigned nfds;
	size_t len, body_len, reply_len;
	int err, status;

	err = rump_msg_recv(s->sock, s->in, sizeof s->in, &len, fds, 3, &nfds,
	                    nonblock);
	if (err != 0)
		return err;
	memcpy(&h, s->in, sizeof h);
	body = s->in + sizeof h;
	body_len = len - sizeof h;
	atomic_fetch_add_explicit(&s->srv->control_msgs, 1,
	                          memory_order_relaxed);

	if (h.flags & RUMP_MSGF_REPLY) {
		err = EPROTO;
		goto out;
	}
	reply_len = 0;
	switch (h.type) {
	case RUMP_MSG_HELLO:
		err = EPROTO;
		goto out;
	case RUMP_MSG_BYE:
		err = ECONNRESET;
		goto out;
	case RUMP_MSG_RING_SETUP:
		status = ring_setup(s, body, body_len, fds, nfds);
		break;
	default:
		if (nfds != 0) {
			err = EPROTO;
			goto out;
		}
		if (svc->control == NULL) {
			status = EOPNOTSUPP;
			break;
		}
		reply_len = sizeof s->out - sizeof h;
		status = svc->control(s, h.type, body, body_len, s->out,
		                      &reply_len);
		if (status == EPROTO) {
			err = EPROTO;
			goto out;
		}
		if (status < 0)
			status = -status;
		if (status != 0 || reply_len > sizeof s->out - sizeof h)
			reply_len = 0;
		break;
	}
	if (status == EPROTO) {
		err = EPROTO;
		goto out;
	}
	err = send_reply(s, &h, status, s->out, reply_len);
out:
	for (unsigned i = 0; i < nfds; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	return err;
}

/* ---- the ring --------------------------------------------------------- */

/*
 * Pops and submits what the admission rule allows.  Returns the number
 * submitted, 0 if nothing could be, -EAGAIN if requests wait but the
 * completion ring has no room, or -EPROTO.
 */
static int serve_ring(struct rump_session *s)
{
	const struct rump_service *svc = s->srv->svc;
	struct rump_sqe sqe;
	int64_t ready, space, in_flight;
	uint32_t allowed;
	int done = 0;

	ready = rump_ring_ready(&s->sq);
	if (ready <= 0)
		return (int)ready;
	pthread_mutex_lock(&s->cq_lock);
	space = rump_ring_space(&s->cq);
	in_flight = atomic_load_explicit(&s->in_flight, memory_order_relaxed);
	pthread_mutex_unlock(&s->cq_lock);
	if (space < 0)
		return -EPROTO;
	if (in_flight >= space)
		return -EAGAIN;
	allowed = (uint32_t)(space - in_flight);
	if (ready > allowed)
		ready = allowed;
	if (ready > SQ_BATCH)
		ready = SQ_BATCH;
	while (done < ready) {
		if (rump_ring_pop(&s->sq, &sqe) != 0)
			return -EPROTO;
		done++;
		atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&s->in_flight, 1,
		                          memory_order_relaxed);
		svc->submit(s, &sqe);
	}
	rump_ring_release(&s->sq);
	atomic_fetch_add_explicit(&s->srv->requests, (uint64_t)done,
	                          memory_order_relaxed);
	return done;
}

/*
 * The service's poll hook (see server.h); returns its completions.  With
 * sleeping set it is called only if the hook is active.
 */
static unsigned session_poll(struct rump_session *s, bool sleeping)
{
	const struct rump_service *svc = s->srv->svc;

	if (svc->poll == NULL || (sleeping && !s->polling))
		return 0;
	s->polling = !sleeping;
	return svc->poll(s, s->ctx, sleeping);
}

/*
 * Polls the submission ring for up to the current spin budget after the
 * last request or completion.  Returns true if requests arrived.  A client
 * that keeps not sending within the budget gets a shorter one, so an idle
 * session stops burning a CPU quickly; any hit restores the full budget.
 *
 * With a service that polls, completions count as hits, and while
 * requests are in flight the thread waits for them up to inflight_spin_ns
 * after the last completion: doubled each time one came in time, halved
 * each time none did, so a slow disk soon lets the thread sleep.
 */
static bool spin_for_requests(struct rump_session *s)
{
	uint64_t now, deadline, inflight_deadline;
	bool polls = s->srv->svc->poll != NULL, progress = false, any = false;
	bool waiting;

	now = now_ns();
	deadline = now + s->spin_ns;
	inflight_deadline = now + s->inflight_spin_ns;
	for (;;) {
		for (int i = 0; i < SPIN_ROUND; i++) {
			if (rump_ring_ready(&s->sq) != 0) {
				s->idle_spins = 0;
				s->spin_ns = s->srv->spin_ns;
				return true;
			}
			if (polls && session_poll(s, false) > 0)
				progress = true;
			rump_cpu_relax();
		}
		now = now_ns();
		waiting = polls && atomic_load_explicit(&s->in_flight,
		                                        memory_order_relaxed) > 0;
		if (progress) {
			/* Its client's next request is likely close. */
			if (now >= deadline &&
			    s->inflight_spin_ns < INFLIGHT_SPIN_NS)
				s->inflight_spin_ns *= 2;
			deadline = now + s->srv->spin_ns;
			inflight_deadline = now + s->inflight_spin_ns;
			progress = false;
			any = true;
		}
		if (now >= deadline && (!waiting || now >= inflight_deadline))
			break;
		sched_yield();
	}
	if (waiting && s->inflight_spin_ns > s->srv->spin_ns)
		s->inflight_spin_ns /= 2;
	if (!any && ++s->idle_spins >= 4 && s->spin_ns > MIN_SPIN_NS) {
		s->spin_ns /= 2;
		s->idle_spins = 0;
	}
	return false;
}

/*
 * Sleeps until a control message, a doorbell or the end of the session.
 * Returns 0, or an error that ends the session.
 */
static int session_sleep(struct rump_session *s, int timeout_ms)
{
	struct pollfd pfd[2] = {
		{ .fd = s->sock, .events = POLLIN },
		{ .fd = s->rings ? s->sq_bell : -1, .events = POLLIN },
	};
	int n, err;

	if (s->rings && timeout_ms < 0 && rump_ring_prepare_wait(&s->sq))
		return 0;
	do
		n = poll(pfd, 2, timeout_ms);
	while (n < 0 && errno == EINTR);
	err = n < 0 ? errno : 0;
	if (s->rings && timeout_ms < 0)
		rump_ring_end_wait(&s->sq);
	if (err != 0)
		return err;
	if (pfd[1].revents & POLLIN) {
		uint64_t v;

		if (read(s->sq_bell, &v, sizeof v) < 0 && errno != EAGAIN)
			return errno;
	}
	if (pfd[0].revents) {
		err = session_control(s, true);
		if (err == EAGAIN)
			err = 0;
	}
	return err;
}

static int session_loop(struct rump_session *s)
{
	unsigned batches = 0;
	int n, err;

	for (;;) {
		if (atomic_load_explicit(&s->broken, memory_order_relaxed))
			return EPROTO;
		if (!s->rings) {
			err = session_control(s, false);
			if (err != 0)
				return err;
			continue;
		}
		n = serve_ring(s);
		if (n == -EPROTO)
			return EPROTO;
		if (n > 0) {
			session_poll(s, false);
			/* Busy: still look at the socket now and then. */
			if (++batches % CONTROL_CHECK_EVERY == 0) {
				err = session_control(s, true);
				if (err != 0 && err != EAGAIN)
					return err;
			}
			continue;
		}
		if (n == -EAGAIN) {
			/* Blocked by a client that does not consume its
			 * completions; nap rather than spin on it. */
			session_poll(s, true);
			err = session_sleep(s, ADMISSION_NAP_MS);
		} else if (spin_for_requests(s)) {
			continue;
		} else {
			session_poll(s, true);
			err = session_sleep(s, -1);
		}
		if (err != 0)
			return err;
	}
}

static void *session_thread(void *arg)
{
	struct rump_session *s = arg;
	struct rump_server *srv = s->srv;
	int err;

	const char *what = "refused at HELLO";

	err = session_hello(s);
	if (err == 0) {
		what = "session ended";
		err = session_loop(s);
		session_poll(s, true);
	}
	if (err == EPROTO) {
		atomic_fetch_add_explicit(&srv->protocol_errors, 1,
		                          memory_order_relaxed);
		slog(s, "protocol error, session ended", err);
	} else if (err != 0 && err != ECONNRESET && err != EPIPE) {
		slog(s, what, err);
	}
	session_end(s);
	if (s->opened && srv->svc->session_ended != NULL)
		srv->svc->session_ended(s, s->ctx);
	session_unref(s);
	return NULL;
}

/* ---- the server ------------------------------------------------------- */

int rump_server_create(const struct rump_server_opts *opts,
                       const struct rump_service *service,
                       struct rump_server **serverp)
{
	struct rump_server *srv;
	int err;

	if (opts == NULL || service == NULL ||
	    service->version != RUMP_SERVICE_VERSION ||
	    service->submit == NULL || service->name == NULL ||
	    (opts->listen_fd < 0 && opts->path == NULL))
		return EINVAL;
	srv = calloc(1, sizeof *srv);
	if (srv == NULL)
		return ENOMEM;
	srv->svc = service;
	srv->boot_id = opts->boot_id;
	srv->spin_ns = opts->spin_ns != 0 ? opts->spin_ns : DEFAULT_SPIN_NS;
	srv->max_sessions = opts->max_sessions != 0 ? opts->max_sessions
	                                            : DEFAULT_MAX_SESSIONS;
	srv->listen_fd = -1;
	srv->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (srv->stop_fd < 0) {
		err = errno;
		goto fail;
	}
	if (opts->listen_fd >= 0) {
		srv->listen_fd = opts->listen_fd;
	} else {
		srv->path = strdup(opts->path);
		if (srv->path == NULL) {
			err = ENOMEM;
			goto fail;
		}
		err = rump_listen_unix(srv->path, &srv->listen_fd);
		if (err != 0)
			goto fail;
	}
	pthread_mutex_init(&srv->lock, NULL);
	pthread_cond_init(&srv->idle, NULL);
	*serverp = srv;
	return 0;

fail:
	if (srv->stop_fd >= 0)
		close(srv->stop_fd);
	free(srv->path);
	free(srv);
	return err;
}

static int session_start(struct rump_server *srv, int fd)
{
	struct rump_session *s;
	struct ucred cred;
	socklen_t clen = sizeof cred;
	pthread_attr_t attr;
	pthread_t tid;
	int err;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) != 0)
		return errno;
	s = calloc(1, sizeof *s);
	if (s == NULL)
		return ENOMEM;
	s->srv = srv;
	s->sock = fd;
	s->pid = cred.pid;
	s->uid = cred.uid;
	s->gid = cred.gid;
	s->memfd = s->sq_bell = s->cq_bell = -1;
	s->spin_ns = srv->spin_ns;
	s->inflight_spin_ns = INFLIGHT_SPIN_NS;
	atomic_init(&s->refs, 1);
	pthread_mutex_init(&s->cq_lock, NULL);

	pthread_mutex_lock(&srv->lock);
	if (srv->nsessions >= srv->max_sessions) {
		pthread_mutex_unlock(&srv->lock);
		err = EAGAIN;
		goto fail;
	}
	s->next = srv->sessions;
	if (s->next != NULL)
		s->next->prev = s;
	srv->sessions = s;
	srv->nsessions++;
	/* Under the lock so destroy never sees a half-started session. */
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	err = pthread_create(&tid, &attr, session_thread, s);
	pthread_attr_destroy(&attr);
	if (err != 0) {
		srv->sessions = s->next;
		if (s->next != NULL)
			s->next->prev = NULL;
		srv->nsessions--;
		pthread_mutex_unlock(&srv->lock);
		goto fail;
	}
	pthread_mutex_unlock(&srv->lock);
	atomic_fetch_add_explicit(&srv->sessions_total, 1,
	                          memory_order_relaxed);
	return 0;

fail:
	pthread_mutex_destroy(&s->cq_lock);
	free(s);
	return err;
}

int rump_server_run(struct rump_server *srv)
{
	struct pollfd pfd[2] = {
		{ .fd = srv->listen_fd, .events = POLLIN },
		{ .fd = srv->stop_fd, .events = POLLIN },
	};

	for (;;) {
		int fd, err;

		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return errno;
		}
		if (pfd[1].revents)
			return 0;
		if (!(pfd[0].revents & POLLIN))
			continue;
		fd = accept4(srv->listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0) {
			err = errno;
			if (err == EINTR || err == EAGAIN ||
			    err == ECONNABORTED)
				continue;
			if (err == EMFILE || err == ENFILE || err == ENOBUFS ||
			    err == ENOMEM) {
				fprintf(stderr, "rump_server %s: accept: %s\n",
				        srv->svc->name, strerror(err));
				/* Let sessions end before trying again. */
				poll(&pfd[1], 1, 100);
				continue;
			}
			return err;
		}
		err = session_start(srv, fd);
		if (err != 0) {
			fprintf(stderr, "rump_server %s: refusing a "
			        "session: %s\n", srv->svc->name,
			        err == EAGAIN ? "too many sessions"
			                      : strerror(err));
			close(fd);
		}
	}
}

void rump_server_stop(struct rump_server *srv)
{
	/* Only write(2): safe in a signal handler. */
	bell_ring(srv->stop_fd);
}

void rump_server_destroy(struct rump_server *srv)
{
	if (srv == NULL)
		return;
	/* Stop accepting first, so no session starts while we wait. */
	close(srv->listen_fd);
	if (srv->path != NULL)
		unlink(srv->path);
	pthread_mutex_lock(&srv->lock);
	for (struct rump_session *s = srv->sessions; s != NULL; s = s->next)
		shutdown(s->sock, SHUT_RDWR);
	while (srv->nsessions > 0)
		pthread_cond_wait(&srv->idle, &srv->lock);
	pthread_mutex_unlock(&srv->lock);
	pthread_cond_destroy(&srv->idle);
	pthread_mutex_destroy(&srv->lock);
	close(srv->stop_fd);
	free(srv->path);
	free(srv);
}

void rump_server_stats(struct rump_server *srv,
                       struct rump_server_stats *out)
{
	pthread_mutex_lock(&srv->lock);
	out->sessions_now = srv->nsessions;
	pthread_mutex_unlock(&srv->lock);
	out->sessions_total = atomic_load(&srv->sessions_total);
	out->requests = atomic_load(&srv->requests);
	out->control_msgs = atomic_load(&srv->control_msgs);
	out->protocol_errors = atomic_load(&srv->protocol_errors);
}
