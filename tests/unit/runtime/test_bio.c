/*
 * Block I/O hypercalls: the io_uring engine and the synchronous path, on a
 * temporary file in $TMPDIR (or /tmp).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/loop.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "rump/rumpuser.h"

#define NREQ 64
#define SLOT 16384 /* each request's region in the file */

/* Completion bookkeeping shared with the engine's thread. */
struct waiter {
	pthread_mutex_t lock;
	pthread_cond_t cv;
	unsigned done;
	pthread_t cq_thread;
	bool other_thread; /* a callback ran on a thread other than ours */
};

struct req {
	struct waiter *w;
	int64_t result;
	unsigned calls;
};

static void
waiter_init(struct waiter *w)
{
	memset(w, 0, sizeof(*w));
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cv, NULL);
}

static void
waiter_fini(struct waiter *w)
{
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->lock);
}

static void
req_done(void *arg, int64_t result)
{
	struct req *r = arg;
	struct waiter *w = r->w;

	pthread_mutex_lock(&w->lock);
	r->result = result;
	r->calls++;
	w->done++;
	w->cq_thread = pthread_self();
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->lock);
}

static void
waiter_wait(struct waiter *w, unsigned n)
{
	pthread_mutex_lock(&w->lock);
	while (w->done < n)
		pthread_cond_wait(&w->cv, &w->lock);
	pthread_mutex_unlock(&w->lock);
}

/* A fresh temporary file, already unlinked: it vanishes with the fd. */
static int
temp_fd(void)
{
	const char *dir = getenv("TMPDIR");
	char path[4096];
	int fd;

	snprintf(path, sizeof(path), "%s/rt-bio-XXXXXX",
	         dir != NULL && *dir != '\0' ? dir : "/tmp");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(unlink(path), 0);
	return fd;
}

static unsigned char
pattern(unsigned req, size_t k)
{
	return (unsigned char)(req * 31u + k * 7u + 1u);
}

static size_t
req_len(unsigned i)
{
	return 1000 + (size_t)i * 211; /* all below SLOT, none aligned */
}

static uint64_t
req_off(unsigned i)
{
	return (uint64_t)i * SLOT + (i % 7) * 13;
}

static int64_t
one_async(struct rumpuser_bio *bio, int fd, enum rumpuser_bio_op op,
          void *data, size_t len, uint64_t off)
{
	struct waiter w;
	struct req r = { .w = &w };

	waiter_init(&w);
	assert_int_equal(rumpuser_bio_submit(bio, fd, op, data, len, off, 0,
	                                     req_done, &r), 0);
	waiter_wait(&w, 1);
	assert_int_equal(r.calls, 1);
	waiter_fini(&w);
	return r.result;
}

