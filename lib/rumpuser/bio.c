/*
 * Block I/O: an io_uring engine and a synchronous path.
 *
 * The engine is one ring per rumpuser_bio.  Any thread may submit (a mutex
 * covers the SQ side: getting, preparing and submitting SQEs).  Completions
 * are reaped by one thread at a time (reap_lock): either the engine's
 * completion thread, which sleeps in io_uring_wait_cqe, or a poller, a
 * thread that spins anyway (a server between requests) and calls
 * rumpuser_bio_poll.  A completion thread woken per request costs a
 * scheduler round trip, far more than the request on a fast disk, so while
 * any poller is active the completion thread is parked on a condition
 * variable instead of the ring, and the kernel's CQE postings wake nobody.
 * It is unparked when the last poller leaves, when a submitter waits for a
 * slot, and at destroy.
 *
 * Each request needs its callback and argument back at completion, more than
 * the 64 bits of user_data, so it takes a slot from an array sized to the
 * CQ.  Capping requests in flight at the CQ size means the CQ never
 * overflows, so no completion ever waits in the kernel's overflow list; a
 * submitter that finds no slot waits for one.  A thread running done
 * callbacks cannot wait for a slot (it may be the one that frees them), so
 * a done callback that submits and finds none takes a request from the heap
 * instead.
 *
 * Discard and write-zeroes on block devices are ioctls io_uring cannot
 * queue: they run on the submitting thread, and their result travels
 * through a NOP so that done is still called by a reaper.
 */
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <sched.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rumpuser_int.h"

/* Linux moves at most this much in one read or write (MAX_RW_COUNT); the
 * CQE's 32-bit result could not say more anyway. */
#define BIO_MAX_RW 0x7ffff000u
/* CQEs reaped per wake-up: one lock round trip frees the whole batch. */
#define BIO_CQE_BATCH 64

struct bio_req {
	rumpuser_bio_done_fn done;
	void *arg;
	int64_t preset;         /* result of work done at submit time */
	bool has_preset;
	bool from_heap;
	struct bio_req *next_free;
};

struct rumpuser_bio {
	struct io_uring ring;
	pthread_mutex_t lock;           /* SQ, and every field below */
	pthread_cond_t slot_freed;
	pthread_cond_t unpark;          /* the completion thread may run */
	struct bio_req *slots;
	unsigned nslots;
	struct bio_req *free_list;
	uint64_t in_flight;             /* accepted, done not yet called */
	unsigned pollers;               /* between poll_enter and leave */
	unsigned slot_waiters;          /* submitters waiting for a slot */
	bool cq_parked;                 /* the completion thread waits on
	                                 * unpark, not on the ring */
	bool closing;
	bool stop_seen;                 /* destroy's NOP was reaped */
	pthread_mutex_t reap_lock;      /* the CQ's consumer side */
	struct rumpuser_thread *cq_thread;
	char name[16];
};

/*
 * The engine whose done callbacks this thread is running, if any.  Per
 * thread, not global: it lets submit tell "called from a done callback"
 * apart.
 */
static _Thread_local struct rumpuser_bio *reaping_for;

static int64_t
neg_result(int negative_errno)
{
	return -(int64_t)ru_neg_error(negative_errno);
}

/*
 * Submits every queued SQE.  Only hard errors of io_uring_enter (a broken
 * ring: EBADF, EFAULT) can stop it, and then the SQEs already handed out
 * could never complete, so that is fatal.  Transient refusals (EAGAIN,
 * EBUSY: the kernel is short of resources or CQ room) are retried after
 * letting the completion thread run, with the lock dropped.
 */
static void
ring_flush_locked(struct rumpuser_bio *bio)
{
	int r;

	while (io_uring_sq_ready(&bio->ring) > 0) {
		r = io_uring_submit(&bio->ring);
		if (r > 0 || r == -EINTR)
			continue;
		if (r < 0 && r != -EAGAIN && r != -EBUSY)
			ru_fatal("io_uring_submit", -r);
		pthread_mutex_unlock(&bio->lock);
		(void)sched_yield();
		pthread_mutex_lock(&bio->lock);
	}
}

/* A full SQ is submitted, never a reason to drop a request. */
static struct io_uring_sqe *
sqe_get_locked(struct rumpuser_bio *bio)
{
	struct io_uring_sqe *sqe;

	while ((sqe = io_uring_get_sqe(&bio->ring)) == NULL)
		ring_flush_locked(bio);
	return sqe;
}

