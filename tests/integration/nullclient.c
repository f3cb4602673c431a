/*
 * nullclient: a test client of the null service, for the integration tests.
 *
 *   nullclient stress [-c CLIENTS] [-n REQUESTS] [-d DEPTH] [-S SEED] SERVICE
 *   nullclient sleeper [-n COUNT] [-m MS] SERVICE
 *   nullclient malformed SERVICE
 *   nullclient reconnect [-n AFTER] [-r RESTARTS] [-t SECONDS] SERVICE
 *   nullclient control SERVICE
 *
 * Every answer is checked; the exit status is 0 only if all were right.
 * SERVICE is a name in $RUMPD_DIR or a socket path.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "rump/client.h"
#include "rump/ipc.h"
#include "null_service.h"

#define NC_TIMEOUT_NS (10ull * 1000 * 1000 * 1000)

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* xorshift64*: reproducible from the printed seed. */
static uint64_t
rng_next(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545f4914f6cdd1dull;
}

static void
rng_fill(uint64_t *s, unsigned char *p, size_t len)
{
	while (len >= 8) {
		uint64_t v = rng_next(s);

		memcpy(p, &v, 8);
		p += 8;
		len -= 8;
	}
	if (len > 0) {
		uint64_t v = rng_next(s);

		memcpy(p, &v, len);
	}
}

