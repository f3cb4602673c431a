/*
 * The file system service (RUMP_SERVICE_FS, rump/proto_fs.h and
 * docs/protocol-fs.md) over a mounted fs_ext2.
 *
 * Session threads only check and queue requests; one worker thread runs
 * them against the file system, because libext2fs is not thread-safe.
 * Requests are checked at this edge (sizes, buffer bounds, names) and
 * copied out of shared memory before the component sees them.
 *
 * A library of its own so that tests can serve it in-process; main.c is
 * the rumpfs program around it.
 */
#ifndef RUMPFS_FS_SERVICE_H
#define RUMPFS_FS_SERVICE_H

#include <stdint.h>

#include "rump/server.h"

#include "fs_ext2.h"

/* Requests queued over all sessions; beyond it requests fail EAGAIN. */
#define FS_QUEUE_MAX 65536u

struct fs_service;

/* Serves fs, which the service borrows (it must outlive the service);
 * verifier is the write verifier of this start. */
int fs_service_create(struct fs_ext2 *fs, uint64_t verifier,
                      struct fs_service **svcp);
/* The descriptor to hand to rump_server_create(); owned by svc. */
const struct rump_service *fs_service_desc(const struct fs_service *svc);
/* After rump_server_destroy(): stops the worker (everything queued has
 * been completed by then) and frees svc. */
void fs_service_destroy(struct fs_service *svc);

#endif /* RUMPFS_FS_SERVICE_H */
