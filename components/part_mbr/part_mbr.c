/*
 * part_mbr: finds an MBR partition table on every new disk and adds its
 * partitions as children wd0s1, wd0s2, ... (logical ones from wd0s5).
 * A disk with a GPT protective MBR is left to part_gpt.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "rump/rumpkern.h"
#include "partdev.h"
#include "mbr_parse.h"

struct mbr_scan {
	struct rk_device *disk;
	uint32_t sector_size;
	struct partlist found;
};

static int
scan_read(void *arg, uint64_t lba, void *buf)
{
	struct mbr_scan *sc = arg;

	return partdev_read_sector(sc->disk, sc->sector_size, lba, buf);
}

static int
scan_emit(void *arg, const struct mbr_part *p)
{
	struct mbr_scan *sc = arg;
	struct rk_partinfo info = {
		.scheme = RK_PART_MBR,
		.index = p->index,
		.start = p->start * sc->sector_size,
		.length = p->sectors * sc->sector_size,
		.mbr_type = p->type,
	};

	return partlist_append(&sc->found, &info);
}

static void __attribute__((format(printf, 2, 3)))
scan_warn(void *arg, const char *fmt, ...)
{
	struct mbr_scan *sc = arg;
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	rk_warn(rk_device_runtime(sc->disk), "%s: MBR: %s",
	        rk_device_name(sc->disk), msg);
}

static int
part_mbr_attach(struct rk_runtime *rt, struct rk_device *disk)
{
	uint8_t sector0[4096];
	struct mbr_scan sc = { .disk = disk };
	struct mbr_source src;
	int error;

	sc.sector_size = rk_device_block_size(disk);
	if (sc.sector_size == 0)
		sc.sector_size = 512;
	if (sc.sector_size > sizeof(sector0) ||
	    rk_device_size(disk) < sc.sector_size)
		return ENODEV;
	if ((error = scan_read(&sc, 0, sector0)) != 0)
		return error;

	src = (struct mbr_source){
		.sector_size = sc.sector_size,
		.sectors = rk_device_size(disk) / sc.sector_size,
		.read = scan_read,
		.emit = scan_emit,
		.warn = scan_warn,
		.arg = &sc,
	};
	if ((error = mbr_parse(sector0, &src)) != 0)
		goto out;
	if ((error = partdev_add_all(disk, sc.found.parts,
	                             sc.found.count)) != 0)
		goto out;
	rk_info(rt, "%s: MBR partition table, %zu partitions",
	        rk_device_name(disk), sc.found.count);
out:
	partlist_free(&sc.found);
	return error;
}

static const struct rk_component part_mbr = {
	.version = RK_COMPONENT_VERSION,
	.name = "part_mbr",
	.attach_class = "disk",
	.attach = part_mbr_attach,
};
RK_COMPONENT(part_mbr);
