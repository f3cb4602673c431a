/*
 * The blocks of a file system from a rumpdisk device: a librumpclient
 * session, the device OPENed by name, and READ/WRITE/FLUSH/DISCARD/
 * WRITE_ZEROES through the ring, the data in a buffer of the shared area.
 *
 * Only the service's worker calls in (libext2fs runs there), so one
 * bounce buffer serves; large transfers go out as several requests in
 * flight at once.  When rumpdisk restarts, the session is reconnected and
 * the device opened again, and the request is retried: a disk restart
 * shows as a delay.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rump/client.h"
#include "rump/proto.h"
#include "rump/rumpuser.h"

#include "disk_backend.h"

#define CHUNK (1u << 20)         /* bytes per ring request */
#define CHUNKS 4                 /* requests in flight */
#define RECONNECT_MS 30000

struct disk_backend {
	struct rump_client *client;
	char device[RUMP_NAME_MAX];
	uint32_t mode;
	uint64_t handle;
	bool opened;
	unsigned char *buf;          /* CHUNKS * CHUNK in the shared area */
};

struct chunk_req {
	struct rump_request req;
	int64_t result;
	bool done;
};

static void
chunk_done(struct rump_request *req, int64_t result, uint64_t aux)
{
	struct chunk_req *c = (struct chunk_req *)req;

	(void)aux;
	c->result = result;
	c->done = true;
}

static int
open_device(struct disk_backend *db, struct rump_disk_info *info)
{
	struct rump_disk_open op = { .mode = db->mode };
	struct rump_disk_open_reply reply;
	size_t len = 0;
	int error;

	snprintf(op.name, sizeof(op.name), "%s", db->device);
	error = rump_client_call(db->client, RUMP_DISK_MSG_OPEN, &op,
	                         sizeof(op), &reply, sizeof(reply), &len);
	if (error)
		return error;
	if (len < sizeof(reply))
		return EPROTO;
	db->handle = reply.handle;
	db->opened = true;
	if (info != NULL)
		*info = reply.info;
	return 0;
}

/* Waits until every one of reqs[0..k) has completed. */
static int
wait_all(struct disk_backend *db, struct chunk_req *reqs, unsigned k)
{
	int r;

	for (unsigned i = 0; i < k; i++)
		while (!reqs[i].done)
			if ((r = rump_client_reap(db->client, UINT64_MAX)) < 0)
				return -r;
	return 0;
}

static void
prep(struct disk_backend *db, struct chunk_req *c, uint16_t op, uint64_t off,
     uint32_t len)
{
	memset(c, 0, sizeof(*c));
	c->req.sqe.opcode = op;
	c->req.sqe.handle = db->handle;
	c->req.sqe.offset = off;
	c->req.sqe.len = len;
	c->req.done = chunk_done;
}

/*
 * READ or WRITE of len bytes at off, in CHUNK pieces with up to CHUNKS in
 * flight, through the shared buffer.  ECONNRESET when the disk went away
 * (the caller reconnects).
 */
static int
transfer(struct disk_backend *db, uint16_t op, uint64_t off,
         unsigned char *data, uint64_t len)
{
	struct chunk_req reqs[CHUNKS];
	uint64_t pos = 0, start[CHUNKS];
	unsigned k, i;
	int error, werror;

	while (pos < len) {
		error = 0;
		for (k = 0; k < CHUNKS && pos < len; k++) {
			uint32_t n = len - pos > CHUNK ? CHUNK
			                               : (uint32_t)(len - pos);
			unsigned char *slot = db->buf + (size_t)k * CHUNK;

			prep(db, &reqs[k], op, off + pos, n);
			reqs[k].req.sqe.buf =
			    rump_client_buf_offset(db->client, slot);
			if (op == RUMP_DISK_OP_WRITE)
				memcpy(slot, data + pos, n);
			if ((error = rump_client_submit(db->client,
			                                &reqs[k].req)) != 0)
				break;
			start[k] = pos;
			pos += n;
		}
		if ((werror = wait_all(db, reqs, k)) != 0)
			return werror;
		if (error)
			return error;
		for (i = 0; i < k; i++) {
			if (reqs[i].result < 0)
				return (int)-reqs[i].result;
			if ((uint64_t)reqs[i].result != reqs[i].req.sqe.len)
				return EIO;
			if (op == RUMP_DISK_OP_READ)
				memcpy(data + start[i],
				       db->buf + (size_t)i * CHUNK,
				       reqs[i].req.sqe.len);
		}
	}
	return 0;
}

/* FLUSH (len 0), DISCARD, WRITE_ZEROES: no data; ranges split where the
 * SQE's 32-bit length needs it. */
static int
range_op(struct disk_backend *db, uint16_t op, uint64_t off, uint64_t len)
{
	const uint64_t step = 1u << 30;
	struct chunk_req c;
	int error;

	do {
		uint64_t n = len > step ? step : len;

		prep(db, &c, op, off, (uint32_t)n);
		if ((error = rump_client_submit(db->client, &c.req)) != 0 ||
		    (error = wait_all(db, &c, 1)) != 0)
			return error;
		if (c.result < 0)
			return (int)-c.result;
		off += n;
		len -= n;
	} while (len > 0);
	return 0;
}

