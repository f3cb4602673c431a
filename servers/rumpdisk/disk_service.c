/*
 * The disk service.
 *
 * Every client value is checked here before it reaches the runtime:
 * handles against the session's table (slot and generation), then the
 * request itself by disk_check_sqe (the mode the handle was opened with
 * against the operation, flags, lengths against DISK_IO_MAX, BLOCK_STATUS
 * ranges), and buffers against the session's shared area.  Offsets,
 * alignment and the device's bounds are then checked by rk_io_submit(),
 * which completes a bad request with an error instead of starting it.
 *
 * Threads: control calls and submissions of one session run on that
 * session's thread, so its handle table needs no lock.  Completions run on
 * whatever thread the driver finishes on and touch only their request.
 * Open counts are shared by all sessions, under ds->lock.
 *
 * Polling: the runtime's block I/O engine completes requests on its own
 * thread, a wakeup per request; while a session's thread polls its ring
 * anyway, it reaps the engine's completions itself (any session's), so a
 * disk read reaches the client without crossing a thread.
 */
#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "disk_service.h"

struct disk_dev {
	struct rk_device *dev;          /* held until the service goes */
	struct rump_disk_info info;
	struct disk_dev *root;          /* the whole disk it lies on */
	uint64_t base;                  /* where it starts in root, bytes */
	int map_fd;                     /* roots: allocation map, or -1 */
	unsigned readers;               /* under ds->lock */
	bool writer;                    /* under ds->lock */
};

struct disk_service {
	struct rump_service desc;
	struct rk_runtime *rt;
	struct rk_pool *reqs;
	struct rumpuser_bio *bio;       /* the runtime's engine, or NULL */
	struct rumpuser_mtx *lock;
	struct rumpuser_cv *released;   /* a claim went: under lock */
	struct disk_dev *devs;
	size_t ndevs, devs_cap;
};

struct disk_handle {
	struct disk_dev *d;             /* NULL: a free slot */
	unsigned mode;                  /* RUMP_DISK_OPEN_* */
	uint32_t gen;                   /* bumped at each close */
};

/* The session's state, made by session_open, freed by session_close. */
struct disk_session {
	struct disk_service *ds;
	struct disk_handle *handles;
	uint32_t nhandles;
	bool polling;                   /* one of ds->bio's pollers */
};

/* One request in flight: a pool object, given back by its completion. */
struct disk_req {
	struct rk_io io;
	struct disk_service *ds;
	struct rump_session *s;
	uint64_t user_data;
};

#define DISK_REQS_PREALLOC 256u

/* ---- devices ------------------------------------------------------------ */

static bool
served_class(const char *class)
{
	return strcmp(class, "disk") == 0 || strcmp(class, "partition") == 0;
}

static struct disk_dev *
find_dev(struct disk_service *ds, const char *name)
{
	for (size_t i = 0; i < ds->ndevs; i++)
		if (strcmp(ds->devs[i].info.name, name) == 0)
			return &ds->devs[i];
	return NULL;
}

static struct disk_dev *
find_by_device(struct disk_service *ds, const struct rk_device *dev)
{
	for (size_t i = 0; i < ds->ndevs; i++)
		if (ds->devs[i].dev == dev)
			return &ds->devs[i];
	return NULL;
}

static void
fill_info(struct disk_dev *d)
{
	struct rump_disk_info *info = &d->info;
	struct rk_device *parent = rk_device_parent(d->dev);
	const struct rk_partinfo *pi = rk_device_partinfo(d->dev);

	memset(info, 0, sizeof(*info));
	/* Device names fit: the runtime keeps them under RUMP_NAME_MAX. */
	snprintf(info->name, sizeof(info->name), "%s", rk_device_name(d->dev));
	if (parent != NULL)
		snprintf(info->parent, sizeof(info->parent), "%s",
		         rk_device_name(parent));
	info->size = rk_device_size(d->dev);
	info->sector_size = rk_device_block_size(d->dev);
	if (rk_device_read_only(d->dev))
		info->flags |= RUMP_DISK_INFO_READ_ONLY;
	if (pi == NULL)
		return;
	info->flags |= RUMP_DISK_INFO_PARTITION;
	info->part_start = pi->start;
	info->part_index = pi->index;
	switch (pi->scheme) {
	case RK_PART_MBR:
		info->scheme = RUMP_DISK_SCHEME_MBR;
		break;
	case RK_PART_GPT:
		info->scheme = RUMP_DISK_SCHEME_GPT;
		break;
	default:
		info->scheme = RUMP_DISK_SCHEME_NONE;
		break;
	}
	info->mbr_type = pi->mbr_type;
	memcpy(info->gpt_type, pi->gpt_type, sizeof(info->gpt_type));
	memcpy(info->gpt_guid, pi->gpt_guid, sizeof(info->gpt_guid));
	static_assert(sizeof(info->label) == sizeof(pi->label), "label");
	memcpy(info->label, pi->label, sizeof(info->label));
	info->label[sizeof(info->label) - 1] = '\0';
}

