/*
 * fs_ext2 in process, against images made by mkfs.ext4 (metadata_csum,
 * 64bit), cross-checked with debugfs and e2fsck.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "fs_ext2.h"

struct fixture {
	char dir[64], img[96];
	struct fs_ext2_backend be;
	struct fs_ext2 *fs;
	struct rump_fs_mountinfo mi;
};

static int
sh(const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return system(cmd);
}

static void
mount_img(struct fixture *f, bool ro)
{
	struct fs_ext2_mount_opts o = { .read_only = ro, .name = f->img };
	char why[256];

	assert_int_equal(fs_ext2_image_open(f->img, ro, &f->be), 0);
	assert_int_equal(fs_ext2_mount(&f->be, &o, &f->fs, why, sizeof(why)),
	                 0);
	fs_ext2_mountinfo(f->fs, &f->mi);
}

static void
unmount_img(struct fixture *f)
{
	assert_int_equal(fs_ext2_unmount(f->fs), 0);
	fs_ext2_image_close(&f->be);
	f->fs = NULL;
}

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	snprintf(f->dir, sizeof(f->dir), "/tmp/fs-unit.XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	snprintf(f->img, sizeof(f->img), "%s/img", f->dir);
	if (sh("mkdir %s/seed && head -c 777777 /dev/urandom > %s/seed/r && "
	       "echo tiny > %s/seed/t && truncate -s 256M %s && "
	       "mkfs.ext4 -q -F -O metadata_csum,64bit -d %s/seed %s",
	       f->dir, f->dir, f->dir, f->img, f->dir, f->img) != 0)
		return -1;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	if (f->fs != NULL)
		unmount_img(f);
	sh("rm -rf %s", f->dir);
	free(f);
	return 0;
}

/* Files written by mkfs.ext4 -d read back identically. */
static void
test_mkfs_files(void **state)
{
	struct fixture *f = *state;
	static unsigned char want[777777], got[777777];
	struct rump_fattr a;
	size_t n, total = 0;
	bool eof = false;
	char path[128];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/seed/r", f->dir);
	fp = fopen(path, "rb");
	assert_non_null(fp);
	assert_int_equal(fread(want, 1, sizeof(want), fp), sizeof(want));
	fclose(fp);
	mount_img(f, true);
	assert_int_equal(fs_ext2_lookup(f->fs, &f->mi.root, "r", 1, &a), 0);
	assert_int_equal(a.size, sizeof(want));
	while (!eof) {
		assert_int_equal(fs_ext2_read(f->fs, &a.fh, total, got + total,
		                              65536, &n, &eof), 0);
		total += n;
	}
	assert_int_equal(total, sizeof(want));
	assert_memory_equal(want, got, sizeof(want));
	assert_int_equal(fs_ext2_lookup(f->fs, &f->mi.root, "nope", 4, &a),
	                 ENOENT);
	unmount_img(f);
}

/* Written through the component, read back by debugfs; e2fsck clean. */
static void
test_write_debugfs(void **state)
{
	struct fixture *f = *state;
	struct fs_ext2_create c = { .kind = FS_EXT2_DIR, .name = "dir",
	                            .name_len = 3, .mode = 0750, .uid = 7,
	                            .gid = 8 };
	struct rump_fattr d, x, y;
	static char big[300000];
	char path[128];
	FILE *fp;

	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (char)('a' + i % 23);
	mount_img(f, false);
	c.dir = f->mi.root;
	assert_int_equal(fs_ext2_create(f->fs, &c, &d), 0);
	c = (struct fs_ext2_create){ .kind = FS_EXT2_FILE, .dir = d.fh,
	                             .name = "big", .name_len = 3,
	                             .mode = 0644, .excl = true };
	assert_int_equal(fs_ext2_create(f->fs, &c, &x), 0);
	assert_int_equal(fs_ext2_create(f->fs, &c, &y), EEXIST);
	assert_int_equal(fs_ext2_write(f->fs, &x.fh, 0, big, sizeof(big)), 0);
	assert_int_equal(fs_ext2_rename(f->fs, &d.fh, "big", 3, &f->mi.root,
	                                "moved", 5, 0), 0);
	/* Stale after its last name goes. */
	assert_int_equal(fs_ext2_unlink(f->fs, &f->mi.root, "t", 1), 0);
	assert_int_equal(fs_ext2_commit(f->fs), 0);
	assert_int_equal(fs_ext2_getattr(f->fs, &x.fh, &y), 0);
	assert_int_equal(y.size, sizeof(big));
	unmount_img(f);
	snprintf(path, sizeof(path), "%s/want", f->dir);
	fp = fopen(path, "wb");
	assert_non_null(fp);
	assert_int_equal(fwrite(big, 1, sizeof(big), fp), sizeof(big));
	fclose(fp);
	assert_int_equal(sh("debugfs -R 'dump /moved %s/got' %s >/dev/null "
	                    "2>&1 && cmp -s %s/got %s/want", f->dir, f->img,
	                    f->dir, f->dir), 0);
	assert_int_equal(sh("e2fsck -fn %s >/dev/null 2>&1", f->img), 0);
	assert_int_equal(sh("debugfs -R 'stat /dir' %s 2>/dev/null | "
	                    "grep -q 'User:     7'", f->img), 0);
}

/* A backend that records the writes reaching the image. */
struct recorder {
	struct fs_ext2_backend inner;
	unsigned writes, flushes;
	uint64_t last_off;
	bool write_after_flush;
};

static int
rec_read(void *ctx, uint64_t off, void *buf, size_t len)
{
	struct recorder *r = ctx;

	return r->inner.read(r->inner.ctx, off, buf, len);
}

