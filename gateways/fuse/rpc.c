/*
 * The session with rumpfs, and what makes its restarts invisible.
 *
 * rumpfs is stateless but not synchronous: what it did since the last
 * COMMIT (writes, and also creates, renames, unlinks: its metadata lives
 * in a write-back cache) is gone when it dies.  So the gateway keeps an
 * intent log: every change that succeeded since the last COMMIT, in the
 * order the kernel saw the replies (the kernel serializes conflicting
 * changes: a directory's lock, a page's lock, so that is their order on
 * the server too).  A COMMIT drops what it covers: entries logged before
 * it was sent, under the same write verifier.
 *
 * Every request goes through run(), which holds the gate (read) from
 * submission until the request is done and, for a change, logged.  When
 * rumpfs dies the request completes with -ECONNRESET; the thread lets go
 * of the gate and recovers: the first to get there (the session epoch
 * tells) takes the gate for writing, which waits for every other request
 * to fail out the same way, reconnects (waiting for rumpfs to come back)
 * and, if the verifier changed, replays the log, oldest first, before
 * anything else reaches the new server.  Then every thread re-issues its
 * request.
 *
 * Handles: an object created since the last COMMIT is created again by
 * the replay, and may come back under another handle.  The replay records
 * each such change (a remap); later log entries are sent through the
 * remaps found so far.  Only a pass that reaches the end of the log
 * publishes them (tagged with the pass): it rewrites the log, the node
 * table, and re-issued requests built before it.  A pass cut short by
 * another death leaves no trace, so that every handle the gateway holds
 * always names an object of one and the same world: were the log half
 * rewritten, the next pass would mistake the other half's handles for
 * names of objects they do not name, and lose their changes.
 *
 * The log is bounded (bytes and entries): a change that would overflow it
 * commits first.  Writes keep their shared buffers, so a replayed write
 * copies nothing.
 *
 * Locks, in this order: commit_lock, recover_lock, gate, log_lock,
 * buf_lock; the node table's is a leaf of its own.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rumpfuse.h"

#define SQ_ENTRIES 256u
#define WORK_AREA (48u << 20)   /* shared area beside the log's share */
#define LOG_MAX_ENTRIES 32768u
#define REPLAY_BUF (sizeof(struct rump_fs_xattr_req) + RUMP_FS_NAME_MAX + \
                    RUMP_FS_XATTR_MAX)
#define BUF_WAIT_NS (10 * 1000 * 1000l)

struct log_entry {
	struct log_entry *next;
	uint64_t seq, verifier;
	uint16_t op;
	/* WRITE: the data, in the shared area. */
	struct rump_fh fh;
	uint64_t off;
	void *buf;
	size_t len;
	/* Other changes: the request as sent, and what it made. */
	unsigned char *req;
	size_t req_len;
	struct rump_fh made;
};

struct remap {
	struct rump_fh from, to;
	uint64_t pass;
};

