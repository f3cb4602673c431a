#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "child.h"

/* Where a child finds its control and listening sockets. */
#define CHILD_CONTROL_FD 3
#define CHILD_LISTEN_FD 4

uint64_t
rumpd_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
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

void
rumpd_child_init(struct rumpd_child *c, const char *name,
                 const char *runtime_dir)
{
	memset(c, 0, sizeof(*c));
	c->name = name;
	c->runtime_dir = runtime_dir;
	c->state = CHILD_STOPPED;
	c->pid = -1;
	c->control_fd = -1;
	c->listen_fd = -1;
	c->backoff_ms = RUMPD_BACKOFF_MIN_MS;
}

/* In the forked child: only what is needed before exec, then exec. */
static void __attribute__((noreturn))
exec_child(struct rumpd_child *c, int control_fd, pid_t parent)
{
	sigset_t none;
	char *argv[] = { (char *)c->name, "--socket", c->socket, NULL };
	int listen_fd;

	/* rumpd blocks the signals it reads from a signalfd; the mask
	 * survives exec and the child must see SIGTERM. */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	/* A driver must not outlive its supervisor. */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != parent)
		_exit(1);
	/* Out of the way first, so that neither lands on the other's
	 * number; dup2 then gives copies without FD_CLOEXEC. */
	control_fd = fcntl(control_fd, F_DUPFD_CLOEXEC, 10);
	listen_fd = c->listen_fd < 0 ? -1 :
	            fcntl(c->listen_fd, F_DUPFD_CLOEXEC, 10);
	if (control_fd < 0 || (c->listen_fd >= 0 && listen_fd < 0) ||
	    dup2(control_fd, CHILD_CONTROL_FD) < 0 ||
	    (listen_fd >= 0 && dup2(listen_fd, CHILD_LISTEN_FD) < 0)) {
		fprintf(stderr, "rumpd: %s: passing descriptors: %s\n",
		        c->name, strerror(errno));
		_exit(127);
	}
	setenv("RUMPD_CONTROL_FD", "3", 1);
	if (listen_fd >= 0)
		setenv("RUMPD_LISTEN_FD", "4", 1);
	else
		unsetenv("RUMPD_LISTEN_FD");
	setenv("RUMPD_DIR", c->runtime_dir, 1);
	execv(c->path, argv);
	fprintf(stderr, "rumpd: cannot run %s: %s\n", c->path,
	        strerror(errno));
	_exit(127);
}

int
rumpd_child_start(struct rumpd_child *c)
{
	int sv[2];
	pid_t parent = getpid(), pid;
	int error;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
		return errno;
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		error = errno;
		close(sv[0]);
		close(sv[1]);
		return error;
	}
	if (pid == 0)
		exec_child(c, sv[1], parent);
	close(sv[1]);
	c->pid = pid;
	c->control_fd = sv[0];
	c->state = CHILD_STARTING;
	c->started_ms = rumpd_now_ms();
	c->boot_id = 0;
	return 0;
}

int
rumpd_child_read_ready(struct rumpd_child *c)
{
	char line[64], *end;
	ssize_t n;

	n = recv(c->control_fd, line, sizeof(line) - 1, MSG_DONTWAIT);
	if (n < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK ? EAGAIN : errno;
	if (n == 0)
		return ECONNRESET;
	line[n] = '\0';
	if (strncmp(line, "READY ", 6) != 0 || line[n - 1] != '\n')
		return EPROTO;
	errno = 0;
	c->boot_id = strtoull(line + 6, &end, 16);
	if (errno != 0 || end == line + 6 || *end != '\n')
		return EPROTO;
	c->state = CHILD_RUNNING;
	return 0;
}

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

void
rumpd_child_exited(struct rumpd_child *c, int status)
{
	uint64_t now = rumpd_now_ms();
	char why[64];

	if (c->control_fd >= 0)
		close(c->control_fd);
	c->control_fd = -1;
	if (c->state == CHILD_RUNNING &&
	    now - c->started_ms >= RUMPD_HEALTHY_MS)
		c->backoff_ms = RUMPD_BACKOFF_MIN_MS;
	rumpd_error("%s (pid %ld) %s after %.1f s", c->name, (long)c->pid,
	            rumpd_exit_reason(status, why, sizeof(why)),
	            (double)(now - c->started_ms) / 1000.0);
	c->state = CHILD_STOPPED;
	c->pid = -1;
	c->restart_at_ms = now + c->backoff_ms;
	c->backoff_ms *= 2;
	if (c->backoff_ms > RUMPD_BACKOFF_MAX_MS)
		c->backoff_ms = RUMPD_BACKOFF_MAX_MS;
}

/* Polls rather than sleeping on SIGCHLD: the caller's signalfd owns it. */
static int
wait_exit(pid_t pid, int timeout_ms, int *status)
{
	uint64_t deadline = rumpd_now_ms() + (uint64_t)timeout_ms;
	struct timespec tick = { 0, 10 * 1000 * 1000 };
	pid_t r;

	for (;;) {
		r = waitpid(pid, status, timeout_ms < 0 ? 0 : WNOHANG);
		if (r == pid)
			return 0;
		if (r < 0 && errno != EINTR)
			return errno;
		if (timeout_ms >= 0 && rumpd_now_ms() >= deadline)
			return ETIMEDOUT;
		nanosleep(&tick, NULL);
	}
}

void
rumpd_child_stop(struct rumpd_child *c)
{
	char why[64];
	int status = 0;

	if (c->pid > 0) {
		kill(c->pid, SIGTERM);
		if (wait_exit(c->pid, RUMPD_STOP_TIMEOUT_MS, &status) ==
		    ETIMEDOUT) {
			rumpd_error("%s (pid %ld) did not stop in %d ms; "
			            "killing it", c->name, (long)c->pid,
			            RUMPD_STOP_TIMEOUT_MS);
			kill(c->pid, SIGKILL);
			wait_exit(c->pid, -1, &status);
		}
		rumpd_log("%s (pid %ld) stopped: %s", c->name, (long)c->pid,
		          rumpd_exit_reason(status, why, sizeof(why)));
	}
	if (c->control_fd >= 0)
		close(c->control_fd);
	c->control_fd = -1;
	c->pid = -1;
	c->state = CHILD_STOPPED;
}
