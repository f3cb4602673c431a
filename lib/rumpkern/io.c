/*
 * I/O requests: checked once here, at the edge, so drivers see only
 * requests that fit the device.
 *
 * What a bad request completes with:
 *  - -EINVAL: unknown op, NULL data with a length, offset or length not a
 *    multiple of the device's block size, or a read past the end;
 *  - -ENOSPC: a write, discard or write-zeroes past the end (there is no
 *    room there, as NBD and block devices say);
 *  - -EROFS: write, discard or write-zeroes on a read-only device;
 *  - -EOPNOTSUPP: a device without a strategy routine.
 * Devices of size 0 have no range to check (NICs and the like).  Requests
 * of length 0 complete at once with 0 without reaching the driver; a flush
 * ignores offset and length.
 */
#include <errno.h>

#include "rk_int.h"

static bool
writes_data(enum rk_io_op op)
{
	return op == RK_IO_WRITE || op == RK_IO_DISCARD ||
	       op == RK_IO_WRITE_ZEROES;
}

/* 0, or the negative errno the request is completed with at once. */
static int64_t
check_io(const struct rk_device *dev, const struct rk_io *io)
{
	switch (io->op) {
	case RK_IO_FLUSH:
		return 0;
	case RK_IO_READ:
	case RK_IO_WRITE:
		if (io->data == NULL && io->len > 0)
			return -EINVAL;
		break;
	case RK_IO_DISCARD:
	case RK_IO_WRITE_ZEROES:
		break;
	default:
		return -EINVAL;
	}
	if (writes_data(io->op) && dev->read_only)
		return -EROFS;
	if (dev->block_size != 0 &&
	    ((io->offset | io->len) & (dev->block_size - 1)) != 0)
		return -EINVAL;
	/* Written so that offset + len cannot overflow. */
	if (dev->size != 0 &&
	    (io->offset > dev->size || io->len > dev->size - io->offset))
		return writes_data(io->op) ? -ENOSPC : -EINVAL;
	return 0;
}

void
rk_io_submit(struct rk_device *dev, struct rk_io *io)
{
	int64_t error;

	io->dev = dev;
	io->result = 0;
	io->start_ns = rk_now_ns();
	atomic_fetch_add_explicit(&dev->stats.in_flight, 1,
	                          memory_order_relaxed);

	error = check_io(dev, io);
	if (error != 0) {
		rk_io_done(io, error);
		return;
	}
	if (io->op != RK_IO_FLUSH && io->len == 0) {
		rk_io_done(io, 0);
		return;
	}
	if (dev->ops->strategy == NULL) {
		rk_io_done(io, -EOPNOTSUPP);
		return;
	}
	dev->ops->strategy(dev, io);
}

void
rk_io_done(struct rk_io *io, int64_t result)
{
	struct rk_device_stats *st = &io->dev->stats;
	uint64_t now = rk_now_ns();

	io->result = result;
	if (result < 0) {
		atomic_fetch_add_explicit(&st->errors, 1,
		                          memory_order_relaxed);
		result = 0; /* no bytes moved */
	}
	switch (io->op) {
	case RK_IO_READ:
		atomic_fetch_add_explicit(&st->reads, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&st->bytes_read, (uint64_t)result,
		                          memory_order_relaxed);
		break;
	case RK_IO_WRITE:
		atomic_fetch_add_explicit(&st->writes, 1,
		                          memory_order_relaxed);
		atomic_fetch_add_explicit(&st->bytes_written, (uint64_t)result,
		                          memory_order_relaxed);
		break;
	case RK_IO_FLUSH:
		atomic_fetch_add_explicit(&st->flushes, 1,
		                          memory_order_relaxed);
		break;
	case RK_IO_DISCARD:
		atomic_fetch_add_explicit(&st->discards, 1,
		                          memory_order_relaxed);
		break;
	case RK_IO_WRITE_ZEROES:
		atomic_fetch_add_explicit(&st->write_zeroes, 1,
		                          memory_order_relaxed);
		break;
	}
	if (now > io->start_ns)
		atomic_fetch_add_explicit(&st->busy_ns, now - io->start_ns,
		                          memory_order_relaxed);
	atomic_fetch_sub_explicit(&st->in_flight, 1, memory_order_relaxed);
	/* Last: after done returns, io may already be reused or freed. */
	if (io->done != NULL)
		io->done(io);
}

void
rk_device_counters(const struct rk_device *dev, struct rk_counters *out)
{
	const struct rk_device_stats *st = &dev->stats;

	out->reads = atomic_load_explicit(&st->reads, memory_order_relaxed);
	out->writes = atomic_load_explicit(&st->writes, memory_order_relaxed);
	out->flushes = atomic_load_explicit(&st->flushes,
	                                    memory_order_relaxed);
	out->discards = atomic_load_explicit(&st->discards,
	                                     memory_order_relaxed);
	out->write_zeroes = atomic_load_explicit(&st->write_zeroes,
	                                         memory_order_relaxed);
	out->bytes_read = atomic_load_explicit(&st->bytes_read,
	                                       memory_order_relaxed);
	out->bytes_written = atomic_load_explicit(&st->bytes_written,
	                                          memory_order_relaxed);
	out->errors = atomic_load_explicit(&st->errors, memory_order_relaxed);
	out->in_flight = atomic_load_explicit(&st->in_flight,
	                                      memory_order_relaxed);
	out->busy_ns = atomic_load_explicit(&st->busy_ns,
	                                    memory_order_relaxed);
}

/* The waiter of rk_io_sync(), on its stack. */
struct io_waiter {
	struct rumpuser_mtx *lock;
	struct rumpuser_cv *cv;
	bool done;
};

static void
io_sync_done(struct rk_io *io)
{
	struct io_waiter *w = io->arg;

	rumpuser_mutex_enter(w->lock);
	w->done = true;
	rumpuser_cv_signal(w->cv);
	rumpuser_mutex_exit(w->lock);
}

int64_t
rk_io_sync(struct rk_device *dev, enum rk_io_op op, void *data, uint64_t len,
           uint64_t offset)
{
	struct io_waiter w = { .done = false };
	struct rk_io io = {
		.op = op, .offset = offset, .len = len, .data = data,
		.done = io_sync_done, .arg = &w,
	};
	int error;

	error = rumpuser_mutex_init(&w.lock);
	if (error != 0)
		return -error;
	error = rumpuser_cv_init(&w.cv);
	if (error != 0) {
		rumpuser_mutex_destroy(w.lock);
		return -error;
	}
	rk_io_submit(dev, &io);
	rumpuser_mutex_enter(w.lock);
	while (!w.done)
		rumpuser_cv_wait(w.cv, w.lock);
	rumpuser_mutex_exit(w.lock);
	rumpuser_cv_destroy(w.cv);
	rumpuser_mutex_destroy(w.lock);
	return io.result;
}
