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
 *
 * Read-ahead: libext2fs asks for one range at a time and waits, so
 * without help a sequential reader keeps the disk at queue depth 1 and
 * pays its whole latency per read (rumpdisk reads with O_DIRECT, so no
 * host page cache reads ahead for us).  Large reads that continue where
 * an earlier one ended (file data in extents is contiguous on disk) make
 * a stream; a stream keeps a window of asynchronous reads going ahead of
 * it, in slots of their own in the shared area, and a later read takes
 * what it can from them.  A slot only ever holds what the disk holds:
 * every write, discard or write_zeroes drops the slots it overlaps before
 * it is sent, a failed read-ahead is dropped (the real read then reports
 * its own error), and a new session drops them all.
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

#define RA_SLOTS 8               /* read-ahead slots of CHUNK bytes */
#define RA_STREAMS 4             /* sequential readers followed at once */
/* Smaller reads (metadata) neither start nor extend a stream. */
#define RA_MIN_READ (64u << 10)
/* A stream not read for this many large reads is done: it no longer
 * takes a share of the slots. */
#define RA_IDLE_READS 8

struct chunk_req {
	struct rump_request req;
	int64_t result;
	bool done;
};

struct ra_slot {
	struct chunk_req c;
	uint64_t off;
	uint32_t len;
	bool sent;                   /* submitted, completion not yet seen */
	bool valid;                  /* holds (or will) the disk's bytes */
	unsigned stream;
};

struct ra_stream {
	uint64_t from;               /* where its latest read started */
	uint64_t next;               /* where its next read should start */
	uint64_t ahead;              /* read ahead up to here */
	uint64_t window;             /* bytes to keep in flight past next */
	uint64_t used;               /* clock of its last read */
	bool live;
};

