/*
 * libFuzzer harness: mounts the input as an ext2/3/4 image (in memory)
 * and walks it through fs_ext2 as rumpfs would: readdir with attributes,
 * lookups, file contents, link targets, xattrs; then, mounted read-write,
 * creates, writes, renames and removes, and unmounts (which flushes).
 * Any crash, hang or sanitizer report is a bug; errors are expected.
 *
 * Seeds: small images, e.g.
 *   truncate -s 256K s.img && mkfs.ext4 -q -b 1024 -N 32 -O ^has_journal s.img
 * then a few files added with debugfs -w (write, mkdir, symlink, ea_set).
 *
 * Built with -DFUZZ_JOURNAL (fuzz_journal) the input is instead the start
 * of the journal of one fixed image that needs recovery, so that every
 * mount replays it: the journal is a parser of untrusted bytes too, and no
 * image small enough to be an input has room for one.  scripts/fuzz.sh
 * makes the image (FUZZ_JOURNAL_IMAGE) and says where its journal starts
 * (FUZZ_JOURNAL_OFFSET, in bytes) and how far it is contiguous there
 * (FUZZ_JOURNAL_LENGTH): longer inputs are left out.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs_ext2.h"

#define IMAGE_MAX (4u << 20)

struct mem {
	unsigned char *data;
	size_t size;
};

static int
mem_read(void *ctx, uint64_t off, void *buf, size_t len)
{
	struct mem *m = ctx;

	if (off > m->size || len > m->size - off)
		return EIO;
	memcpy(buf, m->data + off, len);
	return 0;
}

static int
mem_write(void *ctx, uint64_t off, const void *buf, size_t len)
{
	struct mem *m = ctx;

	if (off > m->size || len > m->size - off)
		return EIO;
	memcpy(m->data + off, buf, len);
	return 0;
}

static int
mem_flush(void *ctx)
{
	(void)ctx;
	return 0;
}

static unsigned char rdbuf[1u << 16];

static void
walk(struct fs_ext2 *fs, const struct rump_fh *dir, unsigned depth,
     unsigned *budget)
{
	unsigned char out[8192];
	uint64_t cookie = 0;
	size_t used, off;

	if (depth > 8)
		return;
	while (*budget > 0 &&
	       fs_ext2_readdir(fs, dir, cookie, true, out, sizeof(out),
	                       &used) == 0 && used > 0) {
		for (off = 0; off < used && *budget > 0; (*budget)--) {
			struct rump_fs_dirent de;
			struct rump_fattr a, b;
			struct rump_fh fh;
			const char *name;
			size_t at, len, got;
			bool eof;

			memcpy(&de, out + off, sizeof(de));
			at = off + sizeof(de) + (de.has_attr ? sizeof(a) : 0);
			name = (const char *)out + at;
			off += (at + de.name_len - off + 7) & ~(size_t)7;
			cookie = de.next_cookie;
			fh = (struct rump_fh){ .ino = de.ino, .gen = de.gen };
			fs_ext2_lookup(fs, dir, name, de.name_len, &b);
			if (fs_ext2_getattr(fs, &fh, &a) != 0)
				continue;
			fs_ext2_listxattr(fs, &fh, rdbuf, sizeof(rdbuf), &len);
			fs_ext2_getxattr(fs, &fh, "user.a", 6, rdbuf,
			                 sizeof(rdbuf), &len);
			if ((a.mode & 0170000) == 0100000)
				for (uint64_t p = 0; p < a.size && p < (1u << 20);
				     p += got) {
					if (fs_ext2_read(fs, &fh, p, rdbuf,
					                 sizeof(rdbuf), &got,
					                 &eof) || got == 0)
						break;
				}
			else if ((a.mode & 0170000) == 0120000)
				fs_ext2_readlink(fs, &fh, rdbuf, sizeof(rdbuf),
				                 &len);
			else if ((a.mode & 0170000) == 0040000 &&
			         !(de.name_len <= 2 && name[0] == '.'))
				walk(fs, &fh, depth + 1, budget);
		}
		if (cookie == 0)
			break;
	}
}

static void
mutate(struct fs_ext2 *fs, const struct rump_fh *root)
{
	struct fs_ext2_create c = { .kind = FS_EXT2_DIR, .dir = *root,
	                            .name = "d", .name_len = 1,
	                            .mode = 0755 };
	struct rump_fattr d, f;
	static const char data[5000] = "fuzz";

	if (fs_ext2_create(fs, &c, &d) != 0)
		return;
	c = (struct fs_ext2_create){ .kind = FS_EXT2_FILE, .dir = d.fh,
	                             .name = "f", .name_len = 1,
	                             .mode = 0644 };
	if (fs_ext2_create(fs, &c, &f) == 0) {
		fs_ext2_write(fs, &f.fh, 0, data, sizeof(data));
		fs_ext2_setxattr(fs, &f.fh, "user.a", 6, "v", 1, 0);
		fs_ext2_rename(fs, &d.fh, "f", 1, root, "g", 1, 0);
		fs_ext2_unlink(fs, root, "g", 1);
	}
	fs_ext2_rmdir(fs, root, "d", 1);
	fs_ext2_commit(fs);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#ifdef FUZZ_JOURNAL
static struct {
	unsigned char *image;
	size_t size;
	size_t journal_off;
	size_t journal_len;
} base;

int LLVMFuzzerInitialize(int *argc, char ***argv);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *path = getenv("FUZZ_JOURNAL_IMAGE");
	const char *off = getenv("FUZZ_JOURNAL_OFFSET");
	const char *jlen = getenv("FUZZ_JOURNAL_LENGTH");
	FILE *f;
	long len;

	(void)argc;
	(void)argv;
	if (path == NULL || off == NULL || jlen == NULL) {
		fprintf(stderr, "fuzz_journal: set FUZZ_JOURNAL_IMAGE, "
		        "FUZZ_JOURNAL_OFFSET and FUZZ_JOURNAL_LENGTH "
		        "(scripts/fuzz.sh does)\n");
		exit(2);
	}
	if ((f = fopen(path, "rb")) == NULL || fseek(f, 0, SEEK_END) != 0 ||
	    (len = ftell(f)) <= 0 || (size_t)len > IMAGE_MAX ||
	    fseek(f, 0, SEEK_SET) != 0 ||
	    (base.image = malloc((size_t)len)) == NULL ||
	    fread(base.image, 1, (size_t)len, f) != (size_t)len) {
		fprintf(stderr, "fuzz_journal: cannot read %s\n", path);
		exit(2);
	}
	fclose(f);
	base.size = (size_t)len;
	base.journal_off = strtoull(off, NULL, 0);
	base.journal_len = strtoull(jlen, NULL, 0);
	if (base.journal_off >= base.size ||
	    base.journal_len > base.size - base.journal_off) {
		fprintf(stderr, "fuzz_journal: journal past the image\n");
		exit(2);
	}
	return 0;
}
#endif

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mem m;
	struct fs_ext2_backend be = {
		.ctx = &m, .read = mem_read, .write = mem_write,
		.flush = mem_flush,
	};
	struct fs_ext2_mount_opts opts = { .name = "fuzz",
	                                   .cache_bytes = 1u << 20 };
	struct rump_fs_mountinfo mi;
	struct fs_ext2 *fs;
	unsigned budget;
	char why[256];

	const uint8_t *image = data;
	uint8_t *staged = NULL;

#ifdef FUZZ_JOURNAL
	if (size > base.journal_len)
		return 0;
	if ((staged = malloc(base.size)) == NULL)
		return 0;
	memcpy(staged, base.image, base.size);
	memcpy(staged + base.journal_off, data, size);
	image = staged;
	size = base.size;
#endif
	if (size < 2048 || size > IMAGE_MAX)
		goto out;
	/* Whole KiBs, as a disk would be. */
	m.size = size & ~(size_t)1023;
	if ((m.data = malloc(m.size)) == NULL)
		goto out;
	be.size = m.size;
	for (int rw = 0; rw < 2; rw++) {
		memcpy(m.data, image, m.size);
		opts.read_only = !rw;
		if (fs_ext2_mount(&be, &opts, &fs, why, sizeof(why)) != 0)
			continue;
		fs_ext2_mountinfo(fs, &mi);
		budget = 2000;
		walk(fs, &mi.root, 0, &budget);
		if (rw)
			mutate(fs, &mi.root);
		fs_ext2_unmount(fs);
	}
	free(m.data);
out:
	free(staged);
	return 0;
}
