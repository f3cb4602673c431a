/*
 * GUID partition tables, after the UEFI specification (chapter "GUID
 * Partition Table (GPT) Disk Layout").  A header is believed only when its
 * signature, revision, size, CRC and own LBA all check out, and its entry
 * array only when that array's CRC does; then each used entry is checked
 * against the disk before it becomes a partition.
 */
#include "gpt_parse.h"

#include <errno.h>
#include <string.h>

#define GPT_SIGNATURE      "EFI PART"
#define GPT_MBR_TYPE_PMBR  0xee
#define SECTOR_MAX         4096

struct gpt_header {
	uint64_t lba;
	uint64_t alternate_lba;
	uint64_t first_usable, last_usable;
	uint8_t disk_guid[16];
	uint64_t entries_lba;
	uint32_t num_entries;
	uint32_t entry_size;
	uint32_t entries_crc;
};

/*
 * Four bits at a time: a 16-entry table of the reflected IEEE polynomial
 * 0xEDB88320 is small enough to keep constant and fast enough for tables
 * that are read once per disk.
 */
static const uint32_t crc_nibble[16] = {
	0x00000000, 0x1db71064, 0x3b6e20c8, 0x26d930ac,
	0x76dc4190, 0x6b6b51f4, 0x4db26158, 0x5005713c,
	0xedb88320, 0xf00f9344, 0xd6d6a3e8, 0xcb61b38c,
	0x9b64c2b0, 0x86d3d2d4, 0xa00ae278, 0xbdbdf21c,
};

uint32_t
gpt_crc32(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	crc = ~crc;
	while (len-- > 0) {
		crc ^= *p++;
		crc = (crc >> 4) ^ crc_nibble[crc & 0xf];
		crc = (crc >> 4) ^ crc_nibble[crc & 0xf];
	}
	return ~crc;
}

static uint32_t
le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static uint64_t
le64(const uint8_t *p)
{
	return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

#define WARN(src, ...) do {                                                 \
	if ((src)->warn != NULL)                                            \
		(src)->warn((src)->arg, __VA_ARGS__);                       \
} while (0)