/* Returns a request counted in flight, or NULL with *errorp set. */
static struct bio_req *
req_get_locked(struct rumpuser_bio *bio, int *errorp)
{
	struct bio_req *req;

	for (;;) {
		if (__atomic_load_n(&bio->closing, __ATOMIC_RELAXED)) {
			*errorp = ESHUTDOWN;
			return NULL;
		}
		req = bio->free_list;
		if (req != NULL) {
			bio->free_list = req->next_free;
			req->from_heap = false;
			break;
		}
		if (reaping_for == bio) {
			req = malloc(sizeof(*req));
			if (req == NULL) {
				*errorp = ru_errno();
				return NULL;
			}
			req->from_heap = true;
			break;
		}
		/* Requests held back with RUMPUSER_BIO_MORE may be the very
		 * ones whose completion would free a slot; and a parked
		 * completion thread must reap them, the pollers may be
		 * waiting here too. */
		ring_flush_locked(bio);
		bio->slot_waiters++;
		if (bio->cq_parked)
			pthread_cond_signal(&bio->unpark);
		pthread_cond_wait(&bio->slot_freed, &bio->lock);
		bio->slot_waiters--;
	}
	bio->in_flight++;
	req->has_preset = false;
	req->preset = 0;
	return req;
}

static int
fd_is_blockdev(int fd, bool *isblk)
{
	struct stat st;

	if (fstat(fd, &st) != 0)
		return ru_errno();
	*isblk = S_ISBLK(st.st_mode);
	return 0;
}

/* Discard or write-zeroes on a block device; returns 0 or -errno. */
static int64_t
blk_range_ioctl(int fd, enum rumpuser_bio_op op, uint64_t offset,
                uint64_t len)
{
	uint64_t range[2] = { offset, len };
	unsigned long cmd = op == RUMPUSER_BIO_DISCARD ? BLKDISCARD :
	                    BLKZEROOUT;

	if (ioctl(fd, cmd, range) != 0)
		return -(int64_t)ru_errno();
	return 0;
}

static int
falloc_mode(enum rumpuser_bio_op op)
{
	/* KEEP_SIZE: neither operation may grow the file. */
	if (op == RUMPUSER_BIO_DISCARD)
		return FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
	return FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE;
}

/* Checks shared by both engines: what the host would refuse less clearly. */
static int
check_request(int fd, enum rumpuser_bio_op op, const void *data, size_t len,
              uint64_t offset)
{
	if (fd < 0)
		return EBADF;
	switch (op) {
	case RUMPUSER_BIO_READ:
	case RUMPUSER_BIO_WRITE:
		if (data == NULL && len > 0)
			return EINVAL;
		/* fall through */
	case RUMPUSER_BIO_DISCARD:
	case RUMPUSER_BIO_WRITE_ZEROES:
		/* File offsets are signed 64-bit on the host. */
		if (offset > (uint64_t)INT64_MAX ||
		    len > (uint64_t)INT64_MAX - offset)
			return EINVAL;
		return 0;
	case RUMPUSER_BIO_FSYNC:
		return 0;
	}
	return EINVAL;
}

/*
 * Reaps what the CQ holds and runs the callbacks; returns how many ran.
 * Called with reap_lock held, returns with it released: the callbacks run
 * without it, so another thread may reap meanwhile.
 */
static unsigned
reap_and_unlock(struct rumpuser_bio *bio)
{
	struct io_uring_cqe *cqes[BIO_CQE_BATCH];
	struct {
		rumpuser_bio_done_fn done;
		void *arg;
		int64_t result;
	} batch[BIO_CQE_BATCH];
	struct rumpuser_bio *outer;
	struct bio_req *req, *freed = NULL;
	unsigned n, i, nreq = 0;
	bool stop = false;

	n = io_uring_peek_batch_cqe(&bio->ring, cqes, BIO_CQE_BATCH);
	for (i = 0; i < n; i++) {
		req = io_uring_cqe_get_data(cqes[i]);
		if (req == NULL) { /* the stop NOP of destroy */
			stop = true;
			continue;
		}
		batch[nreq].done = req->done;
		batch[nreq].arg = req->arg;
		if (req->has_preset)
			batch[nreq].result = req->preset;
		else if (cqes[i]->res < 0)
			batch[nreq].result = neg_result(cqes[i]->res);
		else
			batch[nreq].result = cqes[i]->res;
		nreq++;
		if (req->from_heap) {
			free(req);
		} else {
			req->next_free = freed;
			freed = req;
		}
	}
	io_uring_cq_advance(&bio->ring, n);
	pthread_mutex_unlock(&bio->reap_lock);
	if (n == 0)
		return 0;

	/* Slots go back before the callbacks run, so a callback that
	 * submits the next request finds one. */
	pthread_mutex_lock(&bio->lock);
	while (freed != NULL) {
		req = freed;
		freed = req->next_free;
		req->next_free = bio->free_list;
		bio->free_list = req;
	}
	bio->in_flight -= nreq;
	if (stop)
		bio->stop_seen = true;
	if (nreq > 0 && bio->slot_waiters > 0)
		pthread_cond_broadcast(&bio->slot_freed);
	pthread_mutex_unlock(&bio->lock);

	outer = reaping_for;
	reaping_for = bio;
	for (i = 0; i < nreq; i++)
		batch[i].done(batch[i].arg, batch[i].result);
	reaping_for = outer;
	return nreq;
}