void gw_log(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("rumpfuse: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static bool fh_eq(const struct rump_fh *a, const struct rump_fh *b)
{
	return a->ino == b->ino && a->gen == b->gen;
}

static bool op_changes(uint16_t op)
{
	switch (op) {
	case RUMP_FS_OP_SETATTR: case RUMP_FS_OP_CREATE:
	case RUMP_FS_OP_MKDIR: case RUMP_FS_OP_MKNOD:
	case RUMP_FS_OP_SYMLINK: case RUMP_FS_OP_LINK:
	case RUMP_FS_OP_UNLINK: case RUMP_FS_OP_RMDIR:
	case RUMP_FS_OP_RENAME: case RUMP_FS_OP_SETXATTR:
	case RUMP_FS_OP_REMOVEXATTR: case RUMP_FS_OP_FALLOCATE:
		return true;
	default:
		return false;
	}
}

static bool op_makes(uint16_t op)
{
	return op == RUMP_FS_OP_CREATE || op == RUMP_FS_OP_MKDIR ||
	       op == RUMP_FS_OP_MKNOD || op == RUMP_FS_OP_SYMLINK;
}

/* Where a buffer-form request names handles: every request structure
 * starts with one, LINK and RENAME have a second right after. */
static unsigned req_handles(uint16_t op, size_t len, size_t off[2])
{
	unsigned n = 0;

	if (len >= sizeof(struct rump_fh))
		off[n++] = 0;
	if ((op == RUMP_FS_OP_LINK || op == RUMP_FS_OP_RENAME) &&
	    len >= 2 * sizeof(struct rump_fh))
		off[n++] = sizeof(struct rump_fh);
	return n;
}

/* ---- remaps ----------------------------------------------------------- */

/* The remaps a pass found so far, not yet published. */
struct pending {
	struct remap *v;
	size_t n, cap;
};

static void pending_fh(const struct pending *p, struct rump_fh *fh)
{
	for (size_t i = 0; i < p->n; i++) {
		if (fh_eq(&p->v[i].from, fh)) {
			fh->ino = p->v[i].to.ino;
			fh->gen = p->v[i].to.gen;
			return;
		}
	}
}

static void pending_req(const struct pending *p, uint16_t op,
                        unsigned char *req, size_t len)
{
	struct rump_fh fh;
	size_t off[2];
	unsigned n = req_handles(op, len, off);

	for (unsigned i = 0; i < n; i++) {
		memcpy(&fh, req + off[i], sizeof fh);
		pending_fh(p, &fh);
		memcpy(req + off[i], &fh, sizeof fh);
	}
}

static int pending_add(struct pending *p, const struct rump_fh *from,
                       const struct rump_fh *to)
{
	struct remap *m;

	if (p->n == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 64;

		m = realloc(p->v, cap * sizeof *m);
		if (m == NULL)
			return ENOMEM;
		p->v = m;
		p->cap = cap;
	}
	p->v[p->n++] = (struct remap){ .from = *from, .to = *to };
	return 0;
}

/* Rewrites fh through the remaps of the passes after pass; at most one
 * per pass, since a pass maps names of one world to the next.  Under the
 * gate. */
static void remap_fh(const struct gw *gw, uint64_t pass, struct rump_fh *fh)
{
	uint64_t done = pass;

	for (size_t i = 0; i < gw->nremaps; i++) {
		const struct remap *m = &gw->remaps[i];

		if (m->pass > done && fh_eq(&m->from, fh)) {
			fh->ino = m->to.ino;
			fh->gen = m->to.gen;
			done = m->pass;
		}
	}
}

static void remap_req(const struct gw *gw, uint64_t pass, uint16_t op,
                      unsigned char *req, size_t len)
{
	struct rump_fh fh;
	size_t off[2];
	unsigned n = req_handles(op, len, off);

	for (unsigned i = 0; i < n; i++) {
		memcpy(&fh, req + off[i], sizeof fh);
		remap_fh(gw, pass, &fh);
		memcpy(req + off[i], &fh, sizeof fh);
	}
}

/* Makes room for n more published remaps. */
static int remap_reserve(struct gw *gw, size_t n)
{
	struct remap *m;
	size_t cap = gw->capremaps ? gw->capremaps : 64;

	while (cap - gw->nremaps < n)
		cap *= 2;
	if (cap == gw->capremaps)
		return 0;
	m = realloc(gw->remaps, cap * sizeof *m);
	if (m == NULL)
		return ENOMEM;
	gw->remaps = m;
	gw->capremaps = cap;
	return 0;
}

/*
 * A request meeting ESTALE may have been built from the node table just
 * before a replay published its remaps (the table is read without the
 * gate), so its pass says nothing of its handles.  Takes each handle that
 * a remap renames on to the newest name of its object; false if none.
 */
static bool remap_stale(const struct gw *gw, struct rump_fh *fh)
{
	for (size_t i = gw->nremaps; i-- > 0;) {
		if (fh_eq(&gw->remaps[i].from, fh)) {
			remap_fh(gw, gw->remaps[i].pass - 1, fh);
			return true;
		}
	}
	return false;
}

/* ---- shared buffers --------------------------------------------------- */

static int commit_locked(struct gw *gw);

static bool log_nonempty(struct gw *gw)
{
	bool nonempty;

	pthread_mutex_lock(&gw->log_lock);
	nonempty = gw->log_head != NULL;
	pthread_mutex_unlock(&gw->log_lock);
	return nonempty;
}

static void buf_wait(struct gw *gw)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_nsec += BUF_WAIT_NS;
	if (ts.tv_nsec >= 1000000000l) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000l;
	}
	pthread_mutex_lock(&gw->buf_lock);
	pthread_cond_timedwait(&gw->buf_cond, &gw->buf_lock, &ts);
	pthread_mutex_unlock(&gw->buf_lock);
}

