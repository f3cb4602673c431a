/*
 * The single place where host errors become the errno values rumpuser
 * returns.  Linux's errno numbers are the runtime's, so the translation is
 * the identity; what this file guarantees is that a failure never turns
 * into 0 (success) by accident, whatever the host reported.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "rumpuser_int.h"

int
ru_error(int host_error)
{
	/* A failing call that left errno at 0 (or a bogus negative value)
	 * must still fail: EIO is the honest "the host failed" answer. */
	if (host_error <= 0)
		return EIO;
	return host_error;
}

int
ru_errno(void)
{
	return ru_error(errno);
}

int
ru_neg_error(int negative_errno)
{
	return ru_error(-negative_errno);
}

void
ru_fatal(const char *what, int host_error)
{
	rumpuser_log(RUMPUSER_LOG_ERROR, "rumpuser", "fatal: %s: %s", what,
	             strerror(host_error));
	abort();
}
