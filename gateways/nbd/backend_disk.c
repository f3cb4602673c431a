/*
 * The rumpdisk backend: exports are rumpdisk's devices, reached through
 * one librumpclient session shared by every NBD connection.
 *
 * One session (not one per connection) because a device has one writer
 * at a time, and multi-conn clients write through several connections;
 * the NBD requests of all of them go through its ring, and one reaper
 * thread hands completions back to the connections.  Buffers live in the
 * session's shared area, so rumpdisk reads land where the reply is sent
 * from and writes are received straight where rumpdisk takes them.
 *
 * Restart: when rumpdisk dies, requests fail with -ECONNRESET.  Every io
 * stays ours until a completion that is not -ECONNRESET, so the reaper
 * reconnects (rump_client_reconnect waits for the new rumpdisk), opens
 * every device again by name and submits the parked ios anew, with the
 * same buffers (the shared area survives the restart).  Submitters block
 * meanwhile: the client sees a delay, not an error.
 *
 * Completion: connections that spin anyway (waiting for their next
 * request while theirs are in flight) reap the ring themselves through
 * the poll ops, any connection's completions, so a reply goes out on the
 * thread that took the request, without a wakeup.  The reaper thread
 * sleeps while any connection polls, and reaps when none does (and
 * recovers after a restart, always).
 *
 * Locks, in this order: rw (read: submitting, opening, closing; write:
 * recovering), then the library's own, then done_lock (a leaf, taken by
 * completion callbacks).
 */
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend.h"
#include "gateway.h"
#include "rump/client.h"

#define DISK_SQ_ENTRIES 512
#define DISK_AREA_SIZE  (256u << 20)
#define REAP_TIMEOUT_NS (100 * 1000 * 1000ull)
/* How long a submitter that finds the ring full waits for room. */
#define ROOM_WAIT_NS    (1000 * 1000ull)
/* Completed ios handed to the connections in one call. */
#define DONE_BATCH      64

static_assert(sizeof(struct nbd_extent) == sizeof(struct rump_disk_extent),
              "extents are passed through unchanged");
static_assert(NBD_STATE_HOLE == RUMP_DISK_EXTENT_HOLE &&
              NBD_STATE_ZERO == RUMP_DISK_EXTENT_ZERO,
              "extent flags are passed through unchanged");

struct disk_backend;

/* An open device, shared by the connections that chose it. */
struct nbd_export {
	struct nbd_export *next;
	struct disk_backend *db;
	char name[RUMP_NAME_MAX];
	uint32_t mode;
	uint64_t handle;
	bool lost;                 /* gone after a restart: I/O fails */
	unsigned refs;             /* under db->dev_lock */
	struct nbd_export_desc desc;
};

/* Per-io state, in nbd_io.priv. */
struct disk_io {
	struct rump_request rq;
	struct nbd_io *io;
	bool flushing;             /* second step of a FUA trim/zero */
};

struct disk_backend {
	struct nbd_backend base;
	struct rump_client *client;
	char service[256];
	int reconnect_timeout_ms;

	pthread_rwlock_t rw;
	pthread_mutex_t dev_lock;  /* devs and refs */
	struct nbd_export *devs;

	pthread_mutex_t done_lock; /* the fields below */
	pthread_cond_t progress;   /* a reap round or a recovery ended */
	pthread_cond_t unpark;     /* the reaper may run */
	unsigned pollers;          /* between poll_enter and poll_leave */
	bool reaper_parked;        /* waits on unpark */
	struct nbd_io *done, **done_tail;   /* completed, not yet handled */
	struct nbd_io *parked, **parked_tail; /* awaiting a new session */
	bool need_recover;
	uint64_t generation;       /* sessions since start */
	bool stop;

	pthread_t reaper;
	bool reaper_started;
};

static struct disk_backend *
db_of(struct nbd_backend *b)
{
	return (struct disk_backend *)b;
}

static struct disk_io *
dio_of(struct nbd_io *io)
{
	return (struct disk_io *)io->priv;
}