static int
fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int
fail(const char *fmt, ...)
{
	va_list ap;

	fputs("nullclient: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}

static int
parse_uint(const char *s, unsigned long max, unsigned long *out)
{
	char *end;

	errno = 0;
	*out = strtoul(s, &end, 0);
	if (errno || *end != '\0' || s[0] == '-' || *out > max)
		return fail("bad number '%s' (at most %lu)", s, max);
	return 0;
}

static int
connect_null(const char *service, const char *name, unsigned sq,
             size_t buf_size, struct rump_client **cp)
{
	struct rump_client_opts opts = {
		.version = RUMP_CLIENT_OPTS_VERSION,
		.service_kind = RUMP_SERVICE_NULL,
		.client_name = name,
		.sq_entries = sq,
		.buf_size = buf_size,
	};
	int error = rump_client_connect(service, &opts, cp);

	if (error)
		fail("cannot connect to %s: %s", service, strerror(error));
	return error;
}

/* ---- stress ----------------------------------------------------------- */

enum stress_kind {
	K_NULL, K_ECHO, K_SLEEP, K_BADBUF, K_BADOP, K_LONGSLEEP, K_NKINDS
};
static const char *const kind_names[K_NKINDS] = {
	"null", "echo", "sleep", "bad-buffer", "bad-op", "long-sleep",
};

#define STRESS_BUF_SIZE (16u << 20)
#define STRESS_MAX_ECHO (64u << 10)

struct stress;

struct stress_req {
	struct rump_request req;
	struct stress *st;
	enum stress_kind kind;
	unsigned char *src, *dst;
	uint32_t len;
	uint64_t sum;
	uint64_t submitted_ns, sleep_ns;
	uint64_t seq;
	bool busy;
};

struct stress {
	struct rump_client *c;
	struct stress_req *slots;
	unsigned depth, in_flight;
	uint64_t rng;
	uint64_t seq, max_done_seq;
	uint64_t done, bad, out_of_order;
	uint64_t per_kind[K_NKINDS];
	uint64_t controls;
	int id;
};

static void
stress_done(struct rump_request *r, int64_t result, uint64_t aux)
{
	struct stress_req *q = (struct stress_req *)r;
	struct stress *st = q->st;
	const char *why = NULL;

	switch (q->kind) {
	case K_NULL:
		if (result != 0)
			why = "NULL result";
		break;
	case K_ECHO:
		if (result != (int64_t)q->len)
			why = "ECHO result";
		else if (aux != q->sum)
			why = "ECHO checksum";
		else if (q->len > 0 && memcmp(q->src, q->dst, q->len) != 0)
			why = "ECHO bytes";
		break;
	case K_SLEEP:
		if (result != 0)
			why = "SLEEP result";
		else if (now_ns() - q->submitted_ns < q->sleep_ns)
			why = "SLEEP completed early";
		break;
	case K_BADBUF:
		if (result != -EFAULT)
			why = "bad buffer not refused with EFAULT";
		break;
	case K_BADOP:
		if (result != -EOPNOTSUPP)
			why = "unknown op not refused with EOPNOTSUPP";
		break;
	case K_LONGSLEEP:
		if (result != -EINVAL)
			why = "overlong SLEEP not refused with EINVAL";
		break;
	default:
		why = "impossible kind";
	}
	if (why != NULL) {
		st->bad++;
		fail("client %d: request %" PRIu64 " (%s, len %u): %s: "
		     "result %" PRId64 " aux %016" PRIx64, st->id, q->seq,
		     kind_names[q->kind], q->len, why, result, aux);
	}
	if (q->seq < st->max_done_seq)
		st->out_of_order++;
	else
		st->max_done_seq = q->seq;
	st->per_kind[q->kind]++;
	st->done++;
	if (q->src != NULL)
		rump_client_buf_free(st->c, q->src);
	if (q->dst != NULL)
		rump_client_buf_free(st->c, q->dst);
	q->src = q->dst = NULL;
	q->busy = false;
	st->in_flight--;
}

static enum stress_kind
pick_kind(struct stress *st)
{
	unsigned p = (unsigned)(rng_next(&st->rng) % 100);

	if (p < 45)
		return K_ECHO;
	if (p < 70)
		return K_NULL;
	if (p < 90)
		return K_SLEEP;
	if (p < 95)
		return K_BADBUF;
	if (p < 98)
		return K_BADOP;
	return K_LONGSLEEP;
}

/* Fills q; false when the buffer area is full (reap first). */
static bool
stress_prepare(struct stress *st, struct stress_req *q)
{
	struct rump_sqe *sqe = &q->req.sqe;
	uint64_t r;

	memset(sqe, 0, sizeof(*sqe));
	q->kind = pick_kind(st);
	q->len = 0;
	q->src = q->dst = NULL;
	switch (q->kind) {
	case K_NULL:
		sqe->opcode = RUMP_NULL_OP_NULL;
		break;
	case K_ECHO:
		/* Half tiny, half anything up to 64 KiB. */
		r = rng_next(&st->rng);
		q->len = (uint32_t)(r & 1 ? (r >> 1) % 512 :
		                    (r >> 1) % (STRESS_MAX_ECHO + 1));
		if (q->len > 0) {
			q->src = rump_client_buf_alloc(st->c, q->len);
			q->dst = q->src ?
			         rump_client_buf_alloc(st->c, q->len) : NULL;
			if (q->dst == NULL) {
				if (q->src != NULL)
					rump_client_buf_free(st->c, q->src);
				q->src = NULL;
				return false;
			}
			rng_fill(&st->rng, q->src, q->len);
			memset(q->dst, 0xa5, q->len);
			sqe->buf = rump_client_buf_offset(st->c, q->src);
			sqe->arg[0] = rump_client_buf_offset(st->c, q->dst);
		}
		q->sum = null_fnv1a64(q->src, q->len);
		sqe->opcode = RUMP_NULL_OP_ECHO;
		sqe->len = q->len;
		break;
	case K_SLEEP:
		q->sleep_ns = rng_next(&st->rng) % 2000000;
		sqe->opcode = RUMP_NULL_OP_SLEEP;
		sqe->arg[0] = q->sleep_ns;
		break;
	case K_BADBUF:
		/* Past the end, straddling it, and wrapping around. */
		sqe->opcode = RUMP_NULL_OP_ECHO;
		sqe->len = 1 + (uint32_t)(rng_next(&st->rng) % 8192);
		switch (rng_next(&st->rng) % 3) {
		case 0:
			sqe->buf = STRESS_BUF_SIZE;
			break;
		case 1:
			sqe->arg[0] = STRESS_BUF_SIZE - sqe->len / 2;
			break;
		default:
			sqe->buf = UINT64_MAX - sqe->len / 2;
			break;
		}
		q->len = sqe->len;
		break;
	case K_BADOP:
		sqe->opcode = (uint16_t)(100 + rng_next(&st->rng) % 1000);
		break;
	case K_LONGSLEEP:
		sqe->opcode = RUMP_NULL_OP_SLEEP;
		sqe->arg[0] = NULL_SLEEP_MAX_NS + 1 +
		              rng_next(&st->rng) % 1000;
		break;
	default:
		break;
	}
	q->req.done = stress_done;
	q->req.arg = st;
	q->st = st;
	q->seq = st->seq++;
	q->submitted_ns = now_ns();
	return true;
}

/* A control ECHO now and then: calls must work while rings are busy. */
static int
stress_control(struct stress *st)
{
	unsigned char req[4096], reply[4096];
	size_t len = (size_t)(rng_next(&st->rng) % sizeof(req)), got;
	int error;

	rng_fill(&st->rng, req, len);
	error = rump_client_call(st->c, RUMP_NULL_MSG_ECHO, req, len, reply,
	                         sizeof(reply), &got);
	if (error)
		return fail("client %d: control ECHO: %s", st->id,
		            strerror(error));
	if (got != len || memcmp(req, reply, len) != 0)
		return fail("client %d: control ECHO came back different",
		            st->id);
	st->controls++;
	return 0;
}

static int
stress_one(int id, unsigned long nreq, unsigned depth, uint64_t seed,
           const char *service)
{
	struct stress st = { .depth = depth, .id = id };
	uint64_t t0 = now_ns(), submitted = 0;
	char name[32];
	int status = 1;

	st.rng = seed ^ (0x9e3779b97f4a7c15ull * (uint64_t)(id + 1));
	if (st.rng == 0)
		st.rng = 1;
	snprintf(name, sizeof(name), "stress-%d", id);
	if (connect_null(service, name, 2 * depth, STRESS_BUF_SIZE, &st.c))
		return 1;
	st.slots = calloc(depth, sizeof(*st.slots));
	if (st.slots == NULL) {
		fail("out of memory");
		goto out;
	}
	while (submitted < nreq || st.in_flight > 0) {
		int n;

		for (unsigned i = 0; i < depth && submitted < nreq; i++) {
			struct stress_req *q = &st.slots[i];
			int error;

			if (q->busy)
				continue;
			if (!stress_prepare(&st, q))
				break;
			error = rump_client_submit(st.c, &q->req);
			if (error) {
				fail("client %d: submit: %s", id,
				     strerror(error));
				goto out;
			}
			q->busy = true;
			st.in_flight++;
			submitted++;
			if (submitted % 97 == 0 && stress_control(&st) != 0)
				goto out;
		}
		n = rump_client_reap(st.c, NC_TIMEOUT_NS);
		if (n < 0) {
			fail("client %d: reap: %s", id, strerror(-n));
			goto out;
		}
		if (n == 0 && st.in_flight > 0) {
			fail("client %d: %u requests in flight and no "
			     "completion in 10 s", id, st.in_flight);
			goto out;
		}
	}
	printf("client %d: %" PRIu64 " requests (echo %" PRIu64 ", null %"
	       PRIu64 ", sleep %" PRIu64 ", refused %" PRIu64 ") + %" PRIu64
	       " control calls, %" PRIu64 " out of order, %" PRIu64
	       " wrong, %.2f s\n", id, st.done, st.per_kind[K_ECHO],
	       st.per_kind[K_NULL], st.per_kind[K_SLEEP],
	       st.per_kind[K_BADBUF] + st.per_kind[K_BADOP] +
	       st.per_kind[K_LONGSLEEP], st.controls, st.out_of_order, st.bad,
	       (double)(now_ns() - t0) / 1e9);
	if (st.bad == 0 && st.done == nreq)
		status = 0;
out:
	free(st.slots);
	rump_client_close(st.c);
	return status;
}

static int
cmd_stress(int argc, char **argv)
{
	unsigned long clients = 8, nreq = 10000, depth = 32, seed;
	unsigned failed = 0;
	int c;

	seed = (unsigned long)now_ns() ^ (unsigned long)getpid();
	while ((c = getopt(argc, argv, "c:n:d:S:")) != -1) {
		unsigned long *dst = c == 'c' ? &clients :
		                     c == 'n' ? &nreq :
		                     c == 'd' ? &depth :
		                     c == 'S' ? &seed : NULL;
		unsigned long max = c == 'c' ? 256 : c == 'd' ? 1024 :
		                    ULONG_MAX;

		if (dst == NULL)
			return 2;
		if (parse_uint(optarg, max, dst))
			return 2;
	}
	if (optind + 1 != argc || clients == 0 || depth == 0)
		return fail("usage: stress [-c CLIENTS] [-n REQUESTS] "
		            "[-d DEPTH] [-S SEED] SERVICE") + 1;
	printf("stress: %lu clients x %lu requests, %lu in flight each, "
	       "seed %#lx\n", clients, nreq, depth, seed);
	fflush(stdout);
	for (unsigned long i = 0; i < clients; i++) {
		pid_t pid = fork();

		if (pid < 0)
			return fail("fork: %s", strerror(errno));
		if (pid == 0) {
			int st = stress_one((int)i, nreq, (unsigned)depth,
			                    seed, argv[optind]);

			fflush(stdout);
			_exit(st);
		}
	}
	for (unsigned long i = 0; i < clients; i++) {
		int status;

		if (wait(&status) < 0)
			return fail("wait: %s", strerror(errno));
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			failed++;
	}
	if (failed) {
		printf("stress: %u of %lu clients FAILED\n", failed, clients);
		return 1;
	}
	printf("stress: all %lu x %lu requests verified\n", clients, nreq);
	return 0;
}

/* ---- sleeper: requests in flight when it gets killed ------------------- */

static void
sleeper_done(struct rump_request *r, int64_t result, uint64_t aux)
{
	(void)r;
	(void)result;
	(void)aux;
}

static int
cmd_sleeper(int argc, char **argv)
{
	unsigned long count = 200, ms = 5000;
	struct rump_request *reqs;
	struct rump_client *cl;
	int c, error;

	while ((c = getopt(argc, argv, "n:m:")) != -1) {
		if (c != 'n' && c != 'm')
			return 2;
		if (parse_uint(optarg, c == 'n' ? 1024 : 60000,
		               c == 'n' ? &count : &ms))
			return 2;
	}
	if (optind + 1 != argc)
		return fail("usage: sleeper [-n COUNT] [-m MS] SERVICE") + 1;
	if (connect_null(argv[optind], "sleeper", 1024, 0, &cl))
		return 1;
	reqs = calloc(count, sizeof(*reqs));
	if (reqs == NULL)
		return fail("out of memory");
	for (unsigned long i = 0; i < count; i++) {
		reqs[i].sqe.opcode = RUMP_NULL_OP_SLEEP;
		reqs[i].sqe.arg[0] = ms * 1000000;
		reqs[i].done = sleeper_done;
		error = rump_client_submit(cl, &reqs[i]);
		if (error)
			return fail("submit: %s", strerror(error));
	}
	printf("SUBMITTED %lu\n", count);
	fflush(stdout);
	/* Wait to be killed with everything in flight. */
	for (;;)
		pause();
}

/* ---- malformed: hostile peers on raw sockets --------------------------- */

static int
raw_connect(const char *service, int *fdp)
{
	char path[PATH_MAX];
	int error;

	if (strchr(service, '/') != NULL)
		snprintf(path, sizeof(path), "%s", service);
	else if ((error = rump_service_path(service, path, sizeof(path))))
		return error;
	return rump_connect_unix(path, fdp);
}

static int
raw_send(int fd, uint16_t type, const void *body, size_t len,
         const int *fds, unsigned nfds)
{
	struct rump_msg_hdr hdr;

	rump_msg_init(&hdr, type, 0, 7, 0, len);
	return rump_msg_send(fd, &hdr, body, fds, nfds);
}

/* Waits for one reply; returns its status or a transport error. */
static int
raw_reply(int fd, void *buf, size_t cap, size_t *lenp)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	unsigned nfds = 0;
	int error;

	if (poll(&pfd, 1, 5000) != 1)
		return ETIMEDOUT;
	error = rump_msg_recv(fd, buf, cap, lenp, NULL, 0, &nfds, false);
	if (error)
		return error;
	return ((struct rump_msg_hdr *)buf)->status;
}

static int
raw_hello(int fd, void *buf)
{
	struct rump_hello h;
	size_t len;
	int error;

	rump_hello_encode(&h, RUMP_SERVICE_NULL, "nullclient-raw");
	if ((error = raw_send(fd, RUMP_MSG_HELLO, &h, sizeof(h), NULL, 0)))
		return error;
	return raw_reply(fd, buf, RUMP_MSG_MAX, &len);
}

/* True if the server closes fd within 5 s (replies before that are
 * drained: a server may say why before it hangs up). */
static bool
closed_by_server(int fd)
{
	uint64_t deadline = now_ns() + 5000000000ull;
	char buf[256];

	while (now_ns() < deadline) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (poll(&pfd, 1, 100) <= 0)
			continue;
		n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno == ECONNRESET))
			return true;
	}
	return false;
}

