/*
 * The GPT parser (UEFI specification, "GUID Partition Table Disk
 * Layout"): a pure function over sectors its caller reads, shared by the
 * component, the unit tests and the fuzzer.
 *
 * Partition N is the N-th entry of the array (1-based), as Linux numbers
 * them; unused entries (zero type GUID) keep their number.
 */
#ifndef PART_GPT_PARSE_H
#define PART_GPT_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GPT_HEADER_MIN   92
#define GPT_ENTRY_MIN    128
#define GPT_NAME_UNITS   36           /* UTF-16 code units in a name */
#define GPT_LABEL_MAX    72           /* UTF-8 label with its NUL */
/* Larger entry arrays are refused: 128 entries of 128 bytes is usual. */
#define GPT_ENTRIES_MAX_BYTES (1u << 20)

struct gpt_part {
	uint32_t index;                 /* 1-based entry number */
	uint8_t type[16];               /* type GUID as stored on disk */
	uint8_t guid[16];               /* unique GUID as stored on disk */
	uint64_t first_lba, last_lba;   /* inclusive */
	uint64_t attributes;
	char label[GPT_LABEL_MAX];      /* the name as UTF-8 */
};

/* Where the parser gets its sectors and sends what it finds. */
struct gpt_source {
	uint32_t sector_size;    /* 512, 1024, 2048 or 4096 */
	uint64_t sectors;        /* size of the disk in sectors */
	/* Reads sector lba into buf (sector_size bytes): 0 or an errno. */
	int (*read)(void *arg, uint64_t lba, void *buf);
	/* One partition; a non-zero return stops the parse and is returned. */
	int (*emit)(void *arg, const struct gpt_part *part);
	/* A problem the parse went past (NULL: not told). */
	void (*warn)(void *arg, const char *fmt, ...)
		__attribute__((format(printf, 2, 3)));
	void *arg;
};

struct gpt_result {
	bool used_backup;        /* the primary header or entries were bad */
	uint64_t header_lba;     /* the header the partitions came from */
	uint32_t entries;        /* entries in the array */
	uint8_t disk_guid[16];
};

/*
 * Requires a protective (or hybrid) MBR in sector 0, then a valid primary
 * header and entry array at LBA 1, else the backup (at the primary's
 * alternate LBA, or the last sector).  Returns 0 with *res filled when a
 * table was found, ENODEV when there is none (no protective MBR, no valid
 * header), EINVAL for an unsupported sector size, or an error from read or
 * emit.  Entries outside the disk are skipped with a warning.
 */
int gpt_parse(const struct gpt_source *src, struct gpt_result *res);

/* CRC-32 as GPT uses it (IEEE 802.3, reflected, ~0 in and out). */
uint32_t gpt_crc32(uint32_t crc, const void *buf, size_t len);

/*
 * Decodes a NUL-terminated or full UTF-16LE name of units code units into
 * out (cap bytes, cap > 0), always NUL-terminated, cut at a character
 * boundary.  Unpaired surrogates become U+FFFD.
 */
void gpt_name_to_utf8(const uint8_t *utf16le, size_t units, char *out,
                      size_t cap);

#endif /* PART_GPT_PARSE_H */