static void
desc_from_info(const struct rump_disk_info *info, struct nbd_export_desc *d)
{
	memset(d, 0, sizeof(*d));
	memcpy(d->name, info->name, sizeof(info->name));
	d->name[sizeof(info->name) - 1] = '\0';
	d->size = info->size;
	d->block_size = info->sector_size;
	d->read_only = info->flags & RUMP_DISK_INFO_READ_ONLY;
	/* One rumpdisk serves every connection: a flush covers them all. */
	d->multi_conn = true;
}

/* Waits until a recovery that began after gen has ended. */
static void
wait_recovery(struct disk_backend *db, uint64_t gen)
{
	pthread_mutex_lock(&db->done_lock);
	db->need_recover = true;
	pthread_cond_signal(&db->unpark);
	while (db->generation == gen && !db->stop)
		pthread_cond_wait(&db->progress, &db->done_lock);
	pthread_mutex_unlock(&db->done_lock);
}

static uint64_t
generation(struct disk_backend *db)
{
	uint64_t g;

	pthread_mutex_lock(&db->done_lock);
	g = db->generation;
	pthread_mutex_unlock(&db->done_lock);
	return g;
}

/*
 * A control call that rides over one rumpdisk restart: on ECONNRESET it
 * waits for the reaper to bring the session back and tries again.
 */
static int
disk_call(struct disk_backend *db, uint16_t type, const void *req,
          size_t req_len, void *reply, size_t cap, size_t *reply_len)
{
	int err = ECONNRESET, tries;

	for (tries = 0; tries < 3 && err == ECONNRESET; tries++) {
		uint64_t gen = generation(db);

		err = rump_client_call(db->client, type, req, req_len, reply,
		                       cap, reply_len);
		if (err == ECONNRESET)
			wait_recovery(db, gen);
	}
	return err;
}

/* The device list; *n entries, the caller frees. */
static int
disk_list_infos(struct disk_backend *db, struct rump_disk_info **infos,
                size_t *n)
{
	size_t cap = RUMP_MSG_MAX, len = 0;
	struct rump_disk_info *buf = malloc(cap);
	int err;

	if (buf == NULL)
		return ENOMEM;
	err = disk_call(db, RUMP_DISK_MSG_LIST, NULL, 0, buf, cap, &len);
	if (err == 0 && len % sizeof(*buf) != 0)
		err = EPROTO;
	if (err != 0) {
		free(buf);
		return err;
	}
	*infos = buf;
	*n = len / sizeof(*buf);
	return 0;
}

static int
disk_list(struct nbd_backend *b, int (*fn)(void *arg, const char *name),
          void *arg)
{
	struct rump_disk_info *infos;
	size_t n, i;
	int err;

	if ((err = disk_list_infos(db_of(b), &infos, &n)) != 0)
		return err;
	for (i = 0; i < n && err == 0; i++) {
		infos[i].name[RUMP_NAME_MAX - 1] = '\0';
		err = fn(arg, infos[i].name);
	}
	free(infos);
	return err;
}

/* The default export: the first whole disk rumpdisk lists. */
static int
default_name(struct disk_backend *db, char name[RUMP_NAME_MAX])
{
	struct rump_disk_info *infos;
	size_t n, i;
	int err;

	if ((err = disk_list_infos(db, &infos, &n)) != 0)
		return err;
	err = ENOENT;
	for (i = 0; i < n; i++) {
		if (infos[i].parent[0] == '\0') {
			memcpy(name, infos[i].name, RUMP_NAME_MAX);
			name[RUMP_NAME_MAX - 1] = '\0';
			err = 0;
			break;
		}
	}
	free(infos);
	return err;
}

static int
resolve(struct disk_backend *db, const char *name, char out[RUMP_NAME_MAX])
{
	if (name[0] == '\0')
		return default_name(db, out);
	if (strlen(name) >= RUMP_NAME_MAX)
		return ENOENT;
	memset(out, 0, RUMP_NAME_MAX);
	strcpy(out, name);
	return 0;
}

static int
disk_status(struct disk_backend *db, const char *name,
            struct rump_disk_info *info)
{
	char req[RUMP_NAME_MAX];
	size_t len = 0;
	int err;

	memset(req, 0, sizeof(req));
	memcpy(req, name, strnlen(name, RUMP_NAME_MAX - 1));
	err = disk_call(db, RUMP_DISK_MSG_STATUS, req, sizeof(req), info,
	                sizeof(*info), &len);
	if (err == 0 && len != sizeof(*info))
		err = EPROTO;
	return err;
}

