/*
 * The file system service: checks requests at the edge and runs them one
 * at a time against fs_ext2 (libext2fs is not thread-safe).
 *
 * A request runs on the session thread that read it when the file system
 * is idle: handing it to another thread would cost two context switches
 * per request, as much as the work of most metadata operations.  Only
 * when another request is running is it queued, for the worker thread,
 * which also runs the implicit commits that fall due while all is idle.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "rump/proto_fs.h"
#include "rump/rumpuser.h"

#include "fs_service.h"

/* The largest request body: a header, a name, and a link target or an
 * xattr value. */
#define REQ_MAX (sizeof(struct rump_fs_create_req) + RUMP_FS_NAME_MAX + \
                 RUMP_FS_XATTR_MAX + 64)

struct fs_job {
	struct fs_job *next;
	struct rump_session *s;
	struct fs_sess *ss;
	struct rump_sqe sqe;
};

struct fs_sess {
	atomic_bool ended;
};

struct fs_service {
	struct fs_ext2 *fs;
	uint64_t verifier;
	struct rump_service desc;
	struct rump_fs_mountinfo info;

	struct rumpuser_mtx *mtx;
	struct rumpuser_cv *cv;
	struct fs_job *head, **tailp;   /* FIFO over all sessions */
	unsigned queued;
	bool stopping;
	/* A thread is in the file system; under mtx. */
	bool busy;
	/* When the next implicit commit is due (monotonic ns, UINT64_MAX:
	 * nothing pending), and when the idle worker wakes up by itself. */
	uint64_t tick_due, worker_wakes;
	struct rumpuser_thread *worker;

	/* The busy thread's: requests are copied here out of shared
	 * memory. */
	unsigned char *req;
};

/* ---- running one request ----------------------------------------------- */

/* The checked pieces of a request. */
struct req_view {
	const unsigned char *body;      /* a private copy */
	size_t len;
	void *out;                      /* the shared buffer, for the reply */
	size_t cap;
};

static int
check_name(const char *name, size_t len)
{
	if (len == 0)
		return EINVAL;
	if (len > RUMP_FS_NAME_MAX)
		return ENAMETOOLONG;
	if (memchr(name, '/', len) != NULL || memchr(name, '\0', len) != NULL)
		return EINVAL;
	return 0;
}

/*
 * Copies the request (sqe.len bytes at sqe.buf) out of shared memory:
 * at least hdr bytes, and the reply must fit in the same buffer.
 */
static int
view_request(struct fs_service *svc, struct rump_session *s,
             const struct rump_sqe *sqe, size_t hdr, size_t reply,
             struct req_view *v)
{
	size_t len = sqe->len;

	if (len < hdr || len < reply)
		return EINVAL;
	v->out = rump_session_buf(s, sqe->buf, len);
	if (v->out == NULL)
		return EFAULT;
	v->cap = len;
	/* Only what a request can hold is copied; a longer buffer is room
	 * for the reply. */
	if (len > REQ_MAX)
		len = REQ_MAX;
	memcpy(svc->req, v->out, len);
	v->body = svc->req;
	v->len = len;
	return 0;
}

/* Variable data after the header: [off, off+n) inside the copy. */
static const char *
tail(const struct req_view *v, size_t off, size_t n)
{
	if (off > v->len || n > v->len - off)
		return NULL;
	return (const char *)v->body + off;
}

static void
complete(struct rump_session *s, const struct rump_sqe *sqe, int64_t result,
         uint64_t aux)
{
	rump_session_complete(s, sqe->user_data, result, aux);
}

static void
do_read(struct fs_service *svc, struct rump_session *s,
        const struct rump_sqe *sqe)
{
	struct rump_fh fh = { .ino = sqe->handle, .gen = (uint32_t)sqe->arg[0] };
	size_t got = 0;
	bool eof = false;
	void *buf = NULL;
	int error;

	if (sqe->flags != 0 || sqe->arg[0] > UINT32_MAX || sqe->len >
	    RUMP_FS_IO_MAX) {
		complete(s, sqe, -EINVAL, 0);
		return;
	}
	if (sqe->len > 0 &&
	    (buf = rump_session_buf(s, sqe->buf, sqe->len)) == NULL) {
		complete(s, sqe, -EFAULT, 0);
		return;
	}
	error = fs_ext2_read(svc->fs, &fh, sqe->offset, buf, sqe->len, &got,
	                     &eof);
	complete(s, sqe, error ? -error : (int64_t)got, eof);
}

