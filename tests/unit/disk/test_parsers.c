/*
 * The MBR and GPT parsers against tables made by sfdisk: what they find
 * must be what `sfdisk --json` reports (numbers, starts, sizes, types,
 * GPT names and GUIDs), a damaged primary GPT must give way to the backup,
 * and garbage must be refused.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "mbr_parse.h"
#include "gpt_parse.h"

#define SECTOR 512
#define MAX_PARTS 64

/* ---- images ----------------------------------------------------------- */

struct image {
	char dir[256];
	char path[300];
	uint8_t *data;
	size_t size;
	unsigned warnings;
};

static void
image_load(struct image *img)
{
	struct stat st;
	FILE *f;

	assert_int_equal(stat(img->path, &st), 0);
	free(img->data);
	img->size = (size_t)st.st_size;
	img->data = malloc(img->size);
	assert_non_null(img->data);
	f = fopen(img->path, "rb");
	assert_non_null(f);
	assert_int_equal(fread(img->data, 1, img->size, f), img->size);
	fclose(f);
}

static void
image_store(struct image *img)
{
	FILE *f = fopen(img->path, "r+b");

	assert_non_null(f);
	assert_int_equal(fwrite(img->data, 1, img->size, f), img->size);
	fclose(f);
}

static bool
have_sfdisk(void)
{
	return system("sfdisk --version >/dev/null 2>&1") == 0;
}

/* A sparse image of size bytes partitioned by sfdisk from script. */
static struct image *
image_make(size_t size, const char *script)
{
	const char *tmp = getenv("TMPDIR");
	struct image *img = calloc(1, sizeof(*img));
	char cmd[512];
	FILE *p;
	int fd;

	assert_non_null(img);
	snprintf(img->dir, sizeof(img->dir), "%s/rumpd-parsers-XXXXXX",
	         tmp != NULL ? tmp : "/tmp");
	assert_non_null(mkdtemp(img->dir));
	snprintf(img->path, sizeof(img->path), "%s/disk.img", img->dir);
	fd = open(img->path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)size), 0);
	close(fd);

	snprintf(cmd, sizeof(cmd), "sfdisk -q '%s' >/dev/null 2>&1",
	         img->path);
	p = popen(cmd, "w");
	assert_non_null(p);
	fputs(script, p);
	assert_int_equal(pclose(p), 0);
	image_load(img);
	return img;
}

static void
image_free(struct image *img)
{
	unlink(img->path);
	rmdir(img->dir);
	free(img->data);
	free(img);
}

static int
image_read(void *arg, uint64_t lba, void *buf)
{
	struct image *img = arg;

	if (lba >= img->size / SECTOR)
		return EIO;
	memcpy(buf, img->data + lba * SECTOR, SECTOR);
	return 0;
}

/* ---- what sfdisk says -------------------------------------------------- */

struct expect {
	unsigned index;
	uint64_t start, size;
	char type[40];
	char uuid[40];
	char name[80];
};

/* The string value of "key": "..." in [p, end), or "" if absent. */
static void
json_str(const char *p, const char *end, const char *key, char *out,
         size_t cap)
{
	char pat[32];
	const char *v, *q;

	out[0] = '\0';
	snprintf(pat, sizeof(pat), "\"%s\": \"", key);
	v = strstr(p, pat);
	if (v == NULL || v >= end)
		return;
	v += strlen(pat);
	q = strchr(v, '"');
	assert_non_null(q);
	assert_true((size_t)(q - v) < cap);
	memcpy(out, v, (size_t)(q - v));
	out[q - v] = '\0';
}

static uint64_t
json_num(const char *p, const char *end, const char *key)
{
	char pat[32];
	const char *v;

	snprintf(pat, sizeof(pat), "\"%s\": ", key);
	v = strstr(p, pat);
	assert_true(v != NULL && v < end);
	return strtoull(v + strlen(pat), NULL, 10);
}