struct disk_backend {
	struct rump_client *client;
	char device[RUMP_NAME_MAX];
	uint32_t mode;
	uint64_t handle;
	uint64_t size;
	bool opened;
	unsigned char *buf;          /* CHUNKS * CHUNK in the shared area */
	unsigned char *ra_buf;       /* RA_SLOTS * CHUNK in the shared area */
	struct ra_slot slots[RA_SLOTS];
	struct ra_stream streams[RA_STREAMS];
	uint64_t clock;
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


/* ---- read-ahead -------------------------------------------------------- */

static unsigned char *
slot_data(struct disk_backend *db, const struct ra_slot *s)
{
	return db->ra_buf + (size_t)(s - db->slots) * CHUNK;
}

/* Notes a completion the reaper has delivered: a failed or short
 * read-ahead simply holds nothing. */
static void
slot_settle(struct ra_slot *s)
{
	if (!s->sent || !s->c.done)
		return;
	s->sent = false;
	if (s->c.result != (int64_t)s->len)
		s->valid = false;
}

static bool
slot_busy(struct ra_slot *s)
{
	slot_settle(s);
	return s->sent;
}

/*
 * Forgets every slot overlapping [off, off + len), before a write there
 * goes out: a read-ahead still in flight may return the old bytes or the
 * new, so neither may be served.  Its buffer stays busy until it lands.
 */
static void
ra_invalidate(struct disk_backend *db, uint64_t off, uint64_t len)
{
	for (unsigned i = 0; i < RA_SLOTS; i++) {
		struct ra_slot *s = &db->slots[i];

		if (s->valid && s->off < off + len && off < s->off + s->len)
			s->valid = false;
	}
	/* A stream whose window lost a piece reads it ahead again. */
	for (unsigned i = 0; i < RA_STREAMS; i++) {
		struct ra_stream *st = &db->streams[i];

		if (st->live && off < st->ahead && off + len > st->next)
			st->ahead = st->next > off ? st->next : off;
	}
}

static void
ra_drop_all(struct disk_backend *db)
{
	for (unsigned i = 0; i < RA_SLOTS; i++)
		db->slots[i].valid = false;
	memset(db->streams, 0, sizeof(db->streams));
}

/*
 * A slot for read-ahead on behalf of stream: a free one, else one another
 * stream filled and has not yet read, from the stream idle longest.
 * NULL when all are in flight or the stream's own.
 */
static struct ra_slot *
ra_slot_get(struct disk_backend *db, unsigned stream)
{
	struct ra_slot *victim = NULL;
	uint64_t oldest = UINT64_MAX;

	for (unsigned i = 0; i < RA_SLOTS; i++) {
		struct ra_slot *s = &db->slots[i];
		uint64_t used;

		if (slot_busy(s))
			continue;
		if (!s->valid)
			return s;
		if (s->stream == stream) {
			/* Skipped over by its reader: nobody comes back. */
			if (s->off + s->len <= db->streams[stream].from)
				return s;
			continue;
		}
		used = db->streams[s->stream].live
		       ? db->streams[s->stream].used : 0;
		if (used < oldest) {
			oldest = used;
			victim = s;
		}
	}
	return victim;
}

/*
 * The stream a read of [off, off + len) continues: one it lies in, from
 * a window behind where the stream has got to (FUSE may deliver a
 * reader's requests a little out of order) to where it has read ahead.
 * Otherwise the read starts a stream, in place of the one idle longest.
 */
static unsigned
ra_stream_for(struct disk_backend *db, uint64_t off, uint64_t len,
              bool *cont)
{
	unsigned i, lru = 0;

	for (i = 0; i < RA_STREAMS; i++) {
		struct ra_stream *st = &db->streams[i];

		if (st->live && off <= st->ahead &&
		    off + len + st->window >= st->next) {
			*cont = true;
			st->from = off;
			if (st->next < off + len)
				st->next = off + len;
			return i;
		}
		if (!st->live || (db->streams[lru].live &&
		                  st->used < db->streams[lru].used))
			lru = i;
	}
	/* The stream replaced leaves its slots to others. */
	for (i = 0; i < RA_SLOTS; i++)
		if (db->slots[i].stream == lru)
			db->slots[i].valid = false;
	db->streams[lru] = (struct ra_stream){
		.from = off, .next = off + len, .ahead = off + len,
		.live = true,
	};
	*cont = false;
	return lru;
}

/* Grows the stream's window and sends read-ahead to fill it. */
static void
ra_advance(struct disk_backend *db, unsigned stream, uint64_t len)
{
	struct ra_stream *st = &db->streams[stream];
	uint64_t cap = (uint64_t)RA_SLOTS * CHUNK, end;
	unsigned active = 0;

	for (unsigned i = 0; i < RA_STREAMS; i++)
		active += db->streams[i].live &&
		          db->clock - db->streams[i].used <= RA_IDLE_READS;
	/* Readers side by side share the slots rather than take each
	 * other's before they are read. */
	cap /= active;
	st->window = st->window == 0 ? 2 * len : 2 * st->window;
	if (st->window > cap)
		st->window = cap;
	if (st->window < len)
		st->window = len;
	if (st->ahead < st->next)
		st->ahead = st->next;
	end = st->next + st->window;
	if (end > db->size)
		end = db->size;
	while (st->ahead < end) {
		uint32_t n = end - st->ahead > CHUNK ? CHUNK
		                                     : (uint32_t)(end - st->ahead);
		struct ra_slot *s = ra_slot_get(db, stream);

		if (s == NULL)
			return;
		prep(db, &s->c, RUMP_DISK_OP_READ, st->ahead, n);
		s->c.req.sqe.buf =
		    rump_client_buf_offset(db->client, slot_data(db, s));
		s->off = st->ahead;
		s->len = n;
		s->stream = stream;
		s->valid = false;
		if (rump_client_submit(db->client, &s->c.req) != 0)
			return;         /* the reads themselves will say why */
		s->sent = true;
		s->valid = true;
		st->ahead += n;
	}
}

/* The valid slot holding the byte at pos, or NULL. */
static struct ra_slot *
ra_find(struct disk_backend *db, uint64_t pos)
{
	for (unsigned i = 0; i < RA_SLOTS; i++) {
		struct ra_slot *s = &db->slots[i];

		if (s->valid && s->off <= pos && pos - s->off < s->len)
			return s;
	}
	return NULL;
}

/*
 * A read: what the slots hold (waiting for what is still in flight),
 * the rest from the disk, the stream's read-ahead sent first so that the
 * disk works on both at once.
 */
static int
ra_read(struct disk_backend *db, uint64_t off, unsigned char *data,
        uint64_t len)
{
	uint64_t pos = off, end = off + len;
	struct ra_slot *s;
	unsigned stream;
	bool cont;
	int r;

	if (len >= RA_MIN_READ) {
		stream = ra_stream_for(db, off, len, &cont);
		db->streams[stream].used = ++db->clock;
		if (cont)
			ra_advance(db, stream, len);
	}
	while (pos < end && (s = ra_find(db, pos)) != NULL) {
		uint64_t n;

		while (slot_busy(s))
			if ((r = rump_client_reap(db->client, UINT64_MAX)) < 0)
				break;
		slot_settle(s);
		if (!s->valid || s->sent)
			break;
		n = s->off + s->len - pos;
		if (n > end - pos)
			n = end - pos;
		memcpy(data + (pos - off), slot_data(db, s) + (pos - s->off), n);
		pos += n;
		/* Read through: sequential readers do not come back. */
		if (pos == s->off + s->len)
			s->valid = false;
	}
	if (pos < end)
		return transfer(db, RUMP_DISK_OP_READ, pos, data + (pos - off),
		                end - pos);
	return 0;
}

/* Before the session goes: no completion may land in a freed slot. */
static void
ra_drain(struct disk_backend *db)
{
	while (rump_client_in_flight(db->client) > 0)
		if (rump_client_reap(db->client, UINT64_MAX) < 0)
			break;
	for (unsigned i = 0; i < RA_SLOTS; i++)
		slot_settle(&db->slots[i]);
}

static int
do_io(struct disk_backend *db, uint16_t op, uint64_t off, void *data,
      uint64_t len)
{
	int error, attempt;

	if (op == RUMP_DISK_OP_WRITE || op == RUMP_DISK_OP_DISCARD ||
	    op == RUMP_DISK_OP_WRITE_ZEROES)
		ra_invalidate(db, off, len);
	for (attempt = 0;; attempt++) {
		if (op == RUMP_DISK_OP_READ)
			error = ra_read(db, off, data, len);
		else if (op == RUMP_DISK_OP_WRITE)
			error = transfer(db, op, off, data, len);
		else
			error = range_op(db, op, off, len);
		if (error != ECONNRESET || attempt > 0)
			return error;
		/* rumpdisk restarted: what it acknowledged is on its disk,
		 * so the request is safe to send again on a new session.
		 * The reconnect fails the read-ahead still in flight. */
		error = rump_client_reconnect(db->client, RECONNECT_MS);
		ra_drain(db);
		ra_drop_all(db);
		if (error != 0 || (error = open_device(db, NULL)) != 0)
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
		.buf_size = (size_t)(CHUNKS + RA_SLOTS) * CHUNK,
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
	db->ra_buf = rump_client_buf_alloc(db->client,
	                                   (size_t)RA_SLOTS * CHUNK);
	if (db->buf == NULL || db->ra_buf == NULL) {
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
	db->size = info.size;
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
		ra_drain(db);
		if (db->opened)
			rump_client_call(db->client, RUMP_DISK_MSG_CLOSE,
			                 &db->handle, sizeof(db->handle), NULL, 0,
			                 NULL);
		rump_client_close(db->client);
	}
	free(db);
}