struct collect {
	struct disk_service *ds;
	size_t count;
};

static int
count_dev(struct rk_device *dev, void *arg)
{
	struct collect *c = arg;

	if (served_class(rk_device_class(dev)))
		c->count++;
	return 0;
}

static int
take_dev(struct rk_device *dev, void *arg)
{
	struct collect *c = arg;
	struct disk_dev *d;

	if (!served_class(rk_device_class(dev)))
		return 0;
	/* A device added since the count: served next start. */
	if (c->ds->ndevs == c->ds->devs_cap)
		return 0;
	d = &c->ds->devs[c->ds->ndevs++];
	rk_device_hold(dev);
	*d = (struct disk_dev){ .dev = dev, .map_fd = -1 };
	fill_info(d);
	return 0;
}

/* Each device's whole disk and its offset there, through its parents. */
static void
resolve_roots(struct disk_service *ds)
{
	for (size_t i = 0; i < ds->ndevs; i++) {
		struct disk_dev *d = &ds->devs[i];
		struct rk_device *dev = d->dev;
		const struct rk_partinfo *pi;
		uint64_t base = 0;

		while ((pi = rk_device_partinfo(dev)) != NULL &&
		       rk_device_parent(dev) != NULL) {
			base += pi->start;
			dev = rk_device_parent(dev);
		}
		d->root = find_by_device(ds, dev);
		d->base = base;
		if (d->root == NULL) { /* a parent of a class not served */
			d->root = d;
			d->base = 0;
		}
	}
}

/* ---- handles ------------------------------------------------------------ */

static uint64_t
handle_value(uint32_t slot, uint32_t gen)
{
	return (uint64_t)gen << 32 | slot;
}

/* The open handle a client names, or NULL. */
static struct disk_handle *
handle_get(struct disk_session *ss, uint64_t value)
{
	uint32_t slot = (uint32_t)value, gen = (uint32_t)(value >> 32);
	struct disk_handle *h;

	if (slot >= ss->nhandles)
		return NULL;
	h = &ss->handles[slot];
	return h->d != NULL && h->gen == gen ? h : NULL;
}

/* A free slot, growing the table; EMFILE at DISK_HANDLES_MAX. */
static int
handle_alloc(struct disk_session *ss, uint32_t *slotp)
{
	struct disk_handle *grown;
	uint32_t cap;
	void *mem;
	int error;

	for (uint32_t i = 0; i < ss->nhandles; i++) {
		if (ss->handles[i].d == NULL) {
			*slotp = i;
			return 0;
		}
	}
	if (ss->nhandles == DISK_HANDLES_MAX)
		return EMFILE;
	cap = ss->nhandles ? ss->nhandles * 2 : 8;
	if (cap > DISK_HANDLES_MAX)
		cap = DISK_HANDLES_MAX;
	if ((error = rumpuser_malloc(cap * sizeof(*grown), 0, &mem)) != 0)
		return error;
	grown = mem;
	if (ss->nhandles > 0) {
		memcpy(grown, ss->handles, ss->nhandles * sizeof(*grown));
		rumpuser_free(ss->handles, ss->nhandles * sizeof(*grown));
	}
	for (uint32_t i = ss->nhandles; i < cap; i++)
		grown[i] = (struct disk_handle){ .gen = 1 };
	*slotp = ss->nhandles;
	ss->handles = grown;
	ss->nhandles = cap;
	return 0;
}