/*
 * Whether the completion thread should wait on the ring; parks it while
 * pollers reap.  Sets *exit when destroy's NOP has come and nothing is in
 * flight any more.
 */
static bool
cq_thread_may_wait(struct rumpuser_bio *bio, bool *exit)
{
	pthread_mutex_lock(&bio->lock);
	while (bio->pollers > 0 && bio->slot_waiters == 0 &&
	       !__atomic_load_n(&bio->closing, __ATOMIC_RELAXED)) {
		bio->cq_parked = true;
		pthread_cond_wait(&bio->unpark, &bio->lock);
	}
	bio->cq_parked = false;
	*exit = bio->stop_seen && bio->in_flight == 0;
	pthread_mutex_unlock(&bio->lock);
	return !*exit;
}

static void *
bio_completion_thread(void *arg)
{
	struct rumpuser_bio *bio = arg;
	struct io_uring_cqe *cqe;
	bool exit;
	int r;

	while (cq_thread_may_wait(bio, &exit)) {
		/* Only a wakeup: a poller may take the CQE meanwhile, so
		 * what there is gets reaped under the lock. */
		r = io_uring_wait_cqe(&bio->ring, &cqe);
		if (r < 0 && r != -EINTR && r != -EAGAIN)
			ru_fatal("io_uring_wait_cqe", -r);
		pthread_mutex_lock(&bio->reap_lock);
		(void)reap_and_unlock(bio);
	}
	return NULL;
}

void
rumpuser_bio_poll_enter(struct rumpuser_bio *bio)
{
	pthread_mutex_lock(&bio->lock);
	bio->pollers++;
	pthread_mutex_unlock(&bio->lock);
}

unsigned
rumpuser_bio_poll(struct rumpuser_bio *bio)
{
	/* The common case, nothing finished, costs two loads. */
	if (__atomic_load_n(bio->ring.cq.ktail, __ATOMIC_ACQUIRE) ==
	    __atomic_load_n(bio->ring.cq.khead, __ATOMIC_RELAXED))
		return 0;
	if (pthread_mutex_trylock(&bio->reap_lock) != 0)
		return 0;
	/* After destroy began, its NOP is the completion thread's. */
	if (__atomic_load_n(&bio->closing, __ATOMIC_ACQUIRE)) {
		pthread_mutex_unlock(&bio->reap_lock);
		return 0;
	}
	return reap_and_unlock(bio);
}

void
rumpuser_bio_poll_leave(struct rumpuser_bio *bio)
{
	pthread_mutex_lock(&bio->lock);
	if (bio->pollers == 0)
		ru_fatal("rumpuser_bio_poll_leave without enter", EINVAL);
	if (--bio->pollers == 0 && bio->cq_parked)
		pthread_cond_signal(&bio->unpark);
	pthread_mutex_unlock(&bio->lock);
}

int
rumpuser_bio_create(unsigned depth, const char *name,
                    struct rumpuser_bio **biop)
{
	struct io_uring_params params;
	struct rumpuser_bio *bio;
	unsigned i;
	int error, r;

	if (depth == 0)
		return EINVAL;
	bio = calloc(1, sizeof(*bio));
	if (bio == NULL)
		return ru_errno();
	strncpy(bio->name, name != NULL ? name : "rump-bio",
	        sizeof(bio->name) - 1);