struct raw_area {
	void *mem;
	size_t size;
	int fds[3];   /* memfd, submission doorbell, completion doorbell */
	struct rump_area_layout layout;
};

static void
raw_area_free(struct raw_area *a)
{
	if (a->mem != NULL && a->mem != MAP_FAILED)
		munmap(a->mem, a->size);
	for (int i = 0; i < 3; i++)
		if (a->fds[i] >= 0)
			close(a->fds[i]);
}

static int
raw_area_make(struct raw_area *a, const struct rump_ring_setup *setup,
              bool seal)
{
	int error;

	a->mem = NULL;
	a->fds[0] = a->fds[1] = a->fds[2] = -1;
	if ((error = rump_area_layout(setup, &a->layout)) != 0)
		return error;
	a->size = a->layout.total;
	a->fds[0] = memfd_create("nullclient-raw",
	                         MFD_CLOEXEC | MFD_ALLOW_SEALING);
	a->fds[1] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	a->fds[2] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (a->fds[0] < 0 || a->fds[1] < 0 || a->fds[2] < 0 ||
	    ftruncate(a->fds[0], (off_t)a->size) != 0 ||
	    (seal && fcntl(a->fds[0], F_ADD_SEALS, F_SEAL_SHRINK |
	                   F_SEAL_GROW | F_SEAL_SEAL) != 0))
		return errno;
	a->mem = mmap(NULL, a->size, PROT_READ | PROT_WRITE, MAP_SHARED,
	              a->fds[0], 0);
	return a->mem == MAP_FAILED ? errno : 0;
}

