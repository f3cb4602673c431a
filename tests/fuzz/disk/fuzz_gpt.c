/*
 * libFuzzer harness for the GPT parser: the input is a disk image of
 * 512-byte sectors.  CRCs would stop almost every mutation at the header,
 * so when the first byte is odd the harness repairs the primary header's
 * and entry array's CRCs first, letting the fuzzer reach the checks that
 * come after them.  The parser must return, read only sectors inside the
 * disk, and report only partitions inside it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "gpt_parse.h"

#define SECTOR 512
#define MAX_IMAGE (1u << 20)

struct disk {
	uint8_t *data;
	size_t size;             /* a whole number of sectors */
	uint64_t sectors;
};

static uint32_t
get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static uint64_t
get64(const uint8_t *p)
{
	return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static void
put32(uint8_t *p, uint32_t v)
{
	for (unsigned i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void
fix_crcs(struct disk *d)
{
	uint8_t *hdr = d->data + SECTOR;
	uint64_t lba, bytes;
	uint32_t hsize;

	if (d->sectors < 2)
		return;
	lba = get64(hdr + 72);
	bytes = (uint64_t)get32(hdr + 80) * get32(hdr + 84);
	if (lba < d->sectors && bytes <= d->size - lba * SECTOR)
		put32(hdr + 88, gpt_crc32(0, d->data + lba * SECTOR, bytes));
	hsize = get32(hdr + 12);
	if (hsize >= 20 && hsize <= SECTOR) {
		put32(hdr + 16, 0);
		put32(hdr + 16, gpt_crc32(0, hdr, hsize));
	}
}

static int
disk_read(void *arg, uint64_t lba, void *buf)
{
	struct disk *d = arg;

	if (lba >= d->sectors)
		abort(); /* the parser must check before it reads */
	memcpy(buf, d->data + lba * SECTOR, SECTOR);
	return 0;
}

static int
disk_emit(void *arg, const struct gpt_part *p)
{
	struct disk *d = arg;

	if (p->index == 0 || p->first_lba == 0 ||
	    p->first_lba > p->last_lba || p->last_lba >= d->sectors)
		abort();
	if (strnlen(p->label, sizeof(p->label)) >= sizeof(p->label))
		abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct disk d;
	struct gpt_source src;
	struct gpt_result res;
	int error;

	if (size < 1 || size > MAX_IMAGE)
		return 0;
	d.sectors = (size - 1 + SECTOR - 1) / SECTOR;
	d.size = d.sectors * SECTOR;
	d.data = calloc(1, d.size > 0 ? d.size : 1);
	if (d.data == NULL)
		return 0;
	memcpy(d.data, data + 1, size - 1);
	if (data[0] & 1)
		fix_crcs(&d);

	src = (struct gpt_source){
		.sector_size = SECTOR,
		.sectors = d.sectors,
		.read = disk_read,
		.emit = disk_emit,
		.arg = &d,
	};
	error = gpt_parse(&src, &res);
	if (error != 0 && error != ENODEV)
		abort();
	free(d.data);
	return 0;
}