static int
rec_write(void *ctx, uint64_t off, const void *buf, size_t len)
{
	struct recorder *r = ctx;

	r->writes++;
	r->last_off = off;
	return r->inner.write(r->inner.ctx, off, buf, len);
}

static int
rec_flush(void *ctx)
{
	struct recorder *r = ctx;

	r->flushes++;
	return r->inner.flush(r->inner.ctx);
}

/*
 * The image only moves from one committed state to the next: however
 * much an uncommitted state outgrows the cache, nothing of it is written.
 * Without a journal a commit writes the superblock last, then flushes
 * once; with one, it flushes before and after the commit block and after
 * the checkpoint.
 */
static void
commit_only(struct fixture *f, bool journal)
{
	unsigned per_commit = journal ? 3 : 1;
	struct fs_ext2_mount_opts o = { .name = f->img,
	                                .cache_bytes = 64 << 10 };
	struct recorder r = { 0 };
	struct fs_ext2_backend be;
	struct fs_ext2_create c = { .kind = FS_EXT2_DIR, .mode = 0755 };
	struct rump_fattr a;
	static char data[200000];
	uint64_t next;
	char name[32], why[256];

	assert_int_equal(fs_ext2_image_open(f->img, false, &r.inner), 0);
	be = r.inner;
	be.ctx = &r;
	be.read = rec_read;
	be.write = rec_write;
	be.flush = rec_flush;
	assert_int_equal(fs_ext2_mount(&be, &o, &f->fs, why, sizeof(why)), 0);
	fs_ext2_mountinfo(f->fs, &f->mi);
	r.writes = r.flushes = 0;

	c.dir = f->mi.root;
	c.name = name;
	/* 16 blocks of cache; this dirties far more. */
	for (int i = 0; i < 400; i++) {
		c.name_len = (size_t)snprintf(name, sizeof(name), "d%03d", i);
		assert_int_equal(fs_ext2_create(f->fs, &c, &a), 0);
	}
	memset(data, 'x', sizeof(data));
	assert_int_equal(fs_ext2_write(f->fs, &a.fh, 0, data, sizeof(data)),
	                 EISDIR);
	c.kind = FS_EXT2_FILE;
	c.name = "file";
	c.name_len = 4;
	assert_int_equal(fs_ext2_create(f->fs, &c, &a), 0);
	assert_int_equal(fs_ext2_write(f->fs, &a.fh, 0, data, sizeof(data)),
	                 0);
	assert_int_equal(r.writes, 0);
	assert_int_equal(r.flushes, 0);
	/* Still the state of the mount. */
	assert_int_equal(sh("e2fsck -fn %s >/dev/null 2>&1", f->img), 0);

	/* Due: the cache is more than half dirty. */
	assert_int_equal(fs_ext2_tick(f->fs, &next), 0);
	assert_true(r.writes > 0);
	assert_int_equal(r.flushes, per_commit);
	if (!journal)
		assert_true(r.last_off < 4096);
	assert_int_equal(sh("e2fsck -fn %s >/dev/null 2>&1", f->img), 0);
	assert_int_equal(sh("debugfs -R 'ls /' %s 2>/dev/null | "
	                    "grep -q d399", f->img), 0);

	/* A small change waits for the interval; nothing new costs no
	 * flush. */
	assert_int_equal(fs_ext2_setattr(f->fs, &(struct rump_fs_setattr_req){
	        .fh = a.fh, .valid = RUMP_FS_SET_MODE, .mode = 0600 }, &a), 0);
	r.writes = r.flushes = 0;
	assert_int_equal(fs_ext2_tick(f->fs, &next), 0);
	assert_int_equal(r.writes, 0);
	assert_true(next > 0 && next <= FS_EXT2_COMMIT_INTERVAL_NS);
	assert_int_equal(fs_ext2_commit(f->fs), 0);
	assert_int_equal(r.flushes, per_commit);
	assert_int_equal(fs_ext2_commit(f->fs), 0);
	assert_int_equal(r.flushes, per_commit);
	assert_int_equal(fs_ext2_tick(f->fs, &next), 0);
	assert_int_equal(next, UINT64_MAX);

	assert_int_equal(fs_ext2_unmount(f->fs), 0);
	f->fs = NULL;
	fs_ext2_image_close(&r.inner);
	assert_int_equal(sh("e2fsck -fn %s >/dev/null 2>&1", f->img), 0);
}

static void
test_commit_only(void **state)
{
	commit_only(*state, true);
}

static void
test_commit_only_no_journal(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(sh("tune2fs -O ^has_journal %s >/dev/null 2>&1",
	                    f->img), 0);
	commit_only(f, false);
}

/*
 * The needs_recovery flag over an empty log (what a crash between two
 * transactions leaves): both mounts take it, and a read-write one clears
 * it at unmount, as the kernel does.
 */
static void
test_needs_recovery(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(sh("debugfs -w -R 'feature needs_recovery' %s "
	                    ">/dev/null 2>&1", f->img), 0);
	mount_img(f, true);
	unmount_img(f);
	mount_img(f, false);
	unmount_img(f);
	assert_int_not_equal(sh("dumpe2fs -h %s 2>/dev/null | grep -q "
	                        "'features:.*needs_recovery'", f->img), 0);
	assert_int_equal(sh("e2fsck -fn %s >/dev/null 2>&1", f->img), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_mkfs_files, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_write_debugfs, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_needs_recovery, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_commit_only, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_commit_only_no_journal,
		                                setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