enum raw_expect { EXPECT_CLOSE, EXPECT_ERROR_REPLY };

struct raw_case {
	const char *name;
	bool hello_first;
	enum raw_expect expect;
	int reply_status;             /* EXPECT_ERROR_REPLY: the status */
	/* Sends the bad thing on fd; returns 0 or an errno of ours. */
	int (*send)(int fd, void *buf);
};

static int
send_short(int fd, void *buf)
{
	(void)buf;
	return send(fd, "\x01\x00\x01", 3, MSG_NOSIGNAL) == 3 ? 0 : errno;
}

static int
send_hdr(int fd, void *buf, void (*mangle)(struct rump_msg_hdr *),
         uint16_t type, size_t body_len)
{
	struct rump_msg_hdr *hdr = buf;
	size_t len = sizeof(*hdr) + body_len;

	memset(buf, 0, len);
	rump_msg_init(hdr, type, 0, 9, 0, body_len);
	if (type == RUMP_MSG_HELLO && body_len >= sizeof(struct rump_hello))
		rump_hello_encode((void *)(hdr + 1), RUMP_SERVICE_NULL, "x");
	mangle(hdr);
	return send(fd, buf, len, MSG_NOSIGNAL) == (ssize_t)len ? 0 : errno;
}

static void mangle_version(struct rump_msg_hdr *h) { h->version = 99; }
static void mangle_length_big(struct rump_msg_hdr *h) { h->length = ~0u; }
static void mangle_length_off(struct rump_msg_hdr *h) { h->length += 8; }
static void mangle_flags(struct rump_msg_hdr *h) { h->flags = 0x80; }
static void mangle_reserved(struct rump_msg_hdr *h) { h->reserved = 1; }
static void mangle_status(struct rump_msg_hdr *h) { h->status = 5; }
static void mangle_none(struct rump_msg_hdr *h) { (void)h; }

