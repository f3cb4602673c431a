/*
 * part_gpt: finds a GUID partition table on every new disk (behind its
 * protective MBR) and adds each used entry N as child wd0sN.  When the
 * primary header or its entries are damaged the backup is used, with a
 * warning, so the disk still works and the damage is seen.
 */
#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "rump/rumpkern.h"
#include "partdev.h"
#include "gpt_parse.h"

struct gpt_scan {
	struct rk_device *disk;
	uint32_t sector_size;
	struct partlist found;
};

static int
scan_read(void *arg, uint64_t lba, void *buf)
{
	struct gpt_scan *sc = arg;

	return partdev_read_sector(sc->disk, sc->sector_size, lba, buf);
}

static int
scan_emit(void *arg, const struct gpt_part *p)
{
	struct gpt_scan *sc = arg;
	struct rk_partinfo info = {
		.scheme = RK_PART_GPT,
		.index = p->index,
		.start = p->first_lba * sc->sector_size,
		.length = (p->last_lba - p->first_lba + 1) * sc->sector_size,
	};

	memcpy(info.gpt_type, p->type, sizeof(info.gpt_type));
	memcpy(info.gpt_guid, p->guid, sizeof(info.gpt_guid));
	static_assert(sizeof(info.label) >= sizeof(p->label), "label size");
	memcpy(info.label, p->label, sizeof(p->label));
	return partlist_append(&sc->found, &info);
}

static void __attribute__((format(printf, 2, 3)))
scan_warn(void *arg, const char *fmt, ...)
{
	struct gpt_scan *sc = arg;
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	rk_warn(rk_device_runtime(sc->disk), "%s: GPT: %s",
	        rk_device_name(sc->disk), msg);
}

static int
part_gpt_attach(struct rk_runtime *rt, struct rk_device *disk)
{
	struct gpt_scan sc = { .disk = disk };
	struct gpt_result res;
	struct gpt_source src;
	int error;

	sc.sector_size = rk_device_block_size(disk);
	if (sc.sector_size == 0)
		sc.sector_size = 512;
	src = (struct gpt_source){
		.sector_size = sc.sector_size,
		.sectors = rk_device_size(disk) / sc.sector_size,
		.read = scan_read,
		.emit = scan_emit,
		.warn = scan_warn,
		.arg = &sc,
	};
	if ((error = gpt_parse(&src, &res)) != 0) {
		/* A sector size the parser does not know: not a GPT disk. */
		if (error == EINVAL)
			error = ENODEV;
		goto out;
	}
	if ((error = partdev_add_all(disk, sc.found.parts,
	                             sc.found.count)) != 0)
		goto out;
	rk_info(rt, "%s: GPT (%s header), %zu partitions",
	        rk_device_name(disk), res.used_backup ? "backup" : "primary",
	        sc.found.count);
out:
	partlist_free(&sc.found);
	return error;
}

static const struct rk_component part_gpt = {
	.version = RK_COMPONENT_VERSION,
	.name = "part_gpt",
	.attach_class = "disk",
	.attach = part_gpt_attach,
};
RK_COMPONENT(part_gpt);