/* Many writes in flight at various offsets, read back async, verified. */
static void
test_async_write_read(void **state)
{
	struct rumpuser_bio *bio;
	static unsigned char wbuf[NREQ][SLOT], rbuf[NREQ][SLOT];
	struct req reqs[NREQ];
	struct waiter w;
	unsigned i;
	size_t k;
	int fd = temp_fd();

	(void)state;
	/* Depth 16 with 64 requests: the SQ fills and slots run out, so
	 * submits must flush and wait rather than fail. */
	assert_int_equal(rumpuser_bio_create(16, "test-bio", &bio), 0);

	waiter_init(&w);
	for (i = 0; i < NREQ; i++) {
		for (k = 0; k < req_len(i); k++)
			wbuf[i][k] = pattern(i, k);
		reqs[i] = (struct req){ .w = &w };
		/* Every other request is held back with MORE. */
		assert_int_equal(rumpuser_bio_submit(bio, fd,
		    RUMPUSER_BIO_WRITE, wbuf[i], req_len(i), req_off(i),
		    i % 2 == 0 ? RUMPUSER_BIO_MORE : 0, req_done, &reqs[i]),
		    0);
	}
	waiter_wait(&w, NREQ);
	assert_false(pthread_equal(w.cq_thread, pthread_self()));
	for (i = 0; i < NREQ; i++) {
		assert_int_equal(reqs[i].calls, 1);
		assert_int_equal(reqs[i].result, (int64_t)req_len(i));
	}

	/* What landed on the file, checked without the engine. */
	for (i = 0; i < NREQ; i++) {
		memset(rbuf[i], 0, SLOT);
		assert_int_equal(pread(fd, rbuf[i], req_len(i),
		                       (off_t)req_off(i)),
		                 (ssize_t)req_len(i));
		assert_memory_equal(rbuf[i], wbuf[i], req_len(i));
	}

	waiter_fini(&w);
	waiter_init(&w);
	for (i = 0; i < NREQ; i++) {
		memset(rbuf[i], 0, SLOT);
		reqs[i] = (struct req){ .w = &w };
		assert_int_equal(rumpuser_bio_submit(bio, fd,
		    RUMPUSER_BIO_READ, rbuf[i], req_len(i), req_off(i),
		    i + 1 < NREQ ? RUMPUSER_BIO_MORE : 0, req_done, &reqs[i]),
		    0);
	}
	waiter_wait(&w, NREQ);
	for (i = 0; i < NREQ; i++) {
		assert_int_equal(reqs[i].result, (int64_t)req_len(i));
		assert_memory_equal(rbuf[i], wbuf[i], req_len(i));
	}
	waiter_fini(&w);

	assert_int_equal(one_async(bio, fd, RUMPUSER_BIO_FSYNC, NULL, 0, 0), 0);
	rumpuser_bio_destroy(bio);
	close(fd);
}

static void
fill(int fd, unsigned char byte, size_t len)
{
	unsigned char *buf = malloc(len);

	assert_non_null(buf);
	memset(buf, byte, len);
	assert_int_equal(pwrite(fd, buf, len, 0), (ssize_t)len);
	free(buf);
}

/* [0, len) must read back as byte except [zoff, zoff + zlen) as zero. */
static void
expect_zeroed(int fd, unsigned char byte, size_t len, size_t zoff,
              size_t zlen)
{
	unsigned char *buf = malloc(len);
	size_t k;

	assert_non_null(buf);
	assert_int_equal(pread(fd, buf, len, 0), (ssize_t)len);
	for (k = 0; k < len; k++) {
		unsigned char want = k >= zoff && k < zoff + zlen ? 0 : byte;
		if (buf[k] != want)
			fail_msg("byte %zu is %#x, want %#x", k, buf[k], want);
	}
	free(buf);
}

static void
check_range_op(bool async, enum rumpuser_bio_op op)
{
	struct rumpuser_bio *bio = NULL;
	struct stat st;
	int64_t res;
	int fd = temp_fd();

	fill(fd, 0xaa, 65536);
	if (async) {
		assert_int_equal(rumpuser_bio_create(8, "test-range", &bio), 0);
		res = one_async(bio, fd, op, NULL, 16384, 8192);
		rumpuser_bio_destroy(bio);
	} else {
		assert_int_equal(rumpuser_bio_sync(fd, op, NULL, 16384, 8192,
		                                   &res), 0);
	}
	if (res == -EOPNOTSUPP) {
		close(fd);
		skip(); /* the file system of $TMPDIR cannot do this */
	}
	assert_int_equal(res, 0);
	expect_zeroed(fd, 0xaa, 65536, 8192, 16384);
	/* KEEP_SIZE: the file did not change length. */
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(st.st_size, 65536);
	close(fd);
}

static void
test_async_discard(void **state)
{
	(void)state;
	check_range_op(true, RUMPUSER_BIO_DISCARD);
}

static void
test_async_write_zeroes(void **state)
{
	(void)state;
	check_range_op(true, RUMPUSER_BIO_WRITE_ZEROES);
}

