/*
 * Partition devices, shared by part_mbr and part_gpt: a child device of a
 * disk that covers [start, start + length) of it and forwards every
 * request to the disk with start added.
 */
#ifndef COMPONENTS_PARTDEV_H
#define COMPONENTS_PARTDEV_H

#include <stddef.h>

#include "rump/rumpkern.h"

/*
 * Adds one child "<disk>s<index>" of disk per entry of parts (all or
 * none: on an error those already added are removed again).  The disk's
 * block size and read-only flag carry over.
 */
int partdev_add_all(struct rk_device *disk, const struct rk_partinfo *parts,
                    size_t count);

/*
 * A growable array of partinfo the parsers' emit callbacks append to; the
 * array owns its memory (partlist_free).
 */
struct partlist {
	struct rk_partinfo *parts;
	size_t count, cap;
};
int partlist_append(struct partlist *list, const struct rk_partinfo *part);
void partlist_free(struct partlist *list);

/* Reads one sector of disk for a parser: 0 or an errno (EIO if short). */
int partdev_read_sector(struct rk_device *disk, uint32_t sector_size,
                        uint64_t lba, void *buf);

#endif /* COMPONENTS_PARTDEV_H */
