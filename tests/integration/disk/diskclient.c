/*
 * diskclient: a test client of the disk service, for the integration
 * tests.
 *
 *   diskclient list SERVICE
 *   diskclient info SERVICE NAME
 *   diskclient read SERVICE NAME OFFSET LEN          data to stdout
 *   diskclient write SERVICE [--fua] NAME OFFSET     data from stdin
 *   diskclient try SERVICE NAME OP OFFSET LEN        prints "ok N" or the
 *                                                    error's name
 *   diskclient opens SERVICE NAME MODE...            opens in turn, prints
 *                                                    each outcome
 *   diskclient map SERVICE NAME                      BLOCK_STATUS extents
 *   diskclient flood SERVICE NAME COUNT              leaves with COUNT
 *                                                    reads in flight
 *
 * OP is read, write, flush, discard, zero, or raw:OPCODE:FLAGS[:HANDLE]
 * to send anything (the handle of the open by default); MODE is r, w or
 * rw.  SERVICE is a name in $RUMPD_DIR or a socket path.  Exit status 0 when the exchange itself worked (try and
 * opens report the server's errors on stdout and still exit 0).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rump/client.h"
#include "rump/proto.h"

#define CHUNK (1u << 20)

static int
fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int
fail(const char *fmt, ...)
{
	va_list ap;

	fputs("diskclient: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}

static const char *
errname(int e)
{
	switch (e) {
	case EINVAL: return "EINVAL";
	case ENOSPC: return "ENOSPC";
	case EROFS: return "EROFS";
	case EBADF: return "EBADF";
	case EBUSY: return "EBUSY";
	case ENOENT: return "ENOENT";
	case EFAULT: return "EFAULT";
	case EIO: return "EIO";
	case EOVERFLOW: return "EOVERFLOW";
	case EOPNOTSUPP: return "EOPNOTSUPP";
	case EAGAIN: return "EAGAIN";
	case EMFILE: return "EMFILE";
	default: return strerror(e);
	}
}

static bool
parse_u64(const char *s, uint64_t *v)
{
	char *end;

	errno = 0;
	*v = strtoull(s, &end, 0);
	return errno == 0 && *s != '\0' && *end == '\0';
}

static int
connect_to(const char *service, struct rump_client **cp)
{
	struct rump_client_opts o = {
		.version = RUMP_CLIENT_OPTS_VERSION,
		.service_kind = RUMP_SERVICE_DISK,
		.client_name = "diskclient",
		.buf_size = 4 * CHUNK,
	};
	int error = rump_client_connect(service, &o, cp);

	if (error != 0)
		return fail("connecting to %s: %s", service, strerror(error));
	return 0;
}

/* 0 and *handlep, or the server's error (positive). */
static int
open_dev(struct rump_client *c, const char *name, uint32_t mode,
         uint64_t *handlep, struct rump_disk_info *info)
{
	struct rump_disk_open req = { .mode = mode };
	struct rump_disk_open_reply rep;
	size_t got;
	int error;

	if (strlen(name) >= sizeof(req.name))
		return ENAMETOOLONG;
	strcpy(req.name, name);
	error = rump_client_call(c, RUMP_DISK_MSG_OPEN, &req, sizeof(req),
	                         &rep, sizeof(rep), &got);
	if (error != 0)
		return error;
	if (got != sizeof(rep))
		return EPROTO;
	*handlep = rep.handle;
	if (info != NULL)
		*info = rep.info;
	return 0;
}

/* An orderly client closes what it opened: the device is free for the
 * next one at once, not only once the server saw the session end. */
static int
close_dev(struct rump_client *c, uint64_t handle)
{
	int error = rump_client_call(c, RUMP_DISK_MSG_CLOSE, &handle,
	                             sizeof(handle), NULL, 0, NULL);

	if (error != 0)
		return fail("close: %s", strerror(error));
	return 0;
}

static const char *
scheme_name(uint8_t s)
{
	return s == RUMP_DISK_SCHEME_MBR ? "mbr" :
	       s == RUMP_DISK_SCHEME_GPT ? "gpt" : "none";
}

