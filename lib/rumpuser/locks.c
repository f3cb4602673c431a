/*
 * Mutexes, reader/writer locks and condition variables on pthreads.
 *
 * Failures of lock, unlock and wait can only come from misuse (unlocking a
 * lock not held, destroying a lock in use): the interface has no way to
 * report them and going on would corrupt state, so they abort with a log.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "rumpuser_int.h"

int
rumpuser_mutex_init(struct rumpuser_mtx **mtxp)
{
	struct rumpuser_mtx *mtx;
	pthread_mutexattr_t attr;
	int error;

	mtx = malloc(sizeof(*mtx));
	if (mtx == NULL)
		return ru_errno();
	error = pthread_mutexattr_init(&attr);
	if (error != 0)
		goto fail;
#ifndef NDEBUG
	/* Debug builds catch recursive locking and foreign unlocks. */
	(void)pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ERRORCHECK);
#endif
	error = pthread_mutex_init(&mtx->mtx, &attr);
	(void)pthread_mutexattr_destroy(&attr);
	if (error != 0)
		goto fail;
	*mtxp = mtx;
	return 0;

fail:
	free(mtx);
	return ru_error(error);
}

void
rumpuser_mutex_enter(struct rumpuser_mtx *mtx)
{
	int error = pthread_mutex_lock(&mtx->mtx);

	if (error != 0)
		ru_fatal("mutex_enter", error);
}

int
rumpuser_mutex_tryenter(struct rumpuser_mtx *mtx)
{
	int error = pthread_mutex_trylock(&mtx->mtx);

	if (error == EBUSY)
		return EBUSY;
	if (error != 0)
		ru_fatal("mutex_tryenter", error);
	return 0;
}

void
rumpuser_mutex_exit(struct rumpuser_mtx *mtx)
{
	int error = pthread_mutex_unlock(&mtx->mtx);

	if (error != 0)
		ru_fatal("mutex_exit", error);
}

void
rumpuser_mutex_destroy(struct rumpuser_mtx *mtx)
{
	int error;

	if (mtx == NULL)
		return;
	error = pthread_mutex_destroy(&mtx->mtx);
	if (error != 0)
		ru_fatal("mutex_destroy", error);
	free(mtx);
}

int
rumpuser_rw_init(struct rumpuser_rw **rwp)
{
	struct rumpuser_rw *rw;
	int error;

	rw = malloc(sizeof(*rw));
	if (rw == NULL)
		return ru_errno();
	/*
	 * glibc's default (readers first) is kept on purpose: it lets a
	 * reader take the lock again while holding it, which writer-first
	 * locks turn into a deadlock as soon as a writer queues up.
	 */
	error = pthread_rwlock_init(&rw->rw, NULL);
	if (error != 0) {
		free(rw);
		return ru_error(error);
	}
	*rwp = rw;
	return 0;
}

void
rumpuser_rw_enter(struct rumpuser_rw *rw, enum rumpuser_rw_mode mode)
{
	int error;

	if (mode == RUMPUSER_RW_WRITER)
		error = pthread_rwlock_wrlock(&rw->rw);
	else
		error = pthread_rwlock_rdlock(&rw->rw);
	if (error != 0)
		ru_fatal("rw_enter", error);
}

int
rumpuser_rw_tryenter(struct rumpuser_rw *rw, enum rumpuser_rw_mode mode)
{
	int error;

	if (mode == RUMPUSER_RW_WRITER)
		error = pthread_rwlock_trywrlock(&rw->rw);
	else
		error = pthread_rwlock_tryrdlock(&rw->rw);
	if (error == EBUSY)
		return EBUSY;
	if (error != 0)
		ru_fatal("rw_tryenter", error);
	return 0;
}

void
rumpuser_rw_exit(struct rumpuser_rw *rw)
{
	int error = pthread_rwlock_unlock(&rw->rw);

	if (error != 0)
		ru_fatal("rw_exit", error);
}

void
rumpuser_rw_destroy(struct rumpuser_rw *rw)
{
	int error;

	if (rw == NULL)
		return;
	error = pthread_rwlock_destroy(&rw->rw);
	if (error != 0)
		ru_fatal("rw_destroy", error);
	free(rw);
}

int
rumpuser_cv_init(struct rumpuser_cv **cvp)
{
	struct rumpuser_cv *cv;
	pthread_condattr_t attr;
	int error;

	cv = malloc(sizeof(*cv));
	if (cv == NULL)
		return ru_errno();
	error = pthread_condattr_init(&attr);
	if (error != 0)
		goto fail;
	/* Timed waits are relative; measuring them on the wall clock would
	 * let a clock step make them end early or hang for hours. */
	error = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	if (error == 0)
		error = pthread_cond_init(&cv->cv, &attr);
	(void)pthread_condattr_destroy(&attr);
	if (error != 0)
		goto fail;
	*cvp = cv;
	return 0;

fail:
	free(cv);
	return ru_error(error);
}

void
rumpuser_cv_wait(struct rumpuser_cv *cv, struct rumpuser_mtx *mtx)
{
	int error = pthread_cond_wait(&cv->cv, &mtx->mtx);

	if (error != 0)
		ru_fatal("cv_wait", error);
}

int
rumpuser_cv_timedwait(struct rumpuser_cv *cv, struct rumpuser_mtx *mtx,
                      uint64_t timeout_ns)
{
	struct timespec deadline;
	int error;

	ru_deadline(timeout_ns, &deadline);
	error = pthread_cond_timedwait(&cv->cv, &mtx->mtx, &deadline);
	if (error == ETIMEDOUT)
		return ETIMEDOUT;
	if (error != 0)
		ru_fatal("cv_timedwait", error);
	return 0;
}

void
rumpuser_cv_signal(struct rumpuser_cv *cv)
{
	(void)pthread_cond_signal(&cv->cv);
}

void
rumpuser_cv_broadcast(struct rumpuser_cv *cv)
{
	(void)pthread_cond_broadcast(&cv->cv);
}

void
rumpuser_cv_destroy(struct rumpuser_cv *cv)
{
	int error;

	if (cv == NULL)
		return;
	error = pthread_cond_destroy(&cv->cv);
	if (error != 0)
		ru_fatal("cv_destroy", error);
	free(cv);
}
