/*
 * The driver's side of the supervisor contract, see rump/supervised.h and
 * docs/rumpd.md.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rump/supervised.h"
#include "confine.h"

#define LINE_MAX_LEN 256

struct rump_supervised {
	char name[32];
	int control_fd;               /* -1: not supervised */
	int wake_fd;                  /* eventfd: the thread should end */
	pthread_t thread;
	bool thread_running;
	bool confined;
	rump_supervised_counters_fn counters;
	void *counters_ctx;
};

static int
env_number(const char *var, long max, long *out)
{
	const char *s = getenv(var);
	char *end;
	long v;

	if (s == NULL || *s == '\0')
		return ENOENT;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < 0 || v > max)
		return EINVAL;
	*out = v;
	return 0;
}

int
rump_supervised_open(const char *name, struct rump_supervised **supp)
{
	struct rump_supervised *sup;
	struct stat st;
	long fd;
	int error;

	sup = calloc(1, sizeof(*sup));
	if (sup == NULL)
		return ENOMEM;
	snprintf(sup->name, sizeof(sup->name), "%s", name);
	sup->control_fd = -1;
	sup->wake_fd = -1;
	error = env_number("RUMPD_CONTROL_FD", INT_MAX, &fd);
	if (error == ENOENT) {
		*supp = sup;
		return 0;
	}
	if (error == 0 && fstat((int)fd, &st) != 0)
		error = errno;
	else if (error == 0 && !S_ISSOCK(st.st_mode))
		error = ENOTSOCK;
	if (error) {
		free(sup);
		return error == ENOTSOCK || error == EBADF ? EINVAL : error;
	}
	sup->control_fd = (int)fd;
	/* Not for a program the driver might run. */
	fcntl(sup->control_fd, F_SETFD, FD_CLOEXEC);
	*supp = sup;
	return 0;
}

bool
rump_supervised_active(const struct rump_supervised *sup)
{
	return sup != NULL && sup->control_fd >= 0;
}

static int
send_line(struct rump_supervised *sup, const char *line, size_t len)
{
	ssize_t n = send(sup->control_fd, line, len, MSG_NOSIGNAL);

	if (n < 0)
		return errno;
	return (size_t)n == len ? 0 : EIO;
}

int
rump_supervised_confine(struct rump_supervised *sup,
                        enum rump_confine_kind kind)
{
	struct rump_confine_opts opts = { .kind = kind };
	char desc[200], line[LINE_MAX_LEN];
	const char *want = getenv("RUMPD_CONFINE");
	long uid, gid;
	int error, n;

	if (!rump_supervised_active(sup) || want == NULL ||
	    strcmp(want, "1") != 0)
		return 0;
	error = env_number("RUMPD_CONFINE_UID", INT_MAX, &uid);
	if (error == 0)
		error = env_number("RUMPD_CONFINE_GID", INT_MAX, &gid);
	if (error == 0) {
		opts.set_ids = true;
		opts.uid = (uid_t)uid;
		opts.gid = (gid_t)gid;
	} else if (error != ENOENT) {
		fprintf(stderr, "%s: bad RUMPD_CONFINE_UID/GID\n", sup->name);
		return error;
	}
	if ((error = rump_confine(&opts, desc, sizeof(desc))) != 0) {
		fprintf(stderr, "%s: cannot confine itself: %s\n", sup->name,
		        strerror(error));
		return error;
	}
	sup->confined = true;
	n = snprintf(line, sizeof(line), "CONFINED %s\n", desc);
	if (n >= (int)sizeof(line))
		n = (int)sizeof(line) - 1, line[n - 1] = '\n';
	/* The supervisor shows it; losing the line loses nothing else. */
	send_line(sup, line, (size_t)n);
	return 0;
}

#ifdef RUMP_TEST_TRIGGERS
/*
 * Test builds: tries what a confined driver must not be able to do and
 * says what happened.  Only the supervisor can ask (the control socket is
 * no client's), and only test builds have this code at all.
 */
