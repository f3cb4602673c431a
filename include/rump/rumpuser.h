/*
 * rumpuser: the hypercall interface, the only door from a rump process's
 * runtime and components to the host.
 *
 * Rules, after NetBSD's rumpuser(3):
 *  - Everything the runtime needs from the host is here, and only here.  A
 *    port to another host is a new implementation of this header (plus a
 *    new IPC transport), nothing else.
 *  - Every call that can fail returns 0 or a positive errno value.  Errors
 *    are never stored (no errno, no "last error").  lib/rumpuser/errors.c is
 *    the one place host errors are translated.
 *  - The interface is versioned: a runtime asks for RUMPUSER_VERSION in
 *    rumpuser_init() and gets ENOTSUP when the host layer is of another age.
 *  - No call keeps hidden global state that would stop two runtimes living
 *    in one process.
 */
#ifndef RUMP_RUMPUSER_H
#define RUMP_RUMPUSER_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#define RUMPUSER_VERSION 1

int rumpuser_init(int version);

/* ---- memory ----------------------------------------------------------- */

/* alignment 0 means the host's natural alignment; otherwise a power of 2. */
int rumpuser_malloc(size_t len, size_t alignment, void **memp);
void rumpuser_free(void *mem, size_t len);

/* ---- threads ---------------------------------------------------------- */

struct rumpuser_thread;

/* name is shown by the host's tools (at most 15 characters are kept). */
int rumpuser_thread_create(void *(*fn)(void *), void *arg, const char *name,
                           struct rumpuser_thread **threadp);
int rumpuser_thread_join(struct rumpuser_thread *thread, void **retp);

/* ---- locks: mutex, rwlock, condvar ------------------------------------ */

struct rumpuser_mtx;
struct rumpuser_rw;
struct rumpuser_cv;

int rumpuser_mutex_init(struct rumpuser_mtx **mtxp);
void rumpuser_mutex_enter(struct rumpuser_mtx *mtx);
int rumpuser_mutex_tryenter(struct rumpuser_mtx *mtx); /* 0 or EBUSY */
void rumpuser_mutex_exit(struct rumpuser_mtx *mtx);
void rumpuser_mutex_destroy(struct rumpuser_mtx *mtx);

enum rumpuser_rw_mode { RUMPUSER_RW_READER, RUMPUSER_RW_WRITER };
int rumpuser_rw_init(struct rumpuser_rw **rwp);
void rumpuser_rw_enter(struct rumpuser_rw *rw, enum rumpuser_rw_mode mode);
int rumpuser_rw_tryenter(struct rumpuser_rw *rw, enum rumpuser_rw_mode mode);
void rumpuser_rw_exit(struct rumpuser_rw *rw);
void rumpuser_rw_destroy(struct rumpuser_rw *rw);

int rumpuser_cv_init(struct rumpuser_cv **cvp);
void rumpuser_cv_wait(struct rumpuser_cv *cv, struct rumpuser_mtx *mtx);
/* Waits at most timeout_ns; returns 0 when woken, ETIMEDOUT otherwise. */
int rumpuser_cv_timedwait(struct rumpuser_cv *cv, struct rumpuser_mtx *mtx,
                          uint64_t timeout_ns);
void rumpuser_cv_signal(struct rumpuser_cv *cv);
void rumpuser_cv_broadcast(struct rumpuser_cv *cv);
void rumpuser_cv_destroy(struct rumpuser_cv *cv);

/* ---- clock and sleep -------------------------------------------------- */

enum rumpuser_clock {
	RUMPUSER_CLOCK_WALL,      /* real time, nanoseconds since the epoch */
	RUMPUSER_CLOCK_MONO,      /* monotonic, nanoseconds since some start */
};
int rumpuser_clock_gettime(enum rumpuser_clock clock, uint64_t *nsp);
/* Sleeps for ns nanoseconds (relative, on the monotonic clock). */
int rumpuser_clock_sleep(uint64_t ns);

/* ---- random ----------------------------------------------------------- */

/* Fills all of buf with random bytes from the host's generator. */
int rumpuser_getrandom(void *buf, size_t len);

/* ---- logging ---------------------------------------------------------- */

enum rumpuser_log_level {
	RUMPUSER_LOG_ERROR,
	RUMPUSER_LOG_WARN,
	RUMPUSER_LOG_INFO,
	RUMPUSER_LOG_DEBUG,
};
/*
 * Writes one line to the host's log (stderr), prefixed by tag.  Messages
 * above the level named by the environment variable RUMP_LOG (error, warn,
 * info, debug; default info) are dropped.
 */
