/*
 * Shared by the files of lib/rumpuser only: the host types behind the
 * opaque handles of rumpuser.h, and the error helpers of errors.c.
 */
#ifndef RUMPUSER_INT_H
#define RUMPUSER_INT_H

#include <pthread.h>

#include "rump/rumpuser.h"

struct rumpuser_thread {
	pthread_t tid;
	void *(*fn)(void *);
	void *arg;
	char name[16];          /* what the kernel keeps of a thread name */
};

struct rumpuser_mtx {
	pthread_mutex_t mtx;
};

struct rumpuser_rw {
	pthread_rwlock_t rw;
};

struct rumpuser_cv {
	pthread_cond_t cv;
};

/*
 * The one translation from a host error to the errno value rumpuser
 * returns.  host_error is a positive errno value as Linux reports it; the
 * result is never 0, so a caller that saw a failure always returns one.
 */
int ru_error(int host_error);
/* ru_error(errno), for the libc calls that report through errno. */
int ru_errno(void);
/* For calls that return -errno (liburing, io_uring completions). */
int ru_neg_error(int negative_errno);

/*
 * A host call that cannot fail unless the program is broken (unlocking a
 * mutex the thread does not hold, say): log it and abort, since going on
 * would corrupt state silently.
 */
__attribute__((noreturn)) void ru_fatal(const char *what, int host_error);

/* ns nanoseconds from now on CLOCK_MONOTONIC, saturating. */
struct timespec;
void ru_deadline(uint64_t ns, struct timespec *ts);

#endif /* RUMPUSER_INT_H */