static void
do_write(struct fs_service *svc, struct rump_session *s,
         const struct rump_sqe *sqe)
{
	struct rump_fh fh = { .ino = sqe->handle, .gen = (uint32_t)sqe->arg[0] };
	const void *buf = NULL;
	int error;

	if ((sqe->flags & ~RUMP_FS_WRITE_STABLE) || sqe->arg[0] > UINT32_MAX ||
	    sqe->len > RUMP_FS_IO_MAX) {
		complete(s, sqe, -EINVAL, svc->verifier);
		return;
	}
	if (sqe->len > 0 &&
	    (buf = rump_session_buf(s, sqe->buf, sqe->len)) == NULL) {
		complete(s, sqe, -EFAULT, svc->verifier);
		return;
	}
	/* Straight from the client's buffer: the bytes are data, nothing
	 * here interprets them, so a client changing them meanwhile only
	 * hurts itself. */
	error = fs_ext2_write(svc->fs, &fh, sqe->offset, buf, sqe->len);
	if (error == 0 && (sqe->flags & RUMP_FS_WRITE_STABLE))
		error = fs_ext2_commit(svc->fs);
	complete(s, sqe, error ? -error : (int64_t)sqe->len, svc->verifier);
}

static struct fs_ext2_create
create_args(const struct rump_fs_create_req *r, enum fs_ext2_kind kind,
            const char *name, const char *target)
{
	return (struct fs_ext2_create){
		.kind = kind, .dir = r->dir, .name = name,
		.name_len = r->name_len, .target = target,
		.target_len = r->target_len, .mode = r->mode, .uid = r->uid,
		.gid = r->gid, .rdev = r->rdev,
		.excl = (r->flags & RUMP_FS_CREATE_EXCL) != 0,
	};
}

/*
 * Every operation but READ and WRITE: returns the CQE result (reply
 * bytes, or -errno) and sets *aux.
 */