static int
send_bad_version(int fd, void *buf)
{
	return send_hdr(fd, buf, mangle_version, RUMP_MSG_HELLO,
	                sizeof(struct rump_hello));
}

static int
send_oversized_length(int fd, void *buf)
{
	return send_hdr(fd, buf, mangle_length_big, RUMP_MSG_HELLO,
	                sizeof(struct rump_hello));
}

static int
send_length_mismatch(int fd, void *buf)
{
	return send_hdr(fd, buf, mangle_length_off, RUMP_MSG_HELLO,
	                sizeof(struct rump_hello));
}

static int
send_bad_flags(int fd, void *buf)
{
	return send_hdr(fd, buf, mangle_flags, RUMP_NULL_MSG_NULL, 0);
}

static int
send_bad_reserved(int fd, void *buf)
{
	return send_hdr(fd, buf, mangle_reserved, RUMP_NULL_MSG_NULL, 0);
}

static int
send_status_in_request(int fd, void *buf)
{
	return send_hdr(fd, buf, mangle_status, RUMP_NULL_MSG_NULL, 0);
}

static int
send_short_hello(int fd, void *buf)
{
	return send_hdr(fd, buf, mangle_none, RUMP_MSG_HELLO, 10);
}

static int
send_no_hello(int fd, void *buf)
{
	return send_hdr(fd, buf, mangle_none, RUMP_NULL_MSG_NULL, 0);
}

static int
send_type_out_of_range(int fd, void *buf)
{
	return send_hdr(fd, buf, mangle_none, RUMP_MSG_TYPE_MAX + 1, 0);
}

static int
send_unknown_service_type(int fd, void *buf)
{
	return send_hdr(fd, buf, mangle_none, RUMP_MSG_TYPE_MAX, 0);
}

static int
send_second_hello(int fd, void *buf)
{
	return send_hdr(fd, buf, mangle_none, RUMP_MSG_HELLO,
	                sizeof(struct rump_hello));
}

/* More than RUMP_MSG_MAX in one record: truncated on receipt. */
static int
send_oversized_record(int fd, void *buf)
{
	size_t len = RUMP_MSG_MAX + 4096;
	unsigned char *big = calloc(1, len);
	int error = 0;

	(void)buf;
	if (big == NULL)
		return ENOMEM;
	rump_msg_init((struct rump_msg_hdr *)big, RUMP_NULL_MSG_ECHO, 0, 1,
	              0, len - sizeof(struct rump_msg_hdr));
	if (send(fd, big, len, MSG_NOSIGNAL) != (ssize_t)len)
		error = errno;
	free(big);
	return error;
}

static int
send_garbage(int fd, void *buf)
{
	uint64_t s = 0x1234567;

	rng_fill(&s, buf, 1000);
	return send(fd, buf, 1000, MSG_NOSIGNAL) == 1000 ? 0 : errno;
}

/* Rings set up properly, then a submission tail far past what the ring
 * holds: the server must notice the lie and hang up. */