static void
test_sync_discard(void **state)
{
	(void)state;
	check_range_op(false, RUMPUSER_BIO_DISCARD);
}

static void
test_sync_write_zeroes(void **state)
{
	(void)state;
	check_range_op(false, RUMPUSER_BIO_WRITE_ZEROES);
}

static void
test_sync_rw(void **state)
{
	unsigned char *wbuf, *rbuf;
	size_t len = 3 * 1024 * 1024 + 17, k;
	int64_t res;
	int fd = temp_fd();

	(void)state;
	wbuf = malloc(len);
	rbuf = malloc(len);
	assert_non_null(wbuf);
	assert_non_null(rbuf);
	for (k = 0; k < len; k++)
		wbuf[k] = pattern(5, k);
	assert_int_equal(rumpuser_bio_sync(fd, RUMPUSER_BIO_WRITE, wbuf, len,
	                                   4095, &res), 0);
	assert_int_equal(res, (int64_t)len);
	assert_int_equal(rumpuser_bio_sync(fd, RUMPUSER_BIO_FSYNC, NULL, 0, 0,
	                                   &res), 0);
	assert_int_equal(res, 0);
	memset(rbuf, 0, len);
	assert_int_equal(rumpuser_bio_sync(fd, RUMPUSER_BIO_READ, rbuf, len,
	                                   4095, &res), 0);
	assert_int_equal(res, (int64_t)len);
	assert_memory_equal(rbuf, wbuf, len);

	/* Short read at EOF: only what is there; at EOF: nothing. */
	assert_int_equal(rumpuser_bio_sync(fd, RUMPUSER_BIO_READ, rbuf, 4096,
	                                   4095 + len - 100, &res), 0);
	assert_int_equal(res, 100);
	assert_memory_equal(rbuf, wbuf + len - 100, 100);
	assert_int_equal(rumpuser_bio_sync(fd, RUMPUSER_BIO_READ, rbuf, 4096,
	                                   4095 + len, &res), 0);
	assert_int_equal(res, 0);
	free(wbuf);
	free(rbuf);
	close(fd);
}

static void
test_async_short_read(void **state)
{
	struct rumpuser_bio *bio;
	unsigned char buf[4096];
	int fd = temp_fd();

	(void)state;
	fill(fd, 0x5c, 10000);
	assert_int_equal(rumpuser_bio_create(4, "test-short", &bio), 0);
	memset(buf, 0, sizeof(buf));
	assert_int_equal(one_async(bio, fd, RUMPUSER_BIO_READ, buf,
	                           sizeof(buf), 9000), 1000);
	assert_int_equal(buf[999], 0x5c);
	assert_int_equal(buf[1000], 0);
	assert_int_equal(one_async(bio, fd, RUMPUSER_BIO_READ, buf,
	                           sizeof(buf), 10000), 0);
	rumpuser_bio_destroy(bio);
	close(fd);
}