/* Reads `sfdisk --json` of img: one entry per partition object. */
static unsigned
sfdisk_json(const struct image *img, struct expect *out)
{
	static char buf[64 * 1024];
	char cmd[512], node[300];
	size_t len;
	unsigned n = 0;
	const char *p;
	FILE *f;

	snprintf(cmd, sizeof(cmd), "sfdisk --json '%s' 2>/dev/null",
	         img->path);
	f = popen(cmd, "r");
	assert_non_null(f);
	len = fread(buf, 1, sizeof(buf) - 1, f);
	buf[len] = '\0';
	assert_int_equal(pclose(f), 0);

	for (p = strstr(buf, "\"node\""); p != NULL;
	     p = strstr(p + 1, "\"node\"")) {
		const char *end = strchr(p, '}');

		assert_non_null(end);
		assert_true(n < MAX_PARTS);
		json_str(p, end, "node", node, sizeof(node));
		/* "<path>N": the number follows the image's path */
		assert_true(strncmp(node, img->path, strlen(img->path)) == 0);
		out[n].index = (unsigned)atoi(node + strlen(img->path));
		out[n].start = json_num(p, end, "start");
		out[n].size = json_num(p, end, "size");
		json_str(p, end, "type", out[n].type, sizeof(out[n].type));
		json_str(p, end, "uuid", out[n].uuid, sizeof(out[n].uuid));
		json_str(p, end, "name", out[n].name, sizeof(out[n].name));
		n++;
	}
	return n;
}

/* GUIDs on disk: the first three fields little-endian, the rest as is. */
static void
guid_str(const uint8_t g[16], char out[37])
{
	snprintf(out, 37,
	         "%02X%02X%02X%02X-%02X%02X-%02X%02X-%02X%02X-"
	         "%02X%02X%02X%02X%02X%02X",
	         g[3], g[2], g[1], g[0], g[5], g[4], g[7], g[6],
	         g[8], g[9], g[10], g[11], g[12], g[13], g[14], g[15]);
}

/* ---- collecting what the parsers find ---------------------------------- */

struct mbr_ctx {
	struct image *img;
	struct {
		struct mbr_part parts[MAX_PARTS];
		unsigned n;
	} found;
};

static int
mbr_ctx_read(void *arg, uint64_t lba, void *buf)
{
	return image_read(((struct mbr_ctx *)arg)->img, lba, buf);
}

static int
mbr_ctx_emit(void *arg, const struct mbr_part *part)
{
	struct mbr_ctx *c = arg;

	assert_true(c->found.n < MAX_PARTS);
	c->found.parts[c->found.n++] = *part;
	return 0;
}

static void __attribute__((format(printf, 2, 3)))
mbr_ctx_warn(void *arg, const char *fmt, ...)
{
	(void)fmt;
	((struct mbr_ctx *)arg)->img->warnings++;
}

static int
run_mbr(struct image *img, struct mbr_ctx *c)
{
	struct mbr_source src = {
		.sector_size = SECTOR,
		.sectors = img->size / SECTOR,
		.read = mbr_ctx_read,
		.emit = mbr_ctx_emit,
		.warn = mbr_ctx_warn,
		.arg = c,
	};

	memset(c, 0, sizeof(*c));
	c->img = img;
	return mbr_parse(img->data, &src);
}

struct gpt_ctx {
	struct image *img;
	struct gpt_part parts[MAX_PARTS];
	unsigned n;
	struct gpt_result res;
};

static int
gpt_ctx_read(void *arg, uint64_t lba, void *buf)
{
	return image_read(((struct gpt_ctx *)arg)->img, lba, buf);
}

static int
gpt_ctx_emit(void *arg, const struct gpt_part *part)
{
	struct gpt_ctx *c = arg;

	assert_true(c->n < MAX_PARTS);
	c->parts[c->n++] = *part;
	return 0;
}

