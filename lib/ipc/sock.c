/*
 * Where services live (a directory of Unix sockets) and how to listen on
 * and connect to one.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "rump/ipc.h"

static int make_dir(const char *dir)
{
	struct stat st;

	if (mkdir(dir, 0755) == 0)
		return 0;
	if (errno != EEXIST)
		return errno;
	if (stat(dir, &st) != 0)
		return errno;
	return S_ISDIR(st.st_mode) ? 0 : ENOTDIR;
}

int rump_runtime_dir(char *buf, size_t cap)
{
	const char *env = getenv("RUMPD_DIR");
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	int n;

	if (env != NULL && env[0] != '\0')
		n = snprintf(buf, cap, "%s", env);
	else if (geteuid() == 0)
		n = snprintf(buf, cap, "/run/rumpd");
	else if (xdg != NULL && xdg[0] != '\0')
		n = snprintf(buf, cap, "%s/rumpd", xdg);
	else
		n = snprintf(buf, cap, "/tmp/rumpd-%u", (unsigned)geteuid());
	if (n < 0)
		return EINVAL;
	if ((size_t)n >= cap)
		return ENAMETOOLONG;
	return make_dir(buf);
}

int rump_service_path(const char *name, char *buf, size_t cap)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int err, n;

	if (name == NULL || name[0] == '\0' || strchr(name, '/') != NULL ||
	    strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return EINVAL;
	err = rump_runtime_dir(dir, sizeof dir);
	if (err != 0)
		return err;
	n = snprintf(buf, cap, "%s/%s.sock", dir, name);
	if (n < 0)
		return EINVAL;
	return (size_t)n >= cap ? ENAMETOOLONG : 0;
}

static int unix_addr(const char *path, struct sockaddr_un *sa)
{
	size_t len = strlen(path);

	if (len == 0)
		return EINVAL;
	if (len >= sizeof sa->sun_path)
		return ENAMETOOLONG;
	memset(sa, 0, sizeof *sa);
	sa->sun_family = AF_UNIX;
	memcpy(sa->sun_path, path, len);
	return 0;
}

int rump_connect_unix(const char *path, int *fdp)
{
	struct sockaddr_un sa;
	int err, fd;

	err = unix_addr(path, &sa);
	if (err != 0)
		return err;
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return errno;
	while (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
		if (errno == EINTR)
			continue;
		err = errno;
		close(fd);
		return err;
	}
	*fdp = fd;
	return 0;
}

/* Whether something is listening at path; only a refused connection
 * proves the socket file is stale. */
static bool socket_is_stale(const char *path)
{
	int fd, err;

	err = rump_connect_unix(path, &fd);
	if (err == 0) {
		close(fd);
		return false;
	}
	return err == ECONNREFUSED;
}

int rump_listen_unix(const char *path, int *fdp)
{
	struct sockaddr_un sa;
	int err, fd;
	bool retried = false;

	err = unix_addr(path, &sa);
	if (err != 0)
		return err;
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return errno;
	while (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
		err = errno;
		if (err != EADDRINUSE || retried || !socket_is_stale(path))
			goto fail;
		if (unlink(path) != 0 && errno != ENOENT) {
			err = errno;
			goto fail;
		}
		retried = true;
	}
	/* Before listen(), so nobody can connect while the mode is wider. */
	if (chmod(path, 0660) != 0 || listen(fd, SOMAXCONN) != 0) {
		err = errno;
		unlink(path);
		goto fail;
	}
	*fdp = fd;
	return 0;

fail:
	close(fd);
	return err;
}
