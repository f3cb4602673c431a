#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "probe.h"

const char *
probe_kind_name(uint32_t kind)
{
	switch (kind) {
	case RUMP_SERVICE_NULL:
		return "null";
	case RUMP_SERVICE_DISK:
		return "disk";
	case RUMP_SERVICE_FS:
		return "fs";
	case RUMP_SERVICE_NET:
		return "net";
	default:
		return "unknown";
	}
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted samples. */
static double
percentile_us(const uint64_t *sorted, unsigned n, unsigned pct)
{
	size_t rank = ((size_t)n * pct + 99) / 100;

	if (rank == 0)
		rank = 1;
	return (double)sorted[rank - 1] / 1000.0;
}

void
probe_latency_from(uint64_t *samples, unsigned n, struct probe_latency *out)
{
	out->count = n;
	out->p50_us = out->p99_us = 0;
	if (n == 0)
		return;
	qsort(samples, n, sizeof(*samples), cmp_u64);
	out->p50_us = percentile_us(samples, n, 50);
	out->p99_us = percentile_us(samples, n, 99);
}

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int
control_null(struct rump_client *c)
{
	return rump_client_call(c, RUMP_NULL_MSG_NULL, NULL, 0, NULL, 0,
	                        NULL);
}

static int
ring_null(struct rump_client *c)
{
	struct rump_sqe sqe = { .opcode = RUMP_NULL_OP_NULL };
	int64_t r = rump_client_exec(c, &sqe, NULL);

	return r < 0 ? (int)-r : 0;
}

/* Warm-up first: the first calls fault in pages and wake threads up. */
static int
measure(struct rump_client *c, int (*once)(struct rump_client *),
        uint64_t *samples, unsigned count, struct probe_latency *out)
{
	unsigned warm = count / 10 < 10 ? 10 : count / 10;
	int error;

	for (unsigned i = 0; i < warm; i++)
		if ((error = once(c)) != 0)
			return error;
	for (unsigned i = 0; i < count; i++) {
		uint64_t t0 = now_ns();

		if ((error = once(c)) != 0)
			return error;
		samples[i] = now_ns() - t0;
	}
	probe_latency_from(samples, count, out);
	return 0;
}

int
probe_null_ping(struct rump_client *client, unsigned count,
                struct probe_ping *out)
{
	uint64_t *samples;
	int error;

	samples = calloc(count ? count : 1, sizeof(*samples));
	if (samples == NULL)
		return ENOMEM;
	error = measure(client, control_null, samples, count, &out->control);
	if (error == 0)
		error = measure(client, ring_null, samples, count, &out->ring);
	free(samples);
	return error;
}
