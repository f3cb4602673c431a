/*
 * The null service: the smallest service there is, used to measure the IPC
 * and to test it.  Control calls NULL, ECHO and SLEEP; ring operations NULL,
 * ECHO and SLEEP (see enum rump_null_msg / rump_null_op in rump/proto.h).
 *
 * It lives in a library of its own so that a test or a benchmark can serve
 * it in-process; servers/null/main.c is the rumpnull program around it.
 */
#ifndef RUMP_NULL_SERVICE_H
#define RUMP_NULL_SERVICE_H

#include <stddef.h>
#include <stdint.h>

#include "rump/rumpkern.h"
#include "rump/server.h"

/* A SLEEP longer than this is refused (EINVAL): a session's memory lives
 * until its last request completes, so a client must not pin it for ages. */
#define NULL_SLEEP_MAX_NS (60ull * 1000 * 1000 * 1000)

struct null_service;

/* The service borrows rt, which must outlive it. */
int null_service_create(struct rk_runtime *rt, struct null_service **nsp);
/* The descriptor to hand to rump_server_create(); owned by ns. */
const struct rump_service *null_service_desc(const struct null_service *ns);
/*
 * Completes every pending SLEEP with -ECANCELED and refuses new ones, so
 * that rump_server_destroy() does not wait for timers.  Call it after
 * rump_server_run() returned and before rump_server_destroy().
 */
void null_service_shutdown(struct null_service *ns);
/* After rump_server_destroy(). */
void null_service_destroy(struct null_service *ns);

/* FNV-1a, 64 bits: the checksum ring ECHO returns in aux. */
#define NULL_FNV64_INIT 0xcbf29ce484222325ull
static inline uint64_t null_fnv1a64_update(uint64_t h, const void *data,
                                           size_t len)
{
	const unsigned char *p = data;

	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

static inline uint64_t null_fnv1a64(const void *data, size_t len)
{
	return null_fnv1a64_update(NULL_FNV64_INIT, data, len);
}

#endif /* RUMP_NULL_SERVICE_H */