void *gw_buf_alloc(struct gw *gw, size_t len)
{
	void *buf;

	if (len == 0 || len > WORK_AREA)
		return NULL;
	while ((buf = rump_client_buf_alloc(gw->client, len)) == NULL) {
		/* Full: of logged writes (a COMMIT frees them) or of other
		 * requests' buffers (their completion does).  A thread that
		 * is committing already waits for the others. */
		if (log_nonempty(gw) &&
		    pthread_mutex_trylock(&gw->commit_lock) == 0) {
			int err = commit_locked(gw);

			pthread_mutex_unlock(&gw->commit_lock);
			if (err == 0)
				continue;
		}
		buf_wait(gw);
	}
	return buf;
}

void gw_buf_free(struct gw *gw, void *buf)
{
	if (buf == NULL)
		return;
	rump_client_buf_free(gw->client, buf);
	pthread_mutex_lock(&gw->buf_lock);
	pthread_cond_broadcast(&gw->buf_cond);
	pthread_mutex_unlock(&gw->buf_lock);
}

/* ---- the log ---------------------------------------------------------- */

static void entry_free(struct gw *gw, struct log_entry *e)
{
	gw_buf_free(gw, e->buf);
	free(e->req);
	free(e);
}

static size_t entry_bytes(const struct log_entry *e)
{
	return sizeof *e + e->len + e->req_len;
}

/* Appends e; under the gate (read), so that no replay runs meanwhile. */
static void log_append(struct gw *gw, struct log_entry *e)
{
	pthread_mutex_lock(&gw->log_lock);
	e->next = NULL;
	e->seq = ++gw->log_seq;
	if (gw->log_tail != NULL)
		gw->log_tail->next = e;
	else
		gw->log_head = e;
	gw->log_tail = e;
	gw->log_bytes += entry_bytes(e);
	gw->log_count++;
	pthread_mutex_unlock(&gw->log_lock);
}

/* Runs a request straight on the session: only under the gate held for
 * writing (a replay), when nothing else is in flight. */
static int64_t exec_direct(struct gw *gw, uint16_t op, void *buf,
                           size_t len, uint64_t *aux)
{
	struct rump_sqe sqe = {
		.opcode = op,
		.len = (uint32_t)len,
		.buf = rump_client_buf_offset(gw->client, buf),
	};

	return rump_client_exec(gw->client, &sqe, aux);
}

static int replay_write(struct gw *gw, const struct log_entry *e,
                        const struct pending *p)
{
	struct rump_fh fh = e->fh;
	struct rump_sqe sqe = {
		.opcode = RUMP_FS_OP_WRITE,
		.len = (uint32_t)e->len,
		.offset = e->off,
		.buf = rump_client_buf_offset(gw->client, e->buf),
	};
	int64_t r;

	pending_fh(p, &fh);
	sqe.handle = fh.ino;
	sqe.arg[0] = fh.gen;

	r = rump_client_exec(gw->client, &sqe, NULL);
	if (r < 0)
		return (int)-r;
	return (uint64_t)r == e->len ? 0 : EIO;
}

/*
 * The handle an object-making request made after all, when it met
 * EEXIST: the request got that far before the crash (the server wrote
 * back part of its cache).  Looks the name up.
 */
static int replay_lookup(struct gw *gw, const struct log_entry *e,
                         const struct pending *p, void *scratch,
                         struct rump_fh *made)
{
	struct rump_fs_create_req c;
	struct rump_fs_req l = { 0 };
	struct rump_fattr attr;
	int64_t r;

	if (e->req_len < sizeof c)
		return EIO;
	memcpy(&c, e->req, sizeof c);
	if (c.name_len > RUMP_FS_NAME_MAX || e->req_len < sizeof c +
	                                                  c.name_len)
		return EIO;
	l.fh = c.dir;
	pending_fh(p, &l.fh);
	l.name_len = c.name_len;
	memcpy(scratch, &l, sizeof l);
	memcpy((char *)scratch + sizeof l, e->req + sizeof c, c.name_len);
	r = exec_direct(gw, RUMP_FS_OP_LOOKUP, scratch, REPLAY_BUF, NULL);
	if (r < 0)
		return (int)-r;
	if ((size_t)r != sizeof attr)
		return EIO;
	memcpy(&attr, scratch, sizeof attr);
	*made = attr.fh;
	made->reserved = 0;
	return 0;
}

