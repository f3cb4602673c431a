/*
 * blk_mem: a RAM disk.
 *
 *   create(rt, "md0", "SIZE")      SIZE in bytes, or with K, M, G, T
 *
 * The memory is an anonymous shared-memory object, not the heap: pages
 * exist only once written (a large, mostly empty RAM disk costs what is
 * in it), it reads as zeroes from the start without touching every page,
 * and a discard gives pages back to the host by punching a hole.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "rump/rumpkern.h"

#define BLK_MEM_SECTOR 512

struct blk_mem {
	int fd;                  /* the memory object */
	uint8_t *mem;            /* its mapping */
	uint64_t size;
};

static void
blk_mem_strategy(struct rk_device *dev, struct rk_io *io)
{
	struct blk_mem *bm = rk_device_softc(dev);
	int64_t result = 0;
	int error;

	switch (io->op) {
	case RK_IO_READ:
		memcpy(io->data, bm->mem + io->offset, io->len);
		result = (int64_t)io->len;
		break;
	case RK_IO_WRITE:
		memcpy(bm->mem + io->offset, io->data, io->len);
		result = (int64_t)io->len;
		break;
	case RK_IO_FLUSH:
		break;
	case RK_IO_DISCARD:
		/* A hole in the memory object reads back as zeroes and holds
		 * no memory. */
		error = rumpuser_bio_sync(bm->fd, RUMPUSER_BIO_DISCARD, NULL,
		                          io->len, io->offset, &result);
		if (error != 0)
			result = -error;
		break;
	case RK_IO_WRITE_ZEROES:
		/* Zeroes that keep their memory, as the operation promises. */
		memset(bm->mem + io->offset, 0, io->len);
		break;
	default:
		result = -EOPNOTSUPP;
		break;
	}
	rk_io_done(io, result);
}

static void
blk_mem_free(struct blk_mem *bm)
{
	if (bm->mem != NULL)
		(void)rumpuser_shm_unmap(bm->mem, bm->size);
	if (bm->fd >= 0)
		(void)rumpuser_close(bm->fd);
	rumpuser_free(bm, sizeof(*bm));
}

static void
blk_mem_destroy(struct rk_device *dev)
{
	blk_mem_free(rk_device_softc(dev));
}

static const struct rk_devops blk_mem_ops = {
	.version = RK_DEVOPS_VERSION,
	.strategy = blk_mem_strategy,
	.destroy = blk_mem_destroy,
};

/* "64M" -> 67108864.  EINVAL for anything but digits and one suffix, or
 * a size that overflows. */
static int
parse_size(const char *s, uint64_t *sizep)
{
	uint64_t v = 0, mult = 1;
	const char *p = s;

	if (*p < '0' || *p > '9')
		return EINVAL;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (v > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
			return EINVAL;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	switch (*p) {
	case '\0': break;
	case 'k': case 'K': mult = 1ull << 10; p++; break;
	case 'm': case 'M': mult = 1ull << 20; p++; break;
	case 'g': case 'G': mult = 1ull << 30; p++; break;
	case 't': case 'T': mult = 1ull << 40; p++; break;
	default: return EINVAL;
	}
	if (*p != '\0' || v > UINT64_MAX / mult)
		return EINVAL;
	*sizep = v * mult;
	return 0;
}

static int
blk_mem_create(struct rk_runtime *rt, const char *instance,
               const char *args)
{
	struct blk_mem *bm;
	uint64_t size;
	void *mem;
	int error;

	if (args == NULL || parse_size(args, &size) != 0 || size == 0 ||
	    size % BLK_MEM_SECTOR != 0 || size > SIZE_MAX) {
		rk_err(rt, "%s: blk_mem wants a size in bytes (K, M, G, T "
		       "suffixes), a non-zero multiple of %u, not \"%s\"",
		       instance, BLK_MEM_SECTOR, args ? args : "");
		return EINVAL;
	}
	if ((error = rumpuser_malloc(sizeof(*bm), 0, &mem)) != 0)
		return error;
	bm = mem;
	*bm = (struct blk_mem){ .fd = -1, .size = size };
	if ((error = rumpuser_shm_create(instance, size, &bm->fd)) != 0)
		goto fail;
	if ((error = rumpuser_shm_map(bm->fd, size, 1, &mem)) != 0)
		goto fail;
	bm->mem = mem;

	struct rk_device_args dargs = {
		.name = instance,
		.class = "disk",
		.ops = &blk_mem_ops,
		.softc = bm,
		.size = size,
		.block_size = BLK_MEM_SECTOR,
	};
	if ((error = rk_device_add(rt, &dargs, NULL)) != 0)
		goto fail;
	rk_info(rt, "%s: RAM disk, %llu bytes", instance,
	        (unsigned long long)size);
	return 0;
fail:
	rk_err(rt, "%s: RAM disk of %llu bytes: %s", instance,
	       (unsigned long long)size, strerror(error));
	blk_mem_free(bm);
	return error;
}

static const struct rk_component blk_mem = {
	.version = RK_COMPONENT_VERSION,
	.name = "blk_mem",
	.create = blk_mem_create,
};
RK_COMPONENT(blk_mem);