static int
disk_lookup(struct nbd_backend *b, const char *name, struct nbd_export_desc *d)
{
	struct disk_backend *db = db_of(b);
	struct rump_disk_info info;
	char canon[RUMP_NAME_MAX];
	int err;

	if ((err = resolve(db, name, canon)) != 0)
		return err;
	if ((err = disk_status(db, canon, &info)) != 0)
		return err;
	desc_from_info(&info, d);
	return 0;
}

/* OPEN on the current session; under rw (either side). */
static int
open_device(struct disk_backend *db, const char *name, uint32_t mode,
            struct rump_disk_open_reply *reply)
{
	struct rump_disk_open req;
	size_t len = 0;
	int err;

	memset(&req, 0, sizeof(req));
	memcpy(req.name, name, strnlen(name, RUMP_NAME_MAX - 1));
	req.mode = mode;
	err = rump_client_call(db->client, RUMP_DISK_MSG_OPEN, &req,
	                       sizeof(req), reply, sizeof(*reply), &len);
	if (err == 0 && len != sizeof(*reply))
		err = EPROTO;
	return err;
}

/* The open device called name, or NULL; under dev_lock. */
static struct nbd_export *
find_device(struct disk_backend *db, const char *name)
{
	struct nbd_export *e;

	for (e = db->devs; e != NULL; e = e->next)
		if (strcmp(e->name, name) == 0 && !e->lost)
			return e;
	return NULL;
}

/*
 * Opens name on rumpdisk, or takes another reference to it: connections
 * share one handle, since rumpdisk lets a device have only one writer.
 * Under rw's read side and dev_lock, so that neither two connections nor
 * a recovery open it twice.
 */
static int
open_shared(struct disk_backend *db, const char *name, struct nbd_export **ep)
{
	struct rump_disk_open_reply reply;
	struct nbd_export *e;
	uint32_t mode = RUMP_DISK_OPEN_READ | RUMP_DISK_OPEN_WRITE;
	int err;

	if ((e = find_device(db, name)) != NULL) {
		e->refs++;
		*ep = e;
		return 0;
	}
	err = open_device(db, name, mode, &reply);
	if (err == EROFS || err == EACCES || err == EPERM) {
		mode = RUMP_DISK_OPEN_READ;
		err = open_device(db, name, mode, &reply);
	}
	if (err != 0)
		return err;
	e = calloc(1, sizeof(*e));
	if (e == NULL) {
		(void)rump_client_call(db->client, RUMP_DISK_MSG_CLOSE,
		                       &reply.handle, sizeof(reply.handle),
		                       NULL, 0, NULL);
		return ENOMEM;
	}
	e->db = db;
	memcpy(e->name, name, sizeof(e->name));
	e->mode = mode;
	e->handle = reply.handle;
	desc_from_info(&reply.info, &e->desc);
	if (mode == RUMP_DISK_OPEN_READ)
		e->desc.read_only = true;
	e->refs = 1;
	e->next = db->devs;
	db->devs = e;
	*ep = e;
	return 0;
}

static int
disk_open(struct nbd_backend *b, const char *name, struct nbd_export_desc *d,
          struct nbd_export **ep)
{
	struct disk_backend *db = db_of(b);
	char canon[RUMP_NAME_MAX];
	int err, tries;

	if ((err = resolve(db, name, canon)) != 0)
		return err;
	err = ECONNRESET;
	for (tries = 0; tries < 3 && err == ECONNRESET; tries++) {
		uint64_t gen = generation(db);

		pthread_rwlock_rdlock(&db->rw);
		pthread_mutex_lock(&db->dev_lock);
		err = open_shared(db, canon, ep);
		if (err == 0)
			*d = (*ep)->desc;
		pthread_mutex_unlock(&db->dev_lock);
		pthread_rwlock_unlock(&db->rw);
		if (err == ECONNRESET)
			wait_recovery(db, gen);
	}
	return err;
}