/* Whether err is what a change that already took effect meets again. */
static bool already_done(uint16_t op, int err)
{
	switch (op) {
	case RUMP_FS_OP_UNLINK: case RUMP_FS_OP_RMDIR:
	case RUMP_FS_OP_RENAME:
		return err == ENOENT;
	case RUMP_FS_OP_LINK:
		return err == EEXIST;
	case RUMP_FS_OP_SETXATTR: case RUMP_FS_OP_REMOVEXATTR:
		return err == EEXIST || err == ENODATA;
	default:
		return false;
	}
}

/* Replays a change other than a WRITE; scratch is REPLAY_BUF bytes of
 * the shared area.  What it made under another handle joins p. */
static int replay_change(struct gw *gw, const struct log_entry *e,
                         void *scratch, struct pending *p)
{
	struct rump_fh made;
	int64_t r;
	int err;

	if (e->req_len > REPLAY_BUF)
		return EIO;
	memcpy(scratch, e->req, e->req_len);
	pending_req(p, e->op, scratch, e->req_len);
	r = exec_direct(gw, e->op, scratch, REPLAY_BUF, NULL);
	if (r < 0) {
		err = (int)-r;
		if (op_makes(e->op) && err == EEXIST)
			err = replay_lookup(gw, e, p, scratch, &made);
		else if (already_done(e->op, err))
			return 0;
		if (err != 0)
			return err;
	} else if (op_makes(e->op)) {
		if ((size_t)r < sizeof made)
			return EIO;
		memcpy(&made, scratch, sizeof made);
		made.reserved = 0;
	}
	if (op_makes(e->op) && !fh_eq(&made, &e->made))
		return pending_add(p, &e->made, &made);
	return 0;
}

/*
 * Replays every entry whose verifier is not verifier, oldest first; when
 * the whole log went through, publishes the pass (see the top) and stamps
 * every entry with verifier.  An entry that cannot take effect any more
 * leaves the log, said in the log: a change that was acknowledged and is
 * lost.  The handle that fails (ESTALE) is one that the server no longer
 * knows although the log made it: its file was removed since, durably,
 * by a later change in the log that the server wrote back before it
 * died.  Under the gate held for writing: nothing else is in flight.
 * Returns ECONNRESET if the server died again (the caller reconnects and
 * replays anew, from the same handles).
 */
static int log_replay(struct gw *gw, uint64_t verifier)
{
	struct log_entry **pp, *e;
	struct pending p = { 0 };
	unsigned sent = 0, dropped = 0;
	void *scratch;
	int err = 0;

	while ((scratch = rump_client_buf_alloc(gw->client,
	                                        REPLAY_BUF)) == NULL)
		buf_wait(gw);
	pthread_mutex_lock(&gw->log_lock);
	for (pp = &gw->log_head; (e = *pp) != NULL;) {
		if (e->verifier == verifier) {
			pp = &e->next;
			continue;
		}
		if (e->op == RUMP_FS_OP_WRITE)
			err = replay_write(gw, e, &p);
		else
			err = replay_change(gw, e, scratch, &p);
		if (err == ECONNRESET || err == ENOMEM)
			break;
		if (err != 0) {
			gw_log("replaying operation %u on inode %llu "
			       "failed (%s): its change is lost%s",
			       e->op, (unsigned long long)e->fh.ino,
			       strerror(err), err == ESTALE ?
			       " (the file is gone)" : "");
			*pp = e->next;
			gw->log_bytes -= entry_bytes(e);
			gw->log_count--;
			entry_free(gw, e);
			dropped++;
			err = 0;
			continue;
		}
		sent++;
		pp = &e->next;
	}
	if (err == 0)
		err = remap_reserve(gw, p.n);
	gw->log_tail = NULL;
	for (e = gw->log_head; e != NULL; e = e->next) {
		gw->log_tail = e;
		if (err != 0)
			continue;
		if (e->op == RUMP_FS_OP_WRITE) {
			pending_fh(&p, &e->fh);
		} else {
			pending_req(&p, e->op, e->req, e->req_len);
			pending_fh(&p, &e->fh);
			if (op_makes(e->op))
				pending_fh(&p, &e->made);
		}
		e->verifier = verifier;
	}
	pthread_mutex_unlock(&gw->log_lock);
	rump_client_buf_free(gw->client, scratch);
	if (err == 0) {
		gw->remap_pass++;
		for (size_t i = 0; i < p.n; i++) {
			p.v[i].pass = gw->remap_pass;
			gw->remaps[gw->nremaps++] = p.v[i];
		}
		if (p.n > 0)
			nodes_remap(&gw->nodes, p.v, p.n);
		gw_log("replayed %u uncommitted changes (%u dropped, %zu "
		       "handles changed)", sent, dropped, p.n);
	} else if (err == ECONNRESET) {
		gw_log("replay cut short after %u changes: it starts over",
		       sent);
	} else {
		/* The log can no longer be told apart from the server's
		 * state: better no answers than wrong ones. */
		gw_log("replay failed (%s): every change since the last "
		       "COMMIT is lost; giving up", strerror(err));
		gw->dead = true;
	}
	free(p.v);
	return err;
}