static int
send_ring_overrun(int fd, void *buf)
{
	struct rump_ring_setup setup = {
		.sq_entries = 8, .cq_entries = 16, .buf_size = 4096,
	};
	struct rump_area_hdr *ah;
	struct raw_area a;
	size_t len;
	uint64_t one = 1;
	int error;

	if ((error = raw_area_make(&a, &setup, true)) != 0)
		goto out;
	if ((error = raw_send(fd, RUMP_MSG_RING_SETUP, &setup, sizeof(setup),
	                      a.fds, 3)) != 0)
		goto out;
	if ((error = raw_reply(fd, buf, RUMP_MSG_MAX, &len)) != 0) {
		fail("RING_SETUP refused: %s", strerror(error));
		goto out;
	}
	ah = a.mem;
	__atomic_store_n(&ah->sq.tail, 1000u, __ATOMIC_RELEASE);
	if (write(a.fds[1], &one, sizeof(one)) != sizeof(one))
		error = errno;
out:
	raw_area_free(&a);
	return error;
}

/* A memfd the client could shrink under the server's mapping. */
static int
send_unsealed_area(int fd, void *buf)
{
	struct rump_ring_setup setup = {
		.sq_entries = 8, .cq_entries = 16, .buf_size = 4096,
	};
	struct raw_area a;
	int error;

	(void)buf;
	if ((error = raw_area_make(&a, &setup, false)) == 0)
		error = raw_send(fd, RUMP_MSG_RING_SETUP, &setup,
		                 sizeof(setup), a.fds, 3);
	raw_area_free(&a);
	return error;
}

static const struct raw_case raw_cases[] = {
	{ "short message", false, EXPECT_CLOSE, 0, send_short },
	{ "bad version", false, EXPECT_CLOSE, 0, send_bad_version },
	{ "oversized length field", false, EXPECT_CLOSE, 0,
	  send_oversized_length },
	{ "length field != record", false, EXPECT_CLOSE, 0,
	  send_length_mismatch },
	{ "record over RUMP_MSG_MAX", false, EXPECT_CLOSE, 0,
	  send_oversized_record },
	{ "garbage", false, EXPECT_CLOSE, 0, send_garbage },
	{ "truncated HELLO body", false, EXPECT_CLOSE, 0, send_short_hello },
	{ "call before HELLO", false, EXPECT_CLOSE, 0, send_no_hello },
	{ "unknown flag bits", true, EXPECT_CLOSE, 0, send_bad_flags },
	{ "reserved field set", true, EXPECT_CLOSE, 0, send_bad_reserved },
	{ "status in a request", true, EXPECT_CLOSE, 0,
	  send_status_in_request },
	{ "type out of range", true, EXPECT_CLOSE, 0,
	  send_type_out_of_range },
	{ "second HELLO", true, EXPECT_CLOSE, 0, send_second_hello },
	{ "ring index overrun", true, EXPECT_CLOSE, 0, send_ring_overrun },
	{ "unknown service type", true, EXPECT_ERROR_REPLY, EOPNOTSUPP,
	  send_unknown_service_type },
	{ "unsealed shared area", true, EXPECT_ERROR_REPLY, EPERM,
	  send_unsealed_area },
};

/* The well-behaved session must not notice any of it. */
static int
check_good_client(struct rump_client *c)
{
	char reply[16];
	size_t got;
	struct rump_sqe sqe = { .opcode = RUMP_NULL_OP_NULL };
	int error;

	error = rump_client_call(c, RUMP_NULL_MSG_ECHO, "still here", 10,
	                         reply, sizeof(reply), &got);
	if (error || got != 10 || memcmp(reply, "still here", 10) != 0)
		return fail("the good session broke: %s",
		            error ? strerror(error) : "bad echo");
	if (rump_client_exec(c, &sqe, NULL) != 0)
		return fail("the good session's ring broke");
	return 0;
}

static int
run_raw_case(const char *service, const struct raw_case *rc, void *buf)
{
	size_t len;
	int fd, error;

	if ((error = raw_connect(service, &fd)) != 0)
		return fail("%s: connect: %s", rc->name, strerror(error));
	if (rc->hello_first && (error = raw_hello(fd, buf)) != 0) {
		close(fd);
		return fail("%s: HELLO: %s", rc->name, strerror(error));
	}
	/* EPIPE/ECONNRESET: the server hung up before we finished, fine. */
	error = rc->send(fd, buf);
	if (error && error != EPIPE && error != ECONNRESET) {
		close(fd);
		return fail("%s: sending: %s", rc->name, strerror(error));
	}
	if (rc->expect == EXPECT_CLOSE) {
		if (!closed_by_server(fd)) {
			close(fd);
			return fail("%s: the server kept the session open",
			            rc->name);
		}
		printf("malformed: %-26s session closed by the server\n",
		       rc->name);
	} else {
		error = raw_reply(fd, buf, RUMP_MSG_MAX, &len);
		if (error != rc->reply_status) {
			close(fd);
			return fail("%s: expected the reply \"%s\", got "
			            "\"%s\"", rc->name,
			            strerror(rc->reply_status),
			            strerror(error));
		}
		send_hdr(fd, buf, mangle_none, RUMP_NULL_MSG_NULL, 0);
		if ((error = raw_reply(fd, buf, RUMP_MSG_MAX, &len)) != 0) {
			close(fd);
			return fail("%s: the session did not go on: %s",
			            rc->name, strerror(error));
		}
		printf("malformed: %-26s refused, session goes on\n",
		       rc->name);
	}
	close(fd);
	return 0;
}

