/*
 * The disk service (RUMP_SERVICE_DISK, see the disk section of
 * rump/proto.h and docs/protocol-disk.md): the runtime's disks and
 * partitions, listed, opened by name and driven through the rings.
 *
 * It lives in a library of its own so that tests can serve it in-process;
 * main.c is the rumpdisk program around it.
 */
#ifndef RUMPDISK_DISK_SERVICE_H
#define RUMPDISK_DISK_SERVICE_H

#include <stdint.h>

#include "rump/rumpkern.h"
#include "rump/server.h"

#include "disk_check.h"   /* DISK_IO_MAX, DISK_EXTENTS_MAX */

/* Open handles one session may hold. */
#define DISK_HANDLES_MAX 1024u
/* Requests in flight over all sessions; beyond it requests fail EAGAIN. */
#define DISK_REQS_MAX 65536u

struct disk_service;

/*
 * Serves every device of rt at the time of the call (devices are made
 * first, then served).  The service borrows rt, which must outlive it.
 */
int disk_service_create(struct rk_runtime *rt, struct disk_service **dsp);

/*
 * Names the file behind a whole disk so BLOCK_STATUS can read its
 * allocation map (and that of the disk's partitions).  The service takes
 * fd and closes it.  Without one, a disk reports all of itself as data.
 */
int disk_service_set_map(struct disk_service *ds, const char *disk, int fd);

/* The descriptor to hand to rump_server_create(); owned by ds. */
const struct rump_service *disk_service_desc(const struct disk_service *ds);

/* After rump_server_destroy(): every session is gone by then. */
void disk_service_destroy(struct disk_service *ds);

#endif /* RUMPDISK_DISK_SERVICE_H */
