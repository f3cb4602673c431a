/*
 * rumpkern: the small portable kernel runtime every rump process hosts.
 *
 * It calls the host only through rumpuser.h.  All of its state hangs off a
 * struct rk_runtime, so two runtimes can live in one process (the tests do
 * that).  Functions return 0 or a positive errno value unless they say
 * otherwise.
 *
 * Ownership, written once for all:
 *  - A device belongs to its runtime; rk_device_lookup() hands out a
 *    reference that the caller gives back with rk_device_release().
 *  - A struct rk_io belongs to whoever submits it.  The runtime and the
 *    driver borrow it from rk_io_submit() until its done callback returns;
 *    done is called exactly once, possibly before rk_io_submit() returns.
 *  - A struct rk_timer belongs to whoever embeds it; cancel it before
 *    freeing it.
 */
#ifndef RUMP_RUMPKERN_H
#define RUMP_RUMPKERN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rump/rumpuser.h"

struct rk_runtime;
struct rk_device;

/* ---- runtime ---------------------------------------------------------- */

struct rk_runtime_opts {
	const char *name;       /* for logs: "rumpdisk", "test-a", ... */
	unsigned bio_depth;     /* io_uring depth; 0 picks the default */
};

int rk_runtime_create(const struct rk_runtime_opts *opts,
                      struct rk_runtime **rtp);
/* Stops timers, detaches and destroys every device, frees the runtime. */
void rk_runtime_destroy(struct rk_runtime *rt);

const char *rk_runtime_name(const struct rk_runtime *rt);
/* A random 64-bit number chosen when the runtime was created. */
uint64_t rk_runtime_boot_id(const struct rk_runtime *rt);
/* The runtime's io_uring engine (created on first use). */
int rk_runtime_bio(struct rk_runtime *rt, struct rumpuser_bio **biop);
uint64_t rk_now_ns(void);

void rk_log(const struct rk_runtime *rt, enum rumpuser_log_level level,
            const char *fmt, ...) __attribute__((format(printf, 3, 4)));
#define rk_err(rt, ...)   rk_log((rt), RUMPUSER_LOG_ERROR, __VA_ARGS__)
#define rk_warn(rt, ...)  rk_log((rt), RUMPUSER_LOG_WARN, __VA_ARGS__)
#define rk_info(rt, ...)  rk_log((rt), RUMPUSER_LOG_INFO, __VA_ARGS__)
#define rk_debug(rt, ...) rk_log((rt), RUMPUSER_LOG_DEBUG, __VA_ARGS__)

/* ---- components ------------------------------------------------------- */

#define RK_COMPONENT_VERSION 1

/*
 * A driver component.  Components register themselves with RK_COMPONENT()
 * and are found by name; the descriptor is constant, all state lives in the
 * runtime and the devices a component creates.
 *
 * A component either creates devices on request (create: "blk_file" makes
 * wd0 from a path), or attaches to devices of a class (attach_class "disk":
 * "part_mbr" looks at every new disk and adds its partitions as children),
 * or both.  attach returns 0 when it took the device, ENODEV when the device
 * is not its kind (the next component is tried), another error on failure.
 */
struct rk_component {
	unsigned version;          /* RK_COMPONENT_VERSION */
	const char *name;
	const char *attach_class;  /* NULL: attaches to nothing */
	int (*create)(struct rk_runtime *rt, const char *instance,
	              const char *args);
	int (*attach)(struct rk_runtime *rt, struct rk_device *parent);
};

#define RK_COMPONENT(desc)                                                  \
	static const struct rk_component *const rk_component_ptr_##desc      \
	__attribute__((used, section("rk_components"), aligned(sizeof(void *)))) \
	= &(desc)

const struct rk_component *rk_component_find(const char *name);
/* Calls fn for each component linked in; stops at the first non-zero. */
int rk_component_foreach(int (*fn)(const struct rk_component *, void *),
                         void *arg);