static void
test_errors(void **state)
{
	struct rumpuser_bio *bio;
	unsigned char buf[512];
	int64_t res;
	int fd = temp_fd(), rofd, closed;
	char path[64];

	(void)state;
	assert_int_equal(rumpuser_bio_create(0, "x", &bio), EINVAL);
	assert_int_equal(rumpuser_bio_create(4, "test-err", &bio), 0);
	/* Refused at submit: done is never called. */
	assert_int_equal(rumpuser_bio_submit(bio, -1, RUMPUSER_BIO_READ, buf,
	    sizeof(buf), 0, 0, req_done, NULL), EBADF);
	assert_int_equal(rumpuser_bio_submit(bio, fd, (enum rumpuser_bio_op)99,
	    buf, sizeof(buf), 0, 0, req_done, NULL), EINVAL);
	assert_int_equal(rumpuser_bio_submit(bio, fd, RUMPUSER_BIO_READ, NULL,
	    sizeof(buf), 0, 0, req_done, NULL), EINVAL);
	assert_int_equal(rumpuser_bio_submit(bio, fd, RUMPUSER_BIO_READ, buf,
	    sizeof(buf), UINT64_MAX - 10, 0, req_done, NULL), EINVAL);
	assert_int_equal(rumpuser_bio_submit(bio, fd, RUMPUSER_BIO_READ, buf,
	    sizeof(buf), 0, 0x80, req_done, NULL), EINVAL);

	/* A descriptor that is no longer open: the host says so in the
	 * result. */
	closed = dup(fd);
	assert_true(closed >= 0);
	close(closed);
	assert_int_equal(one_async(bio, closed, RUMPUSER_BIO_READ, buf,
	                           sizeof(buf), 0), -EBADF);
	assert_int_equal(rumpuser_bio_sync(closed, RUMPUSER_BIO_FSYNC, NULL, 0,
	                                   0, &res), 0);
	assert_int_equal(res, -EBADF);
	/* Writing through a read-only descriptor (which may well get the
	 * number closed had: everything on closed is done by now). */
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	rofd = open(path, O_RDONLY);
	assert_true(rofd >= 0);
	assert_int_equal(one_async(bio, rofd, RUMPUSER_BIO_WRITE, buf,
	                           sizeof(buf), 0), -EBADF);
	assert_int_equal(rumpuser_bio_sync(rofd, RUMPUSER_BIO_WRITE, buf,
	                                   sizeof(buf), 0, &res), 0);
	assert_int_equal(res, -EBADF);
	assert_int_equal(rumpuser_bio_sync(fd, RUMPUSER_BIO_READ, buf,
	                                   sizeof(buf), 0, NULL), EINVAL);
	close(rofd);
	rumpuser_bio_destroy(bio);
	close(fd);
}

/* destroy returns only after every accepted request's done has run, held
 * back ones (MORE, never kicked) included. */
static void
test_destroy_waits(void **state)
{
	struct rumpuser_bio *bio;
	static unsigned char buf[NREQ][4096];
	struct req reqs[NREQ];
	struct waiter w;
	unsigned i;
	int fd = temp_fd();

	(void)state;
	waiter_init(&w);
	assert_int_equal(rumpuser_bio_create(128, "test-destroy", &bio), 0);
	for (i = 0; i < NREQ; i++) {
		memset(buf[i], (int)i, sizeof(buf[i]));
		reqs[i] = (struct req){ .w = &w };
		assert_int_equal(rumpuser_bio_submit(bio, fd,
		    RUMPUSER_BIO_WRITE, buf[i], sizeof(buf[i]),
		    (uint64_t)i * 4096, RUMPUSER_BIO_MORE, req_done, &reqs[i]),
		    0);
	}
	rumpuser_bio_destroy(bio);
	/* No waiting here: destroy already did. */
	assert_int_equal(w.done, NREQ);
	for (i = 0; i < NREQ; i++) {
		assert_int_equal(reqs[i].calls, 1);
		assert_int_equal(reqs[i].result, 4096);
	}
	waiter_fini(&w);
	close(fd);
}

/* A done callback that submits the next request (drivers chain like
 * this), on a ring so small that the callback finds no free slot. */
struct chain {
	struct rumpuser_bio *bio;
	int fd;
	unsigned char buf[8][512];
	unsigned submitted, completed, total;
	int64_t bad;
	pthread_mutex_t lock;
	pthread_cond_t cv;
};