static void
print_info(const struct rump_disk_info *i)
{
	printf("%s parent=%s size=%" PRIu64 " sector=%u ro=%d start=%" PRIu64
	       " index=%u scheme=%s mbr_type=%#x label=%s\n",
	       i->name, i->parent[0] ? i->parent : "-", i->size,
	       i->sector_size, !!(i->flags & RUMP_DISK_INFO_READ_ONLY),
	       i->part_start, i->part_index, scheme_name(i->scheme),
	       i->mbr_type, i->label[0] ? i->label : "-");
}

static int
cmd_list(struct rump_client *c)
{
	static struct rump_disk_info infos[RUMP_MSG_MAX /
	                                   sizeof(struct rump_disk_info)];
	size_t got;
	int error;

	error = rump_client_call(c, RUMP_DISK_MSG_LIST, NULL, 0, infos,
	                         sizeof(infos), &got);
	if (error != 0)
		return fail("list: %s", strerror(error));
	if (got % sizeof(infos[0]) != 0)
		return fail("list: reply of %zu bytes", got);
	for (size_t i = 0; i < got / sizeof(infos[0]); i++)
		print_info(&infos[i]);
	return 0;
}

static int
cmd_info(struct rump_client *c, const char *name)
{
	char field[RUMP_NAME_MAX] = { 0 };
	struct rump_disk_info info;
	size_t got;
	int error;

	if (strlen(name) >= sizeof(field))
		return fail("name too long");
	strcpy(field, name);
	error = rump_client_call(c, RUMP_DISK_MSG_STATUS, field,
	                         sizeof(field), &info, sizeof(info), &got);
	if (error != 0) {
		printf("%s\n", errname(error));
		return 0;
	}
	if (got != sizeof(info))
		return fail("status: reply of %zu bytes", got);
	print_info(&info);
	return 0;
}

static int64_t
exec_op(struct rump_client *c, uint16_t opcode, uint16_t flags,
        uint64_t handle, uint64_t offset, uint32_t len, void *buf,
        uint64_t arg0, uint64_t *aux)
{
	struct rump_sqe sqe = {
		.opcode = opcode,
		.flags = flags,
		.len = len,
		.handle = handle,
		.offset = offset,
		.buf = buf != NULL ? rump_client_buf_offset(c, buf) : 0,
		.arg = { arg0 },
	};

	return rump_client_exec(c, &sqe, aux);
}

static int
cmd_read(struct rump_client *c, const char *name, uint64_t off,
         uint64_t len)
{
	uint64_t h;
	void *buf;
	int error;

	if ((error = open_dev(c, name, RUMP_DISK_OPEN_READ, &h, NULL)) != 0)
		return fail("open %s: %s", name, strerror(error));
	if ((buf = rump_client_buf_alloc(c, CHUNK)) == NULL)
		return fail("no buffer");
	while (len > 0) {
		uint32_t n = len < CHUNK ? (uint32_t)len : CHUNK;
		int64_t r = exec_op(c, RUMP_DISK_OP_READ, 0, h, off, n, buf,
		                    0, NULL);

		if (r < 0)
			return fail("read at %" PRIu64 ": %s", off,
			            strerror((int)-r));
		if (r != n)
			return fail("short read: %" PRId64, r);
		if (fwrite(buf, 1, n, stdout) != n)
			return fail("stdout: %s", strerror(errno));
		off += n;
		len -= n;
	}
	return close_dev(c, h);
}

static int
cmd_write(struct rump_client *c, const char *name, uint64_t off, bool fua)
{
	uint64_t h;
	uint8_t *buf;
	size_t n;
	int error;

	error = open_dev(c, name, RUMP_DISK_OPEN_READ | RUMP_DISK_OPEN_WRITE,
	                 &h, NULL);
	if (error != 0)
		return fail("open %s: %s", name, strerror(error));
	if ((buf = rump_client_buf_alloc(c, CHUNK)) == NULL)
		return fail("no buffer");
	while ((n = fread(buf, 1, CHUNK, stdin)) > 0) {
		int64_t r = exec_op(c, RUMP_DISK_OP_WRITE,
		                    fua ? RUMP_DISK_F_FUA : 0, h, off,
		                    (uint32_t)n, buf, 0, NULL);

		if (r < 0)
			return fail("write at %" PRIu64 ": %s", off,
			            strerror((int)-r));
		if ((size_t)r != n)
			return fail("short write: %" PRId64, r);
		off += n;
	}
	if (exec_op(c, RUMP_DISK_OP_FLUSH, 0, h, 0, 0, NULL, 0, NULL) != 0)
		return fail("flush failed");
	return close_dev(c, h);
}

