/*
 * Confinement of a driver process: the calls a driver makes on itself
 * after its set-up (rump_supervised_confine() is the usual way in).  The
 * namespaces and resource limits are rumpd's, set when it forks the
 * driver; what a process can only do to itself is here.
 */
#ifndef RUMP_CONFINE_H
#define RUMP_CONFINE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "rump/supervised.h"

struct rump_confine_opts {
	enum rump_confine_kind kind;
	bool set_ids;        /* switch to uid/gid, drop supplementary groups */
	uid_t uid;
	gid_t gid;
};

/*
 * In this order: user and groups (checked to be irreversible), no new
 * privileges, not dumpable, the seccomp allow-list for opts->kind on every
 * thread.  Calls that are not allowed fail with EPERM.  desc gets one line
 * saying what was done, for the logs.  Returns 0 or an errno; a process
 * whose confinement failed half-way must not go on.
 */
int rump_confine(const struct rump_confine_opts *opts, char *desc,
                 size_t cap);

/* "null", "disk", ...; NULL for a bad kind. */
const char *rump_confine_kind_name(enum rump_confine_kind kind);

#endif /* RUMP_CONFINE_H */
