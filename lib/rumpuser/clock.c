/* Clocks and sleeping. */
#include <errno.h>
#include <stdint.h>
#include <time.h>

#include "rumpuser_int.h"

#define NS_PER_SEC 1000000000ULL

int
rumpuser_clock_gettime(enum rumpuser_clock clock, uint64_t *nsp)
{
	struct timespec ts;
	clockid_t id;

	switch (clock) {
	case RUMPUSER_CLOCK_WALL:
		id = CLOCK_REALTIME;
		break;
	case RUMPUSER_CLOCK_MONO:
		id = CLOCK_MONOTONIC;
		break;
	default:
		return EINVAL;
	}
	if (clock_gettime(id, &ts) != 0)
		return ru_errno();
	*nsp = (uint64_t)ts.tv_sec * NS_PER_SEC + (uint64_t)ts.tv_nsec;
	return 0;
}

void
ru_deadline(uint64_t ns, struct timespec *ts)
{
	uint64_t sec;

	/* CLOCK_MONOTONIC cannot fail with a valid clock id. */
	(void)clock_gettime(CLOCK_MONOTONIC, ts);
	sec = ns / NS_PER_SEC;
	ts->tv_nsec += (long)(ns % NS_PER_SEC);
	if (ts->tv_nsec >= (long)NS_PER_SEC) {
		ts->tv_nsec -= (long)NS_PER_SEC;
		sec++;
	}
	/* "Forever" (UINT64_MAX and friends) saturates instead of wrapping
	 * into the past. */
	if (sec > (uint64_t)(INT64_MAX - ts->tv_sec))
		ts->tv_sec = INT64_MAX;
	else
		ts->tv_sec += (time_t)sec;
}

int
rumpuser_clock_sleep(uint64_t ns)
{
	struct timespec deadline;
	int error;

	/* An absolute deadline makes a restart after a signal sleep only
	 * what is left, not the whole time again. */
	ru_deadline(ns, &deadline);
	do {
		error = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME,
		                        &deadline, NULL);
	} while (error == EINTR);
	return error == 0 ? 0 : ru_error(error);
}