static size_t
utf8_encode(uint32_t c, char out[4])
{
	if (c < 0x80) {
		out[0] = (char)c;
		return 1;
	}
	if (c < 0x800) {
		out[0] = (char)(0xc0 | c >> 6);
		out[1] = (char)(0x80 | (c & 0x3f));
		return 2;
	}
	if (c < 0x10000) {
		out[0] = (char)(0xe0 | c >> 12);
		out[1] = (char)(0x80 | (c >> 6 & 0x3f));
		out[2] = (char)(0x80 | (c & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | c >> 18);
	out[1] = (char)(0x80 | (c >> 12 & 0x3f));
	out[2] = (char)(0x80 | (c >> 6 & 0x3f));
	out[3] = (char)(0x80 | (c & 0x3f));
	return 4;
}

void
gpt_name_to_utf8(const uint8_t *in, size_t units, char *out, size_t cap)
{
	size_t o = 0;

	for (size_t i = 0; i < units; i++) {
		uint32_t c = (uint32_t)in[2 * i] | (uint32_t)in[2 * i + 1] << 8;
		char enc[4];
		size_t n;

		if (c == 0)
			break;
		if (c >= 0xd800 && c <= 0xdbff) {
			uint32_t lo = i + 1 < units ?
				(uint32_t)in[2 * i + 2] |
				(uint32_t)in[2 * i + 3] << 8 : 0;

			if (lo >= 0xdc00 && lo <= 0xdfff) {
				c = 0x10000 + ((c - 0xd800) << 10) +
				    (lo - 0xdc00);
				i++;
			} else {
				c = 0xfffd;
			}
		} else if (c >= 0xdc00 && c <= 0xdfff) {
			c = 0xfffd;
		}
		n = utf8_encode(c, enc);
		if (o + n >= cap)
			break;
		memcpy(out + o, enc, n);
		o += n;
	}
	out[o] = '\0';
}

static bool
has_protective_mbr(const uint8_t *sector)
{
	if (sector[510] != 0x55 || sector[511] != 0xaa)
		return false;
	/* A hybrid MBR has other slots too; one 0xEE slot is enough. */
	for (unsigned slot = 0; slot < 4; slot++)
		if (sector[446 + 16 * slot + 4] == GPT_MBR_TYPE_PMBR)
			return true;
	return false;
}

static uint64_t
entry_array_sectors(const struct gpt_source *src, const struct gpt_header *h)
{
	uint64_t bytes = (uint64_t)h->num_entries * h->entry_size;

	return (bytes + src->sector_size - 1) / src->sector_size;
}

/*
 * Reads and checks the header at lba.  Returns 0 when it is valid, ENODEV
 * with *why set when it is not, or a read error.
 */
static int
read_header(const struct gpt_source *src, uint64_t lba, uint8_t *sector,
            struct gpt_header *h, const char **why)
{
	static const uint8_t zero_crc[4];
	uint32_t size, crc, nsect;
	uint64_t bytes;
	int error;

	if (lba == 0 || lba >= src->sectors) {
		*why = "LBA outside the disk";
		return ENODEV;
	}
	if ((error = src->read(src->arg, lba, sector)) != 0)
		return error;
	if (memcmp(sector, GPT_SIGNATURE, 8) != 0) {
		*why = "no signature";
		return ENODEV;
	}
	if (le32(sector + 8) >> 16 != 1) {
		*why = "unknown revision";
		return ENODEV;
	}
	size = le32(sector + 12);
	if (size < GPT_HEADER_MIN || size > src->sector_size) {
		*why = "bad header size";
		return ENODEV;
	}
	/* The CRC covers the header with its own CRC field taken as zero. */
	crc = gpt_crc32(0, sector, 16);
	crc = gpt_crc32(crc, zero_crc, 4);
	crc = gpt_crc32(crc, sector + 20, size - 20);
	if (crc != le32(sector + 16)) {
		*why = "header CRC mismatch";
		return ENODEV;
	}

	*h = (struct gpt_header){
		.lba = le64(sector + 24),
		.alternate_lba = le64(sector + 32),
		.first_usable = le64(sector + 40),
		.last_usable = le64(sector + 48),
		.entries_lba = le64(sector + 72),
		.num_entries = le32(sector + 80),
		.entry_size = le32(sector + 84),
		.entries_crc = le32(sector + 88),
	};
	memcpy(h->disk_guid, sector + 56, 16);

	if (h->lba != lba) {
		*why = "header names another LBA as its own";
		return ENODEV;
	}
	if (h->first_usable > h->last_usable ||
	    h->last_usable >= src->sectors) {
		*why = "usable range outside the disk";
		return ENODEV;
	}
	if (h->entry_size < GPT_ENTRY_MIN || h->entry_size % GPT_ENTRY_MIN ||
	    (h->entry_size & (h->entry_size - 1)) != 0) {
		*why = "bad entry size";
		return ENODEV;
	}
	bytes = (uint64_t)h->num_entries * h->entry_size;
	if (bytes > GPT_ENTRIES_MAX_BYTES) {
		*why = "entry array too large";
		return ENODEV;
	}
	nsect = (uint32_t)entry_array_sectors(src, h);
	if (h->entries_lba == 0 || h->entries_lba >= src->sectors ||
	    nsect > src->sectors - h->entries_lba ||
	    (lba >= h->entries_lba && lba < h->entries_lba + nsect)) {
		*why = "entry array outside the disk or over the header";
		return ENODEV;
	}
	return 0;
}

static int
emit_entry(const struct gpt_source *src, const uint8_t *e, uint32_t index)
{
	static const uint8_t unused[16];
	struct gpt_part part = { .index = index };

	if (memcmp(e, unused, 16) == 0)
		return 0;
	memcpy(part.type, e, 16);
	memcpy(part.guid, e + 16, 16);
	part.first_lba = le64(e + 32);
	part.last_lba = le64(e + 40);
	part.attributes = le64(e + 48);
	gpt_name_to_utf8(e + 56, GPT_NAME_UNITS, part.label,
	                 sizeof(part.label));
	if (part.first_lba == 0 || part.first_lba > part.last_lba ||
	    part.last_lba >= src->sectors) {
		WARN(src, "partition %u (LBA %llu-%llu) is outside the disk of "
		     "%llu sectors; skipped", index,
		     (unsigned long long)part.first_lba,
		     (unsigned long long)part.last_lba,
		     (unsigned long long)src->sectors);
		return 0;
	}
	return src->emit(src->arg, &part);
}

/*
 * Streams the entry array one sector at a time: computes its CRC into
 * *crcp and, when emit is set, hands each used entry to emit_entry.  An
 * entry may span sectors (entries larger than a sector), so the first
 * GPT_ENTRY_MIN bytes of each are gathered in a buffer of their own.
 */
static int
scan_entries(const struct gpt_source *src, const struct gpt_header *h,
             uint8_t *sector, bool emit, uint32_t *crcp)
{
	uint64_t left = (uint64_t)h->num_entries * h->entry_size;
	uint64_t nsect = entry_array_sectors(src, h);
	uint8_t entry[GPT_ENTRY_MIN];
	uint32_t pos_in_entry = 0, index = 1, crc = 0;
	int error;

	for (uint64_t s = 0; s < nsect; s++) {
		uint32_t chunk = left < src->sector_size ?
			(uint32_t)left : src->sector_size;
		uint32_t off = 0;

		if ((error = src->read(src->arg, h->entries_lba + s,
		                       sector)) != 0)
			return error;
		crc = gpt_crc32(crc, sector, chunk);
		left -= chunk;
		while (emit && off < chunk) {
			uint32_t take = h->entry_size - pos_in_entry;

			if (take > chunk - off)
				take = chunk - off;
			if (pos_in_entry < GPT_ENTRY_MIN) {
				uint32_t keep = GPT_ENTRY_MIN - pos_in_entry;

				memcpy(entry + pos_in_entry, sector + off,
				       keep < take ? keep : take);
			}
			pos_in_entry += take;
			off += take;
			if (pos_in_entry == h->entry_size) {
				if ((error = emit_entry(src, entry,
				                        index)) != 0)
					return error;
				index++;
				pos_in_entry = 0;
			}
		}
	}
	*crcp = crc;
	return 0;
}

/* 0 when the header's entry array checks out, ENODEV when not. */
static int
check_entries(const struct gpt_source *src, const struct gpt_header *h,
              uint8_t *sector)
{
	uint32_t crc;
	int error;

	if ((error = scan_entries(src, h, sector, false, &crc)) != 0)
		return error;
	return crc == h->entries_crc ? 0 : ENODEV;
}

int
gpt_parse(const struct gpt_source *src, struct gpt_result *res)
{
	uint8_t sector[SECTOR_MAX];
	struct gpt_header primary, backup, *use = NULL;
	uint64_t backup_lba;
	const char *why = NULL;
	uint32_t crc;
	int error;

	switch (src->sector_size) {
	case 512: case 1024: case 2048: case 4096:
		break;
	default:
		return EINVAL;
	}
	/* The smallest table: MBR, header, one sector of entries, backup. */
	if (src->sectors < 4)
		return ENODEV;
	if ((error = src->read(src->arg, 0, sector)) != 0)
		return error;
	if (!has_protective_mbr(sector))
		return ENODEV;

	error = read_header(src, 1, sector, &primary, &why);
	if (error == 0) {
		error = check_entries(src, &primary, sector);
		if (error == 0)
			use = &primary;
		else if (error == ENODEV)
			why = "entry array CRC mismatch";
		backup_lba = primary.alternate_lba;
	} else {
		backup_lba = src->sectors - 1;
	}
	if (error != 0 && error != ENODEV)
		return error;

	if (use == NULL) {
		const char *bwhy = NULL;

		WARN(src, "primary GPT header at LBA 1 is bad (%s); trying "
		     "the backup at LBA %llu", why,
		     (unsigned long long)backup_lba);
		error = read_header(src, backup_lba, sector, &backup, &bwhy);
		if (error == 0) {
			error = check_entries(src, &backup, sector);
			if (error == ENODEV)
				bwhy = "entry array CRC mismatch";
		}
		if (error == ENODEV) {
			WARN(src, "backup GPT header is bad too (%s)", bwhy);
			return ENODEV;
		}
		if (error != 0)
			return error;
		WARN(src, "using the backup GPT header at LBA %llu",
		     (unsigned long long)backup_lba);
		use = &backup;
	} else {
		const char *bwhy = NULL;

		/* Only the header: enough to tell a repair is due. */
		error = read_header(src, backup_lba, sector, &backup, &bwhy);
		if (error == ENODEV)
			WARN(src, "backup GPT header at LBA %llu is bad (%s); "
			     "using the primary",
			     (unsigned long long)backup_lba, bwhy);
		else if (error != 0)
			return error;
	}

	*res = (struct gpt_result){
		.used_backup = use == &backup,
		.header_lba = use->lba,
		.entries = use->num_entries,
	};
	memcpy(res->disk_guid, use->disk_guid, 16);
	return scan_entries(src, use, sector, true, &crc);
}
