/*
 * bench-ipc: our IPC against the host's plainest ones, in one run, between
 * the same two processes.
 *
 *   bench-ipc [-n ROUNDS] [-w WARMUP] [-d DEPTH] [--pin none|same|diff]
 *
 * The parent measures; a forked child answers, in turn: a pipe ping-pong
 * (1 byte each way), a Unix stream socket request/response loop (64 bytes
 * each way), and the null service served by rump_server in-process (ring
 * NULL through rump_client).  Same process pair, same CPU placement for
 * every row; by default the scheduler places them (--pin to choose).
 *
 * Benchmarks never fail the build: the verdicts against the targets are
 * printed, the exit status is 0 unless the benchmark itself broke.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "rump/client.h"
#include "rump/rumpkern.h"
#include "rump/server.h"
#include "null_service.h"

#define TARGET_LATENCY_RATIO 1.25   /* ours p50 / pipe p50, at most */
#define TARGET_THROUGHPUT_RATIO 5.0 /* ours 64 in flight / unix loop */
#define UNIX_MSG 64

enum pin_mode { PIN_NONE, PIN_SAME, PIN_DIFF };

struct opts {
	unsigned rounds, warmup, depth;
	enum pin_mode pin;
};

/* Descriptors shared by parent and child. */
struct channels {
	int to_child[2], to_parent[2];  /* pipe ping-pong */
	int sock[2];                    /* unix stream loop */
	int stop[2];                    /* closing it stops the rump server */
	char dir[PATH_MAX - 16], path[PATH_MAX];
};

struct result {
	double p50_us, p99_us, rps;
	double cpu_us;          /* the measuring process's CPU per request */
	bool has_latency;
};

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Spinning buys latency with CPU; this column shows the price. */
static uint64_t
cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static double
cpu_us_per(uint64_t since, uint64_t ops)
{
	return (double)(cpu_ns() - since) / 1000.0 / (double)ops;
}