	/*
	 * CLAMP: a depth above the host's limit gets the limit, not EINVAL.
	 * SUBMIT_ALL: one bad SQE must not hold back the rest of a batch.
	 * No SINGLE_ISSUER (nor DEFER_TASKRUN, which needs it): many threads
	 * submit.  No COOP_TASKRUN: a completion would wait for its
	 * submitter to enter the kernel, and even with pollers that do
	 * often, it measured slower through rumpnbd here.
	 */
	memset(&params, 0, sizeof(params));
	params.flags = IORING_SETUP_CLAMP | IORING_SETUP_SUBMIT_ALL;
	r = io_uring_queue_init_params(depth, &bio->ring, &params);
	if (r == -EINVAL) { /* kernels before 5.18 lack SUBMIT_ALL */
		memset(&params, 0, sizeof(params));
		params.flags = IORING_SETUP_CLAMP;
		r = io_uring_queue_init_params(depth, &bio->ring, &params);
	}
	if (r < 0) {
		error = ru_neg_error(r);
		goto fail_free;
	}

	bio->nslots = params.cq_entries;
	bio->slots = calloc(bio->nslots, sizeof(*bio->slots));
	if (bio->slots == NULL) {
		error = ru_errno();
		goto fail_ring;
	}
	for (i = 0; i < bio->nslots; i++) {
		bio->slots[i].next_free = bio->free_list;
		bio->free_list = &bio->slots[i];
	}

	error = pthread_mutex_init(&bio->lock, NULL);
	if (error != 0) {
		error = ru_error(error);
		goto fail_slots;
	}
	error = pthread_mutex_init(&bio->reap_lock, NULL);
	if (error != 0) {
		error = ru_error(error);
		goto fail_mutex;
	}
	error = pthread_cond_init(&bio->slot_freed, NULL);
	if (error != 0) {
		error = ru_error(error);
		goto fail_reap_lock;
	}
	error = pthread_cond_init(&bio->unpark, NULL);
	if (error != 0) {
		error = ru_error(error);
		goto fail_cond;
	}
	error = rumpuser_thread_create(bio_completion_thread, bio, bio->name,
	                               &bio->cq_thread);
	if (error != 0)
		goto fail_unpark;
	*biop = bio;
	return 0;

fail_unpark:
	pthread_cond_destroy(&bio->unpark);
fail_cond:
	pthread_cond_destroy(&bio->slot_freed);
fail_reap_lock:
	pthread_mutex_destroy(&bio->reap_lock);
fail_mutex:
	pthread_mutex_destroy(&bio->lock);
fail_slots:
	free(bio->slots);
fail_ring:
	io_uring_queue_exit(&bio->ring);
fail_free:
	free(bio);
	return error;
}

void
rumpuser_bio_destroy(struct rumpuser_bio *bio)
{
	struct io_uring_sqe *sqe;
	int error;

	if (bio == NULL)
		return;
	if (reaping_for == bio)
		ru_fatal("rumpuser_bio_destroy from a done callback", EDEADLK);

	/*
	 * New requests are refused from here on, and pollers reap no more:
	 * taking reap_lock waits for one that is reaping now, and any later
	 * one sees closing.  The NOP with no request tells the completion
	 * thread, unparked, to leave once nothing is in flight; submitting
	 * it also sends any requests held back with MORE.
	 */
	pthread_mutex_lock(&bio->reap_lock);
	pthread_mutex_lock(&bio->lock);
	__atomic_store_n(&bio->closing, true, __ATOMIC_RELEASE);
	pthread_cond_signal(&bio->unpark);
	pthread_mutex_unlock(&bio->lock);
	pthread_mutex_unlock(&bio->reap_lock);

	pthread_mutex_lock(&bio->lock);
	sqe = sqe_get_locked(bio);
	io_uring_prep_nop(sqe);
	io_uring_sqe_set_data(sqe, NULL);
	ring_flush_locked(bio);
	pthread_cond_broadcast(&bio->slot_freed); /* waiters see closing */
	pthread_mutex_unlock(&bio->lock);

	error = rumpuser_thread_join(bio->cq_thread, NULL);
	if (error != 0)
		ru_fatal("joining the bio completion thread", error);

	io_uring_queue_exit(&bio->ring);
	pthread_cond_destroy(&bio->unpark);
	pthread_cond_destroy(&bio->slot_freed);
	pthread_mutex_destroy(&bio->reap_lock);
	pthread_mutex_destroy(&bio->lock);
	free(bio->slots);
	free(bio);
}

