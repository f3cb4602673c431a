/*
 * metabench: the metadata workload of bench/fs.
 *
 *   metabench [-n FILES] [-s BYTES] DIR
 *
 * In DIR (which must exist and be empty of our names), three phases, each
 * timed on its own: create FILES files of BYTES bytes (open O_CREAT|O_EXCL,
 * write, close), stat each of them, unlink each of them.  One line of
 * output, for scripts:
 *
 *   files=N create=SEC stat=SEC unlink=SEC total=SEC
 *
 * Nothing is synced: the workload measures the metadata path as programs
 * meet it (a build, an unpack), not the disk.  Names are spread over the
 * directory in creation order, as an unpack or a build writes them.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_BYTES (1u << 20)

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
usage(FILE *f)
{
	fprintf(f, "usage: metabench [-n FILES] [-s BYTES] DIR\n"
	           "Creates, stats and unlinks FILES (default 10000) files of\n"
	           "BYTES (default 100) bytes in DIR; prints each phase's time.\n");
}

/* 0 and *out, or -1 after printing why. */
static int
parse_count(const char *what, const char *s, unsigned long max,
            unsigned long *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || s[0] == '-' || v > max) {
		fprintf(stderr, "metabench: bad %s '%s' (0..%lu)\n", what, s, max);
		return -1;
	}
	*out = v;
	return 0;
}

static void
name_of(char *buf, size_t len, const char *dir, unsigned long i)
{
	snprintf(buf, len, "%s/f%07lu", dir, i);
}

static int
create_all(const char *dir, unsigned long n, const char *data, size_t bytes)
{
	char path[PATH_MAX];

	for (unsigned long i = 0; i < n; i++) {
		int fd;
		ssize_t w;

		name_of(path, sizeof(path), dir, i);
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (fd < 0) {
			fprintf(stderr, "metabench: create %s: %s\n", path,
			        strerror(errno));
			return -1;
		}
		w = bytes != 0 ? write(fd, data, bytes) : 0;
		if (w < 0 || (size_t)w != bytes) {
			fprintf(stderr, "metabench: write %s: %s\n", path,
			        w < 0 ? strerror(errno) : "short write");
			close(fd);
			return -1;
		}
		if (close(fd) != 0) {
			fprintf(stderr, "metabench: close %s: %s\n", path,
			        strerror(errno));
			return -1;
		}
	}
	return 0;
}

static int
stat_all(const char *dir, unsigned long n, size_t bytes)
{
	char path[PATH_MAX];
	struct stat st;

	for (unsigned long i = 0; i < n; i++) {
		name_of(path, sizeof(path), dir, i);
		if (stat(path, &st) != 0) {
			fprintf(stderr, "metabench: stat %s: %s\n", path,
			        strerror(errno));
			return -1;
		}
		/* A file system that lost a write must not look fast. */
		if (!S_ISREG(st.st_mode) || (size_t)st.st_size != bytes) {
			fprintf(stderr, "metabench: %s: mode %o size %lld, "
			        "expected a regular file of %zu bytes\n", path,
			        (unsigned)st.st_mode, (long long)st.st_size, bytes);
			return -1;
		}
	}
	return 0;
}

static int
unlink_all(const char *dir, unsigned long n)
{
	char path[PATH_MAX];

	for (unsigned long i = 0; i < n; i++) {
		name_of(path, sizeof(path), dir, i);
		if (unlink(path) != 0) {
			fprintf(stderr, "metabench: unlink %s: %s\n", path,
			        strerror(errno));
			return -1;
		}
	}
	return 0;
}

int
main(int argc, char **argv)
{
	unsigned long n = 10000, bytes = 100;
	double t0, t1, t2, t3;
	const char *dir;
	char *data;
	int c, rc = 1;

	while ((c = getopt(argc, argv, "n:s:h")) != -1) {
		switch (c) {
		case 'n':
			if (parse_count("-n", optarg, 10000000, &n) != 0)
				return 2;
			break;
		case 's':
			if (parse_count("-s", optarg, MAX_BYTES, &bytes) != 0)
				return 2;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc - 1) {
		usage(stderr);
		return 2;
	}
	dir = argv[optind];

	data = malloc(bytes != 0 ? bytes : 1);
	if (data == NULL) {
		fprintf(stderr, "metabench: out of memory\n");
		return 1;
	}
	memset(data, 'm', bytes);

	t0 = now();
	if (create_all(dir, n, data, bytes) != 0)
		goto out;
	t1 = now();
	if (stat_all(dir, n, bytes) != 0)
		goto out;
	t2 = now();
	if (unlink_all(dir, n) != 0)
		goto out;
	t3 = now();

	printf("files=%lu create=%.4f stat=%.4f unlink=%.4f total=%.4f\n",
	       n, t1 - t0, t2 - t1, t3 - t2, t3 - t0);
	rc = 0;
out:
	free(data);
	return rc;
}