static int
cmd_try(struct rump_client *c, const char *name, const char *op,
        uint64_t off, uint64_t len)
{
	unsigned opcode, flags = 0;
	uint64_t h, opened, handle_override = 0;
	bool override = false;
	uint8_t *buf = NULL;
	uint32_t mode = RUMP_DISK_OPEN_READ;
	int64_t r;
	int error, n;

	if (strcmp(op, "read") == 0)
		opcode = RUMP_DISK_OP_READ;
	else if (strcmp(op, "write") == 0)
		opcode = RUMP_DISK_OP_WRITE;
	else if (strcmp(op, "flush") == 0)
		opcode = RUMP_DISK_OP_FLUSH;
	else if (strcmp(op, "discard") == 0)
		opcode = RUMP_DISK_OP_DISCARD;
	else if (strcmp(op, "zero") == 0)
		opcode = RUMP_DISK_OP_WRITE_ZEROES;
	else if ((n = sscanf(op, "raw:%u:%u:%" SCNu64, &opcode, &flags,
	                     &handle_override)) >= 2)
		override = n == 3;
	else
		return fail("unknown op %s", op);

	/* Readers share a device: a read needs no more than that. */
	if (opcode != RUMP_DISK_OP_READ)
		mode |= RUMP_DISK_OPEN_WRITE;
	error = open_dev(c, name, mode, &h, NULL);
	if (error == EROFS) {
		mode = RUMP_DISK_OPEN_READ;
		error = open_dev(c, name, mode, &h, NULL);
	}
	if (error != 0)
		return fail("open %s: %s", name, strerror(error));
	opened = h;
	if (override)
		h = handle_override;
	/* Lengths past the buffer area are the server's to refuse. */
	if (len <= 4 * CHUNK - 4096 && len > 0) {
		buf = rump_client_buf_alloc(c, len);
		if (buf == NULL)
			return fail("no buffer of %" PRIu64, len);
		memset(buf, 0xa5, len);
	}
	{
		struct rump_sqe sqe = {
			.opcode = (uint16_t)opcode,
			.flags = (uint16_t)flags,
			.len = (uint32_t)len,
			.handle = h,
			.offset = off,
			/* no buffer: name one far outside the area */
			.buf = buf ? rump_client_buf_offset(c, buf) :
			       UINT64_MAX - 8,
		};

		r = rump_client_exec(c, &sqe, NULL);
	}
	if (r >= 0)
		printf("ok %" PRId64 "\n", r);
	else
		printf("%s\n", errname((int)-r));
	return close_dev(c, opened);
}

static int
cmd_opens(struct rump_client *c, const char *name, int n, char **modes)
{
	for (int i = 0; i < n; i++) {
		uint32_t mode = 0;
		uint64_t h;
		int error;

		if (strchr(modes[i], 'r'))
			mode |= RUMP_DISK_OPEN_READ;
		if (strchr(modes[i], 'w'))
			mode |= RUMP_DISK_OPEN_WRITE;
		error = open_dev(c, name, mode, &h, NULL);
		printf("%s%s", i ? " " : "", error ? errname(error) : "ok");
	}
	printf("\n");
	return 0;
}

