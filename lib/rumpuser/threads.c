/* Thread hypercalls on pthreads. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "rumpuser_int.h"

/* The thread names itself before running fn, so fn never sees its name
 * change under it. */
static void *
thread_start(void *arg)
{
	struct rumpuser_thread *thread = arg;

	/* A name is cosmetic: failing to set it is not an error. */
	if (thread->name[0] != '\0')
		(void)pthread_setname_np(pthread_self(), thread->name);
	return thread->fn(thread->arg);
}

int
rumpuser_thread_create(void *(*fn)(void *), void *arg, const char *name,
                       struct rumpuser_thread **threadp)
{
	struct rumpuser_thread *thread;
	sigset_t all, old;
	int error;

	thread = malloc(sizeof(*thread));
	if (thread == NULL)
		return ru_errno();
	thread->fn = fn;
	thread->arg = arg;
	/* The kernel keeps 15 characters; longer names are cut, not refused
	 * (ERANGE would be of no use to anyone). */
	thread->name[0] = '\0';
	if (name != NULL)
		strncat(thread->name, name, sizeof(thread->name) - 1);

	/*
	 * Runtime threads block every asynchronous signal, so that signals
	 * meant for the process (SIGTERM, SIGCHLD, ...) reach the server's own
	 * thread, which is the one that knows what to do with them.  The mask
	 * is inherited, so it is set around pthread_create rather than in fn.
	 */
	sigfillset(&all);
	error = pthread_sigmask(SIG_SETMASK, &all, &old);
	if (error != 0)
		goto fail;
	error = pthread_create(&thread->tid, NULL, thread_start, thread);
	(void)pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (error != 0)
		goto fail;

	*threadp = thread;
	return 0;

fail:
	free(thread);
	return ru_error(error);
}

int
rumpuser_thread_join(struct rumpuser_thread *thread, void **retp)
{
	void *ret;
	int error;

	error = pthread_join(thread->tid, &ret);
	if (error != 0)
		return ru_error(error);
	free(thread);
	if (retp != NULL)
		*retp = ret;
	return 0;
}