/* Finds the component by name and calls its create(). */
int rk_component_create(struct rk_runtime *rt, const char *component,
                        const char *instance, const char *args);

/* ---- devices ---------------------------------------------------------- */

#define RK_DEVOPS_VERSION 1

/* Open modes */
#define RK_OPEN_READ   0x1
#define RK_OPEN_WRITE  0x2

enum rk_io_op {
	RK_IO_READ,
	RK_IO_WRITE,
	RK_IO_FLUSH,
	RK_IO_DISCARD,
	RK_IO_WRITE_ZEROES,
};

#define RK_IO_FUA 0x1 /* write through to stable storage before done */

struct rk_io {
	/* set by the submitter */
	enum rk_io_op op;
	unsigned flags;
	uint64_t offset;        /* bytes, from the start of the device */
	uint64_t len;           /* bytes */
	void *data;             /* READ/WRITE: len bytes */
	void (*done)(struct rk_io *io);
	void *arg;
	/* set by the runtime */
	int64_t result;         /* bytes moved (0 for others), or -errno */
	struct rk_device *dev;
	uint64_t start_ns;
	struct rk_io *parent;   /* for drivers that split or forward requests */
};

struct rk_devops {
	unsigned version;       /* RK_DEVOPS_VERSION */
	/* May refuse a mode (EROFS, EBUSY); NULL accepts any. */
	int (*open)(struct rk_device *dev, unsigned mode);
	void (*close)(struct rk_device *dev, unsigned mode);
	/*
	 * Starts io; the runtime has already checked it against the device's
	 * size and block size.  Completes it with rk_io_done(), now or later.
	 */
	void (*strategy)(struct rk_device *dev, struct rk_io *io);
	/* Called once when the device goes away; frees softc. */
	void (*destroy)(struct rk_device *dev);
};

/* Where a partition lies in its parent; see part_mbr and part_gpt. */
enum rk_part_scheme { RK_PART_NONE, RK_PART_MBR, RK_PART_GPT };
struct rk_partinfo {
	enum rk_part_scheme scheme;
	uint32_t index;          /* 1-based: wd0s1 is index 1 */
	uint64_t start;          /* bytes from the start of the parent */
	uint64_t length;         /* bytes */
	uint8_t mbr_type;        /* MBR system id (0x83, 0x05, ...) */
	uint8_t gpt_type[16];    /* GPT type GUID, as stored on disk */
	uint8_t gpt_guid[16];    /* GPT unique partition GUID, as on disk */
	char label[72];          /* GPT name as UTF-8, NUL-terminated */
};

struct rk_device_args {
	const char *name;        /* "wd0", "wd0s1"; unique in the runtime */
	const char *class;       /* "disk", "partition", "nic", ... */
	const struct rk_devops *ops;
	void *softc;             /* the driver's state, freed by ops->destroy */
	struct rk_device *parent;
	uint64_t size;           /* bytes; 0 for devices without a size */
	uint32_t block_size;     /* I/O must be aligned to this; 0 = none */
	bool read_only;
	const struct rk_partinfo *part; /* copied; NULL if not a partition */
};

/*
 * Registers a device, then offers it to every component attaching to its
 * class.  *devp (may be NULL) is not a reference: the device lives until
 * the runtime is destroyed or rk_device_remove().
 */
int rk_device_add(struct rk_runtime *rt, const struct rk_device_args *args,
                  struct rk_device **devp);
/* Removes the device and its children from the registry; frees it on the
 * last reference. */
void rk_device_remove(struct rk_device *dev);

/* Returns a reference, or NULL with ENOENT. */
struct rk_device *rk_device_lookup(struct rk_runtime *rt, const char *name);
void rk_device_hold(struct rk_device *dev);
void rk_device_release(struct rk_device *dev);
/* Calls fn on each device in the order added; stops at the first non-zero
 * return, which it returns.  fn may not add or remove devices. */