static unsigned
rk_mode(unsigned mode)
{
	return (mode & RUMP_DISK_OPEN_READ ? RK_OPEN_READ : 0) |
	       (mode & RUMP_DISK_OPEN_WRITE ? RK_OPEN_WRITE : 0);
}

/*
 * How long an open waits for a conflicting claim to go.  A client killed
 * and restarted (rumpfs under rumpd) comes back before its old session has
 * ended: that session's claim goes as soon as its requests in flight have
 * completed, and the new writer must not start before them anyway.
 */
#define CLAIM_WAIT_NS (1000ull * 1000 * 1000)

static bool
conflicts(const struct disk_dev *d, unsigned mode)
{
	if (mode & RUMP_DISK_OPEN_WRITE)
		return d->writer || d->readers > 0;
	return d->writer;
}

/* One writer, or any number of readers (a writer that also reads is the
 * writer). */
static int
claim(struct disk_service *ds, struct disk_dev *d, unsigned mode)
{
	uint64_t now, deadline;
	int error = 0;

	rumpuser_mutex_enter(ds->lock);
	if (conflicts(d, mode) &&
	    rumpuser_clock_gettime(RUMPUSER_CLOCK_MONO, &now) == 0) {
		deadline = now + CLAIM_WAIT_NS;
		while (conflicts(d, mode) && now < deadline) {
			rumpuser_cv_timedwait(ds->released, ds->lock,
			                      deadline - now);
			if (rumpuser_clock_gettime(RUMPUSER_CLOCK_MONO,
			                           &now) != 0)
				break;
		}
	}
	if (conflicts(d, mode))
		error = EBUSY;
	else if (mode & RUMP_DISK_OPEN_WRITE)
		d->writer = true;
	else
		d->readers++;
	rumpuser_mutex_exit(ds->lock);
	return error;
}

static void
unclaim(struct disk_service *ds, struct disk_dev *d, unsigned mode)
{
	rumpuser_mutex_enter(ds->lock);
	if (mode & RUMP_DISK_OPEN_WRITE)
		d->writer = false;
	else
		d->readers--;
	rumpuser_cv_broadcast(ds->released);
	rumpuser_mutex_exit(ds->lock);
}

static void
handle_close(struct disk_session *ss, struct disk_handle *h)
{
	rk_device_close(h->d->dev, rk_mode(h->mode));
	unclaim(ss->ds, h->d, h->mode);
	h->d = NULL;
	h->mode = 0;
	/* A stale copy of the old value never names the next open. */
	if (++h->gen == 0)
		h->gen = 1;
}

/* ---- control calls ------------------------------------------------------ */

/* A NUL-terminated name inside a NUL-padded field, or NULL. */
static const char *
field_name(const char name[RUMP_NAME_MAX])
{
	return memchr(name, '\0', RUMP_NAME_MAX) != NULL && name[0] != '\0' ?
	       name : NULL;
}

static int
ctl_list(struct disk_service *ds, size_t len, void *reply,
         size_t *reply_len)
{
	size_t need = ds->ndevs * sizeof(struct rump_disk_info);

	if (len != 0)
		return EINVAL;
	if (need > *reply_len)
		return EMSGSIZE;
	for (size_t i = 0; i < ds->ndevs; i++)
		memcpy((char *)reply + i * sizeof(struct rump_disk_info),
		       &ds->devs[i].info, sizeof(struct rump_disk_info));
	*reply_len = need;
	return 0;
}