static void
attempt(const char *what, char *out, size_t cap)
{
	const char *arg = strchr(what, ':');
	int error = 0;

	if (arg == NULL) {
		snprintf(out, cap, "unknown trigger");
		return;
	}
	arg++;
	if (strncmp(what, "open:", 5) == 0) {
		int fd = open(arg, O_RDONLY | O_CLOEXEC);

		if (fd >= 0)
			close(fd);
		else
			error = errno;
	} else if (strncmp(what, "connect:", 8) == 0) {
		struct sockaddr_in sin = { .sin_family = AF_INET };
		const char *colon = strrchr(arg, ':');
		char host[64];
		int fd;

		if (colon == NULL || (size_t)(colon - arg) >= sizeof(host)) {
			snprintf(out, cap, "want connect:HOST:PORT");
			return;
		}
		memcpy(host, arg, (size_t)(colon - arg));
		host[colon - arg] = '\0';
		sin.sin_port = htons((uint16_t)atoi(colon + 1));
		if (inet_pton(AF_INET, host, &sin.sin_addr) != 1) {
			snprintf(out, cap, "bad address %s", host);
			return;
		}
		fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			error = errno;
		else if (connect(fd, (struct sockaddr *)&sin,
		                 sizeof(sin)) != 0)
			error = errno;
		if (fd >= 0)
			close(fd);
	} else if (strncmp(what, "exec:", 5) == 0) {
		char *const argv[] = { (char *)arg, NULL };
		char *const envp[] = { NULL };

		/* Success replaces the driver: the supervisor sees it die
		 * without an answer, which fails the test as it should. */
		execve(arg, argv, envp);
		error = errno;
	} else if (strncmp(what, "ptrace:", 7) == 0) {
		pid_t pid = (pid_t)atol(arg);

		if (ptrace(PTRACE_ATTACH, pid, NULL, NULL) == 0)
			ptrace(PTRACE_DETACH, pid, NULL, NULL);
		else
			error = errno;
	} else {
		snprintf(out, cap, "unknown trigger");
		return;
	}
	if (error)
		snprintf(out, cap, "denied: %s (%s)", strerror(error),
		         strerrorname_np(error) ? strerrorname_np(error) : "?");
	else
		snprintf(out, cap, "ALLOWED");
}
#endif

static void
answer(struct rump_supervised *sup, char *line)
{
	char out[LINE_MAX_LEN];
	int n = 0;

	if (strncmp(line, "PING ", 5) == 0) {
		struct rump_supervised_counters c = { 0, 0 };
		char *end;
		unsigned long long seq;

		errno = 0;
		seq = strtoull(line + 5, &end, 10);
		if (errno != 0 || end == line + 5)
			return;
		if (sup->counters != NULL)
			sup->counters(sup->counters_ctx, &c);
		n = snprintf(out, sizeof(out), "PONG %llu %" PRIu64 " %" PRIu64
		             "\n", seq, c.requests, c.bytes);
	} else if (strncmp(line, "TRIGGER ", 8) == 0) {
#ifdef RUMP_TEST_TRIGGERS
		char result[160];

		if (!sup->confined)
			snprintf(result, sizeof(result), "not confined");
		else
			attempt(line + 8, result, sizeof(result));
		n = snprintf(out, sizeof(out), "TRIGGERED %.80s %s\n",
		             line + 8, result);
#else
		n = snprintf(out, sizeof(out), "TRIGGERED %.80s not a test "
		             "build\n", line + 8);
#endif
	} else {
		/* Newer supervisors may say more; not an error. */
		return;
	}
	if (n >= (int)sizeof(out))
		n = (int)sizeof(out) - 1, out[n - 1] = '\n';
	send_line(sup, out, (size_t)n);
}

static void *
heartbeat_main(void *arg)
{
	struct rump_supervised *sup = arg;
	char line[LINE_MAX_LEN];

	for (;;) {
		struct pollfd pfd[2] = {
			{ .fd = sup->control_fd, .events = POLLIN },
			{ .fd = sup->wake_fd, .events = POLLIN },
		};
		ssize_t n;

		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pfd[1].revents != 0)
			break;
		n = recv(sup->control_fd, line, sizeof(line) - 1,
		         MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		/* The supervisor is gone (its parent-death signal may not
		 * have been set up): stop the way SIGTERM stops us. */
		if (n <= 0) {
			kill(getpid(), SIGTERM);
			break;
		}
		line[n] = '\0';
		if (line[n - 1] == '\n')
			line[n - 1] = '\0';
		answer(sup, line);
	}
	return NULL;
}

int
rump_supervised_ready(struct rump_supervised *sup, uint64_t boot_id,
                      rump_supervised_counters_fn counters, void *ctx)
{
	char line[64];
	int n, error;

	if (!rump_supervised_active(sup))
		return 0;
	sup->counters = counters;
	sup->counters_ctx = ctx;
	sup->wake_fd = eventfd(0, EFD_CLOEXEC);
	if (sup->wake_fd < 0)
		return errno;
	if ((error = pthread_create(&sup->thread, NULL, heartbeat_main,
	                            sup)) != 0) {
		close(sup->wake_fd);
		sup->wake_fd = -1;
		return error;
	}
	sup->thread_running = true;
	n = snprintf(line, sizeof(line), "READY %016" PRIx64 " heartbeat\n",
	             boot_id);
	return send_line(sup, line, (size_t)n);
}

void
rump_supervised_close(struct rump_supervised *sup)
{
	uint64_t one = 1;

	if (sup == NULL)
		return;
	if (sup->thread_running) {
		if (write(sup->wake_fd, &one, sizeof(one)) != sizeof(one))
			pthread_cancel(sup->thread);
		pthread_join(sup->thread, NULL);
	}
	if (sup->wake_fd >= 0)
		close(sup->wake_fd);
	free(sup);
}
