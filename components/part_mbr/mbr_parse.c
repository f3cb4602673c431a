/*
 * MBR partition tables, after the layout every PC BIOS and Linux's
 * msdos partition parser agree on: four 16-byte slots at offset 446 and the
 * 0x55 0xAA signature at 510; an extended slot starts a chain of extended
 * boot records (EBRs), each holding one logical partition (relative to the
 * EBR) and a link to the next EBR (relative to the extended partition).
 */
#include "mbr_parse.h"

#include <errno.h>
#include <stddef.h>

#define MBR_ENTRY_SIZE    16
#define MBR_TYPE_GPT_PMBR 0xee

struct mbr_entry {
	uint8_t boot;
	uint8_t type;
	uint32_t lba;
	uint32_t sectors;
};

static uint32_t
le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static struct mbr_entry
entry_at(const uint8_t *sector, unsigned slot)
{
	const uint8_t *p = sector + MBR_TABLE_OFF + slot * MBR_ENTRY_SIZE;

	return (struct mbr_entry){
		.boot = p[0],
		.type = p[4],
		.lba = le32(p + 8),
		.sectors = le32(p + 12),
	};
}

static bool
has_signature(const uint8_t *sector)
{
	return sector[MBR_SIGNATURE_OFF] == 0x55 &&
	       sector[MBR_SIGNATURE_OFF + 1] == 0xaa;
}

bool
mbr_is_extended(uint8_t type)
{
	/* DOS extended (CHS), Windows extended (LBA), Linux extended */
	return type == 0x05 || type == 0x0f || type == 0x85;
}

#define WARN(src, ...) do {                                                 \
	if ((src)->warn != NULL)                                            \
		(src)->warn((src)->arg, __VA_ARGS__);                       \
} while (0)

static bool
in_disk(const struct mbr_source *src, uint64_t start, uint64_t sectors)
{
	return start > 0 && start < src->sectors &&
	       sectors <= src->sectors - start;
}

/*
 * Walks the EBR chain of the extended partition [ext_start, ext_end).
 * Each EBR must lie inside the extended partition and be visited once:
 * a chain that comes back on itself or runs too long ends with a warning.
 */
static int
parse_extended(const struct mbr_source *src, uint64_t ext_start,
               uint64_t ext_end)
{
	/* Room for the largest sector size: the parser reads no more. */
	uint8_t sector[4096];
	uint64_t visited[MBR_MAX_LOGICAL];
	unsigned nvisited = 0;
	uint32_t next_index = 5;
	uint64_t ebr = ext_start;
	int error;

	for (;;) {
		uint64_t link = 0;

		if (ebr < ext_start || ebr >= ext_end) {
			WARN(src, "EBR link to sector %llu leaves the extended "
			     "partition; chain cut",
			     (unsigned long long)ebr);
			return 0;
		}
		for (unsigned i = 0; i < nvisited; i++) {
			if (visited[i] == ebr) {
				WARN(src, "EBR chain loops at sector %llu; "
				     "chain cut", (unsigned long long)ebr);
				return 0;
			}
		}
		if (nvisited == MBR_MAX_LOGICAL) {
			WARN(src, "more than %u EBRs; chain cut",
			     MBR_MAX_LOGICAL);
			return 0;
		}
		visited[nvisited++] = ebr;

		if ((error = src->read(src->arg, ebr, sector)) != 0)
			return error;
		if (!has_signature(sector)) {
			WARN(src, "EBR at sector %llu has no signature; chain "
			     "cut", (unsigned long long)ebr);
			return 0;
		}

		for (unsigned slot = 0; slot < 4; slot++) {
			struct mbr_entry e = entry_at(sector, slot);
			struct mbr_part part;

			if (e.type == 0 || e.sectors == 0)
				continue;
			if (mbr_is_extended(e.type)) {
				/* Links are relative to the outermost
				 * extended partition; the first one counts. */
				if (link == 0)
					link = ext_start + e.lba;
				continue;
			}
			if (e.lba == 0 || !in_disk(src, ebr + e.lba,
			                           e.sectors)) {
				WARN(src, "logical partition %u (sectors "
				     "%llu+%u) is outside the disk; skipped",
				     next_index,
				     (unsigned long long)(ebr + e.lba),
				     e.sectors);
				continue;
			}
			part = (struct mbr_part){
				.index = next_index++,
				.type = e.type,
				.bootable = e.boot == 0x80,
				.start = ebr + e.lba,
				.sectors = e.sectors,
			};
			if ((error = src->emit(src->arg, &part)) != 0)
				return error;
		}
		if (link == 0)
			return 0;
		ebr = link;
	}
}

int
mbr_parse(const uint8_t *sector0, const struct mbr_source *src)
{
	uint64_t ext_start = 0, ext_end = 0;
	int error;

	switch (src->sector_size) {
	case 512: case 1024: case 2048: case 4096:
		break;
	default:
		return EINVAL;
	}
	if (!has_signature(sector0))
		return ENODEV;
	/*
	 * A boot sector of a file system also ends in 0x55 0xAA; valid boot
	 * flags tell a partition table apart, as Linux checks.  A type 0xEE
	 * slot marks the MBR protecting a GPT: that one is part_gpt's.
	 */
	for (unsigned slot = 0; slot < 4; slot++) {
		struct mbr_entry e = entry_at(sector0, slot);

		if (e.boot != 0 && e.boot != 0x80)
			return ENODEV;
		if (e.type == MBR_TYPE_GPT_PMBR)
			return ENODEV;
	}

	for (unsigned slot = 0; slot < 4; slot++) {
		struct mbr_entry e = entry_at(sector0, slot);
		struct mbr_part part;

		if (e.type == 0 || e.sectors == 0)
			continue;
		if (!in_disk(src, e.lba, e.sectors)) {
			WARN(src, "partition %u (sectors %u+%u) is outside the "
			     "disk of %llu sectors; skipped", slot + 1, e.lba,
			     e.sectors, (unsigned long long)src->sectors);
			continue;
		}
		part = (struct mbr_part){
			.index = slot + 1,
			.type = e.type,
			.bootable = e.boot == 0x80,
			.start = e.lba,
			.sectors = e.sectors,
		};
		if ((error = src->emit(src->arg, &part)) != 0)
			return error;
		if (mbr_is_extended(e.type)) {
			if (ext_end != 0) {
				WARN(src, "second extended partition %u "
				     "ignored", slot + 1);
				continue;
			}
			ext_start = e.lba;
			ext_end = (uint64_t)e.lba + e.sectors;
		}
	}
	if (ext_end != 0)
		return parse_extended(src, ext_start, ext_end);
	return 0;
}
