/*
 * rumpctl disk: the devices of a disk service (rumpdisk).
 *
 *   disk list                      a table of disks and partitions
 *   disk info NAME                 every field the service knows of NAME
 *   disk read NAME OFFSET LEN      LEN bytes at OFFSET to stdout
 *   disk write [-v] NAME OFFSET    stdin, until EOF, to OFFSET
 *
 * The service only moves whole sectors.  read and write take any offset
 * and length anyway, so that nobody needs to know the sector size: they
 * work on the sector-aligned range covering the request, cutting the
 * partial sectors at its ends off (read) or completing them with what the
 * device holds there (write: read-modify-write).  Both stream through
 * DEPTH chunks of up to CHUNK bytes in flight, so a large transfer keeps
 * the device busy while stdin or stdout is served.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "probe.h"
#include "rumpctl.h"

#define DISK_SERVICE "disk"
#define CHUNK (1u << 20)
#define DEPTH 4

/* One request's worth of data in the shared area, reused round-robin. */
struct chunk {
	struct rump_request req;
	uint8_t *buf;                /* CHUNK bytes in the shared area */
	uint64_t start;              /* where buf[0] lies on the device */
	uint32_t len;                /* bytes the request moves */
	bool busy;                   /* submitted, not completed yet */
	int64_t result;              /* the completion's, once !busy */
};

/*
 * A session with one open device.  The chunks are borrowed by the client
 * library while busy and closing the client completes them, so they must
 * outlive the client: both live here.
 */
struct disk {
	struct rump_client *client;
	const char *name;
	uint64_t handle;
	bool opened;
	struct rump_disk_info info;
	uint32_t chunk_size;         /* a multiple of the sector size */
	uint8_t *sector;             /* one sector, for read-modify-write */
	struct chunk chunks[DEPTH];
};

static const char *const subcommand_usage[] = {
	"list",
	"info NAME",
	"read NAME OFFSET LEN",
	"write [-v] NAME OFFSET",
};
#define NSUBCOMMANDS (sizeof(subcommand_usage) / sizeof(subcommand_usage[0]))

/*
 * Prints "rumpctl: <message>" and the usage of subcommand sub (all of
 * them if NULL) on stderr; returns RUMPCTL_USAGE.
 */
