/* The blocks of a file system from a rumpdisk device (see
 * disk_backend.c). */
#ifndef RUMPFS_DISK_BACKEND_H
#define RUMPFS_DISK_BACKEND_H

#include <stdbool.h>
#include <stddef.h>

#include "fs_ext2.h"

struct disk_backend;

/*
 * Connects to service (a name in the runtime directory or a socket path),
 * opens device and fills be.  why (cap bytes) says what failed.
 */
int disk_backend_open(const char *service, const char *device, bool read_only,
                      struct fs_ext2_backend *be, struct disk_backend **dbp,
                      char *why, size_t cap);
/* After fs_ext2_unmount(). */
void disk_backend_close(struct disk_backend *db);

#endif /* RUMPFS_DISK_BACKEND_H */