static void
chain_done(void *arg, int64_t result)
{
	struct chain *c = arg;
	unsigned i, n;

	pthread_mutex_lock(&c->lock);
	if (result != 512)
		c->bad = result;
	c->completed++;
	/* Each completion submits two more until total: the queue grows
	 * beyond the slots from inside the completion thread. */
	n = 0;
	while (n < 2 && c->submitted < c->total) {
		c->submitted++;
		n++;
	}
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->lock);
	/* No cmocka asserts here: they cannot leave from this thread. */
	for (i = 0; i < n; i++) {
		if (rumpuser_bio_submit(c->bio, c->fd, RUMPUSER_BIO_WRITE,
		    c->buf[i], 512, (uint64_t)i * 512, 0, chain_done, c) != 0) {
			pthread_mutex_lock(&c->lock);
			c->bad = -1;
			c->completed++; /* never coming: do not wait for it */
			pthread_cond_broadcast(&c->cv);
			pthread_mutex_unlock(&c->lock);
		}
	}
}

static void
test_submit_from_callback(void **state)
{
	static struct chain c;

	(void)state;
	memset(&c, 0, sizeof(c));
	pthread_mutex_init(&c.lock, NULL);
	pthread_cond_init(&c.cv, NULL);
	c.fd = temp_fd();
	c.total = 200;
	assert_int_equal(rumpuser_bio_create(1, "test-chain", &c.bio), 0);
	pthread_mutex_lock(&c.lock);
	c.submitted = 1;
	pthread_mutex_unlock(&c.lock);
	assert_int_equal(rumpuser_bio_submit(c.bio, c.fd, RUMPUSER_BIO_WRITE,
	    c.buf[0], 512, 0, 0, chain_done, &c), 0);
	pthread_mutex_lock(&c.lock);
	while (c.completed < c.total)
		pthread_cond_wait(&c.cv, &c.lock);
	pthread_mutex_unlock(&c.lock);
	rumpuser_bio_destroy(c.bio);
	assert_int_equal(c.bad, 0);
	assert_int_equal(c.completed, c.total);
	pthread_cond_destroy(&c.cv);
	pthread_mutex_destroy(&c.lock);
	close(c.fd);
}

/* Several threads submitting on one engine at once. */
struct hammer {
	struct rumpuser_bio *bio;
	int fd;
	unsigned id;
	struct waiter w;
	struct req reqs[256];
	unsigned char buf[256][512];
};

static void *
hammer_thread(void *arg)
{
	struct hammer *h = arg;
	unsigned i;
	int error;

	for (i = 0; i < 256; i++) {
		memset(h->buf[i], (int)(h->id * 64 + i % 64), 512);
		h->reqs[i] = (struct req){ .w = &h->w };
		error = rumpuser_bio_submit(h->bio, h->fd, RUMPUSER_BIO_WRITE,
		    h->buf[i], 512, ((uint64_t)h->id * 256 + i) * 512,
		    i % 3 == 0 ? RUMPUSER_BIO_MORE : 0, req_done, &h->reqs[i]);
		if (error != 0)
			return (void *)1;
	}
	(void)rumpuser_bio_kick(h->bio);
	waiter_wait(&h->w, 256);
	return NULL;
}

static void
test_concurrent_submitters(void **state)
{
	static struct hammer h[4];
	struct rumpuser_bio *bio;
	pthread_t tid[4];
	unsigned char buf[512], want[512];
	void *ret;
	unsigned t, i;
	int fd = temp_fd();

	(void)state;
	assert_int_equal(rumpuser_bio_create(8, "test-hammer", &bio), 0);
	for (t = 0; t < 4; t++) {
		h[t].bio = bio;
		h[t].fd = fd;
		h[t].id = t;
		waiter_init(&h[t].w);
		assert_int_equal(pthread_create(&tid[t], NULL, hammer_thread,
		                                &h[t]), 0);
	}
	for (t = 0; t < 4; t++) {
		assert_int_equal(pthread_join(tid[t], &ret), 0);
		assert_null(ret);
	}
	rumpuser_bio_destroy(bio);
	for (t = 0; t < 4; t++) {
		for (i = 0; i < 256; i++) {
			assert_int_equal(h[t].reqs[i].result, 512);
			assert_int_equal(pread(fd, buf, 512,
			    (off_t)(((uint64_t)t * 256 + i) * 512)), 512);
			memset(want, (int)(t * 64 + i % 64), 512);
			assert_memory_equal(buf, want, 512);
		}
		waiter_fini(&h[t].w);
	}
	close(fd);
}