void rumpuser_log(enum rumpuser_log_level level, const char *tag,
                  const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void rumpuser_vlog(enum rumpuser_log_level level, const char *tag,
                   const char *fmt, va_list ap);

/* ---- files and block devices ------------------------------------------ */

#define RUMPUSER_OPEN_RDONLY  0x0001
#define RUMPUSER_OPEN_RDWR    0x0002
#define RUMPUSER_OPEN_CREATE  0x0004
#define RUMPUSER_OPEN_EXCL    0x0008
#define RUMPUSER_OPEN_DIRECT  0x0010 /* bypass the host's cache (O_DIRECT) */

int rumpuser_open(const char *path, int flags, int *fdp);
int rumpuser_close(int fd);

enum rumpuser_ftype { RUMPUSER_FT_OTHER, RUMPUSER_FT_REG, RUMPUSER_FT_BLK };
struct rumpuser_fileinfo {
	enum rumpuser_ftype type;
	uint64_t size;              /* bytes */
	uint32_t logical_block;     /* smallest addressable unit (512 for files) */
	uint32_t direct_align;      /* alignment O_DIRECT needs; 0: no direct
	                             * I/O, or none worth it (tmpfs) */
	int read_only;              /* the fd was opened read-only */
};
int rumpuser_getfileinfo(int fd, struct rumpuser_fileinfo *info);

/*
 * Block I/O.  Two engines, chosen per backend by measurement:
 *  - rumpuser_bio_* queues requests on an io_uring and calls back from the
 *    engine's completion thread: fastest for O_DIRECT files and devices.
 *  - rumpuser_bio_sync runs one request on the calling thread: fastest for
 *    buffered and tmpfs files, where io_uring punts every request to a
 *    kernel worker.
 */
enum rumpuser_bio_op {
	RUMPUSER_BIO_READ,
	RUMPUSER_BIO_WRITE,
	RUMPUSER_BIO_FSYNC,         /* data and metadata (fdatasync) */
	RUMPUSER_BIO_DISCARD,       /* punch a hole / BLKDISCARD */
	RUMPUSER_BIO_WRITE_ZEROES,  /* zero range, keeping the space */
};

struct rumpuser_bio;

/*
 * Called once per request, on the engine's completion thread or on a
 * thread in rumpuser_bio_poll (never with an engine lock held).  result is
 * the byte count for a read or write (which may be short), 0 for the other
 * operations, or a negative errno value.
 */
typedef void (*rumpuser_bio_done_fn)(void *arg, int64_t result);

int rumpuser_bio_create(unsigned depth, const char *name,
                        struct rumpuser_bio **biop);
/* Waits for every request still in flight, then frees the engine. */
void rumpuser_bio_destroy(struct rumpuser_bio *bio);

#define RUMPUSER_BIO_MORE 0x01 /* more requests follow: hold the doorbell */

/*
 * Queues one request; done is called exactly once unless this returns an
 * error.  Thread-safe.  With RUMPUSER_BIO_MORE the request waits in the
 * queue until a later submit without it, or rumpuser_bio_kick().
 */
int rumpuser_bio_submit(struct rumpuser_bio *bio, int fd,
                        enum rumpuser_bio_op op, void *data, size_t len,
                        uint64_t offset, int flags,
                        rumpuser_bio_done_fn done, void *arg);
int rumpuser_bio_kick(struct rumpuser_bio *bio);

/*
 * Polling, for a thread that spins anyway (a server between requests): it
 * runs the callbacks of finished requests itself, saving a wakeup of the
 * completion thread per request.  Between poll_enter and poll_leave the
 * thread is a poller; while any poller is active the completion thread
 * sleeps, so a poller must call rumpuser_bio_poll often (every few
 * microseconds) and must not wait for a completion without leaving first.
 * rumpuser_bio_poll returns how many callbacks it ran (0 also when another
 * thread was reaping); they run on the calling thread.
 */
void rumpuser_bio_poll_enter(struct rumpuser_bio *bio);
unsigned rumpuser_bio_poll(struct rumpuser_bio *bio);
void rumpuser_bio_poll_leave(struct rumpuser_bio *bio);

/* Synchronous form: *donep gets what the callback's result would be. */
int rumpuser_bio_sync(int fd, enum rumpuser_bio_op op, void *data,
                      size_t len, uint64_t offset, int64_t *donep);

/*
 * Allocation map (SEEK_DATA / SEEK_HOLE): *foundp gets the offset, at or
 * after offset, where the next data (or hole) begins.  ENXIO when offset
 * is at or past the end of the file, or (data) when only a hole follows.
 * A host or file system that keeps no map reports everything as data.
 */
enum rumpuser_seek { RUMPUSER_SEEK_DATA, RUMPUSER_SEEK_HOLE };
int rumpuser_seek(int fd, enum rumpuser_seek what, uint64_t offset,
                  uint64_t *foundp);

/* ---- shared memory and doorbells -------------------------------------- */

/* An anonymous shared-memory object (memfd) of size bytes. */
int rumpuser_shm_create(const char *name, size_t size, int *fdp);
int rumpuser_shm_map(int fd, size_t size, int writable, void **addrp);
int rumpuser_shm_unmap(void *addr, size_t size);

/* A doorbell (eventfd): ring wakes one waiter; waits coalesce. */
int rumpuser_doorbell_create(int *fdp);
int rumpuser_doorbell_ring(int fd);
/* Waits at most timeout_ns (UINT64_MAX: forever); 0 or ETIMEDOUT. */
int rumpuser_doorbell_wait(int fd, uint64_t timeout_ns);

/* ---- network interfaces (packet I/O) ---------------------------------- */

/*
 * Frames move through a descriptor: a TAP device, an AF_PACKET socket
 * bound to a host interface, or a TAP descriptor handed in already open.
 * All are non-blocking; rumpuser_nic_wait() sleeps until one has a frame.
 */
#define RUMPUSER_IFNAME_MAX 16 /* the host's interface names, NUL included */

/* A TAP device (Ethernet frames, no packet-info header).  ifname "" lets
 * the host choose; name (RUMPUSER_IFNAME_MAX bytes) gets the name used. */
int rumpuser_nic_tap_open(const char *ifname, char *name, int *fdp);
/* An AF_PACKET socket on host interface ifname that receives every frame
 * arriving there except those it sent itself. */
int rumpuser_nic_packet_open(const char *ifname, int *fdp);
/* A descriptor handed in (by number): checks it is a TAP device or a
 * packet socket and makes it non-blocking.  name gets its interface. */
int rumpuser_nic_adopt(int fd, char *name);
/*
 * The bytes of virtio-net header (struct virtio_net_hdr, in the host's
 * byte order) that precede every frame read from and written to fd: 0 for
 * a packet
 * socket or a plain TAP device; 10 to 256 for a TAP device with
 * IFF_VNET_HDR, which rumpuser_nic_tap_open makes so that large TCP
 * segments can be handed to the host whole.  The host is never asked to
 * hand over unfinished checksums or unsplit segments.
 */
int rumpuser_nic_vnet_hdr_len(int fd, unsigned *lenp);
/* The MTU and the MAC address of host interface ifname. */
int rumpuser_nic_host_info(const char *ifname, unsigned *mtup,
                           uint8_t mac[6]);

/* One frame into buf; EAGAIN when none waits.  A frame of cap bytes or
 * more is dropped and reported as EMSGSIZE: make cap one byte larger than
 * the largest frame to accept. */
int rumpuser_nic_recv(int fd, void *buf, size_t cap, size_t *lenp);

struct rumpuser_iov {
	const void *base;
	size_t len;
};
/* One frame gathered from iov[0..n); EAGAIN when the host queue is full. */
int rumpuser_nic_send(int fd, const struct rumpuser_iov *iov, unsigned n);
/*
 * Sleeps until fd has a frame, the doorbell stop_fd (-1: none) rings, or
 * timeout_ns passes (UINT64_MAX: never).  *readyp is 1 when fd is
 * readable.  A ring of stop_fd is consumed.
 */
int rumpuser_nic_wait(int fd, int stop_fd, uint64_t timeout_ns, int *readyp);

/* ---- shared files and futexes (for buses many processes map) ---------- */

/* Sets the size of an open file (grows with zeroes). */
int rumpuser_file_resize(int fd, uint64_t size);
/* Sleeps while *word == expected, at most timeout_ns; 0, ETIMEDOUT, or
 * EAGAIN when *word had changed.  word may be in memory shared between
 * processes. */
int rumpuser_futex_wait(uint32_t *word, uint32_t expected,
                        uint64_t timeout_ns);
/* Wakes up to n sleepers on word (INT32_MAX: all). */
int rumpuser_futex_wake(uint32_t *word, int n);

/*
 * A lock on the byte at off of an open file, which the kernel drops when
 * the file is closed or its holder dies, in whatever user or PID namespace
 * (an open file description lock): a member of a shared bus holds one for
 * as long as it is a member, so the others can tell one that died.
 * trylock: 0, or EAGAIN when another open of the file holds it.
 * locked: *heldp is 1 when another open of the file holds it.
 */
int rumpuser_file_trylock(int fd, uint64_t off);
int rumpuser_file_unlock(int fd, uint64_t off);
int rumpuser_file_locked(int fd, uint64_t off, int *heldp);

/* This process's id, and whether process pid still exists (for members
 * of a shared bus to notice one that died).  Not across PID namespaces
 * or a seccomp filter that denies kill(): see rumpuser_file_trylock. */
uint32_t rumpuser_proc_self(void);
int rumpuser_proc_alive(uint32_t pid);

#endif /* RUMP_RUMPUSER_H */