static int64_t
run_op(struct fs_service *svc, struct rump_session *s,
       const struct rump_sqe *sqe, uint64_t *aux)
{
	struct fs_ext2 *fs = svc->fs;
	struct req_view v;
	struct rump_fattr attr;
	size_t len = 0;
	const char *name, *name2;
	int error;

	if (sqe->flags != 0)
		return -EINVAL;

	switch (sqe->opcode) {
	case RUMP_FS_OP_COMMIT:
	case RUMP_FS_OP_GETATTR:
	case RUMP_FS_OP_READLINK:
	case RUMP_FS_OP_LISTXATTR: {
		struct rump_fs_req r;
		size_t reply = sqe->opcode == RUMP_FS_OP_GETATTR
		               ? sizeof(attr) : 0;

		if ((error = view_request(svc, s, sqe, sizeof(r), reply,
		                          &v)) != 0)
			return -error;
		memcpy(&r, v.body, sizeof(r));
		if (r.name_len != 0 || r.reserved != 0)
			return -EINVAL;
		switch (sqe->opcode) {
		case RUMP_FS_OP_COMMIT:
			*aux = svc->verifier;
			if (r.fh.ino != 0 &&
			    (error = fs_ext2_getattr(fs, &r.fh, &attr)) != 0)
				return -error;
			error = fs_ext2_commit(fs);
			return error ? -error : 0;
		case RUMP_FS_OP_GETATTR:
			if ((error = fs_ext2_getattr(fs, &r.fh, &attr)) != 0)
				return -error;
			memcpy(v.out, &attr, sizeof(attr));
			return sizeof(attr);
		case RUMP_FS_OP_READLINK:
			error = fs_ext2_readlink(fs, &r.fh, v.out, v.cap, &len);
			break;
		default:
			error = fs_ext2_listxattr(fs, &r.fh, v.out, v.cap, &len);
			break;
		}
		/* Too small a buffer: aux says how large it must be. */
		if (error == ERANGE)
			*aux = len;
		return error ? -error : (int64_t)len;
	}

	case RUMP_FS_OP_LOOKUP:
	case RUMP_FS_OP_UNLINK:
	case RUMP_FS_OP_RMDIR: {
		struct rump_fs_req r;
		size_t reply = sqe->opcode == RUMP_FS_OP_LOOKUP
		               ? sizeof(struct rump_fs_entry_reply) : 0;

		if ((error = view_request(svc, s, sqe, sizeof(r), reply,
		                          &v)) != 0)
			return -error;
		memcpy(&r, v.body, sizeof(r));
		if (r.reserved != 0 ||
		    (name = tail(&v, sizeof(r), r.name_len)) == NULL)
			return -EINVAL;
		if ((error = check_name(name, r.name_len)) != 0)
			return -error;
		if (sqe->opcode == RUMP_FS_OP_UNLINK)
			error = fs_ext2_unlink(fs, &r.fh, name, r.name_len);
		else if (sqe->opcode == RUMP_FS_OP_RMDIR)
			error = fs_ext2_rmdir(fs, &r.fh, name, r.name_len);
		else if ((error = fs_ext2_lookup(fs, &r.fh, name, r.name_len,
		                                 &attr)) == 0)
			memcpy(v.out, &attr, sizeof(attr));
		return error ? -error : (int64_t)reply;
	}

	case RUMP_FS_OP_SETATTR: {
		struct rump_fs_setattr_req r;

		if ((error = view_request(svc, s, sqe, sizeof(r), sizeof(attr),
		                          &v)) != 0)
			return -error;
		memcpy(&r, v.body, sizeof(r));
		if ((error = fs_ext2_setattr(fs, &r, &attr)) != 0)
			return -error;
		memcpy(v.out, &attr, sizeof(attr));
		return sizeof(attr);
	}

	case RUMP_FS_OP_READDIR: {
		struct rump_fs_readdir_req r;

		if ((error = view_request(svc, s, sqe, sizeof(r), 0, &v)) != 0)
			return -error;
		memcpy(&r, v.body, sizeof(r));
		if (r.plus > 1 || r.reserved != 0)
			return -EINVAL;
		/* The entries overwrite the request, which is copied. */
		error = fs_ext2_readdir(fs, &r.dir, r.cookie, r.plus, v.out,
		                        v.cap, &len);
		return error ? -error : (int64_t)len;
	}

	case RUMP_FS_OP_CREATE:
	case RUMP_FS_OP_MKDIR:
	case RUMP_FS_OP_MKNOD:
	case RUMP_FS_OP_SYMLINK: {
		static const enum fs_ext2_kind kinds[] = {
			[RUMP_FS_OP_CREATE] = FS_EXT2_FILE,
			[RUMP_FS_OP_MKDIR] = FS_EXT2_DIR,
			[RUMP_FS_OP_MKNOD] = FS_EXT2_NODE,
			[RUMP_FS_OP_SYMLINK] = FS_EXT2_SYMLINK,
		};
		struct rump_fs_create_req r;
		struct fs_ext2_create c;
		const char *target = NULL;

		if ((error = view_request(svc, s, sqe, sizeof(r), sizeof(attr),
		                          &v)) != 0)
			return -error;
		memcpy(&r, v.body, sizeof(r));
		if ((name = tail(&v, sizeof(r), r.name_len)) == NULL)
			return -EINVAL;
		if ((error = check_name(name, r.name_len)) != 0)
			return -error;
		if (sqe->opcode == RUMP_FS_OP_SYMLINK) {
			if (r.target_len > RUMP_FS_PATH_MAX)
				return -ENAMETOOLONG;
			target = tail(&v, sizeof(r) + r.name_len,
			              r.target_len);
			if (target == NULL)
				return -EINVAL;
		} else if (r.target_len != 0) {
			return -EINVAL;
		}
		if (r.flags & ~RUMP_FS_CREATE_EXCL)
			return -EINVAL;
		c = create_args(&r, kinds[sqe->opcode], name, target);
		if ((error = fs_ext2_create(fs, &c, &attr)) != 0)
			return -error;
		memcpy(v.out, &attr, sizeof(attr));
		return sizeof(attr);
	}

	case RUMP_FS_OP_LINK: {
		struct rump_fs_link_req r;

		if ((error = view_request(svc, s, sqe, sizeof(r), sizeof(attr),
		                          &v)) != 0)
			return -error;
		memcpy(&r, v.body, sizeof(r));
		if (r.reserved != 0 ||
		    (name = tail(&v, sizeof(r), r.name_len)) == NULL)
			return -EINVAL;
		if ((error = check_name(name, r.name_len)) != 0)
			return -error;
		if ((error = fs_ext2_link(fs, &r.fh, &r.dir, name, r.name_len,
		                          &attr)) != 0)
			return -error;
		memcpy(v.out, &attr, sizeof(attr));
		return sizeof(attr);
	}

	case RUMP_FS_OP_RENAME: {
		struct rump_fs_rename_req r;

		if ((error = view_request(svc, s, sqe, sizeof(r), 0, &v)) != 0)
			return -error;
		memcpy(&r, v.body, sizeof(r));
		if (r.reserved != 0 ||
		    (name = tail(&v, sizeof(r), r.from_len)) == NULL ||
		    (name2 = tail(&v, sizeof(r) + r.from_len, r.to_len)) ==
		    NULL)
			return -EINVAL;
		if ((error = check_name(name, r.from_len)) != 0 ||
		    (error = check_name(name2, r.to_len)) != 0)
			return -error;
		error = fs_ext2_rename(fs, &r.from_dir, name, r.from_len,
		                       &r.to_dir, name2, r.to_len, r.flags);
		return error ? -error : 0;
	}

	case RUMP_FS_OP_STATFS: {
		struct rump_fs_statfs st;

		if ((error = view_request(svc, s, sqe, 0, sizeof(st), &v)) != 0)
			return -error;
		fs_ext2_statfs(fs, &st);
		memcpy(v.out, &st, sizeof(st));
		return sizeof(st);
	}

	case RUMP_FS_OP_GETXATTR:
	case RUMP_FS_OP_SETXATTR:
	case RUMP_FS_OP_REMOVEXATTR: {
		struct rump_fs_xattr_req r;
		const char *value = NULL;

		if ((error = view_request(svc, s, sqe, sizeof(r), 0, &v)) != 0)
			return -error;
		memcpy(&r, v.body, sizeof(r));
		if (r.reserved != 0 || r.name_len == 0)
			return -EINVAL;
		if (r.name_len > RUMP_FS_NAME_MAX)
			return -ERANGE;
		if (r.value_len > RUMP_FS_XATTR_MAX)
			return -E2BIG;
		if ((name = tail(&v, sizeof(r), r.name_len)) == NULL)
			return -EINVAL;
		if (sqe->opcode == RUMP_FS_OP_SETXATTR) {
			value = tail(&v, sizeof(r) + r.name_len, r.value_len);
			if (value == NULL)
				return -EINVAL;
			error = fs_ext2_setxattr(fs, &r.fh, name, r.name_len,
			                         value, r.value_len, r.flags);
			return error ? -error : 0;
		}
		if (r.value_len != 0 || r.flags != 0)
			return -EINVAL;
		if (sqe->opcode == RUMP_FS_OP_REMOVEXATTR) {
			error = fs_ext2_removexattr(fs, &r.fh, name,
			                            r.name_len);
			return error ? -error : 0;
		}
		error = fs_ext2_getxattr(fs, &r.fh, name, r.name_len, v.out,
		                         v.cap, &len);
		if (error == ERANGE)
			*aux = len;
		return error ? -error : (int64_t)len;
	}

	case RUMP_FS_OP_FALLOCATE: {
		struct rump_fs_fallocate_req r;

		if ((error = view_request(svc, s, sqe, sizeof(r), 0, &v)) != 0)
			return -error;
		memcpy(&r, v.body, sizeof(r));
		if (r.reserved != 0)
			return -EINVAL;
		error = fs_ext2_fallocate(fs, &r.fh, r.offset, r.len, r.mode);
		return error ? -error : 0;
	}

	default:
		return -EOPNOTSUPP;
	}
}