/* O_DIRECT through the engine, with the alignment getfileinfo reports. */
static void
test_direct(void **state)
{
	const char *dir = getenv("TMPDIR");
	struct rumpuser_fileinfo info;
	struct rumpuser_bio *bio;
	unsigned char *wbuf, *rbuf;
	char path[4096];
	size_t len = 65536;
	int fd, error;

	(void)state;
	snprintf(path, sizeof(path), "%s/rt-direct-%d",
	         dir != NULL && *dir != '\0' ? dir : "/tmp", (int)getpid());
	error = rumpuser_open(path, RUMPUSER_OPEN_RDWR | RUMPUSER_OPEN_CREATE |
	                      RUMPUSER_OPEN_DIRECT, &fd);
	if (error == EINVAL) {
		(void)unlink(path);
		skip(); /* this file system has no direct I/O */
	}
	assert_int_equal(error, 0);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(rumpuser_getfileinfo(fd, &info), 0);
	assert_int_equal(info.type, RUMPUSER_FT_REG);
	assert_true(info.direct_align >= 1);
	assert_int_equal(info.direct_align & (info.direct_align - 1), 0);
	assert_true(info.direct_align <= 4096);

	assert_int_equal(rumpuser_malloc(len, 4096, (void **)&wbuf), 0);
	assert_int_equal(rumpuser_malloc(len, 4096, (void **)&rbuf), 0);
	memset(wbuf, 0x3c, len);
	memset(rbuf, 0, len);
	assert_int_equal(rumpuser_bio_create(8, "test-direct", &bio), 0);
	assert_int_equal(one_async(bio, fd, RUMPUSER_BIO_WRITE, wbuf, len,
	                           4096), (int64_t)len);
	assert_int_equal(one_async(bio, fd, RUMPUSER_BIO_READ, rbuf, len,
	                           4096), (int64_t)len);
	assert_memory_equal(rbuf, wbuf, len);
	/* Misaligned for O_DIRECT: the host's refusal comes back as is. */
	if (info.direct_align > 1)
		assert_int_equal(one_async(bio, fd, RUMPUSER_BIO_READ, rbuf,
		                           len, 1), -EINVAL);
	rumpuser_bio_destroy(bio);
	rumpuser_free(wbuf, len);
	rumpuser_free(rbuf, len);
	close(fd);
}

/*
 * Block devices: a loop device over a temporary file, when we may make one
 * (root, a kernel with loop).  Set up and torn down outside the test body,
 * so a failing assertion does not leave the loop device behind.
 */
struct loopdev {
	int backing, fd, ctl;
	char path[64];
};

static int
loop_setup(void **state)
{
	static struct loopdev ld;
	int n;

	*state = NULL;
	memset(&ld, 0, sizeof(ld));
	ld.backing = ld.fd = ld.ctl = -1;
	if (geteuid() != 0)
		return 0;
	ld.ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
	if (ld.ctl < 0)
		return 0;
	ld.backing = temp_fd();
	if (ftruncate(ld.backing, 8 << 20) != 0)
		goto none;
	n = ioctl(ld.ctl, LOOP_CTL_GET_FREE);
	if (n < 0)
		goto none;
	snprintf(ld.path, sizeof(ld.path), "/dev/loop%d", n);
	ld.fd = open(ld.path, O_RDWR | O_CLOEXEC);
	if (ld.fd < 0)
		goto none;
	if (ioctl(ld.fd, LOOP_SET_FD, ld.backing) != 0) {
		close(ld.fd);
		ld.fd = -1;
		goto none;
	}
	*state = &ld;
	return 0;
none:
	if (ld.backing >= 0)
		close(ld.backing);
	close(ld.ctl);
	return 0;
}