static int
cmd_malformed(int argc, char **argv)
{
	struct rump_client *good;
	unsigned char *buf;
	unsigned failed = 0;

	if (argc != 2)
		return fail("usage: malformed SERVICE") + 1;
	buf = malloc(RUMP_MSG_MAX);
	if (buf == NULL)
		return fail("out of memory");
	if (connect_null(argv[1], "good", 8, 0, &good)) {
		free(buf);
		return 1;
	}
	for (size_t i = 0; i < sizeof(raw_cases) / sizeof(raw_cases[0]);
	     i++) {
		if (run_raw_case(argv[1], &raw_cases[i], buf) != 0)
			failed++;
		if (check_good_client(good) != 0) {
			failed++;
			break;
		}
	}
	rump_client_close(good);
	free(buf);
	if (failed)
		return fail("%u malformed-message checks failed", failed);
	printf("malformed: all checks passed, the good session kept "
	       "working\n");
	return 0;
}

/* ---- reconnect: survive server restarts -------------------------------- */

static int
cmd_reconnect(int argc, char **argv)
{
	unsigned long after = 1000, restarts = 1, seconds = 60;
	unsigned long seen = 0, since = 0, total = 0;
	struct rump_client *cl;
	unsigned char *src, *dst;
	uint64_t boot, deadline, rng = 42;
	bool announced = false;
	int c, error, status = 1;

	while ((c = getopt(argc, argv, "n:r:t:")) != -1) {
		unsigned long *dst_arg = c == 'n' ? &after :
		                         c == 'r' ? &restarts :
		                         c == 't' ? &seconds : NULL;

		if (dst_arg == NULL || parse_uint(optarg, 1000000000, dst_arg))
			return 2;
	}
	if (optind + 1 != argc)
		return fail("usage: reconnect [-n AFTER] [-r RESTARTS] "
		            "[-t SECONDS] SERVICE") + 1;
	if (connect_null(argv[optind], "reconnect", 16, 0, &cl))
		return 1;
	src = rump_client_buf_alloc(cl, 4096);
	dst = rump_client_buf_alloc(cl, 4096);
	if (src == NULL || dst == NULL) {
		fail("no buffers");
		goto out;
	}
	boot = rump_client_boot_id(cl);
	printf("boot id %016" PRIx64 "\n", boot);
	fflush(stdout);
	deadline = now_ns() + seconds * 1000000000ull;
	while (seen < restarts || since < after) {
		struct rump_sqe sqe = { .opcode = RUMP_NULL_OP_ECHO };
		uint32_t len = 1 + (uint32_t)(rng_next(&rng) % 4096);
		uint64_t aux;
		int64_t r;

		if (now_ns() > deadline) {
			fail("gave up after %lu s: %lu of %lu restarts seen, "
			     "%lu requests since", seconds, seen, restarts,
			     since);
			goto out;
		}
		rng_fill(&rng, src, len);
		sqe.len = len;
		sqe.buf = rump_client_buf_offset(cl, src);
		sqe.arg[0] = rump_client_buf_offset(cl, dst);
		r = rump_client_exec(cl, &sqe, &aux);
		if (r == -ECONNRESET || r == -EPIPE) {
			uint64_t nb;

			printf("connection lost after %lu requests; "
			       "reconnecting\n", total);
			fflush(stdout);
			error = rump_client_reconnect(cl, 20000);
			if (error) {
				fail("reconnect: %s", strerror(error));
				goto out;
			}
			nb = rump_client_boot_id(cl);
			if (nb != boot) {
				seen++;
				printf("boot id %016" PRIx64 " -> %016" PRIx64
				       " (restart %lu)\n", boot, nb, seen);
			} else {
				printf("same boot id %016" PRIx64 "\n", nb);
			}
			fflush(stdout);
			boot = nb;
			since = 0;
			continue;
		}
		if (r != (int64_t)len || aux != null_fnv1a64(src, len) ||
		    memcmp(src, dst, len) != 0) {
			fail("request %lu: wrong answer (result %" PRId64 ")",
			     total, r);
			goto out;
		}
		total++;
		since++;
		if (!announced && total >= 100) {
			/* The test waits for this before it kills. */
			printf("RUNNING\n");
			fflush(stdout);
			announced = true;
		}
	}
	printf("reconnect: %lu requests verified across %lu restarts\n",
	       total, seen);
	status = 0;
out:
	if (src != NULL)
		rump_client_buf_free(cl, src);
	if (dst != NULL)
		rump_client_buf_free(cl, dst);
	rump_client_close(cl);
	return status;
}