static void
disk_close(struct nbd_export *e)
{
	struct disk_backend *db = e->db;
	struct nbd_export **pp;

	pthread_rwlock_rdlock(&db->rw);
	pthread_mutex_lock(&db->dev_lock);
	if (--e->refs > 0) {
		pthread_mutex_unlock(&db->dev_lock);
		pthread_rwlock_unlock(&db->rw);
		return;
	}
	for (pp = &db->devs; *pp != e; pp = &(*pp)->next)
		;
	*pp = e->next;
	/* A dead session took the handle with it: nothing to close then. */
	if (!e->lost)
		(void)rump_client_call(db->client, RUMP_DISK_MSG_CLOSE,
		                       &e->handle, sizeof(e->handle), NULL, 0,
		                       NULL);
	pthread_mutex_unlock(&db->dev_lock);
	pthread_rwlock_unlock(&db->rw);
	free(e);
}

static void *
disk_buf_alloc(struct nbd_export *e, size_t len)
{
	return rump_client_buf_alloc(e->db->client, len);
}

static void
disk_buf_free(struct nbd_export *e, void *buf)
{
	rump_client_buf_free(e->db->client, buf);
}

/* ---- I/O -------------------------------------------------------------- */

static void
io_done_cb(struct rump_request *rq, int64_t result, uint64_t aux)
{
	struct disk_io *dio = (struct disk_io *)rq;
	struct nbd_io *io = dio->io;
	struct disk_backend *db = io->export->db;

	(void)aux;
	io->result = result;
	io->next = NULL;
	pthread_mutex_lock(&db->done_lock);
	*db->done_tail = io;
	db->done_tail = &io->next;
	pthread_mutex_unlock(&db->done_lock);
}

/* Fills the SQE for io's current step. */
static void
fill_sqe(struct nbd_io *io)
{
	struct disk_io *dio = dio_of(io);
	struct nbd_export *e = io->export;
	struct rump_sqe *sqe = &dio->rq.sqe;

	memset(sqe, 0, sizeof(*sqe));
	sqe->handle = e->handle;
	if (dio->flushing) {
		sqe->opcode = RUMP_DISK_OP_FLUSH;
		return;
	}
	sqe->offset = io->offset;
	sqe->len = io->len;
	switch (io->op) {
	case NBD_IO_READ:
		sqe->opcode = RUMP_DISK_OP_READ;
		sqe->buf = rump_client_buf_offset(e->db->client, io->buf);
		break;
	case NBD_IO_WRITE:
		sqe->opcode = RUMP_DISK_OP_WRITE;
		sqe->flags = io->fua ? RUMP_DISK_F_FUA : 0;
		sqe->buf = rump_client_buf_offset(e->db->client, io->buf);
		break;
	case NBD_IO_FLUSH:
		sqe->opcode = RUMP_DISK_OP_FLUSH;
		sqe->offset = 0;
		sqe->len = 0;
		break;
	case NBD_IO_TRIM:
		sqe->opcode = RUMP_DISK_OP_DISCARD;
		break;
	case NBD_IO_ZERO:
		/* rumpdisk zeroes in place and never punches: NO_HOLE is
		 * honoured whatever the flag says. */
		sqe->opcode = RUMP_DISK_OP_WRITE_ZEROES;
		break;
	case NBD_IO_BLOCK_STATUS:
		sqe->opcode = RUMP_DISK_OP_BLOCK_STATUS;
		sqe->len = io->buf_len;
		sqe->buf = rump_client_buf_offset(e->db->client, io->buf);
		sqe->arg[0] = io->len;
		break;
	}
}

static void
park(struct disk_backend *db, struct nbd_io *io)
{
	io->next = NULL;
	pthread_mutex_lock(&db->done_lock);
	*db->parked_tail = io;
	db->parked_tail = &io->next;
	db->need_recover = true;
	pthread_cond_signal(&db->unpark);
	pthread_mutex_unlock(&db->done_lock);
}

/* Hands an io that failed before reaching rumpdisk to its connection. */
static void
finish(struct disk_backend *db, struct nbd_io *io, int64_t result)
{
	io->result = result;
	db->base.complete(db->base.complete_ctx, &io, 1);
}

/*
 * Submits io's current step; under rw (either side).  EAGAIN when the
 * ring is full; else io is on its way (submitted, parked or finished).
 */
