/*
 * Version check between the runtime and this host layer.  There is no
 * process-wide state to set up: every resource rumpuser hands out is owned
 * by its caller, so two runtimes can call this independently.
 */
#include <errno.h>

#include "rumpuser_int.h"

int
rumpuser_init(int version)
{
	if (version != RUMPUSER_VERSION) {
		rumpuser_log(RUMPUSER_LOG_ERROR, "rumpuser",
		             "runtime wants hypercall version %d, this host "
		             "layer is version %d", version, RUMPUSER_VERSION);
		return ENOTSUP;
	}
	return 0;
}