static int disk_usage(const char *sub, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int
disk_usage(const char *sub, const char *fmt, ...)
{
	const char *lead = "usage:";
	va_list ap;

	fputs("rumpctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	for (size_t i = 0; i < NSUBCOMMANDS; i++) {
		size_t n = strcspn(subcommand_usage[i], " ");

		if (sub != NULL && (strlen(sub) != n ||
		                    strncmp(sub, subcommand_usage[i], n) != 0))
			continue;
		fprintf(stderr, "%s rumpctl [-s SOCKET] disk %s\n", lead,
		        subcommand_usage[i]);
		lead = "      ";
	}
	if (sub == NULL || strcmp(sub, "read") == 0 ||
	    strcmp(sub, "write") == 0)
		fprintf(stderr, "OFFSET and LEN are bytes, with an optional K,"
		        " M, G or T suffix (powers of 1024).\n");
	return RUMPCTL_USAGE;
}

/* Bytes, with an optional binary suffix: "4096", "3K", "1M", "2G". */
static bool
parse_size(const char *s, uint64_t *v)
{
	unsigned long long n;
	unsigned shift = 0;
	char *end;

	/* strtoull would take "-1", " 1" and "+1" too. */
	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	n = strtoull(s, &end, 10);
	if (errno != 0)
		return false;
	switch (*end) {
	case '\0':
		break;
	case 'k': case 'K':
		shift = 10;
		break;
	case 'm': case 'M':
		shift = 20;
		break;
	case 'g': case 'G':
		shift = 30;
		break;
	case 't': case 'T':
		shift = 40;
		break;
	default:
		return false;
	}
	if (shift != 0 && end[1] != '\0')
		return false;
	if (shift != 0 && n > (UINT64_MAX >> shift))
		return false;
	*v = (uint64_t)n << shift;
	return true;
}

/* "64MiB", "1.5GiB", "512B": exact multiples without a fraction. */
static void
human_size(uint64_t v, char *buf, size_t cap)
{
	static const char *const units[] = { "KiB", "MiB", "GiB", "TiB",
	                                     "PiB", "EiB" };
	unsigned u = 0;

	if (v < 1024) {
		snprintf(buf, cap, "%" PRIu64 "B", v);
		return;
	}
	while (u + 1 < sizeof(units) / sizeof(units[0]) &&
	       v >> (10 * (u + 2)) != 0)
		u++;
	if (v % (1ull << (10 * (u + 1))) == 0)
		snprintf(buf, cap, "%" PRIu64 "%s", v >> (10 * (u + 1)),
		         units[u]);
	else
		snprintf(buf, cap, "%.1f%s",
		         (double)v / (double)(1ull << (10 * (u + 1))),
		         units[u]);
}

/* The GUID as sfdisk writes it; the first three fields are stored
 * little-endian. */
static void
format_guid(const uint8_t g[16], char *buf, size_t cap)
{
	snprintf(buf, cap, "%02X%02X%02X%02X-%02X%02X-%02X%02X-%02X%02X-"
	         "%02X%02X%02X%02X%02X%02X", g[3], g[2], g[1], g[0], g[5],
	         g[4], g[7], g[6], g[8], g[9], g[10], g[11], g[12], g[13],
	         g[14], g[15]);
}

static bool
guid_is_nil(const uint8_t g[16])
{
	for (int i = 0; i < 16; i++)
		if (g[i] != 0)
			return false;
	return true;
}

/* Partition types of the UEFI specification and the Discoverable
 * Partitions Specification that a Linux disk commonly holds. */
static const struct {
	const char *guid;
	const char *name;
} gpt_types[] = {
	{ "C12A7328-F81F-11D2-BA4B-00A0C93EC93B", "efi" },
	{ "21686148-6449-6E6F-744E-656564454649", "bios-boot" },
	{ "0FC63DAF-8483-4772-8E79-3D69D8477DE4", "linux" },
	{ "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F", "linux-swap" },
	{ "E6D6D379-F507-44C2-A23C-238F2A3DF928", "linux-lvm" },
	{ "A19D880F-05FC-4D3B-A006-743F0F84911E", "linux-raid" },
	{ "933AC7E1-2EB4-4F13-B844-0E14E2AEF915", "linux-home" },
	{ "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709", "linux-root-x86-64" },
	{ "BC13C2FF-59E6-4262-A352-B275FD6F7172", "linux-xbootldr" },
	{ "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7", "microsoft-data" },
	{ "E3C9E316-0B5C-4DB8-817D-F92DF00215AE", "microsoft-reserved" },
	{ "516E7CB4-6ECF-11D6-8FF8-00022D09712B", "freebsd" },
	{ "49F48D5A-B10E-11DC-B99B-0019D1879648", "netbsd-ffs" },
};

static const char *
gpt_type_name(const char *guid)
{
	for (size_t i = 0; i < sizeof(gpt_types) / sizeof(gpt_types[0]); i++)
		if (strcmp(gpt_types[i].guid, guid) == 0)
			return gpt_types[i].name;
	return NULL;
}

static const char *
scheme_name(uint8_t scheme)
{
	switch (scheme) {
	case RUMP_DISK_SCHEME_MBR:
		return "mbr";
	case RUMP_DISK_SCHEME_GPT:
		return "gpt";
	default:
		return "-";
	}
}

/* The type column: the MBR byte, or the GPT type's name or GUID. */
static void
format_type(const struct rump_disk_info *info, char *buf, size_t cap)
{
	char guid[40];
	const char *name;

	switch (info->scheme) {
	case RUMP_DISK_SCHEME_MBR:
		snprintf(buf, cap, "0x%02x", info->mbr_type);
		break;
	case RUMP_DISK_SCHEME_GPT:
		format_guid(info->gpt_type, guid, sizeof(guid));
		name = gpt_type_name(guid);
		snprintf(buf, cap, "%s", name != NULL ? name : guid);
		break;
	default:
		snprintf(buf, cap, "-");
		break;
	}
}

/*
 * The label, for a terminal: UTF-8 goes through, control characters (the
 * label is whatever the partition table said) come out as \xNN.
 */
static void
format_label(const char *label, char *buf, size_t cap)
{
	size_t n = 0;

	if (label[0] == '\0') {
		snprintf(buf, cap, "-");
		return;
	}
	for (const unsigned char *p = (const unsigned char *)label;
	     *p != '\0' && n + 5 < cap; p++) {
		if (*p < 0x20 || *p == 0x7f || *p == '\\')
			n += (size_t)snprintf(buf + n, cap - n, "\\x%02x", *p);
		else
			buf[n++] = (char)*p;
	}
	buf[n] = '\0';
}

/* What came from the server is only trusted to be 200 bytes: its strings
 * are cut to their fields. */
static void
sanitize_info(struct rump_disk_info *info)
{
	info->name[sizeof(info->name) - 1] = '\0';
	info->parent[sizeof(info->parent) - 1] = '\0';
	info->label[sizeof(info->label) - 1] = '\0';
}

static int
disk_connect(const struct rumpctl *ctl, bool rings, struct rump_client **cp)
{
	struct rump_client_opts opts = {
		.version = RUMP_CLIENT_OPTS_VERSION,
		.service_kind = RUMP_SERVICE_ANY,
		.client_name = "rumpctl",
		.sq_entries = rings ? 2 * DEPTH : 0,
		/* The chunks, the sector and the allocator's alignment. */
		.buf_size = rings ? (DEPTH + 2) * (size_t)CHUNK : 0,
		.no_rings = !rings,
	};
	struct rump_client *c;
	char target[4096];
	uint32_t kind;
	int error;

	rumpctl_target(ctl, DISK_SERVICE, target, sizeof(target));
	error = rump_client_connect(ctl->socket ? target : DISK_SERVICE,
	                            &opts, &c);
	if (error)
		return rumpctl_fail("cannot reach the disk service at %s: %s",
		                    target, strerror(error));
	kind = rump_client_service_kind(c);
	if (kind != RUMP_SERVICE_DISK) {
		rump_client_close(c);
		return rumpctl_fail("%s serves a %s service, not disk", target,
		                    probe_kind_name(kind));
	}
	*cp = c;
	return RUMPCTL_OK;
}

/* Copies name into a field of the protocol; RUMPCTL_USAGE if it cannot. */
static int
name_field(const char *name, char field[RUMP_NAME_MAX])
{
	size_t len = strlen(name);

	if (len == 0)
		return disk_usage(NULL, "empty device name");
	if (len >= RUMP_NAME_MAX)
		return disk_usage(NULL, "device name '%s' is too long (at "
		                  "most %d bytes)", name, RUMP_NAME_MAX - 1);
	memset(field, 0, RUMP_NAME_MAX);
	memcpy(field, name, len);
	return RUMPCTL_OK;
}

static int
device_error(const char *name, const char *what, int error)
{
	if (error == ENOENT)
		return rumpctl_fail("%s: no such device (rumpctl disk list "
		                    "shows them)", name);
	return rumpctl_fail("%s: %s: %s", name, what, strerror(error));
}

/* ---- list, info ------------------------------------------------------- */

enum { COL_NAME, COL_SIZE, COL_BYTES, COL_SECTOR, COL_RO, COL_SCHEME,
       COL_INDEX, COL_START, COL_TYPE, COL_LABEL, NCOLS };

static const struct {
	const char *title;
	bool right;                  /* numbers align right */
} columns[NCOLS] = {
	[COL_NAME] = { "NAME", false },
	[COL_SIZE] = { "SIZE", true },
	[COL_BYTES] = { "BYTES", true },
	[COL_SECTOR] = { "SECTOR", true },
	[COL_RO] = { "RO", false },
	[COL_SCHEME] = { "SCHEME", false },
	[COL_INDEX] = { "INDEX", true },
	[COL_START] = { "START", true },
	[COL_TYPE] = { "TYPE", false },
	[COL_LABEL] = { "LABEL", false },
};

/* Sized for the widest content: a GUID, an escaped label. */
typedef char row_t[NCOLS][4 * sizeof(((struct rump_disk_info *)0)->label)];

static void
fill_row(const struct rump_disk_info *info, row_t row)
{
	bool part = (info->flags & RUMP_DISK_INFO_PARTITION) != 0;
	size_t cap = sizeof(row[0]);

	snprintf(row[COL_NAME], cap, "%s", info->name);
	human_size(info->size, row[COL_SIZE], cap);
	snprintf(row[COL_BYTES], cap, "%" PRIu64, info->size);
	snprintf(row[COL_SECTOR], cap, "%" PRIu32, info->sector_size);
	snprintf(row[COL_RO], cap, "%s",
	         info->flags & RUMP_DISK_INFO_READ_ONLY ? "yes" : "no");
	snprintf(row[COL_SCHEME], cap, "%s",
	         part ? scheme_name(info->scheme) : "-");
	if (part) {
		snprintf(row[COL_INDEX], cap, "%" PRIu32, info->part_index);
		snprintf(row[COL_START], cap, "%" PRIu64, info->part_start);
		format_type(info, row[COL_TYPE], cap);
		format_label(info->label, row[COL_LABEL], cap);
	} else {
		for (int col = COL_INDEX; col <= COL_LABEL; col++)
			snprintf(row[col], cap, "-");
	}
}

static void
print_row(const char *const cells[NCOLS], const int width[NCOLS])
{
	for (int col = 0; col + 1 < NCOLS; col++)
		printf(columns[col].right ? "%*s  " : "%-*s  ", width[col],
		       cells[col]);
	printf("%s\n", cells[NCOLS - 1]);
}

static int
print_table(const row_t *rows, size_t nrows)
{
	const char *cells[NCOLS];
	int width[NCOLS];

	for (int col = 0; col < NCOLS; col++) {
		cells[col] = columns[col].title;
		width[col] = (int)strlen(cells[col]);
		for (size_t r = 0; r < nrows; r++)
			if ((int)strlen(rows[r][col]) > width[col])
				width[col] = (int)strlen(rows[r][col]);
	}
	print_row(cells, width);
	for (size_t r = 0; r < nrows; r++) {
		for (int col = 0; col < NCOLS; col++)
			cells[col] = rows[r][col];
		print_row(cells, width);
	}
	return fflush(stdout) != 0 || ferror(stdout) ? EIO : 0;
}

static int
cmd_list(struct rumpctl *ctl, int argc, char **argv)
{
	struct rump_disk_info *infos = NULL;
	struct rump_client *c = NULL;
	row_t *rows = NULL;
	size_t got, n;
	int error, status;

	(void)argv;
	if (argc != 1)
		return disk_usage("list", "disk list takes no arguments");
	status = disk_connect(ctl, false, &c);
	if (status != RUMPCTL_OK)
		return status;
	/* A reply is one message: RUMP_MSG_MAX bounds it. */
	if ((infos = malloc(RUMP_MSG_MAX)) == NULL) {
		status = rumpctl_fail("disk list: %s", strerror(ENOMEM));
		goto out;
	}
	error = rump_client_call(c, RUMP_DISK_MSG_LIST, NULL, 0, infos,
	                         RUMP_MSG_MAX, &got);
	if (error) {
		status = rumpctl_fail("disk list: %s", strerror(error));
		goto out;
	}
	if (got % sizeof(*infos) != 0) {
		status = rumpctl_fail("disk list: the service sent a reply of "
		                      "%zu bytes, not a whole number of "
		                      "devices", got);
		goto out;
	}
	n = got / sizeof(*infos);
	if ((rows = calloc(n != 0 ? n : 1, sizeof(*rows))) == NULL) {
		status = rumpctl_fail("disk list: %s", strerror(ENOMEM));
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		sanitize_info(&infos[i]);
		fill_row(&infos[i], rows[i]);
	}
	if ((error = print_table(rows, n)) != 0)
		status = rumpctl_fail("disk list: stdout: %s",
		                      strerror(error));
out:
	free(rows);
	free(infos);
	rump_client_close(c);
	return status;
}

static void
print_info(const struct rump_disk_info *info)
{
	bool part = (info->flags & RUMP_DISK_INFO_PARTITION) != 0;
	char buf[4 * sizeof(info->label)];
	const char *name;

	printf("name: %s\n", info->name);
	printf("parent: %s\n", info->parent[0] ? info->parent : "-");
	human_size(info->size, buf, sizeof(buf));
	printf("size: %" PRIu64 " (%s)\n", info->size, buf);
	printf("sector_size: %" PRIu32 "\n", info->sector_size);
	printf("read_only: %s\n",
	       info->flags & RUMP_DISK_INFO_READ_ONLY ? "yes" : "no");
	printf("partition: %s\n", part ? "yes" : "no");
	printf("flags: 0x%" PRIx32 "\n", info->flags);
	printf("scheme: %s\n", scheme_name(info->scheme));
	printf("part_index: %" PRIu32 "\n", info->part_index);
	printf("part_start: %" PRIu64 "\n", info->part_start);
	printf("mbr_type: 0x%02x\n", info->mbr_type);
	format_guid(info->gpt_type, buf, sizeof(buf));
	name = gpt_type_name(buf);
	if (guid_is_nil(info->gpt_type))
		printf("gpt_type: -\n");
	else if (name != NULL)
		printf("gpt_type: %s (%s)\n", buf, name);
	else
		printf("gpt_type: %s\n", buf);
	format_guid(info->gpt_guid, buf, sizeof(buf));
	printf("gpt_guid: %s\n", guid_is_nil(info->gpt_guid) ? "-" : buf);
	format_label(info->label, buf, sizeof(buf));
	printf("label: %s\n", buf);
}

static int
cmd_info(struct rumpctl *ctl, int argc, char **argv)
{
	char field[RUMP_NAME_MAX];
	struct rump_disk_info info;
	struct rump_client *c;
	size_t got;
	int error, status;

	if (argc != 2)
		return disk_usage("info", "disk info takes one device name");
	if ((status = name_field(argv[1], field)) != RUMPCTL_OK)
		return status;
	if ((status = disk_connect(ctl, false, &c)) != RUMPCTL_OK)
		return status;
	error = rump_client_call(c, RUMP_DISK_MSG_STATUS, field,
	                         sizeof(field), &info, sizeof(info), &got);
	rump_client_close(c);
	if (error)
		return device_error(argv[1], "status", error);
	if (got != sizeof(info))
		return rumpctl_fail("%s: the service sent a status of %zu "
		                    "bytes, not %zu", argv[1], got,
		                    sizeof(info));
	sanitize_info(&info);
	print_info(&info);
	if (fflush(stdout) != 0 || ferror(stdout))
		return rumpctl_fail("disk info: stdout: %s", strerror(errno));
	return RUMPCTL_OK;
}

/* ---- I/O -------------------------------------------------------------- */

static void
chunk_done(struct rump_request *req, int64_t result, uint64_t aux)
{
	struct chunk *ch = req->arg;

	(void)aux;
	ch->result = result;
	ch->busy = false;
}

/* Returns 0 or an errno; the chunk's outcome is in ch->result. */
static int
chunk_submit(struct disk *d, struct chunk *ch, uint16_t opcode,
             uint64_t start, uint32_t len)
{
	int error, n;

	ch->start = start;
	ch->len = len;
	ch->req = (struct rump_request){
		.sqe = {
			.opcode = opcode,
			.len = len,
			.handle = d->handle,
			.offset = start,
			.buf = rump_client_buf_offset(d->client, ch->buf),
		},
		.done = chunk_done,
		.arg = ch,
	};
	ch->busy = true;
	while ((error = rump_client_submit(d->client, &ch->req)) == EAGAIN)
		if ((n = rump_client_reap(d->client, UINT64_MAX)) < 0) {
			ch->busy = false;
			return -n;
		}
	if (error)
		ch->busy = false;
	return error;
}

/* Waits until ch completed: a broken session completes it too, with
 * -ECONNRESET. */
static void
chunk_wait(struct disk *d, struct chunk *ch)
{
	while (ch->busy)
		(void)rump_client_reap(d->client, UINT64_MAX);
}

/* 0 or the errno of ch's request, which must have moved all of ch. */
static int
chunk_error(const struct chunk *ch)
{
	if (ch->result < 0)
		return (int)-ch->result;
	return (uint64_t)ch->result == ch->len ? 0 : EIO;
}

/* Reads the sector at start into d->sector, synchronously. */
static int
read_sector(struct disk *d, uint64_t start)
{
	struct rump_sqe sqe = {
		.opcode = RUMP_DISK_OP_READ,
		.len = d->info.sector_size,
		.handle = d->handle,
		.offset = start,
		.buf = rump_client_buf_offset(d->client, d->sector),
	};
	int64_t r = rump_client_exec(d->client, &sqe, NULL);

	if (r < 0)
		return (int)-r;
	return (uint64_t)r == sqe.len ? 0 : EIO;
}

/*
 * Connects, opens name in mode and sets up the chunks.  On failure prints
 * why and returns an exit status; disk_close() undoes what was done
 * either way.
 */
static int
disk_open(struct rumpctl *ctl, struct disk *d, const char *name,
          uint32_t mode)
{
	struct rump_disk_open req = { .mode = mode };
	struct rump_disk_open_reply rep;
	uint32_t ss;
	size_t got;
	int error, status;

	d->name = name;
	if ((status = name_field(name, req.name)) != RUMPCTL_OK)
		return status;
	if ((status = disk_connect(ctl, true, &d->client)) != RUMPCTL_OK)
		return status;
	error = rump_client_call(d->client, RUMP_DISK_MSG_OPEN, &req,
	                         sizeof(req), &rep, sizeof(rep), &got);
	if (error)
		return device_error(name, "open", error);
	if (got != sizeof(rep))
		return rumpctl_fail("%s: the service answered the open with %zu"
		                    " bytes, not %zu", name, got, sizeof(rep));
	d->handle = rep.handle;
	d->opened = true;
	d->info = rep.info;
	sanitize_info(&d->info);
	ss = d->info.sector_size;
	/* Everything below divides by it and counts on whole sectors. */
	if (ss == 0 || ss > CHUNK || d->info.size % ss != 0)
		return rumpctl_fail("%s: the service reports a sector size of "
		                    "%" PRIu32 " for %" PRIu64 " bytes; cannot "
		                    "do I/O", name, ss, d->info.size);
	d->chunk_size = CHUNK - CHUNK % ss;
	/* Never freed one by one: they go with the shared area. */
	if ((d->sector = rump_client_buf_alloc(d->client, ss)) == NULL)
		goto no_room;
	for (int i = 0; i < DEPTH; i++)
		if ((d->chunks[i].buf = rump_client_buf_alloc(d->client,
		                                              CHUNK)) == NULL)
			goto no_room;
	return RUMPCTL_OK;
no_room:
	return rumpctl_fail("%s: no room in the shared buffer area", name);
}

/* Waits for what is in flight, closes the device and the session. */
static void
disk_close(struct disk *d)
{
	if (d->client == NULL)
		return;
	for (int i = 0; i < DEPTH; i++)
		chunk_wait(d, &d->chunks[i]);
	/* Ending the session would close the handle as well; closing it
	 * first frees the device for the next client at once, and an error
	 * here has nothing left to lose. */
	if (d->opened)
		(void)rump_client_call(d->client, RUMP_DISK_MSG_CLOSE,
		                       &d->handle, sizeof(d->handle), NULL, 0,
		                       NULL);
	/* The buffers go with the shared area. */
	rump_client_close(d->client);
	d->client = NULL;
}

static int
write_all(int fd, const uint8_t *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Reads up to len bytes, short only at end of input (*eof then). */
static int
read_full(int fd, uint8_t *p, size_t len, size_t *got, bool *eof)
{
	*got = 0;
	while (*got < len) {
		ssize_t n = read(fd, p + *got, len - *got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno;
		if (n == 0) {
			*eof = true;
			break;
		}
		*got += (size_t)n;
	}
	return 0;
}

static int
range_error(const struct disk *d, uint64_t off, uint64_t len)
{
	return rumpctl_fail("%s: %" PRIu64 " bytes at offset %" PRIu64
	                    " reach past the end of the device (%" PRIu64
	                    " bytes)", d->name, len, off, d->info.size);
}

/*
 * Streams [off, off + len) to stdout: chunks are read in order, DEPTH at
 * a time, and written out in order as each completes.
 */
static int
disk_read(struct disk *d, uint64_t off, uint64_t len)
{
	uint32_t ss = d->info.sector_size;
	uint64_t end = off + len;
	/* disk_open() checked size is a multiple of ss: no overflow. */
	uint64_t aligned_end = end % ss ? end + ss - end % ss : end;
	uint64_t next = off - off % ss;
	unsigned submitted = 0, written = 0;
	struct chunk *ch;
	uint64_t n, lo, hi;
	int error;

	while (next < aligned_end || written < submitted) {
		while (next < aligned_end && submitted - written < DEPTH) {
			ch = &d->chunks[submitted % DEPTH];
			n = aligned_end - next;
			if (n > d->chunk_size)
				n = d->chunk_size;
			error = chunk_submit(d, ch, RUMP_DISK_OP_READ, next,
			                     (uint32_t)n);
			if (error)
				return rumpctl_fail("%s: read at %" PRIu64
				                    ": %s", d->name, next,
				                    strerror(error));
			next += n;
			submitted++;
		}
		/* Completions come in any order; stdout takes them in
		 * the device's. */
		ch = &d->chunks[written % DEPTH];
		chunk_wait(d, ch);
		if ((error = chunk_error(ch)) != 0)
			return rumpctl_fail("%s: read at %" PRIu64 ": %s",
			                    d->name, ch->start,
			                    strerror(error));
		lo = ch->start > off ? ch->start : off;
		hi = ch->start + ch->len < end ? ch->start + ch->len : end;
		if ((error = write_all(STDOUT_FILENO, ch->buf +
		                       (lo - ch->start), hi - lo)) != 0)
			return rumpctl_fail("%s: writing to stdout: %s",
			                    d->name, strerror(error));
		written++;
	}
	return RUMPCTL_OK;
}

static int
cmd_read(struct rumpctl *ctl, int argc, char **argv)
{
	struct disk d = { 0 };
	uint64_t off, len;
	int status;

	if (argc != 4)
		return disk_usage("read", "disk read takes NAME OFFSET LEN");
	if (!parse_size(argv[2], &off))
		return disk_usage("read", "bad offset '%s'", argv[2]);
	if (!parse_size(argv[3], &len))
		return disk_usage("read", "bad length '%s'", argv[3]);
	status = disk_open(ctl, &d, argv[1], RUMP_DISK_OPEN_READ);
	if (status == RUMPCTL_OK) {
		if (off > d.info.size || len > d.info.size - off)
			status = range_error(&d, off, len);
		else
			status = disk_read(&d, off, len);
	}
	disk_close(&d);
	return status;
}

/* Fails early, before a byte is written, when stdin is a file that
 * cannot fit; a pipe is only found too long once the device is full. */
static int
check_input_fits(const struct disk *d, uint64_t off)
{
	struct stat st;
	off_t pos;

	if (fstat(STDIN_FILENO, &st) != 0 || !S_ISREG(st.st_mode))
		return RUMPCTL_OK;
	pos = lseek(STDIN_FILENO, 0, SEEK_CUR);
	if (pos < 0 || pos >= st.st_size)
		return RUMPCTL_OK;
	if ((uint64_t)(st.st_size - pos) > d->info.size - off)
		return range_error(d, off, (uint64_t)(st.st_size - pos));
	return RUMPCTL_OK;
}

/*
 * Fills ch for the sector-aligned device range at start: stdin from
 * buf[head] on, up to room bytes in all, *got of them from stdin.  The
 * head bytes before the data and those after it up to the sector's end
 * are the device's own.
 */
static int
fill_chunk(struct disk *d, struct chunk *ch, uint64_t start, size_t head,
           size_t room, size_t *got, bool *eof)
{
	uint32_t ss = d->info.sector_size;
	size_t data_end, tail;
	int error;

	if ((error = read_full(STDIN_FILENO, ch->buf + head, room - head,
	                       got, eof)) != 0)
		return rumpctl_fail("%s: reading stdin: %s", d->name,
		                    strerror(error));
	if (*got == 0)
		return RUMPCTL_OK;
	if (head > 0) {
		if ((error = read_sector(d, start)) != 0)
			return rumpctl_fail("%s: read at %" PRIu64 ": %s",
			                    d->name, start, strerror(error));
		memcpy(ch->buf, d->sector, head);
	}
	data_end = head + *got;
	tail = data_end % ss;
	if (tail == 0)
		return RUMPCTL_OK;
	/* d->sector holds the last sector already if it is the first. */
	if (head == 0 || data_end >= ss) {
		error = read_sector(d, start + data_end - tail);
		if (error)
			return rumpctl_fail("%s: read at %" PRIu64 ": %s",
			                    d->name, start + data_end - tail,
			                    strerror(error));
	}
	memcpy(ch->buf + data_end, d->sector + tail, ss - tail);
	return RUMPCTL_OK;
}

/* Waits for every write; reports the failure lowest on the device, which
 * is the one that bounds what surely landed. */
static int
finish_writes(struct disk *d)
{
	struct rump_sqe flush = {
		.opcode = RUMP_DISK_OP_FLUSH,
		.handle = d->handle,
	};
	struct chunk *bad = NULL;
	int64_t r;

	for (int i = 0; i < DEPTH; i++) {
		struct chunk *ch = &d->chunks[i];

		chunk_wait(d, ch);
		if (chunk_error(ch) != 0 &&
		    (bad == NULL || ch->start < bad->start))
			bad = ch;
	}
	if (bad != NULL)
		return rumpctl_fail("%s: write at %" PRIu64 ": %s", d->name,
		                    bad->start, strerror(chunk_error(bad)));
	r = rump_client_exec(d->client, &flush, NULL);
	if (r < 0)
		return rumpctl_fail("%s: flush: %s", d->name,
		                    strerror((int)-r));
	return RUMPCTL_OK;
}

/* Once the device is full: fails if stdin has anything left. */
static int
input_left(struct disk *d, uint64_t written)
{
	uint8_t extra;
	size_t got;
	bool eof = false;
	int error;

	if ((error = read_full(STDIN_FILENO, &extra, 1, &got, &eof)) != 0)
		return rumpctl_fail("%s: reading stdin: %s", d->name,
		                    strerror(error));
	if (got == 0)
		return RUMPCTL_OK;
	return rumpctl_fail("%s: the input goes past the end of the device "
	                    "(%" PRIu64 " bytes); %" PRIu64 " bytes written "
	                    "up to there", d->name, d->info.size, written);
}

/*
 * Writes stdin from off on: each chunk is filled while the ones before it
 * are being written.  *writtenp: bytes of stdin submitted.
 */
static int
disk_write(struct disk *d, uint64_t off, uint64_t *writtenp)
{
	uint32_t ss = d->info.sector_size;
	uint64_t pos = off - off % ss;
	size_t head = off % ss, room, got, n;
	bool eof = false;
	struct chunk *ch;
	int error, status;

	*writtenp = 0;
	for (unsigned seq = 0; !eof; seq++) {
		if (pos == d->info.size) {
			status = input_left(d, *writtenp);
			if (status != RUMPCTL_OK)
				return status;
			break;
		}
		/* The slot's previous write must be done before it refills;
		 * its failure is as good a place to stop as any. */
		ch = &d->chunks[seq % DEPTH];
		chunk_wait(d, ch);
		if ((error = chunk_error(ch)) != 0)
			return rumpctl_fail("%s: write at %" PRIu64 ": %s",
			                    d->name, ch->start,
			                    strerror(error));
		room = d->info.size - pos < d->chunk_size ?
		       (size_t)(d->info.size - pos) : d->chunk_size;
		status = fill_chunk(d, ch, pos, head, room, &got, &eof);
		if (status != RUMPCTL_OK)
			return status;
		if (got == 0)
			break;
		n = head + got;
		if (n % ss != 0)
			n += ss - n % ss;
		error = chunk_submit(d, ch, RUMP_DISK_OP_WRITE, pos,
		                     (uint32_t)n);
		if (error)
			return rumpctl_fail("%s: write at %" PRIu64 ": %s",
			                    d->name, pos, strerror(error));
		*writtenp += got;
		pos += n;
		head = 0;
	}
	return finish_writes(d);
}

static int
cmd_write(struct rumpctl *ctl, int argc, char **argv)
{
	struct disk d = { 0 };
	bool verbose = false;
	uint64_t off, written = 0;
	int c, status;

	optind = 0;
	while ((c = getopt(argc, argv, "v")) != -1) {
		switch (c) {
		case 'v':
			verbose = true;
			break;
		default:
			return disk_usage("write", "bad option for disk write");
		}
	}
	if (argc - optind != 2)
		return disk_usage("write", "disk write takes NAME OFFSET");
	if (!parse_size(argv[optind + 1], &off))
		return disk_usage("write", "bad offset '%s'", argv[optind + 1]);
	status = disk_open(ctl, &d, argv[optind],
	                   RUMP_DISK_OPEN_READ | RUMP_DISK_OPEN_WRITE);
	if (status == RUMPCTL_OK) {
		if (off > d.info.size)
			status = rumpctl_fail("%s: offset %" PRIu64 " is past "
			                      "the end of the device (%" PRIu64
			                      " bytes)", d.name, off,
			                      d.info.size);
		else if ((status = check_input_fits(&d, off)) == RUMPCTL_OK)
			status = disk_write(&d, off, &written);
	}
	disk_close(&d);
	if (status == RUMPCTL_OK && verbose)
		fprintf(stderr, "%s: %" PRIu64 " bytes written at offset %"
		        PRIu64 "\n", argv[optind], written, off);
	return status;
}

/* ---- dispatch --------------------------------------------------------- */

int
rumpctl_cmd_disk(struct rumpctl *ctl, int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*run)(struct rumpctl *, int, char **);
	} subcommands[] = {
		{ "list", cmd_list },
		{ "info", cmd_info },
		{ "read", cmd_read },
		{ "write", cmd_write },
	};

	if (argc < 2)
		return disk_usage(NULL, "disk: no subcommand given");
	for (size_t i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]);
	     i++)
		if (strcmp(argv[1], subcommands[i].name) == 0)
			return subcommands[i].run(ctl, argc - 1, argv + 1);
	return disk_usage(NULL, "disk: unknown subcommand '%s'", argv[1]);
}
