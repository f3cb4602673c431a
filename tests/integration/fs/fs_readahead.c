/*
 * rumpfs's disk backend reading ahead, against a real rumpdisk:
 *
 *   fs_readahead RUMPDISK
 *
 * The image holds random bytes and a copy of it stays here; every read
 * through the backend is compared with the copy.  Checked: interleaved
 * sequential readers (whole, straddling and small reads) with metadata-
 * sized reads among them; writes and write_zeroes into a window already
 * read ahead, and into one still in flight, seen by the next read; and
 * rumpdisk killed while read-ahead is in flight, with and without delay
 * before it returns.  Exits 0 when all is well, 1 with a message if not.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "disk_backend.h"

#define MIB (1u << 20)
#define IMAGE_SIZE (64u * MIB)

extern char **environ;

struct env {
	const char *rumpdisk;
	char dir[256];
	char image[300];
	char sock[300];
	char disk_arg[320];
	pid_t disk;
	unsigned char *copy;         /* what the image holds */
	unsigned char *buf;
	struct fs_ext2_backend be;
	struct disk_backend *db;
	uint64_t rng;
};

static struct env *cleanup_env;

static void
cleanup(void)
{
	struct env *e = cleanup_env;

	if (e == NULL)
		return;
	cleanup_env = NULL;
	disk_backend_close(e->db);
	if (e->disk > 0) {
		kill(e->disk, SIGKILL);
		waitpid(e->disk, NULL, 0);
	}
	unlink(e->sock);
	unlink(e->image);
	rmdir(e->dir);
	free(e->copy);
	free(e->buf);
}