static int
try_submit_locked(struct disk_backend *db, struct nbd_io *io)
{
	struct disk_io *dio = dio_of(io);
	int err;

	if (io->export->lost) {
		finish(db, io, -EIO);
		return 0;
	}
	fill_sqe(io);
	dio->rq.done = io_done_cb;
	dio->io = io;
	err = rump_client_submit(db->client, &dio->rq);
	if (err == EAGAIN)
		return EAGAIN;
	if (err == ECONNRESET)
		park(db, io);
	else if (err != 0)
		finish(db, io, -err);
	return 0;
}

/* The recovery's submit, under rw's write side: makes room by reaping
 * (the reaper handles what that completes once the recovery is over). */
static void
resubmit_locked(struct disk_backend *db, struct nbd_io *io)
{
	while (try_submit_locked(db, io) == EAGAIN) {
		if (rump_client_reap(db->client, ROOM_WAIT_NS) < 0) {
			park(db, io);
			return;
		}
	}
}

static bool handle_done(struct disk_backend *db);

/*
 * The reaper sleeps while connections poll, or while nothing is in
 * flight; a request submitted by a thread that does not poll (or after
 * the last poller left) needs it back.
 */
static void
reaper_wanted(struct disk_backend *db)
{
	pthread_mutex_lock(&db->done_lock);
	if (db->reaper_parked && db->pollers == 0)
		pthread_cond_signal(&db->unpark);
	pthread_mutex_unlock(&db->done_lock);
}

/*
 * Submits io's current step.  A full ring means as many requests in
 * flight as the completion ring holds: reap (or wait for whoever reaps)
 * and hand out what completed, since the thread that would otherwise do
 * it may be us (a poller) or sleeping.
 */
static void
submit_io(struct disk_backend *db, struct nbd_io *io)
{
	int err;

	for (;;) {
		pthread_rwlock_rdlock(&db->rw);
		err = try_submit_locked(db, io);
		pthread_rwlock_unlock(&db->rw);
		if (err != EAGAIN) {
			reaper_wanted(db);
			return;
		}
		(void)rump_client_reap(db->client, ROOM_WAIT_NS);
		(void)handle_done(db);
	}
}

static void
disk_submit(struct nbd_export *e, struct nbd_io *io)
{
	dio_of(io)->flushing = false;
	submit_io(e->db, io);
}

/* ---- polling ---------------------------------------------------------- */

static void
disk_poll_enter(struct nbd_backend *b)
{
	struct disk_backend *db = db_of(b);

	pthread_mutex_lock(&db->done_lock);
	db->pollers++;
	pthread_mutex_unlock(&db->done_lock);
}

static unsigned
disk_poll(struct nbd_backend *b)
{
	struct disk_backend *db = db_of(b);
	int n = rump_client_reap(db->client, 0);

	/* A broken session is the reaper's to recover. */
	if (handle_done(db) || n < 0) {
		pthread_mutex_lock(&db->done_lock);
		db->need_recover = true;
		pthread_cond_signal(&db->unpark);
		pthread_mutex_unlock(&db->done_lock);
	}
	return n > 0 ? (unsigned)n : 0;
}

static void
disk_poll_leave(struct nbd_backend *b)
{
	struct disk_backend *db = db_of(b);

	pthread_mutex_lock(&db->done_lock);
	assert(db->pollers > 0);
	if (--db->pollers == 0 && db->reaper_parked &&
	    rump_client_in_flight(db->client) > 0)
		pthread_cond_signal(&db->unpark);
	pthread_mutex_unlock(&db->done_lock);
}

/* ---- the reaper ------------------------------------------------------- */

/*
 * Reconnects and reopens every device, then re-submits what was parked.
 * Holds rw's write side throughout, so nobody submits to a half-restored
 * session.  Gives up after the reconnect timeout: parked ios then fail
 * with ESHUTDOWN, and the next failure tries again.
 */