int rk_device_foreach(struct rk_runtime *rt,
                      int (*fn)(struct rk_device *dev, void *arg), void *arg);

const char *rk_device_name(const struct rk_device *dev);
const char *rk_device_class(const struct rk_device *dev);
void *rk_device_softc(const struct rk_device *dev);
struct rk_device *rk_device_parent(const struct rk_device *dev);
struct rk_runtime *rk_device_runtime(const struct rk_device *dev);
uint64_t rk_device_size(const struct rk_device *dev);
uint32_t rk_device_block_size(const struct rk_device *dev);
bool rk_device_read_only(const struct rk_device *dev);
/* NULL if the device is not a partition. */
const struct rk_partinfo *rk_device_partinfo(const struct rk_device *dev);

/* Opening checks the mode against read-only and calls ops->open. */
int rk_device_open(struct rk_device *dev, unsigned mode);
void rk_device_close(struct rk_device *dev, unsigned mode);

/*
 * Starts io on dev.  Requests out of range, misaligned, or writing a
 * read-only device are completed at once with -EINVAL, -ENOSPC or -EROFS.
 */
void rk_io_submit(struct rk_device *dev, struct rk_io *io);
/* Completes io with result (bytes or -errno): counts it, calls done. */
void rk_io_done(struct rk_io *io, int64_t result);
/*
 * Runs one request and waits for it, for set-up paths (reading a partition
 * table); returns the request's result (bytes, or -errno).
 */
int64_t rk_io_sync(struct rk_device *dev, enum rk_io_op op, void *data,
                   uint64_t len, uint64_t offset);

/* ---- counters --------------------------------------------------------- */

struct rk_counters {
	uint64_t reads, writes, flushes, discards, write_zeroes;
	uint64_t bytes_read, bytes_written;
	uint64_t errors;
	uint64_t in_flight;
	uint64_t busy_ns;        /* summed request time */
};
void rk_device_counters(const struct rk_device *dev, struct rk_counters *out);

/* ---- timers ----------------------------------------------------------- */

struct rk_timer;
typedef void (*rk_timer_fn)(struct rk_timer *timer, void *arg);

/* Embeddable; the fields are the runtime's. */
struct rk_timer {
	struct rk_runtime *rt;
	rk_timer_fn fn;
	void *arg;
	uint64_t deadline_ns;
	size_t slot;             /* position in the runtime's heap, or SIZE_MAX */
};

void rk_timer_init(struct rk_runtime *rt, struct rk_timer *timer,
                   rk_timer_fn fn, void *arg);
/* One-shot: fn runs on the runtime's timer thread after delay_ns.  Arming a
 * pending timer moves it. */
void rk_timer_arm(struct rk_timer *timer, uint64_t delay_ns);
/* Returns true if the timer was pending and now will not run.  When it
 * returns false, fn has run or is running. */
bool rk_timer_cancel(struct rk_timer *timer);

/* ---- buffer pools ----------------------------------------------------- */

struct rk_pool;

/*
 * A pool of fixed-size objects, aligned to align (0: 64), that keeps up to
 * max of them (0: no limit) and starts with prealloc.  Reusing objects keeps
 * hot paths off the allocator: a fresh buffer per request halves throughput
 * on these machines.
 */
int rk_pool_create(struct rk_runtime *rt, const char *name, size_t objsize,
                   size_t align, unsigned prealloc, unsigned max,
                   struct rk_pool **poolp);
/* NULL when the pool is at its max and all objects are out. */
void *rk_pool_get(struct rk_pool *pool);
void rk_pool_put(struct rk_pool *pool, void *obj);
/* Every object must have been put back. */
void rk_pool_destroy(struct rk_pool *pool);

struct rk_pool_stats {
	uint64_t gets, puts, misses; /* misses: gets that found max reached */
	unsigned allocated, free;
};
void rk_pool_stats(const struct rk_pool *pool, struct rk_pool_stats *out);

#endif /* RUMP_RUMPKERN_H */