static void
run_job(struct fs_service *svc, struct fs_job *job)
{
	const struct rump_sqe *sqe = &job->sqe;
	uint64_t aux = 0;
	int64_t result;

	/* Its client is gone: the completion would be dropped anyway. */
	if (atomic_load(&job->ss->ended)) {
		complete(job->s, sqe, -ECANCELED, 0);
		return;
	}
	switch (sqe->opcode) {
	case RUMP_FS_OP_READ:
		do_read(svc, job->s, sqe);
		return;
	case RUMP_FS_OP_WRITE:
		do_write(svc, job->s, sqe);
		return;
	}
	result = run_op(svc, job->s, sqe, &aux);
	complete(job->s, sqe, result, aux);
}

static uint64_t
now_ns(void)
{
	uint64_t ns = 0;

	rumpuser_clock_gettime(RUMPUSER_CLOCK_MONO, &ns);
	return ns;
}

/*
 * Called by the busy thread between two operations, when the state is
 * whole (the only moment an implicit commit may write it): commits if
 * one is due (fs_ext2_tick), and notes when the next one will be.  A
 * failure is only logged here: the next COMMIT reports it to a client.
 */
static uint64_t
tick(struct fs_service *svc)
{
	uint64_t next = UINT64_MAX;
	int error;

	if ((error = fs_ext2_tick(svc->fs, &next)) != 0) {
		rumpuser_log(RUMPUSER_LOG_ERROR, "rumpfs", "implicit commit: "
		             "%s", strerror(error));
		next = FS_EXT2_COMMIT_INTERVAL_NS;
	}
	return next == UINT64_MAX ? UINT64_MAX : now_ns() + next;
}