/* ---- recovery --------------------------------------------------------- */

static int fetch_mountinfo(struct gw *gw, struct rump_fs_mountinfo *mi)
{
	size_t len;
	int err;

	err = rump_client_call(gw->client, RUMP_FS_MSG_MOUNTINFO, NULL, 0,
	                       mi, sizeof *mi, &len);
	if (err == 0 && len != sizeof *mi)
		err = EPROTO;
	return err;
}

/*
 * Brings the session back after seen_epoch died.  Returns 0 when a new
 * session is up (perhaps by another thread), or an errno when the service
 * did not come back in time.
 */
static int recover(struct gw *gw, uint64_t seen_epoch)
{
	struct rump_fs_mountinfo mi;
	bool restarted = false;
	int err = 0;

	pthread_mutex_lock(&gw->recover_lock);
	pthread_rwlock_wrlock(&gw->gate);
	if (gw->epoch != seen_epoch)
		goto out;
	gw_log("lost rumpfs; waiting for it to come back");
	for (;;) {
		err = rump_client_reconnect(gw->client,
		                            gw->opts.reconnect_timeout_ms);
		if (err != 0) {
			gw_log("rumpfs did not come back: %s", strerror(err));
			goto out;
		}
		err = fetch_mountinfo(gw, &mi);
		if (err == 0 && !fh_eq(&mi.root, &gw->info.root)) {
			/* Another file system: no handle we hold means
			 * anything there. */
			gw_log("rumpfs came back with another file system");
			gw->dead = true;
			err = ENODEV;
			goto out;
		}
		if (err == 0 && mi.verifier != gw->info.verifier) {
			restarted = true;
			err = log_replay(gw, mi.verifier);
		}
		if (err != ECONNRESET)
			break;
	}
	if (err != 0)
		goto out;
	gw->info = mi;
	gw->epoch++;
	gw_log("rumpfs is back (%s)", restarted ? "restarted" : "same server");
out:
	pthread_rwlock_unlock(&gw->gate);
	pthread_mutex_unlock(&gw->recover_lock);
	return err;
}

/*
 * One ring request, run to completion across restarts.  req (private) is
 * copied to buf before each attempt; a change is logged (entry, allocated
 * beforehand so that logging cannot fail) before the gate is let go.
 */
struct attempt {
	struct rump_sqe sqe;
	uint16_t op;
	unsigned char *req;       /* private; rewritten by remaps */
	size_t req_len;
	void *buf;
	struct log_entry *entry;  /* NULL: not a logged change */
};

static int64_t log_done(struct gw *gw, struct attempt *a, int64_t r,
                        uint64_t aux)
{
	struct log_entry *e = a->entry;

	if (r < 0 || e == NULL)
		return r;
	e->op = a->op;
	e->verifier = gw->info.verifier;
	if (a->op == RUMP_FS_OP_WRITE) {
		/* A short write is a failure the server could not undo:
		 * say so rather than log half of it. */
		if ((uint64_t)r != a->sqe.len)
			return -EIO;
		e->fh = (struct rump_fh){ .ino = a->sqe.handle,
		                          .gen = (uint32_t)a->sqe.arg[0] };
		e->off = a->sqe.offset;
		e->buf = a->buf;
		e->len = a->sqe.len;
		e->verifier = aux;
	} else {
		memcpy(&e->fh, a->req, sizeof e->fh);
		e->req = a->req;
		e->req_len = a->req_len;
		a->req = NULL;
		if (op_makes(a->op)) {
			if ((uint64_t)r < sizeof e->made)
				return -EIO;
			memcpy(&e->made, a->buf, sizeof e->made);
			e->made.reserved = 0;
		}
	}
	log_append(gw, e);
	a->entry = NULL;
	return r;
}