static _Noreturn void
die(const char *fmt, ...)
{
	va_list ap;

	fputs("fs-readahead: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	cleanup();
	exit(1);
}

static uint64_t
rnd(struct env *e)
{
	/* xorshift64*: the same image every run, for reproducible
	 * failures. */
	e->rng ^= e->rng >> 12;
	e->rng ^= e->rng << 25;
	e->rng ^= e->rng >> 27;
	return e->rng * 2685821657736338717ull;
}

static void
fill(struct env *e, unsigned char *p, size_t len)
{
	for (size_t i = 0; i < len; i += 8) {
		uint64_t v = rnd(e);

		memcpy(p + i, &v, len - i < 8 ? len - i : 8);
	}
}

static void
sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static void
start_disk(struct env *e)
{
	char *argv[] = {
		(char *)e->rumpdisk, "--socket", e->sock, "--disk",
		e->disk_arg, NULL,
	};
	int error;

	unlink(e->sock);       /* left by a killed one */
	error = posix_spawn(&e->disk, e->rumpdisk, NULL, NULL, argv, environ);
	if (error)
		die("cannot run %s: %s", e->rumpdisk, strerror(error));
}

static void
kill_disk(struct env *e)
{
	kill(e->disk, SIGKILL);
	waitpid(e->disk, NULL, 0);
	e->disk = 0;
}

/* Reads [off, off + len) through the backend and compares. */
static void
check_read(struct env *e, const char *what, uint64_t off, size_t len)
{
	int error;

	memset(e->buf, 0xa5, len);
	if ((error = e->be.read(e->be.ctx, off, e->buf, len)) != 0)
		die("%s: read of %zu at %llu: %s", what, len,
		    (unsigned long long)off, strerror(error));
	for (size_t i = 0; i < len; i++)
		if (e->buf[i] != e->copy[off + i])
			die("%s: read of %zu at %llu differs at byte %llu "
			    "(stale or misplaced data)", what, len,
			    (unsigned long long)off,
			    (unsigned long long)(off + i));
}

static void
write_new(struct env *e, uint64_t off, size_t len)
{
	int error;

	fill(e, e->copy + off, len);
	if ((error = e->be.write(e->be.ctx, off, e->copy + off, len)) != 0)
		die("write of %zu at %llu: %s", len, (unsigned long long)off,
		    strerror(error));
}

static void
zero(struct env *e, uint64_t off, size_t len)
{
	int error;

	memset(e->copy + off, 0, len);
	if ((error = e->be.zeroout(e->be.ctx, off, len)) != 0)
		die("write_zeroes of %zu at %llu: %s", len,
		    (unsigned long long)off, strerror(error));
}

/* Three readers side by side, each with its own read size, and small
 * random reads among them as libext2fs's metadata would be. */
static void
test_interleaved(struct env *e)
{
	static const size_t size[3] = { MIB, 768u << 10, 260u << 10 };
	uint64_t pos[3] = { 0, 16u * MIB, 32u * MIB };
	const uint64_t stop = 12u * MIB;

	for (unsigned round = 0;; round++) {
		bool more = false;

		for (unsigned r = 0; r < 3; r++) {
			uint64_t base = 16u * MIB * r;

			if (pos[r] - base >= stop)
				continue;
			check_read(e, "interleaved", pos[r], size[r]);
			pos[r] += size[r];
			more = true;
		}
		if (round % 3 == 0)
			check_read(e, "metadata", (rnd(e) % (IMAGE_SIZE / 4096))
			           * 4096, 4096);
		if (!more)
			break;
	}
}

/*
 * Writes where the window has read ahead must be seen by the next read:
 * once the read-ahead has landed (it then holds the old bytes for sure)
 * and while it is still in flight.
 */
static void
test_write_in_window(struct env *e)
{
	const uint64_t a = 40u * MIB, b = 52u * MIB;

	check_read(e, "before write", a, MIB);
	check_read(e, "before write", a + MIB, MIB);
	sleep_ms(300);                  /* the read-ahead lands */
	write_new(e, a + 2 * MIB + 8192, 65536);
	zero(e, a + 3 * MIB + 4096, 8192);
	write_new(e, a + 4 * MIB - 4096, 8192);   /* across two slots */
	for (uint64_t o = a + 2 * MIB; o < a + 6 * MIB; o += MIB)
		check_read(e, "after write", o, MIB);

	check_read(e, "before write", b, MIB);
	check_read(e, "before write", b + MIB, MIB);
	write_new(e, b + 2 * MIB, 4096);          /* no wait: in flight */
	zero(e, b + 3 * MIB + 65536, 4096);
	for (uint64_t o = b + 2 * MIB; o < b + 6 * MIB; o += MIB)
		check_read(e, "after write in flight", o, MIB);
}

/* rumpdisk killed with read-ahead in flight; it comes back at once, or
 * after a while (the backend waits for it). */
static void
test_disk_killed(struct env *e)
{
	uint64_t off = 0;

	for (unsigned round = 0; round < 2; round++) {
		for (unsigned i = 0; i < 3; i++, off += MIB)
			check_read(e, "before kill", off, MIB);
		kill_disk(e);
		if (round == 1)
			sleep_ms(500);
		start_disk(e);
		for (unsigned i = 0; i < 8; i++, off += MIB)
			check_read(e, "after kill", off, MIB);
	}
	/* Writes still reach the new rumpdisk and invalidate. */
	check_read(e, "after kill", off, MIB);
	check_read(e, "after kill", off + MIB, MIB);
	write_new(e, off + 2 * MIB + 4096, 4096);
	check_read(e, "after kill and write", off + 2 * MIB, MIB);
}

int
main(int argc, char **argv)
{
	static struct env env;
	struct env *e = &env;
	const char *tmp = getenv("TMPDIR");
	char why[256];
	int fd, error;

	if (argc != 2) {
		fprintf(stderr, "usage: fs_readahead RUMPDISK\n");
		return 2;
	}
	e->rumpdisk = argv[1];
	e->rng = 0x9e3779b97f4a7c15ull;
	if (snprintf(e->dir, sizeof(e->dir), "%s/fs-readahead.XXXXXX",
	             tmp != NULL ? tmp : "/tmp") >= (int)sizeof(e->dir))
		die("TMPDIR is too long");
	if (mkdtemp(e->dir) == NULL)
		die("mkdtemp %s: %s", e->dir, strerror(errno));
	cleanup_env = e;
	if (snprintf(e->image, sizeof(e->image), "%s/disk.img", e->dir) >=
	        (int)sizeof(e->image) ||
	    snprintf(e->sock, sizeof(e->sock), "%s/disk.sock", e->dir) >=
	        (int)sizeof(e->sock) ||
	    snprintf(e->disk_arg, sizeof(e->disk_arg), "wd0=%s", e->image) >=
	        (int)sizeof(e->disk_arg))
		die("TMPDIR is too long");
	if ((e->copy = malloc(IMAGE_SIZE)) == NULL ||
	    (e->buf = malloc(2 * MIB)) == NULL)
		die("out of memory");
	fill(e, e->copy, IMAGE_SIZE);
	fd = open(e->image, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, e->copy, IMAGE_SIZE) != IMAGE_SIZE ||
	    close(fd) != 0)
		die("cannot write %s: %s", e->image, strerror(errno));

	start_disk(e);
	error = disk_backend_open(e->sock, "wd0", false, &e->be, &e->db, why,
	                          sizeof(why));
	if (error)
		die("disk_backend_open: %s", why);
	if (e->be.size != IMAGE_SIZE)
		die("the device has %llu bytes, not %u",
		    (unsigned long long)e->be.size, IMAGE_SIZE);

	test_interleaved(e);
	test_write_in_window(e);
	test_disk_killed(e);

	cleanup();
	puts("fs-readahead: ok");
	return 0;
}