static int
loop_teardown(void **state)
{
	struct loopdev *ld = *state;

	if (ld == NULL)
		return 0;
	(void)ioctl(ld->fd, LOOP_CLR_FD, 0);
	close(ld->fd);
	close(ld->backing);
	close(ld->ctl);
	return 0;
}

static void
test_block_device(void **state)
{
	struct loopdev *ld = *state;
	struct rumpuser_fileinfo info;
	struct rumpuser_bio *bio;
	int64_t res;
	int fd;

	if (ld == NULL)
		skip(); /* no loop device to be had here */
	assert_int_equal(rumpuser_open(ld->path, RUMPUSER_OPEN_RDWR, &fd), 0);
	assert_int_equal(rumpuser_getfileinfo(fd, &info), 0);
	assert_int_equal(info.type, RUMPUSER_FT_BLK);
	assert_int_equal(info.size, 8 << 20);
	assert_true(info.logical_block >= 512);
	assert_true(info.direct_align >= 1);
	assert_false(info.read_only);

	/* Write-zeroes: BLKZEROOUT, on the submitting thread, reported
	 * through the completion thread like everything else. */
	fill(fd, 0xaa, 65536);
	assert_int_equal(rumpuser_bio_create(8, "test-blk", &bio), 0);
	assert_int_equal(one_async(bio, fd, RUMPUSER_BIO_WRITE_ZEROES, NULL,
	                           16384, 8192), 0);
	expect_zeroed(fd, 0xaa, 65536, 8192, 16384);
	/* Discard: BLKDISCARD.  What a discarded range reads back as is the
	 * device's business; that it is accepted is ours. */
	res = one_async(bio, fd, RUMPUSER_BIO_DISCARD, NULL, 4096, 65536);
	assert_true(res == 0 || res == -EOPNOTSUPP);
	/* Misaligned for the device: its refusal is the result. */
	assert_int_equal(one_async(bio, fd, RUMPUSER_BIO_WRITE_ZEROES, NULL,
	                           100, 7), -EINVAL);
	rumpuser_bio_destroy(bio);

	fill(fd, 0x77, 65536);
	assert_int_equal(rumpuser_bio_sync(fd, RUMPUSER_BIO_WRITE_ZEROES, NULL,
	                                   4096, 0, &res), 0);
	assert_int_equal(res, 0);
	expect_zeroed(fd, 0x77, 65536, 0, 4096);
	assert_int_equal(rumpuser_bio_sync(fd, RUMPUSER_BIO_FSYNC, NULL, 0, 0,
	                                   &res), 0);
	assert_int_equal(res, 0);
	assert_int_equal(rumpuser_close(fd), 0);
}

/* Marks, per request, whether its callback ran on the test's thread. */
struct polled {
	pthread_t self;
	unsigned on_self, done;
	int64_t bad;
	pthread_mutex_t lock;
};

static void
polled_done(void *arg, int64_t result)
{
	struct polled *p = arg;

	pthread_mutex_lock(&p->lock);
	if (pthread_equal(pthread_self(), p->self))
		p->on_self++;
	if (result != 4096)
		p->bad = result;
	p->done++;
	pthread_mutex_unlock(&p->lock);
}

static unsigned
polled_count(struct polled *p)
{
	unsigned n;

	pthread_mutex_lock(&p->lock);
	n = p->done;
	pthread_mutex_unlock(&p->lock);
	return n;
}