static void
recover(struct disk_backend *db)
{
	struct nbd_io *io, *parked;
	struct nbd_export *e;
	int err;

	pthread_rwlock_wrlock(&db->rw);
	nbd_log("disk service lost, waiting for it to come back");
	for (;;) {
		err = rump_client_reconnect(db->client,
		                            db->reconnect_timeout_ms);
		if (err != 0)
			break;
		pthread_mutex_lock(&db->dev_lock);
		for (e = db->devs; e != NULL && err == 0; e = e->next) {
			struct rump_disk_open_reply reply;

			if (e->lost)
				continue;
			err = open_device(db, e->name, e->mode, &reply);
			if (err == 0) {
				e->handle = reply.handle;
			} else if (err != ECONNRESET) {
				nbd_log("%s: cannot reopen after the restart:"
				        " %s", e->name, strerror(err));
				e->lost = true;
				err = 0;
			}
		}
		pthread_mutex_unlock(&db->dev_lock);
		if (err != ECONNRESET)
			break;
		/* Died again while we reopened: start over. */
	}

	/* Requests failed by the reconnect are parked too. */
	pthread_mutex_lock(&db->done_lock);
	{
		struct nbd_io **pp = &db->done, *next;

		while ((io = *pp) != NULL) {
			next = io->next;
			if (io->result == -ECONNRESET) {
				*pp = next;
				io->next = NULL;
				*db->parked_tail = io;
				db->parked_tail = &io->next;
			} else {
				pp = &io->next;
			}
		}
		db->done_tail = pp;
	}
	parked = db->parked;
	db->parked = NULL;
	db->parked_tail = &db->parked;
	db->need_recover = false;
	pthread_mutex_unlock(&db->done_lock);

	if (err == 0)
		nbd_log("disk service back, re-issuing what was in flight");
	else
		nbd_log("disk service did not come back: %s", strerror(err));
	for (io = parked; io != NULL; io = parked) {
		parked = io->next;
		if (err == 0)
			resubmit_locked(db, io);
		else
			finish(db, io, -ESHUTDOWN);
	}
	pthread_rwlock_unlock(&db->rw);

	pthread_mutex_lock(&db->done_lock);
	db->generation++;
	pthread_cond_broadcast(&db->progress);
	pthread_mutex_unlock(&db->done_lock);
}

/*
 * Runs the done list: parks what the restart failed, starts the flush
 * step of FUA trims and zeroes, and hands the rest to the connections.
 * Any thread; callers may race, each takes what is there when it looks.
 * Returns true if a recovery is needed.
 */
static bool
handle_done(struct disk_backend *db)
{
	struct nbd_io *list, *io, *next, *batch[DONE_BATCH];
	unsigned n = 0;
	bool recover_now;

	pthread_mutex_lock(&db->done_lock);
	list = db->done;
	db->done = NULL;
	db->done_tail = &db->done;
	if (list == NULL) {
		recover_now = db->need_recover;
		pthread_mutex_unlock(&db->done_lock);
		return recover_now;
	}
	pthread_mutex_unlock(&db->done_lock);

	for (io = list; io != NULL; io = next) {
		struct disk_io *dio = dio_of(io);
		int64_t r = io->result;

		next = io->next;
		if (r == -ECONNRESET) {
			park(db, io);
			continue;
		}
		if (r >= 0 && !dio->flushing && io->fua &&
		    (io->op == NBD_IO_TRIM || io->op == NBD_IO_ZERO)) {
			dio->flushing = true;
			submit_io(db, io);
			continue;
		}
		/* A short transfer inside the device is an I/O error. */
		if ((io->op == NBD_IO_READ || io->op == NBD_IO_WRITE) &&
		    r >= 0 && r != io->len)
			io->result = -EIO;
		batch[n++] = io;
		if (n == DONE_BATCH) {
			db->base.complete(db->base.complete_ctx, batch, n);
			n = 0;
		}
	}
	if (n > 0)
		db->base.complete(db->base.complete_ctx, batch, n);

	pthread_mutex_lock(&db->done_lock);
	recover_now = db->need_recover;
	pthread_cond_broadcast(&db->progress);
	pthread_mutex_unlock(&db->done_lock);
	return recover_now;
}

/*
 * Whether the reaper should stop; parks it while connections poll or
 * nothing is in flight (see reaper_wanted).  A request counts in flight
 * from before its submitter takes done_lock to look at reaper_parked, so
 * the reaper either sees it or is seen parked.
 */
static bool
reaper_should_stop(struct disk_backend *db)
{
	bool stop;

	pthread_mutex_lock(&db->done_lock);
	while ((db->pollers > 0 || rump_client_in_flight(db->client) == 0) &&
	       !db->need_recover && !db->stop) {
		db->reaper_parked = true;
		pthread_cond_wait(&db->unpark, &db->done_lock);
	}
	db->reaper_parked = false;
	stop = db->stop;
	pthread_mutex_unlock(&db->done_lock);
	return stop;
}