static int
ctl_open(struct disk_session *ss, const void *body, size_t len, void *reply,
         size_t *reply_len)
{
	struct disk_service *ds = ss->ds;
	struct rump_disk_open req;
	struct rump_disk_open_reply rep;
	struct disk_handle *h;
	struct disk_dev *d;
	const char *name;
	uint32_t slot;
	int error;

	if (len != sizeof(req) || *reply_len < sizeof(rep))
		return EINVAL;
	memcpy(&req, body, sizeof(req));
	if ((name = field_name(req.name)) == NULL || req.reserved != 0 ||
	    req.mode == 0 ||
	    (req.mode & ~(RUMP_DISK_OPEN_READ | RUMP_DISK_OPEN_WRITE)) != 0)
		return EINVAL;
	if ((d = find_dev(ds, name)) == NULL)
		return ENOENT;
	if ((req.mode & RUMP_DISK_OPEN_WRITE) &&
	    (d->info.flags & RUMP_DISK_INFO_READ_ONLY))
		return EROFS;
	if ((error = handle_alloc(ss, &slot)) != 0)
		return error;
	if ((error = claim(ds, d, req.mode)) != 0)
		return error;
	if ((error = rk_device_open(d->dev, rk_mode(req.mode))) != 0) {
		unclaim(ds, d, req.mode);
		return error;
	}
	h = &ss->handles[slot];
	h->d = d;
	h->mode = req.mode;

	memset(&rep, 0, sizeof(rep));
	rep.handle = handle_value(slot, h->gen);
	rep.info = d->info;
	memcpy(reply, &rep, sizeof(rep));
	*reply_len = sizeof(rep);
	return 0;
}

static int
ctl_close(struct disk_session *ss, const void *body, size_t len,
          size_t *reply_len)
{
	struct disk_handle *h;
	uint64_t value;

	*reply_len = 0;
	if (len != sizeof(value))
		return EINVAL;
	memcpy(&value, body, sizeof(value));
	if ((h = handle_get(ss, value)) == NULL)
		return EBADF;
	handle_close(ss, h);
	return 0;
}

static int
ctl_status(struct disk_service *ds, const void *body, size_t len,
           void *reply, size_t *reply_len)
{
	char field[RUMP_NAME_MAX];
	struct disk_dev *d;
	const char *name;

	if (len != sizeof(field) || *reply_len < sizeof(d->info))
		return EINVAL;
	memcpy(field, body, sizeof(field));
	if ((name = field_name(field)) == NULL)
		return EINVAL;
	if ((d = find_dev(ds, name)) == NULL)
		return ENOENT;
	memcpy(reply, &d->info, sizeof(d->info));
	*reply_len = sizeof(d->info);
	return 0;
}

static int
disk_control(struct rump_session *s, uint16_t type, const void *body,
             size_t len, void *reply, size_t *reply_len)
{
	struct disk_session *ss = rump_session_ctx(s);
	int error;

	/* An open may wait for a claim that requests in flight still hold:
	 * their completions must not depend on this thread meanwhile. */
	if (ss->polling) {
		rumpuser_bio_poll_leave(ss->ds->bio);
		ss->polling = false;
	}
	switch (type) {
	case RUMP_DISK_MSG_LIST:
		error = ctl_list(ss->ds, len, reply, reply_len);
		break;
	case RUMP_DISK_MSG_OPEN:
		error = ctl_open(ss, body, len, reply, reply_len);
		break;
	case RUMP_DISK_MSG_CLOSE:
		return ctl_close(ss, body, len, reply_len);
	case RUMP_DISK_MSG_STATUS:
		error = ctl_status(ss->ds, body, len, reply, reply_len);
		break;
	default:
		error = EOPNOTSUPP;
		break;
	}
	if (error != 0)
		*reply_len = 0;
	return error;
}

/* ---- ring requests ------------------------------------------------------ */

static void
req_done(struct rk_io *io)
{
	struct disk_req *req = io->arg;
	struct disk_service *ds = req->ds;

	rump_session_complete(req->s, req->user_data, io->result, 0);
	rk_pool_put(ds->reqs, req);
}

/*
 * The extent of the backing file at off: whether it is a hole and where
 * it ends (UINT64_MAX: at the end of the file).  A file without a map, or
 * any error, reads as data: claiming a hole that is not one would lose
 * data for a client that skips holes, the other way round costs time only.
 */
static void
extent_at(int fd, uint64_t off, bool *hole, uint64_t *end)
{
	uint64_t found;
	int error;

	*hole = false;
	*end = UINT64_MAX;
	error = rumpuser_seek(fd, RUMPUSER_SEEK_DATA, off, &found);
	if (error == ENXIO) { /* past the last data: a hole to the end */
		*hole = true;
		return;
	}
	if (error != 0)
		return;
	if (found > off) {
		*hole = true;
		*end = found;
		return;
	}
	if (rumpuser_seek(fd, RUMPUSER_SEEK_HOLE, off, &found) == 0 &&
	    found > off)
		*end = found;
}