/* A poller runs the callbacks itself, all of them, and poll counts them. */
static void
test_poll(void **state)
{
	static unsigned char buf[NREQ][4096];
	struct polled p = { .self = pthread_self() };
	struct rumpuser_bio *bio;
	unsigned i, ran = 0;
	int fd = temp_fd();

	(void)state;
	pthread_mutex_init(&p.lock, NULL);
	assert_int_equal(rumpuser_bio_create(128, "test-poll", &bio), 0);
	rumpuser_bio_poll_enter(bio);
	for (i = 0; i < NREQ; i++)
		assert_int_equal(rumpuser_bio_submit(bio, fd,
		    RUMPUSER_BIO_WRITE, buf[i], sizeof(buf[i]),
		    (uint64_t)i * 4096, 0, polled_done, &p), 0);
	while (ran < NREQ)
		ran += rumpuser_bio_poll(bio);
	assert_int_equal(ran, NREQ);
	assert_int_equal(p.done, NREQ);
	assert_int_equal(p.on_self, NREQ);
	assert_int_equal(p.bad, 0);
	assert_int_equal(rumpuser_bio_poll(bio), 0);
	rumpuser_bio_poll_leave(bio);
	rumpuser_bio_destroy(bio);
	pthread_mutex_destroy(&p.lock);
	close(fd);
}

/* A poller that leaves with requests in flight hands them to the
 * completion thread, which must wake up for them. */
static void
test_poll_leave_hands_over(void **state)
{
	static unsigned char buf[NREQ][4096];
	struct polled p = { .self = pthread_self() };
	struct rumpuser_bio *bio;
	unsigned i;
	int fd = temp_fd();

	(void)state;
	pthread_mutex_init(&p.lock, NULL);
	assert_int_equal(rumpuser_bio_create(128, "test-handover", &bio), 0);
	rumpuser_bio_poll_enter(bio);
	for (i = 0; i < NREQ; i++)
		assert_int_equal(rumpuser_bio_submit(bio, fd,
		    RUMPUSER_BIO_WRITE, buf[i], sizeof(buf[i]),
		    (uint64_t)i * 4096, 0, polled_done, &p), 0);
	rumpuser_bio_poll_leave(bio);
	while (polled_count(&p) < NREQ)
		usleep(1000);
	assert_int_equal(p.on_self, 0);
	assert_int_equal(p.bad, 0);
	rumpuser_bio_destroy(bio);
	pthread_mutex_destroy(&p.lock);
	close(fd);
}

/* A poller submitting more than the ring holds, without polling, waits
 * for slots: the parked completion thread must free them. */
static void
test_poll_slot_wait(void **state)
{
	static unsigned char buf[4096];
	struct polled p = { .self = pthread_self() };
	struct rumpuser_bio *bio;
	unsigned i, n = 64;
	int fd = temp_fd();

	(void)state;
	pthread_mutex_init(&p.lock, NULL);
	assert_int_equal(rumpuser_bio_create(2, "test-slots", &bio), 0);
	rumpuser_bio_poll_enter(bio);
	for (i = 0; i < n; i++)
		assert_int_equal(rumpuser_bio_submit(bio, fd,
		    RUMPUSER_BIO_WRITE, buf, sizeof(buf), (uint64_t)i * 4096,
		    0, polled_done, &p), 0);
	while (polled_count(&p) < n)
		(void)rumpuser_bio_poll(bio);
	assert_int_equal(p.bad, 0);
	rumpuser_bio_poll_leave(bio);
	rumpuser_bio_destroy(bio);
	pthread_mutex_destroy(&p.lock);
	close(fd);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_async_write_read),
		cmocka_unit_test(test_async_discard),
		cmocka_unit_test(test_async_write_zeroes),
		cmocka_unit_test(test_sync_discard),
		cmocka_unit_test(test_sync_write_zeroes),
		cmocka_unit_test(test_sync_rw),
		cmocka_unit_test(test_async_short_read),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_destroy_waits),
		cmocka_unit_test(test_submit_from_callback),
		cmocka_unit_test(test_concurrent_submitters),
		cmocka_unit_test(test_poll),
		cmocka_unit_test(test_poll_leave_hands_over),
		cmocka_unit_test(test_poll_slot_wait),
		cmocka_unit_test(test_direct),
		cmocka_unit_test_setup_teardown(test_block_device, loop_setup,
		                                loop_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