/* See remap_stale(); under the gate. */
static bool attempt_stale(const struct gw *gw, struct attempt *a)
{
	struct rump_fh fh;
	size_t off[2];
	unsigned n;
	bool moved = false;

	if (a->op == RUMP_FS_OP_READ || a->op == RUMP_FS_OP_WRITE) {
		fh = (struct rump_fh){ .ino = a->sqe.handle,
		                       .gen = (uint32_t)a->sqe.arg[0] };
		if (!remap_stale(gw, &fh))
			return false;
		a->sqe.handle = fh.ino;
		a->sqe.arg[0] = fh.gen;
		return true;
	}
	n = req_handles(a->op, a->req_len, off);
	for (unsigned i = 0; i < n; i++) {
		memcpy(&fh, a->req + off[i], sizeof fh);
		if (remap_stale(gw, &fh)) {
			memcpy(a->req + off[i], &fh, sizeof fh);
			moved = true;
		}
	}
	return moved;
}

static int64_t run(struct gw *gw, struct attempt *a, uint64_t *aux,
                   bool *replayed)
{
	uint64_t epoch, pass = 0, x = 0;
	unsigned stale_tries = 0;
	bool again = false;
	int64_t r;
	int err;

	for (;;) {
		pthread_rwlock_rdlock(&gw->gate);
		if (gw->dead) {
			pthread_rwlock_unlock(&gw->gate);
			return -EIO;
		}
		epoch = gw->epoch;
		if (!again) {
			pass = gw->remap_pass;
		} else if (gw->remap_pass != pass) {
			/* Built before a replay: its handles may have
			 * changed names. */
			if (a->op == RUMP_FS_OP_READ ||
			    a->op == RUMP_FS_OP_WRITE) {
				struct rump_fh fh = {
					.ino = a->sqe.handle,
					.gen = (uint32_t)a->sqe.arg[0] };

				remap_fh(gw, pass, &fh);
				a->sqe.handle = fh.ino;
				a->sqe.arg[0] = fh.gen;
			} else {
				remap_req(gw, pass, a->op, a->req,
				          a->req_len);
			}
			pass = gw->remap_pass;
		}
		if (a->req_len > 0)
			memcpy(a->buf, a->req, a->req_len);
		r = rump_client_exec(gw->client, &a->sqe, &x);
		/* Bounded: handles of two worlds may name each other. */
		if (r == -ESTALE && stale_tries++ < 4 &&
		    attempt_stale(gw, a)) {
			pthread_rwlock_unlock(&gw->gate);
			continue;
		}
		if (r != -ECONNRESET) {
			r = log_done(gw, a, r, x);
			pthread_rwlock_unlock(&gw->gate);
			break;
		}
		pthread_rwlock_unlock(&gw->gate);
		err = recover(gw, epoch);
		if (err != 0)
			return -EIO;
		again = true;
		if (replayed != NULL)
			*replayed = true;
	}
	if (aux != NULL)
		*aux = x;
	return r;
}

/* Makes room in the log for one more entry of len bytes. */
static int log_reserve(struct gw *gw, size_t len)
{
	bool full;
	int err = 0;

	pthread_mutex_lock(&gw->log_lock);
	full = gw->log_bytes + len > gw->opts.max_uncommitted ||
	       gw->log_count >= LOG_MAX_ENTRIES;
	pthread_mutex_unlock(&gw->log_lock);
	if (!full)
		return 0;
	pthread_mutex_lock(&gw->commit_lock);
	/* Another thread may have committed while this one waited. */
	pthread_mutex_lock(&gw->log_lock);
	full = gw->log_bytes + len > gw->opts.max_uncommitted ||
	       gw->log_count >= LOG_MAX_ENTRIES;
	pthread_mutex_unlock(&gw->log_lock);
	if (full)
		err = commit_locked(gw);
	pthread_mutex_unlock(&gw->commit_lock);
	return err;
}

