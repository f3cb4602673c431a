/*
 * libFuzzer harness for the MBR parser: the input is a disk image (512-byte
 * sectors, sector 0 first).  Whatever the bytes, the parser must return,
 * read only sectors inside the disk, and report only partitions inside it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mbr_parse.h"

#define SECTOR 512

struct disk {
	const uint8_t *data;
	size_t size;
	uint64_t sectors;
	unsigned parts;
};

static int
disk_read(void *arg, uint64_t lba, void *buf)
{
	struct disk *d = arg;

	if (lba >= d->sectors)
		abort(); /* the parser must check before it reads */
	/* The image may end inside its last sector: pad with zeroes. */
	memset(buf, 0, SECTOR);
	if (lba * SECTOR < d->size) {
		size_t n = d->size - lba * SECTOR;

		memcpy(buf, d->data + lba * SECTOR, n < SECTOR ? n : SECTOR);
	}
	return 0;
}

static int
disk_emit(void *arg, const struct mbr_part *p)
{
	struct disk *d = arg;

	if (p->index == 0 || p->sectors == 0 || p->start == 0 ||
	    p->start >= d->sectors || p->sectors > d->sectors - p->start)
		abort();
	d->parts++;
	if (d->parts > 4 + MBR_MAX_LOGICAL * 4)
		abort(); /* the chain guard failed */
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t sector0[SECTOR] = { 0 };
	struct disk d = {
		.data = data,
		.size = size,
		/* at least the sector the parser is given */
		.sectors = size / SECTOR > 0 ? (size + SECTOR - 1) / SECTOR : 1,
	};
	struct mbr_source src = {
		.sector_size = SECTOR,
		.sectors = d.sectors,
		.read = disk_read,
		.emit = disk_emit,
		.arg = &d,
	};
	int error;

	memcpy(sector0, data, size < SECTOR ? size : SECTOR);
	error = mbr_parse(sector0, &src);
	if (error != 0 && error != ENODEV)
		abort();
	return 0;
}