static int
do_io(struct disk_backend *db, uint16_t op, uint64_t off, void *data,
      uint64_t len)
{
	int error, attempt;

	for (attempt = 0;; attempt++) {
		if (op == RUMP_DISK_OP_READ || op == RUMP_DISK_OP_WRITE)
			error = transfer(db, op, off, data, len);
		else
			error = range_op(db, op, off, len);
		if (error != ECONNRESET || attempt > 0)
			return error;
		/* rumpdisk restarted: what it acknowledged is on its disk,
		 * so the request is safe to send again on a new session. */
		if ((error = rump_client_reconnect(db->client,
		                                   RECONNECT_MS)) != 0 ||
		    (error = open_device(db, NULL)) != 0)
			return error == ETIMEDOUT ? EIO : error;
	}
}

static int
be_read(void *ctx, uint64_t off, void *buf, size_t len)
{
	return do_io(ctx, RUMP_DISK_OP_READ, off, buf, len);
}

static int
be_write(void *ctx, uint64_t off, const void *buf, size_t len)
{
	return do_io(ctx, RUMP_DISK_OP_WRITE, off, (void *)buf, len);
}

static int
be_flush(void *ctx)
{
	return do_io(ctx, RUMP_DISK_OP_FLUSH, 0, NULL, 0);
}

static int
be_discard(void *ctx, uint64_t off, uint64_t len)
{
	return do_io(ctx, RUMP_DISK_OP_DISCARD, off, NULL, len);
}

static int
be_zeroout(void *ctx, uint64_t off, uint64_t len)
{
	return do_io(ctx, RUMP_DISK_OP_WRITE_ZEROES, off, NULL, len);
}

int
disk_backend_open(const char *service, const char *device, bool read_only,
                  struct fs_ext2_backend *be, struct disk_backend **dbp,
                  char *why, size_t cap)
{
	struct rump_client_opts opts = {
		.version = RUMP_CLIENT_OPTS_VERSION,
		.service_kind = RUMP_SERVICE_DISK,
		.client_name = "rumpfs",
		.sq_entries = 64,
		.buf_size = (size_t)CHUNKS * CHUNK,
	};
	struct rump_disk_info info;
	struct disk_backend *db;
	int error, tries;

	if (strlen(device) >= RUMP_NAME_MAX) {
		snprintf(why, cap, "device name '%s' is too long", device);
		return ENAMETOOLONG;
	}
	if ((db = calloc(1, sizeof(*db))) == NULL) {
		snprintf(why, cap, "out of memory");
		return ENOMEM;
	}
	snprintf(db->device, sizeof(db->device), "%s", device);
	db->mode = RUMP_DISK_OPEN_READ | (read_only ? 0 : RUMP_DISK_OPEN_WRITE);
	/* The disk service may still be starting (the supervisor starts
	 * both at once): a few seconds of patience. */
	for (tries = 0;; tries++) {
		error = rump_client_connect(service, &opts, &db->client);
		if (error == 0 || tries >= 50 ||
		    (error != ENOENT && error != ECONNREFUSED))
			break;
		rumpuser_clock_sleep(100 * 1000 * 1000);
	}
	if (error) {
		snprintf(why, cap, "cannot reach the disk service %s: %s",
		         service, strerror(error));
		goto fail;
	}
	db->buf = rump_client_buf_alloc(db->client, (size_t)CHUNKS * CHUNK);
	if (db->buf == NULL) {
		error = ENOMEM;
		snprintf(why, cap, "no room in the shared area");
		goto fail;
	}
	if ((error = open_device(db, &info)) != 0) {
		snprintf(why, cap, "cannot open %s on %s: %s", device, service,
		         strerror(error));
		goto fail;
	}
	if (!read_only && (info.flags & RUMP_DISK_INFO_READ_ONLY)) {
		error = EROFS;
		snprintf(why, cap, "%s is read-only; mount with --ro", device);
		goto fail;
	}
	if (info.sector_size == 0 || info.sector_size > 4096 ||
	    (info.sector_size & (info.sector_size - 1))) {
		error = EINVAL;
		snprintf(why, cap, "%s has sectors of %u bytes, which ext2 "
		         "blocks cannot be aligned to", device,
		         info.sector_size);
		goto fail;
	}
	*be = (struct fs_ext2_backend){
		.ctx = db,
		.size = info.size,
		.read_only = read_only,
		.read = be_read,
		.write = be_write,
		.flush = be_flush,
		.discard = be_discard,
		.zeroout = be_zeroout,
	};
	*dbp = db;
	return 0;

fail:
	disk_backend_close(db);
	return error;
}

void
disk_backend_close(struct disk_backend *db)
{
	if (db == NULL)
		return;
	if (db->client != NULL) {
		if (db->opened)
			rump_client_call(db->client, RUMP_DISK_MSG_CLOSE,
			                 &db->handle, sizeof(db->handle), NULL, 0,
			                 NULL);
		rump_client_close(db->client);
	}
	free(db);
}