int gw_call(struct gw *gw, uint16_t op, const void *req, size_t req_len,
            void *reply, size_t reply_cap, size_t *reply_len,
            uint64_t *aux, bool *replayed)
{
	size_t size = req_len > reply_cap ? req_len : reply_cap;
	struct attempt a = { .op = op, .req_len = req_len };
	int64_t r;
	int err = 0;

	if (replayed != NULL)
		*replayed = false;
	if (reply_len != NULL)
		*reply_len = 0;
	if (size == 0 || size > REPLAY_BUF)
		return EINVAL;
	if (op_changes(op)) {
		if ((err = log_reserve(gw, sizeof *a.entry + req_len)) != 0)
			return err;
		a.entry = calloc(1, sizeof *a.entry);
		if (a.entry == NULL)
			return ENOMEM;
	}
	a.req = malloc(req_len > 0 ? req_len : 1);
	a.buf = gw_buf_alloc(gw, size);
	if (a.req == NULL || a.buf == NULL) {
		err = ENOMEM;
		goto out;
	}
	memcpy(a.req, req, req_len);
	a.sqe = (struct rump_sqe){
		.opcode = op,
		.len = (uint32_t)size,
		.buf = rump_client_buf_offset(gw->client, a.buf),
	};
	r = run(gw, &a, aux, replayed);
	if (r < 0) {
		err = (int)-r;
		goto out;
	}
	if ((uint64_t)r > reply_cap) {
		/* The server claims more than the buffer held. */
		err = EIO;
		goto out;
	}
	if (r > 0)
		memcpy(reply, a.buf, (size_t)r);
	if (reply_len != NULL)
		*reply_len = (size_t)r;
out:
	gw_buf_free(gw, a.buf);
	free(a.req);
	free(a.entry);
	return err;
}

int gw_read(struct gw *gw, const struct rump_fh *fh, uint64_t off,
            void *buf, size_t len, size_t *n)
{
	struct attempt a = { .op = RUMP_FS_OP_READ, .buf = buf };
	int64_t r;

	a.sqe = (struct rump_sqe){
		.opcode = RUMP_FS_OP_READ,
		.len = (uint32_t)len,
		.handle = fh->ino,
		.offset = off,
		.buf = rump_client_buf_offset(gw->client, buf),
		.arg = { fh->gen },
	};
	r = run(gw, &a, NULL, NULL);
	if (r < 0)
		return (int)-r;
	if ((uint64_t)r > len)
		return EIO;
	*n = (size_t)r;
	return 0;
}

int gw_write(struct gw *gw, const struct rump_fh *fh, uint64_t off,
             void *buf, size_t len, bool stable, size_t *n)
{
	struct attempt a = { .op = RUMP_FS_OP_WRITE, .buf = buf };
	int64_t r;
	int err;

	if (!stable) {
		err = log_reserve(gw, sizeof *a.entry + len);
		if (err == 0 && (a.entry = calloc(1, sizeof *a.entry)) == NULL)
			err = ENOMEM;
		if (err != 0) {
			gw_buf_free(gw, buf);
			return err;
		}
	}
	a.sqe = (struct rump_sqe){
		.opcode = RUMP_FS_OP_WRITE,
		.flags = stable ? RUMP_FS_WRITE_STABLE : 0,
		.len = (uint32_t)len,
		.handle = fh->ino,
		.offset = off,
		.buf = rump_client_buf_offset(gw->client, buf),
		.arg = { fh->gen },
	};
	r = run(gw, &a, NULL, NULL);
	if (a.entry != NULL || stable) {
		/* Not logged: a stable or failed write needs it no more. */
		free(a.entry);
		gw_buf_free(gw, buf);
	}
	if (r < 0)
		return (int)-r;
	if ((uint64_t)r > len)
		return EIO;
	*n = (size_t)r;
	return 0;
}

/* ---- commit ----------------------------------------------------------- */

/*
 * Drops the entries up to seq that carry verifier; returns whether some
 * carry another (lost by a restart that went unseen).
 */
