/*
 * Shared by the files of lib/rumpkern only: the runtime and device
 * structures, and the hooks runtime.c uses to start and stop the others.
 */
#ifndef RK_INT_H
#define RK_INT_H

#include <stdatomic.h>

#include "rump/rumpkern.h"

struct rk_runtime {
	char *name;
	uint64_t boot_id;

	/* The io_uring engine, made on first use; closed at destroy. */
	struct rumpuser_mtx *bio_lock;
	struct rumpuser_bio *bio;
	unsigned bio_depth;
	bool bio_closed;

	/* The device registry, a list in the order devices were added. */
	struct rumpuser_mtx *dev_lock;
	struct rk_device *dev_first, *dev_last;

	/* Timers: a binary min-heap on deadline_ns, served by one thread. */
	struct rumpuser_mtx *timer_lock;
	struct rumpuser_cv *timer_cv;
	struct rk_timer **timer_heap;
	size_t timer_count, timer_cap;
	bool timer_stop;
	struct rumpuser_thread *timer_thread;
};

/* Per-device counters: bumped from any submitting or completing thread. */
struct rk_device_stats {
	atomic_uint_fast64_t reads, writes, flushes, discards, write_zeroes;
	atomic_uint_fast64_t bytes_read, bytes_written;
	atomic_uint_fast64_t errors, in_flight, busy_ns;
};

struct rk_device {
	struct rk_runtime *rt;
	char *name;
	char *class;
	const struct rk_devops *ops;
	void *softc;
	struct rk_device *parent;       /* holds a reference on it */
	uint64_t size;
	uint32_t block_size;
	bool read_only;
	bool is_partition;
	struct rk_partinfo part;

	atomic_uint refs;               /* the registry holds one */
	atomic_bool registered;         /* changed under dev_lock */
	bool removing;                  /* under dev_lock: no new children */
	struct rk_device *prev, *next;  /* under dev_lock */

	atomic_uint opens_read, opens_write;
	struct rk_device_stats stats;
};

/* runtime.c */
int rk_strdup(const char *s, char **copyp);
void rk_strfree(char *s);

/* timer.c */
int rk_timers_start(struct rk_runtime *rt);
void rk_timers_stop(struct rk_runtime *rt);
void rk_timers_free(struct rk_runtime *rt);

/* device.c */
void rk_devices_remove_all(struct rk_runtime *rt);

#endif /* RK_INT_H */
