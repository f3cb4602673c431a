/*
 * The MBR partition table parser: a pure function over sectors that its
 * caller reads, so the component, the unit tests and the fuzzer share it.
 *
 * Numbering follows Linux and sfdisk: the four primary slots are 1-4 (an
 * empty slot keeps its number), logical partitions in the chain of
 * extended boot records are 5, 6, ... in chain order.  The extended
 * partition itself is reported too (sfdisk lists it), with its type.
 */
#ifndef PART_MBR_PARSE_H
#define PART_MBR_PARSE_H

#include <stdbool.h>
#include <stdint.h>

#define MBR_SIGNATURE_OFF 510
#define MBR_TABLE_OFF     446
#define MBR_MAX_LOGICAL   256  /* longer EBR chains are taken as loops */

struct mbr_part {
	uint32_t index;          /* 1-based, as wd0s<index> */
	uint8_t type;            /* system id */
	bool bootable;
	uint64_t start;          /* sectors from the start of the disk */
	uint64_t sectors;
};

/*
 * Where the parser gets its sectors and sends what it finds.  The parser
 * owns none of it.
 */
struct mbr_source {
	uint32_t sector_size;    /* 512, 1024, 2048 or 4096 */
	uint64_t sectors;        /* size of the disk in sectors */
	/* Reads sector lba into buf (sector_size bytes): 0 or an errno. */
	int (*read)(void *arg, uint64_t lba, void *buf);
	/* One partition; a non-zero return stops the parse and is returned. */
	int (*emit)(void *arg, const struct mbr_part *part);
	/* A problem the parse went past (NULL: not told). */
	void (*warn)(void *arg, const char *fmt, ...)
		__attribute__((format(printf, 2, 3)));
	void *arg;
};

bool mbr_is_extended(uint8_t type);

/*
 * Parses the table whose first sector is sector0 (sector_size bytes).
 * Returns 0 for an MBR partition table (possibly empty), ENODEV when
 * sector0 holds none (no signature, bad boot flags, or a GPT protective
 * MBR), EINVAL for an unsupported sector size, or an error from read or
 * emit.  Entries outside the disk and broken EBR chains are skipped with
 * a warning, keeping what was found before.
 */
int mbr_parse(const uint8_t *sector0, const struct mbr_source *src);

#endif /* PART_MBR_PARSE_H */
