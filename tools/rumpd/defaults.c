/*
 * The built-in configuration, for "rumpd" with no file: every driver that
 * is installed (or built next to rumpd), on a disk image made on the
 * first run, and rumpnet on a network bus (and a TAP when root).
 * rumpnull is always there, so the supervisor itself always
 * has something to show.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rumpd.h"

#define IMAGE_BYTES (256ull << 20)
#define SECTOR 512ull
/* The partition: from 1 MiB to 1 MiB before the end (the GPT backup). */
#define PART_START_SECTORS 2048ull

/* The default network: rumpnet is .1 (and ::1) on each; a peer on the bus
 * or the host on the TAP takes .2.  ULA prefixes, never routed outside. */
#define DEFAULT_BUS_ADDR4 "10.77.0.1/24"
#define DEFAULT_BUS_ADDR6 "fd00:77::1/64"
#define DEFAULT_TAP "rump0"
#define DEFAULT_TAP_ADDR4 "10.78.0.1/24"
#define DEFAULT_TAP_ADDR6 "fd00:78::1/64"

extern char **environ;

static int
state_dir(char *buf, size_t cap)
{
	const char *env = getenv("RUMPD_STATE_DIR"), *home, *data;
	int n;

	if (env != NULL && *env != '\0')
		n = snprintf(buf, cap, "%s", env);
	else if (geteuid() == 0)
		n = snprintf(buf, cap, "/var/lib/rumpd");
	else if ((data = getenv("XDG_DATA_HOME")) != NULL && *data == '/')
		n = snprintf(buf, cap, "%s/rumpd", data);
	else if ((home = getenv("HOME")) != NULL && *home == '/')
		n = snprintf(buf, cap, "%s/.local/share/rumpd", home);
	else
		return ENOENT;
	return n >= (int)cap ? ENAMETOOLONG : 0;
}

/* mkdir -p, mode 0700 for what it makes. */
static int
make_dirs(const char *path)
{
	char tmp[PATH_MAX];

	if (snprintf(tmp, sizeof(tmp), "%s", path) >= (int)sizeof(tmp))
		return ENAMETOOLONG;
	for (char *p = tmp + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
			return errno;
		*p = '/';
	}
	if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
		return errno;
	return 0;
}

/* Runs a tool, its input from stdin_text, its chatter hidden unless it
 * fails. */
static int
run_tool(char *const argv[], const char *stdin_text)
{
	posix_spawn_file_actions_t fa;
	int in[2], status, error;
	pid_t pid;

	if (pipe2(in, O_CLOEXEC) != 0)
		return errno;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, in[0], 0);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	error = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(in[0]);
	if (error) {
		close(in[1]);
		return error;
	}
	if (stdin_text != NULL &&
	    write(in[1], stdin_text, strlen(stdin_text)) < 0)
		error = errno;
	close(in[1]);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return errno;
	if (error == 0 && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
		error = EIO;
	return error;
}

/*
 * A GPT with one ext4 partition, made under a temporary name and renamed,
 * so a half-made image never looks like a made one.
 */
static int
make_image(const char *path)
{
	char tmp[PATH_MAX], script[256], offset[64], kib[32];
	unsigned long long sectors = IMAGE_BYTES / SECTOR;
	unsigned long long part = sectors - 2 * PART_START_SECTORS;
	int fd, error;

	if (snprintf(tmp, sizeof(tmp), "%s.new", path) >= (int)sizeof(tmp))
		return ENAMETOOLONG;
	fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return errno;
	error = ftruncate(fd, (off_t)IMAGE_BYTES) == 0 ? 0 : errno;
	close(fd);
	snprintf(script, sizeof(script), "label: gpt\nstart=%llu, size=%llu, "
	         "type=L, name=rumpfs\n", PART_START_SECTORS, part);
	snprintf(offset, sizeof(offset), "offset=%llu",
	         PART_START_SECTORS * SECTOR);
	snprintf(kib, sizeof(kib), "%lluk", part * SECTOR / 1024);
	{
		char *const sfdisk[] = { "sfdisk", "--quiet", tmp, NULL };
		char *const mkfs[] = { "mkfs.ext4", "-q", "-F", "-L", "rumpfs",
		                       "-E", offset, tmp, kib, NULL };

		if (error == 0 && (error = run_tool(sfdisk, script)) != 0)
			rumpd_error("sfdisk on %s failed: %s", tmp,
			            strerror(error));
		else if (error == 0 &&
		         (error = run_tool(mkfs, NULL)) != 0)
			rumpd_error("mkfs.ext4 on %s failed: %s", tmp,
			            strerror(error));
	}
	if (error == 0 && rename(tmp, path) != 0)
		error = errno;
	if (error)
		unlink(tmp);
	return error;
}