/* The busy thread is done (mtx held): wakes the worker only if it has
 * something to do sooner than it would wake by itself. */
static void
leave_fs(struct fs_service *svc, uint64_t due)
{
	svc->busy = false;
	svc->tick_due = due;
	if (svc->head != NULL || due < svc->worker_wakes || svc->stopping)
		rumpuser_cv_signal(svc->cv);
}

static void *
worker_main(void *arg)
{
	struct fs_service *svc = arg;
	struct fs_job *job;
	uint64_t now, due;

	rumpuser_mutex_enter(svc->mtx);
	for (;;) {
		if (svc->busy || (svc->head == NULL && !svc->stopping &&
		                  svc->tick_due == UINT64_MAX)) {
			svc->worker_wakes = UINT64_MAX;
			rumpuser_cv_wait(svc->cv, svc->mtx);
			continue;
		}
		if (svc->head != NULL) {
			job = svc->head;
			svc->head = job->next;
			if (svc->head == NULL)
				svc->tailp = &svc->head;
			svc->queued--;
			svc->busy = true;
			rumpuser_mutex_exit(svc->mtx);
			run_job(svc, job);
			free(job);
			due = tick(svc);
			rumpuser_mutex_enter(svc->mtx);
			leave_fs(svc, due);
			continue;
		}
		if (svc->stopping)
			break;
		now = now_ns();
		if (now < svc->tick_due) {
			svc->worker_wakes = svc->tick_due;
			rumpuser_cv_timedwait(svc->cv, svc->mtx,
			                      svc->tick_due - now);
			continue;
		}
		svc->busy = true;
		rumpuser_mutex_exit(svc->mtx);
		due = tick(svc);
		rumpuser_mutex_enter(svc->mtx);
		leave_fs(svc, due);
	}
	rumpuser_mutex_exit(svc->mtx);
	return NULL;
}

/* ---- the service callbacks --------------------------------------------- */

static int
fs_session_open(struct rump_session *s, void **ctxp)
{
	struct fs_sess *ss = calloc(1, sizeof(*ss));

	(void)s;
	if (ss == NULL)
		return ENOMEM;
	atomic_init(&ss->ended, false);
	*ctxp = ss;
	return 0;
}

static void
fs_session_ended(struct rump_session *s, void *ctx)
{
	struct fs_sess *ss = ctx;

	(void)s;
	atomic_store(&ss->ended, true);
}

static void
fs_session_close(struct rump_session *s, void *ctx)
{
	(void)s;
	free(ctx);
}

static int
fs_control(struct rump_session *s, uint16_t type, const void *body,
           size_t len, void *reply, size_t *reply_len)
{
	struct fs_service *svc = rump_session_service_ctx(s);

	(void)body;
	if (type != RUMP_FS_MSG_MOUNTINFO)
		return EOPNOTSUPP;
	if (len != 0 || *reply_len < sizeof(svc->info))
		return EINVAL;
	memcpy(reply, &svc->info, sizeof(svc->info));
	*reply_len = sizeof(svc->info);
	return 0;
}