static void __attribute__((format(printf, 2, 3)))
gpt_ctx_warn(void *arg, const char *fmt, ...)
{
	(void)fmt;
	((struct gpt_ctx *)arg)->img->warnings++;
}

static int
run_gpt(struct image *img, struct gpt_ctx *c)
{
	struct gpt_source src = {
		.sector_size = SECTOR,
		.sectors = img->size / SECTOR,
		.read = gpt_ctx_read,
		.emit = gpt_ctx_emit,
		.warn = gpt_ctx_warn,
		.arg = c,
	};

	memset(c, 0, sizeof(*c));
	c->img = img;
	img->warnings = 0;
	return gpt_parse(&src, &c->res);
}

static void
check_mbr_against_sfdisk(struct image *img, const struct mbr_ctx *c)
{
	struct expect want[MAX_PARTS];
	unsigned n = sfdisk_json(img, want);

	assert_int_equal(c->found.n, n);
	for (unsigned i = 0; i < n; i++) {
		const struct mbr_part *got = &c->found.parts[i];

		assert_int_equal(got->index, want[i].index);
		assert_int_equal(got->start, want[i].start);
		assert_int_equal(got->sectors, want[i].size);
		assert_int_equal(got->type, strtoul(want[i].type, NULL, 16));
	}
}

static void
check_gpt_against_sfdisk(struct image *img, const struct gpt_ctx *c)
{
	struct expect want[MAX_PARTS];
	unsigned n = sfdisk_json(img, want);
	char guid[37];

	assert_int_equal(c->n, n);
	for (unsigned i = 0; i < n; i++) {
		const struct gpt_part *got = &c->parts[i];

		assert_int_equal(got->index, want[i].index);
		assert_int_equal(got->first_lba, want[i].start);
		assert_int_equal(got->last_lba - got->first_lba + 1,
		                 want[i].size);
		guid_str(got->type, guid);
		assert_string_equal(guid, want[i].type);
		guid_str(got->guid, guid);
		assert_string_equal(guid, want[i].uuid);
		assert_string_equal(got->label, want[i].name);
	}
}

/* ---- MBR ---------------------------------------------------------------- */

static const char mbr_script[] =
	"label: dos\n"
	",2MiB,83,*\n"
	",2MiB,83\n"
	",2MiB,c\n"
	",+,5\n"
	",1MiB,83\n"
	",1MiB,82\n"
	",,83\n";

static void
test_mbr_logical(void **state)
{
	struct image *img;
	struct mbr_ctx c;

	(void)state;
	if (!have_sfdisk())
		skip();
	img = image_make(16 << 20, mbr_script);
	assert_int_equal(run_mbr(img, &c), 0);
	/* three primaries, the extended one, three logical */
	assert_int_equal(c.found.n, 7);
	assert_int_equal(c.found.parts[4].index, 5);
	assert_true(c.found.parts[0].bootable);
	assert_false(c.found.parts[1].bootable);
	check_mbr_against_sfdisk(img, &c);
	assert_int_equal(img->warnings, 0);
	image_free(img);
}

static void
test_mbr_gap_keeps_numbers(void **state)
{
	struct image *img;
	struct mbr_ctx c;
	char cmd[512];

	(void)state;
	if (!have_sfdisk())
		skip();
	img = image_make(16 << 20, mbr_script);
	snprintf(cmd, sizeof(cmd), "sfdisk -q --delete '%s' 2 >/dev/null 2>&1",
	         img->path);
	assert_int_equal(system(cmd), 0);
	image_load(img);
	assert_int_equal(run_mbr(img, &c), 0);
	assert_int_equal(c.found.parts[0].index, 1);
	assert_int_equal(c.found.parts[1].index, 3);
	check_mbr_against_sfdisk(img, &c);
	image_free(img);
}

