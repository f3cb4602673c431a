/*
 * Partition devices: each request to a partition becomes one request to
 * its disk, shifted by the partition's start.  The runtime has already
 * checked the request against the partition's size, so the forwarded one
 * cannot reach outside it; the disk checks it once more against itself.
 */
#include "partdev.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

struct partdev {
	struct rk_device *disk;  /* the runtime keeps it while we live */
	uint64_t start;          /* bytes */
	struct rk_pool *ios;     /* forwarded requests, reused */
};

/* Forwarded requests a partition keeps ready before it is first used. */
#define PARTDEV_IO_PREALLOC 8

static void
partdev_done(struct rk_io *fwd)
{
	struct rk_io *io = fwd->arg;
	struct partdev *pd = rk_device_softc(io->dev);
	int64_t result = fwd->result;

	rk_pool_put(pd->ios, fwd);
	rk_io_done(io, result);
}

static void
partdev_strategy(struct rk_device *dev, struct rk_io *io)
{
	struct partdev *pd = rk_device_softc(dev);
	struct rk_io *fwd = rk_pool_get(pd->ios);

	if (fwd == NULL) {
		rk_io_done(io, -ENOMEM);
		return;
	}
	*fwd = (struct rk_io){
		.op = io->op,
		.flags = io->flags,
		.offset = io->offset + pd->start,
		.len = io->len,
		.data = io->data,
		.done = partdev_done,
		.arg = io,
		.parent = io,
	};
	rk_io_submit(pd->disk, fwd);
}

static void
partdev_free(struct partdev *pd)
{
	if (pd->ios != NULL)
		rk_pool_destroy(pd->ios);
	rumpuser_free(pd, sizeof(*pd));
}

static void
partdev_destroy(struct rk_device *dev)
{
	partdev_free(rk_device_softc(dev));
}

static const struct rk_devops partdev_ops = {
	.version = RK_DEVOPS_VERSION,
	.strategy = partdev_strategy,
	.destroy = partdev_destroy,
};

static int
partdev_add(struct rk_device *disk, const struct rk_partinfo *part)
{
	struct rk_runtime *rt = rk_device_runtime(disk);
	struct partdev *pd;
	char name[64];
	void *mem;
	int n, error;

	n = snprintf(name, sizeof(name), "%ss%u", rk_device_name(disk),
	             part->index);
	if (n < 0 || (size_t)n >= sizeof(name))
		return ENAMETOOLONG;
	if ((error = rumpuser_malloc(sizeof(*pd), 0, &mem)) != 0)
		return error;
	pd = mem;
	*pd = (struct partdev){ .disk = disk, .start = part->start };
	error = rk_pool_create(rt, "partdev-io", sizeof(struct rk_io), 0,
	                       PARTDEV_IO_PREALLOC, 0, &pd->ios);
	if (error != 0)
		goto fail;

	struct rk_device_args args = {
		.name = name,
		.class = "partition",
		.ops = &partdev_ops,
		.softc = pd,
		.parent = disk,
		.size = part->length,
		.block_size = rk_device_block_size(disk),
		.read_only = rk_device_read_only(disk),
		.part = part,
	};
	if ((error = rk_device_add(rt, &args, NULL)) != 0)
		goto fail;
	return 0;
fail:
	partdev_free(pd);
	return error;
}

static void
partdev_remove_by_index(struct rk_device *disk, uint32_t index)
{
	char name[64];
	struct rk_device *dev;

	snprintf(name, sizeof(name), "%ss%u", rk_device_name(disk), index);
	if ((dev = rk_device_lookup(rk_device_runtime(disk), name)) != NULL) {
		rk_device_remove(dev);
		rk_device_release(dev);
	}
}

int
partdev_add_all(struct rk_device *disk, const struct rk_partinfo *parts,
                size_t count)
{
	int error;

	for (size_t i = 0; i < count; i++) {
		if ((error = partdev_add(disk, &parts[i])) != 0) {
			rk_err(rk_device_runtime(disk),
			       "%s: adding partition %u: %s",
			       rk_device_name(disk), parts[i].index,
			       strerror(error));
			while (i-- > 0)
				partdev_remove_by_index(disk, parts[i].index);
			return error;
		}
	}
	return 0;
}

int
partlist_append(struct partlist *list, const struct rk_partinfo *part)
{
	if (list->count == list->cap) {
		size_t cap = list->cap ? list->cap * 2 : 8;
		void *mem;
		int error;

		if ((error = rumpuser_malloc(cap * sizeof(*list->parts), 0,
		                             &mem)) != 0)
			return error;
		if (list->count > 0) {
			memcpy(mem, list->parts,
			       list->count * sizeof(*list->parts));
			rumpuser_free(list->parts,
			              list->cap * sizeof(*list->parts));
		}
		list->parts = mem;
		list->cap = cap;
	}
	list->parts[list->count++] = *part;
	return 0;
}

void
partlist_free(struct partlist *list)
{
	if (list->parts != NULL)
		rumpuser_free(list->parts, list->cap * sizeof(*list->parts));
	*list = (struct partlist){ 0 };
}

int
partdev_read_sector(struct rk_device *disk, uint32_t sector_size,
                    uint64_t lba, void *buf)
{
	int64_t r = rk_io_sync(disk, RK_IO_READ, buf, sector_size,
	                       lba * sector_size);

	if (r < 0)
		return (int)-r;
	return (uint64_t)r == sector_size ? 0 : EIO;
}