static int
cmd_map(struct rump_client *c, const char *name)
{
	struct rump_disk_info info;
	struct rump_disk_extent *ext;
	uint64_t h, off = 0, aux;
	int error;

	if ((error = open_dev(c, name, RUMP_DISK_OPEN_READ, &h, &info)) != 0)
		return fail("open %s: %s", name, strerror(error));
	if ((ext = rump_client_buf_alloc(c, 64 * sizeof(*ext))) == NULL)
		return fail("no buffer");
	while (off < info.size) {
		int64_t n = exec_op(c, RUMP_DISK_OP_BLOCK_STATUS, 0, h, off,
		                    64 * sizeof(*ext), ext, 0, &aux);

		if (n <= 0)
			return fail("block status at %" PRIu64 ": %" PRId64,
			            off, n);
		for (int64_t i = 0; i < n; i++) {
			printf("%" PRIu64 " %" PRIu64 " %s\n", off,
			       ext[i].length,
			       ext[i].flags & RUMP_DISK_EXTENT_HOLE ? "hole" :
			       "data");
			off += ext[i].length;
		}
		if (aux == 0)
			return fail("block status made no progress");
	}
	return close_dev(c, h);
}

static void
flood_done(struct rump_request *req, int64_t result, uint64_t aux)
{
	(void)req;
	(void)result;
	(void)aux;
}

/* Submits count reads and leaves without reaping: the server must cope. */
static int
cmd_flood(struct rump_client *c, const char *name, unsigned count)
{
	struct rump_request *reqs = calloc(count, sizeof(*reqs));
	uint64_t h;
	void *buf;
	int error;

	if (reqs == NULL)
		return fail("out of memory");
	if ((error = open_dev(c, name, RUMP_DISK_OPEN_READ, &h, NULL)) != 0)
		return fail("open %s: %s", name, strerror(error));
	if ((buf = rump_client_buf_alloc(c, 65536)) == NULL)
		return fail("no buffer");
	for (unsigned i = 0; i < count; i++) {
		reqs[i].sqe = (struct rump_sqe){
			.opcode = RUMP_DISK_OP_READ,
			.len = 65536,
			.handle = h,
			.offset = (uint64_t)i * 65536,
			.buf = rump_client_buf_offset(c, buf),
		};
		reqs[i].done = flood_done;
		if ((error = rump_client_submit(c, &reqs[i])) != 0)
			return fail("submit %u: %s", i, strerror(error));
	}
	/* exit without close: the session dies with requests in flight */
	_exit(0);
}

int
main(int argc, char **argv)
{
	struct rump_client *c;
	uint64_t a, b;
	bool fua = false;
	int status;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--fua") == 0) {
			fua = true;
			memmove(&argv[i], &argv[i + 1],
			        (size_t)(argc - i) * sizeof(argv[0]));
			argc--;
			break;
		}
	}
	if (argc < 3)
		return fail("usage: see the top of diskclient.c");
	if (connect_to(argv[2], &c) != 0)
		return 1;

	if (strcmp(argv[1], "list") == 0 && argc == 3)
		status = cmd_list(c);
	else if (strcmp(argv[1], "info") == 0 && argc == 4)
		status = cmd_info(c, argv[3]);
	else if (strcmp(argv[1], "read") == 0 && argc == 6 &&
	         parse_u64(argv[4], &a) && parse_u64(argv[5], &b))
		status = cmd_read(c, argv[3], a, b);
	else if (strcmp(argv[1], "write") == 0 && argc == 5 &&
	         parse_u64(argv[4], &a))
		status = cmd_write(c, argv[3], a, fua);
	else if (strcmp(argv[1], "try") == 0 && argc == 7 &&
	         parse_u64(argv[5], &a) && parse_u64(argv[6], &b))
		status = cmd_try(c, argv[3], argv[4], a, b);
	else if (strcmp(argv[1], "opens") == 0 && argc >= 5)
		status = cmd_opens(c, argv[3], argc - 4, argv + 4);
	else if (strcmp(argv[1], "map") == 0 && argc == 4)
		status = cmd_map(c, argv[3]);
	else if (strcmp(argv[1], "flood") == 0 && argc == 5 &&
	         parse_u64(argv[4], &a) && a > 0 && a <= 4096)
		status = cmd_flood(c, argv[3], (unsigned)a);
	else
		status = fail("bad arguments; see diskclient.c");
	if (fflush(stdout) != 0)
		status = fail("stdout: %s", strerror(errno));
	rump_client_close(c);
	return status;
}