int
rumpuser_bio_submit(struct rumpuser_bio *bio, int fd,
                    enum rumpuser_bio_op op, void *data, size_t len,
                    uint64_t offset, int flags,
                    rumpuser_bio_done_fn done, void *arg)
{
	struct io_uring_sqe *sqe;
	struct bio_req *req;
	int64_t preset = 0;
	bool isblk = false;
	int error;

	if (done == NULL || (flags & ~RUMPUSER_BIO_MORE) != 0)
		return EINVAL;
	error = check_request(fd, op, data, len, offset);
	if (error != 0)
		return error;
	if (op == RUMPUSER_BIO_DISCARD || op == RUMPUSER_BIO_WRITE_ZEROES) {
		error = fd_is_blockdev(fd, &isblk);
		if (error != 0)
			return error;
		if (isblk) /* before the lock: this may take a while */
			preset = blk_range_ioctl(fd, op, offset, len);
	}
	/* A short count is a legal answer; the caller goes on from there. */
	if (len > BIO_MAX_RW)
		len = BIO_MAX_RW;

	pthread_mutex_lock(&bio->lock);
	req = req_get_locked(bio, &error);
	if (req == NULL) {
		pthread_mutex_unlock(&bio->lock);
		return error;
	}
	req->done = done;
	req->arg = arg;
	sqe = sqe_get_locked(bio);
	if (isblk) {
		req->has_preset = true;
		req->preset = preset;
		io_uring_prep_nop(sqe);
	} else {
		switch (op) {
		case RUMPUSER_BIO_READ:
			io_uring_prep_read(sqe, fd, data, (unsigned)len,
			                   offset);
			break;
		case RUMPUSER_BIO_WRITE:
			io_uring_prep_write(sqe, fd, data, (unsigned)len,
			                    offset);
			break;
		case RUMPUSER_BIO_FSYNC:
			io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC);
			break;
		case RUMPUSER_BIO_DISCARD:
		case RUMPUSER_BIO_WRITE_ZEROES:
			io_uring_prep_fallocate(sqe, fd, falloc_mode(op),
			                        (off_t)offset, (off_t)len);
			break;
		}
	}
	io_uring_sqe_set_data(sqe, req);
	if (!(flags & RUMPUSER_BIO_MORE))
		ring_flush_locked(bio);
	pthread_mutex_unlock(&bio->lock);
	return 0;
}

int
rumpuser_bio_kick(struct rumpuser_bio *bio)
{
	pthread_mutex_lock(&bio->lock);
	ring_flush_locked(bio);
	pthread_mutex_unlock(&bio->lock);
	return 0;
}

/* pread/pwrite until len is done, EOF, or an error after nothing moved. */
static int64_t
sync_rw(int fd, bool write, void *data, size_t len, uint64_t offset)
{
	char *p = data;
	size_t done = 0;
	ssize_t n;

	while (done < len) {
		if (write)
			n = pwrite(fd, p + done, len - done,
			           (off_t)(offset + done));
		else
			n = pread(fd, p + done, len - done,
			          (off_t)(offset + done));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			/* Like the async engine: bytes moved win over an
			 * error met later, which the next request meets. */
			if (done > 0)
				break;
			return -(int64_t)ru_errno();
		}
		if (n == 0) /* EOF, or a device that takes no more */
			break;
		done += (size_t)n;
	}
	return (int64_t)done;
}

int
rumpuser_bio_sync(int fd, enum rumpuser_bio_op op, void *data,
                  size_t len, uint64_t offset, int64_t *donep)
{
	bool isblk = false;
	int error;

	if (donep == NULL)
		return EINVAL;
	error = check_request(fd, op, data, len, offset);
	if (error != 0)
		return error;

	switch (op) {
	case RUMPUSER_BIO_READ:
		*donep = sync_rw(fd, false, data, len, offset);
		break;
	case RUMPUSER_BIO_WRITE:
		*donep = sync_rw(fd, true, data, len, offset);
		break;
	case RUMPUSER_BIO_FSYNC:
		*donep = fdatasync(fd) == 0 ? 0 : -(int64_t)ru_errno();
		break;
	case RUMPUSER_BIO_DISCARD:
	case RUMPUSER_BIO_WRITE_ZEROES:
		error = fd_is_blockdev(fd, &isblk);
		if (error != 0)
			*donep = -(int64_t)error;
		else if (isblk)
			*donep = blk_range_ioctl(fd, op, offset, len);
		else if (fallocate(fd, falloc_mode(op), (off_t)offset,
		                   (off_t)len) != 0)
			*donep = -(int64_t)ru_errno();
		else
			*donep = 0;
		break;
	}
	return 0;
}