static bool log_settle(struct gw *gw, uint64_t seq, uint64_t verifier)
{
	struct log_entry **pp, *e, *freed = NULL;
	bool stale = false;

	pthread_mutex_lock(&gw->log_lock);
	gw->log_tail = NULL;
	for (pp = &gw->log_head; (e = *pp) != NULL;) {
		if (e->seq <= seq) {
			if (e->verifier == verifier) {
				*pp = e->next;
				gw->log_bytes -= entry_bytes(e);
				gw->log_count--;
				e->next = freed;
				freed = e;
				continue;
			}
			stale = true;
		}
		gw->log_tail = e;
		pp = &e->next;
	}
	pthread_mutex_unlock(&gw->log_lock);
	while ((e = freed) != NULL) {
		freed = e->next;
		entry_free(gw, e);
	}
	return stale;
}

/* Under commit_lock. */
static int commit_locked(struct gw *gw)
{
	struct rump_fs_req req = { 0 };  /* inode 0: the whole fs */
	uint64_t seq, verifier;
	int err;

	for (;;) {
		pthread_mutex_lock(&gw->log_lock);
		seq = gw->log_seq;
		pthread_mutex_unlock(&gw->log_lock);
		err = gw_call(gw, RUMP_FS_OP_COMMIT, &req, sizeof req, NULL, 0,
		              NULL, &verifier, NULL);
		if (err != 0 || !log_settle(gw, seq, verifier))
			break;
		pthread_rwlock_wrlock(&gw->gate);
		err = log_replay(gw, verifier);
		pthread_rwlock_unlock(&gw->gate);
		/* A restart in the middle: the next COMMIT sees it. */
		if (err != 0 && err != ECONNRESET)
			break;
	}
	return err;
}

int gw_commit(struct gw *gw)
{
	int err;

	pthread_mutex_lock(&gw->commit_lock);
	err = commit_locked(gw);
	pthread_mutex_unlock(&gw->commit_lock);
	return err;
}

/* ---- set-up ----------------------------------------------------------- */

int gw_open(struct gw *gw, const struct gw_opts *opts)
{
	struct rump_client_opts copts = {
		.version = RUMP_CLIENT_OPTS_VERSION,
		.service_kind = RUMP_SERVICE_FS,
		.client_name = "rumpfuse",
		.sq_entries = SQ_ENTRIES,
		.buf_size = opts->max_uncommitted + WORK_AREA,
	};
	pthread_rwlockattr_t ra;
	int err;

	memset(gw, 0, sizeof *gw);
	gw->opts = *opts;
	err = rump_client_connect(opts->service, &copts, &gw->client);
	if (err != 0)
		return err;
	err = fetch_mountinfo(gw, &gw->info);
	if (err != 0)
		goto fail;
	err = nodes_init(&gw->nodes, &gw->info.root);
	if (err != 0)
		goto fail;
	/* A recovery must not starve behind a stream of new requests. */
	pthread_rwlockattr_init(&ra);
	pthread_rwlockattr_setkind_np(&ra,
	        PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&gw->gate, &ra);
	pthread_rwlockattr_destroy(&ra);
	pthread_mutex_init(&gw->recover_lock, NULL);
	pthread_mutex_init(&gw->buf_lock, NULL);
	pthread_cond_init(&gw->buf_cond, NULL);
	pthread_mutex_init(&gw->log_lock, NULL);
	pthread_mutex_init(&gw->commit_lock, NULL);
	return 0;

fail:
	rump_client_close(gw->client);
	gw->client = NULL;
	return err;
}

void gw_close(struct gw *gw)
{
	struct log_entry *e;

	if (gw->client == NULL)
		return;
	if (gw->log_head != NULL)
		gw_log("%zu changes (%llu bytes) were never committed",
		       gw->log_count, (unsigned long long)gw->log_bytes);
	while ((e = gw->log_head) != NULL) {
		gw->log_head = e->next;
		entry_free(gw, e);
	}
	nodes_fini(&gw->nodes);
	rump_client_close(gw->client);
	gw->client = NULL;
	free(gw->remaps);
	pthread_rwlock_destroy(&gw->gate);
	pthread_mutex_destroy(&gw->recover_lock);
	pthread_mutex_destroy(&gw->buf_lock);
	pthread_cond_destroy(&gw->buf_cond);
	pthread_mutex_destroy(&gw->log_lock);
	pthread_mutex_destroy(&gw->commit_lock);
}