static void
fs_submit(struct rump_session *s, const struct rump_sqe *sqe)
{
	struct fs_service *svc = rump_session_service_ctx(s);
	struct fs_job *job;
	uint64_t due;

	if (sqe->opcode == 0 || sqe->opcode >= RUMP_FS_OP_MAX) {
		rump_session_complete(s, sqe->user_data, -EOPNOTSUPP, 0);
		return;
	}
	rumpuser_mutex_enter(svc->mtx);
	if (!svc->busy && svc->head == NULL && !svc->stopping) {
		struct fs_job here = {
			.s = s, .ss = rump_session_ctx(s), .sqe = *sqe,
		};

		svc->busy = true;
		rumpuser_mutex_exit(svc->mtx);
		run_job(svc, &here);
		due = tick(svc);
		rumpuser_mutex_enter(svc->mtx);
		leave_fs(svc, due);
		rumpuser_mutex_exit(svc->mtx);
		return;
	}
	rumpuser_mutex_exit(svc->mtx);
	if ((job = malloc(sizeof(*job))) == NULL) {
		rump_session_complete(s, sqe->user_data, -ENOMEM, 0);
		return;
	}
	job->next = NULL;
	job->s = s;
	job->ss = rump_session_ctx(s);
	job->sqe = *sqe;
	rumpuser_mutex_enter(svc->mtx);
	if (svc->queued >= FS_QUEUE_MAX || svc->stopping) {
		rumpuser_mutex_exit(svc->mtx);
		free(job);
		rump_session_complete(s, sqe->user_data, -EAGAIN, 0);
		return;
	}
	*svc->tailp = job;
	svc->tailp = &job->next;
	svc->queued++;
	/* A busy thread wakes the worker as it leaves (leave_fs). */
	if (!svc->busy)
		rumpuser_cv_signal(svc->cv);
	rumpuser_mutex_exit(svc->mtx);
}

int
fs_service_create(struct fs_ext2 *fs, uint64_t verifier,
                  struct fs_service **svcp)
{
	struct fs_service *svc;
	int error;

	if ((svc = calloc(1, sizeof(*svc))) == NULL)
		return ENOMEM;
	svc->fs = fs;
	svc->verifier = verifier;
	fs_ext2_mountinfo(fs, &svc->info);
	svc->info.verifier = verifier;
	svc->head = NULL;
	svc->tailp = &svc->head;
	svc->tick_due = svc->worker_wakes = UINT64_MAX;
	if ((svc->req = malloc(REQ_MAX)) == NULL) {
		error = ENOMEM;
		goto fail;
	}
	if ((error = rumpuser_mutex_init(&svc->mtx)) != 0)
		goto fail;
	if ((error = rumpuser_cv_init(&svc->cv)) != 0)
		goto fail;
	svc->desc = (struct rump_service){
		.version = RUMP_SERVICE_VERSION,
		.kind = RUMP_SERVICE_FS,
		.name = "rumpfs",
		.ctx = svc,
		.session_open = fs_session_open,
		.session_close = fs_session_close,
		.session_ended = fs_session_ended,
		.control = fs_control,
		.submit = fs_submit,
	};
	error = rumpuser_thread_create(worker_main, svc, "rumpfs-worker",
	                               &svc->worker);
	if (error)
		goto fail;
	*svcp = svc;
	return 0;

fail:
	if (svc->cv != NULL)
		rumpuser_cv_destroy(svc->cv);
	if (svc->mtx != NULL)
		rumpuser_mutex_destroy(svc->mtx);
	free(svc->req);
	free(svc);
	return error;
}

const struct rump_service *
fs_service_desc(const struct fs_service *svc)
{
	return &svc->desc;
}

void
fs_service_destroy(struct fs_service *svc)
{
	if (svc == NULL)
		return;
	rumpuser_mutex_enter(svc->mtx);
	svc->stopping = true;
	rumpuser_cv_broadcast(svc->cv);
	rumpuser_mutex_exit(svc->mtx);
	rumpuser_thread_join(svc->worker, NULL);
	rumpuser_cv_destroy(svc->cv);
	rumpuser_mutex_destroy(svc->mtx);
	free(svc->req);
	free(svc);
}