static void __attribute__((noreturn))
die(const char *what, int error)
{
	fprintf(stderr, "bench-ipc: %s: %s\n", what, strerror(error));
	exit(1);
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

static double
pct_us(const uint64_t *sorted, unsigned n, unsigned pct)
{
	size_t rank = ((size_t)n * pct + 99) / 100;

	return (double)sorted[rank ? rank - 1 : 0] / 1000.0;
}

/* Percentiles from the per-round samples, throughput from their sum. */
static void
summarize(uint64_t *samples, unsigned n, struct result *r)
{
	uint64_t total = 0;

	for (unsigned i = 0; i < n; i++)
		total += samples[i];
	qsort(samples, n, sizeof(*samples), cmp_u64);
	r->p50_us = pct_us(samples, n, 50);
	r->p99_us = pct_us(samples, n, 99);
	r->rps = total ? (double)n * 1e9 / (double)total : 0;
	r->has_latency = true;
}

static int
full_io(int fd, void *buf, size_t len, bool writing)
{
	unsigned char *p = buf;

	while (len > 0) {
		ssize_t n = writing ? write(fd, p, len) : read(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n == 0 ? EPIPE : errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static void
pin_to(enum pin_mode mode, bool child)
{
	cpu_set_t allowed, one;
	int cpus[2] = { -1, -1 }, n = 0;

	if (mode == PIN_NONE)
		return;
	if (sched_getaffinity(0, sizeof(allowed), &allowed) != 0)
		die("sched_getaffinity", errno);
	for (int i = 0; i < CPU_SETSIZE && n < 2; i++)
		if (CPU_ISSET(i, &allowed))
			cpus[n++] = i;
	if (mode == PIN_DIFF && n < 2)
		die("--pin diff", EINVAL);
	CPU_ZERO(&one);
	CPU_SET(mode == PIN_DIFF && child ? cpus[1] : cpus[0], &one);
	if (sched_setaffinity(0, sizeof(one), &one) != 0)
		die("sched_setaffinity", errno);
}

/* ---- the child: answers whatever the parent measures ------------------- */

struct stopper {
	int fd;
	struct rump_server *server;
};

static void *
stopper_main(void *arg)
{
	struct stopper *s = arg;
	char c;

	/* EOF (or anything) on the stop pipe: the parent is done. */
	while (read(s->fd, &c, 1) < 0 && errno == EINTR)
		;
	rump_server_stop(s->server);
	return NULL;
}

static int
child_serve_rump(struct channels *ch)
{
	struct rk_runtime_opts rtopts = { .name = "bench-null" };
	struct rump_server_opts sopts = { .listen_fd = -1 };
	struct rk_runtime *rt = NULL;
	struct null_service *ns = NULL;
	struct rump_server *server = NULL;
	struct stopper stopper;
	pthread_t thread;
	int error;

	if ((error = rk_runtime_create(&rtopts, &rt)) != 0)
		return error;
	if ((error = null_service_create(rt, &ns)) != 0)
		goto out;
	sopts.path = ch->path;
	sopts.boot_id = rk_runtime_boot_id(rt);
	error = rump_server_create(&sopts, null_service_desc(ns), &server);
	if (error)
		goto out;
	stopper.fd = ch->stop[0];
	stopper.server = server;
	if ((error = pthread_create(&thread, NULL, stopper_main, &stopper)))
		goto out;
	/* Listening: tell the parent. */
	if ((error = full_io(ch->to_parent[1], "R", 1, true)) == 0)
		error = rump_server_run(server);
	else
		rump_server_stop(server);
	pthread_join(thread, NULL);
out:
	if (ns != NULL)
		null_service_shutdown(ns);
	if (server != NULL)
		rump_server_destroy(server);
	null_service_destroy(ns);
	rk_runtime_destroy(rt);
	return error;
}

static int
child_main(struct channels *ch, const struct opts *o)
{
	unsigned char buf[UNIX_MSG];
	int error;

	pin_to(o->pin, true);
	close(ch->to_child[1]);
	close(ch->to_parent[0]);
	close(ch->sock[0]);
	close(ch->stop[1]);

	/* Pipe ping-pong until the parent closes its end. */
	while (full_io(ch->to_child[0], buf, 1, false) == 0)
		if ((error = full_io(ch->to_parent[1], buf, 1, true)) != 0)
			return error;
	/* Unix request/response loop until the parent shuts it down. */
	while (full_io(ch->sock[1], buf, UNIX_MSG, false) == 0)
		if ((error = full_io(ch->sock[1], buf, UNIX_MSG, true)) != 0)
			return error;
	return child_serve_rump(ch);
}

/* ---- the parent: measures ---------------------------------------------- */

static void
bench_pipe(struct channels *ch, const struct opts *o, uint64_t *samples,
           struct result *r)
{
	unsigned char c = 'x';
	uint64_t cpu0 = cpu_ns();
	int error;

	for (unsigned i = 0; i < o->warmup + o->rounds; i++) {
		uint64_t t0 = now_ns();

		if ((error = full_io(ch->to_child[1], &c, 1, true)) != 0 ||
		    (error = full_io(ch->to_parent[0], &c, 1, false)) != 0)
			die("pipe ping-pong", error);
		if (i >= o->warmup)
			samples[i - o->warmup] = now_ns() - t0;
	}
	r->cpu_us = cpu_us_per(cpu0, o->warmup + o->rounds);
	close(ch->to_child[1]);
	summarize(samples, o->rounds, r);
}

static void
bench_unix(struct channels *ch, const struct opts *o, uint64_t *samples,
           struct result *r)
{
	unsigned char req[UNIX_MSG], resp[UNIX_MSG];
	uint64_t cpu0 = cpu_ns();
	int error;

	memset(req, 0x5a, sizeof(req));
	for (unsigned i = 0; i < o->warmup + o->rounds; i++) {
		uint64_t t0 = now_ns();

		if ((error = full_io(ch->sock[0], req, UNIX_MSG, true)) ||
		    (error = full_io(ch->sock[0], resp, UNIX_MSG, false)))
			die("unix socket loop", error);
		if (i >= o->warmup)
			samples[i - o->warmup] = now_ns() - t0;
	}
	r->cpu_us = cpu_us_per(cpu0, o->warmup + o->rounds);
	shutdown(ch->sock[0], SHUT_WR);
	summarize(samples, o->rounds, r);
}

static void
rump_exec_null(struct rump_client *c)
{
	struct rump_sqe sqe = { .opcode = RUMP_NULL_OP_NULL };
	int64_t res = rump_client_exec(c, &sqe, NULL);

	if (res != 0)
		die("ring NULL", res < 0 ? (int)-res : EBADMSG);
}

static void
bench_rump_latency(struct rump_client *c, const struct opts *o,
                   uint64_t *samples, struct result *ring,
                   struct result *control)
{
	uint64_t cpu0 = cpu_ns();
	int error;

	for (unsigned i = 0; i < o->warmup + o->rounds; i++) {
		uint64_t t0 = now_ns();

		rump_exec_null(c);
		if (i >= o->warmup)
			samples[i - o->warmup] = now_ns() - t0;
	}
	ring->cpu_us = cpu_us_per(cpu0, o->warmup + o->rounds);
	summarize(samples, o->rounds, ring);
	cpu0 = cpu_ns();
	for (unsigned i = 0; i < o->warmup + o->rounds; i++) {
		uint64_t t0 = now_ns();

		error = rump_client_call(c, RUMP_NULL_MSG_NULL, NULL, 0, NULL,
		                         0, NULL);
		if (error)
			die("control NULL", error);
		if (i >= o->warmup)
			samples[i - o->warmup] = now_ns() - t0;
	}
	control->cpu_us = cpu_us_per(cpu0, o->warmup + o->rounds);
	summarize(samples, o->rounds, control);
}

struct pipeline {
	struct rump_client *c;
	struct rump_request *reqs;
	struct rump_request **free;
	unsigned nfree;
	uint64_t done, bad;
};

static void
pipeline_done(struct rump_request *req, int64_t result, uint64_t aux)
{
	struct pipeline *p = req->arg;

	(void)aux;
	if (result != 0)
		p->bad++;
	p->done++;
	p->free[p->nfree++] = req;
}

/* Keeps depth ring NULLs in flight: submit until full, reap, refill. */
static void
bench_rump_pipelined(struct rump_client *c, const struct opts *o,
                     struct result *r)
{
	struct pipeline p = { .c = c };
	uint64_t submitted = 0, total = (uint64_t)o->rounds * 4, t0 = 0;
	uint64_t cpu0 = cpu_ns();
	uint64_t goal = o->warmup + total;
	int n, error;

	p.reqs = calloc(o->depth, sizeof(*p.reqs));
	p.free = calloc(o->depth, sizeof(*p.free));
	if (p.reqs == NULL || p.free == NULL)
		die("pipelined", ENOMEM);
	for (unsigned i = 0; i < o->depth; i++) {
		p.reqs[i].sqe.opcode = RUMP_NULL_OP_NULL;
		p.reqs[i].done = pipeline_done;
		p.reqs[i].arg = &p;
		p.free[p.nfree++] = &p.reqs[i];
	}
	while (p.done < goal) {
		if (t0 == 0 && p.done >= o->warmup)
			t0 = now_ns();
		while (p.nfree > 0 && submitted < goal) {
			struct rump_request *req = p.free[--p.nfree];

			error = rump_client_submit(c, req);
			if (error == EAGAIN) {
				p.free[p.nfree++] = req;
				break;
			}
			if (error)
				die("submit", error);
			submitted++;
		}
		n = rump_client_reap(c, UINT64_MAX);
		if (n < 0)
			die("reap", -n);
	}
	r->rps = (double)(p.done - o->warmup) * 1e9 /
	         (double)(now_ns() - t0);
	r->cpu_us = cpu_us_per(cpu0, goal);
	r->has_latency = false;
	if (p.bad)
		die("pipelined ring NULL", EBADMSG);
	free(p.reqs);
	free(p.free);
}

static void
print_row(const char *name, const struct result *r)
{
	if (r->has_latency)
		printf("  %-30s %9.2f %9.2f %11.0f %9.2f\n", name, r->p50_us,
		       r->p99_us, r->rps, r->cpu_us);
	else
		printf("  %-30s %9s %9s %11.0f %9.2f\n", name, "-", "-",
		       r->rps, r->cpu_us);
}

static void
verdict(const char *what, double value, double target, bool at_most)
{
	bool pass = at_most ? value <= target : value >= target;

	printf("%s = %.2f (target %s %.2f): %s\n", what, value,
	       at_most ? "<=" : ">=", target, pass ? "PASS" : "FAIL");
}

static void
usage(FILE *f)
{
	fprintf(f, "usage: bench-ipc [-n ROUNDS] [-w WARMUP] [-d DEPTH] "
	        "[--pin none|same|diff]\n"
	        "  -n  measured round trips per row (default 20000)\n"
	        "  -w  warm-up round trips, not measured (default 2000)\n"
	        "  -d  requests in flight for the pipelined row (default 64)\n"
	        "  --pin same: both processes on one CPU; diff: on two; "
	        "none (default): the scheduler decides\n");
}

static int
parse_opts(int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = {
		{ "pin", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	unsigned long v;
	char *end;
	int c;

	*o = (struct opts){ .rounds = 20000, .warmup = 2000, .depth = 64 };
	while ((c = getopt_long(argc, argv, "n:w:d:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'n':
		case 'w':
		case 'd':
			errno = 0;
			v = strtoul(optarg, &end, 10);
			if (errno || *end || optarg[0] == '-' || v > 10000000 ||
			    (v == 0 && c != 'w') || (c == 'd' && v > 2048)) {
				fprintf(stderr, "bench-ipc: bad -%c '%s'\n", c,
				        optarg);
				return 2;
			}
			*(c == 'n' ? &o->rounds : c == 'w' ? &o->warmup :
			  &o->depth) = (unsigned)v;
			break;
		case 'p':
			if (strcmp(optarg, "none") == 0)
				o->pin = PIN_NONE;
			else if (strcmp(optarg, "same") == 0)
				o->pin = PIN_SAME;
			else if (strcmp(optarg, "diff") == 0)
				o->pin = PIN_DIFF;
			else {
				fprintf(stderr, "bench-ipc: --pin takes none, "
				        "same or diff\n");
				return 2;
			}
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	static const char *const pin_names[] = { "none (scheduler)",
		"same CPU", "different CPUs" };
	struct rump_client_opts copts = {
		.version = RUMP_CLIENT_OPTS_VERSION,
		.service_kind = RUMP_SERVICE_NULL,
		.client_name = "bench-ipc",
	};
	struct result pipe_r, unix_r, ring_r, control_r, ring1_r, ringn_r;
	struct channels ch;
	struct opts o;
	struct rump_client *c;
	uint64_t *samples;
	const char *tmp = getenv("TMPDIR");
	char ready, label[64];
	bool broken = false;
	int status, error;
	pid_t pid;

	if ((status = parse_opts(argc, argv, &o)) != 0)
		return status;
	signal(SIGPIPE, SIG_IGN);
	samples = calloc(o.rounds, sizeof(*samples));
	if (samples == NULL)
		die("samples", ENOMEM);
	snprintf(ch.dir, sizeof(ch.dir), "%s/bench-ipc.XXXXXX",
	         tmp && *tmp ? tmp : "/tmp");
	if (mkdtemp(ch.dir) == NULL)
		die("mkdtemp", errno);
	if (snprintf(ch.path, sizeof(ch.path), "%s/null.sock", ch.dir) >=
	    (int)sizeof(ch.path))
		die(ch.dir, ENAMETOOLONG);
	if (pipe(ch.to_child) || pipe(ch.to_parent) || pipe(ch.stop) ||
	    socketpair(AF_UNIX, SOCK_STREAM, 0, ch.sock))
		die("pipe/socketpair", errno);

	fflush(stdout);
	pid = fork();
	if (pid < 0)
		die("fork", errno);
	if (pid == 0) {
		free(samples);
		error = child_main(&ch, &o);
		if (error)
			fprintf(stderr, "bench-ipc (child): %s\n",
			        strerror(error));
		exit(error ? 1 : 0);
	}
	pin_to(o.pin, false);
	close(ch.to_child[0]);
	close(ch.to_parent[1]);
	close(ch.sock[1]);
	close(ch.stop[0]);

	printf("bench-ipc: %u round trips per row after %u warm-up, "
	       "pinning: %s, %ld CPUs online\n\n", o.rounds, o.warmup,
	       pin_names[o.pin], sysconf(_SC_NPROCESSORS_ONLN));
	bench_pipe(&ch, &o, samples, &pipe_r);
	bench_unix(&ch, &o, samples, &unix_r);

	if ((error = full_io(ch.to_parent[0], &ready, 1, false)) != 0)
		die("the child's rump server did not start", error);
	copts.sq_entries = o.depth * 2;
	if ((error = rump_client_connect(ch.path, &copts, &c)) != 0)
		die("connect", error);
	bench_rump_latency(c, &o, samples, &ring_r, &control_r);
	ring1_r = ring_r;
	bench_rump_pipelined(c, &o, &ringn_r);
	rump_client_close(c);

	close(ch.stop[1]);
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) ||
	    WEXITSTATUS(status) != 0) {
		/* Speed never fails a run; a broken benchmark does. */
		fprintf(stderr, "bench-ipc: the child did not end cleanly\n");
		broken = true;
	}
	unlink(ch.path);
	rmdir(ch.dir);

	printf("  %-30s %9s %9s %11s %9s\n", "", "p50 us", "p99 us", "req/s",
	       "CPU us");
	print_row("pipe ping-pong (1 byte)", &pipe_r);
	print_row("unix socket loop (64 bytes)", &unix_r);
	print_row("rump control NULL", &control_r);
	print_row("rump ring NULL, 1 in flight", &ring1_r);
	snprintf(label, sizeof(label), "rump ring NULL, %u in flight", o.depth);
	print_row(label, &ringn_r);
	printf("\n");
	printf("  (CPU us: the measuring process's CPU time per request; "
	       "the ring rows poll\n   before sleeping, on both sides)\n\n");
	verdict("ours p50 / pipe p50", ring_r.p50_us / pipe_r.p50_us,
	        TARGET_LATENCY_RATIO, true);
	snprintf(label, sizeof(label), "ours req/s at %u in flight / unix "
	         "loop req/s", o.depth);
	verdict(label, ringn_r.rps / unix_r.rps, TARGET_THROUGHPUT_RATIO,
	        false);
	free(samples);
	return broken ? 1 : 0;
}