/* A hand-made sector 0 with the given four slots. */
static void
put_entry(uint8_t *sector, unsigned slot, uint8_t boot, uint8_t type,
          uint32_t lba, uint32_t count)
{
	uint8_t *e = sector + MBR_TABLE_OFF + 16 * slot;

	e[0] = boot;
	e[4] = type;
	for (unsigned i = 0; i < 4; i++) {
		e[8 + i] = (uint8_t)(lba >> (8 * i));
		e[12 + i] = (uint8_t)(count >> (8 * i));
	}
	sector[510] = 0x55;
	sector[511] = 0xaa;
}

static struct image *
image_blank(size_t size)
{
	struct image *img = calloc(1, sizeof(*img));

	assert_non_null(img);
	img->size = size;
	img->data = calloc(1, size);
	assert_non_null(img->data);
	/* nothing on disk: image_free only frees */
	strcpy(img->dir, "/nonexistent-rumpd");
	strcpy(img->path, "/nonexistent-rumpd/x");
	return img;
}

static void
test_mbr_garbage(void **state)
{
	struct image *img = image_blank(1 << 20);
	struct mbr_ctx c;

	(void)state;
	/* no signature */
	assert_int_equal(run_mbr(img, &c), ENODEV);
	/* a signature over random bytes: boot flags give it away */
	srand(7);
	for (unsigned i = 0; i < 510; i++)
		img->data[i] = (uint8_t)rand();
	img->data[MBR_TABLE_OFF] = 0x13;
	img->data[510] = 0x55;
	img->data[511] = 0xaa;
	assert_int_equal(run_mbr(img, &c), ENODEV);
	/* a GPT protective MBR is not an MBR partition table */
	memset(img->data, 0, SECTOR);
	put_entry(img->data, 0, 0, 0xee, 1, 2047);
	assert_int_equal(run_mbr(img, &c), ENODEV);
	image_free(img);
}

static void
test_mbr_out_of_range_and_loops(void **state)
{
	struct image *img = image_blank(1 << 20); /* 2048 sectors */
	struct mbr_ctx c;

	(void)state;
	put_entry(img->data, 0, 0, 0x83, 64, 64);
	put_entry(img->data, 1, 0, 0x83, 2000, 100);        /* past the end */
	put_entry(img->data, 2, 0, 0x83, 0, 10);            /* over sector 0 */
	put_entry(img->data, 3, 0, 0x0f, 1000, 1000);       /* extended */
	/* EBR at 1000: a logical at 1001 and a link back to itself */
	put_entry(img->data + 1000 * SECTOR, 0, 0, 0x83, 1, 10);
	put_entry(img->data + 1000 * SECTOR, 1, 0, 0x05, 0, 100);
	assert_int_equal(run_mbr(img, &c), 0);
	assert_int_equal(c.found.n, 3);
	assert_int_equal(c.found.parts[0].index, 1);
	assert_int_equal(c.found.parts[1].index, 4);
	assert_int_equal(c.found.parts[2].index, 5);
	assert_int_equal(c.found.parts[2].start, 1001);
	assert_int_equal(img->warnings, 3);

	/* a link out of the extended partition */
	img->warnings = 0;
	put_entry(img->data + 1000 * SECTOR, 1, 0, 0x05, 5000, 100);
	assert_int_equal(run_mbr(img, &c), 0);
	assert_int_equal(c.found.n, 3);
	assert_true(img->warnings >= 1);

	/* a two-EBR cycle: 1000 -> 1500 -> 1000 */
	put_entry(img->data + 1000 * SECTOR, 1, 0, 0x05, 500, 100);
	put_entry(img->data + 1500 * SECTOR, 0, 0, 0x83, 1, 10);
	put_entry(img->data + 1500 * SECTOR, 1, 0, 0x05, 0, 100);
	assert_int_equal(run_mbr(img, &c), 0);
	assert_int_equal(c.found.n, 4);
	assert_int_equal(c.found.parts[3].index, 6);
	image_free(img);
}

/* ---- GPT ---------------------------------------------------------------- */