/*
 * Whether a program follows the supervisor contract, which every driver
 * does by reading RUMPD_CONTROL_FD: one that does not would never report
 * READY, and a default configuration must start.  Drivers are being
 * written and adopt the contract one by one; this keeps the default as
 * large as what works today.
 */
static bool
speaks_contract(const char *path)
{
	static const char mark[] = "RUMPD_CONTROL_FD";
	char buf[65536 + sizeof(mark)];
	size_t keep = 0;
	ssize_t n;
	bool found = false;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return false;
	while (!found && (n = read(fd, buf + keep, sizeof(buf) - keep)) > 0) {
		size_t len = keep + (size_t)n;

		found = memmem(buf, len, mark, sizeof(mark) - 1) != NULL;
		/* A mark split across two reads is still found. */
		keep = len < sizeof(mark) ? len : sizeof(mark) - 1;
		memmove(buf, buf + len - keep, keep);
	}
	close(fd);
	return found;
}

static bool
have_program(enum rumpd_kind kind)
{
	char path[PATH_MAX];

	if (rumpd_find_program(rumpd_kinds[kind].program,
	                       rumpd_kinds[kind].build_subdir, path,
	                       sizeof(path)) != 0)
		return false;
	if (!speaks_contract(path)) {
		rumpd_log("leaving %s out of the default: it does not speak "
		          "the supervisor contract yet", path);
		return false;
	}
	return true;
}

/* Root mounts for the gateway; anyone else needs /dev/fuse and
 * fusermount3 (found by the gateway's libfuse in PATH). */
static bool
can_mount_fuse(void)
{
	if (access("/dev/fuse", R_OK | W_OK) != 0) {
		rumpd_log("leaving the fuse gateway out of the default: "
		          "/dev/fuse: %s", strerror(errno));
		return false;
	}
	return true;
}

static bool
can_make_tap(void)
{
	int fd;

	/* Not persistent: it goes away with the descriptor. */
	if (rumpd_tap_open(DEFAULT_TAP, &fd) != 0)
		return false;
	close(fd);
	return true;
}

static int
add_device(struct rumpd_driver_conf *d, const char *name, const char *fmt,
           const char *arg)
{
	struct rumpd_device *dev = &d->devices[d->ndevices];

	snprintf(dev->name, sizeof(dev->name), "%s", name);
	if (snprintf(dev->source, sizeof(dev->source), fmt, arg) >=
	    (int)sizeof(dev->source))
		return ENAMETOOLONG;
	d->ndevices++;
	return 0;
}

static void
add_addr(struct rumpd_driver_conf *d, const char *ifname, const char *addr)
{
	struct rumpd_net_addr *a = &d->addrs[d->naddrs++];

	snprintf(a->ifname, sizeof(a->ifname), "%s", ifname);
	snprintf(a->addr, sizeof(a->addr), "%s", addr);
	a->line = -1;
}

/*
 * rumpnet on a shared-memory bus in the state directory, which any
 * rumpnet allowed to open the file joins; and as root on a TAP too, whose
 * host side is left to the administrator: rumpd does not change the
 * host's network (docs/rumpd.md says what to type).
 */