static void *
reaper_main(void *arg)
{
	struct disk_backend *db = arg;

	while (!reaper_should_stop(db)) {
		int n = rump_client_reap(db->client, REAP_TIMEOUT_NS);

		if (handle_done(db) || n == -ECONNRESET || n == -EPROTO) {
			bool stop;

			pthread_mutex_lock(&db->done_lock);
			stop = db->stop;
			pthread_mutex_unlock(&db->done_lock);
			if (!stop) {
				recover(db);
				handle_done(db);
			}
		}
	}
	return NULL;
}

/* ---- life cycle ------------------------------------------------------- */

static void
disk_destroy(struct nbd_backend *b)
{
	struct disk_backend *db = db_of(b);

	if (db->reaper_started) {
		pthread_mutex_lock(&db->done_lock);
		db->stop = true;
		pthread_cond_broadcast(&db->progress);
		pthread_cond_signal(&db->unpark);
		pthread_mutex_unlock(&db->done_lock);
		pthread_join(db->reaper, NULL);
	}
	rump_client_close(db->client);
	pthread_cond_destroy(&db->unpark);
	pthread_cond_destroy(&db->progress);
	pthread_mutex_destroy(&db->done_lock);
	pthread_mutex_destroy(&db->dev_lock);
	pthread_rwlock_destroy(&db->rw);
	free(db);
}

static const struct nbd_backend_ops disk_ops = {
	.name = "rumpdisk",
	.io_priv = sizeof(struct disk_io),
	.list = disk_list,
	.lookup = disk_lookup,
	.open = disk_open,
	.close = disk_close,
	.buf_alloc = disk_buf_alloc,
	.buf_free = disk_buf_free,
	.submit = disk_submit,
	.poll_enter = disk_poll_enter,
	.poll = disk_poll,
	.poll_leave = disk_poll_leave,
	.destroy = disk_destroy,
};

/* Connects, waiting up to the reconnect timeout for rumpdisk to start. */
static int
connect_service(struct disk_backend *db)
{
	struct rump_client_opts o = {
		.version = RUMP_CLIENT_OPTS_VERSION,
		.service_kind = RUMP_SERVICE_DISK,
		.client_name = "rumpnbd",
		.sq_entries = DISK_SQ_ENTRIES,
		.buf_size = DISK_AREA_SIZE,
	};
	struct timespec delay = { .tv_nsec = 50 * 1000 * 1000 };
	int waited_ms = 0, err;

	for (;;) {
		err = rump_client_connect(db->service, &o, &db->client);
		if (err != ENOENT && err != ECONNREFUSED)
			return err;
		if (waited_ms == 0)
			nbd_log("waiting for the disk service '%s'",
			        db->service);
		if (waited_ms >= db->reconnect_timeout_ms)
			return err;
		nanosleep(&delay, NULL);
		waited_ms += 50;
	}
}

int
nbd_backend_disk_create(const struct nbd_disk_opts *opts,
                        struct nbd_backend **bp)
{
	struct disk_backend *db;
	int err;

	if (strlen(opts->service) >= sizeof(db->service))
		return ENAMETOOLONG;
	db = calloc(1, sizeof(*db));
	if (db == NULL)
		return ENOMEM;
	strcpy(db->service, opts->service);
	db->reconnect_timeout_ms = opts->reconnect_timeout_ms;
	db->base.ops = &disk_ops;
	db->done_tail = &db->done;
	db->parked_tail = &db->parked;
	pthread_rwlock_init(&db->rw, NULL);
	pthread_mutex_init(&db->dev_lock, NULL);
	pthread_mutex_init(&db->done_lock, NULL);
	pthread_cond_init(&db->progress, NULL);
	pthread_cond_init(&db->unpark, NULL);

	if ((err = connect_service(db)) != 0)
		goto fail;
	if ((err = pthread_create(&db->reaper, NULL, reaper_main, db)) != 0)
		goto fail;
	db->reaper_started = true;
	*bp = &db->base;
	return 0;
fail:
	disk_destroy(&db->base);
	return err;
}
