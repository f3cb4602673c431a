/*
 * Looking at a running service from the outside: names for service kinds,
 * latency statistics, and the null service's ping.  Shared by rumpctl and
 * rumpd (which pings what it started).
 */
#ifndef RUMPCTL_PROBE_H
#define RUMPCTL_PROBE_H

#include <stddef.h>
#include <stdint.h>

#include "rump/client.h"

/* "null", "disk", ...; "unknown" for a kind this build does not know. */
const char *probe_kind_name(uint32_t kind);

struct probe_latency {
	unsigned count;
	double p50_us, p99_us;
};

/* Sorts samples[0..n) (nanoseconds) and takes the percentiles. */
void probe_latency_from(uint64_t *samples, unsigned n,
                        struct probe_latency *out);

struct probe_ping {
	struct probe_latency control;   /* control call NULL */
	struct probe_latency ring;      /* ring request NULL */
};

/*
 * count round trips of each kind after a short warm-up, on a client of the
 * null service that has rings.  Returns 0 or an errno (a failed call's).
 */
int probe_null_ping(struct rump_client *client, unsigned count,
                    struct probe_ping *out);

#endif /* RUMPCTL_PROBE_H */