static const char gpt_script[] =
	"label: gpt\n"
	"size=2MiB, type=L, name=\"boot part\"\n"
	"size=4MiB, type=S, name=\"sw\xc3\xa4p\"\n"
	"size=1MiB, type=L, name=\"\"\n"
	"type=L, name=\"root\"\n";

static void
test_gpt(void **state)
{
	struct image *img;
	struct gpt_ctx c;

	(void)state;
	if (!have_sfdisk())
		skip();
	img = image_make(16 << 20, gpt_script);
	assert_int_equal(run_gpt(img, &c), 0);
	assert_int_equal(c.n, 4);
	assert_false(c.res.used_backup);
	assert_int_equal(c.res.header_lba, 1);
	assert_int_equal(img->warnings, 0);
	check_gpt_against_sfdisk(img, &c);

	/* and no MBR partitions on it */
	{
		struct mbr_ctx m;

		assert_int_equal(run_mbr(img, &m), ENODEV);
	}
	image_free(img);
}

static void
test_gpt_gap_keeps_numbers(void **state)
{
	struct image *img;
	struct gpt_ctx c;
	char cmd[512];

	(void)state;
	if (!have_sfdisk())
		skip();
	img = image_make(16 << 20, gpt_script);
	snprintf(cmd, sizeof(cmd), "sfdisk -q --delete '%s' 2 >/dev/null 2>&1",
	         img->path);
	assert_int_equal(system(cmd), 0);
	image_load(img);
	assert_int_equal(run_gpt(img, &c), 0);
	assert_int_equal(c.n, 3);
	assert_int_equal(c.parts[1].index, 3);
	check_gpt_against_sfdisk(img, &c);
	image_free(img);
}

static void
test_gpt_backup_header(void **state)
{
	struct image *img;
	struct gpt_ctx c;

	(void)state;
	if (!have_sfdisk())
		skip();
	img = image_make(16 << 20, gpt_script);
	/* a byte of the primary header's disk GUID: its CRC no longer fits */
	img->data[SECTOR + 60] ^= 0xff;
	assert_int_equal(run_gpt(img, &c), 0);
	assert_true(c.res.used_backup);
	assert_int_equal(c.res.header_lba, img->size / SECTOR - 1);
	assert_true(img->warnings >= 1);
	/* sfdisk, given the damaged image, falls back the same way */
	image_store(img);
	check_gpt_against_sfdisk(img, &c);
	image_free(img);
}

static void
test_gpt_backup_entries(void **state)
{
	struct image *img;
	struct gpt_ctx c, want;

	(void)state;
	if (!have_sfdisk())
		skip();
	img = image_make(16 << 20, gpt_script);
	assert_int_equal(run_gpt(img, &want), 0);
	/* the primary entry array (LBA 2..33): a name changes, the header
	 * stays valid, its entry CRC does not fit any more */
	img->data[2 * SECTOR + 56] ^= 0x20;
	assert_int_equal(run_gpt(img, &c), 0);
	assert_true(c.res.used_backup);
	assert_int_equal(c.n, want.n);
	assert_string_equal(c.parts[0].label, "boot part");
	image_free(img);
}

static void
test_gpt_both_bad(void **state)
{
	struct image *img;
	struct gpt_ctx c;
	size_t last;

	(void)state;
	if (!have_sfdisk())
		skip();
	img = image_make(16 << 20, gpt_script);
	last = img->size - SECTOR;
	img->data[SECTOR + 60] ^= 0xff;
	img->data[last + 60] ^= 0xff;
	assert_int_equal(run_gpt(img, &c), ENODEV);
	assert_int_equal(c.n, 0);
	image_free(img);
}