static int
default_net(struct rumpd_config *cfg, const char *dir)
{
	struct rumpd_driver_conf *d;
	int error;

	if ((d = rumpd_config_add(cfg, "net", KIND_NET)) == NULL)
		return ENOMEM;
	if ((error = add_device(d, "eth0", "shm:%s/net.bus", dir)) != 0) {
		rumpd_error("state directory name too long: %s", dir);
		return error;
	}
	add_addr(d, "eth0", DEFAULT_BUS_ADDR4);
	add_addr(d, "eth0", DEFAULT_BUS_ADDR6);
	if (geteuid() == 0 && can_make_tap()) {
		add_device(d, "eth1", "tap:%s", DEFAULT_TAP);
		add_addr(d, "eth1", DEFAULT_TAP_ADDR4);
		add_addr(d, "eth1", DEFAULT_TAP_ADDR6);
	}
	for (unsigned i = 0; i < d->ndevices; i++)
		d->devices[i].line = -1;
	return 0;
}

/* The disk image, rumpdisk on it, and what reads it if installed. */
static int
default_storage(struct supervisor *sv, const char *dir)
{
	struct rumpd_config *cfg = &sv->cfg;
	struct rumpd_driver_conf *d;
	char image[PATH_MAX + 16];
	struct stat st;
	int error;

	if (snprintf(image, sizeof(image), "%s/disk.img", dir) >=
	    (int)sizeof(d->devices[0].source)) {
		rumpd_error("state directory name too long: %s", dir);
		return ENAMETOOLONG;
	}
	if (stat(image, &st) != 0) {
		rumpd_log("first run: making %s (%llu MiB, GPT, one ext4 "
		          "partition)", image, IMAGE_BYTES >> 20);
		if ((error = make_image(image)) != 0) {
			rumpd_error("cannot make %s: %s", image,
			            strerror(error));
			return error;
		}
	}
	if ((d = rumpd_config_add(cfg, "disk", KIND_DISK)) == NULL)
		return ENOMEM;
	snprintf(d->devices[0].name, sizeof(d->devices[0].name), "wd0");
	memcpy(d->devices[0].source, image, strlen(image) + 1);
	d->ndevices = 1;
	if (have_program(KIND_NBD)) {
		if ((d = rumpd_config_add(cfg, "nbd", KIND_NBD)) == NULL)
			return ENOMEM;
		snprintf(d->ref, sizeof(d->ref), "disk");
		d->ref_line = -1;
	}
	if (have_program(KIND_FS)) {
		if ((d = rumpd_config_add(cfg, "fs", KIND_FS)) == NULL)
			return ENOMEM;
		snprintf(d->ref, sizeof(d->ref), "disk");
		snprintf(d->device, sizeof(d->device), "wd0s1");
		d->ref_line = d->device_line = -1;
		if (have_program(KIND_FUSE) && can_mount_fuse()) {
			if ((d = rumpd_config_add(cfg, "files", KIND_FUSE)) ==
			    NULL)
				return ENOMEM;
			snprintf(d->ref, sizeof(d->ref), "fs");
			if (snprintf(d->mount, sizeof(d->mount), "%.*s/files",
			             (int)sizeof(d->mount) - 8,
			             sv->runtime_dir) >= (int)sizeof(d->mount))
				return ENAMETOOLONG;
			d->ref_line = d->mount_line = -1;
			if ((error = make_dirs(d->mount)) != 0) {
				rumpd_error("cannot make %s: %s", d->mount,
				            strerror(error));
				return error;
			}
		}
	}
	return 0;
}

int
rumpd_default_config(struct supervisor *sv)
{
	struct rumpd_config *cfg = &sv->cfg;
	bool disk, net;
	char dir[PATH_MAX];
	int error;

	rumpd_config_init(cfg, "built-in default");
	if (rumpd_config_add(cfg, "null", KIND_NULL) == NULL)
		return ENOMEM;
	disk = have_program(KIND_DISK);
	net = have_program(KIND_NET);
	if (disk || net) {
		if ((error = state_dir(dir, sizeof(dir))) != 0 ||
		    (error = make_dirs(dir)) != 0) {
			rumpd_error("no state directory for the default disk "
			            "image and network bus (set "
			            "RUMPD_STATE_DIR): %s", strerror(error));
			return error;
		}
	}
	if (disk && (error = default_storage(sv, dir)) != 0)
		return error;
	if (net && (error = default_net(cfg, dir)) != 0)
		return error;
	if ((error = rumpd_config_finish(cfg)) != 0)
		rumpd_error("the built-in configuration is wrong: %s",
		            strerror(error));
	return error;
}