/* ---- control: the control calls, and SLEEP blocking one session only --- */

#define CONTROL_SLEEP_NS 1000000000ull

static int
expect_call(struct rump_client *c, uint16_t type, const void *body,
            size_t len, int want, const char *what)
{
	unsigned char reply[64];
	size_t got;
	int error = rump_client_call(c, type, body, len, reply,
	                             sizeof(reply), &got);

	if (error != want)
		return fail("control %s: got \"%s\", expected \"%s\"", what,
		            strerror(error), strerror(want));
	return 0;
}

/* In a child process: one session asleep in a control SLEEP. */
static int
control_sleeper(const char *service, int ready_fd)
{
	struct rump_client *c;
	uint64_t ns = CONTROL_SLEEP_NS, t0;
	int error;

	if (connect_null(service, "control-sleeper", 0, 0, &c))
		return 1;
	if (write(ready_fd, "R", 1) != 1)
		return fail("pipe: %s", strerror(errno));
	t0 = now_ns();
	error = rump_client_call(c, RUMP_NULL_MSG_SLEEP, &ns, sizeof(ns),
	                         NULL, 0, NULL);
	t0 = now_ns() - t0;
	rump_client_close(c);
	if (error)
		return fail("control SLEEP: %s", strerror(error));
	if (t0 < CONTROL_SLEEP_NS)
		return fail("control SLEEP returned after %" PRIu64 " ns", t0);
	return 0;
}

static int
cmd_control(int argc, char **argv)
{
	struct rump_client *c;
	uint64_t too_long = NULL_SLEEP_MAX_NS + 1, t0;
	uint32_t short_body = 5;
	int pipefd[2], status, failed = 0;
	char ready;
	pid_t pid;

	if (argc != 2)
		return fail("usage: control SERVICE") + 1;
	if (connect_null(argv[1], "control", 0, 0, &c))
		return 1;
	failed |= expect_call(c, RUMP_NULL_MSG_NULL, NULL, 0, 0, "NULL");
	failed |= expect_call(c, RUMP_NULL_MSG_NULL, "x", 1, EINVAL,
	                      "NULL with a body");
	failed |= expect_call(c, RUMP_NULL_MSG_SLEEP, &short_body,
	                      sizeof(short_body), EINVAL, "SLEEP of 4 bytes");
	failed |= expect_call(c, RUMP_NULL_MSG_SLEEP, &too_long,
	                      sizeof(too_long), EINVAL, "SLEEP too long");
	failed |= expect_call(c, RUMP_MSG_SERVICE + 77, NULL, 0,
	                      EOPNOTSUPP, "unknown type");

	if (pipe(pipefd) != 0)
		return fail("pipe: %s", strerror(errno));
	pid = fork();
	if (pid < 0)
		return fail("fork: %s", strerror(errno));
	if (pid == 0) {
		close(pipefd[0]);
		_exit(control_sleeper(argv[1], pipefd[1]));
	}
	close(pipefd[1]);
	if (read(pipefd[0], &ready, 1) != 1)
		return fail("the sleeper did not connect");
	close(pipefd[0]);
	/* Give its SLEEP time to reach the server, then work around it. */
	usleep(100 * 1000);
	t0 = now_ns();
	for (int i = 0; i < 200 && !failed; i++)
		failed |= expect_call(c, RUMP_NULL_MSG_NULL, NULL, 0, 0,
		                      "NULL beside a sleeping session");
	t0 = now_ns() - t0;
	if (waitpid(pid, &status, WNOHANG) != 0) {
		failed = 1;
		fail("the sleeping session was done before the others");
	}
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
	    WEXITSTATUS(status) != 0)
		failed = 1;
	rump_client_close(c);
	if (failed)
		return 1;
	printf("control: 200 calls in %.1f ms beside a session asleep for "
	       "1 s; bad bodies refused\n", (double)t0 / 1e6);
	return 0;
}

/* ------------------------------------------------------------------------ */

int
main(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*fn)(int, char **);
	} modes[] = {
		{ "stress", cmd_stress },
		{ "sleeper", cmd_sleeper },
		{ "malformed", cmd_malformed },
		{ "reconnect", cmd_reconnect },
		{ "control", cmd_control },
	};

	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc >= 2)
		for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
			if (strcmp(argv[1], modes[i].name) == 0)
				return modes[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "usage: nullclient stress|sleeper|malformed|reconnect|"
	        "control [OPTIONS] SERVICE\n");
	return 2;
}