static void
test_gpt_garbage(void **state)
{
	struct image *img = image_blank(1 << 20);
	struct gpt_ctx c;

	(void)state;
	/* no protective MBR */
	assert_int_equal(run_gpt(img, &c), ENODEV);
	/* a protective MBR over random sectors */
	srand(11);
	for (size_t i = 0; i < img->size; i++)
		img->data[i] = (uint8_t)rand();
	memset(img->data, 0, SECTOR);
	put_entry(img->data, 0, 0, 0xee, 1, 2047);
	assert_int_equal(run_gpt(img, &c), ENODEV);
	/* a signature without a matching CRC */
	memcpy(img->data + SECTOR, "EFI PART", 8);
	memcpy(img->data + img->size - SECTOR, "EFI PART", 8);
	assert_int_equal(run_gpt(img, &c), ENODEV);
	image_free(img);
}

/* A valid header whose entries point past the disk: skipped, not served. */
static void
test_gpt_entry_out_of_range(void **state)
{
	struct image *img;
	struct gpt_ctx c;
	uint8_t *hdr, *e;
	uint32_t crc;

	(void)state;
	if (!have_sfdisk())
		skip();
	img = image_make(16 << 20, gpt_script);
	/* entry 4 ends far past the disk; fix both CRCs as a tool would */
	e = img->data + 2 * SECTOR + 3 * 128;
	for (unsigned i = 0; i < 8; i++)
		e[40 + i] = 0x7f;
	hdr = img->data + SECTOR;
	crc = gpt_crc32(0, img->data + 2 * SECTOR, 128 * 128);
	memcpy(hdr + 88, &crc, 4);
	memset(hdr + 16, 0, 4);
	crc = gpt_crc32(0, hdr, 92);
	memcpy(hdr + 16, &crc, 4);
	assert_int_equal(run_gpt(img, &c), 0);
	assert_false(c.res.used_backup);
	assert_int_equal(c.n, 3);
	assert_int_equal(img->warnings, 1);
	image_free(img);
}

/* ---- helpers ------------------------------------------------------------ */

static void
test_crc32(void **state)
{
	(void)state;
	assert_int_equal(gpt_crc32(0, "123456789", 9), 0xcbf43926u);
	assert_int_equal(gpt_crc32(0, "", 0), 0);
	/* in pieces, the same */
	assert_int_equal(gpt_crc32(gpt_crc32(0, "1234", 4), "56789", 5),
	                 0xcbf43926u);
}

static void
test_utf16(void **state)
{
	/* "a", U+00E4, U+20AC, U+1F600 (a surrogate pair), then a lone low
	 * surrogate, then NUL */
	static const uint8_t in[] = {
		'a', 0, 0xe4, 0, 0xac, 0x20, 0x3d, 0xd8, 0x00, 0xde,
		0x00, 0xdc, 0, 0, 'z', 0,
	};
	char out[GPT_LABEL_MAX];

	(void)state;
	gpt_name_to_utf8(in, sizeof(in) / 2, out, sizeof(out));
	assert_string_equal(out, "a\xc3\xa4\xe2\x82\xac\xf0\x9f\x98\x80"
	                         "\xef\xbf\xbd");
	/* cut at a character boundary, never in the middle */
	gpt_name_to_utf8(in, sizeof(in) / 2, out, 5);
	assert_string_equal(out, "a\xc3\xa4");
	/* a high surrogate at the very end */
	gpt_name_to_utf8((const uint8_t *)"\x3d\xd8", 1, out, sizeof(out));
	assert_string_equal(out, "\xef\xbf\xbd");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc32),
		cmocka_unit_test(test_utf16),
		cmocka_unit_test(test_mbr_logical),
		cmocka_unit_test(test_mbr_gap_keeps_numbers),
		cmocka_unit_test(test_mbr_garbage),
		cmocka_unit_test(test_mbr_out_of_range_and_loops),
		cmocka_unit_test(test_gpt),
		cmocka_unit_test(test_gpt_gap_keeps_numbers),
		cmocka_unit_test(test_gpt_backup_header),
		cmocka_unit_test(test_gpt_backup_entries),
		cmocka_unit_test(test_gpt_both_bad),
		cmocka_unit_test(test_gpt_garbage),
		cmocka_unit_test(test_gpt_entry_out_of_range),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