/*
 * BLOCK_STATUS, checked (see disk_check_sqe): [plan->offset, plan->end) as
 * at most plan->max_extents extents written to out.  Result: the number
 * of extents; aux: the bytes they cover (less than asked when the extents
 * ran out).
 */
static void
block_status(struct rump_session *s, struct disk_dev *d, uint64_t user_data,
             const struct disk_req_plan *plan, struct rump_disk_extent *out)
{
	struct rump_disk_extent ext;
	uint64_t pos = plan->offset, end = plan->end, n = 0;
	int fd = d->root->map_fd;

	while (pos < end && n < plan->max_extents) {
		uint64_t next = UINT64_MAX;
		bool hole = false;

		if (fd >= 0) {
			extent_at(fd, d->base + pos, &hole, &next);
			if (next != UINT64_MAX)
				next -= d->base;
		}
		if (next > end)
			next = end;
		ext = (struct rump_disk_extent){
			.length = next - pos,
			.flags = hole ? RUMP_DISK_EXTENT_HOLE |
			                RUMP_DISK_EXTENT_ZERO : 0,
		};
		memcpy(&out[n++], &ext, sizeof(ext));
		pos = next;
	}
	rump_session_complete(s, user_data, (int64_t)n, pos - plan->offset);
}

static void
disk_submit(struct rump_session *s, const struct rump_sqe *sqe)
{
	struct disk_session *ss = rump_session_ctx(s);
	struct disk_service *ds = ss->ds;
	struct disk_handle *h = handle_get(ss, sqe->handle);
	struct disk_req_plan plan;
	struct disk_req *req;
	void *data = NULL;
	int error;

	if (h == NULL) {
		error = -EBADF;
		goto fail;
	}
	error = disk_check_sqe(sqe, h->mode, h->d->info.size, &plan);
	if (error != 0)
		goto fail;
	if (plan.buf_len > 0 &&
	    (data = rump_session_buf(s, plan.buf, plan.buf_len)) == NULL) {
		error = -EFAULT;
		goto fail;
	}
	if (plan.kind == DISK_REQ_BLOCK_STATUS) {
		block_status(s, h->d, sqe->user_data, &plan, data);
		return;
	}
	if ((req = rk_pool_get(ds->reqs)) == NULL) {
		error = -EAGAIN;
		goto fail;
	}
	req->ds = ds;
	req->s = s;
	req->user_data = sqe->user_data;
	req->io = (struct rk_io){
		.op = plan.op,
		.flags = plan.io_flags,
		.offset = plan.offset,
		.len = plan.len,
		.data = data,
		.done = req_done,
		.arg = req,
	};
	rk_io_submit(h->d->dev, &req->io);
	return;
fail:
	rump_session_complete(s, sqe->user_data, error, 0);
}

/* The server's poll hook: see rumpuser_bio_poll. */
static unsigned
disk_poll(struct rump_session *s, void *sess_ctx, bool sleeping)
{
	struct disk_session *ss = sess_ctx;
	struct rumpuser_bio *bio = ss->ds->bio;
	unsigned n;

	(void)s;
	if (bio == NULL || (sleeping && !ss->polling))
		return 0;
	if (!ss->polling) {
		rumpuser_bio_poll_enter(bio);
		ss->polling = true;
	}
	n = rumpuser_bio_poll(bio);
	if (sleeping) {
		rumpuser_bio_poll_leave(bio);
		ss->polling = false;
	}
	return n;
}

/* ---- sessions ----------------------------------------------------------- */

static int
disk_session_open(struct rump_session *s, void **sess_ctx)
{
	struct disk_service *ds = rump_session_service_ctx(s);
	struct disk_session *ss;
	int error;

	if ((error = rumpuser_malloc(sizeof(*ss), 0, (void **)&ss)) != 0)
		return error;
	*ss = (struct disk_session){ .ds = ds };
	*sess_ctx = ss;
	return 0;
}

