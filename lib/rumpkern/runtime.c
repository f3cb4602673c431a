/*
 * The runtime object: names, boot id, the lazily made io_uring engine, and
 * the order in which everything is torn down.
 */
#include <errno.h>
#include <string.h>

#include "rk_int.h"

#define RK_BIO_DEPTH_DEFAULT 256

int
rk_strdup(const char *s, char **copyp)
{
	size_t len = strlen(s) + 1;
	char *copy;
	int error;

	error = rumpuser_malloc(len, 0, (void **)&copy);
	if (error != 0)
		return error;
	memcpy(copy, s, len);
	*copyp = copy;
	return 0;
}

void
rk_strfree(char *s)
{
	if (s != NULL)
		rumpuser_free(s, strlen(s) + 1);
}

int
rk_runtime_create(const struct rk_runtime_opts *opts, struct rk_runtime **rtp)
{
	struct rk_runtime *rt;
	int error;

	error = rumpuser_init(RUMPUSER_VERSION);
	if (error != 0)
		return error;
	error = rumpuser_malloc(sizeof(*rt), 0, (void **)&rt);
	if (error != 0)
		return error;
	memset(rt, 0, sizeof(*rt));

	error = rk_strdup(opts != NULL && opts->name != NULL ? opts->name :
	                  "rump", &rt->name);
	if (error != 0)
		goto fail_rt;
	rt->bio_depth = opts != NULL && opts->bio_depth != 0 ?
	                opts->bio_depth : RK_BIO_DEPTH_DEFAULT;
	error = rumpuser_getrandom(&rt->boot_id, sizeof(rt->boot_id));
	if (error != 0)
		goto fail_name;
	error = rumpuser_mutex_init(&rt->bio_lock);
	if (error != 0)
		goto fail_name;
	error = rumpuser_mutex_init(&rt->dev_lock);
	if (error != 0)
		goto fail_bio_lock;
	error = rk_timers_start(rt);
	if (error != 0)
		goto fail_dev_lock;
	*rtp = rt;
	return 0;

fail_dev_lock:
	rumpuser_mutex_destroy(rt->dev_lock);
fail_bio_lock:
	rumpuser_mutex_destroy(rt->bio_lock);
fail_name:
	rk_strfree(rt->name);
fail_rt:
	rumpuser_free(rt, sizeof(*rt));
	return error;
}

void
rk_runtime_destroy(struct rk_runtime *rt)
{
	struct rumpuser_bio *bio;

	if (rt == NULL)
		return;
	/* No timer fires into a half-destroyed runtime. */
	rk_timers_stop(rt);

	/*
	 * The engine goes before the devices: destroying it waits for every
	 * request in flight, whose completions still reach into the devices.
	 * A driver that needs I/O while being destroyed uses rumpuser_bio_sync.
	 */
	rumpuser_mutex_enter(rt->bio_lock);
	bio = rt->bio;
	rt->bio = NULL;
	rt->bio_closed = true;
	rumpuser_mutex_exit(rt->bio_lock);
	if (bio != NULL)
		rumpuser_bio_destroy(bio);

	rk_devices_remove_all(rt);
	rk_timers_free(rt);

	rumpuser_mutex_destroy(rt->dev_lock);
	rumpuser_mutex_destroy(rt->bio_lock);
	rk_strfree(rt->name);
	rumpuser_free(rt, sizeof(*rt));
}

const char *
rk_runtime_name(const struct rk_runtime *rt)
{
	return rt->name;
}

uint64_t
rk_runtime_boot_id(const struct rk_runtime *rt)
{
	return rt->boot_id;
}

int
rk_runtime_bio(struct rk_runtime *rt, struct rumpuser_bio **biop)
{
	int error = 0;

	rumpuser_mutex_enter(rt->bio_lock);
	if (rt->bio_closed)
		error = ESHUTDOWN;
	else if (rt->bio == NULL)
		error = rumpuser_bio_create(rt->bio_depth, rt->name, &rt->bio);
	if (error == 0)
		*biop = rt->bio;
	rumpuser_mutex_exit(rt->bio_lock);
	return error;
}

uint64_t
rk_now_ns(void)
{
	uint64_t ns = 0;

	/* The monotonic clock does not fail on any host worth running on;
	 * 0 would only make durations look long, never crash. */
	(void)rumpuser_clock_gettime(RUMPUSER_CLOCK_MONO, &ns);
	return ns;
}

void
rk_log(const struct rk_runtime *rt, enum rumpuser_log_level level,
       const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	rumpuser_vlog(level, rt != NULL ? rt->name : "rump", fmt, ap);
	va_end(ap);
}
