/*
 * What every driver's main() needs besides the supervisor contract proper:
 * stop signals, the listening socket, the pidfile (rump/supervised.h).
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rump/ipc.h"
#include "rump/server.h"
#include "rump/supervised.h"

static void
stop_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGHUP);
}

int
rump_driver_signals_block(void)
{
	sigset_t set;

	stop_signals(&set);
	/* A client that goes away mid-reply is an error to handle, not a
	 * reason to die. */
	if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
		return errno;
	return pthread_sigmask(SIG_BLOCK, &set, NULL);
}

struct rump_driver_stopper {
	pthread_t thread;
	int sig_fd;
	int wake_fd;
	int sig;                  /* what came, 0 if none */
	rump_driver_stop_fn stop;
	void *ctx;
};

/* Signals are taken synchronously from a signalfd: stopping needs no
 * global state and nothing async-signal-safe. */
static void *
stopper_main(void *arg)
{
	struct rump_driver_stopper *s = arg;
	struct pollfd pfd[2] = {
		{ .fd = s->sig_fd, .events = POLLIN },
		{ .fd = s->wake_fd, .events = POLLIN },
	};
	struct signalfd_siginfo si;

	for (;;) {
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			/* Cannot wait: better stop than never stop. */
			break;
		}
		if (pfd[1].revents != 0)
			return NULL;
		if (read(s->sig_fd, &si, sizeof(si)) == sizeof(si)) {
			s->sig = (int)si.ssi_signo;
			break;
		}
	}
	s->stop(s->ctx, s->sig);
	return NULL;
}

int
rump_driver_stopper_start(rump_driver_stop_fn stop, void *ctx,
                          struct rump_driver_stopper **sp)
{
	struct rump_driver_stopper *s;
	sigset_t set;
	int error;

	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return ENOMEM;
	s->stop = stop;
	s->ctx = ctx;
	s->wake_fd = -1;
	stop_signals(&set);
	s->sig_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (s->sig_fd < 0) {
		error = errno;
		goto fail;
	}
	s->wake_fd = eventfd(0, EFD_CLOEXEC);
	if (s->wake_fd < 0) {
		error = errno;
		goto fail;
	}
	if ((error = pthread_create(&s->thread, NULL, stopper_main, s)) != 0)
		goto fail;
	*sp = s;
	return 0;
fail:
	if (s->wake_fd >= 0)
		close(s->wake_fd);
	if (s->sig_fd >= 0)
		close(s->sig_fd);
	free(s);
	return error;
}

void
rump_driver_stop_server(void *server, int sig)
{
	(void)sig;
	rump_server_stop(server);
}

int
rump_driver_stopper_end(struct rump_driver_stopper *s)
{
	uint64_t one = 1;
	int sig;

	if (s == NULL)
		return 0;
	/* An eventfd write of 1 cannot fail short of a bad descriptor. */
	if (write(s->wake_fd, &one, sizeof(one)) != sizeof(one))
		pthread_cancel(s->thread);
	pthread_join(s->thread, NULL);
	sig = s->sig;
	close(s->wake_fd);
	close(s->sig_fd);
	free(s);
	return sig;
}

int
rump_driver_inherited_listener(int *fdp)
{
	const char *s = getenv("RUMPD_LISTEN_FD");
	struct stat st;
	char *end;
	long v;

	*fdp = -1;
	if (s == NULL || *s == '\0')
		return 0;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < 0 || v > INT_MAX)
		return EINVAL;
	if (fstat((int)v, &st) != 0)
		return errno == EBADF ? EINVAL : errno;
	if (!S_ISSOCK(st.st_mode))
		return ENOTSOCK;
	*fdp = (int)v;
	return 0;
}

int
rump_driver_listen(const char *service, const char *path, char *name,
                   size_t cap, int *fdp, bool *ownp)
{
	char dir[PATH_MAX];
	int error;

	*ownp = false;
	if ((error = rump_driver_inherited_listener(fdp)) != 0)
		return error;
	if (*fdp >= 0) {
		snprintf(name, cap, "%s (fd %d from the supervisor)",
		         path != NULL ? path : "a socket", *fdp);
		return 0;
	}
	if (path != NULL) {
		if (snprintf(name, cap, "%s", path) >= (int)cap)
			return ENAMETOOLONG;
	} else {
		if ((error = rump_runtime_dir(dir, sizeof(dir))) != 0)
			return error;
		if (mkdir(dir, 0700) != 0 && errno != EEXIST)
			return errno;
		if ((error = rump_service_path(service, name, cap)) != 0)
			return error;
	}
	if ((error = rump_listen_unix(name, fdp)) != 0)
		return error;
	*ownp = true;
	return 0;
}

int
rump_driver_pidfile(const char *path)
{
	char tmp[PATH_MAX];
	FILE *f;
	int error = 0;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return ENAMETOOLONG;
	f = fopen(tmp, "we");
	if (f == NULL)
		return errno;
	if (fprintf(f, "%ld\n", (long)getpid()) < 0)
		error = errno;
	if (fclose(f) != 0 && error == 0)
		error = errno;
	if (error == 0 && rename(tmp, path) != 0)
		error = errno;
	if (error)
		unlink(tmp);
	return error;
}