/* After the session's last request completed: its handles go. */
static void
disk_session_close(struct rump_session *s, void *sess_ctx)
{
	struct disk_session *ss = sess_ctx;

	(void)s;
	for (uint32_t i = 0; i < ss->nhandles; i++)
		if (ss->handles[i].d != NULL)
			handle_close(ss, &ss->handles[i]);
	if (ss->handles != NULL)
		rumpuser_free(ss->handles,
		              ss->nhandles * sizeof(*ss->handles));
	rumpuser_free(ss, sizeof(*ss));
}

/* ---- the service -------------------------------------------------------- */

int
disk_service_create(struct rk_runtime *rt, struct disk_service **dsp)
{
	struct disk_service *ds;
	struct collect c = { 0 };
	int error;

	if ((error = rumpuser_malloc(sizeof(*ds), 0, (void **)&ds)) != 0)
		return error;
	*ds = (struct disk_service){ .rt = rt };
	if ((error = rumpuser_mutex_init(&ds->lock)) != 0)
		goto fail_free;
	if ((error = rumpuser_cv_init(&ds->released)) != 0)
		goto fail_mutex;
	error = rk_pool_create(rt, "disk-req", sizeof(struct disk_req), 0,
	                       DISK_REQS_PREALLOC, DISK_REQS_MAX, &ds->reqs);
	if (error != 0)
		goto fail_cv;

	c.ds = ds;
	if ((error = rk_device_foreach(rt, count_dev, &c)) != 0)
		goto fail_pool;
	if (c.count > 0) {
		error = rumpuser_malloc(c.count * sizeof(*ds->devs), 0,
		                        (void **)&ds->devs);
		if (error != 0)
			goto fail_pool;
		ds->devs_cap = c.count;
		if ((error = rk_device_foreach(rt, take_dev, &c)) != 0)
			goto fail_devs;
	}
	resolve_roots(ds);
	/* Without the engine (none to be had) completions still come, from
	 * whatever thread the drivers use; only polling is lost. */
	if (rk_runtime_bio(rt, &ds->bio) != 0)
		ds->bio = NULL;

	ds->desc = (struct rump_service){
		.version = RUMP_SERVICE_VERSION,
		.kind = RUMP_SERVICE_DISK,
		.name = "disk",
		.ctx = ds,
		.session_open = disk_session_open,
		.session_close = disk_session_close,
		.control = disk_control,
		.submit = disk_submit,
		.poll = disk_poll,
	};
	*dsp = ds;
	return 0;

fail_devs:
	for (size_t i = 0; i < ds->ndevs; i++)
		rk_device_release(ds->devs[i].dev);
	rumpuser_free(ds->devs, ds->devs_cap * sizeof(*ds->devs));
fail_pool:
	rk_pool_destroy(ds->reqs);
fail_cv:
	rumpuser_cv_destroy(ds->released);
fail_mutex:
	rumpuser_mutex_destroy(ds->lock);
fail_free:
	rumpuser_free(ds, sizeof(*ds));
	return error;
}

int
disk_service_set_map(struct disk_service *ds, const char *disk, int fd)
{
	struct disk_dev *d = find_dev(ds, disk);

	if (d == NULL || d->root != d) {
		(void)rumpuser_close(fd);
		return d == NULL ? ENOENT : EINVAL;
	}
	if (d->map_fd >= 0)
		(void)rumpuser_close(d->map_fd);
	d->map_fd = fd;
	return 0;
}

const struct rump_service *
disk_service_desc(const struct disk_service *ds)
{
	return &ds->desc;
}

void
disk_service_destroy(struct disk_service *ds)
{
	if (ds == NULL)
		return;
	for (size_t i = 0; i < ds->ndevs; i++) {
		if (ds->devs[i].map_fd >= 0)
			(void)rumpuser_close(ds->devs[i].map_fd);
		rk_device_release(ds->devs[i].dev);
	}
	if (ds->devs != NULL)
		rumpuser_free(ds->devs, ds->devs_cap * sizeof(*ds->devs));
	rk_pool_destroy(ds->reqs);
	rumpuser_cv_destroy(ds->released);
	rumpuser_mutex_destroy(ds->lock);
	rumpuser_free(ds, sizeof(*ds));
}
